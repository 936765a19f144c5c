"""`roofline schema [-o FILE]`: the JSON Schema of scenario files, for editors' YAML validation."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "schema",
        help="print the JSON Schema of scenario files (for editors)",
        description="Print the JSON Schema (draft 2020-12) of scenario files, generated from the scenario "
        "fields and the methods registry; point an editor's YAML language server at it.",
    )
    p.add_argument(
        "-o", "--output", metavar="FILE", help="write the schema to FILE (atomically) instead of stdout"
    )


def run(args) -> int:
    from roofline.api import check_output, write_atomic
    from roofline.report.json_schema import scenario_schema

    text = json.dumps(scenario_schema(), indent=2) + "\n"
    if args.output:
        check_output(args.output)
        write_atomic(args.output, text)
    else:
        print(text, end="")
    return 0
