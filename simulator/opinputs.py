"""The typed inputs of every op builder, and the two primitive builders they all use.

An op builder costs one kind of work for one GPU from four small, frozen inputs:

* `Shape` — what one pass processes: the phase, token rows per pass and passes, sequences, prompt
  and shared-prefix lengths, the model width, query tokens per decode step;
* `Shard` — how the layer is cut across GPUs (tensor, context and expert parallel degrees, the
  context-parallel algorithm, the topology's collective groups); heads per GPU are defined here
  once (`per_rank`, `Shard.heads`, `Shard.kv_heads`);
* `Rates` — what the GPU attains: peaks of the GEMM, attention and 16-bit formats, HBM and host-link
  rates, and the efficiency table rows of each point;
* `Formats` — bytes per weight, activation, KV and attention-operand element;

plus the KV plan (`kvplan.KVPlan`). `OpInputs` bundles them. Everything is an array over sweep
points or a scalar; nothing is added after construction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from roofline.simulator import flops as F
from roofline.simulator.efficiency import (
    EfficiencyTable,
    gemm_efficiency,
    row_offsets,
)
from roofline.simulator.grid_lookup import grid_m_tile, grid_values, measured_or
from roofline.simulator.grids import gemm_tile_share
from roofline.simulator.ops import Op
from roofline.simulator.runplan import NO_EXTRAS

# Elementwise, norm and scan kernels run on the vector units; their FLOPs never bind next to HBM
# traffic, so any rate well below tensor-core peak serves (5% of it is still ~10x the fp32 rate).
VECTOR_FRACTION = 0.05


def above_one(degree) -> bool:
    """Whether a parallel degree (a number, or an array over sweep points) exceeds 1 anywhere;
    cheap for the common scalar case."""
    return degree > 1 if np.ndim(degree) == 0 else bool((np.asarray(degree) > 1).any())


def per_rank(n: int, tp: int) -> int:
    """Heads (or channels) of n on one of tp ranks: ceil(n / tp), at least one (KV heads fewer
    than tp are replicated, as vLLM and TensorRT-LLM do)."""
    return max(1, math.ceil(n / tp))


@dataclass(frozen=True)
class Shape:
    """What one pass of a phase processes, on one GPU."""

    phase: str  # "prefill" | "decode"
    rows: object  # token rows per pass
    passes: object
    batch: object  # sequences per replica (per micro-batch in decode)
    hidden: int
    prompt: object = 0.0
    shared: object = 0.0
    queries: float = 1.0  # query tokens per sequence per decode step (speculative verification)
    skip_selection: bool = False  # leading dense layers: no query-aware page selection
    cached: object = 0.0  # prefill: tokens per sequence already in the cache before this pass (a
    # later chunk of a chunked prefill, costed on its own by the step-cost function)
    kernel_batch: object = None  # decode: sequences sharing one attention kernel (None: batch); the
    # step-cost function costs sequences one by one inside one varlen kernel
    buffer: object = None  # tokens per sequence of a transformers StaticCache that SDPA attends
    # whole under a mask (eager_hf.masks_static_buffer: prompt + output); None: the cache's tokens

    @property
    def tokens(self):
        return self.rows * self.passes

    @cached_property
    def log2_rows(self):
        return np.log2(np.maximum(self.rows, 1.0))

    @cached_property
    def log2_prompt(self):
        return np.log2(np.maximum(self.prompt, 1.0))


@dataclass(frozen=True)
class Shard:
    """How a layer is cut across GPUs."""

    tp: int = 1
    cp: int = 1
    ep: int = 1
    cp_variant: str = "pass-kv"
    groups: dict | None = None  # topology.groups(): tp/cp/ep/pp/dp collectives
    moe_routing: str = "power_law"  # how a router spreads tokens over experts (runtime.moe_routing)

    def split(self, n: int) -> int:
        return per_rank(n, self.tp)

    def heads(self, mixer) -> int:
        """Query heads of an attention mixer on this GPU."""
        return per_rank(mixer.num_heads, self.tp)

    def kv_heads(self, mixer) -> int:
        """KV heads of an attention mixer on this GPU (replicated when fewer than tp)."""
        return per_rank(mixer.num_kv_heads, self.tp)


@dataclass(frozen=True)
class Rates:
    """Attainable rates per sweep point (arrays) and the efficiency rows they index."""

    gemm_peak: object  # FLOP/s peak of the GEMMs' format
    attn_peak: object  # FLOP/s peak of the attention kernel's format (Dtypes.attention_compute)
    peak16: object  # 16-bit (fp32 for fp32 attention) tensor peak: kernels that stay in 16-bit
    # whatever the GEMM or attention format (elementwise via VECTOR_FRACTION, lightning attention)
    bw: object  # HBM bytes/s (datasheet)
    hbm_eff: object
    host_rate: object  # attainable host-link bytes/s
    eff: EfficiencyTable
    row: object  # index of each point's hardware in eff
    smem: object
    sm_count: object
    # host time per kernel launched eagerly from Python on this host: `runtime.dispatch_us` where
    # set, else eager_hf.DISPATCH_S x Hardware.host_cpu_factor (a method implementation's own loop)
    eager_dispatch_s: object
    attn_prefill_scale: object = 1.0  # the framework's prefill attention kernel vs the curve
    gemm_memory_scale: object = 1.0  # the framework's GEMMs: share of the streaming rate (GEMM_SCALE)
    gemm_compute_scale: object = 1.0  # and of the GEMM curve

    @cached_property
    def mem_rate(self):
        return self.bw * self.hbm_eff

    @cached_property
    def mfu_peak(self):
        """The fastest of the three peaks: what MFU is read against (forward.mfu_peak)."""
        return np.maximum(np.maximum(self.gemm_peak, self.attn_peak), self.peak16)

    @cached_property
    def vector_rate(self):
        return self.peak16 * VECTOR_FRACTION

    def fraction(self, name: str):
        """Each point's fraction of peak for a kernel family without a curve (efficiency.FRACTIONS)."""
        return self.eff.fractions[name][self.row]

    def gemm_rate(self, m, n, k):
        """Attainable FLOP/s of an (m x k) @ (k x n) GEMM on the GEMM curve."""
        return self.gemm_peak * gemm_efficiency(self.eff, self.gemm_offset, np.log2(np.maximum(m, 1.0)), n, k)

    @cached_property
    def gemm_offset(self):
        return row_offsets(self.eff.gemm, self.row)

    @cached_property
    def attn_offset(self):
        return row_offsets(self.eff.attn, self.row)


@dataclass(frozen=True)
class Formats:
    """Bytes per element."""

    wb: float  # weight (incl. quantisation scales)
    ab: float  # activation
    kb: float  # KV-cache element at the kv dtype
    qb: float  # attention's Q, O and prefill K/V operands
    rb: float = 2.0  # the residual stream's element (16-bit unless activations are 32-bit): norms,
    # elementwise kernels, GEMM outputs and the collectives carry it even when GEMMs take 8-bit inputs
    w_stream: float = 1.0  # weight-only GEMMs: weight-stream efficiency relative to a 16-bit GEMM's
    w_dequant: float = 1.0  # weight-only GEMMs: compute-time factor of the in-kernel dequantisation
    attention_wb: float | None = None  # the attention projections' weights when 16-bit apart (None: wb)


def gemm_grid(x: OpInputs, log2_m, n, k):
    """The profile's measured roofline attainment of (m x k) @ (k x n) GEMMs, and which points have
    one (grid_lookup.grid_values); None where no profile measured the GEMM format's grid."""
    return grid_values(
        x.rates.eff,
        "gemm",
        x.rates.row,
        "attainment",
        (log2_m, np.log2(np.asarray(n, dtype=float)), np.log2(np.asarray(k, dtype=float))),
    )


def weight_gemm_op(
    x: OpInputs,
    name: str,
    flops,
    weight_bytes,
    act_bytes,
    eff,
    count,
    grid=None,
    real_rows=1.0,
    stream=1.0,
    converted=False,
) -> Op:
    """A GEMM reading `weight_bytes` of weights and `act_bytes` of activations at `eff` of the GEMM
    peak, streaming at `stream` of the datasheet model's rate (a grouped expert GEMM's share). Weight-only quantised weights (efficiency.WEIGHT_ONLY) stream at `w_stream` of the HBM
    rate and the math takes `w_dequant` times longer; bytes stay the real HBM traffic. Where a
    profile measured the shape's grid (`gemm_grid`: attainment a, mask), the kernel takes
    max(FLOPs / real_rows / peak, bytes / bandwidth) / a instead: `real_rows` is the share of the
    rows computed that are real (grids.gemm_tile_share at the grid's tile; its attainment is of
    that roof). `converted` (a mask, or a bool for every point): the points a grid of kernels that
    convert the weights themselves priced (grid_lookup.grid_converts_weights), whose measured time
    already holds the conversion, so the weight-only factors do not apply there."""
    f = x.fmt
    w_stream, w_dequant = f.w_stream, f.w_dequant
    if np.any(converted):
        w_stream, w_dequant = np.where(converted, 1.0, w_stream), np.where(converted, 1.0, w_dequant)
    mem = x.rates.mem_rate * x.rates.gemm_memory_scale * stream
    compute = x.rates.gemm_peak * eff * x.rates.gemm_compute_scale
    if grid is not None:
        att, has = grid
        mem = measured_or(has, x.rates.bw * att, mem)
        compute = measured_or(has, x.rates.gemm_peak * att * real_rows, compute)
    if np.any(np.asarray(w_stream) != 1.0):
        total = weight_bytes + act_bytes
        mem = mem * total / (weight_bytes / w_stream + act_bytes)
    return Op(
        name=name,
        kind="gemm",
        flops=flops,
        bytes=weight_bytes + act_bytes,
        compute_rate=compute / w_dequant,
        memory_rate=mem,
        count=count,
    )


@dataclass(frozen=True)
class OpInputs:
    """Everything an op builder reads: shape, shard, rates, formats and the KV plan."""

    shape: Shape
    shard: Shard
    rates: Rates
    fmt: Formats
    plan: object = field(default=None)  # kvplan.KVPlan
    extras: object = NO_EXTRAS  # runplan.RunExtras: the methods' own ops
    unfused: bool = False  # transformers' eager modelling code: RoPE and cache copies of its own (eager_hf)
    repeat_kv: bool = False  # and its attention copies the KV heads to every query head (eager_hf)
    static_cache: bool = False  # and its cache is a StaticCache (Layout.static_cache), written in place


EDGE_BYTES = 2.0  # the embedding and LM head of a quantized checkpoint: 16-bit (`edge_inputs`)


def projection_inputs(x: OpInputs) -> OpInputs:
    """The op inputs of the attention projections: 16-bit where `dtype.attention_weights` keeps
    them so (`attention_wb`), as `edge_inputs` prices a 16-bit GEMM; else `x`."""
    return x if x.fmt.attention_wb is None else edge_inputs(x)


def edge_inputs(x: OpInputs) -> OpInputs:
    """The op inputs of the model's edges (embedding, LM head), which quantized checkpoints keep in
    16 bits: the quantizers convert the decoder layers' linear layers only. TensorRT Model
    Optimizer's Hugging Face export writes `"exclude_modules": ["lm_head"]` for FP8, INT4-AWQ,
    NVFP4 and NVFP4-AWQ (NVIDIA/TensorRT-Model-Optimizer, modelopt/torch/export/unified_export_hf.py:
    the nvidia/*-FP8 and *-FP4 checkpoints TensorRT-LLM and vLLM serve), and an embedding is a lookup
    table, not a linear layer. So the LM head reads 16-bit weights and 16-bit inputs at the 16-bit
    peak (the GEMM format's measured attainment at the shape stands in for the 16-bit kernel's);
    weights of 16 bits or more are unchanged."""
    f = x.fmt
    if np.all(np.asarray(f.wb) >= EDGE_BYTES):
        return x
    fmt = replace(
        f, wb=np.maximum(f.wb, EDGE_BYTES), ab=np.maximum(f.ab, EDGE_BYTES), w_stream=1.0, w_dequant=1.0
    )
    rates = replace(x.rates, gemm_peak=np.minimum(x.rates.gemm_peak, x.rates.peak16))
    return replace(x, fmt=fmt, rates=rates)


def gemm(x: OpInputs, name: str, n, k, count, weight_elems=None, rows=None) -> Op:
    """Dense GEMM of (rows x k) by (k x n) weights, run once per pass per layer."""
    m = x.shape.rows if rows is None else rows
    w = n * k if weight_elems is None else weight_elems
    log2_m = x.shape.log2_rows if rows is None else np.log2(np.maximum(rows, 1.0))
    eff = gemm_efficiency(x.rates.eff, x.rates.gemm_offset, log2_m, n, k)
    return weight_gemm_op(
        x,
        name,
        F.matmul_flops(m, n, k),
        w * x.fmt.wb,
        m * (k * x.fmt.ab + n * x.fmt.rb),
        eff,
        count * x.shape.passes,
        gemm_grid(x, log2_m, n, k),
        gemm_tile_share(m, grid_m_tile(x.rates.eff, "gemm", x.rates.row)),
    )


def score_kernel(x: OpInputs, name: str, flops, byts, count) -> Op:
    """An unfused attention-score kernel of a method (query-key products, softmax to HBM) at the
    `score_kernel` fraction of the attention format's peak (efficiency.FRACTIONS)."""
    return Op(
        name=name,
        kind="attention_prefill",
        flops=flops,
        bytes=byts,
        compute_rate=x.rates.attn_peak * x.rates.fraction("score_kernel"),
        memory_rate=x.rates.mem_rate,
        count=count,
    )


def memory_op(x: OpInputs, name: str, moved_bytes, count, kernels=1.0) -> Op:
    """A kernel that only moves `moved_bytes` through HBM (read plus written), `count` runs: a copy
    or a cast, bound by the memory rate alone."""
    return Op(
        name=name,
        kind="elementwise",
        flops=0.0,
        bytes=moved_bytes,
        memory_rate=x.rates.mem_rate,
        count=count,
        kernels=kernels,
    )


def elementwise(x: OpInputs, name: str, kind: str, elems_in, elems_out, flops_per_elem, count) -> Op:
    """A vector-unit kernel reading elems_in and writing elems_out activations per pass."""
    return Op(
        name=name,
        kind=kind,
        flops=flops_per_elem * elems_out,
        bytes=(elems_in + elems_out) * x.fmt.rb,
        compute_rate=x.rates.vector_rate,
        memory_rate=x.rates.mem_rate,
        count=count * x.shape.passes,
    )
