"""How far AIConfigurator's own tables disagree on one kernel: the floor under the holdout's errors.

Each framework's GEMM table times bf16 `torch.nn.functional.linear` (cuBLAS; the tables name it
`torch.nn.functional.linear` or `vllm_default`, `sglang_torch_linear`, `torch_flow`) on the same
(m, n, k) shapes on the same GPU model. Two tables' times for one shape are then two measurements
of one library call (different builds, machines and days), and their
disagreement, |t_b / t_a - 1| taken as if one table predicted the other, is what no model of the
shape can beat. fp8 GEMMs are left out: there the frameworks run different kernels (CUTLASS,
sgl-kernel, TensorRT-LLM's own).

Run:  python benchmarks/aic_repeat.py [--gpu h100-sxm ...] [--data DIR]
(aic_holdout.py --write puts the same table in docs/validation/aic_holdout.md).
"""

from __future__ import annotations

import argparse

import numpy as np

from roofline.profilers.aic_read import available_gpus, find_source, read_table, resolve_gpu, table_path

PAIRS = (("vllm", "sglang"), ("vllm", "trtllm"))
DTYPE = "bfloat16"


def _times(source, sku: str, framework: str) -> dict:
    """(m, n, k) -> milliseconds of the framework's bf16 GEMM table on `sku` ({} without one); only
    that table is read."""
    path = table_path(source, resolve_gpu(sku)[0], "gemm", framework)
    if path is None:
        return {}
    c = read_table(path, "gemm").columns
    rows = np.flatnonzero(c["gemm_dtype"] == DTYPE)
    keys = zip(c["m"][rows].tolist(), c["n"][rows].tolist(), c["k"][rows].tolist())
    return dict(zip(keys, c["latency"][rows].tolist()))


def agreement(source, gpus) -> dict:
    """sku -> {(a, b): (median, p90, shapes)} of |t_b / t_a - 1| over the shapes both tables hold."""
    out = {}
    for sku in gpus:
        times = {fw: _times(source, sku, fw) for fw in {f for pair in PAIRS for f in pair}}
        for a, b in PAIRS:
            shared = times[a].keys() & times[b].keys()
            if shared:
                err = np.abs(np.array([times[b][k] / times[a][k] for k in shared]) - 1.0)
                out.setdefault(sku, {})[(a, b)] = (
                    float(np.median(err)),
                    float(np.quantile(err, 0.9)),
                    len(shared),
                )
    return out


def lines(source, gpus) -> list:
    """The report's section: a markdown table per GPU and pair of tables."""
    head = [
        "",
        "## The tables' own spread (the same kernel measured twice)",
        "",
        "Each framework's GEMM table times bf16 `torch.nn.functional.linear` (cuBLAS) on the same shapes; "
        "one table read as a prediction of the other errs by this much (benchmarks/aic_repeat.py). No model "
        "of the shape can be closer to a table than that table is to a re-measurement of the same kernel.",
        "",
        "| GPU | tables | shapes | median abs diff | p90 abs diff |",
        "|---|---|---:|---:|---:|",
    ]
    rows = []
    for sku, pairs in agreement(source, gpus).items():
        for (a, b), (med, p90, n) in pairs.items():
            rows.append(f"| {sku} | {b} vs {a} | {n} | {med:.1%} | {p90:.1%} |")
    return head + rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", nargs="*", help="hwspecs names (default: every GPU vLLM's data has)")
    ap.add_argument("--data", help="a folder laid out like aiconfigurator_core/systems/data")
    args = ap.parse_args(argv)
    source = find_source(args.data)
    print("\n".join(lines(source, args.gpu or available_gpus(source, "vllm"))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
