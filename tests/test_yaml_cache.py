"""roofline/yaml_cache.py: a parsed profile read back from the cache is the document PyYAML gives,
types and all; an edited file is parsed anew; a broken or unwritable cache only costs time."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from roofline import yaml_cache
from roofline.fileio import load_yaml
from roofline.hwspecs import read_profile_document

SHIPPED = Path(__file__).resolve().parents[1] / "hwspecs" / "calibration"


def same(a, b) -> bool:
    """Equal with the same types all the way down (1, 1.0 and True are not the same here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) and type(k) is type(kb) for k, kb in zip(a, b))
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)  # NaN equals NaN here


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("ROOFLINE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "profiles"


@pytest.mark.parametrize("name", ["h100-sxm.vllm.yaml", "l40s.trtllm.yaml"])
def test_a_cached_profile_is_the_document_yaml_gives(cache, name):
    path = SHIPPED / name
    fresh = load_yaml(path.read_text())
    first = read_profile_document(path)  # parsed, then written to the cache
    assert len(list(cache.glob("*.json"))) == 1
    again = read_profile_document(path)  # read back from it
    assert same(first, fresh) and same(again, fresh)
    # the collective tables are keyed by GPU count, an int
    tables = [
        t for link in again["collectives"].values() for op in link["ops"].values() for t in [op.get("table")]
    ]
    assert any(t and all(type(k) is int for k in t) for t in tables)


def test_cache_is_keyed_by_the_text_and_survives_damage(cache, tmp_path):
    body = "profile_id: p\nhardware: h100-sxm\n" + "".join(
        f"k{i}: {{1: [1.5, .nan, true, null]}}\n" for i in range(4000)
    )
    path = tmp_path / "p.yaml"
    path.write_text(body)
    assert len(body) >= yaml_cache.MIN_BYTES
    first = read_profile_document(path)
    (entry,) = cache.glob("*.json")
    assert same(read_profile_document(path), first)
    assert list(first["k0"]) == [1] and first["k0"][1][2] is True
    path.write_text(body.replace("k0:", "k9999:", 1))  # edited: a new entry, the new content
    assert "k9999" in read_profile_document(path) and len(list(cache.glob("*.json"))) == 2
    entry.write_text("{not json")  # damaged: parsed again, and the entry rewritten
    path.write_text(body)
    assert same(read_profile_document(path), first)
    assert yaml_cache.json.loads(entry.read_text()) is not None


def test_cache_off_small_files_and_what_json_cannot_hold(tmp_path, monkeypatch):
    monkeypatch.setenv("ROOFLINE_CACHE_DIR", "off")
    assert yaml_cache.cache_dir() is None
    calls = []
    assert yaml_cache.parse_cached("x" * yaml_cache.MIN_BYTES, lambda t: calls.append(t) or {"a": 1}) == {
        "a": 1
    }
    monkeypatch.setenv("ROOFLINE_CACHE_DIR", str(tmp_path))
    assert yaml_cache.parse_cached("small", lambda t: {"a": 1}) == {"a": 1}  # under MIN_BYTES: no entry
    day = {"when": datetime.date(2026, 12, 6)}  # a YAML date: not cached, still returned
    assert yaml_cache.parse_cached("y" * yaml_cache.MIN_BYTES, lambda t: day) == day
    assert not list(tmp_path.rglob("*.json"))
    with pytest.raises(TypeError):
        yaml_cache.encode({"s": {1, 2}})


def test_cache_keeps_the_most_recently_used_entries(tmp_path, monkeypatch):
    import hashlib
    import os

    monkeypatch.setenv("ROOFLINE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(yaml_cache, "MAX_ENTRIES", 3)
    texts = [f"{i}" + "x" * yaml_cache.MIN_BYTES for i in range(5)]

    def entry(text):
        return (
            tmp_path / "profiles" / f"{hashlib.sha256((yaml_cache.FORMAT + text).encode()).hexdigest()}.json"
        )

    for i, text in enumerate(texts[:3]):
        yaml_cache.parse_cached(text, lambda t, i=i: {"n": i})
        os.utime(entry(text), ns=(i + 1, i + 1))  # used in the order 0, 1, 2 (long ago)
    assert yaml_cache.parse_cached(texts[0], lambda t: {"n": "parsed"}) == {"n": 0}  # read: now the newest
    yaml_cache.parse_cached(texts[3], lambda t: {"n": 3})  # a fourth entry: the least recent (1) goes
    yaml_cache.parse_cached(texts[4], lambda t: {"n": 4})  # a fifth: then 2
    assert sorted(f.name for f in (tmp_path / "profiles").glob("*.json")) == sorted(
        entry(t).name for t in (texts[0], texts[3], texts[4])
    )
