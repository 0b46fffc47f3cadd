"""What a user sees after `make run`: the real `mlflow ui` that `make ui` starts (tools.ui), in
headless Chromium at the URL it prints, and DVC's `dvc plots show` page, both over what a real
pipeline run wrote (3 experiments, 3 epochs, 2 seeds).

Screenshots land in the module's tmp dir (`pytest --basetemp=DIR` keeps them somewhere known).
The pages are reached by URL, as the links inside the app lead to them; Chromium shares one
browser between the tests, so each page is a route change, not a reload."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
import requests
from sandbox import ROOT, env, make_project, repro, run

from tools.ui import runs_view_url

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
EXPERIMENT_NAME = "classification-intuition"
# params.yaml's order; hidden layers 0, 1 and 2: parallel coordinates have something to show.
EXPERIMENTS = ["linear_perceptron", "bands_sigmoid_1x10", "spiral_hard_relu_2x100"]
SHOWN = "spiral_hard_relu_2x100"  # the experiment whose run and model pages are opened
EPOCHS, SEEDS = 3, 2
# A small map on SHOWN: its runs are one parent and a child per point (no seed runs).
SWEEP = "depth_by_width"
SWEEPS = {SWEEP: {"base": SHOWN, "axes": {"depth": [1, 2], "width": [4, 8]}}}
POINTS = 4
RENDER_TIMEOUT = 60  # s: the React app is slow to render on 2 cores

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists() or not Path(CHROMEDRIVER).exists(),
    reason="needs Debian's chromium and chromium-driver (/usr/bin/chromium, chromedriver): "
           "apt-get install chromium chromium-driver",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The project cut to EXPERIMENTS, reproduced: mlflow.db, mlruns/, results/."""
    project = make_project(tmp_path_factory.mktemp("browser"), epochs=EPOCHS, experiments=EXPERIMENTS, seeds=SEEDS,
                           sweeps=SWEEPS)
    repro(project, timeout=600)
    return project


@pytest.fixture(scope="module")
def store(project):
    """What the pages should show, from the store itself: experiment id, parent run ids by
    experiment, and the logged model of SHOWN."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    experiment_id = client.get_experiment_by_name(EXPERIMENT_NAME).experiment_id
    parents = {r.info.run_name: r.info.run_id
               for r in client.search_runs([experiment_id], "tags.role = 'parent'", max_results=100)}
    models = [m for m in client.search_logged_models([experiment_id]) if m.source_run_id == parents[SHOWN]]
    assert sorted(parents) == sorted(EXPERIMENTS) and len(models) == 1
    return experiment_id, parents, models[0]


@pytest.fixture(scope="module")
def ui(project):
    """`python -m tools.ui` (what `make ui` runs) on the project, on a free port of 127.0.0.1:
    (the runs-view URL it printed, base url)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = project.parent / "ui.log"
    log = open(log_path, "w")
    # Its own process group: teardown stops tools.ui and the mlflow server it started, together.
    ui = subprocess.Popen(
        [sys.executable, "-m", "tools.ui", "--root", str(project), "--port", str(port)],
        cwd=ROOT, env=env(), stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True)
    printed: list[str] = []
    # Keep draining its stdout (the server logs there too) so a full pipe never blocks it.
    threading.Thread(target=lambda: printed.extend(ui.stdout), daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while not any("#/experiments/" in line for line in printed):
            assert ui.poll() is None, f"tools.ui exited {ui.returncode}:\n{''.join(printed)}{log_path.read_text()}"
            assert time.monotonic() < deadline, f"tools.ui printed no runs-view URL in 120 s:\n{''.join(printed)}"
            time.sleep(0.5)
        assert requests.get(f"{base}/health", timeout=5).ok
        yield next(line.strip() for line in printed if "#/experiments/" in line), base
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


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def chromium(profile: Path, *flags: str):
    """Debian's headless Chromium through its chromedriver, with its own profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--window-size=1600,1000", f"--user-data-dir={profile}", *flags):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """Chromium with no network: every request goes to a proxy that refuses (loopback port 9,
    loopback included), and DevTools' network emulation is offline too. file:// pages still load."""
    driver = chromium(tmp_path_factory.mktemp("chromium-offline"), "--proxy-server=127.0.0.1:9",
                      "--proxy-bypass-list=<-loopback>")
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.emulateNetworkConditions",
                               {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        yield driver
    finally:
        driver.quit()


def page_text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def wait_until(driver, shown, what: str, shot: Path):
    """Wait until `shown(driver)` is truthy and return it; screenshot either way."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        value = WebDriverWait(driver, RENDER_TIMEOUT, poll_frequency=0.3).until(shown)
    except TimeoutException:
        driver.save_screenshot(str(shot))
        pytest.fail(f"not shown within {RENDER_TIMEOUT} s: {what}; screenshot {shot}; "
                    f"page text starts: {page_text(driver)[:600]!r}")
    driver.save_screenshot(str(shot))
    return value


def wait_for_text(driver, texts: list[str], shot: Path) -> str:
    """Wait until every one of `texts` is in the page's visible text; returns that text."""
    def shown(d):
        body = page_text(d)
        return body if all(t in body for t in texts) else None

    return wait_until(driver, shown, f"{texts}", shot)


def click_text(driver, text: str) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, f"//*[normalize-space(text())={text!r}]").click()


def app_url(base: str, route: str) -> str:
    """A page of the app in its Model training mode, as the URL `make ui` prints."""
    return f"{base}/#/{route}?workflowType=machine_learning"


# ag-grid's header and row cells by column id, in on-screen order (its DOM order is not).
GRID = r"""
const header = [...document.querySelectorAll('.ag-header-cell')]
  .map(h => ({id: h.getAttribute('col-id'), text: h.innerText.trim(), x: h.getBoundingClientRect().left}))
  .sort((a, b) => a.x - b.x);
const rows = {};
for (const r of document.querySelectorAll('.ag-row')) {
  const i = +r.getAttribute('row-index');
  rows[i] = rows[i] || {};
  for (const c of r.querySelectorAll('.ag-cell')) rows[i][c.getAttribute('col-id')] = c.innerText.trim();
}
return JSON.stringify({header, rows: Object.keys(rows).sort((a, b) => a - b).map(k => rows[k])});
"""
RUN_NAME, ACCURACY = "attributes.`Run Name`", "metrics.`test/accuracy`"


def test_make_ui_url_opens_every_experiment_sorted_by_test_accuracy(ui, store, project, browser, shots):
    """The printed link: one row per experiment and sweep (no seeds, no points), all on the first
    page, best mean test accuracy first, that column visible with 4-decimal values."""
    from mlflow.tracking import MlflowClient

    url, base = ui
    experiment_id, parents, _ = store
    assert url == runs_view_url(base, experiment_id)
    browser.get(url)
    wait_for_text(browser, EXPERIMENTS + [f"sweep {SWEEP}", f"{len(EXPERIMENTS) + 1} matching runs", "test/accuracy"],
                  shots / "runs-view.png")
    assert "Load more" not in page_text(browser)
    grid = json.loads(browser.execute_script(GRID))
    header = [h["text"] for h in grid["header"] if h["text"]]
    assert header[:3] == ["Run Name", "Created", "test/accuracy"] or header[:2] == ["Run Name", "test/accuracy"], header
    assert "test/accuracy_sd" in header, header  # (ag-grid renders only the columns in view)
    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    accuracy = {name: client.get_run(run_id).data.metrics["test/accuracy"] for name, run_id in parents.items()}
    shown = [(row[RUN_NAME].split("\n")[-1].strip(), row.get(ACCURACY, "")) for row in grid["rows"]]
    best_first = sorted(accuracy, key=lambda name: -accuracy[name])
    assert [name for name, _ in shown] == best_first + [f"sweep {SWEEP}"], shown
    for name, cell in shown[:-1]:
        assert cell == f"{accuracy[name]:g}" and len(cell) <= 6, shown  # e.g. 0.6433: what 3 test points tell apart


def test_a_run_page_shows_its_curves_first_and_its_figures(ui, store, browser, shots):
    _, base = ui
    experiment_id, parents, _ = store
    browser.get(app_url(base, f"experiments/{experiment_id}/runs/{parents[SHOWN]}"))
    wait_for_text(browser, [SHOWN, "Metrics (", "test/accuracy", "Parameters (", "hidden_layers"],
                  shots / "run-overview.png")

    # Model metrics: one chart section per metric group, in the UI's order; the curves lead.
    click_text(browser, "Model metrics")
    groups = wait_until(
        browser, lambda d: (g := re.findall(r"^([a-z_]+)\n\(\d+\)$", (t := page_text(d)), re.M)) and "val" in g
        and "Step" in t and g,  # "Step": the first curves are drawn
        "the chart sections epoch ... val", shots / "run-model-metrics.png")
    assert groups[0] == "epoch", groups
    assert {"epoch", "test", "train", "val", "seeds"} <= set(groups)

    # Artifacts: the figures, one of them previewed as an image.
    click_text(browser, "Artifacts")
    wait_for_text(browser, ["figures", "metrics.json", "seeds.csv", "history.csv"], shots / "run-artifacts.png")
    click_text(browser, "figures")
    wait_for_text(browser, ["decision_regions.png", "training_curves.png", "seed_agreement.png"],
                  shots / "run-artifacts.png")
    click_text(browser, "training_curves.png")
    # The preview is an <img> of a blob: URL; the figure is the one image of a figure's size.
    wait_until(browser, lambda d: d.execute_script(
        "return Array.from(document.images).some(i => i.complete && i.naturalWidth >= 400"
        " && i.getBoundingClientRect().width > 0)"), "the training_curves.png preview", shots / "run-figure.png")


def test_an_image_grid_plays_the_boundary_evolution_with_its_step_slider(ui, store, browser, shots):
    """README: Model metrics -> Add chart -> Image grid -> Images: evolution; the frame at the
    slider's step is the snapshot logged with step = epoch (epoch 0 first)."""
    from selenium.webdriver.common.by import By

    _, base = ui
    experiment_id, parents, _ = store
    browser.get(app_url(base, f"experiments/{experiment_id}/runs/{parents[SHOWN]}/model-metrics"))
    wait_for_text(browser, ["Add chart", "epoch"], shots / "evolution-run.png")
    browser.find_elements(By.XPATH, "//*[normalize-space(text())='Add chart']")[0].click()
    wait_until(browser, lambda d: [o for o in d.find_elements(By.XPATH, "//*[@role='menuitem']")
                                   if o.text == "Image grid"], "the Image grid chart type", shots / "evolution-menu.png")[0].click()
    wait_for_text(browser, ["Add new chart", "Images", "Step"], shots / "evolution-dialog.png")
    browser.find_elements(By.XPATH, "//*[normalize-space(text())='Images']")[-1].click()
    wait_until(browser, lambda d: [o for o in d.find_elements(By.XPATH, "//*[@role='option']")
                                   if o.text == "evolution"], "the image key 'evolution'", shots / "evolution-keys.png")[0].click()
    # The first frame: a GIF frame's header says which epoch of how many.
    wait_until(browser, lambda d: d.execute_script(
        "return Array.from(document.images).some(i => i.complete && i.naturalWidth > 100"
        " && i.getBoundingClientRect().width > 0)"), "an evolution frame", shots / "evolution-frame.png")
    assert "Step" in page_text(browser)


def parallel_coordinates(browser, params: list[str], shot: Path) -> list[str]:
    """On the Compare page: Clear All, choose `params` and test/accuracy; the plot's axis titles."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    click_text(browser, "Clear All")
    boxes = browser.find_elements(By.CSS_SELECTOR, "input[role='combobox']")[:2]
    for box, names in zip(boxes, (params, ["test/accuracy"])):
        for name in names:
            box.click()
            box.send_keys(name)
            wait_until(browser, lambda d, n=name: d.find_elements(By.XPATH, f"//*[@title={n!r}]"),
                       f"the option {name}", shot.with_name(shot.name + "-choose.png"))
            box.send_keys(Keys.ENTER)
        box.send_keys(Keys.ESCAPE)
    return wait_until(
        browser, lambda d: (a := d.execute_script(
            "return Array.from(document.querySelectorAll('svg text.axis-title')).map(e => e.textContent)"))
        and len(a) == len(params) + 1 and a, f"{len(params) + 1} parallel-coordinates axes",
        shot.with_name(shot.name + "-parallel-coordinates.png"))


def test_compare_view_of_three_runs_compares_params_by_role(ui, store, browser, shots):
    _, base = ui
    experiment_id, parents, _ = store
    runs = json.dumps([parents[key] for key in EXPERIMENTS], separators=(",", ":"))
    browser.get(f"{base}/#/compare-runs?runs={runs}&experiments={json.dumps([experiment_id])}"
                "&workflowType=machine_learning")
    roles = ["hidden_layers", "hidden_units", "hidden_activation", "output_units", "output_activation",
             "optimizer", "learning_rate", "inputs", "n_params"]
    wait_for_text(browser, [f"Comparing {len(EXPERIMENTS)} Runs", "Parallel Coordinates Plot", *roles, *EXPERIMENTS],
                  shots / "compare.png")

    # Parallel coordinates, as docs/mlflow-ui.md says: three params by role against test accuracy.
    axes = parallel_coordinates(browser, ["hidden_layers", "hidden_units", "learning_rate"], shots / "compare")
    assert axes == ["hidden_layers", "hidden_units", "learning_rate", "test/accuracy"]


def test_a_sweeps_points_filter_and_compare_in_parallel_coordinates(ui, store, browser, shots):
    """README: filter the runs view on `tags.sweep = '<sweep>'`; Compare its points; parallel
    coordinates over the swept params against test/accuracy."""
    from mlflow.tracking import MlflowClient

    url, base = ui
    experiment_id, _, _ = store
    client = MlflowClient(f"{base}")
    points = client.search_runs([experiment_id], f"tags.sweep = '{SWEEP}' and tags.role = 'point'")
    assert len(points) == POINTS
    # The runs view keeps its filter in the URL: a link to a sweep's runs (docs/mlflow-ui.md).
    browser.get(f"{url}&searchFilter={quote(f'tags.sweep = {SWEEP!r}')}")
    wait_for_text(browser, [f"sweep {SWEEP}", f"{1 + POINTS} matching runs"], shots / "sweep-filtered.png")
    assert "linear_perceptron" not in page_text(browser)
    names = [run.info.run_name for run in points]

    ids = json.dumps([run.info.run_id for run in points], separators=(",", ":"))
    browser.get(f"{base}/#/compare-runs?runs={ids}&experiments={json.dumps([experiment_id])}"
                "&workflowType=machine_learning")
    wait_for_text(browser, [f"Comparing {POINTS} Runs", "Parallel Coordinates Plot", *names], shots / "sweep-compare.png")
    axes = parallel_coordinates(browser, ["hidden_layers", "hidden_units"], shots / "sweep")
    assert axes == ["hidden_layers", "hidden_units", "test/accuracy"]


def test_logged_model_page_is_named_after_its_experiment_with_metrics_and_dataset(ui, store, project, browser, shots):
    _, base = ui
    experiment_id, parents, model = store
    assert model.name == SHOWN
    browser.get(app_url(base, f"experiments/{experiment_id}/models/{model.model_id}"))
    test_rows = "spiral_hard: test.csv"
    text = wait_for_text(browser, [SHOWN, "Metrics (", "test/accuracy", "Datasets used", f"{test_rows} (#", "Source run",
                                   parents[SHOWN], "hidden_layers"], shots / "logged-model.png")
    # The model's own test accuracy (its seed's, not the mean over seeds), once, tied to the test rows.
    rep = json.loads((project / "results" / SHOWN / "metrics.json").read_text())["representative_seed"]
    own = pd.read_csv(project / "results" / SHOWN / "seeds.csv").set_index("seed").loc[rep, "test.accuracy"]
    shown = re.findall(rf"^test/accuracy\n{re.escape(test_rows)} \(#[0-9a-f]+\)\n{SHOWN} seed {rep}\n([0-9.]+)$",
                       text, re.M)  # metric, dataset, the run it was measured in (the seed's), value
    assert len(shown) == 1 and float(shown[0]) == pytest.approx(own, abs=1e-4), text[:2000]
    assert text.count("\ntest/accuracy\n") == 1, text[:2000]


# --- DVC's page ------------------------------------------------------------------------------------


def plots_page(project: Path, out: Path, *targets: str) -> tuple[list[str], dict[str, dict]]:
    """`dvc plots show` into `out`: (what the page holds in order: chart ids and image paths,
    {chart id: its Vega-Lite spec})."""
    run(project, "dvc", "plots", "show", *targets, "-o", str(out))
    html = (out / "index.html").read_text()
    specs = {chart: json.loads(spec) for spec, chart in
             re.findall(r"var spec = (.*);\n\s*vegaEmbed\('#([^']+)'", html)}
    order = [m.group(1) or m.group(2) for m in
             re.finditer(r'<div id = "([^"]+)"|<img src="static/workspace_([^"]+)"', html)]
    return order, specs


def test_dvc_plots_page_draws_each_experiments_curves_and_confusion_counts(project, tmp_path):
    order, specs = plots_page(project, tmp_path / "all")
    # Charts only (figures/ are outs, not plots: report/site/ shows them), experiment by experiment,
    # then the sweep's.
    charts = [f"results_{key}_{name}" for key in EXPERIMENTS for name in ("curves_csv", "test_predictions_csv")]
    chart = f"results_sweeps_{SWEEP}_accuracy_csv"
    assert order == charts + [chart]
    lines = pd.DataFrame(specs[chart]["data"]["values"])
    assert set(lines["series"]) == {"width=4", "width=8"} and set(lines["axis"]) == {"depth"}

    curves = specs[f"results_{SHOWN}_curves_csv"]
    assert curves["title"] == f"{SHOWN} training curves (mean over seeds)"
    assert curves["transform"][0]["fold"] == ["loss", "val_loss", "accuracy", "val_accuracy"]
    expected = pd.read_csv(project / "results" / SHOWN / "curves.csv")
    drawn = pd.DataFrame(curves["data"]["values"])[list(expected.columns)].astype(float)
    assert drawn["epoch"].tolist() == list(range(EPOCHS + 1))
    pd.testing.assert_frame_equal(drawn, expected.astype(float))
    # curves.csv is the mean over seeds of history.csv, the same table the MLflow run's epoch/* holds.
    history = pd.read_csv(project / "models" / SHOWN / "history.csv")
    assert expected["val_accuracy"].tolist() == pytest.approx(
        history.groupby("epoch")["val_accuracy"].mean().tolist(), rel=1e-5)

    confusion = specs[f"results_{SHOWN}_test_predictions_csv"]
    assert confusion["params"][0] == {"name": "showValues", "value": True, "bind": {"input": "checkbox"}}
    assert len(confusion["data"]["values"]) == len(pd.read_csv(project / "results" / SHOWN / "test_predictions.csv"))

    # One experiment on its own page, as the README shows.
    alone, _ = plots_page(project, tmp_path / "one", f"results/{SHOWN}/.*")
    assert alone == [f"results_{SHOWN}_curves_csv", f"results_{SHOWN}_test_predictions_csv"]


# --- The report site (report/site/, the report stage), opened from disk with the network off ------


def open_page(driver, url: str, shot: Path) -> dict:
    """Load `url`, wait until every image has loaded or failed; returns what the page shows: its
    broken images, its console errors, the requests it tried beyond file://."""
    driver.get(url)
    # Images below the fold load as they come into view (loading=lazy): load them all now.
    driver.execute_script("document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')")
    WAIT_IMAGES = "return [...document.images].every(i => i.complete)"
    deadline = time.monotonic() + RENDER_TIMEOUT
    while not driver.execute_script(WAIT_IMAGES):
        assert time.monotonic() < deadline, f"{url}: images still loading after {RENDER_TIMEOUT} s"
        time.sleep(0.2)
    driver.save_screenshot(str(shot))
    return {
        "broken": driver.execute_script("return [...document.images].filter(i => !i.naturalWidth).map(i => i.src)"),
        "errors": [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"],
        "remote": driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('file:'))"),
    }


FIRST_PAGE_BUDGET = 2_000_000  # bytes: the overview, with the gallery (README's Seeing the results)


def test_report_site_every_page_loads_offline_with_every_image(project, offline, shots):
    site = project / "report" / "site"
    pages = sorted(site.rglob("*.html"))
    names = {p.relative_to(site).as_posix() for p in pages}
    assert {"index.html", "leaderboard.html", "compare.html", "sweeps.html"} <= names
    assert {f"experiments/{key}.html" for key in EXPERIMENTS} <= names
    for page in pages:
        seen = open_page(offline, page.as_uri(), shots / f"site-{page.stem}.png")
        assert seen == {"broken": [], "errors": [], "remote": []}, page
    offline.get((site / "index.html").as_uri())
    text = page_text(offline)
    # The first page is light: its HTML, style, script and images within FIRST_PAGE_BUDGET.
    loaded = offline.execute_script(
        "return [...document.images].map(i => i.src).concat([...document.scripts].map(s => s.src).filter(s => s),"
        " [...document.querySelectorAll('link[rel=stylesheet]')].map(l => l.href), [location.href])")
    weight = sum(Path(requests.utils.unquote(url.removeprefix("file://"))).stat().st_size for url in set(loaded))
    assert weight <= FIRST_PAGE_BUDGET, f"the overview loads {weight:,} bytes"
    assert all(f in text for f in yaml_findings(project)), "every finding is on the overview"
    assert all(key in text for key in EXPERIMENTS), "every experiment is linked from the overview"


def yaml_findings(project: Path) -> list[str]:
    import yaml

    return [f["id"] for f in yaml.safe_load((project / "findings.yaml").read_text())["findings"]]


def test_report_site_leaderboard_sorts_by_a_column(project, offline, shots):
    from selenium.webdriver.common.by import By

    open_page(offline, (project / "report" / "site" / "leaderboard.html").as_uri(), shots / "site-board.png")
    header = offline.find_element(By.XPATH, "//table[@id='leaderboard']//th[normalize-space(text())='test acc']")
    column = offline.execute_script("return arguments[0].cellIndex", header)
    read = ("return [...document.querySelectorAll('#leaderboard tbody tr')]"
            f".map(r => [r.cells[0].innerText.trim(), +r.cells[{column}].dataset.v])")
    header.click()
    down = offline.execute_script(read)
    header.click()
    up = offline.execute_script(read)
    assert sorted(k for k, _ in down) == sorted(EXPERIMENTS)
    assert [v for _, v in down] == sorted((v for _, v in down), reverse=True)
    assert [v for _, v in up] == sorted(v for _, v in up)
    assert [k for k, _ in up] != [k for k, _ in down] or len({v for _, v in up}) == 1


def frame_shown(driver, selector: str) -> list[str]:
    return driver.execute_script(f"return [...document.querySelectorAll({selector!r})].map(i => i.dataset.frame)")


def test_report_site_epoch_slider_steps_through_the_training(project, offline, shots):
    from selenium.webdriver.common.by import By

    site = project / "report" / "site"
    open_page(offline, (site / "experiments" / f"{SHOWN}.html").as_uri(), shots / "site-experiment.png")
    epochs = json.loads((project / "results" / SHOWN / "evolution.json").read_text())["epochs"]
    assert epochs == list(range(EPOCHS + 1))
    label = offline.find_element(By.CSS_SELECTOR, ".player .label")
    assert frame_shown(offline, ".player .frame img") == [str(len(epochs) - 1)] and f"epoch {EPOCHS} " in label.text
    offline.execute_script("const r = document.querySelector('.player input[type=range]'); r.value = 0;"
                           "r.dispatchEvent(new Event('input'))")
    assert frame_shown(offline, ".player .frame img") == ["0"] and label.text.startswith("epoch 0 ")
    offline.find_element(By.CSS_SELECTOR, '.player [data-act="step"]').click()
    assert frame_shown(offline, ".player .frame img") == ["1"]
    shift = offline.execute_script("return getComputedStyle(document.querySelector('.player .frame img')).marginTop")
    height = json.loads((project / "results" / SHOWN / "evolution.json").read_text())["frame_height"]
    assert shift == f"-{height}px", "the second frame of the strip is the one in the window"
    run_id = json.loads((project / "results" / SHOWN / "mlflow_run.json").read_text())["run_id"]
    assert run_id in page_text(offline)


def test_report_site_compare_page_from_its_url(project, offline, shots):
    from selenium.webdriver.common.by import By

    chosen = [SHOWN, "bands_sigmoid_1x10"]
    url = (project / "report" / "site" / "compare.html").as_uri() + "?e=" + ",".join(chosen)
    open_page(offline, url, shots / "site-compare.png")
    panels = offline.execute_script("return [...document.querySelectorAll('#panels .panel')].map(p => p.dataset.key)")
    assert panels == chosen
    ticked = offline.execute_script("return [...document.querySelectorAll('#picker input:checked')].map(b => b.value)")
    assert sorted(ticked) == sorted(chosen)
    lines = offline.execute_script("return [...document.querySelectorAll('#charts svg')].map(s => s.querySelectorAll('polyline.curve').length)")
    assert lines and all(n == len(chosen) for n in lines)
    offline.execute_script("const r = document.getElementById('epoch'); r.value = 0; r.dispatchEvent(new Event('input'))")
    assert frame_shown(offline, "#panels .frame img") == ["0", "0"], "one slider moves every panel"
    # Ticking a third experiment puts it in the address, to share.
    offline.find_element(By.CSS_SELECTOR, "#picker input[value='linear_perceptron']").click()
    assert offline.current_url.endswith("?e=" + ",".join(k for k in EXPERIMENTS if k in chosen + ["linear_perceptron"]))
    assert len(offline.find_elements(By.CSS_SELECTOR, "#panels .panel")) == 3


def test_report_site_sweep_cell_opens_its_point(project, offline, shots):
    from selenium.webdriver.common.by import By

    open_page(offline, (project / "report" / "site" / "sweeps.html").as_uri(), shots / "site-sweeps.png")
    cells = offline.find_elements(By.CSS_SELECTOR, f"#{SWEEP} table.map td.cell a")
    assert len(cells) == POINTS
    cells[-1].click()
    target = offline.execute_script("return document.querySelector(':target').id")
    assert target == f"{SWEEP}:depth=2,width=8"
    row = offline.execute_script("return document.querySelector(':target').cells[0].innerText")
    assert row == "depth=2,width=8"
