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
    MAX_GRID_CELLS,
    Grid,
    grid_family,
)
from roofline.simulator.profile_fields import MAX_X, CalibrationError, mapping, number, section_items, vector

OLD_AXES = (["log2_rows_per_expert", "log2_hidden_inter", "log2_experts_touched"],)
MAX_CALL_S = 0.01  # s: a fused-MoE call's fixed time (measured 0-40 us) well inside this


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
        out[kind] = Grid(kind, start, step, values, holdout, int(tile), call_s=call_s)
    return out
