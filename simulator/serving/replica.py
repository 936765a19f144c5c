"""The state of one serving replica between steps, and what changes it besides a forward pass:
admitting waiting requests (prefix-cache hits, host-tier loads, swapped-out KV coming back), paged KV
blocks, preemption and finishing. `scheduler.simulate` runs the steps.

Decoding requests are kept as aligned arrays (`d_*`: the hot path, one token each per step), partial
prefills as a short list, everything else in per-request arrays.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from roofline.simulator.serving.kvblocks import BlockPool
from roofline.simulator.serving.workload import Requests, block_keys


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
    ssd_cache_blocks: int  # SSD tier below it
    ssd_rate: float  # bytes/s reading the SSD tier back (the slower of the disk and the host link)
    max_num_seqs: int
    max_batched_tokens: int
    preemption: str
    reserve: bool  # admission takes blocks for the whole prompt + output (no preemption)
    chunked: bool  # a prompt may be split over steps (chunked prefill); False: scheduled whole
    policy: str
    prefix_cache: bool
    kv_bytes: object = None  # context tokens -> KV bytes a sequence holds (None: tokens x block bytes / B)
    mixed: bool = True  # decodes ride in prefill steps; False: a step prefills or decodes (SGLang)

    def blocks(self, tokens):
        """Blocks a sequence holds at `tokens` tokens of context (ints or arrays): one per block of
        tokens, or, where a method or a sliding window caps what a sequence keeps, the blocks its
        capped KV fills (`kv_bytes`)."""
        if self.kv_bytes is None:
            return blocks_of(tokens, self.block_tokens)
        filled = np.ceil(np.asarray(self.kv_bytes(np.asarray(tokens, float))) / self.block_bytes - 1e-9)
        out = np.maximum(filled, 0).astype(np.int64)
        return int(out) if np.ndim(out) == 0 else out


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
    hit_tokens: int = 0  # prompt tokens whose KV came from the prefix cache (first admissions)
    prompt_tokens: int = 0  # prompt tokens of first admissions
    steps: int = 0
    step_dt: np.ndarray = None  # every step's time
    step_watts: np.ndarray = None  # each GPU's power during it


class WaitQueue:
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


def blocks_of(tokens, b: int):
    """Blocks of b tokens that hold `tokens` tokens."""
    return -(-tokens // b)


class Replica:
    """One replica's requests, KV blocks and queue (see the module docstring)."""

    def __init__(self, req: Requests, eng: Engine, hold_s=None, arrivals: bool = True):
        n = req.n
        self.req, self.eng, self.B = req, eng, eng.block_tokens
        # seconds a finished request keeps its KV (a disaggregated prefill pool's KV stays until its
        # transfer to the decode pool is done); freed by `release_due`
        self.hold_s = hold_s
        self.deferred: list = []  # heap of (release time, request)
        self.pool = BlockPool(eng.total_blocks, eng.host_cache_blocks, eng.ssd_cache_blocks)
        self.computed = np.zeros(n, np.int64)
        self.target = req.prompt.astype(np.int64).copy()
        self.generated = np.zeros(n, np.int64)
        self.held = np.zeros(n, np.int64)  # private blocks (state blocks included)
        self.shared: list = [[] for _ in range(n)]
        self.swapped = np.zeros(n, np.int64)  # blocks in host memory (swap preemption)
        self.swap_used = 0
        self.order = np.zeros(n, np.int64)  # admission sequence number
        self.admitted = 0
        self.keyed = [k is not None for k in req.prefix_key] if eng.prefix_cache else [False] * n
        self.published = np.zeros(n, np.int64)
        self.d_id = np.empty(0, np.int64)  # decoding requests, in admission order
        self.d_c = np.empty(0, np.int64)  # their cached tokens
        self.d_h = np.empty(0, np.int64)  # their private blocks
        self.d_left = np.empty(0, np.int64)  # tokens still to generate
        self.pre: list = []  # partial prefills, in admission order
        self.tl = Timeline(
            first_token_s=np.full(n, np.nan),
            finish_s=np.full(n, np.nan),
            arrival_s=req.arrival_s.astype(float).copy(),
            scheduled_s=np.full(n, np.nan),
            preempted=np.zeros(n, np.int64),
            generated=self.generated,
            kv_transfer_s=np.zeros(n),
        )
        # (arrival time, request) not yet queued: every first turn, or, where a router deals the
        # requests as they arrive (`arrivals` False), those it sends here (and their later turns)
        self.arrivals = [(float(a), i) for i, a in enumerate(req.arrival_s) if a == a] if arrivals else []
        heapq.heapify(self.arrivals)
        self.waiting = WaitQueue(eng.policy, req.prompt)
        self.done = 0

    # -- blocks and the prefix cache ---------------------------------------------------------------
    def publish(self, i: int) -> None:
        """Share request i's full cacheable blocks (its prefix, or a session's whole conversation)."""
        if not self.keyed[i]:
            return
        upto = min(int(self.req.cache_tokens[i]), int(self.computed[i]))
        keys = block_keys(self.req, i, upto, self.B)
        for k in keys[self.published[i] :]:
            if self.held[i] > self.eng.state_blocks and self.pool.publish(k):
                self.held[i] -= 1
                self.shared[i].append(k)
        self.published[i] = max(self.published[i], len(keys))

    def release(self, i: int) -> None:
        self.publish(i)
        self.pool.unref(self.shared[i])
        self.shared[i] = []
        self.pool.give(int(self.held[i]))
        self.held[i] = 0
        self.published[i] = 0

    def release_due(self, t: float) -> None:
        """Free the KV of finished requests whose hold has ended by time t."""
        while self.deferred and self.deferred[0][0] <= t:
            self.release(heapq.heappop(self.deferred)[1])

    # -- decoders --------------------------------------------------------------------------------
    def _sync(self, idx) -> None:
        """Write decoders `idx` (positions in the d_ arrays) back to the per-request arrays."""
        ids = self.d_id[idx]
        self.computed[ids] = self.d_c[idx]
        self.held[ids] = self.d_h[idx]
        self.generated[ids] = self.req.output[ids] - self.d_left[idx]

    def _drop(self, keep) -> None:
        self.d_id, self.d_c, self.d_h, self.d_left = (
            a[keep] for a in (self.d_id, self.d_c, self.d_h, self.d_left)
        )

    def _add_decoders(self, ids: list) -> None:
        ids = np.array(ids, np.int64)
        if not self.d_id.size or self.order[ids].min() > self.order[self.d_id[-1]]:  # the usual case
            self.d_id = np.concatenate([self.d_id, ids])
            self.d_c = np.concatenate([self.d_c, self.computed[ids]])
            self.d_h = np.concatenate([self.d_h, self.held[ids]])
            self.d_left = np.concatenate([self.d_left, self.req.output[ids] - self.generated[ids]])
            return
        merged = np.concatenate([self.d_id, ids])
        order = np.argsort(self.order[merged], kind="stable")
        self.d_id = merged[order]
        self.d_c = np.concatenate([self.d_c, self.computed[ids]])[order]
        self.d_h = np.concatenate([self.d_h, self.held[ids]])[order]
        self.d_left = np.concatenate([self.d_left, self.req.output[ids] - self.generated[ids]])[order]

    def _finish(self, i: int, t: float) -> None:
        self.tl.finish_s[i] = t
        if self.hold_s is not None and self.hold_s[i] > 0:
            heapq.heappush(self.deferred, (t + float(self.hold_s[i]), i))
        else:
            self.release(i)
        self.done += 1
        nxt = int(self.req.next_turn[i])
        if nxt >= 0:
            self.tl.arrival_s[nxt] = t + float(self.req.think_s[nxt])
            heapq.heappush(self.arrivals, (self.tl.arrival_s[nxt], nxt))

    def _finish_decoders(self, t: float) -> None:
        if not self.d_left.size or self.d_left.min() > 0:
            return
        fin = self.d_left <= 0
        idx = np.flatnonzero(fin)
        self._sync(idx)
        for i in self.d_id[idx].tolist():
            self._finish(i, t)
        self._drop(~fin)

    # -- preemption ------------------------------------------------------------------------------
    def _preempt_latest(self) -> tuple:
        """Preempt the most recently admitted running request; (was it a decoder, its position,
        transfer seconds the step waits for)."""
        eng, tl = self.eng, self.tl
        last_d = int(self.order[self.d_id[-1]]) if self.d_id.size else -1
        last_p = int(self.order[self.pre[-1]]) if self.pre else -1
        if last_d > last_p:
            pos = self.d_id.size - 1
            self._sync([pos])
            v = int(self.d_id[pos])
            self._drop(slice(0, pos))
            decoder = True
        else:
            v, pos, decoder = self.pre.pop(), len(self.pre), False
        tl.preempted[v] += 1
        wait = 0.0
        held = int(self.held[v])
        if eng.preemption == "swap" and self.swap_used + held <= eng.swap_blocks and not self.shared[v]:
            self.swapped[v] = held
            self.swap_used += held
            wait = held * eng.block_bytes / eng.host_rate
            tl.kv_transfer_s[v] += wait
            self.pool.give(held)
            self.held[v] = 0
        else:
            self.release(v)
            self.target[v] = self.req.prompt[v] + self.generated[v]  # prompt and output so far, again
            self.computed[v] = 0
        self.waiting.push_front(v)
        return decoder, pos, wait

    # -- admission -------------------------------------------------------------------------------
    def _admit(self, t: float, budget: int, running: int) -> tuple:
        """Admit waiting requests into this step: (ids, their chunk tokens, transfer seconds)."""
        eng, pool, req, B, tl = self.eng, self.pool, self.req, self.B, self.tl
        ids, chunks, wait = [], [], 0.0
        while len(self.waiting) and running + len(ids) < eng.max_num_seqs and budget > 0:
            w = self.waiting.peek()
            if self.swapped[w]:
                sw = int(self.swapped[w])
                rest = int(max(self.target[w] - self.computed[w], 1))
                if not self.whole_fits(rest, budget):
                    break
                nw = min(rest, budget)
                need = max(eng.blocks(int(self.computed[w]) + nw) + eng.state_blocks - sw, 0) + sw
                if need > pool.available:
                    break
                self.waiting.pop()
                pool.take(need)
                self.held[w] = need
                wait += sw * eng.block_bytes / eng.host_rate
                tl.kv_transfer_s[w] += sw * eng.block_bytes / eng.host_rate
                self.swap_used -= sw
                self.swapped[w] = 0
            else:
                hit, loaded, keys = 0, 0, []
                if self.keyed[w]:
                    # at least the last prompt token is computed (its logits give the next token)
                    keys = block_keys(req, w, min(int(req.prefix_tokens[w]), int(self.target[w]) - 1), B)
                    hit = pool.match(keys)
                    if eng.host_cache_blocks:
                        on_host, on_ssd = pool.match_tiers(keys[hit:])
                        if on_host + on_ssd:
                            load_s = on_host * eng.block_bytes / eng.host_rate
                            load_s += on_ssd * eng.block_bytes / eng.ssd_rate if on_ssd else 0.0
                            recompute_s = eng.step.cost([(on_host + on_ssd) * B], [hit * B])[0]
                            loaded = on_host + on_ssd if load_s < recompute_s else 0
                            load_wait = load_s
                from_cache = start = (hit + loaded) * B
                handed = req.preloaded is not None  # a decode pool's request: its KV came over the link
                if handed and not tl.preempted[w]:
                    start = max(start, int(req.preloaded[w]))
                if not self.whole_fits(int(self.target[w]) - start, budget):
                    break
                nw = min(int(self.target[w]) - start, budget)
                upto = int(req.prompt[w] + req.output[w]) if eng.reserve else start + nw
                need = eng.blocks(upto) + eng.state_blocks - hit
                lru_hits = sum(1 for k in keys[:hit] if k in pool.lru) if hit else 0
                if need > pool.available - lru_hits:
                    break
                self.waiting.pop()
                pool.ref(keys[:hit])
                self.shared[w] = list(keys[:hit])
                self.published[w] = hit
                pool.take(need)
                self.held[w] = need
                self.computed[w] = start
                if loaded:
                    wait += load_wait
                    tl.kv_transfer_s[w] += load_wait
                if tl.preempted[w] == 0 and not handed:  # (the prefill pool counts a handed-over prompt)
                    tl.hit_tokens += from_cache
                    tl.prompt_tokens += int(req.prompt[w])
            if tl.scheduled_s[w] != tl.scheduled_s[w]:  # NaN: first time scheduled
                tl.scheduled_s[w] = t
            self.admitted += 1
            self.order[w] = self.admitted
            ids.append(w)
            chunks.append(nw)
            budget -= nw
        return ids, chunks, wait

    def whole_fits(self, rest: int, budget: int) -> bool:
        """Whether `rest` prompt tokens may start this step with `budget` tokens left: always with
        chunked prefill; without it only whole (TensorRT-LLM without enable_chunked_prefill, vLLM with
        it off), except a rest longer than the whole budget (a preempted request's prompt and
        output so far, recomputed), which no step could take at once and is chunked."""
        return self.eng.chunked or rest <= budget or rest > self.eng.max_batched_tokens

    def head_blocked(self) -> bool:
        """Whether no waiting request can be admitted before a running one finishes (decode steps
        only take blocks, so what cannot be admitted now cannot be until then)."""
        if len(self.waiting) == 0 or self.d_id.size >= self.eng.max_num_seqs:
            return True
        h = self.waiting.peek()
        if self.keyed[h] or self.swapped[h] or self.computed[h]:
            return False  # its blocks depend on cache hits or history: step and see
        eng = self.eng
        if not self.whole_fits(int(self.target[h]), eng.max_batched_tokens - self.d_id.size):
            return True  # its prompt waits for the budget a finishing decoder frees
        tokens = (
            int(self.req.prompt[h] + self.req.output[h])
            if eng.reserve
            else min(int(self.target[h]), eng.max_batched_tokens - self.d_id.size)
        )
        return eng.blocks(tokens) + eng.state_blocks > self.pool.available
