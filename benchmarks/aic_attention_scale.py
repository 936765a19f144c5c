"""Prefill attention of each serving framework's kernel against the FlashAttention curves the
engine uses by default, from AIConfigurator's measured context-attention tables.

For every GPU and framework the tables cover, the ratio (engine's datasheet time) / (measured time)
over the long-sequence shapes a long-context deployment runs (head dim 128, bf16, 8K-16K tokens,
batch x heads >= 16 so that the GPU is filled): its median is the framework's attention-efficiency
scale on that GPU (`efficiency.ATTENTION_PREFILL_SCALE`); p10/p90 show how tight it is.

Run:  python benchmarks/aic_attention_scale.py [--data DIR]   (needs pyarrow and the data: `pip install -e '.[aic]'`)
"""

from __future__ import annotations

import argparse

import numpy as np

from roofline.api import load_hardware
from roofline.profilers.aic_points import prefill_points
from roofline.profilers.aic_read import find_source, read_gpu_tables
from roofline.simulator.efficiency import attention_prefill_efficiency, build_table

GPUS = {
    "a100_sxm": "a100-80gb-sxm",
    "h100_sxm": "h100-sxm",
    "h200_sxm": "h200",
    "b200_sxm": "b200",
    "gb200": "gb200",
    "l40s": "l40s",
}
FRAMEWORKS = ("vllm", "sglang", "trtllm")


def ratios(table, hw) -> np.ndarray:
    p = prefill_points(table, hw)
    keep = (p["head_dim"] == 128) & (p["seqlen"] >= 8192) & (p["batch"] * p["heads"] >= 16)
    eff = attention_prefill_efficiency(build_table([hw]), 0, np.log2(p["seqlen"][keep]), 128)
    engine = p["flops"][keep] / (hw.peak("bf16") * eff) + 2e-6
    return engine / p["seconds"][keep]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", help="AIConfigurator's systems/data folder (default: the installed package)"
    )
    args = parser.parse_args(argv)
    source = find_source(args.data)
    print("| GPU | framework | shapes | median | p10 | p90 |")
    print("|---|---|---:|---:|---:|---:|")
    for gpu, sku in GPUS.items():
        hw = load_hardware(sku)
        for fw in FRAMEWORKS:
            try:
                tables = read_gpu_tables(source, gpu, fw)
            except Exception:  # noqa: BLE001 - a GPU/framework the data does not cover
                continue
            if "context_attention" not in tables:
                continue
            r = ratios(tables["context_attention"], hw)
            if r.size:
                p10, med, p90 = np.percentile(r, [10, 50, 90])
                print(f"| {sku} | {fw} | {r.size} | {med:.3f} | {p10:.3f} | {p90:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
