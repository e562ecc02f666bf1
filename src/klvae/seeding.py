"""Determinism: one place that seeds every random source and pins CPU threading."""

from __future__ import annotations

import os


def set_global_seed(seed: int, threads: int | None = None) -> None:
    """Seed Python, NumPy, TensorFlow and Keras, enable TF's deterministic ops.

    Args:
        seed: the config's seed (int >= 0).
        threads: TensorFlow intra-op threads (inter-op is set to 1). ``None`` leaves
            TensorFlow's default. Must be called before TensorFlow runs any op.

    With op determinism on, repeated CPU runs with the same seed and thread count give
    bitwise-identical weights.
    """
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    import keras
    import tensorflow as tf

    if threads is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # already initialised in this process; keep what it has
            pass
    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()
