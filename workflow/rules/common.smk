# Helpers shared by all rule files.

import json
from pathlib import Path
import os
import sys

CALL = "../scripts/call.py"  # the one thin rule body: calls params.func with the rule's files
RESULTS = "results"
# One folder per profile, so the report's per-rule times count only the jobs of this profile
# (a job that exists only in another profile, e.g. a replicate, leaves its file elsewhere).
BENCH = f"{RESULTS}/benchmarks/{config['profile']}"

# Snakemake runs `script:` bodies with the `python` on PATH; make that the interpreter
# Snakemake itself runs in (the project's .venv), so TensorFlow and klvae are importable.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")


def fmt_c(c):
    """KL coefficient as it appears in paths and titles: 0, 0.02, 0.1, 0.5, 1, 2, 10, 20."""
    return f"{float(c):g}"


E1_COEFS = [fmt_c(c) for c in config["e1"]["coefficients"]]


wildcard_constraints:
    c=r"[0-9][0-9.e+-]*",
    r=r"[0-9]+",

# The Keras 3 backend of every training job (Keras' own variable; klvae.backend): tensorflow
# (default), jax (the GPU path) or torch. Rules that train or time models take it as a param,
# so switching backend reruns them (Snakemake's params rerun trigger) and nothing else.
KERAS_BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
