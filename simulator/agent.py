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


@dataclass(frozen=True)
class AgentCalls:
    chunk_tokens: int
    memory_tokens: int
    parallel: bool


def _combine_phase(parts: list, totals) -> dict:
    """Phase totals over [(phase dict, weight, tag)] by re-totalling their scaled, tagged ops."""
    from roofline.simulator.engine import _scaled, _tagged

    costs = []
    for phase, weight, tag in parts:
        costs += _tagged(_scaled(phase["ops"], weight), tag)
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
    from roofline.simulator.engine import _phase_totals

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

    peak = hw.peak(dtypes.activations)
    bw = hw.col("memory_bandwidth")

    def totals(costs):
        return _phase_totals(
            costs, layout.overlap, peak, bw, (layout.tp, layout.pp, layout.dp), plan.host_overlap
        )

    prefill = _combine_phase(
        [
            (call["prefill"], repeats, "agent_call"),
            (call["decode"], repeats * (mem - 1.0), "agent_call_decode"),
            (final["prefill"], 1.0, ""),
        ],
        totals,
    )
    ttft = prefill["time_s"]
    out = dict(final)
    out["prefill"] = prefill
    out["ttft_s"] = ttft
    out["e2e_s"] = ttft + (wl.output - 1.0) * final["tpot_s"]
    with np.errstate(divide="ignore", invalid="ignore"):
        out_rate = wl.batch * wl.output / out["e2e_s"]
        prompt_rate = wl.batch * wl.prompt / ttft
    gpus = layout.gpus
    out["throughput_tokens_per_s_per_gpu"] = out_rate / gpus
    usd_per_hour = final["cost"]["usd_per_hour"]
    from roofline.simulator import economics

    out["cost"] = {
        "usd_per_hour": usd_per_hour,
        "usd_per_million_output_tokens": economics.usd_per_million_tokens(usd_per_hour, out_rate),
        "usd_per_million_prompt_tokens": economics.usd_per_million_tokens(usd_per_hour, prompt_rate),
    }
    decode_time = (wl.output - 1.0) * final["tpot_s"]
    util_p = np.maximum(prefill["mfu"], prefill["mbu"])
    util_d = np.maximum(final["decode"]["mfu"], final["decode"]["mbu"])
    out["energy"] = {
        "joules_per_output_token": economics.joules_per_output_token(
            gpus, hw.col("tdp_w"), ttft, util_p, decode_time, util_d, wl.batch * wl.output
        )
    }
    call_bigger = call["memory"]["total_bytes"] > final["memory"]["total_bytes"]
    out["memory"] = {
        key: np.where(call_bigger, call["memory"][key], final["memory"][key]) for key in final["memory"]
    }
    out["fits"] = call["fits"] & final["fits"]
    out["max_batch"] = np.minimum(final["max_batch"], call["max_batch"] // (k if agent.parallel else 1.0))
    # Memory no longer grows with the input: each call sees one chunk (unlimited when sequential).
    out["max_context_tokens"] = (
        np.where(call["fits"], np.inf, 0.0) if not agent.parallel else final["max_context_tokens"]
    )
    return out
