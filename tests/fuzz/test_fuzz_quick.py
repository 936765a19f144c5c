"""The quick fuzz slice that runs in CI: a few hundred seeded cases (scenario YAML, config.json,
calibration profiles, odd paths, CLI flags), each of which must end in a result or a clean error
(a UserError / exit code 2 with a bounded message and no traceback) within a time bound. The long
run is `python tests/fuzz/run.py` (10,000 cases, counts of outcomes)."""

from __future__ import annotations

import collections
import time

import pytest
from fuzz_cases import make_case
from fuzz_harness import run_case

QUICK_SEEDS = range(1_000_000, 1_000_300)  # fixed: CI reruns the same cases
CASE_LIMIT_S = 5.0  # one case (bound 2 s for the inputs themselves; slack for a loaded CI runner)
SLICE_LIMIT_S = 20.0


def test_quick_fuzz_slice(tmp_path):
    start = time.perf_counter()
    outcomes = collections.Counter()
    bad = []
    for seed in QUICK_SEEDS:
        case = make_case(seed, tmp_path / str(seed))
        outcome = run_case(case, CASE_LIMIT_S)
        outcomes[outcome.kind] += 1
        if outcome.kind not in ("result", "clean error"):
            bad.append(f"seed {seed} ({case.what}): {outcome.label} {outcome.detail[:200]!r}")
    elapsed = time.perf_counter() - start
    assert not bad, "\n".join(bad)
    assert outcomes["result"] > 20 and outcomes["clean error"] > 100, dict(outcomes)
    assert elapsed < SLICE_LIMIT_S, f"{len(QUICK_SEEDS)} cases took {elapsed:.1f} s"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cases_are_reproducible(tmp_path, seed):
    a, b = make_case(seed, tmp_path / "a"), make_case(seed, tmp_path / "b")
    assert (a.kind, a.what, a.argv[:1]) == (b.kind, b.what, b.argv[:1])
