"""track@<experiment>: complete the MLflow run train@ opened, with evaluation metrics and figures."""

from stages import files, tracking
from stages.config import load_stage


def flatten(tree: dict, prefix: str = "") -> dict[str, float]:
    """{'test': {'accuracy': 0.9}} -> {'test_accuracy': 0.9}: the same names in every run."""
    flat = {}
    for name, value in tree.items():
        key = f"{prefix}{name}"
        if isinstance(value, dict):
            flat |= flatten(value, f"{key}_")
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[key] = value
        elif isinstance(value, bool):
            flat[key] = int(value)
    return flat


def main() -> None:
    params, key = load_stage("experiments")
    out = files.ExperimentFiles(key)
    opened = files.read_json(out.run)
    tracking.exit_if_unavailable(params.mlflow.experiment_name)
    run_id = opened["run_id"]
    if tracking.get_run(run_id) is None:
        raise SystemExit(
            f"error: MLflow run {run_id} of {key} is not in {tracking.tracking_uri()}; "
            f"retrain to open a new one: dvc repro --force train@{key}"
        )
    with tracking.failing_marks_run(run_id):
        metrics = files.read_json(out.metrics)
        tracking.log_metrics(run_id, [flatten(metrics)])
        client = tracking.MlflowClient()
        for path in (out.history, out.metrics, out.confusion):
            client.log_artifact(run_id, str(path))
        client.log_artifacts(run_id, str(out.figures), "figures")
        spec = params.experiments[key]
        client.log_text(run_id, spec.architecture() + "\n", "architecture.txt")
        tracking.finish_run(run_id)
    files.write_json(out.tracked, {
        "run_id": run_id, "status": "FINISHED",
        "url": tracking.ui_url(opened["experiment_id"], run_id),
    })
    print(f"{key}: MLflow run {run_id} complete")


if __name__ == "__main__":
    main()
