"""Efficiency model: the achievable fraction of datasheet peaks, per op kind and shape.

`t = max(flops / (peak * eff_c), bytes / (bw * eff_m)) + kernel_overhead`. A calibration profile
(`roofline calibrate`, measured on a GPU) supplies these curves; until one exists for a device, the
named datasheet defaults below apply. Each default is derived from a published measurement in
shared/reference/published_measurements.yaml, normalised by the same SKU's datasheet peak:

* HBM: STREAM triad / datasheet bandwidth (Azure HPC/AI benchmark results, BabelStream):
  A100-80GB 1.70/2.039 = 0.834, H100-SXM 2.97/3.35 = 0.887, H200 4.15/4.8 = 0.865,
  MI300X 4.09/5.3 = 0.772. Other SKUs: the mean of the three NVIDIA figures (0.862).
* GEMM, per format class (a GEMM's efficiency is a fraction of its own format's peak):
  - 16-bit (and tf32/fp32): cuBLASLt square GEMMs (same Azure results). Shape curve over
    s = cbrt(m*n*k), normalised to the largest size: A100 fp16 119.4/221.8/228.0/253.7/256.5 TFLOP/s
    at s = 1024..16384. Plateau (fraction of peak at large s): A100 256.5/312 = 0.822; H100 bf16
    798/989.4 = 0.807 and H200 788/989.4 = 0.796 (8192^3 bf16, this team's measurement); others 0.80.
  - 8-bit (fp8, int8, and the sub-byte formats, which run on the 8-bit units): Azure cuBLASLt fp8,
    H100 274.1/1011.3/1216.9/1290.1/1377.3 and H200 290.8/1013.4/1249.1/1300.6/1366.3 TFLOP/s at
    s = 1024..16384; the shape is their mean normalised to s = 16384, the plateau 1377.3/1978.9 =
    0.696 (H100) and 1366.3/1978.9 = 0.690 (H200), their mean elsewhere. Small 8-bit GEMMs reach a
    far smaller share of their peak than 16-bit ones (0.14 vs 0.47 at 1024^3). int8 and fp4 take the
    fp8 curve until measured (no published curve; same tensor-core generation and data path).
* Causal prefill attention: FlashAttention-2 on A100 (arXiv:2307.08691 Fig. 5) for Ampere/Ada/AMD
  and FlashAttention-3 on H100 (arXiv:2407.08608 Fig. 5) for Hopper/Blackwell, as a fraction of
  bf16 peak by sequence length (512..16384), head dim 128; head dim 64 scales by the paper's ratio.
  An FP8 attention kernel (`dtype.attention: fp8`) takes the same fraction of the fp8 peak until a
  profile measures it: no causal FP8 curve is published, so this is an upper bound and a result
  that uses it says so (`FP8_ATTENTION_WARNING`).
* Decode attention and elementwise ops stream from HBM at the HBM efficiency.
* Kernels without a measured curve of their own have a named fraction of their format's peak
  (`FRACTIONS`, overridable per GPU by a profile's `fractions:` section):
  - `score_kernel` 0.3 — unfused attention-score kernels of methods (SnapKV's observation-window
    vote, MInference's index): QK^T of a few queries against every key, softmax written to HBM.
    Assumption: about half the fused FlashAttention plateau (0.6 of peak on A100 and H100, above),
    as the scores round-trip HBM and the softmax runs outside the tensor cores.
  - `linear_attention` 0.5 — lightning attention's blocked intra/inter-block products
    (arXiv:2401.04658): tensor-core GEMMs of block size 256 with a recurrent state update between
    blocks; assumption between the GEMM plateau (0.8) and FlashAttention-2 at short blocks (0.42 at
    512 tokens, FA2 Fig. 5), until measured.
  Method GEMMs of known shape (ShadowKV's low-rank keys, encoders) use the GEMM curve itself.
* Kernel overhead: DEFAULT_KERNEL_OVERHEAD_S per kernel (launch + tail), an assumption until
  measured by `roofline calibrate`.

Curves are stored on fixed log2 grids so that many SKUs evaluate in one vectorised gather. A
calibration profile (`simulator.calibration`) replaces a SKU's row with its measured curves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from roofline.simulator.grids import FP8_CACHE_GRID, MOE_MIXED_KINDS, cache_grid, grid_family

# Pinned host<->device copies reach ~80% of the PCIe link: 26.28 of 32 GB/s (A100, Gen4) and 51-52 of
# 64 GB/s (H100/H200, Gen5) in the Azure nvbandwidth results (published_measurements.yaml).
HOST_LINK_EFFICIENCY = 0.8
DEFAULT_KERNEL_OVERHEAD_S = 2e-6  # assumption: a launch with CUDA graphs ~1-2 us, eager ~4 us

HBM_EFFICIENCY = {
    "a100-80gb-sxm": 1.70 / 2.039,
    "h100-sxm": 2.97 / 3.35,
    "h200": 4.15 / 4.8,
    "mi300x": 4.09 / 5.3,
}
HBM_EFFICIENCY_DEFAULT = (1.70 / 2.039 + 2.97 / 3.35 + 4.15 / 4.8) / 3

# Uniform log2 grids (one octave per step) wide enough for any measured range; published points
# are resampled onto them with np.interp, which holds the boundary value outside the data.
GEMM_GRID = np.arange(6.0, 17.0)  # cbrt(m n k) from 64 to 65536
ATTN_GRID = np.arange(8.0, 22.0)  # sequence length from 256 to 2M
_AZURE_GEMM_LOG2 = np.log2([1024.0, 2048.0, 4096.0, 8192.0, 16384.0])
_A100_FP16 = np.array([119.4, 221.8, 228.0, 253.7, 256.5])
GEMM_SHAPE = np.interp(GEMM_GRID, _AZURE_GEMM_LOG2, _A100_FP16 / _A100_FP16[-1])
GEMM_PLATEAU = {
    "a100-80gb-sxm": 256.5 / 312.0,
    "a100-40gb-sxm": 256.5 / 312.0,
    "h100-sxm": 798 / 989.4,
    "h200": 788 / 989.4,
}
GEMM_PLATEAU_DEFAULT = 0.80
FRACTIONS = {"score_kernel": 0.3, "linear_attention": 0.5}  # see the module docstring
_H100_FP8 = np.array([274.1, 1011.3, 1216.9, 1290.1, 1377.3])
_H200_FP8 = np.array([290.8, 1013.4, 1249.1, 1300.6, 1366.3])
GEMM_SHAPE_8BIT = np.interp(
    GEMM_GRID, _AZURE_GEMM_LOG2, (_H100_FP8 / _H100_FP8[-1] + _H200_FP8 / _H200_FP8[-1]) / 2
)
GEMM_PLATEAU_8BIT = {"h100-sxm": 1377.3 / 1978.9, "h200": 1366.3 / 1978.9}
GEMM_PLATEAU_8BIT_DEFAULT = (1377.3 + 1366.3) / 2 / 1978.9
EIGHT_BIT = ("fp8", "int8", "fp4", "int4", "int2")  # formats whose GEMMs run on 8-bit (or narrower) units

# Weight-only quantised GEMMs (integer weights, 16-bit activations: W4A16 / W8A16) dequantise every
# weight in the kernel. Measured on A100-SXM (AIConfigurator's TensorRT-LLM 1.0.0 GEMM table,
# `int4_wo` / `int8_wo` against `bfloat16` on the same 288 (n, k) shapes, medians over the shapes with
# n k >= 16M): at m <= 4 rows the weight stream reaches 0.37 (int4) and 0.56 (int8) of the HBM
# bandwidth where the bf16 GEMM reaches 0.71, i.e. 0.52 and 0.79 of the 16-bit stream's efficiency;
# at m >= 1024 rows the GEMM takes 1.05x (int4) and 1.02x (int8) the bf16 time. Format: (weight-stream
# efficiency relative to a 16-bit GEMM's, compute-time factor). A calibration that measures the
# deployment's kernel (Marlin-style kernels stream closer to 16-bit efficiency) replaces it.
# Four-bit floating-point weights under 16-bit activations (MXFP4 W4A16: GPT-OSS's experts on Hopper)
# convert in the kernel too. No GEMM table measures them; the fused-MoE tables do (AIConfigurator's
# w4a16_mxfp4 rows, the profiles' `moe_fp4_bf16` grids), against the same profile's bf16 fused-MoE
# grid at the same coordinates: on Hopper, the median over 73 (profile, model shape) pairs of vLLM's,
# SGLang's and TensorRT-LLM's H100 and H200 tables streams at 0.57 of the bf16 kernel's efficiency
# (2-32 rows per expert) and takes 1.40x its math time (>= 4096 tokens); the frameworks differ
# (vLLM 0.64-0.82, TensorRT-LLM 0.53-0.59, SGLang 0.27-0.29 stream share):
# benchmarks/aic_weight_only.py. Where a profile measured those kernels, their grid prices the experts
# and these factors do not apply (opinputs.weight_gemm_op's `converted`).
WEIGHT_ONLY = {"int4": (0.52, 1.05), "int8": (0.79, 1.02), "fp4": (0.57, 1.40)}
SIXTEEN_BIT = ("bf16", "fp16", "fp32")


def weight_only(weights: str, activations: str) -> tuple:
    """(weight-stream efficiency factor, compute-time factor) of a GEMM with `weights` x `activations`:
    (1, 1) unless integer or four-bit floating-point weights meet 16-bit activations (converted in
    the kernel)."""
    if activations in SIXTEEN_BIT and weights in WEIGHT_ONLY:
        return WEIGHT_ONLY[weights]
    return (1.0, 1.0)


FP8_ATTENTION_WARNING = (
    "fp8 attention uses the bf16 FlashAttention curve's fraction of the fp8 peak (no published causal "
    "FP8 curve; an upper bound until a calibration profile measures it)"
)

_FA_LOG2 = np.log2([512.0, 1024.0, 2048.0, 4096.0, 8192.0, 16384.0])
_FA2_A100_CAUSAL_HD128 = np.array([132, 168, 187, 198, 200, 197]) / 312.0
_FA2_A100_CAUSAL_HD64 = np.array([115, 146, 167, 177, 181, 183]) / 312.0
_FA3_H100_CAUSAL_HD128 = np.array([292, 423, 521, 579, 602, 616]) / 989.4
ATTN_CURVES = {
    "fa2": np.interp(ATTN_GRID, _FA_LOG2, _FA2_A100_CAUSAL_HD128),
    "fa3": np.interp(ATTN_GRID, _FA_LOG2, _FA3_H100_CAUSAL_HD128),
}
HD64_RATIO = float(np.mean(_FA2_A100_CAUSAL_HD64 / _FA2_A100_CAUSAL_HD128))
FA3_ARCHITECTURES = ("hopper", "blackwell")


@dataclass(frozen=True)
class EfficiencyTable:
    """Per-SKU efficiency rows (one row per distinct hardware in a sweep)."""

    hbm: np.ndarray  # (H,)
    gemm: np.ndarray  # (H, len(GEMM_GRID)) fraction of peak
    attn: np.ndarray  # (H, len(ATTN_GRID)) fraction of bf16 peak, causal, head dim 128
    kernel_overhead_s: np.ndarray  # (H,)
    source: tuple  # per row: 'datasheet' or a profile id
    error_band: tuple = ()  # per row: {curve: relative RMS residual of its fit} or 'uncalibrated'
    links: tuple = ()  # per row: (intra LinkFit or None, inter LinkFit or None) from a profile
    fractions: dict = field(default_factory=dict)  # FRACTIONS name -> (H,) fraction of peak
    grids: dict = field(default_factory=dict)  # grid family -> per row: a measured Grid or None


def eight_bit_units(hw, dtype: str) -> bool:
    """Whether kernels (GEMMs, attention) in `dtype` run on this chip's 8-bit (or narrower) units; a
    format the chip lacks falls back to its 16-bit peak (`Hardware.peak`) and so to the 16-bit curve."""
    return dtype in EIGHT_BIT and hw.peak(dtype) > hw.peak("bf16")


def datasheet_row(hw, dtype: str = "bf16", attention: str = "bf16") -> tuple:
    """(hbm, gemm curve, attention curve, overhead, source) defaults for one Hardware, with GEMMs
    in `dtype` and attention computing in `attention` (each curve a fraction of its format's peak)."""
    hbm = HBM_EFFICIENCY.get(hw.name, HBM_EFFICIENCY_DEFAULT)
    if eight_bit_units(hw, dtype):
        gemm = GEMM_SHAPE_8BIT * GEMM_PLATEAU_8BIT.get(hw.name, GEMM_PLATEAU_8BIT_DEFAULT)
    else:
        gemm = GEMM_SHAPE * GEMM_PLATEAU.get(hw.name, GEMM_PLATEAU_DEFAULT)
    attn = ATTN_CURVES["fa3" if hw.architecture in FA3_ARCHITECTURES else "fa2"]
    return hbm, gemm, attn, DEFAULT_KERNEL_OVERHEAD_S, "datasheet", UNCALIBRATED


def profile_row(
    hw,
    profile,
    dtype: str = "bf16",
    attention: str = "bf16",
    weights: str | None = None,
    kv_bytes: float = 2.0,
) -> tuple:
    """The same row from a measured profile: each curve it has for these formats replaces the
    datasheet default. A 16-bit curve never stands in for an 8-bit GEMM or attention (their
    fractions of peak differ: see the module docstring). Its error band names the grids read over a
    KV cache of `kv_bytes` bytes per element (`read_grids`)."""
    hbm, gemm, attn, overhead, *_ = datasheet_row(hw, dtype, attention)
    curves = profile.curves
    used = []
    if "hbm" in curves:
        hbm = float(curves["hbm"].at(curves["hbm"].x_max))  # streaming efficiency of large copies
        used.append("hbm")
    key = f"gemm_{dtype}"
    if key not in curves and not eight_bit_units(hw, dtype):
        key = "gemm_bf16"
    if key in curves:
        gemm = curves[key].at(2.0**GEMM_GRID)
        used.append(key)
    key = f"attention_prefill_{attention}"
    if key not in curves and not eight_bit_units(hw, attention):
        key = "attention_prefill"  # the profile's 16-bit curve (FP8 on a chip without FP8 units too)
    if key in curves:
        attn = curves[key].at(2.0**ATTN_GRID)
        used.append(key)
    if profile.kernel_overhead_s is not None:
        overhead = profile.kernel_overhead_s
    grids = read_grids(profile_grids(hw, profile, dtype, attention, weights), kv_bytes)
    # a family's measured grid prices its ops where the profile has one: its curve then stands in
    # for nothing (the band names what priced the point)
    gridded = {grid_family(family) for family, grid in grids.items() if grid is not None}
    used = [key for key in used if grid_family(key) not in gridded]
    band = error_band(curves, used, [g for g in grids.values() if g is not None])
    return hbm, gemm, attn, overhead, profile.profile_id, band


def moe_grid_kind(weights: str | None, activations: str) -> str:
    """The fused-MoE grid format a profile measured for experts in `weights` under GEMM inputs in
    `activations`: the activations' format, or `<weights>_<activations>` for four-bit weights under
    wider activations (grids.MOE_MIXED_KINDS: those kernels convert the weights themselves; a
    16-bit activation format reads the bf16 pair)."""
    if weights is None or weights == activations:
        return activations
    kind = f"{weights}_{'bf16' if activations in SIXTEEN_BIT else activations}"
    return kind if kind in MOE_MIXED_KINDS else activations


def profile_grids(
    hw, profile, dtype: str = "bf16", attention: str = "bf16", weights: str | None = None
) -> dict:
    """The profile's measured grids the engine uses for GEMMs in `dtype` and attention computing in
    `attention`: grid family -> Grid or None. As for curves, a 16-bit grid never stands in for an
    8-bit GEMM; prefill attention in 16 bits reads the 16-bit grid (over an FP8 KV cache its own,
    `attention_prefill_kv_fp8`, where measured), FP8 attention its own (`attention_prefill_fp8`,
    fitted to FP8 kernels at the FP8 peak) or none. Experts of four-bit `weights` under wider
    activations read their own measured kernels' grid where the profile has one (`moe_grid_kind`),
    else the activations' format's."""
    grids = getattr(profile, "grids", None) or {}
    key = f"gemm_{dtype}"
    if key not in grids and not eight_bit_units(hw, dtype):
        key = "gemm_bf16"
    # FP8 attention on a chip without FP8 units runs at its 16-bit peak: the 16-bit kernels' grids
    sixteen = attention in ("bf16", "fp16") or (attention == "fp8" and not eight_bit_units(hw, "fp8"))
    fp8_prefill = grids.get("attention_prefill_fp8") if attention == "fp8" else None
    moe, own = f"moe_{dtype}", f"moe_{moe_grid_kind(weights, dtype)}"
    if own in grids:
        moe = own
    elif moe not in grids and not eight_bit_units(hw, dtype):
        moe = "moe_bf16"
    return {
        "gemm": grids.get(key),
        "moe": grids.get(moe),
        "attention_prefill": grids.get("attention_prefill") if sixteen else fp8_prefill,
        # over an FP8 KV cache: the fastest kernel measured over one (vLLM's 16-bit kernels run
        # 12-18% slower on H100, SGLang's Hopper kernels compute in FP8), else the 16-bit cache's
        "attention_prefill_kv_fp8": (
            grids.get("attention_prefill_kv_fp8") or grids.get("attention_prefill")
            if sixteen
            else fp8_prefill
        ),
        "attention_decode": grids.get("attention_decode"),
        # an fp8 KV cache: its own measured kernels where the profile has them, else the 16-bit
        # cache's attainment applied to the fp8 bytes (simulator/decode_time.py)
        "attention_decode_fp8": grids.get("attention_decode_fp8") or grids.get("attention_decode"),
        # MLA's own kernels, measured with bf16 compute (the KV format is a grid axis)
        "mla_prefill": grids.get("mla_prefill") if sixteen else None,
        "mla_decode": grids.get("mla_decode") if sixteen else None,
    }


def read_grids(grids: dict, kv_bytes) -> dict:
    """The families of `profile_grids` that attention over a KV cache of `kv_bytes` bytes per element
    reads: over an FP8 cache the FP8-cache families (FP8_CACHE_GRID's), over any other their 16-bit
    counterparts, as the engine picks them (grids.cache_grid); the other families as they are."""
    unread = {family: cache_grid(family, kv_bytes) for family in FP8_CACHE_GRID}
    skip = {
        other
        for family, chosen in unread.items()
        for other in (family, FP8_CACHE_GRID[family])
        if other != chosen
    }
    return {family: grid for family, grid in grids.items() if family not in skip}


def error_band(curves: dict, used: list, grids: list = ()) -> dict:
    """How far to trust the curves a point used: each curve's relative RMS fit residual, each
    measured grid's median error on held-out shapes, and the largest ('max'); a point that used
    none of the profile's curves or grids is 'uncalibrated'."""
    if not used and not grids:
        return UNCALIBRATED
    band = {key: float(curves[key].residual) for key in used}
    band.update({g.kind: float(g.holdout.get("median", 0.0)) for g in grids})
    band["max"] = max(band.values())
    return band


UNCALIBRATED = "uncalibrated"


def build_table(
    hardware: list,
    profiles: dict | None = None,
    dtype: str = "bf16",
    attention: str = "bf16",
    weights: str | None = None,
    kv_bytes: float = 2.0,
) -> EfficiencyTable:
    """Rows for each hardware: its profile's curves where one is given (name -> Profile), else
    the datasheet defaults; GEMM curves for `dtype` (the GEMMs' input format), attention curves for
    `attention`, fused-MoE grids for experts in `weights` (None: `dtype`); each row's error band
    names the grids read over a KV cache of `kv_bytes` bytes per element."""
    profiles = profiles or {}
    rows = [
        profile_row(hw, profiles[hw.name], dtype, attention, weights, kv_bytes)
        if profiles.get(hw.name)
        else datasheet_row(hw, dtype, attention)
        for hw in hardware
    ]
    fractions = {
        name: np.array([_fraction(profiles.get(hw.name), name) for hw in hardware]) for name in FRACTIONS
    }
    grids = [
        profile_grids(hw, profiles[hw.name], dtype, attention, weights) if profiles.get(hw.name) else {}
        for hw in hardware
    ]
    return EfficiencyTable(
        fractions=fractions,
        grids={
            family: tuple(g.get(family) for g in grids)
            for family in dict.fromkeys(k for g in grids for k in g)  # profile_grids' families
            if any(g.get(family) is not None for g in grids)
        },
        hbm=np.array([r[0] for r in rows]),
        gemm=np.array([r[1] for r in rows]),
        attn=np.array([r[2] for r in rows]),
        kernel_overhead_s=np.array([r[3] for r in rows]),
        source=tuple(r[4] for r in rows),
        error_band=tuple(r[5] for r in rows),
        links=tuple(_links(profiles.get(hw.name)) for hw in hardware),
    )


def prefill_attention_measured(table: EfficiencyTable) -> np.ndarray:
    """Per row: whether a profile measured its prefill attention (a curve or grid of it among those
    the row used, its error band); the datasheet curve prices the others."""
    return np.array(
        [isinstance(b, dict) and any(k.startswith("attention_prefill") for k in b) for b in table.error_band],
        dtype=bool,
    )


def _fraction(profile, name: str) -> float:
    """A profile's measured fraction for kernel family `name`, else the named default."""
    measured = getattr(profile, "fractions", None) or {}
    return measured.get(name, FRACTIONS[name])


def _links(profile) -> tuple:
    from roofline.simulator.calibration import INTER_LABELS, INTRA_LABELS

    if profile is None:
        return (None, None)
    return (profile.link(INTRA_LABELS), profile.link(INTER_LABELS))


def row_offsets(table: np.ndarray, row) -> object:
    """Flat offsets of each point's row in `table` (0 when the table has a single row)."""
    return 0 if table.shape[0] == 1 else np.asarray(row) * table.shape[1]


def interp_log2(table: np.ndarray, grid: np.ndarray, offset, x_log2) -> np.ndarray:
    """Piecewise-linear interpolation of each point's row of `table` at log2 position `x_log2`.

    Grids are uniform with a step of one octave (asserted below), so the position is arithmetic,
    and values are gathered from the flattened table. Outside the grid the boundary value is held
    (no extrapolation beyond what was measured).
    """
    last = grid.size - 1
    pos = np.minimum(np.maximum(x_log2 - grid[0], 0.0), float(last))  # (np.clip is slower on scalars)
    i0 = np.minimum(pos.astype(np.intp), last - 1)
    w = pos - i0
    flat = table.ravel()
    idx = i0 + offset
    lo = flat.take(idx)
    return lo + w * (flat.take(idx + 1) - lo)


assert np.all(np.diff(GEMM_GRID) == 1.0) and np.all(np.diff(ATTN_GRID) == 1.0)  # one octave per step


def gemm_efficiency(table: EfficiencyTable, offset, log2_m, n, k):
    """Fraction of peak for an (m x k) @ (k x n) GEMM, keyed by log2 of cbrt(m n k)."""
    # n * k in float64: a product of Python ints past int64 would reach log2 as an object array.
    return interp_log2(
        table.gemm,
        GEMM_GRID,
        offset,
        (np.maximum(log2_m, 0.0) + np.log2(np.multiply(n, k, dtype=float))) / 3.0,
    )


def attention_prefill_efficiency(table: EfficiencyTable, offset, log2_seqlen, head_dim: int):
    """Fraction of its format's peak for causal prefill attention at this sequence length."""
    eff = interp_log2(table.attn, ATTN_GRID, offset, log2_seqlen)
    return eff * (HD64_RATIO if head_dim <= 64 else 1.0)


# Decode attention kernels (FlashAttention / FlashInfer / XQA decode with split-KV), measured:
# AIConfigurator's generation-attention tables (aiconfigurator-core 0.12.0; head dim 128, bf16 KV,
# 2K-131K tokens) fit t = t_fix + KV bytes / (bandwidth x e_max x u / (u + ...)) with u = sequences x
# KV heads in the kernel, the units it parallelises over: 1 / (1 + (u_half / u)^p). vLLM and SGLang
# on H100, H200 and B200: t_fix 9.5-13.3 us, u_half 0.73-1.79, p 1.44-2.14, e_max 0.88-0.97 (median
# |error| 3-5% over ~1,900 shapes each, where bytes / (bandwidth x HBM efficiency) + 2 us was 16-29% low).
# One sequence of one KV head (TP'd GQA at batch 1) streams at about half the bandwidth. We take
# t_fix 11 us, u_half 1.0, p 1.6, and the HBM streaming efficiency as e_max (benchmarks/aic_kernel_scales.py
# prints the fits).
DECODE_ATTENTION_FIXED_S = 11e-6
DECODE_UNITS_HALF, DECODE_UNITS_P = 1.0, 1.6


def decode_parallel_efficiency(units):
    """Share of the streaming bandwidth a decode attention kernel reaches over `units` (sequences x
    KV heads) independent units of work (see DECODE_ATTENTION_FIXED_S)."""
    units = np.maximum(np.asarray(units, dtype=float), 1e-9)
    return 1.0 / (1.0 + (DECODE_UNITS_HALF / units) ** DECODE_UNITS_P)


def attention_decode_efficiency(table: EfficiencyTable, offset, head_dim: int):
    """Fraction of peak for the matrix work of decode attention (MLA's latent attention, verified
    draft tokens). A decode kernel splits the KV into blocks of a fixed size whatever its length
    (flash-decoding), so it runs at the long-sequence end of the attention curve; keying it on the
    prompt instead made decode faster as the prompt grew where the curve is steep."""
    return attention_prefill_efficiency(table, offset, ATTN_GRID[-1], head_dim)
