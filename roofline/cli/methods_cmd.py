"""`roofline methods [NAME]`: the long-context methods with their parameters and citations."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "methods",
        help="list long-context methods (parameters, citations)",
        description="List the long-context methods, or show one with every parameter's help and range.",
    )
    p.add_argument("name", nargs="?", help="a method name to show in full")


def run(args) -> int:
    from roofline.api import REGISTRY, ScenarioError, did_you_mean
    from roofline.report.catalog import method_list, method_sheet

    if args.name:
        cls = REGISTRY.get(args.name)
        if cls is None:
            dym = did_you_mean(args.name, REGISTRY)
            raise ScenarioError([f"unknown method {args.name!r}.{dym} Valid: {', '.join(REGISTRY)}"])
        print(method_sheet(cls))
        return 0
    print(method_list(REGISTRY.values()))
    return 0
