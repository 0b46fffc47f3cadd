"""A sweep's points: which train together, what each trained, and what each scores. No TensorFlow.

A sweep (params.yaml `sweeps:`) is a base experiment and axes; its points are the cross product
(config.SweepSpec). sweep@<sweep> trains the points whose Dense layers have the same shapes in the
same ops (intuition.sweep_training), keeps each point's trained weights in its own file under
models/sweeps/<sweep>/ named by what it was trained from, so a point already trained is not
trained again, and scores every point here with the NumPy forward pass.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from intuition import files, metrics
from intuition.config import ExperimentSpec, SweepPoint, point_value
from intuition.inside import count_regions, why_not_piecewise_linear
from intuition.network import DenseLayer, Features, Standardize, class_probabilities, hidden_activations
from intuition.types import HISTORY_COLUMNS, FitSplit, Grid, Points

SWEEPS = Path("sweeps")  # under models/ and results/
# The code a trained point's weights come from: a change in any of these trains every point again.
TRAINING_CODE = ("intuition/training.py", "intuition/models.py", "intuition/sweep_training.py",
                 "intuition/datasets.py", "intuition/features.py")


def shape_key(spec: ExperimentSpec) -> tuple:
    """Points with the same key train in the same ops: they may differ only in what is element-wise
    per model (learning rate, l1, l2) or happens ahead of the Dense layers (inputs, features of the
    same count). The rest (data rows, Dense shapes, activations, optimizer, steps) must be shared."""
    return (spec.dataset, len(spec.features), tuple((l.units, l.activation) for l in spec.layers),
            spec.optimizer, spec.batch_size, spec.epochs, spec.validation_split)


def groups(points: list[SweepPoint]) -> list[list[SweepPoint]]:
    """The points by shape_key, in the order their first point appears."""
    by_key: dict[tuple, list[SweepPoint]] = {}
    for point in points:
        by_key.setdefault(shape_key(point.spec), []).append(point)
    return list(by_key.values())


def group_cost(group: list[SweepPoint]) -> float:
    """A group's training cost, roughly: slices x multiply-adds per row x steps."""
    spec = group[0].spec
    sizes = [len(spec.features)] + [layer.units for layer in spec.layers]
    return len(group) * sum(a * b for a, b in zip(sizes, sizes[1:])) * spec.epochs / spec.batch_size


def train_and_keep(group: list[SweepPoint], seeds: list[int], cut: FitSplit, paths: dict[str, Path], label: str) -> None:
    """In a worker process: train one group (this imports TensorFlow) and write each point's file."""
    from intuition.tensorflow_setup import import_tensorflow

    import_tensorflow()
    from intuition.sweep_training import train_group

    for name, trained in train_group(group, seeds, cut, label).items():
        write_trained(paths[name], trained)


def digest(paths) -> str:
    sha = hashlib.sha256()
    for path in paths:
        sha.update(Path(path).read_bytes())
    return sha.hexdigest()


def trained_names(group: list[SweepPoint], seeds: list[int], data_digest: str, code_digest: str) -> dict[str, str]:
    """The files a group's trained points live in: a hash of everything their weights come from
    (the group's specs in order, the seeds, the training rows' bytes, the training code), so a
    point is never taken from a different training. The group is part of it because the batched
    ops of a bigger group round differently (float32, ~1e-7 after 30 epochs; tests): a point is
    reused only where it would be trained again in the same group, so the same params give the
    same numbers, and adding a value to an axis that changes the Dense shapes (depth, width,
    activation, ...) trains only the new points' groups."""
    what = json.dumps({"group": [p.spec.model_dump() for p in group], "seeds": seeds, "data": data_digest,
                       "code": code_digest}, sort_keys=True)
    group_hash = hashlib.sha256(what.encode()).hexdigest()[:16]
    return {p.name: f"{group_hash}-{i}.npz" for i, p in enumerate(group)}


@dataclass(frozen=True)
class TrainedPoint:
    """One point's seeds as trained: their final layers (NumPy forward pass), per-epoch history
    (HISTORY_COLUMNS, seed = index), and the epoch each seed's loss stopped being finite."""

    layers: list[list]  # per seed: [Features?, Standardize?, DenseLayer, ...]
    history: pd.DataFrame
    diverged_at: list[int | None]
    seconds: float  # its share of its group's training time


def write_trained(path: Path, point: TrainedPoint) -> None:
    """One .npz per point: the fixed layers ahead of the Dense ones (the same for every seed),
    each seed's Dense weights, the history and divergences."""
    first = point.layers[0]
    dense = [[layer for layer in seed if isinstance(layer, DenseLayer)] for seed in point.layers]
    arrays = {
        "history": point.history[list(HISTORY_COLUMNS)].to_numpy(np.float64),
        "diverged_at": np.array([-1 if d is None else d for d in point.diverged_at]),
        "seconds": np.array(point.seconds),
        "features": np.array([n for layer in first if isinstance(layer, Features) for n in layer.names]),
        "activations": np.array([layer.activation for layer in dense[0]]),
    }
    for layer in first:
        if isinstance(layer, Standardize):
            arrays |= {"mean": layer.mean, "variance": layer.variance}
    for j in range(len(dense[0])):
        arrays[f"kernel_{j}"] = np.stack([seed[j].kernel for seed in dense])
        arrays[f"bias_{j}"] = np.stack([seed[j].bias for seed in dense])
    with files.atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)


def read_trained(path: Path) -> TrainedPoint:
    with np.load(path, allow_pickle=False) as data:
        ahead = [Features(tuple(data["features"].tolist()))] if data["features"].size else []
        if "mean" in data.files:
            ahead.append(Standardize(data["mean"], data["variance"]))
        activations = data["activations"].tolist()
        layers = [ahead + [DenseLayer(data[f"kernel_{j}"][s], data[f"bias_{j}"][s], activation)
                           for j, activation in enumerate(activations)]
                  for s in range(len(data["diverged_at"]))]
        history = pd.DataFrame(data["history"], columns=list(HISTORY_COLUMNS)).astype({"seed": int, "epoch": int})
        diverged = [None if d < 0 else int(d) for d in data["diverged_at"]]
        return TrainedPoint(layers, history, diverged, float(data["seconds"]))


# --- Scoring a point: every seed over the splits and the plotted grid (NumPy) -------------------


@dataclass(frozen=True)
class ScoredPoint:
    per_seed: pd.DataFrame  # metrics.seed_row (+ regions.grid, regions.data for relu networks)
    summary: dict  # metrics.summarise: as an experiment's metrics.json
    grid_probas: np.ndarray  # (seeds, rows, cols, classes)
    rep: int  # the representative seed (metrics.representative_seed)
    test_pred: np.ndarray  # its predicted class of each test point


def score(trained: TrainedPoint, labelled: dict[str, Points], grid: Grid, all_points: np.ndarray) -> ScoredPoint:
    """What an experiment's evaluate@ scores, less the per-seed figures: accuracy and log loss per
    split, sharpness over the grid, whether each seed learned, linear regions (relu networks)."""
    untrained = trained.history[trained.history["epoch"] == 0].set_index("seed")["loss"]
    rows, grid_probas, test_preds = [], [], []
    for i, layers in enumerate(trained.layers):
        probas = {split: class_probabilities(hidden_activations(layers, points.X)[-1])
                  for split, points in labelled.items()}
        grid_proba = grid.reshape(class_probabilities(hidden_activations(layers, grid.points)[-1]))
        row = {"seed": i, **metrics.seed_row(labelled, probas, grid_proba, untrained[i], trained.diverged_at[i])}
        if not why_not_piecewise_linear(layers):
            row |= {"regions.grid": count_regions(layers, grid.points), "regions.data": count_regions(layers, all_points)}
        rows.append(row)
        grid_probas.append(grid_proba)
        test_preds.append(probas["test"].argmax(axis=1))
    per_seed, grid_probas = pd.DataFrame(rows), np.stack(grid_probas)
    summary = metrics.summarise(per_seed, metrics.agreement(grid_probas))
    rep = summary["representative_seed"]
    return ScoredPoint(per_seed, summary, grid_probas, rep, test_preds[rep])


def _stat(summary: dict, group: str, name: str, stat: str = "mean") -> float:
    return summary.get(group, {}).get(name, {}).get(stat, math.nan)


def point_row(point: SweepPoint, summary: dict) -> dict:
    """A point's line in points.csv: its axis values, then the aggregates over seeds."""
    values = {knob: point_value(v) for knob, v in point.values.items()}  # as in the point's name
    return {
        "point": point.name, **values,
        "test_accuracy": _stat(summary, "test", "accuracy"), "test_accuracy_sd": _stat(summary, "test", "accuracy", "sd"),
        "sharpness": _stat(summary, "sharpness", "mean_max_probability"),
        "sharpness_sd": _stat(summary, "sharpness", "mean_max_probability", "sd"),
        "agreement": summary["agreement"]["all_seeds_agree"],
        "regions_grid": _stat(summary, "regions", "grid"), "regions_grid_sd": _stat(summary, "regions", "grid", "sd"),
        "learned_seeds": summary["learned_seeds"], "diverged_seeds": summary["diverged_seeds"],
        "seeds": summary["seeds"],
    }


def sweep_metrics(points: pd.DataFrame) -> dict:
    """metrics.json of a sweep, small enough to read in `dvc metrics show`: how many points, how
    many learned in every seed, the best point by mean test accuracy and the range of the means."""
    best = points.loc[points["test_accuracy"].idxmax()] if points["test_accuracy"].notna().any() else None
    return {
        "points": len(points), "seeds": int(points["seeds"].max()),
        "learned_in_every_seed": int((points["learned_seeds"] == points["seeds"]).sum()),
        "test_accuracy": {"best": float(best["test_accuracy"]) if best is not None else math.nan,
                          "worst": float(points["test_accuracy"].min())},
        "best_point": best["point"] if best is not None else "",
    }


def sweep_headline(points: pd.DataFrame) -> dict:
    """headline.json of a sweep, a line in `dvc metrics show` beside the experiments': its best
    point's accuracy, sharpness and agreement (as metrics.Headline), `learned` counting the points
    that learned in every seed, and which point is best."""
    best = points.loc[points["test_accuracy"].idxmax()] if points["test_accuracy"].notna().any() else None
    learned = int((points["learned_seeds"] == points["seeds"]).sum())

    def of_best(column: str) -> float:
        return round(float(best[column]), metrics.HEADLINE_DECIMALS) if best is not None else math.nan

    return {"test_accuracy": of_best("test_accuracy"), "test_accuracy_sd": of_best("test_accuracy_sd"),
            "sharpness": of_best("sharpness"), "agreement": of_best("agreement"),
            "learned": f"{learned}/{len(points)}", "best_point": best["point"] if best is not None else ""}


# --- A point that is an experiment too: the same numbers, to what training in a group allows -------


@dataclass(frozen=True)
class Twin:
    """A sweep point whose spec and seeds are an experiment's, and their mean test accuracies."""

    point: str  # config.point_key
    experiment: str
    point_mean: float
    experiment_mean: float
    tolerance: float  # the larger sd over seeds of the two

    @property
    def agrees(self) -> bool:
        return abs(self.point_mean - self.experiment_mean) <= self.tolerance + 1e-9


def twins(specs: dict[str, ExperimentSpec], experiments: dict[str, ExperimentSpec]) -> dict[str, str]:
    """Sweep point key -> the experiment with the same spec (specs: config.Params.specs())."""
    by_spec = {spec.model_dump_json(): key for key, spec in experiments.items()}
    return {key: by_spec[spec.model_dump_json()] for key, spec in specs.items()
            if key not in experiments and spec.model_dump_json() in by_spec}


def compare_twin(point: str, experiment: str, per_seed: dict[str, pd.DataFrame]) -> Twin:
    """A point trained in a group differs from its experiment trained alone only by the float32
    rounding of bigger batched sums (1e-7 after 30 epochs); over 500 epochs a chaotic seed can
    amplify that into another trajectory, but no further than seeds differ from each other: the
    tolerance on the mean test accuracy is one sd over seeds."""
    a, b = (per_seed[key]["test.accuracy"].astype(float) for key in (point, experiment))
    return Twin(point, experiment, float(a.mean()), float(b.mean()), float(max(a.std(ddof=1), b.std(ddof=1), 0.0)))
