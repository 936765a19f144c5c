"""Model references the dashboard will open: zoo names, 'self' (draft models) and configs uploaded to
this dashboard, named `upload:<id>` and resolved to a path inside the server's upload folder only
here; a URL, an imported YAML or a crafted callback request can never name another file on the
server. A stored upload is a regular file inside the folder, never a link (`is_stored_upload`).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

UPLOAD_PREFIX = "upload:"
UPLOAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,100}$")


def upload_path(model_id: str, upload_dir) -> Path | None:
    """The file of an uploaded model id, or None if the id is malformed or there is no folder."""
    if upload_dir is None or not UPLOAD_ID.match(model_id):
        return None
    return Path(upload_dir) / f"{model_id}.json"


def is_stored_upload(path) -> bool:
    """True for a regular file (not a link, FIFO or device) directly inside the upload folder."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except (OSError, ValueError):
        return False


def resolve_model(ref, upload_dir) -> str:
    """`upload:<id>` -> the stored config.json's path; zoo names pass through."""
    if isinstance(ref, str) and ref.startswith(UPLOAD_PREFIX):
        path = upload_path(ref[len(UPLOAD_PREFIX) :], upload_dir)
        return str(path) if path is not None else ref
    return ref


def model_ref_problem(ref, where: str, zoo, upload_dir) -> str | None:
    if not isinstance(ref, str):
        return f"{where}: must be a model name, got {type(ref).__name__}"
    if ref in zoo:
        return None
    if ref.startswith(UPLOAD_PREFIX):
        path = upload_path(ref[len(UPLOAD_PREFIX) :], upload_dir)
        if path is None or not is_stored_upload(path):
            return f"{where}: the uploaded model {ref[len(UPLOAD_PREFIX) :][:60]!r} is no longer on this server; upload its config.json again"
        return None
    return (
        f"{where}: {ref[:60]!r} is not a zoo model. To use your own model, upload its config.json with "
        "'Upload config.json' (the dashboard reads no other files from the server)"
    )


def upload_ref(ref, upload_dir):
    """A path inside the upload folder (an exported plan) -> its `upload:<id>`; else unchanged."""
    if isinstance(ref, str) and upload_dir is not None and ref.endswith(".json"):
        p = Path(ref)
        if p.parent.resolve() == Path(upload_dir).resolve() and UPLOAD_ID.match(p.stem):
            return UPLOAD_PREFIX + p.stem
    return ref
