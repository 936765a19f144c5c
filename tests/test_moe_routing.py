"""runtime.moe_routing: under a trained router's skewed routing (power_law, the default) the experts'
kernels take MOE_POWER_LAW_SLOWDOWN times their evenly routed time (measured on AIConfigurator's
MoE tables: benchmarks/aic_moe_skew.py), never less; balanced leaves them as the grids price them."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

import roofline
from roofline.profilers.aic_read import TABLES
from roofline.simulator import flops as F
from roofline.simulator.grouped_gemm import MOE_POWER_LAW_SLOWDOWN, moe_routing_factor
from roofline.simulator.scenario import ScenarioError

EXPERT_OPS = ("expert_up", "expert_act", "expert_down", "expert_combine")


def _ops(monkeypatch, routing, n, model="qwen3-30b-a3b", dtype=None, hardware="h100-sxm", parallelism=None):
    """{op name: Op} of one decode step of n sequences (the ops as priced, before timing)."""
    import roofline.simulator.frameworks as frameworks
    import roofline.simulator.step as step

    seen: dict = {}
    real = step.cost_op

    def spy(op, *args, **kwargs):
        seen.setdefault(op.name, op)
        return real(op, *args, **kwargs)

    doc = {"model": model, "hardware": hardware, "runtime": {"moe_routing": routing}}
    if dtype:
        doc["dtype"] = dtype
    if parallelism:
        doc["parallelism"] = parallelism
    monkeypatch.setattr(step, "cost_op", spy)
    monkeypatch.setattr(frameworks, "cost_op", spy)  # a pass's ops are costed by Framework.cost_pass
    roofline.step_model(doc).cost(np.ones(n), np.full(n, 2000.0))
    monkeypatch.undo()
    return seen


@pytest.mark.parametrize(
    "n, dtype, bits",
    [
        (1024, None, (16, 16)),  # 64 rows per expert
        (384, None, (16, 16)),  # 24
        (2048, {"weights": "fp8", "activations": "fp8"}, (8, 8)),
        (512, {"weights": "int4", "activations": "bf16"}, (4, 16)),
    ],
)
def test_power_law_slows_the_expert_ops_by_the_measured_factor(monkeypatch, n, dtype, bits):
    skewed, even = (
        _ops(monkeypatch, "power_law", n, dtype=dtype),
        _ops(monkeypatch, "balanced", n, dtype=dtype),
    )
    # Qwen3-30B-A3B: 128 experts, top-8; uniform routing touches touched_experts of them
    pairs = n * 8
    x = math.log2(pairs / F.touched_experts(n, 8, 128))
    want = float(np.interp(x, np.arange(13), MOE_POWER_LAW_SLOWDOWN[bits]))
    assert want > 1.0
    for name in EXPERT_OPS:
        assert even[name].memory_rate / skewed[name].memory_rate == pytest.approx(want, rel=1e-12), name
        assert even[name].compute_rate / skewed[name].compute_rate == pytest.approx(want, rel=1e-12), name
    for name in ("qkv_proj", "o_proj", "router", "lm_head"):  # nothing else moves
        assert even[name].memory_rate == skewed[name].memory_rate, name


def test_skew_never_speeds_a_step_up():
    # below 16 rows per expert the tables' power-law kernels run faster (fewer experts read), which
    # the engine's uniform routing already counts in part: the factor holds at 1
    x = np.linspace(0, 14, 57)
    for w, a in MOE_POWER_LAW_SLOWDOWN:
        f = moe_routing_factor(x, w, a)
        assert np.all(f >= 1.0) and np.all(f[x <= 2] == 1.0)
    # a width pair the tables lack reads its input width's curve
    assert moe_routing_factor(6.0, 8, 16) == moe_routing_factor(6.0, 16, 16)


def test_dense_models_ignore_the_routing():
    doc = {"model": "llama-3.1-8b", "hardware": "h100-sxm"}
    wl = {"workload": {"batch": 256, "prompt_tokens": 2000, "output_tokens": 64}}
    a = roofline.simulate(dict(doc, **wl, runtime={"moe_routing": "power_law"})).records()[0]
    b = roofline.simulate(dict(doc, **wl, runtime={"moe_routing": "balanced"})).records()[0]
    assert a["tpot_s"] == b["tpot_s"] and a["ttft_s"] == b["ttft_s"]


def test_a_bad_routing_gets_a_clear_message():
    doc = {"model": "qwen3-30b-a3b", "hardware": "h100-sxm", "runtime": {"moe_routing": "zipf"}}
    doc["workload"] = {"batch": 4, "prompt_tokens": 100, "output_tokens": 4}
    with pytest.raises(ScenarioError, match=r"runtime.moe_routing.*power_law.*balanced"):
        roofline.simulate(doc)


def test_the_skew_script_reads_a_table_as_documented():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from aic_moe_skew import table_curves

    # two shapes x three token counts, power-law 1.3x and 1.1x the balanced time at 64 and 1 rows per
    # expert, and a row of expert parallelism that is left out
    rows = []
    for tokens, ratio in ((8, 1.1), (64, 1.3), (512, 1.3)):
        for inter in (768, 1536):
            for dist, t in (("balanced", 1.0), ("power_law_1.2", ratio), ("power_law_1.01", 9.0)):
                rows.append(("bfloat16", tokens, 2048, inter, 8, 64, 1, 1, dist, t, "moe_torch_flow"))
    rows.append(("bfloat16", 64, 2048, 768, 8, 64, 1, 8, "power_law_1.2", 50.0, "moe_torch_flow"))
    names = TABLES["moe"].columns + TABLES["moe"].optional  # the rows' order: the table's columns
    c = {k: np.array([r[i] for r in rows]) for i, k in enumerate(names)}
    curve, n = table_curves(c)[(16, 16)]
    # 8 tokens x 8 = 64 pairs over 64 experts: octave 0; 64 tokens: 8 rows per expert, octave 3;
    # 512: 64 rows, octave 6
    assert (
        curve[0] == pytest.approx(1.1) and curve[3] == pytest.approx(1.3) and curve[6] == pytest.approx(1.3)
    )
    assert list(n[[0, 3, 6]]) == [2, 2, 2] and n.sum() == 6


@pytest.mark.parametrize("ep", [4, 8])
def test_expert_parallel_ranks_pay_the_busiest_ranks_skew(monkeypatch, ep):
    # Qwen3-235B-A22B (128 experts, top-8) over ep attention ranks sharing the experts, 256
    # sequences per rank: each rank's experts take ep x 256 x 8 / 128 = 16 ep rows each; skewed
    # routing loads the busiest rank most (MOE_POWER_LAW_EP_SLOWDOWN), on top of one kernel's skew

    def ops(routing):
        fp8 = {"weights": "fp8", "activations": "fp8", "kv": "fp8"}
        parallel = {"tp": 1, "dp": ep, "ep": ep}
        return _ops(monkeypatch, routing, 256, "qwen3-235b-a22b", fp8, "h200", parallel)

    skewed, even = ops("power_law"), ops("balanced")
    x = math.log2(256 * 8 / (F.touched_experts(256 * ep, 8, 128) / ep))
    want = float(moe_routing_factor(x, 8, 8, ep))
    one_kernel = float(moe_routing_factor(x, 8, 8))
    assert want > one_kernel * 1.05  # the ranks' imbalance adds at least 5% here
    for name in ("expert_up", "expert_down"):
        assert even[name].memory_rate / skewed[name].memory_rate == pytest.approx(want, rel=1e-12), name
    assert even["ep_dispatch_combine"].fixed_s == skewed["ep_dispatch_combine"].fixed_s


def test_the_ep_imbalance_reads_its_table_between_sizes():
    from roofline.simulator.grouped_gemm import MOE_POWER_LAW_EP_SLOWDOWN, moe_ep_imbalance

    t = MOE_POWER_LAW_EP_SLOWDOWN
    assert moe_ep_imbalance(7.0, 1) == 1.0
    assert moe_ep_imbalance(7.0, 4) == pytest.approx(t[4][7] / t[1][7], rel=1e-12)
    # EP 6: linear in log2 ep between EP 4 and EP 8 (log2 6 = 2.585, 58.5% of the way)
    w = math.log2(6) - 2.0
    assert moe_ep_imbalance(7.0, 6) == pytest.approx(
        (1 - w) * t[4][7] / t[1][7] + w * t[8][7] / t[1][7], rel=1e-12
    )
    assert moe_ep_imbalance(7.0, 256) == pytest.approx(t[64][7] / t[1][7], rel=1e-12)  # the largest holds
