"""The Plan page's figures are plain dicts in plotly's own `Figure.to_dict()` form: plotly accepts
them as they are (no property it would reject or rewrite), and they carry the traces, labels,
lines and numbers the graph-object builders gave (checked field by field for one plan with a
method stack and fp8 activations, which adds the second roof and the stack's curves)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_dashboard_callbacks import typed_values, with_methods

from roofline.dashboards import codec_scenario, evaluate, figures, figures_roofline, state
from roofline.dashboards.pages import plan
from roofline.report import figures as report_figures

go = pytest.importorskip("plotly.graph_objects")

VALUES = with_methods(
    {"name": "kv_quant", "bits": 4}, **{"dtype.activations": "fp8", "workload.prompt_tokens": 5000}
)


def canonical(fig: dict) -> dict:
    return json.loads(json.dumps(fig, sort_keys=True))


@pytest.fixture(scope="module")
def plan_figures():
    out = plan.update_plan(*plan.callback_args(VALUES))
    assert out[0] is None
    roof, breakdown, memory = out[3:6]
    curves = plan.update_curves(*plan.callback_args(VALUES))
    point = evaluate.plan_point(codec_scenario.to_scenario(VALUES))
    return {"roof": roof, "breakdown": breakdown, "memory": memory, "curves": curves, "point": point}


@pytest.mark.parametrize("name", ["roof", "breakdown", "memory", "curves"])
def test_plotly_takes_the_dict_unchanged(plan_figures, name):
    fig = plan_figures[name]
    assert set(fig) == {"data", "layout"}
    assert fig["layout"]["template"] == go.Figure().to_dict()["layout"]["template"]
    assert canonical(go.Figure(fig).to_dict()) == canonical(fig)  # valid, and already canonical


def test_message_figure_is_plotlys_own():
    text = "<b>no</b> result"
    old = go.Figure()
    old.add_annotation(text=figures.plain(text), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    old.update_layout(xaxis={"visible": False}, yaxis={"visible": False}, height=260)
    assert canonical(figures.message_figure(text)) == canonical(old.to_dict())
    assert "<b>" not in json.dumps(figures.message_figure(text))


def test_roofline_ceilings_ridge_and_ops(plan_figures):
    fig, point = plan_figures["roof"], plan_figures["point"]
    hw = point.hardware
    names = [t["name"] for t in fig["data"][:3]]
    assert names == [
        "datasheet bf16: 989 TFLOP/s",
        "datasheet fp8: 1979 TFLOP/s",
        "attainable (datasheet efficiencies): 70% of peak, 89% of HBM",
    ]
    x = typed_values(fig["data"][0]["x"])
    assert x == pytest.approx(np.logspace(-2, 5, 200))
    assert typed_values(fig["data"][0]["y"]) == pytest.approx(
        np.minimum(hw.peak("bf16"), x * hw.memory_bandwidth)
    )
    assert typed_values(fig["data"][1]["y"]) == pytest.approx(
        np.minimum(hw.peak("fp8"), x * hw.memory_bandwidth)
    )
    ridge = [s for s in fig["layout"]["shapes"] if s["type"] == "line"][0]
    assert ridge["x0"] == pytest.approx(hw.ridge_point)
    assert any(a["text"] == f"ridge {hw.ridge_point:.0f} FLOP/B" for a in fig["layout"]["annotations"])
    # every prefill op with FLOPs and bytes sits at (its intensity, its FLOPs / its time)
    ops = [t for t in fig["data"][3:] if "prefill" in t["text"][0]]
    placed = {(x, y) for t in ops for x, y in zip(t["x"], t["y"])}
    for o in point.prefill_ops:
        if o["flops"] > 0 and o["bytes"] > 0:
            assert (o["intensity"], o["flops"] / o["time_s"]) in placed
    gemm = next(t for t in ops if t["name"] == "gemm")
    assert gemm["marker"]["color"] == figures_roofline.KIND_COLOURS["gemm"]
    hover = gemm["text"][0]
    assert "FLOPs" in hover and "bytes" in hover and "FLOP/s" in hover and "B/s" in hover and "time" in hover
    layout = fig["layout"]
    assert layout["xaxis"] == {"type": "log", "title": {"text": "arithmetic intensity (FLOP/byte)"}}
    assert layout["title"]["text"].startswith("Roofline: llama-3.1-8b on h100-sxm<br>")


def test_breakdown_and_memory(plan_figures):
    rec = plan_figures["point"].record
    bars = plan_figures["breakdown"]["data"]
    kinds = sorted(set(rec["prefill"]["breakdown"]) | set(rec["decode"]["breakdown"]))
    assert [t["name"] for t in bars] == [k for k in kinds for _ in (0, 1)]
    assert [t["xaxis"] for t in bars] == ["x", "x2"] * len(kinds)
    assert bars[1]["y"] == [rec["decode"]["breakdown"].get(kinds[0], 0.0) * 1e3]
    layout = plan_figures["breakdown"]["layout"]
    assert [a["text"] for a in layout["annotations"]] == ["prefill<br>(TTFT, s)", "decode step<br>(TPOT, ms)"]
    assert all(t["marker"]["color"] == figures_roofline.KIND_COLOURS[t["name"]] for t in bars)
    assert layout["xaxis"]["domain"] == [0.0, 0.45] and layout["xaxis2"]["domain"] == [0.55, 1.0]
    assert layout["title"] == {"text": "Time by op kind", "font": {"size": 14}}
    memory = plan_figures["memory"]
    assert [t["name"] for t in memory["data"]] == ["weights", "kv_cache", "activation", "overhead"]
    capacity = rec["memory"]["capacity_bytes"] / 2**30
    assert memory["layout"]["shapes"][0]["y0"] == capacity
    assert memory["layout"]["annotations"][0]["text"] == "capacity"


def test_curves(plan_figures):
    fig = plan_figures["curves"]
    assert [(t["name"], t["xaxis"], t["showlegend"]) for t in fig["data"]] == [
        (name, axis, axis == "x") for name in ("baseline", "kv_quant") for axis in ("x", "x2", "x3")
    ]
    prompts = evaluate.curve_prompts(codec_scenario.to_scenario(VALUES))
    assert (typed_values(fig["data"][0]["x"]) == prompts).all()
    layout = fig["layout"]
    assert [a["text"] for a in layout["annotations"]] == [
        "TTFT (s)",
        "TPOT (ms)",
        "memory per GPU (GiB)",
        "capacity",
    ]
    assert [(s["xref"], s["x0"]) for s in layout["shapes"][1:]] == [("x", 5000), ("x2", 5000), ("x3", 5000)]
    assert layout["yaxis"]["domain"] == pytest.approx([0.7066666666666667, 1.0])
    # 1-2-5 ticks spanning the plotted TTFTs, labelled in full
    ttft = np.concatenate([typed_values(t["y"]) for t in fig["data"] if t["yaxis"] == "y"])
    ttft = ttft[np.isfinite(ttft)]
    ticks = layout["yaxis"]["tickvals"]
    assert layout["yaxis"]["type"] == "log" and layout["yaxis"]["ticktext"] == [f"{t:.10g}" for t in ticks]
    assert ttft.min() / 1.05 <= ticks[0] <= 2.5 * ttft.min() and ticks[-1] <= ttft.max() * 1.05
    assert layout["xaxis"]["matches"] == "x3" and layout["xaxis3"]["title"] == {"text": "prompt tokens"}


def test_report_html_still_renders_the_dicts(plan_figures):
    point = plan_figures["point"]
    page = report_figures.make_report_html(point.hardware, point.record, point.prefill_ops, point.decode_ops)
    assert page.count('class="plotly-graph-div"') == 3 and "Time by op kind" in page


def test_plan_updates_build_no_graph_objects(monkeypatch):
    """Building and validating graph objects was most of an update's server time."""
    built = []
    real = go.Figure.__init__
    monkeypatch.setattr(go.Figure, "__init__", lambda self, *a, **k: built.append(1) or real(self, *a, **k))
    args = plan.callback_args(dict(VALUES, **{"workload.prompt_tokens": 6000}))
    plan.update_plan(*args)
    plan.update_curves(*args)
    plan.update_plan(*plan.callback_args(dict(state.DEFAULTS, model="no-such-model")))  # the error path
    assert built == []


def test_clicking_an_op_shows_its_layers(plan_figures):
    # A click on the roofline's attention point (Plotly clickData carries the trace's customdata):
    # one bar per layer group, at the op table's time per layer; an op of the model's edges or no
    # click says so instead.
    point = plan_figures["point"]
    trace = next(t for t in plan_figures["roof"]["data"] if t.get("name") == "attention_prefill")
    custom = trace["customdata"][0]
    assert custom[0] == "attention" and custom[1] == "prefill"
    fig = figures_roofline.make_layers_figure({"points": [{"customdata": custom}]})
    (bars,) = fig["data"]
    row = next(o for o in point.prefill_ops if o["name"] == "attention" and o["kind"] == "attention_prefill")
    assert bars["y"] == [g["group"] for g in row["layers"]] == ["gqa+dense"]
    assert bars["x"] == pytest.approx([g["time_per_layer_s"] * 1e3 for g in row["layers"]])
    assert bars["x"][0] == pytest.approx(row["time_s"] / 32 * 1e3)  # 32 identical Llama layers
    edge = figures_roofline.make_layers_figure({"points": [{"customdata": ["lm_head", "decode", []]}]})
    assert "outside the decoder layers" in edge["layout"]["annotations"][0]["text"]
    assert "click an op" in figures_roofline.make_layers_figure(None)["layout"]["annotations"][0]["text"]
