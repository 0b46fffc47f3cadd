"""train@<experiment>: train the experiment's network once per seed, all seeds in one graph.

Writes models/<experiment>/: seeds/seed_<i>.keras, history.csv (per seed and epoch),
snapshots.npz (every seed's weights at ~30 log-spaced epochs, for the boundary's evolution) and
training.json (when training ran, how long, which seeds diverged). No MLflow here: evaluate@
records the run from these files.
"""

import time

from intuition import files
from intuition.config import load_stage
from intuition.datasets import split_validation
from intuition.tensorflow_setup import import_tensorflow


def main() -> None:
    params, key = load_stage("experiments")
    spec = params.experiments[key]
    out = files.TrainOutputs(key)
    data = split_validation(files.read_points(files.dataset_file(spec.dataset, "train")), spec.validation_split)

    tf = import_tensorflow()  # only here: it takes seconds
    import keras

    from intuition.models import build_model, encode_targets, optimizer_for
    from intuition.training import FitData, Slices, train

    seeds = [params.seed + i for i in range(params.seeds)]
    models = [build_model(spec, seed, data.fit.X) for seed in seeds]

    def progress(rows):
        mean = rows.drop(columns="seed").mean()
        print(f"{key} epoch {int(mean['epoch']):>4}/{spec.epochs}  mean over {len(seeds)} seeds:  "
              f"loss {mean['loss']:.4f}  acc {mean['accuracy']:.3f}  val_loss {mean['val_loss']:.4f}  "
              f"val_acc {mean['val_accuracy']:.3f}", flush=True)

    started_ms, started = int(time.time() * 1000), time.perf_counter()
    result = train(
        models, optimizer_for(spec),
        FitData(data.fit.X, encode_targets(data.fit.y, spec), data.val.X, encode_targets(data.val.y, spec)),
        epochs=spec.epochs, batch_size=spec.batch_size, seeds=seeds, binary=spec.is_binary,
        epochs_per_call=max(1, spec.epochs // 10), on_progress=progress,
        slices=Slices.uniform(len(seeds), spec.learning_rate, spec.l1, spec.l2),
    )
    seconds = time.perf_counter() - started
    for i, epoch in enumerate(result.diverged_at):
        if epoch is not None:
            print(f"{key} seed {i}: loss became NaN/inf at epoch {epoch}; it stopped there and "
                  f"keeps the weights of epoch {epoch - 1}")

    with files.atomic_path(out.models) as tmp:
        tmp.mkdir()
        for i, model in enumerate(models):
            model.save(tmp / out.model(i).name)
    files.write_csv(out.history, result.history)
    files.write_snapshots(out.snapshots, result.snapshots)
    files.write_json(out.training, {
        "seeds": seeds, "steps_per_epoch": result.steps_per_epoch,
        "diverged_at_epoch": result.diverged_at,
        # Wall-clock times of the training itself: the MLflow run's start, end and duration.
        "started_ms": started_ms, "ended_ms": started_ms + int(seconds * 1000),
        "seconds": round(seconds, 2),
        "requirements": [f"tensorflow-cpu=={tf.__version__}", f"keras=={keras.__version__}"],
    })
    print(f"{key}: {len(seeds)} seeds x {spec.epochs} epochs in {seconds:.1f} s")


if __name__ == "__main__":
    main()
