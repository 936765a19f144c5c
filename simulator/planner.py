"""Layout planning: enumerate parallel layouts and pick the Pareto front of cost vs latency.

Layouts are powers of two per dimension (tp, pp, cp, dp) whose product is at most the GPU budget;
expert parallelism takes each multiple of tp that divides tp*dp (MoE models only). Every layout is
costed by the same engine; the front keeps the layouts no other layout beats on both $ per million
output tokens and latency.
"""

from __future__ import annotations

import numpy as np

from roofline.simulator.layout import Layout


def powers_of_two(limit: int) -> list:
    out, v = [], 1
    while v <= limit:
        out.append(v)
        v *= 2
    return out


def enumerate_layouts(gpus_max: int, moe: bool, max_tp: int | None = None, min_gpus: int = 1) -> list:
    """Candidate layouts as dicts of tp, pp, cp, dp, ep (gpus = tp*pp*cp*dp <= gpus_max)."""
    out = []
    for tp in powers_of_two(min(gpus_max, max_tp or gpus_max)):
        for pp in powers_of_two(gpus_max // tp):
            for cp in powers_of_two(gpus_max // (tp * pp)):
                for dp in powers_of_two(gpus_max // (tp * pp * cp)):
                    gpus = Layout(tp=tp, pp=pp, cp=cp, dp=dp).gpus
                    if gpus < min_gpus:
                        continue
                    eps = [1]
                    if moe:
                        eps += [
                            e for e in powers_of_two(tp * dp) if e > 1 and e % tp == 0 and (tp * dp) % e == 0
                        ]
                    for ep in eps:
                        out.append({"tp": tp, "pp": pp, "cp": cp, "dp": dp, "ep": ep})
    return out


def pareto_front(cost, latency, eligible) -> np.ndarray:
    """Boolean mask of eligible points not dominated on (cost, latency), both minimised."""
    cost, latency, eligible = np.asarray(cost, float), np.asarray(latency, float), np.asarray(eligible, bool)
    front = np.zeros(cost.shape, bool)
    idx = np.nonzero(eligible)[0]
    order = idx[np.lexsort((latency[idx], cost[idx]))]  # by cost, then latency
    best_latency = np.inf
    for i in order:
        if latency[i] < best_latency:
            front[i] = True
            best_latency = latency[i]
    return front
