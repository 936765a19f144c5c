"""The GPU being calibrated: what NVML and torch say about it, and which hwspecs SKU it is.

`read_device()` reads the name, memory, clocks, driver and power limit with pynvml (package
nvidia-ml-py) and the torch / Triton / CUDA versions. Where pynvml is missing or fails (no NVIDIA
driver, a ROCm GPU) it falls back to what torch knows and says so in `nvml`. `hardware_slug(name)`
maps a device name to a `roofline hw list` name, or None when the name is not a SKU with a spec
(then `--hardware` must name one).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

# Normalised device name (upper case, no "NVIDIA " prefix, '-' and '_' as spaces) -> hwspecs slug.
# Full matches only, so an L40 is not taken for an L40S nor an H200 NVL for an H200 SXM.
NAME_RULES = (
    (r"H100 80GB HBM3|H100 SXM5? 80GB( HBM3)?", "h100-sxm"),
    (r"H100 PCIE( 80GB)?", "h100-pcie"),
    (r"H100 NVL( 94GB)?", "h100-nvl"),
    (r"H200( SXM)?( 141GB)?( HBM3E)?", "h200"),
    (r"A100 SXM4 80GB", "a100-80gb-sxm"),
    (r"A100 SXM4 40GB", "a100-40gb-sxm"),
    (r"A100 80GB PCIE", "a100-80gb-pcie"),
    (r"L40S", "l40s"),
    (r"L4", "l4"),
    (r"A10G", "a10g"),
    (r"(GEFORCE )?RTX 4090", "rtx-4090"),
    (r"RTX 6000 ADA( GENERATION)?", "rtx-6000-ada"),
    (r"B200( 180GB)?", "b200"),
    (r"GB200", "gb200"),
    (r"B300( SXM6)?( AC)?( 288GB)?", "b300"),
    (r"GB300", "gb300"),
    (r"RTX PRO 6000 BLACKWELL SERVER EDITION", "rtx-pro-6000-server"),
    (r"(AMD )?INSTINCT MI300X( VF| OAM)?|MI300X", "mi300x"),
    (r"(AMD )?INSTINCT MI325X( VF| OAM)?|MI325X", "mi325x"),
)


def normalise_name(name: str) -> str:
    text = re.sub(r"[-_\s]+", " ", str(name)).strip().upper()
    return re.sub(r"^NVIDIA ", "", text)


def hardware_slug(device_name: str) -> str | None:
    """The hwspecs name of a device name as NVML or torch report it, or None if not known."""
    text = normalise_name(device_name)
    for pattern, slug in NAME_RULES:
        if re.fullmatch(pattern, text):
            return slug
    return None


@dataclass(frozen=True)
class DeviceInfo:
    """One GPU as calibration provenance records it (None: not known here)."""

    name: str
    memory_bytes: int | None = None
    sm_clock_mhz: int | None = None  # current, at the time of reading
    max_sm_clock_mhz: int | None = None
    mem_clock_mhz: int | None = None
    max_mem_clock_mhz: int | None = None
    power_limit_w: float | None = None  # enforced limit
    driver: str | None = None
    cuda: str | None = None  # torch's CUDA (or HIP) runtime version
    compute_capability: str | None = None
    torch: str | None = None
    triton: str | None = None
    uuid: str | None = None
    nvml: str = "ok"  # or why NVML facts are missing

    def provenance(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


class DeviceError(RuntimeError):
    """No usable GPU to calibrate."""


def _versions() -> dict:
    out = {}
    try:
        import torch

        out["torch"] = str(torch.__version__)
        out["cuda"] = torch.version.cuda or getattr(torch.version, "hip", None)
    except ImportError:
        pass
    try:
        import triton

        out["triton"] = str(triton.__version__)
    except ImportError:
        pass
    return out


def _nvml_facts(torch_uuid: str | None, index: int) -> dict:
    """What NVML says about the device (by UUID when torch gives one, else by index)."""
    import pynvml as nv

    nv.nvmlInit()
    try:
        handle = None
        if torch_uuid:
            try:
                uuid = torch_uuid if torch_uuid.startswith("GPU-") else f"GPU-{torch_uuid}"
                handle = nv.nvmlDeviceGetHandleByUUID(uuid)
            except nv.NVMLError:
                handle = None
        if handle is None:
            handle = nv.nvmlDeviceGetHandleByIndex(index)

        def text(v):
            return v.decode() if isinstance(v, bytes) else str(v)

        def maybe(fn, *args):
            try:
                return fn(*args)
            except nv.NVMLError:
                return None

        power = maybe(nv.nvmlDeviceGetEnforcedPowerLimit, handle)
        return {
            "name": text(nv.nvmlDeviceGetName(handle)),
            "memory_bytes": int(nv.nvmlDeviceGetMemoryInfo(handle).total),
            "sm_clock_mhz": maybe(nv.nvmlDeviceGetClockInfo, handle, nv.NVML_CLOCK_SM),
            "max_sm_clock_mhz": maybe(nv.nvmlDeviceGetMaxClockInfo, handle, nv.NVML_CLOCK_SM),
            "mem_clock_mhz": maybe(nv.nvmlDeviceGetClockInfo, handle, nv.NVML_CLOCK_MEM),
            "max_mem_clock_mhz": maybe(nv.nvmlDeviceGetMaxClockInfo, handle, nv.NVML_CLOCK_MEM),
            "power_limit_w": None if power is None else power / 1000.0,
            "driver": text(nv.nvmlSystemGetDriverVersion()),
            "uuid": text(maybe(nv.nvmlDeviceGetUUID, handle) or "") or None,
        }
    finally:
        nv.nvmlShutdown()


def read_device(index: int = 0) -> DeviceInfo:
    """The CUDA device `index` as torch sees it (CUDA_VISIBLE_DEVICES applies), with NVML facts."""
    try:
        import torch
    except ImportError:
        raise DeviceError("torch is not installed: pip install -e '.[profile]' on the GPU machine") from None
    if not torch.cuda.is_available():
        raise DeviceError("no CUDA device: torch.cuda.is_available() is False")
    props = torch.cuda.get_device_properties(index)
    torch_uuid = str(getattr(props, "uuid", "") or "") or None
    facts = {
        "name": torch.cuda.get_device_name(index),
        "memory_bytes": int(props.total_memory),
        "compute_capability": f"{props.major}.{props.minor}",
        "uuid": torch_uuid,
        **_versions(),
    }
    try:
        nvml = _nvml_facts(torch_uuid, index)
    except ImportError:
        facts["nvml"] = (
            "pynvml not installed (pip install nvidia-ml-py): clocks, driver and power limit unknown"
        )
    except Exception as exc:  # pynvml raises NVMLError subclasses (no driver, ROCm GPU, ...)
        facts["nvml"] = (
            f"NVML failed ({type(exc).__name__}: {str(exc)[:120]}): clocks, driver and power limit unknown"
        )
    else:
        facts.update({k: v for k, v in nvml.items() if v is not None})
    return DeviceInfo(**facts)


def resolve_hardware(device_name: str, override: str | None) -> str:
    """--hardware if given (validated), else the SKU of the device name; a clear error otherwise."""
    from roofline.hwspecs import list_hardware, load_hardware

    if override:
        load_hardware(override)  # HardwareSpecError with suggestions if unknown
        return override
    slug = hardware_slug(device_name)
    if slug is None:
        raise DeviceError(
            f"device {device_name!r} is not a known hardware SKU: pass --hardware NAME "
            f"(one of: {', '.join(list_hardware())})"
        )
    return slug
