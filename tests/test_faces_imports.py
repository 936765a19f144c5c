"""The faces keep to the public API: the dashboard and the profilers import nothing from the CLI and
reach the simulator only through `roofline.api` or the shared report layer (`roofline.report`); the
CLI imports only `roofline.api`, `roofline.report` and its own modules, except that a command which
launches another face imports that face inside its `run` (see CLI_LAUNCHES); `roofline simulate`
imports no plotly, Dash or torch. Checked on the source (ast), not at run time, so an import inside
a function counts too."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FACES = ("dashboards", "profilers")
CLI = ROOT / "roofline" / "cli"
# The CLI's rule: `roofline.api`, `roofline.report` and the CLI's own modules (the dispatch in
# main.py), plus `import roofline` for the version. A subcommand that launches another face imports
# that face (and what it needs, torch for measuring) inside a function, so parsing arguments and
# the planning path never load it: file -> the top-level packages it may import lazily.
CLI_ALLOWED = ("roofline.api", "roofline.report", "roofline.cli")
CLI_LAUNCHES = {
    "dashboard_cmd.py": ("roofline.dashboards",),
    "calibrate_cmd.py": ("roofline.profilers", "torch"),
    "validate_cmd.py": ("roofline.profilers", "torch"),
}
HEAVY = ("torch", "triton", "plotly", "dash", "flask")


def _imports(path: Path) -> list:
    """(line, module, lazy) of every import in a file: relative imports marked unresolved, `lazy`
    when the import sits inside a function body."""
    out = []

    def visit(node, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                out.extend((child.lineno, a.name, inner) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    out.append((child.lineno, f"<relative {child.level}>.{child.module or ''}", inner))
                else:
                    out.extend((child.lineno, f"{child.module}.{a.name}", inner) for a in child.names)
            visit(child, inner)

    visit(ast.parse(path.read_text(), str(path)), False)
    return out


def _imported_modules(path: Path) -> list:
    """(line, module) of every import in a file, relative imports resolved against its package."""
    return [(line, module) for line, module, _ in _imports(path)]


def _within(module: str, packages) -> bool:
    return any(module == p or module.startswith(p + ".") for p in packages)


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


def _cli_problem(path: Path, module: str, lazy: bool):
    """Why the CLI module `path` may not import `module` (None when it may)."""
    if module.startswith("<relative"):
        return "relative import"
    if module.split(".")[0] in (
        "simulator",
        "cli",
        "dashboards",
        "profilers",
        "kernels",
        "hwspecs",
        "models",
    ):
        return "a folder by its own name bypasses the package mapping"
    launches = CLI_LAUNCHES.get(path.name, ())
    if _within(module, launches):
        return None if lazy else "import the face it launches inside run(), not at module level"
    if module == "roofline.__version__" or module == "roofline" or _within(module, CLI_ALLOWED):
        return None
    if module.startswith("roofline."):
        return "use roofline.api or roofline.report"
    if module.split(".")[0] in HEAVY:
        return "the CLI does not import torch, triton, plotly or Dash (figures: roofline.report.figures)"
    return None


def test_the_cli_uses_only_the_api_and_the_report_layer():
    files = sorted(CLI.glob("*.py"))
    assert {"main.py", "simulate_cmd.py", *CLI_LAUNCHES} <= {p.name for p in files}
    bad = [
        f"{path.relative_to(ROOT)}:{line}: {module}: {problem}"
        for path in files
        for line, module, lazy in _imports(path)
        if (problem := _cli_problem(path, module, lazy))
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize(
    ("name", "module", "lazy", "allowed"),
    [
        ("plan_cmd.py", "roofline.api.simulate", False, True),
        ("plan_cmd.py", "roofline.report.tables.plan_table", True, True),
        ("main.py", "roofline.cli.simulate_cmd", False, True),
        ("plan_cmd.py", "roofline.simulator.planner.pareto_front", True, False),
        ("plan_cmd.py", "roofline.hwspecs.list_hardware", True, False),
        ("plan_cmd.py", "simulator.planner", True, False),
        ("plan_cmd.py", "<relative 1>.format", True, False),
        ("dashboard_cmd.py", "roofline.dashboards.app.create_app", True, True),
        ("dashboard_cmd.py", "roofline.dashboards.app.create_app", False, False),
        ("simulate_cmd.py", "roofline.dashboards.app.create_app", True, False),
        ("validate_cmd.py", "roofline.profilers.validate.run_validation", True, True),
        ("calibrate_cmd.py", "torch", True, True),
        ("calibrate_cmd.py", "torch", False, False),
        ("simulate_cmd.py", "plotly.io", True, False),
        ("hw_cmd.py", "roofline.profilers.device.read_device", True, False),
    ],
)
def test_the_cli_rule_itself(name, module, lazy, allowed):
    assert (_cli_problem(CLI / name, module, lazy) is None) == allowed
