# How a rule calls the library: the one thin rule body and its params.
#
#   params:
#       **library_call("klvae.figures.e1:latent_scatter"),
#       kwargs={...},
#   script:
#       CALL
#
# Snakemake runs the script with its own interpreter (sys.executable), so TensorFlow and klvae
# are importable wherever Snakemake is.
#
# library_call gives `func` (what workflow/scripts/call.py calls) and `code`, the SHA-256 of
# the sources of that function's module and every klvae module it imports, transitively, and
# of call.py itself (klvae.code_digest). Snakemake's params rerun trigger reruns the job, and
# what follows from it, when that code changes -- by content: a fresh checkout (new mtimes)
# reruns no training or figure. profiles/default leaves Snakemake's mtime-based `code`
# trigger for scripts out.
#
# Every named input and output is passed to the function under its name, and one the function
# has no parameter for is an error (a typo never goes unnoticed). An input the job must only
# wait for, or rerun after, is declared so by name:
#
#   **library_call("klvae.report.methods:write_methods", deps_only=["after"]),
#
# which adds `deps_only` to the params; call.py passes those inputs to no one.

import os
from functools import partial

from klvae.code_digest import rule_params

CALL = "../scripts/call.py"  # relative to workflow/rules/, where every rule is defined
KLVAE_SOURCES = os.path.join(REPO_ROOT, "src")
# The rules' software for `snakemake --use-conda` (not needed with `make`, which uses .venv).
CONDA_ENV = "../envs/klvae.yaml"


# library_call("klvae.module:function", deps_only=[...]) -> {"func", "code"[, "deps_only"]}
library_call = partial(
    rule_params,
    sources=KLVAE_SOURCES,
    runner=os.path.join(REPO_ROOT, "workflow", "scripts", "call.py"),
)


# Rules whose jobs run on a Keras backend named by a wildcard (the backend study, study.smk):
#
#   params:
#       **library_call_backend("klvae.experiments.backend_study:train"),
#       keras_backend=lambda w: w.backend,
#   script:
#       CALL_BACKEND
#
# call_backend.py sets KERAS_BACKEND for the job's process from params.keras_backend, then runs
# call.py unchanged (so the other rules' code digests, which cover call.py, do not change). The
# digest covers call_backend.py too.
CALL_BACKEND = "../scripts/call_backend.py"


# library_call_backend("klvae.module:function"): as library_call, the digest also covers call_backend.py
library_call_backend = partial(
    library_call, extra_runners=[os.path.join(REPO_ROOT, "workflow", "scripts", "call_backend.py")]
)
