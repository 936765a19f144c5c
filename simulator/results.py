"""Turn sweep columns into SPEC.md result records (one JSON-ready dict per point)."""

from __future__ import annotations

import math

from roofline.simulator.columns import COST_KEYS, MEMORY_KEYS, SCHEMA_VERSION
from roofline.simulator.grouped_gemm import MOE_GROUPED_SHARE_ERROR
from roofline.simulator.layout import Layout
from roofline.simulator.ops import BOUND_NAMES
from roofline.simulator.units import GIB

PHASE_KEYS = ("time_s", "flops", "bytes", "mfu", "mbu")


def _f(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def fit_reason(mem: dict, hardware: str) -> str:
    """Why a point does not fit: GPU memory, host memory, or both."""
    reasons = []
    if mem["host_bytes"] > mem["host_capacity_bytes"]:
        reasons.append(
            f"needs {mem['host_bytes'] / GIB:.1f} GiB of host memory per GPU (offloaded KV cache and "
            f"weights) but {hardware} has {mem['host_capacity_bytes'] / GIB:.1f} GiB of host memory per GPU "
            "(runtime.host_memory_GiB sets it)"
        )
    if mem["total_bytes"] > mem["capacity_bytes"] or not reasons:
        reasons.insert(
            0,
            f"needs {mem['total_bytes'] / GIB:.1f} GiB per GPU (weights {mem['weights_bytes'] / GIB:.1f}, "
            f"KV cache {mem['kv_cache_bytes'] / GIB:.1f}, activations {mem['activation_bytes'] / GIB:.1f}, "
            f"overhead {mem['overhead_bytes'] / GIB:.1f}) but {hardware} has {mem['capacity_bytes'] / GIB:.1f} GiB",
        )
    return "; ".join(reasons)


def model_error_band(band, model):
    """efficiency.error_band of a hardware row narrowed to the grids `model`'s ops read: MoE grids
    for MoE models, MLA grids for MLA models; a MoE model on a profile without a fused-MoE grid gets
    the fallback's own error (`moe_grouped_share`) instead. 'uncalibrated' stays as it is."""
    if not isinstance(band, dict):
        return band
    moe, mla = model.has_moe, model.has_mla
    out = {
        k: v
        for k, v in band.items()
        if k != "max" and (moe or not k.startswith("moe_")) and (mla or not k.startswith("mla_"))
    }
    if moe and not any(k.startswith("moe_") for k in out):
        out["moe_grouped_share"] = MOE_GROUPED_SHARE_ERROR
    if not out:
        return band
    out["max"] = max(out.values())
    return out


def record(result, i: int, versions: dict) -> dict:
    c = result.columns
    group, pos = result.group_of(i)
    point = {path: values[idx[i]] for path, values, idx in result.axes}
    hw_row = int(group.at(group.hw_row, pos))
    hw_name = group.hardware[hw_row].name
    values = dict(group.values, **point)  # every field of this point, defaults included
    gpus = Layout.from_values(values).gpus  # dp, pp and cp may be sweep axes
    configuration: dict = {}  # what was simulated: sections of the scenario's fields, and the stack
    for path, value in values.items():
        if "." in path:
            section, key = path.split(".", 1)
            configuration.setdefault(section, {})[key] = value
    configuration["methods"] = result.scenario.methods

    def phase(name):
        out = {k: _f(c[f"{name}.{k}"][i]) for k in PHASE_KEYS}
        out["bound"] = BOUND_NAMES[int(c[f"{name}.bound"][i])]
        prefix = f"{name}.breakdown."
        out["breakdown"] = {
            k[len(prefix) :]: _f(v[i]) for k, v in c.items() if k.startswith(prefix) and v[i] > 0
        }
        return out

    memory = {k: int(round(float(c[f"memory.{k}"][i]))) for k in MEMORY_KEYS}
    fits = bool(c["fits"][i])
    calib = group.calibration[hw_row]
    rec = {
        "schema_version": SCHEMA_VERSION,
        "scenario": result.scenario.name,
        "point": point,
        "hardware": hw_name,
        "model": group.model.name,
        "gpus": gpus,
        "ttft_s": _f(c["ttft_s"][i]),
        "tpot_s": _f(c["tpot_s"][i]),
        "e2e_s": _f(c["e2e_s"][i]),
        "decode_tokens_per_s": _f(c["decode_tokens_per_s"][i]),
        "throughput_tokens_per_s_per_gpu": _f(c["throughput_tokens_per_s_per_gpu"][i]),
        "prefill": phase("prefill"),
        "decode": phase("decode"),
        "memory": memory,
        "fits": fits,
        "max_batch": int(c["max_batch"][i]),
        "max_context_tokens": int(c["max_context_tokens"][i])
        if math.isfinite(c["max_context_tokens"][i])
        else None,
        "cost": {k: _f(c[f"cost.{k}"][i]) for k in COST_KEYS},
        "energy": {"joules_per_output_token": _f(c["energy.joules_per_output_token"][i])},
        "provenance": {
            "calibration": calib,
            "error_band": model_error_band(group.error_band[hw_row], group.model)
            if group.error_band
            else "uncalibrated",
            "versions": versions,
            "warnings": [msg for msg, mask in result.warnings if mask[i]],
            "notes": [msg for msg, mask in result.notes if mask[i]],
        },
    }
    rec["configuration"] = configuration
    if not fits:
        rec["fit_reason"] = fit_reason(memory, hw_name)
    return rec


# What a point that does not fit would take, hidden from the CLI's records unless --force: latency,
# throughput, per-token cost and energy, and each phase's time and utilisation. The work itself
# (FLOPs, bytes, bound) and the memory that does not fit stay.
UNFIT_HIDDEN = (
    "ttft_s",
    "tpot_s",
    "e2e_s",
    "decode_tokens_per_s",
    "throughput_tokens_per_s_per_gpu",
    "cost.usd_per_million_output_tokens",
    "cost.usd_per_million_prompt_tokens",
    "energy.joules_per_output_token",
    "prefill.time_s",
    "prefill.mfu",
    "prefill.mbu",
    "decode.time_s",
    "decode.mfu",
    "decode.mbu",
)


def without_unfit_figures(rec: dict) -> dict:
    """A record as the CLI reports it: where the point does not fit, the UNFIT_HIDDEN figures are
    null (`fits: false` and `fit_reason` say why); a fitting record is returned unchanged."""
    if rec.get("fits", True):
        return rec
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in rec.items()}
    for key in UNFIT_HIDDEN:
        if "." in key:
            section, sub = key.split(".", 1)
            if isinstance(out.get(section), dict) and sub in out[section]:
                out[section][sub] = None
        elif key in out:
            out[key] = None
    return out


def _add_layers(row: dict, group: tuple, t: float) -> None:
    """Add an op's time to its layer group's entry in an op-table row."""
    if not group:
        return
    label, n = group
    for entry in row["layers"]:
        if entry["group"] == label:  # another group of the same kind (e.g. interleaved layer types)
            entry["time_s"] += t
            entry["layers"] += int(n)
            entry["time_per_layer_s"] = entry["time_s"] / max(entry["layers"], 1)
            return
    row["layers"].append({"group": label, "layers": int(n), "time_s": t, "time_per_layer_s": t / max(n, 1)})


def op_table(result, i: int, phase: str) -> list:
    """Per-op rows for point i (ops of the same name and kind summed): name, kind, time_s, flops,
    bytes, intensity, bound (of the longest contributor), `exposed_s` (the part of time_s that
    extends the phase: less where the op overlaps the rest, e.g. an overlap scheduler's CPU
    iteration), and `layers`: the layer groups the op runs in, [{group, layers, time_s,
    time_per_layer_s}] (empty for the model's edges)."""
    group, pos = result.group_of(i)
    totals = getattr(group.columns, phase)
    rows: dict = {}
    for oc in totals.ops:
        t, fl, by = (float(group.at(v, pos)) for v in (oc.time_s, oc.flops, oc.bytes))
        shown = t * float(group.at(totals.exposure.get(oc.stream, 1.0), pos))
        bound = BOUND_NAMES[int(group.at(oc.bound, pos))]
        key = (oc.name, oc.kind)
        if key in rows:
            row = rows[key]
            _add_layers(row, oc.group, t)
            if t > row["_max_t"]:
                row["bound"], row["_max_t"] = bound, t
            row["time_s"] += t
            row["exposed_s"] += shown
            row["flops"] += fl
            row["bytes"] += by
        else:
            rows[key] = {
                "name": oc.name,
                "kind": oc.kind,
                "time_s": t,
                "exposed_s": shown,
                "flops": fl,
                "bytes": by,
                "bound": bound,
                "_max_t": t,
                "layers": [],
            }
            _add_layers(rows[key], oc.group, t)
    out = []
    for row in rows.values():
        row.pop("_max_t")
        row["intensity"] = row["flops"] / row["bytes"] if row["bytes"] else None
        out.append(row)
    return out
