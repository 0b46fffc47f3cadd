"""Every figure builds from synthetic arrays, saves to a readable, non-blank PNG and names its
experiment; and the parts that compute something (bands over seeds, agreement between seeds, region
colours, gallery notes) show what they should."""

import re

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgb
from matplotlib.text import Text

from intuition import figures
from intuition.figures import DataNames, GalleryPanel, LayerBox, RegionsView
from intuition.inside import LayerMaps, Regions
from intuition.metrics import agreement
from intuition.types import Grid, Points

KEY = "blobs_relu_2x10"
SEED_NOTE = "representative seed 2 of 5 (median validation loss)"
IRIS = DataNames(("petal_length", "petal_width"), ("setosa", "versicolor", "virginica"))


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _dataset(n_classes, seed=0) -> RegionsView:
    """Gaussian blobs, a grid fitted to them and a fake model: a softmax of linear functions."""
    rng = np.random.default_rng(seed)
    centres = np.array([[-2.0, 0.0], [2.0, 0.5], [0.0, 2.5]])[:n_classes]
    y = np.repeat(np.arange(n_classes), 60)
    X = centres[y] + rng.normal(scale=0.9, size=(len(y), 2))
    lo, hi = X.min(0) - 0.5, X.max(0) + 0.5
    grid = Grid(*np.meshgrid(np.linspace(lo[0], hi[0], 60), np.linspace(lo[1], hi[1], 60)))

    def proba_of(points):
        return _softmax(points @ (1.5 * centres.T) - 0.75 * (centres**2).sum(1))

    test = rng.random(len(y)) < 0.25
    y_pred = proba_of(X[test]).argmax(-1)
    return RegionsView(grid=grid, proba=grid.reshape(proba_of(grid.points)), train=Points(X[~test], y[~test]),
                       test=Points(X[test], y[test]), test_pred=y_pred)


def _test_accuracy(view: RegionsView) -> float:
    return float((view.test_pred == view.test.y).mean())


def _history(n_seeds=5, epochs=50, diverged=None) -> pd.DataFrame:
    """Epochs 0..E per seed, seed s a little worse than seed s-1; `diverged` = {seed: epoch}: that
    seed's losses are NaN at that epoch and it has no rows after, as the trainer writes it."""
    frames = []
    for s in range(n_seeds):
        e = np.arange(epochs + 1, dtype=float)
        w = 1 + 0.1 * s
        h = pd.DataFrame(dict(seed=s, epoch=e.astype(int), loss=w / (e + 1), accuracy=1 - 0.5 * w / (e + 1),
                              val_loss=1.1 * w / (e + 1), val_accuracy=1 - 0.6 * w / (e + 1)))
        if diverged and s in diverged:
            h = h[h.epoch <= diverged[s]].copy()
            h.loc[h.epoch == diverged[s], ["loss", "val_loss"]] = np.nan
        frames.append(h)
    return pd.concat(frames, ignore_index=True)


def _texts(fig):
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + fig.legends
    return ([fig.get_suptitle()] + [t.get_text() for ax in fig.axes for t in [ax.title, *ax.texts]]
            + [t.get_text() for legend in legends for t in legend.get_texts()])


def _check(fig, tmp_path, name):
    texts = _texts(fig)
    assert any(KEY in t for t in texts), texts
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=60)
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0.02


def _bands(ax):
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def _legend_labels(fig):
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def _red_crosses(ax) -> int:
    """How many points `ax` crosses out (figures.MISSED: red x markers)."""
    red = [c for c in ax.collections if len(c.get_offsets()) and len(c.get_edgecolor())
           and np.allclose(c.get_edgecolor()[:, :3], to_rgb("red"))]
    return sum(len(c.get_offsets()) for c in red)


def _luminance(rgb) -> float:
    return float(np.dot(np.asarray(rgb)[:3], [0.2126, 0.7152, 0.0722]))


# --- training curves -----------------------------------------------------------------------------


def test_training_curves_draw_mean_and_min_max_band_over_seeds(tmp_path):
    history = _history(n_seeds=5)
    fig = figures.training_curves(history, KEY, [None] * 5, representative_seed=2)
    _check(fig, tmp_path, "curves")
    assert "mean over 5 seeds, band = min–max" in fig.get_suptitle()
    loss_ax, accuracy_ax = fig.axes[:2]
    assert loss_ax.get_yscale() == "log"
    for ax in (loss_ax, accuracy_ax):
        assert len(_bands(ax)) == 2  # train and validation
    # The validation accuracy band spans exactly the seeds' min..max; its mean line is the mean.
    val = history.pivot(index="epoch", columns="seed", values="val_accuracy")
    band_y = _bands(accuracy_ax)[1].get_paths()[0].vertices[:, 1]
    assert band_y.min() == pytest.approx(val.min(axis=1).min()) and band_y.max() == pytest.approx(1 - 0.6 / 51)
    mean_line = next(l for l in accuracy_ax.lines if l.get_label().startswith("validation"))
    np.testing.assert_allclose(mean_line.get_ydata(), val.mean(axis=1))
    assert mean_line.get_xdata()[0] == 0  # epoch 0, the untrained model, is drawn
    labels = [t.get_text() for t in accuracy_ax.get_legend().get_texts()]
    assert f"validation: final mean {val.iloc[-1].mean():.3f} (5 seeds)" in labels
    assert "train, seed 2 (representative)" in labels and "validation, seed 2" in labels


def test_training_curves_legend_shows_the_representative_seed_as_drawn():
    # The representative seed is drawn thin in the train and validation colours: the legend must
    # show those two thin lines, not a grey line that appears nowhere on the plot.
    fig = figures.training_curves(_history(n_seeds=5), KEY, [None] * 5, representative_seed=4)
    for ax in fig.axes[:2]:
        legend = ax.get_legend()
        shown = {t.get_text(): h for t, h in zip(legend.get_texts(), legend.legend_handles)}
        drawn = {line.get_label(): line for line in ax.lines}
        for label, name in (("train, seed 4 (representative)", "train"), ("validation, seed 4", "validation")):
            handle, line = shown[label], drawn[label]
            assert to_rgb(handle.get_color()) == to_rgb(line.get_color()) == to_rgb(figures.CURVE_COLORS[name])
            assert handle.get_linewidth() == line.get_linewidth() == 0.7
            assert handle.get_linestyle() == line.get_linestyle()
        assert not any(to_rgb(h.get_color()) == to_rgb("0.3") for h in legend.legend_handles)


def test_training_curves_with_one_seed_draw_no_band(tmp_path):
    fig = figures.training_curves(_history(n_seeds=1), KEY, [None], representative_seed=0)
    _check(fig, tmp_path, "curves_one_seed")
    assert "1 seed" in fig.get_suptitle() and "band" not in fig.get_suptitle()
    assert not _bands(fig.axes[0]) and not _bands(fig.axes[1])


def test_training_curves_survive_a_diverged_seed(tmp_path):
    history = _history(n_seeds=5, diverged={3: 29})
    history.loc[(history.seed == 3) & (history.epoch == 28), "loss"] = np.inf
    # The epoch marked is train@'s (training.json), not one re-derived from the history.
    fig = figures.training_curves(history, KEY, [None, None, None, 28, None])
    _check(fig, tmp_path, "curves_diverged")
    assert any("seed 3 diverged at epoch 28" in t for t in _texts(fig))
    loss_labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(label.endswith("(4 of 5 seeds)") for label in loss_labels), loss_labels
    assert len(_bands(fig.axes[0])) == 2
    # After epoch 28 the mean is over the four finite seeds, not NaN and not dragged by inf.
    mean_line = next(l for l in fig.axes[0].lines if l.get_label().startswith("train"))
    assert np.isfinite(mean_line.get_ydata()).all()


def test_training_curves_survive_divergence_at_the_first_epoch(tmp_path):
    history = pd.DataFrame(dict(seed=[0, 0, 1, 1], epoch=[0, 1, 0, 1], loss=[0.7, np.nan, 0.7, np.inf],
                                accuracy=[0.5] * 4, val_loss=[0.7, np.nan, 0.7, np.nan], val_accuracy=[0.5] * 4))
    fig = figures.training_curves(history, KEY, [1, 1])
    _check(fig, tmp_path, "curves_nan_after_epoch_0")
    assert any("seeds 0, 1 diverged at epoch 1" in t for t in _texts(fig))


def test_training_curves_mark_each_divergence_epoch_once_with_its_seeds():
    history = _history(n_seeds=4, diverged={0: 30, 1: 10, 3: 30})
    fig = figures.training_curves(history, KEY, [30, 10, None, 30])
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert [label for label in labels if "diverged" in label] == [
        "seeds 0, 3 diverged at epoch 30", "seed 1 diverged at epoch 10"]


# --- agreement between seeds ---------------------------------------------------------------------


def _one_hot_proba(labels, k=2):
    return np.eye(k)[labels]


def _agreement_share(fig) -> float:
    return float(re.search(r"agree on ([\d.]+)% of the plotted region", fig.get_suptitle()).group(1))


def test_seed_agreement_shows_the_metrics_agreement_on_a_hand_count(tmp_path):
    grid = Grid(*np.meshgrid(np.arange(4.0), np.arange(4.0)))
    votes = np.zeros((3, 4, 4), dtype=int)  # three seeds, all class 0 ...
    votes[1, 0, :3] = 1  # ... except seed 1 on three cells of row 0
    agreed = agreement(_one_hot_proba(votes))
    # All three agree on 16 - 3 = 13 of the 16 cells; on the other three, 2 of 3 agree.
    assert agreed.majority[0].tolist() == [2, 2, 2, 3] and (agreed.majority == 3).sum() == 13
    points = Points(np.array([[0.5, 0.5], [2.5, 2.5]]), np.array([0, 1]))
    fig = figures.seed_agreement(grid, agreed, points, KEY)
    _check(fig, tmp_path, "agreement")
    assert "all 3 agree on 81.2% of the plotted region" in fig.get_suptitle()
    assert _agreement_share(fig) == round(100 * agreed.all_agree, 1) == 81.2
    np.testing.assert_array_equal(fig.axes[0].collections[0].get_array().reshape(4, 4), agreed.majority)
    bar = fig.axes[-1]
    # Two classes: of 3 seeds at least 2 always agree, so the scale is 2..3, not 0..3.
    assert bar.get_ylabel() == "seeds agreeing with the majority (of 3)\nwith 2 classes at least 2 always agree"
    assert bar.get_yticks().tolist() == [2, 3]


def test_seed_agreement_with_a_diverged_seed_says_how_many_voted(tmp_path):
    # The same three seeds and a fourth whose outputs are NaN: it has no vote, so the map and the
    # share are those of the three, and the title says that 3 of 4 voted.
    grid = Grid(*np.meshgrid(np.arange(4.0), np.arange(4.0)))
    votes = np.zeros((3, 4, 4), dtype=int)
    votes[1, 0, :3] = 1
    proba = np.concatenate([_one_hot_proba(votes), np.full((1, 4, 4, 2), np.nan)])
    agreed = agreement(proba)
    assert (agreed.voting, agreed.seeds, agreed.all_agree) == (3, 4, 13 / 16)
    fig = figures.seed_agreement(grid, agreed, Points(np.array([[0.5, 0.5]]), np.array([0])), KEY)
    _check(fig, tmp_path, "agreement_diverged")
    title = fig.get_suptitle()
    assert "agreement between 4 seeds\n3 of them voted (1 with NaN/inf outputs: no vote)\n" in title
    assert "all 3 voting seeds agree on 81.2% of the plotted region" in title
    bar = fig.axes[-1]
    assert bar.get_ylabel().startswith("voting seeds agreeing with the majority (of 3)\n")
    assert bar.get_yticks().tolist() == [2, 3]


def test_seed_agreement_when_no_seed_voted(tmp_path):
    d = _dataset(2)
    agreed = agreement(np.full((2, *d.proba.shape), np.nan))
    fig = figures.seed_agreement(d.grid, agreed, d.train, KEY)
    _check(fig, tmp_path, "agreement_none")
    assert "0 of them voted (2 with NaN/inf outputs: no vote)\nthere is no agreement" in fig.get_suptitle()


def test_seed_agreement_with_one_seed_agrees_everywhere(tmp_path):
    d = _dataset(3)
    fig = figures.seed_agreement(d.grid, agreement(d.proba[None]), d.train, KEY)
    _check(fig, tmp_path, "agreement_one_seed")
    assert "all 1 agree on 100.0% of the plotted region" in fig.get_suptitle()


def test_seed_agreement_on_realistic_seeds(tmp_path):
    d = _dataset(3)
    rng = np.random.default_rng(0)
    # Five seeds: the same model with a random per-class offset each, so the boundaries move a little.
    proba = np.stack([_softmax(np.log(d.proba) + rng.normal(scale=0.8, size=3)) for _ in range(5)])
    fig = figures.seed_agreement(d.grid, agreement(proba), d.train, KEY)
    _check(fig, tmp_path, "agreement_5")
    assert 0 < _agreement_share(fig) < 100


@pytest.mark.parametrize("n_classes, lowest", [(3, 2), (2, 3)])
def test_seed_agreement_scale_covers_only_the_reachable_counts(tmp_path, n_classes, lowest):
    # Five seeds: the majority is never below ceil(5 / k), 2 of 5 with three classes, 3 of 5 with
    # two. The lowest reachable count is dark, all agreeing white.
    grid = Grid(*np.meshgrid(np.arange(6.0), np.arange(6.0)))
    votes = np.zeros((5, 6, 6), dtype=int)
    votes[:, 0, 0] = [0, 0, 1, 1, 2] if n_classes == 3 else [0, 0, 0, 1, 1]  # the least agreement
    votes[4, 1, :3] = 1  # 4 of 5 agree on three more cells
    agreed = agreement(_one_hot_proba(votes, n_classes))
    assert agreed.majority.min() == lowest
    # The points hold only two classes; the probabilities' three set the scale.
    points = Points(np.array([[0.5, 0.5], [2.5, 2.5], [4.0, 1.0]]), np.array([0, 1, 1]))
    fig = figures.seed_agreement(grid, agreed, points, KEY, n_classes=n_classes)
    _check(fig, tmp_path, f"agreement_scale_{n_classes}")
    bar = fig.axes[-1]
    assert bar.get_yticks().tolist() == list(range(lowest, 6))
    assert bar.get_ylim() == (lowest - 0.5, 5.5)
    assert f"with {n_classes} classes at least {lowest} always agree" in bar.get_ylabel()
    mesh = fig.axes[0].collections[0]
    least, most = mesh.to_rgba(lowest), mesh.to_rgba(5)
    assert _luminance(least) < 0.15 and np.ptp(least[:3]) > 0.4  # dark and saturated
    assert np.allclose(most[:3], 1)  # white
    points_drawn = fig.axes[0].collections[1]  # on top of the map, each with a black edge
    assert len(points_drawn.get_offsets()) == len(points)
    assert np.allclose(points_drawn.get_edgecolor()[:, :3], 0)


def test_seed_agreement_infers_the_classes_when_not_given():
    grid = Grid(*np.meshgrid(np.arange(4.0), np.arange(4.0)))
    votes = np.zeros((5, 4, 4), dtype=int)
    votes[:2, 0, 0] = 1  # 3 of 5 agree on one cell
    agreed = agreement(_one_hot_proba(votes))
    points = Points(np.array([[0.5, 0.5], [2.5, 2.5]]), np.array([0, 1]))
    assert figures.seed_agreement(grid, agreed, points, KEY).axes[-1].get_yticks().tolist() == [3, 4, 5]
    # The names list three classes: 2 of 5 is then possible, and the scale says so.
    named = figures.seed_agreement(grid, agreed, points, KEY, names=IRIS)
    assert named.axes[-1].get_yticks().tolist() == [2, 3, 4, 5]


def test_seed_agreement_with_one_voting_seed_is_white():
    d = _dataset(3)
    fig = figures.seed_agreement(d.grid, agreement(d.proba[None]), d.train, KEY)
    assert fig.axes[-1].get_yticks().tolist() == [1]
    assert np.allclose(fig.axes[0].collections[0].to_rgba(1)[:3], 1)


# --- the dataset's own names ---------------------------------------------------------------------


def _named_axes(fig):
    return [ax for ax in fig.axes if ax.get_xlabel()]


def test_data_names_label_the_axes_and_the_class_legend(tmp_path):
    d = _dataset(3)
    drawn = {
        "agreement": figures.seed_agreement(d.grid, agreement(d.proba[None]), d.train, KEY, names=IRIS),
        "true_vs_pred": figures.true_vs_predicted(d.test, d.test_pred, KEY, {"test": 0.9}, names=IRIS),
        "proba": figures.probability_maps(d.grid, d.proba, d.train, KEY, False, names=IRIS),
        "regions": figures.decision_regions(d, KEY, 0.9, names=IRIS),
        "linear": figures.linear_regions(_regions(d.grid), d.grid, d.train, KEY, names=IRIS),
    }
    for name, fig in drawn.items():
        _check(fig, tmp_path, f"named_{name}")
        assert _named_axes(fig), name
        for ax in _named_axes(fig):
            assert (ax.get_xlabel(), ax.get_ylabel()) == ("petal_length", "petal_width"), name
        assert _legend_labels(fig)[:3] == ["setosa", "versicolor", "virginica"], name
        assert not any(label.startswith("class ") for label in _legend_labels(fig)), name
    titles = [ax.get_title() for ax in drawn["proba"].axes if ax.get_title()]
    assert titles == ["P(setosa)", "P(versicolor)", "P(virginica)"]


def test_data_names_default_to_x1_x2_and_class_numbers():
    d = _dataset(2)
    fig = figures.decision_regions(d, KEY, 0.9)
    assert (fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()) == ("x1", "x2")
    assert _legend_labels(fig)[:2] == ["class 0", "class 1"]
    binary = figures.probability_maps(d.grid, d.proba, d.train, KEY, True,
                                      names=DataNames(classes=("benign", "malignant")))
    assert [ax.get_title() for ax in binary.axes if ax.get_title()] == ["P(malignant)"]


# --- decision regions ----------------------------------------------------------------------------


def _pixel(fig, ax, x, y):
    """The rendered RGB at data point (x, y)."""
    canvas = FigureCanvasAgg(fig)  # a bare Figure has no renderer of its own
    canvas.draw()
    image = np.asarray(canvas.buffer_rgba())[..., :3] / 255
    px, py = ax.transData.transform((x, y))
    return image[int(round(image.shape[0] - py)), int(round(px))]


@pytest.mark.parametrize("k", [2, 3])  # sklearn draws 2 classes and 3+ classes on different paths
def test_decision_regions_colour_each_class_and_leave_nan_cells_blank(k):
    # A 3 x 3 grid of cells centred on 0, 1, 2 (the axes show the inner half of the outer ones):
    # column 0 class 0, column 1 class 1, column 2 NaN (a diverged model).
    grid = Grid(*np.meshgrid(np.arange(3.0), np.arange(3.0)))
    proba = _one_hot_proba(np.array([[0, 1, 0]] * 3), k)
    proba[:, 2] = np.nan
    none = Points(np.empty((0, 2)), np.empty(0, dtype=int))
    view = RegionsView(grid, proba, none, none, np.empty(0, dtype=int))
    fig = figures.decision_regions(view, KEY, float("nan"))
    ax = fig.axes[0]
    alpha = figures.REGION_ALPHA
    light = lambda name: alpha * np.array(to_rgb(name)) + 1 - alpha  # noqa: E731  (over white)
    np.testing.assert_allclose(_pixel(fig, ax, 0.25, 1), light("tab:blue"), atol=0.02)
    np.testing.assert_allclose(_pixel(fig, ax, 1, 1), light("tab:orange"), atol=0.02)
    np.testing.assert_allclose(_pixel(fig, ax, 1.75, 1), [1, 1, 1], atol=0.02)


def test_decision_regions(tmp_path):
    d = _dataset(3)
    fig = figures.decision_regions(d, KEY, 0.9876, subtitle=SEED_NOTE)
    _check(fig, tmp_path, "regions")
    assert "test accuracy 0.988" in fig.get_suptitle() and SEED_NOTE in fig.get_suptitle()
    assert fig.axes[0].get_xlabel() == "x1" and fig.axes[0].get_ylabel() == "x2"


def test_decision_regions_say_when_the_seed_failed_to_learn(tmp_path):
    d = _dataset(2)
    failed = figures.decision_regions(d, KEY, 0.41, subtitle=SEED_NOTE, learned=False)
    _check(failed, tmp_path, "regions_failed")
    title = failed.get_suptitle()
    assert "test accuracy 0.410) — this seed FAILED TO LEARN" in title and SEED_NOTE in title
    assert to_rgb(failed._suptitle.get_color()) == to_rgb("red")
    learned = figures.decision_regions(d, KEY, 0.99, subtitle=SEED_NOTE)
    assert "FAILED" not in learned.get_suptitle()
    assert to_rgb(learned._suptitle.get_color()) != to_rgb("red")


def test_decision_regions_with_nan_probabilities(tmp_path):
    d = _dataset(2)
    view = RegionsView(d.grid, np.full_like(d.proba, np.nan), d.train, d.test, d.test_pred)
    _check(figures.decision_regions(view, KEY, _test_accuracy(d)), tmp_path, "regions_nan")


# --- other single-model figures ------------------------------------------------------------------


@pytest.mark.parametrize("n_classes", [2, 3])
def test_true_vs_predicted(tmp_path, n_classes):
    d = _dataset(n_classes)
    # The accuracies are the metrics' (seeds.csv), named by the rows they are over: not recomputed here.
    fig = figures.true_vs_predicted(d.test, d.test_pred, KEY, {"validation": 0.91, "test": 0.8766},
                                    subtitle=SEED_NOTE)
    _check(fig, tmp_path, "true_vs_pred")
    n_missed = int((d.test_pred != d.test.y).sum())
    assert fig.axes[1].get_title() == ("predicted\naccuracy: validation 0.910, test 0.877\n"
                                       f"misclassified: {n_missed} of {len(d.test)} points (red ×)")
    assert fig.axes[0].get_title() == f"true labels\n{len(d.test)} points"
    assert SEED_NOTE in fig.get_suptitle()


def test_true_vs_predicted_crosses_out_and_counts_the_misclassified(tmp_path):
    d = _dataset(3)
    points = Points(np.concatenate([d.train.X, d.test.X]), np.concatenate([d.train.y, d.test.y]))
    y_pred = points.y.copy()
    y_pred[[0, 5, 17]] = (y_pred[[0, 5, 17]] + 1) % 3  # three wrong
    fig = figures.true_vs_predicted(points, y_pred, KEY, {"fitted rows": 0.99, "validation": 0.98, "test": 0.97},
                                    subtitle=SEED_NOTE, rows="fitted rows, validation and test")
    _check(fig, tmp_path, "true_vs_pred_missed")
    true_ax, pred_ax = fig.axes[:2]
    assert _red_crosses(pred_ax) == 3 and _red_crosses(true_ax) == 0
    crossed = np.concatenate([c.get_offsets() for c in pred_ax.collections if len(c.get_offsets()) == 3])
    np.testing.assert_allclose(crossed, points.X[[0, 5, 17]])
    n = len(points)
    assert f"misclassified: 3 of {n} points (red ×)" in pred_ax.get_title()
    assert "accuracy: fitted rows 0.990, validation 0.980, test 0.970" in pred_ax.get_title()
    assert f"true vs predicted labels of all {n} points (fitted rows, validation and test)" in fig.get_suptitle()
    assert "misclassified (3)" in _legend_labels(fig)


@pytest.mark.parametrize("n_classes, binary, n_panels", [(2, True, 1), (3, False, 3)])
def test_probability_maps(tmp_path, n_classes, binary, n_panels):
    d = _dataset(n_classes)
    fig = figures.probability_maps(d.grid, d.proba, d.train, KEY, binary, subtitle=SEED_NOTE)
    _check(fig, tmp_path, "proba")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title().startswith("P(class")]
    assert len(titles) == n_panels and (titles == ["P(class 1)"]) == binary
    assert SEED_NOTE in fig.get_suptitle()


@pytest.mark.parametrize("n_layers", [1, 3, 6])
@pytest.mark.parametrize("standardized", [False, True])
def test_architecture_diagram(tmp_path, n_layers, standardized):
    layers = [LayerBox(100, "relu", 300)] * (n_layers - 1) + [LayerBox(3, "softmax", 303)]
    fig = figures.architecture_diagram(layers, KEY, standardized=standardized)
    _check(fig, tmp_path, "arch")
    total = 300 * (n_layers - 1) + 303
    assert f"{total:,} parameters" in fig.axes[0].get_title()
    boxes = [t.get_text() for t in fig.axes[0].texts if t.get_text()]  # not the arrows
    assert len(boxes) == 1 + standardized + n_layers
    assert any(b.startswith("Normalization") for b in boxes) == standardized


# --- gallery -------------------------------------------------------------------------------------


def _failed(view: RegionsView) -> RegionsView:
    """The view of a model whose outputs are all NaN."""
    return RegionsView(view.grid, np.full_like(view.proba, np.nan), view.train, view.test, view.test_pred)


def _spans_of(fig):
    """The gallery's panels (axes with a centre title) and headings (a left title only)."""
    panels = [ax for ax in fig.axes if ax.get_title()]
    headings = [ax for ax in fig.axes if ax.get_title(loc="left")]
    return panels, headings


def test_gallery(tmp_path):
    blobs2 = [GalleryPanel(f"blobs2_exp{s}", _dataset(2, seed=s), 0.9934, 0.0041) for s in (1, 2, 3)]
    blobs3 = [GalleryPanel("blobs3_exp4", _dataset(3, seed=4), 0.95, float("nan")),
              GalleryPanel("other_exp5", _failed(_dataset(3, seed=5)), 0.412, 0.2, status="2/5 failed to learn"),
              GalleryPanel("blobs3_exp6", _dataset(3, seed=6), 0.6, 0.1, status="poor")]
    fig = figures.gallery({"blobs2": blobs2, "empty": [], "blobs3": blobs3}, KEY)
    _check(fig, tmp_path, "gallery")
    panels, headings = _spans_of(fig)
    # Each panel: the key without its group's name (another key whole), then the accuracy over seeds.
    assert [ax.get_title() for ax in panels] == [
        "exp1\n0.993 ± 0.004", "exp2\n0.993 ± 0.004", "exp3\n0.993 ± 0.004",
        "exp4\n0.950",  # sd unknown (one seed): the mean alone
        "other_exp5\n0.412 ± 0.200\n2/5 failed to\nlearn", "exp6\n0.600 ± 0.100 · poor"]
    assert [ax.get_title(loc="left") for ax in headings] == ["blobs2 · 3 experiments", "blobs3 · 3 experiments"]
    assert not any(ax.texts for ax in fig.axes)  # nothing written over the points
    for ax in panels:  # failed and poor panels in red, title and frame; the others as usual
        red = ax.title.get_color() == figures.GALLERY_ALARM
        assert red == (ax.get_title().split("\n")[0] in ("other_exp5", "exp6"))
        assert all((to_rgb(spine.get_edgecolor()) == to_rgb(figures.GALLERY_ALARM)) == red
                   for spine in ax.spines.values())


def test_gallery_layout_flows_groups_in_order_and_splits_only_what_cannot_fit():
    sizes = dict(zip("abcdefghi", [1, 4, 1, 1, 7, 2, 1, 3, 1]))
    spans = figures.gallery_layout(sizes, n_cols=5)
    cells = [(s.row, s.col + i) for s in spans for i in range(s.count)]
    assert len(cells) == len(set(cells)) == 21 and all(0 <= col < 5 for _, col in cells)
    assert cells == sorted(cells)  # reading order is the groups' order, each group's panels in order
    assert [(s.group, s.start) for s in spans if s.start] == [("e", 3)]  # only the group of 7 is split
    assert max(s.row for s in spans) + 1 == 5  # 21 panels in ceil(21 / 5) rows: no row wasted
    # A group that fits in a row but not in what is left of this one starts a new row ...
    assert [(s.row, s.col) for s in figures.gallery_layout({"a": 4, "b": 2}, n_cols=5)] == [(0, 0), (1, 0)]
    # ... and one that wraps anyway fills this row, unless it would leave a lone panel there.
    assert [(s.row, s.col, s.count) for s in figures.gallery_layout({"a": 3, "b": 7}, 5)] == [
        (0, 0, 3), (0, 3, 2), (1, 0, 5)]
    assert [(s.row, s.col, s.count) for s in figures.gallery_layout({"a": 4, "b": 7}, 5)] == [
        (0, 0, 4), (1, 0, 5), (2, 0, 2)]


def _tiny(seed) -> RegionsView:
    """A small view: a 12x12 grid, a few points; the layout, not the regions, is under test."""
    view = _dataset(2, seed=seed)
    grid = Grid(view.grid.xx[::5, ::5], view.grid.yy[::5, ::5])
    return RegionsView(grid, view.proba[::5, ::5], view.train, view.test, view.test_pred)


def test_gallery_texts_stay_over_their_own_panels_and_the_panels_fill_the_figure():
    names = ["linear", "bands", "spiral_easy", "a_dataset_with_a_rather_long_name", "circle", "xor", "gauss",
             "stripes", "moons"]
    status = "5/5 seeds FAILED TO LEARN"
    groups = {name: [GalleryPanel(f"{name}_relu_1x100_standardized", _tiny(i + j), 0.5, 0.01,
                                  status=status if j == 0 else "ok") for j in range(n)]
              for i, (name, n) in enumerate(zip(names, [1, 4, 1, 1, 7, 2, 1, 3, 1]))}
    fig = figures.gallery(groups, KEY)
    FigureCanvasAgg(fig).draw()
    panels, headings = _spans_of(fig)
    assert len(panels) == 21
    texts = [t for t in fig.findobj(Text) if t.get_text() and t.get_visible()]  # titles, headings, legend
    boxes = [t.get_window_extent() for t in texts]
    for i, a in enumerate(boxes):  # no text runs into another
        assert not any(a.overlaps(b) for b in boxes[i + 1:]), texts[i].get_text()
    gap = min(b.get_window_extent().x0 - a.get_window_extent().x1 for a, b in zip(panels, panels[1:])
              if b.get_window_extent().x0 > a.get_window_extent().x1)
    for ax in panels:  # each panel title over its own panel, nothing inside it
        frame, box = ax.get_window_extent(), ax.title.get_window_extent()
        assert frame.x0 - gap / 2 <= box.x0 and box.x1 <= frame.x1 + gap / 2, ax.get_title()
        assert box.y0 >= frame.y1
    shown = " ".join(ax.get_title(loc="left") for ax in headings)
    assert all(name in shown.replace("_\n", "_") for name in names)  # every dataset named over its panels
    # The panels fill the figure: here 46 % of it with 4-line titles over most rows, 57 % without;
    # one row per group, as the gallery was, left 28 %.
    width, height = fig.get_size_inches() * fig.dpi
    assert sum(ax.get_window_extent().width * ax.get_window_extent().height for ax in panels) > 0.4 * width * height


# --- inside the network --------------------------------------------------------------------------


def _maps(widths, n_out, size=40) -> list[LayerMaps]:
    rng = np.random.default_rng(0)
    hidden = [LayerMaps("relu", rng.random((size, size, w))) for w in widths]
    out = LayerMaps("softmax" if n_out > 1 else "sigmoid", _softmax(rng.normal(size=(size, size, max(n_out, 2)))))
    return hidden + [LayerMaps(out.activation, out.values[..., :n_out])]


def _tile_inches(fig, ax, n_per_row) -> float:
    """The width in inches at which `ax` draws each of its `n_per_row` tiles a row."""
    FigureCanvasAgg(fig).draw()  # constrained layout places the axes on drawing
    return ax.get_position().width * fig.get_figwidth() / n_per_row


def test_neuron_tiles_draw_a_few_output_units_large_and_labelled(tmp_path):
    # Two hidden layers of 100 (20 tiles a row) and 3 outputs: the outputs get tiles of their own size.
    fig = figures.neuron_tiles(_maps([100, 100], 3), KEY, names=IRIS)
    _check(fig, tmp_path, "tiles_wide")
    hidden, out = fig.axes[0], fig.axes[2]
    assert out.get_images()[0].get_array().shape[1] < hidden.get_images()[0].get_array().shape[1]
    assert _tile_inches(fig, out, 3) > 2.5 * _tile_inches(fig, hidden, 20)
    assert _tile_inches(fig, out, 3) >= 1.0  # readable: an inch or more
    assert [t.get_text() for t in out.texts] == ["P(setosa)", "P(versicolor)", "P(virginica)"]
    assert out.get_title(loc="left").startswith("layer 3 (output): softmax, 3 units")
    assert not hidden.texts


def test_neuron_tiles_label_a_single_sigmoid_output_with_class_1():
    fig = figures.neuron_tiles(_maps([8], 1), KEY)
    assert [t.get_text() for t in fig.axes[1].texts] == ["P(class 1)"]
    assert fig.axes[1].get_title(loc="left").endswith("1 unit: P(class 1)")


def _regions(grid: Grid) -> Regions:
    """Seven regions over the grid: two layers of three relu units (4 regions after layer 1)."""
    rows, cols = grid.xx.shape
    ids = (np.arange(rows)[:, None] * 7 // rows + np.zeros(cols, dtype=int)) % 7
    return Regions(ids=ids, grid=7, data=3, by_depth=(4, 7), units=6)


def test_linear_regions_use_neutral_colours_and_plain_notes(tmp_path):
    d = _dataset(3)
    fig = figures.linear_regions(_regions(d.grid), d.grid, d.train, KEY, subtitle=SEED_NOTE)
    _check(fig, tmp_path, "linear_regions")
    notes = " ".join(fig.get_supxlabel().split())
    assert "regions after layer 1: 4; after layers 1–2: 7" in notes
    assert ("a single layer with as many units as this network has in all (6) cuts the plane into at "
            "most 22 regions") in notes
    assert "6² = 36" in notes and "lower bound" in notes and "l = 1" not in notes
    counts = fig.axes[0].get_title()  # the numbers the figure shows are the same
    assert "7 regions on the 60×60 grid" in counts and f"3 among the {len(d.train)} data points" in counts
    # Seven regions, seven light greys on the axes' image; the points on top with dark edges.
    rgb = fig.axes[0].get_images()[0].get_array()
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) == 7
    drawn = fig.axes[0].collections[0]
    assert len(drawn.get_offsets()) == len(d.train) and np.allclose(drawn.get_edgecolor()[:, :3], 0)
    assert drawn.get_linewidths()[0] >= 0.5
    assert _legend_labels(fig) == ["class 0", "class 1", "class 2"]


def test_linear_regions_of_a_single_layer_name_its_own_width():
    grid = _dataset(2).grid
    one_layer = Regions(ids=np.zeros(grid.xx.shape, dtype=int), grid=1, data=1, by_depth=(1,), units=4)
    notes = " ".join(figures.linear_regions(one_layer, grid, _dataset(2).train, KEY).get_supxlabel().split())
    assert "a single layer of 4 units, as here, cuts the plane into at most 11 regions" in notes
    assert "after layer" not in notes


def test_region_colours_cannot_be_taken_for_class_colours():
    colours = figures.region_colors(5000)
    assert colours.min() >= 0.55 and colours.max() <= 1  # light
    assert np.ptp(colours, axis=1).max() <= 0.06  # near-neutral: no hue to read as a class
    # Every class colour has a hue the regions lack (tab10's grey is darker than any region) ...
    saturated = np.array([c for c in figures.COLORS if np.ptp(c) > 0.1])
    assert np.ptp(saturated, axis=1).min() > 0.2  # over 3x the regions' 0.06
    assert _luminance(figures.COLORS[7]) < colours.min()
    # ... and the colours of the usual 2 to 4 classes are far from every region's.
    distance = np.linalg.norm(colours[:, None, :] - np.array(figures.COLORS[:4])[None], axis=-1)
    assert distance.min() > 0.4
    np.testing.assert_array_equal(figures.region_colors(5000), colours)  # the same for the same n
