"""Hardware spec files (one YAML per SKU, see SCHEMA.md) and their loader.

`load_hardware(name)` returns a `roofline.simulator.hardware.Hardware` in SI units; units live in
the YAML key names and are converted here, once. Every numeric section must name its source.
"""

from __future__ import annotations

import math
import os
from functools import cache, lru_cache
from pathlib import Path

import yaml

from roofline.simulator.errors import UserError, did_you_mean, short
from roofline.simulator.hardware import Hardware
from roofline.simulator.units import GIB, KIB, MIB, TERA

HERE = Path(__file__).resolve().parent
SECTIONS = (  # each carries a `source:` key naming an entry of `sources:`
    "memory",
    "compute_dense_TFLOPs",
    "chip",
    "power",
    "host_link",
    "host_memory",
    "scale_up",
    "price",
)


class HardwareSpecError(UserError):
    """A hardware name or spec file that cannot be used."""


NOT_SKUS = ("fabrics",)  # other spec files in this folder


def list_hardware() -> list:
    return list(_sku_names())


@cache
def _sku_names() -> tuple:
    """The spec files shipped in this folder, read once (every scenario validation asks)."""
    return tuple(sorted(p.stem for p in HERE.glob("*.yaml") if p.stem not in NOT_SKUS))


def _num(doc: dict, path: str, where: str) -> float:
    node = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise HardwareSpecError(f"{where}: missing field {path}")
        node = node[part]
    return _number(node, path, where)


def _number(node, path: str, where: str) -> float:
    """A spec's number: finite and >= 0 (a YAML number, or a string that reads as one)."""
    try:
        value = float(node) if not isinstance(node, bool) else None
    except (TypeError, ValueError):
        value = None
    if value is None or not math.isfinite(value):
        raise HardwareSpecError(f"{where}: field {path} must be a finite number, got {short(node)}")
    if value < 0:
        raise HardwareSpecError(f"{where}: field {path} must be >= 0, got {value}")
    return value


def _positive(doc: dict, path: str, where: str) -> float:
    value = _num(doc, path, where)
    if not value > 0:
        raise HardwareSpecError(f"{where}: field {path} must be > 0, got {value}")
    return value


def parse_hardware(doc: dict, where: str) -> Hardware:
    """Validate one spec document and convert it to SI."""
    if not isinstance(doc, dict):
        raise HardwareSpecError(f"{where}: a hardware spec must be a mapping")
    sources = doc.get("sources") or {}
    if not isinstance(sources, dict) or not all(isinstance(k, str) for k in sources):
        raise HardwareSpecError(
            f"{where}: `sources:` must map source names to citations, got {short(sources)}"
        )
    for sec in SECTIONS:
        if not isinstance(doc.get(sec), dict):
            raise HardwareSpecError(f"{where}: missing section {sec!r}")
        source = doc[sec].get("source")
        if not isinstance(source, str) or source not in sources:
            raise HardwareSpecError(
                f"{where}: section {sec!r} must name a source from `sources:` ({', '.join(sources)})"
            )
    peaks = {
        k: _number(v, f"compute_dense_TFLOPs.{k}", where) * TERA
        for k, v in doc["compute_dense_TFLOPs"].items()
        if k != "source" and v is not None
    }
    if "bf16" not in peaks and "fp16" not in peaks:
        raise HardwareSpecError(f"{where}: compute_dense_TFLOPs needs bf16 or fp16")
    host_cpu = doc.get("host_cpu")  # optional: a host whose CPU path was measured against x86
    host_factor = 1.0
    if host_cpu is not None:
        if (
            not isinstance(host_cpu, dict)
            or not isinstance(host_cpu.get("source"), str)
            or host_cpu["source"] not in sources
        ):
            raise HardwareSpecError(
                f"{where}: section 'host_cpu' must be a mapping naming a source from `sources:` ({', '.join(sources)})"
            )
        host_factor = _positive(doc, "host_cpu.dispatch_factor", where)
    unconfirmed = doc.get("unconfirmed") or ()
    if not isinstance(unconfirmed, list | tuple) or not all(isinstance(u, str) for u in unconfirmed):
        raise HardwareSpecError(f"{where}: `unconfirmed:` must list field paths, got {short(unconfirmed)}")
    return Hardware(
        name=str(doc.get("name")),
        display_name=str(doc.get("display_name", doc.get("name"))),
        vendor=str(doc.get("vendor", "")),
        architecture=str(doc.get("architecture", "")),
        memory_bytes=_num(doc, "memory.capacity_GiB", where) * GIB,
        memory_bandwidth=_num(doc, "memory.bandwidth_TBps", where) * TERA,
        peak_flops=peaks,
        sm_count=int(_num(doc, "chip.sm_count", where)),
        boost_clock_hz=_num(doc, "chip.boost_clock_MHz", where) * 1e6,
        l2_bytes=_num(doc, "chip.l2_cache_MiB", where) * MIB,
        smem_per_sm_bytes=_num(doc, "chip.smem_per_sm_KiB", where) * KIB,
        tdp_w=_num(doc, "power.tdp_W", where),
        host_link_bandwidth=_num(doc, "host_link.bandwidth_GBps", where) * 1e9,
        host_link_kind=str(doc["host_link"].get("kind", "pcie")),
        scale_up_bandwidth=_num(doc, "scale_up.bandwidth_GBps", where) * 1e9,
        scale_up_kind=str(doc["scale_up"].get("kind", "none")),
        scale_up_domain=int(_num(doc, "scale_up.domain_size", where)),
        usd_per_gpu_hour=_num(doc, "price.usd_per_gpu_hour", where),
        host_memory_bytes=_positive(doc, "host_memory.capacity_GiB_per_gpu", where) * GIB,
        host_memory_system=str(doc["host_memory"].get("system", "")),
        host_cpu_factor=host_factor,
        host_cpu=str(host_cpu.get("kind", "")) if host_cpu else "",
        sources=dict(sources),
        section_sources={
            **{sec: doc[sec]["source"] for sec in SECTIONS},
            **({"host_cpu": host_cpu["source"]} if host_cpu else {}),
        },
        unconfirmed=tuple(unconfirmed),
        notes=str(doc.get("notes", "")),
    )


def unknown_name_message(kind: str, name: str, valid: list) -> str:
    return f"unknown {kind} {short(name)}.{did_you_mean(name, valid)} Valid: {', '.join(valid)}"


@cache
def load_hardware(name: str) -> Hardware:
    valid = list_hardware()
    if name not in valid:
        raise HardwareSpecError(unknown_name_message("hardware", name, valid))
    path = HERE / f"{name}.yaml"
    with open(path) as fh:
        doc = yaml.safe_load(fh)
    hw = parse_hardware(doc, str(path))
    if hw.name != name:
        raise HardwareSpecError(f"{path}: name {hw.name!r} does not match the file name")
    return hw


@cache
def fabrics() -> dict:
    """Inter-node fabrics from fabrics.yaml: name -> roofline.simulator.topology.Fabric (SI)."""
    with open(HERE / "fabrics.yaml") as fh:
        return parse_fabrics(yaml.safe_load(fh), "fabrics.yaml")


def parse_fabrics(doc, where: str) -> dict:
    """Validate a fabrics document (`sources:` and `fabrics:`, see fabrics.yaml) and convert it:
    name -> roofline.simulator.topology.Fabric (SI)."""
    from roofline.simulator.topology import Fabric

    sources = doc.get("sources") if isinstance(doc, dict) else None
    table = doc.get("fabrics") if isinstance(doc, dict) else None
    if not isinstance(sources, dict) or not isinstance(table, dict):
        raise HardwareSpecError(f"{where}: needs mappings `sources:` and `fabrics:`")
    out = {}
    for name, f in table.items():
        if not isinstance(name, str) or "." in name or not isinstance(f, dict):
            raise HardwareSpecError(
                f"{where}: fabric {short(name)} must be a name (no dots) mapping to its fields"
            )
        if not isinstance(f.get("source"), str) or f["source"] not in sources:
            raise HardwareSpecError(f"{where}: {name} must name a source from `sources:`")
        measured = "sendrecv_latency_us" in f or "alltoall_latency_us" in f
        if measured and (not isinstance(f.get("latency_source"), str) or f["latency_source"] not in sources):
            raise HardwareSpecError(
                f"{where}: {name}'s measured latencies must name a `latency_source` from `sources:`"
            )
        efficiency = _positive(doc, f"fabrics.{name}.efficiency", where)
        if efficiency > 1.0:
            raise HardwareSpecError(
                f"{where}: field fabrics.{name}.efficiency is a share of line rate, at most 1"
            )
        out[name] = Fabric(
            name,
            _positive(doc, f"fabrics.{name}.bandwidth_Gbps", where) * 1e9 / 8.0,
            _num(doc, f"fabrics.{name}.step_latency_us", where) * 1e-6,
            efficiency,
            *(
                _positive(doc, f"fabrics.{name}.{key}", where) * 1e-6 if key in f else None
                for key in ("sendrecv_latency_us", "alltoall_latency_us")
            ),
        )
    return out


def load_fabric(name: str):
    valid = sorted(fabrics())
    if name not in valid:
        raise HardwareSpecError(unknown_name_message("fabric", name, valid))
    return fabrics()[name]


CALIBRATION_DIR = HERE / "calibration"
CALIBRATION_DIR_ENV = "ROOFLINE_CALIBRATION_DIR"


def calibration_dir() -> Path:
    """The folder `calibration: auto` reads and `roofline calibrate` writes by default: the one named
    by the ROOFLINE_CALIBRATION_DIR environment variable, else hwspecs/calibration/ (which ships the
    profiles imported from published kernel measurements)."""
    override = os.environ.get(CALIBRATION_DIR_ENV)
    return Path(override) if override else Path(CALIBRATION_DIR)


MAX_PROFILE_BYTES = 8 * 2**20


def read_profile_document(path, fail=None):
    """The parsed YAML of a calibration profile file, unchecked (size-limited, safe_load only; a
    large file's parse is kept in the user's cache, roofline/yaml_cache.py); `fail(message)` builds
    the error (default CalibrationError; messages name the file)."""
    from roofline.fileio import parse_yaml, read_text
    from roofline.simulator.calibration import CalibrationError
    from roofline.yaml_cache import parse_cached

    fail = fail or CalibrationError
    text = read_text(path, MAX_PROFILE_BYTES, "calibration profile", fail)
    doc = parse_cached(text, lambda t: parse_yaml(t, path, "calibration profile", fail))
    if text.strip() and not text.endswith("\n"):
        raise fail(
            f"{path}: ends without a newline, so the file looks truncated (profiles written by "
            "roofline calibrate end with one); refusing rather than reading part of it"
        )
    return doc


def read_profile(path):
    """A calibration profile file -> roofline.simulator.calibration.Profile (errors name the file)."""
    from roofline.simulator.calibration import parse_profile

    return parse_profile(read_profile_document(path), str(path))


def profile_path(hardware: str, framework: str | None = None, directory=None):
    """Where `calibration: auto` finds a SKU's profile, or None: `<hardware>.yaml` (measured by
    `roofline calibrate` on the GPU itself) first, else `<hardware>.<framework>.yaml` (the serving
    framework's own kernels, imported from published measurements)."""
    folder = Path(directory or calibration_dir())
    names = [f"{hardware}.yaml"] + ([f"{hardware}.{framework}.yaml"] if framework else [])
    return next((folder / n for n in names if (folder / n).is_file()), None)


@lru_cache(maxsize=64)
def _read_cached(path: str, mtime_ns: int, size: int):
    return read_profile(path)


def find_profile(hardware: str, directory=None, framework: str | None = None):
    """The measured profile of a SKU for `calibration: auto` (see `profile_path`), or None
    (datasheet defaults). Parsed profiles are cached per file version within the process."""
    path = profile_path(hardware, framework, directory)
    if path is None:
        return None
    st = path.stat()
    return _read_cached(str(path), st.st_mtime_ns, st.st_size)
