"""How numbers and names are written in tables, figures and the report.

Framework-free and plot-free, so the figures (:mod:`klvae.figures`), the report
(:mod:`klvae.report`) and the experiments share one spelling:

* :func:`fmt_coef` -- a KL coefficient as the post writes it (``0.02``, ``1``, ``20``).
* :data:`KERAS2`, :data:`KERAS3` -- the Keras flavours of the E2 compatibility matrix, as they
  appear in its ``keras_flavour`` column (:mod:`klvae.strategies.compat`).
* :data:`BACKEND_TITLES` -- the Keras 3 backends' names in table headers.
"""

from __future__ import annotations

#: The Keras flavours of the E2 compatibility matrix (its ``keras_flavour`` column).
KERAS3, KERAS2 = "Keras 3", "Keras 2 (tf-keras)"
#: A Keras 3 backend's name (``keras.backend.backend()``) as table headers write it.
BACKEND_TITLES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}


def fmt_coef(c: float) -> str:
    """Format a KL coefficient as the post writes it (0, 0.02, 0.1, 0.5, 1, 2, 10, 20).

    ``format(c, "g")``: six significant digits, no trailing zeros (``fmt_coef(0.5) == "0.5"``,
    ``fmt_coef(20.0) == "20"``, ``fmt_coef(6.5e-4) == "0.00065"``).
    """
    return f"{c:g}"


__all__ = ["fmt_coef", "KERAS2", "KERAS3", "BACKEND_TITLES"]
