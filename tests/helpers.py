"""Test helpers: run a scenario mapping and get records or per-op tables."""

from __future__ import annotations

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
