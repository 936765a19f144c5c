"""The `roofline` command line: help of every subcommand, a smoke run of every scenario in
`scenarios/` in every format, the SPEC.md JSON contract, overrides, output files, plots, and clean
exit code 2 with an `error:` line (no traceback) on bad input.

Most tests call `roofline.cli.main.main(argv)` in-process; a few run the installed console script
in a real subprocess.
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import roofline
import roofline.api
from roofline.api import load_scenario
from roofline.cli.main import SUBCOMMANDS, main
from roofline.hwspecs import list_hardware
from roofline.models import list_models

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
# what `simulate` takes; a serving scenario's lengths are in its serving section (`roofline serve`)
STATIC = [p for p in SCENARIOS if "\nserving:" not in p.read_text()]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
MAIN = ROOT / "scenarios" / "llama3-8b-128k-h100.yaml"
SWEEP = ROOT / "scenarios" / "context-by-gpu-sweep.yaml"

TOP_KEYS = {
    "scenario",
    "point",
    "hardware",
    "model",
    "gpus",
    "ttft_s",
    "tpot_s",
    "e2e_s",
    "decode_tokens_per_s",
    "throughput_tokens_per_s_per_gpu",
    "prefill",
    "decode",
    "memory",
    "fits",
    "max_batch",
    "max_context_tokens",
    "cost",
    "energy",
    "provenance",
}
PHASE_KEYS = {"time_s", "flops", "bytes", "bound", "mfu", "mbu", "breakdown"}
MEMORY_KEYS = {
    "weights_bytes",
    "kv_cache_bytes",
    "activation_bytes",
    "overhead_bytes",
    "total_bytes",
    "capacity_bytes",
}
COST_KEYS = {"usd_per_hour", "usd_per_million_output_tokens", "usd_per_million_prompt_tokens"}


def cli(capsys, *argv):
    """Run main(argv) in-process; returns (exit code, stdout, stderr)."""
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def cli_json(capsys, *argv) -> list:
    rc, out, err = cli(capsys, *argv, "--format", "json")
    assert rc == 0, err
    return json.loads(out)


def assert_clean_error(rc, out, err, *fragments):
    assert rc == 2, (rc, out, err)
    assert err.startswith("error: "), err
    assert "Traceback" not in err + out
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"


def console_script() -> str:
    """The installed `roofline` entry point next to this interpreter (or on PATH)."""
    beside = Path(sys.executable).with_name("roofline")
    found = str(beside) if beside.is_file() else shutil.which("roofline")
    if not found:
        pytest.skip("the roofline console script is not installed")
    return found


def run_script(*argv, cwd=ROOT):
    return subprocess.run(
        [console_script(), *map(str, argv)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def output_tokens(scenario_path, rec) -> int:
    return rec["point"].get(
        "workload.output_tokens", load_scenario(scenario_path).base["workload.output_tokens"]
    )


def assert_spec_record(rec: dict) -> None:
    """Every SPEC.md result key, with the documented nesting and types."""
    assert TOP_KEYS <= rec.keys(), TOP_KEYS - rec.keys()
    assert isinstance(rec["scenario"], str) and isinstance(rec["point"], dict)
    assert isinstance(rec["hardware"], str) and isinstance(rec["model"], str)
    assert isinstance(rec["gpus"], int) and rec["gpus"] >= 1
    for phase in ("prefill", "decode"):
        assert PHASE_KEYS <= rec[phase].keys(), (phase, PHASE_KEYS - rec[phase].keys())
        assert rec[phase]["bound"] in ("compute", "memory", "communication", "host-link")
        assert isinstance(rec[phase]["breakdown"], dict) and rec[phase]["breakdown"]
    assert rec["memory"].keys() >= MEMORY_KEYS, MEMORY_KEYS - rec["memory"].keys()
    assert all(isinstance(rec["memory"][k], int) for k in MEMORY_KEYS)
    assert isinstance(rec["fits"], bool)
    if not rec["fits"]:
        assert isinstance(rec["fit_reason"], str) and rec["fit_reason"]
    assert isinstance(rec["max_batch"], int)
    assert rec["max_context_tokens"] is None or isinstance(rec["max_context_tokens"], int)
    assert COST_KEYS <= rec["cost"].keys()
    assert "joules_per_output_token" in rec["energy"]
    prov = rec["provenance"]
    assert {"calibration", "versions", "warnings"} <= prov.keys()
    assert isinstance(prov["calibration"], str)
    assert isinstance(prov["versions"], dict) and "roofline" in prov["versions"]
    assert isinstance(prov["warnings"], list)
    for key in ("ttft_s", "tpot_s", "e2e_s", "decode_tokens_per_s", "throughput_tokens_per_s_per_gpu"):
        if rec["fits"]:
            assert isinstance(rec[key], float) and math.isfinite(rec[key]) and rec[key] > 0, key
        else:  # the CLI hides what a point that does not fit would take (--force shows it)
            assert rec[key] is None, key


# --- help ------------------------------------------------------------------------------------------

HELP_ARGV = [
    [],
    *([name] for name in SUBCOMMANDS),  # every subcommand
    ["hw", "list"],
    ["hw", "show"],
    ["models", "list"],
    ["models", "show"],
]


@pytest.mark.parametrize("argv", HELP_ARGV, ids=lambda a: " ".join(a) or "roofline")
def test_help(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: roofline")
    assert " ".join(["roofline", *argv]) in out.splitlines()[0]


def test_simulate_help_lists_every_field(capsys):
    from roofline.simulator.scenario_schema import SCHEMA

    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    out = capsys.readouterr().out
    for path, spec in SCHEMA.items():
        assert path in out
        assert spec.help in out


def test_no_command_prints_help_and_exits_2(capsys):
    rc, out, _ = cli(capsys)
    assert rc == 2
    assert "usage: roofline" in out and "simulate" in out


def test_version(capsys):
    import roofline

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert roofline.__version__ in capsys.readouterr().out


def test_help_in_a_subprocess():
    proc = run_script("--help")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: roofline")


# --- scenarios/ smoke ------------------------------------------------------------------------------


def test_there_are_scenarios():
    assert len(SCENARIOS) >= 5


@pytest.mark.parametrize("path", STATIC, ids=lambda p: p.stem)
def test_scenario_table(capsys, path):
    rc, out, err = cli(capsys, "simulate", path)
    assert rc == 0, err
    assert "Traceback" not in err
    scenario = load_scenario(path)
    if scenario.points == 1:
        assert out.startswith(f"{scenario.name}: ")
        for label in ("TTFT", "time per output token", "memory per GPU", "$ per million output tokens"):
            assert label in out
    else:
        header, *rows = out.rstrip("\n").splitlines()
        assert "TTFT" in header and "TPOT" in header
        assert len([r for r in rows if not r.startswith(("warning:", "note:", "TTFT:"))]) == scenario.points


@pytest.mark.parametrize("path", STATIC, ids=lambda p: p.stem)
def test_scenario_json(capsys, path):
    records = cli_json(capsys, "simulate", path, "--force")
    scenario = load_scenario(path)
    assert isinstance(records, list)
    assert len(records) == scenario.points
    for rec, hidden in zip(records, cli_json(capsys, "simulate", path)):
        assert_spec_record(hidden)
        assert hidden == roofline.api.without_unfit_figures(rec)
        assert rec["scenario"] == scenario.name
        assert set(rec["point"]) == {p for p, _ in scenario.sweep}
        out_tokens = output_tokens(path, rec)
        assert math.isclose(rec["e2e_s"], rec["ttft_s"] + (out_tokens - 1) * rec["tpot_s"], rel_tol=1e-12)


@pytest.mark.parametrize("path", STATIC, ids=lambda p: p.stem)
def test_scenario_csv(capsys, path):
    rc, out, err = cli(capsys, "simulate", path, "--format", "csv")
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == load_scenario(path).points
    for column in (
        "ttft_s",
        "tpot_s",
        "e2e_s",
        "memory.kv_cache_bytes",
        "cost.usd_per_hour",
        "prefill.bound",
    ):
        assert column in rows[0]
        assert all(row[column] != "" for row in rows if row["fits"] == "True" or not column.endswith("_s"))
    records = cli_json(capsys, "simulate", path)
    for row, rec in zip(rows, records):
        assert row["ttft_s"] == ("" if rec["ttft_s"] is None else repr(rec["ttft_s"]))
        assert int(row["memory.total_bytes"]) == rec["memory"]["total_bytes"]


def test_sweep_json_is_in_grid_order(capsys):
    records = cli_json(capsys, "simulate", SWEEP)
    scenario = load_scenario(SWEEP)
    (p_path, prompts), (h_path, hardware) = scenario.sweep
    expected = [{p_path: p, h_path: h} for p in prompts for h in hardware]  # last axis fastest
    assert [r["point"] for r in records] == expected
    assert [r["hardware"] for r in records] == [pt[h_path] for pt in expected]


def test_sweep_table_names_a_framework_bound_phase(capsys):
    # transformers' eager decode at batch 1 is bound by its host dispatch: the table says so
    rc, out, err = cli(capsys, "simulate", SWEEP, "--set", "runtime.framework=transformers")
    assert rc == 0, err
    assert "/framework" in out and "Traceback" not in out + err


def test_scenario_json_in_a_subprocess():
    proc = run_script("simulate", "scenarios/context-by-gpu-sweep.yaml", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert len(records) == load_scenario(SWEEP).points
    for rec in records:
        assert_spec_record(rec)


# --- overrides, output files, plots ----------------------------------------------------------------


def test_set_changes_the_result(capsys):
    (base,) = cli_json(capsys, "simulate", MAIN)
    (four,) = cli_json(capsys, "simulate", MAIN, "--set", "workload.batch=4", "--force")
    assert four != base
    assert four["decode_tokens_per_s"] > base["decode_tokens_per_s"]
    assert four["memory"]["kv_cache_bytes"] == 4 * base["memory"]["kv_cache_bytes"]
    assert four["memory"]["weights_bytes"] == base["memory"]["weights_bytes"]


def test_set_hardware_and_several_overrides(capsys):
    (rec,) = cli_json(
        capsys, "simulate", MAIN, "--set", "hardware=h200", "--set", "workload.prompt_tokens=4096"
    )
    assert rec["hardware"] == "h200"
    assert rec["memory"]["capacity_bytes"] > 100 * 2**30


def test_set_applies_to_a_sweep(capsys):
    base = cli_json(capsys, "simulate", SWEEP)
    doubled = cli_json(capsys, "simulate", SWEEP, "--set", "workload.batch=16")
    assert len(doubled) == len(base)
    for b, d in zip(base, doubled):
        assert d["memory"]["kv_cache_bytes"] == 2 * b["memory"]["kv_cache_bytes"]


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
@pytest.mark.parametrize("path", [MAIN, SWEEP], ids=lambda p: p.stem)
def test_output_file_matches_stdout(capsys, tmp_path, path, fmt):
    rc, out, err = cli(capsys, "simulate", path, "--format", fmt)
    assert rc == 0, err
    target = tmp_path / "nested" / f"result.{fmt}"
    rc, out_with_file, err = cli(capsys, "simulate", path, "--format", fmt, "-o", target)
    assert rc == 0, err
    assert out_with_file == ""
    assert target.read_text() == out
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temp files left behind


def test_output_file_replaces_an_existing_file(capsys, tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old contents")
    rc, _, err = cli(capsys, "simulate", MAIN, "--format", "json", "-o", target)
    assert rc == 0, err
    assert json.loads(target.read_text())[0]["scenario"] == "llama3-8b-128k-h100"


def test_output_to_a_directory_names_it(capsys, tmp_path):
    rc, out, err = cli(capsys, "simulate", MAIN, "-o", tmp_path)
    assert_clean_error(rc, out, err, str(tmp_path))
    assert f"/.{tmp_path.name}." not in err


def test_plot_writes_html(capsys, tmp_path):
    target = tmp_path / "out.html"
    rc, out, err = cli(capsys, "simulate", MAIN, "--plot", target)
    assert rc == 0, err
    html = target.read_text()
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "plotly" in html.lower()
    assert "llama3-8b-128k-h100" in html
    assert f"wrote {target}" in err
    assert "TTFT" in out  # the table still goes to stdout


def test_plot_of_a_sweep_point(capsys, tmp_path):
    target = tmp_path / "point.html"
    rc, out, err = cli(capsys, "simulate", SWEEP, "--point", 4, "--plot", target)
    assert rc == 0, err
    assert "plotly" in target.read_text().lower()
    # --point also details that point below the sweep table
    assert "point: workload.prompt_tokens=16384, hardware=h100-sxm" in out


# --- bad input: exit 2, "error:", no traceback -----------------------------------------------------


def test_unknown_hardware_via_set(capsys):
    rc, out, err = cli(capsys, "simulate", MAIN, "--set", "hardware=h100-sxn")
    assert_clean_error(rc, out, err, str(MAIN), "hardware", "Did you mean 'h100-sxm'?")
    assert out == ""


def test_unknown_set_path(capsys):
    rc, out, err = cli(capsys, "simulate", MAIN, "--set", "workload.batchh=4")
    assert_clean_error(rc, out, err, "--set workload.batchh", "Did you mean 'workload.batch'?")


def test_set_without_equals(capsys):
    rc, out, err = cli(capsys, "simulate", MAIN, "--set", "workload.batch")
    assert_clean_error(rc, out, err, "expected path=value")


def test_set_wrong_type(capsys):
    rc, out, err = cli(capsys, "simulate", MAIN, "--set", "workload.batch=four")
    assert_clean_error(rc, out, err, "workload.batch", "must be an integer")


def test_missing_file(capsys, tmp_path):
    missing = tmp_path / "nope.yaml"
    rc, out, err = cli(capsys, "simulate", missing)
    assert_clean_error(rc, out, err, str(missing), "no such scenario file")


def test_bad_yaml(capsys, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: [llama-3.1-8b\nhardware: h100-sxm\n")
    rc, out, err = cli(capsys, "simulate", path)
    assert_clean_error(rc, out, err, str(path), "not valid YAML")


def test_bad_field_in_file(capsys, tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("model: llama-3.1-8b\nhardware: h100-sxm\nworkload: {promt_tokens: 10}\n")
    rc, out, err = cli(capsys, "simulate", path)
    assert_clean_error(rc, out, err, str(path), "workload.promt_tokens", "Did you mean 'prompt_tokens'?")


def test_not_a_transformer_model(capsys):
    config = FIXTURES / "not_a_transformer_config.json"
    rc, out, err = cli(capsys, "simulate", MAIN, "--set", f"model={config}")
    assert_clean_error(rc, out, err, str(config), "missing hidden_size")


def test_bad_input_in_a_subprocess():
    proc = run_script("simulate", "no/such/scenario.yaml")
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ")
    assert "no/such/scenario.yaml" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("point", [15, 99, -1])
def test_point_out_of_range_on_a_sweep(capsys, point):
    rc, out, err = cli(capsys, "simulate", SWEEP, "--point", point)
    assert_clean_error(rc, out, err, f"--point {point}", "15 points", "0..14")


def test_point_out_of_range_on_a_single_point(capsys):
    rc, out, err = cli(capsys, "simulate", MAIN, "--point", 1)
    assert_clean_error(rc, out, err, "--point 1", "0..0")


def test_invalid_format_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["simulate", str(MAIN), "--format", "xml"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_no_numpy_warnings_on_stderr():
    proc = run_script("simulate", MAIN, "--set", "model=mistral-7b")
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr


def test_unbounded_max_context_reads_well_in_the_table(capsys):
    rc, out, err = cli(capsys, "simulate", MAIN, "--set", "model=mistral-7b")
    assert rc == 0, err
    assert "None" not in out


# --- hw and models ---------------------------------------------------------------------------------


def test_hw_list(capsys):
    rc, out, err = cli(capsys, "hw", "list")
    assert rc == 0, err
    names = [line.split()[0] for line in out.splitlines()[1:]]
    assert names == list_hardware()


@pytest.mark.parametrize("name", list_hardware())
def test_hw_show(capsys, name):
    rc, out, err = cli(capsys, "hw", "show", name)
    assert rc == 0, err
    assert out.startswith(f"{name}: ")
    assert "sources:" in out and "ridge point" in out and "host memory" in out


def test_hw_show_unknown(capsys):
    rc, out, err = cli(capsys, "hw", "show", "nosuch")
    assert_clean_error(rc, out, err, "unknown hardware 'nosuch'", "Valid:", "h100-sxm")


def test_hw_show_misspelt(capsys):
    rc, out, err = cli(capsys, "hw", "show", "h100-sxn")
    assert_clean_error(rc, out, err, "Did you mean 'h100-sxm'?")


def test_models_list(capsys):
    rc, out, err = cli(capsys, "models", "list")
    assert rc == 0, err
    names = [line.split()[0] for line in out.splitlines()[1:]]
    assert names == list_models()


@pytest.mark.parametrize("name", list_models())
def test_models_show(capsys, name):
    rc, out, err = cli(capsys, "models", "show", name)
    assert rc == 0, err
    assert out.startswith(name)
    assert "parameters" in out and "KV per token" in out


def test_models_show_config_json(capsys):
    rc, out, err = cli(capsys, "models", "show", FIXTURES / "tiny_llama_config.json")
    assert rc == 0, err
    assert out.startswith("tiny_llama_config (llama)")
    # embeddings 2*1000*64 + 2 layers * (attention 12,288 + FFN 33,792 + norms 128) + final norm 64
    assert "220,480 total" in out
    # 2 layers * (K + V) * 2 KV heads * head_dim 16 * 2 bytes
    assert "256 bytes in bf16" in out


def test_models_show_config_json_relative_path(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    rc, out, err = cli(capsys, "models", "show", "tests/fixtures/tiny_llama_config.json")
    assert rc == 0, err
    assert "220,480 total" in out


def test_models_show_kv_dtype(capsys):
    rc, out, err = cli(capsys, "models", "show", "llama-3.1-8b", "--kv-dtype", "fp8")
    assert rc == 0, err
    assert "65,536 bytes in fp8" in out  # 32 layers * 2 * 8 KV heads * 128 * 1 byte


def test_models_show_unknown(capsys):
    rc, out, err = cli(capsys, "models", "show", "llama-3.1-8")
    assert_clean_error(rc, out, err, "unknown model 'llama-3.1-8'", "Did you mean 'llama-3.1-8b'?")


def test_models_show_not_a_transformer(capsys):
    rc, out, err = cli(capsys, "models", "show", FIXTURES / "not_a_transformer_config.json")
    assert_clean_error(rc, out, err, "not_a_transformer_config.json", "missing hidden_size")


def test_models_show_bad_kv_dtype(capsys):
    rc, out, err = cli(capsys, "models", "show", "llama-3.1-8b", "--kv-dtype", "fp9")
    assert_clean_error(rc, out, err, "--kv-dtype 'fp9'", "fp8")


def test_max_context_beyond_the_supported_context_carries_the_note(capsys):
    # Llama-3.1-8B supports 131,072 tokens; one H100 holds ~518K at batch 1, but not at batch 32.
    doc = {
        "model": "llama-3.1-8b",
        "hardware": "h100-sxm",
        "workload": {"prompt_tokens": 4096, "output_tokens": 64},
    }
    note = "exceeds llama-3.1-8b's supported 131072 tokens"
    one, many = (roofline.simulate(doc, [f"workload.batch={b}"]).records()[0] for b in (1, 32))
    assert one["max_context_tokens"] > 131072 and any(note in n for n in one["provenance"]["notes"])
    assert many["max_context_tokens"] < 131072 and many["provenance"]["notes"] == []
    assert one["provenance"]["warnings"] == []  # information, not a problem with the scenario
    # YaRN x4 raises the supported context: the note goes with it.
    yarn = roofline.simulate({**doc, "methods": [{"name": "context_extension", "kind": "yarn", "factor": 4}]})
    assert not [n for n in yarn.records()[0]["provenance"]["notes"] if "max_context_tokens" in n]


def test_a_sweep_too_large_to_print_is_refused_before_running(capsys, tmp_path):
    # 50 x 50 x 10 = 25,000 points: one printed row each would take seconds and hundreds of MB.
    path = tmp_path / "big.yaml"
    axis = list(range(1, 51))
    path.write_text(
        "model: llama-3.1-8b\nhardware: h100-sxm\nsweep:\n"
        f"  workload.prompt_tokens: {axis}\n  workload.batch: {axis}\n  workload.output_tokens: {axis[:10]}\n"
    )
    assert main(["simulate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "25,000 points" in err and "at most 20,000" in err and "roofline.sweep" in err
    assert len(err.splitlines()) == 1


def test_a_closed_pipe_ends_quietly():
    # `roofline simulate ... | head -c 10`: the reader goes away; no "Broken pipe" error, exit 0.
    proc = subprocess.Popen(
        [sys.executable, "-m", "roofline.cli.main", "simulate", str(SCENARIOS[0]), "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.read(10)
    proc.stdout.close()
    err = proc.stderr.read()
    assert proc.wait() == 0 and err == b""


def test_written_files_get_ordinary_permissions(tmp_path):
    # A report is for others to read: 0666 less the umask (0644 here), not mkstemp's 0600; a file
    # that exists keeps its own mode.
    import os

    out = tmp_path / "report.txt"
    old = os.umask(0o022)
    try:
        assert main(["simulate", str(SCENARIOS[0]), "-o", str(out)]) == 0
        assert out.stat().st_mode & 0o777 == 0o644
        out.chmod(0o640)
        assert main(["simulate", str(SCENARIOS[0]), "-o", str(out)]) == 0
        assert out.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


def test_records_of_a_sweep_too_large_are_refused_and_columns_stay_available():
    # 60 x 60 x 10 = 36,000 points: evaluated (columns), but no 36,000 JSON records.
    axis = list(range(1, 61))
    doc = {
        "model": "llama-3.1-8b",
        "hardware": "h100-sxm",
        "sweep": {
            "workload.prompt_tokens": axis,
            "workload.batch": axis,
            "workload.output_tokens": axis[:10],
        },
    }
    result = roofline.simulate(doc)
    assert result.columns["ttft_s"].shape == (36_000,)
    with pytest.raises(roofline.api.ScenarioError, match="at most 20,000"):
        result.records()


def test_every_result_key_is_documented_in_the_repo():
    # Users have no SPEC.md: docs/results.md names every key a record carries.
    text = (ROOT / "docs" / "results.md").read_text()
    rec = roofline.simulate(
        {"model": "llama-3.1-8b", "hardware": "h100-sxm", "workload": {"prompt_tokens": 4096}}
    ).records()[0]
    for key, value in rec.items():
        assert f"`{key}`" in text, key
        if isinstance(value, dict) and key not in ("point", "breakdown"):
            for sub in value:
                if sub != "breakdown":
                    assert f"`{sub}`" in text, f"{key}.{sub}"
    readme = (ROOT / "README.md").read_text()
    assert "SPEC.md" not in readme and "shared/" not in readme


def test_plan_and_compare_write_csv_and_an_unmet_sla_exits_nonzero(capsys):
    scen = str(ROOT / "scenarios" / "llama3-70b-8xh100-tp8.yaml")
    assert main(["plan", scen, "--gpus-max", "8", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert rows and {"layout.tp", "ttft_s", "pareto", "meets_sla"} <= rows[0].keys()
    # 1 ms per token is out of reach on 8 H100s: the table still prints, then why, and exit 1.
    assert main(["plan", scen, "--gpus-max", "8", "--tpot-max", "0.001"]) == 1
    captured = capsys.readouterr()
    assert "no layout meets the SLA within 8 GPUs: the fastest TPOT is" in captured.err
    assert "--tpot-max 0.001" in captured.err and "h100-sxm" in captured.out
    stack = str(ROOT / "scenarios" / "llama3-8b-1m-decode-a100-stack.yaml")
    assert main(["compare", stack, "--methods", "weight_quant+kv_quant", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["stack"] for r in rows] == ["dense", "weight_quant+kv_quant"]
    assert rows[0]["scenario"] == "llama3-8b-1m-decode-a100-stack"  # the scenario's name, not its path
    assert float(rows[1]["tpot_speedup"]) > 1
    # a stack naming no method says which exist
    assert main(["compare", stack, "--methods", "kvquant"]) == 2
    err = capsys.readouterr().err
    assert "--methods kvquant: unknown method. Did you mean 'kv_quant'?" in err and "Valid: kv_quant," in err


def test_registries_print_json_with_a_schema_version(capsys):
    assert main(["hw", "list", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema_version"] == 1 and {h["name"] for h in doc["hardware"]} == set(list_hardware())
    assert main(["hw", "show", "h100-sxm", "--format", "json"]) == 0
    hw = json.loads(capsys.readouterr().out)["hardware"]
    assert hw["memory_bandwidth"] == 3.35e12 and hw["peak_flops"]["bf16"] == pytest.approx(989.4e12)
    assert main(["models", "show", "llama-3.1-8b", "--format", "json"]) == 0
    m = json.loads(capsys.readouterr().out)["model"]
    assert m["kv_bytes_per_token"] == 2 * 32 * 8 * 128 * 2 and m["params_total"] == 8_030_261_248
    assert main(["models", "list", "--format", "json"]) == 0
    assert {x["name"] for x in json.loads(capsys.readouterr().out)["models"]} == set(list_models())
    assert main(["methods", "quest", "--format", "json"]) == 0
    q = json.loads(capsys.readouterr().out)["method"]
    assert q["parameters"]["token_budget"]["required"] and q["parameters"]["page_size"]["default"] == 16
    assert main(["methods", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["methods"]) == 21
    rec = roofline.simulate(
        {"model": "llama-3.1-8b", "hardware": "h100-sxm", "workload": {"prompt_tokens": 4096}}
    ).records()[0]
    assert rec["schema_version"] == 1


def test_roofline_schema_describes_every_field_and_accepts_the_shipped_scenarios(capsys, tmp_path):
    from roofline.simulator.scenario_schema import SCHEMA

    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    props = schema["properties"]
    for path, spec in SCHEMA.items():
        node = (
            props[path] if "." not in path else props[path.split(".")[0]]["properties"][path.split(".", 1)[1]]
        )
        assert node["description"] == spec.help
    assert props["workload"]["properties"]["batch"]["minimum"] == 1
    assert len(props["methods"]["items"]["oneOf"]) == 21
    out = tmp_path / "scenario.schema.json"
    assert main(["schema", "-o", str(out)]) == 0 and json.loads(out.read_text()) == schema
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(schema)
    for path in SCENARIOS:
        assert not list(validator.iter_errors(yaml.safe_load(path.read_text()))), path
    bad = {"model": "x", "hardware": "h100-sxm", "workload": {"batch": 0, "promt_tokens": 5}}
    assert len(list(validator.iter_errors(bad))) == 3  # batch 0, the typo, and so no prompt length
    for doc in ({"workload": {"prompt_tokens": "128k"}}, {"sweep": {"workload.prompt_tokens": [4096, "1M"]}}):
        assert not list(validator.iter_errors({"model": "x", "hardware": "h100-sxm", **doc})), doc
    assert list(
        validator.iter_errors({"model": "x", "hardware": "h100-sxm", "workload": {"prompt_tokens": "12q"}})
    )


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenarios_trigger_none_of_their_own_warnings(path):
    # An example that warns teaches users to ignore warnings: each shipped scenario stays inside
    # its models' contexts, splits heads evenly and keeps its methods in their evaluated ranges.
    records = roofline.simulate(str(path)).records() if path in STATIC else [roofline.serve(str(path)).record]
    assert not {w for r in records for w in r["provenance"]["warnings"]}


def test_python_api_takes_keyword_fields_and_gives_a_dataframe():
    by_keywords = roofline.simulate(
        model="llama-3.1-8b", hardware="h100-sxm", prompt_tokens=32768, output_tokens=64, batch=2, tp=1
    ).records()[0]
    by_mapping = roofline.simulate(
        {
            "model": "llama-3.1-8b",
            "hardware": "h100-sxm",
            "workload": {"prompt_tokens": 32768, "output_tokens": 64, "batch": 2},
        }
    ).records()[0]
    assert by_keywords["ttft_s"] == by_mapping["ttft_s"] and by_keywords["memory"] == by_mapping["memory"]
    with pytest.raises(roofline.api.ScenarioError, match="Did you mean 'prompt_tokens'"):
        roofline.simulate(model="llama-3.1-8b", hardware="h100-sxm", promt_tokens=5)
    with pytest.raises(roofline.api.ScenarioError, match="not both"):
        roofline.simulate({"model": "llama-3.1-8b"}, model="llama-3.1-8b")
    result = roofline.simulate(
        model="llama-3.1-8b",
        hardware="h100-sxm",
        sweep={"workload.prompt_tokens": [4096, 8192], "hardware": ["h100-sxm", "h200"]},
    )
    pd = pytest.importorskip("pandas")
    df = result.to_pandas()
    assert isinstance(df, pd.DataFrame) and len(df) == 4
    assert list(df["workload.prompt_tokens"]) == [4096, 4096, 8192, 8192]
    assert list(df["hardware"]) == ["h100-sxm", "h200"] * 2
    assert list(df["ttft_s"]) == [r["ttft_s"] for r in result.records()]
