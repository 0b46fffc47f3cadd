"""Pure dataset generators (params in, arrays out) and the splits every stage agrees on."""

from __future__ import annotations

import math

import numpy as np

from intuition.config import BandsData, ClassificationData, DatasetSpec, SpiralData
from intuition.types import FitSplit, Points, Splits


# scikit-learn is imported where it is used: train@ needs only `split_validation`, and importing
# sklearn costs ~0.8 s per stage.


def make_linear(spec: ClassificationData) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    return make_classification(
        n_samples=spec.n_samples, n_features=2, n_informative=1, n_redundant=0,
        n_repeated=0, n_classes=2, n_clusters_per_class=1, random_state=spec.random_state,
    )


def make_bands(spec: BandsData) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_regression

    x, t = make_regression(
        n_samples=spec.n_samples, n_features=1, noise=spec.noise, random_state=spec.random_state
    )
    lower = np.column_stack([x[:, 0], (t / 100) ** 2])
    upper = lower + [0.0, spec.offset]
    X = np.vstack([lower, upper])
    y = np.repeat([0, 1], spec.n_samples)
    return X, y


def make_spiral(spec: SpiralData, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Class 0 is (t cos(t/8), t sin(t/8)) plus N(0, noise) noise; each next class is the
    previous one rotated by 2π / n_classes (the notebook's mightypy generate_spiral_data)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(2, spec.data_limit, spec.points_per_class)
    arm = np.column_stack([t * np.cos(t / 8), t * np.sin(t / 8)])
    parts = []
    for k in range(spec.n_classes):
        angle = 2 * np.pi * k / spec.n_classes
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        noise = rng.normal(0.0, spec.noise, size=arm.shape)
        parts.append(arm @ rotation.T + noise)
    X = np.vstack(parts)
    y = np.repeat(np.arange(spec.n_classes), spec.points_per_class)
    return X, y


def make_dataset(spec: DatasetSpec, seed: int) -> Points:
    """The full dataset, shuffled with the seed."""
    if isinstance(spec, ClassificationData):
        X, y = make_linear(spec)
    elif isinstance(spec, BandsData):
        X, y = make_bands(spec)
    else:
        X, y = make_spiral(spec, seed)
    order = np.random.default_rng(seed).permutation(len(y))
    return Points(X[order].astype(np.float64), y[order].astype(np.int64))


def split_test(points: Points, test_fraction: float, seed: int) -> Splits:
    """A stratified held-out test part that training never sees."""
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(
        points.X, points.y, test_size=test_fraction, stratify=points.y, random_state=seed)
    return Splits(Points(X_train, y_train), Points(X_test, y_test))


def split_validation(points: Points, validation_split: float) -> FitSplit:
    """Keras' `validation_split` semantics: the last fraction of the (already shuffled) rows,
    cut where `model.fit` cuts."""
    cut = math.floor(len(points) * (1 - validation_split))
    if cut == 0 or cut == len(points):
        raise ValueError(f"validation_split={validation_split} leaves an empty part of {len(points)} rows")
    return FitSplit(points[:cut], points[cut:])
