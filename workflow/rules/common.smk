# Helpers shared by all rule files.


include: "call.smk"


import json
from pathlib import Path
import os
import sys

# Where every generated file goes: results/, or in bundle mode (workflow/rules/bundle.smk) the
# folder a verified results bundle was extracted to, whose data the report rules then read.
RESULTS = globals().get("BUNDLE_DIR", "results")
BUNDLE_MODE = "BUNDLE_DIR" in globals()
BUNDLE_INFO = globals().get("BUNDLE_INFO")
# A path as a run names it (results/...), also in bundle mode, where RESULTS is the bundle's folder.
results_relative = lambda path: f"results{str(path)[len(RESULTS):]}" if str(path).startswith(RESULTS) else str(path)
# One folder per profile, so the report's per-rule times count only the jobs of this profile
# (a job that exists only in another profile, e.g. a replicate, leaves its file elsewhere).
BENCH = f"{RESULTS}/benchmarks/{config['profile']}"
# Each job's stderr and stdout (workflow/scripts/call.py copies them there), by profile like BENCH.
LOGS = f"{RESULTS}/logs/{config['profile']}"


# KL coefficients as they appear in paths and titles: 0, 0.02, 0.1, 0.5, 1, 2, 10, 20.
E1_COEFS = [f"{float(c):g}" for c in config["e1"]["coefficients"]]


wildcard_constraints:
    c=r"[0-9][0-9.e+-]*",
    r=r"[0-9]+",


# The Keras 3 backend of every training job (Keras' own variable; klvae.backend): tensorflow
# (default), jax (the GPU path) or torch. Rules that train or time models take it as a param,
# so switching backend reruns them (Snakemake's params rerun trigger) and nothing else.
KERAS_BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
