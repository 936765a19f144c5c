"""`roofline serve SCENARIO.yaml`: simulate serving the scenario's traffic (its `serving:` section)
and print throughput, latency percentiles, SLO goodput, KV use and cost."""

from __future__ import annotations

import json
import sys


def add_parser(sub) -> None:
    from roofline.api import SERVING_SCHEMA

    fields = "\n".join(f"  {path:<40} {spec.help}" for path, spec in SERVING_SCHEMA.items())
    p = sub.add_parser(
        "serve",
        help="simulate serving traffic: continuous batching, paged KV, prefix cache, SLO goodput",
        description="Simulate request-level serving of a scenario with a serving: section "
        "(docs/serving.md). Serving fields (override with --set PATH=VALUE):\n" + fields,
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    p.add_argument("scenario", help="scenario YAML file with a serving: section")
    p.add_argument(
        "--format", choices=("table", "json", "csv"), default="table", help="output format (default: table)"
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a field, e.g. --set serving.arrival.rate_per_s=8 (repeatable; VALUE is read as YAML)",
    )
    p.add_argument(
        "--plot",
        metavar="OUT.html",
        help="write the time series (running, queued, KV use) as a plotly page (the first point of a sweep)",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write the output to FILE (atomically) instead of stdout"
    )


def run(args) -> int:
    from roofline.api import check_output, serve, write_atomic
    from roofline.report.serve_tables import serve_csv, serve_table

    inputs = (args.scenario,)
    for target in (args.output, args.plot):
        if target:
            check_output(target, inputs)
    result = serve(args.scenario, args.overrides)
    records = [r.record for r in result] if isinstance(result, list) else [result.record]
    if args.format == "json":  # one object; an array, one per point, when the scenario sweeps
        text = json.dumps([r for r in records] if isinstance(result, list) else records[0], indent=2)
    elif args.format == "csv":
        text = serve_csv(records)
    else:
        text = "\n\n".join(serve_table(r) for r in records)
    if args.output:
        write_atomic(args.output, text + "\n", inputs)
    else:
        sys.stdout.write(text + "\n")
    if args.plot:
        from roofline.report.serve_figures import make_serve_html

        write_atomic(args.plot, make_serve_html(records[0]), inputs)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
