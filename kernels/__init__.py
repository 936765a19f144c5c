"""Triton kernels for the roofline calibration microbenchmarks and the long-context method kernels.

One module per kernel, each holding the ``@triton.jit`` kernel, a wrapper that checks shapes,
dtypes and devices and launches it, a torch reference implementation, and a ``__main__``
benchmark (GPU only) that prints achieved bytes/s and FLOP/s with the simulator's own count
functions:

- ``bandwidth_probe``: copy and STREAM-triad kernels (achievable HBM bandwidth).
- ``decode_attention``: flash-decoding (split-K) for one decode step, GQA, variable KV lengths,
  contiguous or paged KV.
- ``decode_common``: the device functions, split-combine kernel and input checks the three
  decode kernels share.
- ``quant_decode_attention``: the same with int8/int4 KV and per-group scales, dequantised in-kernel.
- ``sparse_decode_attention``: Quest-style page top-k selection and a kernel reading only those pages.
- ``block_sparse_prefill``: causal block-sparse prefill attention (the kernel behind MInference).

The kernels do not time themselves: ``roofline.profilers`` times them with
``triton.testing.do_bench`` and fits the calibration curves. Importing this package imports
nothing else — each module imports torch and triton itself, so the planning path never needs them.
Set ``TRITON_INTERPRET=1`` before importing a kernel module to run it on CPU tensors.
"""
