"""Op builders for the chunked recurrent mixers: Mamba-2 (SSD) and Gated DeltaNet, in prefill or one
decode step, on one GPU of a tensor-parallel group (heads divided by tp). Called from
`layers.layer_ops`; the projections are GEMMs, the scan is one vector-unit op per layer.
"""

from __future__ import annotations

from roofline.simulator.model import GatedDeltaNet, Mamba2
from roofline.simulator.opinputs import gemm
from roofline.simulator.ops import Op


def ssd_flops(tokens, heads: int, head_dim: int, d_state: int, chunk: int):
    """Mamba-2 SSD chunked scan (arXiv:2405.21060 §7, Listing 1), per token and head: intra-chunk
    C·B^T scores (chunk·d_state MACs, causal half) and their product with X (chunk·head_dim, half),
    the chunk state B^T X (d_state·head_dim) and its read-out C·state (d_state·head_dim):
    2·heads·(chunk·(d_state + head_dim)/2 + 2·d_state·head_dim) FLOP per token."""
    return 2.0 * tokens * heads * (chunk * (d_state + head_dim) / 2.0 + 2.0 * d_state * head_dim)


def delta_rule_flops(tokens, heads: int, k_dim: int, v_dim: int, chunk: int):
    """Chunked gated delta rule (Yang et al., arXiv:2412.06464 §3; the WY-form chunkwise algorithm of
    DeltaNet, arXiv:2406.06484 §3.2), per token and value head: intra-chunk K·K^T and Q·K^T (chunk·k_dim
    each, causal half), their product with the values (chunk·v_dim), and the state read, update and
    correction (3·k_dim·v_dim): 2·heads·(chunk·(k_dim + v_dim/2) + 3·k_dim·v_dim) FLOP per token."""
    return 2.0 * tokens * heads * (chunk * (k_dim + v_dim / 2.0) + 3.0 * k_dim * v_dim)


def scan_op(ctx, name: str, flops, byts, count) -> Op:
    """A recurrent scan (selective scan, SSD, gated delta rule): vector-unit FLOPs over the state, one
    kernel per pass."""
    return Op(
        name=name,
        kind="ssm_scan",
        flops=flops,
        bytes=byts,
        compute_rate=ctx.rates.vector_rate,
        memory_rate=ctx.rates.mem_rate,
        count=count,
        kernels=ctx.shape.passes,
    )


def mamba2_ops(ctx, m: Mamba2, count) -> list:
    h = ctx.shape.hidden
    heads = ctx.shard.split(m.num_heads)
    d = heads * m.head_dim
    bc = 2 * m.n_groups * m.d_state  # B and C, replicated per rank (groups <= tp in practice)
    ops = [gemm(ctx, "in_proj", 2 * d + bc + heads, h, count)]
    state = d * m.d_state * 4.0
    if ctx.shape.phase == "prefill":
        flops = ssd_flops(ctx.shape.tokens, heads, m.head_dim, m.d_state, m.chunk_size)
        io = ctx.shape.tokens * (3 * d + bc) * ctx.fmt.ab + ctx.shape.batch * state
    else:
        flops = ssd_flops(ctx.shape.batch, heads, m.head_dim, m.d_state, 1)
        io = ctx.shape.batch * ((3 * d + bc) * ctx.fmt.ab + 2.0 * state)
    ops.append(scan_op(ctx, "ssd_scan", flops, io, count))
    ops.append(gemm(ctx, "out_proj", h, d, count))
    return ops


def gated_deltanet_ops(ctx, m: GatedDeltaNet, count) -> list:
    h = ctx.shape.hidden
    kh = ctx.shard.split(m.num_k_heads)
    vh = ctx.shard.split(m.num_v_heads)
    kd, vd = kh * m.k_head_dim, vh * m.v_head_dim
    ops = [gemm(ctx, "in_proj_qkvz_ba", 2 * kd + 2 * vd + 2 * vh, h, count)]
    state = vh * m.k_head_dim * m.v_head_dim * 4.0
    if ctx.shape.phase == "prefill":
        flops = delta_rule_flops(ctx.shape.tokens, vh, m.k_head_dim, m.v_head_dim, m.chunk_size)
        io = ctx.shape.tokens * (2 * kd + 3 * vd) * ctx.fmt.ab + ctx.shape.batch * state
    else:
        flops = delta_rule_flops(ctx.shape.batch, vh, m.k_head_dim, m.v_head_dim, 1)
        io = ctx.shape.batch * ((2 * kd + 3 * vd) * ctx.fmt.ab + 2.0 * state)
    ops.append(scan_op(ctx, "gated_delta_rule", flops, io, count))
    ops.append(gemm(ctx, "out_proj", h, vd, count))
    return ops
