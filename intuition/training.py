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
    n_seeds = len(models)
    slices = slices or Slices.uniform(n_seeds, float(optimizer.learning_rate.numpy()))
    x, x_val = (tf.constant(np.stack([preprocess(m, a) for m in models]), tf.float32) for a in (data.x, data.x_val))
    y, y_val = (tf.constant(a, tf.float32) for a in (data.y, data.y_val))
    n, n_val = int(x.shape[1]), int(x_val.shape[1])
    steps = steps_per_epoch(n, batch_size)
    layers = [dense_layers(m) for m in models]
    kernels = [keras.Variable(tf.stack([seed[j].kernel.value for seed in layers])) for j in range(len(layers[0]))]
    biases = [keras.Variable(tf.stack([seed[j].bias.value for seed in layers])) for j in range(len(layers[0]))]
    activations = [keras.activations.get(layer.activation) for layer in layers[0]]
    weights = kernels + biases
    optimizer.build(weights)
    # Per slice, shaped to broadcast over each weight: Keras' own update_step multiplies by it element-wise.
    rates = tf.constant(slices.learning_rates, tf.float32)
    rates = [tf.reshape(rates, [-1] + [1] * (len(w.shape) - 1)) for w in weights]
    penalty = _penalty(kernels, slices)
    loss_of = loss or (keras.losses.binary_crossentropy if binary else keras.losses.categorical_crossentropy)
    # Per seed: the weights at the end of its last finite epoch, and whether it is still finite.
    kept = [tf.Variable(w.value, trainable=False) for w in weights]
    alive = tf.Variable(tf.ones(n_seeds, tf.bool), trainable=False)
    seed_ids = tf.constant(seeds, tf.int32)

    def forward(a):  # a: (seeds, rows, features) -> (seeds, rows, k)
        for kernel, bias, activation in zip(kernels, biases, activations):
            a = activation(tf.matmul(a, kernel) + bias[:, None, :])
        return a

    def evaluate(xs, ys, rows):  # the loss with the penalty, as Keras' evaluate reports it
        pred = forward(xs)
        targets = tf.broadcast_to(ys, (n_seeds, *ys.shape))
        losses = tf.reduce_mean(loss_of(targets, pred), axis=-1)
        return losses + (penalty() if penalty else 0.0), _correct(targets, pred, binary) / rows

    def one_epoch(epoch):
        orders = tf.stack([tf.random.experimental.stateless_shuffle(tf.range(n), seed=tf.stack([seed_ids[s], epoch]))
                           for s in range(n_seeds)])
        loss_sum, correct = tf.zeros(n_seeds), tf.zeros(n_seeds)
        for step in tf.range(steps):
            batch = orders[:, step * batch_size : tf.minimum((step + 1) * batch_size, n)]
            xb, yb = tf.gather(x, batch, batch_dims=1), tf.gather(y, batch)
            with tf.GradientTape() as tape:
                pred = forward(xb)
                losses = tf.reduce_mean(loss_of(yb, pred), axis=-1)  # one mean loss per seed
                if penalty is not None:
                    losses += penalty()
                total = tf.reduce_sum(losses)  # seed s's weights get seed s's gradient only
            # What optimizer.apply_gradients does here (no clipping, decay or averaging configured),
            # with each slice's learning rate: Keras' update step, then one more iteration.
            for gradient, weight, rate in zip(tape.gradient(total, weights), weights, rates):
                optimizer.update_step(gradient, weight, rate)
            optimizer.iterations.assign_add(1)
            loss_sum += losses * tf.cast(tf.shape(batch)[1], tf.float32)
            correct += _correct(yb, pred, binary)
        val_loss, val_accuracy = evaluate(x_val, y_val, n_val)
        rows = tf.stack([loss_sum / n, correct / n, val_loss, val_accuracy], axis=1)  # (seeds, 4)
        finite = tf.reduce_all(tf.math.is_finite(rows), axis=1) & alive
        for saved, w in zip(kept, weights):
            mask = tf.reshape(finite, [-1] + [1] * (len(w.shape) - 1))
            saved.assign(tf.where(mask, w, saved))
        alive.assign(finite)
        return rows

    @tf.function
    def run_epochs(first, count):
        out = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        for i in tf.range(count):
            out = out.write(i, one_epoch(first + i))
            if not tf.reduce_any(alive):
                break
        return out.stack()

    start_loss, start_accuracy = evaluate(x, y, n)
    start_val_loss, start_val_accuracy = evaluate(x_val, y_val, n_val)
    chunks = [np.stack([start_loss, start_accuracy, start_val_loss, start_val_accuracy], axis=1)[None]]
    diverged_at: list[int | None] = [None] * n_seeds
    snap_epochs = snapshot_epochs(epochs, snapshot_count)  # 1: epoch 0 only (`make bench` compares)
    # `kept` is each seed's weights, or a diverged seed's last finite ones: what its model will be.
    snaps = [[w.numpy() for w in kept]]  # epoch 0
    first = 1
    for last in _chunk_ends(epochs, epochs_per_call, snap_epochs):
        count = tf.constant(last + 1 - first, tf.int32)
        rows = run_epochs(tf.constant(first, tf.int32), count).numpy()  # (epochs run, seeds, 4)
        chunks.append(rows)
        for s in range(n_seeds):
            bad = np.nonzero(~np.isfinite(rows[:, s]).all(axis=1))[0]
            if diverged_at[s] is None and bad.size:
                diverged_at[s] = first + int(bad[0])
        everyone_diverged = not alive.numpy().any()
        if last in snap_epochs:
            snaps.append([w.numpy() for w in kept])
        if on_progress and (last % epochs_per_call == 0 or last == epochs or everyone_diverged):
            on_progress(_frame(rows[-1:], first + len(rows) - 1, diverged_at))
        if everyone_diverged:
            break
        first = last + 1
    snaps += [snaps[-1]] * (len(snap_epochs) - len(snaps))  # after everyone diverged: the kept weights
    for saved, w in zip(kept, weights):  # diverged seeds get their last finite epoch back
        w.assign(saved)
    for s, seed_layers in enumerate(layers):
        for j, layer in enumerate(seed_layers):
            layer.kernel.assign(kernels[j][s])
            layer.bias.assign(biases[j][s])
    stacked = [np.stack(weight) for weight in zip(*snaps)]  # per weight: (snapshots, seeds, ...)
    snapshots = Snapshots(np.array(snap_epochs), stacked[:len(kernels)], stacked[len(kernels):])
    return TrainingResult(steps, _frame(np.concatenate(chunks), 0, diverged_at), diverged_at, snapshots)


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
