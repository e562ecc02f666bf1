"""Part bundles: one part of a long run (:mod:`klvae.paper`) packed as data, never as weights.

A part trains its runs and runs every per-run analysis that needs the weights; this module then
packs what those jobs wrote -- test metrics, training histories, latent codes, decoded grids,
reconstructions -- with the Snakemake benchmark files of its jobs, the data's provenance, the
config as used and a *part record*, into one verified bundle (:mod:`klvae.bundle.core`'s format
and checks, at most :data:`MAX_PART_BYTES`), committed with its ``.sha256`` under
``bundles/paper/``. Models, weights and checkpoints never go in.

The part record (member ``parts/<part>/part.json``) says what ran, where and with which code:
the part and its experiment, its targets, the run record of the machine (commit, host,
hardware with the CPU's vector extensions, every package version, Keras backend:
:func:`klvae.record.run_record`), the training code's digest per rule
(:func:`klvae.code_digest.rule_params`, the same digest Snakemake's rerun trigger compares), the
CPU-seconds and wall time of its jobs (from the benchmark files), the load the machine had, and
which trainings resumed from a checkpoint. Parts of one experiment can be merged only when
their config, training code, Keras backend and package versions agree.

Command line::

    python -m klvae.bundle part PART [--results results/paper] [--out-dir bundles/paper]
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from pathlib import Path

import yaml

from klvae import registry
from klvae.bundle.core import (
    FORMAT,
    PART_KIND,
    BundleError,
    bundle_stem,
    config_differences,
    manifest_entries,
    member_kind,
    safe_member_name,
    write_archive,
)
from klvae.record import benchmark_rows, job_cpu_seconds, resumed_training

#: Size limit of a part bundle (bytes): what a repository should carry per file.
MAX_PART_BYTES = 25_000_000
#: Decoded-image arrays a part carries (the figures are drawn from them when the parts are
#: assembled); the run bundle's allow-list leaves them out because it carries the figures.
PART_ARRAYS = frozenset({"grid.npz", "recon.npz", "decoded_faces.npz"})  # E3's: one per model, e3/<kind>/
#: The rules whose code a part's numbers depend on, per experiment (their digests go in the record;
#: each experiment's ``part_rules`` in the registry, :mod:`klvae.registry`).
TRAINING_RULES = {e.id: e.part_rules for e in registry.EXPERIMENTS}


#: Decoded-image arrays a part bundle stores as 8-bit (``round(255 * p)``, uint8), by file name: the
#: arrays of each that are quantized (those a file lacks are skipped). E1's 30x30 manifolds are
#: 2.8 MB each as float32 and hardly compress; E3's per-model decoded faces (the VAE's 60 random
#: faces, the AE's 90 random points, 10 test faces and their reconstructions, 96x96x3 each) are
#: 8.8 and 12.2 MB. Their figures are 8-bit PNGs, so the figure drawn from the 8-bit arrays is the
#: same picture (klvae.figures.e1 and klvae.figures.e3 scale uint8 by 1/255).
QUANTIZED = {"grid.npz": ("images",),
             "decoded_faces.npz": ("random_faces", "ae_points", "test_faces", "reconstructions")}


def quantized(name: str, data: bytes) -> bytes:
    """A decoded-image ``.npz`` with its float arrays in [0, 1] (:data:`QUANTIZED`) stored as uint8;
    every other array unchanged. Never unpickles (``allow_pickle=False``).

    Raises:
        BundleError: an array to quantize is not float in [0, 1].
    """
    import io

    import numpy as np

    with np.load(io.BytesIO(data), allow_pickle=False) as d:
        arrays = {k: d[k] for k in d.files}
    for key in QUANTIZED[name.rsplit("/", 1)[-1]]:
        if key not in arrays:
            continue
        x = arrays[key]
        if x.dtype.kind != "f" or (x.size and (np.nanmin(x) < 0 or np.nanmax(x) > 1)):
            raise BundleError(f"{name}: {key!r} is not a float array in [0, 1]; cannot store it as 8-bit")
        arrays[key] = np.round(x * 255.0).astype(np.uint8)
    out = io.BytesIO()
    np.savez_compressed(out, **arrays)
    return out.getvalue()


def part_member_kind(rel: str) -> tuple[bool, str]:
    """The part bundle's allow-list: :func:`klvae.bundle.core.member_kind` with ``part=True`` (the
    decoded image grids of :data:`PART_ARRAYS` go in too)."""
    return member_kind(rel, part=True)


def _rule_of_benchmark(rel: str) -> str:
    """``benchmarks/e1_train/r0_c1.tsv`` -> ``e1_train``; ``benchmarks/mnist_canonical.tsv`` -> ``mnist_canonical``."""
    parts = rel.split("/")
    return parts[1] if len(parts) > 2 else Path(parts[1]).stem


def part_files(results: str | Path, experiment: str, run_dirs: list[str],
               files: list[str] = ()) -> list[tuple[str, Path]]:
    """The files of a part under ``results`` (a profile's results folder), as ``(member, path)``.

    Args:
        results: ``results/<profile>``.
        experiment: ``e1``, ``e2`` or ``e3``.
        run_dirs: the part's run folders relative to ``results`` (``e1/r0/c1``): every allowed file
            in them goes in.
        files: single files relative to ``results`` that go in when the allow-list admits them:
            the part's targets outside its run folders (a benchmark part's ``tables/*.csv``, E3's
            ``data/faces/manifest.json``).

    Returns:
        Sorted ``(member name, path)``: the run folders' files, ``files``, the benchmark files and
        phase records (``logs/**/*.phases.json``) of the experiment's rules for those runs, the
        data's JSON provenance (``data/*.json``).

    Raises:
        BundleError: a run folder is missing or has no file, one of ``files`` is missing, or a name
        a bundle cannot carry.
    """
    root = Path(results)
    picked: dict[str, Path] = {}
    for rel in files:
        if not (root / rel).is_file():
            raise BundleError(f"{root / rel}: a target of the part is missing; run the part's targets first "
                              f"(python -m klvae.paper targets <part>)")
        if part_member_kind(rel)[0]:
            picked[rel] = root / rel
    for run in run_dirs:
        folder = root / run
        files = [p for p in sorted(folder.rglob("*")) if p.is_file()] if folder.is_dir() else []
        if not files:
            raise BundleError(f"{folder}: the part's run folder is missing or empty; run the part's targets first "
                              f"(python -m klvae.paper targets <part>)")
        for p in files:
            rel = p.relative_to(root).as_posix()
            if part_member_kind(rel)[0]:
                picked[rel] = p
    run_ids = {run.split("/", 1)[1].replace("/", "_") for run in run_dirs if "/" in run}
    rules = set(TRAINING_RULES[experiment])
    for top in ("benchmarks", "logs"):
        for p in sorted((root / top).rglob("*")) if (root / top).is_dir() else []:
            rel = p.relative_to(root).as_posix()
            if not p.is_file() or (top == "logs" and not rel.endswith(".phases.json")):
                continue
            rule = _rule_of_benchmark(rel) if top == "benchmarks" else rel.split("/")[1].split(".")[0]
            stem = p.name.split(".")[0]
            per_run = len(rel.split("/")) > 2
            if rule in rules and (not per_run or stem in run_ids or rule.endswith("init_weights")):
                if part_member_kind(rel)[0]:
                    picked[rel] = p
    for p in sorted((root / "data").glob("*.json")) if (root / "data").is_dir() else []:
        picked[p.relative_to(root).as_posix()] = p
    bad = [rel for rel in picked if not safe_member_name(rel)]
    if bad:
        raise BundleError(f"names a bundle cannot carry: {', '.join(bad[:5])}")
    return sorted(picked.items())


def split_targets(experiment: str, rel_targets: list[str]) -> tuple[list[str], list[str]]:
    """A part's targets (relative to the results folder) as :func:`part_files` takes them:
    ``(run_dirs, files)``: the folders of the targets under ``<experiment>/`` (all their allowed
    files go in) and the other targets, each alone (``tables/*.csv``, ``data/**/*.json``)."""
    run_dirs = sorted({t.rsplit("/", 1)[0] for t in rel_targets if t.startswith(f"{experiment}/")})
    return run_dirs, [t for t in rel_targets if not t.startswith(f"{experiment}/")]


def job_times(files: list[tuple[str, Path]], since: float | None = None) -> dict:
    """CPU-seconds, wall time and load of the part's jobs, from their Snakemake benchmark files.

    ``since`` (seconds since the epoch): jobs whose file was written before then ran in an earlier
    part (the MNIST preparation that E1's part ran, say) and are not counted here.

    Returns:
        ``{"jobs", "cpu_s" (sum of ``cpu_time``), "job_s" (sum of ``s``), "wall_s" (first job's
        start to last job's end, from the files' times), "mean_load" (CPU-s over 2 cores x wall),
        "first_start_utc", "last_end_utc"}``; ``wall_s`` assumes each file was written when its
        job ended.
    """
    import datetime as dt

    cpu = job = 0.0
    starts, ends, n = [], [], 0
    for rel, path in files:
        if not rel.startswith("benchmarks/") or not rel.endswith(".tsv"):
            continue
        rows = benchmark_rows(path)
        if not rows or (since is not None and path.stat().st_mtime <= since):
            continue
        s, c = rows[0].get("s", math.nan), rows[0].get("cpu_time", math.nan)
        if math.isfinite(c):
            cpu += c
        if math.isfinite(s):
            job += s
            end = path.stat().st_mtime
            starts.append(end - s)
            ends.append(end)
        n += 1
    wall = (max(ends) - min(starts)) if ends else math.nan

    def iso(t):
        return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat(timespec="seconds")

    return {"jobs": n, "cpu_s": round(cpu, 1), "job_s": round(job, 1), "wall_s": round(wall, 1),
            "cores_busy": round(cpu / (2 * wall), 3) if wall and math.isfinite(wall) and wall > 0 else None,
            "first_start_utc": iso(min(starts)) if starts else None, "last_end_utc": iso(max(ends)) if ends else None}


def resumed_runs(results: str | Path, experiment: str, jobs: list[str] | None = None) -> list[dict]:
    """Trainings of ``experiment`` that resumed from an epoch checkpoint, read from their job logs.

    A job's log (``logs/<rule>/<run>.log``) holds the output of its last run only, and so does its
    Snakemake benchmark file: the CPU-seconds of the run(s) a resume continued are in no file. They
    are estimated here from the epochs: the finishing run's CPU-seconds per epoch times the epochs
    trained before the resume (its start-up and test evaluation counted in, so rather over than
    under).

    Args:
        results: the profile's results folder.
        experiment: ``e1``, ``e2`` or ``e3``.
        jobs: the part's benchmark members (``benchmarks/<rule>/<run>.tsv``, as
            :func:`part_files` picks them): only their jobs' logs are read, so a training of another
            part in the same folder is not listed. None: every training log of the experiment.

    Returns:
        ``[{"log": path relative to results, "after_epoch": int, "epochs": int (the training's
        epochs, from Keras's ``Epoch k/N`` lines; None if the log has none), "cpu_s_after" (the
        finishing run's CPU-s, from its benchmark file; None without one), "cpu_s_before_est"
        (estimated CPU-s of the epochs before the resume; None where it cannot be estimated)}]``,
        one per resume.
    """
    root = Path(results)
    wanted = None
    if jobs is not None:
        wanted = {"logs/" + j.removeprefix("benchmarks/").removesuffix(".tsv") + ".log" for j in jobs}
    out = []
    for log in sorted((root / "logs").glob(f"{experiment}_train*/*.log")) if (root / "logs").is_dir() else []:
        rel = log.relative_to(root).as_posix()
        if wanted is not None and rel not in wanted:
            continue
        after, total = resumed_training(log)
        if after is None:
            continue
        cpu = job_cpu_seconds(root / "benchmarks" / (rel.removeprefix("logs/").removesuffix(".log") + ".tsv"))
        cpu = None if cpu is None else round(cpu, 1)
        est = None
        if cpu is not None and total and total > after:
            est = round(cpu * after / (total - after), 1)
        out.append({"log": rel, "after_epoch": after, "epochs": total, "cpu_s_after": cpu,
                    "cpu_s_before_est": est})
    return out


def code_digests(experiment: str, repo: str | Path) -> dict[str, str]:
    """``{rule: digest}`` of the experiment's training rules, as their ``params.code`` (the digest
    of the rule's function's modules and of ``workflow/scripts/call.py``)."""
    from klvae.code_digest import rule_params

    repo = Path(repo)
    text = "\n".join(p.read_text() for p in sorted((repo / "workflow" / "rules").glob("*.smk")))
    out = {}
    for rule in TRAINING_RULES[experiment]:
        m = re.search(rf"^rule {rule}:.*?library_call\(\s*\"([^\"]+)\"", text, flags=re.S | re.M)
        if m:
            out[rule] = rule_params(m.group(1), repo / "src", repo / "workflow" / "scripts" / "call.py")["code"]
    return out


def earlier_parts_made(folder: str | Path, part: str) -> float | None:
    """When the newest other part bundle in ``folder`` was made (its manifest's ``created_utc``, as
    seconds since the epoch), or None: jobs finished before then belong to earlier parts."""
    import datetime as dt

    from klvae.bundle.core import read_bundle

    made = []
    for path in sorted(Path(folder).glob("*.tar.gz")) if Path(folder).is_dir() else []:
        manifest = read_bundle(path)[0]
        if manifest.get("kind") == PART_KIND and manifest.get("part") != part and manifest.get("created_utc"):
            made.append(dt.datetime.fromisoformat(manifest["created_utc"].replace("Z", "+00:00")).timestamp())
    return max(made) if made else None


def create_part_bundle(part: str, results: str | Path = "results/paper", out_dir: str | Path = "bundles/paper",
                       config_path: str | Path = "config/paper.yaml", backend_facts: str | Path | None = None,
                       max_bytes: int = MAX_PART_BYTES, created_utc: str | None = None) -> dict:
    """Pack part ``part`` of the run in ``results`` as ``<out_dir>/klvae-paper-part-<part>-<commit>.tar.gz``.

    Args:
        part: a part of :data:`klvae.paper.PARTS`.
        results: the profile's results folder.
        out_dir: where the archive and its ``.sha256`` go.
        config_path: the profile's config (validated, defaults filled, and packed as used).
        backend_facts: the Keras backend facts of the environment that ran the part
            (:func:`klvae.backend.write_facts`'s JSON); made now, in this environment, when None.
        max_bytes: size limit (bytes).
        created_utc: the creation time to record (default now).

    Returns:
        :func:`klvae.bundle.core.write_archive`'s dict plus ``"record"`` (the part record).

    Raises:
        KeyError: no such part. BundleError: a target is missing (the part did not finish), or
        the archive is over ``max_bytes``.
    """
    from klvae import paper
    from klvae.record import git_commit, host, run_record, short_commit, utc_now

    repo = Path(__file__).resolve().parents[3]
    p = paper.get_part(part)
    config = paper.part_config(part, paper.load_config(config_path))  # as the part ran it
    targets = paper.part_targets(part, config)
    from klvae.layout import results_dir

    prefix = f"{results_dir(config['profile'])}/"  # the targets' folder; the files are looked for in ``results``
    rel_targets = [t.removeprefix(prefix) for t in targets]
    missing = [t for t in rel_targets if not (Path(results) / t).is_file()]
    if missing:
        raise BundleError(f"part {part} is not finished: {len(missing)} of {len(targets)} targets missing "
                          f"({', '.join(missing[:4])}{', ...' if len(missing) > 4 else ''}); run "
                          f"`make paper-part PART={part}` again (trainings resume from their checkpoints)")
    files = part_files(results, p.experiment, *split_targets(p.experiment, rel_targets))
    if backend_facts is None:
        from klvae.backend import backend_facts as facts_now

        facts = facts_now()
    else:
        facts = json.loads(Path(backend_facts).read_text())
    record = {
        "part": part, "experiment": p.experiment, "timing": p.timing, "targets": rel_targets,
        "threads": config["threads"]["train"], "run": run_record(config, repo, facts),
        "training_code": code_digests(p.experiment, repo),
        "times": job_times(files, earlier_parts_made(out_dir, part)),
        "resumed": resumed_runs(results, p.experiment, [rel for rel, _ in files if rel.startswith("benchmarks/")]),
    }
    if record["resumed"]:
        # the wall time spans the pause between the runs and the benchmark files count only the
        # finishing run: the share of cores kept busy is not measured across a resume
        record["times"]["cores_busy"] = None
    extra = {f"parts/{part}/part.json": (json.dumps(record, indent=1) + "\n").encode(),
             f"parts/{part}/config.yaml": yaml.safe_dump(config, sort_keys=False).encode()}
    small = {rel: quantized(rel, path.read_bytes()) for rel, path in files if rel.rsplit("/", 1)[-1] in QUANTIZED}
    record["quantized"] = {"arrays": sorted(small), "how": "round(255 * p) as uint8 (figures are 8-bit PNGs)"}
    extra[f"parts/{part}/part.json"] = (json.dumps(record, indent=1) + "\n").encode()
    entries = [{"path": rel, "size": len(small[rel]), "sha256": hashlib.sha256(small[rel]).hexdigest()} if rel in small
               else manifest_entries([(rel, path)])[0] for rel, path in files]
    for name, data in extra.items():
        entries.append({"path": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    commit = short_commit(record["run"]["git_commit"])
    archive = Path(out_dir) / f"klvae-{config['profile']}-part-{part}-{commit}.tar.gz"
    manifest = {
        "format": FORMAT, "kind": PART_KIND, "name": bundle_stem(archive), "part": part,
        "created_utc": created_utc or utc_now(), "created_host": host(), "created_commit": git_commit(repo),
        "profile": config["profile"], "keras_backend": facts.get("keras_backend"),
        "run_commit": record["run"]["git_commit"], "run_host": record["run"]["host"],
        "run_recorded_utc": record["run"]["recorded_utc"], "run_record": f"parts/{part}/part.json",
        "config": f"parts/{part}/config.yaml", "complete": True, "missing": [], "experiments": [p.experiment],
        "members_total_bytes": sum(e["size"] for e in entries), "members": entries,
    }
    items = [(rel, small.get(rel, path), int(path.stat().st_mtime)) for rel, path in files]
    items += [(name, data, int(time.time())) for name, data in extra.items()]
    result = write_archive(archive, manifest, items, max_bytes)
    return {**result, "record": record}


# ----------------------------------------------------------------------------------------------
# Assembly: an experiment's tables and figures from its parts' data


def part_bundles(experiment: str, folder: str | Path = "bundles/paper") -> list[tuple[Path, dict, dict, dict]]:
    """The verified part bundles of ``experiment`` in ``folder``: ``(archive, manifest, contents, record)``.

    Raises:
        BundleError: a part bundle in ``folder`` fails verification.
    """
    from klvae.bundle.core import read_bundle

    out = []
    for path in sorted(Path(folder).glob("*.tar.gz")):
        manifest, contents, _ = read_bundle(path)
        if manifest.get("kind") == PART_KIND and manifest.get("experiments") == [experiment]:
            record = json.loads(contents[manifest["run_record"]])
            out.append((path, manifest, contents, record))
    return out


def check_parts(experiment: str, parts: list, config: dict) -> None:
    """Refuse parts that are not one run of ``experiment``.

    Every part of :data:`klvae.paper.PARTS` for the experiment must be there, once; each part's
    config must equal ``config`` (the profile's, defaults filled) key by key, with the part's own
    changes (:func:`klvae.paper.part_config`: E3's trainings on two threads); and all parts must
    share the training code's digests, the Keras backend, the package versions and the kind of
    accelerator (a CPU part and a GPU part are different runs).

    Raises:
        BundleError: naming the part, the key and both values.
    """
    from klvae import paper

    wanted = [p.name for p in paper.PARTS if p.experiment == experiment]
    have = [m["part"] for _, m, _, _ in parts]
    missing = [w for w in wanted if w not in have]
    if missing:
        raise BundleError(f"{experiment}: parts {', '.join(missing)} are not in (have: {', '.join(have) or 'none'}); "
                          f"run `make paper-part PART=<part>` for each first")
    twice = sorted({h for h in have if have.count(h) > 1})
    if twice:
        raise BundleError(f"{experiment}: part {', '.join(twice)} is there twice; keep one bundle per part")
    first = parts[0]
    for path, manifest, contents, record in parts:
        used = yaml.safe_load(contents[manifest["config"]])
        diff = config_differences(paper.part_config(manifest["part"], config), used)
        if diff:
            raise BundleError(f"{path.name}: its config differs from the profile's ({len(diff)} keys): "
                              + "; ".join(diff[:5]))
        for what, get in (("training code", lambda r: r["training_code"]),
                          ("Keras backend", lambda r: r["run"]["keras_backend"]),
                          ("package versions", lambda r: r["run"]["versions"]),
                          ("accelerator", lambda r: r["run"]["hardware"].get("GPU"))):
            ours, theirs = get(record), get(first[3])
            if ours != theirs:
                diff = config_differences({"v": theirs}, {"v": ours}) if isinstance(ours, dict) else \
                    [f"{theirs!r} vs {ours!r}"]
                raise BundleError(f"{path.name}: its {what} {'differ' if what.endswith('s') else 'differs'} from "
                                  f"{first[0].name}'s: "
                                  + "; ".join(d.removeprefix("v.") for d in diff[:5])
                                  + ". The parts of one experiment must be one version of the code on one kind "
                                    "of machine: run the differing part again")


def assembly_rules(experiment: str, rules: list[str]) -> list[str]:
    """The rules an assembly may run: the experiment's table and figure rules and its target
    (``<experiment>_outputs``); none that trains, evaluates a model or times anything (those are
    the parts' own: :data:`TRAINING_RULES`, ``*_train``, ``*_post_log``, ``*_timing``,
    ``*_equivalence``, ``*_compatibility``, ``*_bench_*``)."""
    parts_own = set(TRAINING_RULES[experiment])
    return sorted(r for r in rules if r.startswith(f"{experiment}_") and r not in parts_own and "_bench_" not in r
                  and not r.endswith(("_train", "_post_log", "_timing", "_equivalence", "_compatibility")))


def assemble(experiment: str, parts_dir: str | Path = "bundles/paper", results: str | Path = "results/paper",
             config_path: str | Path = "config/paper.yaml", cores: int | str = "all") -> dict:
    """Build ``experiment``'s tables and figures from its part bundles, without weights.

    The parts are verified and checked (:func:`check_parts`), their members written into
    ``results`` (the profile's folder), and Snakemake builds ``<experiment>_outputs`` with only
    :func:`assembly_rules` allowed, so no training, evaluation or timing job can run: every
    table and figure that spans runs is made from the parts' data.

    Returns:
        ``{"experiment", "parts" (names), "allowed_rules", "records" (the parts' records)}``.

    Raises:
        BundleError: a part is missing, refused or differs (:func:`check_parts`).
        subprocess.CalledProcessError: Snakemake failed (its output is on the console).
    """
    import subprocess
    import sys

    from klvae import paper
    from klvae.bundle.core import extract_bundle

    config = paper.load_config(config_path)
    parts = part_bundles(experiment, parts_dir)
    check_parts(experiment, parts, config)
    for path, _, _, _ in parts:
        extract_bundle(path, results, merge=True)
    repo = Path(__file__).resolve().parents[3]
    snakemake = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "workflow" / "Snakefile"),
                 "--configfile", str(config_path), "--cores", str(cores)]
    listed = subprocess.run(snakemake + ["--list-rules"], check=True, capture_output=True, text=True).stdout
    rules = [line.split()[0] for line in listed.splitlines() if line.strip()]
    allowed = assembly_rules(experiment, rules)
    subprocess.run(snakemake + [f"{experiment}_outputs", "--allowed-rules", *allowed], check=True)
    return {"experiment": experiment, "parts": [m["part"] for _, m, _, _ in parts], "allowed_rules": allowed,
            "records": [r for _, _, _, r in parts]}


# ----------------------------------------------------------------------------------------------
# The assembled experiment as a report bundle


def part_summary(record: dict) -> dict:
    """One part's line of the provenance: ``{"part", "commit", "host", "cpu", "logical_cpus",
    "gpu", "recorded_utc", "first_start_utc", "last_end_utc", "jobs", "cpu_s" (CPU-seconds of its
    jobs, from their benchmark files), "wall_s" (first job's start to last job's end, s),
    "cores_busy" (cpu_s over 2 x wall_s; None for a part with a resumed training, whose wall time
    spans the pause), "resumed" (trainings resumed from a checkpoint), "cpu_s_before_resume_est"
    (the estimated CPU-s of their epochs before the resume, :func:`resumed_runs`, which no
    benchmark file counts; 0 without a resume, None where a record cannot say),
    "timing" (a timing part, run alone), "threads" (its trainings' threads, config
    ``threads.train`` as the part ran it; None where the record does not say)}``, read from its
    part record."""
    run, times = record["run"], record["times"]
    hw = run.get("hardware") or {}
    return {"part": record["part"], "commit": run.get("git_commit"), "host": run.get("host"),
            "cpu": hw.get("CPU"), "logical_cpus": hw.get("logical CPUs"), "gpu": hw.get("GPU"),
            "recorded_utc": run.get("recorded_utc"), "first_start_utc": times.get("first_start_utc"),
            "last_end_utc": times.get("last_end_utc"), "jobs": times.get("jobs"), "cpu_s": times.get("cpu_s"),
            "wall_s": times.get("wall_s"), "cores_busy": times.get("cores_busy"),
            "resumed": len(record.get("resumed") or []), "cpu_s_before_resume_est": _before_resume(record),
            "timing": bool(record.get("timing")),
            "threads": record.get("threads")}


def _before_resume(record: dict) -> float | None:
    """The estimated CPU-s of a part's trainings before their resume (0 without a resume; None when
    an entry has no estimate, as in records packed before they carried one)."""
    resumed = record.get("resumed") or []
    est = [r.get("cpu_s_before_est") if isinstance(r, dict) else None for r in resumed]
    return None if any(e is None for e in est) else round(sum(est), 1)


def experiment_run_record(experiment: str, records: list[dict], repo: str | Path) -> dict:
    """The run record of an experiment assembled from its parts (:func:`assemble`).

    The environment (profile, seed, Keras backend, hardware, package versions, Python, packages)
    is the parts' -- :func:`check_parts` made sure they share it; ``git_commit``, ``host`` and
    ``recorded_utc`` are the assembly's (the code that built the tables and figures); ``parts``
    lists every part (:func:`part_summary`) with its own commit, host, CPU, dates and CPU-seconds,
    ``training_code`` the digests the parts share, and ``assembled`` says it was assembled.
    """
    from klvae.record import git_commit, host, utc_now

    first = records[0]["run"]
    return {**first, "recorded_utc": utc_now(), "host": host(), "git_commit": git_commit(repo),
            "assembled": {"experiment": experiment, "from_parts": [r["part"] for r in records]},
            "training_code": records[0]["training_code"], "parts": [part_summary(r) for r in records]}


def create_experiment_bundle(experiment: str, parts_dir: str | Path = "bundles/paper",
                             results: str | Path = "results/paper", out_dir: str | Path = "bundles",
                             config_path: str | Path = "config/paper.yaml", created_utc: str | None = None,
                             max_bytes: int = MAX_PART_BYTES) -> dict:
    """Pack an experiment assembled from its parts (:func:`assemble`, run first) as a report bundle.

    Its run record (:func:`experiment_run_record`) and the profile's config are written to
    ``results/report/generated/`` and the experiment's files and the shared ones are packed
    (:func:`klvae.bundle.core.create_bundle` with ``experiments``): the paper run's data, tables
    and figures, never weights. The bundle lists the other experiments as missing until it is
    merged with their bundles (``python -m klvae.bundle merge``).

    Returns:
        :func:`klvae.bundle.core.create_bundle`'s dict plus ``"record"`` (the run record).

    Raises:
        BundleError: the parts are refused (:func:`check_parts`), an assembled table of the
            experiment is missing (run ``python -m klvae.bundle assemble`` first), or the archive
            is over ``max_bytes``.
    """
    from klvae import paper
    from klvae.bundle.core import RUN_CONFIG, RUN_RECORD, create_bundle

    repo = Path(__file__).resolve().parents[3]
    config = paper.load_config(config_path)
    parts = part_bundles(experiment, parts_dir)
    check_parts(experiment, parts, config)
    root = Path(results)
    tables = [f"tables/{t}.csv" for t in registry.get(experiment).tables]
    absent = [t for t in tables if not (root / t).is_file()]
    if absent:
        raise BundleError(f"{root}: {experiment} is not assembled ({', '.join(absent[:4])} missing); run "
                          f"`python -m klvae.bundle assemble {experiment}` first")
    # a part packed before its record said its threads: the config it packed says them
    records = [{"threads": (yaml.safe_load(c[m["config"]]).get("threads") or {}).get("train"), **r}
               for _, m, c, r in parts]
    record = experiment_run_record(experiment, records, repo)
    (root / RUN_RECORD).parent.mkdir(parents=True, exist_ok=True)
    (root / RUN_RECORD).write_text(json.dumps(record, indent=1) + "\n")
    (root / RUN_CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    result = create_bundle(root, out_dir=out_dir, created_utc=created_utc, max_bytes=max_bytes,
                           experiments=[experiment])
    return {**result, "record": record}


__all__ = ["MAX_PART_BYTES", "PART_ARRAYS", "part_member_kind", "part_files", "split_targets", "job_times",
           "resumed_runs", "code_digests", "earlier_parts_made", "create_part_bundle", "config_differences",
           "part_bundles", "check_parts",
           "assembly_rules", "assemble", "part_summary", "experiment_run_record", "create_experiment_bundle"]
