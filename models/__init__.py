"""The model zoo (transcribed Hugging Face config.json files, see SCHEMA.md) and config loading.

`load_model` takes a zoo name (any case), a zoo model's Hugging Face id, a path to a config.json
or to a model folder holding one, or any other Hugging Face id (`Qwen/Qwen3-30B-A3B`: the local
Hugging Face cache, else a download of the config.json alone, `models.hub`). All go through
`simulator.hf_config.from_hf_config`, so a zoo model and its published config build the same
ModelArch. A model read from a file is named after its folder (`.../Qwen3-8B/config.json` is
`Qwen3-8B`), one from the Hub after its id.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache, lru_cache
from pathlib import Path

import yaml

from roofline.fileio import read_text
from roofline.hwspecs import unknown_name_message
from roofline.simulator.hf_config import from_hf_config
from roofline.simulator.model import ModelArch, ModelConfigError

HERE = Path(__file__).resolve().parent
MAX_CONFIG_BYTES = 4 * 2**20


@lru_cache(maxsize=1)
def zoo_index() -> dict:
    with open(HERE / "zoo.yaml") as fh:
        index = yaml.safe_load(fh)
    for entry in index.values():  # YAML 1.1 reads 8.03e9 (no dot) as a string
        for key in ("published_params", "published_active_params"):
            if isinstance(entry.get(key), str):
                entry[key] = float(entry[key])
    return index


def list_models() -> list:
    return sorted(zoo_index())


@lru_cache(maxsize=1)
def _zoo_aliases() -> dict:
    """Lower-cased zoo names and Hugging Face ids -> zoo name."""
    aliases = {}
    for name, entry in zoo_index().items():
        aliases[name.lower()] = name
        if entry.get("hf_repo"):
            aliases.setdefault(str(entry["hf_repo"]).lower(), name)
    return aliases


def _config_name(path: Path) -> str:
    """A config file's model name: its folder's for a `config.json`, else the file's stem."""
    path = Path(path)
    if path.name == "config.json" and path.resolve().parent.name:
        return path.resolve().parent.name
    return path.stem


def read_config(path: str | Path) -> dict:
    """Parse a config.json with json only, size-limited; errors name the file."""
    text = read_text(path, MAX_CONFIG_BYTES, "config file", ModelConfigError)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelConfigError(f"{path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ModelConfigError(f"{path}: nested too deeply to be a config.json") from None


def _is_file(path: str) -> bool:
    """Path.is_file that says False for names the OS refuses (too long, NUL bytes)."""
    try:
        return Path(path).is_file()
    except (OSError, ValueError):
        return False


def _is_dir(path: str) -> bool:
    try:
        return Path(path).is_dir()
    except (OSError, ValueError):
        return False


@cache
def load_model(name_or_path: str) -> ModelArch:
    """A zoo name (any case) or a zoo model's Hugging Face id; a path to a config.json or a model
    folder; or a Hugging Face id, read from the local cache or downloaded (`models.hub`)."""
    from roofline.models import hub

    index = zoo_index()
    name_or_path = _zoo_aliases().get(name_or_path.lower(), name_or_path) if name_or_path else name_or_path
    if name_or_path in index:
        entry = index[name_or_path]
        cfg = read_config(HERE / "zoo" / entry["config"])
        arch = from_hf_config(cfg, name=name_or_path, source=entry["config"])
        ctx = entry.get("max_context_tokens")
        return replace(arch, max_context_tokens=int(ctx)) if ctx else arch
    if _is_dir(name_or_path):
        config = Path(name_or_path) / "config.json"
        if not _is_file(str(config)):
            raise ModelConfigError(f"{name_or_path}: a folder without a config.json; not a model folder")
        return from_hf_config(read_config(config), name=_config_name(config), source=str(config))
    if _is_file(name_or_path) or name_or_path.endswith(".json"):
        return from_hf_config(read_config(name_or_path), name=_config_name(name_or_path), source=name_or_path)
    if hub.looks_like_hf_id(name_or_path):
        config = hub.cached_config(name_or_path) or hub.download_config(name_or_path)
        return from_hf_config(read_config(config), name=name_or_path, source=f"{name_or_path} ({config})")
    if "/" in name_or_path:  # a path that is not there
        return from_hf_config(read_config(name_or_path), name=_config_name(name_or_path), source=name_or_path)
    raise ModelConfigError(
        unknown_name_message("model", name_or_path, list_models())
        + " (or a Hugging Face id such as Qwen/Qwen3-8B, or a path to a config.json or model folder)"
    )
