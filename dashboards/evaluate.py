"""What the pages ask of the simulator, through its public API only.

`plan_point` runs one scenario (`roofline.simulate(...).records()` and `op_table`); `context_curves`
runs ONE vectorised sweep over `workload.prompt_tokens` (log-spaced, 1K to the model's maximum) per
method stack; `compare_rows` costs a workload over layouts x hardware x method stacks. No cost
formula lives here: every number comes from `roofline.simulate`.

Every entry point checks its scenario with `check_references` first: the simulator opens only zoo
models, configs uploaded to this server and the profiles in its calibration folder, whatever a
callback request carries (the controls are the client's to forge). The allowed set is resolved
here, server-side, from the app's settings; a client-given path is never opened, and the refusal
quotes only a short excerpt of the client's own value, never a file's content.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from roofline.api import (
    ScenarioError,
    enumerate_layouts,
    op_table,
    pareto_front,
    parse_methods,
    simulate,
)
from roofline.dashboards.codec_scenario import reference_problems
from roofline.dashboards.settings import settings
from roofline.hwspecs import fabrics, list_hardware, load_hardware
from roofline.models import list_models, load_model

CURVE_POINTS = 1000
CURVE_MIN_TOKENS = 1024
# When a config.json names no maximum context, the curves run to this many tokens.
UNKNOWN_MAX_CONTEXT = 131072


def catalog(calibration_dir=None) -> dict:
    """Valid values of the scenario's name fields (URL and import checks, dropdown options); a
    calibration PATH may only name a profile in the dashboard's calibration folder."""
    profiles = sorted(str(p) for p in Path(calibration_dir).glob("*.yaml")) if calibration_dir else []
    return {
        "model": list_models(),
        "hardware": list_hardware(),
        "topology.fabric": sorted(fabrics()),
        "calibration": ["auto", "datasheet", *profiles],
    }


def check_references(doc: dict) -> None:
    """Raise ScenarioError unless every file the scenario names is one the dashboard may open: the
    model and draft models (zoo names, 'self' or configs in this server's upload folder), the
    calibration (auto, datasheet or a profile in its calibration folder); no sweep of its own."""
    if not isinstance(doc, dict):
        raise ScenarioError(["the plan is not a scenario mapping"])
    cfg = settings()
    problems = reference_problems(doc, catalog(cfg["calibration_dir"]), cfg["upload_dir"])
    if doc.get("sweep") is not None:
        problems.append("sweep: the dashboard builds its own sweeps")
    if problems:
        raise ScenarioError(problems)


@dataclass
class Ceiling:
    """A roof of the roofline chart: peak FLOP/s and bandwidth, with what they come from."""

    label: str
    peak: float  # FLOP/s
    bandwidth: float  # bytes/s
    kind: str  # datasheet | attainable | calibrated


def ceilings(doc: dict, hw, activations: str = "bf16") -> list:
    """The chart's roofs for the plan's hardware: the datasheet's (bf16, and the activation format's
    when it differs) and the attainable one that the simulator prices ops against: the GEMM curve's
    best fraction of peak and the HBM streaming fraction, from the plan's calibration profile
    (`calibrated`) or the datasheet efficiencies (`attainable`). The fractions are the simulator's
    own (`roofline.api.attainable_roof`), read, never re-derived here."""
    from roofline.api import attainable_roof

    out = [
        Ceiling(
            f"datasheet bf16: {hw.peak('bf16') / 1e12:.0f} TFLOP/s",
            hw.peak("bf16"),
            hw.memory_bandwidth,
            "datasheet",
        )
    ]
    if activations not in ("bf16", "fp16") and hw.peak(activations) != hw.peak("bf16"):
        out.append(
            Ceiling(
                f"datasheet {activations}: {hw.peak(activations) / 1e12:.0f} TFLOP/s",
                hw.peak(activations),
                hw.memory_bandwidth,
                "datasheet",
            )
        )
    gemm, hbm, source = attainable_roof(dict(doc, sweep=None), hw, activations)
    profile = source != "datasheet"
    kind = "calibrated" if profile else "attainable"
    name = f"calibrated ({source})" if profile else "attainable (datasheet efficiencies)"
    out.append(
        Ceiling(
            f"{name}: {gemm:.0%} of peak, {hbm:.0%} of HBM",
            hw.peak(activations) * gemm,
            hw.memory_bandwidth * hbm,
            kind,
        )
    )
    return out


@dataclass
class PlanPoint:
    record: dict
    prefill_ops: list
    decode_ops: list
    hardware: object  # roofline.simulator.hardware.Hardware
    baseline: dict | None = None  # the same scenario without its methods (None: it has none)
    ceilings: list | None = None  # [Ceiling] of the roofline chart


def plan_point(doc: dict) -> PlanPoint:
    """Simulate one scenario mapping (no sweep) and, when it has methods, its dense baseline (the
    same scenario with `methods: []`, as `roofline compare` runs it)."""
    check_references(doc)
    result = simulate(doc)
    rec = result.records()[0]
    baseline = simulate(dict(doc, methods=[])).records()[0] if doc.get("methods") else None
    hw = load_hardware(rec["hardware"])
    activations = (doc.get("dtype") or {}).get("activations") or "bf16"
    return PlanPoint(
        rec,
        op_table(result, 0, "prefill"),
        op_table(result, 0, "decode"),
        hw,
        baseline,
        ceilings(doc, hw, activations),
    )


def max_context(doc: dict) -> int:
    """The model's supported context after the stack's context-extension methods (if any)."""
    check_references(doc)
    model = load_model(doc["model"])
    methods, _ = parse_methods(doc.get("methods") or [], "plan")
    for m in methods:
        model = m.apply_model(model)
    return int(model.max_context_tokens or UNKNOWN_MAX_CONTEXT)


def curve_prompts(doc: dict, points: int = CURVE_POINTS) -> np.ndarray:
    """Log-spaced prompt lengths from 1K to the model's maximum (less the output), including the
    plan's own prompt so the chosen point sits on the curve."""
    wl = doc.get("workload") or {}
    output = int(wl.get("output_tokens") or 0)
    prompt = int(wl.get("prompt_tokens") or CURVE_MIN_TOKENS)
    lo = max(CURVE_MIN_TOKENS, int(wl.get("shared_prefix_tokens") or 0))  # the prefix is part of the prompt
    hi = max(max_context(doc) - output, lo * 2, prompt)
    grid = np.unique(np.round(np.geomspace(lo, hi, points)).astype(np.int64))
    return np.union1d(grid, [prompt]) if lo <= prompt else grid


CURVE_COLUMNS = ("ttft_s", "tpot_s", "memory.total_bytes", "memory.capacity_bytes", "fits")


def context_curves(doc: dict, points: int = CURVE_POINTS) -> dict:
    """{label: {'prompt_tokens': array, 'ttft_s': ..., 'tpot_s': ..., 'memory.total_bytes': ...,
    'fits': ...}} for the dense baseline and, when the plan has methods, for its stack: one sweep
    scenario each. A stack the sweep rejects yields {'error': message} instead of columns."""
    check_references(doc)
    prompts = curve_prompts(doc, points)
    stacks = [("baseline", [])]
    if doc.get("methods"):
        stacks.append(("+".join(m["name"] for m in doc["methods"]), doc["methods"]))
    out = {}
    for label, methods in stacks:
        variant = copy.deepcopy(doc)
        variant["methods"] = copy.deepcopy(methods)
        variant["sweep"] = {"workload.prompt_tokens": [int(p) for p in prompts]}
        try:
            cols = simulate(variant).columns
        except ScenarioError as exc:
            out[label] = {"error": str(exc)}
            continue
        out[label] = {"prompt_tokens": prompts, **{k: np.asarray(cols[k]) for k in CURVE_COLUMNS}}
    return out


def compare_rows(doc: dict, hardware: list, gpus_max: int, stacks: list) -> tuple:
    """(rows, problems): one row per (stack, layout, hardware) that the simulator accepts, each
    {'stack', 'layout', 'record'}; problems name the stacks that no layout could run."""
    for _label, methods in stacks or [("dense", doc.get("methods") or [])]:
        check_references(dict(doc, methods=methods))
    model = load_model(doc["model"])
    moe = model.has_moe
    rows, problems = [], []
    for label, methods in stacks:
        errors: list = []
        count = 0
        for layout in enumerate_layouts(gpus_max, moe):
            variant = copy.deepcopy(doc)
            variant["methods"] = copy.deepcopy(methods)
            variant["gpus"] = None
            variant["parallelism"] = dict(doc.get("parallelism") or {}, **layout)
            variant["sweep"] = {"hardware": list(hardware)}
            try:
                records = simulate(variant).records()
            except ScenarioError as exc:
                errors.append(str(exc))  # a layout this model or stack cannot take
                continue
            for rec in records:
                rows.append({"stack": label, "layout": layout, "record": rec})
                count += 1
        if not count and errors:
            problems.append(f"{label}: {errors[0]}")
    return rows, problems


def mark_front(rows: list, latency_key: str, ttft_max=None, tpot_max=None) -> None:
    """Add 'pareto' (cost vs latency among layouts that fit) and 'meets_sla' to each row."""
    cost = [r["record"]["cost"]["usd_per_million_output_tokens"] or float("inf") for r in rows]
    latency = [r["record"][latency_key] or float("inf") for r in rows]
    fits = [r["record"]["fits"] for r in rows]
    front = pareto_front(cost, latency, fits) if rows else []
    for r, on_front in zip(rows, front):
        rec = r["record"]
        r["pareto"] = bool(on_front)
        r["meets_sla"] = bool(
            rec["fits"]
            and (ttft_max is None or (rec["ttft_s"] is not None and rec["ttft_s"] <= ttft_max))
            and (tpot_max is None or (rec["tpot_s"] is not None and rec["tpot_s"] <= tpot_max))
        )
