"""Run one fuzz case in this process and say how it ended.

Outcomes: `result` (records came back and are finite and non-negative where they must be),
`clean error` (a UserError, or exit code 2 with a message and no traceback), `traceback <signature>`
(any other exception, named by its type and the deepest repository frame), `over time` (past the
case's time bound), `over memory` (a MemoryError, or peak memory grew past the bound), `long message`
(a clean error whose text is longer than MAX_MESSAGE_CHARS).
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import resource
import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import roofline.hwspecs as hwspecs
from roofline.api import UserError, simulate
from roofline.cli.main import main as cli_main

ROOT = Path(__file__).resolve().parents[2]
MAX_MESSAGE_CHARS = 2200  # ScenarioError lists problems up to 2,000 characters, then counts the rest


class CaseTimeout(BaseException):
    """Raised by the timer inside a case that ran past its bound (BaseException: nothing swallows it)."""


@dataclass
class Outcome:
    kind: str  # result | clean error | traceback | over time | over memory | long message
    detail: str = ""
    seconds: float = 0.0

    @property
    def label(self) -> str:
        return f"{self.kind} {self.detail}".strip() if self.kind == "traceback" else self.kind


def _signature(exc: BaseException) -> str:
    """`Type at file:function` of the deepest frame inside the repository (not the fuzz code)."""
    frames = [
        f
        for f in traceback.extract_tb(exc.__traceback__)
        if f.filename.startswith(str(ROOT)) and "/tests/fuzz/" not in f.filename
    ]
    where = f"{Path(frames[-1].filename).relative_to(ROOT)}:{frames[-1].name}" if frames else "?"
    return f"{type(exc).__name__} at {where}"


_ARMED = [False]  # the alarm interrupts a case only while the case runs, never its clean-up


def _alarm(signum, frame):
    if _ARMED[0]:
        _ARMED[0] = False
        raise CaseTimeout()


def _check_records(records) -> str | None:
    for rec in records:
        for key in ("ttft_s", "tpot_s", "e2e_s"):
            v = rec.get(key)
            if v is not None and (not math.isfinite(v) or v < 0):
                return f"{key}={v}"
    return None


def _run(case) -> Outcome:
    if case.kind == "cli":
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                rc = cli_main(["--debug", *case.argv])
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 2
        text = err.getvalue()
        if rc == 0:
            return Outcome("result")
        # 2: a usage or input error; 1: a command's own "no answer" (`plan` with no layout that fits
        # or meets the SLO), both with a message; an internal error raises under --debug
        if rc in (1, 2) and "Traceback" not in text and "internal error" not in text:
            return Outcome("long message" if len(text) > MAX_MESSAGE_CHARS else "clean error", text[:200])
        return Outcome("traceback", f"exit {rc}: {text[:120]}")
    source = case.path if case.path else case.doc
    try:
        records = simulate(source, name=None if case.path else "fuzz").records()
    except UserError as exc:
        text = str(exc)
        return Outcome("long message" if len(text) > MAX_MESSAGE_CHARS else "clean error", text[:200])
    bad = _check_records(records)
    return Outcome("traceback", f"invariant {bad}") if bad else Outcome("result")


def run_case(case, time_limit_s: float) -> Outcome:
    """Run `case` under a wall-clock bound; never raises (except KeyboardInterrupt)."""
    # `calibration: auto` reads the folder ROOFLINE_CALIBRATION_DIR names (the test suite points it at
    # an empty one), else hwspecs.CALIBRATION_DIR: a case's folder goes in the variable, which wins
    saved_env = os.environ.get(hwspecs.CALIBRATION_DIR_ENV)
    if case.auto_profiles:
        os.environ[hwspecs.CALIBRATION_DIR_ENV] = case.auto_profiles
    previous = signal.signal(signal.SIGALRM, _alarm)
    _ARMED[0] = True
    signal.setitimer(signal.ITIMER_REAL, time_limit_s)
    start = time.perf_counter()
    try:
        outcome = _run(case)
        _ARMED[0] = False
    except CaseTimeout:
        outcome = Outcome("over time")
    except MemoryError:
        outcome = Outcome("over memory")
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # noqa: BLE001 - every other exception is a finding
        outcome = Outcome("traceback", _signature(exc))
    finally:
        _ARMED[0] = False  # a late alarm is ignored from here on
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if saved_env is None:
            os.environ.pop(hwspecs.CALIBRATION_DIR_ENV, None)
        else:
            os.environ[hwspecs.CALIBRATION_DIR_ENV] = saved_env
    outcome.seconds = time.perf_counter() - start
    return outcome


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
