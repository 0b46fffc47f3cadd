"""A throw-away copy of the project in its own git repo, for running the real `dvc` CLI on it."""

from __future__ import annotations

import atexit
import json
import os
import re
import select
import shutil
import signal
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


def run(project: Path, *args: str, check: bool = True, timeout: float = 1800, own_process: bool = False,
        **extra_env: str):
    """`args` run in `project` with `env(**extra_env)`, as a subprocess; `dvc` with a subcommand of
    IN_WORKER runs in the project's long-lived `dvc` instead (tests/dvc_worker.py: the same CLI,
    started once), unless `own_process`."""
    if not own_process and len(args) > 1 and args[0] == "dvc" and args[1] in IN_WORKER:
        result = worker_for(project).dvc(list(args[1:]), env(**extra_env), timeout)
    else:
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
    """`dvc repro` in the project's long-lived `dvc` (tests/dvc_worker.py)."""
    return run(project, "dvc", "repro", *args, **kw)


def plain_repro(project: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    """`dvc repro` as a user types it: a `dvc` process, and one per stage command."""
    return run(project, "dvc", "repro", *args, own_process=True, **kw)


def make_run(project: Path, **kw) -> subprocess.CompletedProcess:
    """`make run`'s runner (`python -m tools.run`): the real `dvc`, a stage per core. The cold runs
    of the fixtures that test it use it; what follows them is `dvc repro`, which must then find
    nothing to do. Other fixtures' cold runs are `repro`: under `make test` both cores are busy
    with two modules, and a runner's Dask cluster and second stage worker cost CPU (measured:
    README, Performance, "The tests")."""
    return run(project, sys.executable, "-m", "tools.run", **kw)


def stages_run(output: str) -> set[str]:
    """The stages whose command `dvc repro` ran (not those restored from the run cache)."""
    return set(re.findall(r"Running stage '([^']+)'", output))


DONE = re.compile(r"^\[\d+/\d+\] done (\S+) \((\d+\.\d+) s", re.MULTILINE)  # tools.run's line per stage


def stages_done(output: str) -> set[str]:
    """The stages `python -m tools.run` ran to success."""
    return set(stage_seconds(output))


def stage_seconds(output: str) -> dict[str, float]:
    """The stages `python -m tools.run` ran to success, and the seconds it printed for each."""
    return {found[1]: float(found[2]) for found in DONE.finditer(output)}


def experiment_keys(project: Path) -> list[str]:
    return list(yaml.safe_load((project / "params.yaml").read_text())["experiments"])


IN_WORKER = {"repro", "status", "metrics", "plots", "params", "dag"}  # DVC's commands a worker runs
WORKER_SOURCE = (Path(__file__).parent / "dvc_worker.py").read_text()
LIVE_WORKERS = 2  # per test process; each holds TensorFlow once it trained (~0.6-1 GiB)


class DvcWorker:
    """A project's long-lived `dvc` (tests/dvc_worker.py), started in its root, and the commands
    sent to it. Its stdout and stderr go to files under .dvc/tmp (git-ignored, as DVC's own)."""

    def __init__(self, project: Path):
        self.project, self.code = project, code_stamp(project)
        self.proc = subprocess.Popen([sys.executable, "-c", WORKER_SOURCE], cwd=project, env=env(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     start_new_session=True)

    def dvc(self, args: list[str], environ: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
        out, err = (self.project / ".dvc" / "tmp" / f"test-dvc.{name}" for name in ("out", "err"))
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("")
        err.write_text("")
        self.proc.stdin.write(json.dumps({"args": args, "env": environ, "stdout": str(out),
                                          "stderr": str(err)}) + "\n")
        self.proc.stdin.flush()
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            self.stop()
            raise subprocess.TimeoutExpired(["dvc", *args], timeout, out.read_text(), err.read_text())
        reply = self.proc.stdout.readline()
        if not reply:
            raise AssertionError(f"the dvc worker of {self.project} died ({self.proc.wait()}) running "
                                 f"dvc {' '.join(args)}:\n{out.read_text()}\n{err.read_text()}")
        return subprocess.CompletedProcess(["dvc", *args], json.loads(reply)["returncode"],
                                           out.read_text(), err.read_text())

    def stop(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


_workers: dict[Path, DvcWorker] = {}  # the live ones, least recently used first


def worker_for(project: Path) -> DvcWorker:
    """The project's worker; a new one if there is none or its code changed since it started
    (a worker keeps the modules it imported)."""
    project = Path(project).resolve()
    worker = _workers.pop(project, None)
    if worker is not None and (worker.proc.poll() is not None or worker.code != code_stamp(project)):
        worker.stop()
        worker = None
    while len(_workers) >= LIVE_WORKERS:
        _workers.pop(next(iter(_workers))).stop()
    _workers[project] = worker or DvcWorker(project)
    return _workers[project]


def code_stamp(project: Path) -> list[tuple[str, int, int]]:
    """The project's Python code as files' names, sizes and modification times."""
    return sorted((str(p), p.stat().st_size, p.stat().st_mtime_ns)
                  for folder in ("intuition", "stages", "tools") for p in (project / folder).rglob("*.py"))


@atexit.register
def stop_workers() -> None:
    while _workers:
        _workers.popitem()[1].stop()
