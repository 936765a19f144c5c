"""The I/O edge of `roofline serve`: read the scenario, its trace and histogram files, size the KV
cache, run the serving simulator (`roofline.simulator.serving`) and return its result.

`serve(scenario, overrides)` accepts what `simulate` accepts (a path, a mapping, a Scenario) with a
`serving:` section and returns a `ServeResult` (`.record` is the SPEC JSON object, `.timelines` the
per-request timelines and the full step series).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from roofline.fileio import read_text
from roofline.simulator.economics import gpu_power_w
from roofline.simulator.errors import UserError
from roofline.simulator.memory import KVModel
from roofline.simulator.scenario import ScenarioError
from roofline.simulator.serving.config import ServingConfig, serving_problems
from roofline.simulator.serving.disagg import Link, decode_requests, transfer_s
from roofline.simulator.serving.replica import Engine
from roofline.simulator.serving.results import request_view, resample, summarise
from roofline.simulator.serving.routing import simulate_routed
from roofline.simulator.serving.scheduler import groups as lockstep_groups
from roofline.simulator.serving.scheduler import simulate as run_replica
from roofline.simulator.serving.scheduler import simulate_group
from roofline.simulator.serving.stepcost import FastStep
from roofline.simulator.serving.traces import parse_trace
from roofline.simulator.serving.workload import Requests, from_trace, generate, parse_histogram, split
from roofline.simulator.units import GIB

MAX_TRACE_BYTES = 512 * 2**20
MAX_SERVE_POINTS = 1000  # a sweep runs the simulation once per point
# The KV hand-off over NVLink: the datasheet bandwidth at the efficiency and step latency
# `topology.nvlink` gives a scale-up link without a measured fit.
NVLINK_EFFICIENCY = 0.95
NVLINK_LATENCY_S = 2.5e-6


@dataclass
class ServeResult:
    record: dict
    timelines: list  # one replica.Timeline per replica (disaggregated: prefill replicas, then decode)
    requests: list  # the Requests each of those replicas served


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
    kv = KVModel(steps.model, lay.tp, lay.pp, fmt.kb, fmt.rb, steps.plan, lay.cp)
    b = cfg.block_tokens
    block_bytes = float(np.asarray(kv.per_sequence(b, b) - kv.state))
    if block_bytes <= 0:  # attention-free model: only recurrent state
        block_bytes = float(max(kv.state, 1.0))
    state_blocks = int(np.ceil(float(kv.state) / block_bytes)) if kv.state else 0
    blocks = int(max(room, 0.0) * cfg.kv_memory_fraction // block_bytes)
    return blocks, block_bytes, state_blocks, rec, _capped_kv(kv, b)


def _capped_kv(kv, b: int):
    """Context tokens -> KV bytes a sequence holds, where a window or a method caps it (the
    scheduler's blocks follow it: `Engine.blocks`); None where every token keeps its KV (one block
    per b tokens, exactly)."""

    def held(tokens):
        return np.asarray(kv.per_sequence(tokens, tokens), float) - float(kv.state)

    probe = np.array([b, 1e3 * b, 1e5], float)
    per_token = float(held(np.array([float(b)]))[0]) / b
    if np.allclose(held(probe), probe * per_token, rtol=1e-12):
        return None
    return held


@dataclass
class Pool:
    """One kind of replica: its layout, step costs, KV cache and scheduler settings."""

    engine: Engine
    fast: FastStep
    gpus: int  # per replica
    blocks: int
    block_bytes: float
    state_blocks: int
    power: object
    rec: dict  # the `simulate` record its memory was sized from
    steps: object


def _pool(sc, cfg: ServingConfig, hw, simulate, step_model) -> Pool:
    steps = step_model(sc)
    fast = FastStep(steps)
    blocks, block_bytes, state_blocks, rec, kv_bytes = kv_capacity(sc, steps, cfg, simulate)
    host_bytes = (
        sc.base["runtime.host_memory_GiB"] * GIB
        if sc.base["runtime.host_memory_GiB"] is not None
        else float(hw.host_memory_bytes)
    )
    host_cache = host_bytes if cfg.host_GiB is None else cfg.host_GiB * GIB
    lay = steps.layout
    host_rate = float(np.asarray(steps.dep.rates.host_rate))
    engine = Engine(
        step=fast,
        block_tokens=cfg.block_tokens,
        total_blocks=blocks,
        state_blocks=state_blocks,
        block_bytes=block_bytes,
        host_rate=host_rate,
        swap_blocks=int(max(host_bytes - (host_cache if cfg.prefix_cache else 0.0), 0.0) // block_bytes),
        host_cache_blocks=int(host_cache // block_bytes) if cfg.prefix_cache else 0,
        ssd_cache_blocks=int(cfg.ssd_GiB * GIB // block_bytes) if cfg.prefix_cache else 0,
        ssd_rate=min(cfg.ssd_GBps * 1e9, host_rate),
        max_num_seqs=cfg.max_num_seqs,
        max_batched_tokens=cfg.max_batched_tokens,
        preemption=cfg.preemption,
        reserve=cfg.admission == "reserve",
        chunked=cfg.chunked_prefill,
        policy=cfg.policy,
        prefix_cache=cfg.prefix_cache,
        kv_bytes=kv_bytes,
    )
    peak = float(np.asarray(steps.dep.rates.mfu_peak))  # as the step's own MFU
    bw = float(np.asarray(steps.dep.rates.bw))
    pp = lay.pp

    def power(flops, byts, dt):
        """Watts per GPU of each step: economics.gpu_power_w at the busier of MFU and MBU."""
        with np.errstate(invalid="ignore", divide="ignore"):
            util = np.maximum(flops / pp / (dt * peak), byts / pp / (dt * bw))
        return gpu_power_w(hw.tdp_w, np.nan_to_num(util))

    return Pool(engine, fast, lay.gpus // lay.dp, blocks, block_bytes, state_blocks, power, rec, steps)


def _check_fits(name: str, req, pool: Pool, b: int) -> None:
    eng = pool.engine
    if not eng.chunked and req.n and int(req.prompt.max()) > eng.max_batched_tokens:
        longest = int(np.argmax(req.prompt))
        raise UserError(
            f"{name}: request {longest}'s prompt ({int(req.prompt[longest])} tokens) is longer than "
            f"serving.scheduler.max_batched_tokens ({eng.max_batched_tokens}), and with chunked_prefill false "
            "a prompt runs whole in one step; raise max_batched_tokens to at least the longest prompt "
            "(TensorRT-LLM forces max_num_tokens >= the longest input plus max_batch_size) or set "
            "chunked_prefill true"
        )
    need = -(-(req.prompt + req.output) // b) + pool.state_blocks
    worst = int(np.argmax(need))
    if need[worst] > pool.blocks:
        raise UserError(
            f"{name}: request {worst} ({int(req.prompt[worst])} prompt + {int(req.output[worst])} output tokens) "
            f"needs {int(need[worst])} KV blocks of {b} tokens, but the KV cache holds {pool.blocks} on this "
            "deployment (per scheduler: one of pp with pipeline parallelism); use more GPUs (tp), a "
            "KV-compressing method, or shorter requests"
        )


def _with_layout(sc, tp: int, cp: int):
    base = dict(sc.base)
    base.update({"parallelism.tp": tp, "parallelism.cp": cp, "parallelism.pp": 1, "parallelism.dp": 1})
    base.update({"parallelism.ep": 1, "gpus": None})
    return replace(sc, base=base)


def _link(sc, hw, cfg: ServingConfig, load_fabric) -> Link:
    """NVLink when one scale-up domain holds both pools, else the scenario's fabric."""
    lanes = min(cfg.prefill_tp * cfg.prefill_cp, cfg.decode_tp)
    if cfg.prefill_gpus + cfg.decode_gpus <= hw.scale_up_domain and hw.scale_up_bandwidth > 0:
        return Link("nvlink", float(hw.scale_up_bandwidth) * NVLINK_EFFICIENCY, NVLINK_LATENCY_S, lanes)
    fab = load_fabric(sc.base["topology.fabric"])
    return Link(fab.name, float(fab.bandwidth) * float(fab.efficiency), float(fab.step_latency_s), lanes)


def _provenance(rec, pools, versions) -> dict:
    exact = all(p.fast.exact for p in pools)
    return {
        "calibration": rec["provenance"]["calibration"],
        "step_cost": "exact fast path" if exact else "StepModel.cost per step (fast path disagreed)",
        "versions": versions(),
        "warnings": list(rec["provenance"].get("warnings", [])),
    }


def serve(scenario, overrides=(), name: str | None = None):
    """Simulate serving the scenario's traffic (its `serving:` section) on its deployment: a
    ServeResult, or with a sweep (over any scenario field, `serving.*` ones included) a list of
    them, one per point (the first axis outermost), each record's `point` naming its values."""
    from roofline.api import load_scenario

    sc = load_scenario(scenario, overrides, name, require_workload=False)  # lengths: its serving section
    if sc.serving is None:
        raise ScenarioError(
            [f"{sc.name}: no serving: section; `roofline serve` needs one (see docs/serving.md)"]
        )
    axes = [*sc.sweep, *sc.serving_sweep]
    if not axes:
        return _serve_point(sc, scenario, {})
    points = 1
    for _, values in axes:
        points *= len(values)
    if points > MAX_SERVE_POINTS:
        raise ScenarioError(
            [
                f"{sc.name}: sweep: {points:,} points; `roofline serve` runs at most {MAX_SERVE_POINTS} (one run each)"
            ]
        )
    out = []
    for combo in itertools.product(*(values for _, values in axes)):
        point = {path: value for (path, _), value in zip(axes, combo)}
        base, serving = dict(sc.base), dict(sc.serving)
        for path, value in point.items():
            (serving if path.startswith("serving.") else base)[path] = value
        problems = serving_problems(serving)
        if problems:
            where = ", ".join(f"{k}={v}" for k, v in point.items())
            raise ScenarioError([f"{sc.name}: sweep point {where}: {p}" for p in problems])
        one = replace(sc, base=base, serving=serving, sweep=[], serving_sweep=[])
        out.append(_serve_point(one, scenario, point))
    return out


def _serve_point(sc, scenario, point: dict) -> ServeResult:
    from roofline.api import load_fabric, load_hardware, simulate, step_model, versions

    cfg = ServingConfig.from_values(sc.serving)
    base_dir = Path(scenario).parent if isinstance(scenario, (str, Path)) else None
    req = _requests(cfg, base_dir)
    hw = load_hardware(sc.base["hardware"])
    price = sc.base["pricing.usd_per_gpu_hour"]
    price = hw.usd_per_gpu_hour if price is None else price
    common = {
        "usd_per_gpu_hour": price,
        "tdp_w": hw.tdp_w,
        "slo_ttft": cfg.slo_ttft_s,
        "slo_tpot": cfg.slo_tpot_s,
    }
    b = cfg.block_tokens
    if cfg.prefill_gpus is not None:
        res = _serve_disaggregated(sc, cfg, req, hw, common, load_fabric, simulate, step_model, versions)
        res.record = {"scenario": sc.name, "point": point, **res.record}
        return res
    replica = _pool(sc, cfg, hw, simulate, step_model)
    lay = replica.steps.layout
    pool = _micro_batches(replica, lay.pp)
    _check_fits(sc.name, req, pool, b)
    parts, timelines = _run_replicas(req, pool, lay, cfg.routing)
    record = {
        "scenario": sc.name,
        "point": point,
        "model": pool.rec["model"],
        "hardware": pool.rec["hardware"],
        **summarise(
            request_view(parts, timelines),
            timelines,
            replica_gpus=[pool.gpus] * len(timelines),
            replica_blocks=[pool.blocks] * len(timelines),
            gpus=lay.gpus,
            **common,
        ),
        "kv_cache": _kv_cache(replica, b),
        "replicas": {
            "count": lay.dp * lay.pp,
            "routing": cfg.routing,
            "lockstep_ranks": lay.ep // lay.tp if lay.ep > lay.tp else 1,
        },
        "time_series": resample(timelines[0].series, pool.blocks),
        "provenance": _provenance(pool.rec, [pool], versions),
    }
    return ServeResult(record, timelines, parts)


def _run_replicas(req: Requests, pool: Pool, lay, routing: str) -> tuple:
    """(the requests each replica served, their timelines) over the dp x pp schedulers: dealt
    round-robin before the run and each replica's scheduler run on its own, or, where expert
    parallelism spans attention data-parallel ranks (ep > tp: ep / tp ranks share their experts),
    each group of them in lockstep (`scheduler.simulate_group`); with `least_loaded` or `prefix_aware`
    routing, dealt as they arrive (`routing.simulate_routed`)."""
    share = lay.ep // lay.tp if lay.ep > lay.tp else 1
    replicas = lay.dp * lay.pp
    if routing != "round_robin" and replicas > 1:
        served = simulate_routed(req, pool.engine, pool.power, replicas, share, policy=routing)
        return [part for _, part, _ in served], [tl for _, _, tl in served]
    parts = [p for _, p in split(req, replicas)]
    if share == 1:
        live = [p for p in parts if p.n]
        return live, [run_replica(p, pool.engine, pool.power) for p in live]
    out_parts, timelines = [], []
    for group in lockstep_groups(parts, share):
        live = [p for p in group if p.n]
        if live:
            out_parts += live
            timelines += simulate_group(live, pool.engine, pool.power, share)
    return out_parts, timelines


def _dealt(req: Requests, replicas: int, pool: Pool, routing: str, hold_s=None) -> list:
    """[(indices into req, their Requests, their Timeline)] of the replicas of one pool of a
    disaggregated deployment that served any: dealt round-robin, or as they arrive (`routing`);
    `hold_s` per request of req (`scheduler.simulate`)."""
    if routing != "round_robin" and replicas > 1:
        return simulate_routed(req, pool.engine, pool.power, replicas, 1, hold_s, routing)
    return [
        (idx, part, run_replica(part, pool.engine, pool.power, None if hold_s is None else hold_s[idx]))
        for idx, part in split(req, replicas)
        if part.n
    ]


def _micro_batches(pool: Pool, pp: int) -> Pool:
    """A replica of pp pipeline stages as the engines run it: pp micro-batches in flight, each with
    its own scheduler, requests and 1/pp of the KV blocks (vLLM's virtual engines: each scheduler
    gets num_gpu_blocks // pipeline_parallel_size and the full max_num_seqs; TensorRT-LLM keeps pp
    micro-batches in flight likewise). Each micro-batch's step is the pass through every stage
    (`stepcost`), and the pp of them keep every stage busy, so the replica serves pp times one
    scheduler's tokens at the same step time. Each is charged 1/pp of the GPUs, busy at pp times
    its own step's utilisation."""
    if pp == 1:
        return pool
    base_power = pool.power

    def power(flops, byts, dt):
        return base_power(flops * pp, byts * pp, dt)

    engine = replace(
        pool.engine,
        total_blocks=pool.blocks // pp,
        swap_blocks=pool.engine.swap_blocks // pp,
        host_cache_blocks=pool.engine.host_cache_blocks // pp,
        ssd_cache_blocks=pool.engine.ssd_cache_blocks // pp,
    )
    return replace(pool, engine=engine, power=power, gpus=pool.gpus // pp, blocks=pool.blocks // pp)


def _kv_cache(pool: Pool, b: int) -> dict:
    return {
        "blocks": pool.blocks,
        "block_tokens": b,
        "block_bytes": pool.block_bytes,
        "tokens": pool.blocks * b,
    }


def _serve_disaggregated(
    sc, cfg, req, hw, common, load_fabric, simulate, step_model, versions
) -> ServeResult:
    """Prefill pool -> KV over the link -> decode pool (`simulator.serving.disagg`)."""
    b = cfg.block_tokens
    pre = _pool(_with_layout(sc, cfg.prefill_tp, cfg.prefill_cp), cfg, hw, simulate, step_model)
    dec = _pool(_with_layout(sc, cfg.decode_tp, 1), cfg, hw, simulate, step_model)
    n_pre = cfg.prefill_gpus // pre.gpus
    n_dec = cfg.decode_gpus // dec.gpus
    _check_fits(sc.name, replace(req, output=np.ones_like(req.output)), pre, b)
    _check_fits(sc.name, req, dec, b)
    link = _link(sc, hw, cfg, load_fabric)
    st = dec.steps
    kv = KVModel(st.model, 1, 1, st.dep.fmt.kb, st.dep.fmt.rb, st.plan, 1)  # the whole replica's KV
    per_token = float(np.asarray(kv.per_sequence(b, b) - kv.state)) / b
    hand = transfer_s(req.prompt, per_token, float(kv.state), link)
    # The prefill pool generates each request's first token; its KV stays until the transfer ends.
    first_only = replace(req, output=np.ones_like(req.output))
    n = req.n
    first, sched, moved = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n)
    timelines, gpus, blocks, served = [], [], [], []
    for idx, part, tl in _dealt(first_only, n_pre, pre, cfg.routing, np.where(req.output > 1, hand, 0.0)):
        served.append(part)
        first[idx], sched[idx], moved[idx] = tl.first_token_s, tl.scheduled_s, tl.kv_transfer_s
        timelines.append(tl)
        gpus.append(pre.gpus)
        blocks.append(pre.blocks)
    di, dreq = decode_requests(req, first, hand)
    finish = first.copy()
    for idx, part, tl in _dealt(dreq, n_dec, dec, cfg.routing):
        served.append(part)
        finish[di[idx]] = tl.finish_s
        moved[di[idx]] += tl.kv_transfer_s
        timelines.append(tl)
        gpus.append(dec.gpus)
        blocks.append(dec.blocks)
    view = {
        "arrival": req.arrival_s.astype(float),
        "first": first,
        "finish": finish,
        "scheduled": sched,
        "transfer": moved + hand,
        "output": req.output,
        "prompt": req.prompt,
    }
    total = cfg.prefill_gpus + cfg.decode_gpus
    decode_tl = timelines[-1] if len(timelines) > n_pre else timelines[0]
    record = {
        "scenario": sc.name,
        "model": dec.rec["model"],
        "hardware": dec.rec["hardware"],
        **summarise(view, timelines, replica_gpus=gpus, replica_blocks=blocks, gpus=total, **common),
        "kv_cache": _kv_cache(dec, b),
        "replicas": {"count": n_pre + n_dec, "routing": cfg.routing, "lockstep_ranks": 1},
        "disaggregation": {
            "prefill_replicas": n_pre,
            "decode_replicas": n_dec,
            "prefill_kv_cache": _kv_cache(pre, b),
            "link": link.name,
            "link_bandwidth_Bps": link.bandwidth * link.lanes,
            "kv_bytes_per_token": per_token,
        },
        "time_series": resample(decode_tl.series, dec.blocks),
        "provenance": _provenance(dec.rec, [pre, dec], versions),
    }
    return ServeResult(record, timelines, served)
