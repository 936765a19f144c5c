"""The Plan page's headline numbers as cards: `kpi_items` (one plan's KPIs) and `delta_items`
(the plan's method stack against the dense baseline, as `roofline compare` reports it). Pure: from
SPEC.md records to [{key, label, value, detail, ok, infeasible}], which `components.kpi_cards`
renders. A plan that does not fit in memory has its run KPIs marked `infeasible` (struck through
and badged), never shown as ordinary numbers.
"""

from __future__ import annotations

from roofline.report.format import GIB, si_time


def _tokens(n) -> str:
    return "unlimited" if n is None else f"{n:,}"


# The KPIs that describe running the plan: meaningless when it does not fit in memory, so then
# they are marked (struck through, "does not fit") and never shown as ordinary numbers.
RUN_KPIS = ("ttft", "tpot", "throughput", "cost", "energy")


def kpi_items(rec: dict) -> list:
    """[{key, label, value, detail, ok, infeasible}] for the Plan page's cards, from one SPEC.md
    record; `infeasible` marks the run KPIs of a plan that does not fit in memory."""
    items = _kpi_items(rec)
    for item in items:
        item["infeasible"] = not rec["fits"] and item["key"] in RUN_KPIS
        if item["infeasible"]:
            item["ok"] = False
            item["detail"] = "does not fit in memory: not a runnable plan"
    return items


def _kpi_items(rec: dict) -> list:
    m = rec["memory"]
    cost = rec["cost"]
    usd = cost["usd_per_million_output_tokens"]
    joules = rec["energy"]["joules_per_output_token"]
    tput = rec["throughput_tokens_per_s_per_gpu"]
    fits = rec["fits"]
    return [
        {
            "key": "ttft",
            "label": "TTFT",
            "value": si_time(rec["ttft_s"]),
            "detail": f"prefill {rec['prefill']['bound']}-bound",
            "ok": True,
        },
        {
            "key": "tpot",
            "label": "TPOT",
            "value": si_time(rec["tpot_s"]),
            "detail": f"decode {rec['decode']['bound']}-bound",
            "ok": True,
        },
        {
            "key": "throughput",
            "label": "Throughput / GPU",
            "value": "-" if tput is None else f"{tput:,.4g} tok/s",
            "detail": f"output tokens, {rec['gpus']} GPU(s)",
            "ok": True,
        },
        {
            "key": "max-batch",
            "label": "Max batch",
            "value": f"{rec['max_batch']:,}",
            "detail": "at this prompt + output",
            "ok": rec["max_batch"] > 0,
        },
        {
            "key": "max-context",
            "label": "Max context",
            "value": _tokens(rec["max_context_tokens"]),
            "detail": "tokens at this batch",
            "ok": True,
        },
        {
            "key": "cost",
            "label": "$ / M output tokens",
            "value": "-" if usd is None else f"${usd:,.4g}",
            "detail": f"${cost['usd_per_hour']:,.4g}/h for {rec['gpus']} GPU(s)"
            if cost["usd_per_hour"] is not None
            else "",
            "ok": True,
        },
        {
            "key": "energy",
            "label": "J / output token",
            "value": "-" if joules is None else f"{joules:,.4g} J",
            "detail": "at TDP",
            "ok": True,
        },
        {
            "key": "fits",
            "label": "Fits in memory",
            "value": "yes" if fits else "no",
            "detail": (
                f"{m['total_bytes'] / GIB:.1f} of {m['capacity_bytes'] / GIB:.1f} GiB per GPU"
                if fits
                else rec.get("fit_reason", "")
            ),
            "ok": fits,
        },
    ]


def _speedup(x) -> str:
    return f"x{x:.2f}"


def _signed(x: float, fmt: str) -> str:
    return ("saves " if x >= 0 else "costs ") + fmt.format(abs(x))


def delta_items(stack: str, rec: dict, base: dict) -> list:
    """[{key, label, value, detail, ok, infeasible}]: the plan's method stack against the dense
    baseline at the same workload, as `roofline compare` reports it (its speedups come from the
    same `compare_records`): TTFT and TPOT speedup, memory and $ per million output tokens saved,
    max batch. A side that does not fit in memory is marked, never compared as a number."""
    from roofline.report.tables import compare_records

    _, cmp = compare_records([("dense", base), (stack, rec)])
    fits = rec["fits"] and base["fits"]
    which = " and ".join(name for name, r in (("the dense baseline", base), (stack, rec)) if not r["fits"])
    saved_bytes = base["memory"]["total_bytes"] - rec["memory"]["total_bytes"]
    usd_b = base["cost"]["usd_per_million_output_tokens"]
    usd_s = rec["cost"]["usd_per_million_output_tokens"]
    items = [
        {
            "key": "delta-ttft",
            "label": "TTFT speedup",
            "value": _speedup(cmp["ttft_speedup"]),
            "detail": f"{si_time(base['ttft_s'])} -> {si_time(rec['ttft_s'])}",
            "run": True,
        },
        {
            "key": "delta-tpot",
            "label": "TPOT speedup",
            "value": _speedup(cmp["tpot_speedup"]),
            "detail": f"{si_time(base['tpot_s'])} -> {si_time(rec['tpot_s'])}",
            "run": True,
        },
        {
            "key": "delta-memory",
            "label": "Memory / GPU",
            "value": _signed(saved_bytes / GIB, "{:.1f} GiB"),
            "detail": f"{base['memory']['total_bytes'] / GIB:.1f} -> {rec['memory']['total_bytes'] / GIB:.1f} GiB"
            f" (KV {base['memory']['kv_cache_bytes'] / GIB:.1f} -> {rec['memory']['kv_cache_bytes'] / GIB:.1f})",
            "run": False,
        },
        {
            "key": "delta-cost",
            "label": "$ / M output tokens",
            "value": "-" if usd_b is None or usd_s is None else _signed(usd_b - usd_s, "${:,.4g}"),
            "detail": "" if usd_b is None or usd_s is None else f"${usd_b:,.4g} -> ${usd_s:,.4g}",
            "run": True,
        },
        {
            "key": "delta-max-batch",
            "label": "Max batch",
            "value": f"{base['max_batch']:,} -> {rec['max_batch']:,}",
            "detail": "at this prompt + output",
            "run": False,
        },
    ]
    for item in items:
        run = item.pop("run")
        item["infeasible"] = run and not fits
        item["ok"] = not item["infeasible"]
        if item["infeasible"]:
            item["detail"] = f"{which} does not fit in memory"
    return items
