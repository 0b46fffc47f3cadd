"""The real pipeline: a copy of the project in a temp git repo, the real `dvc` CLI, real Keras
training (3 epochs), a real MLflow store. The tests in this module share one project and run in
order: cold run, no-op, one knob at a time, then failures."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest
import yaml
from matplotlib.image import imread
from sandbox import edit_params, env, experiment_keys, make_project, repro, run, set_param, stages_run

from intuition.network import load_layers, predict_proba

EPOCHS = 3
FIGURES = {"training_curves", "true_vs_predicted", "probability_maps", "decision_regions", "architecture"}


@pytest.fixture(scope="module")
def cold_run(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("pipeline"), epochs=EPOCHS)
    return project, repro(project)


@pytest.fixture
def project(cold_run):
    return cold_run[0]


def mlflow_runs(project):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("classification-intuition")
    return client, client.search_runs([experiment.experiment_id], max_results=1000)


def assert_image(path):
    pixels = imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100, path
    assert pixels.std() > 0.05, f"{path} looks blank"


def test_cold_run_runs_every_stage(project, cold_run):
    keys = experiment_keys(project)
    datasets = yaml.safe_load((project / "params.yaml").read_text())["datasets"]
    expected = {f"generate@{d}" for d in datasets} | {"report"}
    expected |= {f"{stage}@{k}" for k in keys for stage in ("train", "evaluate")}
    assert stages_run(cold_run[1].stdout) == expected
    assert run(project, "dvc", "status", "-q", check=False).returncode == 0


def test_every_output_exists_and_is_valid(project):
    experiments = yaml.safe_load((project / "params.yaml").read_text())["experiments"]
    for key, spec in experiments.items():
        out = project / "results" / key
        history = np.genfromtxt(out / "history.csv", delimiter=",", names=True)
        assert list(history["epoch"]) == list(range(1, EPOCHS + 1))
        metrics = json.loads((out / "metrics.json").read_text())
        for split in ("train", "val", "test"):
            assert 0 <= metrics[split]["accuracy"] <= 1 and metrics[split]["log_loss"] >= 0
        assert 0 < metrics["sharpness"]["mean_max_probability"] <= 1
        assert {p.stem for p in (out / "figures").glob("*.png")} == FIGURES
        for png in (out / "figures").glob("*.png"):
            assert_image(png)
        confusion = np.loadtxt(out / "confusion_matrix.csv", delimiter=",", skiprows=1, ndmin=2)
        test_rows = np.loadtxt(project / "data" / spec["dataset"] / "test.csv", delimiter=",", skiprows=1)
        assert confusion.sum() == len(test_rows) and confusion.shape[0] == confusion.shape[1]
        assert load_layers(out / "model.keras")
    assert_image(project / "report" / "gallery.png")
    leaderboard = (project / "report" / "leaderboard.md").read_text()
    assert all(f"| {key} |" in leaderboard for key in experiment_keys(project))


def test_metrics_and_plots_are_visible_to_dvc(project):
    shown = json.loads(run(project, "dvc", "metrics", "show", "--json").stdout)
    files = shown[""]["data"]
    for key in experiment_keys(project):
        assert files[f"results/{key}/metrics.json"]["data"]["test"]["accuracy"] >= 0
    plots = run(project, "dvc", "plots", "show", "--json").stdout
    assert "history.csv" in plots and "decision_regions.png" in plots


def test_second_run_does_nothing(project):
    again = repro(project)
    assert stages_run(again.stdout) == set()
    _, runs = mlflow_runs(project)
    assert len(runs) == len(experiment_keys(project))


def test_learning_rate_change_reruns_only_that_experiment(project):
    _, before = mlflow_runs(project)
    set_param(project, "experiments.spiral_hard_relu_2x100.learning_rate", 0.002)
    result = repro(project)
    assert stages_run(result.stdout) == {
        "train@spiral_hard_relu_2x100", "evaluate@spiral_hard_relu_2x100", "report"}
    _, after = mlflow_runs(project)
    new = [r for r in after if r.info.run_id not in {b.info.run_id for b in before}]
    assert [(r.info.run_name, r.info.status) for r in new] == [("spiral_hard_relu_2x100", "FINISHED")]
    assert new[0].data.params["learning_rate"] == "0.002"


def test_dataset_change_reruns_only_that_dataset(project):
    set_param(project, "datasets.bands.offset", 0.6)
    result = repro(project)
    bands = ["bands_sigmoid_1x10", "bands_sigmoid_2x10", "bands_relu_2x10"]
    assert stages_run(result.stdout) == {"generate@bands", "report"} | {
        f"{stage}@{k}" for k in bands for stage in ("train", "evaluate")}


def test_a_run_holds_everything(project):
    import mlflow

    client, runs = mlflow_runs(project)
    run_ = next(r for r in runs if r.info.run_name == "spiral_hard_relu_1x100")
    assert run_.info.status == "FINISHED"
    tags, params, metrics = run_.data.tags, run_.data.params, run_.data.metrics
    assert tags["dataset"] == "spiral_hard" and tags["architecture"] == "relu 100 → softmax 3"
    assert tags["dvc_stages"] == "train@spiral_hard_relu_1x100, evaluate@spiral_hard_relu_1x100"
    assert len(tags["git_commit"]) == 40
    for name in ("dataset", "optimizer", "learning_rate", "epochs", "batch_size", "validation_split",
                 "seed", "n_params", "layer_0_units", "layer_1_activation", "dataset_data_limit"):
        assert name in params, name
    assert params["n_params"] == "603"
    for name in ("train/accuracy", "val/log_loss", "test/accuracy", "test/per_class/2/f1",
                 "sharpness/mean_max_probability", "training/diverged", "val_accuracy", "loss"):
        assert name in metrics, name
    curve = client.get_metric_history(run_.info.run_id, "val_accuracy")
    assert sorted(m.step for m in curve) == list(range(1, EPOCHS + 1))
    artifacts = {a.path for a in client.list_artifacts(run_.info.run_id)}
    artifacts |= {a.path for a in client.list_artifacts(run_.info.run_id, "figures")}
    assert {"history.csv", "metrics.json", "confusion_matrix.csv", "architecture.txt"} <= artifacts
    assert {f"figures/{name}.png" for name in FIGURES} <= artifacts
    assert [d.dataset.name for d in run_.inputs.dataset_inputs] == ["spiral_hard"]

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    model = mlflow.pyfunc.load_model(f"runs:/{run_.info.run_id}/model")
    X = np.random.default_rng(0).uniform(-100, 100, size=(50, 2)).astype("float32")
    expected = predict_proba(load_layers(project / "results" / "spiral_hard_relu_1x100" / "model.keras"), X)
    np.testing.assert_allclose(np.asarray(model.predict(X)), expected, atol=1e-5)


def test_bad_params_fail_before_any_work(project):
    set_param(project, "experiments.extra", {
        "dataset": "linear", "layers": [{"units": 4, "activation": "tanhh"}, {"units": 1, "activation": "sigmoid"}],
        "optimizer": "sgd", "learning_rate": 0.1, "epochs": 3, "batch_size": 32, "validation_split": 0.3})
    result = repro(project, check=False)
    assert result.returncode != 0
    message = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("error:")]
    assert message == ["error: params.yaml: experiments.extra.layers[0].activation: 'tanhh' is not allowed; "
                       "use one of: relu, sigmoid, tanh, linear, softmax"]
    assert "Traceback" not in result.stderr
    assert not (project / "results" / "extra").exists()

    edit_params(project, lambda params: params["experiments"].pop("extra"))
    assert run(project, "dvc", "status", "-q", check=False).returncode == 0, "nothing recorded was lost"


def test_killed_stage_recovers_on_next_run(project):
    key = "linear_perceptron"
    set_param(project, f"experiments.{key}.learning_rate", 0.05)
    process = subprocess.Popen(["dvc", "repro"], cwd=project, env=env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    for line in process.stdout:
        if f"Running stage 'train@{key}'" in line:
            break
    time.sleep(2)  # mid-way: TensorFlow is loading or the model is training
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert run(project, "dvc", "status", "-q", check=False).returncode == 1, "the stage is not taken as done"
    result = repro(project)
    assert {f"train@{key}", f"evaluate@{key}", "report"} <= stages_run(result.stdout)
    assert not [p.name for p in (project / "results" / key).iterdir() if p.name.startswith(".") and p.name != ".gitignore"]
    assert run(project, "dvc", "status", "-q", check=False).returncode == 0


def test_divergence_is_a_result(project):
    key = "bands_relu_2x10"
    set_param(project, f"experiments.{key}.learning_rate", 1.0e12)  # overflows to NaN in epoch 1
    repro(project)
    metrics = json.loads((project / "results" / key / "metrics.json").read_text())
    assert metrics["training"] == {"diverged": True, "diverged_at_epoch": 1}
    assert np.isfinite(metrics["test"]["accuracy"])
    for png in (project / "results" / key / "figures").glob("*.png"):
        assert_image(png)
    assert "DIVERGED at epoch 1" in (project / "report" / "leaderboard.md").read_text()
