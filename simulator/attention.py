"""Softmax attention ops (MHA/GQA/MQA, sliding window, MLA) under a KV plan, prefill and decode.

Per head group of the plan (see `kvplan`): prefill computes the causal pairs inside the group's
window at its density, streaming K/V as FlashAttention does; decode attends `attended(L)` tokens,
reads `read(L)` tokens' KV from HBM in the plan's storage format and fetches `host_read(L)` over the
host link. Projections are shared by all groups.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from roofline.simulator import eager_hf
from roofline.simulator import flops as F
from roofline.simulator.decode_time import grid_nodes, measured_time
from roofline.simulator.efficiency import (
    DECODE_ATTENTION_FIXED_S,
    DEFAULT_KERNEL_OVERHEAD_S,
    attention_decode_efficiency,
    attention_prefill_efficiency,
    decode_parallel_efficiency,
)
from roofline.simulator.grid_lookup import grid_values, measured_or
from roofline.simulator.grids import cache_grid
from roofline.simulator.kvplan import ALL, Tokens, resolve
from roofline.simulator.model import MLA
from roofline.simulator.opinputs import elementwise, gemm, projection_inputs
from roofline.simulator.ops import KVLinear, Op, host_transfer
from roofline.simulator.parallel import cp_decode_comm, cp_prefill_comm


def _projections(ctx, m, heads: int, count) -> tuple:
    """Q/K/V projections; returns (ops, cached KV elements per token on this GPU)."""
    h = ctx.shape.hidden
    if isinstance(m, MLA):
        ops = []
        if m.q_lora_rank:
            ops.append(gemm(ctx, "q_a_proj", m.q_lora_rank, h, count))
            ops.append(gemm(ctx, "q_b_proj", heads * m.qk_dim, m.q_lora_rank, count))
        else:
            ops.append(gemm(ctx, "q_proj", heads * m.qk_dim, h, count))
        ops.append(gemm(ctx, "kv_a_proj", m.kv_lora_rank + m.qk_rope_head_dim, h, count))
        return ops, m.kv_elements_per_token()  # the latent is replicated on every tp rank
    kv_heads = ctx.shard.kv_heads(m)
    q_heads = 2 * heads if getattr(m, "output_gate", False) else heads  # Qwen3-Next: q_proj emits a gate too
    return [gemm(ctx, "qkv_proj", (q_heads + 2 * kv_heads) * m.head_dim, h, count)], kv_heads * 2 * m.head_dim


def _prefill_attention(ctx, m, heads: int, cached: float, count) -> list:
    plan = ctx.plan
    ops = []
    if isinstance(m, MLA):  # per-head K and V, materialised from the latent (`_mla_gemms`)
        kv_io = heads * (m.qk_dim + m.v_dim)
    else:
        kv_io = cached
    qo = heads * (m.qk_dim + m.v_dim)
    br = F.flash_query_block_rows(max(m.qk_dim, m.v_dim), ctx.rates.smem)
    eff = attention_prefill_efficiency(ctx.rates.eff, ctx.rates.attn_offset, ctx.shape.log2_prompt, m.qk_dim)
    head_groups = [g for g in plan.groups if g.heads]
    share = 1.0 / len(head_groups)  # one fused kernel per layer, whatever the head groups
    compute_rate = ctx.rates.attn_peak * eff * ctx.rates.attn_prefill_scale
    memory_rate = ctx.rates.mem_rate
    group = 1.0 if isinstance(m, MLA) else heads / ctx.shard.kv_heads(m)
    grid = grid_values(
        ctx.rates.eff,
        cache_grid("attention_prefill", ctx.fmt.kb),  # over an FP8 cache, its kernels where measured
        ctx.rates.row,
        "attainment",
        (
            ctx.shape.log2_prompt,
            np.log2(np.maximum(ctx.shape.batch, 1.0) * heads),
            np.log2(group),
            np.log2(m.qk_dim),
        ),
    )
    if grid is not None:  # measured roofline attainment of this kernel shape (calibration.Grid)
        att, has = grid
        compute_rate = measured_or(has, ctx.rates.attn_peak * att, compute_rate)
        memory_rate = measured_or(has, ctx.rates.bw * att, memory_rate)
    if isinstance(m, MLA):  # MLA's own prefill kernel, where measured (profilers/aic_mla.py)
        blocks = np.log2(np.maximum(ctx.shape.batch, 1.0) * heads)
        coords = (ctx.shape.log2_prompt, blocks, np.log2(heads), np.log2(ctx.fmt.kb))
        grid = grid_values(ctx.rates.eff, "mla_prefill", ctx.rates.row, "attainment", coords)
        if grid is not None:
            att, has = grid
            compute_rate = measured_or(has, ctx.rates.attn_peak * att, compute_rate)
            memory_rate = measured_or(has, ctx.rates.bw * att, memory_rate)
    for g in head_groups:
        win = (
            m.window
            if g.prefill_window is None
            else (g.prefill_window if m.window is None else min(m.window, g.prefill_window))
        )
        buffer = _masked_buffer(ctx, win)
        if buffer is None:
            # Load-balanced CP: each of cp ranks computes 1/cp of the causal pairs.
            pairs = F.prefill_pairs(ctx.shape.batch, ctx.shape.prompt, ctx.shape.shared, win)
            cached_before = ctx.shape.cached
            if (
                np.ndim(cached_before) or cached_before
            ):  # this pass's queries only: earlier chunks' pairs are done
                pairs = pairs - F.prefill_pairs(ctx.shape.batch, ctx.shape.cached, ctx.shape.shared, win)
            pairs = pairs * g.prefill_density / ctx.shard.cp
            kv_reads = F.flash_kv_hbm_tokens(
                pairs, ctx.shape.tokens, ctx.shape.prompt, br, ctx.rates.sm_count
            )
            mask = 0.0
        else:  # SDPA over a StaticCache's buffer: every query against every slot, and the mask's tiles
            queries = ctx.shape.batch * (ctx.shape.prompt - ctx.shape.cached)
            pairs = queries * buffer * g.prefill_density / ctx.shard.cp
            kv_reads = F.flash_kv_hbm_tokens(pairs, ctx.shape.batch * buffer, buffer, br, ctx.rates.sm_count)
            mask = heads * queries * buffer * eager_hf.MASK_BYTES / ctx.shard.cp
        written = plan.storage_bytes(ctx.shape.tokens, ctx.fmt.kb) * cached
        ops.append(
            Op(
                name=f"attention{g.label}",
                kind="attention_prefill",
                flops=F.attention_flops(pairs, heads * g.fraction, m.qk_dim, m.v_dim),
                bytes=g.fraction
                * (ctx.shape.tokens * qo * ctx.fmt.qb + kv_reads * kv_io * ctx.fmt.qb + written + mask),
                compute_rate=compute_rate,
                memory_rate=memory_rate,
                count=count,
                kernels=ctx.shape.passes * share,
            )
        )
    return ops


def _masked_buffer(ctx, window):
    """The StaticCache buffer SDPA attends whole under a mask (`Shape.buffer`, eager_hf
    .masks_static_buffer) for a layer without a sliding window; None elsewhere (a windowed layer's
    cache is its window's)."""
    return ctx.shape.buffer if ctx.shape.buffer is not None and window is None else None


def _whole_buffer(tokens, ctx, window):
    """A group's decode tokens over the whole history as SDPA over a StaticCache reads them: every
    slot of the buffer, filled or not (`_masked_buffer`); other token policies as they are."""
    buffer = _masked_buffer(ctx, window)
    if buffer is None or not tokens.is_whole_history:
        return tokens
    return Tokens(buffer, 0.0)  # buffer + min(L, 0): the buffer at every KV length


def _selected(tokens, g, ctx):
    """Tokens after the group's query-aware selection (skipped in leading dense layers)."""
    if g.selection_budget is None or ctx.shape.skip_selection:
        return tokens
    return tokens.cap(g.selection_budget)


def _decode_attention(ctx, m, heads: int, cached: float, count) -> list:
    plan, b, q = ctx.plan, ctx.shape.batch, ctx.shape.queries
    ops = []
    mla = isinstance(m, MLA)
    if mla:  # weight absorption: attend over the latent (FlashMLA-style)
        per_token_flops = 2.0 * b * q * heads * (2 * m.kv_lora_rank + m.qk_rope_head_dim)
    else:
        per_token_flops = 2.0 * b * q * heads * (m.qk_dim + m.v_dim)
    qo = heads * (m.qk_dim + m.v_dim)
    eff = attention_decode_efficiency(ctx.rates.eff, ctx.rates.attn_offset, m.qk_dim)
    head_fraction = sum(g.fraction for g in plan.groups if g.heads)
    share = 1.0 / len(plan.groups)  # one fused kernel per layer, whatever the head groups
    # The kernel parallelises over sequences x KV heads (MLA's latent: measured kernels differ, kept
    # at the streaming rate); its fixed time beyond the generic launch overhead, once per kernel.
    kernel_batch = b if ctx.shape.kernel_batch is None else ctx.shape.kernel_batch
    units = kernel_batch * (1.0 if mla else ctx.shard.kv_heads(m))
    mem_rate = ctx.rates.mem_rate * (1.0 if mla else decode_parallel_efficiency(units))
    latency = (DECODE_ATTENTION_FIXED_S - DEFAULT_KERNEL_OVERHEAD_S) * share
    # A profile's measured decode kernels (decode_time): roofline attainment at KV-length nodes.
    if mla:  # over the latent: (sequences, heads per GPU, KV bytes)
        family = "mla_decode"
        coords = (np.log2(np.maximum(kernel_batch, 1.0)), np.log2(heads), np.log2(ctx.fmt.kb))
    else:
        kv_heads = ctx.shard.kv_heads(m)
        family = cache_grid("attention_decode", ctx.fmt.kb)
        coords = (
            np.log2(np.maximum(kernel_batch, 1.0) * kv_heads),
            np.log2(heads / kv_heads),
            np.log2(m.qk_dim),
        )
    nodes = grid_nodes(ctx.rates.eff, family, ctx.rates.row, coords)
    rate = ctx.rates.attn_peak * eff
    if nodes is not None:
        latency = measured_or(nodes[2], 0.0, latency)  # the kernel's fixed time is in its nodes
        rate = measured_or(nodes[2], ctx.rates.attn_peak, rate)  # ... and its compute (MLA)
    for g in plan.groups:
        f = g.fraction
        read = _selected(
            _whole_buffer(resolve(g.read, ctx.shape.prompt), ctx, m.window).cap(m.window), g, ctx
        )
        attended = _selected(
            _whole_buffer(resolve(g.attended_tokens(), ctx.shape.prompt), ctx, m.window).cap(m.window), g, ctx
        )
        host = _selected(resolve(g.host_read, ctx.shape.prompt).cap(m.window), g, ctx)
        # q in, out written and the new K/V appended (and a StaticCache mask's row per head): once
        # per layer, spread over the groups
        buffer = _masked_buffer(ctx, m.window)
        mask = 0.0 if buffer is None else heads * buffer * eager_hf.MASK_BYTES
        fixed = (
            b
            * q
            * (qo * ctx.fmt.qb + plan.storage_bytes(1.0, ctx.fmt.kb) * cached + mask)
            * f
            / head_fraction
            if g.heads
            else 0.0
        )
        byts = plan.bytes_of(read, ctx.fmt.kb) * (b * cached * f / ctx.shard.cp) + fixed
        if plan.prefix_read_once and read.is_whole_history:
            # Hydragen: every sequence reads the same shared prefix, once for the whole batch. Groups
            # that read a window or a per-sequence selection do not share what they read.
            once = (
                -(b - 1) * ctx.shape.shared * plan.storage_bytes(1.0, ctx.fmt.kb) * cached * f / ctx.shard.cp
            )
            byts = byts + once
            fixed = fixed + once
        measured = None
        if nodes is not None:
            per_token = plan.bytes_of(ALL, ctx.fmt.kb) * (b * cached * f / ctx.shard.cp)  # in read tokens
            flops = per_token_flops * f / ctx.shard.cp if mla else None  # MLA's compute can bind
            measured = _measured_time(ctx, nodes, read, per_token, fixed, flops)
            if nodes[2] is not True:  # hardware rows without the grid: bytes / rate as before
                measured = measured * np.asarray(nodes[2], float) + byts * np.where(
                    nodes[2], 0.0, 1.0 / mem_rate
                )
        ops.append(
            Op(
                name=f"attention{g.label}",
                kind="attention_decode",
                flops=attended.kv(per_token_flops * f / ctx.shard.cp),
                bytes=byts,
                compute_rate=rate,
                memory_rate=mem_rate,
                count=count,
                kernels=share,
                latency_s=latency,
                memory_time=measured,
            )
        )
        if not host.is_zero:
            fetched = plan.bytes_of(host, ctx.fmt.kb) * (b * cached * f / ctx.shard.cp)
            ops.append(host_transfer(f"kv_fetch{g.label}", fetched, ctx.rates.host_rate, count))
        if plan.dequant_flops_per_elem and not read.is_zero:
            dq = read.kv(plan.dequant_flops_per_elem * b * q * cached * f / ctx.shard.cp)
            ops.append(
                Op(
                    name=f"kv_dequant{g.label}",
                    kind="elementwise",
                    flops=dq,
                    bytes=0.0,
                    compute_rate=ctx.rates.vector_rate,
                    memory_rate=np.inf,
                    count=count,
                    kernels=0.0,
                )
            )
    return ops


def _measured_time(ctx, nodes, read, per_token, const, flops_per_token=None):
    """The decode kernel's time from a measured grid's nodes (decode_time): a KVLinear in L. At
    kernel length K (a context-parallel rank reads 1/cp of the sequence's read tokens): bytes
    per_token (a KVLinear in read tokens) + const (q in, o out, the appended token) over the
    bandwidth, or with flops_per_token (per read token) the larger of that and FLOPs / peak."""
    nodes_log2, attainment, _ = nodes
    cp = ctx.shard.cp
    bw = np.asarray(ctx.rates.bw, float)[..., None]
    moved = (per_token + const).per_length()  # bytes at each of n kernel lengths: (points..., n)

    def roof_at(lengths):
        tokens = np.asarray(cp, float)[..., None] * lengths  # (points..., n): cp may be swept
        out = moved.at(tokens) / bw
        if flops_per_token is not None:
            peak = np.asarray(ctx.rates.attn_peak, float)[..., None]
            out = np.maximum(out, np.asarray(flops_per_token, float)[..., None] * tokens / peak)
        return out

    return measured_time(roof_at, nodes_log2, attainment, read, scale=1.0 / cp)


def _mla_gemms(ctx, m, heads: int, count) -> tuple:
    """MLA's per-token GEMMs around the attention (DeepSeek-V2 §2.1.2): prefill materialises each
    head's K and V from the latent (kv_b_proj); decode absorbs the key up-projection into the query
    and un-absorbs the values after attending over the latent (FlashMLA-style). (before, after)."""
    if not isinstance(m, MLA):
        return [], []
    if ctx.shape.phase == "prefill":
        return [
            gemm(ctx, "kv_b_proj", heads * (m.qk_nope_head_dim + m.v_head_dim), m.kv_lora_rank, count)
        ], []
    rows = ctx.shape.rows * heads
    q_absorb = gemm(
        ctx,
        "q_absorb",
        m.kv_lora_rank,
        m.qk_nope_head_dim,
        count,
        heads * m.qk_nope_head_dim * m.kv_lora_rank,
        rows,
    )
    v_unabsorb = gemm(
        ctx, "v_unabsorb", m.v_head_dim, m.kv_lora_rank, count, heads * m.kv_lora_rank * m.v_head_dim, rows
    )
    return [q_absorb], [v_unabsorb]


def attention_core_ops(ctx, m, heads: int, cached: float, count) -> tuple:
    """The attention itself for the phase of `ctx`, as (per head group of the plan, then the
    context-parallel exchange and the plan's extra ops: scoring, selection, fetches); `cached` =
    KV elements per token on this GPU."""
    if ctx.shape.phase == "prefill":
        tail = cp_prefill_comm(ctx, m, heads, cached, count)
        for extra in ctx.extras.at("prefill"):
            tail += extra.ops(ctx, m, count)
        return _prefill_attention(ctx, m, heads, cached, count), tail + _cache_copies(ctx, m, cached, count)
    tail = cp_decode_comm(ctx, m, heads, count)
    for extra in ctx.extras.at("decode"):
        tail += extra.ops(ctx, m, count)
    return _decode_attention(ctx, m, heads, cached, count), tail + _cache_copies(ctx, m, cached, count)


def _cache_copies(ctx, m, cached: float, count) -> list:
    """transformers' DynamicCache appends with torch.cat (eager_hf): each pass copies the layer's
    cache it extends; and its default attention then copies that cache to every query head
    (`repeat_kv`, under `ctx.repeat_kv` where a KV head serves more than one query head), which
    reads what the append wrote; a StaticCache (`ctx.static_cache`) writes only the pass's new
    tokens in place instead of the append's copy. Decode: the whole cache, L tokens per sequence
    (a KVLinear). Prefill: the new tokens, and the cache a later chunk extends: a sequence
    prefilled in n passes copies (n + 1) / 2 times its prompt (the k-th pass the first k chunks), plus `shape.cached` tokens per
    sequence before a step's chunk. What a head group keeps (an eviction method's budget, a
    sliding-window layer's window: transformers' sliding-window cache layers) is what is copied.
    Under SDPA over a StaticCache (`Shape.buffer`) `repeat_kv` copies the whole buffer every pass.
    None outside `ctx.unfused`, and none for MLA (its own cache)."""
    if not ctx.unfused or isinstance(m, MLA):
        return []
    s, plan = ctx.shape, ctx.plan
    if s.phase == "decode":
        per_sequence = s.batch * cached / ctx.shard.cp
        held = sum(
            (
                plan.bytes_of(
                    _whole_buffer(resolve(g.stored, s.prompt), ctx, m.window).cap(m.window), ctx.fmt.kb
                )
                * (per_sequence * g.fraction)
                for g in plan.groups
                if g.heads
            ),
            KVLinear(),
        )
        passes = 1.0
    else:
        chunks = np.maximum(s.passes / np.maximum(s.batch, 1.0), 1.0)
        tokens = s.tokens * (chunks + 1.0) / 2.0 + s.batch * s.cached / ctx.shard.cp
        buffer = _masked_buffer(ctx, m.window)
        if buffer is not None:  # each pass's attention is handed the whole buffer
            tokens = s.batch * buffer * chunks / ctx.shard.cp
        held = plan.storage_bytes(tokens, ctx.fmt.kb) * cached
        passes = s.passes
    if ctx.static_cache:  # StaticCache writes the pass's new tokens in place (index_copy_)
        new = s.batch * s.queries / ctx.shard.cp if s.phase == "decode" else s.tokens
        written = plan.storage_bytes(new, ctx.fmt.kb) * cached
        ops = [eager_hf.static_write_op(ctx, written, count, eager_hf.CACHE_COPY_KERNELS * passes)]
    else:
        ops = [eager_hf.cache_copy_op(ctx, held, count, eager_hf.CACHE_COPY_KERNELS * passes)]
    groups = eager_hf.kv_groups(m, ctx.shard.tp)
    if ctx.repeat_kv and groups > 1:
        ops.append(eager_hf.repeat_kv_op(ctx, held, groups, count, eager_hf.REPEAT_KV_KERNELS * passes))
    return ops


def attention_ops(ctx, m, count, core=None) -> list:
    """All ops of `count` attention layers: projections, MLA's per-token GEMMs, the attention core
    (`core` replaces `attention_core_ops`, e.g. for a step of sequences in different phases),
    output projection."""
    heads = ctx.shard.heads(m)
    proj = projection_inputs(ctx)  # the projections' weights may be 16-bit apart (dtype.attention_weights)
    ops, cached = _projections(proj, m, heads, count)
    if getattr(m, "qk_norm", False):  # Qwen3 / Gemma-3: RMSNorm over each head of q and of k
        elems = ctx.shape.rows * (heads + ctx.shard.kv_heads(m)) * m.head_dim
        ops.append(replace(elementwise(ctx, "qk_norm", "norm", elems, elems, 4.0, count), kernels=2.0))
    if ctx.unfused and not isinstance(m, MLA):  # transformers' RoPE over q and k (eager_hf)
        ops.append(eager_hf.rope_op(ctx, (heads + ctx.shard.kv_heads(m)) * m.head_dim, count))
    before, after = _mla_gemms(proj, m, heads, count)
    attend, tail = (core or attention_core_ops)(ctx, m, heads, cached, count)
    ops += before + attend + after + tail
    ops.append(gemm(proj, "o_proj", ctx.shape.hidden, heads * m.v_dim, count))
    return ops
