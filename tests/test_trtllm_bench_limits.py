"""The scheduler limits `trtllm-bench throughput` sets when its command gives none, as
benchmarks/bench_serve.py reproduces them for the dev set's TensorRT-LLM rows (its heuristic:
tensorrt_llm/bench/build/tuning.py; worked by hand below)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_serve import trtllm_bench_limits, trtllm_doc, trtllm_graph_sizes  # noqa: E402


def test_fp8_checkpoint_limits_follow_the_kv_cache_the_gpu_holds():
    # Llama 3.1 8B FP8 on one H200 (140.4 GiB), ISL/OSL 1000/1000: FP8 KV of 32 layers x 2 x 8 heads
    # x 128 = 65,536 bytes per token; checkpoint 8.03e9 elements x 1 byte = 7.48 GiB; requests
    # (140.4 - 7.48) x 0.9 / (65,536 B x 2,000 tokens) = 980 -> batch rounded up to 128s: 1,024;
    # tokens 980 x (1 + 1) = 1,960 -> at least 2,048; chunking off: max(2,048, 1,000 + 1,024).
    assert trtllm_bench_limits("llama-3.1-8b", 1, 1, 1000, 1000, "h200", "fp8") == (1024, 2048)
    # ISL/OSL 20000/2000: 119.6 GiB / (65,536 B x 22,000) = 89 requests -> rounded up to 32s: 96;
    # tokens 89 x 11 = 980 -> 2,048, then raised to hold a whole prompt beside a full batch of
    # decodes: 20,000 + 96.
    assert trtllm_bench_limits("llama-3.1-8b", 1, 1, 20000, 2000, "h200", "fp8") == (96, 20096)


def test_formats_outside_the_heuristic_take_the_build_defaults():
    # GPT-OSS's MXFP4 checkpoint is not one the heuristic tunes: max_batch_size 2048, max_num_tokens
    # 8192, raised to the prompt + batch where a prompt is longer.
    assert trtllm_bench_limits("gpt-oss-20b", 1, 1, 1000, 1000, "h200", "mxfp4-w4a16") == (2048, 8192)
    assert trtllm_bench_limits("gpt-oss-20b", 1, 1, 32768, 1024, "b200", "mxfp4") == (2048, 32768 + 2048)


def test_the_row_scenario_runs_unchunked_with_those_limits():
    sched = trtllm_doc("llama-3.1-8b", 1, 1000, 1000, 100, "h200", "fp8")["serving"]["scheduler"]
    assert sched["max_num_seqs"] == 1024 and sched["max_batched_tokens"] == 2048
    assert sched["chunked_prefill"] is False and sched["admission"] == "reserve"


def test_decode_graphs_are_the_pages_sizes_up_to_the_batch_the_engine_takes():
    # the page's list is 1 .. 512, 1024, 2048, 4096, 8192; sizes above min(batch, tokens) are dropped
    # and, padding being on, that bound is captured instead
    assert trtllm_graph_sizes(1792, 3584)[-3:] == [512, 1024, 1792]
    assert trtllm_graph_sizes(2048, 8192)[-2:] == [1024, 2048]
    assert trtllm_graph_sizes(96, 20096) == [1, 2, 4, 8, 16, 32, 64, 96]
    doc = trtllm_doc("llama-3.1-8b", 1, 1000, 1000, 100, "h200", "fp8")
    assert doc["runtime"]["cuda_graph_batch_sizes"][-1] == 1024


def test_a_dep_column_runs_attention_ranks_sharing_the_experts_with_the_heuristics_limits():
    # DeepSeek R1 (V3's shapes), NVFP4, `--tp 4 --ep 4` on B200 (179.06 GiB each): the heuristic reads
    # config.json's 128 KV heads x hidden / heads = 56 (no head_dim: not the MLA latent it caches),
    # 61 layers x 2 x 128 x 56 x 1 byte = 874,496 B per token; checkpoint 176.1 GiB as stored; requests
    # (4 x 179.06 - 176.1) x 0.9 / (874,496 B x 2,000) = 298 -> 384 (128s); tokens 597 -> 2,048
    assert trtllm_bench_limits("deepseek-v3", 4, 1, 1000, 1000, "b200", "fp4") == (384, 2048)
    doc = trtllm_doc("deepseek-v3", 1, 1000, 1000, 100, "b200", "fp4", dep=4)
    assert doc["parallelism"] == {"tp": 1, "pp": 1, "dp": 4, "ep": 4}
    sched = doc["serving"]["scheduler"]
    assert (sched["max_num_seqs"], sched["max_batched_tokens"]) == (384, 2048)  # per attention rank


def test_the_dev_set_runs_each_row_with_the_pages_decode_graphs():
    # published_report.py runs a TensorRT-LLM row as bench_serve does, the page's llm_options
    # included (decode graphs padded to its sizes: GPT-OSS 20B on H100, build defaults 2048 / 8192,
    # so 1 .. 512, 1024, 2048); forcing vLLM on it drops them for vLLM's own defaults
    import yaml
    from published_report import DEVSET, trtllm_row_doc

    entry = yaml.safe_load(DEVSET.read_text())["trtllm_gpt_oss_throughput"]
    row = entry["rows"]["gpt-oss-20b h100-sxm"]
    doc = trtllm_row_doc(entry, row, 1000, 1000)
    assert doc["runtime"] == {
        "framework": "trtllm",
        "cuda_graph_batch_sizes": [1, 2, 4, 8, 16, 32, 64, 128, 256, 384, 512, 1024, 2048],
    }
    assert doc["serving"]["requests"] == 3000 and doc["hardware"] == "h100-sxm"
    assert trtllm_row_doc(entry, row, 1000, 1000, forced="vllm")["runtime"] == {"framework": "vllm"}
