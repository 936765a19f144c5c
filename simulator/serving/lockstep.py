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
prices that part at a rank's own rows and at the mean; the difference is moved). A rank's prompt
chunk therefore stalls the others' decodes for its own (non-expert) time, the cost independent
replicas do not see; identical ranks step as they would alone. The ranks replay their decode graphs
only when none of them has a prompt chunk, each padded to the graph of the largest rank's batch
(vLLM and SGLang pad every data-parallel rank's tokens to the largest's, TensorRT-LLM gathers the
ranks' batch sizes under attention DP likewise); beside a prompt chunk the others' decode steps
launch eagerly. Runs of pure-decode steps are priced at once, as in `scheduler.simulate`, while
every busy rank can run them. `scheduler.Unit` steps the group; this module prices its steps. (A
step model the fast parts do not reproduce, `FastStep.exact` False, adds the experts' difference to
each rank's whole step time, without the graph rule.)
"""

from __future__ import annotations

import numpy as np


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
