"""Rewrite the golden records of every shipped scenario (tests/golden/<scenario>.json).

Run only when a number is meant to change, and say why in the commit that carries the new files:
    python tests/golden/regenerate.py
Records are written without `provenance.versions` (which names the installed package versions).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import roofline

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE.parents[1] / "scenarios"


def records(path: Path) -> list:
    out = roofline.simulate(str(path)).records()
    for rec in out:
        rec["provenance"].pop("versions", None)
    return out


def main() -> int:
    for path in sorted(SCENARIOS.glob("*.yaml")):
        target = HERE / f"{path.stem}.json"
        target.write_text(json.dumps(records(path), indent=1, sort_keys=True) + "\n")
        print(f"wrote {target.relative_to(HERE.parents[1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
