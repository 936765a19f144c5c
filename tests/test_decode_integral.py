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


@settings(max_examples=100, deadline=None)
@given(
    windows=st.lists(st.floats(min_value=1.0, max_value=4e5), max_size=6),
    coefs=st.lists(st.floats(min_value=-1.0, max_value=1e3), min_size=6, max_size=6),
    starts=st.lists(st.floats(min_value=1.0, max_value=3e5), min_size=3, max_size=3),
    spans=st.lists(st.one_of(st.just(0.0), st.floats(min_value=1.0, max_value=2e5)), min_size=3, max_size=3),
    per_point=st.booleans(),
)  # fmt: skip
def test_exact_mean_over_many_windows_per_point(windows, coefs, starts, spans, per_point):
    """Points whose KV ranges cross different numbers of windows (scalar, or one per point) in one
    vectorised call: each equals its own quadrature (kv_edges keeps, per point, only the windows
    inside its range)."""
    a, b = np.array(starts), np.array(starts) + np.array(spans)
    shift = np.array([1.0, 0.5, 2.0]) if per_point else 1.0
    clips = tuple((1.0 + abs(c), w * shift) for c, w in zip(coefs, windows))
    op = Op(
        name="x",
        kind="attention_decode",
        flops=KVLinear(50.0, 3.0 + coefs[0]),
        bytes=KVLinear(10.0, 1.0, clips),
        compute_rate=7.0,
        memory_rate=2.0,
    )
    exact = cost_op(op, 0.0, (a, b)).time_s
    for i in range(3):

        def at(q, x, i=i):
            return q.c0 + q.lin * x + sum(c * np.minimum(x, np.broadcast_to(w, 3)[i]) for c, w in q.clips)

        xs = np.linspace(a[i], b[i], 200_001)
        vals = np.maximum(at(op.flops, xs) / 7.0, at(op.bytes, xs) / 2.0)
        brute = float(vals[0]) if spans[i] == 0 else float(np.trapezoid(vals, xs) / spans[i])
        assert exact[i] == pytest.approx(brute, rel=1e-6, abs=1e-9)


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
