"""One forward pass: the deployment resolved once, and the ops of one pass through the whole model.

`resolve(model, layout, dtypes, hw, eff, fabric)` turns a layout and its hardware rows into the typed
inputs the op builders share (`Shard` with the topology's collective groups, `Rates`, `Formats`) —
once per structural group for a sweep, once per deployment for the step-cost function.
`forward_ops(ctx, model, layout)` lists the ops of one pass of `ctx.shape` through every layer
(the plan's leading dense layers included), the model's edges, the plan's once-per-prefill
extras, offloaded weights crossing the host link and the pipeline's stage hand-offs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from roofline.simulator import eager_hf
from roofline.simulator.efficiency import HOST_LINK_EFFICIENCY, prefill_attention_measured, weight_only
from roofline.simulator.frameworks import framework
from roofline.simulator.kernel_scales import attention_prefill_scale, gemm_scale
from roofline.simulator.layers import layer_ops, model_edge_ops
from roofline.simulator.memory import weight_bytes_per_gpu
from roofline.simulator.model import group_label
from roofline.simulator.opinputs import Formats, OpInputs, Rates, Shard, above_one
from roofline.simulator.ops import Op, host_transfer
from roofline.simulator.topology import groups as topology_groups
from roofline.simulator.topology import host_fabric
from roofline.simulator.units import dtype_bytes


@dataclass(frozen=True)
class Resolved:
    """A deployment's typed op-builder inputs, and the kernel overhead of each point."""

    shard: Shard
    rates: Rates
    fmt: Formats
    overhead_s: object


def format_peaks(hw, dtypes) -> tuple:
    """Dense peak FLOP/s of the formats a deployment's kernels run in, on the hardware rows `hw`:
    the GEMMs' (the activations' format), the attention kernel's, and 16-bit (fp32 for fp32
    attention) for the elementwise, norm and scan kernels, which run on the vector units in 16-bit
    whatever the GEMM or attention format."""
    attn_dtype = dtypes.attention_compute
    return (
        hw.peak(dtypes.activations),
        hw.peak(attn_dtype),
        hw.peak("fp32" if attn_dtype == "fp32" else "bf16"),
    )


def mfu_peak(hw, dtypes):
    """The FLOP/s a phase's MFU is read against: the fastest of `format_peaks`, so that MFU stays at
    most 1. It is the GEMMs' peak on every GPU but where their format is slower than 16-bit:
    Blackwell Ultra's INT8 (B300: 0.15 POPS against 2.25 PFLOPS BF16), whose int8 GEMMs sit beside
    bf16 attention."""
    return np.maximum.reduce(np.broadcast_arrays(*format_peaks(hw, dtypes)))


def resolve(model, layout, dtypes, hw, eff, fabric=None) -> Resolved:
    """Shard, rates and formats of `layout` on the hardware rows `hw` (engine.HardwareColumns)."""
    attn_dtype = dtypes.attention_compute
    gemm_peak, attn_peak, peak16 = format_peaks(hw, dtypes)
    datasheet = [src == "datasheet" for src in eff.source]  # a profile measured the GPU's own kernels
    gemm_shares = np.array(
        [
            gemm_scale(layout.framework, name, dtypes.activations) if sheet else (1.0, 1.0)
            for name, sheet in zip(hw.names, datasheet)
        ]
    )[hw.row]
    rates = Rates(
        gemm_peak=gemm_peak,
        attn_peak=attn_peak,
        peak16=peak16,
        bw=hw.col("memory_bandwidth"),
        hbm_eff=eff.hbm[hw.row],
        host_rate=hw.col("host_link_bandwidth") * HOST_LINK_EFFICIENCY,
        eff=eff,
        row=hw.row,
        smem=hw.col("smem_per_sm_bytes"),
        sm_count=hw.col("sm_count"),
        eager_dispatch_s=layout.dispatch_s
        if layout.dispatch_s is not None
        else eager_hf.DISPATCH_S * hw.col("host_cpu_factor"),
        # The framework's prefill attention kernel against the datasheet curve where the row prices
        # attention by it; a profile's measured attention is the deployment's own kernel already
        # (a profile that measured other kernels only, as `hf`'s and `transformers`' borrowed
        # torch kernels on Hopper, leaves attention on the curve).
        attn_prefill_scale=np.array(
            [
                1.0 if measured else attention_prefill_scale(layout.framework, name)
                for name, measured in zip(hw.names, prefill_attention_measured(eff))
            ]
        )[hw.row],
        gemm_memory_scale=gemm_shares[..., 0],
        gemm_compute_scale=gemm_shares[..., 1],
    )
    groups = topology_groups(layout, hw, fabric or host_fabric(hw), eff.links)
    shard = Shard(
        tp=layout.tp,
        cp=layout.cp,
        ep=layout.ep,
        cp_variant=layout.cp_variant,
        groups=groups,
        moe_routing=layout.moe_routing,
    )
    w_stream, w_dequant = weight_only(dtypes.weights, dtypes.activations)
    fmt = Formats(
        wb=dtypes.weight_bytes or dtype_bytes(dtypes.weights),
        ab=dtype_bytes(dtypes.activations),
        # W8A8 / FP8 quantise a GEMM's input on the fly; the residual stream stays 16-bit
        rb=max(dtype_bytes(dtypes.activations), 2.0),
        kb=dtype_bytes(dtypes.kv),
        qb=dtype_bytes(attn_dtype),
        w_stream=w_stream,
        w_dequant=w_dequant,
        attention_wb=None if dtypes.attention_weights == "auto" else dtype_bytes(dtypes.attention_weights),
    )
    return Resolved(shard, rates, fmt, eff.kernel_overhead_s[hw.row])


def forward_ops(ctx: OpInputs, model, layout, attention_core=None) -> list:
    """Uncosted ops of one pass of `ctx.shape` through the model on one GPU (all pipeline stages
    in sequence); `attention_core` replaces the softmax layers' attention core (see attention_ops).
    Under transformers' eager modelling code the ops are its unfused ones (eager_hf)."""
    unfused = framework(layout.framework).unfused
    if unfused:
        ctx = replace(ctx, unfused=True, repeat_kv=layout.repeats_kv, static_cache=layout.static_cache)
    ops: list = []
    dense_left = ctx.plan.dense_first_layers

    def grouped(group_ops, g, suffix=""):  # each layer op says which layers it runs in
        return [replace(op, group=(group_label(g) + suffix, g.count)) for op in group_ops]

    for g in model.layer_groups:
        if dense_left and g.mixer.kind in ("attention", "mla"):
            n_dense = min(dense_left, g.count)
            dense_left -= n_dense
            dense = replace(ctx, shape=replace(ctx.shape, skip_selection=True))
            first = replace(g, count=n_dense)
            ops += grouped(layer_ops(dense, first, attention_core), first, " (dense, leading)")
            if g.count > n_dense:
                rest = replace(g, count=g.count - n_dense)
                ops += grouped(layer_ops(ctx, rest, attention_core), rest)
        else:
            ops += grouped(layer_ops(ctx, g, attention_core), g)
    all_logits = layout.all_logits and ctx.shape.phase == "prefill"
    ops += model_edge_ops(ctx, model.vocab_size, scaled=model.gemma, all_logits=all_logits)
    if ctx.shape.phase == "prefill":
        for extra in ctx.extras.at("prefill_once"):
            ops += extra.ops(ctx)
    if ctx.extras.weight_host_fraction:  # offloaded weights cross the host link once per pass
        host_weights = (
            ctx.extras.weight_host_fraction
            * weight_bytes_per_gpu(model, layout.tp, layout.pp, ctx.fmt.wb, attention_wb=ctx.fmt.attention_wb)
            * layout.pp
        )
        ops.append(
            host_transfer("weight_fetch", host_weights, ctx.rates.host_rate, ctx.shape.passes, kernels=0.0)
        )
    if above_one(layout.pp):  # (pp may be an array over points: pp = 1 points get no hand-off)
        t = ctx.shard.groups["pp"].p2p(ctx.shape.rows * model.hidden_size * ctx.fmt.rb)
        ops.append(
            Op(
                name="pp_send_recv",
                kind="comm",
                flops=0.0,
                bytes=0.0,
                count=(layout.pp - 1) * ctx.shape.passes,
                kernels=0.0,
                fixed_s=t,
                stream="comm",
            )
        )
    return eager_hf.unfuse(ops, ctx.fmt.rb, model.gemma) if unfused else ops
