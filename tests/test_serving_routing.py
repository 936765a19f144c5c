"""`serving.routing: least_loaded` (`simulator/serving/routing.py`): each request goes, as it arrives,
to the replica holding the fewest unfinished requests. Oracles: a request that arrives while one
replica is busy and another idle runs alone on the idle one (its TTFT is a lone prefill's, where
round-robin puts it beside the busy replica's decodes); every request is served exactly once; a
session's turns stay on one replica; lockstep groups and disaggregated pools route too; the tail
of TTFT under load shrinks."""

from __future__ import annotations

import json

import numpy as np
import pytest

import roofline
from roofline.cli.main import main
from roofline.dashboards import serve_state
from roofline.dashboards.figures_serve import serve_kpi_items
from roofline.report.serve_tables import serve_table
from roofline.simulator.serving.routing import BALANCE_ABS, PrefixRouter
from roofline.simulator.serving.workload import Requests


def _trace(tmp_path, rows):
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _doc(serving, **extra):
    return {
        "model": "llama-3.1-8b",
        "hardware": "h100-sxm",
        "parallelism": {"dp": 2},
        "serving": serving,
        **extra,
    }


def test_a_request_goes_to_the_idle_replica(tmp_path):
    # A decodes 2,000 tokens on one replica; B, short, on the other, is done long before C arrives
    rows = [
        {"arrival_s": 0.0, "prompt_tokens": 1000, "output_tokens": 2000},
        {"arrival_s": 0.1, "prompt_tokens": 100, "output_tokens": 5},
        {"arrival_s": 2.0, "prompt_tokens": 3000, "output_tokens": 5},
    ]
    serving = {"requests": 3, "arrival": {"trace": _trace(tmp_path, rows)}}
    lone = roofline.step_model({"model": "llama-3.1-8b", "hardware": "h100-sxm"}).cost([3000], [0]).time_s
    ttft = {}
    for routing in ("round_robin", "least_loaded"):
        res = roofline.serve(_doc({**serving, "routing": routing}))
        for part, tl in zip(res.requests, res.timelines):
            for prompt, first, arrival in zip(part.prompt, tl.first_token_s, tl.arrival_s):
                if prompt == 3000:
                    ttft[routing] = first - arrival
    assert ttft["least_loaded"] == pytest.approx(lone, rel=1e-9)  # alone on the idle replica
    assert ttft["round_robin"] > ttft["least_loaded"]  # beside A's decodes (sessions dealt 0, 1, 0)


def _served_once(res, n):
    finished = np.concatenate([tl.finish_s for tl in res.timelines])
    assert finished.size == n and np.all(np.isfinite(finished))
    assert sum(p.n for p in res.requests) == n == res.record["requests"]


def test_every_request_is_served_once_and_sessions_stay_on_their_replica():
    serving = {
        "requests": 300,
        "seed": 4,
        "arrival": {"rate_per_s": 12.0},
        "routing": "least_loaded",
        "prompt_tokens": {"dist": "lognormal", "mean": 1500, "sigma": 0.9, "max": 16000},
        "output_tokens": {"dist": "uniform", "min": 5, "max": 300},
        "sessions": {"turns": 3, "think_time_s": 1.0},
    }
    res = roofline.serve(_doc(serving, parallelism={"dp": 3}))
    _served_once(res, 300)
    # every session's later turns were served where its first turn was: no link is cut
    assert sum(int((p.next_turn >= 0).sum()) for p in res.requests) == 200
    assert len(res.requests) == 3


@pytest.mark.parametrize(
    "extra",
    [
        {"model": "qwen3-30b-a3b", "parallelism": {"dp": 4, "ep": 2}},  # two lockstep pairs
        {"parallelism": {"dp": 2, "pp": 2}},  # micro-batch schedulers
    ],
)
def test_lockstep_groups_and_pipelines_route_too(extra):
    serving = {
        "requests": 120,
        "arrival": {"rate_per_s": 10.0},
        "prompt_tokens": {"dist": "uniform", "min": 100, "max": 5000},
        "output_tokens": {"dist": "uniform", "min": 5, "max": 200},
    }
    routed = roofline.serve(_doc({**serving, "routing": "least_loaded"}, **extra))
    _served_once(routed, 120)
    dealt = roofline.serve(_doc(serving, **extra))
    assert routed.record["gpus"] == dealt.record["gpus"]
    lay = extra["parallelism"]
    want = {
        "count": lay["dp"] * lay.get("pp", 1),
        "routing": "least_loaded",
        "lockstep_ranks": lay.get("ep", 1),
    }
    assert routed.record["replicas"] == want
    head = serve_table(routed.record).splitlines()[0]
    assert f"({want['count']} replicas, least_loaded routing" in head
    assert ("2 ranks in lockstep" in head) == ("ep" in lay)


def test_disaggregated_pools_route_as_they_arrive():
    serving = {
        "requests": 150,
        "arrival": {"rate_per_s": 8.0},
        "routing": "least_loaded",
        "prompt_tokens": {"dist": "uniform", "min": 100, "max": 6000},
        "output_tokens": {"dist": "uniform", "min": 2, "max": 200},
        "disaggregation": {"prefill_gpus": 2, "decode_gpus": 2},
    }
    res = roofline.serve(_doc(serving, parallelism={"dp": 1}))
    rec = res.record
    assert rec["requests"] == 150 and rec["disaggregation"]["prefill_replicas"] == 2
    assert np.all(np.isfinite(rec["ttft_s"]["p90"])) and rec["e2e_s"]["p90"] > rec["ttft_s"]["p90"]


def test_least_loaded_shortens_the_ttft_tail_under_load():
    # Llama 3.1 8B on 4 H100s near capacity, lognormal lengths: over four seeds the balancer's
    # tail is shorter every time (by 6-29% at p99: a long prompt no longer queues behind another)
    ratios = []
    for seed in (1, 2, 3, 4):
        serving = {
            "requests": 1500,
            "seed": seed,
            "arrival": {"rate_per_s": 35.0},
            "prompt_tokens": {"dist": "lognormal", "mean": 2048, "sigma": 1.0, "max": 32768},
            "output_tokens": {"dist": "lognormal", "mean": 256, "sigma": 0.8, "max": 4096},
        }
        rr = roofline.serve(_doc(serving, parallelism={"dp": 4})).record
        ll = roofline.serve(_doc({**serving, "routing": "least_loaded"}, parallelism={"dp": 4})).record
        assert ll["ttft_s"]["p90"] < rr["ttft_s"]["p90"]
        # end to end no worse: the decode work is the same, spread as evenly (seed 1: 0.1% apart)
        assert ll["e2e_s"]["p90"] < 1.01 * rr["e2e_s"]["p90"]
        ratios.append(ll["ttft_s"]["p99"] / rr["ttft_s"]["p99"])
    assert max(ratios) < 1.0 and np.mean(ratios) < 0.9


def test_a_bad_routing_is_one_line(capsys):
    code = main(["serve", "scenarios/serve-llama3-8b-h100.yaml", "--set", "serving.routing=random"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "serving.routing" in err and "least_loaded" in err and "Traceback" not in err


def test_the_dashboard_carries_the_routing_and_expert_parallelism():
    values = dict(
        serve_state.SERVE_DEFAULTS,
        **{"serving.routing": "least_loaded", "parallelism.dp": 2, "parallelism.ep": 2},
        **{"model": "qwen3-30b-a3b", "serving.requests": 60},
    )
    doc = serve_state.to_scenario(values)
    assert doc["serving"]["routing"] == "least_loaded" and doc["parallelism"]["ep"] == 2
    query = serve_state.to_query(values)
    assert "routing=least_loaded" in query and "ep=2" in query
    res = roofline.serve(doc)
    _served_once(res, 60)
    tokens = next(item for item in serve_kpi_items(res.record) if item["key"] == "serve-tokens")
    assert "(2 replicas, least_loaded routing, 2 ranks in lockstep)" in tokens["detail"]


def test_prefix_aware_keeps_each_prefix_on_one_replica(tmp_path):
    # prefixes A A B B A A B B ... one second apart: each replica idle when the next arrives
    rows = [
        {
            "arrival_s": float(j),
            "prompt_tokens": 4100,
            "output_tokens": 4,
            "prefix_id": "AB"[(j // 2) % 2],
            "prefix_tokens": 4000,
        }
        for j in range(20)
    ]
    serving = {"requests": 20, "arrival": {"trace": _trace(tmp_path, rows)}}
    rate = {}
    for routing in ("round_robin", "prefix_aware"):
        res = roofline.serve(_doc({**serving, "routing": routing}))
        rate[routing] = res.record["prefix_hit_rate"]
    # 4,000 shared tokens are 250 blocks of 16: every request but each prefix's first hits them all;
    # round-robin deals A, A, B, B to replicas 0, 1, 0, 1 and misses each prefix once per replica
    assert rate["prefix_aware"] == pytest.approx(18 * 4000 / (20 * 4100), rel=1e-12)
    assert rate["round_robin"] == pytest.approx(16 * 4000 / (20 * 4100), rel=1e-12)


class _Replica:
    def __init__(self, load):
        self.n = load

    def load(self):
        return self.n


def _router(prompts, prefixes):
    one = np.ones(len(prompts), np.int64)
    req = Requests(
        arrival_s=np.zeros(len(prompts)),
        prompt=np.array(prompts),
        output=one,
        next_turn=-one,
        think_s=np.zeros(len(prompts)),
        prefix_key=[f"p{k}" for k in prefixes],
        prefix_tokens=np.array(prompts) - 1,
        cache_tokens=np.array(prompts),
        hash_ids=[None] * len(prompts),
    )
    eng = type("E", (), {"block_tokens": 16, "total_blocks": 10_000, "prefix_cache": True})()
    return PrefixRouter(req, eng, [None, None])


def test_the_prefix_router_follows_the_cache_unless_loads_are_out_of_balance():
    route = _router([1600, 1600, 1600, 1600, 1600], [0, 0, 0, 1, 0])
    busy, idle = _Replica(10), _Replica(0)
    assert route([idle, busy], 0) == 0  # nothing cached: the least loaded
    assert route([busy, idle], 1) == 0  # its prefix is on the busier replica: follows it
    assert route([_Replica(60), _Replica(30)], 2) == 0  # 2x, but not more than 64 apart: the cache
    assert route([_Replica(0), _Replica(0)], 3) == 0  # another prefix, a tie: the first
    assert route([_Replica(300), _Replica(230)], 4) == 0  # 70 apart but under 1.5x: the cache
    # out of balance (more than BALANCE_ABS apart and more than 1.5x): the least loaded
    assert route([_Replica(BALANCE_ABS + 100), _Replica(BALANCE_ABS - 10)], 4) == 1
    # a cached prefix covering under 30% of the prompt does not pull the request
    short = _router([1600, 16000], [0, 0])
    assert short([_Replica(0), _Replica(0)], 0) == 0  # 99 blocks of prefix p0 now on replica 0
    assert short([_Replica(5), _Replica(0)], 1) == 1  # 1,584 of its 16,000 tokens cached: 10%
