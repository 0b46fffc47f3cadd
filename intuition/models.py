"""Keras models built declaratively from an experiment's spec. Imports Keras (and so TensorFlow)."""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np

import keras
from intuition import features as playground
from intuition.config import ExperimentSpec

N_COORDINATES = 2  # every model takes raw points (x1, x2)


@keras.saving.register_keras_serializable(*playground.KERAS_LAYER)
class PlaygroundFeatures(keras.layers.Layer):
    """Points (x1, x2) -> the chosen Playground features (intuition.features), in the order given.
    No weights; its config is the feature names, so a saved model loads in Keras' safe mode
    wherever this module has been imported (which registers the class)."""

    def __init__(self, features: Sequence[str], **kwargs):
        super().__init__(**kwargs)
        unknown = [name for name in features if name not in playground.FEATURES]
        if unknown or not features:
            raise ValueError(f"features {list(features)}: use some of {', '.join(playground.NAMES)}")
        self.features = list(features)

    def call(self, points):
        return playground.compute(points, self.features, keras.ops)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], len(self.features))

    def get_config(self) -> dict:
        return {**super().get_config(), "features": self.features}


def build_model(spec: ExperimentSpec, seed: int, x_fit: np.ndarray) -> keras.Sequential:
    """The experiment's network with the initial weights `seed` draws. Ahead of the Dense layers,
    in this order: the point's features, unless they are the raw point (x1, x2); then, with
    `inputs: standardized`, a Normalization layer adapted on those features of the rows the model
    is fitted on (`x_fit`, never validation or test rows), so every feature enters the first
    Dense layer on the same scale. The saved model takes raw points like every other."""
    keras.utils.set_random_seed(seed)  # same seed -> same initial weights
    preprocessing = []
    if tuple(spec.features) != playground.DEFAULT:
        preprocessing.append(PlaygroundFeatures(spec.features, name="features"))
    if spec.inputs == "standardized":
        normalization = keras.layers.Normalization(name="standardize")
        normalization.adapt(playground.compute(np.asarray(x_fit, dtype="float32"), spec.features))
        preprocessing.append(normalization)
    # The penalty itself is added by the trainer (intuition.training); the layers carry it so that a
    # saved model says how it was trained, and Keras' own fit or evaluate would add the same.
    regularizer = keras.regularizers.L1L2(spec.l1, spec.l2) if spec.l1 or spec.l2 else None
    return keras.Sequential(
        [keras.Input(shape=(N_COORDINATES,)), *preprocessing]
        + [keras.layers.Dense(layer.units, activation=layer.activation, kernel_regularizer=regularizer)
           for layer in spec.layers],
        name=model_name(spec),
    )


def model_name(spec: ExperimentSpec) -> str:
    """The architecture line as a name TensorFlow accepts as a scope: 'relu_100_to_softmax_3'."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", spec.architecture().replace("→", "to"))


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
