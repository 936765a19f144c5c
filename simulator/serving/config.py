"""The `serving:` section of a scenario: its fields (help text, defaults, bounds), the length
distributions' shapes, the checks between fields, and the typed `ServingConfig` the simulator reads.

Field paths are `serving.<field>` or `serving.<subsection>.<field>`; `--set` takes them as is
(`--set serving.arrival.rate_per_s=8`). Defaults follow vLLM's engine arguments where the engines
agree (block size 16, recompute preemption, FCFS) and say so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from roofline.simulator.errors import did_you_mean, short
from roofline.simulator.frameworks import framework
from roofline.simulator.layout import ep_splits
from roofline.simulator.scenario_schema import FieldSpec

DISTRIBUTIONS = {
    "fixed": ("value",),
    "uniform": ("min", "max"),
    "lognormal": ("mean", "sigma"),
    "histogram": ("file",),
}
OPTIONAL_DIST_KEYS = ("min", "max")  # clip bounds any distribution may add
MAX_TOKENS = 1e8
# How requests reach data-parallel replicas: dealt before the run, or routed as they arrive (`routing`)
ROUTINGS = ("round_robin", "least_loaded", "prefix_aware")


def length_problem(path: str, value) -> str | None:
    """A token-length field: a whole number, or {dist: fixed|uniform|lognormal|histogram, ...}."""
    valid = ", ".join(f"{{dist: {d}, {', '.join(k)}}}" for d, k in DISTRIBUTIONS.items())
    if isinstance(value, bool):
        return (
            f"{path}: must be a token count or a distribution, got {short(value)}. Valid: a number, {valid}"
        )
    if isinstance(value, int):
        return None if 1 <= value <= MAX_TOKENS else f"{path}: must be 1..{MAX_TOKENS:g} tokens, got {value}"
    if not isinstance(value, dict):
        return (
            f"{path}: must be a token count or a distribution, got {short(value)}. Valid: a number, {valid}"
        )
    dist = value.get("dist")
    if not isinstance(dist, str) or dist not in DISTRIBUTIONS:  # (a list or a mapping is unhashable)
        return f"{path}.dist: {short(dist)} is not a distribution. Valid: {', '.join(DISTRIBUTIONS)}"
    need = DISTRIBUTIONS[dist]
    allowed = ("dist", *need, *OPTIONAL_DIST_KEYS)
    for key in value:
        if key not in allowed:
            return f"{path}: unknown key {key!r} for dist {dist}. Valid: {', '.join(allowed)}"
    for key in need:
        if key not in value:
            return f"{path}: dist {dist} needs {key!r} ({', '.join(need)})"
    for key, v in value.items():
        if key in ("dist", "file"):
            continue
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= MAX_TOKENS or v != v:
            return f"{path}.{key}: must be a number in 0..{MAX_TOKENS:g}, got {short(v)}"
    if dist == "histogram" and not isinstance(value["file"], str):
        return f"{path}.file: must be a path to a CSV of `tokens,weight` rows, got {short(value['file'])}"
    if dist == "uniform" and not 1 <= value["min"] <= value["max"]:
        return f"{path}: uniform needs 1 <= min <= max, got min={value['min']}, max={value['max']}"
    if dist == "lognormal" and value["mean"] < 1:
        return f"{path}.mean: must be >= 1 token, got {value['mean']}"
    return None


def _length(help_text, default) -> FieldSpec:
    return FieldSpec("custom", help_text, default, check=length_problem, sweepable=False)


def _f(kind, help_text, default=None, **kw) -> FieldSpec:
    return FieldSpec(kind, help_text, default, sweepable=False, **kw)


SERVING_SCHEMA: dict = {
    "serving.requests": _f("int", "Requests to simulate (a trace: the first this many lines).", 1000, minimum=1, maximum=1e7),
    "serving.seed": _f("int", "Seed of every random draw (arrivals, lengths, think times).", 0, minimum=0, maximum=2**63 - 1),
    "serving.arrival.rate_per_s": _f(
        "float", "Mean arrival rate (requests/s); Poisson unless arrival.cv is set.", None,
        minimum=0, exclusive_minimum=True, maximum=1e9, nullable=True,
    ),
    "serving.arrival.cv": _f(
        "float", "Coefficient of variation of inter-arrival gaps (gamma; 1 = Poisson, > 1 bursty).", 1.0,
        minimum=0, exclusive_minimum=True, maximum=1e3,
    ),
    "serving.arrival.offline": _f("bool", "All requests queued at t = 0 (offline max-throughput run).", False),
    "serving.arrival.concurrency": _f(
        "int", "Closed loop: this many requests in flight from the client, each next one sent when one "
        "completes (plus sessions.think_time_s), as vllm bench serve --max-concurrency, genai-perf "
        "--concurrency and trtllm-bench --concurrency load a server.", None,
        minimum=1, maximum=1e7, nullable=True,
    ),
    "serving.arrival.trace": _f(
        "str", "Trace file (JSONL or CSV: arrival time, prompt and output tokens, optional session/prefix_id; "
        "vLLM benchmark-serving and Mooncake formats read as is).", None, nullable=True,
    ),
    "serving.prompt_tokens": _length(
        "Prompt tokens per request: a number or {dist: uniform|lognormal|histogram|fixed, ...}.", 1024
    ),
    "serving.output_tokens": _length(
        "Output tokens per request: a number or {dist: uniform|lognormal|histogram|fixed, ...}.", 128
    ),
    "serving.sessions.turns": _f(
        "int", "Turns per session: each later turn's prompt is the conversation so far plus new prompt tokens.",
        1, minimum=1, maximum=1e4,
    ),
    "serving.sessions.think_time_s": _f(
        "float", "Mean user think time between a turn's last token and the next turn (exponential).", 0.0,
        minimum=0, maximum=1e7,
    ),
    "serving.scheduler.max_num_seqs": _f(
        "int", "Most sequences running at once (vLLM max_num_seqs, TensorRT-LLM max_batch_size, SGLang "
        "max_running_requests). null = the framework's: vLLM 1024 on GPUs of 70 GiB or more but A100, else "
        "256; TensorRT-LLM 2048; SGLang derived from its KV pool (2048-4096); hf, transformers 256.", None,
        minimum=1, maximum=1e6, nullable=True,
    ),
    "serving.scheduler.max_batched_tokens": _f(
        "int", "Token budget of one step: decode tokens plus prefill chunks (vLLM max_num_batched_tokens, "
        "TensorRT-LLM max_num_tokens, SGLang chunked_prefill_size). null = the framework's: vLLM 8192 on GPUs "
        "of 70 GiB or more but A100 (16384 offline, the LLM class), else 2048 (8192 offline); TensorRT-LLM 8192; "
        "SGLang 2048/4096/8192/16384 by GPU memory (<35/<60/<160/more GiB); hf, transformers 8192.", None,
        minimum=1, maximum=1e8, nullable=True,
    ),
    "serving.scheduler.chunked_prefill": _f(
        "bool", "Split a prompt over steps to fill the token budget (chunked prefill: vLLM's default, SGLang's "
        "chunked_prefill_size); false = each prompt runs whole in one step, admitted only when the budget left "
        "by the step's decodes holds it (TensorRT-LLM's default; trtllm-bench without enable_chunked_prefill). "
        "null = the framework's (false for trtllm, true otherwise).",
        None, nullable=True,
    ),
    "serving.scheduler.mixed_batches": _f(
        "bool", "Whether one step carries the running sequences' decode tokens beside prefill chunks (vLLM's "
        "scheduler, TensorRT-LLM's in-flight batching); false = a step prefills whenever a prompt can be "
        "scheduled and decodes only in steps without one, the decodes waiting out each prefill step (SGLang "
        "without --enable-mixed-chunk). null = the framework's (false for sglang, true otherwise).",
        None, nullable=True,
    ),
    "serving.scheduler.block_tokens": _f("int", "Tokens per KV-cache block (paged attention).", 16, minimum=1, maximum=1e6),
    "serving.scheduler.kv_memory_fraction": _f(
        "float", "Share of the memory left after weights, activations and runtime overhead given to KV "
        "blocks (TensorRT-LLM kv_cache_free_gpu_mem_fraction, default 0.9). null = the framework's "
        "budget: vLLM's gpu_memory_utilization (0.9 of the GPU's memory for everything, the KV cache "
        "taking what the rest leaves), SGLang's memory less its reserve (gpu_memory_utilization's help), "
        "0.9 of the memory left for the others.", None,
        minimum=0, exclusive_minimum=True, maximum=1.0, nullable=True,
    ),
    "serving.scheduler.gpu_memory_utilization": _f(
        "float", "Share of each GPU's whole memory the engine may use, the KV cache taking what is left of "
        "it: after weights, activations and runtime overhead (vLLM --gpu-memory-utilization, default 0.9), "
        "or after the weights alone under sglang (--mem-fraction-static: activations and CUDA graphs "
        "live outside it; unset, SGLang reserves 9.5 + tp x pp / 2 GiB on an 80 GB GPU, 12 + tp x pp / 2 on "
        "H200, 32 on B200). null = the framework's (vLLM 0.9, SGLang's reserve, others "
        "kv_memory_fraction's rule). Give this or kv_memory_fraction, not both.", None,
        minimum=0, exclusive_minimum=True, maximum=1.0, nullable=True,
    ),
    "serving.scheduler.preemption": _f(
        "choice", "When KV blocks run out: recompute (drop the KV, prefill again later) or swap (to host "
        "memory over the host link and back).", "recompute", choices=("recompute", "swap"),
    ),
    "serving.scheduler.admission": _f(
        "choice", "KV blocks taken at admission: on_demand (the next chunk's; more run at once, preempting when "
        "KV runs out: vLLM) or reserve (the whole prompt + output; never preempts: TensorRT-LLM's default "
        "GUARANTEED_NO_EVICT). null = the framework's (reserve for trtllm, on_demand otherwise).", None,
        choices=("on_demand", "reserve"), nullable=True,
    ),
    "serving.scheduler.policy": _f(
        "choice", "Queue order: fcfs (arrival order) or sjf (shortest prompt first).", "fcfs",
        choices=("fcfs", "sjf"),
    ),
    "serving.routing": _f(
        "choice", "How requests reach data-parallel replicas: round_robin (whole sessions dealt in turn before "
        "the run), least_loaded (each request, as it arrives, to the replica holding the fewest unfinished "
        "requests: a load balancer, SGLang's shortest_queue) or prefix_aware (to the replica whose cache holds "
        "the longest run of its prefix, load permitting: the SGLang Model Gateway's cache_aware); a session's "
        "later turns stay on its replica.",
        "round_robin", choices=ROUTINGS,
    ),
    "serving.prefix_cache.enabled": _f(
        "bool", "Reuse KV blocks of shared prefixes across requests and turns (LRU over blocks).", True
    ),
    "serving.prefix_cache.host_GiB": _f(
        "float", "Host-DRAM tier for evicted prefix blocks, per GPU (0 = none; null = runtime.host_memory_GiB "
        "or the hardware's host memory).", 0.0, minimum=0, maximum=1e6, nullable=True,
    ),
    "serving.disaggregation.prefill_gpus": _f(
        "int", "Prefill/decode disaggregation: GPUs of the prefill pool (null: one pool does both).", None,
        minimum=1, maximum=1e6, nullable=True,
    ),
    "serving.disaggregation.decode_gpus": _f(
        "int", "GPUs of the decode pool (with prefill_gpus).", None, minimum=1, maximum=1e6, nullable=True
    ),
    "serving.disaggregation.prefill_parallelism.tp": _f("int", "Tensor-parallel degree of a prefill replica.", 1, minimum=1, maximum=1e6),
    "serving.disaggregation.prefill_parallelism.cp": _f(
        "int", "Context-parallel degree of a prefill replica (long prompts split over GPUs).", 1, minimum=1, maximum=1e6
    ),
    "serving.disaggregation.decode_parallelism.tp": _f("int", "Tensor-parallel degree of a decode replica.", 1, minimum=1, maximum=1e6),
    "serving.disaggregation.prefill_parallelism.ep": _f(
        "int", "Expert-parallel degree over the prefill pool (a multiple of its tp dividing prefill_gpus; "
        "ep / tp replicas share their experts and step in lockstep; 1 = none).", 1, minimum=1, maximum=1e6,
    ),
    "serving.disaggregation.decode_parallelism.ep": _f(
        "int", "Expert-parallel degree over the decode pool (a multiple of its tp dividing decode_gpus; "
        "ep / tp attention-DP ranks share their experts and step in lockstep, as wide-EP decode runs; "
        "1 = none).", 1, minimum=1, maximum=1e6,
    ),
    "serving.prefix_cache.ssd_GiB": _f(
        "float", "Local-SSD tier below the host tier, per GPU (0 = none); needs a host tier.", 0.0,
        minimum=0, maximum=1e9,
    ),
    "serving.prefix_cache.ssd_GBps": _f(
        "float", "Read bandwidth of the SSD tier per GPU (GB/s; 7 = one PCIe 4.0 x4 NVMe drive's sequential "
        "read, e.g. Samsung PM9A3 datasheet 6.9 GB/s).", 7.0, minimum=0, exclusive_minimum=True, maximum=1e6,
    ),
    "serving.slo.ttft_s": _f(
        "float", "Time-to-first-token objective (s); null = none.", None, minimum=0, exclusive_minimum=True,
        maximum=1e7, nullable=True,
    ),
    "serving.slo.tpot_s": _f(
        "float", "Time-per-output-token objective (s); null = none.", None, minimum=0, exclusive_minimum=True,
        maximum=1e7, nullable=True,
    ),
}  # fmt: skip


def serving_problems(values: dict) -> list:
    """Checks between serving fields (each field alone is already valid)."""
    kinds = [
        k
        for k, on in (
            ("rate_per_s", values["serving.arrival.rate_per_s"] is not None),
            ("offline", values["serving.arrival.offline"]),
            ("concurrency", values["serving.arrival.concurrency"] is not None),
            ("trace", values["serving.arrival.trace"] is not None),
        )
        if on
    ]
    problems = []
    pg, dg = values["serving.disaggregation.prefill_gpus"], values["serving.disaggregation.decode_gpus"]
    if (pg is None) != (dg is None):
        problems.append("serving.disaggregation: give both prefill_gpus and decode_gpus, or neither")
    elif pg is not None:
        ptp = values["serving.disaggregation.prefill_parallelism.tp"]
        pcp = values["serving.disaggregation.prefill_parallelism.cp"]
        dtp = values["serving.disaggregation.decode_parallelism.tp"]
        if pg % (ptp * pcp):
            problems.append(
                f"serving.disaggregation.prefill_gpus: {pg} is not a multiple of a prefill replica's tp*cp = {ptp * pcp}"
            )
        if dg % dtp:
            problems.append(
                f"serving.disaggregation.decode_gpus: {dg} is not a multiple of a decode replica's tp = {dtp}"
            )
        for pool, gpus, tp in (("prefill", pg, ptp), ("decode", dg, dtp)):
            ep = values[f"serving.disaggregation.{pool}_parallelism.ep"]
            if not ep_splits(ep, tp, gpus):
                problems.append(
                    f"serving.disaggregation.{pool}_parallelism.ep: {ep} must be a multiple of the {pool} "
                    f"replica's tp = {tp} and divide {pool}_gpus = {gpus} (whole replicas share the experts)"
                )
        if values["serving.disaggregation.prefill_parallelism.ep"] > 1 and pcp > 1:
            problems.append(
                "serving.disaggregation.prefill_parallelism: expert parallelism with context parallelism "
                "is not simulated; use cp: 1 or ep: 1"
            )
        if values["serving.sessions.turns"] > 1:
            problems.append(
                "serving.disaggregation: multi-turn sessions are not simulated across pools yet; use turns: 1"
            )
        if values["serving.arrival.concurrency"] is not None:
            problems.append(
                "serving.disaggregation: a closed-loop client (arrival.concurrency) is not simulated across "
                "pools yet; use arrival.rate_per_s, offline: true or a trace"
            )
    if values["serving.arrival.concurrency"] is not None and values["serving.sessions.turns"] > 1:
        problems.append(
            "serving.arrival.concurrency: the closed-loop client sends single-turn requests; use "
            "sessions.turns: 1 (or arrival.rate_per_s for multi-turn sessions)"
        )
    if (
        values["serving.scheduler.kv_memory_fraction"] is not None
        and values["serving.scheduler.gpu_memory_utilization"] is not None
    ):
        problems.append(
            "serving.scheduler: give kv_memory_fraction (a share of the memory left after weights, "
            "activations and overhead) or gpu_memory_utilization (a share of the whole memory), not both"
        )
    if values["serving.prefix_cache.ssd_GiB"] and values["serving.prefix_cache.host_GiB"] == 0:
        problems.append(
            "serving.prefix_cache.ssd_GiB: the SSD tier sits below the host tier; set host_GiB too"
        )
    if len(kinds) != 1:
        # a --set of one kind over a file that names another gives two: say how to drop one
        unset = (
            f"; to switch, set the other to null, e.g. --set serving.arrival.{kinds[0]}=null" if kinds else ""
        )
        return problems + [
            "serving.arrival: give exactly one of rate_per_s (Poisson/gamma), offline: true, concurrency: N "
            "(closed loop), or trace: FILE; "
            f"got {', '.join(kinds) if kinds else 'none'}{unset if len(kinds) > 1 else ''}"
        ]
    return problems


@dataclass(frozen=True)
class ServingConfig:
    """The serving section, typed (see SERVING_SCHEMA for each field's meaning)."""

    requests: int
    seed: int
    rate_per_s: float | None
    cv: float
    offline: bool
    trace: str | None
    prompt_tokens: object
    output_tokens: object
    turns: int
    think_time_s: float
    max_num_seqs: int | None  # None: the framework's (`resolved`; SGLang's from its KV pool: Pool)
    max_batched_tokens: int | None
    block_tokens: int
    kv_memory_fraction: float | None  # None: the framework's budget (`frameworks.Framework.kv_budget`)
    preemption: str
    admission: str | None  # None: the framework's (`resolved`)
    policy: str
    prefix_cache: bool
    host_GiB: float | None
    slo_ttft_s: float | None
    slo_tpot_s: float | None
    ssd_GiB: float = 0.0
    ssd_GBps: float = 7.0
    prefill_gpus: int | None = None
    decode_gpus: int | None = None
    prefill_tp: int = 1
    prefill_cp: int = 1
    decode_tp: int = 1
    prefill_ep: int = 1
    decode_ep: int = 1
    concurrency: int | None = None  # closed-loop client: requests in flight
    chunked_prefill: bool | None = None  # None: the framework's (`resolved`)
    mixed_batches: bool | None = None  # None: the framework's (`resolved`)
    routing: str = "round_robin"  # how requests reach data-parallel replicas (`routing`)
    gpu_memory_utilization: float | None = None  # a share of the whole memory (vLLM's rule)

    @classmethod
    def from_values(cls, v: dict) -> ServingConfig:
        return cls(
            requests=v["serving.requests"],
            seed=v["serving.seed"],
            rate_per_s=v["serving.arrival.rate_per_s"],
            cv=v["serving.arrival.cv"],
            offline=v["serving.arrival.offline"],
            concurrency=v["serving.arrival.concurrency"],
            trace=v["serving.arrival.trace"],
            prompt_tokens=v["serving.prompt_tokens"],
            output_tokens=v["serving.output_tokens"],
            turns=v["serving.sessions.turns"],
            think_time_s=v["serving.sessions.think_time_s"],
            max_num_seqs=v["serving.scheduler.max_num_seqs"],
            max_batched_tokens=v["serving.scheduler.max_batched_tokens"],
            chunked_prefill=v["serving.scheduler.chunked_prefill"],
            mixed_batches=v["serving.scheduler.mixed_batches"],
            block_tokens=v["serving.scheduler.block_tokens"],
            kv_memory_fraction=v["serving.scheduler.kv_memory_fraction"],
            gpu_memory_utilization=v["serving.scheduler.gpu_memory_utilization"],
            preemption=v["serving.scheduler.preemption"],
            admission=v["serving.scheduler.admission"],
            policy=v["serving.scheduler.policy"],
            routing=v["serving.routing"],
            prefix_cache=v["serving.prefix_cache.enabled"],
            host_GiB=v["serving.prefix_cache.host_GiB"],
            slo_ttft_s=v["serving.slo.ttft_s"],
            slo_tpot_s=v["serving.slo.tpot_s"],
            ssd_GiB=v["serving.prefix_cache.ssd_GiB"],
            ssd_GBps=v["serving.prefix_cache.ssd_GBps"],
            prefill_gpus=v["serving.disaggregation.prefill_gpus"],
            decode_gpus=v["serving.disaggregation.decode_gpus"],
            prefill_tp=v["serving.disaggregation.prefill_parallelism.tp"],
            prefill_cp=v["serving.disaggregation.prefill_parallelism.cp"],
            decode_tp=v["serving.disaggregation.decode_parallelism.tp"],
            prefill_ep=v["serving.disaggregation.prefill_parallelism.ep"],
            decode_ep=v["serving.disaggregation.decode_parallelism.ep"],
        )


def resolved(cfg: ServingConfig, framework_name: str, hw) -> ServingConfig:
    """`cfg` with the scheduler limits it leaves unset taken from the framework's defaults on this GPU
    (`frameworks.Framework.scheduler_defaults`); SGLang's max_num_seqs stays None until its KV pool
    is sized (`serving_pools.build_pool`)."""
    fw = framework(framework_name)
    seqs, tokens, chunked, admission = fw.scheduler_defaults(hw.memory_bytes, hw.name, cfg.offline)
    return replace(
        cfg,
        max_num_seqs=seqs if cfg.max_num_seqs is None else cfg.max_num_seqs,
        max_batched_tokens=tokens if cfg.max_batched_tokens is None else cfg.max_batched_tokens,
        chunked_prefill=chunked if cfg.chunked_prefill is None else cfg.chunked_prefill,
        admission=admission if cfg.admission is None else cfg.admission,
        mixed_batches=fw.mixed_batches if cfg.mixed_batches is None else cfg.mixed_batches,
    )


def flatten_serving(node, prefix: str, source: str, problems: list, flat: dict) -> None:
    """The nested `serving:` section -> flat `serving.*` paths (its subsections nest one level
    deeper than the other sections; a field such as a length distribution may itself be a mapping)."""
    if node is None:
        return
    if not isinstance(node, dict):
        problems.append(f"{source}: field {prefix!r} must be a mapping, got {short(node)}")
        return
    depth = prefix.count(".") + 1
    valid = sorted({p.split(".")[depth] for p in SERVING_SCHEMA if p.startswith(prefix + ".")})
    for sub, v in node.items():
        path = f"{prefix}.{sub}"
        if path in SERVING_SCHEMA:
            flat[path] = v
        elif sub in valid:
            flatten_serving(v, path, source, problems, flat)
        else:
            problems.append(
                f"{source}: unknown field {path}.{did_you_mean(sub, valid)} Valid: {', '.join(valid)}"
            )


def checked_serving(serving: dict, present: bool, source: str, names: dict, problems: list) -> dict | None:
    """A scenario's `serving.*` values with the defaults filled, each checked against SERVING_SCHEMA
    and then together (`serving_problems`), problems appended to `problems`; None without a
    serving section."""
    from roofline.simulator.scenario import check_value

    if not (serving or present):
        return None
    for path, value in serving.items():
        problem = check_value(path, value, SERVING_SCHEMA[path], names)
        if problem:
            problems.append(f"{source}: {problem}")
    serving = {**{p: spec.default for p, spec in SERVING_SCHEMA.items()}, **serving}
    if not problems:
        problems += [f"{source}: {p}" for p in serving_problems(serving)]
    return serving
