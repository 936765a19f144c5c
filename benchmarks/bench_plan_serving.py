"""Speed of `roofline plan --serving`: a search of about 100 deployments on this machine.

Llama 3.1 8B on up to 8 H100s (scenarios/serve-llama3-8b-h100.yaml, its lognormal chat traffic and
its SLOs: TTFT 1 s, TPOT 50 ms at 90% attainment), 200 requests per serving run: every aggregated
tp x dp (tp 1, 2, 4, 8) and every disaggregated prefill:decode ratio with prefill replicas of tp x cp
(cp 1, 2) and decode replicas of tp — 120 deployments, each run at the requested rate and then
bisected for its max sustainable rate (5% tolerance). Runs on a local process pool of one process
per CPU (as `roofline plan --serving` does by default), then checks that the in-process search of a
slice gives the same rows. The issue's target: 100 deployments in < 30 s on one machine.

Prints figures; asserts nothing (tests/test_serving_search.py holds the checks).

    python benchmarks/bench_plan_serving.py [--requests 200] [--gpus-max 8] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import time

import roofline
from roofline.api import make_executor, search_serving
from roofline.executors import InProcess

SCENARIO = os.path.join(os.path.dirname(__file__), "..", "scenarios", "serve-llama3-8b-h100.yaml")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=200, help="requests per serving run")
    ap.add_argument("--gpus-max", type=int, default=8)
    ap.add_argument("--workers", type=int, default=None, help="local processes (default: CPU count)")
    ap.add_argument("--rate", type=float, default=8.0, help="requested arrival rate, req/s")
    args = ap.parse_args()

    options = dict(gpus_max=args.gpus_max, cp=[1, 2], rate_per_s=args.rate, attainment=0.9, rel_tol=0.05)
    overrides = [f"serving.requests={args.requests}"]
    executor = make_executor(args.workers)
    roofline.serve(
        SCENARIO, [*overrides, "serving.requests=20"]
    )  # this process's caches, as a CLI run has them
    t0 = time.perf_counter()
    plan = search_serving(SCENARIO, overrides, executor=executor, **options)
    wall = time.perf_counter() - t0
    runs = sum(r["runs"] for r in plan.rows)
    n = len(plan.rows)
    print(
        f"{n} deployments, {runs} serving runs of {args.requests} requests on {executor.name} "
        f"({os.cpu_count()} CPUs): {wall:.1f} s wall, {n / wall:.2f} deployments/s, {runs / wall:.1f} runs/s"
    )
    print(
        f"  {len(plan.ranked)} meet the SLO at {plan.rate_per_s:g} req/s; {sum(r['error'] is not None for r in plan.rows)} refused"
    )
    best = plan.best
    if best:
        print(
            f"  cheapest: {best['hardware']} {best['label']} ({best['gpus']} GPUs), "
            f"${best['usd_per_million_output_tokens']:.3g}/M output tokens, p90 TTFT {best['ttft_p90_s'] * 1e3:.0f} ms, "
            f"p90 TPOT {best['tpot_p90_s'] * 1e3:.1f} ms, max sustainable rate {best['max_rate_per_s']:.3g} req/s"
        )
    front = [plan.rows[i] for i in plan.ranked if plan.front[i]]
    print(
        "  Pareto front ($/M output tokens vs p90 TPOT): "
        + "; ".join(
            f"{r['label']} ${r['usd_per_million_output_tokens']:.3g} {r['tpot_p90_s'] * 1e3:.1f} ms"
            for r in front
        )
    )
    # The same rows in process for the first deployments (a slice keeps this short).
    sliced = dict(options, gpus_max=2)
    a = search_serving(SCENARIO, overrides, executor=InProcess(), **sliced)
    b = search_serving(SCENARIO, overrides, executor=executor, **sliced)
    print(f"  in-process and {executor.name} rows identical ({len(a.rows)} deployments): {a.rows == b.rows}")


if __name__ == "__main__":
    main()
