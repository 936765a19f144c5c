"""HBM streaming: STREAM copy (b = a) and triad (a = b + s c) in fp32, buffers of 1 MiB to 4 GiB.

Two implementations: `torch` (copy_ and add(alpha=s, out=)) and `triton` (roofline.kernels.
bandwidth_probe; recorded as skipped where it cannot be imported). Bytes moved: 2 N (copy) and 3 N
(triad) for buffers of N bytes; efficiency is against the datasheet HBM bandwidth, x = bytes moved.
The `hbm` curve is fitted to the triad points, the faster implementation per size (the published
triad measurements are what `simulator.efficiency` uses by default). Buffers whose
total would exceed the point's memory budget are left out of the grid. do_bench zeroes a 256 MiB
buffer before every timed call, so even the small buffers start out of L2.
"""

from __future__ import annotations

from roofline.profilers.microbench.common import BenchContext, Case, optional_kernel, run_cases
from roofline.profilers.timing import Timer, Work

MIB = 2**20
OPS = {"copy": 2, "triad": 3}  # buffers touched
GRID = {
    "full": tuple(MIB * 2**i for i in range(13)),  # 1 MiB .. 4 GiB
    "quick": tuple(MIB * 4**i for i in range(7)),  # 1, 4, 16, 64, 256 MiB, 1, 4 GiB
}
FIT_OP = "triad"
IMPLS = ("torch", "triton")


def work(hw, op: str, buffer_bytes: int) -> Work:
    moved = float(OPS[op] * buffer_bytes)
    return Work(
        "hbm",
        x=moved,
        flops=2.0 * buffer_bytes / 4 if op == "triad" else 0.0,
        bytes=moved,
        peak_flops=hw.peak_flops.get("fp32", 0.0),
        bandwidth=hw.memory_bandwidth,
        basis="memory",
    )


def _builder(ctx: BenchContext, impl: str, op: str, buffer_bytes: int, module=None):
    def build():
        b = ctx.backend
        torch = b.torch
        n = buffer_bytes // 4
        a = b.randn(n, dtype=torch.float32)
        if impl == "triton":
            if op == "copy":
                return lambda: module.copy(a)
            c = b.randn(n, dtype=torch.float32)
            return lambda: module.triad(a, c, 3.0)
        x = b.empty(n, dtype=torch.float32)
        if op == "copy":
            return lambda: x.copy_(a)
        c = b.randn(n, dtype=torch.float32)
        return lambda: torch.add(a, c, alpha=3.0, out=x)

    return build


def cases(ctx: BenchContext, module=None) -> list:
    return [
        Case(
            {"impl": impl, "op": op, "buffer_bytes": size},
            work(ctx.hw, op, size),
            _builder(ctx, impl, op, size, module),
            compile_s=0.1 if impl == "triton" else 0.0,
        )
        for impl in IMPLS
        for op in OPS
        for size in GRID["quick" if ctx.quick else "full"]
        if OPS[op] * size <= ctx.memory_budget
    ]


def bench(timer: Timer, ctx: BenchContext) -> list:
    module, unavailable = optional_kernel(ctx, "bandwidth_probe")
    return run_cases(
        timer, ctx, cases(ctx, module), skip=lambda c: unavailable if c.shape["impl"] == "triton" else None
    )
