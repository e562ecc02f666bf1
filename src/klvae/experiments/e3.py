"""E3 -- faces: the conv VAE versus the plain AE (post IX: post IX and the AE-latent post).

Entry points the Snakemake rules call (file paths + plain params as keyword arguments;
every output is written under a temporary name and renamed when complete):

* :func:`train` -- train the VAE (``kind="vae"``) or the plain AE (``kind="ae"``) of
  :mod:`klvae.models.faces` (the keras.io VAE that post VIII's ``gradient_tape`` strategy
  follows, :class:`klvae.models.vae.VAE`, trained through its backend-neutral
  ``compute_loss``), streaming batches from the uint8 ``.npy`` written by
  :func:`klvae.data.celeba.preprocess` (seeded order per epoch, batch, scale to [0, 1]
  float32 per batch; :class:`klvae.data.stream.ImageBatches`), so no float32 copy of the
  training set exists. Writes the model (``.keras``) and a
  per-epoch history CSV.
* :func:`evaluate` -- test-set loss, reconstruction and KL of both models, one CSV.
* :func:`encode_latents` -- the encoder's ``z_mean`` of test faces (``.npy``) plus a CSV
  summary of the value range (the AE post: "most of the data points ... in a region of
  0 < x_i < 20").
* :func:`decode_faces` -- the decoded images the face figures show (VAE faces from
  z ~ N(0, I), AE decodings of z_i ~ U(0, b), test faces and both models' reconstructions),
  one ``.npz`` with the settings that made them.

The figures are drawn by :mod:`klvae.figures.e3` from these files (no model is loaded there).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from klvae.io import atomic_path, commit, write_json, write_rows
from klvae.seeding import set_global_seed

#: The AE post's boundaries b for z_i ~ U(0, b) (config ``e3.ae_bounds``).
AE_BOUNDS = (0.5, 2.5, 5.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0)
#: Latent points decoded per model call in :func:`decode_faces`.
DECODE_BATCH = 256


def _open_images(npy: str | Path, n: int | None) -> np.ndarray:
    from klvae.data.integrity import DataIntegrityError

    fix = (f"Delete {npy} and rerun snakemake: rule e3_preprocess rebuilds it (train.npy, test.npy and "
           "manifest.json together) from data.celeba.path or the stand-in.")
    try:
        x = np.load(npy, mmap_mode="r")
    except (ValueError, OSError, EOFError):
        size = Path(npy).stat().st_size if Path(npy).is_file() else 0
        try:  # what the header promises, to tell a truncated file from a corrupt one
            with open(npy, "rb") as f:
                major = np.lib.format.read_magic(f)[0]
                read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                shape, _, dtype = read(f)
                want = f.tell() + int(np.prod(shape)) * dtype.itemsize
            if size >= want:
                raise ValueError("not a size problem")
            got = f"truncated: {size:,} bytes, its header promises {want:,} for {dtype} {shape}"
        except Exception:  # noqa: BLE001 -- no readable header: corrupt
            got = f"corrupt: {size:,} bytes without a valid .npy header"
        raise DataIntegrityError(f"{npy}: expected a uint8 (n, 96, 96, 3) .npy array, but the file is {got}. "
                                 f"{fix}") from None
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (96, 96, 3):
        raise DataIntegrityError(f"{npy}: expected a uint8 (n, 96, 96, 3) array, got {x.dtype} {x.shape}. {fix}")
    if n is not None:
        if n > len(x):
            raise ValueError(f"{npy}: asked for {n:,} images, the file has {len(x):,}")
        x = x[:n]
    return x


def train(train_npy: str | Path, model: str | Path, history: str | Path, kind: str = "vae", epochs: int = 5,
          batch_size: int = 128, learning_rate: float = 1e-3, fact: float | None = None,
          n_train: int | None = None, z_dim: int = 200, seed: int = 0, threads: int = 1,
          verbose: int = 2, epoch_times: str | Path | None = None, model_info: str | Path | None = None) -> dict:
    """Train E3's face VAE or plain AE on the streamed uint8 training array.

    Args:
        train_npy: uint8 ``(N, 96, 96, 3)`` ``.npy`` from :func:`klvae.data.celeba.preprocess`;
            opened with ``mmap_mode="r"`` and read batch by batch.
        model: output ``.keras`` file (the whole model: encoder, decoder, loss settings).
        history: output CSV, one row per epoch: ``epoch, loss, reconstruction_loss,
            kl_loss`` (mean-BCE in nats per pixel value; KL_mean, see
            :mod:`klvae.models.faces`), ``steps`` and the run settings -- no timings, so
            reruns give identical files.
        epoch_times: optional output CSV, one row per epoch: ``kind, epoch, seconds, steps,
            s_per_step, images_per_second`` (wall time of the epoch on this machine).
        model_info: optional output JSON, facts about the trained model for the report (which
            imports no Keras): ``kind``, ``n_parameters`` (encoder + decoder weights, int;
            6,315,795 at z_dim 200, :data:`klvae.models.faces.N_PARAMETERS`),
            ``n_encoder_parameters``, ``n_decoder_parameters``, ``z_dim``, ``fact``,
            ``reconstruction``, ``kl``. Written after the model; reading the counts
            draws no random numbers.
        kind: ``"vae"`` or ``"ae"`` (:func:`klvae.models.faces.build_face_model`).
        epochs: passes over the ``n_train`` images (post: until 10-25 epochs looked good).
        batch_size: images per step (post: 128).
        learning_rate: Adam's learning rate (default 1e-3, Keras' default and the keras.io
            VAE's; the CelebA post with its value is not one of the four posts).
        fact: the VAE's KL weight on the posts' scale (KL_mean against the mean BCE; config
            ``e3.fact``); None = :data:`klvae.models.faces.DEFAULT_FACT` (beta = 1, the ELBO).
            Must be None or 0 for the AE.
        n_train: use the first ``n_train`` images (None = all).
        z_dim: latent dimensions (post: 200).
        seed: seeds weights, sampling and the shuffle order.
        threads: CPU threads of the Keras backend (TensorFlow: intra-op threads).
        verbose: Keras ``fit`` verbosity.

    Returns:
        ``{"kind", "n_train", "epochs", "seconds", "final": {metric: value}}``.

    Training resumes from ``<model>.ckpt/`` when an earlier attempt was killed
    (:func:`klvae.training.fit_resumable`); the result is bitwise the same.

    Raises:
        ValueError: wrong array, too few images, unknown kind, KL weight for the AE.
        FloatingPointError: a non-finite training loss (no model file is written).
    """
    set_global_seed(seed, threads)
    import keras

    from klvae import training
    from klvae.models.faces import DEFAULT_FACT, build_face_model

    x = _open_images(train_npy, n_train)
    net = build_face_model(kind, fact, z_dim=z_dim, seed=seed)
    net.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate))
    steps = int(np.ceil(len(x) / batch_size))
    kw = 0.0 if kind == "ae" else float(DEFAULT_FACT if fact is None else fact)
    settings = {"run": "e3", "kind": kind, "epochs": int(epochs), "batch_size": int(batch_size),
                "lr": float(learning_rate), "fact": kw, "n_train": n_train, "z_dim": int(z_dim),
                "seed": int(seed), "threads": int(threads)}
    logs = training.fit_resumable(net, x, epochs=int(epochs), batch_size=int(batch_size), seed=int(seed),
                                  checkpoint=training.checkpoint_dir(model), verbose=verbose,
                                  fingerprint=training.fingerprint(settings, {"train": train_npy}),
                                  nan_hint=f"lower e3.learning_rate (now {learning_rate:g}) or e3.fact")
    rows = [{"epoch": e + 1, "loss": r["loss"], "reconstruction_loss": r["reconstruction_loss"],
             "kl_loss": r["kl_loss"],
             "steps": steps, "kind": kind, "fact": kw, "reconstruction": "bce_mean", "kl": "kl_mean",
             "batch_size": int(batch_size), "learning_rate": float(learning_rate), "n_train": len(x),
             "z_dim": int(z_dim), "seed": int(seed), "threads": int(threads)} for e, r in enumerate(logs)]
    tmp = atomic_path(model)
    net.save(tmp)
    commit(tmp, model)
    write_rows(history, rows)
    if model_info is not None:
        n_enc, n_dec = int(net.encoder.count_params()), int(net.decoder.count_params())
        write_json(model_info, {"kind": kind, "n_parameters": n_enc + n_dec, "n_encoder_parameters": n_enc,
                                "n_decoder_parameters": n_dec, "z_dim": int(z_dim), "fact": kw,
                                "reconstruction": "bce_mean", "kl": "kl_mean"})
    if epoch_times is not None:
        write_rows(epoch_times, [{"kind": kind, "epoch": e + 1, "seconds": round(r["seconds"], 3), "steps": steps,
                                  "s_per_step": round(r["seconds"] / steps, 4),
                                  "images_per_second": round(len(x) / r["seconds"], 1)} for e, r in enumerate(logs)])
    return {"kind": kind, "n_train": len(x), "epochs": int(epochs),
            "seconds": round(sum(r["seconds"] for r in logs), 2),
            "final": {k: float(logs[-1][k]) for k in ("loss", "reconstruction_loss", "kl_loss")}}


def evaluate(vae_model: str | Path, ae_model: str | Path, test_npy: str | Path, metrics: str | Path,
             n_test: int | None = None, batch_size: int = 256, seed: int = 0, threads: int = 1) -> list[dict]:
    """Test-set loss terms of both models -> ``metrics`` CSV.

    Columns: ``model`` (vae/ae), ``loss``, ``reconstruction_loss`` (mean-BCE, nats per
    pixel value), ``kl_loss`` (KL_mean; for the AE a monitor only, weight 0),
    ``fact`` (the KL weight on the posts' scale), ``mse`` (of the deterministic reconstruction ``decoder(z_mean)``, in
    [0, 1]^2 units), ``n_test``. The VAE's loss uses one seeded draw of z per image.
    """
    set_global_seed(seed, threads)
    from keras import ops

    from klvae.data.stream import ImageBatches
    from klvae.models.faces import load_face_model

    x = _open_images(test_npy, n_test)
    rows = []
    for name, path in (("vae", vae_model), ("ae", ae_model)):
        net = load_face_model(path)
        sums = np.zeros(4)
        for batch in ImageBatches(x, batch_size):
            total, rec, kl = net.loss_terms(batch, training=False)
            z_mean, _ = net.encoder(batch, training=False)
            mse = ops.mean(ops.square(net.decoder(z_mean, training=False) - batch))
            sums += np.array([float(total), float(rec), float(kl), float(mse)]) * len(batch)
        total, rec, kl, mse = sums / len(x)
        rows.append({"model": name, "loss": total, "reconstruction_loss": rec, "kl_loss": kl,
                     "fact": float(net.fact), "mse": mse, "n_test": len(x)})
    write_rows(metrics, rows)
    return rows


def encode_latents(model: str | Path, test_npy: str | Path, latents: str | Path, summary: str | Path,
                   n_test: int | None = None, batch_size: int = 256, threads: int = 1) -> dict:
    """The encoder's ``z_mean`` for test faces -> ``latents`` (float32 ``(n, z_dim)`` ``.npy``) and ``summary`` CSV.

    For the AE this is its (deterministic) code; the summary quantifies the AE post's
    "most of the data points in the latent space were created in a region of
    0 < x_i < 20". Summary columns: ``n_images, z_dim, min, max, mean, std, q01, q05,
    q50, q95, q99, frac_in_0_20`` (fraction of all components with 0 < z_i < 20),
    ``frac_negative``, ``frac_abs_le_3`` (fraction with |z_i| <= 3, where N(0, 1) keeps 99.7 %).
    """
    set_global_seed(0, threads)
    from klvae.data.stream import ImageBatches
    from klvae.models.faces import load_face_model

    x = _open_images(test_npy, n_test)
    net = load_face_model(model)
    zs = [np.asarray(net.encoder(b, training=False)[0]) for b in ImageBatches(x, batch_size)]
    z = np.concatenate(zs).astype(np.float32)
    tmp = atomic_path(latents)
    np.save(tmp, z)
    commit(tmp, latents)
    q = np.quantile(z, [0.01, 0.05, 0.5, 0.95, 0.99])
    row = {"n_images": int(z.shape[0]), "z_dim": int(z.shape[1]), "min": float(z.min()), "max": float(z.max()),
           "mean": float(z.mean()), "std": float(z.std()), "q01": q[0], "q05": q[1], "q50": q[2], "q95": q[3],
           "q99": q[4], "frac_in_0_20": float(np.mean((z > 0) & (z < 20))), "frac_negative": float(np.mean(z < 0)),
           "frac_abs_le_3": float(np.mean(np.abs(z) <= 3))}
    write_rows(summary, [row])
    return row


def _decode(model, z: np.ndarray) -> np.ndarray:
    """``decoder(z)`` in chunks of :data:`DECODE_BATCH`, clipped to [0, 1]: float32 ``(n, 96, 96, 3)``."""
    out = [np.asarray(model.decoder(z[i:i + DECODE_BATCH], training=False)) for i in range(0, len(z), DECODE_BATCH)]
    return np.clip(np.concatenate(out), 0.0, 1.0)


def decode_faces(vae_model: str | Path, ae_model: str | Path, test_npy: str | Path, decoded: str | Path,
                 n_random: int = 60, bounds=AE_BOUNDS, n_per_bound: int = 10, n_test: int = 10,
                 seed: int = 0) -> dict:
    """Decode what the face figures show -> ``decoded`` (``.npz``); the figures only draw it.

    Three sets, each drawn and decoded exactly as the figures did before (same generators,
    seeds, order of draws and batches):

    * ``random_faces``: the VAE's ``decoder(z)`` of ``n_random`` points
      ``z = default_rng(seed).standard_normal((n_random, z_dim))`` (float32);
    * ``ae_points``: the AE's ``decoder(z)``, one block of ``n_per_bound`` rows per boundary
      ``b`` (row ``r``: ``z = default_rng([seed, r]).uniform(0, b, (n_per_bound, z_dim))``,
      float32), blocks in the order of ``bounds``;
    * ``test_faces`` (uint8 test images / 255, float32), ``test_index`` (int, sorted; picked
      with ``default_rng(seed).choice(N, min(n_test, N), replace=False)``), and
      ``vae_reconstructions``/``ae_reconstructions``: ``decoder(z_mean)`` of each model
      (deterministic, no sampling).

    Every image array is float32 ``(n, 96, 96, 3)`` clipped to [0, 1]; the decoder runs on
    chunks of :data:`DECODE_BATCH` points. Settings stored beside them: ``z_dim``, ``seed``,
    ``bounds`` (float64), ``n_per_bound``, ``vae_fact`` and ``ae_fact`` (the models'
    ``fact``; 0 for the AE). No random draw of the backend is used and its threads are left at
    their defaults, so the images are those the figure rules decoded.

    Args:
        vae_model, ae_model: ``.keras`` files from :func:`train` (kind ``"vae"``, ``"ae"``).
        test_npy: uint8 ``(N, 96, 96, 3)`` test ``.npy`` from :func:`klvae.data.celeba.preprocess`.
        decoded: output ``.npz``.
        n_random: points z ~ N(0, I) for the random-face figure (6 rows x 10).
        bounds: boundaries b of z_i ~ U(0, b) (the AE post's, :data:`AE_BOUNDS`).
        n_per_bound: points per boundary (the AE post showed 10 of 100).
        n_test: test faces to reconstruct.
        seed: seeds the NumPy generators above.

    Returns:
        ``{"z_dim", "n_random", "n_ae_points", "n_test"}``.

    Raises:
        DataIntegrityError: the test array is missing, truncated or of the wrong shape.
    """
    from klvae.models.faces import load_face_model

    x = _open_images(test_npy, None)
    vae = load_face_model(vae_model)
    z_dim = vae.decoder.input_shape[-1]
    z = np.random.default_rng(seed).standard_normal((n_random, z_dim)).astype(np.float32)
    random_faces = _decode(vae, z)

    ae = load_face_model(ae_model)
    ae_z_dim = ae.decoder.input_shape[-1]
    zs = [np.random.default_rng([seed, r]).uniform(0.0, b, (n_per_bound, ae_z_dim)).astype(np.float32)
          for r, b in enumerate(bounds)]
    ae_points = _decode(ae, np.concatenate(zs))

    idx = np.sort(np.random.default_rng(seed).choice(len(x), size=min(n_test, len(x)), replace=False))
    orig = np.asarray(x[idx], np.float32) / 255.0
    recs = [_decode(m, np.asarray(m.encoder(orig, training=False)[0])) for m in (vae, ae)]

    tmp = atomic_path(decoded)
    np.savez(tmp, random_faces=random_faces, ae_points=ae_points, test_faces=orig, test_index=idx,
             vae_reconstructions=recs[0], ae_reconstructions=recs[1], z_dim=np.int64(z_dim),
             ae_z_dim=np.int64(ae_z_dim), seed=np.int64(seed), bounds=np.asarray(bounds, np.float64),
             n_per_bound=np.int64(n_per_bound), vae_fact=np.float64(float(vae.fact)),
             ae_fact=np.float64(float(ae.fact)))
    commit(tmp, decoded)
    return {"z_dim": int(z_dim), "n_random": len(random_faces), "n_ae_points": len(ae_points), "n_test": len(idx)}


__all__ = ["train", "evaluate", "encode_latents", "decode_faces", "AE_BOUNDS"]
