"""Serving-benchmark results read as they are, for `roofline validate --trace`: each is turned into
trace rows (`model`, `batch`, `prompt_tokens`, `output_tokens`, `ttft_s`, `tpot_s`) that
`validate_trace` compares like its own. Reading the numbers is all this module does.

* vLLM `benchmark_serving.py --save-result` (and `vllm bench serve`): one JSON object per run with
  `model_id`, `completed`, `max_concurrency`, `total_input_tokens`, `total_output_tokens`,
  `mean_ttft_ms`, `mean_tpot_ms` and, unless left out, per-request `input_lens`, `output_lens`,
  `ttfts` (seconds) and `itls` (seconds between streamed chunks after the first token).
* SGLang `bench_serving --output-file` : the same run summary, one JSON object per line (JSONL),
  the per-request arrays with `--output-details`.
* SGLang `bench_one_batch` result lines: a static batch (`batch_size`, `input_len`, `output_len`)
  with `prefill_latency` (the whole batch's prefill, our TTFT) and `median_decode_latency` (one
  decode step, our TPOT).

A serving run's requests share the GPUs under continuous batching; they are compared with a static
batch of the run's concurrency (`max_concurrency`, else every request at once when the request rate
is unbounded, else one), which is only approximate above one: the report says so in its notes.
Per-request TPOT follows vLLM's definition, (latency - TTFT) / (output tokens - 1).
"""

from __future__ import annotations

import json
import math

SERVING_KEYS = ("mean_ttft_ms", "ttfts")
ONE_BATCH_KEYS = ("batch_size", "input_len", "output_len", "prefill_latency")


def parse_json_lines(text: str):
    """The objects of a JSON document or of JSON lines (JSONL); None when the text is neither."""
    try:
        return [json.loads(text)]
    except (json.JSONDecodeError, RecursionError):
        pass
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except (json.JSONDecodeError, RecursionError):
            return None
    return out or None


def kind_of(obj) -> str | None:
    """'serving' (vLLM or SGLang bench_serving result), 'one_batch' (SGLang bench_one_batch) or None."""
    if not isinstance(obj, dict):
        return None
    if all(k in obj for k in ONE_BATCH_KEYS):
        return "one_batch"
    if any(k in obj for k in SERVING_KEYS) and ("completed" in obj or "input_lens" in obj):
        return "serving"
    return None


def _number(value):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return value if ok else None


def _concurrency(run: dict) -> int:
    """The static batch a serving run is compared with (see the module docstring)."""
    limit = run.get("max_concurrency")
    if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1:
        return limit
    rate = run.get("request_rate")
    unbounded = rate is None or rate == "inf" or (isinstance(rate, float) and math.isinf(rate))
    completed = run.get("completed")
    if unbounded and isinstance(completed, int) and completed >= 1:
        return completed
    return 1


def _model(run: dict):
    for key in ("model_id", "model", "tokenizer_id"):
        if isinstance(run.get(key), str) and run[key]:
            return run[key]
    return None


def serving_rows(run: dict) -> list:
    """Trace rows of one serving run: one per successful request when the per-request arrays are
    there, else one row of the run's means."""
    base = {"batch": _concurrency(run)}
    if _model(run):
        base["model"] = _model(run)
    lens_in, lens_out, ttfts = run.get("input_lens"), run.get("output_lens"), run.get("ttfts")
    itls = run.get("itls") or []
    if all(isinstance(x, list) for x in (lens_in, lens_out, ttfts)) and ttfts:
        rows = []
        for i, (p, o, t) in enumerate(zip(lens_in, lens_out, ttfts)):
            if not (_number(t) and t > 0 and isinstance(o, int) and o >= 1):
                continue  # a failed request: no first token
            row = {**base, "prompt_tokens": p, "output_tokens": o, "ttft_s": t}
            gaps = itls[i] if i < len(itls) and isinstance(itls[i], list) else None
            if o > 1 and gaps and all(_number(g) is not None for g in gaps):
                row["tpot_s"] = sum(gaps) / (o - 1)
            rows.append(row)
        return rows
    done = run.get("completed")
    if not (isinstance(done, int) and done >= 1):
        return [{**base, "__problem__": "a serving result with no completed requests"}]
    row = {
        **base,
        "prompt_tokens": round(run.get("total_input_tokens", 0) / done),
        "output_tokens": round(run.get("total_output_tokens", 0) / done),
    }
    for key, ms in (("ttft_s", "mean_ttft_ms"), ("tpot_s", "mean_tpot_ms")):
        if _number(run.get(ms)) is not None:
            row[key] = run[ms] / 1e3
    return [row]


def one_batch_rows(run: dict) -> list:
    row = {
        "batch": run["batch_size"],
        "prompt_tokens": run["input_len"],
        "output_tokens": run["output_len"],
        "ttft_s": run["prefill_latency"],
    }
    if _number(run.get("median_decode_latency")) is not None:
        row["tpot_s"] = run["median_decode_latency"]
    return [row]


def benchmark_rows(objects: list):
    """(rows, format name) when every object is a known benchmark result, else None."""
    kinds = [kind_of(o) for o in objects]
    if not kinds or None in kinds:
        return None
    rows = []
    for obj, kind in zip(objects, kinds):
        rows += serving_rows(obj) if kind == "serving" else one_batch_rows(obj)
    name = {"serving": "serving benchmark (vLLM / SGLang)", "one_batch": "SGLang bench_one_batch"}
    return rows, " + ".join(sorted({name[k] for k in kinds}))
