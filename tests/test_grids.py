"""Measured grids in calibration profiles (simulator.calibration.Grid, profilers/grid_fit.py): the
interpolation is exact where it should be (hand-computed oracles), bad grids are clear errors, the
engine prices GEMMs, prefill and decode attention from a profile's grids by their closed forms, the
fits recover known surfaces, and `calibration: auto` picks the framework's profile. Profiles here are
synthetic (made in the test)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import yaml

import roofline
from roofline.hwspecs import find_profile, profile_path, read_profile
from roofline.profilers.grid_fit import attainment_grid, grid_entry
from roofline.simulator.calibration import CalibrationError, Grid, multilinear, parse_profile
from roofline.simulator.frameworks import EAGER_LAUNCH_S
from roofline.simulator.grouped_gemm import MOE_FIXED_S, MOE_GROUPED_SHARE
from roofline.simulator.results import op_table

PEAK, BW = 989.4e12, 3.35e12  # H100-SXM dense bf16 and HBM (hwspecs/h100-sxm.yaml)
OVERHEAD = 3e-6


def test_multilinear_is_exact_on_a_linear_function_and_clamps_outside():
    # f(i, j, k) = 12 i + 4 j + k on a 2 x 3 x 4 grid: multilinear interpolation reproduces it.
    table = np.arange(24.0).reshape(2, 3, 4)
    assert multilinear(table, (0, 0, 0), (1, 1, 1), [0.5, 1.5, 2.25]) == pytest.approx(14.25)
    # start and step: coordinate c sits at position (c - start) / step
    assert multilinear(table, (10, 0, 0), (2, 1, 1), [11.0, 0, 0]) == pytest.approx(6.0)
    # outside the grid the boundary holds: (5, 1, 3) -> (1, 1, 3) = 19; (-1, 1, 3) -> (0, 1, 3) = 7
    assert list(multilinear(table, (0, 0, 0), (1, 1, 1), [np.array([5.0, -1.0]), 1, 3])) == [19.0, 7.0]
    # a one-cell axis is a constant along it
    assert multilinear(np.array([[2.0, 4.0]]), (0, 0), (1, 1), [7.0, 0.5]) == pytest.approx(3.0)


def test_multilinear_folds_scalar_axes_to_the_same_values():
    # coordinates that are one number for every point are interpolated first (a sweep's GEMM n, k):
    # the value equals the full 2^d-corner interpolation with those numbers broadcast to arrays
    rng = np.random.default_rng(3)
    for _ in range(200):
        d = int(rng.integers(2, 5))
        table = rng.normal(size=tuple(int(n) for n in rng.integers(1, 6, d)))
        start, step = rng.uniform(-2, 2, d), rng.uniform(0.3, 2, d)
        coords = [
            float(rng.uniform(-4, 12)) if rng.random() < 0.5 else rng.uniform(-4, 12, 7) for _ in range(d)
        ]
        full = [np.full(7, c) if np.ndim(c) == 0 else c for c in coords]
        assert multilinear(table, start, step, coords) == pytest.approx(
            multilinear(table, start, step, full), abs=1e-12
        )


def test_multilinear_matches_scipy_on_random_tables():
    # an independent oracle: scipy's RegularGridInterpolator (linear) on random tables of 1-4 axes,
    # with the coordinates clamped to the grid as multilinear clamps them
    from scipy.interpolate import RegularGridInterpolator

    rng = np.random.default_rng(11)
    for _ in range(100):
        d = int(rng.integers(1, 5))
        shape = tuple(int(n) for n in rng.integers(2, 6, d))
        table = rng.normal(size=shape)
        start, step = rng.uniform(-2, 2, d), rng.uniform(0.3, 2, d)
        axes = [start[a] + step[a] * np.arange(shape[a]) for a in range(d)]
        coords = [rng.uniform(axes[a][0] - 3, axes[a][-1] + 3, 9) for a in range(d)]
        clamped = np.stack([np.clip(c, ax[0], ax[-1]) for c, ax in zip(coords, axes)], axis=-1)
        expect = RegularGridInterpolator(axes, table)(clamped)
        assert multilinear(table, start, step, coords) == pytest.approx(expect, abs=1e-12)
        # rows of a table interpolated over its leading axes (Grid.at_nodes)
        if d > 1:
            rows = table.reshape(-1, shape[-1])
            lead = coords[:-1]
            got = multilinear(rows, start[:-1], step[:-1], lead, shape[:-1])
            for j, node in enumerate(axes[-1]):
                at_node = np.concatenate([clamped[:, :-1], np.full((9, 1), node)], axis=1)
                assert got[:, j] == pytest.approx(RegularGridInterpolator(axes, table)(at_node), abs=1e-12)


def test_grid_interpolates_logarithms():
    # values 1 and 4 at x = 0 and 1: halfway is their geometric mean 2, not 2.5
    g = Grid("attention_decode", (0.0, 0.0), (1.0, 1.0), {"fixed_s": np.array([[1.0], [4.0]])})
    assert g.at("fixed_s", 0.5, 0.0) == pytest.approx(2.0)


def _doc(grids: dict, overhead=OVERHEAD) -> dict:
    return {
        "profile_id": "h100-grid-synthetic",
        "hardware": "h100-sxm",
        "provenance": {"device": "synthetic (test)"},
        "kernel_overhead_s": overhead,
        "curves": {},
        "grids": grids,
    }


def _one_cell(kind: str, **values) -> dict:
    axes = {
        "gemm": ["log2_m", "log2_n", "log2_k"],
        "attention_prefill": ["log2_seqlen", "log2_batch_heads", "log2_group", "log2_head_dim"],
        "mla_prefill": ["log2_seqlen", "log2_batch_heads", "log2_heads", "log2_kv_bytes"],
        "mla_decode": ["log2_batch", "log2_heads", "log2_kv_bytes", "log2_kv_len"],
        "moe": ["log2_rows_per_expert", "log2_hidden", "log2_intermediate", "log2_experts_touched"],
    }
    decode = ["log2_batch_kv_heads", "log2_group", "log2_head_dim", "log2_kv_len"]
    names = axes.get(kind.split("_")[0] if kind.startswith(("gemm_", "moe_")) else kind, decode)
    return {
        "axes": names,
        "start": [0.0] * len(names),
        "step": [1.0] * len(names),
        "shape": [1] * len(names),
        **{k: [v] for k, v in values.items()},
        "holdout": {"median": 0.04, "p90": 0.12, "rows": 10},
    }


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda g: g.update(axes=["log2_m"]), "axes: must be"),
        (lambda g: g.update(axes=1.5), "axes: must be"),  # was a TypeError (not iterable)
        (lambda g: g.update(axes=None), "axes: must be"),
        (lambda g: g.update(shape=[2, 1, 1]), "must be a list of 2 values"),
        (lambda g: g.update(attainment=[-0.5]), "attainment[0]: must be a positive finite number"),
        (lambda g: g.update(attainment=["x"]), "must hold numbers only"),
        (lambda g: g.update(step=[0.0, 1.0, 1.0]), "step[0]"),
        (lambda g: g.update(shape=[5000, 1, 1]), "shape: must be 3 cell counts"),
        (lambda g: g.update(shape=[400, 400, 400]), "is more than"),
    ],
)
def test_bad_grids_are_clear_errors(edit, message):
    grid = _one_cell("gemm_bf16", attainment=0.5)
    edit(grid)
    with pytest.raises(CalibrationError) as err:
        parse_profile(_doc({"gemm_bf16": grid}), "p.yaml")
    assert "p.yaml: grids.gemm_bf16" in str(err.value) and message in str(err.value)
    with pytest.raises(CalibrationError, match="unknown grid kind; valid: gemm_bf16"):
        parse_profile(_doc({"moe": grid}), "p.yaml")


def test_a_moe_grid_of_the_earlier_layout_says_to_create_the_profile_again():
    grid = _one_cell("gemm_bf16", attainment=0.5)
    grid["axes"] = ["log2_rows_per_expert", "log2_hidden_inter", "log2_experts_touched"]
    with pytest.raises(CalibrationError) as err:
        parse_profile(_doc({"moe_bf16": grid}), "p.yaml")
    text = str(err.value)
    assert "grids.moe_bf16.axes: must be ['log2_rows_per_expert', 'log2_hidden', 'log2_intermediate'" in text
    assert "earlier roofline's layout: create the profile again with the `roofline calibrate`" in text


def _simulate_with(tmp_path, grids, **workload):
    path = tmp_path / "h100-sxm.grid.yaml"
    path.write_text(yaml.safe_dump(_doc(grids)))
    wl = {"batch": 1, "prompt_tokens": 8192, "output_tokens": 2, **workload}
    return roofline.simulate(
        {"model": "llama-3.1-8b", "hardware": "h100-sxm", "calibration": str(path), "workload": wl}
    )


def test_engine_prices_gemms_and_attention_from_the_grids(tmp_path):
    grids = {
        "gemm_bf16": _one_cell("gemm_bf16", attainment=0.5),
        "attention_prefill": _one_cell("attention_prefill", attainment=0.4),
        "attention_decode": _one_cell("attention_decode", attainment=0.6),
    }
    res = _simulate_with(tmp_path, grids)
    rec = res.records()[0]
    assert rec["provenance"]["error_band"] == {
        "gemm_bf16": 0.04,
        "attention_prefill": 0.04,
        "attention_decode": 0.04,
        "max": 0.04,
    }
    layers = 32
    # GEMM: max(FLOPs / peak, bytes / bandwidth) / attainment + a launch per layer (decode: CUDA graphs)
    qkv = next(o for o in op_table(res, 0, "decode") if o["name"] == "qkv_proj")
    roof = max(qkv["flops"] / PEAK, qkv["bytes"] / BW)
    assert qkv["time_s"] == pytest.approx(roof / 0.5 + layers * OVERHEAD, rel=1e-9)
    up = next(o for o in op_table(res, 0, "prefill") if o["name"] == "ffn_up")
    roof = max(up["flops"] / PEAK, up["bytes"] / BW)
    assert up["time_s"] == pytest.approx(roof / 0.5 + layers * (OVERHEAD + EAGER_LAUNCH_S), rel=1e-9)
    # prefill attention: the same form at its own attainment (vLLM's prefill launches eagerly)
    attn = next(o for o in op_table(res, 0, "prefill") if o["kind"] == "attention_prefill")
    roof = max(attn["flops"] / PEAK, attn["bytes"] / BW)
    assert attn["time_s"] == pytest.approx(roof / 0.4 + layers * (OVERHEAD + EAGER_LAUNCH_S), rel=1e-9)
    # decode attention: bytes / (bandwidth x attainment) + a launch per layer (one KV-length node:
    # the attainment holds at every length; tests/test_decode_time.py covers several nodes)
    dec = next(o for o in op_table(res, 0, "decode") if o["kind"] == "attention_decode")
    assert dec["time_s"] == pytest.approx(dec["bytes"] / (BW * 0.6) + layers * OVERHEAD, rel=1e-9)


@pytest.mark.parametrize(
    "tile,prompt,padded",
    [(128, 8192, 8192), (128, 8193, 8320), (256, 1025, 1280), (1, 1025, 1025), (64, 100, 128)],
)
def test_measured_gemm_computes_whole_row_tiles(tmp_path, tile, prompt, padded):
    # a GEMM grid's attainment is of the compute roof over rows padded to its m_tile: a prefill of
    # 8193 tokens computes 8320 rows in 128-row tiles; FLOPs reported stay the real ones
    grid = _one_cell("gemm_bf16", attainment=0.5)
    if tile != 1:
        grid["m_tile"] = tile
    res = _simulate_with(tmp_path, {"gemm_bf16": grid}, prompt_tokens=prompt)
    up = next(o for o in op_table(res, 0, "prefill") if o["name"] == "ffn_up")
    assert up["flops"] == pytest.approx(2.0 * prompt * 2 * 14336 * 4096 * 32)  # gate and up, 32 layers
    roof = max(up["flops"] * padded / prompt / PEAK, up["bytes"] / BW)
    assert up["time_s"] == pytest.approx(roof / 0.5 + 32 * (OVERHEAD + EAGER_LAUNCH_S), rel=1e-9)


@pytest.mark.parametrize("tile", [100, 0, True, "128"])
def test_m_tile_must_be_a_known_tile_of_a_gemm_grid(tile):
    grid = _one_cell("gemm_bf16", attainment=0.5)
    grid["m_tile"] = tile
    with pytest.raises(CalibrationError, match=r"grids.gemm_bf16.m_tile: must be one of 1, 64, 128, 256"):
        parse_profile(_doc({"gemm_bf16": grid}), "p.yaml")
    decode = _one_cell("attention_decode", attainment=0.5)
    decode["m_tile"] = 128
    with pytest.raises(CalibrationError, match="only GEMM grids count rows in tiles"):
        parse_profile(_doc({"attention_decode": decode}), "p.yaml")


@pytest.mark.parametrize("tile", [1, 64, 128, 256])
def test_fit_m_tile_recovers_the_tile_from_m_and_m_plus_one(tile):
    # compute-bound kernels timed at m and m + 1 rows (m a multiple of 256) with padding to `tile`,
    # 3% noise: the fit names the tile
    from roofline.profilers.grid_fit import fit_m_tile

    rng = np.random.default_rng(tile)
    m0 = np.repeat([256.0, 512.0, 1024.0, 1280.0, 2048.0], 8)
    n = np.tile(np.arange(1, 9) * 1024.0, 5)
    m = np.concatenate([m0, m0 + 1])
    nn = np.concatenate([n, n])
    padded = m if tile == 1 else np.ceil(m / tile) * tile
    seconds = 2 * padded * nn * 4096 / PEAK * rng.lognormal(0.0, 0.03, m.size)
    assert fit_m_tile(m, nn, np.full(m.size, 4096.0), seconds, np.ones(m.size, dtype=bool)) == tile
    # too few pairs to tell: no padding
    assert fit_m_tile(m[:5], nn[:5], np.full(5, 4096.0), seconds[:5], np.ones(5, dtype=bool)) == 1


def test_grid_lookup_uses_the_kernel_shape(tmp_path):
    # attainment 0.25 at m = 1 and 1.0 at m = 4 (log2 0 and 2): decode at batch 2 (log2 1) reads their
    # geometric mean 0.5, batch 8 is held at the boundary 1.0
    grid = _one_cell("gemm_bf16")
    grid.update(step=[2.0, 1.0, 1.0], shape=[2, 1, 1], attainment=[0.25, 1.0])
    for batch, att in ((2, 0.5), (8, 1.0)):
        res = _simulate_with(tmp_path, {"gemm_bf16": grid}, batch=batch)
        o = next(o for o in op_table(res, 0, "decode") if o["name"] == "o_proj")
        roof = max(o["flops"] / PEAK, o["bytes"] / BW)
        assert o["time_s"] == pytest.approx(roof / att + 32 * OVERHEAD, rel=1e-9)


def test_attainment_fit_recovers_a_known_surface_and_reports_holdout():
    # log attainment linear in the log2 coordinates: multilinear interpolation of logs is exact, so
    # the held-out shapes are predicted to rounding (the written values keep 4 significant figures)
    rng = np.random.default_rng(1)
    m = 2.0 ** rng.integers(0, 12, 3000)
    n = 2.0 ** rng.integers(8, 15, 3000)
    k = 2.0 ** rng.integers(8, 15, 3000)
    X = np.log2(np.column_stack([m, n, k]))
    att = 0.9 * np.exp(-0.05 * (12 - X[:, 0]) - 0.01 * (15 - X[:, 1]))
    roof = np.maximum(2 * m * n * k / PEAK, 2 * (n * k + m * k + m * n) / BW)
    seconds = roof / att + OVERHEAD
    grid = attainment_grid("gemm_bf16", X, roof, seconds, OVERHEAD, X[:, 1:])
    assert grid.holdout["median"] < 1e-3 and grid.holdout["p90"] < 2e-3 and grid.holdout["rows"] > 300
    assert grid.at("attainment", 3.0, 9.0, 10.0) == pytest.approx(0.9 * np.exp(-0.45 - 0.06), rel=1e-3)
    entry = grid_entry(grid, "synthetic")
    back = parse_profile(_doc({"gemm_bf16": entry}), "p.yaml").grids["gemm_bf16"]
    assert back.at("attainment", 3.0, 9.0, 10.0) == pytest.approx(grid.at("attainment", 3.0, 9.0, 10.0))


def test_auto_takes_the_gpus_own_profile_then_the_frameworks(tmp_path):
    doc = _doc({"gemm_bf16": _one_cell("gemm_bf16", attainment=0.5)})
    (tmp_path / "h100-sxm.sglang.yaml").write_text(yaml.safe_dump(dict(doc, profile_id="sglang-imported")))
    assert profile_path("h100-sxm", "vllm", tmp_path) is None
    assert find_profile("h100-sxm", tmp_path, framework="sglang").profile_id == "sglang-imported"
    (tmp_path / "h100-sxm.yaml").write_text(yaml.safe_dump(dict(doc, profile_id="own")))
    assert find_profile("h100-sxm", tmp_path, framework="sglang").profile_id == "own"


def test_auto_picks_each_frameworks_profile_in_a_framework_sweep(tmp_path, monkeypatch):
    import roofline.api as api

    doc = _doc({"gemm_bf16": _one_cell("gemm_bf16", attainment=0.5)})
    (tmp_path / "h100-sxm.sglang.yaml").write_text(yaml.safe_dump(dict(doc, profile_id="sglang-imported")))
    monkeypatch.setattr(api, "find_profile", lambda h, framework=None: find_profile(h, tmp_path, framework))
    res = roofline.simulate(
        {
            "model": "llama-3.1-8b",
            "hardware": "h100-sxm",
            "workload": {"prompt_tokens": 1024, "output_tokens": 2},
            "sweep": {"runtime.framework": ["vllm", "sglang"]},
        }
    )
    ids = {r["point"]["runtime.framework"]: r["provenance"]["calibration"] for r in res.records()}
    assert ids == {"vllm": "datasheet", "sglang": "sglang-imported"}


def test_engine_prices_a_fused_moe_from_its_grid(tmp_path):
    # Mixtral-8x7B decode at batch 4 on H100 (bf16): with a one-cell moe_bf16 grid at attainment 0.25,
    # the two expert GEMMs take their roofline times / 0.25 plus one launch each per layer, and the
    # activation and the top-2 combine run inside the fused kernel: their HBM passes / 0.25, no
    # launch of their own.
    grid = _one_cell("moe_bf16", attainment=0.25)
    path = tmp_path / "h100-sxm.moe.yaml"
    path.write_text(yaml.safe_dump(_doc({"moe_bf16": grid})))
    scenario = {
        "model": "mixtral-8x7b",
        "hardware": "h100-sxm",
        "workload": {"batch": 4, "prompt_tokens": 1024, "output_tokens": 2},
    }
    res = roofline.simulate(dict(scenario, calibration=str(path)))
    ops = {o["name"]: o for o in op_table(res, 0, "decode")}
    for name in ("expert_up", "expert_down"):
        o = ops[name]
        roof = max(o["flops"] / PEAK, o["bytes"] / BW)
        assert o["time_s"] == pytest.approx(roof / 0.25 + 32 * OVERHEAD, rel=1e-9)
    # decode at batch 4, top-2: 8 (token, expert) pairs of 14336 (gate and up) in and 14336 out,
    # then 8 x 4096 in and 4 x 4096 out, 16-bit, in each of 32 layers
    passes = {"expert_act": 8 * (2 + 1) * 14336 * 2, "expert_combine": (8 + 4) * 4096 * 2}
    for name, nbytes in passes.items():
        assert ops[name]["bytes"] == pytest.approx(32 * nbytes, rel=1e-12)
        assert ops[name]["time_s"] == pytest.approx(32 * nbytes / (BW * 0.25), rel=1e-9)
    sheet = {
        o["name"]: o
        for o in op_table(roofline.simulate(dict(scenario, calibration="datasheet")), 0, "decode")
    }
    assert sheet["expert_combine"]["bytes"] == ops["expert_combine"]["bytes"]
    assert sheet["expert_act"]["time_s"] > ops["expert_act"]["bytes"] / BW  # below the roof, plus a launch


def _mixtral_decode_ops(tmp_path, grids: dict, batch: int = 4, **change) -> dict:
    """Op name -> decode op of Mixtral-8x7B at `batch` on H100 with a profile of `grids` (`change`:
    scenario sections replaced, e.g. parallelism or another model)."""
    path = tmp_path / "h100-sxm.grids.yaml"
    path.write_text(yaml.safe_dump(_doc(grids)))
    scenario = {
        "model": "mixtral-8x7b",
        "hardware": "h100-sxm",
        "calibration": str(path),
        "workload": {"batch": batch, "prompt_tokens": 1024, "output_tokens": 2},
        **change,
    }
    return {o["name"]: o for o in op_table(roofline.simulate(scenario), 0, "decode")}


@pytest.mark.parametrize("call_s", [0.0, 20e-6])
def test_a_fused_moe_grid_charges_its_fixed_time_once_per_layer_and_pass(tmp_path, call_s):
    # the grid's call_s (routing, permutation) is charged on the up projection, once per layer of
    # each decode step; the GEMMs keep their roof / attainment plus one launch each
    grid = _one_cell("moe_bf16", attainment=0.25)
    if call_s:
        grid["call_s"] = call_s
    ops = _mixtral_decode_ops(tmp_path, {"moe_bf16": grid})
    for name, fixed in (("expert_up", call_s), ("expert_down", 0.0)):
        o = ops[name]
        roof = max(o["flops"] / PEAK, o["bytes"] / BW)
        assert o["time_s"] == pytest.approx(roof / 0.25 + 32 * (OVERHEAD + fixed), rel=1e-9)


@pytest.mark.parametrize(
    "field,kind,value,message",
    [
        ("call_s", "moe_bf16", -1e-6, "grids.moe_bf16.call_s: a fixed time per call (s) is in [0, 0.01]"),
        ("call_s", "moe_bf16", "20us", "grids.moe_bf16.call_s: must be a finite number"),
        (
            "call_s",
            "gemm_bf16",
            1e-6,
            "grids.gemm_bf16.call_s: only fused-MoE grids have a fixed time per call",
        ),
        ("skew", "moe_bf16", [1.0] * 12, "grids.moe_bf16.skew: must be a list of 13 ratios"),
        ("skew", "moe_bf16", [1.0] * 12 + [20.0], "grids.moe_bf16.skew[12]: a time ratio is in [0.1, 10]"),
        ("skew", "moe_bf16", "1.1", "grids.moe_bf16.skew: must be a list of 13 ratios"),
        ("skew", "gemm_bf16", [1.0] * 13, "grids.gemm_bf16.skew: only fused-MoE grids time skewed routing"),
    ],
)
def test_bad_fused_moe_fields_are_clear_errors(field, kind, value, message):
    grid = _one_cell(kind, attainment=0.5)
    grid[field] = value
    with pytest.raises(CalibrationError) as err:
        parse_profile(_doc({kind: grid}), "p.yaml")
    assert message in str(err.value)


SKEW = [0.8, 0.8, 0.9, 1.0, 1.0, 1.1, 1.2, 1.5, 1.5, 1.3, 1.1, 1.0, 1.0]


@pytest.mark.parametrize("routing", ["power_law", "balanced"])
def test_a_fused_moe_grid_prices_skewed_routing_at_its_own_measured_skew(tmp_path, routing):
    # Mixtral at batch 512: 1,024 pairs over its 8 experts, 128 rows per expert (octave 7): the grid's
    # kernels took 1.5x their balanced time under skewed routing; the launches and call_s stay
    grid = dict(_one_cell("moe_bf16", attainment=0.25), skew=SKEW, call_s=10e-6)
    ops = _mixtral_decode_ops(tmp_path, {"moe_bf16": grid}, batch=512, runtime={"moe_routing": routing})
    slow = 1.5 if routing == "power_law" else 1.0
    for name, fixed in (("expert_up", 10e-6), ("expert_down", 0.0)):
        o = ops[name]
        roof = max(o["flops"] / PEAK, o["bytes"] / BW)
        assert o["time_s"] == pytest.approx(slow * roof / 0.25 + 32 * (OVERHEAD + fixed), rel=1e-9)
    # at 1.2 rows per expert (batch 4: 8 pairs touch 6.9 experts) the measured 0.8 is not taken:
    # the engine's uniform routing already leaves experts untouched (grouped_gemm)
    few = _mixtral_decode_ops(tmp_path, {"moe_bf16": grid}, batch=4, runtime={"moe_routing": routing})
    o = few["expert_down"]
    assert o["time_s"] == pytest.approx(
        max(o["flops"] / PEAK, o["bytes"] / BW) / 0.25 + 32 * OVERHEAD, rel=1e-9
    )


MIXTRAL_SHAPE = {"hidden": 4096, "intermediate": 14336, "top_k": 2, "experts": 8}


@pytest.mark.parametrize(
    "batch,scale",
    [
        (2, 0.5),  # below the first measured count: its scale holds
        (4, 0.5),  # on a measured count
        (8, 1.0),  # between 4 and 16 tokens: linear in log2 tokens, of the log scale (0.5 x 2)^0.5
        (16, 2.0),
        (64, 2.0),  # beyond the last: its scale holds
    ],
)
def test_a_measured_model_shape_is_priced_at_its_own_scale_of_the_grid(tmp_path, batch, scale):
    # a fused-MoE grid that lists Mixtral's shape (TP1, gated) scales its attainment by the shape's
    # measured scale at the call's tokens (decode: the batch), interpolated in log2 tokens
    grid = _one_cell("moe_bf16", attainment=0.25)
    grid["shapes"] = [{**MIXTRAL_SHAPE, "log2_tokens": [2.0, 4.0], "scale": [0.5, 2.0]}]
    ops = _mixtral_decode_ops(tmp_path, {"moe_bf16": grid}, batch)
    for name in ("expert_up", "expert_down"):
        o = ops[name]
        roof = max(o["flops"] / PEAK, o["bytes"] / BW)
        assert o["time_s"] == pytest.approx(roof / (0.25 * scale) + 32 * OVERHEAD, rel=1e-9)
    # the passes inside the fused kernel take the same attainment
    act = ops["expert_act"]
    assert act["time_s"] == pytest.approx(act["bytes"] / (BW * 0.25 * scale), rel=1e-9)


def test_in_a_hardware_sweep_each_gpu_takes_its_own_profiles_measured_shape(shipped_profiles):
    # the shipped H100 and H200 vLLM profiles both measured Mixtral's shape (TP1), each with its own
    # scale by tokens: a sweep over the two GPUs (grid_shape_scale's per-row branch) prices each
    # point as that GPU alone does, at a decode batch (4) and a prefill chunk (4096 tokens)
    wl = {"batch": 4, "prompt_tokens": 4096, "output_tokens": 2}
    base = {"model": "mixtral-8x7b", "runtime": {"framework": "vllm"}, "workload": wl}
    res = roofline.simulate(dict(base, sweep={"hardware": ["h100-sxm", "h200"]}))
    for i, record in enumerate(res.records()):
        name = record["hardware"]["name"] if isinstance(record["hardware"], dict) else record["hardware"]
        alone = roofline.simulate(dict(base, hardware=name))
        for phase in ("prefill", "decode"):
            swept = {o["name"]: o["time_s"] for o in op_table(res, i, phase)}
            single = {o["name"]: o["time_s"] for o in op_table(alone, 0, phase)}
            assert swept["expert_up"] == pytest.approx(single["expert_up"], rel=1e-12)
            assert swept["expert_down"] == pytest.approx(single["expert_down"], rel=1e-12)
    # and the measured shape does move the price: the same GPU without the shape's scales
    profile = read_profile(profile_path("h100-sxm", "vllm"))
    grid = profile.grids["moe_bf16"]
    assert (4096, 14336, 2, 8) in grid.shapes
    assert abs(float(grid.shape_scale((4096, 14336, 2, 8), 2.0)) - 1.0) > 0.05  # 4 tokens


@pytest.mark.parametrize(
    "tp,scale",
    [
        (1, 3.0),  # 14336 per GPU: measured, its own scale
        (2, 1.5),  # 7168: halfway in log2 between the splits 14336 and 3584, of the log scale
        (4, 0.75),  # 3584: measured
        (8, 0.75),  # 1792: below the smallest measured split, whose scale holds
    ],
)
def test_a_model_measured_at_other_splits_takes_their_scale(tmp_path, tp, scale):
    # the grid measured Mixtral's experts at TP1 (14336 per GPU) and TP4 (3584): a TP degree it
    # did not measure reads the model's scales at the splits around it, linear in log2 intermediate
    grid = _one_cell("moe_bf16", attainment=0.25)
    grid["shapes"] = [
        {**MIXTRAL_SHAPE, "log2_tokens": [2.0], "scale": [3.0]},
        {**MIXTRAL_SHAPE, "intermediate": 3584, "log2_tokens": [2.0], "scale": [0.75]},
    ]
    ops = _mixtral_decode_ops(tmp_path, {"moe_bf16": grid}, parallelism={"tp": tp})
    for name in ("expert_up", "expert_down"):
        o = ops[name]
        roof = max(o["flops"] / PEAK, o["bytes"] / BW)
        assert o["time_s"] == pytest.approx(roof / (0.25 * scale) + 32 * OVERHEAD, rel=1e-9)


def test_a_split_reads_each_measured_split_at_its_own_tokens():
    # the scales of the splits around an unmeasured one are each read at the call's tokens (linear
    # in log2 tokens), then taken linear in log2 intermediate between them
    grid = parse_profile(_doc({"moe_bf16": _one_cell("moe_bf16", attainment=0.5)}), "p").grids["moe_bf16"]
    shapes = {
        (4096, 14336, 2, 8): (np.array([0.0, 4.0]), np.log([1.0, 4.0])),
        (4096, 1792, 2, 8): (np.array([2.0]), np.log([0.5])),
        (4096, 7168, 2, 16): (np.array([2.0]), np.log([9.0])),  # another model: not a split of it
    }
    grid = replace(grid, shapes=shapes)
    # 3584 per GPU: a third of the way from 1792 to 14336 in log2; at 4 tokens (log2 2) the TP1
    # split's scale is 2 (halfway from 1 to 4 in the log), the TP8 one's 0.5
    expected = np.exp((2 / 3) * np.log(0.5) + (1 / 3) * np.log(2.0))
    assert float(grid.shape_scale((4096, 3584, 2, 8), 2.0)) == pytest.approx(expected, rel=1e-12)
    assert grid.prices_shape((4096, 3584, 2, 8)) and not grid.prices_shape((4096, 3584, 2, 32))
    assert grid.shape_scale((4096, 3584, 2, 32), 2.0) == 1.0
    both = grid.shape_scale((4096, 3584, 2, 8), np.array([0.0, 4.0]))  # arrays of tokens
    assert both == pytest.approx(np.exp((2 / 3) * np.log(0.5) + (1 / 3) * np.log([1.0, 4.0])), rel=1e-12)


@pytest.mark.parametrize(
    "change",
    [
        {"parallelism": {"tp": 2, "ep": 2}},  # whole experts per GPU: the grid's shapes have none
        {"model": "qwen3-30b-a3b"},
    ],
)
def test_a_shape_the_grid_did_not_measure_keeps_the_grid_value(tmp_path, change):
    grid = _one_cell("moe_bf16", attainment=0.25)
    runs = []
    for shapes in ((), [{**MIXTRAL_SHAPE, "log2_tokens": [0.0], "scale": [3.0]}]):
        if shapes:
            grid["shapes"] = shapes
        runs.append(_mixtral_decode_ops(tmp_path, {"moe_bf16": grid}, **change)["expert_up"]["time_s"])
    assert runs[1] == runs[0]


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda e: e.update(hidden=4096.5), "shapes[0].hidden: must be a positive whole number"),
        (lambda e: e.update(experts=0), "shapes[0].experts: must be a positive whole number"),
        (lambda e: e.pop("top_k"), "shapes[0].top_k: must be a positive whole number"),
        (
            lambda e: e.update(log2_tokens=[3.0, 1.0], scale=[1.0, 1.0]),
            "shapes[0].log2_tokens: must increase",
        ),
        (lambda e: e.update(scale=[1.0]), "shapes[0].scale: must be a list of 2 numbers"),
        (lambda e: e.update(scale=[0.0, 1.0]), "shapes[0].scale[0]: an attainment's scale is in (0, 100]"),
        (lambda e: e.update(log2_tokens="0-4"), "shapes[0].log2_tokens: must be a list of numbers"),
    ],
)
def test_bad_measured_model_shapes_are_clear_errors(edit, message):
    entry = {**MIXTRAL_SHAPE, "log2_tokens": [0.0, 4.0], "scale": [1.0, 2.0]}
    edit(entry)
    grid = _one_cell("moe_bf16", attainment=0.5)
    grid["shapes"] = [entry]
    with pytest.raises(CalibrationError) as err:
        parse_profile(_doc({"moe_bf16": grid}), "p.yaml")
    assert f"p.yaml: grids.moe_bf16.{message}" in str(err.value)


def test_measured_model_shapes_belong_to_fused_moe_grids_and_are_listed_once():
    entry = {**MIXTRAL_SHAPE, "log2_tokens": [0.0], "scale": [1.0]}
    grid = _one_cell("moe_bf16", attainment=0.5)
    grid["shapes"] = [entry, dict(entry)]
    with pytest.raises(CalibrationError, match=r"shapes\[1\]: the shape .* is listed twice"):
        parse_profile(_doc({"moe_bf16": grid}), "p.yaml")
    gemm = _one_cell("gemm_bf16", attainment=0.5)
    gemm["shapes"] = [entry]
    with pytest.raises(CalibrationError, match="grids.gemm_bf16.shapes: only fused-MoE grids"):
        parse_profile(_doc({"gemm_bf16": gemm}), "p.yaml")


def test_moe_call_s_is_the_intercept_of_the_fewest_token_calls():
    # shapes at their fewest tokens take F + roof / a (a = 0.6), one shape's kernel untuned (4x
    # slower), 1% noise: the repeated-medians intercept recovers F within the noise; without a fixed time the
    # intercept is 0 (a constant attainment is all in the grid)
    from roofline.profilers.grid_fit import moe_call_s

    rng = np.random.default_rng(0)
    roof = np.geomspace(1e-6, 200e-6, 24)
    groups = np.column_stack([np.arange(24.0), np.full(24, 8.0)])
    more = np.repeat(groups, 2, axis=0)  # each shape also at 16 tokens, where the call is longer
    tokens = np.tile([1.0, 16.0], 24)
    for fixed in (0.0, 25e-6):
        t1 = (fixed + roof / 0.6) * rng.lognormal(0.0, 0.01, roof.size)
        t1[5] *= 4.0
        seconds = np.column_stack([t1, t1 * 3.0]).ravel()
        launches = 5e-6
        got = moe_call_s(more, tokens, seconds + launches, np.repeat(roof, 2), launches)
        assert got == pytest.approx(fixed, abs=2e-6)


def test_moe_call_s_takes_shapes_of_one_roofline_time_as_one_point():
    # two of three shapes share a roofline time (no slope between them): their median stands for
    # them; with fewer than three distinct roofline times there is no intercept to fit (0), never
    # a value a profile cannot hold (an earlier fit divided by their zero distance: 1.2 s)
    from roofline.profilers.grid_fit import moe_call_s

    roof = np.array([30e-6, 210e-6, 210e-6])
    seconds = np.array([75e-6, 1050e-6, 525e-6])
    groups = np.arange(3.0)[:, None]
    assert moe_call_s(groups, np.ones(3), seconds, roof, 0.0) == 0.0
    roof4 = np.append(roof, 100e-6)
    seconds4 = 20e-6 + roof4 / 0.5
    seconds4[2] = seconds4[1]  # the tie, at the same time
    got = moe_call_s(np.arange(4.0)[:, None], np.ones(4), seconds4, roof4, 0.0)
    assert got == pytest.approx(20e-6, rel=1e-6)


def test_without_a_moe_grid_experts_read_the_gemm_grid_at_the_grouped_launch(tmp_path):
    # No fused-MoE grid: each expert GEMM reads the GEMM grid at (rows per expert, touched x n, k),
    # one launch streaming the touched experts' weights side by side. A gemm_bf16 grid that
    # varies along log2 n (0.4 at 2^10, 0.8 at 2^18, interpolated in log attainment) tells the
    # two readings apart: Mixtral's expert_up is 28672 wide, its grouped launch touched x 28672
    # (read at one expert, a small GEMM's fixed time was once charged per expert: FP8 MoEs on
    # B200 came out 7x too slow).
    grid = _one_cell("gemm_bf16")
    grid.update(start=[0.0, 10.0, 0.0], step=[1.0, 8.0, 1.0], shape=[1, 2, 1], attainment=[0.4, 0.8])
    ops = _mixtral_decode_ops(tmp_path, {"gemm_bf16": grid})
    touched = 8 * (1 - (1 - 2 / 8) ** 4)  # uniform top-2 routing of 4 tokens over 8 experts
    # the grouped kernel's measured share of the dense grid (16-bit), linear between octaves of
    # rows per expert: 8 pairs over 4.6 experts is 2^0.80 rows
    log2_rows = np.log2(4 * 2 / touched)
    share = MOE_GROUPED_SHARE[16][0] + log2_rows * (MOE_GROUPED_SHARE[16][1] - MOE_GROUPED_SHARE[16][0])
    # and the fused kernel's fixed time, once per layer, on the first of its ops
    for name, n, fixed in (("expert_up", 2 * 14336, MOE_FIXED_S[16]), ("expert_down", 4096, 0.0)):
        o = ops[name]
        attainment = 0.4 * 2 ** min((np.log2(n * touched) - 10) / 8, 1.0)  # geometric, then held
        assert attainment != pytest.approx(0.4 * 2 ** ((np.log2(n) - 10) / 8), rel=0.01)  # not one expert's
        roof = max(o["flops"] / PEAK, o["bytes"] / BW)
        assert o["time_s"] == pytest.approx(roof / (attainment * share) + 32 * (OVERHEAD + fixed), rel=1e-9)


def test_prompts_beyond_the_prefill_grid_warn(tmp_path):
    grid = _one_cell("attention_prefill")
    grid.update(
        start=[10.0, 0.0, 0.0, 0.0], step=[4.0, 1.0, 1.0, 1.0], shape=[2, 1, 1, 1], attainment=[0.3, 0.5]
    )
    inside = _simulate_with(tmp_path, {"attention_prefill": grid}, prompt_tokens=8192)
    beyond = _simulate_with(tmp_path, {"attention_prefill": grid}, prompt_tokens=65536)
    text = "attention_prefill measured for 1024..16384 tokens"
    assert not any(text in w for w in inside.records()[0]["provenance"]["warnings"])
    assert any(text in w for w in beyond.records()[0]["provenance"]["warnings"])


def test_a_hardware_sweep_mixes_measured_and_datasheet_rows(tmp_path):
    # one profile (H100) in a sweep over H100 and H200: the H100 points take the grids, the H200
    # points exactly what the datasheet model gives them alone (the per-row masks of grid_values)
    grids = {
        "gemm_bf16": _one_cell("gemm_bf16", attainment=0.5),
        "attention_decode": _one_cell("attention_decode", attainment=0.6),
    }
    path = tmp_path / "h100-sxm.grid.yaml"
    path.write_text(yaml.safe_dump(_doc(grids)))
    wl = {"batch": 1, "prompt_tokens": 8192, "output_tokens": 2}
    res = roofline.simulate(
        {
            "model": "llama-3.1-8b",
            "calibration": str(path),
            "workload": wl,
            "sweep": {"hardware": ["h100-sxm", "h200"]},
        }
    )
    by_hw = {
        r["hardware"]["name"] if isinstance(r["hardware"], dict) else r["hardware"]: i
        for i, r in enumerate(res.records())
    }
    qkv = next(o for o in op_table(res, by_hw["h100-sxm"], "decode") if o["name"] == "qkv_proj")
    assert qkv["time_s"] == pytest.approx(
        max(qkv["flops"] / PEAK, qkv["bytes"] / BW) / 0.5 + 32 * OVERHEAD, rel=1e-9
    )
    dec = next(o for o in op_table(res, by_hw["h100-sxm"], "decode") if o["kind"] == "attention_decode")
    assert dec["time_s"] == pytest.approx(dec["bytes"] / (BW * 0.6) + 32 * OVERHEAD, rel=1e-9)
    alone = roofline.simulate(
        {"model": "llama-3.1-8b", "hardware": "h200", "calibration": "datasheet", "workload": wl}
    )
    assert res.records()[by_hw["h200"]]["tpot_s"] == pytest.approx(alone.records()[0]["tpot_s"], rel=1e-12)


def _kv_sweep_base(path, doc: dict) -> dict:
    """Llama-3.1-8B on an H100 at batch 4 x 8K tokens, calibrated by the profile `doc` written to `path`."""
    path.write_text(yaml.safe_dump(doc))
    return {
        "model": "llama-3.1-8b",
        "hardware": "h100-sxm",
        "calibration": str(path),
        "workload": {"batch": 4, "prompt_tokens": 8192, "output_tokens": 64},
    }


def test_a_sweep_over_kv_formats_reads_each_formats_decode_grid(tmp_path):
    # bf16 KV: one cell at 0.6; fp8 KV: nodes at 1K and 16K tokens (0.3, 0.5). Formats are
    # structural in a sweep (simulator/sweep.py groups), so each point of a sweep over dtype.kv
    # reads its own format's grid and equals the same scenario alone.
    fp8 = _one_cell("attention_decode")
    fp8.update(
        start=[0.0, 0.0, 0.0, 10.0], step=[1.0, 1.0, 1.0, 4.0], shape=[1, 1, 1, 2], attainment=[0.3, 0.5]
    )
    grids = {"attention_decode": _one_cell("attention_decode", attainment=0.6), "attention_decode_fp8": fp8}
    base = _kv_sweep_base(tmp_path / "h100-sxm.kv.yaml", _doc(grids))
    res = roofline.simulate(dict(base, sweep={"dtype.kv": ["bf16", "fp8"]}))
    dec = {}
    for i, rec in enumerate(res.records()):
        kv = rec["point"]["dtype.kv"]
        alone = roofline.simulate(dict(base, dtype={"kv": kv})).records()[0]
        assert rec["tpot_s"] == pytest.approx(alone["tpot_s"], rel=1e-12)
        assert rec["ttft_s"] == pytest.approx(alone["ttft_s"], rel=1e-12)
        dec[kv] = next(o for o in op_table(res, i, "decode") if o["kind"] == "attention_decode")
    # the fp8 grid is the one read: at 8K tokens (between its nodes) its attainment is under 0.5
    assert dec["bf16"]["bytes"] / dec["bf16"]["time_s"] > 0.55 * BW
    assert dec["fp8"]["bytes"] / dec["fp8"]["time_s"] < 0.5 * BW


def test_the_error_band_names_the_grids_the_points_kv_format_reads(tmp_path):
    # Each grid with its own held-out median; a 1-D prefill curve with a large residual that a grid
    # replaces. A bf16 cache reads attention_prefill and attention_decode, an fp8 cache their
    # FP8-cache grids: each point's band lists those (and the GEMM grid) with their medians, never
    # the other format's grids or the replaced curve, and its max is theirs.
    def cell(kind, median, axes_of="attention_prefill"):
        grid = _one_cell(axes_of, attainment=0.5)
        grid["holdout"] = {"median": median, "p90": 2 * median, "rows": 10}
        return grid

    grids = {
        "gemm_bf16": cell("gemm_bf16", 0.01, "gemm_bf16"),
        "attention_prefill": cell("attention_prefill", 0.02),
        "attention_prefill_kv_fp8": cell("attention_prefill_kv_fp8", 0.03),
        "attention_decode": cell("attention_decode", 0.04, "attention_decode"),
        "attention_decode_fp8": cell("attention_decode_fp8", 0.05, "attention_decode"),
    }
    doc = _doc(grids)
    doc["curves"] = {
        "attention_prefill": {
            "fit": {"e_max": 0.6, "x_half": 2304.0, "p": 2.0},
            "residual": 0.7,
            "points": [],
        }
    }
    base = _kv_sweep_base(tmp_path / "h100-sxm.band.yaml", doc)
    res = roofline.simulate(dict(base, sweep={"dtype.kv": ["bf16", "fp8"]}))
    bands = {rec["point"]["dtype.kv"]: rec["provenance"]["error_band"] for rec in res.records()}
    assert bands["bf16"] == {
        "gemm_bf16": 0.01,
        "attention_prefill": 0.02,
        "attention_decode": 0.04,
        "max": 0.04,
    }
    assert bands["fp8"] == {
        "gemm_bf16": 0.01,
        "attention_prefill_kv_fp8": 0.03,
        "attention_decode_fp8": 0.05,
        "max": 0.05,
    }


def _mla_grids() -> dict:
    """mla_prefill varying along log2_heads (0.2 at 8 heads, 0.8 at 32), mla_decode along the KV
    format (fp8: 40 us fixed, attainment 0.2; bf16: 25 us, 0.5)."""
    pre = _one_cell("mla_prefill")
    pre.update(
        start=[0.0, 0.0, 3.0, 0.0], step=[1.0, 1.0, 2.0, 1.0], shape=[1, 1, 2, 1], attainment=[0.2, 0.8]
    )
    dec = _one_cell("mla_decode")
    dec.update(shape=[1, 1, 2, 1], attainment=[0.2, 0.5])
    return {"mla_prefill": pre, "mla_decode": dec}


def _mla_scenario(path, kv: str = "bf16", **extra) -> dict:
    wl = {"batch": 4, "prompt_tokens": 1024, "output_tokens": 2}
    return {
        "model": "deepseek-v2-lite",
        "calibration": str(path),
        "dtype": {"kv": kv},
        "workload": wl,
        **extra,
    }


def test_engine_prices_mla_attention_from_the_mla_grids(tmp_path):
    # DeepSeek-V2-Lite (MLA, 16 heads, 27 layers) on one H100, vLLM (eager prefill, CUDA-graph decode)
    path = tmp_path / "h100-sxm.mla.yaml"
    path.write_text(yaml.safe_dump(_doc(_mla_grids())))
    layers = 27
    for kv, att in (("bf16", 0.5), ("fp8", 0.2)):
        res = roofline.simulate(dict(_mla_scenario(path, kv), hardware="h100-sxm"))
        # prefill: 16 heads sit halfway (in log2) between 8 and 32 heads: attainment sqrt(0.2 x 0.8) = 0.4
        pre = next(o for o in op_table(res, 0, "prefill") if o["kind"] == "attention_prefill")
        roof = max(pre["flops"] / PEAK, pre["bytes"] / BW)
        assert pre["time_s"] == pytest.approx(roof / 0.4 + layers * (OVERHEAD + EAGER_LAUNCH_S), rel=1e-9)
        # decode over the latent: max(FLOPs / peak, bytes / bandwidth) / attainment + a launch per
        # layer (one KV-length node: the attainment holds at every length; bf16 KV is memory-bound at
        # ~30 FLOPs per byte, fp8 at ~60, so the roof is linear in the length and so is its mean)
        dec = next(o for o in op_table(res, 0, "decode") if o["kind"] == "attention_decode")
        roof = max(dec["flops"] / PEAK, dec["bytes"] / BW)
        assert dec["time_s"] == pytest.approx(roof / att + layers * OVERHEAD, rel=1e-9)


def test_mla_grids_leave_datasheet_rows_and_gqa_models_alone(tmp_path):
    # a hardware sweep with an H100 profile holding only MLA grids: the H200 points are what the
    # datasheet gives them alone; a GQA model on the H100 takes no MLA grid (its attention prices
    # as with an empty grids section)
    path = tmp_path / "h100-sxm.mla.yaml"
    path.write_text(yaml.safe_dump(_doc(_mla_grids())))
    res = roofline.simulate(_mla_scenario(path, sweep={"hardware": ["h100-sxm", "h200"]}))
    alone = roofline.simulate(dict(_mla_scenario(path), hardware="h200", calibration="datasheet"))
    h200 = [i for i, r in enumerate(res.records()) if "h200" in str(r["hardware"])]
    assert res.records()[h200[0]]["tpot_s"] == pytest.approx(alone.records()[0]["tpot_s"], rel=1e-12)
    gqa = [_simulate_with(tmp_path, g).records()[0]["tpot_s"] for g in (_mla_grids(), {})]
    assert gqa[0] == pytest.approx(gqa[1], rel=1e-12)


@pytest.mark.parametrize(
    "kind,edit,message",
    [
        (
            "mla_prefill",
            lambda g: g.update(axes=["log2_seqlen", "log2_batch_heads", "log2_group"]),
            "axes: must be",
        ),
        ("mla_decode", lambda g: g.pop("attainment"), "mla_decode.attainment: must be a list of 1 values"),
        (
            "mla_decode",
            lambda g: g.update(attainment=[0.0]),
            "attainment[0]: must be a positive finite number",
        ),
        ("mla_prefill", lambda g: g.update(shape=[1, 1, 1]), "shape: must be 4 cell counts"),
    ],
)
def test_bad_mla_grids_are_clear_errors(kind, edit, message):
    grid = _mla_grids()[kind] if kind == "mla_prefill" else _one_cell(kind, attainment=0.5)
    edit(grid)
    with pytest.raises(CalibrationError) as err:
        parse_profile(_doc({kind: grid}), "p.yaml")
    assert f"p.yaml: grids.{kind}" in str(err.value) and message in str(err.value)


def test_mla_points_count_flops_and_bytes_as_the_engine_does():
    # the importer's FLOPs and bytes of a measured MLA kernel (profilers/aic_mla.py) are the engine's
    # for the same shape: DeepSeek-V2-Lite shares DeepSeek-V3's per-head dims (16 heads on one GPU)
    from pathlib import Path

    from roofline.api import load_hardware
    from roofline.profilers.aic_mla import mla_decode_points, mla_prefill_points
    from roofline.profilers.aic_read import Table

    hw = load_hardware("h100-sxm")
    res = roofline.simulate(_mla_scenario("datasheet", hardware="h100-sxm"))
    layers = 27

    def table(name, **cols):
        cols = {k: np.asarray(v, dtype=float if k != "kv_cache_dtype" else object) for k, v in cols.items()}
        return Table(name, Path(f"{name}.parquet"), "sglang", "0", "", cols)

    # prefill of 4 x 1024 tokens; decode's mean KV length over its 2 output tokens is 1025
    pre = mla_prefill_points(
        table(
            "context_mla",
            batch_size=[4],
            isl=[1024],
            num_heads=[16],
            kv_cache_dtype=["bfloat16"],
            latency=[1],
        ),
        hw,
    )
    dec = mla_decode_points(
        table("generation_mla", batch_size=[4], isl=[1], step=[1024], num_heads=[16], latency=[1]), hw
    )
    for phase, points in (("prefill", pre), ("decode", dec)):
        op = next(o for o in op_table(res, 0, phase) if o["kind"] == f"attention_{phase}")
        assert op["flops"] == pytest.approx(layers * points["flops"][0], rel=1e-12)
        assert op["bytes"] == pytest.approx(layers * points["bytes"][0], rel=1e-12)


def test_mla_decode_fit_recovers_a_known_kernel_at_its_length_nodes():
    # t = fixed(batch) + roof / attainment(heads, KV format), roof = max(FLOPs / peak, bytes / BW) of
    # the latent read; measured at every octave of the KV length as AIConfigurator does
    from roofline.api import decode_kernel_time
    from roofline.profilers.grid_fit import decode_grid

    rows = [
        (b, h, kb, L)
        for b in (1, 4, 16, 64)
        for h in (8, 16, 32, 64, 128)
        for kb in (1, 2)
        for L in 2.0 ** np.arange(6, 16)
    ]
    b, h, kb, L = (np.array(c, dtype=float) for c in zip(*rows))

    def roof_at(i, lengths):
        compute = 2 * b[i, None] * h[i, None] * 1088 * lengths / PEAK
        return np.maximum(compute, b[i, None] * lengths * 576 * kb[i, None] / BW)

    fixed, att = 10e-6 * (1 + 0.1 * np.log2(b)), 0.3 + 0.05 * np.log2(h) / kb
    seconds = fixed + roof_at(np.arange(L.size), L[:, None])[:, 0] / att + OVERHEAD
    X = np.log2(np.column_stack([b, h, kb, L]))
    grid = decode_grid("mla_decode", X, roof_at, seconds, OVERHEAD, X[:, :3])
    assert set(grid.values) == {"attainment"} and grid.holdout["median"] < 0.03
    i = np.array([77, 301])  # measured shapes: their own times at their lengths (nodes)
    got = decode_kernel_time(grid, X[i, :3].T, lambda lengths: roof_at(i, lengths), L[i]) + OVERHEAD
    assert got == pytest.approx(seconds[i], rel=1e-3)
