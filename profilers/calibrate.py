"""`roofline calibrate`: time the microbenchmark groups on this GPU, fit efficiency curves, write a profile.

Groups run in `microbench.GROUPS` order. After each group the finished groups are written to a
partial file beside the output (`<out stem>.partial.yaml`, atomically), so an interrupted run loses
at most the group in progress: the next run for the same device and mode resumes from it (always
with `--resume`, by default when the partial file matches; `--fresh` starts over). A group that
raises is recorded as failed (with its traceback, in the partial file) and the others still run;
out of memory at one point is a skipped point, not a failure.

At the end the efficiency curves of `simulator.calibration` are fitted with `fit_efficiency_curve`
(per op kind: `gemm_<dtype>` over cbrt(m n k), `attention_prefill` over the sequence length,
`attention_decode` and `hbm` over bytes moved; see CALIBRATE.md) and the profile is written, with
provenance and the compact raw points, so `refit()` can redo the fits without a GPU.

Importing this module needs neither torch nor a GPU: torch comes in with the backend and timer.
"""

from __future__ import annotations

import datetime
import hashlib
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from roofline.fileio import write_atomic
from roofline.profilers.microbench import GROUPS, group_module

FORMAT = 1  # of the partial file and the raw points; a partial of another format is not resumed
TIMER_SETTINGS = {"quick": (10.0, 40.0), "full": (25.0, 100.0)}  # do_bench warmup_ms, rep_ms
# Points whose median is less than twice the kernel overhead say more about the overhead than the
# kernel: they stay in raw but are left out of the fits.
MIN_NET_SHARE = 0.5
MIN_FIT_POINTS = 3


class CalibrateError(RuntimeError):
    """A calibration run that cannot start or go on (bad partial file, nothing to run)."""


# ---------------------------------------------------------------------------------------- YAML out


class _Flow(dict):
    """A mapping dumped on one line (raw points, curve points)."""


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # libyaml's emitter where available
    pass


_Dumper.add_representer(
    _Flow, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True)
)


def _represent_float(dumper, value: float):
    """Six significant figures, always readable back as a float (YAML 1.1 floats need a dot)."""
    if value != value or value in (float("inf"), float("-inf")):
        return dumper.represent_float(value)
    text = f"{value:.6g}"
    if "." not in text:
        mantissa, e, exp = text.partition("e")
        text = f"{mantissa}.0{e}{exp}"
    return dumper.represent_scalar("tag:yaml.org,2002:float", text)


_Dumper.add_representer(float, _represent_float)


def _flow_points(points: list) -> list:
    return [_Flow(p) for p in points]


def dump_yaml(doc: dict) -> str:
    def conv(node, key=None):
        if isinstance(node, dict):
            return {k: conv(v, k) for k, v in node.items()}
        if isinstance(node, list) and node and all(isinstance(p, dict) for p in node):
            return _flow_points(node)
        return node

    return yaml.dump(conv(doc), Dumper=_Dumper, sort_keys=False, width=200, allow_unicode=True)


def write_yaml_atomic(doc: dict, path: Path) -> None:
    """The profile as YAML, written atomically (roofline.fileio.write_atomic)."""
    write_atomic(path, dump_yaml(doc))


def partial_path(out: Path) -> Path:
    out = Path(out)
    stem = out.name[: -len(out.suffix)] if out.suffix in (".yaml", ".yml") else out.name
    return out.with_name(f"{stem}.partial.yaml")


def default_out(hardware: str) -> Path:
    from roofline.hwspecs import CALIBRATION_DIR

    return Path(CALIBRATION_DIR) / f"{hardware}.yaml"


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


# ---------------------------------------------------------------------------------------- fitting


def _sig(v: float) -> float:
    return float(f"{float(v):.4g}")


def _net(points: list, overhead: float) -> tuple:
    """(x, efficiency net of the kernel overhead) of the points fit for fitting."""
    xs, es = [], []
    for p in points:
        t, e, x = p.get("seconds"), p.get("efficiency"), p.get("x")
        if t is None or e is None or x is None or t <= 0 or e <= 0 or x <= 0:
            continue
        if overhead:
            if t - overhead < MIN_NET_SHARE * t:
                continue
            e = e * t / (t - overhead)
        xs.append(float(x))
        es.append(float(e))
    return xs, es


def _best_per_shape(points: list, keys: tuple) -> list:
    best = {}
    for p in points:
        if "efficiency" not in p:
            continue
        key = tuple(p.get(k) for k in keys)
        if key not in best or p["efficiency"] > best[key]["efficiency"]:
            best[key] = p
    return list(best.values())


# kind -> (group, what x is, how the points are chosen)
CURVES = {
    "gemm_bf16": ("gemm", "cbrt(m*n*k)", "bf16 GEMMs whose compute roof binds"),
    "gemm_fp16": ("gemm", "cbrt(m*n*k)", "fp16 GEMMs whose compute roof binds"),
    "gemm_fp8": ("gemm", "cbrt(m*n*k)", "fp8 GEMMs whose compute roof binds"),
    "attention_prefill": ("attention_prefill", "sequence length", "head dim 128, causal, flash SDPA"),
    "attention_decode": ("attention_decode", "bytes moved", "faster of triton and sdpa per shape"),
    "hbm": ("hbm", "bytes moved", "STREAM triad, faster of torch and triton per size"),
}


def curve_points(kind: str, raw: dict) -> list:
    """The raw points a curve is fitted to."""
    group = CURVES[kind][0]
    points = [p for p in raw.get(group) or [] if "skipped" not in p]
    if kind.startswith("gemm_"):
        dtype = kind.removeprefix("gemm_")
        return [p for p in points if p.get("dtype") == dtype and p.get("bound") == "compute"]
    if kind == "attention_prefill":
        return [p for p in points if p.get("head_dim") == 128]
    if kind == "attention_decode":
        return _best_per_shape(points, ("kv_len", "batch", "group"))
    return _best_per_shape([p for p in points if p.get("op") == "triad"], ("buffer_bytes",))


def fit_curves(raw: dict, overhead: float | None) -> tuple:
    """({kind: {fit, residual, points, x, source}}, {kind: why no curve}) from raw points."""
    from roofline.profilers.efficiency_fit import fit_efficiency_curve
    from roofline.profilers.timing import hill

    curves, notes = {}, {}
    for kind, (group, x_name, chosen) in CURVES.items():
        if group not in raw:
            continue
        xs, es = _net(curve_points(kind, raw), overhead or 0.0)
        if len(xs) < MIN_FIT_POINTS:
            if xs or kind in ("gemm_bf16", "attention_prefill", "hbm", "attention_decode"):
                notes[kind] = f"{len(xs)} usable point(s); a fit needs {MIN_FIT_POINTS}"
            continue
        try:
            fitted = fit_efficiency_curve(xs, es)
        except (ValueError, RuntimeError) as exc:  # curve_fit raises RuntimeError when it does not converge
            notes[kind] = f"fit failed: {str(exc).splitlines()[0][:160]}"
            continue
        fit = fitted["fit"]
        curves[kind] = {
            "fit": {k: _sig(v) for k, v in fit.items()},
            "residual": _sig(fitted["residual"]),
            "x": x_name,
            "source": f"{group}: {chosen}, efficiency net of kernel_overhead_s",
            "points": [  # measured, and the fitted curve at the same x
                {
                    "x": _sig(p["x"]),
                    "efficiency": _sig(p["efficiency"]),
                    "fitted": _sig(hill(p["x"], fit["e_max"], fit["x_half"], fit["p"])),
                }
                for p in fitted["points"]
            ],
        }
    return curves, notes


def _summary(raw: dict) -> dict:
    out = {}
    triad = [p for p in raw.get("hbm") or [] if p.get("op") == "triad" and "bytes_per_s" in p]
    if triad:
        best = max(triad, key=lambda p: p["bytes_per_s"])
        out["hbm_triad_best_Bps"] = best["bytes_per_s"]
        out["hbm_triad_best_efficiency"] = best.get("efficiency")
    for d in ("h2d", "d2h"):
        pts = [p for p in raw.get("host_link") or [] if p.get("direction") == d and "bytes_per_s" in p]
        if pts:
            best = max(pts, key=lambda p: p["bytes_per_s"])
            out[f"host_link_{d}_best_Bps"] = best["bytes_per_s"]
            out[f"host_link_{d}_best_efficiency"] = best.get("efficiency")
    for p in raw.get("launch") or []:
        if p.get("launches", 1) > 1 and "seconds" in p:
            out["eager_launch_s"] = p["seconds"]
    return out


def build_profile(hardware: str, provenance: dict, raw: dict, today: str | None = None) -> dict:
    """The profile document (parse_profile's format plus raw points, notes and a summary)."""
    from roofline.profilers.microbench.launch import kernel_overhead

    overhead = kernel_overhead(raw.get("launch") or [])
    curves, notes = fit_curves(raw, overhead)
    date = today or datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    digest = hashlib.sha256(yaml.safe_dump(raw, sort_keys=True).encode()).hexdigest()[:8]
    doc = {
        "profile_id": f"{hardware}-{date}-{digest}",
        "hardware": hardware,
        "provenance": {**provenance, "date": date},
    }
    if overhead is not None:
        doc["kernel_overhead_s"] = overhead
    doc["curves"] = curves
    if notes:
        doc["fit_notes"] = notes
    summary = _summary(raw)
    if summary:
        doc["summary"] = summary
    doc["raw"] = raw
    return doc


def refit(doc: dict) -> dict:
    """The same profile with its curves fitted again from its raw points (no GPU needed)."""
    raw = doc.get("raw") or {}
    curves, notes = fit_curves(raw, doc.get("kernel_overhead_s"))
    out = {k: v for k, v in doc.items() if k not in ("curves", "fit_notes", "raw", "summary")}
    out["curves"] = curves
    if notes:
        out["fit_notes"] = notes
    out["raw"] = raw
    return out


# ------------------------------------------------------------------------------------------ running


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
        prev = yaml.safe_load(out.read_text())
        prov, raw = prev.get("provenance") or {}, prev.get("raw") or {}
    except (OSError, yaml.YAMLError, AttributeError):
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


def summary_table(profile: dict) -> str:
    """The fitted curves as a short text table."""
    lines = [f"profile {profile['profile_id']} ({profile['hardware']})"]
    if profile.get("kernel_overhead_s") is not None:
        lines.append(f"  kernel overhead {profile['kernel_overhead_s'] * 1e6:.2f} us")
    lines.append(f"  {'curve':<18} {'e_max':>6} {'x_half':>10} {'p':>5} {'resid':>6} {'points':>6}  x")
    for kind, c in profile["curves"].items():
        f = c["fit"]
        lines.append(
            f"  {kind:<18} {f['e_max']:>6.3f} {f['x_half']:>10.4g} {f['p']:>5.2f} {c['residual']:>6.1%} "
            f"{len(c['points']):>6}  {c.get('x', '')}"
        )
    for kind, why in (profile.get("fit_notes") or {}).items():
        lines.append(f"  {kind:<18} no curve: {why}")
    return "\n".join(lines)
