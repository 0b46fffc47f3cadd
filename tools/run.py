"""`make run`: reproduce the pipeline, running independent stages at the same time.

`python -m tools.run [--pull] [--scheduler tcp://host:port] [--workers N] [--process-per-stage]`,
from the project root.

0. `--pull` (what `make run` passes): when a stage to run lacks outputs that dvc.lock names (a fresh
   clone, a deleted models/), first `dvc fetch` from the default DVC remote (.dvc/config;
   docs/team-dvc.md) and `dvc checkout --allow-missing` what dvc.lock names, then plan again: what
   came back is up to date, what did not (an object missing on the remote: DVC leaves that output
   missing) is run. No default remote, or one at a local path that does not exist (the usual
   laptop): one line says so, nothing is pulled, the stages run. A remote that fails (an SSH host
   down, objects missing): one line, and what it did not restore runs. Opt-in, not automatic:
   `make validate`, `make bench` and `make robustness` run this runner too, and they must train
   (the proof, the timings, other seeds), not download; a run with nothing missing (a knob
   changed) never contacts the remote.

1. One `dvc status` (DVC's Python API) finds the stale stages; they and every stage downstream of
   them are run, in the order of DVC's own stage graph (`repo.index.graph`). Nothing stale: exit at
   once, no cluster started.
2. Each stage becomes a Dask task as soon as its upstream stages succeeded and a worker is free.
   Why Dask: the same code runs on a `LocalCluster` (one single-threaded worker process per core)
   or, with `--scheduler`, on the workers of several machines sharing this working tree (at the
   same path; run as `python -m tools.run`, the tasks are shipped by value, so `dask worker`
   there needs no project code, only the project's venv: started as `.venv/bin/dask worker`);
   Dask places the tasks, runs them and reports back. A Dask worker that dies mid-stage (killed,
   out of memory, its machine gone): Dask runs the task again on another worker (up to
   `distributed.scheduler.allowed-failures`, 3, then the stage fails with KilledWorker), and DVC
   reruns the stage there, since dvc.lock records a stage only once it completed. The dead worker's
   stage worker (or `dvc`), a process group of its own, is stopped by a small guard process that
   watches for its Dask worker's death (`GUARD`): it does not go on with the stage beside the retry.
3. Each task runs `dvc repro --single-item <stage>` in the Dask worker's persistent stage worker
   (tools.stage_worker: one long-lived process, its own process group, that keeps DVC, TensorFlow,
   MLflow and matplotlib imported from one stage to the next), or with `--process-per-stage` in a
   `dvc` process of its own. Either way DVC still decides whether the stage changed, runs it, and
   owns dvc.lock, the run cache and its locks: a plain `dvc repro` gives the same result. Why `--single-item`: without it every `dvc repro <stage>`
   would also walk (and lock) the stage's upstream stages while another worker runs them, the
   "is busy" failures of dvc issue 11054. If DVC's repo lock is still briefly busy, the stage is
   retried with a back-off.
4. A failed stage skips its dependents, the other stages finish, and the command exits 1 naming
   the stage and its log (`.dvc/tmp/run-logs/<stage>.log`). Ctrl-C stops every running stage (its
   stage worker's or its `dvc`'s whole process group), then the cluster, and exits 130; so does SIGTERM.

DVC_NO_ANALYTICS and MLFLOW_TRACKING_URI, _USERNAME and _PASSWORD, when set, are passed on to
every stage, on any machine: the runs go to the MLflow server (docs/team.md) of whoever started
the run, not to the shared tree's mlflow.db (SQLite on a network disk) or a worker's own setting.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

LOG_DIR = Path(".dvc/tmp/run-logs")
LOCK_BUSY = re.compile(r"^ERROR: .*(is busy, it is (being )?blocked by|Unable to acquire lock)",
                       re.MULTILINE)  # DVC's own errors, not a stage's output
RETRIES = 6  # attempts of a stage whose only failure is DVC's lock being busy (31 s in all: DVC's
# lock of a stage whose Dask worker was killed lasts until the machine's init reaps the stage
# worker, which GUARD stops; measured 2.7-5.0 s after the kill here)
BACKOFF = 1.0  # seconds before the 2nd attempt; doubled before each next one
CLEANUP_SECONDS = 8  # after Ctrl-C: the longest the clean-up may take before the runner exits 130
POLL = 1.0  # seconds between two checks of a running stage for Ctrl-C (a scheduler round trip; at 0.25 s
# the checks kept tools.run and the Dask workers at ~20 % of a core during a cold run)
PASSED_ENV = ("DVC_NO_ANALYTICS", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME",
              "MLFLOW_TRACKING_PASSWORD")
# One stage per core: a stage's own thread pools (TensorFlow's, NumPy's BLAS) would otherwise each
# take every core and fight the stage next to it. Measured on 2 cores, cold pipeline (37 stages):
# 199 s with the libraries' defaults, 171 s with one thread each, every metric byte-identical
# (TensorFlow runs with op determinism). TensorFlow's are set where it is imported
# (intuition/tensorflow_setup.py), OpenMP's here. A value the user set wins.
ONE_CORE_ENV = {"OMP_NUM_THREADS": "1"}
# What a Dask worker's nanny adds to its environment (distributed.nanny.pre-spawn-environ) that a
# stage must not inherit unless the user set it: MALLOC_TRIM_THRESHOLD_=65536 also fixes glibc's
# mmap threshold at 128 KiB, so each larger allocation is a fresh mmap of zeroed pages. Measured,
# train@spiral_hard_relu_4x100's 500 epochs (one thread): 9.2 s without it, 14.7 s with it.
NOT_INHERITED = ("MALLOC_TRIM_THRESHOLD_",)


@contextmanager
def params_parsed_once():
    """Within it, DVC parses each params file once, and looks a param up by its path. Its status
    reads params.yaml again for every stage with a `params:` dependency, with ruamel: measured on a
    no-op `make run` with 78 stages, 6.8 s before and 3.2 s after (~45 ms a parse). The file does
    not change during one status call; every reader gets its own copy of the parse, as it would
    from the file. Then it finds each of a stage's params with `dpath.get`, which matches the
    path as a glob against the whole tree: 0.71 s of a 1.8 s no-op run for 264 params, measured;
    `plain_get` walks the path instead (globs still go to dpath)."""
    from dvc.dependency import param

    parse, dpath = param.load_path, param.dpath
    parsed = {}

    def load_once(path, fs, **kwargs):
        if path not in parsed:
            parsed[path] = parse(path, fs, **kwargs)
        return copy.deepcopy(parsed[path])

    class FastGet:  # the dpath module, with `get` walking a plain path
        def __getattr__(self, name):
            return getattr(dpath, name)

        @staticmethod
        def get(obj, glob, separator="/", **default):
            return plain_get(obj, glob, separator, dpath.get, **default)

    param.load_path, param.dpath = load_once, FastGet()
    try:
        yield
    finally:
        param.load_path, param.dpath = parse, dpath


GLOB = re.compile(r"[*?\[\]]")


def plain_get(tree, path, separator, glob_get, **default):
    """`glob_get(tree, path, separator)` (dpath.get's contract: the value at `path`, KeyError if
    there is none, `default` if given) for a path of plain keys through mappings, without
    globbing; anything else (a glob, a list on the way) is `glob_get`'s."""
    if not isinstance(path, str) or GLOB.search(path):
        return glob_get(tree, path, separator, **default)
    node = tree
    for key in path.split(separator):
        if not isinstance(node, Mapping):
            return glob_get(tree, path, separator, **default)
        if key not in node:
            if default:
                return default["default"]
            raise KeyError(path)
        node = node[key]
    return node


def plan(root: Path, missing: set[str] | None = None) -> dict[str, list[str]]:
    """Stages to run, upstream first: each stale stage and every stage downstream of it, mapped to
    its upstream stages that are also run. `missing`, if given, gets the stale stages that lack a
    cached output dvc.lock names (what `dvc pull` could bring back)."""
    import networkx as nx
    from dvc.repo import Repo, lock_repo

    # Under one hold of the repo's lock, status reuses the index the graph came from: otherwise
    # it builds its own, parsing dvc.yaml and dvc.lock again (0.8 s of a no-op run, measured).
    with Repo(str(root)) as repo, params_parsed_once(), lock_repo(repo):
        graph = repo.index.graph  # edges point from a stage to the stages it depends on
        stale = repo.status(check_updates=False)
        todo = set()
        for stage in graph:
            if stage.addressing in stale:
                todo |= {stage} | nx.ancestors(graph, stage)  # ancestors: stages depending on it
                if missing is not None and lacks_cached_output(stage):
                    missing.add(stage.addressing)
        order = reversed(list(nx.topological_sort(graph)))
        return {stage.addressing: [up.addressing for up in graph.successors(stage) if up in todo]
                for stage in order if stage in todo}


def lacks_cached_output(stage) -> bool:
    """Whether an output of `stage` that dvc.lock names and DVC caches is not in the workspace
    (`cache: false` outputs are in git, or remade: no remote has them)."""
    return any(out.use_cache and out.hash_info and not out.exists for out in stage.outs)


def default_remote(root: Path) -> tuple[str, str] | None:
    """The default DVC remote's name and URL (.dvc/config, or .dvc/config.local that overrides it;
    a relative local path resolved as DVC does, from the config file's folder), or None."""
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        name = repo.config["core"].get("remote")
        if not name or name not in repo.config["remote"]:
            return None
        return name, str(repo.config["remote"][name]["url"])


def pull(root: Path, stages: set[str]) -> bool:
    """If the default remote is reachable: `dvc fetch`, then `dvc checkout --allow-missing`, of the
    whole lock file (78 stages as targets: 21 s each, measured; the whole lock: 2.5 s). Not `dvc
    pull --allow-missing`: once one object is missing on the remote it checks nothing out; this
    checks out all the remote had. A checkout is all or nothing too (an output edited by hand:
    "Can't remove ... unsaved files"), so then again for `stages` only (those lacking outputs).
    One line if the remote is absent or failed. Whether anything may have been checked out."""
    remote = default_remote(root)
    if remote is None:
        print("no default DVC remote (docs/team-dvc.md): running the stages instead of pulling",
              flush=True)
        return False
    name, url = remote
    if not re.match(r"\w+://", url) and not Path(url).is_dir():  # a local path: checked, not tried
        print(f"no DVC remote at {url} (remote '{name}'): running the stages instead of pulling",
              flush=True)
        return False
    print(f"pulling what dvc.lock names for {len(stages)} stage(s) from DVC remote '{name}' ({url})",
          flush=True)
    env = os.environ | {var: os.environ[var] for var in PASSED_ENV if var in os.environ}

    def dvc(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["dvc", *args], cwd=root, env=env, text=True, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    fetched = dvc("fetch")
    checkout = dvc("checkout", "--allow-missing")
    if checkout.returncode != 0:
        checkout = dvc("checkout", "--allow-missing", *sorted(stages))
    if failed := [result for result in (fetched, checkout) if result.returncode != 0]:
        error = next((line for line in failed[0].stdout.splitlines() if line.startswith("ERROR")),
                     f"dvc {failed[0].args[1]}: exit code {failed[0].returncode}")
        print(f"pull from DVC remote '{name}' ({url}) incomplete ({error}): running what it did "
              "not restore", flush=True)
    return True


# The guard of a stage worker (or `dvc` process) and its process group, started next to it by the
# Dask worker. If that Dask worker dies (killed, out of memory), the group would otherwise run on,
# orphaned, finishing the stage while Dask retries it elsewhere; the retry then fails on DVC's lock
# of the stage's outputs ("is busy") once the back-off (RETRIES) runs out (measured without the
# guard: a 3-epoch train@'s orphan ran on for 14 s; a 500-epoch sweep@ takes minutes). The guard stops the group as Ctrl-C would (SIGINT: DVC records
# nothing and releases its locks), SIGKILL 3 s later if it is still there, and exits once the group
# is gone: well within the retry's back-off (RETRIES).
GUARD = """\
import os, signal, sys, time
group, parent = int(sys.argv[1]), int(sys.argv[2])
def alive():
    try:
        os.killpg(group, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
while alive():
    if os.getppid() != parent:
        for sig, grace in ((signal.SIGINT, 3), (signal.SIGKILL, 0)):
            try:
                os.killpg(group, sig)
            except ProcessLookupError:
                break
            end = time.monotonic() + grace
            while alive() and time.monotonic() < end:
                time.sleep(0.1)
        break
    time.sleep(0.1)  # one killpg(0) and one getppid a check: once its group is gone it exits
    # within 0.1 s, and `make run` waits for the guards at its end
"""


def guard(pid: int) -> subprocess.Popen:
    """Start the guard of process group `pid` (a child of this process): see GUARD."""
    # The parent's pid goes in the arguments: read by the guard with getppid() once started, it
    # would be init's if this process died first (seen under load: the group then ran on).
    return subprocess.Popen([sys.executable, "-I", "-S", "-c", GUARD, str(pid), str(os.getpid())],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            start_new_session=True)  # a signal to this process's group spares it


def log_path(stage: str) -> Path:
    return LOG_DIR / (re.sub(r"[^\w@.-]", "_", stage) + ".log")


def run_stage(stage: str, root: str, env: dict[str, str | None], stopped=lambda: False,
              persistent: bool = False, stage_worker=None) -> dict:
    """Run `dvc repro --single-item stage` until it succeeds, fails, or `stopped()` says Ctrl-C
    was pressed. Retried while it fails only because DVC's lock is busy. `persistent`: in this
    process's stage worker, else in a `dvc` process of its own. `stage_worker`: the
    tools.stage_worker module (default: imported)."""
    if stage_worker is None:
        from tools import stage_worker

    log = Path(root) / log_path(stage)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    start = time.monotonic()
    for attempt in range(1, RETRIES + 1):
        offset = log.stat().st_size
        if persistent:
            code = guarded_worker(stage_worker, root, env).run(stage, log, stopped, POLL)
        else:
            code = dvc_process(stage, root, stage_worker.environ_with(env), log, stopped,
                               stage_worker.stop_group)
        if code is None:
            return {"stage": stage, "status": "interrupted"}
        seconds = round(time.monotonic() - start, 1)
        if code == 0:
            return {"stage": stage, "status": "done", "seconds": seconds, "attempts": attempt}
        with log.open() as text:
            text.seek(offset)
            busy = LOCK_BUSY.search(text.read())
        if not busy or attempt == RETRIES:
            return {"stage": stage, "status": "failed", "seconds": seconds, "attempts": attempt}
        with log.open("a") as out:
            out.write(f"\n--- tools.run: DVC's lock was busy; attempt {attempt + 1} ---\n")
        time.sleep(BACKOFF * 2 ** (attempt - 1))


def guarded_worker(stage_worker, root: str, env: dict[str, str | None]):
    """This process's stage worker for `root` and `env`, started (with its guard) if need be."""
    worker = stage_worker.worker_for(root, env)
    if getattr(worker, "guard", None) is None:  # one per stage worker, for its lifetime
        worker.guard = guard(worker.proc.pid)
    return worker


def start_stage_worker(root: str, env: dict[str, str | None], code: str) -> None:
    """On every Dask worker as a run starts: its stage worker, which imports the stages'
    libraries while it waits for a stage (tools.stage_worker.warm_up)."""
    guarded_worker(load_stage_worker(code), root, env)


def dvc_process(stage: str, root: str, env: dict[str, str], log: Path, stopped, stop_group) -> int | None:
    """`dvc repro --single-item stage` in its own process group, in environment `env`: its exit
    code, or None if `stopped()` said to stop first (the process is then stopped with `stop_group`)."""
    with log.open("a") as out:
        proc = subprocess.Popen(["dvc", "--wait-for-lock", "repro", "--single-item", stage], cwd=root,
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=default_sigint)
    guarded = guard(proc.pid)
    try:
        while not exited(proc, POLL):
            if stopped():
                return None
    finally:
        stop_group(proc)
        exited(guarded, 2)  # it sees the group gone within half a second
    return proc.returncode


def exited(proc: subprocess.Popen, timeout: float) -> bool:
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        return False


def default_sigint() -> None:
    """In a stage's process: the LocalCluster's workers ignore SIGINT, their stages must not."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stage_task(stage: str, root: str, env: dict[str, str | None], stop, persistent: bool, code: str) -> dict:
    """The Dask task: run the stage unless Ctrl-C was pressed (`stop`, a Dask Event, is set)."""
    if stop.is_set():
        return {"stage": stage, "status": "interrupted"}
    return run_stage(stage, root, env, stopped=stop.is_set, persistent=persistent,
                     stage_worker=load_stage_worker(code))


def load_stage_worker(code: str):
    """tools.stage_worker in this Dask worker process, from the source this run sent (`code`): a
    remote `dask worker` needs no project code. Loaded once per process, so that its stage
    workers outlive the task that started them."""
    import types

    module = sys.modules.get("tools_run_stage_worker")
    if module is None or module.SOURCE != code:
        module = types.ModuleType("tools_run_stage_worker")
        module.SOURCE = code
        sys.modules[module.__name__] = module
        exec(compile(code, "tools/stage_worker.py", "exec"), module.__dict__)  # noqa: S102
    return module


def stop_stage_workers(code: str) -> None:
    """On every Dask worker at the end of a run: its stage workers stop (a remote Dask worker
    outlives the run, and the next run may bring changed code)."""
    module = load_stage_worker(code)
    guards = [worker.guard for worker in module._workers.values() if getattr(worker, "guard", None)]
    module.stop_all()
    for guarded in guards:
        exited(guarded, 2)


def start_cluster(scheduler: str | None, workers: int):
    """A client of the given scheduler, or of a new LocalCluster of `workers` processes."""
    from distributed import Client, LocalCluster

    if scheduler:
        client = Client(scheduler)
        client.wait_for_workers(1)
        return client, None
    # Workers inherit an ignored SIGINT: Ctrl-C reaches this process only, which then stops the
    # stages and the workers in order.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               memory_limit=0, dashboard_address=None)
    finally:
        signal.signal(signal.SIGINT, previous)
    return Client(cluster), cluster


def downstream(stage: str, stages: dict[str, list[str]]) -> set[str]:
    found, todo = set(), [stage]
    while todo:
        up = todo.pop()
        new = {s for s, ups in stages.items() if up in ups} - found
        found |= new
        todo.extend(new)
    return found


def outcome(stage: str, future) -> dict:
    """A finished task's result; a task that raised (Dask or this code, not the stage) failed."""
    if future.status == "finished":
        return future.result()
    error = repr(future.exception()) if future.status == "error" else future.status
    print(f"error in the task of {stage}: {error}", file=sys.stderr, flush=True)
    return {"stage": stage, "status": "failed"}


def summarize(failed: list[str], root: Path) -> int:
    """Echo each failed stage's log tail to stderr, then a last line naming them; the exit code."""
    for stage in failed:
        log = root / log_path(stage)
        tail = log.read_text(errors="replace").splitlines()[-20:] if log.exists() else ["(no log)"]
        print(f"--- {stage}: last lines of {log_path(stage)} ---", *tail, sep="\n",
              file=sys.stderr, flush=True)
    if failed:
        print("FAILED: " + ", ".join(f"{stage} (log: {log_path(stage)})" for stage in failed),
              file=sys.stderr, flush=True)
    return 1 if failed else 0


def run(stages: dict[str, list[str]], root: Path, scheduler: str | None, workers: int,
        persistent: bool = True) -> int:
    """Run the planned stages on Dask; the exit code: 0, 1 if a stage failed, 130 on Ctrl-C.

    A stage is submitted once its upstream stages succeeded, and only when a worker thread is
    free: Dask's scheduler would otherwise place it on the worker holding its upstream's result
    (`decide_worker`), and queue it there while that worker is busy and another one idles."""
    from distributed import Event, as_completed, wait

    env = {name: os.environ[name] for name in PASSED_ENV if name in os.environ}
    env |= {name: os.environ.get(name, value) for name, value in ONE_CORE_ENV.items()}
    env |= {name: os.environ.get(name) for name in NOT_INHERITED}  # None: removed (environ_with)
    code = Path(__file__).with_name("stage_worker.py").read_text()
    client, cluster = start_cluster(scheduler, min(workers, len(stages)))
    run_id = uuid.uuid4().hex[:8]
    stop = Event(f"tools.run-stop-{run_id}", client=client)
    waiting = {stage: set(upstream) for stage, upstream in stages.items()}
    running, names, failed, ended = as_completed(), {}, [], 0

    def submit_ready():
        threads = max(sum(client.nthreads().values()), 1)  # no worker now: Dask holds the task
        free = threads - running.count()
        for stage in [stage for stage, upstream in waiting.items() if not upstream][:max(free, 0)]:
            del waiting[stage]
            future = client.submit(stage_task, stage, str(root), env, stop, persistent, code,
                                   key=f"{stage}-{run_id}", pure=False)
            names[future] = stage
            running.add(future)
            print(f"start {stage}", flush=True)

    try:
        if persistent:  # a head start only: a worker it fails on starts its stage worker with its first stage
            client.run(start_stage_worker, str(root), env, code, on_error="ignore")
        submit_ready()
        for future in running:
            result = outcome(names.pop(future), future)
            stage, ended = result["stage"], ended + 1
            retried = f", {result['attempts']} attempts" if result.get("attempts", 1) > 1 else ""
            print(f"[{ended}/{len(stages)}] {result['status']} {stage} "
                  f"({result.get('seconds', 0):.1f} s{retried})", flush=True)
            if result["status"] == "done":
                for upstream in waiting.values():
                    upstream.discard(stage)
            else:
                failed.append(stage)
                for skipped in sorted(downstream(stage, stages) & waiting.keys()):
                    del waiting[skipped]
                    ended += 1
                    print(f"[{ended}/{len(stages)}] skipped {skipped} (after {stage})", flush=True)
            submit_ready()
        return summarize(failed, root)
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not break the cleanup
        print(f"\ninterrupted: stopping {', '.join(names.values()) or 'nothing'}", file=sys.stderr,
              flush=True)
        interrupt_local_stages()
        # Dask calls cut short by the Ctrl-C can leave the client unable to finish the clean-up
        # below (seen: no exit 20 s after Ctrl-C); the stages were stopped above, so do not wait.
        watchdog = threading.Timer(CLEANUP_SECONDS, os._exit, [130])
        watchdog.daemon = True  # a clean-up that finishes in time exits at once
        watchdog.start()
        stop.set()
        try:
            wait(list(names), timeout=30)  # the tasks end their stages' processes
        except TimeoutError:
            pass
        return 130
    finally:
        if persistent:
            with contextlib.suppress(Exception):  # a closing cluster stops its workers' anyway
                client.run(stop_stage_workers, code)
        client.close()
        if cluster is not None:
            cluster.close()


def interrupt_local_stages() -> None:
    """Ctrl-C straight to the stages running on this machine (each stage worker, or each
    `dvc repro --single-item`, is its own process group under a LocalCluster worker): they stop even if the stop event cannot get
    through the Dask client that the same Ctrl-C interrupted mid-call."""
    import psutil

    for child in psutil.Process().children(recursive=True):
        try:
            if {"--single-item", "--stage-worker"} & set(child.cmdline()):
                os.killpg(child.pid, signal.SIGINT)
        except (psutil.Error, ProcessLookupError):
            pass


def inputs_are_valid(root: Path) -> bool:
    """This project's params.yaml and findings.yaml, checked before any stage starts: a bad key or
    value (say `min_seeds` above `seeds`) would otherwise surface only in the report, after every
    model trained. One `error:` line per problem. A DVC project without them is not checked."""
    if not (root / "params.yaml").exists() or not (root / "findings.yaml").exists():
        return True
    from intuition.config import ParamsError, load_params
    from intuition.findings import load_findings_for

    try:
        load_findings_for(load_params(Path("params.yaml")), Path("findings.yaml"))  # root is the cwd
    except ParamsError as exc:
        print("\n".join(f"error: {line}" for line in str(exc).splitlines()), file=sys.stderr)
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.run", description=__doc__.split("\n")[0])
    parser.add_argument("--scheduler", metavar="tcp://host:port",
                        help="an existing Dask scheduler (default: a LocalCluster on this machine)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="LocalCluster worker processes (default: one per core, %(default)s)")
    parser.add_argument("--pull", action="store_true",
                        help="first pull the outputs of stages that lack them from the default DVC "
                             "remote, if it is reachable (`make run`)")
    parser.add_argument("--process-per-stage", action="store_true",
                        help="each stage in a `dvc repro --single-item` process of its own, as before "
                             "stage workers (default: a persistent stage worker per Dask worker)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    # Ctrl-C and `kill` (a CI timeout) both stop the run cleanly, even when started from a parent
    # that ignores SIGINT (a background job of a non-interactive shell: Python then installs no
    # KeyboardInterrupt handler, and Ctrl-C would do nothing).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    start = time.monotonic()
    root = Path.cwd()
    if not inputs_are_valid(root):
        return 2
    try:
        missing = set()
        stages = plan(root, missing)
        if args.pull and missing and pull(root, missing):
            before = len(stages)
            stages = plan(root)
            print(f"after the pull: {len(stages)} of {before} stage(s) still to run "
                  f"({time.monotonic() - start:.1f} s)", flush=True)
        if not stages:
            print(f"Pipeline is up to date: nothing to run ({time.monotonic() - start:.1f} s)")
            return 0
        print(f"{len(stages)} stage(s) to run: {', '.join(stages)}", flush=True)
        code = run(stages, root, args.scheduler, args.workers, persistent=not args.process_per_stage)
    except KeyboardInterrupt:
        code = 130
    print(f"total {time.monotonic() - start:.1f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
