"""Flash-decoding attention for one decode step (Dao et al., "Flash-Decoding for long-context
inference", 2023): the KV length is split across programs so that a small batch still fills the
GPU; each split writes a partial output and its log-sum-exp, and a second kernel combines them.

Query heads are grouped over their KV head (GQA/MQA): one program loads a KV tile once for all
``heads // kv_heads`` query heads of that KV head. KV lengths vary per sequence. KV is either
contiguous ``[batch, kv_heads, max_len, head_dim]`` or paged: a block table ``[batch, max_pages]``
of page ids into a pool ``[num_pages, kv_heads, page_size, head_dim]``.

The split-combine kernel, the KV addressing, loading and online-softmax helpers and the input
checks live in ``decode_common``, shared with the quantised and page-sparse variants. Timing is
left to ``roofline.profilers``.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from roofline.kernels.decode_common import (
    BLOCK_N,
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
    split_range,
    store_partial,
)


@triton.jit
def decode_attention_kernel(
    q_ptr, k_ptr, v_ptr, kv_lens_ptr, block_table_ptr, o_part_ptr, lse_part_ptr,
    qk_scale, capacity,
    stride_qb, stride_qh, stride_qd,
    stride_k0, stride_k1, stride_k2, stride_k3,
    stride_v0, stride_v1, stride_v2, stride_v3,
    stride_bt_b,
    stride_ob, stride_oh, stride_os, stride_od,
    stride_lb, stride_lh, stride_ls,
    GROUP: tl.constexpr, HEAD_DIM: tl.constexpr, NUM_SPLITS: tl.constexpr,
    PAGED: tl.constexpr, PAGE_SIZE: tl.constexpr,
    BLOCK_G: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    """Program (b, kv_head, split): online softmax of the GROUP query heads over this split's KV
    tokens; writes the normalised partial output and its log2-sum-exp (-inf for an empty split)."""
    b = tl.program_id(0)
    kvh = tl.program_id(1)
    split = tl.program_id(2)
    start, end = split_range(kv_lens_ptr, b, split, capacity, NUM_SPLITS)
    heads, offs_d, mask_g, mask_d, q = load_query_group(
        q_ptr, b, kvh, stride_qb, stride_qh, stride_qd, GROUP, HEAD_DIM, BLOCK_G, BLOCK_D
    )
    offs_n = tl.arange(0, BLOCK_N)
    m_i = tl.full([BLOCK_G], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_G], tl.float32)
    acc = tl.zeros([BLOCK_G, BLOCK_D], tl.float32)
    for n0 in range(start, end, BLOCK_N):
        pos = n0 + offs_n
        mask_n = pos < end
        outer, slot = kv_rows(block_table_ptr, stride_bt_b, b, pos, mask_n, PAGED, PAGE_SIZE)
        kv_mask = mask_n[:, None] & mask_d[None, :]
        k = load_kv_tile(k_ptr, outer, kvh, slot, offs_d, kv_mask, stride_k0, stride_k1, stride_k2, stride_k3)
        v = load_kv_tile(v_ptr, outer, kvh, slot, offs_d, kv_mask, stride_v0, stride_v1, stride_v2, stride_v3)
        m_i, l_i, acc = online_softmax_tile(q, k, v, mask_n, m_i, l_i, acc, qk_scale)

    store_partial(o_part_ptr, lse_part_ptr, acc, m_i, l_i, b, heads, split, offs_d, mask_g, mask_d,
                  stride_ob, stride_oh, stride_os, stride_od, stride_lb, stride_lh, stride_ls)  # fmt: skip


def decode_attention(
    q, k, v, kv_lens, *, block_table=None, page_size=None, num_splits=None, scale=None, check_values=True
):
    """Attention of one new token per sequence over its KV cache.

    q [batch, heads, head_dim]; k, v contiguous [batch, kv_heads, max_len, head_dim] or, with
    ``block_table`` [batch, max_pages] and ``page_size``, a paged pool [num_pages, kv_heads,
    page_size, head_dim]; kv_lens [batch] tokens per sequence (a sequence of 0 tokens gives 0).
    ``scale`` defaults to head_dim**-0.5. Returns [batch, heads, head_dim] in q's dtype.
    """
    kv_heads, capacity = check_decode_inputs(q, k.shape, kv_lens, block_table, page_size)
    if v.shape != k.shape or k.dtype != q.dtype or v.dtype != q.dtype:
        raise ValueError(
            f"k and v must match each other and q's dtype {q.dtype}: got k {k.dtype} {tuple(k.shape)}, "
            f"v {v.dtype} {tuple(v.shape)}"
        )
    batch, heads, head_dim = q.shape
    if k.shape[3] != head_dim:
        raise ValueError(f"k/v head_dim {k.shape[3]} differs from q's {head_dim}")
    device = check_devices(decode_attention_kernel, q=q, k=k, v=v, kv_lens=kv_lens, block_table=block_table)
    if check_values:
        check_kv_values(kv_lens, block_table, page_size, capacity, k.shape[0])
    group = heads // kv_heads
    num_splits = num_splits or default_num_splits(batch * kv_heads, capacity, device)
    scale = head_dim**-0.5 if scale is None else scale
    o_part = torch.empty(batch, heads, num_splits, head_dim, device=device, dtype=torch.float32)
    lse_part = torch.empty(batch, heads, num_splits, device=device, dtype=torch.float32)
    block_g, block_d = block_sizes(group, head_dim)
    paged = block_table is not None
    decode_attention_kernel[(batch, kv_heads, num_splits)](
        q, k, v, kv_lens, block_table if paged else kv_lens, o_part, lse_part,
        scale * LOG2E, capacity,
        *q.stride(), *k.stride(), *v.stride(),
        block_table.stride(0) if paged else 0,
        *o_part.stride(), *lse_part.stride(),
        GROUP=group, HEAD_DIM=head_dim, NUM_SPLITS=num_splits,
        PAGED=paged, PAGE_SIZE=page_size if paged else 1,
        BLOCK_G=block_g, BLOCK_N=BLOCK_N, BLOCK_D=block_d,
    )  # fmt: skip
    return combine_splits(o_part, lse_part, torch.empty_like(q))


def gather_pages(pool: torch.Tensor, block_table: torch.Tensor) -> torch.Tensor:
    """Paged pool [num_pages, kv_heads, page_size, d] -> contiguous [batch, kv_heads, max_pages *
    page_size, d] in block-table order (entries out of range are clamped; they lie past kv_len)."""
    ids = block_table.long().clamp(0, pool.shape[0] - 1)
    pages = pool[ids]  # [batch, max_pages, kv_heads, page_size, d]
    batch, max_pages, kv_heads, page_size, d = pages.shape
    return pages.permute(0, 2, 1, 3, 4).reshape(batch, kv_heads, max_pages * page_size, d)


def decode_attention_reference(q, k, v, kv_lens, *, block_table=None, page_size=None, scale=None, keep=None):
    """Dense torch attention in q's dtype: gather pages, repeat KV heads over their query heads, mask
    positions >= kv_len (and, if given, positions where ``keep`` [batch, kv_heads, len] is False)."""
    if block_table is not None:
        k, v = gather_pages(k, block_table), gather_pages(v, block_table)
    batch, heads, head_dim = q.shape
    group = heads // k.shape[1]
    scale = head_dim**-0.5 if scale is None else scale
    valid = torch.arange(k.shape[2], device=q.device)[None, None, :] < kv_lens[:, None, None]
    if keep is not None:
        valid = valid & keep
    valid = valid.expand(batch, k.shape[1], k.shape[2]).repeat_interleave(group, dim=1)
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scores = torch.einsum("bhd,bhnd->bhn", q, k) * scale
    probs = torch.softmax(scores.masked_fill(~valid, float("-inf")), dim=-1).nan_to_num(0.0)
    return torch.einsum("bhn,bhnd->bhd", probs, v)


def benchmark() -> None:
    """Achieved HBM bandwidth and FLOP/s of decode attention in bf16, contiguous and paged KV."""
    if not torch.cuda.is_available():
        print(
            "decode_attention benchmark needs CUDA (under TRITON_INTERPRET=1 the kernels only check correctness)"
        )
        return
    from triton.testing import do_bench

    from roofline.simulator.flops import attention_flops

    torch.manual_seed(0)
    dev, dtype, heads, kv_heads, head_dim, page_size = "cuda", torch.bfloat16, 32, 8, 128, 16
    print(f"{'layout':>10} {'batch':>5} {'kv_len':>7} {'us':>9} {'GB/s':>8} {'TFLOP/s':>8}")
    for batch, kv_len in [(1, 8192), (1, 131072), (8, 32768), (32, 8192), (64, 4096)]:
        q = torch.randn(batch, heads, head_dim, device=dev, dtype=dtype)
        k = torch.randn(batch, kv_heads, kv_len, head_dim, device=dev, dtype=dtype)
        v = torch.randn_like(k)
        kv_lens = torch.full((batch,), kv_len, device=dev, dtype=torch.int32)
        pages = kv_len // page_size
        to_pool = functools.partial(_to_pool, batch=batch, pages=pages, page_size=page_size)
        block_table = torch.randperm(batch * pages, device=dev, dtype=torch.int32).view(batch, pages)
        layouts = {
            "contiguous": (k, v, {}),
            "paged": (to_pool(k, block_table), to_pool(v, block_table), dict(block_table=block_table, page_size=page_size)),
        }  # fmt: skip
        kv_bytes = 2 * k.numel() * k.element_size() + 2 * q.numel() * q.element_size()
        flops = attention_flops(batch * kv_len, heads, head_dim, head_dim)
        for layout, (kk, vv, kw) in layouts.items():
            fn = functools.partial(decode_attention, q, kk, vv, kv_lens, check_values=False, **kw)
            seconds = do_bench(fn) * 1e-3
            print(
                f"{layout:>10} {batch:>5} {kv_len:>7} {seconds * 1e6:>9.1f} "
                f"{kv_bytes / seconds / 1e9:>8.0f} {flops / seconds / 1e12:>8.2f}"
            )
        del k, v, layouts


def _to_pool(x, block_table, *, batch, pages, page_size):
    """Contiguous [batch, kv_heads, pages * page_size, d] -> pool with page i of sequence b at
    block_table[b, i] (the benchmark's paged layout)."""
    kv_heads, d = x.shape[1], x.shape[3]
    chunks = (
        x.view(batch, kv_heads, pages, page_size, d)
        .permute(0, 2, 1, 3, 4)
        .reshape(-1, kv_heads, page_size, d)
    )
    pool = torch.empty_like(chunks)
    pool[block_table.reshape(-1).long()] = chunks
    return pool


if __name__ == "__main__":
    benchmark()
