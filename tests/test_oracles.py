"""Closed-form oracles: sizes, FLOPs and bytes the engine must reproduce exactly."""

from __future__ import annotations

import math

import pytest

from roofline.models import list_models, load_model, read_config, zoo_index
from roofline.simulator.comm import ring_allreduce_time
from roofline.simulator.hf_config import from_hf_config

from helpers import ops, run

SPEC_MODELS = [
    "llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b",
    "mistral-7b", "mixtral-8x7b", "qwen2.5-7b-1m", "qwen2.5-14b-1m", "yi-34b-200k", "glm-4-9b-1m",
    "phi-3-mini-128k", "gemma-2-9b", "deepseek-v2-lite", "deepseek-v3", "minimax-text-01", "jamba-1.5-mini",
]  # fmt: skip


def test_zoo_has_every_spec_model():
    assert set(SPEC_MODELS) <= set(list_models())


@pytest.mark.parametrize("name", SPEC_MODELS)
def test_parameter_count_matches_published(name):
    # Published sizes are rounded to 2-3 significant figures (e.g. Phi-3-mini "3.8B" for 3.82B):
    # 1.5% covers the rounding; a missing projection or layer is >= 2% for every zoo model.
    published = zoo_index()[name]["published_params"]
    assert load_model(name).total_params() == pytest.approx(published, rel=0.015)


@pytest.mark.parametrize(
    "name", ["mixtral-8x7b", "deepseek-v2-lite", "deepseek-v3", "minimax-text-01", "jamba-1.5-mini"]
)
def test_moe_active_parameters_match_published(name):
    # Papers count "activated" parameters with or without embeddings (MiniMax: 48.40B with both
    # embedding tables, 45.9B without the input table); 11% covers the convention, not the experts:
    # one routed expert more or less is >= 15% for each of these models.
    published = zoo_index()[name]["published_active_params"]
    assert load_model(name).active_params() == pytest.approx(published, rel=0.11)


def test_llama31_8b_kv_cache_at_128k_bf16():
    # STYLE.md: 2 (K,V) * 32 layers * 8 KV heads * 128 head dim * 2 bytes * 131072 tokens.
    oracle = 2 * 32 * 8 * 128 * 2 * 131072
    assert oracle == 17_179_869_184
    assert load_model("llama-3.1-8b").kv_bytes_per_token(2.0) * 131072 == oracle
    _, recs = run(workload={"batch": 1, "prompt_tokens": 131072 - 1, "output_tokens": 1})
    assert recs[0]["memory"]["kv_cache_bytes"] == oracle


def test_mla_latent_cache_per_token():
    # DeepSeek-V3: (kv_lora_rank 512 + rope dim 64) per layer, 61 layers, bf16.
    assert load_model("deepseek-v3").kv_bytes_per_token(2.0) == (512 + 64) * 61 * 2


def test_jamba_cache_and_state():
    m = load_model("jamba-1.5-mini")
    # 4 attention layers (period 8, offset 4), 8 KV heads of 128: 2*4*8*128 elements per token.
    assert m.kv_elements_per_token() == 2 * 4 * 8 * 128
    # 28 Mamba layers: fp32 SSM state d_inner*d_state plus bf16 conv window d_inner*(d_conv-1).
    assert m.state_bytes_per_sequence(2.0) == 28 * (8192 * 16 * 4 + 8192 * 3 * 2)


def test_zoo_config_and_path_build_the_same_arch():
    entry = zoo_index()["llama-3.1-8b"]
    from_path = load_model(f"models/zoo/{entry['config']}")
    from_zoo = load_model("llama-3.1-8b")
    assert from_path.layer_groups == from_zoo.layer_groups
    assert from_path.total_params() == from_zoo.total_params()


def test_tiny_config_parameter_count(fixtures_dir):
    m = from_hf_config(read_config(fixtures_dir / "tiny_llama_config.json"))
    h, v, inter, heads, kv, layers = 64, 1000, 176, 4, 2, 2
    hd = h // heads
    per_layer = h * heads * hd + 2 * h * kv * hd + heads * hd * h + 3 * h * inter + 2 * h
    assert m.total_params() == 2 * v * h + layers * per_layer + h


def test_prefill_flops_are_2_params_tokens_plus_attention():
    # Llama-3.1-8B, one 8192-token prompt: GEMM FLOPs = 2 * (matmul params per layer) * tokens * layers
    # + the LM head for the last token; attention = 2 * (causal pairs) * heads * (dqk + dv) * layers.
    P = 8192
    res, _ = run(workload={"batch": 1, "prompt_tokens": P, "output_tokens": 1})
    h, heads, kv, hd, inter, layers, vocab = 4096, 32, 8, 128, 14336, 32, 128256
    matmul = h * heads * hd + 2 * h * kv * hd + heads * hd * h + 3 * h * inter
    gemm = sum(o["flops"] for o in ops(res) if o["kind"] == "gemm")
    assert gemm == pytest.approx(2 * matmul * P * layers + 2 * h * vocab, rel=1e-12)
    attn = sum(o["flops"] for o in ops(res) if o["kind"] == "attention_prefill")
    assert attn == pytest.approx(2 * (P * P / 2) * heads * (2 * hd) * layers, rel=1e-12)


def test_sliding_window_pairs():
    # Gemma-2-9B: 21 local layers (window 4096) attend to W^2/2 + W (P - W) pairs, 21 global P^2/2.
    P, W = 16384, 4096
    res, _ = run(model="gemma-2-9b", workload={"batch": 1, "prompt_tokens": P, "output_tokens": 1})
    attn = sum(o["flops"] for o in ops(res) if o["kind"] == "attention_prefill")
    per_pair = 2 * 16 * (2 * 256)
    pairs = 21 * (W * W / 2 + W * (P - W)) + 21 * P * P / 2
    assert attn == pytest.approx(per_pair * pairs, rel=1e-12)


def test_decode_step_bytes_at_batch_one():
    # One decode step at batch 1 reads every matmul weight once (plus the LM head) and the whole KV
    # cache; with output_tokens=2 the single step sees KV length P + 1.
    P = 32768
    res, recs = run(workload={"batch": 1, "prompt_tokens": P, "output_tokens": 2})
    m = load_model("llama-3.1-8b")
    weights = (m.total_params() - m.vocab_size * m.hidden_size) * 2  # input embedding table not read whole
    kv = m.kv_bytes_per_token(2.0) * (P + 1)
    total = recs[0]["decode"]["bytes"]
    assert weights + kv < total < (weights + kv) * 1.01  # activations, norms: well under 1%


def test_shared_prefix_stored_once():
    b, P, S = 8, 20000, 16000
    _, shared = run(workload={"batch": b, "prompt_tokens": P, "output_tokens": 1, "shared_prefix_tokens": S})
    per_token = load_model("llama-3.1-8b").kv_bytes_per_token(2.0)
    assert shared[0]["memory"]["kv_cache_bytes"] == pytest.approx(per_token * (S + b * (P + 1 - S)))


def test_tensor_parallel_shards_weights_and_kv():
    _, one = run(workload={"batch": 1, "prompt_tokens": 8192, "output_tokens": 8})
    _, eight = run(
        hardware="h100-sxm",
        parallelism={"tp": 8},
        model="llama-3.1-8b",
        workload={"batch": 1, "prompt_tokens": 8192, "output_tokens": 8},
    )
    # Everything but the two RMSNorm vectors per layer splits over 8 ranks; the norms are replicated.
    norms = 32 * 2 * 4096 * 2
    split = (one[0]["memory"]["weights_bytes"] - norms) / 8 + norms
    assert eight[0]["memory"]["weights_bytes"] == pytest.approx(split, rel=1e-9)
    # 8 KV heads over 8 GPUs: one head each.
    assert eight[0]["memory"]["kv_cache_bytes"] == pytest.approx(
        one[0]["memory"]["kv_cache_bytes"] / 8, rel=1e-12
    )
    assert "comm" in eight[0]["decode"]["breakdown"]


def test_ring_allreduce_closed_form():
    # 2 (n-1) steps of latency plus 2 (n-1)/n of the buffer over the link at 95% efficiency.
    t = ring_allreduce_time(64e6, 8, 450e9, step_latency_s=2.5e-6)
    assert t == pytest.approx(14 * 2.5e-6 + 1.75 * 64e6 / (450e9 * 0.95))
    assert float(ring_allreduce_time(64e6, 1, 450e9)) == 0.0


def test_cost_and_energy_definitions():
    _, recs = run(workload={"batch": 4, "prompt_tokens": 4096, "output_tokens": 256})
    r = recs[0]
    assert r["e2e_s"] == pytest.approx(r["ttft_s"] + 255 * r["tpot_s"])
    out_rate = 4 * 256 / r["e2e_s"]
    assert r["throughput_tokens_per_s_per_gpu"] == pytest.approx(out_rate)
    assert r["cost"]["usd_per_hour"] == pytest.approx(2.95)
    assert r["cost"]["usd_per_million_output_tokens"] == pytest.approx(2.95 / 3600 / out_rate * 1e6)
    assert r["cost"]["usd_per_million_prompt_tokens"] == pytest.approx(
        2.95 / 3600 / (4 * 4096 / r["ttft_s"]) * 1e6
    )
    # Energy lies between the static floor (30% TDP) and full TDP for the whole e2e time.
    lo, hi = 0.3 * 700 * r["e2e_s"] / (4 * 256), 700 * r["e2e_s"] / (4 * 256)
    assert lo <= r["energy"]["joules_per_output_token"] <= hi


def test_max_batch_closed_form_dense():
    # Llama-3.1-8B on A100-80GB, chunked prefill: max batch = floor(room / per-sequence bytes) where
    # per-sequence bytes = KV at the full context + fp32 logits and decode activations per row.
    _, recs = run(
        hardware="a100-80gb-sxm",
        workload={"batch": 1, "prompt_tokens": 60000, "output_tokens": 1000, "prefill_chunk_tokens": 2048},
    )
    m = recs[0]["memory"]
    room = m["capacity_bytes"] - m["weights_bytes"] - m["overhead_bytes"]
    per_seq_kv = 131072 * 61000
    assert recs[0]["max_batch"] == math.floor(room / (per_seq_kv + 128256 * 4 + (2 * 4096 + 3 * 14336) * 2))


def test_decode_attention_streams_by_sequences_times_kv_heads():
    # Measured decode kernels (efficiency.DECODE_ATTENTION_FIXED_S): one kernel per layer takes its
    # fixed time plus KV bytes at the HBM rate x 1 / (1 + (1 / u)^1.6), u = sequences x KV heads on
    # the GPU. Llama-3.1-70B at TP8 holds one KV head per GPU: batch 1 streams at half the rate.
    from roofline.hwspecs import load_hardware
    from roofline.simulator.efficiency import (
        DECODE_ATTENTION_FIXED_S,
        HBM_EFFICIENCY,
        decode_parallel_efficiency,
    )

    hw = load_hardware("h100-sxm")
    assert decode_parallel_efficiency(1) == pytest.approx(0.5)
    for batch in (1, 8):
        res, _ = run(
            model="llama-3.1-70b",
            gpus=8,
            parallelism={"tp": 8},
            runtime={"framework": "kernel"},
            workload={"batch": batch, "prompt_tokens": 65536, "output_tokens": 2},
        )
        (attn,) = [o for o in ops(res, 0, "decode") if o["kind"] == "attention_decode"]
        rate = hw.memory_bandwidth * HBM_EFFICIENCY["h100-sxm"] * decode_parallel_efficiency(batch * 1)
        expected = attn["bytes"] / rate + 80 * DECODE_ATTENTION_FIXED_S
        assert attn["time_s"] == pytest.approx(expected, rel=1e-9)


def test_op_table_names_the_layer_groups_each_op_runs_in():
    # Gemma-2-9B alternates sliding-window (4096) and global layers, 21 of each: the attention op's
    # row splits into the two groups, whose times add up to the row's; an FFN GEMM runs in both; the
    # LM head runs in no layer.
    res, _ = run(model="gemma-2-9b", workload={"batch": 1, "prompt_tokens": 32768, "output_tokens": 2})
    rows = {(o["name"], o["kind"]): o for o in ops(res, 0, "prefill")}
    attn = rows[("attention", "attention_prefill")]
    groups = {g["group"]: g for g in attn["layers"]}
    assert sorted(groups) == ["gqa(window=4096)+dense", "gqa+dense"]
    assert [groups[k]["layers"] for k in sorted(groups)] == [21, 21]
    assert sum(g["time_s"] for g in attn["layers"]) == pytest.approx(attn["time_s"], rel=1e-12)
    assert groups["gqa+dense"]["time_per_layer_s"] > groups["gqa(window=4096)+dense"]["time_per_layer_s"]
    up = rows[("ffn_up", "gemm")]["layers"]
    assert {g["group"] for g in up} == set(groups)
    assert up[0]["time_per_layer_s"] == pytest.approx(up[1]["time_per_layer_s"], rel=1e-12)
    assert rows[("lm_head", "gemm")]["layers"] == []
