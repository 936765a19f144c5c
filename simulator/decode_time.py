"""Decode attention priced from a measured grid: kernel time piecewise linear in the KV length.

A profile's `attention_decode` grid (simulator/grids.py) holds the roofline attainment of measured
decode kernels, a = (bytes / bandwidth) / (t - launch), over (sequences x KV heads, GQA group, head
dim, KV length), one node per octave of the KV length. Kernels change algorithm along the length
(split-KV and multi-block modes switch on at a few thousand tokens; TensorRT-LLM's XQA runs 8K
tokens faster than 4K at batch 1), which no single "fixed time + bytes / rate" line follows. So the
engine takes the kernel time at each KV-length node, t_k = bytes(x_k) / (bandwidth x a_k), and
linear in the length between nodes; beyond the last node the last attainment holds (each further
token streams at it), and below the first node the time falls linearly to that of no KV at all
(the first attainment on the bytes that do not depend on the length). A piecewise-linear function
of the length is a `KVLinear` with one clip per node (`NodeKV`, which keeps the nodes for the
serving fast path), so the exact decode sums over output tokens (simulator/ops.py) still hold.

The bytes are the op's own (its cache format, its share of heads, context-parallel slice), so an
fp8 or quantised cache read through a bf16 grid streams its fewer bytes at the measured attainment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roofline.simulator.kvplan import Tokens
from roofline.simulator.ops import KVLinear


@dataclass(frozen=True)
class NodeKV(KVLinear):
    """A KVLinear built by `piecewise_time`, with what it was built from: the time is
    np.interp(scale x tokens(L), x, y) (x from 0; `after` the slope beyond the last node)."""

    x: object = None  # node lengths, x[0] = 0
    y: object = None  # (..., nodes) times at them
    after: object = None  # seconds per token beyond the last node
    tokens: object = None  # kvplan.Tokens: the read tokens as a function of L
    scale: float = 1.0  # kernel length per read token (1 / cp)


def grid_nodes(table, family: str, row, coords) -> tuple | None:
    """(log2 KV-length nodes, attainment at each node: array (points..., nodes), mask of points
    whose hardware row has the grid) of the `family` decode grid at `coords` (the leading axes);
    None where no row has one. Rows with different nodes are read at the union of their nodes."""
    rows = table.grids.get(family)
    if not rows:
        return None
    if len(rows) == 1:
        g = rows[0]
        return g.last_axis_nodes(), g.at_nodes("attainment", *coords), True
    nodes = np.unique(np.concatenate([g.last_axis_nodes() for g in rows if g is not None]))
    *coords, row = np.broadcast_arrays(*[np.asarray(c, dtype=float) for c in coords], np.asarray(row))
    out = np.ones(row.shape + (nodes.size,))
    mask = np.zeros(row.shape, dtype=bool)
    for h, g in enumerate(rows):
        if g is None:
            continue
        sel = row == h
        at = [c[sel][:, None] for c in coords]
        out[sel] = g.at("attainment", *at, nodes[None, :])
        mask |= sel
    return nodes, out, mask


def node_times(roof_at, nodes_log2, attainment) -> np.ndarray:
    """Kernel time at each KV-length node: roof_at(length) / attainment, where roof_at maps the
    nodes' lengths (nodes,) to the roofline seconds there (points..., nodes): bytes / bandwidth, or
    for a kernel that can be compute-bound max(FLOPs / peak, bytes / bandwidth)."""
    return np.maximum(roof_at(2.0 ** np.asarray(nodes_log2, float)), 0.0) / attainment


def end_slope(roof_at, nodes_log2, attainment) -> np.ndarray:
    """Seconds per token beyond the last node: one more token's roofline time at the last attainment."""
    last = 2.0 ** np.asarray(nodes_log2, float)[-1:]
    per_token = (roof_at(2.0 * last) - roof_at(last))[..., 0] / last[0]
    return per_token / attainment[..., -1]


def piecewise_time(nodes_log2, times, slope_after, tokens, scale=1.0, at_zero=0.0) -> NodeKV:
    """The time t(K) linear between nodes (x_k, times[..., k]) and from (0, at_zero) to the first,
    as a KVLinear in L, where the kernel length is K = scale x tokens(L) and tokens(L) = off +
    min(L, lim) (kvplan.Tokens).

    With the node at 0 as x_0: t(K) = y_0 + sum_k m_k (min(K, x_{k+1}) - min(K, x_k)) + m_n (K -
    min(K, x_n)), slopes m_k of each segment and m_n = slope_after beyond the last node, so t = y_0
    + m_n K + sum_{k >= 1} (m_{k-1} - m_k) min(K, x_k) (min(K, 0) = 0 for K >= 0). With K = s (off +
    min(L, lim)): min(K, x) = s (off + min(L, min(lim, x / s - off))).
    """
    y = np.asarray(times, float)
    y = np.concatenate([np.asarray(at_zero, float)[..., None] + np.zeros_like(y[..., :1]), y], axis=-1)
    x = np.concatenate([[0.0], 2.0 ** np.asarray(nodes_log2, float)])
    last = np.asarray(slope_after, float) + np.zeros_like(y[..., 0])
    slopes = np.diff(y, axis=-1) / np.diff(x)
    coefs = slopes[..., :-1] - slopes[..., 1:]  # m_{k-1} - m_k at x_1 .. x_{n-1}
    coefs = np.concatenate([coefs, (slopes[..., -1] - last)[..., None]], axis=-1)  # ... and at x_n
    off, lim = tokens.off, tokens.lim
    c0 = y[..., 0] + scale * (last + coefs.sum(axis=-1)) * off
    clips = tuple((scale * coefs[..., k - 1], np.minimum(lim, x[k] / scale - off)) for k in range(1, x.size))
    if np.ndim(lim) == 0 and np.isinf(lim):
        c1, clips = scale * last, clips
    else:
        c1, clips = 0.0, ((scale * last, lim),) + clips
    return NodeKV(c0, c1, clips, x=x, y=y, after=last, tokens=tokens, scale=scale)


def extended_nodes(q: NodeKV) -> tuple:
    """(x, y) of a NodeKV with one far node added along its last slope, for np.interp."""
    far = q.x[-1] * 2.0**30
    return np.append(q.x, far), np.append(q.y, q.y[..., -1] + (far - q.x[-1]) * q.after)


def measured_time(roof_at, nodes_log2, attainment, tokens, scale=1.0) -> NodeKV:
    """A measured decode kernel's time as a KVLinear in L (`piecewise_time`): roof_at maps kernel
    lengths (n,) to the kernel's roofline seconds there (points..., n); the time at each node is
    its roof / attainment, the last attainment holds beyond, and the roof of no KV at all at the
    first attainment is the time at length 0."""
    times = node_times(roof_at, nodes_log2, attainment)
    after = end_slope(roof_at, nodes_log2, attainment)
    zero = np.maximum(roof_at(np.zeros(1))[..., 0], 0.0) / attainment[..., 0]
    return piecewise_time(nodes_log2, times, after, tokens, scale, at_zero=zero)


def kernel_time(grid, coords, roof_at, lengths) -> np.ndarray:
    """Measured decode kernels' times (beyond the launch) at KV lengths `lengths` (rows,), read from
    `grid` exactly as the engine prices them (`measured_time` over the whole history); coords: the
    leading axes per row; roof_at maps a (rows, n) array of lengths to each row's roofline seconds."""
    att = grid.at_nodes("attainment", *coords)
    lengths = np.asarray(lengths, float)

    def roof(L):  # the nodes' lengths (n,) -> (rows, n)
        return roof_at(np.broadcast_to(L, att.shape[:-1] + np.shape(L)))

    return measured_time(roof, grid.last_axis_nodes(), att, Tokens()).at(lengths)
