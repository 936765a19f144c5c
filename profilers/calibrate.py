"""`roofline calibrate`: time the microbenchmark groups on this GPU, fit efficiency curves, write a profile.

Groups run in `microbench.GROUPS` order. After each group the finished groups are written to a
partial file beside the output (`<out stem>.partial.yaml`, atomically), so an interrupted run loses
at most the group in progress: the next run for the same device and mode resumes from it (always
with `--resume`, by default when the partial file matches; `--fresh` starts over). A group that
raises is recorded as failed (with its traceback, in the partial file) and the others still run;
out of memory at one point is a skipped point, not a failure.

This module runs the groups; the fits and the profile document are `calibrate_fit`'s, the YAML
and file paths `calibrate_write`'s, the progress line and run budget `calibrate_progress`'s.

Importing this module needs neither torch nor a GPU: torch comes in with the backend and timer.
"""

from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from roofline.api import UserError
from roofline.profilers.calibrate_fit import build_profile
from roofline.profilers.calibrate_progress import TIMER_SETTINGS, Progress, estimate_seconds
from roofline.profilers.calibrate_write import default_out, partial_path, write_yaml_atomic
from roofline.profilers.microbench import GROUPS, group_module
from roofline.report.profiles import read_profile_document

FORMAT = 1  # of the partial file and the raw points; a partial of another format is not resumed


class CalibrateError(UserError):
    """A calibration run that cannot start or go on (bad partial file, nothing to run)."""


@dataclass
class RunResult:
    profile: dict
    out: Path
    partial: Path
    ran: list = field(default_factory=list)  # groups measured in this run
    resumed: list = field(default_factory=list)  # groups taken from the partial file
    failed: dict = field(default_factory=dict)  # group -> error line


def _identity(hardware: str, device_name: str, quick: bool) -> dict:
    return {"format": FORMAT, "hardware": hardware, "device": device_name, "quick": bool(quick)}


def _load_partial(path: Path):
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        return None, f"{path}: unreadable ({str(exc).splitlines()[0][:120]})"
    if not isinstance(doc, dict) or not isinstance(doc.get("identity"), dict):
        return None, f"{path}: not a calibration partial file"
    return doc, None


def _kept_from_output(out: Path, identity: dict, selected: list) -> dict:
    """Raw points of the groups not selected, from an existing profile of the same device and mode,
    so that `--groups X` re-measures X without dropping the rest of the profile."""
    if not out.is_file():
        return {}
    try:
        prev = read_profile_document(out, CalibrateError)
        prov, raw = prev.get("provenance") or {}, prev.get("raw") or {}
    except (OSError, CalibrateError, AttributeError):
        return {}
    same = (
        prev.get("hardware") == identity["hardware"]
        and prov.get("name") == identity["device"]
        and prov.get("quick") == identity["quick"]
    )
    if not same or not isinstance(raw, dict):
        return {}
    return {g: pts for g, pts in raw.items() if g in GROUPS and g not in selected and isinstance(pts, list)}


def calibrate(
    *,
    hardware: str,
    device,
    timer,
    backend,
    out: Path | None = None,
    quick: bool = False,
    groups=None,
    resume: bool | None = None,
    fresh: bool = False,
    stream="stderr",
    benches: dict | None = None,
    kernels: dict | None = None,
    today: str | None = None,
) -> RunResult:
    """Run the selected groups (default all) not already finished, then fit and write the profile.

    device: a `device.DeviceInfo`; timer: a `timing.Timer`; backend: a `microbench.common.TorchBackend`.
    resume: None resumes from a matching partial file, True also insists on one that matches,
    fresh ignores (and replaces) it. stream: where progress goes (default sys.stderr; None: silent).
    benches: group -> bench function overrides (tests); kernels: roofline.kernels module overrides (tests).
    """
    if stream == "stderr":
        stream = sys.stderr
    from roofline.hwspecs import load_hardware
    from roofline.profilers.microbench.common import BenchContext

    hw = load_hardware(hardware)
    out = Path(out) if out else default_out(hardware)
    if out.is_dir():
        raise CalibrateError(f"--out {out}: is a directory, not a file")
    selected = list(GROUPS) if not groups else [g for g in GROUPS if g in set(groups)]
    unknown = sorted(set(groups or ()) - set(GROUPS))
    if unknown:
        raise CalibrateError(f"unknown group(s) {', '.join(unknown)}; valid: {', '.join(GROUPS)}")
    ppath = partial_path(out)
    identity = _identity(hardware, device.name, quick)
    state = {"identity": identity, "device": device.provenance(), "groups": {}, "failed": {}}
    progress_note = Progress(stream, [], {}).note

    if ppath.exists() and not fresh:
        doc, problem = _load_partial(ppath)
        if doc is not None and doc["identity"] == identity:
            state["groups"] = dict(doc.get("groups") or {})
        else:
            problem = problem or (
                f"{ppath} is from another run ({', '.join(f'{k} {v}' for k, v in doc['identity'].items())})"
            )
            if resume:
                raise CalibrateError(f"--resume: {problem}; rerun with --fresh to start over")
            progress_note(f"note: {problem}; starting over (it will be replaced)")
    elif resume and not fresh:
        progress_note(f"note: --resume: no partial file {ppath}; starting from the beginning")

    kept = _kept_from_output(out, identity, selected) if groups else {}
    if kept:
        progress_note(
            f"keeping {', '.join(kept)} from {out} (same device and mode; not selected by --groups)"
        )
    resumed = [g for g in selected if g in state["groups"]]
    todo = [g for g in selected if g not in state["groups"]]
    if resumed:
        progress_note(f"resuming from {ppath}: {', '.join(resumed)} already done")
    estimates = estimate_seconds(hw, quick, todo) if todo else {}
    if todo:
        total = sum(estimates.values())
        progress_note(
            f"calibrating {device.name} as {hardware} ({'quick' if quick else 'full'}): "
            f"{len(todo)} group(s), about {total / 60:.1f} min"
        )
    progress = Progress(stream, todo, estimates)
    ctx = BenchContext(backend=backend, hw=hw, quick=quick, kernels=kernels, progress=progress.point)
    failed = {}
    for name in todo:
        bench = (benches or {}).get(name) or group_module(name).bench
        progress.start(name)
        t0 = time.monotonic()  # display only
        try:
            points = bench(timer, ctx)
        except Exception as exc:  # one broken group must not lose the others' results
            line = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            failed[name] = line
            state["failed"][name] = {"error": line, "traceback": traceback.format_exc()}
            progress.end(name, [], time.monotonic() - t0, error=line)
        else:
            state["groups"][name] = {"seconds": round(time.monotonic() - t0, 1), "points": points}
            state["failed"].pop(name, None)
            progress.end(name, points, time.monotonic() - t0)
        finally:
            if backend is not None:
                backend.release()
        write_yaml_atomic(state, ppath)

    done = {**kept, **{g: v["points"] for g, v in state["groups"].items()}}
    raw = {g: done[g] for g in GROUPS if g in done}
    warmup_ms, rep_ms = TIMER_SETTINGS["quick" if quick else "full"]
    provenance = {
        **device.provenance(),
        "quick": bool(quick),
        "groups": list(raw),
        "timer": getattr(timer, "name", type(timer).__name__),
        "timer_budget_ms": {"warmup": warmup_ms, "rep": rep_ms},
        "statistic": "median per point",
        "roofline": _roofline_version(),
    }
    if kept:
        provenance["groups_kept_from_previous_profile"] = list(kept)
    profile = build_profile(hardware, provenance, raw, today)
    if raw:
        write_yaml_atomic(profile, out)
    if not failed and all(g in done for g in GROUPS) and ppath.exists():
        ppath.unlink()
    return RunResult(profile, out, ppath, todo, resumed, failed)


def _roofline_version() -> str:
    try:
        import roofline

        return str(roofline.__version__)
    except (ImportError, AttributeError):
        return "unknown"


def point_errors(raw: dict) -> dict:
    """{group: number of points skipped with an error (not out of memory)}, for the run's warnings."""
    from roofline.profilers.microbench.common import ERROR_PREFIX

    out = {}
    for group, points in raw.items():
        n = sum(1 for p in points if str(p.get("skipped", "")).startswith(ERROR_PREFIX))
        if n:
            out[group] = n
    return out
