"""Human-readable tables and CSV of simulation result records, for `roofline simulate`, `compare`
and `plan` and the other faces (SI values scaled for display only, by `report.format`)."""

from __future__ import annotations

import csv
import io
import json

from roofline.report.format import gib, si_count, si_time


def _flatten(prefix: str, obj: dict, out: dict) -> None:
    for k, v in obj.items():
        if isinstance(v, dict):
            _flatten(f"{prefix}{k}.", v, out)
        else:
            out[f"{prefix}{k}"] = v


def flat_record(rec: dict) -> dict:
    out: dict = {}
    for k, v in rec.items():
        if k == "provenance":
            out["calibration"] = v["calibration"]
            out["warnings"] = " | ".join(v["warnings"])
            out["notes"] = " | ".join(v.get("notes", ()))
        elif isinstance(v, dict):
            _flatten(f"{k}.", v, out)
        else:
            out[k] = v
    return out


def to_csv(records: list) -> str:
    rows = [flat_record(r) for r in records]
    keys: list = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()


def _kv(lines: list, label: str, value: str) -> None:
    lines.append(f"  {label:<28} {value}")


def _g(x, spec: str = ".4g") -> str:
    """A number for a table cell, '-' for null (a figure hidden because the point does not fit)."""
    return "-" if x is None else format(x, spec)


def _batch(rec: dict) -> int:
    return (rec.get("configuration") or {}).get("workload", {}).get("batch", 1)


def ttft_footnote(records: list) -> list:
    """The line saying what TTFT means where a batch of several sequences is in the table."""
    batches = sorted({_batch(r) for r in records})
    if batches[-1:] and batches[-1] > 1:
        return [
            f"TTFT: time to the first token of the whole batch (batch {', '.join(map(str, batches))}): "
            "the prefill of every prompt in it, not one request's wait"
        ]
    return []


def single_table(
    rec: dict, prefill_ops: list, decode_ops: list, top: int = 8, changed: str = "", grey=None
) -> str:
    """One point in full. `changed`: the flags and overrides applied over the scenario file, named
    in the header; `grey(text)`: how a terminal greys the lines of a point that does not fit."""
    name = f"{rec['scenario']} with {changed}" if changed else rec["scenario"]
    lines = [f"{name}: {rec['model']} on {rec['gpus']} x {rec['hardware']}"]
    if rec["point"]:
        lines.append("  point: " + ", ".join(f"{k}={v}" for k, v in rec["point"].items()))
    config = rec.get("configuration") or {}
    wl, par, dt = config.get("workload", {}), config.get("parallelism", {}), config.get("dtype", {})
    batch = wl.get("batch", 1)
    if wl:
        chunk = wl.get("prefill_chunk_tokens")
        lines.append(
            f"  batch {batch} x {wl['prompt_tokens']} prompt + {wl['output_tokens']} output tokens"
            + (f", prefill in {chunk}-token chunks" if chunk else "")
            + (f", {wl['shared_prefix_tokens']} shared" if wl.get("shared_prefix_tokens") else "")
        )
    if par and dt:
        lines.append(
            f"  tp {par['tp']}, pp {par['pp']}, cp {par['cp']}, dp {par['dp']}, ep {par['ep']}; "
            f"weights/activations/KV {dt['weights']}/{dt['activations']}/{dt['kv']}"
            + "".join(f" + {m.get('name')}" for m in config.get("methods") or [] if isinstance(m, dict))
            + (
                f"; framework {config['runtime']['framework']}"
                if (config.get("runtime") or {}).get("framework")
                else ""
            )
        )
    lines.append("latency")
    if rec["ttft_s"] is None and not rec["fits"]:  # hidden: the point does not fit (--force shows it)
        unfit = f"  does not fit: {rec.get('fit_reason', '')} (--force reports its latency and cost anyway)"
        lines.append(grey(unfit) if grey else unfit)
        for label in ("TTFT", "time per output token", "end to end"):
            _kv(lines, label, "-")
    else:
        whole = f", the whole batch of {batch}" if batch > 1 else ""
        _kv(
            lines,
            "TTFT",
            f"{si_time(rec['ttft_s'])}  (prefill {rec['prefill']['bound']}-bound, MFU {rec['prefill']['mfu']:.0%}{whole})",
        )
        _kv(
            lines,
            "time per output token",
            f"{si_time(rec['tpot_s'])}  (decode {rec['decode']['bound']}-bound, MBU {rec['decode']['mbu']:.0%})",
        )
        _kv(lines, "end to end", si_time(rec["e2e_s"]))
    lines.append("throughput")
    _kv(lines, "decode tokens/s (deployment)", _g(rec["decode_tokens_per_s"]))
    _kv(lines, "output tokens/s per GPU", _g(rec["throughput_tokens_per_s_per_gpu"]))
    m = rec["memory"]
    lines.append("memory per GPU")
    for key in ("weights_bytes", "kv_cache_bytes", "activation_bytes", "overhead_bytes"):
        _kv(lines, key.replace("_bytes", "").replace("_", " "), gib(m[key]))
    fit = "fits" if rec["fits"] else f"DOES NOT FIT: {rec.get('fit_reason', '')}"
    _kv(lines, "total / capacity", f"{gib(m['total_bytes'])} / {gib(m['capacity_bytes'])}  ({fit})")
    _kv(lines, "host (offloaded) / capacity", f"{gib(m['host_bytes'])} / {gib(m['host_capacity_bytes'])}")
    _kv(lines, "max batch at this context", str(rec["max_batch"]))
    mc = rec["max_context_tokens"]
    supported = any("max_context_tokens (what memory holds) exceeds" in n for n in rec["provenance"]["notes"])
    beyond = f" (beyond {rec['model']}'s supported context: see note)" if supported else ""
    _kv(
        lines, "max context at this batch", ("unlimited by memory" if mc is None else f"{mc} tokens") + beyond
    )
    lines.append("cost and energy")
    c = rec["cost"]
    _kv(lines, "$ per hour", f"{c['usd_per_hour']:.2f}")
    _kv(lines, "$ per million output tokens", _g(c["usd_per_million_output_tokens"]))
    _kv(lines, "$ per million prompt tokens", _g(c["usd_per_million_prompt_tokens"]))
    _kv(lines, "J per output token", _g(rec["energy"]["joules_per_output_token"]))
    for title, ops in (
        ("prefill ops (top by time)", prefill_ops),
        ("decode step ops (mean over output, top by time)", decode_ops),
    ):
        lines.append(title)
        lines.append(
            f"  {'op':<20} {'kind':<18} {'time':>10} {'FLOPs':>10} {'bytes':>10} {'FLOP/B':>8}  bound"
        )
        for op in sorted(ops, key=lambda o: -o["time_s"])[:top]:
            inten = f"{op['intensity']:.3g}" if op["intensity"] else "-"
            hidden = op["time_s"] - op["exposed_s"]
            overlapped = (
                f"  (overlapped: adds {si_time(op['exposed_s'])})" if hidden > 1e-3 * op["time_s"] else ""
            )
            lines.append(
                f"  {op['name']:<20} {op['kind']:<18} {si_time(op['time_s']):>10} {si_count(op['flops']):>10} "
                f"{si_count(op['bytes'], 'B'):>10} {inten:>8}  {op['bound']}{overlapped}"
            )
    lines.append(f"calibration: {rec['provenance']['calibration']}")
    for w in rec["provenance"]["warnings"]:
        lines.append(f"warning: {w}")
    for n in rec["provenance"]["notes"]:
        lines.append(f"note: {n}")
    return "\n".join(lines)


def columns(head: list, rows: list) -> list:
    """Lines of a text table: each column left-aligned to its widest cell, two spaces apart."""
    widths = [max([len(h), *(len(row[i]) for row in rows)]) for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths))]
    return out + ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]


def _max_ctx(r: dict) -> str:
    return "unlimited" if r["max_context_tokens"] is None else str(r["max_context_tokens"])


_SHORT = {"communication": "comm", "host-link": "host"}  # the other bound names print as they are


def _mark_unfit(lines: list, records: list, grey) -> list:
    """Table lines (header first) with each row of a point that does not fit marked with its reason,
    and greyed by `grey` (a terminal) when given."""
    out = lines[:1]
    for line, r in zip(lines[1:], records):
        if not r["fits"]:
            line = f"{line.rstrip()}  does not fit: {r.get('fit_reason', '')}"
            line = grey(line) if grey else line
        out.append(line)
    return out


def sweep_table(records: list, changed: str = "", grey=None) -> str:
    """One row per sweep point; `changed` (flags and overrides over the file) heads the table."""
    if not records:
        return ""
    axes = list(records[0]["point"])
    host = any(r["memory"]["host_bytes"] > 0 for r in records)  # offloading: show host memory too
    head = axes + [
        "TTFT",
        "TPOT",
        "tok/s/GPU",
        "mem/GPU",
        *(["host/GPU"] if host else []),
        "fits",
        "max_batch",
        "max_ctx",
        "$/M out",
        "bound p/d",
    ]
    rows = []
    for r in records:
        rows.append(
            [str(r["point"][a]) for a in axes]
            + [
                si_time(r["ttft_s"]),
                si_time(r["tpot_s"]),
                _g(r["throughput_tokens_per_s_per_gpu"]),
                gib(r["memory"]["total_bytes"]),
                *([gib(r["memory"]["host_bytes"])] if host else []),
                "yes" if r["fits"] else "no",
                str(r["max_batch"]),
                _max_ctx(r),
                _g(r["cost"]["usd_per_million_output_tokens"]),
                f"{_SHORT.get(r['prefill']['bound'], r['prefill']['bound'])}/"
                f"{_SHORT.get(r['decode']['bound'], r['decode']['bound'])}",
            ]
        )
    out = ([f"{records[0]['scenario']} with {changed}"] if changed else []) + _mark_unfit(
        columns(head, rows), records, grey
    )
    out += ttft_footnote(records)
    warnings = sorted({w for r in records for w in r["provenance"]["warnings"]})
    out += [f"warning: {w}" for w in warnings]
    out += [f"note: {n}" for n in sorted({n for r in records for n in r["provenance"]["notes"]})]
    return "\n".join(out)


def _point_key(rec: dict) -> str:
    return json.dumps(rec["point"], sort_keys=True)


def compare_records(rows: list, hide_unfit: bool = False) -> list:
    """[(label, record)] of method stacks (the dense baseline's label is 'dense') -> JSON records
    with the stack and its TTFT/TPOT speedups over dense at the same sweep point (over dense's
    modelled times, also where dense does not fit). `hide_unfit`: a stack that does not fit has its
    figures and speedups null (`results.without_unfit_figures`)."""
    from roofline.simulator.results import without_unfit_figures

    base = {_point_key(r): r for label, r in rows if label == "dense"}
    out = []
    for label, r in rows:
        b = base[_point_key(r)]
        out.append(
            {
                "stack": label,
                "ttft_speedup": _ratio(b["ttft_s"], r["ttft_s"]),
                "tpot_speedup": _ratio(b["tpot_s"], r["tpot_s"]),
                **r,
            }
        )
    if hide_unfit:
        out = [
            c if c["fits"] else dict(without_unfit_figures(c), ttft_speedup=None, tpot_speedup=None)
            for c in out
        ]
    return out


def _ratio(a, b):
    return None if a is None or b is None else a / b


def compare_table(rows: list, grey=None, hide_unfit: bool = False) -> str:
    """`roofline compare`'s table of [(label, record)]: each stack's latency with its speedup over
    dense, memory, fit, max batch/context and cost, then the stacks' warnings."""
    head = [
        "stack",
        "point",
        "TTFT",
        "x",
        "TPOT",
        "x",
        "KV/GPU",
        "mem/GPU",
        "fits",
        "max_batch",
        "max_ctx",
        "$/M out",
    ]
    table = [
        [
            c["stack"],
            ",".join(f"{v}" for v in c["point"].values()) or "-",
            si_time(c["ttft_s"]),
            _g(c["ttft_speedup"], ".2f"),
            si_time(c["tpot_s"]),
            _g(c["tpot_speedup"], ".2f"),
            gib(c["memory"]["kv_cache_bytes"]),
            gib(c["memory"]["total_bytes"]),
            "yes" if c["fits"] else "no",
            str(c["max_batch"]),
            _max_ctx(c),
            _g(c["cost"]["usd_per_million_output_tokens"]),
        ]
        for c in compare_records(rows, hide_unfit)
    ]
    warnings = sorted({f"[{label}] {w}" for label, r in rows for w in r["provenance"]["warnings"]})
    records = [r for _, r in rows]
    lines = _mark_unfit(columns(head, table), records, grey) + ttft_footnote(records)
    return "\n".join(lines + [f"warning: {w}" for w in warnings])


def plan_table(rows: list, cost: list, meets: list) -> str:
    """`roofline plan`'s table of [(layout, record)] with each row's $ per million output tokens
    and whether it meets the SLA."""
    head = ["hardware", "gpus", "tp", "pp", "cp", "dp", "ep", "TTFT", "TPOT", "$/M out", "bound p/d", "SLA"]
    table = [
        [r["hardware"], str(r["gpus"])]
        + [str(layout[k]) for k in ("tp", "pp", "cp", "dp", "ep")]
        + [
            si_time(r["ttft_s"]),
            si_time(r["tpot_s"]),
            f"{c:.4g}",
            f"{r['prefill']['bound']}/{r['decode']['bound']}",
            "meets" if m else "-",
        ]
        for (layout, r), c, m in zip(rows, cost, meets)
    ]
    return "\n".join(columns(head, table) + ttft_footnote([r for _, r in rows]))
