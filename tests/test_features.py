"""Playground's input features: the config key, the formulas, the Keras layer inside the saved model,
the NumPy forward pass that must agree with it, and the architecture figure. The features model
through the real pipeline, and its logged MLflow model loading in a fresh Python that has never
imported this project, are in tests/test_pipeline.py (its shared sandbox has the model).

Imports TensorFlow (~4 s) and trains real models for one epoch.
"""

import math
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from intuition import features as playground  # noqa: E402
from intuition import figures, network  # noqa: E402
from intuition.config import ParamsError, load_params, parse_params  # noqa: E402
from intuition.datasets import make_dataset, split_test, split_validation  # noqa: E402
from intuition.metrics import make_grid  # noqa: E402
from intuition.models import PlaygroundFeatures, build_model, encode_targets, optimizer_for  # noqa: E402
from intuition.training import FitData, train  # noqa: E402

from conftest import PARAMS_YAML  # noqa: E402

tf.config.experimental.enable_op_determinism()
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

PARAMS = load_params(PARAMS_YAML)
KEY = "circle_perceptron_squared"  # one sigmoid unit that sees x1², x2²
ALLOWED = "x1, x2, x1_squared, x2_squared, x1_x2, sin_x1, sin_x2"


def _with_features(params_dict, features, key=KEY, **changes):
    params_dict["experiments"][key].update(features=features, **changes)
    return params_dict


# ---------------------------------------------------------------------------------- config


def test_features_default_to_the_raw_point_and_shape_the_first_layer(params_dict):
    params = parse_params(params_dict)
    raw, squared = params.experiments["circle_perceptron"], params.experiments[KEY]
    assert raw.features == ["x1", "x2"] and squared.features == ["x1_squared", "x2_squared"]
    assert raw.architecture() == "sigmoid 1" and squared.architecture() == "x1_squared+x2_squared → sigmoid 1"
    assert squared.summary().splitlines()[0] == "x1_squared+x2_squared → sigmoid 1"
    # The two differ in exactly one knob, so a finding comparing them is not confounded.
    differ = {k for k in raw.knobs() if raw.knobs()[k] != squared.knobs()[k]}
    assert differ == {"features"} and squared.knobs()["features"] == "x1_squared+x2_squared"

    five = _with_features(params_dict, ["x1", "x2", "x1_x2", "sin_x1", "sin_x2"])
    five["experiments"][KEY]["layers"] = [{"units": 4, "activation": "relu"}, {"units": 1, "activation": "sigmoid"}]
    assert parse_params(five).experiments[KEY].parameter_counts() == [(5 + 1) * 4, (4 + 1) * 1]


@pytest.mark.parametrize("features, message", [
    (["x1", "x3"], f"features[1]: 'x3' is not allowed; use one of: {ALLOWED}"),
    ([], f"features: [] is not allowed: give at least one of: {ALLOWED}"),
    (["x1_squared", "x2", "x1_squared"], f"features: x1_squared given twice; give each at most once, from: {ALLOWED}"),
    ("x1_squared", f"features: 'x1_squared' is not allowed: give a list, e.g. [x1_squared, x2_squared], of: {ALLOWED}"),
])
def test_bad_features_fail_with_one_line_naming_the_key_and_the_names(params_dict, features, message):
    with pytest.raises(ParamsError) as error:
        parse_params(_with_features(params_dict, features))
    assert str(error.value) == f"params.yaml: experiments.{KEY}.{message}"


# ---------------------------------------------------------------------------------- formulas


def test_the_formulas_and_their_order():
    assert playground.NAMES == ("x1", "x2", "x1_squared", "x2_squared", "x1_x2", "sin_x1", "sin_x2")
    X = np.array([[2.0, -3.0], [0.5, 0.0]])
    expected = np.array([[2, -3, 4, 9, -6, math.sin(2), math.sin(-3)], [0.5, 0, 0.25, 0, 0, math.sin(0.5), 0]])
    np.testing.assert_allclose(playground.compute(X, playground.NAMES), expected)
    np.testing.assert_array_equal(playground.compute(X, ["x2_squared", "x1"]), expected[:, [3, 0]])
    layer = PlaygroundFeatures(list(playground.NAMES))
    assert keras.saving.get_registered_name(PlaygroundFeatures) == network.FEATURES_CLASS == "intuition>PlaygroundFeatures"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(X.astype("float32"))), expected, rtol=1e-6)


# ---------------------------------------------------------------------------------- Keras vs NumPy

CASES = [[name] for name in playground.NAMES] + [["x1_squared", "x2_squared"], list(playground.NAMES)]


@pytest.mark.parametrize("inputs", ["raw", "standardized"])
@pytest.mark.parametrize("features", CASES, ids=["+".join(c) for c in CASES])
def test_numpy_forward_pass_equals_keras(tmp_path, params_dict, features, inputs):
    """One epoch of the project's trainer (its `preprocess` runs the feature and Normalization layers
    once), saved, reloaded in Keras' safe mode and read by intuition.network: all predict alike."""
    spec = parse_params(_with_features(params_dict, features, key="spiral_easy_relu_1x64", inputs=inputs)
                        ).experiments["spiral_easy_relu_1x64"]
    dataset = PARAMS.datasets[spec.dataset]
    splits = split_test(make_dataset(dataset, PARAMS.seed), dataset.test_fraction, PARAMS.seed)
    cut = split_validation(splits.train, spec.validation_split)
    model = build_model(spec, PARAMS.seed, cut.fit.X)
    train([model], optimizer_for(spec), FitData(cut.fit.X, encode_targets(cut.fit.y, spec), cut.val.X,
                                                encode_targets(cut.val.y, spec)),
          epochs=1, batch_size=spec.batch_size, seeds=[PARAMS.seed], binary=spec.is_binary)
    path = tmp_path / "m.keras"
    model.save(path)

    loaded = network.load_layers(path)
    kinds = [type(layer).__name__ for layer in loaded]
    assert kinds == ["Features"] * (tuple(features) != playground.DEFAULT) + ["Standardize"] * (inputs == "standardized") \
        + ["DenseLayer", "DenseLayer"]
    assert sum(l.kernel.size + l.bias.size for l in loaded if isinstance(l, network.DenseLayer)) \
        == sum(spec.parameter_counts())
    if inputs == "standardized":  # adapted on the features of the fitted rows, not on the raw points
        fitted = playground.compute(cut.fit.X.astype("float32"), features)
        np.testing.assert_allclose(loaded[-3].mean, fitted.mean(axis=0), rtol=1e-4, atol=1e-4)

    points = np.vstack([cut.val.X, make_grid(cut.fit.X, 20, 0.1).points]).astype("float32")  # raw points
    expected = model.predict(points, verbose=0)
    np.testing.assert_allclose(network.predict_proba(loaded, points), expected, atol=1e-5)
    reloaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(points, verbose=0), expected, atol=1e-6)


def test_a_layer_network_cannot_evaluate_is_an_error_not_a_silent_skip(tmp_path):
    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dropout(0.1), keras.layers.Dense(1)])
    model.save(tmp_path / "m.keras")
    with pytest.raises(ValueError, match="layer Dropout .*no NumPy version"):
        network.load_layers(tmp_path / "m.keras")


# ---------------------------------------------------------------------------------- figure


def test_architecture_diagram_shows_what_the_network_sees(tmp_path):
    layers = [figures.LayerBox(1, "sigmoid", 3)]
    fig = figures.architecture_diagram(layers, KEY, standardized=True, features=["x1_squared", "x2_squared"])
    boxes = [t.get_text() for t in fig.axes[0].texts if t.get_text()]
    assert boxes == ["input (x1, x2)", "features (2)\nx1², x2²", "Normalization\n(x - mean) / sd, fixed",
                     "Dense 1, sigmoid\nparams 3"]
    fig.savefig(tmp_path / "arch.png")
    plain = figures.architecture_diagram(layers, "circle_perceptron")
    assert [t.get_text() for t in plain.axes[0].texts if t.get_text()] == ["input (x1, x2)", "Dense 1, sigmoid\nparams 3"]
