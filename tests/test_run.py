"""tools.run on a toy DVC project: the real `dvc` CLI, real Dask clusters, stages that sleep.

The toy pipeline: a -> {b, c} -> d, and e on its own. Each stage writes its output (its name and
its inputs: deterministic) and, outside DVC's view, times/<stage> with its start and end times.
TOY_SLEEP (seconds, in the environment) sets how long they sleep; a file fail-<stage> makes that
stage fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tools import run as tools_run

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

STAGE_PY = """\
import os, sys, time
name, out, *inputs = sys.argv[1:]
start = time.time()
os.makedirs("times", exist_ok=True)
try:
    os.makedirs("sleeping", exist_ok=True)
    open(f"sleeping/{name}", "w").close()  # from here on, Ctrl-C is seen below
    time.sleep(float(os.environ.get("TOY_SLEEP", "1.5")))
except KeyboardInterrupt:  # Ctrl-C, as a real stage would see it
    open(f"times/{name}.interrupted", "w").close()
    raise
if os.path.exists(f"fail-{name}"):
    sys.exit(f"stage {name} was told to fail")
text = name + "\\n" + "".join(open(path).read() for path in inputs)
open(out, "w").write(text)
open(f"times/{name}", "w").write(f"{start} {time.time()}")
"""


def stage(name: str, *inputs: str) -> dict:
    return {"cmd": f"python stage.py {name} {name}.txt {' '.join(inputs)}".strip(),
            "deps": ["stage.py", *inputs], "outs": [f"{name}.txt"]}


DVC_YAML = {"stages": {"a": stage("a"), "b": stage("b", "a.txt"), "c": stage("c", "a.txt"),
                       "d": stage("d", "b.txt", "c.txt"), "e": stage("e")}}


def env(**extra: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DVC_")}
    environ["PATH"] = f"{BIN}{os.pathsep}{environ.get('PATH', '')}"
    environ["PYTHONPATH"] = str(ROOT)  # `python -m tools.run` from the toy project's root
    environ["DVC_NO_ANALYTICS"] = "1"
    return environ | extra


def sh(project: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=project, env=env(**extra), capture_output=True, text=True,
                          timeout=120)


def toy_project(path: Path) -> Path:
    path.mkdir()
    (path / "stage.py").write_text(STAGE_PY)
    (path / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML))
    for args in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"],
                 ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "toy"]):
        assert sh(path, *args).returncode == 0, args
    return path


def tools_run_cli(project: Path, *args: str, **extra: str) -> tuple:
    """`python -m tools.run` in the project: its CompletedProcess and wall time."""
    start = time.monotonic()
    result = sh(project, sys.executable, "-m", "tools.run", "--workers", "3", *args, **extra)
    return result, time.monotonic() - start


def times(project: Path) -> dict[str, tuple[float, float]]:
    return {p.name: tuple(map(float, p.read_text().split())) for p in (project / "times").iterdir()}


def test_parallel_run_equals_plain_repro_and_overlaps(tmp_path):
    twin = toy_project(tmp_path / "twin")
    start = time.monotonic()
    assert sh(twin, "dvc", "repro").returncode == 0
    sequential = time.monotonic() - start

    project = toy_project(tmp_path / "project")
    result, parallel = tools_run_cli(project)
    assert result.returncode == 0, result.stdout + result.stderr
    print(f"plain dvc repro {sequential:.1f} s, tools.run {parallel:.1f} s")
    lines = result.stdout.splitlines()
    for name in "abcde":
        assert f"start {name}" in lines and f"] done {name} (" in result.stdout
    assert "[5/5] done" in result.stdout and lines[-1].startswith("total ")

    t = times(project)
    assert t["b"][0] < t["c"][1] and t["c"][0] < t["b"][1], "b and c did not overlap"
    assert t["e"][0] < max(t["a"][1], t["b"][1], t["c"][1]), "e waited for the others"
    assert min(t["b"][0], t["c"][0]) >= t["a"][1], "b or c started before a ended"
    assert t["d"][0] >= max(t["b"][1], t["c"][1]), "d started before b and c ended"

    for name in "abcde":
        assert (project / f"{name}.txt").read_text() == (twin / f"{name}.txt").read_text()
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert lock == yaml.safe_load((twin / "dvc.lock").read_text())  # md5s of every dep and out
    assert "up to date" in sh(project, "dvc", "status").stdout

    again, seconds = tools_run_cli(project)
    assert again.returncode == 0 and "nothing to run" in again.stdout, again.stdout + again.stderr
    assert "start" not in again.stdout and seconds <= 3, (seconds, again.stdout)


ENV_STAGE = {"stages": {"env": {
    "cmd": "python -c \"import os; open('env.txt', 'w').write(os.environ.get('MALLOC_TRIM_THRESHOLD_', 'unset'))\"",
    "outs": ["env.txt"]}}}


@pytest.mark.parametrize("args, users_value", [((), None), (("--process-per-stage",), None), ((), "262144")],
                         ids=["stage worker", "a dvc process per stage", "the user's own value"])
def test_a_stage_does_not_inherit_the_dask_nannys_malloc_setting(tmp_path, args, users_value):
    """Dask's nanny starts its workers with MALLOC_TRIM_THRESHOLD_=65536, which made training 1.6x
    slower (tools/run.py: NOT_INHERITED); a stage sees the value its user set, or none."""
    project = toy_project(tmp_path / "project")
    (project / "dvc.yaml").write_text(yaml.safe_dump(ENV_STAGE))
    environ = {k: v for k, v in env().items() if k != "MALLOC_TRIM_THRESHOLD_"}
    if users_value:
        environ["MALLOC_TRIM_THRESHOLD_"] = users_value
    result = subprocess.run([sys.executable, "-m", "tools.run", *args], cwd=project, env=environ,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (project / "env.txt").read_text() == (users_value or "unset")


def test_plan_is_stale_stages_and_their_downstream(tmp_path, monkeypatch):
    project = toy_project(tmp_path / "project")
    assert sh(project, "dvc", "repro", TOY_SLEEP="0").returncode == 0
    changed_c = stage("c", "a.txt") | {"cmd": stage("c", "a.txt")["cmd"] + "  "}  # c is stale
    stages = DVC_YAML["stages"] | {"c": changed_c}
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    monkeypatch.chdir(project)
    assert tools_run.plan(project) == {"c": [], "d": ["c"]}  # not a, b, e; d waits for c only


def test_a_param_path_is_found_as_dpath_finds_it():
    """tools.run's planner looks params up with plain_get, not dpath's glob search: the same
    answers for every path of this project's params.yaml, a missing one, a default and a glob."""
    import dpath

    tree = yaml.safe_load((ROOT / "params.yaml").read_text())

    def paths(node, prefix=""):
        for key, value in node.items():
            yield prefix + key
            if isinstance(value, dict):
                yield from paths(value, prefix + key + ".")

    every = list(paths(tree))
    assert len(every) > 300
    for path in every:
        assert tools_run.plain_get(tree, path, ".", dpath.get) == dpath.get(tree, path, separator="."), path
    for missing in ("experiments.nope", "seed.deeper", "nope"):
        with pytest.raises(KeyError):
            dpath.get(tree, missing, separator=".")
        with pytest.raises(KeyError):
            tools_run.plain_get(tree, missing, ".", dpath.get)
        assert tools_run.plain_get(tree, missing, ".", dpath.get, default=7) == 7
    with pytest.raises(ValueError):  # a glob matching several leaves: dpath's own error
        tools_run.plain_get(tree, "experiments.*.epochs", ".", dpath.get)


def test_plan_sees_a_changed_param_and_only_its_stage(tmp_path, monkeypatch):
    project = toy_project(tmp_path / "project")
    (project / "params.yaml").write_text(yaml.safe_dump({"toy": {"e": {"rate": 1}, "other": 2}}))
    stages = DVC_YAML["stages"] | {"e": stage("e") | {"params": ["toy.e"]}}
    (project / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    assert sh(project, "dvc", "repro", TOY_SLEEP="0").returncode == 0
    monkeypatch.chdir(project)
    (project / "params.yaml").write_text(yaml.safe_dump({"toy": {"e": {"rate": 1}, "other": 3}}))
    assert tools_run.plan(project) == {}
    (project / "params.yaml").write_text(yaml.safe_dump({"toy": {"e": {"rate": 2}, "other": 3}}))
    assert tools_run.plan(project) == {"e": []}


@contextlib.contextmanager
def dask_cluster(directory: Path, environ: dict[str, str], workers: int = 2):
    """A `dask scheduler` and `workers` separate `dask worker` processes (one thread each, each
    under its default nanny), as on shared machines, started from this venv's `dask` with
    `environ`; yields the scheduler's address once every worker has joined. Each process is the
    leader of its own group, stopped at the end."""
    from distributed import Client

    info = directory / "scheduler.json"
    procs = []

    def start(*args: str) -> None:
        procs.append(subprocess.Popen([str(BIN / "dask"), *args, "--scheduler-file", str(info),
                                       "--no-dashboard"], cwd=directory, env=environ,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True))

    start("scheduler", "--host", "127.0.0.1", "--port", "0")
    try:
        deadline = time.monotonic() + 30
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        for _ in range(workers):
            start("worker", "--nthreads", "1")
        address = json.loads(info.read_text())["address"]
        with Client(address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=60)
        yield address
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


@pytest.fixture
def scheduler(tmp_path):
    """An existing Dask scheduler with two single-threaded `dask worker` processes, as on shared
    machines; the workers cannot import this project's code (no PYTHONPATH): tools.run must not
    need it."""
    with dask_cluster(tmp_path, {k: v for k, v in env().items() if k != "PYTHONPATH"}) as address:
        yield address


def test_failed_stage_skips_dependents_and_others_finish_on_a_scheduler(tmp_path, scheduler):
    project = toy_project(tmp_path / "project")
    (project / "fail-b").touch()
    result, _ = tools_run_cli(project, "--scheduler", scheduler)
    assert result.returncode == 1
    assert sorted(times(project)) == ["a", "c", "e"]  # d never ran
    assert not (project / "d.txt").exists() and "skipped d" in result.stdout
    log = project / ".dvc/tmp/run-logs/b.log"
    assert "stage b was told to fail" in log.read_text()
    assert "stage b was told to fail" in result.stderr  # the log's tail is echoed
    assert result.stderr.strip().splitlines()[-1] == "FAILED: b (log: .dvc/tmp/run-logs/b.log)"
    status = sh(project, "dvc", "status").stdout
    assert "a:" not in status and "c:" not in status and "e:" not in status


def stage_processes(project: Path) -> list[psutil.Process]:
    """Every live process working in the project: dvc, the stages' commands, Dask's workers."""
    return [proc for proc in psutil.process_iter(["cwd", "status", "cmdline"])
            if (proc.info["cwd"] or "").startswith(str(project))
            and proc.info["status"] != psutil.STATUS_ZOMBIE]


def sleeping(project: Path) -> list[psutil.Process]:
    """The stages' own commands (`python stage.py ...`) running now."""
    return [p for p in stage_processes(project) if "stage.py" in (p.info["cmdline"] or [])[1:2]]


def test_ctrl_c_stops_every_stage_and_exits_130(tmp_path):
    project = toy_project(tmp_path / "project")
    proc = subprocess.Popen([sys.executable, "-m", "tools.run", "--workers", "2"], cwd=project,
                            env=env(TOY_SLEEP="60"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # its own group, as a terminal's job
    try:
        # Both in their sleep (a marker each writes inside its try), not only started: a Ctrl-C
        # during the interpreter's start-up would come before the handler (seen once in CI).
        deadline = time.monotonic() + 30
        while len(list((project / "sleeping").glob("*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(commands := sleeping(project)) == 2, commands  # a's and e's, sleeping

        start = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group gets SIGINT
        # communicate(), not wait(): it drains the pipes, so a chatty shutdown cannot block on them.
        _, stderr = proc.communicate(timeout=20)
        assert proc.returncode == 130, stderr
        assert time.monotonic() - start < 10, stderr
        assert "interrupted: stopping a, e" in stderr
        assert sorted(p.name for p in (project / "times").iterdir()) == [  # they saw Ctrl-C
            "a.interrupted", "e.interrupted"]
        deadline = time.monotonic() + 5
        while stage_processes(project) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert stage_processes(project) == []
    finally:  # if the test failed: leave nothing running
        for leftover in [proc, *stage_processes(project)]:
            with contextlib.suppress(psutil.NoSuchProcess):
                leftover.kill()
        for pipe in (proc.stdout, proc.stderr):
            if not pipe.closed:
                pipe.close()


@pytest.mark.parametrize("message", [  # DVC's two lock errors, as it prints them
    "ERROR: Unable to acquire lock. Most likely another DVC process is running or was terminated",
    "ERROR: failed to reproduce 'b': '/p/a.txt' is busy, it is being blocked by:\n  (PID 9): dvc"])
def test_busy_lock_is_retried_other_failures_are_not(tmp_path, monkeypatch, message):
    """A fake `dvc` that fails with DVC's lock error twice, then succeeds; then one that fails
    otherwise (its command printing "is busy" is not DVC's lock)."""
    fake = tmp_path / "bin" / "dvc"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\nn=$(cat calls 2>/dev/null || echo 0); echo $((n+1)) > calls\n"
                    f"[ $n -ge 2 ] && exit 0\necho \"{message}\"; exit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(tools_run, "BACKOFF", 0.01)
    assert tools_run.run_stage("a", str(tmp_path), {})["status"] == "done"
    assert (tmp_path / "calls").read_text().strip() == "3"

    fake.write_text("#!/bin/sh\necho 'the device is busy'; echo 'ERROR: failed to reproduce'\n"
                    "echo x >> calls; exit 1\n")
    (tmp_path / "calls").unlink()
    assert tools_run.run_stage("a", str(tmp_path), {})["status"] == "failed"
    assert (tmp_path / "calls").read_text() == "x\n"


def test_checking_the_projects_inputs_loads_neither_pandas_nor_tensorflow():
    """Every `make run` checks params.yaml and findings.yaml first, also one with nothing to run:
    pandas alone cost 0.2 s of that no-op's ~2 s budget (measured)."""
    check = ("import sys; from pathlib import Path; from tools.run import inputs_are_valid; "
             "assert inputs_are_valid(Path('.')); "
             "print(sorted({'pandas', 'tensorflow', 'keras', 'matplotlib'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_the_projects_bad_inputs_stop_it_before_any_stage(tmp_path):
    """On this project, params.yaml and findings.yaml are checked before anything runs: a
    finding's min_seeds above `seeds` would otherwise only fail the report, after all training."""
    sys.path.insert(0, str(ROOT / "tests"))
    from sandbox import make_project, run

    project = make_project(tmp_path, epochs=1, experiments=["linear_perceptron"], seeds=2)
    findings = yaml.safe_load((project / "findings.yaml").read_text())
    findings["findings"][0]["min_seeds"] = 3
    (project / "findings.yaml").write_text(yaml.safe_dump(findings, sort_keys=False))
    result = run(project, "python", "-m", "tools.run", check=False)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: findings.yaml: finding perceptron_separates_blobs: min_seeds: 3 is more than the 2 seeds "
        "(params `seeds`); use 1 to 2, or leave it out for all seeds"]
    assert not (project / "data").exists() and not (project / ".dvc" / "tmp" / "run-logs").exists()


GUARDED_PARENT = """\
import subprocess, sys, time
from tools import run
child = subprocess.Popen([sys.executable, "-c", sys.argv[1], sys.argv[2]], start_new_session=True)
guard = run.guard(child.pid)
print(child.pid, guard.pid, flush=True)
child.wait()
guard.wait()
print("guard ended", flush=True)
time.sleep(60)
"""
GUARDED_CHILD = """\
import signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as a stage worker does: it may inherit SIGINT ignored
try:  # "started" inside: a Ctrl-C that comes once it exists is always caught
    open("started", "w").close()
    time.sleep(float(sys.argv[1]))
except KeyboardInterrupt:
    open("interrupted", "w").close()
"""


@pytest.mark.parametrize("case", ["parent killed", "child ends"])
def test_a_stage_group_does_not_outlive_its_dask_worker(tmp_path, case):
    """tools.run.guard: a stage worker (or `dvc`) is its own process group under a Dask worker; when
    that worker is killed (SIGKILL: no clean-up of its own), the group is stopped as Ctrl-C would
    (SIGINT) instead of running on, orphaned. A group that ends by itself ends its guard."""
    sleep = "60" if case == "parent killed" else "1"
    parent = subprocess.Popen([sys.executable, "-c", GUARDED_PARENT, GUARDED_CHILD, sleep], cwd=tmp_path,
                              env=env(), stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        child, guard = map(int, parent.stdout.readline().split())
        deadline = time.monotonic() + 20
        while not (tmp_path / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if case == "child ends":
            assert parent.stdout.readline().strip() == "guard ended"
            assert not (tmp_path / "interrupted").exists()
            return
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        start = time.monotonic()
        while psutil.pid_exists(child) and time.monotonic() - start < 10:
            with contextlib.suppress(psutil.NoSuchProcess):  # reaped by init once it exits
                if psutil.Process(child).status() == psutil.STATUS_ZOMBIE:
                    break
            time.sleep(0.1)
        print(f"the orphaned group stopped {time.monotonic() - start:.1f} s after its parent was killed")
        assert (tmp_path / "interrupted").exists()  # it saw Ctrl-C, as a stage would
        deadline = time.monotonic() + 5
        while psutil.pid_exists(guard) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not psutil.pid_exists(guard) or psutil.Process(guard).status() == psutil.STATUS_ZOMBIE
    finally:
        for pid in (parent.pid,):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        parent.stdout.close()
        parent.wait(10)
