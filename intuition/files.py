"""Where every output lives, and writing it so that a killed stage leaves no half-written file.

dvc.yaml declares the same paths; this module is the Python side of that contract. Data flows one
way: generate@ writes data/, train@ writes models/<experiment>/, evaluate@ writes
results/<experiment>/, and report reads results/ only.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import sys
import tempfile
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from intuition.types import Points, Snapshots, Splits

DATA = Path("data")
MODELS = Path("models")
RESULTS = Path("results")
REPORT = Path("report")
SITE = REPORT / "site"  # the offline HTML report (stages/report.py, intuition/site.py)
# Metrics files hold this many significant digits: enough for every comparison made here, and
# few enough that float round-off between machines does not change a committed number.
SIGNIFICANT_DIGITS = 6


@dataclass(frozen=True)
class TrainOutputs:
    """What train@<key> writes."""

    key: str

    @property
    def root(self) -> Path:
        return MODELS / self.key

    def model(self, seed_index: int) -> Path:
        return self.models / f"seed_{seed_index}.keras"

    models = property(lambda self: self.root / "seeds")  # seed_<i>.keras, one per seed
    history = property(lambda self: self.root / "history.csv")  # per seed and epoch
    training = property(lambda self: self.root / "training.json")  # timings, divergence, versions
    snapshots = property(lambda self: self.root / "snapshots.npz")  # every seed's weights at ~30 epochs


@dataclass(frozen=True)
class EvaluateOutputs:
    """What evaluate@<key> writes (and all that report reads)."""

    key: str

    @property
    def root(self) -> Path:
        return RESULTS / self.key

    headline = property(lambda self: self.root / "headline.json")  # metrics.Headline (DVC metrics)
    metrics = property(lambda self: self.root / "metrics.json")  # every aggregate over seeds
    seeds = property(lambda self: self.root / "seeds.csv")  # one row of metrics per seed
    curves = property(lambda self: self.root / "curves.csv")  # mean over seeds per epoch (DVC plots)
    confusion = property(lambda self: self.root / "confusion_matrix.csv")
    test_predictions = property(lambda self: self.root / "test_predictions.csv")
    regions = property(lambda self: self.root / "regions.npz")  # the gallery panel's data
    figures = property(lambda self: self.root / "figures")
    # The boundary's evolution over training (from train@'s snapshots), inside figures/.
    evolution_gif = property(lambda self: self.figures / "evolution.gif")
    evolution_filmstrip = property(lambda self: self.figures / "evolution_filmstrip.png")
    # The same frames for the report site's epoch slider: stacked top to bottom in one PNG, and
    # what each shows (epoch, validation accuracy, frame size).
    evolution_frames = property(lambda self: self.root / "evolution_frames.png")
    evolution = property(lambda self: self.root / "evolution.json")
    mlflow_run = property(lambda self: self.root / "mlflow_run.json")  # the run this execution recorded


@dataclass(frozen=True)
class SweepOutputs:
    """What sweep@<key> writes: each point's trained seeds (kept between runs, so only new points
    train), and the sweep's results."""

    key: str

    trained = property(lambda self: MODELS / "sweeps" / self.key)  # <hash>.npz per point (intuition.sweeps)
    root = property(lambda self: RESULTS / "sweeps" / self.key)
    points = property(lambda self: self.root / "points.csv")  # one row per point: axes, aggregates over seeds
    seeds = property(lambda self: self.root / "seeds.csv")  # one row per point and seed
    headline = property(lambda self: self.root / "headline.json")  # the best point's metrics.Headline (DVC metrics)
    metrics = property(lambda self: self.root / "metrics.json")  # the sweep in a few numbers
    lines = property(lambda self: self.root / "accuracy.csv")  # test accuracy along the first axis (DVC plots)
    figures = property(lambda self: self.root / "figures")  # phase diagrams, small multiples


def read_per_seed(experiments, sweeps) -> dict[str, pd.DataFrame]:
    """Every experiment's seeds.csv, and every sweep point's rows of its sweep's seeds.csv under
    `<sweep>[<point>]` (config.point_key): the per-seed tables findings are checked on."""
    from intuition.config import point_key

    tables = {key: read_csv(EvaluateOutputs(key).seeds) for key in experiments}
    for sweep in sweeps:
        rows = read_csv(SweepOutputs(sweep).seeds)
        tables |= {point_key(sweep, point): group.drop(columns="point").reset_index(drop=True)
                   for point, group in rows.groupby("point", sort=False)}
    return tables


def dataset_file(name: str, part: str) -> Path:
    return DATA / name / f"{part}.csv"


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary sibling path; it replaces `path` only if the block succeeds. The temporary
    siblings an earlier write of `path` left when it was killed (SIGKILL runs no `finally`) go
    first: each output has one writer at a time (its stage, under DVC's lock), so they are dead."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for leftover in path.parent.glob(f".{glob.escape(path.name)}.*"):
        _remove(leftover)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    tmp.unlink()
    try:
        yield tmp
        if tmp.is_dir() and path.is_dir():
            shutil.rmtree(path)  # a directory cannot be replaced while it has files
        os.replace(tmp, path)
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    """A file or a directory, if it is there."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def rounded(tree):
    """Floats rounded to SIGNIFICANT_DIGITS, in nested dicts and lists."""
    if isinstance(tree, dict):
        return {k: rounded(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [rounded(v) for v in tree]
    if isinstance(tree, float) and np.isfinite(tree):
        return float(f"{tree:.{SIGNIFICANT_DIGITS}g}")
    return tree


def _nulls(tree):
    """JSON has no NaN: a number that could not be measured (a diverged model's) becomes null."""
    if isinstance(tree, dict):
        return {k: _nulls(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_nulls(v) for v in tree]
    return None if isinstance(tree, float) and not np.isfinite(tree) else tree


def write_json(path: Path, data) -> None:
    write_text(path, json.dumps(_nulls(rounded(data)), indent=2, allow_nan=False) + "\n")


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def write_csv(path: Path, frame: pd.DataFrame, rounded: bool = True) -> None:
    """A table as CSV; measured numbers `rounded` to SIGNIFICANT_DIGITS, data kept exact."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format=f"%.{SIGNIFICANT_DIGITS}g" if rounded else None)


def read_csv(path: Path) -> pd.DataFrame:
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: missing; run `dvc repro` to make it")
    return pd.read_csv(path)


def write_points(path: Path, points: Points) -> None:
    write_csv(path, pd.DataFrame({"x1": points.X[:, 0], "x2": points.X[:, 1], "y": points.y}), rounded=False)


def read_points(path: Path) -> Points:
    table = read_csv(path)
    return Points(table[["x1", "x2"]].to_numpy(np.float64), table["y"].to_numpy(np.int64))


def read_splits(dataset: str) -> Splits:
    return Splits(read_points(dataset_file(dataset, "train")), read_points(dataset_file(dataset, "test")))


# --- Training snapshots: train@ writes them, evaluate@ draws the boundary's evolution from them --


def write_snapshots(path: Path, snapshots: Snapshots) -> None:
    """snapshots.npz: `epochs`, `kernel_<j>` and `bias_<j>` (float32) per Dense layer j. Written
    with a fixed timestamp per member (np.savez stamps the current time), so the same weights give
    the same bytes; uncompressed, as trained weights hardly compress."""
    arrays = {"epochs": np.asarray(snapshots.epochs, np.int64)}
    for j, (kernel, bias) in enumerate(zip(snapshots.kernels, snapshots.biases, strict=True)):
        arrays |= {f"kernel_{j}": np.asarray(kernel, np.float32), f"bias_{j}": np.asarray(bias, np.float32)}
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(member, "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, array, allow_pickle=False)


def read_snapshots(path: Path) -> Snapshots:
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: missing; run `dvc repro` to make it")
    with np.load(path, allow_pickle=False) as data:
        n_layers = sum(name.startswith("kernel_") for name in data.files)
        return Snapshots(data["epochs"], [data[f"kernel_{j}"] for j in range(n_layers)],
                         [data[f"bias_{j}"] for j in range(n_layers)])


@contextmanager
def quiet_stderr(enabled: bool = True):
    """Hide what C++ libraries print on file descriptor 2 while the block runs (TensorFlow's
    start-up lines are printed by absl before any Python logging setting can apply)."""
    if not enabled:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
