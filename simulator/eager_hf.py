"""HuggingFace transformers' own modelling code run eagerly (`runtime.framework: transformers`): the
work it does beyond the fused kernels the serving engines (and `hf`, an eager stack of fused
kernels) launch, and the host time of launching it op by op.

Counted from transformers' Llama modelling code (src/transformers/models/llama/modeling_llama.py,
v4.40 to v4.57; Mistral, Qwen2, Qwen3 and most decoder-only models are copies of it, marked
`# Copied from transformers.models.llama`) and its default cache (src/transformers/cache_utils.py,
`DynamicCache`). With a 16-bit residual stream of `rb` = 2 bytes per element:

* RMSNorm (`LlamaRMSNorm.forward`): `to(float32)`, `pow(2)`, `mean(-1)`, `+ eps`, `rsqrt`, the
  product, `to(input_dtype)` and the weight's product: 8 kernels, each over the whole activation
  but the mean's output and the rsqrt: rb + 4 (upcast), 8 (pow), 4 (mean), 8 (product),
  4 + rb (downcast), 2 rb (weight) = 28 + 4 rb = 36 bytes per element, where one fused kernel
  reads and writes 2 rb = 4.
  Qwen3's and Gemma 3's q/k norms (`q_norm`, `k_norm` over each head) and Gemma 2/3's norms
  after attention and after the MLP are the same RMSNorm (`qk_norm`, `sandwich_norm`). Gemma's
  (`GemmaRMSNorm`) multiplies by `1 + weight` in float32 and then downcasts: 10 kernels, 32 + 4 rb
  = 40 bytes per element.
* RoPE (`apply_rotary_pos_emb` with `rotate_half`), for q and for k apart: `x * cos` (2 rb),
  `-x2` over half the head (rb), `cat((-x2, x1))` (2 rb), `* sin` (2 rb), the sum (3 rb): 5
  kernels and 10 rb = 20 bytes per element of q and of k (the serving engines rotate q and k in one
  kernel, or inside attention: 4 rb per element, which their ops leave out).
* The MLP (`LlamaMLP`): `gate_proj` and `up_proj` are two GEMMs, then `act_fn` (2 rb) and the
  product (3 rb): 2 kernels and 5 rb = 10 bytes per intermediate element, where a fused SiLU-and-
  multiply reads the two halves and writes one (3 rb).
* `q_proj`, `k_proj`, `v_proj`: three GEMMs where the engines run one.
* MoE blocks (`MixtralSparseMoeBlock`, `Qwen2MoeSparseMoeBlock`, `Qwen3MoeSparseMoeBlock`) route in
  11 kernels (softmax, top-k, the weights' renormalisation and cast, the output's zeros, the
  one-hot expert mask and the hit experts' `nonzero`) and then loop in Python over the experts that
  any token chose: per expert `torch.where` on its mask, the tokens' gather, its MLP (gate and up
  GEMMs, the activation and product, the down GEMM), the routing weights' gather and product and
  `index_add_` into the output: 11 kernels per hit expert (`EXPERT_LOOP_KERNELS`), where a fused-MoE
  kernel launches a few for all of them. (Each `torch.where` also waits for the GPU; the host-bound
  steps this matters for are priced by the kernels' dispatch either way.)
* `DynamicCache.update` appends a layer's new keys and values with `torch.cat`: every pass reads
  the layer's whole cache and writes it again one token longer (2 kernels), so a decode step moves
  twice the cache's bytes beside the attention's own read of it; a prefill with an empty cache
  copies the new K and V once. A static cache (`StaticCache`: `runtime.cache_implementation:
  static`, and by default under `runtime.cuda_graphs`, whose captured graphs need one) is
  preallocated and written in place instead (`index_copy_` of the pass's new keys and values, 2
  kernels): no copy of the cache (`static_write_op`).
* `repeat_kv` (the SDPA and eager attention paths, `attn_implementation` "sdpa", transformers'
  default): before PyTorch's `scaled_dot_product_attention`, `repeat_kv` expands the layer's keys
  and values to every query head and `reshape` copies them (2 kernels: read the cache once, write
  `groups` = query heads / KV heads copies of it); the attention then reads the copies. A decode
  kernel reads a grouped cache once for its heads (FlashAttention's grouped heads, vLLM's paged
  kernels): over the copies it reads `groups` times as much, so a decode step moves 2 x groups
  times the layer's cache beside the attention's one read (Llama 3 8B, 4 query heads per KV head:
  8x). A prefill pass's FlashAttention tiles read every head's keys and values anyway, so there it
  costs the copy, (1 + groups) x the K and V. Every release from v4.36 (SDPA the default) to v4.51
  does this for every grouped-query model (LlamaSdpaAttention.forward, then
  integrations/sdpa_attention.py `sdpa_attention_forward`); from v4.52 with PyTorch >= 2.5 SDPA
  takes the grouped heads itself (`enable_gqa`, `use_gqa_in_sdpa`) unless an attention mask is
  passed (a padded batch, a static cache): `attn_implementation` "sdpa_gqa", which copies too
  under a static cache (whose mask hides its unfilled slots). `flash_attention_2` (flash-attn's
  kernels) reads the grouped cache directly.
  At a step's peak the copies are alive beside the cache: `groups` x one layer's K and V per
  sequence (the repeated keys and values), or half a layer (`torch.cat`'s new keys, then values,
  beside the old ones) where nothing is repeated (`step_copies`).
* SDPA over a StaticCache (`attn_implementation` "sdpa" or "sdpa_gqa" with a static cache:
  `masks_static_buffer`). `generate` preallocates the cache for the whole generation (its
  `max_cache_len` is the prompt plus the new tokens), `StaticCache.update` hands attention the whole
  preallocated K and V, and the model builds a 4D additive mask over it: `_update_causal_mask` skips
  SDPA's `is_causal` shortcut for a static cache and sizes the mask to the cache's maximum length
  (`target_length = past_key_values.get_max_length()`, later `get_max_cache_shape()`), in the model's
  16-bit dtype, expanded and cloned to (batch, 1, query rows, buffer) when generate passes its 2D
  mask (v4.38 to v4.52; masking_utils' boolean mask from v4.53, one byte, is not told apart). With a
  mask SDPA runs PyTorch's memory-efficient kernel, which has no notion of which pairs the mask
  hides: a prefill computes all P x (P + O) (query, key) pairs of the buffer instead of the causal
  P^2 / 2, and every decode step attends all P + O slots however many are filled (`Shape.buffer`);
  `repeat_kv` copies the whole buffer; the mask (MASK_BYTES per element) is read by every head's
  tiles and held through the pass. The FlashAttention curve stands in for that kernel's own
  efficiency, which is not measured here. `flash_attention_2` takes no 4D mask and attends what is
  filled.

Host dispatch. Eager PyTorch launches each kernel from Python: the module calls, the dispatcher and
the launch take the CPU longer than a small kernel takes the GPU, and the GPU waits unless earlier
work keeps it busy (the CPU runs ahead: a pass takes the longer of the two). `DISPATCH_S` = 23 us
per kernel, derived from gpt-fast's eager baseline (PyTorch blog, "Accelerating Generative AI with
PyTorch II: GPT, Fast", 2023-11-30: Llama-2-7B at batch 1 on an A100-80GB, 25.5 tokens/s eager,
39.2 ms per token): its model.py launches 52 kernels per layer (RMSNorm 8 twice, the fused QKV
GEMM, RoPE 9 each for q and k, two cache writes, two `repeat_interleave` copies, attention 2, the
output transpose copy, `wo`, two residual adds, the MLP's 5) and about 25 around them (masks,
embedding, final norm, LM head, sampling), 1,689 per token: 39.2 ms / 1,689 = 23 us, the step
being host-bound (its kernels' roofline is 7 ms). Transformers' Llama layer launches 42 (44 with
grouped-query attention's `repeat_kv` on the SDPA path); the ops here count 40 of them (RMSNorm 8
twice, q/k/v 3, RoPE 10, the cache's 2, attention 1, `o_proj` 1, the MLP's 5, two residual adds),
leaving out the attention call's second kernel and the copy that makes its output contiguous;
`repeat_kv`'s 2 are counted where it runs.
"""

from __future__ import annotations

from dataclasses import replace

from roofline.simulator.model import Attention
from roofline.simulator.opinputs import memory_op, per_rank
from roofline.simulator.ops import Op

DISPATCH_S = 23e-6  # host time per eagerly launched kernel (module docstring)
# Bytes per element of the attention mask over a StaticCache: the model's 16-bit dtype filled with
# its minimum (module docstring)
MASK_BYTES = 2.0

# Kernels each op of the fused roofline runs as in transformers' eager code (module docstring)
UNFUSED_KERNELS = {
    "input_norm": 8.0,
    "post_attn_norm": 8.0,
    "sandwich_norm": 8.0,
    "qk_norm": 8.0,  # per fused kernel: q's and k's norms, 16 kernels
    "final_norm": 8.0,
    "qkv_proj": 3.0,
    "ffn_up": 2.0,
    "ffn_act": 2.0,
}
NORMS = ("input_norm", "post_attn_norm", "sandwich_norm", "qk_norm", "final_norm")
# Gemma's RMSNorm (GemmaRMSNorm, also Gemma 2's and 3's: ModelArch.gemma) applies its weight as
# `1 + weight` in float32 before the downcast: `float()` of the weight and the `1.0 +` launch two
# kernels more, and the weight's product moves 8 bytes per element where Llama's (after the
# downcast) moves 2 rb
GEMMA_NORM_KERNELS = 10.0
ROPE_KERNELS = 10.0  # 5 for q, 5 for k
CACHE_COPY_KERNELS = 2.0  # torch.cat of K, of V
REPEAT_KV_KERNELS = 2.0  # repeat_kv's reshape copy of K, of V

# runtime.attn_implementation's null (scenario_schema.ATTN_IMPLEMENTATIONS; module docstring)
DEFAULT_ATTN_IMPLEMENTATION = "sdpa"  # transformers' default; v4.36-v4.51 repeat the KV heads there


def repeats_kv(attn_implementation, static_cache: bool = False) -> bool:
    """Whether transformers' attention under `attn_implementation` (None: the default) copies the
    KV heads to every query head first (`repeat_kv`, module docstring): on the `sdpa` path always,
    on `sdpa_gqa` under a static cache too (`static_cache`: `Layout.static_cache`), which passes
    SDPA an attention mask over its unfilled slots."""
    path = attn_implementation or DEFAULT_ATTN_IMPLEMENTATION
    return path == "sdpa" or (path == "sdpa_gqa" and static_cache)


def masks_static_buffer(attn_implementation, static_cache: bool) -> bool:
    """Whether transformers' attention runs SDPA over a StaticCache's whole buffer under an attention
    mask (module docstring): the `sdpa` and `sdpa_gqa` paths with a static cache; flash-attn's
    (`flash_attention_2`) takes no 4D mask."""
    path = attn_implementation or DEFAULT_ATTN_IMPLEMENTATION
    return static_cache and path in ("sdpa", "sdpa_gqa")


def kv_groups(mixer, tp) -> float:
    """Query heads per KV head of an attention mixer on one of `tp` GPUs (1: nothing to repeat)."""
    return per_rank(mixer.num_heads, tp) / per_rank(mixer.num_kv_heads, tp)


REPEAT_KV_NOTE = (
    "transformers' default attention (runtime.attn_implementation null = sdpa) copies each layer's KV "
    "heads to every query head first (repeat_kv: transformers v4.36-v4.51, later releases when an "
    "attention mask is passed), which a grouped-query model's decode pays in HBM traffic and memory; "
    "sdpa_gqa (v4.52+ on PyTorch 2.5+, no mask) and flash_attention_2 read the grouped cache"
)


# kv_quant under `transformers`: the method prices KIVI's fused kernels, not transformers' own
# QuantizedCache (cache_utils.py, cache_implementation="quantized": each update dequantises the
# layer's whole quantised cache, concatenates it with the full-precision residual and returns 16-bit
# keys and values; every residual_length tokens it quantises everything again)
QUANTIZED_CACHE_WARNING = (
    "kv_quant is priced as KIVI-style fused kernels that read the quantised cache; transformers' own "
    "QuantizedCache (cache_implementation='quantized') dequantises each layer's whole cache to 16 bits "
    "at every step instead, saving memory but decoding slower than its 16-bit cache: that path is not "
    "priced, so under runtime.framework: transformers the decode time here is a lower bound"
)


def max_kv_groups(model, tp) -> float:
    """The most query heads per KV head among `model`'s attention layers on one of `tp` GPUs (1:
    `repeat_kv` would copy nothing, as for MHA)."""
    groups = [kv_groups(g.mixer, tp) for g in model.layer_groups if isinstance(g.mixer, Attention)]
    return max(groups, default=1.0)


def step_copies(mixer, tp, repeat_kv: bool, static_cache: bool = False) -> float:
    """Copies of one layer's cache, in layers per sequence, that a step of transformers' code holds
    beside the cache at its peak (module docstring): `kv_groups` under `repeat_kv`, else half a
    layer (`torch.cat`'s new keys or values beside the old), none where a static cache is written
    in place; none for MLA (its own cache) and layers without a KV cache."""
    if not isinstance(mixer, Attention):
        return 0.0
    groups = kv_groups(mixer, tp)
    if repeat_kv and groups > 1:
        return groups
    return 0.0 if static_cache else 0.5


ROUTING_KERNELS = 11.0  # kernels of the MoE block's routing beyond the router GEMM (module docstring)
# kernels per hit expert of transformers' expert loop, by the op that does the work (module docstring)
EXPERT_LOOP_KERNELS = {"expert_up": 2.0, "expert_act": 2.0, "expert_down": 1.0, "expert_combine": 6.0}


def expert_loop(ops: list, touched) -> list:
    """A MoE block's `ops` as transformers' Python loop runs them: the routing's kernels beside the
    router GEMM, and EXPERT_LOOP_KERNELS for each of the `touched` experts (per point)."""
    out = []
    for op in ops:
        if op.name == "router":
            op = replace(op, kernels=op.kernels + ROUTING_KERNELS)
        elif op.name in EXPERT_LOOP_KERNELS:
            op = replace(op, kernels=EXPERT_LOOP_KERNELS[op.name] * touched)
        out.append(op)
    return out


def norm_bytes_per_element(rb, gemma: bool = False) -> float:
    """HBM bytes per activation element of transformers' RMSNorm (module docstring); Gemma's moves
    4 more (ModelArch.gemma)."""
    return (32.0 if gemma else 28.0) + 4.0 * rb


def unfuse(ops: list, rb, gemma: bool = False) -> list:
    """`ops` of one pass as transformers' eager code runs them: its norms and SwiGLU product read and
    write more (per element: `norm_bytes_per_element`, 5 rb for the product against the fused 3 rb),
    and those and the split projections launch more kernels (UNFUSED_KERNELS; a Gemma model's
    norms GEMMA_NORM_KERNELS)."""
    out = []
    for op in ops:
        kernels = UNFUSED_KERNELS.get(op.name)
        if kernels is None:
            out.append(op)
            continue
        scale = 1.0
        if op.name in NORMS:  # the fused norm reads and writes 2 rb per element
            scale = norm_bytes_per_element(rb, gemma) / (2.0 * rb)
            kernels = GEMMA_NORM_KERNELS if gemma else kernels
        elif op.name == "ffn_act":  # the fused product reads two halves and writes one: 3 rb
            scale = 5.0 / 3.0
        out.append(replace(op, bytes=op.bytes * scale, kernels=op.kernels * kernels))
    return out


def rope_op(ctx, elements_per_token: float, count) -> Op:
    """transformers' RoPE over q and k of one pass: `elements_per_token` (q and k elements of a
    token on this GPU) at 10 rb bytes each, 10 kernels per layer."""
    return Op(
        name="rope",
        kind="elementwise",
        flops=3.0 * ctx.shape.rows * elements_per_token,
        bytes=10.0 * ctx.fmt.rb * ctx.shape.rows * elements_per_token,
        compute_rate=ctx.rates.vector_rate,
        memory_rate=ctx.rates.mem_rate,
        count=count * ctx.shape.passes,
        kernels=ROPE_KERNELS,
    )


def repeat_kv_op(ctx, cache_bytes, groups, count, kernels=REPEAT_KV_KERNELS) -> Op:
    """`repeat_kv` of one layer over `cache_bytes` (its K and V after the append, as
    `cache_copy_op`'s) into `groups` copies: read once, written `groups` times; in decode the
    attention's extra reads of the copies (groups - 1 times the cache) are counted here too (module
    docstring)."""
    moved = 1.0 + groups
    if ctx.shape.phase == "decode":
        moved = moved + (groups - 1.0)
    return memory_op(ctx, "repeat_kv", cache_bytes * moved, count, kernels)


def static_write_op(ctx, new_bytes, count, kernels=CACHE_COPY_KERNELS) -> Op:
    """`StaticCache.update` of one layer (`Layout.static_cache`): `index_copy_` of the pass's new
    keys and values, `new_bytes`, into the preallocated cache (read and written); the cache itself
    is not copied."""
    return memory_op(ctx, "kv_cache_write", new_bytes * 2.0, count, kernels)


def cache_copy_op(ctx, cache_bytes, count, kernels=CACHE_COPY_KERNELS) -> Op:
    """`DynamicCache.update`'s `torch.cat` of one layer: reads `cache_bytes` (the layer's cache
    after the append: a KVLinear in the KV length in decode) and writes them again."""
    return memory_op(ctx, "kv_cache_copy", cache_bytes * 2.0, count, kernels)
