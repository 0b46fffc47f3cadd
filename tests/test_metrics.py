"""Scoring: grid extent, accuracy/log-loss, per-class scores, confusion matrix and sharpness."""

import numpy as np
import pytest

from intuition.metrics import confusion, evaluation, make_grid, per_class, scores, sharpness

# A tiny 3-class example: 6 points, 4 predicted right (argmax of each row vs y).
Y = np.array([0, 0, 1, 1, 2, 2])
PROBA = np.array([
    [0.7, 0.2, 0.1],  # 0 -> 0
    [0.3, 0.6, 0.1],  # 0 -> 1
    [0.1, 0.8, 0.1],  # 1 -> 1
    [0.2, 0.5, 0.3],  # 1 -> 1
    [0.1, 0.1, 0.8],  # 2 -> 2
    [0.5, 0.1, 0.4],  # 2 -> 0
])
PREDICTED = PROBA.argmax(axis=1)


@pytest.mark.parametrize("resolution, margin", [(10, 0.0), (150, 0.1), (33, 0.5)])
def test_make_grid_extent_and_resolution(resolution, margin):
    X = np.random.default_rng(0).normal(size=(200, 2)) * [3.0, 0.5] + [10.0, -2.0]
    xx, yy = make_grid(X, resolution, margin)
    assert xx.shape == yy.shape == (resolution, resolution)
    low, high = X.min(axis=0), X.max(axis=0)
    pad = margin * (high - low)
    for axis, values in enumerate((xx, yy)):
        assert values.min() == pytest.approx(low[axis] - pad[axis])
        assert values.max() == pytest.approx(high[axis] + pad[axis])
    # a meshgrid: x varies along columns, y along rows, evenly spaced
    assert np.all(xx == xx[0]) and np.all(yy == yy[:, :1])
    np.testing.assert_allclose(np.diff(xx[0]), np.diff(xx[0])[0])
    np.testing.assert_allclose(np.diff(yy[:, 0]), np.diff(yy[:, 0])[0])


def test_scores_agree_with_a_hand_computation():
    result = scores(Y, PROBA)
    assert result["accuracy"] == pytest.approx(np.mean(PREDICTED == Y))
    assert result["log_loss"] == pytest.approx(np.mean(-np.log(PROBA[np.arange(len(Y)), Y])))


def test_scores_of_a_perfect_binary_model():
    y = np.array([0, 1, 1, 0])
    result = scores(y, np.eye(2)[y] * 0.98 + 0.01)
    assert result["accuracy"] == 1.0
    assert result["log_loss"] == pytest.approx(-np.log(0.99))


def test_scores_keep_every_class_when_some_are_absent():
    """A test split without class 2 is still scored against the model's 3 classes."""
    result = scores(Y[:4], PROBA[:4])
    assert result["log_loss"] == pytest.approx(np.mean(-np.log(PROBA[np.arange(4), Y[:4]])))


def test_per_class_on_a_tiny_example():
    result = per_class(Y, PREDICTED, 3)
    assert list(result) == ["0", "1", "2"]
    for k, row in result.items():
        k = int(k)
        true_positive = np.sum((PREDICTED == k) & (Y == k))
        precision = true_positive / np.sum(PREDICTED == k)
        recall = true_positive / np.sum(Y == k)
        assert row["precision"] == pytest.approx(precision)
        assert row["recall"] == pytest.approx(recall)
        assert row["f1"] == pytest.approx(2 * precision * recall / (precision + recall))


def test_per_class_of_a_never_predicted_class_is_zero():
    assert per_class(np.array([0, 1, 2]), np.array([0, 1, 1]), 3)["2"] == {"precision": 0.0, "recall": 0.0,
                                                                           "f1": 0.0}


def test_confusion_on_a_tiny_example():
    matrix = confusion(Y, PREDICTED, 3)
    expected = np.zeros((3, 3), dtype=int)
    np.add.at(expected, (Y, PREDICTED), 1)  # rows: true class, columns: predicted class
    np.testing.assert_array_equal(matrix, expected)
    assert matrix.sum() == len(Y) and np.trace(matrix) == np.sum(PREDICTED == Y)


def test_confusion_has_a_row_and_column_for_every_class():
    assert confusion(np.array([0, 0]), np.array([0, 0]), 3).shape == (3, 3)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_sharpness_of_one_hot_and_uniform_grids(k):
    winners = np.random.default_rng(k).integers(0, k, size=(20, 30))
    crisp = sharpness(np.eye(k)[winners])
    assert crisp["mean_max_probability"] == pytest.approx(1.0)
    assert crisp["mean_entropy"] == pytest.approx(0.0, abs=1e-9)
    flat = sharpness(np.full((20, 30, k), 1 / k))
    assert flat["mean_max_probability"] == pytest.approx(1 / k)
    assert flat["mean_entropy"] == pytest.approx(1.0)


def test_sharpness_is_between_crisp_and_flat():
    result = sharpness(PROBA.reshape(2, 3, 3))
    assert 1 / 3 < result["mean_max_probability"] < 1
    assert 0 < result["mean_entropy"] < 1


def test_evaluation_combines_the_parts():
    grid = PROBA.reshape(2, 3, 3)
    result = evaluation({"train": (Y, PROBA), "test": (Y[::-1], PROBA[::-1])}, grid)
    assert result["train"] == scores(Y, PROBA)
    assert result["test"]["per_class"] == per_class(Y[::-1], PREDICTED[::-1], 3)
    assert result["test"]["accuracy"] == scores(Y, PROBA)["accuracy"]
    assert result["sharpness"] == sharpness(grid)
