"""Dataset generators and splits: sizes, class balance, determinism, geometry, and split semantics;
Playground's and scikit-learn's two-class datasets; your own CSV (parsing, and every bad file failing
through the real `python -m stages.generate` with one line and nothing written); the CSV under the
real `dvc` CLI."""

import math
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from sandbox import ROOT, commit, edit_params, make_project, repro, run, stages_run

from intuition.config import (BandsData, CircleData, ClassificationData, CsvData, GaussData, MoonsData,
                              PlaygroundSpiralData, SpiralData, StripesData, XorData, load_params)
from intuition.datasets import (gauss_sd, make_bands, make_circle, make_dataset, make_gauss, make_linear,
                                make_moons, make_playground_spiral, make_spiral, make_stripes, make_xor,
                                parse_csv_points, read_csv_points, spiral_from_noise, split_problem, split_test,
                                split_validation)
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


# Kinds whose points are drawn with the global seed (the others take a random_state, or a file).
SEEDED_KINDS = (SpiralData, CircleData, XorData, GaussData, PlaygroundSpiralData, StripesData)
SEEDED_MAKERS = {SpiralData: make_spiral, CircleData: make_circle, XorData: make_xor, GaussData: make_gauss,
                 PlaygroundSpiralData: make_playground_spiral, StripesData: make_stripes}


def _points_drawn_from_seed(spec) -> bool:
    """Whether the seed draws the points themselves (not just their order): Playground's spiral
    without noise is the same two arms for every seed."""
    return isinstance(spec, SEEDED_KINDS) and not (isinstance(spec, PlaygroundSpiralData) and spec.noise == 0)


def _expected_class_counts(spec) -> tuple[list[int], float]:
    """The class sizes a dataset should have, and how far (a fraction of all rows) each may be off."""
    if isinstance(spec, BandsData):
        return [spec.n_samples] * 2, 0
    if isinstance(spec, SpiralData):
        return [spec.points_per_class] * spec.n_classes, 0
    if isinstance(spec, CsvData):
        return [50] * 3, 0  # the example Iris file: 50 of each species
    half = [spec.n_samples // 2, spec.n_samples - spec.n_samples // 2]
    if isinstance(spec, (GaussData, PlaygroundSpiralData, MoonsData)):
        return half, 0
    if isinstance(spec, ClassificationData):
        return half, 0.02  # make_classification: balanced up to its flip_y=0.01 label noise
    # circle, xor, stripes: noise flips labels near the boundary; xor's and stripes' points are drawn at random
    return half, 0.1


def _generate(spec, seed=SEED):
    """The generator's output (or the file's rows) before make_dataset shuffles it."""
    if isinstance(spec, CsvData):
        points = read_csv_points(spec, ROOT)
        return points.X, points.y
    if isinstance(spec, ClassificationData):
        return make_linear(spec)
    if isinstance(spec, BandsData):
        return make_bands(spec)
    if isinstance(spec, MoonsData):
        return make_moons(spec)
    return SEEDED_MAKERS[type(spec)](spec, seed)


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
    expected, off = _expected_class_counts(spec)
    assert len(y) == sum(expected)
    assert np.all(np.abs(counts - expected) <= off * len(y)), (counts, expected)


def test_the_projects_dataset_sizes():
    """The sizes the study is described with (params.yaml)."""
    sizes = {name: np.bincount(_make(name).y).tolist() for name in DATASETS}
    assert sum(sizes["linear"]) == 500 and len(sizes["linear"]) == 2
    assert sizes["bands"] == [500, 500]
    assert sizes["spiral_easy"] == sizes["spiral_hard"] == [300, 300, 300]
    assert sizes["gauss"] == sizes["moons"] == sizes["playground_spiral"] == [250, 250]
    assert sum(sizes["circle"]) == sum(sizes["xor"]) == sum(sizes["stripes_k1"]) == sum(sizes["stripes_k3"]) == 500
    assert sizes["iris_petals"] == [50, 50, 50]


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
    if _points_drawn_from_seed(PARAMS.datasets[name]):
        # the seed also draws the points: different points, not just a different order
        assert len(X1) == len(X2) and not np.allclose(_rows(X1, y1), _rows(X2, y2))
    else:
        # sklearn generators use the dataset's own random_state, a CSV is a CSV, Playground's spiral
        # without noise is two fixed arms: same points, another order
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
@pytest.mark.parametrize("noise", [0.0, 1.0])
def test_spiral_classes_are_exact_rotations_of_one_noisy_arm(n_classes, noise):
    """As mightypy 0.0.2 builds it: the noise is drawn once, and class k is class 0's row vectors
    times R(2πk/n), i.e. class 0 turned by -2πk/n."""
    spec = SpiralData(kind="spiral", n_classes=n_classes, points_per_class=60, data_limit=30, noise=noise)
    X, y = make_spiral(spec, SEED)
    arm = X[y == 0]
    radius = np.hypot(*arm.T)
    if noise == 0:
        np.testing.assert_allclose(radius, np.linspace(2, spec.data_limit, spec.points_per_class))
    for k in range(1, n_classes):
        np.testing.assert_allclose(X[y == k], arm @ _rotation(2 * np.pi * k / n_classes), atol=1e-9)
        np.testing.assert_allclose(np.hypot(*X[y == k].T), radius)  # the same noisy radii in every class


def test_spiral_class_order_is_the_notebooks():
    """Three classes: class 1 is class 0 turned by +240° (-120°), class 2 by +120°."""
    X, y = make_spiral(SpiralData(kind="spiral", n_classes=3, points_per_class=50, data_limit=30, noise=1.0), SEED)
    turn = lambda points, degrees: points @ _rotation(np.radians(degrees)).T  # column-vector rotation
    np.testing.assert_allclose(X[y == 1], turn(X[y == 0], 240), atol=1e-9)
    np.testing.assert_allclose(X[y == 2], turn(X[y == 0], 120), atol=1e-9)


def test_spiral_is_upstreams_construction_given_its_noise():
    """mightypy 0.0.2's generate_spiral_data, transcribed: np.random.randn per coordinate, then
    `features[-1] @ rotation_mat` per class. With the same noise the points are byte-identical."""
    spec = SpiralData(kind="spiral", n_classes=3, points_per_class=300, data_limit=100, noise=1.0)
    state = np.random.RandomState(0)
    upstream = [np.array([[np.cos(i / 8) * i + state.randn(), np.sin(i / 8) * i + state.randn()]
                          for i in np.linspace(2, 100, 300)])]
    rotation = _rotation(2 * np.pi / 3)
    for _ in range(2):
        upstream.append(upstream[-1] @ rotation)
    X, y = spiral_from_noise(spec, np.random.RandomState(0).randn(300, 2))
    np.testing.assert_array_equal(X, np.vstack(upstream))
    np.testing.assert_array_equal(y, np.repeat([0, 1, 2], 300))


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
    splits = split_test(points, spec.test_fraction, SEED)
    assert isinstance(splits, Splits) and isinstance(splits.train, Points) and isinstance(splits.test, Points)
    n_test = len(splits.test)
    assert abs(n_test - len(y) * spec.test_fraction) < 1
    assert len(splits.train) + n_test == len(y)
    # stratified: each class's share of the test part is its share of the whole, to within a row
    expected = np.bincount(y) / len(y) * n_test
    assert np.all(np.abs(np.bincount(splits.test.y, minlength=spec.n_classes) - expected) <= 1)
    # disjoint and complete, with every row keeping its label (compared as multisets of rows:
    # Iris has repeated points)
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


# ---------------------------------------------------------------------------------- Playground and moons
# TensorFlow Playground's src/dataset.ts: circle radius 5 (class 1 within 2.5, class 0 on 3.5..5), XOR
# in ±5 pushed 0.3 off the axes, Gaussians at ±(2, 2) with variance 0.5..4, spiral arms of radius
# i/n·5 at angle 1.75·i/n·2π (+π for class 0); its noise (0..0.5) flips the circle's and XOR's labels
# near the boundary without moving points, and moves the spiral's points by up to ±noise. And the
# stripes at Playground's scale: uniform in ±6, class 1 where sin(k·x1) >= 0.


def _circle(noise, n=2000, seed=SEED):
    return make_circle(CircleData(kind="circle", n_samples=n, noise=noise), seed)


def _xor(noise, n=2000, seed=SEED):
    return make_xor(XorData(kind="xor", n_samples=n, noise=noise), seed)


def test_circle_without_noise_is_inside_vs_ring():
    X, y = _circle(0.0)
    radius = np.hypot(*X.T)
    assert np.bincount(y).tolist() == [1000, 1000]
    assert radius[y == 1].max() < 2.5 and radius[y == 1].min() < 0.05  # uniform in radius: reaches the centre
    assert 3.5 <= radius[y == 0].min() < 3.52 and 4.98 < radius[y == 0].max() <= 5
    angle = np.arctan2(X[:, 0], X[:, 1])  # Playground: x = r sin(angle), y = r cos(angle)
    assert np.histogram(angle, bins=4, range=(-np.pi, np.pi))[0].min() > 400  # every direction


@pytest.mark.parametrize("noise", [0.1, 0.5])
def test_circle_noise_flips_labels_near_the_circle_only(noise):
    X, y = _circle(noise)
    X0, y0 = _circle(0.0)
    np.testing.assert_array_equal(X, X0)  # the noise does not move the points (same draws, same seed)
    flipped = y != y0
    assert flipped.any()
    # a point flips only if an offset of up to 5 * noise per axis carries it across radius 2.5
    reach = 5 * noise * math.sqrt(2)
    assert np.all(np.abs(np.hypot(*X[flipped].T) - 2.5) < reach)
    assert flipped.mean() < (0.05 if noise == 0.1 else 0.5)


def test_xor_without_noise_is_the_sign_of_x1_x2():
    X, y = _xor(0.0)
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] >= 0).astype(int))
    assert np.abs(X).max() <= 5.3 and np.abs(X).min() >= 0.3  # ±5 pushed 0.3 off each axis
    assert abs(np.bincount(y)[1] / len(y) - 0.5) < 0.05


@pytest.mark.parametrize("noise", [0.1, 0.5])
def test_xor_noise_flips_labels_near_the_axes_only(noise):
    X, y = _xor(noise)
    X0, y0 = _xor(0.0)
    np.testing.assert_array_equal(X, X0)
    flipped = y != y0
    assert flipped.any()
    assert np.all(np.abs(X[flipped]).min(axis=1) < 5 * noise)  # within an offset's reach of an axis


@pytest.mark.parametrize("noise, variance", [(0.0, 0.5), (0.25, 2.25), (0.5, 4.0)])
def test_gauss_blobs_have_playgrounds_centres_and_variance(noise, variance):
    assert gauss_sd(noise) ** 2 == pytest.approx(variance)
    X, y = make_gauss(GaussData(kind="gauss", n_samples=4000, noise=noise), SEED)
    assert np.bincount(y).tolist() == [2000, 2000]
    for label, centre in [(1, 2.0), (0, -2.0)]:
        blob = X[y == label]
        np.testing.assert_allclose(blob.mean(axis=0), [centre, centre], atol=0.1)
        np.testing.assert_allclose(blob.var(axis=0), [variance, variance], rtol=0.1)  # 2000 draws: ~3 % error


def _playground_spiral(noise, n=500, seed=SEED):
    return make_playground_spiral(PlaygroundSpiralData(kind="playground_spiral", n_samples=n, noise=noise), seed)


def _stripes(frequency, noise, n=2000, seed=SEED):
    return make_stripes(StripesData(kind="stripes", n_samples=n, frequency=frequency, noise=noise), seed)


def _angle_gap(a, b):
    """How far apart two angles are, modulo a full turn."""
    return np.abs(np.angle(np.exp(1j * (np.asarray(a) - b))))


def test_playground_spiral_radii_and_angles_are_playgrounds_formula():
    X, y = _playground_spiral(0.0)
    assert np.bincount(y).tolist() == [250, 250]
    i = np.arange(250)
    for label, delta in [(1, 0.0), (0, np.pi)]:  # genSpiral(0, 1), genSpiral(Math.PI, -1)
        arm = X[y == label]  # in drawing order (make_dataset shuffles later)
        np.testing.assert_allclose(np.hypot(*arm.T), i / 250 * 5, atol=1e-12)  # r = i / n * 5
        t = 1.75 * i / 250 * 2 * np.pi + delta
        angle = np.arctan2(arm[:, 0], arm[:, 1])  # x = r sin t, y = r cos t
        assert _angle_gap(angle[1:], t[1:]).max() < 1e-9  # point 0 is the centre, at no angle


@pytest.mark.parametrize("n", [500, 7])
def test_playground_spiral_classes_are_point_symmetric_without_noise(n):
    X, y = _playground_spiral(0.0, n=n)
    positive, negative = X[y == 1], X[y == 0]
    assert len(positive) - len(negative) == n % 2  # an odd point goes to class 1, drawn first
    np.testing.assert_allclose(negative, -positive[:len(negative)], atol=1e-12)  # turned by π


@pytest.mark.parametrize("noise", [0.1, 0.5])
def test_playground_spiral_noise_moves_points_by_up_to_noise_and_keeps_labels(noise):
    X, y = _playground_spiral(noise)
    X0, y0 = _playground_spiral(0.0)
    np.testing.assert_array_equal(y, y0)
    moved = X - X0  # randUniform(-1, 1) * noise per coordinate
    assert np.abs(moved).max() <= noise and np.abs(moved).max() > 0.95 * noise
    assert abs(moved.mean()) < 0.1 * noise
    assert not np.allclose(_playground_spiral(noise, seed=SEED + 1)[0], X)


@pytest.mark.parametrize("frequency", [1, 3, 12.5])
def test_stripes_without_noise_are_the_sign_of_sin_k_x1(frequency):
    X, y = _stripes(frequency, 0.0)
    np.testing.assert_array_equal(y, (np.sin(frequency * X[:, 0]) >= 0).astype(int))
    assert np.abs(X).max() <= 6 and (X.min(axis=0) < -5.9).all() and (X.max(axis=0) > 5.9).all()
    assert abs(y.mean() - 0.5) < 0.05  # sin is odd: half of ±6 is class 1


@pytest.mark.parametrize("noise", [0.05, 0.5])
def test_stripes_noise_flips_labels_near_the_stripes_edges_only(noise):
    frequency = 1.0
    X, y = _stripes(frequency, noise)
    X0, y0 = _stripes(frequency, 0.0)
    np.testing.assert_array_equal(X, X0)  # the noise does not move the points
    flipped = y != y0
    assert flipped.any()
    edge = np.pi / frequency  # sin(k x1) changes sign at the multiples of π / k
    to_edge = np.abs(X[flipped, 0] - np.round(X[flipped, 0] / edge) * edge)
    assert to_edge.max() < 6 * noise  # within an offset's reach (±6·noise on x1) of an edge


def test_stripes_frequency_allows_ten_points_per_stripe_on_average():
    """The schema's limit, k ≤ n_samples·π/120: at the limit the ±6 axis holds 12·k/π stripes of 10
    points on average."""
    spec = StripesData(kind="stripes", n_samples=600, frequency=600 * np.pi / 120)
    X, y = make_stripes(spec, SEED)
    stripe = np.floor(X[:, 0] * spec.frequency / np.pi)  # which half period of sin(k x1) a point is in
    _, counts = np.unique(stripe, return_counts=True)
    assert len(counts) == pytest.approx(12 * spec.frequency / np.pi, abs=1)  # 60 stripes (and a sliver)
    assert np.median(counts) == pytest.approx(10, abs=2)
    assert np.all(y[stripe % 2 == 0] == 1) and np.all(y[stripe % 2 == 1] == 0)  # alternating classes


@pytest.mark.parametrize("kind", [CircleData, XorData, GaussData, PlaygroundSpiralData, StripesData])
def test_playground_kinds_are_deterministic_and_keep_an_odd_point(kind):
    extra = {"frequency": 0.1} if kind is StripesData else {}  # 7 points allow a frequency up to 7π/120
    spec = kind(kind=kind.model_fields["kind"].annotation.__args__[0], n_samples=7, noise=0.2, **extra)
    make = SEEDED_MAKERS[kind]
    (X1, y1), (X2, y2) = make(spec, SEED), make(spec, SEED)
    assert X1.shape == (7, 2) and y1.shape == (7,)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.allclose(make(spec, SEED + 1)[0], X1)


def test_playground_points_lie_in_playgrounds_plot():
    for name in ("circle", "xor"):
        assert np.abs(_make(name).X).max() <= 5.3  # Playground plots ±6
    assert np.abs(_make("gauss").X).max() < 6
    assert np.abs(_make("playground_spiral").X).max() < 5
    for name in ("stripes_k1", "stripes_k3"):
        assert np.abs(_make(name).X).max() <= 6


def test_moons_are_scikit_learns():
    from sklearn.datasets import make_moons as sklearn_moons

    spec = PARAMS.datasets["moons"]
    X, y = sklearn_moons(n_samples=spec.n_samples, noise=spec.noise, random_state=spec.random_state)
    points = _make("moons")
    np.testing.assert_array_equal(_rows(points.X, points.y), _rows(X, y))


# ---------------------------------------------------------------------------------- split_problem


def test_split_problem_says_none_exactly_when_scikit_learn_can_split():
    """On many small label sets of 2-4 classes: no problem reported <=> train_test_split succeeds."""
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(0)
    verdicts = set()
    for _ in range(400):
        n_classes = int(rng.integers(2, 5))
        y = rng.integers(0, n_classes, int(rng.integers(n_classes, 16)))
        y = np.unique(y, return_inverse=True)[1]  # every class 0..k-1 present
        if y.max() == 0:
            continue  # one class: scikit-learn splits it, but there is nothing to classify
        fraction = float(rng.choice([0.1, 0.2, 0.3, 0.5]))
        problem = split_problem(y, [f"class {k}" for k in range(y.max() + 1)], fraction)
        try:
            train_test_split(np.zeros((len(y), 2)), y, test_size=fraction, stratify=y, random_state=0)
            splits = True
        except ValueError:
            splits = False
        assert (problem is None) == splits, (y.tolist(), fraction, problem)
        verdicts.add(splits)
    assert verdicts == {True, False}


# ---------------------------------------------------------------------------------- your own CSV


def _csv_spec(**fields) -> CsvData:
    return CsvData.model_validate({"kind": "csv", "path": "own_data/mine.csv", "classes": ["a", "b"]} | fields)


def test_csv_classes_follow_the_listed_order_not_the_file_or_the_alphabet():
    text = "x1,x2,label\n1,2,b\n3,4,a\n5,6,c\n"
    points = parse_csv_points(text, _csv_spec(classes=["c", "a", "b"]))
    np.testing.assert_array_equal(points.X, [[1, 2], [3, 4], [5, 6]])
    assert points.y.tolist() == [2, 1, 0]
    assert points.X.dtype == np.float64 and points.y.dtype == np.int64


def test_csv_integer_labels_named_columns_spaces_blank_lines_and_extra_columns():
    text = "id, width ,height,kind,note\n\n1, 0.5 ,2e1, 1 ,x\n2,-3,4,0,\n\n"
    spec = _csv_spec(x1="width", x2="height", label="kind", classes=[1, 0])
    points = parse_csv_points(text, spec)
    np.testing.assert_array_equal(points.X, [[0.5, 20.0], [-3.0, 4.0]])
    assert points.y.tolist() == [0, 1]  # label 1 is listed first: class 0


def test_read_csv_points_reads_the_file_under_the_root(tmp_path):
    (tmp_path / "own_data").mkdir()
    (tmp_path / "own_data" / "mine.csv").write_bytes("\ufeffx1,x2,label\n1,2,a\n".encode())  # Excel's BOM
    assert read_csv_points(_csv_spec(), tmp_path).y.tolist() == [0]


def test_the_example_csv_is_iris_petals():
    """own_data/iris_petals.csv is what README and params.yaml say: Iris' petal length and width."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    points = read_csv_points(PARAMS.datasets["iris_petals"], ROOT)
    np.testing.assert_allclose(points.X, iris.data[:, 2:4])
    np.testing.assert_array_equal(points.y, iris.target)
    assert PARAMS.datasets["iris_petals"].labels == list(iris.target_names)


@pytest.mark.parametrize("path", ["/tmp/mine.csv", "data/mine.csv", "own_data/../mine.csv", "own_data", "mine.csv"])
def test_a_csv_outside_own_data_is_a_params_error(params_dict, path):
    from intuition.config import ParamsError, parse_params

    params_dict["datasets"]["mine"] = {"kind": "csv", "path": path, "classes": ["a", "b"]}
    with pytest.raises(ParamsError) as info:
        parse_params(params_dict)
    assert str(info.value) == (
        f"params.yaml: datasets.mine.path: {path!r} is not allowed: put the CSV inside own_data/ and give its "
        "path from the project root, e.g. own_data/mine.csv (the generate stage depends on that folder)")


@pytest.mark.parametrize("classes, message", [
    (["a"], "datasets.mine.classes: ['a'] is not allowed: list two or more different labels"),
    (["a", "a"], "datasets.mine.classes: ['a', 'a'] is not allowed: list two or more different labels"),
    ([1, "1"], "datasets.mine.classes: [1, '1'] is not allowed: list two or more different labels"),
    (["a", True], "datasets.mine.classes[1]: True is not allowed: use the labels as they appear in the file"),
    ([0, 1.5], "datasets.mine.classes[1]: 1.5 is not allowed: use the labels as they appear in the file"),
])
def test_bad_classes_are_a_params_error(params_dict, classes, message):
    from intuition.config import ParamsError, parse_params

    params_dict["datasets"]["mine"] = {"kind": "csv", "path": "own_data/mine.csv", "classes": classes}
    with pytest.raises(ParamsError) as info:
        parse_params(params_dict)
    assert "\n" not in str(info.value) and str(info.value).startswith(f"params.yaml: {message}")


def test_the_output_layer_is_checked_against_the_listed_classes(params_dict):
    from intuition.config import ParamsError, parse_params

    params_dict["experiments"]["iris_petals_relu_1x8"]["layers"][-1] = {"units": 1, "activation": "sigmoid"}
    with pytest.raises(ParamsError, match=r"'iris_petals' \(3 classes\); allowed: softmax with 3 units"):
        parse_params(params_dict)


# Each bad file through the real CLI: (file content or None for no file, spec changes, the one line).
GOOD = "x1,x2,label\n" + "".join(f"{i},{i * 2},{'ab'[i % 2]}\n" for i in range(10))
BAD_CSV = [
    pytest.param(None, {}, "own_data/mine.csv: file not found (paths are relative to the project root; "
                 "a file tracked with `dvc add` needs `dvc checkout` or `dvc pull`)", id="missing-file"),
    pytest.param("", {}, "own_data/mine.csv: the file is empty; expected a header line naming the columns "
                 "x1, x2 and label", id="empty-file"),
    pytest.param("x1,x2,label\n", {}, "own_data/mine.csv: the file has a header but no rows of data", id="header-only"),
    pytest.param("x1,x2,species\n1,2,a\n", {}, "own_data/mine.csv: line 1: label column 'label' is not in the "
                 "header (columns: x1, x2, species)", id="no-label-column"),
    pytest.param("x1,y,label\n1,2,a\n", {}, "own_data/mine.csv: line 1: x2 column 'x2' is not in the header "
                 "(columns: x1, y, label)", id="no-feature-column"),
    pytest.param(GOOD.replace("a\n", "a,9\n", 1), {}, "own_data/mine.csv: line 2: 4 values, but the header has "
                 "3 columns", id="extra-value"),
    pytest.param(GOOD.replace("7,14,b", "7,abc,b"), {}, "own_data/mine.csv: line 9: x2 is 'abc', not a number",
                 id="not-a-number"),
    pytest.param(GOOD.replace("3,6,b", "3,inf,b"), {}, "own_data/mine.csv: line 5: x2 is 'inf', not a finite "
                 "number", id="not-finite"),
    pytest.param(GOOD.replace("\n4,8,a", "\n,8,a"), {}, "own_data/mine.csv: line 6: x1 is empty", id="empty-value"),
    pytest.param(GOOD.replace("5,10,b", "5,10,"), {}, "own_data/mine.csv: line 7: label is empty", id="empty-label"),
    pytest.param(GOOD.replace("\n\n", "\n").replace("6,12,a", "6,12,c"), {}, "own_data/mine.csv: line 8: label "
                 "is 'c', not one of the classes listed in params.yaml: a, b", id="unlisted-label"),
    pytest.param(GOOD.replace(",b\n", ",a\n"), {}, "own_data/mine.csv: all 10 rows are 'a'; a classifier needs "
                 "rows of at least two classes", id="one-class"),
    pytest.param(GOOD, {"classes": ["a", "b", "c"]}, "own_data/mine.csv: no rows of 'c'; a stratified split needs "
                 "at least 2 rows of every class", id="listed-class-without-rows"),
    pytest.param("x1,x2,label\n1,2,a\n3,4,a\n5,6,b\n", {}, "own_data/mine.csv: only 1 row of 'b'; a stratified "
                 "split needs at least 2 rows of every class", id="class-with-one-row"),
    pytest.param("x1,x2,label\n1,2,a\n3,4,a\n5,6,b\n7,8,b\n", {}, "own_data/mine.csv: 4 rows are too few to split: "
                 "test_fraction 0.2 gives 1 test and 3 training rows, and each part needs at least one row of "
                 "each of the 2 classes", id="too-few-rows"),
    pytest.param('x1,x2,label\n1,"2,a\n', {}, "own_data/mine.csv: line 2: not valid CSV: unexpected end of data",
                 id="unclosed-quote"),
]


def _generate_cli(project, spec_changes=None):
    """`python -m stages.generate mine` in `project`, with a 'mine' CSV dataset and one experiment on it."""
    spec = {"kind": "csv", "path": "own_data/mine.csv", "classes": ["a", "b"], "test_fraction": 0.2}
    params = {"seed": 42, "datasets": {"mine": spec | (spec_changes or {})}, "experiments": {"mine_perceptron": {
        "dataset": "mine", "layers": [{"units": 1, "activation": "sigmoid"}], "optimizer": "sgd",
        "learning_rate": 0.1, "epochs": 3, "batch_size": 32, "validation_split": 0.3}}}
    if "classes" in (spec_changes or {}) and len(spec_changes["classes"]) > 2:
        params["experiments"]["mine_perceptron"]["layers"] = [{"units": 3, "activation": "softmax"}]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return run(project, sys.executable, "-m", "stages.generate", "mine", check=False, PYTHONPATH=str(ROOT))


@pytest.mark.parametrize("content, changes, line", BAD_CSV)
def test_a_bad_csv_fails_with_one_line_and_writes_nothing(tmp_path, content, changes, line):
    (tmp_path / "own_data").mkdir()
    if content is not None:
        (tmp_path / "own_data" / "mine.csv").write_text(content)
    result = _generate_cli(tmp_path, changes)
    assert (result.returncode, result.stderr, result.stdout) == (2, f"error: {line}\n", "")
    assert not (tmp_path / "data").exists()


def test_a_bad_csv_leaves_the_last_good_split_untouched(tmp_path):
    (tmp_path / "own_data").mkdir()
    csv_file = tmp_path / "own_data" / "mine.csv"
    csv_file.write_text(GOOD)
    good = _generate_cli(tmp_path)
    assert good.returncode == 0 and good.stdout == "mine: 8 train rows, 2 test rows, 2 classes (0 = 'a', 1 = 'b')\n"
    outputs = {p.name: p.read_bytes() for p in (tmp_path / "data" / "mine").iterdir()}
    train = pd.read_csv(tmp_path / "data" / "mine" / "train.csv")
    assert list(train.columns) == ["x1", "x2", "y"] and set(train["y"]) == {0, 1}
    csv_file.write_text(GOOD.replace("7,14,b", "7,abc,b"))
    bad = _generate_cli(tmp_path)
    assert bad.returncode == 2
    assert {p.name: p.read_bytes() for p in (tmp_path / "data" / "mine").iterdir()} == outputs


def test_too_few_generated_points_fail_naming_the_params_key(tmp_path):
    params = {"seed": 42, "datasets": {"tiny": {"kind": "gauss", "n_samples": 3}}, "experiments": {"p": {
        "dataset": "tiny", "layers": [{"units": 1, "activation": "sigmoid"}], "optimizer": "sgd",
        "learning_rate": 0.1, "epochs": 3, "batch_size": 32, "validation_split": 0.3}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = run(tmp_path, sys.executable, "-m", "stages.generate", "tiny", check=False, PYTHONPATH=str(ROOT))
    assert (result.returncode, result.stderr) == (2, "error: params.yaml: datasets.tiny: only 1 row of class 0; "
                                                     "a stratified split needs at least 2 rows of every class\n")
    assert not (tmp_path / "data").exists()


# ---------------------------------------------------------------------------------- the CSV under DVC
# Real dvc CLI and real training (3 epochs, 2 seeds): run under the shared training lock.

CSV_EXPERIMENTS = ["iris_petals_relu_1x8", "gauss_perceptron"]


@pytest.fixture(scope="module")
def csv_project(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("csv"), epochs=3, experiments=CSV_EXPERIMENTS, seeds=2)
    first = repro(project)
    assert {"generate@iris_petals", "train@iris_petals_relu_1x8", "evaluate@iris_petals_relu_1x8"} <= stages_run(first.stdout)
    return project


def test_editing_the_csv_reruns_its_dataset_and_experiments_only(csv_project):
    csv_file = csv_project / "own_data" / "iris_petals.csv"
    csv_file.write_text(csv_file.read_text().replace("\n5.1,1.8,virginica\n", "\n5.2,1.8,virginica\n", 1))
    result = repro(csv_project)
    # every generate@ depends on own_data/, so gauss is regenerated too, to the same bytes: its
    # experiment does not rerun
    assert stages_run(result.stdout) == {"generate@iris_petals", "generate@gauss", "train@iris_petals_relu_1x8",
                                         "evaluate@iris_petals_relu_1x8", "report"}
    assert stages_run(repro(csv_project).stdout) == set()


def test_a_dvc_added_csv_works_as_a_dataset(csv_project):
    iris = pd.read_csv(csv_project / "own_data" / "iris_petals.csv")
    iris[iris["species"] != "setosa"].to_csv(csv_project / "own_data" / "two_species.csv", index=False)
    run(csv_project, "dvc", "add", "own_data/two_species.csv")
    assert (csv_project / "own_data" / "two_species.csv.dvc").exists()
    assert "/two_species.csv" in (csv_project / "own_data" / ".gitignore").read_text()

    def add(params):
        params["datasets"]["two_species"] = {"kind": "csv", "path": "own_data/two_species.csv", "x1": "petal_length",
                                             "x2": "petal_width", "label": "species",
                                             "classes": ["versicolor", "virginica"]}
        params["experiments"]["two_species_perceptron"] = params["experiments"]["gauss_perceptron"] | {
            "dataset": "two_species"}

    edit_params(csv_project, add)
    commit(csv_project, "a dvc-added CSV")
    result = repro(csv_project, "train@two_species_perceptron")
    assert {"generate@two_species", "train@two_species_perceptron"} <= stages_run(result.stdout)
    assert "overlap" not in result.stdout + result.stderr
    train = pd.read_csv(csv_project / "data" / "two_species" / "train.csv")
    assert len(train) == 80 and sorted(np.bincount(train["y"])) == [40, 40]
    # the .dvc file's stage feeds every generate@ (a dependency edge, not an overlap error)
    dag = run(csv_project, "dvc", "dag", "--dot", "generate@two_species").stdout
    assert "own_data/two_species.csv.dvc" in dag
