"""Golden CLI output: what `roofline simulate`, `compare`, `plan`, `hw`, `models` and `methods` print,
byte for byte, as committed in tests/golden/cli/. Moving formatting code between the CLI and the
report layer must leave every character where it was; when output is meant to change, regenerate
with `python tests/golden/regenerate.py` and state the reason in the commit.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN))
from regenerate import CLI, CLI_CASES, cli_output  # noqa: E402


def test_every_case_has_a_golden_output():
    assert set(CLI_CASES) == {p.stem for p in CLI.glob("*.txt")}


@pytest.mark.parametrize("case", CLI_CASES)
def test_output_equals_the_golden_one(case):
    assert cli_output(CLI_CASES[case]) == (CLI / f"{case}.txt").read_text()
