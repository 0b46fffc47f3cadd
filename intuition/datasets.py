"""Dataset generators (params in, arrays out), your own CSV's points, and the splits every stage
agrees on. Everything here is pure except read_csv_points, which reads the file its spec names."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from intuition.config import (BandsData, CircleData, ClassificationData, CsvData, DatasetSpec, GaussData,
                              MoonsData, ParamsError, PlaygroundSpiralData, SpiralData, StripesData, XorData)
from intuition.types import FitSplit, Points, Splits


# scikit-learn is imported where it is used: train@ needs only `split_validation`, and importing
# sklearn costs ~0.8 s per stage.


class DatasetError(ParamsError):
    """A dataset that cannot be used as given (a bad CSV, too few rows to split): one line for the
    user, naming the file (and line) or the params key; stages print it as `error: ...`."""


def make_linear(spec: ClassificationData) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification

    return make_classification(
        n_samples=spec.n_samples, n_features=2, n_informative=1, n_redundant=0,
        n_repeated=0, n_classes=2, n_clusters_per_class=1, random_state=spec.random_state,
    )


def make_bands(spec: BandsData) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_regression

    x, t = make_regression(
        n_samples=spec.n_samples, n_features=1, noise=spec.noise, random_state=spec.random_state
    )
    lower = np.column_stack([x[:, 0], (t / 100) ** 2])
    upper = lower + [0.0, spec.offset]
    X = np.vstack([lower, upper])
    y = np.repeat([0, 1], spec.n_samples)
    return X, y


def make_spiral(spec: SpiralData, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The notebook's spiral (mightypy 0.0.2 `generate_spiral_data`), with its noise drawn from `seed`."""
    noise = np.random.default_rng(seed).normal(0.0, spec.noise, size=(spec.points_per_class, 2))
    return spiral_from_noise(spec, noise)


def spiral_from_noise(spec: SpiralData, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upstream's construction, step for step: class 0 is the arm (t cos(t/8), t sin(t/8)), t from 2
    to data_limit, plus `noise` (drawn once); each next class is the previous one's row vectors
    times the rotation matrix R(2π / n_classes), which turns them by -2π / n_classes. So every class
    is an exact rotated copy of the one noisy arm, and with 3 classes class 1 is class 0 turned by
    +240° and class 2 by +120° (docs/notebook.md says how this was checked against the original)."""
    t = np.linspace(2, spec.data_limit, spec.points_per_class)
    angle = 2 * np.pi / spec.n_classes
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    parts = [np.column_stack([t * np.cos(t / 8), t * np.sin(t / 8)]) + noise]
    for _ in range(1, spec.n_classes):
        parts.append(parts[-1] @ rotation)
    X = np.vstack(parts)
    y = np.repeat(np.arange(spec.n_classes), spec.points_per_class)
    return X, y


# ---------------------------------------------------------------------------------- Playground
# TensorFlow Playground's generators (src/dataset.ts), with its constants. Playground labels +1 and
# -1; here +1 is class 1 and -1 is class 0. Its `noise` does not move the circle's or the XOR's
# points: each point is labelled as if it were moved by a uniform offset of up to ±noise·(radius)
# per axis, so noise flips labels near the boundary. Its two-class generators make numSamples / 2
# points per class; here an odd n_samples gives the first-drawn class the extra point.

CIRCLE_RADIUS = 5  # class 1 within radius * 0.5, class 0 on the ring radius * 0.7 to radius
XOR_HALF_WIDTH = 5  # points uniform in ±5 per axis, then pushed XOR_PADDING away from each axis
XOR_PADDING = 0.3
GAUSS_CENTRE = 2.0  # class 1 around (2, 2), class 0 around (-2, -2)
SPIRAL_RADIUS = 5  # Playground's spiral arms grow from radius 0 towards 5 ...
SPIRAL_TURNS = 1.75  # ... over 1.75 turns
STRIPES_HALF_WIDTH = 6  # stripes: points uniform in ±6 per axis, the span of Playground's plots


def _halves(n: int) -> tuple[int, int]:
    return n - n // 2, n // 2


def make_circle(spec: CircleData, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """classifyCircleData: half the points at a uniform radius 0 to 2.5, half at 3.5 to 5, at a
    uniform angle; a point is class 1 when it (moved by the noise offset) lies within 2.5 of 0."""
    rng = np.random.default_rng(seed)
    inner, outer = _halves(spec.n_samples)
    r = np.concatenate([rng.uniform(0, CIRCLE_RADIUS * 0.5, inner),
                        rng.uniform(CIRCLE_RADIUS * 0.7, CIRCLE_RADIUS, outer)])
    angle = rng.uniform(0, 2 * np.pi, spec.n_samples)
    X = np.column_stack([r * np.sin(angle), r * np.cos(angle)])
    offset = rng.uniform(-CIRCLE_RADIUS, CIRCLE_RADIUS, X.shape) * spec.noise
    y = (np.hypot(*(X + offset).T) < CIRCLE_RADIUS * 0.5).astype(np.int64)
    return X, y


def make_xor(spec: XorData, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """classifyXORData: points uniform in ±5 per axis, pushed 0.3 away from both axes (so they lie
    in ±5.3); class 1 where x1 * x2 >= 0 after the noise offset (up to ±5·noise per axis)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-XOR_HALF_WIDTH, XOR_HALF_WIDTH, (spec.n_samples, 2))
    X += np.where(X > 0, XOR_PADDING, -XOR_PADDING)
    moved = X + rng.uniform(-XOR_HALF_WIDTH, XOR_HALF_WIDTH, X.shape) * spec.noise
    y = (moved[:, 0] * moved[:, 1] >= 0).astype(np.int64)
    return X, y


def gauss_sd(noise: float) -> float:
    """Playground maps noise 0 to 0.5 linearly onto a variance of 0.5 to 4 (per axis)."""
    return math.sqrt(0.5 + noise / 0.5 * (4 - 0.5))


def make_gauss(spec: GaussData, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """classifyTwoGaussData: half the points normal around (2, 2) (class 1), half around (-2, -2)
    (class 0), with the sd `gauss_sd(noise)` on each axis; labels are never flipped."""
    rng = np.random.default_rng(seed)
    positive, negative = _halves(spec.n_samples)
    sd = gauss_sd(spec.noise)
    X = np.vstack([rng.normal(GAUSS_CENTRE, sd, (positive, 2)), rng.normal(-GAUSS_CENTRE, sd, (negative, 2))])
    y = np.repeat([1, 0], [positive, negative])
    return X, y


def make_playground_spiral(spec: PlaygroundSpiralData, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """classifySpiralData: with n = n_samples / 2, point i of an arm is at radius r = i / n · 5 and
    angle t = 1.75 · i / n · 2π + Δ, i.e. (r sin t, r cos t); class 1 is the arm Δ = 0, class 0 the
    arm Δ = π (class 1 turned by π). Playground calls it with noise = its slider / 100, the same
    0-0.5 fraction as `noise` here, and unlike the circle's and XOR's its noise moves the points:
    each coordinate gets a uniform offset in ±noise (not scaled by a radius), and no label flips.
    An odd n_samples keeps n = n_samples / 2, so class 0 is class 1 turned by π without its last point."""
    rng = np.random.default_rng(seed)
    positive, negative = _halves(spec.n_samples)
    n = spec.n_samples / 2

    def arm(count: int, delta: float) -> np.ndarray:
        i = np.arange(count)
        r = i / n * SPIRAL_RADIUS
        t = SPIRAL_TURNS * i / n * 2 * np.pi + delta
        return np.column_stack([r * np.sin(t), r * np.cos(t)])

    X = np.vstack([arm(positive, 0.0), arm(negative, np.pi)])
    X += rng.uniform(-1, 1, X.shape) * spec.noise
    y = np.repeat([1, 0], [positive, negative])
    return X, y


def make_stripes(spec: StripesData, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertical stripes of width π / frequency (not a Playground dataset, but at its scale and with its
    noise): points uniform in ±6 per axis; class 1 where sin(frequency · x1) >= 0 after moving x1 by
    a uniform offset of up to ±6·noise, so noise flips labels near the stripes' edges only."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-STRIPES_HALF_WIDTH, STRIPES_HALF_WIDTH, (spec.n_samples, 2))
    moved = X[:, 0] + rng.uniform(-STRIPES_HALF_WIDTH, STRIPES_HALF_WIDTH, spec.n_samples) * spec.noise
    y = (np.sin(spec.frequency * moved) >= 0).astype(np.int64)
    return X, y


def make_moons(spec: MoonsData) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's two interleaving half circles: class 0 the upper one, class 1 the lower."""
    from sklearn.datasets import make_moons as sklearn_moons

    return sklearn_moons(n_samples=spec.n_samples, noise=spec.noise, random_state=spec.random_state)


# ---------------------------------------------------------------------------------- your own CSV


def parse_csv_points(text: str, spec: CsvData) -> Points:
    """The points of a CSV file's text, in file order; the first problem found raises a DatasetError
    naming the file and the line as an editor numbers it (the header is line 1). Cells are stripped
    of surrounding spaces; blank lines are skipped; other columns are ignored.

    The csv module rather than pandas: pandas skips blank lines without saying which line a row
    came from and turns a bad cell into NaN, so it could not name the line of a problem, which is
    what this reader is for (own data is a few thousand rows at most)."""
    def fail(problem: str, line: int | None = None):
        where = f"line {line}: " if line else ""
        raise DatasetError(f"{spec.path}: {where}{problem}")

    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows = _numbered_rows(reader, fail)
    header_line, header = next(rows, (None, None))
    if header is None:
        fail(f"the file is empty; expected a header line naming the columns {spec.x1}, {spec.x2} and {spec.label}")
    columns = [name.strip() for name in header]
    where = {}
    for role in ("x1", "x2", "label"):
        name = getattr(spec, role)
        if columns.count(name) != 1:
            problem = "appears twice in" if name in columns else "is not in"
            fail(f"{role} column {name!r} {problem} the header (columns: {', '.join(columns)})", header_line)
        where[role] = columns.index(name)

    labels = spec.labels
    X, y = [], []
    for line, row in rows:
        if len(row) != len(columns):
            fail(f"{len(row)} values, but the header has {len(columns)} columns", line)
        cells = {role: row[i].strip() for role, i in where.items()}
        point = []
        for role in ("x1", "x2"):
            name, text = getattr(spec, role), cells[role]
            if not text:
                fail(f"{name} is empty", line)
            try:
                value = float(text)
            except ValueError:
                fail(f"{name} is {text!r}, not a number", line)
            if not math.isfinite(value):
                fail(f"{name} is {text!r}, not a finite number", line)
            point.append(value)
        if not cells["label"]:
            fail(f"{spec.label} is empty", line)
        if cells["label"] not in labels:
            fail(f"{spec.label} is {cells['label']!r}, not one of the classes listed in params.yaml: {', '.join(labels)}", line)
        X.append(point)
        y.append(labels.index(cells["label"]))
    if not y:
        fail("the file has a header but no rows of data")
    return Points(np.array(X, dtype=np.float64).reshape(-1, 2), np.array(y, dtype=np.int64))


def _numbered_rows(reader, fail):
    """(line number, cells) of each non-blank row; a malformed file (e.g. an unclosed quote) fails."""
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                yield reader.line_num, row
    except csv.Error as exc:
        fail(f"not valid CSV: {exc}", reader.line_num)


def read_csv_points(spec: CsvData, root: Path = Path(".")) -> Points:
    """The points of the CSV file `spec.path` (relative to the project root `root`)."""
    path = root / spec.path
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(f"{spec.path}: file not found (paths are relative to the project root; "
                           "a file tracked with `dvc add` needs `dvc checkout` or `dvc pull`)") from None
    except IsADirectoryError:
        raise DatasetError(f"{spec.path}: is a folder; path must name a CSV file") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{spec.path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    return parse_csv_points(text, spec)


# ---------------------------------------------------------------------------------- every kind


def class_names(spec: DatasetSpec) -> list[str]:
    """How the user knows each class: the CSV's labels (quoted), else 'class <index>'."""
    if isinstance(spec, CsvData):
        return [repr(label) for label in spec.labels]
    return [f"class {k}" for k in range(spec.n_classes)]


def make_dataset(spec: DatasetSpec, seed: int, root: Path = Path(".")) -> Points:
    """The full dataset, shuffled with the seed."""
    if isinstance(spec, CsvData):
        points = read_csv_points(spec, root)
        X, y = points.X, points.y
    elif isinstance(spec, ClassificationData):
        X, y = make_linear(spec)
    elif isinstance(spec, BandsData):
        X, y = make_bands(spec)
    elif isinstance(spec, SpiralData):
        X, y = make_spiral(spec, seed)
    elif isinstance(spec, CircleData):
        X, y = make_circle(spec, seed)
    elif isinstance(spec, XorData):
        X, y = make_xor(spec, seed)
    elif isinstance(spec, GaussData):
        X, y = make_gauss(spec, seed)
    elif isinstance(spec, PlaygroundSpiralData):
        X, y = make_playground_spiral(spec, seed)
    elif isinstance(spec, StripesData):
        X, y = make_stripes(spec, seed)
    else:
        X, y = make_moons(spec)
    order = np.random.default_rng(seed).permutation(len(y))
    return Points(X[order].astype(np.float64), y[order].astype(np.int64))


def split_problem(y: np.ndarray, names: list[str], test_fraction: float) -> str | None:
    """Why `split_test` cannot cut a stratified hold-out of `test_fraction` from these labels (None if
    it can): a classifier needs two classes, a stratified split two rows of every class and, in each
    part, at least as many rows as there are classes (scikit-learn's own conditions)."""
    counts = np.bincount(y, minlength=len(names))
    present = [name for name, count in zip(names, counts) if count]
    if len(present) == 1:
        rows = "the only row is" if len(y) == 1 else f"all {len(y)} rows are"
        return f"{rows} {present[0]}; a classifier needs rows of at least two classes"
    for name, count in zip(names, counts):
        if count < 2:
            rows = "only 1 row" if count else "no rows"
            return f"{rows} of {name}; a stratified split needs at least 2 rows of every class"
    n, k = len(y), len(names)
    n_test = math.ceil(test_fraction * n)
    if n_test < k or n - n_test < k:
        return (f"{n} rows are too few to split: test_fraction {test_fraction} gives {n_test} test and "
                f"{n - n_test} training rows, and each part needs at least one row of each of the {k} classes")
    return None


def check_splittable(points: Points, spec: DatasetSpec, source: str) -> None:
    """A DatasetError naming `source` (the file, or the params key) unless the split can be cut."""
    problem = split_problem(points.y, class_names(spec), spec.test_fraction)
    if problem:
        raise DatasetError(f"{source}: {problem}")


def split_test(points: Points, test_fraction: float, seed: int) -> Splits:
    """A stratified held-out test part that training never sees."""
    from sklearn.model_selection import train_test_split

    X_train, X_test, y_train, y_test = train_test_split(
        points.X, points.y, test_size=test_fraction, stratify=points.y, random_state=seed)
    return Splits(Points(X_train, y_train), Points(X_test, y_test))


def split_validation(points: Points, validation_split: float) -> FitSplit:
    """Keras' `validation_split` semantics: the last fraction of the (already shuffled) rows,
    cut where `model.fit` cuts."""
    cut = math.floor(len(points) * (1 - validation_split))
    if cut == 0 or cut == len(points):
        raise ValueError(f"validation_split={validation_split} leaves an empty part of {len(points)} rows")
    return FitSplit(points[:cut], points[cut:])
