"""Plotly figures of one point shared by `roofline simulate --plot out.html` and the dashboard: the
device roofline with every op placed by arithmetic intensity, time by op kind for prefill and
decode, memory vs capacity, and the HTML page `--plot` writes.

Names the user chose (scenario, model, method stacks, file names) reach the page: plotly renders a
subset of HTML in titles, legends and hover text, so every such string goes through `plain()`
(shown literally, never parsed as markup), and the page's own title through `html.escape`.

Figures are pure functions of result records and op tables. plotly is imported inside each
builder, so importing this module (and running `roofline simulate`) never imports plotly.
"""

from __future__ import annotations

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


def make_roofline_figure(hw, rec: dict, prefill_ops: list, decode_ops: list):
    """Log-log roofline of `hw` (bf16 peak and HBM bandwidth) with each op at (FLOP/byte, FLOP/s)."""
    import plotly.graph_objects as go

    peak, bw = hw.peak("bf16"), hw.memory_bandwidth
    x = np.logspace(-2, 5, 200)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=x,
            y=np.minimum(peak, x * bw),
            mode="lines",
            name=plain(f"{hw.name} roofline (bf16)"),
            line={"color": "black"},
        )
    )
    for phase, ops, symbol in (("prefill", prefill_ops, "circle"), ("decode", decode_ops, "diamond")):
        pts = [o for o in ops if o["flops"] > 0 and o["bytes"] > 0 and o["time_s"] > 0]
        if not pts:
            continue
        fig.add_trace(
            go.Scatter(
                x=[o["intensity"] for o in pts],
                y=[o["flops"] / o["time_s"] for o in pts],
                mode="markers",
                name=f"{phase} ops (red: compute-bound, blue: memory-bound)",
                marker={"symbol": symbol, "size": 10, "color": [BOUND_COLOURS[o["bound"]] for o in pts]},
                text=[
                    plain(
                        f"{phase}: {o['name']} ({o['kind']}), {o['bound']}-bound, {o['time_s'] * 1e3:.3g} ms"
                    )
                    for o in pts
                ],
                hoverinfo="text",
            )
        )
    fig.update_layout(
        title=plain(f"Roofline: {rec['model']} on {hw.display_name} (ridge {hw.ridge_point:.0f} FLOP/B)"),
        xaxis={"type": "log", "title": "arithmetic intensity (FLOP/byte)"},
        yaxis={"type": "log", "title": "attained FLOP/s"},
    )
    return fig


def make_breakdown_figure(rec: dict):
    """Time by op kind, stacked: prefill (TTFT, seconds) and one mean decode step (TPOT, ms)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    kinds = sorted(set(rec["prefill"]["breakdown"]) | set(rec["decode"]["breakdown"]))
    fig = make_subplots(rows=1, cols=2, subplot_titles=("prefill (TTFT), s", "decode step (TPOT), ms"))
    for i, kind in enumerate(kinds):
        colour = PALETTE[i % len(PALETTE)]
        fig.add_trace(
            go.Bar(
                name=plain(kind),
                x=["prefill"],
                y=[rec["prefill"]["breakdown"].get(kind, 0.0)],
                marker_color=colour,
                legendgroup=kind,
            ),
            1,
            1,
        )
        fig.add_trace(
            go.Bar(
                name=plain(kind),
                x=["decode step"],
                y=[rec["decode"]["breakdown"].get(kind, 0.0) * 1e3],
                marker_color=colour,
                legendgroup=kind,
                showlegend=False,
            ),
            1,
            2,
        )
    fig.update_layout(barmode="stack", title="Time by op kind")
    return fig


def make_memory_figure(rec: dict):
    """Per-GPU memory components against capacity."""
    import plotly.graph_objects as go

    m = rec["memory"]
    fig = go.Figure()
    for key in ("weights_bytes", "kv_cache_bytes", "activation_bytes", "overhead_bytes"):
        fig.add_trace(go.Bar(name=key.replace("_bytes", ""), x=["per GPU"], y=[m[key] / 2**30]))
    fig.add_hline(y=m["capacity_bytes"] / 2**30, line_dash="dash", annotation_text="capacity")
    fig.update_layout(barmode="stack", title="Memory per GPU (GiB)", yaxis={"title": "GiB"})
    return fig


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
