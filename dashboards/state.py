"""The Plan page's state: control values <-> scenario mapping <-> URL query string <-> YAML.

`values` is a flat dict keyed by the scenario schema's dotted paths (`workload.prompt_tokens`, ...)
plus `methods`, a list of `{name, <every parameter>}` in registry order. It maps one-to-one onto a
scenario mapping that `roofline.simulate` accepts (`to_scenario`), onto a shareable query string
(`to_query` / `from_query`: only values that differ from the defaults) and onto the controls.

Pure: no Dash, no files. Models uploaded to the dashboard are referred to as `upload:<id>` and
resolved to a path inside the server's upload folder only by `to_scenario`; a URL or an imported
YAML can never name another file on the server.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import yaml

from roofline.simulator.methods import REGISTRY
from roofline.simulator.methods.base_method import REQUIRED
from roofline.simulator.scenario import SCHEMA, SECTIONS, flatten

UPLOAD_PREFIX = "upload:"
UPLOAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}$")

# Every schema field is a control except `gpus`, which the layout determines (tp*pp*cp*dp).
FIELD_PATHS = tuple(p for p in SCHEMA if p != "gpus")
LAYOUT_AXES = ("parallelism.tp", "parallelism.pp", "parallelism.cp", "parallelism.dp")

# The dashboard opens on the README's main example: Llama-3.1-8B reading 128K tokens on one H100.
PLAN_DEFAULTS = {
    "name": "dashboard",
    "model": "llama-3.1-8b",
    "hardware": "h100-sxm",
    "workload.prompt_tokens": 130048,
    "workload.output_tokens": 1024,
    "workload.prefill_chunk_tokens": 8192,
}
DEFAULTS = {**{p: SCHEMA[p].default for p in FIELD_PATHS}, **PLAN_DEFAULTS, "methods": []}

# Starting values for parameters a method requires (the user edits them before or after enabling).
# Each sits inside the range its paper evaluated; parameters not listed fall back to `suggested()`.
SUGGESTED = {
    ("kv_quant", "bits"): 4,
    ("streaming_llm", "window_tokens"): 2048,
    ("h2o", "budget_tokens"): 2048,
    ("snapkv", "budget_tokens"): 2048,
    ("pyramidkv", "budget_tokens"): 1024,
    ("duo_attention", "retrieval_head_fraction"): 0.5,
    ("quest", "token_budget"): 4096,
    ("lserve", "streaming_head_fraction"): 0.5,
    ("lserve", "token_budget"): 4096,
    ("kv_offload", "resident_fraction"): 0.5,
    ("minference", "density"): 0.1,
    ("block_sparse_prefill", "density"): 0.1,
    ("prefix_sharing", "shared_prefix_tokens"): 1024,
    ("weight_quant", "format"): "fp8",
    ("context_extension", "kind"): "yarn",
    ("context_extension", "factor"): 2.0,
    ("speculative", "draft_model"): "self",
    ("speculative", "draft_tokens"): 4,
    ("speculative", "acceptance_rate"): 0.7,
    ("triforce", "draft_tokens"): 4,
    ("triforce", "acceptance_rate"): 0.7,
    ("glyph", "compression_ratio"): 3.0,
    ("prompt_compression", "ratio"): 3.0,
    ("chunked_agent", "chunk_tokens"): 4096,
    ("chunked_agent", "memory_tokens"): 1024,
    ("weight_offload", "resident_fraction"): 0.5,
}


def suggested(method: str, param: str):
    """The value a parameter's control starts with: its default, a listed suggestion, or a value
    inside its range (so a method added to the registry later still gets a usable control)."""
    p = REGISTRY[method].params[param]
    if p.default is not REQUIRED:
        return p.default
    if (method, param) in SUGGESTED:
        return SUGGESTED[(method, param)]
    if p.choices:
        return p.choices[0]
    if p.kind == "bool":
        return False
    if p.kind in ("int", "float"):
        lo = p.validated[0] if p.validated else (p.minimum if p.minimum is not None else 1)
        return int(lo) if p.kind == "int" else float(lo)
    return "self" if param.endswith("model") else ""


def is_model_param(method: str, param: str) -> bool:
    """String parameters that name a model (draft models): zoo names, 'self' or uploads only."""
    p = REGISTRY[method].params[param]
    return p.kind == "str" and param.endswith("model")


def full_method(spec: dict) -> dict:
    """{name, <every parameter>}: given values, else defaults (required ones stay absent)."""
    cls = REGISTRY[spec["name"]]
    out = {"name": spec["name"]}
    for k, p in cls.params.items():
        if k in spec:
            out[k] = spec[k]
        elif p.default is not REQUIRED:
            out[k] = p.default
    return out


# --- typed scalars ---------------------------------------------------------------------------------


def format_scalar(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    return str(value)


def parse_scalar(text: str, kind: str, choices=(), nullable: bool = False):
    """A query-string value read as its field's kind; ValueError says what was expected."""
    text = text.strip()
    if text in ("null", "none", "") and nullable:
        return None
    if kind in ("int", "float"):
        try:
            value = float(text)
        except ValueError:
            raise ValueError("an integer" if kind == "int" else "a number") from None
        if not math.isfinite(value):
            raise ValueError("a finite number")
        if kind == "int" and not value.is_integer():
            raise ValueError("an integer")
        return int(value) if kind == "int" else value
    if kind == "bool":
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError("true or false")
    if kind == "choice":
        for c in choices:
            if str(c) == text:
                return c
        raise ValueError("one of " + ", ".join(map(str, choices)))
    return text


def coerce_number(value, kind: str):
    """A control's number as the field's kind (inputs return 4.0 for 4); other values unchanged."""
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


# --- values <-> scenario ---------------------------------------------------------------------------


def gpus_of(values: dict):
    n = 1
    for axis in LAYOUT_AXES:
        v = values.get(axis)
        if isinstance(v, bool) or not isinstance(v, int):
            return None
        n *= v
    return n


def upload_path(model_id: str, upload_dir) -> Path | None:
    """The file of an uploaded model id, or None if the id is malformed or there is no folder."""
    if upload_dir is None or not UPLOAD_ID.match(model_id):
        return None
    return Path(upload_dir) / f"{model_id}.json"


def resolve_model(ref, upload_dir) -> str:
    """`upload:<id>` -> the stored config.json's path; zoo names pass through."""
    if isinstance(ref, str) and ref.startswith(UPLOAD_PREFIX):
        path = upload_path(ref[len(UPLOAD_PREFIX) :], upload_dir)
        return str(path) if path is not None else ref
    return ref


def to_scenario(values: dict, upload_dir=None) -> dict:
    """The scenario mapping that `roofline.simulate` accepts (and `export_yaml` writes)."""
    doc: dict = {"name": values.get("name") or DEFAULTS["name"]}
    doc["model"] = resolve_model(values["model"], upload_dir)
    doc["hardware"] = values["hardware"]
    doc["gpus"] = gpus_of(values)
    for section in ("parallelism", "dtype", "workload"):
        doc[section] = {}
    methods = []
    for spec in values.get("methods") or []:
        spec = dict(spec)
        for k, v in spec.items():
            if k != "name" and spec["name"] in REGISTRY and k in REGISTRY[spec["name"]].params:
                if is_model_param(spec["name"], k):
                    spec[k] = resolve_model(v, upload_dir)
        methods.append(spec)
    doc["methods"] = methods
    for path in FIELD_PATHS:
        if path in ("name", "model", "hardware"):
            continue
        value = values.get(path, DEFAULTS.get(path))
        if "." in path:
            section, key = path.split(".", 1)
            doc.setdefault(section, {})[key] = value
        else:
            doc[path] = value
    return doc


def _model_ref_problem(ref, where: str, zoo, upload_dir) -> str | None:
    if not isinstance(ref, str):
        return f"{where}: must be a model name, got {ref!r}"
    if ref in zoo:
        return None
    if ref.startswith(UPLOAD_PREFIX):
        path = upload_path(ref[len(UPLOAD_PREFIX) :], upload_dir)
        if path is None or not path.is_file():
            return f"{where}: the uploaded model {ref[len(UPLOAD_PREFIX) :]!r} is no longer on this server; upload its config.json again"
        return None
    return (
        f"{where}: {ref!r} is not a zoo model. To use your own model, upload its config.json with "
        "'Upload config.json' (the dashboard reads no other files from the server)"
    )


def _upload_ref(ref, upload_dir):
    """A path inside the upload folder (an exported plan) -> its `upload:<id>`; else unchanged."""
    if isinstance(ref, str) and upload_dir is not None and ref.endswith(".json"):
        p = Path(ref)
        if p.parent.resolve() == Path(upload_dir).resolve() and UPLOAD_ID.match(p.stem):
            return UPLOAD_PREFIX + p.stem
    return ref


def reference_problems(doc: dict, catalog: dict, upload_dir=None) -> list:
    """Model references in an uploaded scenario that the dashboard will not open: anything but a
    zoo name, 'self' (draft models) or a config uploaded to this dashboard. Checked before the
    scenario is validated, so a scenario can never make the server read another file."""
    zoo = catalog["model"]
    problems = []
    model = doc.get("model")
    if model is not None:
        problem = _model_ref_problem(_upload_ref(model, upload_dir), "model", zoo, upload_dir)
        if problem:
            problems.append(problem)
    methods = doc.get("methods")
    for i, spec in enumerate(methods if isinstance(methods, list) else []):
        if not isinstance(spec, dict) or spec.get("name") not in REGISTRY:
            continue
        for k, v in spec.items():
            if k in REGISTRY[spec["name"]].params and is_model_param(spec["name"], k) and v != "self":
                problem = _model_ref_problem(_upload_ref(v, upload_dir), f"methods[{i}].{k}", zoo, upload_dir)
                if problem:
                    problems.append(problem)
    calibration = doc.get("calibration")
    if calibration is not None and "calibration" in catalog and calibration not in catalog["calibration"]:
        problems.append(
            f"calibration: {str(calibration)[:200]!r}: the dashboard uses auto, datasheet or a profile in its "
            "calibration folder (see the Calibration page)"
        )
    sweep = doc.get("sweep")
    if isinstance(sweep, dict) and isinstance(sweep.get("model"), list):
        for v in sweep["model"]:
            problem = _model_ref_problem(_upload_ref(v, upload_dir), "sweep.model", zoo, upload_dir)
            if problem:
                problems.append(problem)
    return problems


def from_scenario(doc: dict, catalog: dict, upload_dir=None) -> tuple:
    """(values, notices) from a scenario mapping that `roofline.load_scenario` accepted.

    A sweep is dropped (the Plan page shows one point) with a notice; models must be zoo names or
    configs uploaded to this dashboard."""
    notices: list = []
    flat = flatten({k: v for k, v in doc.items() if k not in ("methods", "sweep")}, "scenario", notices)
    values = dict(DEFAULTS)
    values.update({k: v for k, v in flat.items() if k in FIELD_PATHS})
    values["name"] = flat.get("name") or DEFAULTS["name"]
    values["model"] = _upload_ref(values["model"], upload_dir)
    zoo = catalog["model"]
    problem = _model_ref_problem(values["model"], "model", zoo, upload_dir)
    if problem:
        notices.append(problem)
        values["model"] = DEFAULTS["model"]
    if doc.get("sweep"):
        notices.append(
            "sweep: ignored; the Plan page shows one point (axes: "
            + ", ".join(doc["sweep"])
            + "). Use the Compare page or `roofline simulate` for sweeps"
        )
    methods = []
    for spec in doc.get("methods") or []:
        spec = {"name": spec} if isinstance(spec, str) else dict(spec)
        for k in list(spec):
            if k != "name" and is_model_param(spec["name"], k):
                spec[k] = _upload_ref(spec[k], upload_dir)
                if spec[k] != "self":
                    problem = _model_ref_problem(spec[k], f"methods: {spec['name']}.{k}", zoo, upload_dir)
                    if problem:
                        notices.append(problem)
                        spec[k] = suggested(spec["name"], k)
        methods.append(full_method(spec))
    order = list(REGISTRY)
    values["methods"] = sorted(methods, key=lambda m: order.index(m["name"]))
    return values, notices


def export_yaml(values: dict, upload_dir=None) -> str:
    """A scenario file that `roofline simulate` reproduces exactly (uploaded configs are named by
    their path on this server)."""
    doc = to_scenario(values, upload_dir)
    header = "# Exported by the roofline dashboard; run it with `roofline simulate THIS_FILE`.\n"
    if str(values.get("model", "")).startswith(UPLOAD_PREFIX):
        header += "# model: the config.json uploaded to the dashboard, as stored on its server.\n"
    return header + yaml.safe_dump(doc, sort_keys=False, default_flow_style=None)


# --- values <-> URL query --------------------------------------------------------------------------


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
    problem = _model_ref_problem(values["model"], "URL parameter model", catalog["model"], upload_dir)
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
                problem = _model_ref_problem(
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


# --- values <-> controls ---------------------------------------------------------------------------


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
            elif v == "" and SCHEMA[path].nullable:
                v = None
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


def control_values(values: dict) -> tuple:
    """values -> (fields, enabled, params), the inverse of `values_from_controls`; disabled
    methods' controls hold their suggested values."""
    fields = {p: values.get(p, DEFAULTS[p]) for p in FIELD_PATHS}
    by_name = {m["name"]: m for m in values.get("methods") or []}
    params = {}
    for name, cls in REGISTRY.items():
        for k in cls.params:
            params[(name, k)] = by_name[name].get(k) if name in by_name else suggested(name, k)
    return fields, [n for n in REGISTRY if n in by_name], params


def parse_stacks(text: str, palette: list) -> tuple:
    """'dense, kv_quant+quest' -> ([(label, [method specs])], problems). A method takes its
    parameters from `palette` (the plan's methods), else its suggested values."""
    by_name = {m["name"]: m for m in palette}
    stacks, problems = [], []
    for label in [s.strip() for s in (text or "").split(",") if s.strip()]:
        if label in ("dense", "baseline", "none"):
            stacks.append(("dense", []))
            continue
        specs = []
        for name in [n.strip() for n in label.split("+") if n.strip()]:
            if name in by_name:
                specs.append(dict(by_name[name]))
            elif name in REGISTRY:
                specs.append(
                    full_method({"name": name, **{k: suggested(name, k) for k in REGISTRY[name].params}})
                )
            else:
                problems.append(
                    f"stack {label!r}: unknown method {name!r}. Valid: dense, {', '.join(REGISTRY)}"
                )
                specs = None
                break
        if specs is not None:
            stacks.append((label, specs))
    if not stacks and not problems:
        problems.append("give at least one stack, e.g. dense, kv_quant, kv_quant+quest")
    return stacks, problems


def stack_label(values: dict) -> str:
    return "+".join(m["name"] for m in values.get("methods") or []) or "dense"
