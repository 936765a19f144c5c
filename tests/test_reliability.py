"""Reliability under bad input (issue 16): each finding of the fuzz harness (tests/fuzz/) with a
minimal input. Every case ends in a result or one clean error naming the field and the limit, in
bounded time; outputs never replace anything but a regular file the command does not read."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import roofline
from roofline.api import UserError, from_hf_config, load_model
from roofline.cli.main import main as cli_main
from roofline.fileio import YAMLLimitError, load_yaml, write_atomic
from roofline.hwspecs import read_profile
from roofline.simulator.calibration import CalibrationError
from roofline.simulator.errors import short
from roofline.simulator.model import ModelConfigError
from roofline.simulator.scenario import ScenarioError

ROOT = Path(__file__).resolve().parents[1]
TINY = json.loads((ROOT / "tests" / "fixtures" / "tiny_llama_config.json").read_text())
BASE = {"model": "llama-3.1-8b", "hardware": "h100-sxm", "workload": {"prompt_tokens": 4096}}


def _bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 8)}]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nmodel: *a{levels - 1}\nhardware: h100-sxm\n"


# --- odd paths ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["fifo", "device", "dangling", "loop", "folder"])
def test_odd_model_and_scenario_paths_are_clean_errors(tmp_path, kind):
    path = tmp_path / "odd.json"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path = Path("/dev/zero")
    elif kind == "dangling":
        path.symlink_to(tmp_path / "nowhere.json")
    elif kind == "loop":
        path.symlink_to(tmp_path / "loop2.json")
        (tmp_path / "loop2.json").symlink_to(path)
    else:
        path.mkdir()
    start = time.perf_counter()
    with pytest.raises(ModelConfigError, match=str(path)):
        load_model(str(path))
    with pytest.raises(ScenarioError, match=str(path)):
        roofline.simulate(str(path))
    assert time.perf_counter() - start < 1.0  # a FIFO without a writer never blocks the read


# --- YAML aliases, long values, long messages ---------------------------------------------------


def test_alias_bomb_is_refused_before_expanding(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(_bomb(9))  # 8^9 = 134M elements in 400 bytes
    start = time.perf_counter()
    with pytest.raises(ScenarioError, match=r"aliases expand to .* \(at most 100,000\)"):
        roofline.simulate(str(path))
    with pytest.raises(ScenarioError, match="aliases expand to"):
        roofline.simulate(BASE, [f"workload.batch={_bomb(9)}"])
    with pytest.raises(ScenarioError, match="refers to the node that contains it"):
        roofline.simulate(BASE, ["model=&a [*a]"])
    assert time.perf_counter() - start < 1.0
    assert load_yaml("base: &b {x: 1}\nuse: *b\n") == {"base": {"x": 1}, "use": {"x": 1}}  # reuse is fine
    with pytest.raises(YAMLLimitError, match="refers to the node that contains it"):
        load_yaml("a: &a [*a]")
    with pytest.raises(YAMLLimitError, match="nested more than 100 levels"):
        load_yaml("a: " + "[" * 200 + "]" * 200)


def test_short_never_builds_the_full_repr():
    nested = [0] * 8
    for _ in range(9):
        nested = [nested] * 8  # 8^10 elements, shared
    start = time.perf_counter()
    texts = [short(nested), short("x" * 10**7), short(10**50_000), short({"k" * 10**6: 1})]
    assert time.perf_counter() - start < 0.1
    assert all(len(t) <= 60 for t in texts), texts
    assert short([1, 2]) == "[1, 2]" and short("abc") == "'abc'" and short(1.5) == "1.5"


def test_error_messages_are_bounded():
    doc = {**BASE, **{f"unknown{i}": i for i in range(20_000)}}
    with pytest.raises(ScenarioError) as err:
        roofline.simulate(doc)
    message = str(err.value)
    assert len(message) < 3000 and "more problems" in message
    assert len(err.value.problems) == 20_000  # every problem is still there for callers


# --- sizes refused before building ------------------------------------------------------------


def test_huge_method_list_is_refused_naming_the_limit():
    with pytest.raises(ScenarioError, match="methods: 10,000 entries; a stack holds at most 32"):
        roofline.simulate({**BASE, "methods": [{"name": "kv_quant", "bits": 8}] * 10_000})


def test_structural_groups_are_capped_with_count_and_limit():
    sweep = {
        "parallelism.tp": [1, 2, 4, 8, 16, 32],
        "dtype.activations": ["fp32", "tf32", "bf16", "fp16", "fp8", "int8"],
        "dtype.kv": ["bf16", "fp8", "int8", "int4"],
        "dtype.weights": ["bf16", "fp8", "int8", "int4", "fp16", "fp32"],
        "runtime.overlap": ["serial", "overlap"],
    }
    with pytest.raises(ScenarioError, match=r"1,728 structural groups .* at most 500"):
        roofline.api.load_scenario({**BASE, "sweep": sweep})


def test_a_2000_point_vector_sweep_is_fast():
    start = time.perf_counter()
    result = roofline.simulate({**BASE, "sweep": {"workload.prompt_tokens": list(range(1024, 3024))}})
    assert result.n == 2000 and time.perf_counter() - start < 1.0


@pytest.mark.parametrize(
    "field,value,fragment",
    [
        ("num_hidden_layers", 10**9, "at most 10,000"),
        ("num_hidden_layers", 1e9, "must be a positive integer"),
        ("hidden_size", 10**12, "at most 1,048,576"),
        ("vocab_size", 2**40, "at most 16,777,216"),
        ("intermediate_size", 2**62, "at most 16,777,216"),
        ("head_dim", 0, "must be a positive integer"),
        ("num_attention_heads", 10**6, "at most 65,536"),
    ],
)
def test_absurd_config_sizes_are_refused_before_building(field, value, fragment):
    start = time.perf_counter()
    with pytest.raises(ModelConfigError, match=fragment):
        from_hf_config({**TINY, field: value})
    assert time.perf_counter() - start < 0.1


def test_nonsense_head_counts_are_refused():
    h = TINY["hidden_size"]
    cfg = {k: v for k, v in TINY.items() if k != "head_dim"}
    with pytest.raises(ModelConfigError, match="exceeds hidden_size"):
        from_hf_config({**cfg, "num_attention_heads": h + 1, "num_key_value_heads": 1})
    with pytest.raises(ModelConfigError, match="num_key_value_heads .* exceeds num_attention_heads"):
        from_hf_config({**TINY, "num_key_value_heads": TINY["num_attention_heads"] + 1})


def test_shadowkv_on_a_model_without_attention_is_refused(tmp_path):
    with pytest.raises(ScenarioError, match="no attention layers"):
        roofline.simulate({**BASE, "model": "mamba-2.8b", "methods": [{"name": "shadowkv"}]})


# --- calibration profiles -----------------------------------------------------------------------


def _profile_doc(**changes) -> dict:
    doc = {
        "profile_id": "t",
        "hardware": "h100-sxm",
        "kernel_overhead_s": 5e-6,
        "curves": {
            "hbm": {
                "fit": {"e_max": 0.8, "x_half": 1e3, "p": 1.0},
                "points": [{"x": 1e6, "efficiency": 0.8}, {"x": 1e9, "efficiency": 0.8}],
            }
        },
    }
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    "changes,fragment",
    [
        ({"kernel_overhead_s": -1}, r"kernel_overhead_s: .* in \[0, 0.01\], got -1"),
        ({"kernel_overhead_s": 1e300}, "kernel_overhead_s"),
        ({"curves": {"hbm": {"fit": {"e_max": 0.8, "x_half": -2048, "p": 1}}}}, "x_half"),
        ({"curves": {"hbm": {"fit": {"e_max": 0.8, "x_half": 1, "p": 1e300}}}}, r"fit\.p"),
        ({"curves": {"hbm": {"fit": {"e_max": 0.8, "x_half": 1, "p": 1}, "points": "x"}}}, "points"),
        ({"curves": {"hbm": {"fit": {"e_max": 0.8, "x_half": 1, "p": 1}, "points": [1]}}}, r"points\[0\]"),
        ({"curves": [1, 2]}, "curves: must map"),
        ({"collectives": {"nvlink": [1]}}, "collectives.nvlink: must map"),
        ({"collectives": {"nvlink": {"ops": {"all_reduce": [1]}}}}, "all_reduce: must map"),
        (
            {"collectives": {"nvlink": {"ops": {"all_reduce": {"fit": {"alpha_s": -1, "beta_Bps": 1}}}}}},
            "alpha",
        ),
        ({"fractions": "x"}, "fractions: must map"),
        ({"provenance": [1]}, "provenance: must map"),
        ({"hardware": [1]}, "hardware must be a name"),
    ],
)
def test_bad_profile_values_are_refused(tmp_path, changes, fragment):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(_profile_doc(**changes)))
    with pytest.raises(CalibrationError, match=fragment):
        read_profile(path)


def test_truncated_profile_is_refused(tmp_path):
    path = tmp_path / "p.yaml"
    text = yaml.safe_dump(_profile_doc())
    path.write_text(text[: text.index("kernel_overhead_s") + len("kernel_overhead_s: 5.0e")])
    with pytest.raises(CalibrationError, match="looks truncated"):
        read_profile(path)


def test_auto_falls_back_to_datasheet_with_a_warning(tmp_path, monkeypatch):
    (tmp_path / "h100-sxm.yaml").write_text(yaml.safe_dump(_profile_doc(kernel_overhead_s=-1)))
    monkeypatch.setenv("ROOFLINE_CALIBRATION_DIR", str(tmp_path))
    auto = roofline.simulate({**BASE, "calibration": "auto"}).records()[0]
    datasheet = roofline.simulate({**BASE, "calibration": "datasheet"}).records()[0]
    assert auto["ttft_s"] == datasheet["ttft_s"]
    assert any("unusable" in w and "kernel_overhead_s" in w for w in auto["provenance"]["warnings"])
    with pytest.raises(ScenarioError, match="kernel_overhead_s"):  # an explicit path still stops the run
        roofline.simulate({**BASE, "calibration": str(tmp_path / "h100-sxm.yaml")})


def test_an_unusable_profile_borrowed_by_eager_pytorch_warns_too(tmp_path, monkeypatch):
    # `hf` has no profile of its own and borrows the GPU's vLLM one (calibration.torch_kernels):
    # a broken one falls back to the datasheet with the same warning as the engine's own would
    (tmp_path / "h100-sxm.vllm.yaml").write_text(yaml.safe_dump(_profile_doc(kernel_overhead_s=-1)))
    monkeypatch.setenv("ROOFLINE_CALIBRATION_DIR", str(tmp_path))
    doc = {**BASE, "runtime": {"framework": "hf"}}
    auto = roofline.simulate({**doc, "calibration": "auto"}).records()[0]
    datasheet = roofline.simulate({**doc, "calibration": "datasheet"}).records()[0]
    assert auto["ttft_s"] == datasheet["ttft_s"]
    assert any("unusable" in w and "kernel_overhead_s" in w for w in auto["provenance"]["warnings"])


# --- outputs ------------------------------------------------------------------------------------


def _scenario(tmp_path) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(BASE))
    return path


@pytest.mark.parametrize("flag", ["-o", "--plot"])
@pytest.mark.parametrize("target", ["self", "symlink", "fifo", "hardlink", "devlink"])
def test_outputs_refuse_inputs_and_non_regular_files(tmp_path, capsys, flag, target):
    scenario = _scenario(tmp_path)
    before = scenario.read_text()
    out, keep = tmp_path / "out.txt", tmp_path / "keep.txt"
    keep.write_text("keep me\n")
    if target == "self":
        out = scenario
    elif target == "symlink":
        out.symlink_to(keep)
    elif target == "fifo":
        os.mkfifo(out)
    elif target == "hardlink":
        os.link(keep, out)
    else:
        out.symlink_to("/dev/null")
    assert cli_main(["simulate", str(scenario), flag, str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and str(out) in err
    assert scenario.read_text() == before and keep.read_text() == "keep me\n"
    assert out.is_symlink() == (target in ("symlink", "devlink"))


def test_regular_output_is_still_written(tmp_path):
    out = tmp_path / "out.json"
    assert cli_main(["simulate", str(_scenario(tmp_path)), "--format", "json", "-o", str(out)]) == 0
    assert json.loads(out.read_text())[0]["model"] == "llama-3.1-8b"
    write_atomic(out, "again\n")  # replacing a regular file with one link is fine
    assert out.read_text() == "again\n"


def test_sigterm_during_a_write_leaves_no_temporary_file(tmp_path):
    script = f"""
import os, signal
import roofline.fileio as f
real = os.fsync
def fsync(fd):
    os.kill(os.getpid(), signal.SIGTERM)  # arrives mid-write, as from `kill` or a job scheduler
    real(fd)
f.os.fsync = fsync
f.write_atomic({str(tmp_path / "out.txt")!r}, "x" * 10_000_000)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_user_errors_from_every_reader_share_the_base_class():
    for exc in (ScenarioError(["x"]), ModelConfigError("x"), CalibrationError("x")):
        assert isinstance(exc, UserError)


def test_kv_swap_prices_an_mla_latent():
    swap = [{"name": "kv_offload", "resident_fraction": 0.5, "swap_per_request": True}]
    doc = {**BASE, "model": "deepseek-v2-lite", "parallelism": {"tp": 2}}
    with_swap = roofline.simulate({**doc, "methods": swap}).records()[0]
    without = roofline.simulate({**doc, "methods": [{**swap[0], "swap_per_request": False}]}).records()[0]
    assert with_swap["ttft_s"] > without["ttft_s"] > 0


def test_gemm_efficiency_takes_sizes_past_int64():
    from roofline.api import load_hardware
    from roofline.simulator.efficiency import build_table, gemm_efficiency

    table = build_table([load_hardware("h100-sxm")])
    big = gemm_efficiency(table, 0, 10.0, 2**40, 2**40)  # n * k = 2^80 as Python ints
    assert big == gemm_efficiency(table, 0, 10.0, 2.0**40, 2.0**40) and 0 < big <= 1


@pytest.mark.parametrize("value", [5, "x", [2, 0], [0.5, 1]])
def test_minimax_attn_type_list_is_checked(value):
    cfg = json.loads(
        (ROOT / "models" / "zoo" / roofline.api.zoo_index()["minimax-text-01"]["config"]).read_text()
    )
    with pytest.raises(ModelConfigError, match="attn_type_list"):
        from_hf_config({**cfg, "attn_type_list": value})


def test_fuzz_findings_of_the_long_run(tmp_path):
    # A numeric method parameter without a stated maximum is bounded (10**30 reached numpy as an object).
    with pytest.raises(ScenarioError, match=r"outlier_chunks: must be <= 1e\+10"):
        roofline.simulate({**BASE, "methods": [{"name": "shadowkv", "outlier_chunks": 10**30}]})
    # An integer past float range in a profile is a clean error, not an OverflowError.
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(_profile_doc(kernel_overhead_s=10**400)))
    with pytest.raises(CalibrationError, match="must be a finite number"):
        read_profile(path)
    # A model name longer than the OS allows for a file name is an unknown model.
    with pytest.raises(ModelConfigError, match="unknown model"):
        load_model("x" * 5000)
    # compare with a scenario whose methods are not a list; a repeated problem is said once.
    scenario = _scenario(tmp_path)
    assert cli_main(["compare", str(scenario), "--set", "methods=true", "--methods", "dense,kv_quant"]) == 2
    with pytest.raises(ScenarioError) as err:
        raise ScenarioError(["same problem"] * 500)
    assert str(err.value) == "same problem"
