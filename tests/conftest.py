"""Shared fixtures, and the check that the tests import this checkout's `roofline`.

The folders `simulator/`, `hwspecs/`, … are subpackages of one import package, `roofline`, only
through setuptools' `package-dir` mapping (pyproject.toml), so nothing imports without an install;
and a `roofline` installed from another folder would test that folder's code. Before any test
module imports the package, the run stops with one line saying how to install this checkout.
"""

from __future__ import annotations

import atexit
import builtins
import importlib.util
import io
import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
INSTALL = 'python -m pip install -e ".[test]" -c constraints-cpu.txt'


def _origin(module: str) -> Path | None:
    """The file `import module` would load, or None when it does not import."""
    try:
        spec = importlib.util.find_spec(module)
    except ImportError:  # the parent package is missing or fails to import
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).resolve()


def install_problem() -> str | None:
    """One line saying why this checkout's `roofline` is not what the tests import; None if it is.

    `roofline` alone may import without an install (`python -m pytest` puts the repository root,
    which holds `roofline/`, on sys.path), so the check also needs a mapped subpackage.
    """
    package, mapped = _origin("roofline"), _origin("roofline.simulator")
    if package is None or mapped is None:
        return f"roofline is not installed: run `{INSTALL}` first"
    expected = (ROOT / "roofline" / "__init__.py", ROOT / "simulator" / "__init__.py")
    if (package, mapped) != expected:
        where = package.parent if package != expected[0] else mapped.parent
        return (
            f"roofline is not installed from this checkout (it imports {where}): run `{INSTALL}` here first"
        )
    return None


# The engine's own tests pin the datasheet model: `calibration: auto` reads an empty folder (subprocess
# CLI runs inherit it), so a scenario on a GPU with a shipped profile (hwspecs/calibration/) is
# priced as its closed forms say. The shipped profiles have their own tests (`shipped_profiles`
# below, tests/test_shipped_profiles.py) and the dev-set report (benchmarks/published_report.py).
EMPTY_CALIBRATION_DIR = ROOT / "tests" / "fixtures" / "no_calibration"


def pytest_configure(config):
    # pytest.exit here (not at import) prints the message alone, as one "Exit: ..." line.
    problem = install_problem()
    if problem:
        pytest.exit(problem, returncode=pytest.ExitCode.USAGE_ERROR)
    os.environ["ROOFLINE_CALIBRATION_DIR"] = str(EMPTY_CALIBRATION_DIR)
    # parsed profiles are cached in a folder of this run's, removed at exit, not the user's
    # (roofline/yaml_cache.py)
    if "ROOFLINE_CACHE_DIR" not in os.environ:
        folder = tempfile.mkdtemp(prefix="roofline-test-cache-")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        os.environ["ROOFLINE_CACHE_DIR"] = folder


@pytest.fixture
def shipped_profiles(monkeypatch):
    """`calibration: auto` as users get it: the profiles shipped in hwspecs/calibration/."""
    monkeypatch.delenv("ROOFLINE_CALIBRATION_DIR", raising=False)


@pytest.fixture
def fixtures_dir():
    return Path(__file__).parent / "fixtures"


# Shared by the dashboard's security tests (crafted requests open no file).
@pytest.fixture
def app(tmp_path):
    """The dashboard app over empty calibration and validation folders (dash imported here only)."""
    from roofline.dashboards.app import create_app

    (tmp_path / "calibration").mkdir()
    return create_app(tmp_path / "calibration", tmp_path / "validation")


@pytest.fixture
def opened(monkeypatch) -> list:
    """Every path the process opens while the test runs."""
    seen: list = []
    real_open, real_os_open = builtins.open, os.open

    def spy_open(file, *args, **kwargs):
        seen.append(str(file))
        return real_open(file, *args, **kwargs)

    def spy_os_open(path, *args, **kwargs):
        seen.append(str(path))
        return real_os_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(io, "open", spy_open)
    monkeypatch.setattr(os, "open", spy_os_open)
    return seen
