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
    """repr() of a user's value, cut so that an error message stays readable. Never builds the
    full repr: a value of millions of elements (an alias bomb) or digits costs `limit` work."""
    text = _bounded_repr(value, limit + 1, 0)
    return text if len(text) <= limit else text[: limit - 5] + "...>"


def _bounded_repr(value, budget: int, depth: int) -> str:
    """At least the first `budget` characters of repr(value) when it is that long (else all of it)."""
    if isinstance(value, str):
        return repr(value[:budget])
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        if value.bit_length() > 3 * budget + 4:  # more digits than fit; str() of a huge int is slow
            return f"<an integer of about {int(value.bit_length() * 0.30103)} digits>"
        return repr(value)
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        if depth > 20:
            return "[...]"
        brackets = {list: "[]", tuple: "()", dict: "{}"}.get(type(value), "{}")
        items = iter(value.items()) if isinstance(value, dict) else iter(value)
        parts, used = [], 1
        for item in items:
            if used > budget:
                parts.append("...")
                break
            if isinstance(value, dict):
                k, v = item
                part = (
                    _bounded_repr(k, budget - used, depth + 1)
                    + ": "
                    + _bounded_repr(v, budget - used, depth + 1)
                )
            else:
                part = _bounded_repr(item, budget - used, depth + 1)
            parts.append(part)
            used += len(part) + 2
        return brackets[0] + ", ".join(parts) + brackets[1]
    return repr(value)[:budget] if len(type(value).__name__) < 40 else f"<{type(value).__name__[:40]}>"
