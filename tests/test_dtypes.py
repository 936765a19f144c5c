"""Formats: GEMMs and attention each run at their own format's peak and efficiency curve.

Oracles: the Azure cuBLASLt fp8 GEMM measurements (published_measurements.yaml, gemm-peak) for the
8-bit curve, and the engine's own definitions for which peak each op runs at.
"""

from __future__ import annotations

import numpy as np
import pytest

from roofline.hwspecs import load_hardware
from roofline.simulator.efficiency import build_table, gemm_efficiency

from helpers import ops, run

WL = {"batch": 1, "prompt_tokens": 131072, "output_tokens": 2}


def _rate(hw_name, dtype, s):
    """Modelled TFLOP/s of an s x s x s GEMM in `dtype` on the datasheet curves."""
    hw = load_hardware(hw_name)
    table = build_table([hw], dtype=dtype)
    eff = gemm_efficiency(table, 0, np.log2(s), s, s)
    return float(eff) * hw.peak(dtype) / 1e12


@pytest.mark.parametrize(
    "hw, dtype, measured",
    [
        # Azure ND H100 v5 / ND H200 v5 cuBLASLt square GEMMs at 8192^3 (fp8), and this team's bf16
        # 8192^3 measurement. 2%: the curve is the mean shape of the two GPUs' fp8 sweeps.
        ("h100-sxm", "fp8", 1290.1),
        ("h200", "fp8", 1300.6),
        ("h100-sxm", "bf16", 798.0),
    ],
)
def test_gemm_curve_per_format_matches_measured_8192(hw, dtype, measured):
    assert _rate(hw, dtype, 8192) == pytest.approx(measured, rel=0.02)


def test_small_fp8_gemms_reach_a_smaller_share_of_peak_than_bf16():
    # Azure fp8 at 1024^3: 274.1 of 1978.9 TFLOP/s (14%), bf16-class 119.4/256.5 of the plateau.
    assert _rate("h100-sxm", "fp8", 1024) == pytest.approx(
        (274.1 / 1377.3 + 290.8 / 1366.3) / 2 * 1377.3, rel=1e-6
    )
    assert _rate("h100-sxm", "fp8", 1024) / 1978.9 < _rate("h100-sxm", "bf16", 1024) / 989.4


def test_fp8_on_a_chip_without_fp8_units_keeps_the_16_bit_curve():
    assert _rate("a100-80gb-sxm", "fp8", 8192) == pytest.approx(
        _rate("a100-80gb-sxm", "bf16", 8192), rel=1e-12
    )


def _attention_prefill(res, phase="prefill"):
    return [o for o in ops(res, 0, phase) if o["kind"] == "attention_prefill"]


@pytest.mark.parametrize("fmt", ["w8a8", "fp8"])
def test_quantised_gemms_leave_attention_in_bf16(fmt):
    # W8A8 / FP8 weight formats speed up the GEMMs, not FlashAttention (vLLM runs it in bf16). vLLM's
    # measured fp8 GEMMs reach 0.74-0.76 of the cuBLASLt fp8 curve (kernel_scales.GEMM_SCALE): the
    # prefill GEMMs take < 0.85 of the bf16 time.
    dense, _ = run(workload=WL)
    quant, recs = run(workload=WL, methods=[{"name": "weight_quant", "format": fmt}])
    (a,), (b,) = _attention_prefill(dense), _attention_prefill(quant)
    assert b["flops"] == a["flops"] and b["time_s"] == pytest.approx(a["time_s"], rel=1e-12)
    gemm = [sum(o["time_s"] for o in ops(r) if o["kind"] == "gemm") for r in (dense, quant)]
    assert gemm[1] < 0.85 * gemm[0]
    assert not [w for w in recs[0]["provenance"]["warnings"] if "attention" in w]


def test_explicit_fp8_attention_runs_at_the_fp8_peak_and_says_its_curve_is_borrowed():
    dense, _ = run(workload=WL)
    fp8, recs = run(workload=WL, dtype={"attention": "fp8"})
    (a,), (b,) = _attention_prefill(dense), _attention_prefill(fp8)
    hw = load_hardware("h100-sxm")
    # 128K causal attention is compute bound on an H100: time scales with the peak.
    assert a["bound"] == "compute"
    assert b["time_s"] - 0 == pytest.approx(a["time_s"] * hw.peak("bf16") / hw.peak("fp8"), rel=1e-3)
    assert any("fp8 attention uses the bf16" in w for w in recs[0]["provenance"]["warnings"])


@pytest.mark.parametrize(
    "framework, dtype, fp8",
    [
        # TensorRT-LLM: an FP8 KV cache under an FP8 or NVFP4 checkpoint -> FP8 context FMHA
        ("trtllm", {"weights": "fp8", "activations": "fp8", "kv": "fp8"}, True),
        ("trtllm", {"weights": "fp4", "activations": "fp4", "kv": "fp8"}, True),
        ("trtllm", {"weights": "fp8", "activations": "fp8", "kv": "bf16"}, False),  # a 16-bit cache
        ("trtllm", {"weights": "int4", "activations": "bf16", "kv": "fp8"}, False),  # weight-only
        ("trtllm", {"weights": "fp8", "activations": "fp8", "kv": "fp8", "attention": "bf16"}, False),
        ("vllm", {"weights": "fp8", "activations": "fp8", "kv": "fp8"}, False),  # FlashAttention bf16
        ("sglang", {"weights": "fp8", "activations": "fp8", "kv": "fp8"}, False),
    ],
)
def test_auto_attention_is_fp8_where_tensorrt_llm_runs_fp8_context_fmha(framework, dtype, fp8):
    # TensorRT-LLM's PyTorch backend reads the paged FP8 cache in the context phase (KV block reuse
    # is on by default), which it only does with FP8 attention (kernel_scales.FP8_CACHE_ATTENTION): auto
    # then prices attention at the fp8 peak, exactly as an explicit `attention: fp8`
    wl = {"batch": 1, "prompt_tokens": 32768, "output_tokens": 2}
    auto, _ = run(workload=wl, dtype=dtype, runtime={"framework": framework})
    as_fp8, _ = run(workload=wl, dtype={**dtype, "attention": "fp8"}, runtime={"framework": framework})
    as_bf16, _ = run(workload=wl, dtype={**dtype, "attention": "bf16"}, runtime={"framework": framework})
    (a,), (f,), (b,) = (_attention_prefill(r) for r in (auto, as_fp8, as_bf16))
    assert f["time_s"] < 0.7 * b["time_s"]  # the two formats differ here: the check can tell them apart
    assert a["time_s"] == pytest.approx((f if fp8 else b)["time_s"], rel=1e-12)


def test_auto_attention_follows_16_bit_activations():
    _, bf = run(workload=WL)
    _, fp16 = run(workload=WL, dtype={"activations": "fp16", "attention": "auto"})
    _, explicit = run(workload=WL, dtype={"attention": "bf16"})
    assert bf[0]["ttft_s"] == explicit[0]["ttft_s"] == pytest.approx(fp16[0]["ttft_s"], rel=1e-12)


@pytest.mark.parametrize("fmt", ["w8a8", "fp8"])
def test_8_bit_gemm_inputs_leave_the_residual_stream_and_its_all_reduces_16_bit(fmt):
    # W8A8 / FP8 quantise each GEMM's input on the fly; the residual stream, its norms and the tensor-
    # parallel all-reduces stay bf16 (TensorRT-LLM, vLLM): the same collective bytes and time as bf16.
    wl = {"batch": 16, "prompt_tokens": 4096, "output_tokens": 64}
    dense, _ = run(model="llama-3.1-70b", gpus=4, parallelism={"tp": 4}, workload=wl)
    quant, _ = run(
        model="llama-3.1-70b",
        gpus=4,
        parallelism={"tp": 4},
        workload=wl,
        methods=[{"name": "weight_quant", "format": fmt}],
    )
    for phase in ("prefill", "decode"):
        comm = [sum(o["time_s"] for o in ops(r, 0, phase) if o["kind"] == "comm") for r in (dense, quant)]
        assert comm[0] > 0 and comm[1] == pytest.approx(comm[0], rel=1e-12)
        norms = [sum(o["bytes"] for o in ops(r, 0, phase) if o["kind"] == "norm") for r in (dense, quant)]
        assert norms[1] == pytest.approx(norms[0], rel=1e-12)
    # and the activations held in memory are the same 16-bit tensors
    act = [r.records()[0]["memory"]["activation_bytes"] for r in (dense, quant)]
    assert act[1] == act[0] > 0


def test_four_bit_float_weights_under_16_bit_activations_pay_their_conversion():
    # MXFP4-style weights under bf16 activations convert in the kernel (efficiency.WEIGHT_ONLY['fp4'],
    # measured on Hopper's fused-MoE tables): where the weights' stream binds (batch-1 decode) they
    # stream at 0.57 of a bf16 GEMM's efficiency, int4's at 0.52, bf16's at 1; the launch and the
    # activations' bytes are alike, so the differences of the three times stand in the ratio of
    # their weight terms whatever the rate. Where the math binds (a 128K-token prefill) the GEMM
    # takes 1.40x the bf16 one. A datasheet GPU (no profile measured those kernels).
    from roofline.simulator.efficiency import WEIGHT_ONLY

    def gemm(weights, phase, workload):
        res, _ = run(
            model="llama-3.1-8b",
            hardware="rtx-4090",
            runtime={"framework": "kernel"},
            dtype={"weights": weights, "activations": "bf16"},
            workload=workload,
        )
        return {o["name"]: o for o in ops(res, 0, phase)}["ffn_up"]["time_s"]

    decode = {"batch": 1, "prompt_tokens": 1024, "output_tokens": 2}
    fp4, int4, bf16 = (gemm(w, "decode", decode) for w in ("fp4", "int4", "bf16"))
    s4, s_int4 = WEIGHT_ONLY["fp4"][0], WEIGHT_ONLY["int4"][0]
    assert (int4 - fp4) / (bf16 - fp4) == pytest.approx((1 / s_int4 - 1 / s4) / (4 - 1 / s4), rel=1e-6)
    assert s4 == 0.57 and WEIGHT_ONLY["fp4"][1] == 1.40
    prefill = {"batch": 1, "prompt_tokens": 131072, "output_tokens": 2}
    assert gemm("fp4", "prefill", prefill) / gemm("bf16", "prefill", prefill) == pytest.approx(1.40, rel=2e-3)
