"""klvae.bench.phases: a job's time split into start-up, imports, compilation, training and the rest."""

from __future__ import annotations

import json
import sys
import time
import types

import pytest

from klvae.bench import phases


def test_split_by_hand():
    # process started at 100, runner at 102 (2 s start-up), imported at 107 (5 s), returned at 160 (53 s):
    # two trainings: epochs 12, 4, 5, 4 s (first epoch 8 s over the median 4 of the later ones) and one epoch of 3 s
    fits = [{"epoch_seconds": [12.0, 4.0, 5.0, 4.0]}, {"epoch_seconds": [3.0]}]
    out = phases.split(100.0, 102.0, 107.0, 160.0, fits)
    assert out == {"startup_s": 2.0, "import_s": 5.0, "compile_s": 8.0, "train_s": 20.0, "other_s": 25.0,
                   "total_s": 60.0, "epochs": 5}


def test_split_never_negative():
    out = phases.split(10.0, 9.0, 9.5, 9.6, [{"epoch_seconds": [5.0, 1.0]}])  # clock skew, epochs over the run
    assert all(out[p] >= 0 for p in phases.PHASES) and out["compile_s"] == 4.0 and out["other_s"] == 0.0


def test_record_reads_the_jobs_trainings_and_summarize_sums_per_rule(tmp_path, monkeypatch):
    fake = types.SimpleNamespace(FIT_TIMES=[{"epochs": 3, "epoch_seconds": [9.0, 2.0, 2.0]}])
    monkeypatch.setitem(sys.modules, "klvae.training", fake)
    log = tmp_path / "logs" / "e1_train" / "c0.log"
    log.parent.mkdir(parents=True)
    now = time.time()
    rec = phases.record(str(log), "e1_train", {"c": "0"}, t_call=now, t_imported=now)
    assert rec["compile_s"] == 7.0 and rec["train_s"] == 6.0 and rec["epochs"] == 3
    assert json.loads((tmp_path / "logs/e1_train/c0.log.phases.json").read_text())["wildcards"] == {"c": "0"}
    monkeypatch.setitem(sys.modules, "klvae.training", types.SimpleNamespace(FIT_TIMES=[]))
    phases.record(str(tmp_path / "logs" / "e1_table.log"), "e1_table", {}, t_call=now, t_imported=now)
    rows = phases.summarize(tmp_path / "logs")
    assert [r["rule"] for r in rows] == ["e1_train", "e1_table", "all"]
    assert rows[0]["compile_s"] == 7.0 and rows[-1]["jobs"] == 2
    assert rows[-1]["total_s"] == pytest.approx(rows[0]["total_s"] + rows[1]["total_s"], abs=0.11)


def test_cli_says_what_to_do_without_records(tmp_path, capsys):
    assert phases.main([str(tmp_path)]) == 1
    assert "run the workflow first" in capsys.readouterr().err
