"""Speed of the planning path: sweep points per second and the wall time of one CLI process.

Targets (issue: core simulator): >= 1,000,000 points/s on one core for a sweep of >= 100,000
points, and < 1 s for a single `roofline simulate` call. Prints figures; asserts nothing.

    python benchmarks/bench_sweep.py [--points-per-axis 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def sweep_scenario(n_axis: int, model: str) -> dict:
    hardware = [
        "a100-40gb-sxm",
        "a100-80gb-sxm",
        "h100-sxm",
        "h100-pcie",
        "h100-nvl",
        "h200",
        "b200",
        "l40s",
        "mi300x",
        "mi325x",
    ]
    return {
        "name": "bench",
        "model": model,
        "hardware": "h100-sxm",
        "workload": {"batch": 1, "prompt_tokens": 4096, "output_tokens": 256, "prefill_chunk_tokens": 8192},
        "sweep": {
            "workload.prompt_tokens": [
                int(x) for x in __import__("numpy").geomspace(1024, 1_048_576, 10 * n_axis)
            ],
            "workload.output_tokens": [64 * (i + 1) for i in range(n_axis)],
            "workload.batch": [i + 1 for i in range(n_axis)],
            "hardware": hardware,
        },
    }


def bench_engine(n_axis: int, model: str, repeats: int = 3, calibrated: bool = False) -> tuple:
    """(points, best seconds) of the sweep; `calibrated`: with `calibration: auto`'s profiles (the
    shipped hwspecs/calibration/ ones for the GPUs that have them: measured grids and tables)."""
    from roofline.api import load_scenario, profiles_for
    from roofline.hwspecs import load_fabric, load_hardware
    from roofline.models import load_model
    from roofline.simulator.sweep import run_scenario

    sc = load_scenario(sweep_scenario(n_axis, model))
    profiles = profiles_for(sc) if calibrated else {}
    run_scenario(sc, load_model, load_hardware, load_fabric, profiles)  # warm caches (specs, configs)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = run_scenario(sc, load_model, load_hardware, load_fabric, profiles)
        best = min(best, time.perf_counter() - t0)
    return res.n, best


def bench_cli(scenario: str, repeats: int = 5) -> float:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "roofline.cli.main", "simulate", scenario],
            check=True,
            capture_output=True,
            env=env,
            cwd=ROOT,
        )
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points-per-axis", type=int, default=10)
    args = parser.parse_args()
    for model in ("llama-3.1-8b", "deepseek-v3", "jamba-1.5-mini"):
        for calibrated in (False, True):
            n, t = bench_engine(args.points_per_axis, model, calibrated=calibrated)
            label = "shipped calibration" if calibrated else "datasheet"
            print(
                f"engine sweep [{model}, {label}]: {n:,} points in {t * 1e3:.1f} ms = {n / t:,.0f} points/s"
            )
    t = bench_cli("scenarios/llama3-8b-128k-h100.yaml")
    print(
        f"roofline simulate scenarios/llama3-8b-128k-h100.yaml: {t * 1e3:.0f} ms wall (best of 5, new process)"
    )
    sys.stdout.flush()
    t0 = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import roofline.api, sys; assert not {'torch','triton','dash','plotly'} & set(sys.modules)",
        ],
        check=True,
        cwd=ROOT,
    )
    print(
        f"planning-path import without torch/triton/dash/plotly: ok ({(time.perf_counter() - t0) * 1e3:.0f} ms)"
    )


if __name__ == "__main__":
    main()
