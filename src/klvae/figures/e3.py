"""E3 figures (post IX: post IX and the AE-latent post); each function writes ONE PNG.

All take a ``data_label`` ("CelebA" or "synthetic stand-in, not CelebA") that is printed
in the figure's title -- or ``manifest``, the JSON of :func:`klvae.data.celeba.preprocess`,
from which the label and the stand-in flag are read. When the data are the stand-in
(``standin=True``, the manifest says so, or the label mentions "stand-in") a red banner
across the top says so, so a stand-in figure cannot be mistaken for CelebA.

* :func:`random_faces` -- VAE decodings of z ~ N(0, I) (seeded).
* :func:`ae_random_points` -- AE decodings of z with components uniform in [0, b], one row
  per b (AE post: b = 0.5, 2.5, 5, 8, 10, 15, 20, 30, 50; 10 shown per b).
* :func:`reconstructions` -- held-out test faces (top row) and their VAE and AE
  reconstructions.
* :func:`latent_histogram` -- the AE encoder's latent values on test faces (AE post:
  "most of the data points ... 0 < x_i < 20"), drawn from the histogram and summary that
  :func:`klvae.experiments.e3_analysis.encode_latents` wrote (rule ``e3_ae_latents``).

The first three draw the images that :func:`klvae.experiments.e3_analysis.decode_faces` decoded (rule
``e3_decode``, one ``e3/<vae|ae>/decoded_faces.npz`` per model); no model is loaded here. An
image array may be float32 in [0, 1] (as decoded) or uint8 (a part bundle's 8-bit copy,
:data:`klvae.bundle.part.QUANTIZED`, scaled by 1/255 here).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from klvae.figures.common import plt, save

_BANNER = "SYNTHETIC STAND-IN DATA \u2014 NOT CelebA"


def _is_standin(data_label: str, standin: bool | None) -> bool:
    return bool(standin) if standin is not None else "stand-in" in data_label.lower()


def _resolve(data_label: str | None, standin: bool | None, manifest) -> tuple[str, bool | None]:
    """``data_label``/``standin`` as given, else read from the preprocessing ``manifest`` JSON."""
    if manifest is not None:
        import json

        m = json.loads(Path(manifest).read_text())
        data_label = m["data_label"] if data_label is None else data_label
        standin = bool(m["standin"]) if standin is None else standin
    if data_label is None:
        raise ValueError("give data_label or manifest (the JSON written by klvae.data.celeba.preprocess)")
    return data_label, standin


def _images(d, key: str) -> np.ndarray:
    """``d[key]`` as float images in [0, 1]: float32 as decoded, uint8 (a part bundle's) scaled by 1/255."""
    x = d[key]
    return x.astype(np.float32) / 255.0 if x.dtype == np.uint8 else x


def _decoded(path: str | Path, kind: str) -> dict:
    """The arrays of one model's ``decoded_faces.npz``, refusing the other model's file."""
    with np.load(path, allow_pickle=False) as d:
        out = {k: d[k] for k in d.files}
    if "kind" not in out or str(out["kind"]) != kind:
        got = str(out["kind"]) if "kind" in out else "no kind (a two-model file of an older run?)"
        raise ValueError(f"{path}: expected the {kind.upper()}'s decoded faces (rule e3_decode, kind={kind}), "
                         f"the file holds {got}")
    return out


def _label(fig, title: str, data_label: str, standin: bool | None, top: float) -> None:
    """Title with the data label; a red banner above it for the stand-in."""
    fig.suptitle(f"{title}\ndata: {data_label}", y=top, fontsize=11)
    if _is_standin(data_label, standin):
        fig.text(0.5, 0.995, _BANNER, ha="center", va="top", fontsize=12, fontweight="bold", color="white",
                 bbox={"boxstyle": "square,pad=0.35", "facecolor": "#c0392b", "edgecolor": "none"})


def _grid_figure(n_rows: int, n_cols: int, title: str, data_label: str, standin: bool | None,
                 label_in: float = 0.0, cell_in: float = 1.1):
    """A figure with a fixed-height header (title, data label, banner) above an image grid.

    Returns ``(fig, top, left)``: the grid's top and left edges in figure fractions.
    """
    header_in = 0.75 + (0.4 if _is_standin(data_label, standin) else 0.0)
    w, h = cell_in * n_cols + label_in + 0.1, cell_in * n_rows + header_in
    fig = plt.figure(figsize=(w, h))
    _label(fig, title, data_label, standin, top=1 - (header_in - 0.7) / h)
    return fig, 1 - header_in / h, (label_in + 0.05) / w


def _grid(fig, images: np.ndarray, n_rows: int, n_cols: int, top: float, left: float = 0.01,
          row_labels=None) -> list:
    axes = fig.subplots(n_rows, n_cols, squeeze=False,
                        gridspec_kw={"left": left, "right": 0.995, "bottom": 0.01, "top": top,
                                     "wspace": 0.03, "hspace": 0.05})
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        for s in ax.spines.values():
            s.set_visible(False)
        if k < len(images):
            ax.imshow(images[k], interpolation="nearest")
    if row_labels is not None:
        for r, lab in enumerate(row_labels):
            axes[r, 0].set_ylabel(lab, rotation=0, ha="right", va="center", fontsize=10, labelpad=6)
    return axes


def random_faces(decoded: str | Path, png: str | Path, data_label: str | None = None, n_cols: int = 10,
                 standin: bool | None = None, manifest: str | Path | None = None) -> None:
    """VAE decodings of points z ~ N(0, I) (seeded), ``n_cols`` per row -> ``png``.

    Args:
        decoded: the VAE's ``.npz`` from :func:`klvae.experiments.e3_analysis.decode_faces`
            (``random_faces`` ``(n, 96, 96, 3)``, ``z_dim``, ``seed``).
        png: output path.
        data_label: what the model was trained on (shown; banner for the stand-in).
        n_cols: images per row; ``ceil(n / n_cols)`` rows.
    """
    data_label, standin = _resolve(data_label, standin, manifest)
    d = _decoded(decoded, "vae")
    images, z_dim, seed = _images(d, "random_faces"), int(d["z_dim"]), int(d["seed"])
    n_rows = -(-len(images) // n_cols)
    fig, top, left = _grid_figure(n_rows, n_cols, f"VAE: faces decoded from random z ~ N(0, I), z_dim = {z_dim} "
                                  f"(seed {seed})", data_label, standin)
    _grid(fig, images, n_rows, n_cols, top=top, left=left)
    save(fig, png)


def ae_random_points(decoded: str | Path, png: str | Path, data_label: str | None = None,
                     standin: bool | None = None, manifest: str | Path | None = None) -> None:
    """AE decodings of z with i.i.d. components ``z_i ~ U(0, b)``, one row per ``b`` -> ``png``.

    Args:
        decoded: the AE's ``.npz`` from :func:`klvae.experiments.e3_analysis.decode_faces` (``ae_points``
            ``(len(bounds) * n_per_bound, 96, 96, 3)``, ``bounds``, ``n_per_bound``,
            ``z_dim``). The AE post drew 100 points per b and showed 10; all decoded points
            are shown.
        png: output path.
    """
    data_label, standin = _resolve(data_label, standin, manifest)
    d = _decoded(decoded, "ae")
    images, bounds = _images(d, "ae_points"), [float(b) for b in d["bounds"]]
    n_per_bound, z_dim = int(d["n_per_bound"]), int(d["z_dim"])
    n_rows = len(bounds)
    fig, top, left = _grid_figure(n_rows, n_per_bound, f"AE: decodings of random z with z_i ~ U(0, b), z_dim = {z_dim}",
                                  data_label, standin, label_in=0.8)
    _grid(fig, images, n_rows, n_per_bound, top=top, left=left, row_labels=[f"b = {b:g}" for b in bounds])
    save(fig, png)


def reconstructions(vae_decoded: str | Path, ae_decoded: str | Path, png: str | Path, data_label: str | None = None,
                    standin: bool | None = None, manifest: str | Path | None = None) -> None:
    """Held-out test faces (top row), VAE reconstructions, AE reconstructions -> ``png``.

    Args:
        vae_decoded, ae_decoded: each model's ``.npz`` from
            :func:`klvae.experiments.e3_analysis.decode_faces` (``test_faces``, ``test_index``,
            ``reconstructions`` ``(n, 96, 96, 3)``, ``decoder(z_mean)``); both must hold the
            same test faces (the same ``test_index``).
        png: output path.

    Raises:
        ValueError: a file of the wrong model, or the two files reconstruct different test faces.
    """
    data_label, standin = _resolve(data_label, standin, manifest)
    vae, ae = _decoded(vae_decoded, "vae"), _decoded(ae_decoded, "ae")
    if not np.array_equal(vae["test_index"], ae["test_index"]):
        raise ValueError(f"{vae_decoded} and {ae_decoded} reconstruct different test faces (test_index "
                         f"{vae['test_index'].tolist()} vs {ae['test_index'].tolist()}): decode both with the same "
                         "seed and test set (rule e3_decode)")
    rows = [_images(vae, "test_faces"), _images(vae, "reconstructions"), _images(ae, "reconstructions")]
    n = len(rows[0])
    fig, top, left = _grid_figure(3, n, "Held-out test faces and their reconstructions", data_label,
                                  standin, label_in=0.6)
    _grid(fig, np.concatenate(rows), 3, n, top=top, left=left, row_labels=["test", "VAE", "AE"])
    save(fig, png)


def latent_histogram(histogram: str | Path, summary: str | Path, png: str | Path, data_label: str | None = None,
                     standin: bool | None = None, manifest: str | Path | None = None) -> None:
    """Histogram of all latent components ``z_i`` of the AE on test faces -> ``png``.

    Args:
        histogram: ``.npz`` from :func:`klvae.experiments.e3_analysis.encode_latents`: ``counts`` (int
            ``(bins,)``) and ``edges`` (``(bins + 1,)``) of ``np.histogram(z.ravel(), bins)``.
        summary: JSON from :func:`klvae.experiments.e3_analysis.encode_latents` (``n_images``, ``z_dim``,
            ``min``, ``max``, ``q01``, ``q99``, ``frac_in_0_20``, ``frac_abs_le_3``).

    The bars are those of ``hist(z.ravel(), bins, density=True)`` (each bin's count is given as
    the weight of its left edge, so the same bins and heights are drawn without the latents).
    The plot marks the AE post's range 0 < z_i < 20, the range [-3, 3] where N(0, 1) keeps
    99.7 %, and states the fraction of values inside each.
    """
    import json

    data_label, standin = _resolve(data_label, standin, manifest)
    with np.load(histogram, allow_pickle=False) as d:
        counts, edges = d["counts"], d["edges"]
    s = json.loads(Path(summary).read_text())
    in_post, in_3 = float(s["frac_in_0_20"]), float(s["frac_abs_le_3"])
    sb = _is_standin(data_label, standin)
    fig, ax = plt.subplots(figsize=(8, 4.6))
    fig.subplots_adjust(top=0.8 if sb else 0.84, bottom=0.12, left=0.1, right=0.97)
    ax.hist(edges[:-1], bins=edges, weights=counts, color="#2c7fb8", alpha=0.85, density=True)
    ax.axvspan(0, 20, color="#fdae61", alpha=0.18, label=f"post's range 0 < z_i < 20: {100 * in_post:.1f} %")
    ax.axvspan(-3, 3, color="0.5", alpha=0.15, label=f"|z_i| <= 3 (N(0,1) 99.7 %): {100 * in_3:.1f} %")
    lo, hi = float(s["min"]), float(s["max"])
    pad = 0.05 * max(hi - lo, 1e-6)
    ax.set_xlim(lo - pad, hi + pad)  # the data's range; the shaded bands are clipped to it
    ax.set_xlabel("latent component value z_i (AE encoder output on test faces)")
    ax.set_ylabel("density")
    ax.legend(loc="upper right", fontsize=9)
    ax.text(0.01, 0.97, f"{s['n_images']:,} test faces x {s['z_dim']} dims\nmin {lo:.2f}, max {hi:.2f}, "
            f"1-99 %: [{s['q01']:.2f}, {s['q99']:.2f}]",
            transform=ax.transAxes, va="top", fontsize=9)
    _label(fig, "Latent values the plain AE uses", data_label, standin, top=0.975 - (0.06 if sb else 0))
    save(fig, png)


__all__ = ["random_faces", "ae_random_points", "reconstructions", "latent_histogram"]
