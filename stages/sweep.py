"""sweep@<sweep>: every point of a sweep trained, scored, drawn as maps and recorded, in one process.

A sweep is a base experiment and axes (params.yaml `sweeps:`); its points are the cross product.
Points whose Dense layers have the same shapes train in the same graph (intuition.sweep_training),
all their seeds included. Each point's trained seeds are kept under models/sweeps/<sweep>/ in a
file named by what they were trained from (a persistent DVC output), so adding a value to an axis
trains only the new points. Writes results/sweeps/<sweep>/: headline.json (DVC metrics), points.csv, seeds.csv, metrics.json,
accuracy.csv (a DVC plot) and figures/ (phase diagrams, decision regions as small multiples).
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from threadpoolctl import threadpool_limits

from intuition import files, maps, metrics, sweeps, tracking
from intuition.config import Params, SweepPoint, load_stage, point_name
from intuition.datasets import split_validation
from intuition.figures import RegionsView
from intuition.types import FitSplit, Grid, Splits


@dataclass(frozen=True)
class Data:
    """One dataset as the points see it: stored splits, the trainer's cut, the plotted grid."""

    splits: Splits
    cut: FitSplit
    grid: Grid

    @property
    def labelled(self):
        return {"train": self.cut.fit, "val": self.cut.val, "test": self.splits.test}


def read_data(params: Params, points: list[SweepPoint]) -> dict[tuple[str, float], Data]:
    """Per (dataset, validation split) the points use."""
    data = {}
    for spec in (point.spec for point in points):
        if (spec.dataset, spec.validation_split) not in data:
            splits = files.read_splits(spec.dataset)
            data[spec.dataset, spec.validation_split] = Data(
                splits, split_validation(splits.train, spec.validation_split),
                metrics.make_grid(splits.all.X, params.plots.grid_resolution, params.plots.margin))
    return data


def train_missing(key: str, points: list[SweepPoint], seeds: list[int], data: dict) -> dict[str, sweeps.TrainedPoint]:
    """Every point's trained seeds: read where its group was trained before, else its group is
    trained now (one graph) and kept at once. Files of points no longer in the sweep are removed."""
    out = files.SweepOutputs(key)
    code = sweeps.digest(sweeps.TRAINING_CODE)
    groups, paths = sweeps.groups(points), {}
    for group in groups:
        data_digest = sweeps.digest([files.dataset_file(group[0].spec.dataset, "train")])
        paths |= {name: out.trained / file for name, file in sweeps.trained_names(group, seeds, data_digest, code).items()}
    missing = [group for group in groups if not all(paths[p.name].exists() for p in group)]
    print(f"{key}: {len(points)} points in {len(groups)} groups of the same shape; training {len(missing)} groups "
          f"({sum(map(len, missing))} points), {len(groups) - len(missing)} trained before", flush=True)
    if missing:
        out.trained.mkdir(parents=True, exist_ok=True)
        train_groups(key, missing, seeds, data, paths)
    for stale in set(out.trained.glob("*.npz")) - set(paths.values()):
        stale.unlink()
    return {name: sweeps.read_trained(path) for name, path in paths.items()}


def train_groups(key: str, missing: list[list[SweepPoint]], seeds: list[int], data: dict, paths: dict) -> None:
    """The groups, costliest first, in worker processes (one per core, one BLAS/TensorFlow thread
    each): a group is one graph on one core, so two groups at a time use two cores. This process
    never imports TensorFlow. Measured on the default hard-spiral sweep (15 groups): 170 s of
    training in one process, see the README for the two-process figure."""
    workers = min(len(missing), len(os.sched_getaffinity(0)))
    order = sorted(missing, key=sweeps.group_cost, reverse=True)
    context = multiprocessing.get_context("spawn")  # TensorFlow is not fork-safe; workers start clean
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        jobs = [pool.submit(sweeps.train_and_keep, group, seeds, data[g.dataset, g.validation_split].cut,
                            {p.name: paths[p.name] for p in group},
                            f"{key} group {i}/{len(order)} ({g.architecture()})")
                for i, group in enumerate(order, 1) for g in [group[0].spec]]
        for job in as_completed(jobs):
            job.result()  # a group that failed fails the stage; the groups already kept stay


def regions_views(points: list[SweepPoint], scored: dict[str, sweeps.ScoredPoint], data: dict) -> dict[str, RegionsView]:
    """Each point's representative seed's decision regions."""
    views = {}
    for point in points:
        d, s = data[point.spec.dataset, point.spec.validation_split], scored[point.name]
        views[point.name] = RegionsView(d.grid, s.grid_probas[s.rep], d.splits.train, d.splits.test, s.test_pred)
    return views


def draw(key: str, axes: list[str], table: pd.DataFrame, views: dict[str, RegionsView]) -> dict[str, Figure]:
    """Phase diagrams for every pair of axes; decision regions with the first two axes as rows
    and columns, one figure per combination of the other axes."""
    drawings = maps.phase_diagrams(table, axes, key)
    if len(axes) == 1:
        drawings["regions"] = maps.small_multiples(views, table, axes, None, axes[0], key)
        return drawings
    rest = axes[2:]
    for combo in itertools.product(*(list(dict.fromkeys(table[a])) for a in rest)):
        facet = dict(zip(rest, combo))
        shown = table[(table[rest] == pd.Series(facet)).all(axis=1)] if rest else table
        name = "regions" + "".join(f"_{k}={v}" for k, v in facet.items())
        drawings[name] = maps.small_multiples(views, shown, axes, axes[0], axes[1], key, facet=point_name(facet))
    return drawings


def write(key: str, table: pd.DataFrame, per_seed: pd.DataFrame, summary: dict, axes: list[str],
          drawings: dict[str, Figure], dpi: int) -> None:
    out = files.SweepOutputs(key)
    files.write_csv(out.points, table)
    files.write_csv(out.seeds, per_seed)
    lines = maps.accuracy_lines(table, axes)  # the first axis' column becomes `x`: one template for every sweep
    files.write_csv(out.lines, lines.rename(columns={axes[0]: "x"}).assign(axis=axes[0]))
    files.write_json(out.metrics, summary)
    files.write_json(out.headline, sweeps.sweep_headline(table))
    with files.atomic_path(out.figures) as tmp:
        tmp.mkdir()
        for name, fig in drawings.items():
            fig.savefig(tmp / f"{name}.png", dpi=dpi)


def record(experiment_id: str, params: Params, key: str, points: list[SweepPoint], scored: dict,
           trained: dict, summary: dict) -> str:
    sweep, out, n_seeds = params.sweeps[key], files.SweepOutputs(key), len(params.sweep_seeds(key))
    return tracking.record_sweep(experiment_id, tracking.SweepRecord(
        key=key,
        params={"sweep": key, "base": sweep.base, "points": len(points), "seeds": n_seeds, "base_seed": params.seed,
                **{f"axis_{knob}": ", ".join(map(str, values)) for knob, values in sweep.axes.items()}},
        summary={"sweep/points": summary["points"], "sweep/learned_in_every_seed": summary["learned_in_every_seed"],
                 **{f"test/accuracy_{k}": v for k, v in summary["test_accuracy"].items()}},
        points=[tracking.PointRecord(
            p.name, tracking.params_by_role(p.spec, params.datasets[p.spec.dataset], params.seed, n_seeds),
            tracking.summary_metrics(scored[p.name].summary), trained[p.name].seconds) for p in points],
        artifacts=[out.headline, out.points, out.seeds, out.metrics, out.figures],
    ))


def main() -> None:
    threadpool_limits(1, user_api="blas")  # see stages/evaluate.py: two stages share two cores
    params, key = load_stage("sweeps")
    experiment_id = tracking.exit_if_unavailable(params.mlflow.experiment_name)
    points, seeds, axes = params.sweep_points(key), params.sweep_seeds(key), list(params.sweeps[key].axes)
    data = read_data(params, points)
    trained = train_missing(key, points, seeds, data)
    scored = {}
    for p in points:
        d = data[p.spec.dataset, p.spec.validation_split]
        with np.errstate(over="ignore"):  # a sigmoid of a large logit is 0 or 1, as it should be
            scored[p.name] = sweeps.score(trained[p.name], d.labelled, d.grid, d.splits.all.X)
    table = pd.DataFrame([sweeps.point_row(p, scored[p.name].summary) for p in points])
    per_seed = pd.concat([scored[p.name].per_seed.assign(point=p.name) for p in points], ignore_index=True)
    per_seed = per_seed[["point"] + [c for c in per_seed.columns if c != "point"]]
    summary = sweeps.sweep_metrics(table)
    drawings = draw(key, axes, table, regions_views(points, scored, data))
    write(key, table, per_seed, summary, axes, drawings, params.plots.dpi)
    run_id = record(experiment_id, params, key, points, scored, trained, summary)
    print(f"{key}: {len(points)} points x {len(seeds)} seeds; {summary['learned_in_every_seed']} learned in every "
          f"seed; best {summary['best_point']} at {summary['test_accuracy']['best']:.3f}; MLflow run {run_id}")


if __name__ == "__main__":
    main()
