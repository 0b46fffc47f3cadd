"""Keras models built declaratively from an experiment's layer spec. Imports Keras (and so TensorFlow)."""

from __future__ import annotations

import numpy as np

import keras
from intuition.config import ExperimentSpec

N_FEATURES = 2


def build_model(spec: ExperimentSpec, seed: int) -> keras.Sequential:
    keras.utils.set_random_seed(seed)  # same seed -> same initial weights
    return keras.Sequential(
        [keras.Input(shape=(N_FEATURES,))]
        + [keras.layers.Dense(layer.units, activation=layer.activation) for layer in spec.layers],
        name=spec.architecture().replace(" ", "_").replace("→", "to"),
    )


def loss_for(spec: ExperimentSpec) -> keras.losses.Loss:
    """The loss follows the output layer: one sigmoid unit -> binary, softmax -> categorical."""
    if spec.is_binary:
        return keras.losses.BinaryCrossentropy()
    return keras.losses.CategoricalCrossentropy()


def optimizer_for(spec: ExperimentSpec) -> keras.optimizers.Optimizer:
    optimizers = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}
    return optimizers[spec.optimizer](learning_rate=spec.learning_rate)


def encode_targets(y: np.ndarray, spec: ExperimentSpec) -> np.ndarray:
    """Class indices -> what the loss expects: a (n, 1) column for binary, one-hot otherwise."""
    if spec.is_binary:
        return y.reshape(-1, 1).astype("float32")
    return np.eye(spec.output.units, dtype="float32")[y]
