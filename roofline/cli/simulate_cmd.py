"""`roofline simulate SCENARIO.yaml`: evaluate a scenario (and its sweep) and print or save results."""

from __future__ import annotations

import json
import sys

from roofline.report.catalog import scenario_fields


def add_parser(sub) -> None:
    fields = scenario_fields()
    p = sub.add_parser(
        "simulate",
        help="simulate a scenario YAML (TTFT, TPOT, memory, cost, bounds)",
        description="Simulate a scenario YAML file. Fields (override with --set PATH=VALUE):\n" + fields,
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    p.add_argument("scenario", help="scenario YAML file (see scenarios/)")
    p.add_argument(
        "--format", choices=("table", "json", "csv"), default="table", help="output format (default: table)"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a field, e.g. --set workload.batch=8 (repeatable; VALUE is read as YAML)",
    )
    p.add_argument(
        "--plot",
        metavar="OUT.html",
        help="write an interactive plotly page (roofline, time and memory breakdowns) for one point",
    )
    p.add_argument(
        "--point", type=int, default=0, help="which sweep point to detail in the table and --plot (default 0)"
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write the output to FILE (atomically) instead of stdout"
    )


def run(args) -> int:
    from roofline.api import (
        MAX_RECORDS,
        ScenarioError,
        check_output,
        load_hardware,
        load_scenario,
        op_table,
        simulate,
        write_atomic,
    )
    from roofline.report.tables import single_table, sweep_table, to_csv

    inputs = (args.scenario,)
    for target in (args.output, args.plot):
        if target:  # refused before any work: the scenario itself, a link, a FIFO, a device
            check_output(target, inputs)
    scenario = load_scenario(args.scenario, args.overrides)
    if scenario.points > MAX_RECORDS:  # refused before running: one row per point is printed
        raise ScenarioError(
            [
                f"{args.scenario}: sweep: {scenario.points:,} points; the CLI writes one row per point, at most "
                f"{MAX_RECORDS:,}: sweep fewer values, or take columns from the Python API (roofline.sweep)"
            ]
        )
    result = simulate(scenario)
    if not 0 <= args.point < result.n:
        raise ScenarioError(
            [f"--point {args.point}: the sweep has {result.n} points (valid: 0..{result.n - 1})"]
        )
    records = result.records()
    if args.format == "json":
        text = json.dumps(records, indent=2)
    elif args.format == "csv":
        text = to_csv(records)
    elif result.n == 1:
        text = single_table(records[0], op_table(result, 0, "prefill"), op_table(result, 0, "decode"))
    else:
        text = sweep_table(records)
        if args.point:
            i = args.point
            text += "\n\n" + single_table(
                records[i], op_table(result, i, "prefill"), op_table(result, i, "decode")
            )
    if args.output:
        write_atomic(args.output, text + "\n", inputs)
    else:
        sys.stdout.write(text + "\n")
    if args.plot:
        from roofline.report.figures import make_report_html

        i = args.point
        rec = records[i]
        html = make_report_html(
            load_hardware(rec["hardware"]), rec, op_table(result, i, "prefill"), op_table(result, i, "decode")
        )
        write_atomic(args.plot, html, inputs)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
