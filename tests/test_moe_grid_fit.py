"""The fused-MoE grid's nodes (profilers/grid_fit.py `median_nodes`): a Gaussian-weighted median of
the measured log attainment over model shapes, so that one model family whose kernel runs another
configuration does not pass its attainment to its neighbours; exact hand-computed oracles, synthetic
points only."""

from __future__ import annotations

import numpy as np
import pytest

from roofline.profilers.grid_fit import attainment_grid, fit_nodes, median_nodes


def test_weighted_median_by_distance_in_octaves():
    # One axis, width 0.5 octave. Node 0: the point at 0 (y 1) weighs 1, the two at 0.5 (y 2, 3)
    # exp(-0.5) = 0.607 each; half the total (2.213) is 1.107, first reached at y = 2. Node 0.25 is
    # as far from all three: equal weights, the lower median of (1, 2, 3) is 2. Node 1 is 2 widths
    # from 0 (weight exp(-0.5 (4 - 1)) = 0.22 relative to the 0.5 points): 1.21 of 2.22 total, 2.
    X, y = np.array([[0.0], [0.5], [0.5]]), np.array([1.0, 2.0, 3.0])
    assert list(median_nodes(X, y, (0.0,), (0.25,), (5,))) == [2.0, 2.0, 2.0, 2.0, 2.0]
    # Two points: the nearer one holds more than half the weight, so it is the median.
    X2, y2 = np.array([[0.0], [1.0]]), np.array([5.0, 7.0])
    assert list(median_nodes(X2, y2, (0.0,), (0.25,), (5,))) == [5.0, 5.0, 5.0, 7.0, 7.0]


def test_a_node_far_from_every_shape_takes_its_nearest_shapes_median():
    # Clusters 20 octaves apart (exp(-800) underflows to 0 in absolute weights): each node takes its
    # own cluster's median, as fit_nodes takes the nearest shape outside the hull.
    X = np.array([[0.0, 0.0], [0.0, 0.5], [0.5, 0.0], [20.0, 20.0], [20.0, 20.5], [20.5, 20.0]])
    y = np.array([1.0, 1.0, 4.0, 9.0, 8.0, 8.0])
    nodes = median_nodes(X, y, (0.0, 0.0), (10.0, 10.0), (3, 3))
    assert nodes[0, 0] == 1.0 and nodes[2, 2] == 8.0
    # (20, 0) is 19.5 octaves from (0.5, 0) and 20 or more from the rest (relative weight
    # exp(-0.5 (1600 - 1521)) = 7e-18): that one shape is the median; (0, 20) likewise (0, 0.5)'s.
    assert nodes[2, 0] == 4.0 and nodes[0, 2] == 1.0


def test_one_outlier_shape_does_not_move_the_moe_grid():
    # Model shapes of hidden 4096 at log2 intermediate 6.6, 7.4, 8.6, 9.4 run at attainment 0.5, one at
    # 8.2 at 0.15 (an untuned kernel), each at 8 token counts and 2 expert counts. At the node 8 (grid step 1)
    # the outlier weighs exp(-0.5 (0.2 / 0.5)^2) = 0.92 against 2 x 0.49 + 2 x 0.02 = 1.01 for the
    # others (per row; the rows and expert counts weigh alike for every shape), so the weighted median
    # holds 0.5 at every node; interpolating through every point takes the outlier's pull at node 20:
    # 0.5 x 0.3^(0.6 / 0.8) = 0.203, between 7.4 and 8.2.
    X, att = [], []
    for inter, a in ((6.6, 0.5), (7.4, 0.5), (8.2, 0.15), (8.6, 0.5), (9.4, 0.5)):
        for r in range(8):
            for touched in (3.0, 4.0):
                X.append((float(r), 12.0, inter, touched))
                att.append(a)
    X, att = np.array(X), np.array(att)
    roof = np.full(len(att), 1e-4)
    grid = attainment_grid("moe_bf16", X, roof, roof / att, 0.0, X[:, 1:], nodes=median_nodes)
    assert grid.start[1:3] == (12.0, 6.0) and grid.shape[1:3] == (1, 5)
    assert np.all(grid.values["attainment"] == 0.5)
    flat = X[:, [0, 2, 3]]  # the hidden axis is one value: Delaunay needs the others alone
    start, step, shape = (
        (grid.start[0], 6.0, grid.start[3]),
        (0.5, 1.0, 1.0),
        (grid.shape[0], 5, grid.shape[3]),
    )
    linear = np.exp(fit_nodes(flat, np.log(att), start, step, shape))
    assert linear[0, 2, 0] == pytest.approx(0.5 * 0.3**0.75, rel=1e-9)


def test_a_few_groups_always_hold_one_out_and_more_keep_their_draw():
    # 20% of the groups, drawn with a fixed seed; where the draw picks none of a table's few groups
    # (two GPT-OSS shapes), the one it drew lowest is held out so that the grid has a held-out error.
    from roofline.profilers.grid_fit import HOLDOUT_FRACTION, SEED, held_out

    two = np.array([[2880, 2880], [2880, 2880], [2880, 720], [2880, 720]])
    mask = held_out(two)
    assert mask.sum() == 2 and len({tuple(r) for r in two[mask]}) == 1  # one whole group
    draw = np.random.default_rng(SEED).random(2)
    assert np.all(draw >= HOLDOUT_FRACTION)  # the draw alone held out nothing here
    many = np.arange(50).reshape(-1, 1)
    plain = np.random.default_rng(SEED).random(50) < HOLDOUT_FRACTION
    assert plain.any() and np.array_equal(held_out(many), plain)  # unchanged where the draw picked
