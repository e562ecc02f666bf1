"""The Keras 2 -> 3 compatibility matrix of the five KL strategies (E2), produced by trying.

For every strategy three things are built and trained for one short epoch on the same
images:

(a) the seed's form as written (:mod:`klvae.strategies.seed_forms`) under Keras 3
    (``tf.keras`` is Keras 3 in TF >= 2.16), in a fresh Python process;
(b) the same code under legacy Keras 2 (``tf-keras``), in a fresh Python process started
    with ``TF_USE_LEGACY_KERAS=1`` (set before TensorFlow is imported);
(c) this project's Keras 3 form (the registered strategy, the code that E2 trains), in
    this process.

Each attempt records whether it ran, the exception type, the first meaningful line of its
message (empty if the exception had none), where it was raised, the stage (build /
compile / fit), the steps taken and the final training loss. Nothing is typed in.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import klvae

KERAS3, KERAS2 = "Keras 3", "Keras 2 (tf-keras)"


def _src_root() -> str:
    return str(Path(klvae.__file__).resolve().parent.parent)


def run_seed_forms_subprocess(legacy: bool, n_images: int, batch_size: int, z_dim: int, fact: float, seed: int,
                              mnist: str | None, threads: int = 1, timeout: int = 600) -> list[dict]:
    """Run :mod:`klvae.strategies.seed_forms` in a fresh interpreter; returns its records.

    Args:
        legacy: True sets ``TF_USE_LEGACY_KERAS=1`` (tf-keras, Keras 2); False removes it.
        n_images, batch_size, z_dim, fact, seed, mnist, threads: passed to the worker.
        timeout: seconds before the worker is killed.

    Raises:
        RuntimeError: the worker failed as a whole (not a form failing: those are records).
    """
    env = dict(os.environ)
    env.pop("TF_USE_LEGACY_KERAS", None)
    if legacy:
        env["TF_USE_LEGACY_KERAS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([_src_root(), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "forms.json")
        cmd = [sys.executable, "-m", "klvae.strategies.seed_forms", "--out", out, "--n-images", str(n_images),
               "--batch-size", str(batch_size), "--z-dim", str(z_dim), "--fact", repr(float(fact)),
               "--seed", str(seed), "--threads", str(threads)]
        if mnist is not None:
            cmd += ["--mnist", str(mnist)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0 or not os.path.exists(out):
            raise RuntimeError(f"seed-form worker ({'tf-keras' if legacy else 'Keras 3'}) exited with "
                               f"{proc.returncode}: {proc.stderr.strip()[-2000:]}")
        with open(out) as fh:
            return json.load(fh)


def try_project_form(name: str, x_uint8: np.ndarray, batch_size: int, z_dim: int, fact: float, seed: int,
                     check_save: bool = True) -> dict:
    """Build, compile and fit one registered strategy (this project's Keras 3 form) for one epoch.

    Args:
        name: registry name.
        x_uint8: uint8 images ``(n, 28, 28)``.
        batch_size, z_dim, fact, seed: settings.
        check_save: also try ``model.save(".keras")`` + ``keras.saving.load_model`` of the
            strategy's training model (column ``saves_keras``).

    Returns:
        A record with the keys of :func:`klvae.strategies.seed_forms.try_form` plus ``saves_keras``.
    """
    import keras

    from klvae.data.stream import image_dataset
    from klvae.models.conv import build_conv_pair
    from klvae.strategies.registry import get_strategy
    from klvae.strategies.seed_forms import first_line, raise_site

    rec = {"runs": "no", "stage": "build", "exception": "", "message": "", "raised_at": "", "steps": 0,
           "final_loss": math.nan, "saves_keras": ""}
    keras.utils.set_random_seed(int(seed))
    strat = get_strategy(name)
    try:
        enc, dec = build_conv_pair(int(z_dim))
        model = strat.build(enc, dec, fact=fact, seed=int(seed))
        rec["stage"] = "compile"
        strat.compile(model, fact=fact)
        rec["stage"] = "fit"
        steps = []
        cb = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: steps.append(b))
        hist = model.fit(strat.fit_data(image_dataset(x_uint8, int(batch_size), shuffle=True, seed=int(seed)),
                                        int(z_dim)), epochs=1, verbose=0, callbacks=[cb])
        loss = float(hist.history["loss"][-1])
        rec.update(runs="yes" if math.isfinite(loss) else "no", stage="done", steps=len(steps), final_loss=loss)
    except Exception as exc:  # noqa: BLE001 - recording the failure is the purpose
        rec.update(exception=type(exc).__name__, message=first_line(exc), raised_at=raise_site(exc))
        return rec
    if check_save:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "m.keras")
                model.save(path)
                keras.saving.load_model(path, compile=False)
            rec["saves_keras"] = "yes"
        except Exception as exc:  # noqa: BLE001
            rec["saves_keras"] = f"no: {type(exc).__name__}: {first_line(exc, 160)}"
    return rec


def compatibility_matrix(csv: str, table: str | None = None, mnist: str | None = None, n_images: int = 128,
                         batch_size: int = 32, z_dim: int = 2, fact: float = 6.5e-4, seed: int = 0,
                         threads: int = 1) -> list[dict]:
    """Try every strategy as the seeds wrote it under Keras 3 and Keras 2, and in this project's Keras 3 form.

    Args:
        csv: output CSV, one row per attempt: ``strategy, seed_post, form`` (``seed``,
            a named seed variant, or ``project``), ``keras_flavour``, ``keras_version``,
            ``tensorflow``, ``runs`` (yes/no/n/a), ``stage``, ``exception``, ``message``,
            ``raised_at``, ``steps``, ``final_loss``, ``saves_keras`` (project form only),
            ``source`` (where the code comes from).
        table: optional output CSV, one row per strategy for the report: seed post, seed
            form under Keras 2, under Keras 3 (with the error), this project's Keras 3 form.
        mnist: canonical MNIST ``.npz`` (None: seeded random binary images).
        n_images, batch_size: one epoch of ``n_images / batch_size`` steps per attempt.
        z_dim, fact, seed: settings.
        threads: TensorFlow intra-op threads of every process.

    Returns:
        The rows of ``csv``.

    Raises:
        RuntimeError: a worker process failed as a whole.
    """
    from klvae.io import write_rows
    from klvae.seeding import set_global_seed

    set_global_seed(int(seed), threads)
    from klvae.strategies.registry import available_strategies, get_strategy_class

    kw = dict(n_images=int(n_images), batch_size=int(batch_size), z_dim=int(z_dim), fact=float(fact),
              seed=int(seed), mnist=mnist, threads=int(threads))
    rows = []
    for legacy in (False, True):
        for r in run_seed_forms_subprocess(legacy, **kw):
            rows.append({**r, "saves_keras": ""})

    if mnist is not None:
        with np.load(mnist, allow_pickle=False) as d:
            x = d["x_train"][: int(n_images)]
    else:
        x = ((np.random.default_rng(seed).random((int(n_images), 28, 28)) > 0.8) * 255).astype(np.uint8)
    import keras
    import tensorflow as tf

    info = {"keras_flavour": KERAS3, "keras_version": keras.__version__, "tensorflow": tf.__version__}
    for name in available_strategies():
        cls = get_strategy_class(name)
        rec = try_project_form(name, x, int(batch_size), int(z_dim), float(fact), int(seed))
        rows.append({"strategy": name, "form": "project", "source": f"{cls.__module__} ({cls.keras3_form or 'as the seed'})",
                     **info, **rec})
        keras.backend.clear_session()

    order = {n: i for i, n in enumerate(available_strategies())}
    form_order = {"seed": 0, "project": 9}
    for r in rows:
        r["seed_post"] = get_strategy_class(r["strategy"]).seed_post
    rows.sort(key=lambda r: (order.get(r["strategy"], 99), form_order.get(r["form"], 5), r["form"],
                             r["keras_flavour"] != KERAS2))
    cols = ["strategy", "seed_post", "form", "keras_flavour", "keras_version", "tensorflow", "runs", "stage",
            "exception", "message", "raised_at", "steps", "final_loss", "saves_keras", "source"]
    rows = [{c: r.get(c, "") for c in cols} for r in rows]
    write_rows(csv, rows)
    if table is not None:
        write_rows(table, summary_table(rows))
    for r in rows:
        print(f"[compat] {r['strategy']:16s} {r['form']:18s} {r['keras_flavour']:20s} runs={r['runs']:3s} "
              f"{r['exception']} {r['message'][:90]!r}", flush=True)
    return rows


def _cell(r: dict | None) -> str:
    if r is None:
        return ""
    if r["runs"] == "yes":
        return f"runs ({r['steps']} steps, loss {float(r['final_loss']):.4f})"
    if r["runs"] == "n/a":
        return "n/a"
    msg = r["message"] if r["message"] else "(empty message)"
    return f"fails at {r['stage']}: {r['exception']}: {msg}"


def summary_table(rows: list[dict]) -> list[dict]:
    """One row per strategy from the long matrix: the seed form under Keras 2 and 3, the project form."""
    out = []
    for name in dict.fromkeys(r["strategy"] for r in rows):
        mine = [r for r in rows if r["strategy"] == name]
        pick = lambda form, flav: next((r for r in mine if r["form"] == form and r["keras_flavour"] == flav), None)
        variants = sorted({r["form"] for r in mine} - {"seed", "project"})
        out.append({
            "strategy": name, "seed_post": mine[0]["seed_post"],
            "seed_form_keras2": _cell(pick("seed", KERAS2)),
            "seed_form_keras3": _cell(pick("seed", KERAS3)),
            "project_form_keras3": _cell(pick("project", KERAS3)),
            "variants": "; ".join(f"{v}: Keras 2 {_cell(pick(v, KERAS2))} | Keras 3 {_cell(pick(v, KERAS3))}"
                                  for v in variants),
        })
    return out


__all__ = ["compatibility_matrix", "summary_table", "try_project_form", "run_seed_forms_subprocess"]
