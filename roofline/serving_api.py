"""The I/O edge of `roofline serve`: read the scenario, its trace and histogram files, build its
replicas (`roofline.serving_pools`: KV cache, step costs), run the serving simulator
(`roofline.simulator.serving`) and return its result.

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
from roofline.serving_pools import (
    build_pool,
    check_fits,
    kv_cache_record,
    micro_batches,
    run_replicas,
    scheduler_record,
)
from roofline.simulator.errors import UserError
from roofline.simulator.layout import lockstep_ranks
from roofline.simulator.memory import KVModel
from roofline.simulator.scenario import ScenarioError
from roofline.simulator.scenario_checks import expert_split_problem
from roofline.simulator.serving.config import ServingConfig, serving_problems
from roofline.simulator.serving.disagg import Link, decode_requests, transfer_s
from roofline.simulator.serving.results import request_view, resample, summarise
from roofline.simulator.serving.traces import parse_trace
from roofline.simulator.serving.workload import Requests, from_trace, generate, parse_histogram

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


def _with_layout(sc, tp: int, cp: int, ep: int = 1):
    """The scenario as one replica of a disaggregated pool: tp x cp GPUs, or with expert parallelism
    over the pool (ep > tp) one of the ep / tp ranks that share their experts."""
    base = dict(sc.base)
    dp = lockstep_ranks(ep, tp)
    base.update({"parallelism.tp": tp, "parallelism.cp": cp, "parallelism.pp": 1, "parallelism.dp": dp})
    base.update({"parallelism.ep": ep, "gpus": None})
    return replace(sc, base=base)


def _check_pool_experts(sc, cfg) -> None:
    """A pool's expert parallelism needs experts that split evenly over it (as the scenario's own
    `parallelism.ep` is checked: `scenario_checks.expert_split_problem`)."""
    from roofline.api import load_model

    model = load_model(sc.base["model"])
    for pool, ep in (("prefill", cfg.prefill_ep), ("decode", cfg.decode_ep)):
        problem = expert_split_problem(model, sc.base["model"], ep)
        if problem:
            raise UserError(f"{sc.name}: serving.disaggregation.{pool}_parallelism.ep: {problem}")


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
    replica = build_pool(sc, cfg, hw, simulate, step_model)
    lay = replica.steps.layout
    pool = micro_batches(replica, lay.pp)
    check_fits(sc.name, req, pool, b)
    served = run_replicas(req, lay.dp * lay.pp, pool, cfg.routing)
    parts, timelines = [part for _, part, _ in served], [tl for _, _, tl in served]
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
        "kv_cache": kv_cache_record(replica, b),
        "scheduler": scheduler_record(replica),
        "replicas": {
            "count": lay.dp * lay.pp,
            "routing": cfg.routing,
            "lockstep_ranks": lay.lockstep_ranks,
        },
        "time_series": resample(timelines[0].series, pool.blocks),
        "provenance": _provenance(pool.rec, [pool], versions),
    }
    return ServeResult(record, timelines, parts)


def _serve_disaggregated(
    sc, cfg, req, hw, common, load_fabric, simulate, step_model, versions
) -> ServeResult:
    """Prefill pool -> KV over the link -> decode pool (`simulator.serving.disagg`)."""
    b = cfg.block_tokens
    _check_pool_experts(sc, cfg)
    pre = build_pool(
        _with_layout(sc, cfg.prefill_tp, cfg.prefill_cp, cfg.prefill_ep), cfg, hw, simulate, step_model
    )
    dec = build_pool(_with_layout(sc, cfg.decode_tp, 1, cfg.decode_ep), cfg, hw, simulate, step_model)
    pre_group, dec_group = pre.steps.layout.lockstep_ranks, dec.steps.layout.lockstep_ranks
    n_pre = cfg.prefill_gpus // pre.gpus
    n_dec = cfg.decode_gpus // dec.gpus
    check_fits(sc.name, replace(req, output=np.ones_like(req.output)), pre, b)
    check_fits(sc.name, req, dec, b)
    link = _link(sc, hw, cfg, load_fabric)
    st = dec.steps
    # the whole replica's KV
    kv = KVModel(st.model, 1, 1, st.dep.fmt.kb, st.dep.fmt.rb, st.plan, 1, st.layout.window_kv_share)
    per_token = float(np.asarray(kv.per_sequence(b, b) - kv.state)) / b
    hand = transfer_s(req.prompt, per_token, float(kv.state), link)
    # The prefill pool generates each request's first token; its KV stays until the transfer ends.
    first_only = replace(req, output=np.ones_like(req.output))
    n = req.n
    first, sched, moved = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n)
    timelines, gpus, blocks, served = [], [], [], []
    hold = np.where(req.output > 1, hand, 0.0)
    for idx, part, tl in run_replicas(first_only, n_pre, pre, cfg.routing, hold):
        served.append(part)
        first[idx], sched[idx], moved[idx] = tl.first_token_s, tl.scheduled_s, tl.kv_transfer_s
        timelines.append(tl)
        gpus.append(pre.gpus)
        blocks.append(pre.blocks)
    di, dreq = decode_requests(req, first, hand)
    finish = first.copy()
    for idx, part, tl in run_replicas(dreq, n_dec, dec, cfg.routing):
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
        "kv_cache": kv_cache_record(dec, b),
        "scheduler": scheduler_record(dec),
        "replicas": {"count": n_pre + n_dec, "routing": cfg.routing, "lockstep_ranks": dec_group},
        "disaggregation": {
            "prefill_replicas": n_pre,
            "decode_replicas": n_dec,
            "prefill_lockstep_ranks": pre_group,
            "prefill_kv_cache": kv_cache_record(pre, b),
            "prefill_scheduler": scheduler_record(pre),
            "link": link.name,
            "link_bandwidth_Bps": link.bandwidth * link.lanes,
            "kv_bytes_per_token": per_token,
        },
        "time_series": resample(decode_tl.series, dec.blocks),
        "provenance": _provenance(dec.rec, [pre, dec], versions),
    }
    return ServeResult(record, timelines, served)
