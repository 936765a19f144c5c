"""Build a `ModelArch` from a Hugging Face config.json dict (already parsed; no file access here).

Families handled by their own field names: llama / mistral / mixtral / qwen2 / phi3 / yi (llama-like),
gemma2 (alternating local/global layers), chatglm (GLM-4), deepseek_v2/v3 (MLA + MoE), MiniMax-Text-01
(lightning attention hybrid + MoE) and jamba (Mamba/attention hybrid + MoE). Any other decoder with
llama-style field names is read as llama-like.
"""

from __future__ import annotations

import math

from roofline.simulator.model import (
    MLA,
    Attention,
    DenseFFN,
    LayerGroup,
    LinearAttention,
    Mamba,
    ModelArch,
    ModelConfigError,
    MoEFFN,
)

_REQUIRED = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")

# Shape fields that must be positive integers when present (null allowed where HF allows it).
_POSITIVE = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
    "intermediate_size", "vocab_size", "kv_channels", "ffn_hidden_size", "padded_vocab_size", "num_layers",
    "multi_query_group_num", "moe_intermediate_size", "n_routed_experts", "num_experts_per_tok",
    "num_local_experts", "num_experts", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
    "mamba_d_state", "mamba_d_conv", "mamba_expand", "attn_layer_period", "expert_layer_period",
    "moe_layer_freq", "sliding_window", "block_size", "max_position_embeddings", "seq_length",
)  # fmt: skip
# Fields that may be zero.
_NON_NEGATIVE = (
    "q_lora_rank",
    "n_shared_experts",
    "first_k_dense_replace",
    "attn_layer_offset",
    "expert_layer_offset",
    "shared_intermediate_size",
)


def _check_fields(cfg: dict, source: str) -> None:
    for keys, low in ((_POSITIVE, 1), (_NON_NEGATIVE, 0)):
        for key in keys:
            v = cfg.get(key)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                kind = "a positive integer" if low else "a non-negative integer"
                raise ModelConfigError(
                    f"{source}: field {key!r} must be {kind} (or absent), got {repr(v)[:60]}"
                )
    dt = cfg.get("mamba_dt_rank")
    if dt is not None and dt != "auto" and (isinstance(dt, bool) or not isinstance(dt, int) or dt < 1):
        raise ModelConfigError(
            f"{source}: field 'mamba_dt_rank' must be a positive integer or 'auto', got {repr(dt)[:60]}"
        )
    experts = cfg.get("num_local_experts") or cfg.get("n_routed_experts") or cfg.get("num_experts")
    top_k = cfg.get("num_experts_per_tok")
    if experts and top_k and top_k > experts:
        raise ModelConfigError(
            f"{source}: num_experts_per_tok ({top_k}) exceeds the number of experts ({experts})"
        )


def _need(cfg: dict, keys, family: str, source: str) -> None:
    missing = [k for k in keys if cfg.get(k) is None]
    if missing:
        raise ModelConfigError(
            f"{source}: not a decoder-only transformer config that roofline understands "
            f"(model_type {cfg.get('model_type')!r}): missing {', '.join(missing)}. "
            f"A {family} config needs: {', '.join(keys)}."
        )


def _int(cfg: dict, key: str, source: str, default=None) -> int:
    v = cfg.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ModelConfigError(f"{source}: field {key!r} must be a non-negative integer, got {v!r}")
    return v


def _group(layers: list) -> tuple:
    """Collapse a per-layer list of (mixer, ffn) into LayerGroups of identical consecutive kinds,
    then merge equal groups (order does not affect costs)."""
    counts: dict = {}
    for pair in layers:
        counts[pair] = counts.get(pair, 0) + 1
    return tuple(LayerGroup(m, f, n) for (m, f), n in counts.items())


def _max_context(cfg: dict) -> int:
    for key in ("max_position_embeddings", "seq_length", "max_sequence_length"):
        v = cfg.get(key)
        if isinstance(v, int) and v > 0:
            return v
    return 0


def _llama_like(cfg: dict, name: str, source: str) -> ModelArch:
    _need(cfg, _REQUIRED + ("intermediate_size",), "llama-like", source)
    h = _int(cfg, "hidden_size", source)
    H = _int(cfg, "num_attention_heads", source)
    kv = _int(cfg, "num_key_value_heads", source, H) or H
    hd = cfg.get("head_dim") or h // H
    mt = cfg.get("model_type", "")
    window = cfg.get("sliding_window")
    if mt == "qwen2" and not cfg.get("use_sliding_window", False):
        window = None
    if isinstance(window, int) and window >= _max_context(cfg) > 0:
        window = None  # a window no shorter than the context never binds
    bias = bool(cfg.get("attention_bias", False)) or mt == "qwen2"
    n = _int(cfg, "num_hidden_layers", source)
    if cfg.get("num_local_experts"):
        ffn = MoEFFN(cfg["num_local_experts"], cfg.get("num_experts_per_tok", 2), cfg["intermediate_size"])
    else:
        ffn = DenseFFN(_int(cfg, "intermediate_size", source))
    if mt == "gemma2":
        # Gemma 2 (arXiv:2408.00118): local sliding-window and global layers alternate, local first.
        local = Attention(H, kv, hd, window=window, qkv_bias=bias)
        glob = Attention(H, kv, hd, qkv_bias=bias)
        layers = [((local if i % 2 == 0 else glob), ffn) for i in range(n)]
        tie = cfg.get("tie_word_embeddings", True)
    else:
        layers = [(Attention(H, kv, hd, window=window, qkv_bias=bias), ffn)] * n
        tie = cfg.get("tie_word_embeddings", False)
    return ModelArch(
        name, h, _int(cfg, "vocab_size", source), _group(layers), bool(tie), _max_context(cfg), mt
    )


def _chatglm(cfg: dict, name: str, source: str) -> ModelArch:
    keys = ("hidden_size", "num_layers", "num_attention_heads", "ffn_hidden_size", "padded_vocab_size")
    _need(cfg, keys, "chatglm", source)
    h, H = cfg["hidden_size"], cfg["num_attention_heads"]
    kv = cfg.get("multi_query_group_num", H) if cfg.get("multi_query_attention") else H
    hd = cfg.get("kv_channels") or h // H
    attn = Attention(H, kv, hd, qkv_bias=bool(cfg.get("add_qkv_bias", False)))
    layers = [(attn, DenseFFN(cfg["ffn_hidden_size"]))] * cfg["num_layers"]
    ctx = cfg.get("seq_length") or _max_context(cfg)
    tie = cfg.get("tie_word_embeddings", False)
    return ModelArch(name, h, cfg["padded_vocab_size"], _group(layers), bool(tie), ctx, "chatglm")


def _deepseek(cfg: dict, name: str, source: str) -> ModelArch:
    keys = _REQUIRED + (
        "kv_lora_rank",
        "qk_nope_head_dim",
        "qk_rope_head_dim",
        "v_head_dim",
        "intermediate_size",
    )
    _need(cfg, keys, "deepseek (MLA)", source)
    h, n = cfg["hidden_size"], cfg["num_hidden_layers"]
    mla = MLA(
        cfg["num_attention_heads"],
        cfg.get("q_lora_rank") or 0,
        cfg["kv_lora_rank"],
        cfg["qk_nope_head_dim"],
        cfg["qk_rope_head_dim"],
        cfg["v_head_dim"],
    )
    dense = DenseFFN(cfg["intermediate_size"])
    experts = cfg.get("n_routed_experts")
    moe = None
    if experts:
        inter = cfg["moe_intermediate_size"]
        moe = MoEFFN(experts, cfg["num_experts_per_tok"], inter, inter * (cfg.get("n_shared_experts") or 0))
    first_dense = cfg.get("first_k_dense_replace", 0)
    freq = cfg.get("moe_layer_freq", 1) or 1
    layers = [(mla, moe if moe and i >= first_dense and i % freq == 0 else dense) for i in range(n)]
    tie = cfg.get("tie_word_embeddings", False)
    return ModelArch(
        name, h, cfg["vocab_size"], _group(layers), bool(tie), _max_context(cfg), cfg.get("model_type", "")
    )


def _minimax(cfg: dict, name: str, source: str) -> ModelArch:
    _need(cfg, _REQUIRED + ("intermediate_size", "num_local_experts"), "minimax", source)
    h, H, n = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    hd = cfg.get("head_dim") or h // H
    kv = cfg.get("num_key_value_heads") or H
    if "attn_type_list" in cfg:
        softmax = [bool(t) for t in cfg["attn_type_list"]]
    elif "layer_types" in cfg:
        softmax = [t == "full_attention" for t in cfg["layer_types"]]
    else:
        raise ModelConfigError(f"{source}: a MiniMax config needs attn_type_list or layer_types")
    if len(softmax) != n:
        raise ModelConfigError(f"{source}: attn_type_list has {len(softmax)} entries for {n} layers")
    shared = cfg.get("shared_intermediate_size") or 0
    moe = MoEFFN(
        cfg["num_local_experts"], cfg.get("num_experts_per_tok", 2), cfg["intermediate_size"], shared
    )
    lin = LinearAttention(H, hd, block_size=cfg.get("block_size", 256))
    full = Attention(H, kv, hd)
    layers = [((full if s else lin), moe) for s in softmax]
    tie = cfg.get("tie_word_embeddings", False)
    return ModelArch(name, h, cfg["vocab_size"], _group(layers), bool(tie), _max_context(cfg), "minimax")


def _jamba(cfg: dict, name: str, source: str) -> ModelArch:
    _need(cfg, _REQUIRED + ("intermediate_size",), "jamba", source)
    h, H, n = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    kv = cfg.get("num_key_value_heads") or H
    attn = Attention(H, kv, h // H)
    expand = cfg.get("mamba_expand", 2)
    dt_rank = cfg.get("mamba_dt_rank", "auto")
    if dt_rank == "auto":
        dt_rank = math.ceil(h / 16)
    mamba = Mamba(
        expand * h,
        cfg.get("mamba_d_state", 16),
        cfg.get("mamba_d_conv", 4),
        dt_rank,
        conv_bias=cfg.get("mamba_conv_bias", True),
        proj_bias=cfg.get("mamba_proj_bias", False),
        inner_norms=True,
    )
    dense = DenseFFN(cfg["intermediate_size"])
    moe = MoEFFN(cfg.get("num_experts", 16), cfg.get("num_experts_per_tok", 2), cfg["intermediate_size"])
    ap, ao = cfg.get("attn_layer_period", 8), cfg.get("attn_layer_offset", 4)
    ep, eo = cfg.get("expert_layer_period", 2), cfg.get("expert_layer_offset", 1)
    layers = [
        (attn if i % ap == ao else mamba, moe if (cfg.get("num_experts", 16) > 1 and i % ep == eo) else dense)
        for i in range(n)
    ]
    tie = cfg.get("tie_word_embeddings", False)
    return ModelArch(name, h, cfg["vocab_size"], _group(layers), bool(tie), _max_context(cfg), "jamba")


def from_hf_config(cfg: dict, name: str = "custom", source: str = "config.json") -> ModelArch:
    """Build a ModelArch from a parsed Hugging Face config.json.

    Raises ModelConfigError naming the file and the missing/invalid fields for configs that are
    not decoder-only transformers.
    """
    if not isinstance(cfg, dict):
        raise ModelConfigError(f"{source}: a config.json must hold a JSON object, got {type(cfg).__name__}")
    _check_fields(cfg, source)
    mt = str(cfg.get("model_type", "")).lower()
    if mt in ("chatglm", "glm"):
        return _chatglm(cfg, name, source)
    if mt.startswith("deepseek"):
        return _deepseek(cfg, name, source)
    if mt.startswith("minimax") or "attn_type_list" in cfg:
        return _minimax(cfg, name, source)
    if mt == "jamba":
        return _jamba(cfg, name, source)
    return _llama_like(cfg, name, source)
