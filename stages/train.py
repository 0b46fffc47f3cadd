"""train@<experiment>: train one Keras model with the fast trainer; open its MLflow run."""

import os
import time

from intuition import files, tracking
from intuition.config import load_stage
from intuition.datasets import split_validation

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main() -> None:
    params, key = load_stage("experiments")
    spec, dataset = params.experiments[key], params.dataset_of(key)
    out = files.ExperimentFiles(key)
    X, y = files.read_dataset(files.dataset_file(spec.dataset, "train"))
    experiment_id = tracking.exit_if_unavailable(params.mlflow.experiment_name)

    import keras  # only here: TensorFlow takes seconds to import
    import tensorflow as tf

    from intuition.models import build_model, encode_targets, loss_for, optimizer_for
    from intuition.training import train

    tf.config.experimental.enable_op_determinism()
    model = build_model(spec, params.seed)
    x_fit, y_fit, x_val, y_val = split_validation(X, y, spec.validation_split)
    run_id = tracking.start_run(
        experiment_id, key,
        tracking.run_tags(key, spec.dataset, spec.architecture()),
        tracking.run_params(spec, dataset, params.seed, model.count_params()),
    )

    def progress(row):
        print(f"{key} epoch {row['epoch']:>4}/{spec.epochs}  loss {row['loss']:.4f}  "
              f"acc {row['accuracy']:.3f}  val_loss {row['val_loss']:.4f}  "
              f"val_acc {row['val_accuracy']:.3f}", flush=True)

    with tracking.failing_marks_run(run_id):
        started = time.perf_counter()
        result = train(
            model, loss_for(spec), optimizer_for(spec),
            (x_fit, encode_targets(y_fit, spec), x_val, encode_targets(y_val, spec)),
            epochs=spec.epochs, batch_size=spec.batch_size, seed=params.seed,
            binary=spec.is_binary, epochs_per_call=max(1, spec.epochs // 10),
            on_progress=progress,
        )
        seconds = time.perf_counter() - started
        if result.diverged_at:
            print(f"{key}: loss became NaN/inf at epoch {result.diverged_at}; stopped, "
                  f"kept the weights of epoch {result.diverged_at - 1}")
        requirements = [f"tensorflow-cpu=={tf.__version__}", f"keras=={keras.__version__}"]
        tracking.log_training(run_id, model, spec.dataset, X, y, result.history, requirements)
        files.write_table(out.history, list(result.history[0]), [list(r.values()) for r in result.history])
        with files.atomic_path(out.model) as tmp:
            model.save(tmp)
        files.write_json(out.run, {
            "run_id": run_id, "experiment_id": experiment_id,
            "diverged_at_epoch": result.diverged_at, "train_seconds": round(seconds, 2),
        })
    print(f"{key}: {len(result.history)} epochs in {seconds:.1f} s; MLflow run {run_id}")


if __name__ == "__main__":
    main()
