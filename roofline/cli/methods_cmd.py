"""`roofline methods [NAME]`: the long-context methods with their parameters and citations."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "methods",
        help="list long-context methods (parameters, citations)",
        description="List the long-context methods, or show one with every parameter's help and range.",
    )
    p.add_argument("name", nargs="?", help="a method name to show in full")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def run(args) -> int:
    from roofline.api import REGISTRY, ScenarioError, did_you_mean
    from roofline.report.catalog import method_list, method_sheet
    from roofline.report.catalog_json import document, method_record

    if args.name:
        cls = REGISTRY.get(args.name)
        if cls is None:
            dym = did_you_mean(args.name, REGISTRY)
            raise ScenarioError([f"unknown method {args.name!r}.{dym} Valid: {', '.join(REGISTRY)}"])
        print(document("method", method_record(cls)) if args.format == "json" else method_sheet(cls))
        return 0
    if args.format == "json":
        print(document("methods", [method_record(c) for c in REGISTRY.values()]))
    else:
        print(method_list(REGISTRY.values()))
    return 0
