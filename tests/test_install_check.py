"""A test run on a checkout whose `roofline` is not the one imported stops with one install line.

Each case runs pytest in a subprocess (collect-only, one file) with the package hidden or replaced;
tests/conftest.py must stop it at configure time, before any test module imports `roofline`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Imported at start-up (after site-packages' .pth files install the editable finder): a finder
# in front of all others that refuses `roofline` and its subpackages, whatever installed them.
HIDE_ROOFLINE = """
import sys


class HideRoofline:
    def find_spec(self, name, path=None, target=None):
        if name == "roofline" or name.startswith("roofline."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, HideRoofline())
"""


def _pytest(cwd, pythonpath=None):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only"]
    cmd.append(str(ROOT / "tests" / "test_hwspecs.py"))
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    return proc.returncode, lines


def test_not_installed_stops_with_one_line(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(HIDE_ROOFLINE)
    rc, lines = _pytest(ROOT, pythonpath=tmp_path)  # cwd = the root: `roofline/` alone imports
    assert rc == 4, lines  # pytest.ExitCode.USAGE_ERROR
    assert len(lines) == 1, lines
    assert "roofline is not installed" in lines[0]
    assert 'pip install -e ".[test]" -c constraints-cpu.txt' in lines[0]


def test_installed_from_another_folder_stops_with_one_line(tmp_path):
    other = tmp_path / "roofline"
    (other / "simulator").mkdir(parents=True)
    (other / "__init__.py").write_text("")
    (other / "simulator" / "__init__.py").write_text("")
    rc, lines = _pytest(tmp_path)  # `python -m` puts the cwd, with its `roofline/`, first on sys.path
    assert rc == 4, lines
    assert len(lines) == 1, lines
    assert "not installed from this checkout" in lines[0]
    assert str(other.resolve()) in lines[0]
    assert "pip install -e" in lines[0]
