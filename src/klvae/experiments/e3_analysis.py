"""E3 -- faces: what is done with a trained face VAE or AE (post IX and the AE-latent post).

Entry points the Snakemake rules call (file paths + plain params as keyword arguments; every
output is written under a temporary name and renamed when complete). Each reads one model that
:func:`klvae.experiments.e3.train` wrote:

* :func:`evaluate` -- test-set loss, reconstruction and KL of one model, one JSON;
  :func:`metrics_table` -- both models' JSON as one CSV (``tables/e3_metrics.csv``).
* :func:`encode_latents` -- the encoder's ``z_mean`` of test faces (``.npy``) plus a JSON
  summary of the value range (the AE post: "most of the data points ... in a region of
  0 < x_i < 20") and the histogram the figure draws; :func:`latents_table` -- the summary
  as ``tables/e3_ae_latents.csv``.
* :func:`decode_faces` -- the decoded images the face figures show, per model (VAE faces
  from z ~ N(0, I); AE decodings of z_i ~ U(0, b); test faces and the model's
  reconstructions), one ``.npz`` with the settings that made them.

Everything that needs a model's weights runs per model (one job, one ``.keras``), so each
model's paper part (:mod:`klvae.paper`) stands alone; the table and the figures that show both
models are built from the per-model files.

The figures are drawn by :mod:`klvae.figures.e3` from these files (no model is loaded there).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from klvae.experiments.e3 import open_images
from klvae.io import atomic_path, commit, write_json, write_rows
from klvae.seeding import set_global_seed

#: The AE post's boundaries b for z_i ~ U(0, b) (config ``e3.ae_bounds``).
AE_BOUNDS = (0.5, 2.5, 5.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0)
#: Latent points decoded per model call in :func:`decode_faces`.
DECODE_BATCH = 256


def _check_kind(net, kind: str, path) -> None:
    """Refuse a model file whose class is not ``kind``'s (``"ae"``: :class:`FaceAE`; ``"vae"``: the VAE)."""
    from klvae.models.faces import FaceAE

    if kind not in ("vae", "ae"):
        raise ValueError(f"unknown model kind {kind!r}; choose 'vae' or 'ae'")
    if isinstance(net, FaceAE) != (kind == "ae"):
        raise ValueError(f"{path}: expected the face {kind.upper()}, the file holds a {type(net).__name__}")


def evaluate(model: str | Path, test_npy: str | Path, metrics: str | Path, kind: str = "vae",
             n_test: int | None = None, batch_size: int = 256, seed: int = 0, threads: int = 1) -> dict:
    """Test-set loss terms of one face model -> ``metrics`` (JSON, one row of :func:`metrics_table`).

    Keys: ``model`` (``kind``: vae/ae), ``loss``, ``reconstruction_loss`` (mean-BCE, nats per
    pixel value), ``kl_loss`` (KL_mean; for the AE a monitor only, weight 0), ``fact`` (the KL
    weight on the posts' scale), ``mse`` (of the deterministic reconstruction
    ``decoder(z_mean)``, in [0, 1]^2 units), all floats (means over the test images, each batch
    weighted by its size), and ``n_test`` (int).

    The VAE's loss uses one draw of z per image from its sampling layer's ``SeedGenerator``,
    whose state is saved in the ``.keras`` file and restored on loading; the AE draws nothing.
    So each model's numbers depend on its own file only: one job per model gives the numbers
    the former two-model evaluation gave (it also evaluated the VAE first, straight after
    ``set_global_seed(seed, threads)``).

    Args:
        model: ``.keras`` file from :func:`train`.
        test_npy: uint8 ``(N, 96, 96, 3)`` test ``.npy`` from :func:`klvae.data.celeba.preprocess`.
        metrics: output JSON.
        kind: ``"vae"`` or ``"ae"``; the file's model must be of that kind.
        n_test: use the first ``n_test`` test images (None = all).
        batch_size: images per forward pass.
        seed: :func:`klvae.seeding.set_global_seed`'s seed.
        threads: CPU threads of the Keras backend.

    Raises:
        ValueError: unknown kind, or the file holds the other kind of model.
    """
    set_global_seed(seed, threads)
    from keras import ops

    from klvae.data.stream import ImageBatches
    from klvae.models.faces import load_face_model

    x = open_images(test_npy, n_test)
    net = load_face_model(model)
    _check_kind(net, kind, model)
    sums = np.zeros(4)
    for batch in ImageBatches(x, batch_size):
        total, rec, kl = net.loss_terms(batch, training=False)
        z_mean, _ = net.encoder(batch, training=False)
        mse = ops.mean(ops.square(net.decoder(z_mean, training=False) - batch))
        sums += np.array([float(total), float(rec), float(kl), float(mse)]) * len(batch)
    total, rec, kl, mse = (float(v) for v in sums / len(x))
    row = {"model": kind, "loss": total, "reconstruction_loss": rec, "kl_loss": kl,
           "fact": float(net.fact), "mse": mse, "n_test": len(x)}
    write_json(metrics, row)
    return row


#: The order of the models in ``tables/e3_metrics.csv``.
MODEL_ORDER = ("vae", "ae")


def metrics_table(metrics: list[str | Path], table: str | Path) -> list[dict]:
    """The face models' test metrics (:func:`evaluate`'s JSON files) -> ``table`` CSV.

    One row per model, VAE first (:data:`MODEL_ORDER`), columns ``model, loss,
    reconstruction_loss, kl_loss, fact, mse, n_test`` as :func:`evaluate` wrote them (a JSON
    float reads back as the same float64, so the CSV is the one the former two-model
    evaluation wrote).

    Raises:
        ValueError: a model missing or given twice.
    """
    import json

    rows = [json.loads(Path(p).read_text()) for p in ([metrics] if isinstance(metrics, (str, Path)) else metrics)]
    names = [r["model"] for r in rows]
    if sorted(names) != sorted(MODEL_ORDER):
        raise ValueError(f"expected the metrics of one VAE and one AE, got models {names}")
    write_rows(table, sorted(rows, key=lambda r: MODEL_ORDER.index(r["model"])))
    return rows


def encode_latents(model: str | Path, test_npy: str | Path, latents: str | Path, summary: str | Path,
                   histogram: str | Path | None = None, n_test: int | None = None, batch_size: int = 256,
                   bins: int = 120, threads: int = 1) -> dict:
    """The encoder's ``z_mean`` for test faces -> ``latents`` (float32 ``(n, z_dim)`` ``.npy``),
    its ``summary`` (JSON, the row of ``tables/e3_ae_latents.csv``, :func:`latents_table`) and
    ``histogram`` (``.npz``, what the latent-histogram figure draws).

    For the AE this is its (deterministic) code; the summary quantifies the AE post's
    "most of the data points in the latent space were created in a region of
    0 < x_i < 20". Summary keys: ``n_images, z_dim`` (int), ``min, max, mean, std, q01, q05,
    q50, q95, q99`` (floats over all n * z_dim components), ``frac_in_0_20`` (fraction of all
    components with 0 < z_i < 20), ``frac_negative``, ``frac_abs_le_3`` (fraction with
    |z_i| <= 3, where N(0, 1) keeps 99.7 %).

    ``histogram`` holds ``counts`` (int64 ``(bins,)``) and ``edges`` (``(bins + 1,)``, the
    latents' float32) of ``np.histogram(z.ravel(), bins)`` -- the bins ``hist(z.ravel(), bins)``
    draws -- so the figure is drawn without the ``.npy`` (which no bundle carries).
    """
    set_global_seed(0, threads)
    from klvae.data.stream import ImageBatches
    from klvae.models.faces import load_face_model

    x = open_images(test_npy, n_test)
    net = load_face_model(model)
    zs = [np.asarray(net.encoder(b, training=False)[0]) for b in ImageBatches(x, batch_size)]
    z = np.concatenate(zs).astype(np.float32)
    tmp = atomic_path(latents)
    np.save(tmp, z)
    commit(tmp, latents)
    q = np.quantile(z, [0.01, 0.05, 0.5, 0.95, 0.99])
    row = {"n_images": int(z.shape[0]), "z_dim": int(z.shape[1]), "min": float(z.min()), "max": float(z.max()),
           "mean": float(z.mean()), "std": float(z.std()), "q01": float(q[0]), "q05": float(q[1]),
           "q50": float(q[2]), "q95": float(q[3]), "q99": float(q[4]),
           "frac_in_0_20": float(np.mean((z > 0) & (z < 20))), "frac_negative": float(np.mean(z < 0)),
           "frac_abs_le_3": float(np.mean(np.abs(z) <= 3))}
    write_json(summary, row)
    if histogram is not None:
        counts, edges = np.histogram(z.ravel(), bins=bins)
        tmp = atomic_path(histogram)
        np.savez(tmp, counts=counts.astype(np.int64), edges=edges)
        commit(tmp, histogram)
    return row


def latents_table(summary: str | Path, table: str | Path) -> dict:
    """The AE's latent summary (:func:`encode_latents`' JSON) -> ``table`` CSV, one row, columns in
    :func:`encode_latents`' order (a JSON float reads back as the same float64, so the CSV is the
    one the encoding job wrote before the table moved to its own rule)."""
    import json

    row = json.loads(Path(summary).read_text())
    write_rows(table, [row])
    return row


def _decode(model, z: np.ndarray) -> np.ndarray:
    """``decoder(z)`` in chunks of :data:`DECODE_BATCH`, clipped to [0, 1]: float32 ``(n, 96, 96, 3)``."""
    out = [np.asarray(model.decoder(z[i:i + DECODE_BATCH], training=False)) for i in range(0, len(z), DECODE_BATCH)]
    return np.clip(np.concatenate(out), 0.0, 1.0)


def decode_faces(model: str | Path, test_npy: str | Path, decoded: str | Path, kind: str = "vae",
                 n_random: int = 60, bounds=AE_BOUNDS, n_per_bound: int = 10, n_test: int = 10,
                 seed: int = 0) -> dict:
    """Decode what the face figures show of one model -> ``decoded`` (``.npz``); the figures only draw it.

    Each set is drawn and decoded as the figures did before, and as the former two-model job
    did (same generators, seeds, order of draws and batches): every generator is made afresh
    from ``seed``, none is shared between the models, so one job per model gives the same bits.

    * VAE (``kind="vae"``): ``random_faces``, ``decoder(z)`` of ``n_random`` points
      ``z = default_rng(seed).standard_normal((n_random, z_dim))`` (float32) -- the
      random-face figure of post IX;
    * AE (``kind="ae"``): ``ae_points``, ``decoder(z)``, one block of ``n_per_bound`` rows per
      boundary ``b`` (row ``r``: ``z = default_rng([seed, r]).uniform(0, b, (n_per_bound,
      z_dim))``, float32), blocks in the order of ``bounds`` (float64, stored), with
      ``n_per_bound`` -- the AE post's random points;
    * both: ``test_faces`` (uint8 test images / 255, float32), ``test_index`` (int, sorted;
      picked with ``default_rng(seed).choice(N, min(n_test, N), replace=False)``, the same
      faces for both models) and ``reconstructions``, ``decoder(z_mean)`` (deterministic, no
      sampling).

    Every image array is float32 ``(n, 96, 96, 3)`` clipped to [0, 1]; the decoder runs on
    chunks of :data:`DECODE_BATCH` points. Stored beside them: ``kind`` (str), ``z_dim``,
    ``seed``, ``fact`` (the model's KL weight on the posts' scale; 0 for the AE). No random
    draw of the backend is used and its threads are left at their defaults, so the images are
    those the figure rules decoded. A part bundle stores the image arrays as 8-bit
    (:data:`klvae.bundle.part.QUANTIZED`).

    Args:
        model: ``.keras`` file from :func:`train`, of kind ``kind``.
        test_npy: uint8 ``(N, 96, 96, 3)`` test ``.npy`` from :func:`klvae.data.celeba.preprocess`.
        decoded: output ``.npz``.
        kind: ``"vae"`` or ``"ae"``.
        n_random: VAE: points z ~ N(0, I) for the random-face figure (6 rows x 10).
        bounds: AE: boundaries b of z_i ~ U(0, b) (the AE post's, :data:`AE_BOUNDS`).
        n_per_bound: AE: points per boundary (the AE post showed 10 of 100).
        n_test: test faces to reconstruct.
        seed: seeds the NumPy generators above.

    Returns:
        ``{"kind", "z_dim", "n_random" (VAE) or "n_ae_points" (AE), "n_test"}``.

    Raises:
        DataIntegrityError: the test array is missing, truncated or of the wrong shape.
        ValueError: unknown kind, or the file holds the other kind of model.
    """
    from klvae.models.faces import load_face_model

    x = open_images(test_npy, None)
    net = load_face_model(model)
    _check_kind(net, kind, model)
    z_dim = net.decoder.input_shape[-1]
    arrays: dict[str, np.ndarray] = {}
    if kind == "vae":
        z = np.random.default_rng(seed).standard_normal((n_random, z_dim)).astype(np.float32)
        arrays["random_faces"] = _decode(net, z)
    else:
        zs = [np.random.default_rng([seed, r]).uniform(0.0, b, (n_per_bound, z_dim)).astype(np.float32)
              for r, b in enumerate(bounds)]
        arrays.update(ae_points=_decode(net, np.concatenate(zs)), bounds=np.asarray(bounds, np.float64),
                      n_per_bound=np.int64(n_per_bound))

    idx = np.sort(np.random.default_rng(seed).choice(len(x), size=min(n_test, len(x)), replace=False))
    orig = np.asarray(x[idx], np.float32) / 255.0
    recs = _decode(net, np.asarray(net.encoder(orig, training=False)[0]))

    tmp = atomic_path(decoded)
    np.savez(tmp, **arrays, test_faces=orig, test_index=idx, reconstructions=recs, kind=np.str_(kind),
             z_dim=np.int64(z_dim), seed=np.int64(seed), fact=np.float64(float(net.fact)))
    commit(tmp, decoded)
    n = {"n_random": len(arrays["random_faces"])} if kind == "vae" else {"n_ae_points": len(arrays["ae_points"])}
    return {"kind": kind, "z_dim": int(z_dim), **n, "n_test": len(idx)}


__all__ = ["evaluate", "metrics_table", "encode_latents", "latents_table", "decode_faces", "AE_BOUNDS",
           "MODEL_ORDER"]
