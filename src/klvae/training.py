"""Resumable, bitwise-repeatable ``fit`` shared by the training entry points of E1, E2 and E3.

A training rule killed at any moment (SIGKILL, a cluster pre-emption, a power cut) and
started again resumes from the end of its last finished epoch and ends with the weights an
uninterrupted run ends with, bit for bit (on the same machine, backend and version, and
thread setting). It is backend-neutral (Keras callbacks and ``Model.save_weights``). Three
things make that true:

* the checkpoint holds everything training state is made of: the model weights, the
  optimizer's variables (Adam's moments and step counter) and the reparameterization's
  ``SeedGenerator`` state (:class:`klvae.models.vae.Sampling` saves it with its weights);
* the data order of epoch k is a pure function of (seed, k)
  (:func:`klvae.data.stream.epoch_order`), so a run resumed at epoch k sees the batches
  an uninterrupted run sees;
* checkpoints are written atomically (a new weights file, then the state file that names
  it, each by ``os.replace``), so a kill during a save leaves the previous checkpoint valid.

The checkpoint lives in a folder beside the model file (``<model>.ckpt/``, see
:func:`checkpoint_dir`); it is deleted when training finishes. The outputs a rule declares
are written by the caller only after ``fit`` returns, each atomically
(:mod:`klvae.io`), so no half-written model ever looks finished.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

import keras
import numpy as np

from klvae.callbacks import TerminateOnNaNError

STATE_FILE = "state.json"


def checkpoint_dir(model_path: str | os.PathLike) -> Path:
    """The checkpoint folder of the training run that writes ``model_path``: ``<model_path>.ckpt``."""
    return Path(str(model_path) + ".ckpt")


def fingerprint(settings: dict, files: dict[str, str | os.PathLike] | None = None) -> str:
    """SHA-256 (hex) of the training settings and of the input files' identity (size, mtime in ns).

    A checkpoint is only resumed when its fingerprint equals the new run's; anything else
    (another learning rate, other data, new initial weights) starts from scratch.
    """
    ident = {k: (os.stat(p).st_size, os.stat(p).st_mtime_ns) for k, p in (files or {}).items()}
    blob = json.dumps({"settings": settings, "files": ident}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class EpochCheckpoint(keras.callbacks.BackupAndRestore):
    """``keras.callbacks.BackupAndRestore`` with atomic saves, a settings fingerprint and the epoch logs.

    At the end of every epoch it writes ``epoch-<k>.weights.h5`` (model, optimizer and
    sampling state; ``Model.save_weights``) and then ``state.json`` =
    ``{"epoch": k, "weights": file, "fingerprint": ..., "rows": [per-epoch logs]}``, both
    through a temporary file and ``os.replace``; the previous weights file is removed last.
    At ``on_train_begin`` Keras' restore logic loads the weights named by ``state.json`` and
    sets the initial epoch. ``rows`` holds one dict per finished epoch (restored ones
    included): the logs Keras reports (``loss`` etc., floats) and ``seconds`` (wall time of
    the epoch, s).

    Args:
        directory: checkpoint folder (created on the first save, deleted at the end of
            training).
        fingerprint: :func:`fingerprint` of the run; a checkpoint with another one is
            discarded (with a message) when the callback is made.

    Attributes:
        start_epoch: the number of epochs already done by the checkpoint (0 for a fresh run).
    """

    #: Keras may run this callback's (empty: ``save_freq="epoch"``) batch hook in a worker thread,
    #: so a JAX training step need not wait for the previous one (see
    #: :class:`klvae.callbacks.TerminateOnNaNError`).
    async_safe = True

    def __init__(self, directory: str | os.PathLike, fingerprint: str, log: Callable[[str], None] = print):
        super().__init__(backup_dir=str(directory), save_freq="epoch", delete_checkpoint=True)
        self.directory = Path(directory)
        self.fingerprint = fingerprint
        self.rows: list[dict] = []
        self.start_epoch = 0
        self._t0 = 0.0
        state = self._read_state()
        if state is not None and state.get("fingerprint") != fingerprint:
            log(f"[checkpoint] {self.directory} is from a run with other settings or inputs; starting afresh")
            shutil.rmtree(self.directory, ignore_errors=True)
            state = None
        if state is not None:
            self.start_epoch = int(state["epoch"])
            self.rows = list(state["rows"])
            log(f"[checkpoint] resuming after epoch {self.start_epoch} from {self.directory}")

    def _read_state(self) -> dict | None:
        path = self.directory / STATE_FILE
        if not path.is_file():
            return None
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        if not (self.directory / str(state.get("weights", ""))).is_file():
            return None
        return state

    def _load_model(self):
        state = self._read_state()
        if state is None or state.get("fingerprint") != self.fingerprint:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(self.directory / state["weights"])
        self.model._initial_epoch = int(state["epoch"])

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._t0
        self.rows.append({**{k: float(v) for k, v in (logs or {}).items()}, "seconds": seconds})
        super().on_epoch_end(epoch, logs)  # sets _current_epoch = epoch + 1 and calls _save_model

    def _save_model(self):
        self.directory.mkdir(parents=True, exist_ok=True)
        epoch = self._current_epoch
        name = f"epoch-{epoch}.weights.h5"
        tmp = self.directory / f"tmp-{os.getpid()}-{name}"
        self.model.save_weights(tmp, overwrite=True)
        os.replace(tmp, self.directory / name)
        previous = self._read_state()
        state = {"epoch": epoch, "weights": name, "fingerprint": self.fingerprint, "rows": self.rows}
        tmp_state = self.directory / f"tmp-{os.getpid()}-{STATE_FILE}"
        tmp_state.write_text(json.dumps(state))
        os.replace(tmp_state, self.directory / STATE_FILE)
        if previous is not None and previous["weights"] != name:
            (self.directory / previous["weights"]).unlink(missing_ok=True)


#: One record per :func:`fit_resumable` call in this process: ``{"epochs": n run now,
#: "epoch_seconds": [s, ...]}`` of the epochs this process ran (restored ones excluded). The
#: rule runner (``workflow/scripts/call.py``) reads it to split a job's time into start-up,
#: imports, compilation (first epoch minus the median later epoch) and training.
FIT_TIMES: list[dict] = []


def fit_resumable(model: keras.Model, x: np.ndarray, *, epochs: int, batch_size: int, seed: int,
                  checkpoint: str | os.PathLike, fingerprint: str,
                  fit_data: Callable | None = None, verbose: int = 2, log: Callable[[str], None] = print,
                  callbacks: list | None = None, nan_hint: str | None = None) -> list[dict]:
    """Train ``model`` on the uint8 images ``x`` for ``epochs`` epochs, resuming from ``checkpoint`` if it holds one.

    Args:
        model: a compiled Keras model whose ``fit`` takes batches of images (float32 in
            [0, 1]) -- after ``fit_data`` when given.
        x: uint8 array ``(n, ...)`` (in RAM or a ``np.memmap``).
        epochs, batch_size: as for ``fit``; every epoch has ``ceil(n / batch_size)`` steps.
        seed: data-order seed (epoch k's order is a pure function of seed and k).
        checkpoint: checkpoint folder (:func:`checkpoint_dir` of the model file).
        fingerprint: :func:`fingerprint` of the run's settings and inputs.
        fit_data: optional transform of one float32 image batch (NumPy) into what
            ``model.fit`` expects (a KL strategy's ``fit_data``).
        verbose: Keras ``fit`` verbosity.
        callbacks: further Keras callbacks.
        nan_hint: what the error for a non-finite loss tells the user to do (names the
            config keys).

    Returns:
        One dict per epoch (all ``epochs`` of them, restored ones first): Keras' logged
        metrics (floats, in the model's units) and ``seconds`` (s).

    Raises:
        FloatingPointError: a non-finite training loss (:class:`klvae.callbacks.TerminateOnNaNError`);
            the checkpoint is deleted too (resuming would only diverge again), no output is written.
    """
    from klvae import backend
    from klvae.data.stream import ImageBatches

    saver = EpochCheckpoint(checkpoint, fingerprint, log=log)
    start = min(saver.start_epoch, epochs - 1)  # a checkpoint of the last epoch: fit runs no epoch
    batches = ImageBatches(x, batch_size, shuffle=True, seed=seed, epochs=epochs, start_epoch=start,
                           transform=fit_data)
    steps = batches.steps_per_epoch
    nan_guard = TerminateOnNaNError(nan_hint) if nan_hint else TerminateOnNaNError()
    try:
        model.fit(backend.fit_input(batches), epochs=epochs, initial_epoch=saver.start_epoch, steps_per_epoch=steps,
                  verbose=verbose,
                  # the NaN guard first: a diverged epoch raises before its checkpoint is written
                  shuffle=False, callbacks=[nan_guard, saver, *(callbacks or [])])
    except FloatingPointError:
        shutil.rmtree(checkpoint, ignore_errors=True)
        raise
    if len(saver.rows) != epochs:
        raise RuntimeError(f"expected {epochs} epochs of logs, have {len(saver.rows)} ({checkpoint})")
    ran = [float(r["seconds"]) for r in saver.rows[saver.start_epoch:]]
    FIT_TIMES.append({"epochs": len(ran), "epoch_seconds": ran})
    return saver.rows
