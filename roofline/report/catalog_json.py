"""Machine-readable views of the registries, for `roofline hw|models|methods --format json`: the same
facts as `catalog`'s text, in SI units, each document carrying `schema_version`.

A document is `{"schema_version": N, "<kind>": [...]}` for a list and `{"schema_version": N,
"<kind>": {...}}` for one entry; SCHEMA_VERSION changes only when a key is renamed or removed.
"""

from __future__ import annotations

import dataclasses
import json
import math

from roofline.simulator.columns import SCHEMA_VERSION


def document(kind: str, payload) -> str:
    return json.dumps({"schema_version": SCHEMA_VERSION, kind: payload}, indent=2, default=_plain)


def _plain(value):
    """Non-JSON values of the specs: tuples as lists, non-finite numbers as null."""
    if isinstance(value, (tuple, set)):
        return list(value)
    return str(value)


def _finite(x):
    return x if not isinstance(x, float) or math.isfinite(x) else None


def hardware_record(hw) -> dict:
    """Every field of a HardwareSpec (SI: bytes, bytes/s, FLOP/s, W, $/h), sources included."""
    return {k: _finite(v) for k, v in dataclasses.asdict(hw).items()}


def model_record(name: str, m, zoo_entry: dict | None, kv_bytes: float, kv_dtype: str) -> dict:
    """A model as the config was understood: sizes, layer kinds, KV bytes per token, state, context."""
    return {
        "name": name,
        "family": m.family,
        "hidden_size": m.hidden_size,
        "vocab_size": m.vocab_size,
        "layers": m.num_layers,
        "layer_kinds": m.layer_kinds(),
        "params_total": m.total_params(),
        "params_active": m.active_params(),
        "kv_dtype": kv_dtype,
        "kv_bytes_per_token": m.kv_elements_per_token() * kv_bytes,
        "state_bytes_per_sequence": m.state_bytes_per_sequence(2.0),
        "max_context_tokens": m.max_context_tokens,
        "published": (zoo_entry or {}).get("published_params"),
        "published_source": (zoo_entry or {}).get("params_source"),
    }


def method_record(cls) -> dict:
    """A method: what it changes, its citation, and each parameter's kind, help, default and ranges."""
    from roofline.simulator.methods.base_method import REQUIRED

    params = {}
    for name, p in cls.params.items():
        params[name] = {
            "kind": p.kind,
            "help": p.help,
            "required": p.default is REQUIRED,
            "default": None if p.default is REQUIRED else p.default,
            "minimum": p.minimum,
            "maximum": p.maximum,
            "choices": list(p.choices) or None,
            "validated": list(p.validated) if getattr(p, "validated", None) else None,
        }
    return {
        "name": cls.name,
        "summary": cls.summary,
        "changes": cls.changes,
        "citation": cls.citation,
        "parameters": params,
    }
