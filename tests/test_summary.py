"""The report's summary page (klvae.report.summary): verdict counts, the headline rule, the variables."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest
import yaml

from conftest import REPO
from klvae.report.summary import headline_findings, relative_difference, verdict_table, write_summary


def _row(id_, experiment, seed, ours, verdict, claim="claim"):
    return {"id": id_, "experiment": experiment, "claim": f"{claim} {id_}", "compared": "test", "seed_value": seed,
            "ours": ours, "sd": "", "n": "1", "interval": "", "basis": "tolerance", "verdict": verdict,
            "unit": "nats", "profile": "quick", "note": ""}


ROWS = [
    _row("a", "E1", "141.54", "138.11", "differs"),          # 2.42 %
    _row("b", "E1", "506.82", "478.75", "differs"),          # 5.54 %
    _row("c", "E1", "150.39", "150.72", "reproduced"),       # 0.22 %
    _row("d", "E1", "203.31", "203.14", "reproduced"),       # 0.084 %
    _row("e", "E2", "0.1135", "0.1163", "reproduced"),       # 2.47 %
    _row("f", "E2", "-3 to 4.5", "-4.2 to 1.9", "differs"),  # a range: never a headline
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
    assert heads.startswith("| finding | experiment | claim |") and "5.5 %" in heads and "[E1](#sec-e1)" in heads
    assert "{#tbl-" not in counts + heads  # bodies only: the captions are in report/_summary.qmd
    qmd = (REPO / "report" / "_summary.qmd").read_text()
    for name, label in (("summary_verdicts", "tbl-summary-verdicts"), ("summary_headlines", "tbl-summary-headlines")):
        assert re.search(r"\{\{< include /_generated/" + name + r"\.md >\}\}\n\n: .*\{#" + label + r"\}$", qmd, re.M)


def test_code_version_from_the_run_record():
    from klvae.report.summary import code_version

    assert code_version({"packages": {"keras": "3.15.1", "klvae": "0.1.0"}}) == "0.1.0"
    assert code_version({"packages": {"keras": "3.15.1"}}) == "unknown"
    assert code_version({}) == "unknown"
