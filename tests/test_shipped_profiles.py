"""The calibration profiles shipped in hwspecs/calibration/ (fitted by `roofline calibrate --from
aiconfigurator` from AIConfigurator's measured kernel tables): every GPU and framework the data covers
has one, each is valid and says where it came from, `calibration: auto` uses them as users get it,
and their grids price the measurements they were fitted to."""

from __future__ import annotations

import re

import numpy as np
import pytest

import roofline
from roofline.hwspecs import CALIBRATION_DIR, list_hardware, read_profile
from roofline.simulator.results import op_table

GPUS = ("a100-80gb-sxm", "h100-sxm", "h200", "b200", "gb200", "l40s")
FRAMEWORKS = ("vllm", "sglang", "trtllm")
SHIPPED = sorted(CALIBRATION_DIR.glob("*.yaml"))


def test_every_covered_gpu_and_framework_ships_a_profile():
    names = {p.name for p in SHIPPED}
    assert names == {f"{g}.{f}.yaml" for g in GPUS for f in FRAMEWORKS}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_profile_is_valid_and_names_its_source(path):
    sku, framework = path.stem.split(".")
    profile = read_profile(path)
    assert profile.hardware == sku and sku in list_hardware()
    prov = profile.provenance
    assert prov["source"] == "aiconfigurator-core" and re.fullmatch(r"\d+\.\d+\.\d+", prov["source_version"])
    assert prov["framework"] == framework and prov["source_license"] == "Apache-2.0"
    assert prov["device"]  # the GPU the tables were measured on
    assert {"gemm_bf16", "attention_prefill", "attention_decode"} <= set(profile.grids)
    for grid in profile.grids.values():
        # every grid carries its error on held-out shapes; 25% median bounds a grid that is still a
        # useful measurement (the per-GPU figures are in docs/validation/aic_holdout.md)
        assert grid.holdout["rows"] > 10 and 0 <= grid.holdout["median"] < 0.25, grid.kind
        for values in grid.values.values():
            assert np.all(np.isfinite(values)) and np.all(values > 0)


@pytest.mark.parametrize(
    "hardware,framework,calibrated",
    [
        ("h100-sxm", "vllm", True),
        ("h200", "trtllm", True),
        ("a100-80gb-sxm", "sglang", True),
        ("h100-sxm", "hf", False),  # PyTorch eager: no framework kernels measured
        ("mi300x", "vllm", False),  # a GPU the data does not cover
    ],
)
def test_auto_uses_the_shipped_profile_of_the_framework(shipped_profiles, hardware, framework, calibrated):
    rec = roofline.simulate(
        {
            "model": "llama-3.1-8b",
            "hardware": hardware,
            "runtime": {"framework": framework},
            "workload": {"prompt_tokens": 4096, "output_tokens": 16},
        }
    ).records()[0]
    prov = rec["provenance"]
    if calibrated:
        assert (
            prov["calibration"].startswith(f"{hardware}.aiconfigurator-")
            and f".{framework}-" in prov["calibration"]
        )
        assert prov["error_band"]["gemm_bf16"] < 0.1 and "attention_decode" in prov["error_band"]
    else:
        assert prov["calibration"] == "datasheet" and prov["error_band"] == "uncalibrated"


def test_tests_pin_the_datasheet_model():
    # conftest points `calibration: auto` at an empty folder for the engine's own tests
    rec = roofline.simulate(
        {"model": "llama-3.1-8b", "hardware": "h100-sxm", "workload": {"prompt_tokens": 4096}}
    )
    assert rec.records()[0]["provenance"]["calibration"] == "datasheet"


def test_shipped_gemm_grid_prices_a_measured_llama_shape(shipped_profiles):
    # Llama-3.1-8B's qkv projection at batch 1 on H100 (vLLM): a 1 x 6144 x 4096 bf16 GEMM, measured
    # 19.90 us (AIConfigurator vLLM 0.24.0 gemm table, fastest kernel). The grid's nodes are octaves of
    # n (4096, 8192), so 6144 is read between measured neighbours: within 10% (the grid's held-out p90).
    res = roofline.simulate(
        {
            "model": "llama-3.1-8b",
            "hardware": "h100-sxm",
            "workload": {"batch": 1, "prompt_tokens": 1024, "output_tokens": 2},
        }
    )
    qkv = next(o for o in op_table(res, 0, "decode") if o["name"] == "qkv_proj")
    assert qkv["time_s"] / 32 == pytest.approx(19.90e-6, rel=0.10)
