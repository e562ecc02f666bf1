"""An experiment is one unit: adding one is five files and one line of the registry.

A contributor's E9 -- a tiny fake experiment with one table, one figure, one report fragment
and one scorecard claim -- is added to a copy of the checkout exactly as the README says
("Adding an experiment"): ``workflow/rules/e9.smk``, ``src/klvae/experiments/e9.py``,
``src/klvae/figures/e9.py``, ``src/klvae/report/e9.py``, ``report/_e9.qmd`` and the line
``"e9",`` in ``EXPERIMENTS`` (``workflow/rules/common.smk``). Nothing else is edited: the
Snakefile, ``rule all``, the report's inputs and chapters, the scorecard and the methods
chapter pick it up from the registry. On a copy of the session's quick run, E9 then shows up
in the DAG, in the rendered report and in the scorecard, and nothing of E1-E3 is retrained.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from conftest import QUICK, QUICK_TARGETS, copy_checkout, run_snakemake

E9_SMK = '''\
# E9: a fake experiment (a test's): one table, one figure, one claim.


rule e9_measure:
    """E9's numbers."""
    output:
        table=f"{RESULTS}/tables/e9_values.csv",
    log:
        f"{LOGS}/e9_measure.log",
    benchmark:
        f"{BENCH}/e9_measure.tsv"
    params:
        **library_call("klvae.experiments.e9:measure"),
        kwargs={"seed": config["seed"]},
    script:
        CALL


rule e9_bars:
    """E9's figure."""
    input:
        table=rules.e9_measure.output.table,
    output:
        png=f"{RESULTS}/figures/e9/bars.png",
    log:
        f"{LOGS}/e9_bars.log",
    benchmark:
        f"{BENCH}/e9_bars.tsv"
    params:
        **library_call("klvae.figures.e9:bars"),
    script:
        CALL


rule report_e9:
    """E9's table (its body) and variables."""
    input:
        values=rules.e9_measure.output.table,
    output:
        values_md=f"{GEN}/e9_values.md",
        variables=f"{GEN}/e9.vars.yml",
    log:
        f"{LOGS}/report/e9.log",
    params:
        **library_call("klvae.report.e9:write_e9"),
    script:
        CALL


rule report_scorecard_e9:
    """E9's scorecard part."""
    input:
        values=rules.e9_measure.output.table,
    output:
        table=f"{GEN}/scorecard_e9.csv",
    log:
        f"{LOGS}/report/scorecard_e9.log",
    params:
        **library_call("klvae.report.e9:write_e9_scorecard"),
        kwargs={"profile": config["profile"]},
    script:
        CALL


register_experiment(
    "e9",
    title="E9, a fake experiment",
    figures=rules.e9_bars.output,
    tables=[rules.e9_measure.output.table],
    report_rule=rules.report_e9,
    scorecard_rule=rules.report_scorecard_e9,
)
'''

E9_EXPERIMENT = '''\
"""E9 (a test's fake experiment): three seeded integers."""

import numpy as np
import pandas as pd


def measure(table: str, seed: int) -> None:
    """Rule ``e9_measure``: three integers in 1..9 from ``seed`` -> ``table`` (CSV: item, value)."""
    values = np.random.default_rng(seed).integers(1, 10, size=3)
    pd.DataFrame({"item": ["a", "b", "c"], "value": values}).to_csv(table, index=False)
'''

E9_FIGURE = '''\
"""E9's figure."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def bars(png: str, table: str) -> None:
    """Rule ``e9_bars``: the values of ``table`` as bars -> ``png``."""
    t = pd.read_csv(table)
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.bar(t["item"], t["value"])
    fig.savefig(png, dpi=80)
    plt.close(fig)
'''

E9_REPORT = '''\
"""E9's report fragment and scorecard part."""

import pandas as pd
import yaml

from klvae.io import write_text
from klvae.report.scorecard import Judgement, claim_row, judge, write_part
from klvae.report.tables import markdown_table


def write_e9(values_md: str, variables: str, values: str) -> None:
    """Rule ``report_e9``: the values' table body and the variables (count, largest value)."""
    t = pd.read_csv(values)
    write_text(values_md, markdown_table(["item", "value"], [[r.item, str(r.value)] for r in t.itertuples()]))
    write_text(variables, yaml.safe_dump({"e9": {"n_values": int(len(t)), "largest": int(t.value.max())}}))


def write_e9_scorecard(table: str, values: str, profile: str) -> None:
    """Rule ``report_scorecard_e9``: one claim, "E9 measures three values"."""
    n = len(pd.read_csv(values))
    write_part(table, [claim_row("e9-count", "E9", "E9 measures three values", "this run", "3", str(n), "values",
                                 Judgement(judge(n == 3), "exact, single run"))], profile)
'''

E9_QMD = '''\
# E9: a fake experiment {#sec-e9}

E9 measured {{< var e9.n_values >}} values; the largest is {{< var e9.largest >}} (@tbl-e9-values).

{{< include /_generated/e9_values.md >}}

: E9's values. {{< var made_by.e9_measure >}} {#tbl-e9-values}

It has {{< var e9.n_values >}} values (@fig-e9-bars).

![E9's values as bars. {{< var made_by.e9_bars >}}](figures/e9/bars.png){#fig-e9-bars}
'''


def add_e9(repo: Path) -> list[Path]:
    """Add E9 to the checkout ``repo`` as a contributor would; the files written or edited."""
    files = {
        "workflow/rules/e9.smk": E9_SMK,
        "src/klvae/experiments/e9.py": E9_EXPERIMENT,
        "src/klvae/figures/e9.py": E9_FIGURE,
        "src/klvae/report/e9.py": E9_REPORT,
        "report/_e9.qmd": E9_QMD,
    }
    for rel, text in files.items():
        assert not (repo / rel).exists(), rel
        (repo / rel).write_text(text)
    common = repo / "workflow/rules/common.smk"
    text = common.read_text()
    registry = re.search(r"^EXPERIMENTS = \[\n(.*?)^\]", text, re.M | re.S)
    assert registry, "EXPERIMENTS not found in workflow/rules/common.smk"
    common.write_text(text[:registry.end(1)] + '    "e9",  # a fake experiment\n' + text[registry.end(1):])
    return [repo / rel for rel in files] + [common]


@pytest.fixture(scope="module")
def with_e9(quick_run, tmp_path_factory) -> tuple[Path, Path, str]:
    """A checkout with E9 added, and a copy of the quick run rendered again with it."""
    root = tmp_path_factory.mktemp("registry")
    repo = copy_checkout(root / "repo")
    touched = add_e9(repo)
    assert len(touched) == 6
    work = root / "work"
    shutil.copytree(quick_run, work, symlinks=True)
    proc = run_snakemake(work, *QUICK_TARGETS,
                         snakefile=repo / "workflow" / "Snakefile", configfile=repo / "config" / "quick.yaml",
                         env={"PYTHONPATH": str(repo / "src")})
    return repo, work, proc.stdout + proc.stderr


@pytest.mark.pipeline
def test_a_new_experiment_is_in_the_dag_and_nothing_else_reruns(with_e9):
    _, _, log = with_e9
    ran = set(re.findall(r"^(?:local)?rule (\w+):", log, re.M))
    assert {"e9_measure", "e9_bars", "report_e9", "report_scorecard_e9", "report_scorecard", "report_render"} <= ran
    trained = {r for r in ran if r.startswith(("e1_", "e2_", "e3_", "mnist_"))}
    assert not trained, f"E1-E3 jobs ran again: {sorted(trained)}"


@pytest.mark.pipeline
def test_a_new_experiment_is_in_the_report_and_the_scorecard(with_e9):
    _, work, _ = with_e9
    results = work / QUICK
    card = pd.read_csv(results / "tables/scorecard.csv", dtype=str, keep_default_na=False)
    e9 = card[card["experiment"] == "E9"]
    assert list(e9["id"]) == ["e9-count"] and list(e9["verdict"]) == ["reproduced"]
    assert list(card["experiment"].drop_duplicates()) == ["E1", "E2", "E3", "E9"]  # the registry's order
    html = (results / "report/klvae.html").read_text()
    for needle in ('id="sec-e9"', "E9 measured 3 values", 'id="fig-e9-bars"', 'id="tbl-e9-values"',
                   'id="tbl-scorecard-e9"', "Scorecard, E9, a fake experiment", "e9_bars"):
        assert needle in html, needle
    assert html.index('id="sec-e9"') > html.index('id="tbl-e1-losses"')  # after E1-E3's chapters
    methods = (results / "report/generated/experiment_times.md").read_text()
    assert re.search(r"^\|\s*E9\s*\|", methods, re.M), "E9's jobs are not summed in the methods chapter"
