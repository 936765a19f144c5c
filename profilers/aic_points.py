"""AIConfigurator table rows -> measured points in `roofline calibrate`'s raw format.

Each row becomes what our own microbenchmark of the same shape records: x (the curve's size
variable), seconds, FLOPs and bytes counted with the simulator's functions, and efficiency against
the same roof (profilers/CALIBRATE.md):

* GEMM: x = cbrt(m n k), FLOPs `matmul_flops`, bytes the simulator's GEMM traffic (weights n k and
  activations m k in the input format, m n out in 16 bits), efficiency against the format's dense
  peak; `bound` by arithmetic intensity against the ridge point. Several kernels of one shape (vLLM's
  Cutlass and DeepGEMM fp8_block, say): the fastest, as a serving framework picks it.
* Prefill attention (`context_attention`): causal, x = sequence length, FLOPs `attention_flops` of
  `prefill_pairs`, bytes Q and O plus the K/V streamed as `flash_kv_hbm_tokens` counts them,
  efficiency against the bf16 peak. Only bf16 attention over a bf16 KV cache without a window.
* Decode attention (`generation_attention`): one query token per sequence over kv_len = isl + step
  cached tokens (the table's step is the tokens generated so far), x = bytes moved (the K/V read in
  the KV format, bf16 or fp8, plus q in and o out in bf16), efficiency against HBM bandwidth.

Fitting the curves is `aic_import`'s job; reading the files `aic_read`'s.
"""

from __future__ import annotations

import numpy as np

from roofline.api import (
    MOE_MIXED_KINDS,
    SKEW_NODES,
    attention_flops,
    dtype_bytes,
    flash_kv_hbm_tokens,
    flash_query_block_rows,
    gemm_tile_share,
    moe_passes,
    prefill_pairs,
    share_bits,
)
from roofline.profilers.aic_read import DTYPES, Table

# Our GEMM formats -> the dtype whose dense peak they run at, and whose bytes their inputs take.
PEAK_DTYPE = {"bf16": "bf16", "fp16": "fp16", "fp8": "fp8", "fp8_block": "fp8", "fp4": "fp4", "int8": "int8"}
OUT_BYTES = 2.0  # bf16/fp16 output, as vLLM's linear layers write it
# Fused-MoE kernels of four-bit weights under wider activations: the engine's grid format
# (simulator/grids.MOE_MIXED_KINDS, named `<weights>_<activations>`) -> the tables' moe_dtype. The
# weights stream at four bits (half a byte, as the engine counts an int4 or fp4 weight) and are
# converted in the kernel; the GEMMs run at the activations' peak. int4_wo: integer weight-only
# (W4A16, AWQ/GPTQ-style); w4a16_mxfp4: MXFP4 weights, 16-bit activations (GPT-OSS's experts where
# no FP4/FP8 path runs: Hopper); w4a8_mxfp4_mxfp8: MXFP4 weights, MXFP8 activations (Blackwell).
MOE_MIXED_FORMATS = {"int4_bf16": "int4_wo", "fp4_bf16": "w4a16_mxfp4", "fp4_fp8": "w4a8_mxfp4_mxfp8"}
assert set(MOE_MIXED_FORMATS) == set(MOE_MIXED_KINDS), "a table label for every mixed MoE grid kind"
FIT_HEAD_DIM = 128  # the prefill and decode curves are for head dim 128, as `roofline calibrate` measures


def moe_formats(ours: str) -> tuple:
    """(GEMM input format, expert weights' format) of a fused-MoE grid format of moe_points: the
    format itself for both, or the pair a MOE_MIXED_FORMATS kind names, `<weights>_<activations>`
    (efficiency.build_table's `dtype` and `weights`)."""
    if ours in MOE_MIXED_FORMATS:
        weights, activations = ours.split("_")
        return activations, weights
    return ours, ours


def _fastest(keys: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """Indices of the fastest row per distinct key row (keys: (rows, k) array)."""
    order = np.lexsort((seconds, *keys.T[::-1]))
    k = keys[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = np.any(k[1:] != k[:-1], axis=1)
    return np.sort(order[first])


def gemm_bytes(m, n, k, dtype: str):
    """HBM traffic of one GEMM: inputs (m k activations, n k weights) in `dtype`, output m n in 16 bits."""
    elem = dtype_bytes(PEAK_DTYPE[dtype]) if dtype != "fp8_block" else dtype_bytes("fp8")
    return (m * k + n * k) * elem + m * n * OUT_BYTES


def gemm_points(table: Table, hw) -> dict:
    """our dtype -> column arrays {m, n, k, x, seconds, flops, bytes, efficiency, compute_bound}."""
    c = table.columns
    out = {}
    for label in sorted(set(c["gemm_dtype"])):
        dtype = DTYPES.get(label)
        if dtype not in PEAK_DTYPE:
            continue
        rows = np.flatnonzero(c["gemm_dtype"] == label)
        m, n, k, s = c["m"][rows], c["n"][rows], c["k"][rows], c["latency"][rows] * 1e-3
        best = _fastest(np.column_stack([m, n, k]), s)
        m, n, k, s = m[best], n[best], k[best], s[best]
        peak = hw.peak(PEAK_DTYPE[dtype])
        flops = 2.0 * m * n * k  # matmul_flops
        nbytes = gemm_bytes(m, n, k, dtype)
        out[dtype] = {
            "m": m,
            "n": n,
            "k": k,
            "x": np.cbrt(m * n * k),
            "seconds": s,
            "flops": flops,
            "bytes": nbytes,
            "efficiency": flops / (s * peak),
            "compute_bound": flops / peak >= nbytes / hw.memory_bandwidth,
            "peak": peak,
        }
    return out


def gemm_roof(c: dict, bandwidth: float, m_tile: int = 1) -> np.ndarray:
    """A GEMM grid's roof of gemm_points' columns `c`: max(FLOPs over the rows padded to whole
    `m_tile`-row tiles / peak, bytes / bandwidth) (grids.gemm_tile_share)."""
    return np.maximum(c["flops"] / gemm_tile_share(c["m"], m_tile) / c["peak"], c["bytes"] / bandwidth)


# Expert shapes (intermediate, top-k, experts) of MoE models whose experts are a non-gated MLP
# (up -> ReLU^2 -> down, `mlp_hidden_act: relu2` in their config.json on Hugging Face): NVIDIA
# Nemotron 3 Nano 30B-A3B (and Nemotron 3.5 Lightning, same shape): 1856, top-6 of 128; Nemotron 3
# Super 120B-A12B: 2688, top-22 of 512; Nemotron 3 Ultra 550B-A55B: 5120, top-22 of 512 (Super and
# Ultra route a latent of 1024 / 2048; the tables measure both the latent and the full hidden).
# The tables carry no activation column; read as gated, these shapes reach 1.2-1.3x the bandwidth
# roof at a few tokens (vLLM H100), impossible, and 0.8-0.87x read as the MLP they are.
NON_GATED_EXPERTS = {(1856, 6, 128), (2688, 22, 512), (5120, 22, 512)}


def _source_has(c: dict, text: str) -> np.ndarray:
    """True for the rows of a table whose `kernel_source` names `text` (none without the column)."""
    source = c.get("kernel_source", np.full(c["latency"].size, "", dtype=object))
    return np.array([text in str(k) for k in source], dtype=bool)


def _non_gated(c: dict) -> np.ndarray:
    """True for the rows of a MoE table that measured a non-gated expert MLP: a NON_GATED_EXPERTS
    shape, or a kernel named so (TensorRT-LLM's `moe_torch_flow_nongated`, on exactly those shapes)."""
    keys = zip(*(c[k].astype(int).tolist() for k in ("inter_size", "topk", "num_experts")))
    shape = np.array([k in NON_GATED_EXPERTS for k in keys], dtype=bool)
    return shape | _source_has(c, "nongated")


_MOE_KEY = ("num_tokens", "hidden_size", "inter_size", "topk", "num_experts", "moe_tp_size")

# TensorRT-LLM's CUTLASS fused MoE has a min-latency mode (`cutlass_min_latency_mode`), defined for
# at most 128 tokens: its one caller, the Llama 4 decoder layer of TensorRT-LLM's PyTorch flow, asks
# for it only when hidden_states.size(0) <= 128 on Blackwell with quantised experts (and ships it
# disabled); AIConfigurator's engine reads its rows (kernel_source `moe_torch_flow_min_latency`)
# only for gated NVFP4 queries of <= 128 tokens and the CUTLASS flow's above. The B200/GB200 tables
# time the mode at every token count: 3-4x under the CUTLASS flow from 1,024 tokens on (Qwen3-30B-A3B's
# experts, NVFP4, 8,192 tokens: 0.25 ms, CUTLASS 1.0 ms), where no deployment runs it.
MIN_LATENCY_MAX_TOKENS = 128


def _runnable(c: dict) -> np.ndarray:
    """False for MoE rows that time a kernel mode the framework does not run at their token count:
    the min-latency mode above MIN_LATENCY_MAX_TOKENS."""
    return ~(_source_has(c, "min_latency") & (c["num_tokens"].astype(float) > MIN_LATENCY_MAX_TOKENS))


# A fused-MoE kernel given a TP share of the same model's experts does a subset of the work of the
# kernel at a smaller share (half the intermediate per GPU at twice the TP, the same tokens): a row
# more than this much slower than the fastest at a smaller share, same tokens and format, ran an
# untuned kernel configuration (TensorRT-LLM 1.3 H100 bf16, Llama 4 Scout's experts at 64 tokens:
# TP1 1.30 ms, TP2 3.46 ms, TP4 0.35 ms, TP8 0.19 ms, TP16 0.46 ms, TP32 0.07 ms), not the kernel a
# shape between its measured neighbours runs. The margin keeps the launch-bound rows at a few
# tokens, where the time barely moves with the share and neighbouring TPs differ by 5-10% either way.
UNTUNED_MARGIN = 0.10


def _untuned(c: dict, rows: np.ndarray) -> np.ndarray:
    """Of `rows` (indices into a MoE table's columns), True where the kernel took more than
    (1 + UNTUNED_MARGIN) x the fastest of the same model, format and tokens at a smaller
    `moe_tp_size` among `rows`."""
    family = ("moe_dtype", "num_tokens", "hidden_size", "inter_size", "topk", "num_experts")
    _, group = np.unique(np.array([c[k][rows].astype(str) for k in family]).T, axis=0, return_inverse=True)
    group = group.ravel()
    tp, lat = c["moe_tp_size"][rows].astype(float), c["latency"][rows].astype(float)
    order = np.lexsort((lat, tp, group))
    out = np.zeros(rows.size, dtype=bool)
    best, last_group, last_tp, below = np.inf, None, None, np.inf
    for i in order:  # by group, then TP, then latency: `below` is the fastest at a smaller TP
        if group[i] != last_group:
            best, below, last_group, last_tp = np.inf, np.inf, group[i], tp[i]
        elif tp[i] != last_tp:
            below, last_tp = min(below, best), tp[i]
        out[i] = lat[i] > (1.0 + UNTUNED_MARGIN) * below
        best = min(best, lat[i])
    return out


def moe_kernel_rows(c: dict) -> np.ndarray:
    """Indices of the MoE rows moe_points reads: balanced routing, no expert parallelism, a kernel
    mode the framework runs at the row's tokens (`_runnable`), not an untuned configuration
    (`_untuned`)."""
    rows = np.flatnonzero((c["distribution"] == "balanced") & (c["moe_ep_size"] == 1) & _runnable(c))
    return rows[~_untuned(c, rows)]


SKEWED_ROUTING = "power_law_1.2"  # the tables' skewed workload whose cost runtime.moe_routing prices
SKEW_MIN_SHAPES = 3  # shapes an octave of a table's curve needs


def moe_skew_ratios(c: dict, gated: bool = True, ep: int = 1) -> dict:
    """MoE dtype label -> per octave of rows per expert (round(log2(pairs / min(pairs, experts))),
    0 .. 12, as the balanced tables' grid coordinate), the ratios SKEWED_ROUTING / balanced of every
    shape both timed: the fastest kernel per shape and routing, expert parallelism `ep` (1: none;
    more: the kernel of one rank's experts, which under skewed routing is the busiest rank's), kernel
    modes the framework runs (`_runnable`), gated experts (or the non-gated rows, `gated` False)."""
    keep = (
        (c["moe_ep_size"].astype(float) == ep) & _runnable(c) & (~_non_gated(c) if gated else _non_gated(c))
    )
    times: dict = {}
    for i in np.flatnonzero(keep & np.isin(c["distribution"], ("balanced", SKEWED_ROUTING))):
        key = (str(c["moe_dtype"][i]),) + tuple(float(c[k][i]) for k in _MOE_KEY)
        slot = times.setdefault(key, {})
        dist = str(c["distribution"][i])
        slot[dist] = min(slot.get(dist, np.inf), float(c["latency"][i]))
    out: dict = {}
    for (label, tokens, _h, _inter, topk, experts, _tp), slot in times.items():
        if len(slot) == 2:
            pairs = tokens * topk
            octave = int(np.clip(np.round(np.log2(pairs / min(pairs, experts))), 0, SKEW_NODES - 1))
            out.setdefault(label, [[] for _ in range(SKEW_NODES)])[octave].append(
                slot[SKEWED_ROUTING] / slot["balanced"]
            )
    return out


def moe_skew(c: dict, label: str, gated: bool = True) -> tuple:
    """The table's own SKEWED_ROUTING / balanced curve of one MoE dtype label (Grid.skew): the median
    ratio per octave of rows per expert where at least SKEW_MIN_SHAPES shapes measured it, an octave
    without them holding its nearest measured neighbour's value; () where the table timed no skewed
    routing for it."""
    per = moe_skew_ratios(c, gated).get(label)
    if per is None:
        return ()
    med = np.array([np.median(r) if len(r) >= SKEW_MIN_SHAPES else np.nan for r in per])
    have = np.flatnonzero(np.isfinite(med))
    if not have.size:
        return ()
    nearest = have[np.argmin(np.abs(np.arange(SKEW_NODES)[:, None] - have[None, :]), axis=1)]
    return tuple(float(v) for v in np.round(med[nearest], 4))


def _faster_label(c: dict, base: np.ndarray, labels: tuple) -> str:
    """Of two MoE dtype labels, the one whose fastest kernel per (tokens, shape) is faster at the
    median over the rows both measured (the first where they share none)."""
    best = []
    for label in labels:
        rows = np.flatnonzero(base & (c["moe_dtype"] == label))
        keys = np.column_stack([c[k][rows] for k in _MOE_KEY]).astype(float)
        keep = _fastest(keys, c["latency"][rows])
        best.append({tuple(k): t for k, t in zip(keys[keep].tolist(), c["latency"][rows][keep].tolist())})
    shared = best[0].keys() & best[1].keys()
    if not shared:
        return labels[0]
    ratio = np.median([best[0][k] / best[1][k] for k in shared])
    return labels[0] if ratio <= 1.0 else labels[1]


def moe_points(table: Table, hw) -> dict:
    """our format -> column arrays of fused-MoE kernels under balanced routing without expert
    parallelism (tokens, hidden, inter per GPU, topk, experts, pairs, touched, coords, seconds,
    roof, peak): `roof` is the time of the ops the kernel covers as the engine builds them
    (layers.expert_ops), each at its roofline: the gated up projection and the down projection over
    the experts the tokens touch (weights and inputs in the format, outputs 16-bit), plus the HBM
    passes of the activation (2 x inter in, inter out per pair) and of the top-k combine (pairs x
    hidden in, tokens x hidden out), 16-bit (`pass_roof` and the two GEMMs' `gemm_roofs` apart). Balanced routing spreads the tokens' pairs evenly, so
    they touch min(pairs, experts) experts: the tables' times double with the tokens until every
    expert is hit (vLLM H100, Llama 4's 128 experts, top-1: 2.64 ms at 32 tokens, 5.26 ms at 64),
    where uniform random routing (flops.touched_experts, which the engine prices) would touch 28 and
    50 experts. Only gated experts, as the engine prices
    (every MoE family it reads is SwiGLU/GeGLU): non-gated rows (`_non_gated`) measure another
    kernel path (SGLang H100 bf16: 0.15-0.2 of the roof, its gated shapes 0.5-0.85) and are left
    out, unless a format has no gated row at all (TensorRT-LLM 1.3 on H100/H200 measured only
    Nemotron 3): then they stand in, read as the non-gated MLP they measured (up projection inter
    wide, not 2 x inter), so that their attainment carries over. fp8: the per-tensor (fp8) or the
    block-scaled (fp8_block) kernels, whichever format runs faster on the shapes both measured
    (`_faster_label`), as a deployment picks its checkpoint; one format per grid, since the two
    are different kernels measured on different model shapes (vLLM 0.24's per-tensor fp8 MoE runs
    3.6x slower than its block-scaled one on H100, its block-scaled one 1.25x slower than
    per-tensor on B200). fp4: NVFP4 (fp4 weights and activations with fp8 block scales), as the
    GEMM grid's fp4. Four-bit weights under wider activations are kernels of their own
    (MOE_MIXED_FORMATS), each its own grid `<weights>_<activations>`: the weights stream at four
    bits and are converted in the kernel, which the 16-bit or FP8 kernels' attainment does not
    hold (TensorRT-LLM H200, GPT-OSS 120B's experts, w4a16_mxfp4: 1.0 ms at 1,024 tokens, 0.54 of
    the bf16 peak's and four-bit weights' roof at most).
    TensorRT-LLM's min-latency rows count only where that mode runs (`_runnable`: <= 128 tokens),
    and no row slower than its model's at a smaller TP share (`_untuned`)."""
    c = table.columns
    base = np.zeros(len(c["latency"]), dtype=bool)
    base[moe_kernel_rows(c)] = True
    nongated = _non_gated(c)
    labels = set(c["moe_dtype"][base])
    out = {}
    formats = (
        ("bf16", ("bfloat16",)),
        ("fp16", ("float16",)),
        ("fp8", ("fp8", "fp8_block")),
        ("fp4", ("nvfp4",)),
    ) + tuple((ours, (label,)) for ours, label in MOE_MIXED_FORMATS.items())
    for ours, label in formats:
        label = tuple(x for x in label if x in labels)
        pool = base & np.isin(c["moe_dtype"], label)
        if (pool & ~nongated).any():
            pool &= ~nongated
        if len(label) > 1:
            label = (_faster_label(c, pool, label),)
        rows = np.flatnonzero(pool & np.isin(c["moe_dtype"], label))
        if rows.size == 0:
            continue
        T, H, inter, K, E, tp = (c[k][rows].astype(float) for k in _MOE_KEY)
        s = c["latency"][rows] * 1e-3
        up = np.where(nongated[rows], 1.0, 2.0)  # the up projection: gate and up (2 x inter), or up alone
        inter = inter / tp
        pairs = T * K
        touched = np.minimum(pairs, E)  # balanced: the pairs spread evenly over the experts
        a_dtype, w_dtype = moe_formats(ours)
        elem, w_elem = dtype_bytes(PEAK_DTYPE[a_dtype]), dtype_bytes(w_dtype)
        peak = hw.peak(PEAK_DTYPE[a_dtype])
        passes = sum(i + o for i, o in moe_passes(pairs, T, inter, H, up)) * OUT_BYTES  # act, combine
        pass_roof = passes / hw.memory_bandwidth
        gemm_roofs = tuple(  # the up and the down projection over the touched experts
            np.maximum(
                2.0 * pairs * n * k / peak,
                (touched * n * k * w_elem + pairs * (k * elem + n * OUT_BYTES)) / hw.memory_bandwidth,
            )
            for n, k in ((up * inter, H), (H, inter))
        )
        roof = pass_roof + sum(gemm_roofs)
        # The fastest kernel per shape among those not faster than the roofline: a time under it
        # reads fewer experts' weights than the routing the engine prices touches
        # (TensorRT-LLM 1.3's min-latency kernel on B200, NVFP4, 8 experts, top-2: 46 us at 1, 2 and
        # 4 tokens, where 4 tokens' 8 pairs read all 8 experts, 157 us at the datasheet bandwidth;
        # its cutlass kernel 92, 143, 241 us)
        keys = np.column_stack([T, H, inter, K, E, tp])
        best = np.flatnonzero(roof <= s)
        if best.size:
            best = best[_fastest(keys[best], s[best])]
        shapes = len(np.unique(keys, axis=0))
        T, H, inter, K, E, s, up, pairs, touched, roof, pass_roof = (
            v[best] for v in (T, H, inter, K, E, s, up, pairs, touched, roof, pass_roof)
        )
        gemm_roofs = tuple(g[best] for g in gemm_roofs)
        out[ours] = {
            "tokens": T,
            "hidden": H,
            "inter": inter,
            "topk": K,
            "experts": E,
            "touched": touched,
            "coords": np.log2(
                np.column_stack([np.maximum(pairs / touched, 1.0), H, inter, np.maximum(touched, 1.0)])
            ),
            "seconds": s,
            "roof": roof,
            "pass_roof": pass_roof,
            "gemm_roofs": gemm_roofs,
            "up": up,
            "bits": share_bits(elem),  # the GEMM inputs' width
            "label": " and ".join(label),
            "experts_kind": "non-gated (no gated shape measured)" if up.size and up.min() == 1.0 else "gated",
            "shapes": shapes,  # measured shapes, with those whose every kernel beat the roofline
        }
    return out


KV_CACHE_DTYPES = {"bf16": "bfloat16", "fp8": "fp8"}  # our KV formats -> the tables' kv_cache_dtype


def _plain(c: dict, rows: np.ndarray, kv: str = "bf16", attn: str | None = "bf16") -> np.ndarray:
    """Rows of attention computing in `attn` (bf16 or fp8; None: either) over a KV cache in `kv`
    (bf16 or fp8) without a sliding window."""
    keep = np.ones(rows.size, dtype=bool)
    for column, value in (("attn_dtype", attn), ("kv_cache_dtype", kv)):
        if column in c and value is not None:
            keep &= c[column][rows] == KV_CACHE_DTYPES[value]
    if "window_size" in c:
        keep &= c["window_size"][rows] <= 0
    return rows[keep]


def prefill_points(
    table: Table, hw, fmt: str = "bf16", kv: str = "bf16", rows_fmt: str | None = "bf16"
) -> dict:
    """Column arrays {batch, seqlen, heads, kv_heads, head_dim, x, seconds, flops, bytes, efficiency}
    of causal prefill attention over a KV cache in `kv`, the kernels measured computing in `rows_fmt`
    (None: the fastest of either per shape), their roof in `fmt`: bf16 over bf16, fp8 over fp8
    (TensorRT-LLM's FP8 context FMHA), or over an fp8 cache whatever the kernel computes in
    (aic_grids.PREFILL_GRIDS). Bytes count q, o, k and v in `fmt`, FLOPs against its peak, as the
    engine counts an attention kernel of that format (simulator/attention.py)."""
    c = table.columns
    rows = _plain(c, np.arange(len(table)), kv, rows_fmt)
    cols, s = _fastest_attention(c, rows, "seqlen", c["isl"][rows])
    b, L, h, kvh, d = cols["batch"], cols["seqlen"], cols["heads"], cols["kv_heads"], cols["head_dim"]
    pairs = prefill_pairs(b, L, 0)
    flops = attention_flops(pairs, h, d, d)
    rows_per_block = flash_query_block_rows(d, hw.smem_per_sm_bytes)
    kv_tokens = flash_kv_hbm_tokens(pairs, b * L, L, rows_per_block, hw.sm_count)
    nbytes = (b * L * h + kv_tokens * kvh) * 2 * d * dtype_bytes(fmt)  # q and o, k and v
    peak = hw.peak(fmt)
    return {**cols, "x": L, "seconds": s, "flops": flops, "bytes": nbytes, "efficiency": flops / (s * peak)}


_ATTN_COLUMNS = {
    "batch": "batch_size",
    "heads": "num_heads",
    "kv_heads": "num_key_value_heads",
    "head_dim": "head_dim",
}


def _fastest_attention(c, rows, length_name: str, lengths):
    """(columns, seconds) of the fastest kernel per (batch, length, heads, kv_heads, head_dim) shape."""
    cols = {name: c[src][rows] for name, src in _ATTN_COLUMNS.items()}
    cols[length_name] = lengths
    s = c["latency"][rows] * 1e-3
    keys = ("batch", length_name, "heads", "kv_heads", "head_dim")
    best = _fastest(np.column_stack([cols[k] for k in keys]), s)
    return {k: v[best] for k, v in cols.items()}, s[best]


def decode_points(table: Table, hw, kv: str = "bf16") -> dict:
    """Column arrays {batch, kv_len, heads, kv_heads, head_dim, x, seconds, bytes, per_token_bytes,
    fixed_bytes, efficiency} of decode kernels over a KV cache in `kv` (bf16 or fp8)."""
    c = table.columns
    rows = _plain(c, np.arange(len(table)), kv)
    isl = c["isl"][rows] if "isl" in c else np.ones(rows.size)
    cols, s = _fastest_attention(c, rows, "kv_len", isl + c["step"][rows])
    b, L, h, kvh, d = cols["batch"], cols["kv_len"], cols["heads"], cols["kv_heads"], cols["head_dim"]
    per_token = b * kvh * 2 * d * dtype_bytes(kv)  # K and V of one cached token, every sequence
    fixed = b * h * 2 * d * 2.0  # q in, o out (bf16)
    nbytes = per_token * L + fixed
    flops = attention_flops(b * L, h, d, d)
    return {
        **cols,
        "per_token_bytes": per_token,
        "fixed_bytes": fixed,
        "x": nbytes,
        "seconds": s,
        "flops": flops,
        "bytes": nbytes,
        "efficiency": nbytes / (s * hw.memory_bandwidth),
    }


COLLECTIVE_NAMES = {
    "all_reduce": "all_reduce",
    "all_gather": "all_gather",
    "reduce_scatter": "reduce_scatter",
    "alltoall": "all_to_all",
}


def collective_points(table: Table) -> dict:
    """(op, dtype label, backend) -> {gpus: (bytes, seconds) arrays}; message_size is in elements."""
    c = table.columns
    ops = c["op_name"] if "op_name" in c else np.full(len(table), "all_reduce", dtype=object)
    dtypes = c["nccl_dtype"] if "nccl_dtype" in c else c["allreduce_dtype"]
    backends = c["backend"] if "backend" in c else np.full(len(table), "", dtype=object)
    out = {}
    for op_label, dtype_label, backend in sorted(set(zip(ops, dtypes, backends))):
        op, dtype = COLLECTIVE_NAMES.get(op_label), DTYPES.get(dtype_label)
        if op is None or dtype is None:
            continue
        sel = (ops == op_label) & (dtypes == dtype_label) & (backends == backend)
        by_gpus = {}
        for n in sorted(set(c["num_gpus"][sel])):
            rows = sel & (c["num_gpus"] == n)
            size = c["message_size"][rows] * dtype_bytes(dtype)
            order = np.argsort(size, kind="stable")
            by_gpus[int(n)] = (size[order], c["latency"][rows][order] * 1e-3)
        out[(op, dtype_label, backend)] = by_gpus
    return out
