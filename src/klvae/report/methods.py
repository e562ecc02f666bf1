"""The methods chapter's fragments: provenance, versions, hardware, per-rule times, the settings
that differ from the seeds', the title-page banner and the run-wide report variables."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from klvae import reference
from klvae.formatting import fmt_coef
from klvae.io import write_text
from klvae.layout import results_dir
from klvae.report import provenance
from klvae.report.tables import fmt_num, markdown_table


def _fmt_setting(v) -> str:
    if v is None:
        return "all"
    if isinstance(v, list):
        return ", ".join(fmt_coef(x) if isinstance(x, (int, float)) else str(x) for x in v)
    if isinstance(v, bool) or isinstance(v, str):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    return f"{v:g}"


def experiment_sections(config: dict) -> list[str]:
    """The experiments' config sections (``e1``, ``e2``, ...: the registry's names), in the config's order."""
    return [k for k in config if re.fullmatch(r"e[0-9]+", str(k))]


def deviations_fragment(config: dict, paper_config: str, schema: str, experiments: Sequence[str] | None = None) -> str:
    """Table of every experiment setting of this run beside the seeds' (``config/paper.yaml``
    with the schema's defaults filled), marking those that differ.

    Covers the scalar and list settings of each experiment's section (``experiments``: the
    registry's names; default :func:`experiment_sections`);
    ``null`` sizes mean "all images".
    """
    from snakemake.utils import validate

    paper = yaml.safe_load(Path(paper_config).read_text())
    validate(paper, schema, set_default=True)
    rows = []
    for section in experiments or experiment_sections(config):
        if section not in config or section not in paper:
            continue
        ours_s, seed_s = config[section], paper[section]
        for key in dict.fromkeys([*seed_s, *ours_s]):
            ours, seed = ours_s.get(key), seed_s.get(key)
            if isinstance(ours, dict) or isinstance(seed, dict):
                continue
            rows.append([f"{section.upper()} `{key}`", _fmt_setting(ours), _fmt_setting(seed),
                         "same" if ours == seed else "**differs**"])
    return markdown_table(["setting", f"this run ({config['profile']} profile)", "seeds (paper profile)", ""], rows,
                          "Settings of this run against the seeds' (the paper profile, `config/paper.yaml`); "
                          "\"all\" = the full training or test set. {{< var made_by.report_methods >}}",
                          "tbl-deviations", align="llll")


def methods_fragment(mnist_provenance: str, config: dict, benchmarks_dir: str, run: dict,
                     benchmarks_shown: str | None = None, experiments: Sequence[str] | None = None,
                     results_shown: str | None = None) -> tuple[str, dict]:
    """Data provenance, software versions, hardware and per-rule wall time tables.

    ``run`` is the run's :func:`klvae.report.provenance.run_record`: the versions, hardware,
    Keras backend, host, date and commit of the machine that made the numbers. ``results_shown``:
    the run's results folder as the run names it (default ``results/<profile>``). Returns the
    markdown and the ``env`` variables."""
    results_shown = results_shown or results_dir(config["profile"])
    prov = json.loads(Path(mnist_provenance).read_text())
    data_rows = [["source", f"`{prov['source']}`"]]
    for key in ("file", "sha256", "member", "member_sha256", "folder"):
        if key in prov:
            data_rows.append([key.replace("_", " "), f"`{prov[key]}`"])
    for name, md5 in prov.get("md5", {}).items():
        data_rows.append([f"MD5 {name}", f"`{md5}`"])
    data_rows += [["images (train / test)", f"{prov['n_train']:,} / {prov['n_test']:,}"],
                  ["test label counts (digits 0-9)", " ".join(str(x) for x in prov["test_label_counts"])],
                  ["canonical file SHA-256", f"`{prov['canonical_sha256']}`"]]
    md = markdown_table(["MNIST", "value"], data_rows,
                        "MNIST provenance: every hash was verified before the file was read. "
                        "{{< var made_by.mnist_canonical >}}", "tbl-provenance", align="ll")
    versions = run["versions"]
    md += "\n" + markdown_table(["package", "version"], [[k, v] for k, v in versions.items()],
                                "Software versions of the environment that made the numbers, recorded at the end of "
                                f"the run (every installed package is in `{results_shown}/report/generated/run.json`). "
                                "{{< var made_by.report_methods >}}", "tbl-versions", align="ll")
    hw = run["hardware"]
    hw_rows = [["Keras backend", f"**{run['keras_backend']}**"], ["host", f"`{run['host']}`"],
               *[[k, v] for k, v in hw.items()],
               ["threads per training job (intra-op)", str(config["threads"]["train"])],
               ["profile", f"`{config['profile']}`"], ["seed", str(config["seed"])],
               ["project commit", f"`{run['git_commit']}`"], ["recorded (UTC)", run["recorded_utc"]]]
    md += "\n" + markdown_table(["", "value"], hw_rows,
                                "Where, when and on what the numbers were made: Keras backend, host, hardware, "
                                "threads, profile and code version, recorded at the end of the run. "
                                "{{< var made_by.report_methods >}}", "tbl-hardware", align="ll")
    times = provenance.rule_times(benchmarks_dir)
    shown = benchmarks_shown or benchmarks_dir
    t_rows = [[f"`{r['rule']}`", str(r["jobs"]), fmt_num(r["total_s"], 1), fmt_num(r["median_s"], 1),
               fmt_num(r["max_s"], 1), fmt_num(r["cpu_s"], 0), fmt_num(r["max_rss_mb"], 0)] for r in times]
    total = sum(r["total_s"] for r in times)
    cpu_total = sum(r["cpu_s"] for r in times if np.isfinite(r["cpu_s"]))
    per_experiment = provenance.experiment_times(times, experiments or experiment_sections(config))
    md += "\n" + markdown_table(["experiment", "jobs", "job wall s", "job CPU s"],
                                [[e["experiment"], str(e["jobs"]), fmt_num(e["total_s"], 0), fmt_num(e["cpu_s"], 0)]
                                 for e in per_experiment],
                                f"Time per experiment on this run ({config['profile']} profile): wall-clock seconds "
                                "of its jobs summed (jobs may run in parallel, so the elapsed time is shorter) "
                                "and CPU seconds of its jobs' processes summed, from Snakemake's `benchmark:` "
                                f"files (`{shown}/`); report rules not counted. "
                                "{{< var made_by.report_methods >}}", "tbl-experiment-times", align="lrrr")
    md += "\n" + markdown_table(["rule", "jobs", "total s", "median s", "max s", "CPU s", "peak RSS MB"], t_rows,
                                f"Wall time, CPU time and peak memory per rule, from Snakemake's `benchmark:` files "
                                f"(`{shown}/`); {fmt_num(total / 60, 1)} minutes of job time and "
                                f"{fmt_num(cpu_total / 60, 1)} CPU minutes in all "
                                "(jobs may run in parallel). The report rules themselves are not listed. "
                                "{{< var made_by.report_methods >}}",
                                "tbl-rule-times", align="lrrrrrr")
    variables = {"cpu": hw["CPU"], "logical_cpus": hw["logical CPUs"], "gpu": hw["GPU"], "memory": hw["memory"],
                 "tensorflow": versions.get("tensorflow", "not installed"), "keras": versions["keras"],
                 "backend": run["keras_backend"], "host": run["host"], "commit": run["git_commit"],
                 "recorded_utc": run["recorded_utc"], "job_minutes": fmt_num(total / 60, 1),
                 "cpu_minutes": fmt_num(cpu_total / 60, 1)}
    return md, variables


def provenance_line(run: dict) -> str:
    """One sentence: where (host, hardware), when, with which Keras backend and at which commit
    the numbers were made, from a :func:`klvae.report.provenance.run_record`."""
    hw = run["hardware"]
    keras = run["versions"].get("keras", "?")
    return (f"Made with the **{run['profile']}** profile (seed {run['seed']}) on host `{run['host']}` "
            f"({hw['CPU']}, {hw['logical CPUs']} logical CPUs, {hw['memory']}; GPU: {hw['GPU']}) with Keras "
            f"{keras} on the **{run['keras_backend']}** backend, at project commit `{run['git_commit']}`; "
            f"recorded {run['recorded_utc'].replace('T', ' ').replace('Z', ' UTC')} at the end of the run.")


def banner_fragment(config: dict, run: dict | None = None) -> str:
    """The title page's banner: where, when, on which hardware, with which Keras backend and at
    which commit the numbers were made (when ``run`` is given), and a visible warning when they
    come from the quick profile."""
    out = ""
    if run is not None:
        out += ("::: {.callout-note}\n**Where these numbers come from.** " + provenance_line(run)
                + " Details in the methods chapter.\n:::\n")
    if config["profile"] != "quick":
        return out
    return out + ("::: {.callout-warning}\n"
            "**Quick profile.** This report was rendered from the **quick** profile (small subsets, a few epochs): "
            "it checks that every step of the pipeline runs. Its numbers are not comparable with the seeds'; run "
            "`make report` (default profile) or `PROFILE=paper make report` for those.\n:::\n")


def write_methods(md: str, deviations: str, banner: str, variables: str, run_json: str, mnist_provenance: str,
                  config: dict, paper_config: str, schema: str, benchmarks_dir: str,
                  benchmarks_shown: str | None = None, experiments: Sequence[str] | None = None,
                  results_shown: str | None = None) -> None:
    """Rule ``report_methods``: provenance, versions, hardware and per-rule times (``md``), the
    settings that differ from the seeds' (``deviations``), the title-page banner (``banner``: where,
    when, on what, with which Keras backend and commit; the quick-profile warning) and the run-wide
    variables (profile, seed, data, environment).

    Everything about the run comes from files the run wrote: its record ``run_json`` (rule
    ``run_record``, :func:`klvae.report.provenance.write_run_record`: Keras backend, hardware,
    host, date, commit, every package), the MNIST provenance and the benchmark files. So the same
    fragments come out when the report is rendered later, elsewhere, from a results bundle
    (``benchmarks_shown``, ``results_shown``: the benchmark folder and the results folder as the run
    named them, ``results/<profile>/...``, for the captions and the ``results_dir`` variable).
    ``experiments``: the experiment registry's names (``e1``, ...), for the per-experiment times
    and the settings table (default: the config's experiment sections).
    """
    run = json.loads(Path(run_json).read_text())
    results_shown = results_shown or results_dir(config["profile"])
    text, env = methods_fragment(mnist_provenance, config, benchmarks_dir, run, benchmarks_shown, experiments,
                                 results_shown)
    prov = json.loads(Path(mnist_provenance).read_text())
    values = {
        "profile": config["profile"], "seed": config["seed"], "results_dir": results_shown,
        "mnist": {"source": prov["source"], "n_train": f"{prov['n_train']:,}", "n_test": f"{prov['n_test']:,}"},
        "env": env,
        "seed_claims": reference.seed_variables(),
    }
    write_text(md, text)
    write_text(deviations, deviations_fragment(config, paper_config, schema, experiments))
    write_text(banner, banner_fragment(config, run))
    write_text(variables, yaml.safe_dump(values, sort_keys=False, allow_unicode=True))
