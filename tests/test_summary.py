"""The report's summary page (klvae.report.summary): verdict counts, the headline rule, the variables."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest
import yaml

from conftest import REPO
from klvae.report.summary import (
    basis_table,
    headline_findings,
    relative_difference,
    shipped_verdicts,
    verdict_table,
    write_summary,
)


def _row(id_, experiment, seed, ours, verdict, claim="claim"):
    return {"id": id_, "experiment": experiment, "claim": f"{claim} {id_}", "compared": "test", "post_value": seed,
            "ours": ours, "sd": "", "n": "1", "interval": "", "basis": "tolerance", "verdict": verdict,
            "unit": "nats", "profile": "quick", "note": ""}


ROWS = [
    _row("a", "E1", "141.54", "138.11", "differs"),          # 2.42 %
    _row("b", "E1", "506.82", "478.75", "differs"),          # 5.54 %
    _row("c", "E1", "150.39", "150.72", "reproduced"),       # 0.22 %
    _row("d", "E1", "203.31", "203.14", "reproduced"),       # 0.084 %
    _row("e", "E2", "0.1135", "0.1163", "reproduced"),       # 2.47 %
    _row("f", "E2", "-3 to 4.5", "-4.2 to 1.9", "differs"),  # ours a range: never a headline
    _row("g", "E2", "44", "185.6", "not comparable"),
    _row("h", "E3", "0", "0.5", "differs"),                  # seed 0: no relative difference
    _row("i", "E3", "20", "12.0", "paper profile only"),
]


def test_relative_difference_by_hand():
    assert relative_difference("141.54", "138.11") == pytest.approx(3.43 / 141.54)
    assert relative_difference("−2", "-1") == pytest.approx(0.5)  # a typographic minus is a minus
    assert math.isnan(relative_difference("-3 to 4.5", "1"))
    assert math.isnan(relative_difference("0", "1"))
    assert math.isnan(relative_difference("n/a", "1"))


def test_relative_difference_from_a_seeds_range_by_hand():
    """Post VII's "1.3–1.5" against the default run's 1.03: (1.3 - 1.03) / 1.3 = 20.8 %, from the nearer end."""
    assert relative_difference("1.3–1.5", "1.03", ranges=True) == pytest.approx(0.27 / 1.3)
    assert relative_difference("1.3 to 1.5", "1.8", ranges=True) == pytest.approx(0.3 / 1.5)
    assert relative_difference("1.3-1.5", "1.4", ranges=True) == 0.0  # inside the range
    assert math.isnan(relative_difference("1.3–1.5", "1.03"))  # only when asked for
    assert math.isnan(relative_difference("-3 to 4.5", "-4.2 to 1.9", ranges=True))  # ours not one number


def test_a_disagreement_with_a_seeds_range_is_a_headline_and_a_value_inside_one_is_not():
    rows = ROWS + [_row("r", "E2", "1.3–1.5", "1.03", "differs"),      # 20.8 % from 1.3: the largest
                   _row("s", "E2", "1.3–1.5", "1.4", "reproduced")]    # inside: 0 %, yet no "closest" pick
    heads = headline_findings(rows)
    assert [h["id"] for h in heads] == ["r", "b", "d", "c"]
    assert heads[0]["rel_diff"] == pytest.approx(0.27 / 1.3)


def test_headlines_are_the_largest_disagreements_then_the_closest_reproductions():
    heads = headline_findings(ROWS)
    assert [h["id"] for h in heads] == ["b", "a", "d", "c"]
    assert [h["kind"] for h in heads] == ["largest disagreement"] * 2 + ["most clearly reproduced"] * 2
    assert heads[0]["rel_diff"] == pytest.approx(28.07 / 506.82)
    # fewer candidates than asked: only what there is
    assert [h["id"] for h in headline_findings(ROWS[4:])] == ["e"]


def test_verdict_table_counts_every_verdict_per_experiment_and_in_all():
    header, body = verdict_table(ROWS + [_row("j", "E3", "1", "1", "inconclusive")])
    # the scorecard's verdicts in its order (klvae.report.scorecard.VERDICTS), those present only
    assert header == ["experiment", "claims", "reproduced", "differs", "inconclusive", "not comparable",
                      "paper profile only"]
    table = {r[0]: r[1:] for r in body}
    assert table["[E1](#sec-e1)"] == ["4", "2", "2", "0", "0", "0"]
    assert table["[E2](#sec-e2)"] == ["3", "1", "1", "0", "1", "0"]
    assert table["[E3](#sec-e3)"] == ["3", "0", "1", "1", "0", "1"]
    assert table["**all**"] == ["10", "3", "4", "1", "1", "1"]
    # a verdict the scorecard does not list (yet) is still counted, after the listed ones
    header, body = verdict_table([_row("k", "E1", "1", "1", "withdrawn"), _row("l", "E1", "1", "1", "differs")])
    assert header[2:] == ["differs", "withdrawn"] and body[-1] == ["**all**", "2", "1", "1"]


def test_verdict_table_sets_the_shipped_runs_counts_beside_this_runs():
    """With a shipped run's verdicts (rule report_compare's diff CSV), each experiment gets a second
    row with that run's counts; a claim only the shipped run has counts under its id's experiment."""
    shipped = {"a": "reproduced", "b": "reproduced", "c": "reproduced", "d": "reproduced", "e": "differs",
               "f": "differs", "g": "not comparable", "h": "reproduced", "i": "reproduced", "e3-extra": "differs"}
    header, body = verdict_table(ROWS, shipped)
    assert header == ["experiment", "claims", "reproduced", "differs", "not comparable", "paper profile only"]
    table = {r[0]: r[1:] for r in body}
    assert [r[0] for r in body] == ["[E1](#sec-e1)", "[E1](#sec-e1), shipped run", "[E2](#sec-e2)",
                                    "[E2](#sec-e2), shipped run", "[E3](#sec-e3)", "[E3](#sec-e3), shipped run",
                                    "**all**", "**all**, shipped run"]
    assert table["[E1](#sec-e1)"] == ["4", "2", "2", "0", "0"]
    assert table["[E1](#sec-e1), shipped run"] == ["4", "4", "0", "0", "0"]
    assert table["[E3](#sec-e3), shipped run"] == ["3", "2", "1", "0", "0"]
    assert table["**all**, shipped run"] == ["10", "6", "3", "1", "0"]
    assert verdict_table(ROWS, {}) == verdict_table(ROWS)  # none shipped: this run's rows only


def test_shipped_verdicts_from_the_scorecards_shipped_column():
    rows = [{"id": "a", "verdict": "differs", "shipped_verdict": "reproduced"},
            {"id": "b", "verdict": "reproduced", "shipped_verdict": ""},  # its experiment is not in the shipped run
            {"id": "c", "verdict": "reproduced"}]  # a scorecard made before the column existed
    assert shipped_verdicts(rows) == {"a": "reproduced"} and shipped_verdicts([]) == {}


def test_write_summary_from_files(tmp_path):
    card = tmp_path / "scorecard.csv"
    pd.DataFrame(ROWS).to_csv(card, index=False)
    methods = tmp_path / "methods.vars.yml"
    methods.write_text(yaml.safe_dump({"env": {"cpu_minutes": "97.5", "job_minutes": "120.0", "cpu": "AMD EPYC",
                                               "gpu": "none"}}))
    verdicts, headlines = tmp_path / "summary_verdicts.md", tmp_path / "summary_headlines.md"
    variables = tmp_path / "summary.vars.yml"
    run = tmp_path / "run.json"
    run.write_text('{"packages": {"klvae": "0.1.0"}}')
    write_summary(str(card), str(methods), str(verdicts), str(headlines), str(variables), str(run))
    v = yaml.safe_load(variables.read_text())["summary"]
    assert (v["n_claims"], v["n_reproduced"], v["n_differs"], v["n_verdicts"]) == (9, 3, 4, 7)
    assert v["version"] == "0.1.0"
    assert (v["cpu_hours"], v["job_hours"], v["cpu"], v["gpu"], v["headlines"]) == ("1.62", "2.00", "AMD EPYC",
                                                                                      "none", 4)
    counts, heads = verdicts.read_text(), headlines.read_text()
    assert counts.startswith("| experiment | claims |") and "| **all** | 9 |" in counts
    assert heads.startswith("| finding | claim (experiment) | compared |") and "5.5 %" in heads
    assert "| claim b ([E1](#sec-e1)) | test |" in heads  # each claim links its experiment's chapter
    assert "{#tbl-" not in counts + heads  # bodies only: the captions are in report/_summary.qmd
    assert v["shipped_run"] == "no" and "shipped run" not in counts
    # beside a shipped run (the scorecard's shipped_verdict, judged from its data): its counts get rows of their own
    pd.DataFrame([{**r, "shipped_verdict": "reproduced"} for r in ROWS]).to_csv(card, index=False)
    write_summary(str(card), str(methods), str(verdicts), str(headlines), str(variables), str(run))
    assert yaml.safe_load(variables.read_text())["summary"]["shipped_run"] == "yes"
    assert "| **all**, shipped run | 9 | 9 | 0 |" in verdicts.read_text()
    qmd = (REPO / "report" / "_summary.qmd").read_text()
    for name, label in (("summary_verdicts", "tbl-summary-verdicts"), ("summary_headlines", "tbl-summary-headlines"),
                        ("summary_bases", "tbl-summary-bases")):
        assert re.search(r"\{\{< include /_generated/" + name + r"\.md >\}\}\n\n: .*\{#" + label + r"\}$", qmd, re.M)


def test_code_version_from_the_run_record():
    from klvae.report.summary import code_version

    assert code_version({"packages": {"keras": "3.15.1", "klvae": "0.1.0"}}) == "0.1.0"
    assert code_version({"packages": {"keras": "3.15.1"}}) == "unknown"
    assert code_version({}) == "unknown"


def _kind(row: dict, basis: str, kind: str | None) -> dict:
    out = {**row, "basis": basis}
    if kind is not None:
        out["basis_kind"] = kind
    return out


#: The same claims, each with a basis: explicit ``basis_kind`` where given, else (an older scorecard) none.
BASED = [
    _kind(ROWS[0], "prediction interval, n = 3", "runs of the setting"),                         # differs
    _kind(ROWS[1], "prediction interval, single run ± spread of n = 3 runs of the same setting on tensorflow "
                   "from the backend study (backend-study-2c10aae.tar.gz)", "the backend study"),  # differs
    _kind(ROWS[2], "prediction interval, n = 3", "runs of the setting"),                         # reproduced
    _kind(ROWS[3], "tolerance ±2 %, single run", "fixed tolerance"),                             # reproduced
    _kind(ROWS[4], "tolerance ±2 %, single run", None),                                          # reproduced
    _kind(ROWS[5], "tolerance ±1 per end, single run", None),                                    # differs
    _kind(ROWS[6], "other hardware (post: GTX 960)", None),                                      # not comparable
    _kind(ROWS[7], "prediction interval, n = 5 windows", None),                                  # differs
    _kind(ROWS[8], "tolerance ±2 %", "fixed tolerance"),                                         # paper profile only
    _kind(_row("j", "E1", "0.68", "0.70", "inconclusive"), "tolerance ±1 nats, single run", "fixed tolerance"),
    _kind(_row("k", "E3", "most", "50.2 %", "not comparable"), "other data (post: CelebA; here the synthetic stand-in)",
          None),
]


def test_basis_table_counts_verdicts_by_what_they_rest_on():
    """By hand from BASED: runs of the setting a (differs), c (reproduced), h (differs, derived from
    its basis); the backend study b (differs); fixed tolerance d, e (reproduced), f (differs), i
    (paper profile only), j (inconclusive); other hardware g (not comparable); other data k (not
    comparable, derived from its basis)."""
    header, body = basis_table(BASED)
    assert header == ["basis", "claims", "reproduced", "differs", "inconclusive", "not comparable",
                      "paper profile only"]
    assert body == [["runs of the setting", "3", "1", "2", "0", "0", "0"],
                    ["the backend study", "1", "0", "1", "0", "0", "0"],
                    ["fixed tolerance", "5", "2", "1", "1", "0", "1"],
                    ["other hardware", "1", "0", "0", "0", "1", "0"],
                    ["other data", "1", "0", "0", "0", "1", "0"]]
    # a run without the backend study still shows its row, with 0 claims
    header, body = basis_table([BASED[0]])
    assert header == ["basis", "claims", "differs"]
    assert body == [["runs of the setting", "1", "1"], ["the backend study", "0", "0"], ["fixed tolerance", "0", "0"],
                    ["other hardware", "0", "0"], ["other data", "0", "0"]]


def test_write_summary_counts_by_basis(tmp_path):
    card = tmp_path / "scorecard.csv"
    pd.DataFrame(BASED).to_csv(card, index=False)  # basis_kind empty where not given: derived from basis
    methods = tmp_path / "methods.vars.yml"
    methods.write_text(yaml.safe_dump({"env": {"cpu_minutes": "60", "job_minutes": "60", "cpu": "x", "gpu": "none"}}))
    out = {k: tmp_path / f"{k}.md" for k in ("verdicts", "headlines", "bases")}
    variables = tmp_path / "summary.vars.yml"
    write_summary(str(card), str(methods), str(out["verdicts"]), str(out["headlines"]), str(variables),
                  bases_md=str(out["bases"]))
    v = yaml.safe_load(variables.read_text())["summary"]
    assert (v["n_basis_runs"], v["n_basis_study"], v["n_basis_tolerance"], v["n_basis_other_hardware"],
            v["n_basis_other_data"]) == (3, 1, 5, 1, 1)
    bases = out["bases"].read_text()
    assert bases.startswith("| basis | claims | reproduced | differs | inconclusive |")
    assert "| the backend study | 1 | 0 | 1 | 0 | 0 | 0 |" in bases and "{#tbl-" not in bases
    # an older scorecard (no basis_kind column at all) is counted by its basis text
    pd.DataFrame(ROWS).to_csv(card, index=False)
    write_summary(str(card), str(methods), str(out["verdicts"]), str(out["headlines"]), str(variables),
                  bases_md=str(out["bases"]))
    assert yaml.safe_load(variables.read_text())["summary"]["n_basis_tolerance"] == len(ROWS)
