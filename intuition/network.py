"""A saved Keras Sequential of Dense layers, evaluated with NumPy.

Metrics and plots need only the forward pass of a tiny MLP, which is a few matrix products;
importing TensorFlow for it would cost ~4 s per stage. This reads the `.keras` file itself
(its config and weights), so it predicts what the Keras model predicts (tests compare the two).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


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


def load_layers(path: Path) -> list[DenseLayer]:
    with zipfile.ZipFile(path) as archive:
        config = json.loads(archive.read("config.json"))
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
    dense = [layer["config"] for layer in config["config"]["layers"] if layer["class_name"] == "Dense"]
    layers = []
    # Keras names the weight groups by class and position: dense, dense_1, dense_2, ...
    for i, cfg in enumerate(dense):
        group = weights["layers"]["dense" if i == 0 else f"dense_{i}"]["vars"]
        layers.append(DenseLayer(group["0"][()], group["1"][()], cfg["activation"]))
    return layers


def predict_proba(layers: list[DenseLayer], X: np.ndarray) -> np.ndarray:
    """Class probabilities, shape (n, n_classes); a single sigmoid unit becomes [1 - p, p]."""
    a = np.asarray(X, dtype=np.float32)
    for layer in layers:
        a = ACTIVATIONS[layer.activation](a @ layer.kernel + layer.bias)
    if a.shape[1] == 1:
        a = np.hstack([1 - a, a])
    return a


def predict_grid(layers: list[DenseLayer], grid: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Class probabilities over a meshgrid, shape (rows, cols, n_classes)."""
    xx, yy = grid
    return predict_proba(layers, np.column_stack([xx.ravel(), yy.ravel()])).reshape(*xx.shape, -1)
