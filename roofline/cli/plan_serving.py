"""`roofline plan --serving FILE`: the serving search (`roofline.api.search_serving`).

Its flags are added to `roofline plan`'s parser (`add_arguments`), sharing plan's where they mean the
same (--gpus-max, --gpus-min, --hardware, --max-tp, --ttft-max, --tpot-max, --latency, --all,
--format); `run` is called by plan's `run` when --serving is given. Prints the cheapest deployments
that meet the SLO at the rate and the Pareto front of cost vs p90 latency; exits 1 with the reason
when none does.
"""

from __future__ import annotations

import json
import sys
import time

SERVING_ONLY = (
    ("rate", "--rate"),
    ("attainment", "--attainment"),
    ("rate_tol", "--rate-tol"),
    ("tp_choices", "--tp"),
    ("cp_choices", "--cp"),
    ("ep_choices", "--ep"),
    ("pp_choices", "--pp"),
    ("max_num_seqs", "--max-num-seqs"),
    ("methods", "--methods"),
    ("disagg", "--disagg"),
    ("workers", "--workers"),
    ("ray", "--ray"),
    ("output_file", "--output-file"),
)
DEFAULT_GPUS_MAX = 8  # one HGX/DGX node
SHORT_RUN_E2E = 10  # as roofline.serving_search flags max_rate_short_run


def add_arguments(p) -> None:
    g = p.add_argument_group("serving search (roofline plan --serving FILE; docs/serving.md)")
    g.add_argument(
        "--serving",
        metavar="FILE",
        help="search serving deployments for a scenario with a serving: section instead of static-batch "
        "layouts: aggregated tp x cp x dp and disaggregated prefill:decode pools, meeting serving.slo at "
        f"serving.arrival.rate_per_s (--gpus-max defaults to {DEFAULT_GPUS_MAX})",
    )
    g.add_argument("--rate", type=float, metavar="REQ_PER_S", help="arrival rate (default: the scenario's)")
    g.add_argument(
        "--attainment",
        type=float,
        metavar="SHARE",
        help="share of requests that must meet both SLOs (default 0.9)",
    )
    g.add_argument(
        "--rate-tol",
        type=float,
        metavar="REL",
        help="relative tolerance of the max-sustainable-rate bisection (default 0.05)",
    )
    g.add_argument(
        "--tp", dest="tp_choices", metavar="LIST", help="tp choices, e.g. 1,2,4 (default: powers of 2)"
    )
    g.add_argument("--cp", dest="cp_choices", metavar="LIST", help="cp choices, e.g. 1,2 (default: 1)")
    g.add_argument(
        "--pp",
        dest="pp_choices",
        metavar="LIST",
        help="pipeline-stage choices for aggregated deployments, e.g. 1,2,4: each replica keeps pp "
        "micro-batches in flight (default: 1)",
    )
    g.add_argument(
        "--ep",
        dest="ep_choices",
        metavar="LIST",
        help="expert-parallel choices for a MoE model's aggregated deployments, e.g. 1,all or 1,8: the "
        "experts over ep of the tp x dp GPUs (all: every one), the attention ranks stepping in lockstep "
        "(default: 1)",
    )
    g.add_argument(
        "--max-num-seqs",
        metavar="LIST",
        help="max_num_seqs choices (default: the scenario's, else the framework's on each GPU)",
    )
    g.add_argument(
        "--methods",
        metavar="STACKS",
        help="method stacks to try, comma-separated, each +-joined, e.g. dense,kv_quant,kv_quant+quest "
        "(default: the scenario's methods)",
    )
    g.add_argument(
        "--disagg",
        choices=("yes", "no", "only"),
        help="include disaggregated prefill/decode deployments (default yes)",
    )
    g.add_argument(
        "--workers", type=int, metavar="N", help="local processes (default: CPU count; 1: in process)"
    )
    g.add_argument(
        "--ray",
        metavar="ADDRESS",
        help="run on a Ray cluster (auto, ray://host:10001, or local); needs pip install 'roofline[ray]'",
    )
    g.add_argument("-o", "--output-file", metavar="FILE", help="write the output to FILE (atomically)")


def refuse_serving_flags(args) -> None:
    """The serving-only flags without --serving: one line naming the first."""
    from roofline.api import ScenarioError

    for dest, flag in SERVING_ONLY:
        if getattr(args, dest, None) is not None:
            raise ScenarioError([f"{flag}: applies to roofline plan --serving FILE only"])


def _ints(flag: str, text: str | None) -> list | None:
    from roofline.api import ScenarioError

    if text is None:
        return None
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ScenarioError([f"{flag} {text!r}: give comma-separated whole numbers, e.g. 1,2,4"]) from None
    if not values or any(v < 1 for v in values):
        raise ScenarioError([f"{flag} {text!r}: give comma-separated positive whole numbers, e.g. 1,2,4"])
    return values


def _eps(text: str | None) -> list | None:
    """--ep's choices: whole numbers and `all`."""
    from roofline.api import ScenarioError

    if text is None:
        return None
    tokens = [t.strip().lower() for t in text.split(",") if t.strip()]
    if not tokens or not all(t == "all" or (t.isdigit() and int(t) > 0) for t in tokens):
        raise ScenarioError(
            [f"--ep {text!r}: give comma-separated positive whole numbers or all, e.g. 1,all"]
        )
    return ["all" if t == "all" else int(t) for t in dict.fromkeys(tokens)]


def _overrides(args) -> list:
    """--set and the one-line flags that mean something to a serving scenario (--model, --method)."""
    from roofline.api import ScenarioError, parse_override
    from roofline.cli.scenario_flags import FIELD_FLAGS, _dest, parse_method_flag

    out = [parse_override(t) for t in args.overrides]
    for flag in FIELD_FLAGS:
        if getattr(args, _dest(flag), None) is not None and flag != "--model":
            raise ScenarioError(
                [
                    f"{flag}: not with --serving; the serving: section gives the traffic (--set serving.PATH=VALUE)"
                ]
            )
    if args.field_model is not None:
        out.insert(0, ("model", args.field_model))
    if args.method_flags:
        out.insert(0, ("methods", [parse_method_flag(t) for t in args.method_flags]))
    return out


def run(args) -> int:
    from roofline.api import (
        ScenarioError,
        check_output,
        list_hardware,
        make_executor,
        read_scenario_file,
        search_serving,
        unknown_name_message,
        write_atomic,
    )

    if args.scenario:
        raise ScenarioError([f"{args.scenario}: give the scenario once, as --serving FILE"])
    if args.output_file:
        check_output(args.output_file, (args.serving,))
    gpus_max = DEFAULT_GPUS_MAX if args.gpus_max is None else args.gpus_max
    if not 1 <= gpus_max <= 4096:
        raise ScenarioError([f"--gpus-max {gpus_max}: give 1..4096"])
    for flag, v in (("--ttft-max", args.ttft_max), ("--tpot-max", args.tpot_max), ("--rate", args.rate)):
        if v is not None and not v > 0:
            raise ScenarioError([f"{flag} {v}: must be a positive number"])
    known = {h.lower(): h for h in list_hardware()}
    hardware = [
        known.get(h.strip().lower(), h.strip()) for h in (args.hardware or "").split(",") if h.strip()
    ]
    for h in hardware:
        if h not in list_hardware():
            raise ScenarioError(["--hardware: " + unknown_name_message("hardware", h, list_hardware())])
    tp = _ints("--tp", args.tp_choices)
    if args.max_tp is not None:
        tp = [t for t in (tp or [2**i for i in range(13) if 2**i <= gpus_max]) if t <= args.max_tp]
        if not tp:
            raise ScenarioError([f"--max-tp {args.max_tp}: leaves no tp choice"])
    stacks = None
    if args.methods:
        from roofline.cli.compare_cmd import stacks_from
        from roofline.cli.scenario_flags import parse_method_flag

        doc = read_scenario_file(args.serving)
        palette = doc.get("methods") if isinstance(doc, dict) else None
        if args.method_flags:  # --method NAME:KEY=VALUE gives the stacks' parameters, as for compare
            palette = [parse_method_flag(t) for t in args.method_flags]
        stacks = [(label, specs) for label, specs in _with_dense(args.methods, palette, stacks_from)]
    plan = search_serving(
        args.serving,
        _overrides(args),
        hardware=hardware or None,
        gpus_max=gpus_max,
        gpus_min=args.gpus_min,
        tp=tp,
        cp=_ints("--cp", args.cp_choices),
        ep=_eps(args.ep_choices),
        pp=_ints("--pp", args.pp_choices),
        max_num_seqs=_ints("--max-num-seqs", args.max_num_seqs),
        stacks=stacks,
        aggregated=args.disagg != "only",
        disaggregated=args.disagg != "no",
        rate_per_s=args.rate,
        ttft_s=args.ttft_max,
        tpot_s=args.tpot_max,
        attainment=0.9 if args.attainment is None else args.attainment,
        rel_tol=0.05 if args.rate_tol is None else args.rate_tol,
        latency=args.latency,
        executor=make_executor(args.workers, args.ray),
        progress=Progress(sys.stderr),
    )
    text = _render(plan, args.format, args.all)
    if args.output_file:
        write_atomic(args.output_file, text + "\n", (args.serving,))
    else:
        sys.stdout.write(text + "\n")
    if not plan.ranked:
        print(plan.unmet_reason(gpus_max), file=sys.stderr)
        return 1
    return 0


class Progress:
    """Deployments evaluated so far, on stderr: redrawn in place on a terminal, else a line at each
    tenth of the search (logs stay short); elapsed time and a linear estimate of what is left."""

    def __init__(self, stream, clock=time.monotonic):
        self.stream, self.clock = stream, clock
        self.start = self.clock()
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.shown = 0

    def __call__(self, done: int, total: int) -> None:
        if not self.tty and done < total and done * 10 // total == self.shown * 10 // total:
            return
        self.shown = done
        elapsed = self.clock() - self.start
        left = f", about {elapsed * (total - done) / done:.0f} s left" if done < total else ""
        text = f"plan --serving: {done}/{total} deployments evaluated in {elapsed:.0f} s{left}"
        if self.tty:
            self.stream.write("\r" + text + ("\n" if done == total else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _with_dense(text: str, palette, stacks_from) -> list:
    """compare's stack parser, with `dense` (no methods) allowed as a stack of its own."""
    labels = [s.strip() for s in text.split(",") if s.strip()]
    rest = ",".join(s for s in labels if s != "dense")
    parsed = dict(stacks_from(rest, palette)) if rest else {}
    return [(s, [] if s == "dense" else parsed[s]) for s in labels]


def _chosen(plan, show_all: bool) -> list:
    """Row indices to print: every row (--all, or when none is feasible), else the feasible front;
    the cheapest first."""
    if show_all or not plan.ranked:
        rest = [i for i in range(len(plan.rows)) if i not in set(plan.ranked)]
        return plan.ranked + rest
    return [i for i in plan.ranked if plan.front[i]]


def _render(plan, fmt: str, show_all: bool) -> str:
    from roofline.report.serve_tables import plan_serving_table
    from roofline.report.tables import to_csv

    chosen = _chosen(plan, show_all)
    best = plan.ranked[0] if plan.ranked else None

    def entry(i: int) -> dict:
        return {
            **plan.rows[i],
            "cheapest": i == best,
            "pareto": plan.front[i],
            "meets_slo": plan.rows[i]["feasible"],
        }

    if fmt == "json":
        return json.dumps(
            {
                "rate_per_s": plan.rate_per_s,
                "attainment": plan.attainment,
                "slo": plan.slo,
                "latency": f"{plan.latency}_p90_s",
                "evaluated": len(plan.rows),
                "feasible": len(plan.ranked),
                "best": entry(best) if best is not None else None,
                "deployments": [entry(i) for i in chosen],
            },
            indent=2,
        )
    if fmt == "csv":
        return to_csv([entry(i) for i in chosen]).rstrip("\n")
    slo = " and ".join(f"{k[:4].upper()} <= {v:g} s" for k, v in plan.slo.items() if v is not None)
    marks = []
    for i in chosen:
        r = plan.rows[i]
        if r["error"] is not None:
            marks.append("refused")
        elif i == best:
            marks.append("cheapest")
        elif plan.front[i]:
            marks.append("pareto")
        else:
            marks.append("meets" if r["feasible"] else "misses")
    refused = [r for r in plan.rows if r["error"] is not None]
    lines = [
        f"{len(plan.rows)} deployment{'s' * (len(plan.rows) != 1)} evaluated at {plan.rate_per_s:g} req/s ({plan.executor}); "
        f"{len(plan.ranked)} have {plan.attainment:.0%} of requests within {slo}. "
        + (
            "Every deployment, cheapest feasible first:"
            if show_all
            else f"Pareto front of $/M output tokens vs p90 {plan.latency.upper()}:"
        ),
        plan_serving_table([plan.rows[i] for i in chosen], marks),
    ]
    short = [plan.rows[i] for i in chosen if plan.rows[i].get("max_rate_short_run")]
    if short:
        lines.append(
            f"note: {len(short)} max rates above come from runs whose arrivals span under {SHORT_RUN_E2E:g} p90 E2E "
            "latencies and may exceed what a long run sustains; raise serving.requests (docs/serving.md)"
        )
    if refused:
        lines.append(
            f"{len(refused)} refused by the simulator, e.g. {refused[0]['label']}: {refused[0]['error']}"
        )
    return "\n".join(lines)
