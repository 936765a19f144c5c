"""`roofline calibrate` on CPU: the runner with a FakeTimer (times from known curves) and tensors on
torch's meta device (shapes, no storage), a fake device instead of pynvml. The fitted curves must
recover the fake curves; the partial file must survive an interruption and a resume must run only
the rest; out of memory is a skipped point; device names map to hwspecs names; without CUDA the
CLI says so and exits 2. Nothing here times anything for real."""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

torch = pytest.importorskip(
    "torch", reason="the microbenchmarks build torch tensors (on the meta device here)"
)

from roofline.cli import calibrate_cmd  # noqa: E402
from roofline.hwspecs import HardwareSpecError, list_hardware, load_hardware, read_profile  # noqa: E402
from roofline.profilers import calibrate as cal  # noqa: E402
from roofline.profilers import calibrate_fit, calibrate_progress  # noqa: E402
from roofline.profilers.calibrate_write import partial_path  # noqa: E402
from roofline.profilers.device import (  # noqa: E402
    DeviceError,
    DeviceInfo,
    hardware_slug,
    read_device,
    resolve_hardware,
)
from roofline.profilers.microbench import GROUPS  # noqa: E402
from roofline.profilers.microbench import hbm as hbm_group  # noqa: E402
from roofline.profilers.microbench.common import BenchContext, TorchBackend  # noqa: E402
from roofline.profilers.timing import FakeTimer  # noqa: E402
from roofline.simulator.scenario import ScenarioError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEVICE = DeviceInfo(
    name="NVIDIA H100 80GB HBM3", driver="fake", torch=str(torch.__version__), nvml="fake device"
)
OVERHEAD = 4e-6
CURVES = {  # (e_max, x_half, p) the fake timer answers from
    "gemm_bf16": (0.78, 1500.0, 2.0),
    "gemm_fp16": (0.74, 1300.0, 1.8),
    "gemm_fp8": (0.66, 2500.0, 2.5),
    "attention_prefill": (0.62, 3000.0, 1.5),
    "attention_decode": (0.82, 4e6, 1.1),
    "hbm": (0.9, 3e6, 1.2),
}


# ------------------------------------------------------------------------------------- fake kernels


def _fake_kernels():
    """Stand-ins for roofline.kernels: each binds the real function's signature and runs the real
    input checks (pure shape/dtype code) on the meta tensors it is given, then returns nothing."""
    kernels = pytest.importorskip(
        "roofline.kernels.decode_attention", reason="roofline.kernels not importable"
    )
    da = kernels
    import roofline.kernels.bandwidth_probe as bp
    import roofline.kernels.block_sparse_prefill as bsp
    import roofline.kernels.quant_decode_attention as qd
    import roofline.kernels.sparse_decode_attention as sd

    def checked(real, check):
        sig = inspect.signature(real)

        def fake(*args, **kwargs):
            bound = sig.bind(*args, **kwargs)
            check(**bound.arguments)

        return fake

    def decode_check(q, k, v, kv_lens, **_):
        da.check_decode_inputs(q, k.shape, kv_lens, None, None)
        assert v.shape == k.shape and k.dtype == q.dtype

    def quant_check(q, k, v, kv_lens, bits, **_):
        da.check_decode_inputs(q, k.packed.shape, kv_lens, None, None)
        assert qd.check_quantized("k", k, bits, q.shape[2]) == qd.check_quantized("v", v, bits, q.shape[2])

    def sparse_check(q, k, v, kv_lens, page_size, token_budget, metadata, **_):
        pages, counts = sd.select_pages(
            sd.page_scores(q, *metadata, kv_lens, page_size), token_budget, page_size
        )
        inspect.signature(sd.attend_selected_pages).bind(q, k, v, kv_lens, pages, counts, page_size)
        decode_check(q, k, v, kv_lens)

    def prefill_check(q, k, v, block_mask, block_size, **_):
        bsp.check_prefill_inputs(q, k, v, block_mask, block_size)

    def probe_check(**arguments):
        assert all(t.is_contiguous() for t in arguments.values() if isinstance(t, torch.Tensor))

    return {
        "decode_attention": SimpleNamespace(decode_attention=checked(da.decode_attention, decode_check)),
        "quant_decode_attention": SimpleNamespace(
            QuantizedKV=qd.QuantizedKV, quant_decode_attention=checked(qd.quant_decode_attention, quant_check)
        ),
        "sparse_decode_attention": SimpleNamespace(
            page_metadata=sd.page_metadata,
            sparse_decode_attention=checked(sd.sparse_decode_attention, sparse_check),
        ),
        "block_sparse_prefill": SimpleNamespace(
            block_sparse_prefill=checked(bsp.block_sparse_prefill, prefill_check)
        ),
        "bandwidth_probe": SimpleNamespace(
            copy=checked(bp.copy, probe_check), triad=checked(bp.triad, probe_check)
        ),
    }


def _run(tmp_path, **kw):
    args = dict(
        hardware="h100-sxm",
        device=DEVICE,
        timer=FakeTimer(curves=CURVES, overhead_s=OVERHEAD),
        backend=TorchBackend("meta"),
        out=tmp_path / "h100-sxm.yaml",
        quick=True,
        stream=None,
        today="2026-01-02",
    )
    args.update(kw)
    return cal.calibrate(**args)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("calibrate")
    timer = FakeTimer(curves=CURVES, overhead_s=OVERHEAD)
    return _run(tmp, timer=timer, kernels=_fake_kernels()), timer


# ---------------------------------------------------------------------------------- the whole run


def test_profile_parses_and_fits_recover_the_fake_curves(quick_run):
    result, timer = quick_run
    assert not result.failed and result.ran == list(GROUPS)
    profile = read_profile(result.out)  # roofline.simulator.calibration.parse_profile, via the loader
    assert profile.hardware == "h100-sxm"
    assert re.fullmatch(r"h100-sxm-2026-01-02-[0-9a-f]{8}", profile.profile_id)
    assert profile.kernel_overhead_s == pytest.approx(OVERHEAD)
    assert set(profile.curves) == set(CURVES)
    for kind, (e_max, x_half, p) in CURVES.items():
        curve = profile.curves[kind]
        assert curve.e_max == pytest.approx(e_max, rel=0.03), kind
        assert curve.x_half == pytest.approx(x_half, rel=0.10), kind
        assert curve.p == pytest.approx(p, rel=0.15), kind
        assert curve.residual < 0.02, kind
        assert len(curve.points) >= calibrate_fit.MIN_FIT_POINTS
    prov = profile.provenance
    assert prov["quick"] is True and prov["name"] == DEVICE.name and prov["date"] == "2026-01-02"
    assert prov["timer"] == timer.name and "torch" in prov
    assert not result.partial.exists()  # every group finished: the partial file is gone


def test_raw_points_are_compact_and_complete(quick_run):
    result, timer = quick_run
    text = result.out.read_text()
    doc = yaml.safe_load(text)
    assert list(doc["raw"]) == list(GROUPS)
    assert re.search(r"^  - \{dtype: bf16, m: \d+, n: \d+, k: \d+, x: ", text, re.M)  # one line per point
    gemm = [p for p in doc["raw"]["gemm"] if "seconds" in p]
    assert gemm and all({"flops_per_s", "bytes_per_s", "efficiency", "bound"} <= set(p) for p in gemm)
    assert {p["bound"] for p in gemm} == {"compute", "memory"}  # skinny decode GEMMs stream weights
    # every case of every group was timed once (triton_empty needs CUDA: recorded as skipped)
    counts = calibrate_progress.point_counts(load_hardware("h100-sxm"), quick=True)
    assert sum(timer.calls.values()) == sum(counts.values()) - 1
    for group in ("quant_decode", "sparse_decode", "block_sparse_prefill"):
        assert len(doc["raw"][group]) == counts[group] and all("efficiency" in p for p in doc["raw"][group])
    assert cal.point_errors(doc["raw"]) == {}  # no point refused its inputs
    assert doc["summary"]["hbm_triad_best_efficiency"] == pytest.approx(0.9, rel=0.02)
    assert len(text) < 200_000


def test_refit_from_raw_needs_no_gpu(quick_run):
    result, _ = quick_run
    doc = yaml.safe_load(result.out.read_text())
    again = calibrate_fit.refit(doc)
    assert again["curves"] == doc["curves"] and again["profile_id"] == doc["profile_id"]


def test_kernel_groups_without_kernels_are_skipped_with_the_reason(tmp_path):
    result = _run(tmp_path, groups=["launch", "sparse_decode"])
    raw = result.profile["raw"]
    assert raw["sparse_decode"] == [
        {
            "skipped": "roofline.kernels.sparse_decode_attention: Triton kernels need a CUDA device (backend: meta)"
        }
    ]
    assert result.partial.exists()  # not every group has run yet


# ------------------------------------------------------------------------- interruption and resume


def _counting_benches(calls, raise_in=None, exc=KeyboardInterrupt):
    def make(name):
        def bench(timer, ctx):
            calls.append(name)
            if name == raise_in:
                raise exc(f"stopped inside {name}")
            return [{"n": 1, "x": 1.0, "seconds": 1e-3}]

        return bench

    return {g: make(g) for g in GROUPS}


def test_interrupted_run_keeps_finished_groups_and_resume_runs_the_rest(tmp_path):
    k = 3
    calls = []
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, benches=_counting_benches(calls, raise_in=GROUPS[k]))
    assert calls == list(GROUPS[: k + 1])
    partial = partial_path(tmp_path / "h100-sxm.yaml")
    assert partial == tmp_path / "h100-sxm.partial.yaml"
    kept = yaml.safe_load(partial.read_text())
    assert list(kept["groups"]) == list(GROUPS[:k])
    assert not (tmp_path / "h100-sxm.yaml").exists()

    calls.clear()
    result = _run(tmp_path, resume=True, benches=_counting_benches(calls))
    assert calls == list(GROUPS[k:])  # only the rest
    assert result.resumed == list(GROUPS[:k]) and result.ran == list(GROUPS[k:])
    assert list(result.profile["raw"]) == list(GROUPS)
    assert not partial.exists()


def test_resume_is_the_default_for_the_same_device_only(tmp_path):
    calls = []
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, benches=_counting_benches(calls, raise_in="gemm"))
    calls.clear()
    other = DeviceInfo(name="NVIDIA A100-SXM4-80GB")
    with pytest.raises(cal.CalibrateError, match="another run"):
        _run(tmp_path, device=other, resume=True, benches=_counting_benches(calls))
    assert calls == []
    with pytest.raises(KeyboardInterrupt):  # quick and full runs are not mixed either
        _run(tmp_path, quick=False, benches=_counting_benches(calls, raise_in="hbm"))
    assert calls == ["launch", "hbm"]
    calls.clear()
    _run(tmp_path, quick=False, benches=_counting_benches(calls))  # no flag: resumes its own partial
    assert calls == list(GROUPS[1:])


def test_a_failing_group_is_recorded_and_the_others_still_run(tmp_path):
    calls = []
    result = _run(tmp_path, benches=_counting_benches(calls, raise_in="gemm", exc=RuntimeError))
    assert calls == list(GROUPS)
    assert result.failed == {"gemm": "RuntimeError: stopped inside gemm"}
    assert "gemm" not in result.profile["raw"] and (tmp_path / "h100-sxm.yaml").exists()
    kept = yaml.safe_load(result.partial.read_text())
    assert "Traceback" in kept["failed"]["gemm"]["traceback"]
    calls.clear()
    result = _run(tmp_path, benches=_counting_benches(calls))
    assert calls == ["gemm"] and not result.failed and not result.partial.exists()


def test_groups_rerun_keeps_the_other_groups_of_the_profile(tmp_path):
    calls = []
    _run(tmp_path, benches=_counting_benches(calls))
    calls.clear()
    result = _run(tmp_path, groups=["gemm"], benches=_counting_benches(calls))
    assert calls == ["gemm"]
    assert list(result.profile["raw"]) == list(GROUPS)  # the others come from the existing profile
    assert result.profile["provenance"]["groups_kept_from_previous_profile"] == [
        g for g in GROUPS if g != "gemm"
    ]
    calls.clear()
    other = _run(tmp_path, quick=False, groups=["gemm"], benches=_counting_benches(calls))
    assert list(other.profile["raw"]) == ["gemm"]  # a quick profile is not mixed into a full one


# --------------------------------------------------------------------------------- out of memory


class OOMTimer(FakeTimer):
    """Out of memory for any point moving more than `limit` bytes."""

    limit: float = 1e9

    def __call__(self, fn, work):
        if work.bytes > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")
        return super().__call__(fn, work)


def test_out_of_memory_is_a_skipped_point(tmp_path):
    ctx = BenchContext(backend=TorchBackend("meta"), hw=load_hardware("h100-sxm"), quick=True)
    points = hbm_group.bench(OOMTimer(curves=CURVES, overhead_s=OVERHEAD), ctx)
    torch_points = [p for p in points if p["impl"] == "torch"]
    oom = [p for p in torch_points if "skipped" in p]
    assert oom and all(p["skipped"].startswith("out of memory: CUDA out of memory") for p in oom)
    assert all(p["buffer_bytes"] * hbm_group.OPS[p["op"]] > 1e9 for p in oom)
    assert any("efficiency" in p for p in torch_points)
    result = _run(tmp_path, groups=["launch", "hbm"], timer=OOMTimer(curves=CURVES, overhead_s=OVERHEAD))
    assert "hbm" in result.profile["curves"] and not result.failed  # fitted on the points that ran


# ------------------------------------------------------------------------------------ device names


@pytest.mark.parametrize(
    "name,slug",
    [
        ("NVIDIA H100 80GB HBM3", "h100-sxm"),
        ("NVIDIA H100 PCIe", "h100-pcie"),
        ("NVIDIA H100 NVL", "h100-nvl"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA A100-SXM4-80GB", "a100-80gb-sxm"),
        ("NVIDIA A100-SXM4-40GB", "a100-40gb-sxm"),
        ("NVIDIA A100 80GB PCIe", "a100-80gb-pcie"),
        ("NVIDIA L40S", "l40s"),
        ("NVIDIA L4", "l4"),
        ("NVIDIA A10G", "a10g"),
        ("NVIDIA GeForce RTX 4090", "rtx-4090"),
        ("NVIDIA RTX 6000 Ada Generation", "rtx-6000-ada"),
        ("NVIDIA B200", "b200"),
        ("NVIDIA GB200", "gb200"),
        ("NVIDIA B300 SXM6 AC", "b300"),
        ("NVIDIA GB300", "gb300"),
        ("NVIDIA RTX PRO 6000 Blackwell Server Edition", "rtx-pro-6000-server"),
        ("AMD Instinct MI300X", "mi300x"),
        ("AMD Instinct MI325X", "mi325x"),
        # look-alikes that are other SKUs without a spec here
        ("NVIDIA L40", None),
        ("NVIDIA A10", None),
        ("NVIDIA H200 NVL", None),
        ("NVIDIA GH200 480GB", None),
        ("NVIDIA A100-PCIE-40GB", None),
        ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", None),
        ("Tesla V100-SXM2-16GB", None),
    ],
)
def test_device_name_maps_to_hwspecs(name, slug):
    assert hardware_slug(name) == slug
    if slug:
        assert slug in list_hardware()


def test_unknown_device_asks_for_hardware():
    with pytest.raises(DeviceError, match=r"pass --hardware NAME \(one of: .*h100-sxm"):
        resolve_hardware("NVIDIA L40", None)
    assert resolve_hardware("NVIDIA L40", "l40s") == "l40s"
    with pytest.raises(HardwareSpecError, match="Did you mean"):
        resolve_hardware("NVIDIA H100 80GB HBM3", "h100-sxn")


def _fake_cuda(monkeypatch):
    props = SimpleNamespace(
        total_memory=85520809984, major=9, minor=0, uuid="0c5f3a2e-0000-0000-0000-000000000000"
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i=0: props)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "NVIDIA H100 80GB HBM3")


def test_read_device_without_pynvml_falls_back_to_torch(monkeypatch):
    _fake_cuda(monkeypatch)
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    info = read_device()
    assert info.name == "NVIDIA H100 80GB HBM3" and info.compute_capability == "9.0"
    assert info.nvml.startswith("pynvml not installed (pip install nvidia-ml-py)")
    assert info.driver is None and "driver" not in info.provenance()


def test_read_device_with_failing_nvml_says_why(monkeypatch):
    _fake_cuda(monkeypatch)

    class NVMLError(Exception):
        pass

    def fail():
        raise NVMLError("Driver Not Loaded")

    monkeypatch.setitem(sys.modules, "pynvml", SimpleNamespace(NVMLError=NVMLError, nvmlInit=fail))
    info = read_device()
    assert info.nvml.startswith("NVML failed (NVMLError: Driver Not Loaded)")
    assert hardware_slug(info.name) == "h100-sxm"


# ------------------------------------------------------------------------------- budget and the CLI


def test_run_time_budget():
    hw = load_hardware("h100-sxm")
    quick, full = (
        calibrate_progress.estimate_seconds(hw, quick=True),
        calibrate_progress.estimate_seconds(hw, quick=False),
    )
    assert list(quick) == list(GROUPS)
    assert sum(quick.values()) < 300 and sum(full.values()) < 600
    assert sum(quick.values()) < sum(full.values())


def _parse(*argv):
    parser = argparse.ArgumentParser(prog="roofline")
    calibrate_cmd.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["calibrate", *argv])


def test_cli_without_cuda_says_so(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ScenarioError) as info:
        calibrate_cmd.run(_parse("--quick"))
    assert str(info.value) == calibrate_cmd.NO_CUDA
    assert str(info.value) == (
        "roofline calibrate needs a CUDA GPU (torch.cuda.is_available() is False); see --help"
    )
    # through the entry point: exit 2, the message, no traceback
    from roofline.cli import main as cli_main

    monkeypatch.setitem(cli_main.SUBCOMMANDS, "calibrate", calibrate_cmd)
    assert cli_main.main(["calibrate", "--quick"]) == 2
    err = capsys.readouterr().err
    assert calibrate_cmd.NO_CUDA in err and "Traceback" not in err


def test_cli_checks_its_arguments_first(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ScenarioError, match="unknown group.*gemmm.*valid: launch, hbm"):
        calibrate_cmd.run(_parse("--groups", "gemmm"))
    with pytest.raises(HardwareSpecError, match="h100-sxm"):
        calibrate_cmd.run(_parse("--hardware", "h100-sxn"))


def test_imports_need_no_gpu_and_no_dashboard_packages():
    code = (
        "import sys, roofline.profilers.calibrate, roofline.profilers.calibrate_fit, roofline.profilers.device, "
        "roofline.cli.calibrate_cmd;"
        "bad = [m for m in ('torch', 'triton', 'dash', 'plotly') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    for path in (ROOT / "profilers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] in ("dash", "plotly") for n in names), path
