"""AIConfigurator's kernel tables -> a profile's measured `grids:` (profilers/grid_fit.py fits them).

Per GEMM format the roofline attainment over (m, n, k); fused MoE's over (tokens per touched expert,
hidden, intermediate, experts touched), nodes a weighted median over model shapes; prefill
attention's over (sequence length, batch x heads, GQA group, head dim), bf16 and, where measured,
FP8 over an FP8 cache and bf16 over an FP8 cache; decode attention's over
(batch x KV heads, group, head dim, KV length) for bf16 and fp8 KV caches; MLA's from its own
tables (profilers/aic_mla.py). Each grid carries its error on held-out shapes. Used by
`aic_import.build_import_profile`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from roofline.profilers.aic_mla import mla_grids
from roofline.profilers.aic_points import (
    SKEWED_ROUTING,
    decode_points,
    gemm_points,
    gemm_roof,
    moe_points,
    moe_skew,
    prefill_points,
)
from roofline.profilers.aic_read import Table


def _gemm_grids(table: Table, hw, overhead: float) -> dict:
    from roofline.api import GEMM_GRID_FORMATS
    from roofline.profilers.grid_fit import attainment_grid, fit_m_tile, grid_entry

    out = {}
    for dtype, c in gemm_points(table, hw).items():
        if dtype not in GEMM_GRID_FORMATS:
            continue
        tile = fit_m_tile(c["m"], c["n"], c["k"], c["seconds"], c["compute_bound"])
        X = np.log2(np.column_stack([c["m"], c["n"], c["k"]]))
        roof = gemm_roof(c, hw.memory_bandwidth, tile)
        grid = attainment_grid(f"gemm_{dtype}", X, roof, c["seconds"], overhead, X[:, 1:], m_tile=tile)
        out[grid.kind] = grid_entry(
            grid,
            f"{table.path.name}: {dtype} GEMMs, fastest kernel per shape, rows in tiles of {tile} (fitted "
            "from the times at m and m + 1 rows); held out by (n, k)",
        )
    return out


# A fused-MoE table whose median kernel reaches this share of the two expert GEMMs' roofline is not
# gridded (implausible: vLLM's, SGLang's and TensorRT-LLM's tables sit at 0.55-0.7 of it on H100).
# TensorRT-LLM 1.3's H100/H200 tables reached 1.0 until their kernel, `moe_torch_flow_nongated`, was
# read as the non-gated MLP it measures (aic_points.moe_points); the gate stays as a check on columns.
MOE_PLAUSIBLE_ROOF_SHARE = 0.95


def _moe_grids(table: Table, hw, overhead: float, notes: dict) -> dict:
    from roofline.profilers.grid_fit import (
        attainment_grid,
        grid_entry,
        measured_shapes,
        median_nodes,
        moe_call_s,
    )

    out = {}
    for dtype, c in moe_points(table, hw).items():
        if len(c["seconds"]) <= 8:
            if c["shapes"] > len(c["seconds"]):
                notes[f"moe_{dtype}"] = (
                    f"not gridded: {c['shapes'] - len(c['seconds'])} of {c['shapes']} measured shapes ran "
                    "faster than the expert GEMMs' roofline under the routing they name (fewer experts "
                    f"read than it touches), leaving {len(c['seconds'])}"
                )
            continue
        groups = np.column_stack([c["hidden"], c["inter"], c["topk"], c["experts"]])
        share = float(np.median(c["roof"] / c["seconds"]))
        if share >= MOE_PLAUSIBLE_ROOF_SHARE:
            notes[f"moe_{dtype}"] = (
                f"not gridded: the median fused-MoE kernel reaches {share:.2f} of the expert GEMMs' roofline "
                f"(>= {MOE_PLAUSIBLE_ROOF_SHARE}), implausible for these kernels; the table's columns may mean "
                "something else (per-rank tokens or intermediate size)"
            )
            continue
        # two launches: the engine charges the two expert GEMMs one kernel each
        call = moe_call_s(groups, c["tokens"], c["seconds"], c["roof"], 2 * overhead)
        grid = attainment_grid(
            f"moe_{dtype}",
            c["coords"],
            c["roof"],
            c["seconds"],
            2 * overhead,
            groups,
            nodes=median_nodes,
            call_s=call,
        )
        shapes = measured_shapes(
            grid, c["coords"], c["roof"], c["seconds"], 2 * overhead, groups, c["tokens"]
        )
        # the same kernels under skewed routing, over their balanced time (runtime.moe_routing)
        skew = moe_skew(table.columns, c["label"], gated=c["experts_kind"] == "gated")
        grid = replace(grid, shapes=shapes, skew=skew)
        out[grid.kind] = grid_entry(
            grid,
            f"{table.path.name}: {c['label']} fused MoE, balanced routing, no expert parallelism, "
            f"{c['experts_kind']} experts, fastest kernel per shape, no row slower than its model's at a "
            "smaller TP share; a fixed time per call (call_s: the intercept of the shapes' fewest-token "
            "times against their roofline, grid_fit.moe_call_s) and attainment of the rest, "
            "nodes a weighted median over shapes (grid_fit.median_nodes); held out by model shape "
            "(hidden, intermediate per GPU, top-k, experts)"
            + ("" if len(np.unique(groups, axis=0)) > 1 else ", one measured: by tokens per expert")
            + "; each measured model shape's own scale of the attainment by tokens (shapes: "
            "grid_fit.measured_shapes)"
            + (
                f"; skew: {SKEWED_ROUTING} over balanced routing by log2 rows per expert, the median "
                "over shapes (aic_points.moe_skew)"
                if skew
                else ""
            ),
        )
    return out


# A decode kernel measured faster than the datasheet bandwidth streams its bytes re-read from the
# L2 cache (the microbenchmark repeats the same small cache); a serving step streams each layer's
# cache once, cold, so such rows are not kernel times the engine should learn (L40S: 96 MB of L2).
CACHE_RESIDENT_SHARE = 1.0


def _decode_grids(table: Table, hw, overhead: float) -> dict:
    """`attention_decode` (bf16 KV cache) and `attention_decode_fp8` from the generation table."""
    from roofline.profilers.grid_fit import decode_grid, grid_entry, stream_roof

    out = {}
    for kv, kind in (("bf16", "attention_decode"), ("fp8", "attention_decode_fp8")):
        c = decode_points(table, hw, kv)
        sel = c["bytes"] <= CACHE_RESIDENT_SHARE * hw.memory_bandwidth * c["seconds"]
        if sel.sum() <= 8:
            continue
        b, h, kvh, d, L = (c[k][sel] for k in ("batch", "heads", "kv_heads", "head_dim", "kv_len"))
        X = np.log2(np.column_stack([b * kvh, h / kvh, d, L]))
        groups = np.column_stack([b, h, kvh, d])
        roof = stream_roof(c["per_token_bytes"][sel], c["fixed_bytes"][sel], hw.memory_bandwidth)
        grid = decode_grid(kind, X, roof, c["seconds"][sel], overhead, groups)
        dropped = int((~sel).sum())
        out[kind] = grid_entry(
            grid,
            f"{table.path.name}: {kv} KV cache, bf16 attention, no window, fastest kernel per shape; "
            "attainment of the bytes moved at each KV-length node; held out by (batch, heads, KV heads, "
            "head dim)"
            + (
                f"; {dropped} rows faster than the datasheet bandwidth (L2-resident) left out"
                if dropped
                else ""
            ),
        )
    return out


# (the roof's attention format, KV cache format, the rows' attention format, grid kind). Over an FP8
# cache the engine's 16-bit attention takes the fastest kernel the table measured per shape, whatever
# it computes in, as for every grid: the engines' FP8-cache kernels may compute in FP8 (SGLang's
# FlashAttention-3 backend casts q to the cache's FP8 type for head dims <= 256; TensorRT-LLM's
# bf16-attention rows over an FP8 cache run as fast as its FP8 ones), vLLM's in 16 bits.
PREFILL_GRIDS = (
    ("bf16", "bf16", "bf16", "attention_prefill"),
    ("fp8", "fp8", "fp8", "attention_prefill_fp8"),
    ("bf16", "fp8", None, "attention_prefill_kv_fp8"),
)


def _prefill_grids(table: Table, hw, overhead: float) -> dict:
    """`attention_prefill` (bf16 attention and KV cache) and, where the table measured them, FP8
    attention over an FP8 KV cache (TensorRT-LLM's FP8 context FMHA: `attention_prefill_fp8`) and
    the fastest kernel over an FP8 cache against the bf16 roof (`attention_prefill_kv_fp8`, what 16-bit
    attention over an FP8 cache reads) from the context table: the attainment of each grid's roof
    (its format's peak and bytes)."""
    from roofline.profilers.grid_fit import attainment_grid, grid_entry

    out = {}
    for fmt, kv, rows_fmt, kind in PREFILL_GRIDS:
        c = prefill_points(table, hw, fmt, kv, rows_fmt)
        if len(c["seconds"]) <= 8:
            continue
        b, h, kvh, d = (c[k] for k in ("batch", "heads", "kv_heads", "head_dim"))
        roof = np.maximum(c["flops"] / hw.peak(fmt), c["bytes"] / hw.memory_bandwidth)
        X = np.log2(np.column_stack([c["seqlen"], b * h, h / kvh, d]))
        grid = attainment_grid(kind, X, roof, c["seconds"], overhead, np.column_stack([b, h, kvh, d]))
        what = (
            f"{table.path.name}: {rows_fmt or 'bf16 or fp8'} attention (roof in {fmt}), {kv} KV cache, "
            "no window, causal, fastest kernel per shape; held out by (batch, heads, KV heads, head dim)"
        )
        out[kind] = grid_entry(grid, what)
    return out


def grids_section(tables: dict, hw, overhead: float, notes: dict) -> dict:
    """Measured grids (profilers/grid_fit.py) of the GEMM formats the engine runs, of fused MoE, of
    prefill attention (PREFILL_GRIDS) and of decode attention over bf16 and fp8 KV caches (every
    head dim the table measured), each with its held-out error."""
    out = {}
    if "gemm" in tables:
        out.update(_gemm_grids(tables["gemm"], hw, overhead))
    if "moe" in tables:
        out.update(_moe_grids(tables["moe"], hw, overhead, notes))
    if "context_attention" in tables:
        out.update(_prefill_grids(tables["context_attention"], hw, overhead))
    if "generation_attention" in tables:
        out.update(_decode_grids(tables["generation_attention"], hw, overhead))
    out.update(mla_grids(tables, hw, overhead))  # MLA's own tables, where the framework has them
    if not out:
        notes["grids"] = "no GEMM, MoE or attention table to grid"
    return out
