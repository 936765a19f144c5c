"""The collective benchmark for real: gloo across 2 local CPU processes, through the CLI, to YAML."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

pytest.importorskip(
    "torch", reason="torch is needed for the collective benchmarks (pip install -e '.[test]')"
)

from roofline.profilers import collectives  # noqa: E402  (after the importorskip)
from roofline.profilers.fitting import COLLECTIVES  # noqa: E402

SIZES = [2**e for e in range(10, 19)]  # 1 KiB .. 256 KiB
FACTORS = {"all_reduce": 1.0, "all_gather": 0.5, "reduce_scatter": 0.5, "all_to_all": 0.5, "send_recv": 1.0}
STEPS = {"all_reduce": 2, "all_gather": 1, "reduce_scatter": 1, "all_to_all": 1, "send_recv": 1}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("collectives") / "loopback.yaml"
    cmd = [sys.executable, "-m", "roofline.profilers.collectives", "--local", "2", "--out", str(out)]
    cmd += ["--max-mib", "0.25", "--iters", "5"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc.stdout


def test_yaml_has_every_collective_with_points_or_a_reason(local_run):
    out, stdout = local_run
    assert f"wrote {out}" in stdout
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # the atomic write left no temp file
    doc = yaml.safe_load(out.read_text())
    assert list(doc) == ["collectives"]
    body = doc["collectives"]["loopback"]  # gloo's default link label
    prov = body["provenance"]
    assert (prov["backend"], prov["world_size"], prov["nodes"]) == ("gloo", 2, 1)
    assert prov["torch_version"] and prov["date"] and len(prov["devices"]) == 2
    assert set(body["ops"]) == set(COLLECTIVES)
    for name, op in body["ops"].items():
        if "skipped" in op:  # e.g. reduce_scatter on gloo before torch 2.13
            assert name not in ("all_reduce", "all_gather", "send_recv"), op["skipped"]
            assert isinstance(op["skipped"], str) and op["skipped"].startswith("gloo")
            continue
        assert op["latency_steps"] == STEPS[name] and op["busbw_factor"] == FACTORS[name]
        assert [p["bytes"] for p in op["points"]] == SIZES  # 2 ranks x float32 divide every size
        for p in op["points"]:
            assert p["seconds"] > 0
            assert p["algbw_Bps"] == pytest.approx(p["bytes"] / p["seconds"], rel=1e-9)
            assert p["busbw_Bps"] == pytest.approx(p["algbw_Bps"] * FACTORS[name], rel=1e-9)
        fit = op["fit"]
        assert fit["alpha_s"] >= 0 and fit["beta_Bps"] > 0
        assert 0 <= fit["residual"] < 10


def test_summary_prints_the_fit_per_collective(local_run):
    _, stdout = local_run
    assert "loopback: gloo, 2 ranks on 1 node(s)" in stdout
    for name in COLLECTIVES:
        assert name in stdout


TORCHRUN_ENV = {"RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--backend", "mpi"], {}, "invalid choice: 'mpi'"),
        (["--local", "1"], {}, "--local 1: collectives need at least 2 processes"),
        (["--local", "2", "--backend", "nccl"], {}, "--local runs gloo on CPU only"),
        (["--backend", "gloo"], {}, "not set: run under torchrun"),
        (["--backend", "gloo"], {**TORCHRUN_ENV, "WORLD_SIZE": "1"}, "WORLD_SIZE is 1"),
        (["--local", "2", "--iters", "0"], {}, "--iters must be >= 1"),
        (["--local", "2", "--max-mib", "0.0005"], {}, "holds 0 power-of-two size(s)"),
        (["--local", "2", "--min-kib", "2", "--max-mib", "0.003"], {}, "holds 1 power-of-two size(s)"),
    ],
)
def test_bad_input_names_what_is_wrong_without_a_traceback(argv, env, message, tmp_path, monkeypatch, capsys):
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as exc:
        collectives.main([*argv, "--out", str(tmp_path / "x.yaml")])
    assert exc.value.code == 2  # argparse's usage error, not a traceback
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.yaml").exists()


def test_nccl_without_cuda_says_so(tmp_path, monkeypatch, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here: NCCL is a valid request")
    for key, value in {**TORCHRUN_ENV, "WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SystemExit) as exc:
        collectives.main(["--backend", "nccl", "--out", str(tmp_path / "x.yaml")])
    assert exc.value.code == 2
    assert "--backend nccl needs CUDA GPUs" in capsys.readouterr().err


def test_message_sizes_are_powers_of_two_inclusive():
    assert collectives.message_sizes(1024, 256 * 1024) == SIZES
    assert collectives.message_sizes(1000, 3 * 2**20) == [2**e for e in range(10, 22)]


def test_default_link_labels():
    assert collectives.default_link("gloo", 1) == "loopback"
    assert collectives.default_link("nccl", 1) == "nvlink"
    assert collectives.default_link("nccl", 2) == "network"


def test_spawn_local_refuses_one_process():
    with pytest.raises(ValueError, match="at least 2 processes"):
        collectives.spawn_local(1, collectives.benchmark)


def test_without_torch_the_script_says_which_extra_to_install(tmp_path):
    # A planning-only machine: torch cannot be imported (blocked by a sitecustomize on PYTHONPATH).
    (tmp_path / "sitecustomize.py").write_text(
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}')\n"
        "sys.meta_path.insert(0, _Block())\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "roofline.profilers.collectives", "--local", "2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert '".[profile]"' in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
