"""Files users upload to the dashboard: a scenario YAML or a Hugging Face config.json.

Uploads arrive as base64 data URLs (dcc.Upload). Each is size-limited before it is decoded (at most
`MAX_UPLOAD_BYTES` of file; the base64 padding is not counted), decoded as UTF-8 and parsed with
`json.loads` or the API's `load_yaml` (safe_load semantics, nesting and aliases bounded) only. A file name is a
plain name: one with a path separator, a NUL or `..` is refused. A config.json must build a model
(`simulator.hf_config.from_hf_config`) before it is stored, content-addressed, in the server's
private upload folder (`private_upload_dir`: mkdtemp, mode 0700, one per server); the file is
created without following links and a link planted in its place is refused, so an upload can
never overwrite another file. The Plan state then names it `upload:<id>`. Errors are
`UploadError`, `ScenarioError` or `ModelConfigError` with a message meant for the page.
"""

from __future__ import annotations

import atexit
import base64
import binascii
import functools
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

import yaml

from roofline.api import ModelConfigError, ScenarioError, UserError, YAMLLimitError, from_hf_config, load_yaml

MAX_UPLOAD_BYTES = 1 * 2**20
UPLOAD_ALIAS_EXPANSION = 10_000  # nodes aliases may add to an uploaded scenario (a scenario needs a few)


class UploadError(UserError):
    """An upload that cannot be read (too large, not text, not the expected format)."""


NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
BINARY = getattr(os, "O_BINARY", 0)


def private_upload_dir() -> Path:
    """A new folder only this process's user can enter (mkdtemp: mode 0700, unpredictable name),
    removed when the process that made it exits."""
    path = tempfile.mkdtemp(prefix="roofline-dashboard-uploads-")
    owner = os.getpid()

    def remove():  # forked server workers inherit this hook; only the creator removes the folder
        if os.getpid() == owner:
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)
    return Path(path)


@functools.cache
def default_upload_dir() -> Path:
    """The upload folder of callbacks run outside an app (tests): one private folder per process."""
    return private_upload_dir()


def check_filename(filename) -> str:
    """The upload's file name for messages; a name that is not a plain file name is refused."""
    if filename is None:
        return "the file"
    if (
        not isinstance(filename, str)
        or not filename.strip()
        or len(filename) > 255
        or any(c in filename for c in "/\\\0")
        or filename.strip() in (".", "..")
    ):
        raise UploadError("the upload's file name must be a plain file name (no folders, no '..')")
    return filename


def decoded_size(encoded: str) -> int:
    """Bytes that a base64 text decodes to, without decoding it (padding not counted)."""
    pad = len(encoded) - len(encoded.rstrip("="))
    return len(encoded) // 4 * 3 - min(pad, 2) + {0: 0, 2: 1, 3: 2}.get(len(encoded) % 4, 0)


def decode_upload(contents: str, filename: str | None) -> str:
    """The text of a dcc.Upload data URL ('data:<type>;base64,<data>'), at most 1 MiB; an
    oversized upload is refused before it is decoded."""
    name = check_filename(filename)
    if not isinstance(contents, str) or "," not in contents:
        raise UploadError(f"{name}: could not read the upload")
    if len(contents) > (MAX_UPLOAD_BYTES + 2) // 3 * 4 + 200:  # the data URL header is short
        raise UploadError(f"{name}: larger than the {MAX_UPLOAD_BYTES // 2**20} MiB upload limit")
    encoded = contents.split(",", 1)[1]
    if decoded_size(encoded) > MAX_UPLOAD_BYTES:
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
    """A scenario mapping from YAML text (safe_load semantics, aliases bounded)."""
    name = filename or "scenario"
    try:
        doc = load_yaml(text, max_alias_expansion=UPLOAD_ALIAS_EXPANSION)
    except yaml.YAMLError as exc:
        raise ScenarioError([f"{name}: not valid YAML: {str(exc)[:300]}"]) from None
    except YAMLLimitError as exc:
        raise ScenarioError([f"{name}: refused: {exc}"]) from None
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


def config_id(text: str, filename: str | None) -> str:
    """The stored id of an uploaded config.json: the file stem and a content hash, so the same
    upload always gets the same id."""
    return f"{_stem(filename)}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:10]}"


def _open_folder(upload_dir) -> int:
    """A descriptor of the upload folder (created 0700 when missing); a link is refused."""
    folder = Path(upload_dir)
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError:
        raise UploadError("the server's upload folder is not usable; see the server log") from None
    try:
        return os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | NOFOLLOW)
    except OSError:
        raise UploadError("the server's upload folder is a link or not a folder; refused") from None


def _write_new(dir_fd: int, name: str, text: str) -> None:
    """Write `name` inside the folder: a fresh temporary file (O_EXCL, never through a link),
    renamed into place; an existing entry that is not a regular file is refused."""
    try:
        existing = os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        existing = None
    if existing is not None:
        if stat.S_ISREG(existing.st_mode):
            return  # content-addressed: the same bytes are already stored
        raise UploadError(f"{name}: the stored upload is not a regular file; refused")
    tmp = f".{name}.{os.urandom(6).hex()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | BINARY
    fd = os.open(tmp, flags, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(text.encode("utf-8"))
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise


def store_config(text: str, filename: str | None, upload_dir) -> tuple:
    """Validate a config.json and store it in the upload folder; returns (model id, ModelArch)."""
    name = check_filename(filename) if filename is not None else "config.json"
    try:
        cfg = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelConfigError(f"{name}: not valid JSON ({exc})") from None
    except RecursionError:
        raise ModelConfigError(f"{name}: nested too deeply to be a config.json") from None
    if not isinstance(cfg, dict):
        raise ModelConfigError(f"{name}: a config.json is a JSON object of fields, got {type(cfg).__name__}")
    model_id = config_id(text, filename)
    arch = from_hf_config(cfg, name=model_id, source=name)
    dir_fd = _open_folder(upload_dir)
    try:
        _write_new(dir_fd, f"{model_id}.json", text)
    finally:
        os.close(dir_fd)
    return model_id, arch
