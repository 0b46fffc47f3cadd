"""intuition.site: the offline report's pages from synthetic data (tests/test_browser.py opens the
real pipeline's site in Chromium with the network off)."""

from __future__ import annotations

import json
import re

import pandas as pd

from intuition import site


def view(key: str, dataset: str, accuracy: float, status: str = "ok") -> site.ExperimentView:
    epochs = [0, 1, 2, 3]
    return site.ExperimentView(
        key=key, dataset=dataset, architecture="relu 8 → sigmoid 1", summary_text="relu 8 → sigmoid 1",
        inputs="raw", optimizer="adam", learning_rate=0.01, parameters=33,
        headline={"test_accuracy": accuracy, "test_accuracy_sd": 0.01, "sharpness": 0.9, "agreement": 0.95,
                  "learned": "2/2" if status != "failed" else "1/2", "status": status},
        metrics={"seeds": 2, "learned_seeds": 2 if status != "failed" else 1,
                 "val": {"accuracy": {"mean": accuracy, "sd": 0.01}}, "test": {"accuracy": {"mean": accuracy, "sd": 0.01}}},
        seeds=pd.DataFrame({"seed": [0, 1], "test.accuracy": [accuracy - 0.01, accuracy + 0.01]}),
        curves=pd.DataFrame({"epoch": epochs, "loss": [1.0, 0.5, float("nan"), 0.2], "val_loss": [1.0, 0.6, 0.4, 0.3],
                             "accuracy": [0.5, 0.7, 0.8, 0.9], "val_accuracy": [0.5, 0.6, 0.8, 0.85]}),
        evolution={"seed": 1, "frame_height": 10, "frame_width": 8, "epochs": epochs, "val_accuracy": [0.5, None, 0.8, 0.85]},
        mlflow_run={"experiment": "e", "experiment_id": "1", "run_id": "abc123"},
        figures=("architecture", "decision_regions", "zzz_extra"))


def sweep() -> site.SweepView:
    rows = [{"point": f"depth={d},width={w},inputs={i}", "depth": d, "width": w, "inputs": i,
             "test_accuracy": 0.5 + 0.1 * d, "test_accuracy_sd": 0.01, "learned_seeds": 1 if (d, w) == (2, 8) else 2,
             "seeds": 2} for i in ("raw", "standardized") for d in (1, 2) for w in (4, 8)]
    return site.SweepView("s", "a", {"depth": [1, 2], "width": [4, 8], "inputs": ["raw", "standardized"]},
                          {"points": 8, "best_point": rows[-1]["point"], "learned_in_every_seed": 6,
                           "test_accuracy": {"best": 0.7, "worst": 0.6}}, pd.DataFrame(rows), ("regions", "phase_test_accuracy_depth_x_width"))


def test_a_sweep_map_has_a_table_per_value_of_the_other_axes_with_linked_cells():
    maps = site.sweep_maps(sweep())
    assert [m["title"] for m in maps] == ["inputs = raw", "inputs = standardized"]
    first = maps[0]
    assert (first["rows_axis"], first["cols_axis"], first["columns"]) == ("depth", "width", [4, 8])
    assert [row for row, _ in first["grid"]] == [1, 2]
    cell = first["grid"][1][1][1]
    assert cell["point"] == "depth=2,width=8,inputs=raw" and cell["failed"] and cell["learned"] == "1/2"
    assert not first["grid"][0][1][0]["failed"]


def test_pages_link_every_experiment_and_carry_their_data_without_network():
    built = site.Site(title="T", seeds=2, experiments={"a": view("a", "xor", 0.95), "b": view("b", "circle", 0.4, "failed")},
                      datasets=["xor", "circle"], outcomes=[], draws={}, sweeps={"s": sweep()})
    pages = site.pages(built)
    assert {"index.html", "leaderboard.html", "compare.html", "sweeps.html", "experiments/a.html",
            "experiments/b.html", "data.js", "site.css", "site.js"} == set(pages)
    data = json.loads(pages["data.js"].removeprefix("window.SITE_DATA = ").rstrip(";\n"))
    assert data["a"]["frames"] == "../../results/a/evolution_frames.png"
    assert data["a"]["curves"]["loss"] == [1.0, 0.5, None, 0.2], "NaN is a gap, not invalid JSON"
    experiment = pages["experiments/a.html"]
    assert 'src="../../../results/a/figures/decision_regions.png"' in experiment and "abc123" in experiment
    assert experiment.index("decision_regions.png") < experiment.index("architecture.png") < experiment.index("zzz_extra.png")
    assert "1/2 seeds FAILED TO LEARN" in pages["leaderboard.html"]
    sweeps = pages["sweeps.html"]
    assert sweeps.index("phase_test_accuracy_depth_x_width.png") < sweeps.index("regions.png"), "the accuracy map first"
    assert 'id="s:depth=2,width=8,inputs=raw"' in sweeps and 'href="#s:depth=2,width=8,inputs=raw"' in sweeps
    for name, text in pages.items():
        assert not re.search(r'(src|href)="(https?:)?//', text.replace('href="http://127.0.0.1:5000', "")), name
