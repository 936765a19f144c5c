"""Ops, the unit of cost, and their roofline time — including the exact decode integral.

An Op carries FLOPs and HBM bytes (arrays over sweep points), the attainable compute and memory
rates (peak x efficiency), how many times it runs (layers x passes) and how many kernels each run
launches. In decode, FLOPs and bytes of attention grow with the KV length L; they are `KVLinear`
expressions `c0 + lin*L + sum_j coef_j*min(L, window_j)`, so the mean step time over the output —
`mean_L max(F(L)/Rc, B(L)/Rm)` — integrates in closed form (piecewise affine, split at every window
and at the compute/memory crossover). No loop over tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COMPUTE, MEMORY, COMM, HOST, FRAMEWORK = 0, 1, 2, 3, 4
BOUND_NAMES = ("compute", "memory", "communication", "host-link", "framework")
# what bounds an op that runs beside the GPU's compute stream, by its stream
# (`sync`: host time the GPU waits for, never hidden: an implementation that synchronises with the
# host while it launches, e.g. MInference's per-head loop)
STREAM_BOUND = {
    "comm": COMM,
    "host": HOST,
    "cpu": FRAMEWORK,
    "relay": FRAMEWORK,
    "dispatch": FRAMEWORK,
    "sync": FRAMEWORK,
}


def _mean_min(a, b, w):
    """Exact mean of min(L, w) over L in [a, b] (min(a, w) where b == a)."""
    span = b - a
    lo_end = np.minimum(b, w)
    int_lo = np.where(lo_end > a, (lo_end**2 - a**2) / 2.0, 0.0)
    hi_start = np.maximum(a, np.minimum(w, b))
    int_hi = np.where(b > hi_start, np.where(np.isfinite(w), w, 0.0) * (b - hi_start), 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(span > 0, (int_lo + int_hi) / np.where(span > 0, span, 1.0), np.minimum(a, w))


@dataclass(frozen=True)
class KVLinear:
    """q(L) = c0 + lin*L + sum_j coef_j * min(L, window_j): piecewise affine in the KV length L.

    Windows may be scalars or arrays over sweep points (e.g. a budget offset by the prompt length).
    Expressions add and scale, so methods can compose them.
    """

    c0: object = 0.0
    lin: object = 0.0
    clips: tuple = ()  # ((coef, window), ...)

    def at(self, L):
        out = self.c0 + self.lin * L
        for coef, w in self.clips:
            out = out + coef * np.minimum(L, w)
        return out

    def mean(self, a, b):
        """Exact mean over L in [a, b] (value at a where b == a)."""
        out = self.c0 + self.lin * (a + b) / 2.0
        for coef, w in self.clips:
            out = out + coef * _mean_min(a, b, w)
        return out

    @property
    def windows(self) -> list:
        return [w for _, w in self.clips]

    def __add__(self, other):
        other = other if isinstance(other, KVLinear) else KVLinear(other)
        return KVLinear(self.c0 + other.c0, self.lin + other.lin, self.clips + other.clips)

    __radd__ = __add__

    def __mul__(self, k):
        return KVLinear(self.c0 * k, self.lin * k, tuple((c * k, w) for c, w in self.clips))

    __rmul__ = __mul__

    def per_length(self) -> KVLinear:
        """The same expression with a trailing axis on every coefficient and window, so that `at`
        of an array of n lengths gives (points..., n): each point's value at each length."""

        def last(v):
            return np.asarray(v, dtype=float)[..., None]

        return KVLinear(last(self.c0), last(self.lin), tuple((last(c), last(w)) for c, w in self.clips))

    def restricted(self, lo: float, hi: float) -> KVLinear:
        """The same function on L in [lo, hi]: clips whose (scalar) window lies outside fold into
        the constant (window <= lo: min(L, w) = w) or the slope (window >= hi: min(L, w) = L)."""
        if not self.clips:
            return self
        c0, lin, kept = self.c0, self.lin, []
        for coef, w in self.clips:
            if np.ndim(w) == 0 and w <= lo:
                c0 = c0 + coef * w
            elif np.ndim(w) == 0 and w >= hi:
                lin = lin + coef
            else:
                kept.append((coef, w))
        return KVLinear(c0, lin, tuple(kept))


def value_at(q, L):
    """q at KV length L: a KVLinear evaluated there, anything else as it is."""
    return q.at(L) if isinstance(q, KVLinear) else q


def kv_edges(a, b, windows: list) -> list:
    """Breakpoints of [a, b] in order: a, then at each point the windows strictly inside (a, b) in
    increasing order (b once a point has no more), then b. On each interval between consecutive
    edges every KVLinear with these windows is affine. A window at or outside [a, b] bends nothing
    inside it, and the intervals that padding with b adds are empty, so an integral over the edges
    is the same as over every window clipped into [a, b]; a sweep whose KV ranges each cross few
    of many windows (a measured kernel's grid nodes) evaluates few edges."""
    if not windows:
        return [a, b]
    *ws, a_, b_ = np.broadcast_arrays(*[np.asarray(w, dtype=float) for w in windows], a, b)
    stacked = np.stack(ws)
    inside = (stacked > a_) & (stacked < b_)
    stacked = np.sort(np.where(inside, stacked, np.inf), axis=0)
    k = int(inside.sum(axis=0).max()) if inside.size else 0
    return [a, *np.minimum(stacked[:k], b_), b]


def _integral_pos_affine(d0, d1, span):
    """Integral of max(0, d(x)) over an interval of length span where d is affine, d0 -> d1."""
    same_sign = d0 * d1 >= 0
    both = np.where(d0 + d1 > 0, 0.5 * (d0 + d1) * span, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):  # d0 == d1 only where same_sign
        cross = 0.5 * (np.maximum(d0, 0) ** 2 + np.maximum(d1, 0) ** 2) / np.abs(d0 - d1) * span
    return np.where(same_sign, both, cross)


def integral_max_affine(f0, f1, g0, g1, span):
    """Exact integral of max(f, g) over an interval where f and g are affine (endpoint values)."""
    return 0.5 * (f0 + f1) * span + _integral_pos_affine(g0 - f0, g1 - f1, span)


@dataclass(kw_only=True)
class Op:
    """One operation of a phase (summed over `count` identical layers/passes). Keyword-only: every
    builder names what each number is."""

    name: str
    kind: str
    flops: object  # array or KVLinear (per run)
    bytes: object  # array or KVLinear (HBM bytes read + written, per run)
    compute_rate: object = np.inf  # attainable FLOP/s (peak x efficiency)
    memory_rate: object = np.inf  # attainable bytes/s (bandwidth x efficiency)
    count: object = 1.0  # runs (layers x passes)
    kernels: float = 1.0  # kernel launches per run
    fixed_s: object = 0.0  # time not on the roofline (communication), per run
    latency_s: object = 0.0  # a kernel's fixed time beyond its launch, per run (not per sequence)
    # a measured kernel's memory-side time per run (seconds, array or KVLinear in L), in place of
    # bytes / memory_rate; `bytes` still counts the traffic (simulator/decode_time.py)
    memory_time: object = None
    group: tuple = ()  # (layer-group label, layers) the op runs in; () for the model's edges
    stream: str = "compute"

    def memory_s(self, L=None):
        """Memory-side seconds per run at KV length L: the measured kernel time where the op has one,
        else its bytes over the memory rate."""
        if self.memory_time is not None:
            return value_at(self.memory_time, L)
        return value_at(self.bytes, L) / self.memory_rate


def host_transfer(name, bytes, host_rate, count, *, stream="host", kernels=1.0) -> Op:
    """Bytes over the host link (PCIe/C2C): no FLOPs, bound by `host_rate` alone. `stream="host"`
    overlaps with compute; `stream="compute"` is a transfer the step must wait for."""
    return Op(
        name=name,
        kind="host_transfer",
        flops=0.0,
        bytes=bytes,
        memory_rate=host_rate,
        count=count,
        kernels=kernels,
        stream=stream,
    )


@dataclass(frozen=True)
class OpCost:
    name: str
    kind: str
    time_s: np.ndarray  # total over count
    flops: np.ndarray
    bytes: np.ndarray
    bound: np.ndarray  # one bound index, or per point COMPUTE / MEMORY (cost_op)
    stream: str
    group: tuple = ()  # Op.group


def _as_kv(q) -> KVLinear:
    return q if isinstance(q, KVLinear) else KVLinear(q)


def _mean_time_over_kv(f: KVLinear, m: KVLinear, rc, rm, a, b):
    """Exact mean of max(f(L)/rc, m(L)/rm) over L in [a, b] (the value at a when b == a)."""
    span = b - a
    edges = kv_edges(a, b, f.windows + m.windows)
    fv = [f.at(x) / rc for x in edges]  # each edge read once, not once per side (edges[0] is a)
    mv = [m.at(x) / rm for x in edges]
    integral = 0.0
    for i in range(len(edges) - 1):
        integral = integral + integral_max_affine(fv[i], fv[i + 1], mv[i], mv[i + 1], edges[i + 1] - edges[i])
    with np.errstate(invalid="ignore", divide="ignore"):
        point = np.maximum(fv[0], mv[0])
        return np.where(span > 0, integral / np.where(span > 0, span, 1.0), point)


def cost_op(op: Op, overhead_s, kv_range=None) -> OpCost:
    """Roofline time of an op; with kv_range=(a, b), the exact mean over KV length in [a, b]."""
    measured = op.memory_time is not None  # memory side: a measured time, not bytes / rate
    kv_dependent = any(isinstance(q, KVLinear) for q in (op.flops, op.bytes, op.memory_time))
    if kv_range is not None and kv_dependent:
        a, b = kv_range
        lo, hi = float(np.min(a)), float(np.max(b))
        f, m = _as_kv(op.flops).restricted(lo, hi), _as_kv(op.bytes)
        t, rm = (_as_kv(op.memory_time).restricted(lo, hi), 1.0) if measured else (m, op.memory_rate)
        roof = _mean_time_over_kv(f, t, op.compute_rate, rm, a, b)
        flops, byts = f.mean(a, b), m.mean(a, b)
        mid = (a + b) / 2.0
        compute_bound = f.at(mid) / op.compute_rate >= t.at(mid) / rm
    else:
        at = None if kv_range is None else kv_range[0]
        flops, byts = value_at(op.flops, at), value_at(op.bytes, at)
        tc = flops / op.compute_rate
        tm = op.memory_s(at)
        roof = np.maximum(tc, tm)
        compute_bound = tc >= tm
    if op.stream in STREAM_BOUND:
        bound = STREAM_BOUND[op.stream]
    else:
        bound = (
            np.where(compute_bound, COMPUTE, MEMORY)
            if np.ndim(compute_bound)
            else (COMPUTE if compute_bound else MEMORY)
        )
    time_s = op.count * (roof + op.kernels * overhead_s + op.fixed_s + op.latency_s)
    return OpCost(op.name, op.kind, time_s, op.count * flops, op.count * byts, bound, op.stream, op.group)
