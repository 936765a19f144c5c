"""Evaluate a validated Scenario over its sweep grid by numpy broadcasting.

Every sweep axis is one array dimension. Axes that change the op graph (model, tp, ep, the cp
algorithm, dtypes, overlap) split the grid into structural groups, evaluated one after another;
every other axis — workload sizes, hardware (as rows of per-SKU values), price, runtime overhead,
the pipeline, context and data-parallel degrees (pp, cp, dp) — stays a dimension of length > 1
within a group. An op that depends only on, say,
batch and hardware is therefore computed on a batch x hardware array and broadcast only when
summed: the cost of a sweep grows with the sizes of the arrays each formula really needs, not with
the number of points. Results are flattened in C order (the last sweep axis varies fastest).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field, replace

import numpy as np

from roofline.simulator import eager_hf
from roofline.simulator.agent import evaluate_agent
from roofline.simulator.columns import flatten
from roofline.simulator.efficiency import FP8_ATTENTION_WARNING, build_table
from roofline.simulator.engine import Dtypes, HardwareColumns, Layout, Workload, evaluate
from roofline.simulator.frameworks import framework
from roofline.simulator.methods import apply_stack, stack_notes, stack_warnings
from roofline.simulator.units import GIB, dtype_bytes

VECTOR_AXES = {
    "hardware",
    "workload.batch",
    "workload.prompt_tokens",
    "workload.output_tokens",
    "workload.shared_prefix_tokens",
    "workload.prefill_chunk_tokens",
    "pricing.usd_per_gpu_hour",
    "runtime.overhead_GiB",
    "runtime.host_memory_GiB",
    "parallelism.dp",  # replicas: batch per replica, GPUs and FLOPs scale; no op changes shape
    "parallelism.pp",  # stages: layers per GPU, the pipeline's fill and hand-offs; same ops per layer
    "parallelism.cp",  # context ranks: rows, pairs and KV per rank, ring/all-to-all sizes; same ops
}
_NUMERIC_NULL = {"workload.prefill_chunk_tokens": 0.0, "pricing.usd_per_gpu_hour": np.nan}


@dataclass
class Group:
    values: dict  # field values of this structural group
    points: np.ndarray  # global point indices, ascending
    shape: tuple  # broadcast shape of the group's arrays (structural axes have length 1)
    columns: dict
    model: object
    hardware: list
    hw_row: np.ndarray
    calibration: tuple = ()  # per hardware row: profile id or 'datasheet'
    error_band: tuple = ()  # per hardware row: efficiency.error_band of the curves used

    def at(self, value, pos: int):
        """Element `pos` (index into `points`) of a group array broadcast to the group's shape."""
        return np.broadcast_to(value, self.shape).reshape(-1)[pos]


@dataclass
class SweepResult:
    scenario: object
    n: int
    axes: list  # [(path, values, index of each point along this axis)]
    groups: list
    columns: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)  # [(message, boolean mask over points)]
    notes: list = field(default_factory=list)  # [(message, mask)]: information, not a problem

    def group_of(self, i: int):
        for g in self.groups:
            pos = np.searchsorted(g.points, i)
            if pos < g.points.size and g.points[pos] == i:
                return g, int(pos)
        raise IndexError(i)


def _numeric(path: str, value) -> float:
    return _NUMERIC_NULL.get(path, np.nan) if value is None else float(value)


def _along(values: np.ndarray, dim: int, ndim: int) -> np.ndarray:
    """`values` laid along dimension `dim` of an ndim-dimensional broadcast grid."""
    return values.reshape([-1 if d == dim else 1 for d in range(ndim)])


def run_scenario(scenario, get_model, get_hardware, get_fabric=None, profiles=None) -> SweepResult:
    """Evaluate all points. get_model(name) -> ModelArch; get_hardware(name) -> Hardware.

    Divisions by zero and overflows (an unbounded max context, a zero-time phase) yield inf or
    nan by design and are reported as such (null in JSON), so numpy's warnings are silenced.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return _run(scenario, get_model, get_hardware, get_fabric, profiles or {})


def for_framework(profiles: dict, framework: str) -> dict:
    """hardware name -> Profile for one framework: `profiles` keys are hardware names, or (hardware,
    framework) pairs when `calibration: auto` resolved a framework sweep (roofline.api._profiles)."""
    out = {k: v for k, v in profiles.items() if isinstance(k, str)}
    out.update({k[0]: v for k, v in profiles.items() if isinstance(k, tuple) and k[1] == framework})
    return out


def _run(scenario, get_model, get_hardware, get_fabric, all_profiles) -> SweepResult:
    axes = scenario.sweep
    paths = [p for p, _ in axes]
    shape = tuple(len(v) for _, v in axes)
    ndim = len(shape)
    n = int(np.prod(shape)) if axes else 1
    grid_ids = np.arange(n).reshape(shape)
    result = SweepResult(
        scenario, n, [(p, v, _flat_axis_index(shape, d)) for d, (p, v) in enumerate(axes)], []
    )
    full: dict = {}
    structural = [d for d, p in enumerate(paths) if p not in VECTOR_AXES]
    methods = scenario.stack  # parsed once, when the scenario was validated
    sub_shape = tuple(1 if d in structural else shape[d] for d in range(ndim))
    for combo in itertools.product(*(range(shape[d]) for d in structural)):
        chosen = dict(zip(structural, combo))
        index = tuple(chosen.get(d, slice(None)) for d in range(ndim))
        pts = np.ravel(grid_ids[index])
        values = dict(scenario.base)
        for d, k in chosen.items():
            values[paths[d]] = axes[d][1][k]

        def col(path, values=values):
            if path in paths:
                d = paths.index(path)
                return _along(np.array([_numeric(path, v) for v in axes[d][1]]), d, ndim)
            return np.asarray(_numeric(path, values[path]))

        model = get_model(values["model"])
        if "hardware" in paths:
            hw_names = list(axes[paths.index("hardware")][1])
            hw_row = _along(np.arange(len(hw_names)), paths.index("hardware"), ndim)
        else:
            hw_names, hw_row = [values["hardware"]], np.zeros((), dtype=np.intp)
        hardware = [get_hardware(h) for h in hw_names]
        wl = _workload(col)
        price = col("pricing.usd_per_gpu_hour")
        price = np.where(np.isnan(price), np.array([h.usd_per_gpu_hour for h in hardware])[hw_row], price)
        layout = Layout.from_values(values)
        for axis in ("dp", "pp", "cp"):
            if f"parallelism.{axis}" in paths:
                layout = replace(layout, **{axis: col(f"parallelism.{axis}")})
        fabric = get_fabric(values["topology.fabric"]) if get_fabric else None
        model, wl, dtypes, plan, loop = apply_stack(methods, model, wl, Dtypes.from_values(values), get_model)
        profiles = for_framework(all_profiles, layout.framework)
        eff = efficiency_table(hardware, profiles, dtypes)
        hw_cols = HardwareColumns.gather(hardware, hw_row)
        overhead = col("runtime.overhead_GiB") * GIB
        host = col("runtime.host_memory_GiB") * GIB  # nan: the hardware file's value
        host = np.where(np.isnan(host), np.array([h.host_memory_bytes for h in hardware])[hw_row], host)
        args = (model, layout, dtypes, hw_cols, eff, wl, price, overhead)
        if plan.extras.agent is not None:  # the input processed as several model calls
            inner = replace(plan, extras=replace(plan.extras, agent=None))
            cols = evaluate_agent(evaluate, plan.extras.agent, *args, inner, loop, fabric, host)
        else:
            cols = evaluate(*args, plan, loop, fabric, host)
        group = Group(values, pts, sub_shape, cols, model, hardware, hw_row, eff.source, eff.error_band)
        result.groups.append(group)
        _group_warnings(result, group, layout, dtypes, wl, profiles)
        _profile_warnings(result, group, profiles, wl, model)
        _collective_warnings(result, group, profiles, layout, hw_cols, eff.links, fabric)
        for msg in stack_warnings(methods, model):
            result.warnings.append((msg, _mask(result, group, True)))
        if framework(layout.framework).unfused and any(m.name == "kv_quant" and m.bits < 16 for m in methods):
            result.warnings.append((eager_hf.QUANTIZED_CACHE_WARNING, _mask(result, group, True)))
        for msg in stack_notes(methods, model):
            result.notes.append((msg, _mask(result, group, True)))
        flat: dict = {}
        flatten("", cols, flat)
        if not axes:  # one point: each column is its value (the common case of one question)
            for key, value in flat.items():
                value = np.asarray(value)
                full[key] = value.astype(bool if value.dtype == bool else float).reshape(1)
            continue
        block = tuple(slice(chosen[d], chosen[d] + 1) if d in chosen else slice(None) for d in range(ndim))
        for key, value in flat.items():
            column = full.get(key)
            if column is None:
                column = full[key] = np.zeros(shape, dtype=bool if np.asarray(value).dtype == bool else float)
            column[block] = value  # broadcast over the group's block of the grid
    result.columns = {k: v.reshape(n) for k, v in full.items()}
    return result


def _flat_axis_index(shape: tuple, dim: int) -> np.ndarray:
    """Index along axis `dim` of every point, in flattened C order."""
    return np.broadcast_to(_along(np.arange(shape[dim]), dim, len(shape)), shape).reshape(-1)


def _mask(result: SweepResult, group: Group, cond) -> np.ndarray:
    mask = np.zeros(result.n, bool)
    mask[group.points[np.broadcast_to(cond, group.shape).reshape(-1)]] = True
    return mask


def _workload(col) -> Workload:
    """The workload columns of a group (`col(path)`: a field's value or sweep axis as an array)."""
    return Workload(
        batch=col("workload.batch"),
        prompt=col("workload.prompt_tokens"),
        output=col("workload.output_tokens"),
        shared=col("workload.shared_prefix_tokens"),
        chunk=col("workload.prefill_chunk_tokens"),
    )


def _group_warnings(result: SweepResult, group: Group, layout, dtypes, wl, profiles: dict) -> None:
    model = group.model
    if model.max_context_tokens:
        over = wl.prompt + wl.output > model.max_context_tokens
        if np.any(over):
            result.warnings.append(
                (
                    f"context (prompt + output) exceeds {model.name}'s supported {model.max_context_tokens} tokens; "
                    "quality beyond it needs a context-extension method (costs are still modelled)",
                    _mask(result, group, over),
                )
            )
        beyond = np.asarray(group.columns.max_context_tokens) > model.max_context_tokens
        if np.any(beyond):
            result.notes.append(
                (
                    f"max_context_tokens (what memory holds) exceeds {model.name}'s supported "
                    f"{model.max_context_tokens} tokens; quality beyond it needs a context-extension method",
                    _mask(result, group, beyond),
                )
            )
    for r, hw in enumerate(group.hardware):
        if not hw.has_native(dtypes.activations):
            msg = f"{hw.name} has no {dtypes.activations} matrix units; GEMMs modelled at its 16-bit peak"
            result.warnings.append((msg, _mask(result, group, group.hw_row == r)))
        if dtypes.attention_compute == "fp8":
            if not hw.has_native("fp8"):
                msg = f"{hw.name} has no fp8 matrix units; attention modelled at its 16-bit peak"
            elif _measures_fp8_attention((profiles or {}).get(hw.name)):
                continue
            else:
                msg = f"{hw.name}: {FP8_ATTENTION_WARNING}"
            result.warnings.append((msg, _mask(result, group, group.hw_row == r)))
    heads = [getattr(g.mixer, "num_heads", None) for g in model.layer_groups]
    if any(h and h % layout.tp for h in heads):
        msg = f"tp={layout.tp} does not divide {model.name}'s attention heads; shards rounded up"
        result.warnings.append((msg, _mask(result, group, True)))
    default_sdpa = layout.attn_implementation is None and framework(layout.framework).unfused
    if default_sdpa and eager_hf.max_kv_groups(model, layout.tp) > 1:  # transformers' repeat_kv
        result.notes.append((eager_hf.REPEAT_KV_NOTE, _mask(result, group, True)))


def efficiency_table(hardware: list, profiles: dict, dtypes: Dtypes):
    """The efficiency rows of `hardware` for a scenario's formats: GEMMs in its activations' format,
    attention in the format it computes in, fused MoE for its weights under those activations."""
    return build_table(
        hardware,
        profiles,
        dtypes.activations,
        dtypes.attention_compute,
        dtypes.weights,
        dtype_bytes(dtypes.kv),
    )


def _measures_fp8_attention(profile) -> bool:
    """Whether a profile measured FP8 prefill attention: a curve or a grid of its own."""
    curves, grids = getattr(profile, "curves", {}) or {}, getattr(profile, "grids", {}) or {}
    return "attention_prefill_fp8" in curves or "attention_prefill_fp8" in grids


def _profile_warnings(result: SweepResult, group: Group, profiles: dict, wl, model) -> None:
    """Points whose prefill attention length or decode GEMM size lies outside a profile's measured
    range (the boundary efficiency is held there)."""
    for r, hw in enumerate(group.hardware):
        profile = profiles.get(hw.name)
        if profile is None:
            continue
        on_row = group.hw_row == r
        grids = getattr(profile, "grids", None) or {}
        attn = profile.curves.get("attention_prefill")
        span = None
        if "attention_prefill" in grids:  # the measured grid prices it: its sequence-length axis
            seqlen = grids["attention_prefill"].axis_nodes(0)
            span = (2.0 ** seqlen[0], 2.0 ** seqlen[-1])
        elif attn is not None:
            span = (attn.x_min, attn.x_max)
        if span is not None:
            outside = on_row & ((wl.prompt < span[0]) | (wl.prompt > span[1]))
            if np.any(outside):
                msg = (
                    f"{profile.profile_id}: attention_prefill measured for {span[0]:g}..{span[1]:g} tokens; "
                    "efficiency held at the boundary outside"
                )
                result.warnings.append((msg, _mask(result, group, outside)))
        mla = model.has_mla
        decode = grids.get("mla_decode" if mla else "attention_decode")
        if decode is not None:  # its KV-length axis: beyond the last node the last attainment holds
            top = 2.0 ** decode.last_axis_nodes()[-1]
            outside = on_row & (np.asarray(wl.prompt + wl.output, dtype=float) > top)
            if np.any(outside):
                msg = (
                    f"{profile.profile_id}: {decode.kind} measured up to {top:g} KV tokens; each further "
                    "token streams at the last measured attainment"
                )
                result.warnings.append((msg, _mask(result, group, outside)))
        gemm = profile.curves.get("gemm_bf16")
        if gemm is not None and "gemm_bf16" not in grids:  # a GEMM grid is measured down to m = 1
            size = np.cbrt(np.maximum(wl.batch, 1.0) * model.hidden_size * model.hidden_size)
            outside = on_row & (size < gemm.x_min)
            if np.any(outside):
                msg = f"{profile.profile_id}: decode GEMMs smaller than the measured range (from {gemm.x_min:g}); efficiency held"
                result.warnings.append((msg, _mask(result, group, outside)))


def _collective_warnings(
    result: SweepResult, group: Group, profiles: dict, layout, hw_cols, links, fabric
) -> None:
    """Points whose tp or cp group spans a GPU count (inside its scale-up domain) that the profile's
    collective tables do not cover: its alpha-beta fit, or the datasheet link, prices them there."""
    fits = [lk[0] if lk else None for lk in links]
    if not any(getattr(fit, "tables", ()) for fit in fits):
        return
    from roofline.simulator.topology import groups, host_fabric

    placed = groups(layout, hw_cols, fabric or host_fabric(hw_cols), links)
    for r, (hw, fit) in enumerate(zip(group.hardware, fits)):
        counts = sorted({t.gpus for t in getattr(fit, "tables", ())})
        if not counts:
            continue
        how = "its alpha-beta fit" if np.isfinite(fit.beta_Bps) else "the datasheet link model"
        for name in ("tp", "cp"):
            n = np.asarray(placed[name].n_intra, dtype=float)
            off = (group.hw_row == r) & (n > 1) & ~np.isin(n, counts)
            if not np.any(off):
                continue
            sizes = ", ".join(f"{v:g}" for v in np.unique(np.broadcast_to(n, np.shape(off))[off]))
            msg = (
                f"{profiles[hw.name].profile_id}: collective tables measured on {', '.join(map(str, counts))} "
                f"GPUs; {name}'s collectives on {sizes} GPUs of a domain are priced by {how}"
            )
            result.warnings.append((msg, _mask(result, group, off)))


def step_model(scenario, get_model, get_hardware, get_fabric=None, profiles=None):
    """The step-cost model (`simulator.step.StepModel`) of a one-configuration scenario: its model,
    layout, formats, hardware and methods resolved once, for a scheduler to price forward passes."""
    from roofline.simulator.errors import UserError
    from roofline.simulator.step import StepModel

    if scenario.sweep:
        raise UserError(f"{scenario.name}: a step model is one configuration; remove the sweep")
    values = dict(scenario.base)

    def col(path):
        return np.asarray(_numeric(path, values[path]))

    hardware = [get_hardware(values["hardware"])]
    model, _, dtypes, plan, _ = apply_stack(
        scenario.stack, get_model(values["model"]), _workload(col), Dtypes.from_values(values), get_model
    )
    layout = Layout.from_values(values)
    profiles = for_framework(profiles or {}, layout.framework)
    eff = efficiency_table(hardware, profiles, dtypes)
    hw_cols = HardwareColumns.gather(hardware, np.zeros((), dtype=np.intp))
    fabric = get_fabric(values["topology.fabric"]) if get_fabric else None
    return StepModel(model, layout, dtypes, hw_cols, eff, plan, fabric)
