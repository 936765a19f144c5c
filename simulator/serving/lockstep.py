"""Attention data parallelism under expert parallelism: ranks that share their experts step together.

With `parallelism.ep` over several data-parallel ranks (TensorRT-LLM's `enable_attention_dp`,
SGLang's `--enable-dp-attention`, vLLM's data parallelism with expert parallelism), each rank runs
its own scheduler, batch and KV cache, but every MoE layer dispatches its tokens to the experts of
all of them and combines them back, so no rank can run its next layer before the others send their
tokens: the ranks run each forward pass together, and a rank with nothing to do runs a dummy pass
to take part (vLLM's `execute_dummy_batch`, TensorRT-LLM's dummy requests under attention DP).

So the group takes one step at a time, each rank scheduling its own (`scheduler.Loop.plan`); the
step lasts as long as its slowest rank, each rank's time being its own ops (attention, projections,
norms, shared experts, its dispatch and combine) plus the routed experts at the group's mean token
rows: with tokens routed evenly, each rank's experts get top_k / experts of the tokens of every rank
in the group, so the expert GEMMs see the mean rows whatever one rank brings (`FastStep.experts`
prices that part at a rank's own rows and at the mean; the difference is moved). The ranks replay
their decode graphs only when none of them has a prompt chunk, each padded to the graph of the
largest rank's batch (vLLM and SGLang pad every data-parallel rank's tokens to the largest's,
TensorRT-LLM gathers the ranks' batch sizes under attention DP likewise); with a prompt chunk on
any rank, the others' decode steps launch eagerly. A rank's prompt
chunk therefore stalls the others' decodes for its own (non-expert) time, the cost the independent
replicas did not see; identical ranks step as they did alone. Runs of pure-decode steps are priced at
once, as in `scheduler.simulate`, while every busy rank can run them.
"""

from __future__ import annotations

import numpy as np

from roofline.simulator.serving.replica import Engine
from roofline.simulator.serving.scheduler import Loop, first_arrival_cut


def _shared(step, phase: str, rows, launch, mean) -> np.ndarray:
    """The routed experts' part at the group's mean rows less that at the rank's own."""
    return step.experts(phase, mean, launch) - step.experts(phase, rows, launch)


def _rank_step(step, batch, peers) -> tuple:
    """Parts of one rank's step: (stream sums, sequences, (phase, rows, launch)) where the step
    model is exact, else (None, (time, FLOPs, bytes), (phase, rows, None)); `peers`: the group's
    (most decoders, any prompt chunk), which set its decode graphs (`FastStep._rows`)."""
    dec_cached, p_n, p_c, p_t = batch
    seqs = dec_cached.size + len(p_n)
    if step.exact:
        acc, key = step.parts(dec_cached, p_n, p_c, p_t, peers=peers)
        return np.asarray(acc, float), seqs, key
    phase = "prefill" if p_n else "decode"
    return None, step.cost_parts(dec_cached, p_n, p_c, p_t), (phase, dec_cached.size + sum(p_n), None)


def joint_step(step, batches: list, group: int, waits=None) -> tuple:
    """(step time, [(FLOPs, bytes) per rank]) of one lockstep step of the ranks' `batches`
    (`scheduler.Plan.batch`) in a group of `group` ranks (the idle ones bring no rows); `waits`:
    each rank's seconds of KV transfers its step waits for."""
    peers = (max(b[0].size for b in batches), any(len(b[1]) for b in batches))
    ranks = [_rank_step(step, b, peers) for b in batches]
    waits = [0.0] * len(ranks) if waits is None else waits
    mean = sum(float(key[1]) for _, _, key in ranks) / group
    dt, work = 0.0, []
    for (acc, seqs, (phase, rows, launch)), wait in zip(ranks, waits):
        move = _shared(step, phase, rows, launch, mean)
        if acc is not None:
            acc = acc + move
            t = step._combine(acc, seqs)
            fl, by = acc[3], acc[4]
        else:  # a step model the fast parts do not reproduce: the difference added to its time
            t0, fl, by = seqs
            t, fl, by = t0 + move[0] + move[1] + move[2], fl + move[3], by + move[4]
        dt = max(dt, float(t) + wait)
        work.append((float(fl), float(by)))
    return dt, work


def joint_run(step, cached: list, k: int, group: int) -> tuple:
    """(k step times, [(FLOPs, bytes) arrays per rank]) of k lockstep pure-decode steps of ranks whose
    decoders have cached lengths `cached` (one array per busy rank)."""
    if step.exact:
        peers = (max(c.size for c in cached), False)
        ranks = [step.run_parts(c, k, peers) for c in cached]
        mean = sum(float(key[1]) for _, key in ranks) / group
        dts, work = np.zeros(k), []
        for (acc, (phase, rows, launch)), c in zip(ranks, cached):
            acc = acc + _shared(step, phase, rows, launch, mean)[:, None]
            dts = np.maximum(dts, step._combine(acc, c.size, np.maximum))
            work.append((acc[3], acc[4]))
        return dts, work
    runs = [step.decode_run(c, k) for c in cached]
    mean = sum(c.size for c in cached) / group
    dts, work = np.zeros(k), []
    for (t, fl, by), c in zip(runs, cached):
        move = _shared(step, "decode", c.size, None, mean)
        dts = np.maximum(dts, t + move[0] + move[1] + move[2])
        work.append((fl + move[3], by + move[4]))
    return dts, work


def simulate_group(parts: list, eng: Engine, power, group: int | None = None) -> list:
    """Run the requests of `group` ranks (one `Requests` each in `parts`; `group` defaults to their
    number) in lockstep to completion; one `Timeline` per rank, as `scheduler.simulate` gives."""
    group = len(parts) if group is None else group
    loops = [Loop(p, eng) for p in parts]
    step = eng.step
    t = 0.0
    while not all(loop.finished for loop in loops):
        for loop in loops:
            loop.arrive(t)
        busy = [loop for loop in loops if loop.busy()]
        if not busy:
            t = max(t, min(loop.next_arrival() for loop in loops))
            continue
        m = min(loop.run_steps() for loop in busy)
        if m > 0:  # every busy rank decodes on: a run priced at once, cut where a request arrives
            dts, work = joint_run(step, [loop.r.d_c for loop in busy], m, group)
            arrival = min(loop.next_arrival() for loop in loops)
            if np.isfinite(arrival):
                m = first_arrival_cut(t, dts, arrival)
            for loop, (fl, by) in zip(busy, work):
                end = loop.commit_run(t, dts[:m], fl[:m], by[:m])
            t = end
            continue
        plans = [(loop, loop.plan(t)) for loop in busy]
        plans = [(loop, plan) for loop, plan in plans if plan is not None]
        if not plans:  # only KV held for transfers: wait for the first to end
            t = max(t, min(loop.r.deferred[0][0] for loop in busy if loop.r.deferred))
            continue
        dt, work = joint_step(
            step, [plan.batch for _, plan in plans], group, [plan.wait for _, plan in plans]
        )
        for (loop, plan), (fl, by) in zip(plans, work):
            end = loop.commit(t, plan, dt, fl, by)
        t = end
    return [loop.timeline(power) for loop in loops]


def groups(parts: list, size: int) -> list:
    """`parts` (one Requests per rank) dealt into lockstep groups of `size` consecutive ranks."""
    return [parts[i : i + size] for i in range(0, len(parts), size)]
