"""AIConfigurator's MLA attention tables -> points and the profile's `mla_prefill` / `mla_decode` grids.

SGLang's and TensorRT-LLM's `context_mla_perf` / `generation_mla_perf` time the attention of
DeepSeek-V3's multi-head latent attention (arXiv:2412.19437 §2.1; DeepSeek-V2 arXiv:2405.04434
§2.1.2) alone, bf16 compute, over a bf16 or fp8 KV cache. `num_heads` is the heads per GPU (the
tables pair it with tp_size so that heads x tp is the model's 128, or 64 for the tp-1 rows of 64
heads), `isl` the prompt (context) or 1 with `step` tokens generated (generation: KV length isl +
step). Each row's FLOPs and bytes are counted exactly as the engine's MLA ops count them
(`simulator.attention`), so that a grid's attainment reproduces the measured time through the
engine's own formulas:

* Prefill (`_prefill_attention`, MLA): causal pairs `prefill_pairs`, FLOPs `attention_flops` over
  the per-head K and V materialised from the latent (qk_dim = 128 + 64, v_dim = 128); bytes Q and O,
  the K/V streamed as `flash_kv_hbm_tokens` counts them (query blocks for head dim 192), all bf16,
  plus the latent written in the KV format. Attainment of max(FLOPs / bf16 peak, bytes / bandwidth)
  net of kernel_overhead_s, over (sequence length, batch x heads, heads, KV bytes): batch x heads
  alone (the (sequence, head) blocks filling the SMs) merges shapes whose attainment differs by up to
  2x at a few heads per GPU (held-out p90 on H100 20% -> 15-17%).
* Decode (`_decode_attention`, MLA): weight absorption attends over the latent, FLOPs
  2 x batch x heads x (2 kv_lora_rank + rope) per KV token; bytes the latent read in the KV format
  plus q in and o out (bf16) and the new token's latent appended. Attainment of roof = max(FLOPs /
  peak, bytes / bandwidth) net of kernel_overhead_s over (batch, heads, KV bytes, KV length), one
  KV-length node per octave, read as GQA decode is (simulator/decode_time.py: the time at the
  nodes, linear in the length between them).

vLLM ships only module-level MLA tables (`mla_*_module_perf`: the attention with its projection
GEMMs in bf16 or fp8_block); they are not gridded (the engine would have to subtract its own GEMM
pricing, mixing the GEMM grids' error into the attention's).
"""

from __future__ import annotations

import numpy as np

from roofline.api import (
    MLA,
    attention_flops,
    dtype_bytes,
    flash_kv_hbm_tokens,
    flash_query_block_rows,
    prefill_pairs,
)
from roofline.profilers.aic_points import _fastest
from roofline.profilers.aic_read import DTYPES, Table

# The MLA the tables measure: DeepSeek-V3's (config.json of deepseek-ai/DeepSeek-V3; Kimi K2 shares it)
DEEPSEEK_V3_MLA = MLA(
    num_heads=128,
    q_lora_rank=1536,
    kv_lora_rank=512,
    qk_nope_head_dim=128,
    qk_rope_head_dim=64,
    v_head_dim=128,
)
QB = 2.0  # bf16 queries and outputs (mla_dtype)


def _rows(table: Table, length) -> tuple:
    """(columns of the fastest row per (batch, length, heads, KV format) shape, seconds) of the bf16
    MLA rows over a KV cache in a format we know."""
    c = table.columns
    kv_label = c.get("kv_cache_dtype", np.full(len(table), "bfloat16", dtype=object))
    kb = np.array(
        [dtype_bytes(DTYPES[v]) if DTYPES.get(v) in ("bf16", "fp16", "fp8") else 0.0 for v in kv_label]
    )
    keep = kb > 0
    if "mla_dtype" in c:
        keep &= c["mla_dtype"] == "bfloat16"
    cols = {"batch": c["batch_size"][keep], "heads": c["num_heads"][keep], "kv_bytes": kb[keep]}
    cols["length"] = np.asarray(length, dtype=float)[keep]
    s = c["latency"][keep] * 1e-3
    best = _fastest(np.column_stack([cols[k] for k in ("batch", "length", "heads", "kv_bytes")]), s)
    return {k: v[best] for k, v in cols.items()}, s[best]


def mla_prefill_points(table: Table, hw, m: MLA = DEEPSEEK_V3_MLA) -> dict:
    """Column arrays {batch, seqlen, heads, kv_bytes, seconds, flops, bytes, roof, coords, groups}."""
    cols, s = _rows(table, table.columns["isl"])
    b, L, h, kb = cols["batch"], cols.pop("length"), cols["heads"], cols["kv_bytes"]
    pairs = prefill_pairs(b, L, 0)
    flops = attention_flops(pairs, h, m.qk_dim, m.v_dim)
    br = flash_query_block_rows(max(m.qk_dim, m.v_dim), hw.smem_per_sm_bytes)
    kv_reads = flash_kv_hbm_tokens(pairs, b * L, L, br, hw.sm_count)
    per_token = h * (m.qk_dim + m.v_dim) * QB  # q and o, and each K/V token streamed (kv_io)
    nbytes = b * L * per_token + kv_reads * per_token + b * L * kb * m.kv_elements_per_token()
    roof = np.maximum(flops / hw.peak("bf16"), nbytes / hw.memory_bandwidth)
    return {
        **cols,
        "seqlen": L,
        "seconds": s,
        "flops": flops,
        "bytes": nbytes,
        "roof": roof,
        "coords": np.log2(np.column_stack([L, b * h, h, kb])),
        "groups": np.column_stack([b, h, kb]),
    }


def mla_decode_points(table: Table, hw, m: MLA = DEEPSEEK_V3_MLA) -> dict:
    """Column arrays {batch, kv_len, heads, kv_bytes, seconds, flops, bytes, roof, coords, groups}."""
    c = table.columns
    isl = c["isl"] if "isl" in c else np.ones(len(table))
    cols, s = _rows(table, isl + c["step"])
    b, L, h, kb = cols["batch"], cols.pop("length"), cols["heads"], cols["kv_bytes"]
    cached = m.kv_elements_per_token()  # kv_lora_rank + rope, shared by the heads
    flops_per_token = 2.0 * b * h * (2 * m.kv_lora_rank + m.qk_rope_head_dim)
    bytes_per_token = b * cached * kb
    fixed = b * (h * (m.qk_dim + m.v_dim) * QB + cached * kb)
    peak, bw = hw.peak("bf16"), hw.memory_bandwidth

    def roof_at(rows, lengths):
        """max(FLOPs / peak, bytes / bandwidth) of rows at KV lengths (rows, n)."""
        compute = flops_per_token[rows, None] * lengths / peak
        return np.maximum(compute, (bytes_per_token[rows, None] * lengths + fixed[rows, None]) / bw)

    return {
        **cols,
        "kv_len": L,
        "seconds": s,
        "flops": flops_per_token * L,
        "bytes": bytes_per_token * L + fixed,
        "roof": roof_at(np.arange(L.size), L[:, None])[:, 0],
        "roof_at": roof_at,
        "coords": np.log2(np.column_stack([b, h, kb, L])),
        "groups": np.column_stack([b, h, kb]),
    }


def mla_grids(tables: dict, hw, overhead: float) -> dict:
    """`mla_prefill` and `mla_decode` grid entries from the tables present (none without them)."""
    from roofline.profilers.grid_fit import attainment_grid, decode_grid, grid_entry

    prefill = (
        "DeepSeek-V3 MLA prefill, bf16 attention, bf16/fp8 KV cache, fastest kernel per shape; held out by "
        "(batch, heads per GPU, KV format)"
    )
    decode = (
        "DeepSeek-V3 MLA decode over the latent, bf16/fp8 KV cache, fastest kernel per shape; attainment of "
        "max(FLOPs / peak, bytes / bandwidth) at each KV-length node; held out by (batch, heads per GPU, KV "
        "format)"
    )
    out = {}
    for name, kind, points, build, roof, what in (
        ("context_mla", "mla_prefill", mla_prefill_points, attainment_grid, "roof", prefill),
        ("generation_mla", "mla_decode", mla_decode_points, decode_grid, "roof_at", decode),
    ):
        if name not in tables:
            continue
        c = points(tables[name], hw)
        if c["seconds"].size > 8:
            grid = build(kind, c["coords"], c[roof], c["seconds"], overhead, c["groups"])
            out[kind] = grid_entry(grid, f"{tables[name].path.name}: {what}")
    return out
