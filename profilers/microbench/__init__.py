"""Calibration microbenchmarks, one module per group, run by `roofline.profilers.calibrate` in GROUPS order.

Each module has `cases(ctx)` (the grid: shapes and counted work, no tensors) and
`bench(timer, ctx) -> list[dict]` (raw points). Modules import torch only through the backend
they are given, so they can be listed and costed without a GPU; see `common.py`.
"""

from __future__ import annotations

import importlib

# Fixed run order: the cheap sanity checks first, the method kernels (optional) last.
GROUPS = (
    "launch",
    "hbm",
    "gemm",
    "attention_prefill",
    "attention_decode",
    "elementwise",
    "host_link",
    "quant_decode",
    "sparse_decode",
    "block_sparse_prefill",
)


def group_module(name: str):
    """The module of microbenchmark group `name` (imported on first use)."""
    if name not in GROUPS:
        raise KeyError(f"unknown microbenchmark group {name!r}; valid: {', '.join(GROUPS)}")
    return importlib.import_module(f"roofline.profilers.microbench.{name}")
