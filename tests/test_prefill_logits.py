"""`runtime.prefill_logits`: the prompt rows a prefill computes logits for. `last` (null) is one row
per sequence; `all` is every prompt row's, in 16 bits and a float32 copy (transformers' causal-LM
heads before PR #31292, mid-2024, and any model called without logits_to_keep): the LM head runs over every row
and the logits are alive at the pass's peak. Oracles from the shapes: Llama 3.1 8B's vocabulary of
128,256 and hidden size of 4,096."""

from __future__ import annotations

import math

import pytest

from roofline.simulator.scenario import ScenarioError

from helpers import ops, run

VOCAB, HIDDEN = 128256, 4096
A100 = "a100-80gb-sxm"


def _run(logits, prompt=65536, batch=1, tp=1, chunk=None, framework="transformers", output=16):
    workload = {"batch": batch, "prompt_tokens": prompt, "output_tokens": output}
    if chunk:
        workload["prefill_chunk_tokens"] = chunk
    return run(
        hardware=A100,
        parallelism={"tp": tp},
        runtime={"framework": framework, "prefill_logits": logits},
        workload=workload,
    )


def _op(res, name):
    return next(o for o in ops(res) if o["name"] == name)


@pytest.mark.parametrize("batch, prompt, tp", [(1, 65536, 1), (2, 8192, 1), (1, 32768, 2)])
def test_all_logits_run_the_lm_head_over_every_prompt_row_and_copy_them_to_float32(batch, prompt, tp):
    # last: 2 x b x hidden x vocab/tp FLOPs; all: 2 x b P x hidden x vocab/tp, and the float32 copy
    # reads the 16-bit logits and writes 4 bytes per entry (b P x vocab/tp x 6 bytes)
    v = math.ceil(VOCAB / tp)
    last, _ = _run(None, prompt, batch, tp)
    every, _ = _run("all", prompt, batch, tp)
    assert _op(last, "lm_head")["flops"] == pytest.approx(2 * batch * HIDDEN * v, rel=1e-12)
    assert _op(every, "lm_head")["flops"] == pytest.approx(2 * batch * prompt * HIDDEN * v, rel=1e-12)
    assert _op(every, "logits_float")["bytes"] == pytest.approx(batch * prompt * v * 6, rel=1e-12)
    assert not [o for o in ops(last) if o["name"] == "logits_float"]
    # decode samples from one row per sequence either way
    assert ops(last, phase="decode") == ops(every, phase="decode")


@pytest.mark.parametrize("chunk", [None, 8192])
@pytest.mark.parametrize("framework", ["transformers", "vllm"])
def test_all_logits_are_alive_at_the_prefill_peak(chunk, framework):
    # The prefill pass's activations hold every row's logits (6 bytes per vocabulary entry) in place
    # of one float32 row per sequence: + rows x vocab x 6 - vocab x 4 (rows: the prompt, or a chunk)
    P = 32768
    _, (last,) = _run(None, P, chunk=chunk, framework=framework)
    _, (every,) = _run("all", P, chunk=chunk, framework=framework)
    rows = chunk or P
    extra = every["memory"]["activation_bytes"] - last["memory"]["activation_bytes"]
    assert extra == pytest.approx(rows * VOCAB * 6 - VOCAB * 4, rel=1e-12)
    if chunk is None:  # a 32K prompt's logits: 23.5 GiB
        assert extra / 2**30 == pytest.approx(23.49, abs=0.01)


def test_all_logits_cap_the_context_an_a100_prefills():
    # Llama 3.1 8B in bf16 on an A100-80GB under transformers: the float32 logits of every prompt
    # row (~0.73 MiB each) cap one sequence near 68K tokens, where one row per sequence leaves the
    # KV cache to cap it near 290K; the reported limit fits and one token more does not.
    _, (last,) = _run(None, 4096)
    _, (every,) = _run("all", 4096)
    assert last["max_context_tokens"] > 250_000
    limit = every["max_context_tokens"]
    assert 60_000 < limit < 75_000
    _, (at,) = _run("all", limit - 16)
    _, (over,) = _run("all", limit - 16 + 1)
    assert at["fits"] and not over["fits"]
    assert "activations" in over["fit_reason"]


def test_prefill_logits_is_checked():
    with pytest.raises(ScenarioError, match=r"runtime.prefill_logits.*last.*all"):
        _run("every")
