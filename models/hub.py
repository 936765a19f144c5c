"""Finding a Hugging Face model's config.json by repository id (`Qwen/Qwen3-30B-A3B`): in the local
Hugging Face cache first, then by downloading that one file through `huggingface_hub` where it is
installed (the optional `hf` extra) and a network exists. Reading and understanding the config is
left to `models.load_model` and `simulator.hf_config`.

The cache layout is the hub library's documented one: `<cache>/models--<org>--<name>/refs/main`
names the snapshot, `<cache>/models--<org>--<name>/snapshots/<revision>/config.json` holds the file;
the cache is `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from roofline.simulator.model import ModelConfigError

# A repository id: owner/name, letters, digits and - _ . (the Hub's rule), no path-like parts.
HF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
INSTALL_HINT = "python -m pip install 'roofline[hf]' (or huggingface_hub)"


def looks_like_hf_id(text: str) -> bool:
    return bool(HF_ID.match(text)) and ".." not in text and not text.endswith(".json")


def cache_dirs() -> list:
    """The Hugging Face hub caches to look in, in the hub library's order of precedence."""
    env = os.environ
    dirs = [env.get("HF_HUB_CACHE"), env.get("HUGGINGFACE_HUB_CACHE")]
    if env.get("HF_HOME"):
        dirs.append(str(Path(env["HF_HOME"]) / "hub"))
    xdg = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    dirs.append(str(Path(xdg) / "huggingface" / "hub"))
    return [Path(d) for d in dict.fromkeys(d for d in dirs if d)]


def _repo_folder(cache: Path, repo_id: str) -> Path | None:
    """The cache folder of `repo_id`, matched case-insensitively (Hub ids are)."""
    want = "models--" + repo_id.replace("/", "--")
    exact = cache / want
    if exact.is_dir():
        return exact
    try:
        return next((p for p in cache.iterdir() if p.name.lower() == want.lower() and p.is_dir()), None)
    except OSError:
        return None


def cached_config(repo_id: str) -> Path | None:
    """The cached config.json of `repo_id` (the snapshot refs/main names, else the newest), or None."""
    for cache in cache_dirs():
        folder = _repo_folder(cache, repo_id)
        if folder is None:
            continue
        ref = folder / "refs" / "main"
        if ref.is_file():
            candidate = folder / "snapshots" / ref.read_text().strip() / "config.json"
            if candidate.is_file():
                return candidate
        found = sorted(
            (p for p in (folder / "snapshots").glob("*/config.json") if p.is_file()),
            key=lambda p: p.stat().st_mtime,
        )
        if found:
            return found[-1]
    return None


def download_config(repo_id: str) -> Path:
    """config.json of `repo_id` through huggingface_hub (the file only, into the hub's cache)."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise ModelConfigError(
            f"model {repo_id!r}: not a zoo model, a local folder or in the local Hugging Face cache; "
            f"to download its config.json install huggingface_hub: {INSTALL_HINT}, or give the path "
            "of a config.json"
        ) from None
    try:
        return Path(hf_hub_download(repo_id=repo_id, filename="config.json"))
    except Exception as exc:  # the hub's errors differ by version: name them by class
        kind = type(exc).__name__
        if kind in (
            "RepositoryNotFoundError",
            "GatedRepoError",
            "EntryNotFoundError",
            "RevisionNotFoundError",
        ):
            why = "no such repository or config.json, or a gated one (log in with `hf auth login`)"
        elif kind in ("LocalEntryNotFoundError", "OfflineModeIsEnabled") or isinstance(exc, OSError):
            why = "no network (or HF_HUB_OFFLINE is set) and it is not in the local cache"
        else:
            why = f"{kind}: {' '.join(str(exc).split())[:200]}"
        raise ModelConfigError(
            f"model {repo_id!r}: could not download its config.json from the Hugging Face Hub: {why}. "
            "Give the path of a local config.json or model folder instead"
        ) from None
