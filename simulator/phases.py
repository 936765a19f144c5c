"""Phase totals: the costed ops of one phase (prefill, or the mean decode step) added up under the
deployment's overlap policy, with what bounds the phase and how busy it keeps the GPU.

`PhaseTotals.of(costs, ...)` is the one place where op costs become a phase time: compute-stream
ops add up; communication adds to them (`serial`) or hides behind them (`overlap`); host-link
transfers add, or overlap compute where the method prefetches (`host_overlap`); the framework's CPU
iteration adds, or hides behind the GPU's step (an overlapping scheduler). `tagged` and
`scaled` re-label and re-weight op costs (a draft model's ops, ops that run w times per token)
before totalling.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from roofline.simulator.ops import COMM, COMPUTE, FRAMEWORK, HOST, MEMORY


@dataclass(frozen=True)
class PhaseTotals:
    """One phase over the sweep points (arrays): SPEC's `prefill` / `decode` objects plus its ops."""

    time_s: object
    flops: object  # whole deployment (x tp x dp)
    bytes: object  # whole deployment
    bound: object  # index into ops.BOUND_NAMES
    mfu: object
    mbu: object
    breakdown: dict  # time by op kind
    ops: tuple = ()  # the OpCosts, for per-op tables
    exposure: dict = field(default_factory=dict)  # stream -> share of its time that extends the phase

    @classmethod
    def of(
        cls, costs, overlap: str, peak, bw, tp_pp_dp, host_overlap: bool = False, cpu_overlap: bool = False
    ) -> PhaseTotals:
        """Total `costs` (OpCosts on one GPU) under `overlap` (`serial` | `overlap`); MFU and MBU
        against `peak` FLOP/s and `bw` bytes/s per GPU (a pipeline's stages run one at a time).
        The framework's CPU work (stream `cpu`) adds to the GPU's time, or with an overlapping
        scheduler (`cpu_overlap`) hides behind it: the step is the longer of the two. Eager
        dispatch (stream `dispatch`: transformers' launches) runs beside the kernels it launches:
        the pass is the longer of the two. The breakdown
        sums to the time: a stream that overlaps what precedes it (communication, host transfers,
        CPU work) counts only the part that extends the phase, shared among its ops by their time."""
        stream_t = {
            name: sum((c.time_s for c in costs if c.stream == name), 0.0)
            for name in ("compute", "comm", "dispatch", "host", "cpu", "relay", "sync")
        }
        time_s = stream_t["compute"]
        exposed = {"compute": 1.0}
        streams = (
            ("comm", overlap == "overlap"),
            ("dispatch", True),  # eager launches from the host, while the GPU runs earlier ones
            ("host", host_overlap),
            ("cpu", cpu_overlap),
            ("relay", False),
            ("sync", False),  # host work the GPU waits for (an implementation's synchronising loop)
        )
        for name, hidden in streams:
            before, t = time_s, stream_t[name]
            time_s = np.maximum(before, t) if hidden else before + t
            with np.errstate(divide="ignore", invalid="ignore"):
                exposed[name] = np.where(t > 0, (time_s - before) / t, 0.0) if hidden else 1.0
        flops = sum((c.flops for c in costs), 0.0)
        byts = sum((c.bytes for c in costs), 0.0)
        # Each op's time is attributed to what bounds it; the phase is bound by the largest share.
        # An op's bound is one index, or per point compute or memory (ops.cost_op).
        by_bound = [0.0] * len((COMPUTE, MEMORY, COMM, HOST, FRAMEWORK))
        for c in costs:
            if np.ndim(c.bound) == 0:
                by_bound[int(c.bound)] = by_bound[int(c.bound)] + c.time_s
            else:
                compute_part = np.where(c.bound == COMPUTE, c.time_s, 0.0)
                by_bound[COMPUTE] = by_bound[COMPUTE] + compute_part
                by_bound[MEMORY] = by_bound[MEMORY] + (c.time_s - compute_part)
        bound = np.argmax(np.stack(np.broadcast_arrays(*by_bound)), axis=0)
        breakdown: dict = {}
        for c in costs:
            share = exposed[c.stream]
            part = c.time_s if isinstance(share, float) and share == 1.0 else c.time_s * share
            breakdown[c.kind] = breakdown.get(c.kind, 0.0) + part
        tp, pp, dp = tp_pp_dp
        with np.errstate(divide="ignore", invalid="ignore"):
            mfu = flops / pp / (time_s * peak)
            mbu = byts / pp / (time_s * bw)
        return cls(time_s, flops * tp * dp, byts * tp * dp, bound, mfu, mbu, breakdown, tuple(costs), exposed)

    def exposed_ops(self) -> list:
        """The ops with each one's time cut to the part that extends the phase (an overlapped
        stream's share, `exposure`): they add up to the phase's time, so phases run one after
        another combine by re-totalling them serially."""
        return [replace(c, time_s=c.time_s * self.exposure.get(c.stream, 1.0)) for c in self.ops]

    @property
    def utilisation(self):
        """The busier of the compute and memory pipes (drives the energy model)."""
        return np.maximum(self.mfu, self.mbu)

    def columns(self) -> dict:
        """The result columns of this phase (SPEC.md's phase object), without the ops."""
        return {
            "time_s": self.time_s,
            "flops": self.flops,
            "bytes": self.bytes,
            "bound": self.bound,
            "mfu": self.mfu,
            "mbu": self.mbu,
            "breakdown": self.breakdown,
        }


def tagged(costs, tag: str) -> list:
    """Mark ops of a draft model or an agent call: 'draft.gemm_up' / kind 'draft:gemm' (breakdowns
    keep them apart)."""
    if not tag:
        return list(costs)
    return [replace(c, name=f"{tag}.{c.name}", kind=f"{tag}:{c.kind}") for c in costs]


def scaled(costs, w) -> list:
    """Op costs scaled by how often they run (per output token, per call)."""
    return [replace(c, time_s=c.time_s * w, flops=c.flops * w, bytes=c.bytes * w) for c in costs]
