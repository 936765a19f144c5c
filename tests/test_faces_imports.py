"""The faces keep to the public API: the dashboard and the profilers import nothing from the CLI and
reach the simulator only through `roofline.api` or the shared report layer (`roofline.report`);
`roofline simulate` imports no plotly, Dash or torch. Checked on the source (ast), not at run time,
so an import inside a function counts too."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FACES = ("dashboards", "profilers")


def _imported_modules(path: Path) -> list:
    """(line, module) of every import in a file, relative imports resolved against its package."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                out.append((node.lineno, f"<relative {node.level}>.{node.module or ''}"))
            else:
                out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return out


def _forbidden(module: str) -> bool:
    top = module.split(".")
    if top[0] in ("simulator", "cli"):  # the folders by their own names would bypass the mapping
        return True
    return top[0] == "roofline" and len(top) > 1 and top[1] in ("simulator", "cli")


@pytest.mark.parametrize("face", FACES)
def test_faces_import_the_simulator_only_through_the_api(face):
    files = sorted((ROOT / face).rglob("*.py"))
    assert files
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in files
        for line, module in _imported_modules(path)
        if _forbidden(module) or module.startswith("<relative")
    ]
    assert not bad, "import roofline.api or roofline.report instead:\n" + "\n".join(bad)


def test_the_report_layer_imports_no_face():
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {module}"
        for path in sorted((ROOT / "roofline" / "report").rglob("*.py"))
        for line, module in _imported_modules(path)
        if module.split(".")[:2] in (["roofline", f] for f in ("cli", "dashboards", "profilers"))
        or module.split(".")[0] in ("dash", "torch")
    ]
    assert not bad, "\n".join(bad)


def test_simulate_imports_no_plotly_dash_or_torch():
    code = (
        "import sys; from roofline.cli.main import main; "
        "rc = main(['simulate', 'scenarios/llama3-8b-4k-h100.yaml']); assert rc == 0; "
        "print(sorted(m for m in ('plotly', 'dash', 'flask', 'torch', 'triton') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
