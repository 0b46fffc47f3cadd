"""A fast trainer with `model.fit`'s semantics.

The models here are tiny, so `model.fit` spends its time in per-step Python overhead. This
trainer compiles one whole epoch (reshuffle, every mini-batch step, the running train loss and
accuracy) into a single `tf.function`, and keeps everything else as `fit` does it: same epochs,
batch size and number of optimizer steps, a fresh shuffle every epoch, Keras optimizer and loss,
per-epoch train and validation loss/accuracy. No MLflow, no files, no plotting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import tensorflow as tf

import keras

HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy")


@dataclass
class TrainingResult:
    steps_per_epoch: int
    history: list[dict] = field(default_factory=list)  # a row per epoch run: HISTORY_COLUMNS
    diverged_at: int | None = None  # first epoch whose loss was NaN or infinite


def _correct(y_true, y_pred, binary: bool):
    if binary:
        hits = tf.equal(tf.cast(y_pred > 0.5, y_true.dtype), y_true)
    else:
        hits = tf.equal(tf.argmax(y_pred, axis=-1), tf.argmax(y_true, axis=-1))
    return tf.reduce_sum(tf.cast(hits, tf.float32))


def steps_per_epoch(n_rows: int, batch_size: int) -> int:
    return math.ceil(n_rows / batch_size)


def train(
    model: keras.Model,
    loss_fn: keras.losses.Loss,
    optimizer: keras.optimizers.Optimizer,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    *,
    epochs: int,
    batch_size: int,
    seed: int,
    binary: bool,
    epochs_per_call: int = 50,
    on_progress: Callable[[dict], None] | None = None,
) -> TrainingResult:
    """Train `model` in place on `data` = (x, y, x_val, y_val), validating after every epoch.

    Runs `epochs_per_call` epochs per graph call (`on_progress` gets the last row of each), and
    stops early if the loss becomes NaN or infinite, restoring the previous epoch's weights."""
    x, y, x_val, y_val = (tf.constant(a, dtype=tf.float32) for a in data)
    n = int(x.shape[0])
    steps = steps_per_epoch(n, batch_size)
    weights = model.trainable_variables
    optimizer.build(weights)
    # The weights at the start of the current epoch: what is kept if that epoch diverges.
    epoch_start = [tf.Variable(w, trainable=False) for w in weights]

    def one_epoch(epoch):
        for saved, w in zip(epoch_start, weights):
            saved.assign(w)
        order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=tf.stack([seed, epoch]))
        loss_sum, correct = tf.constant(0.0), tf.constant(0.0)
        for step in tf.range(steps):
            batch = order[step * batch_size : tf.minimum((step + 1) * batch_size, n)]
            xb, yb = tf.gather(x, batch), tf.gather(y, batch)
            with tf.GradientTape() as tape:
                pred = model(xb, training=True)
                loss = loss_fn(yb, pred)
            optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
            loss_sum += loss * tf.cast(tf.shape(batch)[0], tf.float32)
            correct += _correct(yb, pred, binary)
        val_pred = model(x_val, training=False)
        val_accuracy = _correct(y_val, val_pred, binary) / tf.cast(tf.shape(x_val)[0], tf.float32)
        return tf.stack([loss_sum / n, correct / n, loss_fn(y_val, val_pred), val_accuracy])

    @tf.function
    def run_epochs(first, count):
        rows = tf.TensorArray(tf.float32, size=0, dynamic_size=True)
        for i in tf.range(count):
            row = one_epoch(first + i)
            rows = rows.write(i, row)
            if not tf.reduce_all(tf.math.is_finite(row)):
                break
        return rows.stack()

    result = TrainingResult(steps)
    for first in range(1, epochs + 1, epochs_per_call):
        count = min(epochs_per_call, epochs + 1 - first)
        rows = run_epochs(tf.constant(first), tf.constant(count)).numpy().tolist()
        result.history += [dict(zip(HISTORY_COLUMNS, (first + i, *r))) for i, r in enumerate(rows)]
        if on_progress:
            on_progress(result.history[-1])
        if len(rows) < count or not np.all(np.isfinite(rows[-1])):
            # Divergence is a result, not a crash: stop, and keep a model that still predicts.
            result.diverged_at = result.history[-1]["epoch"]
            for saved, w in zip(epoch_start, weights):
                w.assign(saved)
            break
    return result
