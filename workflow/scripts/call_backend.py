"""``call.py`` with a per-job Keras backend: the rule's ``params.keras_backend`` (optional).

Rules whose jobs must run on a backend named by a wildcard (the backend study,
``workflow/rules/study.smk``) use ``script: CALL_BACKEND`` instead of ``script: CALL``. This
script sets ``KERAS_BACKEND`` for the job's process (:func:`klvae.backend_select.select_keras_backend`:
an error if Keras were already imported with another backend), then runs ``call.py`` unchanged
in the same process, so the library function imports Keras on that backend. Without
``params.keras_backend`` it behaves exactly as ``call.py``.
"""

import os
import runpy

from klvae.backend_select import select_keras_backend

smk = snakemake  # noqa: F821  (injected by Snakemake's script directive)
select_keras_backend(smk.params.get("keras_backend"))
# Snakemake sets __file__ to this script's real path (not the temporary copy it runs).
runpy.run_path(os.path.join(os.path.dirname(os.path.abspath(__file__)), "call.py"), init_globals={"snakemake": smk},
               run_name="__main__")
