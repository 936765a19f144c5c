"""Reading and writing the user's files safely, in one place.

* `read_text`: a file the user named (scenario, config.json, calibration profile, trace) is read
  only if it exists, is no larger than the caller's limit and is text; every failure becomes the
  caller's own error type with a message naming the file.
* `write_atomic`: outputs are written to a temporary file beside the target, synced, then renamed
  over it, so a crash or Ctrl-C never leaves half a file where the user's file was.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def read_text(path, max_bytes: int, what: str, fail) -> str:
    """The text of `path`; `fail(message)` builds the exception raised for a missing, oversized or
    binary file (`what` names the kind of file in the message)."""
    p = Path(path)
    if not p.is_file():
        raise fail(f"{path}: no such {what}")
    if p.stat().st_size > max_bytes:
        raise fail(f"{path}: larger than {max_bytes} bytes; not a {what}")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise fail(f"{path}: not a text file; not a {what}") from None


def write_atomic(path, text: str) -> None:
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(21, "is a directory, not a file", str(p))
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
