"""Model architectures (`ModelArch`) and their closed-form sizes: parameters and per-token KV state.

Architecture features — GQA/MQA, MLA, sliding windows, linear (lightning) attention, Mamba SSM
layers, MoE with shared experts — live here, as layer specs grouped by identical layers. Methods
that change costs at inference live in `simulator.methods`. Parsing a Hugging Face config.json
into a ModelArch is `simulator.hf_config`.
"""

from __future__ import annotations

from dataclasses import dataclass

from roofline.simulator.errors import UserError


class ModelConfigError(UserError):
    """A model description that cannot be turned into a ModelArch."""


@dataclass(frozen=True)
class Attention:
    """Softmax attention: MHA (kv == heads), GQA (kv < heads), MQA (kv == 1).

    `window` is the sliding-window length in tokens (None = full causal attention). With `chunked`
    (Llama-4 chunked local attention, transformers `attention_chunk_size`) a token attends only to
    earlier tokens of its own chunk of `window` tokens; the cache then never needs more than `window`
    tokens, so the window is the exact storage upper bound, while the mean attended span (window/2)
    is overestimated by costing it as a sliding window.

    Extra parameters beyond q/k/v/o (transformers modeling files): o_proj bias and per-head sink
    logits (GPT-OSS `GptOssAttention`), q/k RMSNorm weights of head_dim (Qwen3 / Gemma-3 `q_norm`,
    `k_norm`), and the output gate that doubles q_proj (Qwen3-Next `attn_output_gate`).
    """

    num_heads: int
    num_kv_heads: int
    head_dim: int
    window: int | None = None
    qkv_bias: bool = False
    kind: str = "attention"
    o_bias: bool = False  # GPT-OSS: bias on the output projection too (attention_bias)
    qk_norm: bool = False  # Qwen3 / Gemma-3: RMSNorm weights (head_dim each) on q and k
    sinks: bool = False  # GPT-OSS: one learned attention-sink logit per head
    output_gate: bool = False  # Qwen3-Next: q_proj also emits a sigmoid gate per head dim
    chunked: bool = False  # Llama-4: `window` is a chunk (attention restarts every `window` tokens)

    @property
    def qk_dim(self) -> int:
        return self.head_dim

    @property
    def v_dim(self) -> int:
        return self.head_dim

    def params(self, hidden: int) -> int:
        q = hidden * self.num_heads * self.head_dim
        kv = 2 * hidden * self.num_kv_heads * self.head_dim
        o = self.num_heads * self.head_dim * hidden
        bias = (self.num_heads + 2 * self.num_kv_heads) * self.head_dim if self.qkv_bias else 0
        extra = (
            (hidden if self.o_bias else 0)
            + (2 * self.head_dim if self.qk_norm else 0)
            + (self.num_heads if self.sinks else 0)
            + (q if self.output_gate else 0)
        )
        return q + kv + o + bias + extra

    def kv_elements_per_token(self) -> int:
        """Cached elements per token per layer: one K and one V vector per KV head."""
        return 2 * self.num_kv_heads * self.head_dim


@dataclass(frozen=True)
class MLA:
    """Multi-head latent attention (DeepSeek-V2, arXiv:2405.04434 §2.1).

    The cache holds the compressed latent c_KV (kv_lora_rank) plus the decoupled RoPE key
    (qk_rope_head_dim) per token, shared by all heads. q_lora_rank == 0 means no query compression.
    """

    num_heads: int
    q_lora_rank: int
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int
    kind: str = "mla"

    @property
    def qk_dim(self) -> int:
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def v_dim(self) -> int:
        return self.v_head_dim

    @property
    def num_kv_heads(self) -> int:
        return self.num_heads  # after up-projection in prefill, K/V are per head

    @property
    def window(self):
        return None

    def params(self, hidden: int) -> int:
        h, H = hidden, self.num_heads
        if self.q_lora_rank:
            q = h * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * H * self.qk_dim
        else:
            q = h * H * self.qk_dim
        kv_a = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank
        kv_b = self.kv_lora_rank * H * (self.qk_nope_head_dim + self.v_head_dim)
        o = H * self.v_head_dim * h
        return q + kv_a + kv_b + o

    def kv_elements_per_token(self) -> int:
        return self.kv_lora_rank + self.qk_rope_head_dim


@dataclass(frozen=True)
class LinearAttention:
    """Linear ("lightning") attention (MiniMax-01, arXiv:2501.08313 §2.2; Lightning Attention-2,
    arXiv:2401.04658): a fixed per-head state of head_dim x head_dim replaces the KV cache.

    Projections: fused QKV, a sigmoid output gate and the output projection (5 h x H*d matrices),
    plus an RMSNorm over the attention output.
    """

    num_heads: int
    head_dim: int
    block_size: int = 256
    kind: str = "linear_attention"

    def params(self, hidden: int) -> int:
        inner = self.num_heads * self.head_dim
        return 3 * hidden * inner + hidden * inner + inner * hidden + inner

    def kv_elements_per_token(self) -> int:
        return 0

    def state_bytes_per_sequence(self) -> float:
        """Recurrent state kept in fp32: one head_dim x head_dim matrix per head."""
        return self.num_heads * self.head_dim * self.head_dim * 4.0


@dataclass(frozen=True)
class Mamba:
    """Mamba-1 selective SSM mixer (arXiv:2312.00752), as used in Jamba (arXiv:2403.19887)."""

    d_inner: int
    d_state: int
    d_conv: int
    dt_rank: int
    conv_bias: bool = True
    proj_bias: bool = False
    inner_norms: bool = False  # Jamba's RMSNorms on dt, B and C
    kind: str = "mamba"

    def params(self, hidden: int) -> int:
        d = self.d_inner
        in_proj = hidden * 2 * d + (2 * d if self.proj_bias else 0)
        conv = d * self.d_conv + (d if self.conv_bias else 0)
        x_proj = d * (self.dt_rank + 2 * self.d_state)
        dt_proj = self.dt_rank * d + d
        a_and_d = d * self.d_state + d
        out_proj = d * hidden + (hidden if self.proj_bias else 0)
        norms = (self.dt_rank + 2 * self.d_state) if self.inner_norms else 0
        return in_proj + conv + x_proj + dt_proj + a_and_d + out_proj + norms

    def kv_elements_per_token(self) -> int:
        return 0

    def state_bytes_per_sequence(self, act_bytes: float = 2.0) -> float:
        """SSM state (fp32, d_inner x d_state) plus the causal-conv window (d_conv - 1 inputs)."""
        return self.d_inner * self.d_state * 4.0 + self.d_inner * (self.d_conv - 1) * act_bytes


@dataclass(frozen=True)
class Mamba2:
    """Mamba-2 mixer with the SSD (state-space duality) scan (Dao & Gu, arXiv:2405.21060 §7;
    transformers `Mamba2Mixer`): heads of `head_dim` channels share a scalar decay per head and
    `n_groups` groups of B and C (d_state each).

    Parameters: in_proj h -> [z, x, B, C, dt] = 2*d_inner + 2*n_groups*d_state + heads; a depthwise
    causal conv over x, B and C (conv_dim channels, d_conv taps); dt_bias, A_log and D per head; the
    gated RMSNorm over d_inner; out_proj d_inner -> h.
    """

    num_heads: int
    head_dim: int
    d_state: int
    n_groups: int
    d_conv: int
    chunk_size: int = 256
    conv_bias: bool = True
    proj_bias: bool = False
    kind: str = "mamba2"

    @property
    def d_inner(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def conv_dim(self) -> int:
        return self.d_inner + 2 * self.n_groups * self.d_state

    def params(self, hidden: int) -> int:
        d = self.d_inner
        in_width = 2 * d + 2 * self.n_groups * self.d_state + self.num_heads
        in_proj = hidden * in_width + (in_width if self.proj_bias else 0)
        conv = self.conv_dim * self.d_conv + (self.conv_dim if self.conv_bias else 0)
        per_head = 3 * self.num_heads  # dt_bias, A_log, D
        out_proj = d * hidden + (hidden if self.proj_bias else 0)
        return in_proj + conv + per_head + d + out_proj

    def kv_elements_per_token(self) -> int:
        return 0

    def state_bytes_per_sequence(self, act_bytes: float = 2.0) -> float:
        """SSM state (fp32, heads x head_dim x d_state) plus the conv window (d_conv - 1 inputs of
        conv_dim channels), as transformers' `Mamba2Cache` holds them."""
        return self.d_inner * self.d_state * 4.0 + self.conv_dim * (self.d_conv - 1) * act_bytes


@dataclass(frozen=True)
class GatedDeltaNet:
    """Gated DeltaNet linear attention (Yang et al., arXiv:2412.06464), as in Qwen3-Next's
    `linear_attention` layers (transformers `Qwen3NextGatedDeltaNet`): a per-value-head state of
    k_head_dim x v_head_dim replaces the KV cache.

    Parameters: in_proj_qkvz h -> 2*Hk*dk + 2*Hv*dv, in_proj_ba h -> 2*Hv (beta and decay gate), a
    depthwise causal conv over q, k, v (conv_dim = 2*Hk*dk + Hv*dv, no bias), dt_bias and A_log per
    value head, the gated RMSNorm over dv, out_proj Hv*dv -> h.
    """

    num_k_heads: int
    num_v_heads: int
    k_head_dim: int
    v_head_dim: int
    d_conv: int
    chunk_size: int = 64
    kind: str = "gated_deltanet"

    @property
    def num_heads(self) -> int:
        return self.num_v_heads

    @property
    def conv_dim(self) -> int:
        return 2 * self.num_k_heads * self.k_head_dim + self.num_v_heads * self.v_head_dim

    def params(self, hidden: int) -> int:
        kd, vd = self.num_k_heads * self.k_head_dim, self.num_v_heads * self.v_head_dim
        in_proj = hidden * (2 * kd + 2 * vd) + hidden * 2 * self.num_v_heads
        conv = self.conv_dim * self.d_conv
        return in_proj + conv + 2 * self.num_v_heads + self.v_head_dim + vd * hidden

    def kv_elements_per_token(self) -> int:
        return 0

    def state_bytes_per_sequence(self, act_bytes: float = 2.0) -> float:
        """Recurrent state (fp32, Hv x dk x dv) plus the conv window (d_conv - 1 inputs)."""
        state = self.num_v_heads * self.k_head_dim * self.v_head_dim * 4.0
        return state + self.conv_dim * (self.d_conv - 1) * act_bytes


@dataclass(frozen=True)
class DenseFFN:
    """Feed-forward block; gated (SwiGLU/GeGLU: gate, up, down) or plain (up, down)."""

    intermediate: int
    gated: bool = True
    kind: str = "dense"

    def params(self, hidden: int) -> int:
        return (3 if self.gated else 2) * hidden * self.intermediate

    def active_params(self, hidden: int) -> int:
        return self.params(hidden)


@dataclass(frozen=True)
class MoEFFN:
    """Mixture of experts with top-k routing and optional always-on shared experts."""

    num_experts: int
    top_k: int
    expert_intermediate: int
    shared_intermediate: int = 0  # total intermediate width of the shared expert(s)
    gated: bool = True
    kind: str = "moe"
    bias: bool = False  # GPT-OSS: biases on every expert projection and on the router
    shared_gate: bool = False  # Qwen2-MoE / Qwen3-Next: a hidden -> 1 sigmoid gate on the shared expert
    # Group-limited routing (DeepSeek-V3 §2.1.2 "node-limited routing", config n_group/topk_group):
    # experts form `route_groups` equal groups and each token picks its top-k experts inside
    # `route_groups_per_token` of them. 1/1 = plain top-k over all experts.
    route_groups: int = 1
    route_groups_per_token: int = 1

    def expert_params(self, hidden: int) -> int:
        """One routed expert: gate/up/down (gated) or up/down, plus GPT-OSS's per-expert biases
        (gate_up 2*inter + down hidden, transformers `GptOssExperts`)."""
        mult = 3 if self.gated else 2
        bias = ((mult - 1) * self.expert_intermediate + hidden) if self.bias else 0
        return mult * hidden * self.expert_intermediate + bias

    def shared_params(self, hidden: int) -> int:
        gate = hidden if (self.shared_gate and self.shared_intermediate) else 0
        return (3 if self.gated else 2) * hidden * self.shared_intermediate + gate

    def router_params(self, hidden: int) -> int:
        return hidden * self.num_experts + (self.num_experts if self.bias else 0)

    def params(self, hidden: int) -> int:
        return (
            self.router_params(hidden)
            + self.num_experts * self.expert_params(hidden)
            + self.shared_params(hidden)
        )

    def active_params(self, hidden: int) -> int:
        return (
            self.router_params(hidden) + self.top_k * self.expert_params(hidden) + self.shared_params(hidden)
        )


GEMMA_FAMILIES = ("gemma", "gemma2", "gemma3")  # ModelArch.family of the Gemma models


@dataclass(frozen=True)
class LayerGroup:
    """`count` identical decoder layers: one token mixer and one FFN each (`ffn` None: a pure SSM
    block such as Mamba's, mixer only), with `norms` RMSNorm weight vectors of hidden size
    (2: pre-mixer and pre-FFN; 4 in Gemma-2/3 with their post-norms; 1 in Mamba)."""

    mixer: Attention | MLA | LinearAttention | Mamba | Mamba2 | GatedDeltaNet
    ffn: DenseFFN | MoEFFN | None
    count: int
    norms: int = 2


def group_label(g: LayerGroup) -> str:
    """A layer group's "mixer+ffn" description, e.g. 'gqa(window=4096)+dense', 'mamba2'."""
    m = g.mixer
    label = m.kind
    if m.kind == "attention":
        label = "mha" if m.num_kv_heads == m.num_heads else ("mqa" if m.num_kv_heads == 1 else "gqa")
        if m.window:
            label += f"({'chunk' if m.chunked else 'window'}={m.window})"
    return label if g.ffn is None else f"{label}+{g.ffn.kind}"


@dataclass(frozen=True)
class ModelArch:
    """A decoder-only model's shapes. Sizes are element counts; bytes depend on the dtype chosen."""

    name: str
    hidden_size: int
    vocab_size: int
    layer_groups: tuple
    tie_embeddings: bool = False
    max_context_tokens: int = 0
    family: str = ""

    @property
    def gemma(self) -> bool:
        """A Gemma (1, 2 or 3): its embedding scaled by sqrt(hidden) in a kernel of its own, its
        RMSNorm weights applied as 1 + weight (transformers' GemmaRMSNorm: eager_hf)."""
        return self.family in GEMMA_FAMILIES

    @property
    def num_layers(self) -> int:
        return sum(g.count for g in self.layer_groups)

    @property
    def has_moe(self) -> bool:
        """Any layer's FFN is a mixture of experts."""
        return any(isinstance(g.ffn, MoEFFN) for g in self.layer_groups)

    @property
    def expert_counts(self) -> tuple:
        """The routed experts of each MoE layer group (empty for a dense model)."""
        return tuple(g.ffn.num_experts for g in self.layer_groups if isinstance(g.ffn, MoEFFN))

    @property
    def has_mla(self) -> bool:
        """Any layer attends with multi-head latent attention."""
        return any(isinstance(g.mixer, MLA) for g in self.layer_groups)

    def layer_kinds(self) -> dict:
        """Layer count by "mixer+ffn" description, e.g. {'attention(window=4096)+dense': 21}."""
        out: dict = {}
        for g in self.layer_groups:
            key = group_label(g)
            out[key] = out.get(key, 0) + g.count
        return out

    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size * (1 if self.tie_embeddings else 2)

    def layer_params(self, active: bool = False) -> int:
        h = self.hidden_size
        total = 0
        for g in self.layer_groups:
            if g.ffn is None:
                ffn = 0
            else:
                ffn = g.ffn.active_params(h) if active else g.ffn.params(h)
            total += g.count * (g.mixer.params(h) + ffn + g.norms * h)  # RMSNorm weight vectors
        return total

    def total_params(self) -> int:
        """All parameters: embeddings (+ untied LM head), layers, final norm."""
        return self.embedding_params() + self.layer_params() + self.hidden_size

    def active_params(self) -> int:
        """Parameters touched per token (top-k experts instead of all)."""
        return self.embedding_params() + self.layer_params(active=True) + self.hidden_size

    def kv_elements_per_token(self, context: int | None = None) -> float:
        """Cached elements per token summed over layers (sliding-window layers count only while
        `context` is within their window, i.e. per-token cost at context length `context`)."""
        total = 0.0
        for g in self.layer_groups:
            per = g.mixer.kv_elements_per_token()
            w = getattr(g.mixer, "window", None)
            if w and context is not None and context > w:
                per = per * w / context
            total += g.count * per
        return total

    def kv_bytes_per_token(self, kv_bytes: float = 2.0) -> float:
        """KV-cache bytes per token of context, all layers, full-length (no window capping)."""
        return self.kv_elements_per_token() * kv_bytes

    def state_bytes_per_sequence(self, act_bytes: float = 2.0) -> float:
        """Constant per-sequence recurrent state (linear-attention and SSM layers)."""
        total = 0.0
        for g in self.layer_groups:
            if isinstance(g.mixer, LinearAttention):
                total += g.count * g.mixer.state_bytes_per_sequence()
            elif isinstance(g.mixer, (Mamba, Mamba2, GatedDeltaNet)):
                total += g.count * g.mixer.state_bytes_per_sequence(act_bytes)
        return total
