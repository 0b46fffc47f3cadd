"""A persistent stage worker: `dvc repro --single-item <stage>`, again and again, in one process.

`make run` starts one per Dask worker (`python -c <this file> --stage-worker`, in the project root,
so a remote Dask worker needs no project code) and sends it the stages to run, one JSON line each
on its stdin: `{"stage": "train@x", "log": "<path>"}`; it answers each with one JSON line,
`{"returncode": 0}`. As Bazel's persistent workers do for compilers: the interpreter, DVC,
TensorFlow, MLflow and matplotlib are imported once per worker instead of once per stage
(measured: 2.4-9.5 s of imports and up to 4.4 s of DVC start-up per stage in a process of its own).

DVC still does everything it does for `dvc repro --single-item`: decides whether the stage changed,
removes its outputs, runs its command, hashes, caches and writes dvc.lock, under its own locks. Only
the command itself runs differently: a `python -m stages.<name> <key>` command runs in this
process, as `python -m` would run it, with DVC's environment, working directory and argv, all
restored afterwards; any other command runs in a subprocess as DVC runs it. This project's stages
are written for that: they keep no state between runs in module globals, set no matplotlib rc
parameters, and the Keras session is cleared after each. Three hooks on private DVC 3.67
functions, all tested in tests/test_stage_worker.py: the command runner `dvc.stage.run._run`;
for lock files, `dvc.dvcfile.modify_yaml` (`modify_lockfile`) and the parser that
`dvc.utils.strictyaml` loads them with (`parse_lockfile`). `python -m tools.run
--process-per-stage` runs without them.

While no stage is waiting for it, a stage worker imports what the stage scripts import and reads
dvc.lock (`warm_up`): `make run` starts one on every Dask worker as the run starts, and the one
whose core would idle (a knob's second core while the first trains; the first one while the
second evaluates) has the next stage's libraries loaded. After a stage it first waits for stdin
to stay quiet for `IDLE` seconds, so that a busy run's next task does not wait for an import.

Ctrl-C (SIGINT to this process's group) stops the stage as it stops a `dvc repro`, and the worker
then exits. The end of stdin ends the worker after the stage it is running.
"""

from __future__ import annotations

import ast
import functools
import gc
import importlib
import io
import json
import os
import re
import runpy
import select
import shlex
import signal
import subprocess
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path

IDLE_EXIT = 10  # seconds an idle stage worker may take to exit at the end of a run
MARK = "--stage-worker"  # its argument: how `tools.run` finds the stage workers to stop on Ctrl-C
IN_PROCESS = re.compile(r"^python -m (stages\.\w+)(?: |$)")  # this project's stage commands


def run_in_process(cmd: str, cwd: str, env: dict[str, str]) -> int:
    """`cmd` (`python -m stages.<name> <args>`) as `python -m` runs it, in this process: its exit code."""
    module, *args = shlex.split(cmd)[2:]
    saved_env, saved_cwd, saved_argv = dict(os.environ), os.getcwd(), sys.argv
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return exit_.code or 0
        print(exit_.code, file=sys.stderr)  # as the interpreter prints sys.exit("message")
        return 1
    except KeyboardInterrupt:
        raise
    except BaseException:  # noqa: BLE001 - what the interpreter would print before exiting 1
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        forget_stage_state()


def forget_stage_state() -> None:
    """What one stage leaves behind in the libraries' global state, cleared for the next one."""
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session()  # models, layer names, the graph
    gc.collect()


def hook_dvc() -> None:
    """Route DVC's command runner through `run_in_process` for this project's stage commands."""
    from dvc.stage import run as dvc_run
    from dvc.stage.exceptions import StageCmdFailedError

    subprocess_run = dvc_run._run

    def run(executable, cmd, **kwargs):
        if not IN_PROCESS.match(cmd.strip()):
            return subprocess_run(executable, cmd, **kwargs)
        code = run_in_process(cmd.strip(), kwargs["cwd"], kwargs["env"])
        if code != 0:
            raise StageCmdFailedError(cmd, code)
        return None

    dvc_run._run = run
    fast_lockfile_updates()


def fast_lockfile_updates() -> None:
    """DVC reads dvc.lock twice per stage (to load the stage, then to update it) and rewrites it,
    each time all of it, with ruamel (for this project's 255 KB: 0.2 s a parse with its C parser,
    0.55 s a dump with its pure-Python emitter, measured), under the repo lock that every other
    worker then waits for. `parse_lockfile` and `modify_lockfile` instead. Other YAML files DVC
    reads or modifies (dvc.yaml, params.yaml) keep DVC's way."""
    from dvc import dvcfile
    from dvc.utils import strictyaml

    round_trip, parse = dvcfile.modify_yaml, strictyaml.parse_yaml

    @contextmanager
    def modify_yaml(path, fs=None):
        with (modify_lockfile if os.fspath(path).endswith(".lock") else round_trip)(path, fs=fs) as data:
            yield data

    def parse_yaml(text, path, typ="safe"):
        if typ == "safe" and os.fspath(path).endswith(".lock"):
            return parse_lockfile(text, path)
        return parse(text, path, typ)

    dvcfile.modify_yaml, strictyaml.parse_yaml = modify_yaml, parse_yaml


LOCK_HEADER = "schema: '2.0'\nstages:\n"  # how DVC's lock files begin; then a block per stage
BLOCK_START = re.compile(r"^(?=  \S)", re.MULTILINE)  # a stage's name, indented by two spaces
ANCHOR = re.compile(r"[&*]id\d")  # a YAML anchor or alias, as ruamel names them
UNINDENTED = re.compile(r"^(?!  |$)", re.MULTILINE)  # a line outside every stage's block
# Each stage's block of a lock file as text -> its data as `parse_yaml` returned it, marshalled (a
# fresh copy on every read: 1.0 ms for the whole lock's data, copy.deepcopy 4.5 ms, measured):
# this process's earlier parses. Kept to the blocks of the last lock file read.
_parsed: dict[str, bytes] = {}


def parse_lockfile(text: str, path) -> dict:
    """DVC's `parse_yaml(text, path)` of a lock file, put together from each stage's block, parsed
    only if this process has not parsed the same block before (a stage worker reads dvc.lock twice
    per stage, and between two stages only a stage or two changed). A block that is not plain
    data (an anchor, a date) or a file not laid out as DVC writes it: one whole parse."""
    import marshal

    from dvc.utils.serialize._yaml import parse_yaml

    body = text[len(LOCK_HEADER):]
    if (not text.startswith(LOCK_HEADER) or not BLOCK_START.match(body) or ANCHOR.search(text)
            or UNINDENTED.search(body)):
        return parse_yaml(text, path)
    stages, parsed = {}, {}
    try:
        for block in BLOCK_START.split(body)[1:]:
            parsed[block] = _parsed.get(block) or marshal.dumps(parse_yaml("stages:\n" + block, path)["stages"])
            stages.update(marshal.loads(parsed[block]))
    except ValueError:  # unmarshallable: not plain data
        return parse_yaml(text, path)
    _parsed.clear()
    _parsed.update(parsed)
    return {"schema": "2.0", "stages": stages}


@contextmanager
def modify_lockfile(path, fs=None):
    """DVC's `modify_yaml` for a lock file, ~1.3 s faster: a lock file holds no comments and DVC
    wrote it from plain data, so its C-parsed data (`parse_lockfile`) dumped by DVC's own dumper,
    one stage at a time (`lock_text`), gives the same bytes as DVC's round trip
    (tests/test_stage_worker.py compares the two). Written to a temporary file that replaces the
    lock file: a worker killed mid-write (DVC writes in place) leaves the previous dvc.lock whole."""
    from dvc.utils.serialize._common import _load_data, _modify_data
    from dvc.utils.serialize._yaml import _dump, parse_yaml

    if fs is not None and fs.protocol != "local":  # not a file on this machine's disk: DVC's way
        with _modify_data(path, parse_yaml, _dump, fs=fs) as data:
            yield data
        return
    data = _load_data(path, parser=parse_lockfile) if os.path.exists(path) else {}
    yield data
    text = lock_text(data, _dump)
    temporary = f"{path}.{os.getpid()}.tmp"
    try:
        with open(temporary, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


# Each stage's block of dvc.lock as DVC's dumper wrote it, by the stage's name and its data: this
# process's earlier dumps (a stage worker runs one stage after another; only the stage just run
# changed). Kept to the blocks of the last lock file written.
_blocks: dict[tuple[str, str], str] = {}


def lock_text(data: dict, dump) -> str:
    """What `dump(data, stream)` (DVC's YAML dumper) writes for lock-file data, put together from
    each stage's block, dumped only if this process has not dumped the same data before. ruamel's
    pure-Python emitter takes 0.55 s for this project's 255 KB dvc.lock, measured, and DVC rewrote
    it all after every stage, under the repo lock that the other worker waits for. A block
    depends only on its own stage's data: block style, at a fixed indent, and no YAML anchors,
    which ruamel writes only for an object that appears twice (then: one whole dump)."""
    stages = data.get("stages")
    if list(data) != ["schema", "stages"] or not isinstance(stages, dict) or not stages or shared(stages):
        return dumped(data, dump)
    keys = [(name, repr(entry)) for name, entry in stages.items()]
    blocks = {key: _blocks.get(key) or dumped({"stages": {key[0]: entry}}, dump).removeprefix("stages:\n")
              for key, entry in zip(keys, stages.values())}
    _blocks.clear()
    _blocks.update(blocks)
    return dumped({"schema": data["schema"]}, dump) + "stages:\n" + "".join(blocks.values())


def dumped(data, dump) -> str:
    stream = io.StringIO()
    dump(data, stream)
    return stream.getvalue()


def shared(tree) -> bool:
    """Whether a dict or list appears twice in `tree`."""
    seen, todo = set(), [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, (dict, list)):
            if id(node) in seen:
                return True
            seen.add(id(node))
            todo.extend(node.values() if isinstance(node, dict) else node)
    return False


@contextmanager
def output_to(log: Path, errors: Path | None = None):
    """File descriptors 1 and 2 (Python's prints, C++ libraries' lines, subprocesses) appended to
    `log`, or 2 to `errors` if given."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with log.open("a") as out, (errors or log).open("a") as err:
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def repro(stage: str, log: Path) -> int:
    from dvc.cli import main as dvc

    with output_to(log):
        # --wait-for-lock: the other workers' DVC holds the repo lock for about a second per stage
        # (reading and rewriting dvc.lock); DVC's own 3 s of retries were seen to run out.
        return dvc(["--wait-for-lock", "repro", "--single-item", stage])


def stage_imports(folder: Path = Path("stages")) -> list[str]:
    """The modules this project's stage commands import at their top, in the order they name
    them: `x` for `import x`; `x` and `x.y` for `from x import y` (`x.y` may be a function, which
    `warm_up` skips)."""
    names = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != "__future__":
                names += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return list(dict.fromkeys(names))


# What stages import on first use rather than at their top: MLflow's SQL store, which MLflow
# imports for a sqlite:/// tracking URI (`make run`'s default) when evaluate@ or sweep@ first
# records a run: 0.9 s, measured.
FIRST_USE_IMPORTS = ["mlflow.store.tracking.sqlalchemy_store"]


def warm_imports() -> list[str]:
    """What a stage worker imports while it idles (`warm_up`): the stages' imports, then those
    they make on first use. Never TensorFlow, which only train@ and sweep@ need (and import
    inside `main`): its 3 s and ~0.4 GB would go to workers that may never train."""
    return stage_imports() + FIRST_USE_IMPORTS


# After a stage, how long stdin must stay quiet before a warm-up step starts. The next request
# of a busy run comes a few ms after the reply (Dask hands this worker its next task); a step
# started in that gap (an import of up to 0.9 s, a dump of dvc.lock) delayed it: in cold runs,
# train@ +3-8 s and generate@ +2-3 s summed, measured.
IDLE = 0.2


def warm_up(steps: list, idle: float = 0.0) -> None:
    """Run `steps` (functions) one at a time while no request is waiting on stdin, starting only
    once stdin has been quiet for `idle` seconds: a stage worker whose core idles (before its first
    stage, or after one: the knob's second core while the first trains, or the one that trained
    while the other evaluates) has the next stage's libraries loaded, and dvc.lock's blocks dumped,
    when that stage comes; one that has a stage to run stops after the step under way. Each step
    runs once: `steps` keeps what is left."""
    if not steps or select.select([sys.stdin], [], [], idle)[0]:
        return
    while steps and not select.select([sys.stdin], [], [], 0)[0]:
        steps.pop(0)()


def warm_steps() -> list:
    """A stage worker's `warm_up`: import what the stages import (`warm_imports`), then dump this
    project's dvc.lock block by block (`remember_lock_blocks`)."""
    return [functools.partial(import_if_module, name) for name in warm_imports()] + [remember_lock_blocks]


def import_if_module(name: str) -> None:
    """Import `name`, unless it is not a module (`x.y` where `y` is a function)."""
    try:
        importlib.import_module(name)
    except ImportError:
        pass


def remember_lock_blocks(path: str = "dvc.lock") -> None:
    """Parse and dump `path`'s stage blocks as a stage's update of it will (`parse_lockfile`,
    `lock_text`), so that the first stage parses and dumps only what changed (0.75 s less for this
    project's dvc.lock, measured)."""
    from dvc.utils.serialize._common import _load_data
    from dvc.utils.serialize._yaml import _dump

    if os.path.exists(path):
        lock_text(_load_data(path, parser=parse_lockfile), _dump)


def main() -> int:
    replies = os.fdopen(os.dup(1), "w")  # fd 1 itself goes to each stage's log
    signal.signal(signal.SIGINT, signal.default_int_handler)  # started with SIGINT ignored
    hook_dvc()
    steps = warm_steps() if os.path.isdir("stages") else []
    try:
        idle = 0.0  # before the first stage: at once (the run is still being set up)
        while True:
            warm_up(steps, idle)  # until a request is waiting: after a stage too, while its core idles
            idle = IDLE
            line = sys.stdin.readline()
            if not line:
                break
            request = json.loads(line)
            code = repro(request["stage"], Path(request["log"]))
            if code == 252:  # DVC's "interrupted by the user": Ctrl-C reached the stage
                return 130
            replies.write(json.dumps({"returncode": code}) + "\n")
            replies.flush()
    except KeyboardInterrupt:
        return 130
    replies.close()
    exit_at_once(0)


def exit_at_once(code: int) -> None:
    """End this process without the interpreter's finalisation, once every stage it ran has finished
    and recorded (DVC, MLflow and the outputs are closed by then): with TensorFlow, MLflow and
    matplotlib loaded that finalisation took 1.3 s, measured, and `make run` waits for it after its
    last stage. Buffered output and logging handlers are flushed first; nothing else is pending."""
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def environ_with(env: dict[str, str | None]) -> dict[str, str]:
    """This process's environment updated with `env`, where a None value removes the variable."""
    return {name: value for name, value in (os.environ | env).items() if value is not None}


class StageWorker:
    """The other end: a stage worker started by a `make run` (Dask) worker, and the stages sent to it."""

    def __init__(self, root: str, env: dict[str, str | None]):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", own_source(), MARK], cwd=root, env=environ_with(env),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            start_new_session=True)  # its own group: Ctrl-C reaches it (and its stage) through stop()

    def run(self, stage: str, log: Path, stopped, poll: float) -> int | None:
        """Run `stage`, its output appended to `log`: DVC's exit code, or None if `stopped()` said to
        stop first (the worker is then stopped too). A worker that died fails the stage."""
        self.proc.stdin.write(json.dumps({"stage": stage, "log": str(log)}) + "\n")
        self.proc.stdin.flush()
        while not select.select([self.proc.stdout], [], [], poll)[0]:
            if stopped():
                self.stop()
                return None
        reply = self.proc.stdout.readline()
        if not reply:  # it died: killed (out of memory?) or crashed
            code = self.proc.wait()
            with log.open("a") as out:
                out.write(f"\n--- tools.run: the stage worker died (exit code {code}) ---\n")
            return code or 1
        return json.loads(reply)["returncode"]

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, interrupt: bool = True) -> None:
        """No more stages (end of stdin); `interrupt` (Ctrl-C): at once SIGINT, SIGTERM, SIGKILL to
        its group, else that only if it has not ended within IDLE_EXIT seconds."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        if not interrupt:
            try:
                self.proc.wait(IDLE_EXIT)
            except subprocess.TimeoutExpired:
                pass
        stop_group(self.proc)
        self.proc.stdout.close()


def own_source() -> str:
    """This module's code: `SOURCE` when tools.run loaded it from the text it sent to a Dask worker."""
    return globals().get("SOURCE") or Path(__file__).read_text()


_workers: dict[tuple, StageWorker] = {}  # this process's stage workers, by project root and environment


def worker_for(root: str, env: dict[str, str | None]) -> StageWorker:
    key = (root, tuple(sorted(env.items())))
    if key not in _workers or not _workers[key].alive:
        _workers[key] = StageWorker(root, env)
    return _workers[key]


def stop_all() -> None:
    """End of a `make run`: this process's stage workers stop (a remote Dask worker outlives the run,
    and the next run may bring changed code)."""
    while _workers:
        _workers.popitem()[1].stop(interrupt=False)


def stop_group(proc: subprocess.Popen) -> None:
    """Stop a process's whole group as a terminal's Ctrl-C would, so it can clean up (SIGINT),
    then SIGTERM, then SIGKILL."""
    for sig, grace in ((signal.SIGINT, 5), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return  # the group is empty: nothing left running
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass


if __name__ == "__main__":
    sys.exit(main())
