"""The report section "This run against a shipped run" (``report/_compare.qmd``).

A results bundle committed under ``bundles/`` -- by default the newest *paper*-profile bundle, the
reference run of this report -- is set beside this run: every number of this run's tables
(``results/<profile>/tables/*.csv``: E1's losses per KL coefficient, E2's metrics per strategy and z_dim,
E3's metrics, the scorecard's ``ours`` and verdict per claim, ...) against the shipped run's, with
the difference and whether this run lies in the shipped run's 95 % prediction interval for one
new run where the shipped value is a mean of n >= 2 runs. The rules are those of
``python -m klvae.bundle diff`` (:mod:`klvae.bundle.compare`), whose A is the shipped run and B
this run; the report shows the headline tables, the CSV written beside it has every value.

Which bundle (config ``report.compare_with``): ``auto`` = the newest ``klvae-paper-*.tar.gz``
under ``bundles/`` (by the time it was packed, from its verified manifest) other than the bundle
the report is rendered from, none when there is none; ``none``; or a path to a bundle. The bundle
is verified member by member (:func:`klvae.bundle.core.read_bundle`) before anything is read. The
prose is in the qmd files; this module writes the table's body (its caption is in ``report/_compare_results.qmd``), the
generated include ``compare.md`` (:mod:`klvae.report.includes` decides which qmd it includes),
and the ``compare`` variables. Never
imports Keras. Every string of either run (table and row names, values that are not numbers, the
bundle's description) is text (:mod:`klvae.report.escape`).
"""

from __future__ import annotations

import math
from pathlib import Path

from klvae import registry
from klvae.io import write_text
from klvae.report import includes
from klvae.report.escape import write_variables
from klvae.report.methods import parts_table
from klvae.report.tables import markdown_table

#: The columns shown per table (others are in the CSV): the experiments' tables whose registry entry
#: names them (``shown``, :class:`klvae.registry.TableSpec`), in the registry's order.
SHOWN_METRICS = {stem: spec.shown for stem, spec in registry.tables().items() if spec.shown is not None}
#: The tables the report shows (the CSV has all of them), in this order: those, then the scorecard's counts.
SHOWN_TABLES = (*SHOWN_METRICS, "scorecard counts")
PAPER_GLOB = "klvae-paper-*.tar.gz"


def same_bundle(a: str | Path, b: str | Path) -> bool:
    """Whether two paths hold the same bundle: the same file, or two files with the same bytes
    (SHA-256), e.g. a shipped bundle and a copy of it rendered elsewhere."""
    from klvae.bundle import core as kb

    a, b = Path(a), Path(b)
    if a.resolve() == b.resolve():
        return True
    return a.stat().st_size == b.stat().st_size and kb.sha256_file(a) == kb.sha256_file(b)


def _paper_bundles(bundles_dir: str | Path) -> list[Path]:
    folder = Path(bundles_dir)
    return sorted(folder.glob(PAPER_GLOB)) if folder.is_dir() else []


def choose_reference(setting: str | None, bundles_dir: str | Path, rendered: str | Path | None = None) -> str | None:
    """The bundle to compare this run with, or ``None``.

    Args:
        setting: ``report.compare_with``: ``auto``, ``none`` or a bundle's path.
        bundles_dir: the repository's ``bundles/`` folder.
        rendered: the bundle this report is rendered from (``make report BUNDLE=``), if any: ``auto``
            never chooses it (a run set beside itself compares nothing; :func:`renders_the_reference`).

    Raises:
        FileNotFoundError: ``setting`` names a file that does not exist (the message names the key).
        klvae.bundle.BundleError: with ``auto``, a paper bundle under ``bundles_dir`` is refused.
    """
    from klvae.bundle import core as kb

    if setting in (None, "none"):
        return None
    if setting != "auto":
        if not Path(setting).is_file():
            raise FileNotFoundError(f"report.compare_with = {setting!r}: no such bundle file "
                                    f"(give a results bundle's path, or auto, or none)")
        return str(setting)
    candidates = [p for p in _paper_bundles(bundles_dir) if rendered is None or not same_bundle(p, rendered)]
    if not candidates:
        return None
    dated = [(kb.read_bundle(p)[2].get("created_utc") or "", p.name, p) for p in candidates]
    return str(max(dated)[2])


def renders_the_reference(setting: str | None, bundles_dir: str | Path, rendered: str | Path | None) -> bool:
    """Whether this report is rendered from a paper bundle that ``auto`` would otherwise set beside
    it: the shipped paper run rendered itself (``make read``, ``make report BUNDLE=``). The section
    then says so instead of comparing the run with itself (``report/_compare_self.qmd``)."""
    return (setting == "auto" and rendered is not None
            and any(same_bundle(p, rendered) for p in _paper_bundles(bundles_dir)))


def this_run(tables_dir: str | Path) -> dict[str, bytes]:
    """This run's tables as a bundle holds them: ``{"tables/<name>.csv": bytes}``."""
    return {f"tables/{p.name}": p.read_bytes() for p in sorted(Path(tables_dir).glob("*.csv"))}


def _cell(x, digits: int = 4) -> str:
    """A value as the table shows it: a number formatted from the parsed number, anything else its
    text (escaped by :func:`~klvae.report.tables.markdown_table`)."""
    if x is None or x == "":
        return "–"
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(v):
        return str(x)
    return f"{v:,.0f}" if v == int(v) and abs(v) >= 1 and "." not in str(x) else f"{v:.{digits}g}"


def _status(r: dict) -> str:
    if r["a_lo"] is not None:
        return f"{r['status']} [{r['a_lo']:.4g}, {r['a_hi']:.4g}], n = {r['a_n']}"
    return r["status"]


def shown_rows(rows: list[dict]) -> list[dict]:
    """The rows of :func:`klvae.bundle.compare.diff_contents` the report shows (:data:`SHOWN_TABLES`)."""
    return [r for r in rows if r["table"] in SHOWN_TABLES
            and (r["table"] not in SHOWN_METRICS or r["metric"] in SHOWN_METRICS[r["table"]])]


def compare_fragment(reference: str | None, tables_dir: str | Path,
                     itself: bool = False) -> tuple[str, str, dict, list[dict]]:
    """The section's fragment, its table's body, its variables and every diff row.

    Args:
        reference: the bundle to set beside this run (:func:`choose_reference`), or None.
        tables_dir: this run's ``tables/`` folder.
        itself: without a reference, whether this report is the shipped paper run's own
            (:func:`renders_the_reference`).

    Returns:
        ``(markdown, table, variables, rows)``: ``markdown`` is generated include ``compare.md``
        (:mod:`klvae.report.includes`): without a reference, an include of ``report/_compare_none.qmd``
        (``report/_compare_self.qmd`` when ``itself``), no table and ``{"available": "no"}``; with one,
        an include of ``report/_compare_results.qmd`` (which includes the table and holds its
        caption, ``@tbl-compare``), the table's body (one row per
        shown quantity), variables ``reference`` (the bundle, described), ``n_values``,
        ``n_shown``, ``n_in``/``n_outside`` (numbers with the shipped run's interval), ``n_single``
        (numbers where the shipped run has n = 1), ``n_verdicts_changed`` (claims whose verdict
        differs), and the rows (:data:`klvae.bundle.compare.DIFF_COLUMNS`).

    Raises:
        klvae.bundle.BundleError: the reference bundle is refused (the message names the member).
    """
    from klvae.bundle import core as kb
    from klvae.bundle.compare import describe, diff_contents, run_record_of

    if reference is None:
        return (includes.fragment("compare.md", reference="self" if itself else "no", parts=False), "",
                {"available": "no"}, [])
    manifest, contents, info = kb.read_bundle(reference)
    rows = diff_contents(contents, this_run(tables_dir))
    shown = shown_rows(rows)
    table = markdown_table(
        ["table", "row", "quantity", "shipped run", "this run", "this − shipped",
         "this run in the shipped run's interval"],
        [[r["table"].replace("_", " "), r["row"], r["metric"].replace("_", " "), _cell(r["a"]), _cell(r["b"]),
          _cell(r["diff"]), _status(r)] for r in shown], align="lllrrrl")
    verdicts = [r for r in rows if r["table"] == "scorecard" and r["metric"] == "verdict"]
    held = [e for e in registry.ids() if e in (manifest.get("experiments") or [])]
    run = run_record_of(contents)
    parts = parts_table(run)
    variables = {
        "available": "yes",
        "reference": describe(info, manifest),
        "reference_file": Path(reference).name,
        "held": ", ".join(e.upper() for e in held) or "none",
        "not_held": ", ".join(e.upper() for e in registry.ids() if e not in held) or "none",
        "n_parts": len(run.get("parts") or []) if isinstance(run, dict) else 0,
        "n_values": len(rows), "n_shown": len(shown),
        "n_in": sum(r["status"] == "in interval" for r in rows),
        "n_outside": sum(r["status"] == "outside interval" for r in rows),
        "n_single": sum(r["status"] == "n = 1" for r in rows),
        "n_verdicts": len(verdicts),
        "n_verdicts_changed": sum(r["status"] == "different" for r in verdicts),
    }
    # the prose and the tables' captions are in report/_compare_results.qmd and _compare_parts.qmd
    return includes.fragment("compare.md", reference="yes", parts=bool(parts)), table, variables, rows


def write_compare(md: str, table_md: str, parts_md: str, variables: str, diff_csv: str, tables: list[str],
                  reference: str | list[str] | None = None, itself: bool = False) -> dict:
    """Rule ``report_compare``: the fragment (``md``, an include of the section's prose), the body of
    the comparison table (``table_md``; empty without a reference), the body of the table of the
    parts the shipped run was made in (``parts_md``, :func:`parts_table`; empty for a run made in
    one go or without a reference), the ``compare`` variables
    (YAML) and every diff row (``diff_csv``, :func:`klvae.bundle.compare.write_diff_csv`; a
    header-only file without a reference).

    Args:
        tables: this run's ``tables/*.csv`` (their folder is read; the list makes the rule wait for them).
        reference: the chosen bundle (:func:`choose_reference`; the rule's input, so a new bundle
            reruns the rule), an empty list or None for none.
        itself: the report is the shipped paper run's own (:func:`renders_the_reference`).
    """
    from klvae.bundle.compare import DIFF_COLUMNS, write_diff_csv

    if isinstance(reference, (list, tuple)):
        reference = reference[0] if reference else None
    tables_dir = Path(tables[0]).parent if tables else Path(".")
    text, table, values, rows = compare_fragment(reference, tables_dir, itself=itself)
    write_text(md, text)
    write_text(table_md, table)
    parts = ""
    if reference is not None:
        from klvae.bundle import core as kb
        from klvae.bundle.compare import run_record_of

        parts = parts_table(run_record_of(kb.read_bundle(reference)[1]))
    write_text(parts_md, parts)
    write_variables(variables, {"compare": values})
    if rows:
        write_diff_csv(rows, diff_csv)
    else:
        write_text(diff_csv, ",".join(DIFF_COLUMNS) + "\n")
    return values
