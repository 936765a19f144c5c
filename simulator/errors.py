"""Errors caused by what a user gave us, and the wording they share.

Every error whose cause is the user's input — a scenario field, a model config, a hardware file,
a calibration profile, an uploaded file, a trace — is a `UserError`, so a face (CLI, dashboard,
profiler) catches that one class, prints the message and exits cleanly; anything else is an
internal error. The modules that raise keep their own subclasses (`ScenarioError`,
`ModelConfigError`, ...) for callers that want one kind. Name lookups say what the user probably
meant with `did_you_mean`, the one helper for that; `short` keeps a quoted value readable.
"""

from __future__ import annotations

import difflib


class UserError(ValueError):
    """Bad user input; the message says what is wrong and how to fix it."""


def suggestions(word, valid) -> list:
    """Names a user probably meant: up to three extending what they typed, else the closest spelling."""
    word, valid = str(word), [str(v) for v in valid]
    extending = [v for v in valid if v.startswith(word)] if word else []
    return extending[:3] if extending else difflib.get_close_matches(word, valid, n=1)


def did_you_mean(word, valid) -> str:
    """The sentence ` Did you mean 'x'?` (or `'x' or 'y'`) for a mistyped name; '' when none is close."""
    hint = suggestions(word, valid)
    return f" Did you mean {' or '.join(repr(h) for h in hint)}?" if hint else ""


def short(value, limit: int = 60) -> str:
    """repr() of a user's value, cut so that an error message stays readable."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "...>"
