"""What every unit computes over the plotted region, and a relu network's linear regions.

A relu network is piecewise linear: each hidden unit is either off (output 0) or on (an affine
function of its inputs), so the on/off pattern of ALL hidden units picks one affine function of
the input. The points sharing a pattern form one linear region, a convex polygon (for a fixed
pattern every pre-activation is affine in x, so the region is an intersection of half-planes),
hence counting distinct patterns counts regions. Here they are counted over the plotted grid's
points and over the data points: a region that contains none of them is missed, so the grid
count is a lower bound, low by the most where regions are smaller than a grid cell. Measured on
the hard spiral's trained models (mean of 5 seeds): one relu layer of 100 (`_lr0001`) cuts the
plotted box into 4,922 regions (exact, from its lines), of which the 150x150 grid sees 882; for
4 layers of 100 the grid sees 11,800, a 1200x1200 grid 59,000 and still rising. The finer a
model's regions, the more the grid undercounts them, so compare models by it with care.

For comparison (Hanin & Rolnick 2019, "Deep ReLU networks have surprisingly few activation
patterns"): in a 2-D input space the number of regions grows about as the number of hidden
units squared, not exponentially with depth; one layer of N units in general position cuts the
whole plane into at most 1 + N + N(N-1)/2 regions. Sigmoid and tanh units are smooth, so such
networks have no linear regions: only their units' maps are shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from intuition.features import labels
from intuition.network import DenseLayer, Features, hidden_activations
from intuition.types import Grid


@dataclass(frozen=True)
class LayerMaps:
    """One Dense layer's units over the plotted grid (the output layer's are class probabilities)."""

    activation: str
    values: np.ndarray  # (rows, cols, units)

    @property
    def units(self) -> int:
        return self.values.shape[-1]


@dataclass(frozen=True)
class Regions:
    """The linear regions of a relu network, seen through the grid's and the data's points."""

    ids: np.ndarray  # (rows, cols) region of each grid point: 0 .. grid - 1
    grid: int  # distinct activation patterns of all hidden units over the grid's points
    data: int  # ... over the data points
    by_depth: tuple[int, ...]  # over the grid, of the units of layers 1..l jointly, for l = 1..L
    units: int  # hidden relu units

    @property
    def one_layer_bound(self) -> int:
        """The most regions one layer of `units` lines can cut the plane into: 1 + N + N(N-1)/2."""
        n = self.units
        return 1 + n + n * (n - 1) // 2


@dataclass(frozen=True)
class Inside:
    """One model looked inside: every layer's units over the grid, and its linear regions."""

    maps: tuple[LayerMaps, ...]  # every Dense layer, input to output
    piecewise_linear: bool  # hidden layers, all relu, on the point itself: it has linear regions
    regions: Regions | None  # counted when piecewise linear and every hidden output is finite
    no_regions: str = ""  # why there are no regions to show, as a figure says it ("" if there are)


# Playground features that are linear in the point: with only these the regions stay polygons.
LINEAR_FEATURES = {"x1", "x2"}


def why_not_piecewise_linear(layers: list) -> str:
    """"" when the network is piecewise linear in the point (x1, x2), else the reason in a phrase.
    Normalization is affine and changes nothing; the output layer is not counted (a softmax or
    sigmoid on the last affine piece moves no region's edge)."""
    hidden = [layer.activation for layer in layers if isinstance(layer, DenseLayer)][:-1]
    curved = [name for layer in layers if isinstance(layer, Features)
              for name in layer.names if name not in LINEAR_FEATURES]
    if not hidden:
        return "no hidden layer: one linear function of the point feeds the output, so there are no regions"
    if smooth := sorted({a for a in hidden if a != "relu"}):
        return (f"hidden activations {', '.join(smooth)} are not relu: the network is smooth, "
                "so it has no linear regions")
    if curved:
        return (f"the input features {', '.join(labels(curved))} are curved: relu patterns cut the "
                "plane along curves, so these are not linear regions and are not counted")
    return ""


def distinct(on: np.ndarray) -> tuple[int, np.ndarray]:
    """(points, units) on/off booleans -> the number of distinct rows and each row's index among
    them (deterministic: the sorted order of the packed patterns). Packing 8 units a byte and
    comparing each row as one opaque value keeps 22,500 points x 400 units to a few milliseconds."""
    packed = np.ascontiguousarray(np.packbits(on, axis=1))
    rows = packed.view(np.dtype((np.void, packed.shape[1]))).ravel()
    unique, ids = np.unique(rows, return_inverse=True)
    return len(unique), ids.ravel()


def _on(hidden: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([a > 0 for a in hidden], axis=1)


def count_regions(layers: list, X: np.ndarray) -> float:
    """The linear regions of a piecewise linear network seen through the points `X`: the distinct
    on/off patterns of all its hidden units (NaN if a hidden output is not finite)."""
    hidden = hidden_activations(layers, X)[:-1]
    if not all(np.isfinite(a).all() for a in hidden):
        return math.nan
    return float(distinct(_on(hidden))[0])


def look_inside(layers: list, grid: Grid, X: np.ndarray) -> Inside:
    """Every layer's units over the grid and, for a piecewise linear network, its regions over
    the grid's points and over the data points `X` (one forward pass each)."""
    outputs = hidden_activations(layers, grid.points)
    activations = [layer.activation for layer in layers if isinstance(layer, DenseLayer)]
    maps = tuple(LayerMaps(a, grid.reshape(values)) for a, values in zip(activations, outputs))
    if reason := why_not_piecewise_linear(layers):
        return Inside(maps, False, None, reason)
    hidden, data = outputs[:-1], hidden_activations(layers, X)[:-1]
    if not all(np.isfinite(a).all() for a in hidden + data):
        return Inside(maps, True, None, "the model's outputs are not finite: no activation pattern means anything")
    on = _on(hidden)
    widths = np.cumsum([a.shape[1] for a in hidden])
    count, ids = distinct(on)
    by_depth = tuple(distinct(on[:, :w])[0] for w in widths[:-1]) + (count,)
    return Inside(maps, True, Regions(grid.reshape(ids), count, distinct(_on(data))[0], by_depth, int(widths[-1])))
