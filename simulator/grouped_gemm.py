"""Grouped (fused-MoE) expert GEMMs against the dense GEMM models the engine has: the measured share
of a dense GEMM grid's attainment a grouped kernel reaches, and the datasheet model's grouped form
(layers.expert_ops prices experts with them where no profile measured the fused-MoE kernel)."""

from __future__ import annotations

import numpy as np

from roofline.simulator.efficiency import EfficiencyTable, gemm_efficiency

# A fused-MoE kernel against the dense GEMM it is priced as where a profile has a GEMM grid but no
# fused-MoE grid (layers.expert_ops: the GEMM grid read at the grouped launch's shape, rows per
# expert x (touched experts x n) x k). Once the math bounds it, the grouped kernel runs well below
# the dense GEMM of the same tiles (likely causes, which the tables do not separate: it gathers each
# expert's rows through an index, and the tables' MoE kernels are the frameworks' own Triton/CUTLASS
# grouped GEMMs, not the vendor's tuned dense ones); at a few rows per expert the 8-bit one beats the dense grid, whose small GEMMs pay the
# activations' quantisation apart, and the NVFP4 ones (B200/GB200) beat it at every size. Measured:
# AIConfigurator's fused-MoE tables against the same framework's GEMM table on the same GPU
# (aiconfigurator-core 0.12.0; vLLM, SGLang and TensorRT-LLM on A100, H100, H200, B200, GB200 and
# L40S, each profile's tables from one framework release; balanced routing, no expert parallelism):
# the share of the GEMM grid's attainment that reproduces each measured kernel, median per table
# and octave of rows per expert, then the median over the tables of one input width (16 16-bit,
# 14 8-bit, 6 4-bit), at log2 rows 0, 1, .. 12 (the boundary holds beyond). The tables spread
# widely around it (0.3-1.2 at >= 512 rows). Checked with each chip's own tables left out of the
# median (benchmarks/aic_moe_share.py, which regenerates it; FP4 has one chip, so no check): over
# 60,088 rows the fallback's median |error| 19.4% -> 18.0%, p90 57% -> 51%, and at >= 512 rows per
# expert its bias -33% -> -1%; L40S, whose dense GEMMs already run far below the datasheet, gets
# worse on 4 of its 5 tables (vLLM bf16 6.0% -> 15.2%). Measured grids take the share per
# octave; the datasheet curve, which is not those dense kernels, takes its last octave as a ceiling
# on the math (grouped_gemm_efficiency) and its running minimum on the streaming rate
# (grouped_stream_share), so that time never falls as rows grow.
MOE_GROUPED_SHARE = {  # GEMM inputs' width in bits -> share at log2 rows per expert 0, 1, .. 12
    16: np.array([0.83, 1.00, 0.96, 0.94, 0.86, 0.90, 0.84, 0.71, 0.69, 0.61, 0.60, 0.64, 0.68]),
    8: np.array([1.09, 1.36, 1.29, 1.24, 1.13, 1.12, 1.02, 0.89, 0.71, 0.60, 0.59, 0.74, 0.74]),
    4: np.array([1.50, 1.80, 1.77, 1.64, 1.37, 1.31, 1.22, 1.17, 1.20, 1.15, 0.98, 1.15, 1.16]),
}


# The fallback's median |error| over the tables' rows with each chip's own tables left out of the
# share (benchmarks/aic_moe_share.py): how far to trust experts priced without a MoE grid
MOE_GROUPED_SHARE_ERROR = 0.18


def share_bits(input_bytes: float) -> int:
    """The MOE_GROUPED_SHARE curve of GEMM inputs of `input_bytes` per element: 16, 8 or 4 bits."""
    return 16 if input_bytes >= 2.0 else (8 if input_bytes >= 1.0 else 4)


def moe_grouped_share(log2_rows, bits: int):
    """MOE_GROUPED_SHARE at log2 rows per expert, linear between octaves."""
    curve = MOE_GROUPED_SHARE[bits]
    return np.interp(log2_rows, np.arange(curve.size), curve)


def grouped_attainment(attainment, share):
    """A dense GEMM grid's attainment scaled by a grouped kernel's `share`; a share above 1 (fixed
    costs the fused kernel saves) does not lift it past the roofline the grid did not pass."""
    return np.minimum(attainment * share, np.maximum(attainment, 1.0))


def grouped_gemm_efficiency(table: EfficiencyTable, offset, log2_rows, wide, k, bits: int):
    """The datasheet model's fraction of peak for a grouped expert GEMM: the GEMM curve at the grouped
    launch's shape (rows per expert x `wide` = touched experts x n x k), at most the grouped kernels'
    share at many rows (MOE_GROUPED_SHARE's last octave) of that curve's plateau for the shape (its
    value at 2^30 rows, where the boundary holds). A ceiling rather than the share per octave: the
    curve is not the dense grids the share was measured against, and min() of two curves that never
    fall keeps the time per row from rising with the rows (a longer prompt is never faster)."""
    curve = gemm_efficiency(table, offset, log2_rows, wide, k)
    plateau = gemm_efficiency(table, offset, 30.0, wide, k)
    return np.minimum(curve, MOE_GROUPED_SHARE[bits][-1] * plateau)


def _stream_curve(bits: int) -> np.ndarray:
    """MOE_GROUPED_SHARE up to 1 from 2 rows per expert on, as its running minimum; 1 row takes the
    2-row value (the 16-bit tables dip to 0.87 there and are back at 1.0 at 2 rows: the dip, kept,
    would cap every octave above it)."""
    curve = np.minimum.accumulate(np.minimum(MOE_GROUPED_SHARE[bits][1:], 1.0))
    return np.concatenate([curve[:1], curve])


STREAM_SHARE = {bits: _stream_curve(bits) for bits in MOE_GROUPED_SHARE}


def grouped_stream_share(log2_rows, bits: int):
    """The datasheet model's share of its streaming rate for a grouped expert GEMM (where no profile
    measured one): the grouped kernels' measured share, never rising with the rows, so that with the
    same weights more rows never stream faster (a longer prompt or a larger batch is never faster):
    1.0 at 1-2 rows per expert, 0.86 at 16-32, 0.71 at 128-256 (16-bit)."""
    curve = STREAM_SHARE[bits]
    return np.interp(log2_rows, np.arange(curve.size), curve)
