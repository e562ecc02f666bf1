"""E2 -- five ways to add the KL loss (post VII, posts IV-VIII): the rules' entry points.

* :func:`init_weights` -- one initial-weights file per ``z_dim``, shared by every strategy.
* :func:`train` -- one strategy, one ``z_dim``: same initial weights, same data order and
  same reparameterization seed for every strategy; writes the trained networks, the
  per-epoch history and the final test metrics.
* :func:`equivalence` -- same weights, same batch, same eps: each strategy's training loss
  and gradients against ``gradient_tape``.
* :func:`analyse` -- test-set z_mean and a few reconstructions of one trained model (for figures).
* :func:`collect_metrics` -- the final-loss table over strategies and z_dims.

The objective is ``mean BCE + fact * KL_mean`` (see :mod:`klvae.strategies.base`) on the conv
VAE of :mod:`klvae.models.conv`. Every entry point takes file paths and plain parameters as
keyword arguments (``workflow/scripts/call.py``) and writes its outputs atomically.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from klvae.backend import describe
from klvae.io import atomic_path, write_json, write_rows

# The posts' reference numbers live in klvae.reference (one place for all experiments).
from klvae.reference import E2_POST_BATCH_SIZE, E2_POST_EPOCHS, E2_POST_FACT, POST_LATENT_EXTENT, POST_VII_LOG  # noqa: F401
from klvae.seeding import set_global_seed

#: The posts' settings for E2 (post VII): fact, batch size, epochs, learning rate (Keras Adam default).
FACT = E2_POST_FACT
BATCH_SIZE = E2_POST_BATCH_SIZE
EPOCHS = E2_POST_EPOCHS
LEARNING_RATE = 1e-3
#: Tolerances of the equivalence check (float32; see :func:`equivalence`).
RTOL, ATOL = 1e-4, 1e-6


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------
def _build_pair(z_dim: int, init: str | None, seed: int):
    """Fresh conv encoder/decoder with the weights of ``init`` (or seeded fresh weights)."""
    from klvae.models.conv import build_conv_pair, load_pair_weights

    encoder, decoder = build_conv_pair(int(z_dim))
    if init is not None:
        load_pair_weights(encoder, decoder, init)
    return encoder, decoder


def export_pair(encoder, decoder, name: str):
    """The trained networks as one plain functional model (serialisable with standard layers only).

    Input: images float32 ``(b, 28, 28)`` in [0, 1]. Outputs (dict): ``z_mean``,
    ``z_log_var`` (``(b, z_dim)``) and ``reconstruction`` = ``decoder(z_mean)``
    (``(b, 28, 28)`` probabilities; the deterministic reconstruction at the posterior mean).
    """
    import keras

    x = keras.Input(shape=encoder.input.shape[1:], name="images")
    z_mean, z_log_var = encoder(x)
    out = {"z_mean": keras.layers.Identity(name="z_mean_out")(z_mean),
           "z_log_var": keras.layers.Identity(name="z_log_var_out")(z_log_var),
           "reconstruction": keras.layers.Identity(name="reconstruction")(decoder(z_mean))}
    return keras.Model(x, out, name=name)


def evaluate_pair(encoder, decoder, x_uint8: np.ndarray, batch_size: int = BATCH_SIZE, fact: float = FACT,
                  seed: int = 0) -> dict:
    """Strategy-independent test metrics of trained networks (the same eps for every strategy).

    For each batch: ``z = z_mean + exp(z_log_var/2) * eps`` with eps from a fresh
    ``Sampling(seed)``, ``x_hat = decoder(z)``; averages over all images (batch-size weighted).

    Args:
        encoder, decoder: trained E2 networks.
        x_uint8: uint8 images ``(n, 28, 28)``.
        batch_size: evaluation batch size.
        fact: KL weight for the total.
        seed: seed of the evaluation eps.

    Returns:
        ``{"loss", "reconstruction_loss", "kl_loss", "reconstruction_loss_at_mean"}`` floats:
        mean BCE in nats per pixel, KL_mean, total = BCE + fact * KL_mean, and the BCE of the
        deterministic reconstruction ``decoder(z_mean)``.
    """
    from klvae import losses
    from klvae.data.stream import ImageBatches
    from klvae.models.vae import Sampling

    sampling = Sampling(seed=seed, name="eval_sampling")
    sums = {"reconstruction_loss": 0.0, "kl_loss": 0.0, "reconstruction_loss_at_mean": 0.0}
    n = 0
    for x in ImageBatches(x_uint8, batch_size):
        z_mean, z_log_var = encoder(x, training=False)
        x_hat = decoder(sampling([z_mean, z_log_var]), training=False)
        b = int(x.shape[0])
        sums["reconstruction_loss"] += b * float(losses.bce_mean(x, x_hat))
        sums["kl_loss"] += b * float(losses.kl_divergence_mean(z_mean, z_log_var))
        sums["reconstruction_loss_at_mean"] += b * float(losses.bce_mean(x, decoder(z_mean, training=False)))
        n += b
    out = {k: v / n for k, v in sums.items()}
    out["loss"] = out["reconstruction_loss"] + fact * out["kl_loss"]
    return {k: out[k] for k in ("loss", "reconstruction_loss", "kl_loss", "reconstruction_loss_at_mean")}


# ---------------------------------------------------------------------------------------------
# entry points
# ---------------------------------------------------------------------------------------------
def init_weights(weights: str, z_dim: int, seed: int = 0, mnist: str | None = None,
                 threads: int | None = None) -> None:
    """Write the initial weights every E2 strategy starts from, for one ``z_dim``.

    Args:
        weights: output ``.npz`` (float32 arrays keyed by variable path, see
            :func:`klvae.models.conv.save_pair_weights`).
        z_dim: latent dimension.
        seed: seeds Keras' initialisers (:func:`klvae.seeding.set_global_seed`).
        mnist: optional canonical MNIST file; only checked for the image shape (28, 28).
        threads: TensorFlow intra-op threads.

    Raises:
        ValueError: when ``mnist`` does not hold 28x28 images.
    """
    set_global_seed(int(seed), threads)
    if mnist is not None:
        with np.load(mnist, allow_pickle=False) as d:
            if tuple(d["x_train"].shape[1:]) != (28, 28):
                raise ValueError(f"{mnist}: expected 28x28 images, got {d['x_train'].shape[1:]}")
    from klvae.models.conv import build_conv_pair, save_pair_weights

    encoder, decoder = build_conv_pair(int(z_dim))
    save_pair_weights(encoder, decoder, weights)
    print(f"[e2] initial weights z_dim={z_dim} seed={seed}: "
          f"{encoder.count_params() + decoder.count_params():,} parameters -> {weights}", flush=True)


def train(mnist: str, init: str, model: str, history: str, metrics: str, strategy: str, z_dim: int,
          epochs: int = EPOCHS, batch_size: int = BATCH_SIZE, fact: float = FACT,
          learning_rate: float = LEARNING_RATE, n_train: int | None = None, n_test: int | None = None,
          seed: int = 0, threads: int | None = None, verbose: int = 2) -> dict:
    """Train one KL strategy on MNIST from the shared initial weights (E2).

    Every strategy gets the same initial weights (``init``), the same data order (the
    order of :func:`klvae.data.stream.epoch_order` seeded with ``seed``), the same
    sampling seed and the same optimizer (Adam, ``learning_rate``); only the way the KL loss
    reaches Keras differs.

    Args:
        mnist: canonical MNIST ``.npz`` (:mod:`klvae.data.mnist`).
        init: initial weights from :func:`init_weights` for this ``z_dim``.
        model: output ``.keras`` file: the strategy's trained model, native Keras format
            (all five serialise; reload with ``keras.saving.load_model`` after importing
            :mod:`klvae.strategies.registry` and calling ``available_strategies()`` so the
            custom classes are registered; ``get_strategy(name).networks(model)`` gives the
            encoder and decoder).
        history: output CSV, one row per epoch: ``epoch`` (1-based), ``strategy``, ``post``, ``z_dim``,
            ``loss``, ``reconstruction_loss`` (nats/pixel), ``kl_loss`` (KL_mean): Keras'
            running means over the epoch's training batches. No timings (they are in
            ``metrics``), so reruns give identical files.
        metrics: output ``.json`` (or ``.csv``, flattened): final test metrics from
            :func:`evaluate_pair` (``test``), the strategy's own ``model.evaluate`` read
            through its metric names (``keras_test``), the last epoch's training metrics,
            timings (``epoch_seconds`` per epoch, s; ``s_per_epoch_median``/``ms_per_step_median``
            over epochs 2.. when there are several: epoch 1 includes tracing) and settings.
            Training resumes from ``<model>.ckpt/`` after a kill (:mod:`klvae.training`).
        strategy: registry name (``end_layer``, ``encoder_layer``, ``tensor_transfer``,
            ``model_add_loss``, ``gradient_tape``).
        z_dim, epochs, batch_size, fact, learning_rate: E2 settings (seeds: 2 or 12, 37,
            256, 6.5e-4, 1e-3).
        n_train, n_test: use the first n images (None: all 60,000 / 10,000).
        seed: global seed (weights are from ``init``; this seeds shuffling and sampling).
        threads: TensorFlow intra-op threads.
        verbose: Keras ``fit`` verbosity (2: one line per epoch).

    Returns:
        The metrics record (dict).

    Raises:
        KeyError: unknown strategy.
        ValueError: ``init`` does not match the networks for ``z_dim``.
    """
    set_global_seed(int(seed), threads)

    from klvae import training
    from klvae.data.mnist import load
    from klvae.data.stream import ImageBatches
    from klvae.strategies.registry import get_strategy

    strat = get_strategy(strategy)
    x_train, _, x_test, _ = load(mnist, n_train, n_test)
    encoder, decoder = _build_pair(z_dim, init, seed)
    vae = strat.build(encoder, decoder, fact=fact, seed=int(seed))
    strat.compile(vae, learning_rate=learning_rate, fact=fact)
    print(f"[e2] train {strategy} (post {strat.post}) z_dim={z_dim} epochs={epochs} batch={batch_size} "
          f"fact={fact} n_train={len(x_train)}", flush=True)
    settings = {"run": "e2", "strategy": strategy, "z_dim": int(z_dim), "epochs": int(epochs),
                "batch_size": int(batch_size), "fact": float(fact), "lr": float(learning_rate), "n_train": n_train,
                "seed": int(seed), "threads": threads}
    logs = training.fit_resumable(
        vae, x_train, epochs=int(epochs), batch_size=int(batch_size), seed=int(seed),
        checkpoint=training.checkpoint_dir(model), fit_data=lambda ds: strat.fit_data(ds, int(z_dim)),
        fingerprint=training.fingerprint(settings, {"mnist": mnist, "init": init}), verbose=verbose,
        nan_hint=f"lower e2.learning_rate (now {learning_rate:g}) or e2.fact (now {fact:g})")
    seconds = [r["seconds"] for r in logs]
    train_seconds = float(sum(seconds))

    rows = [{"epoch": i + 1, "strategy": strategy, "post": strat.post, "z_dim": int(z_dim),
             **strat.read_metrics(r, fact)}
            for i, r in enumerate(logs)]

    test = evaluate_pair(encoder, decoder, x_test, int(batch_size), fact, int(seed))
    keras_test = strat.read_metrics(
        vae.evaluate(ImageBatches(x_test, int(batch_size), transform=lambda b: strat.fit_data(b, int(z_dim))),
                     verbose=0, return_dict=True), fact)

    path = Path(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = atomic_path(path)
    vae.save(tmp)
    os.replace(tmp, path)
    write_rows(history, rows)
    steps = math.ceil(len(x_train) / int(batch_size))
    timed = seconds[1:] or seconds
    record = {
        "strategy": strategy, "post": strat.post, "z_dim": int(z_dim), "epochs": int(epochs),
        "batch_size": int(batch_size), "fact": float(fact), "learning_rate": float(learning_rate),
        "n_train": int(len(x_train)), "n_test": int(len(x_test)), "seed": int(seed), "threads": threads,
        "test": test, "keras_test": keras_test,
        "train_last_epoch": {k: rows[-1][k] for k in ("loss", "reconstruction_loss", "kl_loss")} if rows else {},
        "train_seconds": train_seconds, "epoch_seconds": seconds,
        # epoch 1 includes tracing: medians over the later epochs when there are any
        "s_per_epoch_median": float(np.median(timed)) if timed else math.nan,
        "ms_per_step_median": 1000.0 * float(np.median(timed)) / steps if timed else math.nan,
        "model_file": str(model), "model_class": type(vae).__name__,
        **{f"version_{k}": v for k, v in describe().items()},
    }
    write_json(metrics, record)
    print(f"[e2] {strategy} z_dim={z_dim}: test loss {test['loss']:.5f} = BCE {test['reconstruction_loss']:.5f} "
          f"+ {fact} * KL {test['kl_loss']:.5f}", flush=True)
    return record


def analyse(model: str, mnist: str, latent: str, recon: str, n_test: int | None = None, n_recon: int = 10,
            strategy: str | None = None) -> None:
    """Encode the test set and reconstruct a few test images with one trained E2 model.

    Args:
        model: ``.keras`` from :func:`train`: the strategy's model (``model``; its
            encoder/decoder are found with :meth:`KLStrategy.networks`) or the
            encoder/decoder export (``networks``).
        mnist: canonical MNIST ``.npz``.
        latent: output ``.npz``: float32 ``z_mean``/``z_log_var`` ``(n_test, z_dim)``, uint8
            ``labels`` ``(n_test,)``, and ``strategy``, ``z_dim`` (0-d arrays).
        recon: output ``.npz``: float32 ``originals`` and ``reconstructions``
            ``(n_recon, 28, 28)`` in [0, 1] (the first ``n_recon`` test images;
            reconstruction = ``decoder(z_mean)``, no sampling), uint8 ``labels``, ``strategy``,
            ``z_dim``.
        n_test: first n test images (None: all).
        n_recon: images to reconstruct.
        strategy: the strategy's name (default: from the model name, ``vae_<strategy>`` or
            ``e2_<strategy>_z<z_dim>``).

    Raises:
        KeyError: the strategy cannot be told from the model name and is not given.
    """
    set_global_seed(0, threads=1)
    import keras

    from klvae.data.mnist import load
    from klvae.strategies.registry import available_strategies, get_strategy

    available_strategies()  # imports the strategy modules: registers their custom Keras classes
    net = keras.saving.load_model(model, compile=False)
    if strategy is None:
        name = net.name
        strategy = name[3:].rsplit("_z", 1)[0] if name.startswith("e2_") else name.removeprefix("vae_")
    try:
        is_pair = isinstance(net.output, dict) and "z_mean" in net.output
    except (AttributeError, ValueError):  # subclassed models (gradient_tape) have no symbolic output
        is_pair = False
    if not is_pair:
        net = export_pair(*get_strategy(strategy).networks(net), name=f"e2_{strategy}")
    _, _, x_test, y_test = load(mnist, 0, n_test)
    out = net.predict(x_test.astype(np.float32) / 255.0, batch_size=500, verbose=0)
    z_dim = int(out["z_mean"].shape[-1])
    for path, arrays in (
        (latent, {"z_mean": out["z_mean"].astype(np.float32), "z_log_var": out["z_log_var"].astype(np.float32),
                  "labels": y_test.astype(np.uint8)}),
        (recon, {"originals": x_test[:n_recon].astype(np.float32) / 255.0,
                 "reconstructions": out["reconstruction"][:n_recon].astype(np.float32),
                 "labels": y_test[:n_recon].astype(np.uint8)}),
    ):
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = atomic_path(path)
        np.savez(tmp, **arrays, strategy=np.array(strategy), post=np.array(get_strategy(strategy).post),
                 z_dim=np.array(z_dim))
        os.replace(tmp, path)


def collect_metrics(metrics: Sequence[str], table: str, reference: str = "gradient_tape") -> list[dict]:
    """One CSV row per (strategy, z_dim) from the metrics JSON files of :func:`train`.

    Columns: ``strategy, post, z_dim, epochs, n_train, n_test, test_loss,
    test_reconstruction_loss, test_kl_loss`` (the common evaluator, same eps for all),
    ``test_loss_minus_reference`` (vs ``reference`` at the same z_dim),
    ``keras_test_loss/_reconstruction_loss/_kl_loss`` (each strategy's own ``evaluate``),
    ``train_loss, train_reconstruction_loss, train_kl_loss`` (last epoch),
    ``s_per_epoch_median, ms_per_step_median``. Sorted by z_dim, then the posts' order.
    """
    from klvae.strategies.registry import available_strategies

    order = {n: i for i, n in enumerate(available_strategies(include_baselines=True))}
    recs = [json.loads(Path(p).read_text()) for p in metrics]
    ref = {r["z_dim"]: r["test"]["loss"] for r in recs if r["strategy"] == reference}
    rows = []
    for r in sorted(recs, key=lambda r: (r["z_dim"], order.get(r["strategy"], 99))):
        rows.append({
            "strategy": r["strategy"], "post": r["post"], "z_dim": r["z_dim"], "epochs": r["epochs"],
            "n_train": r["n_train"], "n_test": r["n_test"],
            **{f"test_{k}": r["test"][k] for k in ("loss", "reconstruction_loss", "kl_loss")},
            "test_loss_minus_reference": r["test"]["loss"] - ref[r["z_dim"]] if r["z_dim"] in ref else math.nan,
            **{f"keras_test_{k}": r["keras_test"][k] for k in ("loss", "reconstruction_loss", "kl_loss")},
            **{f"train_{k}": r["train_last_epoch"].get(k, math.nan)
               for k in ("loss", "reconstruction_loss", "kl_loss")},
            "s_per_epoch_median": r["s_per_epoch_median"], "ms_per_step_median": r["ms_per_step_median"],
        })
    write_rows(table, rows)
    return rows


def _grad_stats(grads, ref, rtol: float, atol: float) -> dict:
    abs_max, rel_max, ref_max, ok, n = 0.0, 0.0, 0.0, True, 0
    for g, r in zip(grads, ref, strict=True):
        if g is None or r is None:
            if (g is None) != (r is None):
                ok = False
                abs_max = rel_max = math.inf
            continue
        g, r = np.asarray(g, np.float64), np.asarray(r, np.float64)
        d = np.abs(g - r)
        abs_max = max(abs_max, float(d.max()))
        # relative to the largest reference gradient of that variable (elementwise ratios blow up near 0)
        scale = float(np.abs(r).max())
        rel_max = max(rel_max, float(d.max()) / scale if scale > 0 else (0.0 if d.max() == 0 else math.inf))
        ref_max = max(ref_max, scale)
        ok = ok and bool(np.all(d <= atol + rtol * np.abs(r)))
        n += g.size
    return {"max_abs_grad_diff": abs_max, "max_rel_grad_diff": rel_max, "max_abs_grad": ref_max,
            "grads_allclose": ok, "n_params": n}


def spread_latent(encoder, scale: float, seed: int) -> None:
    """Set the ``z_mean`` bias to N(0, scale^2) and the ``z_log_var`` bias to N(0, (scale/2)^2) draws.

    Freshly initialised networks give z_mean ~ 0 and z_log_var ~ 0, where the KL term and
    its gradient nearly vanish (KL_mean ~ 1e-3); spreading the posteriors makes the KL term
    ~1 so that a wrong KL weight or a missing KL path shows in the loss and the gradients.
    """
    rng = np.random.default_rng(int(seed) + 1)
    for name, sd in (("z_mean", scale), ("z_log_var", scale / 2.0)):
        bias = encoder.get_layer(name).bias
        bias.assign(rng.normal(0.0, sd, tuple(bias.shape)).astype(np.float32))


def equivalence(csv: str, mnist: str, z_dim: int | Sequence[int] = (2, 12), seed: int = 0,
                batch_size: int = 64, init: str | Sequence[str] | None = None, fact: float = FACT,
                strategies: Sequence[str] | None = None, reference: str = "gradient_tape",
                latent_spread: float = 2.0, rtol: float = RTOL, atol: float = ATOL,
                threads: int | None = None) -> list[dict]:
    """Same weights, same batch, same eps -> each strategy's training loss and gradients vs ``reference``.

    For every ``z_dim``: the first ``batch_size`` training images; eps drawn once from
    ``numpy.random.default_rng(seed)`` (standard normal, ``(batch_size, z_dim)``, float32)
    and injected with :class:`klvae.models.vae.FixedNoiseSampling`; the encoder/decoder
    weights of ``init`` (or fresh weights seeded with ``seed``), with the latent biases spread
    by :func:`spread_latent` (``latent_spread``; 0 keeps them) so that the KL term matters.
    Each strategy builds and
    compiles its model and computes its training loss and gradients exactly as its
    ``train_step`` does (:meth:`KLStrategy.loss_and_gradients`); gradients are taken with
    respect to the same encoder/decoder variables and compared with the reference strategy.

    Args:
        csv: output CSV, one row per (z_dim, strategy): ``loss``, ``loss_ref``,
            ``abs_loss_diff``, ``rel_loss_diff``, ``max_abs_grad_diff`` (max over all
            parameters of ``|g - g_ref|``), ``max_rel_grad_diff`` (max over variables of
            ``max|g - g_ref| / max|g_ref|``), ``max_abs_grad``, ``grads_allclose``
            (``|g - g_ref| <= atol + rtol |g_ref|`` everywhere), ``loss_close``,
            ``fact_kl`` (the KL part ``fact * KL_mean`` of the reference loss), tolerances.
        mnist: canonical MNIST ``.npz``.
        z_dim: one latent dimension or a list.
        seed: seeds eps and (without ``init``) the weights.
        batch_size: images in the batch.
        init: initial-weights file(s) parallel to ``z_dim``, or None.
        fact: KL weight.
        strategies: names to check (default: the five).
        reference: the strategy the others are compared with.
        latent_spread: scale of :func:`spread_latent` (0: leave the weights as they are).
        rtol, atol: float32 tolerances (default 1e-4 / 1e-6).
        threads: TensorFlow intra-op threads.

    Returns:
        The rows written.
    """
    set_global_seed(int(seed), threads)
    from klvae import losses
    from klvae.data.mnist import load
    from klvae.models.conv import copy_pair_weights
    from klvae.models.vae import FixedNoiseSampling
    from klvae.strategies.registry import available_strategies, get_strategy

    z_dims = [int(z_dim)] if np.isscalar(z_dim) else [int(z) for z in z_dim]
    inits = [init] * len(z_dims) if init is None or isinstance(init, (str, os.PathLike)) else list(init)
    if len(inits) != len(z_dims):
        raise ValueError(f"init has {len(inits)} files for {len(z_dims)} z_dims")
    names = list(strategies) if strategies is not None else available_strategies()
    names = [reference] + [n for n in names if n != reference]
    x_train, _, _, _ = load(mnist, int(batch_size), 0)
    x = (x_train.astype(np.float32) / 255.0)
    rows = []
    for zd, ini in zip(z_dims, inits, strict=True):
        set_global_seed(int(seed), threads)
        ref_pair = _build_pair(zd, ini, seed)
        if latent_spread:
            spread_latent(ref_pair[0], float(latent_spread), int(seed))
        z_mean, z_log_var = ref_pair[0](x, training=False)
        fact_kl = float(fact) * float(losses.kl_divergence_mean(z_mean, z_log_var))
        eps = np.random.default_rng(int(seed)).standard_normal((int(batch_size), zd)).astype(np.float32)
        ref_loss = ref_grads = None
        for name in names:
            strat = get_strategy(name)
            enc, dec = _build_pair(zd, None, seed)
            copy_pair_weights(ref_pair, (enc, dec))
            vae = strat.build(enc, dec, fact=fact, seed=int(seed), sampling=FixedNoiseSampling(eps, name="sampling"))
            strat.compile(vae, fact=fact)
            variables = enc.trainable_weights + dec.trainable_weights
            loss, grads = strat.loss_and_gradients(vae, x, variables, zd)
            loss = float(loss)
            grads = [None if g is None else np.asarray(g) for g in grads]
            if name == reference:
                ref_loss, ref_grads = loss, grads
            d = abs(loss - ref_loss)
            stats = _grad_stats(grads, ref_grads, rtol, atol)
            rows.append({"z_dim": zd, "strategy": name, "reference": reference, "batch_size": int(batch_size),
                         "seed": int(seed), "fact": float(fact), "latent_spread": float(latent_spread),
                         "fact_kl": fact_kl, "loss": loss, "loss_ref": ref_loss,
                         "abs_loss_diff": d, "rel_loss_diff": d / abs(ref_loss) if ref_loss else math.nan,
                         "loss_close": bool(d <= atol + rtol * abs(ref_loss)), **stats, "rtol": rtol, "atol": atol})
            print(f"[e2] equivalence z_dim={zd} {name:16s} loss {loss:.8f} |dloss| {d:.2e} "
                  f"max|dg| {stats['max_abs_grad_diff']:.2e} rel {stats['max_rel_grad_diff']:.2e}", flush=True)
    write_rows(csv, rows)
    return rows


__all__ = ["init_weights", "train", "equivalence", "analyse", "collect_metrics", "evaluate_pair", "export_pair",
           "POST_VII_LOG", "POST_LATENT_EXTENT",
           "FACT", "BATCH_SIZE", "EPOCHS", "LEARNING_RATE"]
