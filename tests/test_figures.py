"""Every figure builds from synthetic arrays, saves to a readable, non-blank PNG and names its experiment."""

import matplotlib.image as mpimg
import numpy as np
import pytest

from intuition import figures

KEY = "blobs_relu_2x10"


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _dataset(n_classes, seed=0):
    """Gaussian blobs, a grid fitted to them and a fake model: a softmax of linear functions."""
    rng = np.random.default_rng(seed)
    centres = np.array([[-2.0, 0.0], [2.0, 0.5], [0.0, 2.5]])[:n_classes]
    y = np.repeat(np.arange(n_classes), 60)
    X = centres[y] + rng.normal(scale=0.9, size=(len(y), 2))
    lo, hi = X.min(0) - 0.5, X.max(0) + 0.5
    xx, yy = np.meshgrid(np.linspace(lo[0], hi[0], 60), np.linspace(lo[1], hi[1], 60))

    def proba_of(points):
        return _softmax(points @ (1.5 * centres.T) - 0.75 * (centres**2).sum(1))

    proba = proba_of(np.stack([xx, yy], axis=-1))
    test = rng.random(len(y)) < 0.25
    y_pred = proba_of(X[test]).argmax(-1)
    return dict(grid=(xx, yy), proba=proba, X_train=X[~test], y_train=y[~test], X_test=X[test], y_test=y[test],
                y_test_pred=y_pred, title=KEY, test_accuracy=float((y_pred == y[test]).mean()))


def _history(epochs=50, nan_from=None):
    e = np.arange(1, epochs + 1, dtype=float)
    h = dict(epoch=e, loss=1 / e, accuracy=1 - 0.5 / e, val_loss=1.1 / e, val_accuracy=1 - 0.6 / e)
    if nan_from is not None:
        for k in ("loss", "val_loss"):
            h[k][nan_from - 1 :] = np.nan
    return h


def _check(fig, tmp_path, name):
    texts = [fig.get_suptitle()] + [ax.get_title() for ax in fig.axes]
    assert any(KEY in t for t in texts), texts
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=60)
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0.02


def test_training_curves(tmp_path):
    _check(figures.training_curves(_history(), KEY), tmp_path, "curves")


def test_training_curves_survive_divergence(tmp_path):
    h = _history(nan_from=30)
    h["loss"][28] = np.inf
    fig = figures.training_curves(h, KEY, diverged_at=29)
    _check(fig, tmp_path, "curves_diverged")
    assert any("diverged at epoch 29" in t.get_text() for ax in fig.axes for t in ax.texts)


def test_training_curves_accept_a_dataframe(tmp_path):
    pd = pytest.importorskip("pandas")
    _check(figures.training_curves(pd.DataFrame(_history()), KEY), tmp_path, "curves_df")


def test_training_curves_survive_divergence_at_the_first_epoch(tmp_path):
    h = dict(epoch=[1], loss=[np.nan], accuracy=[0.5], val_loss=[np.inf], val_accuracy=[0.5])
    _check(figures.training_curves(h, KEY, diverged_at=1), tmp_path, "curves_nan_only")


@pytest.mark.parametrize("n_classes", [2, 3])
def test_true_vs_predicted(tmp_path, n_classes):
    d = _dataset(n_classes)
    fig = figures.true_vs_predicted(d["X_test"], d["y_test"], d["y_test_pred"], KEY, d["test_accuracy"])
    _check(fig, tmp_path, "true_vs_pred")
    assert f"predicted (accuracy {d['test_accuracy']:.3f})" in fig.axes[1].get_title()


@pytest.mark.parametrize("n_classes, binary, n_panels", [(2, True, 1), (3, False, 3)])
def test_probability_maps(tmp_path, n_classes, binary, n_panels):
    d = _dataset(n_classes)
    fig = figures.probability_maps(d["grid"], d["proba"], d["X_train"], d["y_train"], KEY, binary)
    _check(fig, tmp_path, "proba")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title().startswith("P(class")]
    assert len(titles) == n_panels and (titles == ["P(class 1)"]) == binary


def test_decision_regions(tmp_path):
    d = _dataset(3)
    fig = figures.decision_regions(**d)
    _check(fig, tmp_path, "regions")
    assert f"test accuracy {d['test_accuracy']:.3f}" in fig.get_suptitle()


def test_decision_regions_with_nan_probabilities(tmp_path):
    d = _dataset(2)
    d["proba"] = np.full_like(d["proba"], np.nan)
    _check(figures.decision_regions(**d), tmp_path, "regions_nan")


@pytest.mark.parametrize("n_layers", [1, 3, 6])
def test_architecture_diagram(tmp_path, n_layers):
    layers = [dict(units=100, activation="relu", params=300)] * (n_layers - 1) + [
        dict(units=3, activation="softmax", params=303)]
    fig = figures.architecture_diagram(layers, KEY)
    _check(fig, tmp_path, "arch")
    total = 300 * (n_layers - 1) + 303
    assert f"{total:,} parameters" in fig.axes[0].get_title()


def test_gallery(tmp_path):
    row2 = [_dataset(2, seed=s) for s in (1, 2, 3)]
    row3 = [_dataset(3, seed=s) for s in (4, 5)]
    for p in row2 + row3:
        p["diverged"] = False
    row3[1]["proba"] = np.full_like(row3[1]["proba"], np.nan)
    row3[1]["diverged"] = True
    fig = figures.gallery([row2, row3], KEY)
    _check(fig, tmp_path, "gallery")
    assert not fig.axes[5].axison  # the short second row leaves its last axes blank
    assert any(t.get_text() == "DIVERGED" for t in fig.axes[4].texts)
