"""The building blocks the split-K decode-attention kernels share (flash-decoding, Dao et al. 2023):
the device functions that find a split's KV range, load a query group and a KV tile, run one tile
of the online softmax and store a split's partial output; the kernel that combines the splits; and
the host-side input checks, split count and block sizes.

`decode_attention`, `quant_decode_attention` and `sparse_decode_attention` build their kernels
from these; each kernel, its wrapper, reference and benchmark stay in its own module.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
INT_DTYPES = (torch.int32, torch.int64)
BLOCK_N = 64  # KV tokens per inner-loop tile
LOG2E = 1.4426950408889634  # the kernels use exp2, so scores are scaled by log2(e)


@triton.jit
def kv_rows(block_table_ptr, stride_bt_b, b, pos, mask, PAGED: tl.constexpr, PAGE_SIZE: tl.constexpr):
    """(dim-0 index, dim-2 index) of KV positions ``pos`` of sequence ``b``: (b, pos) in a contiguous
    cache, (page id, slot in page) in a paged pool. Dim 0 is int64: page ids x page strides overflow
    int32 in large pools."""
    if PAGED:
        page = tl.load(block_table_ptr + b * stride_bt_b + pos // PAGE_SIZE, mask=mask, other=0)
        outer = page.to(tl.int64)
        slot = pos % PAGE_SIZE
    else:
        outer = (pos * 0 + b).to(tl.int64)
        slot = pos
    return outer, slot


@triton.jit
def split_range(kv_lens_ptr, b, split, capacity, NUM_SPLITS: tl.constexpr):
    """[start, end) of the KV positions this split of sequence b covers (empty past its length)."""
    kv_len = tl.minimum(tl.load(kv_lens_ptr + b), capacity)
    split_len = tl.cdiv(kv_len, NUM_SPLITS)
    start = split * split_len
    return start, tl.minimum(start + split_len, kv_len)


@triton.jit
def load_query_group(q_ptr, b, kvh, stride_qb, stride_qh, stride_qd,
                     GROUP: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK_G: tl.constexpr, BLOCK_D: tl.constexpr):  # fmt: skip
    """The GROUP query heads of KV head kvh for sequence b: (heads, offs_d, mask_g, mask_d, q)."""
    offs_g = tl.arange(0, BLOCK_G)
    offs_d = tl.arange(0, BLOCK_D)
    heads = kvh * GROUP + offs_g
    mask_g = offs_g < GROUP
    mask_d = offs_d < HEAD_DIM
    q = tl.load(
        q_ptr + b * stride_qb + heads[:, None] * stride_qh + offs_d[None, :] * stride_qd,
        mask=mask_g[:, None] & mask_d[None, :],
        other=0.0,
    )
    return heads, offs_d, mask_g, mask_d, q


@triton.jit
def load_kv_tile(ptr, outer, kvh, slot, offs_d, kv_mask, stride0, stride1, stride2, stride3):
    """A [tokens, head_dim] tile of K or V at the rows `kv_rows` returned (masked lanes read 0)."""
    return tl.load(
        ptr + outer[:, None] * stride0 + kvh * stride1 + slot[:, None] * stride2 + offs_d[None, :] * stride3,
        mask=kv_mask,
        other=0.0,
    )


@triton.jit
def online_softmax_tile(q, k, v, mask_n, m_i, l_i, acc, qk_scale):
    """One KV tile of flash attention's online softmax in the log2 domain (FlashAttention-2,
    arXiv:2307.08691, Alg. 1): scores of the GROUP queries against the tile's keys, running max
    m_i, running denominator l_i and rescaled accumulator; returns the updated (m_i, l_i, acc).
    Masked-out keys score -inf; an all-masked row keeps its max at 0 so exp2 stays finite."""
    s = tl.dot(q, tl.trans(k.to(q.dtype)), input_precision="ieee") * qk_scale
    s = tl.where(mask_n[None, :], s, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(s, 1))
    m_new = tl.where(m_new == float("-inf"), 0.0, m_new)
    alpha = tl.exp2(m_i - m_new)
    p = tl.exp2(s - m_new[:, None])
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None] + tl.dot(p.to(q.dtype), v.to(q.dtype), input_precision="ieee")
    return m_new, l_i, acc


@triton.jit
def store_partial(o_part_ptr, lse_part_ptr, acc, m_i, l_i, b, heads, split, offs_d, mask_g, mask_d,
                  stride_ob, stride_oh, stride_os, stride_od, stride_lb, stride_lh, stride_ls):  # fmt: skip
    """Write one split's normalised output rows and their log2-sum-exp (-inf where nothing was seen)."""
    seen = l_i > 0
    denom = tl.where(seen, l_i, 1.0)
    lse = tl.where(seen, m_i + tl.log2(denom), float("-inf"))
    o_base = o_part_ptr + b * stride_ob + split * stride_os
    tl.store(
        o_base + heads[:, None] * stride_oh + offs_d[None, :] * stride_od,
        acc / denom[:, None],
        mask=mask_g[:, None] & mask_d[None, :],
    )
    tl.store(lse_part_ptr + b * stride_lb + heads * stride_lh + split * stride_ls, lse, mask=mask_g)


@triton.jit
def split_reduce_kernel(
    o_part_ptr, lse_part_ptr, out_ptr,
    stride_ob, stride_oh, stride_os, stride_od,
    stride_lb, stride_lh, stride_ls,
    stride_yb, stride_yh, stride_yd,
    HEAD_DIM: tl.constexpr, NUM_SPLITS: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    """Program (b, head): out = sum_s w_s o_s / sum_s w_s with w_s = 2^(lse_s - max lse); 0 if all empty."""
    b = tl.program_id(0)
    h = tl.program_id(1)
    offs_s = tl.arange(0, BLOCK_S)
    offs_d = tl.arange(0, BLOCK_D)
    mask_s = offs_s < NUM_SPLITS
    mask_d = offs_d < HEAD_DIM
    lse = tl.load(
        lse_part_ptr + b * stride_lb + h * stride_lh + offs_s * stride_ls, mask=mask_s, other=float("-inf")
    )
    m = tl.max(lse, 0)
    m = tl.where(m == float("-inf"), 0.0, m)
    w = tl.exp2(lse - m)
    o = tl.load(
        o_part_ptr
        + b * stride_ob
        + h * stride_oh
        + offs_s[:, None] * stride_os
        + offs_d[None, :] * stride_od,
        mask=mask_s[:, None] & mask_d[None, :],
        other=0.0,
    )
    num = tl.sum(w[:, None] * o, 0)
    den = tl.sum(w, 0)
    out = num / tl.where(den > 0, den, 1.0)
    tl.store(
        out_ptr + b * stride_yb + h * stride_yh + offs_d * stride_yd,
        out.to(out_ptr.dtype.element_ty),
        mask=mask_d,
    )


def is_interpreted(kernel) -> bool:
    """True when ``kernel`` was built by Triton's CPU interpreter (TRITON_INTERPRET=1 at import)."""
    return not isinstance(kernel, triton.runtime.JITFunction)


def check_devices(kernel, **tensors) -> torch.device:
    """One device for all tensors, and one the kernel can run on: CUDA, or any under the interpreter."""
    devices = {name: t.device for name, t in tensors.items() if t is not None}
    if len(set(devices.values())) > 1:
        raise ValueError(f"tensors must be on one device, got {devices}")
    device = next(iter(devices.values()))
    if device.type != "cuda" and not is_interpreted(kernel):
        raise ValueError(
            f"tensors are on {device}: Triton kernels need CUDA tensors "
            "(set TRITON_INTERPRET=1 before importing triton to run them on CPU)"
        )
    return device


def check_decode_inputs(q, k_shape, kv_lens, block_table, page_size) -> tuple[int, int]:
    """Check q [batch, heads, head_dim], the KV layout and kv_lens; return (kv_heads, capacity), the
    capacity being the most KV tokens a sequence can hold (max_len, or max_pages * page_size)."""
    if q.dim() != 3:
        raise ValueError(f"q must be [batch, heads, head_dim], got shape {tuple(q.shape)}")
    if q.dtype not in FLOAT_DTYPES:
        raise ValueError(f"q must be float16, bfloat16 or float32, got {q.dtype}")
    batch, heads, _ = q.shape
    if len(k_shape) != 4:
        raise ValueError(
            "k and v must be [batch, kv_heads, max_len, head_dim] (contiguous) or "
            f"[num_pages, kv_heads, page_size, head_dim] (paged), got shape {tuple(k_shape)}"
        )
    kv_heads = k_shape[1]
    if kv_heads == 0 or heads % kv_heads:
        raise ValueError(f"query heads ({heads}) must be a multiple of kv heads ({kv_heads})")
    if kv_lens.dim() != 1 or kv_lens.shape[0] != batch or kv_lens.dtype not in INT_DTYPES:
        raise ValueError(
            f"kv_lens must be a 1-D int32/int64 tensor of length batch={batch}, "
            f"got {kv_lens.dtype} of shape {tuple(kv_lens.shape)}"
        )
    if block_table is None:
        if page_size is not None:
            raise ValueError("page_size is only used with a block_table (paged KV)")
        if k_shape[0] != batch:
            raise ValueError(f"contiguous k/v must have batch={batch} in dim 0, got shape {tuple(k_shape)}")
        return kv_heads, k_shape[2]
    if page_size is None or page_size < 1:
        raise ValueError(f"paged KV needs a positive page_size, got {page_size}")
    if block_table.dim() != 2 or block_table.shape[0] != batch or block_table.dtype not in INT_DTYPES:
        raise ValueError(
            f"block_table must be a 2-D int32/int64 tensor [batch={batch}, max_pages], "
            f"got {block_table.dtype} of shape {tuple(block_table.shape)}"
        )
    if k_shape[2] != page_size:
        raise ValueError(
            f"paged k/v must be [num_pages, kv_heads, page_size={page_size}, head_dim], got {tuple(k_shape)}"
        )
    return kv_heads, block_table.shape[1] * page_size


def check_kv_values(kv_lens, block_table, page_size, capacity: int, num_pages: int) -> None:
    """Data-dependent checks (one host sync; pass check_values=False to skip them when timing):
    lengths within the cache, block-table entries of used pages within the pool."""
    if kv_lens.numel() and (int(kv_lens.min()) < 0 or int(kv_lens.max()) > capacity):
        raise ValueError(
            f"kv_lens must lie in [0, {capacity}] (the cache holds {capacity} tokens per sequence), "
            f"got min {int(kv_lens.min())} and max {int(kv_lens.max())}"
        )
    if block_table is not None:
        pages_used = (kv_lens + page_size - 1) // page_size
        used = torch.arange(block_table.shape[1], device=block_table.device)[None, :] < pages_used[:, None]
        ids = block_table[used]
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= num_pages):
            raise ValueError(
                f"block_table entries of used pages must lie in [0, {num_pages}), "
                f"got min {int(ids.min())} and max {int(ids.max())}"
            )


def default_num_splits(programs: int, capacity: int, device: torch.device) -> int:
    """Splits so that about two programs run per SM, with at least 4 KV tiles per split and at most
    64 splits (the idea of FlashAttention's num_splits heuristic, simplified). 1 off CUDA."""
    sms = torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 1
    want = triton.cdiv(2 * sms, max(programs, 1))
    most = max(1, triton.cdiv(capacity, 4 * BLOCK_N))
    return max(1, min(want, most, 64))


def block_sizes(group: int, head_dim: int) -> tuple[int, int]:
    """(BLOCK_G, BLOCK_D): powers of two, at least 16 (tl.dot's smallest tile)."""
    return max(16, triton.next_power_of_2(group)), max(16, triton.next_power_of_2(head_dim))


def combine_splits(o_part: torch.Tensor, lse_part: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """Launch split_reduce_kernel: o_part [batch, heads, splits, head_dim] fp32, lse_part
    [batch, heads, splits] fp32 (log2 units) -> out [batch, heads, head_dim]."""
    batch, heads, num_splits, head_dim = o_part.shape
    split_reduce_kernel[(batch, heads)](
        o_part, lse_part, out, *o_part.stride(), *lse_part.stride(), *out.stride(),
        HEAD_DIM=head_dim, NUM_SPLITS=num_splits,
        BLOCK_S=triton.next_power_of_2(num_splits), BLOCK_D=max(16, triton.next_power_of_2(head_dim)),
    )  # fmt: skip
    return out
