"""Communication cost: alpha-beta models of collectives over one link class.

Bus-bandwidth factors follow nccl-tests' definitions (PERFORMANCE.md): a ring all-reduce moves
2 (n-1)/n of the buffer over each GPU's link, in 2 (n-1) latency-bound steps.
Defaults are fitted to the Azure ND H100 v5 NCCL all-reduce results (8 GPUs, NVLink):
1 MB at 43.70 GB/s bus bandwidth and 256 MB at 423.38 GB/s give ~2.5 us per ring step and
~95% of the 450 GB/s per-direction NVLink bandwidth.
"""

from __future__ import annotations

import numpy as np

RING_STEP_LATENCY_S = 2.5e-6
LINK_EFFICIENCY = 0.95


def ring_allreduce_time(bytes_, n: int, link_bw, step_latency_s=RING_STEP_LATENCY_S):
    """Ring all-reduce of `bytes_` across n GPUs: 2(n-1) alpha + 2(n-1)/n * bytes / (bw * eff)."""
    if n <= 1:
        return np.zeros_like(np.asarray(bytes_, dtype=float))
    return 2 * (n - 1) * step_latency_s + 2.0 * (n - 1) / n * bytes_ / (link_bw * LINK_EFFICIENCY)


def send_recv_time(bytes_, link_bw, latency_s=RING_STEP_LATENCY_S):
    """Point-to-point transfer (pipeline-stage boundary): alpha + bytes / (bw * eff)."""
    return latency_s + bytes_ / (link_bw * LINK_EFFICIENCY)
