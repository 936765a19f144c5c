"""Methods that change the data formats, the workload's sharing, or nothing per token.

* weight_quant: w8a8 (int8 weights and activations, SmoothQuant arXiv:2211.10438), fp8 (both in
  fp8), w4a16 (AWQ arXiv:2306.00978 / GPTQ: int4 weights with one fp16 scale per 128 weights,
  dequantised to 16-bit for the GEMM). Weight bytes and the GEMM peak follow.
* prefix_sharing (Hydragen, Juravsky et al., arXiv:2402.05099): a shared prompt prefix is
  prefilled and stored once, and decode attends to it with one batched GEMM for all sequences, so
  the prefix KV is read once per step instead of once per sequence.
* context_extension (PI arXiv:2306.15595, NTK-aware scaling, YaRN arXiv:2309.00071, LongRoPE
  arXiv:2402.13753, CLEX arXiv:2310.16450): rescales RoPE so the model works beyond its trained
  context. It changes no per-token cost; it raises the supported context by `factor`, which silences
  the "exceeds the supported context" warning.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from roofline.simulator.methods.base_method import CONTEXT, WEIGHTS, WORKLOAD, Method, Param

W4_GROUP = 128
FORMATS = {  # format -> (weights dtype, activations dtype or None = unchanged, bytes per weight)
    "w8a8": ("int8", "int8", 1.0),
    "fp8": ("fp8", "fp8", 1.0),
    "w4a16": ("int4", None, 0.5 + 2.0 / W4_GROUP),
}


class WeightQuant(Method):
    name = "weight_quant"
    summary = "Quantise weights (w8a8, fp8, w4a16)"
    citation = "SmoothQuant (arXiv:2211.10438); AWQ (arXiv:2306.00978); FP8 formats (arXiv:2209.05433)"
    changes = "weight bytes (memory, decode weight reads); GEMM peak for w8a8/fp8"
    stage = WEIGHTS
    exclusive = ("weight_format",)
    params = {"format": Param("choice", "Weight (and activation) format.", choices=tuple(FORMATS))}

    def apply_dtypes(self, dtypes):
        weights, acts, nbytes = FORMATS[self.format]
        return replace(dtypes, weights=weights, activations=acts or dtypes.activations, weight_bytes=nbytes)


class PrefixSharing(Method):
    name = "prefix_sharing"
    summary = "Shared prompt prefix stored once and attended with one batched GEMM (Hydragen)"
    citation = "Hydragen, Juravsky et al. 2024 (arXiv:2402.05099)"
    changes = "prefix prefilled and stored once; decode reads the prefix KV once per step for the batch"
    stage = WORKLOAD
    exclusive = ("prefix",)
    params = {
        "shared_prefix_tokens": Param(
            "int", "Prompt tokens shared by every sequence of the batch.", minimum=0
        )
    }

    def apply_workload(self, wl, model):
        return replace(wl, shared=np.minimum(np.maximum(wl.shared, self.shared_prefix_tokens), wl.prompt))

    def apply_plan(self, plan, model):
        return replace(plan, prefix_read_once=True)


class ContextExtension(Method):
    name = "context_extension"
    summary = "RoPE rescaling to run beyond the trained context (no per-token cost)"
    citation = (
        "PI (arXiv:2306.15595); YaRN (arXiv:2309.00071); LongRoPE (arXiv:2402.13753); CLEX (arXiv:2310.16450)"
    )
    changes = "nothing per token: raises the supported context by factor"
    stage = CONTEXT
    exclusive = ("context_extension",)
    params = {
        "kind": Param("choice", "Extension method.", choices=("pi", "ntk", "yarn", "longrope", "clex")),
        "factor": Param("float", "Context multiplier.", minimum=1.0, validated=(1.0, 32.0)),
    }

    def apply_model(self, model):
        if not model.max_context_tokens:
            return model
        return replace(model, max_context_tokens=int(model.max_context_tokens * self.factor))

    def notes(self, model):
        return [
            f"context_extension ({self.kind}, x{self.factor:g}) changes no per-token cost; it only raises the supported context"
        ]
