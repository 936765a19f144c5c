"""Token reduction: the model sees fewer prompt tokens, at the price of a compressor's forward.

* glyph (Cheng et al., arXiv:2510.17800): the long text is rendered into page images and read by a
  vision-language model; each visual token stands for `compression_ratio` text tokens (3-4x in the
  paper). The vision encoder runs over the rendered pages: 2 x encoder parameters FLOPs per patch,
  `merge` patches per visual token (2x2 merging).
* prompt_compression (LLMLingua-2, Pan et al., arXiv:2403.12968): a token classifier drops tokens to
  keep 1/`ratio` of the prompt; its forward costs 2 x compressor parameters FLOPs per input token.

Encoder sizes (parameters, patches merged per visual token, width): SigLIP-So400m (arXiv:2303.15343
and arXiv:2305.13035, ~400M, width 1152), AIMv2-Huge (arXiv:2411.14402, 681M, width 1536; the ViT
initialisation of GLM-4.1V, Glyph's base), the Qwen2.5-VL ViT (arXiv:2502.13923, 675M, width 1280);
XLM-RoBERTa-large (arXiv:1911.02116, 560M, width 1024) for LLMLingua-2. The encoder's GEMMs run at
the GEMM curve's efficiency for its width (tokens x 4 width x width, the MLP's up projection) and
its activations are width wide.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from roofline.simulator.methods.base_method import WORKLOAD, Method, Param
from roofline.simulator.ops import Op
from roofline.simulator.runplan import ExtraOp

VISION_ENCODERS = {  # parameters, patches merged per visual token, width
    "aimv2-huge": (681e6, 4, 1536),
    "siglip-so400m": (400e6, 1, 1152),
    "qwen2.5-vl-vit": (675e6, 4, 1280),
}
COMPRESSORS = {"llmlingua-2": (560e6, 1024)}  # parameters, width


def _encoder_op(name: str, params: float, width: int, tokens_per_prompt_token: float) -> ExtraOp:
    """A once-per-prefill op: a dense encoder forward over `tokens_per_prompt_token` tokens per
    prompt token of the batch (weights read once)."""
    return ExtraOp(name, "prefill_once", _encoder, (name, params, width, tokens_per_prompt_token))


def _encoder(ctx, name, params, width, tokens_per_prompt_token):
    n = ctx.shape.batch * ctx.shape.prompt * tokens_per_prompt_token
    return [
        Op(
            name=name,
            kind="encoder",
            flops=2.0 * params * n,
            bytes=params * ctx.fmt.wb + n * width * ctx.fmt.ab,
            compute_rate=ctx.rates.gemm_rate(n, 4 * width, width),
            memory_rate=ctx.rates.mem_rate,
            count=1.0,
            kernels=50.0,
        )
    ]


def _shrink(wl, ratio):
    return replace(wl, prompt=np.maximum(np.ceil(wl.prompt / ratio), 1.0), shared=np.floor(wl.shared / ratio))


class Glyph(Method):
    name = "glyph"
    summary = "Render long text as images read by a VLM (visual-text compression)"
    citation = "Glyph, Cheng et al. 2025 (arXiv:2510.17800)"
    changes = "prompt tokens / compression_ratio (prefill, KV, decode); vision encoder FLOPs per page"
    stage = WORKLOAD
    exclusive = ("token_reduction",)
    params = {
        "compression_ratio": Param(
            "float", "Text tokens per visual token.", minimum=1.0, validated=(3.0, 4.0)
        ),
        "vision_encoder": Param(
            "choice",
            "Vision encoder that reads the rendered pages.",
            "aimv2-huge",
            choices=tuple(VISION_ENCODERS),
        ),
    }

    def apply_workload(self, wl, model):
        return _shrink(wl, self.compression_ratio)

    def apply_extras(self, extras, model, plan):
        params, merge, width = VISION_ENCODERS[self.vision_encoder]
        return extras.add(_encoder_op("vision_encoder", params, width, merge))


class PromptCompression(Method):
    name = "prompt_compression"
    summary = "Drop prompt tokens with a small classifier (LLMLingua-2)"
    citation = "LLMLingua-2, Pan et al. 2024 (arXiv:2403.12968)"
    changes = "prompt tokens / ratio (prefill, KV, decode); compressor FLOPs over the original prompt"
    stage = WORKLOAD
    exclusive = ("token_reduction",)
    params = {
        "ratio": Param("float", "Original tokens per kept token.", minimum=1.0, validated=(2.0, 5.0)),
        "compressor": Param("choice", "The token classifier.", "llmlingua-2", choices=tuple(COMPRESSORS)),
    }

    def apply_workload(self, wl, model):
        return _shrink(wl, self.ratio)

    def apply_extras(self, extras, model, plan):
        params, width = COMPRESSORS[self.compressor]
        return extras.add(_encoder_op("prompt_compressor", params, width, self.ratio))


class ChunkedAgent(Method):
    name = "chunked_agent"
    summary = "Process the input as K calls over chunks with a carried memory (sequential or map-reduce)"
    citation = "MemAgent, Yu et al. 2025 (arXiv:2507.02259); LongAgent, Zhao et al. 2024 (arXiv:2402.11550)"
    changes = "TTFT = K calls (chunk + memory in, memory out) + an answer call over the memory; KV bounded by one call"
    stage = WORKLOAD
    exclusive = ("token_reduction",)
    params = {
        "chunk_tokens": Param("int", "Input tokens per call.", minimum=1, validated=(1024, 8192)),
        "memory_tokens": Param(
            "int",
            "Memory carried between calls (read and rewritten by each call).",
            minimum=1,
            validated=(256, 2048),
        ),
        "parallel": Param(
            "bool", "Map all chunks at once and reduce their memories (else sequential).", False
        ),
    }

    def apply_extras(self, extras, model, plan):
        from roofline.simulator.agent import AgentCalls

        return replace(extras, agent=AgentCalls(self.chunk_tokens, self.memory_tokens, self.parallel))
