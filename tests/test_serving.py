"""`roofline serve`: the request-level serving simulator's oracles and invariants — a lone request
is `simulate`'s batch of one; every request finishes once with the tokens it asked for; Little's
law holds on the time series; past capacity throughput is flat and the queue shows in TTFT; a seed
reproduces a run; short KV preempts and still finishes everything; prefixes are reused."""

from __future__ import annotations

import json

import numpy as np
import pytest

import roofline
from roofline.cli.main import main
from roofline.simulator.errors import UserError
from roofline.simulator.scenario import ScenarioError

from helpers import two_prompts


def _doc(serving, **extra):
    return {"model": "llama-3.1-8b", "hardware": "h100-sxm", "serving": serving, **extra}


def _serve(serving, **extra):
    return roofline.serve(_doc(serving, **extra))


def _lone(prompt, output, budget=8192):
    sv = {
        "requests": 1,
        "arrival": {"offline": True},
        "prompt_tokens": prompt,
        "output_tokens": output,
        "scheduler": {"max_batched_tokens": budget},
    }
    rec = _serve(sv).record
    ref = roofline.simulate(
        {
            "model": "llama-3.1-8b",
            "hardware": "h100-sxm",
            "workload": {"batch": 1, "prompt_tokens": prompt, "output_tokens": output},
        }
    ).records()[0]
    return rec, ref


def test_lone_request_is_simulates_batch_of_one():
    rec, ref = _lone(4096, 300)
    # One unchunked prefill step: exactly the engine's prefill (tests/test_step.py's oracle).
    assert rec["ttft_s"]["mean"] == pytest.approx(ref["ttft_s"], rel=1e-9)
    # output - 1 decode steps at KV lengths prompt+1 .. prompt+output-1, against simulate's mean step.
    assert rec["tpot_s"]["mean"] == pytest.approx(ref["tpot_s"], rel=0.01)
    assert rec["queue_s"]["mean"] == 0.0 and rec["preemptions"] == 0


def test_lone_long_prompt_chunked_by_the_token_budget_stays_close():
    rec, ref = _lone(20000, 64, budget=4096)  # 5 chunks: each re-reads the cache before it
    assert rec["ttft_s"]["mean"] == pytest.approx(ref["ttft_s"], rel=0.05)
    assert rec["ttft_s"]["mean"] >= ref["ttft_s"]
    assert rec["tpot_s"]["mean"] == pytest.approx(ref["tpot_s"], rel=0.10)


def _online(rate, n=400, seed=0, **sched):
    sv = {
        "requests": n,
        "seed": seed,
        "arrival": {"rate_per_s": rate},
        "prompt_tokens": {"dist": "uniform", "min": 200, "max": 3000},
        "output_tokens": {"dist": "uniform", "min": 20, "max": 300},
        "scheduler": {"max_num_seqs": 64, **sched},
    }
    return _serve(sv)


def test_conservation_every_request_finishes_once_with_its_tokens():
    res = _online(20.0)
    (tl,), (req,) = res.timelines, res.requests
    assert np.all(np.isfinite(tl.finish_s)) and np.all(np.isfinite(tl.first_token_s))
    assert np.array_equal(tl.generated, req.output)  # tokens out = tokens asked for
    assert np.all(tl.arrival_s <= tl.scheduled_s) and np.all(tl.scheduled_s < tl.first_token_s)
    assert np.all(tl.first_token_s <= tl.finish_s)
    rec = res.record
    span = tl.finish_s.max() - tl.arrival_s.min()
    assert rec["throughput"]["output_tokens_per_s"] == pytest.approx(req.output.sum() / span, rel=1e-12)
    assert rec["requests"] == 400


def test_littles_law_on_the_time_series():
    rec = _online(20.0).record
    law = rec["littles_law"]
    # Requests count as queued from the first step boundary after they arrive, so L trails
    # lambda * W by at most about one step per request: 3% here.
    assert law["mean_in_system"] == pytest.approx(law["arrival_rate_per_s"] * law["mean_e2e_s"], rel=0.03)


def test_saturation_flat_throughput_and_queueing_in_ttft():
    capacity = _serve(
        {
            "requests": 400,
            "arrival": {"offline": True},
            "prompt_tokens": {"dist": "uniform", "min": 200, "max": 3000},
            "output_tokens": {"dist": "uniform", "min": 20, "max": 300},
            "scheduler": {"max_num_seqs": 64},
        }
    ).record["throughput"]["requests_per_s"]
    past = _online(2.0 * capacity).record
    further = _online(4.0 * capacity).record
    low = _online(0.3 * capacity).record
    # Past capacity the served rate is flat (+-10% from 2x to 4x the offline capacity) and near it
    # (a short run's offline figure carries its ramp-down tail); what is not served waits in queue.
    assert further["throughput"]["requests_per_s"] == pytest.approx(
        past["throughput"]["requests_per_s"], rel=0.10
    )
    assert past["throughput"]["requests_per_s"] == pytest.approx(capacity, rel=0.15)
    assert low["throughput"]["requests_per_s"] == pytest.approx(0.3 * capacity, rel=0.15)
    assert past["ttft_s"]["p50"] > 20 * low["ttft_s"]["p50"]
    assert further["ttft_s"]["p50"] > past["ttft_s"]["p50"]
    assert past["queue_s"]["mean"] > 20 * low["queue_s"]["mean"]


def test_a_seed_reproduces_a_run():
    a, b, c = (_online(10.0, n=100, seed=s).record for s in (1, 1, 2))
    for r in (a, b, c):
        r.pop("provenance")
    assert a == b
    assert a != c


def test_short_kv_preempts_and_every_request_still_finishes():
    for mode in ("recompute", "swap"):
        res = _online(50.0, n=150, kv_memory_fraction=0.02, preemption=mode)
        (tl,), (req,) = res.timelines, res.requests
        assert res.record["kv_cache"]["tokens"] < 20000
        assert res.record["preemptions"] > 0
        assert np.array_equal(tl.generated, req.output) and np.all(np.isfinite(tl.finish_s))
        if mode == "swap":
            assert tl.kv_transfer_s.max() > 0 and res.record["kv_transfer_s"]["mean"] > 0


def test_reserved_admission_never_preempts():
    res = _online(50.0, n=150, kv_memory_fraction=0.02, admission="reserve")
    assert res.record["preemptions"] == 0
    assert np.array_equal(res.timelines[0].generated, res.requests[0].output)


def test_sjf_serves_short_prompts_first_under_a_queue():
    fcfs = _online(40.0, n=200, policy="fcfs")
    sjf = _online(40.0, n=200, policy="sjf")
    assert sjf.record["ttft_s"]["p50"] < fcfs.record["ttft_s"]["p50"]


def test_session_history_hits_the_prefix_cache_exactly():
    sv = {
        "requests": 2,
        "arrival": {"rate_per_s": 1.0},
        "prompt_tokens": 1000,
        "output_tokens": 100,
        "sessions": {"turns": 2, "think_time_s": 5.0},
    }
    on = _serve(sv).record
    # Turn 2's prompt is 1100 history + 1000 new tokens; the history's KV (prompt 1000 + output 100
    # - the last token, never fed back) is 1099 tokens: 68 full blocks of 16 are reused.
    assert on["prefix_hit_rate"] == pytest.approx(68 * 16 / (1000 + 2100))
    off = _serve({**sv, "prefix_cache": {"enabled": False}}).record
    assert off["prefix_hit_rate"] == 0.0
    assert on["ttft_s"]["p99"] < off["ttft_s"]["p99"]


# Three-turn sessions whose KV overflows a small GPU pool: evicted prefixes are what the tiers hold.
SESSIONS_UNDER_MEMORY_PRESSURE = {
    "requests": 60,
    "arrival": {"rate_per_s": 4.0},
    "prompt_tokens": 6000,
    "output_tokens": 20,
    "sessions": {"turns": 3, "think_time_s": 2.0},
    "scheduler": {"kv_memory_fraction": 0.05},
}


def test_host_tier_loads_evicted_prefixes_back():
    sv = SESSIONS_UNDER_MEMORY_PRESSURE
    without = _serve(sv).record
    res = _serve({**sv, "prefix_cache": {"host_GiB": 64}})
    assert res.record["prefix_hit_rate"] > without["prefix_hit_rate"]
    assert res.timelines[0].kv_transfer_s.max() > 0


def test_data_parallel_replicas_split_the_traffic():
    one = _serve(
        {"requests": 200, "arrival": {"rate_per_s": 30.0}, "prompt_tokens": 2000, "output_tokens": 100}
    ).record
    two = roofline.serve(
        _doc(
            {"requests": 200, "arrival": {"rate_per_s": 30.0}, "prompt_tokens": 2000, "output_tokens": 100},
            parallelism={"dp": 2},
        )
    ).record
    assert two["gpus"] == 2 and two["requests"] == 200
    assert two["ttft_s"]["p50"] <= one["ttft_s"]["p50"]


def test_a_closed_loop_client_keeps_n_requests_in_flight():
    # arrival.concurrency N: requests 0..N-1 at t = 0, request i + N sent the moment request i ends
    # (no think time), so N are in flight until the last N drain; the engine queues none of them
    # while N <= max_num_seqs and memory holds them. Its throughput is the offline run's with
    # max_num_seqs N (the same batches), its TTFT the client's (no engine queue), far below.
    n, c = 120, 12
    sv = {"requests": n, "arrival": {"concurrency": c}, "prompt_tokens": 1500, "output_tokens": 60}
    res = _serve(sv)
    (tl,) = res.timelines
    assert np.all(tl.arrival_s[:c] == 0.0)
    assert tl.arrival_s[c:] == pytest.approx(tl.finish_s[: n - c], abs=0.0)
    events = sorted(
        [(a, 1) for a in tl.arrival_s] + [(f, -1) for f in tl.finish_s], key=lambda e: (e[0], e[1])
    )
    in_flight = np.cumsum([d for _, d in events])
    assert in_flight.max() == c
    # after the first wave (18,000 prompt tokens through an 8,192-token budget), each request is
    # scheduled the moment it arrives: never a wait in the engine's queue
    assert np.all(tl.scheduled_s[c:] == tl.arrival_s[c:])
    # (offline, vLLM's LLM class budgets 16,384 tokens on an H100; the same 8,192 as `vllm serve` here)
    offline = _serve(
        {**sv, "arrival": {"offline": True}, "scheduler": {"max_num_seqs": c, "max_batched_tokens": 8192}}
    ).record
    assert res.record["throughput"]["output_tokens_per_s"] == pytest.approx(
        offline["throughput"]["output_tokens_per_s"], rel=1e-9
    )
    assert res.record["ttft_s"]["p50"] < offline["ttft_s"]["p50"] / 5
    # think time between a slot's requests: the same requests take longer
    slow = _serve({**sv, "sessions": {"think_time_s": 2.0}}).record
    assert slow["duration_s"] > res.record["duration_s"] + 2.0


def test_a_request_larger_than_the_kv_cache_is_one_clear_line():
    with pytest.raises(UserError) as err:
        _serve({"requests": 3, "arrival": {"offline": True}, "prompt_tokens": 2_000_000, "output_tokens": 10})
    assert "needs" in str(err.value) and "KV blocks" in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "serving, needle",
    [
        ({"arrival": {"rate_per_s": 1, "offline": True}}, "give exactly one of"),
        ({"arrival": {"rate_per_s": 1, "offline": True}}, "--set serving.arrival.rate_per_s=null"),
        ({"arrival": {"rate": 1}}, "unknown field serving.arrival.rate. Did you mean 'rate_per_s'?"),
        ({"arrival": {"offline": True}, "prompt_tokens": {"dist": "zipf"}}, "serving.prompt_tokens.dist"),
        # found by the fuzz: a list as the distribution's name (unhashable) was a TypeError
        ({"arrival": {"offline": True}, "prompt_tokens": {"dist": []}}, "[] is not a distribution"),
        ({"arrival": {"offline": True}, "output_tokens": {"dist": "uniform", "min": 5}}, "needs 'max'"),
        ({"arrival": {"offline": True}, "scheduler": {"preemption": "drop"}}, "serving.scheduler.preemption"),
        ({"arrival": {"trace": "no/such/trace.jsonl"}}, "no such trace file"),
        ({"arrival": {"concurrency": 8, "offline": True}}, "give exactly one of"),
        ({"arrival": {"concurrency": 0}}, "serving.arrival.concurrency"),
        ({"arrival": {"concurrency": 8}, "sessions": {"turns": 3}}, "use sessions.turns: 1"),
        (
            {"arrival": {"concurrency": 8}, "disaggregation": {"prefill_gpus": 1, "decode_gpus": 1}},
            "closed-loop client",
        ),
    ],
)
def test_bad_serving_specs_are_one_line_errors(serving, needle):
    with pytest.raises(UserError) as err:
        _serve(serving)
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_a_scenario_without_a_serving_section_is_refused():
    with pytest.raises(ScenarioError, match="no serving: section"):
        roofline.serve({"model": "llama-3.1-8b", "hardware": "h100-sxm", "workload": {"prompt_tokens": 4096}})


def test_cli_serve_json_keys_plot_and_set(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(
        "model: llama-3.1-8b\nhardware: h100-sxm\nserving:\n  requests: 50\n  arrival: {rate_per_s: 5}\n"
        "  prompt_tokens: {dist: histogram, file: lengths.csv}\n  output_tokens: 30\n  slo: {ttft_s: 0.001}\n"
    )
    (tmp_path / "lengths.csv").write_text("tokens,weight\n100,1\n400,3\n")
    plot = tmp_path / "ts.html"
    assert main(["serve", str(path), "--format", "json", "--plot", str(plot), "--set", "serving.seed=4"]) == 0
    rec = json.loads(capsys.readouterr().out)
    for key in ("throughput", "ttft_s", "tpot_s", "e2e_s", "queue_s", "kv_transfer_s", "slo_attainment",
                "goodput_requests_per_s", "kv_utilization", "prefix_hit_rate", "preemptions", "gpus", "cost",
                "energy", "provenance", "time_series"):  # fmt: skip
        assert key in rec, key
    assert set(rec["throughput"]) == {
        "requests_per_s", "output_tokens_per_s", "output_tokens_per_s_per_gpu", "input_tokens_per_s"
    }  # fmt: skip
    assert set(rec["ttft_s"]) == {"mean", "p50", "p90", "p99"}
    assert rec["slo_attainment"] < 0.2  # a 1 ms TTFT objective is missed by (nearly) everyone
    assert rec["goodput_requests_per_s"] == pytest.approx(
        rec["slo_attainment"] * rec["throughput"]["requests_per_s"]
    )
    assert "plotly" in plot.read_text()
    assert main(["serve", str(path)]) == 0
    assert "TTFT" in capsys.readouterr().out
    assert main(["serve", str(path), "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("scenario,")
    assert main(["serve", str(path), "--set", "serving.arrival.rate_per_s=fast"]) == 2
    err = capsys.readouterr().err
    assert "serving.arrival.rate_per_s: must be a number" in err and err.count("\n") == 1


def test_ssd_tier_below_a_small_host_tier_keeps_more_prefixes():
    sv = SESSIONS_UNDER_MEMORY_PRESSURE
    host_only = _serve({**sv, "prefix_cache": {"host_GiB": 0.5}}).record
    with_ssd = _serve({**sv, "prefix_cache": {"host_GiB": 0.5, "ssd_GiB": 200}}).record
    assert with_ssd["prefix_hit_rate"] > host_only["prefix_hit_rate"]
    with pytest.raises(UserError, match="sits below the host tier"):
        _serve({**sv, "prefix_cache": {"ssd_GiB": 10}})


def test_a_sweep_runs_one_serving_simulation_per_point(tmp_path, capsys):
    doc = _doc(
        {"requests": 80, "arrival": {"rate_per_s": 2.0}, "prompt_tokens": 1000, "output_tokens": 50},
        sweep={"serving.arrival.rate_per_s": [2.0, 50.0], "hardware": ["h100-sxm", "h200"]},
    )
    results = roofline.serve(doc)
    assert [r.record["point"] for r in results] == [
        {"hardware": h, "serving.arrival.rate_per_s": x} for h in ("h100-sxm", "h200") for x in (2.0, 50.0)
    ]
    assert results[1].record["ttft_s"]["p50"] > results[0].record["ttft_s"]["p50"]
    assert results[2].record["hardware"] == "h200"
    # `simulate` needs a static workload: a serving scenario says where its lengths are.
    with pytest.raises(ScenarioError, match="a serving scenario"):
        roofline.simulate(doc)
    assert roofline.simulate(doc, ["workload.prompt_tokens=1000"]).n == 2  # the serving axis ignored
    path = tmp_path / "sweep.yaml"
    path.write_text(json.dumps(doc))
    assert main(["serve", str(path), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert isinstance(out, list) and len(out) == 4
    bad = _doc({"arrival": {"offline": True}}, sweep={"serving.arrival.rate_per_s": [1.0]})
    with pytest.raises(
        UserError, match="sweep point serving.arrival.rate_per_s=1.0: serving.arrival: give exactly"
    ):
        roofline.serve(bad)


def test_errors_leave_no_output_file(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text("model: llama-3.1-8b\nhardware: h100-sxm\nserving:\n  arrival: {trace: bad.jsonl}\n")
    (tmp_path / "bad.jsonl").write_text(
        '{"arrival_s": 0, "prompt_tokens": 5, "output_tokens": 1}\n{"arrival_s": 1}\n'
    )
    out = tmp_path / "out.json"
    assert main(["serve", str(path), "--format", "json", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bad.jsonl:2: missing field 'prompt_tokens'" in err and err.count("\n") == 1
    assert not out.exists()
    path.write_text(
        "model: llama-3.1-8b\nhardware: h100-sxm\nserving:\n  arrival: {offline: true}\n"
        "  prompt_tokens: {dist: histogram, file: h.csv}\n"
    )
    (tmp_path / "h.csv").write_text("tokens,weight\n100,1\n-5,2\n")
    assert main(["serve", str(path), "-o", str(out)]) == 2
    assert "h.csv:3: tokens must be a whole number" in capsys.readouterr().err and not out.exists()


def test_mooncake_trace_shares_prefix_blocks_end_to_end():
    from pathlib import Path

    trace = Path(__file__).parent / "fixtures" / "serving" / "mooncake.jsonl"
    rec = _serve({"arrival": {"trace": str(trace)}}).record
    # Request 2 (arriving 250 ms later, after request 1 finished) reuses the 1,024 tokens of hash
    # ids [1, 2] that request 1 computed: 64 blocks of 16.
    assert rec["requests"] == 3
    assert rec["prefix_hit_rate"] == pytest.approx(1024 / (1400 + 1100 + 600))


def test_a_capped_cache_holds_only_the_blocks_it_keeps():
    # StreamingLLM keeps 4 sinks + 4,092 recent tokens: a 32K-token request holds 4,096 / 16 = 256
    # blocks at most, not 2,048 + (its output), so the same KV cache runs all 60 requests at once
    # where the dense cache holds 14 (~466K tokens of cache / 33.8K per request).
    base = {
        "model": "llama-3.1-8b",
        "hardware": "h100-sxm",
        "serving": {
            "requests": 60,
            "arrival": {"offline": True},
            "prompt_tokens": 32768,
            "output_tokens": 1024,
        },
    }
    stream = [{"name": "streaming_llm", "sink_tokens": 4, "window_tokens": 4092}]
    runs = {}
    for label, methods in (("dense", []), ("streaming", stream)):
        series = roofline.serve(dict(base, methods=methods)).timelines[0].series
        running, blocks = np.asarray(series["running"]), np.asarray(series["kv_blocks"])
        busy = running > 0
        runs[label] = (float(np.max(blocks[busy] / running[busy])), float(np.max(running)))
    assert runs["streaming"][0] == 256
    assert runs["dense"][0] > 2048
    assert runs["dense"][1] == 14 and runs["streaming"][1] == 60


def test_pipeline_stages_keep_micro_batches_in_flight():
    # pp = 2: two schedulers (micro-batches), each with half of the replica's KV blocks, each step
    # the pass through both stages; a lone request still sees the serial pass (the engine's).
    sv = {"requests": 1, "arrival": {"offline": True}, "prompt_tokens": 4096, "output_tokens": 300}
    lone = roofline.serve(_doc(sv, gpus=2, parallelism={"pp": 2})).record
    ref = roofline.simulate(
        {
            "model": "llama-3.1-8b",
            "hardware": "h100-sxm",
            "gpus": 2,
            "parallelism": {"pp": 2},
            "workload": {"batch": 1, "prompt_tokens": 4096, "output_tokens": 300},
        }
    ).records()[0]
    assert lone["ttft_s"]["mean"] == pytest.approx(ref["ttft_s"], rel=1e-9)
    assert lone["tpot_s"]["mean"] == pytest.approx(ref["tpot_s"], rel=0.01)

    busy = {"requests": 400, "arrival": {"offline": True}, "prompt_tokens": 8000, "output_tokens": 2000}
    res = roofline.serve(_doc(busy, gpus=2, parallelism={"pp": 2}))
    blocks = res.record["kv_cache"]["blocks"]  # the replica's
    assert len(res.timelines) == 2 and sum(len(p.prompt) for p in res.requests) == 400
    for tl in res.timelines:
        assert tl.series["kv_blocks"].max() <= blocks // 2
    assert res.record["gpus"] == 2


def test_without_chunked_prefill_a_prompt_waits_for_a_budget_that_holds_it_whole():
    steps = roofline.step_model(_doc(None))
    # Unchunked: step 1 prefills the first prompt alone (the 400 tokens left cannot hold the second);
    # step 2 runs its decode and the second prompt whole.
    s1 = steps.cost([600], [0]).time_s
    s2 = steps.cost([1, 600], [600, 0]).time_s
    assert two_prompts(False)[0] == pytest.approx([s1, s1 + s2], rel=1e-9)
    # Chunked: step 1 runs the first prompt and 400 tokens of the second, step 2 the second's rest.
    c1 = steps.cost([600, 400], [0, 0]).time_s
    c2 = steps.cost([1, 200], [600, 400]).time_s
    assert two_prompts(True)[0] == pytest.approx([c1, c1 + c2], rel=1e-9)


def test_without_chunked_prefill_a_prompt_longer_than_the_budget_is_refused():
    sv = {
        "requests": 3,
        "arrival": {"offline": True},
        "prompt_tokens": 5000,
        "output_tokens": 4,
        "scheduler": {"max_batched_tokens": 4096, "chunked_prefill": False},
    }
    with pytest.raises(
        UserError, match=r"prompt \(5000 tokens\) is longer than .*max_batched_tokens \(4096\)"
    ):
        _serve(sv)
