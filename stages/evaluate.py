"""evaluate@<experiment>: score every seed's model, draw the experiment's figures, record its MLflow runs.

Reads what train@ wrote (models/<experiment>/) and the dataset; writes results/<experiment>/, which
is all that report reads. The forward pass is NumPy; TensorFlow is imported only to log the
representative seed's model to MLflow in its Keras flavour.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from threadpoolctl import threadpool_limits

from intuition import evolution, figures, files, metrics, tracking
from intuition.config import load_stage
from intuition.datasets import split_validation
from intuition.inside import Inside, look_inside
from intuition.network import class_probabilities, load_layers, predict_proba
from intuition.types import Grid, Points, Snapshots, Splits


def inside_figures(inside: Inside, grid: Grid, points: Points, key: str, note: str) -> dict[str, Figure]:
    """What every unit computes, and (relu networks) the linear regions: one model's insides."""
    drawings = {"neuron_tiles": figures.neuron_tiles(inside.maps, key, note, no_regions=inside.no_regions)}
    if inside.regions is not None:
        drawings["linear_regions"] = figures.linear_regions(inside.regions, grid, points, key, subtitle=note)
    return drawings


@dataclass(frozen=True)
class Evolution:
    """The representative seed's boundary at every snapshot: as data, as GIF frames, as a filmstrip."""

    frames: list[figures.EvolutionFrame]
    gif_frames: list[np.ndarray]
    filmstrip: Figure


def boundary_evolution(model: list, snapshots: Snapshots, seed: int, history: pd.DataFrame,
                       splits: Splits, margin: float, key: str, epochs: int, note: str) -> Evolution:
    grid = metrics.make_grid(splits.all.X, evolution.GRID_RESOLUTION, margin)
    frames = evolution.evolution_frames(model, snapshots, seed, history, grid, splits.train, splits.test)
    return Evolution(frames, [evolution.render(frame, key, epochs) for frame in frames],
                     figures.evolution_filmstrip(evolution.filmstrip_frames(frames), epochs, key, subtitle=note))


def main() -> None:
    # The forward passes are small matrix products: with two stages on two cores (`make run`),
    # OpenBLAS' second thread only contends (measured: 30 passes of the 4x100 model over 80² points,
    # 0.25 s on one thread vs 0.64 s on two while the other core is busy).
    threadpool_limits(1, user_api="blas")
    params, key = load_stage("experiments")
    spec, trained, out = params.experiments[key], files.TrainOutputs(key), files.EvaluateOutputs(key)
    experiment_id = tracking.exit_if_unavailable(params.mlflow.experiment_name)
    training = files.read_json(trained.training)
    history = files.read_csv(trained.history)
    splits = files.read_splits(spec.dataset)
    cut = split_validation(splits.train, spec.validation_split)
    labelled = {"train": cut.fit, "val": cut.val, "test": splits.test}
    grid = metrics.make_grid(splits.all.X, params.plots.grid_resolution, params.plots.margin)
    n_seeds = len(training["seeds"])

    # Compute: every seed's probabilities on each split and over the grid, its metrics.
    models = [load_layers(trained.model(i)) for i in range(n_seeds)]
    probas = [{split: predict_proba(m, points.X) for split, points in labelled.items()} for m in models]
    insides = [look_inside(m, grid, splits.all.X) for m in models]  # every unit; linear regions (relu)
    grid_probas = np.stack([class_probabilities(inside.maps[-1].values) for inside in insides])  # the same pass
    untrained = history[history["epoch"] == 0].set_index("seed")["loss"]
    per_seed = pd.DataFrame([
        {"seed": i, **metrics.seed_row(labelled, probas[i], grid_probas[i], untrained[i],
                                       training["diverged_at_epoch"][i]),
         **metrics.region_row(insides[i])}
        for i in range(n_seeds)])
    summary = metrics.summarise(per_seed, grid_probas)
    rep = summary["representative_seed"]
    test_pred = probas[rep]["test"].argmax(axis=1)

    # Draw: one model's figures from the representative seed, the others over all seeds.
    note = f"representative seed {rep} of {n_seeds} (median validation loss)"
    view = figures.RegionsView(grid, grid_probas[rep], splits.train, splits.test, test_pred,
                               float(per_seed.loc[rep, "test.accuracy"]))
    # splits.all is the fitted rows, the validation rows, then the test rows: predicted above already.
    all_pred = np.concatenate([probas[rep][split].argmax(axis=1) for split in ("train", "val", "test")])
    drawings = {
        "training_curves": figures.training_curves(history, key, representative_seed=rep),
        "seed_agreement": figures.seed_agreement(grid, grid_probas, splits.all, key),
        "decision_regions": figures.decision_regions(view, key, subtitle=note),
        "probability_maps": figures.probability_maps(grid, grid_probas[rep], splits.all, key, spec.is_binary,
                                                     subtitle=note),
        "true_vs_predicted": figures.true_vs_predicted(splits.all, all_pred, key, subtitle=note),
        "architecture": figures.architecture_diagram(
            [figures.LayerBox(l.units, l.activation, n) for l, n in zip(spec.layers, spec.parameter_counts())],
            key, standardized=spec.inputs == "standardized", features=spec.features),
    }
    drawings |= inside_figures(insides[rep], grid, splits.all, key, note)
    evolved = boundary_evolution(models[rep], files.read_snapshots(trained.snapshots), rep, history, splits,
                                 params.plots.margin, key, spec.epochs, note)
    drawings[out.evolution_filmstrip.stem] = evolved.filmstrip

    # Write: every output complete or not at all.
    n_classes = params.dataset_of(key).n_classes
    files.write_json(out.metrics, summary)
    files.write_csv(out.seeds, per_seed)
    files.write_csv(out.curves, tracking.mean_curves(history))
    files.write_csv(out.confusion, metrics.confusion(splits.test.y, test_pred, n_classes))
    files.write_csv(out.test_predictions, pd.DataFrame(
        {"x1": splits.test.X[:, 0], "x2": splits.test.X[:, 1], "actual": splits.test.y, "predicted": test_pred}),
        rounded=False)
    with files.atomic_path(out.regions) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, xx=grid.xx, yy=grid.yy, proba=grid_probas[rep].astype(np.float32),
                                train_X=splits.train.X, train_y=splits.train.y, test_X=splits.test.X,
                                test_y=splits.test.y, test_pred=test_pred)
    with files.atomic_path(out.figures) as tmp:
        tmp.mkdir()
        for name, fig in drawings.items():
            fig.savefig(tmp / f"{name}.png", dpi=params.plots.dpi)
        (tmp / out.evolution_gif.name).write_bytes(evolution.gif_bytes(evolved.gif_frames))

    # Record: the parent run and one child per seed, from the files just written.
    run_id = tracking.record(experiment_id, tracking.ExperimentRecord(
        key=key, params=tracking.params_by_role(spec, params.dataset_of(key), params.seed, n_seeds),
        tags={"dataset": spec.dataset, "architecture": spec.architecture(),
              "dvc_stages": f"train@{key}, evaluate@{key}"},
        training=training, history=history, per_seed=per_seed, summary=tracking.summary_metrics(summary),
        representative=rep,
        model_path=trained.model(rep),
        training_data=pd.DataFrame({"x1": cut.fit.X[:, 0], "x2": cut.fit.X[:, 1], "y": cut.fit.y.astype(float)}),
        artifacts=[out.metrics, out.seeds, trained.history, out.confusion, out.figures],
        architecture_text=spec.summary(),
        evolution={frame.epoch: evolution.picture(image) for frame, image in zip(evolved.frames, evolved.gif_frames)},
    ))

    test = summary.get("test", {}).get("accuracy", {"mean": np.nan, "sd": np.nan})
    failed = n_seeds - summary["learned_seeds"]
    print(f"{key}: test accuracy {test['mean']:.3f} ± {test['sd']:.3f} over {n_seeds} seeds"
          + (f"  ({failed} FAILED TO LEARN)" if failed else "") + f"; MLflow run {run_id}")


if __name__ == "__main__":
    main()
