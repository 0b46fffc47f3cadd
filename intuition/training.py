"""A fast trainer with `model.fit`'s semantics, for several seeds at once.

The models here are tiny, so `model.fit` spends its time in per-step Python and op overhead
(measured: ~24x slower, `make bench`). This trainer
- compiles a chunk of epochs (reshuffle, every mini-batch step, running train loss and accuracy,
  validation) into one `tf.function`, and
- trains all seeds of an experiment in the same ops: each Dense layer's weights are stacked along
  a leading seed axis, (seeds, fan_in, units), and every step is a batched matmul. The summed loss
  has independent gradients per seed slice, and SGD and Adam update element-wise, so each seed
  trains exactly as it would alone; five seeds cost about what one costs.
Everything else is as `fit` does it: same epochs, batch size and number of optimizer steps, a
fresh shuffle every epoch (per seed), Keras optimizer and loss functions, per-epoch train and
validation loss and accuracy. No MLflow, no files, no plotting.

It also keeps every seed's weights at ~30 log-spaced epochs (`snapshot_epochs`), for the figures
of how the boundary forms: the graph calls end at those epochs, so copying the weights costs a
few dozen Python steps per training, not one per epoch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import tensorflow as tf

import keras
from intuition.types import HISTORY_COLUMNS, Snapshots
from intuition.models import dense_layers, preprocess

METRICS = HISTORY_COLUMNS[2:]


@dataclass(frozen=True)
class FitData:
    """What training sees: the fitted rows and the validation rows, targets encoded for the loss."""

    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray


@dataclass(frozen=True)
class TrainingResult:
    steps_per_epoch: int
    # One row per seed and epoch (HISTORY_COLUMNS). Epoch 0 is the untrained model, evaluated on
    # the fitted and validation rows; epochs 1..E are fit's running means over the epoch's steps.
    history: pd.DataFrame
    diverged_at: list[int | None]  # per seed: the first epoch whose loss or accuracy was not finite
    snapshots: Snapshots  # every seed's weights at snapshot_epochs(epochs)


def steps_per_epoch(n_rows: int, batch_size: int) -> int:
    return math.ceil(n_rows / batch_size)


def snapshot_epochs(epochs: int, n: int = 30) -> list[int]:
    """`n` epochs from 0 (untrained) to `epochs` (every epoch if there are no more), spaced evenly
    in log(epoch + 1): a boundary changes most in the first epochs. Where log spacing would put
    two on the same epoch, consecutive epochs are taken and the rest re-spaced."""
    if epochs + 1 <= n:
        return list(range(epochs + 1))
    ends = [1]  # epoch + 1
    while len(ends) < n:
        left = n - len(ends)
        ratio = ((epochs + 1) / ends[-1]) ** (1 / left)
        ends.append(min(max(ends[-1] + 1, round(ends[-1] * ratio)), epochs + 2 - left))
    return [end - 1 for end in ends]


def _chunk_ends(epochs: int, epochs_per_call: int, snapshots: list[int]) -> list[int]:
    """The last epoch of each graph call: every `epochs_per_call` epochs and at every snapshot."""
    return sorted((set(range(epochs_per_call, epochs, epochs_per_call)) | {epochs} | set(snapshots)) - {0})


@dataclass(frozen=True)
class Slices:
    """What may differ between the models trained together, element-wise per model."""

    learning_rates: list[float]
    l1: list[float]
    l2: list[float]

    @classmethod
    def uniform(cls, n: int, learning_rate: float, l1: float = 0.0, l2: float = 0.0) -> Slices:
        return cls([learning_rate] * n, [l1] * n, [l2] * n)

    def __add__(self, other: Slices) -> Slices:
        return Slices(self.learning_rates + other.learning_rates, self.l1 + other.l1, self.l2 + other.l2)


def _penalty(kernels: list, slices: Slices) -> Callable | None:
    """Keras' L1L2 kernel regularizer per slice: l1 · Σ|w| + l2 · Σw² over every kernel, a (slices,)
    tensor to add to the slices' losses; None when no slice is regularised (the loss stays as it was)."""
    if not any(slices.l1) and not any(slices.l2):
        return None
    l1, l2 = (tf.constant(rates, tf.float32) for rates in (slices.l1, slices.l2))

    def penalty():
        return tf.add_n([l1 * tf.reduce_sum(tf.abs(k), axis=[1, 2]) + l2 * tf.reduce_sum(tf.square(k), axis=[1, 2])
                         for k in kernels])
    return penalty


def _correct(y_true, y_pred, binary: bool):
    """Correct predictions per seed: (seeds, rows, k) -> (seeds,)."""
    if binary:
        hits = tf.equal(tf.cast(y_pred > 0.5, y_true.dtype), y_true)[..., 0]
    else:
        hits = tf.equal(tf.argmax(y_pred, axis=-1), tf.argmax(y_true, axis=-1))
    return tf.reduce_sum(tf.cast(hits, tf.float32), axis=-1)


@dataclass(frozen=True, eq=False)  # compared and hashed as the one object it is
class _Stacked:
    """Every model's Dense layers stacked along a leading slice axis, kernels (slices, fan_in, units)
    and biases (slices, units): the variables the graph trains. `kept` holds each slice's weights at
    the end of its last finite epoch, `alive` whether it is still finite."""

    kernels: list
    biases: list
    activations: list
    kept: list
    alive: tf.Variable

    @classmethod
    def of(cls, layers: list[list]) -> _Stacked:
        depth = range(len(layers[0]))
        kernels = [keras.Variable(tf.stack([seed[j].kernel.value for seed in layers])) for j in depth]
        biases = [keras.Variable(tf.stack([seed[j].bias.value for seed in layers])) for j in depth]
        return cls(kernels, biases, [keras.activations.get(layer.activation) for layer in layers[0]],
                   [tf.Variable(w.value, trainable=False) for w in kernels + biases],
                   tf.Variable(tf.ones(len(layers), tf.bool), trainable=False))

    @property
    def weights(self) -> list:
        return self.kernels + self.biases

    def forward(self, a):  # a: (slices, rows, features) -> (slices, rows, k)
        for kernel, bias, activation in zip(self.kernels, self.biases, self.activations):
            a = activation(tf.matmul(a, kernel) + bias[:, None, :])
        return a

    def keep(self, finite) -> None:
        """After an epoch: each slice still finite keeps the epoch's weights; `alive` becomes `finite`."""
        for saved, w in zip(self.kept, self.weights):
            mask = tf.reshape(finite, [-1] + [1] * (len(w.shape) - 1))
            saved.assign(tf.where(mask, w, saved))
        self.alive.assign(finite)

    def restore(self, layers: list[list]) -> None:
        """Each model's Dense layers get its slice of the kept weights (a diverged one: its last finite)."""
        for saved, w in zip(self.kept, self.weights):
            w.assign(saved)
        for s, seed_layers in enumerate(layers):
            for j, layer in enumerate(seed_layers):
                layer.kernel.assign(self.kernels[j][s])
                layer.bias.assign(self.biases[j][s])


class _Epochs:
    """What one graph call runs: a chunk of epochs of `stacked`, every slice at once, as `fit` would."""

    def __init__(self, stacked: _Stacked, optimizer: keras.optimizers.Optimizer, slices: Slices, seeds: list[int],
                 models: list[keras.Sequential], data: FitData, *, batch_size: int, binary: bool,
                 loss: Callable | None):
        self.stacked, self.optimizer, self.batch_size, self.binary = stacked, optimizer, batch_size, binary
        # Each model's rows through its own fixed layers (inputs standardized or not, features).
        self.x, self.x_val = (tf.constant(np.stack([preprocess(m, a) for m in models]), tf.float32)
                              for a in (data.x, data.x_val))
        self.y, self.y_val = (tf.constant(a, tf.float32) for a in (data.y, data.y_val))
        self.n, self.n_val, self.n_slices = int(self.x.shape[1]), int(self.x_val.shape[1]), len(seeds)
        self.steps = steps_per_epoch(self.n, batch_size)
        # Per slice, shaped to broadcast over each weight: Keras' own update_step multiplies by it element-wise.
        rates = tf.constant(slices.learning_rates, tf.float32)
        self.rates = [tf.reshape(rates, [-1] + [1] * (len(w.shape) - 1)) for w in stacked.weights]
        self.penalty = _penalty(stacked.kernels, slices)
        self.loss_of = loss or (keras.losses.binary_crossentropy if binary else keras.losses.categorical_crossentropy)
        self.seed_ids = tf.constant(seeds, tf.int32)

    def evaluate(self, xs, ys, rows):
        """Each slice's loss with the penalty, as Keras' evaluate reports it, and its accuracy."""
        pred = self.stacked.forward(xs)
        targets = tf.broadcast_to(ys, (self.n_slices, *ys.shape))
        losses = tf.reduce_mean(self.loss_of(targets, pred), axis=-1)
        return losses + (self.penalty() if self.penalty else 0.0), _correct(targets, pred, self.binary) / rows

    def start(self) -> np.ndarray:
        """Epoch 0, the untrained models: (1, slices, 4) rows."""
        loss, accuracy = self.evaluate(self.x, self.y, self.n)
        val_loss, val_accuracy = self.evaluate(self.x_val, self.y_val, self.n_val)
        return np.stack([loss, accuracy, val_loss, val_accuracy], axis=1)[None]

    def one_epoch(self, epoch):
        n, batch_size, weights, optimizer = self.n, self.batch_size, self.stacked.weights, self.optimizer
        orders = tf.stack([tf.random.experimental.stateless_shuffle(tf.range(n), seed=tf.stack([self.seed_ids[s], epoch]))
                           for s in range(self.n_slices)])
        loss_sum, correct = tf.zeros(self.n_slices), tf.zeros(self.n_slices)
        for step in tf.range(self.steps):
            batch = orders[:, step * batch_size : tf.minimum((step + 1) * batch_size, n)]
            xb, yb = tf.gather(self.x, batch, batch_dims=1), tf.gather(self.y, batch)
            with tf.GradientTape() as tape:
                pred = self.stacked.forward(xb)
                losses = tf.reduce_mean(self.loss_of(yb, pred), axis=-1)  # one mean loss per slice
                if self.penalty is not None:
                    losses += self.penalty()
                total = tf.reduce_sum(losses)  # slice s's weights get slice s's gradient only
            # What optimizer.apply_gradients does here (no clipping, decay or averaging configured),
            # with each slice's learning rate: Keras' update step, then one more iteration.
            for gradient, weight, rate in zip(tape.gradient(total, weights), weights, self.rates):
                optimizer.update_step(gradient, weight, rate)
            optimizer.iterations.assign_add(1)
            loss_sum += losses * tf.cast(tf.shape(batch)[1], tf.float32)
            correct += _correct(yb, pred, self.binary)
        val_loss, val_accuracy = self.evaluate(self.x_val, self.y_val, self.n_val)
        rows = tf.stack([loss_sum / n, correct / n, val_loss, val_accuracy], axis=1)  # (slices, 4)
        self.stacked.keep(tf.reduce_all(tf.math.is_finite(rows), axis=1) & self.stacked.alive)
        return rows

    @tf.function
    def run(self, first, count):
        """Epochs first .. first + count - 1, or until every slice has diverged: (epochs run, slices, 4)."""
        out = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        for i in tf.range(count):
            out = out.write(i, self.one_epoch(first + i))
            if not tf.reduce_any(self.stacked.alive):
                break
        return out.stack()


@dataclass(frozen=True)
class _Run:
    """What the chunks of epochs gave: their rows, each slice's divergence epoch, the snapshots."""

    rows: np.ndarray  # (epochs, slices, 4), epoch 0 first
    diverged_at: list[int | None]
    snaps: list[list[np.ndarray]]  # per snapshot epoch: every weight's kept value


def _run_chunks(graph: _Epochs, epochs: int, epochs_per_call: int, snap_epochs: list[int],
                on_progress: Callable[[pd.DataFrame], None] | None) -> _Run:
    """Call the graph chunk by chunk (ending at every snapshot), noting divergences and progress."""
    stacked, n_slices = graph.stacked, graph.n_slices
    chunks = [graph.start()]
    diverged_at: list[int | None] = [None] * n_slices
    # `kept` is each slice's weights, or a diverged slice's last finite ones: what its model will be.
    snaps = [[w.numpy() for w in stacked.kept]]  # epoch 0
    first = 1
    for last in _chunk_ends(epochs, epochs_per_call, snap_epochs):
        rows = graph.run(tf.constant(first, tf.int32), tf.constant(last + 1 - first, tf.int32)).numpy()
        chunks.append(rows)
        for s in range(n_slices):
            bad = np.nonzero(~np.isfinite(rows[:, s]).all(axis=1))[0]
            if diverged_at[s] is None and bad.size:
                diverged_at[s] = first + int(bad[0])
        everyone_diverged = not stacked.alive.numpy().any()
        if last in snap_epochs:
            snaps.append([w.numpy() for w in stacked.kept])
        if on_progress and (last % epochs_per_call == 0 or last == epochs or everyone_diverged):
            on_progress(_frame(rows[-1:], first + len(rows) - 1, diverged_at))
        if everyone_diverged:
            break
        first = last + 1
    snaps += [snaps[-1]] * (len(snap_epochs) - len(snaps))  # after everyone diverged: the kept weights
    return _Run(np.concatenate(chunks), diverged_at, snaps)


def train(
    models: list[keras.Sequential],
    optimizer: keras.optimizers.Optimizer,
    data: FitData,
    *,
    epochs: int,
    batch_size: int,
    seeds: list[int],
    binary: bool,
    epochs_per_call: int = 50,
    on_progress: Callable[[pd.DataFrame], None] | None = None,
    loss: Callable | None = None,
    snapshot_count: int = 30,
    slices: Slices | None = None,
) -> TrainingResult:
    """Train `models` (one per seed, same Dense shapes; seed i shuffles with `seeds[i]`) in place.

    A seed whose loss becomes NaN or infinite stops there and keeps its previous epoch's weights;
    the other seeds go on. `on_progress` gets the rows of every `epochs_per_call`-th epoch and of
    the last. `loss` (per row: (y_true, y_pred) -> loss, default Keras' binary or categorical
    cross-entropy, as the output layer implies) is for tests. The result holds every seed's weights
    at snapshot_epochs(epochs, snapshot_count) too.

    The models may also be a sweep's points times their seeds ("slices"): they then differ in what
    is element-wise per slice, `slices`' learning rate and l1/l2 penalty, and in their fixed layers
    ahead of the Dense ones (inputs standardized or not, features), which each model applies to the
    rows itself. Everything else (Dense shapes, activations, optimizer, batch size, epochs) is shared."""
    slices = slices or Slices.uniform(len(models), float(optimizer.learning_rate.numpy()))
    layers = [dense_layers(m) for m in models]
    stacked = _Stacked.of(layers)
    optimizer.build(stacked.weights)
    graph = _Epochs(stacked, optimizer, slices, seeds, models, data, batch_size=batch_size, binary=binary, loss=loss)
    snap_epochs = snapshot_epochs(epochs, snapshot_count)  # 1: epoch 0 only (`make bench` compares)
    done = _run_chunks(graph, epochs, epochs_per_call, snap_epochs, on_progress)
    stacked.restore(layers)
    per_weight = [np.stack(weight) for weight in zip(*done.snaps)]  # per weight: (snapshots, seeds, ...)
    snapshots = Snapshots(np.array(snap_epochs), per_weight[:len(stacked.kernels)], per_weight[len(stacked.kernels):])
    return TrainingResult(graph.steps, _frame(done.rows, 0, done.diverged_at), done.diverged_at, snapshots)


def _frame(rows: np.ndarray, first_epoch: int, diverged_at: list[int | None]) -> pd.DataFrame:
    """(epochs, seeds, 4) rows -> the long history table, without a seed's epochs after it diverged."""
    n_epochs, n_seeds, _ = rows.shape
    frame = pd.DataFrame({
        "seed": np.tile(np.arange(n_seeds), n_epochs),
        "epoch": np.repeat(np.arange(first_epoch, first_epoch + n_epochs), n_seeds),
        **{name: rows[:, :, i].ravel().astype(float) for i, name in enumerate(METRICS)},
    })
    last = np.array([np.inf if d is None else d for d in diverged_at])
    return frame[frame["epoch"] <= last[frame["seed"]]].sort_values(["seed", "epoch"], ignore_index=True)
