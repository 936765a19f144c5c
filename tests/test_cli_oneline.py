"""The one-line form of `simulate`, `compare` and `plan` (flags instead of, or over, a scenario file),
token counts with K/M suffixes, `--method NAME:KEY=VALUE`, a required prompt length, `--set sweep.X`,
and how points that do not fit are reported (null figures unless --force; marked rows in tables).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

import roofline
from roofline.api import ScenarioError, load_scenario, parse_token_count
from roofline.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
MAIN = ROOT / "scenarios" / "llama3-8b-128k-h100.yaml"
ONE_LINE = ["--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--gpus", "8", "--tp", "8"]


def cli(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def cli_json(capsys, *argv):
    rc, out, err = cli(capsys, *argv, "--format", "json")
    assert rc == 0, err
    return json.loads(out)


def assert_error(rc, err, *fragments):
    assert rc == 2 and err.startswith("error: ") and "Traceback" not in err, (rc, err)
    for fragment in fragments:
        assert fragment in err, (fragment, err)


@pytest.mark.parametrize(
    ("text", "count"),
    [("128k", 131072), ("128K", 131072), ("1M", 1048576), ("1m", 1048576), ("4096", 4096), ("1.5k", 1536)],
)
def test_token_counts_take_binary_suffixes(text, count):
    assert parse_token_count(text) == count


@pytest.mark.parametrize("text", ["12q", "1.3k", "k", "", "-4k", "inf", "1e3", "9" * 400 + ".5k"])
def test_what_is_not_a_token_count_is_left_for_the_type_check(text):
    assert parse_token_count(text) == text


def test_the_issue_one_liner_simulates_what_it_says(capsys):
    (rec,) = cli_json(capsys, "simulate", *ONE_LINE, "--prompt", "128k", "--output", "1k")
    assert (rec["model"], rec["hardware"], rec["gpus"]) == ("llama-3.1-70b", "h100-sxm", 8)
    wl = rec["configuration"]["workload"]
    assert (wl["prompt_tokens"], wl["output_tokens"], wl["batch"]) == (131072, 1024, 1)
    assert rec["configuration"]["parallelism"]["tp"] == 8
    # the same point written as a scenario mapping gives the same numbers
    same = roofline.simulate(
        model="llama-3.1-70b", hardware="h100-sxm", gpus=8, tp=8, prompt_tokens=131072, output_tokens=1024
    ).records()[0]
    assert rec["ttft_s"] == same["ttft_s"] and rec["tpot_s"] == same["tpot_s"]
    assert rec["scenario"] == "command line"


def test_method_flags_build_the_stack_with_typed_parameters(capsys):
    (rec,) = cli_json(
        capsys,
        "simulate",
        *ONE_LINE,
        "--prompt",
        "32k",
        "--method",
        "kv_quant:bits=4",
        "--method",
        "quest:token_budget=4k,page_size=32",
    )
    assert rec["configuration"]["methods"] == [
        {"name": "kv_quant", "bits": 4},
        {"name": "quest", "token_budget": 4096, "page_size": 32},
    ]
    (dense,) = cli_json(capsys, "simulate", *ONE_LINE, "--prompt", "32k")
    assert rec["memory"]["kv_cache_bytes"] < dense["memory"]["kv_cache_bytes"] / 3  # 4-bit vs bf16
    assert rec["tpot_s"] < dense["tpot_s"]


@pytest.mark.parametrize(
    ("method", "fragments"),
    [
        ("kvquant:bits=4", ["unknown method 'kvquant'", "Did you mean 'kv_quant'?"]),
        ("kv_quant:bit=4", ["kv_quant has no parameter 'bit'", "Did you mean 'bits'?", "Valid: bits"]),
        ("kv_quant:bits=3", ["--method kv_quant.bits", "Valid: 16, 8, 4, 2"]),
        ("kv_quant:4", ["'4' is not KEY=VALUE"]),
        ("quest:page_size=x", ["--method quest.page_size", "must be an integer"]),
        ("snapkv", ["snapkv needs parameter 'budget_tokens'"]),
    ],
)
def test_bad_method_flags_are_one_clear_error(capsys, method, fragments):
    rc, _, err = cli(capsys, "simulate", *ONE_LINE, "--prompt", "4k", "--method", method)
    assert_error(rc, err, *fragments)


def test_a_missing_prompt_length_is_an_error_naming_the_flag_and_the_field(capsys, tmp_path):
    rc, _, err = cli(capsys, "simulate", *ONE_LINE, "--output", "1k")
    assert_error(rc, err, "no prompt length", "--prompt", "workload.prompt_tokens")
    path = tmp_path / "noprompt.yaml"
    path.write_text("model: llama-3.1-8b\nhardware: h100-sxm\n")
    rc, _, err = cli(capsys, "simulate", path)
    assert_error(rc, err, str(path), "--prompt", "workload.prompt_tokens")
    with pytest.raises(ScenarioError, match="missing required field 'workload.prompt_tokens'"):
        roofline.simulate(model="llama-3.1-8b", hardware="h100-sxm")
    # a sweep over it is a prompt length too
    load_scenario(
        {"model": "llama-3.1-8b", "hardware": "h100-sxm", "sweep": {"workload.prompt_tokens": ["4k"]}}
    )


@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["--prompt", "12q"], ["--prompt '12q'", "token count", "128k = 131072"]),
        (["--prompt", "4k", "--output", "out.json"], ["--output 'out.json'", "-o/--output-file"]),
        (["--prompt", "4k", "--tp", "eight"], ["--tp 'eight'", "parallelism.tp must be an integer"]),
    ],
)
def test_bad_flag_values_name_the_flag(capsys, argv, fragments):
    rc, _, err = cli(capsys, "simulate", "--model", "llama-3.1-8b", "--hardware", "h100-sxm", *argv)
    assert_error(rc, err, *fragments)


def test_without_a_file_model_and_hardware_are_needed(capsys):
    rc, _, err = cli(capsys, "simulate", "--prompt", "4k", "--model", "llama-3.1-8b")
    assert_error(rc, err, "--hardware missing")


def test_flags_override_the_file_and_set_overrides_the_flags(capsys):
    (rec,) = cli_json(capsys, "simulate", MAIN, "--hardware", "h200", "--batch", "2", "--prompt", "64k")
    assert rec["hardware"] == "h200" and rec["scenario"] == "llama3-8b-128k-h100"
    assert rec["configuration"]["workload"]["batch"] == 2
    assert rec["configuration"]["workload"]["prompt_tokens"] == 65536
    (rec,) = cli_json(capsys, "simulate", MAIN, "--batch", "2", "--set", "workload.batch=3")
    assert rec["configuration"]["workload"]["batch"] == 3
    rc, out, _ = cli(capsys, "simulate", MAIN, "--hardware", "h200", "--set", "workload.batch=3")
    assert rc == 0
    # the header names the point actually simulated: the file and what changed it
    assert out.splitlines()[0] == (
        "llama3-8b-128k-h100 with --hardware h200 --set workload.batch=3: llama-3.1-8b on 1 x h200"
    )


def test_set_sweep_axis_and_token_values_in_sweeps(capsys):
    records = cli_json(
        capsys,
        "simulate",
        "--model",
        "llama-3.1-8b",
        "--prompt",
        "8k",
        "--set",
        "sweep.hardware=[h100-sxm,h200,b200]",
        "--set",
        "sweep.workload.output_tokens=[1k, 2k]",
    )
    assert [(r["hardware"], r["configuration"]["workload"]["output_tokens"]) for r in records] == [
        (h, o) for h in ("h100-sxm", "h200", "b200") for o in (1024, 2048)
    ]
    rc, _, err = cli(capsys, "simulate", MAIN, "--set", "sweep.hardwar=[h200]")
    assert_error(rc, err, "sweep.hardwar", "Did you mean 'hardware'?")


def test_points_that_do_not_fit_have_null_figures_unless_forced(capsys):
    argv = ["simulate", "--model", "llama-3.1-70b", "--hardware", "h100-sxm", "--prompt", "128k"]
    (hidden,) = cli_json(capsys, *argv)
    (forced,) = cli_json(capsys, *argv, "--force")
    assert hidden["fits"] is False and forced["fits"] is False
    assert "needs" in hidden["fit_reason"] and "h100-sxm has 80.0 GiB" in hidden["fit_reason"]
    for key in ("ttft_s", "tpot_s", "e2e_s", "decode_tokens_per_s", "throughput_tokens_per_s_per_gpu"):
        assert hidden[key] is None and forced[key] > 0, key
    assert hidden["cost"]["usd_per_million_output_tokens"] is None
    assert hidden["cost"]["usd_per_hour"] == forced["cost"]["usd_per_hour"] > 0  # a price, not a figure
    assert hidden["memory"] == forced["memory"]  # what does not fit stays visible
    rc, out, _ = cli(capsys, *argv, "--format", "csv")
    (row,) = csv.DictReader(io.StringIO(out))
    assert row["fits"] == "False" and row["ttft_s"] == "" and row["memory.total_bytes"] != ""
    rc, out, _ = cli(capsys, *argv)
    assert "does not fit: needs" in out and "--force" in out
    assert "  TTFT                         -" in out


def test_sweep_and_compare_tables_mark_rows_that_do_not_fit(capsys):
    rc, out, _ = cli(
        capsys,
        "simulate",
        "--model",
        "llama-3.1-8b",
        "--hardware",
        "h100-sxm",
        "--prompt",
        "128k",
        "--set",
        "sweep.workload.batch=[1,16]",
    )
    _, fits, unfit, footnote = out.splitlines()[:4]
    assert "does not fit" not in fits and "yes" in fits
    assert unfit.split()[:4] == ["16", "-", "-", "-"] and "does not fit: needs" in unfit
    assert footnote.startswith("TTFT: time to the first token of the whole batch (batch 1, 16)")
    rows = cli_json(
        capsys,
        "compare",
        "--model",
        "llama-3.1-8b",
        "--hardware",
        "h100-sxm",
        "--prompt",
        "128k",
        "--batch",
        "4",
        "--method",
        "kv_quant:bits=2",
    )
    dense, kvq = rows
    assert (dense["stack"], dense["fits"], dense["ttft_s"], dense["tpot_speedup"]) == (
        "dense",
        False,
        None,
        None,
    )
    assert kvq["stack"] == "kv_quant" and kvq["fits"] and kvq["tpot_speedup"] > 1


def test_compare_and_plan_take_the_one_line_flags(capsys):
    rows = cli_json(
        capsys,
        "compare",
        "--model",
        "llama-3.1-8b",
        "--hardware",
        "h100-sxm",
        "--prompt",
        "32k",
        "--method",
        "kv_quant:bits=4",
        "--method",
        "quest:token_budget=4k",
    )
    assert [r["stack"] for r in rows] == ["dense", "kv_quant", "quest", "kv_quant+quest"]
    plan = cli_json(
        capsys,
        "plan",
        "--model",
        "llama-3.1-70b",
        "--prompt",
        "32k",
        "--output",
        "1k",
        "--set",
        "sweep.hardware=[h100-sxm,h200]",
        "--gpus-max",
        "8",
    )
    assert {r["hardware"] for r in plan} <= {"h100-sxm", "h200"} and plan
    assert all(r["configuration"]["workload"]["prompt_tokens"] == 32768 for r in plan)
    assert all(r["scenario"] == "command line" for r in plan)


@pytest.mark.parametrize("command", ["simulate", "compare", "plan"])
def test_help_explains_token_suffixes_and_ttft(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for fragment in (
        "--prompt TOKENS",
        "--method NAME[:KEY=VALUE,...]",
        "128k = 128 x 1024 = 131072",
        "TTFT",
    ):
        assert fragment in out, fragment


def test_tp_must_split_the_attention_heads_evenly(capsys):
    rc, _, err = cli(
        capsys,
        "simulate",
        "--model",
        "qwen2.5-7b-1m",
        "--hardware",
        "h100-sxm",
        "--prompt",
        "4k",
        "--tp",
        "8",
    )
    # 28 query heads, 4 KV heads: tp must divide 28, and divide 4 or be a multiple of it
    assert_error(
        rc, err, "parallelism.tp: tp=8", "28 attention heads and 4 KV heads", "valid tp: 1, 2, 4, 28"
    )
    # KV heads fewer than tp are replicated evenly (8 KV heads over tp=16): allowed, as engines do
    (rec,) = cli_json(
        capsys,
        "simulate",
        "--model",
        "llama-3.1-70b",
        "--hardware",
        "h100-sxm",
        "--prompt",
        "4k",
        "--tp",
        "16",
    )
    assert rec["gpus"] == 16 and not any("divide" in w for w in rec["provenance"]["warnings"])
    # the planner leaves out the layouts the model cannot take
    plan = cli_json(
        capsys,
        "plan",
        "--model",
        "qwen2.5-7b-1m",
        "--hardware",
        "h100-sxm",
        "--prompt",
        "4k",
        "--gpus-max",
        "8",
        "--all",
    )
    assert {r["configuration"]["parallelism"]["tp"] for r in plan} <= {1, 2, 4}


def test_output_files_and_plots_make_missing_folders(capsys, tmp_path):
    target, plot = tmp_path / "new" / "deeper" / "out.json", tmp_path / "plots" / "p.html"
    rc, _, err = cli(capsys, "simulate", MAIN, "--format", "json", "-o", target, "--plot", plot)
    assert rc == 0, err
    assert json.loads(target.read_text())[0]["scenario"] == "llama3-8b-128k-h100"
    assert plot.read_text().lstrip().lower().startswith("<html") or "plotly" in plot.read_text()
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]  # no temporary file left beside it


def test_hardware_and_model_names_in_any_case(capsys):
    (rec,) = cli_json(
        capsys, "simulate", "--model", "LLAMA-3.1-8B", "--hardware", "H100-SXM", "--prompt", "4k"
    )
    assert (rec["model"], rec["hardware"]) == ("llama-3.1-8b", "h100-sxm")
    records = cli_json(capsys, "simulate", MAIN, "--set", "sweep.hardware=[H200, B200]")
    assert [r["hardware"] for r in records] == ["h200", "b200"]
