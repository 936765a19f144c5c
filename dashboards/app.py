"""The Dash app: `create_app()` wires the Plan, Compare, Serve and Calibration pages (discovered in
`pages/` by Dash pages), the navigation bar and the URL state.

Dash is imported here and in the pages only; `roofline dashboard` imports this module lazily, so
the `roofline simulate` path never loads Dash.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from roofline.dashboards.settings import CONFIG_KEY, default_settings
from roofline.dashboards.uploads import private_upload_dir

HERE = Path(__file__).resolve().parent
# A 1 MiB upload is ~1.4 MiB of base64 plus the controls' state; Flask refuses a larger request body
# (413) before reading it.
MAX_REQUEST_BYTES = 2 * 2**20

# Keeps the address bar and the navigation links in step with the Plan's state, without a page
# reload or a Dash navigation (history.replaceState is invisible to dcc.Location).
URL_SYNC_JS = """
function(query) {
    const s = query ? '?' + query : window.location.search;
    if (query && window.location.pathname === 'PLAN' && window.location.search !== s) {
        window.history.replaceState(window.history.state, '', 'PLAN' + s);
    }
    return ['PLAN' + s, 'COMPARE' + s];
}
"""


def create_app(calibration_dir=None, validation_dir=None, upload_dir=None):
    """The dashboard app. The folders default to hwspecs/calibration, docs/validation and, for
    uploaded config.json files, a new private folder of this server (mkdtemp, mode 0700)."""
    import dash
    from dash import Input, Output, dcc, html

    app = dash.Dash(
        "roofline.dashboards",
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        title="roofline",
        update_title=None,
        serve_locally=True,
    )
    cfg = default_settings()
    for key, value in (
        ("calibration_dir", calibration_dir),
        ("validation_dir", validation_dir),
        ("upload_dir", upload_dir),
    ):
        if value is not None:
            cfg[key] = Path(value)
    if upload_dir is None:
        cfg["upload_dir"] = private_upload_dir()
    # dcc.Dropdown's code is a lazily fetched chunk: without this the sidebar's labels were painted
    # alone and the dropdowns appeared once that chunk arrived. As a page script it is there before
    # the first render (the other lazy chunks, mathjax's 2 MB among them, stay lazy).
    app.scripts.append_script({"relative_package_path": "dcc/async-dropdown.js", "namespace": "dash"})
    app.server.config[CONFIG_KEY] = cfg
    app.server.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES

    plan_path, compare_path = app.get_relative_path("/"), app.get_relative_path("/compare")
    app.layout = html.Div(
        [
            html.Header(
                [
                    html.Span("roofline", className="brand"),
                    html.Span("long-context inference planner", className="tagline"),
                    html.Nav(
                        [
                            dcc.Link("Plan", href=plan_path, id="nav-plan"),
                            dcc.Link("Compare", href=compare_path, id="nav-compare"),
                            dcc.Link("Serve", href=app.get_relative_path("/serve"), id="nav-serve"),
                            dcc.Link(
                                "Calibration",
                                href=app.get_relative_path("/calibration"),
                                id="nav-calibration",
                            ),
                        ]
                    ),
                ],
                className="topbar",
            ),
            dcc.Store(id="shared-query"),
            html.Div(id="url-sync", hidden=True),
            dash.page_container,
        ]
    )
    for name in ("plan", "compare", "serve"):  # Dash has imported the pages by now
        importlib.import_module(f"roofline.dashboards.pages.{name}").register_callbacks(app)
    app.clientside_callback(
        URL_SYNC_JS.replace("PLAN", plan_path).replace("COMPARE", compare_path),
        Output("nav-plan", "href"),
        Output("nav-compare", "href"),
        Input("shared-query", "data"),
    )
    return app
