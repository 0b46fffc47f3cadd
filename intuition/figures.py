"""The study's figures: pure functions, arrays in, a matplotlib Figure out.

No file I/O: the caller does `fig.savefig(path, dpi=...)`. Figures are built with `Figure`
directly rather than pyplot, so they are not kept alive by pyplot's figure registry (and
`plt.close(fig)` stays harmless). Class i is drawn in tab10 colour i in every figure, so a class
looks the same in the data scatter, the probability maps, the decision regions and the gallery.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap, to_rgba  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

COLORS = matplotlib.colormaps["tab10"].colors
MISSED = dict(marker="x", color="red", s=45, linewidths=1.5, zorder=4)
# A grey ramp stopping short of black keeps class-coloured points readable where P is near 1.
PROBA_CMAP = ListedColormap(matplotlib.colormaps["Greys"](np.linspace(0.0, 0.75, 256)))
ACTIVATION_FILL = {"relu": "#cfe2f3", "sigmoid": "#fce5cd", "tanh": "#d9ead3", "softmax": "#ead1dc"}


def _colors(y):
    return np.asarray(COLORS)[np.asarray(y, dtype=int) % len(COLORS)]


def _class_handles(n_classes):
    return [Line2D([], [], ls="", marker="o", mfc=COLORS[c], mec="k", mew=0.5, label=f"class {c}")
            for c in range(n_classes)]


def _n_classes(*labels):
    return int(max(np.max(y) for y in labels if len(y))) + 1


def _marker_handles(n_missed=None):
    missed = "misclassified" if n_missed is None else f"misclassified ({n_missed})"
    return [Line2D([], [], ls="", marker="o", ms=3, mfc="grey", mec="none", label="train"),
            Line2D([], [], ls="", marker="o", ms=6, mfc="grey", mec="k", label="test"),
            Line2D([], [], ls="", marker="x", ms=7, mew=1.5, color="red", label=missed)]


def _last_finite(values, fmt):
    finite = values[np.isfinite(values)]
    return format(finite[-1], fmt) if finite.size else "n/a"


def training_curves(history, title, diverged_at=None) -> Figure:
    h = {k: np.asarray(history[k], dtype=float) for k in ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")}
    fig = Figure(figsize=(10, 4), layout="constrained")
    fig.suptitle(f"{title}: training curves")
    for ax, metric in zip(fig.subplots(1, 2), ("loss", "accuracy")):
        for key, label, style in ((metric, "train", "-"), (f"val_{metric}", "validation", "--")):
            # NaN/inf (a diverged run) become gaps, so autoscaling only sees finite values.
            values = np.where(np.isfinite(h[key]), h[key], np.nan)
            # "g" for loss: an exploding loss (1e30) must not print thirty digits in the legend.
            final = _last_finite(h[key], ".3g" if metric == "loss" else ".3f")
            ax.plot(h["epoch"], values, style, label=f"{label} (final {final})")
        if diverged_at is not None:
            ax.axvline(diverged_at, color="red", ls=":")
            ax.text(diverged_at, 0.5, f"diverged at epoch {diverged_at}", color="red", rotation=90, ha="right",
                    va="center", transform=ax.get_xaxis_transform(), bbox=dict(fc="white", ec="none", alpha=0.8))
        ax.set(xlabel="epoch", ylabel=metric, title=metric)
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    # Log loss keeps both the early drop and a blow-up readable (but cannot draw a run that was NaN
    # from epoch 1); accuracy on a fixed 0-1 scale makes experiments comparable at a glance.
    losses = np.concatenate([h["loss"], h["val_loss"]])
    if np.any(np.isfinite(losses) & (losses > 0)):
        fig.axes[0].set_yscale("log")
    fig.axes[1].set_ylim(-0.02, 1.02)
    return fig


def true_vs_predicted(X, y_true, y_pred, title, accuracy) -> Figure:
    X = np.asarray(X)
    fig = Figure(figsize=(10, 4.4), layout="constrained")
    fig.suptitle(f"{title}: true vs predicted labels")
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    for ax, y, name in ((axes[0], y_true, "true labels"), (axes[1], y_pred, f"predicted (accuracy {accuracy:.3f})")):
        ax.scatter(X[:, 0], X[:, 1], c=_colors(y), s=12, edgecolors="k", linewidths=0.3)
        ax.set(title=name, xlabel="x1", ylabel="x2")
    fig.legend(handles=_class_handles(_n_classes(y_true, y_pred)), loc="outside right center")
    return fig


def probability_maps(grid, proba, X, y, title, binary) -> Figure:
    xx, yy = grid
    X = np.asarray(X)
    # One panel per output unit: a single sigmoid unit only ever estimates P(class 1).
    classes = [1] if binary else list(range(proba.shape[-1]))
    fig = Figure(figsize=(4 * len(classes) + 1.2, 4.6), layout="constrained")
    fig.suptitle(f"{title}: predicted class probabilities")
    axes = np.atleast_1d(fig.subplots(1, len(classes), sharex=True, sharey=True))
    for ax, c in zip(axes, classes):
        p = proba[..., c]
        mesh = ax.pcolormesh(xx, yy, p, cmap=PROBA_CMAP, vmin=0, vmax=1, shading="auto")
        if (p < 0.5).any() and (p > 0.5).any():  # the 0.5 contour is where the unit changes its vote
            ax.contour(xx, yy, p, levels=[0.5], colors="k", linewidths=0.8, linestyles="--")
        ax.scatter(X[:, 0], X[:, 1], c=_colors(y), s=9, edgecolors="k", linewidths=0.3)
        ax.set(title=f"P(class {c})", xlabel="x1", ylabel="x2", xlim=(xx.min(), xx.max()), ylim=(yy.min(), yy.max()))
    fig.colorbar(mesh, ax=axes, label="probability", shrink=0.9)
    handles = _class_handles(_n_classes(y)) + [Line2D([], [], ls="--", color="k", label="P = 0.5")]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
    return fig


def _draw_regions(ax, grid, proba, X_train, y_train, X_test, y_test, y_test_pred):
    xx, yy = grid
    proba = np.asarray(proba, dtype=float)
    k = proba.shape[-1]
    # A diverged model predicts NaN; leave those cells blank rather than calling them class 0.
    regions = np.ma.masked_array(np.argmax(np.nan_to_num(proba, nan=-1.0), axis=-1), np.isnan(proba).any(-1))
    light = ListedColormap([to_rgba(c, 0.3) for c in COLORS[:k]])
    ax.pcolormesh(xx, yy, regions, cmap=light, vmin=-0.5, vmax=k - 0.5, shading="auto")
    X_train, X_test = np.asarray(X_train), np.asarray(X_test)
    ax.scatter(X_train[:, 0], X_train[:, 1], c=_colors(y_train), s=5, alpha=0.6, linewidths=0)
    ax.scatter(X_test[:, 0], X_test[:, 1], c=_colors(y_test), s=22, edgecolors="k", linewidths=0.6)
    missed = np.asarray(y_test) != np.asarray(y_test_pred)
    ax.scatter(X_test[missed, 0], X_test[missed, 1], **MISSED)
    ax.set(xlim=(xx.min(), xx.max()), ylim=(yy.min(), yy.max()))
    return int(missed.sum())


def decision_regions(grid, proba, X_train, y_train, X_test, y_test, y_test_pred, title, test_accuracy,
                     ax=None) -> Figure:
    data = (grid, proba, X_train, y_train, X_test, y_test, y_test_pred)
    if ax is not None:  # a small gallery panel: short title, score in the corner as in sklearn's comparison
        _draw_regions(ax, *data)
        ax.set_title(title, fontsize="medium")
        ax.text(0.97, 0.03, f"{test_accuracy:.3f}", transform=ax.transAxes, ha="right", va="bottom",
                fontsize="large", weight="bold", bbox=dict(fc="white", ec="none", alpha=0.7, pad=2))
        return ax.figure
    fig = Figure(figsize=(7.5, 5.5), layout="constrained")
    ax = fig.subplots()
    n_missed = _draw_regions(ax, *data)
    fig.suptitle(f"{title}: decision regions (test accuracy {test_accuracy:.3f})")
    ax.set(xlabel="x1", ylabel="x2")
    handles = _class_handles(max(np.shape(proba)[-1], _n_classes(y_train, y_test))) + _marker_handles(n_missed)
    fig.legend(handles=handles, loc="outside right center")
    return fig


def architecture_diagram(layers, title) -> Figure:
    boxes = [("input (2)", "", 2, "#eeeeee")] + [
        (f"Dense {l['units']}, {l['activation']}", f"params {l['params']:,}", l["units"],
         ACTIVATION_FILL.get(l["activation"], "#eeeeee")) for l in layers]
    total = sum(l["params"] for l in layers)
    fig = Figure(figsize=(4.5, 0.7 + 0.8 * len(boxes)), layout="constrained")
    ax = fig.subplots()
    ax.set_title(f"{title}\narchitecture, {total:,} parameters")
    height, gap = 0.62, 0.38
    for i, (name, params, units, fill) in enumerate(boxes):
        width = min(0.9, 0.35 + 0.06 * np.log2(max(units, 1)))  # mild: 1 unit 0.35 wide, 512 units 0.89
        top = -i * (height + gap)
        ax.add_patch(FancyBboxPatch((-width / 2, top - height), width, height, boxstyle="round,pad=0.02",
                                    fc=fill, ec="0.3"))
        label = name if not params else f"{name}\n{params}"
        ax.text(0, top - height / 2, label, ha="center", va="center", fontsize=10, linespacing=1.4)
        if i:
            ax.annotate("", xy=(0, top + 0.02), xytext=(0, top + gap - 0.02),
                        arrowprops=dict(arrowstyle="-|>", color="0.3"))
    ax.set(xlim=(-0.5, 0.5), ylim=(-len(boxes) * (height + gap) + gap - 0.05, 0.05))
    ax.set_axis_off()
    return fig


def gallery(panels, title) -> Figure:
    n_cols = max(len(row) for row in panels)
    # Never narrower than the two-line title and a two-column legend, even for a single panel.
    fig = Figure(figsize=(max(3 * n_cols, 4.5), 3 * len(panels) + 1.2), layout="constrained")
    fig.suptitle(f"{title}: decision regions\ntest accuracy in the lower-right corner", fontsize="large")
    axes = fig.subplots(len(panels), n_cols, squeeze=False)
    n_classes = 2
    for row, row_axes in zip(panels, axes):
        for ax, p in zip(row_axes, row + [None] * (n_cols - len(row))):
            if p is None:
                ax.set_axis_off()
                continue
            decision_regions(p["grid"], p["proba"], p["X_train"], p["y_train"], p["X_test"], p["y_test"],
                             p["y_test_pred"], p["title"], p["test_accuracy"], ax=ax)
            ax.set(xticks=[], yticks=[])
            n_classes = max(n_classes, np.shape(p["proba"])[-1])
            if p["diverged"]:
                ax.text(0.5, 0.5, "DIVERGED", transform=ax.transAxes, ha="center", va="center", rotation=20,
                        color="red", fontsize=22, weight="bold", bbox=dict(fc="white", ec="red", alpha=0.8))
    handles = _class_handles(n_classes) + _marker_handles()
    # Constrained layout does not stack an outside legend with the suptitle, so it goes below.
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 2 * n_cols))
    return fig
