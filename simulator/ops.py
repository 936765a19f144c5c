"""Ops, the unit of cost, and their roofline time — including the exact decode integral.

An Op carries FLOPs and HBM bytes (arrays over sweep points), the attainable compute and memory
rates (peak x efficiency), how many times it runs (layers x passes) and how many kernels each run
launches. In decode, FLOPs and bytes of attention grow with the KV length L; they are `KVLinear`
expressions `c0 + lin*L + clip*min(L, window)`, so the mean step time over the output —
`mean_L max(F(L)/Rc, B(L)/Rm)` — integrates in closed form (piecewise affine, split at the window
and at the compute/memory crossover). No loop over tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COMPUTE, MEMORY, COMM = 0, 1, 2
BOUND_NAMES = ("compute", "memory", "communication")


@dataclass(frozen=True)
class KVLinear:
    """q(L) = c0 + lin*L + clip*min(L, window); window = inf means no clipping."""

    c0: object
    lin: object = 0.0
    clip: object = 0.0
    window: object = np.inf

    def at(self, L):
        return self.c0 + self.lin * L + self.clip * np.minimum(L, self.window)

    def mean(self, a, b):
        """Exact mean over L in [a, b] (value at a where b == a)."""
        span = b - a
        w = self.window
        lo_end = np.minimum(b, w)
        int_lo = np.where(lo_end > a, (lo_end**2 - a**2) / 2.0, 0.0)
        hi_start = np.maximum(a, np.minimum(w, b))
        int_hi = np.where(b > hi_start, np.where(np.isfinite(w), w, 0.0) * (b - hi_start), 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_clip = np.where(
                span > 0, (int_lo + int_hi) / np.where(span > 0, span, 1.0), np.minimum(a, w)
            )
        return self.c0 + self.lin * (a + b) / 2.0 + self.clip * mean_clip

    def segments(self, a, b):
        """[(x0, x1, intercept, slope)]: the affine pieces of q over [a, b]."""
        w = self.window
        x_mid = np.minimum(b, w)
        finite_w = np.where(np.isfinite(w), w, 0.0)
        return [
            (a, np.maximum(x_mid, a), self.c0, self.lin + self.clip),
            (np.maximum(a, x_mid), b, self.c0 + self.clip * finite_w, self.lin),
        ]


def _integral_pos_affine(d0, d1, span):
    """Integral of max(0, d(x)) over an interval of length span where d is affine, d0 -> d1."""
    same_sign = d0 * d1 >= 0
    both = np.where(d0 + d1 > 0, 0.5 * (d0 + d1) * span, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        cross = 0.5 * (np.maximum(d0, 0) ** 2 + np.maximum(d1, 0) ** 2) / np.abs(d0 - d1) * span
    return np.where(same_sign, both, np.nan_to_num(cross))


def integral_max_affine(f0, f1, g0, g1, span):
    """Exact integral of max(f, g) over an interval where f and g are affine (endpoint values)."""
    return 0.5 * (f0 + f1) * span + _integral_pos_affine(g0 - f0, g1 - f1, span)


@dataclass
class Op:
    """One operation of a phase (summed over `count` identical layers/passes)."""

    name: str
    kind: str
    flops: object  # array or KVLinear (per run)
    bytes: object  # array or KVLinear (HBM bytes read + written, per run)
    compute_rate: object = np.inf  # attainable FLOP/s (peak x efficiency)
    memory_rate: object = np.inf  # attainable bytes/s (bandwidth x efficiency)
    count: object = 1.0  # runs (layers x passes)
    kernels: float = 1.0  # kernel launches per run
    fixed_s: object = 0.0  # time not on the roofline (communication), per run
    stream: str = "compute"


@dataclass
class OpCost:
    name: str
    kind: str
    time_s: np.ndarray  # total over count
    flops: np.ndarray
    bytes: np.ndarray
    bound: np.ndarray  # COMPUTE / MEMORY / COMM per point
    stream: str


def _as_kv(q) -> KVLinear:
    return q if isinstance(q, KVLinear) else KVLinear(q)


def _mean_time_over_kv(f: KVLinear, m: KVLinear, rc, rm, a, b):
    """Exact mean of max(f(L)/rc, m(L)/rm) over L in [a, b] (the value at a when b == a)."""
    span = b - a
    segs_f, segs_m = f.segments(a, b), m.segments(a, b)
    if np.all(np.isinf(f.window)) and np.all(np.isinf(m.window)):
        segs_f, segs_m = segs_f[:1], segs_m[:1]  # no window: one affine piece
    integral = 0.0
    for (x0, x1, fi, fs), (_, _, mi, ms) in zip(segs_f, segs_m):
        integral = integral + integral_max_affine(
            (fi + fs * x0) / rc, (fi + fs * x1) / rc, (mi + ms * x0) / rm, (mi + ms * x1) / rm, x1 - x0
        )
    with np.errstate(invalid="ignore", divide="ignore"):
        point = np.maximum(f.at(a) / rc, m.at(a) / rm)
        return np.where(span > 0, integral / np.where(span > 0, span, 1.0), point)


def cost_op(op: Op, overhead_s, kv_range=None) -> OpCost:
    """Roofline time of an op; with kv_range=(a, b), the exact mean over KV length in [a, b]."""
    kv_dependent = isinstance(op.flops, KVLinear) or isinstance(op.bytes, KVLinear)
    if kv_range is not None and kv_dependent:
        a, b = kv_range
        f, m = _as_kv(op.flops), _as_kv(op.bytes)
        roof = _mean_time_over_kv(f, m, op.compute_rate, op.memory_rate, a, b)
        flops, byts = f.mean(a, b), m.mean(a, b)
        mid = (a + b) / 2.0
        compute_bound = f.at(mid) / op.compute_rate >= m.at(mid) / op.memory_rate
    else:
        flops = op.flops.at(kv_range[0]) if isinstance(op.flops, KVLinear) else op.flops
        byts = op.bytes.at(kv_range[0]) if isinstance(op.bytes, KVLinear) else op.bytes
        tc = flops / op.compute_rate
        tm = byts / op.memory_rate
        roof = np.maximum(tc, tm)
        compute_bound = tc >= tm
    if op.stream == "comm":
        bound = COMM
    else:
        bound = (
            np.where(compute_bound, COMPUTE, MEMORY)
            if np.ndim(compute_bound)
            else (COMPUTE if compute_bound else MEMORY)
        )
    time_s = op.count * (roof + op.kernels * overhead_s + op.fixed_s)
    return OpCost(op.name, op.kind, time_s, op.count * flops, op.count * byts, bound, op.stream)
