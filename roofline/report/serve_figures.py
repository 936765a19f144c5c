"""The `roofline serve --plot` page: running and queued requests and KV-cache use over time, from
the result's `time_series` (time-binned means)."""

from __future__ import annotations

import html

from roofline.report.figures import plain


def make_serve_figure(rec: dict) -> dict:
    ts = rec["time_series"]
    return {
        "data": [
            {"type": "scatter", "mode": "lines", "name": "running", "x": ts["t_s"], "y": ts["running"]},
            {"type": "scatter", "mode": "lines", "name": "queued", "x": ts["t_s"], "y": ts["queued"]},
            {
                "type": "scatter",
                "mode": "lines",
                "name": "KV use",
                "x": ts["t_s"],
                "y": ts["kv_utilization"],
                "yaxis": "y2",
            },
        ],
        "layout": {
            "title": {"text": plain(f"{rec['scenario']}: requests and KV cache over time")},
            "xaxis": {"title": {"text": "time (s)"}},
            "yaxis": {"title": {"text": "requests"}},
            "yaxis2": {"title": {"text": "KV use"}, "overlaying": "y", "side": "right", "range": [0, 1]},
        },
    }


def make_serve_html(rec: dict) -> str:
    import plotly.io as pio

    part = pio.to_html(make_serve_figure(rec), include_plotlyjs=True, full_html=False)
    title = html.escape(f"roofline serve: {rec['scenario']}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head><body><h1>{title}</h1>{part}</body></html>"
