"""30x30 decoder manifolds over z in [-3, 3]^2 (E1, seed 003, after the Keras VAE example)."""

from __future__ import annotations

import math

import numpy as np

from klvae.figures.common import fmt_coef, plt, save


def _mosaic(images: np.ndarray) -> np.ndarray:
    n_rows, n_cols, h, w = images.shape
    return images.transpose(0, 2, 1, 3).reshape(n_rows * h, n_cols * w)


def _seed_ticks(ax, grid_x, grid_y, size: int, every: int = 1, fontsize: float = 6):
    n = len(grid_x)
    pixel_range = np.arange(size // 2, (n - 1) * size + size // 2 + 1, size)
    ax.set_xticks(pixel_range[::every], np.round(grid_x, 1)[::every], rotation=90, fontsize=fontsize)
    ax.set_yticks(pixel_range[::every], np.round(grid_y, 1)[::every], fontsize=fontsize)


def manifold(grid: str, out: str, kl_coefficient: float, footer: str = "") -> None:
    """One decoder manifold with the seed's axes and tick labels (z rounded to 0.1).

    Args:
        grid: ``.npz`` from :func:`klvae.experiments.e1.analyse` (``images (n, n, 28, 28)``,
            ``grid_x``, ``grid_y``).
        out: PNG path.
        kl_coefficient: c, for the title.
    """
    d = np.load(grid)
    fig, ax = plt.subplots(figsize=(8.5, 8.5))
    ax.imshow(_mosaic(d["images"]), cmap="Greys_r", vmin=0, vmax=1)
    _seed_ticks(ax, d["grid_x"], d["grid_y"], d["images"].shape[-1])
    ax.set(xlabel="z[0]", ylabel="z[1]", title=f"Decoder output for KL coefficient c = {fmt_coef(kl_coefficient)}")
    save(fig, out, footer or "rule e1_manifold")


def manifold_panel(grids: list[str], coefficients: list[float], out: str, footer: str = "") -> None:
    """All E1 manifolds on one page, same latent window for all (ticks every 5th grid point)."""
    data = [np.load(p) for p in grids]
    cols = 4
    rows = math.ceil(len(data) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.4 * rows), squeeze=False, constrained_layout=True)
    for ax, d, c in zip(axes.flat, data, coefficients, strict=False):
        ax.imshow(_mosaic(d["images"]), cmap="Greys_r", vmin=0, vmax=1)
        _seed_ticks(ax, d["grid_x"], d["grid_y"], d["images"].shape[-1], every=5, fontsize=6)
        ax.set_title(f"c = {fmt_coef(c)}")
    for ax in list(axes.flat)[len(data):]:
        ax.axis("off")
    fig.supxlabel("z[0]")
    fig.supylabel("z[1]")
    save(fig, out, footer or "rule e1_manifold_panel")
