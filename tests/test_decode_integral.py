"""The closed-form decode integral against brute force: per-step sums and dense quadrature."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roofline.simulator.ops import KVLinear, Op, cost_op

from helpers import run

coef = st.floats(min_value=0.0, max_value=1e6, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(
    f0=coef, f1=coef, f2=coef, m0=coef, m1=coef, m2=coef,
    window=st.one_of(st.just(np.inf), st.floats(min_value=1.0, max_value=5e5)),
    a=st.floats(min_value=1.0, max_value=3e5), span=st.one_of(st.just(0.0), st.floats(min_value=1.0, max_value=3e5)),
    rc=st.floats(min_value=1.0, max_value=1e3), rm=st.floats(min_value=1.0, max_value=1e3),
)  # fmt: skip
def test_exact_mean_of_max_matches_quadrature(f0, f1, f2, m0, m1, m2, window, a, span, rc, rm):
    b = a + span
    op = Op(
        name="x",
        kind="attention_decode",
        flops=KVLinear(f0, f1, ((f2, window),)),
        bytes=KVLinear(m0, m1, ((m2, window),)),
        compute_rate=rc,
        memory_rate=rm,
    )
    exact = float(cost_op(op, 0.0, (np.array(a), np.array(b))).time_s)
    xs = np.linspace(a, b, 400_001)
    vals = np.maximum(op.flops.at(xs) / rc, op.bytes.at(xs) / rm)
    brute = float(np.mean(vals)) if span == 0 else float(np.trapezoid(vals, xs) / span)
    assert exact == pytest.approx(brute, rel=1e-6, abs=1e-9)


def test_kvlinear_mean_matches_sum():
    q = KVLinear(3.0, 2.0, ((5.0, 1000.0), (1.5, 2000.0)))
    xs = np.linspace(500.0, 3000.0, 100_001)
    assert float(q.mean(np.array(500.0), np.array(3000.0))) == pytest.approx(
        np.trapezoid(q.at(xs), xs) / 2500.0, rel=1e-9
    )


@pytest.mark.parametrize("model", ["llama-3.1-8b", "gemma-2-9b", "deepseek-v2-lite", "jamba-1.5-mini"])
def test_tpot_equals_mean_of_individual_steps(model):
    # tpot(P, O) is the mean step time over KV lengths P+1 .. P+O-1. A run with output_tokens=2 has
    # exactly one step, at KV length P+1: average those single steps and compare.
    P, O = 3000, 2200  # crosses Gemma-2's 4096-token window
    _, recs = run(model=model, workload={"batch": 4, "prompt_tokens": P, "output_tokens": O})
    steps = list(range(P, P + O - 1, 100))
    _, singles = run(
        model=model,
        workload={"batch": 4, "prompt_tokens": 3000, "output_tokens": 2},
        sweep={"workload.prompt_tokens": steps},
    )
    mean_single = np.mean([r["tpot_s"] for r in singles])
    assert recs[0]["tpot_s"] == pytest.approx(mean_single, rel=2e-3)
