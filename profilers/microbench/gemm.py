"""GEMM: (m x k) @ (k x n)^T like nn.Linear (weights [n, k] row-major), per dtype the GPU supports.

Grid: squares, and the projection shapes (n, k) of Llama-3.1-8B/70B against token counts m from a
single decode token to a long prefill chunk. FLOPs are `simulator.flops.matmul_flops`; bytes are the
simulator's GEMM traffic (weights n k + activations m k in, m n out). A point is compute- or
memory-bound by its arithmetic intensity against the dtype's ridge point, and its efficiency is
measured against that roof (dense peak of the dtype, or HBM bandwidth); the `gemm_<dtype>` curve is
fitted to the compute-bound points over x = cbrt(m n k). bf16/fp16 use torch.mm; fp8 (e4m3, per-
tensor scales, bf16 out) uses torch._scaled_mm where the GPU has fp8 tensor cores.
"""

from __future__ import annotations

from roofline.api import dtype_bytes, matmul_flops
from roofline.profilers.microbench.common import BenchContext, Case, run_cases, skipped_group
from roofline.profilers.timing import Timer, Work

DTYPES = ("bf16", "fp16", "fp8")
SQUARES = {"full": (256, 512, 1024, 2048, 4096, 8192, 16384), "quick": (512, 1024, 2048, 4096, 8192)}
# (n, k): Llama-3.1-8B qkv, o, gate+up, down; Llama-3.1-70B o, gate+up.
PROJECTIONS = {
    "full": ((6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336), (8192, 8192), (57344, 8192)),
    "quick": ((4096, 4096), (28672, 4096), (8192, 8192)),
}
TOKENS = {"full": (1, 4, 16, 64, 256, 1024, 4096, 16384), "quick": (1, 16, 128, 1024, 8192)}
OUT_DTYPE = {"bf16": "bf16", "fp16": "fp16", "fp8": "bf16"}


def shapes(quick: bool) -> list:
    """(m, n, k) of the grid: squares first, then projections by token count."""
    mode = "quick" if quick else "full"
    out = [(s, s, s) for s in SQUARES[mode]]
    out += [(m, n, k) for n, k in PROJECTIONS[mode] for m in TOKENS[mode]]
    return out


def gemm_bytes(m, n, k, dtype: str) -> float:
    """HBM traffic of one GEMM as the simulator counts it: inputs in `dtype`, output in OUT_DTYPE."""
    return (m * k + n * k) * dtype_bytes(dtype) + m * n * dtype_bytes(OUT_DTYPE[dtype])


def _builder(ctx: BenchContext, m: int, n: int, k: int, dtype: str):
    def build():
        torch, b = ctx.backend.torch, ctx.backend
        if dtype == "fp8":
            f8 = b.fp8_dtype()
            a = b.randn(m, k, dtype=torch.bfloat16).to(f8)
            w = b.randn(n, k, dtype=torch.bfloat16).to(f8)
            one = torch.ones((), dtype=torch.float32, device=b.device)
            wt = w.t()
            return lambda: torch._scaled_mm(a, wt, scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
        dt = torch.bfloat16 if dtype == "bf16" else torch.float16
        a, w, c = b.randn(m, k, dtype=dt), b.randn(n, k, dtype=dt), b.empty(m, n, dtype=dt)
        wt = w.t()
        return lambda: torch.mm(a, wt, out=c)

    return build


def cases(ctx: BenchContext, dtypes=None) -> list:
    """The grid for `dtypes` (default: every dtype the SKU has a tensor-core peak for)."""
    hw, out = ctx.hw, []
    for dtype in dtypes if dtypes is not None else [d for d in DTYPES if hw.has_native(d)]:
        for m, n, k in shapes(ctx.quick):
            work = Work(
                f"gemm_{dtype}",
                x=float(m * n * k) ** (1.0 / 3.0),
                flops=matmul_flops(m, n, k),
                bytes=gemm_bytes(m, n, k, dtype),
                peak_flops=hw.peak(dtype),
                bandwidth=hw.memory_bandwidth,
            )
            out.append(Case({"dtype": dtype, "m": m, "n": n, "k": k}, work, _builder(ctx, m, n, k, dtype)))
    return out


def bench(timer: Timer, ctx: BenchContext) -> list:
    supported = ctx.backend.gemm_dtypes()
    dtypes, skipped = [], []
    for dtype in DTYPES:
        reason = supported.get(dtype)
        if reason is None and not ctx.hw.has_native(dtype):
            reason = f"{ctx.hw.name} has no {dtype} tensor-core peak in its spec"
        if reason is None:
            dtypes.append(dtype)
        else:
            skipped += [{"dtype": dtype, "skipped": reason}]
    if not dtypes:
        return skipped or skipped_group("no GEMM dtype supported")
    return run_cases(timer, ctx, cases(ctx, dtypes)) + skipped
