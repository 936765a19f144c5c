"""`roofline compare SCENARIO --methods a,b,a+b`: method stacks side by side against dense.

Each stack is `+`-joined method names. A name takes its parameters from the scenario's `methods:`
list (a palette), or the method's defaults when it has no required parameter.
"""

from __future__ import annotations

import copy
import json
import sys


def add_parser(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="compare method stacks against the dense baseline",
        description="Run a scenario once per method stack (plus the dense baseline) and print speedups, memory, "
        "max batch and max context side by side. Stacks: comma-separated, methods joined by '+'; "
        "parameters come from the scenario's methods: list.",
    )
    p.add_argument("scenario", help="scenario YAML; its methods: list defines the parameters")
    p.add_argument("--methods", required=True, metavar="STACKS", help="e.g. kv_quant,quest,kv_quant+quest")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE", help="override a field"
    )
    p.add_argument("--format", choices=("table", "json"), default="table")


def stacks_from(text: str, palette: list) -> list:
    """[(label, [method specs])] for each comma-separated stack (`roofline.report.stacks`); a method
    not in the palette runs with its defaults, so it must have no required parameter."""
    from roofline.report.stacks import parse_stacks
    from roofline.simulator.errors import did_you_mean
    from roofline.simulator.methods import REGISTRY
    from roofline.simulator.methods.base_method import REQUIRED
    from roofline.simulator.scenario import ScenarioError

    def fill(name: str) -> tuple:
        missing = [k for k, p in REGISTRY[name].params.items() if p.default is REQUIRED]
        problem = (
            f"--methods {name}: needs {', '.join(missing)}; add {{name: {name}, ...}} to the scenario's methods: list"
            if missing
            else None
        )
        return {"name": name}, problem

    def unknown(label: str, name: str) -> str:
        return f"--methods {name}: unknown method.{did_you_mean(name, REGISTRY)}"

    out, problems = parse_stacks(text, palette, fill, unknown, baseline_labels=())
    if problems:
        raise ScenarioError(problems)
    if not out:
        raise ScenarioError(["--methods: give at least one stack, e.g. kv_quant,quest,kv_quant+quest"])
    return out


def run(args) -> int:
    from roofline.api import parse_override, read_scenario_file, simulate
    from roofline.report.format import gib, si_time
    from roofline.simulator.scenario import set_path

    doc = read_scenario_file(args.scenario)
    if not isinstance(doc, dict):
        from roofline.simulator.scenario import ScenarioError

        raise ScenarioError([f"{args.scenario}: a scenario must be a YAML mapping"])
    # Overrides edit the scenario first (a `--set methods=[...]` supplies the stacks' parameters);
    # then each stack replaces the methods, so the baseline is always the scenario without them.
    for text in args.overrides:
        set_path(doc, *parse_override(text))
    stacks = [("dense", [])] + stacks_from(args.methods, doc.get("methods") or [])
    rows = []
    for label, specs in stacks:
        variant = copy.deepcopy(doc)
        variant["methods"] = specs
        records = simulate(variant, name=args.scenario).records()
        for rec in records:
            rows.append((label, rec))
    base = {json.dumps(r["point"], sort_keys=True): r for label, r in rows if label == "dense"}
    if args.format == "json":
        out = []
        for label, r in rows:
            b = base[json.dumps(r["point"], sort_keys=True)]
            out.append(
                {
                    "stack": label,
                    "ttft_speedup": b["ttft_s"] / r["ttft_s"],
                    "tpot_speedup": b["tpot_s"] / r["tpot_s"],
                    **r,
                }
            )
        print(json.dumps(out, indent=2))
        return 0
    head = [
        "stack",
        "point",
        "TTFT",
        "x",
        "TPOT",
        "x",
        "KV/GPU",
        "mem/GPU",
        "fits",
        "max_batch",
        "max_ctx",
        "$/M out",
    ]
    table = []
    for label, r in rows:
        b = base[json.dumps(r["point"], sort_keys=True)]
        mc = r["max_context_tokens"]
        table.append(
            [
                label,
                ",".join(f"{v}" for v in r["point"].values()) or "-",
                si_time(r["ttft_s"]),
                f"{b['ttft_s'] / r['ttft_s']:.2f}",
                si_time(r["tpot_s"]),
                f"{b['tpot_s'] / r['tpot_s']:.2f}",
                gib(r["memory"]["kv_cache_bytes"]),
                gib(r["memory"]["total_bytes"]),
                "yes" if r["fits"] else "no",
                str(r["max_batch"]),
                "unlimited" if mc is None else str(mc),
                f"{r['cost']['usd_per_million_output_tokens']:.4g}",
            ]
        )
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(head)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    warnings = sorted({f"[{label}] {w}" for label, r in rows for w in r["provenance"]["warnings"]})
    for w in warnings:
        print(f"warning: {w}", file=sys.stdout)
    return 0
