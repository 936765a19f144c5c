"""The validation report: relative errors, their summary, and the table / JSON / Markdown forms.

A point compares one measured time with the simulator's prediction for the same configuration;
its error is the prediction's signed relative error against the measurement,
`(predicted - measured) / measured` (so +0.2 means the simulator is 20% slow). The summary gives,
per metric (`ttft_s`, `tpot_s`), the median and the 90th percentile (numpy's linear interpolation)
of the absolute errors. Measuring is left to `validate` (torch) and `validate_trace` (files); this
module needs neither torch nor a GPU.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from pathlib import Path

import numpy as np

from roofline.fileio import write_atomic
from roofline.report.format import si_time

METRICS = ("ttft_s", "tpot_s")
DEFAULT_OUT = Path("docs") / "validation"


def relative_error(measured: float, predicted: float) -> float:
    """The prediction's signed error relative to the measurement."""
    return (predicted - measured) / measured


def point(metric: str, config: dict, measured: float, predicted: float | None, **extra) -> dict:
    """One compared point; `error` is None where the simulator gave no finite prediction."""
    ok = predicted is not None and math.isfinite(predicted)
    return {
        "metric": metric,
        "config": config,
        "measured_s": measured,
        "predicted_s": predicted if ok else None,
        "error": relative_error(measured, predicted) if ok else None,
        **extra,
    }


def summarize(points: list, key: str = "metric", groups=METRICS) -> dict:
    """group -> n, median and p90 of |error|, mean signed error (None where no point has one).

    Points are grouped by `key` (the metric, or a kernel point's method); `groups=None` takes the
    groups found in the points, in order. Points without an error (skipped) do not count."""
    out = {}
    for group in groups if groups is not None else dict.fromkeys(p[key] for p in points):
        errors = np.array([p["error"] for p in points if p[key] == group and p.get("error") is not None])
        absolute = np.abs(errors)
        out[group] = {
            "n": int(errors.size),
            "median_abs_error": float(np.median(absolute)) if errors.size else None,
            "p90_abs_error": float(np.percentile(absolute, 90)) if errors.size else None,
            "mean_error": float(errors.mean()) if errors.size else None,
        }
    return out


def _pct(x) -> str:
    return "-" if x is None else f"{x * 100:+.1f}%"


def _abs_pct(x) -> str:
    return "-" if x is None else f"{x * 100:.1f}%"


def _config_text(config: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in config.items())


def _table(header: list, rows: list) -> list:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def points_table(points: list) -> list:
    rows = [
        [
            p["metric"],
            _config_text(p["config"]),
            si_time(p["measured_s"]),
            si_time(p["predicted_s"]),
            _pct(p["error"]),
        ]
        for p in points
    ]
    return _table(["metric", "configuration", "measured", "predicted", "error"], rows)


def summary_table(summary: dict) -> list:
    rows = [
        [m, s["n"], _abs_pct(s["median_abs_error"]), _abs_pct(s["p90_abs_error"]), _pct(s["mean_error"])]
        for m, s in summary.items()
    ]
    return _table(["metric", "points", "median abs error", "p90 abs error", "mean error"], rows)


def kernels_table(kernels: dict) -> list:
    if "skipped" in kernels:
        return [f"Method kernels: skipped ({kernels['skipped']})."]
    rows = []
    for k in kernels.get("points", []):
        rows.append(
            [k["method"], _config_text(k["config"]), si_time(k.get("measured_s")), si_time(k.get("predicted_s")),
             _pct(k.get("error")) if "skipped" not in k else f"skipped: {k['skipped']}"]
        )  # fmt: skip
    lines = _table(["method", "kernel configuration", "measured", "predicted (attention ops)", "error"], rows)
    summary = [
        [method, s["n"], _abs_pct(s["median_abs_error"]), _abs_pct(s["p90_abs_error"])]
        for method, s in kernels.get("summary", {}).items()
    ]
    return lines + [""] + _table(["method", "points", "median abs error", "p90 abs error"], summary)


def render_text(report: dict) -> str:
    """The printed table: points, summary, kernels and notes (problems go to stderr, and the files)."""
    lines = points_table(report["points"]) + [""] + summary_table(report["summary"])
    if report.get("kernels"):
        lines += [""] + kernels_table(report["kernels"])
    for note in report["provenance"].get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


def render_markdown(report: dict) -> str:
    prov = report["provenance"]
    lines = [f"# Validation: {prov['model']} on {prov['hardware']} ({prov['date']})", ""]
    for key, value in prov.items():
        if key != "notes":
            lines.append(f"- **{key}**: {json.dumps(value) if isinstance(value, (dict, list)) else value}")
    lines += ["", "## Summary", ""] + summary_table(report["summary"])
    lines += ["", "## Points", ""] + points_table(report["points"])
    if report.get("kernels"):
        lines += ["", "## Method kernels", ""] + kernels_table(report["kernels"])
    if prov.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in prov["notes"]]
    if report.get("problems"):
        lines += ["", "## Skipped", ""] + [f"- {p}" for p in report["problems"]]
    return "\n".join(lines) + "\n"


def today() -> str:
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", str(text)).strip("-") or "unnamed"


def write_report(report: dict, out_dir: str | Path | None = None) -> tuple:
    """Write <hardware>-<model>-<date>.json and .md (atomically) into out_dir; returns both paths."""
    prov = report["provenance"]
    directory = Path(out_dir) if out_dir is not None else DEFAULT_OUT
    stem = f"{slug(prov['hardware'])}-{slug(prov['model'])}-{prov['date']}"
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    write_atomic(json_path, json.dumps(report, indent=2, allow_nan=False) + "\n")
    write_atomic(md_path, render_markdown(report))
    return json_path, md_path
