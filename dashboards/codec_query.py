"""Plan values <-> a shareable URL query string: only values that differ from the defaults; a bad
parameter keeps its default and says why."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode

import yaml

from roofline.api import REGISTRY, REQUIRED, SCHEMA, SECTIONS
from roofline.dashboards.codec_scalar import format_scalar, parse_scalar
from roofline.dashboards.model_refs import model_ref_problem
from roofline.dashboards.state import DEFAULTS, FIELD_PATHS, full_method, is_model_param, suggested


def to_query(values: dict) -> str:
    """Query string (without '?') of the values that differ from the defaults."""
    pairs = []
    for path in FIELD_PATHS:
        v = values.get(path, DEFAULTS[path])
        if v != DEFAULTS[path] or type(v) is not type(DEFAULTS[path]):
            pairs.append((path, format_scalar(v)))
    methods = values.get("methods") or []
    if methods:
        pairs.append(("methods", ",".join(m["name"] for m in methods)))
    for m in methods:
        cls = REGISTRY.get(m["name"])
        for k, v in m.items():
            if k == "name" or cls is None or k not in cls.params:
                continue
            if cls.params[k].default is REQUIRED or v != cls.params[k].default:
                pairs.append((f"{m['name']}.{k}", format_scalar(v)))
    return urlencode(pairs, safe=":,")


def parse_query(search: str) -> dict:
    """'?a=1&b=2' -> {'a': '1', 'b': '2'} (a repeated key keeps its last value)."""
    parsed = parse_qs((search or "").lstrip("?"), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def _structured(key: str, raw: str) -> tuple:
    """(value, problem) of a structured field's URL text: its YAML, then the field's own check."""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return None, f"{key}={raw[:60]!r}: not a YAML value"
    if value is None and SCHEMA[key].nullable:
        return None, None
    return value, SCHEMA[key].check(key, value)


def _last(value):
    return value[-1] if isinstance(value, list) else value


def from_query(query: dict, catalog: dict, upload_dir=None) -> tuple:
    """(values, problems) from query parameters; a bad parameter keeps its default and says why.
    catalog: the valid names of name fields, {'model': zoo, 'hardware': [...], ...}."""
    values = dict(DEFAULTS)
    problems: list = []
    method_names: list = []
    method_params: dict = {}
    for key, raw in query.items():
        raw = str(_last(raw))
        if key in FIELD_PATHS:
            spec = SCHEMA[key]
            if spec.kind == "custom":  # a structured value (a list of batch sizes)
                value, problem = _structured(key, raw)
                if problem:
                    problems.append(f"URL parameter {problem}; kept {DEFAULTS[key]!r}")
                else:
                    values[key] = value
                continue
            try:
                values[key] = parse_scalar(raw, spec.kind, spec.choices, spec.nullable)
            except ValueError as exc:
                problems.append(f"URL parameter {key}={raw[:60]!r}: expected {exc}; kept {DEFAULTS[key]!r}")
        elif key == "methods":
            for name in [n.strip() for n in raw.split(",") if n.strip()]:
                if name not in REGISTRY:
                    problems.append(f"URL parameter methods: unknown method {name[:60]!r}; ignored")
                elif name not in method_names:
                    method_names.append(name)
        elif "." in key and key.split(".", 1)[0] in REGISTRY and key.split(".", 1)[0] not in SECTIONS:
            method_params[tuple(key.split(".", 1))] = raw
        elif key != "gpus":
            problems.append(f"URL parameter {key[:60]!r}: unknown; ignored")
    problem = model_ref_problem(values["model"], "URL parameter model", catalog["model"], upload_dir)
    if problem:
        problems.append(problem)
        values["model"] = DEFAULTS["model"]
    for path, valid in catalog.items():
        if path != "model" and values[path] not in valid:
            problems.append(
                f"URL parameter {path}={values[path]!r}: not one of {', '.join(valid)}; kept {DEFAULTS[path]!r}"
            )
            values[path] = DEFAULTS[path]
    methods = []
    for name in sorted(method_names, key=list(REGISTRY).index):
        cls = REGISTRY[name]
        spec = {"name": name}
        for k, p in cls.params.items():
            raw = method_params.pop((name, k), None)
            if raw is None:
                if p.default is REQUIRED:
                    spec[k] = suggested(name, k)
                continue
            try:
                spec[k] = parse_scalar(raw, p.kind, p.choices)
            except ValueError as exc:
                problems.append(f"URL parameter {name}.{k}={raw[:60]!r}: expected {exc}; kept the default")
                if p.default is REQUIRED:
                    spec[k] = suggested(name, k)
                continue
            if is_model_param(name, k) and spec[k] != "self":
                problem = model_ref_problem(
                    spec[k], f"URL parameter {name}.{k}", catalog["model"], upload_dir
                )
                if problem:
                    problems.append(problem)
                    spec[k] = suggested(name, k)
        methods.append(full_method(spec))
    for name, k in method_params:
        where = f"URL parameter {name}.{k}"
        if name not in method_names:
            problems.append(f"{where}: {name} is not in methods=; ignored")
        else:
            problems.append(f"{where}: {name} has no parameter {k!r}; ignored")
    values["methods"] = methods
    return values, problems
