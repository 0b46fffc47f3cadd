"""`make validate` (tools/validate.py) on a one-experiment copy of the project: a committed,
reproduced pipeline passes; a stale dvc.lock or a finding that no longer holds fails, saying why."""

from __future__ import annotations

import json
import shutil

import pytest
from sandbox import commit, make_project, repro, run, set_param

KEY = "linear_perceptron"
FINDINGS = f"""findings:
  - id: perceptron_learns
    claim: "A perceptron learns the blobs."
    source: notebook
    checks:
      - {{metric: {KEY}.test.accuracy, op: ">=", value: 0.6}}
"""


@pytest.fixture(scope="module")
def committed(tmp_path_factory):
    """A sandbox whose pipeline ran and was committed, as the repository's main is."""
    project = make_project(tmp_path_factory.mktemp("validate"), epochs=5, experiments=[KEY])
    (project / "findings.yaml").write_text(FINDINGS)
    repro(project)
    commit(project, "pipeline run")
    return project


@pytest.fixture
def clone(committed, tmp_path):
    """A fresh clone: committed files only, no outputs, no DVC cache (beyond the shared one)."""
    target = tmp_path / "clone"
    run(committed, "git", "clone", "-q", str(committed), str(target))
    return target


@pytest.fixture
def checkout(committed, tmp_path):
    """A copy of the committed sandbox with its outputs: a user's checkout after `make run`, where
    a change reruns only what it touches (a fresh clone would first rerun the whole pipeline)."""
    target = tmp_path / "checkout"
    shutil.copytree(committed, target, symlinks=True)
    return target


def validate_step(project, step: str, *args: str):
    """One step of `make validate` (a function of tools.validate, given `args` as Python source)."""
    return run(project, "python", "-c", f"from tools.validate import {step}; print({step}({', '.join(args)}))",
               check=False)


def test_fresh_clone_has_only_missing_outputs(clone):
    result = validate_step(clone, "lock_is_current")
    assert result.returncode == 0, result.stderr
    assert "only missing their outputs" in result.stdout


def test_params_change_committed_without_rerun_is_stale(clone):
    set_param(clone, f"experiments.{KEY}.learning_rate", 0.5)
    commit(clone, "change lr, forget dvc repro")
    result = validate_step(clone, "lock_is_current")
    assert result.returncode != 0
    assert "dvc.lock is stale" in result.stderr
    assert f"train@{KEY}: param experiments.{KEY} modified" in result.stderr


def test_code_change_without_rerun_is_stale(clone):
    with open(clone / "intuition" / "metrics.py", "a") as source:
        source.write("\n# a change\n")
    result = validate_step(clone, "lock_is_current")
    assert result.returncode != 0
    assert f"evaluate@{KEY}: intuition/metrics.py modified" in result.stderr


def test_lock_entries_of_removed_stages_fail(clone):
    """DVC keeps the lock entries of stages that dvc.yaml no longer defines; validate does not."""
    import yaml

    lock = yaml.safe_load((clone / "dvc.lock").read_text())
    lock["stages"]["plot@linear_perceptron"] = lock["stages"][f"evaluate@{KEY}"]
    (clone / "dvc.lock").write_text(yaml.safe_dump(lock, sort_keys=False))
    result = validate_step(clone, "lock_is_current")
    assert result.returncode != 0
    assert "dvc.lock has entries for stages dvc.yaml does not define: plot@linear_perceptron" in result.stderr


def test_static_checks_catch_a_finding_about_an_unknown_experiment(clone):
    (clone / "findings.yaml").write_text(FINDINGS.replace(f"{KEY}.test", "nosuch.test"))
    result = validate_step(clone, "static_checks")
    assert result.returncode != 0
    assert "finding perceptron_learns: checks[0].metric: 'nosuch.test.accuracy' names no experiment 'nosuch'" in result.stderr


def test_validate_passes_on_a_fresh_clone_and_writes_a_summary(clone):
    result = run(clone, "python", "-m", "tools.validate", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    for step in ("static checks", "dvc.lock is current", "full pipeline", "outputs valid", "findings hold"):
        assert f"::: validate: {step}: ok" in result.stdout
    summary = (clone / "validation-summary.md").read_text()
    assert "[perceptron_learns](#perceptron_learns)" in summary and "✅ holds" in summary and "## Leaderboard" in summary
    # The same params on the same machine: the committed metrics again, and the report's links.
    assert "## Metrics against " in summary and "No metric changed." in summary
    assert "[report/site/index.html](report/site/index.html)" in summary and (clone / "report/site/index.html").exists()

    # A reviewer sees what a change moved, with the change.
    headline = clone / "results" / KEY / "headline.json"
    data = json.loads(headline.read_text())
    data["test_accuracy"] = round(data["test_accuracy"] - 0.25, 3)
    headline.write_text(json.dumps(data))
    shown = validate_step(clone, "metrics_diff")
    assert shown.returncode == 0, shown.stderr
    row = next(line for line in shown.stdout.splitlines() if "test_accuracy " in line or "| test_accuracy |" in line)
    assert f"results/{KEY}/headline.json" in row and "-0.25" in row, shown.stdout


def test_a_finding_that_does_not_hold_fails_with_the_claim_and_numbers(checkout):
    (checkout / "findings.yaml").write_text(FINDINGS.replace("value: 0.6", "value: 1.01"))
    commit(checkout, "impossible finding")
    repro(checkout)  # findings.yaml is a report dependency: bring the lock up to date first
    commit(checkout, "rerun")
    result = run(checkout, "python", "-m", "tools.validate", check=False)
    assert result.returncode == 1
    assert "finding perceptron_learns (notebook) does not hold: A perceptron learns the blobs." in result.stdout
    assert f"{KEY}.test.accuracy" in result.stdout and "1.01" in result.stdout


def test_a_confounded_control_fails_and_a_confounded_notebook_claim_does_not(checkout):
    """Two experiments that differ in learning rate AND validation split, compared as if only the
    learning rate varied: as the project's own (controls) claim it fails validation, naming the
    confound; as a notebook claim that holds it passes, reported as confounded."""
    from sandbox import edit_params

    def add_twin(params):
        twin = dict(params["experiments"][KEY], learning_rate=0.2, validation_split=0.2)
        params["experiments"]["twin"] = twin

    edit_params(checkout, add_twin)
    finding = """findings:
  - id: rate_matters
    claim: "The learning rate matters."
    source: {source}
    varies: learning_rate
    checks:
      - {{metric: twin.test.accuracy, op: within, than: {key}.test.accuracy, by: 1}}
"""
    for source, code in (("controls", 1), ("notebook", 0)):
        (checkout / "findings.yaml").write_text(finding.format(source=source, key=KEY))
        repro(checkout)  # the first time: the twin trains
        # Only validate's findings step: how a failed step fails `make validate` is the test above's.
        result = validate_step(checkout, "findings_hold", "[]")  # its summary lines: a list to add to
        told = result.stdout + result.stderr
        assert result.returncode == code, told
        if source == "controls":
            assert "finding rate_matters (controls) is confounded" in told
            assert "validation_split 0.2 vs 0.3" in told or "validation_split 0.3 vs 0.2" in told
        else:
            assert "1 of the notebook's hold as measured, but confounded" in told
            assert "confounded" in (checkout / "report" / "findings.md").read_text()
