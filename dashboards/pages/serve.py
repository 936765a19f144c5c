"""Serve page: a deployment under traffic, by `roofline.serve`. Controls for the model, hardware and
layout (the Plan page's field controls), the traffic (requests, Poisson rate, offline or closed loop, fixed or
lognormal prompt and output lengths), the scheduler, the framework and the SLOs; results as KPI
cards, a latency percentile table, the time series of running and queued requests and KV use,
and throughput and goodput against the offered rate (0.25x to 2x the chosen rate, within the time
budget) with the SLO-attainment knee marked.

The layout is built from the URL's query (`serve_state.from_query`), so a setting is shared as a
link. Callbacks are thin: control values -> `serve_state` -> `evaluate_serve` (`roofline.serve`) ->
`figures_serve`; they are plain functions, registered by `register_callbacks(app)`, and the tests
call them directly.
"""

from __future__ import annotations

import dash
from dash import ALL, Input, Output, State, dcc, html

from roofline.dashboards import (
    budget,
    controls,
    evaluate,
    evaluate_serve,
    figures,
    figures_serve,
    memo,
    serve_state,
)
from roofline.dashboards.components import alert, kpi_cards, table
from roofline.dashboards.settings import settings, user_message

try:
    dash.register_page(__name__, path="/serve", name="Serve", title="roofline: serve", order=2)
except dash.exceptions.PageError:  # imported outside an app (tests call the functions directly)
    pass

FIELD = "serve-field"
FIELDS = {"type": FIELD, "path": ALL}
# Share of the time budget the rate curve may spend starting runs (the rest is the figure's).
CURVE_BUDGET_SHARE = 0.7


def field_id(path: str) -> dict:
    return {"type": FIELD, "path": path}


def layout(**query):
    """The page for a URL query; bad parameters keep their defaults and are listed at the top of
    the sidebar."""
    cat = evaluate.catalog(settings()["calibration_dir"])
    try:
        values, problems = serve_state.from_query(query, cat, settings()["upload_dir"])
    except Exception as exc:  # never a traceback in the page
        values, problems = dict(serve_state.SERVE_DEFAULTS), [user_message(exc, "reading the URL")]
    return build_layout(values, problems, cat)


def build_layout(values: dict, problems: list, cat: dict):
    sections = [
        html.Details(
            [
                html.Summary(title),
                *[
                    controls.field_control(
                        p,
                        values[p],
                        cat,
                        spec=serve_state.spec(p),
                        cid=field_id(p),
                        label=serve_state.label(p),
                    )
                    for p in paths
                ],
            ],
            open=True,
            className="section",
        )
        for title, paths in serve_state.GROUPS
    ]
    sidebar = html.Aside(
        [
            html.Div(
                dcc.Link("Reset", href="/serve", className="button button-link", refresh=False),
                className="io-buttons",
            ),
            html.Div(
                alert(problems, "warning", "Some URL parameters were not used:"), id="serve-import-alert"
            ),
            html.P(
                f"At most {serve_state.MAX_REQUESTS:,} requests per run; generated traffic only "
                "(trace and histogram files: `roofline serve`).",
                className="note",
            ),
            *sections,
        ],
        className="sidebar",
    )
    graph = {"config": {"displaylogo": False}}
    main = html.Main(
        [
            html.Div(id="serve-alert"),
            html.Div(id="serve-kpis", className="kpis"),
            html.Div(id="serve-warnings"),
            html.Div(id="serve-percentiles"),
            html.Div(
                [
                    dcc.Graph(id="serve-timeseries", className="card", **graph),
                    html.Div(
                        [
                            dcc.Graph(id="serve-rate-curve", **graph),
                            html.Div(id="serve-curve-note", className="note"),
                        ],
                        className="card",
                    ),
                ],
                className="grid serve-grid",
            ),
            dcc.Store(id="serve-query"),
            html.Div(id="serve-url-sync", hidden=True),
        ],
        className="content",
    )
    return html.Div([sidebar, main], className="page serve")


# --- callbacks (plain functions; `register_callbacks` wires them) ----------------------------------


def values_from(field_values, field_ids) -> dict:
    """The Serve state from the pattern-matched controls' values and ids."""
    return serve_state.values_from_controls({i["path"]: v for i, v in zip(field_ids, field_values)})


def callback_args(values: dict) -> tuple:
    """(field values, field ids) as Dash passes them for a page showing `values`, in layout order."""
    ids = [field_id(p) for p in serve_state.PATHS]
    return [values[i["path"]] for i in ids], ids


def _slo(values: dict) -> dict:
    return {"ttft_s": values.get("serving.slo.ttft_s"), "tpot_s": values.get("serving.slo.tpot_s")}


def percentile_table(rec: dict):
    return html.Div(
        [
            html.Div("Latency percentiles (per request)", className="card-title"),
            table(
                ["", *figures_serve.PERCENTILES],
                figures_serve.percentile_rows(rec),
                table_id="serve-percentile-table",
            ),
        ],
        className="card percentiles",
    )


def update_serve(field_values, field_ids):
    """Controls -> (alert, KPI cards, warnings, percentile table, time-series figure, URL query)."""
    empty = figures.message_figure("no result")
    query = None
    try:  # whatever fails, the page gets a message, never a traceback
        values = values_from(field_values, field_ids)
        query = serve_state.to_query(values)
        doc = serve_state.to_scenario(values, settings()["upload_dir"])
        rec = evaluate_serve.serve_point(doc).record
        return (
            None,
            kpi_cards(figures_serve.serve_kpi_items(rec, _slo(values))),
            alert(rec["provenance"]["warnings"], "warning", "Warnings"),
            percentile_table(rec),
            figures_serve.make_serve_timeseries_figure(rec),
            query,
        )
    except Exception as exc:
        msg = user_message(exc, "simulating the serving run")
        return alert(msg, "error"), [], None, None, empty, query if query is not None else dash.no_update


def update_rate_curve(field_values, field_ids):
    """Controls -> (the throughput-vs-rate figure, a note on what it shows or left out)."""
    try:
        values = values_from(field_values, field_ids)
        if values["arrival"] != "poisson":
            what = {"offline": "offline run: every request at t = 0", "closed loop": "closed-loop client"}
            return figures.message_figure(f"{what[values['arrival']]}: no arrival rate to sweep"), None
        doc = serve_state.to_scenario(values, settings()["upload_dir"])
        curve = evaluate_serve.rate_curve(doc, budget_s=budget.TIME_BUDGET_S * CURVE_BUDGET_SHARE)
    except Exception as exc:
        return refused_curve(user_message(exc, "computing the rate curve"))
    knee = curve.knee()
    fig = figures_serve.make_rate_curve_figure(
        curve.rates, curve.records, values["serving.arrival.rate_per_s"], knee, evaluate_serve.KNEE_ATTAINMENT
    )
    multiples = ", ".join(f"{m:g}x" for m in sorted(evaluate_serve.RATE_MULTIPLES))
    notes = [
        f"The same {values['serving.requests']:,} requests (seed {values['serving.seed']}) at {multiples} "
        f"the rate, one run each ({len(curve.rates)} shown)."
    ]
    target = f"{evaluate_serve.KNEE_ATTAINMENT:.0%}"
    if knee is None:
        notes.append(f"Below {target} SLO attainment already at the lowest rate: no knee.")
    elif knee >= max(curve.rates):
        notes.append(f"At least {target} of requests meet the SLOs at every rate shown: the knee is beyond.")
    if curve.skipped:
        notes.append(
            "Left out to stay within the time budget: "
            + ", ".join(f"{r:.3g}" for r in curve.skipped)
            + " req/s (fewer requests per run brings them back)."
        )
    return fig, " ".join(notes)


def check_controls(field_ids) -> None:
    """Refuse a (crafted) request that carries more controls than the page has."""
    budget.check_controls({"fields": (len(field_ids), len(serve_state.PATHS))})


def refused_serve(message, *args):
    return alert(message, "error"), [], None, None, figures.message_figure("no result"), dash.no_update


def refused_curve(message, *args):
    """No curve; the message (which can be long) below the empty figure."""
    return figures.message_figure("no rate curve"), alert(message, "error")


# Keeps the address bar in step with the Serve page's state (history.replaceState; no reload).
URL_SYNC_JS = """
function(query) {
    if (query === null || query === undefined) { return window.dash_clientside.no_update; }
    const s = query ? '?' + query : '';
    if (window.location.pathname === 'SERVE' && window.location.search !== s) {
        window.history.replaceState(window.history.state, '', 'SERVE' + s);
    }
    return s;
}
"""


def register_callbacks(app) -> None:
    inputs = [Input(FIELDS, "value"), State(FIELDS, "id")]
    # a shared setting is computed once per worker; an error or a curve cut short is never kept
    serve_memo = memo.memoized(update_serve, keep=lambda out: out[0] is None)
    curve_memo = memo.memoized(
        update_rate_curve, keep=lambda out: len(out[0]["data"]) > 0 and "Left out" not in str(out[1])
    )

    @app.callback(
        Output("serve-alert", "children"),
        Output("serve-kpis", "children"),
        Output("serve-warnings", "children"),
        Output("serve-percentiles", "children"),
        Output("serve-timeseries", "figure"),
        Output("serve-query", "data"),
        *inputs,
    )
    @budget.bounded_callback(refused_serve, "simulating the serving run")
    def _update_serve(fv, fi):
        check_controls(fi)
        return serve_memo(fv, fi)

    @app.callback(Output("serve-rate-curve", "figure"), Output("serve-curve-note", "children"), *inputs)
    @budget.bounded_callback(refused_curve, "computing the rate curve")
    def _update_curve(fv, fi):
        check_controls(fi)
        return curve_memo(fv, fi)

    app.clientside_callback(
        URL_SYNC_JS.replace("SERVE", app.get_relative_path("/serve")),
        Output("serve-url-sync", "children"),
        Input("serve-query", "data"),
    )
