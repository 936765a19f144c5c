"""The dashboard's Serve page without a browser: its state (controls <-> scenario <-> URL), the
figures against `roofline.serve`'s own numbers, the rate curve, the callbacks called directly, and
crafted requests over HTTP that name trace or histogram files (refused, never opened)."""

from __future__ import annotations

import json

import pytest

import roofline
from roofline.dashboards import budget, evaluate, evaluate_serve, figures_serve, serve_state
from roofline.dashboards.pages import serve as page
from roofline.report.serve_figures import make_serve_figure

CATALOG = evaluate.catalog()
SECRET = "SECRET-TRACE-51d2"
SMALL = {"serving.requests": 200}  # every test's runs stay well under a second


def small(**fields) -> dict:
    return {**serve_state.SERVE_DEFAULTS, **SMALL, **fields}


def text_of(component) -> str:
    if component is None:
        return ""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(text_of(c) for c in component)
    return text_of(getattr(component, "children", None))


def kpi_values(cards) -> dict:
    return {c.id: c.children[1].children for c in cards}


@pytest.fixture(scope="module")
def served():
    """The page's default traffic at 200 requests, through the page's codec and `roofline.serve`."""
    doc = serve_state.to_scenario(small())
    return doc, roofline.serve(doc)


# --- state: controls <-> scenario <-> URL -----------------------------------------------------------


def test_every_control_has_a_default_and_a_section():
    assert set(serve_state.SERVE_DEFAULTS) == set(serve_state.PATHS)
    assert len(serve_state.PATHS) == len(set(serve_state.PATHS))
    for path in serve_state.PATHS:
        assert serve_state.spec(path).help


def test_scenario_is_the_readme_example_at_the_dashboards_size(served):
    doc, res = served
    s = doc["serving"]
    assert doc["model"] == "llama-3.1-8b" and doc["hardware"] == "h100-sxm" and doc["gpus"] == 1
    assert s["arrival"] == {"rate_per_s": 8.0}
    assert s["prompt_tokens"] == {"dist": "lognormal", "mean": 2048, "sigma": 0.8, "max": 32768}
    assert s["output_tokens"] == {"dist": "lognormal", "mean": 256, "sigma": 0.6, "max": 2048}
    assert s["slo"] == {"ttft_s": 1.0, "tpot_s": 0.05}
    assert res.record["requests"] == 200


def test_closed_loop_arrival_reaches_the_scenario_and_keeps_its_concurrency():
    values = small(arrival="closed loop", **{"serving.arrival.concurrency": 16})
    doc = serve_state.to_scenario(values)
    assert doc["serving"]["arrival"] == {"concurrency": 16}
    res = roofline.serve(doc)
    (tl,) = res.timelines
    assert res.record["requests"] == 200
    assert (tl.arrival_s == 0.0).sum() == 16  # the rest follow completions


def test_fixed_lengths_offline_and_layout_reach_the_scenario():
    values = small(
        arrival="offline",
        **{"prompt.dist": "fixed", "prompt.mean": 512, "output.dist": "fixed", "output.mean": 64},
        **{"parallelism.tp": 2, "parallelism.dp": 2, "runtime.framework": "sglang"},
    )
    doc = serve_state.to_scenario(values)
    assert doc["serving"]["arrival"] == {"offline": True}
    assert doc["serving"]["prompt_tokens"] == 512 and doc["serving"]["output_tokens"] == 64
    assert doc["gpus"] == 4 and doc["runtime"]["framework"] == "sglang"
    rec = roofline.serve(doc).record
    assert rec["gpus"] == 4 and rec["requests"] == 200


def test_unchunked_prefill_reaches_the_scenario_and_the_url():
    values = small(
        arrival="offline",
        **{"prompt.dist": "fixed", "prompt.mean": 1500, "serving.scheduler.max_batched_tokens": 2048},
        **{"serving.scheduler.chunked_prefill": False, "runtime.framework": "trtllm"},
    )
    doc = serve_state.to_scenario(values)
    assert doc["serving"]["scheduler"]["chunked_prefill"] is False
    chunked = roofline.serve(
        serve_state.to_scenario(dict(values, **{"serving.scheduler.chunked_prefill": True}))
    )
    whole = roofline.serve(doc)
    # whole 1,500-token prompts fit one per 2,048-token step: the first tokens come later
    assert whole.record["ttft_s"]["p50"] > chunked.record["ttft_s"]["p50"]
    from roofline.dashboards.codec_query import parse_query

    query = serve_state.to_query(values)
    assert "chunked_prefill=false" in query
    back, problems = serve_state.from_query(parse_query(query), CATALOG)
    assert problems == [] and back == values


def test_query_round_trip_keeps_only_changed_values():
    values = small(**{"serving.arrival.rate_per_s": 12.5, "serving.slo.ttft_s": None, "hardware": "h200"})
    query = serve_state.to_query(values)
    assert "rate_per_s=12.5" in query and "ttft_s=null" in query and "hardware=h200" in query
    assert "model=" not in query
    from roofline.dashboards.codec_query import parse_query

    back, problems = serve_state.from_query(parse_query(query), CATALOG)
    assert problems == [] and back == values


def test_bad_url_parameters_keep_defaults_and_say_why():
    values, problems = serve_state.from_query(
        {
            "serving.arrival.trace": "/etc/passwd",
            "prompt.dist": "histogram",
            "serving.requests": "lots",
            "hardware": "nope",
            "model": "/tmp/x.json",
        },
        CATALOG,
    )
    assert values == serve_state.SERVE_DEFAULTS
    text = "\n".join(problems)
    assert "trace files are read by `roofline serve` only" in text
    assert "length histograms are files" in text
    assert "serving.requests='lots': expected an integer" in text
    assert "hardware='nope'" in text and "not a zoo model" in text


def test_requests_over_the_dashboard_limit_are_refused_with_the_limit():
    with pytest.raises(roofline.api.ScenarioError, match="at most 2,000 requests per run"):
        serve_state.to_scenario(small(**{"serving.requests": 2001}))


def test_file_fields_are_refused_before_a_run():
    doc = serve_state.to_scenario(small())
    doc["serving"]["arrival"] = {"trace": "/etc/passwd"}
    with pytest.raises(roofline.api.ScenarioError, match="trace files"):
        evaluate_serve.serve_point(doc)
    doc = serve_state.to_scenario(small())
    doc["serving"]["output_tokens"] = {"dist": "histogram", "file": "/etc/passwd"}
    with pytest.raises(roofline.api.ScenarioError, match="histograms are files"):
        evaluate_serve.rate_curve(doc)
    with pytest.raises(roofline.api.ScenarioError, match="histograms are files"):
        serve_state.to_scenario(small(**{"prompt.dist": "histogram"}))


# --- figures against roofline.serve's numbers -------------------------------------------------------


def test_timeseries_figure_is_the_records_series(served):
    _, res = served
    rec = res.record
    fig = figures_serve.make_serve_timeseries_figure(rec)
    by_name = {t["name"]: t for t in fig["data"]}
    ts = rec["time_series"]
    assert by_name["running"]["y"] == ts["running"] and by_name["queued"]["y"] == ts["queued"]
    assert by_name["KV use"]["y"] == ts["kv_utilization"] and by_name["KV use"]["yaxis"] == "y2"
    assert by_name["running"]["x"] == ts["t_s"]
    assert [t["name"] for t in fig["data"]] == [t["name"] for t in make_serve_figure(rec)["data"]]
    assert max(ts["running"]) > 0  # a run that served requests, not an empty plot


def test_kpis_and_percentiles_are_the_records(served):
    _, res = served
    rec = res.record
    items = {i["key"]: i for i in figures_serve.serve_kpi_items(rec, {"ttft_s": 1.0, "tpot_s": 0.05})}
    assert items["serve-throughput"]["value"] == f"{rec['throughput']['requests_per_s']:.3g} req/s"
    limits = rec["scheduler"]
    assert items["serve-throughput"]["detail"].endswith(
        f"up to {limits['max_num_seqs']:,} sequences, {limits['max_batched_tokens']:,} tokens a step"
    )
    assert items["serve-tokens"]["value"] == f"{rec['throughput']['output_tokens_per_s_per_gpu']:,.0f}"
    assert items["serve-goodput"]["value"] == f"{rec['goodput_requests_per_s']:.3g} req/s"
    assert items["serve-slo"]["value"] == f"{rec['slo_attainment']:.1%}"
    assert items["serve-cost"]["value"] == f"${rec['cost']['usd_per_million_output_tokens']:,.4g}"
    rows = figures_serve.percentile_rows(rec)
    assert [r[0] for r in rows] == ["TTFT", "TPOT", "E2E", "queue"]
    from roofline.report.format import si_time

    assert rows[0][1:] == [si_time(rec["ttft_s"][q]) for q in ("mean", "p50", "p90", "p99")]


def test_rate_curve_runs_serve_at_each_rate_and_marks_the_knee(served):
    doc, res = served
    curve = evaluate_serve.rate_curve(doc, multiples=(0.5, 1.0, 3.0))
    assert curve.rates == [4.0, 8.0, 24.0] and curve.skipped == []
    assert curve.records[1]["throughput"] == res.record["throughput"]  # 1x is the KPIs' run
    alone = roofline.serve(doc, ["serving.arrival.rate_per_s=24"]).record
    assert curve.records[2]["goodput_requests_per_s"] == alone["goodput_requests_per_s"]
    att = [r["slo_attainment"] for r in curve.records]
    assert att[0] >= 0.9 and att[2] < 0.9  # 24 req/s overloads one H100 with these requests
    knee = curve.knee()
    assert knee in (4.0, 8.0) and (knee == 8.0) == (att[1] >= 0.9)
    fig = figures_serve.make_rate_curve_figure(curve.rates, curve.records, 8.0, knee)
    by_name = {t["name"]: t for t in fig["data"]}
    assert by_name["throughput"]["y"] == [r["throughput"]["requests_per_s"] for r in curve.records]
    assert by_name["goodput"]["y"] == [r["goodput_requests_per_s"] for r in curve.records]
    assert by_name["SLO attainment"]["y"] == att and by_name["offered"]["y"] == curve.rates
    assert [s["x0"] for s in fig["layout"]["shapes"]] == [8.0, knee]
    assert "knee" in fig["layout"]["annotations"][1]["text"]


def test_knee_is_none_when_the_lowest_rate_misses_and_the_last_rate_when_none_does():
    curve = evaluate_serve.RateCurve([1.0, 2.0, 3.0], [{"slo_attainment": a} for a in (0.5, 1.0, 1.0)])
    assert curve.knee() is None
    curve = evaluate_serve.RateCurve([1.0, 2.0, 3.0], [{"slo_attainment": a} for a in (1.0, 0.95, 0.9)])
    assert curve.knee() == 3.0


def test_rate_curve_within_a_budget_keeps_the_chosen_rate_and_lists_the_rest(served):
    doc, _ = served
    curve = evaluate_serve.rate_curve(doc, budget_s=0.0)
    assert curve.rates == [8.0]
    assert curve.skipped == sorted(8.0 * m for m in evaluate_serve.RATE_MULTIPLES[1:])


# --- callbacks called directly ----------------------------------------------------------------------


def test_update_serve_shows_the_apis_numbers(served):
    doc, res = served
    alert, cards, _warnings, table, fig, query = page.update_serve(*page.callback_args(small()))
    assert alert is None
    shown = kpi_values(cards)
    assert shown["kpi-serve-throughput"] == f"{res.record['throughput']['requests_per_s']:.3g} req/s"
    assert shown["kpi-serve-goodput"] == f"{res.record['goodput_requests_per_s']:.3g} req/s"
    assert "TTFT" in text_of(table) and "p99" in text_of(table)
    assert fig["data"][0]["y"] == res.record["time_series"]["running"]
    assert query == "serving.requests=200"


def test_a_higher_rate_changes_the_kpis():
    low = kpi_values(page.update_serve(*page.callback_args(small()))[1])
    faster = small(**{"serving.arrival.rate_per_s": 30.0})
    high = kpi_values(page.update_serve(*page.callback_args(faster))[1])
    assert low["kpi-serve-throughput"] != high["kpi-serve-throughput"]
    assert low["kpi-serve-slo"] != high["kpi-serve-slo"]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"serving.arrival.rate_per_s": -1.0}, "serving.arrival.rate_per_s"),
        ({"serving.arrival.rate_per_s": None}, "exactly one of"),
        ({"serving.requests": 0}, "serving.requests"),
        ({"serving.requests": 10**6}, "at most 2,000 requests"),
        ({"prompt.mean": 0}, "prompt_tokens"),
        ({"serving.scheduler.max_num_seqs": "many"}, "max_num_seqs"),
        ({"parallelism.tp": 3}, "tp"),
        ({"model": "/etc/passwd"}, "not a zoo model"),
    ],
)
def test_bad_inputs_give_a_message_never_a_traceback(fields, message):
    alert, cards, *_ = page.update_serve(*page.callback_args(small(**fields)))
    text = text_of(alert)
    assert message in text and "Traceback" not in text and "Internal error" not in text
    assert cards == []
    fig, note = page.update_rate_curve(*page.callback_args(small(**fields)))
    curve_text = text_of(note)  # no rate: the curve says it needs one; else the run's own message
    assert fig["data"] == [] and (message in curve_text or "needs an arrival rate" in curve_text)
    assert "Internal error" not in curve_text


def test_rate_curve_callback_notes_the_runs_and_offline_has_none():
    fig, note = page.update_rate_curve(*page.callback_args(small()))
    assert len(fig["data"][1]["y"]) == len(evaluate_serve.RATE_MULTIPLES)
    assert "The same 200 requests (seed 0) at 0.25x" in note and "(7 shown)" in note
    fig, note = page.update_rate_curve(*page.callback_args(small(arrival="offline")))
    assert "offline" in fig["layout"]["annotations"][0]["text"] and note is None


def test_a_crafted_control_naming_a_file_is_refused():
    fv, fi = page.callback_args(small())
    alert = page.update_serve([*fv, "/etc/passwd"], [*fi, page.field_id("serving.arrival.trace")])[0]
    assert "trace files are read by `roofline serve` only" in text_of(alert)
    with pytest.raises(budget.RequestRefused, match="too many fields"):
        page.check_controls([*fi, page.field_id("x")])


def test_layout_builds_from_a_query_and_lists_bad_parameters():
    tree = page.layout(**{"serving.arrival.rate_per_s": "4", "serving.arrival.trace": "/etc/passwd"})
    assert "trace files are read by `roofline serve` only" in text_of(tree)
    assert page.layout() is not None


# --- over HTTP: crafted requests open no file ---------------------------------------------------------


def post_serve(client, values: dict, extra: tuple = (), output: str = "serve-alert.children", drop=None):
    """A Serve update as a browser (or any page on the machine) would POST it: the page's controls
    less `drop`, plus `extra` (id, value) pairs."""
    deps = client.get("/_dash-dependencies").get_json()
    dep = next(d for d in deps if output in d["output"].strip(".").split("..."))
    outputs = []
    for part in dep["output"].strip(".").split("..."):
        cid, prop = part.rsplit(".", 1)
        outputs.append({"id": cid, "property": prop})
    fv, fi = page.callback_args(values)
    pairs = [(i, v) for i, v in zip(fi, fv) if i["path"] != drop] + list(extra)
    body = {
        "output": dep["output"],
        "outputs": outputs if dep["output"].startswith("..") else outputs[0],
        "inputs": [[{"id": i, "property": "value", "value": v} for i, v in pairs]],
        "state": [[{"id": i, "property": "id", "value": i} for i, _ in pairs]],
        "changedPropIds": [],
    }
    return client.post("/_dash-update-component", json=body)


@pytest.mark.parametrize("output", ["serve-alert.children", "serve-rate-curve.figure"])
@pytest.mark.parametrize("path", ["serving.arrival.trace", "prompt.file", "serving.prompt_tokens"])
def test_crafted_serve_update_naming_a_file_opens_nothing(app, tmp_path, opened, output, path):
    secret = tmp_path / "trace.jsonl"
    secret.write_text(
        json.dumps({"arrival_s": 0, "prompt_tokens": 1, "output_tokens": 1, "x": SECRET}) + "\n"
    )
    client = app.server.test_client()
    client.get("/_dash-dependencies")
    opened.clear()
    extra = ((page.field_id(path), str(secret)),)  # in place of one control: no more than the page has
    resp = post_serve(client, small(), extra, output, drop="serving.seed")
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    assert SECRET not in body
    assert not any("trace.jsonl" in p for p in opened), opened
    assert "not a control of the Serve page" in body


def test_a_served_page_over_http_shows_kpis(app):
    client = app.server.test_client()
    assert client.get("/serve").status_code == 200
    resp = post_serve(client, small())
    assert resp.status_code == 200 and "kpi-serve-goodput-value" in resp.get_data(as_text=True)


def test_refused_updates_fill_every_output_with_the_message():
    out = page.refused_serve("simulating the serving run took too long (over 20 s) and was stopped")
    assert len(out) == 6 and "took too long" in text_of(out[0]) and out[1] == []
    fig, note = page.refused_curve("computing the rate curve took too long")
    assert fig["data"] == [] and "took too long" in text_of(note)


def test_a_curve_that_never_falls_says_the_knee_is_beyond_it(served):
    doc, _ = served
    curve = evaluate_serve.rate_curve(doc, multiples=(0.25, 0.5))
    assert curve.knee() == 4.0
    fig = figures_serve.make_rate_curve_figure(curve.rates, curve.records, 8.0, curve.knee())
    assert "knee beyond 4 req/s" in fig["layout"]["annotations"][1]["text"]


def test_scheduler_switches_default_to_the_frameworks_limits():
    # the scheduler's limits are null by default (the framework's); the chunked-prefill switch's
    # "default" option is null too, and the run reports what it used
    from roofline.dashboards.codec_scalar import NULL_OPTION

    values = serve_state.values_from_controls(
        {
            "serving.scheduler.chunked_prefill": NULL_OPTION,
            "serving.scheduler.mixed_batches": NULL_OPTION,
            "serving.scheduler.max_num_seqs": "",
        }
    )
    assert values["serving.scheduler.chunked_prefill"] is None
    assert values["serving.scheduler.mixed_batches"] is None
    assert values["serving.scheduler.max_num_seqs"] is None
    doc = serve_state.to_scenario({**values, "serving.requests": 20})
    rec = roofline.serve(doc).record
    assert rec["scheduler"] == {
        "max_num_seqs": 1024,
        "max_batched_tokens": 8192,
        "chunked_prefill": True,
        "mixed_batches": True,
        "admission": "on_demand",
    }
    off = serve_state.values_from_controls({"serving.scheduler.chunked_prefill": False})
    assert serve_state.to_scenario(off)["serving"]["scheduler"]["chunked_prefill"] is False
    # SGLang's decodes wait out its prefill steps unless the switch mixes them
    apart = serve_state.values_from_controls({"serving.scheduler.mixed_batches": False})
    assert serve_state.to_scenario(apart)["serving"]["scheduler"]["mixed_batches"] is False
