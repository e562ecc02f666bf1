"""Provenance facts for the methods chapter: software versions, hardware, git commit, rule times."""

from __future__ import annotations

import csv
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import numpy as np

#: Distributions whose versions the report lists.
PACKAGES = ["tensorflow", "keras", "tf-keras", "numpy", "pandas", "matplotlib", "pillow", "snakemake",
            "pypandoc-binary", "typst", "jsonschema"]


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


def cpu_model() -> str:
    """The CPU's model name from ``/proc/cpuinfo`` (Linux), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpus_visible() -> str:
    """The GPUs TensorFlow sees in this process (``"none"`` on a CPU-only machine or build)."""
    try:
        import tensorflow as tf
        gpus = tf.config.list_physical_devices("GPU")
    except Exception as err:  # noqa: BLE001 -- report what happened rather than fail the report
        return f"unknown ({type(err).__name__})"
    return ", ".join(g.name for g in gpus) if gpus else "none visible to TensorFlow"


def hardware() -> dict[str, str]:
    """CPU model, logical CPUs usable by this process, total memory (GiB), OS."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    try:
        import psutil
        mem = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    except Exception:  # pragma: no cover
        mem = "unknown"
    gpu = gpus_visible()
    return {"CPU": cpu_model(), "logical CPUs": str(cpus), "memory": mem, "GPU": gpu,
            "OS": f"{platform.system()} {platform.release()}"}


def git_commit(repo: str | Path) -> str:
    """``git describe --always --dirty`` of ``repo``, or a sentence saying it is not a git checkout."""
    try:
        out = subprocess.run(["git", "-C", str(repo), "describe", "--always", "--dirty", "--abbrev=12"],
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return "not a git checkout"


def rule_times(benchmarks_dir: str | Path, exclude: tuple[str, ...] = ("report",)) -> list[dict]:
    """Aggregate Snakemake ``benchmark:`` TSVs per rule.

    The file layout is ``<dir>/<rule>.tsv`` or ``<dir>/<rule>/<wildcards>.tsv``; rules (or
    folders) named in ``exclude`` are left out (the report's own rules, still running when
    this is called).

    Returns:
        One dict per rule, sorted by total wall time (descending): ``rule``, ``jobs``,
        ``total_s``, ``median_s``, ``max_s`` (wall-clock seconds) and ``max_rss_mb``
        (peak resident memory, MB, as Snakemake measured it).
    """
    root = Path(benchmarks_dir)
    per_rule: dict[str, list[tuple[float, float]]] = {}
    for tsv in sorted(root.rglob("*.tsv")):
        rel = tsv.relative_to(root)
        rule = rel.parts[0] if len(rel.parts) > 1 else tsv.stem
        if rule in exclude:
            continue
        with open(tsv, newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                try:
                    s = float(row["s"])
                    rss = float(row.get("max_rss") or "nan")
                except (KeyError, ValueError):
                    continue
                per_rule.setdefault(rule, []).append((s, rss))
    rows = []
    for rule, vals in per_rule.items():
        s = np.array([v[0] for v in vals])
        rss = np.array([v[1] for v in vals])
        rows.append({"rule": rule, "jobs": len(vals), "total_s": float(s.sum()), "median_s": float(np.median(s)),
                     "max_s": float(s.max()),
                     "max_rss_mb": float(np.nanmax(rss)) if np.isfinite(rss).any() else float("nan")})
    return sorted(rows, key=lambda r: -r["total_s"])
