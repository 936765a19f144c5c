"""The scenario schema: every field's path, kind, help text, default, range and choices
(`FieldSpec`), the top-level keys and sections, and the fields a scenario must give. Read by
validation (`scenario.py`), the CLI's help and error messages, the JSON Schema export and the
dashboard's controls; data only, no file access.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from roofline.simulator.errors import short
from roofline.simulator.units import DTYPE_BYTES


@dataclass(frozen=True)
class FieldSpec:
    kind: str  # int | float | bool | str | choice | name
    help: str
    default: object = None
    choices: tuple = ()
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False
    sweepable: bool = True
    exclusive_minimum: bool = False  # the minimum itself is invalid (> rather than >=)
    check: object = None  # kind "custom": a function (path, value) -> problem or None
    json: dict | None = None  # kind "custom": its JSON Schema (None: a token length, serving.config)


DTYPES = tuple(DTYPE_BYTES)
CP_VARIANTS = ("pass-kv", "pass-q", "ulysses")
# runtime.attn_implementation: the transformers attention paths eager_hf prices
ATTN_IMPLEMENTATIONS = ("sdpa", "sdpa_gqa", "flash_attention_2")
# runtime.cache_implementation: the transformers KV caches eager_hf prices
CACHE_IMPLEMENTATIONS = ("dynamic", "static")
# runtime.prefill_logits: the prompt rows a prefill computes logits for (layers.model_edge_ops)
PREFILL_LOGITS = ("last", "all")


def _graph_sizes_problem(path: str, value) -> str | None:
    """A list of positive batch sizes (runtime.cuda_graph_batch_sizes), or the problem with it."""
    ok = (
        isinstance(value, list)
        and 0 < len(value) <= 4096
        and all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 1_000_000 for v in value)
    )
    if ok:
        return None
    return (
        f"{path}: must be a list of batch sizes (integers 1 .. 1,000,000, at most 4,096 of them), "
        f"e.g. [1, 2, 4, 8, 16, 32, 64, 128, 256, 512], or null; got {short(value)}"
    )


SCHEMA: dict = {
    "name": FieldSpec("str", "Scenario name; defaults to the file stem.", nullable=True, sweepable=False),
    "model": FieldSpec(
        "name",
        "Zoo model name (`roofline models list`, any case), a Hugging Face id such as Qwen/Qwen3-30B-A3B "
        "(the local cache, else its config.json is downloaded: the hf extra), or a model folder or config.json path.",
    ),
    "hardware": FieldSpec("name", "Hardware SKU name (`roofline hw list`)."),
    "gpus": FieldSpec(
        "int",
        "Total GPUs; must equal tp*pp*cp*dp (null: derived from the layout).",
        None,
        minimum=1,
        nullable=True,
    ),
    "parallelism.tp": FieldSpec(
        "int", "Tensor-parallel degree (heads, FFN and vocabulary sharded).", 1, minimum=1
    ),
    "parallelism.pp": FieldSpec("int", "Pipeline-parallel stages (layers split across GPUs).", 1, minimum=1),
    "parallelism.cp": FieldSpec("int", "Context-parallel degree (sequence split across GPUs).", 1, minimum=1),
    "parallelism.dp": FieldSpec(
        "int", "Data-parallel replicas; the batch is split across them.", 1, minimum=1
    ),
    "parallelism.ep": FieldSpec(
        "int", "Expert-parallel degree for MoE layers (within tp*dp GPUs).", 1, minimum=1
    ),
    "parallelism.cp_variant": FieldSpec("choice", "Context-parallel algorithm.", "pass-kv", CP_VARIANTS),
    "dtype.weights": FieldSpec(
        "choice",
        "Storage format of the weights. Narrower than dtype.activations = weight-only (int4/fp4 under "
        "bf16: W4A16, as AWQ/GPTQ or GPT-OSS's MXFP4 experts on Hopper; fp4 under fp8: MXFP4 x MXFP8 "
        "on Blackwell), the weights converted in the kernel.",
        "bf16",
        DTYPES,
    ),
    "dtype.activations": FieldSpec(
        "choice", "Format of activations; GEMMs run at this format's peak.", "bf16", DTYPES
    ),
    "dtype.kv": FieldSpec("choice", "Storage format of the KV cache.", "bf16", DTYPES),
    "dtype.attention": FieldSpec(
        "choice",
        "Compute format of the attention kernel, apart from the GEMMs': auto = the activation format "
        "when it is bf16/fp16/fp32, else bf16 (W8A8/FP8 GEMMs leave attention in 16-bit), except under "
        "runtime.framework trtllm with an fp8 KV cache and fp8/fp4 activations, where TensorRT-LLM runs "
        "FP8 context attention (fp8); fp8 = an FP8 attention kernel such as FlashAttention-3 FP8.",
        "auto",
        ("auto", "fp32", "bf16", "fp16", "fp8"),
    ),
    "dtype.attention_weights": FieldSpec(
        "choice",
        "Format of the attention projections' weights (Q/K/V/O, MLA's): auto = dtype.weights; bf16 or "
        "fp16 keeps them 16-bit while dtype.weights quantizes the rest, as Meta's FP8 Llama 3.1 405B "
        "does (its feed-forward layers only; Llama 3 paper, arXiv:2407.21783 §6.2).",
        "auto",
        ("auto", "bf16", "fp16"),
    ),
    "workload.batch": FieldSpec(
        "int", "Concurrent sequences in the decode batch (whole deployment).", 1, minimum=1
    ),
    "workload.prompt_tokens": FieldSpec(
        "int", "Prompt length in tokens (required; 128k = 131072, 1M = 1048576).", 4096, minimum=1
    ),
    "workload.output_tokens": FieldSpec("int", "Generated tokens per sequence.", 256, minimum=1),
    "workload.shared_prefix_tokens": FieldSpec(
        "int", "Prompt tokens shared by all sequences of the batch (prefilled and stored once).", 0, minimum=0
    ),
    "workload.prefill_chunk_tokens": FieldSpec(
        "int",
        "Chunked prefill: tokens per forward pass (null = whole prompt at once).",
        None,
        minimum=1,
        nullable=True,
    ),
    "calibration": FieldSpec(
        "str",
        "auto (measured profile if one exists, else datasheet), datasheet, or a profile path.",
        "auto",
        sweepable=False,
    ),
    "pricing.usd_per_gpu_hour": FieldSpec(
        "float",
        "Price of one GPU-hour in USD (null = the hardware file's default).",
        None,
        minimum=0,
        nullable=True,
    ),
    "topology.fabric": FieldSpec(
        "name",
        "Inter-node fabric per GPU for groups that span NVLink domains (see hwspecs/fabrics.yaml).",
        "ib-ndr-400",
    ),
    "runtime.overhead_GiB": FieldSpec(
        "float",
        "Per-GPU memory the runtime keeps (CUDA context, workspaces, allocator slack).",
        1.0,
        minimum=0,
    ),
    "runtime.host_memory_GiB": FieldSpec(
        "float",
        "Host (CPU) memory per GPU for offloaded KV cache and weights (null = the hardware file's "
        "value, `roofline hw show`).",
        None,
        minimum=0,
        nullable=True,
        exclusive_minimum=True,
    ),
    "runtime.custom_allreduce": FieldSpec(
        "bool",
        "Small all-reduces inside an NVLink/xGMI domain use the serving engines' peer-to-peer one-shot "
        "/ two-shot kernels (vLLM, SGLang, TensorRT-LLM) when faster than NCCL; false = NCCL only "
        "(e.g. plain torch.distributed); null = the framework's (true for serving engines, false for hf and transformers).",
        None,
        nullable=True,
    ),
    "runtime.sliding_window_kv_share": FieldSpec(
        "float",
        "KV memory the cache gives a sliding-window layer (gpt-oss, Gemma, Mistral) per token of "
        "context, beyond its window: it holds max(window, share x context) tokens of a sequence (the "
        "kernel attends the window either way; this is memory, and so how many sequences fit). 0 = "
        "the window only (vLLM's hybrid KV cache manager, HuggingFace); 0.8 = SGLang's window pool "
        "(--swa-full-tokens-ratio, 0.8 by default); 1 = every token, as full-attention layers "
        "(TensorRT-LLM, whose cache sizes every layer at max_seq_len unless "
        "kv_cache_config.max_attention_window lists per-layer windows: set 0 then). null = the "
        "framework's.",
        None,
        minimum=0,
        maximum=1,
        nullable=True,
    ),
    "runtime.cuda_graphs": FieldSpec(
        "bool",
        "Whether decode steps replay captured CUDA graphs (each kernel pays only the GPU-side gap) or "
        "are launched op by op from Python (+4 us per kernel): false = vLLM's --enforce-eager, "
        "SGLang's --disable-cuda-graph, TensorRT-LLM without cuda_graph_config; null = the "
        "framework's default (graphs for vllm, sglang and trtllm; eager for hf and transformers).",
        None,
        nullable=True,
    ),
    "runtime.cuda_graph_batch_sizes": FieldSpec(
        "custom",
        "Batch sizes the framework captured decode CUDA graphs for, when it pads to them (TensorRT-LLM's "
        "cuda_graph_config.batch_sizes with enable_padding: true, vLLM's cudagraph_capture_sizes, SGLang's "
        "cuda_graph_bs): a decode step of n sequences replays the smallest size >= n, padded with dummy "
        "sequences whose rows the GEMMs, experts and collectives run too; above the largest it is launched "
        "kernel by kernel. null = the framework's: vLLM's default capture sizes (1, 2, 4, 8..248 by 8, "
        "256..512 by 16: above 512 eager); SGLang's (1, 2, 4, 8, 12, 16..256 by 8, 272..496 by 16, 512, up to "
        "its cuda_graph_max_bs: 256 on 80-141 GB GPUs below TP4, 512 from TP4 and on B200; above it eager); a "
        "graph for every size (no padding) for the others. Only with cuda_graphs.",
        None,
        nullable=True,
        sweepable=False,
        check=_graph_sizes_problem,
        json={"type": ["array", "null"], "items": {"type": "integer", "minimum": 1, "maximum": 1_000_000}},
    ),
    "runtime.moe_routing": FieldSpec(
        "choice",
        "How the router spreads tokens over a MoE layer's experts: power_law = as trained routers do, a "
        "few experts taking much of the load (the experts' kernels 3-19% slower from 16 rows per expert "
        "on, and with expert parallelism the busiest rank's more: 1.25-1.6x at EP4-EP8 from 128 rows per "
        "expert; measured on AIConfigurator's MoE tables, whose default workload it is); balanced = evenly "
        "(synthetic load-balanced benchmarks, an expert-load balancer with redundant experts (EPLB), and "
        "AIConfigurator's balanced tables the grids are fitted to).",
        "power_law",
        choices=("power_law", "balanced"),
    ),
    "runtime.cpu_overlap": FieldSpec(
        "bool",
        "Whether the framework's CPU iteration (scheduling, input preparation, output processing) "
        "runs while the GPU runs the previous step, so a step takes the longer of the two, or adds "
        "to it: false = vLLM's --no-async-scheduling (and vLLM before 0.14), SGLang's "
        "--disable-overlap-schedule, TensorRT-LLM's disable_overlap_scheduler; null = the "
        "framework's default (true for vllm, sglang and trtllm; false for hf and transformers).",
        None,
        nullable=True,
    ),
    "runtime.cpu_step_ms": FieldSpec(
        "float",
        "CPU time of one iteration, fixed part (scheduling, input preparation), in ms; null = the "
        "framework's (0.5 for the serving engines, 1 for hf and transformers). Set it from a profile of "
        "your own host.",
        None,
        minimum=0,
        nullable=True,
    ),
    "runtime.cpu_per_sequence_us": FieldSpec(
        "float",
        "CPU time of one iteration per sequence in the batch (sampling, stop checks, output "
        "processing, block tables), in us; null = the framework's (2 for the serving engines). It "
        "bounds throughput at large batches of small models, more so on slower hosts.",
        None,
        minimum=0,
        nullable=True,
    ),
    "runtime.pp_relay_us": FieldSpec(
        "float",
        "With pipeline parallelism, serial host time per sequence per hop of the sampled tokens' "
        "relay between ranks, in us (pp - 1 hops per output token; docs/frameworks.md); null = the "
        "framework's (8 for trtllm, 0 for the others). Set 0 for a pipeline whose ranks do not relay.",
        None,
        minimum=0,
        nullable=True,
    ),
    "runtime.dispatch_us": FieldSpec(
        "float",
        "Host time per eagerly launched kernel that overlaps the GPU's work, in us (transformers' "
        "Python modelling code: a pass takes the longer of its kernels and their dispatch; "
        "docs/frameworks.md); null = the framework's (23 for transformers, 0 for the others, whose "
        "eager launches add their own time instead). Set it from a profile of your own host.",
        None,
        minimum=0,
        nullable=True,
    ),
    "runtime.attn_implementation": FieldSpec(
        "choice",
        "transformers' attention path (its attn_implementation; read with runtime.framework: "
        "transformers only): sdpa = PyTorch SDPA after repeat_kv copies the keys and values to every "
        "query head (transformers' default; v4.36-v4.51 always, later releases when an attention mask "
        "is passed: a padded batch, a static cache), so a grouped-query model's decode moves 2 x "
        "groups times each layer's cache more; sdpa_gqa = SDPA on the grouped heads (v4.52+ with "
        "PyTorch 2.5+, no mask: under a static cache, whose mask it needs, it copies too); "
        "flash_attention_2 = flash-attn's kernels (no copies). null = sdpa. "
        "See docs/frameworks.md.",
        None,
        choices=ATTN_IMPLEMENTATIONS,
        nullable=True,
    ),
    "runtime.cache_implementation": FieldSpec(
        "choice",
        "transformers' KV cache (generate's cache_implementation; read with runtime.framework: "
        "transformers only): dynamic = DynamicCache, which torch.cat-copies each layer's whole cache "
        "at every step; static = StaticCache, preallocated and written in place (index_copy_ of the "
        "new tokens), whose attention mask makes SDPA's grouped path (sdpa_gqa) copy the KV heads and "
        "SDPA attend its whole buffer (prompt + output) without causal skipping, the mask held in "
        "memory (prompt x buffer per sequence). "
        "null = static with cuda_graphs (graphs need one), else dynamic. See docs/frameworks.md.",
        None,
        choices=CACHE_IMPLEMENTATIONS,
        nullable=True,
    ),
    "runtime.prefill_logits": FieldSpec(
        "choice",
        "The prompt rows a prefill computes logits for: last = one per sequence, the row it samples "
        "from (vLLM, SGLang and TensorRT-LLM; transformers' generate since PR #31292, mid-2024, "
        "which passes num_logits_to_keep); all = every prompt token's, in 16 bits and a float32 "
        "copy (transformers' generate before that PR, whose heads ran over every position and "
        "upcast the result with logits.float(); a model called without logits_to_keep computes "
        "them all too, since that PR in 16 bits only, and an engine asked for prompt logprobs: "
        "upper bounds there): the LM head runs over every prompt row and the logits are alive at "
        "the pass's peak, prompt rows x vocabulary x 6 bytes per GPU (a 64K-token prompt of Llama 3 "
        "holds 49 GiB). null = last. See docs/frameworks.md.",
        None,
        choices=PREFILL_LOGITS,
        nullable=True,
    ),
    "runtime.framework": FieldSpec(
        "choice",
        "The serving stack: its per-step CPU cost (scheduling, sampling), kernel launch mode (CUDA "
        "graphs or eager) and whether CPU work overlaps the GPU (vllm | sglang | trtllm | hf = "
        "eager PyTorch of fused kernels | transformers = HuggingFace transformers' own eager "
        "modelling code | kernel = kernel time alone). See docs/frameworks.md.",
        "vllm",
        ("vllm", "sglang", "trtllm", "hf", "transformers", "kernel"),
    ),
    "runtime.overlap": FieldSpec(
        "choice",
        "Whether communication overlaps compute (overlap) or adds to it (serial).",
        "serial",
        ("serial", "overlap"),
    ),
}
# Upper bounds: far beyond any real deployment, and small enough to stay exact in float64.
_MAXIMA = {
    "gpus": 1e6,
    "parallelism.tp": 1e6,
    "parallelism.pp": 1e6,
    "parallelism.cp": 1e6,
    "parallelism.dp": 1e6,
    "parallelism.ep": 1e6,
    "workload.batch": 1e7,
    "workload.prompt_tokens": 1e10,
    "workload.output_tokens": 1e10,
    "workload.shared_prefix_tokens": 1e10,
    "workload.prefill_chunk_tokens": 1e10,
    "pricing.usd_per_gpu_hour": 1e6,
    "runtime.overhead_GiB": 1e6,
    "runtime.host_memory_GiB": 1e6,
}
SCHEMA = {path: replace(spec, maximum=_MAXIMA.get(path, spec.maximum)) for path, spec in SCHEMA.items()}
TOP_LEVEL = (
    "name",
    "model",
    "hardware",
    "gpus",
    "parallelism",
    "dtype",
    "workload",
    "methods",
    "calibration",
    "pricing",
    "runtime",
    "topology",
    "serving",
    "sweep",
)
SECTIONS = ("parallelism", "dtype", "workload", "pricing", "runtime", "topology")
# Fields a scenario must give (a prompt length too: a silent default would answer another question).
# The prompt's schema default is only a dashboard control's starting value; a sweep over it counts.
REQUIRED = ("model", "hardware", "workload.prompt_tokens")
