"""Per-GPU memory: weights, KV cache and recurrent state, peak activations, runtime overhead; and the
closed-form capacity limits `max_batch` and `max_context_tokens` that follow from them.

Sharding: tensor parallelism divides attention heads (KV heads replicated when fewer than tp; the MLA
latent is replicated on every rank), FFN width and vocabulary; pipeline parallelism divides layers
(the stage holding the embedding or LM head is taken). Shared-prefix KV is stored once per replica.
Sliding-window layers hold at most `window` tokens per sequence.

Host memory (per GPU) holds what offloading methods move off the GPU: host-resident KV
(`KVModel.host_bytes`) and offloaded weights. It is a second capacity: `max_batch` and `max_context`
take the tighter of the GPU limit and the host limit (`host_room` = host capacity - offloaded weights).

Activations are an estimate of the largest live set per token row: the residual stream and its
normed copy plus the larger of the mixer's and the FFN's intermediates, with FlashAttention (no
score matrix); plus fp32 logits for one row per sequence.
"""

from __future__ import annotations

import math

import numpy as np

from roofline.simulator.kvplan import DENSE, resolve
from roofline.simulator.layers import ALL_LOGITS_BYTES
from roofline.simulator.model import (
    MLA,
    Attention,
    DenseFFN,
    GatedDeltaNet,
    LinearAttention,
    Mamba,
    Mamba2,
    ModelArch,
    MoEFFN,
)
from roofline.simulator.opinputs import EDGE_BYTES, per_rank


def weight_bytes_per_gpu(
    model: ModelArch, tp: int, pp: int, wb: float, ep: int = 1, attention_wb: float | None = None
) -> float:
    """Weights on the most loaded GPU: layers / pp plus the embedding (and untied head) / tp. With
    expert parallelism, routed experts are split over ep GPUs (whole experts) and shared experts
    and routers are replicated; everything else is split over tp. The embedding and head stay
    16-bit when the layers are quantized (opinputs.edge_inputs); `attention_wb`: the attention
    projections' bytes per weight where they differ (dtype.attention_weights)."""
    if np.ndim(pp):  # pp over sweep points
        emb = np.where(np.asarray(pp) == 1, model.embedding_params(), model.vocab_size * model.hidden_size)
    else:
        emb = model.embedding_params() if pp == 1 else model.vocab_size * model.hidden_size
    edge = (emb + model.hidden_size) / tp
    per_gpu = 0.0
    apart = 0.0  # attention projections kept in their own format (attention_wb)
    h = model.hidden_size
    for g in model.layer_groups:
        f = g.ffn
        mixer = g.mixer.params(h) / tp
        if attention_wb is not None and isinstance(g.mixer, (Attention, MLA)):
            apart += g.count / pp * mixer
            mixer = 0.0
        layer = mixer + g.norms * h
        if f is None:  # mixer-only block (Mamba)
            pass
        elif ep > 1 and isinstance(f, MoEFFN):
            layer += f.num_experts * f.expert_params(h) / ep + f.shared_params(h) + h * f.num_experts
        else:
            layer += f.params(h) / tp
        per_gpu += g.count / pp * layer
    return per_gpu * wb + apart * (attention_wb or 0.0) + edge * np.maximum(wb, EDGE_BYTES)


def _kv_elements_per_gpu(m, tp: int) -> float:
    if isinstance(m, Attention):
        return 2 * per_rank(m.num_kv_heads, tp) * m.head_dim
    if isinstance(m, MLA):
        return m.kv_elements_per_token()
    return 0.0


def _state_bytes_per_gpu(m, tp: int, ab: float) -> float:
    if isinstance(m, (LinearAttention, Mamba, Mamba2, GatedDeltaNet)):
        return (
            m.state_bytes_per_sequence() / tp
            if isinstance(m, LinearAttention)
            else m.state_bytes_per_sequence(ab) / tp
        )
    return 0.0


class KVModel:
    """KV-cache and recurrent-state bytes per GPU under a KV plan, for batch b, context C (prompt +
    output tokens so far) and prompt P: each head group of each attention layer stores
    `stored(C)` tokens per sequence (capped by the layer's window) in the plan's format; the first
    min(S, stored) tokens of a shared prefix are stored once per replica, in groups that keep the
    whole history (windows, budgets and compression keep per-sequence tokens). `window_share`: a
    cache that gives sliding-window layers more than their window (frameworks.Framework.
    window_kv_share: SGLang's window pool, TensorRT-LLM's full-length layers) holds max(window,
    share x C) tokens there; at 1 every token, the shared prefix included. `step_copies`: a
    function of a layer's mixer giving the copies of that layer's cache (in layers' worth per
    sequence) the framework holds beside the cache at a step's peak (transformers' DynamicCache
    and repeat_kv: eager_hf.step_copies); the largest over the layers adds to every sequence's
    bytes."""

    def __init__(
        self,
        model: ModelArch,
        tp: int,
        pp: int,
        kb: float,
        ab: float,
        plan=DENSE,
        cp: int = 1,
        window_share: float = 0.0,
        step_copies=None,
    ):
        self.plan, self.kb = plan, kb
        self.window_share = float(window_share)
        self.terms: list = []  # (elements per token per GPU x layers / pp x fraction, group, window, layer group)
        self.copies: list = []  # (layer group, copies of one of its layers held at a step's peak, layers / pp)
        self.state = 0.0
        self.extra: list = []
        self.holds_prompt = any(hg.prefill_stored is not None for hg in plan.groups)
        self.attention_layers = (
            sum(g.count for g in model.layer_groups if _kv_elements_per_gpu(g.mixer, tp)) / pp
        )
        for i, g in enumerate(model.layer_groups):
            per_token = _kv_elements_per_gpu(g.mixer, tp)
            elems = per_token / cp  # CP: each rank holds 1/cp of the tokens (cp may be an array)
            if per_token:
                for hg in plan.groups:
                    self.terms.append(
                        (g.count / pp * elems * hg.fraction, hg, getattr(g.mixer, "window", None), i)
                    )
                copies = step_copies(g.mixer) if step_copies is not None else 0.0
                if copies:
                    self.copies.append((i, copies, g.count / pp))
            self.state += g.count / pp * _state_bytes_per_gpu(g.mixer, tp, ab)

    def add(self, other: KVModel) -> None:
        """Hold another model's cache too (a draft model's), in its own format."""
        self.extra.append(other)
        self.state += other.state

    def _sum(self, C, P, S=None, host=False, prefill=False, layer_group=None):
        total = sum((o._sum(C, P, S, host, prefill) for o in self.extra if layer_group is None), 0.0)
        for coef, hg, win, i in self.terms:
            if layer_group is not None and i != layer_group:
                continue
            source = hg.host_stored if host else hg.stored
            if prefill and hg.prefill_stored is not None:
                source = hg.prefill_stored
            full = resolve(source, P)
            kept = full.cap(win)
            tokens = kept.at(C)
            whole = kept.is_whole_history
            if win is not None and self.window_share > 0.0:  # the cache gives the window more
                tokens = np.maximum(tokens, self.window_share * full.at(C))
                whole = whole or (self.window_share >= 1.0 and full.is_whole_history)
            if S is not None:
                # Only a cache that keeps the whole history holds the common prefix; a window,
                # budget or compressed cache keeps different tokens per sequence.
                tokens = np.minimum(S, tokens) if whole else 0.0 * tokens
            if hg.selection_page_size and not host:  # page min/max metadata beside the cache
                tokens = tokens * (1.0 + 1.0 / hg.selection_page_size)
            total = total + coef * self.plan.storage_bytes(tokens, self.kb)
        return total

    def per_sequence(self, C, P):
        """Bytes one sequence holds at context C (including recurrent state and the copies of one
        layer's cache a step holds, `step_copies`)."""
        return self._sum(C, P) + self.state + self._step_copies(C, P)

    def _step_copies(self, C, P):
        """The largest over the layers of the copies of one layer's cache a step holds."""
        peak = 0.0
        for i, copies, layers in self.copies:
            peak = np.maximum(peak, copies * self._sum(C, P, layer_group=i) / layers)
        return peak

    def shared(self, C, P, S):
        """Bytes of the shared prefix, held once."""
        return self._sum(C, P, S)

    def bytes(self, b, C, P, S):
        shared = self.shared(C, P, S)
        return shared + b * (self.per_sequence(C, P) - shared)

    def prefill_bytes(self, b, P, S, chunk):
        """KV held at the end of prefill when a method compresses only afterwards (SnapKV): the whole
        prompt in every layer with chunked prefill (later chunks attend to it), else the compressed
        cache plus one layer in full (layer-by-layer compression)."""
        after = self.bytes(b, P, P, S)
        if not self.holds_prompt:
            return after
        shared = self._sum(P, P, S, prefill=True)
        held = shared + b * (self._sum(P, P, prefill=True) + self.state - shared)
        # one layer of the rank's stage in full (attention_layers is per point: pp may be swept)
        whole = np.where(chunk > 0, 1.0, 1.0 / np.maximum(self.attention_layers, 1.0))
        return after + whole * (held - after)

    def host_bytes(self, b, C, P):
        """Bytes kept in host memory (offloading methods)."""
        return b * self._sum(C, P, host=True)


def activation_bytes_per_row(model: ModelArch, tp: int, ab: float, phase: str) -> float:
    """Largest live activation bytes per token row in one layer (see module docstring)."""
    h = model.hidden_size
    worst = 0.0
    for g in model.layer_groups:
        m, f = g.mixer, g.ffn
        heads = per_rank(getattr(m, "num_heads", 1), tp)
        if isinstance(m, Attention):
            kv = per_rank(m.num_kv_heads, tp)
            mix = (heads + 2 * kv) * m.head_dim + heads * m.head_dim
        elif isinstance(m, MLA):
            mix = heads * m.qk_dim + heads * m.v_dim
            if phase == "prefill":
                mix += heads * (m.qk_dim + m.v_dim)
        elif isinstance(m, LinearAttention):
            mix = 5 * heads * m.head_dim
        elif isinstance(m, GatedDeltaNet):
            mix = 2 * math.ceil(m.conv_dim / tp) + 2 * heads * m.v_head_dim
        else:  # Mamba / Mamba2: in_proj output (x, z and the scan input) dominates
            mix = 4 * math.ceil(m.d_inner / tp)
        if f is None:
            ffn = 0
        elif isinstance(f, DenseFFN):
            ffn = 3 * math.ceil(f.intermediate / tp)
        else:
            ffn = f.top_k * 3 * math.ceil(f.expert_intermediate / tp) + 3 * math.ceil(
                f.shared_intermediate / tp
            )
        worst = max(worst, mix, ffn)
    return (2 * h + worst) * ab


def logits_bytes_per_row(model: ModelArch, tp: int) -> float:
    return math.ceil(model.vocab_size / tp) * 4.0


def prefill_row_terms(model: ModelArch, tp: int, ab: float, cp: int, all_logits: bool) -> tuple:
    """(bytes per prefill row on a rank, logits bytes per sequence) of a prefill pass: the row's
    activations (1/cp of the pass's rows per rank) and one fp32 logits row per sequence, or under
    `all_logits` (`runtime.prefill_logits: all`) every row's logits, 16-bit and their float32
    copy (layers.ALL_LOGITS_BYTES), and no row apart."""
    rp = activation_bytes_per_row(model, tp, ab, "prefill") / cp
    if all_logits:
        return rp + math.ceil(model.vocab_size / tp) * ALL_LOGITS_BYTES / cp, 0.0
    return rp, logits_bytes_per_row(model, tp)


def activation_terms(
    model: ModelArch,
    tp: int,
    ab: float,
    prompt,
    shared,
    chunk,
    cp: int = 1,
    all_logits: bool = False,
    mask_row_bytes=0.0,
) -> list:
    """[(alpha, beta)] per phase/pass: peak activation bytes = alpha + beta * b for batch b.

    Prefill rows per pass: the chunk when chunked, else the shared-prefix pass (S rows) and the
    suffix pass (b (P - S) rows); decode: b rows. Each pass also holds fp32 logits for b rows
    (a prefill under `all_logits`: every row's, `prefill_row_terms`), and each row its attention
    mask's row, `mask_row_bytes` (transformers' mask over a StaticCache, eager_hf; else 0).
    Context parallelism leaves 1/cp of a pass's rows on each rank.
    """
    rp, lp = prefill_row_terms(model, tp, ab, cp, all_logits)
    rp = rp + mask_row_bytes / cp
    rd = activation_bytes_per_row(model, tp, ab, "decode") + mask_row_bytes
    lg = logits_bytes_per_row(model, tp)
    chunked = chunk > 0
    # One shape for all terms (cp may be a sweep axis too).
    shape = np.broadcast_shapes(
        np.shape(prompt), np.shape(shared), np.shape(chunk), np.shape(cp), np.shape(mask_row_bytes)
    )
    return [
        (np.broadcast_to(np.where(chunked, rp * chunk, rp * shared), shape), np.full(shape, lp)),
        (np.zeros(shape), np.broadcast_to(np.where(chunked, 0.0, rp * (prompt - shared)) + lp, shape)),
        (np.zeros(shape), np.broadcast_to(rd + lg, shape).astype(float)),
    ]


def host_max_batch(host_room, kv: KVModel, C, P) -> np.ndarray:
    """Largest b (not floored) with b h1 <= host_room, h1 = host-resident KV per sequence at context
    C (host KV is stored per sequence: a shared prefix is not deduplicated there). Unlimited when
    nothing lives on the host; 0 when offloaded weights alone exceed the host memory."""
    h1 = kv.host_bytes(1.0, C, P)
    per_seq = np.where(h1 > 0, host_room / np.where(h1 > 0, h1, 1.0), np.inf)
    return np.where(host_room >= 0, per_seq, 0.0)


def max_batch(room, kv: KVModel, C, P, S, acts, chunk=0.0, host_room=np.inf) -> np.ndarray:
    """Largest b with k0 + b k1 + alpha_p + beta_p b <= room for every phase p (room = capacity -
    weights - overhead); k0 = shared-prefix KV, k1 = KV per additional sequence. Both the cache at
    the end of decode and the cache held at the end of prefill (linear in b too) must fit, and so
    must the host-resident KV (`host_max_batch`)."""
    k0 = kv.shared(C, P, S)
    k1 = kv.per_sequence(C, P) - k0
    best = np.inf
    for alpha, beta in acts:
        best = np.minimum(best, (room - k0 - alpha) / (k1 + beta))
    if kv.holds_prompt:
        p0 = kv.prefill_bytes(0.0, P, S, chunk)
        p1 = kv.prefill_bytes(1.0, P, S, chunk) - p0
        for alpha, beta in acts[:2]:  # prefill passes
            best = np.minimum(best, (room - p0 - alpha) / (p1 + beta))
    best = np.minimum(best, host_max_batch(host_room, kv, C, P))
    return np.floor(np.maximum(best, 0.0))


MAX_CONTEXT_SEARCH = 2.0**40  # ~1.1e12 tokens: beyond it the context is reported as unlimited
_SEARCH_POINTS = 14  # grid points per search round besides the two interpolated ones
_STEPS = np.arange(1, _SEARCH_POINTS + 1) / (_SEARCH_POINTS + 1)  # their places in the bracket


def max_context(
    room,
    kv: KVModel,
    b,
    S,
    chunk,
    model: ModelArch,
    tp: int,
    ab: float,
    output,
    cp: int = 1,
    host_room=np.inf,
    all_logits: bool = False,
    mask_bytes: float = 0.0,
) -> np.ndarray:
    """Largest C = prompt + output that fits at batch b with the output length fixed, in GPU memory
    (`room`) and in host memory (`host_room`, for host-resident KV); a prefill's rows as
    `activation_terms` counts them (`all_logits`: every row's logits; `mask_bytes` per element of
    a mask row over the whole context, C of them a row: transformers' StaticCache, eager_hf).

    Memory is non-decreasing in C (KV, and unchunked prefill activations for b (C - output - S)
    rows), but budgets and windows make it piecewise linear with point-dependent breakpoints: the
    largest integer C in [output + S, 2^40) is found by `largest_fitting`, a bracketing search
    that solves the linear piece. Infinite where memory stops growing with context (budgets,
    windows, recurrent layers).
    """
    rp, lp = prefill_row_terms(model, tp, ab, cp, all_logits)
    rd = activation_bytes_per_row(model, tp, ab, "decode")
    lg = logits_bytes_per_row(model, tp)

    def needed(C):
        P = C - output
        rows = rp + mask_bytes * C / cp  # a prefill row and its mask row over the buffer
        act_prefill = np.where(chunk > 0, rows * chunk, rows * np.maximum(S, b * (P - S))) + b * lp
        end = kv.bytes(b, C, P, S) + np.maximum(act_prefill, b * (rd + lg + mask_bytes * C))
        return np.maximum(end, kv.prefill_bytes(b, P, S, chunk) + act_prefill) if kv.holds_prompt else end

    def usage(C):
        return needed(C), kv.host_bytes(b, C, C - output)

    lo = output + np.maximum(S, 1.0)
    hi = np.full(np.broadcast(lo, room, b, host_room).shape, MAX_CONTEXT_SEARCH)
    lo = np.broadcast_to(lo, hi.shape).astype(float)
    return largest_fitting(usage, room, host_room, lo, hi)


def largest_fitting(usage, room, host_room, lo, hi) -> np.ndarray:
    """Per element, the largest integer C in [lo, hi) whose usage (GPU bytes, host bytes) =
    usage(C), both non-decreasing in C, stays within (room, host_room): 0 where lo does not fit,
    inf where hi fits.

    The answer is the one a bisection of [lo, hi] over integers gives (the C that fits while C + 1
    does not), found in a few vectorised rounds instead of 41: each round evaluates the usage at a
    grid inside the bracket (geometric in the first round) and at the two integers around the
    point where the straight line between the bracket's ends crosses the limit. Once a bracket
    holds a single linear piece that point is exact, so piecewise-linear usages (the memory model)
    settle in one to three rounds; the grid alone shrinks any bracket 15-fold per round. An lo
    that is not an integer is left to the plain bisection, whose answer there depends on its path.
    """

    def evaluate(C):
        gpu, host = usage(C)
        return (gpu <= room) & (host <= host_room), gpu, host

    ok_lo, gpu_lo, host_lo = evaluate(lo)
    ok_hi, gpu_hi, host_hi = evaluate(hi)
    shape = np.broadcast_shapes(np.shape(ok_lo), np.shape(ok_hi), np.shape(lo))
    lo, hi = np.broadcast_to(lo, shape), np.broadcast_to(hi, shape)
    open_ = ok_lo & ~ok_hi
    if not np.all((lo == np.floor(lo)) | ~open_):
        return _bisect_largest(evaluate, lo, hi)
    open_ &= hi - lo > 1
    host_binds = np.any(host_hi > host_room)  # else the host limit never decides (no offloading)
    steps = _STEPS.reshape((-1,) + (1,) * len(shape))
    grid = lo * (hi / lo) ** steps  # first round: geometric (contexts span orders of magnitude)
    while np.any(open_):
        span = hi - lo
        est = np.where(gpu_hi > room, lo + (room - gpu_lo) / (gpu_hi - gpu_lo) * span, hi)
        if host_binds:
            crossing = lo + (host_room - host_lo) / (host_hi - host_lo) * span
            est = np.minimum(est, np.where(host_hi > host_room, crossing, hi))
        est = np.floor(np.where(np.isfinite(est), est, lo))
        cand = np.concatenate([est[None], est[None] + 1.0, np.floor(grid)])
        cand = np.sort(np.where(open_, np.clip(cand, lo, hi), lo), axis=0)
        ok, gpu, host = evaluate(cand)
        n_ok = ok.sum(axis=0)  # the fitting candidates come first (usage non-decreasing)
        below, above = (n_ok > 0)[None], (n_ok < len(cand))[None]
        i_lo, i_hi = np.maximum(n_ok - 1, 0)[None], np.minimum(n_ok, len(cand) - 1)[None]
        lo = np.where(below, np.take_along_axis(cand, i_lo, 0), lo)[0]
        hi = np.where(above, np.take_along_axis(cand, i_hi, 0), hi)[0]
        open_ &= hi - lo > 1
        if not np.any(open_):
            break
        gpu, host = np.broadcast_to(gpu, cand.shape), np.broadcast_to(host, cand.shape)
        gpu_lo = np.where(below, np.take_along_axis(gpu, i_lo, 0), gpu_lo)[0]
        gpu_hi = np.where(above, np.take_along_axis(gpu, i_hi, 0), gpu_hi)[0]
        host_lo = np.where(below, np.take_along_axis(host, i_lo, 0), host_lo)[0]
        host_hi = np.where(above, np.take_along_axis(host, i_hi, 0), host_hi)[0]
        grid = lo + (hi - lo) * steps
    return np.where(ok_hi, np.inf, np.where(ok_lo, lo, 0.0))


def _bisect_largest(evaluate, lo, hi) -> np.ndarray:
    """`largest_fitting` by 41 halvings of [lo, hi] (enough for hi = 2^40)."""
    ok_lo, ok_hi = evaluate(lo)[0], evaluate(hi)[0]
    for _ in range(41):
        mid = np.floor((lo + hi) / 2.0)
        ok = evaluate(mid)[0]
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
    return np.where(ok_hi, np.inf, np.where(ok_lo, lo, 0.0))
