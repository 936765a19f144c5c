"""Hardware registry: every SPEC.md SKU loads, every number is sourced, conversions are SI."""

from __future__ import annotations

import re

import pytest
import yaml

from roofline.hwspecs import (
    HERE,
    SECTIONS,
    HardwareSpecError,
    list_hardware,
    load_hardware,
    parse_fabrics,
    parse_hardware,
)

SPEC_HARDWARE = [
    "a100-40gb-sxm", "a100-80gb-sxm", "a100-80gb-pcie", "h100-sxm", "h100-pcie", "h100-nvl", "h200",
    "b200", "gb200", "l40s", "l4", "a10g", "rtx-4090", "rtx-6000-ada", "mi300x", "mi325x", "h100-96gb-500w",
]  # fmt: skip


def _spec(name: str) -> dict:
    """A shipped spec file as YAML (to edit and re-parse)."""
    return yaml.safe_load((HERE / f"{name}.yaml").read_text())


def test_registry_has_every_spec_sku():
    assert set(SPEC_HARDWARE) <= set(list_hardware())


@pytest.mark.parametrize("name", list_hardware())  # every shipped spec, not only SPEC.md's
def test_every_section_cites_a_source(name):
    doc = _spec(name)
    for sec in SECTIONS:
        assert doc[sec]["source"] in doc["sources"], f"{name}: {sec}"
        assert len(doc["sources"][doc[sec]["source"]]) > 20  # a citation, not a stub
    assert "date" in doc["price"]
    for path in doc.get("unconfirmed") or []:  # every unconfirmed path names a real field
        node = doc
        for part in path.split("."):
            node = node[part]


@pytest.mark.parametrize("name", list_hardware())
def test_plausible_and_consistent(name):
    hw = load_hardware(name)
    assert 16 * 2**30 <= hw.memory_bytes <= 300 * 2**30
    assert 0.2e12 <= hw.memory_bandwidth <= 10e12
    assert hw.peak("fp16") >= hw.peak_flops["fp32"]
    if "fp8" in hw.peak_flops:
        assert hw.peak_flops["fp8"] >= hw.peak("bf16")
    assert hw.ridge_point == pytest.approx(hw.peak("bf16") / hw.memory_bandwidth)
    # Host RAM per GPU: from a small cloud instance's to a 2-GPU cloud VM's half of 1,032 GB (Azure's
    # RTX PRO 6000 Server VM; a 4 TB 8-GPU server's share is 512 GiB).
    assert 16 * 2**30 <= hw.host_memory_bytes <= 516 * 2**30
    assert hw.host_memory_system


def test_h100_sxm_datasheet_values_in_si():
    # NVIDIA H100 SXM5 datasheet: 80 GB HBM3 at 3.35 TB/s, 989.4 dense bf16 TFLOP/s, 700 W.
    hw = load_hardware("h100-sxm")
    assert hw.memory_bytes == 80 * 2**30
    assert hw.memory_bandwidth == 3.35e12
    assert hw.peak("bf16") == pytest.approx(989.4e12)
    assert hw.tdp_w == 700
    assert hw.scale_up_bandwidth == 450e9 and hw.scale_up_domain == 8


def test_context_parallel_paper_variant():
    # arXiv:2411.01783: H100 power-limited to 500 W, 96 GB HBM2e, 2.4 TB/s, 800 TFLOP/s bf16.
    hw = load_hardware("h100-96gb-500w")
    assert (hw.memory_bytes, hw.memory_bandwidth, hw.peak("bf16"), hw.tdp_w) == (
        96 * 2**30,
        2.4e12,
        800e12,
        500,
    )


def test_fp8_falls_back_on_ampere():
    hw = load_hardware("a100-80gb-sxm")
    assert not hw.has_native("fp8")
    assert hw.peak("fp8") == hw.peak("bf16")


def test_unknown_name_suggests():
    with pytest.raises(HardwareSpecError, match="Did you mean 'h100-sxm'"):
        load_hardware("h100-sxn")


def test_spec_without_source_is_rejected():
    doc = _spec("h100-sxm")
    doc["memory"]["source"] = "nowhere"
    with pytest.raises(HardwareSpecError, match="memory"):
        parse_hardware(doc, "edited.yaml")
    doc = _spec("h100-sxm")
    doc["memory"]["bandwidth_TBps"] = "fast"
    with pytest.raises(HardwareSpecError, match="bandwidth_TBps must be a finite number"):
        parse_hardware(doc, "edited.yaml")


@pytest.mark.parametrize(
    "path, value, message",
    [
        (
            ("fabrics", "ib-ndr-400", "bandwidth_Gbps"),
            "fast",
            "fabrics.ib-ndr-400.bandwidth_Gbps must be a finite",
        ),
        (("fabrics", "ib-ndr-400", "efficiency"), 1.5, "a share of line rate, at most 1"),
        (("fabrics", "ib-ndr-400", "efficiency"), None, "efficiency must be a finite number"),
        (("fabrics", "ib-ndr-400", "source"), ["cx7"], "ib-ndr-400 must name a source"),
        (("fabrics", "ib-ndr-400"), 3, "must be a name (no dots) mapping to its fields"),
        (("fabrics",), [], "needs mappings `sources:` and `fabrics:`"),
    ],
)
def test_a_fabric_field_of_the_wrong_kind_is_named(path, value, message):
    # fabrics.yaml was read with bare float()s: a string or a list there was a ValueError / TypeError
    doc = yaml.safe_load((HERE / "fabrics.yaml").read_text())
    assert set(parse_fabrics(doc, "f.yaml")) == set(doc["fabrics"])
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(HardwareSpecError, match=re.escape(message)):
        parse_fabrics(doc, "f.yaml")


@pytest.mark.parametrize(
    "path, value, message",
    [
        (("chip", "sm_count"), float("inf"), "chip.sm_count must be a finite number"),
        (("chip", "sm_count"), float("nan"), "chip.sm_count must be a finite number"),
        (("compute_dense_TFLOPs", "bf16"), "x", "compute_dense_TFLOPs.bf16 must be a finite number"),
        (("compute_dense_TFLOPs", "fp8"), [], "compute_dense_TFLOPs.fp8 must be a finite number"),
        (("memory", "capacity_GiB"), True, "memory.capacity_GiB must be a finite number"),
        (("memory", "source"), ["ds"], "section 'memory' must name a source"),
        (("sources",), ["ds"], "`sources:` must map source names"),
        (("unconfirmed",), 3, "`unconfirmed:` must list field paths"),
    ],
)
def test_a_spec_field_of_the_wrong_kind_is_named_not_a_traceback(path, value, message):
    # each was a TypeError / ValueError / OverflowError deep in the parser (found by setting every
    # field of every shipped spec in turn to a null, 0, -1, a string, a fraction, a list, a mapping,
    # a boolean, NaN, infinity and 1e30: 12,210 cases, now none)
    doc = _spec("h100-sxm")
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(HardwareSpecError, match=re.escape(message)):
        parse_hardware(doc, "edited.yaml")


def test_host_cpu_is_optional_cited_and_positive():
    # absent: an x86 host like the frameworks' figures (factor 1); present: a source and a factor > 0
    assert load_hardware("h100-sxm").host_cpu_factor == 1.0 and load_hardware("h100-sxm").host_cpu == ""
    gb200 = load_hardware("gb200")
    assert gb200.host_cpu == "grace" and gb200.host_cpu_factor == pytest.approx(37.08 / 13.48, rel=1e-3)
    doc = _spec("gb200")
    doc["host_cpu"]["source"] = "nowhere"
    with pytest.raises(HardwareSpecError, match="host_cpu"):
        parse_hardware(doc, "edited.yaml")
    doc = _spec("gb200")
    doc["host_cpu"]["dispatch_factor"] = 0
    with pytest.raises(HardwareSpecError, match="dispatch_factor must be > 0"):
        parse_hardware(doc, "edited.yaml")


def test_host_memory_per_gpu_in_si():
    # DGX H100 / H200 / B200: 2 TB of system memory (32 x 64 GiB DIMMs) for 8 GPUs = 256 GiB per GPU.
    for name in ("h100-sxm", "h200", "b200"):
        assert load_hardware(name).host_memory_bytes == 2048 / 8 * 2**30
    # Azure ND MI300X v5: 1850 GiB for 8 GPUs.
    assert load_hardware("mi300x").host_memory_bytes == 1850 / 8 * 2**30


def test_host_memory_is_required_and_positive():
    doc = _spec("h100-sxm")
    del doc["host_memory"]
    with pytest.raises(HardwareSpecError, match="host_memory"):
        parse_hardware(doc, "edited.yaml")
    doc = _spec("h100-sxm")
    doc["host_memory"]["capacity_GiB_per_gpu"] = 0
    with pytest.raises(HardwareSpecError, match="capacity_GiB_per_gpu must be > 0"):
        parse_hardware(doc, "edited.yaml")
