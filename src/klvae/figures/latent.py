"""Latent-space scatter plots (E1, seed 003; E2 reuses :func:`scatter_on_axes`)."""

from __future__ import annotations

import math

import numpy as np

from klvae.figures.common import fmt_coef, plt, save

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


def reference_scatter(out: str, n_samples: int = 5000, seed: int = 1, footer: str = "") -> None:
    """Seed 003's reference: ``n_samples`` points from the 2-D standard normal N(0, I) (one PNG)."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_samples, 2))
    fig, ax = plt.subplots(figsize=(6, 5))
    scatter_on_axes(ax, z)
    ax.set(xlabel="z[0]", ylabel="z[1]", title=f"{n_samples:,} samples from N(0, I) in 2-D", aspect="equal")
    ax.set_xlim(-4.5, 4.5)
    ax.set_ylim(-4.5, 4.5)
    save(fig, out, footer or "rule e1_reference_scatter")


def latent_scatter(latent: str, out: str, kl_coefficient: float, footer: str = "") -> None:
    """Test-set z_mean of one E1 run, coloured by digit, with a colour bar (seed 003's plot).

    Args:
        latent: ``.npz`` from :func:`klvae.experiments.e1.analyse` (``z_mean``, ``labels``).
        out: PNG path.
        kl_coefficient: c, for the title.
    """
    d = np.load(latent)
    fig, ax = plt.subplots(figsize=(6.5, 5))
    sc = scatter_on_axes(ax, d["z_mean"], d["labels"])
    digit_colorbar(fig, sc, ax)
    ax.set(xlabel="z[0]", ylabel="z[1]",
           title=f"Encoder output (z_mean) for KL coefficient c = {fmt_coef(kl_coefficient)}")
    save(fig, out, footer or "rule e1_scatter")


def scatter_panel(latents: list[str], coefficients: list[float], out: str, limit: float | None = None,
                  footer: str = "") -> None:
    """All E1 latent scatters on one page with shared axes (one panel per c) and one colour bar.

    Args:
        latents: ``.npz`` files in the order of ``coefficients``.
        coefficients: the c of each panel.
        limit: axes span ``[-limit, limit]`` on both axes; ``None`` takes the 99.5th
            percentile of |z_mean| over all runs except c = 0 (whose spread is far larger,
            it gets its own axes and says so in its title).
    """
    data = [np.load(p) for p in latents]
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
    save(fig, out, footer or "rule e1_scatter_panel")
