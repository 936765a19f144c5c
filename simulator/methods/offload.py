"""KV offload to host memory: ShadowKV and plain offload / request swapping.

* ShadowKV (Sun et al., arXiv:2410.21465): pre-RoPE keys are stored as a rank-`rank` factorisation
  (per token `rank` elements instead of KV*head_dim), values go to host memory. Per chunk of
  `chunk_size` tokens a landmark (mean post-RoPE key) stays on the GPU, plus `outlier_chunks` chunks
  kept exactly (by default 24 per 1,024 selected tokens, as its implementation sets them:
  OUTLIER_CHUNKS_PER_1K). Each decode step scores all landmarks, selects a budget of tokens (`sparse_budget`
  of the context, 1.56% in the paper's experiments, Appendix B.1: 2,048 of 128K;
  `sparse_budget_tokens` fixes a count instead), reconstructs their keys from the factors (a GEMM)
  and fetches their values over the host link, overlapped with the reconstruction; attention runs
  over budget + outliers. The selected tokens' keys and values are held on the GPU (Appendix A.2's
  memory formula counts 2 (K + O) C vectors: selected and outlier chunks), and the values already
  there from recent steps are not fetched again: `value_cache_hit_rate` of them (Sec. 5.3: the
  chunk hit rate "remains around 60%"), so each step fetches the other 40%.
  Prefill is the dense prefill (full attention over every head, once) plus the landmarks (mean
  post-RoPE key per chunk), the factorisation of the keys and the values' copy to the host.
  The plan expresses the low-rank keys and landmarks as shares of the KV element budget.
* kv_offload: a `resident_fraction` of each sequence's KV stays on the GPU; the rest lives on the
  host and is streamed over the host link every decode step (layer-wise prefetch overlaps it with
  compute). With `swap_per_request`, each request's KV is swapped out and back in once (context
  switching between requests: the fourth cost of long-context serving).

Each decode step launches, per layer, the implementation's selection, key-rebuild and fetch kernels
(SELECT_KERNELS, REBUILD_KERNELS; counted from its source), which an eager stack (`hf`) pays
per kernel: 13 more launches per layer than a dense layer, about 2.7 ms a step for Llama-3-8B on
an A100 under `hf` (before they were counted, 2 more).

Against the paper (Llama-3-8B-1M, A100, Table 4; tests/test_methods_kv.py; benchmarks/methods_report.py):
the largest batch that fits is within 10% of the paper's (51, 26, 13, 6 at 60K..488K against 48, 24, 12,
6; full attention fits 8, 4, 2); at those batches, where fetching the values bounds the step, the
model's throughput is 6-22% above Table 4's (median over the table +15%; +24% before the kernels
above were counted). At two sequences the error grows with the context (+16% at 60K, +62% at
488K): the paper's step grows about twice as fast with the context as the model's, whose part that
does is mostly the value fetch over PCIe (its zero-copy gather kernel's rate is not modelled apart
from the link's), and its FFN at about half the HBM rate (Table 13) is not modelled either.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from roofline.simulator.kvplan import ALL, NONE, HeadGroup, Tokens, window
from roofline.simulator.methods.base_method import KV_SELECTION, Method, Param
from roofline.simulator.model import MLA
from roofline.simulator.ops import Op, host_transfer
from roofline.simulator.runplan import ExtraOp


def _only_gqa(model, name):
    if model.has_mla:
        return [f"{name} models per-head K/V tensors; {model.name} caches an MLA latent"]
    if not any(g.mixer.kind == "attention" for g in model.layer_groups):
        return [f"{name} compresses a softmax-attention KV cache; {model.name} has no attention layers"]
    return []


# Kernels of ShadowKV's decode per layer beyond its attention and value fetch, as its throughput
# path launches them (bytedance/ShadowKV's ShadowKVCache_CPU in its kv_cache.py; the fetch,
# gather_copy_with_offsets, is one kernel, the attention FlashAttention's one). Selection
# (get_retrieval_position_ids): the query made contiguous, batch_gemm_softmax (a CUTLASS GEMM
# whose epilogue writes partial softmax reductions, then the softmax: 2), torch.topk (the selection
# and the sort of what it selected: 2), the gather of the selected chunks' ids and
# reorder_keys_and_compute_offsets; the max over a KV head's query heads where they are grouped
# (GQA). Key rebuild (get_key_cache): gather_copy_d2d_with_offsets (the hits moved in the GPU
# cache), the position ids' cast to int32, batch_gather_gemm and the RoPE that writes the rebuilt
# keys into the cache. Each pays the framework's per-kernel time (launched eagerly: `hf`).
SELECT_KERNELS = 7.0  # + 1 with grouped query heads
REBUILD_KERNELS = 4.0
# Outlier chunks kept exactly per 1,024 selected tokens: ShadowKVCache_CPU sets
# `outlier_chunk = (sparse_budget // 1024) * 24` (24, 48 and 96 chunks at the 1,024-, 2,048- and
# 4,096-token budgets its throughput script runs at 60K, 122K and 244K), taken proportionally here
# since the budget is a share of the context.
OUTLIER_CHUNKS_PER_1K = 24.0


def _shadow_decode(ctx, m, count, r, chunk, budget_of):
    """ShadowKV per decode step: landmark scoring and selection, the selected keys' low-rank
    rebuild (their kernels: SELECT_KERNELS, REBUILD_KERNELS)."""
    heads = ctx.shard.heads(m)
    kv_dim = ctx.shard.kv_heads(m) * m.head_dim
    b = ctx.shape.batch
    budget = budget_of(ctx.shape.prompt)
    score = Tokens().kv(2.0 * b * ctx.shape.queries * heads * m.head_dim / chunk)
    rebuild_flops = 2.0 * b * budget * r * kv_dim
    rebuild_bytes = b * (budget * r + r * kv_dim + budget * kv_dim) * ctx.fmt.kb
    return [
        Op(
            name="landmark_score",
            kind="attention_decode",
            flops=score,
            bytes=0.0,
            compute_rate=ctx.rates.vector_rate,
            memory_rate=ctx.rates.mem_rate,
            count=count,
            kernels=SELECT_KERNELS + np.greater(heads, ctx.shard.kv_heads(m)).astype(float),  # GQA's max
        ),
        Op(
            name="key_rebuild",
            kind="gemm",
            flops=rebuild_flops,
            bytes=rebuild_bytes,
            compute_rate=ctx.rates.gemm_rate(budget, kv_dim, r),  # (budget x r) @ (r x kv_dim)
            memory_rate=ctx.rates.mem_rate,
            count=count,
            kernels=REBUILD_KERNELS,
        ),
    ]


def _shadow_prefill(ctx, m, count, r, chunk):
    """ShadowKV prefill: landmarks, the keys' factorisation and the values' copy to the host."""
    kv_dim = ctx.shard.kv_heads(m) * m.head_dim
    svd_flops = (
        4.0 * ctx.shape.batch * ctx.shape.prompt * kv_dim * r
    )  # randomised SVD: two passes of P x kv_dim x r
    values = ctx.shape.tokens * kv_dim * ctx.fmt.kb
    keys = ctx.shape.tokens * kv_dim / 2  # post-RoPE key elements, averaged per chunk
    return [
        Op(
            name="landmarks",
            kind="elementwise",
            flops=keys,
            bytes=(keys + keys / chunk) * ctx.fmt.kb,
            compute_rate=ctx.rates.vector_rate,
            memory_rate=ctx.rates.mem_rate,
            count=count,
        ),
        Op(
            name="key_svd",
            kind="gemm",
            flops=svd_flops,
            bytes=ctx.shape.tokens * kv_dim * ctx.fmt.kb * 2,
            compute_rate=ctx.rates.gemm_rate(ctx.shape.prompt, r, kv_dim),  # (P x kv_dim) @ (kv_dim x r)
            memory_rate=ctx.rates.mem_rate,
            count=count,
        ),
        host_transfer("value_offload", values, ctx.rates.host_rate, count),
    ]


class ShadowKV(Method):
    name = "shadowkv"
    summary = "Low-rank keys on GPU, values on host, sparse fetch per step"
    citation = "ShadowKV, Sun et al. 2025 (arXiv:2410.21465)"
    changes = "GPU KV = low-rank keys + landmarks + outliers; values on host; per step: landmark scoring, key reconstruction, value fetch over PCIe"
    stage = KV_SELECTION
    exclusive = ("selection", "offload", "eviction", "head_split")
    params = {
        "rank": Param("int", "Rank of the pre-RoPE key factorisation.", 160, minimum=1, validated=(160, 160)),
        "sparse_budget": Param(
            "float",
            "Share of the context whose keys are rebuilt and values fetched per step (the paper: 1.56%).",
            0.0156,
            minimum=0.0,
            maximum=1.0,
            exclusive_minimum=True,
            validated=(0.002, 0.0312),  # Figure 8's budgets, 0.20% to 3.12%
        ),
        "sparse_budget_tokens": Param(
            "int",
            "A fixed number of selected tokens per step instead of sparse_budget's share (null: the share).",
            None,
            minimum=1,
            nullable=True,
            validated=(1024, 4096),
        ),
        "value_cache_hit_rate": Param(
            "float",
            "Share of the selected tokens' values already on the GPU from recent steps (the paper: ~60%).",
            0.6,
            minimum=0.0,
            maximum=1.0,
            validated=(0.6, 0.6),
        ),
        "chunk_size": Param("int", "Tokens per landmark chunk.", 8, minimum=1, validated=(8, 8)),
        "outlier_chunks": Param(
            "int",
            "Chunks kept exactly on the GPU (null: 24 per 1,024 selected tokens, as the implementation sets "
            "them: 48 at the paper's 2,048-token budget).",
            None,
            minimum=0,
            nullable=True,
            validated=(24, 96),  # the implementation's at its 1,024- to 4,096-token budgets
        ),
    }

    def check_model(self, model):
        return _only_gqa(model, self.name)

    def warnings(self, model):
        out = super().warnings(model)
        windows = sorted(
            {g.mixer.window for g in model.layer_groups if getattr(g.mixer, "window", None) is not None}
        )
        if windows:
            out.append(
                f"shadowkv: {model.name} has sliding-window layers (window {', '.join(map(str, windows))} "
                "tokens): their dense cache is already that small, and ShadowKV's low-rank keys, outliers "
                "and selected tokens beside it can hold more than it (the paper evaluates full-attention models)"
            )
        return out

    def apply_plan(self, plan, model):
        kv_elems = max(
            g.mixer.kv_elements_per_token() for g in model.layer_groups if g.mixer.kind == "attention"
        )
        low_rank = self.rank / kv_elems  # share of K+V elements per token
        landmark = 1.0 / (2.0 * self.chunk_size)  # one key vector (half of K+V) per chunk
        outliers = self.outlier_tokens
        budget_of, missed = self.budget_of, 1.0 - self.value_cache_hit_rate

        def selected(prompt):
            return window(budget_of(prompt))

        def fetched(prompt):
            return window(missed * budget_of(prompt))

        def kept(prompt):
            return window(outliers(prompt))

        # Every query head attends the outliers and the selected budget, so `_sparse` stands for the
        # heads (prefill attention runs once over them, as full attention); the other groups only
        # account what is stored, read and fetched (heads=False), never a second prefill. `_sparse`
        # holds the selected tokens' rebuilt keys and cached values on the GPU.
        groups = [
            HeadGroup(low_rank, ALL, NONE, attended=NONE, heads=False, label="_lowrank_keys"),
            HeadGroup(landmark, ALL, ALL, attended=NONE, heads=False, label="_landmarks"),
            HeadGroup(1.0, kept, kept, heads=False, label="_outliers"),
            HeadGroup(
                0.5,
                NONE,
                NONE,
                attended=NONE,
                host_stored=ALL,
                host_read=fetched,
                heads=False,
                label="_values",
            ),
            HeadGroup(1.0, selected, selected, attended=selected, label="_sparse"),
        ]
        return plan.with_groups(groups)

    def outlier_tokens(self, prompt):
        """Tokens of the outlier chunks kept exactly: `outlier_chunks` chunks, or by default
        OUTLIER_CHUNKS_PER_1K per 1,024 selected tokens."""
        if self.outlier_chunks is not None:
            return float(self.outlier_chunks * self.chunk_size)
        return OUTLIER_CHUNKS_PER_1K * self.chunk_size * self.budget_of(prompt) / 1024.0

    def budget_of(self, prompt):
        """Selected tokens per step for a prompt of `prompt` tokens: the fixed count, or the share."""
        if self.sparse_budget_tokens is not None:
            return float(self.sparse_budget_tokens)
        return np.maximum(self.sparse_budget * np.asarray(prompt, dtype=float), 1.0)

    def apply_extras(self, extras, model, plan):
        # The value fetch is on each layer's path: attention needs the values. Only the keys'
        # reconstruction runs beside it (Table 13: "Recompute K (Overlapped)" next to "Fetch V"), a
        # GEMM small next to the fetch here, so the fetch adds to the step (no host_overlap).
        r, chunk = self.rank, self.chunk_size
        return extras.add(
            ExtraOp("shadowkv_decode", "decode", _shadow_decode, (r, chunk, self.budget_of)),
            ExtraOp("shadowkv_prefill", "prefill", _shadow_prefill, (r, chunk)),
        )


class KVOffload(Method):
    name = "kv_offload"
    summary = "Keep part of the KV cache in host memory; stream it each step, or swap per request"
    citation = "FlexGen, Sheng et al. 2023 (arXiv:2303.06865); long-context serving cost analysis, Fu 2024 (arXiv:2405.08944)"
    changes = "GPU KV = resident share; the rest read over the host link each step; optional swap-out/in per request"
    stage = KV_SELECTION
    exclusive = ("offload",)
    params = {
        "resident_fraction": Param(
            "float", "Share of each sequence's KV kept in GPU memory.", minimum=0.0, maximum=1.0
        ),
        "swap_per_request": Param(
            "bool", "Swap each request's whole KV out to the host and back once.", False
        ),
    }

    def apply_plan(self, plan, model):
        f = self.resident_fraction
        groups = []
        for g in plan.groups:
            if f > 0:
                groups.append(replace(g, fraction=g.fraction * f, label=f"{g.label}_resident"))
            if f < 1:
                groups.append(
                    HeadGroup(
                        g.fraction * (1 - f),
                        NONE,
                        NONE,
                        attended=g.attended_tokens(),
                        host_stored=g.stored,
                        host_read=g.read,
                        prefill_window=g.prefill_window,
                        label=f"{g.label}_offloaded",
                    )
                )
        return plan.with_groups(groups)

    def apply_extras(self, extras, model, plan):
        extras = replace(extras, host_overlap=True)
        if not self.swap_per_request:
            return extras
        return extras.add(ExtraOp("kv_swap", "prefill", _kv_swap))


def _kv_swap(ctx, m, count):
    """Each request's whole KV out to the host and back in once, in the KV's storage format. An MLA
    latent is replicated on every tensor-parallel rank (as memory.py counts it), so each GPU moves
    all of it; per-head K/V tensors are split across the ranks."""
    if isinstance(m, MLA):
        kv_dim = m.kv_elements_per_token()
    else:
        kv_dim = 2 * ctx.shard.kv_heads(m) * m.head_dim
    byts = 2.0 * ctx.shape.batch * ctx.shape.prompt * kv_dim * ctx.plan.storage_bytes(1.0, ctx.fmt.kb)
    # On the compute stream: the request cannot run until its KV is back (serial).
    return [host_transfer("kv_swap", byts, ctx.rates.host_rate, count, stream="compute")]


class WeightOffload(Method):
    name = "weight_offload"
    summary = "Keep part of the weights in host memory and stream them in every forward pass"
    citation = "FlexGen, Sheng et al. 2023 (arXiv:2303.06865); ZeRO-Inference (DeepSpeed, 2022)"
    changes = "GPU weight bytes x resident share; the rest crosses the host link every pass, overlapped with compute"
    stage = KV_SELECTION
    exclusive = ("weight_offload",)
    params = {
        "resident_fraction": Param(
            "float", "Share of the weights kept in GPU memory.", minimum=0.0, maximum=1.0
        )
    }

    def apply_extras(self, extras, model, plan):
        return replace(extras, weight_host_fraction=1.0 - self.resident_fraction, host_overlap=True)
