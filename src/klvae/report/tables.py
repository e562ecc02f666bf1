"""Markdown tables with Quarto/pandoc captions and cross-reference ids."""

from __future__ import annotations

import math
from typing import Sequence


def fmt_num(x, digits: int = 2) -> str:
    """Format a number for a table: fixed ``digits`` decimals, '--' for missing/NaN."""
    if x is None:
        return "--"
    try:
        xf = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(xf):
        return "--"
    return f"{xf:,.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence], caption: str, label: str,
                   align: str | None = None) -> str:
    """A pipe table with ``: caption {#tbl-label}`` (Quarto's and pandoc 3's table caption syntax).

    Args:
        header: column titles.
        rows: cells, already formatted as strings (other values are ``str()``-ed).
        caption: the caption text (markdown).
        label: cross-reference id; must start with ``tbl-``.
        align: one character per column, ``l``, ``r`` or ``c`` (default: all right except the first).

    Raises:
        ValueError: if ``label`` does not start with ``tbl-`` or a row has the wrong length.
    """
    if not label.startswith("tbl-"):
        raise ValueError(f"table label {label!r} must start with 'tbl-'")
    n = len(header)
    align = align or ("l" + "r" * (n - 1))
    cells = []
    for row in rows:
        if len(row) != n:
            raise ValueError(f"row {row!r} has {len(row)} cells, header has {n}")
        cells.append([str(c).replace("|", "\\|") for c in row])
    # Pandoc gives wide pipe tables relative column widths from the separator's dash counts:
    # make them follow the longest cell (header words count too), so long text gets room.
    def width(text: str) -> int:  # monospace `code` is ~1.6x as wide as proportional text
        code = sum(len(part) for part in text.split("`")[1::2])
        return len(text) + int(0.6 * code)

    longest = [max([max(width(w) for w in str(h).split() or [""]) + 2, *(width(r[i]) for r in cells)])
               for i, h in enumerate(header)]
    # + the cell padding ("reproduced" stays one word); right-aligned columns hold numbers, whose
    # digits are wider than the average letter and must not wrap; text wraps, up to 40 wide
    dashes = [max(3, min(40, m + 3)) if a == "l" else max(3, int(1.3 * m) + 3)
              for a, m in zip(align, longest, strict=True)]
    marks = {"l": lambda k: ":" + "-" * (k - 1), "r": lambda k: "-" * (k - 1) + ":",
             "c": lambda k: ":" + "-" * (k - 2) + ":"}
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(marks[a](k) for a, k in zip(align, dashes, strict=True)) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(lines) + f"\n\n: {caption} {{#{label}}}\n"
