"""Test helpers: run a scenario mapping and get records or per-op tables."""

from __future__ import annotations

import copy
import math
import os
from contextlib import contextmanager

import roofline
from roofline.api import set_path
from roofline.simulator.results import op_table


def run(**fields):
    """simulate() a scenario built from keyword sections; returns (result, records)."""
    doc = {"model": "llama-3.1-8b", "hardware": "h100-sxm"}
    doc.update(fields)
    res = roofline.simulate(doc)
    return res, res.records()


def two_prompts(chunked: bool = True, mixed=None, framework: str = "vllm"):
    """Two 600-token prompts queued at once under a 1,000-token budget, 3 outputs each, Llama 3.1 8B on
    one H100 (`mixed` None: the framework's): (first-token times, finish times, both sorted; the
    record)."""
    import numpy as np

    scheduler = {"max_batched_tokens": 1000, "chunked_prefill": chunked, "admission": "reserve"}
    if mixed is not None:
        scheduler["mixed_batches"] = mixed
    sv = {
        "requests": 2,
        "arrival": {"offline": True},
        "prompt_tokens": 600,
        "output_tokens": 3,
        "scheduler": scheduler,
    }
    res = roofline.serve(
        {"model": "llama-3.1-8b", "hardware": "h100-sxm", "runtime": {"framework": framework}, "serving": sv}
    )
    (tl,) = res.timelines
    return np.sort(tl.first_token_s), np.sort(tl.finish_s), res.record


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


def point_alone(base: dict, point: dict) -> dict:
    """The one-point scenario of a sweep record's `point` ({"parallelism.cp": 2, "hardware": ...})
    over `base`, each field set as `--set` sets it."""
    doc = copy.deepcopy(base)
    for path, value in point.items():
        set_path(doc, path, value)
    return doc


@contextmanager
def shipped_profiles_env():
    """`calibration: auto` on the shipped profiles for the block (the `shipped_profiles` fixture,
    for tests that cannot take a function-scoped fixture: hypothesis)."""
    saved = os.environ.pop("ROOFLINE_CALIBRATION_DIR", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["ROOFLINE_CALIBRATION_DIR"] = saved
