"""The Compare page's sweeps, through the simulator's public API only: a plan over a range of
context lengths on several GPUs, and over the batch from 1 to its maximum.

`context_range` runs ONE sweep per method stack over (hardware x prompt length); `batch_range`
runs one sweep per (stack, hardware) over batch sizes up to the max batch that the simulator
reports for that hardware. Every number comes from `roofline.simulate`; nothing is computed here
but the grids. The plan's layout (tp/pp/cp/dp) is kept: these views answer "this plan, elsewhere".
"""

from __future__ import annotations

import copy

import numpy as np

from roofline.api import ScenarioError, simulate
from roofline.dashboards.evaluate import check_references

K = 1024  # the range is given in K tokens (32K = 32768)
RANGE_POINTS = 16
# The largest batch the batch view sweeps to (a small model on a big GPU fits thousands).
BATCH_LIMIT = 4096
COLUMNS = (
    "ttft_s",
    "tpot_s",
    "cost.usd_per_million_output_tokens",
    "throughput_tokens_per_s_per_gpu",
    "memory.total_bytes",
    "fits",
)


def range_prompts(lo_tokens: int, hi_tokens: int, points: int = RANGE_POINTS) -> list:
    """Log-spaced prompt lengths from lo to hi inclusive, each a whole number of tokens."""
    grid = np.unique(np.round(np.geomspace(lo_tokens, hi_tokens, points)).astype(np.int64))
    return [int(p) for p in grid]


def _variant(doc: dict, methods: list, sweep: dict) -> dict:
    variant = copy.deepcopy(doc)
    variant["methods"] = copy.deepcopy(methods)
    variant["sweep"] = sweep
    return variant


def _by_point(records: list, axis: str, key_axis: str | None = None) -> dict:
    """{value of key_axis (or None): {axis values, COLUMNS...}} from a sweep's records."""
    out: dict = {}
    for rec in records:
        key = rec["point"].get(key_axis) if key_axis else None
        cols = out.setdefault(key, {axis: [], **{c: [] for c in COLUMNS}})
        cols[axis].append(rec["point"][axis])
        for c in COLUMNS:
            head, _, tail = c.partition(".")
            cols[c].append(rec[head][tail] if tail else rec[head])
    return {k: {c: np.asarray(v) for c, v in cols.items()} for k, cols in out.items()}


def context_range(doc: dict, hardware: list, stacks: list, lo_tokens: int, hi_tokens: int) -> tuple:
    """({(stack, hardware): {'prompt_tokens', 'ttft_s', ..., 'fits'}}, problems): the plan on each
    hardware over log-spaced prompt lengths; a stack the simulator rejects is a problem line."""
    prompts = range_prompts(lo_tokens, hi_tokens)
    series, problems = {}, []
    for label, methods in stacks:
        variant = _variant(doc, methods, {"hardware": list(hardware), "workload.prompt_tokens": prompts})
        check_references(dict(variant, sweep=None))
        try:
            records = simulate(variant).records()
        except ScenarioError as exc:
            problems.append(f"{label}: {exc}")
            continue
        for hw, cols in _by_point(records, "workload.prompt_tokens", "hardware").items():
            series[(label, hw)] = {"prompt_tokens": cols.pop("workload.prompt_tokens"), **cols}
    return series, problems


def batch_grid(max_batch: int) -> list:
    """1, 2, 4, ... and max_batch itself (at most BATCH_LIMIT)."""
    top = min(int(max_batch), BATCH_LIMIT)
    grid = [1 << i for i in range(top.bit_length()) if 1 << i <= top]
    return sorted(set(grid + [top]))


def batch_range(doc: dict, hardware: list, stacks: list) -> tuple:
    """({(stack, hardware): {'batch', 'tpot_s', 'cost...', ..., 'max_batch'}}, problems): each
    hardware's plan at batch 1, 2, 4, ... up to its max batch at the plan's prompt (from the
    simulator's `max_batch`); a plan that does not fit even at batch 1 is a problem line."""
    series, problems = {}, []
    for label, methods in stacks:
        base = _variant(doc, methods, {"hardware": list(hardware)})
        check_references(dict(base, sweep=None))
        base["workload"] = dict(base.get("workload") or {}, batch=1)
        try:
            at_one = simulate(base).records()
        except ScenarioError as exc:
            problems.append(f"{label}: {exc}")
            continue
        for rec in at_one:
            hw = rec["point"]["hardware"]
            if not rec["fits"] or rec["max_batch"] < 1:
                problems.append(f"{label} on {hw}: does not fit in memory even at batch 1")
                continue
            grid = batch_grid(rec["max_batch"])
            variant = _variant(doc, methods, {"workload.batch": grid})
            variant["hardware"] = hw
            cols = _by_point(simulate(variant).records(), "workload.batch")[None]
            series[(label, hw)] = {"batch": cols.pop("workload.batch"), **cols, "max_batch": rec["max_batch"]}
    return series, problems
