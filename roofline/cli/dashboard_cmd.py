"""`roofline dashboard [--host 127.0.0.1] [--port 8050]`: serve the Dash planning dashboard.

Dash is imported only when this subcommand runs, so `roofline simulate` never loads it.
"""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser(
        "dashboard",
        help="serve the planning dashboard (Plan, Compare, Calibration pages)",
        description="Start the Dash planning dashboard and print its URL. The plan's state is in the URL, "
        "so a plan can be shared as a link.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8050, help="port to listen on (default 8050)")
    p.add_argument("--calibration-dir", help="calibration profiles folder (default hwspecs/calibration)")
    p.add_argument("--validation-dir", help="validation reports folder (default docs/validation)")


def run(args) -> int:
    from roofline.api import ScenarioError

    if not 0 < args.port < 65536:
        raise ScenarioError([f"--port {args.port}: give 1..65535"])
    from roofline.dashboards.app import create_app

    app = create_app(calibration_dir=args.calibration_dir, validation_dir=args.validation_dir)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"roofline dashboard: http://{host}:{args.port}/", flush=True)
    app.run(host=args.host, port=args.port, debug=False)
    return 0
