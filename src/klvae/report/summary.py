"""The report's summary page: scope, verdict counts per experiment, headline findings, compute used.

Reads only files the pipeline wrote (the scorecard CSV of rule ``report_scorecard`` and the
run variables of rule ``report_methods``) and writes data: the bodies of two tables and YAML
variables. The sentences around them and the tables' captions live in ``report/_summary.qmd``.

Headline findings are picked by a fixed rule, decided before looking at any run
(:func:`headline_findings`): the claims that differ most from the post's number, then the ones
reproduced most closely, each by the relative difference ``|ours - post| / |post|`` of the
scorecard's printed numbers (:func:`relative_difference`). Where the post gives a range
(``1.3–1.5``) and ours is one number, a disagreement is measured from the range's nearer end;
such a claim is not a candidate for "most clearly reproduced" (lying inside a range says
nothing about how close). Claims whose own number is not one number (a range, text) are not
candidates.

Where a shipped run is set beside this one (its verdicts are the scorecard's ``shipped_verdict``),
the verdict table also counts the shipped run's verdicts per experiment, on the same rules, so the summary gives the
verdict counts of both runs.

A second table counts this run's verdicts by what they rest on (:func:`basis_table`: the
scorecard's ``basis_kind``, :data:`klvae.report.scorecard.BASIS_KINDS`): our runs of the setting,
the backend study's spread, a fixed tolerance, or nothing to compare (other hardware, other data).

The scorecard's ``claim`` and ``compared`` are Markdown (:mod:`klvae.report.scorecard`); every
other string -- the shipped run's verdicts and claim ids, which come from a bundle, included --
is text (:mod:`klvae.report.escape`).
"""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import yaml

from klvae import registry
from klvae.io import write_text
from klvae.report.escape import Markdown, md_text, write_variables
from klvae.report.scorecard import BASIS_KINDS, VERDICTS, complete_row
from klvae.report.tables import markdown_table

#: Where each experiment's chapter starts (``E1`` -> ``sec-e1``, the heading id of report/_e1.qmd):
#: each registered experiment's ``anchor`` (:mod:`klvae.registry`).
SECTIONS = {e.label: e.anchor for e in registry.EXPERIMENTS}
#: The scope of the reproduction: the four posts (docs/sources.md) and the experiments built on them.
N_POSTS = 4


def _number(value) -> float:
    """``value`` as a float, or NaN where it is not one number (a range such as ``-3 to 4.5``, text)."""
    try:
        x = float(str(value).replace("\u2212", "-").replace(",", ""))
    except ValueError:
        return math.nan
    return x if math.isfinite(x) else math.nan


def post_range(value) -> tuple[float, float] | None:
    """A post's printed range (``1.3–1.5``, ``1.3-1.5``, ``1.3 to 1.5``) as ``(low, high)``; None
    where ``value`` is not a range of two numbers (one number, text)."""
    m = re.fullmatch(r"\s*(-?[\d.,]+)\s*(?:\u2013|-|to)\s*(-?[\d.,]+)\s*", str(value).replace("\u2212", "-"))
    if not m:
        return None
    lo, hi = _number(m.group(1)), _number(m.group(2))
    return None if math.isnan(lo) or math.isnan(hi) else (min(lo, hi), max(lo, hi))


def relative_difference(post_value, ours, ranges: bool = False) -> float:
    """``|ours - post| / |post|`` of two printed numbers (dimensionless); NaN if either is not a
    number or the post's is 0.

    With ``ranges``, a post's range (:func:`post_range`) counts too: the distance from ``ours``
    to the range's nearer end, relative to that end (0 inside the range)."""
    s, o = _number(post_value), _number(ours)
    if ranges and math.isnan(s) and not math.isnan(o) and (bounds := post_range(post_value)) is not None:
        lo, hi = bounds
        end = lo if o < lo else hi if o > hi else None
        if end is None:
            return 0.0
        s = end
    if math.isnan(s) or math.isnan(o) or s == 0:
        return math.nan
    return abs(o - s) / abs(s)


def headline_findings(rows: list[dict], n_differs: int = 2, n_reproduced: int = 2) -> list[dict]:
    """The summary's headline claims, picked by a fixed rule.

    Args:
        rows: scorecard rows (``id``, ``experiment``, ``claim``, ``compared``, ``post_value``,
            ``ours``, ``unit``, ``verdict`` ...; :data:`klvae.report.scorecard.COLUMNS`).
        n_differs: how many of the largest disagreements (verdict ``differs``, largest relative
            difference first).
        n_reproduced: how many of the claims most clearly reproduced (verdict ``reproduced``,
            smallest relative difference first).

    Returns:
        The picked rows, disagreements first, each with ``rel_diff`` (float) and ``kind``
        (``largest disagreement`` / ``most clearly reproduced``). Ties keep scorecard order. A
        disagreement with a post's range is measured from its nearer end; a post's range is no
        candidate for "most clearly reproduced" (module docstring).
    """
    def scored(verdict: str, ranges: bool) -> list[dict]:
        picked = [{**r, "rel_diff": relative_difference(r["post_value"], r["ours"], ranges=ranges)}
                  for r in rows if r["verdict"] == verdict]
        return [r for r in picked if not math.isnan(r["rel_diff"])]

    differs = sorted(scored("differs", ranges=True), key=lambda r: -r["rel_diff"])[:n_differs]
    same = sorted(scored("reproduced", ranges=False), key=lambda r: r["rel_diff"])[:n_reproduced]
    return ([{**r, "kind": "largest disagreement"} for r in differs]
            + [{**r, "kind": "most clearly reproduced"} for r in same])


def verdict_table(rows: list[dict], shipped: dict[str, str] | None = None) -> tuple[list[str], list[list[str]]]:
    """Verdict counts per experiment and in all: ``(header, body)`` for a pipe table.

    Columns: the verdicts of :data:`klvae.report.scorecard.VERDICTS` in their order, then any
    other verdict found (so a new verdict is counted before it is listed there).

    Args:
        rows: this run's scorecard rows (``id``, ``experiment``, ``verdict``).
        shipped: the shipped run's verdict per claim id (:func:`shipped_verdicts`); when given and
            not empty, each experiment (and "all") gets a second row, ``<E>, shipped run``, with
            that run's counts. A claim only the shipped run has is counted under the experiment
            its id starts with (``e2-…``: E2).
    """
    experiment_of = {r["id"]: r["experiment"] for r in rows}
    shipped_rows = [{"experiment": experiment_of.get(i, i.split("-")[0].upper()), "verdict": v}
                    for i, v in (shipped or {}).items()]
    found = list(dict.fromkeys(r["verdict"] for r in rows + shipped_rows))
    verdicts = [v for v in VERDICTS if v in found] + [v for v in found if v not in VERDICTS]
    experiments = list(dict.fromkeys(r["experiment"] for r in rows + shipped_rows))
    body = []
    for e in [*experiments, "all"]:
        label = f"[{e}](#{SECTIONS[e]})" if e in SECTIONS else md_text(e)
        label = label if e != "all" else "**all**"
        for run, suffix in ((rows, ""), (shipped_rows, ", shipped run")):
            if run is shipped_rows and not shipped_rows:
                continue
            picked = [r["verdict"] for r in run if e in ("all", r["experiment"])]
            body.append([Markdown(label + suffix), str(len(picked)), *(str(picked.count(v)) for v in verdicts)])
    return ["experiment", "claims", *verdicts], body


def basis_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Verdict counts by basis kind: ``(header, body)`` for a pipe table.

    Rows: every kind of :data:`klvae.report.scorecard.BASIS_KINDS` in its order (0 claims
    included: "the backend study: 0" says it judged nothing in this run), then any other kind
    found. Columns: ``basis``, ``claims``, then the verdicts found, in :data:`VERDICTS` order and
    any other after them (as :func:`verdict_table`).

    Args:
        rows: scorecard rows (``verdict`` and ``basis_kind``; a row without ``basis_kind``, from a
            scorecard written before the column existed, gets it from its ``basis`` text,
            :func:`klvae.report.scorecard.complete_row`).
    """
    kinds = [complete_row(r)["basis_kind"] for r in rows]
    found = list(dict.fromkeys(r["verdict"] for r in rows))
    verdicts = [v for v in VERDICTS if v in found] + [v for v in found if v not in VERDICTS]
    body = []
    for kind in [*BASIS_KINDS, *(k for k in dict.fromkeys(kinds) if k not in BASIS_KINDS)]:
        picked = [r["verdict"] for r, k in zip(rows, kinds, strict=True) if k == kind]
        body.append([kind or "unknown", str(len(picked)), *(str(picked.count(v)) for v in verdicts)])
    return ["basis", "claims", *verdicts], body


def shipped_verdicts(rows: list[dict]) -> dict[str, str]:
    """The shipped run's verdict per claim id, as the scorecard's ``shipped_verdict`` column holds
    it (:func:`klvae.report.scorecard.shipped_columns`: judged by today's code from the shipped
    bundle's data); claims of experiments the shipped run does not hold, a scorecard without a
    shipped run and one made before the column existed give none."""
    return {str(r["id"]): str(r["shipped_verdict"]) for r in rows if str(r.get("shipped_verdict") or "")}


def summary_markdown(rows: list[dict], shipped: dict[str, str] | None = None) -> dict[str, str]:
    """The summary's table bodies: ``verdicts``, the verdict counts (``@tbl-summary-verdicts``;
    with the shipped run's beside them where ``shipped`` is given, :func:`verdict_table`), and
    ``headlines``, the headline findings (``@tbl-summary-headlines``), each claim linked to its
    experiment's chapter, and ``bases``, the verdict counts by basis (``@tbl-summary-bases``,
    :func:`basis_table`)."""
    header, body = verdict_table(rows, shipped)
    verdicts = markdown_table(header, body, align="l" + "r" * (len(header) - 1))
    heads = headline_findings(rows)
    # the experiment goes into the claim's cell: one column less keeps the table inside a PDF page's width
    h_body = [[r["kind"], Markdown(f"{r['claim']} ([{md_text(r['experiment'])}]"
                                   f"(#{SECTIONS.get(r['experiment'], 'sec-scorecard')}))"),
               Markdown(r["compared"]), str(r["post_value"]), str(r["ours"]), r["unit"],
               f"{100 * r['rel_diff']:.1f} %", r["verdict"]] for r in heads]
    headlines = markdown_table(["finding", "claim (experiment)", "compared", "post", "ours", "unit", "difference",
                                "verdict"], h_body, align="lllrrlrl")
    b_header, b_body = basis_table(rows)
    bases = markdown_table(b_header, b_body, align="l" + "r" * (len(b_header) - 1))
    return {"verdicts": verdicts, "headlines": headlines, "bases": bases}


def code_version(run: dict) -> str:
    """The klvae version a run was made with, from its run record's installed packages
    (:func:`klvae.record.installed_packages`); ``"unknown"`` where not listed."""
    packages = {str(k).lower(): v for k, v in (run.get("packages") or {}).items()}
    return str(packages.get("klvae") or "unknown")


def write_summary(scorecard: str, methods_variables: str, verdicts_md: str, headlines_md: str, variables: str,
                  run_json: str | None = None, bases_md: str | None = None) -> None:
    """Rule ``report_summary``: the summary page's table bodies and variables.

    Args:
        scorecard: rule ``report_scorecard``'s CSV (one row per claim).
        methods_variables: rule ``report_methods``' YAML (``env.cpu_minutes``, ``env.cpu``,
            ``env.gpu``, ``env.job_minutes``).
        verdicts_md, headlines_md: output pipe tables (:func:`summary_markdown`): claims per
            verdict and experiment; the headline findings. Their captions are in ``report/_summary.qmd``.
        bases_md: output pipe table (optional): claims per verdict and basis kind (:func:`basis_table`).
        variables: output YAML: ``summary.n_posts``, ``n_experiments``, ``n_claims``,
            ``n_verdicts`` (claims judged reproduced or differs), ``n_reproduced``,
            ``n_differs``, ``cpu_hours`` (CPU time of every job, hours, 2 decimals),
            ``job_hours``, ``cpu``, ``gpu``, ``headlines`` (how many findings are listed),
            ``version`` (klvae's version in the run, :func:`code_version`; for citing),
            ``n_basis_runs``, ``n_basis_study``, ``n_basis_tolerance``, ``n_basis_other_hardware``,
            ``n_basis_other_data`` (claims per basis kind, :data:`klvae.report.scorecard.BASIS_KINDS` in that order).
        run_json: the run record of rule ``report_methods`` (optional).

    Where a shipped run is set beside this one, the scorecard holds its verdicts (recomputed by
    today's code from its data) and the verdict table counts them too (:func:`shipped_verdicts`);
    ``shipped_run`` is then ``yes``.

    Raises:
        FileNotFoundError: an input is missing. KeyError: the scorecard lacks a column.
    """
    frame = pd.read_csv(scorecard, dtype=str, keep_default_na=False)
    rows = frame.to_dict("records")
    env = (yaml.safe_load(open(methods_variables)) or {}).get("env", {})
    shipped = shipped_verdicts(rows)
    tables = summary_markdown(rows, shipped)
    write_text(verdicts_md, tables["verdicts"])
    write_text(headlines_md, tables["headlines"])
    if bases_md:
        write_text(bases_md, tables["bases"])
    verdicts = [r["verdict"] for r in rows]

    def hours(minutes) -> str:
        x = _number(minutes)
        return "n/a" if math.isnan(x) else f"{x / 60:.2f}"

    values = {"n_posts": N_POSTS, "n_experiments": len(dict.fromkeys(r["experiment"] for r in rows)),
              "n_claims": len(rows), "n_reproduced": verdicts.count("reproduced"),
              "n_differs": verdicts.count("differs"),
              "n_verdicts": verdicts.count("reproduced") + verdicts.count("differs"),
              "cpu_hours": hours(env.get("cpu_minutes")), "job_hours": hours(env.get("job_minutes")),
              # escaped once already, by rule report_methods
              "cpu": Markdown(env.get("cpu", "unknown")), "gpu": Markdown(env.get("gpu", "none")),
              "headlines": len(headline_findings(rows)), "shipped_run": "yes" if shipped else "no",
              "version": code_version(json.loads(open(run_json).read())) if run_json else "unknown"}
    kinds = [complete_row(r)["basis_kind"] for r in rows]
    keys = ("runs", "study", "tolerance", "other_hardware", "other_data")
    values.update({f"n_basis_{key}": kinds.count(kind) for key, kind in zip(keys, BASIS_KINDS, strict=True)})
    write_variables(variables, {"summary": values})
