"""The alpha-beta fit of collective timings recovers known curves, and its factors are nccl-tests'."""

from __future__ import annotations

import math

import numpy as np
import pytest

from roofline.profilers.fitting import (
    COLLECTIVES,
    AlphaBetaFit,
    busbw,
    busbw_factor,
    fit_alpha_beta,
    latency_steps,
)
from roofline.simulator.comm import LINK_EFFICIENCY, RING_STEP_LATENCY_S, ring_allreduce_time

SIZES = 2.0 ** np.arange(10, 29)  # 1 KiB .. 256 MiB, as the benchmark sweeps them
ALPHA_S, BETA_BPS = 2.5e-6, 0.95 * 450e9  # simulator/comm.py's NVLink defaults


def _curve(collective, n, alpha=ALPHA_S, beta=BETA_BPS):
    return latency_steps(collective, n) * alpha + busbw_factor(collective, n) * SIZES / beta


def test_busbw_factors_are_nccl_tests():
    # nccl-tests doc/PERFORMANCE.md, Summary: AllReduce 2(n-1)/n, ReduceScatter, AllGather and
    # AlltoAll (n-1)/n; point-to-point moves S once.
    assert busbw_factor("all_reduce", 8) == 2 * 7 / 8
    for name in ("all_gather", "reduce_scatter", "all_to_all"):
        assert busbw_factor(name, 8) == 7 / 8
    assert busbw_factor("send_recv", 8) == 1.0
    assert [latency_steps(c, 8) for c in COLLECTIVES] == [14, 7, 7, 7, 1]
    # busbw = S / t * factor: 1 GiB all-reduced on 8 ranks in 10 ms
    assert busbw(2**30, 0.01, "all_reduce", 8) == pytest.approx(2**30 / 0.01 * 1.75)


def test_model_is_the_simulators_ring_allreduce():
    # A fit plugs into simulator/comm.py as step_latency_s = alpha, link_bw * LINK_EFFICIENCY = beta.
    link_bw, n = 450e9, 8
    fit = AlphaBetaFit(alpha_s=RING_STEP_LATENCY_S, beta_Bps=link_bw * LINK_EFFICIENCY, residual=0.0)
    expected = ring_allreduce_time(SIZES, n, link_bw)
    got = fit.seconds(SIZES, latency_steps("all_reduce", n), busbw_factor("all_reduce", n))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("n", [2, 8])
@pytest.mark.parametrize("collective", COLLECTIVES)
def test_exact_curve_is_recovered_exactly(collective, n):
    t = _curve(collective, n)
    fit = fit_alpha_beta(SIZES, t, latency_steps(collective, n), busbw_factor(collective, n))
    assert fit.alpha_s == pytest.approx(ALPHA_S, rel=1e-6)
    assert fit.beta_Bps == pytest.approx(BETA_BPS, rel=1e-6)
    assert fit.residual < 1e-9


@pytest.mark.parametrize("n", [2, 8])
@pytest.mark.parametrize("collective", COLLECTIVES)
def test_noisy_curve_is_recovered_and_residual_reported(collective, n):
    # 3% multiplicative noise (5 seeds per case), as repeated timings of one size scatter. alpha rests
    # on the ~8 latency-bound sizes and beta on the ~8 bandwidth-bound ones, so each is averaged over
    # ~8 points: 3% / sqrt(8) ~ 1%; 5% bounds it at ~4 sigma.
    for seed in range(5):
        noise = np.random.default_rng(seed).normal(0.0, 0.03, SIZES.size)
        t = _curve(collective, n, alpha=3e-5, beta=20e9) * (1 + noise)
        fit = fit_alpha_beta(SIZES, t, latency_steps(collective, n), busbw_factor(collective, n))
        assert fit.alpha_s == pytest.approx(3e-5, rel=0.05)
        assert fit.beta_Bps == pytest.approx(20e9, rel=0.05)
        # The relative RMS residual is the noise level it was given (sample RMS of 19 draws).
        assert 0.015 < fit.residual < 0.05


def test_latency_only_data_gives_infinite_beta_not_a_negative_one():
    t = np.full(SIZES.shape, 1e-4)
    fit = fit_alpha_beta(SIZES, t, steps=2, bytes_factor=1.0)
    assert fit.alpha_s == pytest.approx(5e-5, rel=1e-3)
    assert fit.beta_Bps > 0 and (math.isinf(fit.beta_Bps) or fit.beta_Bps > 1e15)


def test_bandwidth_only_data_gives_zero_alpha_not_a_negative_one():
    t = SIZES / 1e9 - 1e-7  # an intercept below zero: NNLS clamps alpha at 0
    fit = fit_alpha_beta(SIZES, t, steps=1, bytes_factor=1.0)
    assert fit.alpha_s == 0.0
    assert fit.beta_Bps > 0


@pytest.mark.parametrize(
    ("bytes_", "seconds", "match"),
    [
        ([1024], [1e-5], "two or more message sizes"),
        ([1024, 1024], [1e-5, 2e-5], "two or more message sizes"),
        ([1024, 2048], [1e-5, -1e-5], "positive, finite"),
        ([1024, 2048], [1e-5], "differ in length"),
    ],
)
def test_bad_points_are_rejected_with_the_reason(bytes_, seconds, match):
    with pytest.raises(ValueError, match=match):
        fit_alpha_beta(bytes_, seconds, steps=1, bytes_factor=1.0)


def test_unknown_collective_and_single_rank_name_what_is_valid():
    with pytest.raises(ValueError, match="valid: all_reduce, all_gather"):
        busbw_factor("broadcast", 4)
    with pytest.raises(ValueError, match="at least 2 ranks"):
        latency_steps("all_reduce", 1)
