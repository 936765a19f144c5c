"""Decode attention over an int8 / int4 KV cache (roofline.kernels.quant_decode_attention).

Same shapes as `attention_decode` (32 query heads of 128, GQA group 4), codes and per-group fp16
scale and zero point as the kv_quant method stores them. Bytes use the simulator's quantised KV
size (bits / 8 + `SCALE_BYTES_PER_GROUP` / group_size per element) plus q in and o out; efficiency
is against HBM bandwidth, x = bytes moved. Raw points only (no curve kind in the profile format).
"""

from __future__ import annotations

from roofline.api import SCALE_BYTES_PER_GROUP, attention_flops
from roofline.profilers.microbench.common import BenchContext, Case, optional_kernel, run_cases, skipped_group
from roofline.profilers.timing import Timer, Work

HEADS, HEAD_DIM, GROUP = 32, 128, 4
TRITON_COMPILE_S = 0.5  # budget per point for first-call compiles (estimates only)
GRID = {
    "full": {
        "kv_len": (4096, 16384, 65536, 131072),
        "batch": (1, 8, 32),
        "bits": (8, 4),
        "group_size": (32, 128),
    },
    "quick": {"kv_len": (4096, 32768, 131072), "batch": (1, 16), "bits": (8, 4), "group_size": (128,)},
}


def elem_bytes(bits: int, group_size: int) -> float:
    return bits / 8.0 + SCALE_BYTES_PER_GROUP / group_size


def work(hw, batch: int, kv_len: int, bits: int, group_size: int) -> Work:
    kv_heads = HEADS // GROUP
    total = batch * kv_len * kv_heads * 2 * HEAD_DIM * elem_bytes(bits, group_size)
    total += batch * HEADS * 2 * HEAD_DIM * 2.0  # q in, o out (bf16)
    return Work(
        "quant_decode",
        x=float(total),
        flops=float(attention_flops(batch * kv_len, HEADS, HEAD_DIM, HEAD_DIM)),
        bytes=float(total),
        peak_flops=hw.peak("bf16"),
        bandwidth=hw.memory_bandwidth,
        basis="memory",
    )


def _builder(ctx: BenchContext, module, batch: int, kv_len: int, bits: int, group_size: int):
    def build():
        b = ctx.backend
        torch = b.torch
        kv_heads = HEADS // GROUP
        width = HEAD_DIM if bits == 8 else HEAD_DIM // 2
        groups = HEAD_DIM // group_size

        def cache():  # random codes stand in for quantised values: the kernel's work does not depend on them
            codes = torch.randint(
                0, 256, (batch, kv_heads, kv_len, width), dtype=torch.uint8, device=b.device
            )
            scale = b.randn(batch, kv_heads, kv_len, groups, dtype=torch.float16)
            zero = b.randn(batch, kv_heads, kv_len, groups, dtype=torch.float16)
            return module.QuantizedKV(codes, scale, zero)

        k, v = cache(), cache()
        q = b.randn(batch, HEADS, HEAD_DIM, dtype=torch.bfloat16)
        lens = torch.full((batch,), kv_len, dtype=torch.int32, device=b.device)
        return lambda: module.quant_decode_attention(q, k, v, lens, bits=bits, check_values=False)

    return build


def cases(ctx: BenchContext, module=None) -> list:
    g = GRID["quick" if ctx.quick else "full"]
    out = []
    for bits in g["bits"]:
        for group_size in g["group_size"]:
            for batch in g["batch"]:
                for kv_len in g["kv_len"]:
                    w = work(ctx.hw, batch, kv_len, bits, group_size)
                    if w.bytes > 0.5 * ctx.memory_budget:
                        continue
                    shape = {
                        "bits": bits,
                        "group_size": group_size,
                        "kv_len": kv_len,
                        "batch": batch,
                        "group": GROUP,
                    }
                    build = _builder(ctx, module, batch, kv_len, bits, group_size)
                    out.append(Case(shape, w, build, compile_s=TRITON_COMPILE_S))
    return out


def bench(timer: Timer, ctx: BenchContext) -> list:
    module, unavailable = optional_kernel(ctx, "quant_decode_attention")
    if unavailable:
        return skipped_group(unavailable)
    return run_cases(timer, ctx, cases(ctx, module))
