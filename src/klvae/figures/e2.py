"""E2 figures (five ways to add the KL loss; posts IV-VIII). Each function writes ONE PNG.

* :func:`loss_curves` -- training loss, BCE and KL per epoch, all strategies overlaid (one z_dim).
* :func:`latent_scatter` -- test-set z_mean per strategy at z_dim = 2, coloured by digit,
  with the extent the post reports (post IV: -3 < x < 4.5, -4 < y < 3.5) as a dashed box.
* :func:`reconstructions` -- test images (top row) and each strategy's reconstructions.

Inputs are the files written by :mod:`klvae.experiments.e2` (history CSVs, ``analyse``
npz files); nothing here trains or evaluates a network.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle

from klvae.figures.common import digit_colorbar, plt, save, scatter_on_axes

#: Line styles that keep identical curves distinguishable when they lie on top of each other.
_STYLES = [dict(ls="-", marker="o"), dict(ls="--", marker="s"), dict(ls="-.", marker="^"),
           dict(ls=":", marker="D"), dict(ls=(0, (5, 1, 1, 1)), marker="v"), dict(ls="-", marker="x")]
_ROMAN = {"I": 1, "V": 5, "X": 10}


def _post_number(post: str) -> int:
    """A post's Roman numeral as a number (``"VII"`` -> 7), for ordering; 0 for none (``"-"``)."""
    digits = [_ROMAN.get(ch, 0) for ch in str(post)]
    return sum(-d if i + 1 < len(digits) and d < digits[i + 1] else d for i, d in enumerate(digits))


def _label(strategy: str, post: str) -> str:
    return f"{strategy} ({post})" if _post_number(post) else strategy


def _ordered(items, post_of):
    """``items`` in the posts' order (posts IV..VIII), baselines (no post) last."""
    return sorted(items, key=lambda it: _post_number(post_of(it)) or 99)


def loss_curves(histories: Sequence[str], out: str, z_dim: int | None = None, show_post: bool = True) -> None:
    """Per-epoch training loss, reconstruction loss and KL of every strategy, overlaid (one PNG).

    Args:
        histories: history CSVs of :func:`klvae.experiments.e2.train` (columns ``epoch,
            strategy, z_dim, loss, reconstruction_loss, kl_loss``).
        out: PNG path.
        z_dim: keep only rows of this z_dim (None: all rows; then the CSVs should share one).
        show_post: for z_dim 12, mark post VII's log (epochs 3-6, model_add_loss,
            GTX 960; its ``kl`` converted to KL_mean by dividing by fact).

    Panels: total loss ``BCE + fact * KL_mean``; BCE in nats per pixel; KL_mean
    (``-mean(1 + log sigma^2 - mu^2 - sigma^2)``, unscaled).
    """
    from klvae.reference import POST_VII_LOG

    frame = pd.concat([pd.read_csv(p) for p in histories], ignore_index=True)
    if z_dim is not None:
        frame = frame[frame["z_dim"] == int(z_dim)]
    zs = sorted(frame["z_dim"].unique())
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2), constrained_layout=True)
    cmap = plt.get_cmap("tab10")
    posts = dict(zip(frame["strategy"], frame["post"], strict=True))
    for i, name in enumerate(_ordered(frame["strategy"].unique(), posts.get)):
        h = frame[frame["strategy"] == name].sort_values("epoch")
        for ax, key in zip(axes, ["loss", "reconstruction_loss", "kl_loss"], strict=True):
            ax.plot(h["epoch"], h[key], color=cmap(i), label=_label(name, posts[name]), lw=1.4, ms=4, alpha=0.85,
                    markevery=max(1, len(h) // 12), **_STYLES[i % len(_STYLES)])
    if show_post and zs == [POST_VII_LOG["z_dim"]]:
        for ax, key in zip(axes, ["loss", "reconstruction_loss", "kl_mean"], strict=True):
            ax.plot(POST_VII_LOG["epoch"], POST_VII_LOG[key], "k*", ms=9, ls="none",
                    label="seed, post VII (epochs 3-6)")
    titles = ["total loss = BCE + fact * KL", "reconstruction loss (mean BCE)", "KL term (KL_mean, unscaled)"]
    units = ["nats per pixel", "nats per pixel", "-mean(1 + log s^2 - mu^2 - s^2)"]
    for ax, title, unit in zip(axes, titles, units, strict=True):
        ax.set(xlabel="epoch", ylabel=unit, title=title)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"E2 training curves, z_dim = {', '.join(str(z) for z in zs)} (training-set epoch means)")
    save(fig, out)


def latent_scatter(latents: Sequence[str], out: str, extent: dict | None = None) -> None:
    """Test-set z_mean of each strategy (z_dim = 2), coloured by digit, shared axes (one PNG).

    Args:
        latents: ``analyse`` latent ``.npz`` files (``z_mean`` ``(n, 2)``, ``labels``,
            ``strategy``), one per strategy.
        out: PNG path.
        extent: the post's observed extent ``{"x": (lo, hi), "y": (lo, hi)}``, drawn as a
            dashed box (default: post IV's -3 < x < 4.5, -4 < y < 3.5).

    Raises:
        ValueError: a latent file is not 2-D.
    """
    from klvae.reference import POST_LATENT_EXTENT

    extent = extent or POST_LATENT_EXTENT
    data = [np.load(p) for p in latents]
    for p, d in zip(latents, data, strict=True):
        if d["z_mean"].shape[-1] != 2:
            raise ValueError(f"{p}: z_mean has {d['z_mean'].shape[-1]} dimensions; the scatter needs z_dim = 2")
    data = _ordered(data, lambda d: str(d["post"]))
    pool = np.concatenate([d["z_mean"] for d in data])
    lo = np.minimum(np.percentile(pool, 0.2, axis=0), [extent["x"][0], extent["y"][0]]) - 0.5
    hi = np.maximum(np.percentile(pool, 99.8, axis=0), [extent["x"][1], extent["y"][1]]) + 0.5
    cols = min(3, len(data))
    rows = math.ceil(len(data) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols + 0.8, 4.0 * rows), squeeze=False,
                             constrained_layout=True)
    sc = None
    for ax, d in zip(axes.flat, data, strict=False):
        sc = scatter_on_axes(ax, d["z_mean"], d["labels"], s=1.5)
        ax.add_patch(Rectangle((extent["x"][0], extent["y"][0]), extent["x"][1] - extent["x"][0],
                               extent["y"][1] - extent["y"][0], fill=False, ls="--", lw=1.2, ec="k",
                               label="post IV: -3<x<4.5, -4<y<3.5"))
        ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), xlabel="z_mean[0]", ylabel="z_mean[1]",
               title=_label(str(d["strategy"]), str(d["post"])), aspect="equal")
    for ax in list(axes.flat)[len(data):]:
        ax.axis("off")
    axes.flat[0].legend(loc="upper left", fontsize=7)
    if sc is not None:
        digit_colorbar(fig, sc, list(axes.flat))
    fig.suptitle(f"E2 latent space (z_dim = 2): test-set z_mean, {len(data[0]['labels']):,} images per panel")
    save(fig, out)


def reconstructions(recons: Sequence[str], out: str) -> None:
    """Test images (top row) and each strategy's reconstructions below (one PNG).

    Args:
        recons: ``analyse`` recon ``.npz`` files (``originals``, ``reconstructions``
            ``(n, 28, 28)``, ``strategy``, ``z_dim``), one per strategy, same images.
        out: PNG path.

    Raises:
        ValueError: the files do not hold the same original images.
    """
    data = [np.load(p) for p in recons]
    data = _ordered(data, lambda d: str(d["post"]))
    originals = data[0]["originals"]
    for p, d in zip(recons, data, strict=True):
        if not np.array_equal(d["originals"], originals):
            raise ValueError(f"{p}: different original images; reconstructions must be of the same test images")
    n = len(originals)
    rows = [("test images", originals)] + [(_label(str(d["strategy"]), str(d["post"])), d["reconstructions"])
                                           for d in data]
    fig, axes = plt.subplots(len(rows), n, figsize=(1.1 * n + 1.6, 1.15 * len(rows)), squeeze=False)
    for r, (label, imgs) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(imgs[c], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
        if r == 0:
            for ax in axes[r]:
                for spine in ax.spines.values():
                    spine.set_color("tab:blue")
    zs = sorted({int(d["z_dim"]) for d in data})
    fig.suptitle(f"E2 reconstructions, z_dim = {', '.join(map(str, zs))}: decoder(z_mean) of the first {n} test images",
                 fontsize=10)
    fig.subplots_adjust(left=0.17, right=0.99, top=0.88, bottom=0.06, wspace=0.05, hspace=0.08)
    save(fig, out)


__all__ = ["loss_curves", "latent_scatter", "reconstructions"]
