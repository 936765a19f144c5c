"""Eager PyTorch frameworks (`hf`, `transformers`) under `calibration: auto` read the measurements of
the kernels they share with the GPU's serving-engine profile (calibration.torch_kernels): cuBLAS
GEMMs everywhere, FlashAttention-2 prefill where vLLM's table timed FA2 (A100). Exact against a
profile file that holds only those measurements; the shipped profiles (hwspecs/calibration)."""

from __future__ import annotations

import pytest
import yaml

import roofline
from roofline.hwspecs import profile_path, read_profile_document
from roofline.simulator.results import op_table

WORKLOAD = {"batch": 4, "prompt_tokens": 8192, "output_tokens": 16}
# `calibration: auto` as users get it (conftest points it at an empty folder otherwise)
pytestmark = pytest.mark.usefixtures("shipped_profiles")


def _times(result, phase: str) -> dict:
    return {o["name"]: o["time_s"] for o in op_table(result, 0, phase)}


def _subset_profile(tmp_path, hardware: str, kinds: tuple) -> str:
    """The GPU's vLLM profile with only `kinds` of its curves and grids (its kernel overhead and
    collective tables kept), written to a file."""
    doc = read_profile_document(profile_path(hardware, "vllm"))
    doc["curves"] = {k: v for k, v in doc["curves"].items() if k in kinds}
    doc["grids"] = {k: v for k, v in doc["grids"].items() if k in kinds}
    doc.pop("other_curves", None)
    path = tmp_path / f"{hardware}.subset.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


@pytest.mark.parametrize("framework", ["hf", "transformers"])
@pytest.mark.parametrize(
    "hardware,kinds",
    [
        ("a100-80gb-sxm", ("gemm_bf16", "attention_prefill")),  # vLLM's A100 table: FA2 only
        ("h100-sxm", ("gemm_bf16",)),  # FA3/FA4 there: not the flash-attn package's FA2
    ],
)
def test_eager_pytorch_prices_its_kernels_from_the_gpus_vllm_profile(tmp_path, framework, hardware, kinds):
    base = {
        "model": "llama-3.1-8b",
        "hardware": hardware,
        "runtime": {"framework": framework},
        "workload": WORKLOAD,
    }
    auto = roofline.simulate(base)
    subset = roofline.simulate(dict(base, calibration=_subset_profile(tmp_path, hardware, kinds)))
    for phase in ("prefill", "decode"):
        assert _times(auto, phase) == pytest.approx(_times(subset, phase), rel=1e-12)
    a, s = auto.records()[0], subset.records()[0]
    for key in ("ttft_s", "tpot_s", "e2e_s"):
        assert a[key] == pytest.approx(s[key], rel=1e-12)
    assert a["provenance"]["calibration"].endswith(f"its torch kernels ({', '.join(kinds)})")
    # the subset is exactly what is borrowed: vLLM's decode attention (paged kernels), fused MoE
    # and eight-bit GEMMs, in the full profile, would have moved the decode ops above
    # the measured GEMMs move the price off the datasheet curves
    sheet = _times(roofline.simulate(dict(base, calibration="datasheet")), "prefill")
    ffn = [n for n in sheet if "mlp" in n or "ffn" in n or "up" in n]
    assert ffn and any(abs(_times(auto, "prefill")[n] / sheet[n] - 1) > 0.01 for n in ffn)


def test_a_framework_sweep_prices_each_framework_as_its_point_alone():
    base = {"model": "llama-3.1-8b", "hardware": "a100-80gb-sxm", "workload": WORKLOAD}
    swept = roofline.simulate(
        dict(base, sweep={"runtime.framework": ["vllm", "transformers", "hf"]})
    ).records()
    for fw, record in zip(["vllm", "transformers", "hf"], swept):
        (alone,) = roofline.simulate(dict(base, runtime={"framework": fw})).records()
        assert record["ttft_s"] == pytest.approx(alone["ttft_s"], rel=1e-9)
        assert record["tpot_s"] == pytest.approx(alone["tpot_s"], rel=1e-9)


def test_a_gpu_without_a_serving_engine_profile_stays_on_the_datasheet():
    base = {"model": "gemma-2b", "hardware": "a10g", "runtime": {"framework": "transformers"}}
    (rec,) = roofline.simulate(
        dict(base, workload={"batch": 1, "prompt_tokens": 7, "output_tokens": 8})
    ).records()
    assert rec["provenance"]["calibration"] == "datasheet"
    assert rec["provenance"]["error_band"] == "uncalibrated"
