"""Prefill/decode disaggregation (DistServe, Zhong et al., OSDI '24; Splitwise, Patel et al., ISCA
'24; Mooncake): a prefill pool computes each prompt and its first token, its KV cache crosses a link
to a decode pool, which generates the rest. Each pool is its own set of replicas with its own queue
(`scheduler.simulate`); this module is the hand-off between them.

Transfer time of a request's KV: `latency + bytes / (lanes x link bandwidth)`, with `bytes` the KV
of its whole prompt (all layers and heads, in the KV format after any KV quantisation, plus recurrent
state) and `lanes` the GPU pairs streaming their shards at once (min of the two replicas' GPU counts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roofline.simulator.serving.workload import Requests


@dataclass(frozen=True)
class Link:
    """The path a request's KV takes from the prefill to the decode pool."""

    name: str  # "nvlink" (one scale-up domain holds both pools) or the fabric's name
    bandwidth: float  # bytes/s per GPU per direction, efficiency applied
    latency_s: float
    lanes: int


def transfer_s(prompt, kv_bytes_per_token: float, state_bytes: float, link: Link) -> np.ndarray:
    """Seconds to move each prompt's KV (see the module docstring)."""
    return link.latency_s + (prompt * kv_bytes_per_token + state_bytes) / (link.lanes * link.bandwidth)


def decode_requests(req: Requests, first_token_s: np.ndarray, moved_s: np.ndarray) -> tuple:
    """(indices, Requests) the decode pool serves: those with more than one output token, arriving
    when their KV lands, with the prompt's KV in place (`preloaded`) and the first token to feed."""
    idx = np.flatnonzero(req.output > 1)
    n = idx.size
    return idx, Requests(
        arrival_s=first_token_s[idx] + moved_s[idx],
        prompt=req.prompt[idx] + 1,  # the prompt and the first token, whose KV is not yet computed
        output=req.output[idx] - 1,
        next_turn=np.full(n, -1),
        think_s=np.zeros(n),
        prefix_key=[None] * n,
        prefix_tokens=np.zeros(n, np.int64),
        cache_tokens=np.zeros(n, np.int64),
        hash_ids=[()] * n,
        preloaded=req.prompt[idx].copy(),
    )
