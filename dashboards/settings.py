"""Per-app settings (folders) and turning exceptions into messages for the page.

`create_app` stores the folders in the Flask config; page layouts and callbacks read them here, and
fall back to the defaults when called outside an app (tests call them directly).
"""

from __future__ import annotations

import logging
from pathlib import Path

import roofline
from roofline.api import UserError
from roofline.dashboards.uploads import default_upload_dir
from roofline.hwspecs import calibration_dir

CONFIG_KEY = "ROOFLINE_DASHBOARD"
LOG = logging.getLogger("roofline.dashboards")
USER_ERRORS = (UserError,)  # bad input: its message is shown; anything else is logged as internal


def default_settings() -> dict:
    return {
        "calibration_dir": calibration_dir(),
        "validation_dir": Path(roofline.__file__).resolve().parents[1] / "docs" / "validation",
        "upload_dir": default_upload_dir(),
    }


def settings() -> dict:
    """The running app's folders, or the defaults outside an app."""
    try:
        from flask import current_app

        return current_app.config.get(CONFIG_KEY) or default_settings()
    except RuntimeError:  # no app context: a test calling a callback directly
        return default_settings()


def user_message(exc: BaseException, doing: str) -> str:
    """The message the page shows: bad input says what is wrong; anything else is logged here
    with its traceback and the page gets a short generic message (never a traceback)."""
    if isinstance(exc, USER_ERRORS):
        return str(exc).replace("<scenario>: ", "")  # the page's scenario has no file name
    LOG.exception("dashboard: unexpected error while %s", doing)
    return (
        f"Internal error while {doing} ({type(exc).__name__}); it has been logged on the server. "
        "Change the input or report this plan's URL."
    )
