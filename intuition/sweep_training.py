"""Train a group of sweep points (intuition.sweeps.groups) in one graph: points × seeds slices.

Imports Keras (and so TensorFlow): only sweep@ imports this, and only when a point must be trained.
Each slice is built exactly as train@ builds that experiment's seed (same initial weights, same
shuffles), so a point trains as the same experiment would alone; what differs per slice (learning
rate, l1, l2, inputs, features) is element-wise or ahead of the Dense layers (training.Slices).
"""

from __future__ import annotations

import time

import keras

from intuition.config import SweepPoint
from intuition.models import PlaygroundFeatures, build_model, encode_targets, optimizer_for
from intuition.network import DenseLayer, Features, Standardize
from intuition.sweeps import TrainedPoint
from intuition.training import FitData, Slices, train
from intuition.types import FitSplit


def numpy_layers(model: keras.Sequential) -> list:
    """A trained Keras model as the NumPy forward pass' layers (intuition.network)."""
    layers = []
    for layer in model.layers:
        if isinstance(layer, PlaygroundFeatures):
            layers.append(Features(tuple(layer.features)))
        elif isinstance(layer, keras.layers.Normalization):
            layers.append(Standardize(*(keras.ops.convert_to_numpy(v) for v in (layer.mean, layer.variance))))
        else:
            layers.append(DenseLayer(layer.kernel.numpy(), layer.bias.numpy(), layer.get_config()["activation"]))
    return layers


def train_group(points: list[SweepPoint], seeds: list[int], cut: FitSplit, label: str) -> dict[str, TrainedPoint]:
    """Every point × seed of one shape group, trained together; each point's share, by name."""
    spec, n = points[0].spec, len(seeds)
    models = [build_model(point.spec, seed, cut.fit.X) for point in points for seed in seeds]
    slices = sum((Slices.uniform(n, p.spec.learning_rate, p.spec.l1, p.spec.l2) for p in points[1:]),
                 Slices.uniform(n, spec.learning_rate, spec.l1, spec.l2))
    data = FitData(cut.fit.X, encode_targets(cut.fit.y, spec), cut.val.X, encode_targets(cut.val.y, spec))
    started = time.perf_counter()
    result = train(models, optimizer_for(spec), data, epochs=spec.epochs, batch_size=spec.batch_size,
                   seeds=seeds * len(points), binary=spec.is_binary, epochs_per_call=max(1, spec.epochs // 10),
                   snapshot_count=1, slices=slices)
    seconds = time.perf_counter() - started
    print(f"{label}: {len(points)} points x {n} seeds x {spec.epochs} epochs in {seconds:.1f} s", flush=True)
    trained = {}
    for i, point in enumerate(points):
        rows = result.history[result.history["seed"].between(i * n, i * n + n - 1)].copy()
        rows["seed"] -= i * n
        trained[point.name] = TrainedPoint(
            [numpy_layers(m) for m in models[i * n:(i + 1) * n]], rows.reset_index(drop=True),
            result.diverged_at[i * n:(i + 1) * n], round(seconds / len(points), 3))
    return trained

