"""The source of `frameworks.TRTLLM_PP_HOP_S`: TensorRT-LLM's serial host cost per sequence per
pipeline hop, read from TensorRT-LLM's own pipeline-parallel throughput tables.

The dev set (benchmarks/published_devset.yaml, `trtllm_max_throughput`) holds the performance
overview's RTX PRO 6000 Server rows for Llama 3.3 70B FP4 at TP1 x PP1, PP2, PP4 and PP8 over ten
ISL/OSL pairs. Each row is run as benchmarks/bench_serve.py runs it, with no relay cost
(pp_hop_s = 0). The relay adds (pp - 1) hops per output token (frameworks.Framework.relay_s), so a
row's hop cost is its time per output token beyond the model's, less the model's error at PP1 on
the same ISL/OSL (the GPU work a stage runs, a pp-th of PP1's), over pp - 1:

    hop = ((1/measured_pp - 1/model_pp) - (1/measured_1 - 1/model_1) / pp) / (pp - 1)

The median over the 30 rows is the constant; the medians per depth show whether one cost per hop
fits every depth, as the form says. Llama 3.1 405B's PP8 rows (no PP1 row to correct by) are left
out of the fit and printed with the shipped constant as its check.

Run:  python benchmarks/pp_relay_fit.py   (about 20 s)
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serve import trtllm_doc  # noqa: E402

import roofline  # noqa: E402
from roofline.simulator import frameworks  # noqa: E402

DEVSET = Path(__file__).resolve().parent / "published_devset.yaml"
FIT = "llama-3.3-70b rtx-pro-6000-server"
CHECK = ("llama-3.1-405b rtx-pro-6000-server pp8",)


def _rows() -> dict:
    return yaml.safe_load(DEVSET.read_text())["trtllm_max_throughput"]["rows"]


def _served(row: dict, isl: int, osl: int, hop_s: float) -> float:
    """Output tokens/s of one row with TensorRT-LLM's hop cost set to `hop_s`."""
    shipped = frameworks.FRAMEWORKS["trtllm"]
    frameworks.FRAMEWORKS["trtllm"] = dataclasses.replace(shipped, pp_hop_s=hop_s)
    try:
        doc = trtllm_doc(
            row["model"], row["tp"], isl, osl, None, row["hardware"], row["dtype"], row.get("pp", 1)
        )
        return roofline.serve(doc).record["throughput"]["output_tokens_per_s"]
    finally:
        frameworks.FRAMEWORKS["trtllm"] = shipped


def fit() -> dict:
    """Per depth, the hop cost (s) each fitted row implies."""
    rows = _rows()
    excess = {}  # (pp, isl/osl) -> measured - model, seconds per output token, without relay
    for pp in (1, 2, 4, 8):
        row = rows[FIT if pp == 1 else f"{FIT} pp{pp}"]
        for key, measured in row["isl_osl"].items():
            isl, osl = (int(x) for x in key.split("/"))
            excess[pp, key] = 1.0 / measured - 1.0 / _served(row, isl, osl, 0.0)
    return {
        pp: [(excess[pp, key] - excess[1, key] / pp) / (pp - 1) for (p, key) in excess if p == pp]
        for pp in (2, 4, 8)
    }


def main() -> None:
    hops = fit()
    every = [h for per in hops.values() for h in per]
    print(f"TensorRT-LLM pipeline hop cost from {FIT} (PP2/4/8, {len(every)} rows):")
    for pp, per in hops.items():
        print(
            f"  PP{pp}: median {statistics.median(per) * 1e6:5.2f} us per sequence per hop  ({len(per)} rows)"
        )
    print(
        f"  all: median {statistics.median(every) * 1e6:5.2f} us  (shipped: {frameworks.TRTLLM_PP_HOP_S * 1e6:g} us)"
    )
    rows = _rows()
    print("check (not fitted), error with the shipped constant:")
    for name in CHECK:
        for key, measured in rows[name]["isl_osl"].items():
            isl, osl = (int(x) for x in key.split("/"))
            got = _served(rows[name], isl, osl, frameworks.TRTLLM_PP_HOP_S)
            print(f"  {name} {key}: {got:8.0f} vs {measured:6d} tok/s  {got / measured - 1:+.1%}")


if __name__ == "__main__":
    main()
