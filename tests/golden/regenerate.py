"""Rewrite the golden records of every shipped scenario (tests/golden/<scenario>.json) and the
golden output of the `roofline` commands that print results (tests/golden/cli/<case>.txt).

Run only when a number or a printed line is meant to change, and say why in the commit that carries
the new files:
    python tests/golden/regenerate.py
Records are written without `provenance.versions` (which names the installed package versions).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path

import roofline

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE.parents[1] / "scenarios"


def is_serving(path) -> bool:
    """A scenario with a `serving:` section runs through `roofline serve`, not `simulate`."""
    import yaml

    doc = yaml.safe_load(Path(path).read_text())
    return isinstance(doc, dict) and isinstance(doc.get("serving"), dict)


def records(path: Path) -> list:
    if is_serving(path):
        res = roofline.serve(str(path))
        out = [r.record for r in (res if isinstance(res, list) else [res])]
    else:
        out = roofline.simulate(str(path)).records()
    for rec in out:
        rec["provenance"].pop("versions", None)
    return out


def _scenario(name: str) -> str:
    return str(SCENARIOS / f"{name}.yaml")


CLI = HERE / "cli"
# case -> argv: every printing command in its table form, a sweep, a detailed sweep point, host
# memory, compare with warnings, plan with and without an SLA that some layout meets.
CLI_CASES = {
    "simulate-single": ["simulate", _scenario("llama3-8b-128k-h100")],
    "simulate-sweep": ["simulate", _scenario("context-by-gpu-sweep")],
    "simulate-sweep-point": ["simulate", _scenario("context-by-gpu-sweep"), "--point", "2"],
    "simulate-host": ["simulate", _scenario("shadowkv-122k-batch-a100")],
    "simulate-csv": ["simulate", _scenario("context-by-gpu-sweep"), "--format", "csv"],
    "compare": [
        "compare",
        _scenario("llama3-8b-1m-decode-a100-stack"),
        "--methods",
        "weight_quant+kv_quant,duo_attention,weight_quant+kv_quant+duo_attention+quest",
    ],
    "plan": [
        "plan",
        _scenario("llama3-70b-8xh100-tp8"),
        "--gpus-max",
        "16",
        "--tpot-max",
        "0.03",
        "--hardware",
        "h100-sxm,h200",
    ],
    "plan-all-no-sla": [
        "plan",
        _scenario("llama3-8b-4k-h100"),
        "--gpus-max",
        "4",
        "--all",
        "--ttft-max",
        "1e-9",
    ],
    "serve": ["serve", _scenario("serve-llama3-8b-h100")],
    "hw-list": ["hw", "list"],
    "hw-show": ["hw", "show", "h100-sxm"],
    "models-list": ["models", "list"],
    "models-show": ["models", "show", "deepseek-v3", "--kv-dtype", "fp8"],
    "models-show-hybrid": ["models", "show", "jamba-1.5-mini"],
    "methods": ["methods"],
    "methods-one": ["methods", "kv_quant"],
}


def cli_output(argv: list) -> str:
    """What `roofline ARGV` prints: its exit code, stdout, and stderr when there is any."""
    from roofline.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    text = f"exit {rc}\n{out.getvalue()}"
    return text + (f"--- stderr\n{err.getvalue()}" if err.getvalue() else "")


def main() -> int:
    for path in sorted(SCENARIOS.glob("*.yaml")):
        target = HERE / f"{path.stem}.json"
        target.write_text(json.dumps(records(path), indent=1, sort_keys=True) + "\n")
        print(f"wrote {target.relative_to(HERE.parents[1])}")
    CLI.mkdir(exist_ok=True)
    for case, argv in CLI_CASES.items():
        target = CLI / f"{case}.txt"
        target.write_text(cli_output(argv))
        print(f"wrote {target.relative_to(HERE.parents[1])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
