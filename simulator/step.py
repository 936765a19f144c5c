"""The cost of one forward pass over a batch of sequences in different phases: the step cost a
serving simulator calls once per scheduler step.

Sequence i brings `new[i]` tokens (a prefill chunk, or 1 when it decodes) on top of `cached[i]`
tokens already in its KV cache. The pass runs every token-parallel op once over all
sum(new) rows (weights read once: the reason continuous batching pays), while attention is per
sequence: a prefill chunk computes the causal pairs of its queries against cached + new keys
(`Shape.cached` drops the pairs of earlier chunks), a decoding sequence reads its KV at length
cached + 1 under the plan's policy (windows, budgets, selection). The per-sequence attention work
is summed into one kernel per head group — the varlen FlashAttention / FlashInfer call engines
issue — whose time is max(sum of compute times, sum of memory times). Vectorised over sequences;
no loop per token or per sequence.

A step is one pass of the target model through all pipeline stages in sequence (pipelining across
steps, speculative draft/verify loops, prefix caching and chunk scheduling are the scheduler's);
the context-parallel exchange is costed per sequence. A lone sequence's step is the engine's:
one decoding sequence equals the engine's decode step at that KV length, one whole prompt its
unchunked prefill (tests/test_step.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from roofline.simulator.attention import attention_core_ops
from roofline.simulator.errors import UserError
from roofline.simulator.forward import forward_ops, resolve
from roofline.simulator.opinputs import OpInputs, Shape
from roofline.simulator.ops import Op, cost_op, value_at
from roofline.simulator.phases import PhaseTotals
from roofline.simulator.runplan import StackPlan


@dataclass(frozen=True)
class StepCost:
    """One forward pass: time and the work behind it, per GPU (SI units)."""

    time_s: float
    flops: float  # one replica (all tp ranks)
    bytes: float  # one replica (all tp ranks)
    bound: str
    breakdown: dict  # time by op kind
    flops_by_kind: dict  # FLOPs by op kind, per GPU
    tokens: int  # new tokens processed


def _summed(op: Op, L=None) -> Op:
    """One op for all sequences of a per-sequence op (arrays over sequences; KVLinear costs taken
    at each sequence's KV length L): work adds up, and so do compute and memory times."""
    flops, byts = value_at(op.flops, L), value_at(op.bytes, L)
    # (a context-parallel exchange has no FLOPs or bytes but a per-sequence fixed time)
    flops, byts, fixed = np.broadcast_arrays(
        np.asarray(flops, float), np.asarray(byts, float), np.asarray(op.fixed_s, float)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        t_c = np.sum(flops / op.compute_rate)
        t_m = float(np.sum(np.broadcast_to(op.memory_s(L), byts.shape)))
        total_f, total_b = float(np.sum(flops)), float(np.sum(byts))
        rate_c = total_f / t_c if t_c > 0 else np.inf
        rate_m = total_b / t_m if t_m > 0 else np.inf
    return replace(
        op,
        flops=total_f,
        bytes=total_b,
        compute_rate=rate_c,
        memory_rate=rate_m,
        fixed_s=float(np.sum(fixed)),
        memory_time=None,
    )


class StepModel:
    """A deployment resolved once; `cost(new, cached)` prices one forward pass."""

    def __init__(self, model, layout, dtypes, hw, eff, plan=None, fabric=None):
        plan = plan or StackPlan()
        if plan.extras.agent is not None:
            raise UserError(
                "step cost: chunked_agent turns a request into several model calls; give the "
                "scheduler the calls instead"
            )
        if np.size(hw.row) != 1:
            raise UserError("step cost: one hardware at a time")
        self.model, self.layout, self.plan = model, layout, plan.kv
        self.extras = plan.extras
        self.dep = resolve(model, layout, dtypes, hw, eff, fabric)
        self.host_factor = float(np.asarray(hw.col("host_cpu_factor")).ravel()[0])
        self.memory_bytes = float(np.asarray(hw.col("memory_bytes")).ravel()[0])

    def framework(self):
        """The framework as this deployment runs it on its host and GPU (Layout.stack), read per call."""
        return self.layout.stack(self.host_factor, self.memory_bytes)

    def _inputs(self, shape: Shape) -> OpInputs:
        d = self.dep
        return OpInputs(shape, d.shard, d.rates, d.fmt, self.plan, self.extras)

    def cost(self, new, cached) -> StepCost:
        """One forward pass of sequences bringing `new` tokens on top of `cached` (arrays)."""
        new, cached = np.broadcast_arrays(np.asarray(new, float).ravel(), np.asarray(cached, float).ravel())
        if new.size == 0 or np.any(new < 1) or np.any(cached < 0) or not np.all(np.isfinite(new + cached)):
            raise UserError("step cost: each sequence brings at least 1 new token on top of >= 0 cached ones")
        h, cp = self.model.hidden_size, self.layout.cp
        decoding = (new == 1) & (cached > 0)
        pre_new, pre_cached = new[~decoding], cached[~decoding]
        dec_cached = cached[decoding]

        def core(ctx, m, heads, elems, count):
            # Per-sequence shapes derived from the pass's (leading dense layers keep skip_selection).
            parts = []
            if pre_new.size:
                shape = replace(
                    ctx.shape,
                    phase="prefill",
                    rows=pre_new / cp,
                    batch=1.0,
                    prompt=pre_cached + pre_new,
                    cached=pre_cached,
                )
                parts.append((shape, None))
            if dec_cached.size:
                shape = replace(
                    ctx.shape,
                    phase="decode",
                    rows=1.0 / cp,
                    batch=1.0,
                    prompt=dec_cached,
                    kernel_batch=float(dec_cached.size),  # one varlen kernel over every decoder
                )
                parts.append((shape, dec_cached + 1.0))
            attend, tail = [], []
            for shape, L in parts:
                a, t = attention_core_ops(replace(ctx, shape=shape), m, heads, elems, count)
                attend += [_summed(op, L) for op in a]
                tail += [_summed(op, L) for op in t]
            return attend, tail

        prefilling = bool(pre_new.size)
        fw = self.framework()
        overhead = self.dep.overhead_s
        rows = float(new.sum())
        if prefilling:
            launch = fw.kernel_s(overhead, "prefill")  # a pass with a prompt chunk runs as prefill
            dispatch = fw.dispatch_kernel_s("prefill")
        else:
            # a pure decode step as the framework's decode: a captured CUDA graph where it has one,
            # padded to the captured size (`Framework.decode_rows`), else launched eagerly
            rows, graphed = fw.decode_rows(new.size)
            launch = fw.decode_kernel_s(overhead, graphed)
            dispatch = fw.dispatch_kernel_s("decode", graphed)
        shape = Shape(
            phase="prefill" if prefilling else "decode",
            rows=rows / cp,
            passes=1.0,
            batch=float(new.size),
            hidden=h,
            prompt=float(np.max(cached + new)),
        )
        ops = forward_ops(self._inputs(shape), self.model, self.layout, core)
        # With pp > 1 the sequences are one of the pp micro-batches a replica keeps in flight: the
        # host iterates over all of them (the CPU work of pp x their sequences, as the static decode
        # round's) and relays their sampled tokens rank to rank (`Framework.relay_s`).
        pp = self.layout.pp
        costs = fw.cost_pass(ops, launch, dispatch) + [cost_op(fw.step_op(new.size * pp), overhead)]
        if pp > 1:
            costs.append(cost_op(fw.relay_op(new.size, pp), overhead))
        by_kind: dict = {}
        for c in costs:
            by_kind[c.kind] = by_kind.get(c.kind, 0.0) + float(c.flops)
        lay = self.layout
        totals = PhaseTotals.of(
            costs,
            lay.overlap,
            self.dep.rates.mfu_peak,
            self.dep.rates.bw,
            (lay.tp, lay.pp, 1),
            self.extras.host_overlap,
            fw.overlap,
        )
        from roofline.simulator.ops import BOUND_NAMES

        return StepCost(
            time_s=float(totals.time_s),
            flops=float(totals.flops),
            bytes=float(totals.bytes),
            bound=BOUND_NAMES[int(totals.bound)],
            breakdown={k: float(v) for k, v in totals.breakdown.items()},
            flops_by_kind=by_kind,
            tokens=int(new.sum()),
        )
