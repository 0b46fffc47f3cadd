"""Dataset generators and splits: sizes, class balance, determinism, geometry, and split semantics."""

import numpy as np
import pytest

from intuition.config import BandsData, ClassificationData, SpiralData, load_params
from intuition.datasets import make_bands, make_dataset, make_linear, make_spiral, split_test, split_validation

from conftest import PARAMS_YAML

PARAMS = load_params(PARAMS_YAML)  # frozen: safe to share between tests
SEED = PARAMS.seed
DATASETS = list(PARAMS.datasets)


def _make(name, seed=SEED):
    return make_dataset(PARAMS.datasets[name], seed)


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
    X, y = _make(name)
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
    sizes = {name: np.bincount(_make(name)[1]).tolist() for name in DATASETS}
    assert sum(sizes["linear"]) == 500 and len(sizes["linear"]) == 2
    assert sizes["bands"] == [500, 500]
    assert sizes["spiral_easy"] == sizes["spiral_hard"] == [300, 300, 300]


@pytest.mark.parametrize("name", DATASETS)
def test_make_dataset_is_the_generator_output_shuffled(name):
    X, y = _make(name)
    X0, y0 = _generate(PARAMS.datasets[name])
    assert not np.array_equal(y, y0)  # the order changed ...
    np.testing.assert_array_equal(_rows(X, y), _rows(X0, y0))  # ... and nothing else


@pytest.mark.parametrize("name", DATASETS)
def test_same_seed_same_dataset(name):
    for a, b in zip(_make(name), _make(name)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", DATASETS)
def test_different_seed_different_order(name):
    (X1, y1), (X2, y2) = _make(name, SEED), _make(name, SEED + 1)
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
    Xs, ys = make_dataset(spec, SEED)
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
    X, y = _make(name)
    assert len(np.unique(X, axis=0)) == len(X)  # rows are distinct, so row sets identify rows
    X_train, X_test, y_train, y_test = split_test(X, y, spec.test_fraction, SEED)
    n_test = len(y_test)
    assert abs(n_test - len(y) * spec.test_fraction) < 1
    assert len(y_train) + n_test == len(y)
    expected = np.bincount(y) / len(y) * n_test
    assert np.all(np.abs(np.bincount(y_test, minlength=spec.n_classes) - expected) <= 1)
    # disjoint and complete, with every row keeping its label
    np.testing.assert_array_equal(
        _rows(np.vstack([X_train, X_test]), np.concatenate([y_train, y_test])), _rows(X, y))


def test_split_test_is_deterministic():
    X, y = _make("spiral_easy")
    first, second = split_test(X, y, 0.2, SEED), split_test(X, y, 0.2, SEED)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------- split_validation


@pytest.mark.parametrize("key", list(PARAMS.experiments))
def test_split_validation_takes_the_last_rows(key):
    spec = PARAMS.experiments[key]
    X, y = _make(spec.dataset)
    X, _, y, _ = split_test(X, y, PARAMS.datasets[spec.dataset].test_fraction, SEED)
    X_fit, y_fit, X_val, y_val = split_validation(X, y, spec.validation_split)
    cut = len(y_fit)
    assert abs(len(y_val) - len(y) * spec.validation_split) <= 1
    np.testing.assert_array_equal(X_fit, X[:cut])
    np.testing.assert_array_equal(y_fit, y[:cut])
    np.testing.assert_array_equal(X_val, X[cut:])
    np.testing.assert_array_equal(y_val, y[cut:])


@pytest.mark.parametrize("n, fraction", [(1, 0.5), (10, 1.0)])
def test_split_validation_rejects_an_empty_part(n, fraction):
    X, y = np.zeros((n, 2)), np.zeros(n, dtype=int)
    with pytest.raises(ValueError, match="leaves an empty part"):
        split_validation(X, y, fraction)
