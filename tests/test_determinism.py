"""Bitwise-repeatable on CPU, also across a kill: a second quick-profile run from a clean folder,
SIGKILLed (Snakemake and its jobs) in the middle of an E1 training and started again as a user
would (``--unlock``, then the same command; training resumes from its last epoch checkpoint,
:mod:`klvae.training`), gives the same trained weights (every model), the same CSVs and the same
arrays as the session's first, uninterrupted run.

Only files that record wall-clock measurements may differ, and each is named below with the
reason; any new CSV is compared by default. The second run leaves out the benchmark rules (they
only measure times) and so the report that quotes them: every other result is made again.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import QUICK, QUICK_TARGETS, BackgroundRun, run_snakemake, seed_raw_data, snakemake_command
from klvae.io import weights_digest

#: Outputs that hold times measured on this machine (they differ between any two runs), relative to
#: the profile's results folder.
MEASURED_TIMES = {
    "tables/e2_timing.csv": "E2 timing benchmark (ms/step windows, RSS)",
    "tables/e2_timing_windows.csv": "E2 timing benchmark, per window",
    "tables/e3_bench_memory.csv": "E3 memory benchmark (peak RSS, load average)",
    "tables/e3_bench_pipeline.csv": "E3 input-pipeline benchmark (images/s)",
    "tables/e3_bench_preprocessing.csv": "E3 preprocessing benchmark (images/s)",
    "tables/scorecard.csv": "quotes the measured times of the benchmarks beside the posts' claims",
    "report/generated/scorecard_e2.csv": "E2's scorecard part: quotes the E2 timing benchmark",
    "report/generated/scorecard_e3.csv": "E3's scorecard part: quotes the E3 benchmarks",
    "report/generated/compare.csv": "this run beside a shipped run: made from the scorecard, which quotes the times",
    "e3/vae/epoch_times.csv": "wall time per training epoch",
    "e3/ae/epoch_times.csv": "wall time per training epoch",
}
#: CSVs that mix results with measured times: the time columns are left out of the comparison.
TIME_COLUMNS = {"tables/e2_metrics.csv": ["s_per_epoch_median", "ms_per_step_median"]}


#: The rules the second run leaves out (with what depends on them: the report's fragments and
#: rendering): they only measure times, so they have nothing to repeat bitwise.
BENCHMARK_RULES = ["e2_timing", "e3_bench_memory", "e3_bench_pipeline", "e3_bench_preprocessing"]


#: The checkpoint an E1 training job writes after each epoch (klvae.training.EpochCheckpoint);
#: the quick profile trains E1 for 2 epochs, so after the first one a job is half done.
E1_CHECKPOINTS = f"{QUICK.as_posix()}/e1/r0/*/model.keras.ckpt/state.json"


#: An E1 training job's outputs (rule e1_train), written only once training has finished.
FINISHED_E1_OUTPUTS = ("model.keras", "history.csv", "metrics.json")


def _interrupted(workdir: Path) -> list[Path]:
    """E1 run folders with an epoch checkpoint and no finished model: trainings a kill cut short."""
    return sorted(s.parents[1] for s in workdir.glob(E1_CHECKPOINTS) if not (s.parents[1] / "model.keras").exists())


def _kill_inside_an_e1_training(workdir: Path, tries: int = 3) -> list[Path]:
    """Start the second run and SIGKILL Snakemake with all its jobs as soon as an E1 training has
    written its first epoch's checkpoint but not its model (whatever else runs then is killed
    too). Returns the interrupted training folders. A kill that lands just after the job
    finished cuts nothing short: then the run is unlocked and started again (the next
    coefficient trains), at most ``tries`` times."""
    cmd, env = snakemake_command(workdir, *QUICK_TARGETS, "--omit-from", *BENCHMARK_RULES)
    for attempt in range(tries):
        run = BackgroundRun(cmd, env, workdir / f"killed-{attempt}.log", timeout=1800)
        try:
            while not _interrupted(workdir):
                if not run.running():
                    raise AssertionError(f"the run ended ({run.proc.returncode}) before an E1 checkpoint was "
                                         f"seen: {run.log.read_text()[-3000:]}")
                assert time.time() - run.started < run.timeout, "no E1 checkpoint within 30 minutes"
                time.sleep(0.02)
        finally:
            run.kill()
        cut = _interrupted(workdir)
        if cut:
            return cut
        run_snakemake(workdir, "--unlock")
    raise AssertionError(f"{tries} kills all landed after their E1 training had finished")


@pytest.fixture(scope="module")
def second_run(quick_run, tmp_path_factory) -> Path:
    """The second clean run, killed inside an E1 training and resumed (module docstring).
    ``interrupted.txt`` lists the trainings the kill cut short, ``resumed.log`` the output of the
    run that finished the work."""
    workdir = tmp_path_factory.mktemp("quick_again")
    seed_raw_data(workdir)
    cut = _kill_inside_an_e1_training(workdir)
    # each cut-short training: its folder, the epoch of its checkpoint, and which of the job's
    # outputs existed after the kill (none may: a half-written file must never look finished)
    (workdir / "interrupted.txt").write_text("".join(
        f"{p.relative_to(workdir)} {json.loads((p / 'model.keras.ckpt' / 'state.json').read_text())['epoch']} "
        f"{','.join(n for n in FINISHED_E1_OUTPUTS if (p / n).exists()) or '-'}\n" for p in cut))
    run_snakemake(workdir, "--unlock")  # the killed Snakemake left its lock, as Snakemake's message says
    proc = run_snakemake(workdir, *QUICK_TARGETS, "--omit-from", *BENCHMARK_RULES)
    (workdir / "resumed.log").write_text(proc.stdout + proc.stderr)
    return workdir


@pytest.mark.pipeline
def test_killed_trainings_resumed_from_their_checkpoints(second_run):
    """Each training the kill cut short resumed after its last finished epoch (not from scratch),
    left no half-written model behind, and its checkpoint folder is gone once it finished; that
    its weights equal the uninterrupted run's is checked with every other model below."""
    cut = [line.split() for line in (second_run / "interrupted.txt").read_text().splitlines()]
    assert cut, "the kill cut no training short"
    out = (second_run / "resumed.log").read_text()
    logs = "".join(p.read_text() for p in (second_run / QUICK / "logs").rglob("*.log"))
    for run, epoch, existed in cut:
        assert existed == "-", f"{run}: {existed} existed after the kill, before training had finished"
        assert int(epoch) >= 1
        assert f"resuming after epoch {epoch} from {run}/model.keras.ckpt" in out + logs, (run, out[-3000:])
        assert (second_run / run / "model.keras").is_file()
        assert not (second_run / run / "model.keras.ckpt").exists()


def _files(root: Path, pattern: str) -> list[str]:
    return sorted(str(p.relative_to(root / QUICK)) for p in (root / QUICK).rglob(pattern)
                  if "benchmarks" not in p.parts)


def _made_again(first: list[str], second: list[str]) -> list[str]:
    """The first run's files, less the measured times the second run did not make (and no others)."""
    assert set(second) <= set(first), f"files only in the second run: {sorted(set(second) - set(first))}"
    missing = sorted(set(first) - set(second) - set(MEASURED_TIMES))
    assert not missing, f"the second run did not make these results again: {missing}"
    return second


@pytest.mark.pipeline
def test_trained_weights_are_bitwise_identical(quick_run, second_run):
    models = _made_again(_files(quick_run, "*.keras"), _files(second_run, "*.keras"))
    trained = [m for m in models if m.endswith("model.keras")]
    assert len(trained) >= 8 + 10 + 2, trained  # E1 per c, E2 per strategy and z_dim, E3 VAE and AE
    differ = [m for m in models
              if weights_digest(quick_run / QUICK / m) != weights_digest(second_run / QUICK / m)]
    assert not differ, f"weights differ between two clean quick runs: {differ}"
    inits = _files(quick_run, "*.weights.h5")
    assert inits and all(weights_digest(quick_run / QUICK / w) == weights_digest(second_run / QUICK / w)
                         for w in inits)


@pytest.mark.pipeline
def test_csvs_are_identical(quick_run, second_run):
    first = _files(quick_run, "*.csv")
    assert set(MEASURED_TIMES) <= set(first), set(MEASURED_TIMES) - set(first)
    csvs = _made_again(first, _files(second_run, "*.csv"))
    compared, differ = 0, []
    for rel in csvs:
        if rel in MEASURED_TIMES:
            continue
        a, b = quick_run / QUICK / rel, second_run / QUICK / rel
        if rel in TIME_COLUMNS:
            same = pd.read_csv(a).drop(columns=TIME_COLUMNS[rel]).equals(pd.read_csv(b).drop(columns=TIME_COLUMNS[rel]))
        else:
            same = a.read_bytes() == b.read_bytes()
        compared += 1
        if not same:
            differ.append(rel)
    assert not differ, f"CSVs differ between two clean quick runs: {differ}"
    assert compared >= 8 + 10 + 2 + 6  # histories of every run and the result tables


@pytest.mark.pipeline
def test_arrays_are_identical(quick_run, second_run):
    """Latents, decoder grids, reconstructions and the preprocessed data (np.savez's zip dates aside)."""
    arrays = _made_again(_files(quick_run, "*.npz") + _files(quick_run, "*.npy"),
                         _files(second_run, "*.npz") + _files(second_run, "*.npy"))
    differ = []
    for rel in arrays:
        a, b = np.load(quick_run / QUICK / rel), np.load(second_run / QUICK / rel)
        if rel.endswith(".npy"):
            same = a.dtype == b.dtype and np.array_equal(a, b)
        else:
            same = sorted(a.files) == sorted(b.files) and all(
                a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a.files)
        if not same:
            differ.append(rel)
    assert not differ, f"arrays differ between two clean quick runs: {differ}"
