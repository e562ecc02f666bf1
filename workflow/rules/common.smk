# Helpers shared by all rule files.


include: "call.smk"


import json
import re
from pathlib import Path
import os
import sys

from snakemake.exceptions import WorkflowError

from klvae import registry as klvae_registry
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


# The experiments, in the report's order: the registry (klvae.registry, one module per experiment,
# src/klvae/registry/<id>.py: its title, settings, tables, chapter, GPU jobs, ...). Each is one
# unit -- its registry entry, its rules (workflow/rules/<id>.smk, which ends with
# register_experiment(...)), its training code (src/klvae/experiments/<id>.py), figures
# (src/klvae/figures/<id>.py), report fragment and scorecard part (src/klvae/report/<id>.py) and
# chapter (report/_<id>.qmd). The Snakefile, `rule all`, the report's inputs, its chapters, the
# scorecard and the methods chapter loop over this list (docs/architecture.md, "Adding an experiment").
REGISTRY = klvae_registry.EXPERIMENTS
EXPERIMENTS = klvae_registry.ids()
# What each experiment's rules registered: its figures, tables, report rule and scorecard part.
EXPERIMENT_PARTS = {}


def register_experiment(name, *, figures, tables, report_rule, scorecard_rule):
    """Declare experiment `name` (one of EXPERIMENTS) to the report (called at the end of its .smk).

    figures, tables: the files the report shows (the report waits for them; each table is one of
    the experiment's tables in the registry, tables/<stem>.csv); report_rule: the rule that writes
    its fragments (*.md) and variables (output `variables`, a .vars.yml); scorecard_rule: the rule
    that writes its scorecard part (output `table`, klvae.report.scorecard.write_part). Its title
    is the registry's."""
    if name not in EXPERIMENTS:
        raise WorkflowError(
            f"experiment {name!r} is not in the registry (klvae.registry): add src/klvae/registry/{name}.py "
            f"and its line in src/klvae/registry/__init__.py"
        )
    declared = klvae_registry.get(name).tables
    unknown = [str(t) for t in tables if Path(str(t)).stem not in declared]
    if unknown:
        raise WorkflowError(
            f"experiment {name}: tables {', '.join(unknown)} are not among its tables in the registry "
            f"(src/klvae/registry/{name}.py: {', '.join(declared) or 'none'})"
        )
    EXPERIMENT_PARTS[name] = {
        "figures": list(figures),
        "tables": [str(t) for t in tables],
        "fragments": [str(f) for f in report_rule.output if str(f).endswith(".md")],
        "variables": str(report_rule.output.variables),
        "scorecard": str(scorecard_rule.output.table),
        # its scorecard rule's function, named inputs and kwargs: run again on a shipped run's data
        # (klvae.report.shipped, rules report_shipped_scorecard_<id> in workflow/rules/report.smk)
        "scorecard_call": {
            "func": scorecard_rule.params.func,
            "inputs": {
                k: str(v) if isinstance(v, str) else [str(x) for x in v] for k, v in scorecard_rule.input.items()
            },
            "kwargs": dict(scorecard_rule.params.kwargs),
        },
    }


def check_registered():
    """Checks, once every rule file is included, that each experiment of the registry registered
    itself and that each rule the registry names (GPU jobs, part bundles' rules) exists."""
    missing = [e for e in EXPERIMENTS if e not in EXPERIMENT_PARTS]
    if missing:
        raise WorkflowError(
            f"experiments {', '.join(missing)} of the registry did not call register_experiment(...) "
            "at the end of their rule files (workflow/rules/<id>.smk)"
        )
    # every rule named in the rule files, those defined only under some configs included
    # (e3_standin only without CelebA), read from the files' text
    rules_here = {r.name for r in workflow.rules} | {
        m.group(1)
        for f in Path(workflow.basedir, "rules").glob("*.smk")
        for m in re.finditer(r"^\s*rule\s+(\w+)\s*:", f.read_text(), re.M)
    }
    for e in REGISTRY:
        unknown = [r for r in (*e.gpu, *e.part_rules) if r not in rules_here]
        if unknown:
            raise WorkflowError(
                f"experiment {e.id}: the registry (src/klvae/registry/{e.id}.py) names rules the workflow "
                f"does not have: {', '.join(unknown)}"
            )


def registered(key):
    """One field of every registered experiment, in the registry's order, lists flattened."""
    parts = [EXPERIMENT_PARTS[e][key] for e in EXPERIMENTS]
    return [x for p in parts for x in p] if parts and isinstance(parts[0], list) else parts


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
