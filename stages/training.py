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
    on_epoch_end: Callable[[dict], None] | None = None,
) -> TrainingResult:
    """Train `model` in place on `data` = (x, y, x_val, y_val), validating after every epoch.

    Stops early if the loss becomes NaN or infinite, restoring the previous epoch's weights."""
    x, y, x_val, y_val = (tf.constant(a, dtype=tf.float32) for a in data)
    n = int(x.shape[0])
    steps = steps_per_epoch(n, batch_size)
    weights = model.trainable_variables
    optimizer.build(weights)

    @tf.function(reduce_retracing=True)
    def run_epoch(shuffle_seed):
        order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=shuffle_seed)
        loss_sum = tf.constant(0.0)
        correct = tf.constant(0.0)
        for step in tf.range(steps):
            batch = order[step * batch_size : tf.minimum((step + 1) * batch_size, n)]
            xb, yb = tf.gather(x, batch), tf.gather(y, batch)
            with tf.GradientTape() as tape:
                pred = model(xb, training=True)
                loss = loss_fn(yb, pred)
            optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
            loss_sum += loss * tf.cast(tf.shape(batch)[0], tf.float32)
            correct += _correct(yb, pred, binary)
        return loss_sum / n, correct / n

    @tf.function
    def validate():
        pred = model(x_val, training=False)
        return loss_fn(y_val, pred), _correct(y_val, pred, binary) / tf.cast(tf.shape(x_val)[0], tf.float32)

    result = TrainingResult(steps)
    for epoch in range(1, epochs + 1):
        last_finite_weights = model.get_weights()
        loss, acc = run_epoch(tf.constant([seed, epoch], dtype=tf.int32))
        val_loss, val_acc = validate()
        row = dict(zip(HISTORY_COLUMNS, (epoch, *(float(v) for v in (loss, acc, val_loss, val_acc)))))
        result.history.append(row)
        if on_epoch_end:
            on_epoch_end(row)
        if not (math.isfinite(row["loss"]) and math.isfinite(row["val_loss"])):
            # Divergence is a result, not a crash: stop, and keep a model that still predicts.
            result.diverged_at = epoch
            model.set_weights(last_finite_weights)
            break
    return result
