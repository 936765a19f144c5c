"""Fused-MoE kernels under skewed routing against balanced routing: the source of
`grouped_gemm.MOE_POWER_LAW_SLOWDOWN` and `MOE_POWER_LAW_EP_SLOWDOWN` (what `runtime.moe_routing:
power_law` multiplies the experts' time by, without and with expert parallelism).

AIConfigurator's MoE tables time each kernel three times over the same shapes: tokens routed evenly
over the experts (`balanced`, what the engine's grids are fitted to) and drawn from a power law over
the experts (`power_law_1.2`, `power_law_1.01`), its default workload for sizing deployments
(aiconfigurator's `workload_distribution: power_law`, alpha 1.2; 1.01 for DeepSeek's models). A
trained router on real or random text is not balanced: a few experts take a large share of the
tokens, and in a grouped GEMM the busiest expert's rows set the kernel's tail. For every table
(GPU x framework), every format, and every shape both distributions measured (gated experts, no
expert parallelism, the kernel modes the framework runs), the ratio power_law_1.2 / balanced; the
median per table, format and octave of rows per expert (log2 of pairs / min(pairs, experts), 0 .. 12,
as the grids' first coordinate); then the median over the tables of one (weight bits, activation
bits). Printed with the spread over tables (p10, p90) and the rows behind each octave.

With expert parallelism the tables time one rank's experts over all the tokens' pairs routed to it;
under skewed routing that is the busiest rank, whose load grows with the ranks' count: the same
ratio per table and octave for each EP size (every format pooled, at least three shapes an octave),
then the median over the tables, is MOE_POWER_LAW_EP_SLOWDOWN (ep = 1 its first row, for the ratio
the engine takes: the EP rank imbalance on top of one kernel's skew).

Run:  python benchmarks/aic_moe_skew.py [--data DIR]   (needs pyarrow and the data: `pip install -e '.[aic]'`)
"""

from __future__ import annotations

import sys
import warnings
from collections import defaultdict

import numpy as np
from aic_kernel_scales import data_source, tables

from roofline.api import SKEW_NODES as OCTAVES
from roofline.profilers.aic_points import moe_skew_ratios
from roofline.simulator.grouped_gemm import MOE_POWER_LAW_EP_SLOWDOWN, MOE_POWER_LAW_SLOWDOWN

# a table's MoE dtype label -> (weight bits, GEMM input bits)
BITS = {
    "bfloat16": (16, 16),
    "float16": (16, 16),
    "fp8": (8, 8),
    "fp8_block": (8, 8),
    "nvfp4": (4, 4),
    "int4_wo": (4, 16),
    "w4a16_mxfp4": (4, 16),
    "w4a8_mxfp4_mxfp8": (4, 8),
}


def table_curves(c: dict) -> dict:
    """(weight bits, input bits) -> [per-octave median ratio (NaN where none), rows per octave] of one
    MoE table (aic_points.moe_skew_ratios, its labels pooled by width pair)."""
    pooled: dict = defaultdict(lambda: [[] for _ in range(OCTAVES)])
    for label, per in moe_skew_ratios(c).items():
        if label in BITS:
            for octave, ratios in enumerate(per):
                pooled[BITS[label]][octave] += ratios
    return {
        bits: (np.array([np.median(r) if r else np.nan for r in per]), np.array([len(r) for r in per]))
        for bits, per in pooled.items()
    }


EP_SIZES = (1, 2, 4, 8, 16, 32, 64)  # MOE_POWER_LAW_EP_SLOWDOWN's rows


def ep_curves(c: dict) -> dict:
    """EP size -> per-octave median ratio of one MoE table (every format pooled; NaN where an
    octave has fewer than three shapes)."""
    out = {}
    for ep in EP_SIZES:
        per: list = [[] for _ in range(OCTAVES)]
        for ratios in moe_skew_ratios(c, ep=ep).values():
            for octave, r in enumerate(ratios):
                per[octave] += r
        if any(per):
            out[ep] = np.array([np.median(r) if len(r) >= 3 else np.nan for r in per])
    return out


def main(argv=None) -> int:
    source = data_source(argv, __doc__.splitlines()[0])
    pooled: dict = defaultdict(list)
    counts: dict = defaultdict(lambda: np.zeros(OCTAVES, int))
    by_ep: dict = defaultdict(list)
    for hw, fw, t in tables(source):
        if "moe" not in t:
            continue
        for ep, curve in ep_curves(t["moe"].columns).items():
            by_ep[ep].append(curve)
        for bits, (curve, n) in table_curves(t["moe"].columns).items():
            pooled[bits].append(curve)
            counts[bits] += n
            print(f"{hw.name:22s} {fw:7s} w{bits[0]}a{bits[1]:<3d} " + " ".join(f"{v:5.2f}" for v in curve))
    print()
    print("Median over tables (p10, p90) per log2 rows per expert 0 .. 12; rows")
    out = {}
    for bits in sorted(pooled, reverse=True):
        stack = np.array(pooled[bits])
        with warnings.catch_warnings():  # an octave no table of this pair reached: NaN, filled below
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(stack, axis=0)
            p10, p90 = np.nanpercentile(stack, [10, 90], axis=0)
        # an octave no table reached holds its last measured neighbour's value
        last = 1.0
        for i in range(OCTAVES):
            last = med[i] = med[i] if np.isfinite(med[i]) else last
        out[bits] = np.round(med, 2)
        print(f"w{bits[0]}a{bits[1]}: {len(stack)} tables")
        print("  median " + " ".join(f"{v:5.2f}" for v in med))
        print("  p10    " + " ".join(f"{v:5.2f}" for v in p10))
        print("  p90    " + " ".join(f"{v:5.2f}" for v in p90))
        print("  rows   " + " ".join(f"{v:5d}" for v in counts[bits]))
    print()
    print("MOE_POWER_LAW_SLOWDOWN = {")
    for bits, curve in out.items():
        print(f"    {bits}: np.array([{', '.join(f'{v:.2f}' for v in curve)}]),")
    print("}")
    same = all(
        bits in MOE_POWER_LAW_SLOWDOWN and np.allclose(MOE_POWER_LAW_SLOWDOWN[bits], curve)
        for bits, curve in out.items()
    )
    print("grouped_gemm.MOE_POWER_LAW_SLOWDOWN " + ("matches" if same else "DIFFERS: update it"))
    print()
    print("With expert parallelism (every format pooled): median over tables per EP size")
    print("MOE_POWER_LAW_EP_SLOWDOWN = {")
    ep_out = {}
    for ep in EP_SIZES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            med = np.nanmedian(np.array(by_ep[ep]), axis=0)
        last = 1.0
        for i in range(OCTAVES):  # an octave no table reached holds the one below
            last = med[i] = med[i] if np.isfinite(med[i]) else last
        ep_out[ep] = np.round(med, 2)
        print(
            f"    {ep}: np.array([{', '.join(f'{v:.2f}' for v in ep_out[ep])}]),  # {len(by_ep[ep])} tables"
        )
    print("}")
    same = all(
        ep in MOE_POWER_LAW_EP_SLOWDOWN and np.allclose(MOE_POWER_LAW_EP_SLOWDOWN[ep], curve)
        for ep, curve in ep_out.items()
    )
    print("grouped_gemm.MOE_POWER_LAW_EP_SLOWDOWN " + ("matches" if same else "DIFFERS: update it"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
