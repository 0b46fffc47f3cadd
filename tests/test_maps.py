"""The sweep figures build from a synthetic sweep (no training), save to PNG, and put each point's
numbers in the right cell or panel, in the user's order of the knob values, with a failed point
marked; the accuracy-lines table names its series."""

import io
import itertools

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_rgba
from matplotlib.patches import Rectangle

from intuition import maps
from intuition.figures import RegionsView
from intuition.metrics import make_grid
from intuition.types import Points

SWEEP = "capacity"
AXES = ["depth", "width", "inputs"]
WIDTHS = [16, 4, 8]  # deliberately not sorted: figures keep this order
FAILED = dict(depth=2, width=4, inputs="raw")  # 3 of 5 seeds learned


def _name(**knobs) -> str:
    return ",".join(f"{axis}={value}" for axis, value in knobs.items())


def _points() -> pd.DataFrame:
    rows = []
    for i, (depth, width, inputs) in enumerate(itertools.product([1, 2], WIDTHS, ["raw", "standardized"])):
        knobs = dict(depth=depth, width=width, inputs=inputs)
        failed = knobs == FAILED
        rows.append(dict(point=_name(**knobs), **knobs,
                         test_accuracy=0.5 + 0.2 * (depth - 1) + 0.01 * width + 0.003 * (inputs != "raw"),
                         test_accuracy_sd=0.01 + 0.001 * i, sharpness=0.6 + 0.02 * i, sharpness_sd=0.005,
                         learned_seeds=3 if failed else 5, seeds=5))
    return pd.DataFrame(rows)


def _point(points, **knobs) -> pd.Series:
    return points[points["point"] == _name(**knobs)].iloc[0]


def _view(seed=0) -> RegionsView:
    """Two Gaussian blobs, a grid over them and a fake model: a logistic function of x1."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], 30)
    X = np.array([[-1.5, 0.0], [1.5, 0.0]])[y] + rng.normal(size=(60, 2))
    grid = make_grid(X, resolution=25, margin=0.1)
    p1 = 1 / (1 + np.exp(-2 * grid.xx))
    test = np.arange(60) % 4 == 0
    return RegionsView(grid=grid, proba=np.stack([1 - p1, p1], axis=-1), train=Points(X[~test], y[~test]),
                       test=Points(X[test], y[test]), test_pred=(X[test, 0] > 0).astype(int))


def _png(fig):
    fig.savefig(io.BytesIO(), format="png", dpi=50)


def _panels(fig):
    """The heatmap panels (the colourbar's axes hold no image)."""
    return [ax for ax in fig.axes if ax.images]


def _texts_at(ax, r, c):
    return [t.get_text() for t in ax.texts if np.allclose(t.get_position(), (c, r))]


def _red_boxes(ax):
    return [p for p in ax.patches if isinstance(p, Rectangle) and p.get_edgecolor() == to_rgba("red")]


# --- phase diagrams ------------------------------------------------------------------------------


def test_phase_diagrams_are_named_by_metric_and_pair_of_knobs():
    points = _points()
    figs = maps.phase_diagrams(points, AXES, SWEEP)
    assert set(figs) == {f"phase_{metric}_{pair}" for metric in ("test_accuracy", "sharpness")
                         for pair in ("depth_x_width", "depth_x_inputs", "width_x_inputs")}
    one = points[(points.depth == 1) & (points.inputs == "raw")]
    assert set(maps.phase_diagrams(one, ["width"], SWEEP)) == {"phase_test_accuracy_width", "phase_sharpness_width"}
    for fig in figs.values():
        _png(fig)


def test_phase_diagram_has_a_panel_per_facet_on_one_colour_scale():
    points = _points()
    fig = maps.phase_diagram(points, AXES, "depth", "width", "test_accuracy", SWEEP)
    panels = _panels(fig)
    assert [ax.get_title() for ax in panels] == ["inputs=raw", "inputs=standardized"]
    assert len(fig.axes) == 3  # two panels and one colourbar
    norms = {(ax.images[0].norm.vmin, ax.images[0].norm.vmax) for ax in panels}
    assert len(norms) == 1
    vmin, vmax = norms.pop()
    assert vmax == 1.0 and 0.5 <= vmin <= points.test_accuracy.min()
    title = fig.get_suptitle()
    assert SWEEP in title and "mean test accuracy over 5 seeds" in title and "rows depth, columns width" in title
    # Faceting by width instead: three panels, in the user's order of widths.
    by_width = maps.phase_diagram(points, AXES, "depth", "inputs", "sharpness", SWEEP)
    assert [ax.get_title() for ax in _panels(by_width)] == ["width=16", "width=4", "width=8"]
    assert "sharpness" in by_width.get_suptitle()
    _png(fig)
    _png(by_width)


def test_phase_diagram_writes_each_mean_and_sd_in_its_own_cell_in_first_appearance_order():
    points = _points()
    fig = maps.phase_diagram(points, AXES, "depth", "width", "test_accuracy", SWEEP)
    standardized = _panels(fig)[1]
    assert [t.get_text() for t in standardized.get_xticklabels()] == ["16", "4", "8"]
    assert [t.get_text() for t in standardized.get_yticklabels()] == ["1", "2"]
    assert (standardized.get_xlabel(), standardized.get_ylabel()) == ("width", "depth")
    point = _point(points, depth=2, width=8, inputs="standardized")
    mean, sd = f"{point.test_accuracy:.3f}", f"± {point.test_accuracy_sd:.3f}"
    assert _texts_at(standardized, r=1, c=2) == [mean, sd]  # depth=2 is row 1, width=8 column 2
    assert all(mean not in _texts_at(standardized, r, c) for r, c in [(0, 2), (1, 0), (1, 1)])
    assert standardized.images[0].get_array()[1, 2] == pytest.approx(point.test_accuracy)


def test_phase_diagram_text_is_readable_on_its_cell():
    points = _points()
    panel = _panels(maps.phase_diagram(points, AXES, "depth", "width", "test_accuracy", SWEEP))[0]
    colours = {t.get_text(): t.get_color() for t in panel.texts}
    lowest, highest = points.test_accuracy.idxmin(), points.test_accuracy[points.inputs == "raw"].idxmax()
    assert colours[f"{points.test_accuracy[lowest]:.3f}"] == "white"  # viridis is dark at the bottom
    assert colours[f"{points.test_accuracy[highest]:.3f}"] == "black"  # ... and light at the top


def test_phase_diagram_marks_the_point_where_a_seed_failed_to_learn():
    fig = maps.phase_diagram(_points(), AXES, "depth", "width", "test_accuracy", SWEEP)
    raw, standardized = _panels(fig)
    [box] = _red_boxes(raw)
    assert box.get_x() + box.get_width() / 2 == pytest.approx(1)  # width=4 is column 1
    assert box.get_y() + box.get_height() / 2 == pytest.approx(1)  # depth=2 is row 1
    assert "3/5 learned" in [t.get_text() for t in raw.texts]
    assert not _red_boxes(standardized) and not any("learned" in t.get_text() for t in standardized.texts)
    assert "red border" in fig.get_suptitle()


def test_phase_diagram_leaves_a_missing_point_blank():
    points = _points()
    points = points[points.point != _name(depth=1, width=16, inputs="raw")]
    panels = _panels(maps.phase_diagram(points, AXES, "depth", "width", "test_accuracy", SWEEP))
    # "standardized" now appears first in the points, so its panel comes first.
    assert [ax.get_title() for ax in panels] == ["inputs=standardized", "inputs=raw"]
    raw = panels[1]
    assert np.ma.is_masked(raw.images[0].get_array()[0, 0]) or np.isnan(raw.images[0].get_array()[0, 0])
    assert not [t for t in raw.texts if np.allclose(t.get_position(), (0, 0))]
    assert len(_texts_at(raw, r=0, c=1)) == 2


def test_phase_diagram_of_a_one_knob_sweep_is_one_column():
    points = _points()
    one = points[(points.depth == 2) & (points.inputs == "raw")][["point", "width", "test_accuracy",
                                                                  "test_accuracy_sd", "sharpness", "sharpness_sd",
                                                                  "learned_seeds", "seeds"]]
    fig = maps.phase_diagram(one, ["width"], "width", None, "test_accuracy", SWEEP)
    [panel] = _panels(fig)
    assert panel.images[0].get_array().shape == (3, 1)
    assert [t.get_text() for t in panel.get_yticklabels()] == ["16", "4", "8"]
    assert len(_red_boxes(panel)) == 1
    _png(fig)


def test_phase_diagram_rejects_unknown_knobs_and_metrics():
    points = _points()
    with pytest.raises(ValueError, match="knobs"):
        maps.phase_diagram(points, AXES, "depth", "depth", "test_accuracy", SWEEP)
    with pytest.raises(ValueError, match="metric"):
        maps.phase_diagram(points, AXES, "depth", "width", "train_accuracy", SWEEP)


# --- small multiples -----------------------------------------------------------------------------


def test_small_multiples_grid_titles_notes_and_a_blank_panel():
    points = _points()
    raw = points[(points.inputs == "raw") & (points.point != _name(depth=1, width=8, inputs="raw"))]
    views = {name: _view(i) for i, name in enumerate(points.point)}
    fig = maps.small_multiples(views, raw, AXES, "depth", "width", SWEEP, facet="inputs=raw")
    assert len(fig.axes) == 2 * 3
    grid = np.array(fig.axes).reshape(2, 3)
    assert [ax.get_title() for ax in grid[0]] == ["width=16", "width=4", "width=8"]
    assert [ax.get_ylabel() for ax in grid[:, 0]] == ["depth=1", "depth=2"]
    assert SWEEP in fig.get_suptitle() and "inputs=raw" in fig.get_suptitle()
    blank = grid[0, 2]  # depth=1, width=8 is missing
    assert not blank.collections and not blank.texts and blank.get_title() == "width=8"
    point = _point(points, depth=2, width=16, inputs="raw")
    note = f"{point.test_accuracy:.3f} ± {point.test_accuracy_sd:.3f}"
    assert note in [t.get_text() for t in grid[1, 0].texts]
    failed = [t for t in grid[1, 1].texts if t.get_text() == "3/5 learned"]  # depth=2, width=4
    assert failed and failed[0].get_color() == "red"
    assert sum("learned" in t.get_text() for ax in fig.axes for t in ax.texts) == 1
    assert len(fig.legends) == 1
    _png(fig)


def test_a_one_knob_sweep_draws_its_regions_in_one_row_and_its_phase_diagrams():
    points = _points()
    one = points[(points.depth == 2) & (points.inputs == "raw")].drop(columns=["depth", "inputs"])
    views = {name: _view(i) for i, name in enumerate(one.point)}
    fig = maps.small_multiples(views, one, ["width"], None, "width", SWEEP)
    assert [ax.get_title() for ax in fig.axes] == ["width=16", "width=4", "width=8"]
    assert [ax.get_ylabel() for ax in fig.axes] == ["", "", ""]
    assert sum(t.get_text() == "3/5 learned" for ax in fig.axes for t in ax.texts) == 1
    assert sorted(maps.phase_diagrams(one, ["width"], SWEEP)) == ["phase_sharpness_width", "phase_test_accuracy_width"]
    _png(fig)
    with pytest.raises(ValueError, match="two different knobs"):
        maps.small_multiples(views, one, ["width"], None, None, SWEEP)


def test_small_multiples_refuses_points_of_several_facets():
    points = _points()
    views = {name: _view() for name in points.point}
    with pytest.raises(ValueError, match="2 points"):
        maps.small_multiples(views, points, AXES, "depth", "width", SWEEP)


# --- accuracy lines ------------------------------------------------------------------------------


def test_accuracy_lines_one_series_per_combination_of_the_other_knobs():
    points = _points()
    table = maps.accuracy_lines(points, AXES)
    assert list(table.columns) == ["depth", "series", "test_accuracy", "test_accuracy_sd"]
    assert list(table.series[:4]) == ["width=16, inputs=raw", "width=16, inputs=standardized",
                                      "width=4, inputs=raw", "width=4, inputs=standardized"]
    assert table.series.nunique() == 6 and len(table) == len(points)
    np.testing.assert_array_equal(table.depth, points.depth)
    np.testing.assert_allclose(table.test_accuracy, points.test_accuracy)
    np.testing.assert_allclose(table.test_accuracy_sd, points.test_accuracy_sd)
    one = maps.accuracy_lines(points[points.inputs == "raw"].drop(columns=["depth", "inputs"]).iloc[:3], ["width"])
    assert list(one.width) == WIDTHS and set(one.series) == {"all"}
