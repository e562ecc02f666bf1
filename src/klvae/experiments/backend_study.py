"""The backend study: does the Keras backend (TensorFlow or JAX) change E1's numbers at small c?

E1's MLP VAE (:func:`klvae.models.mlp.build_mlp_vae`, the same loss and training loop as
:func:`klvae.experiments.e1.train`) is trained at a few KL coefficients c, for several seeds,
on each backend. Per seed, both backends start from one initial-weights file
(:func:`klvae.experiments.e1.init_weights`, built once on TensorFlow; a Keras 3
``.weights.h5`` file is backend-neutral) and see the same batches in the same order
(:func:`klvae.data.stream.epoch_order`); what still differs between them is the
reparameterization's eps (each backend's random generator) and the backend's arithmetic.

Entry points (``workflow/rules/study.smk``, through ``workflow/scripts/call_backend.py``, which
selects the job's backend from the ``{backend}`` wildcard):

* :func:`train` -- one run (backend, seed, c): the training history, the test metrics at the
  end (as E1 reports them), the weights after every epoch (:class:`EpochWeights`) and the
  final weights;
* :func:`evaluate` -- from those weights, after training: test loss, reconstruction and KL
  per epoch, and the latent-code decomposition of the final test-set KL
  (:func:`kl_decomposition`);
* :func:`collect` -- the tables: one row per run, per c and quantity both backends' mean ±
  sd with the Welch interval of their difference (:func:`welch_rows`), the latent evidence;
* :func:`record` -- the study's run record (machine, versions, commit, CPU seconds per rule).

Units: losses in nats per image (reconstruction: BCE summed over the 784 pixels; KL summed
over the latent dimensions), means over the test images.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from klvae.io import atomic_path, commit, write_json, write_rows, write_text
from klvae.seeding import set_global_seed
from klvae.stats import LEVEL

#: Quantities compared between the backends in :func:`welch_rows` (columns of ``runs.csv``).
QUANTITIES = ("loss", "reconstruction_loss", "kl_loss", "train_loss", "gap")
#: File name of the weights after epoch k inside a run's ``epochs/`` folder.
EPOCH_FILE = "epoch-{:03d}.weights.npz"
_EPOCH_RE = re.compile(r"epoch-(\d{3})\.weights\.npz")


# ----------------------------------------------------------------------------------------------
# Weights after every epoch


def weights_state(vae) -> dict[str, np.ndarray]:
    """The arrays that fix what a trained E1 VAE computes: every encoder and decoder weight and
    the sampling layer's random-generator state (no optimizer variables).

    Returns:
        ``{"encoder/<i>": float32 array, "decoder/<i>": float32 array,
        "seed_generator_state": int array (2,)}`` in the order of ``get_weights()``.
    """
    import keras

    state = {f"encoder/{i}": np.asarray(w) for i, w in enumerate(vae.encoder.get_weights())}
    state.update({f"decoder/{i}": np.asarray(w) for i, w in enumerate(vae.decoder.get_weights())})
    state["seed_generator_state"] = np.asarray(keras.ops.convert_to_numpy(vae.sampling.seed_generator.state.value))
    return state


def save_weights_state(vae, path: str | Path) -> None:
    """Write :func:`weights_state` of ``vae`` to ``path`` (``.npz``, uncompressed) atomically."""
    tmp = atomic_path(path)
    np.savez(tmp, **weights_state(vae))
    commit(tmp, path)


def load_weights_state(vae, path: str | Path) -> None:
    """Set ``vae``'s encoder, decoder and sampling state from a file of :func:`save_weights_state`.

    Raises:
        ValueError: the file's arrays do not fit the model (other architecture).
    """
    with np.load(path, allow_pickle=False) as d:
        enc = [d[f"encoder/{i}"] for i in range(len(vae.encoder.weights))]
        dec = [d[f"decoder/{i}"] for i in range(len(vae.decoder.weights))]
        state = d["seed_generator_state"]
    vae.encoder.set_weights(enc)
    vae.decoder.set_weights(dec)
    vae.sampling.seed_generator.state.assign(state)


def _epoch_weights_callback():
    import keras

    class EpochWeights(keras.callbacks.Callback):
        """Save :func:`weights_state` after every epoch to ``<folder>/epoch-<k>.weights.npz`` (k from 1).

        Reads variables only: no random draw, no change to training. On a run resumed after
        epoch k (:func:`klvae.training.fit_resumable`) the weights of epoch k are written again
        at the start of epoch k + 1 if an interrupted attempt did not get to write them; a
        fresh run (starting at epoch 1) empties the folder first.

        Args:
            folder: where the files go (created).
        """

        async_safe = True  # no batch hooks: Keras may keep dispatching batches asynchronously

        def __init__(self, folder: str | Path):
            super().__init__()
            self.folder = Path(folder)

        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 0:
                shutil.rmtree(self.folder, ignore_errors=True)
            self.folder.mkdir(parents=True, exist_ok=True)
            if epoch > 0 and not (self.folder / EPOCH_FILE.format(epoch)).is_file():
                save_weights_state(self.model, self.folder / EPOCH_FILE.format(epoch))

        def on_epoch_end(self, epoch, logs=None):
            save_weights_state(self.model, self.folder / EPOCH_FILE.format(epoch + 1))

    return EpochWeights


def epoch_files(folder: str | Path) -> list[Path]:
    """The weights files of a run's ``epochs/`` folder, by epoch (1, 2, ...).

    Raises:
        FileNotFoundError: the folder holds no weights, or an epoch between 1 and the last is missing.
    """
    found = {int(m.group(1)): p for p in Path(folder).iterdir() if (m := _EPOCH_RE.fullmatch(p.name))} \
        if Path(folder).is_dir() else {}
    if not found:
        raise FileNotFoundError(f"{folder}: no epoch-<k>.weights.npz files; rerun the study's training job")
    missing = sorted(set(range(1, max(found) + 1)) - set(found))
    if missing:
        raise FileNotFoundError(f"{folder}: the weights of epoch(s) {missing} are missing; rerun the training job")
    return [found[k] for k in sorted(found)]


# ----------------------------------------------------------------------------------------------
# Training


def _check_backend(backend: str) -> str:
    from klvae import backend as kb

    active = kb.name()
    if active != backend:
        raise RuntimeError(f"this job is for the {backend!r} backend but Keras runs on {active!r}; "
                           "run it through workflow/scripts/call_backend.py with params.keras_backend set")
    return active


def train(mnist: str, init: str, history: str, metrics: str, timing: str, final: str, epoch_weights: str,
          c: float, backend: str, epochs: int, batch_size: int = 128, learning_rate: float = 1e-3,
          n_train: int | None = None, n_test: int | None = None, seed: int = 1, z_dim: int = 2,
          intermediate_dim: int = 512, threads: int = 1) -> dict:
    """One run of the study: E1's VAE at KL weight c on ``backend``, from the seed's shared initial weights.

    The same model, loss, optimizer, data order and checkpointing as
    :func:`klvae.experiments.e1.train` (so the TensorFlow run of a seed and c reproduces E1's
    run with that seed and settings), plus :class:`EpochWeights` saving the weights after every
    epoch for :func:`evaluate`.

    Args:
        mnist: canonical ``mnist.npz``.
        init: the seed's shared initial weights (``.weights.h5``, :func:`klvae.experiments.e1.init_weights`).
        history: output CSV ``epoch, kl_loss, loss, reconstruction_loss`` (training-set epoch
            means, nats per image; no timings, so reruns give identical files).
        metrics: output JSON: test ``loss``, ``reconstruction_loss``, ``kl_loss`` after training
            (nats per image, one latent sample per image, as E1) with ``c``, ``seed``,
            ``backend``, ``epochs``, ``batch_size``, ``n_train``, ``n_test``.
        timing: output JSON: ``epoch_seconds`` (wall time of each epoch, s) and their sum.
        final: output ``.weights.npz`` with the final weights (:func:`save_weights_state`).
        epoch_weights: output folder with ``epoch-<k>.weights.npz`` for k = 1..epochs.
        c: c >= 0.
        backend: the Keras backend this job must run on (``tensorflow`` or ``jax``); checked.
        epochs, batch_size, learning_rate, n_train, n_test, z_dim, intermediate_dim: as E1.
        seed: seeds sampling and data order (the initial weights come from ``init``).
        threads: CPU threads of the backend's op pool.

    Returns:
        The metrics dict.

    Raises:
        RuntimeError: Keras runs on another backend than ``backend``.
        FloatingPointError: a non-finite training loss.
    """
    set_global_seed(seed, threads=threads)
    import keras

    from klvae import training
    from klvae.data import mnist as mnist_data
    from klvae.data.stream import ImageBatches
    from klvae.models.mlp import build_mlp_vae

    active = _check_backend(backend)
    x_train, _, x_test, _ = mnist_data.load(mnist, n_train, n_test)
    vae = build_mlp_vae(c=c, z_dim=z_dim, intermediate_dim=intermediate_dim, seed=seed)
    vae.load_weights(init)
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate))
    print(f"[study] {active} seed {seed} c={c}: {len(x_train):,} training images, {epochs} epochs, "
          f"batch {batch_size}", flush=True)
    settings = {"run": "backend_study", "backend": active, "c": c, "epochs": epochs, "batch_size": batch_size,
                "lr": learning_rate, "n_train": n_train, "seed": seed, "z_dim": z_dim,
                "intermediate_dim": intermediate_dim, "threads": threads}
    partial = Path(str(epoch_weights) + ".partial")  # not a rule output: survives a killed attempt
    rows = training.fit_resumable(vae, x_train, epochs=epochs, batch_size=batch_size, seed=seed,
                                  checkpoint=training.checkpoint_dir(metrics),
                                  fingerprint=training.fingerprint(settings, {"mnist": mnist, "init": init}),
                                  callbacks=[_epoch_weights_callback()(partial)],
                                  nan_hint=f"lower backend_study.learning_rate (now {learning_rate:g}) or the KL "
                                           f"coefficient c={c:g} in backend_study.coefficients")
    files = epoch_files(partial)
    if len(files) < epochs:
        raise RuntimeError(f"{partial}: weights of {len(files)} epochs, expected {epochs}")
    test = vae.evaluate(ImageBatches(x_test, batch_size), verbose=0, return_dict=True)
    frame = pd.DataFrame(rows).drop(columns="seconds")
    frame.insert(0, "epoch", np.arange(1, len(frame) + 1))
    tmp = atomic_path(history)
    frame.to_csv(tmp, index=False)
    commit(tmp, history)
    seconds = [float(r["seconds"]) for r in rows]
    write_json(timing, {"backend": active, "seed": seed, "c": c, "epoch_seconds": seconds,
                        "total_seconds": float(sum(seconds)), "threads": threads})
    save_weights_state(vae, final)
    for stale in files[epochs:]:
        stale.unlink()
    if Path(epoch_weights).exists():
        shutil.rmtree(epoch_weights)
    os.replace(partial, epoch_weights)
    record = {"c": float(c), "seed": int(seed), "backend": active, "epochs": epochs,
              "batch_size": batch_size, "n_train": len(x_train), "n_test": len(x_test),
              **{k: float(v) for k, v in test.items()}}
    write_json(metrics, record)
    print(f"[study] {active} seed {seed} c={c}: test loss {record['loss']:.2f} = reconstruction "
          f"{record['reconstruction_loss']:.2f} + c * KL {record['kl_loss']:.2f} "
          f"({np.mean(seconds):.1f} s per epoch)", flush=True)
    return record


# ----------------------------------------------------------------------------------------------
# Evaluation from the saved weights


def kl_decomposition(z_mean: np.ndarray, z_log_var: np.ndarray) -> dict:
    """The test-set KL divergence split into its mean part and its variance part.

    For a diagonal Gaussian posterior N(mu, sigma^2) and the prior N(0, I), per image,
    ``KL = 1/2 sum_d mu_d^2 + 1/2 sum_d (sigma_d^2 - 1 - log sigma_d^2)``. Both parts are
    averaged over the images (float64) and summed over the latent dimensions d.

    Args:
        z_mean, z_log_var: float arrays ``(n_images, z_dim)`` from the encoder.

    Returns:
        ``{"kl_mean_part", "kl_variance_part", "kl_sum" (their sum), "z_mean_sd" (list, per axis,
        ddof 0), "z_log_var_median" (list, per axis), "z_log_var_median_all" (over all values),
        "sigma_median" (exp(z_log_var_median_all / 2))}`` (floats, nats per image for the KL parts).
    """
    mu = np.asarray(z_mean, np.float64)
    lv = np.asarray(z_log_var, np.float64)
    if mu.shape != lv.shape or mu.ndim != 2:
        raise ValueError(f"z_mean {mu.shape} and z_log_var {lv.shape} must be equal 2-D shapes (images, z_dim)")
    mean_part = float(0.5 * np.mean(np.sum(mu ** 2, axis=1)))
    var_part = float(0.5 * np.mean(np.sum(np.exp(lv) - 1.0 - lv, axis=1)))
    median_all = float(np.median(lv))
    return {"kl_mean_part": mean_part, "kl_variance_part": var_part, "kl_sum": mean_part + var_part,
            "z_mean_sd": [float(s) for s in mu.std(axis=0)],
            "z_log_var_median": [float(m) for m in np.median(lv, axis=0)],
            "z_log_var_median_all": median_all, "sigma_median": float(math.exp(0.5 * median_all))}


def loss_kl(z_mean: np.ndarray, z_log_var: np.ndarray) -> float:
    """The KL divergence as the training loss computes it (:func:`klvae.losses.kl_divergence`,
    float32 on the active backend), for the whole array at once (nats per image)."""
    import keras

    from klvae import losses

    return float(keras.ops.convert_to_numpy(losses.kl_divergence(keras.ops.convert_to_tensor(z_mean),
                                                                 keras.ops.convert_to_tensor(z_log_var))))


def evaluate(mnist: str, epoch_weights: str, metrics: str, history: str, epochs_csv: str, latent: str,
             c: float, backend: str, seed: int, batch_size: int = 128, n_test: int | None = None,
             z_dim: int = 2, intermediate_dim: int = 512, rtol: float = 1e-4) -> dict:
    """Test loss per epoch from the saved weights, and the latent-code evidence at the final epoch.

    Each epoch's weights (:func:`save_weights_state`, incl. the sampling state) are loaded into
    a fresh E1 VAE and evaluated on the test set exactly as :func:`train` evaluates the final
    model, so the last epoch's row reproduces the training job's ``metrics.json``.

    Args:
        mnist: canonical ``mnist.npz``.
        epoch_weights: the run's ``epochs/`` folder.
        metrics: the training job's ``metrics.json`` (read: settings and the final test numbers).
        history: the training job's ``history.csv`` (train loss per epoch).
        epochs_csv: output CSV, one row per epoch: ``backend, seed, c, epoch, train_loss,
            train_reconstruction_loss, train_kl_loss, loss, reconstruction_loss, kl_loss`` (nats per
            image; ``loss`` etc. on the test set).
        latent: output JSON: :func:`kl_decomposition` of the final model's test-set codes plus
            ``kl_loss_fn`` (:func:`loss_kl`), ``kl_evaluate`` (the last epoch's test ``kl_loss``),
            ``final_loss_training``/``final_loss_evaluated`` and ``backend``, ``seed``, ``c``,
            ``n_test``, ``epochs``.
        c, backend, seed: the run (checked against ``metrics``).
        rtol: relative tolerance of the check that the decomposition adds up to the loss's KL.

    Returns:
        The latent record.

    Raises:
        ValueError: the run's files disagree with the arguments, or the decomposition does not add
            up to the KL as the loss computes it (relative difference over ``rtol``).
    """
    set_global_seed(seed, threads=1)
    import keras

    from klvae.data import mnist as mnist_data
    from klvae.data.stream import ImageBatches
    from klvae.models.mlp import build_mlp_vae

    active = _check_backend(backend)
    run = json.loads(Path(metrics).read_text())
    for key, want in (("c", float(c)), ("seed", int(seed)), ("backend", active)):
        if run.get(key) != want:
            raise ValueError(f"{metrics}: {key} is {run.get(key)!r}, this evaluation is for {want!r}")
    files = epoch_files(epoch_weights)
    hist = pd.read_csv(history)
    if len(hist) != len(files):
        raise ValueError(f"{history} has {len(hist)} epochs, {epoch_weights} holds weights of {len(files)}")
    _, _, x_test, _ = mnist_data.load(mnist, 0, n_test)
    vae = build_mlp_vae(c=c, z_dim=z_dim, intermediate_dim=intermediate_dim, seed=seed)
    vae.compile(optimizer=keras.optimizers.Adam())
    rows = []
    for k, path in enumerate(files, start=1):
        load_weights_state(vae, path)
        test = vae.evaluate(ImageBatches(x_test, batch_size), verbose=0, return_dict=True)
        h = hist.iloc[k - 1]
        rows.append({"backend": active, "seed": int(seed), "c": float(c), "epoch": k,
                     "train_loss": float(h["loss"]), "train_reconstruction_loss": float(h["reconstruction_loss"]),
                     "train_kl_loss": float(h["kl_loss"]), "loss": float(test["loss"]),
                     "reconstruction_loss": float(test["reconstruction_loss"]), "kl_loss": float(test["kl_loss"])})
    write_rows(epochs_csv, rows)
    z_mean, z_log_var = vae.encoder.predict(x_test.astype(np.float32) / 255.0, batch_size=1000, verbose=0)
    parts = kl_decomposition(z_mean, z_log_var)
    kl_fn = loss_kl(z_mean, z_log_var)
    if abs(parts["kl_sum"] - kl_fn) > rtol * max(1.0, abs(kl_fn)):
        raise ValueError(f"the KL decomposition of {epoch_weights} does not add up: mean part {parts['kl_mean_part']} "
                         f"+ variance part {parts['kl_variance_part']} = {parts['kl_sum']}, the loss's KL is {kl_fn}")
    record = {"backend": active, "seed": int(seed), "c": float(c), "epochs": len(files),
              "n_test": len(x_test), **parts, "kl_loss_fn": kl_fn, "kl_evaluate": rows[-1]["kl_loss"],
              "final_loss_training": float(run["loss"]), "final_loss_evaluated": rows[-1]["loss"],
              "final_train_loss": rows[-1]["train_loss"]}
    write_json(latent, record)
    print(f"[study] {active} seed {seed} c={c}: {len(files)} epochs evaluated; final test loss "
          f"{rows[-1]['loss']:.3f} (training job: {run['loss']:.3f}); KL {kl_fn:.2f} = 1/2 sum mu^2 "
          f"{parts['kl_mean_part']:.2f} + variance part {parts['kl_variance_part']:.2f}", flush=True)
    return record


# ----------------------------------------------------------------------------------------------
# Tables


def welch_rows(runs: pd.DataFrame, backends: tuple[str, str] = ("tensorflow", "jax"),
               quantities: tuple[str, ...] = QUANTITIES, post_values: dict | None = None,
               level: float = LEVEL) -> list[dict]:
    """Per c and quantity: both backends' mean ± sd and n, their difference with its Welch interval, the verdict.

    The difference is ``mean(backends[0]) - mean(backends[1])``; its ``level`` interval is Welch's
    (``scipy.stats.ttest_ind(a, b, equal_var=False).confidence_interval(level)``). The backends
    *differ* only when that interval excludes 0. Where the post's table has the quantity
    (``post_values[(c, quantity)]``), each backend's ``level`` prediction interval for one new
    run (:func:`klvae.stats.prediction_interval`) and whether the post's value lies
    inside it.

    Args:
        runs: one row per run with ``backend``, ``c`` and the quantities.
        backends: the two backends compared, in the order of the difference.
        quantities: columns of ``runs`` to compare.
        post_values: ``{(c, quantity): value}`` of the post's single run (E1's table of the KL-coefficient post).

    Returns:
        Dicts with ``c, quantity, mean_<b>, sd_<b>, n_<b>`` (b = each backend),
        ``difference, ci_low, ci_high, p_value, differ`` ("yes"/"no"; "n/a" with fewer than 2 runs
        on a backend, NaN interval), ``seed``, and per backend ``pi_low_<b>, pi_high_<b>,
        post_inside_<b>`` ("yes"/"no"/"n/a").
    """
    from scipy import stats

    from klvae.stats import prediction_interval

    a_name, b_name = backends
    out = []
    for c in sorted(runs["c"].unique()):
        at_c = runs[runs["c"] == c]
        for q in quantities:
            a = at_c.loc[at_c["backend"] == a_name, q].to_numpy(float)
            b = at_c.loc[at_c["backend"] == b_name, q].to_numpy(float)
            row = {"c": float(c), "quantity": q}
            for name, v in ((a_name, a), (b_name, b)):
                row[f"mean_{name}"] = float(v.mean()) if len(v) else math.nan
                row[f"sd_{name}"] = float(v.std(ddof=1)) if len(v) > 1 else math.nan
                row[f"n_{name}"] = len(v)
            row["difference"] = row[f"mean_{a_name}"] - row[f"mean_{b_name}"]
            if len(a) > 1 and len(b) > 1 and (a.std() > 0 or b.std() > 0):
                res = stats.ttest_ind(a, b, equal_var=False)
                ci = res.confidence_interval(confidence_level=level)
                row.update(ci_low=float(ci.low), ci_high=float(ci.high), p_value=float(res.pvalue),
                           differ="yes" if ci.low > 0 or ci.high < 0 else "no")
            else:
                row.update(ci_low=math.nan, ci_high=math.nan, p_value=math.nan, differ="n/a")
            post = (post_values or {}).get((float(c), q), math.nan)
            row["post"] = post
            for name, v in ((a_name, a), (b_name, b)):
                if len(v) > 1 and not math.isnan(post):
                    lo, hi = prediction_interval(float(v.mean()), float(v.std(ddof=1)), len(v), level)
                    inside = "yes" if lo <= post <= hi else "no"
                else:
                    lo, hi, inside = math.nan, math.nan, "n/a"
                row.update({f"pi_low_{name}": lo, f"pi_high_{name}": hi, f"post_inside_{name}": inside})
            out.append(row)
    return out


def post_values() -> dict[tuple[float, str], float]:
    """``{(c, quantity): value}`` from the post's E1 table (:data:`klvae.reference.E1_POST_TABLE`):
    test ``loss``, ``reconstruction_loss`` and ``kl_loss`` per c."""
    from klvae.reference import E1_POST_TABLE

    out = {}
    for c, loss, rec, kl in E1_POST_TABLE:
        out.update({(float(c), "loss"): loss, (float(c), "reconstruction_loss"): rec, (float(c), "kl_loss"): kl})
    return out


def run_table(latents: list[str], metrics: list[str] | None = None) -> pd.DataFrame:
    """One row per run from the evaluation's latent JSON files (and the training jobs' metrics).

    Columns: ``backend, seed, c, epochs, n_train, n_test, loss, reconstruction_loss, kl_loss``
    (final test numbers, nats per image), ``train_loss`` (last epoch's training mean), ``gap``
    (test loss - train loss), ``kl_mean_part, kl_variance_part, mean_share`` (mean part / KL),
    ``z_mean_sd_0, z_mean_sd_1, ..., z_log_var_median, sigma_median``.
    """
    train = {}
    for path in metrics or []:
        m = json.loads(Path(path).read_text())
        train[(m["backend"], int(m["seed"]), float(m["c"]))] = m
    rows = []
    for path in latents:
        r = json.loads(Path(path).read_text())
        key = (r["backend"], int(r["seed"]), float(r["c"]))
        m = train.get(key, {})
        row = {"backend": r["backend"], "seed": int(r["seed"]), "c": float(r["c"]),
               "epochs": int(r["epochs"]), "n_train": m.get("n_train", math.nan), "n_test": int(r["n_test"]),
               "loss": float(m.get("loss", r["final_loss_evaluated"])),
               "reconstruction_loss": float(m.get("reconstruction_loss", math.nan)),
               "kl_loss": float(m.get("kl_loss", r["kl_evaluate"])), "train_loss": float(r["final_train_loss"])}
        row["gap"] = row["loss"] - row["train_loss"]
        kl = r["kl_sum"]
        row.update(kl_mean_part=r["kl_mean_part"], kl_variance_part=r["kl_variance_part"],
                   mean_share=r["kl_mean_part"] / kl if kl > 0 else math.nan)
        for i, s in enumerate(r["z_mean_sd"]):
            row[f"z_mean_sd_{i}"] = s
        row.update(z_log_var_median=r["z_log_var_median_all"], sigma_median=r["sigma_median"])
        rows.append(row)
    if not rows:
        raise ValueError("no runs to tabulate")
    return pd.DataFrame(rows).sort_values(["c", "backend", "seed"]).reset_index(drop=True)


def latent_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per backend and c, mean and sd over seeds of the latent evidence: ``kl_loss``,
    ``kl_mean_part``, ``kl_variance_part``, ``mean_share``, ``z_mean_sd`` (mean over axes),
    ``z_log_var_median``, ``sigma_median``, ``gap``, with ``n`` (runs)."""
    r = runs.copy()
    sd_cols = [c for c in r.columns if c.startswith("z_mean_sd_")]
    r["z_mean_sd"] = r[sd_cols].mean(axis=1)
    cols = ["kl_loss", "kl_mean_part", "kl_variance_part", "mean_share", "z_mean_sd", "z_log_var_median",
            "sigma_median", "gap"]
    g = r.groupby(["c", "backend"])
    out = g[cols].mean().join(g[cols].std(ddof=1).add_suffix("_sd"))
    out["n"] = g.size()
    return out.reset_index()


def collect(latents: list[str], metrics: list[str], runs: str, backends_table: str, latent_table: str,
            backends: list[str]) -> pd.DataFrame:
    """Rule ``study_table``: the study's three CSV tables.

    Args:
        latents, metrics: every run's evaluation JSON (:func:`evaluate`) and training metrics.
        runs: output CSV, :func:`run_table`.
        backends_table: output CSV, :func:`welch_rows` for ``backends`` and :data:`QUANTITIES`
            (the values of the KL-coefficient post's table).
        latent_table: output CSV, :func:`latent_summary`.
        backends: the two backends, in the order of the difference (first minus second).

    Returns:
        The Welch table.

    Raises:
        ValueError: not exactly two backends, or no runs.
    """
    if len(backends) != 2:
        raise ValueError(f"the backend study compares two backends, got {backends}")
    table = run_table(latents, metrics)
    tmp = atomic_path(runs)
    table.to_csv(tmp, index=False)
    commit(tmp, runs)
    welch = pd.DataFrame(welch_rows(table, tuple(backends), post_values=post_values()))
    tmp = atomic_path(backends_table)
    welch.to_csv(tmp, index=False)
    commit(tmp, backends_table)
    tmp = atomic_path(latent_table)
    latent_summary(table).to_csv(tmp, index=False)
    commit(tmp, latent_table)
    return welch


def record(run_json: str, config_yaml: str, config: dict, benchmarks_dir: str, repo: str,
           settings: dict) -> dict:
    """Rule ``study_record``: where, when and at which commit the study ran, and its CPU seconds.

    Args:
        run_json: output JSON: ``recorded_utc, host, profile, git_commit, hardware, versions
            (keras, tensorflow, jax, ...), python, study (the settings), rule_times`` (per
            ``study_*`` rule: jobs, wall and CPU seconds summed, from Snakemake's benchmark files)
            and ``cpu_seconds`` (their total).
        config_yaml: output, the run's config as used (YAML).
        config: the validated config.
        benchmarks_dir: the profile's benchmark folder.
        repo: the checkout (for the commit).
        settings: the ``backend_study`` section.
    """
    import platform
    import sys

    import yaml

    from klvae import backend
    from klvae import record as provenance

    times = [t for t in provenance.rule_times(benchmarks_dir, exclude=()) if t["rule"].startswith("study_")]
    rec = {"recorded_utc": provenance.utc_now(), "host": provenance.host(), "profile": config.get("profile"),
           "git_commit": provenance.git_commit(repo), "hardware": provenance.hardware(backend.backend_facts()),
           "versions": provenance.package_versions(),
           "python": {"executable": sys.executable, "version": platform.python_version()},
           "study": settings, "rule_times": times,
           "cpu_seconds": float(sum(t["cpu_s"] for t in times if math.isfinite(t["cpu_s"])))}
    write_json(run_json, rec)
    write_text(config_yaml, yaml.safe_dump(config, sort_keys=False))
    return rec
