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
first token comes at the end of the step that completes its prefill. SGLang (without
--enable-mixed-chunk, `Engine.mixed` False) does not mix: a step that can prefill anything prefills
alone, with the whole budget, and the decodes run in the steps between.

Between events a batch of decoding sequences changes only by one token per sequence and step, so
runs of such steps — until a request finishes, a request arrives, or a KV block would run out —
are priced in one vectorised call (`FastStep.decode_run`); the timeline is the same as stepping.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np

from roofline.simulator.serving.lockstep import joint_run, joint_step
from roofline.simulator.serving.replica import Engine, Replica, Timeline
from roofline.simulator.serving.workload import Requests

MAX_RUN_STEPS = 2048  # longest decode run priced at once (bounds the n x k index matrix)


class Loop:
    """One replica's scheduler between steps: what it runs next (a run of pure-decode steps, or one
    step of decodes, prefill chunks and admissions), and the state and series each step leaves.
    `simulate` drives one; `lockstep.simulate_group` drives several that share each step's time."""

    def __init__(self, req: Requests, eng: Engine, hold_s=None, routed: bool = False):
        self.req, self.eng = req, eng
        self.r = Replica(req, eng, hold_s, arrivals=not routed)  # routed: a router sends its requests
        self.ser: tuple = ([], [], [], [], [])  # t_s, dt_s, running, queued, kv_blocks
        self.run_dt, self.run_work, self.one_dt, self.one_work = [], [], [], []

    @property
    def finished(self) -> bool:
        return self.r.done >= self.req.n

    def arrive(self, t: float) -> None:
        """Free held KV that is due and queue the requests that have arrived by t."""
        r = self.r
        r.release_due(t)
        while r.arrivals and r.arrivals[0][0] <= t:
            r.waiting.push(heapq.heappop(r.arrivals)[1])

    def busy(self) -> bool:
        r = self.r
        return bool(r.d_id.size or r.pre or len(r.waiting))

    def next_arrival(self) -> float:
        return self.r.arrivals[0][0] if self.r.arrivals else np.inf

    def load(self) -> int:
        """Requests here not yet finished: running, partly prefilled, queued or sent and not arrived."""
        r = self.r
        return int(r.d_id.size) + len(r.pre) + len(r.waiting) + len(r.arrivals)

    def run_steps(self) -> int:
        """Steps of pure decoding that may run from here at once (0: step singly): until a request
        finishes or a KV block would run out (`MAX_RUN_STEPS` at most)."""
        r, eng = self.r, self.eng
        nd = r.d_id.size
        if not (nd and not r.pre and nd <= eng.max_batched_tokens and r.head_blocked()):
            return 0
        k = int(min(MAX_RUN_STEPS, r.d_left.min()))
        j = np.arange(1, k + 1)
        extra = np.maximum(eng.blocks(r.d_c[:, None] + j[None, :]) + eng.state_blocks - r.d_h[:, None], 0)
        fits = extra.sum(axis=0) <= r.pool.available
        return int(np.argmin(fits)) if not fits.all() else k

    def commit_run(self, t: float, dts, fl, by) -> float:
        """Apply len(dts) pure-decode steps of these times (and work) from t; the time after them."""
        r, eng = self.r, self.eng
        m = len(dts)
        span = float(dts.sum())
        ser_t, ser_dt, ser_run, ser_q, ser_kv = self.ser
        ser_t.append(t)
        ser_dt.append(span)
        ser_run.append(r.d_id.size)
        ser_q.append(len(r.waiting))
        r.d_c += m
        r.d_left -= m
        need = np.maximum(eng.blocks(r.d_c) + eng.state_blocks - r.d_h, 0)
        r.pool.take(int(need.sum()))
        r.d_h += need
        ser_kv.append(r.pool.used)
        self.run_dt.append(dts)
        self.run_work.append((fl, by))
        r.tl.steps += m
        t += span
        r._finish_decoders(t)
        return t

    def plan(self, t: float):
        """Schedule one step at t (preempting and admitting as the budget and blocks allow): its
        batch as `FastStep.cost_parts` takes it, and what `commit` needs; None when the replica can
        only wait for KV it holds for transfers. Without mixed batches (`Engine.mixed`, SGLang) a
        step that can prefill anything (a partly prefilled request, or an admissible waiting one)
        prefills only, and the running decodes wait for a step without prefill work."""
        r, mixed = self.r, self.eng.mixed
        if not mixed and (r.pre or len(r.waiting)):
            prefill = self._plan(t, decodes=False)
            if prefill is None or prefill.chunk_ids:
                return prefill
            if not r.d_id.size:  # no one decodes to free blocks: the partial prefills make room as mixed
                return self._plan(t, decodes=True, prefills=True)
        return self._plan(t, decodes=True, prefills=mixed)

    def _plan(self, t: float, decodes: bool, prefills: bool = True):
        """`plan`'s step: the running decodes (`decodes`) and prefill chunks and admissions
        (`prefills`). A prefill-alone step preempts no one: chunks the free blocks cannot hold wait
        (SGLang admits prefill only into free memory and retracts running requests only to decode);
        one that finds nothing to prefill admits no one, changes nothing and comes back with no
        chunks."""
        r, eng = self.r, self.eng
        S, pool = eng.state_blocks, r.pool
        nd = r.d_id.size
        wait = 0.0
        budget = eng.max_batched_tokens
        nd_go = min(nd, budget) if decodes else 0
        need_d = np.maximum(eng.blocks(r.d_c[:nd_go] + 1) + (S - r.d_h[:nd_go]), 0)
        budget -= nd_go
        p_new, p_need = [], []
        for i in r.pre:
            n = min(int(r.target[i] - r.computed[i]), budget) if prefills else 0
            budget -= n
            p_new.append(n)
            p_need.append(max(eng.blocks(int(r.computed[i]) + n) + S - int(r.held[i]), 0) if n else 0)
        total = int(need_d.sum()) + sum(p_need)
        if not decodes:  # the last chunks wait for blocks, no one is preempted for them
            for j in reversed(range(len(p_need))):
                if total <= pool.available:
                    break
                total -= p_need[j]
                budget += p_new[j]
                p_need[j] = p_new[j] = 0
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
        adm, adm_new, w = r._admit(t, budget, r.d_id.size + len(r.pre)) if prefills else ([], [], 0.0)
        wait += w
        chunk_ids = r.pre + adm
        chunk_new = p_new + adm_new
        # StepModel's rule: a one-token chunk on a non-empty cache is a decode step.
        p_n, p_c, p_t, dec_extra = [], [], [], []
        for i, n in zip(chunk_ids, chunk_new):
            if n:
                c = int(r.computed[i])
                if n == 1 and c:
                    dec_extra.append(c)
                else:
                    p_n.append(n)
                    p_c.append(c)
                    p_t.append(int(r.target[i]))
        dec_cached = r.d_c[:nd_go]
        if dec_extra:
            dec_cached = np.concatenate([dec_cached, np.array(dec_extra, np.int64)])
        if not decodes and not any(chunk_new):  # nothing to prefill: the decodes' step instead
            return Plan((dec_cached, p_n, p_c, p_t), wait, 0, [], [])
        if not dec_cached.size and not p_n and r.deferred:  # blocks held for transfers: idle until one ends
            return None
        if not dec_cached.size and not p_n:  # the caller checks every request fits alone
            raise RuntimeError(
                f"serving: request {r.waiting.peek()} cannot be scheduled with {pool.total} blocks"
            )
        return Plan((dec_cached, p_n, p_c, p_t), wait, nd_go, chunk_ids, chunk_new)

    def commit(self, t: float, plan, dt: float, fl, by) -> float:
        """Apply a planned step that took dt seconds from t (its work: fl, by); the time after it."""
        r, req, tl = self.r, self.req, self.r.tl
        ser_t, ser_dt, ser_run, ser_q, ser_kv = self.ser
        ser_t.append(t)
        ser_run.append(r.d_id.size + len(plan.chunk_ids))
        ser_q.append(len(r.waiting))
        ser_dt.append(dt)
        ser_kv.append(r.pool.used)
        self.one_dt.append(dt)
        self.one_work.append((fl, by))
        tl.steps += 1
        t += dt
        nd_go = plan.nd_go
        if nd_go:
            r.d_c[:nd_go] += 1
            r.d_left[:nd_go] -= 1
        still, became = [], []
        for i, n in zip(plan.chunk_ids, plan.chunk_new):
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
        return t

    def timeline(self, power) -> Timeline:
        """The replica's timeline, each step's power from its work (`power(flops, bytes, dt)`)."""
        tl, one_work, run_work = self.r.tl, self.one_work, self.run_work
        dts = np.concatenate([np.array(self.one_dt), *self.run_dt])
        fl = np.concatenate([np.array([w[0] for w in one_work]), *(w[0] for w in run_work)])
        by = np.concatenate([np.array([w[1] for w in one_work]), *(w[1] for w in run_work)])
        tl.step_dt, tl.step_watts = dts, power(fl, by, dts)
        tl.series = dict(zip(("t_s", "dt_s", "running", "queued", "kv_blocks"), map(np.array, self.ser)))
        return tl


@dataclass(frozen=True)
class Plan:
    """A scheduled step (`Loop.plan`): its batch (decoders' cached lengths, prefill chunks' new and
    cached tokens and prefill ends), the transfer seconds it waits for, and what `Loop.commit` updates."""

    batch: tuple
    wait: float
    nd_go: int
    chunk_ids: list
    chunk_new: list


def first_arrival_cut(t: float, dts: np.ndarray, arrival: float) -> int:
    """Steps of a run starting at t (times dts) that start before `arrival` (at least one): a run
    stops where a request arrives, whose admission changes the batch."""
    starts = t + np.concatenate([[0.0], np.cumsum(dts)[:-1]])
    return max(1, int(np.searchsorted(starts, arrival, side="left")))


class Unit:
    """Ranks that step together and their clock: `group` ranks sharing their experts step in lockstep
    (`lockstep`); a replica alone is a unit of one, each step priced by its own batch."""

    def __init__(self, loops: list, eng: Engine, group: int = 1):
        self.loops, self.step, self.group, self.t = loops, eng.step, group, 0.0
        self.alone = group == 1 and len(loops) == 1

    def pending(self) -> float:
        """The first arrival queued for one of its ranks (inf: none)."""
        return min(loop.next_arrival() for loop in self.loops)

    def advance(self, horizon: float = np.inf) -> bool:
        """From its clock: one step, or a run of pure-decode steps until a request arrives or
        `horizon`, or an idle wait until an arrival; False where it has nothing to do before
        `horizon` (its clock then moves on to `horizon` where that is finite)."""
        t, loops = self.t, self.loops
        for loop in loops:
            loop.arrive(t)
        busy = (loops if loops[0].busy() else []) if self.alone else [loop for loop in loops if loop.busy()]
        if not busy:
            nxt = self.pending()
            if nxt <= horizon and nxt < np.inf:
                self.t = max(t, nxt)
                return True
            self.t = max(t, horizon) if horizon < np.inf else t
            return False
        m = min(loop.run_steps() for loop in busy)
        if m > 0:  # a run of pure-decode steps, priced at once
            if self.alone:
                dts, fl, by = self.step.decode_run(busy[0].r.d_c, m)
                work = [(fl, by)]
            else:
                dts, work = joint_run(self.step, [loop.r.d_c for loop in busy], m, self.group)
            cut = min(self.pending(), horizon)
            if cut < np.inf:
                m = first_arrival_cut(t, dts, cut)
            for loop, (fl, by) in zip(busy, work):
                self.t = loop.commit_run(t, dts[:m], fl[:m], by[:m])
            return True
        if self.alone:  # one replica's step: its own batch's cost (the joint step of one rank, cheaper)
            loop = busy[0]
            plan = loop.plan(t)
            if plan is None:  # only KV held for transfers: wait for the first to end
                self.t = max(t, loop.r.deferred[0][0])
                return True
            dt, fl, by = self.step.cost_parts(*plan.batch)
            self.t = loop.commit(t, plan, dt + plan.wait, fl, by)
            return True
        plans = [(loop, loop.plan(t)) for loop in busy]
        plans = [(loop, plan) for loop, plan in plans if plan is not None]
        if not plans:  # only KV held for transfers: wait for the first to end
            self.t = max(t, min(loop.r.deferred[0][0] for loop in busy if loop.r.deferred))
            return True
        dt, work = joint_step(self.step, [p.batch for _, p in plans], self.group, [p.wait for _, p in plans])
        for (loop, plan), (fl, by) in zip(plans, work):
            self.t = loop.commit(t, plan, dt, fl, by)
        return True


def simulate(req: Requests, eng: Engine, power, hold_s=None) -> Timeline:
    """Run every request to completion; `power(flops, bytes, dt)` -> watts per GPU of each step;
    `hold_s`: per request, seconds its KV stays after it finishes (a disaggregated prefill pool's
    transfer to the decode pool)."""
    loop = Loop(req, eng, hold_s)
    unit = Unit([loop], eng)
    while not loop.finished:
        unit.advance()
    return loop.timeline(power)


def simulate_group(parts: list, eng: Engine, power, group: int | None = None, holds=None) -> list:
    """Run the requests of `group` ranks that share their experts (one `Requests` each in `parts`;
    `group` defaults to their number) in lockstep (`lockstep`) to completion; a `Timeline` each.
    `holds`: per part, its requests' KV hold after they finish, as `simulate`'s `hold_s`."""
    loops = [Loop(p, eng, h) for p, h in zip(parts, holds or [None] * len(parts))]
    unit = Unit(loops, eng, len(parts) if group is None else group)
    while not all(loop.finished for loop in loops):
        unit.advance()
    return [loop.timeline(power) for loop in loops]


def groups(parts: list, size: int) -> list:
    """`parts` (one Requests per rank) dealt into lockstep groups of `size` consecutive ranks."""
    return [parts[i : i + size] for i in range(0, len(parts), size)]
