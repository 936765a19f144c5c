"""`roofline compare [SCENARIO] --methods a,b,a+b`: method stacks side by side against dense.

Each stack is `+`-joined method names. A name takes its parameters from the scenario's `methods:`
list or the `--method NAME:KEY=VALUE` flags (a palette), or the method's defaults when it has no
required parameter. Without --methods, each method of the palette runs alone, then all together.
"""

from __future__ import annotations

import copy
import json


def add_parser(sub) -> None:
    from roofline.cli.scenario_flags import TOKENS_EPILOG, add_scenario_arguments

    p = sub.add_parser(
        "compare",
        help="compare method stacks against the dense baseline",
        description="Run a scenario (a file, one-line flags, or both) once per method stack (plus the dense "
        "baseline) and print speedups, memory, max batch and max context side by side. Stacks: "
        "comma-separated, methods joined by '+'; parameters come from the scenario's methods: list or "
        "--method flags, e.g.\n  roofline compare --model llama-3.1-8b --hardware h100-sxm --prompt 128k "
        "--method kv_quant:bits=4 --method quest:token_budget=4k --methods kv_quant,quest,kv_quant+quest",
        epilog=TOKENS_EPILOG,
    )
    add_scenario_arguments(
        p, scenario_help="scenario YAML; its methods: list defines the parameters (optional with --model ...)"
    )
    p.add_argument(
        "--methods",
        metavar="STACKS",
        help="e.g. kv_quant,quest,kv_quant+quest (default: each --method / methods: entry alone, then all)",
    )
    p.add_argument("--format", choices=("table", "json", "csv"), default="table")
    p.add_argument(
        "--force",
        action="store_true",
        help="report latency and cost of stacks that do not fit too (default: null)",
    )


def stacks_from(text: str, palette: list) -> list:
    """[(label, [method specs])] for each comma-separated stack (`roofline.report.stacks`); a method
    not in the palette runs with its defaults, so it must have no required parameter."""
    from roofline.api import REGISTRY, REQUIRED, ScenarioError, did_you_mean
    from roofline.report.stacks import parse_stacks

    def fill(name: str) -> tuple:
        missing = [k for k, p in REGISTRY[name].params.items() if p.default is REQUIRED]
        problem = (
            f"--methods {name}: needs {', '.join(missing)}; give --method {name}:{missing[0]}=... or add {{name: {name}, ...}} to the scenario's methods: list"
            if missing
            else None
        )
        return {"name": name}, problem

    def unknown(label: str, name: str) -> str:
        return f"--methods {name}: unknown method.{did_you_mean(name, REGISTRY)} Valid: {', '.join(REGISTRY)}"

    out, problems = parse_stacks(text, palette, fill, unknown, baseline_labels=())
    if problems:
        raise ScenarioError(problems)
    if not out:
        raise ScenarioError(["--methods: give at least one stack, e.g. kv_quant,quest,kv_quant+quest"])
    return out


def default_stacks(palette: list) -> str:
    """Each method of the palette alone, then all of them together (when there are several)."""
    names = [m["name"] if isinstance(m, dict) else str(m) for m in palette]
    return ",".join(names + (["+".join(names)] if len(names) > 1 else []))


def run(args) -> int:
    import sys

    from roofline.api import ScenarioError, parse_override, set_path, simulate
    from roofline.cli.scenario_flags import load, scenario_doc
    from roofline.report.format import dim, wants_colour
    from roofline.report.tables import compare_records, compare_table, to_csv

    doc, where, _ = scenario_doc(args)
    # Overrides edit the scenario first (a `--set methods=[...]` supplies the stacks' parameters);
    # then each stack replaces the methods, so the baseline is always the scenario without them.
    for text in args.overrides:
        set_path(doc, *parse_override(text))
    load(copy.deepcopy(doc), (), where)  # the scenario's own problems first, once
    palette = doc.get("methods") or []
    text = args.methods or (default_stacks(palette) if isinstance(palette, list) else "")
    if not text:
        raise ScenarioError(
            [
                "--methods: give the stacks to compare, e.g. --methods kv_quant,quest,kv_quant+quest, or --method flags"
            ]
        )
    stacks = [("dense", [])] + stacks_from(text, palette)
    rows = []
    for label, specs in stacks:
        variant = copy.deepcopy(doc)
        variant["methods"] = specs
        records = simulate(variant, name=where).records()
        for rec in records:
            rows.append((label, rec))
    if args.format == "json":
        print(json.dumps(compare_records(rows, not args.force), indent=2))
        return 0
    if args.format == "csv":
        print(to_csv(compare_records(rows, not args.force)), end="")
        return 0
    print(compare_table(rows, dim if wants_colour(sys.stdout) else None, not args.force))
    return 0
