"""Build a `ModelArch` from a Hugging Face config.json dict (already parsed; no file access here).

Dispatch is on `architectures` first (every entry must name the same family), then `model_type`,
then the fields themselves: MLA whenever `kv_lora_rank` is present. Multimodal configs are read from
their nested `text_config`. Families read here: llama / mistral / mixtral / qwen2 / phi3 / yi
(llama-like), gemma2, chatglm (GLM-4), deepseek_v2/v3 and kimi_k2 (MLA + MoE), MiniMax-Text-01
(lightning attention + MoE) and jamba (Mamba/attention + MoE); the newer families (Qwen3 dense and
MoE, Qwen2-MoE, GPT-OSS, Gemma-3, Llama-4, Mamba, Mamba-2, Qwen3-Next) are in `hf_families`.

Nothing is guessed: an unknown architecture, a `layer_types` value a reader does not know, or expert
fields a reader does not read are refused with a ModelConfigError naming the field.
"""

from __future__ import annotations

from roofline.simulator import hf_families as fam
from roofline.simulator.errors import short
from roofline.simulator.hf_fields import REQUIRED as _REQUIRED
from roofline.simulator.hf_fields import check_fields as _check_fields
from roofline.simulator.hf_fields import group as _group
from roofline.simulator.hf_fields import layer_types, moe_ffn, rank_or_auto, refuse_unread
from roofline.simulator.hf_fields import max_context as _max_context
from roofline.simulator.hf_fields import need as _need
from roofline.simulator.hf_fields import to_int as _int
from roofline.simulator.model import (
    MLA,
    Attention,
    DenseFFN,
    LinearAttention,
    Mamba,
    ModelArch,
    ModelConfigError,
    MoEFFN,
)


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
    refuse_unread(cfg, ("num_local_experts",), "llama-like", source)
    types = layer_types(cfg, n, source, ("full_attention", "sliding_attention"))
    if types is not None and any(t == "sliding_attention" for t in types) and not window:
        raise ModelConfigError(f"{source}: 'layer_types' has sliding layers but no 'sliding_window'")
    if cfg.get("num_local_experts"):
        ffn = MoEFFN(
            cfg["num_local_experts"], _int(cfg, "num_experts_per_tok", source, 2), cfg["intermediate_size"]
        )
    else:
        ffn = DenseFFN(_int(cfg, "intermediate_size", source))
    if types is not None and mt != "gemma2":
        # transformers >= 4.53 writes the attention kind of every layer (e.g. Qwen2's max_window_layers).
        local = Attention(H, kv, hd, window=window, qkv_bias=bias)
        glob = Attention(H, kv, hd, qkv_bias=bias)
        layers = [((local if t == "sliding_attention" else glob), ffn) for t in types]
        tie = cfg.get("tie_word_embeddings", False)
    elif mt == "gemma2":
        # Gemma 2 (arXiv:2408.00118): local sliding-window and global layers alternate, local first.
        local = Attention(H, kv, hd, window=window, qkv_bias=bias)
        glob = Attention(H, kv, hd, qkv_bias=bias)
        layers = [((local if i % 2 == 0 else glob), ffn) for i in range(n)]
        tie = cfg.get("tie_word_embeddings", True)
    else:
        layers = [(Attention(H, kv, hd, window=window, qkv_bias=bias), ffn)] * n
        # transformers' GemmaConfig ties the embeddings by default (tie_word_embeddings=True)
        tie = cfg.get("tie_word_embeddings", mt == "gemma")
    norms = 4 if mt == "gemma2" else 2  # Gemma 2's pre- and post-norms around attention and MLP
    return ModelArch(
        name, h, _int(cfg, "vocab_size", source), _group(layers, norms), bool(tie), _max_context(cfg), mt
    )


def _chatglm(cfg: dict, name: str, source: str) -> ModelArch:
    keys = ("hidden_size", "num_layers", "num_attention_heads", "ffn_hidden_size", "padded_vocab_size")
    _need(cfg, keys, "chatglm", source)
    h, H = cfg["hidden_size"], cfg["num_attention_heads"]
    kv = _int(cfg, "multi_query_group_num", source, H) if cfg.get("multi_query_attention") else H
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
    refuse_unread(cfg, ("n_routed_experts", "moe_intermediate_size", "n_shared_experts"), "deepseek", source)
    experts = cfg.get("n_routed_experts")
    moe = None
    if experts:
        inter = cfg.get("moe_intermediate_size") or 0
        moe = moe_ffn(cfg, source, "moe_intermediate_size", inter * (cfg.get("n_shared_experts") or 0))
    first_dense = _int(cfg, "first_k_dense_replace", source, 0)
    freq = cfg.get("moe_layer_freq", 1) or 1
    layers = [(mla, moe if moe and i >= first_dense and i % freq == 0 else dense) for i in range(n)]
    tie = cfg.get("tie_word_embeddings", False)
    return ModelArch(
        name, h, cfg["vocab_size"], _group(layers), bool(tie), _max_context(cfg), cfg.get("model_type", "")
    )


def _minimax(cfg: dict, name: str, source: str) -> ModelArch:
    _need(cfg, _REQUIRED + ("intermediate_size", "num_local_experts"), "minimax", source)
    refuse_unread(cfg, ("num_local_experts",), "minimax", source)
    h, H, n = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    hd = cfg.get("head_dim") or h // H
    kv = cfg.get("num_key_value_heads") or H
    if "attn_type_list" in cfg:
        types = cfg["attn_type_list"]
        if not isinstance(types, list) or any(t not in (0, 1) or isinstance(t, float) for t in types):
            raise ModelConfigError(
                f"{source}: field 'attn_type_list' must list 0 (linear) or 1 (softmax) per layer, "
                f"got {short(types)}"
            )
        softmax = [bool(t) for t in types]
    elif "layer_types" in cfg:
        types = layer_types(cfg, n, source, ("full_attention", "linear_attention"))
        softmax = [t == "full_attention" for t in types]
    else:
        raise ModelConfigError(f"{source}: a MiniMax config needs attn_type_list or layer_types")
    if len(softmax) != n:
        raise ModelConfigError(f"{source}: attn_type_list has {len(softmax)} entries for {n} layers")
    shared = cfg.get("shared_intermediate_size") or 0
    moe = MoEFFN(
        cfg["num_local_experts"],
        _int(cfg, "num_experts_per_tok", source, 2),
        cfg["intermediate_size"],
        shared,
    )
    lin = LinearAttention(H, hd, block_size=_int(cfg, "block_size", source, 256))
    full = Attention(H, kv, hd)
    layers = [((full if s else lin), moe) for s in softmax]
    tie = cfg.get("tie_word_embeddings", False)
    return ModelArch(name, h, cfg["vocab_size"], _group(layers), bool(tie), _max_context(cfg), "minimax")


def _jamba(cfg: dict, name: str, source: str) -> ModelArch:
    _need(cfg, _REQUIRED + ("intermediate_size",), "jamba", source)
    refuse_unread(cfg, ("num_experts",), "jamba", source)
    h, H, n = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    kv = cfg.get("num_key_value_heads") or H
    attn = Attention(H, kv, h // H)
    expand = _int(cfg, "mamba_expand", source, 2)
    dt_rank = rank_or_auto(cfg, "mamba_dt_rank", h, source)
    mamba = Mamba(
        expand * h,
        _int(cfg, "mamba_d_state", source, 16),
        _int(cfg, "mamba_d_conv", source, 4),
        dt_rank,
        conv_bias=bool(cfg.get("mamba_conv_bias", True)),
        proj_bias=bool(cfg.get("mamba_proj_bias", False)),
        inner_norms=True,
    )
    dense = DenseFFN(cfg["intermediate_size"])
    experts = _int(cfg, "num_experts", source, 16)
    moe = MoEFFN(experts, _int(cfg, "num_experts_per_tok", source, 2), cfg["intermediate_size"])
    ap, ao = _int(cfg, "attn_layer_period", source, 8), _int(cfg, "attn_layer_offset", source, 4)
    ep, eo = _int(cfg, "expert_layer_period", source, 2), _int(cfg, "expert_layer_offset", source, 1)
    layers = [
        (attn if i % ap == ao else mamba, moe if (experts > 1 and i % ep == eo) else dense) for i in range(n)
    ]
    tie = cfg.get("tie_word_embeddings", False)
    return ModelArch(name, h, cfg["vocab_size"], _group(layers), bool(tie), _max_context(cfg), "jamba")


_READERS = {
    "llama": _llama_like,
    "chatglm": _chatglm,
    "deepseek": _deepseek,
    "minimax": _minimax,
    "jamba": _jamba,
    "qwen3": fam.qwen3,
    "qwen_moe": fam.qwen_moe,
    "gpt_oss": fam.gpt_oss,
    "gemma3": fam.gemma3,
    "llama4": fam.llama4,
    "mamba": fam.mamba,
    "mamba2": fam.mamba2,
    "qwen3_next": fam.qwen3_next,
}
# `architectures` entries (transformers class names, plus remote-code names in the zoo) -> reader.
ARCHITECTURES = {
    **dict.fromkeys(
        (
            "LlamaForCausalLM",
            "MistralForCausalLM",
            "MixtralForCausalLM",
            "Qwen2ForCausalLM",
            "Phi3ForCausalLM",
            "YiForCausalLM",
            "Gemma2ForCausalLM",
            "GemmaForCausalLM",
        ),
        "llama",
    ),
    "ChatGLMModel": "chatglm",
    "ChatGLMForConditionalGeneration": "chatglm",
    "DeepseekV2ForCausalLM": "deepseek",
    "DeepseekV3ForCausalLM": "deepseek",
    "MiniMaxText01ForCausalLM": "minimax",
    "MiniMaxM1ForCausalLM": "minimax",
    "JambaForCausalLM": "jamba",
    "Qwen3ForCausalLM": "qwen3",
    "Qwen2MoeForCausalLM": "qwen_moe",
    "Qwen3MoeForCausalLM": "qwen_moe",
    "GptOssForCausalLM": "gpt_oss",
    "Gemma3ForCausalLM": "gemma3",
    "Gemma3ForConditionalGeneration": "gemma3",
    "Llama4ForCausalLM": "llama4",
    "Llama4ForConditionalGeneration": "llama4",
    "MambaForCausalLM": "mamba",
    "Mamba2ForCausalLM": "mamba2",
    "Qwen3NextForCausalLM": "qwen3_next",
}
MODEL_TYPES = {
    **dict.fromkeys(("llama", "mistral", "mixtral", "qwen2", "phi3", "yi", "gemma2"), "llama"),
    **dict.fromkeys(("chatglm", "glm"), "chatglm"),
    **dict.fromkeys(("deepseek_v2", "deepseek_v3", "kimi_k2"), "deepseek"),
    **dict.fromkeys(("minimax", "minimax_text_01", "minimax_m1"), "minimax"),
    "jamba": "jamba",
    "qwen3": "qwen3",
    **dict.fromkeys(("qwen2_moe", "qwen3_moe"), "qwen_moe"),
    "gpt_oss": "gpt_oss",
    **dict.fromkeys(("gemma3", "gemma3_text"), "gemma3"),
    **dict.fromkeys(("llama4", "llama4_text"), "llama4"),
    "mamba": "mamba",
    "mamba2": "mamba2",
    "qwen3_next": "qwen3_next",
}


def _family(cfg: dict, source: str) -> str:
    """The reader for a config: from `architectures`, else `model_type`; refused when unknown."""
    archs = cfg.get("architectures")
    if archs is not None:
        if not isinstance(archs, list) or not archs or not all(isinstance(a, str) for a in archs):
            raise ModelConfigError(f"{source}: field 'architectures' must be a list of class names")
        unknown = [a for a in archs if a not in ARCHITECTURES]
        if unknown:
            # A non-transformer config (ResNet, ...) says which decoder fields it lacks.
            _need(cfg, _REQUIRED + ("intermediate_size",), "decoder", source)
            raise ModelConfigError(
                f"{source}: field 'architectures' names {unknown[0]!r}, which roofline cannot read "
                f"exactly (known: {', '.join(sorted(ARCHITECTURES))}); refusing rather than guessing"
            )
        families = {ARCHITECTURES[a] for a in archs}
        if len(families) > 1:
            raise ModelConfigError(
                f"{source}: field 'architectures' mixes families ({', '.join(archs)}); refusing"
            )
        return families.pop()
    mt = str(cfg.get("model_type", "")).lower()
    if mt in MODEL_TYPES:
        return MODEL_TYPES[mt]
    if "attn_type_list" in cfg:
        return "minimax"
    if cfg.get("kv_lora_rank") is not None:
        return "deepseek"  # MLA whenever the latent rank is given
    _need(cfg, _REQUIRED + ("intermediate_size",), "decoder", source)
    raise ModelConfigError(
        f"{source}: no 'architectures' and model_type {cfg.get('model_type')!r} is not one roofline "
        f"reads (known: {', '.join(sorted(MODEL_TYPES))}); refusing rather than guessing"
    )


def _text_config(cfg: dict, source: str) -> dict:
    """A multimodal config's decoder: its `text_config`, keeping the outer architectures and the
    outer tie_word_embeddings when the inner config does not set it."""
    inner = cfg["text_config"]
    if not isinstance(inner, dict):
        raise ModelConfigError(f"{source}: field 'text_config' must be a JSON object")
    out = dict(inner)
    for key in ("architectures", "tie_word_embeddings"):
        if key in cfg and key not in inner:
            out[key] = cfg[key]
    return out


def from_hf_config(cfg: dict, name: str = "custom", source: str = "config.json") -> ModelArch:
    """Build a ModelArch from a parsed Hugging Face config.json.

    Raises ModelConfigError naming the file and the field that stopped it: missing or invalid
    fields, an unknown or mixed `architectures`, fields the family's reader would have to drop.
    """
    if not isinstance(cfg, dict):
        raise ModelConfigError(f"{source}: a config.json must hold a JSON object, got {type(cfg).__name__}")
    _check_fields(cfg, source)
    family = _family(cfg, source)
    if "text_config" in cfg:
        cfg = _text_config(cfg, source)
        _check_fields(cfg, source)
    if cfg.get("kv_lora_rank") is not None and family != "deepseek":
        raise ModelConfigError(
            f"{source}: field 'kv_lora_rank' (MLA latent) in a config read as {family}, whose "
            f"attention has no latent; refusing"
        )
    return _READERS[family](cfg, name, source)
