"""`runtime.framework: transformers`: HuggingFace transformers' own modelling code run eagerly
(simulator/eager_hf.py): the host's dispatch of every kernel beside the GPU's work, the unfused
norms, RoPE and SwiGLU product, the split projections, the cache's copies (DynamicCache's, or a
StaticCache written in place) and the attention path's (`repeat_kv`). Oracles from the counts in
eager_hf's docstring."""

from __future__ import annotations

import pytest

import roofline
from roofline.api import load_scenario
from roofline.simulator import eager_hf
from roofline.simulator.frameworks import FRAMEWORKS
from roofline.simulator.scenario import ScenarioError

from helpers import assert_same, ops, point_alone, run

TF = FRAMEWORKS["transformers"]
# Llama 3.1 8B: 32 layers, 32 query and 8 KV heads of 128, hidden 4096, bf16
LAYERS, HEADS, KV_HEADS, HEAD_DIM, HIDDEN = 32, 32, 8, 128, 4096
KV_BYTES_PER_TOKEN_LAYER = 2 * KV_HEADS * HEAD_DIM * 2  # K and V, bf16
# Kernels of one decoder layer as modelled (eager_hf docstring): RMSNorm 8 x 2, q/k/v 3, RoPE 10,
# the cache's 2, repeat_kv's 2 (the default sdpa path; grouped-query heads), attention 1, o_proj 1,
# two residual adds, gate/up 2, the product 2, down 1
REPEAT_KV_KERNELS = 2
LAYER_KERNELS = 8 + 3 + 10 + 2 + REPEAT_KV_KERNELS + 1 + 1 + 2 + 8 + 2 + 2 + 1
GROUPS = HEADS // KV_HEADS
EDGE_KERNELS = 1 + 8 + 1 + 2  # embedding, final RMSNorm, LM head, sampling


def _run(framework="transformers", batch=1, prompt=128, output=64, runtime=None, hardware="h100-sxm"):
    return run(
        hardware=hardware,
        runtime={"framework": framework, **(runtime or {})},
        workload={"batch": batch, "prompt_tokens": prompt, "output_tokens": output},
    )


def _attention_ratio(hardware: str) -> float:
    """transformers' prefill attention time over hf's, one 64K prompt (the same causal FLOPs)."""
    t = {}
    for fw in ("transformers", "hf"):
        res, _ = _run(framework=fw, prompt=65536, output=2, hardware=hardware)
        t[fw] = next(o["time_s"] for o in ops(res) if o["name"] == "attention")
    return t["transformers"] / t["hf"]


@pytest.mark.parametrize(
    "hardware, ratio",
    [
        ("h100-sxm", 1 / 0.549),
        ("h200", 1 / 0.549),
        ("h100-pcie", 1 / 0.549),
        ("a100-80gb-sxm", 1.0),
        ("b200", 1.0),
    ],
)
def test_prefill_attention_is_pytorchs_flashattention2_on_hopper(hardware, ratio):
    # transformers' SDPA runs FlashAttention-2 on Hopper, at 0.549 of the datasheet's FlashAttention-3
    # curve (kernel_scales.TORCH_SDPA_FLASH_SCALE: arXiv:2407.08608 Fig. 5 at 8K-16K); hf keeps the
    # curve. Ampere's curve is FlashAttention-2's already; Blackwell's has no published FA2 curve.
    # (The launches' microseconds against a second of attention: 5e-4.)
    assert _attention_ratio(hardware) == pytest.approx(ratio, rel=5e-4)


def test_a_profile_that_did_not_measure_attention_leaves_it_on_the_scaled_curve(shipped_profiles):
    # on Hopper transformers borrows the vLLM profile's GEMMs but not its attention (FlashAttention-3
    # there): the curve, scaled, prices it, as without the profile; on the A100 the borrowed
    # FlashAttention-2 table prices both frameworks' attention alike
    assert _attention_ratio("h100-sxm") == pytest.approx(1 / 0.549, rel=5e-4)
    assert _attention_ratio("a100-80gb-sxm") == pytest.approx(1.0, rel=5e-4)


def test_layer_kernel_count_matches_the_modelled_ops():
    # transformers' Llama layer launches 44 on the SDPA path with grouped-query heads: these 42 and
    # the attention call's second kernel and its output's contiguous copy (eager_hf docstring)
    assert LAYER_KERNELS == 42


def test_a_host_bound_decode_step_is_the_dispatch_of_every_kernel_then_the_iteration():
    # batch 1, short context: the GPU's ~8 ms hide behind 1,292 launches at 23 us; generate's
    # synchronising iteration (1 ms) follows
    _, (rec,) = _run()
    dispatch = eager_hf.DISPATCH_S * (LAYERS * LAYER_KERNELS + EDGE_KERNELS)
    assert rec["tpot_s"] == pytest.approx(dispatch + TF.step_s, rel=1e-12)
    assert rec["decode"]["bound"] == "framework"
    assert sum(rec["decode"]["breakdown"].values()) == pytest.approx(rec["tpot_s"], rel=1e-12)


def test_a_gpu_bound_step_hides_the_dispatch_and_adds_only_the_iteration():
    # batch 8 at 32K: the cache copies and reads outlast the launches
    res, (rec,) = _run(batch=8, prompt=32768, output=2)
    gpu = sum(o["time_s"] for o in ops(res, 0, "decode") if o["kind"] != "framework")
    assert gpu > eager_hf.DISPATCH_S * (LAYERS * LAYER_KERNELS + EDGE_KERNELS)
    assert rec["tpot_s"] == pytest.approx(gpu + TF.step_s, rel=1e-12)
    assert rec["decode"]["breakdown"]["framework"] == pytest.approx(TF.step_s, rel=1e-12)


def test_unfused_norms_product_and_rope_read_and_write_what_the_eager_code_does():
    prompt = 8192
    res_tf, _ = _run(prompt=prompt)
    res_hf, _ = _run("hf", prompt=prompt)
    tf = {o["name"]: o for o in ops(res_tf)}
    hf = {o["name"]: o for o in ops(res_hf)}
    # RMSNorm: 36 bytes per element (fp32 intermediates) where a fused kernel moves 4
    assert tf["input_norm"]["bytes"] == pytest.approx(9.0 * hf["input_norm"]["bytes"], rel=1e-12)
    assert tf["input_norm"]["bytes"] == pytest.approx(36.0 * prompt * HIDDEN * LAYERS, rel=1e-12)
    # SiLU then the product: 10 bytes per intermediate element, against a fused kernel's 6
    assert tf["ffn_act"]["bytes"] == pytest.approx(hf["ffn_act"]["bytes"] * 10 / 6, rel=1e-12)
    # RoPE over q and k: 20 bytes per element; the split projections move what the fused one does
    assert tf["rope"]["bytes"] == pytest.approx(
        20.0 * prompt * (HEADS + KV_HEADS) * HEAD_DIM * LAYERS, rel=1e-12
    )
    assert "rope" not in hf
    for name in ("qkv_proj", "ffn_up", "ffn_down", "o_proj"):
        assert tf[name]["bytes"] == pytest.approx(hf[name]["bytes"], rel=1e-12)
        assert tf[name]["flops"] == pytest.approx(hf[name]["flops"], rel=1e-12)
    # an empty DynamicCache: torch.cat copies the prompt's K and V once (read and written)
    copy = 2.0 * prompt * KV_BYTES_PER_TOKEN_LAYER * LAYERS
    assert tf["kv_cache_copy"]["bytes"] == pytest.approx(copy, rel=1e-12)


@pytest.mark.parametrize("batch, prompt", [(1, 4096), (4, 30000)])
def test_every_decode_step_copies_the_whole_cache(batch, prompt):
    # DynamicCache.update: torch.cat reads the layer's cache and writes it again each step, so the
    # mean step over the output (KV length P + 1 .. P + O - 1) moves 2 b (P + O / 2) tokens' K and V
    output = 101
    res, _ = _run(batch=batch, prompt=prompt, output=output)
    (copy,) = [o for o in ops(res, 0, "decode") if o["name"] == "kv_cache_copy"]
    mean_length = prompt + output / 2
    expect = 2.0 * batch * mean_length * KV_BYTES_PER_TOKEN_LAYER * LAYERS
    assert copy["bytes"] == pytest.approx(expect, rel=1e-12)


@pytest.mark.parametrize("batch, prompt", [(1, 4096), (8, 32768)])
def test_sdpa_copies_the_kv_heads_to_every_query_head(batch, prompt):
    # the default sdpa path (v4.36-v4.51): repeat_kv reads the layer's cache after the append and
    # writes GROUPS copies (2 kernels), and the decode attention reads the copies: GROUPS - 1 times
    # the cache more than a grouped kernel's one read. 2 x GROUPS = 8 caches a step for Llama 3 8B.
    output = 101
    res, _ = _run(batch=batch, prompt=prompt, output=output)
    (rep,) = [o for o in ops(res, 0, "decode") if o["name"] == "repeat_kv"]
    cache = batch * (prompt + output / 2) * KV_BYTES_PER_TOKEN_LAYER * LAYERS
    assert rep["bytes"] == pytest.approx(2 * GROUPS * cache, rel=1e-12)
    # a prefill pass copies its K and V to GROUPS heads (its FlashAttention tiles read every head's
    # keys anyway): (1 + GROUPS) x the prompt's K and V
    (pre,) = [o for o in ops(res) if o["name"] == "repeat_kv"]
    assert pre["bytes"] == pytest.approx(
        (1 + GROUPS) * batch * prompt * KV_BYTES_PER_TOKEN_LAYER * LAYERS, rel=1e-12
    )


@pytest.mark.parametrize("implementation", ["flash_attention_2", "sdpa_gqa"])
def test_attention_paths_that_read_the_grouped_cache_make_no_copies(implementation):
    # flash-attn's kernels, and SDPA with enable_gqa (v4.52+, PyTorch 2.5+, no mask), read the grouped
    # KV heads themselves: the step is the sdpa step less the copies' traffic and launches
    res_sdpa, (sdpa,) = _run(batch=8, prompt=32768, output=2)
    res, (rec,) = _run(batch=8, prompt=32768, output=2, runtime={"attn_implementation": implementation})
    assert "repeat_kv" not in {o["name"] for o in ops(res, 0, "decode")}
    (rep,) = [o for o in ops(res_sdpa, 0, "decode") if o["name"] == "repeat_kv"]
    assert sdpa["tpot_s"] - rec["tpot_s"] == pytest.approx(rep["time_s"], rel=1e-9)
    # GPU-bound at 32K: the copies' 8 caches a step against the 3 (two for torch.cat, one read)
    # the step moves without them, beside the weights: about 3x the step
    assert 2.5 < sdpa["tpot_s"] / rec["tpot_s"] < 3.5


def test_a_static_cache_passes_a_mask_so_sdpa_on_grouped_heads_copies_too():
    # runtime.cuda_graphs with transformers stands for a static cache compiled with torch.compile:
    # its attention mask hides the unfilled slots, and with a mask SDPA's enable_gqa path is not
    # taken, so repeat_kv runs under sdpa_gqa as under sdpa; flash_attention_2 still copies nothing
    def copies(implementation):
        res, _ = _run(
            batch=4,
            prompt=8192,
            output=8,
            runtime={"cuda_graphs": True, "attn_implementation": implementation},
        )
        return [o["bytes"] for o in ops(res, 0, "decode") if o["name"] == "repeat_kv"]

    assert copies("sdpa_gqa") == copies("sdpa") and len(copies("sdpa")) == 1
    assert copies("flash_attention_2") == []


def test_a_model_with_one_query_head_per_kv_head_repeats_nothing():
    # repeat_kv returns its input when every KV head serves one query head (Llama 2 7B's MHA)
    res, _ = run(
        model="llama-2-7b",
        runtime={"framework": "transformers"},
        workload={"batch": 2, "prompt_tokens": 2048, "output_tokens": 8},
    )
    assert "repeat_kv" not in {o["name"] for o in ops(res, 0, "decode")}


def test_memory_holds_a_layers_copies_beside_the_cache():
    # at a step's peak: the repeated K and V of one layer (GROUPS layers' worth per sequence) under
    # sdpa; torch.cat's new keys (or values) beside the old, half a layer, where nothing is repeated
    batch, prompt, output = 4, 16384, 128
    kv = batch * (prompt + output) * KV_BYTES_PER_TOKEN_LAYER  # one layer
    _, (sdpa,) = _run(batch=batch, prompt=prompt, output=output)
    _, (fa2,) = _run(
        batch=batch, prompt=prompt, output=output, runtime={"attn_implementation": "flash_attention_2"}
    )
    _, (hf,) = _run("hf", batch=batch, prompt=prompt, output=output)
    assert hf["memory"]["kv_cache_bytes"] == pytest.approx(LAYERS * kv, rel=1e-12)
    assert fa2["memory"]["kv_cache_bytes"] == pytest.approx((LAYERS + 0.5) * kv, rel=1e-12)
    assert sdpa["memory"]["kv_cache_bytes"] == pytest.approx((LAYERS + GROUPS) * kv, rel=1e-12)
    # and the largest batch that fits counts them per sequence: (32 + 4) / 32 of the cache
    free = (
        sdpa["memory"]["capacity_bytes"] - sdpa["memory"]["weights_bytes"] - sdpa["memory"]["overhead_bytes"]
    )
    assert sdpa["max_batch"] <= free / ((LAYERS + GROUPS) * kv / batch)
    assert sdpa["max_batch"] < fa2["max_batch"] <= hf["max_batch"]


@pytest.mark.parametrize(
    "model, framework, implementation, noted",
    [
        ("llama-3.1-8b", "transformers", None, True),  # the default path, grouped-query heads
        ("llama-3.1-8b", "transformers", "sdpa", False),  # asked for: the user knows
        ("llama-2-7b", "transformers", None, False),  # MHA: nothing to copy
        ("llama-3.1-8b", "vllm", None, False),  # its own kernels
    ],
)
def test_the_default_paths_copies_are_noted_where_they_cost(model, framework, implementation, noted):
    runtime = {"framework": framework}
    if implementation:
        runtime["attn_implementation"] = implementation
    _, (rec,) = run(
        model=model, runtime=runtime, workload={"batch": 1, "prompt_tokens": 1024, "output_tokens": 2}
    )
    assert (eager_hf.REPEAT_KV_NOTE in rec["provenance"]["notes"]) is noted


@pytest.mark.parametrize(
    "framework, bits, warned", [("transformers", 4, True), ("transformers", 16, False), ("vllm", 4, False)]
)
def test_a_quantised_cache_under_transformers_says_which_kernels_it_prices(framework, bits, warned):
    # kv_quant prices KIVI-style fused kernels; transformers' own QuantizedCache dequantises the whole
    # cache every step (slower than its 16-bit cache), which is not priced: said where it would apply
    _, (rec,) = run(
        runtime={"framework": framework},
        methods=[{"name": "kv_quant", "bits": bits}],
        workload={"batch": 1, "prompt_tokens": 1024, "output_tokens": 2},
    )
    assert (eager_hf.QUANTIZED_CACHE_WARNING in rec["provenance"]["warnings"]) is warned


def test_the_attention_path_is_a_transformers_field_and_bad_values_are_named():
    base = {"model": "llama-3.1-8b", "hardware": "h100-sxm", "workload": {"prompt_tokens": 1024}}
    with pytest.raises(ScenarioError, match=r"runtime.attn_implementation: 'sdpa'.*framework: transformers"):
        load_scenario({**base, "runtime": {"framework": "vllm", "attn_implementation": "sdpa"}})
    with pytest.raises(
        ScenarioError, match=r"runtime.attn_implementation.*sdpa, sdpa_gqa, flash_attention_2"
    ):
        load_scenario({**base, "runtime": {"framework": "transformers", "attn_implementation": "eager"}})
    # a sweep over frameworks that includes transformers reads it there and ignores it elsewhere
    doc = {
        **base,
        "runtime": {"framework": "transformers", "attn_implementation": "flash_attention_2"},
        "sweep": {"runtime.framework": ["vllm", "transformers"]},
    }
    vllm, tf = roofline.simulate(doc).records()
    assert (
        vllm["tpot_s"] == roofline.simulate({**base, "runtime": {"framework": "vllm"}}).records()[0]["tpot_s"]
    )
    assert tf["configuration"]["runtime"]["attn_implementation"] == "flash_attention_2"


def test_captured_decode_graphs_drop_the_dispatch():
    # runtime.cuda_graphs: true (a static cache and torch.compile's reduce-overhead mode) replays the
    # decode step: no launches from the host, only the iteration
    res, (rec,) = _run(runtime={"cuda_graphs": True})
    gpu = sum(o["time_s"] for o in ops(res, 0, "decode") if o["kind"] != "framework")
    assert rec["tpot_s"] == pytest.approx(gpu + TF.step_s, rel=1e-12)


def test_a_static_cache_is_written_in_place_not_copied():
    # runtime.cuda_graphs stands for a static cache (graphs need one): StaticCache.update index_copy_s
    # the new tokens' keys and values (read and written, 2 kernels a layer) where DynamicCache's
    # torch.cat copies the whole cache; no half-layer copy sits beside the cache at the peak either
    batch, prompt, output = 4, 16384, 101
    runtime = {"cuda_graphs": True, "attn_implementation": "flash_attention_2"}
    res, (rec,) = _run(batch=batch, prompt=prompt, output=output, runtime=runtime)
    names = {o["name"]: o for o in ops(res, 0, "decode")}
    assert "kv_cache_copy" not in names
    assert names["kv_cache_write"]["bytes"] == pytest.approx(
        2.0 * batch * KV_BYTES_PER_TOKEN_LAYER * LAYERS, rel=1e-12
    )
    prefill = {o["name"]: o for o in ops(res)}
    assert prefill["kv_cache_write"]["bytes"] == pytest.approx(
        2.0 * batch * prompt * KV_BYTES_PER_TOKEN_LAYER * LAYERS, rel=1e-12
    )
    kv = batch * (prompt + output) * KV_BYTES_PER_TOKEN_LAYER
    assert rec["memory"]["kv_cache_bytes"] == pytest.approx(LAYERS * kv, rel=1e-12)


def _static(implementation, batch, prompt, output):
    """ops and record of Llama 3.1 8B under transformers with a StaticCache and `implementation`."""
    runtime = {"cache_implementation": "static", "attn_implementation": implementation}
    res, (rec,) = _run(batch=batch, prompt=prompt, output=output, runtime=runtime)
    return res, rec


@pytest.mark.parametrize("batch", [1, 4])
def test_sdpa_over_a_static_cache_decodes_over_the_whole_buffer(batch):
    # SDPA is handed the StaticCache's whole buffer (prompt + output slots) under a 4D mask: every
    # decode step reads all P + O slots where flash-attn reads the filled ones (P + O / 2 on the mean
    # step), every head reads the mask's row (P + O elements of 2 bytes), and repeat_kv copies the
    # whole buffer (2 x GROUPS caches a step)
    prompt, output = 8192, 1024
    sdpa, _ = _static("sdpa", batch, prompt, output)
    flash, _ = _static("flash_attention_2", batch, prompt, output)

    def decode(res, name):
        return next(o for o in ops(res, 0, "decode") if o["name"] == name)

    buffer = prompt + output
    extra_slots = batch * output / 2 * KV_BYTES_PER_TOKEN_LAYER * LAYERS
    mask = batch * HEADS * buffer * eager_hf.MASK_BYTES * LAYERS
    got = decode(sdpa, "attention")["bytes"] - decode(flash, "attention")["bytes"]
    assert got == pytest.approx(extra_slots + mask, rel=1e-9)
    cache = batch * buffer * KV_BYTES_PER_TOKEN_LAYER * LAYERS
    assert decode(sdpa, "repeat_kv")["bytes"] == pytest.approx(2 * GROUPS * cache, rel=1e-12)
    # the attention's FLOPs over every slot: 2 x (qk + v) per head and slot
    assert decode(sdpa, "attention")["flops"] == pytest.approx(
        2 * batch * HEADS * buffer * 2 * HEAD_DIM * LAYERS, rel=1e-12
    )


def test_sdpa_over_a_static_cache_prefills_every_pair_of_the_buffer_and_holds_its_mask():
    # With a mask SDPA's kernel computes every (query, slot) pair: P x (P + O) where the causal
    # kernel computes P^2 / 2 (flops.causal_pairs_upto); the K/V it streams is the buffer's (every slot once at these
    # sizes, 9,216 tokens against the prompt's 8,192) and every head reads the mask, P x (P + O)
    # elements of 2 bytes; the mask (one per sequence) is held beside the pass's activations
    batch, prompt, output = 1, 8192, 1024
    buffer = prompt + output
    sdpa, rec = _static("sdpa", batch, prompt, output)
    flash, flash_rec = _static("flash_attention_2", batch, prompt, output)
    att = {
        name: next(o for o in ops(res) if o["name"] == "attention")
        for name, res in (("s", sdpa), ("f", flash))
    }
    pair_flops = 2 * HEADS * 2 * HEAD_DIM * LAYERS
    assert att["s"]["flops"] == pytest.approx(batch * prompt * buffer * pair_flops, rel=1e-12)
    assert att["f"]["flops"] == pytest.approx(batch * prompt * prompt / 2 * pair_flops, rel=1e-12)
    mask = HEADS * batch * prompt * buffer * eager_hf.MASK_BYTES * LAYERS
    more_kv = batch * output * KV_BYTES_PER_TOKEN_LAYER * LAYERS
    assert att["s"]["bytes"] - att["f"]["bytes"] == pytest.approx(mask + more_kv, rel=1e-9)
    held = batch * prompt * buffer * eager_hf.MASK_BYTES
    got = rec["memory"]["activation_bytes"] - flash_rec["memory"]["activation_bytes"]
    assert got == pytest.approx(held, rel=1e-9)
    assert rec["ttft_s"] > flash_rec["ttft_s"]
    # the mask grows with the square of the context: the longest context that fits is far shorter
    assert rec["max_context_tokens"] < 0.6 * flash_rec["max_context_tokens"]


def test_the_largest_context_under_a_static_cache_mask_is_the_last_that_fits():
    # max_context_tokens with the mask (prompt x buffer per sequence): that context fits, one more
    # token does not
    _, rec = _static("sdpa", 1, 8192, 1024)
    limit = rec["max_context_tokens"]
    runtime = {"cache_implementation": "static", "attn_implementation": "sdpa"}

    def fits(context):
        _, (r,) = _run(prompt=context - 1024, output=1024, runtime=runtime)
        return r["fits"]

    assert fits(limit) and not fits(limit + 1)


def test_the_cache_is_a_field_of_its_own_static_under_graphs_by_default():
    # runtime.cache_implementation: static without graphs (generate's cache_implementation="static",
    # eager) writes in place as under graphs; dynamic keeps torch.cat's copies; null follows the graphs
    def cache_ops(runtime):
        res, _ = _run(batch=2, prompt=4096, output=8, runtime=runtime)
        return {o["name"] for o in ops(res, 0, "decode") if o["name"].startswith("kv_cache")}

    assert cache_ops({"cache_implementation": "static"}) == {"kv_cache_write"}
    assert cache_ops({"cuda_graphs": True}) == {"kv_cache_write"}
    assert cache_ops({"cache_implementation": "dynamic"}) == cache_ops({}) == {"kv_cache_copy"}
    # an eager static cache launches the same number of kernels: a host-bound step is unchanged
    _, (dynamic,) = _run()
    _, (static,) = _run(runtime={"cache_implementation": "static"})
    assert static["tpot_s"] == pytest.approx(dynamic["tpot_s"], rel=1e-12)


def test_the_cache_field_is_checked_against_the_framework_and_the_graphs():
    base = {"model": "llama-3.1-8b", "hardware": "h100-sxm", "workload": {"prompt_tokens": 1024}}
    with pytest.raises(
        ScenarioError, match=r"runtime.cache_implementation: 'static'.*framework: transformers"
    ):
        load_scenario({**base, "runtime": {"framework": "sglang", "cache_implementation": "static"}})
    with pytest.raises(ScenarioError, match=r"'dynamic' with runtime.cuda_graphs: true.*static cache"):
        load_scenario(
            {
                **base,
                "runtime": {
                    "framework": "transformers",
                    "cache_implementation": "dynamic",
                    "cuda_graphs": True,
                },
            }
        )
    with pytest.raises(ScenarioError, match=r"runtime.cache_implementation.*dynamic, static"):
        load_scenario({**base, "runtime": {"framework": "transformers", "cache_implementation": "quantized"}})


def test_the_step_model_and_the_serving_fast_path_price_it_as_the_planner_does():
    doc = {
        "model": "llama-3.1-8b",
        "hardware": "h100-sxm",
        "runtime": {"framework": "transformers"},
        "workload": {"batch": 1, "prompt_tokens": 4096, "output_tokens": 2},
    }
    rec = roofline.simulate(doc).records()[0]
    steps = roofline.step_model(doc)
    assert steps.cost([1], [4096]).time_s == pytest.approx(rec["tpot_s"], rel=1e-12)
    assert steps.cost([4096], [0]).time_s == pytest.approx(rec["ttft_s"], rel=1e-12)
    sv = {
        "requests": 20,
        "arrival": {"rate_per_s": 2.0},
        "prompt_tokens": {"dist": "lognormal", "mean": 2048, "sigma": 0.6, "max": 8192},
        "output_tokens": 32,
        "seed": 1,
    }
    served = roofline.serve({**doc, "serving": sv}).record
    assert served["provenance"]["step_cost"] == "exact fast path"
    assert served["tpot_s"]["p50"] > 0.025  # host-bound steps, as the planner's


def test_a_grace_host_dispatches_slower():
    # GB200's Grace CPU runs the host path 2.75x slower (hwspecs/gb200.yaml host_cpu): the launches too
    _, (b200,) = _run(hardware="b200")
    _, (gb200,) = _run(hardware="gb200")
    dispatch = eager_hf.DISPATCH_S * (LAYERS * LAYER_KERNELS + EDGE_KERNELS)
    assert b200["tpot_s"] == pytest.approx(dispatch + TF.step_s, rel=1e-12)
    assert gb200["tpot_s"] == pytest.approx(2.75 * (dispatch + TF.step_s), rel=1e-12)


SDPA_PATHS = {"runtime.attn_implementation": ["sdpa", "sdpa_gqa", "flash_attention_2"], "workload.batch": [4]}


@pytest.mark.parametrize(
    "sweep, points, distinct",
    [
        # the dispatch per kernel is an array over a sweep's points (Grace hosts are slower); host-bound
        # at both batches, the host sets the step
        ({"hardware": ["b200", "gb200"], "workload.batch": [1, 16]}, 4, 2),
        # the attention path is structural (an op more or less); sdpa_gqa and flash_attention_2 price alike
        (SDPA_PATHS, 3, 2),
    ],
)
def test_a_sweep_equals_its_points_alone(sweep, points, distinct):
    base = {
        "model": "llama-3.1-8b",
        "hardware": "b200",
        "runtime": {"framework": "transformers"},
        "workload": {"batch": 1, "prompt_tokens": 2048, "output_tokens": 16},
    }
    swept = roofline.simulate({**base, "sweep": sweep}).records()
    assert len(swept) == points and len({r["tpot_s"] for r in swept}) == distinct
    for rec in swept:
        alone = roofline.simulate(point_alone(base, rec["point"])).records()[0]
        assert_same(
            {k: v for k, v in rec.items() if k != "point"}, {k: v for k, v in alone.items() if k != "point"}
        )


def test_an_eviction_method_copies_only_what_it_keeps():
    # SnapKV keeps a 2,048-token budget after the prompt (and the tokens generated since): DynamicCache
    # concatenates that, not the prompt's history
    budget, output = 2048, 64
    res, _ = run(
        hardware="a100-80gb-sxm",
        runtime={"framework": "transformers"},
        methods=[{"name": "snapkv", "budget_tokens": budget}],
        workload={"batch": 2, "prompt_tokens": 16384, "output_tokens": output},
    )
    (copy,) = [o for o in ops(res, 0, "decode") if o["name"] == "kv_cache_copy"]
    expect = 2.0 * 2 * (budget + output / 2) * KV_BYTES_PER_TOKEN_LAYER * LAYERS
    assert copy["bytes"] == pytest.approx(expect, rel=1e-12)


def _gemma_ci() -> dict:
    """The record of transformers' benchmark CI setting: gemma-2b in float16 on an A10, eager, batch
    1, a 7-token prompt, 128 new tokens."""
    _, (rec,) = run(
        model="gemma-2b",
        hardware="a10g",
        dtype={"weights": "fp16", "activations": "fp16", "kv": "fp16"},
        runtime={"framework": "transformers"},
        workload={"batch": 1, "prompt_tokens": 7, "output_tokens": 128},
    )
    return rec


def test_transformers_own_benchmark_ci_decode_within_its_tolerance():
    # huggingface/transformers' benchmark CI (hf-internal-testing/benchmark_results, 2024-09-04):
    # google/gemma-2b in float16 on its A10 runner, batch 1, 7-token prompt, eager with the dynamic
    # cache: 19.73 ms per token (18.9-19.7 over June-September 2024). Not used to set the dispatch
    # time (gpt-fast's Llama-2-7B on an A100 was): 15% for the host the CI ran on.
    rec = _gemma_ci()
    assert rec["tpot_s"] == pytest.approx(19.73e-3, rel=0.15)
    assert rec["decode"]["bound"] == "framework"


@pytest.mark.parametrize("batch", [1, 8])
def test_a_moe_block_launches_its_routing_and_each_hit_experts_kernels(batch):
    # Mixtral 8x7B (32 layers, top-2 of 8 experts) on one H200: 35 kernels of attention, norms and
    # residuals, 1 + 11 of routing, 11 per expert any of the batch's tokens chose, host-bound
    _, (rec,) = run(
        model="mixtral-8x7b",
        hardware="h200",
        runtime={"framework": "transformers"},
        workload={"batch": batch, "prompt_tokens": 128, "output_tokens": 64},
    )
    hit = 8 * (1 - (1 - 2 / 8) ** batch)  # expected distinct experts of `batch` tokens' top-2
    per_layer = (LAYER_KERNELS - 5) + 1 + eager_hf.ROUTING_KERNELS + 11 * hit
    dispatch = eager_hf.DISPATCH_S * (32 * per_layer + EDGE_KERNELS)
    assert rec["tpot_s"] == pytest.approx(dispatch + TF.step_s, rel=1e-12)


def test_the_dispatch_field_replaces_the_hosts_time_per_kernel_and_bad_values_are_named():
    _, (rec,) = _run(runtime={"dispatch_us": 10})
    assert rec["tpot_s"] == pytest.approx(
        10e-6 * (LAYERS * LAYER_KERNELS + EDGE_KERNELS) + TF.step_s, rel=1e-12
    )
    # taken as given on a Grace host too (a measured host's figure)
    _, (gb,) = _run(hardware="gb200", runtime={"dispatch_us": 10})
    assert gb["tpot_s"] == pytest.approx(
        10e-6 * (LAYERS * LAYER_KERNELS + EDGE_KERNELS) + 2.75 * TF.step_s, rel=1e-12
    )
    with pytest.raises(ScenarioError, match="runtime.dispatch_us"):
        load_scenario({"model": "llama-3.1-8b", "hardware": "h100-sxm", "runtime": {"dispatch_us": -1}})


@pytest.mark.parametrize("framework,kernels,bytes_per_element", [("transformers", 16, 36), ("vllm", 2, 4)])
def test_qwen3_norms_every_head_of_q_and_k(framework, kernels, bytes_per_element):
    # Qwen3 (qk_norm): q_norm and k_norm, an RMSNorm over each head's 128 dims, on every query and
    # KV head (Qwen3Attention.forward): transformers runs each as its 8-kernel RMSNorm (36 bytes per
    # element), a serving engine as one fused kernel each (reads and writes the bf16 element: 4)
    res, _ = run(
        model="qwen3-30b-a3b",
        runtime={"framework": framework},
        workload={"batch": 2, "prompt_tokens": 1024, "output_tokens": 2},
    )
    (op,) = [o for o in ops(res, 0, "decode") if o["name"] == "qk_norm"]
    layers, elements = 48, 2 * (32 + 4) * 128  # 48 layers; 2 sequences x (32 + 4 heads) x 128
    assert op["bytes"] == layers * elements * bytes_per_element
    # launched per layer: the op's time is its traffic at the norm's rate plus a gap per kernel
    per_layer = op["layers"][0]["time_per_layer_s"]
    (plain,) = [o for o in ops(res, 0, "decode") if o["name"] == "input_norm"]
    norm_kernels = 8 if framework == "transformers" else 1
    gap = plain["layers"][0]["time_per_layer_s"] / norm_kernels  # input_norm: tiny, gap-bound
    assert per_layer == pytest.approx(kernels * gap, rel=0.02)


def test_gemma2_norms_before_and_after_each_sublayer():
    # Gemma 2's four RMSNorms per layer (input, post-attention, pre- and post-feedforward): the two
    # beyond the usual pair are `sandwich_norm`, over the hidden state like the others
    res, _ = run(model="gemma-2-9b", workload={"batch": 2, "prompt_tokens": 1024, "output_tokens": 2})
    table = {o["name"]: o for o in ops(res, 0, "decode")}
    assert table["sandwich_norm"]["bytes"] == 2 * table["input_norm"]["bytes"] == 2 * 42 * 2 * 3584 * 4
    # and scales its embedding by sqrt(hidden) (every Gemma): read and write each of 2 rows, bf16
    assert table["embed_scale"]["bytes"] == 2 * 3584 * 4
    llama = {
        o["name"]
        for o in ops(run(workload={"batch": 2, "prompt_tokens": 1024, "output_tokens": 2})[0], 0, "decode")
    }
    assert "embed_scale" not in llama and "sandwich_norm" not in llama and "qk_norm" not in llama


def test_gemma_norms_and_embedding_scale_launch_their_own_kernels():
    # GemmaRMSNorm multiplies by (1 + weight) in float32: 10 kernels (the weight's float() and the
    # 1.0 + beside Llama's 8) at 40 bytes per element; GemmaModel scales the embedding by
    # sqrt(hidden) in a kernel of its own. gemma-2b: 18 layers of 40 + 2 x 2 kernels; around them
    # the embedding, its scaling, the final norm (10), the LM head and sampling (2). Host-bound at
    # batch 1: the dispatch of every kernel, then generate's iteration
    rec = _gemma_ci()
    kernels = 18 * (LAYER_KERNELS + 2 * 2) + (1 + 1 + 10 + 1 + 2)
    assert rec["tpot_s"] == pytest.approx(kernels * eager_hf.DISPATCH_S + TF.step_s, rel=1e-12)
    assert eager_hf.norm_bytes_per_element(2, gemma=True) == 40.0
