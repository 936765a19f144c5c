"""Alpha-beta fits of collective timings: pure numpy/scipy, no torch, so they are testable anywhere.

A collective on n ranks over one link class costs, for a ring (the model `simulator/comm.py` prices):

    t(S) = latency_steps * alpha + busbw_factor * S / beta

with S the message size in nccl-tests' sense (the whole array: the all-gather output, the
reduce-scatter input, the all-to-all send buffer), alpha the seconds per latency-bound step and beta
the link's bytes/s. The bus-bandwidth factors are nccl-tests' (doc/PERFORMANCE.md: all-reduce
2(n-1)/n, all-gather, reduce-scatter and all-to-all (n-1)/n, point-to-point 1), so S / t times the
factor is nccl-tests' busbw and beta is the busbw the large messages approach. The step counts are a
ring's: 2(n-1) for all-reduce (reduce-scatter then all-gather), n-1 for the others, 1 for send/recv.

Timing the benchmarks is left to `collectives.py`; this module only turns (bytes, seconds) into
alpha, beta and how well the line fits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

# One definition of the ring's bus-bandwidth factors and latency steps, shared with the model.
from roofline.api import COLLECTIVES as COLLECTIVES
from roofline.api import busbw_factor as busbw_factor
from roofline.api import latency_steps as latency_steps


def algbw(bytes_, seconds):
    """nccl-tests' algorithm bandwidth in bytes/s: S / t."""
    return np.asarray(bytes_, dtype=float) / np.asarray(seconds, dtype=float)


def busbw(bytes_, seconds, collective: str, n: int):
    """nccl-tests' bus bandwidth in bytes/s: algbw times the collective's factor."""
    return algbw(bytes_, seconds) * busbw_factor(collective, n)


@dataclass(frozen=True)
class AlphaBetaFit:
    """t(S) = latency_steps * alpha_s + bytes_factor * S / beta_Bps, fitted to measured points.

    `residual` is the relative RMS error of the fit over the points, sqrt(mean(((t_fit - t) / t)^2)).
    `beta_Bps` is inf when the times do not grow with size at all (latency-only data).
    """

    alpha_s: float
    beta_Bps: float
    residual: float

    def seconds(self, bytes_, steps: int, bytes_factor: float):
        """The fitted time of a message of `bytes_` bytes."""
        return steps * self.alpha_s + bytes_factor * np.asarray(bytes_, dtype=float) / self.beta_Bps


def fit_alpha_beta(bytes_, seconds, steps, bytes_factor) -> AlphaBetaFit:
    """Fit alpha (s per step, >= 0) and beta (bytes/s, > 0) to measured (bytes, seconds).

    `steps` and `bytes_factor` are one number, or one per point (a joint fit over several rank
    counts, each point with its own ring's steps and factor).

    Non-negative least squares on t = steps * alpha + factor * S * (1 / beta), with each row divided
    by its measured t so that the fit minimises relative error: the microsecond latencies of small
    messages weigh as much as the milliseconds of large ones (the timings span orders of magnitude).
    """
    s = np.asarray(bytes_, dtype=float).ravel()
    t = np.asarray(seconds, dtype=float).ravel()
    if s.shape != t.shape:
        raise ValueError(f"bytes and seconds differ in length: {s.size} vs {t.size}")
    if s.size < 2 or np.unique(s).size < 2:
        raise ValueError("an alpha-beta fit needs points at two or more message sizes")
    if not (np.all(np.isfinite(t)) and np.all(t > 0) and np.all(s > 0)):
        raise ValueError("an alpha-beta fit needs positive, finite bytes and seconds")
    steps = np.broadcast_to(np.asarray(steps, dtype=float), s.shape)
    bytes_factor = np.broadcast_to(np.asarray(bytes_factor, dtype=float), s.shape)
    if np.any(steps < 1) or np.any(bytes_factor <= 0):
        raise ValueError(f"steps must be >= 1 and bytes_factor > 0, got {steps.min()}, {bytes_factor.min()}")

    design = np.column_stack([steps, bytes_factor * s]) / t[:, None]
    (alpha, inv_beta), _ = nnls(design, np.ones_like(t))
    beta = 1.0 / inv_beta if inv_beta > 0 else float("inf")
    fitted = steps * alpha + bytes_factor * s * inv_beta
    residual = float(np.sqrt(np.mean(((fitted - t) / t) ** 2)))
    return AlphaBetaFit(alpha_s=float(alpha), beta_Bps=float(beta), residual=residual)
