"""Scenario validation against its schema (`scenario_schema.py`): a parsed YAML mapping in, a
checked `Scenario` out.

Every field carries help text, reused by `--help`, error messages and (later) dashboard tooltips.
Bad input — unknown keys, wrong types, out-of-range values, unknown names, impossible layouts — is
rejected before any computation with `ScenarioError`, whose message names the file, the field
path and the valid choices ("did you mean"). Name lookups (model, hardware) are injected by the
caller so this module stays free of file access.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from roofline.simulator.errors import UserError, did_you_mean, short
from roofline.simulator.layout import Layout, ep_splits
from roofline.simulator.scenario_schema import (
    REQUIRED,
    SCHEMA,
    SECTIONS,
    TOP_LEVEL,
    FieldSpec,
)
from roofline.simulator.units import TOKEN_COUNT_HELP, is_token_field, parse_token_count


class ScenarioError(UserError):
    """Invalid scenario input; str() lists every problem found."""

    def __init__(self, problems: list):
        self.problems = problems
        super().__init__(_problem_text(problems))


MAX_MESSAGE_CHARS = 2000  # an error message lists problems up to about this length, then counts the rest
MAX_PROBLEM_CHARS = 1000


def _problem_text(problems: list) -> str:
    """The problems one per line, each cut to MAX_PROBLEM_CHARS, the list to about MAX_MESSAGE_CHARS."""
    lines, used = [], 0
    problems = list(dict.fromkeys(str(p) for p in problems))  # a problem repeated is said once
    for i, text in enumerate(problems):
        text = text if len(text) <= MAX_PROBLEM_CHARS else text[: MAX_PROBLEM_CHARS - 4] + " ..."
        if lines and used + len(text) > MAX_MESSAGE_CHARS:
            lines.append(f"... and {len(problems) - i:,} more problems")
            break
        lines.append(text)
        used += len(text) + 1
    return "\n".join(lines)


MAX_SWEEP_POINTS = 250_000  # ~40 float64 result columns (~80 MB), a quarter of a second to evaluate
# Axes that change the op graph (sweep.VECTOR_AXES are the others) split the grid into structural
# groups, each built and costed on its own (~1-2 ms each): 500 keep a run within about a second.
MAX_STRUCTURAL_GROUPS = 500
MAX_METHODS = 32  # a stack uses each method at most once (exclusive categories); 32 leaves room


def check_value(path: str, value, spec: FieldSpec, names: dict) -> str | None:
    """Return a problem description for `value` at `path`, or None if it is valid."""
    if value is None:
        return None if spec.nullable else f"{path}: must not be null. {spec.help}"
    if spec.kind == "custom":
        return spec.check(path, value)
    if spec.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            what = TOKEN_COUNT_HELP if is_token_field(path) else "an integer"
            return f"{path}: must be {what}, got {short(value)}. {spec.help}"
    elif spec.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{path}: must be a number, got {short(value)}. {spec.help}"
        if value != value or value in (float("inf"), float("-inf")):
            return f"{path}: must be finite, got {short(value)}."
    elif spec.kind == "bool":
        if not isinstance(value, bool):
            return f"{path}: must be true or false, got {short(value)}. {spec.help}"
    elif spec.kind in ("str", "name") or (
        spec.kind == "choice" and all(isinstance(c, str) for c in spec.choices)
    ):
        if not isinstance(value, str):
            return f"{path}: must be a string, got {short(value)}. {spec.help}"
    if spec.minimum is not None and spec.kind in ("int", "float"):
        if value < spec.minimum or (spec.exclusive_minimum and value == spec.minimum):
            bound = ">" if spec.exclusive_minimum else ">="
            return f"{path}: must be {bound} {spec.minimum:g}, got {short(value)}. {spec.help}"
    if spec.maximum is not None and spec.kind in ("int", "float") and value > spec.maximum:
        return f"{path}: must be <= {spec.maximum:g}, got {short(value)}. {spec.help}"
    if spec.kind == "choice" and (isinstance(value, bool) or value not in spec.choices):
        valid = [str(c) for c in spec.choices]
        return f"{path}: {short(value)} is not valid.{did_you_mean(value, valid)} Valid: {', '.join(valid)}"
    if spec.kind == "name" and path in names:
        problem = names[path](value)
        if problem:
            return f"{path}: {problem}"
    return None


@dataclass
class Scenario:
    """A validated scenario: `base` holds every field path's value; `sweep` the swept axes;
    `methods` the user's method specs and `stack` the Method objects parsed from them, once."""

    name: str
    base: dict
    methods: list = field(default_factory=list)
    sweep: list = field(default_factory=list)  # [(path, [values...])]
    stack: tuple = ()  # parsed Method objects, in the order given
    serving: dict | None = None  # `serving.*` path -> value (defaults filled) when the file has the section
    serving_sweep: list = field(default_factory=list)  # [(serving.* path, [values...])]: `serve` only

    @property
    def points(self) -> int:
        n = 1
        for _, values in self.sweep:
            n *= len(values)
        return n


def flatten(doc: dict, source: str, problems: list) -> dict:
    """Nested mapping -> {dotted path: value}; unknown keys become problems."""
    flat: dict = {}
    for key, value in doc.items():
        if key not in TOP_LEVEL:
            problems.append(
                f"{source}: unknown field {key!r}.{did_you_mean(key, TOP_LEVEL)} Valid: {', '.join(TOP_LEVEL)}"
            )
        elif key in SECTIONS:
            if value is None:
                continue
            if not isinstance(value, dict):
                problems.append(f"{source}: field {key!r} must be a mapping, got {short(value)}")
                continue
            valid = [p.split(".", 1)[1] for p in SCHEMA if p.startswith(key + ".")]
            for sub, v in value.items():
                if sub not in valid:
                    problems.append(
                        f"{source}: unknown field {key}.{sub}.{did_you_mean(sub, valid)} Valid: {', '.join(valid)}"
                    )
                else:
                    flat[f"{key}.{sub}"] = v
        elif key == "serving":
            from roofline.simulator.serving.config import flatten_serving

            flatten_serving(value, "serving", source, problems, flat)
        elif key not in ("methods", "sweep"):
            flat[key] = value
    return flat


def token_count(path: str, value):
    """A token-count field's `128k` / `1M` as an integer (units.parse_token_count); other values as given."""
    return parse_token_count(value) if is_token_field(path) and SCHEMA[path].kind == "int" else value


def set_path(doc: dict, path: str, value) -> None:
    """Apply a `--set path=value` override to a nested scenario mapping (in place); `sweep.<field>`
    sets (or replaces) one sweep axis, e.g. `sweep.hardware=[h100-sxm, h200]`."""
    if isinstance(path, str) and path.startswith("sweep."):
        axis = path.split(".", 1)[1]
        sweepable = [p for p, s in SCHEMA.items() if s.sweepable]
        if axis not in sweepable:
            raise ScenarioError(
                [
                    f"--set {path[:60]}: not a sweepable field.{did_you_mean(axis, sweepable)} Valid: sweep.<{', '.join(sweepable)}>"
                ]
            )
        if not isinstance(doc.get("sweep"), dict):
            doc["sweep"] = {}
        doc["sweep"][axis] = value if isinstance(value, list) else [value]
        return
    from roofline.simulator.serving.config import SERVING_SCHEMA

    if path not in SCHEMA and path not in SERVING_SCHEMA and path not in ("methods",):
        valid = list(SERVING_SCHEMA if str(path).startswith("serving") else SCHEMA)
        raise ScenarioError(
            [f"--set {str(path)[:60]}: unknown field.{did_you_mean(path, valid)} Valid: {', '.join(valid)}"]
        )
    parts = path.split(".")
    node = doc
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def _layout_problems(values: dict, where: str) -> list:
    problems = []
    tp, pp, cp, dp = (values[f"parallelism.{k}"] for k in ("tp", "pp", "cp", "dp"))
    ep = values["parallelism.ep"]
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (tp, pp, cp, dp, ep)):
        return problems
    gpus, layout = values.get("gpus"), Layout(tp=tp, pp=pp, cp=cp, dp=dp)
    if isinstance(gpus, int) and gpus != layout.gpus:
        problems.append(
            f"{where}gpus: {gpus} GPUs but tp*pp*cp*dp = {tp}*{pp}*{cp}*{dp} = {layout.gpus}; make them equal or set gpus: null"
        )
    if not ep_splits(ep, tp, tp * dp):
        problems.append(
            f"{where}parallelism.ep: expert parallelism spans whole tensor-parallel groups inside the tp*dp "
            f"GPUs, so ep must be a multiple of tp={tp} and divide tp*dp={tp * dp}; got ep={ep}"
        )
    return problems


def validate(doc, source: str, names: dict, require_workload: bool = True) -> Scenario:
    """Check a parsed scenario mapping and parse its methods (the only place they are parsed).
    `names` maps 'model'/'hardware'/'topology.fabric' to a function returning a problem string (or
    None) for a name. Checks that need the model itself are `scenario_checks.model_dependent_problems`.
    `require_workload=False`: the workload's required lengths may be absent (a step-cost model
    prices whatever batches it is given)."""
    from roofline.simulator.methods import parse_methods  # methods' parameters use this module's FieldSpec

    if not isinstance(doc, dict):
        raise ScenarioError(
            [f"{source}: a scenario must be a YAML mapping of fields, got {type(doc).__name__}"]
        )
    problems: list = []
    flat = flatten(doc, source, problems)
    raw_sweep = doc.get("sweep") or {}
    if not isinstance(raw_sweep, dict):
        problems.append(f"{source}: sweep must map field paths to lists of values, got {short(raw_sweep)}")
        raw_sweep = {}
    for req in REQUIRED:
        if flat.get(req) is None and req not in raw_sweep and require_workload:
            serving = " (a serving scenario: `roofline serve` takes its lengths from `serving:`)"
            hint = serving if isinstance(doc.get("serving"), dict) else ""
            problems.append(f"{source}: missing required field {req!r}{hint}. {SCHEMA[req].help}")
    from roofline.simulator.serving.config import SERVING_SCHEMA, checked_serving

    serving = {p: v for p, v in flat.items() if p.startswith("serving.")}
    flat = {path: token_count(path, value) for path, value in flat.items() if not path.startswith("serving.")}
    base = {p: spec.default for p, spec in SCHEMA.items()}
    base.update(flat)
    for path, value in flat.items():
        problem = check_value(path, value, SCHEMA[path], names)
        if problem:
            problems.append(f"{source}: {problem}")
    serving = checked_serving(serving, isinstance(doc.get("serving"), dict), source, names, problems)

    sweep = []
    sweepable = [p for p, s in SCHEMA.items() if s.sweepable]
    serving_sweep = []
    for path, values in raw_sweep.items():
        if isinstance(path, str) and path in SERVING_SCHEMA and isinstance(doc.get("serving"), dict):
            # A serving field sweeps `roofline serve` runs (one per point); `simulate` ignores it.
            if not isinstance(values, list) or not values:
                problems.append(
                    f"{source}: sweep.{path}: must be a non-empty list of values, got {short(values)}"
                )
                continue
            for v in values:
                problem = check_value(path, v, SERVING_SCHEMA[path], names)
                if problem:
                    problems.append(f"{source}: sweep.{problem}")
            serving_sweep.append((path, list(values)))
            continue
        if path not in SCHEMA or not SCHEMA[path].sweepable:
            problems.append(
                f"{source}: sweep.{path}: not a sweepable field.{did_you_mean(path, sweepable)} Valid: {', '.join(sweepable)}"
            )
            continue
        if not isinstance(values, list) or not values:
            problems.append(
                f"{source}: sweep.{path}: must be a non-empty list of values, got {short(values)}"
            )
            continue
        values = [token_count(path, v) for v in values]
        for v in values:
            problem = check_value(path, v, SCHEMA[path], names)
            if problem:
                problems.append(f"{source}: sweep.{problem}")
        sweep.append((path, list(values)))

    methods = doc.get("methods") or []
    if not isinstance(methods, list):
        problems.append(
            f"{source}: methods must be a list of {{name: ..., <parameters>}} mappings, got {short(methods)}"
        )
        methods = []
    if len(methods) > MAX_METHODS:
        problems.append(
            f"{source}: methods: {len(methods):,} entries; a stack holds at most {MAX_METHODS} methods"
        )
        methods = []
    stack, method_problems = parse_methods(methods, source)
    problems += method_problems

    points = 1
    for _, values in sweep:
        points *= len(values)
    if points > MAX_SWEEP_POINTS:
        problems.append(
            f"{source}: sweep: {points:,} points (the product of the axis lengths); at most {MAX_SWEEP_POINTS:,} per run"
        )
    groups = structural_groups(sweep)
    if groups > MAX_STRUCTURAL_GROUPS:
        problems.append(
            f"{source}: sweep: {groups:,} structural groups (the product of the lengths of the axes that "
            f"change the op graph: model, layout, dtypes, overlap); at most {MAX_STRUCTURAL_GROUPS:,} per run"
        )
    if not problems:
        problems += cross_field_problems(base, sweep, source)
    if problems:
        raise ScenarioError(problems)
    name = base.get("name") or source.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    methods = [  # as parsed: a token count given as 4k is kept as 4096
        {k: parse_token_count(v) if is_token_field(k) else v for k, v in m.items()}
        if isinstance(m, dict)
        else m
        for m in copy.deepcopy(methods)
    ]
    return Scenario(
        name=name,
        base=base,
        methods=methods,
        sweep=sweep,
        stack=tuple(stack),
        serving=serving,
        serving_sweep=serving_sweep,
    )


def structural_groups(sweep: list) -> int:
    """How many structural groups a sweep splits into (sweep.VECTOR_AXES stay array dimensions)."""
    from roofline.simulator.sweep import VECTOR_AXES

    groups = 1
    for path, values in sweep:
        if path not in VECTOR_AXES:
            groups *= len(values)
    return groups


def cross_field_problems(base: dict, sweep: list, source: str) -> list:
    """Constraints between fields, checked over the extremes of every swept axis."""
    problems = []
    swept = dict(sweep)
    layout_keys = ["gpus"] + [f"parallelism.{k}" for k in ("tp", "pp", "cp", "dp", "ep")]
    combos = [dict(base)]
    for key in layout_keys:
        if key in swept:
            combos = [dict(c, **{key: v}) for c in combos for v in swept[key]]
    seen = set()
    for combo in combos:
        for problem in _layout_problems(combo, f"{source}: "):
            if problem not in seen:
                seen.add(problem)
                problems.append(problem)
    problems += _transformers_field_problems(base, swept, source)
    prompts = swept.get("workload.prompt_tokens", [base["workload.prompt_tokens"]])
    prefixes = swept.get("workload.shared_prefix_tokens", [base["workload.shared_prefix_tokens"]])
    if max(prefixes) > min(prompts):
        problems.append(
            f"{source}: workload.shared_prefix_tokens: {max(prefixes)} shared tokens exceed the prompt "
            f"({min(prompts)} tokens); the shared prefix is part of the prompt"
        )
    return problems


# transformers-only fields: what each picks (cross_field_problems)
TRANSFORMERS_FIELDS = {
    "runtime.attn_implementation": "attention path",
    "runtime.cache_implementation": "KV cache",
}


def _transformers_field_problems(base: dict, swept: dict, source: str) -> list:
    """The fields that only HuggingFace transformers' code reads, set where no point runs it; a
    dynamic cache asked to replay CUDA graphs (which need a static one)."""
    problems = []
    frameworks = swept.get("runtime.framework", [base["runtime.framework"]])
    for path, what in TRANSFORMERS_FIELDS.items():
        values = [v for v in swept.get(path, [base[path]]) if v]
        if values and "transformers" not in frameworks:
            problems.append(
                f"{source}: {path}: {values[0]!r} picks HuggingFace transformers' {what}, read with "
                f"runtime.framework: transformers only; the framework here is "
                f"{', '.join(map(str, frameworks))}. Set runtime.framework: transformers, or leave "
                f"{path} unset (null)"
            )
    graphs = swept.get("runtime.cuda_graphs", [base["runtime.cuda_graphs"]])
    caches = swept.get("runtime.cache_implementation", [base["runtime.cache_implementation"]])
    if "dynamic" in caches and True in graphs and "transformers" in frameworks:
        problems.append(
            f"{source}: runtime.cache_implementation: 'dynamic' with runtime.cuda_graphs: true; a "
            "captured graph replays fixed addresses, so transformers needs a static cache for it: "
            "set cache_implementation: static (or null), or cuda_graphs: false"
        )
    return problems
