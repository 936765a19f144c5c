"""Sparse prefill attention: MInference and generic block-sparse prefill.

* MInference (Jiang et al., arXiv:2407.02490): per head, one of three patterns (A-shape,
  vertical-slash, block-sparse). Each keeps a fixed number of keys per query, whatever the context
  (the offline pattern search fixes each head's numbers of vertical and slash lines, or of top-k
  blocks, not a share of the pairs), so the pairs computed grow linearly with the prompt:
  sum_i min(i, B) for a budget of B keys, the causal window's count (a share 2B/N of the causal
  pairs at N >> B). `budget_tokens` is B; by default
  the pattern's own in MInference's implementation (microsoft/MInference, the per-head fallback
  of `minference_prefill_kernel` and its block-sparse forward): vertical-slash 1,000 vertical +
  6,096 slash lines = 7,096 keys, block-sparse the top 100 blocks of 64 = 6,400 keys; A-shape has
  no default (its sink + local sizes come from the pattern search: give budget_tokens). `density`
  instead fixes the share of the causal pairs at every length. Index building is a real cost:
  vertical-slash scores the last 64 queries against all keys; block-sparse scores mean-pooled
  64-token blocks of Q and K; A-shape needs no index.
* block_sparse_prefill: a given block mask of `density` (e.g. from a static pattern): pairs and
  K/V block reads scale with density; no index cost.

Kernel efficiency is taken as FlashAttention's at the same length (the paper's Triton kernels run
close to it on dense blocks); decode is unchanged.

Against the paper: dense prefill of 1M tokens for an 8B model on one A100 takes 23 min here vs
"~30 min" (the FlashAttention-2 efficiency curve is held constant beyond its 16K measurements); a
10x speedup needs ~6% density with the vertical-slash index cost. The repository's own tables
(HF and vLLM, 10K-1M) are in docs/validation/methods.md, with what the model leaves out.
"""

from __future__ import annotations

from dataclasses import replace

from roofline.simulator.methods.base_method import PREFILL, Method, Param
from roofline.simulator.opinputs import score_kernel
from roofline.simulator.runplan import ExtraOp

LAST_Q = 64  # vertical-slash: queries used to estimate the pattern (MInference §3.2)
POOL = 64  # block-sparse: pooling block
# Keys each query attends to by default (microsoft/MInference: vertical_size 1000 + slash_size 6096
# in the per-head fallback pattern; top-100 blocks of 64 in the block-sparse forward)
DEFAULT_BUDGET = {"vertical-slash": 1000 + 6096, "block-sparse": 100 * POOL}


def _with_density(plan, density):
    return plan.with_groups(replace(g, prefill_density=g.prefill_density * density) for g in plan.groups)


def _minference_index(ctx, m, count, pattern):
    """MInference's online index: vertical-slash scores the last LAST_Q queries against every key;
    block-sparse scores mean-pooled blocks of POOL tokens against each other."""
    heads = ctx.shard.heads(m)
    if pattern == "vertical-slash":
        flops = 2.0 * ctx.shape.batch * heads * LAST_Q * ctx.shape.prompt * m.qk_dim
        byts = ctx.shape.batch * heads * LAST_Q * ctx.shape.prompt * 4.0
    else:
        blocks = ctx.shape.prompt / POOL
        flops = 2.0 * ctx.shape.batch * heads * blocks * blocks / 2.0 * m.qk_dim
        byts = ctx.shape.batch * heads * blocks * blocks / 2.0 * 4.0
    return [score_kernel(ctx, "minference_index", flops, byts, count)]


class MInference(Method):
    name = "minference"
    summary = "Dynamic sparse prefill attention (A-shape / vertical-slash / block-sparse heads)"
    citation = "MInference 1.0, Jiang et al. 2024 (arXiv:2407.02490)"
    changes = (
        "prefill attention: a budget of keys per query (or a density share of the pairs), plus index building"
    )
    stage = PREFILL
    exclusive = ("sparse_prefill",)
    params = {
        "density": Param(
            "float",
            "A fixed share of the causal (query, key) pairs computed at every length, instead of "
            "budget_tokens (null: the budget).",
            None,
            minimum=1e-6,
            maximum=1.0,
            nullable=True,
            validated=(0.02, 0.5),
        ),
        "pattern": Param(
            "choice",
            "Sparse pattern whose index is built.",
            "vertical-slash",
            choices=("a-shape", "vertical-slash", "block-sparse"),
        ),
        "budget_tokens": Param(
            "int",
            "Keys each query attends to (null: the pattern's default, vertical-slash 1000 vertical + "
            "6096 slash lines = 7096, block-sparse 100 blocks of 64 = 6400; A-shape has none).",
            None,
            minimum=1,
            nullable=True,
        ),
    }

    def check_values(self) -> list:
        if self.density is not None and self.budget_tokens is not None:
            return ["minference: give density or budget_tokens, not both"]
        if self.density is None and self.budget_tokens is None and self.pattern not in DEFAULT_BUDGET:
            return [
                f"minference: pattern {self.pattern} has no default budget; give budget_tokens (its sink + "
                "local tokens per query) or density"
            ]
        return []

    def apply_plan(self, plan, model):
        if self.density is not None:
            return _with_density(plan, self.density)
        budget = self.budget_tokens if self.budget_tokens is not None else DEFAULT_BUDGET[self.pattern]
        # B keys per query: the causal window's pair count, sum_i min(i, B)
        return plan.with_groups(
            replace(g, prefill_window=g.prefill_window_within(budget)) for g in plan.groups
        )

    def apply_extras(self, extras, model, plan):
        if self.pattern == "a-shape":  # a static pattern: no index to build
            return extras
        return extras.add(ExtraOp("minference_index", "prefill", _minference_index, (self.pattern,)))


class BlockSparsePrefill(Method):
    name = "block_sparse_prefill"
    summary = "Block-sparse causal prefill attention at a given density"
    citation = "Block-sparse attention as in MInference (arXiv:2407.02490) and BigBird (arXiv:2007.14062)"
    changes = "prefill attention FLOPs and K/V reads x density"
    stage = PREFILL
    exclusive = ("sparse_prefill",)
    params = {
        "density": Param("float", "Share of causal blocks computed.", minimum=1e-6, maximum=1.0),
        "block_size": Param("int", "Tokens per square block of the mask.", 64, minimum=1),
    }

    def apply_plan(self, plan, model):
        return _with_density(plan, self.density)
