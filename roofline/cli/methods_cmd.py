"""`roofline methods [NAME]`: the long-context methods with their parameters and citations."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "methods",
        help="list long-context methods (parameters, citations)",
        description="List the long-context methods, or show one with every parameter's help and range.",
    )
    p.add_argument("name", nargs="?", help="a method name to show in full")


def _param_line(name, p) -> str:
    from roofline.simulator.methods.base_method import REQUIRED

    default = "required" if p.default is REQUIRED else f"default {p.default!r}"
    rng = ""
    if p.choices:
        rng = f"; one of {', '.join(map(str, p.choices))}"
    elif p.minimum is not None or p.maximum is not None:
        lo = "" if p.minimum is None else f"{p.minimum:g}"
        hi = "" if p.maximum is None else f"{p.maximum:g}"
        rng = f"; range [{lo}, {hi}]"
    validated = f"; paper evaluated {p.validated[0]:g}..{p.validated[1]:g}" if p.validated else ""
    return f"    {name:<24} {p.help} ({p.kind}, {default}{rng}{validated})"


def run(args) -> int:
    from roofline.simulator.errors import did_you_mean
    from roofline.simulator.methods import REGISTRY
    from roofline.simulator.scenario import ScenarioError

    if args.name:
        cls = REGISTRY.get(args.name)
        if cls is None:
            dym = did_you_mean(args.name, REGISTRY)
            raise ScenarioError([f"unknown method {args.name!r}.{dym} Valid: {', '.join(REGISTRY)}"])
        print(f"{cls.name}: {cls.summary}")
        print(f"  changes:  {cls.changes}")
        print(f"  citation: {cls.citation}")
        print("  parameters:")
        for name, p in cls.params.items():
            print(_param_line(name, p))
        doc = (__import__(cls.__module__, fromlist=["_"]).__doc__ or "").strip()
        if doc:
            print("\n" + doc)
        return 0
    for cls in REGISTRY.values():
        params = ", ".join(cls.params) or "-"
        print(f"{cls.name:<22} {cls.summary}")
        print(f"{'':<22} parameters: {params}")
        print(f"{'':<22} {cls.citation}")
    print("\n`roofline methods NAME` shows one method's parameters with help and ranges.")
    return 0
