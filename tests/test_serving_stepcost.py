"""The serving loop's fast step cost equals the engine's `StepModel.cost` exactly (rel 1e-9) on
random mixed batches of several architectures and method stacks, one step at a time and over runs
of decode steps; where its parts stop reproducing the whole it falls back to `StepModel.cost`."""

from __future__ import annotations

import numpy as np
import pytest

import roofline
from roofline.simulator.serving.stepcost import FastStep
from roofline.simulator.step import StepCost, StepModel

CASES = [
    ("llama-3.1-8b", []),
    ("deepseek-v2-lite", []),  # MLA
    ("gemma-2-9b", []),  # sliding-window layers
    ("jamba-1.5-mini", []),  # Mamba + attention + MoE
    ("llama-3.1-8b", [{"name": "quest", "token_budget": 2048}, {"name": "kv_quant", "bits": 4}]),
    ("llama-3.1-8b", [{"name": "duo_attention", "retrieval_head_fraction": 0.5}]),
]
IDS = ["llama", "mla", "sliding", "hybrid", "quest+kv_quant", "duo"]


def _steps(model, methods, **extra):
    return roofline.step_model({"model": model, "hardware": "h100-sxm", "methods": methods, **extra})


def _random_batch(rng):
    decoders = int(rng.integers(0, 60))
    prefills = int(rng.integers(0 if decoders else 1, 3))
    new = np.concatenate([rng.integers(2, 4000, prefills), np.ones(decoders, int)])
    cached = np.concatenate([rng.integers(0, 6000, prefills), rng.integers(1, 30000, decoders)])
    return new, cached


def _assert_random_batches_match(fast, steps, seed: int, batches: int) -> None:
    """The fast step's time equals StepModel.cost's (rel 1e-9) on random mixed batches."""
    rng = np.random.default_rng(seed)
    for _ in range(batches):
        new, cached = _random_batch(rng)
        assert fast.cost(new, cached)[0] == pytest.approx(steps.cost(new, cached).time_s, rel=1e-9)


@pytest.mark.parametrize("model, methods", CASES, ids=IDS)
def test_fast_step_equals_step_model(model, methods):
    steps = _steps(model, methods)
    fast = FastStep(steps)
    assert fast.exact
    rng = np.random.default_rng(7)
    for _ in range(25):
        new, cached = _random_batch(rng)
        want = steps.cost(new, cached)
        got = fast.cost(new, cached, cached + new + 5)
        assert got[0] == pytest.approx(want.time_s, rel=1e-9)
    # A lone one-token chunk on a cache decodes (StepModel's rule), a one-token prompt prefills.
    for new, cached in (([1], [0]), ([1], [7]), ([1, 1], [0, 9])):
        assert fast.cost(new, cached)[0] == pytest.approx(steps.cost(new, cached).time_s, rel=1e-9)


@pytest.mark.parametrize("model, methods", CASES[:4], ids=IDS[:4])
def test_decode_run_equals_stepping(model, methods):
    steps = _steps(model, methods)
    fast = FastStep(steps)
    cached = np.random.default_rng(3).integers(1, 9000, 40)
    times, flops, byts = fast.decode_run(cached, 6)
    for j in range(6):
        want = steps.cost(np.ones(cached.size), cached + j)
        assert times[j] == pytest.approx(want.time_s, rel=1e-9)


@pytest.mark.parametrize(
    "layout",
    [
        {"parallelism": {"tp": 4}, "runtime": {"overlap": "overlap"}},
        {"parallelism": {"tp": 2, "cp": 2}},
        {"parallelism": {"pp": 4}, "runtime": {"framework": "trtllm"}},  # micro-batches + relay
        # decode padded to captured graphs (24 decoders -> 32), eager above the largest
        {"runtime": {"framework": "trtllm", "cuda_graph_batch_sizes": [1, 2, 4, 8, 16, 32]}},
        {"runtime": {"framework": "trtllm", "cuda_graph_batch_sizes": [1, 2, 4, 8, 16]}},
    ],
    ids=["tp4-overlap", "tp2-cp2", "pp4-trtllm", "graphs-padded", "graphs-eager-above"],
)
def test_parallel_layouts_stay_exact(layout):
    steps = _steps("llama-3.1-70b", [], **layout)
    fast = FastStep(steps)
    assert fast.exact
    _assert_random_batches_match(fast, steps, 11, 10)
    cached = np.random.default_rng(5).integers(1, 9000, 24)
    times = fast.decode_run(cached, 3)[0]
    for j in range(3):
        assert times[j] == pytest.approx(steps.cost(np.ones(cached.size), cached + j).time_s, rel=1e-9)


class _Changed(StepModel):
    """A step model whose whole disagrees with its parts (as a new per-step term would)."""

    def cost(self, new, cached) -> StepCost:
        c = super().cost(new, cached)
        return StepCost(c.time_s + 1e-3, c.flops, c.bytes, c.bound, c.breakdown, c.flops_by_kind, c.tokens)


def test_falls_back_to_step_model_when_the_parts_disagree():
    steps = _steps("llama-3.1-8b", [])
    changed = _Changed.__new__(_Changed)
    changed.__dict__.update(steps.__dict__)
    fast = FastStep(changed)
    assert not fast.exact
    new, cached = np.array([300, 1, 1]), np.array([0, 500, 900])
    assert fast.cost(new, cached)[0] == changed.cost(new, cached).time_s
    run = fast.decode_run(np.array([100, 200]), 3)[0]
    assert run[2] == changed.cost([1, 1], [102, 202]).time_s


@pytest.mark.parametrize("model", ["llama-3.1-8b", "mixtral-8x7b"])
def test_fast_step_stays_exact_with_the_shipped_calibration(shipped_profiles, model):
    # measured grids: the decode kernel's time at its KV-length nodes depends on its decoders, the
    # GEMMs' and fused MoE's attainment on the step's rows; the fast path must still reproduce
    # StepModel.cost
    steps = _steps(model, [])
    assert steps.cost([1], [10]).time_s > 0
    fast = FastStep(steps)
    assert fast.exact
    _assert_random_batches_match(fast, steps, 11, 15)
    cached = np.random.default_rng(12).integers(1, 9000, 40)
    times, _, _ = fast.decode_run(cached, 4)
    for j in range(4):
        assert times[j] == pytest.approx(steps.cost(np.ones(cached.size), cached + j).time_s, rel=1e-9)
