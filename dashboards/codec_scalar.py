"""Typed scalars <-> text: a schema field's or method parameter's value as it appears in a URL
query, and a control's number as its field's kind."""

from __future__ import annotations

import math

NULL_OPTION = "null"  # a nullable field's "default" choice in a dropdown (Dash options cannot be None)


def format_scalar(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    return str(value)


def parse_scalar(text: str, kind: str, choices=(), nullable: bool = False):
    """A query-string value read as its field's kind; ValueError says what was expected."""
    text = text.strip()
    if text in ("null", "none", "") and nullable:
        return None
    if kind in ("int", "float"):
        try:
            value = float(text)
        except ValueError:
            raise ValueError("an integer" if kind == "int" else "a number") from None
        if not math.isfinite(value):
            raise ValueError("a finite number")
        if kind == "int" and not value.is_integer():
            raise ValueError("an integer")
        return int(value) if kind == "int" else value
    if kind == "bool":
        if text.lower() in ("true", "1", "yes"):
            return True
        if text.lower() in ("false", "0", "no"):
            return False
        raise ValueError("true or false")
    if kind == "choice":
        for c in choices:
            if str(c) == text:
                return c
        raise ValueError("one of " + ", ".join(map(str, choices)))
    return text


def coerce_number(value, kind: str):
    """A control's number as the field's kind (inputs return 4.0 for 4); other values unchanged."""
    if kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
