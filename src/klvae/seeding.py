"""Determinism: one place that seeds every random source and pins CPU threading."""

from __future__ import annotations

import os


def set_global_seed(seed: int, threads: int | None = None) -> None:
    """Seed Python, NumPy and the Keras backend, and make the backend's ops deterministic.

    Args:
        seed: the config's seed (int >= 0).
        threads: CPU threads of the backend's op pool (TensorFlow: intra-op threads, inter-op
            1). ``None`` leaves the backend's default. Call before the backend runs any op.

    The backend-specific part is :func:`klvae.backend.configure`. On TensorFlow (the
    default backend) op determinism is on, so repeated CPU runs with the same seed and thread
    count give bitwise-identical weights, and Grappler's arithmetic optimizer is off: with
    it, the compiled graph of ``reconstruction + beta * KL`` differed between compilations
    (in one process as in separate ones), so the logged total loss varied in its last bits
    (e.g. 247.11028 vs 247.11029 nats in 2 of 12 compilations of the same E1 evaluation),
    while the weights, the reconstruction loss and the KL divergence did not. Without it, 36
    of 36 compilations agreed (the same held for post VIII's own form in the E2 compatibility
    workers, which now use the same settings: :func:`klvae.backend.tensorflow_determinism`).
    On JAX, XLA's deterministic GPU ops are switched on.
    """
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    from klvae import backend

    backend.configure(int(seed), threads)
