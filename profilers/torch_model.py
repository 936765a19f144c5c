"""A real torch decoder with a zoo model's shapes and random weights, for `roofline validate`.

`Decoder(arch, layers, dtype, device)` builds embeddings, pre-norm decoder layers (RMSNorm, RoPE,
GQA attention through `scaled_dot_product_attention`, gated FFN or top-k MoE) and an LM head from a
`ModelArch`; nothing is downloaded. It runs prefill (causal, writing a preallocated static KV cache
of shape [layers, batch, kv_heads, max_len, head_dim]) and one decode step at a fixed position
(reading only the cache slice that step attends, so a CUDA graph can capture it).

Supported: softmax attention (MHA/GQA/MQA, with or without sliding windows) with dense or MoE
FFNs. Causal prefill uses SDPA's flash backend on GPUs (GQA native). Sliding windows are exact:
decode reads the last `window` positions; windowed prefill attends in query chunks of one window
with a band mask and repeated K/V heads (SDPA's memory-efficient backend, not flash).
Approximations, the same for every family: llama-style layers (no Gemma-2 logit soft-capping or
extra norms, RoPE over the whole head), greedy sampling (softmax + argmax). MLA, linear attention
and Mamba layers are not built (`UnsupportedModel`). Timing is left to `profilers.validate`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from roofline.api import Attention, ModelArch, ModelConfigError, MoEFFN

SUPPORTED = (
    "softmax attention (MHA/GQA/MQA, optionally sliding-window) with dense or MoE gated FFNs: "
    "llama, mistral, mixtral, qwen2, phi3, yi, glm-4, gemma-2"
)
ROPE_THETA = 10_000.0  # timing does not depend on the base; ModelArch does not carry it


class UnsupportedModel(ModelConfigError):
    """A model whose layers this torch decoder cannot build."""


def check_supported(arch: ModelArch) -> None:
    """Raise UnsupportedModel naming the unsupported layer kinds and what is supported."""
    bad = sorted({g.mixer.kind for g in arch.layer_groups if not isinstance(g.mixer, Attention)})
    if bad:
        raise UnsupportedModel(
            f"{arch.name}: roofline validate cannot build {', '.join(bad)} layers in torch; "
            f"supported: {SUPPORTED}"
        )
    shapes = {(g.mixer.num_kv_heads, g.mixer.head_dim) for g in arch.layer_groups}
    if len(shapes) > 1:
        raise UnsupportedModel(
            f"{arch.name}: layers differ in (kv_heads, head_dim) {sorted(shapes)}; the static KV cache "
            "needs one shape for all layers"
        )


def built_groups(arch: ModelArch, layers: int) -> list:
    """(mixer, ffn, count) per layer group for `layers` built layers, apportioned to the groups in
    proportion to their full counts (largest remainder), so scaling by full/built stays fair."""
    full = arch.num_layers
    if not 1 <= layers <= full:
        raise ValueError(f"layers must be in 1..{full}, got {layers}")
    shares = [g.count * layers / full for g in arch.layer_groups]
    counts = [int(s) for s in shares]
    by_remainder = sorted(range(len(shares)), key=lambda i: shares[i] - counts[i], reverse=True)
    for i in by_remainder[: layers - sum(counts)]:
        counts[i] += 1
    return [(g.mixer, g.ffn, c) for g, c in zip(arch.layer_groups, counts) if c]


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5, **factory):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim, **factory))

    def forward(self, x):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * self.weight


def rope_tables(positions: int, head_dim: int, dtype, device):
    """cos, sin of shape [positions, head_dim // 2] (RoFormer, arXiv:2104.09864 eq. 34)."""
    inv = 1.0 / ROPE_THETA ** (torch.arange(0, head_dim // 2, device=device).float() * 2 / head_dim)
    angles = torch.outer(torch.arange(positions, device=device).float(), inv)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x, cos, sin):
    """x: [b, heads, t, d]; cos/sin: [t, d/2]. Rotates the two halves of each head (HF llama)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half : 2 * half]
    rotated = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
    return torch.cat((rotated, x[..., 2 * half :]), dim=-1) if x.shape[-1] % 2 else rotated


@dataclass
class KVCache:
    """Preallocated K and V, [layers, batch, kv_heads, max_len, head_dim], and RoPE tables."""

    k: torch.Tensor
    v: torch.Tensor
    cos: torch.Tensor
    sin: torch.Tensor

    @property
    def max_len(self) -> int:
        return self.k.shape[3]

    def nbytes(self) -> int:
        return self.k.numel() * self.k.element_size() * 2


class SelfAttention(nn.Module):
    def __init__(self, hidden: int, spec: Attention, **factory):
        super().__init__()
        self.spec = spec
        h, kv, d = spec.num_heads, spec.num_kv_heads, spec.head_dim
        self.qkv = nn.Linear(hidden, (h + 2 * kv) * d, bias=spec.qkv_bias, **factory)
        self.o = nn.Linear(h * d, hidden, bias=False, **factory)

    def _project(self, x, cos, sin):
        b, t, _ = x.shape
        h, kv, d = self.spec.num_heads, self.spec.num_kv_heads, self.spec.head_dim
        q, k, v = self.qkv(x).split((h * d, kv * d, kv * d), dim=-1)
        q = apply_rope(q.view(b, t, h, d).transpose(1, 2), cos, sin)
        k = apply_rope(k.view(b, t, kv, d).transpose(1, 2), cos, sin)
        return q, k, v.view(b, t, kv, d).transpose(1, 2)

    def prefill(self, x, cache: KVCache, layer: int):
        b, t, _ = x.shape
        q, k, v = self._project(x, cache.cos[:t], cache.sin[:t])
        cache.k[layer, :, :, :t] = k
        cache.v[layer, :, :, :t] = v
        w = self.spec.window
        if w and t > w:
            out = _banded_attention(q, k, v, w)
        else:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        return self.o(out.transpose(1, 2).reshape(b, t, -1))

    def decode(self, x, pos: int, cache: KVCache, layer: int):
        """One new token at position `pos` (a Python int: the slices are static for CUDA graphs)."""
        b = x.shape[0]
        h, kv, d = self.spec.num_heads, self.spec.num_kv_heads, self.spec.head_dim
        q, k, v = self._project(x, cache.cos[pos : pos + 1], cache.sin[pos : pos + 1])
        cache.k[layer, :, :, pos] = k[:, :, 0]
        cache.v[layer, :, :, pos] = v[:, :, 0]
        lo = max(0, pos + 1 - self.spec.window) if self.spec.window else 0
        keys, values = cache.k[layer, :, :, lo : pos + 1], cache.v[layer, :, :, lo : pos + 1]
        # GQA without copying K/V: the h/kv query heads of one KV head attend as h/kv "queries".
        out = F.scaled_dot_product_attention(q.reshape(b, kv, h // kv, d), keys, values)
        return self.o(out.reshape(b, 1, h * d))


def _banded_attention(q, k, v, window: int):
    """Causal sliding-window attention (query i sees keys i-window+1..i), in query chunks of one
    window: each chunk reads at most 2*window keys, so cost grows as t*window, not t^2. SDPA's GQA
    flag is flash-only and flash takes no mask, so each chunk's K/V heads are repeated here to keep
    the masked (memory-efficient) backend instead of the math one."""
    t, group = q.shape[2], q.shape[1] // k.shape[1]
    outs = []
    for start in range(0, t, window):
        stop = min(start + window, t)
        lo = max(0, start - window + 1)
        qi = torch.arange(start, stop, device=q.device)[:, None]
        kj = torch.arange(lo, stop, device=q.device)[None, :]
        mask = (kj <= qi) & (kj > qi - window)
        keys = k[:, :, lo:stop].repeat_interleave(group, dim=1)
        values = v[:, :, lo:stop].repeat_interleave(group, dim=1)
        outs.append(F.scaled_dot_product_attention(q[:, :, start:stop], keys, values, attn_mask=mask))
    return torch.cat(outs, dim=2)


class GatedFFN(nn.Module):
    """SwiGLU (gate and up fused in one GEMM) or a plain up/down MLP."""

    def __init__(self, hidden: int, intermediate: int, gated: bool = True, **factory):
        super().__init__()
        self.gated = gated
        self.up = nn.Linear(hidden, (2 if gated else 1) * intermediate, bias=False, **factory)
        self.down = nn.Linear(intermediate, hidden, bias=False, **factory)

    def forward(self, x):
        if self.gated:
            gate, up = self.up(x).chunk(2, dim=-1)
            return self.down(F.silu(gate) * up)
        return self.down(F.silu(self.up(x)))


class MoE(nn.Module):
    """Top-k routed experts (softmax router, renormalised top-k weights) plus shared experts; a
    gather/scatter loop over the experts that received tokens (data-dependent: no CUDA graph)."""

    def __init__(self, hidden: int, spec: MoEFFN, **factory):
        super().__init__()
        self.top_k = spec.top_k
        self.router = nn.Linear(hidden, spec.num_experts, bias=False, **factory)
        self.experts = nn.ModuleList(
            GatedFFN(hidden, spec.expert_intermediate, spec.gated, **factory) for _ in range(spec.num_experts)
        )
        self.shared = (
            GatedFFN(hidden, spec.shared_intermediate, spec.gated, **factory)
            if spec.shared_intermediate
            else None
        )

    def forward(self, x):
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        weights, chosen = torch.softmax(self.router(x).float(), dim=-1).topk(self.top_k, dim=-1)
        weights = (weights / weights.sum(-1, keepdim=True)).to(x.dtype)
        out = torch.zeros_like(x) if self.shared is None else self.shared(x)
        flat = chosen.flatten()
        for e in flat.unique().tolist():
            slots = (flat == e).nonzero().squeeze(1)
            rows = slots // self.top_k
            y = self.experts[e](x[rows]) * weights.flatten()[slots, None]
            out.index_add_(0, rows, y)
        return out.reshape(shape)


class Block(nn.Module):
    def __init__(self, hidden: int, mixer: Attention, ffn, **factory):
        super().__init__()
        self.attn_norm = RMSNorm(hidden, **factory)
        self.attn = SelfAttention(hidden, mixer, **factory)
        self.ffn_norm = RMSNorm(hidden, **factory)
        if isinstance(ffn, MoEFFN):
            self.ffn = MoE(hidden, ffn, **factory)
        else:
            self.ffn = GatedFFN(hidden, ffn.intermediate, ffn.gated, **factory)


class Decoder(nn.Module):
    """`layers` decoder layers of `arch` (default all) with random weights on `device`."""

    def __init__(self, arch: ModelArch, layers: int | None = None, dtype=torch.float32, device="cpu"):
        super().__init__()
        check_supported(arch)
        factory = {"dtype": dtype, "device": torch.device(device)}
        self.arch, self.dtype, self.device = arch, dtype, factory["device"]
        self.groups = built_groups(arch, layers or arch.num_layers)
        h = arch.hidden_size
        self.embed = nn.Embedding(arch.vocab_size, h, **factory)
        self.blocks = nn.ModuleList(
            Block(h, mixer, ffn, **factory) for mixer, ffn, count in self.groups for _ in range(count)
        )
        self.norm = RMSNorm(h, **factory)
        self.lm_head = nn.Linear(h, arch.vocab_size, bias=False, **factory)
        if arch.tie_embeddings:
            self.lm_head.weight = self.embed.weight
        self.has_moe = any(isinstance(ffn, MoEFFN) for _, ffn, _ in self.groups)

    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    def new_cache(self, batch: int, max_len: int) -> KVCache:
        spec = self.groups[0][0]
        shape = (self.num_layers, batch, spec.num_kv_heads, max_len, spec.head_dim)
        k = torch.zeros(shape, dtype=self.dtype, device=self.device)
        cos, sin = rope_tables(max_len, spec.head_dim, self.dtype, self.device)
        return KVCache(k, torch.zeros_like(k), cos, sin)

    def head(self, x_last):
        """Final norm, LM head and greedy sampling of the last position: (logits, tokens)."""
        logits = self.lm_head(self.norm(x_last))
        return logits, torch.softmax(logits.float(), dim=-1).argmax(dim=-1)

    @torch.inference_mode()
    def prefill(self, tokens, cache: KVCache):
        """tokens [b, t] -> (last-position logits [b, vocab], sampled token [b]); fills cache[:t]."""
        x = self.embed(tokens)
        for i, blk in enumerate(self.blocks):
            x = x + blk.attn.prefill(blk.attn_norm(x), cache, i)
            x = x + blk.ffn(blk.ffn_norm(x))
        return self.head(x[:, -1])

    @torch.inference_mode()
    def decode(self, tokens, pos: int, cache: KVCache):
        """tokens [b, 1] at position `pos` -> (logits [b, vocab], sampled token [b])."""
        x = self.embed(tokens)
        for i, blk in enumerate(self.blocks):
            x = x + blk.attn.decode(blk.attn_norm(x), pos, cache, i)
            x = x + blk.ffn(blk.ffn_norm(x))
        return self.head(x[:, -1])

    @torch.inference_mode()
    def outside_layers(self, tokens):
        """The non-layer part of a forward pass: embedding of all tokens, then head() of the last."""
        return self.head(self.embed(tokens)[:, -1])


def layer_bytes(arch: ModelArch, dtype_bytes: int) -> float:
    """Weight bytes of one average decoder layer."""
    return arch.layer_params() / arch.num_layers * dtype_bytes


def outside_bytes(arch: ModelArch, dtype_bytes: int) -> float:
    """Weight bytes outside the layers: embedding, LM head, final norm."""
    return (arch.embedding_params() + arch.hidden_size) * dtype_bytes
