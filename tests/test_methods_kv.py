"""KV-cache methods (simulator/methods: kv_quant, streaming_llm, h2o, snapkv, pyramidkv,
duo_attention, quest, lserve, shadowkv, kv_offload): for each, a closed-form oracle of the cost term
it changes, written out here from the paper's definition; then each paper's headline number in the
paper's own setting, with the source and the reason for the band beside it.

Bugs found while writing these are kept as strict xfails whose reason starts with "BUG:".
Method stacking (conflicts, monotone memory, MLA) is in test_methods_compute.py.
"""

from __future__ import annotations

import pytest

from roofline.hwspecs import load_hardware

from helpers import ops, run

A100 = "a100-80gb-sxm"

# Llama-3.1-8B (the default model of `run`): 32 layers, 32 query heads, 8 KV heads of 128, bf16 KV.
LAYERS, HEADS, KV_HEADS, HEAD_DIM = 32, 32, 8, 128
KV_ELEMS = 2 * KV_HEADS * HEAD_DIM  # K and V elements per token and layer: 2,048
TOKEN_BYTES = LAYERS * KV_ELEMS * 2  # 131,072 bytes per token
# Bytes per layer and decode step besides the cache read: q in and attention out
# (32 heads x (128 + 128) x 2 bytes) plus the new token's K/V written (2,048 elements).
Q_IO = HEADS * 2 * HEAD_DIM * 2
FIXED = Q_IO + KV_ELEMS * 2


def one(methods=(), **fields):
    """(result, record) of a one-point scenario."""
    res, recs = run(methods=list(methods), **fields)
    return res, recs[0]


def wl(prompt, output=1, batch=1, **extra):
    return {"batch": batch, "prompt_tokens": prompt, "output_tokens": output, **extra}


def kv_bytes(methods, prompt, output=1, key="kv_cache_bytes", **fields):
    return one(methods, workload=wl(prompt, output), **fields)[1]["memory"][key]


def decode_bytes(res, kind="attention_decode", name=None):
    """HBM (or host-link) bytes of one decode step, summed over the ops of a kind (or one name)."""
    return sum(o["bytes"] for o in ops(res, 0, "decode") if o["kind"] == kind and name in (None, o["name"]))


# --- closed forms of the term each method changes ----------------------------------------------------


@pytest.mark.parametrize("bits,group,residual", [(8, 128, 0), (4, 128, 0), (4, 64, 128), (2, 32, 128)])
def test_kv_quant_cache_bytes(bits, group, residual):
    # KIVI format: bits/8 bytes per element plus an fp16 scale and an fp16 zero point per group of
    # `group` elements; the newest `residual` tokens stay bf16. 4-bit, group 128: 0.5 + 4/128 bytes.
    C = 32768
    elem = bits / 8 + 4 / group
    oracle = LAYERS * KV_ELEMS * (C * elem + min(C, residual) * (2 - elem))
    method = {"name": "kv_quant", "bits": bits, "group_size": group, "residual_tokens": residual}
    assert kv_bytes([method], C - 1) == pytest.approx(oracle, abs=1)  # records round to whole bytes


def test_kv_quant_decode_reads_and_dequantises_every_cached_element():
    # One decode step at L = P + 1 reads L tokens at 0.53125 bytes per element and writes the new
    # token in the same format; dequantisation costs 2 FLOPs (scale, shift) per element read.
    P, elem = 32767, 0.5 + 4 / 128
    L = P + 1
    res, _ = one([{"name": "kv_quant", "bits": 4}], workload=wl(P, 2))
    assert decode_bytes(res) == pytest.approx(LAYERS * (L * KV_ELEMS * elem + Q_IO + KV_ELEMS * elem))
    dequant = [o for o in ops(res, 0, "decode") if o["name"] == "kv_dequant"]
    assert dequant[0]["flops"] == pytest.approx(LAYERS * 2 * L * KV_ELEMS)


@pytest.mark.parametrize("context", [1000, 32768])
def test_streaming_llm_keeps_sinks_and_window(context):
    # min(C, sink + window) tokens per sequence; the prompt itself is prefilled with that window
    # (pairs = K^2/2 + K (P - K) once P > K, as for a sliding-window layer).
    sink, window = 4, 2044
    K = sink + window
    method = {"name": "streaming_llm", "sink_tokens": sink, "window_tokens": window}
    res, rec = one([method], workload=wl(context - 1))
    assert rec["memory"]["kv_cache_bytes"] == TOKEN_BYTES * min(context, K)
    P = context - 1
    pairs = P * P / 2 if P <= K else K * K / 2 + K * (P - K)
    attn = sum(o["flops"] for o in ops(res) if o["kind"] == "attention_prefill")
    assert attn == pytest.approx(2 * pairs * HEADS * 2 * HEAD_DIM * LAYERS, rel=1e-12)


@pytest.mark.parametrize("context", [1000, 32768])
def test_h2o_keeps_budget(context):
    # Heavy hitters + recent tokens: min(C, budget) per sequence; decode pays a score update per kept
    # token (one fp32 read-modify-write per query head).
    budget = 2048
    res, rec = one([{"name": "h2o", "budget_tokens": budget}], workload=wl(context - 1, 2))
    assert rec["memory"]["kv_cache_bytes"] == TOKEN_BYTES * min(context + 1, budget)
    update = [o for o in ops(res, 0, "decode") if o["name"] == "h2o_score_update"]
    assert update[0]["bytes"] == pytest.approx(LAYERS * min(context, budget) * HEADS * 8)


@pytest.mark.parametrize("prompt,output", [(1000, 1), (32767, 1), (32767, 512)])
def test_snapkv_keeps_compressed_prompt_plus_generated_tokens(prompt, output):
    # min(P, budget) prompt tokens survive the compression; generated tokens are appended, never
    # evicted. The observation window's vote costs window x P scores per head: 2 (d + 1) FLOPs each.
    budget, window = 2048, 32
    method = {"name": "snapkv", "budget_tokens": budget, "window_tokens": window}
    res, rec = one([method], workload=wl(prompt, output))
    assert rec["memory"]["kv_cache_final_bytes"] == TOKEN_BYTES * (min(prompt, budget) + output)
    # Peak: unchunked prefill compresses layer by layer, so one of the 32 layers holds the whole
    # prompt at the end of prefill (the observation window is the prompt's last tokens).
    after = TOKEN_BYTES * min(prompt, budget)
    peak = max(TOKEN_BYTES * (min(prompt, budget) + output), after + (TOKEN_BYTES * prompt - after) / LAYERS)
    assert rec["memory"]["kv_cache_bytes"] == pytest.approx(peak, abs=2)
    vote = [o for o in ops(res) if o["name"] == "snapkv_vote"]
    assert vote[0]["flops"] == pytest.approx(LAYERS * 2 * HEADS * window * prompt * (HEAD_DIM + 1))


def test_pyramidkv_preserves_the_mean_budget():
    # Budgets fall linearly from 2B beta/(1+beta) (bottom) to 2B/(1+beta) (top), mean B. With every
    # budget below P (3,901 .. 195 for B = 2048, beta = 20), total KV equals SnapKV's at budget B.
    method = {"name": "pyramidkv", "budget_tokens": 2048, "beta_ratio": 20.0}
    snap = kv_bytes([{"name": "snapkv", "budget_tokens": 2048}], 32767, 16, key="kv_cache_final_bytes")
    assert kv_bytes([method], 32767, 16, key="kv_cache_final_bytes") == pytest.approx(snap, abs=1)
    assert snap == TOKEN_BYTES * (2048 + 16)


def test_pyramidkv_decode_costs_what_snapkv_costs_at_the_same_mean_budget():
    # Same bytes and FLOPs per step (asserted), one attention kernel per layer: the same step time.
    fields = dict(model="llama-2-7b", hardware=A100, workload=wl(16384, 512, batch=2))
    snap_res, snap = one([{"name": "snapkv", "budget_tokens": 2048}], **fields)
    pyr_res, pyr = one([{"name": "pyramidkv", "budget_tokens": 2048}], **fields)
    assert decode_bytes(pyr_res) == pytest.approx(decode_bytes(snap_res), rel=1e-12)
    assert pyr["tpot_s"] == pytest.approx(snap["tpot_s"], rel=1e-9)


@pytest.mark.parametrize("name", ["snapkv", "pyramidkv"])
def test_snapkv_chunked_prefill_holds_the_full_prompt_until_the_last_chunk(name):
    fields = dict(hardware=A100, workload=wl(1_000_000, 16, batch=2, prefill_chunk_tokens=8192))
    _, dense = one([], **fields)
    _, snap = one([{"name": name, "budget_tokens": 2048}], **fields)
    assert snap["fits"] is False
    assert snap["max_context_tokens"] is not None
    assert snap["max_context_tokens"] <= 1.05 * dense["max_context_tokens"]


@pytest.mark.parametrize("fraction", [0.25, 0.5])
@pytest.mark.parametrize("context", [200, 32768])
def test_duo_attention_memory_and_reads(fraction, context):
    # Retrieval heads keep all C tokens, streaming heads sink + recent (64 + 256): memory is
    # r * full + (1 - r) * min(C, 320); one decode step reads the same split at L = P + 1.
    duo = {"name": "duo_attention", "retrieval_head_fraction": fraction}
    res, rec = one([duo], workload=wl(context - 1, 2))
    C, L = context + 1, context
    tokens = fraction * C + (1 - fraction) * min(C, 320)
    assert rec["memory"]["kv_cache_bytes"] == pytest.approx(TOKEN_BYTES * tokens, abs=1)
    read = fraction * L + (1 - fraction) * min(L, 320)
    assert decode_bytes(res) == pytest.approx(LAYERS * (read * KV_ELEMS * 2 + FIXED))


def test_quest_reads_budget_plus_page_metadata():
    # Memory: the whole cache plus page metadata (min and max keys per page and KV head = one
    # token's K+V elements per 16-token page, i.e. 1/16 more). Per decode step, the first two layers
    # stay dense (read L tokens); the other 30 read the budget plus every page's metadata.
    P, budget, page = 32767, 2048, 16
    L = P + 1
    quest = {"name": "quest", "token_budget": budget, "page_size": page}
    res, rec = one([quest], workload=wl(P, 2))
    assert rec["memory"]["kv_cache_bytes"] == pytest.approx(kv_bytes([], P, 2) * (1 + 1 / page), abs=2)
    metadata = L / page * 2 * HEAD_DIM * KV_HEADS * 2
    dense_layers = 2 * (L * KV_ELEMS * 2 + FIXED)
    quest_layers = 30 * (budget * KV_ELEMS * 2 + FIXED + metadata)
    assert decode_bytes(res) == pytest.approx(dense_layers + quest_layers)
    assert decode_bytes(res, name="quest_page_select") == pytest.approx(30 * metadata)


def test_quest_dense_layers_keep_the_kv_format():
    # kv_quant 4-bit + quest: every layer reads 0.53125-byte elements; the two dense layers read L
    # tokens, the other 30 the budget plus page metadata (metadata stays bf16).
    P, budget, elem = 32767, 2048, 0.5 + 4 / 128
    L = P + 1
    res, _ = one(
        [{"name": "kv_quant", "bits": 4}, {"name": "quest", "token_budget": budget}], workload=wl(P, 2)
    )
    step = Q_IO + KV_ELEMS * elem
    oracle = 2 * (L * KV_ELEMS * elem + step) + 30 * (budget * KV_ELEMS * elem + step)
    assert decode_bytes(res, name="attention") == pytest.approx(oracle)


def test_lserve_streaming_heads_plus_page_selection():
    # Streaming heads (share s) as DuoAttention's; the others read token_budget tokens and the page
    # metadata of every 64-token page, refreshed every 4 steps.
    s, budget, page, reuse = 0.5, 4096, 64, 4
    P = 32767
    L, C = P + 1, P + 2
    method = {"name": "lserve", "streaming_head_fraction": s, "token_budget": budget, "page_size": page}
    res, rec = one([method], workload=wl(P, 2))
    assert rec["memory"]["kv_cache_bytes"] == pytest.approx(TOKEN_BYTES * ((1 - s) * C + s * 320), abs=1)
    metadata = (1 - s) * L / page / reuse * 2 * HEAD_DIM * KV_HEADS * 2
    read = (1 - s) * budget + s * 320
    assert decode_bytes(res) == pytest.approx(LAYERS * (read * KV_ELEMS * 2 + FIXED + metadata))


def test_shadowkv_gpu_shadows_and_host_values():
    # GPU: rank-160 pre-RoPE key factors (160 elements per token and layer), one landmark key
    # (8 x 128 elements) per 8-token chunk, outlier chunks kept exactly (by default 24 per 1,024
    # selected tokens, as ShadowKV's implementation: 95.85 tokens here; 48 chunks when given), and
    # the selected tokens' keys and values (1.56% of the prompt: 511.2 tokens); host: all values.
    # Each step fetches the 40% of the selected values not already on the GPU (a 60% hit rate) over
    # the host link.
    P, rank, chunk = 32767, 160, 8
    budget = 0.0156 * P
    C, L = P + 2, P + 1

    def gpu(outlier_tokens):
        kept = (min(C, outlier_tokens) + min(C, budget)) * KV_ELEMS
        return LAYERS * 2 * (C * (rank + KV_HEADS * HEAD_DIM / chunk) + kept)

    res, rec = one([{"name": "shadowkv"}], workload=wl(P, 2))
    assert rec["memory"]["kv_cache_bytes"] == pytest.approx(gpu(24 * chunk * budget / 1024), abs=1)
    given = one([{"name": "shadowkv", "outlier_chunks": 48}], workload=wl(P, 2))[1]
    assert given["memory"]["kv_cache_bytes"] == pytest.approx(gpu(48 * chunk), abs=1)
    values = KV_HEADS * HEAD_DIM * 2  # bytes per token and layer
    assert res.columns["memory.host_bytes"][0] == pytest.approx(LAYERS * C * values)
    assert decode_bytes(res, "host_transfer") == pytest.approx(LAYERS * min(L, 0.4 * budget) * values)
    # a fixed count instead of the share: 2,048 selected tokens, whatever the prompt
    res, rec = one([{"name": "shadowkv", "sparse_budget_tokens": 2048}], workload=wl(P, 2))
    assert decode_bytes(res, "host_transfer") == pytest.approx(LAYERS * 0.4 * 2048 * values)


def test_shadowkv_decode_launches_its_selection_and_rebuild_kernels():
    # bytedance/ShadowKV's decode (ShadowKVCache_CPU) launches, per layer beside a dense layer's
    # kernels: selection 7 (+1 for the max over grouped query heads: Llama 3.1 8B has 4 per KV head),
    # key rebuild 4 and the value fetch 1; launched eagerly (`hf`) each pays launch_s on top of the
    # GPU-side gap, at any batch and context. Against the dense layer: 8 + 4 + 1 = 13 more per layer.
    from roofline.simulator.frameworks import FRAMEWORKS
    from roofline.simulator.methods.offload import REBUILD_KERNELS, SELECT_KERNELS

    assert (SELECT_KERNELS, REBUILD_KERNELS) == (7.0, 4.0)

    def eager_extra(methods, batch, prompt):
        tpot = {
            fw: one(methods, workload=wl(prompt, 2, batch), runtime={"framework": fw})[1]["tpot_s"]
            for fw in ("hf", "kernel")
        }
        return tpot["hf"] - tpot["kernel"]

    launch = FRAMEWORKS["hf"].launch_s
    for batch, prompt in [(1, 32767), (8, 131071)]:
        extra = eager_extra([{"name": "shadowkv"}], batch, prompt) - eager_extra([], batch, prompt)
        assert extra == pytest.approx(LAYERS * 13 * launch, rel=1e-9)


def test_kv_offload_splits_cache_between_gpu_and_host():
    # A resident share f stays on the GPU; the rest lives on the host and is streamed every step.
    f, P = 0.25, 32767
    C, L = P + 2, P + 1
    res, rec = one([{"name": "kv_offload", "resident_fraction": f}], workload=wl(P, 2))
    assert rec["memory"]["kv_cache_bytes"] == pytest.approx(f * TOKEN_BYTES * C, abs=1)
    assert res.columns["memory.host_bytes"][0] == pytest.approx((1 - f) * TOKEN_BYTES * C)
    assert decode_bytes(res, "host_transfer") == pytest.approx((1 - f) * TOKEN_BYTES * L)
    assert "host_transfer" in rec["decode"]["breakdown"]


# --- the papers' headlines in the papers' settings ------------------------------------------------------

# DuoAttention (arXiv:2410.10819) abstract: memory down by up to 2.55x for MHA (25% retrieval heads)
# and 1.67x for GQA (50%), decoding up to 2.18x / 1.50x faster, on A100-80GB. MHA model:
# Llama-2-7B-32K (llama-2-7b shapes); GQA model: Llama-3-8B-1048K (llama-3.1-8b shapes).
DUO_CASES = [("llama-2-7b", 0.25, 2.55, 2.18), ("llama-3.1-8b", 0.5, 1.67, 1.50)]


def _duo_pair(model, fraction, context, chunk=32768):
    fields = dict(model=model, hardware=A100, workload=wl(context - 1, 1, prefill_chunk_tokens=chunk))
    duo = {"name": "duo_attention", "retrieval_head_fraction": fraction}
    return one([], **fields)[1], one([duo], **fields)[1]


@pytest.mark.parametrize("model,fraction", [(m, r) for m, r, _, _ in DUO_CASES])
def test_duo_attention_kv_ratio_approaches_one_over_retrieval_fraction(model, fraction):
    ratios = []
    for context in (8192, 131072, 1_048_576):
        dense, duo = _duo_pair(model, fraction, context)
        ratios.append(dense["memory"]["kv_cache_bytes"] / duo["memory"]["kv_cache_bytes"])
        # dense C over r C + (1 - r) 320 tokens
        assert ratios[-1] == pytest.approx(context / (fraction * context + (1 - fraction) * 320), rel=1e-9)
    assert ratios == sorted(ratios)
    assert ratios[-1] == pytest.approx(1 / fraction, rel=0.01)


@pytest.mark.parametrize("model,fraction,memory_claim,decode_claim", DUO_CASES)
def test_duo_attention_memory_and_decode_claims(model, fraction, memory_claim, decode_claim):
    # Read at the longest context full attention fits on the A100 at batch 1 (131K for the MHA
    # model, 499K for the GQA one, 32K-token prefill chunks), where the "up to" figures are reached:
    # total memory (weights + KV + activations + 1 GiB runtime) there is 2.49x / 1.61x lower with
    # DuoAttention (paper 2.55x / 1.67x); +-10% covers where on its context axis the paper read them.
    # Decode: the model gives 2.61x / 1.67x, an upper bound on the paper's 2.18x / 1.50x: the
    # roofline credits the streaming heads' skipped bytes in full, while the measured step also pays
    # two attention kernels and framework time that do not shrink. Band: 1.0x to 1.3x the claim.
    room = _duo_pair(model, fraction, 4097)[0]["max_context_tokens"]
    dense, duo = _duo_pair(model, fraction, room)
    assert dense["fits"]
    memory = dense["memory"]["total_bytes"] / duo["memory"]["total_bytes"]
    assert memory == pytest.approx(memory_claim, rel=0.10)
    decode = dict(model=model, hardware=A100, workload=wl(room - 512, 512))
    duo_method = {"name": "duo_attention", "retrieval_head_fraction": fraction}
    speedup = one([], **decode)[1]["tpot_s"] / one([duo_method], **decode)[1]["tpot_s"]
    assert 1.0 <= speedup / decode_claim <= 1.3


def test_duo_attention_with_w8a8_and_kv4_fits_millions_of_tokens():
    # DuoAttention abstract: with 8-bit weights and 4-bit KV, Llama-3-8B decodes 3.3M tokens on one
    # A100-80GB, "6.4x" its FP16 full-attention capacity of 0.52M (= (80 - 16) GiB / 128 KiB; the
    # model gives 499K with 32K-token chunks). The model gives 4.31M: the ideal format (4-bit
    # elements + an fp16 scale/zero pair per 128: 3.76x) times half the heads kept (2x) shrinks KV
    # bytes per token 7.5x, where the paper's capacity implies ~5.7x (6.4x / the 9/8 room freed by
    # int8 weights). What the real system holds beyond the ideal format (quantisation parameters,
    # streaming-head and chunk buffers) is not itemised in the paper, so the model is an upper
    # bound: band 1.0x to 1.4x of 3.3M.
    stack = [
        {"name": "weight_quant", "format": "w8a8"},
        {"name": "kv_quant", "bits": 4},
        {"name": "duo_attention", "retrieval_head_fraction": 0.5},
    ]
    _, rec = one(stack, hardware=A100, workload=wl(4096, 1, prefill_chunk_tokens=32768))
    assert 1.0 <= rec["max_context_tokens"] / 3.3e6 <= 1.4


def test_snapkv_max_input_at_batch_two():
    # SnapKV (arXiv:2404.14469) Sec. 5.1.2, LWM-Text-Chat-1M (llama-2-7b shapes), A100-80GB,
    # HuggingFace, batch 2, budget 2048: the largest input grows from 16K (baseline) to 131K, ~8x.
    # Absolute values differ: the model gives 58.8K and 420K (unchunked prefill: KV plus one prefill
    # row of activations per token), while HuggingFace also materialises full-sequence fp32 logits
    # and eager-attention buffers, which the paper's OOM points include. Only the ratio is compared:
    # the paper's lengths are powers of two, so its true limits lie in [16K, 32K) and [128K, 256K)
    # and its ratio anywhere in (4, 16); the model's is 7.1x.
    fields = dict(model="llama-2-7b", hardware=A100, workload=wl(16384, 1, batch=2))
    dense = one([], **fields)[1]["max_context_tokens"]
    snap = one([{"name": "snapkv", "budget_tokens": 2048}], **fields)[1]["max_context_tokens"]
    assert 4 < snap / dense < 16
    assert 16384 < dense < 131072 < snap


def test_snapkv_decode_speedup_is_the_bytes_ratio():
    # Same setting at a 16K input: the paper measures >100 ms/token baseline vs <40 ms (3.6x); the
    # roofline gives 18.7 ms vs 9.9 ms (1.9x), the ratio of HBM bytes per step (13.5 GB weights
    # + 17 GB KV vs + 2 GB). The HF baseline's per-step time grows with the cache far faster than
    # its bytes (eager attention, cache concatenation), which the roofline does not model; the
    # claim is an upper bound here. Band: between 1.5x and the paper's 3.6x.
    fields = dict(model="llama-2-7b", hardware=A100, workload=wl(16384, 512, batch=2))
    dense = one([], **fields)[1]
    snap = one([{"name": "snapkv", "budget_tokens": 2048}], **fields)[1]
    assert 1.5 < dense["tpot_s"] / snap["tpot_s"] < 3.6


def test_quest_self_attention_speedup_at_32k():
    # Quest (arXiv:2406.10774) Sec. 4.3.1: self-attention 7.03x faster than FlashInfer at 32K
    # context, budget 2048, page 16, Llama-2-7B shapes, RTX 4090. That is a per-layer kernel
    # comparison, so no layer is left dense here (dense_layers: 0). The ideal ratio is the bytes
    # ratio 32K / (2048 + 32K/16) = 8; the model gives 7.6x (fixed per-step bytes, two kernels); the
    # paper's top-k selection kernel costs a little more. Band +-15%.
    fields = dict(model="llama-2-7b", hardware="rtx-4090", workload=wl(32767, 2))
    quest = {"name": "quest", "token_budget": 2048, "page_size": 16, "dense_layers": 0}

    def attention_time(methods):
        res, _ = one(methods, **fields)
        return sum(o["time_s"] for o in ops(res, 0, "decode") if o["kind"] == "attention_decode")

    assert attention_time([]) / attention_time([quest]) == pytest.approx(7.03, rel=0.15)


def test_streaming_llm_speedup_over_sliding_window_recomputation():
    # StreamingLLM (arXiv:2309.17453) Sec. 4.5: up to 22.2x lower per-token latency than a sliding
    # window with re-computation, Llama-2-7B, cache 4096 (4 sinks + 4092 recent), one A6000. The
    # recomputing baseline prefills the whole window for every token; StreamingLLM decodes one step
    # over it. There is no A6000 spec here: the A100 stands in, and since recomputation is
    # compute-bound and the streaming step memory-bound, the ratio scales with 1 / ridge point, so it
    # is carried over by the ridge ratio (A6000 datasheet: 154.8 dense fp16 tensor TFLOP/s, 768 GB/s).
    # Both run in HuggingFace (`framework: hf`). Model: 15.8x on the A6000 (19.2x with kernel time
    # alone): the HF step's 1 ms iteration and eager launches weigh on the 10 ms streaming step, not
    # on the 250 ms recomputation. Band -30%..+20% of the paper's "up to" figure: the A6000's kernel
    # efficiencies are taken as the A100's, and the paper's step shows less framework time than the
    # model's HF iteration.
    W = 4096
    streaming = {"name": "streaming_llm", "sink_tokens": 4, "window_tokens": W - 4}
    hf = {"framework": "hf"}
    recompute = one([], model="llama-2-7b", hardware=A100, runtime=hf, workload=wl(W))[1]["ttft_s"]
    step = one([streaming], model="llama-2-7b", hardware=A100, runtime=hf, workload=wl(W, 512))[1]["tpot_s"]
    a6000_ridge = 154.8e12 / 768e9
    speedup = recompute / step * load_hardware(A100).ridge_point / a6000_ridge
    assert 0.70 * 22.2 <= speedup <= 1.20 * 22.2


def test_shadowkv_batch_and_throughput_at_122k():
    # ShadowKV (arXiv:2410.21465) abstract: up to 6x larger batches and up to 3.04x throughput on an
    # A100; Table 4, Llama-3-8B-1M (llama-3.1-8b shapes) at 122K: full attention fits batch 4
    # (80.77 tokens/s, tests/test_published.py), ShadowKV runs batch 24 (239.51 tokens/s, 2.97x).
    # Batch: the model fits 26 (6.5x), +-20% of 6x. Throughput at batch 24 vs full at 4: 3.4x here,
    # band 0.9x to 1.25x of 3.04 (the model's ShadowKV step is faster than Table 4's: see below).
    P = 122 * 1024

    def point(methods, batch):
        return one(methods, hardware=A100, workload=wl(P, 128, batch, prefill_chunk_tokens=8192))[1]

    full, shadow = point([], 4), point([{"name": "shadowkv"}], 24)
    assert full["max_batch"] == 4
    assert shadow["max_batch"] / 4 == pytest.approx(6, rel=0.20)
    gain = shadow["decode_tokens_per_s"] / full["decode_tokens_per_s"]
    assert 0.9 <= gain / 3.04 <= 1.25


# ShadowKV Table 4 (Llama-3-8B-1M, A100): the largest batch ShadowKV ran at each context (OOM
# beyond), decode tokens/s.
SHADOWKV_TABLE4_MAX = [(60, 48, 455.14), (122, 24, 239.51), (244, 12, 119.01), (488, 6, 53.46)]


@pytest.mark.parametrize("kilo,batch,tokens_per_s", SHADOWKV_TABLE4_MAX)
def test_shadowkv_largest_batches_of_table4(kilo, batch, tokens_per_s):
    # Batch: the paper's fits and at most 10% more (51, 26, 13, 6 here): the GPU holds the key
    # factors, landmarks, outliers and the selected tokens' keys and values (Appendix A.2), with a
    # budget of 1.56% of the context (Appendix B.1). Throughput 0% to +30%: the step is bound by
    # fetching the 40% of the selected values not cached (Sec. 5.3's 60% hit rate) over PCIe, as in
    # Table 13 (Fetch V 1.84 ms of 3.2 ms per layer at 48 x 64K, here 1.58 ms); the paper's FFN
    # streams its weights at about half the HBM rate (0.33 ms per layer there, 0.22 here), not
    # modelled: +6% to +22% since the implementation's selection and rebuild kernels are counted
    # (+12% to +26% before; +58% to -58% before that, with a fixed 2,048-token budget fetched in
    # full behind the compute).
    rec = one(
        [{"name": "shadowkv"}],
        hardware=A100,
        runtime={"framework": "hf"},  # the paper's own PyTorch stack, as its baselines
        workload=wl(kilo * 1024, 128, batch, prefill_chunk_tokens=8192),
    )[1]
    assert batch <= rec["max_batch"] <= 1.1 * batch
    assert 1.0 <= rec["decode_tokens_per_s"] / tokens_per_s <= 1.30


def test_kivi_memory_and_batch_claims_lie_within_the_modelled_range():
    # KIVI (arXiv:2402.02750) abstract: 2-bit KV (group 32, 128-token fp16 residual) gives 2.6x less
    # peak memory including weights and up to 4x larger batches, Llama-2-7B on one A100-80GB. The
    # abstract does not give the lengths; both ratios depend on how much of the sequence the fp16
    # residual covers. For Llama-2-7B, from a short chat turn (160 + 338 tokens, where the residual
    # is 26% of the cache: model 2.0x memory, 2.5x batch) to its full 4K context (2.9x, 4.7x), the
    # model brackets both claims. Memory is compared at the full-attention maximum batch.
    kivi = [{"name": "kv_quant", "bits": 2, "group_size": 32, "residual_tokens": 128}]

    def ratios(prompt, output):
        base = dict(model="llama-2-7b", hardware=A100)
        w = wl(prompt, output, prefill_chunk_tokens=512)
        dense_max = one([], workload=w, **base)[1]["max_batch"]
        kivi_max = one(kivi, workload=w, **base)[1]["max_batch"]
        at_max = {**w, "batch": dense_max}
        dense_mem = one([], workload=at_max, **base)[1]["memory"]["total_bytes"]
        kivi_mem = one(kivi, workload=at_max, **base)[1]["memory"]["total_bytes"]
        return dense_mem / kivi_mem, kivi_max / dense_max

    short, full = ratios(160, 338), ratios(3584, 512)
    assert short[0] < 2.6 < full[0]
    assert short[1] < 4 < full[1]


def test_h2o_twenty_percent_budget_cuts_kv_memory_five_times():
    # H2O (arXiv:2306.14048): a 20% heavy-hitter budget keeps one token in five: 5x less KV memory.
    # (The paper's throughput claims are for offloading systems on OPT, not modelled here.)
    C = 5000
    dense = kv_bytes([], C - 256, 256, model="llama-2-7b")
    h2o = kv_bytes([{"name": "h2o", "budget_tokens": C // 5}], C - 256, 256, model="llama-2-7b")
    assert dense / h2o == 5.0


def test_shadowkv_prefill_attention_runs_once_over_the_real_heads():
    # ShadowKV prefills with full attention (arXiv:2410.21465 §4): its helper head groups (factors,
    # landmarks, outliers, host values) account storage only, never a second prefill.
    work = wl(65536, 2, prefill_chunk_tokens=8192)
    dense, _ = one([], workload=work, hardware="a100-80gb-sxm")
    shadow, _ = one([{"name": "shadowkv"}], workload=work, hardware="a100-80gb-sxm")
    attn = {
        name: [o for o in ops(res) if o["kind"] == "attention_prefill"]
        for name, res in (("dense", dense), ("shadow", shadow))
    }
    assert len(attn["shadow"]) == 1
    for key in ("flops", "bytes", "time_s"):
        assert attn["shadow"][0][key] == pytest.approx(attn["dense"][0][key], rel=1e-12)
    extra = {o["name"] for o in ops(shadow)} - {o["name"] for o in ops(dense)}
    assert extra == {"attention_sparse", "landmarks", "key_svd", "value_offload"}


STACKS = [
    {"name": "kv_quant", "bits": 4},
    {"name": "streaming_llm", "window_tokens": 4096},
    {"name": "h2o", "budget_tokens": 4096},
    {"name": "snapkv", "budget_tokens": 4096},
    {"name": "pyramidkv", "budget_tokens": 4096},
    {"name": "duo_attention", "retrieval_head_fraction": 0.5},
    {"name": "quest", "token_budget": 4096},
    {"name": "lserve", "streaming_head_fraction": 0.5, "token_budget": 4096},
    {"name": "shadowkv"},
    {"name": "kv_offload", "resident_fraction": 0.25},
    {"name": "minference", "density": 0.1},
    {"name": "block_sparse_prefill", "density": 0.3},
    {"name": "weight_quant", "format": "w8a8"},
    {"name": "weight_offload", "resident_fraction": 0.5},
    {"name": "context_extension", "kind": "yarn", "factor": 2},
]


@pytest.mark.parametrize("method", STACKS, ids=lambda m: m["name"])
def test_no_method_computes_more_prefill_attention_than_dense(method):
    # Invariant: a method may skip causal pairs or heads in prefill, never add to the attention
    # itself (its own extra ops, such as SnapKV's observation-window vote, have their own names).
    work = wl(32768, 2, batch=2)
    dense_ops = ops(one([], workload=work)[0])
    method_ops = ops(one([method], workload=work)[0])
    flops = [
        sum(o["flops"] for o in t if o["kind"] == "attention_prefill" and o["name"].startswith("attention"))
        for t in (dense_ops, method_ops)
    ]
    assert flops[1] <= flops[0] * (1 + 1e-12)


def test_kv_plan_holds_kv_policy_only_and_extras_are_named():
    # KVPlan says what happens to the KV cache; a method's own work is a named ExtraOp in the stack
    # plan's RunExtras (built by a named function from bound parameters, never a lambda).
    from dataclasses import fields

    from roofline.simulator.kvplan import KVPlan
    from roofline.simulator.methods import apply_stack, parse_methods
    from roofline.simulator.runplan import ExtraOp, StackPlan

    kv_fields = {f.name for f in fields(KVPlan)}
    assert not kv_fields & {"extra_prefill", "extra_decode", "extra_prefill_once", "agent", "host_overlap"}
    specs = [{"name": "snapkv", "budget_tokens": 1024}, {"name": "quest", "token_budget": 2048}]
    methods, problems = parse_methods(specs, "t")
    assert not problems
    from roofline.models import load_model

    _, _, _, plan, _ = apply_stack(methods, load_model("llama-3.1-8b"), None, None)
    assert isinstance(plan, StackPlan) and isinstance(plan.kv, KVPlan)
    assert [(op.name, op.when) for op in plan.extras.ops] == [
        ("snapkv_vote", "prefill"),
        ("quest_page_select", "decode"),
    ]
    assert all(isinstance(op, ExtraOp) and op.build.__name__ != "<lambda>" for op in plan.extras.ops)
