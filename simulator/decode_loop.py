"""Speculative decoding as a decode loop: draft gamma tokens, verify gamma + 1 in one target step.

With per-token acceptance rate alpha (i.i.d., Leviathan et al., arXiv:2211.17192, eq. 1), one
verification yields E = (1 - alpha^(gamma+1)) / (1 - alpha) tokens, so the mean time per output
token is (gamma * t_draft + t_verify(gamma + 1 queries)) / E. A level's draft may itself be sped up
by a smaller draft (TriForce, Sun et al., arXiv:2404.11912: a tiny model with a StreamingLLM cache
drafts for the target model reading a retrieval-selected KV subset, which drafts for the target
with its full cache) — `inner` nests the same formula.
"""

from __future__ import annotations

from dataclasses import dataclass

from roofline.simulator.kvplan import KVPlan


@dataclass(frozen=True)
class SpecLevel:
    """One draft -> verify level. draft_model None = self-speculation with the verifier's weights."""

    gamma: int
    alpha: float
    draft_plan: KVPlan
    draft_model: object = None
    inner: SpecLevel | None = None
    draft_cache_tokens: float = 0.0  # extra KV buffer of the draft (TriForce's retrieval cache)


def expected_tokens(gamma: int, alpha: float) -> float:
    """Tokens produced per verification: sum_{i=0..gamma} alpha^i."""
    if alpha >= 1.0:
        return gamma + 1.0
    return (1.0 - alpha ** (gamma + 1)) / (1.0 - alpha)


def level_ops(level: SpecLevel, verifier_model, verifier_plan: KVPlan, decode_ops, prefix: str = "") -> list:
    """Weighted op costs per output token of a level: [(OpCost list, weight)].

    `decode_ops(model, plan, queries, tag)` returns the OpCosts of one decode step.
    """
    e = expected_tokens(level.gamma, level.alpha)
    draft_model = level.draft_model or verifier_model
    tag = f"{prefix}draft"
    if level.inner is not None:
        draft = level_ops(level.inner, draft_model, level.draft_plan, decode_ops, prefix=f"{tag}.")
    else:
        draft = [(decode_ops(draft_model, level.draft_plan, 1.0, tag), 1.0)]
    verify = decode_ops(verifier_model, verifier_plan, level.gamma + 1.0, f"{prefix}verify" if prefix else "")
    return [(ops, w * level.gamma / e) for ops, w in draft] + [(verify, 1.0 / e)]


def draft_models(level: SpecLevel | None) -> list:
    """[(model or None, plan, extra cache tokens)] of every draft in the hierarchy."""
    out = []
    while level is not None:
        out.append((level.draft_model, level.draft_plan, level.draft_cache_tokens))
        level = level.inner
    return out
