"""`roofline validate --trace` on serving benchmarks' own result files, read as they are: vLLM
`benchmark_serving` JSON (per-request arrays), SGLang `bench_serving` JSONL (run means) and SGLang
`bench_one_batch` JSONL (a static batch). The fixtures are small hand-written results with the
formats' documented fields. A trace with no row to compare exits nonzero. No torch needed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import roofline
from roofline.cli.main import main
from roofline.profilers.validate_trace import read_trace_rows

FIXTURES = Path(__file__).resolve().parent / "fixtures"
VLLM = FIXTURES / "vllm_benchmark_serving.json"
SGLANG = FIXTURES / "sglang_bench_serving.jsonl"
ONE_BATCH = FIXTURES / "sglang_bench_one_batch.jsonl"


def test_vllm_result_gives_one_row_per_successful_request():
    rows, form = read_trace_rows(VLLM)
    assert form == "serving benchmark (vLLM / SGLang)"
    assert [(r["prompt_tokens"], r["output_tokens"], r["batch"]) for r in rows] == [
        (4096, 128, 1),
        (8192, 128, 1),
        (16384, 64, 1),
    ]  # the failed request (no first token) is left out
    assert [r["ttft_s"] for r in rows] == [0.0523, 0.0981, 0.2114]
    # TPOT as vLLM defines it: (latency - TTFT) / (output tokens - 1) = sum of the gaps / (n - 1)
    assert rows[0]["tpot_s"] == pytest.approx(0.0071)
    assert rows[1]["tpot_s"] == pytest.approx((100 * 0.0074 + 13 * 0.0148) / 127)
    assert rows[2]["tpot_s"] == pytest.approx(0.0079)
    assert {r["model"] for r in rows} == {"meta-llama/Llama-3.1-8B"}


def test_sglang_serving_runs_give_their_means_at_their_concurrency():
    rows, _ = read_trace_rows(SGLANG)
    assert rows == [
        {
            "batch": 1,
            "prompt_tokens": 32768,
            "output_tokens": 256,
            "ttft_s": 3.1015,
            "tpot_s": pytest.approx(0.00803),
        },
        {
            "batch": 4,
            "prompt_tokens": 8192,
            "output_tokens": 512,
            "ttft_s": 2.41,
            "tpot_s": pytest.approx(0.0102),
        },
    ]


def test_sglang_one_batch_is_a_static_batch():
    rows, form = read_trace_rows(ONE_BATCH)
    assert form == "SGLang bench_one_batch"
    assert rows[1] == {
        "batch": 8,
        "prompt_tokens": 4096,
        "output_tokens": 64,
        "ttft_s": 2.11,
        "tpot_s": 0.0091,
    }


def _report(tmp_path, capsys, *argv):
    rc = main(["validate", *map(str, argv), "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert rc == 0, err
    (path,) = (tmp_path / "out").glob("*.json")
    return json.loads(path.read_text()), err


def test_vllm_result_is_compared_point_by_point(tmp_path, capsys):
    report, _ = _report(tmp_path, capsys, "--trace", VLLM, "--hardware", "h100-sxm")
    assert report["problems"] == []
    ttft = [p for p in report["points"] if p["metric"] == "ttft_s"]
    assert [p["measured_s"] for p in ttft] == [0.0523, 0.0981, 0.2114]
    predicted = roofline.simulate(
        model="llama-3.1-8b", hardware="h100-sxm", prompt_tokens=4096, output_tokens=128
    ).records()[0]["ttft_s"]
    assert ttft[0]["predicted_s"] == predicted
    assert ttft[0]["error"] == pytest.approx((predicted - 0.0523) / 0.0523)
    assert report["provenance"]["model"] == "llama-3.1-8b"  # the zoo model of the Hub id


def test_model_and_tp_flags_fill_what_a_benchmark_file_does_not_say(tmp_path, capsys):
    report, err = _report(
        tmp_path, capsys, "--trace", SGLANG, "--hardware", "h200", "--model", "llama-3.1-70b", "--tp", "4"
    )
    assert {p["config"]["tp"] for p in report["points"]} == {4}
    assert report["provenance"]["model"] == "llama-3.1-70b"
    assert any("continuous batching" in n and "1, 4" in n for n in report["provenance"]["notes"])


def test_a_benchmark_file_needs_the_hardware(capsys):
    rc = main(["validate", "--trace", str(ONE_BATCH), "--model", "llama-3.1-8b"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and "no row of the trace could be compared" in err
    assert "missing hardware (give --hardware)" in err


def test_a_trace_where_every_row_is_bad_exits_nonzero(tmp_path, capsys):
    trace = tmp_path / "bad.json"
    trace.write_text(json.dumps([{"model": "llama-3.1-8b", "hardware": "h100"}, "x"]))
    assert main(["validate", "--trace", str(trace)]) == 2
    err = capsys.readouterr().err
    assert "no row of the trace could be compared" in err and "row 1" in err and "row 2" in err
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    assert main(["validate", "--trace", str(empty)]) == 2
    assert "(it is empty)" in capsys.readouterr().err


def test_unknown_json_objects_are_refused_with_the_formats_named(tmp_path, capsys):
    trace = tmp_path / "other.json"
    trace.write_text(json.dumps({"hello": 1}))
    assert main(["validate", "--trace", str(trace)]) == 2
    assert "vLLM benchmark_serving" in capsys.readouterr().err
