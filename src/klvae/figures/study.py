"""The backend study's figure: per-epoch training and test loss of both backends, one panel per c.

Reads the per-epoch CSVs of :func:`klvae.experiments.backend_study.evaluate` only (never imports
Keras). Rule ``study_figure``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from klvae.figures.common import save
from klvae.formatting import fmt_coef

#: Line colour per backend.
BACKEND_COLORS = {"tensorflow": "tab:orange", "jax": "tab:blue", "torch": "tab:red"}


def loss_curves(epochs_csvs: list[str], out: str, backends: list[str] | None = None) -> None:
    """Per-epoch training loss (dashed) and test loss (solid) of every run, one panel per c.

    Each post's run is a thin line, the mean over seeds of each backend a bold one, in the
    backend's colour. The y-axis of each panel covers the runs' values from the second epoch on
    (the first epoch's loss is far higher and would hide the differences).

    Args:
        epochs_csvs: the runs' ``epochs.csv`` files (columns ``backend, seed, c, epoch,
            train_loss, loss``; nats per image).
        out: output PNG path.
        backends: legend order (default: as found).

    Raises:
        ValueError: no files given.
    """
    if not epochs_csvs:
        raise ValueError("no per-epoch files to plot")
    df = pd.concat([pd.read_csv(p) for p in epochs_csvs], ignore_index=True)
    coefs = sorted(df["c"].unique())
    backends = backends or sorted(df["backend"].unique())
    fig, axes = plt.subplots(1, len(coefs), figsize=(4.2 * len(coefs), 3.6), squeeze=False)
    for ax, c in zip(axes[0], coefs, strict=True):
        at_c = df[df["c"] == c]
        for b in backends:
            color = BACKEND_COLORS.get(b, "black")
            runs = at_c[at_c["backend"] == b]
            for _, run in runs.groupby("seed"):
                run = run.sort_values("epoch")
                ax.plot(run["epoch"], run["loss"], color=color, lw=0.6, alpha=0.45)
                ax.plot(run["epoch"], run["train_loss"], color=color, lw=0.6, alpha=0.45, ls="--")
            mean = runs.groupby("epoch")[["loss", "train_loss"]].mean()
            n = runs["seed"].nunique()
            ax.plot(mean.index, mean["loss"], color=color, lw=2.2, label=f"{b} test (mean of {n})")
            ax.plot(mean.index, mean["train_loss"], color=color, lw=2.2, ls="--", label=f"{b} train")
        later = at_c[at_c["epoch"] > 1] if at_c["epoch"].max() > 1 else at_c
        lo = min(later["loss"].min(), later["train_loss"].min())
        hi = max(later["loss"].max(), later["train_loss"].max())
        pad = 0.05 * (hi - lo) if hi > lo else 1.0
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_title(f"c = {fmt_coef(float(c))}")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("loss (nats per image)")
    axes[0][-1].legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    save(fig, out)
