"""What every microbenchmark group shares: the tensor backend, the run context, cases and points.

A group module defines `cases(ctx) -> list[Case]` (the grid: shapes and `Work`, no tensors) and
`bench(timer, ctx) -> list[dict]` (the raw points). A `Case` builds its inputs only when it is
measured, so the grid can be listed, counted and costed without a GPU (`estimate_seconds`).

The backend is injectable: `TorchBackend("cuda")` on the GPU; `TorchBackend("meta")` in tests,
where tensors have shapes but no storage, every torch op only checks shapes, and a `FakeTimer`
supplies the times. Out-of-memory at a point is recorded as a skipped point with the reason.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from roofline.profilers.timing import Timer, Work

ERROR_PREFIX = "error: "  # skipped-point reasons that are errors rather than out of memory


class KernelUnavailable(RuntimeError):
    """A roofline.kernels module that cannot run here (not importable, or no CUDA device)."""


class TorchBackend:
    """Builds the benchmark tensors on one torch device ("cuda", or "meta" for shape-only tests)."""

    def __init__(self, device: str = "cuda"):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.oom_errors = (getattr(torch, "OutOfMemoryError", None) or torch.cuda.OutOfMemoryError,)
        self._gemm_dtypes = None

    @property
    def is_cuda(self) -> bool:
        return self.device.type == "cuda"

    def randn(self, *shape, dtype):
        return self.torch.randn(*shape, dtype=dtype, device=self.device)

    def empty(self, *shape, dtype):
        return self.torch.empty(*shape, dtype=dtype, device=self.device)

    def host_pinned(self, *shape, dtype):
        """Page-locked host memory (on meta: a meta tensor, nothing is allocated)."""
        if self.is_cuda:
            return self.torch.empty(*shape, dtype=dtype, pin_memory=True)
        return self.torch.empty(*shape, dtype=dtype, device=self.device)

    def release(self) -> None:
        """Hand cached blocks back after a point, so the next point starts from a clean pool."""
        if self.is_cuda:
            self.torch.cuda.empty_cache()

    def sdpa_flash(self):
        """Restrict torch SDPA to the FlashAttention backend (a no-op context on meta)."""
        if not self.is_cuda:
            return contextlib.nullcontext()
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel(SDPBackend.FLASH_ATTENTION)

    def capability(self) -> tuple | None:
        return self.torch.cuda.get_device_capability(self.device) if self.is_cuda else None

    def fp8_dtype(self):
        """The e4m3 format torch uses for fp8 GEMMs here (fnuz on ROCm)."""
        torch = self.torch
        if getattr(torch.version, "hip", None):
            return getattr(torch, "float8_e4m3fnuz", None)
        return getattr(torch, "float8_e4m3fn", None)

    def gemm_dtypes(self) -> dict:
        """{bf16|fp16|fp8: None if supported, else the reason}: fp8 needs torch._scaled_mm and a GPU
        with fp8 tensor cores (compute capability >= 8.9), checked with one small call."""
        if self._gemm_dtypes is None:
            torch, out = self.torch, {"bf16": None, "fp16": None}
            if self.is_cuda and not torch.cuda.is_bf16_supported():
                out["bf16"] = "this GPU has no bf16 tensor cores"
            fp8 = self.fp8_dtype()
            cap = self.capability()
            if fp8 is None or not hasattr(torch, "_scaled_mm"):
                out["fp8"] = f"torch {torch.__version__} has no fp8 GEMM (torch._scaled_mm / float8 dtype)"
            elif cap is not None and not getattr(torch.version, "hip", None) and cap < (8, 9):
                out["fp8"] = f"compute capability {cap[0]}.{cap[1]} < 8.9: no fp8 tensor cores"
            else:
                try:
                    a = self.randn(32, 32, dtype=torch.bfloat16).to(fp8)
                    one = torch.ones((), dtype=torch.float32, device=self.device)
                    torch._scaled_mm(a, a.t(), scale_a=one, scale_b=one, out_dtype=torch.bfloat16)
                    out["fp8"] = None
                except (RuntimeError, TypeError, NotImplementedError) as exc:
                    out["fp8"] = f"torch._scaled_mm failed: {first_line(exc)}"
            self._gemm_dtypes = out
        return self._gemm_dtypes


@dataclass
class BenchContext:
    """Everything a group needs besides the timer.

    hw: the roofline.simulator.hardware.Hardware whose datasheet peaks define efficiency;
    quick: the reduced grid; kernels: module overrides by name (tests), else roofline.kernels.<name>;
    progress: called as progress(done, total) after each point.
    """

    backend: TorchBackend
    hw: object
    quick: bool = False
    kernels: dict | None = None
    progress: Callable[[int, int], None] | None = None
    memory_budget: float = field(default=0.0)  # bytes one point may allocate; 0: half the SKU's memory

    def __post_init__(self):
        if not self.memory_budget:
            self.memory_budget = 0.5 * float(self.hw.memory_bytes)

    def kernel(self, name: str):
        """roofline.kernels.<name>, or KernelUnavailable saying why not."""
        if self.kernels is not None and name in self.kernels:
            return self.kernels[name]
        if not self.backend.is_cuda:
            raise KernelUnavailable(
                f"roofline.kernels.{name}: Triton kernels need a CUDA device (backend: {self.backend.device})"
            )
        try:
            return importlib.import_module(f"roofline.kernels.{name}")
        except ImportError as exc:
            raise KernelUnavailable(
                f"roofline.kernels.{name} is not importable ({first_line(exc)})"
            ) from None


@dataclass(frozen=True)
class Case:
    """One point of a grid: `shape` (compact scalars that identify it), its `Work`, and `build`,
    which allocates the inputs and returns the zero-argument call to time."""

    shape: dict
    work: Work
    build: Callable[[], Callable[[], object]]
    compile_s: float = 0.0  # first-call compile time to budget for (Triton kernels); estimates only


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def sig(value: float, digits: int = 4) -> float:
    """Round to `digits` significant figures (raw points stay compact in YAML)."""
    return float(f"{float(value):.{digits}g}")


def point(case: Case, seconds: float) -> dict:
    """A raw point: shape, x, per-launch median seconds, achieved FLOP/s and bytes/s, efficiency."""
    w = case.work
    per_call = seconds / max(w.repeat, 1)
    out = dict(case.shape)
    if w.basis != "none":
        out["x"] = sig(w.x)
    out["seconds"] = sig(per_call)
    if w.flops > 0:
        out["flops_per_s"] = sig(w.flops / per_call)
    if w.bytes > 0:
        out["bytes_per_s"] = sig(w.bytes / per_call)
    basis = w.basis
    if basis == "auto":
        basis = "compute" if w.compute_bound else "memory"
        out["bound"] = basis
    if basis == "compute" and w.flops > 0 and w.peak_flops > 0:
        out["efficiency"] = sig(w.flops / per_call / w.peak_flops)
    elif basis == "memory" and w.bytes > 0 and w.bandwidth > 0:
        out["efficiency"] = sig(w.bytes / per_call / w.bandwidth)
    return out


def _time_case(timer: Timer, case: Case) -> float:
    fn = case.build()  # tensors live in fn's closure and die when this frame returns
    return timer(fn, case.work)


def measure(timer: Timer, ctx: BenchContext, case: Case) -> dict:
    """Time one case. Out of memory, or a RuntimeError/ValueError from torch or a kernel wrapper
    refusing the inputs, gives {**shape, skipped: reason} (the run goes on and the reason is kept);
    anything else (a bug: TypeError, AttributeError, ...) propagates and fails the group."""
    reason = None
    try:
        seconds = _time_case(timer, case)
    except ctx.backend.oom_errors as exc:
        reason = f"out of memory: {first_line(exc)}"
    except (RuntimeError, ValueError) as exc:  # a shape or dtype this library/kernel refuses here
        reason = f"{ERROR_PREFIX}{type(exc).__name__}: {first_line(exc)}"
    finally:
        ctx.backend.release()
    if reason is not None:
        return {**case.shape, "skipped": reason}
    return point(case, seconds)


def run_cases(timer: Timer, ctx: BenchContext, cases: list, skip=None) -> list:
    """Measure every case in order, reporting progress after each; `skip(case)` may return a reason
    to record the case as skipped instead (an implementation that cannot run here)."""
    out = []
    for i, case in enumerate(cases):
        reason = skip(case) if skip is not None else None
        out.append({**case.shape, "skipped": reason} if reason else measure(timer, ctx, case))
        if ctx.progress is not None:
            ctx.progress(i + 1, len(cases))
    return out


def optional_kernel(ctx: BenchContext, name: str) -> tuple:
    """(module, None) or (None, why it cannot run here) for roofline.kernels.<name>."""
    try:
        return ctx.kernel(name), None
    except KernelUnavailable as exc:
        return None, str(exc)


def skipped_group(reason: str) -> list:
    """The raw result of a group that could not run at all (one entry saying why)."""
    return [{"skipped": reason}]


def estimate_case_seconds(case: Case, warmup_ms: float, rep_ms: float, host_s: float = 0.1) -> float:
    """Wall time do_bench spends on one case, from datasheet rates at 60% efficiency: the first call
    and a five-call estimate (untimed), then about warmup_ms + rep_ms of calls (at least one each),
    plus host_s for building the inputs, do_bench's events and syncs and freeing the memory (an
    allowance, on the safe side)."""
    w = case.work
    t = 0.0
    if w.flops > 0 and w.peak_flops > 0:
        t = max(t, w.flops / (0.6 * w.peak_flops))
    if w.bytes > 0 and w.bandwidth > 0:
        t = max(t, w.bytes / (0.6 * w.bandwidth))
    t = w.repeat * (t + 5e-6)
    return host_s + 6 * t + max(warmup_ms * 1e-3, t) + max(rep_ms * 1e-3, t)
