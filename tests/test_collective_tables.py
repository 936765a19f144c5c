"""Measured collective tables in a calibration profile (`collectives.<link>.ops.<op>.table`): bad
tables are refused naming the field; the engine prices an op of S bytes on n GPUs by linear
interpolation (an alpha-beta line per segment) of the table measured on n GPUs (held below the
smallest size, the last segment's line beyond the largest); the framework's own all-reduce table where the engine uses the peer
all-reduce, NCCL's otherwise; GPU counts without a table and profiles without tables are priced
exactly as before. Profiles here are synthetic, written in the test."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import roofline
from roofline.hwspecs import read_profile
from roofline.simulator.calibration import CalibrationError, CollectiveTable
from roofline.simulator.results import op_table

NVLINK_FIT = {"alpha_s": 10e-6, "beta_Bps": 200e9, "residual": 0.02}


def _write(tmp_path, collectives: dict, name: str = "tables.yaml"):
    doc = {"profile_id": "h100-sxm-tables", "hardware": "h100-sxm", "collectives": collectives}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc))
    return path


def _nvlink(tables: dict, fit: bool = True) -> dict:
    """An nvlink entry: the all-reduce fit and the tables {op: {gpus: (bytes, seconds)}}."""
    ops = {"all_reduce": {"fit": NVLINK_FIT}} if fit else {}
    for op, by_gpus in tables.items():
        ops.setdefault(op, {})["table"] = {
            n: {"bytes": list(b), "seconds": list(s)} for n, (b, s) in by_gpus.items()
        }
    return {"ops": ops}


def _per_layer(path, phase: str = "decode", **scenario) -> dict:
    """name -> seconds per layer of each communication op of one point."""
    spec = {
        "model": "llama-3.1-70b",
        "hardware": "h100-sxm",
        "parallelism": {"tp": 8},
        "workload": {"batch": 1, "prompt_tokens": 8192, "output_tokens": 2},
    }
    if path is not None:
        spec["calibration"] = str(path)
    spec.update(scenario)
    res = roofline.simulate(spec)
    rows = [o for o in op_table(res, 0, phase) if o["kind"] == "comm"]
    out = {o["name"]: o["layers"][0]["time_per_layer_s"] for o in rows}
    out["warnings"] = res.records()[0]["provenance"]["warnings"]
    return out


GOOD_ROW = {"bytes": [1024, 4096], "seconds": [1e-5, 2e-5]}


@pytest.mark.parametrize(
    "table, message",
    [
        ([1, 2], r"ops\.all_reduce\.table: must map GPU counts"),
        ({1: GOOD_ROW}, r"ops\.all_reduce\.table\.1: a table is keyed by GPU count, an integer >= 2"),
        ({"eight": GOOD_ROW}, r"table\.eight: a table is keyed by GPU count"),
        ({True: GOOD_ROW}, r"table\.True: a table is keyed by GPU count"),
        ({8: [1024, 1e-5]}, r"table\.8: must map bytes: and seconds:"),
        ({8: {"seconds": [1e-5, 2e-5]}}, r"table\.8\.bytes: must be a list of numbers, got None"),
        ({8: {"bytes": [1024, 4096], "seconds": 1e-5}}, r"table\.8\.seconds: must be a list of numbers"),
        (
            {8: {"bytes": [4096, 1024], "seconds": [1e-5, 2e-5]}},
            r"table\.8\.bytes\[1\]: message sizes must increase, got 4096 then 1024",
        ),
        (
            {8: {"bytes": [1024, 1024], "seconds": [1e-5, 2e-5]}},
            r"table\.8\.bytes\[1\]: message sizes must increase",
        ),
        (
            {8: {"bytes": [0, 1024], "seconds": [1e-5, 2e-5]}},
            r"table\.8\.bytes\[0\]: a message size in bytes is in \(0, 1e\+18\]",
        ),
        (
            {8: {"bytes": [1024, 4096], "seconds": [-1e-5, 2e-5]}},
            r"table\.8\.seconds\[0\]: a collective's time is in \(0, 60\]",
        ),
        (
            {8: {"bytes": [1024, 4096], "seconds": [1e-5, 1e9]}},
            r"table\.8\.seconds\[1\]: a collective's time is in \(0, 60\]",
        ),
        (
            {8: {"bytes": [1024, 4096], "seconds": [1e-5, float("nan")]}},
            r"table\.8\.seconds\[1\]: must be a finite number",
        ),
        (
            {8: {"bytes": [1024, 4096], "seconds": [1e-5, "fast"]}},
            r"table\.8\.seconds\[1\]: must be a finite number",
        ),
        ({8: {"bytes": [1024, 4096], "seconds": [1e-5]}}, r"table\.8\.seconds: 1 times for 2 message sizes"),
        (
            {8: {"bytes": [1024], "seconds": [1e-5]}},
            r"table\.8\.bytes: a table needs at least 2 message sizes, got 1",
        ),
    ],
)
def test_bad_tables_name_the_field(tmp_path, table, message):
    path = _write(tmp_path, {"nvlink": {"ops": {"all_reduce": {"table": table}}}})
    with pytest.raises(CalibrationError, match=message) as exc:
        read_profile(path)
    assert str(exc.value).startswith(f"{path}: collectives.nvlink.ops.all_reduce")  # file, then field


def test_a_table_of_an_unknown_collective_or_a_custom_table_without_its_link_is_refused(tmp_path):
    path = _write(tmp_path, {"nvlink": {"ops": {"allreduce": {"table": {8: GOOD_ROW}}}}})
    with pytest.raises(
        CalibrationError,
        match=r"collectives\.nvlink\.ops\.allreduce: a table needs a known collective; valid: all_reduce",
    ):
        read_profile(path)
    path = _write(tmp_path, {"custom_all_reduce": {"ops": {"all_reduce": {"table": {8: GOOD_ROW}}}}})
    with pytest.raises(
        CalibrationError,
        match=r"collectives\.custom_all_reduce: .* needs that link's entry too \(nvlink, xgmi, pcie",
    ):
        read_profile(path)
    # An empty entry of the link is enough: the custom table rides on it.
    path = _write(
        tmp_path, {"nvlink": {}, "custom_all_reduce": {"ops": {"all_reduce": {"table": {8: GOOD_ROW}}}}}
    )
    link = read_profile(path).link(("nvlink",))
    assert [(t.op, t.gpus) for t in link.tables] == [("custom_all_reduce", 8)]
    assert np.isnan(link.alpha_s) and np.isnan(link.beta_Bps)  # no fit: the datasheet link elsewhere


def test_table_interpolates_time_linearly_in_bytes_and_holds_or_continues_at_the_ends():
    # Two points, 32 KiB at 10 us and 512 KiB at 40 us: 30 us more for 480 KiB more, so on and beyond
    # the segment t = 10 us + (S - 32 KiB) / 16384 us (1 us per 16 KiB); below 32 KiB the 10 us
    # floor is held.
    t = CollectiveTable("all_reduce", 8, (32768.0, 524288.0), (10e-6, 40e-6))
    sizes = np.array([1024.0, 32768.0, 65536.0, 131072.0, 524288.0, 1048576.0, 4194304.0])
    expected = np.array([10e-6, 10e-6, 12e-6, 16e-6, 40e-6, 72e-6, 264e-6])
    np.testing.assert_allclose(t.at(sizes), expected, rtol=1e-12)


def test_a_table_of_an_alpha_beta_collective_is_priced_exactly_between_and_beyond_its_sizes():
    # Measured t = 5 us + S / 100 GB/s at 1 KiB, 1 MiB, 1 GiB: every size from 1 KiB up, measured or
    # not (1000x gaps), is priced exactly by that line (a log-log chord would over-estimate 4 MiB by
    # 22%: 15.5 us x 4^0.944 = 57.3 us against 5 + 41.9 = 46.9 us).
    line = lambda s: 5e-6 + np.asarray(s, dtype=float) / 100e9  # noqa: E731
    sizes = (1024.0, 1048576.0, 1073741824.0)
    t = CollectiveTable("all_gather", 4, sizes, tuple(float(line(s)) for s in sizes))
    query = np.array([1024.0, 3000.0, 4194304.0, 3e8, 1073741824.0, 8e9])
    np.testing.assert_allclose(t.at(query), line(query), rtol=1e-12)


def test_a_table_whose_last_segment_falls_continues_at_the_last_points_bandwidth():
    # Noise made 2 KiB faster than 1 KiB (20 us, then 10 us): beyond 2 KiB time grows at the last
    # point's bus bandwidth, 10 us per 2 KiB, never falling or flat.
    t = CollectiveTable("all_reduce", 2, (1024.0, 2048.0), (20e-6, 10e-6))
    np.testing.assert_allclose(t.at([1536.0, 4096.0, 8192.0]), [15e-6, 20e-6, 40e-6], rtol=1e-12)


MIB = 1048576.0
# A framework's own all-reduce on 2 GPUs: its kernel at 10 us + 5 us per MiB up to 4 MiB (faster
# than NCCL's table there), then the framework's call hands the message to NCCL (8 MiB and up
# equal to NCCL's times), as vLLM's custom all-reduce does below its 8 MiB limit.
OWN = ((1 * MIB, 2 * MIB, 4 * MIB, 8 * MIB, 16 * MIB), (15e-6, 20e-6, 30e-6, 90e-6, 130e-6))
NCCL = ((1 * MIB, 2 * MIB, 4 * MIB, 8 * MIB, 16 * MIB), (40e-6, 48e-6, 56e-6, 90e-6, 130e-6))


def test_a_framework_table_keeps_its_kernel_line_in_the_octave_above_its_handover():
    # handover (4 MiB, 8 MiB): in the octave above 4 MiB the kernel's last segment continues (6 MiB:
    # 30 + 2 x 5 = 40 us, where the chord to NCCL's 90 us at 8 MiB read 60 us); every measured size,
    # the sizes below and the segments above are priced as before.
    own = CollectiveTable("custom_all_reduce", 2, *OWN)
    nccl = CollectiveTable("all_reduce", 2, *NCCL)
    t = own.with_handover(nccl)
    assert t.handover == (4 * MIB, 8 * MIB)
    query = np.array([1.5, 3.0, 4.0, 6.0, 7.9, 8.0, 12.0, 32.0]) * MIB
    chord = own.at(query)
    np.testing.assert_allclose(chord[3], 60e-6, rtol=1e-12)
    expected = chord.copy()
    expected[3], expected[4] = 40e-6, 30e-6 + 3.9 * 5e-6
    np.testing.assert_allclose(t.at(query), expected, rtol=1e-12)
    # faster than NCCL at every size, or at none: no handover, the chord everywhere
    assert own.with_handover(CollectiveTable("all_reduce", 2, OWN[0], (1.0,) * 5)).handover == ()
    assert own.with_handover(CollectiveTable("all_reduce", 2, OWN[0], (1e-6,) * 5)).handover == ()
    # with gaps (a table that lacks 8 MiB: handover (4, 16 MiB)) only the octave up to 8 MiB follows
    # the kernel; from 8 MiB the chord to 16 MiB holds
    gappy = CollectiveTable("custom_all_reduce", 2, OWN[0][:3] + OWN[0][4:], OWN[1][:3] + OWN[1][4:])
    g = gappy.with_handover(nccl)
    assert g.handover == (4 * MIB, 16 * MIB)
    np.testing.assert_allclose(g.at([6 * MIB, 10 * MIB]), [40e-6, gappy.at(10 * MIB)], rtol=1e-12)


def test_engine_prices_the_framework_all_reduce_with_its_handover(tmp_path):
    # Llama-3.1-70B decode at TP2: 8192 x 2 bytes per sequence, 384 sequences = 6 MiB. The profile's
    # framework table and NCCL's on 2 GPUs: the kernel's line, 40 us (the chord read 60 us); the
    # peer all-reduce is the engine's default, the faster of the two tables.
    path = _write(
        tmp_path,
        {
            "nvlink": _nvlink({"all_reduce": {2: NCCL}}),
            "custom_all_reduce": _nvlink({"all_reduce": {2: OWN}}, fit=False),
        },
    )
    link = read_profile(path).link(("nvlink",))
    assert [t.handover for t in link.tables if t.op == "custom_all_reduce"] == [(4 * MIB, 8 * MIB)]
    t = _per_layer(
        path, parallelism={"tp": 2}, workload={"batch": 384, "prompt_tokens": 8192, "output_tokens": 2}
    )
    assert t["attn_allreduce"] == pytest.approx(40e-6, rel=1e-12)
    assert t["ffn_allreduce"] == pytest.approx(40e-6, rel=1e-12)


@pytest.mark.parametrize("batch, expected", [(1, 10e-6), (8, 16e-6), (64, 72e-6)])
def test_engine_prices_the_all_reduce_from_the_table(tmp_path, batch, expected):
    # TP8 decode of Llama-3.1-70B all-reduces one hidden state per sequence: 8192 x 2 bytes x batch
    # = 16 KiB (below the table: held at 10 us), 128 KiB (inside: 10 us + 96 KiB at 1 us per 16 KiB
    # = 16 us) and 1 MiB (beyond, on the same line: 10 + 992 / 16 = 72 us). NCCL's table: the peer
    # all-reduce is off.
    path = _write(tmp_path, {"nvlink": _nvlink({"all_reduce": {8: ([32768, 524288], [10e-6, 40e-6])}})})
    t = _per_layer(
        path,
        runtime={"custom_allreduce": False},
        workload={"batch": batch, "prompt_tokens": 8192, "output_tokens": 2},
    )
    assert t["attn_allreduce"] == pytest.approx(expected, rel=1e-12)
    assert t["ffn_allreduce"] == pytest.approx(expected, rel=1e-12)
    assert not any("collective tables" in w for w in t["warnings"])


def test_the_framework_decides_between_its_own_all_reduce_table_and_ncclS(tmp_path):
    flat = ([1024, 1 << 30], [30e-6, 30e-6])  # 30 us at every size in between
    custom = ([1024, 1 << 30], [6e-6, 6e-6])
    path = _write(
        tmp_path,
        {
            "nvlink": _nvlink({"all_reduce": {8: flat}}),
            "custom_all_reduce": {
                "ops": {"all_reduce": {"table": {8: {"bytes": custom[0], "seconds": custom[1]}}}}
            },
        },
    )
    assert _per_layer(path)["attn_allreduce"] == pytest.approx(6e-6, rel=1e-12)  # vLLM: its kernel
    assert _per_layer(path, runtime={"framework": "hf"})["attn_allreduce"] == pytest.approx(30e-6, rel=1e-12)
    off = _per_layer(path, runtime={"custom_allreduce": False})
    assert off["attn_allreduce"] == pytest.approx(30e-6, rel=1e-12)


def test_large_all_reduces_go_to_nccl_where_it_beats_the_frameworks_kernel(tmp_path):
    # The engines hand large messages to NCCL (vLLM's custom all-reduce serves up to 8 MB;
    # TensorRT-LLM's AUTO strategy switches above its thresholds): their own kernel's table prices
    # an all-reduce only where it is the faster. Here it is 6 us flat below 64 KiB and 500 us from
    # 1 MiB; NCCL is 30 us flat. TP8 decode at batch 1 (16 KiB): the kernel's 6 us; batch 64 (1 MiB):
    # NCCL's 30 us, not the kernel's 500 us.
    nccl = ([1024, 1 << 30], [30e-6, 30e-6])
    custom = {"bytes": [1024, 65536, 1 << 20, 1 << 30], "seconds": [6e-6, 6e-6, 500e-6, 500e-6]}
    path = _write(
        tmp_path,
        {
            "nvlink": _nvlink({"all_reduce": {8: nccl}}),
            "custom_all_reduce": {"ops": {"all_reduce": {"table": {8: custom}}}},
        },
    )
    small = _per_layer(path)
    large = _per_layer(path, workload={"batch": 64, "prompt_tokens": 8192, "output_tokens": 2})
    assert small["attn_allreduce"] == pytest.approx(6e-6, rel=1e-12)
    assert large["attn_allreduce"] == pytest.approx(30e-6, rel=1e-12)


def test_without_a_table_for_the_gpu_count_the_engine_prices_as_before_and_warns(tmp_path):
    # Tables for 2 and 4 GPUs only: TP8 is priced exactly as by the same profile without tables
    # (the alpha-beta fit, and the engine's peer all-reduce formula), and the record says so.
    tables = {
        op: {2: ([1024, 4096], [1e-5, 2e-5]), 4: ([1024, 4096], [1e-5, 2e-5])}
        for op in ("all_reduce", "all_gather")
    }
    with_tables = _write(tmp_path, {"nvlink": _nvlink(tables)}, "with.yaml")
    without = _write(tmp_path, {"nvlink": _nvlink({})}, "without.yaml")
    a, b = _per_layer(with_tables), _per_layer(without)
    assert a["attn_allreduce"] == b["attn_allreduce"]  # bit for bit
    assert any(
        "collective tables measured on 2, 4 GPUs; tp's collectives on 8 GPUs of a domain are priced by its alpha-beta fit"
        in w
        for w in a["warnings"]
    )
    assert not any("collective tables" in w for w in b["warnings"])


def test_cp_decode_exchange_and_the_hierarchical_all_reduce_use_the_gather_scatter_tables(tmp_path):
    # Constant tables (3 us all-gather, 4 us reduce-scatter, 5 us all-to-all at any size in range).
    wide = [1, 10**15]
    tables = {
        "all_gather": {2: (wide, [3e-6, 3e-6]), 8: (wide, [3e-6, 3e-6])},
        "reduce_scatter": {8: (wide, [4e-6, 4e-6])},
        "all_to_all": {2: (wide, [5e-6, 5e-6])},
    }
    network = {"ops": {"all_reduce": {"fit": {"alpha_s": 30e-6, "beta_Bps": 40e9, "residual": 0.05}}}}
    path = _write(tmp_path, {"nvlink": _nvlink(tables), "network": network})
    # CP2 decode (ring pass-Q): one send/recv of the queries (the link's step, no table times a
    # send/recv) and the partial outputs by the all-to-all table: step + 5 us.
    cp = _per_layer(path, model="llama-3.1-8b", parallelism={"cp": 2})
    q = 32 * 128 * 2 / 2  # one rank's queries, bf16
    step = NVLINK_FIT["alpha_s"] + q / NVLINK_FIT["beta_Bps"]
    assert cp["cp_decode_exchange"] == pytest.approx(step + 5e-6, rel=1e-12)
    # TP16 over two 8-GPU nodes: reduce-scatter and all-gather inside each node from the tables, the
    # all-reduce of the 1/8 shards across the two nodes by the network's alpha-beta fit.
    tp16 = _per_layer(path, parallelism={"tp": 16})
    ar_inter = 2 * 1 * 30e-6 + 2 * 1 / 2 * (16384 / 8) / 40e9
    assert tp16["attn_allreduce"] == pytest.approx(4e-6 + ar_inter + 3e-6, rel=1e-12)


def test_profiles_without_tables_are_unchanged_by_the_table_path(tmp_path):
    # The collectives-only profile of test_calibration's ring oracle: 2(n-1) alpha + 2(n-1)/n S / beta.
    path = _write(tmp_path, {"nvlink": _nvlink({})})
    t = _per_layer(path, runtime={"custom_allreduce": False})
    assert t["attn_allreduce"] == pytest.approx(14 * 10e-6 + 1.75 * 8192 * 2 / 200e9, rel=1e-12)
    assert read_profile(path).link(("nvlink",)).tables == ()
