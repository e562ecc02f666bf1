"""The backend study's bundle: its data in one verifiable archive, committed under ``bundles/``.

A study bundle is a :mod:`klvae.bundle` archive (same format, ``klvae-bundle/1``: the first
member ``MANIFEST.json`` lists every other member with its size and SHA-256, and
:func:`klvae.bundle.core.read_bundle` verifies all of them before anything is read) whose manifest
says ``"kind": "backend-study"``. It carries the study's data only, by an explicit list
(:func:`study_members`), each also passing :func:`klvae.bundle.core.member_kind`'s allow-list:

* ``study/backend/tables/*.csv`` -- the run table, the backend comparison (Welch) and the
  latent evidence (rule ``study_table``);
* ``study/backend/figures/*.png`` -- the loss curves (rule ``study_figure``);
* per run ``study/backend/<backend>/s<seed>/c<c>/``: ``metrics.json``, ``history.csv``,
  ``timing.json``, ``epochs.csv``, ``latent.json``;
* ``study/backend/run.json`` (the run record) and ``study/backend/config.yaml`` (the config
  as used), rule ``study_record``;
* the study rules' Snakemake benchmark files (``benchmarks/study_*``; ``benchmarks/<profile>/study_*``
  in a bundle made before each profile had its own results folder).

No weights (``*.weights.*``, ``.h5``), checkpoints or data. Names are relative to the study
run's results folder, ``results/backend_study/`` (``make backend-study``).

Command line::

    python -m klvae.bundle.study create [--results results/backend_study] [--out-dir bundles]
    python -m klvae.bundle.study verify ARCHIVE

``create`` writes ``<out-dir>/backend-study-<short commit of the run>.tar.gz`` and a
``.sha256`` file beside it (``sha256sum -c`` format).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import time
from pathlib import Path

from klvae.bundle import core as kb

#: ``"kind"`` of a study bundle's manifest.
KIND = "backend-study"
#: The study's folder relative to the run's results folder (``results/<profile>/``).
STUDY_ROOT = "study/backend"
#: Files every study bundle holds (relative to the run's results folder).
REQUIRED = (f"{STUDY_ROOT}/tables/runs.csv", f"{STUDY_ROOT}/tables/backends.csv", f"{STUDY_ROOT}/tables/latent.csv",
            f"{STUDY_ROOT}/figures/losses.png", f"{STUDY_ROOT}/run.json", f"{STUDY_ROOT}/config.yaml")
#: Per-run files packed (the rest of a run's folder -- weights -- stays behind).
RUN_FILES = ("metrics.json", "history.csv", "timing.json", "epochs.csv", "latent.json")


def study_members(results: str | Path = "results/backend_study") -> list[tuple[str, Path]]:
    """The files of a finished study under ``results`` (the run's results folder) that go into its
    bundle, sorted by name.

    Returns:
        ``[(name relative to results, path)]``.

    Raises:
        klvae.bundle.BundleError: a :data:`REQUIRED` file is missing (the study is not finished),
            or a selected file is refused by the bundle allow-list.
    """
    root = Path(results)
    missing = [rel for rel in REQUIRED if not (root / rel).is_file()]
    if missing:
        raise kb.BundleError(f"{root}: not a finished backend study: {', '.join(missing)} missing. Run "
                             "`make backend-study` to the end first, then `make study-bundle`")
    study = root / STUDY_ROOT
    found = {rel: root / rel for rel in REQUIRED}
    for sub in ("tables", "figures"):
        for p in sorted((study / sub).glob("*")):
            if p.is_file() and p.suffix in (".csv", ".png"):
                found[p.relative_to(root).as_posix()] = p
    for p in sorted(study.glob("*/s*/c*/*")):
        if p.is_file() and p.name in RUN_FILES:
            found[p.relative_to(root).as_posix()] = p
    bench = root / "benchmarks"
    for p in sorted(bench.glob("study_*/*.tsv")) + sorted(bench.glob("study_*.tsv")):
        found[p.relative_to(root).as_posix()] = p
    out = []
    for rel, path in sorted(found.items()):
        ok, why = kb.member_kind(rel)
        if not ok or not kb.safe_member_name(rel) or path.is_symlink():
            raise kb.BundleError(f"{path}: cannot go into a bundle ({why})")
        out.append((rel, path))
    return out


def create_study_bundle(results: str | Path = "results/backend_study", out_dir: str | Path = "bundles",
                        out: str | Path | None = None, max_bytes: int = kb.MAX_BUNDLE_BYTES) -> dict:
    """Pack the finished backend study in ``results`` into ``<out_dir>/backend-study-<commit>.tar.gz``.

    Args:
        results: the results folder of the study's run (``results/backend_study``, holding ``study/backend/``).
        out_dir: folder of the archive (created).
        out: archive path instead of the default name.
        max_bytes: size limit of the archive (bytes).

    Returns:
        ``{"path", "size", "sha256", "manifest_sha256", "members", "unpacked_bytes"}``.

    Raises:
        klvae.bundle.BundleError: the study is not finished, a file changed while being packed.
        klvae.bundle.BundleTooLarge: over ``max_bytes`` (nothing left behind).
    """
    from klvae.record import git_commit, host, short_commit, utc_now

    root = Path(results)
    files = study_members(root)
    entries = kb.manifest_entries(files)
    run = json.loads((root / f"{STUDY_ROOT}/run.json").read_text())
    name = f"backend-study-{short_commit(run.get('git_commit', ''))}.tar.gz"
    archive = Path(out) if out is not None else Path(out_dir) / name
    unpacked = sum(e["size"] for e in entries)
    manifest = {
        "format": kb.FORMAT, "kind": KIND, "name": kb.bundle_stem(archive), "created_utc": utc_now(),
        "created_host": host(), "created_commit": git_commit(Path(__file__).resolve().parents[3]),
        "profile": run.get("profile"), "keras_backend": "+".join(run.get("study", {}).get("backends", [])),
        "run_commit": run.get("git_commit"), "run_host": run.get("host"), "run_recorded_utc": run.get("recorded_utc"),
        "run_record": f"{STUDY_ROOT}/run.json", "config": f"{STUDY_ROOT}/config.yaml", "complete": True,
        "missing": [], "members_total_bytes": unpacked, "members": entries,
    }
    data = (json.dumps(manifest, indent=1) + "\n").encode()
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(f".{archive.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(kb._tarinfo(kb.MANIFEST_NAME, len(data), int(time.time())), io.BytesIO(data))
            for (rel, path), entry in zip(files, entries, strict=True):
                blob = path.read_bytes()
                if hashlib.sha256(blob).hexdigest() != entry["sha256"]:
                    raise kb.BundleError(f"{path} changed while the bundle was being made; try again")
                tar.addfile(kb._tarinfo(rel, len(blob), int(path.stat().st_mtime)), io.BytesIO(blob))
        size = tmp.stat().st_size
        if size > max_bytes:
            raise kb.BundleTooLarge(f"{archive}: {size / 1e6:.1f} MB, over the limit of {max_bytes / 1e6:.0f} MB")
        os.replace(tmp, archive)
    finally:
        if tmp.exists():
            tmp.unlink()
    digest = kb.sha256_file(archive)
    Path(f"{archive}.sha256").write_text(f"{digest}  {archive.name}\n")
    return {"path": str(archive), "size": size, "sha256": digest, "manifest_sha256": hashlib.sha256(data).hexdigest(),
            "members": len(entries), "unpacked_bytes": unpacked}


def read_study_bundle(archive: str | Path) -> tuple[dict, dict[str, bytes], dict]:
    """Verify a study bundle completely (:func:`klvae.bundle.core.read_bundle`) and return it.

    Returns:
        ``(manifest, {member name: bytes}, info)`` as :func:`klvae.bundle.core.read_bundle`.

    Raises:
        klvae.bundle.BundleError: a refused archive (a changed byte, a member not in the
            manifest, ...), a bundle that is not a backend study, or one without a
            :data:`REQUIRED` file.
    """
    manifest, contents, info = kb.read_bundle(archive)
    if manifest.get("kind") != KIND:
        raise kb.BundleError(f"{archive}: not a backend-study bundle (kind {manifest.get('kind')!r}); "
                             "make one with `make study-bundle`")
    missing = [rel for rel in REQUIRED if rel not in contents]
    if missing:
        raise kb.BundleError(f"{archive}: a backend-study bundle without {', '.join(missing)}")
    return manifest, contents, info


def find_study_bundle(folder: str | Path) -> Path | None:
    """The newest ``backend-study-*.tar.gz`` in ``folder`` (by the time it was packed, from its
    manifest), or ``None`` when there is none. Every candidate is verified
    (:func:`read_study_bundle`); a refused one raises :class:`klvae.bundle.core.BundleError`."""
    candidates = sorted(Path(folder).glob("backend-study-*.tar.gz")) if Path(folder).is_dir() else []
    if not candidates:
        return None
    dated = [(read_study_bundle(p)[2].get("created_utc") or "", p.name, p) for p in candidates]
    return max(dated)[2]


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m klvae.bundle.study", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create", help="pack the finished backend study into bundles/backend-study-<commit>.tar.gz")
    c.add_argument("--results", default="results/backend_study",
                   help="the study run's results folder (default: results/backend_study, as make backend-study)")
    c.add_argument("--out-dir", default="bundles")
    c.add_argument("--out", default=None)
    v = sub.add_parser("verify", help="check every member of a study bundle against its manifest")
    v.add_argument("archive")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "create":
            r = create_study_bundle(args.results, out_dir=args.out_dir, out=args.out)
            print(f">>> study bundle: {r['path']}\n    {r['members']} files, {r['unpacked_bytes'] / 1e6:.2f} MB "
                  f"unpacked, {r['size'] / 1e6:.2f} MB archive\n    SHA-256 {r['sha256']} (also in {r['path']}.sha256)"
                  f"\n    manifest SHA-256 {r['manifest_sha256']}\n    commit it (git add {r['path']} "
                  f"{r['path']}.sha256); the default report renders the section 'Does the framework matter?' from it")
        else:
            _, _, info = read_study_bundle(args.archive)
            print(f"{info['name']}: OK, {info['members']} members verified; manifest SHA-256 "
                  f"{info['manifest_sha256']}; profile {info['profile']}, commit {info['run_commit']}")
    except kb.BundleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main())
