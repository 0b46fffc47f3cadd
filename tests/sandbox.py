"""A throw-away copy of the project in its own git repo, for running the real `dvc` CLI on it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's bin: dvc and mlflow live next to this python


def tracked_files() -> list[str]:
    """The project as git knows it (committed or staged), without generated outputs."""
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    return [f for f in out.stdout.splitlines() if not f.startswith(("results/", "report/", "data/", "models/"))
            and f != "dvc.lock" and (ROOT / f).exists()]


def env(**extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    environ["PATH"] = f"{BIN}{os.pathsep}{environ.get('PATH', '')}"
    environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return environ | extra


def run(project: Path, *args: str, check: bool = True, timeout: float = 1800, **extra_env: str):
    result = subprocess.run(list(args), cwd=project, env=env(**extra_env), capture_output=True,
                            text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def make_project(tmp: Path, epochs: int = 3, experiments: list[str] | None = None, seeds: int = 2,
                 sweeps: dict | None = None) -> Path:
    """Copy the project into `tmp`, set every experiment's epochs and the number of seeds, keep only
    `experiments` (and the datasets they use), and commit it in a fresh git repo. The copy has the
    `sweeps` given (params.yaml's `sweeps:` shape), none by default: a test that is not about sweeps
    does not pay for them."""
    project = tmp / "project"
    for name in tracked_files():
        target = project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)

    def shrink(params):
        if experiments is not None:
            params["experiments"] = {k: v for k, v in params["experiments"].items() if k in experiments}
            used = {e["dataset"] for e in params["experiments"].values()}
            params["datasets"] = {k: v for k, v in params["datasets"].items() if k in used}
        for spec in params["experiments"].values():
            spec["epochs"] = epochs
        params["seeds"] = seeds
        params["sweeps"] = sweeps or {}

    edit_params(project, shrink)
    if experiments is not None:
        keep_findings_about(project, set(experiments))
    run(project, "git", "init", "-q")
    commit(project, "sandbox")
    return project


def keep_findings_about(project: Path, experiments: set[str]) -> None:
    """Drop the findings of findings.yaml that compare experiments the copy does not have (and
    references to dropped findings), as a user trimming params.yaml would."""
    path = project / "findings.yaml"
    data = yaml.safe_load(path.read_text())

    def named(finding):
        return {c[k].split(".", 1)[0] for c in finding["checks"] for k in ("metric", "than") if c.get(k)}

    data["findings"] = [f for f in data["findings"] if named(f) <= experiments]
    kept = {f["id"] for f in data["findings"]}
    for finding in data["findings"]:
        if "overturned_by" in finding:
            finding["overturned_by"] = [i for i in finding["overturned_by"] if i in kept]
            if not finding["overturned_by"]:
                del finding["overturned_by"]
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def commit(project: Path, message: str) -> None:
    run(project, "git", "add", "-A")
    run(project, "git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message)


def edit_params(project: Path, change) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    change(params)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def set_param(project: Path, dotted: str, value) -> None:
    *parents, last = dotted.split(".")

    def change(params):
        node = params
        for part in parents:
            node = node[part]
        node[last] = value

    edit_params(project, change)


def repro(project: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    return run(project, "dvc", "repro", *args, **kw)


def make_run(project: Path, **kw) -> subprocess.CompletedProcess:
    """`make run`'s runner (`python -m tools.run`): the real `dvc`, a stage per core. The cold runs
    of the pipeline fixtures use it (both cores instead of one); what follows them is plain
    `dvc repro`, which must then find nothing to do."""
    return run(project, sys.executable, "-m", "tools.run", **kw)


def stages_run(output: str) -> set[str]:
    """The stages whose command `dvc repro` ran (not those restored from the run cache)."""
    return set(re.findall(r"Running stage '([^']+)'", output))


def stages_done(output: str) -> set[str]:
    """The stages `python -m tools.run` ran to success."""
    return set(re.findall(r"^\[\d+/\d+\] done (\S+)", output, re.MULTILINE))


def experiment_keys(project: Path) -> list[str]:
    return list(yaml.safe_load((project / "params.yaml").read_text())["experiments"])
