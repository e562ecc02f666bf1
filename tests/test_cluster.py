"""The workflow runs through a cluster executor (cluster-generic with a local submit script).

This is the code path a batch system takes: every job becomes a job script submitted by a
command, and Snakemake waits for it -- here the "cluster" is this machine. The check starts
from a copy of the session's quick run (fixture ``quick_run``) with one E1 training removed,
and the table and panel that need it, so the cluster retrains that one coefficient and makes
them again -- and must give the bitwise same model, table and latents as the local run did.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from conftest import QUICK, REPO, run_snakemake
from klvae.io import weights_digest

pytestmark = pytest.mark.pipeline

RETRAINED = str(QUICK / "e1/r0/c1")  # the coefficient the cluster run trains again


def test_e1_training_through_the_cluster_generic_executor_is_bitwise_the_local_one(quick_run, tmp_path):
    work = tmp_path / "cluster"
    shutil.copytree(quick_run, work, symlinks=True)
    targets = [str(QUICK / "tables/e1_losses.csv"), str(QUICK / "figures/e1/scatter_panel.png")]
    for name in ("model.keras", "history.csv", "metrics.json", "latent.npz", "grid.npz"):
        (work / RETRAINED / name).unlink()
    for target in targets:  # (Snakemake does not remake files that only an up-to-date target needed)
        (work / target).unlink()
    # the submit command is given relative to the working directory, as in the profile
    (work / "workflow" / "scripts").mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "workflow" / "scripts" / "local_submit.sh", work / "workflow" / "scripts")
    proc = run_snakemake(work, *targets, "--workflow-profile", str(REPO / "workflow/profiles/cluster-generic-local"))
    log = proc.stdout + proc.stderr
    assert "cluster-generic" in log or "submitted" in log.lower(), log[-3000:]
    # e1_train and e1_analyse of c = 1, the table and the scatter panel: one job script each
    scripts = list((work / ".snakemake" / "cluster-logs").glob("*.log"))
    assert len(scripts) >= 4, f"expected one submitted job script per job, found {len(scripts)}:\n{log[-3000:]}"
    assert "rule e1_train:" in log and "rule e1_init_weights:" not in log  # only the removed training ran
    assert weights_digest(work / RETRAINED / "model.keras") == weights_digest(quick_run / RETRAINED / "model.keras")
    for rel in (f"{RETRAINED}/history.csv", targets[0]):
        assert (work / rel).read_bytes() == (quick_run / rel).read_bytes(), rel
    with np.load(work / RETRAINED / "latent.npz") as a, np.load(quick_run / RETRAINED / "latent.npz") as b:
        assert sorted(a.files) == sorted(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)
    assert (work / targets[1]).read_bytes()[:4] == b"\x89PNG"
