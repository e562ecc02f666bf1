"""The paper profile in parts: which Snakemake targets each part builds, and what it costs here.

The paper profile (``config/paper.yaml``: the posts' settings) is about 60,000-85,000 CPU-s on
an ordinary 2-core CPU: a night on a laptop, or a few short cluster slots. It runs in *parts*
of at most about two hours on two cores (:data:`MAX_PART_CPU_S`), each a list of Snakemake
targets (:func:`part_targets`) that trains its runs and runs every per-run analysis that needs
the weights; :mod:`klvae.bundle.part` then packs the part's data -- never its weights -- as a
part bundle under ``bundles/paper/``. Once all parts of an experiment are in, its tables and
figures are built from the parts' data and merged into the shipped paper bundle.

The parts, in the order they run (:data:`PARTS`):

* ``e1`` -- E1, every replicate of every c (3 x 8 trainings of 40 epochs), with their latent
  codes and decoder manifolds;
* ``e2-a``, ``e2-b``, ``e2-c`` -- E2's ten 37-epoch trainings (strategies x z_dims), three or
  four per part, each with its latent codes and reconstructions;
* ``e2-timing`` -- E2's timing benchmark, equivalence check and compatibility trials: timing,
  so nothing else may run on the machine;
* ``e3-data``, ``e3-vae``, ``e3-ae``, ``e3-bench`` -- E3: the stand-in faces and their
  preprocessing, each model's training (one may need two parts: it resumes from its epoch
  checkpoint) with its own analyses, and the face-pipeline benchmarks (timing).

Estimates (:func:`estimate`) come from this machine's own Snakemake ``benchmark:`` files
(``results/<profile>/benchmarks/<rule>/...tsv``, column ``cpu_time``), scaled by the work the
paper profile asks for (epochs x training images for a training, jobs for the rest).

Command line::

    python -m klvae.paper plan [--config config/paper.yaml] [--results results]
    python -m klvae.paper targets PART [--config config/paper.yaml]
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from klvae.layout import results_dir

#: A part's CPU-seconds at most: two hours of both cores of a 2-core CPU.
MAX_PART_CPU_S = 2 * 3600 * 2
#: MNIST's training images (E1 and E2 train on all of them in the paper profile).
MNIST_TRAIN = 60_000


@dataclass(frozen=True)
class Part:
    """One part of the paper run.

    Attributes:
        name: the part's name (``e1``, ``e2-a``, ...), also in its bundle's name.
        experiment: the experiment it belongs to (``e1``, ``e2``, ``e3``).
        what: one line for the plan.
        timing: it times something, so nothing else may run on the machine meanwhile.
    """

    name: str
    experiment: str
    what: str
    timing: bool = False


#: The parts, in the order they run (E1, then E2, then E3).
PARTS = (
    Part("e1", "e1", "E1: every replicate of every c, with latent codes and decoder manifolds"),
    Part("e2-a", "e2", "E2: trainings 1-4 of 10 (strategies x z_dims), latents and reconstructions"),
    Part("e2-b", "e2", "E2: trainings 5-7 of 10"),
    Part("e2-c", "e2", "E2: trainings 8-10 of 10"),
    Part("e2-timing", "e2", "E2: timing benchmark, equivalence check, compatibility trials", timing=True),
    Part("e3-data", "e3", "E3: the stand-in faces (or CelebA) preprocessed to uint8 arrays"),
    Part("e3-vae", "e3", "E3: the VAE's training (resumes from its epoch checkpoint if cut) and analyses"),
    Part("e3-ae", "e3", "E3: the plain AE's training and analyses"),
    Part("e3-bench", "e3", "E3: preprocessing, memory and input-pipeline benchmarks", timing=True),
)


def get_part(name: str) -> Part:
    """The part called ``name``.

    Raises:
        KeyError: no such part; the message lists the parts.
    """
    for p in PARTS:
        if p.name == name:
            return p
    raise KeyError(f"no part {name!r}; the parts: {', '.join(p.name for p in PARTS)}")


def load_config(path: str | Path = "config/paper.yaml") -> dict:
    """The profile's config with the schema's defaults filled in (as the workflow sees it)."""
    from snakemake.utils import validate

    config = yaml.safe_load(Path(path).read_text())
    schema = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"
    validate(config, str(schema), set_default=True)
    return config


def _coef(c) -> str:
    return f"{float(c):g}"


def e2_runs(config: dict) -> list[tuple[int, str]]:
    """E2's trainings as ``(z_dim, strategy)``, z_dim-major, in the config's order."""
    e2 = config["e2"]
    return [(int(z), s) for z in e2["z_dims"] for s in e2["strategies"]]


def _e2_slice(part: str, runs: list) -> list:
    """The trainings of E2 part ``part`` (``e2-a``/``-b``/``-c``): 4, 3 and 3 of ten, in order."""
    n = len(runs)
    bounds = [0, math.ceil(n * 4 / 10), math.ceil(n * 7 / 10), n]
    i = ("e2-a", "e2-b", "e2-c").index(part)
    return runs[bounds[i]:bounds[i + 1]]


def part_targets(name: str, config: dict) -> list[str]:
    """The Snakemake targets (paths under the profile's results folder) of part ``name``.

    Each part's targets are the per-run outputs that need the trained weights, so that the part
    leaves data, not weights: E1's ``metrics.json``, ``history.csv``, ``latent.npz`` and
    ``grid.npz`` per replicate and c; E2's ``metrics.json``, ``history.csv``, ``latent.npz`` and
    ``recon.npz`` per (z_dim, strategy); E3's per-model outputs.

    Raises:
        KeyError: no such part.
    """
    part = get_part(name)
    res = results_dir(config["profile"])
    if part.name == "e1":
        e1 = config["e1"]
        return [f"{res}/e1/r{r}/c{_coef(c)}/{f}" for r in range(int(e1["replicates"])) for c in e1["coefficients"]
                for f in ("metrics.json", "history.csv", "latent.npz", "grid.npz")]
    if part.name in ("e2-a", "e2-b", "e2-c"):
        return [f"{res}/e2/z{z}/{s}/{f}" for z, s in _e2_slice(part.name, e2_runs(config))
                for f in ("metrics.json", "history.csv", "latent.npz", "recon.npz")]
    if part.name == "e2-timing":
        return [f"{res}/tables/e2_timing.csv", f"{res}/tables/e2_timing_windows.csv",
                f"{res}/tables/e2_equivalence.csv", f"{res}/tables/e2_compatibility.csv",
                f"{res}/tables/e2_compatibility_long.csv"]
    if part.name == "e3-data":
        return [f"{res}/data/faces/manifest.json"]
    if part.name in ("e3-vae", "e3-ae"):
        kind = part.name.split("-")[1]
        return [f"{res}/e3/{kind}/history.csv", f"{res}/e3/{kind}/model.json"]
    return [f"{res}/tables/e3_bench_preprocessing.csv", f"{res}/tables/e3_bench_memory.csv",
            f"{res}/tables/e3_bench_pipeline.csv"]


# ----------------------------------------------------------------------------------------------
# Estimates from this machine's benchmark files


def _cpu_seconds(tsv: Path) -> float | None:
    try:
        with open(tsv, newline="") as fh:
            row = next(csv.DictReader(fh, delimiter="\t"))
        value = float(row["cpu_time"])
    except (OSError, StopIteration, KeyError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def _run_config(profile_dir: Path) -> dict | None:
    """The config a results folder was made with: its run record's copy, else ``config/<profile>.yaml``."""
    for path in (profile_dir / "report" / "generated" / "config.yaml",
                 Path(__file__).resolve().parents[2] / "config" / f"{profile_dir.name}.yaml"):
        if path.is_file():
            try:
                return load_config(path)
            except Exception:  # noqa: BLE001 -- an unreadable config only means no estimate from this folder
                return None
    return None


def measured_rates(results: str | Path = "results") -> dict[str, dict]:
    """CPU-s per unit of work per rule, from every profile's benchmark files under ``results``.

    Units: per epoch and training image for ``e1_train``, ``e2_train`` and ``e3_train``; per
    job for every other rule.

    Returns:
        ``{rule: {"rate": median CPU-s per unit, "n": jobs measured, "unit": str}}``.
    """
    per_rule: dict[str, list[float]] = {}
    units = {}
    for bench in sorted(Path(results).glob("*/benchmarks")):
        config = _run_config(bench.parent)
        for tsv in sorted(bench.rglob("*.tsv")):
            rule = tsv.parent.name if tsv.parent != bench else tsv.stem
            cpu = _cpu_seconds(tsv)
            if cpu is None:
                continue
            work = 1.0
            exp = rule.split("_")[0]
            if rule in ("e1_train", "e2_train", "e3_train"):
                if config is None:
                    continue
                section = config.get(exp, {})
                n = section.get("n_train") or (MNIST_TRAIN if exp != "e3" else None)
                if not n:
                    continue
                work = float(section["epochs"]) * float(n)
                units[rule] = "CPU-s per epoch and image"
            else:
                units.setdefault(rule, "CPU-s per job")
            per_rule.setdefault(rule, []).append(cpu / work)
    out = {}
    for rule, values in per_rule.items():
        values.sort()
        mid = len(values) // 2
        median = values[mid] if len(values) % 2 else 0.5 * (values[mid - 1] + values[mid])
        out[rule] = {"rate": median, "n": len(values), "unit": units[rule]}
    return out


def part_work(name: str, config: dict) -> dict[str, float]:
    """The work of part ``name`` per rule, in the units of :func:`measured_rates`."""
    part = get_part(name)
    if part.name == "e1":
        e1 = config["e1"]
        runs = int(e1["replicates"]) * len(e1["coefficients"])
        return {"e1_train": runs * float(e1["epochs"]) * float(e1.get("n_train") or MNIST_TRAIN),
                "e1_analyse": runs, "e1_init_weights": int(e1["replicates"])}
    if part.name in ("e2-a", "e2-b", "e2-c"):
        e2 = config["e2"]
        runs = len(_e2_slice(part.name, e2_runs(config)))
        return {"e2_train": runs * float(e2["epochs"]) * float(e2.get("n_train") or MNIST_TRAIN), "e2_analyse": runs}
    if part.name == "e2-timing":
        return {"e2_timing": 1, "e2_equivalence": 1, "e2_compatibility": 1}
    if part.name == "e3-data":
        return {"e3_standin": 1, "e3_preprocess": 1}
    if part.name in ("e3-vae", "e3-ae"):
        e3 = config["e3"]
        return {"e3_train": float(e3["epochs"]) * float(e3["n_train"])}
    return {"e3_bench_preprocessing": 1, "e3_bench_memory": 1, "e3_bench_pipeline": 1}


def estimate(name: str, config: dict, rates: dict[str, dict]) -> tuple[float | None, list[str]]:
    """Estimated CPU-s of part ``name`` from ``rates`` (:func:`measured_rates`).

    Returns:
        ``(cpu_s or None, rules without a measurement on this machine)``; None when no rule of
        the part was measured.
    """
    total, missing = 0.0, []
    for rule, work in part_work(name, config).items():
        if rule in rates:
            total += rates[rule]["rate"] * work
        else:
            missing.append(rule)
    return (total if len(missing) < len(part_work(name, config)) else None), missing


def plan(config: dict, results: str | Path = "results") -> list[dict]:
    """The plan: one row per part with its targets' count and estimated CPU-s (this machine's).

    Returns:
        ``[{"part", "experiment", "what", "timing", "targets", "cpu_s" (or None), "hours_on_2_cores"
        (or None), "over_limit" (bool), "unmeasured" (rules)}]``.
    """
    rates = measured_rates(results)
    rows = []
    for p in PARTS:
        cpu, missing = estimate(p.name, config, rates)
        rows.append({"part": p.name, "experiment": p.experiment, "what": p.what, "timing": p.timing,
                     "targets": len(part_targets(p.name, config)), "cpu_s": cpu,
                     "hours_on_2_cores": None if cpu is None else cpu / 2 / 3600,
                     "over_limit": cpu is not None and cpu > MAX_PART_CPU_S, "unmeasured": missing})
    return rows


def format_plan(rows: list[dict]) -> str:
    """The plan as text for the terminal."""
    lines = [f"{'part':<10} {'targets':>7} {'CPU-s':>8} {'h (2 cores)':>11}  what"]
    for r in rows:
        cpu = "?" if r["cpu_s"] is None else f"{r['cpu_s']:,.0f}"
        hours = "?" if r["hours_on_2_cores"] is None else f"{r['hours_on_2_cores']:.1f}"
        notes = []
        if r["timing"]:
            notes.append("timing: nothing else on the machine")
        if r["over_limit"]:
            notes.append("over 2 h: a training resumes from its checkpoint in the next run of this part")
        if r["unmeasured"]:
            notes.append("not measured here: " + ", ".join(r["unmeasured"]))
        lines.append(f"{r['part']:<10} {r['targets']:>7} {cpu:>8} {hours:>11}  {r['what']}"
                     + (f" [{'; '.join(notes)}]" if notes else ""))
    known = [r["cpu_s"] for r in rows if r["cpu_s"] is not None]
    lines.append(f"total measured: {sum(known):,.0f} CPU-s ({sum(known) / 2 / 3600:.1f} h on 2 cores) for "
                 f"{len(known)} of {len(rows)} parts. Estimates come from this machine's benchmark files "
                 "(results/<profile>/benchmarks/); a part with '?' has none yet: run `make report` first.")
    return "\n".join(lines)


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m klvae.paper", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("plan", help="print the parts with their estimated CPU-s on this machine")
    p.add_argument("--config", default="config/paper.yaml")
    p.add_argument("--results", default="results", help="folder of every profile's results (their benchmarks)")
    t = sub.add_parser("targets", help="print one part's Snakemake targets, one per line")
    t.add_argument("part")
    t.add_argument("--config", default="config/paper.yaml")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    try:
        if args.cmd == "plan":
            print(format_plan(plan(config, args.results)))
        else:
            print("\n".join(part_targets(args.part, config)))
    except KeyError as err:
        print(f"error: {err.args[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main())
