"""Findings over several base seeds: robustness.json built from the per-seed tables of several
draws, the per-experiment fingerprint that makes a draw stale, the current findings.yaml checked on
recorded draws (thresholds changed afterwards), findings.md's draws column, `make validate`'s lines,
and tools.robustness' own parts (the copy, the seed line, the table, --from-record, bad input).
Unit tests on hand-built tables; the one integration test at the end runs `python -m
tools.robustness` on a tiny project (2 experiments, 3 epochs, 2 seeds, one extra base seed)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from intuition import files
from intuition.config import ParamsError
from intuition.findings import evaluate, parse_findings, to_markdown
from intuition.robustness import (
    ROBUSTNESS_FILE, Draw, Setups, draw_failures, evaluate_draws, over_base_seeds, recorded_draws,
    robustness_record, stale_warning,
)
from tools import robustness

N = 3
EXPERIMENTS = ("a", "b", "c")
SETUPS = Setups({e: {"experiment": {"dataset": "d", "learning_rate": 0.01}, "dataset": {"kind": "spiral"}}
                 for e in EXPERIMENTS}, N)
KNOBS = {e: {"depth": 1} for e in EXPERIMENTS}
CITATION = "Hein, Andriushchenko & Bitterwolf, CVPR 2019, arXiv 1812.05720"
LIVE = 42  # the workspace's own base seed: read from results/, never stored


def table(accuracy, learned=None) -> pd.DataFrame:
    return pd.DataFrame({"seed": range(len(accuracy)), "test.accuracy": accuracy,
                         "learned": [True] * len(accuracy) if learned is None else learned})


def raw_findings(by=0.05, min_seeds=None, expect="holds") -> dict:
    wider = {"id": "a_beats_b", "claim": "a beats b", "source": "controls", "expect": expect,
             "checks": [{"metric": "a.test.accuracy", "op": ">", "than": "b.test.accuracy", "by": by}]}
    if min_seeds is not None:
        wider["min_seeds"] = min_seeds
    return {"findings": [
        wider,
        {"id": "far_away", "claim": "b reaches 0.99", "source": "literature", "citation": CITATION,
         "expect": "does not hold", "checks": [{"metric": "b.test.accuracy", "op": ">=", "value": 0.99}]},
    ]}


def with_finding(raw: dict, metric: str, value: float = 0.7, ident: str = "new") -> dict:
    """raw_findings plus one finding added after the draws were recorded."""
    new = {"id": ident, "claim": "new", "source": "controls",
           "checks": [{"metric": metric, "op": ">=", "value": value}]}
    return {"findings": [*raw["findings"], new]}


def findings_of(raw=None, n_seeds=N):
    return parse_findings(raw or raw_findings(), EXPERIMENTS, n_seeds)


# Three draws: a beats b by 0.1 in every seed with base seeds 42 and 2026; with base seed 7, seed 2
# of a falls below b (and a's mean is nearer b's).
DRAWS = {LIVE: {"a": table([0.9, 0.9, 0.9]), "b": table([0.8, 0.8, 0.8])},
         7: {"a": table([0.9, 0.9, 0.7]), "b": table([0.8, 0.8, 0.8], learned=[True, False, True])},
         2026: {"a": table([0.95, 0.9, 0.85]), "b": table([0.8, 0.8, 0.75])}}


def record_of(findings=None, draws=DRAWS, setups=SETUPS) -> dict:
    """robustness.json's content, as read back, for every draw but the workspace's own."""
    extra = [Draw(seed, tables) for seed, tables in draws.items() if seed != LIVE]
    record = robustness_record(findings or findings_of(), extra, setups, "2026-11-26")
    return json.loads(json.dumps(record))


def in_draws_of(findings, record, setups=SETUPS, live=DRAWS[LIVE]):
    """Each finding in the workspace's draw and the record's, as the report checks them."""
    draws = [Draw(LIVE, live), *recorded_draws(record, setups, LIVE)]
    return evaluate_draws(findings, draws, KNOBS)


def held(findings, record, setups=SETUPS, live=DRAWS[LIVE]):
    return over_base_seeds(findings, in_draws_of(findings, record, setups, live))


# ------------------------------------------------------------------------------ robustness.json

def test_the_record_keeps_each_extra_draws_per_seed_rows_and_fingerprints_but_no_verdicts():
    record = record_of()
    assert record["written"] == "2026-11-26" and record["base_seeds"] == [7, 2026]
    assert record["seeds"] == N and "findings" not in record
    assert [d["base_seed"] for d in record["draws"]] == [7, 2026]  # not 42: it is results/
    seven = record["draws"][0]["experiments"]
    assert list(seven) == ["a", "b"]
    assert seven["b"]["fingerprint"] == SETUPS.fingerprint("b", 7) and len(seven["b"]["fingerprint"]) == 16
    assert seven["b"]["rows"] == [{"seed": 0, "test.accuracy": 0.8, "learned": True},
                                  {"seed": 1, "test.accuracy": 0.8, "learned": False},
                                  {"seed": 2, "test.accuracy": 0.8, "learned": True}]


def test_the_record_keeps_every_metric_column_rounded_and_only_the_experiments_findings_name():
    wide = table([0.123456789, float("nan"), 0.5]).assign(**{
        "train.log_loss": [1.0, 2.0, 3.0], "regions.grid": [89, 134, 70], "diverged_at_epoch": [None, 3, None]})
    record = record_of(draws={7: {"a": wide, "b": table([0.8] * N), "c": table([0.1] * N)}})
    experiments = record["draws"][0]["experiments"]
    assert set(experiments) == {"a", "b"}  # no finding names c
    first, second = experiments["a"]["rows"][:2]
    assert first == {"seed": 0, "test.accuracy": 0.123457, "learned": True, "train.log_loss": 1.0,
                     "regions.grid": 89}  # a metric column is <group>.<name>
    assert second["test.accuracy"] is None  # NaN: JSON has none


def test_the_record_survives_write_json_and_a_nan_seed_is_checked_as_in_results(tmp_path):
    draws = {7: {"a": table([0.9, float("nan"), 0.9]), "b": table([0.5] * N)}}
    path = tmp_path / "robustness.json"
    files.write_json(path, record_of(draws=draws))
    findings = findings_of()
    [live, seven] = in_draws_of(findings, files.read_json(path))["a_beats_b"]
    [check] = seven.outcome.checks
    assert check.k == 2 and seven.outcome.status == "does not hold"
    assert seven.line() == "base seed 7: does not hold (2/3 seeds, n/a vs 0.500)"


def test_a_recorded_draw_of_the_workspaces_own_base_seed_is_left_to_results():
    record = record_of()
    assert [d.base_seed for d in recorded_draws(record, SETUPS, live_seed=7)] == [2026]
    assert recorded_draws(None, SETUPS, LIVE) == []


@pytest.mark.parametrize("record, line", [
    ({"findings": {}}, "robustness.json: no `draws` list: not written by `make robustness`; run it again "
                       "(or delete the file)"),
    ({"draws": [{"base_seed": 7}]}, "robustness.json: draws[0]: malformed (KeyError: 'experiments'); run "
                                    "`make robustness` again (or delete the file)"),
])
def test_a_record_of_another_layout_is_refused_in_one_line(record, line):
    with pytest.raises(ParamsError) as exc:
        recorded_draws(record, SETUPS, LIVE)
    assert str(exc.value) == line


# ----------------------------------------------------------------------------------- fingerprint

def test_the_fingerprint_is_per_experiment_and_base_seed():
    assert SETUPS.fingerprint("a", 7) != SETUPS.fingerprint("a", 2026)
    assert SETUPS.fingerprint("a", 7) == SETUPS.fingerprint("b", 7)  # the same setup
    assert SETUPS.fingerprint("gone", 7) is None  # params.yaml no longer defines it


@pytest.mark.parametrize("change", [
    lambda setups: setups["a"]["experiment"].update(learning_rate=0.001),
    lambda setups: setups["a"]["dataset"].update(kind="circle"),
])
def test_the_fingerprint_changes_with_the_experiments_or_its_datasets_params(change):
    experiments = json.loads(json.dumps(SETUPS.experiments))
    change(experiments)
    changed = Setups(experiments, N)
    assert changed.fingerprint("a", 7) != SETUPS.fingerprint("a", 7)
    assert changed.fingerprint("b", 7) == SETUPS.fingerprint("b", 7)


def test_the_fingerprint_changes_with_the_number_of_seeds():
    assert Setups(SETUPS.experiments, 5).fingerprint("a", 7) != SETUPS.fingerprint("a", 7)


def test_setups_hold_each_experiments_and_its_datasets_params(params_dict):
    from intuition.config import parse_params

    params = parse_params(params_dict)
    setups = Setups.of(params)
    assert set(setups.experiments) == set(params.specs()) and setups.seeds == params.seeds  # sweep points too
    spec = params.experiments["spiral_hard_relu_2x100"]
    setup = setups.experiments["spiral_hard_relu_2x100"]
    assert setup["experiment"]["learning_rate"] == spec.learning_rate
    assert setup["dataset"] == params.datasets[spec.dataset].model_dump(mode="json")
    json.dumps(setups.experiments)  # plain data


# --------------------------------------------------------- the current findings.yaml, each draw

def test_a_threshold_changed_after_the_draws_is_checked_on_them_without_staleness():
    record = record_of(findings_of())
    tighter = findings_of(raw_findings(by=0.2))
    assert held(tighter, record)["a_beats_b"].text == (
        "held in 0 of 3 draws (base seeds 42, 7, 2026); not as recorded (expect: holds) with base "
        "seeds 42, 7, 2026")
    looser = findings_of(raw_findings(by=0.0, min_seeds=2))  # seed 2 of base seed 7 may fail now
    draws = held(looser, record)["a_beats_b"]
    assert draws.text == "held in 3 of 3 draws (base seeds 42, 7, 2026)" and draws.cell == "3/3"
    assert draws.details[1] == "base seed 7: holds (2/3 seeds, 0.833 vs 0.800)"


def test_a_new_finding_on_recorded_experiments_is_checked_on_every_draw():
    findings = findings_of(with_finding(raw_findings(), "b.test.accuracy", 0.78))
    draws = held(findings, record_of())["new"]
    assert draws.text == ("held in 2 of 3 draws (base seeds 42, 7, 2026); not as recorded (expect: "
                          "holds) with base seed 2026")


def test_a_finding_on_an_experiment_the_record_lacks_is_not_measured_over_base_seeds():
    findings = findings_of(with_finding(raw_findings(), "c.test.accuracy", 0.05))
    draws = held(findings, record_of(), live={**DRAWS[LIVE], "c": table([0.1] * N)})["new"]
    assert draws.text == "not measured over base seeds (`make robustness` measures it)"
    assert draws.cell == "–"
    assert draws.details == ("base seed 42: holds (3/3 seeds, 0.100)",
                             "base seed 7: not measured over base seeds (no per-seed results for c)",
                             "base seed 2026: not measured over base seeds (no per-seed results for c)")


def test_a_metric_column_the_record_lacks_is_not_measured_there():
    findings = findings_of(with_finding(raw_findings(), "a.train.accuracy", 0.5))
    live = {**DRAWS[LIVE], "a": DRAWS[LIVE]["a"].assign(**{"train.accuracy": 0.9})}
    [_, seven, _] = in_draws_of(findings, record_of(), live=live)["new"]
    assert seven.line() == "base seed 7: not measured over base seeds (robustness.json has no a.train.accuracy)"
    assert not seven.measured and not seven.differs


def test_a_changed_experiment_makes_its_draws_stale_for_the_findings_on_it():
    experiments = json.loads(json.dumps(SETUPS.experiments))
    experiments["a"]["experiment"]["learning_rate"] = 0.001
    changed = Setups(experiments, N)
    findings = findings_of()
    draws = held(findings, record_of(), setups=changed)
    stale = ("stale: a changed since robustness.json was written (rerun `make robustness`)")
    assert draws["a_beats_b"].text == stale and draws["a_beats_b"].cell == "stale"
    assert draws["a_beats_b"].details == ("base seed 42: holds (3/3 seeds, 0.900 vs 0.800)",
                                          f"base seed 7: {stale}", f"base seed 2026: {stale}")
    assert draws["far_away"].text == "held in 0 of 3 draws (base seeds 42, 7, 2026)"  # b unchanged
    in_draws = in_draws_of(findings, record_of(), setups=changed)
    assert draw_failures(in_draws) == []  # a stale draw is not checked
    assert stale_warning(in_draws) == (
        "warning: a changed since robustness.json was written: the findings on it are not checked "
        "with base seeds 7, 2026; rerun `make robustness`")
    assert stale_warning(in_draws_of(findings, record_of())) is None


# ------------------------------------------------------------------------- findings.md's draws

def test_held_in_k_of_n_draws_and_where_not_as_recorded():
    findings = findings_of()
    draws = held(findings, record_of())
    wider, far = draws["a_beats_b"], draws["far_away"]
    assert wider.text == ("held in 2 of 3 draws (base seeds 42, 7, 2026); not as recorded "
                          "(expect: holds) with base seed 7")
    assert wider.cell == "2/3 ⚠️"
    assert wider.details[1] == "base seed 7: does not hold (2/3 seeds, 0.833 vs 0.800)"
    assert far.text == "held in 0 of 3 draws (base seeds 42, 7, 2026)" and far.cell == "0/3"
    assert far.details[0] == "base seed 42: does not hold (0/3 seeds, 0.800)"


def test_no_record_or_an_empty_one_is_not_measured_over_base_seeds():
    findings = findings_of()
    placeholder = {"about": "not measured yet: run `make robustness`", "written": None, "base_seeds": [],
                   "seeds": None, "draws": []}  # what a project without draws commits
    for record in (None, placeholder):
        draws = held(findings, record)
        assert draws["a_beats_b"].text == "not measured over base seeds (`make robustness` measures it)"
        assert draws["a_beats_b"].cell == "–" and draws["a_beats_b"].details == ()


def test_validate_gets_one_line_per_finding_and_recorded_draw_not_as_recorded():
    findings = findings_of()
    recorded = recorded_draws(record_of(), SETUPS, LIVE)  # validate checks results/ by itself
    assert draw_failures(evaluate_draws(findings, recorded, KNOBS)) == [
        "finding a_beats_b (controls, expect: holds) in robustness.json: base seed 7: does not hold "
        "(2/3 seeds, 0.833 vs 0.800)"]
    relaxed = findings_of(raw_findings(by=0.0, min_seeds=2))
    assert draw_failures(evaluate_draws(relaxed, recorded, KNOBS)) == []


def test_findings_md_has_a_draws_column_and_each_draw_in_the_section():
    findings = findings_of()
    outcomes = evaluate(findings, DRAWS[LIVE], KNOBS)
    md = to_markdown(outcomes, held(findings, record_of()))
    lines = md.splitlines()
    assert lines[0] == "| finding | source | varies | verdict | base-seed draws held | citation |"
    assert lines[1] == "|---|---|---|---|---|---|"
    assert lines[2] == "| [a_beats_b](#a_beats_b) | controls | – | ✅ holds | 2/3 ⚠️ | – |"
    assert lines[3].startswith("| [far_away](#far_away) | literature | – | "
                               "➖ does not reproduce here (as recorded) | 0/3 | [Hein, ")
    assert ("**Over base seeds:** held in 2 of 3 draws (base seeds 42, 7, 2026); not as recorded "
            "(expect: holds) with base seed 7") in md
    assert "- base seed 2026: holds (3/3 seeds, 0.900 vs 0.783)" in md
    experiments = json.loads(json.dumps(SETUPS.experiments))
    experiments["b"]["dataset"]["kind"] = "circle"
    stale = to_markdown(outcomes, held(findings, record_of(), setups=Setups(experiments, N)))
    assert "| ✅ holds | stale | – |" in stale and "**Over base seeds:** stale: b changed" in stale
    assert "base-seed draws" not in to_markdown(outcomes)  # validate's summary: no draws given


# ------------------------------------------------------------------------- tools.robustness

def test_with_seed_changes_the_seed_line_only():
    text = "# knobs\nseed: 42   # the base seed\nseeds: 5\nexperiments:\n  a:\n    seed: 3\n"
    assert robustness.with_seed(text, 7) == text.replace("seed: 42", "seed: 7")
    with pytest.raises(robustness.Stop, match="no single top-level `seed: <number>` line"):
        robustness.with_seed("seeds: 5\n", 7)


def test_the_copy_is_the_working_tree_without_outputs_in_its_own_repo(tmp_path, monkeypatch):
    root = tmp_path / "root"
    for name, text in {"params.yaml": "seed: 42\nseeds: 2\n", "tools/x.py": "committed\n",
                       "results/a/seeds.csv": "seed\n", "models/a/m.keras": "m", "data/d/train.csv": "x",
                       "report/findings.md": "#", "dvc.lock": "", ".gitignore": "/mlflow.db\n/mlruns/\n",
                       "robustness.json": "{}"}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    (root / "tools/x.py").write_text("changed, not committed\n")
    (root / "tools/new.py").write_text("untracked, not ignored\n")
    (root / "mlflow.db").write_text("the main store")
    (root / "mlruns/1").mkdir(parents=True)
    (tmp_path / "copies").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "copies"))
    copy = robustness.make_copy(root, 7)
    assert copy.parent == tmp_path / "copies" and copy.name.startswith("robustness-seed7-")
    copied = sorted(str(p.relative_to(copy)) for p in copy.rglob("*") if p.is_file() and ".git" not in p.parts)
    assert copied == [".gitignore", "params.yaml", "robustness.json", "tools/new.py", "tools/x.py"]
    assert (copy / "params.yaml").read_text() == "seed: 7\nseeds: 2\n"
    assert (copy / "tools/x.py").read_text() == "changed, not committed\n"
    log = subprocess.run(["git", "log", "--oneline"], cwd=copy, capture_output=True, text=True).stdout
    assert "robustness: base seed 7" in log


def test_the_copys_pipeline_gets_no_mlflow_or_dvc_variables(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://team:5000")
    monkeypatch.setenv("DVC_ROOT", "/somewhere")
    env = robustness.copy_env()
    assert not any(k.startswith(("MLFLOW_", "DVC_")) for k in env)
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)


def test_the_table_marks_each_draw_and_names_what_differs():
    findings = findings_of()
    text, differs = robustness.table(findings, in_draws_of(findings, record_of()))
    lines = text.splitlines()
    assert lines[0].split() == ["finding", "expect", "42", "7", "2026"]
    assert lines[1].split() == ["a_beats_b", "holds", "✓", "3/3", "✗", "2/3", "!", "✓", "3/3"]
    assert lines[2].split() == ["far_away", "does", "not", "hold", "✗", "0/3", "✗", "0/3", "✗", "0/3"]
    assert differs == ["a_beats_b (expect: holds): differs with base seed 7"]


def test_the_table_shows_a_stale_draw_and_does_not_count_it():
    experiments = json.loads(json.dumps(SETUPS.experiments))
    experiments["a"]["experiment"]["learning_rate"] = 0.001
    findings = findings_of()
    text, differs = robustness.table(findings, in_draws_of(findings, record_of(), Setups(experiments, N)))
    assert text.splitlines()[1].split() == ["a_beats_b", "holds", "✓", "3/3", "stale", "stale"]
    assert differs == []


@pytest.fixture
def workspace(tmp_path, params_dict):
    root = tmp_path / "ws"
    root.mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump(params_dict, sort_keys=False))
    (root / "findings.yaml").write_text((Path(__file__).resolve().parents[1] / "findings.yaml").read_text())
    return root


@pytest.mark.parametrize("seeds, line", [
    ([7, 42], "error: --seeds: 42 is the workspace's own base seed (params.yaml `seed`), already a draw; "
              "give other base seeds"),
    ([7, 7], "error: --seeds: 7 7 names a base seed twice"),
])
def test_bad_seeds_are_refused_in_one_line_before_any_work(workspace, seeds, line):
    with pytest.raises(robustness.Stop) as exc:
        robustness.measure(workspace, seeds, keep=False)
    assert str(exc.value) == line and exc.value.code == 2
    assert not (workspace / "robustness.json").exists()


def test_bad_findings_are_refused_before_any_work(workspace, monkeypatch, capsys):
    raw = yaml.safe_load((workspace / "findings.yaml").read_text())
    raw["findings"][0] |= {"source": "literature"}
    (workspace / "findings.yaml").write_text(yaml.safe_dump(raw))
    monkeypatch.chdir(workspace)
    assert robustness.main(["--seeds", "7"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: findings.yaml: finding {raw['findings'][0]['id']}: citation: missing")


TINY = ["bands_sigmoid_1x10", "bands_relu_2x10"]  # one dataset: the cheapest pipeline with two


@pytest.fixture
def tiny_workspace(tmp_path, params_dict):
    """A workspace of the TINY experiments and N seeds: params.yaml, results/ (as the pipeline
    writes them) and robustness.json with one more draw (base seed 7), written here."""
    from intuition.config import parse_params

    params_dict |= {"seeds": N, "experiments": {k: params_dict["experiments"][k] for k in TINY}, "sweeps": {}}
    root = tmp_path / "tiny"
    root.mkdir()
    (root / "params.yaml").write_text(yaml.safe_dump(params_dict, sort_keys=False))
    write_tiny_findings(root, by=0.05)
    sigmoid, relu = TINY
    for key, frame in {sigmoid: table([0.8] * N), relu: table([0.95] * N)}.items():
        files.write_csv(root / files.EvaluateOutputs(key).seeds, frame)
    params = parse_params(params_dict)
    findings = parse_findings(yaml.safe_load((root / "findings.yaml").read_text()), TINY, N)
    seven = Draw(7, {sigmoid: table([0.8] * N), relu: table([0.95, 0.9, 0.82])})
    files.write_json(root / ROBUSTNESS_FILE, robustness_record(findings, [seven], Setups.of(params), "2026-11-26"))
    return root


def write_tiny_findings(root: Path, by: float) -> None:
    sigmoid, relu = TINY
    (root / "findings.yaml").write_text(yaml.safe_dump({"findings": [
        {"id": "relu_beats_sigmoid", "claim": "c", "source": "controls",
         "checks": [{"metric": f"{relu}.test.accuracy", "op": ">", "than": f"{sigmoid}.test.accuracy",
                     "by": by}]}]}))


def test_from_record_checks_findings_yaml_as_it_is_now_on_the_record_and_runs_nothing(
        tiny_workspace, monkeypatch, capsys):
    monkeypatch.chdir(tiny_workspace)
    record = (tiny_workspace / ROBUSTNESS_FILE).read_bytes()
    assert robustness.main(["--from-record"]) == 1  # base seed 7, seed 2: 0.82 is not 0.8 + 0.05
    out = capsys.readouterr().out
    assert ("base seed 42 (the workspace): read from results/ as they are; the draws of "
            "robustness.json (written 2026-11-26): 7") in out
    [row] = [line for line in out.splitlines() if line.startswith("relu_beats_sigmoid ")]
    assert row.split() == ["relu_beats_sigmoid", "holds", "✓", "3/3", "✗", "2/3", "!"]
    assert "differs from findings.yaml: relu_beats_sigmoid (expect: holds): differs with base seed 7" in out

    write_tiny_findings(tiny_workspace, by=0.01)  # a threshold set after seeing the draws
    assert robustness.main(["--from-record"]) == 0
    [row] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("relu_beats_sigmoid ")]
    assert row.split() == ["relu_beats_sigmoid", "holds", "✓", "3/3", "✓", "3/3"]
    assert (tiny_workspace / ROBUSTNESS_FILE).read_bytes() == record
    assert sorted(p.name for p in tiny_workspace.iterdir()) == ["findings.yaml", "params.yaml", "results",
                                                                "robustness.json"]


def test_from_record_without_a_record_or_with_seeds_is_refused(tiny_workspace, monkeypatch, capsys):
    monkeypatch.chdir(tiny_workspace)
    with pytest.raises(SystemExit) as exc:
        robustness.main(["--from-record", "--seeds", "7"])
    assert exc.value.code == 2
    assert "--from-record runs nothing: it takes no --seeds or --keep" in capsys.readouterr().err
    (tiny_workspace / ROBUSTNESS_FILE).unlink()
    assert robustness.main(["--from-record"]) == 2
    assert capsys.readouterr().err == "error: robustness.json: missing; `make robustness` writes it\n"


# ----------------------------------------------------------------------------------- integration

def digest(path: Path) -> str:
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    return " ".join(sorted(str(p.relative_to(path)) for p in path.rglob("*")))


@pytest.mark.integration
def test_integration_make_robustness_on_a_tiny_project(tmp_path):
    """The real thing, small: the workspace pipeline, then one extra base seed in a copy; the
    record, the copy deleted, the workspace's MLflow store untouched, and the report's column."""
    from sandbox import commit, make_project, run

    project = make_project(tmp_path, epochs=3, experiments=TINY, seeds=2)
    (project / "findings.yaml").write_text(yaml.safe_dump({"findings": [
        {"id": "relu_about_sigmoid", "claim": "c", "source": "controls",
         "checks": [{"metric": "bands_relu_2x10.test.accuracy", "op": "within",
                     "than": "bands_sigmoid_1x10.test.accuracy", "by": 1.0}]},
        {"id": "perfect", "claim": "c", "source": "literature", "citation": CITATION,
         "expect": "does not hold",
         "checks": [{"metric": "bands_sigmoid_1x10.test.accuracy", "op": ">", "value": 1.0}]},
    ]}))
    commit(project, "tiny findings")
    run(project, sys.executable, "-m", "tools.run", timeout=300)
    store = {name: digest(project / name) for name in ("mlflow.db", "mlruns")}
    copies = tmp_path / "copies"
    copies.mkdir()
    elsewhere = tmp_path / "elsewhere.db"

    result = run(project, sys.executable, "-m", "tools.robustness", "--seeds", "43", timeout=300,
                 TMPDIR=str(copies), MLFLOW_TRACKING_URI=f"sqlite:///{elsewhere}")

    assert "wrote robustness.json" in result.stdout
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()
            if line.startswith(("relu_about_sigmoid ", "perfect "))}
    assert rows == {"relu_about_sigmoid": ["holds", "✓", "2/2", "✓", "2/2"],
                    "perfect": ["does", "not", "hold", "✗", "0/2", "✗", "0/2"]}
    record = json.loads((project / "robustness.json").read_text())
    assert record["base_seeds"] == [43] and record["seeds"] == 2  # 42 is results/, never stored
    [draw] = record["draws"]
    assert draw["base_seed"] == 43 and sorted(draw["experiments"]) == sorted(TINY)
    for key in TINY:
        stored = draw["experiments"][key]["rows"]
        assert [r["seed"] for r in stored] == [0, 1] and all(r["test.accuracy"] is not None for r in stored)
        ours = files.read_csv(project / files.EvaluateOutputs(key).seeds)
        assert [r["test.log_loss"] for r in stored] != pytest.approx(list(ours["test.log_loss"]))  # two draws
    assert not [p.name for p in copies.iterdir() if p.name.startswith("robustness-")]  # the copy is gone
    assert {name: digest(project / name) for name in store} == store and not elsewhere.exists()

    run(project, "dvc", "repro", "report")
    findings_md = (project / "report/findings.md").read_text()
    assert "held in 2 of 2 draws (base seeds 42, 43)" in findings_md
    assert "held in 0 of 2 draws (base seeds 42, 43)" in findings_md


def test_knobs_added_later_change_no_fingerprint_at_their_default(params_dict):
    """l1 and l2 came after robustness.json's draws: at 0 an experiment's fingerprint is the one
    recorded before they existed; set, it differs (its results would)."""
    from intuition.config import parse_params
    from intuition.robustness import Setups

    key = "spiral_hard_relu_2x100"
    params = parse_params(params_dict)
    before = {"experiment": {k: v for k, v in params.experiments[key].model_dump(mode="json").items()
                             if k not in ("l1", "l2")},
              "dataset": params.datasets["spiral_hard"].model_dump(mode="json")}
    old = Setups({key: before}, params.seeds).fingerprint(key, 7)
    assert Setups.of(params).fingerprint(key, 7) == old
    params_dict["experiments"][key]["l2"] = 0.01
    assert Setups.of(parse_params(params_dict)).fingerprint(key, 7) != old


def test_a_draw_reads_sweep_points_from_their_sweeps_seeds_csv(tmp_path):
    rows = pd.DataFrame({"point": ["w=1", "w=1", "w=2", "w=2"], "seed": [0, 1, 0, 1],
                         "test.accuracy": [0.5, 0.6, 0.7, 0.8], "learned": [True] * 4})
    files.write_csv(tmp_path / files.SweepOutputs("s").seeds, rows)
    files.write_csv(tmp_path / files.EvaluateOutputs("e").seeds, rows.drop(columns="point").iloc[:2])
    draw = robustness.read_draw(tmp_path, 7, ["e", "s[w=2]"])
    assert sorted(draw.tables) == ["e", "s[w=2]"]
    assert draw.tables["s[w=2]"]["test.accuracy"].tolist() == [0.7, 0.8]
    with pytest.raises(robustness.Stop, match=r"s\[w=3\]: no such sweep point"):
        robustness.read_draw(tmp_path, 7, ["s[w=3]"])


def test_sweep_points_have_fingerprints_that_follow_their_sweep(params_dict):
    from intuition.config import parse_params
    from intuition.robustness import Setups

    params_dict["sweeps"] = {"s": {"base": "spiral_hard_relu_2x100", "axes": {"width": [8]}}}
    before = Setups.of(parse_params(params_dict)).fingerprint("s[width=8]", 7)
    assert before is not None
    params_dict["sweeps"]["s"]["seeds"] = 3
    assert Setups.of(parse_params(params_dict)).fingerprint("s[width=8]", 7) != before
