"""config.json readers for the newer families: Qwen3 (dense and MoE) and Qwen2-MoE, GPT-OSS, Gemma-3,
Llama-4, Mamba, Mamba-2 and Qwen3-Next. Each reads its family's fields as the family's transformers
modeling file uses them (cited per reader); where a published config omits a field and transformers
fills in its config-class default, that default is applied from a named table, never guessed.
Dispatch, the older families and text_config unwrapping are `hf_config`.
"""

from __future__ import annotations

from roofline.simulator.hf_fields import (
    REQUIRED,
    expert_count,
    group,
    int_list,
    layer_types,
    max_context,
    moe_ffn,
    need,
    rank_or_auto,
    refuse_unread,
    to_int,
)
from roofline.simulator.model import (
    Attention,
    DenseFFN,
    GatedDeltaNet,
    Mamba,
    Mamba2,
    ModelArch,
    ModelConfigError,
)

_FULL_OR_SLIDING = ("full_attention", "sliding_attention")
_QWEN_MOE_FIELDS = (
    "num_experts",
    "num_local_experts",
    "moe_intermediate_size",
    "shared_expert_intermediate_size",
)

# transformers `Gemma3TextConfig.__init__` defaults for the fields google/gemma-3-*'s published
# text_config leaves out (e.g. gemma-3-12b omits head_dim and vocab_size).
GEMMA3_TEXT_DEFAULTS = {
    "vocab_size": 262208,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 256,
    "sliding_window": 4096,
    "sliding_window_pattern": 6,
    "max_position_embeddings": 131072,
    "tie_word_embeddings": True,
}


def _arch(cfg: dict, name: str, layers: list, tie_default: bool, family: str, norms: int = 2) -> ModelArch:
    tie = bool(cfg.get("tie_word_embeddings", tie_default))
    return ModelArch(
        name, cfg["hidden_size"], cfg["vocab_size"], group(layers, norms), tie, max_context(cfg), family
    )


def _window(cfg: dict, types, source: str):
    if types is not None and "sliding_attention" in types:
        if not cfg.get("sliding_window"):
            raise ModelConfigError(f"{source}: 'layer_types' has sliding layers but no 'sliding_window'")
        return cfg["sliding_window"]
    return None


def _qwen_attention_types(cfg: dict, n: int, source: str):
    types = layer_types(cfg, n, source, _FULL_OR_SLIDING)
    if types is None and cfg.get("use_sliding_window"):
        raise ModelConfigError(
            f"{source}: field 'use_sliding_window' is true but there is no 'layer_types' saying which "
            f"layers slide; refusing rather than guessing from max_window_layers"
        )
    return types or ["full_attention"] * n


def _qwen_moe_layers(cfg: dict, n: int, source: str, moe, dense) -> list:
    """Qwen2/3-MoE layer i is MoE iff i is not in mlp_only_layers and (i + 1) % decoder_sparse_step
    == 0 (transformers `Qwen3MoeDecoderLayer.__init__`); other layers are dense of intermediate_size."""
    mlp_only = set(int_list(cfg, "mlp_only_layers", source))
    if any(not 0 <= i < n for i in mlp_only):
        raise ModelConfigError(f"{source}: field 'mlp_only_layers' names layers outside 0..{n - 1}")
    step = to_int(cfg, "decoder_sparse_step", source, 1)
    return [moe if (moe and i not in mlp_only and (i + 1) % step == 0) else dense for i in range(n)]


def qwen3(cfg: dict, name: str, source: str) -> ModelArch:
    """Qwen3 dense (transformers `Qwen3Attention`: q/k RMSNorm over head_dim, bias per attention_bias)."""
    need(cfg, REQUIRED + ("intermediate_size", "head_dim", "num_key_value_heads"), "qwen3", source)
    refuse_unread(cfg, (), "qwen3 (dense)", source)
    n = cfg["num_hidden_layers"]
    types = _qwen_attention_types(cfg, n, source)
    window = _window(cfg, types, source)
    bias = bool(cfg.get("attention_bias", False))
    H, kv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    ffn = DenseFFN(cfg["intermediate_size"])
    mixers = {
        t: Attention(
            H, kv, hd, window=window if t == "sliding_attention" else None, qkv_bias=bias, qk_norm=True
        )
        for t in _FULL_OR_SLIDING
    }
    return _arch(cfg, name, [(mixers[t], ffn) for t in types], False, "qwen3")


def qwen_moe(cfg: dict, name: str, source: str) -> ModelArch:
    """Qwen2-MoE / Qwen3-MoE. Qwen2-MoE: q/k/v bias hard-wired, a shared expert of
    shared_expert_intermediate_size behind a hidden -> 1 sigmoid gate (`Qwen2MoeSparseMoeBlock`).
    Qwen3-MoE: q/k RMSNorm, no shared expert (`Qwen3MoeSparseMoeBlock`)."""
    mt = str(cfg.get("model_type", "")).lower()
    qwen3_style = mt != "qwen2_moe"
    keys = REQUIRED + ("intermediate_size",) + (("head_dim",) if qwen3_style else ())
    need(cfg, keys, mt or "qwen moe", source)
    refuse_unread(cfg, _QWEN_MOE_FIELDS, mt or "qwen moe", source)
    n, h, H = cfg["num_hidden_layers"], cfg["hidden_size"], cfg["num_attention_heads"]
    kv = cfg.get("num_key_value_heads") or H
    hd = cfg.get("head_dim") or h // H
    shared = cfg.get("shared_expert_intermediate_size") or 0
    if qwen3_style and shared:
        raise ModelConfigError(f"{source}: field 'shared_expert_intermediate_size' in a {mt} config")
    moe = (
        moe_ffn(cfg, source, "moe_intermediate_size", shared, shared_gate=bool(shared))
        if expert_count(cfg, source)
        else None
    )
    dense = DenseFFN(cfg["intermediate_size"])
    types = _qwen_attention_types(cfg, n, source)
    window = _window(cfg, types, source)
    bias = bool(cfg.get("attention_bias", False)) or not qwen3_style
    mixers = {
        t: Attention(
            H, kv, hd, window=window if t == "sliding_attention" else None, qkv_bias=bias, qk_norm=qwen3_style
        )
        for t in _FULL_OR_SLIDING
    }
    ffns = _qwen_moe_layers(cfg, n, source, moe, dense)
    return _arch(cfg, name, [(mixers[t], f) for t, f in zip(types, ffns)], False, mt or "qwen_moe")


def gpt_oss(cfg: dict, name: str, source: str) -> ModelArch:
    """GPT-OSS (OpenAI gpt-oss model card, 2025; transformers `GptOssAttention`, `GptOssMLP`):
    sliding (window sliding_window) and full layers per `layer_types` (default: alternating, sliding
    first, `GptOssConfig`), q/k/v/o biases (attention_bias), a learned sink logit per head, and on
    every layer num_local_experts experts of width intermediate_size with biases, plus a biased router."""
    need(cfg, REQUIRED + ("intermediate_size", "head_dim", "num_key_value_heads"), "gpt_oss", source)
    refuse_unread(cfg, ("num_local_experts",), "gpt_oss", source)
    n = cfg["num_hidden_layers"]
    types = layer_types(cfg, n, source, _FULL_OR_SLIDING)
    if types is None:
        types = ["sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(n)]
    window = _window(cfg, types, source)
    bias = bool(cfg.get("attention_bias", False))
    H, kv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    mixers = {
        t: Attention(
            H,
            kv,
            hd,
            window=window if t == "sliding_attention" else None,
            qkv_bias=bias,
            o_bias=bias,
            sinks=True,
        )
        for t in _FULL_OR_SLIDING
    }
    moe = moe_ffn(cfg, source, "intermediate_size", bias=True)
    return _arch(cfg, name, [(mixers[t], moe) for t in types], False, "gpt_oss")


def gemma3(cfg: dict, name: str, source: str) -> ModelArch:
    """Gemma-3 text decoder (Gemma 3 technical report, arXiv:2503.19786 §2; transformers
    `Gemma3TextConfig`, `Gemma3DecoderLayer`): 5 local (sliding_window) : 1 global layers — layer i
    is global iff (i + 1) % sliding_window_pattern == 0, unless `layer_types` lists them; q/k RMSNorm
    over head_dim; four RMSNorms per layer (pre/post attention and FFN); GeGLU FFN; tied embeddings.
    Missing fields take `GEMMA3_TEXT_DEFAULTS` (the config class's defaults)."""
    need(cfg, ("hidden_size", "num_hidden_layers", "intermediate_size"), "gemma3", source)
    refuse_unread(cfg, (), "gemma3", source)
    cfg = {**GEMMA3_TEXT_DEFAULTS, **{k: v for k, v in cfg.items() if v is not None}}
    n = cfg["num_hidden_layers"]
    types = layer_types(cfg, n, source, _FULL_OR_SLIDING)
    if types is None:
        p = cfg["sliding_window_pattern"]
        types = ["sliding_attention" if (i + 1) % p else "full_attention" for i in range(n)]
    window = _window(cfg, types, source)
    bias = bool(cfg.get("attention_bias", False))
    H, kv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    mixers = {
        t: Attention(
            H, kv, hd, window=window if t == "sliding_attention" else None, qkv_bias=bias, qk_norm=True
        )
        for t in _FULL_OR_SLIDING
    }
    ffn = DenseFFN(cfg["intermediate_size"])
    return _arch(cfg, name, [(mixers[t], ffn) for t in types], True, "gemma3", norms=4)


def llama4(cfg: dict, name: str, source: str) -> ModelArch:
    """Llama-4 text decoder (transformers `Llama4TextConfig`, `Llama4TextDecoderLayer`).

    Attention: layers that use RoPE (`no_rope_layers[i] == 1`; empty list: every
    no_rope_layer_interval-th layer, default 4, is NoPE) attend within chunks of
    attention_chunk_size tokens; NoPE layers attend globally. `layer_types` (chunked_attention /
    full_attention) overrides when present. The chunked layers are costed as a sliding window of the
    chunk size: the cache never holds more than one chunk, so that is the exact storage upper bound;
    attention FLOPs are overestimated (a chunk's tokens attend to chunk/2 keys on average, not chunk).
    The QK L2 norm (use_qk_norm) has no weights.

    FFN: MoE on `moe_layers` (default every interleave_moe_layer_step-th layer, from step - 1):
    num_local_experts routed experts of intermediate_size, top num_experts_per_tok, plus one shared
    expert of intermediate_size; other layers are dense of intermediate_size_mlp.
    """
    keys = REQUIRED + ("intermediate_size", "intermediate_size_mlp", "head_dim", "num_key_value_heads")
    need(cfg, keys, "llama4", source)
    refuse_unread(cfg, ("num_local_experts",), "llama4", source)
    n = cfg["num_hidden_layers"]
    H, kv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    chunk = cfg.get("attention_chunk_size")
    types = layer_types(cfg, n, source, ("chunked_attention", "full_attention"))
    if types is None:
        rope = int_list(cfg, "no_rope_layers", source)
        if not rope:
            interval = to_int(cfg, "no_rope_layer_interval", source, 4)
            rope = [int((i + 1) % interval != 0) for i in range(n)]
        if len(rope) != n:
            raise ModelConfigError(f"{source}: field 'no_rope_layers' has {len(rope)} entries for {n} layers")
        types = ["chunked_attention" if (r and chunk) else "full_attention" for r in rope]
    if "chunked_attention" in types and not chunk:
        raise ModelConfigError(f"{source}: chunked layers but no 'attention_chunk_size'")
    bias = bool(cfg.get("attention_bias", False))
    local = Attention(H, kv, hd, window=chunk, qkv_bias=bias, chunked=True)
    glob = Attention(H, kv, hd, qkv_bias=bias)
    step = to_int(cfg, "interleave_moe_layer_step", source, 1)
    moe_layers = set(int_list(cfg, "moe_layers", source, range(step - 1, n, step)))
    moe = None
    if expert_count(cfg, source):
        moe = moe_ffn(cfg, source, "intermediate_size", cfg["intermediate_size"])
    dense = DenseFFN(cfg["intermediate_size_mlp"])
    layers = [
        (local if t == "chunked_attention" else glob, moe if (moe and i in moe_layers) else dense)
        for i, t in enumerate(types)
    ]
    return _arch(cfg, name, layers, False, "llama4")


def mamba(cfg: dict, name: str, source: str) -> ModelArch:
    """Pure Mamba-1 (transformers `MambaConfig`, `MambaBlock`: one RMSNorm and the mixer per layer,
    no FFN). d_inner = intermediate_size (= expand * hidden_size); time_step_rank 'auto' is
    ceil(hidden / 16); tie_word_embeddings defaults to true in `MambaConfig`."""
    need(
        cfg, ("hidden_size", "num_hidden_layers", "vocab_size", "state_size", "conv_kernel"), "mamba", source
    )
    refuse_unread(cfg, (), "mamba", source)
    h = cfg["hidden_size"]
    d_inner = cfg.get("intermediate_size") or (cfg["expand"] * h if cfg.get("expand") else None)
    if d_inner is None:
        raise ModelConfigError(f"{source}: a mamba config needs 'intermediate_size' or 'expand'")
    dt = rank_or_auto(cfg, "time_step_rank", h, source)
    mixer = Mamba(
        d_inner,
        cfg["state_size"],
        cfg["conv_kernel"],
        dt,
        conv_bias=bool(cfg.get("use_conv_bias", True)),
        proj_bias=bool(cfg.get("use_bias", False)),
    )
    return _arch(cfg, name, [(mixer, None)] * cfg["num_hidden_layers"], True, "mamba", norms=1)


def mamba2(cfg: dict, name: str, source: str) -> ModelArch:
    """Pure Mamba-2 (transformers `Mamba2Config`, `Mamba2Block`: one RMSNorm and the mixer per layer,
    no FFN); num_heads * head_dim must equal expand * hidden_size when expand is given."""
    keys = ("hidden_size", "num_hidden_layers", "vocab_size", "num_heads", "head_dim", "state_size")
    need(cfg, keys + ("n_groups", "conv_kernel"), "mamba2", source)
    refuse_unread(cfg, (), "mamba2", source)
    d = cfg["num_heads"] * cfg["head_dim"]
    if cfg.get("expand") and cfg["expand"] * cfg["hidden_size"] != d:
        raise ModelConfigError(
            f"{source}: fields 'num_heads' x 'head_dim' ({d}) disagree with 'expand' x 'hidden_size'"
        )
    mixer = Mamba2(
        cfg["num_heads"],
        cfg["head_dim"],
        cfg["state_size"],
        cfg["n_groups"],
        cfg["conv_kernel"],
        chunk_size=to_int(cfg, "chunk_size", source, 256),
        conv_bias=bool(cfg.get("use_conv_bias", True)),
        proj_bias=bool(cfg.get("use_bias", False)),
    )
    return _arch(cfg, name, [(mixer, None)] * cfg["num_hidden_layers"], False, "mamba2", norms=1)


def qwen3_next(cfg: dict, name: str, source: str) -> ModelArch:
    """Qwen3-Next hybrid (transformers `Qwen3NextConfig`, `Qwen3NextDecoderLayer`): `layer_types`
    linear_attention (Gated DeltaNet) / full_attention (default: every full_attention_interval-th
    layer, 4, is full); full attention has q/k RMSNorm and a sigmoid output gate (q_proj is twice
    as wide); FFN as Qwen2-MoE (routed experts + a gated shared expert, mlp_only_layers,
    decoder_sparse_step)."""
    lin = ("linear_num_value_heads", "linear_num_key_heads", "linear_key_head_dim", "linear_value_head_dim")
    keys = REQUIRED + ("intermediate_size", "head_dim", "num_key_value_heads", "linear_conv_kernel_dim") + lin
    need(cfg, keys, "qwen3_next", source)
    refuse_unread(cfg, _QWEN_MOE_FIELDS, "qwen3_next", source)
    n = cfg["num_hidden_layers"]
    types = layer_types(cfg, n, source, ("linear_attention", "full_attention"))
    if types is None:
        k = to_int(cfg, "full_attention_interval", source, 4)
        types = ["full_attention" if (i + 1) % k == 0 else "linear_attention" for i in range(n)]
    bias = bool(cfg.get("attention_bias", False))
    H, kv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    full = Attention(H, kv, hd, qkv_bias=bias, qk_norm=True, output_gate=True)
    delta = GatedDeltaNet(
        cfg["linear_num_key_heads"],
        cfg["linear_num_value_heads"],
        cfg["linear_key_head_dim"],
        cfg["linear_value_head_dim"],
        cfg["linear_conv_kernel_dim"],
    )
    shared = cfg.get("shared_expert_intermediate_size") or 0
    moe = (
        moe_ffn(cfg, source, "moe_intermediate_size", shared, shared_gate=bool(shared))
        if expert_count(cfg, source)
        else None
    )
    ffns = _qwen_moe_layers(cfg, n, source, moe, DenseFFN(cfg["intermediate_size"]))
    layers = [((full if t == "full_attention" else delta), f) for t, f in zip(types, ffns)]
    return _arch(cfg, name, layers, False, "qwen3_next")
