"""TensorFlow Playground's input features: what the network sees, computed from a point (x1, x2).

An experiment picks some of them (`features` in params.yaml, default x1, x2: the point itself).
They are computed inside the model, so every saved model still takes raw points. This module is
the one place for their names, order and formulas, and imports only NumPy: the config checks
names against it, the NumPy forward pass (intuition.network) evaluates the formulas with NumPy,
and the Keras layer (intuition.models.PlaygroundFeatures) evaluates the same formulas with
keras.ops, so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class Feature:
    label: str  # as a figure prints it
    # (x1 column, x2 column, ops) -> the feature column; `ops` is numpy or keras.ops, which both
    # have `sin`; products are plain operators, which arrays and tensors share.
    formula: Callable


FEATURES: dict[str, Feature] = {
    "x1": Feature("x1", lambda x1, x2, ops: x1),
    "x2": Feature("x2", lambda x1, x2, ops: x2),
    "x1_squared": Feature("x1²", lambda x1, x2, ops: x1 * x1),
    "x2_squared": Feature("x2²", lambda x1, x2, ops: x2 * x2),
    "x1_x2": Feature("x1·x2", lambda x1, x2, ops: x1 * x2),
    "sin_x1": Feature("sin(x1)", lambda x1, x2, ops: ops.sin(x1)),
    "sin_x2": Feature("sin(x2)", lambda x1, x2, ops: ops.sin(x2)),
}
NAMES = tuple(FEATURES)  # Playground's order
DEFAULT = ("x1", "x2")  # the raw point: no feature layer at all
# How the Keras layer is registered (package, name): a saved model's config.json names it
# "intuition>PlaygroundFeatures", which is how the NumPy forward pass recognises it.
KERAS_LAYER = ("intuition", "PlaygroundFeatures")


def compute(X, names: Sequence[str], ops=np):
    """Points (n, 2) -> their features (n, len(names)), in the order of `names`. With `ops=keras.ops`
    this runs on tensors, inside a Keras layer."""
    x1, x2 = X[:, 0], X[:, 1]
    return ops.stack([FEATURES[name].formula(x1, x2, ops) for name in names], axis=-1)


def labels(names: Sequence[str]) -> list[str]:
    return [FEATURES[name].label for name in names]
