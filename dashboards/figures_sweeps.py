"""Pure builders of the Compare page's sweep figures (plain figure dicts, as `figures` builds the
Plan's): latency and cost over a context range on several GPUs, and over the batch up to the max
batch. Input: the series of `sweeps.context_range` / `sweeps.batch_range`. No I/O, no Dash, no
cost formulas. Points where a plan does not fit in memory are never drawn as ordinary points: they
are a separate faded, dotted trace with x markers, named "... does not fit".
"""

from __future__ import annotations

import numpy as np

from roofline.dashboards.figures import log_axis, message_figure, token_axis, tokens_text
from roofline.report.figures import PALETTE, figure, grid_domains, plain, subplot_title, typed_array
from roofline.report.format import si_time

STACK_DASHES = ("solid", "dash", "dashdot", "longdash", "dot")


def _series_traces(key, cols: dict, x_key: str, rows: tuple, colour: str, dash: str, x_label) -> list:
    """One fitting trace and (where some points do not fit) one 'does not fit' trace per row."""
    stack, hw = key
    name = plain(f"{hw} / {stack}" + (f" (max batch {cols['max_batch']})" if "max_batch" in cols else ""))
    x = np.asarray(cols[x_key])
    fits = np.asarray(cols["fits"], dtype=bool)
    edge = fits & (np.r_[~fits[1:], False] | np.r_[False, ~fits[:-1]])
    parts = [(name, fits, {"color": colour, "dash": dash}, "circle", 1.0, "")]
    if not fits.all():
        parts.append(
            (
                f"{name}: does not fit",
                ~fits | edge,
                {"color": colour, "dash": "dot"},
                "x",
                0.45,
                " (does not fit)",
            )
        )
    traces = []
    for row, (col, scale, fmt) in enumerate(rows, start=1):
        y = np.asarray(cols[col], dtype=float) * scale
        axis = "" if row == 1 else str(row)
        for legend, mask, line, symbol, opacity, tag in parts:
            text = [
                plain(f"{hw} / {stack}: {x_label(xv)}, {fmt(yv / scale)}") + (tag if not f else "")
                for xv, yv, f in zip(x, y, fits)
            ]
            traces.append(
                {
                    "legendgroup": legend,
                    "line": line,
                    "marker": {"symbol": symbol, "size": 6 if symbol == "circle" else 8},
                    "mode": "lines+markers",
                    "name": legend,
                    "opacity": opacity,
                    "showlegend": row == 1,
                    "text": text,
                    "hoverinfo": "text",
                    "x": typed_array(x),
                    "y": typed_array(np.where(mask, y, np.nan)),
                    "type": "scatter",
                    "xaxis": f"x{axis}",
                    "yaxis": f"y{axis}",
                }
            )
    return traces


def _usd(v) -> str:
    return f"${v:,.4g}/M out"


def _grid_figure(series: dict, x_key: str, rows: tuple, titles: tuple, x_axis: dict, x_label, title, notes):
    hardware = list(dict.fromkeys(hw for _, hw in series))
    stacks = list(dict.fromkeys(s for s, _ in series))
    data, ys = [], {i: [] for i in range(1, len(rows) + 1)}
    for key, cols in series.items():
        colour = PALETTE[hardware.index(key[1]) % len(PALETTE)]
        dash = STACK_DASHES[stacks.index(key[0]) % len(STACK_DASHES)]
        data += _series_traces(key, cols, x_key, rows, colour, dash, x_label)
        for i, (col, scale, _) in enumerate(rows, start=1):
            ys[i].append(np.asarray(cols[col], dtype=float) * scale)
    n = len(rows)
    domains = list(reversed(grid_domains(n, 0.08)))  # top row first
    # no x axis title (the figure's title names the axis): a title under the ticks collided with
    # the legend, whose height plotly adds to the bottom margin
    x_axis.pop("title", None)
    layout = {"annotations": []}
    for i in range(1, n + 1):
        suffix = "" if i == 1 else str(i)
        shared = {"matches": f"x{n}", "showticklabels": False} if i < n else {}
        layout[f"xaxis{suffix}"] = {"anchor": f"y{suffix}", "domain": [0.0, 1.0], **x_axis, **shared}
        layout[f"yaxis{suffix}"] = {
            "anchor": f"x{suffix}",
            "domain": domains[i - 1],
            **log_axis(np.concatenate(ys[i]) if ys[i] else []),
        }
        layout["annotations"].append(subplot_title(titles[i - 1], 0.5, domains[i - 1][1]))
    text = title + "".join(f"<br><sup>{plain(m[:160])}</sup>" for m in notes[:3])
    # the legend sits below the x axis title, ~2 entries a line ('does not fit' ones included)
    entries = len(series) + sum(not np.asarray(c["fits"], dtype=bool).all() for c in series.values())
    top, bottom = 70 + 16 * min(len(notes), 3), 40 + 21 * ((entries + 1) // 2)
    height = 220 * n + top + bottom
    layout.update(
        title={"text": text, "font": {"size": 14}},
        height=height,
        margin={"l": 70, "r": 20, "t": top, "b": bottom},
        legend={"orientation": "h", "yref": "container", "yanchor": "bottom", "y": 0.0},
        hovermode="closest",
    )
    return figure(data, layout)


CONTEXT_ROWS = (
    ("ttft_s", 1.0, si_time),
    ("tpot_s", 1e3, si_time),
    ("cost.usd_per_million_output_tokens", 1.0, _usd),
)


def make_context_range_figure(series: dict, notes: list | None = None) -> dict:
    """TTFT, TPOT and $ per million output tokens over the prompt length (log, K/M ticks): colour
    by hardware, dash by method stack; where a plan does not fit, the faded 'does not fit' trace."""
    notes = list(notes or [])
    if not series:
        return message_figure("; ".join(notes) or "nothing to show")
    xs = np.concatenate([np.asarray(c["prompt_tokens"]) for c in series.values()])
    return _grid_figure(
        series,
        "prompt_tokens",
        CONTEXT_ROWS,
        ("TTFT (s)", "TPOT (ms)", "$ / M output tokens"),
        {**token_axis(xs), "title": "prompt tokens"},
        lambda v: f"{tokens_text(v)} tokens",
        "TTFT, TPOT and cost over the prompt length (tokens), per GPU type",
        notes,
    )


BATCH_ROWS = (
    ("tpot_s", 1e3, si_time),
    ("cost.usd_per_million_output_tokens", 1.0, _usd),
)


def make_batch_figure(series: dict, notes: list | None = None) -> dict:
    """TPOT and $ per million output tokens over the batch (log2 ticks), 1 to each hardware's max
    batch at the plan's prompt; colour by hardware, dash by method stack."""
    notes = list(notes or [])
    if not series:
        return message_figure("; ".join(notes) or "nothing to show")
    top = max(int(np.max(c["batch"])) for c in series.values())
    ticks = [2**k for k in range(top.bit_length()) if 2**k <= top]
    step = max(1, len(ticks) // 10)
    ticks = ticks[::step]
    return _grid_figure(
        series,
        "batch",
        BATCH_ROWS,
        ("TPOT (ms)", "$ / M output tokens"),
        {"type": "log", "tickvals": ticks, "ticktext": [str(t) for t in ticks], "title": "batch (sequences)"},
        lambda v: f"batch {int(v)}",
        "TPOT and cost over the batch (sequences), 1 to the max batch at the plan's prompt",
        notes,
    )
