"""A JSON Schema (draft 2020-12) of scenario files, generated from the scenario schema and the
methods registry, so editors can check and complete scenario YAML (`roofline schema -o FILE`, then
point the editor's YAML language server at it).

It says what the simulator's own validation says about shapes and ranges — field names, types,
choices, bounds, help text, each method's parameters — and leaves to the simulator what needs the
registries' contents (model and hardware names, a config.json's fields, layout arithmetic).
"""

from __future__ import annotations

from roofline.simulator.columns import SCHEMA_VERSION
from roofline.simulator.scenario_schema import REQUIRED, SCHEMA, SECTIONS, TOP_LEVEL
from roofline.simulator.units import is_token_field

TOKEN_PATTERN = r"^[0-9]+(\.[0-9]+)?[kKmM]?$"  # units.parse_token_count: 131072, 128k, 1M, 1.5k

_TYPES = {"int": "integer", "float": "number", "bool": "boolean", "str": "string", "name": "string"}


def field_schema(spec, name: str = "") -> dict:
    """One field: its JSON type (null where allowed), choices, bounds and help text; a token count
    (`name` a token field) may also be a string such as 128k."""
    out: dict = {"description": spec.help}
    if spec.kind == "custom" and spec.json is not None:
        out.update(spec.json)
    elif spec.kind == "custom":  # a token length: a number, or a distribution mapping (serving.config)
        out["oneOf"] = [{"type": "integer", "minimum": 1}, {"type": "object", "required": ["dist"]}]
    elif spec.kind == "choice":
        out["enum"] = list(spec.choices) + ([None] if spec.nullable else [])
    else:
        kinds = [_TYPES[spec.kind]] + (["string"] if spec.kind == "int" and is_token_field(name) else [])
        kinds += ["null"] if spec.nullable else []
        out["type"] = kinds if len(kinds) > 1 else kinds[0]
        if "string" in kinds and spec.kind == "int":
            out["pattern"] = TOKEN_PATTERN
        if spec.minimum is not None:
            out["exclusiveMinimum" if spec.exclusive_minimum else "minimum"] = spec.minimum
        if spec.maximum is not None:
            out["maximum"] = spec.maximum
    if spec.default is not None:
        out["default"] = spec.default
    return out


def method_schema(cls) -> dict:
    """One method entry: its name and its parameters (the required ones required)."""
    from roofline.simulator.methods.base_method import REQUIRED as NEEDED

    props = {"name": {"const": cls.name, "description": f"{cls.summary} ({cls.citation})"}}
    for name, p in cls.params.items():
        props[name] = field_schema(p, name)
        if p.default is NEEDED:  # the registry's marker for "no default": the entry must give it
            props[name].pop("default", None)
    needed = ["name"] + [name for name, p in cls.params.items() if p.default is NEEDED]
    return {"type": "object", "properties": props, "required": needed, "additionalProperties": False}


def serving_schema() -> dict:
    """The nested `serving:` section (`serving.<field>` and `serving.<subsection>.<field>` paths)."""
    from roofline.simulator.serving.config import SERVING_SCHEMA

    root: dict = {"type": "object", "properties": {}, "additionalProperties": False}
    for path, spec in SERVING_SCHEMA.items():
        node = root
        for part in path.split(".")[1:-1]:
            node = node["properties"].setdefault(
                part, {"type": "object", "properties": {}, "additionalProperties": False}
            )
        node["properties"][path.rsplit(".", 1)[1]] = field_schema(spec)
    root["description"] = "Request-level serving traffic and scheduler (`roofline serve`, docs/serving.md)."
    return root


def scenario_schema() -> dict:
    from roofline.simulator.methods import REGISTRY

    top: dict = {path: field_schema(spec, path) for path, spec in SCHEMA.items() if "." not in path}
    for section in SECTIONS:
        fields = {
            p.split(".", 1)[1]: field_schema(s, p) for p, s in SCHEMA.items() if p.startswith(section + ".")
        }
        for p in REQUIRED:  # a required field's schema default is no default (a sweep may give it instead)
            if p.startswith(section + "."):
                fields[p.split(".", 1)[1]].pop("default", None)
        top[section] = {"type": "object", "properties": fields, "additionalProperties": False}
    top["serving"] = serving_schema()
    top["methods"] = {
        "type": "array",
        "description": "Long-context methods, applied in their declared stage order (`roofline methods`).",
        "items": {"oneOf": [method_schema(cls) for cls in REGISTRY.values()]},
    }
    from roofline.simulator.serving.config import SERVING_SCHEMA

    sweepable = {
        path: {"type": "array", "minItems": 1, "items": field_schema(spec, path)}
        for path, spec in [*SCHEMA.items(), *SERVING_SCHEMA.items()]
        if spec.sweepable or path in SERVING_SCHEMA
    }
    top["sweep"] = {
        "type": "object",
        "description": "Dotted field path -> list of values; the cartesian product is evaluated.",
        "properties": sweepable,
        "additionalProperties": False,
    }
    assert set(top) == set(TOP_LEVEL), set(top) ^ set(TOP_LEVEL)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "roofline scenario",
        "description": f"A roofline scenario file (result schema_version {SCHEMA_VERSION}).",
        "type": "object",
        "properties": top,
        "required": [p for p in REQUIRED if "." not in p],
        # a section field that is required: given in its section, or swept (a serving scenario's
        # lengths come from its serving section)
        "allOf": [
            {
                "anyOf": [
                    {
                        "required": [p.split(".")[0]],
                        "properties": {p.split(".")[0]: {"required": [p.split(".")[1]]}},
                    },
                    {"required": ["sweep"], "properties": {"sweep": {"required": [p]}}},
                    {"required": ["serving"]},
                ]
            }
            for p in REQUIRED
            if "." in p
        ],
        "additionalProperties": False,
    }
