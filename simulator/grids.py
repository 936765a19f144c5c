"""Measured grids of a calibration profile (its `grids:` section, parsed by simulator.calibration).

Kernel times over a uniform grid of log2 shape coordinates, for the kernels whose time one curve over
one size cannot hold (their efficiency depends on the shape's aspect, not only its size). A grid is
read by multilinear interpolation of the logarithms of its values; outside it the boundary holds.
How the grids are fitted from measurements: profilers/grid_fit.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Measured grids (`grids:`): kernel times over a uniform grid of log2 shape coordinates, for the
# kernels whose time one curve over one size cannot hold (their efficiency depends on the shape's
# aspect, not only its size). Axes per kind, and the fields each cell holds:
GRID_AXES = {
    "gemm": ("log2_m", "log2_n", "log2_k"),
    "attention_prefill": ("log2_seqlen", "log2_batch_heads", "log2_group", "log2_head_dim"),
    # decode attention over its KV length too (the last axis, one node per octave): kernels switch
    # algorithm along it (split-KV / multi-block modes), so the engine reads the kernel time at
    # the KV-length nodes and takes it linear in the length between them (simulator/decode_time.py)
    "attention_decode": ("log2_batch_kv_heads", "log2_group", "log2_head_dim", "log2_kv_len"),
    # a fused MoE layer (router output in; both expert GEMMs, the activation and the top-k combine):
    # tokens per touched expert, hidden, one expert's intermediate (per GPU), experts touched.
    # Hidden and intermediate are separate axes: at one product, a narrow intermediate (the down
    # GEMM's short K loop, the up GEMM's narrow N) runs another kernel configuration
    "moe": ("log2_rows_per_expert", "log2_hidden", "log2_intermediate", "log2_experts_touched"),
    # MLA (DeepSeek-V2/V3, Kimi K2) attention, heads per GPU, KV cache bytes per element (bf16 1,
    # fp8 0): prefill over the per-head K/V materialised from the latent (group 1), decode over the
    # latent with weight absorption (FlashMLA-style)
    "mla_prefill": ("log2_seqlen", "log2_batch_heads", "log2_heads", "log2_kv_bytes"),
    "mla_decode": ("log2_batch", "log2_heads", "log2_kv_bytes", "log2_kv_len"),
}
GRID_FIELDS = {
    # roofline attainment: max(FLOPs / peak, bytes / bandwidth) / (kernel time - kernel_overhead_s)
    "gemm": ("attainment",),
    "attention_prefill": ("attainment",),
    # of the two expert GEMMs' roofline times plus the activation's and the combine's HBM passes
    "moe": ("attainment",),
    # of the HBM time of the bytes the kernel moves (KV read in its cache format, q in, o out)
    "attention_decode": ("attainment",),
    "mla_prefill": ("attainment",),
    # MLA decode: of max(FLOPs / peak, bytes / bandwidth) (compute can bind: 128 heads per GPU
    # attend over the shared latent at ~240 FLOPs per byte, near an H100's ridge), at KV-length
    # nodes as GQA decode (simulator/decode_time.py)
    "mla_decode": ("attainment",),
}
GEMM_GRID_FORMATS = ("bf16", "fp16", "fp8", "int8", "fp4")  # the engine's GEMM formats (units.DTYPE_BYTES)
# Fused-MoE kernels of four-bit weights under wider activations, `<weights>_<activations>`: their own
# measured kernels (in-kernel conversion of the weights; profilers/aic_points.MOE_MIXED_FORMATS),
# read where the scenario's dtype.weights and dtype.activations are that pair (efficiency.moe_grid_kind)
MOE_MIXED_KINDS = ("int4_bf16", "fp4_bf16", "fp4_fp8")
GRID_KINDS = (
    tuple(f"gemm_{f}" for f in GEMM_GRID_FORMATS)
    + tuple(f"moe_{f}" for f in GEMM_GRID_FORMATS + MOE_MIXED_KINDS)
    # prefill _fp8: FP8 attention (FP8 queries over an FP8 KV cache), _kv_fp8: 16-bit attention over
    # an FP8 KV cache; decode _fp8: an FP8 KV cache
    + ("attention_prefill", "attention_prefill_fp8", "attention_prefill_kv_fp8")
    + ("attention_decode", "attention_decode_fp8")
    + ("mla_prefill", "mla_decode")
)
MAX_GRID_CELLS = 200_000
# s: a fused-MoE call's fixed time (Grid.call_s; the shipped profiles' 0-48 us) well inside this
MAX_CALL_S = 0.01
# a fused-MoE grid's measured model shape (Grid.shapes), as the profile's YAML names its fields
MOE_SHAPE_KEYS = ("hidden", "intermediate", "top_k", "experts")
# its attainment's scale, either way: the shipped profiles' 0.03-29, 0.5-1.6 for 98% of the
# measured counts (the extremes: a few-token call that is mostly its fixed time, whose attainment is
# of the little left; grid_fit.measured_shapes)
MAX_SHAPE_SCALE = 100.0
# a skewed routing's time over the balanced one (Grid.skew): the shipped profiles' 0.6-1.7
MAX_SKEW = 10.0
SKEW_NODES = 13  # log2 rows per expert 0 .. 12


# A GEMM kernel may compute whole tiles of rows: m rows then take ceil(m / tile) tiles, and a
# measured GEMM grid's attainment is of the compute roof over the padded rows. The tile is the
# grid's own (`Grid.m_tile`), fitted from the kernel's times at m and m + 1 rows
# (profilers/grid_fit.py `fit_m_tile`); kernels differ: vLLM's and SGLang's Hopper fp8 GEMMs run
# m = 1025 ~13% slower than 1024 (tile 256), TensorRT-LLM's and cuBLAS' bf16 ones at the same
# speed (1: no padding).
M_TILES = (1, 64, 128, 256)


def gemm_tile_share(m, tile=1):
    """The share of a GEMM's computed rows that are real: m / (ceil(m / tile) x tile)."""
    m = np.maximum(np.asarray(m, dtype=float), 1.0)
    tile = np.asarray(tile, dtype=float)
    return m / (np.ceil(m / tile - 1e-9) * tile)


# The grid a kernel reads over a one-byte (FP8) KV cache, where a profile measured one (else it falls
# back to the 16-bit cache's: efficiency.profile_grids)
FP8_CACHE_GRID = {"attention_prefill": "attention_prefill_kv_fp8", "attention_decode": "attention_decode_fp8"}


def cache_grid(family: str, kv_bytes) -> str:
    """The grid family `family`'s kernel reads over a KV cache of `kv_bytes` bytes per element."""
    return FP8_CACHE_GRID[family] if np.all(np.asarray(kv_bytes) == 1) else family


def grid_family(kind: str) -> str:
    for family in ("attention_prefill", "attention_decode"):
        if kind.startswith(family):
            return family
    return kind.split("_", 1)[0] if kind.startswith(("gemm_", "moe_")) else kind


@dataclass(frozen=True)
class Grid:
    """Measured values on a uniform grid of log2 coordinates (`start + i * step` per axis), read by
    multilinear interpolation of their logarithms; outside the grid the boundary value holds."""

    kind: str
    start: tuple
    step: tuple
    values: dict  # field -> np.ndarray of the grid's shape (positive)
    holdout: dict = field(default_factory=dict)  # {median, p90, rows}: error on held-out shapes
    m_tile: int = 1  # GEMM grids: rows per tile their compute roof counts (gemm_tile_share)
    # a sample of the measured shapes it was fitted to, [(first coordinate, measured, grid value)],
    # written by the importer for the dashboard's Calibration page; the engine does not read it
    points: tuple = ()
    # MoE grids: the fused kernel's fixed time per call beyond its two launches (routing, the
    # tokens' permutation into expert order and back), outside the attainment (grid_fit.moe_call_s)
    call_s: float = 0.0
    # MoE grids: the measured model shapes, (hidden, intermediate per GPU, top-k, experts) ->
    # (log2 tokens per call, log of the attainment's scale there): each measured shape's own
    # kernel against the grid's value (a framework picks its kernel and tile configuration per
    # model), so a scenario of a measured shape is priced as it was measured (shape_scale)
    shapes: dict = field(default_factory=dict)
    # MoE grids: the kernels' time under a trained router's skewed routing over their balanced time
    # (the grid's), by log2 rows per expert 0, 1, .. (the table's own grouped_gemm
    # MOE_POWER_LAW_SLOWDOWN: aic_points.moe_skew); () where the table timed no skewed routing
    skew: tuple = ()

    @property
    def shape(self) -> tuple:
        return next(iter(self.values.values())).shape

    def shape_scale(self, key: tuple, log2_tokens):
        """The attainment's scale for the model shape `key` (hidden, intermediate per GPU, top-k,
        experts) at log2 tokens per call. A measured shape (`shapes`): its own, linear in log2
        tokens between measured counts, the end's value beyond them. A shape not measured whose
        model (hidden, top-k, experts) the grid measured at other intermediate sizes per GPU (the
        same experts split over another TP degree): their scales at these tokens, linear in log2
        intermediate between the two nearest splits, the nearest split's beyond them; a framework
        picks the same kernel family and close tile configurations for one model's experts
        whatever the split (held out by shape, aic_holdout.py: the p90 of vLLM's bf16 tables,
        median over GPUs, 21.3% -> 15.8%, SGLang's 29.4% -> 24.2%). 1 for any other shape."""
        measured = self.shapes.get(key)
        if measured is not None:
            return np.exp(np.interp(log2_tokens, *measured))
        split = self._splits.get((key[0], key[2], key[3]))
        if split is None:
            return 1.0
        log2_inter, curves = split
        # the split's place among the measured ones: a fractional index, held at the ends
        at = float(np.interp(np.log2(key[1]), log2_inter, np.arange(len(curves), dtype=float)))
        lo, w = int(at), at - int(at)
        hi = min(lo + 1, len(curves) - 1)
        return np.exp(
            (1.0 - w) * np.interp(log2_tokens, *curves[lo]) + w * np.interp(log2_tokens, *curves[hi])
        )

    def prices_shape(self, key: tuple) -> bool:
        """Whether shape_scale reads measured times for `key`: its own, or its model's at another
        split."""
        return key in self.shapes or (key[0], key[2], key[3]) in self._splits

    @property
    def _splits(self) -> dict:
        """(hidden, top-k, experts) -> (log2 intermediate per GPU of each measured split,
        ascending; their (log2 tokens, log scale) curves) over `shapes`."""
        splits = self.__dict__.get("_split_cache")
        if splits is None:
            by_model: dict = {}
            for (h, inter, k, e), curve in sorted(self.shapes.items()):
                by_model.setdefault((h, k, e), []).append((np.log2(inter), curve))
            splits = {
                model: (np.array([x for x, _ in rows]), tuple(c for _, c in rows))
                for model, rows in by_model.items()
            }
            object.__setattr__(self, "_split_cache", splits)
        return splits

    def at(self, name: str, *coords):
        """The interpolated value of field `name` at log2 coordinates `coords` (arrays broadcast)."""
        return np.exp(multilinear(self._logs[name], self.start, self.step, coords))

    def axis_nodes(self, axis: int) -> np.ndarray:
        """The log2 coordinates of an axis' nodes."""
        return self.start[axis] + self.step[axis] * np.arange(self.shape[axis])

    def last_axis_nodes(self) -> np.ndarray:
        return self.axis_nodes(-1)

    def at_nodes(self, name: str, *coords) -> np.ndarray:
        """Field `name` at every node of the last axis, interpolated over the other axes at
        `coords`: an array of shape broadcast(coords) + (nodes,). Equals `at` with the last
        coordinate on a node."""
        logs = self._logs[name]
        rows = logs.reshape(-1, logs.shape[-1])
        return np.exp(multilinear(rows, self.start[:-1], self.step[:-1], coords, logs.shape[:-1]))

    @property
    def _logs(self) -> dict:
        logs = self.__dict__.get("_log_cache")
        if logs is None:
            logs = {k: np.log(v) for k, v in self.values.items()}
            object.__setattr__(self, "_log_cache", logs)
        return logs


def multilinear(table: np.ndarray, start, step, coords, shape=None):
    """Multilinear interpolation of `table` (one axis per coordinate, uniform steps) at `coords`;
    positions outside the grid are clamped to its boundary (no extrapolation). With `shape` (the
    leading axes), `table` is (prod(shape), n) and each point gets the interpolated row of n."""
    if shape is None and len(coords) > 1 and any(np.ndim(c) == 0 for c in coords):
        return _fold_scalar_axes(table, start, step, coords)
    coords = np.broadcast_arrays(*[np.asarray(c, dtype=float) for c in coords])
    if shape is None:
        flat, shape = table.ravel(), table.shape
    else:
        flat = table
        coords = [c[..., None] for c in coords]
    strides = np.cumprod((1,) + tuple(shape)[:0:-1])[::-1]
    base = 0
    parts = []
    for axis, c in enumerate(coords):
        n = shape[axis]
        pos = np.minimum(np.maximum((c - start[axis]) / step[axis], 0.0), float(n - 1))
        i0 = np.minimum(pos.astype(np.intp), max(n - 2, 0))
        parts.append((pos - i0, strides[axis] if n > 1 else 0))
        base = base + i0 * strides[axis]
    # The 2^d corners (corner j's bit a: the upper node along axis a), then linear interpolation
    # along one axis at a time, the last first: each halves the corners.
    corners = [base]
    for _, stride in parts:
        corners = corners + [i + stride for i in corners]
    values = [flat.take(i) if flat.ndim == 1 else flat[i[..., 0]] for i in corners]
    for frac, _ in reversed(parts):
        half = len(values) // 2
        values = [lo + frac * (hi - lo) for lo, hi in zip(values[:half], values[half:])]
    return values[0]


def _fold_scalar_axes(table: np.ndarray, start, step, coords):
    """multilinear where some coordinates are one number for every point (a GEMM's n and k in a
    sweep over m): the table is interpolated along those axes first, then read at the others, so
    each point pays for 2^(array axes) corners, not 2^(all axes). Multilinear interpolation is a
    product of linear ones along each axis, so the order does not change the value."""
    keep = []
    for axis in reversed(range(len(coords))):  # from the last, so the axes before keep their place
        c = coords[axis]
        if np.ndim(c) != 0:
            keep.append(axis)
            continue
        n = table.shape[axis]
        pos = min(max((float(c) - start[axis]) / step[axis], 0.0), float(n - 1))
        i0 = min(int(pos), max(n - 2, 0))
        frac = pos - i0
        lo = table.take(i0, axis=axis)
        table = lo if n == 1 else (1.0 - frac) * lo + frac * table.take(i0 + 1, axis=axis)
    keep.reverse()
    if not keep:
        return float(table)
    return multilinear(table, [start[a] for a in keep], [step[a] for a in keep], [coords[a] for a in keep])
