"""Trace files: the generic JSONL and CSV formats, Mooncake's and vLLM benchmark-serving's read as
is, and bad lines refused with one line naming the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from roofline.simulator.serving.config import SERVING_SCHEMA, ServingConfig
from roofline.simulator.serving.traces import TraceError, parse_trace
from roofline.simulator.serving.workload import block_keys, from_trace

FIX = Path(__file__).parent / "fixtures" / "serving"


def _cfg(**kw):
    v = {p: s.default for p, s in SERVING_SCHEMA.items()}
    v["serving.arrival.trace"] = "x"
    v.update({f"serving.{k}": x for k, x in kw.items()})
    return ServingConfig.from_values(v)


def _read(name):
    return (FIX / name).read_text()


def test_generic_jsonl_prefixes_and_sessions():
    req = from_trace(parse_trace(_read("generic.jsonl"), "generic.jsonl"), _cfg())
    assert req.arrival_s.tolist() == [0.0, 0.25, 0.5, 2.0]  # sorted by arrival
    assert req.prompt.tolist() == [1200, 300, 900, 700]
    assert req.output.tolist() == [40, 10, 20, 12]
    assert req.prefix_key[0] == req.prefix_key[2] == ("p", "sys")
    assert req.prefix_tokens.tolist()[0] == 512
    # The second turn of session u1 shares the first turn's prompt + output (300 + 10 tokens).
    assert req.prefix_key[1] == req.prefix_key[3] == ("s", "u1")
    assert req.prefix_tokens[3] == 310
    assert block_keys(req, 0, 512, 16) == block_keys(req, 2, 512, 16)


def test_generic_csv():
    req = from_trace(parse_trace(_read("generic.csv"), "generic.csv"), _cfg())
    assert req.prompt.tolist() == [1000, 2000, 2600, 800]
    assert req.prefix_tokens.tolist() == [0, 0, 2025, 800]
    assert req.prefix_key[0] is None and req.prefix_key[3] == ("p", "doc7")


def test_mooncake_trace():
    req = from_trace(parse_trace(_read("mooncake.jsonl"), "mooncake.jsonl"), _cfg())
    assert req.arrival_s.tolist() == [0.0, 0.25, 1.0]  # timestamps are milliseconds
    assert req.prompt.tolist() == [1400, 1100, 600]
    a, b = block_keys(req, 0, 1400, 16), block_keys(req, 1, 1100, 16)
    # Equal leading hash ids [1, 2] = equal first 1024 tokens = 64 equal blocks of 16, then different.
    shared = sum(1 for x, y in zip(a, b) if x == y)
    assert shared == 1024 // 16
    assert len(b) == 1100 // 16


def test_vllm_benchmark_result_redraws_poisson_arrivals():
    trace = parse_trace(_read("vllm_result.json"), "vllm_result.json")
    assert trace.request_rate == 4.0
    req = from_trace(trace, _cfg(seed=3))
    assert req.prompt.tolist() == [512, 1024, 2048] and req.output.tolist() == [64, 128, 32]
    gaps = np.diff(np.concatenate([[0.0], req.arrival_s]))
    want = np.random.default_rng(3).exponential(1 / 4.0, 3)
    assert np.allclose(gaps, want)


@pytest.mark.parametrize(
    "text, needle",
    [
        (
            '{"arrival_s": 0, "prompt_tokens": 10, "output_tokens": 2}\n{"arrival_s": 1, "prompt_tokens": -3, "output_tokens": 2}',
            "t.jsonl:2: field 'prompt_tokens'",
        ),
        ('{"arrival_s": 0, "prompt_tokens": 10}', "t.jsonl:1: missing field 'output_tokens'"),
        (
            '{"arrival_s": 0, "prompt_tokens": 10, "output_tokens": 2, "colour": 1}',
            "t.jsonl:1: unknown field 'colour'",
        ),
        (
            '{"arrival_s": 0, "prompt_tokens": 10, "output_tokens": 2}\n{"arrival_s": "soon"',
            "t.jsonl:2: not a JSON object",
        ),
        ('{"arrival_s": -1, "prompt_tokens": 10, "output_tokens": 2}', "t.jsonl:1: field 'arrival_s'"),
        (
            '{"arrival_s": 0, "prompt_tokens": 10, "output_tokens": 2, "prefix_id": "a", "prefix_tokens": 11}',
            "t.jsonl:1: field 'prefix_tokens'",
        ),
        (
            '{"timestamp": 0, "input_length": 5, "output_length": 1, "hash_ids": ["x"]}',
            "t.jsonl:1: field 'hash_ids'",
        ),
        ("arrival_s,prompt_tokens,output_tokens\n0,10,2\n0.5,ten,2", "t.jsonl:3: field 'prompt_tokens'"),
        ("arrival_s,prompt_tokens,output_tokens\n0,10", "t.jsonl:2: 2 columns"),
        ('{"input_lens": [1, 2], "output_lens": [3]}', "input_lens and output_lens"),
        ("", "the trace is empty"),
        # Python's json reads Infinity: a token count of infinity was an OverflowError
        (
            '{"arrival_s": 0, "prompt_tokens": Infinity, "output_tokens": 2}',
            "t.jsonl:1: field 'prompt_tokens'",
        ),
        ('{"input_lens": [Infinity, 2], "output_lens": [3, 4]}', "input_lens[0]: field 'input_lens'"),
    ],
)
def test_bad_traces_get_one_line_naming_line_and_field(text, needle):
    with pytest.raises(TraceError) as err:
        parse_trace(text, "t.jsonl")
    assert needle in str(err.value)
    assert "\n" not in str(err.value)
