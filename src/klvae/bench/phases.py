"""Where a job's time goes: process start-up, imports, compilation and training, per rule.

Every rule runs through ``workflow/scripts/call.py``, which records for its job (via
:func:`record`): when the process started (``psutil``), when the runner began, when the
library function's module was imported (Keras, the backend and klvae come in here), when the
function returned, and, for training jobs, the seconds of every epoch the process ran
(:data:`klvae.training.FIT_TIMES`). From these (all seconds of wall time):

* ``startup_s``: process start -> the runner begins (interpreter, Snakemake's script preamble);
* ``import_s``: importing the library function's module (and with it Keras and the backend);
* ``compile_s``: per training, the first epoch minus the median of the later epochs -- the
  tracing/compilation and warm-up a first epoch pays (0 with a single epoch: not separable);
* ``train_s``: the training epochs less ``compile_s``;
* ``other_s``: the rest of the function (data loading, evaluation, writing outputs).

They are written next to the job's log as ``<log>.phases.json``; :func:`summarize` and
``python -m klvae.bench.phases <logs folder>`` sum them per rule. This is how a short run
tells what to remove before a long one (e.g. on a GPU node: start-up and compilation repeat in
every one of a hundred processes, the training itself may not dominate).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

PHASES = ("startup_s", "import_s", "compile_s", "train_s", "other_s")


def split(process_start: float, t_call: float, t_imported: float, t_done: float, fits: list[dict]) -> dict:
    """A job's phases in seconds (see the module docstring).

    Args:
        process_start, t_call, t_imported, t_done: Unix times (s) of the process start, the
            runner's start, the end of the import, the function's return.
        fits: :data:`klvae.training.FIT_TIMES` of the job (``epoch_seconds`` per training).

    Returns:
        ``{startup_s, import_s, compile_s, train_s, other_s, total_s, epochs}``; every phase >= 0
        and ``total_s`` their sum (``other_s`` takes what the others leave).
    """
    compile_s = train_s = 0.0
    epochs = 0
    for fit in fits:
        secs = [float(s) for s in fit.get("epoch_seconds", [])]
        epochs += len(secs)
        if len(secs) >= 2:
            compile_s += max(0.0, secs[0] - statistics.median(secs[1:]))
        train_s += sum(secs)
    train_s -= compile_s
    startup = max(0.0, t_call - process_start)
    imports = max(0.0, t_imported - t_call)
    run = max(0.0, t_done - t_imported)
    other = max(0.0, run - compile_s - train_s)
    out = {"startup_s": startup, "import_s": imports, "compile_s": compile_s, "train_s": train_s, "other_s": other}
    return {**{k: round(v, 3) for k, v in out.items()}, "total_s": round(sum(out.values()), 3), "epochs": epochs}


def process_start_time(default: float) -> float:
    """This process's start (Unix time, s) from ``psutil``; ``default`` if psutil is missing."""
    try:
        import psutil

        return float(psutil.Process().create_time())
    except Exception:  # noqa: BLE001 - the record is best effort, never a job failure
        return default


def record(log_path: str, rule: str, wildcards: dict, t_call: float, t_imported: float) -> dict | None:
    """Write ``<log_path>.phases.json`` for the job that is ending now; returns the record.

    Reads :data:`klvae.training.FIT_TIMES` if that module was imported by the job. Never raises
    (a failed record is reported on stderr): measuring must not fail a finished job.
    """
    try:
        t_done = time.time()
        training = sys.modules.get("klvae.training")
        fits = list(getattr(training, "FIT_TIMES", []) or [])
        rec = {"rule": rule, "wildcards": dict(wildcards),
               **split(process_start_time(t_call), t_call, t_imported, t_done, fits)}
        Path(f"{log_path}.phases.json").write_text(json.dumps(rec, indent=1) + "\n")
        return rec
    except Exception as exc:  # noqa: BLE001
        print(f"[phases] not recorded: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None


def summarize(logs_dir: str | Path) -> list[dict]:
    """Per rule, the jobs' phases summed and the median job: ``[{rule, jobs, <phase> sums..., total_s,
    median_job_s}]`` sorted by total time, largest first; a last row ``rule = "all"``."""
    by_rule: dict[str, list[dict]] = {}
    for f in sorted(Path(logs_dir).rglob("*.phases.json")):
        rec = json.loads(f.read_text())
        by_rule.setdefault(rec["rule"], []).append(rec)
    rows = []
    for rule, recs in by_rule.items():
        rows.append({"rule": rule, "jobs": len(recs), **{p: round(sum(r[p] for r in recs), 1) for p in PHASES},
                     "total_s": round(sum(r["total_s"] for r in recs), 1),
                     "median_job_s": round(statistics.median(r["total_s"] for r in recs), 1)})
    rows.sort(key=lambda r: -r["total_s"])
    if rows:
        rows.append({"rule": "all", "jobs": sum(r["jobs"] for r in rows),
                     **{p: round(sum(r[p] for r in rows), 1) for p in PHASES},
                     "total_s": round(sum(r["total_s"] for r in rows), 1), "median_job_s": ""})
    return rows


def main(argv=None) -> int:
    """``python -m klvae.bench.phases LOGS [--tsv OUT]``: print the per-rule split (and write it)."""
    a = argparse.ArgumentParser(description="Where the jobs' time went: start-up, imports, compilation, training.")
    a.add_argument("logs", help="a run's log folder, e.g. results/<profile>/logs")
    a.add_argument("--tsv", help="also write the table here")
    args = a.parse_args(argv)
    rows = summarize(args.logs)
    if not rows:
        print(f"no *.phases.json under {args.logs}: run the workflow first", file=sys.stderr)
        return 1
    cols = ["rule", "jobs", *PHASES, "total_s", "median_job_s"]
    lines = ["\t".join(cols)] + ["\t".join(str(r[c]) for c in cols) for r in rows]
    print("\n".join(lines))
    if args.tsv:
        Path(args.tsv).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
