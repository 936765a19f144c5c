"""Progress and budget of a calibration run: the progress line on stderr and the seconds each
microbenchmark group should take (computed from the grids and datasheet rates, without a GPU).

Timing the kernels is `timing.Timer`'s job; running the groups is `calibrate.calibrate`'s.
"""

from __future__ import annotations

import time

from roofline.profilers.microbench import GROUPS, group_module

TIMER_SETTINGS = {"quick": (10.0, 40.0), "full": (25.0, 100.0)}  # do_bench warmup_ms, rep_ms

# ---------------------------------------------------------------------------------------- progress


class Progress:
    """A text progress line on stderr: rewritten in place on a terminal, one line per group otherwise.
    (Wall-clock time here is for the display only; kernels are timed by the Timer.)"""

    def __init__(self, stream, groups: list, estimates: dict):
        self.stream = stream
        self.groups = groups
        self.estimates = estimates
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.t0 = time.monotonic()
        self.current = ""
        self.index = 0

    def _clock(self) -> str:
        s = int(time.monotonic() - self.t0)
        return f"{s // 60}:{s % 60:02d}"

    def _write(self, text: str, final: bool) -> None:
        if self.stream is None:
            return
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        elif final:
            self.stream.write(text + "\n")
        self.stream.flush()

    def start(self, name: str) -> None:
        self.index += 1
        self.current = name
        est = self.estimates.get(name)
        hint = f" (about {est:.0f} s)" if est else ""
        self._write(f"[{self.index}/{len(self.groups)}] {name}{hint} ...", final=not self.tty)

    def point(self, done: int, total: int) -> None:
        if self.tty:
            width = 24
            fill = int(width * done / max(total, 1))
            bar = "#" * fill + "." * (width - fill)
            self._write(
                f"[{self.index}/{len(self.groups)}] {self.current:<20} [{bar}] {done}/{total}  {self._clock()}",
                final=False,
            )

    def end(self, name: str, points: list, seconds: float, error: str | None = None) -> None:
        if error:
            status = f"FAILED: {error}"
        else:
            skipped = sum(1 for p in points if "skipped" in p)
            status = f"{len(points) - skipped} points" + (f", {skipped} skipped" if skipped else "")
        self._write(
            f"[{self.index}/{len(self.groups)}] {name:<20} {status} in {seconds:.1f} s  ({self._clock()})",
            True,
        )

    def note(self, text: str) -> None:
        if self.stream is not None:
            self.stream.write(text + "\n")
            self.stream.flush()


# ------------------------------------------------------------------------------------- estimating


def estimate_seconds(hw, quick: bool, groups=GROUPS) -> dict:
    """Seconds each group should take on `hw` (datasheet rates, do_bench's budgets, compile time for
    Triton kernels): the run's budget, computed from the grids without a GPU."""
    from roofline.profilers.microbench.common import BenchContext, estimate_case_seconds

    warmup_ms, rep_ms = TIMER_SETTINGS["quick" if quick else "full"]
    ctx = BenchContext(backend=None, hw=hw, quick=quick)
    out = {}
    for name in groups:
        cases = group_module(name).cases(ctx)
        out[name] = sum(estimate_case_seconds(c, warmup_ms, rep_ms) + c.compile_s for c in cases)
    return out


def point_counts(hw, quick: bool, groups=GROUPS) -> dict:
    from roofline.profilers.microbench.common import BenchContext

    ctx = BenchContext(backend=None, hw=hw, quick=quick)
    return {name: len(group_module(name).cases(ctx)) for name in groups}
