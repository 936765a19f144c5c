"""The one reader of calibration profiles for the faces (dashboard, profilers, CLI), delegating to
`roofline.hwspecs`: `read_profile` for the typed profile the simulator uses, `read_profile_document`
for the file as written (raw points, notes, provenance), both size-limited and parsed with
`yaml.safe_load` only; `find_profile` and `CALIBRATION_DIR` say where `calibration: auto` looks.
"""

from __future__ import annotations

from roofline.hwspecs import CALIBRATION_DIR, find_profile, read_profile, read_profile_document

__all__ = ["CALIBRATION_DIR", "find_profile", "read_profile", "read_profile_document"]
