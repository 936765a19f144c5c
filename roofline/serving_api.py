"""The I/O edge of `roofline serve`: read the scenario, its trace and histogram files, size the KV
cache, run the serving simulator (`roofline.simulator.serving`) and return its result.

`serve(scenario, overrides)` accepts what `simulate` accepts (a path, a mapping, a Scenario) with a
`serving:` section and returns a `ServeResult` (`.record` is the SPEC JSON object, `.timelines` the
per-request timelines and the full step series).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from roofline.fileio import read_text
from roofline.simulator.errors import UserError
from roofline.simulator.memory import KVModel
from roofline.simulator.scenario import ScenarioError
from roofline.simulator.serving.config import ServingConfig
from roofline.simulator.serving.replica import Engine
from roofline.simulator.serving.results import resample, summarise
from roofline.simulator.serving.scheduler import simulate as run_replica
from roofline.simulator.serving.stepcost import FastStep
from roofline.simulator.serving.traces import parse_trace
from roofline.simulator.serving.workload import Requests, from_trace, generate, parse_histogram, subset
from roofline.simulator.units import GIB

MAX_TRACE_BYTES = 512 * 2**20


@dataclass
class ServeResult:
    record: dict
    timelines: list  # one scheduler.Timeline per data-parallel replica
    requests: list  # the Requests each replica served


def _read(path: str, base: Path | None, what: str) -> str:
    p = Path(path)
    if not p.is_absolute() and base is not None and not p.exists():
        p = base / p  # relative to the scenario file when not found from the working directory
    return read_text(str(p), MAX_TRACE_BYTES, what, lambda msg: UserError(msg))


def _requests(cfg: ServingConfig, base: Path | None) -> Requests:
    if cfg.trace is not None:
        return from_trace(parse_trace(_read(cfg.trace, base, "trace file"), cfg.trace), cfg)
    histograms = {}
    for spec in (cfg.prompt_tokens, cfg.output_tokens):
        if isinstance(spec, dict) and spec["dist"] == "histogram":
            histograms[spec["file"]] = parse_histogram(
                _read(spec["file"], base, "length histogram"), spec["file"]
            )
    return generate(cfg, histograms)


def kv_capacity(sc, steps, cfg: ServingConfig, simulate) -> tuple:
    """(KV blocks per replica, bytes per block per GPU, recurrent-state blocks per sequence, host
    bytes per GPU). The memory left after weights, runtime overhead and the activations of a full
    step (`max_batched_tokens` rows, from `simulate`'s memory model) times kv_memory_fraction, in
    blocks of block_tokens tokens of KV (`memory.KVModel`'s bytes per token on the most loaded GPU)."""
    base = dict(sc.base)
    base.update(
        {
            "workload.batch": 1,
            "workload.prompt_tokens": cfg.max_batched_tokens,
            "workload.output_tokens": 1,
            "workload.shared_prefix_tokens": 0,
            "workload.prefill_chunk_tokens": None,
        }
    )
    rec = simulate(replace(sc, base=base)).records()[0]
    mem = rec["memory"]
    room = mem["capacity_bytes"] - mem["weights_bytes"] - mem["overhead_bytes"] - mem["activation_bytes"]
    if room <= 0:
        raise UserError(
            f"{sc.name}: nothing is left for the KV cache: weights {mem['weights_bytes'] / GIB:.1f} GiB + activations "
            f"{mem['activation_bytes'] / GIB:.1f} GiB + overhead {mem['overhead_bytes'] / GIB:.1f} GiB per GPU fill its "
            f"{mem['capacity_bytes'] / GIB:.1f} GiB; use more GPUs (tp, pp), lower-precision weights, or a smaller "
            "max_batched_tokens"
        )
    lay, fmt = steps.layout, steps.dep.fmt
    kv = KVModel(steps.model, lay.tp, lay.pp, fmt.kb, fmt.ab, steps.plan, lay.cp)
    b = cfg.block_tokens
    block_bytes = float(np.asarray(kv.per_sequence(b, b) - kv.state))
    if block_bytes <= 0:  # attention-free model: only recurrent state
        block_bytes = float(max(kv.state, 1.0))
    state_blocks = int(np.ceil(float(kv.state) / block_bytes)) if kv.state else 0
    blocks = int(max(room, 0.0) * cfg.kv_memory_fraction // block_bytes)
    return blocks, block_bytes, state_blocks, rec


def serve(scenario, overrides=(), name: str | None = None) -> ServeResult:
    """Simulate serving the scenario's traffic (its `serving:` section) on its deployment."""
    from roofline.api import load_hardware, load_scenario, simulate, step_model, versions

    sc = load_scenario(scenario, overrides, name)
    if sc.serving is None:
        raise ScenarioError(
            [f"{sc.name}: no serving: section; `roofline serve` needs one (see docs/serving.md)"]
        )
    if sc.sweep:
        raise ScenarioError([f"{sc.name}: sweep: `roofline serve` runs one configuration; remove the sweep"])
    cfg = ServingConfig.from_values(sc.serving)
    base_dir = Path(scenario).parent if isinstance(scenario, (str, Path)) else None
    req = _requests(cfg, base_dir)
    steps = step_model(sc)
    fast = FastStep(steps)
    blocks, block_bytes, state_blocks, rec = kv_capacity(sc, steps, cfg, simulate)
    b = cfg.block_tokens
    need = -(-(req.prompt + req.output) // b) + state_blocks
    worst = int(np.argmax(need))
    if need[worst] > blocks:
        raise UserError(
            f"{sc.name}: request {worst} ({int(req.prompt[worst])} prompt + {int(req.output[worst])} output tokens) "
            f"needs {int(need[worst])} KV blocks of {b} tokens, but the KV cache holds {blocks} on this deployment; "
            "use more GPUs (tp), a KV-compressing method, or shorter requests"
        )
    hw = load_hardware(sc.base["hardware"])
    host_bytes = (
        sc.base["runtime.host_memory_GiB"] * GIB
        if sc.base["runtime.host_memory_GiB"] is not None
        else float(hw.host_memory_bytes)
    )
    host_cache = host_bytes if cfg.host_GiB is None else cfg.host_GiB * GIB
    lay = steps.layout
    engine = Engine(
        step=fast,
        block_tokens=b,
        total_blocks=blocks,
        state_blocks=state_blocks,
        block_bytes=block_bytes,
        host_rate=float(np.asarray(steps.dep.rates.host_rate)),
        swap_blocks=int(max(host_bytes - host_cache, 0.0) // block_bytes)
        if cfg.host_GiB
        else int(host_bytes // block_bytes),
        host_cache_blocks=int(host_cache // block_bytes) if cfg.prefix_cache else 0,
        max_num_seqs=cfg.max_num_seqs,
        max_batched_tokens=cfg.max_batched_tokens,
        preemption=cfg.preemption,
        reserve=cfg.admission == "reserve",
        policy=cfg.policy,
        prefix_cache=cfg.prefix_cache,
    )
    peak = float(np.asarray(steps.dep.rates.gemm_peak))
    bw = float(np.asarray(steps.dep.rates.bw))
    pp = lay.pp

    def power(flops, byts, dt):
        with np.errstate(invalid="ignore", divide="ignore"):
            util = np.maximum(flops / pp / (dt * peak), byts / pp / (dt * bw))
        return gpu_power(hw.tdp_w, np.nan_to_num(util))

    from roofline.simulator.economics import gpu_power_w as gpu_power

    dp = lay.dp
    parts = [subset(req, r, dp) for r in range(dp)]
    timelines = [run_replica(p, engine, power) for p in parts if p.n]
    price = sc.base["pricing.usd_per_gpu_hour"]
    price = hw.usd_per_gpu_hour if price is None else price
    record = {
        "scenario": sc.name,
        "model": rec["model"],
        "hardware": rec["hardware"],
        **summarise(
            [p for p in parts if p.n],
            timelines,
            gpus=lay.gpus,
            total_blocks=blocks,
            usd_per_gpu_hour=price,
            tdp_w=hw.tdp_w,
            slo_ttft=cfg.slo_ttft_s,
            slo_tpot=cfg.slo_tpot_s,
        ),
        "kv_cache": {
            "blocks": blocks,
            "block_tokens": b,
            "block_bytes": block_bytes,
            "tokens": blocks * b,
        },
        "time_series": resample(timelines[0].series, blocks),
        "provenance": {
            "calibration": rec["provenance"]["calibration"],
            "step_cost": "exact fast path" if fast.exact else "StepModel.cost per step (fast path disagreed)",
            "versions": versions(),
            "warnings": list(rec["provenance"].get("warnings", [])),
        },
    }
    return ServeResult(record, timelines, parts)
