"""A serving run's timeline -> SPEC's `roofline serve` result: throughput, latency percentiles,
SLO attainment and goodput, KV use, prefix hits, preemptions, cost and energy, and the time series.

Definitions (docs/serving.md): TTFT is each request's own arrival -> first token (under continuous
batching it includes queueing and the other requests' work in its steps — unlike `simulate`, whose
TTFT is a static batch's prefill); TPOT = (finish - first token) / (output - 1) for outputs longer
than one token; E2E = arrival -> last token; queue = arrival -> first step that includes it. Rates are
over the run's span, first arrival -> last finish. Cost: the deployment's $/hour over the achieved
rate, as `economics.usd_per_million_tokens`. Energy: each GPU draws `economics.gpu_power_w` at each
step's utilisation (the busier of MFU and MBU) and the static share while idle.
"""

from __future__ import annotations

import numpy as np

from roofline.simulator.economics import gpu_power_w, usd_per_million_tokens

SERIES_POINTS = 400  # the JSON time series is resampled to at most this many time bins


def stats(x) -> dict:
    """mean, p50, p90, p99 of the finite values (None when there are none)."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if not x.size:
        return {"mean": None, "p50": None, "p90": None, "p99": None}
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    return {"mean": float(x.mean()), "p50": float(p50), "p90": float(p90), "p99": float(p99)}


def resample(series: dict, total_blocks: int, points: int = SERIES_POINTS) -> dict:
    """Time-weighted means of running, queued and KV use in at most `points` equal time bins."""
    t, dt = series["t_s"], series["dt_s"]
    if not t.size:
        return {"t_s": [], "running": [], "queued": [], "kv_utilization": []}
    end = float(t[-1] + dt[-1])
    edges = np.linspace(float(t[0]), end, min(points, t.size) + 1)
    out = {"t_s": edges[:-1].tolist()}
    # Integrate each step function over the bins through its cumulative integral at the edges.
    knots = np.concatenate([t, [end]])
    for name, values in (
        ("running", series["running"]),
        ("queued", series["queued"]),
        ("kv_utilization", series["kv_blocks"] / max(total_blocks, 1)),
    ):
        cum = np.concatenate([[0.0], np.cumsum(values * dt)])
        at = np.interp(edges, knots, cum)
        width = np.diff(edges)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[name] = np.where(width > 0, np.diff(at) / width, 0.0).tolist()
    return out


def request_view(req: list, timelines: list) -> dict:
    """Per-request arrays over replicas that each served whole requests (arrival to last token)."""
    return {
        "arrival": np.concatenate([tl.arrival_s for tl in timelines]),
        "first": np.concatenate([tl.first_token_s for tl in timelines]),
        "finish": np.concatenate([tl.finish_s for tl in timelines]),
        "scheduled": np.concatenate([tl.scheduled_s for tl in timelines]),
        "transfer": np.concatenate([tl.kv_transfer_s for tl in timelines]),
        "output": np.concatenate([r.output for r in req]),
        "prompt": np.concatenate([r.prompt for r in req]),
    }


def summarise(
    view: dict,
    timelines: list,
    *,
    replica_gpus,
    replica_blocks,
    gpus,
    usd_per_gpu_hour,
    tdp_w,
    slo_ttft,
    slo_tpot,
) -> dict:
    """The SPEC result keys of a run: `view` holds each request's times (`request_view`);
    `timelines` every replica's steps, with its GPUs and KV blocks in `replica_gpus` and
    `replica_blocks`."""
    arrival, first, finish, sched = view["arrival"], view["first"], view["finish"], view["scheduled"]
    transfer, output, prompt = view["transfer"], view["output"], view["prompt"]
    n = arrival.size
    span = float(finish.max() - arrival.min())
    ttft = first - arrival
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(output > 1, (finish - first) / (output - 1), np.nan)
    ok = np.ones(n, bool)
    if slo_ttft is not None:
        ok &= ttft <= slo_ttft
    if slo_tpot is not None:
        ok &= ~(tpot > slo_tpot)  # one-token outputs have no TPOT to miss
    out_rate = float(output.sum()) / span if span > 0 else float("inf")
    in_rate = float(prompt.sum()) / span if span > 0 else float("inf")
    usd_per_hour = usd_per_gpu_hour * gpus
    joules = 0.0
    for tl, g in zip(timelines, replica_gpus):  # each replica's GPUs: busy steps, then idle
        idle_s = max(span - float(tl.step_dt.sum()), 0.0)
        joules += g * (float(np.sum(tl.step_watts * tl.step_dt)) + idle_s * float(gpu_power_w(tdp_w, 0.0)))
    kv_used = np.concatenate([tl.series["kv_blocks"] / max(b, 1) for tl, b in zip(timelines, replica_blocks)])
    kv_dt = np.concatenate([tl.series["dt_s"] for tl in timelines])
    in_system = np.concatenate([tl.series["running"] + tl.series["queued"] for tl in timelines])
    hits = sum(tl.hit_tokens for tl in timelines)
    asked = sum(tl.prompt_tokens for tl in timelines)
    return {
        "requests": n,
        "duration_s": span,
        "steps": int(sum(tl.steps for tl in timelines)),
        "throughput": {
            "requests_per_s": n / span if span > 0 else float("inf"),
            "output_tokens_per_s": out_rate,
            "output_tokens_per_s_per_gpu": out_rate / gpus,
            "input_tokens_per_s": in_rate,
        },
        "ttft_s": stats(ttft),
        "tpot_s": stats(tpot),
        "e2e_s": stats(finish - arrival),
        "queue_s": stats(sched - arrival),
        "kv_transfer_s": stats(transfer),
        "slo_attainment": float(ok.mean()),
        "goodput_requests_per_s": float(ok.sum()) / span if span > 0 else float("inf"),
        "kv_utilization": {
            "mean": float(np.sum(kv_used * kv_dt) / kv_dt.sum()) if kv_dt.sum() > 0 else 0.0,
            "max": float(kv_used.max()) if kv_used.size else 0.0,
        },
        "prefix_hit_rate": hits / asked if asked else 0.0,
        "preemptions": int(sum(int(tl.preempted.sum()) for tl in timelines)),
        "gpus": gpus,
        "cost": {
            "usd_per_hour": usd_per_hour,
            "usd_per_million_output_tokens": float(usd_per_million_tokens(usd_per_hour, out_rate)),
            "usd_per_million_input_tokens": float(usd_per_million_tokens(usd_per_hour, in_rate)),
        },
        "energy": {
            "joules_per_output_token": joules / float(output.sum()),
            "average_power_w": joules / span if span > 0 else 0.0,
        },
        # Little's law: mean requests in the system (time series) = arrival rate x mean E2E.
        "littles_law": {
            "mean_in_system": float(np.sum(in_system * kv_dt) / span / 1.0) if span > 0 else 0.0,
            "arrival_rate_per_s": n / span if span > 0 else float("inf"),
            "mean_e2e_s": float(np.mean(finish - arrival)),
        },
    }
