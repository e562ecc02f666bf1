"""Keras callbacks shared by the training entry points of E1, E2 and E3."""

from __future__ import annotations

import math

import keras


class TerminateOnNaNError(keras.callbacks.Callback):
    """Raise :class:`FloatingPointError` at the end of an epoch whose mean training ``loss`` is NaN or infinite.

    Unlike ``keras.callbacks.TerminateOnNaN`` (which stops training quietly and lets the
    caller save a broken model), the error makes the rule fail, so no model file is written.

    The check is made once per epoch, on the epoch's mean loss (Keras' ``Mean`` tracker: one
    non-finite batch makes the mean non-finite), not after every batch: reading a batch's loss
    on the host waits for that step to finish, and on JAX any callback with an
    ``on_train_batch_end`` turns off Keras' asynchronous callback dispatch, so every step would
    wait for the previous one to finish on the device. A diverged run thus trains to the end
    of its epoch before it fails.

    Args:
        hint: what to do, appended to the message (e.g. which config keys to lower).
    """

    def __init__(self, hint: str = "lower the learning rate or the KL weight in the config"):
        super().__init__()
        self.hint = hint

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise FloatingPointError(f"non-finite training loss {float(loss)} in epoch {epoch + 1}: "
                                     f"training diverged and no model was written; {self.hint}, then rerun")
