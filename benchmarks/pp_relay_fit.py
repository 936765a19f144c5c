"""The source of `frameworks.TRTLLM_PP_HOP_S`: TensorRT-LLM's serial host cost per sequence per
pipeline hop, fitted on TensorRT-LLM's own pipeline-parallel throughput tables.

The dev set (benchmarks/published_devset.yaml, `trtllm_max_throughput`) holds the performance
overview's RTX PRO 6000 Server rows for Llama 3.3 70B FP4 at TP1 x PP2, PP4 and PP8 over ten
ISL/OSL pairs (30 rows). Each row is run as benchmarks/bench_serve.py runs it, with the hop cost
set to h; the fit is the h that minimises the root-mean-square log error of the 30 rows (a bounded
scalar search). The same fit at each depth alone shows whether one cost per hop serves every depth,
as the relay's form (pp - 1 hops per output token, frameworks.Framework.relay_s) says. Llama 3.1
405B's PP8 rows are left out of the fit and printed with the shipped constant as its check.

Run:  python benchmarks/pp_relay_fit.py   (about 3 minutes)
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import yaml
from scipy.optimize import minimize_scalar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serve import trtllm_doc  # noqa: E402

import roofline  # noqa: E402
from roofline.simulator import frameworks  # noqa: E402

DEVSET = Path(__file__).resolve().parent / "published_devset.yaml"
FIT = "llama-3.3-70b rtx-pro-6000-server"
DEPTHS = (2, 4, 8)
CHECK = ("llama-3.1-405b rtx-pro-6000-server pp8",)
BOUNDS_US = (1.0, 30.0)


def _rows() -> dict:
    return yaml.safe_load(DEVSET.read_text())["trtllm_max_throughput"]["rows"]


def log_errors(names, hop_s: float) -> np.ndarray:
    """log(model / measured) of every ISL/OSL row of the named dev-set rows, with TensorRT-LLM's
    hop cost set to `hop_s`."""
    rows = _rows()
    shipped = frameworks.FRAMEWORKS["trtllm"]
    frameworks.FRAMEWORKS["trtllm"] = dataclasses.replace(shipped, pp_hop_s=hop_s)
    try:
        out = []
        for name in names:
            row = rows[name]
            for key, measured in row["isl_osl"].items():
                isl, osl = (int(x) for x in key.split("/"))
                doc = trtllm_doc(
                    row["model"], row["tp"], isl, osl, None, row["hardware"], row["dtype"], row["pp"]
                )
                out.append(np.log(roofline.serve(doc).record["throughput"]["output_tokens_per_s"] / measured))
        return np.array(out)
    finally:
        frameworks.FRAMEWORKS["trtllm"] = shipped


def rms(names, hop_s: float) -> float:
    return float(np.sqrt(np.mean(log_errors(names, hop_s) ** 2)))


def fit(names) -> float:
    """The hop cost (s) that minimises the rows' RMS log error."""
    res = minimize_scalar(
        lambda us: rms(names, us * 1e-6), bounds=BOUNDS_US, method="bounded", options={"xatol": 0.05}
    )
    return float(res.x) * 1e-6


def main() -> None:
    every = [f"{FIT} pp{pp}" for pp in DEPTHS]
    best = fit(every)
    shipped = frameworks.TRTLLM_PP_HOP_S
    print(f"TensorRT-LLM pipeline hop cost, fitted on {FIT} at PP{'/'.join(map(str, DEPTHS))} (30 rows):")
    print(f"  all depths: {best * 1e6:5.2f} us per sequence per hop (shipped {shipped * 1e6:g} us)")
    for pp in DEPTHS:
        print(f"  PP{pp} alone: {fit([f'{FIT} pp{pp}']) * 1e6:5.2f} us")
    for h in (0.0, shipped):
        e = np.expm1(log_errors(every, h))
        print(
            f"  hop {h * 1e6:g} us: median |error| {np.median(np.abs(e)):.1%}, range {e.min():+.1%}..{e.max():+.1%}"
        )
    print("check (not fitted), error with the shipped constant:")
    for name, e in zip(CHECK, [np.expm1(log_errors([n], shipped)) for n in CHECK]):
        keys = list(_rows()[name]["isl_osl"])
        print(f"  {name}: " + ", ".join(f"{k} {x:+.1%}" for k, x in zip(keys, e)))


if __name__ == "__main__":
    main()
