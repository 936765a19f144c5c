"""Elementwise ops as the simulator counts them: a residual add and an RMSNorm, bf16, [tokens, hidden].

Bytes are (elements in + elements out) x 2 as in `simulator.layers.elementwise` (the add reads two
tensors and writes one; the norm reads one and writes one, its weight vector counted too); FLOPs
1 per element for the add and 4 for the norm (the simulator's figure). Efficiency is against HBM
bandwidth, x = bytes moved. The norm is `torch.nn.functional.rms_norm` (eager torch, as
`roofline validate` runs). Raw points only.
"""

from __future__ import annotations

from roofline.profilers.microbench.common import BenchContext, Case, run_cases
from roofline.profilers.timing import Timer, Work

OPS = {"add": (2, 1.0), "rms_norm": (1, 4.0)}  # tensors read, FLOPs per output element
GRID = {
    "full": {"hidden": (4096, 8192), "tokens": (1, 16, 256, 4096, 32768)},
    "quick": {"hidden": (4096,), "tokens": (1, 64, 4096, 32768)},
}


def work(hw, op: str, tokens: int, hidden: int) -> Work:
    reads, flops_per = OPS[op]
    elems = tokens * hidden
    extra = hidden if op == "rms_norm" else 0  # the norm weight
    byts = (reads * elems + elems + extra) * 2.0
    return Work(
        "elementwise",
        x=byts,
        flops=flops_per * elems,
        bytes=byts,
        peak_flops=hw.peak_flops.get("fp32", 0.0),
        bandwidth=hw.memory_bandwidth,
        basis="memory",
    )


def _builder(ctx: BenchContext, op: str, tokens: int, hidden: int):
    def build():
        b = ctx.backend
        torch = b.torch
        x = b.randn(tokens, hidden, dtype=torch.bfloat16)
        out = b.empty(tokens, hidden, dtype=torch.bfloat16)
        if op == "add":
            y = b.randn(tokens, hidden, dtype=torch.bfloat16)
            return lambda: torch.add(x, y, out=out)
        w = b.randn(hidden, dtype=torch.bfloat16)
        rms_norm = torch.nn.functional.rms_norm
        return lambda: rms_norm(x, (hidden,), w, 1e-5)

    return build


def cases(ctx: BenchContext) -> list:
    g = GRID["quick" if ctx.quick else "full"]
    return [
        Case(
            {"op": op, "tokens": tokens, "hidden": hidden},
            work(ctx.hw, op, tokens, hidden),
            _builder(ctx, op, tokens, hidden),
        )
        for op in OPS
        for hidden in g["hidden"]
        for tokens in g["tokens"]
    ]


def bench(timer: Timer, ctx: BenchContext) -> list:
    return run_cases(timer, ctx, cases(ctx))
