"""The model zoo (transcribed Hugging Face config.json files, see SCHEMA.md) and config loading.

`load_model("llama-3.1-8b")` and `load_model("path/to/config.json")` both go through
`simulator.hf_config.from_hf_config`, so a zoo model and its published config build the same
ModelArch.
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


@cache
def load_model(name_or_path: str) -> ModelArch:
    """A zoo slug, or a path to a Hugging Face config.json."""
    index = zoo_index()
    if name_or_path in index:
        entry = index[name_or_path]
        cfg = read_config(HERE / "zoo" / entry["config"])
        arch = from_hf_config(cfg, name=name_or_path, source=entry["config"])
        ctx = entry.get("max_context_tokens")
        return replace(arch, max_context_tokens=int(ctx)) if ctx else arch
    if name_or_path.endswith(".json") or "/" in name_or_path or _is_file(name_or_path):
        return from_hf_config(read_config(name_or_path), name=Path(name_or_path).stem, source=name_or_path)
    raise ModelConfigError(
        unknown_name_message("model", name_or_path, list_models()) + " (or a path to a config.json)"
    )
