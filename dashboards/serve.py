"""Serving the dashboard with several worker processes: `serve(app, host, port, workers)`.

A callback is CPU-bound Python (the simulator and plotly), so threads of one process share one
core; the Plan page of many users needs processes. gunicorn's sync workers are forked from the
process that built the app (`preload_app`), each answers one request at a time in its main
thread, which lets `budget.time_limit` interrupt a callback past its time budget; gunicorn's own
`timeout` is the backstop that replaces a worker stuck in C code. Without gunicorn (Windows, or
not installed: `pip install roofline[dashboard]`) the app runs on Flask's threaded server and
says so.

What it leaves to others: the app (`app.create_app`), the budgets (`budget.py`).
"""

from __future__ import annotations

import gc
import os
import sys

GRACE_S = 30  # on top of the time budget before gunicorn replaces a worker that does not answer


def default_workers() -> int:
    """One worker per core, at least two (an upload never blocks every other user)."""
    return max(2, os.cpu_count() or 1)


def _gunicorn_application():
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:
        return None

    class Application(BaseApplication):
        def __init__(self, wsgi, options):
            self.flask, self.options = wsgi, options
            super().__init__()

        def load_config(self):
            for key, value in self.options.items():
                self.cfg.set(key, value)

        def load(self):
            return self.flask

    return Application


def gunicorn_options(host: str, port: int, workers: int, time_budget_s: float) -> dict:
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return {
        "bind": bind,
        "workers": workers,
        "worker_class": "sync",
        "preload_app": True,
        "timeout": int(time_budget_s + GRACE_S),
        "graceful_timeout": 5,
        "backlog": 1024,
        "accesslog": None,
        "loglevel": "warning",
    }


# What the dashboard's scatter and bar figures take from plotly's default template; the rest of it
# (defaults for 40 other trace types, geo, polar, 3-D scenes) is half of every Plan update's bytes
# and a deep copy per figure.
TEMPLATE_KEYS = (
    "colorway",
    "font",
    "hovermode",
    "hoverlabel",
    "paper_bgcolor",
    "plot_bgcolor",
    "xaxis",
    "yaxis",
    "title",
)


def use_lean_template() -> None:
    """Make this process's default plotly template the default one's layout essentials (the same
    look for the dashboard's figures, half the bytes); only the server process calls it."""
    import plotly.graph_objects as go
    import plotly.io as pio

    layout = pio.templates["plotly"].layout.to_plotly_json()
    pio.templates["roofline-dashboard"] = go.layout.Template(
        layout={k: v for k, v in layout.items() if k in TEMPLATE_KEYS}
    )
    pio.templates.default = "roofline-dashboard"


def serve(app, host: str, port: int, workers: int, time_budget_s: float) -> None:
    """Serve the Dash app until interrupted."""
    use_lean_template()
    # What is built so far (the app, Dash, plotly, numpy, the zoo) lives as long as the server:
    # out of the collector's way, a worker's collections stay short, and forked workers share
    # those pages instead of copying them when the collector touches them.
    gc.freeze()
    application = _gunicorn_application() if workers > 1 else None
    if application is None:
        if workers > 1:
            print(
                "roofline dashboard: gunicorn is not installed (pip install 'roofline[dashboard]'); "
                "serving with one process",
                file=sys.stderr,
            )
        app.run(host=host, port=port, debug=False, threaded=True)
        return
    application(app.server, gunicorn_options(host, port, workers, time_budget_s)).run()
