"""Pure scoring: labels and probabilities in, numbers out (scikit-learn does the arithmetic)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, log_loss, precision_recall_fscore_support


def make_grid(X: np.ndarray, resolution: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """A meshgrid over the data's extent, padded by `margin` × its range on each side."""
    low, high = X.min(axis=0), X.max(axis=0)
    pad = (high - low) * margin
    axes = [np.linspace(lo, hi, resolution) for lo, hi in zip(low - pad, high + pad)]
    return np.meshgrid(*axes)


def scores(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    labels = np.arange(proba.shape[1])
    return {
        "accuracy": float(accuracy_score(y, proba.argmax(axis=1))),
        "log_loss": float(log_loss(y, proba, labels=labels)),
    }


def per_class(y: np.ndarray, predicted: np.ndarray, n_classes: int) -> dict[str, dict[str, float]]:
    precision, recall, f1, _ = precision_recall_fscore_support(
        y, predicted, labels=np.arange(n_classes), zero_division=0
    )
    return {
        str(k): {"precision": float(precision[k]), "recall": float(recall[k]), "f1": float(f1[k])}
        for k in range(n_classes)
    }


def confusion(y: np.ndarray, predicted: np.ndarray, n_classes: int) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    return confusion_matrix(y, predicted, labels=np.arange(n_classes))


def sharpness(grid_proba: np.ndarray) -> dict[str, float]:
    """How decided the model is over the plotted region: the mean winning-class probability
    (1 = crisp regions) and the mean entropy normalised to [0, 1] (0 = crisp)."""
    p = grid_proba.reshape(-1, grid_proba.shape[-1])
    entropy = -(p * np.log(np.clip(p, 1e-12, 1))).sum(axis=1) / np.log(p.shape[1])
    return {"mean_max_probability": float(p.max(axis=1).mean()), "mean_entropy": float(entropy.mean())}


def evaluation(splits: dict[str, tuple[np.ndarray, np.ndarray]], grid_proba: np.ndarray) -> dict:
    """Scores for every split (train/val/test: labels, probabilities), per-class scores on test,
    and the sharpness of the probability map."""
    result = {name: scores(y, proba) for name, (y, proba) in splits.items()}
    y_test, proba_test = splits["test"]
    result["test"]["per_class"] = per_class(y_test, proba_test.argmax(axis=1), proba_test.shape[1])
    result["sharpness"] = sharpness(grid_proba)
    return result
