"""A cache of parsed calibration profiles, so that each CLI run does not parse the same YAML again.

The shipped profiles are 0.5-0.8 MB of YAML each (measured grids); PyYAML takes 0.2-0.4 s to parse
one, JSON about 5 ms. `parse_cached(text, parse)` keys the parsed document by the SHA-256 of the
file's text (so an edited file is parsed anew), keeps it as JSON under the user's cache folder
(`ROOFLINE_CACHE_DIR`, else `$XDG_CACHE_HOME/roofline`, else `~/.cache/roofline`; `off` turns it
off), and reads it from there the next time; it keeps the MAX_ENTRIES most recently used. JSON,
not pickle: reading a cache file never runs code.
Mapping keys that are not strings (the collective tables' GPU counts) are kept with their types.
A cache that cannot be read or written is skipped silently: it only saves time.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

CACHE_ENV = "ROOFLINE_CACHE_DIR"
FORMAT = "1"  # bump when the encoding changes: old entries are then never read
MIN_BYTES = 64 * 1024  # smaller files parse in milliseconds: not worth a cache entry
MAX_ENTRIES = 64  # beyond this many, writing an entry removes the least recently used ones
_KEYS = "\x00keys"  # a mapping whose keys are not all strings: {_KEYS: [[key, value], ...]}


def cache_dir() -> Path | None:
    """The folder parsed profiles are kept in, or None when the cache is off."""
    chosen = os.environ.get(CACHE_ENV)
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "off", "0", "no", "none") else Path(chosen) / "profiles"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "roofline" / "profiles"


def encode(obj):
    """`obj` (what yaml.safe_load returns for a profile) as JSON-ready data; TypeError for anything
    JSON cannot hold exactly (dates, sets)."""
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and _KEYS not in obj:
            return {k: encode(v) for k, v in obj.items()}
        return {_KEYS: [[k, encode(v)] for k, v in obj.items()]}
    if isinstance(obj, list):
        return [encode(v) for v in obj]
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    raise TypeError(f"not cached: {type(obj).__name__}")


def _decode(mapping: dict):
    if len(mapping) == 1 and _KEYS in mapping:
        return {k: v for k, v in mapping[_KEYS]}
    return mapping


def parse_cached(text: str, parse):
    """parse(text), from the cache where this exact text was parsed before (mappings only)."""
    folder = cache_dir() if len(text) >= MIN_BYTES else None
    if folder is None:
        return parse(text)
    entry = folder / f"{hashlib.sha256((FORMAT + text).encode()).hexdigest()}.json"
    try:
        doc = json.loads(entry.read_text(encoding="utf-8"), object_hook=_decode)
    except (OSError, ValueError):
        doc = None
    if isinstance(doc, dict):
        try:
            os.utime(entry)  # used now: the last to be pruned
        except OSError:
            pass
        return doc
    doc = parse(text)
    if isinstance(doc, dict):
        try:
            from roofline.fileio import write_atomic

            write_atomic(entry, json.dumps(encode(doc)))
            _prune(folder)
        except (OSError, TypeError, ValueError):
            pass
    return doc


def _prune(folder: Path) -> None:
    """Keep the MAX_ENTRIES most recently used entries (one per profile version read)."""
    entries = sorted(folder.glob("*.json"), key=lambda f: f.stat().st_mtime_ns, reverse=True)
    for old in entries[MAX_ENTRIES:]:
        old.unlink(missing_ok=True)
