"""Linear regions counted on hand-built relu networks whose lines are known, so the right count is
known; the metrics columns exist for relu networks only; the figures draw one image per layer."""

import itertools
import math

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest
from matplotlib.image import AxesImage

from intuition import figures
from intuition.inside import distinct, look_inside
from intuition.metrics import AGGREGATED, REGIONS, agreement, region_row, summarise
from intuition.network import DenseLayer, Features, Standardize
from intuition.tracking import summary_metrics
from intuition.types import Grid, Points

KEY = "toy_relu"
# An even number of points a side: no grid point lies on the lines x1 = 0 or x2 = 0.
GRID = Grid(*np.meshgrid(np.linspace(-1, 1, 40), np.linspace(-1, 1, 40)))
# One point in each quadrant but the lower left, and a second one in the upper right.
DATA = np.array([[0.5, 0.5], [0.7, 0.2], [-0.5, 0.4], [0.4, -0.5]])


def dense(kernel, bias, activation="relu") -> DenseLayer:
    return DenseLayer(np.asarray(kernel, np.float32), np.asarray(bias, np.float32), activation)


def output(units_in: int, units_out: int = 2) -> DenseLayer:
    return dense(np.ones((units_in, units_out)), np.zeros(units_out), "softmax")


AXES = dense([[1, 0], [0, 1]], [0, 0])  # two relu units: the lines x1 = 0 and x2 = 0


# --- counting ------------------------------------------------------------------------------------


def test_two_crossing_lines_make_four_regions_one_per_quadrant():
    inside = look_inside([AXES, output(2)], GRID, DATA)
    regions = inside.regions
    assert inside.piecewise_linear and regions is not None
    assert (regions.grid, regions.data, regions.by_depth, regions.units) == (4, 3, (4,), 2)
    assert regions.one_layer_bound == 4  # two lines in general position: 1 + 2 + 1
    ids = regions.ids
    quadrants = [ids[:20, :20], ids[:20, 20:], ids[20:, :20], ids[20:, 20:]]  # rows: x2, columns: x1
    assert all(len(np.unique(q)) == 1 for q in quadrants)
    assert sorted(int(q[0, 0]) for q in quadrants) == [0, 1, 2, 3]


def test_parallel_lines_make_three_regions():
    parallel = dense([[1, 1], [0, 0]], [0, -0.5])  # x1 = 0 and x1 = 0.5
    regions = look_inside([parallel, output(2)], GRID, DATA).regions
    assert (regions.grid, regions.data) == (3, 3)  # x1 < 0; 0 < x1 < 0.5; x1 > 0.5
    # Only x1 matters: every row of the grid has the same ids.
    assert (regions.ids == regions.ids[0]).all()


def test_a_second_layer_bends_its_line_at_the_first_layers_lines():
    # relu(relu(x1) + relu(x2) - 0.5): off in the lower-left quadrant, and in each of the other
    # three a straight piece of its line splits the quadrant in two: 4 + 3 = 7 regions.
    bent = dense([[1], [1]], [-0.5])
    regions = look_inside([AXES, bent, output(1)], GRID, DATA).regions
    assert regions.by_depth == (4, 7) and regions.grid == 7 and regions.units == 3
    # The data: (0.5, 0.5) and (0.7, 0.2) are on the same side of x1 + x2 = 0.5, (−0.5, 0.4) is
    # below x2 = 0.5 and (0.4, −0.5) left of x1 = 0.5: three patterns, one per quadrant.
    assert regions.data == 3


def test_a_random_layer_of_lines_matches_the_arrangement_count():
    """Lines in general position cut a box into 1 + (lines crossing it) + (crossings inside it)
    regions (Euler); a fine grid sees them all when none is tiny."""
    rng = np.random.default_rng(3)
    n = 6
    kernel, bias = rng.normal(size=(2, n)), rng.uniform(-0.5, 0.5, n)
    fine = Grid(*np.meshgrid(np.linspace(-1, 1, 600), np.linspace(-1, 1, 600)))
    corners = np.array(list(itertools.product([-1, 1], repeat=2))) @ kernel + bias
    crossing = [j for j in range(n) if corners[:, j].min() < 0 < corners[:, j].max()]
    inner = sum(1 for i, j in itertools.combinations(crossing, 2)
                if (np.abs(np.linalg.solve(kernel[:, [i, j]].T, -bias[[i, j]])) < 1).all())
    regions = look_inside([dense(kernel, bias), output(n)], fine, DATA).regions
    assert regions.grid == 1 + len(crossing) + inner
    assert inner >= 3  # the case is not trivial


def test_standardized_inputs_keep_the_regions_linear():
    standardize = Standardize(np.array([0.0, 0.0], np.float32), np.array([4.0, 4.0], np.float32))
    assert look_inside([standardize, AXES, output(2)], GRID, DATA).regions.grid == 4


def test_counts_are_deterministic():
    rng = np.random.default_rng(0)
    layers = [dense(rng.normal(size=(2, 30)), rng.normal(size=30) * 0.3),
              dense(rng.normal(size=(30, 30)), rng.normal(size=30) * 0.3), output(30, 3)]
    first, second = (look_inside(layers, GRID, DATA).regions for _ in range(2))
    assert (first.grid, first.data, first.by_depth) == (second.grid, second.data, second.by_depth)
    np.testing.assert_array_equal(first.ids, second.ids)
    assert first.by_depth[0] < first.by_depth[1] == first.grid  # the second layer cuts further


def test_distinct_rows_of_many_units_are_counted_as_rows():
    on = np.zeros((5, 400), bool)
    on[1, 399] = on[2, 0] = on[3, 399] = True  # rows 0 and 4 all off; 1 and 3 differ from them in the last unit only
    count, ids = distinct(on)
    assert count == 3 and ids[0] == ids[4] and ids[1] == ids[3] and len({ids[0], ids[1], ids[2]}) == 3


@pytest.mark.parametrize("layers, reason", [
    ([dense([[1, 0], [0, 1]], [0, 0], "sigmoid"), output(2)], "sigmoid are not relu"),
    ([AXES, dense([[1, 0], [0, 1]], [0, 0], "tanh"), output(2)], "tanh are not relu"),
    ([output(2, 1)], "no hidden layer"),
    ([Features(("x1", "x2", "x1_squared")), dense(np.ones((3, 2)), [0, 0]), output(2)], "x1² are curved"),
])
def test_networks_without_linear_regions_have_no_counts(layers, reason):
    inside = look_inside(layers, GRID, DATA)
    assert not inside.piecewise_linear and inside.regions is None
    assert reason in inside.no_regions
    assert region_row(inside) == {}
    assert len(inside.maps) == sum(isinstance(layer, DenseLayer) for layer in layers)  # tiles still drawn


def test_non_finite_outputs_count_as_nan():
    broken = dense([[1, 0], [0, 1]], [np.nan, 0])
    inside = look_inside([broken, output(2)], GRID, DATA)
    assert inside.piecewise_linear and inside.regions is None and "not finite" in inside.no_regions
    assert all(math.isnan(v) for v in region_row(inside).values()) and set(region_row(inside)) == set(REGIONS)


# --- metrics -------------------------------------------------------------------------------------


def _per_seed(regions: dict) -> pd.DataFrame:
    base = {name: 0.5 for name in AGGREGATED} | {"learned": True, "diverged_at_epoch": np.nan}
    return pd.DataFrame([{"seed": i, **base, **{k: v[i] for k, v in regions.items()}} for i in range(3)])


def test_region_counts_are_aggregated_over_seeds_and_reach_mlflow_names():
    agreed = agreement(np.zeros((3, 2, 2, 2)))
    summary = summarise(_per_seed({"regions.grid": [4, 6, 8], "regions.data": [3, 3, np.nan]}), agreed)
    assert summary["regions"]["grid"]["mean"] == 6 and summary["regions"]["grid"]["sd"] == 2
    assert summary["regions"]["data"]["max"] == 3  # the NaN seed left out
    flat = summary_metrics(summary)
    assert flat["regions/grid"] == 6 and flat["regions/grid_sd"] == 2 and "regions/data_ci95_low" in flat


def test_networks_without_regions_write_no_region_metrics():
    summary = summarise(_per_seed({}), agreement(np.zeros((3, 2, 2, 2))))
    assert "regions" not in summary and not any(k.startswith("regions/") for k in summary_metrics(summary))


# --- figures -------------------------------------------------------------------------------------


def _images(fig) -> int:
    return sum(isinstance(artist, AxesImage) for ax in fig.axes for artist in ax.get_images())


def _saved(fig, tmp_path, name) -> np.ndarray:
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=60)
    image = mpimg.imread(path)
    assert image[..., :3].std() > 0.02
    return image


def _wide_relu_network(width=100, depth=2):
    rng = np.random.default_rng(1)
    layers, units_in = [], 2
    for _ in range(depth):
        layers.append(dense(rng.normal(size=(units_in, width)), rng.normal(size=width) * 0.3))
        units_in = width
    return layers + [output(width, 3)]


def test_neuron_tiles_draw_one_image_per_layer_output_last(tmp_path):
    inside = look_inside(_wide_relu_network(), GRID, DATA)
    fig = figures.neuron_tiles(inside.maps, KEY, subtitle="representative seed 0 of 2")
    _saved(fig, tmp_path, "tiles")
    assert _images(fig) == 3  # two hidden layers of 100 and the output layer: one mosaic each
    titles = [ax.get_title(loc="left") for ax in fig.axes if ax.get_images()]
    assert titles[0].startswith("layer 1: relu, 100 units") and titles[1].startswith("layer 2: relu, 100 units")
    assert titles[2].startswith("layer 3 (output): softmax, 3 units")
    assert KEY in fig.get_suptitle() and "representative seed 0 of 2" in fig.get_suptitle()
    # 100 units at 20 a row: a mosaic of 5 rows and 20 columns of tiles, split by one-pixel gaps.
    mosaic = fig.axes[0].get_images()[0].get_array()
    tile = -(-40 // max(1, -(-40 // figures.TILE_POINTS)))
    assert mosaic.shape == (5 * (tile + 1) - 1, 20 * (tile + 1) - 1)
    assert np.nanmin(mosaic) >= 0 and np.nanmax(mosaic) <= 1


def test_neuron_tiles_of_a_smooth_network_say_what_they_show_instead(tmp_path):
    layers = [dense([[1, 0], [0, 1]], [0, 0], "sigmoid"), output(2)]
    inside = look_inside(layers, GRID, DATA)
    fig = figures.neuron_tiles(inside.maps, KEY, no_regions=inside.no_regions)
    _saved(fig, tmp_path, "tiles_sigmoid")
    assert _images(fig) == 2
    suptitle = " ".join(fig.get_suptitle().split())  # wrapped over lines
    assert "no linear regions" in suptitle and "these tiles are what is shown instead" in suptitle


def test_relu_tiles_scale_each_unit_from_off_to_its_maximum():
    inside = look_inside([AXES, output(2)], GRID, DATA)
    mosaic = figures._mosaic(figures._tile_values(inside.maps[0], output=False), per_row=2)
    x1_unit = mosaic[:, :40]  # relu(x1): 0 left of x1 = 0, rising to 1 at the right edge
    assert x1_unit[:, :20].max() == 0 and x1_unit[:, -1].min() == pytest.approx(1)
    assert np.isnan(mosaic[:, 40]).all()  # the gap between the two tiles


def test_linear_regions_figure_annotates_the_counts(tmp_path):
    bent = dense([[1], [1]], [-0.5])
    regions = look_inside([AXES, bent, output(1)], GRID, DATA).regions
    points = Points(DATA, np.array([0, 1, 0, 1]))
    fig = figures.linear_regions(regions, GRID, points, KEY, subtitle="representative seed 1 of 2")
    image = _saved(fig, tmp_path, "regions")
    assert _images(fig) == 1
    counts = fig.axes[0].get_title()
    assert "7 regions on the 40×40 grid" in counts and "3 among the 4 data points" in counts
    notes = " ".join(fig.get_supxlabel().split())
    assert "regions after layer 1: 4; after layers 1–2: 7" in notes and "3² = 9" in notes and "Hanin & Rolnick" in notes
    assert "lower bound" in notes
    # Seven regions, seven colours on the axes' image.
    rgb = fig.axes[0].get_images()[0].get_array()
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) == 7
    assert image.shape[0] > 100
