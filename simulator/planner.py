"""Layout planning: enumerate parallel layouts and pick the Pareto front of cost vs latency.

Layouts are powers of two per dimension (tp, pp, cp, dp) whose product is at most the GPU budget;
expert parallelism takes each multiple of tp that divides tp*dp (MoE models only). Every layout is
costed by the same engine, layouts that differ only in dp in one vectorised pass
(`evaluate_layouts`); the front keeps the layouts no other layout beats on both $ per million
output tokens and latency.
"""

from __future__ import annotations

import copy

import numpy as np

from roofline.simulator.layout import Layout
from roofline.simulator.scenario import ScenarioError


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


def evaluate_layouts(doc: dict, overrides, layouts: list, hardware: list, simulate) -> list:
    """[(layout, record)] for each layout the model can take, on each hardware in turn: exactly the
    rows of simulating every layout by itself (`doc` with its sweep replaced by the hardware list).

    Layouts that differ only in pp, cp and dp are one simulation with those as vector sweep axes
    (replicas change the batch per replica, the GPU count and the cost; stages the layers per GPU,
    the pipeline's fill and hand-offs; context ranks the rows, pairs and KV per rank and the
    exchanges' sizes; never an op's kind), so a 128-GPU search runs one engine pass per (tp, ep,
    cp variant) instead of one per layout; records are built for the grid points that are
    layouts. `simulate(doc, overrides)` is the API's; a layout it refuses (ScenarioError: heads,
    experts) is skipped.
    """
    by_rest: dict = {}
    for i, layout in enumerate(layouts):
        by_rest.setdefault(tuple((k, v) for k, v in layout.items() if k not in VECTOR), []).append(i)
    vectorised = not any(
        _path(o).startswith(("sweep", "gpus", *(f"parallelism.{k}" for k in VECTOR))) for o in overrides
    )
    rows: dict = {}
    nh = len(hardware)
    for members in by_rest.values():
        if vectorised:
            axes = {k: sorted({layouts[i][k] for i in members}) for k in VECTOR}
            try:
                result = simulate(_variant(doc, layouts[members[0]], hardware, axes), overrides)
            except ScenarioError:
                pass  # some stage or replica count the model cannot take: one layout at a time
            else:
                for i in members:
                    first = 0  # the layout's place in the C-ordered grid of VECTOR x hardware
                    for k in VECTOR:
                        first = first * len(axes[k]) + axes[k].index(layouts[i][k])
                    first *= nh
                    rows[i] = [_without_vector(r) for r in result.records(range(first, first + nh))]
                continue
        for i in members:
            try:
                rows[i] = simulate(_variant(doc, layouts[i], hardware), overrides).records()
            except ScenarioError:
                continue
    return [(layouts[i], rec) for i in sorted(rows) for rec in rows[i]]


def _path(override) -> str:
    return (override.split("=", 1)[0] if isinstance(override, str) else str(override[0])).strip()


VECTOR = ("pp", "cp", "dp")  # layout axes evaluated as sweep axes (in this order, before the hardware)


def _variant(doc: dict, layout: dict, hardware: list, axes: dict | None = None) -> dict:
    """The scenario of one layout (or of one layout over grids of pp and dp) on the hardware list."""
    variant = copy.deepcopy(doc)
    variant.pop("sweep", None)
    variant["gpus"] = None
    variant["parallelism"] = dict(doc.get("parallelism") or {}, **layout)
    sweep = {f"parallelism.{k}": axes[k] for k in VECTOR} if axes else {}
    variant["sweep"] = {**sweep, "hardware": hardware}
    return variant


def _without_vector(record: dict) -> dict:
    """A record of the VECTOR grid as the single layout's simulation writes it."""
    record["point"] = {
        k: v for k, v in record["point"].items() if k.removeprefix("parallelism.") not in VECTOR
    }
    return record
