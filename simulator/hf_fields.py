"""Field readers shared by the config.json parsers (`hf_config`, `hf_families`): type checks, required
fields, per-layer patterns (`layer_types`, MoE layer placement) and the expert fields in every
spelling in use. Every reader either returns what the config says or raises ModelConfigError naming
the field that stopped it; none substitutes a guess.
"""

from __future__ import annotations

import math

from roofline.simulator.errors import short
from roofline.simulator.model import LayerGroup, ModelConfigError, MoEFFN

REQUIRED = ("hidden_size", "num_hidden_layers", "num_attention_heads", "vocab_size")

# Shape fields that must be positive integers when present (null allowed where HF allows it).
_POSITIVE = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
    "intermediate_size", "vocab_size", "kv_channels", "ffn_hidden_size", "padded_vocab_size", "num_layers",
    "multi_query_group_num", "moe_intermediate_size", "n_routed_experts", "num_experts_per_tok",
    "num_local_experts", "num_experts", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
    "mamba_d_state", "mamba_d_conv", "mamba_expand", "attn_layer_period", "expert_layer_period",
    "moe_layer_freq", "sliding_window", "block_size", "max_position_embeddings", "seq_length",
    "state_size", "conv_kernel", "expand", "n_groups", "num_heads", "linear_num_value_heads",
    "linear_num_key_heads", "linear_key_head_dim", "linear_value_head_dim", "linear_conv_kernel_dim",
    "attention_chunk_size", "interleave_moe_layer_step", "intermediate_size_mlp", "decoder_sparse_step",
    "sliding_window_pattern", "chunk_size", "n_group", "topk_group", "no_rope_layer_interval",
    "full_attention_interval",
)  # fmt: skip
# Fields that may be zero.
_NON_NEGATIVE = (
    "q_lora_rank",
    "n_shared_experts",
    "first_k_dense_replace",
    "attn_layer_offset",
    "expert_layer_offset",
    "shared_intermediate_size",
    "shared_expert_intermediate_size",
)
# Fields whose presence means routed experts; a reader that does not read one must refuse it.
MOE_FIELDS = (
    "num_experts",
    "num_local_experts",
    "n_routed_experts",
    "moe_intermediate_size",
    "n_shared_experts",
    "shared_expert_intermediate_size",
)
EXPERT_COUNT_FIELDS = ("num_experts", "num_local_experts", "n_routed_experts")

# Upper bounds of shape fields: far beyond any published model (the largest have ~200 layers, a
# hidden size of ~25K, a vocabulary of ~260K, 512 experts), and small enough that building the
# model and its ops stays milliseconds; checked before anything is built. Unlisted fields: MAX_SIZE.
MAX_SIZE = 2**24
_MAXIMA = {
    **dict.fromkeys(("num_hidden_layers", "num_layers", "first_k_dense_replace"), 10_000),
    **dict.fromkeys(("hidden_size", "ffn_hidden_size"), 2**20),
    **dict.fromkeys(
        (
            "num_attention_heads", "num_key_value_heads", "multi_query_group_num", "num_heads",
            "linear_num_value_heads", "linear_num_key_heads", "n_groups", "n_group", "topk_group",
            "num_local_experts", "n_routed_experts", "num_experts", "num_experts_per_tok", "n_shared_experts",
            "mamba_d_conv", "conv_kernel", "linear_conv_kernel_dim", "mamba_expand", "expand",
            "attn_layer_period", "expert_layer_period", "moe_layer_freq", "attn_layer_offset",
            "expert_layer_offset", "interleave_moe_layer_step", "decoder_sparse_step", "sliding_window_pattern",
            "no_rope_layer_interval", "full_attention_interval",
        ),
        2**16,
    ),
    **dict.fromkeys(("max_position_embeddings", "seq_length", "sliding_window", "attention_chunk_size"), 10**12),
}  # fmt: skip


def check_fields(cfg: dict, source: str) -> None:
    for keys, low in ((_POSITIVE, 1), (_NON_NEGATIVE, 0)):
        for key in keys:
            v = cfg.get(key)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                kind = "a positive integer" if low else "a non-negative integer"
                raise ModelConfigError(f"{source}: field {key!r} must be {kind} (or absent), got {short(v)}")
            high = _MAXIMA.get(key, MAX_SIZE)
            if v > high:
                raise ModelConfigError(
                    f"{source}: field {key!r} is {short(v)}; at most {high:,} (far beyond any published "
                    "model; refusing before building it)"
                )
    for key in ("mamba_dt_rank", "time_step_rank"):
        dt = cfg.get(key)
        if (
            dt is not None
            and dt != "auto"
            and (isinstance(dt, bool) or not isinstance(dt, int) or not 1 <= dt <= MAX_SIZE)
        ):
            raise ModelConfigError(
                f"{source}: field {key!r} must be a positive integer (at most {MAX_SIZE:,}) or 'auto', "
                f"got {short(dt)}"
            )
    _check_heads(cfg, source)
    experts = cfg.get("num_local_experts") or cfg.get("n_routed_experts") or cfg.get("num_experts")
    top_k = cfg.get("num_experts_per_tok")
    if experts and top_k and top_k > experts:
        raise ModelConfigError(
            f"{source}: num_experts_per_tok ({top_k}) exceeds the number of experts ({experts})"
        )


def _check_heads(cfg: dict, source: str) -> None:
    """Nonsense head counts: more KV heads than query heads, or (when the head size is derived
    as hidden_size / heads) more heads than hidden units, which would make the head size 0."""
    h, H, kv = cfg.get("hidden_size"), cfg.get("num_attention_heads"), cfg.get("num_key_value_heads")
    if isinstance(H, int) and isinstance(kv, int) and kv > H:
        raise ModelConfigError(
            f"{source}: num_key_value_heads ({kv}) exceeds num_attention_heads ({H}); each KV head "
            "serves one or more query heads"
        )
    explicit = cfg.get("head_dim") or cfg.get("kv_channels") or cfg.get("kv_lora_rank")
    if isinstance(h, int) and isinstance(H, int) and H > h and not explicit:
        raise ModelConfigError(
            f"{source}: num_attention_heads ({H}) exceeds hidden_size ({h}), so the head size "
            "hidden_size // num_attention_heads would be 0; give head_dim or fix the counts"
        )


def need(cfg: dict, keys, family: str, source: str) -> None:
    missing = [k for k in keys if cfg.get(k) is None]
    if missing:
        raise ModelConfigError(
            f"{source}: not a decoder-only transformer config that roofline understands "
            f"(model_type {cfg.get('model_type')!r}): missing {', '.join(missing)}. "
            f"A {family} config needs: {', '.join(keys)}."
        )


def to_int(cfg: dict, key: str, source: str, default=None) -> int:
    """The integer field `key`, `default` where the config leaves it out; a null there is refused
    (transformers' config classes keep an explicit null, which their models then fail on)."""
    v = cfg.get(key, default)
    if v is None and key in cfg and default is not None:
        raise ModelConfigError(
            f"{source}: field {key!r} is null; give an integer or leave it out (default {default})"
        )
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ModelConfigError(f"{source}: field {key!r} must be a non-negative integer, got {short(v)}")
    return v


def rank_or_auto(cfg: dict, key: str, hidden: int, source: str) -> int:
    """A Mamba time-step rank field (`mamba_dt_rank`, `time_step_rank`): an integer, or 'auto' (also
    where left out) = ceil(hidden / 16), as transformers' Mamba and Jamba configs resolve it; a null
    is refused (check_fields has checked an integer's range)."""
    v = cfg.get(key, "auto")
    if v is None:
        raise ModelConfigError(
            f"{source}: field {key!r} is null; give a positive integer or 'auto', or leave it out"
        )
    return math.ceil(hidden / 16) if v == "auto" else v


def refuse_unread(cfg: dict, read: tuple, reader: str, source: str) -> None:
    """Refuse MoE fields the chosen reader does not read (they would be silently dropped)."""
    for key in MOE_FIELDS:
        v = cfg.get(key)
        if key in read or v in (None, 0, False):
            continue
        if key == "num_experts" and v == 1:
            continue  # one "expert" is a dense MLP (Jamba's convention)
        raise ModelConfigError(
            f"{source}: field {key!r} ({short(v)}) describes routed experts, which the {reader} reader does "
            f"not read; refusing rather than loading a dense model"
        )


def expert_count(cfg: dict, source: str) -> int:
    """The routed-expert count under any of its spellings (they must agree when several appear)."""
    found = {k: cfg[k] for k in EXPERT_COUNT_FIELDS if cfg.get(k)}
    if len(set(found.values())) > 1:
        raise ModelConfigError(f"{source}: expert-count fields disagree: {found}")
    return next(iter(found.values()), 0)


def moe_ffn(cfg: dict, source: str, width_key: str, shared_width: int = 0, **kw) -> MoEFFN:
    """Routed experts of width cfg[width_key] with top-k num_experts_per_tok (both required), as
    many as the config's expert count (required: a reader calls this where its family always has
    experts, as GPT-OSS, or where a count was found)."""
    experts = expert_count(cfg, source)
    if not experts:
        raise ModelConfigError(
            f"{source}: a MoE model but no routed-expert count: give one of {', '.join(EXPERT_COUNT_FIELDS)}"
        )
    for key in (width_key, "num_experts_per_tok"):
        if cfg.get(key) is None:
            raise ModelConfigError(
                f"{source}: {experts} routed experts but no {key!r}: a MoE config needs its expert "
                f"width ({width_key}) and top-k (num_experts_per_tok)"
            )
    groups, per_token = cfg.get("n_group") or 1, cfg.get("topk_group") or 1
    if groups > 1:
        if (
            experts % groups
            or per_token > groups
            or cfg["num_experts_per_tok"] > per_token * experts // groups
        ):
            raise ModelConfigError(
                f"{source}: group-limited routing n_group={groups}, topk_group={per_token} does not fit "
                f"{experts} experts with top-{cfg['num_experts_per_tok']} (n_group must divide the "
                "experts, topk_group <= n_group, and the chosen groups must hold top-k experts)"
            )
        kw = {**kw, "route_groups": groups, "route_groups_per_token": per_token}
    return MoEFFN(experts, cfg["num_experts_per_tok"], cfg[width_key], shared_width, **kw)


def layer_types(cfg: dict, n: int, source: str, known: tuple) -> list | None:
    """`layer_types` (transformers >= 4.53: one attention kind per layer), checked: one known entry
    per layer. None when the config has no such field."""
    types = cfg.get("layer_types")
    if types is None:
        return None
    if not isinstance(types, list) or len(types) != n:
        count = len(types) if isinstance(types, list) else type(types).__name__
        raise ModelConfigError(
            f"{source}: field 'layer_types' must list one entry per layer ({n}), got {count}"
        )
    for t in types:
        if t not in known:
            raise ModelConfigError(
                f"{source}: field 'layer_types' has {t!r}, which this architecture's reader does not "
                f"know (known: {', '.join(known)})"
            )
    return types


def int_list(cfg: dict, key: str, source: str, default=()) -> list:
    v = cfg.get(key)
    if v is None:
        return list(default)
    if not isinstance(v, list) or any(isinstance(x, bool) or not isinstance(x, int) for x in v):
        raise ModelConfigError(f"{source}: field {key!r} must be a list of integers, got {short(v)}")
    return v


def group(layers: list, norms: int = 2) -> tuple:
    """Collapse a per-layer list of (mixer, ffn) into LayerGroups of identical kinds (order does not
    affect costs), each layer with `norms` hidden-size norm weight vectors."""
    counts: dict = {}
    for pair in layers:
        counts[pair] = counts.get(pair, 0) + 1
    return tuple(LayerGroup(m, f, n, norms) for (m, f), n in counts.items())


def max_context(cfg: dict) -> int:
    for key in ("max_position_embeddings", "seq_length", "max_sequence_length"):
        v = cfg.get(key)
        if isinstance(v, int) and v > 0:
            return v
    return 0
