"""Op builders for one decoder layer group in prefill or in one decode step.

Each builder returns `Op`s for `group.count` identical layers on one GPU of a tensor-parallel group
(heads, FFN width and vocabulary divided by tp; KV heads replicated when fewer than tp). Prefill
processes `rows` tokens per pass for `passes` passes (chunks, or prefix + suffixes); decode processes
`rows = batch` tokens once, with attention cost affine in the KV length (`KVLinear`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from roofline.simulator import flops as F
from roofline.simulator.comm import ring_allreduce_time
from roofline.simulator.efficiency import (
    EfficiencyTable,
    gemm_efficiency,
    row_offsets,
)
from roofline.simulator.kvplan import DENSE
from roofline.simulator.model import (
    MLA,
    Attention,
    DenseFFN,
    GatedDeltaNet,
    LinearAttention,
    Mamba,
    Mamba2,
    MoEFFN,
)
from roofline.simulator.ops import Op
from roofline.simulator.recurrent_ops import gated_deltanet_ops, mamba2_ops

# Elementwise, norm and scan kernels run on the vector units; their FLOPs never bind next to HBM
# traffic, so any rate well below tensor-core peak serves (5% of it is still ~10x the fp32 rate).
VECTOR_FRACTION = 0.05


@dataclass
class PhaseCtx:
    """Everything an op builder needs, as arrays over sweep points."""

    phase: str  # "prefill" | "decode"
    hidden: int
    tp: int
    wb: float  # bytes per weight element
    ab: float  # bytes per activation element
    kb: float  # bytes per KV-cache element
    gemm_peak: object  # FLOP/s peak of the GEMMs' format
    attn_peak: object  # FLOP/s peak of the attention kernel's format (Dtypes.attention_compute)
    peak16: object  # 16-bit (fp32 for fp32 attention) tensor peak: kernels that stay in 16-bit
    # whatever the GEMM or attention format (elementwise via VECTOR_FRACTION, lightning attention)
    qb: float  # bytes per element of attention's Q, O and prefill K/V operands
    bw: object
    hbm_eff: object
    eff: EfficiencyTable
    row: object  # index of each point's hardware in eff
    smem: object
    sm_count: object
    rows: object  # tokens per pass
    passes: object
    batch: object  # sequences per replica
    prompt: object = 0.0
    shared: object = 0.0
    link_bw: object = np.inf
    link_alpha: object = 0.0
    host_rate: object = np.inf  # attainable host-link bytes/s
    plan: object = None  # KVPlan (None: dense)
    queries: float = 1.0  # query tokens per sequence per decode step (speculative verification)
    skip_selection: bool = False  # leading dense layers: no query-aware page selection
    groups: object = None  # topology.groups(): tp/cp/ep/pp/dp collectives
    cp: int = 1
    cp_variant: str = "pass-kv"
    ep: int = 1

    def __post_init__(self):
        # Derived once per phase, reused by every op builder.
        self.mem_rate = self.bw * self.hbm_eff
        self.plan = DENSE if self.plan is None else self.plan
        self.vector_rate = self.peak16 * VECTOR_FRACTION
        self.log2_rows = np.log2(np.maximum(self.rows, 1.0))
        self.log2_prompt = np.log2(np.maximum(self.prompt, 1.0))
        self.gemm_offset = row_offsets(self.eff.gemm, self.row)
        self.attn_offset = row_offsets(self.eff.attn, self.row)

    @property
    def tokens(self):
        return self.rows * self.passes

    def gemm(self, name: str, n, k, count, weight_elems=None, rows=None) -> Op:
        return gemm(self, name, n, k, count, weight_elems, rows)


def _split(n: int, tp: int) -> int:
    return max(1, math.ceil(n / tp))


def gemm(ctx: PhaseCtx, name: str, n, k, count, weight_elems=None, rows=None) -> Op:
    """Dense GEMM of (rows x k) by (k x n) weights, run once per pass per layer."""
    m = ctx.rows if rows is None else rows
    w = n * k if weight_elems is None else weight_elems
    log2_m = ctx.log2_rows if rows is None else np.log2(np.maximum(rows, 1.0))
    eff = gemm_efficiency(ctx.eff, ctx.gemm_offset, log2_m, n, k)
    return Op(
        name,
        "gemm",
        F.matmul_flops(m, n, k),
        w * ctx.wb + m * (k + n) * ctx.ab,
        compute_rate=ctx.gemm_peak * eff,
        memory_rate=ctx.mem_rate,
        count=count * ctx.passes,
    )


def elementwise(ctx: PhaseCtx, name: str, kind: str, elems_in, elems_out, flops_per_elem, count) -> Op:
    return Op(
        name,
        kind,
        flops_per_elem * elems_out,
        (elems_in + elems_out) * ctx.ab,
        compute_rate=ctx.vector_rate,
        memory_rate=ctx.mem_rate,
        count=count * ctx.passes,
    )


def allreduce(ctx: PhaseCtx, name: str, count) -> list:
    if ctx.tp <= 1:
        return []
    byts = ctx.rows * ctx.hidden * ctx.ab
    if ctx.groups is not None:
        t = ctx.groups["tp"].allreduce(byts)
    else:
        t = ring_allreduce_time(byts, ctx.tp, ctx.link_bw, ctx.link_alpha)
    return [Op(name, "comm", 0.0, 0.0, count=count * ctx.passes, kernels=0.0, fixed_s=t, stream="comm")]


def _linear_attention_ops(ctx: PhaseCtx, m: LinearAttention, count) -> list:
    h = ctx.hidden
    heads = _split(m.num_heads, ctx.tp)
    inner = heads * m.head_dim
    state = heads * m.head_dim * m.head_dim * 4.0  # fp32 state bytes per sequence
    ops = [gemm(ctx, "qkv_gate_proj", 4 * inner, h, count)]
    if ctx.phase == "prefill":
        blocks = np.ceil(ctx.tokens / m.block_size)
        flops = F.lightning_attention_flops(ctx.tokens, heads, m.head_dim, m.block_size)
        byts = ctx.tokens * 4 * inner * ctx.ab + 2.0 * blocks * state
    else:
        flops = 4.0 * ctx.batch * heads * m.head_dim * m.head_dim
        byts = ctx.batch * (4 * inner * ctx.ab + 2.0 * state)
    ops.append(
        Op(
            "lightning_attention",
            "linear_attention",
            flops,
            byts,
            ctx.peak16 * 0.5,
            ctx.mem_rate,
            count=count,
            kernels=ctx.passes,
        )
    )
    ops.append(
        elementwise(ctx, "attn_norm_gate", "elementwise", ctx.rows * 2 * inner, ctx.rows * inner, 6.0, count)
    )
    ops.append(gemm(ctx, "o_proj", h, inner, count))
    return ops


def _mamba_ops(ctx: PhaseCtx, m: Mamba, count) -> list:
    h = ctx.hidden
    d = _split(m.d_inner, ctx.tp)
    ops = [gemm(ctx, "in_proj", 2 * d, h, count)]
    ops.append(elementwise(ctx, "conv1d", "elementwise", ctx.rows * d, ctx.rows * d, 2.0 * m.d_conv, count))
    ops.append(gemm(ctx, "x_proj", m.dt_rank + 2 * m.d_state, d, count))
    ops.append(gemm(ctx, "dt_proj", d, m.dt_rank, count))
    state = d * m.d_state * 4.0
    if ctx.phase == "prefill":
        io = ctx.tokens * (4 * d + 2 * m.d_state) * ctx.ab + ctx.batch * state
        flops = F.selective_scan_flops(ctx.tokens, d, m.d_state)
    else:
        io = ctx.batch * ((4 * d + 2 * m.d_state) * ctx.ab + 2.0 * state)
        flops = F.selective_scan_flops(ctx.batch, d, m.d_state)
    ops.append(
        Op(
            "selective_scan",
            "ssm_scan",
            flops,
            io,
            ctx.vector_rate,
            ctx.mem_rate,
            count=count,
            kernels=ctx.passes,
        )
    )
    ops.append(gemm(ctx, "out_proj", h, d, count))
    return ops


def expert_ops(ctx: PhaseCtx, pairs, touched, inter: int, mult: int, count) -> list:
    """Routed-expert GEMMs for `pairs` (token, expert) assignments spread over `touched` experts of
    width `inter`: each touched expert's weights are read once per pass, rows per expert set the
    GEMM efficiency."""
    h = ctx.hidden
    log2_rows = np.log2(np.maximum(pairs / np.maximum(touched, 1e-9), 1.0))
    ops = []
    for name, n_, k_ in (("expert_up", mult * inter, h), ("expert_down", h, inter)):
        eff = gemm_efficiency(ctx.eff, ctx.gemm_offset, log2_rows, n_, k_)
        ops.append(
            Op(
                name,
                "gemm",
                F.matmul_flops(pairs, n_, k_),
                touched * n_ * k_ * ctx.wb + pairs * (n_ + k_) * ctx.ab,
                compute_rate=ctx.gemm_peak * eff,
                memory_rate=ctx.mem_rate,
                count=count * ctx.passes,
            )
        )
    ops.insert(
        1, elementwise(ctx, "expert_act", "elementwise", pairs * mult * inter, pairs * inter, 5.0, count)
    )
    return ops


def _ffn_ops(ctx: PhaseCtx, f, count) -> list:
    if f is None:  # mixer-only block (Mamba): no FFN, nothing to cost
        return []
    h, tp = ctx.hidden, ctx.tp
    ops = []
    mult = 2 if f.gated else 1
    if isinstance(f, DenseFFN):
        inter = _split(f.intermediate, tp)
        ops.append(gemm(ctx, "ffn_up", mult * inter, h, count))
        ops.append(
            elementwise(ctx, "ffn_act", "elementwise", ctx.rows * mult * inter, ctx.rows * inter, 5.0, count)
        )
        ops.append(gemm(ctx, "ffn_down", h, inter, count))
        return ops
    if ctx.ep > 1:  # expert parallelism: whole experts per GPU, all-to-all dispatch and combine
        from roofline.simulator.parallel import ep_moe_ops

        ops.append(gemm(ctx, "router", f.num_experts, h, count, rows=ctx.rows / tp))
        ops += ep_moe_ops(ctx, f, count, expert_ops)
        if f.shared_intermediate:  # shared experts replicated, on this GPU's share of the tokens
            shared = f.shared_intermediate
            ops.append(gemm(ctx, "shared_up", mult * shared, h, count, rows=ctx.rows / tp))
            ops.append(gemm(ctx, "shared_down", h, shared, count, rows=ctx.rows / tp))
        return ops
    # MoE: expected distinct experts hit by `rows` tokens under uniform top-k routing.
    e, k = f.num_experts, f.top_k
    touched = e * -np.expm1(ctx.rows * np.log1p(-k / e))
    ops.append(gemm(ctx, "router", e, h, count))
    ops += expert_ops(ctx, ctx.rows * k, touched, _split(f.expert_intermediate, tp), mult, count)
    if f.shared_intermediate:
        shared = _split(f.shared_intermediate, tp)
        ops.append(gemm(ctx, "shared_up", mult * shared, h, count))
        ops.append(gemm(ctx, "shared_down", h, shared, count))
    return ops


def layer_ops(ctx: PhaseCtx, group) -> list:
    from roofline.simulator.attention import attention_ops

    """All ops of `group.count` identical layers: norms, mixer, residuals, FFN, TP all-reduces."""
    n, h, m = group.count, ctx.hidden, group.mixer
    ops = [elementwise(ctx, "input_norm", "norm", ctx.rows * h, ctx.rows * h, 4.0, n)]
    if isinstance(m, (Attention, MLA)):
        ops += attention_ops(ctx, m, n)
    elif isinstance(m, LinearAttention):
        ops += _linear_attention_ops(ctx, m, n)
    elif isinstance(m, Mamba):
        ops += _mamba_ops(ctx, m, n)
    elif isinstance(m, Mamba2):
        ops += mamba2_ops(ctx, m, n)
    elif isinstance(m, GatedDeltaNet):
        ops += gated_deltanet_ops(ctx, m, n)
    ops += allreduce(ctx, "attn_allreduce", n)
    adds = n if group.ffn is None else 2 * n  # one residual add per sub-block
    ops.append(elementwise(ctx, "residual_add", "elementwise", 2 * ctx.rows * h, ctx.rows * h, 1.0, adds))
    if group.ffn is None:
        return ops
    ops.append(elementwise(ctx, "post_attn_norm", "norm", ctx.rows * h, ctx.rows * h, 4.0, n))
    ops += _ffn_ops(ctx, group.ffn, n)
    if not (ctx.ep > 1 and isinstance(group.ffn, MoEFFN)):  # EP gathers its own outputs
        ops += allreduce(ctx, "ffn_allreduce", n)
    return ops


def model_edge_ops(ctx: PhaseCtx, vocab: int) -> list:
    """Embedding lookup for every token; final norm, LM head and sampling for one token per sequence."""
    h = ctx.hidden
    ops = [
        Op(
            "embedding",
            "embedding",
            0.0,
            ctx.rows * h * (ctx.wb + ctx.ab),
            ctx.peak16,
            ctx.mem_rate,
            count=ctx.passes,
        ),
    ]
    b = ctx.batch
    v = _split(vocab, ctx.tp)
    ops.append(elementwise(ctx, "final_norm", "norm", b * h, b * h, 4.0, 1.0 / ctx.passes))
    ops.append(gemm(ctx, "lm_head", v, h, 1.0 / ctx.passes, rows=b))
    ops.append(
        Op(
            "sampling",
            "sampling",
            5.0 * b * v,
            b * v * 4.0 * 2,
            ctx.vector_rate,
            ctx.mem_rate,
            count=1.0,
            kernels=2.0,
        )
    )
    return ops
