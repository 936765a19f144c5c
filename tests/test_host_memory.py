"""Finite host memory: offloaded KV and weights count against the host RAM per GPU (hardware file or
runtime.host_memory_GiB), which bounds `fits`, `max_batch` and `max_context_tokens` (closed-form oracles)."""

from __future__ import annotations

import copy
import math

import pytest

import roofline
from roofline.api import load_scenario
from roofline.simulator.scenario import ScenarioError

GIB = 2**30
# Llama-3.1-8B KV cache per token in bf16: 2 (K, V) x 32 layers x 8 KV heads x 128 dims x 2 bytes.
KV_PER_TOKEN = 2 * 32 * 8 * 128 * 2  # 131,072 bytes
P, O = 130048, 1024
C = P + O  # 131,072 tokens: the model's supported context
KV_PER_SEQUENCE = KV_PER_TOKEN * C  # 17,179,869,184 bytes = 16 GiB
# NVIDIA DGX H100: 2 TB of system memory (32 x 64 GiB DIMMs) for 8 GPUs.
H100_HOST = 2048 * GIB // 8  # 256 GiB per GPU
# Llama-3.1-8B bf16 weights on one GPU (the dense record's weights_bytes).
WEIGHTS = 16_060_522_496

BASE = {
    "model": "llama-3.1-8b",
    "hardware": "h100-sxm",
    "workload": {"batch": 1, "prompt_tokens": P, "output_tokens": O, "prefill_chunk_tokens": 8192},
}
ALL_ON_HOST = [{"name": "kv_offload", "resident_fraction": 0.0}]


def scenario(methods=(), batch=1, **runtime) -> dict:
    doc = copy.deepcopy(BASE)
    doc["workload"]["batch"] = batch
    doc["methods"] = list(methods)
    if runtime:
        doc["runtime"] = runtime
    return doc


def record(doc) -> dict:
    (rec,) = roofline.simulate(doc).records()
    return rec


def test_all_kv_on_the_host_is_bounded_by_host_memory():
    rec = record(scenario(ALL_ON_HOST))
    assert rec["memory"]["kv_cache_bytes"] == 0
    assert rec["memory"]["host_bytes"] == KV_PER_SEQUENCE
    assert rec["memory"]["host_capacity_bytes"] == H100_HOST
    # Before host memory was modelled this was 111,736 sequences (~1.6 PiB of host KV).
    assert rec["max_batch"] == H100_HOST // KV_PER_SEQUENCE == 16
    # At batch 1 the GPU holds no KV at all; the host holds C x 131,072 bytes.
    assert rec["max_context_tokens"] == H100_HOST // KV_PER_TOKEN == 2_097_152


def test_one_sequence_past_the_host_limit_does_not_fit():
    at_limit = record(scenario(ALL_ON_HOST, batch=16))
    assert at_limit["fits"] is True and "fit_reason" not in at_limit
    assert at_limit["memory"]["host_bytes"] == 16 * KV_PER_SEQUENCE == H100_HOST
    past = record(scenario(ALL_ON_HOST, batch=17))
    assert past["fits"] is False
    assert past["memory"]["total_bytes"] <= past["memory"]["capacity_bytes"]  # the GPU side fits
    assert past["memory"]["host_bytes"] == 17 * KV_PER_SEQUENCE
    assert "host memory" in past["fit_reason"] and "h100-sxm" in past["fit_reason"]
    assert "272.0 GiB" in past["fit_reason"] and "256.0 GiB" in past["fit_reason"]
    # Max context at batch 17: floor(256 GiB / (17 x 131,072 bytes per token)).
    assert past["max_context_tokens"] == H100_HOST // (17 * KV_PER_TOKEN) == 123_361


@pytest.mark.parametrize("gib", [64, 100, 512])
def test_override_scales_the_host_limit(gib):
    rec = record(scenario(ALL_ON_HOST, host_memory_GiB=gib))
    assert rec["memory"]["host_capacity_bytes"] == gib * GIB
    assert rec["max_batch"] == gib * GIB // KV_PER_SEQUENCE
    assert rec["max_context_tokens"] == gib * GIB // KV_PER_TOKEN


def test_override_is_a_vectorised_sweep_axis():
    doc = scenario(ALL_ON_HOST)
    doc["sweep"] = {"runtime.host_memory_GiB": [64, 512, None], "workload.batch": [1, 17]}
    records = roofline.simulate(doc).records()
    got = [
        (r["point"]["runtime.host_memory_GiB"], r["point"]["workload.batch"], r["max_batch"], r["fits"])
        for r in records
    ]
    assert got == [
        (64, 1, 4, True),
        (64, 17, 4, False),
        (512, 1, 32, True),
        (512, 17, 32, True),
        (None, 1, 16, True),
        (None, 17, 16, False),
    ]
    caps = [r["memory"]["host_capacity_bytes"] for r in records]
    assert caps == [64 * GIB, 64 * GIB, 512 * GIB, 512 * GIB, H100_HOST, H100_HOST]


def test_weight_offload_counts_its_host_weights():
    # A quarter of the weights stay on the GPU; three quarters live on the host.
    offload = [{"name": "weight_offload", "resident_fraction": 0.25}]
    rec = record(scenario(offload))
    assert rec["memory"]["weights_bytes"] == WEIGHTS // 4
    assert rec["memory"]["host_bytes"] == WEIGHTS * 3 // 4
    assert rec["fits"] is True
    # With less host memory than the offloaded weights nothing fits, whatever the batch.
    small = record(scenario(offload, host_memory_GiB=10))
    assert WEIGHTS * 3 // 4 > 10 * GIB
    assert small["fits"] is False and "host memory" in small["fit_reason"]
    assert small["max_batch"] == 0 and small["max_context_tokens"] == 0
    # Host weights and host KV add up: the KV bound is what is left after the weights.
    both = record(scenario(offload + ALL_ON_HOST))
    assert both["memory"]["host_bytes"] == WEIGHTS * 3 // 4 + KV_PER_SEQUENCE
    assert both["max_batch"] == (H100_HOST - WEIGHTS * 3 // 4) // KV_PER_SEQUENCE == 15


def test_shadowkv_host_values_count():
    # ShadowKV keeps all values (half of K+V) on the host: 65,536 bytes per token per sequence.
    sc = load_scenario("scenarios/shadowkv-122k-batch-a100.yaml")
    (rec,) = roofline.simulate(sc).records()
    context = 122880 + 256
    values = KV_PER_TOKEN // 2 * context
    assert rec["memory"]["host_bytes"] == 24 * values
    assert rec["memory"]["host_capacity_bytes"] == 2048 * GIB // 8  # DGX A100 640GB: 2 TB / 8 GPUs
    assert rec["fits"] is True and rec["max_batch"] == 26  # the GPU is the tighter limit here
    tight = load_scenario("scenarios/shadowkv-122k-batch-a100.yaml", overrides=["runtime.host_memory_GiB=80"])
    (rec,) = roofline.simulate(tight).records()
    assert rec["fits"] is False and "host memory" in rec["fit_reason"]
    assert rec["max_batch"] == 80 * GIB // values == 10


# Records of shipped dense scenarios computed before host memory was modelled: unchanged.
DENSE_BEFORE = {
    "scenarios/llama3-8b-128k-h100.yaml": (3, 518232, 35153507328),
    "scenarios/llama3-8b-4k-h100.yaml": (101, 8093, 60955631616),
    "scenarios/llama3-70b-8xh100-tp8.yaml": (48, 101157, 41415061504),
}


@pytest.mark.parametrize("path", DENSE_BEFORE)
def test_dense_results_are_unchanged(path):
    (rec,) = roofline.simulate(load_scenario(path)).records()
    assert (rec["max_batch"], rec["max_context_tokens"], rec["memory"]["total_bytes"]) == DENSE_BEFORE[path]
    assert rec["fits"] is True and rec["memory"]["host_bytes"] == 0
    # Nothing lives on the host, so even a tiny host memory changes nothing.
    (tiny,) = roofline.simulate(load_scenario(path, overrides=["runtime.host_memory_GiB=0.001"])).records()
    assert {k: tiny[k] for k in ("fits", "max_batch", "max_context_tokens")} == {
        k: rec[k] for k in ("fits", "max_batch", "max_context_tokens")
    }


@pytest.mark.parametrize(
    "value, fragment",
    [(0, "must be > 0"), (-1.5, "must be > 0"), ("lots", "must be a number"), (True, "must be a number"),
     (math.inf, "must be finite"), (1e7, "must be <= 1e+06")],
)  # fmt: skip
def test_bad_override_is_a_clean_error(value, fragment):
    with pytest.raises(ScenarioError) as exc:
        load_scenario(scenario(host_memory_GiB=value))
    message = str(exc.value)
    assert "runtime.host_memory_GiB" in message and fragment in message
    if fragment != "must be finite":  # (the finiteness message carries no help text)
        assert "Host (CPU) memory per GPU" in message  # the field's help


def test_bad_override_in_a_sweep_is_a_clean_error():
    doc = scenario()
    doc["sweep"] = {"runtime.host_memory_GiB": [64, 0]}
    with pytest.raises(ScenarioError, match=r"sweep\.runtime\.host_memory_GiB: must be > 0"):
        load_scenario(doc)
