"""Attention data parallelism under expert parallelism (`simulator/serving/lockstep.py`): the ranks
that share their experts step together. Oracles: a group of one is the replica's own loop; ranks
with the same traffic step exactly as each would alone; one joint step is the slowest rank's
`StepModel.cost` with the routed experts moved to the group's mean rows (those ops costed apart,
from the engine's op list); a rank's prompt stalls the other rank's decodes, whose steps line up."""

from __future__ import annotations

import numpy as np
import pytest

import roofline
from roofline.api import load_hardware, load_scenario, simulate, step_model
from roofline.serving_api import _requests
from roofline.serving_pools import build_pool
from roofline.simulator.forward import forward_ops
from roofline.simulator.opinputs import Shape
from roofline.simulator.ops import cost_op
from roofline.simulator.serving.config import ServingConfig
from roofline.simulator.serving.lockstep import joint_run, joint_step
from roofline.simulator.serving.scheduler import Loop, Unit, simulate_group
from roofline.simulator.serving.scheduler import simulate as solo
from roofline.simulator.serving.stepcost import EXPERT_OPS
from roofline.simulator.serving.workload import Requests, split


def _doc(rate=6.0, n=60, **runtime):
    return {
        "model": "qwen3-30b-a3b",
        "hardware": "h100-sxm",
        "parallelism": {"tp": 1, "dp": 2, "ep": 2},
        "runtime": runtime,
        "serving": {
            "requests": n,
            "seed": 3,
            "arrival": {"rate_per_s": rate},
            "prompt_tokens": {"dist": "uniform", "min": 100, "max": 6000},
            "output_tokens": {"dist": "uniform", "min": 5, "max": 200},
        },
    }


def _setup(doc):
    sc = load_scenario(doc, (), None, require_workload=False)
    cfg = ServingConfig.from_values(sc.serving)
    pool = build_pool(sc, cfg, load_hardware(sc.base["hardware"]), simulate, step_model)
    return pool, _requests(cfg, None)


def _differences(a, b) -> list:
    """The per-request and per-step arrays in which two timelines differ (NaN equal to NaN)."""
    names = ("first_token_s", "finish_s", "scheduled_s", "step_dt")
    return [n for n in names if not np.array_equal(getattr(a, n), getattr(b, n), equal_nan=True)]


def test_a_group_of_one_is_the_replicas_own_loop():
    pool, req = _setup(_doc())
    loop = Loop(req, pool.engine)
    unit = Unit([loop], pool.engine, 1)
    unit.alone = False  # priced through the joint steps, not the lone replica's own path
    while not loop.finished:
        unit.advance()
    assert _differences(loop.timeline(pool.power), solo(req, pool.engine, pool.power)) == []


def test_ranks_with_the_same_traffic_step_as_each_would_alone():
    pool, req = _setup(_doc())
    ref = solo(req, pool.engine, pool.power)
    for tl in simulate_group([req, req], pool.engine, pool.power):
        assert _differences(tl, ref) == []


def _experts(steps, phase, rows, launch_s):
    """The routed experts' ops of a pass of `rows` rows, costed from the engine's own op list."""
    shape = Shape(phase=phase, rows=float(rows), passes=1.0, batch=1.0, hidden=steps.model.hidden_size)
    ops = forward_ops(steps._inputs(shape), steps.model, steps.layout, lambda *a: ([], []))
    return sum(float(c.time_s) for c in (cost_op(op, launch_s) for op in ops) if c.name in EXPERT_OPS)


def _moved(steps, phase, rows, mean, eager):
    fw, overhead = steps.framework(), steps.dep.overhead_s
    launch = (
        fw.kernel_s(overhead, "prefill") if phase == "prefill" else fw.decode_kernel_s(overhead, not eager)
    )
    return _experts(steps, phase, mean, launch) - _experts(steps, phase, rows, launch)


@pytest.mark.parametrize("framework", ["vllm", "hf"])
def test_one_joint_step_is_the_slowest_rank_with_the_experts_at_the_mean_rows(framework):
    pool, _ = _setup(_doc(framework=framework))
    fast = pool.engine.step
    # beside a rank's prompt a rank's decoders launch eagerly: StepModel with no graph that holds 3
    eager = _setup(_doc(framework=framework, cuda_graph_batch_sizes=[1]))[0].steps
    prefill = (np.zeros(0, np.int64), [3000], [0], [3000])  # a rank with a prompt
    decode = (np.array([900, 4000, 70], np.int64), [], [], [])  # a rank with three decoders
    dt, work = joint_step(fast, [prefill, decode], 3)  # a third rank of the group idles: no rows
    mean = (3000 + 3) / 3
    want_prefill = pool.steps.cost([3000], [0]).time_s + _moved(pool.steps, "prefill", 3000, mean, False)
    want_decode = eager.cost(np.ones(3), decode[0]).time_s + _moved(eager, "decode", 3, mean, True)
    assert dt == pytest.approx(max(want_prefill, want_decode), rel=1e-9)
    assert dt > pool.steps.cost(np.ones(3), decode[0]).time_s  # the decoders wait for the prompt
    assert len(work) == 2 and all(fl > 0 and by > 0 for fl, by in work)
    # a long-context rank beside a short prompt: the decoders set the step, launched eagerly
    long = (np.full(3, 120_000, np.int64), [], [], [])
    dt, _ = joint_step(fast, [(np.zeros(0, np.int64), [16], [0], [16]), long], 2)
    want = eager.cost(np.ones(3), long[0]).time_s + _moved(eager, "decode", 3, (16 + 3) / 2, True)
    assert dt == pytest.approx(want, rel=1e-9)


def test_decoding_ranks_replay_the_graph_of_the_largest_batch():
    graphs = [1, 2, 4, 8, 16]
    pool, _ = _setup(_doc(framework="trtllm", cuda_graph_batch_sizes=graphs))
    padded_to_8 = _setup(_doc(framework="trtllm", cuda_graph_batch_sizes=[8, 16]))[0].steps
    long = np.full(3, 120_000, np.int64)  # 3 decoders over long contexts: the slower rank
    short = np.full(7, 100, np.int64)  # 7 over short ones: both ranks pad to the graph of 8
    dt, _ = joint_step(pool.engine.step, [(long, [], [], []), (short, [], [], [])], 2)
    assert dt == pytest.approx(padded_to_8.cost(np.ones(3), long).time_s, rel=1e-9)
    assert dt > pool.steps.cost(np.ones(3), long).time_s  # alone it would pad to 4
    dts, _ = joint_run(pool.engine.step, [long, short], 1, 2)
    assert dts[0] == pytest.approx(dt, rel=1e-9)


def test_a_joint_decode_run_equals_stepping_jointly():
    pool, _ = _setup(_doc())
    fast = pool.engine.step
    a, b = np.array([100, 5000, 20], np.int64), np.array([3000] * 7, np.int64)
    dts, _ = joint_run(fast, [a, b], 4, 2)
    for j in range(4):
        dt, _ = joint_step(fast, [(a + j, [], [], []), (b + j, [], [], [])], 2)
        assert dts[j] == pytest.approx(dt, rel=1e-9)


def _single(prompt, output, arrival):
    one = np.ones(1, np.int64)
    return Requests(
        arrival_s=np.array([arrival]),
        prompt=one * prompt,
        output=one * output,
        next_turn=-one,
        think_s=np.zeros(1),
        prefix_key=[None],
        prefix_tokens=0 * one,
        cache_tokens=0 * one,
        hash_ids=[None],
    )


def test_a_ranks_prompt_stalls_the_other_ranks_decodes():
    pool, _ = _setup(_doc())
    # rank 0 decodes 300 tokens from t = 0; an 8K prompt reaches rank 1 at 0.2 s
    tl0, tl1 = simulate_group([_single(64, 300, 0.0), _single(8000, 1, 0.2)], pool.engine, pool.power)
    (prompt_step,) = tl1.step_dt
    starts0 = tl0.series["t_s"]
    at = int(np.searchsorted(starts0, tl1.series["t_s"][0]))
    assert starts0[at] == tl1.series["t_s"][0]  # the ranks' steps line up
    assert tl0.series["dt_s"][at] == prompt_step  # the decoder waits out the prompt's step
    decode_steps = tl0.step_dt[1:][tl0.step_dt[1:] != prompt_step]  # (after its own prompt's step)
    assert prompt_step > 20 * np.max(decode_steps)
    assert tl1.first_token_s[0] == pytest.approx(tl1.series["t_s"][0] + prompt_step, rel=1e-12)


def test_serve_runs_expert_parallel_ranks_in_lockstep():
    doc = _doc(rate=8.0, n=120)
    res = roofline.serve(doc)
    pool, req = _setup(doc)
    parts = [p for _, p in split(req, 2) if p.n]
    apart = [solo(p, pool.engine, pool.power) for p in parts]
    together = simulate_group(parts, pool.engine, pool.power)
    for got, want in zip(res.timelines, together):
        assert _differences(got, want) == []
    # prompts on one rank stall the other's decodes: the decoders' time per token grows
    tpot = [
        np.nanmean((t.finish_s - t.first_token_s) / np.maximum(p.output - 1, 1))
        for t, p in zip(together, parts)
    ]
    alone = [
        np.nanmean((t.finish_s - t.first_token_s) / np.maximum(p.output - 1, 1)) for t, p in zip(apart, parts)
    ]
    assert min(tpot) > max(alone) * 0.99 and np.mean(tpot) > 1.05 * np.mean(alone)


def _disaggregated(prefill, decode, model="qwen3-30b-a3b", routing="round_robin"):
    return {
        "model": model,
        "hardware": "h100-sxm",
        "serving": {
            "requests": 80,
            "arrival": {"rate_per_s": 6.0},
            "routing": routing,
            "prompt_tokens": {"dist": "uniform", "min": 100, "max": 4000},
            "output_tokens": {"dist": "uniform", "min": 2, "max": 150},
            "disaggregation": {"prefill_gpus": 2, "decode_gpus": 2, **prefill, **decode},
        },
    }


@pytest.mark.parametrize("routing", ["round_robin", "least_loaded"])
def test_disaggregated_pools_with_expert_parallelism_step_their_ranks_in_lockstep(routing):
    doc = _disaggregated(
        {"prefill_parallelism": {"tp": 1, "ep": 2}},
        {"decode_parallelism": {"tp": 1, "ep": 2}},
        routing=routing,
    )
    res = roofline.serve(doc)
    rec = res.record
    assert rec["requests"] == 80 and np.all(np.isfinite(np.concatenate([t.finish_s for t in res.timelines])))
    assert rec["replicas"]["lockstep_ranks"] == 2 and rec["disaggregation"]["prefill_lockstep_ranks"] == 2
    assert rec["disaggregation"]["prefill_replicas"] == 2 and rec["disaggregation"]["decode_replicas"] == 2
    # the ranks of each pool step together: the decode ranks' step starts coincide
    decode = res.timelines[-2:]
    both = np.intersect1d(decode[0].series["t_s"], decode[1].series["t_s"])
    assert both.size > 0.5 * min(t.series["t_s"].size for t in decode)
    apart = roofline.serve(_disaggregated({}, {}, routing=routing)).record
    assert apart["replicas"]["lockstep_ranks"] == 1 and apart["tpot_s"]["p50"] != rec["tpot_s"]["p50"]


@pytest.mark.parametrize(
    "prefill, decode, model, needle",
    [
        ({}, {"decode_parallelism": {"tp": 2, "ep": 3}}, "qwen3-30b-a3b", "decode_parallelism.ep"),
        ({"prefill_parallelism": {"tp": 1, "cp": 2, "ep": 2}}, {}, "qwen3-30b-a3b", "context parallelism"),
        ({}, {"decode_parallelism": {"ep": 2}}, "llama-3.1-8b", "no experts"),
    ],
)
def test_a_pools_bad_expert_parallelism_is_one_line(prefill, decode, model, needle, capsys, tmp_path):
    import yaml

    from roofline.cli.main import main

    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_disaggregated(prefill, decode, model)))
    assert main(["serve", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err
