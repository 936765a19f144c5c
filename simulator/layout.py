"""The deployment layout: parallel degrees and how communication is run, and the GPUs they take.

A scenario's dotted-path values become a `Layout` in one place (`Layout.from_values`); the number of
GPUs is defined here once (`Layout.gpus`). What each degree does to the ops is the engine's and
`parallel`'s business; which layouts a plan tries is `planner`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from roofline.simulator.eager_hf import masks_static_buffer, repeats_kv
from roofline.simulator.frameworks import Framework, framework


def ep_splits(ep: int, tp: int, gpus: int) -> bool:
    """Whether expert parallelism `ep` fits tensor-parallel groups of `tp` inside `gpus` (tp x dp)
    GPUs: 1, or whole tp groups (a multiple of tp) that divide the GPUs."""
    return ep == 1 or (ep % tp == 0 and gpus % ep == 0)


def lockstep_ranks(ep: int, tp: int) -> int:
    """The data-parallel ranks of tp GPUs that expert parallelism `ep` makes share their experts
    (ep / tp where ep > tp, else 1): they step in lockstep (`serving.lockstep`)."""
    return ep // tp if ep > tp else 1


@dataclass(frozen=True)
class Layout:
    tp: int = 1
    pp: int = 1
    cp: int = 1
    dp: int = 1
    ep: int = 1
    overlap: str = "serial"  # serial | overlap: communication hidden behind compute when possible
    cp_variant: str = "pass-kv"  # pass-kv | pass-q | ulysses
    custom_allreduce: bool = True  # one-shot/two-shot peer all-reduce inside an NVLink domain
    window_kv_share: float = 0.0  # sliding-window layers' KV beyond the window (Framework.window_kv_share)
    framework: str = "vllm"  # the serving stack (simulator/frameworks.py)
    cuda_graphs: bool | None = None  # decode from captured CUDA graphs; None: the framework's default
    cpu_overlap: bool | None = None  # CPU iteration hidden behind the GPU step; None: the framework's
    cpu_step_s: float | None = None  # CPU time per iteration; None: the framework's
    cpu_per_sequence_s: float | None = None  # and per sequence in the batch
    pp_relay_s: float | None = None  # serial host time per sequence per pipeline hop; None: the framework's
    dispatch_s: float | None = None  # host dispatch per eager kernel beside the GPU; None: the framework's
    cuda_graph_batch_sizes: tuple | None = None  # captured decode batch sizes; None: every size
    moe_routing: str = "power_law"  # how the router spreads tokens over experts (grouped_gemm)
    attn_implementation: str | None = None  # transformers' attention path (eager_hf); None: its default
    cache_implementation: str | None = None  # transformers' KV cache (eager_hf); None: static with graphs
    prefill_logits: str | None = None  # the prompt rows a prefill computes logits for; None: last

    @property
    def all_logits(self) -> bool:
        """Whether a prefill computes every prompt row's logits (`runtime.prefill_logits: all`)."""
        return self.prefill_logits == "all"

    @property
    def static_cache(self) -> bool:
        """Whether transformers' KV cache is a StaticCache (eager_hf): as `cache_implementation`
        says, else under CUDA graphs (which need one)."""
        if self.cache_implementation is not None:
            return self.cache_implementation == "static"
        return bool(self.cuda_graphs)

    @property
    def repeats_kv(self) -> bool:
        """Whether transformers' attention copies the KV heads to every query head first
        (eager_hf.repeats_kv of `attn_implementation` under `static_cache`)."""
        return repeats_kv(self.attn_implementation, self.static_cache)

    @property
    def masks_static_buffer(self) -> bool:
        """Whether transformers' attention runs SDPA over its StaticCache's whole buffer under a mask
        (eager_hf.masks_static_buffer of `attn_implementation` under `static_cache`)."""
        return masks_static_buffer(self.attn_implementation, self.static_cache)

    def stack(self, host_factor=1.0, memory_bytes=None) -> Framework:
        """The framework as this layout runs it on a host `host_factor` times as slow as the x86
        servers its CPU figures come from (Hardware.host_cpu_factor; per point in a sweep):
        its eager launches and CPU iteration scale by it; then `runtime.cuda_graphs` overrides its
        decode launches, `runtime.cpu_overlap` whether its CPU iteration hides behind the GPU step,
        `runtime.cpu_step_ms` / `cpu_per_sequence_us` that iteration's time, `runtime.pp_relay_us`
        a pipeline hop's and `runtime.dispatch_us` an eager kernel's dispatch (a measured host's, not
        scaled); without `runtime.cuda_graph_batch_sizes`,
        the largest decode graph the framework captures on GPUs of `memory_bytes` (per point) at
        this TP (`Framework.graph_cap`: SGLang's)."""
        fw = framework(self.framework)
        cap = (
            None
            if memory_bytes is None or self.cuda_graph_batch_sizes is not None
            else fw.graph_cap(memory_bytes, self.tp)
        )
        if cap is not None:
            fw = replace(fw, graph_max=cap)
        if np.any(np.asarray(host_factor) != 1.0):
            fw = replace(
                fw,
                launch_s=fw.launch_s * host_factor,
                dispatch_s=fw.dispatch_s * host_factor,
                step_s=fw.step_s * host_factor,
                per_sequence_s=fw.per_sequence_s * host_factor,
                pp_hop_s=fw.pp_hop_s * host_factor,
            )
        changes = {
            "decode_graphs": self.cuda_graphs,
            "overlap": self.cpu_overlap,
            "step_s": self.cpu_step_s,
            "per_sequence_s": self.cpu_per_sequence_s,
            "pp_hop_s": self.pp_relay_s,
            "dispatch_s": self.dispatch_s,
            "graph_sizes": self.cuda_graph_batch_sizes,
        }
        changes = {k: v for k, v in changes.items() if v is not None}
        return replace(fw, **changes) if changes else fw

    @property
    def gpus(self) -> int:
        """GPUs of one deployment: tp*pp*cp*dp (expert parallelism reuses the tp*dp GPUs)."""
        return self.tp * self.pp * self.cp * self.dp

    @property
    def lockstep_ranks(self) -> int:
        """Data-parallel ranks that share their experts and so step together (`lockstep_ranks`)."""
        return lockstep_ranks(self.ep, self.tp)

    @classmethod
    def from_values(cls, values: dict) -> Layout:
        """The layout of one point's scenario values ({'parallelism.tp': 2, 'runtime.overlap': ...})."""
        return cls(
            tp=values["parallelism.tp"],
            pp=values["parallelism.pp"],
            cp=values["parallelism.cp"],
            dp=values["parallelism.dp"],
            ep=values["parallelism.ep"],
            overlap=values["runtime.overlap"],
            # null: the framework's own (serving engines ship a peer all-reduce; eager PyTorch has NCCL).
            custom_allreduce=values["runtime.custom_allreduce"]
            if values["runtime.custom_allreduce"] is not None
            else framework(values["runtime.framework"]).custom_allreduce,
            window_kv_share=values["runtime.sliding_window_kv_share"]
            if values["runtime.sliding_window_kv_share"] is not None
            else framework(values["runtime.framework"]).window_kv_share,
            cp_variant=values["parallelism.cp_variant"],
            framework=values["runtime.framework"],
            cuda_graphs=values["runtime.cuda_graphs"],
            cpu_overlap=values["runtime.cpu_overlap"],
            cpu_step_s=_scaled(values["runtime.cpu_step_ms"], 1e-3),
            cpu_per_sequence_s=_scaled(values["runtime.cpu_per_sequence_us"], 1e-6),
            pp_relay_s=_scaled(values["runtime.pp_relay_us"], 1e-6),
            dispatch_s=_scaled(values["runtime.dispatch_us"], 1e-6),
            cuda_graph_batch_sizes=_sizes(values["runtime.cuda_graph_batch_sizes"]),
            moe_routing=values["runtime.moe_routing"],
            attn_implementation=values["runtime.attn_implementation"],
            cache_implementation=values["runtime.cache_implementation"],
            prefill_logits=values["runtime.prefill_logits"],
        )


def _sizes(value) -> tuple | None:
    """Captured batch sizes, ascending and once each (None: every size)."""
    return None if value is None else tuple(sorted({int(v) for v in value}))


def _scaled(value, unit: float):
    return None if value is None else float(value) * unit
