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

MInference's reference implementation (microsoft/MInference, minference/modules/minference_forward.py:
the HuggingFace forward's and `minference_vllm_forward`'s prefill) runs the prefill attention one
head at a time in a Python loop (`per_head_loop`, on by default: every published MInference figure
comes from it), and twice per head of the vertical-slash pattern it waits for the GPU: the
all-zero pad of `sum_all_diagonal_matrix` is made on the CPU and copied over (`.to(device)`), and
`vertical_slash_sparse_attention` copies its length tensor from a Python list (`torch.tensor(...,
device=...)`); a pageable host-to-device copy returns when it is done, so the host cannot run ahead
of the GPU. Each head's launches are then host time the GPU waits through, paid once per head and
layer whatever the prompt (about 1 s of a prefill for Llama-3-8B's 32 x 32 heads on the servers
`DISPATCH_S` comes from; x the hardware's host factor, or at `runtime.dispatch_us` where set). Counted per head from that source (the Triton path of its v0.1 kernels,
pit_sparse_flash_attention_v2.py, and csrc/vertical_slash_index.cu), `HEAD_LOOP_KERNELS`:
vertical-slash 36 kernels launched through PyTorch -- the pattern estimate's GEMM, its scale,
`torch.where` and the slice's assignment, the float32 softmax (cast, softmax), the column sum and
its fill, `topk` (the selection, the sort of what it selected); the diagonal sums' host pad copied
over, `cat` and sum; the slash fill, `topk` (2) and the subtraction; the sparse attention's pads
of q, k and v (a fill and a copy each), the two index casts and sorts, the length tensor copied
over, the index conversion's four zero fills and its kernel, the output's zeros; the output's
transposed copy and its assignment into the heads' output -- and one Triton kernel, whose Python
launch costs `TRITON_LAUNCH_S`; block-sparse (`block_sparse_attention`) 21 and one Triton kernel
(the pads, the length tensor copied over, the mean-pooled q and k, two `arange`, the pooled
scores and their causal mask, `topk` (2), the cast and sort, the output's zeros, the output's two
copies). A-shape's heads (`streaming_forward`) do not wait for the GPU, so their launches hide
behind its work; they are not counted. Left out: the HuggingFace forward's seven
`config.to_dict()` deep copies per head (Python only), `topk`'s multi-block path above 20,000
keys (about ten kernels more per call, PyTorch's `should_use_multiblock`), and the attention kernel of
one head running beside the next head's first launches (at most its 9 launches before the
first wait). `per_head_loop: false` prices an implementation that launches every head at once.

Against the paper: dense prefill of 1M tokens for an 8B model on one A100 takes 23 min here vs
"~30 min" (the FlashAttention-2 efficiency curve is held constant beyond its 16K measurements); a
10x speedup needs ~6% density with the vertical-slash index cost. The repository's own tables
(HF and vLLM, 10K-1M) are in docs/validation/methods.md, with what the model leaves out.
"""

from __future__ import annotations

from dataclasses import replace

from roofline.simulator.eager_hf import DISPATCH_S
from roofline.simulator.frameworks import host_op
from roofline.simulator.methods.base_method import PREFILL, Method, Param
from roofline.simulator.opinputs import score_kernel
from roofline.simulator.runplan import ExtraOp

LAST_Q = 64  # vertical-slash: queries used to estimate the pattern (MInference §3.2)
POOL = 64  # block-sparse: pooling block
# Keys each query attends to by default (microsoft/MInference: vertical_size 1000 + slash_size 6096
# in the per-head fallback pattern; top-100 blocks of 64 in the block-sparse forward)
DEFAULT_BUDGET = {"vertical-slash": 1000 + 6096, "block-sparse": 100 * POOL}
# Kernels the reference implementation launches through PyTorch per head and layer of a prefill,
# beside one Triton kernel (module docstring)
HEAD_LOOP_KERNELS = {"vertical-slash": 36.0, "block-sparse": 21.0}
# Host time of a Triton kernel's launch from Python with many arguments, as Triton 2 (shipped with
# PyTorch 2.2, MInference's era) launches it: 62 us (triton-lang/triton PR #3503, "Low latency kernel
# launching", measured 40 us for a few parameters, 62 us for many; the vertical-slash kernel takes 30)
TRITON_LAUNCH_S = 62e-6


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


def _head_loop(ctx, m, count, pattern):
    """The reference implementation's loop over heads: per head and pass, its kernels' host
    launches (HEAD_LOOP_KERNELS at this host's eager dispatch time, `Rates.eager_dispatch_s`, and
    one Triton launch), which its host syncs keep the GPU waiting for (module docstring)."""
    dispatch = ctx.rates.eager_dispatch_s  # this host's, `runtime.dispatch_us` where measured
    # the Triton launch scales with the host as PyTorch's dispatch does
    per_head = HEAD_LOOP_KERNELS[pattern] * dispatch + TRITON_LAUNCH_S * dispatch / DISPATCH_S
    seconds = ctx.shard.heads(m) * ctx.shape.passes * per_head
    return [host_op("minference_head_loop", seconds, count, "sync")]


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
        "per_head_loop": Param(
            "bool",
            "Price MInference's reference implementation, which runs the prefill attention one head "
            "at a time from Python and waits for the GPU twice per head (vertical-slash; once for "
            "block-sparse): its launches are host time per head and layer (false: an "
            "implementation that launches every head at once).",
            True,
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
        if self.pattern == "a-shape":  # a static pattern: no index to build, no wait per head
            return extras
        extras = extras.add(ExtraOp("minference_index", "prefill", _minference_index, (self.pattern,)))
        if self.per_head_loop:
            extras = extras.add(ExtraOp("minference_head_loop", "prefill", _head_loop, (self.pattern,)))
        return extras


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
