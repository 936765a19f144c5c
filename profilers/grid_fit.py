"""Measured kernel times -> the profile's `grids:` (simulator.calibration.Grid), with held-out error.

Some kernels' efficiency is not a function of one size: a GEMM's depends on the aspect of m, n and k
(a thin m against a wide n k streams weights; tile and wave quantisation bite differently along each
axis), prefill attention's on how many (sequence, head) blocks fill the SMs, on the GQA group and
head dim, decode attention's on sequences x KV heads, group, head dim and, not linearly, on the KV
length (kernels switch algorithm along it). For those the profile
keeps a grid over log2 shape coordinates, which the engine reads by multilinear interpolation:

* GEMMs and prefill attention: roofline attainment a = max(FLOPs / peak, bytes / bandwidth) /
  (t - kernel_overhead_s) per measured shape; the grid holds log a interpolated linearly (scipy's
  Delaunay `LinearNDInterpolator`) at its nodes, the nearest measured shape outside their hull. A
  GEMM's FLOPs count its rows in whole tiles of the kernel's own size, fitted from the tables' times
  at m and m + 1 rows (`fit_m_tile`, written as the grid's `m_tile`).
* Decode attention: the same attainment of the bytes moved (KV read in the cache's format, q in, o
  out) over (sequences x KV heads, group, head dim, KV length), one KV-length node per octave; the
  engine takes the kernel time at the length nodes and linear between them (simulator/decode_time.py),
  so its sums over decode steps stay exact, and the holdout predicts the same way.

* MLA attention (profilers/aic_mla.py): prefill as an attainment grid; decode as GQA decode, the
  attainment of max(FLOPs / peak, bytes / bandwidth) at each KV-length node (MLA decode can be
  compute-bound).

* Fused MoE (router output in; both expert GEMMs, the activation and the top-k combine inside):
  attainment of the two expert GEMMs' roofline times plus the activation's and the combine's HBM
  passes, over (tokens per touched expert, hidden, intermediate per GPU, experts touched), net of
  two launches (the engine's two expert GEMM ops). Its nodes are a
  Gaussian-weighted median of the measured log attainment (`median_nodes`), not an interpolation
  through every point: the tables hold some 30 model shapes, and a shape whose kernel runs an
  untuned or different configuration (B200's fp8 hidden-2816 models: 2-3x slower than their
  neighbours) would pass its attainment at full weight to every shape between it and the next
  one; the median outvotes one such shape with its neighbours.

Holdout (issue 11's op-level check): 20% of the shape groups (GEMM (n, k); attention (batch, heads,
KV heads); MoE the model shape) are held out at random (seeded), the grid fitted on the rest, and each held-out kernel's
time predicted through `Grid.at` exactly as the engine reads it; the grid written is then fitted on
every group. Its median, p90 and row count go into the grid's `holdout`; a sample of the measured
shapes with the grid's value at each (`points`) goes beside it for the dashboard's Calibration page.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from roofline.api import (
    GRID_AXES,
    GRID_FIELDS,
    M_TILES,
    MAX_CALL_S,
    MAX_SHAPE_SCALE,
    MOE_SHAPE_KEYS,
    Grid,
    decode_kernel_time,
    grid_family,
)

HOLDOUT_FRACTION = 0.2
SEED = 0
# Head dims (attention's last-but-one or last axis) in half octaves: the tables measure 192 beside
# the powers of two, and SGLang's FA3 kernels at 192 are their own (decode: 15.5 us at a few KV
# tokens on H100, where 128 takes 9.3 and 256 11.1), which one node per octave interpolated away
# (held out, SGLang decode at head dim 192, median |error|: H100 30% -> 10%, B200 47% -> 16%).
STEPS = {
    "gemm": (0.5, 1.0, 1.0),
    "moe": (0.5, 1.0, 1.0, 1.0),
    "attention_prefill": (0.5, 1.0, 1.0, 0.5),
    "attention_decode": (1.0, 1.0, 0.5, 1.0),  # one KV-length node per octave
    "mla_prefill": (0.5, 1.0, 1.0, 1.0),
    "mla_decode": (1.0, 1.0, 1.0, 1.0),
}
VALUE_DIGITS = 4  # significant figures written
MIN_TILE_PAIRS = 20  # (m, m + 1) pairs fit_m_tile needs to tell a tile from none
GRID_POINTS = 200  # measured shapes written beside each grid (Grid.points), for the Calibration page


def _sig(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=float)
    mag = np.where(a == 0, 1.0, np.abs(a))  # zero stays zero (an exact holdout)
    scale = 10.0 ** (VALUE_DIGITS - 1 - np.floor(np.log10(mag)))
    return np.round(a * scale) / scale


def _unique_mean(X: np.ndarray, y: np.ndarray) -> tuple:
    """Coordinates made unique (the mean of y where several shapes share them; Qhull needs unique
    points)."""
    keys, inverse = np.unique(X, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    total = np.bincount(inverse, weights=y, minlength=len(keys))
    return keys, total / np.bincount(inverse, minlength=len(keys))


# Axes measured at a few discrete values (head dims; decode's KV lengths, one per octave): the grid
# is fitted in the other axes for each measured value (a Delaunay triangulation of fewer dimensions,
# and no mixing of unlike kernels across them), then taken linear between the values at the nodes.
DISCRETE = {"attention_prefill": (3,), "attention_decode": (2, 3), "mla_decode": (2, 3)}


def fit_nodes(X: np.ndarray, y: np.ndarray, start, step, shape, discrete=()) -> np.ndarray:
    """y (a log value per point at coordinates X) interpolated at the grid's nodes; `discrete`
    axes are fitted per measured value (see DISCRETE)."""
    if not discrete:
        return _fit_continuous(X, y, start, step, shape)
    cont = [a for a in range(X.shape[1]) if a not in discrete]
    values = [np.unique(X[:, a]) for a in discrete]
    keys = X[:, list(discrete)]
    sub = (tuple(start[a] for a in cont), tuple(step[a] for a in cont), tuple(shape[a] for a in cont))
    lattice = np.full(tuple(len(v) for v in values) + sub[2], np.nan)
    have = np.zeros(lattice.shape[: len(discrete)], dtype=bool)
    for idx in np.ndindex(*have.shape):
        sel = np.all(keys == [v[j] for v, j in zip(values, idx)], axis=1)
        if sel.any():
            lattice[idx] = _fit_continuous(X[sel][:, cont], y[sel], *sub)
            have[idx] = True
    present = np.argwhere(have)
    where = np.array([[v[j] for v, j in zip(values, idx)] for idx in present])
    for idx in np.argwhere(~have):  # a combination never measured: the nearest measured one
        at = np.array([v[j] for v, j in zip(values, idx)])
        lattice[tuple(idx)] = lattice[tuple(present[np.argmin(((where - at) ** 2).sum(axis=1))])]
    out = lattice
    for i, (a, v) in enumerate(zip(discrete, values)):
        nodes = start[a] + step[a] * np.arange(shape[a])
        if v.size == 1:
            out = np.repeat(np.take(out, [0], axis=i), shape[a], axis=i)
            continue
        j = np.clip(np.searchsorted(v, nodes, side="right") - 1, 0, v.size - 2)
        frac = np.clip((nodes - v[j]) / (v[j + 1] - v[j]), 0.0, 1.0)
        bshape = [1] * out.ndim
        bshape[i] = shape[a]
        frac = frac.reshape(bshape)
        out = np.take(out, j, axis=i) * (1.0 - frac) + np.take(out, j + 1, axis=i) * frac
    order = list(discrete) + cont  # out's axes -> the grid's
    return np.moveaxis(out, range(len(order)), order)


def _fit_continuous(X: np.ndarray, y: np.ndarray, start, step, shape) -> np.ndarray:
    from scipy.interpolate import LinearNDInterpolator, NearestNDInterpolator

    X, y = _unique_mean(X, y)
    axes = [s + d * np.arange(n) for s, d, n in zip(start, step, shape)]
    nodes = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(axes))
    out = np.full(len(nodes), np.nan)
    if len(X) > X.shape[1] + 1:
        try:
            out = LinearNDInterpolator(X, y)(nodes)
        except Exception:  # degenerate hull (points on a plane): nearest only
            pass
    missing = np.isnan(out)
    if missing.any():
        out[missing] = NearestNDInterpolator(X, y)(nodes[missing])
    return out.reshape(shape)


MEDIAN_WIDTH = 0.5  # octaves: median_nodes' Gaussian width, the grid's finest step
MEDIAN_CHUNK = 256  # nodes per block (nodes x points distances in memory)


def median_nodes(X: np.ndarray, y: np.ndarray, start, step, shape, width: float = MEDIAN_WIDTH) -> np.ndarray:
    """y at the grid's nodes as the weighted median of the measured points, weight exp(-(d^2 -
    d_min^2) / (2 width^2)) by the distance d (in octaves) from the node, relative to the nearest
    point's d_min, so that a node far from every measured shape takes its nearest shapes' median
    (as `fit_nodes` takes the nearest outside the hull). The lower weighted median: the smallest y
    whose cumulative weight reaches half the total."""
    axes = [s + d * np.arange(n) for s, d, n in zip(start, step, shape)]
    nodes = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(axes))
    order = np.argsort(y, kind="stable")
    X, y = np.asarray(X, dtype=float)[order], np.asarray(y, dtype=float)[order]
    out = np.empty(len(nodes))
    for i in range(0, len(nodes), MEDIAN_CHUNK):
        d2 = (((nodes[i : i + MEDIAN_CHUNK, None, :] - X[None]) / width) ** 2).sum(-1)
        cw = np.cumsum(np.exp(-0.5 * (d2 - d2.min(axis=1, keepdims=True))), axis=1)
        out[i : i + MEDIAN_CHUNK] = y[np.argmax(cw >= 0.5 * cw[:, -1:], axis=1)]
    return out.reshape(shape)


def grid_frame(X: np.ndarray, family: str) -> tuple:
    """(start, step, shape) covering the measured coordinates on the family's steps."""
    step = STEPS[family]
    lo = np.floor(X.min(axis=0) / step) * step
    hi = np.ceil(X.max(axis=0) / step) * step
    shape = tuple(int(round((h - low) / s)) + 1 for low, h, s in zip(lo, hi, step))
    return tuple(float(v) for v in lo), tuple(float(s) for s in step), shape


def build_grid(kind: str, X: np.ndarray, logs: dict, frame: tuple, nodes=None) -> Grid:
    """The grid of `kind` at `frame`, its nodes from the points by `nodes` (default: fit_nodes with
    the kind's DISCRETE axes)."""
    start, step, shape = frame
    nodes = nodes or partial(fit_nodes, discrete=DISCRETE.get(grid_family(kind), ()))
    values = {name: _sig(np.exp(nodes(X, y, start, step, shape))) for name, y in logs.items()}
    return Grid(kind, start, step, values)


def held_out(groups: np.ndarray) -> np.ndarray:
    """Mask of rows whose shape group is held out (HOLDOUT_FRACTION of the distinct groups; of a
    table with a few groups of which the draw picked none, the one it drew lowest, so that a grid
    of two or more groups always has a held-out error)."""
    keys, inverse = np.unique(groups, axis=0, return_inverse=True)
    draw = np.random.default_rng(SEED).random(len(keys))
    pick = draw < HOLDOUT_FRACTION
    if not pick.any() and len(keys) > 1:
        pick[np.argmin(draw)] = True
    return pick[inverse.ravel()]


def errors_summary(predicted, measured) -> dict:
    e = np.abs(np.asarray(predicted) / np.asarray(measured) - 1.0)
    if e.size == 0:
        return {}
    return {"median": float(_sig(np.median(e))), "p90": float(_sig(np.quantile(e, 0.9))), "rows": int(e.size)}


def fit_m_tile(m, n, k, seconds, compute_bound) -> int:
    """The rows per tile (grids.M_TILES) a GEMM kernel computes, from its times at m and m + 1 rows
    where the table measured both (m >= 256 a multiple of 256, compute-bound): the tile whose
    padding ratio ceil((m + 1) / tile) / ceil(m / tile) is nearest the measured t(m + 1) / t(m) in
    log, at the median over the pairs; 1 (no padding) with fewer than MIN_TILE_PAIRS pairs."""
    times = {key: t for key, t, cb in zip(zip(m, n, k), seconds, compute_bound) if cb}
    ratio, rows = [], []
    for (a, b, c), t in times.items():
        if a >= 256 and a % 256 == 0 and (a + 1, b, c) in times:
            ratio.append(times[(a + 1, b, c)] / t)
            rows.append(a)
    if len(ratio) < MIN_TILE_PAIRS:
        return 1
    ratio, rows = np.log(ratio), np.asarray(rows, dtype=float)
    miss = [
        np.median(np.abs(ratio - np.log(np.ceil((rows + 1) / T) / np.ceil(rows / T)))) for T in M_TILES[1:]
    ]
    miss.insert(0, np.median(np.abs(ratio - np.log1p(1.0 / rows))))
    return int(M_TILES[int(np.argmin(miss))])


def moe_call_s(groups, tokens, seconds, roof_s, overhead: float) -> float:
    """A fused-MoE kernel's fixed time per call (Grid.call_s): across the measured model shapes
    (rows of `groups`), each at its fewest tokens, the intercept of the time less `overhead` (its
    launches) against the roofline time (Siegel's repeated medians, robust to shapes whose kernel runs
    untuned), at least 0; the slope is the attainment's inverse. A call of one token through small experts is
    almost all fixed time: routing and the tokens' permutation into expert order and back, kernels of
    their own (TensorRT-LLM 1.3 H100 bf16: 30 us at one token for experts of 2048 x 48 and 2048 x 96,
    whose weights stream in 1-3 us). Read as attainment, that time made the grid's value at a few
    tokens scale with the expert's size, which an unmeasured shape between measured ones does not
    follow."""
    from scipy.stats import siegelslopes

    from roofline.profilers.aic_points import _fastest  # the row of least `tokens` per shape

    first = _fastest(np.asarray(groups, dtype=float), np.asarray(tokens, dtype=float))
    net, roof = np.asarray(seconds)[first] - overhead, np.asarray(roof_s)[first]
    # shapes of one roofline time give no slope between them (a pair's slope would divide by
    # zero): their median time stands for them
    roof, at = np.unique(roof, return_inverse=True)
    if roof.size < 3:
        return 0.0
    net = np.array([np.median(net[at == i]) for i in range(roof.size)])
    _, intercept = siegelslopes(net, roof)
    # no more than the fastest of those calls beyond its launches: a fixed time inside every call
    return min(max(float(intercept), 0.0), float(net.min()), MAX_CALL_S)


def attainment_grid(
    kind: str,
    X,
    roof_s,
    seconds,
    overhead: float,
    groups,
    predict=None,
    nodes=None,
    m_tile: int = 1,
    call_s: float = 0.0,
) -> Grid:
    """Attainment of roof_s (the datasheet roofline time) per shape, at the nodes by `nodes`
    (build_grid's default, or median_nodes); `predict(grid, rows)` where the engine reads the grid otherwise
    than at each row's coordinates (decode: between KV-length nodes). `call_s`: a fixed time per
    call outside the attainment (fused MoE's, moe_call_s), as the engine adds it."""
    family = grid_family(kind)
    assert GRID_FIELDS[family] == ("attainment",) and X.shape[1] == len(GRID_AXES[family])
    overhead = overhead + call_s
    # time beyond the launch; floored at 1% of the kernel so that the shortest kernels (about the
    # launch itself) keep a finite attainment, which then prices them within that 1%
    net = np.maximum(seconds - overhead, 0.01 * seconds)
    log_att = np.log(roof_s / net)
    frame = grid_frame(X, family)
    test = held_out(groups)
    if not test.any():  # one shape group (a fused-MoE table of one model): its sizes held out instead
        test = held_out(X[:, :1])
    holdout = {}
    if test.any() and (~test).sum() > X.shape[1] + 1:
        probe = build_grid(kind, X[~test], {"attainment": log_att[~test]}, frame, nodes)
        if predict is None:
            predicted = roof_s[test] / probe.at("attainment", *X[test].T) + overhead
        else:
            predicted = predict(probe, test)
        holdout = errors_summary(predicted, seconds[test])
    grid = build_grid(kind, X, {"attainment": log_att}, frame, nodes)
    return Grid(kind, grid.start, grid.step, grid.values, holdout, m_tile, _sample(grid, X, log_att), call_s)


def measured_shapes(grid: Grid, X, roof_s, seconds, overhead: float, keys, tokens) -> dict:
    """Grid.shapes of a fused-MoE grid: per measured model shape (`keys`: hidden, intermediate per
    GPU, top-k, experts per row), at each measured token count, the scale that makes the grid's
    attainment price the row as measured (roof_s / (attainment x scale) + overhead + call_s =
    seconds, the time floored as attainment_grid floors it); rows of one shape at one token count
    (two models, or TP shares, of one per-GPU shape: the same kernel) take their median. The grid
    smooths over the shapes; a framework picks its kernel and tile configuration per model (vLLM's
    tuned fused-MoE configurations for some (experts, intermediate) per GPU and format; SGLang's
    FlashInfer or Triton kernels by model), which no axis of the grid tells apart."""
    net = np.maximum(seconds - overhead - grid.call_s, 0.01 * seconds)
    bound = np.log(MAX_SHAPE_SCALE) * 0.999  # within what a profile may hold, after rounding
    log_scale = np.clip(np.log(roof_s / (grid.at("attainment", *X.T) * net)), -bound, bound)
    out = {}
    keys = np.asarray(keys)
    whole = np.all(keys == np.round(keys), axis=1)
    for key in np.unique(keys[whole], axis=0):
        rows = np.all(keys == key, axis=1)
        x = np.log2(tokens[rows])
        nodes = np.unique(x)
        y = np.array([np.median(log_scale[rows][x == v]) for v in nodes])
        out[tuple(int(v) for v in key)] = (nodes, y)
    return out


def _sample(grid: Grid, X, log_att) -> tuple:
    """GRID_POINTS of the measured shapes (a fixed random sample), each as (its first coordinate,
    measured attainment, the grid's attainment there), for Grid.points."""
    pick = np.sort(np.random.default_rng(SEED).permutation(len(X))[:GRID_POINTS])
    fitted = grid.at("attainment", *X[pick].T)
    rows = np.column_stack([X[pick, 0], np.exp(log_att[pick]), fitted])
    return tuple(tuple(float(v) for v in _sig(r)) for r in rows)


def stream_roof(per_token, fixed, bandwidth):
    """roof_at for decode_grid of kernels that stream their bytes: (per_token x length + fixed) /
    bandwidth, per row."""
    return lambda rows, lengths: (per_token[rows, None] * lengths + fixed[rows, None]) / bandwidth


def decode_grid(kind: str, X, roof_at, seconds, overhead: float, groups) -> Grid:
    """Decode attention grid over X (its leading axes, then log2 KV length, one node per octave):
    attainment of the roofline time roof_at(rows, lengths) (rows: indices, lengths (rows, n) -> the
    rows' roofline seconds there); held-out rows predicted as the engine prices them
    (simulator/decode_time.py: the time at the length nodes, linear between)."""
    rows = np.arange(len(X))
    lengths = 2.0 ** X[:, -1]
    roof = roof_at(rows, lengths[:, None])[:, 0]

    def predict(probe, test):
        idx = rows[test]
        t = decode_kernel_time(probe, X[idx, :-1].T, lambda L: roof_at(idx, L), lengths[idx])
        return t + overhead

    return attainment_grid(kind, X, roof, seconds, overhead, groups, predict)


def grid_entry(grid: Grid, source: str) -> dict:
    """The profile's YAML mapping of a grid (values flat, last axis fastest)."""
    family = grid_family(grid.kind)
    entry = {
        "axes": list(GRID_AXES[family]),
        "start": [float(v) for v in grid.start],
        "step": [float(v) for v in grid.step],
        "shape": [int(n) for n in grid.shape],
    }
    for name in GRID_FIELDS[family]:
        entry[name] = [float(v) for v in grid.values[name].ravel()]
    if grid.holdout:
        entry["holdout"] = dict(grid.holdout)
    if grid.m_tile != 1:
        entry["m_tile"] = int(grid.m_tile)
    if grid.call_s:
        entry["call_s"] = float(_sig(grid.call_s))
    if grid.skew:  # skewed over balanced routing by log2 rows per expert (aic_points.moe_skew)
        entry["skew"] = [float(v) for v in _sig(np.array(grid.skew))]
    if grid.shapes:  # the measured model shapes' own scales (measured_shapes)
        entry["shapes"] = [
            {
                **dict(zip(MOE_SHAPE_KEYS, key)),
                "log2_tokens": [float(v) for v in _sig(x)],
                "scale": [float(v) for v in _sig(np.exp(y))],
            }
            for key, (x, y) in sorted(grid.shapes.items())
        ]
    entry["source"] = source
    if grid.points:  # the Calibration page draws them: measured and the grid's value, by the first axis
        entry["x"] = GRID_AXES[family][0]
        entry["points"] = [list(p) for p in grid.points]
    return entry
