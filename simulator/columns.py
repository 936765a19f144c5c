"""The result of a group of sweep points, typed: the one definition of the record's structure.

The engine returns `PointColumns` (arrays over the group's points); the sweep flattens it into
dotted columns (`flatten`); `results.record` reads one point back with the same field names. The
SPEC.md result keys are these fields' names, so a key is added in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from functools import cache

from roofline.simulator.phases import PhaseTotals

# The version of the record's structure (and of the registries' JSON): raised only when a key is
# renamed or removed, never when one is added.
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class MemoryColumns:
    """Bytes per GPU."""

    weights_bytes: object
    kv_cache_bytes: object  # peak over the run (SnapKV-style methods hold the whole prompt in prefill)
    activation_bytes: object
    overhead_bytes: object
    total_bytes: object
    capacity_bytes: object
    kv_cache_final_bytes: object  # the cache after the last token
    host_bytes: object  # host memory per GPU used by offloading: host-resident KV + offloaded weights
    host_capacity_bytes: object  # host memory per GPU (hardware file, or runtime.host_memory_GiB)


@dataclass(frozen=True)
class CostColumns:
    usd_per_hour: object
    usd_per_million_output_tokens: object
    usd_per_million_prompt_tokens: object


@dataclass(frozen=True)
class EnergyColumns:
    joules_per_output_token: object


@dataclass(frozen=True)
class Throughput:
    """Latency, throughput, cost and energy of a static batch from its phase times."""

    e2e_s: object
    decode_tokens_per_s: object
    throughput_tokens_per_s_per_gpu: object
    cost: CostColumns
    energy: EnergyColumns


@dataclass(frozen=True)
class PointColumns:
    ttft_s: object
    tpot_s: object
    prefill: PhaseTotals
    decode: PhaseTotals
    memory: MemoryColumns
    fits: object
    max_batch: object
    max_context_tokens: object
    batch_per_replica: object
    e2e_s: object
    decode_tokens_per_s: object
    throughput_tokens_per_s_per_gpu: object
    cost: CostColumns
    energy: EnergyColumns

    @classmethod
    def build(cls, throughput: Throughput, **columns) -> PointColumns:
        return cls(**columns, **{f.name: getattr(throughput, f.name) for f in fields(Throughput)})


MEMORY_KEYS = tuple(f.name for f in fields(MemoryColumns))
COST_KEYS = tuple(f.name for f in fields(CostColumns))


@cache
def _field_names(cls) -> tuple:
    return tuple(f.name for f in fields(cls)) if is_dataclass(cls) else ()


def flatten(prefix: str, cols, out: dict) -> None:
    """Dotted column names -> arrays ('memory.kv_cache_bytes', 'prefill.breakdown.gemm', …)."""
    if isinstance(cols, PhaseTotals):
        cols = cols.columns()
    names = _field_names(type(cols))
    items = ((name, getattr(cols, name)) for name in names) if names else cols.items()
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, dict) or _field_names(type(value)):
            flatten(name + ".", value, out)
        else:
            out[name] = value
