"""Display formatting of SI values: seconds, counts and bytes scaled for people to read. Values
inside the simulator stay SI; only the faces (CLI, dashboard, profilers' reports) call these."""

from __future__ import annotations

from roofline.simulator.units import GIB  # noqa: F401  (bytes per GiB, for the faces' GiB axes)


def si_time(s) -> str:
    if s is None:
        return "-"
    if s >= 3600:
        return f"{s / 3600:.3g} h"
    if s >= 60:
        return f"{s / 60:.3g} min"
    if s >= 1:
        return f"{s:.3g} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3g} ms"
    return f"{s * 1e6:.3g} us"


def si_count(x, unit="") -> str:
    if x is None:
        return "-"
    for scale, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}".strip()


def gib(x) -> str:
    return f"{x / GIB:.2f} GiB"


def wants_colour(stream) -> bool:
    """Whether to grey text on `stream`: a terminal, and no NO_COLOR (https://no-color.org)."""
    import os

    return bool(getattr(stream, "isatty", lambda: False)()) and not os.environ.get("NO_COLOR")


def dim(text: str) -> str:
    """`text` greyed (ANSI faint) for a terminal."""
    return f"\x1b[2m{text}\x1b[0m"
