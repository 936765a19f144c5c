"""Every field of every user-facing input set in turn to bad values: each must either still work or
end in the input's own clear error, never another exception.

Where `run.py` draws random mutations, this walks the fields systematically, one at a time:
hardware spec files and fabrics.yaml (parse), zoo config.json files (load and simulate), a shipped
calibration profile (parse, and simulate a sample of what parses), serving traces (parse), the
scenario and serving schemas (simulate / serve) and the CLI's `--set`. Session 27 found 1,000+
tracebacks with it (hardware specs, config.json nulls, a profile's grid axes, an infinite trace
length), all fixed; run it after changing a parser.

    python tests/fuzz/field_sweep.py                  # every sweep (a few minutes)
    python tests/fuzz/field_sweep.py hardware traces  # some of them
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import random
import sys
import tempfile
import uuid
from pathlib import Path

import yaml

import roofline
from roofline.api import UserError
from roofline.cli.main import main as cli_main
from roofline.hwspecs import HERE as HW_DIR
from roofline.hwspecs import parse_fabrics, parse_hardware
from roofline.simulator.calibration import CalibrationError, parse_profile
from roofline.simulator.scenario_schema import SCHEMA
from roofline.simulator.serving.config import SERVING_SCHEMA
from roofline.simulator.serving.traces import TraceError, parse_trace

ROOT = Path(__file__).resolve().parents[2]
BAD = (None, 0, -1, "x", 1.5, [], {}, True, float("nan"), float("inf"), 10**30)
BAD_TEXT = ("", "x", "-1", "0", "1.5", "nan", "inf", "1e400", "[]", "{}", "null", "true")
SMALL = {"batch": 2, "prompt_tokens": 4096, "output_tokens": 8}


def leaf_paths(doc, depth: int) -> list:
    """Key paths into `doc` down to `depth` (a list's first and last items stand for it)."""
    out = []

    def walk(node, path, level):
        if level > depth:
            return
        if isinstance(node, dict):
            for key, value in node.items():
                out.append(path + [key])
                walk(value, path + [key], level + 1)
        elif isinstance(node, list) and node:
            out.append(path + [0])
            walk(node[0], path + [0], level + 1)
            if len(node) > 1:
                out.append(path + [len(node) - 1])

    walk(doc, [], 0)
    return out


def mutated(doc, path, value):
    """A deep copy of `doc` with the field at `path` set to `value`."""
    new = copy.deepcopy(doc)
    node = new
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return new


class Tally:
    """Cases run and the failures (anything but the expected errors), by where and what."""

    def __init__(self, name: str):
        self.name, self.cases, self.failures = name, 0, {}

    def run(self, label, fn, expected=(UserError,)):
        self.cases += 1
        try:
            fn()
        except expected:
            pass
        except Exception as exc:  # the finding
            self.failures[(label, type(exc).__name__)] = str(exc)[:160]

    def report(self) -> int:
        print(f"{self.name}: {self.cases} cases, {len(self.failures)} failures")
        for (label, kind), text in sorted(self.failures.items(), key=str)[:25]:
            print(f"  {label}: {kind}: {text}")
        return len(self.failures)


def sweep_hardware() -> Tally:
    t = Tally("hardware specs")
    for path in sorted(HW_DIR.glob("*.yaml")):
        if path.stem == "fabrics":
            continue
        doc = yaml.safe_load(path.read_text())
        for keys in leaf_paths(doc, 3):
            for value in BAD:
                bad = mutated(doc, keys, value)
                where = path.name
                t.run(
                    (where, tuple(keys), repr(value)), lambda bad=bad, where=where: parse_hardware(bad, where)
                )
    return t


def sweep_fabrics() -> Tally:
    t = Tally("fabrics.yaml")
    doc = yaml.safe_load((HW_DIR / "fabrics.yaml").read_text())
    for keys in leaf_paths(doc, 2):
        for value in BAD:
            bad = mutated(doc, keys, value)
            t.run((tuple(keys), repr(value)), lambda bad=bad: parse_fabrics(bad, "fabrics.yaml"))
    return t


def _simulate(doc, workdir: Path, **fields):
    """Simulate with `doc` written as a config.json of its own folder (models load once per path)."""
    folder = workdir / uuid.uuid4().hex
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(doc))
    roofline.simulate({"model": str(folder / "config.json"), "hardware": "h100-sxm", **fields}).records()


def sweep_configs(workdir: Path) -> Tally:
    t = Tally("zoo config.json")
    for path in sorted((ROOT / "models" / "zoo").glob("*.json")):
        base = json.loads(path.read_text())
        sections = [[]] + ([["text_config"]] if isinstance(base.get("text_config"), dict) else [])
        for section in sections:
            node = base if not section else base[section[0]]
            for key in list(node):
                for value in BAD:
                    bad = mutated(base, section + [key], value)
                    label = (path.name, key, repr(value))
                    t.run(label, lambda bad=bad: _simulate(bad, workdir, workload=SMALL))
    return t


def sweep_profile(workdir: Path, name: str = "a100-80gb-sxm.vllm", sample: float = 0.15) -> Tally:
    t = Tally(f"calibration profile {name}")
    doc = yaml.safe_load((HW_DIR / "calibration" / f"{name}.yaml").read_text())
    hardware, framework = name.split(".")[0], name.split(".")[1]
    rng = random.Random(0)
    for keys in leaf_paths(doc, 5):
        for value in BAD:
            bad = mutated(doc, keys, value)
            label = (tuple(map(str, keys)), repr(value))
            t.run(label, lambda bad=bad: parse_profile(bad, "p.yaml"), (CalibrationError,))
            if rng.random() > sample:
                continue

            def simulate(bad=bad):
                try:
                    parse_profile(bad, "p.yaml")
                except CalibrationError:
                    return
                path = workdir / f"{uuid.uuid4().hex}.yaml"
                path.write_text(yaml.safe_dump(bad))
                roofline.simulate(
                    {
                        "model": "llama-3.1-8b",
                        "hardware": hardware,
                        "calibration": str(path),
                        "runtime": {"framework": framework},
                        "workload": SMALL,
                    }
                ).records()

            t.run(label + ("simulated",), simulate)
    return t


def sweep_traces() -> Tally:
    t = Tally("serving traces")
    row = {"arrival_s": 0.5, "prompt_tokens": 100, "output_tokens": 10, "prefix_id": "p", "prefix_tokens": 20}
    for key in list(row) + ["extra"]:
        for value in BAD:
            text = json.dumps({**row, key: value}) + "\n" + json.dumps(row) + "\n"
            t.run(("jsonl", key, repr(value)), lambda text=text: parse_trace(text, "t.jsonl"), (TraceError,))
    result = {"input_lens": [10, 20], "output_lens": [5, 6], "request_rate": "inf"}
    for key in result:
        for value in BAD:
            text = json.dumps({**result, key: value})
            t.run(("vllm", key, repr(value)), lambda text=text: parse_trace(text, "r.json"), (TraceError,))
    for column in range(3):
        for cell in BAD_TEXT:
            cells = ["0.5", "100", "10"]
            cells[column] = cell
            text = "arrival_s,prompt_tokens,output_tokens\n" + ",".join(cells) + "\n"
            t.run(("csv", column, cell), lambda text=text: parse_trace(text, "t.csv"), (TraceError,))
    return t


def _set(doc: dict, path: str, value) -> dict:
    new = copy.deepcopy(doc)
    node = new
    for key in path.split(".")[:-1]:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[path.split(".")[-1]] = value
    return new


def sweep_schemas() -> Tally:
    t = Tally("scenario and serving fields")
    base = {"model": "llama-3.1-8b", "hardware": "h100-sxm", "workload": SMALL}
    for path in SCHEMA:
        for value in BAD:
            doc = _set(base, path, value)
            t.run(("simulate", path, repr(value)), lambda doc=doc: roofline.simulate(doc).records())
    serve = {
        "model": "llama-3.1-8b",
        "hardware": "h100-sxm",
        "serving": {
            "requests": 20,
            "arrival": {"rate_per_s": 5.0},
            "prompt_tokens": 512,
            "output_tokens": 16,
        },
    }
    for path in SERVING_SCHEMA:
        for value in BAD:
            doc = _set(serve, path, value)
            t.run(("serve", path, repr(value)), lambda doc=doc: roofline.serve(doc).record)
    return t


def _cli(argv):
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli_main(argv)
    except SystemExit:
        pass
    if "Traceback" in err.getvalue():
        raise RuntimeError(err.getvalue()[-160:])


def sweep_cli() -> Tally:
    t = Tally("CLI --set")
    one = [
        "simulate",
        "--model",
        "llama-3.1-8b",
        "--hardware",
        "h100-sxm",
        "--prompt",
        "4096",
        "--output",
        "8",
    ]
    for path in SCHEMA:
        for text in BAD_TEXT:
            argv = one + ["--set", f"{path}={text}", "--format", "json"]
            t.run(("simulate", path, text), lambda argv=argv: _cli(argv))
    serve = ["serve", str(ROOT / "scenarios" / "serve-llama3-8b-h100.yaml"), "--set", "serving.requests=20"]
    for path in SERVING_SCHEMA:
        for text in BAD_TEXT:
            argv = serve + ["--set", f"{path}={text}", "--format", "json"]
            t.run(("serve", path, text), lambda argv=argv: _cli(argv))
    return t


SWEEPS = ("hardware", "fabrics", "configs", "profile", "traces", "schemas", "cli")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweeps", nargs="*", help=f"which of {', '.join(SWEEPS)} (default: all)")
    args = ap.parse_args(argv)
    unknown = [name for name in args.sweeps if name not in SWEEPS]
    if unknown:
        ap.error(f"unknown sweep {', '.join(unknown)}; valid: {', '.join(SWEEPS)}")
    chosen = args.sweeps or list(SWEEPS)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        runs = {
            "hardware": sweep_hardware,
            "fabrics": sweep_fabrics,
            "configs": lambda: sweep_configs(workdir),
            "profile": lambda: sweep_profile(workdir),
            "traces": sweep_traces,
            "schemas": sweep_schemas,
            "cli": sweep_cli,
        }
        for name in chosen:
            failures += runs[name]().report()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
