"""Fit a calibration profile from raw microbenchmark points: the efficiency curves of
`simulator.calibration` per op kind (`gemm_<dtype>` over cbrt(m n k), `attention_prefill` over the
sequence length, `attention_decode` and `hbm` over bytes moved; see CALIBRATE.md), the summary, the
profile document, `refit()` from a profile's raw points (no GPU), and the curves as a text table.

Measuring the points is `calibrate.calibrate`'s job; writing the document is `calibrate_write`'s.
"""

from __future__ import annotations

import datetime
import hashlib

import yaml

# Points whose median is less than twice the kernel overhead say more about the overhead than the
# kernel: they stay in raw but are left out of the fits.
MIN_NET_SHARE = 0.5
MIN_FIT_POINTS = 3


def _sig(v: float) -> float:
    return float(f"{float(v):.4g}")


def _net(points: list, overhead: float) -> tuple:
    """(x, efficiency net of the kernel overhead) of the points fit for fitting."""
    xs, es = [], []
    for p in points:
        t, e, x = p.get("seconds"), p.get("efficiency"), p.get("x")
        if t is None or e is None or x is None or t <= 0 or e <= 0 or x <= 0:
            continue
        if overhead:
            if t - overhead < MIN_NET_SHARE * t:
                continue
            e = e * t / (t - overhead)
        xs.append(float(x))
        es.append(float(e))
    return xs, es


def _best_per_shape(points: list, keys: tuple) -> list:
    best = {}
    for p in points:
        if "efficiency" not in p:
            continue
        key = tuple(p.get(k) for k in keys)
        if key not in best or p["efficiency"] > best[key]["efficiency"]:
            best[key] = p
    return list(best.values())


# kind -> (group, what x is, how the points are chosen)
CURVES = {
    "gemm_bf16": ("gemm", "cbrt(m*n*k)", "bf16 GEMMs whose compute roof binds"),
    "gemm_fp16": ("gemm", "cbrt(m*n*k)", "fp16 GEMMs whose compute roof binds"),
    "gemm_fp8": ("gemm", "cbrt(m*n*k)", "fp8 GEMMs whose compute roof binds"),
    "attention_prefill": ("attention_prefill", "sequence length", "head dim 128, causal, flash SDPA"),
    "attention_decode": ("attention_decode", "bytes moved", "faster of triton and sdpa per shape"),
    "hbm": ("hbm", "bytes moved", "STREAM triad, faster of torch and triton per size"),
}
# Curves every GPU should yield: a missing one is explained in fit_notes even with no point at all
# (fp16/fp8 GEMMs are absent on GPUs or runs without those formats, which needs no note).
EXPECTED_CURVES = ("gemm_bf16", "attention_prefill", "attention_decode", "hbm")


def curve_points(kind: str, raw: dict) -> list:
    """The raw points a curve is fitted to."""
    group = CURVES[kind][0]
    points = [p for p in raw.get(group) or [] if "skipped" not in p]
    if kind.startswith("gemm_"):
        dtype = kind.removeprefix("gemm_")
        return [p for p in points if p.get("dtype") == dtype and p.get("bound") == "compute"]
    if kind == "attention_prefill":
        return [p for p in points if p.get("head_dim") == 128]
    if kind == "attention_decode":
        return _best_per_shape(points, ("kv_len", "batch", "group"))
    return _best_per_shape([p for p in points if p.get("op") == "triad"], ("buffer_bytes",))


def _spread(n: int, keep: int) -> list:
    """Indices of `keep` of n sorted points, evenly spread, both ends included."""
    if keep >= n:
        return list(range(n))
    return sorted({round(i * (n - 1) / (keep - 1)) for i in range(keep)})


def curve_entry(xs, es, x_name: str, source: str, max_points: int | None = None) -> dict:
    """A profile curve {fit, residual, x, source, points} fitted to all (x, efficiency) points; with
    `max_points`, the points written are that many spread over x (its smallest and largest kept,
    since they bound the measured range)."""
    from roofline.api import hill
    from roofline.profilers.efficiency_fit import fit_efficiency_curve

    fitted = fit_efficiency_curve(xs, es)
    fit = fitted["fit"]
    points = sorted(fitted["points"], key=lambda p: p["x"]) if max_points else fitted["points"]
    if max_points:
        points = [points[i] for i in _spread(len(points), max_points)]
    return {
        "fit": {k: _sig(v) for k, v in fit.items()},
        "residual": _sig(fitted["residual"]),
        "x": x_name,
        "source": source,
        "points": [  # measured, and the fitted curve at the same x
            {
                "x": _sig(p["x"]),
                "efficiency": _sig(p["efficiency"]),
                "fitted": _sig(float(hill(p["x"], fit["e_max"], fit["x_half"], fit["p"]))),
            }
            for p in points
        ],
    }


def fit_curves(raw: dict, overhead: float | None) -> tuple:
    """({kind: {fit, residual, points, x, source}}, {kind: why no curve}) from raw points."""
    curves, notes = {}, {}
    for kind, (group, x_name, chosen) in CURVES.items():
        if group not in raw:
            continue
        xs, es = _net(curve_points(kind, raw), overhead or 0.0)
        if len(xs) < MIN_FIT_POINTS:
            if xs or kind in EXPECTED_CURVES:
                notes[kind] = f"{len(xs)} usable point(s); a fit needs {MIN_FIT_POINTS}"
            continue
        try:
            curves[kind] = curve_entry(
                xs, es, x_name, f"{group}: {chosen}, efficiency net of kernel_overhead_s"
            )
        except (ValueError, RuntimeError) as exc:  # curve_fit raises RuntimeError when it does not converge
            notes[kind] = f"fit failed: {str(exc).splitlines()[0][:160]}"
    return curves, notes


def _summary(raw: dict) -> dict:
    out = {}
    triad = [p for p in raw.get("hbm") or [] if p.get("op") == "triad" and "bytes_per_s" in p]
    if triad:
        best = max(triad, key=lambda p: p["bytes_per_s"])
        out["hbm_triad_best_Bps"] = best["bytes_per_s"]
        out["hbm_triad_best_efficiency"] = best.get("efficiency")
    for d in ("h2d", "d2h"):
        pts = [p for p in raw.get("host_link") or [] if p.get("direction") == d and "bytes_per_s" in p]
        if pts:
            best = max(pts, key=lambda p: p["bytes_per_s"])
            out[f"host_link_{d}_best_Bps"] = best["bytes_per_s"]
            out[f"host_link_{d}_best_efficiency"] = best.get("efficiency")
    for p in raw.get("launch") or []:
        if p.get("launches", 1) > 1 and "seconds" in p:
            out["eager_launch_s"] = p["seconds"]
    return out


def build_profile(hardware: str, provenance: dict, raw: dict, today: str | None = None) -> dict:
    """The profile document (parse_profile's format plus raw points, notes and a summary)."""
    from roofline.profilers.microbench.launch import kernel_overhead

    overhead = kernel_overhead(raw.get("launch") or [])
    curves, notes = fit_curves(raw, overhead)
    date = today or datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    digest = hashlib.sha256(yaml.safe_dump(raw, sort_keys=True).encode()).hexdigest()[:8]
    doc = {
        "profile_id": f"{hardware}-{date}-{digest}",
        "hardware": hardware,
        "provenance": {**provenance, "date": date},
    }
    if overhead is not None:
        doc["kernel_overhead_s"] = overhead
    doc["curves"] = curves
    if notes:
        doc["fit_notes"] = notes
    summary = _summary(raw)
    if summary:
        doc["summary"] = summary
    doc["raw"] = raw
    return doc


def refit(doc: dict) -> dict:
    """The same profile with its curves fitted again from its raw points (no GPU needed)."""
    raw = doc.get("raw") or {}
    curves, notes = fit_curves(raw, doc.get("kernel_overhead_s"))
    out = {k: v for k, v in doc.items() if k not in ("curves", "fit_notes", "raw", "summary")}
    out["curves"] = curves
    if notes:
        out["fit_notes"] = notes
    out["raw"] = raw
    return out


def summary_table(profile: dict) -> str:
    """The fitted curves, and the measured grids the engine prefers to them (cells, error on
    held-out shapes, a GEMM grid's row tile), as a short text table."""
    lines = [f"profile {profile['profile_id']} ({profile['hardware']})"]
    if profile.get("kernel_overhead_s") is not None:
        lines.append(f"  kernel overhead {profile['kernel_overhead_s'] * 1e6:.2f} us")
    lines.append(f"  {'curve':<18} {'e_max':>6} {'x_half':>10} {'p':>5} {'resid':>6} {'points':>6}  x")
    for kind, c in profile["curves"].items():
        f = c["fit"]
        lines.append(
            f"  {kind:<18} {f['e_max']:>6.3f} {f['x_half']:>10.4g} {f['p']:>5.2f} {c['residual']:>6.1%} "
            f"{len(c['points']):>6}  {c.get('x', '')}"
        )
    grids = profile.get("grids") or {}
    if grids:
        lines.append(
            f"  {'grid':<20} {'cells':>16} {'held-out median':>15} {'p90':>6} {'rows':>6}  "
            "rows per tile / fixed time per call, measured model shapes"
        )
        for kind, g in grids.items():
            h = g.get("holdout") or {}
            cells = "x".join(str(n) for n in g["shape"])
            median = f"{h['median']:.1%}" if "median" in h else "-"
            p90 = f"{h['p90']:.1%}" if "p90" in h else "-"
            rows = f"{int(h['rows'])}" if "rows" in h else "-"
            tile = f"  {g['m_tile']}" if "m_tile" in g else ""
            tile += f"  {g['call_s'] * 1e6:.1f} us" if g.get("call_s") else ""
            tile += f"  {len(g['shapes'])} shapes" if g.get("shapes") else ""
            lines.append(f"  {kind:<20} {cells:>16} {median:>15} {p90:>6} {rows:>6}{tile}")
    for kind, why in (profile.get("fit_notes") or {}).items():
        grid_note = kind == "grids" or kind.startswith("moe_")  # their notes say what was not gridded
        lines.append(f"  {kind:<18} {why}" if grid_note else f"  {kind:<18} no curve: {why}")
    return "\n".join(lines)
