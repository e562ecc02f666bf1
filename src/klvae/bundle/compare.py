"""Two results bundles side by side (``diff``), and per-experiment bundles joined into one (``merge``).

Both read bundles with :func:`klvae.bundle.core.read_bundle`: every member is checked against the
manifest's SHA-256 before anything is parsed, in memory; nothing is extracted.

``diff A B`` (:func:`diff_rows`, :func:`format_diff`; ``make compare A=... B=...``) lists every
number of the two runs' tables (``tables/*.csv``: the E1 losses per KL coefficient c, the E2
metrics per strategy and z_dim, the E2 equivalence, timing and compatibility tables, the E3
metrics, latent summary and benchmarks, the scorecard's ``ours`` and verdict per claim id) and the
scorecard's verdict counts (from ``tables/scorecard.csv``): A's value, B's value,
``B - A``, and whether B lies in A's 95 % prediction interval for one new run where A's value is a
mean of n >= 2 runs with a standard deviation (:func:`klvae.stats.prediction_interval`),
else ``n = 1``. Text values (verdicts, which forms run) are compared as text: ``same``/``different``.
The per-run ``metrics.json`` files are not listed one by one: the tables summarise them.

``merge OUT A B [C ...]`` (:func:`merge_bundles`) joins bundles that each hold other experiments
(their manifests' ``experiments``: ``e1``, ``e2``, ``e3``) into one bundle of the same format,
named by :func:`klvae.bundle.core.bundle_name`. Each experiment's files come from the bundle that ran
it; its commit, config and hardware stay in the merged manifest's ``provenance`` list.

Command line (through :mod:`klvae.bundle`)::

    python -m klvae.bundle diff A B [--csv out.csv]
    python -m klvae.bundle merge OUT A B [C ...]
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import time
from pathlib import Path, PurePosixPath

import yaml

from klvae import registry
from klvae.bundle import core as kb
from klvae.layout import results_dir
from klvae.legacy import migrate_csv
from klvae.registry import TableSpec

#: Where the scorecard's verdict counts are inside a bundle (rule report_scorecard).
SCORECARD = "tables/scorecard.csv"
#: Columns never compared: the posts' own numbers (the same in every bundle) and descriptive text, and what
#: the scorecard derives from a row's verdict rule (``rel_width``, ``basis_kind``, ``nonnegative``: absent from
#: bundles made before they existed).
SKIP_COLUMNS = frozenset({"post", "post_loss", "post_reconstruction", "post_kl", "post_value", "claim",
                          "compared", "note", "unit", "profile", "basis", "interval", "experiment", "message",
                          "source", "raised_at", "reference_source", "rel_width", "basis_kind", "nonnegative"})
#: Columns of :func:`diff_rows`' rows (and of ``--csv``).
DIFF_COLUMNS = ("table", "row", "metric", "a", "b", "diff", "a_sd", "a_n", "a_lo", "a_hi", "status")
#: Config keys that may differ between the runs of a merged bundle: per-machine settings.
MERGE_MACHINE_KEYS = ("threads", "report")
#: Config keys that belong to one experiment (each comes from the bundle that ran it): its section,
#: the ``data.<name>`` keys and the scorecard tolerances it owns (the registry's ``config_keys``).
MERGE_EXPERIMENT_KEYS = {e.id: e.config_keys for e in registry.EXPERIMENTS}
#: The tables a bundle holds (by file stem, ``tables/<stem>.csv``): each experiment's (its registry
#: entry's ``tables``) and the scorecard; others are keyed by their first column.
TABLES = {
    **registry.tables(),
    "scorecard": TableSpec(keys=("id",), values=("ours", "verdict"), sd={"ours": "sd"}, n="n"),
}


# ----------------------------------------------------------------------------------------------
# diff


def _number(text) -> float | None:
    """``text`` as a float, or None when it is not a number (empty, ``True``, a verdict...)."""
    if isinstance(text, bool) or text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text)
    try:
        return float(str(text).strip().replace(",", ""))
    except ValueError:
        return None


def _read_csv(data: bytes) -> tuple[list[str], list[dict]]:
    reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
    return list(reader.fieldnames or []), list(reader)


def table_values(name: str, data: bytes) -> dict[tuple[str, str], dict]:
    """The comparable values of one CSV table of a bundle.

    Args:
        name: the member name (``tables/<stem>.csv``); the stem picks its :class:`TableSpec`.
        data: the file's bytes.

    Returns:
        ``{(row label, column): {"value" (the cell's text), "sd" (float or None), "n" (int or None)}}``;
        the row label joins the key columns (``z_dim=2 strategy=end_layer``; a claim's ``id`` alone; a
        repeated label gets ``#2``, ``#3``).
    """
    stem = PurePosixPath(name).name.rsplit(".", 1)[0]
    header, rows = _read_csv(migrate_csv(name, data))
    spec = TABLES.get(stem) or TableSpec(keys=tuple(header[:1]))
    keys = [k for k in spec.keys if k in header]
    sd_cols = {c: spec.sd.get(c, f"{c}_sd") for c in header}
    sd_cols = {c: s for c, s in sd_cols.items() if s in header and s != c}
    values = [c for c in (spec.values if spec.values is not None else header)
              if c in header and c not in keys and c != spec.n and c not in sd_cols.values()
              and (spec.values is not None or c not in SKIP_COLUMNS)]
    out: dict[tuple[str, str], dict] = {}
    seen: dict[str, int] = {}
    for row in rows:
        label = " ".join(row.get(k, "") if k == "id" else f"{k}={row.get(k, '')}" for k in keys)
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label = f"{label} #{seen[label]}"
        n = _number(row.get(spec.n)) if spec.n else None
        for col in values:
            sd = _number(row.get(sd_cols[col])) if col in sd_cols else None
            out[(label, col)] = {"value": row.get(col, ""), "sd": sd,
                                 "n": int(n) if n is not None and sd is not None and math.isfinite(n) else None}
    return out


def _flatten(tree, prefix: str = "") -> dict[str, object]:
    if isinstance(tree, dict):
        out: dict[str, object] = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: tree}


def bundle_values(contents: dict[str, bytes]) -> dict[str, dict[tuple[str, str], dict]]:
    """Every comparable value of a bundle's verified contents, per table.

    Args:
        contents: ``{member: bytes}`` from :func:`klvae.bundle.core.read_bundle`.

    Returns:
        ``{table name: {(row label, column): value record}}`` (see :func:`table_values`); the
        tables are the members ``tables/*.csv`` (named by their stem) and ``scorecard counts``
        (:data:`SCORECARD`'s verdict counts, one row per experiment and ``all``).
    """
    out: dict[str, dict] = {}
    for name in sorted(contents):
        p = PurePosixPath(name)
        if len(p.parts) == 2 and p.parts[0] == "tables" and p.suffix == ".csv":
            out[p.stem] = table_values(name, contents[name])
    if SCORECARD in contents:  # the verdict counts, per experiment and in all
        rows = list(csv.DictReader(io.StringIO(contents[SCORECARD].decode())))
        verdicts = list(dict.fromkeys(r["verdict"] for r in rows))
        table = {}
        for exp in [*dict.fromkeys(r["experiment"] for r in rows), "all"]:
            picked = [r["verdict"] for r in rows if exp in ("all", r["experiment"])]
            table.update({(exp, f"n_{v.replace(' ', '_')}"): {"value": picked.count(v), "sd": None, "n": None}
                          for v in verdicts})
            table[(exp, "n_claims")] = {"value": len(picked), "sd": None, "n": None}
        out["scorecard counts"] = table
    return out


def compare_value(a: dict | None, b: dict | None) -> dict:
    """One row of a diff: A's and B's value records (:func:`table_values`), either may be None.

    Returns:
        ``{"a", "b"`` (as the tables hold them), ``"diff"`` (B - A, float, or None for text),
        ``"a_sd", "a_n", "a_lo", "a_hi"`` (A's spread and 95 % prediction interval for one new run,
        :func:`klvae.stats.prediction_interval`, where A has a sd and n >= 2), ``"status"``:
        ``in interval``/``outside interval``, ``n = 1`` (a number without an interval),
        ``same``/``different`` (text, or two NaN), ``only in A``/``only in B``}.
    """
    from klvae.stats import prediction_interval

    row = {"a": None if a is None else a["value"], "b": None if b is None else b["value"], "diff": None,
           "a_sd": None, "a_n": None, "a_lo": None, "a_hi": None}
    if a is None or b is None:
        return {**row, "status": "only in B" if a is None else "only in A"}
    x, y = _number(a["value"]), _number(b["value"])
    if x is None or y is None or (math.isnan(x) and math.isnan(y)):
        same = str(a["value"]).strip() == str(b["value"]).strip() or (x is not None and y is not None)
        return {**row, "status": "same" if same else "different"}
    row["diff"] = y - x
    sd, n = a.get("sd"), a.get("n")
    if sd is None or n is None or n < 2 or not math.isfinite(sd):
        return {**row, "status": "n = 1"}
    lo, hi = prediction_interval(x, sd, n)
    return {**row, "a_sd": sd, "a_n": n, "a_lo": lo, "a_hi": hi,
            "status": "in interval" if lo <= y <= hi else "outside interval"}


def diff_contents(a: dict[str, bytes], b: dict[str, bytes]) -> list[dict]:
    """:func:`diff_rows` on two bundles' verified contents (``{member: bytes}``)."""
    va, vb = bundle_values(a), bundle_values(b)
    rows = []
    for table in list(va) + [t for t in vb if t not in va]:
        ta, tb = va.get(table, {}), vb.get(table, {})
        for key in list(ta) + [k for k in tb if k not in ta]:
            rows.append({"table": table, "row": key[0], "metric": key[1], **compare_value(ta.get(key), tb.get(key))})
    return rows


def diff_rows(a: str | Path, b: str | Path) -> list[dict]:
    """Every metric and scorecard number of two bundles side by side.

    Both bundles are verified (:func:`klvae.bundle.core.read_bundle`) before anything is read.

    Args:
        a, b: the bundles (``tar.gz``); A is the reference whose interval B is judged against.

    Returns:
        One dict per (table, row, metric), :data:`DIFF_COLUMNS`: ``table`` (``e1_losses``,
        ``e2_metrics``, ..., ``scorecard``, ``scorecard counts``), ``row`` (its key, e.g.
        ``c=0.5``; a claim id for the scorecard), ``metric`` (the column), and the fields of
        :func:`compare_value`. Tables in the order A holds them, rows in A's order, then B's extra.

    Raises:
        klvae.bundle.BundleError: either bundle is refused (the message names the archive and member).
    """
    _, ca, _ = kb.read_bundle(a)
    _, cb, _ = kb.read_bundle(b)
    return diff_contents(ca, cb)


def describe(info: dict, manifest: dict) -> str:
    """One line naming a bundle: file, profile, backend, commit(s), host and experiments."""
    prov = manifest.get("provenance") or []
    commits = {p.get("run_commit") for p in prov}
    commit = ", ".join(f"{p['experiment'].upper()} {p.get('run_commit')}" for p in prov) if len(commits) > 1 \
        else info.get("run_commit")
    hosts = ", ".join(dict.fromkeys(str(p.get("run_host")) for p in prov)) or manifest.get("run_host")
    exps = manifest.get("experiments") or kb.experiments_in(e["path"] for e in manifest["members"])
    return (f"{info['name']}: profile {info.get('profile')}, backend {info.get('keras_backend')}, commit {commit}, "
            f"host {hosts}, experiments {', '.join(e.upper() for e in exps) or 'none'}")


def _fmt(x) -> str:
    if x is None:
        return ""
    if isinstance(x, float):
        return f"{x:.6g}"
    text = str(x)
    return text if len(text) <= 28 else text[:27] + "…"


def format_diff(rows: list[dict], header: list[str] = ()) -> str:
    """The diff as text: ``header`` lines, one aligned block per table, and a count per status."""
    lines = list(header)
    titles = ("row", "metric", "A", "B", "B - A", "B in A's 95 % interval")
    for table in dict.fromkeys(r["table"] for r in rows):
        mine = [r for r in rows if r["table"] == table]
        cells = [[str(r["row"]), str(r["metric"]), _fmt(r["a"]), _fmt(r["b"]), _fmt(r["diff"]),
                  r["status"] + (f" [{r['a_lo']:.6g}, {r['a_hi']:.6g}], n = {r['a_n']}" if r["a_lo"] is not None
                                 else "")] for r in mine]
        widths = [max(len(t), *(len(c[i]) for c in cells)) for i, t in enumerate(titles)]
        lines += ["", f"== {table}",
                  "  ".join(t.ljust(w) for t, w in zip(titles, widths, strict=True)).rstrip()]
        for c in cells:
            lines.append("  ".join([c[0].ljust(widths[0]), c[1].ljust(widths[1])]
                                   + [c[i].rjust(widths[i]) for i in (2, 3, 4)] + [c[5]]).rstrip())
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    changed = sum(1 for r in rows if r["status"] == "n = 1" and r["diff"] != 0)
    lines += ["", f"{len(rows)} values: " + ", ".join(f"{n} {s}" for s, n in counts.items())
              + (f" ({changed} of the n = 1 differ)" if counts.get("n = 1") else "")]
    return "\n".join(lines)


def write_diff_csv(rows: list[dict], path: str | Path) -> None:
    """Write :func:`diff_rows`' rows as CSV (:data:`DIFF_COLUMNS`; empty cells for None)."""
    from klvae.io import write_rows

    write_rows(path, [{c: "" if r.get(c) is None else r[c] for c in DIFF_COLUMNS} for r in rows])


def diff_main(a: str | Path, b: str | Path, csv_out: str | Path | None = None) -> list[dict]:
    """``python -m klvae.bundle diff A B [--csv FILE]``: verify both, print the diff, optionally write it."""
    ma, ca, ia = kb.read_bundle(a)
    mb, cb, ib = kb.read_bundle(b)
    rows = diff_contents(ca, cb)
    print(format_diff(rows, [f"A: {describe(ia, ma)}", f"B: {describe(ib, mb)}"]))
    if csv_out:
        write_diff_csv(rows, csv_out)
        print(f"(written to {csv_out})")
    return rows


# ----------------------------------------------------------------------------------------------
# merge


def _member_experiments(manifest: dict, contents: dict[str, bytes]) -> list[str]:
    exps = manifest.get("experiments")
    return list(exps) if isinstance(exps, list) else kb.experiments_in(contents)


def _member_provenance(manifest: dict, contents: dict[str, bytes], info: dict, exps: list[str]) -> list[dict]:
    """The member's per-experiment provenance (its own, or made from its run record and config)."""
    prov = [p for p in manifest.get("provenance") or [] if isinstance(p, dict) and p.get("experiment") in exps]
    if {p["experiment"] for p in prov} != set(exps):
        run = json.loads(contents[kb.RUN_RECORD]) if kb.RUN_RECORD in contents else {}
        config = yaml.safe_load(contents[kb.RUN_CONFIG].decode()) if kb.RUN_CONFIG in contents else {}
        prov = kb.provenance_entries(run, config or {}, exps)
    return [{**p, "bundle": p.get("bundle") or info["name"],
             "bundle_manifest_sha256": p.get("bundle_manifest_sha256") or info["manifest_sha256"]} for p in prov]


def _get(tree: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def _set(tree: dict, dotted: str, value) -> None:
    *head, last = dotted.split(".")
    for part in head:
        tree = tree.setdefault(part, {})
    tree[last] = value


def shared_config(config: dict) -> dict[str, object]:
    """The config's keys that every experiment of a merged bundle must share, flattened
    (``seed``, ``profile``, ``data.mnist.source``, ``scorecard.loss_rel``, ...): all but the
    experiments' own sections (:data:`MERGE_EXPERIMENT_KEYS`) and per-machine settings
    (:data:`MERGE_MACHINE_KEYS`)."""
    own = [k for keys in MERGE_EXPERIMENT_KEYS.values() for k in keys] + list(MERGE_MACHINE_KEYS)
    return {k: v for k, v in _flatten(config).items() if not any(k == o or k.startswith(o + ".") for o in own)}


def _check_compatible(members: list[dict]) -> None:
    """Refuse two members holding one experiment, or a profile/config mismatch (naming both archives)."""
    owner: dict[str, dict] = {}
    for m in members:
        for e in m["experiments"]:
            if e in owner:
                raise kb.BundleError(f"{owner[e]['path']} and {m['path']} both hold {e.upper()}: a merged bundle takes "
                                     "each experiment from one run; leave one of them out")
            owner[e] = m
    first = members[0]
    for m in members[1:]:
        if m["manifest"].get("profile") != first["manifest"].get("profile"):
            raise kb.BundleError(f"profile mismatch: {first['path']} has profile "
                                 f"{first['manifest'].get('profile')!r}, {m['path']} has "
                                 f"{m['manifest'].get('profile')!r}; merge runs of one profile only")
        sa, sb = shared_config(first["config"]), shared_config(m["config"])
        for key in sorted(set(sa) & set(sb)):
            if sa[key] != sb[key]:
                raise kb.BundleError(f"profile mismatch: config key {key!r} is {sa[key]!r} in {first['path']} but "
                                     f"{sb[key]!r} in {m['path']}; merge runs of one configuration only")


def run_record_of(contents: dict[str, bytes]) -> dict:
    """The run record of a verified bundle's members (``{}`` where it has none or it is not a JSON object)."""
    try:
        run = json.loads(contents[kb.RUN_RECORD]) if kb.RUN_RECORD in contents else {}
    except ValueError:
        return {}
    return run if isinstance(run, dict) else {}


def check_one_paper_run(members: list[dict], profile_config: dict) -> None:
    """Refuse members made in parts (their run record lists ``parts``:
    :func:`klvae.bundle.part.create_experiment_bundle`) that are not one run of the profile.

    Each such member's config must equal ``profile_config`` (``config/<profile>.yaml``, defaults
    filled) key by key, but for the per-machine keys (:data:`MERGE_MACHINE_KEYS`); and any two of
    them must share the Keras backend, the package versions and, for every training rule both
    ran (the MNIST preparation, say), the training code's digest.

    Raises:
        klvae.bundle.BundleError: naming the archive, the key and both values.
    """
    def machine_free(config: dict) -> dict:
        return {k: v for k, v in config.items() if k not in MERGE_MACHINE_KEYS}

    in_parts = [m for m in members if m["run"].get("parts")]
    for m in in_parts:
        diff = kb.config_differences(machine_free(profile_config), machine_free(m["config"]))
        if diff:
            raise kb.BundleError(f"{m['path']}: its config differs from config/{m['manifest'].get('profile')}.yaml "
                                 f"({len(diff)} keys): " + "; ".join(diff[:5]))
    for m in in_parts[1:]:
        first = in_parts[0]
        a, b = first["run"], m["run"]
        checks = [("Keras backend", a.get("keras_backend"), b.get("keras_backend"))]
        checks += [(f"version of {k}", (a.get("versions") or {}).get(k), (b.get("versions") or {}).get(k))
                   for k in sorted(set(a.get("versions") or {}) | set(b.get("versions") or {}))]
        code_a, code_b = a.get("training_code") or {}, b.get("training_code") or {}
        checks += [(f"training code of rule {r}", code_a[r], code_b[r]) for r in sorted(set(code_a) & set(code_b))]
        for what, va, vb in checks:
            if va != vb:
                raise kb.BundleError(f"{first['path']} and {m['path']} are not one run: the {what} is {va!r} vs "
                                     f"{vb!r}. The experiments of a run made in parts must share it; run the "
                                     "differing experiment's parts again")


def merged_run_record(members: list[dict]) -> dict | None:
    """The run record of a merge whose members were made in parts: the first member's, with
    ``parts`` the list of every member's parts (in experiment order) and ``assembled`` naming
    the experiments and their parts; None when no member was made in parts."""
    if not any(m["run"].get("parts") for m in members):
        return None
    run = dict(members[0]["run"])
    run["parts"] = [p for m in members for p in m["run"].get("parts") or []]
    run["assembled"] = {"experiments": [e for m in members for e in m["experiments"]],
                        "from_parts": [p.get("part") for p in run["parts"]]}
    return run


def _read_members(archives: list[str | Path]) -> list[dict]:
    """Each archive verified and read: ``{"path", "manifest", "contents", "info", "experiments", "config", "run"}``.

    Raises:
        klvae.bundle.BundleError: refused, holding no experiment, or an unfinished run.
    """
    members = []
    for a in archives:
        manifest, contents, info = kb.read_bundle(a)
        exps = _member_experiments(manifest, contents)
        if not exps:
            raise kb.BundleError(f"{a}: holds no experiment (no {', '.join(f'{e}/' for e in kb.EXPERIMENTS)} outputs "
                                 "or tables); nothing to merge")
        unfinished = [p for p in info["missing"] if kb.experiment_of(p) in (None, *exps)]
        if unfinished:
            raise kb.BundleError(f"{a}: an unfinished run ({', '.join(unfinished[:4])} missing); merge finished "
                                 "bundles only")
        config = yaml.safe_load(contents[kb.RUN_CONFIG].decode()) if kb.RUN_CONFIG in contents else {}
        members.append({"path": str(a), "manifest": manifest, "contents": contents, "info": info,
                        "experiments": exps, "config": config or {}, "run": run_record_of(contents)})
    return members


def _check_profile_run(members: list[dict]) -> None:
    """Where a member was made in parts, :func:`check_one_paper_run` against ``config/<profile>.yaml``."""
    if not any(m["run"].get("parts") for m in members):
        return
    profile = members[0]["manifest"].get("profile")
    profile_file = Path(__file__).resolve().parents[3] / "config" / f"{profile}.yaml"
    if not profile_file.is_file():
        raise kb.BundleError(f"{members[0]['path']}: made in parts, but there is no config/{profile}.yaml to "
                             "check its config against")
    from klvae.paper import load_config

    check_one_paper_run(members, load_config(profile_file))


def merge_bundles(out: str | Path | None, archives: list[str | Path], out_dir: str | Path | None = None,
                  created_utc: str | None = None, max_bytes: int = kb.MAX_BUNDLE_BYTES) -> dict:
    """Join bundles that hold different experiments into one bundle of the same format.

    Every member is verified first (:func:`klvae.bundle.core.read_bundle`). Which experiments a member
    holds is its manifest's ``experiments`` (or, for an older bundle, :func:`klvae.bundle.core.experiments_in`
    of its members). The merged bundle holds:

    * each experiment's files (:func:`klvae.bundle.core.experiment_of`: ``eN/``, ``tables/eN_*``,
      ``figures/eN/``, its report fragments and benchmarks) from the member that ran it; a member's
      files of an experiment it did not run are left out;
    * the shared files (run record, MNIST provenance, scorecard, methods fragments) from the member
      holding the first experiment (E1 before E2 before E3); the manifest lists those that differ
      between members (``merged.shared_differing``);
    * ``config.yaml``: the shared keys with each experiment's own section from its run;
    * members named as in today's bundles (a member made before each profile had its own results
      folder has its ``benchmarks/<profile>/...`` renamed ``benchmarks/...``,
      :func:`klvae.bundle.core.current_member_name`);
    * a manifest whose ``provenance`` keeps, per experiment, the run's commit, backend, host, date,
      hardware and whole config, with the member bundle's name and manifest SHA-256.
    * for members made in parts (a paper run, :mod:`klvae.bundle.part`), a run record listing
      every part of every experiment (:func:`merged_run_record`); such members are refused unless
      they are one run of ``config/<profile>.yaml`` (:func:`check_one_paper_run`).

    It is ``complete`` when it holds the run record, the config and every registered experiment's outputs.

    Args:
        out: the archive to write, or None for ``<out_dir>/<bundle_name>.tar.gz``
            (:func:`klvae.bundle.core.bundle_name`: profile, backends and commits joined by ``+``,
            ``-e1+e2`` when not all experiments are held).
        archives: the member bundles (at least two).
        out_dir: folder of the default archive path (default ``results/<profile>/bundle``).
        created_utc, max_bytes: as for :func:`klvae.bundle.core.create_bundle`.

    Returns:
        :func:`klvae.bundle.core.write_archive`'s dict plus ``"experiments"``, ``"complete"``,
        ``"missing"`` and ``"manifest"``.

    Raises:
        klvae.bundle.BundleError: fewer than two bundles; a member is refused, holds no
            experiment or is an unfinished run (``create --partial`` lacking its own files); two
            members hold the same experiment (naming both archives); a profile mismatch
            (different ``profile``, or a shared config key with different values: the message
            names the key, both values and both archives).
    """
    from klvae.record import git_commit, host, utc_now

    if len(archives) < 2:
        raise kb.BundleError("merge needs at least two bundles")
    members = _read_members(archives)
    _check_compatible(members)
    _check_profile_run(members)
    members.sort(key=lambda m: kb.EXPERIMENTS.index(m["experiments"][0]))
    experiments = [e for e in kb.EXPERIMENTS if any(e in m["experiments"] for m in members)]

    files: dict[str, bytes] = {}
    differing: list[str] = []
    for m in members:
        for old_name, data in sorted(m["contents"].items()):
            name = kb.current_member_name(old_name, m["manifest"].get("profile"))
            owner = kb.experiment_of(name)
            if owner is not None and owner not in m["experiments"]:
                continue  # a file of an experiment this run did not make
            if name in files:
                if files[name] != data and name not in differing:
                    differing.append(name)
                continue
            files[name] = data
    config = yaml.safe_load(yaml.safe_dump(members[0]["config"]))
    for m in members:
        for e in m["experiments"]:
            for key in MERGE_EXPERIMENT_KEYS.get(e, ()):
                if _get(m["config"], key) is not None:
                    _set(config, key, _get(m["config"], key))
    files[kb.RUN_CONFIG] = yaml.safe_dump(config, sort_keys=False).encode()
    run = merged_run_record(members)
    if run is not None:  # every part of every experiment, with its commit, host, CPU, dates and CPU-s
        files[kb.RUN_RECORD] = (json.dumps(run, indent=1) + "\n").encode()
    provenance = [p for m in members for p in _member_provenance(m["manifest"], m["contents"], m["info"],
                                                                 m["experiments"])]
    provenance.sort(key=lambda p: kb.EXPERIMENTS.index(p["experiment"]))

    def joined(key: str, sep: str | None = " + "):
        values = list(dict.fromkeys(p.get(key) for p in provenance))
        return values[0] if len(values) == 1 else values if sep is None else sep.join(map(str, values))

    missing = [r for r in kb.required_files() if r not in files] + [
        f"{e}/ (no {e.upper()} outputs)" for e in kb.EXPERIMENTS if e not in experiments]
    name = kb.bundle_name({"profile": members[0]["manifest"].get("profile"),
                           "keras_backend": joined("keras_backend", None), "git_commit": joined("run_commit", None)},
                          experiments)
    out_dir = out_dir or f"{results_dir(str(members[0]['manifest'].get('profile')))}/bundle"
    archive = Path(out) if out is not None else Path(out_dir) / f"{name}.tar.gz"
    names = sorted(files)
    entries = [{"path": n, "size": len(files[n]), "sha256": hashlib.sha256(files[n]).hexdigest()} for n in names]
    first = members[0]["manifest"]
    manifest = {
        "format": kb.FORMAT, "name": kb.bundle_stem(archive),
        "created_utc": created_utc or utc_now(), "created_host": host(),
        "created_commit": git_commit(Path(__file__).resolve().parents[3]),
        "profile": first.get("profile"), "keras_backend": joined("keras_backend"), "run_commit": joined("run_commit"),
        "run_host": joined("run_host"), "run_recorded_utc": joined("run_recorded_utc"),
        "run_record": kb.RUN_RECORD, "config": kb.RUN_CONFIG, "complete": not missing, "missing": missing,
        "experiments": experiments, "provenance": provenance,
        "merged": {"members": [{"bundle": m["info"]["name"], "archive_sha256": m["info"]["archive_sha256"],
                                "manifest_sha256": m["info"]["manifest_sha256"], "experiments": m["experiments"]}
                               for m in members],
                   "shared_from": members[0]["info"]["name"], "shared_differing": sorted(differing)},
        "members_total_bytes": sum(e["size"] for e in entries), "members": entries,
    }
    kb.parse_manifest(json.dumps(manifest).encode(), archive)  # the same checks a reader makes
    result = kb.write_archive(archive, manifest, [(n, files[n], int(time.time())) for n in names], max_bytes)
    return {**result, "experiments": experiments, "complete": not missing, "missing": missing, "manifest": manifest}


def merge_main(out: str | Path, archives: list[str | Path]) -> dict:
    """``python -m klvae.bundle merge OUT A B [C ...]``: OUT is the archive, or a folder for the default name."""
    out_dir = None
    if Path(out).is_dir():
        out, out_dir = None, out
    r = merge_bundles(out, archives, out_dir=out_dir)
    m = r["manifest"]
    print(f">>> merged bundle: {r['path']}\n    {r['members']} files, {r['size'] / 1e6:.2f} MB; "
          f"experiments {', '.join(e.upper() for e in r['experiments'])}\n"
          f"    SHA-256 {r['sha256']}\n    manifest SHA-256 {r['manifest_sha256']}")
    for p in m["provenance"]:
        print(f"    {p['experiment'].upper()}: {p['bundle']} (commit {p.get('run_commit')}, backend "
              f"{p.get('keras_backend')}, host {p.get('run_host')}, {p.get('run_recorded_utc')})")
    if m["merged"]["shared_differing"]:
        print(f"    shared files taken from {m['merged']['shared_from']}: "
              f"{len(m['merged']['shared_differing'])} differ between the members")
    if not r["complete"]:
        print(f"    INCOMPLETE: {len(r['missing'])} files the report needs are missing "
              f"({', '.join(r['missing'][:4])}{', ...' if len(r['missing']) > 4 else ''}); merge the other "
              "experiments' bundles to render it")
    else:
        print(f"    render it anywhere: make report BUNDLE={r['path']}")
    return r
