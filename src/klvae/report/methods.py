"""The methods chapter's fragments: provenance, versions, hardware, per-rule times, the settings
that differ from the posts', the title-page banner and the run-wide report variables. The tables
are bodies only; their captions are in ``report/_methods.qmd``. Every string from the run record, the
config or the MNIST provenance is text (:mod:`klvae.report.escape`)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from klvae import record as provenance
from klvae import reference, registry
from klvae.formatting import fmt_coef
from klvae.io import write_text
from klvae.layout import results_dir
from klvae.report import includes
from klvae.report.escape import Markdown, md_code, md_text, write_variables
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
    """The registered experiments' config sections (``e1``, ...) that ``config`` has, in the registry's order."""
    return [e.section for e in registry.EXPERIMENTS if e.section in config]


def deviations_fragment(config: dict, paper_config: str, schema: str, experiments: Sequence[str] | None = None) -> str:
    """The body of the table of every experiment setting of this run beside the posts'
    (``config/paper.yaml`` with the schema's defaults filled: ``schema``, the base schema, plus each
    experiment's settings, :func:`klvae.registry.config_schema`), marking those that differ.

    Covers the scalar and list settings of each experiment's section (``experiments``: the
    registry's names; default :func:`experiment_sections`);
    ``null`` sizes mean "all images".
    """
    from klvae.config import validate_config

    paper = yaml.safe_load(Path(paper_config).read_text())
    validate_config(paper, registry.config_schema(schema))
    rows = []
    for section in experiments or experiment_sections(config):
        if section not in config or section not in paper:
            continue
        ours_s, post_s = config[section], paper[section]
        for key in dict.fromkeys([*post_s, *ours_s]):
            ours, post = ours_s.get(key), post_s.get(key)
            if isinstance(ours, dict) or isinstance(post, dict):
                continue
            rows.append([Markdown(f"{md_text(section.upper())} {md_code(key)}"), _fmt_setting(ours),
                         _fmt_setting(post), "same" if ours == post else Markdown("**differs**")])
    return markdown_table(["setting", f"this run ({config['profile']} profile)", "posts (paper profile)", ""], rows,
                          align="llll")


def methods_fragment(mnist_provenance: str, config: dict, benchmarks_dir: str, run: dict,
                     benchmarks_shown: str | None = None,
                     experiments: Sequence[str] | None = None) -> tuple[dict[str, str], dict]:
    """Data provenance, software versions, hardware, per-experiment and per-rule time tables.

    ``run`` is the run's :func:`klvae.record.run_record`: the versions, hardware,
    Keras backend, host, date and commit of the machine that made the numbers.

    Returns:
        ``({"provenance": md, "versions": md, "hardware": md, "experiment_times": md,
        "rule_times": md}, env)``: the five table bodies (captions in ``report/_methods.qmd``) and
        the ``env`` variables, among them ``job_minutes`` and ``cpu_minutes`` (the jobs' wall and
        CPU time summed, minutes) and ``benchmarks`` (the benchmark folder as the run named it,
        in backticks).
    """
    prov = json.loads(Path(mnist_provenance).read_text())
    data_rows = [["source", md_code(prov["source"])]]
    for key in ("file", "sha256", "member", "member_sha256", "folder"):
        if key in prov:
            data_rows.append([key.replace("_", " "), md_code(prov[key])])
    for name, md5 in prov.get("md5", {}).items():
        data_rows.append([f"MD5 {name}", md_code(md5)])
    data_rows += [["images (train / test)", f"{int(prov['n_train']):,} / {int(prov['n_test']):,}"],
                  ["test label counts (digits 0-9)", " ".join(str(int(x)) for x in prov["test_label_counts"])],
                  ["canonical file SHA-256", md_code(prov["canonical_sha256"])]]
    tables = {"provenance": markdown_table(["MNIST", "value"], data_rows, align="ll")}
    versions = run["versions"]
    tables["versions"] = markdown_table(["package", "version"], [[k, v] for k, v in versions.items()], align="ll")
    hw = run["hardware"]
    hw_rows = [["Keras backend", Markdown(f"**{md_text(run['keras_backend'])}**")], ["host", md_code(run["host"])],
               *[[k, v] for k, v in hw.items()],
               ["threads per training job (intra-op)", str(config["threads"]["train"])],
               ["profile", md_code(config["profile"])], ["seed", str(config["seed"])],
               ["project commit", md_code(run["git_commit"])], ["recorded (UTC)", run["recorded_utc"]]]
    tables["hardware"] = markdown_table(["", "value"], hw_rows, align="ll")
    times = provenance.rule_times(benchmarks_dir)
    shown = benchmarks_shown or benchmarks_dir
    t_rows = [[md_code(r["rule"]), str(r["jobs"]), fmt_num(r["total_s"], 1), fmt_num(r["median_s"], 1),
               fmt_num(r["max_s"], 1), fmt_num(r["cpu_s"], 0), fmt_num(r["max_rss_mb"], 0)] for r in times]
    total = sum(r["total_s"] for r in times)
    cpu_total = sum(r["cpu_s"] for r in times if np.isfinite(r["cpu_s"]))
    per_experiment = provenance.experiment_times(times, experiments or experiment_sections(config))
    tables["experiment_times"] = markdown_table(
        ["experiment", "jobs", "job wall s", "job CPU s"],
        [[e["experiment"], str(e["jobs"]), fmt_num(e["total_s"], 0), fmt_num(e["cpu_s"], 0)] for e in per_experiment],
        align="lrrr")
    tables["rule_times"] = markdown_table(["rule", "jobs", "total s", "median s", "max s", "CPU s", "peak RSS MB"],
                                          t_rows, align="lrrrrrr")
    variables = {**run_variables(run), "job_minutes": fmt_num(total / 60, 1),
                 "cpu_minutes": fmt_num(cpu_total / 60, 1), "benchmarks": md_code(f"{shown}/")}
    return tables, variables


def run_variables(run: dict) -> dict:
    """Where (host, hardware), when, with which Keras backend and at which commit the numbers were
    made, from a :func:`klvae.record.run_record`, as ``env`` variables: ``cpu``,
    ``logical_cpus``, ``gpu``, ``memory``, ``tensorflow``, ``keras``, ``backend``, ``host`` and
    ``commit`` (code spans, :func:`~klvae.report.escape.md_code`), ``recorded_utc`` (as recorded)
    and ``recorded`` (``YYYY-MM-DD HH:MM:SS UTC``), the run's ``profile`` and ``seed``, ``origin``
    (the subtitle's ``commit <commit>``, or ``made in N parts``), ``commits`` (``project commit <c>``, or
    the parts' ``project commits <c1>, <c2>, ...``), ``recorded_when`` (when the record was written) and,
    for a run made in parts, the variables of its parts (:func:`_parts_variables`). The
    strings are the record's text (:func:`~klvae.report.escape.write_variables` escapes them)."""
    hw, versions = run["hardware"], run["versions"]
    values = {"cpu": hw["CPU"], "logical_cpus": hw["logical CPUs"], "gpu": hw["GPU"], "memory": hw["memory"],
              "tensorflow": versions.get("tensorflow", "not installed"), "keras": versions.get("keras", "?"),
              "backend": run["keras_backend"], "host": md_code(run["host"]), "commit": md_code(run["git_commit"]),
              "recorded_utc": run["recorded_utc"],
              "recorded": run["recorded_utc"].replace("T", " ").replace("Z", " UTC"),
              "profile": run["profile"], "seed": run["seed"]}
    parts = _parts_variables(run)
    # the title page's subtitle: the commit of a run made in one go; a run made in parts had several
    values["origin"] = f"made in {parts['n_parts']} parts" if parts else Markdown(f"commit {values['commit']}")
    # the methods chapter and the citation: the commit(s) the numbers were made at, and when the record was written
    values["commits"] = Markdown(f"project commits {parts['part_commits']}" if parts
                                 else f"project commit {values['commit']}")
    values["recorded_when"] = (f"when its first experiment was assembled from its parts, {run['recorded_utc']} (UTC); "
                               "the dates of each part are in the table of parts" if parts
                               else f"at its end, {run['recorded_utc']} (UTC)")
    return {**values, **parts}


def _utc(stamp) -> str:
    """A part's ISO time stamp as the report shows it (``YYYY-MM-DD HH:MM UTC``); ``?`` where it is none."""
    text = str(stamp or "").replace("T", " ").removesuffix("+00:00").removesuffix("Z")
    return f"{text[:16]} UTC" if len(text) >= 16 else "?"


def short_commit(commit: str) -> str:
    """A recorded commit (:func:`klvae.record.git_commit`) shortened as in the bundles' names
    (:func:`klvae.record.short_commit`: 7 hex digits, ``-dirty`` kept); any text that holds no commit
    whole, so that what a record holds is shown as it is, never cut into a fragment."""
    short = provenance.short_commit(commit)
    return commit if short == "nogit" else short


def _parts_variables(run: dict) -> dict:
    """For a run made in parts (its record's ``parts``, :func:`klvae.bundle.part.part_summary`), what
    the title page's banner says of them (``report/_banner_parts.qmd``): ``n_parts``, their hosts
    (``host a`` or ``hosts a, b``) and commits (code spans, in the order of the record, each once) and
    when the first part's first job started and the last part's last job ended
    (``parts_first``/``parts_last``). ``{}`` for a run made in one go."""
    parts = [p for p in run.get("parts") or [] if isinstance(p, dict)] if isinstance(run.get("parts"), list) else []
    if not parts:
        return {}

    def once(key, short=str, noun=""):
        seen = dict.fromkeys(short(str(p.get(key, ""))) for p in parts if p.get(key))
        if not seen:
            return f"{noun} ?".strip()
        word = f"{noun}{'s' if len(seen) > 1 else ''} " if noun else ""
        return Markdown(word + ", ".join(md_code(v) for v in seen))

    starts = sorted(str(p["first_start_utc"]) for p in parts if p.get("first_start_utc"))
    ends = sorted(str(p["last_end_utc"]) for p in parts if p.get("last_end_utc"))
    return {"n_parts": len(parts), "part_hosts": once("host", noun="host"),
            "part_commits": once("commit", short_commit),
            "parts_first": _utc(starts[0] if starts else None), "parts_last": _utc(ends[-1] if ends else None)}


def _number(x, fmt: str) -> str:
    """A number from a bundle's run record, formatted from the parsed number; ``–`` where it is none."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "–"
    return format(v, fmt) if math.isfinite(v) else "–"


def parts_table(run: dict) -> str:
    """The body of the table of the parts a shipped run was made in (``@tbl-compare-parts``), or ``""``.

    One row per part of the run record's ``parts`` (:func:`klvae.bundle.part.part_summary`): the
    part, its commit (7 hex digits, as in the bundles' names), host and CPU, when its first job
    started and its last ended (UTC), its jobs,
    CPU-seconds and wall time (h) from their benchmark files (for a part with a resumed training,
    ``+ ≈N``: the estimated CPU-s of its epochs before the resume, which no benchmark file counts,
    ``+ ?`` where its record has no estimate; its wall time spans the pause, so its share of busy
    cores is ``–``), the share of two cores they
    kept busy, how many trainings resumed from a checkpoint, and its trainings' threads (``–`` where the
    record does not say). Strings come from the bundle and are shown as text; numbers are
    formatted from parsed numbers.
    """
    parts = run.get("parts") if isinstance(run, dict) else None
    if not isinstance(parts, list) or not parts:
        return ""
    rows = []
    for p in parts:
        if not isinstance(p, dict):
            continue
        busy = _number(p.get("cores_busy"), ".0%")
        cpu = _number(p.get("cpu_s"), ",.0f")
        if _number(p.get("resumed"), ".0f") not in ("–", "0"):  # the runs before a resume: estimated
            before = _number(p.get("cpu_s_before_resume_est"), ",.0f")
            cpu += " + ?" if before == "–" else f" + ≈{before}"
        rows.append([str(p.get("part", "")), short_commit(str(p.get("commit", ""))), str(p.get("host", "")),
                     f"{p.get('cpu', '')} ({p.get('logical_cpus', '?')} logical)",
                     str(p.get("first_start_utc") or "").replace("T", " ").removesuffix("+00:00"),
                     str(p.get("last_end_utc") or "").replace("T", " ").removesuffix("+00:00"),
                     _number(p.get("jobs"), ".0f"), cpu,
                     _number(p["wall_s"] / 3600 if isinstance(p.get("wall_s"), (int, float)) else None, ".2f"),
                     busy, _number(p.get("resumed"), ".0f"), _number(p.get("threads"), ".0f")])
    return markdown_table(["part", "commit", "host", "CPU", "first job (UTC)", "last job ends (UTC)", "jobs",
                           "CPU-s", "wall (h)", "2 cores busy", "resumed", "threads"], rows, align="llllllrrrrrr")


def banner_fragment(config: dict, run: dict | None = None) -> str:
    """The title page's banner, generated include ``banner.md`` (:mod:`klvae.report.includes`):
    the callout saying where, when, on which hardware, with which Keras backend and at which commit
    the numbers were made (``report/_banner_run.qmd``, with the ``env`` variables of
    :func:`run_variables`; for a run made in parts, ``report/_banner_parts.qmd``: its parts' hosts,
    commits and first and last job, from the run record ``run``) and, for the quick profile, the
    warning that its numbers are not the posts' (``report/_banner_quick.qmd``)."""
    return includes.fragment("banner.md", profile=config["profile"], parts=bool(_parts_variables(run or {})))


def write_methods(provenance_md: str, versions_md: str, hardware_md: str, experiment_times_md: str,
                  rule_times_md: str, deviations: str, banner: str, variables: str, run_json: str,
                  mnist_provenance: str, config: dict, paper_config: str, schema: str, benchmarks_dir: str,
                  benchmarks_shown: str | None = None, experiments: Sequence[str] | None = None,
                  results_shown: str | None = None, parts_md: str | None = None,
                  parts_include: str | None = None) -> None:
    """Rule ``report_methods``: the bodies of the methods chapter's tables -- MNIST provenance
    (``provenance_md``), software versions (``versions_md``), hardware (``hardware_md``), time per
    experiment (``experiment_times_md``) and per rule (``rule_times_md``, seconds and MB), the
    settings against the posts' (``deviations``) -- whose captions are in ``report/_methods.qmd``;
    the title-page banner (``banner``, :func:`banner_fragment`: the generated include of the
    callouts saying where, when, on what, with which Keras backend and commit; the quick-profile
    warning) and the
    run-wide variables (profile, seed, data, environment ``env``: :func:`run_variables`, the jobs' times;
    ``results_dir`` and, as code spans, ``run_json`` and ``scorecard_csv``: the files the prose names),
    every string escaped once (:func:`~klvae.report.escape.write_variables`).

    Everything about the run comes from files the run wrote: its record ``run_json`` (rule
    ``run_record``, :func:`klvae.record.write_run_record`: Keras backend, hardware,
    host, date, commit, every package), the MNIST provenance and the benchmark files. So the same
    fragments come out when the report is rendered later, elsewhere, from a results bundle
    (``benchmarks_shown``, ``results_shown``: the benchmark folder and the results folder as the run
    named them, ``results/<profile>/...``, for the captions and the ``results_dir`` variable).
    ``experiments``: the experiment registry's names (``e1``, ...), for the per-experiment times
    and the settings table (default: the config's experiment sections). ``parts_md``: the body of
    the table of the parts a run was made in (:func:`parts_table`; empty for a run made in one go),
    ``parts_include``: the generated include ``methods_parts.md`` of its prose (:mod:`klvae.report.includes`).
    """
    run = json.loads(Path(run_json).read_text())
    results_shown = results_shown or results_dir(config["profile"])
    tables, env = methods_fragment(mnist_provenance, config, benchmarks_dir, run, benchmarks_shown, experiments)
    prov = json.loads(Path(mnist_provenance).read_text())
    values = {
        "profile": config["profile"], "seed": config["seed"], "results_dir": results_shown,
        # the files the prose names, as code spans (a variable inside a qmd code span would show escaped)
        "run_json": md_code(f"{results_shown}/report/generated/run.json"),
        "scorecard_csv": md_code(f"{results_shown}/tables/scorecard.csv"),
        "mnist": {"source": prov["source"], "n_train": f"{int(prov['n_train']):,}",
                  "n_test": f"{int(prov['n_test']):,}"},
        "env": env,
        "post_claims": reference.post_variables(),
    }
    for name, path in (("provenance", provenance_md), ("versions", versions_md), ("hardware", hardware_md),
                       ("experiment_times", experiment_times_md), ("rule_times", rule_times_md)):
        write_text(path, tables[name])
    write_text(deviations, deviations_fragment(config, paper_config, schema, experiments))
    write_text(banner, banner_fragment(config, run))
    parts = parts_table(run)
    values["n_parts"] = len(run.get("parts") or []) if parts else 0
    if parts_md:
        write_text(parts_md, parts)
    if parts_include:
        write_text(parts_include, includes.fragment("methods_parts.md", parts=bool(parts)))
    write_variables(variables, values)
