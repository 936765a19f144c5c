"""Per-GPU memory: weights, KV cache and recurrent state, peak activations, runtime overhead; and the
closed-form capacity limits `max_batch` and `max_context_tokens` that follow from them.

Sharding: tensor parallelism divides attention heads (KV heads replicated when fewer than tp; the MLA
latent is replicated on every rank), FFN width and vocabulary; pipeline parallelism divides layers
(the stage holding the embedding or LM head is taken). Shared-prefix KV is stored once per replica.
Sliding-window layers hold at most `window` tokens per sequence.

Activations are an estimate of the largest live set per token row: the residual stream and its
normed copy plus the larger of the mixer's and the FFN's intermediates, with FlashAttention (no
score matrix); plus fp32 logits for one row per sequence.
"""

from __future__ import annotations

import math

import numpy as np

from roofline.simulator.model import MLA, Attention, DenseFFN, LinearAttention, Mamba, ModelArch


def weight_bytes_per_gpu(model: ModelArch, tp: int, pp: int, wb: float) -> float:
    """Weights on the most loaded GPU: layers / pp plus the embedding (and untied head) / tp."""
    emb = model.embedding_params() if pp == 1 else model.vocab_size * model.hidden_size
    return (model.layer_params() / pp + emb + model.hidden_size) / tp * wb


def _kv_elements_per_gpu(m, tp: int) -> float:
    if isinstance(m, Attention):
        return 2 * max(1, math.ceil(m.num_kv_heads / tp)) * m.head_dim
    if isinstance(m, MLA):
        return m.kv_elements_per_token()
    return 0.0


def _state_bytes_per_gpu(m, tp: int, ab: float) -> float:
    if isinstance(m, (LinearAttention, Mamba)):
        return (
            m.state_bytes_per_sequence() / tp
            if isinstance(m, LinearAttention)
            else m.state_bytes_per_sequence(ab) / tp
        )
    return 0.0


class KVModel:
    """KV/state bytes per GPU as a function of batch b and context C (prompt + output tokens):
    full * (S + b (C - S)) + sum_w a_w * b * min(C, w) + b * state."""

    def __init__(self, model: ModelArch, tp: int, pp: int, kb: float, ab: float):
        self.full = 0.0
        self.windows: dict = {}
        self.state = 0.0
        for g in model.layer_groups:
            per_tok = g.count / pp * _kv_elements_per_gpu(g.mixer, tp) * kb
            w = getattr(g.mixer, "window", None)
            if w:
                self.windows[w] = self.windows.get(w, 0.0) + per_tok
            else:
                self.full += per_tok
            self.state += g.count / pp * _state_bytes_per_gpu(g.mixer, tp, ab)

    def bytes(self, b, C, S):
        total = self.full * (S + b * (C - S)) + b * self.state
        for w, a in self.windows.items():
            total = total + a * b * np.minimum(C, w)
        return total

    def per_sequence(self, C, S):
        """Bytes each additional sequence adds at context C (k1 in total = k0 + b k1)."""
        total = self.full * (C - S) + self.state
        for w, a in self.windows.items():
            total = total + a * np.minimum(C, w)
        return total


def activation_bytes_per_row(model: ModelArch, tp: int, ab: float, phase: str) -> float:
    """Largest live activation bytes per token row in one layer (see module docstring)."""
    h = model.hidden_size
    worst = 0.0
    for g in model.layer_groups:
        m, f = g.mixer, g.ffn
        heads = max(1, math.ceil(getattr(m, "num_heads", 1) / tp))
        if isinstance(m, Attention):
            kv = max(1, math.ceil(m.num_kv_heads / tp))
            mix = (heads + 2 * kv) * m.head_dim + heads * m.head_dim
        elif isinstance(m, MLA):
            mix = heads * m.qk_dim + heads * m.v_dim
            if phase == "prefill":
                mix += heads * (m.qk_dim + m.v_dim)
        elif isinstance(m, LinearAttention):
            mix = 5 * heads * m.head_dim
        else:
            mix = 4 * math.ceil(m.d_inner / tp)
        if isinstance(f, DenseFFN):
            ffn = 3 * math.ceil(f.intermediate / tp)
        else:
            ffn = f.top_k * 3 * math.ceil(f.expert_intermediate / tp) + 3 * math.ceil(
                f.shared_intermediate / tp
            )
        worst = max(worst, mix, ffn)
    return (2 * h + worst) * ab


def logits_bytes_per_row(model: ModelArch, tp: int) -> float:
    return math.ceil(model.vocab_size / tp) * 4.0


def activation_terms(model: ModelArch, tp: int, ab: float, prompt, shared, chunk) -> list:
    """[(alpha, beta)] per phase/pass: peak activation bytes = alpha + beta * b for batch b.

    Prefill rows per pass: the chunk when chunked, else the shared-prefix pass (S rows) and the
    suffix pass (b (P - S) rows); decode: b rows. Each pass also holds fp32 logits for b rows.
    """
    rp = activation_bytes_per_row(model, tp, ab, "prefill")
    rd = activation_bytes_per_row(model, tp, ab, "decode")
    lg = logits_bytes_per_row(model, tp)
    chunked = chunk > 0
    return [
        (np.where(chunked, rp * chunk, rp * shared), np.full(np.shape(prompt), lg)),
        (np.zeros(np.shape(prompt)), np.where(chunked, 0.0, rp * (prompt - shared)) + lg),
        (np.zeros(np.shape(prompt)), np.full(np.shape(prompt), rd + lg)),
    ]


def max_batch(room, kv: KVModel, C, S, acts) -> np.ndarray:
    """Largest b with k0 + b k1 + alpha_p + beta_p b <= room for every phase p (room = capacity -
    weights - overhead); k0 = shared-prefix KV, k1 = KV per additional sequence."""
    k0 = kv.full * S
    k1 = kv.per_sequence(C, S)
    best = np.full(np.shape(room), np.inf)
    for alpha, beta in acts:
        with np.errstate(divide="ignore", invalid="ignore"):
            cand = (room - k0 - alpha) / (k1 + beta)
        best = np.minimum(best, cand)
    return np.floor(np.maximum(best, 0.0))


def max_context(room, kv: KVModel, b, S, chunk, model: ModelArch, tp: int, ab: float, output) -> np.ndarray:
    """Largest C = prompt + output that fits at batch b, output fixed: f(C) <= room with f piecewise
    linear and increasing (breakpoints at sliding windows); unchunked prefill holds activations for
    b (C - output - S) rows. Infinite where nothing grows with context (no attention layers, or
    only sliding windows with chunked prefill)."""
    rp = activation_bytes_per_row(model, tp, ab, "prefill")
    rd = activation_bytes_per_row(model, tp, ab, "decode")
    lg = logits_bytes_per_row(model, tp)
    act_const = np.maximum(np.where(chunk > 0, rp * chunk, rp * S) + b * lg, b * (rd + lg))
    act_slope = np.where(chunk > 0, 0.0, rp * b)
    act_off = np.where(chunk > 0, 0.0, -rp * b * (S + output))
    wins = sorted(kv.windows)
    edges = [0.0] + wins + [np.inf]
    result = np.full(np.shape(room), np.nan)
    for i in range(len(edges) - 1):
        sat = wins[:i]  # windows already full in this region
        intercept = kv.full * S * (1 - b) + b * kv.state + sum(kv.windows[w] * b * w for w in sat)
        slope = kv.full * b + sum(kv.windows[w] * b for w in wins[i:])
        c_a = (room - intercept - act_const) / np.maximum(slope, 1e-300)
        c_b = (room - intercept - act_off) / np.maximum(slope + act_slope, 1e-300)
        c = np.minimum(c_a, c_b)
        inside = (c >= edges[i]) & (c <= edges[i + 1]) & np.isnan(result)
        result = np.where(inside, c, result)
    result = np.where(np.isnan(result), 0.0, result)
    return np.floor(np.maximum(result, 0.0))
