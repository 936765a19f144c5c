"""Files users upload to the dashboard: a scenario YAML or a Hugging Face config.json.

Uploads arrive as base64 data URLs (dcc.Upload). Each is size-limited, decoded as UTF-8 and parsed
with `yaml.safe_load` or `json.loads` only. A config.json must build a model
(`simulator.hf_config.from_hf_config`) before it is stored, content-addressed, in the server's
upload folder; the Plan state then names it `upload:<id>`. Errors are `UploadError`,
`ScenarioError` or `ModelConfigError` with a message meant for the page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import tempfile
from pathlib import Path

import yaml

from roofline.api import ModelConfigError, ScenarioError, UserError, from_hf_config

MAX_UPLOAD_BYTES = 1 * 2**20


class UploadError(UserError):
    """An upload that cannot be read (too large, not text, not the expected format)."""


def default_upload_dir() -> Path:
    return Path(tempfile.gettempdir()) / "roofline-dashboard-uploads"


def decode_upload(contents: str, filename: str | None) -> str:
    """The text of a dcc.Upload data URL ('data:<type>;base64,<data>'), at most 1 MiB."""
    name = filename or "the file"
    if not isinstance(contents, str) or "," not in contents:
        raise UploadError(f"{name}: could not read the upload")
    encoded = contents.split(",", 1)[1]
    if len(encoded) * 3 // 4 > MAX_UPLOAD_BYTES + 3:
        raise UploadError(f"{name}: larger than the {MAX_UPLOAD_BYTES // 2**20} MiB upload limit")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise UploadError(f"{name}: could not decode the upload") from None
    if len(raw) > MAX_UPLOAD_BYTES:
        raise UploadError(f"{name}: larger than the {MAX_UPLOAD_BYTES // 2**20} MiB upload limit")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UploadError(f"{name}: not a text file") from None


def parse_scenario_text(text: str, filename: str | None) -> dict:
    """A scenario mapping from YAML text (yaml.safe_load only)."""
    name = filename or "scenario"
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError([f"{name}: not valid YAML: {str(exc)[:300]}"]) from None
    except RecursionError:
        raise ScenarioError([f"{name}: nested too deeply to be a scenario"]) from None
    if not isinstance(doc, dict):
        raise ScenarioError(
            [f"{name}: a scenario must be a YAML mapping of fields, got {type(doc).__name__}"]
        )
    return doc


def _stem(filename: str | None) -> str:
    stem = Path(filename or "config").stem
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "config"
    return stem[:40]


def store_config(text: str, filename: str | None, upload_dir) -> tuple:
    """Validate a config.json and store it; returns (model id, ModelArch). The id is the file stem
    and a content hash, so the same upload always gets the same id."""
    name = filename or "config.json"
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelConfigError(f"{name}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ModelConfigError(f"{name}: nested too deeply to be a config.json") from None
    if not isinstance(cfg, dict):
        raise ModelConfigError(f"{name}: a config.json is a JSON object of fields, got {type(cfg).__name__}")
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    model_id = f"{_stem(filename)}-{digest}"
    arch = from_hf_config(cfg, name=model_id, source=name)
    folder = Path(upload_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{model_id}.json"
    if not path.is_file():
        tmp = folder / f".{model_id}.json.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    return model_id, arch
