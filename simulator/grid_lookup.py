"""Measured grids read for each point of a sweep: a sweep's points span hardware rows, each row with
its profile's grid of a family or none (EfficiencyTable.grids), so every lookup gathers the points of
each row and reads that row's grid (simulator/grids.py) for them. Used by the op builders
(opinputs, attention, layers).
"""

from __future__ import annotations

import numpy as np

from roofline.simulator.efficiency import EfficiencyTable
from roofline.simulator.grids import MOE_MIXED_KINDS


def _by_row(grids, row, arrays, read, fields: int):
    """`read(grid, *arrays at its points)` -> `fields` arrays, gathered over the hardware rows' grids
    (None: the row's points keep 1), and the mask of the points a grid read."""
    *arrays, row = np.broadcast_arrays(*[np.asarray(a, dtype=float) for a in arrays], np.asarray(row))
    out = [np.ones(row.shape) for _ in range(fields)]
    mask = np.zeros(row.shape, dtype=bool)
    for h, grid in enumerate(grids):
        if grid is not None:
            sel = row == h
            for o, v in zip(out, read(grid, *[a[sel] for a in arrays])):
                o[sel] = v
            mask |= sel
    return out, mask


def grid_values(table: EfficiencyTable, family: str, row, name, coords):
    """Field `name` (or a tuple of fields) of the measured `family` grid at log2 `coords`, for each
    point of hardware row(s) `row`, and which points have such a grid: (values, mask), mask True
    when every point has one; None where no row has one."""
    rows = table.grids.get(family)
    if not rows:
        return None
    names = name if isinstance(name, tuple) else (name,)
    if len(rows) == 1:
        values = tuple(rows[0].at(n, *coords) for n in names)
        return (values if isinstance(name, tuple) else values[0]), True
    out, mask = _by_row(rows, row, coords, lambda g, *c: [g.at(n, *c) for n in names], len(names))
    return (tuple(out) if isinstance(name, tuple) else out[0]), mask


def _grid_scalar(table: EfficiencyTable, family: str, row, attr: str, default):
    """Grid attribute `attr` of the measured `family` grid for each point of hardware row(s) `row`;
    `default` where a row has none."""
    rows = table.grids.get(family) or [None]
    values = np.array([getattr(g, attr) if g is not None else default for g in rows])
    return values[0].item() if len(values) == 1 else values[np.asarray(row)]


def grid_m_tile(table: EfficiencyTable, family: str, row):
    """The rows per tile (Grid.m_tile) of the measured `family` grid for each point of hardware
    row(s) `row`; 1 where a row has none."""
    return _grid_scalar(table, family, row, "m_tile", 1)


def grid_call_s(table: EfficiencyTable, family: str, row):
    """The fixed time per call (Grid.call_s) of the measured `family` grid for each point of
    hardware row(s) `row`; 0 where a row has none."""
    return _grid_scalar(table, family, row, "call_s", 0.0)


def grid_converts_weights(table: EfficiencyTable, family: str, row):
    """Whether the measured `family` grid of each point's hardware row(s) `row` timed kernels that
    convert four-bit weights themselves (grids.MOE_MIXED_KINDS), so that its attainment already
    holds the weight-only GEMMs' conversion (efficiency.WEIGHT_ONLY); False where a row has none."""
    rows = table.grids.get(family) or [None]
    values = np.array([g is not None and g.kind.split("_", 1)[-1] in MOE_MIXED_KINDS for g in rows])
    return values[0].item() if len(values) == 1 else values[np.asarray(row)]


def grid_shape_scale(table: EfficiencyTable, family: str, row, key: tuple, log2_tokens):
    """The attainment's scale (Grid.shape_scale) of the measured `family` grid for the model shape
    `key` at `log2_tokens`, for each point of hardware row(s) `row`; 1 where a row's grid measured
    neither that shape nor its model at another split, or has no grid."""
    rows = [g if g is not None and g.prices_shape(key) else None for g in table.grids.get(family) or ()]
    if not any(rows):
        return 1.0
    if len(rows) == 1:
        return rows[0].shape_scale(key, log2_tokens)
    return _by_row(rows, row, (log2_tokens,), lambda g, x: [g.shape_scale(key, x)], 1)[0][0]


def grid_skew(table: EfficiencyTable, family: str, row, log2_rows):
    """The measured `family` grid's skewed-over-balanced routing time (Grid.skew) at log2 rows per
    expert, linear between its nodes, for each point of hardware row(s) `row`, and which points have
    one: (values, mask); None where no row's grid timed skewed routing."""
    rows = [g if g is not None and g.skew else None for g in table.grids.get(family) or ()]
    if not any(rows):
        return None

    def read(g, x):
        return [np.interp(x, np.arange(len(g.skew), dtype=float), g.skew)]

    if len(rows) == 1:
        return read(rows[0], np.asarray(log2_rows, dtype=float))[0], True
    (values,), mask = _by_row(rows, row, (log2_rows,), read, 1)
    return values, mask


def measured_or(has, measured, default):
    """`measured` where a profile's grid covers the point (`has`: a mask, or True for every point),
    else `default`."""
    return measured if has is True else np.where(has, measured, default)
