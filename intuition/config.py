"""The params.yaml schema: the one place that knows what a valid dataset or experiment is.

Every stage calls `load_params()` before doing any work, so bad input fails with one line per
problem (key, bad value, what is allowed) and nothing is written.
"""

from __future__ import annotations

import itertools
import math
import re
import sys
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from intuition import features as playground

PARAMS_FILE = Path("params.yaml")
KEY_PATTERN = r"^[a-z0-9_]+$"

HIDDEN_ACTIVATIONS = ("relu", "sigmoid", "tanh", "linear")
Fraction = Annotated[float, Field(gt=0, lt=1)]
PositiveInt = Annotated[int, Field(strict=True, ge=1)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TwoClasses(Strict):
    """A dataset kind that always has two classes."""

    @property
    def n_classes(self) -> int:
        return 2


class ClassificationData(TwoClasses):
    """scikit-learn make_classification: two linearly separable blobs."""

    kind: Literal["classification"]
    n_samples: PositiveInt = 500
    random_state: int = 30
    test_fraction: Fraction = 0.2


class BandsData(TwoClasses):
    """Two parabolic bands: make_regression points (x, (y/100)^2), and the same shifted up."""

    kind: Literal["bands"]
    n_samples: PositiveInt = 500
    noise: Annotated[float, Field(ge=0)] = 10.0
    offset: float = 0.5
    random_state: int = 0
    test_fraction: Fraction = 0.2


class SpiralData(Strict):
    """The notebook's generate_spiral_data: interleaved spiral arms, one per class."""

    kind: Literal["spiral"]
    n_classes: Annotated[int, Field(strict=True, ge=2)] = 3
    points_per_class: PositiveInt = 300
    data_limit: Annotated[float, Field(gt=2)] = 30
    noise: Annotated[float, Field(ge=0)] = 1.0
    test_fraction: Fraction = 0.2


class PlaygroundData(TwoClasses):
    """TensorFlow Playground's classification data (src/dataset.ts), at Playground's scale (points
    within ±6). Playground's label -1 is class 0 and +1 is class 1. `noise` is Playground's noise
    slider as a fraction (0 to 50 % = 0 to 0.5). Drawn with the global `seed`, as the spiral is."""

    kind: str  # each kind below narrows it to its own name
    n_samples: PositiveInt = 500
    noise: Annotated[float, Field(ge=0, le=0.5)] = 0.0
    test_fraction: Fraction = 0.2


class CircleData(PlaygroundData):
    """classifyCircleData: class 1 within radius 2.5, class 0 on the ring 3.5 to 5."""

    kind: Literal["circle"]


class XorData(PlaygroundData):
    """classifyXORData: class 1 in the quadrants where x1 * x2 >= 0, class 0 in the other two."""

    kind: Literal["xor"]


class GaussData(PlaygroundData):
    """classifyTwoGaussData: class 1 around (2, 2), class 0 around (-2, -2); noise widens both."""

    kind: Literal["gauss"]


class PlaygroundSpiralData(PlaygroundData):
    """classifySpiralData: two interleaved arms, radius 0 to 5 over 1.75 turns; class 0 is class 1
    turned by π. Unlike the circle's and XOR's, its noise moves the points (up to ±noise per axis)."""

    kind: Literal["playground_spiral"]


# A stripe (half a period of sin(k·x1)) must hold this many points on average: the ±6 axis holds
# 12·k/π stripes, so frequency k is at most n_samples·π/(12·this).
POINTS_PER_STRIPE = 10


class StripesData(PlaygroundData):
    """Vertical stripes for the spectral-bias experiment: points uniform in ±6 per axis, class 1 where
    sin(frequency·x1) >= 0 (after Playground's noise offset on x1), class 0 elsewhere."""

    kind: Literal["stripes"]
    frequency: float

    @property
    def max_frequency(self) -> float:
        return self.n_samples * math.pi / (12 * POINTS_PER_STRIPE)

    @model_validator(mode="after")
    def _stripes_the_points_can_show(self):
        if not 0 < self.frequency <= self.max_frequency:
            most = math.floor(self.max_frequency * 100) / 100  # rounded down: the value shown is allowed
            raise ValueError(
                f"frequency: {self.frequency:g} is not allowed: use a number above 0 and at most {most:g} "
                f"for n_samples {self.n_samples} (n_samples·π/{12 * POINTS_PER_STRIPE}, so that each of the "
                f"12·k/π stripes across ±6 holds at least {POINTS_PER_STRIPE} points on average)"
            )
        return self


class MoonsData(TwoClasses):
    """scikit-learn make_moons: two interleaving half circles; `noise` is the sd of Gaussian noise
    added to the points (scikit-learn's meaning, not Playground's)."""

    kind: Literal["moons"]
    n_samples: PositiveInt = 500
    noise: Annotated[float, Field(ge=0)] = 0.0
    random_state: int = 0
    test_fraction: Fraction = 0.2


OWN_DATA = "own_data"  # the folder your CSVs live in: dvc.yaml's generate stage depends on it


class CsvData(Strict):
    """Your own points: a CSV file under own_data/ with two numeric feature columns (`x1`, `x2`)
    and a label column (`label`), named as in its header. `classes` lists the labels in class order
    (the first is class 0); it is required so that every stage knows the number of classes without
    reading the file. generate@ reads and checks the file (intuition.datasets.read_csv_points)."""

    kind: Literal["csv"]
    path: str
    x1: Annotated[str, Field(min_length=1)] = "x1"
    x2: Annotated[str, Field(min_length=1)] = "x2"
    label: Annotated[str, Field(min_length=1)] = "label"
    classes: list[Any]
    test_fraction: Fraction = 0.2

    @model_validator(mode="after")
    def _path_inside_own_data_and_distinct_classes(self):
        path = PurePosixPath(self.path)
        if path.is_absolute() or ".." in path.parts or len(path.parts) < 2 or path.parts[0] != OWN_DATA:
            raise ValueError(
                f"path: {self.path!r} is not allowed: put the CSV inside {OWN_DATA}/ and give its path "
                f"from the project root, e.g. {OWN_DATA}/mine.csv (the generate stage depends on that folder)"
            )
        if len({self.x1, self.x2, self.label}) < 3:
            raise ValueError(
                f"x1, x2, label: {self.x1!r}, {self.x2!r}, {self.label!r} is not allowed: "
                "name three different columns of the file"
            )
        for i, value in enumerate(self.classes):
            if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
                raise ValueError(
                    f"classes[{i}]: {value!r} is not allowed: use the labels as they appear in the "
                    "file, strings or whole numbers (in YAML, quote yes, no, true, false and null)"
                )
        if len(self.classes) < 2 or len(set(self.labels)) < len(self.labels):
            raise ValueError(
                f"classes: {self.classes!r} is not allowed: list two or more different labels, "
                "in class order (the first is class 0)"
            )
        return self

    @property
    def labels(self) -> list[str]:
        """The classes as the file spells them: label text -> class index is labels.index(text)."""
        return [str(value) for value in self.classes]

    @property
    def n_classes(self) -> int:
        return len(self.classes)


DatasetSpec = Annotated[
    Union[ClassificationData, BandsData, SpiralData, CircleData, XorData, GaussData, PlaygroundSpiralData,
          StripesData, MoonsData, CsvData],
    Field(discriminator="kind"),
]


def feature_names(dataset: DatasetSpec) -> tuple[str, str]:
    """The two inputs as the data names them: your CSV's columns, else x1 and x2."""
    return (dataset.x1, dataset.x2) if isinstance(dataset, CsvData) else ("x1", "x2")


def class_names(dataset: DatasetSpec) -> list[str]:
    """Each class as the data names it: your CSV's labels, else "class 0", "class 1", ..."""
    return dataset.labels if isinstance(dataset, CsvData) else [f"class {i}" for i in range(dataset.n_classes)]


class LayerSpec(Strict):
    units: PositiveInt
    activation: Literal[HIDDEN_ACTIVATIONS + ("softmax",)]


class ExperimentSpec(Strict):
    dataset: str
    layers: Annotated[list[LayerSpec], Field(min_length=1)]
    optimizer: Literal["sgd", "adam"]
    learning_rate: Annotated[float, Field(gt=0)]
    epochs: PositiveInt
    batch_size: PositiveInt
    validation_split: Fraction
    # raw: the notebook's coordinates as they are; standardized: a Keras Normalization layer, adapted
    # on the training rows, inside the model (so the saved model still takes raw points).
    inputs: Literal["raw", "standardized"] = "raw"
    # What the first layer sees: some of Playground's features of the point (intuition.features),
    # computed inside the model (before standardizing), so the saved model still takes raw points.
    features: list[Literal[playground.NAMES]] = list(playground.DEFAULT)
    # Playground's regularisation: rate · Σ|w| (l1) and rate · Σw² (l2) over every Dense kernel (not
    # the biases), added to each seed's loss, as Keras' L1L2 kernel regularizer adds it in `fit`.
    l1: Annotated[float, Field(ge=0)] = 0.0
    l2: Annotated[float, Field(ge=0)] = 0.0

    @model_validator(mode="after")
    def _features_once_each(self):
        allowed = ", ".join(playground.NAMES)
        if not self.features:
            raise ValueError(f"features: [] is not allowed: give at least one of: {allowed}")
        repeated = sorted({name for name in self.features if self.features.count(name) > 1})
        if repeated:
            raise ValueError(f"features: {', '.join(repeated)} given twice; give each at most once, from: {allowed}")
        return self

    @model_validator(mode="after")
    def _softmax_only_at_the_output(self):
        for i, layer in enumerate(self.layers[:-1]):
            if layer.activation not in HIDDEN_ACTIVATIONS:
                raise ValueError(
                    f"layers[{i}].activation: {layer.activation!r} is only allowed on the output "
                    f"layer; hidden layers allow {', '.join(HIDDEN_ACTIVATIONS)}"
                )
        return self

    @property
    def output(self) -> LayerSpec:
        return self.layers[-1]

    @property
    def is_binary(self) -> bool:
        """One sigmoid unit: binary cross-entropy; otherwise softmax and categorical."""
        return self.output.activation == "sigmoid" and self.output.units == 1

    @property
    def hidden(self) -> list[LayerSpec]:
        return self.layers[:-1]

    def knobs(self) -> dict[str, str | int | float]:
        """What an experiment is made of, one value per knob, so two experiments can be compared
        knob by knob (a finding's `varies` names one of these)."""
        def same_or_list(values):
            values = [str(v) for v in values]
            return values[0] if len(set(values)) == 1 else "-".join(values)

        return {
            "dataset": self.dataset,
            "depth": len(self.hidden),
            "width": same_or_list(l.units for l in self.hidden) if self.hidden else "none",
            "activation": same_or_list(l.activation for l in self.hidden) if self.hidden else "none",
            "output": f"{self.output.activation} {self.output.units}",
            "optimizer": self.optimizer,
            "learning_rate": self.learning_rate,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "validation_split": self.validation_split,
            "features": "+".join(self.features),
            "inputs": self.inputs,
            "l1": self.l1,
            "l2": self.l2,
        }

    def parameter_counts(self) -> list[int]:
        """Weights and biases of each Dense layer; the first sees one input per feature."""
        sizes = [len(self.features)] + [layer.units for layer in self.layers]
        return [(fan_in + 1) * units for fan_in, units in zip(sizes, sizes[1:])]

    def summary(self) -> str:
        """The architecture as a small table, for people reading a run's artifacts."""
        rows = [self.architecture(), "", f"{'layer':<7}{'units':>6}  {'activation':<11}{'params':>7}"]
        for i, (layer, count) in enumerate(zip(self.layers, self.parameter_counts()), 1):
            rows.append(f"{i:<7}{layer.units:>6}  {layer.activation:<11}{count:>7}")
        rows.append(f"{'total':<26}{sum(self.parameter_counts()):>7}")
        return "\n".join(rows) + "\n"

    def architecture(self) -> str:
        """A one-line summary, e.g. 'relu 100-100 → softmax 3', or 'x1_squared+x2_squared → sigmoid 1'
        for a perceptron that sees the squares of the point's coordinates."""
        hidden = self.layers[:-1]
        out = f"{self.output.activation} {self.output.units}"
        groups: list[str] = []
        for layer in hidden:
            if groups and groups[-1].startswith(layer.activation + " "):
                groups[-1] += f"-{layer.units}"
            else:
                groups.append(f"{layer.activation} {layer.units}")
        return " → ".join(self._features_shown() + groups + [out])

    def _features_shown(self) -> list[str]:
        """The features ahead of the layers, unless they are the raw point (so two runs that differ
        only in their features have different architectures)."""
        return [] if tuple(self.features) == playground.DEFAULT else ["+".join(self.features)]


class PlotSettings(Strict):
    grid_resolution: Annotated[int, Field(strict=True, ge=10, le=1000)] = 150
    margin: Annotated[float, Field(ge=0, le=2)] = 0.1
    dpi: Annotated[int, Field(strict=True, ge=30, le=600)] = 100


class MlflowSettings(Strict):
    experiment_name: Annotated[str, Field(min_length=1)] = "classification-intuition"


# The knobs of ExperimentSpec.knobs(), in the order a report lists them.
KNOBS = ("dataset", "depth", "width", "activation", "output", "optimizer", "learning_rate",
         "batch_size", "epochs", "validation_split", "features", "inputs", "l1", "l2")

# --- Sweeps: a base experiment and axes (knob -> values); its points are the cross product ---------

# What a sweep's axis may vary, and what each accepts (said when a value is not accepted).
SWEEP_KNOBS = {
    "depth": "a whole number, 1 or more (hidden layers, all of the width and activation given)",
    "width": "a whole number, 1 or more (units in every hidden layer)",
    "activation": f"one of: {', '.join(HIDDEN_ACTIVATIONS)} (every hidden layer)",
    "optimizer": "one of: sgd, adam",
    "learning_rate": "a number above 0",
    "batch_size": "a whole number, 1 or more",
    "epochs": "a whole number, 1 or more",
    "inputs": "one of: raw, standardized",
    "features": f"a list of some of {', '.join(playground.NAMES)}, each once",
    "l1": "a number, 0 or more",
    "l2": "a number, 0 or more",
    "dataset": "the name of a dataset in datasets:",
}
# A sweep trains points x seeds networks in one stage on this 2-core machine: 200 points of the
# default 5 seeds are 1,000 networks, about 15 minutes for 2x100 models over 500 epochs (make bench).
MAX_SWEEP_POINTS = 200


def point_value(value) -> str:
    """An axis value as it appears in a point's name: 0.001, standardized, x1+x2+sin_x1."""
    if isinstance(value, list):
        return "+".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def point_name(values: dict) -> str:
    """A sweep point's name: its axis values in the axes' order, e.g. `depth=2,width=32,inputs=raw`."""
    return ",".join(f"{knob}={point_value(value)}" for knob, value in values.items())


def point_key(sweep: str, point: str) -> str:
    """A sweep point where an experiment's key would be: `hard_spiral[depth=1,width=8,inputs=raw]`."""
    return f"{sweep}[{point}]"


class SweepPoint(Strict):
    name: str
    values: dict[str, Any]  # axis -> this point's value, in the axes' order
    spec: ExperimentSpec


class SweepSpec(Strict):
    """A map over knobs: the `base` experiment with each combination of the `axes`' values."""

    base: str
    axes: Annotated[dict[str, list[Any]], Field(min_length=1)]
    seeds: PositiveInt | None = None  # default: the top-level `seeds`

    def n_points(self) -> int:
        return math.prod(len(values) for values in self.axes.values())

    def with_values(self, base: ExperimentSpec, values: dict) -> ExperimentSpec:
        """`base` with some axes set (raises ValueError or ValidationError for a value it does not accept)."""
        spec = base.model_dump()
        hidden = base.hidden
        depth = values.get("depth", len(hidden))
        widths = {layer.units for layer in hidden}
        activations = {layer.activation for layer in hidden}
        if "depth" in values or "width" in values or "activation" in values:
            if ("width" not in values and len(widths) != 1) or ("activation" not in values and len(activations) != 1):
                raise ValueError("the base experiment's hidden layers must share one width and one activation "
                                 "(or the sweep must set both)")
            width = values.get("width", next(iter(widths), None))
            activation = values.get("activation", next(iter(activations), None))
            spec["layers"] = [{"units": width, "activation": activation}] * depth + [spec["layers"][-1]]
        for knob in ("optimizer", "learning_rate", "batch_size", "epochs", "inputs", "features", "l1", "l2", "dataset"):
            if knob in values:
                spec[knob] = values[knob]
        return ExperimentSpec.model_validate(spec)

    def points(self, base: ExperimentSpec) -> list[SweepPoint]:
        combos = itertools.product(*self.axes.values())
        points = []
        for combo in combos:
            values = dict(zip(self.axes, combo))
            points.append(SweepPoint(name=point_name(values), values=values, spec=self.with_values(base, values)))
        return points


def _sweep_problems(name: str, sweep: SweepSpec, params: "Params") -> list[str]:
    """Every problem of one sweep, one line each, naming the key and what is allowed."""
    where = f"sweeps.{name}"
    if sweep.base not in params.experiments:
        return [f"{where}.base: {sweep.base!r} is not an experiment; defined experiments: {', '.join(params.experiments)}"]
    base = params.experiments[sweep.base]
    problems = _shape_problems(where, sweep, base)
    if problems:
        return problems
    for knob, values in sweep.axes.items():
        if knob not in SWEEP_KNOBS:
            problems.append(f"{where}.axes.{knob}: unknown knob; a sweep's axes are: {', '.join(SWEEP_KNOBS)}")
            continue
        if not values:
            problems.append(f"{where}.axes.{knob}: [] is not allowed: give at least one value, {SWEEP_KNOBS[knob]}")
        shown = [point_value(v) for v in values]
        for value in dict.fromkeys(v for v in shown if shown.count(v) > 1):
            problems.append(f"{where}.axes.{knob}: {value} is given twice; give each value once")
        for value in values:
            problems += _value_problems(where, knob, value, sweep, base, params)
    if not problems and sweep.n_points() > MAX_SWEEP_POINTS:
        sizes = " × ".join(str(len(v)) for v in sweep.axes.values())
        problems.append(f"{where}.axes: {sweep.n_points()} points ({sizes}) is more than {MAX_SWEEP_POINTS}, the limit "
                        f"for one sweep (each point trains {sweep.seeds or params.seeds} networks in one stage on "
                        "this machine); split it into several sweeps or give fewer values")
    return problems


# Stand-ins for the other shape axes while one value is checked (they are checked on their own).
SHAPE_STAND_INS = {"depth": 1, "width": 1, "activation": "relu"}


def _shape_problems(where: str, sweep: SweepSpec, base: ExperimentSpec) -> list[str]:
    """A depth, width or activation axis builds hidden layers of one width and one activation: what
    the sweep does not set must come from the base, which must then have a single one."""
    if not {"depth", "width", "activation"} & set(sweep.axes):
        return []
    problems = []
    for knob, values in (("width", [l.units for l in base.hidden]), ("activation", [l.activation for l in base.hidden])):
        if knob not in sweep.axes and len(set(values)) != 1:
            found = ", ".join(map(str, dict.fromkeys(values))) or "none (no hidden layer)"
            problems.append(f"{where}.axes: the base {sweep.base}'s hidden {knob}s are {found}: sweeping depth, width "
                            f"or activation needs one {knob} from the base, or a {knob} axis")
    return problems


def _value_problems(where: str, knob: str, value, sweep: SweepSpec, base: ExperimentSpec, params: "Params") -> list[str]:
    """One value of one axis, set on the base: is it accepted, and does the output fit its dataset?"""
    shown = f"{where}.axes.{knob}: {value!r} is not allowed"
    if knob == "dataset":
        if not isinstance(value, str) or value not in params.datasets:
            return [f"{shown}: use {SWEEP_KNOBS[knob]} {', '.join(params.datasets)}"]
    elif isinstance(value, bool) or (knob in ("depth", "width", "batch_size", "epochs") and not isinstance(value, int)):
        return [f"{shown}: use {SWEEP_KNOBS[knob]}"]
    stand_ins = {k: v for k, v in SHAPE_STAND_INS.items() if k in sweep.axes and k != knob and knob in SHAPE_STAND_INS}
    try:
        spec = sweep.with_values(base, stand_ins | {knob: value})
    except ValidationError:
        return [f"{shown}: use {SWEEP_KNOBS[knob]}"]
    except ValueError as exc:
        return [f"{shown}: {exc}"]
    problem = _output_problem(spec, params.datasets[spec.dataset].n_classes)
    return [f"{shown}: the base's {problem}"] if problem else []


class Params(Strict):
    seed: int
    # Every experiment is trained `seeds` times (seed + 0, ..., seed + seeds - 1: initial weights and
    # batch order); the dataset and its validation rows are the same for every seed.
    seeds: PositiveInt = 5
    mlflow: MlflowSettings = MlflowSettings()
    plots: PlotSettings = PlotSettings()
    datasets: Annotated[dict[str, DatasetSpec], Field(min_length=1)]
    experiments: Annotated[dict[str, ExperimentSpec], Field(min_length=1)]
    sweeps: dict[str, SweepSpec] = {}

    @model_validator(mode="after")
    def _cross_references(self):
        if "sweeps" in self.experiments:  # results/sweeps/ holds the sweeps' results
            raise ValueError("experiments.sweeps: the key 'sweeps' is reserved for results/sweeps/; name it otherwise")
        for section in ("datasets", "experiments", "sweeps"):
            for key in getattr(self, section):
                if not re.match(KEY_PATTERN, key):
                    raise ValueError(
                        f"{section}.{key}: key {key!r} is not allowed; use lower-case letters, "
                        "digits and '_' (it becomes a DVC stage name)"
                    )
        for key, exp in self.experiments.items():
            where = f"experiments.{key}"
            if exp.dataset not in self.datasets:
                raise ValueError(
                    f"{where}.dataset: {exp.dataset!r} is not a dataset; "
                    f"defined datasets: {', '.join(self.datasets)}"
                )
            problem = _output_problem(exp, self.datasets[exp.dataset].n_classes)
            if problem:
                raise ValueError(f"{where}.layers[{len(exp.layers) - 1}]: {problem}")
        problems = [line for name, sweep in self.sweeps.items() for line in _sweep_problems(name, sweep, self)]
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def sweep_points(self, name: str) -> list[SweepPoint]:
        sweep = self.sweeps[name]
        return sweep.points(self.experiments[sweep.base])

    def specs(self) -> dict[str, ExperimentSpec]:
        """Every experiment, and every sweep point as `<sweep>[<point>]` (the name findings.yaml
        uses for it): what a finding can compare."""
        return self.experiments | {point_key(name, p.name): p.spec for name in self.sweeps for p in self.sweep_points(name)}

    def sweep_seeds(self, name: str) -> list[int]:
        """The seeds every point of the sweep trains with: seed, seed + 1, ..."""
        return [self.seed + i for i in range(self.sweeps[name].seeds or self.seeds)]

    def dataset_of(self, experiment: str) -> DatasetSpec:
        return self.datasets[self.experiments[experiment].dataset]


def _output_problem(exp: ExperimentSpec, n_classes: int) -> str | None:
    """Why the experiment's output layer does not fit a dataset of `n_classes` classes, or None."""
    out = exp.output
    if (out.activation == "softmax" and out.units == n_classes) or (n_classes == 2 and exp.is_binary):
        return None
    allowed = f"softmax with {n_classes} units"
    if n_classes == 2:
        allowed = "1 sigmoid unit or " + allowed
    return (f"output layer {{units: {out.units}, activation: {out.activation}}} does not fit dataset "
            f"{exp.dataset!r} ({n_classes} classes); allowed: {allowed}")


class ParamsError(Exception):
    """Bad params.yaml: the message is meant for the user, one problem per line."""


DATASET_KINDS = {"classification": ClassificationData, "bands": BandsData, "spiral": SpiralData,
                 "circle": CircleData, "xor": XorData, "gauss": GaussData, "playground_spiral": PlaygroundSpiralData,
                 "stripes": StripesData, "moons": MoonsData, "csv": CsvData}


def _path(loc: tuple) -> list:
    """Pydantic's error location as the user's key path: a discriminated union inserts the
    variant's tag after the dataset key, which is not a key in params.yaml."""
    parts = [p for p in loc if not str(p).startswith("function-after")]
    if len(parts) > 2 and parts[0] == "datasets" and parts[2] in DATASET_KINDS:
        del parts[2]
    return parts


def _format(parts: list) -> str:
    text = ""
    for p in parts:
        text += f"[{p}]" if isinstance(p, int) else f".{p}"
    return text.lstrip(".")


def _model_at(parts: list, raw: dict):
    """The schema class that owns the key at `parts` (for listing the allowed keys)."""
    if len(parts) == 1:
        return Params
    section = parts[0]
    if section == "plots":
        return PlotSettings
    if section == "mlflow":
        return MlflowSettings
    if section == "datasets":
        kind = (raw.get("datasets", {}).get(parts[1]) or {}).get("kind")
        return DATASET_KINDS.get(kind)
    if section == "experiments":
        return LayerSpec if "layers" in parts else ExperimentSpec
    if section == "sweeps":
        return SweepSpec
    return None


def _describe(error: dict, raw: dict) -> str:
    parts = _path(error["loc"])
    loc = _format(parts)
    kind, msg, value = error["type"], error["msg"], error.get("input")
    if kind == "missing":
        return f"{loc}: missing key"
    if kind == "extra_forbidden":
        model = _model_at(parts, raw)
        allowed = f"; allowed keys: {', '.join(model.model_fields)}" if model else ""
        return f"{loc}: unknown key (value {value!r}){allowed}"
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
        return f"{loc}.{msg}" if loc and not msg.startswith(("datasets.", "experiments.")) else msg
    kinds = ", ".join(DATASET_KINDS)
    if kind == "union_tag_invalid":
        return f"{loc}.kind: {value.get('kind')!r} is not allowed; use one of: {kinds}"
    if kind == "union_tag_not_found":
        return f"{loc}.kind: missing key; use one of: {kinds}"
    if parts == ["seeds"]:  # every way to get it wrong (0, -1, 2.5, 'five', true) has one fix
        return f"{loc}: {value!r} is not allowed: use a whole number, 1 or more (how many times each experiment is trained)"
    if kind in ("greater_than", "less_than") and parts[-1] in ("test_fraction", "validation_split"):
        return f"{loc}: {value!r} is not allowed: use a fraction strictly between 0 and 1"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "").replace("'", "").replace(" or ", ", ")
        return f"{loc}: {value!r} is not allowed; use one of: {expected}"
    if kind == "too_short":
        return f"{loc}: {value!r} is not allowed: give at least one item"
    if kind == "list_type" and parts[:1] == ["sweeps"] and "axes" in parts:
        return f"{loc}: {value!r} is not allowed: give the axis' values as a list, e.g. [8, 16, 32]"
    if kind == "list_type" and parts[-1] == "features":
        return (f"{loc}: {value!r} is not allowed: give a list, e.g. [x1_squared, x2_squared], of: "
                f"{', '.join(playground.NAMES)}")
    return f"{loc}: {value!r} is not allowed: {msg}"


def parse_params(raw: object, source: Path = PARAMS_FILE) -> Params:
    if not isinstance(raw, dict):
        raise ParamsError(f"{source}: expected a mapping at the top level, got {raw!r}")
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{source}: {line}" for e in exc.errors() for line in _describe(e, raw).splitlines()]
        raise ParamsError("\n".join(dict.fromkeys(lines))) from None


def read_yaml(path: Path):
    """A YAML file's content, or one ParamsError line naming the file (and line) and the problem."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found (run from the project root)") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ParamsError(f"{path}: not valid YAML{where}: {problem}") from None


def load_params(path: Path = PARAMS_FILE) -> Params:
    return parse_params(read_yaml(path), path)


@contextmanager
def user_errors():
    """For entry points: a user error is printed as one `error:` line, without a traceback."""
    try:
        yield
    except ParamsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def load_or_exit(path: Path = PARAMS_FILE) -> Params:
    with user_errors():
        return load_params(path)


def load_stage(section: str, argv: list[str] | None = None) -> tuple[Params, str]:
    """For `python -m stages.<stage> <key>`: validated params and a key that exists in `section`."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print(f"usage: python -m stages.<stage> <key of {section} in {PARAMS_FILE}>", file=sys.stderr)
        raise SystemExit(2)
    key = args[0]
    with user_errors():
        params = load_params()
        if key not in getattr(params, section):
            known = ", ".join(getattr(params, section))
            raise ParamsError(f"{PARAMS_FILE}: {section}.{key}: no such key; defined: {known}")
    return params, key
