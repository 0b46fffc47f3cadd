"""The study's figures: pure functions, arrays in, a matplotlib Figure out.

No file I/O: the caller does `fig.savefig(path, dpi=...)`. Figures are built with `Figure`
directly rather than pyplot, so they are not kept alive by pyplot's figure registry (and
`plt.close(fig)` stays harmless). Class i is drawn in tab10 colour i in every figure, so a class
looks the same in the data scatter, the probability maps, the decision regions and the gallery.

Every experiment is trained over several seeds. `training_curves` and `seed_agreement` show all
of them; the single-model figures (`probability_maps`, `decision_regions`, `true_vs_predicted`)
show one representative seed and say which in their title (`subtitle`).

Axes and class legends use the dataset's own names when given (`DataNames`: your CSV's columns
and labels), else x1, x2 and "class 0", "class 1", ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from textwrap import fill
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import BoundaryNorm, ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402
from sklearn.inspection import DecisionBoundaryDisplay  # noqa: E402

from intuition import features as playground  # noqa: E402
from intuition.types import Grid, Points  # noqa: E402

if TYPE_CHECKING:  # annotations only: intuition.metrics computes the agreement
    from intuition.metrics import Agreement

COLORS = matplotlib.colormaps["tab10"].colors
REGION_ALPHA = 0.3  # decision regions are a light fill of the class colour, so points stay readable
MISSED = dict(marker="x", color="red", s=45, linewidths=1.5, zorder=4)
# A grey ramp stopping short of black keeps class-coloured points readable where P is near 1.
PROBA_CMAP = ListedColormap(matplotlib.colormaps["Greys"](np.linspace(0.0, 0.75, 256)))
ACTIVATION_FILL = {"relu": "#cfe2f3", "sigmoid": "#fce5cd", "tanh": "#d9ead3", "softmax": "#ead1dc"}
CURVE_COLORS = {"train": "tab:blue", "validation": "tab:orange"}


# --- The named inputs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DataNames:
    """What the data calls its two inputs and its classes (config.feature_names, config.class_names)."""

    inputs: tuple[str, str] = ("x1", "x2")
    classes: tuple[str, ...] | None = None  # None: "class 0", "class 1", ...

    def of_class(self, c: int) -> str:
        return self.classes[c] if self.classes is not None and c < len(self.classes) else f"class {c}"

    def n_classes(self, at_least: int) -> int:
        """How many classes a legend lists: every named class, and any class beyond the names."""
        return max(at_least, len(self.classes or ()))


PLAIN = DataNames()


@dataclass(frozen=True)
class RegionsView:
    """One model's decision regions over a grid, with the data drawn on top."""

    grid: Grid
    proba: np.ndarray  # (rows, cols, n_classes) class probabilities over the grid; NaN where the model diverged
    train: Points
    test: Points
    test_pred: np.ndarray  # (n_test,) the model's predicted class of each test point

    @property
    def n_classes(self) -> int:
        return max(np.shape(self.proba)[-1], _n_classes(self.train.y, self.test.y))


@dataclass(frozen=True)
class GalleryPanel:
    """One experiment in the gallery: its representative seed's regions and its scores over seeds."""

    key: str
    view: RegionsView
    accuracy_mean: float  # test accuracy, mean over seeds
    accuracy_sd: float  # ... and its standard deviation over seeds
    status: str = "ok"  # anything else (e.g. "2/5 failed to learn") is written in red over the panel


@dataclass(frozen=True)
class LayerBox:
    """One Dense layer as the architecture diagram draws it."""

    units: int
    activation: str
    params: int


# --- Small shared helpers ------------------------------------------------------------------------


def _colors(y):
    return np.asarray(COLORS)[np.asarray(y, dtype=int) % len(COLORS)]


def _n_classes(*labels):
    return int(max((np.max(y) for y in labels if len(y)), default=1)) + 1


def _class_handles(n_classes, names: DataNames = PLAIN):
    return [Line2D([], [], ls="", marker="o", mfc=COLORS[c % len(COLORS)], mec="k", mew=0.5,
                   label=names.of_class(c)) for c in range(names.n_classes(n_classes))]


def _missed_handle(n_missed=None):
    label = "misclassified" if n_missed is None else f"misclassified ({n_missed})"
    return Line2D([], [], ls="", marker="x", ms=7, mew=1.5, color="red", label=label)


def _marker_handles(n_missed=None):
    return [Line2D([], [], ls="", marker="o", ms=3, mfc="grey", mec="none", label="train"),
            Line2D([], [], ls="", marker="o", ms=6, mfc="grey", mec="k", label="test"),
            _missed_handle(n_missed)]


def _suptitle(fig, title, what, subtitle="", **text):
    fig.suptitle(f"{title}: {what}" + (f"\n{subtitle}" if subtitle else ""), **text)


def _set_limits(ax, grid: Grid):
    ax.set(xlim=(grid.xx.min(), grid.xx.max()), ylim=(grid.yy.min(), grid.yy.max()))


def _scatter(ax, points: Points, s=9, linewidths=0.3):
    ax.scatter(points.X[:, 0], points.X[:, 1], c=_colors(points.y), s=s, edgecolors="k", linewidths=linewidths)


def _label_axes(ax, names: DataNames):
    ax.set(xlabel=names.inputs[0], ylabel=names.inputs[1])


# --- Training curves over seeds ------------------------------------------------------------------


def _by_seed(history: pd.DataFrame, column: str) -> pd.DataFrame:
    """One metric as an (epoch × seed) table; missing epochs (a seed that stopped) and NaN/inf are NaN."""
    table = history.pivot(index="epoch", columns="seed", values=column).astype(float)
    return table.where(np.isfinite(table))


def _divergences(diverged_at: Sequence[int | None]) -> dict[int, list[int]]:
    """Per seed, the epoch it diverged at or None -> {epoch: the seeds that diverged then}."""
    out: dict[int, list[int]] = {}
    for seed, epoch in enumerate(diverged_at):
        if epoch is not None:
            out.setdefault(int(epoch), []).append(seed)
    return out


def training_curves(history: pd.DataFrame, title: str, diverged_at: Sequence[int | None],
                    representative_seed: int | None = None) -> Figure:
    """Loss and accuracy per epoch (epoch 0 = untrained): the mean over seeds as a line and the
    min–max over seeds as a band of the same colour, for train and validation.

    `history` has columns seed, epoch, loss, accuracy, val_loss, val_accuracy. At each epoch the
    mean and band are over the seeds with a finite value there: a seed that diverged drops out
    (a red dotted line marks the epoch), and an epoch no seed survived is a gap. `diverged_at`
    is train@'s `diverged_at_epoch`: per seed (a value of the `seed` column), the epoch it
    diverged at, or None. The representative seed, if given, is drawn as a thin line of each
    colour, and the legend shows those two thin lines as drawn."""
    history = pd.DataFrame(history)
    n = history["seed"].nunique()
    thin = representative_seed is not None and n > 1
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    shown = f"mean over {n} seeds, band = min–max" if n > 1 else "1 seed"
    fig.suptitle(f"{title}: training curves, {shown}")
    divergences = _divergences(diverged_at)
    for ax, metric in zip(fig.subplots(1, 2), ("loss", "accuracy")):
        # "g" for loss: an exploding loss (1e30) must not print thirty digits in the legend.
        fmt = ".3g" if metric == "loss" else ".3f"
        for name, column, style in (("train", metric, "-"), ("validation", f"val_{metric}", "--")):
            table, color = _by_seed(history, column), CURVE_COLORS[name]
            epochs, mean = table.index.to_numpy(), table.mean(axis=1)
            last = mean.last_valid_index()  # None: no seed has a finite value at any epoch
            final = "n/a" if last is None else format(mean[last], fmt)
            at_end = 0 if last is None else int(table.loc[last].count())
            seeds_note = f"{at_end} seeds" if at_end == n else f"{at_end} of {n} seeds"
            ax.plot(epochs, mean, style, color=color, lw=1.8, label=f"{name}: final mean {final} ({seeds_note})")
            if n > 1:
                low, high = table.min(axis=1).to_numpy(), table.max(axis=1).to_numpy()
                ax.fill_between(epochs, low, high, where=np.isfinite(low), color=color, alpha=0.2, lw=0)
            if thin:  # labelled on the line itself, so the legend shows it as it is drawn
                which = f"{name}, seed {representative_seed}" + (" (representative)" if name == "train" else "")
                ax.plot(epochs, table[representative_seed], style, color=color, lw=0.7, label=which)
        for epoch, bad in divergences.items():  # in the legend: text on the plot would cover the curves
            who = f"seed {bad[0]}" if len(bad) == 1 else "seeds " + ", ".join(map(str, bad))
            ax.axvline(epoch, color="red", ls=":", label=f"{who} diverged at epoch {epoch}")
        ax.set(xlabel="epoch (0 = untrained)", ylabel=metric, title=metric)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    # Log loss keeps both the early drop and a blow-up readable; accuracy on a fixed 0-1 scale
    # makes experiments comparable at a glance.
    losses = pd.concat([_by_seed(history, "loss"), _by_seed(history, "val_loss")]).to_numpy()
    finite = losses[np.isfinite(losses)]
    if finite.size and (finite > 0).all():
        fig.axes[0].set_yscale("log")
    fig.axes[1].set_ylim(-0.02, 1.02)
    return fig


# --- Agreement between seeds ---------------------------------------------------------------------


# Least agreement in a dark saturated violet, all agreeing in white: the two ends stay apart on a
# projector, and the class colours (with their black edges) read on both.
AGREEMENT_LEAST = "#3f007d"


def _agreement_levels(agreed: Agreement, n_classes: int) -> np.ndarray:
    """The counts the map can hold: the majority of V voting seeds over k classes is never below
    ceil(V / k) (k seeds can split at most evenly), so the scale runs ceil(V / k)..V."""
    voting = agreed.voting
    lowest = -(-voting // max(n_classes, 1))
    if np.size(agreed.majority):  # never hide a count the map holds (k passed too small)
        lowest = min(lowest, int(np.min(agreed.majority)))
    return np.arange(lowest, voting + 1)


def _agreement_cmap(n_levels: int) -> ListedColormap:
    """One colour per level, the least agreement darkest, all agreeing white."""
    if n_levels == 1:
        return ListedColormap(["white"])
    least = np.array(matplotlib.colors.to_rgb(AGREEMENT_LEAST))
    toward_white = np.linspace(0, 1, n_levels)[:, None]
    return ListedColormap(least + (1 - least) * toward_white)


def seed_agreement(grid: Grid, agreed: Agreement, points: Points, title: str, n_classes: int | None = None,
                   names: DataNames = PLAIN) -> Figure:
    """Where the seeds agree (metrics.agreement): per grid cell, the number of voting seeds
    predicting the majority class; a seed with NaN/inf outputs has no vote, and the title says so.
    `n_classes`: the classes the models' probabilities are over (default: those in `points.y` and
    `names`); it sets the lowest count the colour scale shows.

    All voting seeds agreeing (white) means the data pin the boundary down there; few agreeing
    (dark) means where the boundary runs is an accident of the initial weights and batch order."""
    n_seeds, voting = agreed.seeds, agreed.voting
    k = n_classes if n_classes is not None else names.n_classes(_n_classes(points.y))
    levels = _agreement_levels(agreed, k)  # one discrete colour each
    cmap = _agreement_cmap(len(levels))
    norm = BoundaryNorm(np.append(levels, voting + 1) - 0.5, cmap.N)

    fig = Figure(figsize=(7.5, 5.5), layout="constrained")
    ax = fig.subplots()
    mesh = ax.pcolormesh(grid.xx, grid.yy, agreed.majority, cmap=cmap, norm=norm, shading="auto")
    _scatter(ax, points, linewidths=0.5)
    _set_limits(ax, grid)
    _label_axes(ax, names)
    if voting == n_seeds:
        fig.suptitle(f"{title}: agreement between {n_seeds} seeds\n"
                     f"all {n_seeds} agree on {agreed.all_agree:.1%} of the plotted region (white)")
        label = f"seeds agreeing with the majority (of {n_seeds})"
    else:
        result = (f"all {voting} voting seeds agree on {agreed.all_agree:.1%} of the plotted region (white)"
                  if voting else "there is no agreement to show")
        fig.suptitle(f"{title}: agreement between {n_seeds} seeds\n{voting} of them voted "
                     f"({n_seeds - voting} with NaN/inf outputs: no vote)\n{result}")
        label = f"voting seeds agreeing with the majority (of {voting})"
    if voting > 1:  # why the scale starts where it does
        label += f"\nwith {k} classes at least {levels[0]} always agree"
    bar = fig.colorbar(mesh, ax=ax, ticks=levels, label=label)
    bar.ax.minorticks_off()
    handles = _class_handles(_n_classes(points.y), names)
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig


# --- Single-model figures (the representative seed) ----------------------------------------------


def true_vs_predicted(points: Points, y_pred: np.ndarray, title: str, accuracy: Mapping[str, float],
                      subtitle: str = "", names: DataNames = PLAIN, rows: str = "") -> Figure:
    """Every point's true and predicted class side by side, the misclassified ones crossed out in
    red on the predicted side. `accuracy` names the rows each accuracy is over and its value (e.g.
    {"test": 0.97}), as the metrics computed it. `rows`, if given, says which rows `points` are
    (e.g. "fitted rows, validation and test"): the title then says the panels show all of them."""
    y_true, y_pred = np.asarray(points.y), np.asarray(y_pred)
    missed = y_true != y_pred
    n, n_missed = len(points), int(missed.sum())
    scores = ", ".join(f"{rows_of} {value:.3f}" for rows_of, value in accuracy.items())
    fig = Figure(figsize=(10, 4.9), layout="constrained")
    shown = f"true vs predicted labels of all {n} points ({rows})" if rows else "true vs predicted labels"
    _suptitle(fig, title, shown, subtitle)
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    for ax, y, name in ((axes[0], y_true, f"true labels\n{n} points"),
                        (axes[1], y_pred, f"predicted\naccuracy: {scores}\n"
                                          f"misclassified: {n_missed:,} of {n:,} points (red ×)")):
        _scatter(ax, Points(points.X, y), s=12)
        ax.set_title(name)
        _label_axes(ax, names)
    axes[1].scatter(points.X[missed, 0], points.X[missed, 1], **MISSED)
    handles = _class_handles(_n_classes(y_true, y_pred), names) + [_missed_handle(n_missed)]
    fig.legend(handles=handles, loc="outside right center")
    return fig


def probability_maps(grid: Grid, proba: np.ndarray, points: Points, title: str, binary: bool,
                     subtitle: str = "", names: DataNames = PLAIN) -> Figure:
    # One panel per output unit: a single sigmoid unit only ever estimates P(class 1).
    classes = [1] if binary else list(range(proba.shape[-1]))
    fig = Figure(figsize=(4 * len(classes) + 1.2, 4.8), layout="constrained")
    _suptitle(fig, title, "predicted class probabilities", subtitle)
    axes = np.atleast_1d(fig.subplots(1, len(classes), sharex=True, sharey=True))
    for ax, c in zip(axes, classes):
        p = proba[..., c]
        mesh = ax.pcolormesh(grid.xx, grid.yy, p, cmap=PROBA_CMAP, vmin=0, vmax=1, shading="auto")
        if (p < 0.5).any() and (p > 0.5).any():  # the 0.5 contour is where the unit changes its vote
            ax.contour(grid.xx, grid.yy, p, levels=[0.5], colors="k", linewidths=0.8, linestyles="--")
        _scatter(ax, points)
        ax.set_title(f"P({names.of_class(c)})")
        _label_axes(ax, names)
        _set_limits(ax, grid)
    fig.colorbar(mesh, ax=axes, label="probability", shrink=0.9)
    handles = _class_handles(_n_classes(points.y), names) + [Line2D([], [], ls="--", color="k", label="P = 0.5")]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig


def predicted_class(proba: np.ndarray) -> np.ma.MaskedArray:
    """(rows, cols, k) probabilities -> (rows, cols) predicted class, masked where the output is NaN/inf."""
    proba = np.asarray(proba, dtype=float)
    invalid = ~np.isfinite(proba).all(axis=-1)
    return np.ma.masked_array(np.argmax(np.nan_to_num(proba, nan=-1.0), axis=-1), invalid)


def _draw_regions(ax, view: RegionsView, axis_labels=("", "")) -> int:
    """The view's decision regions and points on `ax`; returns the number of misclassified test points."""
    k = view.n_classes
    colors = list(COLORS[:k])
    # DecisionBoundaryDisplay with a (rows, cols) label response and plot_method="pcolormesh" is
    # one pcolormesh with a ListedColormap, as hand-written; a masked cell (NaN output) stays blank.
    # sklearn uses `multiclass_colors` only for 3+ classes: with 2 it wants the cmap as a kwarg.
    # (Its (rows, cols, k) probability response would shade each region by confidence instead,
    # white near the boundary; the probability maps already show that.)
    two_classes = dict(cmap=ListedColormap(colors)) if k == 2 else {}
    DecisionBoundaryDisplay(
        xx0=view.grid.xx, xx1=view.grid.yy, n_classes=k, response=predicted_class(view.proba),
        multiclass_colors=colors, xlabel=axis_labels[0], ylabel=axis_labels[1],
    ).plot(plot_method="pcolormesh", ax=ax, alpha=REGION_ALPHA, vmin=-0.5, vmax=k - 0.5, shading="auto",
           **two_classes)
    # The points on top are not the display's business: hand-written, as in sklearn's examples.
    train, test = view.train, view.test
    ax.scatter(train.X[:, 0], train.X[:, 1], c=_colors(train.y), s=5, alpha=0.6, linewidths=0)
    ax.scatter(test.X[:, 0], test.X[:, 1], c=_colors(test.y), s=22, edgecolors="k", linewidths=0.6)
    missed = np.asarray(test.y) != np.asarray(view.test_pred)
    ax.scatter(test.X[missed, 0], test.X[missed, 1], **MISSED)
    _set_limits(ax, view.grid)
    return int(missed.sum())


def decision_regions(view: RegionsView, title: str, test_accuracy: float, subtitle: str = "",
                     names: DataNames = PLAIN, learned: bool = True) -> Figure:
    """One model's decision regions; `test_accuracy` is its accuracy on `view.test`, as the metrics
    computed it. `learned`: metrics.learned of this model; a model that failed to learn says so in
    red in the title, so its regions are not read as what the architecture can do."""
    fig = Figure(figsize=(7.5, 5.5), layout="constrained")
    ax = fig.subplots()
    n_missed = _draw_regions(ax, view, axis_labels=names.inputs)
    failed = "" if learned else " — this seed FAILED TO LEARN"
    _suptitle(fig, title, f"decision regions (test accuracy {test_accuracy:.3f}){failed}", subtitle,
              **({} if learned else dict(color="red")))
    fig.legend(handles=_class_handles(view.n_classes, names) + _marker_handles(n_missed), loc="outside right center")
    return fig


# --- The boundary's evolution over training (the representative seed) ----------------------------


@dataclass(frozen=True)
class EvolutionFrame:
    """One model at one epoch of its training: its decision regions and validation accuracy then."""

    epoch: int
    val_accuracy: float  # on the validation rows at that epoch (history.csv); NaN if not finite
    view: RegionsView  # its regions and test predictions at that epoch


def evolution_filmstrip(frames: Sequence[EvolutionFrame], epochs: int, title: str, subtitle: str = "") -> Figure:
    """The decision regions at a few epochs of training, left to right and top to bottom, each
    titled with its epoch and validation accuracy: where the boundary forms, and when. (The
    evolution GIF plays every snapshot; this shows a few side by side.)"""
    n_cols = len(frames) if len(frames) <= 5 else -(-len(frames) // 2)
    n_rows = -(-len(frames) // n_cols)
    fig = Figure(figsize=(max(2.3 * n_cols, 5.5), 2.5 * n_rows + 1.3), layout="constrained")
    _suptitle(fig, title, f"decision regions during training ({epochs} epochs)", subtitle)
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax, frame in zip(axes, frames):
        _draw_regions(ax, frame.view)
        ax.set(xticks=[], yticks=[])
        accuracy = f"{frame.val_accuracy:.3f}" if np.isfinite(frame.val_accuracy) else "n/a"
        ax.set_title(f"epoch {frame.epoch}\nval accuracy {accuracy}", fontsize="medium")
    for ax in axes[len(frames):]:
        ax.set_axis_off()
    n_classes = max(frame.view.n_classes for frame in frames)
    handles = _class_handles(n_classes) + _marker_handles()
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), max(n_cols, 3)))
    return fig


# --- Architecture ------------------------------------------------------------------------------


def architecture_diagram(layers: Sequence[LayerBox], title: str, standardized: bool = False,
                         features: Sequence[str] = playground.DEFAULT) -> Figure:
    """The model as boxes, input to output; dashed boxes compute fixed functions (no training).
    `features`: what the first Dense layer sees, Playground's features of the point."""
    boxes = [("input (x1, x2)", "", 2, "#eeeeee")]
    if tuple(features) != playground.DEFAULT:  # models.PlaygroundFeatures: formulas, no weights
        shown = playground.labels(features)
        lines = [", ".join(shown[i:i + 4]) for i in range(0, len(shown), 4)]
        boxes.append((f"features ({len(shown)})", "\n".join(lines), len(shown), "white"))
    if standardized:  # Keras Normalization: fixed mean and variance of the fitted rows, not trained
        boxes.append(("Normalization", "(x - mean) / sd, fixed", len(features), "white"))
    boxes += [(f"Dense {l.units}, {l.activation}", f"params {l.params:,}", l.units,
               ACTIVATION_FILL.get(l.activation, "#eeeeee")) for l in layers]
    total = sum(l.params for l in layers)
    fig = Figure(figsize=(4.5, 0.7 + 0.8 * len(boxes)), layout="constrained")
    ax = fig.subplots()
    ax.set_title(f"{title}\narchitecture, {total:,} parameters")
    height, gap = 0.62, 0.38
    for i, (name, params, units, fill) in enumerate(boxes):
        width = min(0.9, 0.35 + 0.06 * np.log2(max(units, 1)))  # mild: 1 unit 0.35 wide, 512 units 0.89
        top = -i * (height + gap)
        ax.add_patch(FancyBboxPatch((-width / 2, top - height), width, height, boxstyle="round,pad=0.02",
                                    fc=fill, ec="0.3", ls="--" if fill == "white" else "-"))
        label = name if not params else f"{name}\n{params}"
        ax.text(0, top - height / 2, label, ha="center", va="center", fontsize=10, linespacing=1.4)
        if i:
            ax.annotate("", xy=(0, top + 0.02), xytext=(0, top + gap - 0.02),
                        arrowprops=dict(arrowstyle="-|>", color="0.3"))
    ax.set(xlim=(-0.5, 0.5), ylim=(-len(boxes) * (height + gap) + gap - 0.05, 0.05))
    ax.set_axis_off()
    return fig


# --- The gallery -------------------------------------------------------------------------------


def _accuracy_note(mean: float, sd: float) -> str:
    return f"{mean:.3f} ± {sd:.3f}" if np.isfinite(sd) else f"{mean:.3f}"


GALLERY_COLUMNS = 5  # at README width (~900 px) a panel is then ~170 px wide and its title legible
GALLERY_PANEL = 2.3  # inches a side
GALLERY_ALARM = "#d62728"  # a failed or poor panel's title and frame
GALLERY_HEADING_CHARS = 17  # of a heading in x-large bold that fit over one panel
GALLERY_TITLE_CHARS = 20  # of a panel's title line in large bold that fit over it (plain: 23)


@dataclass(frozen=True)
class GallerySpan:
    """One row's run of a group's panels: `count` panels of group `group` from its `start`-th,
    drawn from column `col` of row `row` under one heading."""

    group: str
    row: int
    col: int
    start: int
    count: int


def gallery_layout(sizes: Mapping[str, int], n_cols: int = GALLERY_COLUMNS) -> list[GallerySpan]:
    """Where each group's panels go, in order, `n_cols` to a row. A group goes on the current row
    if it fits there; one that fits in a row but not in what is left of this one starts a new row;
    one larger than a row has to wrap anyway, so it fills what is left of this row (unless only one
    cell is left: a lone panel under a heading reads as a group of one)."""
    spans, row, col = [], 0, 0
    for group, n in sizes.items():
        free = n_cols - col
        if col and n > free and (n <= n_cols or free < 2):
            row, col = row + 1, 0
        start = 0
        while start < n:
            count = min(n - start, n_cols - col)
            spans.append(GallerySpan(group, row, col, start, count))
            start, col = start + count, col + count
            if col == n_cols:
                row, col = row + 1, 0
    return spans


def _wrap_key(key: str, width: int) -> str:
    """A key broken after underscores into lines of at most `width` characters where it can be:
    "relu_1x100_standardized" -> "relu_1x100_\nstandardized"; read whole, it is still the key."""
    lines: list[list[str]] = [[]]
    for part in key.split("_"):
        if lines[-1] and len("_".join([*lines[-1], part])) > width:
            lines.append([])
        lines[-1].append(part)
    return "_\n".join("_".join(line) for line in lines)


def _gallery_heading(ax, span: GallerySpan, n_panels: int) -> None:
    """A rule over the span's panels, the group's name (and how many panels it has) on it."""
    more = " (continued)" if span.start else (f" · {n_panels} experiments" if n_panels > 1 else "")
    heading, fontsize = f"{span.group}{more}", "x-large"
    # x-large bold is ~9.5 pt a character: a longer name (one panel is 2.3 in) would run into the
    # next heading, so it is set smaller and broken after underscores to its panels' width.
    if len(heading) > GALLERY_HEADING_CHARS * span.count:
        heading, fontsize = _wrap_key(heading, int(GALLERY_HEADING_CHARS * 1.2 * span.count)), "large"
    ax.set_title(heading, loc="left", fontsize=fontsize, weight="bold", pad=3)
    ax.set(xticks=[], yticks=[])
    for side in ("top", "left", "right"):
        ax.spines[side].set_visible(False)
    ax.spines["bottom"].set(linewidth=2, color="0.3")


def _gallery_panel(ax, panel: GalleryPanel, group: str) -> int:
    """One experiment's regions; its title is the key without the group's name, then the test
    accuracy over seeds, then (in red, the frame too) its status if it is not ok. Every line is
    wrapped to the panel's width: a title never runs into its neighbours'."""
    _draw_regions(ax, panel.view)
    ax.set(xticks=[], yticks=[])
    alarm = panel.status != "ok"
    width = GALLERY_TITLE_CHARS if alarm else GALLERY_TITLE_CHARS + 3  # bold is wider
    lines = [_wrap_key(panel.key.removeprefix(f"{group}_") or panel.key, width)]
    accuracy = _accuracy_note(panel.accuracy_mean, panel.accuracy_sd)
    if not alarm:
        lines.append(accuracy)
    elif len(f"{accuracy} · {panel.status}") <= width:  # "0.596 ± 0.164 · poor"
        lines.append(f"{accuracy} · {panel.status}")
    else:  # a little shorter than a panel: "1/5 seeds FAILED" over "TO LEARN"
        lines += [accuracy, fill(panel.status, width - 4)]
    ax.set_title("\n".join(lines), fontsize="large", linespacing=1.3, pad=4,
                 **(dict(color=GALLERY_ALARM, weight="bold") if alarm else {}))
    if alarm:
        for spine in ax.spines.values():
            spine.set(color=GALLERY_ALARM, linewidth=3)
    return panel.view.n_classes


def gallery(groups: Mapping[str, Sequence[GalleryPanel]], title: str, n_cols: int = GALLERY_COLUMNS) -> Figure:
    """Every experiment's decision regions (its representative seed), grouped by dataset in the
    order given: `groups` maps a dataset's name to its experiments' panels. Panels flow `n_cols`
    to a row (`gallery_layout`); each group's panels stand under a heading with its name. Each
    panel's title gives the experiment, its test accuracy over seeds, and in red (the frame too)
    its status if not ok; nothing is written over the points."""
    groups = {name: list(panels) for name, panels in groups.items() if len(panels)}
    spans = gallery_layout({name: len(panels) for name, panels in groups.items()}, n_cols)
    n_rows = spans[-1].row + 1 if spans else 1
    # Each row: a heading (a rule under the dataset's name) over panels with 2-3 line titles.
    fig = Figure(figsize=(GALLERY_PANEL * n_cols + 0.4, (GALLERY_PANEL + 0.95) * n_rows + 1.4), layout="constrained")
    fig.suptitle(f"{title}: decision regions of each experiment's representative seed, by dataset\n"
                 "under each experiment's name: its test accuracy, mean ± sd over seeds; "
                 "red: a seed failed to learn, or poor accuracy", fontsize="x-large")
    fig.get_layout_engine().set(h_pad=0.06)  # a little air above each heading
    grid = fig.add_gridspec(2 * n_rows, n_cols, height_ratios=[0.001, 1] * n_rows)
    n_classes = 2
    for span in spans:
        cols = slice(span.col, span.col + span.count)
        _gallery_heading(fig.add_subplot(grid[2 * span.row, cols]), span, len(groups[span.group]))
        for i, panel in enumerate(groups[span.group][span.start:span.start + span.count]):
            ax = fig.add_subplot(grid[2 * span.row + 1, span.col + i])
            n_classes = max(n_classes, _gallery_panel(ax, panel, span.group))
    handles = _class_handles(n_classes) + _marker_handles()
    # Constrained layout does not stack an outside legend with the suptitle, so it goes below.
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize="large")
    return fig


# --- Inside the network: every unit, and a relu network's linear regions -------------------------

if TYPE_CHECKING:  # annotations only: figures need no forward pass (intuition.inside computes these)
    from intuition.inside import LayerMaps, Regions

TILE_CMAP = matplotlib.colormaps["viridis"].with_extremes(bad="white")  # white: the gaps between tiles
TILES_PER_ROW = 20
TILE_POINTS = 50  # a unit's map is subsampled to about this many points a side: a layer stays one small image


def _tile_values(maps: LayerMaps, output: bool) -> np.ndarray:
    """(rows, cols, units) -> the same on 0..1, as the tiles show it: output probabilities as they
    are; relu from 0 (off) to the unit's maximum; any other unit from its minimum to its maximum."""
    v = np.asarray(maps.values, dtype=float)
    if output:
        return np.clip(v, 0, 1)
    low = np.zeros(v.shape[-1]) if maps.activation == "relu" else np.nanmin(v, axis=(0, 1))
    span = np.nanmax(v, axis=(0, 1)) - low
    return np.where(span > 0, (v - low) / np.where(span > 0, span, 1), 0.0)


def _mosaic(values: np.ndarray, per_row: int) -> np.ndarray:
    """(rows, cols, units) -> one image of the units' maps side by side, `per_row` to a row, in
    reading order, high x2 at the top of each tile; NaN (white) in the one-pixel gaps."""
    step = max(1, -(-max(values.shape[:2]) // TILE_POINTS))
    tiles = values[::step, ::step][::-1]  # grid row 0 is the lowest x2: flipped for imshow's top-down rows
    h, w, n = tiles.shape
    n_rows = -(-n // per_row)
    image = np.full((n_rows * (h + 1) - 1, per_row * (w + 1) - 1), np.nan)
    for unit in range(n):
        r, c = divmod(unit, per_row)
        image[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = tiles[..., unit]
    return image


MAX_TILE = 1.6  # inches: the largest a tile is drawn
TILES_WIDTH = 10  # inches: the widest a layer's row of tiles is drawn


def _output_classes(maps: LayerMaps) -> list[int]:
    """The class each output unit gives the probability of: a single sigmoid unit estimates P(class 1)."""
    return [1] if maps.units == 1 else list(range(maps.units))


def _layer_title(index: int, maps: LayerMaps, output: bool, names: DataNames = PLAIN) -> str:
    units = f"{maps.units} unit" + ("s" if maps.units > 1 else "")
    if output:
        what = (f"P({names.of_class(1)})" if maps.units == 1
                else "each class's probability, as labelled" if maps.units <= TILES_PER_ROW
                else f"P({names.of_class(0)}) … P({names.of_class(maps.units - 1)}), left to right")
        return f"layer {index} (output): {maps.activation}, {units}: {what}"
    title = f"layer {index}: {maps.activation}, {units}"
    if maps.activation == "relu":
        off = int((np.nanmax(maps.values, axis=(0, 1)) <= 0).sum())
        title += f" ({off} off everywhere on the plotted region)" if off else ""
    return title


@dataclass(frozen=True)
class TileRow:
    """How one layer's tiles are laid out: `per_row` tiles to a row, `rows` rows, `inches` a tile."""

    per_row: int
    rows: int
    inches: float


def _tile_rows(maps: Sequence[LayerMaps]) -> list[TileRow]:
    """Each layer's tiles fill up to the same width, each tile at most MAX_TILE: a layer with few
    units (the output's 3 after two layers of 100) gets large tiles instead of a mostly empty row."""
    rows = []
    for m in maps:
        per_row = min(TILES_PER_ROW, m.units)
        rows.append(TileRow(per_row, -(-m.units // per_row), min(MAX_TILE, TILES_WIDTH / per_row)))
    return rows


def _label_output_tiles(ax, image: np.ndarray, row: TileRow, maps: LayerMaps, names: DataNames) -> None:
    """P(<class>) under each output tile (imshow coordinates: one unit a pixel, y down)."""
    h, w = (image.shape[0] + 1) // row.rows - 1, (image.shape[1] + 1) // row.per_row - 1
    for unit, c in enumerate(_output_classes(maps)):
        r, col = divmod(unit, row.per_row)
        ax.text(col * (w + 1) + (w - 1) / 2, r * (h + 1) + h, f"P({names.of_class(c)})", ha="center", va="top",
                fontsize="medium" if row.inches >= 1 else "small")


def neuron_tiles(maps: Sequence[LayerMaps], title: str, subtitle: str = "", no_regions: str = "",
                 names: DataNames = PLAIN) -> Figure:
    """What every unit computes, as Playground's neuron thumbnails: one row of tiles per Dense
    layer, input to output, each tile one unit over the plotted region. Each layer is ONE image
    (a mosaic of its tiles), so a 100-unit layer costs what one map costs. A layer with few units
    gets larger tiles; the output tiles are labelled with their classes (`names`). `no_regions`,
    if given, says why the network has no linear regions (then these tiles are what is shown instead)."""
    layout = _tile_rows(maps)
    labelled = maps[-1].units <= TILES_PER_ROW  # one label a tile, in one row: readable
    width = max(6.5, max(row.per_row * row.inches for row in layout) + 1.2)
    note = fill(f"{no_regions}: these tiles are what is shown instead", int(width * 9)) if no_regions else ""
    heights = [row.rows * row.inches for row in layout]
    # Constrained layout keeps room for each title (and the output tiles' labels) outside these heights.
    fig = Figure(figsize=(width, sum(heights) + 0.45 * len(maps) + 0.3 * labelled + 1.9 + 0.25 * note.count("\n")),
                 layout="constrained")
    _suptitle(fig, title, "every unit", "\n".join(filter(None, [subtitle, note])))
    axes = np.atleast_1d(fig.subplots(len(maps), 1, height_ratios=heights))
    for index, (ax, m, row) in enumerate(zip(axes, maps, layout), start=1):
        output = index == len(maps)
        mosaic = _mosaic(_tile_values(m, output), row.per_row)
        image = ax.imshow(mosaic, cmap=TILE_CMAP, vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(_layer_title(index, m, output, names), fontsize="medium", loc="left")
        if output and labelled:
            _label_output_tiles(ax, mosaic, row, m, names)
        ax.set_axis_off()
    x, y = names.inputs
    fig.colorbar(image, ax=axes, orientation="horizontal", shrink=min(1.0, 5.5 / width), aspect=40,
                 label=fill(f"each tile: one unit over the plotted region ({x} to the right, {y} up), coloured "
                            "from 0 to 1: relu from 0 (off) to the unit's max; sigmoid, tanh from the unit's "
                            "min to its max; output: the probability", int(width * 11)))
    return fig


def region_colors(n: int) -> np.ndarray:
    """(n, 3) random light greys, faintly tinted, the same for the same n: no region can be taken
    for a class colour (tab10's are saturated; its one grey is darker), and neighbouring regions
    rarely match."""
    rng = np.random.default_rng(0)
    grey = 0.6 + 0.36 * rng.random((n, 1))
    return np.clip(grey + 0.06 * (rng.random((n, 3)) - 0.5), 0, 1)


def _depth_note(by_depth: Sequence[int]) -> str:
    """(4, 7, 9) -> "regions after layer 1: 4; after layers 1–2: 7; after layers 1–3: 9"."""
    after = [f"after layer{'s 1–' if depth > 1 else ' '}{depth}: {count:,}"
             for depth, count in enumerate(by_depth, start=1)]
    return "regions " + "; ".join(after)


def _region_notes(regions: Regions) -> list[str]:
    """What the counts mean, in plain words: how they grow with depth, why they are a lower bound,
    and the theory to compare them with."""
    n = regions.units
    notes = [_depth_note(regions.by_depth)] if len(regions.by_depth) > 1 else []
    notes.append("A lower bound: a region holding no grid point (smaller than a grid cell) is missed. "
                 "Each region has its own random grey: the greys mean nothing.")
    single = (f"a single layer with as many units as this network has in all ({n})" if len(regions.by_depth) > 1
              else f"a single layer of {n} units, as here,")
    notes.append(f"Hanin & Rolnick (2019): in 2-D the count grows about as the number of units squared, here "
                 f"{n}² = {n * n:,}, not exponentially with depth; {single} cuts the plane into at most "
                 f"{regions.one_layer_bound:,} regions.")
    return notes


def linear_regions(regions: Regions, grid: Grid, points: Points, title: str, subtitle: str = "",
                   names: DataNames = PLAIN) -> Figure:
    """A relu network's linear regions over the plotted grid, each in its own random light grey,
    the data on top in the class colours; the counts, what limits them, and the theory to
    compare with, annotated."""
    fig = Figure(figsize=(9.5, 8.2), layout="constrained")
    ax = fig.subplots()
    dx, dy = grid.xx[0, 1] - grid.xx[0, 0], grid.yy[1, 0] - grid.yy[0, 0]
    extent = (grid.xx.min() - dx / 2, grid.xx.max() + dx / 2, grid.yy.min() - dy / 2, grid.yy.max() + dy / 2)
    ax.imshow(region_colors(regions.grid)[regions.ids], origin="lower", extent=extent, aspect="auto",
              interpolation="nearest")
    _scatter(ax, points, s=10, linewidths=0.6)  # dark edges: the points read on any grey
    _set_limits(ax, grid)
    _label_axes(ax, names)
    rows, cols = regions.ids.shape
    _suptitle(fig, title, f"linear regions: on/off patterns of all {regions.units} hidden relu units", subtitle)
    ax.set_title(f"{regions.grid:,} regions on the {rows}×{cols} grid ({rows * cols / regions.grid:.1f} grid "
                 f"points each); {regions.data:,} among the {len(points):,} data points", fontsize="medium")
    fig.supxlabel("\n".join(fill(line, 120) for line in _region_notes(regions)), fontsize="small")
    fig.legend(handles=_class_handles(_n_classes(points.y), names), loc="outside right center")
    return fig
