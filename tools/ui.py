"""`make ui`: `mlflow ui` on the repository's store, and the URL that opens the runs view.

MLflow 3.17's UI opens an experiment on its GenAI pages (Overview, Traces) unless the browser is in
the "Model training" workflow. The server cannot choose that: the frontend takes the workflow from
the URL's `workflowType` parameter, else from the browser's localStorage (`mlflow.workflowType_v1`,
written when the user flips the sidebar toggle), else GenAI; the `mlflow.experimentKind`
experiment tag is not read by this build. So the URL printed here carries
`?workflowType=machine_learning`.

What the runs view shows first (which runs, sorted how, which columns) cannot be set by the server
or, for columns, by the URL. It can be set by the data: a *shared view* is an experiment tag
`mlflow.sharedViewState.<key>` holding the view's state as JSON, and a URL with
`viewStateShareKey=<key>` (and no search parameter of its own) opens it. This writes one, RUNS_VIEW:
the latest run of each experiment and sweep, sorted by mean test accuracy, with the headline columns.

    python -m tools.ui [--host 127.0.0.1] [--port 5000] [--root DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STORE_FILE = "mlflow.db"
ARTIFACT_DIR = "mlruns"
DEFAULT_EXPERIMENT = "classification-intuition"
RUNS_VIEW = "experiments"  # the shared view's key
RUNS_VIEW_QUERY = f"viewStateShareKey={RUNS_VIEW}&workflowType=machine_learning"
RUN_NAME = "attributes.`Run Name`"
COLUMNS = ["metrics.`test/accuracy`", "metrics.`test/accuracy_sd`", "metrics.`sharpness/mean_max_probability`",
           "metrics.`seeds/all_seeds_agree`", "metrics.`seeds/learned`", "tags.`status`", "params.`dataset`",
           "params.`layers`", "params.`optimizer`", "params.`learning_rate`", "params.`inputs`"]


def runs_view_url(base_url: str, experiment_id: str) -> str:
    """The UI page listing an experiment's runs (the "Model training" view, not GenAI Overview) in
    the shared view RUNS_VIEW."""
    return f"{base_url.rstrip('/')}/#/experiments/{experiment_id}/runs?{RUNS_VIEW_QUERY}"


def runs_view_state() -> dict:
    """The runs view's state as the UI saves a shared view (MLflow 3.17's frontend): one row per
    experiment and sweep (the `latest` run of each: intuition.tracking.mark_latest; seeds and sweep
    points are child runs, not listed), best mean test accuracy first, the headline columns shown.
    `columnWidths` applies to the columns `columnOrder` lists."""
    return {"searchFilter": "tags.latest = 'true'", "orderByKey": COLUMNS[0], "orderByAsc": False,
            "selectedColumns": COLUMNS, "columnOrder": [RUN_NAME, *COLUMNS],
            "columnWidths": {RUN_NAME: 300, COLUMNS[0]: 120, COLUMNS[1]: 140, COLUMNS[2]: 240, COLUMNS[3]: 170},
            "runsHiddenMode": "SHOW_ALL"}


def write_runs_view(client, experiment_id: str) -> None:
    """Store RUNS_VIEW in the experiment (an experiment tag, as the UI's Share button does)."""
    now = int(time.time() * 1000)
    view = {"name": "Experiments by mean test accuracy", "createdAt": now, "updatedAt": now,
            "state": json.dumps(runs_view_state())}
    client.set_experiment_tag(experiment_id, f"mlflow.sharedViewState.{RUNS_VIEW}", json.dumps(view))


def experiment_name(root: Path = ROOT) -> str:
    import yaml

    try:
        params = yaml.safe_load((root / "params.yaml").read_text()) or {}
    except OSError:
        return DEFAULT_EXPERIMENT
    return (params.get("mlflow") or {}).get("experiment_name") or DEFAULT_EXPERIMENT


def experiment_id(store_uri: str, name: str) -> str | None:
    """The experiment's id in the store, or None if the store or the experiment does not exist."""
    from mlflow.tracking import MlflowClient

    experiment = MlflowClient(store_uri).get_experiment_by_name(name)
    return None if experiment is None else experiment.experiment_id


# A light, quiet UI: MLflow's job runner (seven worker processes, ~1.3 GiB, for GenAI jobs) off,
# no telemetry, no INFO lines or a Starlette deprecation warning after the link. (The registry
# store URI above silences "Registry store URI not provided".)
QUIET = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
         "MLFLOW_LOGGING_LEVEL": "WARNING", "PYTHONWARNINGS": "ignore:starlette.middleware.wsgi is deprecated"}


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_healthy(base_url: str, server: subprocess.Popen, timeout: float = 120) -> bool:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if requests.get(f"{base_url}/health", timeout=2).ok:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.5)
    return False


def on_the_server(remote: str, name: str) -> int:
    """The runs are on a tracking server (make server): store the shared view there and print its
    link. A login that may only look (READ) cannot store it; the view an EDIT login stored is there
    for everyone."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from intuition.tracking import http_status, server_trouble

    try:
        exp_id = experiment_id(remote, name)
        if exp_id:
            try:
                write_runs_view(MlflowClient(remote), exp_id)
            except MlflowException as exc:
                if http_status(exc) != "403":
                    raise
    except MlflowException as exc:
        trouble = server_trouble(exc)
        if trouble is None:
            raise
        print(f"error: MLflow tracking server {remote} (MLFLOW_TRACKING_URI): {trouble}", file=sys.stderr)
        return 2
    where = runs_view_url(remote, exp_id) if exp_id else remote
    print(f"MLFLOW_TRACKING_URI is {remote}: the runs are on that server, not in {STORE_FILE}.\n"
          f"Open {where}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="where mlflow.db, mlruns/ and params.yaml are (default: this repository)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    base_url = f"http://{args.host}:{args.port}"
    name = experiment_name(root)

    remote = os.environ.get("MLFLOW_TRACKING_URI", "")
    if remote.startswith(("http://", "https://")):
        return on_the_server(remote, name)

    store_uri = f"sqlite:///{root / STORE_FILE}"
    # Asking a missing sqlite store would create it: look before asking.
    exp_id = experiment_id(store_uri, name) if (root / STORE_FILE).exists() else None
    if exp_id is not None:  # a copied or moved checkout: show this checkout's artifacts, as evaluate@ would
        from mlflow.tracking import MlflowClient

        from intuition.tracking import follow_checkout

        follow_checkout(MlflowClient(store_uri).get_experiment(exp_id).artifact_location, root)
        write_runs_view(MlflowClient(store_uri), exp_id)
    if not port_is_free(args.host, args.port):
        print(f"error: {args.host}:{args.port} is in use; try `make ui PORT={args.port + 1}`",
              file=sys.stderr)
        return 2

    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_BACKEND_STORE_URI")} | QUIET
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "ui", "--host", args.host, "--port", str(args.port),
         "--workers", "1", "--backend-store-uri", store_uri, "--registry-store-uri", store_uri,
         "--default-artifact-root", (root / ARTIFACT_DIR).as_uri(),
         "--uvicorn-opts", "--log-level warning --no-access-log"],
        cwd=root, env=env)
    # `kill` (SIGTERM) stops the UI too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        if not wait_healthy(base_url, server):
            print(f"error: mlflow ui did not come up on {base_url}", file=sys.stderr)
            return 2
        print()
        if exp_id is None:
            print(f"MLflow experiment {name!r} is not in {STORE_FILE} yet: run `make run` first.\n"
                  f"MLflow UI: {base_url}")
        else:
            print(f"Experiments of {name!r}, best mean test accuracy first (the latest run of each):\n"
                  f"  {runs_view_url(base_url, exp_id)}\n"
                  "Links inside the UI fall back to its GenAI pages until you click 'Model training'\n"
                  "in the sidebar once; the browser remembers that (docs/mlflow-ui.md).")
        print("Ctrl-C stops the UI.", flush=True)
        return server.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    sys.exit(main())
