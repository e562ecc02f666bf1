# Helpers shared by all rule files.


include: "call.smk"


import json
from pathlib import Path
import os
import sys

from klvae.layout import results_dir

# Where every generated file goes: results/<profile>/ (klvae.layout), so profiles never share a
# model or a report; or in bundle mode (workflow/rules/bundle.smk) the folder a verified results
# bundle was extracted to, results/from_bundle/<stem>/, whose data the report rules then read.
# Raw downloads are shared by all profiles (data/ at the repository root).
RESULTS = globals().get("BUNDLE_DIR", results_dir(config["profile"]))
BUNDLE_MODE = "BUNDLE_DIR" in globals()
BUNDLE_INFO = globals().get("BUNDLE_INFO")
# The run's results folder as the run names it (results/<profile>), also in bundle mode.
RUN_RESULTS = results_dir(config["profile"])


def results_relative(path):
    """A path as a run names it (results/<profile>/...), also in bundle mode, where RESULTS is the bundle's folder."""
    path = str(path)
    if path == RESULTS or path.startswith(f"{RESULTS}/"):
        return f"{RUN_RESULTS}{path[len(RESULTS):]}"
    return path


# Snakemake's benchmark file of every job: the report's per-rule times. In bundle mode, where the
# bundle keeps them (a bundle made before profiles had their own folders: benchmarks/<profile>/).
BENCH = globals().get("BUNDLE_BENCH", f"{RESULTS}/benchmarks")
# Each job's stderr and stdout (workflow/scripts/call.py copies them there).
LOGS = f"{RESULTS}/logs"
# The report: its HTML and PDF, and the fragments and variables the report rules generate.
REPORT_DIR = f"{RESULTS}/report"
GEN = f"{REPORT_DIR}/generated"


# The experiments, in the report's order: the registry. Each is one unit -- its rules
# (workflow/rules/<id>.smk, which ends with register_experiment(...)), its training code
# (src/klvae/experiments/<id>.py), figures (src/klvae/figures/<id>.py), report fragment and
# scorecard part (src/klvae/report/<id>.py) and chapter (report/_<id>.qmd). Adding E4 is those
# five files and one line here; the Snakefile, `rule all`, the report's inputs, its chapters,
# the scorecard and the methods chapter loop over this list (README, "Adding an experiment").
EXPERIMENTS = [
    "e1",  # the KL-coefficient post: the KL coefficient sweep on MNIST (MLP VAE)
    "e2",  # posts IV-VIII: the KL-loss strategies in Keras 3 (conv VAE)
    "e3",  # post IX and the AE-latent post: faces
]
# What each experiment registered: its figures, tables, report rule and scorecard part.
EXPERIMENT_PARTS = {}


def register_experiment(name, *, title, figures, tables, report_rule, scorecard_rule):
    """Declare experiment `name` (one of EXPERIMENTS) to the report (called at the end of its .smk).

    title: its scorecard table's title; figures, tables: the files the report shows (the report
    waits for them); report_rule: the rule that writes its fragments (*.md) and variables
    (output `variables`, a .vars.yml); scorecard_rule: the rule that writes its scorecard part
    (output `table`, klvae.report.scorecard.write_part)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"experiment {name!r} is not in EXPERIMENTS (workflow/rules/common.smk): add it there")
    EXPERIMENT_PARTS[name] = {
        "title": title,
        "figures": list(figures),
        "tables": [str(t) for t in tables],
        "fragments": [str(f) for f in report_rule.output if str(f).endswith(".md")],
        "variables": str(report_rule.output.variables),
        "scorecard": str(scorecard_rule.output.table),
    }


def registered(key):
    """One field of every registered experiment, in the registry's order, lists flattened."""
    parts = [EXPERIMENT_PARTS[e][key] for e in EXPERIMENTS]
    return [x for p in parts for x in p] if parts and isinstance(parts[0], list) else parts


# KL coefficients as they appear in paths and titles: 0, 0.02, 0.1, 0.5, 1, 2, 10, 20.
E1_COEFS = [f"{float(c):g}" for c in config["e1"]["coefficients"]]


wildcard_constraints:
    c=r"[0-9][0-9.e+-]*",
    r=r"[0-9]+",


# The Keras 3 backend of every training job (Keras' own variable; klvae.backend): tensorflow
# (default), jax (the GPU path) or torch. Rules that train or time models take it as a param,
# so switching backend reruns them (Snakemake's params rerun trigger) and nothing else.
KERAS_BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
# The backend the results were made with: this run's, or in bundle mode the bundle's run's
# (a merged bundle's runs may name several: "tensorflow, jax").
RUN_BACKEND = (
    ", ".join(map(str, BUNDLE["keras_backend"]))
    if BUNDLE_MODE and isinstance(BUNDLE["keras_backend"], list)
    else (str(BUNDLE["keras_backend"]) if BUNDLE_MODE else KERAS_BACKEND)
)
