"""`make server` (tools.server): the team's MLflow tracking server, on PostgreSQL, with logins.

One real server for the module: `python -m tools.server` on a throw-away state directory (its own
PostgreSQL cluster, initdb/pg_ctl as an unprivileged user, on free loopback ports; `mlflow server
--app-name basic-auth` serving the artifacts), and one real pipeline run into it as the admin (two
experiments, 3 epochs, 2 seeds, `make run`'s runner). The faults come last, in file order: the
server killed in the middle of a stage, PostgreSQL stopped, then SIGTERM stops everything."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sandbox import ROOT, env, make_project, run

from tools import server as team

EXPERIMENTS = ["linear_perceptron", "bands_sigmoid_1x10"]
KILLED = "linear_perceptron"  # the experiment whose evaluate@ loses its server mid-way
EXPERIMENT_NAME = "classification-intuition"
SEEDS = 2
START_TIMEOUT = 180  # s: initdb, then MLflow's schema migrations, on a busy CI machine
DEFAULT_PASSWORD = "password1234"  # what older MLflow releases gave the admin


def _postgres_missing() -> str | None:
    try:
        team.postgres_bin()
    except team.Refused as exc:
        return str(exc)
    return None


MISSING = _postgres_missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"{MISSING}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Team:
    uri: str
    state: team.State
    process: subprocess.Popen
    output: Path  # what `python -m tools.server` printed

    @property
    def admin(self) -> tuple[str, str]:
        return team.ADMIN, self.state.secret("admin-password").read_text().strip()

    def env(self) -> dict[str, str]:
        """What docs/team.md has a client export: the URI and the admin's login."""
        name, password = self.admin
        return {"MLFLOW_TRACKING_URI": self.uri, "MLFLOW_TRACKING_USERNAME": name, "MLFLOW_TRACKING_PASSWORD": password}

    def running(self) -> dict:
        return json.loads(self.state.running.read_text())


@pytest.fixture(scope="module")
def state_root():
    """Under /tmp, not pytest's tmp dir: that one is mode 700, and PostgreSQL's user (not root)
    must enter the directories above its cluster."""
    root = Path(tempfile.mkdtemp(prefix="test-server-", dir="/tmp"))
    root.chmod(0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def server(state_root):
    """`python -m tools.server` (what `make server` runs), up and healthy; stopped afterwards,
    PostgreSQL too, whatever the tests did."""
    port, state, output = free_port(), team.State(state_root / "state"), state_root / "server.out"
    with open(output, "w") as out:
        command = [sys.executable, "-m", "tools.server", "--state", str(state.root), "--port", str(port)]
        process = subprocess.Popen(command, cwd=ROOT, env=env(), stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        wait_for_health(f"http://127.0.0.1:{port}", process, output)
        yield Team(f"http://127.0.0.1:{port}", state, process, output)
    finally:
        stop(process, state)


def wait_for_health(uri: str, process: subprocess.Popen, output: Path, timeout: float = START_TIMEOUT,
                    said: str = "Ctrl-C stops the server and PostgreSQL.") -> None:
    """Until the server answers and tools.server has printed `said` (it prints once it is up)."""
    deadline = time.monotonic() + timeout
    while not (said in output.read_text() and healthy(uri)):
        assert process.poll() is None, f"tools.server exited ({process.returncode}):\n{output.read_text()}"
        assert time.monotonic() < deadline, f"no server at {uri} after {timeout:.0f} s:\n{output.read_text()}"
        time.sleep(0.5)


def healthy(uri: str) -> bool:
    try:
        return requests.get(f"{uri}/health", timeout=2).ok
    except requests.RequestException:
        return False


def stop(process: subprocess.Popen, state: team.State) -> None:
    """SIGTERM as `kill` would; if that fails, kill its group and stop PostgreSQL ourselves."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    if state.running.is_file():  # tools.server did not get to clean up
        try:
            os.killpg(json.loads(state.running.read_text())["mlflow_pid"], signal.SIGKILL)
        except ProcessLookupError:
            pass
    if (state.data / "postmaster.pid").exists():
        team.stop_postgres(state, team.postgres_bin(state.data), team.postgres_owner())


def add_user(server: Team, name: str, permission: str, password: str) -> str:
    """What a teacher runs per student."""
    return run(ROOT, sys.executable, "-m", "tools.server", "--state", str(server.state.root), "add-user", name,
               "--permission", permission, "--password", password, timeout=120).stdout


def api(server: Team, method: str, path: str, user: tuple[str, str] | None, **kw) -> requests.Response:
    return requests.request(method, f"{server.uri}/api/2.0/mlflow/{path}", auth=user, timeout=30, **kw)


def client(server: Team):
    """An MlflowClient logged in as the admin (MLflow reads the login from the environment)."""
    from mlflow.tracking import MlflowClient

    os.environ.update(server.env())
    return MlflowClient(server.uri)


@pytest.fixture(scope="module", autouse=True)
def _restore_environment():
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")}
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def all_runs(server: Team) -> list:
    c = client(server)
    experiment = c.get_experiment_by_name(EXPERIMENT_NAME)
    return c.search_runs([experiment.experiment_id], max_results=5000) if experiment else []


# --- Bad input: one line, before any work ---------------------------------------------------------


def test_a_port_in_use_is_refused_in_one_line_before_any_work(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert team.main(["--state", str(tmp_path / "state"), "--port", str(port)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: 127.0.0.1:{port} is in use (another server?); try `make server PORT={port + 1}`"]
    assert not (tmp_path / "state").exists()


def test_missing_postgresql_is_refused_in_one_line_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(team, "POSTGRES_ROOT", tmp_path / "no-postgresql")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert team.main(["--state", str(tmp_path / "state"), "--port", str(free_port())]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl, no pg_ctl on PATH): "
        "apt-get install postgresql"]
    assert not (tmp_path / "state").exists()


def test_add_user_without_a_running_server_says_so(tmp_path, capsys):
    assert team.main(["--state", str(tmp_path), "add-user", "student"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error: no server is running with state {tmp_path}")


# --- Logins ---------------------------------------------------------------------------------------


def test_logins_anonymous_401_admin_with_a_generated_password_read_user_403_on_runs(server):
    admin_password = server.admin[1]
    password_file = server.state.secret("admin-password")
    assert admin_password != DEFAULT_PASSWORD and len(admin_password) >= 20
    assert password_file.stat().st_mode & 0o777 == 0o600
    assert "Ctrl-C stops the server and PostgreSQL." in server.output.read_text()
    assert admin_password not in server.output.read_text(), "the password is in its file, not printed"

    search = ("GET", "experiments/search", {"params": {"max_results": 10}})
    assert api(server, *search[:2], None, **search[2]).status_code == 401
    assert api(server, *search[:2], (team.ADMIN, DEFAULT_PASSWORD), **search[2]).status_code == 401
    assert api(server, *search[:2], server.admin, **search[2]).status_code == 200

    student = ("student", "a-student-password")
    shown = add_user(server, "student", "READ", student[1])
    assert shown.startswith(f"student: READ on experiment '{EXPERIMENT_NAME}'")
    experiment = api(server, "GET", "experiments/get-by-name", student, params={"experiment_name": EXPERIMENT_NAME})
    assert experiment.status_code == 200
    experiment_id = experiment.json()["experiment"]["experiment_id"]
    assert api(server, "POST", "runs/create", student, json={"experiment_id": experiment_id}).status_code == 403

    add_user(server, "student", "EDIT", student[1])  # the teacher lets the student record runs
    created = api(server, "POST", "runs/create", student, json={"experiment_id": experiment_id})
    assert created.status_code == 200
    run_id = created.json()["run"]["info"]["run_id"]
    finished = {"run_id": run_id, "status": "FINISHED", "end_time": int(time.time() * 1000)}
    assert api(server, "POST", "runs/update", student, json=finished).status_code == 200
    assert api(server, "POST", "runs/delete", student, json={"run_id": run_id}).status_code == 403  # MANAGE's
    assert api(server, "POST", "runs/delete", server.admin, json={"run_id": run_id}).status_code == 200


# --- A pipeline recording into the server ---------------------------------------------------------


@pytest.fixture(scope="module")
def project(server, tmp_path_factory):
    """The project cut to EXPERIMENTS, run by `make run`'s runner with the server's URI and the
    admin's login in the environment, as docs/team.md says."""
    project = make_project(tmp_path_factory.mktemp("team"), epochs=3, experiments=EXPERIMENTS, seeds=SEEDS)
    run(project, sys.executable, "-m", "tools.run", timeout=600, **server.env())
    return project


def test_every_run_of_a_pipeline_is_on_the_server_with_its_figures(project, server, tmp_path):
    runs = all_runs(server)
    parents = {r.info.run_name: r for r in runs if r.data.tags.get("role") == "parent"}
    seeds = [r for r in runs if r.data.tags.get("role") == "seed"]
    assert sorted(parents) == sorted(EXPERIMENTS)
    assert {r.info.status for r in parents.values()} == {"FINISHED"}
    assert sorted(r.info.run_name for r in seeds) == sorted(f"{k} seed {i}" for k in EXPERIMENTS for i in range(SEEDS))
    assert {r.data.tags["mlflow.parentRunId"] for r in seeds} == {r.info.run_id for r in parents.values()}
    c = client(server)
    for r in parents.values():
        assert r.info.artifact_uri.startswith("mlflow-artifacts:/"), r.info.artifact_uri
        assert len(c.get_metric_history(r.info.run_id, "epoch/train_loss")) == 4  # epochs 0-3
        figure = c.download_artifacts(r.info.run_id, "figures/decision_regions.png", str(tmp_path))
        assert Path(figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The server stored them; the project wrote no store of its own.
    assert len(list((server.state.artifacts).rglob("decision_regions.png"))) == len(EXPERIMENTS)
    assert not (project / "mlflow.db").exists() and not (project / "mlruns").exists()


def test_the_logged_model_loads_from_the_server_in_a_fresh_process(project, server, tmp_path):
    import mlflow
    import numpy as np

    from intuition.network import load_layers, predict_proba

    parent = next(r for r in all_runs(server) if r.info.run_name == KILLED and r.data.tags.get("role") == "parent")
    client(server)
    mlflow.set_tracking_uri(server.uri)
    try:
        models = mlflow.search_logged_models(experiment_ids=[parent.info.experiment_id], output_format="list")
        [model] = [m for m in models if m.source_run_id == parent.info.run_id]
    finally:
        mlflow.set_tracking_uri(None)
    X = np.random.default_rng(1).normal(size=(20, 2))
    code = ("import json, sys; import mlflow, numpy as np, pandas as pd; "
            "model = mlflow.pyfunc.load_model(sys.argv[1]); "
            "X = pd.DataFrame(json.loads(sys.argv[2]), columns=['x1', 'x2']); "
            "print(json.dumps(np.asarray(model.predict(X)).ravel().tolist()))")
    shown = run(tmp_path, sys.executable, "-c", code, f"models:/{model.model_id}", json.dumps(X.tolist()),
                timeout=300, **server.env())
    rep = json.loads((project / "results" / KILLED / "metrics.json").read_text())["representative_seed"]
    layers = load_layers(project / "models" / KILLED / "seeds" / f"seed_{rep}.keras")
    expected = predict_proba(layers, X.astype("float32"))
    np.testing.assert_allclose(json.loads(shown.stdout.splitlines()[-1]), expected[:, 1], atol=1e-5)


def test_a_login_that_may_only_look_is_refused_in_one_line_before_the_stage_works(project, server):
    """A READ login (a student the teacher let look) running the pipeline: the stage asks the server
    for its permission before it evaluates anything, and ends in one line naming the fix."""
    add_user(server, "reader", "READ", "a-reader-password")
    experiment_id = client(server).get_experiment_by_name(EXPERIMENT_NAME).experiment_id
    runs_before, written = snapshot(all_runs(server)), project / "results" / KILLED / "headline.json"
    mtime = written.stat().st_mtime_ns
    login = {**server.env(), "MLFLOW_TRACKING_USERNAME": "reader", "MLFLOW_TRACKING_PASSWORD": "a-reader-password"}
    result = run(project, sys.executable, "-m", "stages.evaluate", KILLED, check=False, timeout=120, **login)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: MLflow tracking server {server.uri} (MLFLOW_TRACKING_URI): login 'reader' has READ on experiment "
        f"{experiment_id}; recording runs needs EDIT (python -m tools.server add-user reader --permission EDIT)"]
    assert written.stat().st_mtime_ns == mtime, "nothing was evaluated"
    assert snapshot(all_runs(server)) == runs_before
    # `make ui` for that login: it may not store the shared view, but gets the link to the runs.
    shown = run(ROOT, sys.executable, "-m", "tools.ui", check=False, timeout=120, **login)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[-1].startswith(f"Open {server.uri}/#/experiments/{experiment_id}/runs")


def test_make_ui_and_a_browser_find_the_runs_on_the_server(project, server):
    """`make ui` with the server's URI in the environment links the runs view there; the page
    itself asks for the login."""
    experiment_id = all_runs(server)[0].info.experiment_id
    shown = run(ROOT, sys.executable, "-m", "tools.ui", timeout=120, **server.env()).stdout
    assert f"{server.uri}/#/experiments/{experiment_id}/runs?" in shown
    assert requests.get(server.uri, timeout=30).status_code == 401
    assert requests.get(server.uri, auth=server.admin, timeout=30).status_code == 200


# --- Load: two writers at once --------------------------------------------------------------------

WRITERS, SWEEPS_EACH, POINTS, METRICS = 2, 2, 15, 40


def _write_sweeps(login: dict[str, str], writer: int, barrier) -> list[str]:
    """One writer: record SWEEPS_EACH sweeps of POINTS points with METRICS metrics each, through the
    project's own tracking code (intuition.tracking.record_sweep), starting with the other writer."""
    os.environ.update(login)
    from intuition import tracking

    experiment_id = tracking.connect(EXPERIMENT_NAME)
    barrier.wait(timeout=60)
    parents = []
    for sweep in range(SWEEPS_EACH):
        points = [tracking.PointRecord(f"p{p}", {"point": p}, metric_values(writer, sweep, p), 0.0)
                  for p in range(POINTS)]
        parents.append(tracking.record_sweep(experiment_id, tracking.SweepRecord(
            f"load-{writer}-{sweep}", {"writer": writer}, metric_values(writer, sweep, -1), points, [])))
    return parents


def metric_values(writer: int, sweep: int, point: int) -> dict[str, float]:
    return {f"load/m{m:02d}": round(writer * 100 + sweep * 10 + point + m / 100, 2) for m in range(METRICS)}


def test_two_writers_at_once_lose_no_run_and_no_metric(server):
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    started = time.monotonic()
    with context.Manager() as manager:
        barrier = manager.Barrier(WRITERS)
        with context.Pool(WRITERS) as pool:
            parents = pool.starmap(_write_sweeps, [(server.env(), w, barrier) for w in range(WRITERS)])
    seconds = time.monotonic() - started
    runs = [r for r in all_runs(server) if r.data.tags.get("sweep", "").startswith("load-")]
    assert len(runs) == WRITERS * SWEEPS_EACH * (1 + POINTS), f"{len(runs)} runs in {seconds:.1f} s"
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert sorted(r.info.run_id for r in runs if r.data.tags["role"] == "sweep") == sorted(sum(parents, []))
    for r in runs:
        writer, sweep = map(int, r.data.tags["sweep"].split("-")[1:])
        point = int(r.data.tags["point"][1:]) if r.data.tags["role"] == "point" else -1
        assert r.data.metrics == metric_values(writer, sweep, point), r.info.run_name
    print(f"{len(runs)} runs, {len(runs) * METRICS} metrics from {WRITERS} writers at once in {seconds:.1f} s")


# --- Faults ---------------------------------------------------------------------------------------


def snapshot(runs) -> dict[str, tuple]:
    return {r.info.run_id: (r.info.status, r.data.metrics, r.data.params) for r in runs}


def test_the_server_killed_mid_stage_fails_it_in_one_line_loses_nothing_and_is_restarted(project, server):
    """kill -9 of `mlflow server` (its whole process group) while evaluate@ records its runs:
    tools.server starts it again; the stage ends with one line; what was recorded before is all
    there; the next evaluate@ marks the half-recorded runs KILLED, and nothing is left RUNNING."""
    before = snapshot(all_runs(server))
    killed_pid = server.running()["mlflow_pid"]
    stage = subprocess.Popen([sys.executable, "-m", "stages.evaluate", KILLED], cwd=project, env=env(**server.env()),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        orphan = wait_for_a_seed_run(server, stage, before)
        os.killpg(killed_pid, signal.SIGKILL)
        killed = time.monotonic()
        _, stderr = stage.communicate(timeout=120)
    finally:
        if stage.poll() is None:
            stage.kill()
    assert stage.returncode == 2, stderr
    [line] = stderr.strip().splitlines()
    assert line.startswith(f"error: MLflow tracking server {server.uri} (MLFLOW_TRACKING_URI) failed while recording: "
                           "not reachable (stopped or restarting); could not mark its "), line

    wait_for_health(server.uri, server.process, server.output, timeout=120, said="mlflow server is back")
    assert server.running()["mlflow_pid"] != killed_pid
    print(f"the server was back {time.monotonic() - killed:.1f} s after kill -9; the stage said: {stderr.strip()}")
    after = snapshot(all_runs(server))
    assert {k: after.get(k) for k in before} == before, "a run recorded before the kill changed or was lost"
    assert after[orphan][0] == "RUNNING", "half-recorded: neither FINISHED nor closed by a dead server"

    run(project, sys.executable, "-m", "stages.evaluate", KILLED, timeout=300, **server.env())
    final = {r.info.run_id: r.info.status for r in all_runs(server)}
    assert final[orphan] == "KILLED"
    assert [k for k, status in final.items() if status == "RUNNING"] == []


def wait_for_a_seed_run(server: Team, stage: subprocess.Popen, before: dict, timeout: float = 180) -> str:
    """The new parent run's id, once it has its model, metrics and a first seed run: mid-stage
    (its figures and 30 evolution images come next)."""
    c = client(server)
    experiment_id = c.get_experiment_by_name(EXPERIMENT_NAME).experiment_id
    deadline = time.monotonic() + timeout
    parent = None
    while time.monotonic() < deadline and stage.poll() is None:
        if parent is None:
            running = c.search_runs([experiment_id], f"tags.experiment = '{KILLED}' and tags.role = 'parent' "
                                    "and attributes.status = 'RUNNING'")
            parent = next((r.info.run_id for r in running if r.info.run_id not in before), None)
        elif c.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'", max_results=1):
            return parent
        time.sleep(0.02)
    raise AssertionError(f"evaluate@{KILLED} ended ({stage.poll()}) or took {timeout:.0f} s before it could be killed:"
                         f"\n{stage.stderr.read() if stage.poll() is not None else ''}")


def test_postgresql_down_a_stage_says_so_in_one_line_within_10_s(project, server):
    state, owner = server.state, team.postgres_owner()
    bin_dir = team.postgres_bin(state.data)
    runs_before = snapshot(all_runs(server))
    team.stop_postgres(state, bin_dir, owner)
    try:
        started = time.monotonic()
        result = run(project, sys.executable, "-m", "stages.evaluate", KILLED, check=False, timeout=60, **server.env())
        seconds = time.monotonic() - started
    finally:
        team.start_postgres(state, bin_dir, owner, server.running()["pg_port"])
    print(f"PostgreSQL down: evaluate@ exited {result.returncode} after {seconds:.1f} s: {result.stderr.strip()}")
    assert seconds < 10
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: MLflow tracking server {server.uri} (MLFLOW_TRACKING_URI): 503, it answers but cannot serve "
        "(is its database down?)"]
    assert snapshot(all_runs(server)) == runs_before, "PostgreSQL back: every run as it was"


def test_sigterm_stops_mlflow_and_postgresql(server):
    """Last: what Ctrl-C or `kill` does to `make server`."""
    mlflow_pid = server.running()["mlflow_pid"]
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=90) == 0
    assert "Stopped the MLflow server and PostgreSQL." in server.output.read_text()
    assert not server.state.running.exists() and not (server.state.data / "postmaster.pid").exists()
    assert not team.group_alive(mlflow_pid)
    assert not healthy(server.uri)
