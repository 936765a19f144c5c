"""Timers for the calibration microbenchmarks: what one timed call costs, as a median in seconds.

A `Timer` is called as `timer(fn, work)`: `fn` is a zero-argument callable that launches the kernel
(its tensors already built), `work` says what that call does (FLOPs and bytes by the simulator's count
functions, the curve it belongs to and that curve's x). Real timers ignore `work`; `FakeTimer` ignores
`fn` (beyond an optional shape check) and answers from a known analytical curve, so the whole
calibration pipeline, fits included, can be checked on CPU.

`CudaTimer` uses `triton.testing.do_bench` (one untimed first call, so compile and autotune are
excluded; a warm-up; the L2 cache flushed before every timed call; CUDA events around each call;
the median), and falls back to the same procedure written with torch CUDA events when Triton is
missing. Nothing here imports torch or triton until a CUDA timer is used.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from roofline.api import hill


@dataclass(frozen=True)
class Work:
    """What one timed call does, counted with `roofline.simulator.flops` (SI units).

    curve: the efficiency curve the point belongs to (gemm_bf16, attention_prefill, hbm, ...,
    or a raw-only kind such as elementwise, host_link, launch); x: that curve's size variable;
    peak_flops / bandwidth: the datasheet rates its efficiency is measured against (0 if none);
    repeat: kernel launches inside one call (the launch-rate loop); basis: which roof the point's
    efficiency is measured against.
    """

    curve: str
    x: float
    flops: float = 0.0
    bytes: float = 0.0
    peak_flops: float = 0.0
    bandwidth: float = 0.0
    repeat: int = 1
    basis: str = "auto"  # efficiency against: compute | memory | auto (the roof that binds) | none

    @property
    def compute_bound(self) -> bool:
        """Whether the compute roof binds at datasheet rates (arithmetic intensity >= ridge point)."""
        if self.flops <= 0 or self.peak_flops <= 0:
            return False
        if self.bytes <= 0 or self.bandwidth <= 0:
            return True
        return self.flops / self.peak_flops >= self.bytes / self.bandwidth


class Timer(Protocol):
    """timer(fn, work) -> median seconds of one call of fn."""

    name: str

    def __call__(self, fn: Callable[[], object], work: Work) -> float: ...


@dataclass
class CudaTimer:
    """Median of CUDA-event-timed calls with L2 flushed (triton.testing.do_bench).

    warmup_ms / rep_ms are do_bench's time budgets: about warmup_ms + rep_ms of GPU time per point,
    plus six untimed calls (the first call and do_bench's five-call estimate).
    """

    warmup_ms: float = 25.0
    rep_ms: float = 100.0
    name: str = field(default="triton.testing.do_bench", init=False)

    def __post_init__(self):
        try:
            from triton.testing import do_bench
        except ImportError:
            self._do_bench = None
            self.name = "torch CUDA events (triton missing): median, L2 flushed"
        else:
            self._do_bench = do_bench
            self.name = "triton.testing.do_bench: median, L2 flushed, first call untimed"

    def __call__(self, fn: Callable[[], object], work: Work) -> float:
        if self._do_bench is not None:
            ms = self._do_bench(fn, warmup=self.warmup_ms, rep=self.rep_ms, return_mode="median")
            return float(ms) * 1e-3
        return _events_median(fn, self.warmup_ms, self.rep_ms)


def _events_median(fn, warmup_ms: float, rep_ms: float) -> float:
    """do_bench's procedure with torch CUDA events: first call untimed, estimate, warm-up, timed calls
    each after an L2 flush (zeroing a 256 MiB buffer), median."""
    import torch

    fn()
    torch.cuda.synchronize()
    flush = torch.empty(256 * 2**20, dtype=torch.int8, device="cuda")
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(5):
        flush.zero_()
        fn()
    end.record()
    torch.cuda.synchronize()
    estimate_ms = max(start.elapsed_time(end) / 5, 1e-4)
    for _ in range(max(1, int(warmup_ms / estimate_ms))):
        fn()
    n = max(1, int(rep_ms / estimate_ms))
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    for s, e in zip(starts, ends):
        flush.zero_()
        s.record()
        fn()
        e.record()
    torch.cuda.synchronize()
    return float(np.median([s.elapsed_time(e) for s, e in zip(starts, ends)])) * 1e-3


@dataclass
class FakeTimer:
    """Answers from a known curve instead of timing: for tests on CPU.

    With e = hill(work.x, *curves[work.curve]) (`default` for curves not given), the curve applies
    to the roof of the work's basis: t = repeat * (max(flops / (peak * e), bytes / (bandwidth *
    memory_efficiency)) + overhead_s) for compute and auto, max(bytes / (bandwidth * e), flops /
    peak) for memory, just the overhead for none. With `call_fn` the call is made once (on meta
    tensors it checks shapes and costs nothing). `noise` adds relative Gaussian noise. `calls`
    counts calls per curve.
    """

    curves: dict = field(default_factory=dict)
    overhead_s: float = 5e-6
    default: tuple = (0.5, 1.0, 1.0)
    memory_efficiency: float = 1.0
    call_fn: bool = True
    noise: float = 0.0
    seed: int = 0
    name: str = "fake (analytical curves)"
    calls: Counter = field(default_factory=Counter)

    def __post_init__(self):
        self._rng = np.random.default_rng(self.seed)

    def __call__(self, fn: Callable[[], object], work: Work) -> float:
        self.calls[work.curve] += 1
        if self.call_fn:
            fn()
        e = float(hill(work.x, *self.curves.get(work.curve, self.default)))
        e_c, e_m = (1.0, e) if work.basis == "memory" else (e, self.memory_efficiency)
        compute = work.flops / (work.peak_flops * e_c) if work.flops > 0 and work.peak_flops > 0 else 0.0
        memory = work.bytes / (work.bandwidth * e_m) if work.bytes > 0 and work.bandwidth > 0 else 0.0
        busy = 0.0 if work.basis == "none" else max(compute, memory)
        t = work.repeat * (busy + self.overhead_s)
        if self.noise:
            t *= 1.0 + self._rng.normal(0.0, self.noise)
        return float(t)
