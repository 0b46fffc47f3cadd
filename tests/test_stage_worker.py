"""tools.stage_worker: `make run`'s persistent stage workers, on a toy DVC project (real `dvc`, git)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path

import pytest
import yaml

from tools import stage_worker

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

TOY_STAGE = """\
import os, sys
name = sys.argv[1]
if name == "fails":
    sys.exit("the toy stage was told to fail")
with open(f"{name}.txt", "w") as out:  # what DVC and the caller told it
    out.write(f"{os.environ['DVC_STAGE']} {os.environ['TOY']}\\n")
with open(f"pid-{name}", "w") as out:  # the process it ran in: not an output
    out.write(str(os.getpid()))
print(f"toy stage {name} ran")
"""


def toy_project(path: Path) -> Path:
    (path / "stages").mkdir(parents=True)
    (path / "stages" / "__init__.py").write_text("")
    (path / "stages" / "toy.py").write_text(TOY_STAGE)
    stages = {name: {"cmd": f"python -m stages.toy {name}", "deps": ["stages/toy.py"], "outs": [f"{name}.txt"]}
              for name in ("a", "b", "fails")}
    stages["shell"] = {"cmd": "echo shell > shell.txt", "outs": ["shell.txt"]}  # not a `python -m stages.`
    (path / "dvc.yaml").write_text(yaml.safe_dump({"stages": stages}))
    environ = env()
    for args in (["git", "init", "-q"], ["dvc", "init", "-q"], ["git", "add", "-A"],
                 ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "toy"]):
        subprocess.run(args, cwd=path, env=environ, check=True, capture_output=True)
    return path


def env() -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DVC_")}
    return environ | {"PATH": f"{BIN}{os.pathsep}{environ['PATH']}", "DVC_NO_ANALYTICS": "1", "TOY": "told"}


def test_stages_run_in_one_process_and_dvc_records_them_as_dvc_repro_does(tmp_path, monkeypatch):
    project = toy_project(tmp_path / "project")
    twin = toy_project(tmp_path / "twin")
    for name in ("a", "b", "shell"):
        subprocess.run(["dvc", "repro", "--single-item", name], cwd=twin, env=env(), check=True, capture_output=True)

    monkeypatch.setattr(os, "environ", env())
    worker = stage_worker.StageWorker(str(project), {})
    try:
        logs = {name: tmp_path / f"{name}.log" for name in ("a", "b", "shell", "fails")}
        codes = {name: worker.run(name, log, stopped=lambda: False, poll=0.1) for name, log in logs.items()}
    finally:
        worker.stop(interrupt=False)
    assert worker.proc.returncode == 0  # it ended when its stdin did
    assert codes == {"a": 0, "b": 0, "shell": 0, "fails": 255}  # 255: DVC's exit code of a failed stage

    pids = {(project / f"pid-{name}").read_text() for name in ("a", "b")}
    assert pids == {str(worker.proc.pid)}  # both in the worker itself
    assert (project / "a.txt").read_text() == "a told\n"  # DVC's and the caller's environment
    assert "toy stage a ran" in logs["a"].read_text()
    assert "the toy stage was told to fail" in logs["fails"].read_text()
    assert "failed to reproduce 'fails'" in logs["fails"].read_text()

    lock, twin_lock = (yaml.safe_load((p / "dvc.lock").read_text()) for p in (project, twin))
    assert lock == twin_lock  # every dep's and out's hash, as `dvc repro` wrote them
    status = subprocess.run(["dvc", "status", "a", "b", "shell"], cwd=project, env=env(), capture_output=True, text=True)
    assert "up to date" in status.stdout, status.stdout


def test_a_stage_leaves_the_worker_as_it_found_it(tmp_path, monkeypatch):
    package = tmp_path / "toy_probe"  # not `stages`: the suite has imported the project's own
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "probe.py").write_text(
        "import os, sys\nos.environ['LEAK'] = '1'\nos.chdir('/')\n"
        "if sys.argv[1:] == ['boom']:\n    raise ValueError('boom')\n"
        "sys.exit(int(sys.argv[1]))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cwd, argv = os.getcwd(), list(sys.argv)
    assert stage_worker.run_in_process("python -m toy_probe.probe 0", str(tmp_path), {"A": "b"}) == 0
    assert stage_worker.run_in_process("python -m toy_probe.probe 3", str(tmp_path), {}) == 3
    assert stage_worker.run_in_process("python -m toy_probe.probe boom", str(tmp_path), {}) == 1
    assert (os.getcwd(), sys.argv, "LEAK" in os.environ) == (cwd, argv, False)


def test_the_lock_file_is_written_byte_for_byte_as_dvc_writes_it(tmp_path):
    """DVC's update of dvc.lock (round-trip parse, change, dump) against the worker's, on this
    project's committed lock file (every stage kind, params of every type), changed by a value
    that needs quoting; then twice more in the same worker, as the stages after it change it (its
    other stages' blocks as it dumped them the first time), once with a stage's data appearing
    twice (which ruamel writes with a YAML anchor)."""
    from dvc.fs import LocalFileSystem
    from dvc.utils.serialize import modify_yaml

    quoted = "0" * 32 + "\u00e9 'single' \"double\": x"
    stage_worker._blocks.clear()
    stage_worker.remember_lock_blocks(str(ROOT / "dvc.lock"))  # what an idle stage worker does first
    assert len(stage_worker._blocks) == len(yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"])

    def change_report(data):
        data["stages"]["report"]["outs"][0]["md5"] = quoted

    def change_a_train(data):
        data["stages"]["train@spiral_hard_relu_4x100"]["params"]["params.yaml"]["seeds"] = 7

    def share_an_entry(data):
        data["stages"]["train@bands_relu_2x10"]["outs"] = data["stages"]["train@linear_perceptron"]["outs"]

    text = (ROOT / "dvc.lock").read_text()
    for change in (change_report, change_a_train, share_an_entry):
        written = {}
        for name, modify in (("dvc", modify_yaml), ("worker", stage_worker.modify_lockfile)):
            path = tmp_path / change.__name__ / name / "dvc.lock"
            path.parent.mkdir(parents=True)
            path.write_text(text)
            with modify(path, fs=LocalFileSystem()) as data:  # what DVC passes: its repo's file system
                change(data)
            written[name] = path.read_text()
        assert written["worker"] == written["dvc"] != text, change.__name__
        assert sorted(p.name for p in path.parent.parent.rglob("*")) == ["dvc", "dvc.lock", "dvc.lock", "worker"]
        text = written["dvc"]
        if change is change_a_train:  # one block dumped again, the others as the first time
            assert len(set(stage_worker._blocks) - blocks) == 1
        blocks = set(stage_worker._blocks)
    assert "&id001" in text  # the shared entry: one whole dump, as DVC's
    assert yaml.safe_load(text)["stages"]["report"]["outs"][0]["md5"] == quoted


def test_the_lock_file_is_read_as_dvc_reads_it():
    """The worker's parse of a lock file, stage block by stage block, against DVC's parse of the
    whole text: this project's lock file; again after a stage changed (its other blocks from the
    first parse, as fresh objects); and, parsed whole, texts not laid out as DVC writes them."""
    from dvc.utils.serialize._yaml import parse_yaml

    text = (ROOT / "dvc.lock").read_text()
    first = stage_worker.parse_lockfile(text, "dvc.lock")
    assert first == parse_yaml(text, "dvc.lock") and len(stage_worker._parsed) == len(first["stages"])
    first["stages"]["report"]["outs"].clear()  # a caller's change does not reach the next read
    changed = text.replace("  report:\n", "  report:\n    frozen: true\n", 1)
    again = stage_worker.parse_lockfile(changed, "dvc.lock")
    assert again == parse_yaml(changed, "dvc.lock") and again["stages"]["report"]["frozen"] is True
    assert again["stages"]["report"]["outs"]
    odd = {"anchors": "schema: '2.0'\nstages:\n  a:\n    deps: &id001\n    - x\n  b:\n    deps: *id001\n",
           "a date": "schema: '2.0'\nstages:\n  a:\n    params:\n      p.yaml:\n        d: 2026-12-04\n",
           "no stages": "schema: '2.0'\nstages: {}\n", "another layout": "stages:\n  a:\n    cmd: x\n"}
    for name, odd_text in odd.items():
        assert stage_worker.parse_lockfile(odd_text, "dvc.lock") == parse_yaml(odd_text, "dvc.lock"), name


def test_a_lock_file_write_that_fails_leaves_the_old_one_whole(tmp_path, monkeypatch):
    """The worker writes dvc.lock to a temporary file that replaces it: a failure (here the
    dumper's; a kill alike) in the middle leaves the previous dvc.lock as it was."""
    from dvc.fs import LocalFileSystem
    from dvc.utils.serialize import _yaml

    path = tmp_path / "dvc.lock"
    path.write_text((ROOT / "dvc.lock").read_text())
    before = path.read_bytes()

    def half_then_fail(data, stream):
        stream.write("schema: '2.0'\nstages:\n")
        raise OSError("disk full")

    monkeypatch.setattr(_yaml, "_dump", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        with stage_worker.modify_lockfile(path, fs=LocalFileSystem()) as data:
            data["stages"]["report"]["outs"][0]["md5"] = "0" * 32
    assert path.read_bytes() == before


def test_the_warm_up_imports_what_the_stages_import_and_stops_for_a_stage(tmp_path, monkeypatch):
    names = stage_worker.stage_imports(ROOT / "stages")
    # evaluate@'s libraries, as its script names them; never TensorFlow (train@ imports it inside main)
    assert {"pandas", "matplotlib.figure", "intuition.tracking", "intuition.figures"} <= set(names)
    assert "__future__" not in names and not any(n.startswith(("tensorflow", "keras")) for n in names)
    monkeypatch.chdir(ROOT)
    warm = stage_worker.warm_imports()  # the stages' imports, then what MLflow imports on first use
    assert warm[:len(names)] == names and "mlflow.store.tracking.sqlalchemy_store" in warm
    assert not any(n.startswith(("tensorflow", "keras")) for n in warm)

    (tmp_path / "warm_a.py").write_text("")
    (tmp_path / "warm_b.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    read, write = os.pipe()
    with os.fdopen(read) as stdin, os.fdopen(write, "w") as requests:
        monkeypatch.setattr(sys, "stdin", stdin)
        steps = [partial(stage_worker.import_if_module, name) for name in ("warm_a", "warm_a.not_a_module")]
        stage_worker.warm_up(steps)  # nothing waiting: both tried
        assert "warm_a" in sys.modules and steps == []
        requests.write("{}\n")
        requests.flush()
        steps = [partial(stage_worker.import_if_module, "warm_b")]
        stage_worker.warm_up(steps)  # a stage is waiting: it is not kept waiting for imports
        assert "warm_b" not in sys.modules and len(steps) == 1
        stdin.readline()
        # After a stage: a request that comes within `idle` (the next task of a busy run) finds
        # no step under way; a worker left idle for `idle` warms up.
        threading.Timer(0.05, lambda: (requests.write("{}\n"), requests.flush())).start()
        started = time.monotonic()
        stage_worker.warm_up(steps, idle=5.0)
        assert time.monotonic() - started < 4 and "warm_b" not in sys.modules and len(steps) == 1
        stdin.readline()
        stage_worker.warm_up(steps, idle=0.05)
        assert "warm_b" in sys.modules and steps == []
    sys.modules.pop("warm_b")
    sys.modules.pop("warm_a")
