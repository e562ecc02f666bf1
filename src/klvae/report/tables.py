"""Markdown pipe tables for the report's generated fragments.

A fragment holds a table's body only. Its caption and cross-reference id are prose and live in
the chapter (``report/_*.qmd``), on the line after the include, in Quarto's and pandoc 3's
table caption syntax::

    {{< include /_generated/e1_losses.md >}}

    : E1 test-set losses ... {{< var made_by.e1_table >}} {#tbl-e1-losses}

Cells are text unless they are :class:`~klvae.report.escape.Markdown` (:mod:`klvae.report.escape`):
a cell from data shows literally, a cell the code built with markup (`````end_layer`````,
``**differs**``) is written as it is.
"""

from __future__ import annotations

import html
import math
from typing import Sequence

from klvae.report.escape import Markdown, md_text

#: A missing number in a table (pandoc's smart typography shows it as an en dash).
MISSING = Markdown("--")


def fmt_num(x, digits: int = 2) -> Markdown:
    """Format a number for a table: fixed ``digits`` decimals with thousands separators,
    :data:`MISSING` for ``None``/NaN; a value that is not a number is shown as text
    (:func:`~klvae.report.escape.md_text`), never passed through as Markdown."""
    if x is None:
        return MISSING
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return md_text(x)
    if math.isnan(xf):
        return MISSING
    return Markdown(f"{xf:,.{digits}f}")


#: Dashes of a pipe table's separator line beyond which its text columns give up width (about a page).
TABLE_BUDGET = 150


def markdown_table(header: Sequence[str], rows: Sequence[Sequence], align: str | None = None) -> str:
    """A pipe table without caption: header, separator and one line per row, ending in a newline.

    The chapter that includes it writes the caption and the ``{#tbl-...}`` id after it (see the
    module's docstring).

    Args:
        header: column titles.
        rows: cells. A :class:`~klvae.report.escape.Markdown` cell is written as it is (its
            ``|`` escaped for the table); any other value is text, escaped by
            :func:`~klvae.report.escape.md_text` (a number: its ``str()``). The same holds for
            ``header``.
        align: one character per column, ``l``, ``r`` or ``c`` (default: all right except the first).

    Raises:
        ValueError: a row has the wrong length.
    """
    n = len(header)
    align = align or ("l" + "r" * (n - 1))

    def cell(c) -> str:
        return c.replace("|", "\\|") if isinstance(c, Markdown) else md_text(c)

    header = [cell(h) for h in header]
    cells = []
    for row in rows:
        if len(row) != n:
            raise ValueError(f"row {row!r} has {len(row)} cells, header has {n}")
        cells.append([cell(c) for c in row])
    # Pandoc gives wide pipe tables relative column widths from the separator's dash counts:
    # make them follow the longest cell (header words count too), so long text gets room.
    def width(text: str) -> int:  # monospace `code` is ~1.6x as wide as proportional text
        text = html.unescape(text)  # a character reference is one character wide
        code = sum(len(part) for part in text.split("`")[1::2])
        return len(text) + int(0.6 * code)

    longest = [max([max(width(w) for w in str(h).split() or [""]) + 2, *(width(r[i]) for r in cells)])
               for i, h in enumerate(header)]
    # + the cell padding ("reproduced" stays one word); right-aligned columns hold numbers, whose
    # digits are wider than the average letter and must not wrap; text wraps, up to 40 wide
    dashes = [max(3, min(40, m + 3)) if a == "l" else max(3, int(1.3 * m) + 3)
              for a, m in zip(align, longest, strict=True)]
    # a table wider than TABLE_BUDGET dashes (the scorecard's eleven columns): the text columns give
    # up room, down to their longest word, so the numbers keep theirs (PDF columns are relative)
    excess = sum(dashes) - TABLE_BUDGET
    if excess > 0:
        floor = [max(3, max((width(w) for r in [header, *cells] for w in str(r[i]).split()), default=0) + 5)
                 if a == "l" else d for i, (a, d) in enumerate(zip(align, dashes, strict=True))]
        spare = sum(d - f for d, f in zip(dashes, floor, strict=True))
        if spare > 0:
            cut = min(1.0, excess / spare)
            dashes = [d - int(cut * (d - f)) for d, f in zip(dashes, floor, strict=True)]
    marks = {"l": lambda k: ":" + "-" * (k - 1), "r": lambda k: "-" * (k - 1) + ":",
             "c": lambda k: ":" + "-" * (k - 2) + ":"}
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(marks[a](k) for a, k in zip(align, dashes, strict=True)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(lines) + "\n"
