"""The methods registry: every long-context method by name, and composing a stack of them.

A stack is applied in the methods' declared stage order (workload -> weights -> KV format -> KV
policy -> KV selection -> prefill -> decode loop -> context), each hook receiving the previous
method's output; two methods of one exclusive category (two eviction policies, two sparse-prefill
schemes, ...) are rejected with the reason.
"""

from __future__ import annotations

from roofline.simulator.errors import did_you_mean, short
from roofline.simulator.kvplan import DENSE
from roofline.simulator.methods.base_method import Method, Param
from roofline.simulator.methods.eviction import H2O, PyramidKV, SnapKV, StreamingLLM
from roofline.simulator.methods.head_split import DuoAttention, LServe
from roofline.simulator.methods.kv_quant import KVQuant
from roofline.simulator.methods.offload import KVOffload, ShadowKV, WeightOffload
from roofline.simulator.methods.passthrough import ContextExtension, PrefixSharing, WeightQuant
from roofline.simulator.methods.selection import Quest
from roofline.simulator.methods.sparse_prefill import BlockSparsePrefill, MInference
from roofline.simulator.methods.speculative import Speculative, TriForce
from roofline.simulator.methods.token_reduction import ChunkedAgent, Glyph, PromptCompression
from roofline.simulator.runplan import NO_EXTRAS, StackPlan

REGISTRY: dict = {
    cls.name: cls
    for cls in (
        KVQuant, StreamingLLM, H2O, SnapKV, PyramidKV, DuoAttention, Quest, LServe, ShadowKV, KVOffload,
        MInference, BlockSparsePrefill, PrefixSharing, WeightQuant, ContextExtension, Speculative, TriForce,
        Glyph, PromptCompression, ChunkedAgent, WeightOffload,
    )
}  # fmt: skip

CATEGORY_REASON = {
    "kv_format": "both set the KV storage format",
    "eviction": "both decide which tokens stay in the cache",
    "head_split": "both decide how each KV head's cache is organised (a head split, or ShadowKV's whole-cache layout)",
    "selection": "both choose which cached tokens each decode step reads",
    "offload": "both move KV to host memory",
    "sparse_prefill": "both set the prefill attention pattern",
    "weight_format": "both set the weight format",
    "prefix": "both define the shared prefix",
    "context_extension": "both rescale RoPE",
    "speculation": "both replace the decode loop",
    "weight_offload": "both move weights to host memory",
    "token_reduction": "both shrink the prompt",
}


def register(cls):
    """Add a Method subclass to the registry (used by method modules outside this package)."""
    REGISTRY[cls.name] = cls
    return cls


def parse_methods(specs: list, source: str) -> tuple:
    """(methods, problems) from a scenario's `methods:` list."""
    methods, problems = [], []
    for i, spec in enumerate(specs):
        where = f"{source}: methods[{i}]"
        if isinstance(spec, str):
            spec = {"name": spec}
        if not isinstance(spec, dict) or "name" not in spec:
            problems.append(
                f"{where}: each method is a mapping with a name, e.g. {{name: kv_quant, bits: 4}}; got {short(spec)}"
            )
            continue
        name = spec["name"]
        cls = REGISTRY.get(name) if isinstance(name, str) else None
        if cls is None:
            problems.append(
                f"{where}: unknown method {short(name)}.{did_you_mean(name, REGISTRY)} Valid: {', '.join(REGISTRY)}"
            )
            continue
        method, errs = cls.parse(spec, where)
        problems += errs
        if method is not None:
            methods.append(method)
    problems += [f"{source}: {p}" for p in exclusive_problems(methods)]
    return methods, problems


def exclusive_problems(methods: list) -> list:
    seen: dict = {}
    problems = []
    for m in methods:
        for cat in m.exclusive:
            if cat in seen and seen[cat] is not m:
                reason = CATEGORY_REASON.get(cat, f"both are {cat} methods")
                problems.append(f"methods {seen[cat].name} and {m.name} cannot be combined: {reason}")
            seen.setdefault(cat, m)
    return problems


def model_problems(methods: list, model) -> list:
    return [p for m in methods for p in m.check_model(model)]


def ordered(methods: list) -> list:
    return sorted(methods, key=lambda m: m.stage)


def apply_stack(methods: list, model, wl, dtypes, resolve_model=None):
    """(model, workload, dtypes, StackPlan (KV policy + run-time extras), decode loop or None)
    after every method's hooks, in stage order. resolve_model(name) -> ModelArch loads draft models
    (the caller does the I/O)."""
    plan, extras, loop = DENSE, NO_EXTRAS, None
    for m in ordered(methods):
        model = m.apply_model(model)
        wl = m.apply_workload(wl, model)
        dtypes = m.apply_dtypes(dtypes)
        plan = m.apply_plan(plan, model)
        extras = m.apply_extras(extras, model, plan)
        loop = m.apply_loop(loop, model, plan, resolve_model)
    return model, wl, dtypes, StackPlan(plan, extras), loop


def referenced_models(methods: list) -> list:
    """Model names the stack needs besides the target (draft models)."""
    return [name for m in methods for name in m.referenced_models()]


def stack_warnings(methods: list, model) -> list:
    return [w for m in ordered(methods) for w in m.warnings(model)]


def stack_notes(methods: list, model) -> list:
    return [n for m in ordered(methods) for n in m.notes(model)]


__all__ = [
    "REGISTRY",
    "Method",
    "Param",
    "parse_methods",
    "apply_stack",
    "stack_warnings",
    "model_problems",
    "register",
]
