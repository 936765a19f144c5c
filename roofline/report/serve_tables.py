"""The table and CSV of a `roofline serve` result (SI values scaled for display only)."""

from __future__ import annotations

from roofline.report.format import si_count, si_time
from roofline.report.tables import columns, to_csv


def _t(v) -> str:
    return "-" if v is None else si_time(v)


def replicas_text(rep) -> str:
    """` (4 replicas, least_loaded routing, 2 ranks in lockstep)`, or nothing for one replica."""
    if not rep or rep["count"] <= 1:
        return ""
    lockstep = f", {rep['lockstep_ranks']} ranks in lockstep" if rep["lockstep_ranks"] > 1 else ""
    return f" ({rep['count']} replicas, {rep['routing']} routing{lockstep})"


def serve_table(rec: dict) -> str:
    tp = rec["throughput"]
    point = ", ".join(f"{k}={v}" for k, v in rec.get("point", {}).items())
    lines = [
        f"{rec['scenario']}{' [' + point + ']' if point else ''}: {rec['model']} on {rec['gpus']} x {rec['hardware']}"
        f"{replicas_text(rec.get('replicas'))}, "
        f"{rec['requests']} requests over {si_time(rec['duration_s'])} ({rec['steps']:,} steps)",
        f"  {'throughput':<26} {tp['requests_per_s']:.3g} req/s, {tp['output_tokens_per_s']:,.0f} output tok/s "
        f"({tp['output_tokens_per_s_per_gpu']:,.0f}/GPU), {tp['input_tokens_per_s']:,.0f} input tok/s",
        f"  {'':<26} {'mean':>10} {'p50':>10} {'p90':>10} {'p99':>10}",
    ]
    for key, label in (
        ("ttft_s", "TTFT"),
        ("tpot_s", "TPOT"),
        ("e2e_s", "E2E"),
        ("queue_s", "queue"),
        ("kv_transfer_s", "KV transfer"),
    ):
        s = rec[key]
        lines.append(f"  {label:<26} " + " ".join(f"{_t(s[q]):>10}" for q in ("mean", "p50", "p90", "p99")))
    kv = rec["kv_utilization"]
    cost = rec["cost"]
    lines += [
        f"  {'SLO attainment':<26} {rec['slo_attainment']:.1%} (goodput {rec['goodput_requests_per_s']:.3g} req/s)",
        f"  {'KV cache':<26} {si_count(rec['kv_cache']['tokens'])} tokens; use mean {kv['mean']:.1%}, max {kv['max']:.1%}",
        f"  {'scheduler':<26} {scheduler_text(rec.get('scheduler'))}",
        f"  {'prefix hit rate':<26} {rec['prefix_hit_rate']:.1%}",
        f"  {'preemptions':<26} {rec['preemptions']:,}",
        f"  {'cost':<26} ${cost['usd_per_million_output_tokens']:.3g}/M output, "
        f"${cost['usd_per_million_input_tokens']:.3g}/M input tokens (${cost['usd_per_hour']:.3g}/h)",
        f"  {'energy':<26} {rec['energy']['joules_per_output_token']:.3g} J/output token",
        f"  {'calibration':<26} {rec['provenance']['calibration']}; step cost: {rec['provenance']['step_cost']}",
    ]
    lines += [f"  warning: {w}" for w in rec["provenance"]["warnings"]]
    return "\n".join(lines)


def scheduler_text(s: dict | None, short: bool = False) -> str:
    """The scheduler's limits in a line: 'up to 1,024 sequences, 8,192 tokens a step, chunked prefill,
    blocks on demand' (and ', prefill steps apart' where decodes do not ride in prefill steps;
    `short`: the first two)."""
    if not s:
        return "-"
    if short:
        return f"up to {s['max_num_seqs']:,} sequences, {s['max_batched_tokens']:,} tokens a step"
    chunked = "chunked prefill" if s["chunked_prefill"] else "whole prompts"
    blocks = "blocks reserved at admission" if s["admission"] == "reserve" else "blocks on demand"
    apart = "" if s.get("mixed_batches", True) else ", prefill steps apart"
    return (
        f"up to {s['max_num_seqs']:,} sequences, {s['max_batched_tokens']:,} tokens a step, {chunked}, {blocks}"
        + apart
    )


def serve_csv(records: list) -> str:
    """One CSV row per record of the scalar keys, a sweep point's values first (the time series is
    left to --format json / --plot)."""
    rows = []
    for rec in records:
        point = {f"point.{k}": v for k, v in rec.get("point", {}).items()}
        rows.append({**point, **{k: v for k, v in rec.items() if k not in ("time_series", "point")}})
    return to_csv(rows)


def plan_serving_table(rows: list, marks: list) -> str:
    """`roofline plan --serving`'s table: one line per deployment row (`roofline.serving_search`),
    `marks` saying what each is (cheapest, Pareto, meets, misses, refused)."""
    head = ["", "hardware", "deployment", "stack", "seqs", "GPUs", "attain", "TTFT p90", "TPOT p90"]
    head += ["goodput/s", "$/M out", "max rate/s"]
    table = []
    for r, mark in zip(rows, marks):
        if r["error"] is not None:
            figures = ["-"] * 6
        else:
            figures = [
                f"{r['slo_attainment']:.1%}",
                _t(r["ttft_p90_s"]),
                _t(r["tpot_p90_s"]),
                f"{r['goodput_requests_per_s']:.3g}",
                f"{r['usd_per_million_output_tokens']:.3g}",
                f"{r['max_rate_per_s']:.3g}",
            ]
        lay = r["layout"]
        table.append(
            [
                mark,
                r["hardware"],
                r["label"],
                lay["stack"],
                "default" if lay["max_num_seqs"] is None else str(lay["max_num_seqs"]),
                str(r["gpus"]),
                *figures,
            ]
        )
    return "\n".join(columns(head, table))
