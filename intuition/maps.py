"""Figures of a sweep, a grid of experiments over knobs (e.g. depth × width × inputs): pure
functions, a table of sweep points in, a matplotlib Figure (or a plot's table) out.

- `phase_diagram`: a heatmap of one metric (mean test accuracy or sharpness over seeds) with one
  knob down and another across, one panel per combination of the remaining knobs;
  `phase_diagrams` draws it for every pair of knobs and both metrics.
- `small_multiples`: every point's decision regions (its representative seed) in a knob × knob
  grid, as scikit-learn's classifier comparison lays them out.
- `accuracy_lines`: the table of a DVC plot of test accuracy against the first knob.

`points` has one row per sweep point: `point` (its name), one column per knob (named by the knob),
and the aggregates over seeds `test_accuracy`, `test_accuracy_sd`, `sharpness`, `sharpness_sd`,
`learned_seeds`, `seeds`. A knob's values are shown in the order they first appear in `points`
(the order the user wrote them), never sorted. No file I/O: the caller saves the figures.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from intuition.figures import RegionsView, _accuracy_note, _class_handles, _draw_regions, _marker_handles  # noqa: E402

METRICS = {  # metric column -> (what the title calls it, the colourbar's label)
    "test_accuracy": ("mean test accuracy", "test accuracy (mean over seeds)"),
    "sharpness": ("mean sharpness (winning-class probability over the plotted grid)",
                  "sharpness (mean winning-class probability)"),
}
HEAT_CMAP = matplotlib.colormaps["viridis"]
FAILED = "red"  # a point where some seed failed to learn: its cell's border, its panel's note
PANELS_PER_ROW = 3


# --- The named pieces ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Facet:
    """One combination of the knobs a figure does not show on its rows and columns."""

    knobs: tuple[tuple[str, object], ...]  # (knob, value) pairs; () when every knob is on the rows/columns

    @property
    def label(self) -> str:
        return ", ".join(_knob(axis, value) for axis, value in self.knobs)

    def select(self, points: pd.DataFrame) -> pd.DataFrame:
        mask = np.ones(len(points), dtype=bool)
        for axis, value in self.knobs:
            mask &= (points[axis] == value).to_numpy()
        return points[mask]


@dataclass(frozen=True)
class Heatmap:
    """What every panel of a phase diagram shares: its rows, columns, metric and colour scale."""

    rows: str
    cols: str | None  # None: a one-knob sweep, one column
    row_values: tuple
    col_values: tuple  # (None,) when cols is None
    metric: str
    norm: Normalize


# --- Small helpers -------------------------------------------------------------------------------


def _knob(axis: str, value) -> str:
    return f"{axis}={value}"


def _values(points: pd.DataFrame, axis: str | None) -> tuple:
    """The knob's values in the order they first appear (the user's order); (None,) for no knob."""
    return (None,) if axis is None else tuple(pd.unique(points[axis]))


def _point_at(points: pd.DataFrame, knobs: Mapping[str, object]) -> pd.Series | None:
    """The one point with these knob values, or None; more than one means a knob is not fixed."""
    found = Facet(tuple((a, v) for a, v in knobs.items() if a is not None)).select(points)
    if len(found) > 1:
        raise ValueError(f"{len(found)} points at {dict(knobs)}: {list(found['point'])}; "
                         "fix the other knobs (one facet's points)")
    return None if found.empty else found.iloc[0]


def _facets(points: pd.DataFrame, rest: Sequence[str]) -> list[Facet]:
    """Every combination of the `rest` knobs that has a point, in the user's order."""
    combos = itertools.product(*(_values(points, axis) for axis in rest))
    facets = [Facet(tuple(zip(rest, combo))) for combo in combos]
    return [facet for facet in facets if not facet.select(points).empty]


def _check_axes(axes: Sequence[str], rows: str | None, cols: str | None) -> None:
    shown = [axis for axis in (rows, cols) if axis is not None]
    if not shown or any(axis not in axes for axis in shown) or rows == cols:
        raise ValueError(f"rows {rows!r} and cols {cols!r} must be two different knobs of {list(axes)}")
    if len(shown) == 1 and len(axes) > 1:
        raise ValueError(f"rows or cols is None only for a one-knob sweep; the knobs are {list(axes)}")


def _failed(point: pd.Series) -> bool:
    return int(point["learned_seeds"]) < int(point["seeds"])


def _learned_note(point: pd.Series) -> str:
    return f"{int(point['learned_seeds'])}/{int(point['seeds'])} learned"


def _seeds_note(points: pd.DataFrame) -> str:
    low, high = int(points["seeds"].min()), int(points["seeds"].max())
    return f"{high} seed{'s' if high > 1 else ''}" if low == high else f"{low}–{high} seeds"


def _norm(values: pd.Series) -> Normalize:
    """0..1 metrics on a scale from just below the lowest point (to 0.05) up to 1, for every panel."""
    finite = values[np.isfinite(values.astype(float))]
    low = 0.0 if finite.empty else np.floor(float(finite.min()) * 20) / 20
    return Normalize(vmin=min(low, 0.95), vmax=1.0)


def _ink(rgba) -> str:
    """Black text on a light cell, white on a dark one."""
    r, g, b = rgba[:3]
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


# --- Phase diagrams ------------------------------------------------------------------------------


def _cell(ax, heat: Heatmap, point: pd.Series, r: int, c: int) -> None:
    """One point's cell: the mean, `± sd` below it, and a red border and `k/n learned` if some
    seed failed to learn. The cell's centre is (c, r) in data coordinates."""
    mean, sd = float(point[heat.metric]), float(point[f"{heat.metric}_sd"])
    ink = _ink(HEAT_CMAP(heat.norm(mean))) if np.isfinite(mean) else "black"
    ax.text(c, r, f"{mean:.3f}" if np.isfinite(mean) else "n/a", ha="center", va="bottom", color=ink,
            fontsize="medium", weight="bold")
    if np.isfinite(sd):
        ax.text(c, r, f"± {sd:.3f}", ha="center", va="top", color=ink, fontsize="small")
    if _failed(point):
        ax.add_patch(Rectangle((c - 0.45, r - 0.45), 0.9, 0.9, fill=False, ec=FAILED, lw=2.5))
        ax.text(c, r - 0.4, _learned_note(point), ha="center", va="top", color=FAILED, fontsize="x-small",
                weight="bold", bbox=dict(fc="white", ec="none", alpha=0.85, pad=1))


def _heatmap(ax, heat: Heatmap, points: pd.DataFrame, title: str):
    """One panel; a combination with no point is a blank (NaN) cell. Returns the image."""
    cells = [[_point_at(points, {heat.rows: rv, heat.cols: cv}) for cv in heat.col_values]
             for rv in heat.row_values]
    matrix = np.array([[np.nan if p is None else float(p[heat.metric]) for p in row] for row in cells])
    image = ax.imshow(matrix, cmap=HEAT_CMAP, norm=heat.norm, aspect="auto")
    for r, row in enumerate(cells):
        for c, point in enumerate(row):
            if point is not None:
                _cell(ax, heat, point, r, c)
    ax.set_yticks(range(len(heat.row_values)), [str(v) for v in heat.row_values])
    cols = heat.cols is not None
    ax.set_xticks(range(len(heat.col_values)) if cols else [], [str(v) for v in heat.col_values] if cols else [])
    ax.set(ylabel=heat.rows, xlabel=heat.cols or "", title=title)
    return image


def _panels(fig: Figure, n: int) -> list:
    """n axes, PANELS_PER_ROW to a row; the unused places of the last row are removed."""
    n_cols = min(n, PANELS_PER_ROW)
    axes = list(fig.subplots(-(-n // n_cols), n_cols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.remove()
    return axes[:n]


def _layout(rows: str, cols: str | None, rest: Sequence[str]) -> str:
    shown = [f"rows {rows}"] + ([f"columns {cols}"] if cols else [])
    return ", ".join(shown + ([f"a panel per {', '.join(rest)}"] if rest else []))


def phase_diagram(points: pd.DataFrame, axes: Sequence[str], rows: str, cols: str | None, metric: str,
                  sweep: str) -> Figure:
    """A heatmap of `metric` (a column of METRICS), knob `rows` down and knob `cols` across, one
    panel per combination of the other knobs, all on one colour scale. Each cell: the mean over
    seeds, its sd below; a red border and `k/n learned` where some seed failed to learn; blank
    where the sweep has no such point. `cols` is None only for a one-knob sweep (one column)."""
    _check_axes(axes, rows, cols)
    if metric not in METRICS:
        raise ValueError(f"metric {metric!r} is not one of {list(METRICS)}")
    rest = [axis for axis in axes if axis not in (rows, cols)]
    heat = Heatmap(rows, cols, _values(points, rows), _values(points, cols), metric, _norm(points[metric]))
    facets = _facets(points, rest)
    if not facets:
        raise ValueError(f"{sweep}: no points to draw")
    width, height = 0.95 * len(heat.col_values) + 1.4, 0.75 * len(heat.row_values) + 1.0
    n_cols = min(len(facets), PANELS_PER_ROW)
    fig = Figure(figsize=(max(width * n_cols + 1.4, 7.5), height * -(-len(facets) // n_cols) + 1.6),
                 layout="constrained")
    panels = _panels(fig, len(facets))
    for ax, facet in zip(panels, facets):
        image = _heatmap(ax, heat, facet.select(points), facet.label)
    what, bar_label = METRICS[metric]
    fig.colorbar(image, ax=panels, label=bar_label)
    fig.suptitle(f"{sweep}: {what} over {_seeds_note(points)}\n({_layout(rows, cols, rest)})\n"
                 "cell: mean, ± sd over seeds below it; red border: only k/n seeds learned; blank: not in the sweep",
                 fontsize="medium")
    return fig


def phase_diagrams(points: pd.DataFrame, axes: Sequence[str], sweep: str) -> dict[str, Figure]:
    """`phase_diagram` of both METRICS for every pair of knobs (the first of the pair down), named
    `phase_<metric>_<rows>_x_<cols>`; for a one-knob sweep, `phase_<metric>_<knob>`."""
    if not axes:
        raise ValueError("a sweep has at least one knob")
    pairs = list(itertools.combinations(axes, 2)) if len(axes) > 1 else [(axes[0], None)]
    return {f"phase_{metric}_{rows}" + (f"_x_{cols}" if cols else ""):
            phase_diagram(points, axes, rows, cols, metric, sweep)
            for rows, cols in pairs for metric in METRICS}


# --- Small multiples of decision regions ---------------------------------------------------------


def _regions_panel(ax, view: RegionsView, point: pd.Series) -> None:
    _draw_regions(ax, view)
    ax.text(0.97, 0.03, _accuracy_note(float(point["test_accuracy"]), float(point["test_accuracy_sd"])),
            transform=ax.transAxes, ha="right", va="bottom", fontsize="large", weight="bold",
            bbox=dict(fc="white", ec="none", alpha=0.7, pad=2))
    if _failed(point):
        ax.text(0.03, 0.97, _learned_note(point), transform=ax.transAxes, ha="left", va="top", color=FAILED,
                fontsize="large", weight="bold", bbox=dict(fc="white", ec=FAILED, alpha=0.85, pad=2))


def small_multiples(views: Mapping[str, RegionsView], points: pd.DataFrame, axes: Sequence[str], rows: str | None,
                    cols: str | None, sweep: str, facet: str = "") -> Figure:
    """The decision regions of each point's representative seed (`views`, keyed by the point's
    name), knob `rows` down and knob `cols` across (a one-knob sweep: None for one row or one
    column), its test accuracy over seeds
    in the lower-right corner and a red `k/n learned` if some seed failed to learn. `points` must
    fix every other knob (e.g. one facet's points, named by `facet`); a missing point is blank."""
    _check_axes(axes, rows, cols)
    row_values, col_values = _values(points, rows), _values(points, cols)
    fig = Figure(figsize=(max(2.6 * len(col_values) + 0.8, 5.5), 2.6 * len(row_values) + 1.6),
                 layout="constrained")
    where = f" ({facet})" if facet else ""
    fig.suptitle(f"{sweep}{where}: decision regions of each point's representative seed\n"
                 "test accuracy mean ± sd over seeds in the lower-right corner; red: k/n seeds learned",
                 fontsize="large")
    grid = fig.subplots(len(row_values), len(col_values), squeeze=False)
    n_classes = 2
    for (r, c), ax in np.ndenumerate(grid):
        point = _point_at(points, {rows: row_values[r], cols: col_values[c]})
        if point is not None:
            _regions_panel(ax, views[point["point"]], point)
            n_classes = max(n_classes, views[point["point"]].n_classes)
        ax.set(xticks=[], yticks=[])
        ax.spines[:].set_visible(point is not None)  # a blank panel keeps its row and column labels
        if c == 0 and rows is not None:
            ax.set_ylabel(_knob(rows, row_values[r]), fontsize="large")
        if r == 0 and cols is not None:
            ax.set_title(_knob(cols, col_values[c]), fontsize="large")
    handles = _class_handles(n_classes) + _marker_handles()
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), max(2 * len(col_values), 3)))
    return fig


# --- A DVC plot's table --------------------------------------------------------------------------


def accuracy_lines(points: pd.DataFrame, axes: Sequence[str]) -> pd.DataFrame:
    """Test accuracy against the first knob, one line (`series`) per combination of the other
    knobs (e.g. `depth=2, inputs=raw`; `all` for a one-knob sweep), in the points' order."""
    first, rest = axes[0], list(axes[1:])
    series = [", ".join(_knob(axis, row[axis]) for axis in rest) or "all"
              for row in points[rest].to_dict("records")]
    return pd.DataFrame({first: points[first].to_numpy(), "series": series,
                         "test_accuracy": points["test_accuracy"].to_numpy(dtype=float),
                         "test_accuracy_sd": points["test_accuracy_sd"].to_numpy(dtype=float)})
