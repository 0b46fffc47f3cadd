"""Sweeps without training: the `sweeps:` schema (points, names, bad input) and a point's files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from intuition import sweeps
from intuition.config import MAX_SWEEP_POINTS, ParamsError, parse_params
from intuition.network import DenseLayer, Features, Standardize

BASE = "spiral_hard_relu_2x100"


def with_sweep(params_dict: dict, **sweep) -> dict:
    params_dict["sweeps"] = {"s": {"base": BASE, **sweep}}
    return params_dict


def problems(params_dict: dict, **sweep) -> list[str]:
    with pytest.raises(ParamsError) as err:
        parse_params(with_sweep(params_dict, **sweep))
    return str(err.value).splitlines()


def test_points_are_the_cross_product_named_in_the_axes_order(params_dict):
    params = parse_params(with_sweep(params_dict, axes={"depth": [1, 3], "width": [8, 16, 32],
                                                        "inputs": ["raw", "standardized"]}))
    points = params.sweep_points("s")
    assert len(points) == 12
    assert [p.name for p in points[:3]] == ["depth=1,width=8,inputs=raw", "depth=1,width=8,inputs=standardized",
                                             "depth=1,width=16,inputs=raw"]
    last = points[-1].spec
    assert [layer.units for layer in last.hidden] == [32, 32, 32]
    assert {layer.activation for layer in last.hidden} == {"relu"} and last.inputs == "standardized"
    base = params.experiments[BASE]
    assert (last.optimizer, last.learning_rate, last.epochs, last.output) == (base.optimizer, base.learning_rate,
                                                                             base.epochs, base.output)


def test_every_knob_can_be_an_axis_and_has_its_own_seeds(params_dict):
    params = parse_params(with_sweep(params_dict, seeds=2, axes={
        "activation": ["tanh"], "optimizer": ["sgd"], "learning_rate": [0.003], "batch_size": [16], "epochs": [7],
        "features": [["x1", "x2", "sin_x1"]], "l1": [0.001], "l2": [0.01], "dataset": ["spiral_easy"]}))
    (point,) = params.sweep_points("s")
    spec = point.spec
    assert {layer.activation for layer in spec.hidden} == {"tanh"}
    assert (spec.optimizer, spec.learning_rate, spec.batch_size, spec.epochs) == ("sgd", 0.003, 16, 7)
    assert (spec.features, spec.l1, spec.l2, spec.dataset) == (["x1", "x2", "sin_x1"], 0.001, 0.01, "spiral_easy")
    assert "features=x1+x2+sin_x1" in point.name and "learning_rate=0.003" in point.name
    assert params.sweep_seeds("s") == [params.seed, params.seed + 1]


def test_l1_and_l2_are_knobs_with_default_zero(params_dict):
    params = parse_params(params_dict)
    knobs = params.experiments[BASE].knobs()
    assert (knobs["l1"], knobs["l2"]) == (0.0, 0.0)
    params_dict["experiments"][BASE]["l2"] = -0.1
    with pytest.raises(ParamsError, match=rf"experiments\.{BASE}\.l2: -0.1 is not allowed"):
        parse_params(params_dict)


@pytest.mark.parametrize("sweep, expected", [
    ({"axes": {"dept": [1]}}, "sweeps.s.axes.dept: unknown knob; a sweep's axes are: depth, width"),
    ({"axes": {"width": []}}, "sweeps.s.axes.width: [] is not allowed: give at least one value"),
    ({"axes": {"width": [8, 8]}}, "sweeps.s.axes.width: 8 is given twice; give each value once"),
    ({"axes": {"width": [0]}}, "sweeps.s.axes.width: 0 is not allowed: use a whole number, 1 or more"),
    ({"axes": {"width": [2.5]}}, "sweeps.s.axes.width: 2.5 is not allowed: use a whole number, 1 or more"),
    ({"axes": {"activation": ["tanhh"]}}, "sweeps.s.axes.activation: 'tanhh' is not allowed: use one of: relu"),
    ({"axes": {"learning_rate": [0]}}, "sweeps.s.axes.learning_rate: 0 is not allowed: use a number above 0"),
    ({"axes": {"dataset": ["circle"]}}, "sweeps.s.axes.dataset: 'circle' is not allowed: the base's output layer"),
    ({"axes": {"dataset": ["nope"]}}, "sweeps.s.axes.dataset: 'nope' is not allowed: use the name of a dataset"),
    ({"axes": {"features": [["x1", "x1"]]}}, "sweeps.s.axes.features: ['x1', 'x1'] is not allowed: use a list"),
    ({"axes": {"width": 8}}, "sweeps.s.axes.width: 8 is not allowed: give the axis' values as a list"),
    ({"axes": {}}, "sweeps.s.axes: {} is not allowed: give at least one item"),
    ({"axes": {"width": [8]}, "seed": 1}, "sweeps.s.seed: unknown key (value 1); allowed keys: base, axes, seeds"),
    ({"axes": {"width": list(range(1, 41)), "depth": list(range(1, 7))}},
     f"sweeps.s.axes: 240 points (40 × 6) is more than {MAX_SWEEP_POINTS}, the limit for one sweep"),
])
def test_a_bad_sweep_is_one_line_naming_the_key_and_what_is_allowed(params_dict, sweep, expected):
    lines = problems(params_dict, **sweep)
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"params.yaml: {expected}"), lines[0]


def test_a_base_that_is_not_an_experiment(params_dict):
    params_dict["sweeps"] = {"s": {"base": "nope", "axes": {"width": [8]}}}
    with pytest.raises(ParamsError, match=r"sweeps\.s\.base: 'nope' is not an experiment; defined experiments: "):
        parse_params(params_dict)


def test_every_problem_of_a_sweep_is_reported(params_dict):
    lines = problems(params_dict, axes={"width": [0, 8, 8], "activation": ["tanhh"]})
    assert [line.split(": ", 2)[1] for line in lines] == ["sweeps.s.axes.width", "sweeps.s.axes.width",
                                                           "sweeps.s.axes.activation"]


def test_points_group_by_the_shape_of_their_dense_layers(params_dict):
    params = parse_params(with_sweep(params_dict, axes={"width": [8, 16], "inputs": ["raw", "standardized"],
                                                        "learning_rate": [0.001, 0.01]}))
    groups = sweeps.groups(params.sweep_points("s"))
    assert [len(g) for g in groups] == [4, 4]
    assert {p.spec.hidden[0].units for p in groups[0]} == {8}


def test_a_point_is_found_again_only_in_the_same_group(params_dict):
    params = parse_params(with_sweep(params_dict, axes={"width": [8, 16], "l2": [0, 0.01]}))
    group = sweeps.groups(params.sweep_points("s"))[0]
    names = sweeps.trained_names(group, [1, 2], "data", "code")
    assert names == sweeps.trained_names(group, [1, 2], "data", "code")  # stable
    assert len(set(names.values())) == 2
    for other in (([1, 3], "data", "code"), ([1, 2], "other data", "code"), ([1, 2], "data", "other code")):
        assert set(sweeps.trained_names(group, *other).values()).isdisjoint(names.values())
    alone = sweeps.trained_names(group[:1], [1, 2], "data", "code")
    assert alone[group[0].name] != names[group[0].name]


def test_a_trained_point_reads_back_as_written(tmp_path):
    rng = np.random.default_rng(0)
    ahead = [Features(("x1", "x2", "sin_x1")), Standardize(rng.normal(size=(1, 3)), rng.random((1, 3)))]
    layers = [ahead + [DenseLayer(rng.normal(size=(3, 4)).astype("float32"), rng.normal(size=4).astype("float32"), "relu"),
                       DenseLayer(rng.normal(size=(4, 1)).astype("float32"), rng.normal(size=1).astype("float32"), "sigmoid")]
              for _ in range(2)]
    history = pd.DataFrame({"seed": [0, 0, 1], "epoch": [0, 1, 0], "loss": [0.7, 0.5, 0.69], "accuracy": [0.5, 0.7, 0.5],
                            "val_loss": [0.7, 0.6, 0.7], "val_accuracy": [0.5, 0.6, 0.4]})
    point = sweeps.TrainedPoint(layers, history, [None, 1], 1.5)
    sweeps.write_trained(tmp_path / "p.npz", point)
    back = sweeps.read_trained(tmp_path / "p.npz")
    assert back.diverged_at == [None, 1] and back.seconds == 1.5
    pd.testing.assert_frame_equal(back.history, history)
    X = rng.normal(size=(5, 2))
    for a, b in zip(layers, back.layers):
        out_a, out_b = X, X
        for la, lb in zip(a, b):
            out_a, out_b = la(out_a), lb(out_b)
        np.testing.assert_array_equal(out_a, out_b)


def test_a_shape_axis_needs_one_width_and_activation_from_the_base_or_an_axis(params_dict):
    params_dict["experiments"][BASE]["layers"][0]["units"] = 50  # 50-100: no single width
    lines = problems(params_dict, axes={"depth": [1, 2]})
    assert lines == [f"params.yaml: sweeps.s.axes: the base {BASE}'s hidden widths are 50, 100: sweeping depth, "
                     "width or activation needs one width from the base, or a width axis"]
    params = parse_params(with_sweep(params_dict, axes={"depth": [1, 2], "width": [8]}))
    assert [len(p.spec.hidden) for p in params.sweep_points("s")] == [1, 2]


def test_a_point_with_an_experiments_spec_is_its_twin_and_agrees_within_one_sd(params_dict):
    params = parse_params(with_sweep(params_dict, axes={"width": [100, 8]}))  # width 100 is the base itself
    twins = sweeps.twins(params.specs(), params.experiments)
    assert twins == {"s[width=100]": BASE}

    def seeds(*accuracy):
        return pd.DataFrame({"seed": range(len(accuracy)), "test.accuracy": accuracy})
    close = sweeps.compare_twin("s[width=100]", BASE, {"s[width=100]": seeds(1.0, 0.98, 1.0), BASE: seeds(1.0, 1.0, 1.0)})
    assert close.agrees and close.tolerance == pytest.approx(np.std([1.0, 0.98, 1.0], ddof=1))
    far = sweeps.compare_twin("s[width=100]", BASE, {"s[width=100]": seeds(0.5, 0.52, 0.5), BASE: seeds(1.0, 1.0, 0.98)})
    assert not far.agrees


def test_per_seed_tables_of_sweep_points_read_from_the_sweeps_seeds_csv(tmp_path, monkeypatch):
    from intuition import files

    monkeypatch.chdir(tmp_path)
    rows = pd.DataFrame({"point": ["a=1", "a=1", "a=2", "a=2"], "seed": [0, 1, 0, 1],
                         "test.accuracy": [0.5, 0.6, 0.7, 0.8], "learned": [True] * 4})
    files.write_csv(files.SweepOutputs("s").seeds, rows)
    tables = files.read_per_seed([], ["s"])
    assert list(tables) == ["s[a=1]", "s[a=2]"]
    assert tables["s[a=2]"]["test.accuracy"].tolist() == [0.7, 0.8] and "point" not in tables["s[a=2]"]
