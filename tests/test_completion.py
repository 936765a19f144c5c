"""`roofline completion bash|zsh`: the script is generated from the parser and the registries, and
completes subcommands, options, option choices, registry names and files in a real bash."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from roofline.api import REGISTRY, list_hardware
from roofline.cli.main import SUBCOMMANDS, main


def script(capsys, shell: str) -> str:
    assert main(["completion", shell]) == 0
    return capsys.readouterr().out


def complete(script_text: str, tmp_path, *words: str) -> list:
    """COMPREPLY of the generated bash function for the command line `words` (the last is typed)."""
    if not shutil.which("bash"):
        pytest.skip("no bash")
    path = tmp_path / "roofline.bash"
    path.write_text(script_text)
    quoted = " ".join(f"'{w}'" for w in words)
    program = f'source {path}; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; _roofline; printf "%s\\n" "${{COMPREPLY[@]}}"'
    proc = subprocess.run(["bash", "-c", program], capture_output=True, text=True, cwd=tmp_path, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return [w for w in proc.stdout.splitlines() if w]


def test_bash_completes_from_the_parser_and_the_registries(capsys, tmp_path):
    text = script(capsys, "bash")
    assert set(complete(text, tmp_path, "roofline", "")) == set(SUBCOMMANDS)  # every subcommand
    assert complete(text, tmp_path, "roofline", "sim") == ["simulate"]
    assert complete(text, tmp_path, "roofline", "simulate", "--format", "") == ["table", "json", "csv"]
    assert complete(text, tmp_path, "roofline", "simulate", "--prompt", "128k", "--hardware", "h2") == [
        "h200"
    ]
    assert complete(text, tmp_path, "roofline", "hw", "show", "b2") == ["b200"]
    assert complete(text, tmp_path, "roofline", "hw", "") == ["list", "show"]
    assert set(complete(text, tmp_path, "roofline", "compare", "--method", "")) == set(REGISTRY)
    assert "--output-file" in complete(text, tmp_path, "roofline", "simulate", "--out")
    assert complete(text, tmp_path, "roofline", "simulate", "--prompt", "") == []  # free text
    (tmp_path / "mine.yaml").write_text("")
    assert complete(text, tmp_path, "roofline", "simulate", "mi") == ["mine.yaml"]  # the scenario file
    assert "complete -o default -F _roofline roofline" in text
    assert all(name in text for name in list_hardware())


def test_zsh_loads_the_same_script_through_bashcompinit(capsys):
    text = script(capsys, "zsh")
    assert text.startswith("#compdef roofline\nautoload -U +X bashcompinit && bashcompinit\n")
    assert script(capsys, "bash") in text


def test_an_unknown_shell_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["completion", "fish"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err
