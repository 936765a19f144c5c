"""The discrete-event loop of one replica: continuous batching with chunked prefill over paged KV
blocks, as vLLM (v1 scheduler) and TensorRT-LLM's in-flight batching run it.

Each step: running requests first, in admission order, take one token (decode) or the rest of their
prompt (chunked prefill) within the step's token budget `max_batched_tokens`; a running request
whose next tokens need a KV block when none is free preempts the most recently admitted request
(vLLM's rule): `recompute` drops its KV and queues it first again with its prompt and output so far
to prefill; `swap` copies its blocks to host memory over the host link (and back when resumed).
Then waiting requests are admitted in policy order (`fcfs`, or `sjf`: shortest prompt first) while
`max_num_seqs`, the budget and free blocks allow, prefix-cache hits skipping their prefill. The
whole mixed batch is one forward pass (`stepcost.FastStep`); a request's first token comes at the
end of the step that completes its prefill.

Between events a batch of decoding sequences changes only by one token per sequence and step, so
runs of such steps — until a request finishes, a request arrives, or a KV block would run out —
are priced in one vectorised call (`FastStep.decode_run`); the timeline is the same as stepping.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from roofline.simulator.serving.kvblocks import BlockPool
from roofline.simulator.serving.workload import Requests, block_keys

MAX_RUN_STEPS = 2048  # longest decode run priced at once (bounds the n x k index matrix)


@dataclass(frozen=True)
class Engine:
    """What the scheduler needs of one replica."""

    step: object  # stepcost.FastStep
    block_tokens: int
    total_blocks: int
    state_blocks: int  # blocks each running sequence holds for recurrent state
    block_bytes: float  # per GPU
    host_rate: float  # bytes/s over the host link
    swap_blocks: int  # host memory for swapped-out blocks
    host_cache_blocks: int  # host tier of the prefix cache
    max_num_seqs: int
    max_batched_tokens: int
    preemption: str
    reserve: bool  # admission takes blocks for the whole prompt + output (no preemption)
    policy: str
    prefix_cache: bool


@dataclass
class Timeline:
    """What happened to each request, and the per-step series."""

    first_token_s: np.ndarray
    finish_s: np.ndarray
    arrival_s: np.ndarray
    scheduled_s: np.ndarray  # first time a step included it
    preempted: np.ndarray
    generated: np.ndarray
    kv_transfer_s: np.ndarray  # host-tier loads and swaps waited for
    series: dict = field(default_factory=dict)  # t_s, dt_s, running, queued, kv_blocks (arrays)
    flops: float = 0.0  # per GPU, summed over steps
    bytes: float = 0.0
    busy_s: float = 0.0
    hit_tokens: int = 0
    prompt_tokens: int = 0
    steps: int = 0
    step_dt: np.ndarray = None  # every step's time
    step_watts: np.ndarray = None  # each GPU's power during it


class _Queue:
    """Waiting requests: FIFO (fcfs) or by prompt length (sjf); preempted ones go first."""

    def __init__(self, policy: str, prompt: np.ndarray):
        self.sjf = policy == "sjf"
        self.prompt = prompt
        self.fifo: deque = deque()
        self.heap: list = []
        self.front: deque = deque()
        self.seq = 0

    def __len__(self):
        return len(self.front) + (len(self.heap) if self.sjf else len(self.fifo))

    def push(self, i: int) -> None:
        if self.sjf:
            self.seq += 1
            heapq.heappush(self.heap, (int(self.prompt[i]), self.seq, i))
        else:
            self.fifo.append(i)

    def push_front(self, i: int) -> None:
        self.front.appendleft(i)

    def peek(self) -> int:
        if self.front:
            return self.front[0]
        return self.heap[0][2] if self.sjf else self.fifo[0]

    def pop(self) -> int:
        if self.front:
            return self.front.popleft()
        return heapq.heappop(self.heap)[2] if self.sjf else self.fifo.popleft()


def _blocks(tokens, b: int):
    return -(-tokens // b)


def simulate(req: Requests, eng: Engine, power) -> Timeline:
    """Run every request to completion; `power(flops, bytes, dt)` -> watts per GPU of a step."""
    n_req, B = req.n, eng.block_tokens
    pool = BlockPool(eng.total_blocks, eng.host_cache_blocks)
    computed = np.zeros(n_req, np.int64)
    target = req.prompt.astype(np.int64).copy()
    generated = np.zeros(n_req, np.int64)
    held = np.zeros(n_req, np.int64)  # private blocks (state blocks included)
    shared: list = [[] for _ in range(n_req)]
    swapped = np.zeros(n_req, np.int64)  # blocks in host memory (swap preemption)
    tl = Timeline(
        first_token_s=np.full(n_req, np.nan),
        finish_s=np.full(n_req, np.nan),
        arrival_s=req.arrival_s.astype(float).copy(),
        scheduled_s=np.full(n_req, np.nan),
        preempted=np.zeros(n_req, np.int64),
        generated=generated,
        kv_transfer_s=np.zeros(n_req),
    )
    arrivals = [(float(a), i) for i, a in enumerate(req.arrival_s) if a == a]
    heapq.heapify(arrivals)
    waiting = _Queue(eng.policy, req.prompt)
    run = np.empty(0, np.int64)
    swap_used = 0
    t, done = 0.0, 0
    ser_t, ser_dt, ser_run, ser_q, ser_kv = [], [], [], [], []
    run_dt, run_work, one_dt, one_work = [], [], [], []  # decode runs' and single steps' times and work
    keyed = [k is not None for k in req.prefix_key] if eng.prefix_cache else [False] * n_req
    published = np.zeros(n_req, np.int64)  # leading blocks of each request published as shared

    def publish(i: int) -> None:
        """Share request i's full cacheable blocks (its prefix, or a session's whole conversation)."""
        if not keyed[i]:
            return
        upto = min(int(req.cache_tokens[i]), int(computed[i]))
        keys = block_keys(req, i, upto, B)
        for k in keys[published[i] :]:
            if held[i] > eng.state_blocks and pool.publish(k):
                held[i] -= 1
                shared[i].append(k)
        published[i] = max(published[i], len(keys))

    def release(i: int) -> None:
        publish(i)
        pool.unref(shared[i])
        shared[i] = []
        pool.give(int(held[i]))
        held[i] = 0
        published[i] = 0

    while done < n_req:
        while arrivals and arrivals[0][0] <= t:
            waiting.push(heapq.heappop(arrivals)[1])
        if run.size == 0 and len(waiting) == 0:
            t = max(t, arrivals[0][0])
            continue
        extra_s = 0.0  # swaps and host-tier loads this step waits for

        # -- a run of pure-decode steps, priced at once --------------------------------------------
        if run.size and run.size <= eng.max_batched_tokens and bool(np.all(computed[run] >= target[run])):
            blocked = len(waiting) == 0 or run.size >= eng.max_num_seqs
            if not blocked:
                h = waiting.peek()
                if not keyed[h] and not swapped[h] and computed[h] == 0:
                    first = min(int(target[h]), eng.max_batched_tokens - run.size)
                    if eng.reserve:
                        first = int(req.prompt[h] + req.output[h])
                    blocked = _blocks(first, B) + eng.state_blocks > pool.available
            if blocked:
                k = int(min(MAX_RUN_STEPS, np.min(req.output[run] - generated[run])))
                c0 = computed[run]
                j = np.arange(1, k + 1)
                extra = np.maximum(
                    _blocks(c0[:, None] + j[None, :], B) + eng.state_blocks - held[run][:, None], 0
                )
                fits = extra.sum(axis=0) <= pool.available
                m = int(np.argmin(fits)) if not fits.all() else k
                if m > 0:
                    dts, fl, by = eng.step.decode_run(c0, m)
                    starts = t + np.concatenate([[0.0], np.cumsum(dts)[:-1]])
                    if arrivals:
                        m = max(1, int(np.searchsorted(starts, arrivals[0][0], side="left")))
                        dts, fl, by = dts[:m], fl[:m], by[:m]
                    span = float(dts.sum())
                    ser_t.append(t)
                    ser_dt.append(span)
                    ser_run.append(run.size)
                    ser_q.append(len(waiting))
                    computed[run] += m
                    generated[run] += m
                    need = np.maximum(_blocks(computed[run], B) + eng.state_blocks - held[run], 0)
                    pool.take(int(need.sum()))
                    held[run] += need
                    ser_kv.append(pool.used)
                    run_dt.append(dts)
                    run_work.append((fl, by))
                    tl.steps += m
                    t += span
                    fin = run[generated[run] >= req.output[run]]
                    for i in fin.tolist():
                        tl.finish_s[i] = t
                        release(i)
                        done += 1
                        nxt = int(req.next_turn[i])
                        if nxt >= 0:
                            tl.arrival_s[nxt] = t + float(req.think_s[nxt])
                            heapq.heappush(arrivals, (tl.arrival_s[nxt], nxt))
                    if fin.size:
                        run = run[generated[run] < req.output[run]]
                    continue

        # -- one step ---------------------------------------------------------------------------------
        want = np.maximum(target[run] - computed[run], 1)
        cum = np.cumsum(want)
        new = np.clip(eng.max_batched_tokens - (cum - want), 0, want)
        need = np.where(
            new > 0, np.maximum(_blocks(computed[run] + new, B) + eng.state_blocks - held[run], 0), 0
        )
        while run.size and int(need.sum()) > pool.available:
            v = int(run[-1])  # preempt the most recently admitted request
            tl.preempted[v] += 1
            if eng.preemption == "swap" and swap_used + held[v] <= eng.swap_blocks and not shared[v]:
                swapped[v] = held[v]
                swap_used += int(held[v])
                extra_s += held[v] * eng.block_bytes / eng.host_rate
                tl.kv_transfer_s[v] += held[v] * eng.block_bytes / eng.host_rate
                pool.give(int(held[v]))
                held[v] = 0
            else:
                release(v)
                target[v] = req.prompt[v] + generated[v]  # prompt and output so far, prefilled again
                computed[v] = 0
            waiting.push_front(v)
            run, new, need = run[:-1], new[:-1], need[:-1]
        pool.take(int(need.sum()))
        held[run] += need
        budget = eng.max_batched_tokens - int(new.sum())
        adm_ids, adm_new = [], []
        while len(waiting) and run.size + len(adm_ids) < eng.max_num_seqs and budget > 0:
            w = waiting.peek()
            if swapped[w]:
                want_w = int(max(target[w] - computed[w], 1))
                nw = min(want_w, budget)
                need_w = max(_blocks(int(computed[w]) + nw, B) + eng.state_blocks - int(swapped[w]), 0) + int(
                    swapped[w]
                )
                if need_w > pool.available:
                    break
                waiting.pop()
                pool.take(need_w)
                held[w] = need_w
                extra_s += swapped[w] * eng.block_bytes / eng.host_rate
                tl.kv_transfer_s[w] += swapped[w] * eng.block_bytes / eng.host_rate
                swap_used -= int(swapped[w])
                swapped[w] = 0
            else:
                hit, loaded, keys = 0, 0, []
                if keyed[w]:
                    # at least the last prompt token is computed (its logits give the next token)
                    keys = block_keys(req, w, min(int(req.prefix_tokens[w]), int(target[w]) - 1), B)
                    hit = pool.match(keys)
                    if eng.host_cache_blocks:
                        on_host = pool.match_host(keys[hit:])
                        if on_host:
                            load_s = on_host * eng.block_bytes / eng.host_rate
                            recompute_s = eng.step.cost([on_host * B], [hit * B])[0]
                            loaded = on_host if load_s < recompute_s else 0
                start = (hit + loaded) * B
                nw = min(int(target[w]) - start, budget)
                upto = int(req.prompt[w] + req.output[w]) if eng.reserve else start + nw
                need_w = _blocks(upto, B) + eng.state_blocks - hit
                lru_hits = sum(1 for k in keys[:hit] if k in pool.lru)
                if need_w > pool.available - lru_hits:
                    break
                waiting.pop()
                pool.ref(keys[:hit])
                shared[w] = list(keys[:hit])
                published[w] = hit
                pool.take(need_w)
                held[w] = need_w
                computed[w] = start
                if loaded:
                    extra_s += loaded * eng.block_bytes / eng.host_rate
                    tl.kv_transfer_s[w] += loaded * eng.block_bytes / eng.host_rate
                if tl.preempted[w] == 0:
                    tl.hit_tokens += start
                    tl.prompt_tokens += int(req.prompt[w])
            if np.isnan(tl.scheduled_s[w]):
                tl.scheduled_s[w] = t
            adm_ids.append(w)
            adm_new.append(nw)
            budget -= nw
        if adm_ids:
            run = np.concatenate([run, np.array(adm_ids, np.int64)])
            new = np.concatenate([new, np.array(adm_new, np.int64)])
        go = new > 0
        ids, nn = run[go], new[go]
        ser_t.append(t)
        ser_run.append(run.size)
        ser_q.append(len(waiting))
        if not ids.size:  # nothing fits although nothing runs: the caller checks requests fit alone
            raise RuntimeError(
                f"serving: request {waiting.peek()} cannot be scheduled with {pool.total} KV blocks"
            )
        dt, fl, by = eng.step.cost(nn, computed[ids], target[ids])
        dt += extra_s
        ser_dt.append(dt)
        ser_kv.append(pool.used)
        one_dt.append(dt)
        one_work.append((fl, by))
        tl.steps += 1
        t += dt
        computed[ids] += nn
        made = ids[computed[ids] >= target[ids]]
        generated[made] += 1
        newly = made[np.isnan(tl.first_token_s[made])]
        tl.first_token_s[newly] = t
        for i in made.tolist():
            if keyed[i]:
                publish(i)
        fin = made[generated[made] >= req.output[made]]
        for i in fin.tolist():
            tl.finish_s[i] = t
            release(i)
            done += 1
            nxt = int(req.next_turn[i])
            if nxt >= 0:
                tl.arrival_s[nxt] = t + float(req.think_s[nxt])
                heapq.heappush(arrivals, (tl.arrival_s[nxt], nxt))
        if fin.size:
            run = run[generated[run] < req.output[run]]
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
