"""Plans saved for comparison: the Plan page's "Save for comparison" keeps a plan (its URL query
and its headline numbers) in the browser's local storage, and a table lists the saved plans side
by side, sortable and exportable as CSV.

The numbers are recomputed here, on the server, from the saved query (`roofline.simulate`
through `evaluate.plan_point`); the stored rows are the browser's and only their query is
trusted, after it is parsed again. A plan that does not fit in memory has no latency or cost
numbers in the table: it is marked "does not fit" instead. No Dash here: the Plan page wires it.
"""

from __future__ import annotations

from urllib.parse import quote

from roofline.dashboards import codec_query, codec_scenario, evaluate, state
from roofline.dashboards.settings import settings

MAX_SAVED = 20
COLUMNS = [
    ("plan", "plan", "text"),
    ("fits", "fits", "text"),
    ("ttft_s", "TTFT (s)", "numeric"),
    ("tpot_ms", "TPOT (ms)", "numeric"),
    ("usd_per_m", "$ / M out", "numeric"),
    ("tok_s_gpu", "tok/s/GPU", "numeric"),
    ("mem_gib", "mem/GPU (GiB)", "numeric"),
    ("max_batch", "max batch", "numeric"),
    ("open", "open", "markdown"),
]
RUN_COLUMNS = ("ttft_s", "tpot_ms", "usd_per_m", "tok_s_gpu")


def _sig(x, digits: int = 4):
    return None if x is None else float(f"{x:.{digits}g}")


def values_of(query: str) -> dict:
    cfg = settings()
    values, _ = codec_query.from_query(
        codec_query.parse_query(query or ""), evaluate.catalog(cfg["calibration_dir"]), cfg["upload_dir"]
    )
    return values


def describe(values: dict, rec: dict) -> str:
    return (
        f"{rec['model']} on {rec['gpus']}x {rec['hardware']}, {values['workload.prompt_tokens']:,} + "
        f"{values['workload.output_tokens']:,} tokens, batch {values['workload.batch']}, "
        f"{state.stack_label(values)}"
    )


def row_of(query: str) -> dict:
    """The table row of a plan's URL query, from the simulator (raises for a bad plan)."""
    values = values_of(query)
    rec = evaluate.plan_point(codec_scenario.to_scenario(values, settings()["upload_dir"])).record
    canonical = codec_query.to_query(values)
    row = {
        "query": canonical,
        "plan": describe(values, rec),
        "fits": "yes" if rec["fits"] else "does not fit",
        "ttft_s": _sig(rec["ttft_s"]),
        "tpot_ms": _sig(rec["tpot_s"] * 1e3),
        "usd_per_m": _sig(rec["cost"]["usd_per_million_output_tokens"]),
        "tok_s_gpu": _sig(rec["throughput_tokens_per_s_per_gpu"]),
        "mem_gib": _sig(rec["memory"]["total_bytes"] / 2**30, 3),
        "max_batch": rec["max_batch"],
        "open": link(canonical),
    }
    if not rec["fits"]:  # never shown as ordinary numbers
        row.update({c: None for c in RUN_COLUMNS})
    return row


def link(query: str) -> str:
    """A markdown link to the Plan page for a query (percent-encoded: nothing in it is markup)."""
    return f"[open](/?{quote(query or '', safe='=&')})"


def save(saved, query: str) -> list:
    """The saved rows with the plan of `query` added (replacing the same plan), newest last, at
    most MAX_SAVED."""
    rows = [r for r in (saved or []) if isinstance(r, dict) and isinstance(r.get("query"), str)]
    new = row_of(query)
    rows = [r for r in rows if r["query"] != new["query"]] + [new]
    return rows[-MAX_SAVED:]


def table_rows(saved) -> list:
    """Rows for the table from the browser's store: each recomputed from its query; a query that
    no longer gives a plan is left out."""
    out = []
    for r in (saved or [])[:MAX_SAVED]:
        if not isinstance(r, dict) or not isinstance(r.get("query"), str):
            continue
        try:
            out.append(row_of(r["query"]))
        except Exception:  # a plan saved by another version; nothing to show for it
            continue
    return out
