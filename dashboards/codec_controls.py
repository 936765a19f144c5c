"""Plan values <-> the Plan page's controls (schema fields, method switches, method parameters)."""

from __future__ import annotations

from roofline.api import REGISTRY, REQUIRED, SCHEMA
from roofline.dashboards.codec_scalar import NULL_OPTION, coerce_number, parse_scalar
from roofline.dashboards.state import DEFAULTS, FIELD_PATHS, suggested


def values_from_controls(fields: dict, enabled, params: dict) -> dict:
    """Control values -> values. fields: {path: value}; enabled: method names switched on;
    params: {(method, param): value}. Empty parameters are left out (the simulator then names
    the required ones); numbers are coerced to their field's kind."""
    values = dict(DEFAULTS)
    for path, v in fields.items():
        if path in FIELD_PATHS:
            if isinstance(v, str) and SCHEMA[path].kind in ("int", "float"):
                try:
                    v = parse_scalar(v, SCHEMA[path].kind, nullable=SCHEMA[path].nullable)
                except ValueError:
                    pass  # simulate() names the field and the expected type
            elif SCHEMA[path].nullable and (v == "" or (v == NULL_OPTION and SCHEMA[path].kind == "bool")):
                v = None  # an empty box, or a switch's "default" option
            elif SCHEMA[path].kind == "custom" and isinstance(v, str):
                v = list_from_text(v)  # a list typed in a text box: 1, 2, 4 or [1, 2, 4]
            values[path] = coerce_number(v, SCHEMA[path].kind)
    on = set(enabled or ())
    methods = []
    for name, cls in REGISTRY.items():
        if name not in on:
            continue
        spec = {"name": name}
        for k, p in cls.params.items():
            v = params.get((name, k))
            if v is None or v == "":
                if p.default is not REQUIRED:
                    spec[k] = p.default
                continue
            spec[k] = coerce_number(v, p.kind)
        methods.append(spec)
    values["methods"] = methods
    return values


def list_from_text(text: str):
    """A text box's list (`1, 2, 4` or `[1, 2, 4]`) as a list of numbers; text that is no such list
    stays text, for the scenario's check to name."""
    body = text.strip().removeprefix("[").removesuffix("]").strip()
    if not body:
        return None
    try:
        return [int(x) if float(x).is_integer() else float(x) for x in body.split(",")]
    except ValueError:
        return text


def control_values(values: dict) -> tuple:
    """values -> (fields, enabled, params), the inverse of `values_from_controls`; disabled
    methods' controls hold their suggested values."""
    fields = {p: values.get(p, DEFAULTS[p]) for p in FIELD_PATHS}
    for p in FIELD_PATHS:  # a nullable switch's null is its dropdown's "default" option
        if fields[p] is None and SCHEMA[p].kind == "bool" and SCHEMA[p].nullable:
            fields[p] = NULL_OPTION
        elif isinstance(fields[p], list):  # a list field's text box shows it as `1, 2, 4`
            fields[p] = ", ".join(map(str, fields[p]))
    by_name = {m["name"]: m for m in values.get("methods") or []}
    params = {}
    for name, cls in REGISTRY.items():
        for k in cls.params:
            params[(name, k)] = by_name[name].get(k) if name in by_name else suggested(name, k)
    return fields, [n for n in REGISTRY if n in by_name], params
