"""Each serving framework's kernels against the engine's datasheet models, from AIConfigurator's
measured tables: the source of `kernel_scales.ATTENTION_PREFILL_SCALE` and `kernel_scales.GEMM_SCALE`.

* Prefill attention: for every GPU and framework, the ratio (datasheet-curve time) / (measured
  time) over the long-sequence shapes a long-context deployment runs (head dim 128, bf16, 8K-16K
  tokens, batch x heads >= 16 so that the GPU is filled); its median is the framework's attention
  scale on that GPU, p10/p90 show how tight it is.
* GEMMs: the engine prices a GEMM as max(FLOPs / (peak x curve), bytes / (bandwidth x HBM
  efficiency)) plus its launch. For every GPU, framework and format, two medians of (engine's time)
  / (measured time) over large weights (n x k >= 16M): at m <= 16 rows, where the weight stream
  bounds the kernel, and at m >= 2048 rows, where the math does. With them the rows between
  (32-512) are predicted too; the errors before and after are printed.
* Decode attention: t = t_fix + KV bytes / (bandwidth x e_max / (1 + (u_half / u)^p)), u = batch x
  KV heads, fitted per GPU and framework (head dim 128, bf16 KV, >= 2K tokens): the source of
  `efficiency.DECODE_ATTENTION_FIXED_S`, `DECODE_UNITS_HALF` and `DECODE_UNITS_P`.

Run:  python benchmarks/aic_kernel_scales.py [--data DIR]   (needs pyarrow and the data: `pip install -e '.[aic]'`)
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.optimize import least_squares

from roofline.api import load_hardware
from roofline.profilers.aic_points import decode_points, gemm_points, prefill_points
from roofline.profilers.aic_read import available_gpus, find_source, read_gpu_tables
from roofline.simulator.efficiency import (
    HBM_EFFICIENCY,
    HBM_EFFICIENCY_DEFAULT,
    attention_prefill_efficiency,
    build_table,
    gemm_efficiency,
)
from roofline.simulator.units import dtype_bytes

FRAMEWORKS = ("vllm", "sglang", "trtllm")


def attention_ratios(table, hw) -> np.ndarray:
    p = prefill_points(table, hw)
    keep = (p["head_dim"] == 128) & (p["seqlen"] >= 8192) & (p["batch"] * p["heads"] >= 16)
    eff = attention_prefill_efficiency(build_table([hw]), 0, np.log2(p["seqlen"][keep]), 128)
    engine = p["flops"][keep] / (hw.peak("bf16") * eff) + 2e-6
    return engine / p["seconds"][keep]


OVERHEAD_S = 2e-6


def gemm_scales(points: dict, hw, dtype: str) -> dict:
    m, n, k, s = points["m"], points["n"], points["k"], points["seconds"]
    eff = gemm_efficiency(build_table([hw], dtype=dtype), 0, np.log2(np.maximum(m, 1.0)), n, k)
    t_compute = 2.0 * m * n * k / (hw.peak(dtype) * eff)
    hbm = HBM_EFFICIENCY.get(hw.name, HBM_EFFICIENCY_DEFAULT)
    t_memory = (n * k + m * (n + k)) * dtype_bytes(dtype) / (hw.memory_bandwidth * hbm)
    big = n * k >= 16e6
    memory = float(np.median(((t_memory + OVERHEAD_S) / s)[big & (m <= 16)]))
    compute = float(np.median(((t_compute + OVERHEAD_S) / s)[big & (m >= 2048)]))

    def error(sel, c=1.0, mem=1.0):
        e = (np.maximum(t_compute / c, t_memory / mem) + OVERHEAD_S)[sel] / s[sel] - 1
        return float(np.median(np.abs(e)))

    mid = big & (m >= 32) & (m <= 512)
    return {
        "memory": memory,
        "compute": compute,
        "mid_before": error(mid),
        "mid_after": error(mid, compute, memory),
        "all_before": error(big),
        "all_after": error(big, compute, memory),
        "shapes": int(big.sum()),
    }


def decode_fit(table, hw) -> dict:
    """Least-squares fit (log error) of the decode attention model; its median / p90 |error|."""
    p = decode_points(table, hw)
    keep = (p["head_dim"] == 128) & (p["kv_len"] >= 2048)
    units = p["batch"][keep] * p["kv_heads"][keep]
    nbytes, seconds = p["bytes"][keep], p["seconds"][keep]

    def model(x):
        t_fix, e_max, u_half, power = np.exp(x[0]), 1 / (1 + np.exp(-x[1])), np.exp(x[2]), np.exp(x[3])
        return t_fix + nbytes / (hw.memory_bandwidth * e_max / (1 + (u_half / units) ** power))

    x = least_squares(lambda x: np.log(model(x) / seconds), [np.log(5e-6), 2.0, 0.0, 0.0]).x
    err = np.abs(model(x) / seconds - 1)
    return {
        "t_fix_us": np.exp(x[0]) * 1e6,
        "e_max": 1 / (1 + np.exp(-x[1])),
        "u_half": np.exp(x[2]),
        "p": np.exp(x[3]),
        "median": np.median(err),
        "p90": np.percentile(err, 90),
        "shapes": int(keep.sum()),
    }


def tables(source):
    """(GPU, framework, its tables) for every pair the data covers (aic_read.available_gpus)."""
    for fw in FRAMEWORKS:
        for sku in available_gpus(source, fw):
            yield load_hardware(sku), fw, read_gpu_tables(source, sku, fw)


def table_arguments(description: str) -> argparse.ArgumentParser:
    """The arguments of the scripts that read every framework's tables per GPU: --framework, --gpu,
    --data (aic_holdout.py, aic_measured_shapes.py)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--framework", nargs="*", default=list(FRAMEWORKS), choices=FRAMEWORKS)
    ap.add_argument("--gpu", nargs="*", help="hwspecs names (default: every GPU the data has)")
    ap.add_argument("--data", help="a folder laid out like aiconfigurator_core/systems/data")
    return ap


def data_source(argv, description: str):
    """The AIConfigurator data a script reads: `--data DIR`, else the installed package."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--data", help="AIConfigurator's systems/data folder (default: the installed package)"
    )
    return find_source(parser.parse_args(argv).data)


def main(argv=None) -> int:
    source = data_source(argv, __doc__.splitlines()[0])
    print("Prefill attention (ATTENTION_PREFILL_SCALE)")
    print("| GPU | framework | shapes | median | p10 | p90 |")
    print("|---|---|---:|---:|---:|---:|")
    for hw, fw, t in tables(source):
        if "context_attention" in t:
            r = attention_ratios(t["context_attention"], hw)
            if r.size:
                p10, med, p90 = np.percentile(r, [10, 50, 90])
                print(f"| {hw.name} | {fw} | {r.size} | {med:.3f} | {p10:.3f} | {p90:.3f} |")
    print()
    print("GEMMs (GEMM_SCALE)")
    print(
        "| GPU | framework | format | shapes | memory-bound | compute-bound | median abs err before -> after (m 32-512) | all |"
    )
    print("|---|---|---|---:|---:|---:|---|---|")
    for hw, fw, t in tables(source):
        points = gemm_points(t["gemm"], hw) if "gemm" in t else {}
        for dtype in ("bf16", "fp8"):
            if dtype in points:
                r = gemm_scales(points[dtype], hw, dtype)
                print(
                    f"| {hw.name} | {fw} | {dtype} | {r['shapes']} | {r['memory']:.3f} | {r['compute']:.3f} | "
                    f"{r['mid_before']:.0%} -> {r['mid_after']:.0%} | {r['all_before']:.0%} -> {r['all_after']:.0%} |"
                )
    print()
    print("Decode attention (DECODE_ATTENTION_FIXED_S, DECODE_UNITS_HALF, DECODE_UNITS_P)")
    print("| GPU | framework | shapes | t_fix (us) | e_max | u_half | p | median abs err | p90 |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for hw, fw, t in tables(source):
        if "generation_attention" in t:
            f = decode_fit(t["generation_attention"], hw)
            print(
                f"| {hw.name} | {fw} | {f['shapes']} | {f['t_fix_us']:.1f} | {f['e_max']:.2f} | {f['u_half']:.2f} | "
                f"{f['p']:.2f} | {f['median']:.1%} | {f['p90']:.1%} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
