"""Everything MLflow: where the store is, and what one experiment's runs hold.

One process owns an experiment's runs: evaluate@<key> creates them from what train@ and evaluate@
wrote, fills them and closes them. One execution of an experiment is one *parent* run (name = the
experiment key, tag role=parent: aggregates over seeds, mean curves, figures, the representative
seed's model) with one *child* run per seed (role=seed: that seed's curves and metrics). Their
start and end are the training's own wall-clock times (training.json), so a run's duration is the
training's real time. A run still RUNNING whose process died (kill -9) is marked KILLED by the next
evaluate@ of the same experiment on the same host.
"""

from __future__ import annotations

import getpass
import os
import re
import socket
import sys
import time
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import numpy as np
import pandas as pd

# A team server that is down must fail fast, not retry for minutes (MLflow's defaults).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")

import mlflow  # noqa: E402
import psutil  # noqa: E402
import requests  # noqa: E402
from mlflow.entities import DatasetInput, InputTag, LoggedModelInput, Metric, Param, RunStatus, RunTag  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402
from mlflow.tracking.context.registry import resolve_tags  # noqa: E402
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT  # noqa: E402

from intuition.types import Points  # noqa: E402

STORE_FILE = "mlflow.db"
ARTIFACT_DIR = "mlruns"
HEADLINE_METRIC = "test/accuracy"  # the mean over seeds: what the runs view sorts by
LATEST = "latest"  # tag on the last finished run of each experiment and sweep (the runs view lists those)
METRIC_DECIMALS = 4  # what MLflow shows: 0.9720000000000001 is 0.972; finer than any spread over seeds here
CURVES = {"loss": "epoch/train_loss", "accuracy": "epoch/train_accuracy",
          "val_loss": "epoch/val_loss", "val_accuracy": "epoch/val_accuracy"}


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
    with store_lock():
        experiment_id = _experiment_id(experiment_name)
    if urlparse(uri).scheme in ("http", "https"):
        _check_can_record(uri, experiment_id)
    return experiment_id


def _check_can_record(uri: str, experiment_id: str) -> None:
    """On a server with logins, a login that may only look (READ) would be refused at the stage's
    first write, after its training and figures: ask first. MLflow's basic-auth app tells a user
    their own account and permission (asked over REST: its Python client would import the server
    app); a server without logins has no such endpoints (404)."""
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if not user:
        return
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    def ask(endpoint: str, **params) -> dict | None:
        response = http_request(get_default_host_creds(uri), endpoint, "GET", params={"username": user, **params})
        if response.status_code == 404:
            return None
        return verify_rest_response(response, endpoint).json()  # 401, 5xx: MLflow's own error

    account = ask("/api/2.0/mlflow/users/get")
    if account is None or account["user"].get("is_admin"):
        return
    permission = ask("/api/3.0/mlflow/users/permissions/get", resource_type="experiment",
                     resource_id=experiment_id)["permission"]
    if permission not in ("EDIT", "MANAGE"):  # those with can_update in mlflow.server.auth.permissions
        raise TrackingUnavailable(
            f"MLflow tracking server {uri} (MLFLOW_TRACKING_URI): login '{user}' has {permission} on experiment "
            f"{experiment_id}; recording runs needs EDIT (python -m tools.server add-user {user} --permission EDIT)")


@contextmanager
def store_lock():
    """For a SQLite store, a file lock around MLflow's get-or-create writes, which race between
    stages running at once: creating the schema and the experiment, and a dataset's row (two
    evaluate@ of one dataset: "UNIQUE constraint failed: datasets..."). A server needs none."""
    if not tracking_uri().startswith("sqlite:///"):
        yield
        return
    from filelock import FileLock

    with FileLock(str(repo_root() / f"{STORE_FILE}.lock"), timeout=60):
        yield


def link_dataset(dataset, context: str = "training", run_id: str | None = None, model_id: str | None = None) -> None:
    """Link `dataset` to a run (the active one by default), and a logged model as that run's input
    if given. MLflow inserts the dataset's row on its first use: under the store lock, as two
    evaluate@ of one dataset at once would both insert it."""
    entity = DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)])
    with store_lock():
        MlflowClient().log_inputs(run_id or mlflow.active_run().info.run_id, datasets=[entity],
                                  models=[LoggedModelInput(model_id)] if model_id else None)


def _experiment_id(name: str) -> str:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if tracking_uri() == f"sqlite:///{repo_root() / STORE_FILE}":
            follow_checkout(experiment.artifact_location, repo_root())
        return experiment.experiment_id
    location = None
    if tracking_uri().startswith("sqlite:///"):
        location = (repo_root() / ARTIFACT_DIR).as_uri()
    return client.create_experiment(name, artifact_location=location)


# What stores an artifact location in mlflow.db (MLflow 3's schema): each is an absolute path.
ARTIFACT_COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"),
                    ("logged_models", "artifact_location"), ("model_versions", "storage_location"),
                    ("model_versions", "source"))


def follow_checkout(location: str, root: Path) -> None:
    """Keep this checkout's store pointing into this checkout. MLflow stores artifact locations as
    absolute paths (it resolves a relative one when the experiment is created), so a copied or
    moved checkout's mlflow.db still names the original's mlruns/: new runs would write there, and
    after a move old runs would lose their artifacts. When the experiment's location is another
    checkout's mlruns/, every location under it is rewritten to this one's (the copy of mlruns/
    came along). A location someone chose elsewhere (not an `mlruns` directory) is left alone.
    `root` is the checkout (evaluate@: the repository root; `make ui`: its --root)."""
    here = root / ARTIFACT_DIR
    parsed = urlparse(location)
    if parsed.scheme != "file" or location == here.as_uri():
        return
    there = Path(url2pathname(parsed.path))
    if there.name != ARTIFACT_DIR:
        return
    changed = rehome_artifacts(root / STORE_FILE, there, here)
    print(f"{STORE_FILE}: this checkout was copied or moved from {there.parent}; "
          f"{changed} artifact locations now point into {here}", file=sys.stderr)


def rehome_artifacts(store: Path, old: Path, new: Path) -> int:
    """Rewrite every artifact location at or under `old` to the same place under `new`, in the
    SQLite store, in one transaction. Both spellings MLflow writes are rewritten: file:// URIs
    and plain paths (the Default experiment's). Returns how many locations changed."""
    import sqlite3

    changed = 0
    with closing(sqlite3.connect(store, timeout=60)) as db, db:
        for before, after in ((old.as_uri(), new.as_uri()), (str(old), str(new))):
            for table, column in ARTIFACT_COLUMNS:
                changed += db.execute(
                    f"UPDATE {table} SET {column} = :after || substr({column}, :n + 1) "
                    f"WHERE substr({column}, 1, :n) = :before "
                    f"AND (length({column}) = :n OR substr({column}, :n + 1, 1) = '/')",
                    {"before": before, "after": after, "n": len(before)}).rowcount
    return changed


def exit_if_unavailable(experiment_name: str) -> str:
    """For stage entry points: connect, or print one line and exit before any work starts. A
    server that answers but cannot serve (its database down, a wrong login) counts as unavailable."""
    try:
        return connect(experiment_name)
    except TrackingUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except MlflowException as exc:
        trouble = server_trouble(exc)
        if trouble is None:
            raise
        print(f"error: MLflow tracking server {tracking_uri()} (MLFLOW_TRACKING_URI): {trouble}", file=sys.stderr)
        raise SystemExit(2) from None


def http_status(exc: BaseException) -> str:
    """The HTTP status a tracking server answered, as MLflow's client words it in the exception
    ("failed with error code 403", "too many 503 error responses"); "" if it did not say."""
    found = re.search(r"error code (\d{3})|too many (\d{3}) error responses", str(exc))
    return (found.group(1) or found.group(2)) if found else ""


def server_trouble(exc: BaseException) -> str | None:
    """A tracking server's failure in a few words, or None when `exc` is not about the server being
    away, failing or refusing this login (an error of this code's own keeps its traceback)."""
    if urlparse(tracking_uri()).scheme not in ("http", "https") or not isinstance(exc, MlflowException):
        return None
    code = http_status(exc)
    if code == "401":
        return "401, not logged in: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to a login on it"
    if code == "403":
        return "403, permission denied: recording runs needs EDIT on the experiment"
    if code.startswith("5"):
        return f"{code}, it answers but cannot serve (is its database down?)"
    if _connection_lost(exc):
        return "not reachable (stopped or restarting)"
    return None


def _connection_lost(exc: BaseException) -> bool:
    """Whether `requests` failed to reach the server or to read its answer: MLflow's client wraps
    what it raised (a refused connection, retries exhausted, a timeout, or the broken chunked read
    of a server killed mid-answer) in an MlflowException whose chain holds it."""
    seen = set()
    while exc is not None and id(exc) not in seen:  # a chain set by hand may loop
        if isinstance(exc, (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def params_by_role(spec, dataset_spec, seed: int, seeds: int) -> dict:
    """The architecture and training knobs by role, with the same names in every run, so any two
    runs compare like with like (a 1x100 and a 4x100 model both have `hidden_units` 100)."""
    knobs = spec.knobs()
    params = {
        # A network without hidden layers has 0 hidden units (a number: parallel coordinates keep the axis numeric).
        "dataset": spec.dataset, "hidden_layers": knobs["depth"],
        "hidden_units": knobs["width"] if spec.hidden else 0,
        "hidden_activation": knobs["activation"], "output_units": spec.output.units,
        "output_activation": spec.output.activation, "optimizer": spec.optimizer,
        "learning_rate": spec.learning_rate, "batch_size": spec.batch_size, "epochs": spec.epochs,
        "validation_split": spec.validation_split, "features": knobs["features"], "inputs": spec.inputs,
        "l1": spec.l1, "l2": spec.l2,
        "n_params": sum(spec.parameter_counts()), "layers": spec.architecture(),
        "seeds": seeds, "base_seed": seed,
    }
    return params | {f"dataset_{k}": v for k, v in dataset_spec.model_dump().items()}


def summary_metrics(summary: dict) -> dict[str, float]:
    """metrics.json as MLflow metric names, grouped by split in the UI's chart view:
    {"test": {"accuracy": {"mean": m, "sd": s}}} -> {"test/accuracy": m, "test/accuracy_sd": s}."""
    flat = {"seeds/learned": summary["learned_seeds"], "seeds/diverged": summary["diverged_seeds"]}
    for group, names in summary.items():
        if not isinstance(names, dict):
            continue
        # The chart view orders groups alphabetically and the curves (`epoch/`) come first: the
        # agreement between seeds joins the `seeds` group instead of sorting before them.
        shown = "seeds" if group == "agreement" else group
        for name, stats in names.items():
            items = stats.items() if isinstance(stats, dict) else [("mean", stats)]
            flat |= {f"{shown}/{name}" + ("" if stat == "mean" else f"_{stat}"): value for stat, value in items}
    # First in the batch: MLflow's Compare page starts on the first metric a run logged.
    return dict(sorted(flat.items(), key=lambda item: item[0] != HEADLINE_METRIC))


def _metrics(values: dict[str, float], timestamp: int, step: int = 0, **link) -> list[Metric]:
    """MLflow metrics rounded to METRIC_DECIMALS; `link`: model_id, dataset_name, dataset_digest."""
    return [Metric(k, round(float(v), METRIC_DECIMALS), timestamp, step, **link)
            for k, v in values.items() if v is not None and pd.notna(v)]


def mean_curves(history: pd.DataFrame) -> pd.DataFrame:
    """history.csv averaged over seeds, one row per epoch: epoch, loss, accuracy, val_loss,
    val_accuracy. At each epoch the mean is over the seeds with a finite value there (as the
    training-curves figure draws it): a seed that diverged drops out rather than making it inf.
    The parent run's `epoch/*` metrics and DVC's results/<experiment>/curves.csv are this table."""
    values = history[list(CURVES)].astype(float)
    finite = values.where(np.isfinite(values))
    return finite.groupby(history["epoch"].rename("epoch")).mean().reset_index()


def _curves(history: pd.DataFrame, timestamp: int) -> list[Metric]:
    return [Metric(CURVES[name], float(value), timestamp, int(epoch))
            for epoch, row in history.set_index("epoch")[list(CURVES)].iterrows()
            for name, value in row.items() if pd.notna(value)]


def _log(client: MlflowClient, run_id: str, params: dict, metrics: list[Metric], tags: dict | None = None):
    # log_batch splits large batches itself (MLflow's per-request limits).
    client.log_batch(run_id, metrics=metrics, params=[Param(k, str(v)) for k, v in params.items()],
                     tags=[RunTag(k, str(v)) for k, v in (tags or {}).items()])


def mark_abandoned_runs(client: MlflowClient, experiment_id: str, key: str, tag: str = "experiment") -> list[str]:
    """Runs of this experiment (or sweep: `tag`) left RUNNING by a process on this host that no
    longer exists (killed with -9, machine crash): marked KILLED. Returns their ids."""
    host = socket.gethostname()
    stale = client.search_runs(
        [experiment_id], f"tags.{tag} = '{key}' and attributes.status = 'RUNNING'", max_results=1000)
    killed = []
    for run in stale:
        tags = run.data.tags
        if tags.get("host") == host and not psutil.pid_exists(int(tags.get("pid", "0"))):
            client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
            killed.append(run.info.run_id)
    return killed


@contextmanager
def _closing_on_failure(client: MlflowClient, run_ids: list[str]):
    """Mark every run opened so far FAILED (KILLED on Ctrl-C) if the block raises; re-raises. A
    tracking server that fails or goes away mid-way (killed, restarting) ends the stage with one
    line; runs it could not close stay RUNNING until the next run of the stage marks them KILLED."""
    try:
        yield
    except BaseException as exc:
        status = RunStatus.KILLED if isinstance(exc, KeyboardInterrupt) else RunStatus.FAILED
        trouble = server_trouble(exc)
        left = []
        for run_id in run_ids:
            try:
                client.set_terminated(run_id, RunStatus.to_string(status))
            except MlflowException:
                if trouble is None:
                    raise
                left.append(run_id)
        if trouble is None:
            raise
        fate = (f"could not mark its {len(left)} runs FAILED (the stage's next run marks those still RUNNING KILLED)"
                if left else "its runs are marked FAILED")
        print(f"error: MLflow tracking server {tracking_uri()} (MLFLOW_TRACKING_URI) failed while recording: "
              f"{trouble}; {fate}", file=sys.stderr)
        raise SystemExit(2) from None


@dataclass(frozen=True)
class ExperimentRecord:
    """What one experiment execution produced, as files and tables, for its MLflow runs."""

    key: str
    params: dict  # params_by_role
    tags: dict  # dataset, architecture, ...
    training: dict  # training.json
    history: pd.DataFrame  # per seed and epoch
    per_seed: pd.DataFrame  # one row of final metrics per seed ("test.accuracy", ...)
    summary: dict  # summary_metrics(): aggregates over seeds ("test/accuracy": mean, "test/accuracy_sd": ...)
    representative: int  # seed index whose model and figures represent the experiment
    model_path: Path  # that seed's .keras file
    labelled: dict[str, Points]  # "train" (the rows fitted on), "val", "test": what each metric is measured on
    input_names: tuple[str, str]  # the two inputs as the dataset names them (config.feature_names)
    model_outputs: np.ndarray  # that model's outputs on the first rows of labelled["train"]: the logged signature
    artifacts: list[Path]  # files and directories logged on the parent run
    architecture_text: str
    # The representative seed's decision regions at each snapshot epoch: {epoch: image (PIL, or an
    # (h, w, 3) uint8 array)}, logged as images with step = epoch: the UI's image view plays the training.
    evolution: dict


# The split of a metric's name ("test/accuracy") -> MLflow's dataset context.
CONTEXTS = {"train": "training", "val": "validation", "test": "test"}


def split_datasets(dataset: str, labelled: dict[str, Points], input_names: tuple[str, str]) -> dict:
    """Each split as an MLflow dataset named for the rows it holds. Keras fits on the first rows of
    train.csv and validates on the last (`validation_split`): two experiments that split one
    dataset differently fit on different rows, so their fitted rows have two digests, and the
    names say why."""
    n_fit, n_val = len(labelled["train"].y), len(labelled["val"].y)
    names = {"train": f"{dataset}: fitted rows (first {n_fit} of train.csv)",
             "val": f"{dataset}: validation rows (last {n_val} of train.csv)", "test": f"{dataset}: test.csv"}
    return {split: mlflow.data.from_pandas(
                pd.DataFrame({input_names[0]: points.X[:, 0], input_names[1]: points.X[:, 1], "y": points.y.astype(float)}),
                name=names[split], targets="y")
            for split, points in labelled.items() if len(points.y)}


def run_naming(key: str) -> tuple[str, dict]:
    """A run's name and DVC's tags: under `dvc exp run` the name carries the DVC experiment's, so
    the runs of two DVC experiments are told apart in the list."""
    exp, baseline = os.environ.get("DVC_EXP_NAME"), os.environ.get("DVC_EXP_BASELINE_REV")
    tags = {"dvc_exp_name": exp} if exp else {}
    if exp and baseline:
        tags["dvc_exp_baseline_rev"] = baseline
    return (f"{key} ({exp})" if exp else key), tags


def record(experiment_id: str, rec: ExperimentRecord) -> str:
    """Create, fill and close the parent run and one child per seed. Returns the parent's id."""
    client = MlflowClient()
    mark_abandoned_runs(client, experiment_id, rec.key)
    start, end = rec.training["started_ms"], rec.training["ended_ms"]
    now = int(time.time() * 1000)
    name, dvc_tags = run_naming(rec.key)
    common = {"experiment": rec.key, "host": socket.gethostname(), "pid": str(os.getpid()), **rec.tags, **dvc_tags}
    # MLflow's own context tags: source name and type, user, git commit.
    standard = resolve_tags({"mlflow.user": getpass.getuser()})
    parent = client.create_run(experiment_id, start_time=start, run_name=name,
                               tags=standard | common | {"role": "parent"}).info.run_id
    opened = [parent]
    datasets = split_datasets(rec.tags["dataset"], rec.labelled, rec.input_names)
    with _closing_on_failure(client, opened):
        for split, dataset in datasets.items():
            link_dataset(dataset, CONTEXTS[split], run_id=parent)
        # Before the run has metrics: MLflow copies a run's metrics to a model logged in it, and
        # the model's metrics are its own seed's, not the means over seeds.
        model_id = _log_model(parent, rec, datasets["train"])
        _log(client, parent, rec.params, _metrics(rec.summary, now) + _curves(mean_curves(rec.history), now))
        for seed, row in rec.per_seed.set_index("seed").iterrows():
            child = client.create_run(
                experiment_id, start_time=start, run_name=f"{name} seed {seed}",
                tags=standard | common | {"role": "seed", "seed_index": str(seed),
                                          "mlflow.parentRunId": parent}).info.run_id
            opened.append(child)
            finals = {name.replace(".", "/"): value for name, value in row.items()}
            seed_history = rec.history[rec.history["seed"] == seed]
            if seed == rec.representative:  # its metrics are the logged model's too
                scores = _model_metrics(child, model_id, finals, datasets, now)
            else:
                scores = _metrics(finals, now)
            _log(client, child, rec.params | {"seed": rec.training["seeds"][int(seed)]},
                 scores + _curves(seed_history, now))
            client.set_terminated(child, RunStatus.to_string(RunStatus.FINISHED), end_time=end)
        for path in rec.artifacts:
            if path.is_dir():
                client.log_artifacts(parent, str(path), path.name)
            else:
                client.log_artifact(parent, str(path))
        client.log_text(parent, rec.architecture_text, "architecture.txt")
        for epoch, image in rec.evolution.items():  # ~30 images: ~0.3 s measured
            client.log_image(parent, image, key="evolution", step=int(epoch), timestamp=now)
        client.set_terminated(parent, RunStatus.to_string(RunStatus.FINISHED), end_time=end)
    mark_latest(client, experiment_id, parent, "experiment", rec.key)
    return parent


def mark_latest(client: MlflowClient, experiment_id: str, run_id: str, tag: str, key: str) -> None:
    """Tag `run_id` as the latest run of its experiment (or sweep), and no other: the runs view
    that `make ui` opens lists each experiment once, however often it ran."""
    for old in client.search_runs([experiment_id], f"tags.{tag} = '{key}' and tags.{LATEST} = 'true'",
                                  max_results=1000):
        if old.info.run_id != run_id:
            client.delete_tag(old.info.run_id, LATEST)
    client.set_tag(run_id, LATEST, "true")


def _log_model(run_id: str, rec: ExperimentRecord, fitted) -> str:
    """The representative seed's Keras model, named after the experiment, logged from the parent
    run; returns its model id. Its metrics are that seed's own (logged with its seed run).

    Logged through intuition.mlflow_keras: MLflow's Keras flavour written from the `.keras` file
    without importing Keras, plus this package's code, so that `mlflow.pyfunc.load_model` works in
    any Python, also for a model with the custom features layer. MLflow's check of the pinned
    requirements against the installed packages costs 0.2 s with a warm file cache, up to 1.9 s cold."""
    from mlflow.models import Model, infer_signature

    from intuition import mlflow_keras

    # Named float64 columns: a user's table (a CSV, a DataFrame, `dataframe_split`) fits as it is.
    sample = pd.DataFrame(rec.labelled["train"].X[:len(rec.model_outputs)], columns=list(rec.input_names))
    with mlflow.start_run(run_id=run_id):
        info = Model.log(
            artifact_path=None, name=rec.key, flavor=mlflow_keras, model=rec.model_path,
            signature=infer_signature(sample, rec.model_outputs),
            pip_requirements=rec.training["requirements"], params=rec.params,
            tags={"representative_seed": str(rec.representative), "training_rows": fitted.name})
    # Leaving start_run ended the parent FINISHED, half-recorded: RUNNING again until record() closes
    # it, so a stage that dies from here on (its server killed) leaves it for mark_abandoned_runs.
    MlflowClient().update_run(run_id, RunStatus.to_string(RunStatus.RUNNING))
    return info.model_id


def _model_metrics(run_id: str, model_id: str, finals: dict[str, float], datasets: dict, now: int) -> list[Metric]:
    """The representative seed's final metrics as its run's and its logged model's, each tied to the
    rows it was measured on (`test/accuracy` to the test rows); the rest (sharpness, regions over the
    plotted grid) to no dataset. Links those datasets and the model to the seed's run."""
    scores = []
    for split, dataset in datasets.items():
        link_dataset(dataset, CONTEXTS[split], run_id=run_id, model_id=model_id if split == "train" else None)
        scores += _metrics({k: v for k, v in finals.items() if k.startswith(f"{split}/")}, now, model_id=model_id,
                           dataset_name=dataset.name, dataset_digest=dataset.digest)
    untied = {k: v for k, v in finals.items() if k.split("/")[0] not in datasets}
    return scores + _metrics(untied, now, model_id=model_id)


# --- Sweeps: one parent run per execution, one child run per point (no per-seed runs) ------------


@dataclass(frozen=True)
class PointRecord:
    name: str  # e.g. depth=2,width=32,inputs=raw
    params: dict  # params_by_role of the point's experiment
    summary: dict  # summary_metrics() of its metrics over seeds
    seconds: float  # its share of the training time (0 when it was trained before)


@dataclass(frozen=True)
class SweepRecord:
    key: str
    params: dict  # base, axes, points, seeds
    summary: dict  # the sweep's metrics.json, numbers only
    points: list[PointRecord]
    artifacts: list[Path]  # logged on the parent run


def record_sweep(experiment_id: str, rec: SweepRecord) -> str:
    """Create, fill and close a sweep's parent run and one child per point; returns the parent's id.
    Filter the runs view on `tags.sweep = '<sweep>'` to see them; parallel coordinates over the
    points' params (hidden_layers, hidden_units, inputs, ...) against test/accuracy compare them."""
    client = MlflowClient()
    mark_abandoned_runs(client, experiment_id, rec.key, tag="sweep")
    now = int(time.time() * 1000)
    common = {"sweep": rec.key, "host": socket.gethostname(), "pid": str(os.getpid())}
    standard = resolve_tags({"mlflow.user": getpass.getuser()})
    parent = client.create_run(experiment_id, start_time=now, run_name=f"sweep {rec.key}",
                               tags=standard | common | {"role": "sweep"}).info.run_id
    opened = [parent]
    with _closing_on_failure(client, opened):
        _log(client, parent, rec.params, _metrics(rec.summary, now))
        for point in rec.points:
            child = client.create_run(experiment_id, start_time=now, run_name=f"{rec.key}: {point.name}",
                                      tags=standard | common | {"role": "point", "point": point.name,
                                                                "mlflow.parentRunId": parent}).info.run_id
            opened.append(child)
            _log(client, child, point.params | {"sweep": rec.key, "point": point.name}, _metrics(point.summary, now))
            client.set_terminated(child, RunStatus.to_string(RunStatus.FINISHED))
        for path in rec.artifacts:
            if path.is_dir():
                client.log_artifacts(parent, str(path), path.name)
            else:
                client.log_artifact(parent, str(path))
        client.set_terminated(parent, RunStatus.to_string(RunStatus.FINISHED))
    mark_latest(client, experiment_id, parent, "sweep", rec.key)
    return parent
