"""Keras models built declaratively from an experiment's spec. Imports Keras (and so TensorFlow)."""

from __future__ import annotations

import numpy as np

import keras
from intuition.config import ExperimentSpec

N_FEATURES = 2


def build_model(spec: ExperimentSpec, seed: int, x_fit: np.ndarray) -> keras.Sequential:
    """The experiment's network with the initial weights `seed` draws. With `inputs: standardized`
    a Normalization layer, adapted on the rows the model is fitted on (`x_fit`, never validation
    or test rows), comes first, so the saved model takes raw points like every other."""
    keras.utils.set_random_seed(seed)  # same seed -> same initial weights
    preprocessing = []
    if spec.inputs == "standardized":
        normalization = keras.layers.Normalization(name="standardize")
        normalization.adapt(np.asarray(x_fit, dtype="float32"))
        preprocessing.append(normalization)
    return keras.Sequential(
        [keras.Input(shape=(N_FEATURES,)), *preprocessing]
        + [keras.layers.Dense(layer.units, activation=layer.activation) for layer in spec.layers],
        name=spec.architecture().replace(" ", "_").replace("→", "to"),
    )


def dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def preprocess(model: keras.Model, x) -> np.ndarray:
    """`x` through the model's fixed (non-trainable) layers before its first Dense layer."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            break
        x = layer(x)
    return keras.ops.convert_to_numpy(x)


def optimizer_for(spec: ExperimentSpec) -> keras.optimizers.Optimizer:
    optimizers = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}
    return optimizers[spec.optimizer](learning_rate=spec.learning_rate)


def encode_targets(y: np.ndarray, spec: ExperimentSpec) -> np.ndarray:
    """Class indices -> what the loss expects: a (n, 1) column for binary, one-hot otherwise."""
    if spec.is_binary:
        return y.reshape(-1, 1).astype("float32")
    return np.eye(spec.output.units, dtype="float32")[y]
