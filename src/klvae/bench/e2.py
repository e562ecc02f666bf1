"""Training-step timings of the E2 KL strategies (the report's timing tables; posts IV and VII).

Every strategy is timed on the code path it trains with: its model is built, compiled and
driven by ``model.fit`` on its ``fit_data`` pipeline, exactly as
:func:`klvae.experiments.e2.train` does. After a warm-up (tracing and the first steps), the
strategies are timed in windows of ``steps_per_window`` steps, interleaved (A B C D E F,
A B C D E F, ...) so that a machine switching between fast and slow phases affects all
of them alike. A ``no_kl`` baseline (the same networks as a plain AE, BCE only) shows what
the network alone costs.

Per-step time of a window = (end of its last step - start of its first step) / steps,
taken from Keras batch callbacks, so ``fit``'s per-call set-up is excluded while the input
pipeline (part of every training step) is included. Absolute times only mean something on
the same machine; ratios carry.
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np

from klvae.backend import describe
from klvae.reference import E2_POST_FACT
from klvae.seeding import set_global_seed

EPOCH_IMAGES = 60_000


def _window_timer():
    import keras

    class WindowTimer(keras.callbacks.Callback):
        """Wall-clock times of the first step's start and the last step's end within one ``fit``."""

        def __init__(self):
            super().__init__()
            self.t_first = None
            self.t_last = None
            self.steps = 0

        def on_train_batch_begin(self, batch, logs=None):
            if self.t_first is None:
                self.t_first = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.t_last = time.perf_counter()
            self.steps += 1

    return WindowTimer()


def _pipeline_images_per_s(x: np.ndarray, batch_size: int, seed: int, n_batches: int = 30) -> float:
    """Images per second the input pipeline alone delivers (uint8 -> float32 batches of :class:`ImageBatches`)."""
    from klvae.data.stream import ImageBatches

    batches = ImageBatches(x, batch_size, shuffle=True, seed=seed, drop_remainder=True, epochs=n_batches + 1)
    batches[0]
    t0 = time.perf_counter()
    n = 0
    for i in range(1, n_batches + 1):
        n += int(batches[i].shape[0])
    return n / (time.perf_counter() - t0)


def benchmark(csv: str, summary: str | None = None, mnist: str | None = None,
              strategies: Sequence[str] | None = None, z_dim: int = 12, batch_size: int = 256,
              n_windows: int = 5, steps_per_window: int = 10, warmup_steps: int = 3, threads: int | None = 1,
              seed: int = 0, include_baseline: bool = True, fact: float = E2_POST_FACT, learning_rate: float = 1e-3,
              n_images: int | None = None, epoch_images: int = EPOCH_IMAGES) -> list[dict]:
    """Time E2 training steps per strategy in interleaved windows; write per-window and summary CSVs.

    Args:
        csv: output CSV, one row per (window, strategy): ``window``, ``order`` (position in
            the window round), ``strategy``, ``steps``, ``ms_per_step``, ``rss_mb`` (process
            RSS after the window, MiB).
        summary: optional output CSV, one row per strategy: ``median_ms_per_step``,
            ``min_ms_per_step``, ``max_ms_per_step``, ``iqr_ms_per_step``,
            ``s_per_epoch`` (median ms/step x ceil(``epoch_images`` / batch) / 1000),
            ``ratio_to_fastest``, ``ratio_to_no_kl``, ``peak_rss_mb`` (max process RSS seen
            after its windows; the process holds all models, so this is not per model),
            ``pipeline_images_per_s`` (the input pipeline alone), the CPU model, thread
            settings, the Keras backend and its version, ``gpu`` (the accelerators the backend
            used, ``none`` on a CPU run) and the benchmark settings.
        mnist: canonical MNIST ``.npz``; None uses seeded random binary images.
        strategies: names to time (default: the five); ``no_kl`` is added when
            ``include_baseline``.
        z_dim, batch_size, fact, learning_rate: model and training settings.
        n_windows, steps_per_window, warmup_steps: timing design.
        threads: CPU threads of the backend (TensorFlow: intra-op, inter-op 1); None: its default.
        seed: seeds weights, data order and sampling.
        n_images: images cycled through (default ``batch_size * steps_per_window``).
        epoch_images: images per epoch for ``s_per_epoch`` (60,000 MNIST training images).

    Returns:
        The summary rows.

    Raises:
        KeyError: an unknown strategy name.
    """
    set_global_seed(int(seed), threads)
    import keras
    import psutil

    from klvae import backend
    from klvae.data.stream import ImageBatches
    from klvae.io import write_rows
    from klvae.models.conv import build_conv_pair, copy_pair_weights
    from klvae.strategies.registry import available_strategies, get_strategy

    names = list(strategies) if strategies is not None else available_strategies()
    if include_baseline and "no_kl" not in names:
        names.append("no_kl")
    n_images = int(n_images or batch_size * steps_per_window)
    if mnist is not None:
        with np.load(mnist, allow_pickle=False) as d:
            x = d["x_train"][:n_images]
    else:
        x = ((np.random.default_rng(seed).random((n_images, 28, 28)) > 0.8) * 255).astype(np.uint8)
    if len(x) < batch_size:
        raise ValueError(f"need at least one batch of {batch_size} images, have {len(x)}")
    proc = psutil.Process()

    ref = build_conv_pair(int(z_dim))
    runs = {}
    for name in names:
        strat = get_strategy(name)
        enc, dec = build_conv_pair(int(z_dim))
        copy_pair_weights(ref, (enc, dec))
        model = strat.build(enc, dec, fact=fact, seed=int(seed))
        strat.compile(model, learning_rate=learning_rate, fact=fact)
        # enough epochs of batches for the warm-up and every window (each fit starts at batch 0);
        # fed as training feeds them (backend.fit_input), so the times are training's step times
        ds = backend.fit_input(ImageBatches(x, int(batch_size), shuffle=True, seed=int(seed), drop_remainder=True,
                                            epochs=int(warmup_steps) + int(steps_per_window) + 1,
                                            transform=lambda b, strat=strat: strat.fit_data(b, int(z_dim))))
        t0 = time.perf_counter()
        model.fit(ds, epochs=1, steps_per_epoch=int(warmup_steps), verbose=0)
        print(f"[timing] {name}: warm-up {warmup_steps} steps in {time.perf_counter() - t0:.1f} s", flush=True)
        runs[name] = (strat, model, ds)

    rows = []
    for w in range(int(n_windows)):
        for k, name in enumerate(names):
            strat, model, ds = runs[name]
            timer = _window_timer()
            model.fit(ds, epochs=1, steps_per_epoch=int(steps_per_window), verbose=0, callbacks=[timer])
            ms = 1000.0 * (timer.t_last - timer.t_first) / timer.steps
            rows.append({"window": w, "order": k, "strategy": name, "steps": timer.steps, "ms_per_step": ms,
                         "rss_mb": proc.memory_info().rss / 2**20, "z_dim": int(z_dim),
                         "batch_size": int(batch_size), "threads": threads})
        print(f"[timing] window {w + 1}/{n_windows}: " + ", ".join(
            f"{r['strategy']} {r['ms_per_step']:.0f}" for r in rows[-len(names):]) + " ms/step", flush=True)
    write_rows(csv, rows)

    pipeline = _pipeline_images_per_s(x, int(batch_size), int(seed))
    gpu = backend.accelerators()
    v = describe()
    steps_per_epoch = math.ceil(epoch_images / int(batch_size))
    out = []
    for name in names:
        ms = np.array([r["ms_per_step"] for r in rows if r["strategy"] == name])
        q25, q50, q75 = np.percentile(ms, [25, 50, 75])
        out.append({"strategy": name, "post": runs[name][0].post, "median_ms_per_step": float(q50),
                    "min_ms_per_step": float(ms.min()), "max_ms_per_step": float(ms.max()),
                    "iqr_ms_per_step": float(q75 - q25), "s_per_epoch": float(q50) * steps_per_epoch / 1000.0,
                    "peak_rss_mb": max(r["rss_mb"] for r in rows if r["strategy"] == name)})
    fastest = min(r["median_ms_per_step"] for r in out if not get_strategy(r["strategy"]).baseline) if any(
        not get_strategy(r["strategy"]).baseline for r in out) else min(r["median_ms_per_step"] for r in out)
    base = next((r["median_ms_per_step"] for r in out if r["strategy"] == "no_kl"), math.nan)
    for r in out:
        r["ratio_to_fastest"] = r["median_ms_per_step"] / fastest
        r["ratio_to_no_kl"] = r["median_ms_per_step"] / base if base == base else math.nan
        r.update({"pipeline_images_per_s": pipeline, "epoch_images": int(epoch_images),
                  "z_dim": int(z_dim), "batch_size": int(batch_size), "n_windows": int(n_windows),
                  "steps_per_window": int(steps_per_window), "warmup_steps": int(warmup_steps),
                  **backend.thread_settings(),
                  "cpu": v["cpu"], "cpu_count": v["cpu_count"], "backend": v["backend"],
                  "backend_version": v.get(v["backend"], ""), "keras": v["keras"],
                  "jit_compile": bool(runs[r["strategy"]][1].jit_compile), "gpu": gpu})
    if summary is not None:
        write_rows(summary, out)
    for r in out:
        print(f"[timing] {r['strategy']:16s} median {r['median_ms_per_step']:7.1f} ms/step "
              f"[{r['min_ms_per_step']:.0f}-{r['max_ms_per_step']:.0f}] {r['s_per_epoch']:6.1f} s/epoch "
              f"x{r['ratio_to_fastest']:.2f} fastest, x{r['ratio_to_no_kl']:.2f} no-KL", flush=True)
    keras.backend.clear_session()
    return out


__all__ = ["benchmark"]
