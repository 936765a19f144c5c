"""Causal prefill attention: torch SDPA restricted to the FlashAttention backend, bf16.

The FlashAttention papers' setup (arXiv:2205.14135 §4, 2307.08691 §4.1): batch * seqlen = 16K
tokens, hidden 2048 (16 heads of 128 or 32 of 64), causal, so the curve here compares with the
published ones that `simulator.efficiency` uses by default. FLOPs: `prefill_pairs` and
`attention_flops` (seqlen^2/2 pairs per sequence and head); bytes: Q in and O out plus the K/V
streamed as `flash_kv_hbm_tokens` counts it. Efficiency is against the dense bf16 peak; the
`attention_prefill` curve is fitted over x = seqlen to the head-dim-128 points.
"""

from __future__ import annotations

from roofline.api import attention_flops, flash_kv_hbm_tokens, flash_query_block_rows, prefill_pairs
from roofline.profilers.microbench.common import BenchContext, Case, first_line, run_cases, skipped_group
from roofline.profilers.timing import Timer, Work

TOKENS_PER_POINT = 16384  # batch * seqlen, as in the FlashAttention papers' benchmarks
HIDDEN = 2048  # heads * head_dim
FIT_HEAD_DIM = 128
GRID = {
    "full": {128: (1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072), 64: (1024, 4096, 16384, 65536)},
    "quick": {128: (1024, 2048, 4096, 8192, 16384, 32768, 65536), 64: (4096, 16384)},
}


def work(hw, batch: int, seqlen: int, heads: int, head_dim: int) -> Work:
    pairs = prefill_pairs(batch, seqlen, 0)
    tokens = batch * seqlen
    rows = flash_query_block_rows(head_dim, hw.smem_per_sm_bytes)
    kv_tokens = flash_kv_hbm_tokens(pairs, tokens, seqlen, rows, hw.sm_count)
    per_token = heads * 2 * head_dim * 2.0  # bf16 (q and o, or k and v)
    return Work(
        "attention_prefill",
        x=float(seqlen),
        flops=float(attention_flops(pairs, heads, head_dim, head_dim)),
        bytes=float(tokens * per_token + kv_tokens * per_token),
        peak_flops=hw.peak("bf16"),
        bandwidth=hw.memory_bandwidth,
        basis="compute",
    )


def _builder(ctx: BenchContext, batch: int, seqlen: int, heads: int, head_dim: int):
    def build():
        b = ctx.backend
        torch = b.torch
        q, k, v = (b.randn(batch, heads, seqlen, head_dim, dtype=torch.bfloat16) for _ in range(3))
        sdpa = torch.nn.functional.scaled_dot_product_attention

        def call():
            with b.sdpa_flash():
                return sdpa(q, k, v, is_causal=True)

        return call

    return build


def cases(ctx: BenchContext) -> list:
    out = []
    for head_dim, seqlens in GRID["quick" if ctx.quick else "full"].items():
        heads = HIDDEN // head_dim
        for seqlen in seqlens:
            batch = max(1, TOKENS_PER_POINT // seqlen)
            shape = {"seqlen": seqlen, "batch": batch, "heads": heads, "head_dim": head_dim}
            out.append(
                Case(
                    shape,
                    work(ctx.hw, batch, seqlen, heads, head_dim),
                    _builder(ctx, batch, seqlen, heads, head_dim),
                )
            )
    return out


def flash_unavailable(ctx: BenchContext) -> str | None:
    """Why SDPA's flash backend cannot run here (one small causal call), or None."""
    try:
        _builder(ctx, 1, 256, 2, FIT_HEAD_DIM)()()
    except RuntimeError as exc:  # "No available kernel" when the flash backend cannot take the inputs
        return f"torch SDPA flash backend unavailable: {first_line(exc)}"
    return None


def bench(timer: Timer, ctx: BenchContext) -> list:
    reason = flash_unavailable(ctx)
    if reason:
        return skipped_group(reason)
    return run_cases(timer, ctx, cases(ctx))
