"""Speed of one answer (issue 13, item 9): a warm in-process `simulate` of one configuration, the
layout planner's layouts per second, and the sweep's points per second on one core.

Targets: <= 1 ms for `roofline.simulate(doc).records()` of the README's main example (median of
many warm calls); >= 5,000 layouts/s for `roofline plan`'s evaluation (`evaluate_layouts`, warm,
best of a few); >= 2M points/s/core for the sweep (`bench_sweep.py`'s grid). Prints figures;
asserts nothing. Run with OMP_NUM_THREADS=1 for per-core figures.

    python benchmarks/bench_answer.py [--repeats 500]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import roofline
from roofline.api import enumerate_layouts, evaluate_layouts, load_model, read_scenario_file

ROOT = Path(__file__).resolve().parents[1]
PLAN_CASES = (  # (label, scenario, --gpus-max, hardware)
    ("405B, 128 GPUs, h100-sxm", "scenarios/llama405b-cp-scaling-h100.yaml", 128, ["h100-sxm"]),
    ("70B, 16 GPUs, h100-sxm + h200", "scenarios/llama3-70b-8xh100-tp8.yaml", 16, ["h100-sxm", "h200"]),
)


def single_simulate_ms(repeats: int) -> float:
    doc = read_scenario_file(ROOT / "scenarios/llama3-8b-128k-h100.yaml")
    for _ in range(20):  # warm: model and hardware files, imports
        roofline.simulate(doc).records()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        roofline.simulate(doc).records()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e3


def plan_rate(scenario: str, gpus_max: int, hardware: list, repeats: int = 3) -> tuple:
    doc = read_scenario_file(ROOT / scenario)
    moe = load_model(doc["model"]).has_moe
    layouts = enumerate_layouts(gpus_max, moe)
    rows = evaluate_layouts(doc, [], layouts, hardware, roofline.simulate)  # warm
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        evaluate_layouts(doc, [], layouts, hardware, roofline.simulate)
        best = min(best, time.perf_counter() - t0)
    return len(layouts), len(rows), best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=500)
    args = parser.parse_args()
    ms = single_simulate_ms(args.repeats)
    print(
        f"warm simulate(...).records(), one configuration: {ms:.3f} ms (median of {args.repeats}; target <= 1 ms)"
    )
    for label, scenario, gpus_max, hardware in PLAN_CASES:
        n, rows, t = plan_rate(scenario, gpus_max, hardware)
        print(
            f"plan [{label}]: {n} layouts ({rows} rows) in {t * 1e3:.1f} ms = {n / t:,.0f} layouts/s "
            f"(target >= 5,000)"
        )
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_sweep import bench_engine

    for model in ("llama-3.1-8b", "deepseek-v3", "jamba-1.5-mini"):
        n, t = bench_engine(10, model, repeats=5)
        print(
            f"sweep [{model}]: {n:,} points in {t * 1e3:.1f} ms = {n / t:,.0f} points/s (target >= 2M/core)"
        )


if __name__ == "__main__":
    main()
