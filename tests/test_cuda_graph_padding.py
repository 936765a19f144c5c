"""runtime.cuda_graph_batch_sizes: a decode step replays the smallest captured CUDA graph that holds
its batch, padded with dummy sequences whose rows every token-parallel op runs (their attention
over one token is not counted), and is launched eagerly above the largest."""

from __future__ import annotations

import numpy as np
import pytest

import roofline
from roofline.simulator.errors import UserError
from roofline.simulator.scenario import ScenarioError

BASE = {"model": "qwen3-30b-a3b", "hardware": "h100-sxm", "runtime": {"framework": "trtllm"}}


def _steps(sizes=None, **runtime):
    return roofline.step_model(
        dict(BASE, runtime=dict(BASE["runtime"], cuda_graph_batch_sizes=sizes, **runtime))
    )


def _decode(steps, n, cached=3000.0):
    return steps.cost(np.ones(n), np.full(n, cached))


# Per sequence, not per row: the attention core, the head (final norm, LM head, sampling: the real
# sequences' logits) and the framework's CPU iteration
PER_SEQUENCE = {"attention", "final_norm", "lm_head", "sampling", "framework_step"}


def _op_times(monkeypatch, steps, n):
    """{op name: seconds} of one decode step of n sequences."""
    import roofline.simulator.frameworks as frameworks
    import roofline.simulator.step as step

    seen: dict = {}
    real = step.cost_op

    def spy(op, *args, **kwargs):
        c = real(op, *args, **kwargs)
        seen[c.name] = seen.get(c.name, 0.0) + float(np.sum(c.time_s))
        return c

    monkeypatch.setattr(step, "cost_op", spy)
    monkeypatch.setattr(frameworks, "cost_op", spy)  # a pass's ops are costed by Framework.cost_pass
    _decode(steps, n)
    monkeypatch.undo()
    return seen


def test_a_padded_step_runs_the_graphs_rows_and_its_own_sequences(monkeypatch):
    padded = _op_times(monkeypatch, _steps([1, 2, 4, 8, 16, 32, 64]), 40)  # replays the 64 graph
    rows64, own40 = _op_times(monkeypatch, _steps(), 64), _op_times(monkeypatch, _steps(), 40)
    assert {"expert_up", "expert_down", "qkv_proj", "router"} <= set(padded)
    for name, t in padded.items():
        want = own40[name] if name in PER_SEQUENCE else rows64[name]
        assert t == pytest.approx(want, rel=1e-12), name
    assert padded["expert_up"] > own40["expert_up"]
    # a batch of a captured size is not padded
    assert _decode(_steps([1, 2, 4, 8, 16, 32, 64]), 32).time_s == pytest.approx(
        _decode(_steps(), 32).time_s, rel=1e-12
    )


def test_above_the_largest_graph_the_step_is_launched_eagerly():
    eager = _decode(_steps(cuda_graphs=False), 40)
    assert _decode(_steps([1, 2, 4, 8, 16, 32]), 40).time_s == pytest.approx(eager.time_s, rel=1e-12)
    assert eager.time_s > _decode(_steps(), 40).time_s
    # without graphs at all the sizes change nothing
    assert _decode(_steps([64], cuda_graphs=False), 40).time_s == pytest.approx(eager.time_s, rel=1e-12)


def test_prefill_passes_are_never_padded():
    a = _steps([1, 64]).cost(np.array([500, 1, 1]), np.array([0, 900, 900])).time_s
    b = _steps().cost(np.array([500, 1, 1]), np.array([0, 900, 900])).time_s
    assert a == pytest.approx(b, rel=1e-12)


def _static(batch, sizes=None):
    doc = dict(BASE, workload={"batch": batch, "prompt_tokens": 3000, "output_tokens": 64})
    doc["runtime"] = dict(BASE["runtime"], cuda_graph_batch_sizes=sizes)
    return roofline.simulate(doc).records()[0]["decode"]["breakdown"]


def test_simulate_pads_its_decode_batch_the_same_way():
    padded, rows64, own40 = _static(40, [8, 64]), _static(64), _static(40)
    assert padded["attention_decode"] == pytest.approx(own40["attention_decode"], rel=1e-12)
    # the experts and projections at 64 rows, the LM head at the 40 sequences' logits
    assert own40["gemm"] < padded["gemm"] < rows64["gemm"]
    assert padded["gemm"] == pytest.approx(rows64["gemm"], rel=1e-3)
    # the step-cost function's padded step runs the same GEMMs (they read no KV)
    assert _decode(_steps([8, 64]), 40).breakdown["gemm"] == pytest.approx(padded["gemm"], rel=1e-9)


@pytest.mark.parametrize("bad", [[], [0, 8], [1.5], "1,2,4", [True]])
def test_bad_sizes_get_a_clear_message(bad):
    doc = dict(BASE, workload={"batch": 4, "prompt_tokens": 100, "output_tokens": 4})
    doc["runtime"] = dict(BASE["runtime"], cuda_graph_batch_sizes=bad)
    with pytest.raises(
        (ScenarioError, UserError), match="runtime.cuda_graph_batch_sizes: must be a list of batch sizes"
    ):
        roofline.simulate(doc)
