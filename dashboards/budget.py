"""Per-request budgets of the dashboard's callbacks: time and size.

* Time: `bounded(fn, refused, doing)` runs a callback under a wall-clock limit (`TIME_BUDGET_S`, set by
  `roofline dashboard --time-budget`). Past it the callback is interrupted (SIGALRM in the worker
  that runs it) and the page gets `refused(message, *args)`: a clear "took too long" instead of a worker
  held for minutes. The multi-worker server (`serve.py`) runs each request in its worker process's
  main thread, where the alarm can interrupt it; in a thread (the single-process fallback, tests
  in threads) the limit cannot interrupt and only the size budget applies.
* Size: Flask refuses a request body over `app.MAX_REQUEST_BYTES` before reading it, uploads are
  checked before decoding (`uploads.py`), YAML aliases before expanding (`roofline.fileio.load_yaml`), and
  `check_controls` refuses a request carrying more controls than the page has.

What it leaves to others: which outputs a refused callback shows (each page's `refused`).
"""

from __future__ import annotations

import contextlib
import signal
import threading

from roofline.api import UserError

TIME_BUDGET_S = 20.0


class RequestRefused(UserError):
    """A request over its time or size budget; the message is meant for the page."""


class TookTooLong(RequestRefused):
    pass


def set_time_budget(seconds: float) -> None:
    global TIME_BUDGET_S
    TIME_BUDGET_S = float(seconds)


def _can_interrupt() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def time_limit(seconds: float, doing: str):
    """Raise TookTooLong inside the block once `seconds` have passed (main thread only)."""
    if not _can_interrupt() or seconds <= 0:
        yield
        return

    def alarm(signum, frame):
        raise TookTooLong(
            f"{doing} took too long (over {seconds:g} s) and was stopped; try a smaller workload, "
            "fewer methods or a smaller GPU budget"
        )

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def bounded(fn, refused, doing: str):
    """`fn` under the time budget; a RequestRefused (over time, or a size check inside `fn`)
    becomes `refused(message, *args)`, the callback's outputs for an error."""

    def run(*args):
        try:
            with time_limit(TIME_BUDGET_S, doing):
                return fn(*args)
        except RequestRefused as exc:
            return refused(str(exc), *args)

    run.__name__ = getattr(fn, "__name__", "callback")
    run.__doc__ = fn.__doc__
    return run


def bounded_callback(refused, doing: str):
    """Decorator form of `bounded`."""
    return lambda fn: bounded(fn, refused, doing)


def check_controls(counts: dict) -> None:
    """counts: {what: (received, most the page has)}; refuse a crafted request with more."""
    for what, (got, most) in counts.items():
        if got > most:
            raise RequestRefused(f"the request carries too many {what} ({got}; the page has {most})")
