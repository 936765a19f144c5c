"""`roofline validate --trace FILE`: compare a user's own measurements with the simulator.

A trace is a JSON list of objects or a CSV file with a header row. Each row names a configuration
— `model`, `hardware`, `batch`, `prompt_tokens`, `output_tokens`, optionally `tp`, `pp`, `cp`,
`dp`, `ep`, `cp_variant`, `gpus`, `shared_prefix_tokens`, `prefill_chunk_tokens`, `calibration`,
`methods` (a list; JSON text in a CSV cell) or any dotted scenario path such as `dtype.kv` — and
what was measured: `ttft_s` and/or `tpot_s` (mean time per output token). Each row runs through
`roofline.simulate`; a bad row gets a message naming the row and the problem, and the other rows
are still reported; a trace with no row to compare is an error. CSV cells are read as YAML scalars
(typed, never evaluated). No torch, no GPU.

Serving benchmarks' own result files are read as they are (`trace_formats`): vLLM
`benchmark_serving` JSON, SGLang `bench_serving` and `bench_one_batch` JSONL. They name no GPU (give
--hardware) and their model may be given with --model instead of the file's.
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
from roofline.profilers.trace_formats import benchmark_rows, parse_json_lines

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
    """Rows (dicts) from a trace; TraceError if the file as a whole is unusable."""
    return read_trace_rows(path)[0]


def read_trace_rows(path: str | Path) -> tuple:
    """(rows, format) from a .json / .jsonl / .csv trace: our own rows, or a serving benchmark's
    result file (`trace_formats`); TraceError if the file as a whole is unusable."""
    p = Path(path)
    text = read_text(p, MAX_TRACE_BYTES, "trace file", TraceError)
    if p.suffix.lower() in (".json", ".jsonl") or text.lstrip().startswith(("[", "{")):
        objects = parse_json_lines(text)
        if objects is None:
            try:
                json.loads(text)
            except (json.JSONDecodeError, RecursionError) as exc:
                raise TraceError(f"{path}: not valid JSON ({str(exc)[:200]})") from None
            raise TraceError(f"{path}: not valid JSON")
        if len(objects) == 1 and isinstance(objects[0], list):
            return objects[0], "roofline rows"
        found = benchmark_rows(objects)
        if found is None:
            raise TraceError(
                f"{path}: a JSON trace must be a list of objects, one per measurement, or a vLLM "
                "benchmark_serving / SGLang bench_serving or bench_one_batch result"
            )
        return found
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
    return rows, "roofline rows"


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
    if "__problem__" in row:
        return None, {}, [row["__problem__"]]
    if "__extra_cells__" in row:
        problems.append(f"more cells than header columns: {row.pop('__extra_cells__')}")
    missing = [k for k in REQUIRED if k not in row]
    if missing:
        flags = [f"--{k}" for k in missing if k in ("model", "hardware")]
        problems.append(f"missing {', '.join(missing)}" + (f" (give {' and '.join(flags)})" if flags else ""))
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

    rows, form = read_trace_rows(path)
    defaults = dict(defaults or {})
    notes = []
    if form != "roofline rows":
        # a benchmark's model id may not be one we know: --model replaces it
        if defaults.get("model"):
            rows = [dict(r, model=defaults["model"]) if isinstance(r, dict) else r for r in rows]
        batches = sorted(
            {r.get("batch") for r in rows if isinstance(r, dict) and isinstance(r.get("batch"), int)}
        )
        notes.append(f"read as a {form} result: {len(rows)} rows")
        if "serving" in form and batches and batches[-1] > 1:
            notes.append(
                f"requests measured under continuous batching at concurrency {', '.join(map(str, batches))} are "
                "compared with a static batch of that size (whole-batch TTFT): approximate"
            )
    points, problems, models, hardware, calibrations = [], [], set(), set(), set()
    for n, row in enumerate(rows, start=1):
        where = f"{path}: row {n}"
        doc, measured, row_problems = row_scenario(row, defaults)
        if row_problems:
            problems.append(f"{where}: {'; '.join(row_problems)}")
            continue
        try:
            rec = simulate(doc).records()[0]
        except UserError as exc:
            problems.append(f"{where}: " + str(exc).replace("<scenario>: ", "").replace("\n", "; "))
            continue
        row = {**{k: v for k, v in defaults.items() if v is not None and k != "calibration"}, **row}
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
        "notes": notes,
    }
    if not points:
        shown = "\n".join(problems[:5]) + (f"\n... and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise TraceError(
            f"{path}: no row of the trace could be compared" + (f":\n{shown}" if shown else " (it is empty)")
        )
    return {
        "provenance": provenance,
        "points": points,
        "summary": rep.summarize(points),
        "problems": problems,
    }


def _versions() -> dict:
    from roofline.api import versions

    return versions()
