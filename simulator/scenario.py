"""Scenario schema (SPEC.md) and its validation: a parsed YAML mapping in, a checked `Scenario` out.

Every field carries help text, reused by `--help`, error messages and (later) dashboard tooltips.
Bad input — unknown keys, wrong types, out-of-range values, unknown names, impossible layouts — is
rejected before any computation with `ScenarioError`, whose message names the file, the field
path and the valid choices ("did you mean"). Name lookups (model, hardware) are injected by the
caller so this module stays free of file access.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

from roofline.simulator.errors import UserError, did_you_mean, short
from roofline.simulator.layout import Layout, ep_splits
from roofline.simulator.units import DTYPE_BYTES, TOKEN_COUNT_HELP, is_token_field, parse_token_count


class ScenarioError(UserError):
    """Invalid scenario input; str() lists every problem found."""

    def __init__(self, problems: list):
        self.problems = problems
        super().__init__(_problem_text(problems))


MAX_MESSAGE_CHARS = 2000  # an error message lists problems up to about this length, then counts the rest
MAX_PROBLEM_CHARS = 1000


def _problem_text(problems: list) -> str:
    """The problems one per line, each cut to MAX_PROBLEM_CHARS, the list to about MAX_MESSAGE_CHARS."""
    lines, used = [], 0
    problems = list(dict.fromkeys(str(p) for p in problems))  # a problem repeated is said once
    for i, text in enumerate(problems):
        text = text if len(text) <= MAX_PROBLEM_CHARS else text[: MAX_PROBLEM_CHARS - 4] + " ..."
        if lines and used + len(text) > MAX_MESSAGE_CHARS:
            lines.append(f"... and {len(problems) - i:,} more problems")
            break
        lines.append(text)
        used += len(text) + 1
    return "\n".join(lines)


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


MAX_SWEEP_POINTS = 250_000  # ~40 float64 result columns (~80 MB), a quarter of a second to evaluate
# Axes that change the op graph (sweep.VECTOR_AXES are the others) split the grid into structural
# groups, each built and costed on its own (~1-2 ms each): 500 keep a run within about a second.
MAX_STRUCTURAL_GROUPS = 500
MAX_METHODS = 32  # a stack uses each method at most once (exclusive categories); 32 leaves room


def check_value(path: str, value, spec: FieldSpec, names: dict) -> str | None:
    """Return a problem description for `value` at `path`, or None if it is valid."""
    if value is None:
        return None if spec.nullable else f"{path}: must not be null. {spec.help}"
    if spec.kind == "custom":
        return spec.check(path, value)
    if spec.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            what = TOKEN_COUNT_HELP if is_token_field(path) else "an integer"
            return f"{path}: must be {what}, got {short(value)}. {spec.help}"
    elif spec.kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{path}: must be a number, got {short(value)}. {spec.help}"
        if value != value or value in (float("inf"), float("-inf")):
            return f"{path}: must be finite, got {short(value)}."
    elif spec.kind == "bool":
        if not isinstance(value, bool):
            return f"{path}: must be true or false, got {short(value)}. {spec.help}"
    elif spec.kind in ("str", "name") or (
        spec.kind == "choice" and all(isinstance(c, str) for c in spec.choices)
    ):
        if not isinstance(value, str):
            return f"{path}: must be a string, got {short(value)}. {spec.help}"
    if spec.minimum is not None and spec.kind in ("int", "float"):
        if value < spec.minimum or (spec.exclusive_minimum and value == spec.minimum):
            bound = ">" if spec.exclusive_minimum else ">="
            return f"{path}: must be {bound} {spec.minimum:g}, got {short(value)}. {spec.help}"
    if spec.maximum is not None and spec.kind in ("int", "float") and value > spec.maximum:
        return f"{path}: must be <= {spec.maximum:g}, got {short(value)}. {spec.help}"
    if spec.kind == "choice" and (isinstance(value, bool) or value not in spec.choices):
        valid = [str(c) for c in spec.choices]
        return f"{path}: {short(value)} is not valid.{did_you_mean(value, valid)} Valid: {', '.join(valid)}"
    if spec.kind == "name" and path in names:
        problem = names[path](value)
        if problem:
            return f"{path}: {problem}"
    return None


@dataclass
class Scenario:
    """A validated scenario: `base` holds every field path's value; `sweep` the swept axes;
    `methods` the user's method specs and `stack` the Method objects parsed from them, once."""

    name: str
    base: dict
    methods: list = field(default_factory=list)
    sweep: list = field(default_factory=list)  # [(path, [values...])]
    stack: tuple = ()  # parsed Method objects, in the order given
    serving: dict | None = None  # `serving.*` path -> value (defaults filled) when the file has the section
    serving_sweep: list = field(default_factory=list)  # [(serving.* path, [values...])]: `serve` only

    @property
    def points(self) -> int:
        n = 1
        for _, values in self.sweep:
            n *= len(values)
        return n


def flatten(doc: dict, source: str, problems: list) -> dict:
    """Nested mapping -> {dotted path: value}; unknown keys become problems."""
    flat: dict = {}
    for key, value in doc.items():
        if key not in TOP_LEVEL:
            problems.append(
                f"{source}: unknown field {key!r}.{did_you_mean(key, TOP_LEVEL)} Valid: {', '.join(TOP_LEVEL)}"
            )
        elif key in SECTIONS:
            if value is None:
                continue
            if not isinstance(value, dict):
                problems.append(f"{source}: field {key!r} must be a mapping, got {short(value)}")
                continue
            valid = [p.split(".", 1)[1] for p in SCHEMA if p.startswith(key + ".")]
            for sub, v in value.items():
                if sub not in valid:
                    problems.append(
                        f"{source}: unknown field {key}.{sub}.{did_you_mean(sub, valid)} Valid: {', '.join(valid)}"
                    )
                else:
                    flat[f"{key}.{sub}"] = v
        elif key == "serving":
            from roofline.simulator.serving.config import flatten_serving

            flatten_serving(value, "serving", source, problems, flat)
        elif key not in ("methods", "sweep"):
            flat[key] = value
    return flat


def token_count(path: str, value):
    """A token-count field's `128k` / `1M` as an integer (units.parse_token_count); other values as given."""
    return parse_token_count(value) if is_token_field(path) and SCHEMA[path].kind == "int" else value


def set_path(doc: dict, path: str, value) -> None:
    """Apply a `--set path=value` override to a nested scenario mapping (in place); `sweep.<field>`
    sets (or replaces) one sweep axis, e.g. `sweep.hardware=[h100-sxm, h200]`."""
    if isinstance(path, str) and path.startswith("sweep."):
        axis = path.split(".", 1)[1]
        sweepable = [p for p, s in SCHEMA.items() if s.sweepable]
        if axis not in sweepable:
            raise ScenarioError(
                [
                    f"--set {path[:60]}: not a sweepable field.{did_you_mean(axis, sweepable)} Valid: sweep.<{', '.join(sweepable)}>"
                ]
            )
        if not isinstance(doc.get("sweep"), dict):
            doc["sweep"] = {}
        doc["sweep"][axis] = value if isinstance(value, list) else [value]
        return
    from roofline.simulator.serving.config import SERVING_SCHEMA

    if path not in SCHEMA and path not in SERVING_SCHEMA and path not in ("methods",):
        valid = list(SERVING_SCHEMA if str(path).startswith("serving") else SCHEMA)
        raise ScenarioError(
            [f"--set {str(path)[:60]}: unknown field.{did_you_mean(path, valid)} Valid: {', '.join(valid)}"]
        )
    parts = path.split(".")
    node = doc
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def _layout_problems(values: dict, where: str) -> list:
    problems = []
    tp, pp, cp, dp = (values[f"parallelism.{k}"] for k in ("tp", "pp", "cp", "dp"))
    ep = values["parallelism.ep"]
    if not all(isinstance(x, int) and not isinstance(x, bool) for x in (tp, pp, cp, dp, ep)):
        return problems
    gpus, layout = values.get("gpus"), Layout(tp=tp, pp=pp, cp=cp, dp=dp)
    if isinstance(gpus, int) and gpus != layout.gpus:
        problems.append(
            f"{where}gpus: {gpus} GPUs but tp*pp*cp*dp = {tp}*{pp}*{cp}*{dp} = {layout.gpus}; make them equal or set gpus: null"
        )
    if not ep_splits(ep, tp, tp * dp):
        problems.append(
            f"{where}parallelism.ep: expert parallelism spans whole tensor-parallel groups inside the tp*dp "
            f"GPUs, so ep must be a multiple of tp={tp} and divide tp*dp={tp * dp}; got ep={ep}"
        )
    return problems


def validate(doc, source: str, names: dict, require_workload: bool = True) -> Scenario:
    """Check a parsed scenario mapping and parse its methods (the only place they are parsed).
    `names` maps 'model'/'hardware'/'topology.fabric' to a function returning a problem string (or
    None) for a name. Checks that need the model itself are `scenario_checks.model_dependent_problems`.
    `require_workload=False`: the workload's required lengths may be absent (a step-cost model
    prices whatever batches it is given)."""
    from roofline.simulator.methods import parse_methods  # methods' parameters use this module's FieldSpec

    if not isinstance(doc, dict):
        raise ScenarioError(
            [f"{source}: a scenario must be a YAML mapping of fields, got {type(doc).__name__}"]
        )
    problems: list = []
    flat = flatten(doc, source, problems)
    raw_sweep = doc.get("sweep") or {}
    if not isinstance(raw_sweep, dict):
        problems.append(f"{source}: sweep must map field paths to lists of values, got {short(raw_sweep)}")
        raw_sweep = {}
    for req in REQUIRED:
        if flat.get(req) is None and req not in raw_sweep and require_workload:
            serving = " (a serving scenario: `roofline serve` takes its lengths from `serving:`)"
            hint = serving if isinstance(doc.get("serving"), dict) else ""
            problems.append(f"{source}: missing required field {req!r}{hint}. {SCHEMA[req].help}")
    from roofline.simulator.serving.config import SERVING_SCHEMA, checked_serving

    serving = {p: v for p, v in flat.items() if p.startswith("serving.")}
    flat = {path: token_count(path, value) for path, value in flat.items() if not path.startswith("serving.")}
    base = {p: spec.default for p, spec in SCHEMA.items()}
    base.update(flat)
    for path, value in flat.items():
        problem = check_value(path, value, SCHEMA[path], names)
        if problem:
            problems.append(f"{source}: {problem}")
    serving = checked_serving(serving, isinstance(doc.get("serving"), dict), source, names, problems)

    sweep = []
    sweepable = [p for p, s in SCHEMA.items() if s.sweepable]
    serving_sweep = []
    for path, values in raw_sweep.items():
        if isinstance(path, str) and path in SERVING_SCHEMA and isinstance(doc.get("serving"), dict):
            # A serving field sweeps `roofline serve` runs (one per point); `simulate` ignores it.
            if not isinstance(values, list) or not values:
                problems.append(
                    f"{source}: sweep.{path}: must be a non-empty list of values, got {short(values)}"
                )
                continue
            for v in values:
                problem = check_value(path, v, SERVING_SCHEMA[path], names)
                if problem:
                    problems.append(f"{source}: sweep.{problem}")
            serving_sweep.append((path, list(values)))
            continue
        if path not in SCHEMA or not SCHEMA[path].sweepable:
            problems.append(
                f"{source}: sweep.{path}: not a sweepable field.{did_you_mean(path, sweepable)} Valid: {', '.join(sweepable)}"
            )
            continue
        if not isinstance(values, list) or not values:
            problems.append(
                f"{source}: sweep.{path}: must be a non-empty list of values, got {short(values)}"
            )
            continue
        values = [token_count(path, v) for v in values]
        for v in values:
            problem = check_value(path, v, SCHEMA[path], names)
            if problem:
                problems.append(f"{source}: sweep.{problem}")
        sweep.append((path, list(values)))

    methods = doc.get("methods") or []
    if not isinstance(methods, list):
        problems.append(
            f"{source}: methods must be a list of {{name: ..., <parameters>}} mappings, got {short(methods)}"
        )
        methods = []
    if len(methods) > MAX_METHODS:
        problems.append(
            f"{source}: methods: {len(methods):,} entries; a stack holds at most {MAX_METHODS} methods"
        )
        methods = []
    stack, method_problems = parse_methods(methods, source)
    problems += method_problems

    points = 1
    for _, values in sweep:
        points *= len(values)
    if points > MAX_SWEEP_POINTS:
        problems.append(
            f"{source}: sweep: {points:,} points (the product of the axis lengths); at most {MAX_SWEEP_POINTS:,} per run"
        )
    groups = structural_groups(sweep)
    if groups > MAX_STRUCTURAL_GROUPS:
        problems.append(
            f"{source}: sweep: {groups:,} structural groups (the product of the lengths of the axes that "
            f"change the op graph: model, layout, dtypes, overlap); at most {MAX_STRUCTURAL_GROUPS:,} per run"
        )
    if not problems:
        problems += cross_field_problems(base, sweep, source)
    if problems:
        raise ScenarioError(problems)
    name = base.get("name") or source.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    methods = [  # as parsed: a token count given as 4k is kept as 4096
        {k: parse_token_count(v) if is_token_field(k) else v for k, v in m.items()}
        if isinstance(m, dict)
        else m
        for m in copy.deepcopy(methods)
    ]
    return Scenario(
        name=name,
        base=base,
        methods=methods,
        sweep=sweep,
        stack=tuple(stack),
        serving=serving,
        serving_sweep=serving_sweep,
    )


def structural_groups(sweep: list) -> int:
    """How many structural groups a sweep splits into (sweep.VECTOR_AXES stay array dimensions)."""
    from roofline.simulator.sweep import VECTOR_AXES

    groups = 1
    for path, values in sweep:
        if path not in VECTOR_AXES:
            groups *= len(values)
    return groups


def cross_field_problems(base: dict, sweep: list, source: str) -> list:
    """Constraints between fields, checked over the extremes of every swept axis."""
    problems = []
    swept = dict(sweep)
    layout_keys = ["gpus"] + [f"parallelism.{k}" for k in ("tp", "pp", "cp", "dp", "ep")]
    combos = [dict(base)]
    for key in layout_keys:
        if key in swept:
            combos = [dict(c, **{key: v}) for c in combos for v in swept[key]]
    seen = set()
    for combo in combos:
        for problem in _layout_problems(combo, f"{source}: "):
            if problem not in seen:
                seen.add(problem)
                problems.append(problem)
    prompts = swept.get("workload.prompt_tokens", [base["workload.prompt_tokens"]])
    prefixes = swept.get("workload.shared_prefix_tokens", [base["workload.shared_prefix_tokens"]])
    if max(prefixes) > min(prompts):
        problems.append(
            f"{source}: workload.shared_prefix_tokens: {max(prefixes)} shared tokens exceed the prompt "
            f"({min(prompts)} tokens); the shared prefix is part of the prompt"
        )
    return problems
