"""The report's summary page: scope, verdict counts per experiment, headline findings, compute used.

Reads only files the pipeline wrote (the scorecard CSV of rule ``report_scorecard`` and the
run variables of rule ``report_methods``) and writes data: the bodies of two tables and YAML
variables. The sentences around them and the tables' captions live in ``report/_summary.qmd``.

Headline findings are picked by a fixed rule, decided before looking at any run
(:func:`headline_findings`): the claims that differ most from the seed's number, then the ones
reproduced most closely, each by the relative difference ``|ours - seed| / |seed|`` of the
scorecard's printed numbers; claims whose numbers are not single numbers (ranges, text) are
not candidates.
"""

from __future__ import annotations

import json
import math

import pandas as pd
import yaml

from klvae.io import write_text
from klvae.report.scorecard import VERDICTS
from klvae.report.tables import markdown_table

#: Where each experiment's chapter starts (the ids in report/_eN.qmd).
SECTIONS = {"E1": "sec-e1", "E2": "sec-e2", "E3": "sec-e3"}
#: The scope of the reproduction (the seed posts in ../shared/seeds and the experiments built on them).
N_POSTS = 4


def _number(value) -> float:
    """``value`` as a float, or NaN where it is not one number (a range such as ``-3 to 4.5``, text)."""
    try:
        x = float(str(value).replace("\u2212", "-").replace(",", ""))
    except ValueError:
        return math.nan
    return x if math.isfinite(x) else math.nan


def relative_difference(seed_value, ours) -> float:
    """``|ours - seed| / |seed|`` of two printed numbers (dimensionless); NaN if either is not a
    number or the seed's is 0."""
    s, o = _number(seed_value), _number(ours)
    if math.isnan(s) or math.isnan(o) or s == 0:
        return math.nan
    return abs(o - s) / abs(s)


def headline_findings(rows: list[dict], n_differs: int = 2, n_reproduced: int = 2) -> list[dict]:
    """The summary's headline claims, picked by a fixed rule.

    Args:
        rows: scorecard rows (``id``, ``experiment``, ``claim``, ``compared``, ``seed_value``,
            ``ours``, ``unit``, ``verdict`` ...; :data:`klvae.report.scorecard.COLUMNS`).
        n_differs: how many of the largest disagreements (verdict ``differs``, largest relative
            difference first).
        n_reproduced: how many of the claims most clearly reproduced (verdict ``reproduced``,
            smallest relative difference first).

    Returns:
        The picked rows, disagreements first, each with ``rel_diff`` (float) and ``kind``
        (``largest disagreement`` / ``most clearly reproduced``). Ties keep scorecard order.
    """
    scored = [{**r, "rel_diff": relative_difference(r["seed_value"], r["ours"])} for r in rows]
    scored = [r for r in scored if not math.isnan(r["rel_diff"])]
    differs = sorted((r for r in scored if r["verdict"] == "differs"), key=lambda r: -r["rel_diff"])[:n_differs]
    same = sorted((r for r in scored if r["verdict"] == "reproduced"), key=lambda r: r["rel_diff"])[:n_reproduced]
    return ([{**r, "kind": "largest disagreement"} for r in differs]
            + [{**r, "kind": "most clearly reproduced"} for r in same])


def verdict_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Verdict counts per experiment and in all: ``(header, body)`` for a pipe table.

    Columns: the verdicts of :data:`klvae.report.scorecard.VERDICTS` in their order, then any
    other verdict found in ``rows`` (so a new verdict is counted before it is listed there).
    """
    found = list(dict.fromkeys(r["verdict"] for r in rows))
    verdicts = [v for v in VERDICTS if v in found] + [v for v in found if v not in VERDICTS]
    experiments = list(dict.fromkeys(r["experiment"] for r in rows))
    body = []
    for e in [*experiments, "all"]:
        picked = [r["verdict"] for r in rows if e in ("all", r["experiment"])]
        label = f"[{e}](#{SECTIONS[e]})" if e in SECTIONS else e
        body.append([label if e != "all" else "**all**", str(len(picked)), *(str(picked.count(v)) for v in verdicts)])
    return ["experiment", "claims", *verdicts], body


def summary_markdown(rows: list[dict]) -> dict[str, str]:
    """The summary's table bodies: ``verdicts``, the verdict counts (``@tbl-summary-verdicts``), and
    ``headlines``, the headline findings (``@tbl-summary-headlines``), each claim linked to its
    experiment's chapter."""
    header, body = verdict_table(rows)
    verdicts = markdown_table(header, body, align="l" + "r" * (len(header) - 1))
    heads = headline_findings(rows)
    h_body = [[r["kind"], f"[{r['experiment']}](#{SECTIONS.get(r['experiment'], 'sec-scorecard')})", r["claim"],
               r["compared"], str(r["seed_value"]), str(r["ours"]), r["unit"], f"{100 * r['rel_diff']:.1f} %",
               r["verdict"]] for r in heads]
    headlines = markdown_table(["finding", "experiment", "claim", "compared", "seed", "ours", "unit", "difference",
                                "verdict"], h_body, align="lllllrrrl")
    return {"verdicts": verdicts, "headlines": headlines}


def code_version(run: dict) -> str:
    """The klvae version a run was made with, from its run record's installed packages
    (:func:`klvae.report.provenance.installed_packages`); ``"unknown"`` where not listed."""
    packages = {str(k).lower(): v for k, v in (run.get("packages") or {}).items()}
    return str(packages.get("klvae") or "unknown")


def write_summary(scorecard: str, methods_variables: str, verdicts_md: str, headlines_md: str, variables: str,
                  run_json: str | None = None) -> None:
    """Rule ``report_summary``: the summary page's table bodies and variables.

    Args:
        scorecard: rule ``report_scorecard``'s CSV (one row per claim).
        methods_variables: rule ``report_methods``' YAML (``env.cpu_minutes``, ``env.cpu``,
            ``env.gpu``, ``env.job_minutes``).
        verdicts_md, headlines_md: output pipe tables (:func:`summary_markdown`): claims per
            verdict and experiment; the headline findings. Their captions are in ``report/_summary.qmd``.
        variables: output YAML: ``summary.n_posts``, ``n_experiments``, ``n_claims``,
            ``n_verdicts`` (claims judged reproduced or differs), ``n_reproduced``,
            ``n_differs``, ``cpu_hours`` (CPU time of every job, hours, 2 decimals),
            ``job_hours``, ``cpu``, ``gpu``, ``headlines`` (how many findings are listed),
            ``version`` (klvae's version in the run, :func:`code_version`; for citing).
        run_json: the run record of rule ``report_methods`` (optional).

    Raises:
        FileNotFoundError: an input is missing. KeyError: the scorecard lacks a column.
    """
    frame = pd.read_csv(scorecard, dtype=str, keep_default_na=False)
    rows = frame.to_dict("records")
    env = (yaml.safe_load(open(methods_variables)) or {}).get("env", {})
    tables = summary_markdown(rows)
    write_text(verdicts_md, tables["verdicts"])
    write_text(headlines_md, tables["headlines"])
    verdicts = [r["verdict"] for r in rows]

    def hours(minutes) -> str:
        x = _number(minutes)
        return "n/a" if math.isnan(x) else f"{x / 60:.2f}"

    values = {"n_posts": N_POSTS, "n_experiments": len(dict.fromkeys(r["experiment"] for r in rows)),
              "n_claims": len(rows), "n_reproduced": verdicts.count("reproduced"),
              "n_differs": verdicts.count("differs"),
              "n_verdicts": verdicts.count("reproduced") + verdicts.count("differs"),
              "cpu_hours": hours(env.get("cpu_minutes")), "job_hours": hours(env.get("job_minutes")),
              "cpu": str(env.get("cpu", "unknown")), "gpu": str(env.get("gpu", "none")),
              "headlines": len(headline_findings(rows)),
              "version": code_version(json.loads(open(run_json).read())) if run_json else "unknown"}
    write_text(variables, yaml.safe_dump({"summary": values}, sort_keys=False, allow_unicode=True))
