"""Results bundles: the small outputs of a finished run in one verifiable archive.

A *bundle* is one ``tar.gz`` (at most :data:`MAX_BUNDLE_BYTES`) that carries everything the
report needs and nothing that needs a deep-learning framework: tables, metrics, histories,
latent summaries (``.npz``), figures, benchmarks, manifests and provenance records, the config as
used and the run record (Keras backend, hardware, host, date, git commit, every installed
package; :func:`klvae.record.run_record`). It never carries models (``.keras``,
``*.weights.*``, ``.h5``), checkpoints (``*.ckpt/``), raw data or data arrays (``.npy``, anything
under the run's ``data/`` but its JSON provenance and manifests), nor decoded images that only
feed a figure (the E1 manifold's ``grid.npz``, E3's ``decoded_faces.npz``; their figures are
packed).

What goes in is decided by an allow-list of folders and file extensions (:func:`member_kind`),
never by listing files. Members are named relative to the run's results folder,
``results/<profile>/`` (``e1/r0/c0/metrics.json``, ``tables/e1_losses.csv``,
``benchmarks/e1_train/r0_c0.tsv``); a bundle made before each profile had its own folder keeps its
benchmark files under ``benchmarks/<profile>/`` (:func:`benchmarks_folder`) and still verifies and
renders. The archive's first member, ``MANIFEST.json``, lists every other
member with its size (bytes) and SHA-256, the experiments the run holds (``experiments``:
:func:`experiments_in`) and, per experiment, the run's commit, backend, host, hardware and config
(``provenance``: :func:`provenance_entries`); :func:`read_bundle` checks every member against it
*before* anything is extracted or parsed and refuses, naming the file: a changed byte, a
member that is not in the manifest or is missing, a duplicate, a symlink or any other
non-regular entry, an absolute path or ``..``, a name outside the allow-list.

Make one with ``make bundle`` (:func:`create_bundle`; ``results/<profile>/bundle/``); render the
report from one anywhere with
``make report BUNDLE=<archive>`` (the Snakefile's bundle mode, ``workflow/rules/bundle.smk``:
:func:`extract_bundle` then rule ``report_render``; nothing is trained or recomputed).

Command line (``create`` is the default command)::

    python -m klvae.bundle create [--results results/<profile>] [--out-dir DIR] [--out FILE|DIR] [--partial]
    python -m klvae.bundle verify ARCHIVE
    python -m klvae.bundle extract ARCHIVE --into DIR
    python -m klvae.bundle diff A B [--csv FILE]        # every number of two bundles side by side
    python -m klvae.bundle merge OUT A B [C ...]        # per-experiment bundles joined into one
    python -m klvae.bundle part PART                    # a paper run's part (klvae.bundle.part)
    python -m klvae.bundle assemble EXPERIMENT          # its tables and figures from its parts
    python -m klvae.bundle experiment EXPERIMENT        # the assembled experiment as a bundle

``diff`` and ``merge`` live in :mod:`klvae.bundle.compare`, the command line in
:mod:`klvae.bundle.__main__`.

Sizes are in bytes (MB = 10**6 bytes in messages). Errors are :class:`BundleError` (the CLI
prints them and exits with status 1).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import time
import zlib
from pathlib import Path, PurePosixPath

import yaml

from klvae import registry
from klvae.legacy import migrate_csv

#: Name of the manifest, the archive's first member.
MANIFEST_NAME = "MANIFEST.json"
#: Manifest format tag (bumped when the layout changes). 2: data only (no report fragments; the
#: report is remade from the data by today's code). Bundles of format 1 still render: their
#: fragments are ignored.
FORMAT = "klvae-bundle/2"
READABLE_FORMATS = ("klvae-bundle/1", FORMAT)
#: Largest archive :func:`create_bundle` writes and :func:`read_bundle` accepts, in bytes (64 MB).
MAX_BUNDLE_BYTES = 64_000_000
#: Largest total of the members' sizes :func:`read_bundle` accepts (bytes), against gzip bombs.
MAX_UNPACKED_BYTES = 1024 * 2**20
#: Largest manifest accepted (bytes).
MAX_MANIFEST_BYTES = 16 * 2**20
#: Where a bundle is rendered: ``<RENDER_ROOT>/<bundle stem>/`` (relative to the working folder).
RENDER_ROOT = "results/from_bundle"

#: File extensions a bundle may carry (lower case).
EXTENSIONS = frozenset({".csv", ".tsv", ".json", ".npz", ".png", ".md", ".yml", ".yaml", ".txt"})
#: Extensions that are never packed, with the reason shown in ``make bundle``'s summary.
EXCLUDED_EXTENSIONS = {".keras": "model", ".h5": "model/weights", ".hdf5": "model/weights", ".npy": "data array",
                       ".ckpt": "checkpoint", ".pkl": "pickle", ".pickle": "pickle", ".whl": "raw data",
                       ".zip": "raw data", ".gz": "raw data", ".jpg": "image data", ".jpeg": "image data"}
#: Arrays of decoded images that only feed a figure (the figure is packed instead): the E1
#: manifold's 30x30 digits (2.8 MB each) and E3's decoded faces (``e3/<vae|ae>/decoded_faces.npz``,
#: 8.8 and 12.2 MB of float32).
IMAGE_GRIDS = frozenset({"grid.npz", "decoded_faces.npz"})
#: Top-level folders of a results folder that are never packed (other bundles and their renders).
EXCLUDED_TOP = {"bundle": "another bundle", "from_bundle": "a bundle's render",
                "shipped": "a shipped run's data, extracted for the scorecard (klvae.report.shipped)"}
#: Where the run's own record and config are inside a bundle (written by rule report_methods).
RUN_RECORD = "report/generated/run.json"
#: The manifest's ``kind`` of a part bundle (:mod:`klvae.bundle.part`; its allow-list also admits
#: the decoded image grids). Run bundles have no ``kind``.
PART_KIND = "paper-part"
#: Files the report rules write that a bundle also carries (the scorecard, for `klvae.bundle diff`);
#: in bundle mode they are remade, not extracted.
REPORT_PRODUCTS = frozenset({"tables/scorecard.csv"})
RUN_CONFIG = "report/generated/config.yaml"
#: The experiments a bundle can hold, in the report's order (the registry's ids, :mod:`klvae.registry`).
EXPERIMENTS = tuple(registry.ids())
#: Folders of a run's ``data/`` that belong to one experiment (each experiment's ``data_folders``:
#: the faces are E3's; MNIST is shared).
DATA_OWNERS = {folder: e.id for e in registry.EXPERIMENTS for folder in e.data_folders}

_SAFE_PART = re.compile(r"[A-Za-z0-9_+=@,-][A-Za-z0-9._+=@,-]*")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class BundleError(RuntimeError):
    """A bundle could not be made, or one was refused; the message names the archive and the file."""


class BundleTooLarge(BundleError):
    """The archive would exceed the size limit; the message lists the largest files."""


# ----------------------------------------------------------------------------------------------
# What goes in


def safe_member_name(name: str) -> bool:
    """Whether ``name`` is a relative POSIX path of plain parts (letters, digits, ``._+=@,-``; no
    part empty, hidden, ``.`` or ``..``; no absolute path, backslash or NUL)."""
    if not isinstance(name, str) or not name or len(name) > 400 or name.startswith("/"):
        return False
    parts = name.split("/")
    return all(_SAFE_PART.fullmatch(p) and p not in (".", "..") for p in parts)


def member_kind(rel: str, part: bool = False) -> tuple[bool, str]:
    """The allow-list: whether the file at ``rel`` (relative to the run's results folder
    ``results/<profile>/``, POSIX) goes in a bundle (``part``: a part bundle of a long run,
    :mod:`klvae.bundle.part`, which also carries the decoded image grids its figures are drawn from).

    Rules, first match wins:

    1. out: hidden/temporary files, anything in a ``*.ckpt/`` folder (checkpoints), models and
       weights (``.keras``, ``.h5``, ``*.weights.*``), data arrays (``.npy``), pickles, raw data
       (``.whl``, ``.zip``, ``.gz``, JPEGs) and decoded image grids (:data:`IMAGE_GRIDS`: the
       manifold's 30x30 decoded digits, 2.8 MB each, and E3's decoded faces; their figures
       are in the bundle);
    2. by folder: ``bundle/``, ``from_bundle/`` and ``shipped/`` out (bundles, their renders, a
       shipped run's data extracted for the scorecard);
       ``data/`` only its JSON provenance records and manifests; ``figures/study/`` out (the report
       draws it from the committed backend-study bundle); ``report/`` only the run record and
       the config (``generated/run.json``, ``config.yaml``: fragments, HTML and PDF are remade
       from the data by today's code);
    3. everything else in when its extension is in :data:`EXTENSIONS` (tables, metrics,
       histories, latent summaries, figures, benchmark files, fragments, variables).

    Returns:
        ``(included, category)``: what the file is (``table``, ``figure``, ``benchmark``,
        ``report fragment``, ``provenance``, ``run output``) or why it is left out.
    """
    p = PurePosixPath(rel)
    parts = p.parts
    name = p.name.lower()
    suffix = p.suffix.lower()
    if not parts or rel == MANIFEST_NAME:
        return False, "reserved name"
    if any(part.startswith(".") for part in parts):
        return False, "hidden or temporary file"
    if any(part.lower().endswith(".ckpt") for part in parts[:-1]):
        return False, "checkpoint"
    if suffix in EXCLUDED_EXTENSIONS:
        return False, EXCLUDED_EXTENSIONS[suffix]
    if ".weights." in name:
        return False, "model/weights"
    if name in IMAGE_GRIDS and not part:
        return False, "decoded image grid"
    top = parts[0]
    if top in EXCLUDED_TOP:
        return False, EXCLUDED_TOP[top]
    if top == "data" and suffix != ".json":
        return False, "data"
    if parts[:2] == ("figures", "study"):  # drawn by rule report_study from the study bundle, not this run's data
        return False, "backend-study figure (remade from the study bundle)"
    if top == "report" and rel not in (RUN_RECORD, RUN_CONFIG):
        return False, ("report fragment (remade from the data)" if len(parts) > 2 and parts[1] == "generated"
                       else "rendered report")
    if suffix not in EXTENSIONS:
        return False, f"extension {suffix or '(none)'} not allowed"
    return True, {"data": "provenance", "report": "report fragment", "benchmarks": "benchmark", "tables": "table",
                  "figures": "figure"}.get(top, "run output")


def select_files(results: str | Path) -> tuple[list[tuple[str, Path]], dict[str, int]]:
    """Walk ``results`` and apply :func:`member_kind` to every regular file (symlinks are skipped).

    Returns:
        ``(included, excluded)``: ``included`` is a sorted list of ``(name in the bundle, path)``;
        ``excluded`` counts the files left out per reason.

    Raises:
        BundleError: an included file has a name :func:`safe_member_name` refuses.
    """
    root = Path(results)
    included: list[tuple[str, Path]] = []
    excluded: dict[str, int] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fname in sorted(filenames):
            path = Path(dirpath) / fname
            rel = path.relative_to(root).as_posix()
            if path.is_symlink() or not path.is_file():
                excluded["symlink or special file"] = excluded.get("symlink or special file", 0) + 1
                continue
            ok, why = member_kind(rel)
            if not ok:
                excluded[why] = excluded.get(why, 0) + 1
                continue
            if not safe_member_name(rel):
                raise BundleError(f"{path}: a file name a bundle cannot carry (letters, digits and ._+=@,- only); "
                                  f"rename it or remove it from {root}/")
            included.append((rel, path))
    return sorted(included), excluded


def sha256_file(path: str | Path, chunk: int = 2**20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def manifest_entries(files: list[tuple[str, Path]]) -> list[dict]:
    """``[{"path", "size" (bytes), "sha256"}]`` for ``(name, path)`` pairs, in the given order."""
    return [{"path": rel, "size": path.stat().st_size, "sha256": sha256_file(path)} for rel, path in files]


def experiment_of(rel: str) -> str | None:
    """The registered experiment (``e1``, ...) a bundle member belongs to, or None for a shared file.

    A member belongs to ``eN`` when it lies under ``eN/``, is ``tables/eN_*`` or ``figures/eN/...``,
    a report fragment or variables file ``report/generated/eN.*``/``eN_*``, a benchmark of a rule
    ``eN_*`` (``benchmarks/eN_<rule>/...`` or ``benchmarks/eN_<rule>.tsv``), or a record of the data
    folders it owns (:data:`DATA_OWNERS`: E3's faces). Names of a bundle made before each profile had its own results
    folder (``benchmarks/<profile>/...``) are read through :func:`current_member_name` first.
    Shared: the run record, the config, the MNIST provenance, the scorecard, the methods fragments.
    """
    parts = PurePosixPath(rel).parts
    if not parts:
        return None

    def own(name: str) -> str | None:
        found = registry.owner(name)
        return found.id if found else None

    top = parts[0]
    if top in EXPERIMENTS:
        return top
    if top in ("tables", "figures") and len(parts) > 1:
        return own(parts[1])
    if top == "report" and len(parts) > 2 and parts[1] == "generated":
        return own(parts[2])
    if top == "benchmarks" and len(parts) > 1:
        return own(PurePosixPath(parts[1]).stem)
    if top == "data" and len(parts) > 2:
        return DATA_OWNERS.get(parts[1])
    return None


def _flatten(tree, prefix: str = "") -> dict[str, object]:
    if isinstance(tree, dict):
        out: dict[str, object] = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix.rstrip("."): tree}


def config_differences(a: dict, b: dict) -> list[str]:
    """``"key: A vs B"`` for every dotted key whose value differs between two configs (missing = None)."""
    fa, fb = _flatten(a), _flatten(b)
    return [f"{k}: {fa.get(k)!r} vs {fb.get(k)!r}" for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]


def benchmarks_folder(paths, profile: str | None) -> str:
    """Where a bundle keeps the run's benchmark files: ``benchmarks``, or ``benchmarks/<profile>`` in
    a bundle made before each profile had its own results folder (``results/benchmarks/<profile>/``).

    Args:
        paths: the bundle's member names.
        profile: the run's profile (its manifest's or config's).
    """
    old = f"benchmarks/{profile}/"
    return old.rstrip("/") if profile and any(str(p).startswith(old) for p in paths) else "benchmarks"


def current_member_name(rel: str, profile: str | None) -> str:
    """A member's name in today's layout: ``benchmarks/<profile>/X`` (a bundle made before each
    profile had its own results folder) becomes ``benchmarks/X``; any other name is unchanged."""
    old = f"benchmarks/{profile}/"
    return f"benchmarks/{rel[len(old):]}" if profile and rel.startswith(old) else rel


def experiments_in(paths) -> list[str]:
    """Which experiments a run's outputs hold: ``eN`` where a member lies under ``eN/`` or is a
    table ``tables/eN_*`` (report fragments, figures and benchmarks alone do not count).

    Args:
        paths: member names (relative to the run's results folder, POSIX).

    Returns:
        The experiments, in :data:`EXPERIMENTS` order (``[]`` when none ran).
    """
    found = set()
    for rel in paths:
        parts = PurePosixPath(rel).parts
        if len(parts) > 1 and parts[0] in EXPERIMENTS:
            found.add(parts[0])
        elif len(parts) == 2 and parts[0] == "tables":
            found.update(e for e in EXPERIMENTS if parts[1].startswith(f"{e}_"))
    return [e for e in EXPERIMENTS if e in found]


def bundle_name(run: dict, experiments=None) -> str:
    """``klvae-<profile>-<backend>-<short commit>`` from a run record (the archive's stem).

    ``keras_backend`` and ``git_commit`` may be lists (a merged bundle's runs): their distinct
    values are joined by ``+``. When ``experiments`` is given and is not all of
    :data:`EXPERIMENTS`, ``-e1+e2`` (the experiments held) is appended.
    """
    from klvae.record import short_commit

    def joined(value, default: str, form=str) -> str:
        values = value if isinstance(value, (list, tuple)) else [value]
        return "+".join(dict.fromkeys(form(str(v)) for v in values if v is not None)) or default

    parts = ["klvae", str(run.get("profile", "unknown")), joined(run.get("keras_backend"), "unknown"),
             joined(run.get("git_commit", ""), "nogit", short_commit)]
    if experiments is not None and list(experiments) != list(EXPERIMENTS):
        parts.append("+".join(experiments) or "none")
    return "-".join(re.sub(r"[^A-Za-z0-9_.+-]", "_", p) for p in parts)


def bundle_stem(archive: str | Path) -> str:
    """The archive's file name without ``.tar.gz``/``.tgz`` (names its render folder)."""
    name = Path(archive).name
    for ext in (".tar.gz", ".tgz"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def render_dir(archive: str | Path) -> str:
    """Folder (relative to the working folder) a bundle is extracted to and rendered in."""
    return f"{RENDER_ROOT}/{bundle_stem(archive)}"


def _largest(entries: list[dict], n: int = 10) -> str:
    top = sorted(entries, key=lambda e: -e["size"])[:n]
    return "\n".join(f"  {e['size'] / 1e6:10.2f} MB  {e['path']}" for e in top)


def _tarinfo(name: str, size: int, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.type = size, mtime, 0o644, tarfile.REGTYPE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


# ----------------------------------------------------------------------------------------------
# Making a bundle


def required_files(sources: str | Path | None = None) -> list[str]:
    """What a bundle must hold to be rendered (names relative to the run's results folder): the run record and
    the config as used. Rule ``run_record`` writes both once every result of the run is there, so
    their presence also says the run finished; the report's fragments are remade from the data.

    Args:
        sources: unused (kept for callers that name the ``report/`` folder).
    """
    return [RUN_CONFIG, RUN_RECORD]


def is_data_member(rel: str) -> bool:
    """Whether a bundle member is data the report is made from (extracted in bundle mode), not a
    product of the report rules themselves (fragments of older bundles, :data:`REPORT_PRODUCTS`),
    which are remade by today's code."""
    if rel in REPORT_PRODUCTS:
        return False
    return not (rel.startswith("report/") and rel not in (RUN_RECORD, RUN_CONFIG))


def missing_files(results: str | Path, sources: str | Path | None = None) -> list[str]:
    """The :func:`required_files` that ``results`` lacks (empty for a finished run)."""
    return [rel for rel in required_files(sources) if not (Path(results) / rel).is_file()]


def create_bundle(results: str | Path = "results/default", out: str | Path | None = None,
                  out_dir: str | Path | None = None, max_bytes: int = MAX_BUNDLE_BYTES,
                  created_utc: str | None = None, partial: bool = False, experiments=None) -> dict:
    """Pack the small outputs of the finished run in ``results`` into one ``tar.gz``.

    A run is finished when it has its run record and config (:func:`required_files`; rule
    ``run_record`` writes them once every result is there). A bundle holds data only: the
    report's fragments, HTML and PDF are remade from it by today's code (bundle mode).

    Args:
        results: the run's results folder, ``results/<profile>`` (members are named relative to it).
        out: archive path; default ``<out_dir>/klvae-<profile>-<backend>-<shortcommit>.tar.gz``
            (:func:`bundle_name`, from the run record).
        out_dir: folder of the default archive path (default ``<results>/bundle``, which is never
            packed itself).
        max_bytes: size limit of the archive in bytes (default 64 MB).
        created_utc: the creation time to record (ISO 8601, UTC; default now).
        partial: pack an unfinished run too (e.g. one stopped at a batch job's time limit): the
            manifest says ``"complete": false`` and lists what is missing, the name ends in
            ``-partial``, and ``make report BUNDLE=`` refuses to render it.
        experiments: pack only these experiments' files (and the shared ones: run record, config,
            MNIST provenance): an experiment assembled from a paper run's parts
            (:func:`klvae.bundle.part.create_experiment_bundle`). Unless it is every registered
            experiment, the manifest lists the others as missing (``e2/ (no E2 outputs)``, as
            :func:`klvae.bundle.compare.merge_bundles` does), so the bundle is not ``complete``: it
            is merged with the other experiments' bundles, or compared with, but not rendered alone.

    Returns:
        ``{"path", "size" (archive bytes), "sha256" (of the archive), "manifest_sha256",
        "members" (count, manifest excluded), "unpacked_bytes", "excluded" (counts per reason)}``.
        A ``<archive>.sha256`` file (``sha256sum -c`` format) is written beside it.

    Raises:
        BundleError: the run is not finished (and ``partial`` is false), a file changed while it
            was packed, or a name cannot be carried.
        BundleTooLarge: the archive would exceed ``max_bytes``; nothing is left behind and the
            message lists the largest files.
    """
    from klvae.record import git_commit, host, utc_now

    root = Path(results)
    if not root.is_dir():
        raise BundleError(f"{root}: no such results folder; run `make report PROFILE=<profile>` first")
    missing = missing_files(root)
    runs = sorted(p.relative_to(root).parts[0] for p in root.glob(f"*/{RUN_RECORD}")) if missing else []
    if runs:
        raise BundleError(f"{root}: not a run's results folder but the folder of every profile's; name one: "
                          + ", ".join(f"--results {root / r}" for r in runs))
    if missing and not partial:
        raise BundleError(f"{root}: not a finished run: {', '.join(missing[:6])}"
                          + (f" and {len(missing) - 6} more" if len(missing) > 6 else "") + " missing. Run "
                          "`make report PROFILE=<profile>` to the end first (or Snakemake up to report_render), then "
                          "`make bundle`; `python -m klvae.bundle create --partial` packs an unfinished run, which "
                          "cannot be rendered")
    run = json.loads((root / RUN_RECORD).read_text()) if (root / RUN_RECORD).is_file() else {}
    if not run:  # partial run without a run record: its profile names its folder, results/<profile>
        run = {"profile": root.resolve().name or "unknown",
               "keras_backend": os.environ.get("KERAS_BACKEND", "tensorflow") or "tensorflow",
               "git_commit": git_commit(Path(__file__).resolve().parents[3])}
    files, excluded = select_files(root)
    if experiments is not None:
        unknown = [e for e in experiments if e not in EXPERIMENTS]
        if unknown:
            raise BundleError(f"no experiment {', '.join(unknown)}; the experiments: {', '.join(EXPERIMENTS)}")
        kept = [(rel, path) for rel, path in files if experiment_of(rel) in (None, *experiments)]
        if len(kept) < len(files):
            excluded["another experiment's file"] = len(files) - len(kept)
        files = kept
    entries = manifest_entries(files)
    unpacked = sum(e["size"] for e in entries)
    if unpacked > MAX_UNPACKED_BYTES:
        raise BundleTooLarge(f"{root}: the selected files hold {unpacked / 1e6:.1f} MB, more than a bundle may "
                             f"unpack to ({MAX_UNPACKED_BYTES / 1e6:.0f} MB); the largest:\n{_largest(entries)}")
    partial_run = bool(missing)
    held = experiments_in(rel for rel, _ in files)
    if experiments is not None:
        lacking = [e for e in experiments if e not in held]
        if lacking:
            raise BundleError(f"{root}: no outputs of {', '.join(e.upper() for e in lacking)} to pack "
                              f"(no {lacking[0]}/ files or tables/{lacking[0]}_*.csv)")
        missing = missing + [f"{e}/ (no {e.upper()} outputs)" for e in EXPERIMENTS if e not in held]
    experiments = held
    name = bundle_name(run, experiments) + ("-partial" if partial_run else "")
    out_dir = root / "bundle" if out_dir is None else Path(out_dir)
    archive = Path(out) if out is not None else out_dir / f"{name}.tar.gz"
    config_path = root / RUN_CONFIG
    config = (yaml.safe_load(config_path.read_text()) if config_path.is_file() else None) or {}
    manifest = {
        "format": FORMAT, "name": bundle_stem(archive),
        "created_utc": created_utc or utc_now(), "created_host": host(),
        "created_commit": git_commit(Path(__file__).resolve().parents[3]),
        "profile": run.get("profile"), "keras_backend": run.get("keras_backend"),
        "run_commit": run.get("git_commit"), "run_host": run.get("host"), "run_recorded_utc": run.get("recorded_utc"),
        "run_record": RUN_RECORD, "config": RUN_CONFIG, "complete": not missing, "missing": missing,
        "experiments": experiments, "provenance": provenance_entries(run, config, experiments),
        "members_total_bytes": unpacked, "members": entries,
    }
    result = write_archive(archive, manifest, [(rel, path, int(path.stat().st_mtime)) for rel, path in files],
                           max_bytes)
    return {**result, "excluded": excluded, "complete": not missing, "missing": missing, "experiments": experiments}


def provenance_entries(run: dict, config: dict, experiments) -> list[dict]:
    """One provenance record per experiment of a run, as a manifest's ``provenance`` list.

    Each is ``{"experiment", "profile", "keras_backend", "run_commit", "run_host",
    "run_recorded_utc", "hardware" (the run record's dict: CPU, GPU, memory, OS), "config" (the
    run's whole config as used), and for a run made in parts "parts" (each part's commit, host, CPU,
    dates and CPU-seconds: :func:`klvae.bundle.part.part_summary`)}``;
    :func:`klvae.bundle.compare.merge_bundles` keeps them per
    experiment, so a merged bundle still says which commit, config and machine made each part.
    """
    parts = {"parts": run["parts"]} if isinstance(run.get("parts"), list) and run["parts"] else {}
    return [{"experiment": e, "profile": run.get("profile"), "keras_backend": run.get("keras_backend"),
             "run_commit": run.get("git_commit"), "run_host": run.get("host"),
             "run_recorded_utc": run.get("recorded_utc"), "hardware": run.get("hardware") or {}, "config": config,
             **parts} for e in experiments]


def write_archive(archive: str | Path, manifest: dict, items: list[tuple[str, Path | bytes, int]],
                  max_bytes: int = MAX_BUNDLE_BYTES) -> dict:
    """Write a bundle: ``manifest`` as the first member, then ``items`` in order; atomically.

    Args:
        archive: the ``tar.gz`` to write (its folder is created); a ``<archive>.sha256`` file
            (``sha256sum -c`` format) is written beside it.
        manifest: the manifest; its ``members`` must list every item with its size and SHA-256.
        items: ``(member name, source, mtime)``; ``source`` is a file (re-hashed while it is packed)
            or the member's bytes.
        max_bytes: size limit of the archive (bytes).

    Returns:
        ``{"path", "size" (archive bytes), "sha256", "manifest_sha256", "members" (count),
        "unpacked_bytes"}``.

    Raises:
        BundleError: a file changed since the manifest was made.
        BundleTooLarge: the archive would exceed ``max_bytes``; nothing is left behind.
    """
    archive = Path(archive)
    entries = manifest["members"]
    unpacked = sum(e["size"] for e in entries)
    manifest_bytes = (json.dumps(manifest, indent=1) + "\n").encode()
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(f".{archive.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0,
                                                    compresslevel=6) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(_tarinfo(MANIFEST_NAME, len(manifest_bytes), int(time.time())), io.BytesIO(manifest_bytes))
            for (rel, source, mtime), entry in zip(items, entries, strict=True):
                data = source if isinstance(source, bytes) else Path(source).read_bytes()
                if rel != entry["path"] or len(data) != entry["size"] or \
                        hashlib.sha256(data).hexdigest() != entry["sha256"]:
                    raise BundleError(f"{source if not isinstance(source, bytes) else rel} changed while the bundle "
                                      "was being made; is a run still writing to its results folder? Try again when "
                                      "it has finished")
                tar.addfile(_tarinfo(rel, len(data), mtime), io.BytesIO(data))
        size = tmp.stat().st_size
        if size > max_bytes:
            raise BundleTooLarge(
                f"{archive}: the bundle would be {size / 1e6:.1f} MB, over the limit of {max_bytes / 1e6:.0f} MB. "
                f"The largest files ({len(entries)} in all, {unpacked / 1e6:.1f} MB before compression):\n"
                f"{_largest(entries)}\nRemove what should not travel from the results folder or narrow the "
                "allow-list in klvae.bundle.core (EXTENSIONS, member_kind)")
        os.replace(tmp, archive)
    finally:
        if tmp.exists():
            tmp.unlink()
    digest = sha256_file(archive)
    Path(f"{archive}.sha256").write_text(f"{digest}  {archive.name}\n")
    return {"path": str(archive), "size": size, "sha256": digest,
            "manifest_sha256": hashlib.sha256(manifest_bytes).hexdigest(), "members": len(entries),
            "unpacked_bytes": unpacked}


# ----------------------------------------------------------------------------------------------
# Reading a bundle


def _refuse(archive, what: str) -> BundleError:
    return BundleError(f"{archive}: refused: {what}. Nothing was extracted; get an intact copy of the bundle "
                       "(or make it again with `make bundle`)")


def parse_manifest(data: bytes, archive: str | Path = "bundle") -> dict:
    """Parse and check a manifest's bytes: format tag, a list of members each with a safe,
    unique, allow-listed ``path``, an integer ``size`` >= 0 and a hex ``sha256``, and a total
    within :data:`MAX_UNPACKED_BYTES`.

    Raises:
        BundleError: naming the first problem (and the member it concerns).
    """
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _refuse(archive, f"{MANIFEST_NAME} is not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") not in READABLE_FORMATS:
        raise _refuse(archive, f"{MANIFEST_NAME} is not a {' or '.join(READABLE_FORMATS)} manifest "
                               f"(format {manifest.get('format') if isinstance(manifest, dict) else None!r})")
    members = manifest.get("members")
    if not isinstance(members, list) or not members:
        raise _refuse(archive, f"{MANIFEST_NAME} lists no members")
    is_part = manifest.get("kind") == PART_KIND
    seen: set[str] = set()
    total = 0
    for entry in members:
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, str) or not safe_member_name(path):
            raise _refuse(archive, f"{MANIFEST_NAME} names an unsafe path {path!r} (absolute, '..', or odd characters)")
        if path in seen:
            raise _refuse(archive, f"{MANIFEST_NAME} lists {path!r} twice")
        if not member_kind(path, part=is_part)[0]:
            raise _refuse(archive, f"{MANIFEST_NAME} lists {path!r}, a {member_kind(path, part=is_part)[1]} file "
                                   "that a bundle never carries")
        size, digest = entry.get("size"), entry.get("sha256")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0 or \
                not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise _refuse(archive, f"{MANIFEST_NAME}: the entry of {path!r} has no valid size and sha256")
        seen.add(path)
        total += size
    if total > MAX_UNPACKED_BYTES:
        raise _refuse(archive, f"its members would unpack to {total / 1e6:.0f} MB, more than "
                               f"{MAX_UNPACKED_BYTES / 1e6:.0f} MB")
    return manifest


def _read_manifest_member(tar: tarfile.TarFile, member: tarfile.TarInfo, archive: Path) -> tuple[dict, str]:
    """``(manifest, its SHA-256)`` from the archive's first member, which must be ``MANIFEST.json``."""
    name = member.name
    if name != MANIFEST_NAME or not member.isreg():
        raise _refuse(archive, f"its first member is {name!r}, not the manifest {MANIFEST_NAME}")
    if member.size > MAX_MANIFEST_BYTES:
        raise _refuse(archive, f"{MANIFEST_NAME} is {member.size} bytes, too large")
    data = tar.extractfile(member).read(member.size)
    return parse_manifest(data, archive), hashlib.sha256(data).hexdigest()


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, archive: Path, expected: dict[str, dict],
                 contents: dict[str, bytes]) -> bytes:
    """The bytes of a member after the manifest, refused unless it is a safe, new, listed regular file that matches."""
    name = member.name
    if not safe_member_name(name):
        raise _refuse(archive, f"member {name!r} has an unsafe path (absolute, '..', or odd characters)")
    if not member.isreg():
        kind = ("a symlink" if member.issym() else "a hard link" if member.islnk() else
                "a directory" if member.isdir() else "not a regular file")
        raise _refuse(archive, f"member {name!r} is {kind}; a bundle holds regular files only")
    if name in contents:
        raise _refuse(archive, f"member {name!r} appears twice")
    entry = expected.get(name)
    if entry is None:
        raise _refuse(archive, f"member {name!r} is not in the manifest (added after the bundle was made?)")
    if member.size != entry["size"]:
        raise _refuse(archive, f"member {name!r} is {member.size} bytes, the manifest says {entry['size']}")
    data = tar.extractfile(member).read(member.size)
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != entry["size"] or digest != entry["sha256"]:
        raise _refuse(archive, f"member {name!r} has SHA-256 {digest}, the manifest says "
                               f"{entry['sha256']} (the file was changed after the bundle was made)")
    return data


def read_bundle(archive: str | Path, max_bytes: int = MAX_BUNDLE_BYTES) -> tuple[dict, dict[str, bytes], dict]:
    """Read a bundle into memory, verifying every member against its manifest; nothing is written.

    The archive is read as a stream. Its first member must be ``MANIFEST.json``
    (:func:`parse_manifest`); every following member must be a regular file whose name is in
    the manifest (once), with the manifest's size and SHA-256; every manifest entry must be
    present. The first violation stops the read.

    Args:
        archive: the ``tar.gz`` file.
        max_bytes: archives larger than this (bytes) are refused unread.

    Returns:
        ``(manifest, contents, info)``: the parsed manifest, ``{member path: bytes}`` (all
        verified), and ``info`` = ``{"name" (file name), "archive_sha256", "manifest_sha256",
        "members" (count), "created_utc", "created_host", "profile", "keras_backend",
        "run_commit", "complete" (False for a ``--partial`` bundle), "missing"}``.

    Raises:
        BundleError: the archive is missing, too large, not a readable tar.gz, or a member is
            refused; the message names the member.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise BundleError(f"{archive}: no such bundle file")
    size = archive.stat().st_size
    if size > max_bytes:
        raise _refuse(archive, f"the archive is {size / 1e6:.1f} MB, over the {max_bytes / 1e6:.0f} MB a bundle may be")
    archive_sha = sha256_file(archive)
    manifest: dict | None = None
    manifest_sha = ""
    expected: dict[str, dict] = {}
    contents: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, mode="r|gz") as tar:
            for member in tar:
                if manifest is None:
                    manifest, manifest_sha = _read_manifest_member(tar, member, archive)
                    expected = {e["path"]: e for e in manifest["members"]}
                    continue
                contents[member.name] = _read_member(tar, member, archive, expected, contents)
    except BundleError:
        raise
    except (tarfile.TarError, OSError, EOFError, zlib.error) as err:
        raise _refuse(archive, f"it is not a readable tar.gz ({type(err).__name__}: {err})") from None
    if manifest is None:
        raise _refuse(archive, f"it has no {MANIFEST_NAME}")
    missing = sorted(set(expected) - set(contents))
    if missing:
        raise _refuse(archive, f"member {missing[0]!r} of the manifest is missing from the archive"
                               + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    info = {"name": archive.name, "archive_sha256": archive_sha, "manifest_sha256": manifest_sha,
            "members": len(contents), "created_utc": manifest.get("created_utc"),
            "created_host": manifest.get("created_host"), "profile": manifest.get("profile"),
            "keras_backend": manifest.get("keras_backend"), "run_commit": manifest.get("run_commit"),
            "complete": manifest.get("complete", True) is not False, "missing": list(manifest.get("missing") or [])}
    return manifest, contents, info


def verify_bundle(archive: str | Path, expected_manifest_sha256: str | None = None) -> dict:
    """Verify a bundle (:func:`read_bundle`) without extracting it.

    Args:
        expected_manifest_sha256: when given, the manifest's SHA-256 must equal it (pins the
            bundle to one that was verified or published before).

    Returns:
        ``read_bundle``'s ``info`` plus ``"paths"`` (the members' names, sorted) and ``"config"``
        (the run's config as used, parsed from its verified ``config.yaml``; ``{}`` if absent).

    Raises:
        BundleError: see :func:`read_bundle`; or the manifest hash differs from the expected one.
    """
    manifest, contents, info = read_bundle(archive)
    if expected_manifest_sha256 and info["manifest_sha256"] != expected_manifest_sha256:
        raise _refuse(archive, f"its manifest SHA-256 is {info['manifest_sha256']}, expected "
                               f"{expected_manifest_sha256} (the bundle changed since it was verified)")
    config_name = manifest.get("config", RUN_CONFIG)
    config = yaml.safe_load(contents[config_name].decode()) if config_name in contents else {}
    return {**info, "paths": sorted(contents), "config": config or {}}


def newest_report_bundle(folder: str | Path = "bundles") -> Path:
    """The report bundle a reader should see: the newest complete bundle of a run in ``folder``.

    A complete paper-profile bundle with every experiment of :data:`EXPERIMENTS` wins over any
    other run's (the posts' settings); among the rest, the newest by its manifest's
    ``created_utc``. Part bundles (:mod:`klvae.bundle.part`), unfinished runs (``complete`` false),
    study bundles and anything that fails verification are never chosen.

    Raises:
        BundleError: no such bundle in ``folder`` (the message says how to make one).
    """
    candidates = []
    for path in sorted(Path(folder).glob("*.tar.gz")):
        try:
            manifest, _, info = read_bundle(path)
        except BundleError:
            continue
        if manifest.get("kind") or not manifest.get("complete", False) or RUN_CONFIG not in \
                {m["path"] for m in manifest["members"]}:
            continue
        full_paper = manifest.get("profile") == "paper" and set(EXPERIMENTS) <= set(manifest.get("experiments") or [])
        candidates.append((full_paper, manifest.get("created_utc") or "", path.name, path))
    if not candidates:
        raise BundleError(f"{folder}: no complete report bundle (klvae-<profile>-*.tar.gz) to render. Make one with "
                          "`make report` then `make bundle`, or get the repository's shipped bundles")
    return max(candidates)[3]


def extract_bundle(archive: str | Path, dest: str | Path, replace: bool = False,
                   expected_manifest_sha256: str | None = None, only=None, merge: bool = False) -> dict:
    """Verify a bundle completely, then write its members under ``dest`` (at their paths).

    Nothing is written unless every member verified. The files are written to a temporary
    sibling folder that is then renamed to ``dest``, so ``dest`` is either complete or absent.

    Args:
        archive: the ``tar.gz``.
        dest: the folder to create (e.g. ``results/from_bundle/<stem>``; the members land at their
            names, as under the run's ``results/<profile>/``).
        replace: remove an existing ``dest`` first (for a folder that only ever holds a bundle's
            render); without it an existing non-empty ``dest`` is an error.
        expected_manifest_sha256: see :func:`verify_bundle`.
        only: member names to write (all verified members when None); every member is verified
            either way.
        merge: write the (verified) members into ``dest`` file by file, keeping what else is
            there (bundle mode: report rules may already have written into the same folder).

    Returns:
        :func:`verify_bundle`'s dict plus ``"dest"``.

    Raises:
        BundleError: a refused bundle (see :func:`read_bundle`), or ``dest`` exists and is not
            empty while ``replace`` is false.
    """
    manifest, contents, info = read_bundle(archive)
    if expected_manifest_sha256 and info["manifest_sha256"] != expected_manifest_sha256:
        raise _refuse(archive, f"its manifest SHA-256 is {info['manifest_sha256']}, expected "
                               f"{expected_manifest_sha256} (the bundle changed since it was verified)")
    # verified; tables of an older bundle get today's column names (klvae.legacy)
    contents = {name: migrate_csv(name, data) if name.endswith(".csv") else data for name, data in contents.items()}
    dest = Path(dest)
    wanted = None if only is None else set(only)
    if merge:
        root = dest.resolve()
        for name, data in contents.items():
            target = dest / name
            if wanted is not None and name not in wanted:
                continue
            if root not in target.resolve().parents:  # belt and braces: names were checked already
                raise _refuse(archive, f"member {name!r} would land outside {dest}")
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_name(f".{target.name}.part{os.getpid()}")
            part.write_bytes(data)
            os.replace(part, target)
        print(f"[bundle] verified {info['members']} members of {info['name']} (manifest SHA-256 "
              f"{info['manifest_sha256']}) and wrote them into {dest}", flush=True)
        return {**info, "paths": sorted(contents), "dest": str(dest)}
    if dest.exists() and any(dest.iterdir()) and not replace:
        raise BundleError(f"{dest} exists and is not empty; extract into a fresh folder")
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        root = tmp.resolve()
        for name, data in contents.items():
            if wanted is not None and name not in wanted:
                continue
            target = (tmp / name)
            if root not in target.resolve().parents:  # belt and braces: names were checked already
                raise _refuse(archive, f"member {name!r} would land outside {dest}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    config_name = manifest.get("config", RUN_CONFIG)
    config = yaml.safe_load(contents[config_name].decode()) if config_name in contents else {}
    print(f"[bundle] verified {info['members']} members of {info['name']} (manifest SHA-256 "
          f"{info['manifest_sha256']}) and extracted them to {dest}", flush=True)
    return {**info, "paths": sorted(contents), "config": config or {}, "dest": str(dest)}
