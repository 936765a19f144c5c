"""Requests dealt to data-parallel replicas as they arrive (`serving.routing: least_loaded`).

`round_robin` (the default) deals whole sessions to the replicas before the run (`workload.split`),
and each replica is simulated on its own. A load balancer instead sends each request, when it
arrives, to the replica that holds the fewest unfinished requests (running, partly prefilled or
queued), the lowest-numbered one on a tie: SGLang's router with `shortest_queue`, TensorRT-LLM's
attention-DP scheduler balancing its ranks' active requests, vLLM's data-parallel coordinator (which
weighs its queued requests more). A session's later turns stay on the replica of its first turn (its
KV is there), as a prefix-aware router keeps them.

The replicas then run side by side in time: the one furthest behind steps (`scheduler.Unit.advance`,
its runs of decode steps cut at the next arrival) until every replica has reached the next arrival,
which is dealt by the replicas' loads at that point (a replica in the middle of a step counts it as
done). Ranks that share their experts (`lockstep`) step as one unit and each is a replica here.
"""

from __future__ import annotations

import heapq
from dataclasses import replace

import numpy as np

from roofline.simulator.serving.replica import Engine, Timeline
from roofline.simulator.serving.scheduler import Loop, Unit
from roofline.simulator.serving.workload import Requests, take

PER_REQUEST = (
    "first_token_s",
    "finish_s",
    "arrival_s",
    "scheduled_s",
    "preempted",
    "generated",
    "kv_transfer_s",
)


def simulate_routed(req: Requests, eng: Engine, power, replicas: int, group: int = 1, hold_s=None) -> list:
    """Run `req` over `replicas` replicas (in lockstep units of `group`), each request sent to the
    least-loaded replica as it arrives; [(indices into req, their Requests, their Timeline)] per
    replica that served any. `hold_s` as for `scheduler.simulate`."""
    loops = [Loop(req, eng, hold_s, routed=True) for _ in range(replicas)]
    units = [Unit(loops[i : i + group], eng, group) for i in range(0, replicas, group)]
    pending = [(float(a), i) for i, a in enumerate(req.arrival_s) if a == a]
    heapq.heapify(pending)
    exhausted: set = set()  # units with nothing to do until a request is sent to them
    while sum(loop.r.done for loop in loops) < req.n:
        a = pending[0][0] if pending else np.inf
        behind = [k for k, u in enumerate(units) if u.t < a and k not in exhausted]
        if behind:
            k = min(behind, key=lambda j: units[j].t)
            if not units[k].advance(a) and a == np.inf:
                exhausted.add(k)
            continue
        if not pending:  # (every request was dealt and every unit is idle: cannot happen)
            raise RuntimeError("serving: routed replicas stopped with requests unfinished")
        a, i = heapq.heappop(pending)
        to = min(range(replicas), key=lambda j: (loops[j].load(), j))
        heapq.heappush(loops[to].r.arrivals, (a, i))
        unit = to // group
        exhausted.discard(unit)
        units[unit].t = max(units[unit].t, a)
    out = []
    for loop in loops:
        tl = loop.timeline(power)
        idx = np.flatnonzero(tl.finish_s == tl.finish_s)  # the requests it finished
        if idx.size:
            out.append((idx, take(req, idx), _sliced(tl, idx)))
    return out


def _sliced(tl: Timeline, idx: np.ndarray) -> Timeline:
    """A replica's timeline over the requests `idx` it served (its steps as they were)."""
    return replace(tl, **{name: getattr(tl, name)[idx] for name in PER_REQUEST})
