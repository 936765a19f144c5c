"""Read calibration profiles (hwspecs/calibration/*.yaml) and validation reports
(docs/validation/*.json) for the Calibration page, tolerating whatever keys are present.

A profile is walked as a tree: every mapping with a `points:` list becomes a measured-vs-fitted
curve (points as {x-like, measured-like, fitted-like} mappings or [x, measured, fitted] lists; a
`fit:` of the simulator's efficiency curve {e_max, x_half, p} or of a collective's alpha-beta model
is evaluated by the code that defines it, never re-implemented here),
every `provenance:` mapping is shown as provenance, entries marked `skipped:` become notes. A
validation report is walked the same way for mappings holding both a measured and a predicted
time. Files are size-limited and parsed with yaml.safe_load / json only; a file that cannot be
read is listed with the reason.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from pathlib import Path

import numpy as np

from roofline.api import UserError
from roofline.fileio import read_text
from roofline.report.profiles import read_profile_document

MAX_FILE_BYTES = 8 * 2**20

X_KEYS = ("x", "bytes", "tokens", "size", "seq_len", "context", "kv_tokens", "batch", "m", "n", "k", "flops")
MEASURED_KEYS = (
    "efficiency",
    "measured",
    "measured_s",
    "seconds",
    "time_s",
    "measured_efficiency",
    "achieved",
    "y",
)
FITTED_KEYS = ("fitted", "fitted_s", "predicted", "predicted_s", "fit", "fitted_efficiency", "model_s")
VALIDATION_MEASURED = ("measured_s", "measured", "measured_time_s", "measured_seconds")
VALIDATION_PREDICTED = ("predicted_s", "predicted", "predicted_time_s", "predicted_seconds")
LABEL_KEYS = ("label", "name", "case", "model", "phase", "op", "kind", "shape")  # besides metric/method


class ProfileError(UserError):
    """A file the page cannot read."""


def _number(v) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _first(keys, mapping: dict):
    return next((k for k in keys if _number(mapping.get(k)) is not None), None)


def read_file(path: Path):
    """A validation report (.json) or a calibration profile (YAML, read by `roofline.report.profiles`;
    parsed once per file version: shipped profiles hold large grids)."""
    if path.suffix != ".json":
        st = path.stat()
        return copy.deepcopy(_read_profile_cached(str(path), st.st_mtime_ns, st.st_size))
    text = read_text(path, MAX_FILE_BYTES, "validation report", ProfileError)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProfileError(f"not valid JSON: {str(exc)[:300]}") from None
    except RecursionError:
        raise ProfileError("nested too deeply") from None


def grid_summary(grids: dict) -> list:
    """[(grid kind, what it is)] of a profile's measured grids: axes, cells and held-out error (their
    thousands of values are for the engine, not for reading)."""
    out = []
    for kind, g in grids.items():
        if not isinstance(g, dict):
            out.append((str(kind), str(g)[:200]))
            continue
        shape = g.get("shape") if isinstance(g.get("shape"), list) else []
        hold = g.get("holdout") if isinstance(g.get("holdout"), dict) else {}
        text = f"over {', '.join(map(str, g.get('axes') or []))}; {' x '.join(map(str, shape))} cells"
        if hold:
            text += (
                f"; held out: median {hold.get('median', float('nan')):.1%}, "
                f"p90 {hold.get('p90', float('nan')):.1%} ({hold.get('rows', '?')} kernels)"
            )
        if g.get("m_tile"):
            text += f"; rows computed in tiles of {g['m_tile']}"
        if isinstance(g.get("call_s"), (int, float)) and g["call_s"]:
            text += f"; fixed time per call {g['call_s'] * 1e6:.1f} us"
        if isinstance(g.get("shapes"), list) and g["shapes"]:
            text += f"; {len(g['shapes'])} measured model shapes priced as measured"
        out.append((str(kind), text))
    return out


@functools.lru_cache(maxsize=64)
def _read_profile_cached(path: str, mtime_ns: int, size: int):
    return read_profile_document(Path(path), ProfileError)


def flat_items(mapping: dict, prefix: str = "") -> list:
    """[(dotted key, value text)] of a mapping, lists of scalars joined."""
    out = []
    for k, v in mapping.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out += flat_items(v, key + ".")
        elif isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v):
            out.append((key, ", ".join(map(str, v))))
        elif isinstance(v, list):
            out.append((key, f"[{len(v)} entries]"))
        else:
            out.append((key, str(v)))
    return out


def _fit_model(entry: dict):
    """The fitted curve of an entry as a function of x, through the code that defines it: the
    efficiency curve `fit: {e_max, x_half, p}` (simulator.calibration.hill) or a collective's
    alpha-beta `fit: {alpha_s, beta_Bps}` with `latency_steps` and `busbw_factor`
    (profilers.fitting); None for any other fit."""
    fit = entry.get("fit")
    if not isinstance(fit, dict):
        return None
    hill_params = [_number(fit.get(k)) for k in ("e_max", "x_half", "p")]
    if all(v is not None for v in hill_params):
        from roofline.api import hill

        return lambda xs: hill(xs, *hill_params)
    alpha, beta = _number(fit.get("alpha_s")), fit.get("beta_Bps")
    steps, factor = _number(entry.get("latency_steps")), _number(entry.get("busbw_factor"))
    if alpha is None or steps is None or factor is None or isinstance(beta, bool):
        return None
    try:
        beta = float(beta)
    except (TypeError, ValueError):
        return None
    from roofline.profilers.fitting import AlphaBetaFit

    return lambda xs: AlphaBetaFit(alpha, beta, 0.0).seconds(xs, int(steps), factor)


def curve_from(entry: dict, title: str) -> dict | None:
    """A {title, x_label, y_label, x, measured, fitted, params} curve from a mapping with points."""
    xs, measured, fitted = [], [], []
    x_key = m_key = f_key = None
    for p in entry.get("points") or []:
        if isinstance(p, (list, tuple)) and len(p) >= 2:
            x, m, f = _number(p[0]), _number(p[1]), _number(p[2]) if len(p) > 2 else None
        elif isinstance(p, dict):
            x_key = x_key or _first(X_KEYS, p)
            m_key = m_key or _first(MEASURED_KEYS, p)
            if x_key is None or m_key is None:
                numeric = [k for k in p if _number(p[k]) is not None and k not in FITTED_KEYS]
                x_key = x_key or (numeric[0] if numeric else None)
                m_key = m_key or next((k for k in numeric if k != x_key), None)
            f_key = f_key or _first(FITTED_KEYS, p)
            x, m = _number(p.get(x_key)), _number(p.get(m_key))
            f = _number(p.get(f_key)) if f_key else None
        else:
            continue
        if x is None or m is None:
            continue
        xs.append(x)
        measured.append(m)
        fitted.append(f)
    if not xs:
        return None
    model = _fit_model(entry)
    line = None
    if model is not None:
        if all(f is None for f in fitted):
            fitted = [float(v) for v in model(xs)]
        lo, hi = min(xs), max(xs)
        grid = [float(v) for v in (np.geomspace(lo, hi, 120) if lo > 0 else np.linspace(lo, hi, 120))]
        line = (grid, [float(v) for v in model(grid)])
    params = flat_items({k: v for k, v in entry.items() if k != "points" and not isinstance(v, list)})
    x_label = entry.get("x") if isinstance(entry.get("x"), str) else x_key  # a profile names its x
    return {
        "title": title,
        "x_label": x_label or "x",
        "y_label": m_key or "measured",
        "x": xs,
        "measured": measured,
        "fitted": fitted,
        "fit_line": line,  # (x, y) of the fitted curve over the measured range, when known
        "params": params,
    }


def walk_profile(doc, path: tuple = ()) -> dict:
    """{'curves': [...], 'provenance': [(title, items)], 'notes': [...]} from a profile tree."""
    out = {"curves": [], "provenance": [], "notes": []}
    if not isinstance(doc, dict):
        return out
    title = " / ".join(map(str, path))
    if isinstance(doc.get("points"), list):
        curve = curve_from(doc, title or "curve")
        if curve:
            out["curves"].append(curve)
        else:
            out["notes"].append(f"{title}: no numeric points")
    if "skipped" in doc:
        out["notes"].append(f"{title}: skipped ({doc['skipped']})")
    for k, v in doc.items():
        if k == "provenance" and isinstance(v, dict):
            out["provenance"].append((title, flat_items(v)))
        elif isinstance(v, dict) and k not in ("fit",):
            sub = walk_profile(v, (*path, k))
            for key in out:
                out[key] += sub[key]
    return out


def _read_entry(path: Path, entry: dict):
    """The parsed file, or None with the reason in entry["error"] (a bad file is listed, not fatal)."""
    try:
        return read_file(path)
    except (ProfileError, OSError) as exc:
        entry["error"] = str(exc)
        return None


def load_profiles(directory) -> list:
    """One entry per *.yaml / *.yml in `directory`: {file, error} or {file, fields, curves,
    provenance, notes}; [] when the folder is missing or empty."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    out = []
    # `<hardware>.partial.yaml` files are unfinished `roofline calibrate` runs, not profiles.
    paths = [
        p for p in [*folder.glob("*.yaml"), *folder.glob("*.yml")] if not p.name.endswith(".partial.yaml")
    ]
    for path in sorted(paths):
        entry = {"file": path.name}
        doc = _read_entry(path, entry)
        if "error" in entry:
            out.append(entry)
            continue
        if not isinstance(doc, dict):
            entry["error"] = "not a YAML mapping"
            out.append(entry)
            continue
        entry.update(walk_profile({k: v for k, v in doc.items() if k != "raw"}))
        entry["fields"] = [(k, str(v)) for k, v in doc.items() if not isinstance(v, (dict, list))]
        raw = doc.get("raw")
        if isinstance(raw, dict):  # the measurements the curves were fitted to, summarised
            entry["fields"].append(
                (
                    "raw",
                    ", ".join(
                        f"{g}: {len(v) if isinstance(v, list) else '-'} points" for g, v in raw.items()
                    ),
                )
            )
        entry["sections"] = [
            (k, grid_summary(v) if k == "grids" else flat_items(v))
            for k, v in doc.items()
            if isinstance(v, dict) and k not in ("curves", "collectives", "raw", "provenance")
        ]
        out.append(entry)
    return out


def _label(mapping: dict, path: tuple) -> str:
    """The point's own name fields and configuration, else where it sits in the report."""
    own = [str(mapping[k]) for k in LABEL_KEYS if isinstance(mapping.get(k), (str, int, float))]
    config = mapping.get("config")
    if isinstance(config, dict):
        own.append(" ".join(f"{k}={v}" for k, v in config.items()))
    parts = own or [str(p) for p in path]
    return " / ".join(dict.fromkeys(parts)) or "point"


def validation_points(doc, path: tuple = ()) -> list:
    """[{group, label, measured, predicted}] from every mapping holding a measured and a predicted
    time (`roofline validate` reports: points per metric, and method kernels per method)."""
    out = []
    if isinstance(doc, dict):
        m, p = _first(VALIDATION_MEASURED, doc), _first(VALIDATION_PREDICTED, doc)
        if m and p:
            group = doc.get("metric") or doc.get("method") or (str(path[0]) if path else "points")
            out.append(
                {
                    "group": str(group),
                    "label": _label(doc, path),
                    "measured": float(doc[m]),
                    "predicted": float(doc[p]),
                }
            )
        for k, v in doc.items():
            if isinstance(v, (dict, list)) and k not in ("provenance", "config", "summary"):
                out += validation_points(v, (*path, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += validation_points(v, (*path, i))
    return out


def load_validation_reports(directory) -> list:
    """One entry per *.json in `directory`: {file, error} or {file, title, points, provenance,
    summary}."""
    folder = Path(directory)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        entry = {"file": path.name, "title": path.stem}
        doc = _read_entry(path, entry)
        if "error" in entry:
            out.append(entry)
            continue
        entry["points"] = validation_points(doc)
        prov = doc.get("provenance") if isinstance(doc, dict) else None
        entry["provenance"] = flat_items(prov) if isinstance(prov, dict) else []
        summary = doc.get("summary") if isinstance(doc, dict) else None
        entry["summary"] = flat_items(summary) if isinstance(summary, dict) else []
        if isinstance(prov, dict) and prov.get("model") and prov.get("hardware"):
            entry["title"] = f"{prov['model']} on {prov['hardware']}" + (
                f" ({prov['date']})" if prov.get("date") else ""
            )
        out.append(entry)
    return out
