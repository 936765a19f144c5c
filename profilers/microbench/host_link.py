"""Host link: pinned host <-> device copies (cudaMemcpyAsync through torch `copy_(non_blocking=True)`).

Efficiency is against the SKU's datasheet host-link bandwidth per direction (the figure behind the
simulator's HOST_LINK_EFFICIENCY), x = bytes copied. Raw points only.
"""

from __future__ import annotations

from roofline.profilers.microbench.common import BenchContext, Case, run_cases
from roofline.profilers.timing import Timer, Work

KIB = 2**10
GRID = {
    "full": tuple(64 * KIB * 4**i for i in range(8)),  # 64 KiB .. 1 GiB
    "quick": (2**20, 16 * 2**20, 256 * 2**20),
}
DIRECTIONS = ("h2d", "d2h")


def work(hw, nbytes: int) -> Work:
    return Work(
        "host_link", x=float(nbytes), bytes=float(nbytes), bandwidth=hw.host_link_bandwidth, basis="memory"
    )


def _builder(ctx: BenchContext, direction: str, nbytes: int):
    def build():
        b = ctx.backend
        torch = b.torch
        host = b.host_pinned(nbytes, dtype=torch.uint8)
        dev = b.empty(nbytes, dtype=torch.uint8)
        if direction == "h2d":
            return lambda: dev.copy_(host, non_blocking=True)
        return lambda: host.copy_(dev, non_blocking=True)

    return build


def cases(ctx: BenchContext) -> list:
    return [
        Case({"direction": d, "bytes": n}, work(ctx.hw, n), _builder(ctx, d, n))
        for d in DIRECTIONS
        for n in GRID["quick" if ctx.quick else "full"]
    ]


def bench(timer: Timer, ctx: BenchContext) -> list:
    return run_cases(timer, ctx, cases(ctx))
