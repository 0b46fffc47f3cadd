"""A saved Keras Sequential (optional PlaygroundFeatures and Normalization layers, then Dense layers),
evaluated with NumPy.

Metrics and plots need only the forward pass of a tiny MLP, which is a few matrix products;
importing TensorFlow for it would cost ~4 s per process, and Keras' own NumPy backend needs JAX,
which is not installed. This reads the `.keras` file itself (its config and weights), so it
predicts what the Keras model predicts (tests compare the two, for every input feature, with and
without standardized inputs).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from intuition import features as playground

EPSILON = 1e-7  # keras.backend.epsilon(): Normalization divides by max(sqrt(variance), epsilon)


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0),
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "linear": lambda z: z,
    "softmax": _softmax,
}


@dataclass(frozen=True)
class DenseLayer:
    kernel: np.ndarray
    bias: np.ndarray
    activation: str

    def __call__(self, a: np.ndarray) -> np.ndarray:
        return ACTIVATIONS[self.activation](a @ self.kernel + self.bias)


@dataclass(frozen=True)
class Standardize:
    """Keras' Normalization layer: (x - mean) / max(sqrt(variance), epsilon)."""

    mean: np.ndarray
    variance: np.ndarray

    def __call__(self, a: np.ndarray) -> np.ndarray:
        return (a - self.mean) / np.maximum(np.sqrt(self.variance), EPSILON)


@dataclass(frozen=True)
class Features:
    """intuition.models.PlaygroundFeatures: the point's features, by the same formulas."""

    names: tuple[str, ...]

    def __call__(self, a: np.ndarray) -> np.ndarray:
        return playground.compute(a, self.names)


FEATURES_CLASS = ">".join(playground.KERAS_LAYER)  # its registered name, as config.json records it
WEIGHTED = {"Dense": "dense", "Normalization": "normalization"}  # class -> weights group prefix


def _weight_groups(config: dict) -> list[tuple[str | None, dict]]:
    """(weights group, layer config) per layer after the input, None for a layer without weights:
    Keras names the groups by class and position (dense, dense_1, ...; normalization)."""
    seen: dict[str, int] = {}
    groups = []
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "InputLayer":
            continue
        if layer.get("registered_name") == FEATURES_CLASS:
            groups.append((None, layer))
            continue
        kind = WEIGHTED.get(layer["class_name"])
        if kind is None:  # predicting without it would silently differ from Keras
            raise ValueError(f"layer {layer['class_name']} ({layer['config'].get('name')}): no NumPy "
                             f"version; known: {', '.join(WEIGHTED)}, {FEATURES_CLASS}")
        index = seen.get(kind, 0)
        seen[kind] = index + 1
        groups.append((kind if index == 0 else f"{kind}_{index}", layer))
    return groups


def load_layers(path: Path) -> list[Features | Standardize | DenseLayer]:
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
    layers = []
    for group, layer in _weight_groups(config):
        if group is None:
            layers.append(Features(tuple(layer["config"]["features"])))
            continue
        values = weights["layers"][group]["vars"]
        if layer["class_name"] == "Normalization":
            layers.append(Standardize(values["0"][()], values["1"][()]))
        else:
            layers.append(DenseLayer(values["0"][()], values["1"][()], layer["config"]["activation"]))
    return layers


def hidden_activations(layers: list, X: np.ndarray) -> list[np.ndarray]:
    """The output of every Dense layer for the points `X`, input to output."""
    a = np.asarray(X, dtype=np.float32)
    outputs = []
    for layer in layers:
        a = layer(a)
        if isinstance(layer, DenseLayer):
            outputs.append(a)
    return outputs


def class_probabilities(output: np.ndarray) -> np.ndarray:
    """The output layer's values (..., units) as class probabilities (..., n_classes): a single
    sigmoid unit's p becomes [1 - p, p]."""
    return np.concatenate([1 - output, output], axis=-1) if output.shape[-1] == 1 else output


def predict_proba(layers: list, X: np.ndarray) -> np.ndarray:
    """Class probabilities, shape (n, n_classes)."""
    return class_probabilities(hidden_activations(layers, X)[-1])
