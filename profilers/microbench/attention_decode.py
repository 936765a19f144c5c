"""Decode attention: one new token per sequence over a bf16 KV cache, GQA, head dim 128, 32 query heads.

Two implementations per shape: `triton` (roofline.kernels.decode_attention, flash-decoding with
split-KV; recorded as skipped where it cannot be imported) and `sdpa` (torch SDPA, the query heads
of one KV head packed as that head's queries, so no KV head is repeated). Grid: KV length x batch x
GQA group, capped so the KV cache stays within a quarter of the SKU's memory. FLOPs are
`attention_flops(batch * kv_len, heads, d, d)`; bytes are the simulator's decode traffic (the K/V
read plus q in and o out). Efficiency is against HBM bandwidth; the `attention_decode` curve is fitted
over x = bytes moved to the faster implementation of each shape.
"""

from __future__ import annotations

from roofline.api import attention_flops
from roofline.profilers.microbench.common import BenchContext, Case, optional_kernel, run_cases
from roofline.profilers.timing import Timer, Work

HEADS = 32
HEAD_DIM = 128
GRID = {
    "full": {"kv_len": (1024, 4096, 16384, 65536, 131072), "batch": (1, 8, 32), "group": (1, 4, 8)},
    "quick": {"kv_len": (4096, 32768, 131072), "batch": (1, 16), "group": (4, 8)},
}
IMPLS = ("triton", "sdpa")
TRITON_COMPILE_S = 0.5  # budget per Triton point: split counts vary with the shape, each one compiles once


def kv_bytes(batch: int, kv_len: int, kv_heads: int, head_dim: int = HEAD_DIM, elem: float = 2.0) -> float:
    return float(batch) * kv_len * kv_heads * 2 * head_dim * elem


def work(hw, batch: int, kv_len: int, group: int) -> Work:
    kv_heads = HEADS // group
    qo_bytes = batch * HEADS * 2 * HEAD_DIM * 2.0  # q in, o out (bf16)
    total = kv_bytes(batch, kv_len, kv_heads) + qo_bytes
    return Work(
        "attention_decode",
        x=total,
        flops=float(attention_flops(batch * kv_len, HEADS, HEAD_DIM, HEAD_DIM)),
        bytes=total,
        peak_flops=hw.peak("bf16"),
        bandwidth=hw.memory_bandwidth,
        basis="memory",
    )


def shapes(ctx: BenchContext) -> list:
    g = GRID["quick" if ctx.quick else "full"]
    return [
        (kv_len, batch, group)
        for group in g["group"]
        for batch in g["batch"]
        for kv_len in g["kv_len"]
        if kv_bytes(batch, kv_len, HEADS // group) <= 0.5 * ctx.memory_budget
    ]


def _builder(ctx: BenchContext, impl: str, kv_len: int, batch: int, group: int, module=None):
    def build():
        b = ctx.backend
        torch = b.torch
        kv_heads = HEADS // group
        k = b.randn(batch, kv_heads, kv_len, HEAD_DIM, dtype=torch.bfloat16)
        v = b.randn(batch, kv_heads, kv_len, HEAD_DIM, dtype=torch.bfloat16)
        if impl == "triton":
            q = b.randn(batch, HEADS, HEAD_DIM, dtype=torch.bfloat16)
            lens = torch.full((batch,), kv_len, dtype=torch.int32, device=b.device)
            return lambda: module.decode_attention(q, k, v, lens, check_values=False)
        q = b.randn(batch, kv_heads, group, HEAD_DIM, dtype=torch.bfloat16)  # GQA packed as queries
        sdpa = torch.nn.functional.scaled_dot_product_attention
        return lambda: sdpa(q, k, v)

    return build


def cases(ctx: BenchContext, module=None) -> list:
    out = []
    for kv_len, batch, group in shapes(ctx):
        w = work(ctx.hw, batch, kv_len, group)
        for impl in IMPLS:
            shape = {"impl": impl, "kv_len": kv_len, "batch": batch, "group": group}
            build = _builder(ctx, impl, kv_len, batch, group, module)
            out.append(Case(shape, w, build, compile_s=TRITON_COMPILE_S if impl == "triton" else 0.0))
    return out


def bench(timer: Timer, ctx: BenchContext) -> list:
    module, unavailable = optional_kernel(ctx, "decode_attention")
    return run_cases(
        timer, ctx, cases(ctx, module), skip=lambda c: unavailable if c.shape["impl"] == "triton" else None
    )
