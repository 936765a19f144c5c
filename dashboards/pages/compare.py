"""Compare page: the Plan's workload across hardware, parallel layouts and method stacks, as a
table and a Pareto chart of $ per million output tokens vs TPOT (or TTFT) with user-set SLA lines.

The workload comes from the URL query (the same encoding as the Plan page, so the navigation link
carries the current plan). Callbacks are plain functions registered by `register_callbacks(app)`.
"""

from __future__ import annotations

import dash
from dash import Input, Output, State, dcc, html

from roofline.dashboards import (
    budget,
    codec_query,
    codec_scenario,
    controls,
    evaluate,
    figures,
    figures_sweeps,
    state,
    sweeps,
)
from roofline.dashboards.components import alert, results_table
from roofline.dashboards.settings import settings, user_message

try:
    dash.register_page(__name__, path="/compare", name="Compare", title="roofline: compare", order=1)
except dash.exceptions.PageError:  # imported outside an app (tests call the functions directly)
    pass

GPUS_MAX_LIMIT = 64
DEFAULT_HARDWARE = ("h100-sxm", "h200", "b200")
# The context range, in K tokens (K = 1024): the 32K to 1M by default, at most 16M.
RANGE_DEFAULT_K = (32, 1024)
RANGE_MAX_K = 16384


def layout(**query):
    cat = evaluate.catalog(settings()["calibration_dir"])
    try:
        values, problems = codec_query.from_query(query, cat, settings()["upload_dir"])
    except Exception as exc:
        values, problems = dict(state.DEFAULTS), [user_message(exc, "reading the URL")]
    return build_layout(values, problems, cat)


def _number(cid, value, label, tip, step="any", minimum=0):
    return html.Div(
        [
            html.Label(label, title=tip, className="control-label"),
            dcc.Input(
                id=cid,
                type="number",
                value=value,
                min=minimum,
                step=step,
                debounce=True,
                className="number-input",
            ),
        ],
        className="control",
    )


def build_layout(values: dict, problems: list, cat: dict):
    gpus = state.gpus_of(values) or 1
    stacks = "dense, " + (state.stack_label(values) if values["methods"] else "kv_quant, kv_quant+quest")
    query = codec_query.to_query(values)
    summary = (
        f"{values['model']}, prompt {values['workload.prompt_tokens']:,} + output "
        f"{values['workload.output_tokens']:,} tokens, batch {values['workload.batch']}, "
        f"weights/activations/KV {values['dtype.weights']}/{values['dtype.activations']}/{values['dtype.kv']}, "
        f"methods: {state.stack_label(values)}"
        if isinstance(values["workload.prompt_tokens"], int)
        else values["model"]
    )
    sidebar = html.Aside(
        [
            html.Div(
                [
                    html.Strong("Workload (from the Plan): "),
                    summary,
                    " ",
                    dcc.Link("edit in Plan", href="/?" + query),
                ],
                className="note",
            ),
            alert(problems, "warning", "Some URL parameters were not used:"),
            html.Div(
                [
                    html.Label(
                        "hardware",
                        title="GPUs to compare (hardware is swept in one pass)",
                        className="control-label",
                    ),
                    controls.dropdown_slot(
                        dcc.Dropdown(
                            id="compare-hardware",
                            options=[{"label": h, "value": h} for h in cat["hardware"]],
                            value=list(dict.fromkeys([values["hardware"], *DEFAULT_HARDWARE])),
                            multi=True,
                        )
                    ),
                ],
                className="control control-stacked",
            ),
            _number(
                "compare-gpus-max",
                max(gpus, 8),
                "GPU budget",
                f"Largest GPU count: every tp/pp/cp/dp(/ep) layout of powers of two up to it (1..{GPUS_MAX_LIMIT})",
                step=1,
                minimum=1,
            ),
            html.Div(
                [
                    html.Label(
                        "method stacks",
                        title="Comma-separated stacks, methods joined by '+'; 'dense' is no methods. "
                        "Parameters come from the Plan's methods, else each method's suggested values.",
                        className="control-label",
                    ),
                    dcc.Input(
                        id="compare-stacks", type="text", value=stacks, debounce=True, className="text-input"
                    ),
                ],
                className="control control-stacked",
            ),
            html.Div(
                [
                    html.Label("latency axis", className="control-label"),
                    dcc.RadioItems(
                        id="compare-latency",
                        options=[{"label": "TPOT", "value": "tpot_s"}, {"label": "TTFT", "value": "ttft_s"}],
                        value="tpot_s",
                        inline=True,
                    ),
                ],
                className="control",
            ),
            _number(
                "compare-ttft-max",
                None,
                "SLA: TTFT at most (s)",
                "Time to first token, seconds (as roofline plan --ttft-max); empty = no limit",
            ),
            _number(
                "compare-tpot-max",
                None,
                "SLA: TPOT at most (s)",
                "Time per output token, seconds (as roofline plan --tpot-max; 0.02 = 20 ms); empty = no limit",
            ),
            dcc.Checklist(
                id="compare-all",
                options=[{"label": "list every layout that fits (not only the front)", "value": "all"}],
                value=[],
            ),
            html.Div(
                [
                    html.Strong("Context range and batch"),
                    html.Div(
                        "The plan (its layout and the stacks above) on each chosen GPU over a "
                        "range of prompt lengths, and over the batch up to its max batch.",
                        className="note",
                    ),
                ],
                className="section-head",
            ),
            _number(
                "compare-range-from",
                RANGE_DEFAULT_K[0],
                "context from (K tokens)",
                "Shortest prompt of the range, in K tokens (1K = 1024 tokens)",
                minimum=1,
            ),
            _number(
                "compare-range-to",
                RANGE_DEFAULT_K[1],
                "context to (K tokens)",
                f"Longest prompt of the range, in K tokens (1024 = 1M tokens; at most {RANGE_MAX_K})",
                minimum=1,
            ),
            dcc.Store(id="compare-base", data=query),
        ],
        className="sidebar",
    )
    main = html.Main(
        [
            html.Div(id="compare-alert"),
            dcc.Graph(id="compare-pareto", className="card", config={"displaylogo": False}),
            html.Div(id="compare-summary", className="note"),
            html.Div(id="compare-table"),
            html.Div(id="compare-range-alert"),
            html.Div(
                [
                    dcc.Graph(id="compare-range", className="card", config={"displaylogo": False}),
                    dcc.Graph(id="compare-batch", className="card", config={"displaylogo": False}),
                ],
                className="grid",
            ),
        ],
        className="content",
    )
    return html.Div([sidebar, main], className="page compare")


# The results table: sortable, exported as CSV as shown (SLA units as the CLI's: s and ms).
TABLE_COLUMNS = [
    ("stack", "stack", "text"),
    ("hardware", "hardware", "text"),
    ("gpus", "GPUs", "numeric"),
    ("layout", "layout", "text"),
    ("ttft_s", "TTFT (s)", "numeric"),
    ("tpot_ms", "TPOT (ms)", "numeric"),
    ("usd_per_m", "$ / M out", "numeric"),
    ("joules", "J / token", "numeric"),
    ("bound", "bound p/d", "text"),
    ("sla", "SLA", "text"),
    ("front", "front", "text"),
]


def _sig(x, digits: int = 4):
    """A number rounded to `digits` significant digits (it stays a number, so it sorts)."""
    return None if x is None else float(f"{x:.{digits}g}")


def _layout_cells(layout: dict) -> str:
    return " ".join(f"{k}{v}" for k, v in layout.items())


def update_compare(base_query, hardware, gpus_max, stacks_text, latency, ttft_max, tpot_max, show_all):
    """Controls -> (alert, Pareto figure, summary line, table)."""
    empty = figures.message_figure("nothing to compare yet")
    upload_dir = settings()["upload_dir"]
    try:
        values, _ = codec_query.from_query(
            codec_query.parse_query(base_query or ""),
            evaluate.catalog(settings()["calibration_dir"]),
            upload_dir,
        )
        problems = []
        if not hardware:
            problems.append("choose at least one hardware")
        if not isinstance(gpus_max, (int, float)) or not 1 <= gpus_max <= GPUS_MAX_LIMIT:
            problems.append(f"GPU budget: give 1..{GPUS_MAX_LIMIT}")
        for name, v in (("TTFT SLA", ttft_max), ("TPOT SLA", tpot_max)):
            if v is not None and not v > 0:
                problems.append(f"{name}: must be a positive number (or empty for no limit)")
        stacks, stack_problems = state.parse_stacks(stacks_text, values["methods"])
        problems += stack_problems
        if problems:
            return alert(problems), empty, None, None
        doc = codec_scenario.to_scenario(values, upload_dir)
        rows, run_problems = evaluate.compare_rows(doc, hardware, int(gpus_max), stacks)
        tpot_max = tpot_max or None  # seconds, as `roofline plan --tpot-max`
        evaluate.mark_front(rows, latency, ttft_max or None, tpot_max)
    except Exception as exc:
        return alert(user_message(exc, "comparing layouts")), empty, None, None
    fig = figures.make_pareto_figure(rows, latency, ttft_max or None, tpot_max)
    fitting = [r for r in rows if r["record"]["fits"]]
    shown = fitting if show_all else [r for r in fitting if r["pareto"]]
    shown.sort(
        key=lambda r: (
            r["record"]["cost"]["usd_per_million_output_tokens"] or float("inf"),
            r["record"][latency] or 0,
        )
    )
    cells = [
        {
            "stack": r["stack"],
            "hardware": r["record"]["hardware"],
            "gpus": r["record"]["gpus"],
            "layout": _layout_cells(r["layout"]),
            "ttft_s": _sig(r["record"]["ttft_s"]),
            "tpot_ms": _sig(r["record"]["tpot_s"] * 1e3),
            "usd_per_m": _sig(r["record"]["cost"]["usd_per_million_output_tokens"]),
            "joules": _sig(r["record"]["energy"]["joules_per_output_token"]),
            "bound": f"{r['record']['prefill']['bound']}/{r['record']['decode']['bound']}",
            "sla": "meets" if r["meets_sla"] else "-",
            "front": "yes" if r["pareto"] else "",
        }
        for r in shown
    ]
    sla = (
        f"{sum(r['meets_sla'] for r in rows)} meet the SLA"
        if ttft_max or tpot_max
        else "no SLA set (every layout that fits meets it)"
    )
    summary = (
        f"{len(rows)} layouts x hardware x stacks evaluated, {len(fitting)} fit in memory, "
        f"{sum(r['pareto'] for r in rows)} on the Pareto front; {sla}."
    )
    return (
        alert(run_problems, "warning", "Stacks that no layout could run:"),
        fig,
        summary,
        results_table("compare-rows", TABLE_COLUMNS, cells, highlight="front"),
    )


def update_range(base_query, hardware, stacks_text, from_k, to_k):
    """Controls -> (alert, context-range figure, batch figure) for the plan on each hardware."""
    empty = figures.message_figure("nothing to show yet")
    upload_dir = settings()["upload_dir"]
    try:
        values, _ = codec_query.from_query(
            codec_query.parse_query(base_query or ""),
            evaluate.catalog(settings()["calibration_dir"]),
            upload_dir,
        )
        problems = []
        known = evaluate.catalog(settings()["calibration_dir"])["hardware"]
        if not hardware:
            problems.append("choose at least one hardware")
        elif not isinstance(hardware, list) or any(h not in known for h in hardware):
            problems.append("hardware: choose from the list")  # a crafted request, not the dropdown
        else:
            hardware = list(dict.fromkeys(hardware))
        for name, v in (("context from", from_k), ("context to", to_k)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or not 1 <= v <= RANGE_MAX_K:
                problems.append(f"{name}: give 1..{RANGE_MAX_K} K tokens (1024 = 1M tokens)")
        if not problems and from_k >= to_k:
            problems.append(f"context range: 'from' ({from_k:g}K) must be below 'to' ({to_k:g}K)")
        stacks, stack_problems = state.parse_stacks(stacks_text, values["methods"])
        problems += stack_problems
        if problems:
            return alert(problems), empty, empty
        doc = codec_scenario.to_scenario(values, upload_dir)
        lo, hi = int(from_k * sweeps.K), int(to_k * sweeps.K)
        series, range_notes = sweeps.context_range(doc, hardware, stacks, lo, hi)
        batches, batch_notes = sweeps.batch_range(doc, hardware, stacks)
    except Exception as exc:
        return alert(user_message(exc, "sweeping the context range")), empty, empty
    return (
        None,
        figures_sweeps.make_context_range_figure(series, range_notes),
        figures_sweeps.make_batch_figure(batches, batch_notes),
    )


def refused_range(message, *args):
    return (
        alert(message),
        figures.message_figure("nothing to show"),
        figures.message_figure("nothing to show"),
    )


def refused_compare(message, *args):
    return alert(message), figures.message_figure("nothing to compare"), None, None


def register_callbacks(app) -> None:
    app.callback(
        Output("compare-alert", "children"),
        Output("compare-pareto", "figure"),
        Output("compare-summary", "children"),
        Output("compare-table", "children"),
        State("compare-base", "data"),
        Input("compare-hardware", "value"),
        Input("compare-gpus-max", "value"),
        Input("compare-stacks", "value"),
        Input("compare-latency", "value"),
        Input("compare-ttft-max", "value"),
        Input("compare-tpot-max", "value"),
        Input("compare-all", "value"),
    )(budget.bounded(update_compare, refused_compare, "comparing layouts"))
    app.callback(
        Output("compare-range-alert", "children"),
        Output("compare-range", "figure"),
        Output("compare-batch", "figure"),
        State("compare-base", "data"),
        Input("compare-hardware", "value"),
        Input("compare-stacks", "value"),
        Input("compare-range-from", "value"),
        Input("compare-range-to", "value"),
    )(budget.bounded(update_range, refused_range, "sweeping the context range"))
