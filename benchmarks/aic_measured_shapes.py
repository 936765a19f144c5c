"""How the shipped profiles price the fused-MoE model shapes their tables measured (in sample).

A profile's fused-MoE grid (`grids.moe_<format>`) holds an attainment over (tokens per touched
expert, hidden, intermediate, experts touched) whose nodes are medians over nearby model shapes, and
beside it each measured model shape's own scale of that attainment by tokens (`shapes`,
`grid_fit.measured_shapes`): frameworks pick kernels and tile configurations per model, which the
grid smooths away. For every row of each framework's MoE table that the importer reads (balanced
routing, no expert parallelism, gated experts, no untuned row), this prices the kernel as the engine
does (`layers.expert_ops`: roof / attainment + two launches + the grid's call_s) with the shipped
profile, from the grid alone and with the shape's scale, and prints |predicted / measured - 1|.

In sample by design: it shows that a scenario of a measured shape gets the measured time (to the
profile's four significant figures), not how well a shape the tables never measured is predicted;
that is benchmarks/aic_holdout.py's job.

Run:  python benchmarks/aic_measured_shapes.py [--framework vllm sglang trtllm] [--gpu h100-sxm ...] [--data DIR]
Needs pyarrow and the data (`pip install -e '.[aic]'`).
"""

from __future__ import annotations

import sys

import numpy as np
from aic_kernel_scales import table_arguments

from roofline.api import load_hardware
from roofline.hwspecs import profile_path, read_profile
from roofline.profilers.aic_points import moe_formats, moe_points
from roofline.profilers.aic_read import available_gpus, find_source, read_gpu_tables
from roofline.simulator.efficiency import build_table
from roofline.simulator.grid_lookup import grid_call_s, grid_shape_scale, grid_values


def moe_table(hw, profile, fmt: str):
    """efficiency.build_table of one GPU's profile for moe_points' format `fmt` (its GEMM input and
    expert weights' formats: aic_points.moe_formats), as the engine builds it for such a scenario."""
    activations, weights = moe_formats(fmt)
    return build_table([hw], {hw.name: profile}, activations, weights=weights)


def fused_moe_seconds(c: dict, table, overhead: float, shapes: bool = False) -> np.ndarray:
    """moe_points' rows `c` priced as `layers.expert_ops` prices a fused MoE call with a profile's
    `moe` grid (`table`: efficiency.build_table of one GPU): roof / attainment + two launches + the
    grid's call_s; with `shapes`, the attainment scaled by each row's model shape's own scale
    (grid_lookup.grid_shape_scale; 1 for a shape the grid did not measure)."""
    att, _ = grid_values(table, "moe", 0, "attainment", c["coords"].T)
    if shapes:
        keys = np.column_stack([c["hidden"], c["inter"], c["topk"], c["experts"]])
        log2_tokens = np.log2(c["tokens"])
        att = att.copy()
        for key in np.unique(keys, axis=0):
            rows = np.all(keys == key, axis=1)
            key = tuple(int(v) for v in key)
            att[rows] *= grid_shape_scale(table, "moe", 0, key, log2_tokens[rows])
    return c["roof"] / att + 2 * overhead + grid_call_s(table, "moe", 0)


def errors(source, sku: str, framework: str) -> dict:
    """format -> (errors from the grid alone, errors with the shapes' scales) over the table's rows."""
    path = profile_path(sku, framework)
    tables = read_gpu_tables(source, sku, framework)
    if path is None or "moe" not in tables:
        return {}
    hw, profile = load_hardware(sku), read_profile(path)
    overhead = profile.kernel_overhead_s or 0.0
    out = {}
    for fmt, c in moe_points(tables["moe"], hw).items():  # the rows the importer reads
        table = moe_table(hw, profile, fmt)
        if table.grids.get("moe") is None:
            continue
        out[fmt] = tuple(
            fused_moe_seconds(c, table, overhead, shapes) / c["seconds"] - 1.0 for shapes in (False, True)
        )
    return out


def lines(source, gpus_by_framework: dict) -> list:
    """Markdown: per framework and format, the rows of the measured model shapes and their error from
    the grid alone and with the shapes' scales (benchmarks/aic_holdout.py's report includes it)."""
    out = [
        "",
        "## The measured model shapes, as the shipped profiles price them (in sample)",
        "",
        "Every fused-MoE row the importer reads, priced with the shipped profile as the engine prices "
        "it: from the grid alone (a median over neighbouring shapes), and with the row's model shape's "
        "own scale (`shapes`), which a scenario of that shape gets (benchmarks/aic_measured_shapes.py). "
        "In sample by design: it shows that a measured shape is priced as measured, not how well an "
        "unmeasured one is predicted (the summary above, the per-GPU tables below).",
        "",
        "| framework | format | GPUs | rows | grid alone: median, p90 abs err | with the shape's scale |",
        "|---|---|---:|---:|---|---|",
    ]
    for fw, gpus in gpus_by_framework.items():
        by_format: dict = {}
        for sku in gpus:
            for fmt, pair in errors(source, sku, fw).items():
                by_format.setdefault(fmt, []).append(pair)
        for fmt, pairs in sorted(by_format.items()):
            a = np.concatenate([p[0] for p in pairs])
            s = np.concatenate([p[1] for p in pairs])
            out.append(f"| {fw} | {fmt} | {len(pairs)} | {a.size} | {_stats(a)} | {_stats(s)} |")
    return out


def _stats(err) -> str:
    err = np.abs(np.asarray(err))
    return f"median {np.median(err):.2%}, p90 {np.percentile(err, 90):.2%}"


def main(argv=None) -> int:
    ap = table_arguments(__doc__.splitlines()[0])
    args = ap.parse_args(argv)
    source = find_source(args.data)
    print(f"Fused-MoE kernels of the shipped profiles' measured model shapes, in sample ({source.version})")
    for fw in args.framework:
        alone, shaped = [], []
        for sku in args.gpu or available_gpus(source, fw):
            print(f"{fw} {sku} ...", file=sys.stderr)
            for fmt, (a, s) in errors(source, sku, fw).items():
                print(
                    f"  {fw:7s} {sku:20s} {fmt:5s} {a.size:6d} rows: grid alone {_stats(a)}; "
                    f"with the shape's scale {_stats(s)}"
                )
                alone.append(a)
                shaped.append(s)
        if alone:
            a, s = np.concatenate(alone), np.concatenate(shaped)
            print(f"{fw}: {a.size} rows: grid alone {_stats(a)}; with the shapes' scales {_stats(s)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
