"""Chunked / agentic processing of a long input: K = ceil(P / chunk) model calls over chunks with a
carried memory, then a final call that answers from the memory.

* sequential (MemAgent, Yu et al., arXiv:2507.02259): call k reads chunk k plus the memory
  (`memory_tokens`) and rewrites the memory (generates `memory_tokens`); calls run one after
  another; the answer call reads the memory. Cost is linear in P.
* parallel (map-reduce, e.g. LongAgent, Zhao et al., arXiv:2402.11550): all K calls run as one
  batch of K x batch sequences; the answer call reads all K memories.

Each call and the answer are costed by the same engine (`evaluate`); TTFT is the time to the first
token of the answer, TPOT the answer's decode. Memory is the larger of the call phase and the answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from roofline.simulator import economics
from roofline.simulator.columns import MEMORY_KEYS, MemoryColumns, PointColumns
from roofline.simulator.forward import mfu_peak
from roofline.simulator.phases import PhaseTotals, scaled, tagged


@dataclass(frozen=True)
class AgentCalls:
    chunk_tokens: int
    memory_tokens: int
    parallel: bool


def _combine_phase(parts: list, totals) -> PhaseTotals:
    """Phase totals over [(PhaseTotals, weight, tag)], run one after another: their scaled, tagged
    ops at the time each adds to its own phase (`exposed_ops`: an overlapped stream's hidden part
    left out), re-totalled serially, so the time is the weighted sum of the phases' times."""
    costs = []
    for phase, weight, tag in parts:
        costs += tagged(scaled(phase.exposed_ops(), weight), tag)
    return totals(costs)


def evaluate_agent(
    evaluate,
    agent: AgentCalls,
    model,
    layout,
    dtypes,
    hw,
    eff,
    wl,
    price,
    overhead,
    plan,
    loop,
    fabric=None,
    host_capacity=None,
):
    """All result columns of a chunked-agent run (see module docstring)."""
    k = np.ceil(wl.prompt / agent.chunk_tokens)
    mem = float(agent.memory_tokens)
    call_prompt = np.minimum(wl.prompt, agent.chunk_tokens) + mem
    call_batch = wl.batch * k if agent.parallel else wl.batch
    call_wl = replace(
        wl,
        batch=call_batch,
        prompt=call_prompt,
        output=np.full(np.shape(call_prompt), mem),
        shared=np.zeros(()),
    )
    final_prompt = k * mem if agent.parallel else np.full(np.shape(k), mem)
    final_wl = replace(wl, prompt=final_prompt, shared=np.zeros(()))
    call = evaluate(
        model, layout, dtypes, hw, eff, call_wl, price, overhead, plan, loop, fabric, host_capacity
    )
    final = evaluate(
        model, layout, dtypes, hw, eff, final_wl, price, overhead, plan, loop, fabric, host_capacity
    )
    repeats = 1.0 if agent.parallel else k

    peak = mfu_peak(hw, dtypes)  # as the calls' own phases read MFU
    bw = hw.col("memory_bandwidth")

    def totals(costs):  # each phase's overlap is in its exposed ops already
        return PhaseTotals.of(costs, "serial", peak, bw, (layout.tp, layout.pp, layout.dp))

    prefill = _combine_phase(
        [
            (call.prefill, repeats, "agent_call"),
            (call.decode, repeats * (mem - 1.0), "agent_call_decode"),
            (final.prefill, 1.0, ""),
        ],
        totals,
    )
    ttft = prefill.time_s
    metrics = economics.point_metrics(
        wl.batch,
        wl.prompt,
        wl.output,
        ttft,
        final.tpot_s,
        layout.gpus,
        price,
        hw.col("tdp_w"),
        prefill.utilisation,
        final.decode.utilisation,
    )
    call_bigger = call.memory.total_bytes > final.memory.total_bytes
    memory = MemoryColumns(
        **{
            key: np.where(call_bigger, getattr(call.memory, key), getattr(final.memory, key))
            for key in MEMORY_KEYS
        }
    )
    return PointColumns.build(
        metrics,
        ttft_s=ttft,
        tpot_s=final.tpot_s,
        prefill=prefill,
        decode=final.decode,
        memory=memory,
        fits=call.fits & final.fits,
        max_batch=np.minimum(final.max_batch, call.max_batch // (k if agent.parallel else 1.0)),
        # Memory no longer grows with the input: each call sees one chunk (unlimited when sequential).
        max_context_tokens=np.where(call.fits, np.inf, 0.0)
        if not agent.parallel
        else final.max_context_tokens,
        batch_per_replica=final.batch_per_replica,
    )
