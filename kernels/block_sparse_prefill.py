"""Causal block-sparse prefill attention: FlashAttention-2's forward pass over only the (query
block, key block) tiles a block mask keeps — the kernel behind MInference-style sparse prefill
(Jiang et al., arXiv:2407.02490), whose patterns (A-shape, vertical-slash, block-sparse) all reduce
to a per-head set of key blocks for each query block.

q [batch, heads, seq, head_dim], k/v [batch, kv_heads, seq, head_dim] (GQA: kv_heads divides
heads), block_mask [batch, heads, n_blocks, n_blocks] bool with n_blocks = ceil(seq / block_size)
and BLOCK_M = BLOCK_N = block_size. Tiles above the diagonal are dropped (causal); inside the
diagonal tile the causal mask is applied per element. The mask is compressed in torch to a list
of active key blocks per query block (MInference's block_count / block_offset), so the kernel
loops only over active tiles and never reads a skipped tile. A query row whose every tile is masked
gets a zero output.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from roofline.kernels.decode_common import FLOAT_DTYPES, LOG2E, check_devices


@triton.jit
def block_sparse_prefill_kernel(
    q_ptr, k_ptr, v_ptr, o_ptr, block_idx_ptr, block_cnt_ptr,
    qk_scale, seq_len,
    stride_qb, stride_qh, stride_qs, stride_qd,
    stride_kb, stride_kh, stride_ks, stride_kd,
    stride_vb, stride_vh, stride_vs, stride_vd,
    stride_ob, stride_oh, stride_os, stride_od,
    stride_ib, stride_ih, stride_im, stride_in,
    stride_cb, stride_ch, stride_cm,
    GROUP: tl.constexpr, HEAD_DIM: tl.constexpr, BLOCK: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    """Program (query block, head, batch): online softmax over the active key blocks listed for it."""
    m_blk = tl.program_id(0)
    h = tl.program_id(1)
    b = tl.program_id(2).to(tl.int64)
    kvh = h // GROUP
    offs_m = m_blk * BLOCK + tl.arange(0, BLOCK)
    offs_blk = tl.arange(0, BLOCK)
    offs_d = tl.arange(0, BLOCK_D)
    mask_m = offs_m < seq_len
    mask_d = offs_d < HEAD_DIM
    q = tl.load(
        q_ptr + b * stride_qb + h * stride_qh + offs_m[:, None] * stride_qs + offs_d[None, :] * stride_qd,
        mask=mask_m[:, None] & mask_d[None, :],
        other=0.0,
    )
    k_base = k_ptr + b * stride_kb + kvh * stride_kh
    v_base = v_ptr + b * stride_vb + kvh * stride_vh
    idx_base = block_idx_ptr + b * stride_ib + h * stride_ih + m_blk * stride_im
    count = tl.load(block_cnt_ptr + b * stride_cb + h * stride_ch + m_blk * stride_cm)

    m_i = tl.full([BLOCK], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK], tl.float32)
    acc = tl.zeros([BLOCK, BLOCK_D], tl.float32)
    for i in range(0, count):
        n_blk = tl.load(idx_base + i * stride_in)
        offs_n = n_blk * BLOCK + offs_blk
        mask_n = offs_n < seq_len
        kv_mask = mask_n[:, None] & mask_d[None, :]
        k = tl.load(
            k_base + offs_n[:, None] * stride_ks + offs_d[None, :] * stride_kd, mask=kv_mask, other=0.0
        )
        s = tl.dot(q, tl.trans(k), input_precision="ieee") * qk_scale
        # Only the diagonal tile has keys after queries; the check costs a compare per element.
        s = tl.where((offs_m[:, None] >= offs_n[None, :]) & mask_n[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_new = tl.where(m_new == float("-inf"), 0.0, m_new)
        alpha = tl.exp2(m_i - m_new)
        p = tl.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(
            v_base + offs_n[:, None] * stride_vs + offs_d[None, :] * stride_vd, mask=kv_mask, other=0.0
        )
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision="ieee")
        m_i = m_new

    out = acc / tl.where(l_i > 0, l_i, 1.0)[:, None]
    tl.store(
        o_ptr + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_os + offs_d[None, :] * stride_od,
        out.to(o_ptr.dtype.element_ty),
        mask=mask_m[:, None] & mask_d[None, :],
    )


def active_blocks(block_mask: torch.Tensor):
    """Compress a block mask to (indices, counts): the causal active key blocks of each query block
    in ascending order (int32 [batch, heads, n_blocks, n_blocks], valid up to counts) and their number
    (int32 [batch, heads, n_blocks]). Done in torch: a stable sort puts active blocks first."""
    n_blocks = block_mask.shape[-1]
    causal = torch.ones(n_blocks, n_blocks, dtype=torch.bool, device=block_mask.device).tril()
    active = block_mask & causal
    order = torch.sort((~active).to(torch.int8), dim=-1, stable=True).indices
    return order.to(torch.int32), active.sum(-1).to(torch.int32)


def check_prefill_inputs(q, k, v, block_mask, block_size: int) -> None:
    """Shapes, dtypes and block size of block_sparse_prefill's inputs (ValueError on any mismatch)."""
    if q.dim() != 4 or k.dim() != 4 or v.shape != k.shape:
        raise ValueError(
            "q must be [batch, heads, seq, head_dim] and k, v both [batch, kv_heads, seq, head_dim], "
            f"got q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
        )
    batch, heads, seq, head_dim = q.shape
    if k.shape[0] != batch or k.shape[2] != seq or k.shape[3] != head_dim:
        raise ValueError(f"k/v {tuple(k.shape)} must share batch, seq and head_dim with q {tuple(q.shape)}")
    if k.shape[1] == 0 or heads % k.shape[1]:
        raise ValueError(f"query heads ({heads}) must be a multiple of kv heads ({k.shape[1]})")
    if q.dtype not in FLOAT_DTYPES or k.dtype != q.dtype or v.dtype != q.dtype:
        raise ValueError(
            f"q, k, v must share one of float16/bfloat16/float32, got {q.dtype}, {k.dtype}, {v.dtype}"
        )
    if block_size < 16 or block_size & (block_size - 1):
        raise ValueError(f"block_size must be a power of two >= 16 (a tl.dot tile), got {block_size}")
    n_blocks = triton.cdiv(seq, block_size)
    if block_mask.dtype != torch.bool or tuple(block_mask.shape) != (batch, heads, n_blocks, n_blocks):
        raise ValueError(
            f"block_mask must be bool [batch={batch}, heads={heads}, {n_blocks}, {n_blocks}] "
            f"(ceil(seq / block_size) blocks), got {block_mask.dtype} {tuple(block_mask.shape)}"
        )


def block_sparse_prefill(q, k, v, block_mask, block_size: int, *, scale=None, blocks=None):
    """Causal attention of every query over the keys of its active blocks; returns q's shape/dtype.

    ``blocks`` is ``active_blocks(block_mask)`` computed beforehand (to keep the torch sort out of a
    timed loop, as a method builds its index once per layer); computed here when not given.
    """
    check_prefill_inputs(q, k, v, block_mask, block_size)
    check_devices(block_sparse_prefill_kernel, q=q, k=k, v=v, block_mask=block_mask)
    batch, heads, seq, head_dim = q.shape
    block_idx, block_cnt = active_blocks(block_mask) if blocks is None else blocks
    if block_idx.shape != block_mask.shape or block_cnt.shape != block_mask.shape[:3]:
        raise ValueError(
            f"blocks must be (indices {tuple(block_mask.shape)}, counts {tuple(block_mask.shape[:3])}) "
            f"from active_blocks(block_mask), got {tuple(block_idx.shape)} and {tuple(block_cnt.shape)}"
        )
    scale = head_dim**-0.5 if scale is None else scale
    out = torch.empty_like(q)
    grid = (triton.cdiv(seq, block_size), heads, batch)
    block_sparse_prefill_kernel[grid](
        q, k, v, out, block_idx, block_cnt,
        scale * LOG2E, seq,
        *q.stride(), *k.stride(), *v.stride(), *out.stride(), *block_idx.stride(), *block_cnt.stride(),
        GROUP=heads // k.shape[1], HEAD_DIM=head_dim, BLOCK=block_size,
        BLOCK_D=max(16, triton.next_power_of_2(head_dim)),
    )  # fmt: skip
    return out


def random_block_mask(batch: int, heads: int, seq: int, block_size: int, density: float, *, device=None,
                      generator=None) -> torch.Tensor:  # fmt: skip
    """A bool [batch, heads, n_blocks, n_blocks] mask keeping each tile with probability ``density``
    and always the diagonal tile (so no query row is empty); a stand-in for a method's pattern."""
    n_blocks = triton.cdiv(seq, block_size)
    mask = torch.rand(batch, heads, n_blocks, n_blocks, device=device, generator=generator) < density
    return mask | torch.eye(n_blocks, dtype=torch.bool, device=device)


def token_mask(block_mask: torch.Tensor, block_size: int, seq: int) -> torch.Tensor:
    """[batch, heads, seq, seq] bool: the block mask expanded to tokens, AND the causal mask."""
    tokens = block_mask.repeat_interleave(block_size, -2).repeat_interleave(block_size, -1)[..., :seq, :seq]
    return tokens & torch.ones(seq, seq, dtype=torch.bool, device=block_mask.device).tril()


def block_sparse_prefill_reference(q, k, v, block_mask, block_size: int, *, scale=None):
    """Dense torch attention in q's dtype under the token mask; fully masked rows give zeros."""
    batch, heads, seq, head_dim = q.shape
    group = heads // k.shape[1]
    k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)
    scale = head_dim**-0.5 if scale is None else scale
    scores = (q @ k.transpose(-1, -2)) * scale
    scores = scores.masked_fill(~token_mask(block_mask, block_size, seq), float("-inf"))
    return torch.softmax(scores, dim=-1).nan_to_num(0.0) @ v


def causal_pairs(block_mask: torch.Tensor, block_size: int, seq: int) -> int:
    """(query, key) pairs the kernel computes, summed over batch and heads, in closed form: an active
    tile below the diagonal holds rows x block_size pairs, a diagonal tile rows (rows + 1) / 2, where
    rows = min(block_size, seq - first row) (only the last block is short)."""
    n_blocks = block_mask.shape[-1]
    rows = (seq - torch.arange(n_blocks, device=block_mask.device) * block_size).clamp(max=block_size)
    below = torch.ones(n_blocks, n_blocks, dtype=torch.bool, device=block_mask.device).tril(-1)
    off_diagonal = (block_mask & below).sum(dim=(0, 1, 3))  # active tiles per query block
    diagonal = block_mask.diagonal(dim1=-2, dim2=-1).sum(dim=(0, 1))
    return int((off_diagonal * rows * block_size + diagonal * rows * (rows + 1) // 2).sum())


def benchmark() -> None:
    """Achieved FLOP/s of block-sparse prefill at several densities (pairs counted from the mask,
    FLOPs with the simulator's attention_flops; bytes are each active tile's K/V read once)."""
    if not torch.cuda.is_available():
        print(
            "block_sparse_prefill benchmark needs CUDA (under TRITON_INTERPRET=1 the kernels only check correctness)"
        )
        return
    from triton.testing import do_bench

    from roofline.simulator.flops import attention_flops

    torch.manual_seed(0)
    dev, dtype, batch, heads, kv_heads, head_dim, block = "cuda", torch.bfloat16, 1, 32, 8, 128, 64
    print(f"{'seq':>6} {'density':>7} {'ms':>9} {'TFLOP/s':>8} {'GB/s':>8}")
    for seq in (16384, 65536):
        q = torch.randn(batch, heads, seq, head_dim, device=dev, dtype=dtype)
        k = torch.randn(batch, kv_heads, seq, head_dim, device=dev, dtype=dtype)
        v = torch.randn_like(k)
        for density in (1.0, 0.3, 0.1):
            mask = random_block_mask(batch, heads, seq, block, density, device=dev)
            flops = attention_flops(causal_pairs(mask, block, seq), 1, head_dim, head_dim)
            blocks = active_blocks(mask)
            nbytes = (
                (2 * int(blocks[1].sum()) * block + 2 * batch * heads * seq) * head_dim * q.element_size()
            )
            seconds = (
                do_bench(functools.partial(block_sparse_prefill, q, k, v, mask, block, blocks=blocks)) * 1e-3
            )
            print(
                f"{seq:>6} {density:>7.2f} {seconds * 1e3:>9.3f} "
                f"{flops / seconds / 1e12:>8.1f} {nbytes / seconds / 1e9:>8.0f}"
            )


if __name__ == "__main__":
    benchmark()
