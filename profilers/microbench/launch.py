"""Kernel overhead: the time of a kernel that does (almost) nothing.

`fill_1`: torch filling a one-element tensor, timed per call like every other point (CUDA events
around the call: launch latency on the device plus the kernel's tail). Its median is the profile's
`kernel_overhead_s`, the per-kernel constant the simulator adds to every op. `fill_1 x 100`: 100
launches back to back in one timed call, per launch: the eager launch rate when the host, not the
GPU, is the bottleneck (recorded, not used by the simulator). `triton_empty`: an empty Triton kernel
(one program), for comparison with kernels launched through Triton.
"""

from __future__ import annotations

from roofline.profilers.microbench.common import BenchContext, Case, first_line, measure
from roofline.profilers.timing import Timer, Work

OVERHEAD_KERNEL = "fill_1"
LOOP = 100


def _fill(ctx: BenchContext, launches: int):
    def build():
        b = ctx.backend
        x = b.empty(1, dtype=b.torch.float32)
        if launches == 1:
            return lambda: x.fill_(1.0)

        def loop():
            for _ in range(launches):
                x.fill_(1.0)

        return loop

    return build


_EMPTY = None


def _triton_empty(ctx: BenchContext):
    def build():
        global _EMPTY
        if _EMPTY is None:
            import triton

            @triton.jit
            def empty_kernel(x_ptr):
                pass

            _EMPTY = empty_kernel
        x = ctx.backend.empty(1, dtype=ctx.backend.torch.float32)
        return lambda: _EMPTY[(1,)](x)

    return build


def cases(ctx: BenchContext) -> list:
    return [
        Case({"kernel": OVERHEAD_KERNEL, "launches": 1}, Work("launch", x=1.0, basis="none"), _fill(ctx, 1)),
        Case(
            {"kernel": OVERHEAD_KERNEL, "launches": LOOP},
            Work("launch", x=1.0, repeat=LOOP, basis="none"),
            _fill(ctx, LOOP),
        ),
        Case(
            {"kernel": "triton_empty", "launches": 1}, Work("launch", x=1.0, basis="none"), _triton_empty(ctx)
        ),
    ]


def bench(timer: Timer, ctx: BenchContext) -> list:
    out = []
    all_cases = cases(ctx)
    for i, case in enumerate(all_cases):
        if case.shape["kernel"] == "triton_empty" and not ctx.backend.is_cuda:
            out.append(
                {
                    **case.shape,
                    "skipped": f"Triton kernels need a CUDA device (backend: {ctx.backend.device})",
                }
            )
        else:
            try:
                out.append(measure(timer, ctx, case))
            except ImportError as exc:
                out.append({**case.shape, "skipped": f"triton is not importable ({first_line(exc)})"})
        if ctx.progress is not None:
            ctx.progress(i + 1, len(all_cases))
    return out


def kernel_overhead(points: list) -> float | None:
    """The profile's kernel_overhead_s: the single-launch fill_1 median, if it was measured."""
    for p in points:
        if p.get("kernel") == OVERHEAD_KERNEL and p.get("launches") == 1 and "seconds" in p:
            return float(p["seconds"])
    return None
