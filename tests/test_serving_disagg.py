"""Prefill/decode disaggregation: a request's first token comes from the prefill pool, its KV crosses
the link with its real bytes, the decode pool generates the rest; queues at both pools."""

from __future__ import annotations

import numpy as np
import pytest

import roofline
from roofline.api import load_fabric
from roofline.simulator.errors import UserError

KV_PER_TOKEN = 2 * 32 * 8 * 128 * 2  # Llama 3.1 8B, bf16: K and V x layers x KV heads x head dim x bytes
H100_NVLINK = 450e9  # bytes/s per GPU per direction (hwspecs/h100-sxm.yaml)


def _doc(serving, **extra):
    return {"model": "llama-3.1-8b", "hardware": "h100-sxm", "serving": serving, **extra}


def _lone(prompt, output, disaggregation=None):
    sv = {"requests": 1, "arrival": {"offline": True}, "prompt_tokens": prompt, "output_tokens": output}
    if disaggregation:
        sv["disaggregation"] = disaggregation
    return roofline.serve(_doc(sv))


def test_lone_request_pays_exactly_its_kv_transfer():
    co = _lone(4000, 50).record
    dis = _lone(4000, 50, {"prefill_gpus": 1, "decode_gpus": 1}).record
    assert dis["ttft_s"]["mean"] == pytest.approx(co["ttft_s"]["mean"], rel=1e-12)
    # Same 49 decode steps; the decode pool starts once 4,000 tokens' KV crossed NVLink.
    moved = 2.5e-6 + 4000 * KV_PER_TOKEN / (H100_NVLINK * 0.95)
    assert dis["kv_transfer_s"]["mean"] == pytest.approx(moved, rel=1e-12)
    assert dis["tpot_s"]["mean"] * 49 == pytest.approx(co["tpot_s"]["mean"] * 49 + moved, rel=1e-9)
    assert dis["disaggregation"]["link"] == "nvlink" and dis["gpus"] == 2


def test_pools_spanning_nodes_use_the_fabric():
    res = _lone(2000, 10, {"prefill_gpus": 8, "decode_gpus": 2}).record
    fab = load_fabric("ib-ndr-400")
    assert res["disaggregation"]["link"] == fab.name and res["gpus"] == 10
    moved = fab.step_latency_s + 2000 * KV_PER_TOKEN / (fab.bandwidth * fab.efficiency)
    assert res["kv_transfer_s"]["mean"] == pytest.approx(moved, rel=1e-12)


def test_kv_quantisation_shrinks_the_transfer():
    plain = _lone(2000, 10, {"prefill_gpus": 1, "decode_gpus": 1}).record
    quant = roofline.serve(
        _doc(
            {
                "requests": 1,
                "arrival": {"offline": True},
                "prompt_tokens": 2000,
                "output_tokens": 10,
                "disaggregation": {"prefill_gpus": 1, "decode_gpus": 1},
            },
            dtype={"kv": "fp8"},
        )
    ).record
    assert quant["disaggregation"]["kv_bytes_per_token"] == KV_PER_TOKEN / 2
    assert quant["kv_transfer_s"]["mean"] < 0.51 * plain["kv_transfer_s"]["mean"] + 2.5e-6


def test_every_request_finishes_and_decode_is_isolated_from_prefill():
    sv = {
        "requests": 300,
        "arrival": {"rate_per_s": 6.0},
        "prompt_tokens": {"dist": "uniform", "min": 2000, "max": 8000},
        "output_tokens": {"dist": "uniform", "min": 1, "max": 300},
    }
    co = roofline.serve(_doc(sv, parallelism={"dp": 2})).record
    res = roofline.serve(_doc({**sv, "disaggregation": {"prefill_gpus": 1, "decode_gpus": 1}}))
    dis = res.record
    first_only, dreq = res.requests
    assert np.all(first_only.output == 1)
    pre_tl = res.timelines[0]
    dec_tl = res.timelines[1]
    assert np.array_equal(dec_tl.generated, dreq.output) and np.all(np.isfinite(dec_tl.finish_s))
    assert np.all(np.isfinite(pre_tl.first_token_s))
    # Tokens out = tokens asked for: one first token per request, the rest from the decode pool.
    total = dis["throughput"]["output_tokens_per_s"] * dis["duration_s"]
    assert total == pytest.approx(300 + dreq.output.sum(), rel=1e-12)
    assert dreq.arrival_s.min() >= pre_tl.first_token_s.min()
    # Decode steps carry no prefill chunks: every request's TPOT is smoother than colocated.
    assert dis["tpot_s"]["p99"] < co["tpot_s"]["p99"]
    assert dis["requests"] == 300
    assert dis["prefix_hit_rate"] == 0.0  # a handed-over prompt is not a prefix-cache hit


def test_context_parallel_prefill_shortens_long_prompts():
    one = _lone(60000, 4, {"prefill_gpus": 1, "decode_gpus": 1}).record
    two = _lone(60000, 4, {"prefill_gpus": 2, "decode_gpus": 1, "prefill_parallelism": {"cp": 2}}).record
    assert two["ttft_s"]["mean"] < 0.7 * one["ttft_s"]["mean"]


@pytest.mark.parametrize(
    "dis, needle",
    [
        ({"prefill_gpus": 2}, "give both prefill_gpus and decode_gpus"),
        ({"prefill_gpus": 3, "decode_gpus": 1, "prefill_parallelism": {"tp": 2}}, "not a multiple"),
        ({"prefill_gpus": 1, "decode_gpus": 1, "decode_parallelism": {"pp": 2}}, "unknown field"),
    ],
)
def test_bad_disaggregation_specs(dis, needle):
    with pytest.raises(UserError) as err:
        roofline.serve(_doc({"arrival": {"offline": True}, "requests": 2, "disaggregation": dis}))
    assert needle in str(err.value)


def test_the_prefill_pool_holds_each_kv_until_its_transfer_ends():
    # Llama-2-7B (MHA: 512 KB of KV per token) prefilled on a TP8 node, decoded on one GPU of another
    # node: each 8K-token KV (4.3 GB) takes ~0.1 s over InfiniBand and ~0.57 s over 100 Gb/s TCP,
    # longer than the ~0.1 s prefill. The prefill pool keeps each request's blocks until its transfer
    # ends, so its peak KV use covers the requests still in transfer: ~4x more over the slow link.
    def prefill_peak(fabric):
        sv = {
            "requests": 24,
            "arrival": {"offline": True},
            "prompt_tokens": 8192,
            "output_tokens": 16,
            "scheduler": {"max_batched_tokens": 8192},  # one 8K prompt per prefill step
            "disaggregation": {"prefill_gpus": 8, "decode_gpus": 1, "prefill_parallelism": {"tp": 8}},
        }
        doc = {"model": "llama-2-7b", "hardware": "h100-sxm", "serving": sv, "topology": {"fabric": fabric}}
        res = roofline.serve(doc)
        series = res.timelines[0].series  # the prefill replica
        return float(np.max(series["kv_blocks"])), res.record["kv_transfer_s"]["mean"]

    fast_kv, fast_move = prefill_peak("ib-ndr-400")
    slow_kv, slow_move = prefill_peak("tcp-100")
    blocks_per_request = 8192 // 16
    assert slow_move > 5 * fast_move
    assert fast_kv >= 2 * blocks_per_request  # the next prefill runs while the last one moves
    assert slow_kv >= 3 * fast_kv
