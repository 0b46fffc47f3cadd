"""Small named types that cross module boundaries (instead of positional tuples and wide dicts)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


# history.csv's columns: per seed and epoch, the loss and accuracy on the fitted and validation rows.
HISTORY_COLUMNS = ("seed", "epoch", "loss", "accuracy", "val_loss", "val_accuracy")


@dataclass(frozen=True)
class Points:
    """Labelled 2-D points: raw coordinates `X` (n, 2) and class indices `y` (n,)."""

    X: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, rows) -> Points:
        return Points(self.X[rows], self.y[rows])


@dataclass(frozen=True)
class Splits:
    """A generated dataset as stored: the training rows (fit + validation) and the held-out test rows."""

    train: Points
    test: Points

    @property
    def all(self) -> Points:
        return Points(np.vstack([self.train.X, self.test.X]), np.concatenate([self.train.y, self.test.y]))


@dataclass(frozen=True)
class Grid:
    """A meshgrid over the plotted region: `xx`, `yy` of shape (rows, cols)."""

    xx: np.ndarray
    yy: np.ndarray

    @property
    def points(self) -> np.ndarray:
        """The grid's points as (rows * cols, 2), row-major: what a model predicts on."""
        return np.column_stack([self.xx.ravel(), self.yy.ravel()])

    def reshape(self, values: np.ndarray) -> np.ndarray:
        """Per-point values (rows * cols, ...) back onto the grid: (rows, cols, ...)."""
        return np.asarray(values).reshape(*self.xx.shape, *np.shape(values)[1:])


@dataclass(frozen=True)
class FitSplit:
    """The training rows cut as Keras' `validation_split` cuts them: fitted rows, then validation rows."""

    fit: Points
    val: Points


@dataclass(frozen=True)
class Snapshots:
    """Every seed's Dense weights at some epochs of training: epoch 0 is the untrained model, the
    last epoch the trained one. A seed that diverged has the weights it kept (its last finite
    epoch's) from then on, as its saved model has."""

    epochs: np.ndarray  # (n,) ascending
    kernels: list[np.ndarray]  # per Dense layer: (n, seeds, fan_in, units)
    biases: list[np.ndarray]  # per Dense layer: (n, seeds, units)
