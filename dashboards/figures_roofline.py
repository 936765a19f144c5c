"""The Plan page's roofline chart (a plain figure dict, as `figures` builds the Plan's others):
labelled ceilings (datasheet and attainable or calibrated, from `evaluate.ceilings`), the ridge
point, every op at (FLOP/byte, attained FLOP/s) coloured by its kind with the same colour on every
plan, its symbol saying what bounds it, and a hover in readable units (time, FLOPs, bytes,
attained FLOP/s and bandwidth). Ops without FLOPs (collectives, host transfers) cannot sit on a
roofline: they are drawn in a strip under the chart, at their time, coloured as communication.

`KIND_COLOURS` is also what the time-by-kind bars use (`recolour_by_kind`), so an op kind has one
colour across the page and across plans. Pure: no Dash, no I/O, no cost formulas (an op's bound
is the simulator's; "overhead-bound" marks an op whose attained rate is under half of the roof
above it, the time its launches and efficiency take beyond the roof).
"""

from __future__ import annotations

import zlib

import numpy as np

from roofline.report.figures import PALETTE, figure, plain, typed_array
from roofline.report.format import si_count, si_time

# One colour per op kind, whatever the plan (a kind not listed gets a colour from its name).
KIND_COLOURS = {
    "gemm": "#1f77b4",
    "attention_prefill": "#d62728",
    "attention_decode": "#ff7f0e",
    "norm": "#9467bd",
    "elementwise": "#8c564b",
    "embedding": "#e377c2",
    "sampling": "#7f7f7f",
    "comm": "#2ca02c",
    "host_transfer": "#17becf",
    "ssm_scan": "#bcbd22",
    "linear_attention": "#aec7e8",
    "encoder": "#ffbb78",
    "framework": "#525252",
}
# The symbol says what bounds an op.
BOUND_SYMBOLS = {
    "compute": "circle",
    "memory": "square",
    "overhead": "triangle-down",
    "communication": "x",
    "host-link": "x",
    "framework": "diamond",
}
OVERHEAD_FRACTION = 0.5  # attained under half the roof above it: launch overhead / efficiency bound
INTENSITIES = np.logspace(-2, 5, 200)
CEILING_STYLES = {
    "datasheet": {"color": "black", "width": 2},
    "attainable": {"color": "#6b7280", "dash": "dash", "width": 1.5},
    "calibrated": {"color": "#059669", "dash": "dash", "width": 2},
}


def kind_colour(kind: str) -> str:
    return KIND_COLOURS.get(kind) or PALETTE[zlib.crc32(kind.encode()) % len(PALETTE)]


def recolour_by_kind(fig: dict) -> dict:
    """The time-by-kind bars in KIND_COLOURS (the report's bars colour by position)."""
    for trace in fig["data"]:
        trace["marker"] = {**trace.get("marker", {}), "color": kind_colour(trace["legendgroup"])}
    return fig


def op_bound(op: dict, peak: float, bandwidth: float) -> str:
    """The simulator's bound, or 'overhead' where the op attains under OVERHEAD_FRACTION of the
    datasheet roof at its intensity."""
    if op["bound"] in ("communication", "host-link", "framework") or not (
        op["flops"] > 0 and op["bytes"] > 0 and op["time_s"] > 0
    ):
        return op["bound"]
    roof = min(peak, op["intensity"] * bandwidth)
    return "overhead" if op["flops"] / op["time_s"] < OVERHEAD_FRACTION * roof else op["bound"]


def op_hover(phase: str, op: dict, bound: str) -> str:
    t = op["time_s"]
    lines = [
        f"{phase}: {op['name']} ({op['kind']}), {bound}-bound",
        f"time {si_time(t)}",
        f"FLOPs {si_count(op['flops'])}, bytes {si_count(op['bytes'], 'B')}",
    ]
    if t > 0 and op["flops"] > 0:
        lines.append(f"attained {si_count(op['flops'] / t, 'FLOP/s')}, {si_count(op['bytes'] / t, 'B/s')}")
    if op["intensity"]:
        lines.append(f"intensity {op['intensity']:.3g} FLOP/byte")
    return "<br>".join(plain(line) for line in lines)


def _ceiling_trace(c) -> dict:
    return {
        "line": CEILING_STYLES.get(c.kind, CEILING_STYLES["datasheet"]),
        "mode": "lines",
        "name": plain(c.label),
        "legendgroup": "ceilings",
        "hoverinfo": "skip",  # named in the legend; hover and clicks go to the ops on them
        "x": typed_array(INTENSITIES),
        "y": typed_array(np.minimum(c.peak, INTENSITIES * c.bandwidth)),
        "type": "scatter",
    }


def make_plan_roofline_figure(hw, rec: dict, prefill_ops: list, decode_ops: list, ceilings: list) -> dict:
    """The roofline of one plan (see the module docstring). ceilings: [evaluate.Ceiling], the
    first being the datasheet's bf16 roof (its ridge point is marked)."""
    data = [_ceiling_trace(c) for c in ceilings]
    base = ceilings[0]
    placed, strip = [], []
    for phase, ops in (("prefill", prefill_ops), ("decode", decode_ops)):
        for op in ops:
            if op["time_s"] <= 0 or op["kind"] == "framework":
                continue  # the framework's CPU iteration is no kernel: the time-by-kind bars show it
            bound = op_bound(op, base.peak, base.bandwidth)
            (placed if op["flops"] > 0 and op["bytes"] > 0 else strip).append((phase, op, bound))
    ys = [op["flops"] / op["time_s"] for _, op, _ in placed]
    floor = min(ys) / 30 if ys else base.peak / 1e6
    groups: dict = {}
    for phase, op, bound in placed + strip:
        groups.setdefault((phase, op["kind"]), []).append((op, bound))
    shown: set = set()
    for (phase, kind), items in groups.items():
        on_roof = [(o, b) for o, b in items if o["flops"] > 0 and o["bytes"] > 0]
        off = [(o, b) for o, b in items if not (o["flops"] > 0 and o["bytes"] > 0)]
        for pts, where in ((on_roof, "roof"), (off, "strip")):
            if not pts:
                continue
            decode = phase == "decode"
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": plain(kind),
                    "legendgroup": plain(kind),
                    "showlegend": kind not in shown and not shown.add(kind),
                    # what a click shows: the op, its phase and the layer groups it runs in
                    "customdata": [[o["name"], phase, o.get("layers", [])] for o, _ in pts],
                    "marker": {
                        "color": kind_colour(kind),
                        "size": 10,
                        "symbol": [
                            BOUND_SYMBOLS.get(b, "circle") + ("-open" if decode else "") for _, b in pts
                        ],
                        "line": {"width": 2, "color": kind_colour(kind)},
                    },
                    "text": [op_hover(phase, o, b) for o, b in pts],
                    "hoverinfo": "text",
                    "x": [o["intensity"] for o, _ in pts]
                    if where == "roof"
                    else [INTENSITIES[0] * 3] * len(pts),
                    "y": [o["flops"] / o["time_s"] for o, _ in pts]
                    if where == "roof"
                    else [floor] * len(pts),
                }
            )
    ridge = base.peak / base.bandwidth
    annotations = [
        {
            "x": np.log10(ridge),
            "y": 0.0,
            "xref": "x",
            "yref": "paper",
            "text": f"ridge {ridge:.0f} FLOP/B",
            "showarrow": False,
            "xanchor": "left",
            "yanchor": "bottom",
            "font": {"size": 11},
        }
    ]
    annotations += [
        {
            "x": np.log10(INTENSITIES[-1]),
            "y": np.log10(c.peak),
            "xref": "x",
            "yref": "y",
            "text": plain(f"{c.peak / 1e12:.0f} TFLOP/s"),
            "showarrow": False,
            "xanchor": "right",
            "yanchor": "top",
            "font": {"size": 10, "color": CEILING_STYLES["datasheet"]["color"]},
        }
        for c in ceilings[:1]  # the others are named in the legend (labels a few pixels apart overlapped)
    ]
    return figure(
        data,
        {
            "title": {
                "text": plain(f"Roofline: {rec['model']} on {hw.name}")
                + "<br><sup>colour: op kind; filled: prefill, open: decode</sup>"
                + "<br><sup>● compute ■ memory ▼ overhead-bound × communication</sup>"
                + (
                    "<br><sup>ops without FLOPs (collectives, transfers): on the bottom edge</sup>"
                    if strip
                    else ""
                ),
                "font": {"size": 14},
            },
            "xaxis": {"type": "log", "title": {"text": "arithmetic intensity (FLOP/byte)"}},
            "yaxis": {"type": "log", "title": {"text": "attained FLOP/s"}, "exponentformat": "SI"},
            "shapes": [
                {
                    "type": "line",
                    "x0": ridge,
                    "x1": ridge,
                    "xref": "x",
                    "y0": 0,
                    "y1": 1,
                    "yref": "paper",
                    "line": {"color": "#9ca3af", "dash": "dot", "width": 1},
                }
            ],
            "annotations": annotations,
            "margin": {
                "l": 60,
                "r": 20,
                "t": 84 + 14 * bool(strip),
                "b": 60 + 20 * ((len(shown) + len(ceilings) + 2) // 3),
            },
            "height": 420 + 20 * ((len(shown) + len(ceilings) + 2) // 3),
            "legend": {
                "orientation": "h",
                "yref": "container",
                "y": 0.0,
                "yanchor": "bottom",
                "font": {"size": 10},
            },
            "hovermode": "closest",
        },
    )


def make_layers_figure(click: dict | None) -> dict:
    """The layers of the roofline op a user clicked (Plotly clickData): time per layer and layer
    count of each layer group it runs in. Before any click, or for an op outside the layers (the
    model's edges, the framework), a figure that says so."""
    from roofline.dashboards.figures import message_figure

    points = (click or {}).get("points") or []
    data = points[0].get("customdata") if points else None
    if not (isinstance(data, list) and len(data) == 3 and isinstance(data[2], list)):
        return message_figure("click an op on the roofline to see its layers")
    name, phase, layers = data
    if not layers:
        return message_figure(f"{name} ({phase}) runs once per pass, outside the decoder layers")
    groups = [str(g.get("group", "")) for g in layers]
    per_layer = [float(g.get("time_per_layer_s", 0.0)) for g in layers]
    counts = [int(g.get("layers", 0)) for g in layers]
    return figure(
        [
            {
                "type": "bar",
                "orientation": "h",
                "y": [plain(g) for g in groups],
                "x": [t * 1e3 for t in per_layer],
                "text": [f"{n} layers, {si_time(t * n)} in all" for n, t in zip(counts, per_layer)],
                "textposition": "auto",
                "hovertemplate": "%{y}: %{x:.4g} ms per layer<extra></extra>",
                "marker": {"color": "#1f77b4"},
            }
        ],
        {
            "title": {
                "text": plain(f"{name} ({phase}): time per layer by layer group"),
                "font": {"size": 14},
            },
            "xaxis": {"title": {"text": "ms per layer"}},
            "yaxis": {"automargin": True},
            "margin": {"l": 20, "r": 20, "t": 50, "b": 40},
            "height": 80 + 40 * len(groups),
        },
    )
