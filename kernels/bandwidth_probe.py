"""Achievable-bandwidth probes: copy (y = x) and STREAM triad (a = b + s * c) (McCalpin's STREAM
benchmark), the two kernels the memory-bound efficiency curve of the calibration is fitted to.

Copy moves 2 x nbytes (read + write) and triad 3 x nbytes; triad does 2 FLOP per element (a
multiply-add) in fp32 and rounds once to the output dtype. Timing is left to roofline.profilers.
"""

from __future__ import annotations

import functools

import torch
import triton
import triton.language as tl

from roofline.kernels.decode_common import check_devices

BLOCK_SIZE = 1024  # elements per program


@triton.jit
def copy_kernel(x_ptr, y_ptr, n, BLOCK_SIZE: tl.constexpr):
    """y[i] = x[i] for one BLOCK_SIZE chunk (int64 offsets: probes go past 2^31 bytes)."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask), mask=mask)


@triton.jit
def triad_kernel(a_ptr, b_ptr, c_ptr, s, n, BLOCK_SIZE: tl.constexpr):
    """a[i] = b[i] + s * c[i] for one BLOCK_SIZE chunk, computed in fp32."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK_SIZE + tl.arange(0, BLOCK_SIZE)
    mask = offs < n
    b = tl.load(b_ptr + offs, mask=mask).to(tl.float32)
    c = tl.load(c_ptr + offs, mask=mask).to(tl.float32)
    tl.store(a_ptr + offs, (b + s * c).to(a_ptr.dtype.element_ty), mask=mask)


def _check_contiguous(**tensors) -> None:
    for name, t in tensors.items():
        if not t.is_contiguous():
            raise ValueError(
                f"{name} must be contiguous (the probes stream flat memory), got strides {t.stride()}"
            )


def copy(x: torch.Tensor) -> torch.Tensor:
    """A new tensor equal to x (any dtype), written by copy_kernel."""
    _check_contiguous(x=x)
    check_devices(copy_kernel, x=x)
    y = torch.empty_like(x)
    n = x.numel()
    if n:
        copy_kernel[(triton.cdiv(n, BLOCK_SIZE),)](x, y, n, BLOCK_SIZE=BLOCK_SIZE)
    return y


def triad(b: torch.Tensor, c: torch.Tensor, s: float) -> torch.Tensor:
    """a = b + s * c for floating tensors of one shape and dtype, written by triad_kernel."""
    if b.shape != c.shape or b.dtype != c.dtype:
        raise ValueError(
            f"b and c must share shape and dtype, got {b.dtype} {tuple(b.shape)} and {c.dtype} {tuple(c.shape)}"
        )
    if not b.is_floating_point():
        raise ValueError(f"triad needs floating tensors, got {b.dtype}")
    _check_contiguous(b=b, c=c)
    check_devices(triad_kernel, b=b, c=c)
    a = torch.empty_like(b)
    n = b.numel()
    if n:
        triad_kernel[(triton.cdiv(n, BLOCK_SIZE),)](a, b, c, float(s), n, BLOCK_SIZE=BLOCK_SIZE)
    return a


def copy_reference(x: torch.Tensor) -> torch.Tensor:
    """Torch reference for copy."""
    return x.clone()


def triad_reference(b: torch.Tensor, c: torch.Tensor, s: float) -> torch.Tensor:
    """Torch reference for triad: fp32 multiply-add, one rounding to the input dtype."""
    return (b.float() + s * c.float()).to(b.dtype)


def benchmark() -> None:
    """Achieved bytes/s of copy and triad (and triad's FLOP/s) from 1 MiB to 1 GiB per operand."""
    if not torch.cuda.is_available():
        print(
            "bandwidth_probe benchmark needs CUDA (under TRITON_INTERPRET=1 the kernels only check correctness)"
        )
        return
    from triton.testing import do_bench

    dtype = torch.float32
    print(f"{'MiB':>6} {'copy GB/s':>10} {'triad GB/s':>11} {'triad GFLOP/s':>14}")
    for mib in (1, 4, 16, 64, 256, 1024):
        n = mib * 2**20 // 4
        b = torch.randn(n, device="cuda", dtype=dtype)
        c = torch.randn_like(b)
        nbytes = b.numel() * b.element_size()
        t_copy = do_bench(functools.partial(copy, b)) * 1e-3
        t_triad = do_bench(functools.partial(triad, b, c, 0.5)) * 1e-3
        print(
            f"{mib:>6} {2 * nbytes / t_copy / 1e9:>10.0f} {3 * nbytes / t_triad / 1e9:>11.0f} "
            f"{2 * n / t_triad / 1e9:>14.0f}"
        )


if __name__ == "__main__":
    benchmark()
