"""Scoring: grid extent, accuracy/log-loss, confusion matrix, sharpness, the "learned" rule, and the
statistics over seeds (representative seed, 95 % interval, aggregate, agreement)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from intuition.metrics import (AGGREGATED, LEARNING_MARGIN, agreement, aggregate, chance, confusion, grade, headline,
                               interval95, learned, make_grid, representative_seed, scores, seed_row, sharpness, summarise)
from intuition.types import Grid, Points

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
    grid = make_grid(X, resolution, margin)
    assert isinstance(grid, Grid)
    xx, yy = grid.xx, grid.yy
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


def test_grid_points_are_row_major_and_reshape_inverts_them():
    grid = make_grid(np.array([[0.0, 0.0], [2.0, 1.0]]), 3, 0.0)
    np.testing.assert_array_equal(grid.points[:4], [[0, 0], [1, 0], [2, 0], [0, 0.5]])
    assert grid.points.shape == (9, 2)
    np.testing.assert_array_equal(grid.reshape(grid.points[:, 0]), grid.xx)
    proba = np.arange(18.0).reshape(9, 2)  # per point, per class
    assert grid.reshape(proba).shape == (3, 3, 2)
    np.testing.assert_array_equal(grid.reshape(proba)[0, 1], proba[1])


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


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_scores_of_non_finite_probabilities_are_nan(bad):
    """A diverged model: no accuracy is meaningful, even where its argmax happens to be right."""
    proba = PROBA.copy()
    proba[3, 1] = bad
    result = scores(Y, proba)
    assert list(result) == ["accuracy", "log_loss"]
    assert math.isnan(result["accuracy"]) and math.isnan(result["log_loss"])


def test_confusion_on_a_tiny_example():
    table = confusion(Y, PREDICTED, 3)
    assert isinstance(table, pd.DataFrame)
    assert list(table.columns) == ["predicted_0", "predicted_1", "predicted_2"]
    matrix = table.to_numpy()
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


# ---------------------------------------------------------------------------------- learned


def test_chance_is_the_share_of_the_commonest_class():
    assert chance(np.array([0, 0, 1])) == pytest.approx(2 / 3)
    assert chance(np.array([2, 2, 0, 1, 2, 1])) == pytest.approx(0.5)


@pytest.mark.parametrize("final_loss, untrained_loss, accuracy, chance_accuracy, expected", [
    pytest.param(0.2, 0.69, 0.95, 0.5, True, id="normal"),
    pytest.param(0.69, 0.69, 0.5 + LEARNING_MARGIN, 0.5, True, id="just-enough"),
    pytest.param(5.3, 1.1, 0.70, 1 / 3, False, id="loss-exploded"),
    pytest.param(math.inf, 1.1, 0.70, 1 / 3, False, id="infinite-loss"),
    pytest.param(math.nan, 1.1, 0.70, 1 / 3, False, id="nan-loss"),
    pytest.param(0.5, 0.69, 0.5, 0.5, False, id="accuracy-at-chance"),
    pytest.param(0.5, 0.69, 0.5 + LEARNING_MARGIN / 2, 0.5, False, id="accuracy-within-margin"),
    pytest.param(0.5, 0.69, math.nan, 0.5, False, id="nan-accuracy"),
])
def test_learned(final_loss, untrained_loss, accuracy, chance_accuracy, expected):
    assert learned(final_loss, untrained_loss, accuracy, chance_accuracy) is expected


# ---------------------------------------------------------------------------------- seed_row


def _labelled():
    X = np.zeros((6, 2))
    return {"train": Points(X, Y), "val": Points(X[:4], Y[:4]), "test": Points(X[::-1], Y[::-1])}


def _probas():
    return {"train": PROBA, "val": PROBA[:4], "test": PROBA[::-1]}


SEED_ROW_KEYS = {f"{split}.{name}" for split in ("train", "val", "test") for name in ("accuracy", "log_loss")} | {
    "sharpness.mean_max_probability", "sharpness.mean_entropy", "learned", "diverged_at_epoch"}


def test_seed_row_of_a_seed_that_learned():
    grid = PROBA.reshape(2, 3, 3)
    row = seed_row(_labelled(), _probas(), grid, untrained_loss=math.log(3), diverged_at=None)
    assert set(row) == SEED_ROW_KEYS
    assert row["train.accuracy"] == scores(Y, PROBA)["accuracy"]
    assert row["val.log_loss"] == scores(Y[:4], PROBA[:4])["log_loss"]
    assert row["sharpness.mean_entropy"] == sharpness(grid)["mean_entropy"]
    assert row["learned"] is True  # 4/6 right vs 1/3 by chance, loss below log(3)
    assert math.isnan(row["diverged_at_epoch"])


def test_seed_row_of_a_diverged_seed():
    probas = {split: np.full_like(p, np.nan) for split, p in _probas().items()}
    row = seed_row(_labelled(), probas, np.full((2, 3, 3), np.nan), untrained_loss=math.log(3), diverged_at=17)
    assert set(row) == SEED_ROW_KEYS
    assert all(math.isnan(v) for k, v in row.items() if k not in ("learned", "diverged_at_epoch")), row
    assert row["learned"] is False and row["diverged_at_epoch"] == 17


def test_seed_row_of_a_seed_worse_than_untrained_did_not_learn():
    row = seed_row(_labelled(), _probas(), PROBA.reshape(2, 3, 3), untrained_loss=0.1, diverged_at=None)
    assert row["learned"] is False


# ---------------------------------------------------------------------------------- over seeds


def _per_seed(val_losses):
    return pd.DataFrame({"seed": range(len(val_losses)), "val.log_loss": val_losses})


@pytest.mark.parametrize("val_losses, expected", [
    pytest.param([0.5, 0.1, 0.9, 0.3, 0.2], 3, id="odd-count-median"),
    pytest.param([0.4, 0.1, 0.3, 0.2], 3, id="even-count-lower-middle"),
    pytest.param([np.nan, 0.1, 0.2], 1, id="diverged-seed-left-out"),  # median of 0.1, 0.2
    pytest.param([0.5, 0.1, np.nan, 0.3, 0.2], 4, id="nan-among-five"),  # median of 0.1, 0.2, 0.3, 0.5
    pytest.param([np.nan, np.nan, 0.3], 2, id="most-diverged-still-a-finite-one"),
    pytest.param([np.nan, np.nan], 0, id="all-diverged-first"),
    pytest.param([0.2, 0.2, 0.2], 1, id="ties-by-seed"),
    pytest.param([0.7], 0, id="one-seed"),
])
def test_representative_seed_has_the_median_validation_loss(val_losses, expected):
    assert representative_seed(_per_seed(val_losses)) == expected


def test_representative_seed_is_the_seed_column_not_the_row_position():
    per_seed = pd.DataFrame({"seed": [10, 11, 12], "val.log_loss": [0.3, 0.1, 0.2]})
    assert representative_seed(per_seed) == 12


def test_interval95_matches_a_hand_computation():
    values = np.array([0.80, 0.85, 0.90, 0.82, 0.88])
    mean = values.sum() / 5
    sd = math.sqrt(((values - mean) ** 2).sum() / 4)
    t = stats.t.ppf(0.975, df=4)
    assert t == pytest.approx(2.7764, abs=1e-4)  # not the normal 1.96: five seeds are few
    low, high = interval95(values)
    assert low == pytest.approx(mean - t * sd / math.sqrt(5))
    assert high == pytest.approx(mean + t * sd / math.sqrt(5))


def test_interval95_of_one_seed_is_the_value_itself():
    assert interval95(np.array([0.9])) == (0.9, 0.9)


def test_aggregate_skips_nan_seeds():
    per_seed = pd.DataFrame({
        "seed": range(4),
        "test.accuracy": [0.9, 0.8, np.nan, 0.7],
        "test.log_loss": [0.3, np.nan, np.nan, np.nan],
        "val.accuracy": [np.nan] * 4,  # every seed diverged: no statistics at all
    })
    tree = aggregate(per_seed, ["test.accuracy", "test.log_loss", "val.accuracy"])
    assert list(tree) == ["test"]
    accuracy = tree["test"]["accuracy"]
    assert set(accuracy) == {"mean", "sd", "min", "max", "ci95_low", "ci95_high"}
    assert accuracy["mean"] == pytest.approx(0.8)
    assert accuracy["sd"] == pytest.approx(0.1)
    assert (accuracy["min"], accuracy["max"]) == (0.7, 0.9)
    assert (accuracy["ci95_low"], accuracy["ci95_high"]) == pytest.approx(interval95(np.array([0.9, 0.8, 0.7]), (0, 1)))
    assert tree["test"]["log_loss"] == {"mean": 0.3, "sd": 0.0, "min": 0.3, "max": 0.3, "ci95_low": 0.3,
                                        "ci95_high": 0.3}


def test_agreement_on_a_tiny_grid():
    # 3 seeds, a 2 x 2 grid, 2 classes; the seeds agree on 3 of the 4 points.
    first_class = np.array([
        [[0.9, 0.8], [0.3, 0.2]],   # seed 0: classes [[0, 0], [1, 1]]
        [[0.6, 0.7], [0.4, 0.1]],   # seed 1: classes [[0, 0], [1, 1]]
        [[0.7, 0.4], [0.2, 0.45]],  # seed 2: classes [[0, 1], [1, 1]]
    ])
    grid_probas = np.stack([first_class, 1 - first_class], axis=-1)  # (seeds, rows, cols, classes)
    agreed = agreement(grid_probas)
    assert agreed.majority.tolist() == [[3, 2], [3, 3]]
    assert (agreed.voting, agreed.seeds, agreed.all_agree) == (3, 3, pytest.approx(3 / 4))
    assert agreement(grid_probas[:2]).all_agree == 1.0
    assert agreement(grid_probas[:1]).all_agree == 1.0  # one seed always agrees with itself


def _one_hot(classes, k=2):
    return np.eye(k)[classes]


def test_a_seed_with_a_nan_output_anywhere_has_no_vote_anywhere():
    # 3 seeds on a 4 x 4 grid, all class 0, except seed 1 on three cells of row 0; seed 2 has no
    # output at one cell of row 1. Seed 2 does not vote: 2 voting seeds, agreeing on 16 - 3 = 13 cells.
    votes = np.zeros((3, 4, 4), dtype=int)
    votes[1, 0, :3] = 1
    grid_probas = _one_hot(votes)
    grid_probas[2, 1, 0] = np.nan
    agreed = agreement(grid_probas)
    assert (agreed.voting, agreed.seeds) == (2, 3)
    assert agreed.majority[0].tolist() == [1, 1, 1, 2] and (agreed.majority == 2).sum() == 13
    assert agreed.all_agree == pytest.approx(13 / 16)


def test_a_fully_diverged_seed_changes_nothing_but_the_number_of_voters():
    # Four seeds on a 3 x 3 grid, all class 0 except seeds 2 and 3 at cell (0, 0); then a fifth
    # seed whose outputs are inf (and NaN at one cell) everywhere.
    votes = np.zeros((4, 3, 3), dtype=int)
    votes[2:, 0, 0] = 1
    finite = _one_hot(votes, k=3)
    diverged = np.concatenate([finite, np.full((1, 3, 3, 3), np.inf)])
    diverged[4, 1, 1] = np.nan
    alone, with_diverged = agreement(finite), agreement(diverged)
    assert (with_diverged.voting, with_diverged.seeds) == (4, 5)
    np.testing.assert_array_equal(with_diverged.majority, alone.majority)
    assert with_diverged.all_agree == alone.all_agree == pytest.approx(8 / 9)
    assert with_diverged.majority[0, 0] == 2  # two vote 0, two vote 1


def test_no_voting_seed_leaves_agreement_undefined():
    agreed = agreement(np.full((2, 3, 3, 2), np.nan))
    assert (agreed.voting, agreed.seeds) == (0, 2) and math.isnan(agreed.all_agree)
    assert (agreed.majority == 0).all()


def test_summarise_counts_seeds_and_aggregates_every_metric():
    rows = []
    for seed, (val_loss, learned, diverged) in enumerate([(0.3, True, np.nan), (0.1, True, np.nan), (np.nan, False, 4)]):
        row = {name: 0.5 + seed / 10 for name in AGGREGATED} | {"val.log_loss": val_loss}
        rows.append({"seed": seed, **row, "learned": learned, "diverged_at_epoch": diverged})
    grid_probas = np.zeros((3, 2, 2, 2))
    grid_probas[..., 0] = 1  # every seed votes class 0 everywhere...
    grid_probas[2] = np.nan  # ...but the diverged one has no vote
    summary = summarise(pd.DataFrame(rows), agreement(grid_probas))
    assert (summary["seeds"], summary["learned_seeds"], summary["diverged_seeds"]) == (3, 2, 1)
    assert summary["representative_seed"] == 1  # median (lower middle) of the finite losses 0.1, 0.3
    assert summary["test"]["accuracy"]["mean"] == pytest.approx(0.6)
    assert summary["val"]["log_loss"]["max"] == pytest.approx(0.3)  # the NaN seed left out
    assert summary["agreement"] == {"all_seeds_agree": 1.0, "voting_seeds": 2}


def test_metrics_json_and_the_leaderboard_show_the_same_agreement():
    from stages.report import agreement as leaderboard_cell

    votes = np.zeros((3, 4, 4), dtype=int)
    votes[1, 0, :3] = 1  # seeds 0 and 2 vote class 0 everywhere, seed 1 class 1 on three cells
    grid_probas = np.concatenate([_one_hot(votes), np.full((1, 4, 4, 2), np.nan)])  # seed 3 has no vote
    per_seed = pd.DataFrame([{"seed": s, **{name: 0.5 for name in AGGREGATED}, "learned": True,
                              "diverged_at_epoch": np.nan} for s in range(4)])
    summary = summarise(per_seed, agreement(grid_probas))
    assert summary["agreement"] == {"all_seeds_agree": 13 / 16, "voting_seeds": 3}
    assert leaderboard_cell(summary) == "0.812 (3 of 4 seeds voted)"
    summary["agreement"]["voting_seeds"] = 4
    assert leaderboard_cell(summary) == "0.812"


def test_an_interval_stays_within_what_the_metric_can_be():
    """Five seeds at 0.99 ± 0.01 give a t-interval past 1; accuracies stop at 1, losses at 0."""
    per_seed = pd.DataFrame({"test.accuracy": [1.0, 1.0, 0.98, 1.0, 0.98], "test.log_loss": [0.001, 0.002, 0.09, 0.0, 0.1]})
    tree = aggregate(per_seed, list(per_seed.columns))
    assert interval95(per_seed["test.accuracy"].to_numpy())[1] > 1  # unclipped
    assert tree["test"]["accuracy"]["ci95_high"] == 1.0 and tree["test"]["accuracy"]["ci95_low"] < 0.992
    assert tree["test"]["log_loss"]["ci95_low"] == 0.0 and tree["test"]["log_loss"]["ci95_high"] > 0.04


def test_equal_seeds_have_no_spread_at_all():
    values = np.full(5, 0.972)  # NumPy's sd of these is a rounding residue, not 0
    tree = aggregate(pd.DataFrame({"test.accuracy": values}), ["test.accuracy"])
    assert tree["test"]["accuracy"]["sd"] == 0.0
    assert tree["test"]["accuracy"]["ci95_low"] == tree["test"]["accuracy"]["ci95_high"] == pytest.approx(0.972)


def _summary(mean: float, learned: int = 5, seeds: int = 5) -> dict:
    return {"seeds": seeds, "learned_seeds": learned, "test": {"accuracy": {"mean": mean, "sd": 0.01}},
            "sharpness": {"mean_max_probability": {"mean": 0.9, "sd": 0.0}},
            "agreement": {"all_seeds_agree": 0.95, "voting_seeds": seeds}}


@pytest.mark.parametrize("mean, chance_accuracy, learned, expected", [
    (0.99, 0.5, 5, "ok"),
    (0.751, 0.5, 5, "ok"),  # halfway from chance 0.5 to 1 is 0.75
    (0.732, 0.5, 5, "poor"),  # circle_relu_1x2: every seed learned something, none learned the circle
    (0.417, 1 / 3, 5, "poor"),  # the hard spiral at 0.417 on three classes
    (0.70, 1 / 3, 5, "ok"),
    (0.99, 0.5, 4, "failed"),  # a seed that failed to learn outranks a good mean
    (math.nan, 0.5, 5, "poor"),  # every seed diverged: no accuracy at all
])
def test_status_is_graded_from_chance_and_the_seeds(mean, chance_accuracy, learned, expected):
    assert grade(_summary(mean, learned), chance_accuracy) == expected


def test_the_headline_is_metrics_json_in_six_rounded_numbers():
    top = headline(_summary(0.97200000000001, learned=4), 0.5)
    assert top.as_dict() == {"test_accuracy": 0.972, "test_accuracy_sd": 0.01, "sharpness": 0.9, "agreement": 0.95,
                             "learned": "4/5", "status": "failed"}
