"""The max sustainable rate of a deployment: the highest arrival rate at which its SLO attainment
holds, found by bracketing and bisection over a serving simulation.

`max_sustainable_rate(meets, rate, meets_at_rate, rel_tol)` takes `meets(r) -> bool` (a serving run
at arrival rate r reaches the attainment target) and the verdict already known at the requested
`rate`. Method:

1. Bracket. If the requested rate meets the target, the rate doubles until a run misses it (at most
   MAX_DOUBLINGS times; beyond that the answer is a lower bound, `hi` None). If it misses, the rate
   halves until a run meets it (at most MAX_HALVINGS times; none meeting it: the max rate is 0, the
   SLO is missed even at rate / 2**MAX_HALVINGS).
2. Bisect geometrically (the midpoint sqrt(lo * hi), as the rate spans orders of magnitude) until
   hi / lo <= 1 + rel_tol.

The answer is `lo`, the highest rate a run met: within rel_tol below the boundary it brackets.
Assumption: attainment does not rise with the rate. It holds on average (more load, longer queues)
and the caller makes it hold run to run by keeping the seed, so every rate sees the same request
lengths and the same arrival gaps scaled by 1 / rate (common random numbers); a finite run can
still be non-monotone near the boundary, by about the run's sampling noise, which is then where
the bisection lands.

What "sustainable" can mean for a finite run: a run of N requests at a rate somewhat above the
deployment's capacity ends before its queue has grown enough to break the SLO, so it can pass. The
search therefore caps the rate at the deployment's saturated throughput (`ceiling`: requests all
queued at t = 0, enough of them for the batches to turn over: roofline.serving_search's
`saturated_requests`), which no sustained arrival rate can exceed.
The fewer requests a run has (per replica), the further above capacity that happens; a run that
spans many end-to-end latencies (`serving.requests` in the thousands for chat-like traffic) keeps
the answer near the steady-state boundary. The search reports what the runs it was given show.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_DOUBLINGS = 10  # 1024x the requested rate
MAX_HALVINGS = 10  # the requested rate / 1024


@dataclass(frozen=True)
class RateSearch:
    rate_per_s: float  # the highest rate that met the target (0: none did)
    lo: float  # == rate_per_s
    hi: float | None  # the lowest rate that missed it (None: none did within MAX_DOUBLINGS)
    runs: int  # serving runs this search made (not counting the requested rate's)


def max_sustainable_rate(
    meets, rate: float, meets_at_rate: bool, rel_tol: float, ceiling: float | None = None
) -> RateSearch:
    """See the module docstring. `rate` > 0, 0 < rel_tol. `ceiling`: the deployment's saturated
    throughput (requests/s of requests all queued at t = 0): no arrival rate above it is
    sustainable, whatever a finite run shows, so the bracket never goes past it and a rate that
    meets the target there is capped to it."""
    if not rate > 0 or not rel_tol > 0:
        raise ValueError(f"rate {rate} and rel_tol {rel_tol} must be positive")
    runs = 0
    if ceiling is not None and rate > ceiling:
        # no rate above the saturated throughput is sustainable: the search starts at it (a run that
        # met the target above it meets it there too, as attainment does not rise with the rate)
        if not meets_at_rate:
            runs += 1
            meets_at_rate = meets(ceiling)
        rate = ceiling
    if meets_at_rate and ceiling is not None and rate >= ceiling:
        return RateSearch(ceiling, ceiling, None, runs)
    if meets_at_rate:
        lo, hi = rate, None
        for _ in range(MAX_DOUBLINGS):
            runs += 1
            up = lo * 2 if ceiling is None else min(lo * 2, ceiling)
            if meets(up):
                lo = up
                if ceiling is not None and up >= ceiling:
                    return RateSearch(lo, lo, None, runs)
            else:
                hi = up
                break
        if hi is None:
            return RateSearch(lo, lo, None, runs)
    else:
        lo, hi = None, rate
        for _ in range(MAX_HALVINGS):
            runs += 1
            if meets(hi / 2):
                lo = hi / 2
                break
            hi /= 2
        if lo is None:
            return RateSearch(0.0, 0.0, hi, runs)
    while hi / lo > 1 + rel_tol:
        mid = math.sqrt(lo * hi)
        runs += 1
        if meets(mid):
            lo = mid
        else:
            hi = mid
    return RateSearch(lo, lo, hi, runs)
