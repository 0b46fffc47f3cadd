"""How a process that trains imports TensorFlow: quietly, with deterministic ops, on one thread.

One thread unless the user set TensorFlow's own variables: the ops here are tiny (batches of 32
rows), so a second thread only adds hand-offs, and a stage next to another on two cores (`make
run`, a sweep's two group workers) would fight it for the cores. Measured on this machine,
train@spiral_hard_relu_4x100 under plain `dvc repro` (500 epochs, 5 seeds): 13.3 s of training
with TensorFlow's default threads, 9.2 s with one; every output byte-identical (deterministic ops).
"""

import os

from intuition.files import quiet_stderr

VERBOSE = os.environ.get("INTUITION_VERBOSE") == "1"  # show TensorFlow's start-up lines
DEFAULTS = {"TF_CPP_MIN_LOG_LEVEL": "0" if VERBOSE else "3",
            "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}  # read when TensorFlow starts


def import_tensorflow():
    """TensorFlow, imported (seconds: only where it trains) and set up; a value the user set wins."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
    with quiet_stderr(enabled=not VERBOSE):
        import tensorflow as tf
        import keras  # noqa: F401 - Keras' own start-up lines are hidden too
    tf.config.experimental.enable_op_determinism()
    return tf
