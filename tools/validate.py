"""`make validate`: prove the pipeline still runs and still says what the notebook says.

Not a pipeline stage: the command CI runs after the tests (`python -m tools.validate`).
1. static checks: params.yaml and findings.yaml against their schemas, dvc.yaml parses and its DAG
   builds, every declared dependency and param exists;
2. the committed dvc.lock is not stale: it has no entry for a stage dvc.yaml no longer defines, and
   before running, `dvc status` may report missing outputs only, never changed params, code or commands;
3. the full pipeline (`make run`'s parallel runner), then `dvc status` is clean and a second, plain
   `dvc repro` runs nothing;
4. every output present and valid (metrics parse, images decode and are not blank);
5. every finding of findings.yaml says what is measured (its status is its `expect`), in results/
   and in every draw of robustness.json that is not stale (`make robustness`: more base seeds; a
   stale draw is named in a warning, not failed), and no finding of the project's own controls is
   confounded (a notebook claim that holds but is confounded passes: it is reported as such);
6. a Markdown summary (timings, leaderboard, findings, `dvc metrics diff` against the last commit)
   in validation-summary.md, and appended to $GITHUB_STEP_SUMMARY when that is set.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

from intuition import files, sweeps
from intuition.config import PARAMS_FILE, ParamsError, load_params
from intuition.findings import evaluate, failures, knobs_of, load_findings_for, to_markdown
from intuition.robustness import (
    ROBUSTNESS_FILE, Setups, draw_failures, evaluate_draws, recorded_draws, stale_warning,
)

SUMMARY = Path("validation-summary.md")
MISSING_OUTPUT = {"deleted", "not in cache"}


class Invalid(Exception):
    """A validation step failed; the message says what and where."""


def dvc(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(["dvc", *args], capture_output=True, text=True)
    if result.returncode not in (0, 1) or (result.returncode == 1 and args[0] != "status"):
        raise Invalid(f"`dvc {' '.join(args)}` failed:\n{result.stdout}{result.stderr}")
    return result


def pipeline_outputs() -> list[str]:
    from dvc.repo import Repo

    with Repo() as repo:
        return [out.def_path for stage in repo.index.stages for out in stage.outs]


def is_produced(path: str, outputs: list[str]) -> bool:
    """An output of some stage, or a directory holding outputs (like the report's `results`)."""
    return any(out == path or out.startswith(path.rstrip("/") + "/") for out in outputs)


def static_checks() -> str:
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    load_findings_for(load_params())  # raises one line per problem: unknown experiment, knob, ...
    raw = yaml.safe_load(PARAMS_FILE.read_text())
    with Repo() as repo:
        stages = repo.index.stages
        repo.index.graph  # building the DAG raises on cycles and overlapping outputs
        outputs = [out.def_path for stage in stages for out in stage.outs]
        problems = []
        for stage in stages:
            for dep in stage.deps:
                if isinstance(dep, ParamsDependency):
                    problems += [f"{stage.addressing}: param {key} is not in {PARAMS_FILE}"
                                 for key in dep.params if not _has_key(raw, key)]
                elif not os.path.exists(dep.def_path) and not is_produced(dep.def_path, outputs):
                    problems.append(f"{stage.addressing}: dependency {dep.def_path} does not exist")
    if problems:
        raise Invalid("\n".join(problems))
    return f"{len(stages)} stages, {len(outputs)} outputs, params and findings valid"


def _has_key(tree: dict, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return False
        tree = tree[part]
    return True


def lock_has_only_live_stages() -> None:
    """DVC keeps the dvc.lock entries of stages removed from dvc.yaml; they describe outputs
    nothing makes any more."""
    from dvc.repo import Repo

    lock = Path("dvc.lock")
    if not lock.exists():
        return
    with Repo() as repo:
        live = {stage.addressing for stage in repo.index.stages}
    dead = sorted(set((yaml.safe_load(lock.read_text()) or {}).get("stages", {})) - live)
    if dead:
        raise Invalid(f"dvc.lock has entries for stages dvc.yaml does not define: {', '.join(dead)}; "
                      "remove them (or delete dvc.lock and rerun `dvc repro`)")


def lock_is_current() -> str:
    """Stages whose params, code or command changed since dvc.lock was committed: the pipeline
    was not rerun after that change."""
    lock_has_only_live_stages()
    status = json.loads(dvc("status", "--json").stdout or "{}")
    outputs = pipeline_outputs()
    stale = {}
    for stage, changes in status.items():
        reasons = []
        for change in changes:
            if change == "changed command" or isinstance(change, str):
                reasons.append(str(change))
                continue
            for path, what in change.get("changed deps", {}).items():
                if isinstance(what, dict):
                    reasons += [f"param {key} {state}" for key, state in what.items()]
                elif not is_produced(path, outputs):
                    reasons.append(f"{path} {what}")
            reasons += [f"output {path} {what}" for path, what in change.get("changed outs", {}).items()
                        if what not in MISSING_OUTPUT]
        if reasons:
            stale[stage] = reasons
    if stale:
        lines = [f"  {stage}: {', '.join(reasons)}" for stage, reasons in stale.items()]
        raise Invalid("dvc.lock is stale: these stages changed since the pipeline last ran; run "
                      "`dvc repro` and commit dvc.lock with the change:\n" + "\n".join(lines))
    missing = sum(1 for changes in status.values() if changes)
    return f"dvc.lock current ({missing} stages only missing their outputs)"


def run_pipeline() -> str:
    """`make run`'s own runner (stages in parallel on Dask), then plain DVC must agree: `dvc status`
    clean and a second, sequential `dvc repro` runs nothing."""
    result = subprocess.run([sys.executable, "-m", "tools.run"], text=True, capture_output=True)
    sys.stdout.write(result.stdout[-4000:])
    if result.returncode != 0:
        raise Invalid(f"the pipeline failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    ran = len(re.findall(r"\] done ", result.stdout))
    if dvc("status", "-q").returncode != 0:
        raise Invalid("`dvc status` is not clean after the pipeline ran")
    again = dvc("repro")
    if rerun := re.findall(r"Running stage '([^']+)'", again.stdout):
        raise Invalid(f"a second `dvc repro` ran {', '.join(rerun)}: the pipeline is not reproducible")
    return f"{ran} stages ran (both cores); status clean; a second, plain `dvc repro` ran nothing"


TERMINAL_COLUMNS = 200  # `dvc metrics show` fits a wide terminal (with every aggregate as a DVC metric: 3,168 characters a line)


def outputs_valid() -> str:
    from matplotlib.image import imread

    params = load_params()
    problems, images = [], 0
    for key in params.experiments:
        out = files.EvaluateOutputs(key)
        try:
            metrics = files.read_json(out.metrics)
            assert metrics["seeds"] == params.seeds, f"{metrics['seeds']} seeds, params say {params.seeds}"
            assert 0 <= metrics["test"]["accuracy"]["mean"] <= 1
            assert len(files.read_csv(out.seeds)) == params.seeds, "seeds.csv has a row per seed"
        except (OSError, ValueError, KeyError, AssertionError) as exc:
            problems.append(f"{out.metrics}: {type(exc).__name__} {exc}")
    for png in sorted(Path(files.RESULTS).glob("*/figures/*.png")) + [files.REPORT / "gallery.png"]:
        try:
            pixels = imread(png)
            images += 1
            if pixels.std() < 0.02:
                problems.append(f"{png}: blank image")
        except (OSError, ValueError, SyntaxError) as exc:
            problems.append(f"{png}: does not decode ({exc})")
    shown = subprocess.run(["dvc", "metrics", "show"], capture_output=True, text=True,
                           env=os.environ | {"COLUMNS": str(TERMINAL_COLUMNS)})
    widest = max(map(len, shown.stdout.splitlines()), default=0)
    if shown.returncode != 0 or widest > TERMINAL_COLUMNS:
        problems.append(f"`dvc metrics show` prints lines of {widest} characters, more than {TERMINAL_COLUMNS} "
                        f"(a headline.json has grown?){shown.stderr[-500:]}")
    if problems:
        raise Invalid("\n".join(problems))
    return (f"{len(params.experiments)} metrics files and {images} images valid; `dvc metrics show` "
            f"{widest} columns wide")


def sweeps_valid() -> str:
    """Every sweep has a row per point and its figures; every point that is also an experiment
    scores as that experiment does (intuition.sweeps.compare_twin)."""
    params = load_params()
    problems = []
    for key in params.sweeps:
        out = files.SweepOutputs(key)
        table, expected = files.read_csv(out.points), [p.name for p in params.sweep_points(key)]
        if table["point"].tolist() != expected:
            problems.append(f"{out.points}: points {table['point'].tolist()}, params say {expected}")
        if not list(out.figures.glob("phase_*.png")):
            problems.append(f"{out.figures}: no phase diagram")
    per_seed = files.read_per_seed(params.experiments, params.sweeps)
    compared = [sweeps.compare_twin(point, experiment, per_seed)
                for point, experiment in sweeps.twins(params.specs(), params.experiments).items()]
    problems += [f"{t.point}: mean test accuracy {t.point_mean:.4f}, its twin experiment {t.experiment} "
                 f"{t.experiment_mean:.4f}: more than one sd over seeds ({t.tolerance:.4f}) apart"
                 for t in compared if not t.agrees]
    if problems:
        raise Invalid("\n".join(problems))
    same = sum(t.point_mean == t.experiment_mean for t in compared)
    return (f"{len(params.sweeps)} sweeps, {sum(len(params.sweep_points(k)) for k in params.sweeps)} points; "
            f"{len(compared)} points that are experiments too agree with them ({same} with the same mean test accuracy)")


def findings_hold(summary: list[str]) -> str:
    params = load_params()
    findings, knobs = load_findings_for(params), knobs_of(params)
    per_seed = files.read_per_seed(params.experiments, params.sweeps)
    outcomes = evaluate(findings, per_seed, knobs)
    summary += ["## Findings", "", to_markdown(outcomes)]
    record = files.read_json(ROBUSTNESS_FILE) if ROBUSTNESS_FILE.exists() else None
    recorded = recorded_draws(record, Setups.of(params), params.seed)
    in_draws = evaluate_draws(findings, recorded, knobs)
    warning = stale_warning(in_draws)
    if failed := failures(outcomes) + draw_failures(in_draws):
        raise Invalid("\n".join(failed + ([warning] if warning else [])))
    held = sum(o.status == "holds" for o in outcomes)
    confounded = sum(o.confounded for o in outcomes)
    line = (f"all {len(outcomes)} findings say what is measured ({held} hold, {len(outcomes) - held} "
            f"recorded as not reproducing; {confounded} of the notebook's hold as measured, but confounded)")
    if recorded:
        seeds = ", ".join(str(d.base_seed) for d in recorded)
        line += f"; as in every draw of {ROBUSTNESS_FILE} that is not stale (base seeds {seeds})"
    return line if warning is None else f"{line}\n{warning}"


REPORT_LINKS = [
    ("report/site/index.html", files.SITE / "index.html", "the offline site: findings, leaderboard, experiments, compare, sweeps"),
    ("report/findings.md", files.REPORT / "findings.md", "every finding's evidence"),
    ("report/leaderboard.md", files.REPORT / "leaderboard.md", "every experiment's scores"),
]


def baseline_rev() -> tuple[str, str]:
    """What a change is compared with: the main branch's last commit when there is one (a
    reviewer's question: what does this branch change?), else the last commit."""
    for ref in ("main", "origin/main"):
        found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
                               capture_output=True, text=True)
        if found.returncode == 0:
            return ref, found.stdout.strip()
    return "HEAD", "HEAD"


def metrics_diff() -> list[str]:
    """`dvc metrics diff` of the workspace against the baseline's committed metrics: only what
    changed, with the change."""
    name, rev = baseline_rev()
    diff = subprocess.run(["dvc", "metrics", "diff", name, "--md", "--precision", "4"], capture_output=True, text=True)
    title = f"## Metrics against {name} ({rev[:10]})" if rev != name else f"## Metrics against {name}"
    if diff.returncode != 0:
        return [title, "", f"`dvc metrics diff` failed: {' '.join(diff.stderr.strip().splitlines()[-1:])}", ""]
    table = diff.stdout.strip().splitlines()
    return [title, "", *(table if len(table) > 2 else ["No metric changed."]), ""]


def main() -> int:
    summary = ["# Pipeline validation", ""]
    steps = [("static checks", static_checks), ("dvc.lock is current", lock_is_current),
             ("full pipeline", run_pipeline), ("outputs valid", outputs_valid),
             ("sweeps valid", sweeps_valid),
             ("findings hold", lambda: findings_hold(summary))]
    rows, failed = [], None
    for name, step in steps:
        started = time.monotonic()
        print(f"::: validate: {name}", flush=True)
        try:
            detail = step()
            ok = True
        except (Invalid, ParamsError) as exc:
            detail, ok = str(exc), False
        seconds = time.monotonic() - started
        print(f"::: validate: {name}: {'ok' if ok else 'FAILED'} ({seconds:.1f} s)\n{detail}", flush=True)
        rows.append(f"| {name} | {'✅' if ok else '❌'} | {seconds:.1f} s | {detail.splitlines()[0]} |")
        if not ok:
            failed = name
            break
    summary[2:2] = ["| step | result | time | detail |", "|---|---|---|---|", *rows, ""]
    if (files.REPORT / "leaderboard.md").exists():
        summary += [(files.REPORT / "leaderboard.md").read_text().replace("# Leaderboard", "## Leaderboard")]
    summary += metrics_diff()
    summary += ["## The report", "", "Built by the pipeline in this checkout (open them from disk, no network needed):",
                "", *[f"- [{name}]({path}): {what}" for name, path, what in REPORT_LINKS], ""]
    text = "\n".join(summary) + "\n"
    SUMMARY.write_text(text)
    if os.environ.get("GITHUB_STEP_SUMMARY"):
        with open(os.environ["GITHUB_STEP_SUMMARY"], "a") as handle:
            handle.write(text)
    print(f"summary: {SUMMARY}")
    if failed:
        print(f"validation FAILED at: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
