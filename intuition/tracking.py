"""Everything MLflow: where the store is, and what one experiment's run holds.

One execution of an experiment's stages is one MLflow run. `train@<key>` opens it (it holds the
Keras model in memory, so it logs params, the per-epoch curves and the model) and leaves it
RUNNING; `evaluate@<key>` adds the evaluation metrics and figures and marks it FINISHED. A stage that
fails marks the run FAILED, so a half-filled run never looks finished.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

# A team server that is down must fail fast, not retry for minutes (MLflow's defaults).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")

import mlflow  # noqa: E402
from mlflow.entities import Metric, Param, RunStatus  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

STORE_FILE = "mlflow.db"
ARTIFACT_DIR = "mlruns"
METRICS_PER_BATCH = 1000  # MLflow's log_batch limit


class TrackingUnavailable(Exception):
    pass


def repo_root() -> Path:
    """The real repository root, also under `dvc exp run --temp/--queue`, whose working copy is
    a throw-away directory: a store relative to it would lose every run."""
    return Path(os.environ.get("DVC_ROOT") or Path.cwd()).resolve()


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI wins; otherwise the store `mlflow ui` opens with no flags at the root."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / STORE_FILE}"


def _check_server(uri: str) -> None:
    import requests

    try:
        requests.get(uri.rstrip("/") + "/health", timeout=5).raise_for_status()
    except requests.RequestException as exc:
        raise TrackingUnavailable(
            f"MLflow tracking server {uri} (MLFLOW_TRACKING_URI) is not reachable: "
            f"{type(exc).__name__}; start it or unset MLFLOW_TRACKING_URI to use {STORE_FILE}"
        ) from None


def connect(experiment_name: str) -> str:
    """Point MLflow at the store, creating it and the experiment once, under a file lock: SQLite
    schema creation races between processes that start at the same moment. Returns the
    experiment id."""
    uri = tracking_uri()
    if urlparse(uri).scheme in ("http", "https"):
        _check_server(uri)
    mlflow.set_tracking_uri(uri)
    if not uri.startswith("sqlite:///"):
        return _experiment_id(experiment_name)
    from filelock import FileLock

    with FileLock(str(repo_root() / f"{STORE_FILE}.lock"), timeout=60):
        return _experiment_id(experiment_name)


def _experiment_id(name: str) -> str:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if tracking_uri().startswith("sqlite:///"):
        location = (repo_root() / ARTIFACT_DIR).as_uri()
    return client.create_experiment(name, artifact_location=location)


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or "none"
    except OSError:
        return "none"


def run_tags(key: str, dataset: str, architecture: str) -> dict[str, str]:
    tags = {
        "dataset": dataset,
        "architecture": architecture,
        "dvc_stages": f"train@{key}, evaluate@{key}",
        "git_commit": git_commit(),
    }
    if os.environ.get("DVC_EXP_NAME"):
        tags["dvc_exp_name"] = os.environ["DVC_EXP_NAME"]
    return tags


@contextmanager
def failing_marks_run(run_id: str):
    """Mark the run FAILED (KILLED on Ctrl-C) if the block raises; it re-raises."""
    try:
        yield
    except KeyboardInterrupt:
        MlflowClient().set_terminated(run_id, RunStatus.to_string(RunStatus.KILLED))
        raise
    except BaseException:
        MlflowClient().set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        raise


def start_run(experiment_id: str, key: str, tags: dict[str, str], params: dict) -> str:
    run = MlflowClient().create_run(experiment_id, run_name=key, tags=tags)
    log_params(run.info.run_id, params)
    return run.info.run_id


def log_params(run_id: str, params: dict) -> None:
    items = [Param(k, str(v)) for k, v in params.items()]
    for i in range(0, len(items), 100):
        MlflowClient().log_batch(run_id, params=items[i : i + 100])


def log_metrics(run_id: str, rows: list[dict], step_key: str | None = None) -> None:
    """Log every numeric entry of `rows`; with `step_key`, each row is one step (an epoch)."""
    now = int(time.time() * 1000)
    metrics = [
        Metric(name, float(value), now, int(row[step_key]) if step_key else 0)
        for row in rows
        for name, value in row.items()
        if name != step_key and value is not None
    ]
    for i in range(0, len(metrics), METRICS_PER_BATCH):
        MlflowClient().log_batch(run_id, metrics=metrics[i : i + METRICS_PER_BATCH])


def require_run(run_id: str, key: str) -> str:
    """The run train@ opened must be in this store (it is not if the store was deleted or
    MLFLOW_TRACKING_URI changed since training)."""
    try:
        MlflowClient().get_run(run_id)
    except mlflow.exceptions.MlflowException:
        print(f"error: MLflow run {run_id} of {key} is not in {tracking_uri()}; retrain to open "
              f"a new one: dvc repro --force train@{key}", file=sys.stderr)
        raise SystemExit(2) from None
    return run_id


def flatten(tree: dict, prefix: str = "") -> dict[str, float]:
    """{'val': {'accuracy': 0.9}} -> {'val/accuracy': 0.9}: the same names in every run, apart
    from the per-epoch curves (`val_accuracy`), and grouped by split in the UI's chart view."""
    flat = {}
    for name, value in tree.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{name}/")
        elif isinstance(value, (int, float)):  # bools too, as 0/1
            flat[f"{prefix}{name}"] = float(value)
    return flat


def complete_run(run_id: str, metrics: dict, out, summary: str) -> None:
    """Add what evaluate@ produced to the run train@ opened, and mark it FINISHED."""
    log_metrics(run_id, [flatten(metrics)])
    client = MlflowClient()
    for path in (out.history, out.metrics, out.confusion):
        client.log_artifact(run_id, str(path))
    client.log_artifacts(run_id, str(out.figures), "figures")
    client.log_text(run_id, summary, "architecture.txt")
    client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))


def ui_url(experiment_id: str, run_id: str) -> str:
    uri = tracking_uri()
    base = uri if uri.startswith("http") else "http://127.0.0.1:5000"
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def exit_if_unavailable(experiment_name: str) -> str:
    """For stage entry points: connect, or print one line and exit before any work starts."""
    try:
        return connect(experiment_name)
    except TrackingUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def run_params(spec, dataset_spec, seed: int, n_params: int) -> dict:
    """Every hyper-parameter, flattened, with the same names in every run."""
    params = spec.model_dump(exclude={"layers"})
    params |= {"seed": seed, "n_params": n_params, "n_layers": len(spec.layers)}
    params["layers"] = ", ".join(f"{l.units} {l.activation}" for l in spec.layers)
    for i, layer in enumerate(spec.layers):
        params[f"layer_{i}_units"] = layer.units
        params[f"layer_{i}_activation"] = layer.activation
    params |= {f"dataset_{k}": v for k, v in dataset_spec.model_dump().items()}
    return params


def _skip_installed_package_scan(requirements: list[str]) -> None:
    """log_model checks pip_requirements against the environment by first mapping every installed
    distribution's files to modules (~1.9 s per process here). Seed that map with the packages we
    pin, which this very process has imported."""
    from mlflow.utils import requirements_utils

    if getattr(requirements_utils, "_MODULES_TO_PACKAGES", "absent") is None:
        names = [r.split("==")[0] for r in requirements]
        requirements_utils._MODULES_TO_PACKAGES = {name.split("-")[0]: [name] for name in names}


def log_training(run_id: str, model, dataset_name: str, X, y, history: list[dict], requirements) -> None:
    """The part of a run only the training process can log: the Keras model and its inputs."""
    import pandas as pd
    from mlflow.models import infer_signature

    log_metrics(run_id, history, step_key="epoch")
    _skip_installed_package_scan(requirements)
    sample = X[:20].astype("float32")
    signature = infer_signature(sample, model(sample).numpy())
    frame = pd.DataFrame({"x1": X[:, 0], "x2": X[:, 1], "y": y.astype("float64")})
    with mlflow.start_run(run_id=run_id):
        mlflow.log_input(mlflow.data.from_pandas(frame, name=dataset_name, targets="y"), context="training")
        # pip_requirements given: inferring them costs ~5 s per model
        mlflow.keras.log_model(model, name="model", signature=signature, pip_requirements=requirements)
        # Leave the run open (RUNNING) for evaluate@, which completes it.
        mlflow.end_run(status=RunStatus.to_string(RunStatus.RUNNING))
