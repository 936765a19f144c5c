"""Speculative decoding, TriForce, token reduction, and the methods/compare CLI."""

from __future__ import annotations

import json

import pytest

import roofline
from roofline.api import load_scenario
from roofline.cli.main import main
from roofline.models import load_model
from roofline.simulator.decode_loop import expected_tokens
from roofline.simulator.methods import REGISTRY
from roofline.simulator.scenario import ScenarioError

from helpers import ops, run

SPEC_METHODS = [
    "kv_quant", "streaming_llm", "h2o", "snapkv", "pyramidkv", "duo_attention", "quest", "lserve", "shadowkv",
    "kv_offload", "minference", "block_sparse_prefill", "speculative", "triforce", "prefix_sharing", "glyph",
    "prompt_compression", "weight_quant", "context_extension",
]  # fmt: skip
WL = {"batch": 1, "prompt_tokens": 8192, "output_tokens": 257}


def test_registry_has_the_spec_methods_with_citations_and_help():
    assert set(SPEC_METHODS) <= set(REGISTRY)
    for cls in REGISTRY.values():
        assert "arXiv" in cls.citation, cls.name
        assert cls.changes and cls.summary
        assert all(p.help for p in cls.params.values())


def test_expected_tokens_closed_form():
    # Leviathan et al. eq. 1: E = (1 - a^(g+1)) / (1 - a); a = 1 gives g + 1; a = 0 gives 1.
    assert expected_tokens(4, 0.8) == pytest.approx((1 - 0.8**5) / 0.2)
    assert expected_tokens(4, 1.0) == 5
    assert expected_tokens(7, 0.0) == 1


def test_speculative_tpot_is_weighted_draft_and_verify():
    # tpot = (gamma * draft step + verify step of gamma + 1 queries) / E: take each component from
    # the op table (draft ops carry the 'draft:' kind) and check the combination, with the CPU
    # iteration added to the step (runtime.cpu_overlap: false); overlapped, it hides behind the
    # GPU's draft and verify passes.
    gamma, alpha = 4, 0.75
    spec = [
        {
            "name": "speculative",
            "draft_model": "llama-3.2-1b",
            "draft_tokens": gamma,
            "acceptance_rate": alpha,
        }
    ]
    sync = {"cpu_overlap": False}
    res, recs = run(workload=WL, methods=spec, runtime=sync)
    e = expected_tokens(gamma, alpha)
    table = ops(res, 0, "decode")
    draft = sum(o["time_s"] for o in table if o["kind"].startswith("draft:"))
    verify = sum(o["time_s"] for o in table if not o["kind"].startswith("draft:"))
    cpu = sum(o["time_s"] for o in table if o["kind"] == "framework")
    assert recs[0]["tpot_s"] == pytest.approx(draft + verify, rel=1e-9)
    _, overlapped = run(workload=WL, methods=spec)
    assert overlapped[0]["tpot_s"] == pytest.approx(draft + verify - cpu, rel=1e-9)
    # The draft share is gamma/E draft steps; one draft step equals a plain llama-3.2-1b decode step
    # without the scheduler iteration (the drafts run inside the target's iteration).
    _, draft_alone = run(model="llama-3.2-1b", workload=WL, runtime=sync)
    draft_step = draft_alone[0]["tpot_s"] - draft_alone[0]["decode"]["breakdown"]["framework"]
    assert draft == pytest.approx(gamma / e * draft_step, rel=1e-6)
    # Verification of 5 tokens in a memory-bound step costs about one decode step of the target.
    _, dense = run(workload=WL, runtime=sync)
    assert verify * e == pytest.approx(dense[0]["tpot_s"], rel=0.10)
    assert recs[0]["tpot_s"] < dense[0]["tpot_s"] / 1.5


def test_speculative_draft_adds_weights_kv_and_prefill():
    spec = [{"name": "speculative", "draft_model": "llama-3.2-1b", "draft_tokens": 4, "acceptance_rate": 0.8}]
    _, recs = run(workload=WL, methods=spec)
    _, dense = run(workload=WL)
    draft = load_model("llama-3.2-1b")
    assert recs[0]["memory"]["weights_bytes"] - dense[0]["memory"]["weights_bytes"] == pytest.approx(
        (draft.total_params()) * 2, rel=1e-3
    )
    extra_kv = recs[0]["memory"]["kv_cache_bytes"] - dense[0]["memory"]["kv_cache_bytes"]
    assert extra_kv == pytest.approx(draft.kv_bytes_per_token(2.0) * (8192 + 257), rel=1e-9)
    assert recs[0]["ttft_s"] > dense[0]["ttft_s"]


def test_draft_must_share_the_vocabulary():
    doc = {
        "model": "llama-3.1-8b",
        "hardware": "h100-sxm",
        "workload": {"prompt_tokens": 4096},
        "methods": [
            {"name": "speculative", "draft_model": "llama-68m", "draft_tokens": 4, "acceptance_rate": 0.8}
        ],
    }
    with pytest.raises(ScenarioError, match="32000-token vocabulary but llama-3.1-8b has 128256"):
        load_scenario(doc)
    doc["methods"][0]["draft_model"] = "llama-9000"
    with pytest.raises(ScenarioError, match="draft_model: unknown model"):
        load_scenario(doc)


def test_triforce_speeds_up_long_context_decode():
    # TriForce (arXiv:2404.11912) reports 2.31x on an A100 for Llama-2-7B-128K at 120K context; the
    # speedup comes from verifying many tokens per read of the full cache. With acceptance 0.8 for
    # gamma 6 the roofline gives a speedup in the same range (band 1.5x..4x: acceptance is an input).
    wl = {"batch": 1, "prompt_tokens": 122880, "output_tokens": 257, "prefill_chunk_tokens": 8192}
    tri = [{"name": "triforce", "draft_tokens": 6, "acceptance_rate": 0.8}]
    _, recs = run(model="llama-2-7b", hardware="a100-80gb-sxm", workload=wl, methods=tri)
    _, dense = run(model="llama-2-7b", hardware="a100-80gb-sxm", workload=wl)
    speedup = dense[0]["tpot_s"] / recs[0]["tpot_s"]
    assert 1.5 <= speedup <= 4.0, speedup
    # The retrieval cache (4096 tokens) and the tiny model's weights are extra memory.
    assert recs[0]["memory"]["total_bytes"] > dense[0]["memory"]["total_bytes"]


@pytest.mark.parametrize(
    "method,ratio",
    [({"name": "glyph", "compression_ratio": 4.0}, 4.0), ({"name": "prompt_compression", "ratio": 2.0}, 2.0)],
)
def test_token_reduction_shrinks_kv_and_adds_an_encoder(method, ratio):
    _, recs = run(workload=WL, methods=[method])
    res, _ = run(workload=WL, methods=[method])
    per_token = load_model("llama-3.1-8b").kv_bytes_per_token(2.0)
    assert recs[0]["memory"]["kv_cache_bytes"] == pytest.approx(per_token * (8192 / ratio + 257))
    encoder = [o for o in ops(res) if o["kind"] == "encoder"]
    assert len(encoder) == 1
    if method["name"] == "glyph":  # AIMv2-Huge, 681M params, 4 patches per visual token
        assert encoder[0]["flops"] == pytest.approx(2 * 681e6 * 4 * 8192 / ratio)
    else:  # LLMLingua-2 (XLM-RoBERTa-large, 560M) reads the original prompt
        assert encoder[0]["flops"] == pytest.approx(2 * 560e6 * 8192)


def test_glyph_headline_prefill_speedup():
    # Glyph (arXiv:2510.17800): 3-4x token compression gives ~4x faster prefill at long context.
    # At 128K, attention is quadratic, so 3.5x fewer tokens give more than 3.5x; band 3x..8x.
    wl = {"batch": 1, "prompt_tokens": 130048, "output_tokens": 256, "prefill_chunk_tokens": 8192}
    _, g = run(workload=wl, methods=[{"name": "glyph", "compression_ratio": 3.5}])
    _, d = run(workload=wl)
    assert 3.0 <= d[0]["ttft_s"] / g[0]["ttft_s"] <= 8.0


def test_methods_cli_lists_and_shows(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in SPEC_METHODS)
    assert main(["methods", "quest"]) == 0
    out = capsys.readouterr().out
    assert "token_budget" in out and "arXiv:2406.10774" in out and "required" in out
    assert main(["methods", "qest"]) == 2
    assert "Did you mean 'quest'" in capsys.readouterr().err


def test_compare_cli_speedups(capsys, tmp_path):
    scen = tmp_path / "s.yaml"
    scen.write_text(
        "model: llama-3.1-8b\nhardware: h100-sxm\nworkload: {batch: 1, prompt_tokens: 65536, output_tokens: 128, prefill_chunk_tokens: 8192}\n"
        "methods:\n  - {name: kv_quant, bits: 4}\n  - {name: quest, token_budget: 2048}\n"
    )
    assert main(["compare", str(scen), "--methods", "kv_quant,quest,kv_quant+quest", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["stack"] for r in rows] == ["dense", "kv_quant", "quest", "kv_quant+quest"]
    assert rows[0]["tpot_speedup"] == 1.0
    assert all(r["tpot_speedup"] > 1.0 for r in rows[1:])
    assert rows[3]["tpot_speedup"] > max(rows[1]["tpot_speedup"], rows[2]["tpot_speedup"])
    assert rows[1]["memory"]["kv_cache_bytes"] < rows[0]["memory"]["kv_cache_bytes"]
    assert main(["compare", str(scen), "--methods", "h2o"]) == 2  # needs budget_tokens, not in the palette
    assert "budget_tokens" in capsys.readouterr().err
    assert main(["compare", str(scen), "--methods", "kv_quant"]) == 0
    assert "kv_quant" in capsys.readouterr().out


def test_compare_baseline_is_dense_even_when_set_gives_the_methods(capsys, tmp_path):
    # `--set methods=[...]` supplies the stacks' parameters; the baseline stays the plain scenario.
    scen = tmp_path / "s.yaml"
    scen.write_text(
        "model: llama-3.1-8b\nhardware: h100-sxm\nworkload: {batch: 1, prompt_tokens: 32768, output_tokens: 64}\n"
    )
    args = ["compare", str(scen), "--methods", "kv_quant", "--format", "json"]
    assert main([*args, "--set", "methods=[{name: kv_quant, bits: 4}]", "--set", "workload.batch=2"]) == 0
    dense, quant = json.loads(capsys.readouterr().out)
    plain = roofline.simulate(str(scen), ["workload.batch=2"]).records()[0]
    assert dense["tpot_s"] == plain["tpot_s"] and dense["memory"] == plain["memory"]
    assert quant["memory"]["kv_cache_bytes"] < dense["memory"]["kv_cache_bytes"] / 3  # 4-bit + scales
    assert quant["tpot_speedup"] > 1.0


@pytest.mark.parametrize("parallel", [False, True])
def test_chunked_agent_is_calls_plus_answer(parallel):
    # K = ceil(P / chunk) calls of (chunk + memory) tokens in, memory tokens out, then an answer
    # call over the memory (K memories when parallel): TTFT = K * call e2e + answer TTFT (sequential)
    # or batched call e2e + answer TTFT (parallel); TPOT is the answer's.
    P, chunk, mem = 40000, 8000, 512
    k = 5
    agent = {"name": "chunked_agent", "chunk_tokens": chunk, "memory_tokens": mem, "parallel": parallel}
    _, recs = run(workload={"batch": 2, "prompt_tokens": P, "output_tokens": 64}, methods=[agent])
    _, call = run(
        workload={"batch": 2 * k if parallel else 2, "prompt_tokens": chunk + mem, "output_tokens": mem}
    )
    _, answer = run(workload={"batch": 2, "prompt_tokens": k * mem if parallel else mem, "output_tokens": 64})
    calls = call[0]["e2e_s"] * (1 if parallel else k)
    assert recs[0]["ttft_s"] == pytest.approx(calls + answer[0]["ttft_s"], rel=1e-9)
    assert recs[0]["tpot_s"] == pytest.approx(answer[0]["tpot_s"], rel=1e-12)


def test_weight_offload_streams_the_host_share_every_pass():
    # Half the bf16 weights (8.03e9 params x 2 B / 2, all but the GPU half) cross PCIe Gen5 (64 GB/s
    # at 80%) every decode step: at batch 1 the step is host-link-bound at ~ 8.03e9 / 51.2e9 s.
    res, recs = run(workload=WL, methods=[{"name": "weight_offload", "resident_fraction": 0.5}])
    _, dense = run(workload=WL)
    assert recs[0]["memory"]["weights_bytes"] == pytest.approx(
        dense[0]["memory"]["weights_bytes"] / 2, rel=1e-9
    )
    fetch = [o for o in ops(res, 0, "decode") if o["name"] == "weight_fetch"][0]
    assert fetch["bytes"] == pytest.approx(dense[0]["memory"]["weights_bytes"] / 2, rel=1e-9)
    assert recs[0]["tpot_s"] == pytest.approx(fetch["bytes"] / (64e9 * 0.8), rel=0.01)
    assert recs[0]["decode"]["bound"] == "host-link"


def test_self_speculation_reads_a_sparse_kv():
    # draft_model 'self': gamma draft steps of the target reading 4096 tokens, one full verify.
    wl = {"batch": 1, "prompt_tokens": 122880, "output_tokens": 257, "prefill_chunk_tokens": 8192}
    spec = [{"name": "speculative", "draft_model": "self", "draft_tokens": 4, "acceptance_rate": 0.8}]
    res, recs = run(hardware="a100-80gb-sxm", workload=wl, methods=spec)
    _, dense = run(hardware="a100-80gb-sxm", workload=wl)
    e = expected_tokens(4, 0.8)
    draft_kv = sum(o["bytes"] for o in ops(res, 0, "decode") if o["kind"] == "draft:attention_decode")
    per_token_kv = load_model("llama-3.1-8b").kv_bytes_per_token(2.0)
    assert draft_kv == pytest.approx(4 / e * per_token_kv * 4096, rel=0.01)  # plus q/o/append traffic
    assert recs[0]["tpot_s"] < dense[0]["tpot_s"]


def test_prefix_sharing_saves_only_where_the_prefix_is_read_whole():
    # Hydragen reads the shared prefix once per step for the batch: (b-1) x S x bytes/token fewer
    # for head groups that read the whole history. Quest's selected pages and DuoAttention's
    # streaming window are per-sequence reads: prefix sharing leaves them unchanged (never negative).
    wl = {"batch": 8, "prompt_tokens": 40000, "output_tokens": 64, "prefill_chunk_tokens": 8192}
    share = {"name": "prefix_sharing", "shared_prefix_tokens": 32768}

    def attention_bytes(methods):
        res, _ = run(workload=wl, methods=methods)
        return {o["name"]: o["bytes"] for o in ops(res, 0, "decode") if o["kind"] == "attention_decode"}

    quest = {"name": "quest", "token_budget": 2048, "dense_layers": 0}  # (dense layers do share)
    assert attention_bytes([share, quest]) == pytest.approx(attention_bytes([quest]), rel=1e-12)
    duo = {"name": "duo_attention", "retrieval_head_fraction": 0.5}
    with_share, alone = attention_bytes([share, duo]), attention_bytes([duo])
    assert with_share["attention_streaming"] == pytest.approx(alone["attention_streaming"], rel=1e-12)
    saved = 7 * 32768 * 131072 * 0.5  # 7 other sequences x prefix x bytes per token x retrieval share
    assert alone["attention_retrieval"] - with_share["attention_retrieval"] == pytest.approx(saved, rel=1e-9)
    assert all(v > 0 for v in with_share.values())


@pytest.mark.parametrize(
    "method,kept",
    [
        ({"name": "streaming_llm", "window_tokens": 2048}, 2052),
        ({"name": "h2o", "budget_tokens": 4096}, 4096),
    ],
)
def test_shared_prefix_is_stored_once_only_by_whole_history_caches(method, kept):
    # With a 32K shared prefix and 8 sequences, a dense cache holds the prefix once plus each suffix;
    # a window or heavy-hitter cache keeps its own tokens per sequence: 8 x kept.
    wl = {"batch": 8, "prompt_tokens": 40000, "output_tokens": 64, "shared_prefix_tokens": 32768}
    per_token = 131072
    _, dense = run(workload=wl)
    assert dense[0]["memory"]["kv_cache_final_bytes"] == pytest.approx(
        per_token * (32768 + 8 * (40064 - 32768))
    )
    _, recs = run(workload=wl, methods=[method])
    assert recs[0]["memory"]["kv_cache_final_bytes"] == pytest.approx(per_token * 8 * kept)
