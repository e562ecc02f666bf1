"""The workflow runs through a cluster executor (cluster-generic with a local submit script).

This is the code path a batch system takes: every job becomes a job script submitted by a
command, and Snakemake waits for it -- here the "cluster" is this machine.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from conftest import REPO, run_snakemake, seed_raw_data

pytestmark = pytest.mark.pipeline


def test_e1_branch_runs_through_the_cluster_generic_executor(tmp_path):
    work = tmp_path / "cluster"
    work.mkdir()
    seed_raw_data(work)
    # the submit command is given relative to the working directory, as in the profile
    (work / "workflow" / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "workflow" / "scripts" / "local_submit.sh", work / "workflow" / "scripts")
    targets = ["results/tables/e1_losses.csv", "results/figures/e1/scatter_panel.png"]
    proc = run_snakemake(work, *targets, "--workflow-profile", str(REPO / "workflow/profiles/cluster-generic-local"))
    log = proc.stdout + proc.stderr
    assert "cluster-generic" in log or "submitted" in log.lower(), log[-3000:]
    logs = list((work / ".snakemake" / "cluster-logs").glob("*.log"))
    assert len(logs) >= 8 + 1 + 1, f"expected one submitted job script per job, found {len(logs)}"
    table = pd.read_csv(work / targets[0])
    assert len(table) == 8 and table["loss"].notna().all()
    assert (work / targets[1]).read_bytes()[:4] == b"\x89PNG"
