"""Serving frameworks: what the stack that runs the kernels adds to every forward pass (how each
framework's kernels compare with the datasheet curves is simulator/kernel_scales.py's).

The roofline prices kernels. A real step also pays the framework: the CPU work of one iteration
(scheduling, preparing inputs, sampling, stop checks, detokenising) and the launch of every kernel.
`runtime.framework` names the stack; each one is described by four facts:

* `decode_graphs` — decode steps replay a captured CUDA graph (vLLM, SGLang and TensorRT-LLM capture
  decode batches by default; HuggingFace `generate` runs eager). A graph replays its kernels
  back-to-back: each kernel pays only the GPU-side gap, `kernel_overhead_s` (2 us by default, or a
  calibration profile's measured value).
* `launch_s` — the extra time per kernel when the pass is launched from Python op by op (eager
  PyTorch, and every framework's prefill passes, which are too large to capture: TensorRT-LLM's
  PyTorch backend, its default since 1.0, captures generation-only iterations and runs context
  and mixed iterations eagerly unless piecewise CUDA graphs are switched on (TensorRT-LLM docs,
  "Torch Compile & Piecewise CUDA Graph": "Piecewise CUDA Graph only handles context-only and mixed
  context+generation iterations", an opt-in `torch_compile_config`). Per kernel, not per layer: it scales with what the
  pass runs.
* `dispatch_s`, `unfused` — HuggingFace transformers' own modelling code (`transformers`,
  simulator/eager_hf.py): its Python launches each kernel on the host at `dispatch_s` (23 us) while
  the GPU runs what was launched before, so a pass takes the longer of its kernels' time and their
  dispatch (`hf`'s `launch_s` adds to each kernel instead: stacks of a few fused kernels per layer);
  `unfused`: its RMSNorm, RoPE and SwiGLU product run as chains of elementwise kernels over fp32
  intermediates, its projections as separate GEMMs, and its `DynamicCache` copies a layer's cache
  on every append.
* `step_s`, `per_sequence_s` — CPU time of one iteration: a fixed part and a part per sequence in the
  batch (sampling, stop checks, output processing, block tables).
* `pp_hop_s` — with pipeline parallelism, serial host time per sequence per hop between ranks
  (`relay_s`; TensorRT-LLM only, below).
* `window_kv_share` — the KV memory its cache gives a sliding-window layer, in tokens per token of
  context, beyond the window itself: a sequence's sliding layers hold max(min(C, window), share x C)
  tokens (their memory; the kernels attend the window either way). 0: only the window. vLLM's
  hybrid KV cache manager reserves "slots only for the most recent sliding_window_size tokens" in
  sliding-window layers (vLLM docs, design/hybrid_kv_cache_manager.md), and HuggingFace's cache
  keeps a sliding layer's last window (transformers' sliding-window cache layers; HF blog
  "faster-transformers": gpt-oss's cache "halved"). 0.8: SGLang splits its memory at startup into a
  full-attention pool and a sliding-window pool of `--swa-full-tokens-ratio` (default 0.8) as many
  tokens (SGLang docs, "Unified Memory for Hybrid Models": "By default SGLang gives each kind its own
  pool and fixes the split at startup"; server_args swa_full_tokens_ratio = 0.8), so a token of
  context takes its full layers' bytes plus 0.8 of its sliding layers' (the window pool's spare
  room is not lent to the full one). 1: TensorRT-LLM's PyTorch KV cache manager gives every layer
  one attention window, max_seq_len, unless `kv_cache_config.max_attention_window` lists one per
  layer (tensorrt_llm/_torch/pyexecutor/resource_manager.py: "Use max_seq_len as default
  max_attention_window"; the per-window pools exist, but nothing sets them from the model's config:
  the PR that would have, NVIDIA/TensorRT-LLM #5722, was closed unmerged), so its sliding-window
  layers hold every token. On TensorRT-LLM's published GPT-OSS throughput
  (benchmarks/bench_serve.py, 33 rows on four GPUs, nothing fitted) windows read as held ran up to
  1.7x as many sequences as fit and overstated throughput by a median 18% (+44..59% for 120B on
  H200); every token held: median |error| 7%.
* `gpu_memory_utilization` — how a serving deployment's KV cache is budgeted (`kv_budget`). vLLM
  takes a share of the GPU's whole memory for everything: its engine argument
  `gpu_memory_utilization` (default 0.9, "the fraction of GPU memory to be used for the model
  executor", vLLM docs, engine arguments), and its worker gives the KV cache that share less what
  the profiled weights, peak activations and non-torch allocations hold (vLLM's
  `determine_available_memory`). TensorRT-LLM takes `kv_cache_free_gpu_mem_fraction` (default 0.9)
  of the memory left free after the model loads and its activations are profiled (TensorRT-LLM docs,
  KvCacheConfig: "The fraction of GPU memory that should be allocated for the KV cache"; of free
  memory). The two differ by 0.1 x what the rest holds: 8B in bf16 on an 80 GB GPU, 3% fewer
  blocks under vLLM; 70B in FP8 over two, 10%. SGLang's `mem_fraction_static` is the share of the
  GPU's memory for weights and the KV pool together (activations and CUDA graphs live outside it);
  unset, SGLang reserves a fixed amount for those and takes the rest (server_args
  `_handle_gpu_memory_settings`: (memory - reserved) / memory, reserved 2.8 + n/10 GiB below 35 GiB
  of GPU memory, 9.5 + n/2 GiB below 90 (H100, A100), 12 + n/2 GiB below 160 (H200), 32 GiB above
  (B200), n = tp x pp, 4 GiB more with attention data parallelism): `sglang_reserved_bytes`.
* `scheduler_defaults` — the batch limits and chunked prefill a serving deployment gets when the
  scenario leaves them unset (`serving.scheduler.max_num_seqs`, `max_batched_tokens`,
  `chunked_prefill`: null). vLLM (engine arguments, `get_batch_defaults`): on a GPU of 70 GiB or more
  that is not an A100, max_num_seqs 1024 and max_num_batched_tokens 8192 for `vllm serve`, 16384 for
  the offline `LLM` class (what `vllm bench throughput` runs: `arrival.offline`); elsewhere 256 and
  2048 (`LLM`: 8192); chunked prefill on. TensorRT-LLM (PyTorch backend, TorchLlmArgs):
  max_batch_size 2048, max_num_tokens 8192, chunked prefill off, and the GUARANTEED_NO_EVICT capacity
  scheduler (the whole prompt and output's blocks at admission: `admission: reserve`; the others
  take blocks as tokens come and preempt). SGLang (server_args
  `_handle_gpu_memory_settings`): chunked_prefill_size 2048 below 35 GiB of GPU memory, 4096 below
  60, 8192 below 160 (H100, H200), else 16384 (B200); its running requests are derived from the KV
  pool (`max_running`): min(max(tokens / context length x 512, 2048), 4096), at most tokens / 2.
  `hf`, `transformers` and `kernel` (no scheduler of their own): 256 and 8192, chunked.
* `graph_sizes` — the decode batch sizes a framework captures CUDA graphs for by default
  (`runtime.cuda_graph_batch_sizes: null`): a batch replays the smallest that holds it, padded, and
  runs without graphs above the largest. vLLM: [1, 2, 4] + 8..248 by 8 + 256..512 by 16, its
  largest min(2 x max_num_seqs, 512, max_num_batched_tokens) (vLLM CompilationConfig
  cudagraph_capture_sizes and VllmConfig._set_cudagraph_sizes; with max_num_seqs under 256 the
  batches stay below the cap, so the fixed list pads them as vLLM does). SGLang: [1, 2, 4, 8, 12] +
  16..256 by 8 + 272..496 by 16 + 512.. by 32 up to its cuda_graph_max_bs, which it sets by GPU
  memory and TP (server_args `_generate_cuda_graph_batch_sizes`, `_handle_gpu_memory_settings`:
  256 on 80-141 GB GPUs below TP4, 512 from TP4 and on B200; `graph_cap`); a larger batch decodes
  without a graph (its CudaGraphRunner's `can_run`). TensorRT-LLM: a graph for every size (its
  default list depends on options this model does not take; give the list).
* `mixed_batches` — whether one step carries the running sequences' decode tokens beside prefill
  chunks. vLLM's scheduler fills each step's token budget with decodes first, then prefill chunks
  (vLLM docs, "Optimization and Tuning": chunked prefill "prioritizes decode requests" and batches
  prefills in the budget they leave), and TensorRT-LLM's in-flight batching puts context and
  generation requests in one batch (TensorRT-LLM docs, "In-flight Batching"): true. SGLang runs a
  prefill batch whenever waiting or partly prefilled requests can be scheduled, and decodes only in
  steps without one, unless `--enable-mixed-chunk` (server_args `enable_mixed_chunk`, default False:
  "Enabling mixing prefill and decode in a batch when using chunked prefill"; its scheduler's
  `get_next_batch_to_run` returns the new prefill batch first, else the running decode batch):
  false. Its decodes wait out each prefill step, which a mixed step would have carried.
* `overlap` — whether that CPU work overlaps the GPU's next step. SGLang's zero-overhead scheduler
  (LMSYS blog, "SGLang v0.4", 2024-12-04), TensorRT-LLM's overlap scheduler (TensorRT-LLM docs,
  "Overlap Scheduler", enabled by default) and vLLM's async scheduling (on by default since vLLM
  0.14.0, January 2026: release notes, "Async scheduling is now enabled by default", vLLM PR #27614;
  `--no-async-scheduling` turns it off) schedule step n+1 while the GPU runs step n, so a step costs
  max(GPU, CPU); HuggingFace `generate` (and vLLM before 0.14) adds the two.

Values (assumptions, with their derivation; a calibration run on the deployment replaces them):

* `launch_s` = 4 us: CUDA's launch path costs a few microseconds per kernel from the host, and
  PyTorch's dispatcher adds to it. Checked on two published eager PyTorch stacks, not fitted to one
  point: ShadowKV's full-attention baseline (arXiv:2410.21465 Table 4; Llama-3-8B, A100) runs
  1.5–3.5 ms per decode step above the kernel roofline over 10 batch/context points, 3.6–8 us per
  kernel; the context-parallelism paper's TP8 decode (arXiv:2411.01783 Table 6; Llama-3 405B)
  6.4–8.4 ms, 3.4–4.5 us per kernel.
* `step_s`: vLLM's own profile (vLLM blog, "vLLM v0.6.0: 2.7x Throughput Improvement", 2024-09-05)
  shows that for Llama-3-8B on one H100 CPU work (scheduling, input preparation, output
  processing) rivals the GPU's few-millisecond decode step before its optimisations; after them
  (multi-step scheduling, asynchronous output processing, V1's engine core) we take 0.5 ms per
  iteration plus 2 us per sequence. HuggingFace `generate` pays a synchronising `.item()`/stopping
  check and its logits processors every step: 1 ms. SGLang and TensorRT-LLM: the same work, hidden
  by overlap whenever the GPU step is longer (vLLM's too, since 0.14).
* `pp_hop_s` (TensorRT-LLM) = 8 us per sequence per hop. TensorRT-LLM's PyTorch executor hands
  each micro-batch's sampled tokens from rank to rank (last -> 0 -> 1 -> ...): each rank receives
  the pickled sample state, applies it to its requests and sends it on, inside its executor loop
  (NVIDIA/TensorRT-LLM PR #10349, 2026-01, which made that loop non-blocking, and PR #16170,
  2026-07-09, which made the inline relay the default again: "relay recv/apply/isend runs at stage
  2 of the PP executor loop"). So a relay is pp - 1 hops of per-sequence host work that no GPU
  work hides, and the pp micro-batches in flight relay in turn: a step of n sequences pays
  pp (pp - 1) n hops, (pp - 1) hops per output token. The per-hop cost is not published; it is
  fitted (`benchmarks/pp_relay_fit.py`: least squares in log throughput) on TensorRT-LLM's own
  pipeline-parallel measurements (performance overview v1.0, RTX PRO 6000 Server, Llama 3.3 70B
  FP4, TP1 x PP2 / PP4 / PP8, 30 rows): 8.35 us. Fitted at one depth alone it falls with the depth,
  23 / 12 / 7.8 us at PP2 / PP4 / PP8: where the hops are few the fit also absorbs the model's
  error on these rows at PP1 (-7..+11%), so the form is borne out where the relay dominates, at PP4
  and PP8. Llama 3.1 405B's PP8 rows were not used: they check it (+1..+8%). vLLM and SGLang send
  sampled tokens from the last rank in one step: 0 (no measurement to say otherwise).
* `kernel`: kernel time alone (no framework), for comparing against kernel benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roofline.simulator.eager_hf import DISPATCH_S
from roofline.simulator.errors import UserError
from roofline.simulator.ops import Op, cost_op


@dataclass(frozen=True)
class Framework:
    name: str
    decode_graphs: bool
    prefill_eager: bool  # prefill passes launched kernel by kernel from Python
    launch_s: float  # extra per kernel when launched eagerly
    step_s: float  # CPU time per iteration
    per_sequence_s: float  # CPU time per sequence per iteration
    overlap: bool  # CPU work of step n overlaps the GPU's step n + 1
    help: str
    pp_hop_s: float = 0.0  # serial host time per sequence per pipeline hop (`relay_s`)
    graph_sizes: tuple | None = None  # captured decode batch sizes, ascending; None: every size
    window_kv_share: float = 0.0  # sliding-window layers' KV beyond the window, tokens per context token
    gpu_memory_utilization: float | None = None  # KV budget a share of the whole memory (`kv_budget`)
    mixed_batches: bool = True  # a step carries decode tokens beside prefill chunks (`mixed_batches`)
    # the largest captured decode batch where it depends on the GPU and layout (SGLang's
    # cuda_graph_max_bs: `graph_cap`), per point of a sweep; None: the last of graph_sizes
    graph_max: object = None
    # host time per kernel launched eagerly that overlaps the GPU (the pass takes the longer of the
    # two), in place of `launch_s`'s added time: transformers' Python modelling code (eager_hf)
    dispatch_s: float = 0.0
    unfused: bool = False  # transformers' unfused norms, RoPE and SwiGLU, and its copied cache (eager_hf)
    # a peer-to-peer all-reduce for small messages: the serving engines ship one; eager PyTorch (plain
    # torch.distributed) goes through NCCL (`runtime.custom_allreduce: null` follows this)
    custom_allreduce: bool = False
    # eager PyTorch: cuBLAS GEMMs and the flash-attn package's kernels, priced from the GPU's
    # serving-engine profile where the framework has none of its own (calibration.torch_kernels)
    torch_kernels: bool = False

    def launch_extra_s(self, phase: str) -> float:
        """Extra launch time per kernel in a pass of `phase` ('prefill' | 'decode')."""
        eager = self.prefill_eager if phase == "prefill" else not self.decode_graphs
        return self.launch_s if eager else 0.0

    def kernel_s(self, overhead_s, phase: str):
        """Time per kernel launch in a pass of `phase`: the GPU-side gap `overhead_s` plus, launched
        eagerly, the host's launch."""
        return overhead_s + self.launch_extra_s(phase)

    def decode_rows(self, sequences):
        """(token rows, replayed from a graph) of a decode pass over `sequences` sequences (arrays
        or scalars). A framework that captures decode graphs for some batch sizes only
        (`graph_sizes`: TensorRT-LLM's cuda_graph_config.batch_sizes with enable_padding, vLLM's
        cudagraph_capture_sizes, SGLang's cuda_graph_bs) replays the smallest captured size that
        holds the batch, padded with dummy sequences: its token-parallel ops (GEMMs, experts, norms,
        collectives) run that many rows. Above the largest the pass runs without a graph, launched
        kernel by kernel. Without graphs, or with every size captured, the rows are the sequences."""
        n = np.asarray(sequences, float)
        if not self.decode_graphs or self.graph_sizes is None:
            rows, graphed = n, np.full(n.shape, self.decode_graphs)
        else:
            sizes = np.asarray(self.graph_sizes, float)
            i = np.searchsorted(sizes, n, side="left")
            graphed = i < sizes.size
            rows = np.where(graphed, sizes[np.minimum(i, sizes.size - 1)], n)
            if self.graph_max is not None:  # sizes above the deployment's largest were not captured
                graphed = graphed & (rows <= np.asarray(self.graph_max, float))
                rows = np.where(graphed, rows, n)
        if np.ndim(rows) == 0:
            return float(rows), bool(graphed)
        return rows, graphed

    def graph_cap(self, memory_bytes, tp: int):
        """The largest decode batch this framework captures by default on GPUs of `memory_bytes`
        (per point) with tensor parallelism `tp`, where that depends on them; None otherwise:
        SGLang's cuda_graph_max_bs (`sglang_memory_settings`)."""
        return sglang_memory_settings(memory_bytes, tp)[1] if self.name == "sglang" else None

    def dispatch_kernel_s(self, phase: str, graphed=False):
        """Host dispatch time per kernel of a pass of `phase` (`dispatch_s`), where the pass is
        launched eagerly: every prefill pass of a framework that launches prefill eagerly, a decode
        pass that replays no graph (`graphed`: a mask or a bool)."""
        if not np.any(self.dispatch_s):  # (an array per point on a sweep of hosts)
            return 0.0
        if phase == "prefill":
            return self.dispatch_s if self.prefill_eager else 0.0
        if np.ndim(graphed):
            return np.where(graphed, 0.0, self.dispatch_s)
        return 0.0 if graphed else self.dispatch_s

    def dispatch_op(self, ops, per_kernel) -> Op:
        """The host's dispatch of every kernel of `ops` (one pass or a phase's passes: their
        `count`), at `per_kernel` seconds each (`dispatch_kernel_s`), on the `dispatch` stream that
        overlaps the GPU's work (phases.PhaseTotals)."""
        kernels = sum((op.kernels * op.count for op in ops), 0.0)
        return host_op("eager_dispatch", per_kernel * kernels, 1.0, "dispatch")

    def cost_pass(self, ops, launch, dispatch=0.0, kv_range=None) -> list:
        """The costs of `ops` launched at `launch` seconds per kernel (`kernel_s`,
        `decode_kernel_s`), and, where a host dispatches them at `dispatch` seconds each
        (`dispatch_kernel_s`), that dispatch (`dispatch_op`)."""
        costs = [cost_op(op, launch, kv_range) for op in ops]
        if np.any(dispatch):
            costs.append(cost_op(self.dispatch_op(ops, dispatch), 0.0))
        return costs

    def decode_kernel_s(self, overhead_s, graphed):
        """Time per kernel launch in a decode pass: a graph's GPU-side gap where it replays one
        (`graphed`, a mask or a bool: `decode_rows`), else launched eagerly."""
        if np.ndim(graphed):
            return np.where(graphed, overhead_s, overhead_s + self.launch_s)
        return overhead_s if graphed else overhead_s + self.launch_s

    def cpu_s(self, sequences):
        """CPU time of one iteration over `sequences` sequences."""
        return self.step_s + self.per_sequence_s * sequences

    def relay_s(self, sequences, pp):
        """Serial host time a pipeline-parallel step of one micro-batch of `sequences` pays for
        handing its sampled tokens from rank to rank (`pp_hop_s`): pp - 1 hops per micro-batch, and
        the pp micro-batches in flight relay one after another, so pp (pp - 1) hops per step."""
        return self.pp_hop_s * pp * (pp - 1) * sequences

    def relay_op(self, sequences, pp, passes=1.0) -> Op:
        """`relay_s` as an op on the serial `relay` stream: it adds to the step whatever overlaps."""
        return host_op("pp_relay", self.relay_s(sequences, pp), passes, "relay")

    def kv_budget(
        self, capacity, weights, others, fraction=None, utilization=None, parallel=1, dp_attention=False
    ) -> tuple:
        """(bytes per GPU a serving deployment gives its KV cache, the memory that budget is taken
        from in words for a message, whether it is a share of the whole memory that
        gpu_memory_utilization raises): `capacity` the GPU's memory, `weights` its weights, `others`
        what activations and the runtime's overhead hold.
        `fraction`: a share of what those leave (TensorRT-LLM's kv_cache_free_gpu_mem_fraction).
        `utilization`: a share of the whole memory, the KV cache taking what is left of it: after
        weights, activations and overhead (vLLM's gpu_memory_utilization), or after the weights
        alone (SGLang's mem_fraction_static: the rest lives outside the share). Neither: the
        framework's own (vLLM 0.9; SGLang the memory less `sglang_reserved_bytes` for `parallel` =
        tp x pp GPUs; the others KV_FREE_FRACTION of what the rest leaves)."""
        sglang, gib = self.name == "sglang", capacity / 2**30
        of = f"{gib:.1f} GiB"
        if fraction is None and utilization is None:
            if sglang:
                kept = sglang_reserved_bytes(capacity, parallel, dp_attention)
                utilization = 1.0 - kept / capacity
                of = f"{gib:.1f} GiB less the {kept / 2**30:.1f} GiB SGLang keeps beside them"
            else:
                utilization = self.gpu_memory_utilization
            fraction = KV_FREE_FRACTION
        if utilization is None:
            return fraction * (capacity - weights - others), of, False
        if of == f"{gib:.1f} GiB":
            of = f"{utilization:g} x {of} (serving.scheduler.gpu_memory_utilization)"
        return utilization * capacity - weights - (0.0 if sglang else others), of, True

    def scheduler_defaults(self, memory_bytes: float, hardware: str, offline: bool) -> tuple:
        """(max_num_seqs, max_batched_tokens, chunked_prefill, admission) this framework starts with
        on a GPU of `memory_bytes` named `hardware` (module docstring: scheduler_defaults);
        max_num_seqs None: derived from the KV cache (`max_running`)."""
        gib = memory_bytes / 2**30
        if self.name == "vllm":
            big = gib >= 70 and "a100" not in hardware.lower()
            seqs = 1024 if big else 256
            tokens = (16384 if big else 8192) if offline else (8192 if big else 2048)
            return min(seqs, tokens), tokens, True, "on_demand"
        if self.name == "trtllm":
            return 2048, 8192, False, "reserve"
        if self.name == "sglang":
            return None, int(sglang_memory_settings(memory_bytes, 1)[0]), True, "on_demand"
        return 256, 8192, True, "on_demand"

    @staticmethod
    def max_running(kv_tokens: int, context_len: int) -> int:
        """SGLang's running-request cap when none is given, from its KV pool's tokens and the model's
        context length (module docstring: scheduler_defaults)."""
        derived = min(max(int(kv_tokens / max(context_len, 1) * 512), 2048), 4096)
        return max(min(derived, kv_tokens // 2), 1)

    def step_op(self, sequences, passes=1.0) -> Op:
        """The CPU work of `passes` iterations over `sequences` sequences, as an op on the
        framework's stream (added to the step, or overlapped with it: `overlap`)."""
        return host_op("framework_step", self.cpu_s(sequences), passes, "cpu")


def host_op(name: str, seconds, passes, stream: str) -> Op:
    """Host time of the framework (no FLOPs, no bytes, no kernels) on `stream`, `passes` times."""
    return Op(
        name=name,
        kind="framework",
        flops=0.0,
        bytes=0.0,
        count=passes,
        kernels=0.0,
        fixed_s=seconds,
        stream=stream,
    )


EAGER_LAUNCH_S = 4e-6
TRTLLM_PP_HOP_S = 8e-6  # per sequence per pipeline hop (module docstring)
SGLANG_SWA_FULL_TOKENS_RATIO = 0.8  # SGLang server_args default (module docstring: window_kv_share)
VLLM_GPU_MEMORY_UTILIZATION = 0.9  # vLLM engine argument default (module docstring)
# vLLM's default CUDA-graph capture sizes up to its 512 cap (module docstring: graph_sizes)
VLLM_CAPTURE_SIZES = (1, 2, 4, *range(8, 256, 8), *range(256, 513, 16))
# SGLang's default cuda_graph_bs up to its largest cuda_graph_max_bs (module docstring: graph_sizes)
SGLANG_CAPTURE_SIZES = (1, 2, 4, 8, 12, *range(16, 257, 8), *range(272, 512, 16), 512)
KV_FREE_FRACTION = 0.9  # TensorRT-LLM kv_cache_free_gpu_mem_fraction default (module docstring)

ENGINE_STEP_S, ENGINE_PER_SEQUENCE_S = 5e-4, 2e-6  # CPU iteration of a serving engine (module docstring)


def _serving_engine(name: str, help_text: str, **own) -> Framework:
    """vLLM, SGLang and TensorRT-LLM alike: decode from CUDA graphs, prefill launched eagerly, the
    same CPU iteration overlapped with the GPU's step; `own`: what each does its own way."""
    return Framework(
        name,
        True,
        True,
        EAGER_LAUNCH_S,
        ENGINE_STEP_S,
        ENGINE_PER_SEQUENCE_S,
        True,
        help_text,
        custom_allreduce=True,
        **own,
    )


FRAMEWORKS = {
    "vllm": _serving_engine(
        "vllm",
        "vLLM: CUDA-graph decode, async scheduling (vLLM >= 0.14)",
        gpu_memory_utilization=VLLM_GPU_MEMORY_UTILIZATION,
        graph_sizes=VLLM_CAPTURE_SIZES,
    ),
    "sglang": _serving_engine(
        "sglang",
        "SGLang: CUDA-graph decode, overlap scheduler",
        window_kv_share=SGLANG_SWA_FULL_TOKENS_RATIO,
        mixed_batches=False,
        graph_sizes=SGLANG_CAPTURE_SIZES,
    ),
    "trtllm": _serving_engine(
        "trtllm",
        "TensorRT-LLM (PyTorch backend): CUDA-graph decode, overlap scheduler",
        pp_hop_s=TRTLLM_PP_HOP_S,
        window_kv_share=1.0,
    ),
    "hf": Framework(
        "hf",
        False,
        True,
        EAGER_LAUNCH_S,
        1e-3,
        0.0,
        False,
        "eager PyTorch launching fused kernels (research stacks; HuggingFace generate with fused kernels)",
        torch_kernels=True,
    ),
    "transformers": Framework(
        "transformers",
        False,
        True,
        0.0,
        1e-3,
        0.0,
        False,
        "HuggingFace transformers' modelling code run eagerly (generate, DynamicCache)",
        dispatch_s=DISPATCH_S,
        unfused=True,
        torch_kernels=True,
    ),
    "kernel": Framework(
        "kernel", True, False, 0.0, 0.0, 0.0, False, "kernel time only (no framework)", custom_allreduce=True
    ),
}


# SGLang's settings by GPU memory (server_args `_handle_gpu_memory_settings`): below this many GiB,
# chunked_prefill_size, and cuda_graph_max_bs below TP4 and from TP4
SGLANG_BY_MEMORY = (
    (20, 2048, 8, 8),
    (35, 2048, 24, 80),
    (60, 4096, 32, 160),
    (160, 8192, 256, 512),  # H100, A100 80 GB, H200
    (float("inf"), 16384, 512, 512),  # B200
)


def sglang_memory_settings(memory_bytes, tp: int) -> tuple:
    """(chunked_prefill_size, cuda_graph_max_bs) SGLang sets on GPUs of `memory_bytes` (per point
    of a sweep) at tensor parallelism `tp` (SGLANG_BY_MEMORY)."""
    gib = np.asarray(memory_bytes, float) / 2**30
    below = [gib < bound for bound, *_ in SGLANG_BY_MEMORY]
    chunk = np.select(below, [c for _, c, _, _ in SGLANG_BY_MEMORY])
    graphs = np.select(below, [wide if tp >= 4 else narrow for _, _, narrow, wide in SGLANG_BY_MEMORY])
    return chunk.astype(float), graphs.astype(float)


def sglang_reserved_bytes(capacity: float, parallel: int, dp_attention: bool = False) -> float:
    """Memory SGLang keeps outside its static share (weights and KV pool) on a GPU of `capacity`
    bytes, with `parallel` = tp x pp GPUs (module docstring: gpu_memory_utilization)."""
    gib = capacity / 2**30
    if gib < 35:
        reserved = 2.8 + parallel / 10
    elif gib < 90:
        reserved = 9.5 + parallel / 2
    elif gib < 160:
        reserved = 12 + parallel / 2
    else:
        reserved = 32.0
    return (reserved + (4.0 if dp_attention else 0.0)) * 2**30


def framework(name: str) -> Framework:
    try:
        return FRAMEWORKS[name]
    except KeyError:
        raise UserError(
            f"runtime.framework: unknown framework {name!r}; valid: {', '.join(FRAMEWORKS)}"
        ) from None
