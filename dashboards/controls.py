"""Dash controls generated from the scenario schema (SCHEMA) and the methods registry (REGISTRY):
one input per field and per method parameter, with the help text as the tooltip.

IDs are pattern-matching dicts so one callback reads them all:
`{"type": "plan-field", "path": <schema path>}`, `{"type": "plan-method", "method": <name>}` (a
checklist that switches the method on) and `{"type": "plan-param", "method": ..., "param": ...}`.
"""

from __future__ import annotations

from dash import dcc, html

from roofline.api import REGISTRY, REQUIRED, SCHEMA
from roofline.dashboards.codec_scalar import NULL_OPTION
from roofline.dashboards.model_refs import UPLOAD_PREFIX
from roofline.dashboards.state import FIELD_PATHS, is_model_param

FIELD = "plan-field"
METHOD = "plan-method"
PARAM = "plan-param"
PARAMS_BOX = "plan-params-box"

GROUPS = (
    ("Model and hardware", ("model", "hardware")),
    (
        "GPUs and layout",
        (
            "parallelism.tp",
            "parallelism.pp",
            "parallelism.cp",
            "parallelism.dp",
            "parallelism.ep",
            "parallelism.cp_variant",
        ),
    ),
    (
        "Data types",
        ("dtype.weights", "dtype.activations", "dtype.kv", "dtype.attention", "dtype.attention_weights"),
    ),
    (
        "Workload",
        (
            "workload.prompt_tokens",
            "workload.output_tokens",
            "workload.batch",
            "workload.shared_prefix_tokens",
            "workload.prefill_chunk_tokens",
        ),
    ),
)


def field_id(path: str) -> dict:
    return {"type": FIELD, "path": path}


def label_text(path: str) -> str:
    return path.rsplit(".", 1)[-1].replace("_", " ")


def _label(text: str, tip: str):
    return html.Label([text, html.Span(" ⓘ", className="tip")], title=tip, className="control-label")


def _number_input(cid, value, placeholder=None):
    """No min/max/step on the input: a browser-invalid number would reach the callback as None
    ("must not be null"); the simulator's own check names the range instead ("must be >= 1")."""
    return dcc.Input(
        id=cid,
        type="number",
        value=value,
        debounce=True,
        step="any",
        placeholder=placeholder,
        className="number-input",
    )


def dropdown_slot(dropdown):
    """A dcc.Dropdown in the box the page's stylesheet waits for: Dash renders a dropdown a frame
    or more after the rest of the page (its code is a lazy chunk behind React.Suspense), and
    while any slot is still empty the page stays hidden, so no label is ever painted alone."""
    return html.Div(dropdown, className="dropdown-slot")


def _dropdown(cid, options, value):
    return dropdown_slot(
        dcc.Dropdown(id=cid, options=options, value=value, clearable=False, className="dropdown")
    )


def model_options(catalog: dict, current=None) -> list:
    options = [{"label": name, "value": name} for name in catalog["model"]]
    if isinstance(current, str) and current.startswith(UPLOAD_PREFIX):
        options.insert(0, {"label": f"{current[len(UPLOAD_PREFIX) :]} (uploaded)", "value": current})
    return options


def field_control(path: str, value, catalog: dict, spec=None, cid=None, label: str | None = None):
    """Label (tooltip: the schema's help) and input for one scenario field. Another page passes
    its own `cid` (so the Plan page's callbacks never see it) and, for a field of its own, a `spec`
    with the schema's kind, help, choices and nullable."""
    spec = SCHEMA[path] if spec is None else spec
    cid = field_id(path) if cid is None else cid
    if path == "model":
        widget = _dropdown(cid, model_options(catalog, value), value)
    elif spec.kind == "name" and path in catalog:
        widget = _dropdown(cid, [{"label": n, "value": n} for n in catalog[path]], value)
    elif spec.kind == "choice":
        widget = _dropdown(cid, [{"label": c, "value": c} for c in spec.choices], value)
    elif path == "calibration":
        options = [
            {"label": c.rsplit("/", 1)[-1], "value": c}
            for c in catalog.get("calibration", ("auto", "datasheet"))
        ]
        widget = _dropdown(cid, options, value)
    elif spec.kind in ("int", "float"):
        widget = _number_input(cid, value, "none (null)" if spec.nullable else None)
    elif spec.kind == "bool":
        # a dropdown: typed text "false" is a string, which the scenario refuses
        options = [{"label": "true", "value": True}, {"label": "false", "value": False}]
        if spec.nullable:
            options.append({"label": "default (null)", "value": NULL_OPTION})
        widget = _dropdown(cid, options, NULL_OPTION if value is None and spec.nullable else value)
    else:
        widget = dcc.Input(id=cid, type="text", value=value, debounce=True, className="text-input")
    return html.Div([_label(label or label_text(path), spec.help), widget], className="control")


def param_tip(p) -> str:
    """A parameter's help with its kind, default and ranges (the tooltip)."""
    default = "required" if p.default is REQUIRED else f"default {p.default!r}"
    extra = [p.kind, default]
    if p.range_text():
        extra.append(p.range_text())
    if p.validated:
        extra.append(f"paper evaluated {p.validated[0]:g}..{p.validated[1]:g}")
    return f"{p.help} ({'; '.join(extra)})"


def param_control(method: str, name: str, value, catalog: dict):
    p = REGISTRY[method].params[name]
    cid = {"type": PARAM, "method": method, "param": name}
    if is_model_param(method, name):
        options = [{"label": "self", "value": "self"}] + model_options(catalog, value)
        if value not in [o["value"] for o in options]:
            options.append({"label": str(value), "value": value})
        widget = _dropdown(cid, options, value)
    elif p.kind == "choice":
        widget = _dropdown(cid, [{"label": str(c), "value": c} for c in p.choices], value)
    elif p.kind == "bool":
        widget = _dropdown(cid, [{"label": "true", "value": True}, {"label": "false", "value": False}], value)
    elif p.kind in ("int", "float"):
        widget = _number_input(cid, value)
    else:
        widget = dcc.Input(id=cid, type="text", value=value, debounce=True, className="text-input")
    return html.Div([_label(label_text(name), param_tip(p)), widget], className="control")


def method_block(name: str, enabled: bool, params: dict, catalog: dict):
    """A method's switch (tooltip: summary and citation) and its parameters, shown when on."""
    cls = REGISTRY[name]
    tip = f"{cls.summary}. {cls.citation}"
    return html.Div(
        [
            dcc.Checklist(
                id={"type": METHOD, "method": name},
                options=[{"label": html.Span(name, title=tip), "value": name}],
                value=[name] if enabled else [],
                className="method-switch",
            ),
            html.Div(cls.summary, className="method-summary", title=cls.citation),
            html.Div(
                [param_control(name, k, params[(name, k)], catalog) for k in cls.params],
                id={"type": PARAMS_BOX, "method": name},
                className="method-params",
                style={"display": "block" if enabled else "none"},
            ),
        ],
        className="method",
    )


def plan_controls(fields: dict, enabled: list, params: dict, catalog: dict) -> list:
    """The Plan page's sidebar sections, from control values (codec_controls.control_values)."""
    grouped = {p for _, paths in GROUPS for p in paths}
    sections = []
    for title, paths in GROUPS:
        children = [field_control(p, fields[p], catalog) for p in paths if p in FIELD_PATHS]
        if title == "GPUs and layout":
            children.insert(0, html.Div(id="plan-gpus", className="gpus-note"))
        sections.append(html.Details([html.Summary(title), *children], open=True, className="section"))
    sections.append(
        html.Details(
            [
                html.Summary(f"Methods ({len(REGISTRY)})"),
                html.P("Switch methods on to stack them; they apply in the registry's stage order."),
                *[method_block(name, name in enabled, params, catalog) for name in REGISTRY],
            ],
            open=True,
            className="section",
            id="plan-methods",
        )
    )
    rest = [p for p in FIELD_PATHS if p not in grouped]
    sections.append(
        html.Details(
            [html.Summary("Advanced"), *[field_control(p, fields[p], catalog) for p in rest]],
            className="section",
        )
    )
    return sections
