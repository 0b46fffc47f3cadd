"""The report's offline site: HTML pages built from what evaluate@ and sweep@ wrote, read in a browser
from disk (report/site/index.html) with no network and no server.

Pure: the pages' data in, the pages' texts out (stages/report.py reads the files and writes the
site). The pages are Jinja2 templates (intuition/site_templates/); the images stay where evaluate@
and sweep@ wrote them and are linked by relative paths, so the site itself is small. What a page
does in the browser (sorting a table, the epoch slider, the compare page) is a few functions of
plain JavaScript in site.js, with no library: nothing to fetch, and from file:// a page cannot
fetch anyway, so the compare page's data come as a <script> (data.js).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import jinja2
import pandas as pd

from intuition.findings import Outcome, citation_link
from intuition.robustness import Draws

TEMPLATES = Path(__file__).with_name("site_templates")
RESULTS_FROM_SITE = PurePosixPath("../../results")  # report/site/ -> results/
STATIC = ("site.css", "site.js")

# The figures evaluate@ draws, in the order a reader wants them, with what each shows.
FIGURE_CAPTIONS = {
    "decision_regions": "Decision regions of the representative seed, train and test points, errors marked",
    "probability_maps": "Each class's probability over the plane",
    "seed_agreement": "Where the seeds agree: how many predict the majority class",
    "training_curves": "Loss and accuracy per epoch, every seed",
    "evolution_filmstrip": "The boundary forming during training (a few snapshots)",
    "neuron_tiles": "What every unit computes",
    "linear_regions": "The relu network's linear regions",
    "true_vs_predicted": "True vs predicted class of every point",
    "architecture": "The network",
}


@dataclass(frozen=True)
class ExperimentView:
    """One experiment as the site shows it."""

    key: str
    dataset: str
    architecture: str  # 'relu 100-100 → softmax 3'
    summary_text: str  # the layer table (ExperimentSpec.summary)
    inputs: str
    optimizer: str
    learning_rate: float
    parameters: int
    headline: dict  # headline.json
    metrics: dict  # metrics.json
    seeds: pd.DataFrame  # seeds.csv
    curves: pd.DataFrame  # curves.csv: mean over seeds per epoch
    evolution: dict  # evolution.json: the frames' epochs, validation accuracy and size
    mlflow_run: dict | None  # mlflow_run.json
    figures: tuple[str, ...]  # names of the PNGs in figures/, without .png

    @property
    def results(self) -> PurePosixPath:
        return RESULTS_FROM_SITE / self.key


@dataclass(frozen=True)
class SweepView:
    key: str
    base: str
    axes: dict[str, list]
    metrics: dict  # metrics.json
    points: pd.DataFrame  # points.csv
    figures: tuple[str, ...]  # names of the PNGs in figures/


@dataclass(frozen=True)
class Site:
    """Every page's data."""

    title: str
    seeds: int
    experiments: dict[str, ExperimentView]  # in params.yaml's order
    datasets: list[str]  # params.yaml's order
    outcomes: list[Outcome]
    draws: dict[str, Draws]  # over base seeds, by finding id
    sweeps: dict[str, SweepView]


# ------------------------------------------------------------------------------------- numbers


def fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if abs(value) < 1e6 else f"{value:.3g}"
    return str(value)


def mean_sd(stats: dict | None) -> str:
    return "n/a" if not stats else f"{stats['mean']:.3f} ± {stats['sd']:.3f}"


def flatten(tree: dict, prefix: str = "") -> list[tuple[str, object]]:
    """metrics.json as rows: ('test.accuracy.mean', 0.99), ..."""
    rows = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        rows += flatten(value, name + ".") if isinstance(value, dict) else [(name, value)]
    return rows


def status_words(headline: dict, summary: dict) -> str:
    """headline.json's grade in words, with metrics.json's seed counts: 'ok', 'poor' or
    '1/5 seeds FAILED TO LEARN' (the leaderboard's and the gallery's wording too)."""
    if headline["status"] == "failed":
        return f"{summary['seeds'] - summary['learned_seeds']}/{summary['seeds']} seeds FAILED TO LEARN"
    return headline["status"]


def status_text(view: ExperimentView) -> str:
    return status_words(view.headline, view.metrics)


def table(frame: pd.DataFrame) -> dict:
    """A DataFrame as a template's table: header and formatted cells, with the raw value to sort by."""
    rows = [[(fmt(v.item() if hasattr(v, "item") else v), sort_key(v)) for v in row]
            for row in frame.itertuples(index=False)]
    return {"header": list(frame.columns), "rows": rows}


def sort_key(value) -> str:
    """What the leaderboard's JavaScript sorts a cell by: a number where there is one."""
    if isinstance(value, bool) or value is None:
        return str(value)
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return repr(number) if math.isfinite(number) else ""


# -------------------------------------------------------------------------------------- pages


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True)
    env.filters |= {"fmt": fmt, "mean_sd": mean_sd}
    env.globals |= {"citation_link": citation_link, "status_text": status_text, "json": _json}
    return env


def _json(data) -> str:
    return json.dumps(data, separators=(",", ":"), allow_nan=False)


def experiment_data(view: ExperimentView) -> dict:
    """What the epoch slider and the compare page need of an experiment."""
    curves = view.curves
    return {
        "key": view.key, "dataset": view.dataset, "architecture": view.architecture,
        "status": view.headline["status"], "test_accuracy": view.headline["test_accuracy"],
        "frames": str(view.results / "evolution_frames.png"),
        "frame_height": view.evolution["frame_height"], "frame_width": view.evolution["frame_width"],
        "epochs": view.evolution["epochs"], "frame_val_accuracy": view.evolution["val_accuracy"],
        "curves": {name: [None if not math.isfinite(v) else round(float(v), 4) for v in curves[name]]
                   for name in ("epoch", "loss", "val_loss", "accuracy", "val_accuracy") if name in curves},
    }


def figure_order(names: tuple[str, ...]) -> list[str]:
    """An experiment's figures in FIGURE_CAPTIONS' order; a sweep's accuracy maps first."""
    known = [name for name in FIGURE_CAPTIONS if name in names]
    rest = sorted(set(names) - set(known), key=lambda name: (not name.startswith("phase_test_accuracy"), name))
    return known + rest


def sweep_maps(sweep: SweepView) -> list[dict]:
    """A sweep's mean test accuracy as HTML tables over its first two axes, one per value of the rest:
    each cell links to its point's row."""
    axes = list(sweep.axes)
    rows_axis, cols_axis = axes[0], axes[1] if len(axes) > 1 else None
    rest = axes[2:]
    points = sweep.points
    maps = []
    facets = points.groupby(rest, sort=False) if rest else [((), points)]
    for values, frame in facets:
        values = values if isinstance(values, tuple) else (values,)
        title = ", ".join(f"{axis} = {value}" for axis, value in zip(rest, values))
        columns = list(dict.fromkeys(frame[cols_axis])) if cols_axis else [None]
        grid = []
        for row_value in dict.fromkeys(frame[rows_axis]):
            cells = []
            for col_value in columns:
                match = frame[(frame[rows_axis] == row_value) & ((frame[cols_axis] == col_value) if cols_axis else True)]
                if match.empty:
                    cells.append(None)
                    continue
                point = match.iloc[0]
                cells.append({"point": point["point"], "mean": float(point["test_accuracy"]),
                              "sd": float(point["test_accuracy_sd"]),
                              "failed": int(point["learned_seeds"]) < int(point["seeds"]),
                              "learned": f"{int(point['learned_seeds'])}/{int(point['seeds'])}"})
            grid.append((row_value, cells))
        maps.append({"title": title, "rows_axis": rows_axis, "cols_axis": cols_axis, "columns": columns, "grid": grid})
    return maps


def pages(site: Site) -> dict[str, str]:
    """Every file of the site: its path under report/site/ and its text."""
    env = _environment()
    common = {"site": site, "title": site.title}
    out = {name: (TEMPLATES / name).read_text() for name in STATIC}
    out["index.html"] = env.get_template("index.html").render(common, root="", page="overview")
    out["leaderboard.html"] = env.get_template("leaderboard.html").render(common, root="", page="leaderboard")
    out["compare.html"] = env.get_template("compare.html").render(common, root="", page="compare")
    out["data.js"] = "window.SITE_DATA = " + _json(
        {key: experiment_data(view) for key, view in site.experiments.items()}) + ";\n"
    if site.sweeps:
        out["sweeps.html"] = env.get_template("sweeps.html").render(
            common, root="", page="sweeps", maps={key: sweep_maps(s) for key, s in site.sweeps.items()},
            figures={key: figure_order(s.figures) for key, s in site.sweeps.items()},
            tables={key: table(s.points) for key, s in site.sweeps.items()})
    template = env.get_template("experiment.html")
    for key, view in site.experiments.items():
        out[f"experiments/{key}.html"] = template.render(
            common, root="../", page="experiment", view=view, data=experiment_data(view),
            figures=figure_order(view.figures), captions=FIGURE_CAPTIONS,
            metrics_rows=flatten(view.metrics), seeds_table=table(view.seeds))
    return out
