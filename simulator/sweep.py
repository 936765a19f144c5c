"""Evaluate a validated Scenario over its sweep grid in vectorised passes.

Axes that change the op graph (model, layout, dtypes, overlap) split the grid into structural
groups; every other axis — workload sizes, hardware (as rows of per-SKU values), price, runtime
overhead — is a numpy array within a group. Results are columns in grid order (C order: the
last sweep axis varies fastest).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from roofline.simulator.efficiency import build_table
from roofline.simulator.engine import Dtypes, HardwareColumns, Layout, Workload, evaluate
from roofline.simulator.units import GIB

VECTOR_AXES = {
    "hardware",
    "workload.batch",
    "workload.prompt_tokens",
    "workload.output_tokens",
    "workload.shared_prefix_tokens",
    "workload.prefill_chunk_tokens",
    "pricing.usd_per_gpu_hour",
    "runtime.overhead_GiB",
}
_NUMERIC_NULL = {"workload.prefill_chunk_tokens": 0.0, "pricing.usd_per_gpu_hour": np.nan}


@dataclass
class Group:
    values: dict  # structural field values of this group
    points: np.ndarray  # global point indices
    columns: dict
    model: object
    hardware: list
    hw_row: np.ndarray


@dataclass
class SweepResult:
    scenario: object
    n: int
    axes: list  # [(path, values, index array over points)]
    groups: list
    columns: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)  # [(message, boolean mask over points)]
    calibration: list = field(default_factory=list)  # per point profile id or 'datasheet'

    def group_of(self, i: int):
        for g in self.groups:
            pos = np.searchsorted(g.points, i)
            if pos < g.points.size and g.points[pos] == i:
                return g, pos
        raise IndexError(i)


def _flatten_columns(prefix: str, cols: dict, out: dict) -> None:
    for key, value in cols.items():
        if key == "ops":
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            _flatten_columns(name + ".", value, out)
        else:
            out[name] = value


def _numeric(path: str, value):
    if value is None:
        return _NUMERIC_NULL.get(path, np.nan)
    return float(value)


def _column_getter(axes, axis_index, pts, values):
    """col(path) -> the path's values at this group's points (swept or constant)."""
    swept = dict(axes)

    def col(path):
        if path in axis_index:
            table = np.array([_numeric(path, v) for v in swept[path]])
            return table[axis_index[path][pts]]
        return np.full(pts.size, _numeric(path, values[path]))

    return col


def run_scenario(scenario, get_model, get_hardware) -> SweepResult:
    """Evaluate all points. get_model(name) -> ModelArch; get_hardware(name) -> Hardware."""
    axes = scenario.sweep
    shape = tuple(len(v) for _, v in axes)
    n = int(np.prod(shape)) if axes else 1
    flat_idx = np.unravel_index(np.arange(n), shape) if axes else ()
    axis_index = {path: flat_idx[i] for i, (path, _) in enumerate(axes)}
    structural = [(i, p) for i, (p, _) in enumerate(axes) if p not in VECTOR_AXES]
    if structural:
        keys = np.ravel_multi_index([flat_idx[i] for i, _ in structural], [shape[i] for i, _ in structural])
        uniq, inverse = np.unique(keys, return_inverse=True)
        group_points = [np.nonzero(inverse == g)[0] for g in range(uniq.size)]
    else:
        group_points = [np.arange(n)]

    result = SweepResult(scenario, n, [(p, v, axis_index[p]) for p, v in axes], [])
    for pts in group_points:
        values = dict(scenario.base)
        for i, path in structural:
            values[path] = axes[i][1][flat_idx[i][pts[0]]]
        model = get_model(values["model"])
        # Hardware rows: the swept list (or the one base name).
        hw_names = list(dict(axes)["hardware"]) if "hardware" in axis_index else [values["hardware"]]
        hardware = [get_hardware(h) for h in hw_names]
        hw_row = (
            axis_index["hardware"][pts] if "hardware" in axis_index else np.zeros(pts.size, dtype=np.int64)
        )

        col = _column_getter(axes, axis_index, pts, values)

        wl = Workload(
            batch=col("workload.batch"),
            prompt=col("workload.prompt_tokens"),
            output=col("workload.output_tokens"),
            shared=col("workload.shared_prefix_tokens"),
            chunk=col("workload.prefill_chunk_tokens"),
        )
        price = col("pricing.usd_per_gpu_hour")
        default_price = np.array([h.usd_per_gpu_hour for h in hardware])[hw_row]
        price = np.where(np.isnan(price), default_price, price)
        layout = Layout(
            tp=values["parallelism.tp"],
            pp=values["parallelism.pp"],
            cp=values["parallelism.cp"],
            dp=values["parallelism.dp"],
            ep=values["parallelism.ep"],
            overlap=values["runtime.overlap"],
        )
        dtypes = Dtypes(values["dtype.weights"], values["dtype.activations"], values["dtype.kv"])
        eff = build_table(hardware)
        cols = evaluate(
            model,
            layout,
            dtypes,
            HardwareColumns.gather(hardware, hw_row),
            eff,
            wl,
            price,
            col("runtime.overhead_GiB") * GIB,
        )
        result.groups.append(Group(values, pts, cols, model, hardware, hw_row))
        _group_warnings(result, pts, model, hardware, hw_row, layout, dtypes, wl)
        result.calibration.append((pts, [eff.source[r] for r in range(len(hardware))], hw_row))
    _assemble(result)
    return result


def _group_warnings(result, pts, model, hardware, hw_row, layout, dtypes, wl) -> None:
    n = result.n
    if model.max_context_tokens:
        over = wl.prompt + wl.output > model.max_context_tokens
        if over.any():
            mask = np.zeros(n, bool)
            mask[pts[over]] = True
            result.warnings.append(
                (
                    f"context (prompt + output) exceeds {model.name}'s supported {model.max_context_tokens} tokens; "
                    "quality beyond it needs a context-extension method (costs are still modelled)",
                    mask,
                )
            )
    for r, hw in enumerate(hardware):
        if not hw.has_native(dtypes.activations):
            mask = np.zeros(n, bool)
            mask[pts[hw_row == r]] = True
            result.warnings.append(
                (
                    f"{hw.name} has no {dtypes.activations} matrix units; GEMMs modelled at its 16-bit peak",
                    mask,
                )
            )
    heads = [getattr(g.mixer, "num_heads", None) for g in model.layer_groups]
    if any(h and h % layout.tp for h in heads):
        mask = np.zeros(n, bool)
        mask[pts] = True
        result.warnings.append(
            (f"tp={layout.tp} does not divide {model.name}'s attention heads; shards rounded up", mask)
        )


def _assemble(result: SweepResult) -> None:
    cols: dict = {}
    for g in result.groups:
        flat: dict = {}
        _flatten_columns("", g.columns, flat)
        for key, value in flat.items():
            if key not in cols:
                dtype = bool if np.asarray(value).dtype == bool else float
                cols[key] = np.zeros(result.n, dtype=dtype)
            cols[key][g.points] = np.broadcast_to(value, g.points.shape)
    # Breakdown kinds absent in some groups are zero there already.
    result.columns = cols
