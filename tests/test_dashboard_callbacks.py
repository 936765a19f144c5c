"""Dashboard logic without a browser: the Plan state (controls <-> scenario <-> URL <-> YAML), the
page callbacks called directly, uploads, the Compare and Calibration pages, and the CLI entry."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from dash import no_update
from hypothesis import given, settings
from hypothesis import strategies as st

import roofline
from roofline.api import load_scenario
from roofline.cli.main import main
from roofline.dashboards import (
    codec_controls,
    codec_query,
    codec_scenario,
    controls,
    evaluate,
    kpis,
    profiles,
    state,
    uploads,
)
from roofline.dashboards.pages import calibration, compare, plan
from roofline.simulator.methods import REGISTRY
from roofline.simulator.methods.base_method import REQUIRED
from roofline.simulator.scenario import ScenarioError
from roofline.simulator.scenario_schema import SCHEMA

CATALOG = evaluate.catalog()
ROOT = Path(__file__).resolve().parents[1]


def with_methods(*specs, **fields) -> dict:
    values = dict(state.DEFAULTS, **fields)
    values["methods"] = [state.full_method(s) for s in specs]
    return values


def data_url(text: str, mime: str = "application/octet-stream") -> str:
    return f"data:{mime};base64," + base64.b64encode(text.encode()).decode()


def text_of(component) -> str:
    """All text in a Dash component tree."""
    if component is None:
        return ""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return " ".join(text_of(c) for c in component)
    return text_of(getattr(component, "children", None))


def walk(component):
    """Every component in a tree, including components in checklist option labels."""
    if isinstance(component, (list, tuple)):
        for c in component:
            yield from walk(c)
        return
    if component is None or isinstance(component, (str, int, float)):
        return
    yield component
    yield from walk(getattr(component, "children", None))
    for option in getattr(component, "options", None) or []:
        if isinstance(option, dict):
            yield from walk(option.get("label"))


def kpi_values(cards) -> dict:
    return {c.id.removeprefix("kpi-"): c.children[1].children for c in cards}


def typed_values(array):
    """The numbers of a figure dict's array (a list, or plotly.js's base64 typed array)."""
    if isinstance(array, dict):
        return np.frombuffer(
            base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]).newbyteorder("<")
        )
    return np.asarray(array)


def run_plan(values):
    return plan.update_plan(*plan.callback_args(values))


# --- state -----------------------------------------------------------------------------------------

ROUND_TRIP = [
    dict(state.DEFAULTS),
    with_methods({"name": "kv_quant", "bits": 4}, {"name": "quest", "token_budget": 2048}),
    with_methods(
        {"name": "speculative", "draft_model": "llama-3.2-1b", "draft_tokens": 5, "acceptance_rate": 0.8},
        **{"workload.prefill_chunk_tokens": None, "pricing.usd_per_gpu_hour": 1.5, "parallelism.tp": 2},
    ),
    with_methods(
        {"name": "kv_offload", "resident_fraction": 0.25, "swap_per_request": True},
        {"name": "minference", "density": 0.05, "pattern": "a-shape"},
        **{"hardware": "a100-80gb-sxm", "dtype.kv": "fp8", "runtime.overlap": "overlap", "name": "my plan"},
    ),
    with_methods(**{"runtime.cuda_graphs": False, "runtime.custom_allreduce": True}),
    # a list field (a text box of `1, 2, 4` on the page, YAML in the URL) and a routing choice
    with_methods(**{"runtime.cuda_graph_batch_sizes": [1, 2, 4, 8, 64], "runtime.moe_routing": "balanced"}),
]


def test_switch_fields_are_dropdowns_of_true_false_and_the_default():
    # a nullable bool (runtime.cuda_graphs) was a text box, where "false" arrives as a string the
    # scenario refuses; its dropdown's choices map to False, True and null (the framework's)
    from dash import dcc

    from roofline.dashboards.codec_scalar import NULL_OPTION

    [box] = [
        c
        for c in walk(controls.field_control("runtime.cuda_graphs", None, CATALOG))
        if isinstance(c, dcc.Dropdown)
    ]
    assert [o["value"] for o in box.options] == [True, False, NULL_OPTION] and box.value == NULL_OPTION
    fields, enabled, params = codec_controls.control_values(state.DEFAULTS)
    assert fields["runtime.cuda_graphs"] == NULL_OPTION
    for choice, value in ((False, False), (True, True), (NULL_OPTION, None)):
        got = codec_controls.values_from_controls({**fields, "runtime.cuda_graphs": choice}, enabled, params)
        assert got["runtime.cuda_graphs"] is value


@pytest.mark.parametrize("values", ROUND_TRIP, ids=range(len(ROUND_TRIP)))
def test_url_round_trip(values):
    query = codec_query.to_query(values)
    back, problems = codec_query.from_query(codec_query.parse_query("?" + query), CATALOG)
    assert problems == []
    assert back == values


@pytest.mark.parametrize("values", ROUND_TRIP, ids=range(len(ROUND_TRIP)))
def test_controls_round_trip(values):
    fields, enabled, params = codec_controls.control_values(values)
    assert codec_controls.values_from_controls(fields, enabled, params) == values
    # and through the lists Dash hands the callbacks
    assert plan.values_from(*plan.callback_args(values)) == values


@pytest.mark.parametrize("values", ROUND_TRIP, ids=range(len(ROUND_TRIP)))
def test_yaml_round_trip(values):
    doc = yaml.safe_load(codec_scenario.export_yaml(values))
    back, notices = codec_scenario.from_scenario(doc, CATALOG)
    assert notices == []
    assert back == values


def test_default_url_is_empty_and_defaults_are_the_readme_example():
    assert codec_query.to_query(state.DEFAULTS) == ""
    rec = evaluate.plan_point(codec_scenario.to_scenario(state.DEFAULTS)).record
    main_example = roofline.simulate("scenarios/llama3-8b-128k-h100.yaml").records()[0]
    assert rec["ttft_s"] == main_example["ttft_s"] and rec["tpot_s"] == main_example["tpot_s"]


def test_query_is_readable():
    values = with_methods({"name": "kv_quant", "bits": 4}, **{"workload.prompt_tokens": 32768})
    assert codec_query.to_query(values) == "workload.prompt_tokens=32768&methods=kv_quant&kv_quant.bits=4"


def test_bad_url_parameters_keep_defaults_and_say_why():
    query = {
        "model": "/etc/passwd",
        "hardware": "h100",
        "workload.batch": "many",
        "workload.prompt_tokens": "1.5",
        "colour": "red",
        "methods": "kv_quant,warp_drive",
        "kv_quant.bits": "3",
        "quest.token_budget": "64",
        "kv_quant.volume": "11",
    }
    values, problems = codec_query.from_query(query, CATALOG)
    text = "\n".join(problems)
    assert values["model"] == "llama-3.1-8b" and "upload its config.json" in text
    assert values["hardware"] == "h100-sxm" and "hardware='h100'" in text
    assert values["workload.batch"] == 1 and "workload.batch='many': expected an integer" in text
    assert "workload.prompt_tokens='1.5': expected an integer" in text
    assert "'colour': unknown" in text and "warp_drive" in text
    assert "kv_quant.bits='3': expected one of 16, 8, 4, 2" in text
    assert "quest is not in methods=" in text and "no parameter 'volume'" in text
    assert [m["name"] for m in values["methods"]] == ["kv_quant"]


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from([*state.FIELD_PATHS, "methods", "kv_quant.bits", "x"]), st.text(max_size=20)
    )
)
def test_any_query_gives_a_usable_state(query):
    values, problems = codec_query.from_query(query, CATALOG)
    assert isinstance(problems, list)
    codec_scenario.to_scenario(values)  # never raises
    assert codec_query.from_query(codec_query.parse_query(codec_query.to_query(values)), CATALOG)[0] == values


def test_calibration_profile_choices(tmp_path):
    (tmp_path / "h100-sxm.yaml").write_text(PROFILE)
    cat = evaluate.catalog(tmp_path)
    path = str(tmp_path / "h100-sxm.yaml")
    assert cat["calibration"] == ["auto", "datasheet", path]
    values, problems = codec_query.from_query({"calibration": path}, cat)
    assert problems == [] and values["calibration"] == path
    _, problems = codec_query.from_query({"calibration": "/etc/passwd"}, cat)
    assert "calibration='/etc/passwd': not one of" in problems[0]
    assert "calibration folder" in codec_scenario.reference_problems({"calibration": "/etc/x.yaml"}, cat)[0]
    layout = plan.build_layout(dict(state.DEFAULTS, calibration=path), [], cat)
    (dropdown,) = [
        c for c in walk(layout) if getattr(c, "id", None) == {"type": "plan-field", "path": "calibration"}
    ]
    assert dropdown.value == path and [o["label"] for o in dropdown.options] == [
        "auto",
        "datasheet",
        "h100-sxm.yaml",
    ]


def test_uploaded_model_only_from_the_upload_folder(tmp_path):
    cfg = (ROOT / "tests" / "fixtures" / "tiny_llama_config.json").read_text()
    model_id, arch = uploads.store_config(cfg, "tiny_llama_config.json", tmp_path)
    assert model_id.startswith("tiny_llama_config-") and arch.num_layers == 2
    values, problems = codec_query.from_query({"model": "upload:" + model_id}, CATALOG, tmp_path)
    assert problems == [] and values["model"] == "upload:" + model_id
    doc = codec_scenario.to_scenario(values, tmp_path)
    assert doc["model"] == str(tmp_path / f"{model_id}.json")
    # an exported plan re-imports to the same upload id; a path elsewhere does not load
    back, notices = codec_scenario.from_scenario(doc, CATALOG, tmp_path)
    assert notices == [] and back["model"] == "upload:" + model_id
    for bad in ("upload:../../etc/passwd", "upload:missing-0000000000"):
        _, problems = codec_query.from_query({"model": bad}, CATALOG, tmp_path)
        assert "no longer on this server" in problems[0]
    assert codec_scenario.reference_problems({"model": "/etc/hosts.json"}, CATALOG, tmp_path)


# --- Plan page callbacks ---------------------------------------------------------------------------


def test_update_plan_shows_every_kpi_and_the_figures():
    alert, cards, warnings, roof, breakdown, memory, gpus, deltas, query = run_plan(state.DEFAULTS)
    assert alert is None and query == ""
    values = kpi_values(cards)
    assert set(values) == {"ttft", "tpot", "throughput", "max-batch", "max-context", "cost", "energy", "fits"}
    rec = evaluate.plan_point(codec_scenario.to_scenario(state.DEFAULTS)).record
    assert values == {item["key"]: item["value"] for item in kpis.kpi_items(rec)}
    assert values["fits"] == "yes"
    assert "Roofline" in roof["layout"]["title"]["text"] and len(roof["data"]) >= 2
    assert {t["name"] for t in breakdown["data"]} >= {"gemm", "attention_prefill", "attention_decode"}
    assert memory["layout"]["shapes"]  # the capacity line
    assert gpus.startswith("1 GPU")
    assert deltas is None  # no methods: nothing to compare against


def test_export_yaml_reproduces_the_plan_exactly(tmp_path, capsys):
    values = with_methods(
        {"name": "kv_quant", "bits": 4, "residual_tokens": 128},
        {"name": "quest", "token_budget": 4096},
        **{"workload.batch": 4, "workload.prompt_tokens": 65536, "hardware": "h200"},
    )
    *_, query = run_plan(values)
    download = plan.export_scenario(1, query)
    assert download["filename"] == "dashboard.yaml"
    exported = roofline.simulate(yaml.safe_load(download["content"])).records()
    shown = evaluate.plan_point(codec_scenario.to_scenario(values)).record
    assert exported == [shown]
    # and through the CLI, from the file
    path = tmp_path / download["filename"]
    path.write_text(download["content"])
    assert main(["simulate", str(path), "--format", "json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert cli[0]["ttft_s"] == shown["ttft_s"] and cli[0]["tpot_s"] == shown["tpot_s"]
    assert cli[0]["memory"] == shown["memory"]


def test_export_without_a_click_does_nothing():
    assert plan.export_scenario(None, "") is no_update


def test_prompt_beyond_memory_is_a_result_with_the_reason():
    alert, cards, *_ = run_plan(dict(state.DEFAULTS, **{"workload.prompt_tokens": 10_000_000}))
    assert alert is None
    card = next(c for c in cards if c.id == "kpi-fits")
    assert card.children[1].children == "no" and "kpi-bad" in card.className
    assert "needs" in card.children[2].children and "h100-sxm has 80.0 GiB" in card.children[2].children


def test_adding_a_method_changes_tpot_and_memory():
    base = kpi_values(run_plan(state.DEFAULTS)[1])
    quant = kpi_values(run_plan(with_methods({"name": "kv_quant", "bits": 4}))[1])
    assert quant["tpot"] != base["tpot"] and quant["max-batch"] != base["max-batch"]


def test_bad_scenario_shows_the_simulators_message():
    values = with_methods({"name": "h2o", "budget_tokens": 1024}, {"name": "snapkv", "budget_tokens": 1024})
    alert, cards, *_, query = run_plan(values)
    assert "cannot be combined" in text_of(alert) and cards == []
    assert "methods=h2o,snapkv" in query  # the URL still follows the controls


def test_empty_required_parameter_names_it():
    args = list(plan.callback_args(with_methods({"name": "quest", "token_budget": 4096})))
    args[4] = [
        None if i == {"type": "plan-param", "method": "quest", "param": "token_budget"} else v
        for v, i in zip(args[4], args[5])
    ]
    alert, *_ = plan.update_plan(*args)
    assert "quest needs parameter 'token_budget'" in text_of(alert)


def test_unexpected_errors_are_a_generic_message(monkeypatch, caplog):
    def boom(doc):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(evaluate, "plan_point", boom)
    alert, *_ = run_plan(state.DEFAULTS)
    text = text_of(alert)
    assert "Internal error" in text and "secret" not in text and "Traceback" not in text
    assert "secret internals" in caplog.text  # logged on the server


def test_curves_cover_1k_to_the_model_maximum_for_baseline_and_stack():
    values = with_methods({"name": "kv_quant", "bits": 4}, **{"workload.prompt_tokens": 32768})
    fig = plan.update_curves(*plan.callback_args(values))
    names = {t["name"] for t in fig["data"]}
    assert names == {"baseline", "kv_quant"}
    xs = typed_values(fig["data"][0]["x"])
    assert xs[0] == 1024 and xs[-1] == 131072 - 1024 and 32768 in xs and len(xs) >= 1000
    assert fig["layout"]["xaxis"]["type"] == "log"
    assert len(fig["data"]) == 6  # TTFT, TPOT and memory for each stack


def test_curves_with_one_sweep_per_stack(monkeypatch):
    calls = []
    real = evaluate.simulate

    def counting(doc, *a):
        calls.append(doc)
        return real(doc, *a)

    monkeypatch.setattr(evaluate, "simulate", counting)
    evaluate.context_curves(codec_scenario.to_scenario(with_methods({"name": "kv_quant", "bits": 4})))
    assert len(calls) == 2 and all(list(c["sweep"]) == ["workload.prompt_tokens"] for c in calls)


# --- uploads ---------------------------------------------------------------------------------------


def upload(kind, text, filename, values=None):
    data = {"kind": kind, "filename": filename, "contents": data_url(text), "stamp": 1}
    return plan.load_upload(data, *plan.callback_args(values or state.DEFAULTS))


def assert_unchanged(out):
    """No control changes: one no_update per wildcard output (Dash needs the lists)."""
    fields, switches, params, options, _ = out
    assert fields == [no_update] * len(state.FIELD_PATHS) and options is no_update
    assert switches == [no_update] * len(REGISTRY) and len(params) == sum(
        len(c.params) for c in REGISTRY.values()
    )
    assert all(p is no_update for p in params)


def test_bad_config_json_upload_says_why(fixtures_dir):
    out = upload("config", (fixtures_dir / "not_a_transformer_config.json").read_text(), "resnet.json")
    assert_unchanged(out)
    text = text_of(out[4])
    assert "Could not use resnet.json" in text and "not a decoder-only transformer config" in text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "a JSON object"),
        ('{"hidden_size": -1}', "positive integer"),
    ],
)
def test_malformed_config_json(text, expected):
    assert expected in text_of(upload("config", text, "config.json")[4])


def test_good_config_json_becomes_the_model(fixtures_dir, tmp_path, monkeypatch):
    folders = {"upload_dir": tmp_path, "calibration_dir": tmp_path}
    monkeypatch.setattr(plan, "settings", lambda: folders)
    monkeypatch.setattr(evaluate, "settings", lambda: folders)
    fields, _, _, options, message = upload(
        "config", (fixtures_dir / "tiny_llama_config.json").read_text(), "tiny.json"
    )
    model = fields[state.FIELD_PATHS.index("model")]
    assert model.startswith("upload:tiny-") and options[0]["value"] == model
    assert "loaded as model" in text_of(message)
    values = dict(state.DEFAULTS, model=model, **{"workload.prompt_tokens": 1024})
    alert, cards, *_ = run_plan(values)
    assert alert is None and kpi_values(cards)["fits"] == "yes"


def test_upload_limits():
    big = "x" * (uploads.MAX_UPLOAD_BYTES + 10)
    assert "1 MiB upload limit" in text_of(upload("scenario", big, "big.yaml")[4])
    # the browser refuses larger files before sending them and says so
    data = {"kind": "scenario", "filename": "huge.yaml", "error": "the file is 9999999 bytes", "stamp": 1}
    assert "huge.yaml: the file is 9999999 bytes" in text_of(
        plan.load_upload(data, *plan.callback_args(state.DEFAULTS))[4]
    )
    with pytest.raises(uploads.UploadError, match="not a text file"):
        uploads.decode_upload("data:x;base64," + base64.b64encode(b"\xff\xfe\x00").decode(), "bin")


def test_import_scenario_yaml_sets_the_controls():
    text = (ROOT / "scenarios" / "llama3-8b-1m-decode-a100-stack.yaml").read_text()
    fields, switches, params, _, message = upload("scenario", text, "stack.yaml")
    doc = yaml.safe_load(text)
    assert fields[state.FIELD_PATHS.index("hardware")] == doc["hardware"]
    on = [s[0] for s in switches if s]
    assert sorted(on) == sorted(m["name"] for m in doc["methods"])
    assert "imported" in text_of(message)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("model: [unclosed", "not valid YAML"),
        ("- a list", "must be a YAML mapping"),
        ("model: llama-3.1-8b\nhardware: h100-sxm\nworkload: {batch: -1}", "workload.batch: must be >= 1"),
        ("model: /etc/passwd\nhardware: h100-sxm", "not a zoo model"),
        ("model: llama-3.1-8b\nhardware: h100-sxm\nmethods: [{name: quantum}]", "unknown method"),
        ("!!python/object/apply:os.system ['echo hi']", "not valid YAML"),
    ],
)
def test_bad_scenario_yaml_upload_says_why(text, expected):
    out = upload("scenario", text, "bad.yaml")
    assert_unchanged(out)
    assert expected in text_of(out[4])


def test_scenario_with_a_sweep_imports_its_base_with_a_note():
    text = (ROOT / "scenarios" / "context-by-gpu-sweep.yaml").read_text()
    fields, *_, message = upload("scenario", text, "sweep.yaml")
    assert fields[state.FIELD_PATHS.index("workload.batch")] == 8
    assert "sweep: ignored" in text_of(message)


# --- generated controls ----------------------------------------------------------------------------


def control_tips(layout) -> dict:
    """{json id of each input: its label's tooltip} from the layout's control rows."""
    tips = {}
    for c in walk(layout):
        if getattr(c, "className", None) == "control":
            label, widget = c.children
            if getattr(widget, "className", None) == "dropdown-slot":  # controls.dropdown_slot
                widget = widget.children
            tips[json.dumps(widget.id, sort_keys=True)] = label.title
    return tips


def test_method_controls_for_every_registry_method_with_help():
    layout = plan.build_layout(state.DEFAULTS, [], CATALOG)
    tips = control_tips(layout)
    switches = {
        json.dumps(c.id, sort_keys=True): c
        for c in walk(layout)
        if getattr(c, "id", None) and isinstance(c.id, dict) and c.id.get("type") == "plan-method"
    }
    for name, cls in REGISTRY.items():
        switch = switches[json.dumps({"type": "plan-method", "method": name}, sort_keys=True)]
        assert cls.summary in switch.options[0]["label"].title
        for k, p in cls.params.items():
            tip = tips[json.dumps({"type": "plan-param", "method": name, "param": k}, sort_keys=True)]
            assert p.help in tip
            if p.default is REQUIRED:
                assert "required" in tip


def test_every_scenario_field_has_a_control_with_its_help():
    tips = control_tips(plan.build_layout(state.DEFAULTS, [], CATALOG))
    for path in state.FIELD_PATHS:
        assert tips[json.dumps({"type": "plan-field", "path": path}, sort_keys=True)] == SCHEMA[path].help


def test_number_inputs_leave_ranges_to_the_simulator():
    """A browser drops a number outside an input's min/max/step (the callback would see None and
    say "must not be null"), so inputs carry none and the simulator names the range."""
    layout = plan.build_layout(state.DEFAULTS, [], CATALOG)
    numbers = [c for c in walk(layout) if type(c).__name__ == "Input" and c.type == "number"]
    assert len(numbers) > 20
    for c in numbers:
        assert getattr(c, "min", None) is None and getattr(c, "max", None) is None and c.step == "any"
    alert, *_ = run_plan(dict(state.DEFAULTS, **{"workload.batch": 0}))
    assert text_of(alert) == (
        "workload.batch: must be >= 1, got 0. Concurrent sequences in the decode batch (whole deployment)."
    )


def test_every_method_enables_with_its_suggested_parameters():
    for name in REGISTRY:
        values = with_methods({"name": name, **{k: state.suggested(name, k) for k in REGISTRY[name].params}})
        if name == "triforce":  # its default draft (llama-68m) has Llama-2's tokenizer, not Llama-3's
            with pytest.raises(ScenarioError, match="needs the target's tokenizer"):
                load_scenario(codec_scenario.to_scenario(values))
            values["methods"][0]["draft_model"] = "llama-3.2-1b"
        load_scenario(codec_scenario.to_scenario(values))  # valid as suggested


def test_layout_from_a_bad_url_lists_the_problems():
    page = plan.layout(**{"workload.batch": "-", "nope": "1"})
    assert "Some URL parameters were not used" in text_of(page)


# --- Compare page ----------------------------------------------------------------------------------


def test_compare_table_and_pareto():
    alert, fig, summary, tbl = compare.update_compare(
        "workload.prompt_tokens=32768", ["h100-sxm", "h200"], 4, "dense, kv_quant", "tpot_s", None, 0.02, []
    )
    assert alert is None
    assert {t.name for t in fig.data} >= {"dense on h100-sxm", "kv_quant on h200", "Pareto front"}
    assert any(s.x0 == 20 for s in fig.layout.shapes)  # the TPOT SLA (0.02 s, as the CLI) on the ms axis
    assert "on the Pareto front" in summary
    rows = tbl.data
    assert rows and all(r["front"] == "yes" for r in rows)
    assert tbl.sort_action == "native" and tbl.export_format == "csv"
    # each row's numbers are the simulator's for that stack, hardware and layout
    doc = codec_scenario.to_scenario(dict(state.DEFAULTS, **{"workload.prompt_tokens": 32768}))
    for row in rows:
        par = {k[:2]: int(k[2:]) for k in row["layout"].split()}
        stacks, _ = state.parse_stacks(row["stack"], [])
        rec = roofline.simulate(
            dict(
                doc,
                hardware=row["hardware"],
                gpus=None,
                methods=stacks[0][1],
                parallelism=dict(doc["parallelism"], **par),
            )
        ).records()[0]
        assert row["gpus"] == rec["gpus"]
        assert row["tpot_ms"] == pytest.approx(rec["tpot_s"] * 1e3, rel=1e-3)
        assert row["ttft_s"] == pytest.approx(rec["ttft_s"], rel=1e-3)
        assert row["usd_per_m"] == pytest.approx(rec["cost"]["usd_per_million_output_tokens"], rel=1e-3)


def test_compare_bad_inputs_say_why():
    alert, *_ = compare.update_compare("", [], 0, "dense, warp", "tpot_s", -1, None, [])
    text = text_of(alert)
    assert "at least one hardware" in text and "GPU budget" in text and "unknown method 'warp'" in text
    assert "TTFT SLA: must be a positive number" in text


def test_compare_reports_a_stack_no_layout_can_run():
    alert, *_ = compare.update_compare(
        "", ["h100-sxm"], 2, "dense, h2o+snapkv", "ttft_s", None, None, ["all"]
    )
    assert "cannot be combined" in text_of(alert)


# --- Calibration page ------------------------------------------------------------------------------

PROFILE = """
profile_id: h100-sxm-test
hardware: h100-sxm
kernel_overhead_s: 4.5e-06
provenance: {device: NVIDIA H100 80GB HBM3, driver: 550.54, torch: 2.4.0, date: '2025-01-01'}
curves:
  gemm_bf16:
    fit: {e_max: 0.8, x_half: 1000.0, p: 1.5}
    residual: 0.02
    x: cbrt(m*n*k)
    source: 'gemm: bf16 GEMMs whose compute roof binds'
    points:
      - {x: 256, efficiency: 0.09}
      - {x: 1024, efficiency: 0.41}
      - {x: 4096, efficiency: 0.71}
  attention_decode:
    points: [[1024, 0.3, 0.31], [8192, 0.6, 0.58], [65536, 0.8, 0.81]]
fit_notes: {gemm_fp8: 0 usable point(s); a fit needs 4}
summary: {hbm_triad_best_Bps: 3.0e+12}
raw:
  gemm: [{m: 1024, n: 1024, k: 1024, seconds: 1.0e-05}, {m: 2048, n: 2048, k: 2048, seconds: 5.0e-05}]
  launch: []
collectives:
  nvlink:
    provenance: {backend: nccl, world_size: 8}
    ops:
      all_reduce:
        latency_steps: 14
        busbw_factor: 1.75
        points:
          - {bytes: 1024, seconds: 3.9e-05}
          - {bytes: 1048576, seconds: 4.5e-05}
          - {bytes: 67108864, seconds: 3.0e-04}
        fit: {alpha_s: 2.5e-06, beta_Bps: 4.3e+11, residual: 0.04}
      reduce_scatter: {skipped: 'gloo: not supported'}
"""


def test_calibration_page_shows_profiles_and_reports(tmp_path):
    cal, val = tmp_path / "calibration", tmp_path / "validation"
    cal.mkdir()
    val.mkdir()
    (cal / "h100-sxm.yaml").write_text(PROFILE)
    (cal / "broken.yaml").write_text("curves: [unclosed")
    (val / "llama.json").write_text(
        json.dumps(
            {
                "provenance": {"gpu": "H100"},
                "points": [{"name": "prefill 4K", "measured_s": 0.1, "predicted_s": 0.11}],
            }
        )
    )
    page = calibration.build_layout(cal, val)
    text = text_of(page)
    assert "h100-sxm.yaml" in text and "driver" in text and "550.54" in text and "nccl" in text
    assert re.search(r"broken\.yaml:\d+:\d+: not valid YAML", text)  # the file, line and column
    assert "reduce_scatter: skipped" in text
    graphs = [c for c in walk(page) if type(c).__name__ == "Graph"]
    titles = [g.figure.layout.title.text for g in graphs]
    assert titles == [
        "curves / gemm_bf16",
        "curves / attention_decode",
        "collectives / nvlink / ops / all_reduce",
        "llama",
    ]
    # collective fitted times come from the alpha-beta fit: 14 * alpha + 1.75 * S / beta
    # fitted curves are the defining code's: the simulator's e_max / (1 + (x_half / x)^p) ...
    gemm = graphs[0].figure.data
    assert gemm[1].y[0] == pytest.approx(0.8 / (1 + (1000 / 256) ** 1.5)) and len(gemm[1].x) > 3
    assert gemm[2].y[1] == pytest.approx((0.41 / (0.8 / (1 + (1000 / 1024) ** 1.5)) - 1) * 100)
    # ... and the collectives' 14 alpha + 1.75 S / beta (residuals of the measured points)
    fitted = 14 * 2.5e-06 + 1.75 * 1024 / 4.3e11
    assert graphs[2].figure.data[2].y[0] == pytest.approx((3.9e-05 / fitted - 1) * 100)
    assert "kernel_overhead_s" in text and "4.5e-06" in text
    assert graphs[0].figure.layout.xaxis2.title.text == "cbrt(m*n*k)"  # the profile names its x
    assert "gemm_fp8" in text and "0 usable point(s)" in text and "hbm_triad_best_Bps" in text
    assert "gemm: 2 points, launch: 0 points" in text
    assert "+10.0%" in text


def test_calibration_page_indexes_the_shipped_profiles_and_draws_one(tmp_path):
    # 18 shipped profiles hold ~500 fits: the page lists them all and draws the one chosen
    from roofline.hwspecs import CALIBRATION_DIR

    shipped = sorted(p.name for p in CALIBRATION_DIR.glob("*.yaml"))
    page = calibration.build_layout(CALIBRATION_DIR, tmp_path)
    (index,) = [c for c in walk(page) if getattr(c, "id", None) == "profile-index"]
    rows = [r for r in walk(index) if type(r).__name__ == "Tr"][1:]
    assert [text_of(r.children[0]) for r in rows] == shipped
    assert text_of(rows[0]).count("aiconfigurator-core") == 1 and "NVIDIA A100-SXM4-80GB" in text_of(rows[0])
    assert [r.className for r in rows].count("selected") == 1 and rows[0].className == "selected"
    titles = {g.figure.layout.title.text for g in walk(page) if type(g).__name__ == "Graph"}
    sections = [c for c in walk(page) if type(c).__name__ == "Section"]
    assert [s.id for s in sections] == [f"profile-{shipped[0]}"]
    assert "grids / gemm_bf16" in titles and "grids / moe_bf16" in titles

    chosen = calibration.build_layout(CALIBRATION_DIR, tmp_path, "h200.trtllm.yaml")
    sections = [c for c in walk(chosen) if type(c).__name__ == "Section"]
    assert [s.id for s in sections] == ["profile-h200.trtllm.yaml"]
    assert "TensorRT-LLM" in text_of(sections[0]) or "trtllm" in text_of(sections[0])

    # a name that is not listed (a crafted path included) opens nothing: a message, and the default
    page = calibration.build_layout(CALIBRATION_DIR, tmp_path, "../../etc/passwd")
    text = text_of(page)
    assert "no such profile here" in text and "h100-sxm.vllm.yaml" in text
    assert [s.id for s in walk(page) if type(s).__name__ == "Section"] == [f"profile-{shipped[0]}"]


def test_calibration_page_reads_roofline_validate_reports(tmp_path):
    from roofline.profilers.validate_report import point, summarize, write_report

    points = [
        point("ttft_s", {"prompt_tokens": 4096, "batch": 1}, 0.40, 0.36),
        point("tpot_s", {"prompt_tokens": 4096, "batch": 1}, 0.010, 0.011),
        point("tpot_s", {"prompt_tokens": 65536, "batch": 1}, 0.012, None),  # no finite prediction
    ]
    report = {
        "provenance": {
            "model": "llama-3.2-1b",
            "hardware": "h100-sxm",
            "date": "2026-01-01",
            "notes": ["n1"],
        },
        "points": points,
        "summary": summarize(points),
    }
    write_report(report, tmp_path)
    page = calibration.build_layout(tmp_path / "none", tmp_path)
    text = text_of(page)
    assert "llama-3.2-1b on h100-sxm (2026-01-01)" in text
    assert "prompt_tokens=4096 batch=1" in text and "-10.0%" in text and "+10.0%" in text
    assert "ttft_s.median_abs_error" in text
    (graph,) = [c for c in walk(page) if type(c).__name__ == "Graph"]
    assert [t.name for t in graph.figure.data] == ["predicted = measured", "ttft_s", "tpot_s"]


def test_no_calibration_profiles_message(tmp_path):
    text = text_of(calibration.build_layout(tmp_path / "none", tmp_path / "none"))
    assert "No calibration profiles yet" in text and "roofline calibrate" in text


def test_profiles_tolerate_odd_shapes():
    walked = profiles.walk_profile(
        {"curves": {"gemm": {"points": [{"m": 1, "eff": 0.5}, "junk", {"m": 2}]}, "x": {"points": []}}}
    )
    (curve,) = walked["curves"]
    assert curve["x"] == [1] and curve["measured"] == [0.5]
    assert walked["notes"] == ["curves / x: no numeric points"]
    assert (
        profiles.validation_points([{"phase": "decode", "measured": 2, "predicted": 1}])[0]["label"]
        == "decode"
    )


def test_grid_summary_names_cells_holdout_and_row_tile():
    grids = {
        "gemm_fp8": {
            "axes": ["log2_m", "log2_n", "log2_k"],
            "shape": [31, 12, 12],
            "holdout": {"median": 0.037, "p90": 0.145, "rows": 7104},
            "m_tile": 256,
        },
        "attention_decode": {"axes": ["a"], "shape": [3]},
        "moe_bf16": {"axes": ["a"], "shape": [2], "call_s": 2.15e-05, "shapes": [{}, {}, {}]},
    }
    (gemm, gemm_text), (_, decode_text), (_, moe_text) = profiles.grid_summary(grids)
    assert gemm == "gemm_fp8" and "31 x 12 x 12 cells" in gemm_text
    assert "median 3.7%, p90 14.5% (7104 kernels)" in gemm_text and "tiles of 256" in gemm_text
    assert "tiles" not in decode_text and "held-out" not in decode_text and "per call" not in decode_text
    assert "fixed time per call 21.5 us" in moe_text
    assert "3 measured model shapes priced as measured" in moe_text
    assert "measured model shapes" not in gemm_text


def test_calibration_page_draws_a_grids_measured_shapes(tmp_path):
    # an imported profile keeps a sample of the shapes each grid was fitted to: (first axis,
    # measured attainment, the grid's value); the page draws them as it draws a curve's points
    grid = {
        "axes": ["log2_m", "log2_n", "log2_k"],
        "shape": [1, 1, 1],
        "start": [0.0, 0.0, 0.0],
        "step": [1.0, 1.0, 1.0],
        "attainment": [0.5],
        "x": "log2_m",
        "points": [[4.0, 0.4, 0.5], [10.0, 0.55, 0.5]],
    }
    (tmp_path / "h100-sxm.yaml").write_text(yaml.safe_dump({"profile_id": "p", "grids": {"gemm_bf16": grid}}))
    page = calibration.build_layout(tmp_path, tmp_path)
    (graph,) = [c for c in walk(page) if type(c).__name__ == "Graph"]
    assert graph.figure.layout.title.text == "grids / gemm_bf16"
    residual = next(t for t in graph.figure.data if t.name == "residual")
    assert list(residual.y) == pytest.approx([(0.4 / 0.5 - 1) * 100, (0.55 / 0.5 - 1) * 100])


# --- app and CLI -----------------------------------------------------------------------------------


def test_app_serves_every_page(tmp_path):
    from roofline.dashboards.app import create_app

    app = create_app(calibration_dir=tmp_path, validation_dir=tmp_path, upload_dir=tmp_path)
    client = app.server.test_client()
    for path in ("/", "/compare", "/calibration", "/?workload.batch=oops"):
        assert client.get(path).status_code == 200
    assert client.get("/_dash-layout").status_code == 200
    deps = client.get("/_dash-dependencies").get_json()
    assert len(deps) >= 8


def test_dashboard_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["dashboard", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--host" in out and "--port" in out and "127.0.0.1" in out


def test_dashboard_rejects_a_bad_port(capsys):
    assert main(["dashboard", "--port", "0"]) == 2
    assert "--port 0" in capsys.readouterr().err


def test_simulate_never_imports_dash():
    code = (
        "import sys; from roofline.cli.main import main; "
        "rc = main(['simulate', 'scenarios/llama3-8b-4k-h100.yaml', '--format', 'json']); "
        "assert rc == 0; assert 'dash' not in sys.modules and 'flask' not in sys.modules, 'dash imported'"
    )
    root = ROOT
    proc = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# --- plans that do not fit; the stack against the dense baseline ----------------------------------


def cards_by_key(cards) -> dict:
    return {c.id.removeprefix("kpi-"): c for c in cards}


def test_a_plan_that_does_not_fit_is_marked_not_shown_as_numbers():
    values = dict(state.DEFAULTS, **{"workload.prompt_tokens": 1_048_576})
    rec = roofline.simulate(codec_scenario.to_scenario(values)).records()[0]
    assert not rec["fits"]
    _, cards, *_ = run_plan(values)
    cards = cards_by_key(cards)
    for key in kpis.RUN_KPIS:
        card = cards[key]
        assert "kpi-infeasible" in card.className and "does not fit" in text_of(card), key
    for key in ("max-batch", "max-context", "fits"):
        assert "kpi-infeasible" not in cards[key].className
    assert cards["fits"].children[1].children == "no"
    roof, breakdown = run_plan(values)[3:5]
    for fig in (roof, breakdown):  # the charts of the plan say so too
        assert "does not fit in memory" in fig["layout"]["title"]["text"]
    assert "does not fit" not in run_plan(state.DEFAULTS)[3]["layout"]["title"]["text"]
    # the curves: past the point where memory runs out, a separate "does not fit" trace
    curves = plan.update_curves(*plan.callback_args(values))
    names = [t["name"] for t in curves["data"]]
    assert names.count("baseline") == 3 and names.count("baseline: does not fit") == 3
    fit_ttft, nofit_ttft = (typed_values(t["y"]) for t in curves["data"][:2])
    xs = typed_values(curves["data"][0]["x"])
    sweep = roofline.simulate(
        dict(codec_scenario.to_scenario(values), sweep={"workload.prompt_tokens": [int(x) for x in xs]})
    ).columns
    fits = np.asarray(sweep["fits"], dtype=bool)
    assert fits.any() and not fits.all()
    assert np.isnan(fit_ttft[~fits]).all() and np.allclose(fit_ttft[fits], np.asarray(sweep["ttft_s"])[fits])
    assert np.allclose(nofit_ttft[~fits], np.asarray(sweep["ttft_s"])[~fits])


def compare_cli(values: dict, stack: str, tmp_path, capsys) -> dict:
    """`roofline compare --format json` on the plan's exported YAML: {stack: record}."""
    path = tmp_path / "plan.yaml"
    path.write_text(codec_scenario.export_yaml(values))
    assert main(["compare", str(path), "--methods", stack, "--format", "json"]) == 0
    return {r["stack"]: r for r in json.loads(capsys.readouterr().out)}


def test_plan_shows_the_stack_against_the_dense_baseline_as_compare_does(tmp_path, capsys):
    values = with_methods(
        {"name": "kv_quant", "bits": 4}, {"name": "quest", "token_budget": 4096}, **{"workload.batch": 2}
    )
    *_, deltas, _ = run_plan(values)
    assert "kv_quant+quest vs the dense baseline" in text_of(deltas)
    shown = kpi_values(deltas[1].children)
    cli = compare_cli(values, "kv_quant+quest", tmp_path, capsys)
    dense, stack = cli["dense"], cli["kv_quant+quest"]
    assert shown["delta-ttft"] == f"x{stack['ttft_speedup']:.2f}"
    assert shown["delta-tpot"] == f"x{stack['tpot_speedup']:.2f}"
    assert stack["tpot_speedup"] > 1  # a 4-bit KV cache and sparse reads speed decode up
    saved = (dense["memory"]["total_bytes"] - stack["memory"]["total_bytes"]) / 2**30
    assert saved > 0 and shown["delta-memory"] == f"saves {saved:.1f} GiB"
    usd = dense["cost"]["usd_per_million_output_tokens"] - stack["cost"]["usd_per_million_output_tokens"]
    assert shown["delta-cost"] == ("saves " if usd >= 0 else "costs ") + f"${abs(usd):,.4g}"
    assert shown["delta-max-batch"] == f"{dense['max_batch']:,} -> {stack['max_batch']:,}"


def test_deltas_mark_a_baseline_that_does_not_fit():
    # 600K tokens of bf16 KV (~73 GiB) + 15 GiB of weights overflow an 80 GiB H100; 4-bit KV fits
    values = with_methods({"name": "kv_quant", "bits": 4}, **{"workload.prompt_tokens": 600_000})
    _, cards, *_, deltas, _ = run_plan(values)
    assert all("kpi-infeasible" not in c.className for c in cards)  # the plan itself fits
    by_key = cards_by_key(deltas[1].children)
    for key in ("delta-ttft", "delta-tpot", "delta-cost"):
        assert "kpi-infeasible" in by_key[key].className
        assert "the dense baseline does not fit in memory" in text_of(by_key[key])
    assert "kpi-infeasible" not in by_key["delta-memory"].className
    assert text_of(by_key["delta-memory"]).startswith("Memory / GPU saves")


# --- Compare: a context range on several GPUs, and the batch axis ----------------------------------

RANGE_HW = ["h100-sxm", "h200", "b200"]


def traces_named(fig: dict, name: str) -> list:
    return [t for t in fig["data"] if t["name"] == name]


def test_context_range_on_three_gpus_matches_simulate():
    alert, fig, _ = compare.update_range("workload.prompt_tokens=32768", RANGE_HW, "dense", 32, 1024)
    assert alert is None
    ttft, tpot, cost = traces_named(fig, "h200 / dense")  # one trace per row: TTFT, TPOT, $/M
    xs = [int(x) for x in typed_values(ttft["x"])]
    assert xs[0] == 32768 and xs[-1] == 1048576 and len(xs) == 16
    assert fig["layout"]["xaxis3"]["ticktext"] == ["32K", "64K", "128K", "256K", "512K", "1M"]
    doc = codec_scenario.to_scenario(dict(state.DEFAULTS, **{"workload.prompt_tokens": 32768}))
    recs = roofline.simulate(dict(doc, hardware="h200", sweep={"workload.prompt_tokens": xs})).records()
    fits = np.array([r["fits"] for r in recs])
    assert fits[0] and not fits[-1]  # llama-3.1-8b's 1M-token KV cache overflows 141 GB
    for trace, key, scale in ((ttft, "ttft_s", 1), (tpot, "tpot_s", 1e3)):
        expected = np.array([r[key] * scale for r in recs])
        assert np.allclose(typed_values(trace["y"])[fits], expected[fits])
        assert np.isnan(typed_values(trace["y"])[~fits]).all()  # never drawn as an ordinary point
    usd = np.array([r["cost"]["usd_per_million_output_tokens"] for r in recs])
    assert np.allclose(typed_values(cost["y"])[fits], usd[fits])
    nofit = traces_named(fig, "h200 / dense: does not fit")
    assert len(nofit) == 3 and np.allclose(
        typed_values(nofit[0]["y"])[~fits], [r["ttft_s"] for r in recs if not r["fits"]]
    )
    assert {t["name"] for t in fig["data"] if t["showlegend"]} >= {f"{hw} / dense" for hw in RANGE_HW}


def test_batch_axis_runs_to_the_max_batch_with_simulated_cost():
    _, _, fig = compare.update_range("workload.prompt_tokens=32768", RANGE_HW, "dense, kv_quant", 32, 1024)
    doc = codec_scenario.to_scenario(dict(state.DEFAULTS, **{"workload.prompt_tokens": 32768}))
    one = roofline.simulate(dict(doc, hardware="b200")).records()[0]
    assert one["max_batch"] > 8
    tpot, cost = traces_named(fig, f"b200 / dense (max batch {one['max_batch']})")
    batches = [int(b) for b in typed_values(tpot["x"])]
    assert batches[0] == 1 and batches[-1] == one["max_batch"] and batches[1:4] == [2, 4, 8]
    recs = roofline.simulate(dict(doc, hardware="b200", sweep={"workload.batch": batches})).records()
    assert all(r["fits"] for r in recs)
    assert np.allclose(typed_values(tpot["y"]), [r["tpot_s"] * 1e3 for r in recs])
    usd = [r["cost"]["usd_per_million_output_tokens"] for r in recs]
    assert np.allclose(typed_values(cost["y"]), usd) and usd[-1] < usd[0]  # batching is cheaper per token
    assert any(t["name"].startswith("h100-sxm / kv_quant (max batch") for t in fig["data"])


def test_context_range_bad_inputs_say_why():
    alert, fig, batch = compare.update_range("", [], "dense, warp", 0, "lots")
    text = text_of(alert)
    assert "at least one hardware" in text and "context from: give 1..16384 K tokens" in text
    assert "context to: give" in text and "unknown method 'warp'" in text
    assert fig["layout"]["annotations"][0]["text"] == "nothing to show yet"
    alert, *_ = compare.update_range("", ["h200", "/etc/passwd"] * 500, "dense", 32, 64)
    assert text_of(alert) == "hardware: choose from the list"
    alert, *_ = compare.update_range("", ["h200"], "dense", 512, 64)
    assert "'from' (512K) must be below 'to' (64K)" in text_of(alert)


def test_batch_axis_says_when_nothing_fits_at_batch_one():
    _, _, fig = compare.update_range("workload.prompt_tokens=1048576", ["h100-sxm"], "dense", 32, 64)
    assert "does not fit in memory even at batch 1" in fig["layout"]["annotations"][0]["text"]


# --- saved plans -----------------------------------------------------------------------------------


def test_saved_plans_are_recomputed_and_a_plan_that_does_not_fit_has_no_numbers():
    fits_query = codec_query.to_query(dict(state.DEFAULTS, **{"workload.prompt_tokens": 65536}))
    big_query = codec_query.to_query(dict(state.DEFAULTS, **{"workload.prompt_tokens": 1_048_576}))
    stored, message = plan.save_plan("plan-save", 1, fits_query, None)
    assert message is None and len(stored) == 1
    stored, _ = plan.save_plan("plan-save", 2, big_query, stored)
    stored, _ = plan.save_plan("plan-save", 3, fits_query, stored)  # the same plan again: kept once
    assert [r["query"] for r in stored] == [big_query, fits_query]
    # the browser's copy is not trusted: numbers come from its query, through roofline.simulate
    stored[1]["tpot_ms"] = 0.001
    rows = plan.show_saved(stored + [{"query": 5}, "junk"])
    assert len(rows) == 2
    rec = roofline.simulate(
        codec_scenario.to_scenario(dict(state.DEFAULTS, **{"workload.prompt_tokens": 65536}))
    )
    rec = rec.records()[0]
    good = rows[1]
    assert good["fits"] == "yes" and good["tpot_ms"] == pytest.approx(rec["tpot_s"] * 1e3, rel=1e-3)
    assert good["usd_per_m"] == pytest.approx(rec["cost"]["usd_per_million_output_tokens"], rel=1e-3)
    assert good["max_batch"] == rec["max_batch"] and good["open"] == f"[open](/?{fits_query})"
    bad = rows[0]
    assert bad["fits"] == "does not fit"
    assert all(bad[c] is None for c in ("ttft_s", "tpot_ms", "usd_per_m", "tok_s_gpu"))
    assert plan.save_plan("plan-saved-clear", 3, fits_query, stored) == ([], None)


def test_saving_a_bad_plan_says_why_and_the_table_link_is_plain():
    stored, message = plan.save_plan("plan-save", 1, "workload.batch=0", [])
    assert stored is no_update and "workload.batch: must be >= 1" in text_of(message)
    from roofline.dashboards import saved

    assert (
        saved.link("name=a)[x](javascript:alert(1)")
        == "[open](/?name=a%29%5Bx%5D%28javascript%3Aalert%281%29)"
    )
    assert len(saved.save([{"query": f"workload.batch={b}"} for b in range(1, 40)], "")) == saved.MAX_SAVED


def test_sla_far_from_the_points_does_not_stretch_the_pareto_axis():
    args = ("workload.prompt_tokens=32768", ["h100-sxm"], 2, "dense", "tpot_s", None)
    _, near, *_ = compare.update_compare(*args, 0.01, [])
    _, far, *_ = compare.update_compare(*args, 100.0, [])  # 100 s per token: far right of every point
    assert near.layout.xaxis.range[0] <= np.log10(10) <= near.layout.xaxis.range[1]  # the line, in ms
    assert any(s.x0 == 10 for s in near.layout.shapes)
    none = compare.update_compare(*args, None, [])[1]
    assert tuple(far.layout.xaxis.range) == tuple(none.layout.xaxis.range)  # the same as without an SLA
    assert not far.layout.shapes and "TPOT SLA 100 s (100000 ms) →" in far.layout.annotations[0].text


# --- the Plan's roofline ---------------------------------------------------------------------------


def roofline_of(values):
    return run_plan(values)[3]


def test_communication_ops_are_drawn_as_such_and_kind_colours_are_stable():
    from roofline.dashboards import figures_roofline

    one = roofline_of(state.DEFAULTS)
    two = roofline_of(dict(state.DEFAULTS, **{"parallelism.tp": 2}))
    comm = [t for t in two["data"] if t.get("name") == "comm"]
    assert comm and all(set(t["marker"]["symbol"]) <= {"x", "x-open"} for t in comm)
    assert all(t["marker"]["color"] == figures_roofline.KIND_COLOURS["comm"] for t in comm)
    assert any("attn_allreduce (comm), communication-bound" in text for t in comm for text in t["text"])
    assert not [t for t in one["data"] if t.get("name") == "comm"]
    colour = [{t["name"]: t["marker"]["color"] for t in f["data"] if "marker" in t} for f in (one, two)]
    assert (
        colour[0]["gemm"] == colour[1]["gemm"]
        and colour[0]["attention_decode"] == colour[1]["attention_decode"]
    )


def test_overhead_bound_ops_are_marked():
    from roofline.dashboards import figures_roofline

    point = evaluate.plan_point(codec_scenario.to_scenario(state.DEFAULTS))
    hw = point.hardware
    norm = next(o for o in point.decode_ops if o["name"] == "input_norm")
    attained = norm["flops"] / norm["time_s"]
    roof = min(hw.peak("bf16"), norm["intensity"] * hw.memory_bandwidth)
    assert attained < 0.5 * roof  # a decode norm is mostly kernel launches
    assert figures_roofline.op_bound(norm, hw.peak("bf16"), hw.memory_bandwidth) == "overhead"
    fig = roofline_of(state.DEFAULTS)
    assert any(
        "input_norm (norm), overhead-bound" in text for t in fig["data"] for text in t.get("text") or []
    )


SIMULATABLE_PROFILE = """
profile_id: h100-sxm-test
hardware: h100-sxm
kernel_overhead_s: 4.5e-06
provenance: {device: NVIDIA H100 80GB HBM3 (synthetic test profile), driver: 550.54.15, date: '2025-01-01'}
curves:
  gemm_bf16:
    fit: {e_max: 0.8, x_half: 900.0, p: 1.6}
    residual: 0.03
    points:
      - {x: 256, efficiency: 0.11}
      - {x: 1024, efficiency: 0.46}
      - {x: 4096, efficiency: 0.73}
      - {x: 16384, efficiency: 0.80}
"""


def test_calibrated_ceiling_comes_from_the_profile(tmp_path):
    (tmp_path / "h100-sxm.yaml").write_text(SIMULATABLE_PROFILE)
    doc = codec_scenario.to_scenario(dict(state.DEFAULTS, calibration=str(tmp_path / "h100-sxm.yaml")))
    hw = evaluate.load_hardware("h100-sxm")
    datasheet, calibrated = evaluate.ceilings(doc, hw)
    assert datasheet.kind == "datasheet" and datasheet.peak == hw.peak("bf16")
    assert calibrated.kind == "calibrated" and calibrated.label.startswith("calibrated (h100-sxm-test)")
    attainable = evaluate.ceilings(codec_scenario.to_scenario(dict(state.DEFAULTS)), hw)[1]
    assert attainable.kind == "attainable" and calibrated.peak != attainable.peak
    assert calibrated.peak <= 0.8 * hw.peak("bf16") + 1  # the profile's GEMM curve tops out at e_max 0.8


def test_a_list_field_reads_its_text_box_and_names_bad_text():
    fields, enabled, params = codec_controls.control_values(state.DEFAULTS)
    for text, want in (("1, 2, 4", [1, 2, 4]), ("[8, 16]", [8, 16]), ("", None)):
        got = codec_controls.values_from_controls(
            {**fields, "runtime.cuda_graph_batch_sizes": text}, enabled, params
        )
        assert got["runtime.cuda_graph_batch_sizes"] == want
    bad = codec_controls.values_from_controls(
        {**fields, "runtime.cuda_graph_batch_sizes": "1, two"}, enabled, params
    )
    from roofline.api import ScenarioError

    with pytest.raises(ScenarioError, match="runtime.cuda_graph_batch_sizes: must be a list of batch sizes"):
        roofline.simulate(codec_scenario.to_scenario(bad))
    values, problems = codec_query.from_query({"runtime.cuda_graph_batch_sizes": "[0, 4]"}, CATALOG)
    assert values["runtime.cuda_graph_batch_sizes"] is None and "must be a list of batch sizes" in problems[0]
