"""Models by name, Hugging Face id or folder: zoo names in any case, a zoo model's Hub id, a model
folder (named after the folder), the local Hugging Face cache, and the download of config.json
through huggingface_hub (mocked: no network in tests), with a clear message when it cannot happen.
"""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import pytest

from roofline.api import ModelConfigError, load_model
from roofline.cli.main import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY = FIXTURES / "tiny_llama_config.json"


@pytest.fixture(autouse=True)
def fresh(monkeypatch, tmp_path):
    """An empty Hugging Face cache of our own, and load_model's memo cleared around each test."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    load_model.cache_clear()
    yield
    load_model.cache_clear()


def cache_snapshot(tmp_path: Path, repo_id: str, revision: str = "abc123", config: Path = TINY) -> Path:
    folder = tmp_path / "hub" / ("models--" + repo_id.replace("/", "--"))
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(revision)
    snap = folder / "snapshots" / revision
    snap.mkdir(parents=True)
    shutil.copy(config, snap / "config.json")
    return snap / "config.json"


@pytest.mark.parametrize(
    "name", ["Llama-3.1-8B", "LLAMA-3.1-8B", "meta-llama/Llama-3.1-8B", "META-LLAMA/llama-3.1-8b"]
)
def test_zoo_names_and_their_hub_ids_in_any_case(name):
    m = load_model(name)
    assert m.name == "llama-3.1-8b" and m.max_context_tokens == 131072


def test_a_model_folder_and_its_config_are_named_after_the_folder(tmp_path):
    folder = tmp_path / "MyTiny-2L"
    folder.mkdir()
    shutil.copy(TINY, folder / "config.json")
    assert load_model(str(folder)).name == "MyTiny-2L"
    assert load_model(str(folder / "config.json")).name == "MyTiny-2L"
    assert load_model(str(TINY)).name == "tiny_llama_config"  # any other file name: its stem
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelConfigError, match="a folder without a config.json"):
        load_model(str(empty))


def test_a_hub_id_is_read_from_the_local_cache(tmp_path):
    cache_snapshot(tmp_path, "acme/Tiny-2L")
    m = load_model("acme/Tiny-2L")
    assert m.name == "acme/Tiny-2L" and m.hidden_size == 64 and m.num_layers == 2
    load_model.cache_clear()
    assert load_model("ACME/tiny-2l").hidden_size == 64  # Hub ids are case-insensitive


def test_without_huggingface_hub_a_missing_id_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # import fails
    with pytest.raises(ModelConfigError, match=r"not a zoo model.*install huggingface_hub.*roofline\[hf\]"):
        load_model("acme/Nowhere-1B")


def _fake_hub(monkeypatch, download):
    module = types.ModuleType("huggingface_hub")
    module.hf_hub_download = download
    monkeypatch.setitem(sys.modules, "huggingface_hub", module)


def test_the_config_alone_is_downloaded_through_huggingface_hub(monkeypatch, tmp_path):
    asked = []

    def download(repo_id, filename):
        asked.append((repo_id, filename))
        return str(cache_snapshot(tmp_path, repo_id))

    _fake_hub(monkeypatch, download)
    m = load_model("acme/Fresh-2L")
    assert asked == [("acme/Fresh-2L", "config.json")] and m.name == "acme/Fresh-2L"


@pytest.mark.parametrize(
    ("error", "fragment"),
    [("LocalEntryNotFoundError", "no network"), ("RepositoryNotFoundError", "no such repository")],
)
def test_download_failures_are_one_clear_error(monkeypatch, error, fragment):
    exc_class = type(error, (Exception,), {})

    def download(repo_id, filename):
        raise exc_class("the hub's long message")

    _fake_hub(monkeypatch, download)
    with pytest.raises(ModelConfigError, match=fragment) as info:
        load_model("acme/Offline-1B")
    assert "acme/Offline-1B" in str(info.value) and "local config.json" in str(info.value)


def test_a_multimodal_config_is_read_from_its_text_config(tmp_path):
    inner = json.loads(TINY.read_text())
    outer = {"architectures": inner["architectures"], "model_type": "llava", "text_config": inner}
    folder = tmp_path / "Tiny-VL"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(outer))
    m = load_model(str(folder))
    assert (m.name, m.hidden_size, m.num_layers) == ("Tiny-VL", 64, 2)


def test_the_cli_simulates_a_hub_id_from_the_cache(capsys, tmp_path):
    cache_snapshot(tmp_path, "acme/Tiny-2L")
    rc = main(
        ["simulate", "--model", "acme/Tiny-2L", "--hardware", "l4", "--prompt", "1k", "--format", "json"]
    )
    out, err = capsys.readouterr()
    assert rc == 0, err
    (rec,) = json.loads(out)
    assert rec["model"] == "acme/Tiny-2L" and rec["memory"]["weights_bytes"] > 0
    rc = main(["models", "show", "acme/nowhere-x", "--kv-dtype", "bf16"])
    _, err = capsys.readouterr()
    assert rc == 2 and err.startswith("error: ") and "acme/nowhere-x" in err
