"""Where every output lives, and writing it so that a killed stage leaves no half-written file.

dvc.yaml declares the same paths; this module is the Python side of that contract.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA = Path("data")
RESULTS = Path("results")
REPORT = Path("report")
DATA_COLUMNS = ("x1", "x2", "y")


@dataclass(frozen=True)
class ExperimentFiles:
    key: str

    @property
    def root(self) -> Path:
        return RESULTS / self.key

    # train@
    model = property(lambda self: self.root / "model.keras")
    history = property(lambda self: self.root / "history.csv")
    run = property(lambda self: self.root / "mlflow_run.json")
    # evaluate@
    metrics = property(lambda self: self.root / "metrics.json")
    confusion = property(lambda self: self.root / "confusion_matrix.csv")
    test_predictions = property(lambda self: self.root / "test_predictions.csv")
    figures = property(lambda self: self.root / "figures")


def dataset_file(name: str, part: str) -> Path:
    return DATA / name / f"{part}.csv"


@contextmanager
def atomic_path(path: Path):
    """Yield a temporary sibling path; it replaces `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
        if tmp.is_dir():
            shutil.rmtree(tmp)
        elif tmp.exists():
            tmp.unlink()


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: Path, data) -> None:
    write_text(path, json.dumps(data, indent=2, allow_nan=False) + "\n")


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def write_table(path: Path, columns: list[str], rows) -> None:
    """A small CSV table (header + rows) from a 2-D array or list of rows."""
    rows = np.asarray(rows, dtype=float) if len(rows) else np.empty((0, len(columns)))
    lines = [",".join(columns)]
    lines += [",".join(_fmt(v) for v in row) for row in rows]
    write_text(path, "\n".join(lines) + "\n")


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def read_table(path: Path) -> dict[str, np.ndarray]:
    header = Path(path).read_text().split("\n", 1)[0].split(",")
    values = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2).reshape(-1, len(header))
    return {name: values[:, i] for i, name in enumerate(header)}


def write_dataset(path: Path, X: np.ndarray, y: np.ndarray) -> None:
    write_table(path, list(DATA_COLUMNS), np.column_stack([X, y]))


def read_dataset(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: dataset file is missing; run `dvc repro` to generate it")
    table = read_table(path)
    return np.column_stack([table["x1"], table["x2"]]), table["y"].astype(np.int64)


def read_splits(dataset: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_test, y_test) of a generated dataset."""
    return (*read_dataset(dataset_file(dataset, "train")), *read_dataset(dataset_file(dataset, "test")))
