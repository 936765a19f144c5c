"""Test helpers: run a scenario mapping and get records or per-op tables."""

from __future__ import annotations

import math

import roofline
from roofline.simulator.results import op_table


def run(**fields):
    """simulate() a scenario built from keyword sections; returns (result, records)."""
    doc = {"model": "llama-3.1-8b", "hardware": "h100-sxm"}
    doc.update(fields)
    res = roofline.simulate(doc)
    return res, res.records()


def ops(result, i=0, phase="prefill"):
    return op_table(result, i, phase)


def assert_same(a, b, path=""):
    """Records a and b equal key for key, floats to 1e-9 relative (a vectorised sweep and a single
    point may sum the same terms in another order)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (path, sorted(a), sorted(b))
        for key in a:
            assert_same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0), (path, a, b)
    else:
        assert a == b, (path, a, b)
