"""Op builders for one decoder layer group in prefill or in one decode step.

Each builder returns `Op`s for `group.count` identical layers on one GPU of a tensor-parallel group
(heads, FFN width and vocabulary divided by tp; KV heads replicated when fewer than tp). Prefill
processes `rows` tokens per pass for `passes` passes (chunks, or prefix + suffixes); decode processes
`rows = batch` tokens once, with attention cost affine in the KV length (`KVLinear`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from roofline.simulator import eager_hf
from roofline.simulator import flops as F
from roofline.simulator.grid_lookup import (
    grid_call_s,
    grid_converts_weights,
    grid_m_tile,
    grid_shape_scale,
    grid_skew,
    grid_values,
    measured_or,
)
from roofline.simulator.grids import gemm_tile_share
from roofline.simulator.grouped_gemm import (
    MOE_FIXED_S,
    grouped_attainment,
    grouped_gemm_efficiency,
    grouped_stream_share,
    moe_grouped_share,
    moe_routing_factor,
    moe_skew_curve,
    share_bits,
)
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
from roofline.simulator.opinputs import (
    OpInputs,
    edge_inputs,
    elementwise,
    gemm,
    gemm_grid,
    memory_op,
    weight_gemm_op,
)
from roofline.simulator.ops import Op
from roofline.simulator.recurrent_ops import gated_deltanet_ops, mamba2_ops, scan_op


def allreduce(ctx: OpInputs, name: str, count) -> list:
    if ctx.shard.tp <= 1:
        return []
    t = ctx.shard.groups["tp"].allreduce(ctx.shape.rows * ctx.shape.hidden * ctx.fmt.rb)
    return [
        Op(
            name=name,
            kind="comm",
            flops=0.0,
            bytes=0.0,
            count=count * ctx.shape.passes,
            kernels=0.0,
            fixed_s=t,
            stream="comm",
        )
    ]


def _linear_attention_ops(ctx: OpInputs, m: LinearAttention, count) -> list:
    h = ctx.shape.hidden
    heads = ctx.shard.heads(m)
    inner = heads * m.head_dim
    state = heads * m.head_dim * m.head_dim * 4.0  # fp32 state bytes per sequence
    ops = [gemm(ctx, "qkv_gate_proj", 4 * inner, h, count)]
    if ctx.shape.phase == "prefill":
        blocks = np.ceil(ctx.shape.tokens / m.block_size)
        flops = F.lightning_attention_flops(ctx.shape.tokens, heads, m.head_dim, m.block_size)
        byts = ctx.shape.tokens * 4 * inner * ctx.fmt.ab + 2.0 * blocks * state
    else:
        flops = 4.0 * ctx.shape.batch * heads * m.head_dim * m.head_dim
        byts = ctx.shape.batch * (4 * inner * ctx.fmt.ab + 2.0 * state)
    ops.append(
        Op(
            name="lightning_attention",
            kind="linear_attention",
            flops=flops,
            bytes=byts,
            compute_rate=ctx.rates.peak16 * ctx.rates.fraction("linear_attention"),
            memory_rate=ctx.rates.mem_rate,
            count=count,
            kernels=ctx.shape.passes,
        )
    )
    ops.append(
        elementwise(
            ctx,
            "attn_norm_gate",
            "elementwise",
            ctx.shape.rows * 2 * inner,
            ctx.shape.rows * inner,
            6.0,
            count,
        )
    )
    ops.append(gemm(ctx, "o_proj", h, inner, count))
    return ops


def _mamba_ops(ctx: OpInputs, m: Mamba, count) -> list:
    h = ctx.shape.hidden
    d = ctx.shard.split(m.d_inner)
    ops = [gemm(ctx, "in_proj", 2 * d, h, count)]
    ops.append(
        elementwise(
            ctx, "conv1d", "elementwise", ctx.shape.rows * d, ctx.shape.rows * d, 2.0 * m.d_conv, count
        )
    )
    ops.append(gemm(ctx, "x_proj", m.dt_rank + 2 * m.d_state, d, count))
    ops.append(gemm(ctx, "dt_proj", d, m.dt_rank, count))
    state = d * m.d_state * 4.0
    if ctx.shape.phase == "prefill":
        io = ctx.shape.tokens * (4 * d + 2 * m.d_state) * ctx.fmt.ab + ctx.shape.batch * state
        flops = F.selective_scan_flops(ctx.shape.tokens, d, m.d_state)
    else:
        io = ctx.shape.batch * ((4 * d + 2 * m.d_state) * ctx.fmt.ab + 2.0 * state)
        flops = F.selective_scan_flops(ctx.shape.batch, d, m.d_state)
    ops.append(scan_op(ctx, "selective_scan", flops, io, count))
    ops.append(gemm(ctx, "out_proj", h, d, count))
    return ops


def expert_ops(
    ctx: OpInputs, pairs, touched, inter: int, mult: int, top_k: int, count, experts: int | None = None
) -> list:
    """Routed-expert GEMMs for `pairs` (token, expert) assignments spread over `touched` experts of
    width `inter`: each touched expert's weights are read once per pass, rows per expert set the
    GEMM efficiency; then the activation, and the combine that sums each token's `top_k` expert
    outputs (pairs x hidden in, pairs / top_k x hidden out). `experts`: the layer's experts, all on
    this GPU (no expert parallelism), so that a fused-MoE grid that measured this model shape
    prices it as measured, or from the same model measured at other TP degrees (Grid.shape_scale)."""
    h = ctx.shape.hidden
    log2_rows = np.log2(np.maximum(pairs / np.maximum(touched, 1e-9), 1.0))
    # A profile's measured fused-MoE kernels (calibration.Grid "moe"): attainment of the two GEMMs'
    # roofline times plus the activation's and the combine's HBM passes, all inside the kernel.
    fused = grid_values(
        ctx.rates.eff,
        "moe",
        ctx.rates.row,
        "attainment",
        (log2_rows, np.log2(float(h)), np.log2(float(inter)), np.log2(np.maximum(touched, 1.0))),
    )
    if fused is not None and experts is not None and mult == 2:  # the grids hold gated experts
        # the measured model shape's own kernel against the grid (per-model kernel and tile choices)
        key = (int(h), int(inter), int(top_k), int(experts))
        scale = grid_shape_scale(
            ctx.rates.eff, "moe", ctx.rates.row, key, np.log2(np.maximum(pairs / top_k, 1.0))
        )
        fused = (fused[0] * scale, fused[1])
    # points a grid of kernels that convert four-bit weights themselves priced (their time holds it)
    converted = (
        np.logical_and(fused[1], grid_converts_weights(ctx.rates.eff, "moe", ctx.rates.row))
        if fused is not None
        else False
    )
    # each expert's rows are its own GEMM's: a GEMM grid counts them in its tiles, the fused
    # kernel's grid as they are
    rows = pairs / np.maximum(touched, 1e-9)
    real = gemm_tile_share(rows, grid_m_tile(ctx.rates.eff, "gemm", ctx.rates.row))
    if fused is not None:
        real = measured_or(fused[1], 1.0, real)
    bits = share_bits(ctx.fmt.ab)  # the GEMM inputs' width
    share = moe_grouped_share(log2_rows, bits)  # of a measured GEMM grid
    stream = grouped_stream_share(log2_rows, bits)  # of the datasheet model's streaming rate
    ops = []
    for name, n_, k_ in (("expert_up", mult * inter, h), ("expert_down", h, inter)):
        wide = n_ * np.maximum(touched, 1.0)  # the grouped launch: touched experts side by side
        eff = grouped_gemm_efficiency(ctx.rates.eff, ctx.rates.gemm_offset, log2_rows, wide, k_, bits)
        # Without a fused-MoE grid, the GEMM grid at the grouped launch's shape: the experts' weights
        # side by side (touched x n wide) through tiles of each expert's rows, one launch. Read at
        # one expert's (rows, n, k), a small GEMM's fixed time (10-16 us for an FP8/FP4 GEMM of
        # 64 x 1536 x 2048 on B200, with its activation quantisation) was charged once per expert.
        # The grouped kernel attains its measured share of the dense grid (MOE_GROUPED_SHARE).
        grid = gemm_grid(ctx, log2_rows, wide, k_)
        fallback = False if grid is None else grid[1]  # the points a GEMM grid prices (both GEMMs alike)
        if grid is not None:
            grid = (grouped_attainment(grid[0], share), grid[1])
        if fused is not None:
            grid = fused if grid is None or fused[1] is True else _either(fused, grid)
        ops.append(
            weight_gemm_op(
                ctx,
                name,
                F.matmul_flops(pairs, n_, k_),
                touched * n_ * k_ * ctx.fmt.wb,
                pairs * (k_ * ctx.fmt.ab + n_ * ctx.fmt.rb),
                eff,
                count * ctx.shape.passes,
                grid,
                real,
                stream,
                converted,
            )
        )
    # the fused kernel's fixed time (routing, permutation), once per pass: a fused-MoE grid's own
    # (Grid.call_s) where one priced the experts; where the GEMM grid did, the tables' median
    # (MOE_FIXED_S), which the GEMM grid does not hold
    fixed = MOE_FIXED_S[bits] * np.asarray(fallback, dtype=float)
    if fused is not None:
        fixed = np.asarray(measured_or(fused[1], grid_call_s(ctx.rates.eff, "moe", ctx.rates.row), fixed))
    ops[0] = replace(ops[0], latency_s=float(fixed) if fixed.ndim == 0 else fixed)
    (act_in, act_out), (combine_in, combine_out) = F.moe_passes(pairs, pairs / top_k, inter, h, mult)
    act = elementwise(ctx, "expert_act", "elementwise", act_in, act_out, 5.0, count)
    # each output element sums top_k weighted expert outputs: a multiply and an add per expert
    combine = elementwise(ctx, "expert_combine", "elementwise", combine_in, combine_out, 2.0 * top_k, count)
    if fused is not None:  # passes of the measured fused kernel: its attainment, no launch of their own
        att, has = fused
        act, combine = (
            replace(
                op,
                compute_rate=measured_or(has, np.inf, op.compute_rate),
                memory_rate=measured_or(has, ctx.rates.bw * att, op.memory_rate),
                kernels=measured_or(has, 0.0, op.kernels),  # per point: a hardware sweep mixes rows
            )
            for op in (act, combine)
        )
    ops.insert(1, act)
    ops.append(combine)
    if ctx.shard.moe_routing == "power_law":
        # a trained router's skew: the busiest experts' rows (and with expert parallelism the
        # busiest rank's) set the grouped kernel's tail, where the grids and shares above are of
        # evenly routed tokens: the measured fused-MoE grid's own kernels' skew (Grid.skew) where it
        # has one, else grouped_gemm's medians (moe_routing_factor)
        wbits, skew = share_bits(ctx.fmt.wb), None
        own = grid_skew(ctx.rates.eff, "moe", ctx.rates.row, log2_rows) if fused is not None else None
        if own is not None:
            default = moe_skew_curve(log2_rows, wbits, bits)
            skew = measured_or(np.logical_and(own[1], fused[1]), own[0], default)
        slow = moe_routing_factor(log2_rows, wbits, bits, ctx.shard.ep, skew)
        ops = [
            replace(op, compute_rate=op.compute_rate / slow, memory_rate=op.memory_rate / slow) for op in ops
        ]
    return ops


def _either(first, second) -> tuple:
    """Grid lookups (values, mask): `first` where it has a value, else `second`."""
    (a, has_a), (b, has_b) = first, second
    return np.where(has_a, a, b), np.logical_or(has_a, has_b)


def _ffn_ops(ctx: OpInputs, f, count) -> list:
    if f is None:  # mixer-only block (Mamba): no FFN, nothing to cost
        return []
    h, tp = ctx.shape.hidden, ctx.shard.tp
    ops = []
    mult = 2 if f.gated else 1
    if isinstance(f, DenseFFN):
        inter = ctx.shard.split(f.intermediate)
        ops.append(gemm(ctx, "ffn_up", mult * inter, h, count))
        ops.append(
            elementwise(
                ctx,
                "ffn_act",
                "elementwise",
                ctx.shape.rows * mult * inter,
                ctx.shape.rows * inter,
                5.0,
                count,
            )
        )
        ops.append(gemm(ctx, "ffn_down", h, inter, count))
        return ops
    if ctx.shard.ep > 1:  # expert parallelism: whole experts per GPU, all-to-all dispatch and combine
        from roofline.simulator.parallel import ep_moe_ops

        ops.append(gemm(ctx, "router", f.num_experts, h, count, rows=ctx.shape.rows / tp))
        ops += ep_moe_ops(ctx, f, count, expert_ops)
        if f.shared_intermediate:  # shared experts replicated, on this GPU's share of the tokens
            shared = f.shared_intermediate
            ops.append(gemm(ctx, "shared_up", mult * shared, h, count, rows=ctx.shape.rows / tp))
            ops.append(gemm(ctx, "shared_down", h, shared, count, rows=ctx.shape.rows / tp))
        return ops
    # MoE: expected distinct experts hit by `rows` tokens under uniform top-k routing.
    e, k = f.num_experts, f.top_k
    touched = F.touched_experts(ctx.shape.rows, k, e)
    ops.append(gemm(ctx, "router", e, h, count))
    ops += expert_ops(
        ctx, ctx.shape.rows * k, touched, ctx.shard.split(f.expert_intermediate), mult, k, count, e
    )
    if f.shared_intermediate:
        shared = ctx.shard.split(f.shared_intermediate)
        ops.append(gemm(ctx, "shared_up", mult * shared, h, count))
        ops.append(gemm(ctx, "shared_down", h, shared, count))
    if ctx.unfused:  # transformers' Python loop over the experts any token chose (eager_hf)
        ops = eager_hf.expert_loop(ops, touched)
    return ops


def layer_ops(ctx: OpInputs, group, attention_core=None) -> list:
    """All ops of `group.count` identical layers: norms, mixer, residuals, FFN, TP all-reduces
    (`attention_core` replaces the attention core of softmax layers: see `attention_ops`)."""
    from roofline.simulator.attention import attention_ops

    n, h, m = group.count, ctx.shape.hidden, group.mixer
    ops = [elementwise(ctx, "input_norm", "norm", ctx.shape.rows * h, ctx.shape.rows * h, 4.0, n)]
    if isinstance(m, (Attention, MLA)):
        ops += attention_ops(ctx, m, n, attention_core)
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
    ops.append(
        elementwise(ctx, "residual_add", "elementwise", 2 * ctx.shape.rows * h, ctx.shape.rows * h, 1.0, adds)
    )
    if group.ffn is None:
        return ops
    ops.append(elementwise(ctx, "post_attn_norm", "norm", ctx.shape.rows * h, ctx.shape.rows * h, 4.0, n))
    if group.norms > 2:  # Gemma 2/3's norms after the mixer and after the FFN (sandwich norms)
        rows = ctx.shape.rows * h
        ops.append(elementwise(ctx, "sandwich_norm", "norm", rows, rows, 4.0, n * (group.norms - 2)))
    ops += _ffn_ops(ctx, group.ffn, n)
    if not (ctx.shard.ep > 1 and isinstance(group.ffn, MoEFFN)):  # EP gathers its own outputs
        ops += allreduce(ctx, "ffn_allreduce", n)
    return ops


# Bytes per vocabulary entry of a row whose logits a prefill keeps (`runtime.prefill_logits: all`):
# the LM head's 16-bit output and its float32 copy (transformers' causal-LM heads before PR #31292,
# mid-2024: `logits = logits.float()` after `self.lm_head(hidden_states)` over every position)
ALL_LOGITS_BYTES = 2.0 + 4.0


def model_edge_ops(ctx: OpInputs, vocab: int, scaled: bool = False, all_logits: bool = False) -> list:
    """Embedding lookup for every token (`scaled`: then multiplied by sqrt(hidden), Gemma's
    normalizer, a kernel of its own); final norm, LM head and sampling for one token per sequence
    (`all_logits`, a prefill's under `runtime.prefill_logits: all`: the LM head over every row of
    the pass, and the float32 copy of its logits)."""
    h = ctx.shape.hidden
    edge = edge_inputs(ctx)  # 16-bit in quantized checkpoints
    ops = [
        Op(
            name="embedding",
            kind="embedding",
            flops=0.0,
            bytes=ctx.shape.rows * h * (edge.fmt.wb + ctx.fmt.rb),
            compute_rate=ctx.rates.peak16,
            memory_rate=ctx.rates.mem_rate,
            count=ctx.shape.passes,
        ),
    ]
    if scaled:
        rows = ctx.shape.rows * h
        ops.append(elementwise(ctx, "embed_scale", "elementwise", rows, rows, 1.0, 1.0))
    b = ctx.shape.batch
    v = ctx.shard.split(vocab)
    ops.append(elementwise(ctx, "final_norm", "norm", b * h, b * h, 4.0, 1.0 / ctx.shape.passes))
    if all_logits:
        rows = ctx.shape.rows
        ops.append(gemm(edge, "lm_head", v, h, 1.0))
        ops.append(memory_op(ctx, "logits_float", rows * v * ALL_LOGITS_BYTES, ctx.shape.passes))
    else:
        ops.append(gemm(edge, "lm_head", v, h, 1.0 / ctx.shape.passes, rows=b))
    ops.append(
        Op(
            name="sampling",
            kind="sampling",
            flops=5.0 * b * v,
            bytes=b * v * 4.0 * 2,
            compute_rate=ctx.rates.vector_rate,
            memory_rate=ctx.rates.mem_rate,
            count=1.0,
            kernels=2.0,
        )
    )
    return ops
