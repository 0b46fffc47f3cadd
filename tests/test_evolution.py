"""The boundary's evolution over training: snapshots.npz, the frames drawn from it, the GIF, the
filmstrip and the MLflow images.

The first tests are pure (hand-made layers and snapshots, no TensorFlow). The last ones run the
real pipeline (real dvc, Keras, MLflow) on a copy of the project and check what it wrote.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image, ImageSequence
from sandbox import make_project, repro, run

from intuition import evolution, figures, files, metrics
from intuition.config import load_params
from intuition.figures import EvolutionFrame, RegionsView
from intuition.types import Snapshots
from intuition.network import DenseLayer, Standardize, load_layers, predict_proba
from intuition.types import Grid, Points

# --------------------------------------------------------------------------- hand-made models


def _grid(resolution=20) -> Grid:
    axis = np.linspace(-1, 1, resolution)
    return Grid(*np.meshgrid(axis, axis))


def _points(X, y) -> Points:
    return Points(np.asarray(X, dtype=float), np.asarray(y))


def _snapshots(n_snapshots=3, seeds=2, widths=(2, 4, 3), seed=0) -> Snapshots:
    rng = np.random.default_rng(seed)
    kernels = [rng.normal(size=(n_snapshots, seeds, a, b)).astype(np.float32) for a, b in zip(widths, widths[1:])]
    biases = [rng.normal(size=(n_snapshots, seeds, b)).astype(np.float32) for b in widths[1:]]
    return Snapshots(np.array([0, 4, 9])[:n_snapshots], kernels, biases)


def _dense() -> list[DenseLayer]:
    """A saved 2 -> 4 relu -> 3 softmax model (weights unused: the snapshots' are taken)."""
    return [DenseLayer(np.zeros((2, 4)), np.zeros(4), "relu"), DenseLayer(np.zeros((4, 3)), np.zeros(3), "softmax")]


def _view(proba, train=None, test=None, test_pred=None) -> RegionsView:
    proba = np.asarray(proba, dtype=float)
    grid = _grid(proba.shape[0])
    train = train or _points(np.zeros((0, 2)), np.zeros(0, int))
    test = test or _points(np.zeros((0, 2)), np.zeros(0, int))
    pred = test.y if test_pred is None else test_pred
    return RegionsView(grid, proba, train, test, np.asarray(pred))


def test_snapshot_layers_keep_every_layer_before_the_first_dense_one_and_take_the_snapshots_weights():
    """The fixed layers are whatever comes before the first Dense layer (a Normalization here, a
    features layer in other models); the activations are the saved model's."""
    snaps = _snapshots()
    fixed = [Standardize(np.array([0.5, -0.5]), np.array([4.0, 9.0])), lambda a: a * 2]
    saved = fixed + _dense()
    per_snapshot = evolution.snapshot_layers(saved, snaps, seed=1)
    assert len(per_snapshot) == 3
    for s, layers in enumerate(per_snapshot):
        assert layers[:2] == fixed
        assert [layer.activation for layer in layers[2:]] == ["relu", "softmax"]
        for layer, kernel, bias in zip(layers[2:], snaps.kernels, snaps.biases):
            np.testing.assert_array_equal(layer.kernel, kernel[s, 1])
            np.testing.assert_array_equal(layer.bias, bias[s, 1])


def test_validation_accuracy_after_a_divergence_is_that_of_the_kept_epoch():
    history = pd.DataFrame({"seed": [0] * 4 + [1] * 11, "epoch": list(range(4)) + list(range(11)),
                            "val_accuracy": [0.3, 0.5, 0.6, np.nan] + [0.1 * e for e in range(11)]})
    history["loss"] = 0.0  # other columns are not read
    assert evolution.val_accuracy_at(history, 0, [0, 2, 3, 10]) == [0.3, 0.6, 0.6, 0.6]
    assert evolution.val_accuracy_at(history, 1, [0, 10]) == pytest.approx([0.0, 1.0])


def test_frames_predict_with_each_snapshot_on_the_grid_and_the_test_points():
    snaps, grid = _snapshots(), _grid()
    saved = _dense()
    rng = np.random.default_rng(1)
    train = _points(rng.uniform(-1, 1, (30, 2)), rng.integers(0, 3, 30))
    test = _points(rng.uniform(-1, 1, (12, 2)), rng.integers(0, 3, 12))
    history = pd.DataFrame({"seed": 0, "epoch": range(10), "val_accuracy": np.linspace(0.3, 0.9, 10)})
    frames = evolution.evolution_frames(saved, snaps, 0, history, grid, train, test)
    assert [f.epoch for f in frames] == [0, 4, 9]
    assert [f.val_accuracy for f in frames] == pytest.approx([0.3, 0.3 + 4 * 0.6 / 9, 0.9])
    for frame, layers in zip(frames, evolution.snapshot_layers(saved, snaps, 0)):
        np.testing.assert_allclose(frame.view.proba, grid.reshape(predict_proba(layers, grid.points)), rtol=1e-6)
        expected = predict_proba(layers, test.X).argmax(axis=1)
        np.testing.assert_array_equal(frame.view.test_pred, expected)
        assert frame.view.train is train and frame.view.grid is grid


def test_filmstrip_takes_evenly_spread_frames_with_the_first_and_the_last():
    frames = [EvolutionFrame(e, 0.5, None) for e in range(30)]
    picked = [f.epoch for f in evolution.filmstrip_frames(frames, 8)]
    assert len(picked) == 8 and picked[0] == 0 and picked[-1] == 29 and picked == sorted(set(picked))
    assert [f.epoch for f in evolution.filmstrip_frames(frames[:3], 8)] == [0, 1, 2]


# --------------------------------------------------------------------------- drawing


def test_regions_are_shaded_by_confidence_from_white_at_chance_to_the_class_colour():
    k, R = 3, 10
    certain = np.zeros((R, R, k))
    certain[..., 1] = 1
    image = evolution.regions_image(_view(certain))
    assert image.shape == (R * evolution.SCALE, R * evolution.SCALE)
    assert (image == evolution._class_index(1, evolution.SHADES)).all()
    assert (evolution.regions_image(_view(np.full((R, R, k), 1 / k))) == evolution.WHITE).all()
    half = np.where(np.arange(k) == 2, 0.5, 0.25) * np.ones((R, R, k))  # P = 0.5 of 3 classes: a quarter sure
    assert (evolution.regions_image(_view(half)) == evolution._class_index(2, evolution.SHADES // 4)).all()
    nan = certain.copy()
    nan[0, 0] = np.nan
    image = evolution.regions_image(_view(nan))
    s = evolution.SCALE
    assert (image[-s:, :s] == evolution.GREY).all()  # grid row 0 (lowest x2) is the image's bottom row
    rgb = evolution.rgb(image)
    strong = np.array(figures.COLORS[1][:3])
    np.testing.assert_allclose(rgb[0, -1] / 255, 1 - 2 * figures.REGION_ALPHA * (1 - strong), atol=1 / 255)


def test_the_image_is_upright_and_points_land_on_their_grid_cell():
    """Class 0 above x2 = 0, class 1 below; a test point at (0.5, 0.5) of class 1, one at
    (-0.5, -0.5) of class 0 misclassified: each drawn where its coordinates are."""
    R = 21
    grid = _grid(R)
    above = (grid.yy > 0)[..., None]
    proba = np.where(above, [1.0, 0.0], [0.0, 1.0])
    test = _points([[0.5, 0.5], [-0.5, -0.5]], [1, 0])
    image = evolution.regions_image(_view(proba, test=test, test_pred=np.array([1, 1])))
    s = evolution.SCALE
    assert image[0, 0] == evolution._class_index(0, evolution.SHADES)  # top left: x2 high, class 0
    assert image[-1, 0] == evolution._class_index(1, evolution.SHADES)
    # (0.5, 0.5) is grid point (15, 15) of 21 on [-1, 1]: image row (20 - 15) * s + s // 2
    assert image[5 * s + s // 2, 15 * s + s // 2] == evolution._class_index(1)
    assert image[15 * s + s // 2, 5 * s + s // 2] == evolution.RED  # the miss: a red x on top
    assert image[5 * s + s // 2 + 3, 15 * s + s // 2] == evolution.BLACK  # the test point's outline


def test_a_frame_has_a_header_with_text_and_a_progress_bar():
    view = _view(np.full((20, 20, 2), 0.5))
    frames = [evolution.render(EvolutionFrame(e, 0.75, view), "some_experiment", 40) for e in (0, 10, 40)]
    text = [frame[: evolution.HEADER - 4] for frame in frames]
    for frame, lines in zip(frames, text):
        assert frame.dtype == np.uint8 and frame.shape == (evolution.HEADER + 60, 60)
        assert frame.max() < len(evolution.PALETTE)
        assert (evolution.rgb(lines).max(axis=-1) < 64).sum() > 20  # dark text on white
    assert not np.array_equal(text[0], text[1])  # the epoch changed
    bars = [(frame[evolution.HEADER - 3] == evolution.BAR).sum() for frame in frames]
    assert bars == [0, 15, 60]
    # A title too long for 12-pixel type is set smaller rather than cut off at the frame's edge.
    wide = _view(np.full((evolution.GRID_RESOLUTION,) * 2 + (2,), 0.5))
    title = "spiral_hard_relu_1x100_standardized_adam_lr0001"
    frame = evolution.render(EvolutionFrame(0, 0.5, wide), title, 40)
    header = evolution.rgb(frame[: evolution.HEADER - 4]).max(axis=-1)
    assert (header[:16, -3:] == 255).all() and (header[:16, -40:] < 128).any()  # shrunk, and runs to the end


def test_the_gif_loops_over_every_frame_in_the_frames_own_colours():
    rng = np.random.default_rng(0)
    frames = []
    for e in range(6):
        proba = rng.dirichlet(np.ones(3), size=(20, 20))
        frames.append(evolution.render(EvolutionFrame(e, 0.1 * e, _view(proba)), "x", 5))
    data = evolution.gif_bytes(frames)
    gif = Image.open(io.BytesIO(data))
    assert gif.format == "GIF" and gif.n_frames == 6 and gif.info["loop"] == 0
    durations = []
    for frame, expected in zip(ImageSequence.Iterator(gif), frames):
        durations.append(frame.info["duration"])
        np.testing.assert_array_equal(np.asarray(frame.convert("RGB")), evolution.rgb(expected))
    assert durations == [evolution.FRAME_MS] * 5 + [evolution.LAST_FRAME_MS]
    assert evolution.gif_bytes(frames) == data  # same frames, same bytes


def test_filmstrip_titles_each_panel_with_its_epoch_and_validation_accuracy(tmp_path):
    rng = np.random.default_rng(0)
    test = _points(rng.uniform(-1, 1, (10, 2)), rng.integers(0, 3, 10))
    frames = [EvolutionFrame(e, a, _view(rng.dirichlet(np.ones(3), size=(20, 20)), test=test, test_pred=test.y))
              for e, a in [(0, 0.3), (3, 0.51), (40, float("nan")), (100, 0.987)]]
    fig = figures.evolution_filmstrip(frames, 100, "some_experiment", subtitle="representative seed 1 of 5")
    FigureCanvasAgg(fig).draw()
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["epoch 0\nval accuracy 0.300", "epoch 3\nval accuracy 0.510", "epoch 40\nval accuracy n/a",
                      "epoch 100\nval accuracy 0.987"]
    assert "some_experiment" in fig._suptitle.get_text() and "representative seed 1" in fig._suptitle.get_text()
    fig.savefig(tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 10_000


def test_snapshots_file_round_trips_with_the_same_bytes_every_time(tmp_path):
    snaps = _snapshots()
    files.write_snapshots(tmp_path / "a.npz", snaps)
    files.write_snapshots(tmp_path / "b.npz", snaps)
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    back = files.read_snapshots(tmp_path / "a.npz")
    np.testing.assert_array_equal(back.epochs, snaps.epochs)
    for a, b in zip(back.kernels + back.biases, snaps.kernels + snaps.biases, strict=True):
        assert a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
    assert sorted(np.load(tmp_path / "a.npz").files) == ["bias_0", "bias_1", "epochs", "kernel_0", "kernel_1"]


# --------------------------------------------------------------------------- the real pipeline

EPOCHS = 40  # 30 snapshots of 41 epochs: the chunking at snapshots is exercised
FRAME_SIZE = (3 * evolution.GRID_RESOLUTION, evolution.HEADER + 3 * evolution.GRID_RESOLUTION)  # width, height
SEEDS = 2
# A standardized model (a fixed layer before the Dense ones) and a binary one (one sigmoid unit).
EXPERIMENTS = ["spiral_hard_relu_1x100_standardized", "linear_perceptron"]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("evolution"), epochs=EPOCHS, experiments=EXPERIMENTS,
                           seeds=SEEDS)
    repro(project)
    return project


@pytest.mark.parametrize("key", EXPERIMENTS)
def test_the_last_snapshot_is_the_saved_model_and_the_frames_predict_as_it_does(project, key, monkeypatch):
    monkeypatch.chdir(project)  # files.* paths are relative to the project root
    trained = files.TrainOutputs(key)
    snaps = files.read_snapshots(trained.snapshots)
    assert snaps.epochs[0] == 0 and snaps.epochs[-1] == EPOCHS and len(snaps.epochs) == 30
    assert all(k.shape[:2] == (30, SEEDS) for k in snaps.kernels)
    history = files.read_csv(trained.history)
    rep = files.read_json(files.EvaluateOutputs(key).metrics)["representative_seed"]
    saved = load_layers(trained.model(rep))
    params = load_params(project / "params.yaml")
    splits = files.read_splits(params.experiments[key].dataset)
    grid = metrics.make_grid(splits.all.X, evolution.GRID_RESOLUTION, params.plots.margin)
    frames = evolution.evolution_frames(saved, snaps, rep, history, grid, splits.train, splits.test)
    np.testing.assert_array_equal(frames[-1].view.proba, grid.reshape(predict_proba(saved, grid.points)))
    assert frames[-1].val_accuracy == pytest.approx(
        history.query("seed == @rep and epoch == @EPOCHS")["val_accuracy"].item(), abs=1e-6)


@pytest.mark.parametrize("key", EXPERIMENTS)
def test_evaluate_writes_the_gif_and_the_filmstrip(project, key):
    figures_dir = project / "results" / key / "figures"
    gif_path = figures_dir / "evolution.gif"
    assert gif_path.stat().st_size < 2_000_000
    gif = Image.open(gif_path)
    assert gif.n_frames == 30 and gif.size == FRAME_SIZE
    strip = Image.open(figures_dir / "evolution_filmstrip.png")
    assert strip.size[0] > 800 and np.asarray(strip.convert("L")).std() > 10


def test_the_snapshots_and_the_sites_frames_are_declared_outputs(project):
    assert run(project, "dvc", "status", "-q", check=False).returncode == 0
    lock = (project / "dvc.lock").read_text()
    for key in EXPERIMENTS:
        assert f"models/{key}/snapshots.npz" in lock and f"results/{key}/evolution_frames.png" in lock
        assert (project / "results" / key / "figures" / "evolution.gif").exists()
    # The figures are browsed in report/site/, not on DVC's plots page (charts only).
    shown = run(project, "dvc", "plots", "show", "--json").stdout
    assert "curves.csv" in shown and "evolution.gif" not in shown


def test_mlflow_plays_the_evolution_one_image_per_snapshot_epoch(project):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("classification-intuition")
    for key in EXPERIMENTS:
        parent = client.search_runs([experiment.experiment_id],
                                    f"tags.role = 'parent' and tags.experiment = '{key}'")[0]
        assert parent.data.tags.get("mlflow.loggedImages") == "True"
        images = [a.path for a in client.list_artifacts(parent.info.run_id, "images")]
        steps = sorted(int(p.split("+step+")[1].split("+")[0]) for p in images
                       if p.startswith("images/evolution+") and p.endswith(".png"))
        snaps = files.read_snapshots(project / "models" / key / "snapshots.npz")
        assert steps == [int(e) for e in snaps.epochs]
        assert sum(p.endswith("+compressed.webp") for p in images) == len(steps)  # the UI's thumbnails
    # A frame is as large as MLflow's thumbnails: it shows the frame itself, not a resampled copy.
    first = [p for p in images if "+step+0+" in p]  # the .png and its +compressed.webp
    assert len(first) == 2
    shown = [Image.open(client.download_artifacts(parent.info.run_id, p)) for p in first]
    assert shown[0].size == shown[1].size == FRAME_SIZE and max(FRAME_SIZE) == 256


def test_the_same_training_writes_the_same_snapshot_bytes(project):
    key = EXPERIMENTS[1]
    path = project / "models" / key / "snapshots.npz"
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    run(project, "python", "-m", "stages.train", key)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
