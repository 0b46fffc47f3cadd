"""Keras parts: build_model, the fast multi-seed trainer (model.fit's semantics, seeds independent,
determinism, divergence per seed) and the NumPy forward pass of a saved .keras file. Imports
TensorFlow (~4 s), so it lives in its own file.

Models are real and trained for a few epochs on the project's own datasets.
"""

import math
import os
from types import SimpleNamespace

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from intuition import network  # noqa: E402
from intuition.config import ExperimentSpec, load_params, parse_params  # noqa: E402
from intuition.datasets import make_dataset, split_test, split_validation  # noqa: E402
from intuition.metrics import make_grid  # noqa: E402
from intuition.models import build_model, dense_layers, encode_targets, optimizer_for  # noqa: E402
from intuition.training import HISTORY_COLUMNS, FitData, Slices, snapshot_epochs, train  # noqa: E402

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


def _data(spec: ExperimentSpec, scale: float = 1.0) -> FitData:
    """What stages/train.py trains on, targets encoded for the loss."""
    splits = split_test(make_dataset(PARAMS.datasets[spec.dataset], SEED), PARAMS.datasets[spec.dataset].test_fraction, SEED)
    cut = split_validation(splits.train, spec.validation_split)
    return FitData(cut.fit.X * scale, encode_targets(cut.fit.y, spec), cut.val.X * scale, encode_targets(cut.val.y, spec))


def _train(spec, data, *, seeds=(SEED,), epochs=None, **options):
    """Build one model per seed and train them together, as stages/train.py does."""
    models, optimizer = [build_model(spec, s, data.x) for s in seeds], optimizer_for(spec)
    result = train(models, optimizer, data, epochs=epochs or spec.epochs, batch_size=spec.batch_size,
                   seeds=list(seeds), binary=spec.is_binary, **options)
    return SimpleNamespace(models=models, optimizer=optimizer, result=result, data=data, spec=spec)


def _assert_same_weights(a: keras.Model, b: keras.Model, **tolerance):
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_allclose(wa, wb, **tolerance) if tolerance else np.testing.assert_array_equal(wa, wb)


def _differ(a: keras.Model, b: keras.Model) -> bool:
    return any(not np.array_equal(wa, wb) for wa, wb in zip(a.get_weights(), b.get_weights()))


def _keras_loss(spec):
    return keras.losses.BinaryCrossentropy() if spec.is_binary else keras.losses.CategoricalCrossentropy()


def _rows(result, seed: int) -> np.ndarray:
    return result.history[result.history["seed"] == seed][list(HISTORY_COLUMNS[1:])].to_numpy()


@pytest.fixture(scope="module")
def spiral_run():
    """One short training of three seeds, shared by the read-only tests: 7 epochs in calls of 3, 3, 1."""
    spec = _spec(SPIRAL, epochs=7)
    return _train(spec, _data(spec), seeds=(SEED, SEED + 1, SEED + 2), epochs_per_call=3)


# ---------------------------------------------------------------------------------- build_model


@pytest.mark.parametrize("key", list(PARAMS.experiments))
def test_build_model_follows_the_spec(key):
    spec = PARAMS.experiments[key]
    model = build_model(spec, SEED, np.random.default_rng(0).normal(size=(50, 2)))
    dense = dense_layers(model)
    assert [layer.units for layer in dense] == [layer.units for layer in spec.layers]
    assert [layer.get_config()["activation"] for layer in dense] == [layer.activation for layer in spec.layers]
    assert [layer.count_params() for layer in dense] == spec.parameter_counts()
    assert spec.summary().splitlines()[-1].split()[-1] == str(sum(spec.parameter_counts()))
    assert model.output_shape == (None, spec.output.units)
    fixed = (tuple(spec.features) != ("x1", "x2")) + (spec.inputs == "standardized")  # features, Normalization
    assert len(model.layers) - len(dense) == fixed


def test_standardized_inputs_are_adapted_on_the_fitted_rows_only():
    spec = _spec("spiral_hard_relu_1x100", inputs="standardized")
    x_fit = np.random.default_rng(1).normal(30.0, 50.0, size=(400, 2))
    model = build_model(spec, SEED, x_fit)
    mean, variance = model.layers[0].get_weights()[:2]
    np.testing.assert_allclose(mean.ravel(), x_fit.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(variance.ravel(), x_fit.var(axis=0), rtol=1e-4)
    z = model.layers[0](x_fit.astype("float32")).numpy()
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=0), 1, atol=1e-3)


def test_build_model_initial_weights_follow_the_seed():
    spec = PARAMS.experiments["spiral_hard_relu_2x100"]
    x = np.zeros((4, 2))
    first, second, other = build_model(spec, SEED, x), build_model(spec, SEED, x), build_model(spec, SEED + 1, x)
    _assert_same_weights(first, second)
    assert _differ(first, other)


@pytest.mark.parametrize("key", ["linear_perceptron", "bands_relu_2x10", SPIRAL])
def test_targets_are_encoded_for_the_loss(key):
    spec = PARAMS.experiments[key]
    y = np.array([0, 1, 1, 0])
    targets = encode_targets(y, spec)
    if spec.is_binary:
        np.testing.assert_array_equal(targets, y.reshape(-1, 1))
    else:
        assert targets.shape == (4, spec.output.units)
        np.testing.assert_array_equal(targets.argmax(axis=1), y)


# ---------------------------------------------------------------------------------- trainer


def test_history_has_a_row_per_seed_and_epoch_from_the_untrained_model(spiral_run):
    history = spiral_run.result.history
    assert tuple(history.columns) == HISTORY_COLUMNS
    assert history.groupby("seed")["epoch"].apply(list).tolist() == [list(range(0, 8))] * 3
    assert np.isfinite(history.to_numpy()).all()
    assert spiral_run.result.diverged_at == [None, None, None]


def test_optimizer_steps_match_model_fit(spiral_run):
    n, batch = len(spiral_run.data.x), spiral_run.spec.batch_size
    assert n % batch != 0  # so the last, partial batch counts as a step
    assert spiral_run.result.steps_per_epoch == math.ceil(n / batch)
    assert int(spiral_run.optimizer.iterations.numpy()) == 7 * math.ceil(n / batch)


def test_final_validation_scores_are_each_seeds_trained_model(spiral_run):
    data, loss = spiral_run.data, _keras_loss(spiral_run.spec)
    for seed, model in enumerate(spiral_run.models):
        proba = model(data.x_val, training=False)
        last = spiral_run.result.history.query("seed == @seed").iloc[-1]
        assert float(loss(data.y_val, proba)) == pytest.approx(last["val_loss"], abs=1e-5)
        accuracy = np.mean(np.argmax(proba, axis=1) == np.argmax(data.y_val, axis=1))
        assert accuracy == pytest.approx(last["val_accuracy"], abs=1e-6)


def test_epoch_zero_is_the_untrained_model(spiral_run):
    spec, data = spiral_run.spec, spiral_run.data
    for seed in range(3):
        untrained = build_model(spec, SEED + seed, data.x)
        row = spiral_run.result.history.query("seed == @seed and epoch == 0").iloc[0]
        assert float(_keras_loss(spec)(data.y, untrained(data.x))) == pytest.approx(row["loss"], abs=1e-5)
        assert float(_keras_loss(spec)(data.y_val, untrained(data.x_val))) == pytest.approx(row["val_loss"], abs=1e-5)


def test_each_seed_trains_as_it_would_alone(spiral_run):
    """Stacking seeds changes nothing for any one of them: seed i in a group of three ends with
    the weights and history of seed i trained by itself (same initial weights, same batches)."""
    for i in (0, 2):
        alone = _train(spiral_run.spec, spiral_run.data, seeds=(SEED + i,), epochs_per_call=3)
        np.testing.assert_allclose(_rows(alone.result, 0), _rows(spiral_run.result, i), rtol=1e-4, atol=1e-5)
        _assert_same_weights(alone.models[0], spiral_run.models[i], rtol=1e-4, atol=1e-5)


def test_same_seeds_same_training_whatever_the_graph_chunks(spiral_run):
    again = _train(spiral_run.spec, spiral_run.data, seeds=(SEED, SEED + 1, SEED + 2), epochs_per_call=50)
    np.testing.assert_array_equal(again.result.history.to_numpy(), spiral_run.result.history.to_numpy())
    for a, b in zip(again.models, spiral_run.models):
        _assert_same_weights(a, b)


def test_different_seeds_train_differently(spiral_run):
    assert not np.array_equal(_rows(spiral_run.result, 0)[1:], _rows(spiral_run.result, 1)[1:])
    assert _differ(spiral_run.models[0], spiral_run.models[1])


class RecordingLoss:
    """A real (squared output) per-row loss that also records which rows seed 0 sees: the targets
    passed to the trainer are row ids, so the record shows every mini-batch of every epoch."""

    def __init__(self, capacity: int):
        self.ids = tf.Variable(tf.fill([capacity], -2.0))
        self.sizes = tf.Variable(tf.zeros([capacity], tf.int32))
        self.seen = tf.Variable(0)
        self.calls = tf.Variable(0)

    def __call__(self, y_true, y_pred):  # (seeds, rows, 1)
        k = tf.shape(y_true)[1]
        self.ids.scatter_nd_update((self.seen + tf.range(k))[:, None], y_true[0, :, 0])
        self.sizes.scatter_nd_update([[self.calls]], [k])
        self.seen.assign_add(k)
        self.calls.assign_add(1)
        return tf.reduce_mean(tf.square(y_pred), axis=-1)


def _visit_order(seed: int, *, n=30, n_val=4, batch=7, epochs=3, epochs_per_call=50):
    """Train a 1-unit linear model on row ids; returns (rows visited per epoch, batch sizes per epoch)."""
    rng = np.random.default_rng(0)
    data = FitData(rng.normal(size=(n, 2)), np.arange(n, dtype=float)[:, None],
                   rng.normal(size=(n_val, 2)), np.full((n_val, 1), -1.0))  # validation rows have id -1
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    loss = RecordingLoss((epochs + 1) * (n + n_val))
    train([model], keras.optimizers.SGD(0.01), data, epochs=epochs, batch_size=batch, seeds=[seed],
          binary=True, epochs_per_call=epochs_per_call, loss=loss)
    per_epoch = loss.ids.numpy().reshape(epochs + 1, n + n_val)[1:]  # epoch 0: the untrained model
    assert (per_epoch[:, n:] == -1).all()  # each epoch ends with one validation pass
    steps = math.ceil(n / batch)
    return per_epoch[:, :n].astype(int), loss.sizes.numpy()[2: 2 + epochs * (steps + 1)].reshape(epochs, -1)


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


@pytest.mark.parametrize("changes, scale", [(dict(learning_rate=1e6, optimizer="sgd"), 1.0), ({}, 1e30)],
                         ids=["sgd-learning-rate-1e6", "inputs-times-1e30"])
def test_divergence_stops_training_and_keeps_finite_weights(changes, scale):
    spec = _spec(SPIRAL, **changes)
    run = _train(spec, _data(spec, scale), seeds=(SEED, SEED + 1), epochs=20, epochs_per_call=5)
    for seed, epoch in enumerate(run.result.diverged_at):
        assert epoch is not None and epoch < 20
        rows = _rows(run.result, seed)
        assert rows[-1, 0] == epoch and not np.isfinite(rows[-1]).all()  # history stops at that epoch
        assert all(np.isfinite(w).all() for w in run.models[seed].get_weights())
        # Training stopped early for both: every later snapshot is still there, the weights each kept.
        assert list(run.result.snapshots.epochs) == snapshot_epochs(20)
        for index in np.flatnonzero(run.result.snapshots.epochs >= epoch - 1):
            _assert_equal_weights(_snapshot(run.result, index, seed), _dense_weights(run.models[seed]))


class NanForOneSeed:
    """The experiment's real loss, which turns NaN for seed `seed` from its `first`-th call on."""

    def __init__(self, seed: int, first: int):
        self.seed, self.first, self.calls = seed, first, tf.Variable(0)

    def __call__(self, y_true, y_pred):
        losses = keras.losses.categorical_crossentropy(y_true, y_pred)
        poisoned = tf.one_hot(self.seed, tf.shape(losses)[0], on_value=np.nan, off_value=1.0)
        factor = tf.where(self.calls >= self.first, poisoned, tf.ones_like(poisoned))
        self.calls.assign_add(1)
        return losses * factor[:, None]


@pytest.mark.parametrize("nan_epoch, epochs_per_call", [(1, 50), (3, 2), (4, 2), (3, 50)])
def test_a_diverging_seed_keeps_its_last_good_epoch_and_the_others_go_on(nan_epoch, epochs_per_call):
    """Whether NaN appears inside a graph call or at its last epoch, the poisoned seed stops there
    with exactly the weights of a clean run of the epochs before it; the other seed trains on."""
    spec = _spec(SPIRAL, epochs=6)
    data = _data(spec)
    steps = math.ceil(len(data.x) / spec.batch_size)
    poisoned = NanForOneSeed(1, first=2 + (nan_epoch - 1) * (steps + 1))  # 2 calls for epoch 0, + validation
    run = _train(spec, data, seeds=(SEED, SEED + 1), epochs_per_call=epochs_per_call, loss=poisoned)
    assert run.result.diverged_at == [None, nan_epoch]
    assert _rows(run.result, 0)[-1, 0] == spec.epochs and np.isfinite(_rows(run.result, 0)).all()
    clean = _train(spec, data, seeds=(SEED, SEED + 1), epochs=max(nan_epoch - 1, 1))
    if nan_epoch == 1:
        _assert_same_weights(run.models[1], build_model(spec, SEED + 1, data.x))  # the initial weights
    else:
        np.testing.assert_array_equal(_rows(run.result, 1)[:-1], _rows(clean.result, 1))
        _assert_same_weights(run.models[1], clean.models[1])
    for index, epoch in enumerate(run.result.snapshots.epochs):  # snapshots: what each seed's model was then
        if epoch >= nan_epoch - 1:  # the poisoned seed: from its last good epoch on, the weights it kept
            _assert_equal_weights(_snapshot(run.result, index, 1), _dense_weights(run.models[1]))
    _assert_equal_weights(_snapshot(run.result, -1, 0), _dense_weights(run.models[0]))


# ---------------------------------------------------------------------------------- snapshots


@pytest.mark.parametrize("epochs", [1, 3, 7, 29, 30, 31, 45, 100, 500, 5000])
def test_snapshot_epochs_are_log_spaced_from_the_untrained_model_to_the_last_epoch(epochs):
    picked = snapshot_epochs(epochs)
    assert picked[0] == 0 and picked[-1] == epochs
    assert len(picked) == min(30, epochs + 1)
    assert (np.diff(picked) >= 1).all()  # unique, ascending
    # Evenly spaced in log(epoch + 1), up to rounding: no step wider than 1.25 even steps, except
    # one epoch (where even log steps would be finer than an epoch).
    even = math.log(epochs + 1) / (len(picked) - 1)
    assert all(b - a == 1 or math.log((b + 1) / (a + 1)) <= 1.25 * even for a, b in zip(picked, picked[1:]))
    if epochs == 500:
        assert sum(e <= 50 for e in picked) >= 15  # half of them in the first tenth: log, not linear


def _dense_weights(model) -> list[np.ndarray]:
    return [w.numpy() for layer in dense_layers(model) for w in (layer.kernel, layer.bias)]


def _snapshot(result, index: int, seed: int) -> list[np.ndarray]:
    """Snapshot `index` of `seed` in the order of _dense_weights: kernel, bias per layer."""
    snaps = result.snapshots
    return [w[index, seed] for kernel, bias in zip(snaps.kernels, snaps.biases) for w in (kernel, bias)]


def _assert_equal_weights(a: list[np.ndarray], b: list[np.ndarray]):
    for wa, wb in zip(a, b, strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_snapshots_run_from_the_initial_weights_to_the_trained_ones(spiral_run):
    snaps, spec = spiral_run.result.snapshots, spiral_run.spec
    assert list(snaps.epochs) == list(range(spec.epochs + 1))  # 7 epochs: every one
    widths = [2] + [layer.units for layer in spec.layers]
    assert [k.shape for k in snaps.kernels] == [(8, 3, a, b) for a, b in zip(widths, widths[1:])]
    assert [b.shape for b in snaps.biases] == [(8, 3, b) for b in widths[1:]]
    for seed, model in enumerate(spiral_run.models):
        _assert_equal_weights(_snapshot(spiral_run.result, 0, seed),
                              _dense_weights(build_model(spec, SEED + seed, spiral_run.data.x)))
        _assert_equal_weights(_snapshot(spiral_run.result, -1, seed), _dense_weights(model))


def test_a_snapshot_is_the_model_after_that_many_epochs_and_progress_keeps_its_pace():
    """45 epochs: 30 snapshots, so graph calls end at them; the weights at one of them are those
    of the same seeds trained for just that many epochs, and progress still comes every 10."""
    spec = _spec(SPIRAL, epochs=45)
    data = _data(spec)
    reported = []
    run = _train(spec, data, seeds=(SEED, SEED + 1), epochs_per_call=10,
                 on_progress=lambda rows: reported.append(int(rows["epoch"].iloc[0])))
    assert reported == [10, 20, 30, 40, 45]
    epochs = list(run.result.snapshots.epochs)
    assert epochs == snapshot_epochs(45) and len(epochs) == 30
    index = next(i for i, e in enumerate(epochs) if e > 20 and e % 10)  # inside a 10-epoch call
    last = int(epochs[index])
    shorter = _train(spec, data, seeds=(SEED, SEED + 1), epochs=last)
    for seed in (0, 1):
        _assert_equal_weights(_snapshot(run.result, index, seed), _dense_weights(shorter.models[seed]))
    np.testing.assert_array_equal(  # and the history up to then is the same
        run.result.history.query("epoch <= @last").to_numpy(), shorter.result.history.to_numpy())


# ---------------------------------------------------------------------------------- model.fit parity


def test_trainer_reaches_the_accuracy_of_model_fit():
    spec = _spec("spiral_easy_relu_2x100", layers=[("relu", 64), ("relu", 64), ("softmax", 3)],
                 optimizer="adam", learning_rate=0.01, epochs=30, batch_size=32)
    data = _data(spec)
    ours = _train(spec, data)
    model, optimizer = build_model(spec, SEED, data.x), optimizer_for(spec)  # same initial weights
    model.compile(optimizer=optimizer, loss=_keras_loss(spec), metrics=["accuracy"])
    fit = model.fit(data.x, data.y, batch_size=spec.batch_size, epochs=spec.epochs,
                    validation_data=(data.x_val, data.y_val), shuffle=True, verbose=0).history
    assert int(optimizer.iterations.numpy()) == int(ours.optimizer.iterations.numpy())
    assert len(fit["val_accuracy"]) == len(ours.result.history) - 1 == spec.epochs
    # Different shuffles, same problem: 30 epochs land both near the same accuracy. (Both runs are
    # deterministic under enable_op_determinism, so this is not flaky on a given machine.)
    assert abs(ours.result.history["val_accuracy"].iloc[-1] - fit["val_accuracy"][-1]) <= 0.1


def test_split_validation_matches_keras_for_every_experiment():
    from keras.src.trainers.data_adapters.array_slicing import train_validation_split  # Keras' own

    for key, spec in PARAMS.experiments.items():
        dataset = PARAMS.datasets[spec.dataset]
        train_rows = split_test(make_dataset(dataset, SEED), dataset.test_fraction, SEED).train
        (x_fit, _), (x_val, _) = train_validation_split((train_rows.X, train_rows.y), spec.validation_split)
        ours = split_validation(train_rows, spec.validation_split)
        assert (len(ours.fit), len(ours.val)) == (len(x_fit), len(x_val)), key


# ---------------------------------------------------------------------------------- intuition.network

NETWORKS = {
    "relu-sigmoid-softmax": (SPIRAL, [("relu", 16), ("sigmoid", 16), ("softmax", 3)], "raw"),
    "binary-sigmoid": ("linear_perceptron", None, "raw"),
    "twelve-dense-layers": (SPIRAL, [("relu", 8)] * 11 + [("softmax", 3)], "raw"),
    "standardized-inputs": ("spiral_hard_relu_2x100", None, "standardized"),
}


@pytest.mark.parametrize("name", list(NETWORKS))
def test_numpy_forward_pass_equals_keras(tmp_path, small_params, name):
    key, layers, inputs = NETWORKS[name]
    if layers:
        small_params["experiments"][key]["layers"] = [{"activation": a, "units": u} for a, u in layers]
    small_params["experiments"][key]["inputs"] = inputs
    spec = parse_params(small_params).experiments[key]
    run = _train(spec, _data(spec))
    model = run.models[0]
    path = tmp_path / "m.keras"
    model.save(path)

    loaded = network.load_layers(path)
    dense = [layer for layer in loaded if isinstance(layer, network.DenseLayer)]
    assert [layer.activation for layer in dense] == [layer.activation for layer in spec.layers]
    assert isinstance(loaded[0], network.Standardize) == (inputs == "standardized")
    assert any(np.any(layer.bias != 0) for layer in dense)  # trained: biases are read, not zeros
    assert sum(layer.kernel.size + layer.bias.size for layer in dense) == sum(spec.parameter_counts())

    grid = make_grid(run.data.x, 20, 0.1)
    points = np.vstack([run.data.x_val, grid.points])  # raw coordinates, as every consumer passes them
    expected = model.predict(points, verbose=0)
    proba = network.predict_proba(loaded, points)
    if spec.is_binary:
        assert expected.shape == (len(points), 1) and proba.shape == (len(points), 2)
        expected = np.hstack([1 - expected, expected])
    np.testing.assert_allclose(proba, expected, atol=1e-5)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)


# --- Models trained together that differ per slice (a sweep's points): learning rate, l1/l2, inputs


def test_an_l2_penalty_is_in_the_loss_as_keras_adds_it():
    """epoch 0's loss is the cross-entropy plus l2 · Σw² over the kernels: what Keras' evaluate
    reports for the same model (its layers carry the regularizer)."""
    spec = _spec(SPIRAL, l2=0.01, l1=0.001)
    data = _data(spec)
    run = _train(spec, data, epochs=1, slices=Slices.uniform(1, spec.learning_rate, spec.l1, spec.l2))
    untrained = build_model(spec, SEED, data.x)
    expected = float(_keras_loss(spec)(data.y, untrained(data.x))) + float(sum(untrained.losses))
    first = run.result.history.query("epoch == 0").iloc[0]
    assert float(sum(untrained.losses)) > 0.01  # the penalty is large enough to be seen
    assert first["loss"] == pytest.approx(expected, rel=1e-5)


def test_a_penalty_shrinks_the_kernels():
    spec = _spec(SPIRAL, epochs=15)
    data = _data(spec)
    plain, penalised = (_train(_spec(SPIRAL, epochs=15, l2=l2), data, slices=Slices.uniform(1, spec.learning_rate, 0, l2))
                        for l2 in (0.0, 0.01))
    norm = lambda run: sum(float(np.square(l.kernel.numpy()).sum()) for l in dense_layers(run.models[0]))  # noqa: E731
    assert norm(penalised) < 0.8 * norm(plain)


def test_slices_with_their_own_learning_rate_and_inputs_train_as_they_would_alone():
    """Two points of a sweep in one graph (learning rates 0.01 and 0.003, raw and standardized
    inputs): each ends as it would trained by itself, to float32 rounding (a bigger batched matmul
    may sum in another order; see intuition.sweeps.trained_names)."""
    specs = [_spec(SPIRAL, learning_rate=0.01), _spec(SPIRAL, learning_rate=0.003, inputs="standardized", l2=0.001)]
    data = _data(specs[0])
    models = [build_model(spec, SEED, data.x) for spec in specs]
    slices = sum((Slices.uniform(1, s.learning_rate, s.l1, s.l2) for s in specs[1:]),
                 Slices.uniform(1, specs[0].learning_rate, specs[0].l1, specs[0].l2))
    together = train(models, optimizer_for(specs[0]), data, epochs=12, batch_size=specs[0].batch_size,
                     seeds=[SEED, SEED], binary=False, slices=slices)
    for i, spec in enumerate(specs):
        alone = _train(spec, data, epochs=12, slices=Slices.uniform(1, spec.learning_rate, spec.l1, spec.l2))
        np.testing.assert_allclose(_rows(alone.result, 0), _rows(together, i), rtol=1e-4, atol=1e-5)
        _assert_same_weights(alone.models[0], models[i], rtol=1e-4, atol=1e-5)
    assert not np.allclose(_rows(together, 0), _rows(together, 1))  # they did train differently


TF_THREADS = """\
import json, os
from intuition.tensorflow_setup import import_tensorflow
tf = import_tensorflow()
from tensorflow.python.framework import config  # no public reader of the flag
tf.constant(1.0) + 1.0  # TensorFlow starts: its thread pools are made from the environment
print(json.dumps({name: os.environ.get(name) for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}
                 | {"deterministic": config.is_op_determinism_enabled()}))
"""


@pytest.mark.parametrize("users", [{}, {"TF_NUM_INTRAOP_THREADS": "2"}], ids=["defaults", "the user's value"])
def test_a_training_process_runs_tensorflow_on_one_thread_unless_told_otherwise(users):
    import json
    import subprocess
    import sys

    environ = {k: v for k, v in os.environ.items() if not k.startswith("TF_NUM_")} | users
    result = subprocess.run([sys.executable, "-c", TF_THREADS], cwd=PARAMS_YAML.parent, env=environ,
                            capture_output=True, text=True, timeout=120, check=True)
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen == {"TF_NUM_INTRAOP_THREADS": users.get("TF_NUM_INTRAOP_THREADS", "1"),
                    "TF_NUM_INTEROP_THREADS": "1", "deterministic": True}
    assert "oneDNN" not in result.stderr  # TensorFlow's start-up lines stay hidden
