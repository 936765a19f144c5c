"""`roofline validate --trace FILE`: compare a user's own measurements with the simulator.

A trace is a JSON list of objects or a CSV file with a header row. Each row names a configuration
— `model`, `hardware`, `batch`, `prompt_tokens`, `output_tokens`, optionally `tp`, `pp`, `cp`,
`dp`, `ep`, `cp_variant`, `gpus`, `shared_prefix_tokens`, `prefill_chunk_tokens`, `calibration`,
`methods` (a list; JSON text in a CSV cell) or any dotted scenario path such as `dtype.kv` — and
what was measured: `ttft_s` and/or `tpot_s` (mean time per output token). Each row runs through
`roofline.simulate`; a bad row gets a message naming the row and the problem, and the other rows
are still reported. CSV cells are read as YAML scalars (typed, never evaluated). No torch, no GPU.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import yaml

from roofline.api import UserError
from roofline.fileio import read_text
from roofline.profilers import validate_report as rep

MAX_TRACE_BYTES = 16 * 2**20
SHORTHANDS = {
    **{k: f"parallelism.{k}" for k in ("tp", "pp", "cp", "dp", "ep", "cp_variant")},
    **{
        k: f"workload.{k}"
        for k in ("batch", "prompt_tokens", "output_tokens", "shared_prefix_tokens", "prefill_chunk_tokens")
    },
}
TOP_LEVEL = ("model", "hardware", "gpus", "calibration", "methods", "name")
MEASURED = ("ttft_s", "tpot_s")
REQUIRED = ("model", "hardware", "batch", "prompt_tokens", "output_tokens")
CONFIG_KEYS = ("model", "hardware", "batch", "prompt_tokens", "output_tokens")


class TraceError(UserError):
    """A trace file that cannot be read at all (as opposed to one bad row)."""


def _cell(text: str):
    """A CSV cell as a typed value: '' -> None, '8' -> 8, '0.12' -> 0.12, '[...]' -> list."""
    if text is None or not text.strip():
        return None
    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, RecursionError):
        return text


def read_trace(path: str | Path) -> list:
    """Rows (dicts) from a .json or .csv trace; TraceError if the file as a whole is unusable."""
    p = Path(path)
    text = read_text(p, MAX_TRACE_BYTES, "trace file", TraceError)
    if p.suffix.lower() == ".json" or text.lstrip().startswith("["):
        try:
            rows = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise TraceError(f"{path}: not valid JSON ({str(exc)[:200]})") from None
        if not isinstance(rows, list):
            raise TraceError(f"{path}: a JSON trace must be a list of objects, one per measurement")
        return rows
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise TraceError(f"{path}: empty CSV (expected a header row: {', '.join(REQUIRED + MEASURED)})")
    rows = []
    for raw in reader:
        extra = raw.pop(None, None)  # cells beyond the header
        row = {k.strip(): _cell(v) for k, v in raw.items() if k is not None}
        if extra:
            row["__extra_cells__"] = extra
        rows.append(row)
    return rows


def _measured(row: dict, key: str):
    """(value or None, problem or None) for one measured column."""
    value = row.get(key)
    if value is None:
        return None, None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        return None, f"{key} must be a positive number of seconds, got {value!r}"
    return float(value), None


def row_scenario(row: dict, defaults: dict) -> tuple:
    """(scenario mapping, measured {metric: seconds}, problems) for one trace row."""
    if not isinstance(row, dict):
        return None, {}, [f"must be an object of column -> value, got {type(row).__name__}"]
    row = {
        **{k: v for k, v in defaults.items() if v is not None},
        **{k: v for k, v in row.items() if v is not None},
    }
    problems = []
    if "__extra_cells__" in row:
        problems.append(f"more cells than header columns: {row.pop('__extra_cells__')}")
    missing = [k for k in REQUIRED if k not in row]
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    measured = {}
    for key in MEASURED:
        value, problem = _measured(row, key)
        if problem:
            problems.append(problem)
        elif value is not None:
            measured[key] = value
    if not measured and not any(k in row for k in MEASURED):
        problems.append("needs ttft_s or tpot_s (the measured times)")
    doc: dict = {"workload": {}, "parallelism": {}}
    for key, value in row.items():
        if key in MEASURED:
            continue
        if key in SHORTHANDS:
            section, field = SHORTHANDS[key].split(".")
            doc[section][field] = value
        elif key in TOP_LEVEL:
            doc[key] = value
        elif "." in key:
            section, field = key.split(".", 1)
            doc.setdefault(section, {})
            if isinstance(doc[section], dict):
                doc[section][field] = value
        else:
            valid = ", ".join(
                list(REQUIRED) + [k for k in SHORTHANDS if k not in REQUIRED] + list(TOP_LEVEL[2:])
            )
            problems.append(
                f"unknown column {key!r} (valid: {valid}, or a dotted scenario path like dtype.kv)"
            )
    return doc, measured, problems


def validate_trace(path: str | Path, defaults: dict | None = None) -> dict:
    """Run every row through the simulator; returns the report dict (points, summary, problems)."""
    from roofline.api import simulate

    rows = read_trace(path)
    points, problems, models, hardware, calibrations = [], [], set(), set(), set()
    for n, row in enumerate(rows, start=1):
        where = f"{path}: row {n}"
        doc, measured, row_problems = row_scenario(row, defaults or {})
        if row_problems:
            problems.append(f"{where}: {'; '.join(row_problems)}")
            continue
        try:
            rec = simulate(doc).records()[0]
        except UserError as exc:
            problems.append(f"{where}: " + str(exc).replace("<scenario>: ", "").replace("\n", "; "))
            continue
        config = {"row": n, **{k: row[k] for k in CONFIG_KEYS if k in row}}
        config.update({k: v for k, v in row.items() if k not in CONFIG_KEYS and k not in MEASURED})
        for metric, value in measured.items():
            points.append(rep.point(metric, config, value, rec[metric], fits=rec["fits"]))
        models.add(rec["model"])
        hardware.add(rec["hardware"])
        calibrations.add(rec["provenance"]["calibration"])
    provenance = {
        "kind": "trace",
        "trace": str(path),
        "rows": len(rows),
        "rows_compared": len({p["config"]["row"] for p in points}),
        "model": models.pop() if len(models) == 1 else "mixed",
        "hardware": hardware.pop() if len(hardware) == 1 else "mixed",
        "calibration": sorted(calibrations),
        "date": rep.today(),
        "versions": _versions(),
        "error_definition": "(predicted - measured) / measured",
        "notes": [],
    }
    return {
        "provenance": provenance,
        "points": points,
        "summary": rep.summarize(points),
        "problems": problems,
    }


def _versions() -> dict:
    from roofline.api import versions

    return versions()
