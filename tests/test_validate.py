"""`roofline validate` on CPU: the torch decoder against a naive reference, the end-to-end report with
the tiny llama config, layer scaling, and --trace files (JSON and CSV) with known errors."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="roofline validate runs a torch model (pip install -e '.[test]')")

import roofline  # noqa: E402  (after the importorskip)
from roofline.cli.main import main  # noqa: E402
from roofline.models import load_model  # noqa: E402
from roofline.profilers.torch_model import Decoder, UnsupportedModel, apply_rope, built_groups  # noqa: E402
from roofline.profilers.validate import scaled, sku_for_device  # noqa: E402
from roofline.profilers.validate_report import summarize  # noqa: E402
from roofline.simulator.model import LayerGroup, MoEFFN  # noqa: E402

TINY = "tests/fixtures/tiny_llama_config.json"


def cli(*argv):
    """`roofline validate ARGV` as the command runs it: bad input is exit 2 with an `error:` line."""
    return main(["validate", *argv])


def check_summary(report):
    """The summary's median and p90 of |error|, recomputed from the points."""
    for metric in ("ttft_s", "tpot_s"):
        errors = [abs(p["error"]) for p in report["points"] if p["metric"] == metric]
        s = report["summary"][metric]
        assert s["n"] == len(errors) > 0
        assert s["median_abs_error"] == pytest.approx(float(np.median(errors)), rel=1e-12)
        assert s["p90_abs_error"] == pytest.approx(float(np.percentile(errors, 90)), rel=1e-12)


# --- the torch decoder -------------------------------------------------------------------------


def naive_logits(model: Decoder, tokens):
    """All-position logits by explicit matmuls: repeated KV heads, a -inf causal mask, softmax."""
    x = model.embed(tokens)
    t = tokens.shape[1]
    cache = model.new_cache(tokens.shape[0], t)
    mask = torch.ones(t, t, dtype=torch.bool).tril()
    for blk in model.blocks:
        spec, attn = blk.attn.spec, blk.attn
        h, kv, d = spec.num_heads, spec.num_kv_heads, spec.head_dim
        y = blk.attn_norm(x)
        q, k, v = attn.qkv(y).split((h * d, kv * d, kv * d), dim=-1)
        q = apply_rope(q.view(*y.shape[:2], h, d).transpose(1, 2), cache.cos, cache.sin)
        k = apply_rope(k.view(*y.shape[:2], kv, d).transpose(1, 2), cache.cos, cache.sin)
        v = v.view(*y.shape[:2], kv, d).transpose(1, 2)
        k, v = k.repeat_interleave(h // kv, dim=1), v.repeat_interleave(h // kv, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(d)
        probs = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
        x = x + attn.o((probs @ v).transpose(1, 2).reshape(*y.shape[:2], h * d))
        x = x + blk.ffn(blk.ffn_norm(x))
    return model.lm_head(model.norm(x))


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return Decoder(load_model(TINY))


def test_prefill_matches_a_naive_reference(tiny):
    tokens = torch.randint(0, 1000, (2, 17))
    logits, sampled = tiny.prefill(tokens, tiny.new_cache(2, 17))
    assert logits.shape == (2, 1000) and sampled.shape == (2,)
    with torch.inference_mode():
        reference = naive_logits(tiny, tokens)[:, -1]
    torch.testing.assert_close(logits, reference, rtol=1e-5, atol=1e-5)
    assert torch.equal(sampled, reference.argmax(-1))


def test_decode_after_prefill_equals_prefill_of_one_more_token(tiny):
    tokens = torch.randint(0, 1000, (3, 25))
    full_cache = tiny.new_cache(3, 25)
    full, _ = tiny.prefill(tokens, full_cache)
    cache = tiny.new_cache(3, 25)
    tiny.prefill(tokens[:, :24], cache)
    step, _ = tiny.decode(tokens[:, 24:], 24, cache)
    torch.testing.assert_close(step, full, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cache.k, full_cache.k, rtol=1e-5, atol=1e-6)  # the step wrote K/V at 24
    torch.testing.assert_close(cache.v, full_cache.v, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("variant", ["window", "moe"])
def test_windowed_and_moe_layers_keep_decode_consistent(variant):
    arch = load_model(TINY)
    g = arch.layer_groups[0]
    group = (
        LayerGroup(replace(g.mixer, window=6), g.ffn, 2)
        if variant == "window"
        else LayerGroup(
            g.mixer, MoEFFN(num_experts=4, top_k=2, expert_intermediate=32, shared_intermediate=16), 2
        )
    )
    torch.manual_seed(1)
    model = Decoder(replace(arch, layer_groups=(group,)))
    tokens = torch.randint(0, 1000, (2, 21))
    full, _ = model.prefill(tokens, model.new_cache(2, 21))
    cache = model.new_cache(2, 21)
    model.prefill(tokens[:, :20], cache)
    step, _ = model.decode(tokens[:, 20:], 20, cache)
    torch.testing.assert_close(step, full, rtol=1e-5, atol=1e-5)


def test_unsupported_families_name_what_is_supported():
    with pytest.raises(UnsupportedModel, match=r"cannot build mla layers.*supported: softmax attention"):
        Decoder(load_model("deepseek-v3"), 1)
    with pytest.raises(UnsupportedModel, match="linear_attention"):
        Decoder(load_model("minimax-text-01"), 1)


def test_layers_are_apportioned_to_groups_and_scaled_by_full_over_built():
    gemma = load_model("gemma-2-9b")  # 21 windowed + 21 global layers
    assert [c for _, _, c in built_groups(gemma, 5)] == [3, 2]
    assert sum(c for _, _, c in built_groups(gemma, 42)) == 42
    assert scaled(total=3.0, outside=1.0, built=2, full=32) == pytest.approx(1.0 + 2.0 * 16)


def test_device_names_map_to_hwspecs():
    assert sku_for_device("NVIDIA H100 80GB HBM3") == "h100-sxm"
    assert sku_for_device("NVIDIA H100 PCIe") == "h100-pcie"
    assert sku_for_device("NVIDIA H200") == "h200"
    assert sku_for_device("NVIDIA A100-SXM4-80GB") == "a100-80gb-sxm"
    assert sku_for_device("Some Future GPU") is None


# --- validate end to end on CPU ------------------------------------------------------------------


@pytest.fixture(scope="module")
def cpu_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("validation")
    rc = cli("--model", TINY, "--contexts", "32,64", "--batches", "1", "--hardware", "h100-sxm",
             "--device", "cpu", "--out", str(out))  # fmt: skip
    return rc, out


def test_cpu_run_writes_json_and_markdown_with_finite_points(cpu_report):
    rc, out = cpu_report
    assert rc == 0
    (json_path,) = out.glob("h100-sxm-tiny_llama_config-*.json")
    assert json_path.with_suffix(".md").is_file()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # atomic writes left no temp file
    report = json.loads(json_path.read_text())
    prov = report["provenance"]
    assert (prov["layers_built"], prov["layers_full"], prov["measured_dtype"]) == (2, 2, "float32")
    assert "scaling" in prov and prov["device"].startswith("cpu")
    assert any("pipeline only" in n for n in prov["notes"])
    assert report["kernels"]["skipped"]
    configs = {(p["metric"], p["config"]["prompt_tokens"], p["config"]["batch"]) for p in report["points"]}
    assert configs == {(m, c, 1) for m in ("ttft_s", "tpot_s") for c in (32, 64)}
    for p in report["points"]:
        assert math.isfinite(p["measured_s"]) and p["measured_s"] > 0
        assert math.isfinite(p["predicted_s"]) and p["predicted_s"] > 0
        assert p["error"] == pytest.approx((p["predicted_s"] - p["measured_s"]) / p["measured_s"])
    check_summary(report)


def test_predictions_are_the_simulators_at_one_decode_step(cpu_report):
    _, out = cpu_report
    (path,) = out.glob("h100-sxm-tiny_llama_config-*.json")
    report = json.loads(path.read_text())
    rec = roofline.simulate(
        {
            "model": TINY,
            "hardware": "h100-sxm",
            "workload": {"batch": 1, "prompt_tokens": 64, "output_tokens": 2},
        }
    ).records()[0]
    point = {p["metric"]: p for p in report["points"] if p["config"]["prompt_tokens"] == 64}
    assert point["ttft_s"]["predicted_s"] == pytest.approx(rec["ttft_s"], rel=1e-12)
    assert point["tpot_s"]["predicted_s"] == pytest.approx(rec["tpot_s"], rel=1e-12)


def test_partial_build_is_scaled_to_the_full_model(tmp_path):
    cfg = json.loads(open(TINY).read())
    cfg["num_hidden_layers"] = 4
    path = tmp_path / "tiny4.json"
    path.write_text(json.dumps(cfg))
    assert cli("--model", str(path), "--contexts", "16", "--layers", "1", "--hardware", "h100-sxm",
               "--device", "cpu", "--out", str(tmp_path), "--no-kernels") == 0  # fmt: skip
    (path,) = tmp_path.glob("h100-sxm-tiny4-*.json")
    report = json.loads(path.read_text())
    assert (report["provenance"]["layers_built"], report["provenance"]["layers_full"]) == (1, 4)
    for p in report["points"]:
        outside, built = p["outside_layers_s"], p["measured_built_s"]
        assert p["measured_s"] == pytest.approx(outside + (built - outside) * 4, rel=1e-12)


def test_cpu_without_hardware_is_refused_with_the_reason(capsys):
    assert cli("--model", TINY, "--device", "cpu") == 2
    err = capsys.readouterr().err
    assert "--hardware" in err and "pipeline" in err
    assert cli("--model", TINY, "--device", "cpu", "--hardware", "h100", "--contexts", "8") == 2
    assert "h100-sxm" in capsys.readouterr().err  # did-you-mean
    assert cli("--model", TINY, "--device", "cpu", "--hardware", "h100-sxm", "--layers", "3") == 2
    assert "1..2" in capsys.readouterr().err


KERNEL_SCRIPT = """
import json, math, torch
from roofline.models import load_model
from roofline.profilers.validate import Settings
from roofline.profilers.validate_kernels import kernel_points
settings = Settings(model=MODEL, hardware="h100-sxm", contexts=[128], batches=[2])
shapes = []
def timer(fn, work):
    out = fn()
    assert torch.isfinite(out).all()
    shapes.append(list(out.shape))
    return 1e-4
report = kernel_points(settings, load_model(MODEL), "cpu", torch.float32, timer, budgets=(32,), densities=(0.5,))
print(json.dumps({"report": report, "shapes": shapes}))
"""


@pytest.mark.interpreter
def test_kernel_section_runs_every_kernel_under_the_interpreter(tmp_path):
    """The method-kernel adapters against the real kernel signatures, on CPU (TRITON_INTERPRET=1)."""
    pytest.importorskip("triton", reason="the method kernels are Triton kernels")
    pytest.importorskip("roofline.kernels.block_sparse_prefill", reason="roofline.kernels not installed")
    import os
    import subprocess
    import sys

    env = {**os.environ, "TRITON_INTERPRET": "1"}
    code = f"MODEL = {TINY!r}\n" + KERNEL_SCRIPT
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.splitlines()[-1])
    points = out["report"]["points"]
    assert [p["method"] for p in points] == ["dense", "kv_quant", "kv_quant", "quest", "block_sparse_prefill"]
    assert all("skipped" not in p for p in points), points
    assert out["shapes"] == [[2, 4, 16]] * 4 + [[1, 4, 128, 16]]  # [batch, heads, (seq,) head_dim]
    for p in points:
        assert p["predicted_s"] > 0 and p["error"] == pytest.approx(p["predicted_s"] / 1e-4 - 1)
    # the random block mask keeps its diagonal: the simulated density is the mask's causal density
    assert points[-1]["config"]["causal_density"] > 0.5
    assert set(out["report"]["summary"]) == {"dense", "kv_quant", "quest", "block_sparse_prefill"}
    assert out["report"]["summary"]["kv_quant"]["n"] == 2


# --- --trace -------------------------------------------------------------------------------------

ROWS = [
    {"model": "llama-3.1-8b", "hardware": "h100-sxm", "batch": 1, "prompt_tokens": 8192, "output_tokens": 256},
    {"model": "llama-3.1-8b", "hardware": "h200", "batch": 8, "prompt_tokens": 32768, "output_tokens": 128},
    {"model": "llama-3.1-70b", "hardware": "h100-sxm", "batch": 4, "prompt_tokens": 4096, "output_tokens": 64,
     "tp": 4},
]  # fmt: skip


def with_measurements(rows, factor=1.1):
    """The rows with ttft_s/tpot_s set to the simulator's own predictions times `factor`."""
    out = []
    for row in rows:
        doc = {
            "model": row["model"],
            "hardware": row["hardware"],
            "parallelism": {"tp": row.get("tp", 1)},
            "workload": {k: row[k] for k in ("batch", "prompt_tokens", "output_tokens")},
        }
        rec = roofline.simulate(doc).records()[0]
        out.append({**row, "ttft_s": rec["ttft_s"] * factor, "tpot_s": rec["tpot_s"] * factor})
    return out


@pytest.fixture(scope="module")
def measured_rows():
    return with_measurements(ROWS)


def check_trace_report(report, n_rows):
    assert len(report["points"]) == 2 * n_rows
    for p in report["points"]:
        # measured = 1.1 x predicted: the prediction is 1/1.1 - 1 = -9.09% off the measurement
        assert p["error"] == pytest.approx(1 / 1.1 - 1, rel=1e-9)
    for metric in ("ttft_s", "tpot_s"):
        assert report["summary"][metric]["median_abs_error"] == pytest.approx(1 - 1 / 1.1, rel=1e-9)
    check_summary(report)


def test_json_trace_errors_match_known_numbers(tmp_path, measured_rows):
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps(measured_rows))
    assert cli("--trace", str(trace), "--out", str(tmp_path)) == 0
    (path,) = tmp_path.glob("mixed-mixed-*.json")  # several models and GPUs in one trace
    report = json.loads(path.read_text())
    check_trace_report(report, len(ROWS))
    assert report["provenance"]["rows_compared"] == 3 and report["problems"] == []


def test_csv_trace_errors_match_known_numbers(tmp_path, measured_rows):
    trace = tmp_path / "trace.csv"
    columns = ["model", "hardware", "batch", "prompt_tokens", "output_tokens", "tp", "ttft_s", "tpot_s"]
    with open(trace, "w", newline="") as fh:
        writer = csv.DictWriter(fh, columns)
        writer.writeheader()
        for row in measured_rows:
            writer.writerow({**row, "ttft_s": repr(row["ttft_s"]), "tpot_s": repr(row["tpot_s"])})
    assert cli("--trace", str(trace), "--out", str(tmp_path / "out")) == 0
    (path,) = (tmp_path / "out").glob("*.json")  # the report alone: the trace lives elsewhere
    check_trace_report(json.loads(path.read_text()), len(ROWS))


def test_bad_trace_rows_are_reported_and_the_others_compared(tmp_path, measured_rows, capsys):
    good = measured_rows[0]
    rows = [
        good,
        {**good, "hardware": "h100"},  # unknown SKU
        {k: v for k, v in good.items() if k != "prompt_tokens"},  # missing a field
        {**good, "ttft_s": -1.0},  # negative time
        {k: v for k, v in good.items() if k not in ("ttft_s", "tpot_s")},  # nothing measured
        {**good, "colour": "red"},  # unknown column
        "not an object",
        {**good, "tpot_s": None},  # one metric missing is fine
    ]
    trace = tmp_path / "trace.json"
    trace.write_text(json.dumps(rows))
    assert cli("--trace", str(trace), "--out", str(tmp_path / "out")) == 0
    (path,) = (tmp_path / "out").glob("*.json")  # the report alone, not the trace.json input
    report = json.loads(path.read_text())
    problems = report["problems"]
    assert len(problems) == 6
    assert "row 2:" in problems[0] and "hardware" in problems[0] and "h100-sxm" in problems[0]
    assert "row 3: missing prompt_tokens" in problems[1]
    assert "row 4: ttft_s must be a positive number" in problems[2]
    assert "row 5: needs ttft_s or tpot_s" in problems[3]
    assert "row 6: unknown column 'colour'" in problems[4]
    assert "row 7: must be an object" in problems[5]
    assert sorted((p["config"]["row"], p["metric"]) for p in report["points"]) == [
        (1, "tpot_s"), (1, "ttft_s"), (8, "ttft_s")
    ]  # fmt: skip
    assert "row 6" in capsys.readouterr().err  # warned on stderr as well


def test_unreadable_trace_is_an_error(tmp_path, capsys):
    trace = tmp_path / "trace.json"
    trace.write_text("{not json")
    assert cli("--trace", str(trace)) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert cli("--trace", str(tmp_path / "missing.csv")) == 2


def test_summary_of_no_points_is_empty():
    assert summarize([])["ttft_s"] == {
        "n": 0,
        "median_abs_error": None,
        "p90_abs_error": None,
        "mean_error": None,
    }
