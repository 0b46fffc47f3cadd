"""Keras parts: build_model, the fast trainer (model.fit's semantics, determinism, divergence) and the
NumPy forward pass of a saved .keras file. Imports TensorFlow (~4 s), so it lives in its own file.

Models are real and trained for a few epochs on the project's own datasets.
"""

import math
import os
from types import SimpleNamespace

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from intuition import network  # noqa: E402
from intuition.config import ExperimentSpec, load_params, parse_params  # noqa: E402
from intuition.datasets import make_dataset, split_test, split_validation  # noqa: E402
from intuition.metrics import make_grid  # noqa: E402
from intuition.models import build_model, encode_targets, loss_for, optimizer_for  # noqa: E402
from intuition.training import HISTORY_COLUMNS, train  # noqa: E402

from conftest import PARAMS_YAML  # noqa: E402

tf.config.experimental.enable_op_determinism()  # as stages/train.py does (process-wide, irreversible)
# Keras' convert_to_numpy calls np.array(tensor) the NumPy-2 way; TF tensors warn. Not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

PARAMS = load_params(PARAMS_YAML)  # frozen: safe to share between tests
SEED = PARAMS.seed
SPIRAL = "spiral_easy_relu_1x64"  # adam, 64 relu -> softmax 3 on a 3-class spiral


def _spec(key: str, **changes) -> ExperimentSpec:
    """An experiment of params.yaml with some fields changed, validated by the real schema.
    `layers` may be given as (activation, units) pairs."""
    raw = PARAMS.experiments[key].model_dump()
    if "layers" in changes:
        changes["layers"] = [{"activation": a, "units": u} for a, u in changes["layers"]]
    raw.update(changes)
    return ExperimentSpec.model_validate(raw)


def _data(spec: ExperimentSpec, scale: float = 1.0):
    """What stages/train.py trains on: (x, y, x_val, y_val), targets encoded for the loss."""
    X, y = make_dataset(PARAMS.datasets[spec.dataset], SEED)
    X, _, y, _ = split_test(X, y, PARAMS.datasets[spec.dataset].test_fraction, SEED)
    x_fit, y_fit, x_val, y_val = split_validation(X * scale, y, spec.validation_split)
    return x_fit, encode_targets(y_fit, spec), x_val, encode_targets(y_val, spec)


def _train(spec, data, *, seed=SEED, epochs=None, loss=None, **options):
    """Build and train a model as stages/train.py does; returns model, optimizer, result, data."""
    model, optimizer = build_model(spec, seed), optimizer_for(spec)
    result = train(model, loss or loss_for(spec), optimizer, data, epochs=epochs or spec.epochs,
                   batch_size=spec.batch_size, seed=seed, binary=spec.is_binary, **options)
    return SimpleNamespace(model=model, optimizer=optimizer, result=result, data=data, spec=spec)


def _assert_same_weights(a: keras.Model, b: keras.Model):
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def _differ(a: keras.Model, b: keras.Model) -> bool:
    return any(not np.array_equal(wa, wb) for wa, wb in zip(a.get_weights(), b.get_weights()))


def _history_array(result) -> np.ndarray:
    return np.array([[row[c] for c in HISTORY_COLUMNS] for row in result.history])


@pytest.fixture(scope="module")
def spiral_run():
    """One short training shared by the read-only tests below: 7 epochs in graph calls of 3, 3, 1."""
    spec = _spec(SPIRAL, epochs=7)
    return _train(spec, _data(spec), epochs_per_call=3)


# ---------------------------------------------------------------------------------- build_model


@pytest.mark.parametrize("key", list(PARAMS.experiments))
def test_build_model_follows_the_spec(key):
    spec = PARAMS.experiments[key]
    model = build_model(spec, SEED)
    dense = model.layers
    assert [layer.units for layer in dense] == [layer.units for layer in spec.layers]
    assert [layer.get_config()["activation"] for layer in dense] == [layer.activation for layer in spec.layers]
    sizes = [2] + [layer.units for layer in spec.layers]
    expected = [(n_in + 1) * n_out for n_in, n_out in zip(sizes, sizes[1:])]
    assert [layer.count_params() for layer in dense] == expected == spec.parameter_counts()
    assert model.count_params() == sum(expected)
    assert spec.summary().splitlines()[-1].split()[-1] == str(sum(expected))
    assert model.output_shape == (None, spec.output.units)


def test_build_model_initial_weights_follow_the_seed():
    spec = PARAMS.experiments["spiral_hard_relu_2x100"]
    first, second, other = build_model(spec, SEED), build_model(spec, SEED), build_model(spec, SEED + 1)
    _assert_same_weights(first, second)
    assert _differ(first, other)


@pytest.mark.parametrize("key, loss", [("linear_perceptron", keras.losses.BinaryCrossentropy),
                                       ("bands_relu_2x10", keras.losses.CategoricalCrossentropy),
                                       (SPIRAL, keras.losses.CategoricalCrossentropy)])
def test_targets_are_encoded_for_the_loss(key, loss):
    spec = PARAMS.experiments[key]
    y = np.array([0, 1, 1, 0])
    targets = encode_targets(y, spec)
    assert isinstance(loss_for(spec), loss)
    if spec.is_binary:
        np.testing.assert_array_equal(targets, y.reshape(-1, 1))
    else:
        assert targets.shape == (4, spec.output.units)
        np.testing.assert_array_equal(targets.argmax(axis=1), y)
        np.testing.assert_array_equal(targets.sum(axis=1), 1)


# ---------------------------------------------------------------------------------- trainer


def test_history_has_a_row_per_epoch(spiral_run):
    history = spiral_run.result.history
    assert all(tuple(row) == HISTORY_COLUMNS for row in history)
    assert [row["epoch"] for row in history] == list(range(1, 8))
    assert np.isfinite(_history_array(spiral_run.result)).all()
    assert spiral_run.result.diverged_at is None


def test_optimizer_steps_match_model_fit(spiral_run):
    n, batch = len(spiral_run.data[0]), spiral_run.spec.batch_size
    assert n % batch != 0  # so the last, partial batch counts as a step
    assert spiral_run.result.steps_per_epoch == math.ceil(n / batch)
    assert int(spiral_run.optimizer.iterations.numpy()) == 7 * math.ceil(n / batch)


def test_final_validation_scores_are_the_trained_models(spiral_run):
    _, _, x_val, y_val = spiral_run.data
    proba = spiral_run.model(x_val, training=False)
    last = spiral_run.result.history[-1]
    assert float(loss_for(spiral_run.spec)(y_val, proba)) == pytest.approx(last["val_loss"], abs=1e-5)
    accuracy = np.mean(np.argmax(proba, axis=1) == np.argmax(y_val, axis=1))
    assert accuracy == pytest.approx(last["val_accuracy"], abs=1e-6)


def test_train_loss_and_accuracy_are_those_seen_before_each_step():
    """With one batch per epoch, epoch 1's train scores are those of the initial model on all rows."""
    spec = _spec(SPIRAL, batch_size=10_000)
    x, y, *_ = data = _data(spec)
    model = build_model(spec, SEED)
    proba = model(x, training=False)
    loss, accuracy = float(loss_for(spec)(y, proba)), np.mean(np.argmax(proba, 1) == np.argmax(y, 1))
    result = train(model, loss_for(spec), optimizer_for(spec), data, epochs=2, batch_size=spec.batch_size,
                   seed=SEED, binary=False)
    assert result.steps_per_epoch == 1
    assert result.history[0]["loss"] == pytest.approx(loss, abs=1e-5)
    assert result.history[0]["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert result.history[1]["loss"] != pytest.approx(loss, abs=1e-5)  # the step changed the model


def test_same_seed_same_training_whatever_the_graph_chunks(spiral_run):
    again = _train(spiral_run.spec, spiral_run.data, epochs_per_call=50)
    np.testing.assert_array_equal(_history_array(again.result), _history_array(spiral_run.result))
    _assert_same_weights(again.model, spiral_run.model)


def test_different_seed_different_training(spiral_run):
    other = _train(spiral_run.spec, spiral_run.data, seed=SEED + 1)
    assert not np.array_equal(_history_array(other.result)[:, 1:], _history_array(spiral_run.result)[:, 1:])
    assert _differ(other.model, spiral_run.model)


class RecordingLoss:
    """A real (mean squared output) loss that also records the rows each call sees: the targets
    passed to the trainer are row ids, so the record shows every mini-batch of every epoch."""

    def __init__(self, capacity: int):
        self.ids = tf.Variable(tf.fill([capacity], -2.0))
        self.sizes = tf.Variable(tf.zeros([capacity], tf.int32))
        self.seen = tf.Variable(0)
        self.calls = tf.Variable(0)

    def __call__(self, y_true, y_pred):
        k = tf.shape(y_true)[0]
        self.ids.scatter_nd_update((self.seen + tf.range(k))[:, None], y_true[:, 0])
        self.sizes.scatter_nd_update([[self.calls]], [k])
        self.seen.assign_add(k)
        self.calls.assign_add(1)
        return tf.reduce_mean(tf.square(y_pred))


def _visit_order(seed: int, *, n=30, n_val=4, batch=7, epochs=3, epochs_per_call=50):
    """Train a 1-unit linear model on row ids; returns (rows visited per epoch, batch sizes per epoch)."""
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(n, 2)), np.arange(n, dtype=float)[:, None],
            rng.normal(size=(n_val, 2)), np.full((n_val, 1), -1.0))  # validation rows have id -1
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    loss = RecordingLoss(epochs * (n + n_val))
    train(model, loss, keras.optimizers.SGD(0.01), data, epochs=epochs, batch_size=batch, seed=seed,
          binary=True, epochs_per_call=epochs_per_call)
    per_epoch = loss.ids.numpy().reshape(epochs, n + n_val)
    assert (per_epoch[:, n:] == -1).all()  # each epoch ends with one validation pass
    steps = math.ceil(n / batch)
    return per_epoch[:, :n].astype(int), loss.sizes.numpy()[: epochs * (steps + 1)].reshape(epochs, -1)


def test_every_epoch_visits_every_row_once_in_a_fresh_order():
    orders, sizes = _visit_order(SEED)
    for order in orders:
        np.testing.assert_array_equal(np.sort(order), np.arange(30))
    assert len({tuple(order) for order in orders}) == len(orders)  # reshuffled every epoch
    assert not any(np.array_equal(order, np.arange(30)) for order in orders)
    np.testing.assert_array_equal(sizes, [[7, 7, 7, 7, 2, 4]] * 3)  # 4 full batches, the rest, validation
    np.testing.assert_array_equal(_visit_order(SEED, epochs_per_call=1)[0], orders)  # reproducible
    assert not np.array_equal(_visit_order(SEED + 1)[0], orders)  # and follows the seed


# ---------------------------------------------------------------------------------- divergence


def _assert_diverged_and_restored(run, epochs):
    result = run.result
    assert result.diverged_at is not None
    assert len(result.history) == result.diverged_at < epochs  # stopped early
    rows = _history_array(result)
    assert not np.isfinite(rows[-1]).all() and np.isfinite(rows[:-1]).all()
    assert all(np.isfinite(w).all() for w in run.model.get_weights())


@pytest.mark.parametrize("changes, scale", [(dict(learning_rate=1e6, optimizer="sgd"), 1.0), ({}, 1e30)],
                         ids=["sgd-learning-rate-1e6", "inputs-times-1e30"])
def test_divergence_stops_training_and_keeps_finite_weights(changes, scale):
    spec = _spec(SPIRAL, **changes)
    run = _train(spec, _data(spec, scale), epochs=20, epochs_per_call=5)
    _assert_diverged_and_restored(run, 20)


class NanFromCall:
    """The experiment's real loss, which turns NaN from its `first`-th call on (0-based)."""

    def __init__(self, loss, first: int):
        self.loss, self.first, self.calls = loss, first, tf.Variable(0)

    def __call__(self, y_true, y_pred):
        poison = tf.where(self.calls >= self.first, np.nan, 1.0)
        self.calls.assign_add(1)
        return self.loss(y_true, y_pred) * poison


@pytest.mark.parametrize("nan_epoch, epochs_per_call", [(1, 50), (3, 2), (4, 2), (3, 50)])
def test_divergence_keeps_the_weights_of_the_last_good_epoch(nan_epoch, epochs_per_call):
    """Whether NaN appears inside a graph call or at its last epoch, training stops there and the
    model has exactly the weights a clean run of the epochs before it produces."""
    spec = _spec(SPIRAL, epochs=6)
    data = _data(spec)
    steps = math.ceil(len(data[0]) / spec.batch_size)
    poisoned = NanFromCall(loss_for(spec), first=(nan_epoch - 1) * (steps + 1))  # + 1 validation call
    run = _train(spec, data, loss=poisoned, epochs_per_call=epochs_per_call)
    _assert_diverged_and_restored(run, spec.epochs)
    assert run.result.diverged_at == nan_epoch
    if nan_epoch == 1:
        _assert_same_weights(run.model, build_model(spec, SEED))  # the initial weights
    else:
        clean = _train(spec, data, epochs=nan_epoch - 1)
        np.testing.assert_array_equal(_history_array(run.result)[:-1], _history_array(clean.result))
        _assert_same_weights(run.model, clean.model)


# ---------------------------------------------------------------------------------- model.fit parity


def test_trainer_reaches_the_accuracy_of_model_fit():
    spec = _spec("spiral_easy_relu_2x100", layers=[("relu", 64), ("relu", 64), ("softmax", 3)],
                 optimizer="adam", learning_rate=0.01, epochs=30, batch_size=32)
    data = x, y, x_val, y_val = _data(spec)
    ours = _train(spec, data)
    model, optimizer = build_model(spec, SEED), optimizer_for(spec)  # same seed: same initial weights
    model.compile(optimizer=optimizer, loss=loss_for(spec), metrics=["accuracy"])
    fit = model.fit(x, y, batch_size=spec.batch_size, epochs=spec.epochs, validation_data=(x_val, y_val),
                    shuffle=True, verbose=0).history
    assert int(optimizer.iterations.numpy()) == int(ours.optimizer.iterations.numpy())
    assert len(fit["val_accuracy"]) == len(ours.result.history) == spec.epochs
    # Different shuffles, same problem: 30 epochs land both near the same accuracy. (Both runs are
    # deterministic under enable_op_determinism, so this is not flaky on a given machine.)
    assert abs(ours.result.history[-1]["val_accuracy"] - fit["val_accuracy"][-1]) <= 0.1


def test_split_validation_matches_keras_for_every_experiment():
    from keras.src.trainers.data_adapters.array_slicing import train_validation_split  # Keras' own

    for key, spec in PARAMS.experiments.items():
        X, y = make_dataset(PARAMS.datasets[spec.dataset], SEED)
        X, _, y, _ = split_test(X, y, PARAMS.datasets[spec.dataset].test_fraction, SEED)
        (x_fit, _), (x_val, _) = train_validation_split((X, y), spec.validation_split)
        ours = split_validation(X, y, spec.validation_split)
        assert (len(ours[0]), len(ours[2])) == (len(x_fit), len(x_val)), key


# ---------------------------------------------------------------------------------- stages.network

NETWORKS = {
    "relu-sigmoid-softmax": (SPIRAL, [("relu", 16), ("sigmoid", 16), ("softmax", 3)]),
    "binary-sigmoid": ("linear_perceptron", None),
    "twelve-dense-layers": (SPIRAL, [("relu", 8)] * 11 + [("softmax", 3)]),
}


@pytest.mark.parametrize("name", list(NETWORKS))
def test_numpy_forward_pass_equals_keras(tmp_path, small_params, name):
    key, layers = NETWORKS[name]
    if layers:
        small_params["experiments"][key]["layers"] = [{"activation": a, "units": u} for a, u in layers]
    spec = parse_params(small_params).experiments[key]
    run = _train(spec, _data(spec))
    path = tmp_path / "m.keras"
    run.model.save(path)

    loaded = network.load_layers(path)
    assert [layer.activation for layer in loaded] == [layer.activation for layer in spec.layers]
    assert any(np.any(layer.bias != 0) for layer in loaded)  # trained: biases are read, not zeros
    counts = [layer.kernel.size + layer.bias.size for layer in loaded]  # every weight was read
    assert sum(counts) == run.model.count_params() == sum(spec.parameter_counts())
    assert counts == [layer.count_params() for layer in run.model.layers]

    x, _, x_val, _ = run.data
    points = np.vstack([x_val, np.column_stack([g.ravel() for g in make_grid(x, 20, 0.1)])])
    expected = run.model.predict(points, verbose=0)
    proba = network.predict_proba(loaded, points)
    if spec.is_binary:
        assert expected.shape == (len(points), 1) and proba.shape == (len(points), 2)
        expected = np.hstack([1 - expected, expected])
    np.testing.assert_allclose(proba, expected, atol=1e-5)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)

    grid = make_grid(x, 7, 0.1)
    np.testing.assert_array_equal(network.predict_grid(loaded, grid).reshape(-1, proba.shape[1]),
                                  network.predict_proba(loaded, np.column_stack([g.ravel() for g in grid])))
