"""plot@<experiment>: render the experiment's figures as PNGs (NumPy forward pass, no TensorFlow)."""

import numpy as np

from stages import figures, files
from stages.config import load_stage
from stages.metrics import make_grid
from stages.network import load_layers, parameter_counts, predict_grid, predict_proba


def main() -> None:
    params, key = load_stage("experiments")
    spec = params.experiments[key]
    out = files.ExperimentFiles(key)
    X, y, X_test, y_test = files.read_splits(spec.dataset)
    layers = load_layers(out.model)
    metrics = files.read_json(out.metrics)
    history = files.read_table(out.history)
    test = files.read_table(out.test_predictions)

    grid = make_grid(np.vstack([X, X_test]), params.plots.grid_resolution, params.plots.margin)
    proba = predict_grid(layers, grid)
    all_X, all_y = np.vstack([X, X_test]), np.concatenate([y, y_test])
    predicted = predict_proba(layers, all_X).argmax(axis=1)
    accuracy = float((predicted == all_y).mean())
    diverged_at = metrics["training"]["diverged_at_epoch"]

    drawings = {
        "training_curves": figures.training_curves(history, key, diverged_at),
        "true_vs_predicted": figures.true_vs_predicted(all_X, all_y, predicted, key, accuracy),
        "probability_maps": figures.probability_maps(grid, proba, all_X, all_y, key, spec.is_binary),
        "decision_regions": figures.decision_regions(
            grid, proba, X, y, X_test, y_test, test["predicted"].astype(int), key,
            metrics["test"]["accuracy"]),
        "architecture": figures.architecture_diagram(
            [{"units": l.units, "activation": l.activation, "params": n}
             for l, n in zip(spec.layers, parameter_counts(layers))], key),
    }
    with files.atomic_path(out.figures) as tmp:
        tmp.mkdir()
        for name, fig in drawings.items():
            fig.savefig(tmp / f"{name}.png", dpi=params.plots.dpi, bbox_inches="tight")
    print(f"{key}: {len(drawings)} figures in {out.figures}")


if __name__ == "__main__":
    main()
