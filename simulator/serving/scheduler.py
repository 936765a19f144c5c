"""The discrete-event loop of one replica: continuous batching with chunked prefill over paged KV
blocks, as vLLM (v1 scheduler) and TensorRT-LLM's in-flight batching run it.

Each step fills the token budget `max_batched_tokens` in the stall-free order of Sarathi-Serve
(Agrawal et al., OSDI '24) and vLLM's chunked-prefill scheduler: running decodes first (one token
each, in admission order), then running partial prefills (the rest of their prompt, as far as the
budget goes), then new requests. When the step's tokens need KV blocks and none are free, the most
recently admitted request is preempted (vLLM's rule): `recompute` drops its KV and queues it first
again with its prompt and output so far to prefill; `swap` copies its blocks to host memory over the
host link (and back when resumed). Waiting requests are admitted in policy order (`fcfs`, or `sjf`:
shortest prompt first) while `max_num_seqs`, the budget and free blocks allow, prefix-cache hits
skipping their prefill. The whole mixed batch is one forward pass (`stepcost.FastStep`); a request's
first token comes at the end of the step that completes its prefill.

Between events a batch of decoding sequences changes only by one token per sequence and step, so
runs of such steps — until a request finishes, a request arrives, or a KV block would run out —
are priced in one vectorised call (`FastStep.decode_run`); the timeline is the same as stepping.
"""

from __future__ import annotations

import heapq

import numpy as np

from roofline.simulator.serving.replica import Engine, Replica, Timeline
from roofline.simulator.serving.workload import Requests

MAX_RUN_STEPS = 2048  # longest decode run priced at once (bounds the n x k index matrix)


def simulate(req: Requests, eng: Engine, power, hold_s=None) -> Timeline:
    """Run every request to completion; `power(flops, bytes, dt)` -> watts per GPU of each step;
    `hold_s`: per request, seconds its KV stays after it finishes (a disaggregated prefill pool's
    transfer to the decode pool)."""
    r = Replica(req, eng, hold_s)
    S, mbt, tl, pool = eng.state_blocks, eng.max_batched_tokens, r.tl, r.pool
    t = 0.0
    ser_t, ser_dt, ser_run, ser_q, ser_kv = [], [], [], [], []
    run_dt, run_work, one_dt, one_work = [], [], [], []  # decode runs' and single steps' times and work
    n_req = req.n
    while r.done < n_req:
        r.release_due(t)
        while r.arrivals and r.arrivals[0][0] <= t:
            r.waiting.push(heapq.heappop(r.arrivals)[1])
        nd = r.d_id.size
        if nd == 0 and not r.pre and len(r.waiting) == 0:
            t = max(t, r.arrivals[0][0])
            continue

        # -- a run of pure-decode steps, priced at once --------------------------------------------
        if nd and not r.pre and nd <= mbt and r.head_blocked():
            k = int(min(MAX_RUN_STEPS, r.d_left.min()))
            j = np.arange(1, k + 1)
            extra = np.maximum(eng.blocks(r.d_c[:, None] + j[None, :]) + S - r.d_h[:, None], 0)
            fits = extra.sum(axis=0) <= pool.available
            m = int(np.argmin(fits)) if not fits.all() else k
            if m > 0:
                dts, fl, by = eng.step.decode_run(r.d_c, m)
                if r.arrivals:
                    starts = t + np.concatenate([[0.0], np.cumsum(dts)[:-1]])
                    m = max(1, int(np.searchsorted(starts, r.arrivals[0][0], side="left")))
                    dts, fl, by = dts[:m], fl[:m], by[:m]
                span = float(dts.sum())
                ser_t.append(t)
                ser_dt.append(span)
                ser_run.append(nd)
                ser_q.append(len(r.waiting))
                r.d_c += m
                r.d_left -= m
                need = np.maximum(eng.blocks(r.d_c) + S - r.d_h, 0)
                pool.take(int(need.sum()))
                r.d_h += need
                ser_kv.append(pool.used)
                run_dt.append(dts)
                run_work.append((fl, by))
                tl.steps += m
                t += span
                r._finish_decoders(t)
                continue

        # -- one step ---------------------------------------------------------------------------------
        wait = 0.0
        budget = mbt
        nd_go = min(nd, budget)
        need_d = np.maximum(eng.blocks(r.d_c[:nd_go] + 1) + (S - r.d_h[:nd_go]), 0)
        budget -= nd_go
        p_new, p_need = [], []
        for i in r.pre:
            n = min(int(r.target[i] - r.computed[i]), budget)
            budget -= n
            p_new.append(n)
            p_need.append(max(eng.blocks(int(r.computed[i]) + n) + S - int(r.held[i]), 0) if n else 0)
        total = int(need_d.sum()) + sum(p_need)
        while total > pool.available and (r.d_id.size or r.pre):
            decoder, pos, w = r._preempt_latest()
            wait += w
            if decoder:
                if pos < nd_go:
                    total -= int(need_d[pos])
                    need_d = need_d[:pos]
                    budget += 1
                    nd_go = pos
            else:
                total -= p_need.pop()
                budget += p_new.pop()
        pool.take(total)
        if nd_go:
            r.d_h[:nd_go] += need_d
        for i, n in zip(r.pre, p_need):
            r.held[i] += n
        adm, adm_new, w = r._admit(t, budget, r.d_id.size + len(r.pre))
        wait += w
        chunk_ids = r.pre + adm
        chunk_new = p_new + adm_new
        # StepModel's rule: a one-token chunk on a non-empty cache is a decode step.
        p_ids, p_n, p_c, p_t, dec_extra = [], [], [], [], []
        for i, n in zip(chunk_ids, chunk_new):
            if n:
                c = int(r.computed[i])
                if n == 1 and c:
                    dec_extra.append(c)
                else:
                    p_ids.append(i)
                    p_n.append(n)
                    p_c.append(c)
                    p_t.append(int(r.target[i]))
        dec_cached = r.d_c[:nd_go]
        if dec_extra:
            dec_cached = np.concatenate([dec_cached, np.array(dec_extra, np.int64)])
        if not dec_cached.size and not p_ids and r.deferred:  # blocks held for transfers: idle until one ends
            t = max(t, r.deferred[0][0])
            continue
        if not dec_cached.size and not p_ids:  # the caller checks every request fits alone
            raise RuntimeError(
                f"serving: request {r.waiting.peek()} cannot be scheduled with {pool.total} blocks"
            )
        dt, fl, by = eng.step.cost_parts(dec_cached, p_n, p_c, p_t)
        dt += wait
        ser_t.append(t)
        ser_run.append(r.d_id.size + len(chunk_ids))
        ser_q.append(len(r.waiting))
        ser_dt.append(dt)
        ser_kv.append(pool.used)
        one_dt.append(dt)
        one_work.append((fl, by))
        tl.steps += 1
        t += dt
        if nd_go:
            r.d_c[:nd_go] += 1
            r.d_left[:nd_go] -= 1
        still, became = [], []
        for i, n in zip(chunk_ids, chunk_new):
            if n == 0:
                still.append(i)
                continue
            r.computed[i] += n
            if r.computed[i] < r.target[i]:
                still.append(i)
                continue
            r.generated[i] += 1
            if tl.first_token_s[i] != tl.first_token_s[i]:  # NaN: this is its first token
                tl.first_token_s[i] = t
            if r.keyed[i]:
                r.publish(i)
            if r.generated[i] >= req.output[i]:
                r._finish(i, t)
            else:
                became.append(i)
        r.pre = still
        if became:
            r._add_decoders(became)
        r._finish_decoders(t)
    dts = np.concatenate([np.array(one_dt), *run_dt])
    fl = np.concatenate([np.array([w[0] for w in one_work]), *(w[0] for w in run_work)])
    by = np.concatenate([np.array([w[1] for w in one_work]), *(w[1] for w in run_work)])
    tl.step_dt, tl.step_watts = dts, power(fl, by, dts)
    tl.series = {
        "t_s": np.array(ser_t),
        "dt_s": np.array(ser_dt),
        "running": np.array(ser_run),
        "queued": np.array(ser_q),
        "kv_blocks": np.array(ser_kv),
    }
    return tl
