"""E1's figures (the KL-coefficient post): latent scatters of the test set's z_mean, 30x30 decoder manifolds
over z in [-3, 3]^2 (after the Keras VAE example) and training curves, one function per
figure rule of ``workflow/rules/e1.smk``."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from klvae.figures.common import digit_colorbar, plt, save, scatter_on_axes
from klvae.formatting import fmt_coef
from klvae.io import c_of


# --- latent scatters ---------------------------------------------------------------------------
def reference_scatter(out: str, n_samples: int = 5000, seed: int = 1) -> None:
    """The KL-coefficient post's reference: ``n_samples`` points from the 2-D standard normal N(0, I) (one PNG)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_samples, 2))
    fig, ax = plt.subplots(figsize=(6, 5))
    scatter_on_axes(ax, z)
    ax.set(xlabel="z[0]", ylabel="z[1]", title=f"{n_samples:,} samples from N(0, I) in 2-D", aspect="equal")
    ax.set_xlim(-4.5, 4.5)
    ax.set_ylim(-4.5, 4.5)
    save(fig, out)


def latent_scatter(latent: str, out: str) -> None:
    """Test-set z_mean of one E1 run, coloured by digit, with a colour bar (the KL-coefficient post's plot).

    Args:
        latent: ``.npz`` from :func:`klvae.experiments.e1.analyse` (``z_mean``, ``labels``, and
            ``c``, the c in the title).
        out: PNG path.
    """
    d = np.load(latent)
    c = c_of(d, latent)
    fig, ax = plt.subplots(figsize=(6.5, 5))
    sc = scatter_on_axes(ax, d["z_mean"], d["labels"])
    digit_colorbar(fig, sc, ax)
    ax.set(xlabel="z[0]", ylabel="z[1]",
           title=f"Encoder output (z_mean) for KL coefficient c = {fmt_coef(c)}")
    save(fig, out)


def scatter_panel(latents: list[str], out: str, limit: float | None = None) -> None:
    """All E1 latent scatters on one page with shared axes (one panel per c) and one colour bar.

    Args:
        latents: ``.npz`` files of :func:`klvae.experiments.e1.analyse`, one panel each in this
            order, titled with the c stored in the file.
        limit: axes span ``[-limit, limit]`` on both axes; ``None`` takes the 99.5th
            percentile of |z_mean| over all runs except c = 0 (whose spread is far larger,
            it gets its own axes and says so in its title).
    """
    data = [np.load(p) for p in latents]
    coefficients = [c_of(d, p) for d, p in zip(data, latents, strict=True)]
    if limit is None:
        pool = np.concatenate([np.abs(d["z_mean"]).ravel() for d, c in zip(data, coefficients, strict=True) if c != 0]
                              or [np.array([4.0])])
        limit = float(max(4.0, np.percentile(pool, 99.5)))
    cols = 4
    rows = math.ceil(len(data) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols + 0.8, 3.1 * rows), squeeze=False, constrained_layout=True)
    sc = None
    for ax, d, c in zip(axes.flat, data, coefficients, strict=False):
        sc = scatter_on_axes(ax, d["z_mean"], d["labels"], s=1.0)
        if c == 0:
            ax.set_title("c = 0 (own axes)")
            ax.set_aspect("equal", adjustable="datalim")
        else:
            ax.set_xlim(-limit, limit)
            ax.set_ylim(-limit, limit)
            ax.set_title(f"c = {fmt_coef(c)}")
            ax.set_aspect("equal", adjustable="box")
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(data):]:
        ax.axis("off")
    if sc is not None:
        digit_colorbar(fig, sc, axes.ravel().tolist())
    fig.supxlabel("z[0]")
    fig.supylabel("z[1]")
    save(fig, out)


# --- decoder manifolds -------------------------------------------------------------------------
def _mosaic(images: np.ndarray) -> np.ndarray:
    """``(n, n, h, w)`` decoded digits as one ``(n*h, n*w)`` float image in [0, 1]; uint8 grids (a
    part bundle's, :data:`klvae.bundle.part.QUANTIZED`: 8 bits, the PNG's own depth) are scaled by 1/255."""
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    n_rows, n_cols, h, w = images.shape
    return images.transpose(0, 2, 1, 3).reshape(n_rows * h, n_cols * w)


def _post_ticks(ax, grid_x, grid_y, size: int, every: int = 1, fontsize: float = 6):
    n = len(grid_x)
    pixel_range = np.arange(size // 2, (n - 1) * size + size // 2 + 1, size)
    ax.set_xticks(pixel_range[::every], np.round(grid_x, 1)[::every], rotation=90, fontsize=fontsize)
    ax.set_yticks(pixel_range[::every], np.round(grid_y, 1)[::every], fontsize=fontsize)


def manifold(grid: str, out: str) -> None:
    """One decoder manifold with the post's axes and tick labels (z rounded to 0.1).

    Args:
        grid: ``.npz`` from :func:`klvae.experiments.e1.analyse` (``images (n, n, 28, 28)``,
            ``grid_x``, ``grid_y``, and ``c``, the c in the title).
        out: PNG path.
    """
    d = np.load(grid)
    c = c_of(d, grid)
    fig, ax = plt.subplots(figsize=(8.5, 8.5))
    ax.imshow(_mosaic(d["images"]), cmap="Greys_r", vmin=0, vmax=1)
    _post_ticks(ax, d["grid_x"], d["grid_y"], d["images"].shape[-1])
    ax.set(xlabel="z[0]", ylabel="z[1]", title=f"Decoder output for KL coefficient c = {fmt_coef(c)}")
    save(fig, out)


def manifold_panel(grids: list[str], out: str) -> None:
    """All E1 manifolds on one page, same latent window for all (ticks every 5th grid point),
    one panel per ``grid.npz`` of :func:`klvae.experiments.e1.analyse`, titled with its stored c."""
    data = [np.load(p) for p in grids]
    coefficients = [c_of(d, p) for d, p in zip(data, grids, strict=True)]
    cols = 4
    rows = math.ceil(len(data) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.4 * rows), squeeze=False, constrained_layout=True)
    for ax, d, c in zip(axes.flat, data, coefficients, strict=False):
        ax.imshow(_mosaic(d["images"]), cmap="Greys_r", vmin=0, vmax=1)
        _post_ticks(ax, d["grid_x"], d["grid_y"], d["images"].shape[-1], every=5, fontsize=6)
        ax.set_title(f"c = {fmt_coef(c)}")
    for ax in list(axes.flat)[len(data):]:
        ax.axis("off")
    fig.supxlabel("z[0]")
    fig.supylabel("z[1]")
    save(fig, out)


# --- training curves ---------------------------------------------------------------------------
def loss_curves(histories: list[str], out: str) -> None:
    """Per-epoch training loss, reconstruction loss and KL divergence (nats per sample) for every c.

    Three panels side by side, one line per history CSV of :func:`klvae.experiments.e1.train`,
    labelled with the c in its ``c`` column; the KL panel uses a log scale (c = 0 lets
    the KL grow to hundreds of nats).

    Raises:
        ValueError: a history without its ``c`` column (written before it was stored:
            rerun its ``e1_train``).
    """
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), constrained_layout=True)
    cmap = plt.get_cmap("viridis")
    for i, path in enumerate(histories):
        h = pd.read_csv(path)
        if "c" not in h:
            raise ValueError(f"{path} has no 'c' column: it was written before e1_train stored the "
                             f"KL coefficient; rerun e1_train for it (delete the file and run snakemake again)")
        c = float(h["c"].iloc[0])
        colour = cmap(i / max(1, len(histories) - 1))
        for ax, key in zip(axes, ["loss", "reconstruction_loss", "kl_loss"], strict=True):
            ax.plot(h["epoch"], h[key], color=colour, label=f"c = {fmt_coef(c)}", marker="o" if len(h) < 4 else None)
    for ax, title in zip(axes, ["total loss", "reconstruction loss (BCE summed over pixels)", "KL divergence"],
                            strict=True):
        ax.set(xlabel="epoch", ylabel="nats per sample (training set)", title=title)
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=8, ncols=2)
    save(fig, out)
