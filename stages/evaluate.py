"""evaluate@<experiment>: score the trained model on train/val/test (NumPy forward pass, no TensorFlow)."""

import numpy as np

from stages import files
from stages.config import load_stage
from stages.datasets import split_validation
from stages.metrics import confusion, evaluation, make_grid
from stages.network import load_layers, predict_grid, predict_proba


def main() -> None:
    params, key = load_stage("experiments")
    spec = params.experiments[key]
    out = files.ExperimentFiles(key)
    X, y, X_test, y_test = files.read_splits(spec.dataset)
    layers = load_layers(out.model)
    training = files.read_json(out.run)

    x_fit, y_fit, x_val, y_val = split_validation(X, y, spec.validation_split)
    splits = {name: (labels, predict_proba(layers, data)) for name, (data, labels) in {
        "train": (x_fit, y_fit), "val": (x_val, y_val), "test": (X_test, y_test)}.items()}
    grid = make_grid(np.vstack([X, X_test]), params.plots.grid_resolution, params.plots.margin)
    result = evaluation(splits, predict_grid(layers, grid))
    diverged_at = training["diverged_at_epoch"]
    result["training"] = {"diverged": diverged_at is not None, "diverged_at_epoch": diverged_at}

    predicted = splits["test"][1].argmax(axis=1)
    n_classes = params.dataset_of(key).n_classes
    files.write_json(out.metrics, result)
    files.write_table(out.confusion, [f"predicted_{k}" for k in range(n_classes)],
                      confusion(y_test, predicted, n_classes))
    files.write_table(out.test_predictions, ["x1", "x2", "actual", "predicted"],
                      np.column_stack([X_test, y_test, predicted]))
    print(f"{key}: accuracy train {result['train']['accuracy']:.3f}  val {result['val']['accuracy']:.3f}  "
          f"test {result['test']['accuracy']:.3f}" + ("  (DIVERGED)" if diverged_at else ""))


if __name__ == "__main__":
    main()
