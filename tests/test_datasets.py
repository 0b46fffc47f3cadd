"""Dataset generators and splits: sizes, class balance, determinism, geometry, and split semantics."""

import numpy as np
import pytest

from intuition.config import BandsData, ClassificationData, SpiralData, load_params
from intuition.datasets import make_bands, make_dataset, make_linear, make_spiral, split_test, split_validation
from intuition.types import FitSplit, Points, Splits

from conftest import PARAMS_YAML

PARAMS = load_params(PARAMS_YAML)  # frozen: safe to share between tests
SEED = PARAMS.seed
DATASETS = list(PARAMS.datasets)


def _make(name, seed=SEED) -> Points:
    return make_dataset(PARAMS.datasets[name], seed)


def _assert_same(a: Points, b: Points) -> None:
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)


def _rows(X, y=None):
    """The rows (with their label) in a canonical order, to compare datasets as sets of points."""
    table = X if y is None else np.column_stack([X, y])
    return table[np.lexsort(table.T[::-1])]


def _expected_class_counts(spec) -> list[int] | None:
    if isinstance(spec, BandsData):
        return [spec.n_samples] * 2
    if isinstance(spec, SpiralData):
        return [spec.points_per_class] * spec.n_classes
    return None  # make_classification: balanced up to its flip_y=0.01 label noise


def _generate(spec, seed=SEED):
    """The generator's output before make_dataset shuffles it."""
    if isinstance(spec, ClassificationData):
        return make_linear(spec)
    return make_bands(spec) if isinstance(spec, BandsData) else make_spiral(spec, seed)


def _rotation(angle):
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


# ---------------------------------------------------------------------------------- make_dataset


@pytest.mark.parametrize("name", DATASETS)
def test_shape_dtype_and_labels(name):
    spec = PARAMS.datasets[name]
    points = _make(name)
    assert isinstance(points, Points)
    X, y = points.X, points.y
    assert len(points) == len(X) == len(y)
    counts = np.bincount(y)
    assert X.shape == (len(y), 2) and X.dtype == np.float64 and np.isfinite(X).all()
    assert y.dtype == np.int64
    assert np.array_equal(np.unique(y), np.arange(spec.n_classes))
    expected = _expected_class_counts(spec)
    if expected is None:
        assert len(y) == spec.n_samples
        assert np.all(np.abs(counts - spec.n_samples / 2) <= 0.02 * spec.n_samples)
    else:
        assert counts.tolist() == expected


def test_the_projects_dataset_sizes():
    """The sizes the study is described with (params.yaml)."""
    sizes = {name: np.bincount(_make(name).y).tolist() for name in DATASETS}
    assert sum(sizes["linear"]) == 500 and len(sizes["linear"]) == 2
    assert sizes["bands"] == [500, 500]
    assert sizes["spiral_easy"] == sizes["spiral_hard"] == [300, 300, 300]


@pytest.mark.parametrize("name", DATASETS)
def test_make_dataset_is_the_generator_output_shuffled(name):
    points = _make(name)
    X0, y0 = _generate(PARAMS.datasets[name])
    assert not np.array_equal(points.y, y0)  # the order changed ...
    np.testing.assert_array_equal(_rows(points.X, points.y), _rows(X0, y0))  # ... and nothing else


@pytest.mark.parametrize("name", DATASETS)
def test_same_seed_same_dataset(name):
    _assert_same(_make(name), _make(name))


@pytest.mark.parametrize("name", DATASETS)
def test_different_seed_different_order(name):
    (X1, y1), (X2, y2) = [(p.X, p.y) for p in (_make(name, SEED), _make(name, SEED + 1))]
    assert not np.array_equal(X1, X2)
    assert np.array_equal(np.bincount(y1), np.bincount(y2))
    if isinstance(PARAMS.datasets[name], SpiralData):
        # the seed also draws the spiral's noise: different points, not just a different order
        assert not np.allclose(_rows(X1, y1), _rows(X2, y2))
    else:
        # sklearn generators use the dataset's own random_state: same points, another order
        np.testing.assert_array_equal(_rows(X1, y1), _rows(X2, y2))


# ---------------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("name", [n for n in DATASETS if isinstance(PARAMS.datasets[n], BandsData)])
def test_bands_class_1_is_class_0_shifted_by_offset(name):
    spec = PARAMS.datasets[name]
    X, y = make_bands(spec)
    np.testing.assert_array_equal(y, np.repeat([0, 1], spec.n_samples))
    np.testing.assert_array_equal(X[y == 1], X[y == 0] + [0.0, spec.offset])
    # the shift survives make_dataset's shuffle: the same sets of points
    shuffled = make_dataset(spec, SEED)
    Xs, ys = shuffled.X, shuffled.y
    np.testing.assert_allclose(_rows(Xs[ys == 1]), _rows(Xs[ys == 0] + [0.0, spec.offset]))


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_spiral_arms_are_rotations_of_class_0(n_classes):
    spec = SpiralData(kind="spiral", n_classes=n_classes, points_per_class=60, data_limit=30, noise=0)
    X, y = make_spiral(spec, SEED)
    arm = X[y == 0]
    np.testing.assert_allclose(np.hypot(*arm.T), np.linspace(2, spec.data_limit, spec.points_per_class))
    for k in range(1, n_classes):
        np.testing.assert_allclose(X[y == k], arm @ _rotation(2 * np.pi * k / n_classes).T, atol=1e-9)


def test_spiral_noise_has_the_requested_scale():
    noisy = SpiralData(kind="spiral", noise=2.5)
    clean = noisy.model_copy(update={"noise": 0.0})
    residual = make_spiral(noisy, SEED)[0] - make_spiral(clean, SEED)[0]
    assert abs(residual.mean()) < 0.2
    assert residual.std() == pytest.approx(noisy.noise, rel=0.1)  # 1800 draws: ~2% standard error


# ---------------------------------------------------------------------------------- split_test


@pytest.mark.parametrize("name", DATASETS)
def test_split_test_is_stratified_sized_and_disjoint(name):
    spec = PARAMS.datasets[name]
    points = _make(name)
    X, y = points.X, points.y
    assert len(np.unique(X, axis=0)) == len(X)  # rows are distinct, so row sets identify rows
    splits = split_test(points, spec.test_fraction, SEED)
    assert isinstance(splits, Splits) and isinstance(splits.train, Points) and isinstance(splits.test, Points)
    n_test = len(splits.test)
    assert abs(n_test - len(y) * spec.test_fraction) < 1
    assert len(splits.train) + n_test == len(y)
    # stratified: each class's share of the test part is its share of the whole, to within a row
    expected = np.bincount(y) / len(y) * n_test
    assert np.all(np.abs(np.bincount(splits.test.y, minlength=spec.n_classes) - expected) <= 1)
    # disjoint and complete, with every row keeping its label
    np.testing.assert_array_equal(_rows(splits.all.X, splits.all.y), _rows(X, y))


def test_split_test_stratifies_an_unbalanced_dataset():
    """9:1 classes: a random (unstratified) 20 % would often hold 0, 1, 3 or more of the 2 expected."""
    y = np.array([0] * 90 + [1] * 10)
    points = Points(np.arange(200, dtype=float).reshape(100, 2), y)
    for seed in range(5):
        assert np.bincount(split_test(points, 0.2, seed).test.y).tolist() == [18, 2]


def test_split_test_is_deterministic_and_depends_on_the_seed():
    points = _make("spiral_easy")
    first, second = split_test(points, 0.2, SEED), split_test(points, 0.2, SEED)
    _assert_same(first.train, second.train)
    _assert_same(first.test, second.test)
    other = split_test(points, 0.2, SEED + 1)
    assert not np.array_equal(_rows(first.test.X), _rows(other.test.X))


def test_splits_all_is_train_then_test():
    splits = split_test(_make("linear"), 0.2, SEED)
    everything = splits.all
    n = len(splits.train)
    _assert_same(everything[:n], splits.train)
    _assert_same(everything[n:], splits.test)


def test_points_index_rows_and_keep_x_and_y_together():
    points = Points(np.arange(10.0).reshape(5, 2), np.array([0, 1, 2, 1, 0]))
    picked = points[np.array([4, 1])]
    assert isinstance(picked, Points) and len(picked) == 2
    np.testing.assert_array_equal(picked.X, [[8.0, 9.0], [2.0, 3.0]])
    np.testing.assert_array_equal(picked.y, [0, 1])


# ---------------------------------------------------------------------------------- split_validation


@pytest.mark.parametrize("key", list(PARAMS.experiments))
def test_split_validation_takes_the_last_rows(key):
    spec = PARAMS.experiments[key]
    train = split_test(_make(spec.dataset), PARAMS.datasets[spec.dataset].test_fraction, SEED).train
    cut = split_validation(train, spec.validation_split)
    assert isinstance(cut, FitSplit)
    n_fit = len(cut.fit)
    assert n_fit + len(cut.val) == len(train)
    assert abs(len(cut.val) - len(train) * spec.validation_split) <= 1
    _assert_same(cut.fit, train[:n_fit])
    _assert_same(cut.val, train[n_fit:])


@pytest.mark.parametrize("n, fraction, n_fit", [
    (10, 0.3, 7),
    (720, 0.3, 503),  # 720 * (1 - 0.3) = 503.99999999999994: Keras floors it, and so must we
    (7, 0.5, 3),
])
def test_split_validation_cuts_where_keras_cuts(n, fraction, n_fit):
    """Keras' fit(validation_split=f) fits on rows [:floor(n * (1 - f))] and validates on the rest."""
    cut = split_validation(Points(np.zeros((n, 2)), np.arange(n)), fraction)
    assert cut.fit.y.tolist() == list(range(n_fit))
    assert cut.val.y.tolist() == list(range(n_fit, n))


@pytest.mark.parametrize("n, fraction", [(1, 0.5), (10, 1.0), (10, 0.0), (3, 0.9)])
def test_split_validation_rejects_an_empty_part(n, fraction):
    points = Points(np.zeros((n, 2)), np.zeros(n, dtype=int))
    with pytest.raises(ValueError, match=f"validation_split={fraction} leaves an empty part of {n} rows"):
        split_validation(points, fraction)
