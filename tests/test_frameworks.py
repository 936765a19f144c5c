"""The serving framework's share of a step (`runtime.framework`, simulator/frameworks.py).

Oracles: against `kernel` (kernel time alone), a CUDA-graph framework's decode step without overlap
adds exactly its CPU iteration (step_s + per_sequence_s x batch); an overlapping scheduler's step is
the longer of the GPU step and that CPU work, and its breakdown still sums to the step; eager launches add the same time per kernel whatever the batch or
KV length; the step-cost function prices the same iteration.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

import roofline
from roofline.api import load_scenario
from roofline.simulator.frameworks import FRAMEWORKS
from roofline.simulator.scenario import ScenarioError

from helpers import ops, run

WL = {"prompt_tokens": 16384, "output_tokens": 2}


def _result(framework, batch=1, model="llama-3.1-8b", hardware="mi300x", runtime=None, **wl) -> tuple:
    # MI300X: no framework kernel tables (kernel_scales.GEMM_SCALE), so the kernels are the same under
    # every framework and the difference is the framework's step alone. `runtime`: other fields.
    # (result, its record)
    res, recs = run(
        model=model,
        hardware=hardware,
        runtime={"framework": framework, **(runtime or {})},
        workload={**WL, "batch": batch, **wl},
    )
    return res, recs[0]


def _record(framework, batch=1, model="llama-3.1-8b", hardware="mi300x", runtime=None, **wl) -> dict:
    return _result(framework, batch, model, hardware, runtime, **wl)[1]


def _tpot(framework, batch=1, model="llama-3.1-8b", hardware="mi300x", runtime=None, **wl):
    return _record(framework, batch, model, hardware, runtime, **wl)["tpot_s"]


@pytest.mark.parametrize("batch", [1, 8, 64])
def test_graph_decode_without_overlap_adds_one_cpu_iteration(batch):
    # vLLM --no-async-scheduling (runtime.cpu_overlap: false): the step waits for the CPU iteration
    vllm = FRAMEWORKS["vllm"]
    cpu = vllm.step_s + vllm.per_sequence_s * batch
    sync = _record("vllm", batch, runtime={"cpu_overlap": False})
    assert sync["tpot_s"] == pytest.approx(_tpot("kernel", batch) + cpu, rel=1e-12)
    assert sync["decode"]["breakdown"]["framework"] == pytest.approx(cpu, rel=1e-12)
    with pytest.raises(ScenarioError) as exc:
        load_scenario({"model": "llama-3.1-8b", "hardware": "h100-sxm", "runtime": {"cpu_overlap": "no"}})
    assert "runtime.cpu_overlap" in str(exc.value) and "true or false" in str(exc.value)


@pytest.mark.parametrize("framework", ["vllm", "sglang", "trtllm"])
@pytest.mark.parametrize("model, batch", [("llama-3.1-8b", 8), ("llama-3.2-1b", 1)])
def test_overlap_scheduler_step_is_the_longer_of_gpu_and_cpu(framework, model, batch):
    # vLLM's async scheduling (default since 0.14), SGLang's and TensorRT-LLM's overlap schedulers;
    # the breakdown counts only the CPU time that extends the step
    fw = FRAMEWORKS[framework]
    gpu = _tpot("kernel", batch, model, prompt_tokens=128)
    cpu = fw.step_s + fw.per_sequence_s * batch
    res, rec = _result(framework, batch, model, prompt_tokens=128)
    assert rec["tpot_s"] == pytest.approx(max(gpu, cpu), rel=1e-12)
    assert rec["decode"]["breakdown"].get("framework", 0.0) == pytest.approx(max(cpu - gpu, 0.0), abs=1e-15)
    assert sum(rec["decode"]["breakdown"].values()) == pytest.approx(rec["tpot_s"], rel=1e-12)
    # the op table keeps each op's own time and says what of it extends the step
    table = ops(res, 0, "decode")
    step = next(o for o in table if o["kind"] == "framework")
    assert step["time_s"] == pytest.approx(cpu, rel=1e-12)
    assert step["exposed_s"] == pytest.approx(max(cpu - gpu, 0.0), abs=1e-15)
    assert sum(o["exposed_s"] for o in table) == pytest.approx(rec["tpot_s"], rel=1e-12)


def test_eager_launch_cost_is_per_kernel_not_per_byte():
    # HuggingFace-style eager decode pays launch_s per kernel: the same extra at any batch and KV
    # length (the kernels launched per step do not change), on top of its 1 ms CPU iteration.
    hf = FRAMEWORKS["hf"]
    extras = [
        _tpot("hf", b, prompt_tokens=p) - _tpot("kernel", b, prompt_tokens=p) - hf.step_s
        for b, p in [(1, 1024), (16, 1024), (1, 65536)]
    ]
    assert extras[0] > 100 * hf.launch_s  # a 32-layer model launches hundreds of kernels a step
    assert extras[1] == pytest.approx(extras[0], rel=1e-9)
    assert extras[2] == pytest.approx(extras[0], rel=1e-9)


def test_step_model_prices_the_framework_iteration():
    doc = {
        "model": "llama-3.1-8b",
        "hardware": "h100-sxm",
        "runtime": {"framework": "vllm"},
        "workload": {"batch": 1, "prompt_tokens": 16384, "output_tokens": 2},
    }
    rec = roofline.simulate(doc).records()[0]
    steps = roofline.step_model(doc)
    assert steps.cost([1], [16384]).time_s == pytest.approx(rec["tpot_s"], rel=1e-12)
    assert steps.cost([16384], [0]).time_s == pytest.approx(rec["ttft_s"], rel=1e-12)
    vllm = FRAMEWORKS["vllm"]
    sync = roofline.step_model({**doc, "runtime": {"framework": "vllm", "cpu_overlap": False}})
    assert sync.cost([1], [16384]).breakdown["framework"] == pytest.approx(vllm.step_s + vllm.per_sequence_s)
    assert sync.cost([1], [16384]).time_s == pytest.approx(rec["tpot_s"] + vllm.step_s + vllm.per_sequence_s)


def test_eager_pytorch_reduces_through_nccl_unless_told():
    # A TP8 decode's 16 KB all-reduces: the serving engines' peer kernels (~3 us) vs NCCL's ring.
    def comm(framework, **runtime):
        _, recs = run(
            model="llama-3.1-70b",
            gpus=8,
            parallelism={"tp": 8},
            runtime={"framework": framework, **runtime},
            workload={**WL, "batch": 1},
        )
        return recs[0]["decode"]["breakdown"]["comm"]

    assert comm("hf") > 3 * comm("vllm")
    assert comm("hf", custom_allreduce=True) == pytest.approx(comm("vllm"), rel=1e-12)


def test_unknown_framework_names_the_valid_ones():
    with pytest.raises(ScenarioError) as exc:
        load_scenario({"model": "llama-3.1-8b", "hardware": "h100-sxm", "runtime": {"framework": "tgi"}})
    assert "runtime.framework" in str(exc.value)
    assert "vllm" in str(exc.value) and "trtllm" in str(exc.value)


@pytest.mark.parametrize(
    "framework, hardware", [("vllm", "a100-80gb-sxm"), ("trtllm", "h200"), ("hf", "h100-sxm")]
)
def test_prefill_attention_runs_at_the_frameworks_measured_share_of_the_curve(framework, hardware):
    # A compute-bound 32K prefill's attention: FLOPs / (peak x curve x the framework's measured
    # scale), the launches aside (kernel_scales.ATTENTION_PREFILL_SCALE; 1 for hf, the FlashAttention
    # package the curves come from).
    from roofline.simulator.kernel_scales import attention_prefill_scale

    def attention(fw):
        res, _ = run(
            hardware=hardware,
            runtime={"framework": fw},
            workload={"batch": 1, "prompt_tokens": 32768, "output_tokens": 1},
        )
        (op,) = [o for o in ops(res) if o["kind"] == "attention_prefill"]
        return op["time_s"] - 32 * FRAMEWORKS[fw].launch_extra_s("prefill")

    scale = attention_prefill_scale(framework, hardware)
    assert scale == (1.0 if framework == "hf" else pytest.approx(scale))
    overhead = 32 * 2e-6
    assert attention(framework) - overhead == pytest.approx(
        (attention("kernel") - overhead) / scale, rel=1e-9
    )


def test_workstation_cards_keep_their_own_kernel_shares():
    # The tables' rows are chips (an H100 NVL reads the H100's), but RTX names share a prefix
    # across chips: the RTX PRO 6000 Server's measured shares (aic_kernel_scales.py: TensorRT-LLM's
    # prefill attention at 0.675 of the curve) are not an RTX 4090's or RTX 6000 Ada's (unmeasured).
    from roofline.simulator.kernel_scales import attention_prefill_scale, chip_of, gemm_scale

    assert chip_of("h100-nvl") == "h100" and chip_of("gb300") == "gb300"
    assert attention_prefill_scale("trtllm", "rtx-pro-6000-server") == 0.675
    assert attention_prefill_scale("trtllm", "h100-nvl") == attention_prefill_scale("trtllm", "h100-sxm")
    for card in ("rtx-4090", "rtx-6000-ada"):
        assert attention_prefill_scale("trtllm", card) == 1.0
        assert gemm_scale("vllm", card, "bf16") == (1.0, 1.0)
    assert gemm_scale("vllm", "rtx-pro-6000-server", "fp8") == (0.894, 1.0)  # compute share capped at 1


@pytest.mark.parametrize("batch", [1, 16])
def test_cuda_graphs_switch_decode_launches_and_nothing_else(batch):
    # runtime.cuda_graphs: false (vLLM --enforce-eager) launches decode op by op: the same extra
    # per step as HuggingFace's eager decode over the same kernels; true makes HuggingFace's decode
    # a graph replay (its CPU iteration stays). Prefill is untouched either way.
    hf = FRAMEWORKS["hf"]
    eager_extra = _tpot("hf", batch) - _tpot("kernel", batch) - hf.step_s
    assert eager_extra > 0
    eager, graphs = {"cuda_graphs": False}, {"cuda_graphs": True}
    assert _tpot("vllm", batch, runtime=eager) == pytest.approx(_tpot("vllm", batch) + eager_extra, rel=1e-12)
    assert _tpot("vllm", batch, runtime=graphs) == _tpot("vllm", batch)
    assert _tpot("hf", batch, runtime=graphs) == pytest.approx(_tpot("kernel", batch) + hf.step_s, rel=1e-12)
    assert _record("vllm", batch, runtime=eager)["ttft_s"] == _record("vllm", batch)["ttft_s"]


def test_cuda_graphs_reach_the_serving_step_model_and_bad_values_are_named():
    doc = {
        "model": "llama-3.1-8b",
        "hardware": "h100-sxm",
        "runtime": {"framework": "vllm", "cuda_graphs": False},
        "workload": {"batch": 1, "prompt_tokens": 16384, "output_tokens": 2},
    }
    rec = roofline.simulate(doc).records()[0]
    assert roofline.step_model(doc).cost([1], [16384]).time_s == pytest.approx(rec["tpot_s"], rel=1e-12)
    with pytest.raises(ScenarioError) as exc:
        load_scenario({**doc, "runtime": {"cuda_graphs": "yes"}})
    assert "runtime.cuda_graphs" in str(exc.value) and "true or false" in str(exc.value)


def test_cpu_iteration_fields_replace_the_frameworks_assumption():
    # runtime.cpu_step_ms / cpu_per_sequence_us: a measured host's CPU iteration instead of the
    # framework's assumed 0.5 ms + 2 us per sequence. Without overlap (vLLM --no-async-scheduling)
    # it adds to the step; an overlap scheduler (TensorRT-LLM) takes the longer of it and the GPU
    # step, so a slow host bounds a small model's large batches.
    def tpot(framework, batch, **runtime):
        return _tpot(framework, batch, "llama-3.2-1b", runtime=runtime, prompt_tokens=128)

    vllm = FRAMEWORKS["vllm"]
    sync = {"cpu_overlap": False}
    assert tpot("vllm", 8, cpu_step_ms=2.0, **sync) == pytest.approx(
        tpot("vllm", 8, **sync) + 2e-3 - vllm.step_s, rel=1e-12
    )
    assert tpot("vllm", 8, cpu_per_sequence_us=10.0, **sync) == pytest.approx(
        tpot("vllm", 8, **sync) + 8 * (10e-6 - vllm.per_sequence_s), rel=1e-12
    )
    gpu = tpot("kernel", 256)
    cpu = 0.5e-3 + 256 * 40e-6
    assert cpu > gpu  # the host bounds this step
    assert tpot("trtllm", 256, cpu_per_sequence_us=40.0) == pytest.approx(cpu, rel=1e-12)
    doc = {
        "model": "llama-3.2-1b",
        "hardware": "mi300x",
        "runtime": {"framework": "trtllm", "cpu_per_sequence_us": 40.0},
        "workload": {**WL, "prompt_tokens": 128, "batch": 256},
    }
    step = roofline.step_model(doc).cost([1] * 256, [128] * 256)
    assert step.time_s == pytest.approx(cpu) and step.bound == "framework"
    with pytest.raises(ScenarioError, match="runtime.cpu_step_ms"):
        load_scenario({**doc, "runtime": {"cpu_step_ms": -1}})


def test_a_grace_host_runs_the_frameworks_host_work_slower():
    # GB200's host is a Grace CPU, whose PyTorch host path measured 2.75x an x86 DGX's
    # (hwspecs/gb200.yaml: TransformerEngine issue #2053): HuggingFace's eager launches and CPU
    # iteration take 2.75x B200's (an x86 host); a measured host's cpu_step_ms is taken as given
    from roofline.api import load_hardware

    assert load_hardware("gb200").host_cpu_factor == 2.75 and load_hardware("b200").host_cpu_factor == 1.0
    hf = FRAMEWORKS["hf"]

    def host_work(hardware, **runtime):  # decode step time beyond the kernels
        return _tpot("hf", 1, hardware=hardware, runtime=runtime) - _tpot("kernel", 1, hardware=hardware)

    assert host_work("gb200") == pytest.approx(2.75 * host_work("b200"), rel=1e-9)
    launches = host_work("b200") - hf.step_s
    assert host_work("gb200", cpu_step_ms=1.0) == pytest.approx(2.75 * launches + 1e-3, rel=1e-9)


@pytest.mark.parametrize("pp, batch", [(2, 8), (4, 8), (4, 64), (8, 64)])
def test_pipeline_relay_adds_its_hops_to_every_decode_round(monkeypatch, pp, batch):
    # TensorRT-LLM relays each micro-batch's sampled tokens through pp - 1 ranks, and the pp
    # micro-batches relay in turn: a round of pp micro-batches of batch / pp sequences pays
    # pp (pp - 1) (batch / pp) = (pp - 1) batch hops of pp_hop_s, serially (no overlap hides it).
    trt = FRAMEWORKS["trtllm"]
    assert trt.pp_hop_s == pytest.approx(8e-6)
    assert all(FRAMEWORKS[f].pp_hop_s == 0.0 for f in ("vllm", "sglang", "hf", "kernel"))
    assert trt.relay_s(batch / pp, pp) == pytest.approx((pp - 1) * batch * trt.pp_hop_s, rel=1e-12)
    doc = {
        "model": "llama-3.1-70b",
        "hardware": "h100-sxm",
        "parallelism": {"pp": pp},
        "runtime": {"framework": "trtllm"},
        "workload": {**WL, "batch": batch},
    }
    with_relay = roofline.simulate(doc).records()[0]
    monkeypatch.setitem(FRAMEWORKS, "trtllm", replace(trt, pp_hop_s=0.0))
    without = roofline.simulate(doc).records()[0]
    hops = (pp - 1) * batch * trt.pp_hop_s
    assert with_relay["tpot_s"] - without["tpot_s"] == pytest.approx(hops, rel=1e-9)
    framework = with_relay["decode"]["breakdown"]["framework"] - without["decode"]["breakdown"].get(
        "framework", 0.0
    )
    assert framework == pytest.approx(hops, rel=1e-9)
    # the serving step of one micro-batch pays the same per round (the framework is read per call)
    steps = roofline.step_model({k: v for k, v in doc.items() if k != "workload"})
    new, cached = [1] * (batch // pp), [16384] * (batch // pp)
    plain = steps.cost(new, cached).time_s
    monkeypatch.setitem(FRAMEWORKS, "trtllm", trt)
    assert steps.cost(new, cached).time_s - plain == pytest.approx(hops, rel=1e-9)


def test_one_stage_pays_no_relay():
    # pp = 1: no hop, and no relay op in the tables; at pp = 2 the op is there, with its hops
    assert FRAMEWORKS["trtllm"].relay_s(64, 1) == 0.0
    res, _ = _result("trtllm", 8, hardware="h100-sxm", prompt_tokens=4096)
    assert all(o["name"] != "pp_relay" for o in ops(res, 0, "decode"))
    two, _ = run(
        model="llama-3.1-8b",
        hardware="h100-sxm",
        parallelism={"pp": 2},
        runtime={"framework": "trtllm"},
        workload={**WL, "batch": 8, "prompt_tokens": 4096},
    )
    relay = next(o for o in ops(two, 0, "decode") if o["name"] == "pp_relay")
    assert relay["time_s"] == pytest.approx(8 * FRAMEWORKS["trtllm"].pp_hop_s, rel=1e-12)


def test_pp_relay_field_replaces_the_hop_cost():
    # runtime.pp_relay_us: a measured hop (or 0 for a pipeline without the relay), taken as given
    doc = {
        "model": "llama-3.1-70b",
        "hardware": "h100-sxm",
        "parallelism": {"pp": 4},
        "runtime": {"framework": "trtllm"},
        "workload": {**WL, "batch": 16},
    }

    def tpot(**runtime):
        return roofline.simulate({**doc, "runtime": {**doc["runtime"], **runtime}}).records()[0]["tpot_s"]

    shipped, none, slow = tpot(), tpot(pp_relay_us=0), tpot(pp_relay_us=20)
    assert shipped - none == pytest.approx(3 * 16 * FRAMEWORKS["trtllm"].pp_hop_s, rel=1e-9)
    assert slow - none == pytest.approx(3 * 16 * 20e-6, rel=1e-9)
    vllm = roofline.simulate({**doc, "runtime": {"framework": "vllm", "pp_relay_us": 20}}).records()[0]
    plain = roofline.simulate({**doc, "runtime": {"framework": "vllm"}}).records()[0]
    assert vllm["tpot_s"] - plain["tpot_s"] == pytest.approx(3 * 16 * 20e-6, rel=1e-9)
    with pytest.raises(ScenarioError, match="runtime.pp_relay_us"):
        load_scenario({**doc, "runtime": {"pp_relay_us": -1}})


def test_tensorrt_llm_launches_prefill_eagerly_and_replays_decode():
    # TensorRT-LLM's PyTorch backend captures generation-only iterations; context and mixed
    # iterations run eagerly unless piecewise CUDA graphs are switched on: a prefill pass pays the
    # eager launch per kernel, as vLLM's and SGLang's do, and a decode step does not.
    trt = FRAMEWORKS["trtllm"]
    assert trt.launch_extra_s("prefill") == FRAMEWORKS["vllm"].launch_extra_s("prefill") == trt.launch_s > 0
    assert trt.launch_extra_s("decode") == 0.0


# gpt-oss-20b: 24 layers alternating a 128-token sliding window and full attention, 8 KV heads of 64:
# one layer's K and V of one token in bf16 are 2 x 8 x 64 x 2 = 2048 bytes.
OSS_LAYER_TOKEN_BYTES = 2 * 8 * 64 * 2


@pytest.mark.parametrize(
    "framework, share, prompt, sliding_share",
    [
        ("vllm", None, 4096, 0.0),  # the hybrid KV cache manager: the window alone
        ("hf", None, 4096, 0.0),
        ("sglang", None, 4096, 0.8),  # a window pool of 0.8 as many tokens as the full one
        ("sglang", None, 100, 0.8),  # ... which a context inside the window fills itself
        ("trtllm", None, 4096, 1.0),  # every layer sized at max_seq_len
        ("trtllm", 0.0, 4096, 0.0),  # kv_cache_config.max_attention_window set per layer
        ("vllm", 1.0, 4096, 1.0),
    ],
)
def test_sliding_window_layers_hold_what_the_frameworks_cache_gives_them(
    framework, share, prompt, sliding_share
):
    # 12 full layers hold the whole context; the 12 sliding ones max(min(C, 128), share x C)
    batch, context = 4, prompt + 2
    rec = _record(
        framework,
        batch,
        "gpt-oss-20b",
        "h200",
        {"sliding_window_kv_share": share},
        prompt_tokens=prompt,
        output_tokens=2,
    )
    sliding = max(min(context, 128), sliding_share * context)
    want = batch * (12 * context + 12 * sliding) * OSS_LAYER_TOKEN_BYTES
    assert rec["memory"]["kv_cache_final_bytes"] == pytest.approx(want, abs=1.0)  # records keep whole bytes


@pytest.mark.parametrize(
    "framework, shared_by_sliding", [("trtllm", True), ("sglang", False), ("vllm", False)]
)
def test_a_shared_prefix_is_held_once_only_where_sliding_layers_keep_every_token(
    framework, shared_by_sliding
):
    batch, context, prefix = 4, 4096 + 2, 2048
    rec = _record(
        framework,
        batch,
        "gpt-oss-20b",
        "h200",
        prompt_tokens=4096,
        output_tokens=2,
        shared_prefix_tokens=prefix,
    )
    full = prefix + batch * (context - prefix)
    share = FRAMEWORKS[framework].window_kv_share
    sliding = full if shared_by_sliding else batch * max(128, share * context)
    want = (12 * full + 12 * sliding) * OSS_LAYER_TOKEN_BYTES
    assert rec["memory"]["kv_cache_final_bytes"] == pytest.approx(want, abs=1.0)  # records keep whole bytes


def test_the_sliding_window_share_changes_memory_not_the_kernels():
    # the kernel attends the window either way: same step times, fewer sequences fit in full windows
    full = _record("trtllm", 8, "gpt-oss-20b", "h200", prompt_tokens=32768, output_tokens=64)
    window = _record(
        "trtllm",
        8,
        "gpt-oss-20b",
        "h200",
        {"sliding_window_kv_share": 0},
        prompt_tokens=32768,
        output_tokens=64,
    )
    assert full["tpot_s"] == window["tpot_s"] and full["ttft_s"] == window["ttft_s"]
    assert full["max_batch"] < window["max_batch"]
    # a model without windows is unchanged
    a = _record("trtllm", 8, "llama-3.1-8b", "h200")
    b = _record("trtllm", 8, "llama-3.1-8b", "h200", {"sliding_window_kv_share": 0})
    assert a["memory"] == b["memory"] and a["max_batch"] == b["max_batch"]
    for bad in ("window", 1.5, -0.1):
        with pytest.raises(ScenarioError) as exc:
            load_scenario(
                {"model": "gpt-oss-20b", "hardware": "h200", "runtime": {"sliding_window_kv_share": bad}}
            )
        assert "runtime.sliding_window_kv_share" in str(exc.value)


@pytest.mark.parametrize(
    "framework, share, blocks",
    [
        ("trtllm", None, 128),
        ("trtllm", 0.0, 66),
        ("vllm", None, 66),
        ("sglang", None, math.ceil((12 * 4096 + 12 * 0.8 * 4096) / (32 * 24))),
    ],
)
def test_serving_blocks_follow_the_frameworks_window_pools(framework, share, blocks):
    # a 4,096-token prompt in 32-token blocks of all 24 layers: 128 blocks where every layer holds
    # every token; (12 x 4096 + 12 x 128) / (32 x 24) = 66 where the sliding layers hold 128
    doc = {
        "model": "gpt-oss-20b",
        "hardware": "h200",
        "runtime": {"framework": framework, "sliding_window_kv_share": share},
        "serving": {
            "requests": 2,
            "arrival": {"offline": True},
            "prompt_tokens": 4096,
            "output_tokens": 4,
            "scheduler": {"block_tokens": 32, "admission": "on_demand"},  # the prompt's blocks first
        },
    }
    res = roofline.serve(doc)
    assert res.record["kv_cache"]["block_bytes"] == 32 * 24 * OSS_LAYER_TOKEN_BYTES
    assert int(res.timelines[0].series["kv_blocks"][0]) == 2 * blocks


def test_vllm_pads_decode_to_its_default_capture_sizes_and_runs_eager_above_512():
    # vLLM's cudagraph_capture_sizes: [1, 2, 4] + 8..248 by 8 + 256..512 by 16
    vllm = FRAMEWORKS["vllm"]
    assert vllm.decode_rows(300) == (304.0, True) and vllm.decode_rows(8) == (8.0, True)
    assert vllm.decode_rows(257) == (272.0, True) and vllm.decode_rows(513) == (513.0, False)
    # a batch of 257 replays the 272 graph; one of 600 runs kernel by kernel, as without graphs
    wl = {"prompt_tokens": 2048, "output_tokens": 2}
    padded = _tpot("vllm", 257, hardware="h100-sxm", **wl)
    assert padded == _tpot("vllm", 257, hardware="h100-sxm", runtime={"cuda_graph_batch_sizes": [272]}, **wl)
    assert padded > _tpot("vllm", 257, hardware="h100-sxm", runtime={"cuda_graph_batch_sizes": [257]}, **wl)
    eager = _tpot("vllm", 600, hardware="h100-sxm", **wl)
    assert eager == _tpot("vllm", 600, hardware="h100-sxm", runtime={"cuda_graphs": False}, **wl)


@pytest.mark.parametrize(
    "hardware, tp, cap",
    [
        ("h100-sxm", 1, 256),  # 80 GB, below TP4: cuda_graph_max_bs 256
        ("h100-sxm", 4, 512),  # TP4 and up: 512
        ("h200", 1, 256),  # 141 GB: 256
        ("b200", 1, 512),  # above 160 GiB: 512
        ("l40s", 1, 32),  # 48 GB: 32
    ],
)
def test_sglang_captures_its_default_sizes_up_to_its_cap_by_gpu_memory_and_tp(hardware, tp, cap):
    from roofline.api import load_hardware

    memory = load_hardware(hardware).memory_bytes
    assert float(FRAMEWORKS["sglang"].graph_cap(memory, tp)) == cap
    # other frameworks have no cap of their own (vLLM's list ends at 512; TensorRT-LLM: every size)
    assert FRAMEWORKS["vllm"].graph_cap(memory, tp) is None
    # SGLang's cuda_graph_bs: [1, 2, 4, 8, 12] + 16..256 by 8 + 272..496 by 16 + 512, up to the cap:
    # a batch replays the smallest captured size that holds it; above the cap it decodes kernel by
    # kernel, as without graphs
    wl = {"prompt_tokens": 2048, "output_tokens": 2}
    extra = {"parallelism": {"tp": tp}} if tp > 1 else {}

    def tpot(n, **runtime):
        return run(
            model="llama-3.1-8b",
            hardware=hardware,
            runtime={"framework": "sglang", **runtime},
            workload={**WL, "batch": n, **wl},
            **extra,
        )[1][0]["tpot_s"]

    for n, size in ((13, 16), (250, 256), (300, 304), (500, 512)):
        if size <= cap:
            assert tpot(n) == tpot(n, cuda_graph_batch_sizes=[size])
    assert tpot(cap + 1) == tpot(cap + 1, cuda_graphs=False)
    assert tpot(cap + 1) > tpot(cap + 1, cuda_graph_batch_sizes=[cap + 1])  # the launches it pays
