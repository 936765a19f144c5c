"""Request traces as text in, typed request rows out; every bad line is a one-line error naming the
file, the line and the field.

Formats (detected from the content):

* JSONL, one request per line: `arrival_s`, `prompt_tokens`, `output_tokens`, optional `session`
  (turns of one conversation share their history's KV), `prefix_id` with `prefix_tokens` (requests
  sharing a prefix: a system prompt, a document; `prefix_tokens` defaults to the whole prompt).
* CSV with a header row naming the same columns.
* Mooncake traces (Qin et al., "Mooncake", FAST '25; github.com/kvcache-ai/Mooncake, traces/*.jsonl):
  JSONL with `timestamp` (ms), `input_length`, `output_length`, `hash_ids` (one id per 512-token
  block of the prompt; equal leading ids = equal prefix).
* vLLM benchmark-serving results (`benchmark_serving.py --save-result`, one JSON object): the lists
  `input_lens` and `output_lens`; arrivals are not stored there, so they are redrawn as the
  benchmark drew them — Poisson at its `request_rate` (all at t = 0 when it is inf), seeded.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass

from roofline.simulator.errors import UserError, short

MOONCAKE_BLOCK_TOKENS = 512  # Mooncake's hash_ids each cover 512 prompt tokens (its trace README)
MAX_TRACE_TOKENS = 1e8


class TraceError(UserError):
    """A trace file that cannot be read; the message names the file, line and field."""


@dataclass(frozen=True)
class TraceRow:
    arrival_s: float | None  # None: drawn from the vLLM result's request_rate
    prompt: int
    output: int
    session: object = None
    prefix_key: object = None  # what the shared prefix is (hashable); None = nothing shared
    prefix_tokens: int = 0
    hash_ids: tuple = ()  # Mooncake block ids


@dataclass(frozen=True)
class Trace:
    rows: list
    request_rate: float | None = None  # vLLM results: the benchmark's rate (inf = offline)


def _count(where, field, value, minimum=1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TraceError(f"{where}: field {field!r}: must be a whole number, got {short(value)}")
    if value != int(value) or not minimum <= value <= MAX_TRACE_TOKENS:
        raise TraceError(
            f"{where}: field {field!r}: must be a whole number in {minimum}..{MAX_TRACE_TOKENS:g}, got {short(value)}"
        )
    return int(value)


def _time(where, field, value, scale=1.0) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
    ):
        raise TraceError(f"{where}: field {field!r}: must be a finite time >= 0, got {short(value)}")
    return float(value) * scale


def _generic(where, rec: dict) -> TraceRow:
    valid = ("arrival_s", "prompt_tokens", "output_tokens", "session", "prefix_id", "prefix_tokens")
    for key in rec:
        if key not in valid:
            raise TraceError(f"{where}: unknown field {key!r}. Valid: {', '.join(valid)}")
    for key in valid[:3]:
        if key not in rec:
            raise TraceError(f"{where}: missing field {key!r} (needs {', '.join(valid[:3])})")
    prompt = _count(where, "prompt_tokens", rec["prompt_tokens"])
    prefix = rec.get("prefix_id")
    prefix_tokens = 0
    if prefix not in (None, ""):
        prefix_tokens = _count(where, "prefix_tokens", rec.get("prefix_tokens", prompt))
        if prefix_tokens > prompt:
            raise TraceError(
                f"{where}: field 'prefix_tokens': {prefix_tokens} exceeds prompt_tokens {prompt}"
            )
    session = rec.get("session")
    return TraceRow(
        arrival_s=_time(where, "arrival_s", rec["arrival_s"]),
        prompt=prompt,
        output=_count(where, "output_tokens", rec["output_tokens"]),
        session=None if session in (None, "") else str(session),
        prefix_key=None if prefix in (None, "") else ("p", str(prefix)),
        prefix_tokens=prefix_tokens,
    )


def _mooncake(where, rec: dict) -> TraceRow:
    for key in ("timestamp", "input_length", "output_length"):
        if key not in rec:
            raise TraceError(
                f"{where}: missing field {key!r} (Mooncake lines have timestamp, input_length, output_length, hash_ids)"
            )
    ids = rec.get("hash_ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise TraceError(f"{where}: field 'hash_ids': must be a list of integers, got {short(ids)}")
    return TraceRow(
        arrival_s=_time(where, "timestamp", rec["timestamp"], 1e-3),  # Mooncake timestamps are ms
        prompt=_count(where, "input_length", rec["input_length"]),
        output=_count(where, "output_length", rec["output_length"]),
        hash_ids=tuple(ids),
    )


def _jsonl(text: str, name: str) -> list:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{name}:{n}"
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise TraceError(
                f"{where}: not a JSON object ({exc.msg if hasattr(exc, 'msg') else 'too deep'})"
            ) from None
        if not isinstance(rec, dict):
            raise TraceError(f"{where}: each line must be a JSON object, got {short(rec)}")
        rows.append(_mooncake(where, rec) if "input_length" in rec else _generic(where, rec))
    return rows


def _csv(text: str, name: str) -> list:
    reader = csv.reader(io.StringIO(text))
    header = None
    rows = []
    for n, cells in enumerate(reader, 1):
        if not cells or not any(c.strip() for c in cells):
            continue
        if header is None:
            header = [c.strip() for c in cells]
            continue
        where = f"{name}:{n}"
        if len(cells) != len(header):
            raise TraceError(
                f"{where}: {len(cells)} columns, the header has {len(header)} ({', '.join(header)})"
            )
        rec = {}
        for key, cell in zip(header, cells):
            cell = cell.strip()
            if key in ("session", "prefix_id"):
                rec[key] = cell
                continue
            try:
                rec[key] = float(cell) if key == "arrival_s" else int(cell)
            except ValueError:
                raise TraceError(f"{where}: field {key!r}: must be a number, got {short(cell)}") from None
        rows.append(_generic(where, rec))
    return rows


def _vllm_result(doc: dict, name: str) -> Trace:
    ins, outs = doc.get("input_lens"), doc.get("output_lens")
    if not isinstance(ins, list) or not isinstance(outs, list) or len(ins) != len(outs):
        raise TraceError(
            f"{name}: a vLLM benchmark result needs lists input_lens and output_lens of equal length"
        )
    rate = doc.get("request_rate", "inf")
    try:
        rate = float(rate)
    except (TypeError, ValueError):
        raise TraceError(
            f"{name}: field 'request_rate': must be a number or inf, got {short(rate)}"
        ) from None
    if not rate > 0:
        raise TraceError(f"{name}: field 'request_rate': must be > 0 (or inf), got {rate}")
    rows = [
        TraceRow(
            None,
            _count(f"{name}: input_lens[{i}]", "input_lens", a),
            _count(f"{name}: output_lens[{i}]", "output_lens", b),
        )
        for i, (a, b) in enumerate(zip(ins, outs))
    ]
    return Trace(rows, rate)


def parse_trace(text: str, name: str) -> Trace:
    """The requests of a trace file's text (`name` labels errors)."""
    body = text.lstrip()
    if not body:
        raise TraceError(f"{name}: the trace is empty")
    if body.startswith("{"):
        try:  # a JSONL file of two or more lines fails here at its second line, cheaply
            whole = json.loads(body)
        except (json.JSONDecodeError, RecursionError):
            whole = None
        if isinstance(whole, dict) and "input_lens" in whole:
            return _vllm_result(whole, name)
        rows = _jsonl(text, name)
    else:
        rows = _csv(text, name)
    if not rows:
        raise TraceError(f"{name}: the trace has no requests")
    return Trace(rows)
