"""Calibration profiles: measured efficiency curves of one GPU, as the engine consumes them.

A profile (hwspecs/calibration/<hardware>.yaml, written by `roofline calibrate`) holds, per op kind,
the measured points and a fitted saturating curve of efficiency (achieved / datasheet peak)
against problem size x:

    eff(x) = e_max * x^p / (x^p + x_half^p)          (a Hill curve: rises with size, saturates)

x is cbrt(m n k) for GEMMs (per dtype, e.g. `gemm_bf16`), the sequence length for causal prefill
attention (`attention_prefill`, head dim 128), and bytes moved for HBM streaming (`hbm`). Inside
the measured range the fitted curve is used; outside it the efficiency at the nearest measured
boundary is held (no extrapolation), and the result says which points fell outside.
`kernel_overhead_s` is the measured launch + tail time of an empty kernel. A `collectives:` section
(profilers/collectives.py) gives measured alpha-beta fits per link; the engine's collectives then
use them (ring formula, measured step latency and bandwidth) instead of the datasheet defaults.
An op's `table:` (profilers/COLLECTIVES.md) is its measured latency per message size for each GPU
count; the engine prices that op on that many GPUs of the scale-up link from it (`CollectiveTable`),
the framework's own all-reduce from the `custom_all_reduce` entry's table.

This module parses and evaluates profiles; reading files is roofline.hwspecs' job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from roofline.simulator.comm import COLLECTIVES
from roofline.simulator.errors import UserError, short
from roofline.simulator.grids import (  # noqa: F401 (the profile's grid types, re-exported)
    GEMM_GRID_FORMATS,
    GRID_AXES,
    GRID_FIELDS,
    GRID_KINDS,
    M_TILES,
    MAX_GRID_CELLS,
    Grid,
    grid_family,
    multilinear,
)

CURVE_KINDS = (
    "hbm",
    "gemm_bf16",
    "gemm_fp16",
    "gemm_fp8",
    "gemm_int8",
    "attention_prefill",
    "attention_decode",
)


class CalibrationError(UserError):
    """A calibration profile that cannot be used."""


def hill(x, e_max, x_half, p):
    """Saturating efficiency curve e_max * x^p / (x^p + x_half^p)."""
    x = np.asarray(x, dtype=float)
    return e_max / (1.0 + (x_half / np.maximum(x, 1e-300)) ** p)


@dataclass(frozen=True)
class Curve:
    e_max: float
    x_half: float
    p: float
    x_min: float  # measured range
    x_max: float
    residual: float = 0.0  # relative RMS of the fit
    points: tuple = ()  # ((x, measured efficiency), ...)

    def at(self, x):
        """Fitted efficiency, held at the measured boundary outside [x_min, x_max]."""
        return hill(np.clip(x, self.x_min, self.x_max), self.e_max, self.x_half, self.p)


@dataclass(frozen=True)
class CollectiveTable:
    """One collective's measured latency on `gpus` GPUs at increasing message sizes (bytes: the whole
    buffer, nccl-tests' S). `at` interpolates seconds linearly in bytes between measured sizes: each
    segment is an alpha-beta line, t = alpha + S / bw, through its two measured ends (comm.py's model
    of one algorithm and protocol), exact where NCCL keeps one protocol across the segment. A log-log
    chord over-estimates any such segment (log(alpha + bw^-1 e^u) is convex in u = log S): +10-40%
    across the 16x gaps of the held-out sizes in benchmarks/aic_holdout.py, where the alpha-beta
    chord halves the NCCL error. Below the smallest size its time is held (the latency floor);
    beyond the largest, the last segment's line continues (its bandwidth; S / the last point's
    busbw where noise made that segment fall)."""

    op: str  # comm.COLLECTIVES, or "custom_all_reduce" (the framework's own all-reduce)
    gpus: int
    bytes: tuple
    seconds: tuple

    def at(self, bytes_):
        xs, ys = self.bytes, self.seconds
        x = np.maximum(np.asarray(bytes_, dtype=float), xs[0])
        slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        slope = slope if slope > 0 else ys[-1] / xs[-1]
        return np.where(x > xs[-1], ys[-1] + (x - xs[-1]) * slope, np.interp(x, xs, ys))


@dataclass(frozen=True)
class LinkFit:
    """A measured link (profilers/collectives.py): ring-step latency and achieved bus bandwidth
    (nan without a fit: a link measured by tables only), and its measured tables."""

    alpha_s: float
    beta_Bps: float  # inf when times did not grow with size (bandwidth not resolved)
    op: str
    tables: tuple = ()  # CollectiveTable, one per (op, GPU count)


# Collective link labels by role: inside the scale-up domain, and across nodes.
INTRA_LABELS = ("nvlink", "xgmi", "pcie")
INTER_LABELS = ("network", "ib", "roce", "ethernet")
# The framework's own (one-shot / two-shot) all-reduce: its table prices the scale-up link's
# all-reduce where the engine uses the framework's kernel (topology.nvlink: custom_allreduce).
CUSTOM_ALLREDUCE_LABEL = "custom_all_reduce"


@dataclass(frozen=True)
class Profile:
    profile_id: str
    hardware: str
    curves: dict = field(default_factory=dict)  # kind -> Curve
    kernel_overhead_s: float | None = None
    provenance: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)  # label -> LinkFit
    fractions: dict = field(default_factory=dict)  # efficiency.FRACTIONS name -> measured fraction
    grids: dict = field(default_factory=dict)  # GRID_KINDS name -> Grid

    def link(self, labels: tuple):
        """The first measured link among `labels`, or None."""
        return next((self.links[label] for label in labels if label in self.links), None)


def _parse_links(collectives, source: str) -> dict:
    """Label -> LinkFit from a `collectives:` section; the all-reduce fit is preferred (it is the
    collective the engine issues most), else the first op with a fit."""
    if collectives is None:
        return {}
    _mapping(collectives, f"{source}: collectives", "link labels to measured ops")
    links = {}
    for label, entry in collectives.items():
        where = f"{source}: collectives.{_key(label)}"
        entry = _mapping(entry if entry is not None else {}, where, "ops: to measured collectives")
        ops = _mapping(entry.get("ops") or {}, f"{where}.ops", "collective names to measurements")
        order = ["all_reduce"] + [k for k in ops if k != "all_reduce"]
        for op in order:
            measured = ops.get(op) or {}
            measured = _mapping(measured, f"{where}.ops.{_key(op)}", "fit: and points")
            fit = measured.get("fit")
            if isinstance(fit, dict):
                at = f"{where}.ops.{_key(op)}.fit"
                alpha = _num(fit.get("alpha_s"), f"{at}.alpha_s", 0.0, MAX_ALPHA_S)
                beta = fit.get("beta_Bps")
                beta = float("inf") if beta in (float("inf"), ".inf") else _num(beta, f"{at}.beta_Bps")
                if not beta > 0:
                    raise CalibrationError(f"{at}.beta_Bps: a bandwidth is > 0, got {short(beta)}")
                links[str(label)] = LinkFit(alpha, beta, str(op))
                break
        tables = _parse_tables(ops, where)
        if tables:
            fit = links.get(str(label)) or LinkFit(float("nan"), float("nan"), tables[0].op)
            links[str(label)] = replace(fit, tables=tables)
    return _attach_custom(links, collectives, source)


MAX_TABLE_GPUS = 1 << 20
MAX_COLLECTIVE_S = 60.0  # one collective call (a 1 GiB all-reduce over PCIe takes ~0.1 s)


def _parse_tables(ops: dict, where: str) -> tuple:
    """CollectiveTable for each `ops.<op>.table.<gpus>: {bytes: [...], seconds: [...]}`."""
    out = []
    for op, measured in ops.items():
        if not isinstance(measured, dict) or measured.get("table") is None:
            continue
        at_op = f"{where}.ops.{_key(op)}"
        if op not in COLLECTIVES:
            raise CalibrationError(
                f"{at_op}: a table needs a known collective; valid: {', '.join(COLLECTIVES)}"
            )
        table = _mapping(measured["table"], f"{at_op}.table", "GPU counts to {bytes: [...], seconds: [...]}")
        for gpus, row in table.items():
            at = f"{at_op}.table.{_key(gpus)}"
            count = int(gpus) if isinstance(gpus, str) and gpus.isdigit() else gpus
            if isinstance(count, bool) or not isinstance(count, int) or not 2 <= count <= MAX_TABLE_GPUS:
                raise CalibrationError(
                    f"{at}: a table is keyed by GPU count, an integer >= 2, got {short(gpus)}"
                )
            row = _mapping(row, at, "bytes: and seconds: lists of equal length")
            sizes = _num_list(row.get("bytes"), f"{at}.bytes", MAX_X, "a message size in bytes")
            times = _num_list(row.get("seconds"), f"{at}.seconds", MAX_COLLECTIVE_S, "a collective's time")
            if len(sizes) < 2:
                raise CalibrationError(
                    f"{at}.bytes: a table needs at least 2 message sizes, got {len(sizes)}"
                )
            if len(times) != len(sizes):
                raise CalibrationError(f"{at}.seconds: {len(times)} times for {len(sizes)} message sizes")
            for i in range(1, len(sizes)):
                if not sizes[i] > sizes[i - 1]:
                    raise CalibrationError(
                        f"{at}.bytes[{i}]: message sizes must increase, got {sizes[i - 1]:g} then {sizes[i]:g}"
                    )
            out.append(CollectiveTable(str(op), count, tuple(sizes), tuple(times)))
    return tuple(out)


def _num_list(values, where: str, high: float, what: str) -> list:
    if not isinstance(values, list):
        raise CalibrationError(f"{where}: must be a list of numbers, got {short(values)}")
    return [_num(v, f"{where}[{i}]", 0.0, high, open_low=True, what=what) for i, v in enumerate(values)]


def _attach_custom(links: dict, collectives: dict, source: str) -> dict:
    """The `custom_all_reduce` entry's all-reduce tables, added to the scale-up link's LinkFit as
    op `custom_all_reduce` (the link it runs on; an entry there without fit or table is enough)."""
    custom = links.get(CUSTOM_ALLREDUCE_LABEL)
    tables = tuple(
        replace(t, op="custom_all_reduce") for t in (custom.tables if custom else ()) if t.op == "all_reduce"
    )
    if not tables:
        return links
    intra = [label for label in INTRA_LABELS if label in collectives]
    if not intra:
        raise CalibrationError(
            f"{source}: collectives.{CUSTOM_ALLREDUCE_LABEL}: the framework's all-reduce table prices the "
            f"scale-up link, so collectives needs that link's entry too ({', '.join(INTRA_LABELS)}; "
            "an empty mapping will do)"
        )
    for label in intra:
        fit = links.get(label) or LinkFit(float("nan"), float("nan"), "all_reduce")
        links[label] = replace(fit, tables=fit.tables + tables)
    return links


# Plausible ranges of profile values: far wider than any GPU's, narrow enough that a corrupted
# value (a sign flip, 1e300) is refused instead of turning into negative or astronomical times.
MAX_KERNEL_OVERHEAD_S = 1e-2  # an empty kernel's launch + tail is microseconds
MAX_ALPHA_S = 1.0  # a collective's per-step latency is microseconds
MAX_X = 1e18  # problem sizes: elements, tokens or bytes
MAX_HILL_P = 50.0
MAX_RESIDUAL = 100.0
MAX_POINT_EFFICIENCY = 100.0  # measured points may exceed 1 (other FLOP conventions); garbage does not


def _key(key) -> str:
    """A mapping key as it appears in a field path (quoted and cut when odd or long)."""
    return key if isinstance(key, str) and len(key) <= 60 and key.isprintable() else short(key)


def _mapping(value, where: str, what: str) -> dict:
    if not isinstance(value, dict):
        raise CalibrationError(f"{where}: must map {what}, got {short(value)}")
    return value


def _num(value, where: str, low=None, high=None, open_low=False, what: str = "a plausible value") -> float:
    """A finite number in [low, high] (or (low, high] with open_low); errors name the field."""
    try:
        finite = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    except OverflowError:  # an integer past float range
        finite = False
    if not finite:
        raise CalibrationError(f"{where}: must be a finite number, got {short(value)}")
    value = float(value)
    if (low is not None and (value < low or (open_low and value == low))) or (
        high is not None and value > high
    ):
        bracket = "(" if open_low else "["
        raise CalibrationError(f"{where}: {what} is in {bracket}{low:g}, {high:g}], got {short(value)}")
    return value


def parse_profile(doc, source: str) -> Profile:
    """Validate a profile mapping; errors name the file and the field."""
    if not isinstance(doc, dict):
        raise CalibrationError(f"{source}: a calibration profile must be a YAML mapping")
    doc = dict(doc)
    doc.setdefault("curves", {} if "collectives" in doc else None)
    for key in ("profile_id", "hardware", "curves"):
        if doc.get(key) is None:
            raise CalibrationError(
                f"{source}: missing {key!r} (a profile has profile_id, hardware, provenance, curves)"
            )
    _mapping(doc["curves"], f"{source}: curves", "op kinds to fitted curves")
    for key in ("profile_id", "hardware"):
        if not isinstance(doc[key], (str, int)) or isinstance(doc[key], bool):
            raise CalibrationError(f"{source}: {key} must be a name, got {short(doc[key])}")
    curves = {}
    for kind, c in doc["curves"].items():
        where = f"{source}: curves.{_key(kind)}"
        if kind not in CURVE_KINDS:
            raise CalibrationError(f"{where}: unknown op kind; valid: {', '.join(CURVE_KINDS)}")
        if not isinstance(c, dict) or not isinstance(c.get("fit"), dict):
            raise CalibrationError(f"{where}: needs fit: {{e_max, x_half, p}} and points")
        fit = c["fit"]
        e_max = _num(fit.get("e_max"), f"{where}.fit.e_max", 0.0, 1.2, True, "an efficiency")
        x_half = _num(fit.get("x_half"), f"{where}.fit.x_half", 0.0, MAX_X, open_low=True)
        p = _num(fit.get("p"), f"{where}.fit.p", 0.0, MAX_HILL_P, open_low=True)
        raw_points = c.get("points") or []
        if not isinstance(raw_points, list):
            raise CalibrationError(
                f"{where}.points: must be a list of {{x, efficiency}}, got {short(raw_points)}"
            )
        points = []
        for i, pt in enumerate(raw_points):
            at = f"{where}.points[{i}]"
            pt = _mapping(pt, at, "x and efficiency")
            x = _num(pt.get("x"), f"{at}.x", 0.0, MAX_X, open_low=True)
            points.append((x, _num(pt.get("efficiency"), f"{at}.efficiency", 0.0, MAX_POINT_EFFICIENCY)))
        points = tuple(points)
        xs = [x for x, _ in points] or [x_half]
        curves[kind] = Curve(
            e_max,
            x_half,
            p,
            min(xs),
            max(xs),
            _num(c.get("residual", 0.0), f"{where}.residual", 0.0, MAX_RESIDUAL),
            points,
        )
    overhead = doc.get("kernel_overhead_s")
    fractions = _parse_fractions(doc.get("fractions"), source)
    grids = _parse_grids(doc.get("grids"), source)
    return Profile(
        str(doc["profile_id"]),
        str(doc["hardware"]),
        curves,
        None
        if overhead is None
        else _num(overhead, f"{source}: kernel_overhead_s", 0.0, MAX_KERNEL_OVERHEAD_S),
        dict(_mapping(doc.get("provenance") or {}, f"{source}: provenance", "keys to values")),
        _parse_links(doc.get("collectives"), source),
        fractions,
        grids,
    )


OLD_AXES = (["log2_rows_per_expert", "log2_hidden_inter", "log2_experts_touched"],)


def _parse_grids(section, source: str) -> dict:
    """`grids: {gemm_bf16: {axes, start, step, shape, attainment: [...]}, ...}` -> kind -> Grid."""
    if section is None:
        return {}
    _mapping(section, f"{source}: grids", "kernel kinds to measured grids")
    out = {}
    for kind, g in section.items():
        where = f"{source}: grids.{_key(kind)}"
        if kind not in GRID_KINDS:
            raise CalibrationError(f"{where}: unknown grid kind; valid: {', '.join(GRID_KINDS)}")
        g = _mapping(g, where, "axes, start, step, shape and the measured values")
        family = grid_family(kind)
        axes = GRID_AXES[family]
        if list(g.get("axes") or []) != list(axes):
            # an earlier roofline's layout (the fused-MoE grid had one hidden x intermediate axis)
            again = (
                "; that is an earlier roofline's layout: create the profile again with the `roofline calibrate` "
                "command in its provenance (imported_by)"
                if g.get("axes") in OLD_AXES
                else ""
            )
            raise CalibrationError(f"{where}.axes: must be {list(axes)}, got {short(g.get('axes'))}{again}")
        dims = len(axes)
        start = _vector(g.get("start"), f"{where}.start", dims, -64.0, 64.0)
        step = _vector(g.get("step"), f"{where}.step", dims, 1e-3, 8.0)
        shape = g.get("shape")
        if (
            not isinstance(shape, list)
            or len(shape) != dims
            or not all(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 4096 for n in shape)
        ):
            raise CalibrationError(
                f"{where}.shape: must be {dims} cell counts in [1, 4096], got {short(shape)}"
            )
        cells = int(np.prod(shape))
        if cells > MAX_GRID_CELLS:
            raise CalibrationError(f"{where}.shape: {cells} cells is more than {MAX_GRID_CELLS}")
        values = {}
        for name in GRID_FIELDS[family]:
            raw = g.get(name)
            if not isinstance(raw, list) or len(raw) != cells:
                raise CalibrationError(
                    f"{where}.{name}: must be a list of {cells} values (the shape's cells, last axis "
                    f"fastest), got {short(raw) if not isinstance(raw, list) else f'{len(raw)} values'}"
                )
            try:
                arr = np.array(raw, dtype=float)
            except (TypeError, ValueError):
                raise CalibrationError(f"{where}.{name}: must hold numbers only") from None
            if not np.all(np.isfinite(arr)) or not np.all(arr > 0) or np.any(arr > MAX_X):
                bad = int(np.flatnonzero(~(np.isfinite(arr) & (arr > 0) & (arr <= MAX_X)))[0])
                raise CalibrationError(
                    f"{where}.{name}[{bad}]: must be a positive finite number, got {short(raw[bad])}"
                )
            values[name] = arr.reshape(shape)
        holdout = g.get("holdout") or {}
        _mapping(holdout, f"{where}.holdout", "median, p90 and rows of the held-out error")
        holdout = {
            k: _num(holdout[k], f"{where}.holdout.{k}", 0.0, MAX_X)
            for k in ("median", "p90", "rows")
            if k in holdout
        }
        tile = g.get("m_tile", 1)
        if family != "gemm" and "m_tile" in g:
            raise CalibrationError(f"{where}.m_tile: only GEMM grids count rows in tiles")
        if tile not in M_TILES or isinstance(tile, bool):
            raise CalibrationError(
                f"{where}.m_tile: must be one of {', '.join(map(str, M_TILES))} (rows per tile), got {short(tile)}"
            )
        out[kind] = Grid(kind, start, step, values, holdout, int(tile))
    return out


def _vector(value, where: str, dims: int, low: float, high: float) -> tuple:
    if not isinstance(value, list) or len(value) != dims:
        raise CalibrationError(f"{where}: must be a list of {dims} numbers, got {short(value)}")
    return tuple(_num(v, f"{where}[{i}]", low, high) for i, v in enumerate(value))


def _parse_fractions(section, source: str) -> dict:
    """`fractions: {score_kernel: 0.35, ...}`: measured fractions of peak of kernel families that
    have no curve of their own (efficiency.FRACTIONS names them)."""
    from roofline.simulator.efficiency import FRACTIONS

    if section is None:
        return {}
    _mapping(section, f"{source}: fractions", "kernel families to fractions of peak")
    out = {}
    for name, value in section.items():
        where = f"{source}: fractions.{_key(name)}"
        if name not in FRACTIONS:
            raise CalibrationError(f"{where}: unknown kernel family; valid: {', '.join(FRACTIONS)}")
        value = _num(value, where)
        if not 0 < value <= 1.2:
            raise CalibrationError(f"{where}: a fraction of peak is in (0, 1.2], got {value}")
        out[name] = value
    return out
