"""`roofline plan --serving`: the candidate deployments, the max-sustainable-rate search, the ranking
against serve runs made by hand, dp scaling, executors that agree, and the CLI's errors and exit codes.
Small request counts keep each serving run near 0.1 s."""

from __future__ import annotations

import json

import pytest

import roofline
from roofline.cli.main import main
from roofline.executors import InProcess, LocalPool, RayCluster, make_executor
from roofline.serving_search import SATURATION_RUN_MAX_SCALE, saturated_requests, search_serving
from roofline.simulator.errors import UserError
from roofline.simulator.serving.capacity import MAX_DOUBLINGS, MAX_HALVINGS, max_sustainable_rate
from roofline.simulator.serving.search_space import (
    AGGREGATED,
    DISAGGREGATED,
    EP_ALL,
    ServingLayout,
    enumerate_serving_layouts,
    expert_degrees,
)

SCEN = "scenarios/serve-llama3-8b-h100.yaml"
SMALL = ["serving.requests=120"]


@pytest.fixture(scope="module")
def two_gpu_plan():
    """Every deployment of up to 2 H100s at 12 req/s: tp1 x dp1, tp1 x dp2, tp2 x dp1, P1:D1."""
    return search_serving(SCEN, SMALL, gpus_max=2, rate_per_s=12.0)


# --- the candidates -------------------------------------------------------------------------------


def test_enumeration_counts_every_layout_and_ratio():
    """Up to 4 GPUs, tp in {1, 2, 4}: aggregated tp1 x dp1..4, tp2 x dp1..2, tp4 = 7; disaggregated
    (prefill tp, decode tp) with n_pre * ptp + n_dec * dtp <= 4: (1,1): 6 ratios, (1,2): 2, (2,1): 2,
    (2,2): 1 = 11."""
    layouts = enumerate_serving_layouts(["h100-sxm"], 4, [1, 2, 4], [1], [256], ["dense"])
    assert sum(x.kind == AGGREGATED for x in layouts) == 7
    assert sum(x.kind == DISAGGREGATED for x in layouts) == 11
    assert all(1 <= x.gpus <= 4 for x in layouts)
    assert layouts == sorted(layouts) and len(set(layouts)) == len(layouts)
    ratios = {(x.prefill_replicas, x.decode_replicas) for x in layouts if x.prefill_tp == x.decode_tp == 1}
    assert ratios == {(1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (3, 1)}
    # crossed with each hardware, max_num_seqs and stack; a tp the heads refuse is left out
    crossed = enumerate_serving_layouts(
        ["h100-sxm", "h200"], 4, [1, 2, 4], [1], [64, 256], ["dense", "kv_quant"]
    )
    assert len(crossed) == 18 * 2 * 2 * 2
    no_tp2 = enumerate_serving_layouts(
        ["h100-sxm"], 4, [1, 2, 4], [1], [256], ["dense"], tp_ok=lambda t: t != 2
    )
    assert all(2 not in (x.tp, x.prefill_tp, x.decode_tp) for x in no_tp2)
    assert any(x.gpus == 1 for x in no_tp2)


def test_layout_overrides_set_exactly_its_deployment():
    (agg,) = [
        x
        for x in enumerate_serving_layouts(["h200"], 4, [2], [1], [64], ["dense"], disaggregated=False)
        if x.dp == 2
    ]
    o = dict(agg.overrides())
    assert (o["parallelism.tp"], o["parallelism.cp"], o["parallelism.dp"], o["hardware"]) == (2, 1, 2, "h200")
    assert o["serving.scheduler.max_num_seqs"] == 64 and o["serving.disaggregation.prefill_gpus"] is None
    dis = enumerate_serving_layouts(["h200"], 4, [1, 2], [1], [64], ["dense"], aggregated=False)
    x = next(
        d for d in dis if (d.prefill_replicas, d.prefill_tp, d.decode_replicas, d.decode_tp) == (2, 1, 1, 2)
    )
    o = dict(x.overrides())
    assert (o["serving.disaggregation.prefill_gpus"], o["serving.disaggregation.decode_gpus"]) == (2, 2)
    assert x.gpus == 4 and x.label == "P2x(tp1 cp1) : D1x(tp2)"


def test_expert_parallel_choices_take_whole_tensor_parallel_groups():
    # ep: 1, or a multiple of tp dividing tp x dp; `all` is tp x dp; the model's experts must split
    assert expert_degrees([1, EP_ALL], 1, 8) == [1, 8]
    assert expert_degrees([1, 2, 4, 8, 16], 2, 4) == [1, 2, 4, 8]  # 2 | ep | 8
    assert expert_degrees([3, EP_ALL], 2, 3) == [6]  # 3 is no multiple of tp = 2
    assert expert_degrees([EP_ALL], 1, 1) == [1]
    assert expert_degrees([4, 8], 1, 8, ok=lambda ep: 60 % ep == 0) == [4]  # 60 experts: not over 8
    # up to 4 GPUs, tp in {1, 2}, ep in {1, all}: tp1 x dp1..4 (dp2..4 twice), tp2 x dp1..2 (twice)
    layouts = enumerate_serving_layouts(
        ["h100-sxm"], 4, [1, 2], [1], [256], ["dense"], disaggregated=False, ep_choices=[1, EP_ALL]
    )
    shapes = sorted((x.tp, x.dp, x.ep) for x in layouts)
    assert shapes == [(1, 1, 1), (1, 2, 1), (1, 2, 2), (1, 3, 1), (1, 3, 3), (1, 4, 1), (1, 4, 4)] + [
        (2, 1, 1),
        (2, 1, 2),
        (2, 2, 1),
        (2, 2, 4),
    ]
    x = next(x for x in layouts if (x.tp, x.dp, x.ep) == (1, 4, 4))
    o = dict(x.overrides())
    assert (o["parallelism.tp"], o["parallelism.dp"], o["parallelism.ep"]) == (1, 4, 4)
    assert x.label == "tp1 cp1 x dp4 ep4" and x.fields()["ep"] == 4 and x.gpus == 4
    assert next(x for x in layouts if x.ep == 1 and x.dp == 4).label == "tp1 cp1 x dp4"


def test_expert_choices_reach_the_decode_pools_of_disaggregated_candidates():
    layouts = enumerate_serving_layouts(
        ["h100-sxm"], 4, [1, 2], [1], [256], ["dense"], aggregated=False, ep_choices=[1, EP_ALL]
    )
    plain = enumerate_serving_layouts(["h100-sxm"], 4, [1, 2], [1], [256], ["dense"], aggregated=False)
    wide = [x for x in layouts if x.decode_ep > 1]
    # each decode pool of more than one GPU gains its `all`: the experts over its GPUs (one replica
    # of tp 2: the experts split whole over its two GPUs instead of sharded)
    assert len(layouts) == len(plain) + len(wide)
    assert all(x.decode_ep == x.decode_gpus > 1 for x in wide)
    assert len(wide) == sum(x.decode_gpus > 1 for x in plain)
    x = next(x for x in wide if (x.prefill_tp, x.decode_replicas, x.decode_tp) == (2, 2, 1))
    assert x.label == "P1x(tp2 cp1) : D2x(tp1) ep2" and x.fields()["decode_ep"] == 2
    assert dict(x.overrides())["serving.disaggregation.decode_parallelism.ep"] == 2


def test_pipeline_choices_add_stages_to_the_aggregated_candidates():
    layouts = enumerate_serving_layouts(
        ["h100-sxm"], 4, [1, 2], [1], [256], ["dense"], disaggregated=False, pp_choices=[1, 2, 8]
    )
    # pp 1: tp1 x dp1..4, tp2 x dp1..2; pp 2: tp1 x dp1..2, tp2 x dp1; pp 8 does not fit 4 GPUs
    assert sorted((x.tp, x.pp, x.dp) for x in layouts) == [
        (1, 1, 1), (1, 1, 2), (1, 1, 3), (1, 1, 4), (1, 2, 1), (1, 2, 2), (2, 1, 1), (2, 1, 2), (2, 2, 1)
    ]  # fmt: skip
    x = next(x for x in layouts if (x.tp, x.pp, x.dp) == (1, 2, 2))
    o = dict(x.overrides())
    assert (o["parallelism.tp"], o["parallelism.pp"], o["parallelism.dp"]) == (1, 2, 2) and x.gpus == 4
    assert x.label == "tp1 cp1 pp2 x dp2" and x.fields()["pp"] == 2
    # the saturation run turns over each of the dp x pp schedulers' batches
    assert saturated_requests(x, 100) == min(8 * 4 * 256, SATURATION_RUN_MAX_SCALE * 100)


def test_the_search_runs_expert_parallel_candidates_as_serve_does():
    scen = {
        "model": "qwen3-30b-a3b",
        "hardware": "h100-sxm",
        "serving": {
            "requests": 60,
            "seed": 1,
            "arrival": {"rate_per_s": 4.0},
            "prompt_tokens": {"dist": "uniform", "min": 200, "max": 3000},
            "output_tokens": {"dist": "uniform", "min": 20, "max": 200},
            "slo": {"ttft_s": 2.0, "tpot_s": 0.05},
        },
    }
    plan = search_serving(scen, gpus_max=2, tp=[1], ep=[EP_ALL], disaggregated=False)
    labels = [r["label"] for r in plan.rows]
    assert labels == ["tp1 cp1 x dp1", "tp1 cp1 x dp2 ep2"]  # `all` on one GPU is ep 1
    row = plan.rows[1]
    by_hand = roofline.serve(
        {**scen, "parallelism": {"tp": 1, "dp": 2, "ep": 2}, "serving": {**scen["serving"]}}
    ).record
    assert row["tpot_p90_s"] == pytest.approx(by_hand["tpot_s"]["p90"], rel=1e-12)
    with pytest.raises(UserError, match="no experts"):
        search_serving(SCEN, SMALL, gpus_max=2, ep=[2])
    with pytest.raises(UserError, match="ep choice"):
        search_serving(scen, gpus_max=2, ep=[0])


# --- the max sustainable rate ----------------------------------------------------------------------


@pytest.mark.parametrize("start", [0.3, 7.0, 7.3, 20.0, 500.0])
def test_rate_bisection_brackets_a_threshold_within_the_tolerance(start):
    boundary, tol = 7.3, 0.05
    asked = []

    def meets(r):
        asked.append(r)
        return r <= boundary

    out = max_sustainable_rate(meets, start, start <= boundary, tol)
    assert out.lo <= boundary < out.hi and out.hi / out.lo <= 1 + tol
    assert out.rate_per_s == out.lo and out.runs == len(asked)


def test_rate_search_limits():
    none = max_sustainable_rate(lambda r: False, 8.0, False, 0.05)
    assert none.rate_per_s == 0.0 and none.runs == MAX_HALVINGS
    always = max_sustainable_rate(lambda r: True, 8.0, True, 0.05)
    assert always.rate_per_s == 8.0 * 2**MAX_DOUBLINGS and always.hi is None
    with pytest.raises(ValueError):
        max_sustainable_rate(lambda r: True, 0.0, True, 0.05)


# --- the search against serve runs made by hand -------------------------------------------------------


def _by_hand(row: dict, rate: float) -> dict:
    """The serve record of a row's deployment at `rate`, from --set texts written here."""
    lay = row["layout"]
    sets = [
        *SMALL,
        f"serving.arrival.rate_per_s={rate}",
        f"serving.scheduler.max_num_seqs={lay['max_num_seqs']}",
    ]
    if lay["kind"] == "aggregated":
        sets += [f"parallelism.tp={lay['tp']}", f"parallelism.cp={lay['cp']}", f"parallelism.dp={lay['dp']}"]
    else:
        d = "serving.disaggregation."
        sets += [
            f"{d}prefill_gpus={lay['prefill_replicas'] * lay['prefill_tp'] * lay['prefill_cp']}",
            f"{d}decode_gpus={lay['decode_replicas'] * lay['decode_tp']}",
            f"{d}prefill_parallelism.tp={lay['prefill_tp']}",
            f"{d}prefill_parallelism.cp={lay['prefill_cp']}",
            f"{d}decode_parallelism.tp={lay['decode_tp']}",
            f"parallelism.tp={lay['decode_tp']}",
        ]
    return roofline.serve(SCEN, sets).record


def test_best_is_the_cheapest_feasible_of_serving_each_candidate_by_hand(two_gpu_plan):
    plan = two_gpu_plan
    assert len(plan.rows) == 4
    runs = [_by_hand(r, 12.0) for r in plan.rows]
    for row, rec in zip(plan.rows, runs):
        assert row["slo_attainment"] == rec["slo_attainment"]
        assert row["usd_per_million_output_tokens"] == rec["cost"]["usd_per_million_output_tokens"]
        assert row["tpot_p90_s"] == rec["tpot_s"]["p90"] and row["gpus"] == rec["gpus"]
        assert row["feasible"] == (rec["slo_attainment"] >= 0.9)
    feasible = [i for i, rec in enumerate(runs) if rec["slo_attainment"] >= 0.9]
    cheapest = min(feasible, key=lambda i: runs[i]["cost"]["usd_per_million_output_tokens"])
    assert plan.best is plan.rows[cheapest]
    # the max rate met the target, and either the rate one tolerance step above it missed or it is
    # capped at the saturated throughput (no sustained rate exceeds it)
    best = plan.best
    assert _by_hand(best, best["max_rate_per_s"])["slo_attainment"] >= 0.9
    assert best["max_rate_per_s"] <= best["saturated_requests_per_s"]
    if best["max_rate_missed_per_s"] is None:
        assert best["max_rate_per_s"] == best["saturated_requests_per_s"]
    else:
        assert _by_hand(best, best["max_rate_missed_per_s"])["slo_attainment"] < 0.9
        assert best["max_rate_missed_per_s"] / best["max_rate_per_s"] <= 1.05


def test_the_front_is_not_dominated(two_gpu_plan):
    plan = two_gpu_plan
    on = [r for r, f in zip(plan.rows, plan.front) if f]
    assert on and all(r["feasible"] for r in on)
    for r in on:
        for other in plan.rows:
            if other["feasible"] and other is not r:
                assert not (
                    other["usd_per_million_output_tokens"] < r["usd_per_million_output_tokens"]
                    and other["tpot_p90_s"] < r["tpot_p90_s"]
                )


def test_a_layout_whose_p90_ttft_misses_the_slo_is_infeasible():
    """With a 150 ms TTFT objective the 1-GPU deployments' p90 TTFT at 12 req/s exceeds it: more
    than 10% of requests miss, so at a 90% target they are infeasible."""
    plan = search_serving(SCEN, SMALL, gpus_max=2, rate_per_s=12.0, ttft_s=0.15, disaggregated=False)
    slow = [r for r in plan.rows if r["ttft_p90_s"] > 0.15]
    assert slow and all(not r["feasible"] for r in slow)
    assert all(r["feasible"] == (r["slo_attainment"] >= 0.9) for r in plan.rows)


def test_more_replicas_raise_the_max_rate_about_linearly():
    """The same per-replica layout (tp1) with dp = 1, 2, 4 and the same requests per replica: the max
    sustainable rate grows with dp, within [0.9, 1.3] x dp of dp = 1's. Above linear because
    round-robin dealing gives each replica Erlang-dp gaps (CV 1/sqrt(dp)), smoother than Poisson,
    plus the bisection's 5% tolerance either way."""
    rates = {}
    for dp in (1, 2, 4):
        plan = search_serving(
            SCEN,
            [f"serving.requests={150 * dp}"],
            gpus_min=dp,
            gpus_max=dp,
            tp=[1],
            disaggregated=False,
            rate_per_s=8.0,
        )
        (row,) = plan.rows
        assert row["layout"]["dp"] == dp
        rates[dp] = row["max_rate_per_s"]
    assert rates[1] < rates[2] < rates[4]
    for dp in (2, 4):
        assert 0.9 * dp <= rates[dp] / rates[1] <= 1.3 * dp


# --- executors ----------------------------------------------------------------------------------------


def test_the_saturated_throughput_of_a_short_search_is_the_deployments_steady_one(two_gpu_plan):
    """The cap comes from a run long enough for the batches to turn over (STEADY_TURNOVERS per
    replica, at most SATURATION_RUN_MAX_SCALE x the search's 120 requests): within 8% of an offline
    run of 8,192 requests (its 120 requests alone gave 6.6 req/s against 11.3, 42% low). 8%: the
    two runs draw different request lengths (1,200 requests of this traffic give 11.8)."""
    (row,) = [r for r in two_gpu_plan.rows if r["label"] == "tp1 cp1 x dp1"]
    layout = ServingLayout(
        "h100-sxm", AGGREGATED, tp=1, cp=1, dp=1, max_num_seqs=row["layout"]["max_num_seqs"]
    )
    assert saturated_requests(layout, 120) == SATURATION_RUN_MAX_SCALE * 120  # 8 x 256 > 1,200
    assert saturated_requests(layout, 5000) == 5000  # a long search's own count
    long = roofline.serve(
        SCEN, ["serving.requests=8192", "serving.arrival.rate_per_s=null", "serving.arrival.offline=true"]
    ).record["throughput"]["requests_per_s"]
    assert row["saturated_requests_per_s"] == pytest.approx(long, rel=0.08)


def test_the_process_pool_and_in_process_give_identical_results(two_gpu_plan):
    pooled = search_serving(SCEN, SMALL, gpus_max=2, rate_per_s=12.0, executor=LocalPool(2))
    assert pooled.rows == two_gpu_plan.rows
    assert (pooled.ranked, pooled.front) == (two_gpu_plan.ranked, two_gpu_plan.front)


class FakeRay:
    """Ray's API as RayCluster uses it; tasks run here, finished in reverse order."""

    def __init__(self):
        self.address, self.started = None, False

    def is_initialized(self):
        return self.started

    def init(self, address=None, ignore_reinit_error=False):
        self.address, self.started = address, True

    def remote(self, fn):
        class Task:
            @staticmethod
            def remote(item):
                return ("ref", fn, item)

        return Task

    def get(self, refs):
        done = {id(r): r[1](r[2]) for r in reversed(refs)}
        return [done[id(r)] for r in refs]


def test_ray_dispatch_runs_the_same_units(two_gpu_plan):
    fake = FakeRay()
    plan = search_serving(
        SCEN, SMALL, gpus_max=2, rate_per_s=12.0, executor=RayCluster("ray://head:10001", fake)
    )
    assert fake.address == "ray://head:10001"
    assert plan.rows == two_gpu_plan.rows and plan.executor == "Ray cluster at ray://head:10001"


def test_make_executor_choices(monkeypatch):
    assert isinstance(make_executor(1), InProcess)
    assert isinstance(make_executor(3), LocalPool) and make_executor(3).workers == 3
    import builtins

    real = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray":
            raise ImportError("no ray")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(UserError, match=r"roofline\[ray\]"):
        make_executor(ray_address="auto")


# --- the CLI ------------------------------------------------------------------------------------------


def test_cli_json_names_the_best_and_writes_atomically(tmp_path, capsys, two_gpu_plan):
    out = tmp_path / "plan.json"
    args = ["plan", "--serving", SCEN, "--gpus-max", "2", "--rate", "12", "--set", "serving.requests=120"]
    assert main([*args, "--workers", "1", "--format", "json", "-o", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["best"]["label"] == two_gpu_plan.best["label"] and doc["best"]["cheapest"]
    assert doc["evaluated"] == 4 and all(d["pareto"] for d in doc["deployments"])
    assert main([*args, "--workers", "1", "--format", "csv", "--all"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 + 4 and "max_rate_per_s" in lines[0]


def test_cli_exits_1_with_the_reason_when_nothing_meets_the_slo(capsys):
    code = main(
        [
            "plan",
            "--serving",
            SCEN,
            "--gpus-max",
            "1",
            "--rate",
            "400",
            "--set",
            "serving.requests=120",
            "--workers",
            "1",
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert "max sustainable rate of the best one" in err and "< the requested 400" in err


@pytest.mark.parametrize(
    "flags, needle",
    [
        (["--serving", SCEN, "--rate", "-2"], "--rate"),
        (["--serving", SCEN, "--tp", "two"], "--tp"),
        (["--serving", SCEN, "--ep", "1,most"], "--ep"),
        (["--serving", SCEN, "--pp", "0"], "--pp"),
        (["--serving", SCEN, "--ep", "1,all"], "--ep"),  # a dense model: no experts to split
        (["scenarios/llama3-8b-4k-h100.yaml", "--ep", "2"], "--ep"),  # without --serving
        (["--serving", SCEN, "--max-num-seqs", "0"], "--max-num-seqs"),
        (["--serving", SCEN, "--attainment", "2"], "--attainment"),
        (["--serving", SCEN, "--rate-tol", "0"], "--rate-tol"),
        (["--serving", SCEN, "--workers", "0"], "--workers"),
        (["--serving", SCEN, "--methods", "nosuch"], "--methods"),
        (["--serving", SCEN, "--prompt", "4k"], "--prompt"),
        (["--serving", SCEN, "--hardware", "h100-sxmm"], "--hardware"),
        (["--serving", "scenarios/llama3-8b-4k-h100.yaml"], "serving"),
        (["--serving", SCEN, "--set", "serving.arrival.rate_per_s=null"], "serving.arrival"),
        (["--serving", SCEN, "--set", "serving.slo={ttft_s: null, tpot_s: null}"], "serving.slo"),
        (["scenarios/llama3-8b-4k-h100.yaml", "--gpus-max", "2", "--workers", "2"], "--workers"),
    ],
)
def test_cli_bad_flags_give_one_line(flags, needle, capsys):
    assert main(["plan", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err


def test_plan_help_names_the_serving_search(capsys):
    with pytest.raises(SystemExit):
        main(["plan", "--help"])
    out = capsys.readouterr().out
    assert "--serving FILE" in out and "--ray ADDRESS" in out and "--attainment" in out


def test_every_search_record_key_is_documented(two_gpu_plan):
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "serving.md").read_text()
    for key in [*two_gpu_plan.rows[0], *two_gpu_plan.rows[0]["layout"], "cheapest", "pareto", "meets_slo"]:
        assert f"`{key}`" in text, key


def test_stacks_and_max_num_seqs_are_searched_and_change_the_answer():
    """One GPU at 6 req/s: 4-bit KV reads fewer bytes per decode step than dense, so its p90 TPOT is
    lower at the same layout; max_num_seqs 1 serves one request at a time (a ~4 s E2E each), so
    the queue breaks the TTFT objective and only max_num_seqs 256 is feasible."""
    plan = search_serving(
        SCEN,
        SMALL,
        gpus_max=1,
        rate_per_s=6.0,
        max_num_seqs=[1, 256],
        stacks=[("dense", []), ("kv_quant", [{"name": "kv_quant", "bits": 4}])],
    )
    rows = {(r["layout"]["stack"], r["layout"]["max_num_seqs"]): r for r in plan.rows}
    assert set(rows) == {("dense", 1), ("dense", 256), ("kv_quant", 1), ("kv_quant", 256)}
    assert rows["kv_quant", 256]["tpot_p90_s"] < rows["dense", 256]["tpot_p90_s"]
    assert not rows["dense", 1]["feasible"] and not rows["kv_quant", 1]["feasible"]
    assert rows["dense", 256]["feasible"]
    assert rows["dense", 1]["max_rate_per_s"] < rows["dense", 256]["max_rate_per_s"]


def test_the_max_rate_never_exceeds_the_saturated_throughput():
    # A finite run can pass above capacity (it ends before its queue grows); the search caps the
    # rate at the deployment's saturated throughput, and brackets below it otherwise.
    from roofline.simulator.serving.capacity import max_sustainable_rate

    always = max_sustainable_rate(lambda r: True, 1.0, True, 0.05, ceiling=8.0)
    assert always.rate_per_s == 8.0 and always.hi is None
    below = max_sustainable_rate(lambda r: r < 5.0, 1.0, True, 0.05, ceiling=8.0)
    assert 5.0 / 1.05 <= below.rate_per_s < 5.0 and below.hi <= 8.0
    at_cap = max_sustainable_rate(lambda r: True, 12.0, True, 0.05, ceiling=8.0)
    assert at_cap.rate_per_s == 8.0 and at_cap.runs == 0
    # missed above the cap: the cap is tried first, and the search goes on below it (it once
    # bisected between the requested rate and its half: 26 req/s over a 6.6 req/s saturation)
    missed = max_sustainable_rate(lambda r: r < 20.0, 30.0, False, 0.05, ceiling=8.0)
    assert missed.rate_per_s == 8.0 and missed.hi is None and missed.runs == 1
    slow = max_sustainable_rate(lambda r: r < 3.0, 30.0, False, 0.05, ceiling=8.0)
    assert 3.0 / 1.05 <= slow.rate_per_s < 3.0 and slow.hi <= 8.0


def test_every_rows_max_rate_is_within_its_saturated_throughput():
    # at 30 req/s the 1-GPU layout misses the SLO; its search once bisected up to 26 req/s
    # against a 6.6 req/s saturated throughput
    plan = search_serving(SCEN, SMALL, gpus_max=1, rate_per_s=30.0, disaggregated=False)
    assert plan.rows and any(r["slo_attainment"] < 0.9 for r in plan.rows)
    for r in plan.rows:
        assert 0 < r["max_rate_per_s"] <= r["saturated_requests_per_s"]


def _square(x):
    return x * x


@pytest.mark.parametrize("executor", [InProcess(), LocalPool(2)], ids=["in-process", "pool"])
def test_executors_report_progress_and_keep_the_items_order(executor):
    seen = []
    assert executor.map(_square, range(7), lambda done, total: seen.append((done, total))) == [
        x * x for x in range(7)
    ]
    assert seen == [(i, 7) for i in range(1, 8)]


def test_progress_lines_on_a_log_and_redraws_on_a_terminal():
    import io

    from roofline.cli.plan_serving import Progress

    times = iter([0.0, 10.0, 20.0, 30.0])  # the clock is read at the start and for each line
    log = io.StringIO()
    p = Progress(log, clock=lambda: next(times))
    for done in (1, 4, 5, 8, 40):  # a log gets a line at each tenth of the search and at the end
        p(done, 40)
    assert log.getvalue().splitlines() == [
        "plan --serving: 4/40 deployments evaluated in 10 s, about 90 s left",
        "plan --serving: 8/40 deployments evaluated in 20 s, about 80 s left",
        "plan --serving: 40/40 deployments evaluated in 30 s",
    ]

    class Tty(io.StringIO):
        def isatty(self):
            return True

    term = Tty()
    p = Progress(term, clock=iter([0.0, 5.0, 10.0]).__next__)
    p(1, 2)
    p(2, 2)
    assert term.getvalue() == (
        "\rplan --serving: 1/2 deployments evaluated in 5 s, about 5 s left"
        "\rplan --serving: 2/2 deployments evaluated in 10 s\n"
    )
