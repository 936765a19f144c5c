"""Calibration profiles: measured efficiency curves of one GPU, as the engine consumes them.

A profile (hwspecs/calibration/<hardware>.yaml, written by `roofline calibrate`) holds, per op kind,
the measured points and a fitted saturating curve of efficiency (achieved / datasheet peak)
against problem size x:

    eff(x) = e_max * x^p / (x^p + x_half^p)          (a Hill curve: rises with size, saturates)

x is cbrt(m n k) for GEMMs (per dtype, e.g. `gemm_bf16`), the sequence length for causal prefill
attention (`attention_prefill`, head dim 128), and bytes moved for HBM streaming (`hbm`). Inside
the measured range the fitted curve is used; outside it the efficiency at the nearest measured
boundary is held (no extrapolation), and the result says which points fell outside.
`kernel_overhead_s` is the measured launch + tail time of an empty kernel. A `collectives:` section
(profilers/collectives.py) gives measured alpha-beta fits per link; the engine's collectives then
use them (ring formula, measured step latency and bandwidth) instead of the datasheet defaults.
An op's `table:` (profilers/COLLECTIVES.md) is its measured latency per message size for each GPU
count; the engine prices that op on that many GPUs of the scale-up link from it (`CollectiveTable`),
the framework's own all-reduce from the `custom_all_reduce` entry's table.

This module parses and evaluates profiles; reading files is roofline.hwspecs' job.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from roofline.simulator.calibration_grids import parse_grids
from roofline.simulator.comm import COLLECTIVES
from roofline.simulator.errors import short
from roofline.simulator.grids import Grid, multilinear  # noqa: F401 (a profile's grids, re-exported)
from roofline.simulator.profile_fields import (  # noqa: F401 (CalibrationError re-exported)
    MAX_ALPHA_S,
    MAX_HILL_P,
    MAX_KERNEL_OVERHEAD_S,
    MAX_POINT_EFFICIENCY,
    MAX_RESIDUAL,
    MAX_X,
    CalibrationError,
    key_path,
    mapping,
    number,
    section_items,
)

CURVE_KINDS = (
    "hbm",
    "gemm_bf16",
    "gemm_fp16",
    "gemm_fp8",
    "gemm_int8",
    "attention_prefill",
    "attention_decode",
)


def hill(x, e_max, x_half, p):
    """Saturating efficiency curve e_max * x^p / (x^p + x_half^p)."""
    x = np.asarray(x, dtype=float)
    return e_max / (1.0 + (x_half / np.maximum(x, 1e-300)) ** p)


@dataclass(frozen=True)
class Curve:
    e_max: float
    x_half: float
    p: float
    x_min: float  # measured range
    x_max: float
    residual: float = 0.0  # relative RMS of the fit
    points: tuple = ()  # ((x, measured efficiency), ...)

    def at(self, x):
        """Fitted efficiency, held at the measured boundary outside [x_min, x_max]."""
        return hill(np.clip(x, self.x_min, self.x_max), self.e_max, self.x_half, self.p)


@dataclass(frozen=True)
class CollectiveTable:
    """One collective's measured latency on `gpus` GPUs at increasing message sizes (bytes: the whole
    buffer, nccl-tests' S). `at` interpolates seconds linearly in bytes between measured sizes: each
    segment is an alpha-beta line, t = alpha + S / bw, through its two measured ends (comm.py's model
    of one algorithm and protocol), exact where NCCL keeps one protocol across the segment. A log-log
    chord over-estimates any such segment (log(alpha + bw^-1 e^u) is convex in u = log S): +10-40%
    across the 16x gaps of the held-out sizes in benchmarks/aic_holdout.py, where the alpha-beta
    chord halves the NCCL error. Below the smallest size its time is held (the latency floor);
    beyond the largest, the last segment's line continues (its bandwidth; S / the last point's
    busbw where noise made that segment fall).

    A framework's own all-reduce table (op `custom_all_reduce`) times the framework's call, which
    hands messages from its size limit up to NCCL (vLLM's custom all-reduce serves messages below
    `CustomAllreduce.max_size`, 8 MiB; TensorRT-LLM and SGLang have limits of their own): its times
    jump there from its kernel's line to NCCL's. `handover` (with_handover: the last measured size
    at which it beat NCCL's table, and the next measured size) keeps the octave above that last
    size off the jump: there the kernel's own last segment continues, since the limits sit at
    powers of two as the tables' sizes do (vLLM A100, 2 GPUs: 25 us at 4 MiB, 90 us at 8 MiB,
    which is NCCL's time there; 6 MiB was read as 57 us on the chord, the kernel's line gives 35).
    Beyond the octave (a table with gaps) the chord holds. Every size a table measured is priced
    as before: the held-out sizes of benchmarks/aic_holdout.py never fall inside such an octave."""

    op: str  # comm.COLLECTIVES, or "custom_all_reduce" (the framework's own all-reduce)
    gpus: int
    bytes: tuple
    seconds: tuple
    handover: tuple = ()  # (last size of the framework's own kernel, the next measured size)

    def _line_beyond(self, i: int, x):
        """The segment ending at measured size i continued to `x` (its bandwidth; S / that point's
        busbw where the segment falls, or where i is the first size)."""
        xs, ys = self.bytes, self.seconds
        slope = (ys[i] - ys[i - 1]) / (xs[i] - xs[i - 1]) if i > 0 else 0.0
        return ys[i] + (x - xs[i]) * (slope if slope > 0 else ys[i] / xs[i])

    def at(self, bytes_):
        xs, ys = self.bytes, self.seconds
        x = np.maximum(np.asarray(bytes_, dtype=float), xs[0])
        out = np.where(x > xs[-1], self._line_beyond(len(xs) - 1, x), np.interp(x, xs, ys))
        if not self.handover:
            return out
        last, after = self.handover
        inside = (x > last) & (x < min(after, 2.0 * last))
        return np.where(inside, self._line_beyond(xs.index(last), x), out) if inside.any() else out

    def with_handover(self, nccl: CollectiveTable) -> CollectiveTable:
        """This framework table with its `handover` to NCCL (`nccl`: NCCL's all-reduce table on
        the same GPUs): the last size of the run of measured sizes from the smallest at which it
        is faster than NCCL's table, and the size after it; none where it is faster at every size
        or at none."""
        faster = np.asarray(self.seconds) < nccl.at(np.asarray(self.bytes))
        run = int(np.argmin(faster)) if not faster.all() else len(faster)
        if run == 0 or run == len(faster):
            return replace(self, handover=())
        return replace(self, handover=(self.bytes[run - 1], self.bytes[run]))


@dataclass(frozen=True)
class LinkFit:
    """A measured link (profilers/collectives.py): ring-step latency and achieved bus bandwidth
    (nan without a fit: a link measured by tables only), and its measured tables."""

    alpha_s: float
    beta_Bps: float  # inf when times did not grow with size (bandwidth not resolved)
    op: str
    tables: tuple = ()  # CollectiveTable, one per (op, GPU count)


# Collective link labels by role: inside the scale-up domain, and across nodes.
INTRA_LABELS = ("nvlink", "xgmi", "pcie")
INTER_LABELS = ("network", "ib", "roce", "ethernet")
# The framework's own (one-shot / two-shot) all-reduce: its table prices the scale-up link's
# all-reduce where the engine uses the framework's kernel (topology.nvlink: custom_allreduce).
CUSTOM_ALLREDUCE_LABEL = "custom_all_reduce"


@dataclass(frozen=True)
class Profile:
    profile_id: str
    hardware: str
    curves: dict = field(default_factory=dict)  # kind -> Curve
    kernel_overhead_s: float | None = None
    provenance: dict = field(default_factory=dict)
    links: dict = field(default_factory=dict)  # label -> LinkFit
    fractions: dict = field(default_factory=dict)  # efficiency.FRACTIONS name -> measured fraction
    grids: dict = field(default_factory=dict)  # GRID_KINDS name -> Grid

    def link(self, labels: tuple):
        """The first measured link among `labels`, or None."""
        return next((self.links[label] for label in labels if label in self.links), None)


# The kernels eager PyTorch stacks (runtime.framework hf, transformers: Framework.torch_kernels)
# share with a serving engine's measured tables, which `calibration: auto` borrows where such a
# framework has no profile of its own (roofline.api): 16-bit GEMMs, torch.nn.functional.linear
# through cuBLAS, which every framework's GEMM table times (the imported tables' notes,
# profilers/aic_points.py); and prefill attention where vLLM's table timed FlashAttention-2, the
# kernel the flash-attn package runs for attn_implementation="flash_attention_2" (the tables'
# kernel_source: `vllm_flash_attn` alone on A100, FA2 being the fork's only kernel before Hopper;
# FA3/FA4 on Hopper, FlashInfer's and Triton's on Blackwell and Ada: other kernels, not borrowed).
# Decode attention (vLLM's paged kernels against a contiguous cache), fused MoE (transformers
# loops over experts) and eight-bit GEMMs (CUTLASS in vLLM) are not borrowed. The GPU's
# collective tables are NCCL's and its kernel overhead the fastest torch GEMM: both kept.
TORCH_KERNEL_SOURCE = "vllm"
TORCH_KERNEL_KINDS = ("hbm", "gemm_bf16")
FA2_PREFILL_ARCHITECTURES = ("ampere",)


def torch_kernels(profile: Profile, architecture: str) -> Profile:
    """The part of a serving engine's profile `profile` of a GPU of `architecture` that measured
    the kernels eager PyTorch stacks also run (TORCH_KERNEL_KINDS; prefill attention on
    FA2_PREFILL_ARCHITECTURES), named so in its id."""
    keep = TORCH_KERNEL_KINDS + (("attention_prefill",) if architecture in FA2_PREFILL_ARCHITECTURES else ())
    kinds = [k for k in keep if k in profile.curves or k in profile.grids]
    return replace(
        profile,
        profile_id=f"{profile.profile_id}, its torch kernels ({', '.join(kinds)})",
        curves={k: v for k, v in profile.curves.items() if k in keep},
        grids={k: v for k, v in profile.grids.items() if k in keep},
        fractions={},
        provenance={
            **profile.provenance,
            "borrowed": f"the kernels eager PyTorch also runs: {', '.join(kinds)}",
        },
    )


def _parse_links(collectives, source: str) -> dict:
    """Label -> LinkFit from a `collectives:` section; the all-reduce fit is preferred (it is the
    collective the engine issues most), else the first op with a fit."""
    if collectives is None:
        return {}
    mapping(collectives, f"{source}: collectives", "link labels to measured ops")
    links = {}
    for label, entry in collectives.items():
        where = f"{source}: collectives.{key_path(label)}"
        entry = mapping(entry if entry is not None else {}, where, "ops: to measured collectives")
        ops = mapping(entry.get("ops") or {}, f"{where}.ops", "collective names to measurements")
        order = ["all_reduce"] + [k for k in ops if k != "all_reduce"]
        for op in order:
            measured = ops.get(op) or {}
            measured = mapping(measured, f"{where}.ops.{key_path(op)}", "fit: and points")
            fit = measured.get("fit")
            if isinstance(fit, dict):
                at = f"{where}.ops.{key_path(op)}.fit"
                alpha = number(fit.get("alpha_s"), f"{at}.alpha_s", 0.0, MAX_ALPHA_S)
                beta = fit.get("beta_Bps")
                beta = float("inf") if beta in (float("inf"), ".inf") else number(beta, f"{at}.beta_Bps")
                if not beta > 0:
                    raise CalibrationError(f"{at}.beta_Bps: a bandwidth is > 0, got {short(beta)}")
                links[str(label)] = LinkFit(alpha, beta, str(op))
                break
        tables = _parse_tables(ops, where)
        if tables:
            fit = links.get(str(label)) or LinkFit(float("nan"), float("nan"), tables[0].op)
            links[str(label)] = replace(fit, tables=tables)
    return _attach_custom(links, collectives, source)


MAX_TABLE_GPUS = 1 << 20
MAX_COLLECTIVE_S = 60.0  # one collective call (a 1 GiB all-reduce over PCIe takes ~0.1 s)


def _parse_tables(ops: dict, where: str) -> tuple:
    """CollectiveTable for each `ops.<op>.table.<gpus>: {bytes: [...], seconds: [...]}`."""
    out = []
    for op, measured in ops.items():
        if not isinstance(measured, dict) or measured.get("table") is None:
            continue
        at_op = f"{where}.ops.{key_path(op)}"
        if op not in COLLECTIVES:
            raise CalibrationError(
                f"{at_op}: a table needs a known collective; valid: {', '.join(COLLECTIVES)}"
            )
        table = mapping(measured["table"], f"{at_op}.table", "GPU counts to {bytes: [...], seconds: [...]}")
        for gpus, row in table.items():
            at = f"{at_op}.table.{key_path(gpus)}"
            count = int(gpus) if isinstance(gpus, str) and gpus.isdigit() else gpus
            if isinstance(count, bool) or not isinstance(count, int) or not 2 <= count <= MAX_TABLE_GPUS:
                raise CalibrationError(
                    f"{at}: a table is keyed by GPU count, an integer >= 2, got {short(gpus)}"
                )
            row = mapping(row, at, "bytes: and seconds: lists of equal length")
            sizes = _num_list(row.get("bytes"), f"{at}.bytes", MAX_X, "a message size in bytes")
            times = _num_list(row.get("seconds"), f"{at}.seconds", MAX_COLLECTIVE_S, "a collective's time")
            if len(sizes) < 2:
                raise CalibrationError(
                    f"{at}.bytes: a table needs at least 2 message sizes, got {len(sizes)}"
                )
            if len(times) != len(sizes):
                raise CalibrationError(f"{at}.seconds: {len(times)} times for {len(sizes)} message sizes")
            for i in range(1, len(sizes)):
                if not sizes[i] > sizes[i - 1]:
                    raise CalibrationError(
                        f"{at}.bytes[{i}]: message sizes must increase, got {sizes[i - 1]:g} then {sizes[i]:g}"
                    )
            out.append(CollectiveTable(str(op), count, tuple(sizes), tuple(times)))
    return tuple(out)


def _num_list(values, where: str, high: float, what: str) -> list:
    if not isinstance(values, list):
        raise CalibrationError(f"{where}: must be a list of numbers, got {short(values)}")
    return [number(v, f"{where}[{i}]", 0.0, high, open_low=True, what=what) for i, v in enumerate(values)]


def _attach_custom(links: dict, collectives: dict, source: str) -> dict:
    """The `custom_all_reduce` entry's all-reduce tables, added to the scale-up link's LinkFit as
    op `custom_all_reduce` (the link it runs on; an entry there without fit or table is enough)."""
    custom = links.get(CUSTOM_ALLREDUCE_LABEL)
    tables = tuple(
        replace(t, op="custom_all_reduce") for t in (custom.tables if custom else ()) if t.op == "all_reduce"
    )
    if not tables:
        return links
    intra = [label for label in INTRA_LABELS if label in collectives]
    if not intra:
        raise CalibrationError(
            f"{source}: collectives.{CUSTOM_ALLREDUCE_LABEL}: the framework's all-reduce table prices the "
            f"scale-up link, so collectives needs that link's entry too ({', '.join(INTRA_LABELS)}; "
            "an empty mapping will do)"
        )
    for label in intra:
        fit = links.get(label) or LinkFit(float("nan"), float("nan"), "all_reduce")
        nccl = {t.gpus: t for t in fit.tables if t.op == "all_reduce"}
        own = tuple(t.with_handover(nccl[t.gpus]) if t.gpus in nccl else t for t in tables)
        links[label] = replace(fit, tables=fit.tables + own)
    return links


# Plausible ranges of profile values: far wider than any GPU's, narrow enough that a corrupted
# value (a sign flip, 1e300) is refused instead of turning into negative or astronomical times.
def parse_profile(doc, source: str) -> Profile:
    """Validate a profile mapping; errors name the file and the field."""
    if not isinstance(doc, dict):
        raise CalibrationError(f"{source}: a calibration profile must be a YAML mapping")
    doc = dict(doc)
    doc.setdefault("curves", {} if "collectives" in doc else None)
    for key in ("profile_id", "hardware", "curves"):
        if doc.get(key) is None:
            raise CalibrationError(
                f"{source}: missing {key!r} (a profile has profile_id, hardware, provenance, curves)"
            )
    for key in ("profile_id", "hardware"):
        if not isinstance(doc[key], (str, int)) or isinstance(doc[key], bool):
            raise CalibrationError(f"{source}: {key} must be a name, got {short(doc[key])}")
    curves = {}
    for kind, c, where in section_items(
        doc["curves"], f"{source}: curves", "op kinds to fitted curves", CURVE_KINDS, "op kind"
    ):
        if not isinstance(c, dict) or not isinstance(c.get("fit"), dict):
            raise CalibrationError(f"{where}: needs fit: {{e_max, x_half, p}} and points")
        fit = c["fit"]
        e_max = number(fit.get("e_max"), f"{where}.fit.e_max", 0.0, 1.2, True, "an efficiency")
        x_half = number(fit.get("x_half"), f"{where}.fit.x_half", 0.0, MAX_X, open_low=True)
        p = number(fit.get("p"), f"{where}.fit.p", 0.0, MAX_HILL_P, open_low=True)
        raw_points = c.get("points") or []
        if not isinstance(raw_points, list):
            raise CalibrationError(
                f"{where}.points: must be a list of {{x, efficiency}}, got {short(raw_points)}"
            )
        points = []
        for i, pt in enumerate(raw_points):
            at = f"{where}.points[{i}]"
            pt = mapping(pt, at, "x and efficiency")
            x = number(pt.get("x"), f"{at}.x", 0.0, MAX_X, open_low=True)
            points.append((x, number(pt.get("efficiency"), f"{at}.efficiency", 0.0, MAX_POINT_EFFICIENCY)))
        points = tuple(points)
        xs = [x for x, _ in points] or [x_half]
        curves[kind] = Curve(
            e_max,
            x_half,
            p,
            min(xs),
            max(xs),
            number(c.get("residual", 0.0), f"{where}.residual", 0.0, MAX_RESIDUAL),
            points,
        )
    overhead = doc.get("kernel_overhead_s")
    fractions = _parse_fractions(doc.get("fractions"), source)
    grids = parse_grids(doc.get("grids"), source)
    return Profile(
        str(doc["profile_id"]),
        str(doc["hardware"]),
        curves,
        None
        if overhead is None
        else number(overhead, f"{source}: kernel_overhead_s", 0.0, MAX_KERNEL_OVERHEAD_S),
        dict(mapping(doc.get("provenance") or {}, f"{source}: provenance", "keys to values")),
        _parse_links(doc.get("collectives"), source),
        fractions,
        grids,
    )


def _parse_fractions(section, source: str) -> dict:
    """`fractions: {score_kernel: 0.35, ...}`: measured fractions of peak of kernel families that
    have no curve of their own (efficiency.FRACTIONS names them)."""
    from roofline.simulator.efficiency import FRACTIONS

    out = {}
    what = "kernel families to fractions of peak"
    for name, value, where in section_items(
        section, f"{source}: fractions", what, FRACTIONS, "kernel family"
    ):
        value = number(value, where)
        if not 0 < value <= 1.2:
            raise CalibrationError(f"{where}: a fraction of peak is in (0, 1.2], got {value}")
        out[name] = value
    return out
