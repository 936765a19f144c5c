"""Field readers shared by the config.json parsers (`hf_config`, `hf_families`): type checks, required
fields, per-layer patterns (`layer_types`, MoE layer placement) and the expert fields in every
spelling in use. Every reader either returns what the config says or raises ModelConfigError naming
the field that stopped it; none substitutes a guess.
"""

from __future__ import annotations

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
    "sliding_window_pattern", "chunk_size", "n_group", "topk_group",
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


def check_fields(cfg: dict, source: str) -> None:
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
    for key in ("mamba_dt_rank", "time_step_rank"):
        dt = cfg.get(key)
        if dt is not None and dt != "auto" and (isinstance(dt, bool) or not isinstance(dt, int) or dt < 1):
            raise ModelConfigError(
                f"{source}: field {key!r} must be a positive integer or 'auto', got {repr(dt)[:60]}"
            )
    experts = cfg.get("num_local_experts") or cfg.get("n_routed_experts") or cfg.get("num_experts")
    top_k = cfg.get("num_experts_per_tok")
    if experts and top_k and top_k > experts:
        raise ModelConfigError(
            f"{source}: num_experts_per_tok ({top_k}) exceeds the number of experts ({experts})"
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
    v = cfg.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ModelConfigError(f"{source}: field {key!r} must be a non-negative integer, got {v!r}")
    return v


def refuse_unread(cfg: dict, read: tuple, reader: str, source: str) -> None:
    """Refuse MoE fields the chosen reader does not read (they would be silently dropped)."""
    for key in MOE_FIELDS:
        v = cfg.get(key)
        if key in read or v in (None, 0, False):
            continue
        if key == "num_experts" and v == 1:
            continue  # one "expert" is a dense MLP (Jamba's convention)
        raise ModelConfigError(
            f"{source}: field {key!r} ({v!r}) describes routed experts, which the {reader} reader does "
            f"not read; refusing rather than loading a dense model"
        )


def expert_count(cfg: dict, source: str) -> int:
    """The routed-expert count under any of its spellings (they must agree when several appear)."""
    found = {k: cfg[k] for k in EXPERT_COUNT_FIELDS if cfg.get(k)}
    if len(set(found.values())) > 1:
        raise ModelConfigError(f"{source}: expert-count fields disagree: {found}")
    return next(iter(found.values()), 0)


def moe_ffn(cfg: dict, source: str, width_key: str, shared_width: int = 0, **kw) -> MoEFFN:
    """Routed experts of width cfg[width_key] with top-k num_experts_per_tok (both required)."""
    experts = expert_count(cfg, source)
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
        raise ModelConfigError(f"{source}: field {key!r} must be a list of integers, got {repr(v)[:60]}")
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
