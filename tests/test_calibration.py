"""Calibration profiles: curve fitting recovers known curves; the simulator uses a profile when
asked (auto or a path), interpolates inside the measured range, holds the boundary outside it and
says so in provenance. Profiles here are synthetic (made in the test), never written to hwspecs/."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import roofline
from roofline.hwspecs import find_profile, read_profile
from roofline.profilers.efficiency_fit import fit_efficiency_curve
from roofline.simulator.calibration import CalibrationError, hill
from roofline.simulator.frameworks import EAGER_LAUNCH_S
from roofline.simulator.results import op_table
from roofline.simulator.scenario import ScenarioError


@pytest.mark.parametrize("e_max,x_half,p", [(0.8, 1500.0, 2.0), (0.62, 700.0, 1.2), (0.9, 4000.0, 3.0)])
def test_fit_recovers_a_known_curve(e_max, x_half, p):
    rng = np.random.default_rng(0)
    x = np.geomspace(256, 65536, 16)
    e = hill(x, e_max, x_half, p) * (1 + rng.normal(0, 0.01, x.size))  # 1% measurement noise
    out = fit_efficiency_curve(x, e)
    assert out["fit"]["e_max"] == pytest.approx(e_max, rel=0.03)
    assert out["fit"]["x_half"] == pytest.approx(x_half, rel=0.10)
    assert out["fit"]["p"] == pytest.approx(p, rel=0.15)
    assert 0.0 < out["residual"] < 0.03
    with pytest.raises(ValueError):
        fit_efficiency_curve([1, 2], [0.1, 0.2])


def _profile(tmp_path, attn=(0.5, 2048.0, 2.0, 1024.0, 32768.0), hbm=0.5, overhead=5e-6):
    doc = {
        "profile_id": "h100-sxm-synthetic",
        "hardware": "h100-sxm",
        "provenance": {"device": "synthetic (test)", "date": "2026-11-22"},
        "kernel_overhead_s": overhead,
        "curves": {
            "hbm": {
                "fit": {"e_max": hbm, "x_half": 1e3, "p": 1.0},
                "points": [{"x": 1e6, "efficiency": hbm}, {"x": 1e9, "efficiency": hbm}],
            },
            "attention_prefill": {
                "fit": {"e_max": attn[0], "x_half": attn[1], "p": attn[2]},
                "points": [{"x": attn[3], "efficiency": 0.1}, {"x": attn[4], "efficiency": 0.5}],
            },
        },
    }
    path = tmp_path / "h100-sxm.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_profile_path_replaces_datasheet_efficiencies(tmp_path):
    path = _profile(tmp_path)
    base = {
        "model": "llama-3.1-8b",
        "hardware": "h100-sxm",
        "workload": {"batch": 1, "prompt_tokens": 8192, "output_tokens": 2},
    }
    sheet = roofline.simulate(dict(base, calibration="datasheet"))
    prof = roofline.simulate(dict(base, calibration=str(path)))
    rec = prof.records()[0]
    assert rec["provenance"]["calibration"] == "h100-sxm-synthetic"
    assert sheet.records()[0]["provenance"]["calibration"] == "datasheet"
    # Decode GEMMs at batch 1 are memory-bound: HBM efficiency 0.5 -> time = bytes / (3.35e12 * 0.5) + overhead.
    qkv = [o for o in op_table(prof, 0, "decode") if o["name"] == "qkv_proj"][0]
    assert qkv["time_s"] == pytest.approx(qkv["bytes"] / (3.35e12 * 0.5) + 32 * 5e-6, rel=1e-6)
    # Prefill attention runs at hill(8192) of bf16 peak.
    attn = [o for o in op_table(prof, 0, "prefill") if o["kind"] == "attention_prefill"][0]
    rate = 989.4e12 * hill(8192, 0.5, 2048.0, 2.0)
    # One kernel per layer, launched eagerly (vLLM's prefill): the profile's overhead + the launch.
    launch = 5e-6 + EAGER_LAUNCH_S
    assert attn["time_s"] == pytest.approx(attn["flops"] / rate + 32 * launch, rel=1e-3)


def test_error_band_is_the_residual_of_the_curves_used(tmp_path):
    # provenance.error_band: each profile curve the point used, with its fit's relative RMS residual
    # (the largest as 'max'); datasheet efficiencies are 'uncalibrated'.
    path = _profile(tmp_path)
    doc = yaml.safe_load(path.read_text())
    doc["curves"]["hbm"]["residual"] = 0.03
    doc["curves"]["attention_prefill"]["residual"] = 0.07
    path.write_text(yaml.safe_dump(doc))
    base = {"model": "llama-3.1-8b", "hardware": "h100-sxm", "workload": {"prompt_tokens": 8192}}
    band = roofline.simulate(dict(base, calibration=str(path))).records()[0]["provenance"]["error_band"]
    assert band == {"hbm": 0.03, "attention_prefill": 0.07, "max": 0.07}
    sheet = roofline.simulate(dict(base, calibration="datasheet")).records()[0]["provenance"]
    assert sheet["error_band"] == "uncalibrated"


def test_outside_the_measured_range_holds_the_boundary_and_warns(tmp_path):
    path = _profile(tmp_path)
    base = {"model": "llama-3.1-8b", "hardware": "h100-sxm", "calibration": str(path)}
    wl = {"batch": 1, "output_tokens": 2}
    at_edge = roofline.simulate(dict(base, workload=dict(wl, prompt_tokens=32768)))
    beyond = roofline.simulate(dict(base, workload=dict(wl, prompt_tokens=65536)))

    def attn_rate(res):
        o = [o for o in op_table(res, 0, "prefill") if o["kind"] == "attention_prefill"][0]
        return o["flops"] / o["time_s"]

    assert attn_rate(beyond) == pytest.approx(attn_rate(at_edge), rel=0.01)  # held, not extrapolated
    warnings = beyond.records()[0]["provenance"]["warnings"]
    assert any("attention_prefill measured for 1024..32768 tokens" in w for w in warnings)
    assert not any("attention_prefill measured" in w for w in at_edge.records()[0]["provenance"]["warnings"])


def test_auto_finds_a_profile_by_hardware_name(tmp_path):
    _profile(tmp_path)
    assert find_profile("h100-sxm", tmp_path).profile_id == "h100-sxm-synthetic"
    assert find_profile("h200", tmp_path) is None


def test_bad_profiles_are_clear_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "profile_id: x\nhardware: h100-sxm\ncurves: {gemm_bf16: {fit: {e_max: 3, x_half: 1, p: 1}}}\n"
    )
    with pytest.raises(CalibrationError, match=r"e_max: an efficiency is in \(0, 1.2\]"):
        read_profile(bad)
    bad.write_text(
        "profile_id: x\nhardware: h100-sxm\ncurves: {flops: {fit: {e_max: 0.5, x_half: 1, p: 1}}}\n"
    )
    with pytest.raises(CalibrationError, match="unknown op kind"):
        read_profile(bad)
    with pytest.raises(CalibrationError, match="no such calibration profile"):
        read_profile(tmp_path / "missing.yaml")
    good = _profile(tmp_path)
    with pytest.raises(ScenarioError, match="is a profile of h100-sxm, but the scenario runs on h200"):
        roofline.simulate(
            {
                "model": "llama-3.1-8b",
                "hardware": "h200",
                "workload": {"prompt_tokens": 4096},
                "calibration": str(good),
            }
        )


def test_measured_collectives_replace_link_defaults(tmp_path):
    # A profile with only collectives (profilers/collectives.py output): the NVLink all-reduce fit
    # (alpha 10 us per ring step, beta 200 GB/s) drives TP8's all-reduces through the ring formula:
    # 2(n-1) alpha + 2(n-1)/n S / beta, with S = one token's hidden state (8192 x 2 bytes).
    doc = {
        "profile_id": "h100-sxm-links",
        "hardware": "h100-sxm",
        "collectives": {
            "nvlink": {
                "ops": {"all_reduce": {"fit": {"alpha_s": 10e-6, "beta_Bps": 200e9, "residual": 0.02}}}
            },
            "network": {
                "ops": {"all_reduce": {"fit": {"alpha_s": 30e-6, "beta_Bps": 40e9, "residual": 0.05}}}
            },
        },
    }
    path = tmp_path / "links.yaml"
    path.write_text(yaml.safe_dump(doc))
    profile = read_profile(path)
    assert profile.link(("nvlink",)).alpha_s == 10e-6 and profile.link(("network",)).beta_Bps == 40e9
    wl = {"batch": 1, "prompt_tokens": 8192, "output_tokens": 64}
    res = roofline.simulate(
        {
            "model": "llama-3.1-70b",
            "hardware": "h100-sxm",
            "parallelism": {"tp": 8},
            "calibration": str(path),
            "runtime": {"custom_allreduce": False},  # the fit is NCCL's: no engine peer all-reduce
            "workload": wl,
        }
    )
    comm = sum(o["time_s"] for o in op_table(res, 0, "decode") if o["kind"] == "comm")
    per = 14 * 10e-6 + 1.75 * 8192 * 2 / 200e9
    assert comm == pytest.approx(2 * 80 * per, rel=1e-9)
    # Across two nodes (TP16), the network fit paces the inter-node all-reduce of the 1/8 shards.
    res16 = roofline.simulate(
        {
            "model": "llama-3.1-70b",
            "hardware": "h100-sxm",
            "parallelism": {"tp": 16},
            "calibration": str(path),
            "workload": wl,
        }
    )
    rs = 7 * 10e-6 + 7 / 8 * 16384 / 200e9
    ar_inter = 2 * 1 * 30e-6 + 2 * 1 / 2 * (16384 / 8) / 40e9  # ring and tree coincide for 2 nodes
    comm16 = sum(o["time_s"] for o in op_table(res16, 0, "decode") if o["kind"] == "comm")
    assert comm16 == pytest.approx(2 * 80 * (2 * rs + ar_inter), rel=1e-9)


def _snapkv_vote_time(tmp_path, fractions):
    doc = {"profile_id": "a100-frac", "hardware": "a100-80gb-sxm", "curves": {}}
    if fractions is not None:
        doc["fractions"] = fractions
    path = tmp_path / "frac.yaml"
    path.write_text(yaml.safe_dump(doc))
    res = roofline.simulate(
        {
            "model": "llama-3.1-8b",
            "hardware": "a100-80gb-sxm",
            "calibration": str(path),
            "methods": [{"name": "snapkv", "budget_tokens": 1024, "window_tokens": 4096}],
            "workload": {"batch": 1, "prompt_tokens": 131072, "output_tokens": 2},
        }
    )
    (vote,) = [o for o in op_table(res, 0, "prefill") if o["name"] == "snapkv_vote"]
    return vote


def test_a_profile_measures_the_named_fractions(tmp_path):
    # SnapKV's vote (64.5 FLOP/byte) is compute bound on an A100 at the default 0.3 of its 312
    # TFLOP/s (ridge 55 FLOP/byte) and at a measured 0.15: its time follows 1 / fraction.
    default = _snapkv_vote_time(tmp_path, None)
    measured = _snapkv_vote_time(tmp_path, {"score_kernel": 0.15})
    assert default["bound"] == measured["bound"] == "compute"
    overhead = 32 * (2e-6 + EAGER_LAUNCH_S)  # one eager launch per layer (prefill), unchanged
    assert measured["time_s"] - overhead == pytest.approx((default["time_s"] - overhead) * 2.0, rel=1e-9)


@pytest.mark.parametrize(
    "fractions, message",
    [
        ({"scoring": 0.5}, "unknown kernel family"),
        ({"score_kernel": 0}, r"in \(0, 1\.2\]"),
        ([0.3], "must map"),
    ],
)
def test_bad_fractions_are_refused(tmp_path, fractions, message):
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump({"profile_id": "x", "hardware": "h100-sxm", "curves": {}, "fractions": fractions})
    )
    with pytest.raises(CalibrationError, match=message):
        read_profile(path)
