"""Decode attention from a measured grid (simulator/decode_time.py): the kernel time at KV-length
nodes, linear in the length between them, as a KVLinear (exact against np.interp for every token
form a KV plan makes), the engine's decode sums over a range crossing nodes (exact against a
numerical mean), the fit recovering a known surface, and the serving fast path staying exact."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import roofline
from roofline.profilers.grid_fit import decode_grid, stream_roof
from roofline.simulator.decode_time import kernel_time, piecewise_time
from roofline.simulator.grids import Grid
from roofline.simulator.kvplan import Tokens
from roofline.simulator.results import op_table

BW = 3.35e12  # H100-SXM HBM (hwspecs/h100-sxm.yaml)
OVERHEAD = 3e-6


def _oracle(x, y, slope_after, K, at_zero=0.0):
    """Linear between nodes and from (0, at_zero) to the first, slope_after beyond the last."""
    x, y = np.concatenate([[0.0], x]), np.concatenate([[at_zero], y])
    return np.where(K > x[-1], y[-1] + (K - x[-1]) * slope_after, np.interp(K, x, y))


@pytest.mark.parametrize(
    "tokens,scale",
    [
        (Tokens(), 1.0),  # the whole history
        (Tokens(0.0, 3000.0), 1.0),  # a sliding window
        (Tokens(700.0, np.inf), 1.0),  # a compressed prompt + appended tokens (SnapKV)
        (Tokens(700.0, 2500.0), 1.0),  # both
        (Tokens(), 0.25),  # a context-parallel rank reads 1/4 of the tokens
        (Tokens(300.0, 9000.0), 0.5),
    ],
)
def test_piecewise_time_is_linear_between_nodes_for_every_token_form(tokens, scale):
    nodes_log2 = np.array([9.0, 10.0, 11.0, 12.0, 13.0])
    x = 2.0**nodes_log2
    y = np.array([20e-6, 18e-6, 30e-6, 45e-6, 90e-6])  # non-monotone, as multi-block kernels are
    after = 7e-9
    q = piecewise_time(nodes_log2, y, after, tokens, scale, at_zero=5e-6)
    L = np.linspace(0.0, 40000.0, 4001)
    K = scale * tokens.at(L)
    assert q.at(L) == pytest.approx(_oracle(x, y, after, K, 5e-6), rel=1e-12, abs=1e-15)
    # and its exact mean over a range equals the numerical one (ops.KVLinear.mean)
    a, b = 1500.0, 21000.0
    fine = np.linspace(a, b, 400_001)
    assert q.mean(a, b) == pytest.approx(
        np.mean(_oracle(x, y, after, scale * tokens.at(fine), 5e-6)), rel=1e-6
    )


def _one_grid(nodes_log2, attainment) -> dict:
    n = len(attainment)
    return {
        "axes": ["log2_batch_kv_heads", "log2_group", "log2_head_dim", "log2_kv_len"],
        "start": [0.0, 0.0, 0.0, float(nodes_log2[0])],
        "step": [1.0, 1.0, 1.0, float(nodes_log2[1] - nodes_log2[0])],
        "shape": [1, 1, 1, n],
        "attainment": list(attainment),
        "holdout": {"median": 0.02, "p90": 0.05, "rows": 10},
    }


def _profile(tmp_path, grids) -> str:
    path = tmp_path / "h100-sxm.decode.yaml"
    doc = {
        "profile_id": "h100-decode-synthetic",
        "hardware": "h100-sxm",
        "provenance": {"device": "synthetic (test)"},
        "kernel_overhead_s": OVERHEAD,
        "curves": {},
        "grids": grids,
    }
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_engine_decode_sums_the_measured_kernel_time_over_a_range_crossing_nodes(tmp_path):
    # Llama-3.1-8B, batch 1, bf16: per layer a decode step moves 4096 B per cached token (8 KV heads
    # x K and V x 128 x 2 B) + 20480 B (q in and o out: 32 heads x 256 x 2 B; the new K/V: 4096 B).
    # Attainment 0.3 at 4K tokens, 0.8 at 8K: node times bytes / (BW x a), linear between, the 8K
    # attainment beyond, and below 4K linear down to the time of no KV (20480 B at the 4K attainment).
    # Decode runs KV lengths P + 1 .. P + O - 1 = 3001 .. 10999.
    nodes = [12.0, 13.0]
    path = _profile(tmp_path, {"attention_decode": _one_grid(nodes, [0.3, 0.8])})
    res = roofline.simulate(
        {
            "model": "llama-3.1-8b",
            "hardware": "h100-sxm",
            "calibration": path,
            "workload": {"batch": 1, "prompt_tokens": 3000, "output_tokens": 8000},
        }
    )
    dec = next(o for o in op_table(res, 0, "decode") if o["kind"] == "attention_decode")

    def t(L):
        x = np.array([4096.0, 8192.0])
        y = (4096.0 * x + 20480.0) / (BW * np.array([0.3, 0.8]))
        return _oracle(x, y, 4096.0 / (BW * 0.8), L, 20480.0 / (BW * 0.3))  # no KV: the first attainment

    L = np.linspace(3001.0, 10999.0, 800_001)
    want = 32 * (np.mean(t(L)) + OVERHEAD)
    assert dec["time_s"] == pytest.approx(want, rel=1e-6)
    assert dec["bytes"] == pytest.approx(32 * (4096.0 * 7000.0 + 20480.0), rel=1e-12)


def test_an_fp8_cache_reads_its_own_grid_else_the_bf16_attainment_on_its_bytes(tmp_path):
    scenario = {
        "model": "llama-3.1-8b",
        "hardware": "h100-sxm",
        "dtype": {"kv": "fp8"},
        "workload": {"batch": 1, "prompt_tokens": 8192, "output_tokens": 2},
    }

    def dec_time(grids):
        res = roofline.simulate(dict(scenario, calibration=_profile(tmp_path, grids)))
        o = next(o for o in op_table(res, 0, "decode") if o["kind"] == "attention_decode")
        return o["time_s"], o["bytes"]

    bf16_only, byts = dec_time({"attention_decode": _one_grid([13.0, 14.0], [0.5, 0.5])})
    assert bf16_only == pytest.approx(byts / (BW * 0.5) + 32 * OVERHEAD, rel=1e-9)
    both, _ = dec_time(
        {
            "attention_decode": _one_grid([13.0, 14.0], [0.5, 0.5]),
            "attention_decode_fp8": _one_grid([13.0, 14.0], [0.25, 0.25]),
        }
    )
    assert both == pytest.approx(byts / (BW * 0.25) + 32 * OVERHEAD, rel=1e-9)


def test_decode_fit_recovers_a_piecewise_kernel_and_predicts_between_nodes():
    # t = fixed(u) + bytes / (BW x share(u, L)), the share stepping up at 4K tokens (a kernel mode
    # switch), u = sequences x KV heads; measured at every octave of L, as AIConfigurator does.
    rows = []
    for b in (1, 2, 4, 8, 16, 32):
        for kvh in (1, 2, 4, 8):
            for L in 2.0 ** np.arange(6, 17):
                rows.append((b, 4 * kvh, kvh, 128, L))
    b, h, kvh, d, L = (np.array(c, dtype=float) for c in zip(*rows))
    u = b * kvh

    def truth(u, L, per_token, fixed):
        share = np.where(L >= 4096, 0.85, 0.45) * u / (u + 1)
        return 6e-6 + (per_token * L + fixed) / (BW * share) + OVERHEAD

    per_token, fixed = b * kvh * 2 * d * 2.0, b * h * 2 * d * 2.0
    seconds = truth(u, L, per_token, fixed)
    X = np.log2(np.column_stack([u, h / kvh, d, L]))
    roof = stream_roof(per_token, fixed, BW)
    grid = decode_grid("attention_decode", X, roof, seconds, OVERHEAD, np.column_stack([b, h, kvh]))
    assert grid.holdout["rows"] > 50 and grid.holdout["median"] < 0.02
    # a measured shape at a measured length: its own time (4 significant figures written)
    i = 123
    got = kernel_time(grid, X[i, :-1], lambda lengths: roof([i], lengths)[0], L[i]) + OVERHEAD
    assert got == pytest.approx(seconds[i], rel=1e-3)
    # between nodes the time is linear in L (the truth is affine within [4K, 8K] at fixed u)
    mid = kernel_time(grid, X[i, :-1], lambda lengths: roof([i], lengths)[0], 6144.0) + OVERHEAD
    assert mid == pytest.approx(truth(u[i], 6144.0, per_token[i], fixed[i]), rel=2e-3)


def test_grid_at_nodes_equals_at_on_the_nodes():
    rng = np.random.default_rng(3)
    g = Grid(
        "attention_decode",
        (0.0, 1.0, 6.0, 1.0),
        (1.0, 1.0, 1.0, 1.0),
        {"attainment": rng.uniform(0.1, 1.0, (4, 3, 2, 5))},
    )
    coords = (np.array([0.3, 2.7, 5.0]), np.array([1.5, 1.0, 3.2]), np.array([6.4, 7.0, 6.0]))
    rows = g.at_nodes("attainment", *coords)
    for k, node in enumerate(g.last_axis_nodes()):
        assert rows[:, k] == pytest.approx(g.at("attainment", *coords, np.full(3, node)), rel=1e-12)


@pytest.mark.parametrize(
    "model,methods",
    [
        ("llama-3.1-8b", []),
        ("mixtral-8x7b", []),
        # read tokens that depend on the prompt (SnapKV), a share of heads on a window, a quantised
        # cache with a full-precision residual, a selection budget, groups that read no tokens
        ("llama-3.1-8b", [{"name": "snapkv", "budget_tokens": 2048}]),
        ("llama-3.1-8b", [{"name": "duo_attention", "retrieval_head_fraction": 0.5}]),
        ("llama-3.1-8b", [{"name": "kv_quant", "bits": 4}]),
        ("llama-3.1-8b", [{"name": "quest", "token_budget": 4096}]),
        ("llama-3.1-8b", [{"name": "shadowkv"}]),
    ],
)
def test_the_serving_fast_step_stays_exact_with_measured_decode_kernels(tmp_path, model, methods):
    from roofline.api import step_model
    from roofline.simulator.serving.stepcost import FastStep

    path = _profile(tmp_path, {"attention_decode": _one_grid([10.0, 11.0, 12.0, 13.0], [0.2, 0.6, 0.4, 0.8])})
    steps = step_model({"model": model, "hardware": "h100-sxm", "calibration": path, "methods": methods})
    fast = FastStep(steps)
    assert fast.exact
    rng = np.random.default_rng(0)
    for _ in range(5):
        cached = rng.integers(1, 20000, rng.integers(1, 40))
        new = np.ones_like(cached)
        want = steps.cost(new, cached).time_s
        assert fast.cost(new, cached)[0] == pytest.approx(want, rel=1e-9)
    times, _, _ = fast.decode_run(np.array([100, 5000, 9000]), 4)
    for j in range(4):
        want = steps.cost(np.ones(3, int), np.array([100, 5000, 9000]) + j).time_s
        assert times[j] == pytest.approx(want, rel=1e-9)


def test_decode_beyond_the_measured_kv_lengths_warns(tmp_path):
    path = _profile(tmp_path, {"attention_decode": _one_grid([12.0, 13.0], [0.3, 0.8])})
    text = "attention_decode measured up to 8192 KV tokens"

    def warnings(prompt):
        res = roofline.simulate(
            {
                "model": "llama-3.1-8b",
                "hardware": "h100-sxm",
                "calibration": path,
                "workload": {"batch": 1, "prompt_tokens": prompt, "output_tokens": 100},
            }
        )
        return res.records()[0]["provenance"]["warnings"]

    assert not any(text in w for w in warnings(4000))
    assert any(text in w for w in warnings(9000))
