"""Causal block-sparse prefill attention (roofline.kernels.block_sparse_prefill) at several densities.

32 query heads over 8 KV heads of 128, bf16, batch 1, blocks of 64 tokens; the block mask is random
at the given density with the diagonal kept (so no query row is empty), and each call includes the
kernel's mask compression. FLOPs and bytes as the simulator counts sparse prefill: the causal pairs
times the density, K/V streamed as `flash_kv_hbm_tokens` counts them for those pairs. Efficiency
against the dense bf16 peak, x = sequence length. Raw points only.
"""

from __future__ import annotations

from roofline.api import attention_flops, flash_kv_hbm_tokens, flash_query_block_rows, prefill_pairs
from roofline.profilers.microbench.common import BenchContext, Case, optional_kernel, run_cases, skipped_group
from roofline.profilers.timing import Timer, Work

HEADS, KV_HEADS, HEAD_DIM, BLOCK = 32, 8, 128, 64
TRITON_COMPILE_S = 1.0
GRID = {
    "full": {"seqlen": (16384, 65536), "density": (1.0, 0.5, 0.2, 0.1)},
    "quick": {"seqlen": (32768,), "density": (1.0, 0.3, 0.1)},
}


def work(hw, seqlen: int, density: float) -> Work:
    pairs = prefill_pairs(1, seqlen, 0) * density
    rows = flash_query_block_rows(HEAD_DIM, hw.smem_per_sm_bytes)
    kv_tokens = flash_kv_hbm_tokens(pairs, seqlen, seqlen, rows, hw.sm_count)
    qo = seqlen * HEADS * 2 * HEAD_DIM * 2.0
    kv = kv_tokens * KV_HEADS * 2 * HEAD_DIM * 2.0
    return Work(
        "block_sparse_prefill",
        x=float(seqlen),
        flops=float(attention_flops(pairs, HEADS, HEAD_DIM, HEAD_DIM)),
        bytes=float(qo + kv),
        peak_flops=hw.peak("bf16"),
        bandwidth=hw.memory_bandwidth,
        basis="compute",
    )


def _builder(ctx: BenchContext, module, seqlen: int, density: float):
    def build():
        b = ctx.backend
        torch = b.torch
        q = b.randn(1, HEADS, seqlen, HEAD_DIM, dtype=torch.bfloat16)
        k = b.randn(1, KV_HEADS, seqlen, HEAD_DIM, dtype=torch.bfloat16)
        v = b.randn(1, KV_HEADS, seqlen, HEAD_DIM, dtype=torch.bfloat16)
        n = -(-seqlen // BLOCK)
        gen = torch.Generator(device=b.device).manual_seed(0) if b.is_cuda else None
        mask = torch.rand(1, HEADS, n, n, device=b.device, generator=gen) < density
        mask |= torch.eye(n, dtype=torch.bool, device=b.device)
        return lambda: module.block_sparse_prefill(q, k, v, mask, BLOCK)

    return build


def cases(ctx: BenchContext, module=None) -> list:
    g = GRID["quick" if ctx.quick else "full"]
    return [
        Case(
            {"density": density, "seqlen": seqlen, "heads": HEADS, "kv_heads": KV_HEADS, "block": BLOCK},
            work(ctx.hw, seqlen, density),
            _builder(ctx, module, seqlen, density),
            compile_s=TRITON_COMPILE_S,
        )
        for seqlen in g["seqlen"]
        for density in g["density"]
    ]


def bench(timer: Timer, ctx: BenchContext) -> list:
    module, unavailable = optional_kernel(ctx, "block_sparse_prefill")
    if unavailable:
        return skipped_group(unavailable)
    return run_cases(timer, ctx, cases(ctx, module))
