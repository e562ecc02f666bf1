"""Names that changed since results bundles were first made, mapped when an old bundle's table is read.

A results bundle is data that today's code renders (:mod:`klvae.bundle`), so a renamed table
column must not break a bundle packed before the rename. The renames:

* one name per scale of the KL weight: E1's coefficient is ``c`` everywhere (it was
  ``kl_weight`` in E1's and the backend study's tables and files);
* "seed" means only the random seed: the blog posts' numbers and code forms are ``post_*``
  (``seed_post`` -> ``post``, ``seed_value`` -> ``post_value``, ``seed_loss`` -> ``post_loss``,
  ``seed_form_*`` -> ``post_form_*``, ...; the backend study's Welch table had the post's value
  in a column ``seed`` and the compatibility trials the form ``seed`` for the posts' own code).

Keras-free and pandas-free: the bundle reader and the comparison call :func:`migrate_csv` on a
verified member's bytes; nothing else needs to know the old names.

Columns added later are not renames and are not made up here: the scorecard's ``rel_width``,
``basis_kind`` and ``nonnegative`` are derived from an old row's other columns where the scorecard
is read (``klvae.report.scorecard.complete_row``), and the bundle comparison does not compare them
(``klvae.bundle.compare.SKIP_COLUMNS``).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import PurePosixPath

from klvae import registry

#: Column renames for every table: ``{old: new}``.
RENAMED_COLUMNS = {
    "kl_weight": "c", "seed_post": "post", "seed_value": "post_value", "seed_loss": "post_loss",
    "seed_reconstruction": "post_reconstruction", "seed_kl": "post_kl", "seed_form_keras2": "post_form_keras2",
}
#: Column prefixes renamed in every table: ``{old prefix: new prefix}`` (one column per backend).
RENAMED_PREFIXES = {"seed_form_keras3_": "post_form_keras3_", "seed_inside_": "post_inside_"}
#: Column renames of one table only (by file name), where the old name also means something else elsewhere.
RENAMED_TABLE_COLUMNS = {"backends.csv": {"seed": "post"}}
#: Cell values renamed: ``{file name: {column: {old: new}}}`` (each table's ``renamed_cells`` in the
#: experiment registry, :class:`klvae.registry.TableSpec`: E2's compatibility trials had the form
#: ``seed`` for the posts' own code).
RENAMED_CELLS = {f"{stem}.csv": {column: dict(values) for column, values in spec.renamed_cells.items()}
                 for stem, spec in registry.tables().items() if spec.renamed_cells}


def new_column_name(table: str, column: str) -> str:
    """Today's name of ``column`` of the table file ``table`` (a member name or a path; its file name counts)."""
    name = PurePosixPath(table).name
    if column in RENAMED_TABLE_COLUMNS.get(name, {}):
        return RENAMED_TABLE_COLUMNS[name][column]
    if column in RENAMED_COLUMNS:
        return RENAMED_COLUMNS[column]
    for old, new in RENAMED_PREFIXES.items():
        if column.startswith(old):
            return new + column[len(old):]
    return column


def migrate_csv(table: str, data: bytes) -> bytes:
    """A CSV table's bytes with today's column names and cell values (unchanged bytes when nothing is old).

    Args:
        table: the member name or path (``tables/e1_losses.csv``); its file name selects the
            table-specific renames.
        data: the file's bytes (UTF-8 CSV with a header row).

    Raises:
        ValueError: a renamed column would collide with a column that already has the new name.
    """
    text = data.decode("utf-8")
    first = text.split("\n", 1)[0]
    cells = RENAMED_CELLS.get(PurePosixPath(table).name, {})
    old_names = set(RENAMED_COLUMNS) | set(RENAMED_TABLE_COLUMNS.get(PurePosixPath(table).name, {}))
    if not cells and not (set(re.split(r"[,\r]", first)) & old_names
                          or any(p in first for p in RENAMED_PREFIXES)):
        return data
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return data
    header = [new_column_name(table, c) for c in rows[0]]
    if len(set(header)) != len(header):
        raise ValueError(f"{table}: renaming old columns {rows[0]} gives duplicate names {header}")
    for column, values in cells.items():
        if column in header:
            j = header.index(column)
            for row in rows[1:]:
                if j < len(row) and row[j] in values:
                    row[j] = values[row[j]]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows[1:]])
    return out.getvalue().encode("utf-8")


__all__ = ["RENAMED_COLUMNS", "RENAMED_PREFIXES", "RENAMED_TABLE_COLUMNS", "RENAMED_CELLS", "new_column_name",
           "migrate_csv"]
