"""Golden records: every shipped scenario's JSON records, exactly as committed in tests/golden/.

A refactor must leave every number where it was. When a number is meant to change (a documented
bug fix or model change), regenerate with `python tests/golden/regenerate.py` and state the reason
in the commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))
from regenerate import SCENARIOS, records  # noqa: E402

PATHS = sorted(SCENARIOS.glob("*.yaml"))


def test_every_scenario_has_a_golden_record():
    assert {p.stem for p in PATHS} == {p.stem for p in GOLDEN.glob("*.json")}


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_records_equal_the_golden_ones(path):
    expected = json.loads((GOLDEN / f"{path.stem}.json").read_text())
    # Through JSON, as users get them (floats printed with repr, so equality is exact).
    assert json.loads(json.dumps(records(path))) == expected
