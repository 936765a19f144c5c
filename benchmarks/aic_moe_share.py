"""A fused-MoE kernel against the dense GEMM it is priced as without a MoE table: the source of
`grouped_gemm.MOE_GROUPED_SHARE`, and its check with each GPU's own tables left out.

Where a profile has a GEMM grid but no fused-MoE grid, the engine prices each expert GEMM as the
GEMM grid at the grouped launch's shape (rows per expert, touched experts x n, k; layers.expert_ops).
For every AIConfigurator table that measured both (fused MoE and GEMMs, one GPU and framework), each
MoE row gives the share s of that grid's attainment that reproduces its measured time:
    s = (sum over the two GEMMs of roof / grid attainment) / (measured - activation and combine
        passes at the datasheet bandwidth - four launches),
the median per table and octave of rows per expert, then the median over the tables (16-bit and
8-bit inputs apart) is the curve. Check: the fallback's error on every table with the curve pooled
from the other GPUs' tables only (B200 and GB200 are one chip), before -> after.

Run:  python benchmarks/aic_moe_share.py [--data DIR]   (needs pyarrow and the data: `pip install -e '.[aic]'`)
"""

from __future__ import annotations

import numpy as np
from aic_kernel_scales import data_source

from roofline.api import load_hardware
from roofline.profilers.aic_import import build_import_profile
from roofline.profilers.aic_points import moe_points
from roofline.profilers.aic_read import available_gpus, read_gpu_tables
from roofline.simulator.calibration import parse_profile
from roofline.simulator.efficiency import build_table, grid_values
from roofline.simulator.grouped_gemm import MOE_GROUPED_SHARE, grouped_attainment, moe_grouped_share

FRAMEWORKS = ("vllm", "sglang", "trtllm")
OCTAVES = np.arange(MOE_GROUPED_SHARE[16].size)  # log2 rows per expert 0, 1, ..


def moe_without_grid(c: dict, table, overhead: float, share=None) -> np.ndarray:
    """The fused-MoE rows priced as the engine prices experts on a GPU whose profile has a GEMM grid
    but no MoE grid (layers.expert_ops): the two expert GEMMs (`grouped_gemm_seconds`), one launch
    each; the activation and the combine as HBM passes at the datasheet bandwidth, one launch each."""
    return 4 * overhead + c["pass_roof"] + grouped_gemm_seconds(c, table, share)


def moe_log2_rows(c: dict) -> np.ndarray:
    """log2 of the rows per touched expert of fused-MoE rows (moe_points' columns)."""
    return np.log2(np.maximum(c["tokens"] * c["topk"] / np.maximum(c["touched"], 1.0), 1.0))


def grouped_gemm_seconds(c: dict, table, share=None) -> np.ndarray:
    """The up and the down expert GEMMs of fused-MoE rows: each one's roofline over the GEMM grid's
    attainment at (rows per expert, touched x n, k) times the grouped kernel's share of it
    (grouped_gemm.moe_grouped_share; `share`: values at log2 rows 0, 1, .. to use instead, (1.0,)
    for the dense grid alone)."""
    touched = np.maximum(c["touched"], 1.0)
    rows = moe_log2_rows(c)
    s = moe_grouped_share(rows, c["bits"]) if share is None else np.interp(rows, np.arange(len(share)), share)
    t = 0.0
    for roof, (n, k) in zip(
        c["gemm_roofs"], ((c["up"] * c["inter"], c["hidden"]), (c["hidden"], c["inter"]))
    ):
        att, _ = grid_values(table, "gemm", 0, "attainment", (rows, np.log2(n * touched), np.log2(k)))
        t = t + roof / grouped_attainment(att, s)
    return t


def chip(sku: str) -> str:
    """GPUs of one chip: GB200 is B200's."""
    name = sku.split("-", 1)[0]
    return "b200" if name == "gb200" else name


def tables(source):
    """One dict per (GPU, framework, format) that measured fused MoE and GEMMs: the MoE rows (as
    aic_points.moe_points reads them), the profile's table for the format and its kernel overhead."""
    for fw in FRAMEWORKS:
        for sku in available_gpus(source, fw):
            try:
                hw = load_hardware(sku)
            except Exception:  # noqa: BLE001 - a GPU the data has and we do not describe
                continue
            data = read_gpu_tables(source, sku, fw)
            if "moe" not in data or "gemm" not in data:
                continue
            profile = parse_profile(build_import_profile(data, sku, fw, source), f"{sku} {fw}")
            for dtype, c in moe_points(data["moe"], hw).items():
                table = build_table([hw], {hw.name: profile}, dtype)
                if table.grids.get("gemm") is None:
                    continue
                yield {
                    "sku": sku,
                    "framework": fw,
                    "dtype": dtype,
                    "c": c,
                    "table": table,
                    "overhead": profile.kernel_overhead_s or 0.0,
                }


def share_curve(t: dict) -> dict:
    """octave of rows per expert -> median share over the table's rows in it."""
    c = t["c"]
    dense = grouped_gemm_seconds(c, t["table"], share=(1.0,))
    rest = c["seconds"] - c["pass_roof"] - 4 * t["overhead"]
    share = dense / np.maximum(rest, 1e-12)
    octave = np.round(moe_log2_rows(c)).astype(int)
    return {int(o): float(np.median(share[octave == o])) for o in np.unique(octave)}


def pooled(curves: list) -> np.ndarray:
    """Median over tables per octave (an octave no table measured: the nearest one's)."""
    values = [
        np.median([c[o] for c in curves if o in c]) if any(o in c for c in curves) else np.nan
        for o in OCTAVES
    ]
    values = np.array(values)
    have = ~np.isnan(values)
    return np.interp(OCTAVES, OCTAVES[have], values[have])


def _stats(err: np.ndarray) -> str:
    a = np.abs(err)
    return f"{np.median(a):.1%} / {np.percentile(a, 90):.1%} ({np.median(err):+.1%})"


def main(argv=None) -> int:
    source = data_source(argv, __doc__.splitlines()[0])
    found = list(tables(source))
    for t in found:
        t["curve"] = share_curve(t)
    print(f"Fused MoE vs the GEMM grid at the grouped launch ({source.package} {source.version})")
    print("Share of the grid's attainment per octave of rows per expert (log2 rows 0..12), per table:")
    for t in found:
        line = " ".join(f"{t['curve'].get(o, np.nan):.2f}" for o in OCTAVES)
        print(f"  {t['sku']:14s} {t['framework']:7s} {t['dtype']:5s} {line}")
    print()
    print("MOE_GROUPED_SHARE (median over the tables):")
    for bits in MOE_GROUPED_SHARE:
        label = f"{bits}-bit"
        curves = [t["curve"] for t in found if t["c"]["bits"] == bits]
        curve = pooled(curves)
        print(f"  {label} ({len(curves)} tables): [{', '.join(f'{v:.2f}' for v in curve)}]")
    print()
    print("The fallback's error, each table with the curve pooled from other chips' tables only")
    print("(median |err| / p90 (median signed)); rows per expert >= 512 apart:")
    print("| GPU | framework | format | rows | without the share | with it | >= 512 rows without | with |")
    print("|---|---|---|---:|---|---|---|---|")
    before_all, after_all, big_all = [], [], []
    for t in found:
        others = [
            u["curve"] for u in found if u["c"]["bits"] == t["c"]["bits"] and chip(u["sku"]) != chip(t["sku"])
        ]
        c = t["c"]
        if not others:  # every table of the format is this chip's (FP4: B200 and GB200 only)
            print(
                f"| {t['sku']} | {t['framework']} | {t['dtype']} | {c['seconds'].size} | no other chip's table |"
            )
            continue
        before = moe_without_grid(c, t["table"], t["overhead"], share=(1.0,)) / c["seconds"] - 1.0
        after = moe_without_grid(c, t["table"], t["overhead"], share=pooled(others)) / c["seconds"] - 1.0
        big = c["tokens"] * c["topk"] / np.maximum(c["touched"], 1.0) >= 512
        before_all.append(before)
        after_all.append(after)
        big_all.append(big)
        print(
            f"| {t['sku']} | {t['framework']} | {t['dtype']} | {before.size} | {_stats(before)} | {_stats(after)} "
            f"| {_stats(before[big]) if big.any() else '-'} | {_stats(after[big]) if big.any() else '-'} |"
        )
    before, after, big = (np.concatenate(x) for x in (before_all, after_all, big_all))
    print(
        f"| all | | | {before.size} | {_stats(before)} | {_stats(after)} | {_stats(before[big])} | {_stats(after[big])} |"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
