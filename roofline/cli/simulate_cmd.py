"""`roofline simulate [SCENARIO.yaml] [--model ... --prompt 128k ...]`: evaluate a scenario (and its
sweep), given as a file, one-line flags or both, and print or save the results."""

from __future__ import annotations

import json
import sys

from roofline.report.catalog import scenario_fields


def add_parser(sub) -> None:
    from roofline.cli.scenario_flags import TOKENS_EPILOG, add_scenario_arguments

    fields = scenario_fields()
    p = sub.add_parser(
        "simulate",
        help="simulate a scenario (TTFT, TPOT, memory, cost, bounds): a YAML file or one-line flags",
        description="Simulate a scenario: a YAML file, one-line flags, or both (flags override the file, "
        "--set overrides both), e.g.\n"
        "  roofline simulate --model llama-3.1-70b --hardware h100-sxm --gpus 8 --tp 8 --prompt 128k --output 1k\n"
        "Fields (override with --set PATH=VALUE):\n" + fields,
        epilog=TOKENS_EPILOG,
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    add_scenario_arguments(p)
    p.add_argument(
        "--format", choices=("table", "json", "csv"), default="table", help="output format (default: table)"
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="report latency, throughput and cost of points that do not fit in memory too (default: null)",
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
        "-o",
        "--output-file",
        dest="output_file",
        metavar="FILE",
        help="write the output to FILE (atomically; missing folders are made) instead of stdout",
    )


def run(args) -> int:
    from roofline.api import (
        MAX_RECORDS,
        ScenarioError,
        check_output,
        load_hardware,
        op_table,
        simulate,
        without_unfit_figures,
        write_atomic,
    )
    from roofline.cli.scenario_flags import changed_fields, load, scenario_doc
    from roofline.report.format import dim, wants_colour
    from roofline.report.tables import single_table, sweep_table, to_csv

    doc, where, inputs = scenario_doc(args)
    for target in (args.output_file, args.plot):
        if target:  # refused before any work: the scenario itself, a link, a FIFO, a device
            check_output(target, inputs)
    scenario = load(doc, args.overrides, where)
    if scenario.points > MAX_RECORDS:  # refused before running: one row per point is printed
        raise ScenarioError(
            [
                f"{where}: sweep: {scenario.points:,} points; the CLI writes one row per point, at most "
                f"{MAX_RECORDS:,}: sweep fewer values, or take columns from the Python API (roofline.sweep)"
            ]
        )
    result = simulate(scenario)
    if not 0 <= args.point < result.n:
        raise ScenarioError(
            [f"--point {args.point}: the sweep has {result.n} points (valid: 0..{result.n - 1})"]
        )
    full = result.records()
    records = full if args.force else [without_unfit_figures(r) for r in full]
    changed = changed_fields(args) if args.scenario else ""
    grey = dim if args.format == "table" and not args.output_file and wants_colour(sys.stdout) else None
    if args.format == "json":
        text = json.dumps(records, indent=2)
    elif args.format == "csv":
        text = to_csv(records)
    elif result.n == 1:
        text = single_table(
            records[0],
            op_table(result, 0, "prefill"),
            op_table(result, 0, "decode"),
            changed=changed,
            grey=grey,
        )
    else:
        text = sweep_table(records, changed=changed, grey=grey)
        if args.point:
            i = args.point
            text += "\n\n" + single_table(
                records[i],
                op_table(result, i, "prefill"),
                op_table(result, i, "decode"),
                changed=changed,
                grey=grey,
            )
    if args.output_file:
        write_atomic(args.output_file, text + "\n", inputs)
    else:
        sys.stdout.write(text + "\n")
    if args.plot:
        from roofline.report.figures import make_report_html

        i = args.point
        rec = full[i]
        html = make_report_html(
            load_hardware(rec["hardware"]), rec, op_table(result, i, "prefill"), op_table(result, i, "decode")
        )
        write_atomic(args.plot, html, inputs)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
