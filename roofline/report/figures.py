"""Plotly figures of one point shared by `roofline simulate --plot out.html` and the dashboard: the
device roofline with every op placed by arithmetic intensity, time by op kind for prefill and
decode, memory vs capacity, and the HTML page `--plot` writes.

Figures are plain plotly figure dicts (`{"data": [...], "layout": {...}}`), written in the form
plotly's `Figure.to_dict()` gives (numpy arrays as base64 typed arrays, the default template in
the layout): Dash sends them as they are, with no graph-object construction or validation pass
(that was most of a dashboard update's time); the `--plot` page passes them through `plotly.io`,
which validates them.

Names the user chose (scenario, model, method stacks, file names) reach the page: plotly renders a
subset of HTML in titles, legends and hover text, so every such string goes through `plain()`
(shown literally, never parsed as markup), and the page's own title through `html.escape`.

Figures are pure functions of result records and op tables. Only `template()` imports plotly (for
its default template, once), so importing this module (and running `roofline simulate`) never
imports plotly.
"""

from __future__ import annotations

import base64
import functools
import html

import numpy as np

PALETTE = (
    "#636efa",
    "#ef553b",
    "#00cc96",
    "#ab63fa",
    "#ffa15a",
    "#19d3f3",
    "#ff6692",
    "#b6e880",
    "#ff97ff",
    "#fecb52",
)
BOUND_COLOURS = {"compute": "#d62728", "memory": "#1f77b4", "communication": "#2ca02c"}


def plain(text) -> str:
    """`text` for a plotly title, legend entry or hover label, shown literally: plotly parses
    `<b>`, `<a href>`, ... in these, and decodes `&lt;`, `&gt;` and `&amp;` back to the characters."""
    return html.escape(str(text), quote=False)


# --- plain figure dicts ----------------------------------------------------------------------------

# plotly.js typed-array codes of the numpy dtypes it reads (`_plotly_utils.utils.to_typed_array_spec`)
TYPED_ARRAY_CODES = {
    "int8": "i1",
    "uint8": "u1",
    "int16": "i2",
    "uint16": "u2",
    "int32": "i4",
    "uint32": "u4",
    "float32": "f4",
    "float64": "f8",
}


def typed_array(values):
    """A numeric array as plotly.js's base64 typed array, as plotly's `to_dict()` writes it (int64
    narrowed to the smallest integer type that holds it; plotly.js has no 64-bit integers)."""
    v = np.ascontiguousarray(values)
    if v.size == 0:
        return v.tolist()
    if v.dtype == np.int64:
        lo, hi = int(v.min()), int(v.max())
        for narrow in (np.int8, np.int16, np.int32):
            if np.iinfo(narrow).min <= lo and hi <= np.iinfo(narrow).max:
                v = v.astype(narrow)
                break
        else:
            return v.tolist()
    code = TYPED_ARRAY_CODES.get(str(v.dtype))
    if code is None:
        return v.tolist()
    return {"dtype": code, "bdata": base64.b64encode(v.tobytes()).decode("ascii")}


def template() -> dict:
    """plotly's default template (what a `go.Figure` carries in its layout; the dashboard's server
    sets a lean one), read once per name. Shared by every figure: never modify it."""
    import plotly.io as pio

    return _template(pio.templates.default)


@functools.lru_cache(maxsize=4)
def _template(name: str) -> dict:
    import plotly.io as pio

    return pio.templates[name].to_plotly_json()


def figure(data: list, layout: dict) -> dict:
    """A figure dict with the default template, as `go.Figure(...).to_dict()` would give it."""
    return {"data": data, "layout": {**layout, "template": template()}}


def grid_domains(n: int, spacing: float) -> list:
    """[start, end] of each of `n` equal cells along one axis of a subplot grid, from 0 upwards,
    `spacing` apart (`plotly.subplots.make_subplots`'s arithmetic)."""
    size = (1.0 - spacing * (n - 1)) / n
    out = []
    for i in range(n):
        start = size * i + i * spacing
        end = start + size
        out.append([start, 1.0 if 1.0 < end < 1.01 else end])
    return out


def subplot_title(text: str, x: float, y: float) -> dict:
    """A subplot title annotation (centred above its cell), as `make_subplots` writes it."""
    return {
        "font": {"size": 16},
        "showarrow": False,
        "text": text,
        "x": x,
        "xanchor": "center",
        "xref": "paper",
        "y": y,
        "yanchor": "bottom",
        "yref": "paper",
    }


def hline(y: float, axis: str = "", line: dict | None = None) -> dict:
    """A horizontal line across subplot `axis` ('' for the first, '3' for the third), as
    `fig.add_hline` writes it."""
    return {
        "line": line or {},
        "type": "line",
        "x0": 0,
        "x1": 1,
        "xref": f"x{axis} domain",
        "y0": y,
        "y1": y,
        "yref": f"y{axis}",
    }


def vline(x: float, axis: str = "", line: dict | None = None) -> dict:
    """A vertical line across subplot `axis`, as `fig.add_vline` writes it."""
    return {
        "line": line or {},
        "type": "line",
        "x0": x,
        "x1": x,
        "xref": f"x{axis}",
        "y0": 0,
        "y1": 1,
        "yref": f"y{axis} domain",
    }


def line_label(text: str, y: float, axis: str = "", side: str = "right") -> dict:
    """The annotation `add_hline(annotation_text=...)` puts at the top `side` of its line."""
    return {
        "showarrow": False,
        "text": text,
        "x": 1 if side == "right" else 0,
        "xanchor": side,
        "xref": f"x{axis} domain",
        "y": y,
        "yanchor": "bottom",
        "yref": f"y{axis}",
    }


# --- figures ---------------------------------------------------------------------------------------

ROOFLINE_INTENSITIES = np.logspace(-2, 5, 200)


@functools.lru_cache(maxsize=32)
def roof_trace(peak: float, bandwidth: float, name: str, line: tuple) -> dict:
    """The roof min(peak, intensity x bandwidth) as a line trace (the same for every plan on one
    device and format: kept). Shared: never modify it."""
    return {
        "line": dict(line),
        "mode": "lines",
        "name": name,
        "x": typed_array(ROOFLINE_INTENSITIES),
        "y": typed_array(np.minimum(peak, ROOFLINE_INTENSITIES * bandwidth)),
        "type": "scatter",
    }


def make_roofline_figure(hw, rec: dict, prefill_ops: list, decode_ops: list) -> dict:
    """Log-log roofline of `hw` (bf16 peak and HBM bandwidth) with each op at (FLOP/byte, FLOP/s)."""
    data = [
        roof_trace(
            hw.peak("bf16"), hw.memory_bandwidth, plain(f"{hw.name} roofline (bf16)"), (("color", "black"),)
        )
    ]
    for phase, ops, symbol in (("prefill", prefill_ops, "circle"), ("decode", decode_ops, "diamond")):
        pts = [o for o in ops if o["flops"] > 0 and o["bytes"] > 0 and o["time_s"] > 0]
        if not pts:
            continue
        data.append(
            {
                "hoverinfo": "text",
                "marker": {
                    "color": [BOUND_COLOURS[o["bound"]] for o in pts],
                    "size": 10,
                    "symbol": symbol,
                },
                "mode": "markers",
                "name": f"{phase} ops (red: compute-bound, blue: memory-bound)",
                "text": [
                    plain(
                        f"{phase}: {o['name']} ({o['kind']}), {o['bound']}-bound, {o['time_s'] * 1e3:.3g} ms"
                    )
                    for o in pts
                ],
                "x": [o["intensity"] for o in pts],
                "y": [o["flops"] / o["time_s"] for o in pts],
                "type": "scatter",
            }
        )
    return figure(
        data,
        {
            "title": {
                "text": plain(
                    f"Roofline: {rec['model']} on {hw.display_name} (ridge {hw.ridge_point:.0f} FLOP/B)"
                )
            },
            "xaxis": {"type": "log", "title": {"text": "arithmetic intensity (FLOP/byte)"}},
            "yaxis": {"type": "log", "title": {"text": "attained FLOP/s"}},
        },
    )


def make_breakdown_figure(rec: dict) -> dict:
    """Time by op kind, stacked: prefill (TTFT, seconds) and one mean decode step (TPOT, ms)."""
    kinds = sorted(set(rec["prefill"]["breakdown"]) | set(rec["decode"]["breakdown"]))
    data = []
    for i, kind in enumerate(kinds):
        colour = PALETTE[i % len(PALETTE)]
        for phase, x, scale, axis in (("prefill", "prefill", 1.0, ""), ("decode", "decode step", 1e3, "2")):
            trace = {
                "legendgroup": kind,
                "marker": {"color": colour},
                "name": plain(kind),
                "x": [x],
                "y": [rec[phase]["breakdown"].get(kind, 0.0) * scale],
                "type": "bar",
                "xaxis": f"x{axis}",
                "yaxis": f"y{axis}",
            }
            if axis:
                trace["showlegend"] = False
            data.append(trace)
    (left, right) = grid_domains(2, 0.1)
    return figure(
        data,
        {
            "xaxis": {"anchor": "y", "domain": left},
            "yaxis": {"anchor": "x", "domain": [0.0, 1.0]},
            "xaxis2": {"anchor": "y2", "domain": right},
            "yaxis2": {"anchor": "x2", "domain": [0.0, 1.0]},
            "annotations": [
                subplot_title("prefill (TTFT), s", sum(left) / 2, 1.0),
                subplot_title("decode step (TPOT), ms", sum(right) / 2, 1.0),
            ],
            "barmode": "stack",
            "title": {"text": "Time by op kind"},
        },
    )


def make_memory_figure(rec: dict) -> dict:
    """Per-GPU memory components against capacity."""
    m = rec["memory"]
    data = [
        {"name": key.replace("_bytes", ""), "x": ["per GPU"], "y": [m[key] / 2**30], "type": "bar"}
        for key in ("weights_bytes", "kv_cache_bytes", "activation_bytes", "overhead_bytes")
    ]
    capacity = m["capacity_bytes"] / 2**30
    return figure(
        data,
        {
            "shapes": [hline(capacity, line={"dash": "dash"})],
            "annotations": [line_label("capacity", capacity)],
            "barmode": "stack",
            "title": {"text": "Memory per GPU (GiB)"},
            "yaxis": {"title": {"text": "GiB"}},
        },
    )


def make_report_html(hw, rec: dict, prefill_ops: list, decode_ops: list) -> str:
    import plotly.io as pio

    figs = [
        make_roofline_figure(hw, rec, prefill_ops, decode_ops),
        make_breakdown_figure(rec),
        make_memory_figure(rec),
    ]
    parts = [pio.to_html(f, include_plotlyjs=(i == 0), full_html=False) for i, f in enumerate(figs)]
    title = html.escape(f"roofline: {rec['scenario']}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body><h1>{title}</h1>{''.join(parts)}</body></html>"
