"""DVC's plots page works offline: .dvc/plots/offline.html is what tools.offline_plots writes from
the pinned vl-convert-python, and a real `dvc plots show` in a throwaway repo with the project's
.dvc/ (its config names that template) draws every chart in headless Chromium with the network
off, in each of the project's templates and DVC's default `linear`."""

from __future__ import annotations

import math
import re
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from sandbox import ROOT, run
from test_browser import offline  # noqa: F401 (the fixture: Chromium with the network off)
from test_browser import pytestmark as needs_chromium  # skipped the same way without Chromium

from tools import offline_plots

ROWS = 20
DRAW_TIMEOUT = 30  # s
# One chart per template: (file, its columns and rows, its top-level dvc.yaml plot definition).
PLOTS = {
    "curves.csv": (["epoch", "loss", "accuracy", "val_loss", "val_accuracy"],
                   [[e, 1 / (e + 1), 1 - 0.5 / (e + 1), 1.1 / (e + 1), 1 - 0.6 / (e + 1)] for e in range(ROWS)],
                   {"template": "learning_curves", "x": "epoch", "title": "curves"}),
    "predictions.csv": (["actual", "predicted"], [[i % 2, (i // 3) % 2] for i in range(ROWS)],
                        {"template": "confusion_counts", "x": "actual", "y": "predicted"}),
    "accuracy.csv": (["x", "series", "test_accuracy", "test_accuracy_sd", "axis"],
                     [[x, f"width={w}", 0.5 + x / 40 + w / 100, 0.02, "depth"] for w in (4, 8) for x in range(ROWS // 2)],
                     {"template": "sweep_lines", "x": "x", "y": "test_accuracy"}),
    "loss.csv": (["step", "loss"], [[s, math.exp(-s / 5)] for s in range(ROWS)],
                 {"template": "linear", "x": "step", "y": "loss"}),  # DVC's own default template
}
# What each chart drew: its data marks (Vega's `role-mark` groups: lines, cells, bands, points; not
# axes, grid or titles). Vega-Embed 7 renders SVG by default: count the marks' non-empty paths. On a
# canvas (Vega-Embed 6, or a renderer option): count coloured pixels, as axes and text are grey.
DRAWN = """
return arguments[0].map(id => {
  const chart = document.getElementById(id);
  const svg = chart && chart.querySelector('svg.marks');
  if (svg) return Array.from(svg.querySelectorAll('.role-mark path')).filter(p => p.getAttribute('d')).length;
  const canvas = chart && chart.querySelector('canvas');
  if (!canvas || !canvas.width) return 0;
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let coloured = 0;
  for (let i = 0; i < data.length; i += 4)
    if (data[i + 3] > 128 && Math.max(data[i], data[i + 1], data[i + 2]) - Math.min(data[i], data[i + 1], data[i + 2]) > 60)
      coloured++;
  return coloured > 100 ? coloured : 0;
});
"""


def test_committed_template_is_what_the_tool_writes():
    committed = offline_plots.OUT.read_text(encoding="utf-8")
    assert committed == offline_plots.template(), "stale: run `python -m tools.offline_plots` and commit it"
    assert "{plot_divs}" in committed and "{scripts}" not in committed  # no CDN tags from DVC


def plots_repo(repo: Path) -> Path:
    """A git + DVC repo with the project's .dvc/config and .dvc/plots/, a CSV per entry of PLOTS
    and a dvc.yaml declaring them as top-level plots."""
    repo.mkdir()
    run(repo, "git", "init", "-q")
    run(repo, sys.executable, "-m", "dvc", "init", "-q", DVC_NO_ANALYTICS="1")
    shutil.copy2(ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    shutil.copytree(ROOT / ".dvc" / "plots", repo / ".dvc" / "plots")
    for name, (columns, rows, _) in PLOTS.items():
        (repo / name).write_text("\n".join(",".join(map(str, row)) for row in [columns, *rows]) + "\n")
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"plots": [{name: spec} for name, (_, _, spec) in PLOTS.items()]}))
    return repo


@needs_chromium
def test_dvc_plots_show_draws_every_chart_offline(tmp_path, offline):
    from selenium.webdriver.support.ui import WebDriverWait

    repo = plots_repo(tmp_path / "repo")
    run(repo, sys.executable, "-m", "dvc", "plots", "show", "-o", str(tmp_path / "plots"), DVC_NO_ANALYTICS="1")
    page = tmp_path / "plots" / "index.html"
    html = page.read_text(encoding="utf-8")
    assert "<title>DVC plots (offline)</title>" in html, "dvc did not use .dvc/config's plots.html_template"
    assert not re.search(r"""<script[^>]*\ssrc\s*=\s*["']?(https?:)?//""", html, re.I), "a script from the network"
    charts = re.findall(r"vegaEmbed\('#([^']+)'", html)
    assert len(charts) == len(PLOTS)

    driver = offline
    driver.get(page.as_uri())
    marks: list[int] = []

    def drawn(d) -> bool:
        marks[:] = d.execute_script(DRAWN, charts)
        return min(marks) > 0

    try:
        WebDriverWait(driver, DRAW_TIMEOUT).until(drawn)
    except Exception:
        driver.save_screenshot(str(tmp_path / "offline.png"))
        raise AssertionError(f"charts not drawn in {DRAW_TIMEOUT} s: marks {dict(zip(charts, marks))}; "
                             f"console: {driver.get_log('browser')}; screenshot {tmp_path / 'offline.png'}")
    errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors

    # The network really was off: the CDN DVC's own page loads Vega from is unreachable.
    fetched = driver.execute_async_script(
        "const done = arguments[0];"
        "fetch('https://cdn.jsdelivr.net/npm/vega@5.20.2').then(() => done('fetched'), e => done(String(e)));")
    assert fetched != "fetched", fetched
