"""The measurements behind the literature findings (findings.yaml, `source: literature`): what shape a
model's decision regions take, how confident it is far from the data, how fast it learns, and how
its linear regions grow through training. Pure: arrays in, numbers out.

- Enclosed regions (Beise, Da Cruz & Schröder 2018; Johnson, ICLR 2019): a network whose hidden
  layers are all at most as wide as its input cannot enclose a bounded region; every connected
  region of a class reaches infinity. On the plotted grid, a bounded region is a connected
  component of one class's cells that does not touch the grid's border (the grid is a box around
  the data, so an unbounded region must leave it). Counted with scipy's `ndimage.label`.
- Confidence far away (Hein, Andriushchenko & Bitterwolf, CVPR 2019): a relu network is affine on
  each of its finitely many linear regions, so along almost every ray its logits grow linearly and
  its top-class probability tends to 1. Measured as the mean top probability on circles around the
  data's centre at FAR_SCALES times the data's radius.
- Epochs to learn (spectral bias, Rahaman et al., ICML 2019): the first epoch at which the running
  training accuracy of an epoch (history.csv's `accuracy`, on the fitted rows) reaches a level;
  epochs + 1 when it never does.
- Linear regions per N² (Hanin & Rolnick, NeurIPS 2019): regions counted on the grid at each stored
  snapshot, divided by the square of the number of hidden relu units.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import ndimage

from intuition.network import predict_proba

FAR_SCALES = (10, 100)  # ring radius as a multiple of the data's radius around its centre
FAR_POINTS = 360  # points on each ring, one per degree
LEARNED_LEVEL = 0.9  # "epochs to learn": the first epoch whose training accuracy reaches this


def enclosed_regions(classes: np.ndarray) -> int:
    """The number of connected regions (4-neighbour cells of one predicted class) on a (rows, cols)
    grid of class indices that do not touch the grid's border: the bounded decision regions."""
    enclosed = 0
    for k in np.unique(classes):
        labelled, count = ndimage.label(classes == k)
        border = np.unique(np.concatenate([labelled[0], labelled[-1], labelled[:, 0], labelled[:, -1]]))
        enclosed += count - len(set(border.tolist()) - {0})
    return enclosed


def far_rings(X: np.ndarray, scales: tuple[int, ...] = FAR_SCALES, n: int = FAR_POINTS) -> dict[int, np.ndarray]:
    """For each scale s, `n` points evenly spaced on the circle around the data's centre (the middle
    of its bounding box) whose radius is s times the data's radius (its farthest point's distance
    from that centre): {s: (n, 2) points}."""
    centre = (X.min(axis=0) + X.max(axis=0)) / 2
    radius = float(np.hypot(*(X - centre).T).max())
    angle = np.linspace(0, 2 * np.pi, n, endpoint=False)
    unit = np.column_stack([np.cos(angle), np.sin(angle)])
    return {s: centre + s * radius * unit for s in scales}


def top_probability(proba: np.ndarray) -> float:
    """The mean winning-class probability of (points, classes) probabilities; NaN if not finite."""
    if not np.all(np.isfinite(proba)):
        return math.nan
    return float(proba.max(axis=1).mean())


def epochs_to_accuracy(history: pd.DataFrame, seed: int, level: float = LEARNED_LEVEL) -> float:
    """The first epoch at which `seed`'s training accuracy (history.csv `accuracy`) reaches `level`.
    A seed that never does within the epochs it trained gets that number + 1: a lower bound (it
    needed more than it had), so "slower than" stays comparable; README says so."""
    rows = history[(history["seed"] == seed) & (history["accuracy"] >= level)]
    return float(rows["epoch"].min()) if len(rows) else float(history["epoch"].max() + 1)


def regions_per_n2(counts: np.ndarray, units: int) -> np.ndarray:
    """Linear regions divided by the square of the number of hidden units (Hanin & Rolnick's scale)."""
    return np.asarray(counts, dtype=float) / units**2


# The per-seed columns these measurements add to seeds.csv (aggregated over seeds in metrics.json);
# the regions-per-N² band only for networks with linear regions.
COLUMNS = ["geometry.enclosed_regions"] + [f"far.top_probability_{s}x" for s in FAR_SCALES] + [
    f"train.epochs_to_{round(LEARNED_LEVEL * 100)}pct"]
# Linear regions through training: counted on the plotted grid at REGION_SNAPSHOTS of the stored
# snapshots, spread evenly over them (epoch 0 and the last included), for every seed. All 30 would
# cost ~16 s for the 4x100 network's five seeds (a grid forward pass is ~0.1 s); these 8 cost ~4 s.
REGION_SNAPSHOTS = 8
REGIONS_BAND = ["regions.untrained_per_n2", "regions.max_per_n2", "regions.trained_per_n2"]


def seed_row(layers: list, grid_proba: np.ndarray, X: np.ndarray, history: pd.DataFrame, seed: int) -> dict[str, float]:
    """One seed's literature measurements: its bounded regions on the plotted grid (NaN if its
    probabilities are not finite), its top probability on the far rings around the data `X`, and
    the epochs it took to reach LEARNED_LEVEL training accuracy."""
    finite = bool(np.all(np.isfinite(grid_proba)))
    row = {"geometry.enclosed_regions": float(enclosed_regions(grid_proba.argmax(axis=-1))) if finite else math.nan}
    with np.errstate(over="ignore"):  # saturated sigmoids far away: exp overflows to 0 or 1, as intended
        row |= {f"far.top_probability_{s}x": top_probability(predict_proba(layers, ring))
                for s, ring in far_rings(X).items()}
    row[COLUMNS[-1]] = epochs_to_accuracy(history, seed)
    return row


def counted_snapshots(n_snapshots: int, n: int = REGION_SNAPSHOTS) -> np.ndarray:
    """Indices of `n` of `n_snapshots` snapshots, evenly spread, the first and last included."""
    return np.unique(np.round(np.linspace(0, n_snapshots - 1, min(n, n_snapshots))).astype(int))


def regions_band(counts: np.ndarray, units: int) -> dict[str, float]:
    """Regions / N² of one seed at its counted snapshots (epoch 0 first, the last epoch last): at
    epoch 0, the highest over the snapshots, and at the last epoch (NaN where the count is NaN:
    after the seed diverged)."""
    ratio = regions_per_n2(counts, units)
    finite = ratio[np.isfinite(ratio)]
    return {"regions.untrained_per_n2": float(ratio[0]),
            "regions.max_per_n2": float(finite.max()) if len(finite) else math.nan,
            "regions.trained_per_n2": float(ratio[-1])}
