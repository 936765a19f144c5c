"""The Plan page's state: `values`, a flat dict keyed by the scenario schema's dotted paths
(`workload.prompt_tokens`, ...) plus `methods`, a list of `{name, <every parameter>}` in registry
order; its defaults, the starting values of method parameters, and the Compare page's stacks.

The codecs live beside it, one per file: `codec_scenario` (values <-> scenario mapping and YAML),
`codec_query` (values <-> URL query string), `codec_controls` (values <-> controls),
`codec_scalar` (typed scalars <-> text); `model_refs` says which model files may be opened.
Pure: no Dash, no files.
"""

from __future__ import annotations

from roofline.api import REGISTRY, REQUIRED, SCHEMA
from roofline.report.stacks import parse_stacks as stacks_parser

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


def gpus_of(values: dict):
    n = 1
    for axis in LAYOUT_AXES:
        v = values.get(axis)
        if isinstance(v, bool) or not isinstance(v, int):
            return None
        n *= v
    return n


def parse_stacks(text: str, palette: list) -> tuple:
    """'dense, kv_quant+quest' -> ([(label, [method specs])], problems), by `roofline.report.stacks`.
    A method takes its parameters from `palette` (the plan's methods), else its suggested values."""

    def fill(name: str) -> tuple:
        return full_method({"name": name, **{k: suggested(name, k) for k in REGISTRY[name].params}}), None

    def unknown(label: str, name: str) -> str:
        return f"stack {label!r}: unknown method {name!r}. Valid: dense, {', '.join(REGISTRY)}"

    stacks, problems = stacks_parser(text, palette, fill, unknown)
    if not stacks and not problems:
        problems.append("give at least one stack, e.g. dense, kv_quant, kv_quant+quest")
    return stacks, problems


def stack_label(values: dict) -> str:
    return "+".join(m["name"] for m in values.get("methods") or []) or "dense"
