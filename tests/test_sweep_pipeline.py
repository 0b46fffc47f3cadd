"""A sweep through the real pipeline: a copy of the project in a temp git repo, the real `dvc` CLI,
real Keras training (few epochs), a real MLflow store. The tests share one project and run in
order: cold run, what it wrote, then one edit at a time."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from sandbox import edit_params, make_project, repro, run, set_param, stages_run

pytestmark = pytest.mark.integration

BASE = "moons_relu_2x16"  # relu 16-16 -> sigmoid 1, Adam
SWEEP = {"tiny": {"base": BASE, "axes": {"width": [4, 16], "l2": [0, 0.01]}}}
RESULTS = "results/sweeps/tiny"


@pytest.fixture(scope="module")
def cold_run(tmp_path_factory):
    project = make_project(tmp_path_factory.mktemp("sweep"), epochs=8, experiments=[BASE, "xor_relu_1x8"],
                           seeds=2, sweeps=SWEEP)
    return project, repro(project)


@pytest.fixture
def project(cold_run):
    return cold_run[0]


def points(project) -> pd.DataFrame:
    return pd.read_csv(project / RESULTS / "points.csv")


def test_the_sweep_is_one_stage_and_writes_its_results(project, cold_run):
    assert "sweep@tiny" in stages_run(cold_run[1].stdout)
    table = points(project)
    assert table["point"].tolist() == ["width=4,l2=0", "width=4,l2=0.01", "width=16,l2=0", "width=16,l2=0.01"]
    assert {"width", "l2", "test_accuracy", "test_accuracy_sd", "sharpness", "agreement", "regions_grid",
            "learned_seeds", "seeds"} <= set(table.columns)
    assert table["test_accuracy"].between(0, 1).all() and (table["seeds"] == 2).all()
    per_seed = pd.read_csv(project / RESULTS / "seeds.csv")
    assert len(per_seed) == 8 and set(per_seed["point"]) == set(table["point"])
    mean = per_seed.groupby("point", sort=False)["test.accuracy"].mean()
    assert mean.round(6).tolist() == table["test_accuracy"].round(6).tolist()
    figures = {p.name for p in (project / RESULTS / "figures").iterdir()}
    assert figures == {"phase_test_accuracy_width_x_l2.png", "phase_sharpness_width_x_l2.png", "regions.png"}
    summary = json.loads((project / RESULTS / "metrics.json").read_text())
    assert summary["points"] == 4 and summary["best_point"] in set(table["point"])


def test_a_point_like_the_base_scores_as_the_experiment_does(project):
    """width=16,l2=0 is the base experiment itself: trained in a group of two points, it matches the
    experiment trained alone (float32 sums of a bigger batched matmul may differ in the last bit)."""
    per_seed = pd.read_csv(project / RESULTS / "seeds.csv").set_index("point").loc["width=16,l2=0"]
    alone = pd.read_csv(project / f"results/{BASE}/seeds.csv")
    for column in ("test.accuracy", "train.accuracy", "val.log_loss"):
        pd.testing.assert_series_equal(per_seed[column].reset_index(drop=True), alone[column], check_names=False,
                                       rtol=1e-4)


def test_dvc_shows_the_sweep_metrics_and_plot(project):
    shown = json.loads(run(project, "dvc", "metrics", "show", "--json").stdout)
    files = shown[""]["data"]
    headline = files[f"{RESULTS}/headline.json"]["data"]
    table = pd.read_csv(project / RESULTS / "points.csv").set_index("point")
    best = table.loc[headline["best_point"]]
    assert headline["test_accuracy"] == round(best["test_accuracy"], 3) == round(table["test_accuracy"].max(), 3)
    assert headline["learned"] == f"{(table['learned_seeds'] == table['seeds']).sum()}/4"
    assert f"{RESULTS}/metrics.json" not in files  # the detail is an output, not a DVC metric
    out = project / "plots_out"
    run(project, "dvc", "plots", "show", f"{RESULTS}/accuracy.csv", "-o", str(out))
    html = (out / "index.html").read_text()
    assert '"series": "l2=0.01"' in html and '"axis": "width"' in html  # a line per l2, along width


def test_mlflow_has_a_parent_and_a_run_per_point(project):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("classification-intuition")
    (parent,) = client.search_runs([experiment.experiment_id], "tags.sweep = 'tiny' and tags.role = 'sweep'")
    children = client.search_runs([experiment.experiment_id], "tags.sweep = 'tiny' and tags.role = 'point'")
    assert len(children) == 4
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    table = points(project).set_index("point")
    for child in children:
        name = child.data.params["point"]
        assert child.data.metrics["test/accuracy"] == pytest.approx(table.loc[name, "test_accuracy"], abs=1e-6)
        assert child.data.params["hidden_units"] == str(table.loc[name, "width"])
    assert parent.data.params["axis_width"] == "4, 16"
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"points.csv", "figures"} <= artifacts


def test_editing_another_experiment_leaves_the_sweep_alone(project):
    set_param(project, "experiments.xor_relu_1x8.learning_rate", 0.02)
    ran = stages_run(repro(project).stdout)
    assert "sweep@tiny" not in ran and "train@xor_relu_1x8" in ran


def test_a_new_width_trains_only_its_points(project):
    before = points(project)
    set_param(project, "sweeps.tiny.axes.width", [4, 16, 8])
    result = repro(project)
    assert "sweep@tiny" in stages_run(result.stdout)
    assert "4 points in 2 groups" not in result.stdout
    assert "6 points in 3 groups of the same shape; training 1 groups (2 points), 2 trained before" in result.stdout
    after = points(project)
    assert len(after) == 6
    pd.testing.assert_frame_equal(after.iloc[:4].reset_index(drop=True), before)  # width 8 comes last
    assert len(list((project / "models/sweeps/tiny").glob("*.npz"))) == 6


def test_editing_the_base_reruns_the_sweep(project):
    set_param(project, f"experiments.{BASE}.learning_rate", 0.02)
    result = repro(project)
    assert {"sweep@tiny", f"train@{BASE}"} <= stages_run(result.stdout)
    assert "training 3 groups (6 points), 0 trained before" in result.stdout
    assert len(list((project / "models/sweeps/tiny").glob("*.npz"))) == 6  # the old points' files removed


def test_a_bad_sweep_fails_in_one_line_and_writes_nothing(project):
    before = (project / RESULTS / "points.csv").read_bytes()

    def bad(params):
        params["sweeps"]["tiny"]["axes"]["width"] = [0, 8]
    edit_params(project, bad)
    result = repro(project, check=False)
    assert result.returncode != 0
    errors = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("error: params.yaml")]
    assert errors == ["error: params.yaml: sweeps.tiny.axes.width: 0 is not allowed: use a whole number, 1 or "
                      "more (units in every hidden layer)"]
    assert (project / RESULTS / "points.csv").read_bytes() == before
    yaml.safe_load((project / "params.yaml").read_text())  # the file itself is fine: the value is not
