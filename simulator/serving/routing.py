"""Requests dealt to data-parallel replicas as they arrive (`serving.routing: least_loaded` or
`prefix_aware`).

`round_robin` (the default) deals whole sessions to the replicas before the run (`workload.split`),
and each replica is simulated on its own. A load balancer instead sends each request, when it
arrives, to the replica that holds the fewest unfinished requests (running, partly prefilled or
queued), the lowest-numbered one on a tie: SGLang's router with `shortest_queue`, TensorRT-LLM's
attention-DP scheduler balancing its ranks' active requests, vLLM's data-parallel coordinator (which
weighs its queued requests more). A session's later turns stay on the replica of its first turn (its
KV is there), as a prefix-aware router keeps them.

`prefix_aware` is a cache-aware router (the SGLang Model Gateway's `cache_aware` policy, as its
documentation, docs/concepts/routing/cache-aware.md, describes it): it keeps, per replica, the
prompt prefixes it sent there (block keys, least recently used dropped beyond the replica's KV
blocks) and sends a request to the replica holding the longest leading run of its prefix's blocks
when that run covers more than CACHE_THRESHOLD of its prompt, else to the least-loaded replica; and
to the least-loaded one whenever the loads are out of balance (the largest exceeds the smallest by
more than BALANCE_ABS requests and by more than BALANCE_REL times). The gateway's defaults.

The replicas then run side by side in time: the one furthest behind steps (`scheduler.Unit.advance`,
its runs of decode steps cut at the next arrival) until every replica has reached the next arrival,
which is dealt by the replicas' loads at that point (a replica in the middle of a step counts it as
done). Ranks that share their experts (`lockstep`) step as one unit and each is a replica here.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import replace

import numpy as np

from roofline.simulator.serving.config import ROUTINGS
from roofline.simulator.serving.kvblocks import leading
from roofline.simulator.serving.replica import Engine, Timeline
from roofline.simulator.serving.scheduler import Loop, Unit
from roofline.simulator.serving.workload import Requests, block_keys, take

# The SGLang Model Gateway's cache_aware defaults (docs/concepts/routing/cache-aware.md): the share of
# a prompt a replica's cached prefix must cover, and the load imbalance past which it balances load
CACHE_THRESHOLD = 0.3
BALANCE_ABS = 64
BALANCE_REL = 1.5
POLICIES = tuple(r for r in ROUTINGS if r != "round_robin")  # the routed ones
PER_REQUEST = (
    "first_token_s",
    "finish_s",
    "arrival_s",
    "scheduled_s",
    "preempted",
    "generated",
    "kv_transfer_s",
)


def simulate_routed(
    req: Requests,
    eng: Engine,
    power,
    replicas: int,
    group: int = 1,
    hold_s=None,
    policy: str = "least_loaded",
) -> list:
    """Run `req` over `replicas` replicas (in lockstep units of `group`), each request sent as it
    arrives by `policy` (POLICIES); [(indices into req, their Requests, their Timeline)] per replica
    that served any. `hold_s` as for `scheduler.simulate`."""
    if policy not in POLICIES:
        raise ValueError(f"routing policy {policy!r}: one of {', '.join(POLICIES)}")
    loops = [Loop(req, eng, hold_s, routed=True) for _ in range(replicas)]
    choose = PrefixRouter(req, eng, loops) if policy == "prefix_aware" else _least_loaded
    units = [Unit(loops[i : i + group], eng, group) for i in range(0, replicas, group)]
    pending = [(float(a), i) for i, a in enumerate(req.arrival_s) if a == a]
    heapq.heapify(pending)
    exhausted: set = set()  # units with nothing to do until a request is sent to them
    while True:
        a = pending[0][0] if pending else np.inf
        k, behind = -1, a
        for j, u in enumerate(units):  # the unit furthest behind the next arrival
            if u.t < behind and j not in exhausted:
                k, behind = j, u.t
        if k >= 0:
            if not units[k].advance(a) and a == np.inf:
                exhausted.add(k)
            continue
        if not pending:  # every request dealt, every unit done
            break
        a, i = heapq.heappop(pending)
        to = choose(loops, i)
        heapq.heappush(loops[to].r.arrivals, (a, i))
        unit = to // group
        exhausted.discard(unit)
        units[unit].t = max(units[unit].t, a)
    if sum(loop.r.done for loop in loops) < req.n:  # (a unit stopped with work left: cannot happen)
        raise RuntimeError("serving: routed replicas stopped with requests unfinished")
    out = []
    for loop in loops:
        tl = loop.timeline(power)
        idx = np.flatnonzero(tl.finish_s == tl.finish_s)  # the requests it finished
        if idx.size:
            out.append((idx, take(req, idx), _sliced(tl, idx)))
    return out


def _least_loaded(loops: list, i: int) -> int:
    """The replica holding the fewest unfinished requests (the lowest-numbered on a tie)."""
    return min(range(len(loops)), key=lambda j: (loops[j].load(), j))


class PrefixRouter:
    """The `prefix_aware` choice (module docstring): per replica, the block keys of the prefixes sent
    there, least recently used first, at most that replica's KV blocks."""

    def __init__(self, req: Requests, eng: Engine, loops: list):
        self.req, self.B, self.capacity = req, eng.block_tokens, eng.total_blocks
        self.keyed = eng.prefix_cache
        self.trees = [OrderedDict() for _ in loops]

    def __call__(self, loops: list, i: int) -> int:
        req = self.req
        keys = (
            block_keys(req, i, min(int(req.prefix_tokens[i]), int(req.prompt[i]) - 1), self.B)
            if self.keyed and req.prefix_key[i] is not None
            else []
        )
        loads = [loop.load() for loop in loops]
        lo, hi = min(loads), max(loads)
        to = _least_loaded(loops, i)
        if keys and not (hi - lo > BALANCE_ABS and hi > BALANCE_REL * lo):
            hits = [leading(keys, tree) for tree in self.trees]
            best = max(range(len(loops)), key=lambda j: (hits[j], -loads[j], -j))
            if hits[best] * self.B > CACHE_THRESHOLD * int(req.prompt[i]):
                to = best
        tree = self.trees[to]
        for k in keys:
            tree[k] = True
            tree.move_to_end(k)
        while len(tree) > self.capacity:
            tree.popitem(last=False)
        return to


def _sliced(tl: Timeline, idx: np.ndarray) -> Timeline:
    """A replica's timeline over the requests `idx` it served (its steps as they were)."""
    return replace(tl, **{name: getattr(tl, name)[idx] for name in PER_REQUEST})
