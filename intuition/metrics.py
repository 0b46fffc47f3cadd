"""Pure scoring: labels and probabilities in, numbers out (scikit-learn and SciPy do the arithmetic)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, log_loss

from intuition.types import Grid, Points

if TYPE_CHECKING:  # annotations only: intuition.inside counts the regions
    from intuition.inside import Inside

SPLITS = ("train", "val", "test")
AGGREGATED = [f"{split}.{name}" for split in SPLITS for name in ("accuracy", "log_loss")] + [
    "sharpness.mean_max_probability", "sharpness.mean_entropy"]
# Linear regions (intuition.inside): distinct on/off patterns of all hidden units over the plotted
# grid and over the data points. Only networks with linear regions (hidden layers all relu) have
# these columns; for the others they are left out, not written as NaN.
REGIONS = ["regions.grid", "regions.data"]
# A seed "learned" when its final model (evaluated on the rows it was fitted on) has a finite
# loss no higher than the untrained model's (epoch 0), and an accuracy at least LEARNING_MARGIN
# above chance (the majority class's share of those rows). Otherwise it failed to learn: the loss
# exploded, or it predicts no better than always answering the commonest class.
LEARNING_MARGIN = 0.05


def make_grid(X: np.ndarray, resolution: int, margin: float) -> Grid:
    """A meshgrid over the data's extent, padded by `margin` x its range on each side."""
    low, high = X.min(axis=0), X.max(axis=0)
    pad = (high - low) * margin
    axes = [np.linspace(lo, hi, resolution) for lo, hi in zip(low - pad, high + pad)]
    return Grid(*np.meshgrid(*axes))


def scores(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    if not np.all(np.isfinite(proba)):  # a diverged model: no score is meaningful
        return {"accuracy": math.nan, "log_loss": math.nan}
    labels = np.arange(proba.shape[1])
    return {
        "accuracy": float(accuracy_score(y, proba.argmax(axis=1))),
        "log_loss": float(log_loss(y, proba, labels=labels)),
    }


def confusion(y: np.ndarray, predicted: np.ndarray, n_classes: int) -> pd.DataFrame:
    """Rows are true classes, columns predicted classes."""
    matrix = confusion_matrix(y, predicted, labels=np.arange(n_classes))
    return pd.DataFrame(matrix, columns=[f"predicted_{k}" for k in range(n_classes)])


def sharpness(grid_proba: np.ndarray) -> dict[str, float]:
    """How decided the model is over the plotted region: the mean winning-class probability
    (1 = crisp regions) and the mean entropy normalised to [0, 1] (0 = crisp)."""
    p = grid_proba.reshape(-1, grid_proba.shape[-1])
    entropy = -(p * np.log(np.clip(p, 1e-12, 1))).sum(axis=1) / np.log(p.shape[1])
    return {"mean_max_probability": float(p.max(axis=1).mean()), "mean_entropy": float(entropy.mean())}


def chance(y: np.ndarray) -> float:
    """The accuracy of always answering the commonest class."""
    return float(np.bincount(y).max() / len(y))


def learned(final_train_loss: float, untrained_loss: float, train_accuracy: float, chance_accuracy: float) -> bool:
    return bool(np.isfinite(final_train_loss) and final_train_loss <= untrained_loss
                and train_accuracy >= chance_accuracy + LEARNING_MARGIN)


def seed_row(labelled: dict[str, Points], probas: dict[str, np.ndarray], grid_proba: np.ndarray,
             untrained_loss: float, diverged_at: int | None) -> dict[str, float]:
    """One seed's final metrics, flattened: `train.accuracy`, `test.log_loss`, `sharpness.*`,
    `learned`, `diverged_at_epoch` (NaN when it did not diverge)."""
    row = {f"{split}.{name}": value for split in SPLITS
           for name, value in scores(labelled[split].y, probas[split]).items()}
    row |= {f"sharpness.{k}": v for k, v in sharpness(grid_proba).items()} if np.all(np.isfinite(grid_proba)) \
        else {"sharpness.mean_max_probability": math.nan, "sharpness.mean_entropy": math.nan}
    row["learned"] = learned(row["train.log_loss"], untrained_loss, row["train.accuracy"], chance(labelled["train"].y))
    row["diverged_at_epoch"] = math.nan if diverged_at is None else diverged_at
    return row


def region_row(inside: Inside) -> dict[str, float]:
    """One seed's `regions.grid` and `regions.data` (NaN if its outputs are not finite); nothing
    for a network without linear regions (smooth hidden units, no hidden layer, curved features)."""
    if not inside.piecewise_linear:
        return {}
    counts = inside.regions
    return {"regions.grid": counts.grid if counts else math.nan, "regions.data": counts.data if counts else math.nan}


def representative_seed(per_seed: pd.DataFrame) -> int:
    """The seed whose final validation loss is the median of the seeds that kept a finite loss (the
    lower middle one for an even count): its model stands for the experiment in figures. If every
    seed diverged, the first."""
    finite = per_seed[np.isfinite(per_seed["val.log_loss"].to_numpy(float))]
    if finite.empty:
        return int(per_seed["seed"].iloc[0])
    order = finite.sort_values(["val.log_loss", "seed"])["seed"].tolist()
    return int(order[(len(order) - 1) // 2])


def value_range(column: str) -> tuple[float, float]:
    """What a metric column of seeds.csv can possibly be: every one is a count, a loss, a share or
    a probability, so none is negative, and accuracies and probabilities are at most 1."""
    bounded = any(word in column for word in ("accuracy", "probability", "agree"))
    return 0.0, (1.0 if bounded else math.inf)


def interval95(values: np.ndarray, possible: tuple[float, float] = (-math.inf, math.inf)) -> tuple[float, float]:
    """Student-t 95 % interval of the mean over seeds, mean ± t(0.975, n-1) · sd / sqrt(n), clipped
    to the `possible` range of the metric (five seeds at 0.99 ± 0.01 would otherwise reach past
    1). With one seed there is no spread to estimate: the interval is the value itself."""
    from scipy.stats import t

    n, mean = len(values), float(np.mean(values))
    if n < 2:
        return mean, mean
    half = float(t.ppf(0.975, n - 1) * standard_deviation(values) / math.sqrt(n))
    return max(mean - half, possible[0]), min(mean + half, possible[1])


def standard_deviation(values: np.ndarray) -> float:
    """The sample sd over seeds; exactly 0 when every seed has the same value (NumPy's answer
    then is a rounding residue such as 1.2e-16, which reads as a spread)."""
    if len(values) < 2 or np.ptp(values) == 0:
        return 0.0
    return float(np.std(values, ddof=1))


def aggregate(per_seed: pd.DataFrame, columns: list[str]) -> dict:
    """{"test": {"accuracy": {"mean", "sd", "min", "max", "ci95_low", "ci95_high"}}, ...} over
    the seeds (NaN seeds, i.e. diverged ones, are left out of the statistics and counted apart)."""
    tree: dict = {}
    for column in columns:
        values = per_seed[column].to_numpy(float)
        values = values[np.isfinite(values)]
        split, name = column.split(".", 1)
        if not len(values):
            continue
        low, high = interval95(values, value_range(column))
        tree.setdefault(split, {})[name] = {
            "mean": float(values.mean()), "sd": standard_deviation(values),
            "min": float(values.min()), "max": float(values.max()), "ci95_low": low, "ci95_high": high,
        }
    return tree


@dataclass(frozen=True)
class Agreement:
    """Where the seeds agree over the plotted grid. A seed votes when its probabilities are finite
    over the whole grid; a seed with any NaN/inf output there has no vote at any point, so every
    point has the same voters. (A seed that diverged in training keeps its last finite weights:
    it usually still votes.)"""

    majority: np.ndarray  # (rows, cols): how many voting seeds predict the class most of them predict there
    voting: int  # how many seeds voted
    seeds: int  # how many seeds there are
    all_agree: float  # the share of the grid's points where every voting seed predicts one class; NaN: none voted


def agreement(grid_probas: np.ndarray) -> Agreement:
    """(seeds, rows, cols, classes) probabilities -> where the voting seeds agree: the one
    definition that metrics.json, the leaderboard and the seed-agreement figure show."""
    grid_probas = np.asarray(grid_probas, dtype=float)
    voting = grid_probas[np.isfinite(grid_probas).all(axis=(1, 2, 3))]
    votes = np.argmax(voting, axis=-1)  # (voting seeds, rows, cols)
    majority = np.stack([(votes == c).sum(axis=0) for c in range(grid_probas.shape[-1])]).max(axis=0)
    all_agree = float((majority == len(voting)).mean()) if len(voting) else math.nan
    return Agreement(majority, len(voting), len(grid_probas), all_agree)


def summarise(per_seed: pd.DataFrame, agreed: Agreement) -> dict:
    """metrics.json: how many seeds learned or diverged, the representative seed, the aggregates
    over seeds of every metric column of seeds.csv (`<group>.<name>`: AGGREGATED, the REGIONS
    counts if any, and intuition.geometry's measurements), how much of the region all voting seeds
    agree on, and how many voted."""
    return {
        "seeds": len(per_seed), "learned_seeds": int(per_seed["learned"].sum()),
        "diverged_seeds": int(per_seed["diverged_at_epoch"].notna().sum()),
        "representative_seed": representative_seed(per_seed),
        **aggregate(per_seed, [column for column in per_seed.columns if "." in column]),
        "agreement": {"all_seeds_agree": agreed.all_agree, "voting_seeds": agreed.voting},
    }


# A status a reader can trust at a glance. "failed": some seed failed to learn (see `learned`);
# "poor": every seed learned, yet the mean test accuracy is less than halfway from chance (always
# answering the test set's commonest class) to perfect, e.g. below 0.75 on two balanced classes,
# below 0.67 on three; "ok" otherwise.
STATUSES = ("ok", "poor", "failed")


def grade(summary: dict, chance_accuracy: float) -> str:
    if summary["learned_seeds"] < summary["seeds"]:
        return "failed"
    accuracy = summary.get("test", {}).get("accuracy", {}).get("mean", math.nan)
    return "poor" if not accuracy >= (1 + chance_accuracy) / 2 else "ok"


HEADLINE_DECIMALS = 3  # as the leaderboard shows them; metrics.json keeps SIGNIFICANT_DIGITS


@dataclass(frozen=True)
class Headline:
    """headline.json: the numbers a reader compares between experiments, one line of `dvc metrics
    show` each (metrics.json has every aggregate; seeds.csv every seed)."""

    test_accuracy: float  # mean over seeds
    test_accuracy_sd: float  # sd over seeds
    sharpness: float  # mean over seeds of the mean winning-class probability over the plotted region
    agreement: float  # share of that region where every voting seed predicts one class
    learned: str  # "4/5": seeds that learned, of all
    status: str  # one of STATUSES

    def as_dict(self) -> dict:
        return {name: round(value, HEADLINE_DECIMALS) if isinstance(value, float) and math.isfinite(value) else value
                for name, value in self.__dict__.items()}


def headline(summary: dict, chance_accuracy: float) -> Headline:
    """metrics.json in six numbers, with its grade."""
    def mean_sd(group: str, name: str) -> tuple[float, float]:
        stats = summary.get(group, {}).get(name, {})
        return stats.get("mean", math.nan), stats.get("sd", math.nan)

    accuracy, accuracy_sd = mean_sd("test", "accuracy")
    return Headline(accuracy, accuracy_sd, mean_sd("sharpness", "mean_max_probability")[0],
                    summary["agreement"]["all_seeds_agree"], f"{summary['learned_seeds']}/{summary['seeds']}",
                    grade(summary, chance_accuracy))
