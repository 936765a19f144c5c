"""KV eviction to a token budget: StreamingLLM, H2O, SnapKV, PyramidKV.

What each keeps (per sequence, per layer, all KV heads):
* StreamingLLM (Xiao et al., arXiv:2309.17453): attention sinks + a recent window, min(L, S + W),
  and prefill runs with the same window (the model streams the prompt).
* H2O (Zhang et al., arXiv:2306.14048): heavy hitters + recent tokens, min(L, budget); prefill is
  full (scores are needed to find heavy hitters), decode updates accumulated scores of the kept
  tokens (one fp32 read-modify-write per kept token and head).
* SnapKV (Li et al., arXiv:2404.14469): after a full prefill, the prompt's KV is compressed to
  `budget_tokens` chosen by the last `window_tokens` queries' votes; generated tokens are appended
  (no further eviction): min(P, budget) + (L - P). The voting costs window x P scores per head.
* PyramidKV (Cai et al., arXiv:2406.02069): SnapKV selection with budgets that fall linearly from
  the bottom layer to the top, mean `budget_tokens`, bottom/top = `beta_ratio` (top = 2B/(1+beta),
  bottom = 2B - top), binned into 8 layer groups (costs are linear in layers, so bins are exact
  up to the min(P, budget) of each bin).

Where the model disagrees with a paper: SnapKV's reported 3.6x decode speedup at 16K (LWM-7B, batch
2, HuggingFace) is larger than the HBM-traffic ratio because the HF baseline's per-step overheads
grow with the cache; the roofline gives the bytes ratio (see tests/methods).
SnapKV's max input at batch 2 (LWM-7B on A100) grows 7.1x here (58.8K -> 420K) vs 8x in the
paper (16K -> 131K): the absolute values differ because HuggingFace materialises fp32 logits for
every prompt position and runs eager attention in prefill, which the model (FlashAttention, logits
for the last token) does not; the ratio is what the method changes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from roofline.simulator.kvplan import HeadGroup, Tokens, restrict, window
from roofline.simulator.methods.base_method import KV_POLICY, Method, Param
from roofline.simulator.opinputs import score_kernel
from roofline.simulator.ops import Op
from roofline.simulator.runplan import ExtraOp


class StreamingLLM(Method):
    name = "streaming_llm"
    summary = "Keep attention sinks + a recent window (streaming)"
    citation = "StreamingLLM, Xiao et al. 2024 (arXiv:2309.17453)"
    changes = "KV kept = sinks + window (memory, decode reads); prefill attention windowed"
    stage = KV_POLICY
    exclusive = ("eviction", "head_split")
    params = {
        "sink_tokens": Param(
            "int", "Initial tokens always kept (attention sinks).", 4, minimum=0, validated=(1, 8)
        ),
        "window_tokens": Param("int", "Most recent tokens kept.", minimum=1, validated=(256, 4096)),
    }

    def apply_plan(self, plan, model):
        keep = self.sink_tokens + self.window_tokens
        return plan.with_groups(_evict(g, window(keep), prefill_window=keep) for g in plan.groups)


def _h2o_score_update(ctx, m, count, budget):
    heads = ctx.shard.heads(m)
    kept = Tokens(0.0, budget)
    return [
        Op(
            name="h2o_score_update",
            kind="elementwise",
            flops=kept.kv(ctx.shape.batch * heads * 2.0),
            bytes=kept.kv(ctx.shape.batch * heads * 8.0),
            compute_rate=ctx.rates.vector_rate,
            memory_rate=ctx.rates.mem_rate,
            count=count,
        )
    ]


class H2O(Method):
    name = "h2o"
    summary = "Keep heavy-hitter + recent tokens within a budget"
    citation = "H2O, Zhang et al. 2023 (arXiv:2306.14048)"
    changes = "KV kept = budget (memory, decode reads); score bookkeeping per decode step"
    stage = KV_POLICY
    exclusive = ("eviction",)
    params = {
        "budget_tokens": Param(
            "int",
            "Tokens kept per sequence and layer (heavy hitters + recent).",
            minimum=1,
            validated=(64, 4096),
        )
    }

    def apply_plan(self, plan, model):
        return plan.with_groups(_evict(g, window(self.budget_tokens)) for g in plan.groups)

    def apply_extras(self, extras, model, plan):
        return extras.add(ExtraOp("h2o_score_update", "decode", _h2o_score_update, (self.budget_tokens,)))


def _evict(g: HeadGroup, kept, prefill_window=None, hold_prompt=False) -> HeadGroup:
    """Group g keeping at most `kept` tokens on top of whatever it kept already (order-independent:
    the intersection of both policies)."""
    stored = restrict(g.stored, kept)
    return replace(
        g,
        stored=stored,
        read=restrict(g.read, kept),
        attended=None if g.attended is None else restrict(g.attended, kept),
        prefill_window=g.prefill_window_within(prefill_window),
        prefill_stored=g.stored if hold_prompt else g.prefill_stored,
    )


def _compressed(budget):
    """min(P, budget) of the prompt kept, generated tokens appended: L - max(P - budget, 0)."""
    return lambda prompt: Tokens(-np.maximum(prompt - budget, 0.0), np.inf)


def _snap_vote(ctx, m, count, window_tokens):
    heads = ctx.shard.heads(m)
    flops = 2.0 * ctx.shape.batch * heads * window_tokens * ctx.shape.prompt * (m.qk_dim + 1)
    byts = ctx.shape.batch * heads * window_tokens * ctx.shape.prompt * 4.0
    return [score_kernel(ctx, "snapkv_vote", flops, byts, count)]


class SnapKV(Method):
    name = "snapkv"
    summary = "Compress the prompt's KV to a budget chosen by an observation window"
    citation = "SnapKV, Li et al. 2024 (arXiv:2404.14469)"
    changes = (
        "prompt KV kept = min(P, budget) + generated tokens (memory, decode reads); voting cost in prefill"
    )
    stage = KV_POLICY
    exclusive = ("eviction",)
    params = {
        "budget_tokens": Param(
            "int", "Prompt tokens kept per sequence and layer.", minimum=1, validated=(512, 4096)
        ),
        "window_tokens": Param(
            "int", "Observation window: the last prompt queries that vote.", 32, minimum=1, validated=(16, 64)
        ),
    }

    def apply_plan(self, plan, model):
        kept = _compressed(self.budget_tokens)
        return plan.with_groups(_evict(g, kept, hold_prompt=True) for g in plan.groups)

    def apply_extras(self, extras, model, plan):
        return extras.add(ExtraOp("snapkv_vote", "prefill", _snap_vote, (self.window_tokens,)))


class PyramidKV(Method):
    name = "pyramidkv"
    summary = "SnapKV selection with budgets falling from bottom to top layers"
    citation = "PyramidKV, Cai et al. 2024 (arXiv:2406.02069)"
    changes = "prompt KV kept per layer = pyramid of budgets (mean budget_tokens)"
    stage = KV_POLICY
    exclusive = ("eviction",)
    BINS = 8
    params = {
        "budget_tokens": Param("int", "Mean prompt tokens kept per layer.", minimum=1, validated=(64, 2048)),
        "beta_ratio": Param(
            "float", "Bottom-to-top budget ratio of the pyramid.", 20.0, minimum=1.0, validated=(1.0, 20.0)
        ),
        "window_tokens": Param(
            "int", "Observation window: the last prompt queries that vote.", 32, minimum=1
        ),
    }

    def budgets(self) -> list:
        """BINS budgets, linear from bottom (2B - top) to top (2B / (1 + beta)), mean B."""
        top = 2.0 * self.budget_tokens / (1.0 + self.beta_ratio)
        bottom = 2.0 * self.budget_tokens - top
        return list(np.linspace(bottom, top, self.BINS))

    def apply_plan(self, plan, model):
        groups = []
        for g in plan.groups:
            for i, b in enumerate(self.budgets()):
                evicted = _evict(g, _compressed(b), hold_prompt=True)
                groups.append(replace(evicted, fraction=g.fraction / self.BINS, label=f"{g.label}_l{i}"))
        return plan.with_groups(groups)

    def apply_extras(self, extras, model, plan):
        return extras.add(ExtraOp("snapkv_vote", "prefill", _snap_vote, (self.window_tokens,)))
