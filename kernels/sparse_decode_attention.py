"""Quest-style page-sparse decode attention (Tang et al., "Quest: Query-Aware Sparsity for Efficient
Long-Context LLM Inference", arXiv:2406.10774).

The KV cache is cut into pages of ``page_size`` tokens; each page keeps the element-wise min and
max of its keys ([batch, kv_heads, num_pages, head_dim]). At each decode step a page's score is an
upper bound on any q.k in it, ``sum_d max(q_d * min_d, q_d * max_d)``; the ``ceil(token_budget /
page_size)`` best pages per (batch, kv_head) are selected and the attention kernel reads only those.

GQA: a KV head's query heads share one selection, scored by the sum of their upper bounds (Quest
is defined per head for MHA; summing keeps one page read serving the whole group).
Scoring and top-k selection are done in torch (a matmul and ``torch.topk``); only the attention
over the selected pages is a Triton kernel, with ``decode_attention``'s split-combine kernel.
KV is contiguous (pages are logical chunks) or paged (Quest pages are the pool's pages).
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from roofline.kernels.decode_attention import decode_attention_reference, gather_pages
from roofline.kernels.decode_common import (
    LOG2E,
    block_sizes,
    check_decode_inputs,
    check_devices,
    check_kv_values,
    combine_splits,
    default_num_splits,
    kv_rows,
    load_kv_tile,
    load_query_group,
    online_softmax_tile,
    store_partial,
)


@triton.jit
def sparse_decode_attention_kernel(
    q_ptr, k_ptr, v_ptr, kv_lens_ptr, block_table_ptr, pages_ptr, counts_ptr, o_part_ptr, lse_part_ptr,
    qk_scale, capacity,
    stride_qb, stride_qh, stride_qd,
    stride_k0, stride_k1, stride_k2, stride_k3,
    stride_v0, stride_v1, stride_v2, stride_v3,
    stride_bt_b,
    stride_pb, stride_ph, stride_pj,
    stride_cb, stride_ch,
    stride_ob, stride_oh, stride_os, stride_od,
    stride_lb, stride_lh, stride_ls,
    GROUP: tl.constexpr, HEAD_DIM: tl.constexpr, NUM_SPLITS: tl.constexpr,
    PAGED: tl.constexpr, PAGE_SIZE: tl.constexpr, PAGES_PER_ITER: tl.constexpr,
    BLOCK_G: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    """Program (b, kv_head, split): online softmax over this split's share of the selected pages,
    PAGES_PER_ITER pages per tile; tokens past kv_len in the last page are masked."""
    b = tl.program_id(0)
    kvh = tl.program_id(1)
    split = tl.program_id(2)
    kv_len = tl.minimum(tl.load(kv_lens_ptr + b), capacity)
    count = tl.load(counts_ptr + b * stride_cb + kvh * stride_ch)
    per_split = tl.cdiv(count, NUM_SPLITS)
    j0 = split * per_split
    j1 = tl.minimum(j0 + per_split, count)

    heads, offs_d, mask_g, mask_d, q = load_query_group(
        q_ptr, b, kvh, stride_qb, stride_qh, stride_qd, GROUP, HEAD_DIM, BLOCK_G, BLOCK_D
    )
    offs_n = tl.arange(0, BLOCK_N)
    lane_page = offs_n // PAGE_SIZE
    lane_slot = offs_n % PAGE_SIZE
    m_i = tl.full([BLOCK_G], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_G], tl.float32)
    acc = tl.zeros([BLOCK_G, BLOCK_D], tl.float32)
    for j in range(j0, j1, PAGES_PER_ITER):
        jj = j + lane_page
        lane_ok = (lane_page < PAGES_PER_ITER) & (jj < j1)
        page = tl.load(pages_ptr + b * stride_pb + kvh * stride_ph + jj * stride_pj, mask=lane_ok, other=0)
        pos = page * PAGE_SIZE + lane_slot
        mask_n = lane_ok & (pos < kv_len)
        outer, slot = kv_rows(block_table_ptr, stride_bt_b, b, pos, mask_n, PAGED, PAGE_SIZE)
        kv_mask = mask_n[:, None] & mask_d[None, :]
        k = load_kv_tile(k_ptr, outer, kvh, slot, offs_d, kv_mask, stride_k0, stride_k1, stride_k2, stride_k3)
        v = load_kv_tile(v_ptr, outer, kvh, slot, offs_d, kv_mask, stride_v0, stride_v1, stride_v2, stride_v3)
        m_i, l_i, acc = online_softmax_tile(q, k, v, mask_n, m_i, l_i, acc, qk_scale)

    store_partial(o_part_ptr, lse_part_ptr, acc, m_i, l_i, b, heads, split, offs_d, mask_g, mask_d,
                  stride_ob, stride_oh, stride_os, stride_od, stride_lb, stride_lh, stride_ls)  # fmt: skip


def page_metadata(k, page_size: int, kv_lens=None, *, block_table=None):
    """Per-page element-wise (min, max) of the keys, each [batch, kv_heads, num_pages, head_dim].

    k is contiguous [batch, kv_heads, max_len, head_dim] (num_pages = ceil(max_len / page_size)) or,
    with ``block_table``, a paged pool [num_pages_in_pool, kv_heads, page_size, head_dim]
    (num_pages = max_pages). With ``kv_lens``, tokens at or past a sequence's length are left out
    and pages holding none of its tokens get zeros (their scores are masked anyway).
    """
    if block_table is not None:
        k = gather_pages(k, block_table)
    batch, kv_heads, length, head_dim = k.shape
    num_pages = triton.cdiv(length, page_size)
    pad = num_pages * page_size - length
    pages = torch.nn.functional.pad(k, (0, 0, 0, pad)).view(batch, kv_heads, num_pages, page_size, head_dim)
    positions = torch.arange(num_pages * page_size, device=k.device)
    limit = torch.full((batch,), length, device=k.device) if kv_lens is None else kv_lens.clamp(max=length)
    valid = (positions[None, :] < limit[:, None]).view(batch, 1, num_pages, page_size, 1)
    kmin = pages.masked_fill(~valid, float("inf")).amin(3)
    kmax = pages.masked_fill(~valid, float("-inf")).amax(3)
    seen = valid.any(3)
    return kmin.where(seen, 0), kmax.where(seen, 0)


def page_scores(q, kmin, kmax, kv_lens, page_size: int):
    """Quest's upper bound per page, summed over each KV head's query heads: [batch, kv_heads,
    num_pages] fp32, -inf for pages past kv_len. sum_d max(q_d min_d, q_d max_d) is computed as
    relu(q) . max + min(q, 0) . min (equal since max >= min), two matmuls instead of a 4-D product."""
    batch, heads, head_dim = q.shape
    kv_heads, num_pages = kmin.shape[1], kmin.shape[2]
    qg = q.float().view(batch, kv_heads, heads // kv_heads, head_dim)
    bound = qg.clamp(min=0) @ kmax.float().transpose(-1, -2) + qg.clamp(max=0) @ kmin.float().transpose(
        -1, -2
    )
    scores = bound.sum(2)
    valid = (
        torch.arange(num_pages, device=q.device)[None, :] < (kv_lens[:, None] + page_size - 1) // page_size
    )
    return scores.masked_fill(~valid[:, None, :], float("-inf"))


def select_pages(scores, token_budget: int, page_size: int):
    """Top ceil(token_budget / page_size) pages per (batch, kv_head), in torch (torch.topk).

    Returns (pages int32 [batch, kv_heads, k] in ascending page order, padded with num_pages past
    ``counts``; counts int32 [batch, kv_heads], fewer than k where a sequence has fewer pages).
    """
    if token_budget < 1:
        raise ValueError(f"token_budget must be at least 1 token, got {token_budget}")
    num_pages = scores.shape[-1]
    k = min(triton.cdiv(token_budget, page_size), num_pages)
    top = scores.topk(k, dim=-1)
    chosen = top.values > float("-inf")
    pages = torch.where(chosen, top.indices, num_pages).sort(dim=-1).values
    return pages.to(torch.int32), chosen.sum(-1).to(torch.int32)


def attend_selected_pages(
    q, k, v, kv_lens, pages, counts, page_size: int, *, block_table=None, num_splits=None, scale=None,
    check_values=True,
):  # fmt: skip
    """Launch the kernel on a given selection (``select_pages``' output); k, v as in
    sparse_decode_attention. Returns [batch, heads, head_dim] in q's dtype."""
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1 token, got {page_size}")
    paged = block_table is not None
    kv_heads, capacity = check_decode_inputs(q, k.shape, kv_lens, block_table, page_size if paged else None)
    if v.shape != k.shape or k.dtype != q.dtype or v.dtype != q.dtype or k.shape[3] != q.shape[2]:
        raise ValueError(
            f"k and v must match each other and q ({q.dtype}, head_dim {q.shape[2]}): "
            f"got k {k.dtype} {tuple(k.shape)}, v {v.dtype} {tuple(v.shape)}"
        )
    batch, heads, head_dim = q.shape
    if pages.dim() != 3 or pages.shape[:2] != (batch, kv_heads) or counts.shape != (batch, kv_heads):
        raise ValueError(
            f"pages must be [batch={batch}, kv_heads={kv_heads}, k] and counts [batch, kv_heads], "
            f"got {tuple(pages.shape)} and {tuple(counts.shape)}"
        )
    device = check_devices(sparse_decode_attention_kernel, q=q, k=k, v=v, kv_lens=kv_lens,
                           block_table=block_table, pages=pages, counts=counts)  # fmt: skip
    if check_values:
        check_kv_values(kv_lens, block_table, page_size, capacity, k.shape[0])
    group = heads // kv_heads
    num_splits = num_splits or default_num_splits(batch * kv_heads, pages.shape[2] * page_size, device)
    scale = head_dim**-0.5 if scale is None else scale
    o_part = torch.empty(batch, heads, num_splits, head_dim, device=device, dtype=torch.float32)
    lse_part = torch.empty(batch, heads, num_splits, device=device, dtype=torch.float32)
    block_g, block_d = block_sizes(group, head_dim)
    block_n = max(64, triton.next_power_of_2(page_size))
    sparse_decode_attention_kernel[(batch, kv_heads, num_splits)](
        q, k, v, kv_lens, block_table if paged else kv_lens, pages, counts, o_part, lse_part,
        scale * LOG2E, capacity,
        *q.stride(), *k.stride(), *v.stride(),
        block_table.stride(0) if paged else 0,
        *pages.stride(), *counts.stride(),
        *o_part.stride(), *lse_part.stride(),
        GROUP=group, HEAD_DIM=head_dim, NUM_SPLITS=num_splits,
        PAGED=paged, PAGE_SIZE=page_size, PAGES_PER_ITER=block_n // page_size,
        BLOCK_G=block_g, BLOCK_N=block_n, BLOCK_D=block_d,
    )  # fmt: skip
    return combine_splits(o_part, lse_part, torch.empty_like(q))


def sparse_decode_attention(
    q, k, v, kv_lens, page_size: int, token_budget: int, *, block_table=None, metadata=None,
    num_splits=None, scale=None, check_values=True,
):  # fmt: skip
    """Decode attention over the top ceil(token_budget / page_size) pages of each (batch, kv_head).

    q [batch, heads, head_dim]; k, v contiguous [batch, kv_heads, max_len, head_dim] (logical pages
    of ``page_size`` tokens) or, with ``block_table``, pools [num_pages, kv_heads, page_size,
    head_dim]. ``metadata`` is page_metadata's (min, max); computed here when not given (a serving
    system keeps it up to date as tokens are appended instead). With token_budget >= kv_len every
    page is selected and the result is dense decode attention.
    """
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1 token, got {page_size}")
    check_decode_inputs(q, k.shape, kv_lens, block_table, page_size if block_table is not None else None)
    if metadata is None:
        metadata = page_metadata(k, page_size, kv_lens, block_table=block_table)
    kmin, kmax = metadata
    scores = page_scores(q, kmin, kmax, kv_lens, page_size)
    pages, counts = select_pages(scores, token_budget, page_size)
    return attend_selected_pages(
        q, k, v, kv_lens, pages, counts, page_size, block_table=block_table, num_splits=num_splits,
        scale=scale, check_values=check_values,
    )  # fmt: skip


def selected_token_mask(pages, counts, page_size: int, length: int):
    """[batch, kv_heads, length] bool: True at the tokens of the first ``counts`` selected pages."""
    num_pages = triton.cdiv(length, page_size)
    taken = torch.arange(pages.shape[2], device=pages.device) < counts[..., None]
    ids = torch.where(taken, pages.long(), num_pages)  # num_pages = a spare slot, dropped below
    hit = torch.zeros(*pages.shape[:2], num_pages + 1, dtype=torch.bool, device=pages.device)
    hit.scatter_(2, ids, True)
    return hit[..., :num_pages].repeat_interleave(page_size, dim=2)[..., :length]


def sparse_decode_attention_reference(
    q, k, v, kv_lens, page_size: int, token_budget: int, *, block_table=None, scale=None
):  # fmt: skip
    """Torch reference: the same torch selection, then dense attention masked to the selected pages."""
    kmin, kmax = page_metadata(k, page_size, kv_lens, block_table=block_table)
    pages, counts = select_pages(page_scores(q, kmin, kmax, kv_lens, page_size), token_budget, page_size)
    length = block_table.shape[1] * page_size if block_table is not None else k.shape[2]
    keep = selected_token_mask(pages, counts, page_size, length)
    return decode_attention_reference(
        q, k, v, kv_lens, block_table=block_table, page_size=page_size, scale=scale, keep=keep
    )


def benchmark() -> None:
    """Achieved bytes/s and FLOP/s of page-top-k decode attention (scoring + selection + kernel)."""
    if not torch.cuda.is_available():
        print(
            "sparse_decode_attention benchmark needs CUDA (under TRITON_INTERPRET=1 the kernels only check correctness)"
        )
        return
    from triton.testing import do_bench

    from roofline.simulator.flops import attention_flops, matmul_flops

    torch.manual_seed(0)
    dev, dtype, heads, kv_heads, head_dim, page_size = "cuda", torch.bfloat16, 32, 8, 128, 16
    group, item = heads // kv_heads, torch.finfo(dtype).bits // 8
    print(f"{'batch':>5} {'kv_len':>7} {'budget':>6} {'part':>7} {'us':>9} {'GB/s':>8} {'TFLOP/s':>8}")
    for batch, kv_len, budget in [(1, 131072, 2048), (1, 131072, 8192), (8, 32768, 4096)]:
        q = torch.randn(batch, heads, head_dim, device=dev, dtype=dtype)
        k = torch.randn(batch, kv_heads, kv_len, head_dim, device=dev, dtype=dtype)
        v = torch.randn_like(k)
        kv_lens = torch.full((batch,), kv_len, device=dev, dtype=torch.int32)
        kmin, kmax = page_metadata(k, page_size, kv_lens)
        pages, counts = select_pages(page_scores(q, kmin, kmax, kv_lens, page_size), budget, page_size)
        tokens = int(counts.sum()) * page_size  # (batch, kv_head) pairs x selected tokens
        kv_bytes = 2 * tokens * head_dim * item
        meta_bytes = 2 * kmin.numel() * item
        attn_flops = attention_flops(tokens * group, 1, head_dim, head_dim)
        score_flops = 2 * batch * kv_heads * matmul_flops(group, kmin.shape[2], head_dim)
        runs = {
            "kernel": (functools.partial(attend_selected_pages, q, k, v, kv_lens, pages, counts, page_size,
                                         check_values=False), kv_bytes, attn_flops),
            "all": (functools.partial(sparse_decode_attention, q, k, v, kv_lens, page_size, budget,
                                      metadata=(kmin, kmax), check_values=False),
                    kv_bytes + meta_bytes, attn_flops + score_flops),
        }  # fmt: skip
        for part, (fn, nbytes, flops) in runs.items():
            seconds = do_bench(fn) * 1e-3
            print(
                f"{batch:>5} {kv_len:>7} {budget:>6} {part:>7} {seconds * 1e6:>9.1f} "
                f"{nbytes / seconds / 1e9:>8.0f} {flops / seconds / 1e12:>8.2f}"
            )
        del k, v, runs


if __name__ == "__main__":
    benchmark()
