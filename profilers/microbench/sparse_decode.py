"""Quest page-top-k decode attention (roofline.kernels.sparse_decode_attention) at several token budgets.

One timed call is a whole Quest step: score every page from its min/max key metadata (kept up to
date by the serving system, so built once outside the timing), pick the top budget / page_size
pages per KV head, attend over them. Shapes as `attention_decode` (32 query heads of 128, GQA group
4, bf16, pages of 16 tokens). Bytes as the simulator counts Quest: the selected tokens' K/V, the page
metadata (one token's K+V per page and KV head) and q in, o out; FLOPs: attention over the selected
tokens plus the two scoring matmuls. Efficiency against HBM bandwidth, x = bytes. Raw points only.
"""

from __future__ import annotations

from roofline.api import attention_flops, matmul_flops
from roofline.profilers.microbench.common import BenchContext, Case, optional_kernel, run_cases, skipped_group
from roofline.profilers.timing import Timer, Work

HEADS, HEAD_DIM, GROUP, PAGE_SIZE = 32, 128, 4, 16
TRITON_COMPILE_S = 0.5
GRID = {
    "full": {"kv_len": (32768, 131072), "batch": (1, 8, 32), "budget": (256, 1024, 4096, 16384)},
    "quick": {"kv_len": (131072,), "batch": (1, 8), "budget": (512, 2048, 8192)},
}


def work(hw, batch: int, kv_len: int, budget: int) -> Work:
    kv_heads = HEADS // GROUP
    pages = -(-kv_len // PAGE_SIZE)
    selected = min(-(-budget // PAGE_SIZE) * PAGE_SIZE, kv_len)
    per_token = kv_heads * 2 * HEAD_DIM * 2.0  # K and V, bf16
    total = batch * (selected + pages) * per_token + batch * HEADS * 2 * HEAD_DIM * 2.0
    flops = attention_flops(batch * selected, HEADS, HEAD_DIM, HEAD_DIM) + 2 * matmul_flops(
        batch * HEADS, pages, HEAD_DIM
    )
    return Work(
        "sparse_decode",
        x=float(total),
        flops=float(flops),
        bytes=float(total),
        peak_flops=hw.peak("bf16"),
        bandwidth=hw.memory_bandwidth,
        basis="memory",
    )


def _builder(ctx: BenchContext, module, batch: int, kv_len: int, budget: int):
    def build():
        b = ctx.backend
        torch = b.torch
        kv_heads = HEADS // GROUP
        k = b.randn(batch, kv_heads, kv_len, HEAD_DIM, dtype=torch.bfloat16)
        v = b.randn(batch, kv_heads, kv_len, HEAD_DIM, dtype=torch.bfloat16)
        q = b.randn(batch, HEADS, HEAD_DIM, dtype=torch.bfloat16)
        lens = torch.full((batch,), kv_len, dtype=torch.int32, device=b.device)
        metadata = module.page_metadata(k, PAGE_SIZE, lens)
        return lambda: module.sparse_decode_attention(
            q, k, v, lens, PAGE_SIZE, budget, metadata=metadata, check_values=False
        )

    return build


def cases(ctx: BenchContext, module=None) -> list:
    g = GRID["quick" if ctx.quick else "full"]
    out = []
    for batch in g["batch"]:
        for kv_len in g["kv_len"]:
            # the whole cache is built (3x: K, V and page_metadata's padded copy while it runs)
            if 3 * batch * kv_len * (HEADS // GROUP) * 2 * HEAD_DIM * 2.0 > ctx.memory_budget:
                continue
            for budget in g["budget"]:
                shape = {
                    "budget": budget,
                    "page_size": PAGE_SIZE,
                    "kv_len": kv_len,
                    "batch": batch,
                    "group": GROUP,
                }
                build = _builder(ctx, module, batch, kv_len, budget)
                out.append(
                    Case(shape, work(ctx.hw, batch, kv_len, budget), build, compile_s=TRITON_COMPILE_S)
                )
    return out


def bench(timer: Timer, ctx: BenchContext) -> list:
    module, unavailable = optional_kernel(ctx, "sparse_decode_attention")
    if unavailable:
        return skipped_group(unavailable)
    return run_cases(timer, ctx, cases(ctx, module))
