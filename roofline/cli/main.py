"""`roofline` entry point: argument parsing, dispatch, and turning bad input into clear messages."""

from __future__ import annotations

import argparse
import os
import sys

from roofline.cli import (
    calibrate_cmd,
    compare_cmd,
    completion_cmd,
    dashboard_cmd,
    hw_cmd,
    methods_cmd,
    models_cmd,
    plan_cmd,
    schema_cmd,
    serve_cmd,
    simulate_cmd,
    validate_cmd,
)

SUBCOMMANDS = {
    "simulate": simulate_cmd,
    "serve": serve_cmd,
    "compare": compare_cmd,
    "methods": methods_cmd,
    "plan": plan_cmd,
    "hw": hw_cmd,
    "schema": schema_cmd,
    "models": models_cmd,
    "dashboard": dashboard_cmd,
    "calibrate": calibrate_cmd,
    "validate": validate_cmd,
    "completion": completion_cmd,
}


def build_parser() -> argparse.ArgumentParser:
    import roofline

    parser = argparse.ArgumentParser(
        prog="roofline",
        description="Roofline profiler and cost simulator for long-context LLM inference.",
    )
    parser.add_argument("--version", action="version", version=f"roofline {roofline.__version__}")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks for unexpected errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in SUBCOMMANDS.values():
        module.add_parser(sub)
    return parser


def main(argv=None) -> int:
    from roofline.api import UserError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    try:
        return SUBCOMMANDS[args.command].run(args) or 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (`roofline hw list | head`): end quietly, and keep the interpreter's
        # final flush of stdout from failing again (the Python docs' SIGPIPE recipe).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        print(f"error: {exc.strerror or exc}: {exc.filename or ''}", file=sys.stderr)
        return 2
    except Exception as exc:  # an internal error, not bad input: short message unless --debug
        if args.debug:
            raise
        print(
            f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
