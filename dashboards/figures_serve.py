"""Pure builders of the Serve page's results from `roofline.serve` records: the KPI cards' items,
the percentile table's rows, the time series (the report layer's `make_serve_figure`, shared with
`roofline serve --plot`, sized for a card) and the throughput-vs-rate curve. No I/O, no Dash, no
serving formulas: every number is read from a record.
"""

from __future__ import annotations

from roofline.dashboards.figures import COMPACT, message_figure
from roofline.report.figures import PALETTE, figure, plain, vline
from roofline.report.format import si_time
from roofline.report.serve_figures import make_serve_figure
from roofline.report.serve_tables import replicas_text, scheduler_text

PERCENTILE_ROWS = (("ttft_s", "TTFT"), ("tpot_s", "TPOT"), ("e2e_s", "E2E"), ("queue_s", "queue"))
PERCENTILES = ("mean", "p50", "p90", "p99")


def _slo_text(slo: dict) -> str:
    parts = [
        f"{k} <= {si_time(v)}" for k, v in (("TTFT", slo.get("ttft_s")), ("TPOT", slo.get("tpot_s"))) if v
    ]
    return " and ".join(parts) if parts else "no SLO set: every request counts"


def serve_kpi_items(rec: dict, slo: dict | None = None) -> list:
    """[{key, label, value, detail, ok}] for `components.kpi_cards`, from one `roofline.serve`
    record; `slo` ({ttft_s, tpot_s}) names the objectives in the cards' details."""
    tp = rec["throughput"]
    usd = rec["cost"]["usd_per_million_output_tokens"]
    att = rec["slo_attainment"]
    return [
        {
            "key": "serve-throughput",
            "label": "Throughput",
            "value": f"{tp['requests_per_s']:.3g} req/s",
            "detail": f"{rec['requests']:,} requests over {si_time(rec['duration_s'])}; "
            f"{scheduler_text(rec.get('scheduler'), short=True)}",
            "ok": True,
        },
        {
            "key": "serve-tokens",
            "label": "Output tok/s / GPU",
            "value": f"{tp['output_tokens_per_s_per_gpu']:,.0f}",
            "detail": f"{tp['output_tokens_per_s']:,.0f} tok/s on {rec['gpus']} GPU(s)"
            f"{replicas_text(rec.get('replicas'))}",
            "ok": True,
        },
        {
            "key": "serve-goodput",
            "label": "Goodput",
            "value": f"{rec['goodput_requests_per_s']:.3g} req/s",
            "detail": "requests/s meeting the SLOs",
            "ok": rec["goodput_requests_per_s"] > 0,
        },
        {
            "key": "serve-slo",
            "label": "SLO attainment",
            "value": f"{att:.1%}",
            "detail": _slo_text(slo or {}),
            "ok": att >= 0.9,
        },
        {
            "key": "serve-cost",
            "label": "$ / M output tokens",
            "value": "-" if usd is None else f"${usd:,.4g}",
            "detail": f"${rec['cost']['usd_per_hour']:.3g}/h of GPUs",
            "ok": True,
        },
    ]


def percentile_rows(rec: dict) -> list:
    """[[name, mean, p50, p90, p99]] of TTFT, TPOT, E2E and queueing time, as display text."""
    return [
        [label, *("-" if rec[key][q] is None else si_time(rec[key][q]) for q in PERCENTILES)]
        for key, label in PERCENTILE_ROWS
    ]


def make_serve_timeseries_figure(rec: dict) -> dict:
    """Running and queued requests and KV-cache use over time (`roofline serve --plot`'s figure),
    for a dashboard card."""
    fig = make_serve_figure(rec)
    layout = dict(fig["layout"])
    layout.update(
        title={"text": "Requests and KV cache over time", "font": {"size": 14}},
        margin={"l": 60, "r": 60, "t": 50, "b": 40},
        height=COMPACT["height"],
        legend={"orientation": "h", "y": -0.2},
    )
    # plotly.js syncs an overlaying axis's ticks to the main axis's by default (ticks at 0.222, ...)
    layout["yaxis2"] = {**layout["yaxis2"], "tickmode": "auto", "tickformat": ".0%"}
    return figure(fig["data"], layout)


def make_rate_curve_figure(
    rates: list, records: list, chosen: float | None = None, knee=None, target: float = 0.9
) -> dict:
    """Throughput and goodput (req/s, left axis) and SLO attainment (right axis) against the offered
    rate, one point per `roofline.serve` record; the chosen rate and the SLO-attainment knee
    (`evaluate_serve.RateCurve.knee`) marked by vertical lines."""
    if not records:
        return message_figure("no rate curve")
    thr = [r["throughput"]["requests_per_s"] for r in records]
    good = [r["goodput_requests_per_s"] for r in records]
    att = [r["slo_attainment"] for r in records]
    top = max([*rates, *thr, *good]) * 1.05
    line = {"type": "scatter", "mode": "lines+markers", "x": list(rates)}
    data = [
        {
            **line,
            "name": "offered",
            "y": list(rates),
            "mode": "lines",
            "line": {"dash": "dot", "color": "#9ca3af"},
        },
        {**line, "name": "throughput", "y": thr, "line": {"color": PALETTE[0]}},
        {**line, "name": "goodput", "y": good, "line": {"color": PALETTE[2]}},
        {
            **line,
            "name": "SLO attainment",
            "y": att,
            "yaxis": "y2",
            "line": {"color": PALETTE[3], "dash": "dash"},
        },
    ]
    shapes, notes = [], []
    if chosen is not None:
        shapes.append(vline(chosen, line={"color": "#6b7280", "dash": "dot", "width": 1}))
        notes.append(
            {
                "showarrow": False,
                "text": plain(f"this rate: {chosen:.3g}/s"),
                "x": chosen,
                "xref": "x",
                "xanchor": "left",
                "y": 0.02,
                "yanchor": "bottom",
                "yref": "paper",
            }
        )
    if knee is not None:
        shapes.append(vline(knee, line={"color": "#b91c1c", "width": 2}))
        notes.append(
            {
                "showarrow": False,
                "text": plain(
                    f"SLO attainment >= {target:.0%} at every rate shown: knee beyond {knee:.3g} req/s"
                    if knee >= max(rates)
                    else f"knee: {knee:.3g} req/s (SLO attainment >= {target:.0%})"
                ),
                "x": knee,
                "xref": "x",
                "xanchor": "right",
                "y": 0.85,
                "yanchor": "top",
                "yref": "paper",
                "font": {"color": "#b91c1c"},
            }
        )
    return figure(
        data,
        {
            "title": {"text": "Throughput and goodput vs offered rate", "font": {"size": 14}},
            "xaxis": {"title": {"text": "offered rate (requests/s)"}},
            "yaxis": {"title": {"text": "requests/s"}, "range": [0, top]},
            "yaxis2": {
                "title": {"text": "SLO attainment"},
                "overlaying": "y",
                "side": "right",
                "range": [0, 1.05],
                "tickformat": ".0%",
                "tickmode": "auto",
            },
            "shapes": shapes,
            "annotations": notes,
            "margin": {"l": 60, "r": 60, "t": 50, "b": 40},
            "height": COMPACT["height"],
            "legend": {"orientation": "h", "y": -0.2},
        },
    )
