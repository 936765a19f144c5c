"""The engine: for one model / layout / dtype choice, evaluate every sweep point at once.

Inputs are numpy arrays over points (workload sizes, hardware rows); outputs are columns of the
result keys in SPEC.md. Phase times: prefill of the whole batch (TTFT) and the mean decode step
over the output, integrated exactly over the growing KV (see `ops.cost_op`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import numpy as np

from roofline.simulator import eager_hf, economics
from roofline.simulator.columns import MemoryColumns, PointColumns
from roofline.simulator.decode_loop import SpecLevel, draft_models, level_ops
from roofline.simulator.efficiency import EfficiencyTable
from roofline.simulator.forward import forward_ops, resolve
from roofline.simulator.kernel_scales import FP8_CACHE_ATTENTION
from roofline.simulator.kvplan import NONE, HeadGroup, KVPlan, window
from roofline.simulator.layout import Layout
from roofline.simulator.memory import KVModel, activation_terms, max_batch, max_context, weight_bytes_per_gpu
from roofline.simulator.model import ModelArch
from roofline.simulator.opinputs import OpInputs, Shape, above_one
from roofline.simulator.ops import BOUND_NAMES, cost_op
from roofline.simulator.phases import PhaseTotals, scaled, tagged
from roofline.simulator.runplan import NO_METHODS, StackPlan, split_plan

ATTENTION_FLOATS = ("fp32", "bf16", "fp16")  # formats FlashAttention-style kernels compute in by default


@dataclass(frozen=True)
class Dtypes:
    weights: str = "bf16"
    activations: str = "bf16"
    kv: str = "bf16"
    weight_bytes: float | None = None  # bytes per weight incl. quantisation scales (None: the dtype's)
    attention: str = "auto"  # the attention kernel's compute format; auto: see `attention_compute`
    attention_weights: str = "auto"  # the attention projections' weights; auto: `weights`
    framework: str = ""  # runtime.framework: how `auto` resolves the attention format

    @classmethod
    def from_values(cls, values: dict) -> Dtypes:
        """The `dtype.*` fields of a scenario's values (the schema names the fields), and the
        framework, whose kernels decide what `dtype.attention: auto` computes in."""
        fields = {path.split(".", 1)[1]: v for path, v in values.items() if path.startswith("dtype.")}
        return cls(**fields, framework=str(values.get("runtime.framework") or ""))

    @property
    def attention_compute(self) -> str:
        """The format attention computes in. Attention is its own kernel: W8A8 or FP8 GEMMs leave it
        in 16-bit (vLLM and SGLang run FlashAttention/FlashInfer in bf16 unless an FP8 attention
        kernel such as FlashAttention-3 FP8 is chosen). `auto` is the activation format when that is
        a 16- or 32-bit float, else bf16 -- but FP8 where the framework computes in FP8 over an FP8
        KV cache under these activations (kernel_scales.FP8_CACHE_ATTENTION: TensorRT-LLM under an FP8 or
        NVFP4 checkpoint); an explicit format is taken as given."""
        if self.attention != "auto":
            return self.attention
        if self.kv == "fp8" and self.activations in FP8_CACHE_ATTENTION.get(self.framework, ()):
            return "fp8"
        return self.activations if self.activations in ATTENTION_FLOATS else "bf16"


@dataclass
class Workload:
    """Arrays over points (broadcastable)."""

    batch: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    shared: np.ndarray
    chunk: np.ndarray  # 0 = whole prompt in one pass


@dataclass
class HardwareColumns:
    """Per-point hardware values gathered from the rows of a list of Hardware."""

    row: np.ndarray
    names: list

    @classmethod
    def gather(cls, hw_list, row):
        self = cls(row, [hw_list[i].name for i in range(len(hw_list))])
        self.hw_list = hw_list
        return self

    def col(self, attr):
        return np.array([getattr(h, attr) for h in self.hw_list], dtype=float)[self.row]

    def peak(self, dtype):
        return np.array([h.peak(dtype) for h in self.hw_list])[self.row]

    def flag(self, attr):
        return np.array([bool(getattr(h, attr)) for h in self.hw_list])[self.row]


def _phase(ctx: OpInputs, model: ModelArch, layout: Layout, fw, overhead_s, dispatch, kv_range=None):
    """The costed ops of one phase under framework `fw` (`Framework.cost_pass`)."""
    return fw.cost_pass(forward_ops(ctx, model, layout), overhead_s, dispatch, kv_range)


def evaluate(
    model: ModelArch,
    layout: Layout,
    dtypes: Dtypes,
    hw: HardwareColumns,
    eff: EfficiencyTable,
    wl: Workload,
    usd_per_gpu_hour,
    overhead_bytes,
    plan: StackPlan = NO_METHODS,
    loop: SpecLevel | None = None,
    fabric=None,
    host_capacity=None,
) -> PointColumns:
    """All result columns for the points of one structural group under a KV plan and, with
    speculative decoding, a draft/verify decode loop. `host_capacity`: host memory per GPU in
    bytes over the points (None: each hardware row's `host_memory_bytes`)."""
    kv, extras = split_plan(plan)
    if extras.agent is not None:
        raise ValueError(
            "a chunked-agent stack runs as several calls: sweep dispatches it to agent.evaluate_agent"
        )
    tp, pp, dp, cp = layout.tp, layout.pp, layout.dp, layout.cp
    gpus = layout.gpus
    dep = resolve(model, layout, dtypes, hw, eff, fabric)
    shard, rates, fmt, overhead_s = dep.shard, dep.rates, dep.fmt, dep.overhead_s
    # Memory holds the 16-bit residual stream and recurrent state even when GEMMs take 8-bit inputs.
    wb, ab, kb = fmt.wb, fmt.rb, fmt.kb
    bw = rates.bw
    b = np.ceil(wl.batch / dp)  # sequences per data-parallel replica
    P, O, S, chunk = wl.prompt, wl.output, wl.shared, wl.chunk

    # Prefill: the shared prefix once, then every suffix; chunked into passes of `chunk` tokens.
    suffix_tokens = b * (P - S)
    tokens = S + suffix_tokens
    passes = np.where(
        chunk > 0,
        np.ceil(S / np.maximum(chunk, 1)) + np.ceil(suffix_tokens / np.maximum(chunk, 1)),
        (S > 0) + (suffix_tokens > 0) * 1.0,
    )
    passes = np.maximum(passes, 1.0)
    # The largest pass's share of the tokens: every pass is full but the last of the prefix and of
    # the suffixes, so a prompt one token past a chunk boundary adds a one-token pass.
    largest = np.maximum(S, suffix_tokens)
    largest = np.where(chunk > 0, np.minimum(chunk, largest), largest)
    largest_share = np.minimum(largest / np.maximum(tokens, 1.0), 1.0)

    fw = layout.stack(hw.col("host_cpu_factor"), hw.col("memory_bytes"))
    prefill_overhead = fw.kernel_s(overhead_s, "prefill")
    prefill_dispatch = fw.dispatch_kernel_s("prefill")

    def totals(costs):
        return PhaseTotals.of(
            costs, layout.overlap, rates.mfu_peak, bw, (tp, pp, dp), extras.host_overlap, fw.overlap
        )

    # transformers' SDPA over a StaticCache attends its whole buffer, the prompt and the output
    # (eager_hf.masks_static_buffer); other stacks attend what the cache holds
    buffer = P + O if fw.unfused and layout.masks_static_buffer else None

    def prefill_ops(model_, plan_, tag=""):
        shape = Shape(
            phase="prefill",
            rows=tokens / passes / cp,  # each CP rank holds 1/cp of the tokens
            passes=passes,
            batch=b,
            hidden=model_.hidden_size,
            prompt=P,
            shared=S,
            buffer=buffer,
        )
        ctx = OpInputs(shape, shard, rates, fmt, *split_plan(plan_))
        costs = _phase(ctx, model_, layout, fw, prefill_overhead, prefill_dispatch)
        if above_one(pp):
            # Passes stream through pp equal stages (a flow shop of identical machines): the
            # makespan is the sum of the passes' stage times plus pp - 1 stage times of the largest
            # pass, (serial + (pp - 1) x largest pass) / pp, op by op. The largest pass is costed
            # as one pass of its rows (weights are read per pass whatever its size), its attention
            # as its share of the prompt's tokens. Equal passes give (passes + pp - 1) stage-times
            # of one pass; a one-token last pass adds only its own small stage times.
            one = replace(ctx, shape=replace(shape, rows=largest / cp, passes=1.0))
            big = _phase(one, model_, layout, fw, prefill_overhead, prefill_dispatch)
            assert [c.name for c in big] == [c.name for c in costs]
            costs = [
                replace(
                    c,
                    time_s=(
                        c.time_s
                        + (pp - 1) * (c.time_s * largest_share if c.kind == "attention_prefill" else g.time_s)
                    )
                    / pp,
                )
                for c, g in zip(costs, big)
            ]
        if not tag:  # one scheduler iteration per pass, over the batch's sequences
            per_pass = np.maximum(b / passes, 1.0)
            costs.append(cost_op(fw.step_op(per_pass, passes), overhead_s))
            if above_one(pp):
                costs.append(cost_op(fw.relay_op(per_pass, pp, passes), overhead_s))
        return tagged(costs, tag)

    # Decode: O - 1 steps after the first token, KV length from P + 1 to P + O - 1.
    a = P + 1.0
    kv_range = (a, np.maximum(P + O - 1.0, a))

    # Pipeline parallelism keeps min(b, pp) micro-batches of max(b / pp, 1) sequences in flight
    # (a micro-batch holds at least one sequence): each advances one token per round, and a round
    # is every stage's pass over one micro-batch, i.e. the whole model at the micro-batch size.
    # With b < pp stages idle; one sequence's stages still run one after another. Context
    # parallelism splits each micro-batch's GEMM rows across cp ranks, while every rank attends
    # all of them over its 1/cp of the KV.
    micro = np.maximum(b / pp, 1.0)
    # A framework that captured decode graphs for some batch sizes replays the smallest that holds
    # the micro-batch, padded with dummy sequences (their rows run through every token-parallel op;
    # each holds one token, so their attention is not counted), or launches the pass eagerly above
    # the largest (Framework.decode_rows).
    graph_rows, graphed = fw.decode_rows(micro)
    decode_overhead = fw.decode_kernel_s(overhead_s, graphed)
    decode_dispatch = fw.dispatch_kernel_s("decode", graphed)

    def decode_ops(model_, plan_, queries=1.0, tag=""):
        shape = Shape(
            phase="decode",
            rows=graph_rows * queries / cp,
            passes=1.0,
            batch=micro,
            hidden=model_.hidden_size,
            prompt=P,
            shared=S,
            queries=queries,
            buffer=buffer,
        )
        ctx = OpInputs(shape, shard, rates, fmt, *split_plan(plan_))
        costs = _phase(ctx, model_, layout, fw, decode_overhead, decode_dispatch, kv_range)
        if not tag:  # the target model's pass: one scheduler iteration over the batch
            costs.append(cost_op(fw.step_op(b), overhead_s))
            if above_one(pp):
                costs.append(cost_op(fw.relay_op(micro, pp), overhead_s))
        return tagged(costs, tag)

    pre_costs = prefill_ops(model, plan)
    drafts = draft_models(loop)
    for i, (draft, draft_plan, _) in enumerate(drafts):
        if draft is not None:  # a separate draft model prefills the prompt too
            pre_costs += prefill_ops(draft, draft_plan, "draft" if i == 0 else f"draft{i}")
    prefill = totals(pre_costs)
    if loop is None:
        decode = totals(decode_ops(model, plan))
    else:
        weighted = level_ops(loop, model, plan, decode_ops)
        decode = totals([c for costs, w in weighted for c in scaled(costs, w)])

    ttft = prefill.time_s
    tpot = decode.time_s
    batch_total = wl.batch  # the replicas together serve exactly the requested batch

    # Memory per GPU.
    all_weights = weight_bytes_per_gpu(model, tp, pp, wb, layout.ep, fmt.attention_wb)
    weights = np.asarray(all_weights * (1.0 - extras.weight_host_fraction))  # 0-d
    host_weights = np.asarray(all_weights * extras.weight_host_fraction)  # offloaded (weight_offload)
    windows = layout.window_kv_share
    copies = None
    if fw.unfused:  # transformers' copies of a layer's cache during a step (eager_hf.step_copies)
        copies = partial(
            eager_hf.step_copies, tp=tp, repeat_kv=layout.repeats_kv, static_cache=layout.static_cache
        )
    kvm = KVModel(model, tp, pp, kb, ab, kv, cp, windows, copies)
    for draft, draft_plan, cache_tokens in drafts:
        if draft is not None:
            weights = weights + weight_bytes_per_gpu(draft, tp, pp, wb, attention_wb=fmt.attention_wb)
            kvm.add(KVModel(draft, tp, pp, kb, ab, draft_plan, cp, windows))
        if cache_tokens:  # a draft cache of its own, e.g. TriForce's retrieval cache
            kvm.add(
                KVModel(model, tp, pp, kb, ab, KVPlan(groups=(HeadGroup(1.0, window(cache_tokens), NONE),)))
            )
    C = P + O
    kv_final = kvm.bytes(b, C, P, S)  # after the last token
    kv_bytes = np.maximum(kv_final, kvm.prefill_bytes(b, P, S, chunk))  # the peak (prefill may hold more)
    # transformers' attention mask over a StaticCache: a row of the buffer per query row (eager_hf)
    mask_bytes = eager_hf.MASK_BYTES if buffer is not None else 0.0
    acts = activation_terms(model, tp, ab, P, S, chunk, cp, layout.all_logits, mask_bytes * C)
    act_bytes = np.maximum.reduce([alpha + beta * b for alpha, beta in acts])
    capacity = hw.col("memory_bytes")
    total = weights + kv_bytes + act_bytes + overhead_bytes
    room = capacity - weights - overhead_bytes
    # Host memory per GPU: host-resident KV and offloaded weights against the host's capacity.
    host_total = host_weights + kvm.host_bytes(b, C, P)
    host_capacity = hw.col("host_memory_bytes") if host_capacity is None else host_capacity
    host_room = host_capacity - host_weights
    mb = max_batch(room, kvm, C, P, S, acts, chunk, host_room) * dp
    mc = max_context(room, kvm, b, S, chunk, model, tp, ab, O, cp, host_room, layout.all_logits, mask_bytes)

    metrics = economics.point_metrics(
        batch_total,
        P,
        O,
        ttft,
        tpot,
        gpus,
        usd_per_gpu_hour,
        hw.col("tdp_w"),
        prefill.utilisation,
        decode.utilisation,
    )
    memory = MemoryColumns(
        weights_bytes=weights,
        kv_cache_bytes=kv_bytes,
        activation_bytes=act_bytes,
        overhead_bytes=np.full(np.shape(P), float(overhead_bytes))
        if np.ndim(overhead_bytes) == 0
        else overhead_bytes,
        total_bytes=total,
        capacity_bytes=capacity,
        kv_cache_final_bytes=kv_final,
        host_bytes=host_total,
        host_capacity_bytes=host_capacity,
    )
    return PointColumns.build(
        metrics,
        ttft_s=ttft,
        tpot_s=tpot,
        prefill=prefill,
        decode=decode,
        memory=memory,
        fits=(total <= capacity) & (host_total <= host_capacity),
        max_batch=mb,
        max_context_tokens=mc,
        batch_per_replica=b,
    )


__all__ = ["Layout", "Dtypes", "Workload", "HardwareColumns", "evaluate", "BOUND_NAMES"]
