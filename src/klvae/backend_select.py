"""Choose the Keras 3 backend of one process before Keras is imported (no Keras import here).

Keras fixes its backend when it is first imported, from the environment variable
``KERAS_BACKEND``. A Snakemake job runs in its own Python process, so a rule can pick the
backend per job (``params.keras_backend``, e.g. from a ``{backend}`` wildcard) instead of the
process-wide variable: :func:`select_keras_backend` sets the variable for that process, and
``workflow/scripts/call_backend.py`` calls it before it imports the rule's library function.
"""

from __future__ import annotations

import os
import sys

#: Backends this project is written for (Keras 3's names; :data:`klvae.backend.BACKENDS`).
BACKENDS = ("tensorflow", "jax", "torch")


def select_keras_backend(name: str | None) -> str | None:
    """Make ``name`` the Keras backend of this process (sets ``os.environ["KERAS_BACKEND"]``).

    Args:
        name: ``"tensorflow"``, ``"jax"`` or ``"torch"``; ``None`` or ``""`` changes nothing
            (the process keeps ``KERAS_BACKEND`` as inherited).

    Returns:
        ``name`` (``None`` when nothing was asked for).

    Raises:
        ValueError: ``name`` is not one of :data:`BACKENDS`.
        RuntimeError: Keras is already imported in this process with another backend (it
            cannot be switched; the job must run in a fresh process).
    """
    if not name:
        return None
    if name not in BACKENDS:
        raise ValueError(f"unknown Keras backend {name!r}; expected one of {', '.join(BACKENDS)}")
    keras = sys.modules.get("keras")
    if keras is not None:
        active = keras.backend.backend()
        if active != name:
            raise RuntimeError(f"Keras is already imported in this process with the {active!r} backend, so the "
                               f"{name!r} backend cannot be selected; run the job in a fresh process")
    os.environ["KERAS_BACKEND"] = name
    return name
