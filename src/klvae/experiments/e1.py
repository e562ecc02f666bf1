"""E1 -- the KL coefficient sweep (the KL-coefficient post, "influence of the KL coefficient").

MLP VAE on MNIST with a 2-D latent space, loss = pixel-summed BCE + c * KL (nats per
sample), Adam 1e-3, batch 128; one training run per coefficient c, all starting from
the same initial weights (the post saved ``vae_init.h5`` once and reloaded it).

Entry points (called by ``workflow/rules/e1.smk`` through ``workflow/scripts/call.py``):
:func:`init_weights`, :func:`train`, :func:`analyse`, :func:`collect_metrics`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from klvae.io import atomic_path as _atomic_path
from klvae.seeding import set_global_seed


def init_weights(weights: str, seed: int, z_dim: int = 2, intermediate_dim: int = 512) -> None:
    """Build E1's VAE from ``seed`` and save its initial weights (``.weights.h5``) for every c.

    Args:
        weights: output path ending in ``.weights.h5``.
        seed: the config's seed; weights are a pure function of it.
    """
    set_global_seed(seed, threads=1)
    from klvae.models.mlp import build_mlp_vae
    vae = build_mlp_vae(c=0.0, z_dim=z_dim, intermediate_dim=intermediate_dim, seed=seed)
    tmp = _atomic_path(weights)
    vae.save_weights(tmp)
    os.replace(tmp, weights)


def train(mnist: str, init: str, model: str, history: str, metrics: str, c: float,
          epochs: int, batch_size: int = 128, learning_rate: float = 1e-3, n_train: int | None = None,
          n_test: int | None = None, seed: int = 1, z_dim: int = 2, intermediate_dim: int = 512,
          replicate: int = 0, threads: int = 1) -> dict:
    """Train E1's VAE for one KL coefficient c from the shared initial weights; evaluate on the test set.

    Args:
        mnist: canonical ``mnist.npz`` (uint8, see :mod:`klvae.data.mnist`).
        init: the shared initial weights from :func:`init_weights`.
        model: output ``.keras`` file (the whole VAE, native Keras format).
        history: output CSV, one row per epoch: ``epoch, c`` (c, the same in every row),
            ``kl_loss, loss, reconstruction_loss`` (training-set means, nats per sample). No
            timings, so that reruns give identical files (the rule's wall time is in its
            Snakemake benchmark file).
        metrics: output JSON: test ``loss``, ``reconstruction_loss``, ``kl_loss`` (nats per
            sample, 10,000 test images unless ``n_test``), with c, epochs and sizes.
        c: c >= 0, the KL weight.
        epochs, batch_size, learning_rate: training settings (post: 40, 128, 1e-3).
        n_train, n_test: use only the first n images (``None`` = all).
        seed: seeds sampling and shuffling (the initial weights come from ``init``).
        replicate: index of this run among the replicates of c (recorded in ``metrics``).
        threads: TensorFlow intra-op threads (results are bitwise repeatable for a fixed value).

    Returns:
        The metrics dict.

    Training resumes from ``<model>.ckpt/`` when an earlier attempt was killed
    (:func:`klvae.training.fit_resumable`); the result is bitwise the same.

    Raises:
        FloatingPointError: a non-finite loss during training (no model file is written).
    """
    set_global_seed(seed, threads=threads)
    import keras

    from klvae import training
    from klvae.data import mnist as mnist_data
    from klvae.data.stream import ImageBatches
    from klvae.models.mlp import build_mlp_vae

    x_train, _, x_test, _ = mnist_data.load(mnist, n_train, n_test)
    vae = build_mlp_vae(c=c, z_dim=z_dim, intermediate_dim=intermediate_dim, seed=seed)
    vae.load_weights(init)
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate))
    print(f"[e1] c={c}: {len(x_train):,} training images, {epochs} epochs, batch {batch_size}", flush=True)
    settings = {"run": "e1", "c": c, "epochs": epochs, "batch_size": batch_size, "lr": learning_rate,
                "n_train": n_train, "seed": seed, "z_dim": z_dim, "intermediate_dim": intermediate_dim,
                "threads": threads}
    rows = training.fit_resumable(vae, x_train, epochs=epochs, batch_size=batch_size, seed=seed,
                                  checkpoint=training.checkpoint_dir(model),
                                  fingerprint=training.fingerprint(settings, {"mnist": mnist, "init": init}),
                                  nan_hint=f"lower e1.learning_rate (now {learning_rate:g}) or the KL coefficient "
                                           f"c={c:g} in e1.coefficients")
    test = vae.evaluate(ImageBatches(x_test, batch_size), verbose=0, return_dict=True)
    frame = pd.DataFrame(rows).drop(columns="seconds")
    frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    frame.insert(1, "c", float(c))  # the figures read c from the file (klvae.figures.e1)
    tmp = _atomic_path(history)
    frame.to_csv(tmp, index=False)
    os.replace(tmp, history)
    record = {"c": c, "replicate": replicate, "seed": seed,
              "epochs": epochs, "batch_size": batch_size,
              "n_train": len(x_train), "n_test": len(x_test),
              **{k: float(v) for k, v in test.items()}}
    tmp = _atomic_path(metrics)
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, metrics)
    tmp = _atomic_path(model)
    vae.save(tmp)
    os.replace(tmp, model)
    print(f"[e1] c={c}: test loss {record['loss']:.2f} = reconstruction "
          f"{record['reconstruction_loss']:.2f} + c * KL {record['kl_loss']:.2f}", flush=True)
    return record


def analyse(model: str, mnist: str, latent: str, grid: str, n_test: int | None = None, n: int = 30,
            limit: float = 3.0) -> None:
    """Encode the test set and decode the latent grid of one trained E1 VAE (no sampling).

    Args:
        model: a trained ``model.keras`` from :func:`train`.
        mnist: canonical ``mnist.npz``.
        latent: output ``.npz`` with float32 ``z_mean (n_test, 2)``, ``z_log_var (n_test, 2)``,
            uint8 ``labels (n_test,)`` and float64 ``c`` (the model's c, a scalar).
        grid: output ``.npz`` with float32 ``images (n, n, 28, 28)`` decoded from the ``n x n``
            grid over ``[-limit, limit]^2`` as the post laid it out: row i has
            z[1] = ``grid_y[i]`` (top = +limit), column j has z[0] = ``grid_x[j]``; plus
            ``grid_x``, ``grid_y`` and ``c``. The figures and the report read c from
            these files (:func:`klvae.io.c_of`), so no list of coefficients must line up with them.
        n_test: first n test images (``None`` = all).
    """
    set_global_seed(0, threads=1)
    import keras

    import klvae.models.vae  # noqa: F401  (registers the custom classes for loading)
    from klvae.data import mnist as mnist_data

    vae = keras.saving.load_model(model)
    _, _, x_test, y_test = mnist_data.load(mnist, 0, n_test)
    z_mean, z_log_var = vae.encoder.predict(x_test.astype(np.float32) / 255.0, batch_size=1000, verbose=0)
    tmp = _atomic_path(latent)
    c = np.float64(vae.c)  # the c the model was trained with (saved in its config)
    np.savez(tmp, z_mean=z_mean.astype(np.float32), z_log_var=z_log_var.astype(np.float32), labels=y_test,
             c=c)
    os.replace(tmp, latent)

    grid_x = np.linspace(-limit, limit, n)
    grid_y = np.linspace(-limit, limit, n)[::-1]
    zz = np.array([[xi, yi] for yi in grid_y for xi in grid_x], np.float32)
    images = vae.decoder.predict(zz, batch_size=n * n, verbose=0).reshape(n, n, 28, 28)
    tmp = _atomic_path(grid)
    np.savez(tmp, images=images.astype(np.float32), grid_x=grid_x, grid_y=grid_y, c=c)
    os.replace(tmp, grid)


def collect_metrics(metrics: list[str], table: str) -> pd.DataFrame:
    """Gather the per-run test metrics into one CSV, one row per c, beside the post's table.

    Args:
        metrics: ``metrics.json`` files of every (replicate, c) run.
        table: output CSV with columns ``c``, ``loss``, ``reconstruction_loss``,
            ``kl_loss`` (means over replicates, nats per image), ``loss_sd``,
            ``reconstruction_loss_sd``, ``kl_loss_sd`` (sample standard deviation; NaN for one
            replicate), ``replicates``, ``post_loss``, ``post_reconstruction``, ``post_kl``
            (the KL-coefficient post, :data:`klvae.reference.E1_POST_TABLE`), ``epochs``, ``n_train``, ``n_test``.
    """
    from klvae.reference import E1_POST_TABLE

    runs = pd.DataFrame([json.loads(Path(p).read_text()) for p in metrics])
    keys = ["loss", "reconstruction_loss", "kl_loss"]
    grouped = runs.groupby("c")
    frame = grouped[keys].mean()
    sd = grouped[keys].std(ddof=1).add_suffix("_sd")
    frame = frame.join(sd)
    frame["replicates"] = grouped.size()
    for k in ("epochs", "n_train", "n_test"):
        frame[k] = grouped[k].first()
    frame = frame.reset_index().sort_values("c").reset_index(drop=True)
    post = pd.DataFrame(E1_POST_TABLE, columns=["c", "post_loss", "post_reconstruction", "post_kl"])
    frame = frame.merge(post, on="c", how="left")
    cols = ["c", *keys, *[k + "_sd" for k in keys], "replicates", "post_loss", "post_reconstruction",
            "post_kl", "epochs", "n_train", "n_test"]
    tmp = _atomic_path(table)
    frame[cols].to_csv(tmp, index=False)
    os.replace(tmp, table)
    return frame[cols]
