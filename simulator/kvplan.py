"""What happens to the KV cache: the plan that long-context methods edit.

A `KVPlan` splits each softmax-attention layer's KV heads into `HeadGroup`s (DuoAttention's
retrieval and streaming heads, say). For each group it says, as functions of the KV length L, how
many tokens per sequence are stored in GPU memory, read from HBM per decode step, stored on and
fetched from the host, and attended (FLOPs); and, for prefill, the causal window and the density
of computed pairs. Token counts are `Tokens(off, lim) = off + min(L, lim)` — full cache, sliding
window, budget, "compressed prompt + appended tokens" (SnapKV) — a form closed under capping by an
architectural window. The plan also carries the storage format (quantised elements with a
full-precision residual window, KIVI-style). What methods add besides the KV policy (their own ops,
host-link overlap, offloaded weights, agent calls) is `runplan.RunExtras`.

The dense plan (no methods) is one group that stores, reads and attends all L tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from roofline.simulator.ops import KVLinear


@dataclass(frozen=True)
class Tokens:
    """off + min(L, lim): tokens as a function of the KV length L (off, lim: scalars or arrays)."""

    off: object = 0.0
    lim: object = np.inf

    def at(self, L):
        return self.off + np.minimum(L, self.lim)

    def cap(self, window):
        """min(self, window): at most `window` tokens (None = no cap)."""
        if window is None:
            return self
        return Tokens(self.off, np.minimum(self.lim, window - self.off))

    def kv(self, coef=1.0) -> KVLinear:
        """coef * tokens as a KVLinear in L."""
        if np.ndim(self.lim) == 0 and np.isinf(self.lim):
            return KVLinear(coef * self.off, coef)
        return KVLinear(coef * self.off, 0.0, ((coef, self.lim),))

    @cached_property
    def is_whole_history(self) -> bool:
        """All L tokens: no offset, no window, budget or cap."""
        return np.ndim(self.off) == 0 and self.off == 0 and bool(np.all(np.isinf(self.lim)))

    @property
    def is_zero(self) -> bool:
        return np.ndim(self.lim) == 0 and np.ndim(self.off) == 0 and self.lim == 0 and self.off == 0


def resolve(tokens, prompt) -> Tokens:
    """A group's token count may depend on the prompt length (SnapKV keeps min(P, budget) of the
    prompt, then appends): methods give a callable prompt -> Tokens for those."""
    return tokens(prompt) if callable(tokens) else tokens


def restrict(tokens, other):
    """Tokens kept under two policies at once: min(tokens, other), for the forms methods produce
    (windows min(L, w), offsets off + L, and prompt-dependent callables of either)."""

    def both(prompt):
        a, b = resolve(tokens, prompt), resolve(other, prompt)
        if np.ndim(b.off) == 0 and b.off == 0:
            return a.cap(b.lim)
        if np.ndim(a.off) == 0 and a.off == 0:
            return b.cap(a.lim)
        raise ValueError("cannot intersect two offset token policies")

    if callable(tokens) or callable(other):
        return both
    return both(None)


ALL = Tokens()
NONE = Tokens(0.0, 0.0)


def window(tokens) -> Tokens:
    """At most `tokens` of the most recent/selected tokens: min(L, tokens)."""
    return Tokens(0.0, tokens)


@dataclass(frozen=True)
class HeadGroup:
    """A share of a layer's KV heads (and their query heads) that a method treats alike."""

    fraction: float = 1.0
    stored: Tokens = ALL  # per sequence, in GPU memory
    read: Tokens = ALL  # per decode step, from HBM
    attended: Tokens | None = None  # per decode step, FLOPs (None: read + host_read = same tokens)
    host_stored: Tokens = NONE
    host_read: Tokens = NONE  # per decode step, over the host link
    prefill_window: float | None = None  # causal window of prefill attention (None: full)
    prefill_density: float = 1.0  # share of causal pairs computed in prefill
    selection_budget: float | None = None  # query-aware selection: at most this many tokens read,
    # fetched and attended per step (Quest, LServe); leading dense layers ignore it
    selection_page_size: float | None = None  # pages scored by min/max key metadata: one token's
    # K+V elements per page, stored beside the group's cache
    prefill_stored: object = None  # tokens held at the end of prefill when more than `stored`
    # (SnapKV keeps the whole prompt until its observation window has been seen)
    heads: bool = True  # a share of the heads (prefill attention, per-step q/o traffic); False for
    # groups that only account storage or reads (ShadowKV's factors, Quest's page metadata)
    label: str = ""

    def prefill_window_within(self, window: float | None) -> float | None:
        """The group's prefill window narrowed to `window` (None: unchanged): two policies that each
        let a query see at most some keys let it see the fewer."""
        if window is None:
            return self.prefill_window
        return window if self.prefill_window is None else min(window, self.prefill_window)

    def attended_tokens(self) -> Tokens:
        if self.attended is not None:
            return self.attended
        return self.read if self.host_read.is_zero else ALL


@dataclass(frozen=True)
class KVPlan:
    groups: tuple = (HeadGroup(),)
    elem_bytes: float | None = None  # bytes per stored KV element (None: the kv dtype's)
    residual_tokens: float = 0.0  # most recent tokens kept at the kv dtype's precision
    dequant_flops_per_elem: float = 0.0  # extra vector FLOPs per quantised element read
    dense_first_layers: int = 0  # leading attention layers left dense (Quest leaves two)
    prefix_read_once: bool = False  # shared-prefix KV read once per step for the batch (Hydragen)

    def bytes_of(self, tokens: Tokens, full_bytes: float) -> KVLinear:
        """Bytes per KV element-slot for `tokens`: quantised, except the last residual_tokens."""
        elem = full_bytes if self.elem_bytes is None else self.elem_bytes
        out = tokens.kv(elem)
        if self.residual_tokens and elem != full_bytes:
            resid = Tokens(tokens.off, np.minimum(tokens.lim, self.residual_tokens - tokens.off))
            out = out + resid.kv(full_bytes - elem)
        return out

    def storage_bytes(self, tokens_value, full_bytes: float):
        """Bytes for a plain token count (not a function of L): memory-model form of bytes_of."""
        elem = full_bytes if self.elem_bytes is None else self.elem_bytes
        out = tokens_value * elem
        if self.residual_tokens and elem != full_bytes:
            out = out + np.minimum(tokens_value, self.residual_tokens) * (full_bytes - elem)
        return out

    def with_groups(self, groups) -> KVPlan:
        return replace(self, groups=tuple(groups))


DENSE = KVPlan()
