"""The paper profile in parts: which Snakemake targets each part builds, and what it costs here.

The paper profile (``config/paper.yaml``: the posts' settings) is about 60,000-85,000 CPU-s on
an ordinary 2-core CPU: a night on a laptop, or a few short cluster slots. It runs in *parts*
of at most about two hours on two cores (:data:`MAX_PART_HOURS`), each a list of Snakemake
targets (:func:`part_targets`) that trains its runs and runs every per-run analysis that needs
the weights; :mod:`klvae.bundle.part` then packs the part's data -- never its weights -- as a
part bundle under ``bundles/paper/``. Once all parts of an experiment are in, its tables and
figures are built from the parts' data and merged into the shipped paper bundle.

The parts, in the order they run (:data:`PARTS`):

* ``e1`` -- E1, every replicate of every c (3 x 8 trainings of 40 epochs), with their latent
  codes and decoder manifolds;
* ``e2-a`` ... ``e2-e`` -- E2's ten 37-epoch trainings (strategies x z_dims), two per part
  (one per core), each with its latent codes and reconstructions;
* ``e2-timing`` -- E2's timing benchmark, equivalence check and compatibility trials: timing,
  so nothing else may run on the machine;
* ``e3-data``, ``e3-vae``, ``e3-ae``, ``e3-bench`` -- E3: the stand-in faces and their
  preprocessing, each model's training (one may need two parts: it resumes from its epoch
  checkpoint) with its own analyses, and the face-pipeline benchmarks (timing).

Estimates (:func:`estimate`) come from this machine's own Snakemake ``benchmark:`` files
(``results/<profile>/benchmarks/<rule>/...tsv``, column ``cpu_time``), scaled by the work the
paper profile asks for (epochs x training images for a training, images for E3's data rules, jobs
for the rest); the paper profile's own files, once a part has run, before any other profile's.

Command line::

    python -m klvae.paper plan [--config config/paper.yaml] [--results results]
    python -m klvae.paper targets PART [--config config/paper.yaml]
    python -m klvae.paper configfile PART [--config config/paper.yaml]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from klvae import registry
from klvae.layout import results_dir
from klvae.registry import PaperPart

#: The cores of the machine a part is planned for: an ordinary laptop's or a CI runner's CPU.
MACHINE_CORES = 2
#: A part's wall time at most, in hours.
MAX_PART_HOURS = 2.0


@dataclass(frozen=True)
class Part:
    """One part of the paper run (an experiment's :class:`klvae.registry.PaperPart`, with its experiment).

    Attributes:
        name: the part's name (``e1``, ``e2-a``, ...), also in its bundle's name.
        experiment: the experiment it belongs to (its id in the registry).
        what: one line for the plan.
        timing: it times something, so nothing else may run on the machine meanwhile.
    """

    name: str
    experiment: str
    what: str
    timing: bool = False


#: The parts, in the order they run: each registered experiment's ``paper_parts``, in the registry's order.
PARTS = tuple(Part(p.name, e.id, p.what, p.timing) for e, p in registry.paper_parts())


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
    """The profile's config with the schema's defaults filled in (as the workflow sees it: the base
    schema plus every experiment's settings, :func:`klvae.registry.config_schema`)."""
    from klvae.config import validate_config

    config = yaml.safe_load(Path(path).read_text())
    return validate_config(config, registry.config_schema())


def _paper_part(name: str) -> PaperPart:
    """The registry's description of part ``name`` (its targets and work).

    Raises:
        KeyError: no such part; the message lists the parts.
    """
    get_part(name)
    return next(p for _, p in registry.paper_parts() if p.name == name)


def part_targets(name: str, config: dict) -> list[str]:
    """The Snakemake targets (paths under the profile's results folder) of part ``name``.

    Each part's targets are the per-run outputs that need the trained weights, so that the part
    leaves data, not weights (its experiment's registry entry says which: E1's ``metrics.json``,
    ``history.csv``, ``latent.npz`` and ``grid.npz`` per replicate and c; E2's per (z_dim,
    strategy); E3's per model).

    Raises:
        KeyError: no such part.
    """
    return _paper_part(name).targets(config, results_dir(config["profile"]))


# ----------------------------------------------------------------------------------------------
# Estimates from this machine's benchmark files


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


def _owner(rule: str):
    """The registered experiment whose rule ``rule`` is (by its name), or None (``mnist_*``, ...)."""
    return next((e for e in registry.EXPERIMENTS if e.owns(rule)), None)


def measured_rates(results: str | Path = "results", profile: str | None = None) -> dict[str, dict]:
    """CPU-s per unit of work per rule, from every profile's benchmark files under ``results``.

    Units (:meth:`klvae.registry.Experiment.work_of_job`): per epoch and training image for the
    experiments' training rules, per image for rules the registry scales so (E3's stand-in and
    preprocessing), per job for every other rule. A training that resumed from its epoch checkpoint
    has in its benchmark file only the epochs after the resume (its log says how many): its rate is
    taken over those.

    Args:
        results: the folder of every profile's results.
        profile: where this profile's own files measured a rule, its rate comes from them alone (the
            same settings, the same threads); other rules pool every profile.

    Returns:
        ``{rule: {"rate": median CPU-s per unit, "n": jobs measured, "unit": str (``"CPU-s per
        job"``, ...), "profiles": [the profiles it comes from]}}``.
    """
    from klvae.record import job_cpu_seconds, resumed_training

    per_rule: dict[str, dict[str, list[float]]] = {}
    units = {}
    for bench in sorted(Path(results).glob("*/benchmarks")):
        config = _run_config(bench.parent)
        for tsv in sorted(bench.rglob("*.tsv")):
            rule = tsv.parent.name if tsv.parent != bench else tsv.stem
            cpu = job_cpu_seconds(tsv)
            if cpu is None:
                continue
            owner = _owner(rule)
            unit, work = owner.work_of_job(rule, config) if owner else ("job", 1.0)
            if not work:
                continue
            if owner and rule in owner.training_rules:
                after, epochs = resumed_training(bench.parent / "logs" / tsv.relative_to(bench).with_suffix(".log"))
                if after is not None and epochs and epochs > after:
                    work *= (epochs - after) / epochs
            units[rule] = f"CPU-s per {unit}"
            per_rule.setdefault(rule, {}).setdefault(bench.parent.name, []).append(cpu / work)
    out = {}
    for rule, by_profile in per_rule.items():
        used = [profile] if profile in by_profile else sorted(by_profile)
        values = sorted(v for name in used for v in by_profile[name])
        mid = len(values) // 2
        median = values[mid] if len(values) % 2 else 0.5 * (values[mid - 1] + values[mid])
        out[rule] = {"rate": median, "n": len(values), "unit": units[rule], "profiles": used}
    return out


def part_work(name: str, config: dict) -> dict[str, float]:
    """The jobs of part ``name`` per rule (its registry entry's ``work``)."""
    return _paper_part(name).work(config)


def estimate(name: str, config: dict, rates: dict[str, dict]) -> tuple[float | None, list[str]]:
    """Estimated CPU-s of part ``name`` from ``rates`` (:func:`measured_rates`): per rule, its jobs
    x the work of one job under ``config`` (:meth:`klvae.registry.Experiment.work_of_job`) x the rate.

    Returns:
        ``(cpu_s or None, rules without a measurement on this machine)``; None when no rule of
        the part was measured.
    """
    total, missing = 0.0, []
    jobs = part_work(name, config)
    for rule, n in jobs.items():
        owner = _owner(rule)
        _, work = owner.work_of_job(rule, config) if owner else ("job", 1.0)
        if rule in rates and work is not None:
            total += rates[rule]["rate"] * n * work
        else:
            missing.append(rule)
    return (total if len(missing) < len(jobs) else None), missing


def _laid_over(base: dict, changes: dict) -> dict:
    out = dict(base)
    for key, value in changes.items():
        out[key] = _laid_over(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def part_config(name: str, config: dict) -> dict:
    """The config part ``name`` runs with: the profile's ``config`` with the part's own changes
    (its registry entry's ``config``, e.g. E3's trainings on two threads) laid over it, key by
    key; ``config`` itself when the part changes nothing. ``config`` is not modified.

    Raises:
        KeyError: no such part.
    """
    changes = _paper_part(name).config
    return _laid_over(config, changes) if changes else config


def part_configfile(name: str, config: dict, profile_file: str | Path = "config/paper.yaml") -> Path:
    """The ``--configfile`` of part ``name``'s Snakemake run: ``profile_file`` itself when the part
    changes nothing; else :func:`part_config` written to ``results/<profile>/parts/<name>.config.yaml``.

    Raises:
        KeyError: no such part.
    """
    if not _paper_part(name).config:
        return Path(profile_file)
    path = Path(results_dir(config["profile"])) / "parts" / f"{name}.config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(part_config(name, config), sort_keys=False))
    return path


def part_width(name: str, config: dict) -> int:
    """How many of the machine's :data:`MACHINE_CORES` cores part ``name``'s jobs keep busy at once
    (its registry entry's ``width`` of the part's config, at most the machine's; the machine's
    when it gives none)."""
    width = _paper_part(name).width
    return MACHINE_CORES if width is None else max(1, min(MACHINE_CORES, int(width(part_config(name, config)))))


def plan(config: dict, results: str | Path = "results") -> list[dict]:
    """The plan: one row per part with its targets' count, estimated CPU-s (this machine's) and
    wall time.

    The wall time is the CPU-s over the cores the part keeps busy (:func:`part_width`): a part
    of one training on one thread takes its CPU-s in wall time, however many cores the machine
    has. A part over :data:`MAX_PART_HOURS` is flagged: its training resumes from its epoch
    checkpoint when the part is run again.

    Returns:
        ``[{"part", "experiment", "what", "timing", "targets", "cpu_s" (or None), "width" (cores
        busy), "hours" (wall, or None), "over_limit" (bool), "unmeasured" (rules)}]``.
    """
    rates = measured_rates(results, config.get("profile"))
    rows = []
    for p in PARTS:
        cpu, missing = estimate(p.name, config, rates)
        width = part_width(p.name, config)
        hours = None if cpu is None else cpu / width / 3600
        rows.append({"part": p.name, "experiment": p.experiment, "what": p.what, "timing": p.timing,
                     "targets": len(part_targets(p.name, config)), "cpu_s": cpu, "width": width, "hours": hours,
                     "over_limit": hours is not None and hours > MAX_PART_HOURS, "unmeasured": missing})
    return rows


def format_plan(rows: list[dict]) -> str:
    """The plan as text for the terminal."""
    lines = [f"{'part':<10} {'targets':>7} {'CPU-s':>8} {'cores':>5} {'h':>5}  what"]
    for r in rows:
        cpu = "?" if r["cpu_s"] is None else f"{r['cpu_s']:,.0f}"
        hours = "?" if r["hours"] is None else f"{r['hours']:.1f}"
        notes = []
        if r["timing"]:
            notes.append("timing: nothing else on the machine")
        if r["over_limit"]:
            notes.append(f"over {MAX_PART_HOURS:g} h: run it again, its training resumes from its epoch checkpoint")
        if r["unmeasured"]:
            notes.append("not measured here: " + ", ".join(r["unmeasured"]))
        lines.append(f"{r['part']:<10} {r['targets']:>7} {cpu:>8} {r['width']:>5} {hours:>5}  {r['what']}"
                     + (f" [{'; '.join(notes)}]" if notes else ""))
    known = [r for r in rows if r["cpu_s"] is not None]
    lines.append(f"total measured: {sum(r['cpu_s'] for r in known):,.0f} CPU-s, {sum(r['hours'] for r in known):.1f} h "
                 f"of wall time for {len(known)} of {len(rows)} parts on {MACHINE_CORES} cores ('cores': how many "
                 "its jobs keep busy). Estimates come from this machine's benchmark files "
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
    c = sub.add_parser("configfile", help="write the config one part runs with (the profile's, with the "
                                          "part's own changes) under results/<profile>/parts/ and print its path")
    c.add_argument("part")
    c.add_argument("--config", default="config/paper.yaml")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    try:
        if args.cmd == "plan":
            print(format_plan(plan(config, args.results)))
        elif args.cmd == "configfile":
            print(part_configfile(args.part, config, args.config))
        else:
            print("\n".join(part_targets(args.part, config)))
    except KeyError as err:
        print(f"error: {err.args[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main())
