"""Partial rebuilds follow the code (issue 11): each rule carries ``params.code``, the digest of
the klvae sources its function runs (:mod:`klvae.code_digest`), and Snakemake's params rerun
trigger reruns exactly the jobs whose code changed, and what follows from them.

Unit tests check the import closure and the digest; the pipeline tests edit a copy of the
sources beside a copy of the session's finished quick run and ask Snakemake (dry run) what it
would rerun.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from conftest import QUICK_TARGETS, REPO, copy_checkout, run_snakemake
from klvae import registry
from klvae.code_digest import code_digest, module_closure, rule_params

SRC = REPO / "src"


# --- the closure and the digest --------------------------------------------------------------
def test_closure_follows_imports_transitively_and_includes_packages():
    closure = module_closure(str(SRC), "klvae.figures.e1")
    assert {"klvae", "klvae.figures", "klvae.figures.e1", "klvae.figures.common"} <= set(closure)
    assert not any(m.startswith(("klvae.experiments", "klvae.models", "klvae.strategies")) for m in closure)
    e1 = module_closure(str(SRC), "klvae.experiments.e1")
    assert {"klvae.losses", "klvae.models.vae", "klvae.models.mlp", "klvae.training"} <= set(e1)


def test_registry_users_depend_on_every_strategy_module():
    closure = set(module_closure(str(SRC), "klvae.experiments.e2"))
    for name in ("end_layer", "encoder_layer", "tensor_transfer", "model_add_loss", "gradient_tape", "baseline"):
        assert f"klvae.strategies.{name}" in closure


def test_an_edit_to_an_e3_analysis_reruns_no_face_training(tmp_path):
    """A face training is hours of CPU (the paper profile): its code digest must not cover the
    analyses of trained models, the figures or the report, which change far more often."""
    closure = set(module_closure(str(SRC), "klvae.experiments.e3"))
    assert "klvae.models.faces" in closure
    assert not any(m.startswith(("klvae.experiments.e3_analysis", "klvae.figures", "klvae.report", "klvae.bench"))
                   for m in closure), sorted(closure)
    src = tmp_path / "src"
    shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    train, evaluate = "klvae.experiments.e3:train", "klvae.experiments.e3_analysis:evaluate"
    before = {f: code_digest(f, src) for f in (train, evaluate)}
    target = src / "klvae" / "experiments" / "e3_analysis.py"
    target.write_text(target.read_text() + "\n# an edited analysis\n")
    assert code_digest(train, src) == before[train]
    assert code_digest(evaluate, src) != before[evaluate]


def test_digest_changes_with_content_only(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(SRC, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    func = "klvae.figures.e1:manifold_panel"
    before = code_digest(func, src)
    assert before == code_digest(func, SRC)  # the path of the checkout does not count
    target = src / "klvae" / "figures" / "e1.py"
    target.touch()  # a new mtime, same bytes
    assert code_digest(func, src) == before
    target.write_text(target.read_text() + "\n# edited\n")
    assert code_digest(func, src) != before
    # a module outside the closure does not count
    assert code_digest("klvae.report.scorecard:write_scorecard", src) == code_digest(
        "klvae.report.scorecard:write_scorecard", SRC)


def test_rule_params_cover_the_runner_script_by_content(tmp_path):
    func = "klvae.figures.e1:manifold_panel"
    runner = tmp_path / "call.py"
    runner.write_text("print('call')\n")
    with_runner = rule_params(func, SRC, runner)
    assert with_runner["func"] == func
    assert with_runner["code"] != rule_params(func, SRC)["code"] == code_digest(func, SRC)
    runner.touch()
    assert rule_params(func, SRC, runner) == with_runner
    runner.write_text("print('edited')\n")
    assert rule_params(func, SRC, runner)["code"] != with_runner["code"]
    with pytest.raises(FileNotFoundError):
        rule_params(func, SRC, tmp_path / "missing.py")


def test_the_default_workflow_profile_is_found_and_drops_the_mtime_code_trigger():
    """Snakemake reads profiles/default/ beside the Snakefile (workflow/); its rerun triggers must not
    include `code` (mtime of call.py for script rules) but must include params (the digest)."""
    import yaml
    assert (REPO / "workflow" / "Snakefile").is_file()
    profile = yaml.safe_load((REPO / "workflow" / "profiles" / "default" / "config.yaml").read_text())
    assert "code" not in profile["rerun-triggers"] and "params" in profile["rerun-triggers"]
    for other in (REPO / "workflow" / "profiles").glob("*/config.yaml"):
        assert yaml.safe_load(other.read_text())["rerun-triggers"] == profile["rerun-triggers"], other


def test_digest_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="module:function"):
        code_digest("klvae.figures.e1", SRC)
    with pytest.raises(FileNotFoundError, match="klvae.nowhere"):
        code_digest("klvae.nowhere:f", SRC)


def test_every_rule_declares_its_code():
    """Every rule that calls the library does it through library_call (func + code)."""
    for smk in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        text = "\n".join(line for line in smk.read_text().splitlines() if not line.lstrip().startswith("#"))
        assert "func=" not in text, f"{smk.name}: use **library_call(...) so the rule carries its code digest"
        for func in re.findall(r'library_call\("([^"]+)"\)', text):
            module, name = func.split(":")
            base = SRC / Path(*module.split("."))
            source = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
            assert f"def {name}(" in source.read_text(), func


# --- the pipeline: what a dry run schedules after an edit -----------------------------------


def _scheduled(workdir: Path, repo: Path) -> dict[str, int]:
    """Rule -> job count of a dry run of the quick report with the workflow in ``repo``."""
    proc = run_snakemake(workdir, *QUICK_TARGETS, "--dry-run",
                         snakefile=repo / "workflow" / "Snakefile", configfile=repo / "config" / "quick.yaml")
    out = proc.stdout + proc.stderr
    if "Nothing to be done" in out:
        return {}
    stats = out.split("Job stats:", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\S+)\s+(\d+)$", stats, re.M) if m[1] != "total"}


@pytest.fixture(scope="module")
def copied_run(quick_run, tmp_path_factory) -> tuple[Path, Path]:
    """A copy of the checkout and of the finished quick run (mtimes and Snakemake's records kept)."""
    root = tmp_path_factory.mktemp("rebuild")
    repo = copy_checkout(root / "repo")
    work = root / "work"
    shutil.copytree(quick_run, work, symlinks=True)
    return repo, work


# The report rules name the checkout's files (report/ sources, config/paper.yaml, the schema, the
# study and paper bundles committed under bundles/) as inputs or params, so a checkout elsewhere or
# with new mtimes renders the report again (seconds): the summary follows the methods chapter's
# variables, E1's scorecard part and the scorecard follow the study's spreads (report_study);
# nothing else may rerun (no training, analysis or figure, and the run record neither).
REPORT_RULES_NAMING_THE_CHECKOUT = {"report_methods", "report_summary", "report_study", "report_compare",
                                    "report_scorecard_e1", "report_scorecard", "report_render",
                                    # the shipped paper bundle's data and its verdicts (klvae.report.shipped)
                                    "report_shipped_extract",
                                    *(f"report_shipped_scorecard_{e}" for e in registry.ids())}


@pytest.mark.pipeline
def test_the_same_checkout_reruns_nothing(copied_run):
    _, work = copied_run
    assert _scheduled(work, REPO) == {}


@pytest.mark.pipeline
def test_a_fresh_copy_of_the_code_reruns_only_the_report_rendering(copied_run):
    """Same sources, another path, new mtimes: no training, analysis or figure reruns."""
    repo, work = copied_run
    jobs = _scheduled(work, repo)
    assert set(jobs) <= REPORT_RULES_NAMING_THE_CHECKOUT, jobs


E1_FIGURE_RULES = {"e1_reference_scatter", "e1_scatter", "e1_scatter_panel", "e1_manifold", "e1_manifold_panel",
                   "e1_loss_curves"}


@pytest.mark.pipeline
def test_editing_a_plotting_function_reruns_its_figures_and_the_report(copied_run):
    """The digest is per module: editing E1's figure module (klvae.figures.e1) redraws E1's
    figures and re-renders the report -- no training, no analysis, no other experiment."""
    repo, work = copied_run
    target = repo / "src" / "klvae" / "figures" / "e1.py"
    original = target.read_text()
    target.write_text(original.replace("def manifold_panel(", "def manifold_panel(  # edited\n", 1))
    try:
        jobs = _scheduled(work, repo)
    finally:
        target.write_text(original)
    assert jobs.get("e1_manifold") == 8 and jobs.get("e1_manifold_panel") == 1 and "report_render" in jobs, jobs
    others = {r for r in jobs if not r.startswith("report_")} - E1_FIGURE_RULES
    assert not others, f"scheduled beyond E1's figures and the report: {sorted(others)}"


@pytest.mark.pipeline
def test_editing_the_losses_reruns_the_trainings_that_use_them(copied_run):
    repo, work = copied_run
    target = repo / "src" / "klvae" / "losses.py"
    original = target.read_text()
    target.write_text(original + "\n# edited\n")
    try:
        jobs = _scheduled(work, repo)
    finally:
        target.write_text(original)
    assert jobs.get("e1_train") == 8 and jobs.get("e2_train") == 10 and jobs.get("e3_train") == 2, jobs
    assert "report_render" in jobs
    assert "mnist_canonical" not in jobs and "e3_preprocess" not in jobs  # data code did not change
