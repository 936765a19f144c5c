"""A calibration profile's `grids:` section (measured kernel grids, simulator/grids.py) parsed and
checked field by field; every error names the file and the field. simulator/calibration.py calls
`parse_grids` for the whole profile.
"""

from __future__ import annotations

import numpy as np

from roofline.simulator.errors import short
from roofline.simulator.grids import (
    GRID_AXES,
    GRID_FIELDS,
    GRID_KINDS,
    M_TILES,
    MAX_CALL_S,
    MAX_GRID_CELLS,
    MAX_SHAPE_SCALE,
    MAX_SKEW,
    MOE_SHAPE_KEYS,
    SKEW_NODES,
    Grid,
    grid_family,
)
from roofline.simulator.profile_fields import MAX_X, CalibrationError, mapping, number, section_items, vector

OLD_AXES = (["log2_rows_per_expert", "log2_hidden_inter", "log2_experts_touched"],)


def parse_grids(section, source: str) -> dict:
    """`grids: {gemm_bf16: {axes, start, step, shape, attainment: [...]}, ...}` -> kind -> Grid."""
    out = {}
    items = section_items(
        section, f"{source}: grids", "kernel kinds to measured grids", GRID_KINDS, "grid kind"
    )
    for kind, g, where in items:
        g = mapping(g, where, "axes, start, step, shape and the measured values")
        family = grid_family(kind)
        axes = GRID_AXES[family]
        given = g.get("axes")
        if not isinstance(given, list) or given != list(axes):
            # an earlier roofline's layout (the fused-MoE grid had one hidden x intermediate axis)
            again = (
                "; that is an earlier roofline's layout: create the profile again with the `roofline calibrate` "
                "command in its provenance (imported_by)"
                if g.get("axes") in OLD_AXES
                else ""
            )
            raise CalibrationError(f"{where}.axes: must be {list(axes)}, got {short(g.get('axes'))}{again}")
        dims = len(axes)
        start = vector(g.get("start"), f"{where}.start", dims, -64.0, 64.0)
        step = vector(g.get("step"), f"{where}.step", dims, 1e-3, 8.0)
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
        mapping(holdout, f"{where}.holdout", "median, p90 and rows of the held-out error")
        holdout = {
            k: number(holdout[k], f"{where}.holdout.{k}", 0.0, MAX_X)
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
        call_s = g.get("call_s", 0.0)
        if family != "moe" and "call_s" in g:
            raise CalibrationError(f"{where}.call_s: only fused-MoE grids have a fixed time per call")
        call_s = number(call_s, f"{where}.call_s", 0.0, MAX_CALL_S, what="a fixed time per call (s)")
        if family != "moe" and "shapes" in g:
            raise CalibrationError(f"{where}.shapes: only fused-MoE grids list measured model shapes")
        shapes = _parse_shapes(g.get("shapes"), f"{where}.shapes")
        if family != "moe" and "skew" in g:
            raise CalibrationError(f"{where}.skew: only fused-MoE grids time skewed routing")
        skew = _parse_skew(g.get("skew"), f"{where}.skew")
        out[kind] = Grid(
            kind, start, step, values, holdout, int(tile), call_s=call_s, shapes=shapes, skew=skew
        )
    return out


MAX_LOG2_TOKENS = 30.0


def _parse_skew(values, where: str) -> tuple:
    """`skew: [13 numbers]` (a skewed routing's time over the balanced one by log2 rows per expert
    0 .. 12) -> Grid.skew; () where absent."""
    if values is None:
        return ()
    if not isinstance(values, list) or len(values) != SKEW_NODES:
        raise CalibrationError(
            f"{where}: must be a list of {SKEW_NODES} ratios (skewed over balanced routing at log2 rows "
            f"per expert 0 .. {SKEW_NODES - 1}), got {short(values)}"
        )
    return tuple(
        number(v, f"{where}[{i}]", 1.0 / MAX_SKEW, MAX_SKEW, what="a time ratio")
        for i, v in enumerate(values)
    )


def _parse_shapes(entries, where: str) -> dict:
    """`shapes: [{hidden, intermediate, top_k, experts, log2_tokens: [...], scale: [...]}, ...]` ->
    (hidden, intermediate, top_k, experts) -> (log2 tokens, log scale) (Grid.shapes)."""
    if entries is None:
        return {}
    if not isinstance(entries, list):
        raise CalibrationError(
            f"{where}: must be a list of measured shapes ({', '.join(MOE_SHAPE_KEYS)}, log2_tokens, scale), "
            f"got {short(entries)}"
        )
    out = {}
    for i, entry in enumerate(entries):
        at = f"{where}[{i}]"
        entry = mapping(entry, at, f"{', '.join(MOE_SHAPE_KEYS)}, log2_tokens and scale")
        key = []
        for name in MOE_SHAPE_KEYS:
            v = entry.get(name)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_X:
                raise CalibrationError(f"{at}.{name}: must be a positive whole number, got {short(v)}")
            key.append(v)
        key = tuple(key)
        if key in out:
            raise CalibrationError(f"{at}: the shape {dict(zip(MOE_SHAPE_KEYS, key))} is listed twice")
        tokens, scale = entry.get("log2_tokens"), entry.get("scale")
        if not isinstance(tokens, list) or not tokens:
            raise CalibrationError(f"{at}.log2_tokens: must be a list of numbers, got {short(tokens)}")
        if not isinstance(scale, list) or len(scale) != len(tokens):
            raise CalibrationError(
                f"{at}.scale: must be a list of {len(tokens)} numbers (one per log2_tokens), got {short(scale)}"
            )
        x = np.array(
            [number(v, f"{at}.log2_tokens[{j}]", 0.0, MAX_LOG2_TOKENS) for j, v in enumerate(tokens)]
        )
        if np.any(np.diff(x) <= 0):
            raise CalibrationError(f"{at}.log2_tokens: must increase, got {short(tokens)}")
        y = [
            number(v, f"{at}.scale[{j}]", 0.0, MAX_SHAPE_SCALE, open_low=True, what="an attainment's scale")
            for j, v in enumerate(scale)
        ]
        out[key] = (x, np.log(np.array(y)))
    return out
