"""Server-side speed of the Plan page: one scenario's update (KPIs, roofline, time and memory
breakdowns) and the context-length curves (one 1,000-point sweep per stack).

Targets (issue 7): < 100 ms for the update of one scenario, < 500 ms for a 1,000-point curve.
Each figure is the median wall time of the callback function plus the JSON encoding of its
output (what Dash does before answering), after a warm-up call. Prints figures; asserts nothing.

    python benchmarks/bench_dashboard.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import plotly.utils

from roofline.dashboards import evaluate, state
from roofline.dashboards.pages import plan


def timed(fn, repeats: int) -> float:
    fn()  # warm-up: model and hardware loading, numpy and plotly imports
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        json.dumps(out, cls=plotly.utils.PlotlyJSONEncoder)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    base = dict(state.DEFAULTS)
    stacked = dict(base, methods=[state.full_method({"name": "kv_quant", "bits": 4})])
    print(
        f"Plan page, {base['model']} on {base['hardware']}, prompt {base['workload.prompt_tokens']:,} tokens:"
    )
    for label, values in (("baseline", base), ("with kv_quant", stacked)):
        args_ = plan.callback_args(values)
        t = timed(lambda a=args_: plan.update_plan(*a), args.repeats)
        print(f"  {'update of one scenario (' + label + ')':<48} {t * 1e3:7.1f} ms   (target < 100 ms)")
    doc = state.to_scenario(base)
    n = len(evaluate.curve_prompts(doc))
    t = timed(lambda: evaluate.context_curves(doc), args.repeats)
    print(f"  {f'one {n}-point context sweep (simulate only)':<48} {t * 1e3:7.1f} ms")
    for label, values in (("baseline", base), ("baseline + kv_quant", stacked)):
        args_ = plan.callback_args(values)
        t = timed(lambda a=args_: plan.update_curves(*a), args.repeats)
        print(f"  {f'{n}-point curves callback ({label})':<48} {t * 1e3:7.1f} ms   (target < 500 ms)")


if __name__ == "__main__":
    main()
