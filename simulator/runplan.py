"""What a method stack adds at run time besides the KV policy, and the two together.

`kvplan.KVPlan` says what happens to the KV cache. Methods also do work of their own and change how
the pass runs; that lives here, in `RunExtras`:

* `ExtraOp`s — a method's own kernels, each named and built by a named function from bound
  parameters (SnapKV's observation-window vote, Quest's page scoring, ShadowKV's key rebuild, a
  vision encoder): per attention layer group in prefill (`prefill`) or in a decode step
  (`decode`), or once per prefill (`prefill_once`);
* `host_overlap` — host-link transfers overlap compute (prefetching offload) instead of adding;
* `weight_host_fraction` — the share of the weights streamed from the host every pass;
* `agent` — the input processed as several model calls (chunked_agent).

`StackPlan(kv, extras)` is what `methods.apply_stack` returns for the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from roofline.simulator.kvplan import DENSE, KVPlan

WHEN = ("prefill", "decode", "prefill_once")


@dataclass(frozen=True)
class ExtraOp:
    """A method's own work. `build(ctx, mixer, count, *args)` per attention layer group (prefill,
    decode) or `build(ctx, *args)` once per prefill returns its `Op`s."""

    name: str
    when: str
    build: Callable
    args: tuple = ()

    def __post_init__(self):
        if self.when not in WHEN:
            raise ValueError(f"ExtraOp {self.name!r}: when must be one of {WHEN}, got {self.when!r}")

    def ops(self, ctx, *layer) -> list:
        return self.build(ctx, *layer, *self.args)


@dataclass(frozen=True)
class RunExtras:
    ops: tuple = ()  # ExtraOps, in the order methods added them
    host_overlap: bool = False
    weight_host_fraction: float = 0.0
    agent: object = None  # agent.AgentCalls

    def add(self, *ops: ExtraOp) -> RunExtras:
        return replace(self, ops=self.ops + ops)

    def at(self, when: str) -> tuple:
        return tuple(op for op in self.ops if op.when == when)


NO_EXTRAS = RunExtras()


@dataclass(frozen=True)
class StackPlan:
    """A method stack's effect on a run: the KV policy and the run-time extras."""

    kv: KVPlan = DENSE
    extras: RunExtras = field(default_factory=RunExtras)


NO_METHODS = StackPlan()


def split_plan(plan) -> tuple:
    """(KVPlan, RunExtras) of a StackPlan, or of a bare KVPlan (a draft model's: no extras)."""
    if isinstance(plan, StackPlan):
        return plan.kv, plan.extras
    return plan, NO_EXTRAS
