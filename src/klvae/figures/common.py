"""Shared figure helpers: consistent style, atomic PNG writes and a provenance footer."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

DPI = 110


def save(fig, out: str | Path, footer: str | None = None) -> None:
    """Save ``fig`` to ``out`` as PNG atomically (write a temp file, then rename) and close it.

    Args:
        fig: a matplotlib Figure.
        out: output ``.png`` path; parent folders are created.
        footer: small grey text at the bottom-right naming the rule and data (provenance).
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if footer:
        fig.text(0.995, 0.003, footer, ha="right", va="bottom", fontsize=7, color="0.45")
    tmp = out.with_name(out.stem + ".tmp.png")
    fig.savefig(tmp, dpi=DPI, format="png", metadata={"Software": None})
    plt.close(fig)
    os.replace(tmp, out)


def fmt_coef(c: float) -> str:
    """Format a KL coefficient as the seed writes it (0, 0.02, 0.1, 0.5, 1, 2, 10, 20)."""
    return f"{c:g}"
