"""`roofline calibrate --from aiconfigurator`: the reader on small synthetic tables written here in
AIConfigurator's layout (<gpu>/<op>/<framework>/<version>/<table>.parquet|csv), the fitted curve
recovers the Hill curve the latencies were made from, and the written profile drives the engine's
GEMM and all-reduce times through `calibration: PATH`. No network, no installed aiconfigurator-core."""

from __future__ import annotations

import numpy as np
import pytest

pa = pytest.importorskip("pyarrow")
import pyarrow.csv  # noqa: E402
import pyarrow.parquet  # noqa: E402

import roofline  # noqa: E402
from roofline.hwspecs import load_hardware, read_profile  # noqa: E402
from roofline.profilers.aic_import import build_import_profile, import_profiles  # noqa: E402
from roofline.profilers.aic_read import (  # noqa: E402
    AicDataError,
    find_source,
    read_gpu_tables,
    resolve_gpu,
    version_key,
)
from roofline.simulator.calibration import hill  # noqa: E402
from roofline.simulator.results import op_table  # noqa: E402

DEVICE = "NVIDIA H100 80GB HBM3"
E_MAX, X_HALF, P = 0.7, 1200.0, 2.0
OVERHEAD_MS = 0.003  # the fastest GEMM's latency, which the importer takes as kernel_overhead_s


def _write(path, rows: dict, fmt: str = "parquet"):
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(rows)
    if fmt == "csv":
        pyarrow.csv.write_csv(table, path)
    else:
        pyarrow.parquet.write_table(table, path)


def _gemm_rows():
    hw = load_hardware("h100-sxm")
    m, n, k, lat = [1], [128], [128], [OVERHEAD_MS]  # a tiny memory-bound GEMM: the overhead
    for mm in (1024, 2048, 4096, 8192, 16384):
        for nn, kk in ((4096, 4096), (8192, 8192), (16384, 8192), (28672, 4096), (1024, 1024)):
            x = (mm * nn * kk) ** (1 / 3)
            seconds = 2.0 * mm * nn * kk / (hw.peak("bf16") * hill(x, E_MAX, X_HALF, P))
            m.append(mm), n.append(nn), k.append(kk), lat.append(seconds * 1e3 + OVERHEAD_MS)
    rows = len(m)
    return {
        "framework": ["VLLM"] * rows,
        "version": ["0.24.0"] * rows,
        "device": [DEVICE] * rows,
        "gemm_dtype": ["bfloat16"] * rows,
        "m": m,
        "n": n,
        "k": k,
        "latency": lat,
        "kernel_source": ["torch.nn.functional.linear"] * rows,
    }


def _attention_rows(generation: bool):
    rows = []
    for b in (1, 4, 16):
        for L in (1024, 4096, 16384):
            for d in (64, 128):
                lat = (0.01 + b * L * 1e-6) if generation else (0.02 + b * L * L * 2e-9)
                rows.append(
                    {
                        "device": DEVICE,
                        "batch_size": b,
                        ("step" if generation else "isl"): L - (1 if generation else 0),
                        **({"isl": 1} if generation else {}),
                        "num_heads": 32,
                        "num_key_value_heads": 8,
                        "head_dim": d,
                        "attn_dtype": "bfloat16",
                        "kv_cache_dtype": "bfloat16",
                        "window_size": 0,
                        "latency": lat,
                    }
                )
    return {key: [r[key] for r in rows] for key in rows[0]}


SIZES = (1024, 65536, 1 << 20, 1 << 24)  # message_size, elements (x 2 bytes: half, bfloat16)


def _nccl_s(n: int, size: int) -> float:
    """The synthetic NCCL all-reduce: a ring of 2 us steps at 300 GB/s."""
    return 2 * (n - 1) * 2e-6 + 2 * (n - 1) / n * size * 2 / 300e9


def _custom_s(n: int, size: int, backend: str) -> float:
    """The synthetic custom all-reduce: the CUDA-graph kernel at half NCCL's time; the eager one
    20 us slower, except at the largest size where it is the fastest (0.4x NCCL)."""
    if backend == "vllm_graph":
        return 0.5 * _nccl_s(n, size)
    return 0.4 * _nccl_s(n, size) if size == SIZES[-1] else 0.5 * _nccl_s(n, size) + 20e-6


def _comm_rows(custom: bool):
    rows = []
    for backend in ("vllm_graph", "vllm_eager") if custom else ("",):
        for n in (2, 4, 8):
            for size in SIZES:
                seconds = _custom_s(n, size, backend) if custom else _nccl_s(n, size)
                row = {"device": DEVICE, "num_gpus": n, "message_size": size, "latency": seconds * 1e3}
                if custom:
                    row.update(allreduce_dtype="bfloat16", backend=backend)
                else:
                    row.update(op_name="all_reduce", nccl_dtype="half")
                rows.append(row)
    return {key: [r[key] for r in rows] for key in rows[0]}


@pytest.fixture
def data(tmp_path):
    root = tmp_path / "data"
    g = root / "h100_sxm"
    _write(g / "gemm/vllm/0.24.0/gemm_perf.parquet", _gemm_rows())
    _write(g / "gemm/vllm/0.19.0/gemm_perf.parquet", {"m": [1]})  # older: never read
    _write(g / "attention/vllm/0.24.0/context_attention_perf.parquet", _attention_rows(False))
    _write(g / "attention/vllm/0.24.0/generation_attention_perf.csv", _attention_rows(True), "csv")
    _write(g / "comm/nccl/2.29.2/nccl_perf.parquet", _comm_rows(False))
    _write(g / "comm/vllm/0.24.0/custom_allreduce_perf.parquet", _comm_rows(True))
    return root


def test_reader_maps_columns_gpus_and_picks_the_newest_version(data):
    source = find_source(data)
    assert source.version == "unknown"
    tables = read_gpu_tables(source, "h100-sxm", "vllm")
    assert set(tables) == {"gemm", "context_attention", "generation_attention", "nccl", "custom_allreduce"}
    assert tables["gemm"].version == "0.24.0" and tables["gemm"].device == DEVICE
    assert tables["nccl"].framework == "nccl"
    assert tables["generation_attention"].path.suffix == ".csv"
    assert resolve_gpu("h100_sxm") == ("h100_sxm", "h100-sxm") == resolve_gpu("h100-sxm")
    assert resolve_gpu("h200") == ("h200_sxm", "h200")
    assert version_key("0.5.6.post2") < version_key("0.5.14")
    assert version_key("1.3.0rc11") < version_key("1.3.0rc20") < version_key("1.3.0")


def test_every_table_comes_from_the_gemm_tables_release_where_it_has_one(data):
    # a later release folder holding a supplement (TensorRT-LLM 1.3.0rc23's MoE table: one MXFP4
    # format beside 1.3.0rc20's six) is not read over the release the profile is built on; a table
    # only a later release measured still is, and NCCL's own versions keep their newest
    _write(data / "h100_sxm/moe/vllm/0.24.0/moe_perf.parquet", _moe_rows(0.4, 0.0))
    _write(data / "h100_sxm/moe/vllm/0.25.0/moe_perf.parquet", _moe_rows(0.5, 0.0))
    _write(data / "h100_sxm/comm/nccl/2.30.0/nccl_perf.parquet", _comm_rows(False))
    tables = read_gpu_tables(find_source(data), "h100-sxm", "vllm")
    assert tables["moe"].version == "0.24.0" and tables["nccl"].version == "2.30.0"
    (data / "h100_sxm/moe/vllm/0.24.0/moe_perf.parquet").unlink()
    assert read_gpu_tables(find_source(data), "h100-sxm", "vllm")["moe"].version == "0.25.0"


def test_bad_inputs_are_one_line_errors(data, tmp_path):
    with pytest.raises(AicDataError, match="no such folder"):
        find_source(tmp_path / "missing")
    with pytest.raises(AicDataError, match="valid: "):
        resolve_gpu("tpu-v5")
    with pytest.raises(AicDataError, match="no data for h200"):
        read_gpu_tables(find_source(data), "h200", "vllm")
    bad = data / "h100_sxm/gemm/vllm/0.30.0/gemm_perf.parquet"
    _write(bad, {"m": [1], "n": [2], "latency": [0.1]})
    with pytest.raises(AicDataError, match=r"missing column\(s\) gemm_dtype, k") as exc:
        read_gpu_tables(find_source(data), "h100-sxm", "vllm")
    assert "\n" not in str(exc.value) and str(bad) in str(exc.value)
    bad.write_bytes(b"not parquet")
    with pytest.raises(AicDataError, match="unreadable as parquet"):
        read_gpu_tables(find_source(data), "h100-sxm", "vllm")


def test_fit_recovers_the_hill_curve_the_latencies_came_from(data):
    source = find_source(data)
    doc = build_import_profile(read_gpu_tables(source, "h100-sxm", "vllm"), "h100-sxm", "vllm", source)
    assert doc["kernel_overhead_s"] == pytest.approx(OVERHEAD_MS * 1e-3)
    fit = doc["curves"]["gemm_bf16"]["fit"]
    assert fit["e_max"] == pytest.approx(E_MAX, rel=0.02)
    assert fit["x_half"] == pytest.approx(X_HALF, rel=0.05)
    assert {"attention_prefill", "attention_decode"} <= set(doc["curves"])
    assert doc["provenance"]["device"] == DEVICE and doc["provenance"]["framework_version"] == "0.24.0"
    assert "aiconfigurator" in doc["profile_id"] and "vllm-0.24.0" in doc["profile_id"]
    ar = doc["collectives"]["nvlink"]["ops"]["all_reduce"]
    assert ar["fit"]["alpha_s"] == pytest.approx(2e-6, rel=0.02)  # latencies made with 2 us per ring step
    assert ar["fit"]["beta_Bps"] == pytest.approx(300e9, rel=0.02)
    assert sorted(ar["by_gpus"]) == [2, 4, 8]
    assert "all_reduce" in doc["collectives"]["custom_all_reduce.vllm_graph"]["ops"]
    # The tables the engine prices from: NCCL's points per GPU count, and per size the fastest
    # custom backend (the eager one only at the largest size, where it was made the fastest).
    assert ar["table"][8] == {
        "bytes": [2 * s for s in SIZES],
        "seconds": [pytest.approx(_nccl_s(8, s), rel=1e-3) for s in SIZES],
    }
    custom = doc["collectives"]["custom_all_reduce"]
    assert custom["provenance"]["backends"] == ["vllm_eager", "vllm_graph"]
    row = custom["ops"]["all_reduce"]["table"][4]
    assert row["kernel"] == ["vllm_graph"] * 3 + ["vllm_eager"]
    assert row["seconds"] == [
        pytest.approx(_custom_s(4, s, k), rel=1e-3) for s, k in zip(SIZES, row["kernel"])
    ]


def test_written_profile_drives_gemm_times_through_calibration_path(data, tmp_path):
    [(sku, path, doc)] = import_profiles(find_source(data), ["h100-sxm"], "vllm", tmp_path / "out")
    assert path == tmp_path / "out" / "h100-sxm.vllm.yaml"
    profile = read_profile(path)
    assert profile.profile_id == doc["profile_id"] and "gemm_bf16" in profile.curves
    base = {
        "model": "llama-3.1-8b",
        "hardware": "h100-sxm",
        "workload": {"batch": 1, "prompt_tokens": 8192, "output_tokens": 2},
    }
    result = roofline.simulate(dict(base, calibration=str(path)))
    assert result.records()[0]["provenance"]["calibration"] == doc["profile_id"]
    up = [o for o in op_table(result, 0, "prefill") if o["name"] == "ffn_up"][0]
    x = (8192 * 2 * 14336 * 4096) ** (1 / 3)
    fit = profile.curves["gemm_bf16"]
    expected = (
        up["flops"] / (989.4e12 * hill(x, fit.e_max, fit.x_half, fit.p)) + 32 * profile.kernel_overhead_s
    )
    assert up["time_s"] == pytest.approx(expected, rel=0.02)  # the engine reads the curve on octave grid


@pytest.mark.parametrize("framework, measured", [("vllm", "custom"), ("hf", "nccl")])
def test_imported_tables_price_the_all_reduce_at_a_measured_size(data, tmp_path, framework, measured):
    # TP8 decode of Llama-3.1-8B at batch 16 all-reduces 16 x 4096 x 2 bytes = 128 KiB, a measured
    # size (65536 bfloat16 elements): vLLM's step takes the custom all-reduce table's time there,
    # HuggingFace's (NCCL) the NCCL table's, as the synthetic tables were made.
    [(_, path, doc)] = import_profiles(find_source(data), ["h100-sxm"], "vllm", tmp_path / "out")
    result = roofline.simulate(
        {
            "model": "llama-3.1-8b",
            "hardware": "h100-sxm",
            "parallelism": {"tp": 8},
            "calibration": str(path),
            "runtime": {"framework": framework},
            "workload": {"batch": 16, "prompt_tokens": 8192, "output_tokens": 2},
        }
    )
    (ar,) = [o for o in op_table(result, 0, "decode") if o["name"] == "attn_allreduce"]
    label = "custom_all_reduce" if measured == "custom" else "nvlink"
    row = doc["collectives"][label]["ops"]["all_reduce"]["table"][8]
    assert row["bytes"][1] == 16 * 4096 * 2
    assert ar["layers"][0]["time_per_layer_s"] == pytest.approx(row["seconds"][1], rel=1e-12)
    made = _custom_s(8, SIZES[1], "vllm_graph") if measured == "custom" else _nccl_s(8, SIZES[1])
    assert ar["layers"][0]["time_per_layer_s"] == pytest.approx(made, rel=1e-3)  # 4 significant digits


def _moe_roof(hw, tokens, hidden, inter, topk, experts, up=2, weight_bytes=2.0):
    """The roofline time of a fused MoE call as the importer reads the tables (bf16 inputs and
    outputs at the bf16 peak, weights at `weight_bytes` each, balanced routing): both expert GEMMs
    over the touched experts, the activation's and the combine's passes."""
    pairs = tokens * topk
    touched = min(pairs, experts)
    roof = (pairs * (up + 1) * inter + (pairs + tokens) * hidden) * 2 / hw.memory_bandwidth
    for n, k in ((up * inter, hidden), (hidden, inter)):
        nbytes = touched * n * k * weight_bytes + pairs * (k * 2 + n * 2)
        roof += max(2.0 * pairs * n * k / hw.peak("bf16"), nbytes / hw.memory_bandwidth)
    return roof


MOE_SHAPES = (
    (4096, 14336, 2, 8),
    (2048, 1024, 8, 128),
    (7168, 2048, 8, 256),
)  # hidden, inter, top-k, experts


def _moe_rows(
    attainment,
    overhead_s: float,
    gated: bool = True,
    fixed_s: float = 0.0,
    shapes=MOE_SHAPES,
    label: str = "bfloat16",
    weight_bytes: float = 2.0,
    tokens=(1, 4, 16, 64, 256, 1024, 4096),
):
    """Fused-MoE latencies at a known attainment (or hidden -> attainment: one per model shape) of
    the two expert GEMMs' roofline plus the activation's and the combine's HBM passes (bf16,
    balanced routing: the pairs touch min(pairs, experts) experts), plus a fixed time per call
    `fixed_s`; not gated: the up projection is inter wide (TensorRT-LLM's `moe_torch_flow_nongated`).
    `label`: the tables' moe_dtype, whose weights take `weight_bytes` each (four-bit experts under
    bf16 activations: 0.5)."""
    hw = load_hardware("h100-sxm")
    cols = {k: [] for k in ("num_tokens", "hidden_size", "inter_size", "topk", "num_experts", "latency")}
    att = attainment.get if isinstance(attainment, dict) else lambda _: attainment
    for hidden, inter, topk, experts in shapes:
        for t in tokens:
            roof = _moe_roof(hw, t, hidden, inter, topk, experts, 2 if gated else 1, weight_bytes)
            for key, v in zip(
                cols,
                (t, hidden, inter, topk, experts, (roof / att(inter) + 2 * overhead_s + fixed_s) * 1e3),
            ):
                cols[key].append(v)
    rows = len(cols["latency"])
    fixed = {"framework": "VLLM", "version": "0.24.0", "device": DEVICE, "moe_dtype": label}
    fixed.update(
        {
            "moe_tp_size": 1,
            "moe_ep_size": 1,
            "distribution": "balanced",
            "kernel_source": "fused_moe" if gated else "moe_torch_flow_nongated",
        }
    )
    return {**{k: [v] * rows for k, v in fixed.items()}, **cols}


@pytest.mark.parametrize("gated, fixed_s", [(True, 0.0), (False, 0.0), (True, 20e-6)])
def test_moe_grid_prices_the_fused_kernel_it_was_fitted_to(data, tmp_path, gated, fixed_s):
    # a non-gated kernel's attainment (of its own, narrower up projection) carries over to the
    # engine's gated experts; a fixed time per call is read off the one-token calls (call_s) and
    # charged once per layer, the attainment of the rest held
    from roofline.profilers.calibrate_fit import summary_table

    rows = _moe_rows(0.4, OVERHEAD_MS * 1e-3, gated, fixed_s)
    _write(data / "h100_sxm/moe/vllm/0.24.0/moe_perf.parquet", rows)
    [(_, path, doc)] = import_profiles(find_source(data), ["h100-sxm"], "vllm", tmp_path / "out")
    profile = read_profile(path)
    grid = profile.grids["moe_bf16"]
    assert grid.call_s == pytest.approx(fixed_s, abs=1e-9)
    moe_line = next(line for line in summary_table(doc).splitlines() if line.strip().startswith("moe_bf16"))
    assert ("20.0 us" in moe_line) == bool(fixed_s)  # the summary names the fixed time
    assert moe_line.endswith("  3 shapes")  # and the measured model shapes it prices as measured
    assert grid.holdout["median"] < 0.01  # a constant attainment is held exactly (4 figures written)
    # beside the grid, a sample of the measured shapes: (first axis, measured, the grid's value)
    import yaml

    entry = yaml.safe_load(path.read_text())["grids"]["moe_bf16"]
    assert entry["x"] == "log2_rows_per_expert" and 0 < len(entry["points"]) <= 200
    assert all(
        m == pytest.approx(0.4, rel=2e-3) and f == pytest.approx(0.4, rel=2e-3) for _, m, f in entry["points"]
    )
    result = roofline.simulate(
        {
            "model": "mixtral-8x7b",
            "hardware": "h100-sxm",
            "calibration": str(path),
            "workload": {"batch": 4, "prompt_tokens": 1024, "output_tokens": 2},
        }
    )
    ops = {o["name"]: o for o in op_table(result, 0, "decode")}
    for name in ("expert_up", "expert_down"):
        o = ops[name]
        roof = max(o["flops"] / 989.4e12, o["bytes"] / 3.35e12)
        fixed = fixed_s if name == "expert_up" else 0.0  # the fused call's fixed time, on the first GEMM
        assert o["time_s"] == pytest.approx(roof / 0.4 + 32 * (profile.kernel_overhead_s + fixed), rel=2e-3)
    for name in ("expert_act", "expert_combine"):  # inside the fused kernel: its attainment, no launch
        assert ops[name]["time_s"] == pytest.approx(ops[name]["bytes"] / (3.35e12 * 0.4), rel=2e-3)


@pytest.mark.parametrize(
    "model, weights, label",
    [("gpt-oss-120b", "fp4", "w4a16_mxfp4"), ("mixtral-8x7b", "int4", "int4_wo")],
)
def test_four_bit_experts_under_16_bit_activations_read_their_own_measured_kernels(
    data, tmp_path, model, weights, label
):
    # W4A16 experts convert their weights in the kernel: the table times that kernel (GPT-OSS's
    # MXFP4 experts on Hopper, an AWQ/GPTQ int4 MoE) at 0.25 of its roof (four-bit weights, the bf16
    # peak), the bf16 experts at 0.5. The engine prices dtype.weights fp4/int4 under bf16
    # activations from the former, and nothing more (the weight-only factors of efficiency.WEIGHT_ONLY
    # are inside that measured time); bf16 experts from the latter.
    shapes = ((2880, 2880, 4, 128), (4096, 14336, 2, 8), (2048, 1024, 8, 128), (7168, 2048, 8, 256))
    moe = {
        k: a + b
        for (k, a), b in zip(
            _moe_rows(0.25, OVERHEAD_MS * 1e-3, shapes=shapes, label=label, weight_bytes=0.5).items(),
            _moe_rows(0.5, OVERHEAD_MS * 1e-3, shapes=shapes).values(),
        )
    }
    _write(data / "h100_sxm/moe/vllm/0.24.0/moe_perf.parquet", moe)
    [(_, path, _)] = import_profiles(find_source(data), ["h100-sxm"], "vllm", tmp_path / "out")
    profile = read_profile(path)
    kind = f"moe_{weights}_bf16"
    assert {"moe_bf16", kind} <= set(profile.grids)
    layers = 36 if model == "gpt-oss-120b" else 32
    for w, attainment, key in ((weights, 0.25, kind), ("bf16", 0.5, "moe_bf16")):
        result = roofline.simulate(
            {
                "model": model,
                "hardware": "h100-sxm",
                "calibration": str(path),
                "dtype": {"weights": w, "activations": "bf16"},
                "workload": {"batch": 64, "prompt_tokens": 1024, "output_tokens": 2},
                "runtime": {"moe_routing": "balanced"},  # as the tables route
            }
        )
        ops = {o["name"]: o for o in op_table(result, 0, "decode")}
        for name in ("expert_up", "expert_down"):
            o = ops[name]
            roof = max(o["flops"] / 989.4e12, o["bytes"] / 3.35e12)
            want = roof / attainment + layers * profile.kernel_overhead_s
            assert o["time_s"] == pytest.approx(want, rel=3e-3), (w, name)
        assert key in result.records()[0]["provenance"]["error_band"]


def test_a_measured_model_shape_is_priced_as_measured_beside_the_grid(data, tmp_path):
    # Mixtral's experts (intermediate 14336) ran at 0.2 of their roof, two neighbouring shapes'
    # (12288 and 16384) and a small model's at 0.4: the grid's nodes are medians over shapes, so
    # near Mixtral it holds about 0.4; each measured shape's own scale of it (Grid.shapes) prices
    # Mixtral as measured. At 1024 prompt tokens the 2048 pairs touch all 8 experts under either
    # routing, so the engine's roof is the table's.
    import yaml

    shapes = ((4096, 14336, 2, 8), (4096, 12288, 2, 8), (4096, 16384, 2, 8), (2048, 1024, 8, 128))
    rows = _moe_rows({14336: 0.2, 12288: 0.4, 16384: 0.4, 1024: 0.4}, OVERHEAD_MS * 1e-3, shapes=shapes)
    _write(data / "h100_sxm/moe/vllm/0.24.0/moe_perf.parquet", rows)
    [(_, path, _doc)] = import_profiles(find_source(data), ["h100-sxm"], "vllm", tmp_path / "out")
    grid = read_profile(path).grids["moe_bf16"]
    assert sorted(grid.shapes) == sorted(shapes)
    tokens, _ = grid.shapes[(4096, 14336, 2, 8)]
    assert list(tokens) == [0, 2, 4, 6, 8, 10, 12]  # log2 of the measured token counts

    def expert_ops(profile_path):
        scenario = {
            "model": "mixtral-8x7b",
            "hardware": "h100-sxm",
            "calibration": str(profile_path),
            "runtime": {"framework": "kernel", "moe_routing": "balanced"},  # as the tables route
            "workload": {"batch": 1, "prompt_tokens": 1024, "output_tokens": 1},
        }
        return {o["name"]: o for o in op_table(roofline.simulate(scenario), 0, "prefill")}

    # the kernel as the table measured it (roof / 0.2 and two launches), in each of 32 layers
    measured = 32 * (
        _moe_roof(load_hardware("h100-sxm"), 1024, 4096, 14336, 2, 8) / 0.2 + 2 * OVERHEAD_MS * 1e-3
    )
    names = ("expert_up", "expert_act", "expert_down", "expert_combine")
    priced = sum(expert_ops(path)[n]["time_s"] for n in names)
    assert priced == pytest.approx(measured, rel=2e-3)  # 4 significant digits of the profile
    grid_only = sum(expert_ops(_without_shapes(path, tmp_path))[n]["time_s"] for n in names)
    assert grid_only < 0.8 * measured  # the grid alone reads it near the other shapes' 0.4
    # the YAML lists the shape's fields by name
    entry = yaml.safe_load(path.read_text())["grids"]["moe_bf16"]["shapes"][2]  # in order of the shape
    assert {k: entry[k] for k in ("hidden", "intermediate", "top_k", "experts")} == {
        "hidden": 4096,
        "intermediate": 14336,
        "top_k": 2,
        "experts": 8,
    }


def test_the_measured_shapes_benchmark_prices_the_tables_rows_as_measured(data, tmp_path, monkeypatch):
    # benchmarks/aic_measured_shapes.py over the same synthetic table: from the grid alone the
    # slow shape (0.2 of its roof among neighbours at 0.4) is priced too fast; with the shapes'
    # scales every row is the measured time to the profile's four significant figures
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from aic_measured_shapes import errors

    shapes = ((4096, 14336, 2, 8), (4096, 12288, 2, 8), (4096, 16384, 2, 8), (2048, 1024, 8, 128))
    rows = _moe_rows({14336: 0.2, 12288: 0.4, 16384: 0.4, 1024: 0.4}, OVERHEAD_MS * 1e-3, shapes=shapes)
    _write(data / "h100_sxm/moe/vllm/0.24.0/moe_perf.parquet", rows)
    import_profiles(find_source(data), ["h100-sxm"], "vllm", tmp_path / "out")
    monkeypatch.setenv("ROOFLINE_CALIBRATION_DIR", str(tmp_path / "out"))
    alone, shaped = errors(find_source(data), "h100-sxm", "vllm")["bf16"]
    assert alone.size == shaped.size == 4 * 7  # four shapes at seven token counts
    assert np.max(np.abs(shaped)) < 2e-3
    assert np.min(alone) < -0.2  # the slow shape, read at its neighbours' attainment


def _without_shapes(path, tmp_path):
    import yaml

    doc = yaml.safe_load(path.read_text())
    for grid in doc["grids"].values():
        grid.pop("shapes", None)
    out = tmp_path / "no_shapes.yaml"
    out.write_text(yaml.safe_dump(doc))
    return out


def test_moe_rows_slower_than_their_model_at_a_smaller_tp_share_are_left_out():
    # one model's experts at TP 1, 2, 4, 8 and two token counts: at TP 2 the kernel took 3x its TP1
    # time (an untuned configuration: half the work, longer), at TP 8 5% longer than TP 4 at one
    # token (launch-bound, within the margin); another format's rows are their own family
    from roofline.profilers.aic_points import moe_kernel_rows

    tp = np.array([1, 2, 4, 8] * 2 + [1, 2], dtype=float)
    tokens = np.array([1] * 4 + [64] * 4 + [64, 64], dtype=float)
    latency = np.array([0.04, 0.12, 0.03, 0.0315, 0.5, 1.5, 0.14, 0.08, 0.5, 0.45])
    n = tp.size
    cols = {
        "moe_dtype": np.array(["bfloat16"] * 8 + ["fp8", "fp8"], dtype=object),
        "num_tokens": tokens,
        "hidden_size": np.full(n, 4096.0),
        "inter_size": np.full(n, 14336.0),
        "topk": np.full(n, 2.0),
        "num_experts": np.full(n, 8.0),
        "moe_tp_size": tp,
        "moe_ep_size": np.ones(n),
        "distribution": np.array(["balanced"] * n, dtype=object),
        "latency": latency,
    }
    assert list(moe_kernel_rows(cols)) == [0, 2, 3, 4, 6, 7, 8, 9]


@pytest.mark.parametrize("attainment, why", [(0.97, "implausible"), (1.5, "ran faster than")])
def test_moe_table_at_or_beyond_its_roofline_is_not_gridded(data, tmp_path, attainment, why):
    # a fused MoE whose median kernel beats 95% of the expert GEMMs' roofline is implausible, and
    # rows beyond the roofline are no kernel the engine prices: noted, not used
    _write(data / "h100_sxm/moe/vllm/0.24.0/moe_perf.parquet", _moe_rows(attainment, 0.0))
    [(_, path, doc)] = import_profiles(find_source(data), ["h100-sxm"], "vllm", tmp_path / "out")
    assert "moe_bf16" not in read_profile(path).grids
    assert why in doc["fit_notes"]["moe_bf16"]


def test_a_moe_grid_of_one_model_shape_holds_out_token_counts(data, tmp_path):
    # one shape (TensorRT-LLM H100's MXFP4 table: GPT-OSS 20B's experts only): no shape to hold out,
    # so a fifth of its token counts are (at least one); its error band is that held-out error
    # (0 for a constant attainment), not a missing figure
    one = _moe_rows(
        0.25,
        OVERHEAD_MS * 1e-3,
        shapes=((2880, 2880, 4, 32),),
        label="w4a16_mxfp4",
        weight_bytes=0.5,
        tokens=2 ** np.arange(12),
    )
    _write(data / "h100_sxm/moe/vllm/0.24.0/moe_perf.parquet", one)
    [(_, path, _)] = import_profiles(find_source(data), ["h100-sxm"], "vllm", tmp_path / "out")
    grid = read_profile(path).grids["moe_fp4_bf16"]
    assert 1 <= grid.holdout["rows"] < 12 and grid.holdout["median"] < 2e-3
    rec = roofline.simulate(
        {
            "model": "gpt-oss-20b",
            "hardware": "h100-sxm",
            "calibration": str(path),
            "dtype": {"weights": "fp4", "activations": "bf16"},
            "workload": {"batch": 8, "prompt_tokens": 1024, "output_tokens": 2},
        }
    ).records()[0]
    assert rec["provenance"]["error_band"]["moe_fp4_bf16"] == grid.holdout["median"]


def _mla_rows(generation: bool, attainment: float, fixed_s: float):
    """MLA kernels (DeepSeek-V3's per-head dims) at a known roofline attainment: fixed_s (the launch)
    + roof / attainment; decode FLOPs 2 b h (2 x 512 + 64) per KV token, bytes the 576-element latent
    in the KV format plus q, o and the new token."""
    from roofline.api import attention_flops, flash_kv_hbm_tokens, flash_query_block_rows, prefill_pairs

    hw = load_hardware("h100-sxm")
    rows = []
    for b in (1, 4, 16):
        for h in (16, 32, 128):
            for kv, kb in (("bfloat16", 2), ("fp8", 1)):
                for L in (128, 1024, 8192) if generation else (16, 256, 1024, 4096):
                    if generation:
                        flops = 2.0 * b * h * 1088 * L
                        nbytes = b * L * 576 * kb + b * (h * 320 * 2 + 576 * kb)
                    else:
                        pairs = prefill_pairs(b, L, 0)
                        flops = attention_flops(pairs, h, 192, 128)
                        br = flash_query_block_rows(192, hw.smem_per_sm_bytes)
                        kv_reads = flash_kv_hbm_tokens(pairs, b * L, L, br, hw.sm_count)
                        nbytes = (b * L + kv_reads) * h * 320 * 2 + b * L * kb * 576
                    roof = max(flops / hw.peak("bf16"), nbytes / hw.memory_bandwidth)
                    row = {"device": DEVICE, "mla_dtype": "bfloat16", "kv_cache_dtype": kv, "num_heads": h}
                    row.update(batch_size=b, isl=1 if generation else L, step=L - 1 if generation else 0)
                    rows.append({**row, "latency": (fixed_s + roof / attainment) * 1e3})
    return {key: [r[key] for r in rows] for key in rows[0]}


def test_mla_tables_grid_and_price_deepseek_attention(data, tmp_path):
    # without MLA tables no MLA grid; with them, the grids hold the attainment the latencies were made
    # at, and the engine prices DeepSeek-V2-Lite's MLA (DeepSeek-V3's per-head dims, 16 heads) by them
    [(_, path, _)] = import_profiles(find_source(data), ["h100-sxm"], "vllm", tmp_path / "before")
    assert not {"mla_prefill", "mla_decode"} & set(read_profile(path).grids)
    overhead = OVERHEAD_MS * 1e-3
    _write(data / "h100_sxm/mla/vllm/0.24.0/context_mla_perf.parquet", _mla_rows(False, 0.4, overhead))
    _write(data / "h100_sxm/mla/vllm/0.24.0/generation_mla_perf.csv", _mla_rows(True, 0.5, overhead), "csv")
    [(_, path, _)] = import_profiles(find_source(data), ["h100-sxm"], "vllm", tmp_path / "out")
    profile = read_profile(path)
    assert profile.grids["mla_prefill"].holdout["median"] < 0.01
    assert profile.grids["mla_decode"].holdout["median"] < 0.01
    scenario = {
        "model": "deepseek-v2-lite",
        "hardware": "h100-sxm",
        "calibration": str(path),
        "workload": {"batch": 4, "prompt_tokens": 1024, "output_tokens": 2},
    }
    res = roofline.simulate(scenario)
    peak, bw, layers = 989.4e12, 3.35e12, 27
    pre = next(o for o in op_table(res, 0, "prefill") if o["kind"] == "attention_prefill")
    roof = max(pre["flops"] / peak, pre["bytes"] / bw)
    eager = 4e-6  # vLLM's prefill launches (frameworks.EAGER_LAUNCH_S)
    assert pre["time_s"] == pytest.approx(roof / 0.4 + layers * (profile.kernel_overhead_s + eager), rel=2e-3)
    dec = next(o for o in op_table(res, 0, "decode") if o["kind"] == "attention_decode")
    roof = max(dec["flops"] / peak, dec["bytes"] / bw)
    assert dec["time_s"] == pytest.approx(roof / 0.5 + layers * profile.kernel_overhead_s, rel=2e-3)


def _context_rows(attainments: dict, fixed_s: float):
    """Causal prefill kernels (heads, KV heads; head dim 128) per attention format at a known
    roofline attainment of that format's roof (its peak, q/o/k/v in its bytes): fixed_s + roof /
    attainment; `attainments` maps the tables' (attn_dtype, kv_cache_dtype) to it."""
    from roofline.api import (
        attention_flops,
        dtype_bytes,
        flash_kv_hbm_tokens,
        flash_query_block_rows,
        prefill_pairs,
    )

    hw = load_hardware("h100-sxm")
    rows = []
    for (label, kv_label), attainment in attainments.items():
        fmt = "fp8" if label == "fp8" else "bf16"
        for b in (1, 4, 16):
            for L in (512, 2048, 8192, 16384):
                for h, kvh in ((32, 8), (64, 8), (16, 16)):
                    pairs = prefill_pairs(b, L, 0)
                    flops = attention_flops(pairs, h, 128, 128)
                    br = flash_query_block_rows(128, hw.smem_per_sm_bytes)
                    kv_reads = flash_kv_hbm_tokens(pairs, b * L, L, br, hw.sm_count)
                    nbytes = (b * L * h + kv_reads * kvh) * 2 * 128 * dtype_bytes(fmt)
                    roof = max(flops / hw.peak(fmt), nbytes / hw.memory_bandwidth)
                    row = {"device": DEVICE, "batch_size": b, "isl": L, "num_heads": h}
                    row.update(
                        num_key_value_heads=kvh, head_dim=128, attn_dtype=label, kv_cache_dtype=kv_label
                    )
                    rows.append({**row, "window_size": 0, "latency": (fixed_s + roof / attainment) * 1e3})
    return {key: [r[key] for r in rows] for key in rows[0]}


@pytest.mark.parametrize("over_fp8_cache", [False, True])
def test_prefill_attention_gets_a_grid_per_format_and_prices_each(data, tmp_path, over_fp8_cache):
    # The context tables time FP8 attention over an FP8 KV cache (TensorRT-LLM's) and bf16 attention
    # over an FP8 cache (vLLM's FlashAttention reading one) beside the bf16 kernels: the importer
    # grids each at its attention format's roof; the engine prices FP8 attention (dtype.attention
    # fp8, or auto under TensorRT-LLM's FP8 cache) from the FP8 grid at the FP8 peak, 16-bit
    # attention over an FP8 cache from the fastest kernel measured over one (at 8K tokens the FP8
    # kernel at 0.3 of the FP8 roof is 0.6 of the bf16 roof on an H100; the bf16 one here 0.7), and
    # no longer calls the FP8 curve borrowed
    overhead = OVERHEAD_MS * 1e-3
    table = data / "h100_sxm/attention/vllm/0.24.0/context_attention_perf.parquet"
    _write(table, _context_rows({("bfloat16", "bfloat16"): 0.5}, overhead))
    [(_, path, _)] = import_profiles(find_source(data), ["h100-sxm"], "vllm", tmp_path / "before")
    assert not {"attention_prefill_fp8", "attention_prefill_kv_fp8"} & set(read_profile(path).grids)
    rows = {("bfloat16", "bfloat16"): 0.5, ("fp8", "fp8"): 0.3}
    if over_fp8_cache:
        rows[("bfloat16", "fp8")] = 0.7
    _write(table, _context_rows(rows, overhead))
    [(_, path, _)] = import_profiles(find_source(data), ["h100-sxm"], "vllm", tmp_path / "out")
    profile = read_profile(path)
    assert {"attention_prefill_fp8", "attention_prefill_kv_fp8"} <= set(profile.grids)
    for kind in ("attention_prefill", "attention_prefill_fp8"):
        assert profile.grids[kind].holdout["median"] < 0.01
    hw, layers, eager = load_hardware("h100-sxm"), 32, 4e-6  # vLLM's prefill launches eagerly
    cases = [("fp8", "fp8", "fp8", 0.3), ("bf16", "bf16", "bf16", 0.5)]
    fp8_as_bf16 = 0.3 * hw.peak("fp8") / hw.peak("bf16")  # the FP8 kernel against the bf16 roof
    cases.append(("bf16", "fp8", "bf16", 0.7 if over_fp8_cache else fp8_as_bf16))
    for attention, kv, fmt, attainment in cases:
        scenario = {
            "model": "llama-3.1-8b",
            "hardware": "h100-sxm",
            "calibration": str(path),
            "dtype": {"attention": attention, "kv": kv},
            "workload": {"batch": 4, "prompt_tokens": 8192, "output_tokens": 2},
        }
        res = roofline.simulate(scenario)
        pre = next(o for o in op_table(res, 0, "prefill") if o["kind"] == "attention_prefill")
        roof = max(pre["flops"] / hw.peak(fmt), pre["bytes"] / hw.memory_bandwidth)
        launches = layers * (profile.kernel_overhead_s + eager)
        assert pre["time_s"] == pytest.approx(roof / attainment + launches, rel=2e-3)
        rec = res.records()[0]
        assert not [w for w in rec["provenance"]["warnings"] if "fp8 attention uses" in w]
        band = rec["provenance"]["error_band"]
        assert ("attention_prefill_fp8" in band) == (attention == "fp8")


def _moe_table(rows: list):
    """A MoE table of (moe_dtype, tokens, hidden, inter, topk, experts, kernel_source, latency ms)
    rows, balanced routing, TP 1, no expert parallelism."""
    from pathlib import Path

    from roofline.profilers.aic_read import Table

    names = ("moe_dtype", "num_tokens", "hidden_size", "inter_size", "topk", "num_experts", "kernel_source")
    cols = {
        k: np.array([r[i] for r in rows], dtype=object if i in (0, 6) else float) for i, k in enumerate(names)
    }
    cols["latency"] = np.array([r[7] for r in rows], dtype=float)
    n = len(rows)
    cols.update(
        moe_tp_size=np.ones(n), moe_ep_size=np.ones(n), distribution=np.full(n, "balanced", dtype=object)
    )
    return Table("moe", Path("moe_perf.parquet"), "vllm", "0", "", cols)


def test_fp8_moe_grid_takes_one_format_the_faster_on_shapes_both_measured():
    # per-tensor fp8 is 4x slower than block-scaled fp8 where both measured (16 tokens): the fp8 grid
    # is block-scaled throughout; the shape only per-tensor measured (hidden 2048) is left out, not
    # mixed in at the slow kernel's attainment
    from roofline.profilers.aic_points import moe_points

    rows = [
        ("fp8", 16, 4096, 14336, 2, 8, "cutlass", 4.0),
        ("fp8_block", 16, 4096, 14336, 2, 8, "triton", 1.0),
        ("fp8_block", 64, 4096, 14336, 2, 8, "triton", 2.0),
        ("fp8", 16, 2048, 1024, 8, 128, "cutlass", 3.0),
    ]
    fp8 = moe_points(_moe_table(rows), load_hardware("h100-sxm"))["fp8"]
    assert list(fp8["tokens"]) == [16.0, 64.0] and list(fp8["hidden"]) == [4096.0, 4096.0]
    assert list(fp8["seconds"]) == pytest.approx([1e-3, 2e-3])
    assert fp8["label"] == "fp8_block"
    # where per-tensor is the faster (B200's TensorRT-LLM kernels), it is the grid's format
    faster = _moe_table([(*r[:7], 0.5) if r[0] == "fp8" else r for r in rows])
    fp8 = moe_points(faster, load_hardware("h100-sxm"))["fp8"]
    assert fp8["label"] == "fp8" and sorted(fp8["hidden"]) == [2048.0, 4096.0]


def test_moe_rows_faster_than_their_roofline_are_not_learned_and_nvfp4_is_the_fp4_grid():
    # TensorRT-LLM's B200 min-latency kernel: 46 us at 4 tokens of Mixtral's 8 x (6144 x 16384)
    # experts, where the 4 tokens' 8 pairs read all eight experts' NVFP4 weights (157 us at the
    # datasheet bandwidth): it read fewer experts than the routing names. The shape's fastest
    # physical kernel (cutlass, 241 us) is the point; at 1 token (2 experts) the min-latency
    # kernel is physical and the fastest.
    from roofline.profilers.aic_points import moe_points

    hw = load_hardware("b200")
    rows = [
        ("nvfp4", 4, 6144, 16384, 2, 8, "min_latency", 0.046),
        ("nvfp4", 4, 6144, 16384, 2, 8, "cutlass", 0.241),
        ("nvfp4", 1, 6144, 16384, 2, 8, "min_latency", 0.047),
        ("nvfp4", 1, 6144, 16384, 2, 8, "cutlass", 0.093),
        ("w4a8_mxfp4_mxfp8", 1, 6144, 16384, 2, 8, "cutlass", 0.01),  # another format: not fp4's
    ]
    fp4 = moe_points(_moe_table(rows), hw)["fp4"]
    assert sorted(zip(fp4["tokens"], fp4["seconds"])) == [
        (1.0, pytest.approx(47e-6)),
        (4.0, pytest.approx(241e-6)),
    ]
    weights = 8 * 3 * 6144 * 16384 * 0.5  # all eight experts, 4-bit
    assert weights / hw.memory_bandwidth == pytest.approx(157e-6, rel=0.02)
    assert np.all(fp4["roof"] <= fp4["seconds"]) and fp4["label"] == "nvfp4"


def test_min_latency_moe_rows_count_only_up_to_128_tokens():
    # TensorRT-LLM's min-latency MoE mode runs only for <= 128 tokens: above, the table's far faster
    # min-latency rows (Qwen3-30B-A3B's experts, NVFP4, B200: 0.25 ms at 8,192 tokens where the
    # CUTLASS flow takes 1.0 ms) time a mode no deployment runs, and the CUTLASS row is the point;
    # at 128 tokens the min-latency row is still the fastest kernel
    from roofline.profilers.aic_points import moe_points

    rows = [
        ("nvfp4", 128, 2048, 768, 8, 128, "moe_torch_flow_min_latency", 0.0541),
        ("nvfp4", 128, 2048, 768, 8, 128, "moe_torch_flow_cutlass", 0.1669),
        ("nvfp4", 129, 2048, 768, 8, 128, "moe_torch_flow_min_latency", 0.0545),
        ("nvfp4", 129, 2048, 768, 8, 128, "moe_torch_flow_cutlass", 0.1672),
        ("nvfp4", 8192, 2048, 768, 8, 128, "moe_torch_flow_min_latency", 0.2542),
        ("nvfp4", 8192, 2048, 768, 8, 128, "moe_torch_flow_cutlass", 1.0086),
    ]
    fp4 = moe_points(_moe_table(rows), load_hardware("b200"))["fp4"]
    assert sorted(zip(fp4["tokens"], fp4["seconds"])) == [
        (128.0, pytest.approx(54.1e-6)),
        (129.0, pytest.approx(167.2e-6)),
        (8192.0, pytest.approx(1.0086e-3)),
    ]


def test_moe_grid_is_of_gated_experts_unless_a_table_measured_only_non_gated_ones():
    # Nemotron 3 Nano's experts (1856 wide, top-6 of 128) are a non-gated MLP: next to gated shapes
    # they are left out (another kernel path); alone they stand in, read with an up projection
    # inter wide, so their roof is 2/3 of a gated one's where weights dominate
    from roofline.profilers.aic_points import moe_points

    hw = load_hardware("h100-sxm")
    nano = ("bfloat16", 1, 2688, 1856, 6, 128, "fused_moe", 0.05)
    gated = ("bfloat16", 1, 4096, 14336, 2, 8, "fused_moe", 0.3)
    both = moe_points(_moe_table([nano, gated]), hw)["bf16"]
    assert list(both["hidden"]) == [4096.0]
    alone = moe_points(_moe_table([nano]), hw)["bf16"]
    weights = 6 * 3 * 2688 * 1856 * 2.0  # six experts' up and down, bf16: one token touches six
    roof = weights * 2 / 3 / hw.memory_bandwidth
    assert alone["roof"][0] == pytest.approx(roof, rel=0.01)  # activations are < 1% of the bytes


def test_calibrate_from_aiconfigurator_prints_the_grids_it_fitted(data, tmp_path, capsys):
    # the summary lists each measured grid with its cells and its error on held-out shapes, the
    # numbers the written profile carries
    from roofline.cli.main import main

    out = tmp_path / "out"
    args = [
        "calibrate",
        "--from",
        "aiconfigurator",
        "--data",
        str(data),
        "--gpu",
        "h100-sxm",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    grid = read_profile(out / "h100-sxm.vllm.yaml").grids["gemm_bf16"]
    line = next(x for x in text.splitlines() if x.split()[:1] == ["gemm_bf16"] and "x" in x.split()[1])
    assert line.split()[1] == "x".join(str(n) for n in grid.shape)
    assert line.split()[2] == f"{grid.holdout['median']:.1%}" and line.split()[4] == str(
        int(grid.holdout["rows"])
    )
    assert "held-out median" in text


def test_calibrate_from_aiconfigurator_names_the_gpus_with_tables(data, tmp_path, capsys):
    # the data has an empty h100_pcie folder (as aiconfigurator-core 0.12.0 ships it) and vLLM
    # tables for h100_sxm only: an unknown name and a GPU without the framework's tables both name
    # the GPUs that have them, not every folder
    from roofline.cli.main import main

    (data / "h100_pcie").mkdir()
    base = ["calibrate", "--from", "aiconfigurator", "--data", str(data), "--out", str(tmp_path / "o")]
    assert main(base + ["--gpu", "h100"]) == 2
    assert "--gpu h100: no AIConfigurator data maps to it; valid: h100-sxm\n" in capsys.readouterr().err
    assert main(base + ["--gpu", "h100-pcie"]) == 2
    err = capsys.readouterr().err
    assert "--gpu h100-pcie: the data has no vllm tables for it; with them: h100-sxm\n" in err
    assert main(base + ["--gpu", "h100-sxm", "--framework", "sglang"]) == 2
    assert "no sglang tables for it; with them: none" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written


def test_table_agreement_compares_two_frameworks_bf16_gemms_on_shared_shapes(tmp_path):
    # SGLang's table holds vLLM's 26 bf16 shapes at 1.02x (25 of them) and 1.5x (one), plus an
    # fp8 row that is not compared: |ratio - 1| is 0.02 for 25 shapes and 0.5 for one, so the
    # median is 2% and the p90 (numpy's linear quantile, position 22.5 of 0..25) 2%. No TensorRT-LLM
    # table: no row for that pair.
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from aic_repeat import agreement

    vllm = _gemm_rows()
    _write(tmp_path / "h100_sxm/gemm/vllm/0.24.0/gemm_perf.parquet", vllm)
    sglang = {k: list(v) for k, v in vllm.items()}
    sglang["latency"] = [t * (1.5 if i == 3 else 1.02) for i, t in enumerate(vllm["latency"])]
    sglang["framework"] = ["SGLANG"] * len(sglang["m"])
    sglang["version"] = ["0.5.14"] * len(sglang["m"])
    for key in sglang:
        sglang[key].append({"gemm_dtype": "fp8", "latency": 9.0}.get(key, sglang[key][-1]))
    _write(tmp_path / "h100_sxm/gemm/sglang/0.5.14/gemm_perf.parquet", sglang)
    out = agreement(find_source(tmp_path), ["h100-sxm"])
    assert list(out["h100-sxm"]) == [("vllm", "sglang")]
    med, p90, shapes = out["h100-sxm"][("vllm", "sglang")]
    assert shapes == len(vllm["m"]) == 26
    assert med == pytest.approx(0.02, rel=1e-9) and p90 == pytest.approx(0.02, rel=1e-9)


def test_a_moe_grid_carries_its_tables_skewed_routing_over_balanced(data, tmp_path):
    # the same kernels timed under power-law routing (1.3x at >= 64 rows per expert, 0.9x at a few)
    # and under power_law_1.01 (not read): the grid's skew is the median ratio per octave of rows
    # per expert, an octave without three shapes holding its nearest measured neighbour's value
    tokens = tuple(2**i for i in range(13))
    balanced = _moe_rows(0.4, OVERHEAD_MS * 1e-3, tokens=tokens)
    rows = {k: list(v) for k, v in balanced.items()}
    for dist, slow in (("power_law_1.2", None), ("power_law_1.01", 5.0)):
        for i, t in enumerate(balanced["num_tokens"]):
            pairs = t * balanced["topk"][i]
            octave = np.log2(pairs / min(pairs, balanced["num_experts"][i]))
            for k in rows:
                rows[k].append(balanced[k][i])
            rows["distribution"][-1] = dist
            rows["latency"][-1] = balanced["latency"][i] * (slow or (1.3 if octave >= 6 else 0.9))
    _write(data / "h100_sxm/moe/vllm/0.24.0/moe_perf.parquet", rows)
    [(_, path, _doc)] = import_profiles(find_source(data), ["h100-sxm"], "vllm", tmp_path / "out")
    grid = read_profile(path).grids["moe_bf16"]
    assert len(grid.skew) == 13
    counts = np.zeros(13, int)
    for t in tokens:
        for _, _, k, e in MOE_SHAPES:
            counts[int(np.clip(np.round(np.log2(t * k / min(t * k, e))), 0, 12))] += 1
    measured = np.flatnonzero(counts >= 3)
    assert measured.size >= 8  # octaves 0 .. 9 or so: each shape reaches them
    for octave in range(13):
        at = measured[np.argmin(np.abs(measured - octave))]  # itself where measured
        want = 1.3 if at >= 6 else 0.9
        assert grid.skew[octave] == pytest.approx(want, rel=1e-3), octave
    # without skewed rows, no curve (the engine falls back to grouped_gemm's)
    _write(data / "h100_sxm/moe/vllm/0.24.0/moe_perf.parquet", balanced)
    [(_, path, _doc)] = import_profiles(find_source(data), ["h100-sxm"], "vllm", tmp_path / "out2")
    assert read_profile(path).grids["moe_bf16"].skew == ()
