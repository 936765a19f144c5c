"""Plan page: one scenario's KPIs, roofline, time and memory breakdowns, and TTFT/TPOT/memory
curves over context length for the baseline and the chosen method stack.

The layout is built from the URL's query (`codec_query.from_query`), so a plan is shared as a link.
Callbacks are thin: control values -> `state` -> `evaluate` (the simulator) -> `figures`; they are
plain functions, registered by `register_callbacks(app)`, and the tests call them directly.
"""

from __future__ import annotations

import dash
from dash import ALL, MATCH, Input, Output, State, dcc, html, no_update

from roofline.dashboards import (
    budget,
    codec_controls,
    codec_query,
    codec_scenario,
    controls,
    evaluate,
    figures,
    figures_roofline,
    kpis,
    memo,
    model_refs,
    saved,
    state,
    uploads,
)
from roofline.dashboards.components import alert, kpi_cards, results_table
from roofline.dashboards.settings import LOG, settings, user_message

try:
    dash.register_page(__name__, path="/", name="Plan", title="roofline: plan", order=0)
except dash.exceptions.PageError:  # imported outside an app (tests call the functions directly)
    pass

FIELDS = {"type": controls.FIELD, "path": ALL}
METHODS = {"type": controls.METHOD, "method": ALL}
PARAMS = {"type": controls.PARAM, "method": ALL, "param": ALL}


def layout(**query):
    """The page for a URL query (Dash passes its parameters); bad parameters keep their defaults
    and are listed at the top of the sidebar."""
    cat = evaluate.catalog(settings()["calibration_dir"])
    try:
        values, problems = codec_query.from_query(query, cat, settings()["upload_dir"])
    except Exception as exc:  # never a traceback in the page
        values, problems = dict(state.DEFAULTS), [user_message(exc, "reading the URL")]
    return build_layout(values, problems, cat)


def build_layout(values: dict, problems: list, cat: dict):
    fields, enabled, params = codec_controls.control_values(values)
    io = html.Div(
        [
            dcc.Upload(
                html.Button("Import scenario YAML", className="button"),
                id="plan-upload-yaml",
                accept=".yaml,.yml,text/yaml",
            ),
            dcc.Upload(
                html.Button("Upload config.json", className="button"),
                id="plan-upload-config",
                accept=".json,application/json",
            ),
            html.Button("Export YAML", id="plan-export", className="button"),
            html.Button(
                "Save for comparison",
                id="plan-save",
                className="button",
                title="Keep this plan (in this browser) in the 'Saved plans' table below the charts",
            ),
            dcc.Link("Reset", href="/", className="button button-link", refresh=False),
            dcc.Download(id="plan-download"),
            dcc.Store(id="plan-upload-store"),
        ],
        className="io-buttons",
    )
    sidebar = html.Aside(
        [
            io,
            html.Div(
                alert(problems, "warning", "Some URL parameters were not used:"),
                id="plan-import-alert",
            ),
            *controls.plan_controls(fields, enabled, params, cat),
        ],
        className="sidebar",
    )
    graph = {"config": {"displaylogo": False}}
    main = html.Main(
        [
            html.Div(id="plan-alert"),
            html.Div(id="plan-kpis", className="kpis"),
            html.Div(id="plan-deltas"),
            html.Div(id="plan-warnings"),
            html.Div(
                [
                    dcc.Graph(id="plan-roofline", className="card", **graph),
                    dcc.Graph(id="plan-breakdown", className="card", **graph),
                    dcc.Graph(id="plan-memory", className="card", **graph),
                ],
                className="grid plan-grid",
            ),
            # click an op on the roofline: its layers (figures_roofline.make_layers_figure)
            dcc.Graph(id="plan-layers", className="card", **graph),
            dcc.Graph(id="plan-curves", className="card", **graph),
            html.Div(
                [
                    html.Div(
                        [
                            html.Strong("Saved plans"),
                            html.Span(" (sort by a column header; Export writes CSV)", className="note"),
                            html.Button("Clear saved plans", id="plan-saved-clear", className="button"),
                        ],
                        className="saved-head",
                    ),
                    html.Div(id="plan-saved-alert"),
                    # plans saved for comparison (saved.py), kept in this browser across visits
                    dcc.Store(id="saved-plans", storage_type="local"),
                    results_table("plan-saved-table", saved.COLUMNS, [], marked=("fits", "does not fit")),
                ],
                className="card saved-plans",
            ),
        ],
        className="content",
    )
    return html.Div([sidebar, main], className="page plan")


# --- callbacks (plain functions; `register_callbacks` wires them) ----------------------------------


def values_from(field_values, field_ids, method_values, method_ids, param_values, param_ids) -> dict:
    """The Plan state from the pattern-matched controls' values and ids."""
    fields = {i["path"]: v for i, v in zip(field_ids, field_values)}
    enabled = [i["method"] for i, v in zip(method_ids, method_values) if v]
    params = {(i["method"], i["param"]): v for i, v in zip(param_ids, param_values)}
    return codec_controls.values_from_controls(fields, enabled, params)


def callback_args(values: dict) -> tuple:
    """The six lists Dash passes the control callbacks for a page showing `values` (field values,
    field ids, method switches, method ids, parameter values, parameter ids), in layout order."""
    from roofline.api import REGISTRY

    fields, enabled, params = codec_controls.control_values(values)
    field_ids = [controls.field_id(p) for p in state.FIELD_PATHS]
    method_ids = [{"type": controls.METHOD, "method": m} for m in REGISTRY]
    param_ids = [
        {"type": controls.PARAM, "method": m, "param": k} for m in REGISTRY for k in REGISTRY[m].params
    ]
    return (
        [fields[i["path"]] for i in field_ids],
        field_ids,
        [[i["method"]] if i["method"] in enabled else [] for i in method_ids],
        method_ids,
        [params[(i["method"], i["param"])] for i in param_ids],
        param_ids,
    )


def _gpus_note(values: dict):
    n = state.gpus_of(values)
    return f"{n} GPU{'s' if n != 1 else ''} (tp x pp x cp x dp)" if n else "GPUs: tp x pp x cp x dp"


def deltas_section(values: dict, point) -> list | None:
    """The method stack against the dense baseline (kpis.delta_items), or None without methods."""
    if point.baseline is None:
        return None
    stack = state.stack_label(values)
    return [
        html.Div(
            f"{stack} vs the dense baseline (same workload, as roofline compare)", className="deltas-title"
        ),
        html.Div(kpi_cards(kpis.delta_items(stack, point.record, point.baseline)), className="kpis"),
    ]


def update_plan(field_values, field_ids, method_values, method_ids, param_values, param_ids):
    """Controls -> (alert, KPI cards, warnings, roofline, breakdown, memory, GPU note, deltas
    against the dense baseline, URL query)."""
    values = values_from(field_values, field_ids, method_values, method_ids, param_values, param_ids)
    query = codec_query.to_query(values)
    empty = figures.message_figure("no result")
    try:  # the figures too: whatever fails, the page gets a message, never a traceback
        doc = codec_scenario.to_scenario(values, settings()["upload_dir"])
        point = evaluate.plan_point(doc)
        rec = point.record
        mark = (lambda fig: fig) if rec["fits"] else figures.mark_unfit
        return (
            None,
            kpi_cards(kpis.kpi_items(rec)),
            alert(rec["provenance"]["warnings"], "warning", "Warnings"),
            mark(
                figures_roofline.make_plan_roofline_figure(
                    point.hardware, rec, point.prefill_ops, point.decode_ops, point.ceilings
                )
            ),
            mark(
                figures.breakdown_card(figures_roofline.recolour_by_kind(figures.make_breakdown_figure(rec)))
            ),
            figures.compact(figures.make_memory_figure(rec)),
            _gpus_note(values),
            deltas_section(values, point),
            query,
        )
    except Exception as exc:
        msg = user_message(exc, "simulating the plan")
        return alert(msg, "error"), [], None, empty, empty, empty, _gpus_note(values), None, query


def update_curves(field_values, field_ids, method_values, method_ids, param_values, param_ids):
    """Controls -> the context-length curves figure (one sweep per stack)."""
    values = values_from(field_values, field_ids, method_values, method_ids, param_values, param_ids)
    try:
        doc = codec_scenario.to_scenario(values, settings()["upload_dir"])
        curves = evaluate.context_curves(doc)
    except Exception as exc:
        return figures.message_figure(user_message(exc, "computing the context curves")[:200])
    return figures.make_curves_figure(curves, values.get("workload.prompt_tokens"))


def export_scenario(n_clicks, query):
    """The Export button -> a scenario YAML download that `roofline simulate` reproduces."""
    if not n_clicks:
        return no_update
    try:
        values, _ = codec_query.from_query(
            codec_query.parse_query(query or ""),
            evaluate.catalog(settings()["calibration_dir"]),
            settings()["upload_dir"],
        )
        text = codec_scenario.export_yaml(values, settings()["upload_dir"])
    except Exception as exc:
        LOG.error("export failed: %s", user_message(exc, "exporting the plan"))
        return no_update
    return {"content": text, "filename": f"{values['name'] or 'plan'}.yaml", "type": "text/yaml"}


def load_upload(data, field_values, field_ids, method_values, method_ids, param_values, param_ids):
    """An uploaded scenario YAML or config.json -> new control values (or an error in the page).
    Returns (field values, method switches, parameter values, model options, message)."""
    # wildcard outputs take one entry per component, even when nothing changes
    keep = (
        [no_update] * len(field_ids),
        [no_update] * len(method_ids),
        [no_update] * len(param_ids),
        no_update,
    )
    if not data:
        return (*keep, no_update)
    current = values_from(field_values, field_ids, method_values, method_ids, param_values, param_ids)
    upload_dir = settings()["upload_dir"]
    cat = evaluate.catalog(settings()["calibration_dir"])
    name = data.get("filename") or "upload"
    try:
        if data.get("error"):
            raise uploads.UploadError(f"{name}: {data['error']}")
        text = uploads.decode_upload(data.get("contents"), name)
        if data.get("kind") == "config":
            model_id, arch = uploads.store_config(text, name, upload_dir)
            values, notices = dict(current), []
            values["model"] = model_refs.UPLOAD_PREFIX + model_id
            kinds = ", ".join(f"{k} x{v}" for k, v in arch.layer_kinds().items())
            message = alert(
                f"{name}: loaded as model {model_id!r}: {arch.total_params() / 1e9:.2f}B parameters, "
                f"{arch.num_layers} layers ({kinds})",
                "info",
            )
        else:
            values, notices = import_scenario(text, name, cat, upload_dir)
            message = alert(notices, "warning", f"{name}: imported, with notes:") or alert(
                f"{name}: imported", "info"
            )
    except Exception as exc:
        return (*keep, alert(user_message(exc, "reading the upload"), "error", f"Could not use {name}:"))
    fields, enabled, params = codec_controls.control_values(values)
    return (
        [fields[i["path"]] for i in field_ids],
        [[i["method"]] if i["method"] in enabled else [] for i in method_ids],
        [params[(i["method"], i["param"])] for i in param_ids],
        controls.model_options(cat, values["model"]),
        message,
    )


def import_scenario(text: str, name: str, cat: dict, upload_dir) -> tuple:
    """(values, notices) from a scenario YAML's text; raises ScenarioError for bad scenarios."""
    from roofline.api import ScenarioError, load_scenario

    doc = uploads.parse_scenario_text(text, name)
    problems = codec_scenario.reference_problems(doc, cat, upload_dir)
    if problems:
        raise ScenarioError([f"{name}: {p}" for p in problems])
    resolved = dict(doc)
    if isinstance(doc.get("model"), str):
        resolved["model"] = model_refs.resolve_model(
            model_refs.upload_ref(doc["model"], upload_dir), upload_dir
        )
    load_scenario(resolved, name=name)  # every field checked, with the simulator's messages
    return codec_scenario.from_scenario(doc, cat, upload_dir)


def save_plan(trigger, save_clicks, query, stored):
    """Save / Clear (`trigger`: the button's id) -> (the saved plans for the browser's store, a
    message)."""
    if trigger == "plan-saved-clear":
        return [], None
    if not save_clicks:
        return no_update, None
    try:
        return saved.save(stored, query or ""), None
    except Exception as exc:
        return no_update, alert(user_message(exc, "saving the plan"), "error", "Could not save the plan:")


def show_saved(stored):
    """The browser's saved plans -> the table's rows (recomputed from their queries)."""
    return saved.table_rows(stored)


# Reads an upload in the browser and hands the server at most MAX_UPLOAD_BYTES: larger files get
# a message without being sent.
UPLOAD_JS = """
function(yamlContents, configContents, yamlName, configName) {
    const trig = (window.dash_clientside.callback_context.triggered || [])[0];
    if (!trig || !trig.value) { return window.dash_clientside.no_update; }
    const kind = trig.prop_id.startsWith('plan-upload-config') ? 'config' : 'scenario';
    const contents = kind === 'config' ? configContents : yamlContents;
    const filename = kind === 'config' ? configName : yamlName;
    const b64 = contents.split(',')[1] || '';
    const pad = b64.endsWith('==') ? 2 : (b64.endsWith('=') ? 1 : 0);
    const size = Math.floor(b64.length * 3 / 4) - pad;
    if (size > LIMIT) {
        return {kind: kind, filename: filename, stamp: Date.now(),
                error: 'the file is ' + size + ' bytes; uploads are limited to ' + LIMIT + ' bytes (1 MiB)'};
    }
    return {kind: kind, filename: filename, contents: contents, stamp: Date.now()};
}
""".replace("LIMIT", str(uploads.MAX_UPLOAD_BYTES))

SHOW_PARAMS_JS = """
function(on) { return {display: (on && on.length) ? 'block' : 'none'}; }
"""


def check_controls(field_ids, method_ids, param_ids) -> None:
    """Refuse a (crafted) request that carries more controls than the page has."""
    from roofline.api import REGISTRY

    budget.check_controls(
        {
            "fields": (len(field_ids), len(state.FIELD_PATHS)),
            "methods": (len(method_ids), len(REGISTRY)),
            "method parameters": (len(param_ids), sum(len(c.params) for c in REGISTRY.values())),
        }
    )


def refused_plan(message, *args):
    empty = figures.message_figure("no result")
    return alert(message, "error"), [], None, empty, empty, empty, no_update, None, no_update


def refused_curves(message, *args):
    return figures.message_figure(message[:200])


def refused_upload(message, data, fv, mv, pv, fi, mi, pi):
    keep = ([no_update] * len(fi), [no_update] * len(mi), [no_update] * len(pi), no_update)
    return (*keep, alert(message, "error", "Could not use the upload:"))


def register_callbacks(app) -> None:
    control_inputs = [Input(FIELDS, "value"), Input(METHODS, "value"), Input(PARAMS, "value")]
    control_states = [State(FIELDS, "value"), State(METHODS, "value"), State(PARAMS, "value")]
    ids = [State(FIELDS, "id"), State(METHODS, "id"), State(PARAMS, "id")]

    def interleave(values, idents):
        return [x for pair in zip(values, idents) for x in pair]

    # a shared plan is computed once per worker; an error (first output set) is never kept
    plan_memo = memo.memoized(update_plan, keep=lambda out: out[0] is None)
    curves_memo = memo.memoized(update_curves, keep=lambda fig: bool(fig["data"]))

    @app.callback(
        Output("plan-alert", "children"),
        Output("plan-kpis", "children"),
        Output("plan-warnings", "children"),
        Output("plan-roofline", "figure"),
        Output("plan-breakdown", "figure"),
        Output("plan-memory", "figure"),
        Output("plan-gpus", "children"),
        Output("plan-deltas", "children"),
        Output("shared-query", "data"),
        *control_inputs,
        *ids,
    )
    @budget.bounded_callback(refused_plan, "simulating the plan")
    def _update_plan(fv, mv, pv, fi, mi, pi):
        check_controls(fi, mi, pi)
        return plan_memo(*interleave([fv, mv, pv], [fi, mi, pi]))

    app.callback(Output("plan-layers", "figure"), Input("plan-roofline", "clickData"))(
        budget.bounded(
            figures_roofline.make_layers_figure,
            lambda message, *args: figures.message_figure(message[:200]),
            "showing the layers",
        )
    )

    @app.callback(Output("plan-curves", "figure"), *control_inputs, *ids)
    @budget.bounded_callback(refused_curves, "computing the context curves")
    def _update_curves(fv, mv, pv, fi, mi, pi):
        check_controls(fi, mi, pi)
        return curves_memo(*interleave([fv, mv, pv], [fi, mi, pi]))

    app.callback(
        Output("plan-download", "data"),
        Input("plan-export", "n_clicks"),
        State("shared-query", "data"),
        prevent_initial_call=True,
    )(budget.bounded(export_scenario, lambda message, *args: no_update, "exporting the plan"))

    @app.callback(
        Output(FIELDS, "value"),
        Output(METHODS, "value"),
        Output(PARAMS, "value"),
        Output(controls.field_id("model"), "options"),
        Output("plan-import-alert", "children"),
        Input("plan-upload-store", "data"),
        *control_states,
        *ids,
        prevent_initial_call=True,
    )
    @budget.bounded_callback(refused_upload, "reading the upload")
    def _load_upload(data, fv, mv, pv, fi, mi, pi):
        check_controls(fi, mi, pi)
        return load_upload(data, *interleave([fv, mv, pv], [fi, mi, pi]))

    app.callback(
        Output("saved-plans", "data"),
        Output("plan-saved-alert", "children"),
        Input("plan-save", "n_clicks"),
        Input("plan-saved-clear", "n_clicks"),
        State("shared-query", "data"),
        State("saved-plans", "data"),
        prevent_initial_call=True,
    )(
        budget.bounded(
            lambda save_clicks, clear_clicks, query, stored: save_plan(
                dash.callback_context.triggered_id, save_clicks, query, stored
            ),
            lambda message, *args: (no_update, alert(message, "error")),
            "saving the plan",
        )
    )
    app.callback(Output("plan-saved-table", "data"), Input("saved-plans", "data"))(
        budget.bounded(show_saved, lambda message, *args: [], "listing the saved plans")
    )
    app.clientside_callback(
        UPLOAD_JS,
        Output("plan-upload-store", "data"),
        Input("plan-upload-yaml", "contents"),
        Input("plan-upload-config", "contents"),
        State("plan-upload-yaml", "filename"),
        State("plan-upload-config", "filename"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        SHOW_PARAMS_JS,
        Output({"type": controls.PARAMS_BOX, "method": MATCH}, "style"),
        Input({"type": controls.METHOD, "method": MATCH}, "value"),
        prevent_initial_call=True,
    )
