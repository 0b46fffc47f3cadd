"""MLflow under every way DVC runs stages, and against a real `mlflow server` on 127.0.0.1.

A two-experiment copy of the project keeps these runs short."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time

import pytest
import requests
from sandbox import BIN, commit, env, make_project, repro, run, stages_run

EXPERIMENTS = ["linear_perceptron", "bands_sigmoid_1x10"]
EXPERIMENT_NAME = "classification-intuition"


def client_for(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def runs_in(uri: str, role: str = "parent"):
    """The runs of one role: `parent` (one per experiment execution) or `seed` (its children)."""
    client = client_for(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT_NAME)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], f"tags.role = '{role}'", max_results=1000)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("tracking"), epochs=3, experiments=EXPERIMENTS)
    repro(project)
    commit(project, "pipeline run")
    return project


def root_store(project) -> str:
    return f"sqlite:///{project / 'mlflow.db'}"


def test_workspace_run_lands_in_the_root_store(project):
    runs = runs_in(root_store(project))
    assert sorted(r.info.run_name for r in runs) == sorted(EXPERIMENTS)
    assert {r.info.status for r in runs} == {"FINISHED"}
    children = runs_in(root_store(project), "seed")
    assert sorted(r.info.run_name for r in children) == sorted(f"{k} seed {i}" for k in EXPERIMENTS for i in range(2))
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {r.info.run_id for r in runs}
    assert (project / "mlruns").is_dir()


def test_exp_run_in_workspace_creates_one_tagged_run(project):
    before = {r.info.run_id for r in runs_in(root_store(project))}
    result = run(project, "dvc", "exp", "run", "-n", "lr-005", "-S",
                 "experiments.linear_perceptron.learning_rate=0.05")
    assert stages_run(result.stdout) == {"train@linear_perceptron", "evaluate@linear_perceptron", "report"}
    new = [r for r in runs_in(root_store(project)) if r.info.run_id not in before]
    assert [(r.info.run_name, r.info.status, r.data.tags.get("dvc_exp_name")) for r in new] == [
        ("linear_perceptron", "FINISHED", "lr-005")]


def test_temp_and_queued_experiments_all_land_in_the_root_store(project):
    """--temp and --queue run in a copy under .dvc/tmp/exps that is deleted afterwards; the
    runs must still reach the repository's own mlflow.db, none lost, even two at once."""
    before = {r.info.run_id for r in runs_in(root_store(project))}
    run(project, "dvc", "exp", "run", "--temp", "-n", "temp-lr", "-S",
        "experiments.linear_perceptron.learning_rate=0.06")
    run(project, "dvc", "exp", "run", "--queue", "-n", "q-linear", "-S",
        "experiments.linear_perceptron.learning_rate=0.07")
    run(project, "dvc", "exp", "run", "--queue", "-n", "q-bands", "-S",
        "experiments.bands_sigmoid_1x10.learning_rate=0.2")
    run(project, "dvc", "queue", "start", "-j", "2")
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        status = run(project, "dvc", "queue", "status").stdout
        if "Queued" not in status and "Running" not in status:
            break
        time.sleep(3)
    assert "Failed" not in status, status + run(project, "dvc", "queue", "logs", "q-bands", check=False).stdout
    new = [r for r in runs_in(root_store(project)) if r.info.run_id not in before]
    assert sorted((r.data.tags.get("dvc_exp_name"), r.info.run_name, r.info.status) for r in new) == [
        ("q-bands", "bands_sigmoid_1x10", "FINISHED"),
        ("q-linear", "linear_perceptron", "FINISHED"),
        ("temp-lr", "linear_perceptron", "FINISHED"),
    ]
    assert not list((project / ".dvc" / "tmp" / "exps").rglob("mlflow.db"))


@pytest.fixture
def mlflow_server(tmp_path):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1"],
        env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if requests.get(f"{uri}/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None, f"mlflow server exited:\n{server.stderr.read()}"
            assert time.monotonic() < deadline, "mlflow server did not start in 120 s"
            time.sleep(0.5)
        yield uri
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_pipeline_against_a_real_tracking_server(project, mlflow_server):
    import mlflow
    import numpy as np

    from intuition.network import load_layers, predict_proba

    repro(project, "--force", MLFLOW_TRACKING_URI=mlflow_server)
    client = client_for(mlflow_server)
    runs = runs_in(mlflow_server)
    assert sorted((r.info.run_name, r.info.status) for r in runs) == sorted(
        (key, "FINISHED") for key in EXPERIMENTS)
    for r in runs:
        assert "test/accuracy" in r.data.metrics and r.data.params["epochs"] == "3"
        assert len(client.get_metric_history(r.info.run_id, "epoch/train_loss")) == 4  # epochs 0-3
        figures = {a.path for a in client.list_artifacts(r.info.run_id, "figures")}
        assert "figures/decision_regions.png" in figures
    assert len(runs_in(mlflow_server, "seed")) == 2 * len(EXPERIMENTS)
    first = next(r for r in runs if r.info.run_name == "linear_perceptron")
    mlflow.set_tracking_uri(mlflow_server)
    logged = next(m for m in mlflow.search_logged_models(experiment_ids=[first.info.experiment_id], output_format="list")
                  if m.source_run_id == first.info.run_id)
    model = mlflow.pyfunc.load_model(f"models:/{logged.model_id}")
    X = np.random.default_rng(1).normal(size=(20, 2)).astype("float32")
    rep = json.loads((project / "results" / "linear_perceptron" / "metrics.json").read_text())["representative_seed"]
    expected = predict_proba(load_layers(project / "models" / "linear_perceptron" / "seeds" / f"seed_{rep}.keras"), X)
    np.testing.assert_allclose(np.asarray(model.predict(X)).ravel(), expected[:, 1], atol=1e-5)


def test_a_server_that_is_down_fails_fast_with_one_line(project):
    down = f"http://127.0.0.1:{free_port()}"
    runs_before = len(runs_in(root_store(project)))
    lock_before = (project / "dvc.lock").read_text()
    started = time.monotonic()
    result = run(project, "python", "-m", "stages.evaluate", "linear_perceptron", check=False,
                 MLFLOW_TRACKING_URI=down)
    assert time.monotonic() - started < 10
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: MLflow tracking server {down} (MLFLOW_TRACKING_URI) is not reachable: ConnectionError; "
        "start it or unset MLFLOW_TRACKING_URI to use mlflow.db"]
    assert (project / "dvc.lock").read_text() == lock_before
    assert len(runs_in(root_store(project))) == runs_before
    assert run(project, "dvc", "status", "-q", check=False).returncode == 0, "outputs untouched"


def test_a_run_left_running_by_a_killed_process_is_marked_killed(project):
    """kill -9 of evaluate@ while it fills its runs: the next evaluate@ of that experiment marks the
    orphan KILLED (its process is gone) and leaves no run RUNNING."""
    store = root_store(project)
    before = {r.info.run_id for r in runs_in(store)}
    process = subprocess.Popen(["python", "-m", "stages.evaluate", "linear_perceptron"], cwd=project, env=env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    orphan = None
    while orphan is None and time.monotonic() < deadline and process.poll() is None:
        orphan = next((r for r in runs_in(store) if r.info.run_id not in before and r.info.status == "RUNNING"), None)
        time.sleep(0.05)
    assert orphan is not None, "evaluate@ finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert client_for(store).get_run(orphan.info.run_id).info.status == "RUNNING"
    run(project, "python", "-m", "stages.evaluate", "linear_perceptron")
    assert client_for(store).get_run(orphan.info.run_id).info.status == "KILLED"
    everything = runs_in(store) + runs_in(store, "seed")
    assert [r.info.run_name for r in everything if r.info.status == "RUNNING"] == []
