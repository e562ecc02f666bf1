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
    marks = {"l": ":--", "r": "--:", "c": ":-:"}
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(marks[a] for a in align) + "|"]
    for row in rows:
        if len(row) != n:
            raise ValueError(f"row {row!r} has {len(row)} cells, header has {n}")
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines) + f"\n\n: {caption} {{#{label}}}\n"
