"""The step-cost function: one forward pass over sequences in any mix of prefill chunks and decode.

Oracles: a lone sequence's step is the engine's own phase (decode step at that KV length, or the
unchunked prefill), exactly; b identical decoding sequences are the engine's batch-b step; chunks
of a prompt compute exactly the prompt's causal pairs between them.
"""

from __future__ import annotations

import numpy as np
import pytest

import roofline
from roofline.simulator.errors import UserError

CASES = [
    ("llama-3.1-8b", []),
    ("deepseek-v2-lite", []),  # MLA: absorbed decode, materialised prefill
    ("gemma-2-9b", []),  # sliding-window layers
    ("jamba-1.5-mini", []),  # Mamba + attention + MoE
    ("llama-3.1-8b", [{"name": "quest", "token_budget": 2048}, {"name": "kv_quant", "bits": 4}]),
    ("llama-3.1-8b", [{"name": "duo_attention", "retrieval_head_fraction": 0.5}]),
]


def _doc(model, methods, batch=1, prompt=16384, **extra):
    return {
        "model": model,
        "hardware": "h100-sxm",
        "methods": methods,
        "workload": {"batch": batch, "prompt_tokens": prompt, "output_tokens": 2},
        **extra,
    }


@pytest.mark.parametrize(
    "model, methods",
    CASES,
    ids=lambda c: c if isinstance(c, str) else "+".join(m["name"] for m in c) or "dense",
)
def test_lone_sequence_step_is_the_engines_phase(model, methods):
    doc = _doc(model, methods)
    rec = roofline.simulate(doc).records()[0]
    steps = roofline.step_model(doc)
    # output_tokens 2: the one decode step runs at KV length prompt + 1, i.e. 16,384 cached + 1 new.
    assert steps.cost([1], [16384]).time_s == pytest.approx(rec["tpot_s"], rel=1e-12)
    assert steps.cost([16384], [0]).time_s == pytest.approx(rec["ttft_s"], rel=1e-12)


@pytest.mark.parametrize("batch", [2, 8, 64])
def test_identical_decoding_sequences_are_the_engines_batch(batch):
    rec = roofline.simulate(_doc("llama-3.1-8b", [], batch=batch)).records()[0]
    step = roofline.step_model(_doc("llama-3.1-8b", [])).cost([1] * batch, [16384] * batch)
    assert step.time_s == pytest.approx(rec["tpot_s"], rel=1e-12)
    assert step.tokens == batch


def test_chunks_compute_exactly_the_prompts_causal_pairs():
    steps = roofline.step_model(_doc("llama-3.1-8b", []))

    whole = steps.cost([16384], [0])
    chunks = [steps.cost([4096], [c]) for c in (0, 4096, 8192, 12288)]
    attn = [c.flops_by_kind["attention_prefill"] for c in (whole, *chunks)]
    assert sum(attn[1:]) == pytest.approx(attn[0], rel=1e-12)
    gemm = [c.flops_by_kind["gemm"] for c in (whole, *chunks)]
    assert sum(gemm[1:]) > gemm[0]  # the LM head runs once per pass
    # Four passes read the weights four times: slower than one pass, never faster.
    assert sum(c.time_s for c in chunks) > whole.time_s
    # Later chunks attend over more keys.
    times = [c.breakdown["attention_prefill"] for c in chunks]
    assert times == sorted(times)


def test_mixed_step_reads_the_weights_once():
    steps = roofline.step_model(_doc("llama-3.1-8b", []))
    prefill = steps.cost([2048], [0])
    decode = steps.cost([1] * 16, [16384] * 16)
    mixed = steps.cost([2048] + [1] * 16, [0] + [16384] * 16)
    assert mixed.tokens == 2048 + 16
    assert max(prefill.time_s, decode.time_s) < mixed.time_s < prefill.time_s + decode.time_s
    assert mixed.bytes < prefill.bytes + decode.bytes  # one read of the weights for both
    assert {"attention_prefill", "attention_decode"} <= set(mixed.breakdown)


def test_step_is_vectorised_over_sequences():
    steps = roofline.step_model(_doc("llama-3.1-8b", []))
    cached = np.linspace(1000, 100_000, 512).round()
    one = steps.cost(np.ones(512), cached)
    # Decode attention is linear in the KV length: 512 sequences at their lengths read what 512
    # sequences at the mean length read.
    mean = steps.cost(np.ones(512), np.full(512, cached.mean()))
    assert one.breakdown["attention_decode"] == pytest.approx(mean.breakdown["attention_decode"], rel=1e-9)


@pytest.mark.parametrize("new, cached", [([], []), ([0], [5]), ([1], [-1]), ([np.nan], [0])])
def test_bad_steps_are_refused(new, cached):
    with pytest.raises(UserError, match="at least 1 new token"):
        roofline.step_model(_doc("llama-3.1-8b", [])).cost(new, cached)


def test_a_sweep_has_no_single_step_model():
    doc = {**_doc("llama-3.1-8b", []), "sweep": {"workload.batch": [1, 2]}}
    with pytest.raises(UserError, match="remove the sweep"):
        roofline.step_model(doc)
