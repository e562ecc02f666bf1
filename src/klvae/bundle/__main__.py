"""``python -m klvae.bundle``: create, verify, extract, diff and merge results bundles.

The commands are listed in :mod:`klvae.bundle.core`'s docstring; ``create`` is the default.
The backend study's bundle has its own: ``python -m klvae.bundle.study``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from klvae.bundle.core import (
    MAX_BUNDLE_BYTES,
    BundleError,
    create_bundle,
    extract_bundle,
    newest_report_bundle,
    verify_bundle,
)
from klvae.bundle.core import __doc__ as CORE_DOC

# ----------------------------------------------------------------------------------------------
# Command line


def _main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv.insert(0, "create")  # `python -m klvae.bundle --out DIR` = create
    parser = argparse.ArgumentParser(prog="python -m klvae.bundle", description=CORE_DOC.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create", help="pack the finished run in --results into one tar.gz (the default command)")
    c.add_argument("--results", default="results/default",
                   help="the run's results folder, results/<profile> (default: results/default)")
    c.add_argument("--out-dir", default=None, help="folder of the archive (default: <results>/bundle)")
    c.add_argument("--out", default=None,
                   help="archive path, or an existing folder for the default name "
                        "(default: <out-dir>/klvae-<profile>-<backend>-<commit>.tar.gz)")
    c.add_argument("--partial", action="store_true", help="pack an unfinished run too (it cannot be rendered)")
    v = sub.add_parser("verify", help="check every member of a bundle against its manifest")
    v.add_argument("archive")
    x = sub.add_parser("extract", help="verify a bundle, then write its members into a folder")
    x.add_argument("archive")
    x.add_argument("--into", required=True, help="a new or empty folder")
    d = sub.add_parser("diff", help="every metric and scorecard number of two bundles, B against A's interval")
    d.add_argument("a")
    d.add_argument("b")
    d.add_argument("--csv", default=None, help="also write the rows to this CSV file")
    nw = sub.add_parser("newest", help="print the newest complete report bundle in a folder (what `make read` renders)")
    nw.add_argument("folder", nargs="?", default="bundles")
    pt = sub.add_parser("part", help="pack one finished part of the paper run (klvae.paper) as a part bundle")
    pt.add_argument("part", help="the part's name (python -m klvae.paper plan lists them)")
    pt.add_argument("--results", default="results/paper")
    pt.add_argument("--out-dir", default="bundles/paper")
    pt.add_argument("--config", default="config/paper.yaml")
    asm = sub.add_parser("assemble", help="an experiment's tables and figures built from its part bundles (no weights)")
    asm.add_argument("experiment")
    asm.add_argument("--parts", default="bundles/paper")
    asm.add_argument("--results", default="results/paper")
    asm.add_argument("--config", default="config/paper.yaml")
    asm.add_argument("--cores", default="all")
    eb = sub.add_parser("experiment", help="pack an experiment assembled from its parts (assemble first) as a "
                                          "report bundle")
    eb.add_argument("experiment")
    eb.add_argument("--parts", default="bundles/paper")
    eb.add_argument("--results", default="results/paper")
    eb.add_argument("--out-dir", default="bundles")
    eb.add_argument("--config", default="config/paper.yaml")
    m = sub.add_parser("merge", help="join bundles of different experiments into one")
    m.add_argument("out", help="the merged archive, or an existing folder for the default name")
    m.add_argument("members", nargs="+", help="two or more bundles, each holding other experiments")
    args = parser.parse_args(argv)
    try:
        if args.cmd == "create":
            out, out_dir = args.out, args.out_dir
            if out is not None and Path(out).is_dir():
                out, out_dir = None, args.out
            r = create_bundle(args.results, out=out, out_dir=out_dir, partial=args.partial)
            left_out = ", ".join(f"{n} {why}" for why, n in sorted(r["excluded"].items())) or "nothing"
            print(f">>> bundle: {r['path']}\n    {r['members']} files, {r['unpacked_bytes'] / 1e6:.1f} MB unpacked, "
                  f"{r['size'] / 1e6:.1f} MB archive (limit {MAX_BUNDLE_BYTES / 1e6:.0f} MB)\n"
                  f"    SHA-256 {r['sha256']} (also in {r['path']}.sha256)\n"
                  f"    manifest SHA-256 {r['manifest_sha256']}\n    left out: {left_out}")
            if r["complete"]:
                print(f"    render it anywhere: make report BUNDLE={r['path']}")
            else:
                print(f"    PARTIAL: {len(r['missing'])} files the report needs are missing "
                      f"({', '.join(r['missing'][:4])}{', ...' if len(r['missing']) > 4 else ''}); "
                      "it cannot be rendered")
        elif args.cmd == "verify":
            r = verify_bundle(args.archive)
            print(f"{r['name']}: OK, {r['members']} members verified; manifest SHA-256 {r['manifest_sha256']}; "
                  f"profile {r['profile']}, backend {r['keras_backend']}, commit {r['run_commit']}"
                  + ("" if r["complete"] else f"; PARTIAL ({len(r['missing'])} report files missing)"))
        elif args.cmd == "diff":
            from klvae.bundle.compare import diff_main

            diff_main(args.a, args.b, args.csv)
        elif args.cmd == "newest":
            print(newest_report_bundle(args.folder))
        elif args.cmd == "part":
            from klvae.bundle.part import create_part_bundle, part_summary

            r = create_part_bundle(args.part, args.results, args.out_dir, args.config)
            times, resumed = r["record"]["times"], r["record"]["resumed"]
            before = part_summary(r["record"])["cpu_s_before_resume_est"]
            if resumed:
                before = "?" if before is None else f"~{before:,.0f}"
                resumed_text = (f"resumed trainings: {len(resumed)} (their epochs before the resume: {before} CPU-s, "
                                "estimated; the wall time spans the pause)")
            else:
                resumed_text = "resumed trainings: 0"
            print(f">>> part bundle: {r['path']}\n    {r['members']} files, {r['size'] / 1e6:.1f} MB; "
                  f"{times['jobs']} jobs, {times['cpu_s']:,.0f} CPU-s in {times['wall_s']:,.0f} s of wall time; "
                  f"{resumed_text}\n    commit it with its .sha256")
        elif args.cmd == "assemble":
            from klvae.bundle.part import assemble

            r = assemble(args.experiment, args.parts, args.results, args.config, args.cores)
            print(f">>> {args.experiment} assembled from parts {', '.join(r['parts'])} in {args.results}/ "
                  f"(rules allowed: {', '.join(r['allowed_rules'])})")
        elif args.cmd == "experiment":
            from klvae.bundle.part import create_experiment_bundle

            r = create_experiment_bundle(args.experiment, args.parts, args.results, args.out_dir, args.config)
            parts = r["record"]["parts"]
            print(f">>> {args.experiment} bundle: {r['path']}\n    {r['members']} files, {r['size'] / 1e6:.1f} MB; "
                  f"from parts {', '.join(p['part'] for p in parts)} "
                  f"({sum(p['cpu_s'] or 0 for p in parts):,.0f} CPU-s of jobs)\n"
                  f"    holds {', '.join(e.upper() for e in r['experiments'])}; not yet: "
                  f"{', '.join(m.split('/')[0].upper() for m in r['missing']) or 'nothing'}\n"
                  f"    SHA-256 {r['sha256']} (also in {r['path']}.sha256)")
        elif args.cmd == "merge":
            from klvae.bundle.compare import merge_main

            merge_main(args.out, args.members)
        else:
            extract_bundle(args.archive, args.into)
    except BundleError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main())
