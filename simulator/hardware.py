"""Hardware SKUs as frozen dataclasses in SI units (loaded from hwspecs/ YAML by roofline.hwspecs).

Derived figures (ridge point, peak for a dtype) are properties, never stored twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from roofline.simulator.units import COMPUTE_PEAK_KEY


@dataclass(frozen=True)
class Hardware:
    """One accelerator SKU. All values SI: bytes, bytes/s, FLOP/s, W, s."""

    name: str
    display_name: str
    vendor: str
    architecture: str
    memory_bytes: float
    memory_bandwidth: float  # bytes/s
    peak_flops: dict  # dtype -> dense FLOP/s
    sm_count: int
    boost_clock_hz: float
    l2_bytes: float
    smem_per_sm_bytes: float
    tdp_w: float
    host_link_bandwidth: float  # bytes/s per direction
    host_link_kind: str
    scale_up_bandwidth: float  # bytes/s per GPU per direction
    scale_up_kind: str
    scale_up_domain: int
    usd_per_gpu_hour: float
    host_memory_bytes: float = float("inf")  # host RAM per GPU (offloaded KV, weights); inf: no limit
    host_memory_system: str = ""  # the reference server or instance the figure comes from
    # The host CPU's time for the serving stack's Python/PyTorch host work (kernel launches from
    # Python, the framework's CPU iteration) against the x86 servers the frameworks' figures come
    # from (simulator/frameworks.py): 1 there; hwspecs' `host_cpu.dispatch_factor` where measured.
    host_cpu_factor: float = 1.0
    host_cpu: str = ""  # the host CPU's kind (e.g. grace), where the spec names it
    sources: dict = field(default_factory=dict, compare=False)
    section_sources: dict = field(default_factory=dict, compare=False)
    unconfirmed: tuple = ()
    notes: str = ""

    def peak(self, dtype: str) -> float:
        """Dense peak FLOP/s for GEMMs whose operands are in `dtype`.

        Falls back to the fastest 16-bit rate when the chip has no units for that format
        (e.g. fp8 on an A100 runs as dequantise + bf16 GEMM); `has_native` tells which.
        """
        key = COMPUTE_PEAK_KEY[dtype]
        if key in self.peak_flops:
            return self.peak_flops[key]
        return self.peak_flops.get("bf16", self.peak_flops.get("fp16", self.peak_flops["fp32"]))

    @property
    def nvlink_sharp(self) -> bool:
        """In-switch all-reduce (NVLS): third-generation NVSwitch with NVLink SHARP, on Hopper and
        later NVSwitch systems only (NVIDIA H100 Tensor Core GPU Architecture whitepaper, "NVLink
        SHARP"); A100's NVSwitch, NVLink bridges and AMD's xGMI have none."""
        return (
            self.vendor == "nvidia"
            and self.architecture in ("hopper", "blackwell")
            and self.scale_up_kind.startswith("nvlink")
            and self.scale_up_domain >= 8
        )

    def has_native(self, dtype: str) -> bool:
        """Whether the chip has matrix units for `dtype`."""
        return COMPUTE_PEAK_KEY[dtype] in self.peak_flops

    @property
    def ridge_point(self) -> float:
        """Arithmetic intensity (FLOP/byte) where bf16 compute and HBM bandwidth balance."""
        return self.peak("bf16") / self.memory_bandwidth
