"""An experiment is one unit: adding one is six files and one line of the registry.

A contributor's E9 -- a tiny fake experiment with its own settings (and a scorecard tolerance),
one table, one figure, one report fragment, one scorecard claim and one job on the GPU -- is
added to a copy of the checkout exactly as ``docs/architecture.md`` says ("Adding an
experiment"): its registry entry ``src/klvae/registry/e9.py``, ``workflow/rules/e9.smk``,
``src/klvae/experiments/e9.py``, ``src/klvae/figures/e9.py``, ``src/klvae/report/e9.py``,
``report/_e9.qmd`` and the line ``from klvae.registry import e9`` in
``src/klvae/registry/__init__.py``. Nothing else is edited, and every part of the project finds it:

* fast (no training): the config schema (its settings validated, with defaults; a bad value
  refused naming the key), ``config/README.md`` (its keys listed), a results bundle (its files
  counted as E9's), a merge of bundles (its section and tolerance from the bundle that ran it), a
  comparison of bundles (its table compared by its keys; shown in the report's comparison), the
  summary's link to its chapter, the GPU profile (its training rule takes a slot) and the DAG;
* on a copy of the session's quick run (``pipeline``): E9 shows up in the DAG, the rendered
  report and the scorecard, and nothing of E1-E3 is retrained.

And the other way round (:func:`test_no_experiment_is_named_outside_its_own_files`): no experiment
is named in code outside the registry and that experiment's own files.
"""

from __future__ import annotations

import ast
import io
import json
import re
import shutil
import subprocess
import sys
import tokenize
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import QUICK, QUICK_TARGETS, REPO, copy_checkout, run_snakemake
from klvae import registry

E9_REGISTRY = '''\
"""E9 (a test's fake experiment): a few seeded integers."""

from klvae.registry.spec import Experiment, GpuJob, TableSpec, schema

EXPERIMENT = Experiment(
    id="e9",
    title="E9, a fake experiment",
    settings=schema("""
        type: object
        additionalProperties: false
        default: {}
        properties:
          n_items: {type: integer, minimum: 1, maximum: 26, default: 3, description: "Values E9 measures."}
    """),
    tolerances=schema("""
        e9_count_abs:
          type: number
          minimum: 0
          default: 0.5
          description: Absolute tolerance on the number of values E9 measures.
    """),
    tables={"e9_values": TableSpec(keys=("item",), values=("value",), shown=("value",))},
    units={"values": True},
    gpu={"e9_measure": GpuJob(threads=1)},
)
'''

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
        kwargs={"seed": config["seed"], "n_items": config["e9"]["n_items"]},
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
        kwargs={"profile": config["profile"], "tolerance": config["scorecard"]["e9_count_abs"]},
    script:
        CALL


register_experiment(
    "e9",
    figures=rules.e9_bars.output,
    tables=[rules.e9_measure.output.table],
    report_rule=rules.report_e9,
    scorecard_rule=rules.report_scorecard_e9,
)
'''

E9_EXPERIMENT = '''\
"""E9 (a test's fake experiment): a few seeded integers."""

import string

import numpy as np
import pandas as pd


def measure(table: str, seed: int, n_items: int) -> None:
    """Rule ``e9_measure``: ``n_items`` integers in 1..9 from ``seed`` -> ``table`` (CSV: item, value)."""
    values = np.random.default_rng(seed).integers(1, 10, size=n_items)
    pd.DataFrame({"item": list(string.ascii_lowercase[:n_items]), "value": values}).to_csv(table, index=False)
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


def write_e9_scorecard(table: str, values: str, profile: str, tolerance: float) -> None:
    """Rule ``report_scorecard_e9``: one claim, "E9 measures three values" (within ``tolerance``)."""
    n = len(pd.read_csv(values))
    write_part(table, [claim_row("e9-count", "E9", "E9 measures three values", "this run", "3", str(n), "values",
                                 Judgement(judge(abs(n - 3) <= tolerance), f"± {tolerance:g}, single run"))],
               profile)
'''

E9_QMD = '''\
# E9: a fake experiment {#sec-e9}

E9 measured {{< var e9.n_values >}} values; the largest is {{< var e9.largest >}} (@tbl-e9-values).

{{< include /_generated/e9_values.md >}}

: E9's values. {{< var made_by.e9_measure >}} {#tbl-e9-values}

It has {{< var e9.n_values >}} values (@fig-e9-bars).

![E9's values as bars. {{< var made_by.e9_bars >}}](figures/e9/bars.png){#fig-e9-bars}
'''


#: The line of the registry that adds E9 (after E3's, in src/klvae/registry/__init__.py).
E9_LINE = "from klvae.registry import e9  # noqa: F401 -- a fake experiment\n"


def add_e9(repo: Path) -> list[Path]:
    """Add E9 to the checkout ``repo`` as a contributor would; the files written or edited."""
    files = {
        "src/klvae/registry/e9.py": E9_REGISTRY,
        "workflow/rules/e9.smk": E9_SMK,
        "src/klvae/experiments/e9.py": E9_EXPERIMENT,
        "src/klvae/figures/e9.py": E9_FIGURE,
        "src/klvae/report/e9.py": E9_REPORT,
        "report/_e9.qmd": E9_QMD,
    }
    for rel, text in files.items():
        assert not (repo / rel).exists(), rel
        (repo / rel).write_text(text)
    init = repo / "src/klvae/registry/__init__.py"
    text = init.read_text()
    last = list(re.finditer(r"^from klvae\.registry import e\d+\b.*\n", text, re.M))
    assert last, "no experiment's line in src/klvae/registry/__init__.py"
    init.write_text(text[:last[-1].end()] + E9_LINE + text[last[-1].end():])
    return [repo / rel for rel in files] + [init]


@pytest.fixture(scope="module")
def with_e9(quick_run, tmp_path_factory) -> tuple[Path, Path, str]:
    """A checkout with E9 added, and a copy of the quick run rendered again with it."""
    root = tmp_path_factory.mktemp("registry")
    repo = copy_checkout(root / "repo")
    touched = add_e9(repo)
    assert len(touched) == 7
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


# ----------------------------------------------------------------------------------------------
# E9 in every part of the project that reads the registry, without training (fast)

#: Run with the E9 checkout's code (``PYTHONPATH``), in its root; argv[1]: a scratch folder. Prints
#: what each part makes of E9, as JSON on its last line.
E9_CHECKS = r'''
import copy, json, sys
from pathlib import Path

import yaml

from klvae import config_docs, registry
from klvae.bundle import compare as bc
from klvae.bundle import core as kb
from klvae.config import ConfigError, check_config
from klvae.registry.profile import GPU_PROFILE, render, write
from klvae.report import compare as rc
from klvae.report.methods import deviations_fragment
from klvae.report.summary import summary_markdown

scratch = Path(sys.argv[1])
seen = {"ids": registry.ids()}
quick = yaml.safe_load(Path("config/quick.yaml").read_text())


def refused(change):
    cfg = copy.deepcopy(quick)
    change(cfg)
    try:
        check_config(cfg, registry.config_schema(), source="config/bad.yaml", example="config/default.yaml")
    except ConfigError as err:
        return str(err)
    return None


# the config schema: E9's section and tolerance, with their defaults; bad values refused by name
cfg = check_config(copy.deepcopy(quick), registry.config_schema(), source="config/quick.yaml")
seen["defaults"] = {"e9": cfg["e9"], "e9_count_abs": cfg["scorecard"]["e9_count_abs"]}
seen["refused"] = refused(lambda c: c.update(e9={"n_items": 0}))
seen["unknown"] = refused(lambda c: c.update(e9={"n_item": 3}))
seen["bad_tolerance"] = refused(lambda c: c.setdefault("scorecard", {}).update(e9_count_abs=-1))
seen["unknown_section"] = refused(lambda c: c.update(e4={}))
# config/README.md: written from the composed schema; the committed page is stale until rewritten
page = config_docs.render(config_docs.schema(), config_docs.profiles())
seen["page_rows"] = [line.split(" | ")[0] for line in page.splitlines()
                     if line.startswith("| ") and "e9" in line.split(" | ")[0]]
seen["page_sections"] = [line for line in page.splitlines() if line.startswith("## ")]
seen["page_current"] = config_docs.main(["--check"]) == 0
# the methods chapter's settings table
seen["settings_rows"] = [r for r in deviations_fragment(cfg, "config/paper.yaml", str(registry.BASE_SCHEMA))
                         .splitlines() if "E9" in r]
# a bundle: which experiment a member belongs to
members = ["tables/e9_values.csv", "e9/raw.json", "figures/e9/bars.png", "benchmarks/e9_measure.tsv",
           "benchmarks/e9_measure/r0.tsv", "report/generated/e9.vars.yml", "report/generated/e9_values.md"]
seen["owners"] = {m: kb.experiment_of(m) for m in members}


def fake_bundle(tag, files, config):
    root = scratch / tag / "results" / "quick"
    run = {"recorded_utc": "2025-01-02T03:04:05Z", "host": f"host-{tag}", "profile": "quick",
           "keras_backend": "tensorflow", "git_commit": "0123456789ab", "hardware": {"CPU": "test"}}
    files = {kb.RUN_RECORD: json.dumps(run), kb.RUN_CONFIG: yaml.safe_dump(config),
             "data/mnist_provenance.json": '{"source": "pypi"}', **files}
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return kb.create_bundle(root, out_dir=scratch / "bundles" / tag, created_utc="2025-01-02T04:00:00Z")["path"]


E1_FILES = {"tables/e1_losses.csv": "c,loss,kl_loss,replicates\n0.5,150.0,15.0,1\n",
            "e1/r0/c0.5/metrics.json": '{"loss": 150.0}'}
E9_FILES = {"tables/e9_values.csv": "item,value\na,4\nb,7\nc,1\n", "e9/raw.json": "{}",
            "figures/e9/bars.png": "png", "benchmarks/e9_measure.tsv": "s\n0.5\n"}
e9_config = copy.deepcopy(cfg)
e9_config["e9"]["n_items"] = 5
e9_config["scorecard"]["e9_count_abs"] = 0.25
a = fake_bundle("a", E1_FILES, cfg)
b = fake_bundle("b", E9_FILES, e9_config)
seen["bundle_experiments"] = kb.read_bundle(b)[0]["experiments"]
# a merge: E9's files, section and tolerance come from the run that made E9
merged = bc.merge_bundles(scratch / "merged.tar.gz", [a, b])
merged_config = yaml.safe_load(kb.read_bundle(merged["path"])[1][kb.RUN_CONFIG])
seen["merged"] = {"experiments": merged["experiments"], "e9": merged_config["e9"],
                  "e9_count_abs": merged_config["scorecard"]["e9_count_abs"],
                  "e1_from": [p["run_host"] for p in merged["manifest"]["provenance"]],
                  "files": sorted(m["path"] for m in merged["manifest"]["members"] if "e9" in m["path"])}
# a comparison: E9's table, compared by its keys and columns; shown in the report's comparison
b2 = fake_bundle("b2", {**E9_FILES, "tables/e9_values.csv": "item,value\na,4\nb,8\nc,1\n"}, e9_config)
rows = [r for r in bc.diff_rows(b, b2) if r["table"] == "e9_values"]
seen["diff"] = [[r["row"], r["metric"], r["status"], r["diff"]] for r in rows]
seen["shown"] = sorted({r["table"] for r in rc.shown_rows(bc.diff_rows(b, b2))})
# the summary: E9's verdicts and findings link to its chapter
claim = {"id": "e9-count", "experiment": "E9", "claim": "E9 measures three values", "compared": "this run",
         "post_value": "3", "ours": "3", "unit": "values", "verdict": "reproduced"}
summary = summary_markdown([claim])
seen["summary"] = [line for line in (summary["verdicts"] + summary["headlines"]).splitlines() if "E9" in line]
# the GPU profile: E9's training rule takes a slot; the committed profile is stale until rewritten
profile = yaml.safe_load(render(GPU_PROFILE.read_text(), registry.EXPERIMENTS))
seen["gpu"] = {"resources": profile["set-resources"].get("e9_measure"),
               "threads": profile["set-threads"].get("e9_measure"), "current": write(check=True)}
print(json.dumps(seen))
'''


@pytest.fixture(scope="module")
def e9_checkout(tmp_path_factory) -> Path:
    """A copy of the checkout's code, profiles, workflow and report sources, with E9 added."""
    repo = tmp_path_factory.mktemp("registry_fast") / "repo"
    for folder in ("src", "config", "workflow", "report"):
        shutil.copytree(REPO / folder, repo / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    touched = add_e9(repo)
    assert [p.relative_to(repo).as_posix() for p in touched][-1] == "src/klvae/registry/__init__.py"
    return repo


def _env(repo: Path) -> dict[str, str]:
    return {"PYTHONPATH": str(repo / "src"), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "HOME": str(Path.home())}


@pytest.fixture(scope="module")
def e9_seen(e9_checkout, tmp_path_factory) -> dict:
    """What each part of the project makes of E9 (:data:`E9_CHECKS`, run on the E9 checkout's code)."""
    proc = subprocess.run([sys.executable, "-c", E9_CHECKS, str(tmp_path_factory.mktemp("registry_checks"))],
                          cwd=e9_checkout, env=_env(e9_checkout), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-6000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_the_registry_lists_e9_after_e3(e9_seen):
    assert e9_seen["ids"] == ["e1", "e2", "e3", "e9"]
    assert registry.ids() == ["e1", "e2", "e3"]  # this checkout is untouched


def test_e9s_settings_reach_the_config_schema(e9_seen):
    assert e9_seen["defaults"] == {"e9": {"n_items": 3}, "e9_count_abs": 0.5}  # no profile names E9
    refused = e9_seen["refused"]
    assert refused.startswith("Invalid configuration in config/bad.yaml (1 problem)"), refused
    assert ("  - e9.n_items = 0: must be an integer >= 1 and <= 26 -- Values E9 measures. Fix: edit e9.n_items in "
            "config/bad.yaml, e.g. 3 (the default).") in refused
    assert "e9.n_item: unknown key (did you mean e9.n_items?); e9 accepts only: n_items." in e9_seen["unknown"]
    assert ("e4: unknown key; the top level accepts only: profile, seed, threads, data, e1, e2, e3, e9, backend_study, "
            "scorecard, report.") in e9_seen["unknown_section"]
    assert "scorecard.e9_count_abs = -1: must be a number >= 0" in e9_seen["bad_tolerance"]


def test_e9s_keys_are_in_the_config_reference(e9_seen):
    assert e9_seen["page_rows"] == ["| `e9.n_items`", "| `scorecard.e9_count_abs`"]
    sections = e9_seen["page_sections"]
    assert sections.index("## `e9`") == sections.index("## `e3`") + 1  # the registry's order
    assert not e9_seen["page_current"]  # config/README.md is rewritten (python -m klvae.config_docs), not edited
    assert e9_seen["settings_rows"] == ["| E9 `n_items` | 3 | 3 | same |"]  # the methods chapter's settings table


def test_e9s_files_are_e9s_in_a_bundle_and_a_merge(e9_seen):
    assert set(e9_seen["owners"].values()) == {"e9"}, e9_seen["owners"]
    assert e9_seen["bundle_experiments"] == ["e9"]
    merged = e9_seen["merged"]
    assert merged["experiments"] == ["e1", "e9"]
    # E9's section and tolerance from the run that made E9 (they differ from E1's run: no "profile mismatch")
    assert merged["e9"] == {"n_items": 5} and merged["e9_count_abs"] == 0.25
    assert merged["e1_from"] == ["host-a", "host-b"]
    assert merged["files"] == ["benchmarks/e9_measure.tsv", "e9/raw.json", "figures/e9/bars.png",
                               "tables/e9_values.csv"]


def test_a_comparison_compares_e9s_table_by_its_keys(e9_seen):
    assert e9_seen["diff"] == [["item=a", "value", "n = 1", 0.0], ["item=b", "value", "n = 1", 1.0],
                               ["item=c", "value", "n = 1", 0.0]]
    assert e9_seen["shown"] == ["e9_values"]  # in the report's comparison with a shipped run


def test_the_summary_links_to_e9s_chapter(e9_seen):
    verdicts, headline = e9_seen["summary"]
    assert verdicts.startswith("| [E9](#sec-e9) | 1 | 1 |"), verdicts
    assert "E9 measures three values ([E9](#sec-e9))" in headline


def test_e9s_training_rule_takes_a_gpu_slot(e9_seen):
    assert e9_seen["gpu"] == {"resources": {"gpu": 1}, "threads": 1, "current": False}


def test_e9_is_in_the_dag_and_its_bad_settings_stop_it(e9_checkout, tmp_path):
    snakefile, work = e9_checkout / "workflow" / "Snakefile", tmp_path / "work"
    work.mkdir()
    cmd = [sys.executable, "-m", "snakemake", "-n", "--snakefile", str(snakefile), "--directory", str(work),
           "--cores", "1"]
    proc = subprocess.run([*cmd, "--configfile", str(e9_checkout / "config" / "quick.yaml")],
                          env=_env(e9_checkout), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    jobs = set(re.findall(r"^(?:local)?rule (\w+):", proc.stdout, re.M))
    assert {"e9_measure", "e9_bars", "report_e9", "report_scorecard_e9", "report_render"} <= jobs
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**yaml.safe_load((e9_checkout / "config" / "quick.yaml").read_text()),
                                   "e9": {"n_items": 30}}))
    proc = subprocess.run([*cmd, "--configfile", str(bad)], env=_env(e9_checkout), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode != 0
    assert f"e9.n_items = 30: must be an integer >= 1 and <= 26 -- Values E9 measures. Fix: edit e9.n_items in {bad}" \
        in proc.stdout + proc.stderr


# ----------------------------------------------------------------------------------------------
# The registry itself


def test_the_config_schema_is_the_base_schema_plus_each_experiments_settings():
    from klvae.registry.spec import Experiment

    schema = registry.config_schema()
    assert list(schema["properties"]) == ["profile", "seed", "threads", "data", "e1", "e2", "e3", "backend_study",
                                          "scorecard", "report"]
    assert schema["required"] == ["profile", "seed", "data", "e1", "e2", "e3"]  # no default: a profile sets them
    assert list(schema["properties"]["data"]["properties"]) == ["mnist", "celeba"]  # E3's data.celeba
    assert list(schema["properties"]["scorecard"]["properties"]) == [
        "loss_rel", "kl_abs", "kl_rel", "latent_abs", "latent_quantile", "ratio_abs", "memory_rel",
        "ae_latent_majority"]  # the shared tolerance, then E1's, E2's and E3's
    base = yaml.safe_load(registry.BASE_SCHEMA.read_text())
    assert not set(registry.ids()) & set(base["properties"])
    assert "celeba" not in base["properties"]["data"]["properties"]
    taken = Experiment(id="e4", title="E4", settings={"type": "object", "default": {}},
                       tolerances={"loss_rel": {"type": "number"}})
    with pytest.raises(ValueError, match=r"experiment e4 .* declares scorecard\.loss_rel, which the schema has"):
        registry.config_schema(experiments=[*registry.EXPERIMENTS, taken])
    with pytest.raises(ValueError, match="table names start with e4_: e1_x"):
        Experiment(id="e4", title="E4", settings={"type": "object"}, tables={"e1_x": registry.TableSpec(keys=())})


def test_the_gpu_profile_is_current_with_the_registry():
    from klvae.registry.profile import GPU_PROFILE, write

    assert write(check=True), "run python -m klvae.registry --gpu-profile"
    profile = yaml.safe_load(GPU_PROFILE.read_text())
    assert {r: v["gpu"] for r, v in profile["set-resources"].items()} == {
        "e1_train": 1, "e2_train": 1, "e3_train": 1, "e2_timing": 6, "e3_bench_pipeline": 6, "e3_bench_memory": 6}
    assert profile["set-threads"] == {"e1_train": 2, "e2_train": 2, "e3_train": 3}


# ----------------------------------------------------------------------------------------------
# No experiment is named outside the registry and its own files (a lint: part of the fast tests)
#
# What counts as naming experiment eN: the id as a token (``e1``, ``E1``, ``e1_losses``, ``sec-e1``,
# ``figures/e1/``; not ``e10`` or ``1e1``) in *code*:
#
# * an identifier -- a variable, function, class, argument, keyword, attribute or imported name
#   (``E1_COEFS``, ``e2_runs``, ``rules.e1_table``);
# * a string literal without whitespace -- a key, path, rule, table, anchor or module name
#   (``"e1"``, ``"e1_losses"``, ``"sec-e1"``, ``f"{RESULTS}/tables/e1_losses.csv"``,
#   ``"klvae.experiments.e1:train"``); a literal with whitespace is prose (a message, a help text).
#
# Docstrings and comments are prose and do not count. Scanned: src/klvae/**/*.py,
# workflow/scripts/*.py, workflow/Snakefile and workflow/rules/*.smk. Not scanned: the profiles
# (config/*.yaml set each experiment's values), generated files (config/README.md, the GPU
# profile), the report's prose (report/*.qmd) and docs, and the tests.
#
# Where a name may stand: the registry's list (src/klvae/registry/__init__.py) names every
# experiment; an experiment's own files name it (Experiment.own_files: its registry entry, its
# modules experiments/figures/report/bench/<id>.py, workflow/rules/<id>.smk, and the files its
# entry claims in `modules`, such as E1's backend study and E2's strategies); and the modules
# below, which are part of the training code every running training's digest covers
# (klvae.code_digest), so that editing them would retrain everything.

#: Modules that may name experiments, with the reason.
FROZEN = {
    "src/klvae/reference.py": "the posts' numbers, named by the experiment they are compared in; training code",
    "src/klvae/record.py": "experiment_times()' default experiments (callers pass the registry's); training code",
}
_TOKEN = r"(?<![A-Za-z0-9])[eE]({})(?![A-Za-z0-9])"


def _docstring_nodes(tree: ast.AST) -> set[int]:
    """The string constants that are docstrings or other bare string statements (prose)."""
    return {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)}


def _named_py(text: str) -> list[tuple[int, str]]:
    """``(line, name)`` of every identifier and whitespace-free string literal of Python source ``text``."""
    tree = ast.parse(text)
    prose = _docstring_nodes(tree)
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose \
                and not re.search(r"\s", node.value):
            names = [node.value]
        elif isinstance(node, ast.Name):
            names = [node.id]
        elif isinstance(node, ast.Attribute):
            names = [node.attr]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, ast.arg):
            names = [node.arg]
        elif isinstance(node, ast.keyword) and node.arg:
            names = [node.arg]
        elif isinstance(node, ast.alias):
            names = [node.name, node.asname or ""]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        found += [(getattr(node, "lineno", 0), n) for n in names if n]
    return found


def _named_smk(text: str) -> list[tuple[int, str]]:
    """As :func:`_named_py` for a Snakefile (read as Python tokens: names and one-line strings;
    triple-quoted strings are docstrings; in an f-string the ``{...}`` parts are code, not prose)."""
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.NAME:
            found.append((tok.start[0], tok.string))
        elif tok.type == tokenize.STRING:
            body = tok.string.lstrip("rRbBfFuU")
            if body.startswith(('"""', "'''")):
                continue
            if not re.search(r"\s", re.sub(r"\{[^{}]*\}", "", body)):
                found.append((tok.start[0], tok.string))
    return found


def misplaced_names(root: Path, experiments: list[str], own: dict[str, list[str]], anywhere=()) -> list[str]:
    """``"<file>:<line> names <id> (<name>)"`` for every experiment named where it does not belong.

    Args:
        root: a checkout.
        experiments: the experiments' ids.
        own: id -> the files (repository-relative; a folder ends in ``/``) where it may be named.
        anywhere: files where every experiment may be named.
    """
    token = re.compile(_TOKEN.format("|".join(re.escape(e[1:]) for e in experiments)))
    files = [*sorted((root / "src" / "klvae").rglob("*.py")), *sorted((root / "workflow" / "scripts").glob("*.py")),
             root / "workflow" / "Snakefile", *sorted((root / "workflow" / "rules").glob("*.smk"))]
    out = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        if rel in anywhere:
            continue
        allowed = {e for e, paths in own.items() if any(rel == p or (p.endswith("/") and rel.startswith(p))
                                                        for p in paths)}
        scan = _named_py if path.suffix == ".py" else _named_smk
        for line, name in scan(path.read_text()):
            for m in token.finditer(name):
                exp = f"e{m.group(1)}"
                if exp not in allowed:
                    out.append(f"{rel}:{line} names {exp} ({name})")
    return sorted(dict.fromkeys(out))


def test_no_experiment_is_named_outside_its_own_files():
    own = {e.id: list(e.own_files()) for e in registry.EXPERIMENTS}
    found = misplaced_names(REPO, registry.ids(), own, anywhere={"src/klvae/registry/__init__.py", *FROZEN})
    assert not found, ("an experiment is named outside the registry and its own files; read it from the registry "
                       "(klvae.registry) instead:\n" + "\n".join(found))


def test_the_name_lint_sees_code_and_skips_prose(tmp_path):
    files = {
        "src/klvae/registry/__init__.py": "from klvae.registry import e1\n",
        "src/klvae/registry/e1.py": 'TABLES = ("e1_losses",)\n',
        "src/klvae/report/e1.py": 'ANCHOR = "sec-e1"\n',
        "src/klvae/report/summary.py": '"""E1\'s chapter is sec-e1."""\n\nSECTIONS = {"E1": "sec-e1"}  # E1\n'
                                       'MSG = "set e1.epochs to 3"\nOK = ("e10", "1e1", "be1")\n',
        "src/klvae/paper.py": "def e2_runs(config):\n    e2 = config['e' + '2']\n    return e2\n",
        "src/klvae/bundle/core.py": 'def f(x):\n    return f"tables/{x}" + f"/figures/e1/{x}.png"\n',
        "workflow/Snakefile": '# e1\nrule all:\n    """E1 and E2."""\n    input:\n        E1_COEFS,\n',
        "workflow/rules/e1.smk": 'E1 = config["e1"]\n',
        "workflow/rules/report.smk": 'X = f"{RESULTS}/tables/e2_metrics.csv"\nY = "the e2 metrics"\n'
                                     'Z = rules.e1_table.output\n',
    }
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    (tmp_path / "workflow" / "scripts").mkdir()
    own = {"e1": ["src/klvae/registry/e1.py", "src/klvae/report/e1.py", "workflow/rules/e1.smk"], "e2": []}
    assert misplaced_names(tmp_path, ["e1", "e2"], own, anywhere={"src/klvae/registry/__init__.py"}) == [
        "src/klvae/bundle/core.py:2 names e1 (/figures/e1/)",
        "src/klvae/paper.py:1 names e2 (e2_runs)",
        "src/klvae/paper.py:2 names e2 (e2)",
        "src/klvae/paper.py:3 names e2 (e2)",
        "src/klvae/report/summary.py:3 names e1 (E1)",
        "src/klvae/report/summary.py:3 names e1 (sec-e1)",
        "workflow/Snakefile:5 names e1 (E1_COEFS)",
        "workflow/rules/report.smk:1 names e2 (f\"{RESULTS}/tables/e2_metrics.csv\")",
        "workflow/rules/report.smk:3 names e1 (e1_table)",
    ]
