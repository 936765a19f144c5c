"""Validation against published measurements (shared/reference/published_measurements.yaml).

Datasheet efficiencies only (no calibration profile): these tests bound how far an uncalibrated
prediction is from real runs. Each tolerance says what the model leaves out.
"""

from __future__ import annotations

import pytest

from helpers import ops, run

A100 = "a100-80gb-sxm"

# microsoft/MInference experiments README: vLLM (FlashAttention-2) prefill of Llama-3-8B-Instruct-1M
# (Llama-3-8B shapes = llama-3.1-8b shapes), bf16, batch 1, one A100-80GB; seconds.
VLLM_PREFILL_S = {10000: 0.832, 50000: 7.717, 100000: 21.731, 128000: 32.863}


@pytest.mark.parametrize("prompt", sorted(VLLM_PREFILL_S))
def test_vllm_dense_prefill_a100(prompt):
    # -16%..+5%: vLLM's attention kernel on A100 runs at 0.877 of the FlashAttention-2 curve
    # (kernel_scales.ATTENTION_PREFILL_SCALE, measured on AIConfigurator's vLLM tables), which is held
    # beyond its 16K measured range; -11%, -13%, -4%, -2% at the time of writing (-11% to -19%
    # before the framework's kernel was modelled).
    _, recs = run(hardware=A100, workload={"batch": 1, "prompt_tokens": prompt, "output_tokens": 1})
    err = recs[0]["ttft_s"] / VLLM_PREFILL_S[prompt] - 1
    assert -0.16 <= err <= 0.05, (
        f"{prompt}: predicted {recs[0]['ttft_s']:.3f} s, measured {VLLM_PREFILL_S[prompt]} s"
    )


# ShadowKV (arXiv:2410.21465) Table 12: one Llama-3-8B-1M block during prefill on A100, ms per layer.
SHADOWKV_ATTN_MS = {65536: 186.23, 131072: 721.13, 262144: 2880.21, 524288: 11720.30}
SHADOWKV_FFN_MS = {65536: 96.47, 131072: 193.32, 262144: 392.77, 524288: 789.23}


@pytest.mark.parametrize("prompt", sorted(SHADOWKV_ATTN_MS))
def test_shadowkv_prefill_layer_breakdown(prompt):
    # +-10%: these are kernel times of one layer (no framework overhead); what remains is the
    # FA2/cuBLAS efficiency at these exact shapes (FA2 curve held beyond 16K; GEMM curve from square
    # cuBLASLt sizes). At the time of writing: attention -1% to -4%, FFN -3% to -5%. Kernel times of
    # the FlashAttention package: framework `kernel`.
    res, _ = run(
        hardware=A100,
        runtime={"framework": "kernel"},
        workload={"batch": 1, "prompt_tokens": prompt, "output_tokens": 1},
    )
    table = ops(res)
    attn_ms = sum(o["time_s"] for o in table if o["kind"] == "attention_prefill") / 32 * 1e3
    ffn_ms = sum(o["time_s"] for o in table if o["name"] in ("ffn_up", "ffn_act", "ffn_down")) / 32 * 1e3
    assert attn_ms == pytest.approx(SHADOWKV_ATTN_MS[prompt], rel=0.10)
    assert ffn_ms == pytest.approx(SHADOWKV_FFN_MS[prompt], rel=0.10)


# ShadowKV Table 4: full-attention baseline, Llama-3-8B-1M bf16 on one A100-80GB; decode tokens/s
# by batch, None = out of memory.
SHADOWKV_DECODE = {
    60: {2: 89.19, 3: 111.44, 4: 126.73, 5: 142.62, 6: 147.40, 8: 160.62, 12: None},
    122: {2: 65.12, 3: 75.16, 4: 80.77, 5: None},
    244: {2: 40.37, 3: None},
}
CASES = [(k, b, t) for k, row in SHADOWKV_DECODE.items() for b, t in row.items()]


@pytest.mark.parametrize("kilo_tokens,batch,tokens_per_s", CASES)
@pytest.mark.parametrize("kilo", [1000, 1024])
def test_shadowkv_full_attention_capacity_and_throughput(kilo_tokens, batch, tokens_per_s, kilo):
    # Capacity is exact: "60K" read as 60,000 or 61,440 tokens must give the same fits / OOM split.
    # Prefill is chunked (8K tokens) so that the test is about the KV cache, as in the paper's
    # decode benchmark. The baseline is an eager PyTorch stack (`framework: hf`: kernels launched
    # one by one, a synchronous 1 ms iteration). Throughput +-8%: HBM efficiency at these shapes and
    # the launch cost per kernel (an assumption checked on this table and the CP paper's, see
    # simulator/frameworks.py) remain; -2%..+5% at the time of writing (was -10%..+25% without the
    # framework: +20% at batch 2).
    _, recs = run(
        hardware=A100,
        runtime={"framework": "hf"},
        workload={
            "batch": batch,
            "prompt_tokens": kilo_tokens * kilo,
            "output_tokens": 128,
            "prefill_chunk_tokens": 8192,
        },
    )
    r = recs[0]
    assert r["fits"] is (tokens_per_s is not None), r.get("fit_reason")
    if tokens_per_s is not None:
        assert r["decode_tokens_per_s"] == pytest.approx(tokens_per_s, rel=0.08)
        assert r["max_batch"] >= batch
    else:
        assert r["max_batch"] < batch


# ShadowKV (arXiv:2410.21465v2) Table 3, "Full Attn": each model at the largest batch that fits one
# A100 (the paper's baseline picks it), decode tokens/s. Added after the model was built.
SHADOWKV_TABLE3 = {
    "llama-3.1-8b": {60: (8, 160.93), 122: (4, 80.78)},
    "glm-4-9b-1m": {60: (12, 241.05), 122: (6, 122.67), 244: (3, 61.13)},
}
TABLE3_CASES = [(m, k, b, t) for m, row in SHADOWKV_TABLE3.items() for k, (b, t) in row.items()]


@pytest.mark.parametrize("model,kilo_tokens,batch,tokens_per_s", TABLE3_CASES)
def test_shadowkv_table3_largest_batch_and_throughput(model, kilo_tokens, batch, tokens_per_s):
    # The largest batch that fits is exact (GLM-4-9B-1M's 4 KV heads and 40 layers, 2 x 4 x 128 x 40
    # x 2 = 80 KiB per token, as Llama's 8 KV heads x 32 layers make 128 KiB); decode +-8% as in
    # the Table 4 test (eager stack, HBM efficiency at these shapes): -4%..-0% at the time of writing.
    _, recs = run(
        model=model,
        hardware=A100,
        runtime={"framework": "hf"},
        workload={
            "batch": batch,
            "prompt_tokens": kilo_tokens * 1024,
            "output_tokens": 128,
            "prefill_chunk_tokens": 8192,
        },
    )
    assert recs[0]["max_batch"] == batch
    assert recs[0]["decode_tokens_per_s"] == pytest.approx(tokens_per_s, rel=0.08)
