"""Keras callbacks shared by the training entry points of E1, E2 and E3."""

from __future__ import annotations

import math
import time

import keras


class EpochTimer(keras.callbacks.Callback):
    """Records the wall-clock seconds of every training epoch in ``self.seconds`` (list of float, s)."""

    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []
        self._t0 = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._t0)


class TerminateOnNaNError(keras.callbacks.Callback):
    """Raise :class:`FloatingPointError` as soon as a training batch's ``loss`` is NaN or infinite.

    Unlike ``keras.callbacks.TerminateOnNaN`` (which stops training quietly and lets the
    caller save a broken model), the error makes the rule fail, so no model file is written.
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise FloatingPointError(f"non-finite training loss {float(loss)} at batch {batch}; "
                                     "lower the learning rate or the KL weight")
