"""`roofline dashboard [--host 127.0.0.1] [--port 8050] [--workers N] [--time-budget S]`: serve the
Dash planning dashboard with several worker processes (`dashboards/serve.py`), each callback under
a time budget (`dashboards/budget.py`).

Dash is imported only when this subcommand runs, so `roofline simulate` never loads it.
"""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "dashboard",
        help="serve the planning dashboard (Plan, Compare, Serve, Calibration pages)",
        description="Start the Dash planning dashboard and print its URL. The plan's state is in the URL, "
        "so a plan can be shared as a link.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8050, help="port to listen on (default 8050)")
    p.add_argument("--calibration-dir", help="calibration profiles folder (default hwspecs/calibration)")
    p.add_argument("--validation-dir", help="validation reports folder (default docs/validation)")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes answering requests (default: one per core, at least 2; 1: a single process)",
    )
    p.add_argument(
        "--time-budget",
        type=float,
        default=20.0,
        metavar="S",
        help="seconds one update may take before it is stopped with a message (default 20)",
    )


def run(args) -> int:
    from roofline.api import ScenarioError

    if not 0 < args.port < 65536:
        raise ScenarioError([f"--port {args.port}: give 1..65535"])
    if args.workers is not None and not 1 <= args.workers <= 64:
        raise ScenarioError([f"--workers {args.workers}: give 1..64"])
    if not 0 < args.time_budget <= 3600:
        raise ScenarioError([f"--time-budget {args.time_budget:g}: give seconds in (0, 3600]"])
    from roofline.dashboards import budget, serve
    from roofline.dashboards.app import create_app

    budget.set_time_budget(args.time_budget)
    app = create_app(calibration_dir=args.calibration_dir, validation_dir=args.validation_dir)
    workers = args.workers or serve.default_workers()
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"roofline dashboard: http://{host}:{args.port}/ ({workers} workers)", flush=True)
    serve.serve(app, args.host, args.port, workers, args.time_budget)
    return 0
