"""FLOP and pair-count formulas shared by the simulator and (later) the profilers.

Convention: 2 FLOP per multiply-add; causal attention counts the pairs (query, key) with
key position <= query position, i.e. about half the square (FlashAttention-2's `flops()` helper
counts 4 * seqlen^2 * head_dim * heads / 2 for causal, which is this with dqk = dv = head_dim).
"""

from __future__ import annotations

import numpy as np


def matmul_flops(m, n, k):
    """(m x k) @ (k x n): 2 m n k."""
    return 2.0 * m * n * k


def touched_experts(tokens, top_k: int, experts: int):
    """Expected distinct experts hit by `tokens` tokens each routed to `top_k` of `experts` uniformly:
    experts x (1 - (1 - k/e)^tokens) (each expert is missed by a token with probability 1 - k/e)."""
    return experts * -np.expm1(tokens * np.log1p(-top_k / experts))


def moe_passes(pairs, tokens, inter, hidden, up):
    """Elements read and written by a fused MoE kernel's two memory passes, as the engine prices them
    (layers.expert_ops) and the importer reads the measured kernels (aic_points.moe_points): the
    activation, `up` x `inter` in and `inter` out per (token, expert) pair, and the top-k combine,
    `hidden` in per pair and `hidden` out per token. ((act_in, act_out), (combine_in, combine_out))."""
    return (pairs * up * inter, pairs * inter), (pairs * hidden, tokens * hidden)


def causal_pairs_upto(x, window=None):
    """Sum over positions i < x of the keys position i attends to, continuous form: x^2/2 for full
    causal attention; with a sliding window W, W^2/2 + W (x - W) once x > W."""
    x = np.asarray(x, dtype=float)
    if window is None:
        return x * x / 2.0
    return np.where(x <= window, x * x / 2.0, window * window / 2.0 + window * (x - window))


def prefill_pairs(batch, prompt, shared_prefix, window=None):
    """Causal (query, key) pairs per head for the prefill of `batch` prompts of `prompt` tokens whose
    first `shared_prefix` tokens are common: the prefix is computed once, each suffix attends to it."""
    f_p = causal_pairs_upto(prompt, window)
    f_s = causal_pairs_upto(shared_prefix, window)
    return f_s + batch * (f_p - f_s)


def attention_flops(pairs, heads, qk_dim, v_dim):
    """QK^T and PV for `pairs` query-key pairs: 2 * pairs * heads * (qk_dim + v_dim)."""
    return 2.0 * pairs * heads * (qk_dim + v_dim)


def flash_query_block_rows(head_dim: int, smem_per_sm_bytes):
    """Rows of Q per thread block in FlashAttention-2's forward kernel (arXiv:2307.08691 §3.3):
    128 for head dims up to 128 on GPUs with >= 160 KiB shared memory per SM (A100/H100 class),
    64 otherwise. Each Q block streams the K/V prefix once, so K/V reads = pairs / rows."""
    big = np.asarray(smem_per_sm_bytes) >= 160 * 1024
    return np.where(big & (head_dim <= 128), 128.0, 64.0)


def flash_kv_hbm_tokens(pairs, tokens, seqlen, block_rows, sm_count):
    """K/V tokens streamed from HBM by a tiled causal attention forward.

    Each Q block reads its K/V prefix (pairs / block_rows tokens), but FlashAttention's grid runs
    consecutive Q blocks of one (batch, head) side by side, up to one per SM, and those blocks stream
    the same K/V tiles, which hit in L2: HBM sees pairs / (block_rows * concurrent blocks). Every
    K/V token is read at least once.
    """
    concurrent = np.clip(np.ceil(seqlen / block_rows), 1.0, sm_count)
    return np.maximum(pairs / (block_rows * concurrent), tokens)


def selective_scan_flops(tokens, d_inner, d_state):
    """Mamba selective scan: discretise (exp, two multiplies), recurrence (multiply-add) and
    readout (multiply-add) per (channel, state) element: ~9 FLOP (Mamba, arXiv:2312.00752 §3.3)."""
    return 9.0 * tokens * d_inner * d_state


def lightning_attention_flops(tokens, heads, head_dim, block):
    """Lightning attention (arXiv:2401.04658): intra-block causal softmax-free attention
    (block/2 keys per query, QK and PV: 2 * block * head_dim per token) plus the inter-block
    state read and update (2 head_dim^2 each per token)."""
    return heads * tokens * (2.0 * block * head_dim + 4.0 * head_dim * head_dim)
