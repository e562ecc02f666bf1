"""Keras callbacks shared by the training entry points of E1, E2 and E3."""

from __future__ import annotations

import math

import keras


class TerminateOnNaNError(keras.callbacks.Callback):
    """Raise :class:`FloatingPointError` as soon as a training batch's ``loss`` is NaN or infinite.

    Unlike ``keras.callbacks.TerminateOnNaN`` (which stops training quietly and lets the
    caller save a broken model), the error makes the rule fail, so no model file is written.

    Args:
        hint: what to do, appended to the message (e.g. which config keys to lower).
    """

    def __init__(self, hint: str = "lower the learning rate or the KL weight in the config"):
        super().__init__()
        self.hint = hint
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise FloatingPointError(f"non-finite training loss {float(loss)} at epoch {self._epoch + 1}, "
                                     f"batch {batch + 1}: training diverged and no model was written; "
                                     f"{self.hint}, then rerun")
