"""`roofline plan [SCENARIO] --gpus-max N [--ttft-max S] [--tpot-max S]`: the layout planner.
With `--serving FILE` it runs the serving search instead (`plan_serving`).

Evaluates every valid (tp, pp, cp, dp, ep) layout up to N GPUs on each hardware choice for the
scenario's workload, and prints the Pareto front of $ per million output tokens vs latency, marking
the layouts that fit in memory and meet the SLA. The workload comes from a scenario file, the
one-line flags (--model, --prompt, --output, --batch, --method) or both; the hardware choices from
--hardware, else the scenario's `sweep.hardware` (`--set sweep.hardware=[h100-sxm,h200]`), else its
hardware.
"""

from __future__ import annotations

import copy
import json
import sys

from roofline.cli import plan_serving


def add_parser(sub) -> None:
    from roofline.cli.scenario_flags import TOKENS_EPILOG, add_scenario_arguments

    p = sub.add_parser(
        "plan",
        help="search parallel layouts and hardware for the cost/latency Pareto front (--serving: "
        "deployments meeting SLOs under traffic)",
        description="Enumerate tensor/pipeline/context/data/expert-parallel layouts up to --gpus-max GPUs on "
        "each hardware choice, cost each with the scenario's workload and methods, and print the Pareto front "
        "of $ per million output tokens vs latency, marking which layouts meet the SLA, e.g.\n"
        "  roofline plan --model llama-3.1-70b --prompt 128k --output 1k --hardware h100-sxm,h200 --gpus-max 16",
        epilog=TOKENS_EPILOG,
    )
    add_scenario_arguments(
        p,
        layout=False,
        skip=("--hardware",),
        scenario_help="scenario YAML (its parallelism and any sweep are replaced by the search); optional "
        "with --model, --hardware and --prompt",
    )
    p.add_argument(
        "--gpus-max", type=int, help="largest number of GPUs to consider (required, except with --serving)"
    )
    p.add_argument("--gpus-min", type=int, default=1, help="smallest number of GPUs to consider (default 1)")
    p.add_argument("--ttft-max", type=float, help="SLA: time to first token, seconds")
    p.add_argument("--tpot-max", type=float, help="SLA: time per output token, seconds")
    p.add_argument(
        "--hardware",
        help="comma-separated hardware names (default: the scenario's sweep.hardware, else its hardware)",
    )
    p.add_argument(
        "--latency", choices=("tpot", "ttft", "e2e"), default="tpot", help="latency axis of the front"
    )
    p.add_argument("--max-tp", type=int, help="largest tensor-parallel degree (default: no limit)")
    p.add_argument("--all", action="store_true", help="list every layout that fits, not only the front")
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    plan_serving.add_arguments(p)


def _problem(text: str):
    from roofline.api import ScenarioError

    return ScenarioError([text])


def run(args) -> int:
    from roofline.api import (
        enumerate_layouts,
        evaluate_layouts,
        list_hardware,
        load_model,
        pareto_front,
        parse_override,
        set_path,
        simulate,
        unknown_name_message,
    )
    from roofline.cli.scenario_flags import load, scenario_doc
    from roofline.report.tables import plan_table, to_csv

    if args.serving:
        return plan_serving.run(args)
    plan_serving.refuse_serving_flags(args)
    if args.gpus_max is None:
        raise _problem("--gpus-max: required; give the largest number of GPUs to consider, e.g. --gpus-max 8")
    if args.gpus_max < 1 or args.gpus_max > 4096:
        raise _problem(f"--gpus-max {args.gpus_max}: give 1..4096")
    for flag, v in (("--ttft-max", args.ttft_max), ("--tpot-max", args.tpot_max)):
        if v is not None and not v > 0:
            raise _problem(f"{flag} {v}: must be a positive number of seconds")
    known = {h.lower(): h for h in list_hardware()}  # names in any case
    choices = [known.get(h.strip().lower(), h.strip()) for h in (args.hardware or "").split(",") if h.strip()]
    for h in choices:
        if h not in list_hardware():
            raise _problem("--hardware: " + unknown_name_message("hardware", h, list_hardware()))
    if choices and not args.scenario:
        args.field_hardware = choices[0]  # the scenario's hardware field, for the one-line form
    doc, where, _ = scenario_doc(args)
    for text in args.overrides:  # applied once, here: the search then replaces layout and sweep
        set_path(doc, *parse_override(text))
    if doc.get("name") is None:  # records name the scenario as simulate's do (the file's stem)
        doc["name"] = where.rsplit("/", 1)[-1].rsplit(".", 1)[0] if args.scenario else where
    base = load(copy.deepcopy(doc), (), where)  # validates the rest first
    hardware = choices or dict(base.sweep).get("hardware") or [base.base["hardware"]]
    model = load_model(base.base["model"])
    moe = model.has_moe
    layouts = enumerate_layouts(args.gpus_max, moe, args.max_tp, args.gpus_min)
    rows = evaluate_layouts(doc, (), layouts, hardware, simulate)  # skips layouts it refuses
    if not rows:
        raise _problem("no valid layout: raise --gpus-max or check the model's heads and experts")
    key = {"tpot": "tpot_s", "ttft": "ttft_s", "e2e": "e2e_s"}[args.latency]
    cost = [r["cost"]["usd_per_million_output_tokens"] or float("inf") for _, r in rows]
    latency = [r[key] or float("inf") for _, r in rows]
    fits = [r["fits"] for _, r in rows]
    meets = [
        r["fits"]
        and (args.ttft_max is None or r["ttft_s"] <= args.ttft_max)
        and (args.tpot_max is None or r["tpot_s"] <= args.tpot_max)
        for _, r in rows
    ]
    front = pareto_front(cost, latency, fits)
    chosen = [i for i in range(len(rows)) if (fits[i] if args.all else front[i])]
    chosen.sort(key=lambda i: (cost[i], latency[i]))
    if args.format in ("json", "csv"):
        out = [
            dict(rows[i][1], layout=rows[i][0], pareto=bool(front[i]), meets_sla=bool(meets[i]))
            for i in chosen
        ]
        print(json.dumps(out, indent=2) if args.format == "json" else to_csv(out).rstrip("\n"))
    else:
        print(
            f"{len(rows)} layouts x hardware evaluated, {sum(fits)} fit; {'all that fit' if args.all else 'Pareto front'} by $/M output tokens vs {args.latency}:"
        )
        print(plan_table([rows[i] for i in chosen], [cost[i] for i in chosen], [meets[i] for i in chosen]))
    if (args.ttft_max or args.tpot_max) and not any(meets):
        print(_unmet(rows, fits, args), file=sys.stderr)
        return 1
    if not any(fits):
        print(
            f"no layout fits within {args.gpus_max} GPUs: {rows[0][1].get('fit_reason', '')}", file=sys.stderr
        )
        return 1
    return 0


def _unmet(rows: list, fits: list, args) -> str:
    """Why no layout meets the SLA: the best each fitting layout reaches against each limit."""
    fitting = [r for (_, r), ok in zip(rows, fits) if ok]
    if not fitting:
        return f"no layout fits within {args.gpus_max} GPUs, so none meets the SLA: {rows[0][1].get('fit_reason', '')}"
    best = []
    for flag, key, limit in (
        ("--ttft-max", "ttft_s", args.ttft_max),
        ("--tpot-max", "tpot_s", args.tpot_max),
    ):
        if limit is not None:
            fastest = min(r[key] for r in fitting)
            best.append(f"the fastest {key[:4].upper()} is {fastest:.4g} s ({flag} {limit:g})")
    return f"no layout meets the SLA within {args.gpus_max} GPUs: " + "; ".join(best)
