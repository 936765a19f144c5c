"""max_context_tokens' search (`memory.largest_fitting`) gives exactly what the 41-step bisection of
[output + S, 2^40] gives: on random piecewise-linear usages, and on every method alone over sweeps
of batch, output, shared prefix and hardware, chunked and not, for models with windows, MLA and recurrent
layers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import roofline
from roofline.api import REGISTRY
from roofline.dashboards.state import suggested
from roofline.simulator import memory


def bisected(usage, room, host_room, lo, hi):
    """The reference: bisection of [lo, hi] over integers, 41 halvings."""

    def evaluate(C):
        gpu, host = usage(C)
        return (gpu <= room) & (host <= host_room), gpu, host

    return memory._bisect_largest(evaluate, lo, hi)


def test_random_piecewise_linear_usages_match_the_bisection():
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        kinks = np.sort(rng.uniform(0, 8, (3, n)) ** 10, axis=0)  # breakpoints from 1 to 1e9
        slopes = rng.choice([0.0, 0.5, 3.0, 1e3, 2e5], (4, n))
        base = rng.uniform(0, 1e6, n)

        def usage(C, kinks=kinks, slopes=slopes, base=base):
            gpu = base + slopes[0] * C
            for k, s in zip(kinks, slopes[1:]):
                gpu = gpu + s * np.maximum(C - k, 0.0)
            return gpu, 0.25 * C * (slopes[1] > 1.0)

        lo = rng.integers(1, 5000, n).astype(float)
        hi = np.full(n, memory.MAX_CONTEXT_SEARCH)
        room = rng.uniform(0, 1e12, n) * rng.choice([1e-6, 1.0, 1e3], n)
        host_room = rng.choice([np.inf, 1e6, 1e11], n)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            got = memory.largest_fitting(usage, room, host_room, lo, hi)
            want = bisected(usage, room, host_room, lo, hi)
        np.testing.assert_array_equal(got, want)


def _method(name: str) -> dict:
    out = {"name": name}
    for param in REGISTRY[name].params:
        value = suggested(name, param)
        if value != "":
            out[param] = value
    return out


MODELS = ["llama-3.1-8b", "gemma-3-12b", "deepseek-v2-lite", "jamba-1.5-mini", "gpt-oss-20b", "llama-2-7b"]


@pytest.mark.parametrize("method", [None, *sorted(REGISTRY)])
def test_max_context_equals_the_bisection_under_every_method(method, monkeypatch):
    rows = []
    for model, chunk in itertools.product(MODELS, (None, 2048)):
        doc = {
            "model": model,
            "hardware": "h100-sxm",
            "workload": {
                "batch": 1,
                "prompt_tokens": 8192,
                "output_tokens": 256,
                "prefill_chunk_tokens": chunk,
            },
            "methods": [_method(method)] if method else [],
            "sweep": {
                "workload.batch": [1, 3, 64],
                "workload.output_tokens": [1, 1000],
                "workload.shared_prefix_tokens": [0, 1024],
                "hardware": ["a10g", "h200"],
            },
        }
        try:
            fast = roofline.simulate(doc).columns["max_context_tokens"]
        except roofline.api.UserError:
            continue  # a method this model cannot take
        with monkeypatch.context() as m:
            m.setattr(memory, "largest_fitting", bisected)
            slow = roofline.simulate(doc).columns["max_context_tokens"]
        rows.append(model)
        np.testing.assert_array_equal(fast, slow, err_msg=f"{method} on {model}")
    assert rows
