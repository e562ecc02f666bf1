"""The Keras 2 -> 3 compatibility matrix of the five KL strategies (E2), with a backend axis, produced by trying.

For every strategy these are built and trained for one short epoch on the same images,
each in a fresh Python process:

(a) the post's form as written (:mod:`klvae.strategies.post_forms`) under legacy Keras 2
    (``tf-keras``, started with ``TF_USE_LEGACY_KERAS=1``; TensorFlow only);
(b) the same code under Keras 3 on each backend (``KERAS_BACKEND`` = ``tensorflow``,
    ``jax``, ``torch``; the posts reach Keras through ``tf.keras``, which is Keras 3 with
    that backend);
(c) this project's Keras 3 form (the registered strategy, the code that E2 trains) on each
    backend (:func:`try_project_form` in a worker process, ``python -m
    klvae.strategies.compat``).

Each attempt records whether it ran, the exception type, the first meaningful line of its
message (empty if the exception had none), where it was raised, the stage (build /
compile / fit), the steps taken and the final training loss. An attempt that cannot be
made on this machine (a backend or TensorFlow not installed) is a row with ``runs = "n/a"``
and the reason, never silently left out. Nothing is typed in.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import klvae
from klvae.formatting import BACKEND_TITLES, KERAS2, KERAS3  # the flavour labels and backend titles
from klvae.reference import E2_POST_FACT

#: Keras 3 backends of the matrix, in column order, and the modules each needs.
BACKENDS = ("tensorflow", "jax", "torch")
BACKEND_MODULES = {"tensorflow": ("tensorflow",), "jax": ("jax",), "torch": ("torch",)}


def _src_root() -> str:
    return str(Path(klvae.__file__).resolve().parent.parent)


def missing_modules(modules) -> list[str]:
    """The names in ``modules`` that cannot be imported here (no import is attempted)."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _run_worker(module_args: list[str], env_updates: dict, what: str, timeout: int) -> list[dict]:
    """Run ``python -m <module_args> --out F`` with ``env_updates``; return the JSON list it wrote."""
    env = dict(os.environ)
    env.pop("TF_USE_LEGACY_KERAS", None)
    for k, v in env_updates.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    env["PYTHONPATH"] = os.pathsep.join([_src_root(), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])])
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "forms.json")
        proc = subprocess.run([sys.executable, "-m", *module_args, "--out", out], env=env, capture_output=True,
                              text=True, timeout=timeout)
        if proc.returncode != 0 or not os.path.exists(out):
            raise RuntimeError(f"{what} worker exited with {proc.returncode}: {proc.stderr.strip()[-2000:]}")
        with open(out) as fh:
            return json.load(fh)


def _worker_args(n_images, batch_size, z_dim, fact, seed, mnist, threads) -> list[str]:
    args = ["--n-images", str(n_images), "--batch-size", str(batch_size), "--z-dim", str(z_dim),
            "--fact", repr(float(fact)), "--seed", str(seed), "--threads", str(threads)]
    return args + (["--mnist", str(mnist)] if mnist is not None else [])


def run_post_forms_subprocess(legacy: bool, n_images: int, batch_size: int, z_dim: int, fact: float, seed: int,
                              mnist: str | None, threads: int = 1, timeout: int = 600,
                              backend: str = "tensorflow") -> list[dict]:
    """Run :mod:`klvae.strategies.post_forms` in a fresh interpreter; returns its records.

    Args:
        legacy: True sets ``TF_USE_LEGACY_KERAS=1`` (tf-keras, Keras 2); False removes it.
        n_images, batch_size, z_dim, fact, seed, mnist, threads: passed to the worker.
        timeout: seconds before the worker is killed.
        backend: ``KERAS_BACKEND`` of the worker (Keras 3 only).

    Raises:
        RuntimeError: the worker failed as a whole (not a form failing: those are records).
    """
    env = {"TF_USE_LEGACY_KERAS": "1" if legacy else None, "KERAS_BACKEND": "tensorflow" if legacy else backend}
    rows = _run_worker(["klvae.strategies.post_forms", *_worker_args(n_images, batch_size, z_dim, fact, seed, mnist,
                                                                     threads)],
                       env, f"post-form ({'tf-keras' if legacy else 'Keras 3 ' + backend})", timeout)
    return [{**r, "backend": "tensorflow" if legacy else backend} for r in rows]


def run_project_forms_subprocess(backend: str, n_images: int, batch_size: int, z_dim: int, fact: float, seed: int,
                                 mnist: str | None, threads: int = 1, timeout: int = 600) -> list[dict]:
    """Try every registered strategy (this project's form) under ``KERAS_BACKEND=backend`` in a fresh interpreter.

    Raises:
        RuntimeError: the worker failed as a whole.
    """
    rows = _run_worker(["klvae.strategies.compat", *_worker_args(n_images, batch_size, z_dim, fact, seed, mnist,
                                                                 threads)],
                       {"KERAS_BACKEND": backend}, f"project-form (Keras 3 {backend})", timeout)
    return [{**r, "backend": backend} for r in rows]


def _not_tried(pairs, flavour: str, backend: str, why: str) -> list[dict]:
    """Rows ``runs = "n/a"`` with the reason, for (strategy, form, source) attempts not possible here."""
    return [{"strategy": st, "form": form, "source": src, "keras_flavour": flavour, "keras_version": "",
             "tensorflow": "", "backend": backend, "runs": "n/a", "stage": "", "exception": "",
             "message": why, "raised_at": "", "steps": 0, "final_loss": math.nan} for st, form, src in pairs]


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
        A record with the keys of :func:`klvae.strategies.post_forms.try_form` plus ``saves_keras``.
    """
    import keras

    from klvae.data.stream import ImageBatches
    from klvae.models.conv import build_conv_pair
    from klvae.strategies.post_forms import first_line, raise_site
    from klvae.strategies.registry import get_strategy

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
        hist = model.fit(ImageBatches(x_uint8, int(batch_size), shuffle=True, seed=int(seed),
                                      transform=lambda b: strat.fit_data(b, int(z_dim))),
                         epochs=1, verbose=0, callbacks=[cb])
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


def _images(mnist: str | None, n_images: int, seed: int) -> np.ndarray:
    """The first ``n_images`` MNIST training images (uint8), or seeded random binary images."""
    if mnist is not None:
        with np.load(mnist, allow_pickle=False) as d:
            return d["x_train"][: int(n_images)]
    return ((np.random.default_rng(seed).random((int(n_images), 28, 28)) > 0.8) * 255).astype(np.uint8)


def project_forms(n_images: int = 128, batch_size: int = 32, z_dim: int = 2, fact: float = E2_POST_FACT, seed: int = 0,
                  mnist: str | None = None, threads: int = 1) -> list[dict]:
    """Try every registered strategy's Keras 3 form on the backend of this process (one record each)."""
    from klvae import backend
    from klvae.seeding import set_global_seed

    set_global_seed(int(seed), threads)
    import keras

    from klvae.strategies.registry import available_strategies, get_strategy_class

    x = _images(mnist, n_images, seed)
    v = backend.versions()
    info = {"keras_flavour": KERAS3, "keras_version": keras.__version__, "tensorflow": v.get("tensorflow", "")}
    rows = []
    for name in available_strategies():
        cls = get_strategy_class(name)
        rec = try_project_form(name, x, int(batch_size), int(z_dim), float(fact), int(seed))
        rows.append({"strategy": name, "form": "project",
                     "source": f"{cls.__module__} ({cls.keras3_form or 'as the post'})", **info, **rec})
        keras.backend.clear_session()
    return rows


def compatibility_matrix(csv: str, table: str | None = None, mnist: str | None = None, n_images: int = 128,
                         batch_size: int = 32, z_dim: int = 2, fact: float = E2_POST_FACT, seed: int = 0,
                         threads: int = 1) -> list[dict]:
    """Try every strategy as the posts wrote it (Keras 2, Keras 3 per backend) and in this project's form per backend.

    Args:
        csv: output CSV, one row per attempt: ``strategy, post, form`` (``post``,
            a named variant of the post's code, or ``project``), ``keras_flavour``, ``backend``,
            ``keras_version``, ``tensorflow``, ``runs`` (yes/no/n/a), ``stage``,
            ``exception``, ``message`` (for n/a: why it could not be tried here),
            ``raised_at``, ``steps``, ``final_loss``, ``saves_keras`` (project form only),
            ``source`` (where the code comes from).
        table: optional output CSV, one row per strategy for the report (:func:`summary_table`).
        mnist: canonical MNIST ``.npz`` (None: seeded random binary images).
        n_images, batch_size: one epoch of ``n_images / batch_size`` steps per attempt.
        z_dim, fact, seed: settings.
        threads: CPU threads of every worker process.

    Returns:
        The rows of ``csv``.

    Raises:
        RuntimeError: a worker process failed as a whole.
    """
    from klvae.io import write_rows
    from klvae.strategies.post_forms import POST_FORMS
    from klvae.strategies.registry import available_strategies, get_strategy_class

    kw = dict(n_images=int(n_images), batch_size=int(batch_size), z_dim=int(z_dim), fact=float(fact),
              seed=int(seed), mnist=mnist, threads=int(threads))
    post_pairs = [(st, form, src) for st, form, _, src in POST_FORMS]
    project_pairs = [(n, "project", get_strategy_class(n).__module__) for n in available_strategies()]
    rows = []
    no_tf = missing_modules(("tensorflow",))
    if no_tf:
        rows += _not_tried(post_pairs, KERAS2, "tensorflow", "not applicable here: TensorFlow is not installed")
    else:
        rows += run_post_forms_subprocess(True, **kw)
    for b in BACKENDS:
        missing = missing_modules(BACKEND_MODULES[b])
        if missing:
            why = f"not tried: {', '.join(missing)} is not installed on this machine"
            rows += _not_tried(post_pairs, KERAS3, b, why) + _not_tried(project_pairs, KERAS3, b, why)
            continue
        if no_tf:
            rows += _not_tried(post_pairs, KERAS3, b, "not applicable here: the posts' code imports TensorFlow, "
                                                       "which is not installed")
        else:
            rows += run_post_forms_subprocess(False, backend=b, **kw)
        rows += run_project_forms_subprocess(b, **kw)

    order = {n: i for i, n in enumerate(available_strategies())}
    form_order = {"post": 0, "project": 9}
    for r in rows:
        r["post"] = get_strategy_class(r["strategy"]).post
    rows.sort(key=lambda r: (order.get(r["strategy"], 99), form_order.get(r["form"], 5), r["form"],
                             r["keras_flavour"] != KERAS2, BACKENDS.index(r["backend"])))
    cols = ["strategy", "post", "form", "keras_flavour", "backend", "keras_version", "tensorflow", "runs",
            "stage", "exception", "message", "raised_at", "steps", "final_loss", "saves_keras", "source"]
    rows = [{c: r.get(c, "") for c in cols} for r in rows]
    write_rows(csv, rows)
    if table is not None:
        write_rows(table, summary_table(rows))
    for r in rows:
        print(f"[compat] {r['strategy']:16s} {r['form']:18s} {r['keras_flavour']:20s} {r['backend']:10s} "
              f"runs={r['runs']:3s} {r['exception']} {r['message'][:90]!r}", flush=True)
    return rows


def _cell(r: dict | None) -> str:
    if r is None:
        return ""
    if r["runs"] == "yes":
        return f"runs ({r['steps']} steps, loss {float(r['final_loss']):.4f})"
    if r["runs"] == "n/a":
        return f"n/a: {r['message']}" if r["message"] else "n/a"
    msg = r["message"] if r["message"] else "(empty message)"
    return f"fails at {r['stage']}: {r['exception']}: {msg}"


def summary_table(rows: list[dict]) -> list[dict]:
    """One row per strategy from the long matrix.

    Columns: ``strategy``, ``post``, ``post_form_keras2``, ``post_form_keras3_<backend>``
    and ``project_form_<backend>`` for each of :data:`BACKENDS` (each cell: ``runs (...)``,
    ``fails at <stage>: <exception>: <message>`` or ``n/a: <why>``), ``variants`` (named
    variants of the posts' code under every flavour/backend).
    """
    out = []
    for name in dict.fromkeys(r["strategy"] for r in rows):
        mine = [r for r in rows if r["strategy"] == name]

        def pick(form, flav, backend=None, mine=mine):
            return next((r for r in mine if r["form"] == form and r["keras_flavour"] == flav
                         and (backend is None or r["backend"] == backend)), None)

        variants = sorted({r["form"] for r in mine} - {"post", "project"})
        row = {"strategy": name, "post": mine[0]["post"], "post_form_keras2": _cell(pick("post", KERAS2))}
        row.update({f"post_form_keras3_{b}": _cell(pick("post", KERAS3, b)) for b in BACKENDS})
        row.update({f"project_form_{b}": _cell(pick("project", KERAS3, b)) for b in BACKENDS})
        row["variants"] = "; ".join(
            f"{v}: Keras 2 {_cell(pick(v, KERAS2))} | "
            + " | ".join(f"Keras 3 {BACKEND_TITLES[b]} {_cell(pick(v, KERAS3, b))}" for b in BACKENDS)
            for v in variants)
        out.append(row)
    return out


def main(argv=None) -> int:
    """Worker: ``python -m klvae.strategies.compat --out F ...`` writes :func:`project_forms`' records as JSON."""
    from klvae.strategies.post_forms import worker_arguments

    a = worker_arguments("Try this project's KL strategies on the Keras backend of this process.", argv, 128)
    rows = project_forms(a.n_images, a.batch_size, a.z_dim, a.fact, a.seed, a.mnist, a.threads)
    tmp = a.out + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(rows, fh, indent=2, default=float)
    os.replace(tmp, a.out)
    return 0


__all__ = ["compatibility_matrix", "summary_table", "try_project_form", "project_forms", "run_post_forms_subprocess",
           "run_project_forms_subprocess", "missing_modules", "BACKENDS", "KERAS2", "KERAS3"]


if __name__ == "__main__":
    sys.exit(main())
