"""Each serving framework's GEMMs against the engine's datasheet GEMM model, from AIConfigurator's
measured GEMM tables.

The engine prices a GEMM as max(FLOPs / (peak x curve), bytes / (bandwidth x HBM efficiency)) plus
its launch. For every GPU, framework and format the tables cover, two medians of (engine's time) /
(measured time) over large weights (n x k >= 16M): at m <= 16 rows, where the weight stream bounds
the kernel (the share of the streaming rate the kernel reaches), and at m >= 2048 rows, where the
math does (the share of the curve). They are `efficiency.GEMM_SCALE`; with them, the rows between
(32-512) are predicted too, and this script prints the errors before and after.

Run:  python benchmarks/aic_gemm_scale.py [--data DIR]   (needs pyarrow and the data: `pip install -e '.[aic]'`)
"""

from __future__ import annotations

import argparse

import numpy as np

from roofline.api import load_hardware
from roofline.profilers.aic_points import gemm_points
from roofline.profilers.aic_read import find_source, read_gpu_tables
from roofline.simulator.efficiency import HBM_EFFICIENCY, HBM_EFFICIENCY_DEFAULT, build_table, gemm_efficiency
from roofline.simulator.units import dtype_bytes

GPUS = {
    "a100_sxm": "a100-80gb-sxm",
    "h100_sxm": "h100-sxm",
    "h200_sxm": "h200",
    "b200_sxm": "b200",
    "gb200": "gb200",
    "l40s": "l40s",
}
FRAMEWORKS = ("vllm", "sglang", "trtllm")
OVERHEAD_S = 2e-6


def scales(points: dict, hw, dtype: str) -> dict:
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", help="AIConfigurator's systems/data folder (default: the installed package)"
    )
    args = parser.parse_args(argv)
    source = find_source(args.data)
    print(
        "| GPU | framework | format | shapes | memory-bound | compute-bound | median abs err before -> after (m 32-512) | all |"
    )
    print("|---|---|---|---:|---:|---:|---|---|")
    for gpu, sku in GPUS.items():
        hw = load_hardware(sku)
        for fw in FRAMEWORKS:
            try:
                tables = read_gpu_tables(source, gpu, fw)
            except Exception:  # noqa: BLE001 - a GPU/framework the data does not cover
                continue
            points = gemm_points(tables["gemm"], hw) if "gemm" in tables else {}
            for dtype in ("bf16", "fp8"):
                if dtype not in points:
                    continue
                r = scales(points[dtype], hw, dtype)
                print(
                    f"| {sku} | {fw} | {dtype} | {r['shapes']} | {r['memory']:.3f} | {r['compute']:.3f} | "
                    f"{r['mid_before']:.0%} -> {r['mid_after']:.0%} | {r['all_before']:.0%} -> {r['all_after']:.0%} |"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
