"""The literature findings' measurements: bounded regions, confidence far away, epochs to learn,
linear regions per N²."""

import math

import numpy as np
import pandas as pd
import pytest

from intuition.geometry import (counted_snapshots, enclosed_regions, epochs_to_accuracy, far_rings, regions_band,
                                regions_per_n2, top_probability)
from intuition.inside import count_regions
from intuition.network import DenseLayer, predict_proba


def _disk(size=21, radius=5, centre=(10, 10)):
    rows, cols = np.mgrid[:size, :size]
    return (np.hypot(rows - centre[0], cols - centre[1]) <= radius).astype(int)


def test_a_disk_inside_the_box_is_one_enclosed_region():
    assert enclosed_regions(_disk()) == 1


def test_two_disks_are_two_enclosed_regions_and_a_hole_in_one_is_a_third():
    two = np.maximum(_disk(40, 5, (10, 10)), _disk(40, 5, (28, 28)))
    assert enclosed_regions(two) == 2
    ring = _disk(40, 12, (20, 20)) * 2 - _disk(40, 4, (20, 20))  # class 2 ring around a class 1 disk, class 0 outside
    assert enclosed_regions(ring) == 2  # the ring and the disk; the outside touches the border


def test_regions_that_touch_the_border_are_not_enclosed():
    half = np.zeros((20, 20), int)
    half[:, 10:] = 1
    assert enclosed_regions(half) == 0
    assert enclosed_regions(_disk(21, 5, (3, 10))) == 0  # a disk cut by the top edge
    corner = np.zeros((20, 20), int)
    corner[0, 0] = 1
    assert enclosed_regions(corner) == 0


def test_diagonal_cells_are_not_connected():
    """4-neighbour connectivity: two cells touching only at a corner are two regions."""
    grid = np.zeros((6, 6), int)
    grid[2, 2] = grid[3, 3] = 1
    assert enclosed_regions(grid) == 2


def test_far_rings_are_circles_at_multiples_of_the_datas_radius():
    X = np.array([[0.0, 0.0], [4.0, 0.0], [2.0, 3.0], [2.0, -3.0]])  # centre (2, 0), radius 3
    rings = far_rings(X, scales=(10, 100), n=8)
    assert set(rings) == {10, 100}
    for scale, points in rings.items():
        assert points.shape == (8, 2)
        np.testing.assert_allclose(np.hypot(*(points - [2.0, 0.0]).T), 3.0 * scale)


def test_top_probability_is_the_mean_winning_probability_and_nan_if_not_finite():
    assert top_probability(np.array([[0.9, 0.1], [0.3, 0.7]])) == pytest.approx(0.8)
    assert math.isnan(top_probability(np.array([[np.nan, 0.5]])))


def test_a_relu_network_is_confident_far_away_and_a_sigmoid_one_need_not_be():
    """Hein et al.: relu logits grow linearly along a ray, so the top probability tends to 1;
    saturated sigmoid units give a bounded logit, so it need not."""
    rng = np.random.default_rng(0)
    kernel, bias, out = rng.normal(size=(2, 16)), rng.normal(size=16), rng.normal(size=(16, 3))
    X = rng.uniform(-1, 1, (50, 2))
    for activation, confident in (("relu", True), ("sigmoid", False)):
        layers = [DenseLayer(kernel, bias, activation), DenseLayer(out * 0.1, np.zeros(3), "softmax")]
        far = top_probability(predict_proba(layers, far_rings(X, (1000,))[1000]))
        assert (far > 0.99) == confident, (activation, far)


def test_epochs_to_accuracy_is_the_first_epoch_at_the_level():
    history = pd.DataFrame({"seed": [0] * 4 + [1] * 4, "epoch": [0, 1, 2, 3] * 2,
                            "accuracy": [0.5, 0.8, 0.95, 0.9, 0.5, 0.6, 0.7, 0.8]})
    assert epochs_to_accuracy(history, 0) == 2
    assert epochs_to_accuracy(history, 0, level=0.8) == 1
    assert epochs_to_accuracy(history, 1) == 4  # never reached in epochs 0-3: a lower bound, epochs + 1


def test_count_regions_counts_one_relu_layers_cells_and_nan_if_not_finite():
    # two relu lines x1 = 0 and x2 = 0 cut the plane into 4 quadrants
    layers = [DenseLayer(np.eye(2), np.zeros(2), "relu"), DenseLayer(np.ones((2, 1)), np.zeros(1), "sigmoid")]
    points = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1], [2, 2]], float)
    assert count_regions(layers, points) == 4
    bad = [DenseLayer(np.full((2, 2), np.nan), np.zeros(2), "relu"), layers[1]]
    assert math.isnan(count_regions(bad, points))


def test_regions_per_n2():
    np.testing.assert_allclose(regions_per_n2([100, 400], 20), [0.25, 1.0])


def test_counted_snapshots_spread_evenly_with_first_and_last():
    np.testing.assert_array_equal(counted_snapshots(30), [0, 4, 8, 12, 17, 21, 25, 29])
    np.testing.assert_array_equal(counted_snapshots(3), [0, 1, 2])


def test_regions_band_untrained_highest_and_trained_per_n2():
    band = regions_band(np.array([20, 300, 250, 400]), 10)
    assert band == {"regions.untrained_per_n2": 0.2, "regions.max_per_n2": 4.0, "regions.trained_per_n2": 4.0}
    diverged = regions_band(np.array([20, 300, np.nan]), 10)
    assert diverged["regions.max_per_n2"] == 3.0 and math.isnan(diverged["regions.trained_per_n2"])
