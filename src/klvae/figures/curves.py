"""Training curves from history CSVs (E1; E2 overlays use the same reader)."""

from __future__ import annotations

import pandas as pd

from klvae.figures.common import fmt_coef, plt, save


def e1_loss_curves(histories: list[str], coefficients: list[float], out: str, footer: str = "") -> None:
    """Per-epoch training loss, reconstruction loss and KL divergence (nats per sample) for every c.

    Three panels side by side, one line per c; the KL panel uses a log scale (c = 0 lets the
    KL grow to hundreds of nats).
    """
    fig, axes = plt.subplots(1, 3, figsize=(13, 4), constrained_layout=True)
    cmap = plt.get_cmap("viridis")
    for i, (path, c) in enumerate(zip(histories, coefficients, strict=True)):
        h = pd.read_csv(path)
        colour = cmap(i / max(1, len(histories) - 1))
        for ax, key in zip(axes, ["loss", "reconstruction_loss", "kl_loss"], strict=True):
            ax.plot(h["epoch"], h[key], color=colour, label=f"c = {fmt_coef(c)}", marker="o" if len(h) < 4 else None)
    for ax, title in zip(axes, ["total loss", "reconstruction loss (BCE summed over pixels)", "KL divergence"],
                            strict=True):
        ax.set(xlabel="epoch", ylabel="nats per sample (training set)", title=title)
    axes[2].set_yscale("log")
    axes[0].legend(fontsize=8, ncols=2)
    save(fig, out, footer or "rule e1_loss_curves")
