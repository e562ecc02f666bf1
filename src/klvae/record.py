"""The run record: where, when, on which hardware and software, with which Keras backend and at
which commit a run's numbers were made; the machine that renders a report; and the rules' times.

* :func:`run_record` -- written once per run by rule ``report_methods``
  (``results/<profile>/report/generated/run.json``); the report's banner and methods chapter
  quote it, and a results bundle (:mod:`klvae.bundle`) carries it to wherever the report is
  rendered. The Keras backend and the accelerators it sees come from the file rule
  ``report_backend`` wrote in the run's environment (:func:`klvae.backend.write_facts`).
* :func:`render_record` -- the machine that *renders* a report (from a bundle): host, CPU,
  OS, date and commit only.
* :func:`git_commit`, :func:`host`, :func:`utc_now` -- the stamps a bundle's manifest carries.
* :func:`rule_times`, :func:`experiment_times` -- wall and CPU seconds from Snakemake's
  ``benchmark:`` files; :func:`benchmark_rows` and :func:`job_cpu_seconds` read one such file
  (the one reader the bundles' part records and the paper plan use too), :func:`resumed_training`
  a training job's log.

Below the report and the bundles (both read it; it imports neither). Imports no deep-learning
framework.
"""

from __future__ import annotations

import csv
import datetime as _dt
import os
import platform
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Sequence

import numpy as np

from klvae.machine import cpu_model, usable_cores

#: Distributions whose versions the report lists.
PACKAGES = ["keras", "tensorflow", "tf-keras", "jax", "jaxlib", "torch", "numpy", "pandas", "matplotlib", "pillow",
            "snakemake", "pypandoc-binary", "typst", "jsonschema"]


def package_versions(packages=PACKAGES) -> dict[str, str]:
    """Installed version of each distribution (``"not installed"`` when absent)."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    try:
        import pypandoc
        out["pandoc"] = pypandoc.get_pandoc_version()
    except Exception:  # pragma: no cover - pypandoc missing or broken
        pass
    return out


def gpu_models() -> list[str]:
    """The NVIDIA GPUs of this machine as ``nvidia-smi`` names them (``"<name>, <memory>"``),
    empty where there is no ``nvidia-smi`` or it fails. Independent of any framework."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()] if out.returncode == 0 else []


def gpus_visible(backend: dict) -> str:
    """The GPUs the run's Keras backend saw, from its recorded facts.

    Args:
        backend: :func:`klvae.backend.backend_facts` as rule ``report_backend`` wrote them
            (``keras_backend``, ``accelerators``).

    Returns:
        ``accelerators`` as recorded (e.g. ``"/physical_device:GPU:0"``), ``"none visible to
        <backend>"`` for a CPU-only machine or build, or ``"unknown (<error>)"`` where the backend
        could not be asked.
    """
    found = str(backend.get("accelerators", ""))
    if found.startswith("unknown"):
        return found
    return found if found and found != "none" else f"none visible to {backend['keras_backend']}"


def _memory() -> str:
    try:
        import psutil
        return f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    except Exception:  # pragma: no cover
        return "unknown"


#: The CPU's vector extensions that decide which kernels oneDNN and XLA pick on a CPU (and so the
#: order of floating-point sums): two CPUs that differ here may train to different last digits.
VECTOR_EXTENSIONS = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile",
                     "amx_bf16", "amx_int8", "asimd", "sve")


def cpu_extensions(cpuinfo: str | None = None) -> str:
    """The :data:`VECTOR_EXTENSIONS` the CPU has, in that order, space-separated (``"avx avx2 fma
    avx512f"``), from the ``flags``/``Features`` line of ``/proc/cpuinfo`` (or the text
    ``cpuinfo``); ``"none of <list>"`` where it has none of them, ``"unknown"`` where the file
    cannot be read (not Linux). Why it is recorded: bitwise repeatability on CPU holds on the same
    kind of CPU (README, "Reruns you can trust")."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return "unknown"
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            flags = set(line.split(":", 1)[1].split())
            break
    if not flags:
        return "unknown"
    found = [f for f in VECTOR_EXTENSIONS if f in flags]
    return " ".join(found) if found else f"none of {' '.join(VECTOR_EXTENSIONS)}"


def hardware(backend: dict) -> dict[str, str]:
    """CPU model, its vector extensions (:func:`cpu_extensions`), logical CPUs usable by this
    process, total memory (GiB), the GPUs the Keras backend saw (:func:`gpus_visible` of the
    recorded ``backend`` facts, with ``nvidia-smi``'s model names where present), OS."""
    gpu = gpus_visible(backend)
    models = gpu_models()
    if models:
        gpu = f"{gpu} ({'; '.join(models)})"
    return {"CPU": cpu_model(), "CPU vector extensions": cpu_extensions(), "logical CPUs": str(usable_cores()),
            "memory": _memory(), "GPU": gpu, "OS": f"{platform.system()} {platform.release()}"}


def host() -> str:
    """This machine's host name (``platform.node()``), ``"unknown"`` when empty."""
    return platform.node() or "unknown"


def utc_now() -> str:
    """The current time, UTC, ISO 8601 to the second (``2025-01-31T12:00:00Z``)."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def installed_packages() -> dict[str, str]:
    """Every installed distribution and its version, sorted by name: the ``pip freeze`` of this
    interpreter, read from the package metadata (no pip needed)."""
    out = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            out.setdefault(name, dist.version)
    return dict(sorted(out.items(), key=lambda kv: kv[0].lower()))


def run_record(config: dict, repo: str | Path, backend: dict) -> dict:
    """Where, when, on what and at which commit this run's numbers were made.

    Called by rule ``run_record`` (:func:`write_run_record`) at the end of a run, in the run's
    environment. The Keras
    backend facts are read, not asked: ``backend`` is what rule ``report_backend`` recorded in
    the same environment (:func:`klvae.backend.backend_facts`; this module imports no Keras).

    Returns:
        A JSON-serialisable dict: ``recorded_utc`` (ISO 8601), ``host``, ``profile``, ``seed``,
        ``keras_backend`` (``keras.backend.backend()`` as recorded), ``KERAS_BACKEND`` (the
        variable as set there, ``""`` when unset), ``git_commit`` (``git describe --always
        --dirty``), ``hardware`` (:func:`hardware`), ``versions`` (:func:`package_versions`),
        ``python`` (executable and version), ``packages`` (:func:`installed_packages`, the
        resolved environment).
    """
    return {
        "recorded_utc": utc_now(),
        "host": host(),
        "profile": config["profile"],
        "seed": config["seed"],
        "keras_backend": backend["keras_backend"],
        "KERAS_BACKEND": backend.get("KERAS_BACKEND", ""),
        "git_commit": git_commit(repo),
        "hardware": hardware(backend),
        "versions": package_versions(),
        "python": {"executable": sys.executable, "version": sys.version.split()[0]},
        "packages": installed_packages(),
    }


def write_run_record(run_json: str, config_yaml: str, backend: str, config: dict, repo: str | None = None) -> None:
    """Rule ``run_record``: the run's record (:func:`run_record`) and its config exactly as used.

    Written once, at the end of the run, in the run's environment; both are data that travel in
    a results bundle (:mod:`klvae.bundle`), so a report rendered from the bundle shows where,
    when, on what and at which commit the numbers were made, not where it was rendered.

    Args:
        run_json: output JSON (:func:`run_record`).
        config_yaml: output YAML: the validated config, schema defaults filled.
        backend: the Keras backend facts of rule ``report_backend`` (JSON).
        config: the run's config.
        repo: the checkout (for ``git describe``); default: the one this klvae is imported from, so
            that the checkout's path is no rule param and a copy of it does not re-record the run.
    """
    import json

    import yaml

    from klvae.io import write_text

    repo = repo if repo is not None else Path(__file__).resolve().parents[2]
    run = run_record(config, repo, json.loads(Path(backend).read_text()))
    write_text(run_json, json.dumps(run, indent=2, sort_keys=False) + "\n")
    write_text(config_yaml, yaml.safe_dump(json.loads(json.dumps(config)), sort_keys=False, allow_unicode=True))


def render_record(repo: str | Path) -> dict:
    """The machine that renders a report: ``rendered_utc``, ``host``, ``CPU``, ``logical CPUs``,
    ``memory``, ``OS``, ``git_commit`` of the checkout whose ``report/`` sources were used, and
    ``python``. Imports no deep-learning framework (rendering needs none)."""
    return {"rendered_utc": utc_now(), "host": host(), "CPU": cpu_model(), "logical CPUs": str(usable_cores()),
            "memory": _memory(), "OS": f"{platform.system()} {platform.release()}",
            "git_commit": git_commit(repo), "python": platform.python_version()}


def short_commit(commit: str) -> str:
    """A file-name-safe short form of a :func:`git_commit` string: the hash's first 7 hex digits,
    ``-dirty`` kept (``5e71b1b-dirty``); ``nogit`` for "not a git checkout"."""
    m = re.search(r"(?:^|-g)([0-9a-f]{7,40})(-dirty)?$", commit.strip())
    if not m:
        return "nogit"
    return m.group(1)[:7] + (m.group(2) or "")


def git_commit(repo: str | Path) -> str:
    """``git describe --always --dirty`` of ``repo``.

    The environment variable ``KLVAE_GIT_COMMIT``, where set, wins, with " (from
    KLVAE_GIT_COMMIT)" appended: the copy of the tree an offline GPU node runs (see
    ``workflow/scripts/gpu_run.sh``) is not our checkout, and a copy tool or batch system may
    wrap it in a git repository of its own whose commits are not ours. Outside a git checkout and
    without the variable: a sentence saying it is not a git checkout.
    """
    exported = os.environ.get("KLVAE_GIT_COMMIT", "").strip()
    if exported:
        return f"{exported} (from KLVAE_GIT_COMMIT)"
    try:
        out = subprocess.run(["git", "-C", str(repo), "describe", "--always", "--dirty", "--abbrev=12"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return "not a git checkout"


def head_commit(repo: str | Path) -> str | None:
    """The full SHA of ``repo``'s ``HEAD`` (``KLVAE_GIT_COMMIT`` where set), or None outside a git checkout."""
    exported = os.environ.get("KLVAE_GIT_COMMIT", "").strip()
    if exported:
        return exported.removesuffix("-dirty")
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


#: The line a training logs when it resumes from its epoch checkpoint (:mod:`klvae.training`).
RESUMED_LINE = re.compile(r"\[checkpoint\] resuming after epoch (\d+)")
#: Keras's progress line at the start of each epoch, ``Epoch k/N``: N is the training's epochs.
KERAS_EPOCH_LINE = re.compile(r"^Epoch \d+/(\d+)\s*$", re.M)


def benchmark_rows(tsv: str | Path) -> list[dict[str, float]]:
    """The rows of one Snakemake ``benchmark:`` file (tab-separated, a header line, one row per
    repeat of the job), each ``{column: value}``: ``s`` (wall seconds), ``cpu_time`` (CPU seconds of
    the job's processes), ``max_rss`` (MB), ... as floats, NaN where a cell is empty or not a number.

    Returns:
        The rows, ``[]`` when the file cannot be read or has no row.
    """
    try:
        with open(tsv, newline="") as fh:
            raw = list(csv.DictReader(fh, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []

    def number(cell):
        try:
            return float(cell)
        except (TypeError, ValueError):
            return float("nan")

    return [{key: number(cell) for key, cell in row.items() if key is not None} for row in raw]


def job_cpu_seconds(tsv: str | Path) -> float | None:
    """The CPU seconds of one job, from its benchmark file's first row (``cpu_time``); None where the
    file has none, or not a positive finite number."""
    rows = benchmark_rows(tsv)
    value = rows[0].get("cpu_time", float("nan")) if rows else float("nan")
    return value if np.isfinite(value) and value > 0 else None


def resumed_training(log: str | Path) -> tuple[int | None, int | None]:
    """``(epochs trained before the resume, the training's epochs)`` from a training job's log.

    A job's log holds its last run only: the first is None when that run started from scratch, the
    second when the log has no Keras progress line (or cannot be read).
    """
    try:
        text = Path(log).read_text(errors="replace")
    except OSError:
        return None, None
    resumes = [int(n) for n in RESUMED_LINE.findall(text)]
    epochs = [int(n) for n in KERAS_EPOCH_LINE.findall(text)]
    return (resumes[-1] if resumes else None), (epochs[-1] if epochs else None)


def rule_times(benchmarks_dir: str | Path, exclude: tuple[str, ...] = ("report",)) -> list[dict]:
    """Aggregate Snakemake ``benchmark:`` TSVs per rule.

    The file layout is ``<dir>/<rule>.tsv`` or ``<dir>/<rule>/<wildcards>.tsv``; rules (or
    folders) named in ``exclude`` are left out (the report's own rules, still running when
    this is called).

    Returns:
        One dict per rule, sorted by total wall time (descending): ``rule``, ``jobs``,
        ``total_s``, ``median_s``, ``max_s`` (wall-clock seconds), ``cpu_s`` (CPU seconds of
        the jobs' processes summed, Snakemake's ``cpu_time``; NaN where not measured) and
        ``max_rss_mb`` (peak resident memory, MB, as Snakemake measured it).
    """
    root = Path(benchmarks_dir)
    per_rule: dict[str, list[tuple[float, float, float]]] = {}
    for tsv in sorted(root.rglob("*.tsv")):
        rel = tsv.relative_to(root)
        rule = rel.parts[0] if len(rel.parts) > 1 else tsv.stem
        if rule in exclude:
            continue
        for row in benchmark_rows(tsv):
            if np.isfinite(row.get("s", float("nan"))):
                per_rule.setdefault(rule, []).append((row["s"], row.get("max_rss", float("nan")),
                                                      row.get("cpu_time", float("nan"))))
    rows = []
    for rule, vals in per_rule.items():
        s, rss, cpu = (np.array(col) for col in zip(*vals, strict=True))
        rows.append({"rule": rule, "jobs": len(vals), "total_s": float(s.sum()), "median_s": float(np.median(s)),
                     "max_s": float(s.max()),
                     "cpu_s": float(np.nansum(cpu)) if np.isfinite(cpu).any() else float("nan"),
                     "max_rss_mb": float(np.nanmax(rss)) if np.isfinite(rss).any() else float("nan")})
    return sorted(rows, key=lambda r: -r["total_s"])


def experiment_times(times: list[dict], experiments: Sequence[str] = ("e1", "e2", "e3")) -> list[dict]:
    """Sum :func:`rule_times` rows per experiment, by rule-name prefix (``mnist_`` -> data,
    ``e1_`` -> E1, ... for each of ``experiments`` (the registry's names), anything else -> ``other``).

    Returns:
        One dict per experiment present, in the order data, the experiments, other: ``experiment``,
        ``jobs``, ``total_s`` (job wall-clock seconds summed; jobs may run in parallel, so this is
        not the elapsed time) and ``cpu_s`` (CPU seconds summed; the budget measure that does not
        depend on how busy the machine was).
    """
    prefixes = {"mnist_": "data (MNIST)", **{f"{e}_": e.upper() for e in experiments}}
    order = [*prefixes.values(), "other"]
    sums: dict[str, dict] = {}
    for row in times:
        name = next((e for p, e in prefixes.items() if row["rule"].startswith(p)), "other")
        acc = sums.setdefault(name, {"experiment": name, "jobs": 0, "total_s": 0.0, "cpu_s": 0.0})
        acc["jobs"] += row["jobs"]
        acc["total_s"] += row["total_s"]
        acc["cpu_s"] += row["cpu_s"] if np.isfinite(row["cpu_s"]) else 0.0
    return [sums[e] for e in order if e in sums]
