"""The checks every calibration-profile field goes through: numbers in plausible ranges, mappings,
fixed-length vectors, and the error that names the file and the field (`CalibrationError`).

simulator/calibration.py parses profiles with these, and simulator/calibration_grids.py their
measured grids; this module knows nothing of what the fields mean.
"""

from __future__ import annotations

import math

from roofline.simulator.errors import UserError, short


class CalibrationError(UserError):
    """A calibration profile that cannot be used."""


MAX_KERNEL_OVERHEAD_S = 1e-2  # an empty kernel's launch + tail is microseconds
MAX_ALPHA_S = 1.0  # a collective's per-step latency is microseconds
MAX_X = 1e18  # problem sizes: elements, tokens or bytes
MAX_HILL_P = 50.0
MAX_RESIDUAL = 100.0
MAX_POINT_EFFICIENCY = 100.0  # measured points may exceed 1 (other FLOP conventions); garbage does not


def key_path(key) -> str:
    """A mapping key as it appears in a field path (quoted and cut when odd or long)."""
    return key if isinstance(key, str) and len(key) <= 60 and key.isprintable() else short(key)


def mapping(value, where: str, what: str) -> dict:
    if not isinstance(value, dict):
        raise CalibrationError(f"{where}: must map {what}, got {short(value)}")
    return value


def number(value, where: str, low=None, high=None, open_low=False, what: str = "a plausible value") -> float:
    """A finite number in [low, high] (or (low, high] with open_low); errors name the field."""
    try:
        finite = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    except OverflowError:  # an integer past float range
        finite = False
    if not finite:
        raise CalibrationError(f"{where}: must be a finite number, got {short(value)}")
    value = float(value)
    if (low is not None and (value < low or (open_low and value == low))) or (
        high is not None and value > high
    ):
        bracket = "(" if open_low else "["
        raise CalibrationError(f"{where}: {what} is in {bracket}{low:g}, {high:g}], got {short(value)}")
    return value


def vector(value, where: str, dims: int, low: float, high: float) -> tuple:
    if not isinstance(value, list) or len(value) != dims:
        raise CalibrationError(f"{where}: must be a list of {dims} numbers, got {short(value)}")
    return tuple(number(v, f"{where}[{i}]", low, high) for i, v in enumerate(value))


def section_items(section, where: str, what: str, valid, noun: str) -> list:
    """(key, value, the key's field path) of a profile section mapping `what` (None: empty), each
    key one of `valid` (else an error naming the `noun` and the valid keys)."""
    if section is None:
        return []
    mapping(section, where, what)
    out = []
    for key, value in section.items():
        at = f"{where}.{key_path(key)}"
        if key not in valid:
            raise CalibrationError(f"{at}: unknown {noun}; valid: {', '.join(valid)}")
        out.append((key, value, at))
    return out
