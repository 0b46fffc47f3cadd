"""What a user sees: headless Chromium on the real `mlflow ui` that `make ui` starts, at the URL it prints.

The store is built with the MLflow client in the shape the pipeline writes (one parent run per
experiment, one child run per seed), so this needs no training. Screenshots land in the test's tmp
dir (`pytest --basetemp=DIR` keeps them somewhere known)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from sandbox import ROOT, env

from tools.ui import runs_view_url

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
EXPERIMENT_NAME = "classification-intuition"
RENDER_TIMEOUT = 60  # s: the React app is slow to render on 2 cores

# Three experiments as the pipeline names them, with the knobs the docs compare.
PARENTS = {
    "spiral_hard_relu_1x100": {"hidden_layers": 1, "hidden_units": 100, "learning_rate": 0.01,
                               "optimizer": "adam", "inputs": "x1, x2", "accuracy": 0.40},
    "spiral_hard_relu_2x100": {"hidden_layers": 2, "hidden_units": 100, "learning_rate": 0.001,
                               "optimizer": "adam", "inputs": "x1, x2", "accuracy": 0.99},
    "bands_sigmoid_1x10": {"hidden_layers": 1, "hidden_units": 10, "learning_rate": 0.1,
                           "optimizer": "sgd", "inputs": "x1, x2", "accuracy": 0.97},
}
SEEDS = 2
EPOCHS = 5

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() or not Path(CHROMEDRIVER).exists(),
    reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, chromedriver): "
           "apt-get install chromium chromium-driver",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_store(root: Path) -> tuple[str, str, dict[str, str]]:
    """A sqlite store like the pipeline's; returns (store uri, experiment id, {key: parent run id})."""
    from mlflow.entities import Metric, Param, RunStatus, RunTag
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment_id = client.create_experiment(EXPERIMENT_NAME, artifact_location=(root / "mlruns").as_uri())
    now = int(time.time() * 1000)

    def fill(run_id: str, knobs: dict, offset: float) -> None:
        final = knobs["accuracy"] + offset
        curves = [
            Metric(name, value, now + step, step)
            for step in range(EPOCHS)
            for name, value in (("loss", 1.0 / (step + 1)), ("val_loss", 1.1 / (step + 1)),
                                ("accuracy", final * (step + 1) / EPOCHS),
                                ("val_accuracy", (final - 0.01) * (step + 1) / EPOCHS))
        ]
        params = [Param(k, str(v)) for k, v in knobs.items() if k != "accuracy"]
        client.log_batch(run_id, params=params, metrics=curves + [
            Metric("test/accuracy", final, now, 0), Metric("val/accuracy", final - 0.01, now, 0)])
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))

    parents = {}
    for key, knobs in PARENTS.items():
        parent = client.create_run(experiment_id, run_name=key, tags={"experiment": key, "role": "parent"})
        parents[key] = parent.info.run_id
        for seed in range(SEEDS):
            child = client.create_run(experiment_id, run_name=f"{key} seed {seed}", tags={
                "experiment": key, "role": "seed", "mlflow.parentRunId": parent.info.run_id})
            client.log_batch(child.info.run_id, tags=[RunTag("seed", str(seed))])
            fill(child.info.run_id, knobs, offset=-0.005 * seed)
        fill(parent.info.run_id, knobs, offset=0.0)
    return uri, experiment_id, parents


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """`python -m tools.ui` (what `make ui` runs) on the built store, on a free port of 127.0.0.1:
    (the runs-view URL it printed, base url, experiment id, {key: parent run id})."""
    root = tmp_path_factory.mktemp("browser-store")
    _, experiment_id, parents = build_store(root)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(root / "ui.log", "w")
    # Its own process group: teardown stops tools.ui and the mlflow server it started, together.
    ui = subprocess.Popen(
        [sys.executable, "-m", "tools.ui", "--root", str(root), "--port", str(port)],
        cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
    printed: list[str] = []
    # Keep draining its stdout (the server logs there too) so a full pipe never blocks it.
    threading.Thread(target=lambda: printed.extend(ui.stdout), daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while not any("#/experiments/" in line for line in printed):
            output = "".join(printed)
            log_text = (root / "ui.log").read_text()
            assert ui.poll() is None, f"tools.ui exited {ui.returncode}:\n{output}{log_text}"
            assert time.monotonic() < deadline, f"tools.ui printed no runs-view URL in 120 s:\n{output}"
            time.sleep(0.5)
        assert requests.get(f"{base}/health", timeout=5).ok
        url = next(line.strip() for line in printed if "#/experiments/" in line)
        yield url, base, experiment_id, parents
    finally:
        try:
            os.killpg(ui.pid, signal.SIGTERM)
            ui.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(ui.pid, signal.SIGKILL)
            ui.wait()
        log.close()


@pytest.fixture
def browser(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1600,1000", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for_text(driver, texts: list[str], shot: Path):
    """Wait until every one of `texts` is in the page's visible text; screenshot either way."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def shown(d):
        body = d.find_element(By.TAG_NAME, "body").text
        return all(t in body for t in texts)

    try:
        WebDriverWait(driver, RENDER_TIMEOUT, poll_frequency=0.5).until(shown)
    except TimeoutException:
        driver.save_screenshot(str(shot))
        body = driver.find_element(By.TAG_NAME, "body").text
        missing = [t for t in texts if t not in body]
        pytest.fail(f"not shown within {RENDER_TIMEOUT} s: {missing}; screenshot {shot}; "
                    f"page text starts: {body[:500]!r}")
    driver.save_screenshot(str(shot))


def test_make_ui_url_opens_the_runs_view_and_a_run_page_shows_its_metrics(ui, browser, tmp_path):
    from selenium.webdriver.common.by import By

    url, base, experiment_id, parents = ui
    assert url == runs_view_url(base, experiment_id)
    browser.get(url)
    wait_for_text(browser, list(parents), tmp_path / "runs-view.png")
    assert "/runs?" in browser.current_url and "workflowType=machine_learning" in browser.current_url

    key = "spiral_hard_relu_2x100"
    browser.find_element(By.LINK_TEXT, key).click()
    wait_for_text(browser, ["test/accuracy"], tmp_path / "run-page.png")
    assert browser.current_url.split("?")[0].endswith(f"/runs/{parents[key]}")
