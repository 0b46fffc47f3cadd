"""params.yaml validation: the real file parses, and every kind of bad input fails with a ParamsError
whose message is one line naming the full key path, the bad value and what is allowed; and what an
experiment is made of (architecture, knobs)."""

import math

import pytest

from intuition.config import KNOBS, ExperimentSpec, ParamsError, load_params, parse_params

from conftest import PARAMS_YAML, SMALL_EPOCHS

EXP = "bands_relu_2x10"  # a 3-layer experiment on the 2-class 'bands' dataset
E = f"experiments.{EXP}"
DELETE = object()


def _mutate(params: dict, where: tuple, value) -> dict:
    """Set (or, with DELETE, remove) the entry at the key path `where` of the nested dict."""
    *parents, last = where
    node = params
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return params


def _error(params: dict) -> str:
    with pytest.raises(ParamsError) as info:
        parse_params(params)
    return str(info.value)


def _assert_one_line_naming(message: str, expected: list[str]) -> None:
    assert "\n" not in message, message
    assert message.startswith("params.yaml: "), message
    for text in expected:
        assert text in message, f"{text!r} not in {message!r}"


# ---------------------------------------------------------------------------------- valid input


def test_the_projects_params_parse(params_dict):
    params = parse_params(params_dict)
    assert list(params.datasets) == list(params_dict["datasets"])
    assert list(params.experiments) == list(params_dict["experiments"])
    for key, experiment in params.experiments.items():
        assert params.dataset_of(key) is params.datasets[experiment.dataset]
        assert experiment.epochs == params_dict["experiments"][key]["epochs"]
        assert experiment.inputs == params_dict["experiments"][key].get("inputs", "raw")
    assert params.seeds == params_dict["seeds"]


def test_load_params_reads_the_same_as_parse_params(params_dict):
    assert load_params(PARAMS_YAML) == parse_params(params_dict)


def test_small_params_fixture_sets_every_epochs(small_params):
    params = parse_params(small_params)
    assert {e.epochs for e in params.experiments.values()} == {SMALL_EPOCHS}


def test_seeds_defaults_to_5(params_dict):
    del params_dict["seeds"]
    assert parse_params(params_dict).seeds == 5


@pytest.mark.parametrize("seeds", [1, 12])
def test_any_positive_number_of_seeds_is_allowed(params_dict, seeds):
    params_dict["seeds"] = seeds
    assert parse_params(params_dict).seeds == seeds


@pytest.mark.parametrize("n_samples, frequency", [(500, 500 * math.pi / 120), (500, 0.001), (12, 0.3)])
def test_stripes_allow_any_frequency_up_to_ten_points_per_stripe(params_dict, n_samples, frequency):
    params_dict["datasets"]["stripes_k1"] |= {"n_samples": n_samples, "frequency": frequency}
    assert parse_params(params_dict).datasets["stripes_k1"].frequency == frequency


def test_inputs_defaults_to_raw_and_allows_standardized(params_dict):
    experiment = params_dict["experiments"][EXP]
    experiment.pop("inputs", None)
    assert parse_params(params_dict).experiments[EXP].inputs == "raw"
    experiment["inputs"] = "standardized"
    assert parse_params(params_dict).experiments[EXP].inputs == "standardized"


# ---------------------------------------------------------------------------------- bad input

BAD_INPUT = [
    pytest.param(
        ("experiments", EXP, "layers", 0, "activation"), "tanhh",
        [f"{E}.layers[0].activation", "'tanhh'", "use one of: relu, sigmoid, tanh, linear, softmax"],
        id="unknown-activation"),
    pytest.param(("experiments", EXP, "optimizer"), "rmsprop",
                 [f"{E}.optimizer", "'rmsprop'", "use one of: sgd, adam"], id="unknown-optimizer"),
    *[pytest.param(("experiments", EXP, "layers", 1, "units"), v,
                   [f"{E}.layers[1].units: {v} ", "greater than or equal to 1"], id=f"units={v}")
      for v in (0, -3)],
    *[pytest.param(("experiments", EXP, "learning_rate"), v,
                   [f"{E}.learning_rate: {v} ", "greater than 0"], id=f"learning_rate={v}")
      for v in (0, -0.1)],
    *[pytest.param((*where, name), v, [f"{prefix}.{name}: {v} ", allowed], id=f"{name}={v}")
      for where, prefix, name in [(("experiments", EXP), E, "validation_split"),
                                  (("datasets", "linear"), "datasets.linear", "test_fraction")]
      for v, allowed in [(0, "strictly between 0 and 1"), (1, "strictly between 0 and 1"), (1.5, "strictly between 0 and 1")]],
    *[pytest.param(("experiments", EXP, name), v, [f"{E}.{name}: {v!r} ", allowed], id=f"{name}={v!r}")
      for name in ("epochs", "batch_size")
      for v, allowed in [(0, "greater than or equal to 1"), (-1, "greater than or equal to 1"),
                         (2.5, "valid integer"), ("ten", "valid integer")]],
    pytest.param(("experiments", EXP, "dataset"), "nope",
                 [f"{E}.dataset", "'nope' is not a dataset", "defined datasets: linear, bands, spiral_easy"],
                 id="unknown-dataset"),
    pytest.param(("experiments", EXP, "optimizer"), DELETE, [f"{E}.optimizer: missing key"], id="missing-key"),
    pytest.param(("experiments", EXP, "learnin_rate"), 0.01,
                 [f"{E}.learnin_rate: unknown key", "0.01"], id="unknown-key"),
    pytest.param(("experiments", EXP, "layers", 2), {"units": 3, "activation": "softmax"},
                 [f"{E}.layers[2]: output layer {{units: 3, activation: softmax}}", "'bands' (2 classes)",
                  "allowed: 1 sigmoid unit or softmax with 2 units"], id="3-softmax-on-2-classes"),
    pytest.param(("experiments", EXP, "layers", 2), {"units": 2, "activation": "sigmoid"},
                 [f"{E}.layers[2]: output layer {{units: 2, activation: sigmoid}}", "'bands' (2 classes)",
                  "allowed: 1 sigmoid unit or softmax with 2 units"], id="2-sigmoid-on-2-classes"),
    pytest.param(("experiments", "spiral_easy_relu_1x64", "layers", 1), {"units": 1, "activation": "sigmoid"},
                 ["experiments.spiral_easy_relu_1x64.layers[1]: output layer {units: 1, activation: sigmoid}",
                  "'spiral_easy' (3 classes)", "allowed: softmax with 3 units"], id="1-sigmoid-on-3-classes"),
    pytest.param(("experiments", EXP, "layers", 0, "activation"), "softmax",
                 [f"{E}.layers[0].activation: 'softmax' is only allowed on the output layer",
                  "hidden layers allow relu, sigmoid, tanh, linear"], id="softmax-on-hidden-layer"),
    *[pytest.param(("datasets", key), {"kind": "classification"},
                   [f"datasets.{key}: key {key!r} is not allowed", "lower-case letters, digits and '_'"],
                   id=f"dataset-key-{key}")
      for key in ("Linear2", "linear-2")],
    pytest.param(("datasets", "linear", "kind"), "circles",
                 ["datasets.linear.kind: 'circles' is not allowed", "classification, bands, spiral",
                  "gauss, playground_spiral, stripes, moons, csv"],
                 id="unknown-dataset-kind"),
    *[pytest.param(("datasets", "stripes_k3", "frequency"), v,
                   [f"datasets.stripes_k3.frequency: {shown} is not allowed",
                    "use a number above 0 and at most 13.08 for n_samples 500", "n_samples·π/120"],
                   id=f"stripes-frequency={v!r}")
      for v, shown in [(0, "0"), (-1.5, "-1.5"), (13.1, "13.1"), (400, "400"), (float("inf"), "inf"),
                       (float("nan"), "nan")]],
    pytest.param(("datasets", "stripes_k3", "n_samples"), 100,  # frequency 3 needs 3·120/π ≈ 115 points
                 ["datasets.stripes_k3.frequency: 3 is not allowed", "at most 2.61 for n_samples 100"],
                 id="stripes-frequency-too-high-for-n_samples"),
    pytest.param(("datasets", "stripes_k3", "frequency"), DELETE, ["datasets.stripes_k3.frequency: missing key"],
                 id="stripes-frequency-missing"),
    pytest.param(("datasets", "stripes_k3", "frequency"), "high",
                 ["datasets.stripes_k3.frequency: 'high' is not allowed", "valid number"], id="stripes-frequency-text"),
    *[pytest.param(("datasets", name, "noise"), 0.6,
                   [f"datasets.{name}.noise: 0.6 is not allowed", "less than or equal to 0.5"], id=f"{name}-noise")
      for name in ("playground_spiral", "stripes_k1")],
    *[pytest.param(("seeds",), v, [f"params.yaml: seeds: {v!r} is not allowed", "use a whole number, 1 or more"],
                   id=f"seeds={v!r}")
      for v in (0, -1, 2.5, "five", True)],
    *[pytest.param(("experiments", EXP, "inputs"), v,
                   [f"{E}.inputs: {v!r} is not allowed", "use one of: raw, standardized"], id=f"inputs={v!r}")
      for v in ("normalized", "Standardized", None)],
]


@pytest.mark.parametrize("where, value, expected", BAD_INPUT)
def test_bad_input_fails_with_one_clear_line(params_dict, where, value, expected):
    _assert_one_line_naming(_error(_mutate(params_dict, where, value)), expected)


def test_several_problems_give_one_line_each(params_dict):
    _mutate(params_dict, ("experiments", EXP, "epochs"), 0)
    _mutate(params_dict, ("experiments", EXP, "optimizer"), "rmsprop")
    lines = _error(params_dict).splitlines()
    assert len(lines) == 2
    assert any(f"{E}.epochs: 0 " in line for line in lines)
    assert any(f"{E}.optimizer: 'rmsprop' " in line for line in lines)


@pytest.mark.parametrize("raw", [None, [1, 2], "seed: 1"])
def test_top_level_must_be_a_mapping(raw):
    with pytest.raises(ParamsError, match="expected a mapping at the top level"):
        parse_params(raw)


@pytest.mark.parametrize("where, value, path", [
    (("datasets", "bands", "test_fraction"), 0, "datasets.bands.test_fraction: 0 "),
    (("datasets", "bands", "kind"), "circles", "datasets.bands.kind: 'circles' "),
    (("experiments", "spiral"), {"dataset": "linear", "layers": [{"units": 1, "activation": "sigmoid"}],
                                 "optimizer": "sgd", "learning_rate": 0.1, "epochs": 0, "batch_size": 8,
                                 "validation_split": 0.2}, "experiments.spiral.epochs: 0 "),
], ids=["dataset-bands", "dataset-bands-kind", "experiment-named-spiral"])
def test_key_path_keeps_keys_named_like_a_dataset_kind(params_dict, where, value, path):
    _assert_one_line_naming(_error(_mutate(params_dict, where, value)), [path])


def test_missing_dataset_kind_is_a_missing_key(params_dict):
    message = _error(_mutate(params_dict, ("datasets", "linear", "kind"), DELETE))
    _assert_one_line_naming(message, ["datasets.linear.kind: missing key", "classification, bands, spiral"])


def test_unknown_key_message_lists_the_allowed_keys(params_dict):
    message = _error(_mutate(params_dict, ("experiments", EXP, "learnin_rate"), 0.01))
    _assert_one_line_naming(message, ["learning_rate", "validation_split"])


# ---------------------------------------------------------------------------------- load_params


@pytest.mark.parametrize("text, line", [
    ("seed: 42\nplots:\n  dpi: 100\n   margin: 0.1\n", 4),  # over-indented mapping entry
    ("seed: 42\nplots:\n\tdpi: 100\n", 3),                   # a tab cannot indent YAML
])
def test_load_params_reports_the_line_of_broken_yaml(tmp_path, text, line):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(ParamsError) as info:
        load_params(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: not valid YAML at line {line}, column "), message


def test_load_params_of_a_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "params.yaml"
    with pytest.raises(ParamsError, match="file not found") as info:
        load_params(path)
    assert str(info.value).startswith(f"{path}: ")


def test_load_params_of_an_empty_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("")
    with pytest.raises(ParamsError, match="expected a mapping at the top level, got None"):
        load_params(path)


def test_load_params_schema_errors_name_the_file_read(tmp_path):
    path = tmp_path / "other.yaml"
    path.write_text("seed: 42\n")
    with pytest.raises(ParamsError) as info:
        load_params(path)
    assert str(info.value).startswith(f"{path}: ")


# ---------------------------------------------------------------------------------- architecture()


def _spec(*layers: tuple[str, int], **fields) -> ExperimentSpec:
    defaults = dict(dataset="any", optimizer="sgd", learning_rate=0.1, epochs=1, batch_size=1, validation_split=0.2)
    return ExperimentSpec(layers=[{"activation": activation, "units": units} for activation, units in layers],
                          **defaults | fields)


@pytest.mark.parametrize("layers, expected", [
    ([("relu", 100)] * 4 + [("softmax", 3)], "relu 100-100-100-100 → softmax 3"),
    ([("sigmoid", 1)], "sigmoid 1"),
    ([("sigmoid", 10), ("relu", 10), ("relu", 5), ("softmax", 3)], "sigmoid 10 → relu 10-5 → softmax 3"),
    ([("relu", 8), ("tanh", 8), ("relu", 8), ("sigmoid", 1)], "relu 8 → tanh 8 → relu 8 → sigmoid 1"),
])
def test_architecture(layers, expected):
    assert _spec(*layers).architecture() == expected


def test_every_experiment_architecture_lists_each_layer(params_dict):
    for key, spec in parse_params(params_dict).experiments.items():
        units = spec.architecture().replace("→", "-").replace("-", " ").split()
        assert [int(u) for u in units if u.isdigit()] == [layer.units for layer in spec.layers], key


@pytest.mark.parametrize("layers, binary", [
    ([("sigmoid", 1)], True), ([("relu", 4), ("sigmoid", 1)], True),
    ([("relu", 4), ("softmax", 2)], False), ([("relu", 4), ("softmax", 3)], False),
])
def test_is_binary_means_one_sigmoid_unit(layers, binary):
    assert _spec(*layers).is_binary is binary


# ---------------------------------------------------------------------------------- knobs()


def test_knobs_of_a_one_hidden_layer_relu_network():
    spec = _spec(("relu", 100), ("softmax", 3), dataset="spiral_hard", optimizer="adam", learning_rate=0.01,
                 epochs=500, batch_size=32, validation_split=0.2)
    assert spec.knobs() == {
        "dataset": "spiral_hard", "depth": 1, "width": "100", "activation": "relu", "output": "softmax 3",
        "optimizer": "adam", "learning_rate": 0.01, "batch_size": 32, "epochs": 500,
        "validation_split": 0.2, "features": "x1+x2", "inputs": "raw", "l1": 0.0, "l2": 0.0,
    }


def test_knobs_of_a_perceptron_have_no_hidden_width_or_activation():
    spec = _spec(("sigmoid", 1), dataset="linear", learning_rate=0.09, epochs=500, batch_size=32,
                 validation_split=0.3, inputs="standardized")
    assert spec.knobs() == {
        "dataset": "linear", "depth": 0, "width": "none", "activation": "none", "output": "sigmoid 1",
        "optimizer": "sgd", "learning_rate": 0.09, "batch_size": 32, "epochs": 500,
        "validation_split": 0.3, "features": "x1+x2", "inputs": "standardized", "l1": 0.0, "l2": 0.0,
    }


def test_knobs_of_mixed_hidden_layers_list_each_layer():
    knobs = _spec(("relu", 10), ("tanh", 5), ("softmax", 3)).knobs()
    assert (knobs["depth"], knobs["width"], knobs["activation"]) == (2, "10-5", "relu-tanh")


def test_every_experiment_has_exactly_the_knobs_in_knobs_order(params_dict):
    for key, spec in parse_params(params_dict).experiments.items():
        assert tuple(spec.knobs()) == KNOBS, key
