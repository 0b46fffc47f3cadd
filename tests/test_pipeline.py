"""The real pipeline: a copy of the project in a temp git repo, the real `dvc` CLI, real Keras
training (3 epochs), a real MLflow store. The tests in this module share one project and run in
order: cold run, no-op, one knob at a time, then failures."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import requests
import yaml
from matplotlib.image import imread
from sandbox import (edit_params, env, experiment_keys, make_project, make_run, repro, run, set_param, stages_done,
                     stages_run)

from intuition.network import load_layers, predict_proba
from tools import run as tools_run

EPOCHS = 3
SEEDS = 2
# One experiment per dataset, the notebook's two hard-spiral depths, a standardized control, and a
# perceptron on Playground's features (x1², x2²).
FEATURES_KEY = "circle_perceptron_squared"
EXPERIMENTS = ["linear_perceptron", "bands_relu_2x10", "bands_sigmoid_1x10", "spiral_easy_relu_1x64",
               "spiral_hard_relu_1x100", "spiral_hard_relu_2x100", "spiral_hard_relu_1x100_standardized",
               FEATURES_KEY]
FIGURES = {"training_curves", "seed_agreement", "true_vs_predicted", "probability_maps", "decision_regions",
           "architecture", "neuron_tiles", "evolution_filmstrip"}
RELU_ONLY = {"linear_regions"}  # drawn only where every hidden layer is relu


@pytest.fixture(scope="module")
def cold_run(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("pipeline"), epochs=EPOCHS, experiments=EXPERIMENTS, seeds=SEEDS)
    return project, make_run(project)


@pytest.fixture
def project(cold_run):
    return cold_run[0]


def mlflow_runs(project, role="parent"):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("classification-intuition")
    runs = client.search_runs([experiment.experiment_id], f"tags.role = '{role}'", max_results=1000)
    return client, runs


def assert_image(path):
    pixels = imread(path)
    assert pixels.ndim == 3 and min(pixels.shape[:2]) > 100, path
    assert pixels.std() > 0.05, f"{path} looks blank"


def test_cold_run_runs_every_stage(project, cold_run):
    keys = experiment_keys(project)
    datasets = yaml.safe_load((project / "params.yaml").read_text())["datasets"]
    expected = {f"generate@{d}" for d in datasets} | {"report"}
    expected |= {f"{stage}@{k}" for k in keys for stage in ("train", "evaluate")}
    assert stages_done(cold_run[1].stdout) == expected
    assert run(project, "dvc", "status", "-q", check=False).returncode == 0


def test_every_output_exists_and_is_valid(project):
    experiments = yaml.safe_load((project / "params.yaml").read_text())["experiments"]
    for key, spec in experiments.items():
        trained, out = project / "models" / key, project / "results" / key
        history = pd.read_csv(trained / "history.csv")
        assert history.groupby("seed")["epoch"].apply(list).tolist() == [list(range(0, EPOCHS + 1))] * SEEDS
        assert sorted(p.name for p in (trained / "seeds").iterdir()) == [f"seed_{i}.keras" for i in range(SEEDS)]
        metrics = json.loads((out / "metrics.json").read_text())
        assert metrics["seeds"] == SEEDS and 0 <= metrics["representative_seed"] < SEEDS
        for split in ("train", "val", "test"):
            stats = metrics[split]["accuracy"]
            assert 0 <= stats["min"] <= stats["mean"] <= stats["max"] <= 1
            assert stats["ci95_low"] <= stats["mean"] <= stats["ci95_high"]
        per_seed = pd.read_csv(out / "seeds.csv")
        assert list(per_seed["seed"]) == list(range(SEEDS))
        assert per_seed["test.accuracy"].mean() == pytest.approx(metrics["test"]["accuracy"]["mean"], abs=1e-5)
        all_relu = bool(spec["layers"][:-1]) and all(l["activation"] == "relu" for l in spec["layers"][:-1])
        assert {p.stem for p in (out / "figures").glob("*.png")} == FIGURES | (RELU_ONLY if all_relu else set())
        for png in (out / "figures").glob("*.png"):
            assert_image(png)
        assert (out / "figures" / "evolution.gif").stat().st_size < 2 * 2**20
        assert ("regions" in metrics) == all_relu
        confusion = pd.read_csv(out / "confusion_matrix.csv")
        test_rows = pd.read_csv(project / "data" / spec["dataset"] / "test.csv")
        assert confusion.to_numpy().sum() == len(test_rows) and confusion.shape[0] == confusion.shape[1]
    assert_image(project / "report" / "gallery.png")
    leaderboard = (project / "report" / "leaderboard.md").read_text()
    assert all(f"| {key} |" in leaderboard for key in experiment_keys(project))
    assert "±" in leaderboard and f"over {SEEDS} seeds" in leaderboard


def test_standardized_model_takes_raw_points(project):
    """The saved model of a standardized experiment starts with its Normalization layer, so raw
    coordinates go in; its statistics are those of the rows it was fitted on."""
    from intuition.network import Standardize

    layers = load_layers(project / "models" / "spiral_hard_relu_1x100_standardized" / "seeds" / "seed_0.keras")
    assert isinstance(layers[0], Standardize)
    train = pd.read_csv(project / "data" / "spiral_hard" / "train.csv")
    fitted = train.iloc[: int(len(train) * 0.8)][["x1", "x2"]].to_numpy()
    np.testing.assert_allclose(layers[0].mean.ravel(), fitted.mean(axis=0), rtol=1e-4)
    assert predict_proba(layers, fitted[:5]).shape == (5, 3)


def test_report_reads_only_what_evaluate_wrote(project):
    """report's declared inputs are the results/ folder (evaluate's outputs), findings.yaml,
    robustness.json (more draws of base seeds) and its code: deleting the trained models and the
    data does not stop it."""
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        report = next(s for s in repo.index.stages if s.name == "report")
        assert {d.def_path for d in report.deps if not d.def_path.endswith(".py")} == {
            "results", "findings.yaml", "robustness.json", "params.yaml", "intuition/site_templates"}
    for folder in ("models", "data"):
        (project / folder).rename(project / f"{folder}-away")
    try:
        result = run(project, "python", "-m", "stages.report", check=False)
    finally:
        for folder in ("models", "data"):
            (project / f"{folder}-away").rename(project / folder)
    assert result.returncode == 0, result.stderr


def test_metrics_and_plots_are_visible_to_dvc(project):
    shown = json.loads(run(project, "dvc", "metrics", "show", "--json").stdout)
    files = shown[""]["data"]
    assert set(files) == {f"results/{key}/headline.json" for key in experiment_keys(project)}
    for key in experiment_keys(project):
        headline = files[f"results/{key}/headline.json"]["data"]
        detail = json.loads((project / "results" / key / "metrics.json").read_text())
        assert headline["test_accuracy"] == round(detail["test"]["accuracy"]["mean"], 3)
        assert headline["learned"] == f"{detail['learned_seeds']}/{SEEDS}"
        assert headline["status"] in ("ok", "poor", "failed")
    table = run(project, "dvc", "metrics", "show", COLUMNS="200").stdout.splitlines()
    assert max(map(len, table)) <= 200 and len(table) == 1 + len(experiment_keys(project))
    assert table[0].split() == ["Path", "agreement", "learned", "sharpness", "status", "test_accuracy",
                                "test_accuracy_sd"]
    plots = run(project, "dvc", "plots", "show", "--json").stdout
    assert "test_predictions.csv" in plots and "curves.csv" in plots and ".png" not in plots  # figures: report/site


def test_second_run_does_nothing(project):
    again = repro(project)
    assert stages_run(again.stdout) == set()
    _, runs = mlflow_runs(project)
    assert len(runs) == len(experiment_keys(project))


def test_learning_rate_change_reruns_only_that_experiment(project, monkeypatch):
    _, before = mlflow_runs(project)
    set_param(project, "experiments.spiral_hard_relu_2x100.learning_rate", 0.002)
    # make run's plan (params.yaml parsed once for every stage) picks what dvc repro then runs
    monkeypatch.chdir(project)  # DVC names the stages relative to the working directory
    assert set(tools_run.plan(project)) == {"train@spiral_hard_relu_2x100", "evaluate@spiral_hard_relu_2x100", "report"}
    result = repro(project)
    assert stages_run(result.stdout) == {
        "train@spiral_hard_relu_2x100", "evaluate@spiral_hard_relu_2x100", "report"}
    _, after = mlflow_runs(project)
    new = [r for r in after if r.info.run_id not in {b.info.run_id for b in before}]
    assert [(r.info.run_name, r.info.status) for r in new] == [("spiral_hard_relu_2x100", "FINISHED")]
    assert new[0].data.params["learning_rate"] == "0.002"
    _, children = mlflow_runs(project, role="seed")
    mine = [c for c in children if c.data.tags["mlflow.parentRunId"] == new[0].info.run_id]
    assert sorted(c.info.run_name for c in mine) == [f"spiral_hard_relu_2x100 seed {i}" for i in range(SEEDS)]


def test_dataset_change_reruns_only_that_dataset(project):
    set_param(project, "datasets.bands.offset", 0.6)
    result = repro(project)
    bands = ["bands_sigmoid_1x10", "bands_relu_2x10"]
    assert stages_run(result.stdout) == {"generate@bands", "report"} | {
        f"{stage}@{k}" for k in bands for stage in ("train", "evaluate")}


def test_a_run_holds_everything(project):
    import mlflow

    client, runs = mlflow_runs(project)
    run_ = next(r for r in runs if r.info.run_name == "spiral_hard_relu_1x100")
    assert run_.info.status == "FINISHED"
    tags, params, metrics = run_.data.tags, run_.data.params, run_.data.metrics
    assert tags["dataset"] == "spiral_hard" and tags["architecture"] == "relu 100 → softmax 3"
    assert tags["experiment"] == "spiral_hard_relu_1x100" and tags["role"] == "parent"
    assert len(tags["mlflow.source.git.commit"]) == 40 and tags["mlflow.user"] and tags["mlflow.source.name"]
    training = json.loads((project / "models" / "spiral_hard_relu_1x100" / "training.json").read_text())
    assert (run_.info.start_time, run_.info.end_time) == (training["started_ms"], training["ended_ms"])
    for name in ("dataset", "hidden_layers", "hidden_units", "hidden_activation", "output_units",
                 "output_activation", "optimizer", "learning_rate", "inputs", "n_params", "seeds",
                 "dataset_data_limit"):
        assert name in params, name
    assert (params["n_params"], params["hidden_layers"], params["hidden_units"]) == ("603", "1", "100")
    for name in ("train/accuracy", "val/log_loss", "test/accuracy", "test/accuracy_sd", "test/accuracy_ci95_low",
                 "sharpness/mean_max_probability", "seeds/learned", "epoch/val_accuracy", "epoch/train_loss"):
        assert name in metrics, name
    curve = client.get_metric_history(run_.info.run_id, "epoch/val_accuracy")
    assert sorted(m.step for m in curve) == list(range(0, EPOCHS + 1))
    artifacts = {a.path for a in client.list_artifacts(run_.info.run_id)}
    artifacts |= {a.path for a in client.list_artifacts(run_.info.run_id, "figures")}
    assert {"headline.json", "history.csv", "metrics.json", "seeds.csv", "confusion_matrix.csv",
            "architecture.txt"} <= artifacts
    assert {f"figures/{name}.png" for name in FIGURES} <= artifacts
    n_train = len(pd.read_csv(project / "data" / "spiral_hard" / "train.csv"))
    split = yaml.safe_load((project / "params.yaml").read_text())["experiments"]["spiral_hard_relu_1x100"]["validation_split"]
    n_fit = math.floor(n_train * (1 - split))  # Keras' validation_split: the last rows validate
    assert sorted((d.dataset.name, d.tags[0].value) for d in run_.inputs.dataset_inputs) == [
        (f"spiral_hard: fitted rows (first {n_fit} of train.csv)", "training"), ("spiral_hard: test.csv", "test"),
        (f"spiral_hard: validation rows (last {n_train - n_fit} of train.csv)", "validation")]

    _, children = mlflow_runs(project, role="seed")
    mine = sorted((c for c in children if c.data.tags["mlflow.parentRunId"] == run_.info.run_id),
                  key=lambda c: c.info.run_name)
    per_seed = pd.read_csv(project / "results" / "spiral_hard_relu_1x100" / "seeds.csv")
    assert [c.info.status for c in mine] == ["FINISHED"] * SEEDS
    for child, (_, row) in zip(mine, per_seed.iterrows()):
        assert child.data.metrics["test/accuracy"] == pytest.approx(row["test.accuracy"], abs=1e-4)  # MLflow gets 4 decimals
        assert len(client.get_metric_history(child.info.run_id, "epoch/train_loss")) == EPOCHS + 1

    mlflow.set_tracking_uri(f"sqlite:///{project / 'mlflow.db'}")
    logged = mlflow.search_logged_models(experiment_ids=[run_.info.experiment_id], output_format="list")
    model_info = next(m for m in logged if m.source_run_id == run_.info.run_id)
    assert model_info.name == "spiral_hard_relu_1x100"
    rep = json.loads((project / "results" / "spiral_hard_relu_1x100" / "metrics.json").read_text())["representative_seed"]
    # The model's metrics are its own seed's, each once, tied to the rows it was measured on.
    own = per_seed.set_index("seed").loc[rep]
    accuracy = [m for m in model_info.metrics if m.key == "test/accuracy"]
    assert [m.dataset_name for m in accuracy] == ["spiral_hard: test.csv"]
    assert accuracy[0].value == pytest.approx(own["test.accuracy"], abs=1e-4)
    assert {m.dataset_name for m in model_info.metrics if m.key == "train/accuracy"} == {
        f"spiral_hard: fitted rows (first {n_fit} of train.csv)"}
    assert "test/accuracy_sd" not in {m.key for m in model_info.metrics}  # the run's, over seeds
    model = mlflow.pyfunc.load_model(f"models:/{model_info.model_id}")
    X = np.random.default_rng(0).uniform(-100, 100, size=(50, 2))
    layers = load_layers(project / "models" / "spiral_hard_relu_1x100" / "seeds" / f"seed_{rep}.keras")
    table = pd.DataFrame({"x2": X[:, 1], "x1": X[:, 0]})  # float64, columns by name in any order
    np.testing.assert_allclose(np.asarray(model.predict(table)), predict_proba(layers, X), atol=1e-5)


def test_the_logged_model_serves_a_users_table(project, tmp_path):
    """`mlflow models predict` on a CSV of x1, x2 (float64), and `mlflow models serve` on a loopback
    port answering `dataframe_split` (and `inputs` by column): one row of class probabilities per point."""
    from mlflow.tracking import MlflowClient

    key = "spiral_easy_relu_1x64"
    store = f"sqlite:///{project / 'mlflow.db'}"
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("classification-intuition")
    logged = [m for m in client.search_logged_models([experiment.experiment_id]) if m.name == key]
    uri = f"models:/{logged[0].model_id}"
    rep = json.loads((project / "results" / key / "metrics.json").read_text())["representative_seed"]
    X = np.random.default_rng(2).uniform(-5, 5, size=(4, 2))
    expected = predict_proba(load_layers(project / "models" / key / "seeds" / f"seed_{rep}.keras"), X)

    points = tmp_path / "points.csv"
    pd.DataFrame({"x1": X[:, 0], "x2": X[:, 1]}).to_csv(points, index=False)
    run(project, "mlflow", "models", "predict", "-m", uri, "-i", str(points), "-t", "csv",
                    "-o", str(tmp_path / "out.json"), "--env-manager", "local", MLFLOW_TRACKING_URI=store)
    rows = json.loads((tmp_path / "out.json").read_text())["predictions"]
    np.testing.assert_allclose(pd.DataFrame(rows).to_numpy(float), expected, atol=1e-5)

    port = free_port()
    server = subprocess.Popen(["mlflow", "models", "serve", "-m", uri, "-h", "127.0.0.1", "-p", str(port),
                               "--env-manager", "local"], cwd=project, env=env(MLFLOW_TRACKING_URI=store),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while not ping(url):
            assert server.poll() is None, server.stderr.read()
            assert time.monotonic() < deadline, "mlflow models serve did not answer in 120 s"
            time.sleep(0.5)
        split = {"dataframe_split": {"columns": ["x1", "x2"], "data": X.tolist()}}
        by_column = {"inputs": {"x1": X[:, 0].tolist(), "x2": X[:, 1].tolist()}}
        for body in (split, by_column):
            answer = requests.post(f"{url}/invocations", json=body, timeout=30)
            assert answer.ok, answer.text
            rows = pd.DataFrame(answer.json()["predictions"]).to_numpy(float)
            assert rows.shape == (len(X), 3)
            np.testing.assert_allclose(rows, expected, atol=1e-5)
            np.testing.assert_allclose(rows.sum(axis=1), 1, atol=1e-5)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


# What a user of the logged model has: MLflow and NumPy, not this project's code (the model brings
# its own copy of intuition/, for its Features layer).
FRESH_PYTHON = """
import importlib.util, json, sys
import numpy as np
assert importlib.util.find_spec("intuition") is None, "intuition is importable before loading"
import mlflow
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(sys.argv[2])
import pandas as pd
X = pd.DataFrame(json.loads(sys.argv[3]), columns=["x1", "x2"])
print(json.dumps({"proba": np.asarray(model.predict(X)).ravel().tolist(),
                  "layer_from": sys.modules["intuition.models"].__file__}))
"""


def test_the_features_model_trains_and_its_mlflow_model_loads_in_a_fresh_python(project, tmp_path):
    """The squared-features perceptron through the pipeline, then `mlflow.pyfunc.load_model` in a new
    interpreter, outside the project, that has never imported intuition: it predicts what the NumPy
    forward pass predicts from the saved .keras file."""
    from mlflow.tracking import MlflowClient

    from intuition.network import Features

    results = project / "results" / FEATURES_KEY
    assert (results / "figures" / "architecture.png").exists()
    rep = json.loads((results / "metrics.json").read_text())["representative_seed"]
    layers = load_layers(project / "models" / FEATURES_KEY / "seeds" / f"seed_{rep}.keras")
    assert isinstance(layers[0], Features) and layers[0].names == ("x1_squared", "x2_squared")

    store = f"sqlite:///{project / 'mlflow.db'}"
    client, runs = mlflow_runs(project)
    [parent] = [r for r in runs if r.info.run_name == FEATURES_KEY]
    assert (parent.data.params["features"], parent.data.params["layers"]) == ("x1_squared+x2_squared",
                                                                              "x1_squared+x2_squared → sigmoid 1")
    [logged] = [m for m in client.search_logged_models([parent.info.experiment_id])
                if m.source_run_id == parent.info.run_id]

    X = np.random.default_rng(0).uniform(-6, 6, size=(40, 2)).astype("float32")
    fresh = subprocess.run([sys.executable, "-c", FRESH_PYTHON, store, f"models:/{logged.model_id}",
                            json.dumps(X.tolist())], cwd=tmp_path, env=env(), capture_output=True, text=True,
                           timeout=300)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    answer = json.loads(fresh.stdout.strip().splitlines()[-1])
    assert "/code/intuition/models.py" in answer["layer_from"]  # from the model's own copy of the code
    np.testing.assert_allclose(answer["proba"], predict_proba(layers, X)[:, 1], atol=1e-5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ping(url: str) -> bool:
    try:
        return requests.get(f"{url}/ping", timeout=2).ok
    except requests.RequestException:
        return False


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
    # Killed as train@ reports its first epoch, before DVC can record the stage on any machine: from
    # that line to DVC's "Updating lock file", the other epochs, saving the models and the stage's
    # exit took 1.10-1.14 s here (3 runs), reading the line and sending the signal a few ms.
    for line in process.stdout:
        if line.startswith(f"{key} epoch "):
            break
    else:
        pytest.fail(f"train@{key} never reported an epoch")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert run(project, "dvc", "status", "-q", check=False).returncode == 1, "the stage is not taken as done"
    result = repro(project)
    assert {f"train@{key}", f"evaluate@{key}", "report"} <= stages_run(result.stdout)
    for folder in (project / "results" / key, project / "models" / key):
        assert not [p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != ".gitignore"]
    assert run(project, "dvc", "status", "-q", check=False).returncode == 0


def test_divergence_and_failure_to_learn_are_results(project):
    key = "bands_relu_2x10"
    set_param(project, f"experiments.{key}.learning_rate", 1.0e12)  # overflows to NaN in epoch 1
    repro(project)
    metrics = json.loads((project / "results" / key / "metrics.json").read_text())
    assert (metrics["diverged_seeds"], metrics["learned_seeds"]) == (SEEDS, 0)
    per_seed = pd.read_csv(project / "results" / key / "seeds.csv")
    assert list(per_seed["diverged_at_epoch"]) == [1] * SEEDS and not per_seed["learned"].any()
    for png in (project / "results" / key / "figures").glob("*.png"):
        assert imread(png).ndim == 3
    assert f"{SEEDS}/{SEEDS} seeds FAILED TO LEARN" in (project / "report" / "leaderboard.md").read_text()

    # The case: the loss explodes but stays finite, the model sits at chance, "sure" everywhere.
    set_param(project, f"experiments.{key}.learning_rate", 50)
    repro(project)
    per_seed = pd.read_csv(project / "results" / key / "seeds.csv")
    assert per_seed["diverged_at_epoch"].isna().all() and not per_seed["learned"].any()
    _, runs = mlflow_runs(project)
    latest = max((r for r in runs if r.info.run_name == key), key=lambda r: r.info.start_time)
    assert latest.data.metrics["seeds/learned"] == 0
