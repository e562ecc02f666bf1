"""Resume after a kill: a real E1 training rule is SIGKILLed mid-epoch, started again, and must
end with weights bitwise identical to an uninterrupted run -- and no half-written model may
ever look finished (klvae.training)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run_snakemake, seed_raw_data
from klvae.io import weights_digest

RUN = Path("results/e1/r0/c1")
TARGET = str(RUN / "metrics.json")


def _config(tmp: Path) -> Path:
    """Quick profile, one c, enough data that an epoch lasts a few seconds (a kill can land inside one)."""
    cfg = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())
    cfg["e1"].update({"coefficients": [1], "epochs": 3, "n_train": 30000, "n_test": 1000})
    path = tmp / "resume.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _snakemake_cmd(workdir: Path, configfile: Path) -> list[str]:
    return [sys.executable, "-m", "snakemake", TARGET, "--snakefile", str(REPO / "Snakefile"), "--directory",
            str(workdir), "--cores", "1", "--configfile", str(configfile)]


@pytest.mark.pipeline
def test_sigkill_mid_epoch_then_resume_is_bitwise_identical(tmp_path):
    configfile = _config(tmp_path)
    ref, killed = tmp_path / "uninterrupted", tmp_path / "killed"
    for w in (ref, killed):
        w.mkdir()
        seed_raw_data(w)

    # 1. the uninterrupted run
    run_snakemake(ref, TARGET, configfile=configfile)

    # 2. the same rule, killed (snakemake and its job, SIGKILL) once epoch 2 is under way
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = open(tmp_path / "killed.log", "w")
    proc = subprocess.Popen(_snakemake_cmd(killed, configfile), stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    state = killed / RUN / "model.keras.ckpt" / "state.json"
    deadline = time.time() + 600
    while not state.is_file():
        assert proc.poll() is None, f"training ended before a checkpoint was written: {(tmp_path / 'killed.log').read_text()[-3000:]}"
        assert time.time() < deadline, "no checkpoint within 10 minutes"
        time.sleep(0.05)
    time.sleep(1.0)  # well inside epoch 2 (an epoch takes several seconds here)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    log.close()
    assert json.loads(state.read_text())["epoch"] == 1, "the kill did not land in epoch 2"

    # no half-written output that looks finished; the checkpoint of epoch 1 is there
    for name in ("model.keras", "history.csv", "metrics.json"):
        assert not (killed / RUN / name).exists(), f"{name} exists after the kill"
    assert (killed / RUN / "model.keras.ckpt" / "epoch-1.weights.h5").is_file()

    # 3. start again as Snakemake tells a user to after a kill: unlock the folder (the killed
    #    Snakemake left its lock), then the same command; it resumes after epoch 1
    run_snakemake(killed, TARGET, "--unlock", configfile=configfile)
    again = run_snakemake(killed, TARGET, configfile=configfile)
    out = again.stdout + again.stderr
    assert "resuming after epoch 1" in out, out[-3000:]
    assert "Epoch 1/3" not in out  # epoch 1 is not trained again

    # bitwise-identical weights (layers, optimizer state, sampling RNG state) and identical files
    assert weights_digest(killed / RUN / "model.keras") == weights_digest(ref / RUN / "model.keras")
    assert (killed / RUN / "history.csv").read_bytes() == (ref / RUN / "history.csv").read_bytes()
    assert (killed / RUN / "metrics.json").read_bytes() == (ref / RUN / "metrics.json").read_bytes()
    assert not (killed / RUN / "model.keras.ckpt").exists()  # removed once training finished


def test_checkpoint_from_other_settings_is_not_resumed(tmp_path):
    """A checkpoint left by a run with other settings (here: another learning rate) is discarded."""
    from klvae import training

    keep = training.fingerprint({"lr": 1e-3}, {})
    other = training.fingerprint({"lr": 1e-4}, {})
    assert keep != other
    d = tmp_path / "model.keras.ckpt"
    d.mkdir()
    (d / "epoch-2.weights.h5").write_bytes(b"x")
    (d / "state.json").write_text(json.dumps({"epoch": 2, "weights": "epoch-2.weights.h5", "fingerprint": other,
                                              "rows": [{"loss": 1.0}, {"loss": 0.5}]}))
    messages = []
    same = training.EpochCheckpoint(d, other, log=messages.append)
    assert same.start_epoch == 2 and same.rows == [{"loss": 1.0}, {"loss": 0.5}]
    fresh = training.EpochCheckpoint(d, keep, log=messages.append)
    assert fresh.start_epoch == 0 and fresh.rows == [] and not d.exists()
    assert "other settings" in messages[-1]
