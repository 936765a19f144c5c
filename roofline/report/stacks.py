"""The one parser of method stacks, for `roofline compare --methods` and the dashboard's Compare page.

A stack text is comma-separated stacks of `+`-joined method names: `dense, kv_quant, kv_quant+quest`.
A name takes its parameters from `palette` (the scenario's or the plan's `methods:` list); any other
method in the registry is filled by the face (`fill`), which decides where its parameters come from
and what it says when one is missing. How the face words an unknown name is `unknown`'s job.
"""

from __future__ import annotations

from roofline.simulator.methods import REGISTRY

BASELINE_LABELS = ("dense", "baseline", "none")


def parse_stacks(text: str, palette: list, fill, unknown, baseline_labels=BASELINE_LABELS) -> tuple:
    """([(label, [method specs])], problems) for each comma-separated stack in `text`.

    fill(name) -> (spec, problem or None) for a registry method not in the palette;
    unknown(label, name) -> the problem of a name the registry does not know. A stack with a
    problem is left out; a label in `baseline_labels` is the dense baseline ('dense', [])."""
    palette = palette if isinstance(palette, list) else []  # the scenario's validation reports a bad one
    by_name = {m["name"]: m for m in palette if isinstance(m, dict) and isinstance(m.get("name"), str)}
    stacks, problems = [], []
    for label in [s.strip() for s in (text or "").split(",") if s.strip()]:
        if label in baseline_labels:
            stacks.append(("dense", []))
            continue
        specs, found = [], []
        for name in [n.strip() for n in label.split("+") if n.strip()]:
            if name in by_name:
                specs.append(dict(by_name[name]))
                continue
            if name not in REGISTRY:
                found.append(unknown(label, name))
                continue
            spec, problem = fill(name)
            specs.append(spec)
            if problem:
                found.append(problem)
        problems += found
        if not found:
            stacks.append((label, specs))
    return stacks, problems
