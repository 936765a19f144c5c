"""A fused-MoE kernel against the dense GEMM it is priced as without a MoE table: the source of
`grouped_gemm.MOE_FIXED_S`, `MOE_GROUPED_SHARE` and `MOE_GROSS_SHARE`, and their check with each
GPU's own tables left out.

Where a profile has a GEMM grid but no fused-MoE grid, the engine prices each expert GEMM as the
GEMM grid at the grouped launch's shape (rows per expert, touched experts x n, k; layers.expert_ops)
plus the fused kernel's fixed time. For every AIConfigurator table that measured both (fused MoE and
GEMMs, one GPU and framework):
  * the fixed time F: the intercept of its one-token rows' (measured - activation and combine passes
    at the datasheet bandwidth - four launches) against the dense grid's price of their two GEMMs,
    fitted across shapes (`fixed_time`); the median over the tables of one input width is MOE_FIXED_S;
  * each MoE row gives the share s of the grid's attainment that reproduces the rest of its time:
        s = (sum over the two GEMMs of roof / grid attainment) / (measured - passes - four launches - F),
    the median per table and octave of rows per expert, then the median over the tables of one input
    width is MOE_GROUPED_SHARE; with F = 0, MOE_GROSS_SHARE (the datasheet model's).
Check: the fallback's error on every table with F and the curves pooled from the other GPUs' tables
only (B200 and GB200 are one chip, B300 and GB300 another): the dense grid alone, the gross share, F and the net share.

Run:  python benchmarks/aic_moe_share.py [--data DIR]   (needs pyarrow and the data: `pip install -e '.[aic]'`)
"""

from __future__ import annotations

import numpy as np
from aic_kernel_scales import data_source

from roofline.api import load_hardware
from roofline.profilers.aic_import import build_import_profile
from roofline.profilers.aic_points import MOE_MIXED_FORMATS, moe_points
from roofline.profilers.aic_read import available_gpus, read_gpu_tables
from roofline.simulator.calibration import parse_profile
from roofline.simulator.efficiency import build_table
from roofline.simulator.grid_lookup import grid_values
from roofline.simulator.grouped_gemm import (
    MOE_FIXED_S,
    MOE_GROUPED_SHARE,
    grouped_attainment,
    moe_grouped_share,
)
from roofline.simulator.kernel_scales import chip_of

FRAMEWORKS = ("vllm", "sglang", "trtllm")
OCTAVES = np.arange(MOE_GROUPED_SHARE[16].size)  # log2 rows per expert 0, 1, ..


def moe_without_grid(c: dict, table, overhead: float, share=None, fixed=None) -> np.ndarray:
    """The fused-MoE rows priced as the engine prices experts on a GPU whose profile has a GEMM grid
    but no MoE grid (layers.expert_ops): the two expert GEMMs (`grouped_gemm_seconds`), one launch
    each; the activation and the combine as HBM passes at the datasheet bandwidth, one launch each;
    the fused kernel's `fixed` time (None: grouped_gemm.MOE_FIXED_S, with the engine's share)."""
    fixed = MOE_FIXED_S[c["bits"]] if fixed is None else fixed
    return 4 * overhead + c["pass_roof"] + fixed + grouped_gemm_seconds(c, table, share)


def _rows(c: dict, keep: np.ndarray) -> dict:
    """moe_points' columns of the rows `keep` selects."""
    n = keep.size
    return {
        k: (
            v[keep]
            if isinstance(v, np.ndarray) and v.shape[:1] == (n,)
            else tuple(g[keep] for g in v)
            if k == "gemm_roofs"
            else v
        )
        for k, v in c.items()
    }


def fixed_time(t: dict) -> float:
    """A table's fused-MoE fixed time (routing, the tokens' permutation and its other small kernels
    beyond four launches): the intercept of its one-token rows' (time - activation and combine
    passes - four launches) against the dense GEMM grid's price of their two GEMMs, across shapes (at
    one token every expert GEMM is a weight stream, so the price scales with the shape and the
    intercept is what does not); NaN with fewer than three shapes, 0 where the line falls below it."""
    c = t["c"]
    one = c["tokens"] == 1
    if np.count_nonzero(one) < 3:
        return float("nan")
    rows = _rows(c, one)
    y = rows["seconds"] - rows["pass_roof"] - 4 * t["overhead"]
    x = grouped_gemm_seconds(rows, t["table"], share=(1.0,))
    if np.ptp(x) <= 0.0:
        return float("nan")
    _, intercept = np.polyfit(x, y, 1)
    return max(float(intercept), 0.0)


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


SAME_CHIP = {"gb200": "b200", "gb300": "b300"}  # a Grace superchip's GPU is the HGX part's chip


def chip(sku: str) -> str:
    """GPUs of one chip (kernel_scales.chip_of): GB200 is B200's, GB300 B300's."""
    name = chip_of(sku)
    return SAME_CHIP.get(name, name)


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
                if dtype in MOE_MIXED_FORMATS:  # no GEMM table measures those kernels' formats
                    continue
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


def share_curve(t: dict, fixed: float = 0.0) -> dict:
    """octave of rows per expert -> median share over the table's rows in it, net of `fixed`."""
    c = t["c"]
    dense = grouped_gemm_seconds(c, t["table"], share=(1.0,))
    rest = c["seconds"] - c["pass_roof"] - 4 * t["overhead"] - fixed
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


def _curves(found: list, fixed: dict) -> None:
    """Each table's share curves: gross (its fixed time inside the share) and net of `fixed` (per
    input width)."""
    for t in found:
        t["gross"] = share_curve(t)
        t["net"] = share_curve(t, fixed[t["c"]["bits"]])


def pooled_fixed(found: list) -> dict:
    """Input width -> median of its tables' fixed times (0 where none could be fitted)."""
    out = {}
    for bits in MOE_GROUPED_SHARE:
        values = [t["fixed"] for t in found if t["c"]["bits"] == bits and not np.isnan(t["fixed"])]
        out[bits] = float(np.median(values)) if values else 0.0
    return out


def main(argv=None) -> int:
    source = data_source(argv, __doc__.splitlines()[0])
    found = list(tables(source))
    for t in found:
        t["fixed"] = fixed_time(t)
    fixed = pooled_fixed(found)
    _curves(found, fixed)
    print(f"Fused MoE vs the GEMM grid at the grouped launch ({source.package} {source.version})")
    print("Per table: its fixed time, and the share of the grid's attainment per octave of rows per")
    print("expert (log2 rows 0..12), net of its width's fixed time:")
    for t in found:
        line = " ".join(f"{t['net'].get(o, np.nan):.2f}" for o in OCTAVES)
        print(f"  {t['sku']:14s} {t['framework']:7s} {t['dtype']:5s} {t['fixed'] * 1e6:6.1f} us  {line}")
    print()
    print("MOE_FIXED_S (median of the tables' fixed times per input width):")
    print("  " + ", ".join(f"{bits}: {v * 1e6:.1f}e-6" for bits, v in fixed.items()))
    for name, key in (("MOE_GROUPED_SHARE (net of the fixed time)", "net"), ("MOE_GROSS_SHARE", "gross")):
        print(f"{name}, median over the tables:")
        for bits in MOE_GROUPED_SHARE:
            curves = [t[key] for t in found if t["c"]["bits"] == bits]
            print(f"  {bits}-bit ({len(curves)} tables): [{', '.join(f'{v:.2f}' for v in pooled(curves))}]")
    print()
    print("The fallback's error, each table with the fixed time and the curves pooled from other")
    print("chips' tables only (median |err| / p90 (median signed)): the dense grid alone, the gross")
    print("share, the fixed time and the net share; 1-2 and >= 512 rows per expert apart:")
    print(
        "| GPU | framework | format | rows | dense grid | gross share | fixed + net | 1-2 rows gross | fixed + net | >= 512 rows gross | fixed + net |"
    )
    print("|---|---|---|---:|---|---|---|---|---|---|---|")
    errors = {k: [] for k in ("dense", "gross", "net", "few", "big")}
    for t in found:
        others = [u for u in found if u["c"]["bits"] == t["c"]["bits"] and chip(u["sku"]) != chip(t["sku"])]
        c = t["c"]
        if not others:  # every table of the format is this chip's
            print(
                f"| {t['sku']} | {t['framework']} | {t['dtype']} | {c['seconds'].size} | no other chip's table |"
            )
            continue
        f_others = pooled_fixed(others)[c["bits"]]
        gross_curve = pooled([u["gross"] for u in others])
        net_curve = pooled([share_curve(u, f_others) for u in others])
        dense = moe_without_grid(c, t["table"], t["overhead"], share=(1.0,), fixed=0.0) / c["seconds"] - 1.0
        gross = (
            moe_without_grid(c, t["table"], t["overhead"], share=gross_curve, fixed=0.0) / c["seconds"] - 1.0
        )
        net = (
            moe_without_grid(c, t["table"], t["overhead"], share=net_curve, fixed=f_others) / c["seconds"]
            - 1.0
        )
        rows = c["tokens"] * c["topk"] / np.maximum(c["touched"], 1.0)
        few, big = rows <= 2, rows >= 512
        for k, v in (("dense", dense), ("gross", gross), ("net", net), ("few", few), ("big", big)):
            errors[k].append(v)
        cells = [_stats(x) for x in (dense, gross, net)]
        for mask in (few, big):
            cells += [_stats(x[mask]) if mask.any() else "-" for x in (gross, net)]
        print(f"| {t['sku']} | {t['framework']} | {t['dtype']} | {dense.size} | " + " | ".join(cells) + " |")
    e = {k: np.concatenate(v) for k, v in errors.items()}
    cells = [_stats(e[k]) for k in ("dense", "gross", "net")]
    for mask in ("few", "big"):
        cells += [_stats(e[k][e[mask]]) for k in ("gross", "net")]
    print(f"| all | | | {e['dense'].size} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
