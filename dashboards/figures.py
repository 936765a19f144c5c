"""Pure builders of what the pages show, from simulator results (records, op tables, sweep
columns) and calibration data: plotly figures (the KPI cards are `kpis`). No I/O, no Dash, no cost formulas.

The time-by-op-kind and memory figures are the report layer's (`roofline.report.figures`), shared
with `roofline simulate --plot`; the Plan's roofline is `figures_roofline`'s (labelled ceilings,
op kinds, bounds) and the Compare page's sweeps are `figures_sweeps`'. The Plan page's figures (those, the context curves and the
message figure) are plain figure dicts in `go.Figure.to_dict()` form, built without plotly's graph
objects: constructing and validating those was most of a Plan update's server time. The Compare
figures are still graph objects (Dash takes both); the Calibration page's are `figures_calibration`'s. Every name or message that reaches a plotly label goes
through the report layer's `plain()`, so a name with markup is shown literally, never parsed.
"""

from __future__ import annotations

import math

import numpy as np

from roofline.report.figures import (
    PALETTE,
    figure,
    grid_domains,
    hline,
    line_label,
    make_breakdown_figure,
    make_memory_figure,
    make_roofline_figure,
    plain,
    subplot_title,
    typed_array,
    vline,
)
from roofline.report.format import GIB, si_time

__all__ = [
    "make_roofline_figure",
    "make_breakdown_figure",
    "make_memory_figure",
    "make_curves_figure",
    "make_pareto_figure",
    "message_figure",
]

COMPACT = {"margin": {"l": 60, "r": 20, "t": 50, "b": 50}, "height": 380}


def _go():
    import plotly.graph_objects as go

    return go


def log_axis(values) -> dict:
    """A log axis whose ticks are labelled 1-2-5 values in full (plotly's default labels minor
    ticks with bare digits, '2' for 200)."""
    v = np.asarray([x for x in np.ravel(np.asarray(values, dtype=float)) if np.isfinite(x) and x > 0])
    if v.size == 0:
        return {"type": "log"}
    lo, hi = v.min(), v.max()
    ticks = []
    for mantissas in ((1, 2, 5), (1,), (1, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [
            m * 10.0**k
            for k in range(int(math.floor(math.log10(lo))), int(math.ceil(math.log10(hi))) + 1)
            for m in mantissas
            if lo / 1.05 <= m * 10.0**k <= hi * 1.05
        ]
        if 3 <= len(ticks) <= 12:
            break
    return {"type": "log", "tickvals": ticks, "ticktext": [f"{t:.10g}" for t in ticks]}


def tokens_text(n: float) -> str:
    """32768 -> '32K', 1048576 -> '1M', 1536 -> '1.5K' (K = 1024, as the CLI reads them)."""
    for scale, suffix in ((1024**2, "M"), (1024, "K")):
        if n >= scale:
            return f"{n / scale:.4g}{suffix}"
    return f"{n:.4g}"


def token_axis(values) -> dict:
    """A log axis over token counts with ticks at powers of two, labelled 32K, 64K, ..., 1M."""
    v = np.asarray([x for x in np.ravel(values) if x > 0], dtype=float)
    if v.size == 0:
        return {"type": "log"}
    lo, hi = int(np.floor(np.log2(v.min()))), int(np.ceil(np.log2(v.max())))
    step = max(1, (hi - lo + 1) // 8)  # at most ~8 labels
    ticks = [2.0**k for k in range(lo, hi + 1, step) if v.min() / 1.01 <= 2.0**k <= v.max() * 1.01]
    return {"type": "log", "tickvals": ticks, "ticktext": [tokens_text(t) for t in ticks]}


def message_figure(text: str) -> dict:
    """An empty figure that says why there is nothing to plot."""
    return figure(
        [],
        {
            "annotations": [
                {
                    "showarrow": False,
                    "text": plain(text),
                    "x": 0.5,
                    "xref": "paper",
                    "y": 0.5,
                    "yref": "paper",
                }
            ],
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "height": 260,
        },
    )


def compact(fig: dict) -> dict:
    """A CLI figure sized for a dashboard card: legend below, room for subplot titles."""
    layout = fig["layout"]
    layout.update(
        margin={"l": 60, "r": 20, "t": 80, "b": 40},
        height=COMPACT["height"],
        title={**layout.get("title", {}), "font": {"size": 14}},
        legend={"orientation": "h", "y": -0.12},
    )
    return fig


def breakdown_card(fig: dict) -> dict:
    """The time-by-kind bars for a card: compact, with the two subplot titles on two lines each
    (side by side on one line they overlapped in a card at a 1024 px window)."""
    fig = compact(fig)
    fig["layout"]["margin"]["t"] = 100
    for note, text in zip(
        fig["layout"].get("annotations", []), ("prefill<br>(TTFT, s)", "decode step<br>(TPOT, ms)")
    ):
        note["text"] = text
    return fig


UNFIT_NOTE = '<br><span style="color:#b91c1c">does not fit in memory: not a runnable plan</span>'


def mark_unfit(fig: dict) -> dict:
    """A figure of a plan that does not fit in memory, saying so under its title."""
    title = fig["layout"].setdefault("title", {})
    title["text"] = title.get("text", "") + UNFIT_NOTE
    fig["layout"]["margin"] = {
        **fig["layout"].get("margin", {}),
        "t": fig["layout"].get("margin", {}).get("t", 80) + 18,
    }
    return fig


# --- context-length curves -------------------------------------------------------------------------


CURVE_ROWS = ((1, "ttft_s", 1.0), (2, "tpot_s", 1e3), (3, "memory.total_bytes", 1 / GIB))


def make_curves_figure(curves: dict, prompt_tokens: int | None = None) -> dict:
    """TTFT, TPOT and memory per GPU over the prompt length (log axis), one line per stack
    (baseline dashed), the capacity as a dotted line and the plan's prompt as a vertical line.
    Prompt lengths where a stack does not fit in memory are a faded dotted "does not fit" trace."""
    notes, data, ttft, xs = [], [], [], []
    capacity = None
    for i, (label, cols) in enumerate(curves.items()):
        if "error" in cols:
            notes.append(f"{label}: {cols['error']}")
            continue
        xs.append(np.asarray(cols["prompt_tokens"]))
        x = typed_array(xs[-1])
        colour = PALETTE[i % len(PALETTE)]
        dash = "dash" if label == "baseline" else "solid"
        fits = np.asarray(cols["fits"], dtype=bool)
        # Where the plan does not fit, its latencies are not a runnable plan's: they go to a
        # separate dotted, faded trace named "does not fit", which shares the fitting neighbours
        # of those points so the line stays continuous.
        edge = fits & (np.r_[~fits[1:], False] | np.r_[False, ~fits[:-1]])
        parts = [(label, fits, dash, 1.0)]
        if not fits.all():
            parts.append((f"{label}: does not fit", ~fits | edge, "dot", 0.5))
        for row, key, scale in CURVE_ROWS:
            y = np.asarray(cols[key], dtype=float) * scale
            if row == 1:
                ttft.append(y)
            axis = "" if row == 1 else str(row)
            for name, mask, line_dash, opacity in parts:
                data.append(
                    {
                        "legendgroup": name,
                        "line": {"color": colour, "dash": line_dash},
                        "mode": "lines",
                        "name": plain(name),
                        "opacity": opacity,
                        "showlegend": row == 1,
                        "x": x,
                        "y": typed_array(np.where(mask, y, np.nan)),
                        "type": "scatter",
                        "xaxis": f"x{axis}",
                        "yaxis": f"y{axis}",
                    }
                )
        capacity = float(np.max(cols["memory.capacity_bytes"])) / GIB
    # rows from the top; make_subplots(rows=3, shared_xaxes=True, vertical_spacing=0.06)
    bottom, middle, top = grid_domains(3, 0.06)
    shared = {"domain": [0.0, 1.0], "matches": "x3", "showticklabels": False, "type": "log"}
    layout = {
        "xaxis": {"anchor": "y", **shared},
        "yaxis": {
            "anchor": "x",
            "domain": top,
            **log_axis(np.concatenate(ttft) if ttft else []),
        },
        "xaxis2": {"anchor": "y2", **shared},
        "yaxis2": {"anchor": "x2", "domain": middle},
        "xaxis3": {
            "anchor": "y3",
            "domain": [0.0, 1.0],
            **token_axis(np.concatenate(xs) if xs else []),
            "title": {"text": "prompt tokens"},
        },
        "yaxis3": {"anchor": "x3", "domain": bottom},
        "annotations": [
            subplot_title(text, 0.5, domain[1])
            for text, domain in (
                ("TTFT (s)", top),
                ("TPOT (ms)", middle),
                ("memory per GPU (GiB)", bottom),
            )
        ],
        "shapes": [],
    }
    if capacity is not None:
        layout["shapes"].append(hline(capacity, "3", {"color": "black", "dash": "dot"}))
        layout["annotations"].append(line_label("capacity", capacity, "3", side="left"))
    if prompt_tokens and xs:  # no curve (every stack failed): nothing to mark, and a line alone on
        # empty log axes is what Plotly cannot scale
        layout["shapes"] += [
            vline(prompt_tokens, axis, {"color": "grey", "dash": "dot"}) for axis in ("", "2", "3")
        ]
    if not layout["shapes"]:
        del layout["shapes"]
    title = "TTFT, TPOT and memory over context length"
    if notes:
        title += "<br><sup>" + "<br>".join(plain(n[:160]) for n in notes) + "</sup>"
    layout.update(
        margin={"l": 60, "r": 20, "t": 80, "b": 50},
        title={"text": title},
        height=720,
        uirevision="curves",
    )
    return figure(data, layout)


# --- compare ---------------------------------------------------------------------------------------

SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star", "hexagon", "pentagon")


def _layout_text(layout: dict) -> str:
    return " ".join(f"{k}{v}" for k, v in layout.items() if v != 1) or "single GPU"


def make_pareto_figure(rows: list, latency_key: str = "tpot_s", ttft_max=None, tpot_max=None):
    """$ per million output tokens vs latency (TPOT or TTFT) of every layout that fits: colour by
    method stack, symbol by hardware, filled when it meets the SLA, the Pareto front as a line and
    the SLA as dashed lines."""
    go = _go()
    scale, unit = (1e3, "ms") if latency_key == "tpot_s" else (1.0, "s")
    name = "TPOT" if latency_key == "tpot_s" else "TTFT"
    fits = [r for r in rows if r["record"]["fits"] and r["record"][latency_key] is not None]
    if not fits:
        return message_figure("no layout fits in memory: raise the GPU budget or change the workload")
    stacks = list(dict.fromkeys(r["stack"] for r in fits))
    hardware = list(dict.fromkeys(r["record"]["hardware"] for r in fits))
    fig = go.Figure()
    for si, stack in enumerate(stacks):
        for hi, hw in enumerate(hardware):
            pts = [r for r in fits if r["stack"] == stack and r["record"]["hardware"] == hw]
            if not pts:
                continue
            symbol = SYMBOLS[hi % len(SYMBOLS)]
            fig.add_trace(
                go.Scatter(
                    x=[r["record"][latency_key] * scale for r in pts],
                    y=[r["record"]["cost"]["usd_per_million_output_tokens"] for r in pts],
                    mode="markers",
                    name=plain(f"{stack} on {hw}"),
                    marker={
                        "color": PALETTE[si % len(PALETTE)],
                        "size": 10,
                        "symbol": [symbol if r.get("meets_sla", True) else symbol + "-open" for r in pts],
                        "opacity": [1.0 if r.get("pareto") else 0.45 for r in pts],
                        "line": {"width": 1, "color": PALETTE[si % len(PALETTE)]},
                    },
                    text=[
                        plain(f"{stack} | {hw} x{r['record']['gpus']} ({_layout_text(r['layout'])})") + "<br>"
                        f"TTFT {si_time(r['record']['ttft_s'])}, TPOT {si_time(r['record']['tpot_s'])}, "
                        f"${r['record']['cost']['usd_per_million_output_tokens']:.4g}/M"
                        for r in pts
                    ],
                    hoverinfo="text",
                )
            )
    front = sorted(
        (r for r in fits if r.get("pareto")),
        key=lambda r: r["record"]["cost"]["usd_per_million_output_tokens"],
    )
    if front:
        fig.add_trace(
            go.Scatter(
                x=[r["record"][latency_key] * scale for r in front],
                y=[r["record"]["cost"]["usd_per_million_output_tokens"] for r in front],
                mode="lines",
                name="Pareto front",
                line={"color": "black", "width": 1, "shape": "hv"},
                hoverinfo="skip",
            )
        )
    sla = tpot_max if latency_key == "tpot_s" else ttft_max
    xs = [r["record"][latency_key] * scale for r in fits]
    # The x range is the points' own: an SLA far outside it is an arrow at the edge, not a line
    # that stretches the axis and squashes the points into a corner.
    lo, hi = math.log10(min(xs)), math.log10(max(xs))
    pad = max(0.05, (hi - lo) * 0.05)
    x_range = [lo - pad, hi + pad]
    if sla:
        label = f"{name} SLA {sla:g} s" + (f" ({sla * scale:g} {unit})" if scale != 1 else "")
        at = math.log10(sla * scale)
        if x_range[0] - 0.5 <= at <= x_range[1] + 0.5:  # near the points: widen to it and draw it
            x_range = [min(x_range[0], at - pad), max(x_range[1], at + pad)]
            fig.add_vline(x=sla * scale, line_dash="dash", line_color="#d62728", annotation_text=label)
        else:
            left = at < x_range[0]
            fig.add_annotation(
                x=x_range[0] if left else x_range[1],
                xref="x",
                y=1.0,
                yref="paper",
                text=("← " if left else "") + label + ("" if left else " →"),
                showarrow=False,
                xanchor="left" if left else "right",
                font={"color": "#d62728"},
            )
    fig.update_layout(
        title={
            "text": f"$ per million output tokens vs {name}"
            "<br><sup>faded: off the Pareto front; hollow: misses the SLA</sup>",
            "font": {"size": 14},
        },
        xaxis={**log_axis(xs), "title": f"{name} ({unit})", "range": x_range},
        yaxis={
            **log_axis([r["record"]["cost"]["usd_per_million_output_tokens"] for r in fits]),
            "title": "$ / M output tokens",
        },
        height=520,
        margin={"l": 60, "r": 20, "t": 64, "b": 50},
    )
    return fig


# --- calibration -----------------------------------------------------------------------------------
