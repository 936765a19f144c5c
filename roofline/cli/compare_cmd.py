"""`roofline compare SCENARIO --methods a,b,a+b`: method stacks side by side against dense.

Each stack is `+`-joined method names. A name takes its parameters from the scenario's `methods:`
list (a palette), or the method's defaults when it has no required parameter.
"""

from __future__ import annotations

import copy
import json


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
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")


def stacks_from(text: str, palette: list) -> list:
    """[(label, [method specs])] for each comma-separated stack (`roofline.report.stacks`); a method
    not in the palette runs with its defaults, so it must have no required parameter."""
    from roofline.api import REGISTRY, REQUIRED, ScenarioError, did_you_mean
    from roofline.report.stacks import parse_stacks

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
    from roofline.api import ScenarioError, parse_override, read_scenario_file, set_path, simulate
    from roofline.report.tables import compare_records, compare_table, to_csv

    doc = read_scenario_file(args.scenario)
    if not isinstance(doc, dict):
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
    if args.format == "json":
        print(json.dumps(compare_records(rows), indent=2))
        return 0
    if args.format == "csv":
        print(to_csv(compare_records(rows)), end="")
        return 0
    print(compare_table(rows))
    return 0
