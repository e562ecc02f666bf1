"""Shared figure building blocks: atomic PNG writes, latent scatters coloured by digit (E1 and
E2). The KL coefficient's format is :func:`klvae.formatting.fmt_coef`. Each experiment's
figures are in :mod:`klvae.figures.e1`, :mod:`klvae.figures.e2` and :mod:`klvae.figures.e3`."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DPI = 110


def save(fig, out: str | Path) -> None:
    """Save ``fig`` to ``out`` as PNG atomically (write a temp file, then rename) and close it.

    Args:
        fig: a matplotlib Figure.
        out: output ``.png`` path; parent folders are created.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.stem + ".tmp.png")
    fig.savefig(tmp, dpi=DPI, format="png", metadata={"Software": None})
    plt.close(fig)
    os.replace(tmp, out)


DIGIT_CMAP = "tab10"


def scatter_on_axes(ax, z: np.ndarray, labels: np.ndarray | None = None, s: float = 2.0, cmap: str = DIGIT_CMAP):
    """Scatter ``z`` (float ``(n, 2)``) on ``ax``, coloured by integer ``labels`` (0-9) if given.

    Returns the ``PathCollection`` (for a colour bar).
    """
    kw = dict(s=s, linewidths=0, alpha=0.7, rasterized=True)
    if labels is None:
        return ax.scatter(z[:, 0], z[:, 1], **kw)
    return ax.scatter(z[:, 0], z[:, 1], c=labels, cmap=cmap, vmin=-0.5, vmax=9.5, **kw)


def digit_colorbar(fig, mappable, ax):
    """A colour bar with one tick per digit 0-9."""
    cb = fig.colorbar(mappable, ax=ax, ticks=range(10))
    cb.set_label("digit")
    return cb
