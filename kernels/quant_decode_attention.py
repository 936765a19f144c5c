"""Flash-decoding attention over an int8 or int4 KV cache, dequantised inside the kernel.

Each KV token's head_dim is cut into groups of ``group_size`` channels with one scale and one zero
point per group (asymmetric min-max quantisation, the per-group scheme of KIVI, arXiv:2402.02750,
applied along head_dim for both K and V): ``x ~ code * scale + zero`` with ``zero`` the group
minimum and codes in [0, 2^bits - 1]. int8 codes take one uint8 each; int4 codes are packed two
per uint8 (channel 2i in the low nibble, 2i+1 in the high nibble). Codes, scales and zeros share
the KV layout of ``decode_attention`` (contiguous or paged), with last dims head_dim (int8),
head_dim / 2 (int4) and head_dim / group_size (scales, zeros).

The split-K structure, GQA grouping and the combine kernel are those of ``decode_attention``;
only the first-stage kernel differs (it dequantises each tile before the dot products).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
import triton
import triton.language as tl

from roofline.kernels.decode_attention import decode_attention_reference
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
    load_query_group,
    online_softmax_tile,
    split_range,
    store_partial,
)


class QuantizedKV(NamedTuple):
    """A quantised K or V cache: packed uint8 codes and per-group float scale and zero point."""

    packed: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor


@triton.jit
def dequant_tile(codes_ptr, scale_ptr, zero_ptr, outer, kvh, slot, offs_d, mask,
                 stride_c0, stride_c1, stride_c2, stride_c3, stride_s0, stride_s1, stride_s2, stride_s3,
                 BITS: tl.constexpr, GROUP_SIZE: tl.constexpr):  # fmt: skip
    """[BLOCK_N, BLOCK_D] fp32 tile: code * scale + zero of the group each channel belongs to."""
    row = outer[:, None] * stride_c0 + kvh * stride_c1 + slot[:, None] * stride_c2
    if BITS == 8:
        code = tl.load(codes_ptr + row + offs_d[None, :] * stride_c3, mask=mask, other=0).to(tl.float32)
    else:
        # Each byte is loaded for both of its channels; the second load hits in L1.
        byte = tl.load(codes_ptr + row + (offs_d[None, :] // 2) * stride_c3, mask=mask, other=0).to(tl.int32)
        code = ((byte >> ((offs_d[None, :] % 2) * 4)) & 0xF).to(tl.float32)
    group = outer[:, None] * stride_s0 + kvh * stride_s1 + slot[:, None] * stride_s2
    group += (offs_d[None, :] // GROUP_SIZE) * stride_s3
    scale = tl.load(scale_ptr + group, mask=mask, other=0.0).to(tl.float32)
    zero = tl.load(zero_ptr + group, mask=mask, other=0.0).to(tl.float32)
    return code * scale + zero


@triton.jit
def quant_decode_attention_kernel(
    q_ptr, kc_ptr, ks_ptr, kz_ptr, vc_ptr, vs_ptr, vz_ptr, kv_lens_ptr, block_table_ptr,
    o_part_ptr, lse_part_ptr,
    qk_scale, capacity,
    stride_qb, stride_qh, stride_qd,
    stride_kc0, stride_kc1, stride_kc2, stride_kc3,
    stride_ks0, stride_ks1, stride_ks2, stride_ks3,
    stride_vc0, stride_vc1, stride_vc2, stride_vc3,
    stride_vs0, stride_vs1, stride_vs2, stride_vs3,
    stride_bt_b,
    stride_ob, stride_oh, stride_os, stride_od,
    stride_lb, stride_lh, stride_ls,
    GROUP: tl.constexpr, HEAD_DIM: tl.constexpr, NUM_SPLITS: tl.constexpr,
    BITS: tl.constexpr, GROUP_SIZE: tl.constexpr,
    PAGED: tl.constexpr, PAGE_SIZE: tl.constexpr,
    BLOCK_G: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    """Program (b, kv_head, split): decode_attention_kernel's online softmax over dequantised tiles."""
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
        k = dequant_tile(kc_ptr, ks_ptr, kz_ptr, outer, kvh, slot, offs_d, kv_mask,
                         stride_kc0, stride_kc1, stride_kc2, stride_kc3,
                         stride_ks0, stride_ks1, stride_ks2, stride_ks3, BITS, GROUP_SIZE)  # fmt: skip
        v = dequant_tile(vc_ptr, vs_ptr, vz_ptr, outer, kvh, slot, offs_d, kv_mask,
                         stride_vc0, stride_vc1, stride_vc2, stride_vc3,
                         stride_vs0, stride_vs1, stride_vs2, stride_vs3, BITS, GROUP_SIZE)  # fmt: skip
        m_i, l_i, acc = online_softmax_tile(q, k, v, mask_n, m_i, l_i, acc, qk_scale)

    store_partial(o_part_ptr, lse_part_ptr, acc, m_i, l_i, b, heads, split, offs_d, mask_g, mask_d,
                  stride_ob, stride_oh, stride_os, stride_od, stride_lb, stride_lh, stride_ls)  # fmt: skip


def quantize_kv(x: torch.Tensor, bits: int, group_size: int, *, scale_dtype=torch.float32) -> QuantizedKV:
    """Asymmetric min-max quantisation of x [..., head_dim] in groups of ``group_size`` channels.

    Returns (packed uint8 [..., head_dim] for 8 bits or [..., head_dim / 2] for 4 bits, scale and
    zero [..., head_dim / group_size] in ``scale_dtype``). Codes are rounded against the stored
    (dtype-rounded) scale and zero, so |x - dequant| <= scale / 2 up to that rounding.
    """
    if bits not in (4, 8):
        raise ValueError(f"bits must be 4 or 8, got {bits}")
    head_dim = x.shape[-1]
    if group_size < 1 or head_dim % group_size:
        raise ValueError(f"group_size must divide head_dim={head_dim}, got {group_size}")
    if bits == 4 and head_dim % 2:
        raise ValueError(f"4-bit codes pack two channels per byte: head_dim must be even, got {head_dim}")
    levels = 2**bits - 1
    groups = x.float().unflatten(-1, (head_dim // group_size, group_size))
    lo, hi = groups.amin(-1), groups.amax(-1)
    zero = lo.to(scale_dtype)
    scale = ((hi - zero.float()) / levels).to(scale_dtype)
    step = scale.float().clamp_min(torch.finfo(torch.float32).tiny)[..., None]
    codes = torch.round((groups - zero.float()[..., None]) / step).clamp(0, levels).to(torch.uint8)
    codes = codes.flatten(-2)
    if bits == 4:
        codes = codes[..., 0::2] | (codes[..., 1::2] << 4)
    return QuantizedKV(codes.contiguous(), scale, zero)


def dequantize_kv(kv: QuantizedKV, bits: int, dtype=torch.float32) -> torch.Tensor:
    """The torch dequantisation reference: code * scale + zero in fp32, then cast to ``dtype``."""
    packed, scale, zero = kv
    codes = torch.stack([packed & 0xF, packed >> 4], dim=-1).flatten(-2) if bits == 4 else packed
    groups = codes.float().unflatten(-1, (scale.shape[-1], -1))
    return (groups * scale.float()[..., None] + zero.float()[..., None]).flatten(-2).to(dtype)


def check_quantized(name: str, kv, bits: int, head_dim: int) -> int:
    """Check one quantised cache against head_dim and bits; return its group size."""
    packed, scale, zero = kv
    if bits not in (4, 8) or (bits == 4 and head_dim % 2):
        raise ValueError(f"bits must be 8, or 4 with an even head_dim; got {bits} with head_dim {head_dim}")
    width = head_dim if bits == 8 else head_dim // 2
    if packed.dtype != torch.uint8 or packed.dim() != 4 or packed.shape[3] != width:
        raise ValueError(
            f"{name} codes must be uint8 [..., {width}] for {bits}-bit codes of head_dim {head_dim}, "
            f"got {packed.dtype} {tuple(packed.shape)}"
        )
    groups = scale.shape[-1] if scale.dim() == 4 else 0
    if scale.shape[:3] != packed.shape[:3] or groups < 1 or head_dim % groups:
        raise ValueError(
            f"{name} scale must be {tuple(packed.shape[:3])} + (head_dim / group_size,), got {tuple(scale.shape)}"
        )
    if zero.shape != scale.shape or zero.stride() != scale.stride() or not scale.is_floating_point():
        raise ValueError(f"{name} zero must be a float tensor laid out like its scale {tuple(scale.shape)}")
    return head_dim // groups


def quant_decode_attention(
    q, k: QuantizedKV, v: QuantizedKV, kv_lens, *, bits, block_table=None, page_size=None, num_splits=None,
    scale=None, check_values=True,
):  # fmt: skip
    """decode_attention over quantised K and V, each as returned by ``quantize_kv(x, bits, group_size)``.

    q [batch, heads, head_dim]; codes, scales and zeros contiguous [batch, kv_heads, max_len, *] or
    paged pools [num_pages, kv_heads, page_size, *] with ``block_table`` and ``page_size``.
    ``scale`` is the softmax scale (default head_dim**-0.5). Returns [batch, heads, head_dim].
    """
    for name, kv in (("k", k), ("v", v)):
        if not isinstance(kv, tuple) or len(kv) != 3:
            raise ValueError(f"{name} must be a (packed, scale, zero) tuple from quantize_kv")
    k, v = QuantizedKV(*k), QuantizedKV(*v)
    kv_heads, capacity = check_decode_inputs(q, k.packed.shape, kv_lens, block_table, page_size)
    batch, heads, head_dim = q.shape
    group_size = check_quantized("k", k, bits, head_dim)
    if check_quantized("v", v, bits, head_dim) != group_size or v.packed.shape != k.packed.shape:
        raise ValueError("k and v must be quantised alike (same shapes and group_size)")
    tensors = dict(zip(("k_codes", "k_scale", "k_zero", "v_codes", "v_scale", "v_zero"), (*k, *v)))
    device = check_devices(
        quant_decode_attention_kernel, q=q, kv_lens=kv_lens, block_table=block_table, **tensors
    )
    if check_values:
        check_kv_values(kv_lens, block_table, page_size, capacity, k.packed.shape[0])
    group = heads // kv_heads
    num_splits = num_splits or default_num_splits(batch * kv_heads, capacity, device)
    scale = head_dim**-0.5 if scale is None else scale
    o_part = torch.empty(batch, heads, num_splits, head_dim, device=device, dtype=torch.float32)
    lse_part = torch.empty(batch, heads, num_splits, device=device, dtype=torch.float32)
    block_g, block_d = block_sizes(group, head_dim)
    paged = block_table is not None
    quant_decode_attention_kernel[(batch, kv_heads, num_splits)](
        q, k.packed, k.scale, k.zero, v.packed, v.scale, v.zero, kv_lens,
        block_table if paged else kv_lens, o_part, lse_part,
        scale * LOG2E, capacity,
        *q.stride(), *k.packed.stride(), *k.scale.stride(), *v.packed.stride(), *v.scale.stride(),
        block_table.stride(0) if paged else 0,
        *o_part.stride(), *lse_part.stride(),
        GROUP=group, HEAD_DIM=head_dim, NUM_SPLITS=num_splits, BITS=bits, GROUP_SIZE=group_size,
        PAGED=paged, PAGE_SIZE=page_size if paged else 1,
        BLOCK_G=block_g, BLOCK_N=BLOCK_N, BLOCK_D=block_d,
    )  # fmt: skip
    return combine_splits(o_part, lse_part, torch.empty_like(q))


def quant_decode_attention_reference(q, k: QuantizedKV, v: QuantizedKV, kv_lens, *, bits, **kwargs):
    """Torch reference: dequantise K and V to q's dtype, then dense decode attention."""
    return decode_attention_reference(
        q, dequantize_kv(k, bits, q.dtype), dequantize_kv(v, bits, q.dtype), kv_lens, **kwargs
    )


def benchmark() -> None:
    """Achieved bytes/s (of codes + scales + zeros read) and FLOP/s of int8/int4 decode attention."""
    if not torch.cuda.is_available():
        print(
            "quant_decode_attention benchmark needs CUDA (under TRITON_INTERPRET=1 the kernels only check correctness)"
        )
        return
    from triton.testing import do_bench

    from roofline.simulator.flops import attention_flops

    torch.manual_seed(0)
    dev, dtype, heads, kv_heads, head_dim, group_size = "cuda", torch.bfloat16, 32, 8, 128, 32
    print(f"{'bits':>4} {'batch':>5} {'kv_len':>7} {'us':>9} {'GB/s':>8} {'TFLOP/s':>8}")
    for batch, kv_len in [(1, 131072), (8, 32768), (64, 4096)]:
        q = torch.randn(batch, heads, head_dim, device=dev, dtype=dtype)
        kv_lens = torch.full((batch,), kv_len, device=dev, dtype=torch.int32)
        x = torch.randn(batch, kv_heads, kv_len, head_dim, device=dev, dtype=dtype)
        flops = attention_flops(batch * kv_len, heads, head_dim, head_dim)
        for bits in (8, 4):
            k = quantize_kv(x, bits, group_size, scale_dtype=torch.float16)
            v = quantize_kv(x.flip(2), bits, group_size, scale_dtype=torch.float16)
            kv_bytes = 2 * sum(t.numel() * t.element_size() for t in k) + 2 * q.numel() * q.element_size()
            fn = functools.partial(quant_decode_attention, q, k, v, kv_lens, bits=bits, check_values=False)
            seconds = do_bench(fn) * 1e-3
            print(
                f"{bits:>4} {batch:>5} {kv_len:>7} {seconds * 1e6:>9.1f} "
                f"{kv_bytes / seconds / 1e9:>8.0f} {flops / seconds / 1e12:>8.2f}"
            )
            del k, v
        del x


if __name__ == "__main__":
    benchmark()
