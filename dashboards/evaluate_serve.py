"""What the Serve page asks of the serving simulator, through the public API only
(`roofline.serve`): one run of the page's traffic (`serve_point`) and the same traffic at several
arrival rates (`rate_curve`). No formula lives here: every number is a `roofline.serve` record's.

Every run first passes `evaluate.check_references` (zoo models, uploaded configs and the calibration
folder's profiles only) and `serve_state.file_problems` (no trace, no histogram file): whatever a
request carries, the server opens no file it names.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

from roofline.api import ScenarioError, serve
from roofline.dashboards.evaluate import check_references
from roofline.dashboards.serve_state import MAX_REQUESTS, file_problems

# The rate curve's offered rates, as multiples of the page's rate (1x is the KPIs' run), in the
# order they are run: when the time budget cuts the curve short, what is left still spans the range.
RATE_MULTIPLES = (1.0, 2.0, 0.5, 1.5, 0.25, 0.75, 1.25)
# The knee: the highest offered rate at which at least this share of requests meets the SLOs.
KNEE_ATTAINMENT = 0.9


def check(doc: dict) -> None:
    """Raise ScenarioError unless the dashboard may run this serving scenario."""
    check_references({k: v for k, v in doc.items() if k != "serving"})
    problems = file_problems(doc)
    requests = (doc.get("serving") or {}).get("requests")
    if isinstance(requests, int) and requests > MAX_REQUESTS:
        problems.append(f"serving.requests: at most {MAX_REQUESTS:,} per run in the dashboard")
    if problems:
        raise ScenarioError(problems)


def serve_point(doc: dict):
    """One `roofline.serve` run of the page's scenario: a ServeResult."""
    check(doc)
    return serve(doc)


@dataclass
class RateCurve:
    """The rate curve's points, in offered-rate order: each a `roofline.serve` record."""

    rates: list = field(default_factory=list)  # offered requests/s
    records: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # rates left out to stay within the time budget

    def knee(self, target: float = KNEE_ATTAINMENT):
        """The highest offered rate whose SLO attainment is at least `target`, below the first
        that falls under it (None: the lowest rate already misses it)."""
        best = None
        for rate, rec in zip(self.rates, self.records):
            if rec["slo_attainment"] < target:
                break
            best = rate
        return best


def rate_curve(doc: dict, multiples=RATE_MULTIPLES, budget_s: float | None = None) -> RateCurve:
    """The page's traffic at `multiples` of its arrival rate, one `roofline.serve` run each, in the
    order given (the first always runs). With `budget_s`, a rate is started only while the runs so
    far, plus one more of the slowest so far, fit in it; the rest are listed in `skipped`. The
    points come back in offered-rate order."""
    check(doc)
    rate = (doc["serving"].get("arrival") or {}).get("rate_per_s")
    if rate is None:
        raise ScenarioError(
            ["the rate curve needs an arrival rate (serving.arrival.rate_per_s); offline runs have none"]
        )
    start, slowest = time.monotonic(), 0.0
    points = {}
    out = RateCurve()
    for m in multiples:
        elapsed = time.monotonic() - start
        if budget_s is not None and points and elapsed + slowest > budget_s:
            out.skipped.append(rate * m)
            continue
        variant = copy.deepcopy(doc)
        variant["serving"]["arrival"] = {"rate_per_s": rate * m}
        t0 = time.monotonic()
        points[m] = serve(variant).record
        slowest = max(slowest, time.monotonic() - t0)
    for m in sorted(points):
        out.rates.append(rate * m)
        out.records.append(points[m])
    out.skipped.sort()
    return out
