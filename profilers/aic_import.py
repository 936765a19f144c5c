"""`roofline calibrate --from aiconfigurator`: fit a calibration profile from AIConfigurator's tables.

The profile is the one `roofline calibrate` writes on a GPU (simulator/calibration.py reads it):
`gemm_<dtype>` curves over cbrt(m n k) fitted to the compute-bound GEMMs, `attention_prefill` over
the sequence length (head dim 128), `attention_decode` over bytes moved, efficiencies net of
`kernel_overhead_s`, plus `collectives:` alpha-beta fits. What the engine prices GEMMs and
attention from is the `grids:` section (profilers/grid_fit.py): per GEMM format a roofline
attainment over (m, n, k), prefill attention's over (sequence length, batch x heads, GQA group,
head dim) and decode attention's over (batch x KV heads, GQA group, head dim, KV length) for bf16
and fp8 KV caches, MLA attention's over its own tables (profilers/aic_mla.py), each with its error
on held-out shapes. Formats the engine has no curve kind for
yet (fp8_block, fp4 GEMMs) are fitted the same way under `other_curves:`, which the engine does not
read. Raw points are kept compactly beside the fits (at most RAW_POINTS per table, spread over x).

* kernel_overhead_s: the fastest GEMM in the table (a few-element kernel: launch and tail, an upper
  bound of the empty-kernel time `roofline calibrate` measures).
* collectives: the NCCL table's ops under the GPU's scale-up link label (`nvlink`, else `pcie`): the
  op's `fit` is one joint fit over the GPU counts (each point with its own ring's steps and factor),
  `by_gpus` the fit of each count, and `table` the measured latency per message size of each count,
  which the engine prices that op from (profilers/COLLECTIVES.md). The framework's custom all-reduce
  (one-shot/two-shot kernels) is fitted per backend under `custom_all_reduce.<backend>` (CUDA graph,
  eager); `custom_all_reduce` holds the table the engine reads for it: per GPU count and message
  size the fastest backend's time, with the backend named per point (`kernel`).

Profiles go to hwspecs/calibration/<sku>.<framework>.yaml by default (or $ROOFLINE_CALIBRATION_DIR),
which `calibration: auto` reads for that framework unless a profile measured on the GPU itself
(<sku>.yaml) exists; the repository ships them for every GPU and framework the data covers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from roofline.profilers.aic_grids import grids_section
from roofline.profilers.aic_points import (
    FIT_HEAD_DIM,
    collective_points,
    decode_points,
    gemm_points,
    prefill_points,
)
from roofline.profilers.aic_read import DTYPES, PACKAGE, Source, Table, read_gpu_tables, resolve_gpu
from roofline.profilers.calibrate_fit import MIN_FIT_POINTS, _net, _sig, _spread, curve_entry

CURVE_POINTS = 48  # measured points written per curve (all are fitted)
RAW_POINTS = 160  # raw rows kept per table
ENGINE_GEMM_KINDS = ("bf16", "fp16", "fp8", "int8")  # simulator.calibration.CURVE_KINDS gemm_<dtype>
SOURCE_URL = "https://pypi.org/project/aiconfigurator-core/"


def default_out_dir() -> Path:
    from roofline.hwspecs import calibration_dir

    return calibration_dir()


def profile_name(sku: str, framework: str) -> str:
    return f"{sku}.{framework}.yaml"


def _fit(kind: str, xs, seconds, efficiency, overhead: float, x_name: str, source: str, notes: dict):
    points = [{"x": x, "seconds": t, "efficiency": e} for x, t, e in zip(xs, seconds, efficiency)]
    nx, ne = _net(points, overhead)
    if len(nx) < MIN_FIT_POINTS:
        notes[kind] = f"{len(nx)} usable point(s); a fit needs {MIN_FIT_POINTS}"
        return None
    try:
        return curve_entry(nx, ne, x_name, source, CURVE_POINTS)
    except (ValueError, RuntimeError) as exc:
        notes[kind] = f"fit failed: {str(exc).splitlines()[0][:160]}"
        return None


def _raw(cols: dict, keys: tuple) -> list:
    """At most RAW_POINTS rows (spread over x) as flow mappings of `keys`."""
    order = np.argsort(cols["x"], kind="stable")
    rows = [order[i] for i in _spread(order.size, RAW_POINTS)] if order.size else []
    out = []
    for i in rows:
        point = {}
        for key in keys:
            v = cols[key][i]
            if isinstance(v, str):
                point[key] = v
            elif key in ("m", "n", "k", "batch", "seqlen", "kv_len", "heads", "kv_heads", "head_dim"):
                point[key] = int(v)
            else:
                point[key] = _sig(v)
        out.append(point)
    return out


def gemm_section(table: Table, hw, overhead: float, curves: dict, other: dict, raw: dict, notes: dict):
    for dtype, cols in gemm_points(table, hw).items():
        kind = f"gemm_{dtype}"
        cb = cols["compute_bound"]
        entry = _fit(
            kind,
            cols["x"][cb],
            cols["seconds"][cb],
            cols["efficiency"][cb],
            overhead,
            "cbrt(m*n*k)",
            f"{table.path.name}: {dtype} GEMMs whose compute roof binds, fastest kernel per shape, "
            "efficiency net of kernel_overhead_s",
            notes,
        )
        if entry is not None:
            (curves if dtype in ENGINE_GEMM_KINDS else other)[kind] = entry
        cols = {
            **cols,
            "dtype": np.full(cb.size, dtype, dtype=object),
            "bound": np.where(cb, "compute", "memory").astype(object),
        }
        raw.setdefault("gemm", []).extend(
            _raw(cols, ("dtype", "m", "n", "k", "x", "seconds", "efficiency", "bound"))
        )


_ATTENTION = (  # (table, points, curve kind, x, what the fit covers, raw columns' length key)
    (
        "context_attention",
        "prefill",
        "attention_prefill",
        "sequence length",
        "causal, head dim {hd}, bf16 attention and KV cache, no window, fastest kernel per shape, "
        "efficiency net of kernel_overhead_s; other head dims in raw only",
        "seqlen",
    ),
    (
        "generation_attention",
        "decode",
        "attention_decode",
        "bytes moved",
        "head dim {hd}, bf16 KV cache, no window, fastest kernel per shape, efficiency against HBM "
        "bandwidth net of kernel_overhead_s; other head dims in raw only",
        "kv_len",
    ),
)


def attention_sections(tables: dict, hw, overhead: float, curves: dict, raw: dict, notes: dict):
    points = {"prefill": prefill_points, "decode": decode_points}
    for table, phase, kind, x_label, covers, length in _ATTENTION:
        if table not in tables:
            continue
        t = tables[table]
        cols = points[phase](t, hw)
        sel = cols["head_dim"] == FIT_HEAD_DIM
        note = f"{t.path.name}: {covers.format(hd=FIT_HEAD_DIM)}"
        entry = _fit(
            kind,
            cols["x"][sel],
            cols["seconds"][sel],
            cols["efficiency"][sel],
            overhead,
            x_label,
            note,
            notes,
        )
        if entry is not None:
            curves[kind] = entry
        raw[kind] = _raw(
            cols, (length, "batch", "heads", "kv_heads", "head_dim", "x", "seconds", "efficiency")
        )


def _ab(sizes: np.ndarray, seconds: np.ndarray, op: str, gpus: np.ndarray) -> dict:
    from roofline.profilers.fitting import busbw_factor, fit_alpha_beta, latency_steps

    steps = np.array([latency_steps(op, int(n)) for n in gpus])
    factor = np.array([busbw_factor(op, int(n)) for n in gpus])
    fit = fit_alpha_beta(sizes, seconds, steps, factor)
    return {"alpha_s": _sig(fit.alpha_s), "beta_Bps": _sig(fit.beta_Bps), "residual": _sig(fit.residual)}


def _fastest(sizes, seconds, kernels=None) -> dict:
    """{bytes: [...], seconds: [...]} with each message size once, at its fastest measurement
    (plus `kernel` when `kernels` are given: the fastest one's name per size, or one name for all)."""
    sizes, seconds = np.asarray(sizes, dtype=float), np.asarray(seconds, dtype=float)
    order = np.lexsort((seconds, sizes))  # by size, fastest first
    first = order[np.r_[True, np.diff(sizes[order]) > 0]]
    row = {"bytes": [int(b) for b in sizes[first]], "seconds": [_sig(t) for t in seconds[first]]}
    if kernels is not None:
        names = [str(kernels[i]) for i in first]
        row["kernel"] = names[0] if len(set(names)) == 1 else names
    return row


def collective_entries(table: Table, source: dict, tables: bool = True) -> dict:
    """{label: {provenance, ops: {op: {fit, gpus, by_gpus, table}}}} from one NCCL or custom
    all-reduce table (`table` of each GPU count measured at two sizes or more, with `tables`)."""
    from roofline.profilers.fitting import busbw_factor, latency_steps

    labels = {}
    for (op, dtype, backend), by_gpus in collective_points(table).items():
        ops = labels.setdefault(backend or dtype, {})
        if op in ops:  # NCCL measures half and int8: keep the 16-bit one, as activations are
            continue
        sizes = np.concatenate([s for s, _ in by_gpus.values()])
        seconds = np.concatenate([t for _, t in by_gpus.values()])
        gpus = np.concatenate([np.full(s.size, n) for n, (s, _) in by_gpus.items()])
        if np.unique(sizes).size < 2:
            continue
        per = {}
        for n, (s, t) in by_gpus.items():
            if np.unique(s).size < 2:
                continue
            per[n] = {
                "latency_steps": latency_steps(op, n),
                "busbw_factor": _sig(busbw_factor(op, n)),
                "fit": _ab(s, t, op, np.full(s.size, n)),
                "points": [{"bytes": int(b), "seconds": _sig(x)} for b, x in zip(s, t)],
            }
        ops[op] = {"dtype": dtype, "fit": _ab(sizes, seconds, op, gpus), "gpus": sorted(per), "by_gpus": per}
        if tables:
            ops[op]["table"] = {n: _fastest(s, t) for n, (s, t) in by_gpus.items() if np.unique(s).size >= 2}
    return {key: {"provenance": {**source, **table.provenance()}, "ops": ops} for key, ops in labels.items()}


def collectives_section(tables: dict, hw, source: dict) -> dict:
    out = {}
    link = "nvlink" if hw.scale_up_kind.startswith("nvlink") else "pcie"
    if "nccl" in tables:
        for entry in collective_entries(tables["nccl"], source).values():
            if "all_reduce" in entry["ops"] and link not in out:
                entry["ops"] = {"all_reduce": entry["ops"]["all_reduce"], **entry["ops"]}
                out[link] = entry
    if "custom_allreduce" in tables:
        for backend, entry in collective_entries(tables["custom_allreduce"], source, tables=False).items():
            out[f"custom_all_reduce.{backend}"] = entry
        fastest = custom_allreduce_entry(tables["custom_allreduce"], source)
        if fastest is not None:
            out["custom_all_reduce"] = fastest  # simulator.calibration.CUSTOM_ALLREDUCE_LABEL
    return out


def custom_allreduce_entry(table: Table, source: dict) -> dict | None:
    """The framework's all-reduce as the engine prices it: per GPU count and message size, the
    fastest of the table's backends (16-bit rows; None without two sizes of one count)."""
    rows = {}  # gpus -> (sizes, seconds, backends)
    backends, dtype = set(), None
    for (op, label, backend), by_gpus in collective_points(table).items():
        if op != "all_reduce" or DTYPES.get(label) not in ("bf16", "fp16") or dtype not in (None, label):
            continue
        dtype = label
        backends.add(backend or label)
        for n, (s, t) in by_gpus.items():
            have = rows.setdefault(n, ([], [], []))
            have[0].extend(s), have[1].extend(t), have[2].extend([backend or label] * s.size)
    table_rows = {n: _fastest(*r) for n, r in sorted(rows.items()) if np.unique(r[0]).size >= 2}
    if not table_rows:
        return None
    provenance = {
        **source,
        **table.provenance(),
        "backends": sorted(backends),
        "statistic": "per GPU count and message size, the fastest backend (table: kernel)",
    }
    return {"provenance": provenance, "ops": {"all_reduce": {"dtype": dtype, "table": table_rows}}}


def kernel_overhead(tables: dict) -> float | None:
    """The fastest GEMM's seconds: launch and tail of a kernel that does almost nothing."""
    if "gemm" not in tables:
        return None
    return _sig(float(np.min(tables["gemm"].columns["latency"])) * 1e-3)


def build_import_profile(tables: dict, sku: str, framework: str, source: Source) -> dict:
    """The profile document (simulator.calibration's format plus other_curves, raw and notes)."""
    from roofline.api import load_hardware
    from roofline.profilers.calibrate import _roofline_version

    hw = load_hardware(sku)
    devices = sorted({t.device for t in tables.values() if t.device})
    own = [t for t in tables.values() if t.framework == framework]
    fw_version = (
        (tables.get("gemm") or (own[0] if own else None)).version if (own or "gemm" in tables) else "none"
    )
    origin = {
        "source": PACKAGE if source.version != "unknown" else source.package,
        "source_version": source.version,
    }
    overhead = kernel_overhead(tables)
    curves, other, raw, notes = {}, {}, {}, {}
    if "gemm" in tables:
        gemm_section(tables["gemm"], hw, overhead or 0.0, curves, other, raw, notes)
    attention_sections(tables, hw, overhead or 0.0, curves, raw, notes)
    doc = {
        "profile_id": f"{sku}.aiconfigurator-{source.version}.{framework}-{fw_version}",
        "hardware": sku,
        "provenance": {
            **origin,
            "source_url": SOURCE_URL,
            "source_license": "Apache-2.0",
            "framework": framework,
            "framework_version": fw_version,
            "device": "; ".join(devices),
            "tables": {name: t.provenance() for name, t in tables.items()},
            "imported_by": f"roofline calibrate --from aiconfigurator --gpu {sku} --framework {framework}",
            "roofline": _roofline_version(),
            "statistic": "the tables' latency per shape; the fastest kernel where a shape has several",
            "kernel_overhead": "the fastest GEMM in the table (upper bound of launch + tail)",
        },
    }
    if overhead is not None:
        doc["kernel_overhead_s"] = overhead
    doc["curves"] = curves
    grids = grids_section(tables, hw, overhead or 0.0, notes)
    if grids:
        doc["grids"] = grids
    if other:
        doc["other_curves"] = other  # formats without an engine curve kind yet; not read by the engine
    if notes:
        doc["fit_notes"] = notes
    collectives = collectives_section(tables, hw, origin)
    if collectives:
        doc["collectives"] = collectives
    doc["raw"] = raw
    return doc


def import_profiles(source: Source, gpus: list, framework: str, out: Path | None) -> list:
    """Fit and write one profile per GPU; returns [(sku, path, doc)]. `out`: a .yaml file (one GPU)
    or a folder (default hwspecs/calibration/imported/)."""
    from roofline.profilers.calibrate_write import write_yaml_atomic

    results = []
    for gpu in gpus:
        _, sku = resolve_gpu(gpu)
        doc = build_import_profile(read_gpu_tables(source, sku, framework), sku, framework, source)
        if out is not None and Path(out).suffix in (".yaml", ".yml"):
            path = Path(out)
        else:
            path = Path(out or default_out_dir()) / profile_name(sku, framework)
        write_yaml_atomic(doc, path)
        results.append((sku, path, doc))
    return results
