"""What a serving deployment gets from its framework when the scenario leaves it unset: the KV
cache's budget (vLLM's share of the whole memory, SGLang's reserve, TensorRT-LLM's share of what is
left) and the scheduler's limits (batch, token budget, chunked prefill, admission), and how `serve`
reports them; and whether decodes ride in prefill steps (SGLang's wait them out). Oracles: the
frameworks' own rules in closed form (frameworks.Framework.kv_budget, scheduler_defaults), and the
step model's costs of the steps each rule schedules.
"""

from __future__ import annotations

import numpy as np
import pytest

import roofline
from roofline.simulator.errors import UserError
from roofline.simulator.scenario import ScenarioError

from helpers import two_prompts


def _doc(serving, **extra):
    return {"model": "llama-3.1-8b", "hardware": "h100-sxm", "serving": serving, **extra}


def _serve(serving, **extra):
    return roofline.serve(_doc(serving, **extra))


def _blocks(scheduler, framework="vllm", model="llama-3.1-8b"):
    sv = {
        "requests": 2,
        "arrival": {"offline": True},
        "prompt_tokens": 512,
        "output_tokens": 4,
        "scheduler": scheduler,
    }
    return _serve(sv, model=model, runtime={"framework": framework}).record["kv_cache"]["blocks"]


def test_the_kv_budget_follows_the_frameworks_memory_rule():
    # Llama 3.1 8B in bf16, blocks of 16 tokens: 16 x 32 layers x 2 x 8 KV heads x 128 x 2 bytes = 2 MiB
    block = 16 * 32 * 2 * 8 * 128 * 2
    capacity = 80 * 2**30  # H100 SXM
    # vLLM's gpu_memory_utilization is a share of the whole memory: 0.1 more of 80 GiB is 4,096 blocks
    high, low = _blocks({"gpu_memory_utilization": 0.95}), _blocks({"gpu_memory_utilization": 0.85})
    assert abs((high - low) - 0.1 * capacity / block) <= 1
    # unset: vLLM's own 0.9 of the whole; TensorRT-LLM's 0.9 of what weights, activations, overhead leave
    vllm = _blocks({})
    assert vllm == _blocks({"gpu_memory_utilization": 0.9})
    free = _blocks({"kv_memory_fraction": 0.9})
    assert _blocks({}, "trtllm") == _blocks({"kv_memory_fraction": 0.9}, "trtllm")
    # 0.9 cap - taken = vllm blocks (floored), so 0.9 (cap - taken) = 0.09 cap + 0.9 x vllm blocks
    assert abs(free - (0.09 * capacity / block + 0.9 * vllm)) <= 2
    assert free > vllm


def test_kv_budget_mistakes_are_one_line():
    sv = {"requests": 2, "arrival": {"offline": True}, "prompt_tokens": 512, "output_tokens": 4}
    with pytest.raises(ScenarioError) as exc:
        _serve({**sv, "scheduler": {"kv_memory_fraction": 0.9, "gpu_memory_utilization": 0.9}})
    assert "not both" in str(exc.value) and "gpu_memory_utilization" in str(exc.value)
    # 70B in bf16 on one H100: 0.9 x 80 GiB holds less than its weights
    with pytest.raises(UserError) as err:
        _serve(sv, model="llama-3.1-70b")
    msg = str(err.value)
    assert "nothing is left for the KV cache" in msg and "0.9 x 80.0 GiB" in msg and "\n" not in msg
    # SGLang's budget is the memory less its reserve; TensorRT-LLM's a share of what is left
    with pytest.raises(UserError) as err:
        _serve(sv, model="llama-3.1-70b", runtime={"framework": "sglang"})
    assert "80.0 GiB less the 10.0 GiB SGLang keeps" in str(err.value)
    with pytest.raises(UserError) as err:
        _serve(sv, model="llama-3.1-70b", runtime={"framework": "trtllm"})
    assert "fill 80.0 GiB;" in str(err.value) and "gpu_memory_utilization" not in str(err.value)


def _scheduler(framework, hardware="h100-sxm", offline=False, model="llama-3.1-8b", **scheduler):
    arrival = {"offline": True} if offline else {"rate_per_s": 50.0}
    sv = {"requests": 4, "arrival": arrival, "prompt_tokens": 256, "output_tokens": 4, "scheduler": scheduler}
    rec = _serve(sv, model=model, hardware=hardware, runtime={"framework": framework}).record
    return rec["scheduler"], rec["kv_cache"]


@pytest.mark.parametrize(
    "framework, hardware, offline, want",
    [
        # vLLM's get_batch_defaults: 70 GiB or more and not an A100 -> 1024 sequences, 8,192 tokens
        # (`vllm serve`) or 16,384 (the LLM class, offline); else 256 and 2,048 (8,192 offline)
        ("vllm", "h100-sxm", False, (1024, 8192, True)),
        ("vllm", "h100-sxm", True, (1024, 16384, True)),
        ("vllm", "a100-80gb-sxm", False, (256, 2048, True)),
        ("vllm", "a100-80gb-sxm", True, (256, 8192, True)),
        ("vllm", "l40s", False, (256, 2048, True)),
        # TensorRT-LLM's TorchLlmArgs: max_batch_size 2048, max_num_tokens 8192, no chunked prefill
        ("trtllm", "h100-sxm", False, (2048, 8192, False)),
        ("trtllm", "b200", True, (2048, 8192, False)),
        ("hf", "h100-sxm", False, (256, 8192, True)),
    ],
)
def test_unset_scheduler_limits_are_the_frameworks_defaults(framework, hardware, offline, want):
    got, _ = _scheduler(framework, hardware, offline)
    assert (got["max_num_seqs"], got["max_batched_tokens"], got["chunked_prefill"]) == want
    # TensorRT-LLM's GUARANTEED_NO_EVICT reserves a request's prompt and output at admission
    assert got["admission"] == ("reserve" if framework == "trtllm" else "on_demand")
    assert got["mixed_batches"] is True  # decodes ride in prefill steps (SGLang's do not: below)
    # given, they are used as given
    mine, _ = _scheduler(
        framework,
        hardware,
        offline,
        max_num_seqs=7,
        max_batched_tokens=3000,
        chunked_prefill=True,
        admission="on_demand",
        mixed_batches=False,
    )
    assert mine == {
        "max_num_seqs": 7,
        "max_batched_tokens": 3000,
        "chunked_prefill": True,
        "mixed_batches": False,
        "admission": "on_demand",
    }


@pytest.mark.parametrize(
    "hardware, chunk", [("l40s", 4096), ("h100-sxm", 8192), ("h200", 8192), ("b200", 16384)]
)
def test_sglang_sizes_its_chunks_by_gpu_memory_and_its_running_requests_by_its_kv_pool(hardware, chunk):
    got, kv = _scheduler("sglang", hardware)
    assert got["max_batched_tokens"] == chunk and got["chunked_prefill"]
    assert got["mixed_batches"] is False  # no --enable-mixed-chunk: prefill steps apart
    # min(max(KV tokens / context length x 512, 2048), 4096), at most half the KV tokens
    tokens, context = kv["tokens"], 131072  # Llama 3.1 8B's max_position_embeddings
    want = min(max(int(tokens / context * 512), 2048), 4096, tokens // 2)
    assert got["max_num_seqs"] == want


@pytest.mark.parametrize(
    "hardware, tp, reserved_gib",
    [("h100-sxm", 1, 9.5 + 1 / 2), ("h100-sxm", 2, 9.5 + 2 / 2), ("h200", 1, 12 + 1 / 2), ("b200", 1, 32.0)],
)
def test_sglang_keeps_a_reserve_beside_weights_and_kv_pool(hardware, tp, reserved_gib):
    # SGLang's mem_fraction_static, unset: (memory - reserved) / memory for weights and the KV pool;
    # activations and CUDA graphs live in the reserve (9.5 + tp/2 GiB on an 80 GB GPU, ...)
    block = 16 * 32 * 2 * 8 * 128 * 2 // tp  # Llama 3.1 8B, bf16, 16-token blocks, KV heads split
    doc = {"model": "llama-3.1-8b", "hardware": hardware, "parallelism": {"tp": tp}}
    memory = roofline.simulate({**doc, "workload": {"prompt_tokens": 16}}).records()[0]["memory"]
    weights, capacity = memory["weights_bytes"], memory["capacity_bytes"]
    sv = {"requests": 2, "arrival": {"offline": True}, "prompt_tokens": 256, "output_tokens": 4}
    rec = roofline.serve({**doc, "runtime": {"framework": "sglang"}, "serving": sv}).record
    assert rec["kv_cache"]["blocks"] == int((capacity - reserved_gib * 2**30 - weights) // block)
    # given, mem_fraction_static is weights and KV pool's share of the whole memory
    given = {**sv, "scheduler": {"gpu_memory_utilization": 0.8}}
    rec = roofline.serve({**doc, "runtime": {"framework": "sglang"}, "serving": given}).record
    assert rec["kv_cache"]["blocks"] == int((0.8 * capacity - weights) // block)


def test_the_serve_table_names_the_schedulers_limits():
    from roofline.report.serve_tables import serve_table

    rec = _serve(
        {"requests": 4, "arrival": {"offline": True}, "prompt_tokens": 256, "output_tokens": 4},
        runtime={"framework": "trtllm"},
    ).record
    line = next(x for x in serve_table(rec).splitlines() if x.strip().startswith("scheduler"))
    assert "up to 2,048 sequences, 8,192 tokens a step, whole prompts, blocks reserved at admission" in line


@pytest.mark.parametrize("framework", ["vllm", "sglang"])
def test_without_mixed_batches_decodes_wait_out_each_prefill_step(framework):
    steps = roofline.step_model(_doc(None, runtime={"framework": framework}))
    first = steps.cost([600, 400], [0, 0]).time_s  # both prompts, the second chunked at 400 tokens
    # Prefill steps apart: step 2 prefills the second prompt's last 200 tokens alone (the first
    # request's decode waits), then both decode twice together
    rest = steps.cost([200], [400]).time_s
    d1, d2 = steps.cost([1, 1], [600, 600]).time_s, steps.cost([1, 1], [601, 601]).time_s
    apart = first + rest + d1 + d2
    tokens, done, rec = two_prompts(True, False, framework)
    assert tokens == pytest.approx([first, first + rest], rel=1e-9)
    assert done == pytest.approx([apart, apart], rel=1e-9)
    assert rec["scheduler"]["mixed_batches"] is False
    # Mixed: step 2 carries the first request's decode beside the last 200 prompt tokens, so it
    # finishes one step earlier, the second request as before
    both = steps.cost([1, 200], [600, 400]).time_s
    a3 = steps.cost([1, 1], [601, 600]).time_s
    b3 = steps.cost([1], [601]).time_s
    tokens, done, rec = two_prompts(True, True, framework)
    assert tokens == pytest.approx([first, first + both], rel=1e-9)
    assert done == pytest.approx([first + both + a3, first + both + a3 + b3], rel=1e-9)
    assert rec["scheduler"]["mixed_batches"] is True
    # unset: the framework's (SGLang without --enable-mixed-chunk: apart)
    tokens, done, rec = two_prompts(True, None, framework)
    assert rec["scheduler"]["mixed_batches"] is (framework != "sglang")
    assert done[0] == pytest.approx(apart if framework == "sglang" else first + both + a3, rel=1e-9)


def test_a_prefill_step_preempts_no_one_when_the_cache_is_full():
    # 120 prompts of 3,000 tokens through a KV cache of ~39 requests: with prefill steps apart, a
    # prompt the free blocks cannot hold waits for decodes to finish instead of evicting them (an
    # evicted request would come back as a prompt, evict the next, and no one would decode); every
    # request finishes, in about as many steps as mixed batches take
    sv = {
        "requests": 120,
        "arrival": {"offline": True},
        "prompt_tokens": 3000,
        "output_tokens": 300,
        "scheduler": {"max_batched_tokens": 4096, "kv_memory_fraction": 0.25},
    }
    runs = {}
    for mixed in (True, False):
        res = _serve(
            {**sv, "scheduler": {**sv["scheduler"], "mixed_batches": mixed}}, runtime={"framework": "sglang"}
        )
        (tl,) = res.timelines
        assert np.isfinite(tl.finish_s).all()
        runs[mixed] = res.record
    assert runs[False]["kv_cache"]["tokens"] < 120 * 3300 / 3  # the cache holds a third of them at most
    assert runs[False]["steps"] < 1.2 * runs[True]["steps"]
    assert runs[False]["preemptions"] <= runs[True]["preemptions"]
