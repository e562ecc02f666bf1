"""E3 -- faces: the training of the conv VAE and the plain AE (post IX and the AE-latent post).

The one entry point the Snakemake rule ``e3_train`` calls (file paths + plain params as keyword
arguments; every output is written under a temporary name and renamed when complete):

* :func:`train` -- train the VAE (``kind="vae"``) or the plain AE (``kind="ae"``) of
  :mod:`klvae.models.faces` (the keras.io VAE that post VIII's ``gradient_tape`` strategy
  follows, :class:`klvae.models.vae.VAE`, trained through its backend-neutral
  ``compute_loss``), streaming batches from the uint8 ``.npy`` written by
  :func:`klvae.data.celeba.preprocess` (seeded order per epoch, batch, scale to [0, 1]
  float32 per batch; :class:`klvae.data.stream.ImageBatches`), so no float32 copy of the
  training set exists. Writes the model (``.keras``) and a per-epoch history CSV.

What is done with a trained model -- test metrics, latents, decoded faces -- lives in
:mod:`klvae.experiments.e3_analysis`. The training has a module of its own because every rule's
code digest covers the modules it runs (:mod:`klvae.code_digest`): an edit to an analysis then
reruns that analysis only, never a multi-hour face training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from klvae.io import atomic_path, commit, write_json, write_rows
from klvae.seeding import set_global_seed


def open_images(npy: str | Path, n: int | None) -> np.ndarray:
    """The face images of a ``.npy`` written by :func:`klvae.data.celeba.preprocess`, memory-mapped
    read-only (nothing is read until a batch is taken).

    Args:
        npy: ``train.npy`` or ``test.npy``: uint8 ``(N, 96, 96, 3)``.
        n: the first ``n`` images only (None: all).

    Returns:
        uint8 ``(n or N, 96, 96, 3)`` memory-mapped array.

    Raises:
        DataIntegrityError: the file is missing, truncated (its header promises more bytes), corrupt,
            or not uint8 ``(N, 96, 96, 3)``; the message says how to rebuild it.
        ValueError: ``n`` is larger than the file's ``N``.
    """
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

    x = open_images(train_npy, n_train)
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


__all__ = ["train", "open_images"]
