"""evaluate@<experiment>: score every seed's model, draw the experiment's figures, record its MLflow runs.

Reads what train@ wrote (models/<experiment>/) and the dataset; writes results/<experiment>/, which
is all that report reads. The forward pass is NumPy, and the representative seed's model is logged to
MLflow in its Keras flavour from its `.keras` file: this process never imports TensorFlow.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from threadpoolctl import threadpool_limits

from intuition import evolution, figures, files, geometry, metrics, tracking
from intuition.config import Params, class_names, feature_names, load_stage
from intuition.datasets import split_validation
from intuition.inside import Inside, count_regions, look_inside
from intuition.network import class_probabilities, hidden_activations, load_layers, predict_proba
from intuition.types import FitSplit, Grid, Points, Snapshots, Splits


def inside_figures(inside: Inside, grid: Grid, points: Points, key: str, note: str,
                   names: figures.DataNames = figures.PLAIN) -> dict[str, Figure]:
    """What every unit computes, and (relu networks) the linear regions: one model's insides."""
    drawings = {"neuron_tiles": figures.neuron_tiles(inside.maps, key, note, no_regions=inside.no_regions,
                                                     names=names)}
    if inside.regions is not None:
        drawings["linear_regions"] = figures.linear_regions(inside.regions, grid, points, key, subtitle=note,
                                                            names=names)
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


@dataclass(frozen=True)
class Inputs:
    """What evaluate@<key> reads: its params, what train@<key> wrote, and the dataset."""

    params: Params
    key: str
    training: dict  # training.json: the seeds, when they trained, each seed's divergence epoch
    history: pd.DataFrame  # history.csv: per seed and epoch
    snapshots: Snapshots
    splits: Splits
    cut: FitSplit  # the training rows as the trainer cut them: fitted rows, validation rows
    grid: Grid  # the plotted region

    spec = property(lambda self: self.params.experiments[self.key])
    trained = property(lambda self: files.TrainOutputs(self.key))
    out = property(lambda self: files.EvaluateOutputs(self.key))
    n_seeds = property(lambda self: len(self.training["seeds"]))
    labelled = property(lambda self: {"train": self.cut.fit, "val": self.cut.val, "test": self.splits.test})


def read(params: Params, key: str) -> Inputs:
    spec, trained = params.experiments[key], files.TrainOutputs(key)
    splits = files.read_splits(spec.dataset)
    return Inputs(params, key, files.read_json(trained.training), files.read_csv(trained.history),
                  files.read_snapshots(trained.snapshots), splits,
                  split_validation(splits.train, spec.validation_split),
                  metrics.make_grid(splits.all.X, params.plots.grid_resolution, params.plots.margin))


@dataclass(frozen=True)
class Scored:
    """Every seed's outputs and metrics, and what metrics.json says over the seeds."""

    models: list[list]  # per seed: its layers (the NumPy forward pass)
    probas: list[dict[str, np.ndarray]]  # per seed, per split: class probabilities
    insides: list[Inside]  # per seed: every unit over the grid; linear regions (relu)
    grid_probas: np.ndarray  # (seeds, rows, cols, classes)
    per_seed: pd.DataFrame  # seeds.csv
    agreed: metrics.Agreement  # where the seeds agree: metrics.json's agreement and the figure's map
    summary: dict  # metrics.json
    headline: metrics.Headline  # headline.json: the summary in six numbers, graded
    rep: int  # the representative seed
    test_pred: np.ndarray  # the representative seed's predicted class of each test point


def regions_through_training(model: list, snapshots: Snapshots, seed: int, grid: Grid,
                             inside: Inside) -> dict[str, float]:
    """A relu network's linear regions / N² on the grid at a few snapshots (geometry.REGION_SNAPSHOTS,
    epoch 0 and the last included); nothing for a network without linear regions."""
    if not inside.piecewise_linear or inside.regions is None:
        return {}
    layers = evolution.snapshot_layers(model, snapshots, seed)
    counts = np.array([count_regions(layers[s], grid.points) for s in geometry.counted_snapshots(len(layers))])
    return geometry.regions_band(counts, inside.regions.units)


def compute(inputs: Inputs) -> Scored:
    """Every seed's probabilities on each split and over the grid, its metrics, and the summary."""
    trained, labelled, n_seeds = inputs.trained, inputs.labelled, inputs.n_seeds
    models = [load_layers(trained.model(i)) for i in range(n_seeds)]
    probas = [{split: predict_proba(m, points.X) for split, points in labelled.items()} for m in models]
    insides = [look_inside(m, inputs.grid, inputs.splits.all.X) for m in models]
    grid_probas = np.stack([class_probabilities(inside.maps[-1].values) for inside in insides])  # the same pass
    untrained = inputs.history[inputs.history["epoch"] == 0].set_index("seed")["loss"]
    per_seed = pd.DataFrame([
        {"seed": i, **metrics.seed_row(labelled, probas[i], grid_probas[i], untrained[i],
                                       inputs.training["diverged_at_epoch"][i]),
         **metrics.region_row(insides[i]),
         **geometry.seed_row(models[i], grid_probas[i], inputs.splits.all.X, inputs.history, i),
         **regions_through_training(models[i], inputs.snapshots, i, inputs.grid, insides[i])}
        for i in range(n_seeds)])
    agreed = metrics.agreement(grid_probas)
    summary = metrics.summarise(per_seed, agreed)
    rep = summary["representative_seed"]
    return Scored(models, probas, insides, grid_probas, per_seed, agreed, summary,
                  metrics.headline(summary, metrics.chance(labelled["test"].y)), rep,
                  probas[rep]["test"].argmax(axis=1))


def draw(inputs: Inputs, scored: Scored) -> tuple[dict[str, Figure], Evolution]:
    """One model's figures from the representative seed, the others over all seeds. The scores in
    their titles are those of seeds.csv and metrics.json (compute()), the divergences training.json's."""
    key, spec, splits, grid, rep = inputs.key, inputs.spec, inputs.splits, inputs.grid, scored.rep
    note = f"representative seed {rep} of {inputs.n_seeds} (median validation loss)"
    scores = scored.per_seed.loc[rep]
    dataset = inputs.params.dataset_of(key)
    names = figures.DataNames(feature_names(dataset), tuple(class_names(dataset)))
    view = figures.RegionsView(grid, scored.grid_probas[rep], splits.train, splits.test, scored.test_pred)
    # splits.all is the fitted rows, the validation rows, then the test rows: predicted above already.
    all_pred = np.concatenate([scored.probas[rep][split].argmax(axis=1) for split in ("train", "val", "test")])
    accuracy = {"fitted rows": scores["train.accuracy"], "validation": scores["val.accuracy"],
                "test": scores["test.accuracy"]}
    drawings = {
        "training_curves": figures.training_curves(inputs.history, key, inputs.training["diverged_at_epoch"],
                                                   representative_seed=rep),
        # The probabilities' classes, not the data's: they set the least agreement possible.
        "seed_agreement": figures.seed_agreement(grid, scored.agreed, splits.all, key,
                                                 n_classes=scored.grid_probas.shape[-1], names=names),
        "decision_regions": figures.decision_regions(view, key, float(scores["test.accuracy"]), subtitle=note,
                                                     names=names, learned=bool(scores["learned"])),
        "probability_maps": figures.probability_maps(grid, scored.grid_probas[rep], splits.all, key, spec.is_binary,
                                                     subtitle=note, names=names),
        "true_vs_predicted": figures.true_vs_predicted(splits.all, all_pred, key, accuracy, subtitle=note,
                                                       names=names, rows="fitted rows, validation and test"),
        "architecture": figures.architecture_diagram(
            [figures.LayerBox(l.units, l.activation, n) for l, n in zip(spec.layers, spec.parameter_counts())],
            key, standardized=spec.inputs == "standardized", features=spec.features),
    }
    drawings |= inside_figures(scored.insides[rep], grid, splits.all, key, note, names)
    evolved = boundary_evolution(scored.models[rep], inputs.snapshots, rep, inputs.history, splits,
                                 inputs.params.plots.margin, key, spec.epochs, note)
    drawings[inputs.out.evolution_filmstrip.stem] = evolved.filmstrip
    return drawings, evolved


def write(inputs: Inputs, scored: Scored, drawings: dict[str, Figure], evolved: Evolution) -> None:
    """results/<key>/: every output complete or not at all."""
    out, splits, grid, rep, test_pred = inputs.out, inputs.splits, inputs.grid, scored.rep, scored.test_pred
    files.write_json(out.metrics, scored.summary)
    files.write_json(out.headline, scored.headline.as_dict())
    files.write_csv(out.seeds, scored.per_seed)
    files.write_csv(out.curves, tracking.mean_curves(inputs.history))
    n_classes = inputs.params.dataset_of(inputs.key).n_classes
    files.write_csv(out.confusion, metrics.confusion(splits.test.y, test_pred, n_classes))
    files.write_csv(out.test_predictions, pd.DataFrame(
        {"x1": splits.test.X[:, 0], "x2": splits.test.X[:, 1], "actual": splits.test.y, "predicted": test_pred}),
        rounded=False)
    with files.atomic_path(out.regions) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, xx=grid.xx, yy=grid.yy, proba=scored.grid_probas[rep].astype(np.float32),
                                train_X=splits.train.X, train_y=splits.train.y, test_X=splits.test.X,
                                test_y=splits.test.y, test_pred=test_pred)
    with files.atomic_path(out.figures) as tmp:
        tmp.mkdir()
        for name, fig in drawings.items():
            fig.savefig(tmp / f"{name}.png", dpi=inputs.params.plots.dpi)
        (tmp / out.evolution_gif.name).write_bytes(evolution.gif_bytes(evolved.gif_frames))
    with files.atomic_path(out.evolution_frames) as tmp:
        evolution.picture(np.vstack(evolved.gif_frames)).save(tmp, format="PNG", optimize=True)
    height, width = evolved.gif_frames[0].shape
    files.write_json(out.evolution, {
        "seed": rep, "frame_height": height, "frame_width": width,
        "epochs": [frame.epoch for frame in evolved.frames],
        "val_accuracy": [None if not np.isfinite(f.val_accuracy) else round(float(f.val_accuracy), 4)
                         for f in evolved.frames]})


SIGNATURE_ROWS = 20  # rows of the fitted data from which the logged model's signature is inferred


def record(experiment_id: str, inputs: Inputs, scored: Scored, evolved: Evolution) -> str:
    """The parent run and one child per seed, from the files just written; returns the parent's id."""
    key, spec, params, trained, out = inputs.key, inputs.spec, inputs.params, inputs.trained, inputs.out
    fit = inputs.cut.fit
    return tracking.record(experiment_id, tracking.ExperimentRecord(
        key=key, params=tracking.params_by_role(spec, params.dataset_of(key), params.seed, inputs.n_seeds),
        tags={"dataset": spec.dataset, "architecture": spec.architecture(),
              "dvc_stages": f"train@{key}, evaluate@{key}", "status": scored.headline.status},
        training=inputs.training, history=inputs.history, per_seed=scored.per_seed,
        summary=tracking.summary_metrics(scored.summary), representative=scored.rep,
        model_path=trained.model(scored.rep),
        labelled=inputs.labelled, input_names=feature_names(params.dataset_of(key)),
        model_outputs=hidden_activations(scored.models[scored.rep], fit.X[:SIGNATURE_ROWS])[-1],
        artifacts=[out.headline, out.metrics, out.seeds, trained.history, out.confusion, out.figures],
        architecture_text=spec.summary(),
        evolution={frame.epoch: evolution.picture(image) for frame, image in zip(evolved.frames, evolved.gif_frames)},
    ))


def main() -> None:
    # The forward passes are small matrix products: with two stages on two cores (`make run`),
    # OpenBLAS' second thread only contends (measured: 30 passes of the 4x100 model over 80² points,
    # 0.25 s on one thread vs 0.64 s on two while the other core is busy).
    threadpool_limits(1, user_api="blas")
    params, key = load_stage("experiments")
    experiment_id = tracking.exit_if_unavailable(params.mlflow.experiment_name)
    inputs = read(params, key)
    scored = compute(inputs)
    drawings, evolved = draw(inputs, scored)
    write(inputs, scored, drawings, evolved)
    run_id = record(experiment_id, inputs, scored, evolved)
    files.write_json(inputs.out.mlflow_run, {"experiment": params.mlflow.experiment_name,
                                             "experiment_id": experiment_id, "run_id": run_id})

    top = scored.headline
    print(f"{key}: test accuracy {top.test_accuracy:.3f} ± {top.test_accuracy_sd:.3f}, {top.learned} seeds learned:"
          f" {top.status}; MLflow run {run_id}")


if __name__ == "__main__":
    main()
