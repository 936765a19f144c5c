"""Pure builders of the Calibration page's figures: a profile curve's measured points against its
fit (with residuals), and a validation report's measured vs predicted times. No I/O, no Dash."""

from __future__ import annotations

import math

import numpy as np

from roofline.dashboards.figures import _go, log_axis, message_figure
from roofline.report.figures import BOUND_COLOURS, PALETTE, plain
from roofline.report.format import si_time

__all__ = ["make_fit_figure", "make_validation_figure"]


def make_fit_figure(curve: dict):
    """Measured points against the fitted curve (top) and the relative residuals (bottom).
    curve: {title, x_label, y_label, x, measured, fitted (may hold None), fit_line (optional
    (x, y) of the fitted curve over the measured range)}."""
    go = _go()
    from plotly.subplots import make_subplots

    x = np.asarray(curve["x"], dtype=float)
    measured = np.asarray(curve["measured"], dtype=float)
    fitted = np.asarray(
        [np.nan if v is None else v for v in curve.get("fitted") or [None] * len(x)], dtype=float
    )
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.08)
    fig.add_trace(
        go.Scatter(
            x=x, y=measured, mode="markers", name="measured", marker={"color": BOUND_COLOURS["memory"]}
        ),
        1,
        1,
    )
    if np.isfinite(fitted).any():
        order = np.argsort(x)
        line_x, line_y = curve.get("fit_line") or (x[order], fitted[order])
        fig.add_trace(
            go.Scatter(x=line_x, y=line_y, mode="lines", name="fitted", line={"color": "black"}), 1, 1
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            residual = (measured - fitted) / fitted * 100
        fig.add_trace(
            go.Scatter(
                x=x, y=residual, mode="markers", name="residual", marker={"color": BOUND_COLOURS["compute"]}
            ),
            2,
            1,
        )
        fig.add_hline(y=0, line_color="grey", row=2, col=1)
    positive = x[np.isfinite(x)]
    if positive.size and (positive > 0).all() and positive.max() / max(positive.min(), 1e-300) > 20:
        fig.update_xaxes(**log_axis(positive))
    fig.update_xaxes(title_text=plain(curve.get("x_label", "x")), row=2, col=1)
    fig.update_yaxes(title_text=plain(curve.get("y_label", "measured")), row=1, col=1)
    fig.update_yaxes(title_text="residual (%)", row=2, col=1)
    fig.update_layout(
        title=plain(curve.get("title", "")), height=420, margin={"l": 60, "r": 20, "t": 50, "b": 50}
    )
    return fig


def make_validation_figure(report: dict):
    """Measured vs predicted times of a validation report, with the y = x line.
    report: {title, points: [{group, label, measured, predicted}]}; one colour per group (metric)."""
    go = _go()
    pts = [p for p in report["points"] if p["measured"] and p["predicted"]]
    if not pts:
        return message_figure("no points with both a measured and a predicted value")
    measured = [p["measured"] for p in pts]
    predicted = [p["predicted"] for p in pts]
    lo, hi = min(measured + predicted), max(measured + predicted)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="predicted = measured", line={"color": "grey"})
    )
    groups = list(dict.fromkeys(p.get("group", "points") for p in pts))
    for i, group in enumerate(groups):
        sub = [p for p in pts if p.get("group", "points") == group]
        fig.add_trace(
            go.Scatter(
                x=[p["measured"] for p in sub],
                y=[p["predicted"] for p in sub],
                mode="markers",
                name=plain(group),
                text=[
                    plain(
                        f"{p['label']}: measured {si_time(p['measured'])}, predicted {si_time(p['predicted'])} "
                    )
                    + f"({(p['predicted'] / p['measured'] - 1) * 100:+.1f}%)"
                    for p in sub
                ],
                hoverinfo="text",
                marker={"size": 9, "color": PALETTE[(i + 1) % len(PALETTE)]},
            )
        )
    log = lo > 0 and math.isfinite(hi / lo) and hi / lo > 20
    fig.update_layout(
        title=plain(report.get("title", "measured vs predicted")),
        xaxis={**(log_axis(measured + predicted) if log else {}), "title": "measured (s)"},
        yaxis={**(log_axis(measured + predicted) if log else {}), "title": "predicted (s)"},
        height=420,
        margin={"l": 60, "r": 20, "t": 50, "b": 50},
    )
    return fig
