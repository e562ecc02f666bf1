"""Everything that depends on the Keras 3 backend, in one place.

klvae's models, losses, sampling and training loop use ``keras.ops`` / ``keras.random``
only, so they run unchanged on every Keras 3 backend. The backend is chosen the Keras way,
by the environment variable ``KERAS_BACKEND`` (``tensorflow``, the default and what CI and
``make report`` use; ``jax``, the GPU path; ``torch``) before Keras is first imported.
What cannot be backend-neutral lives here:

* :func:`configure` -- determinism and CPU threads: TensorFlow's op determinism, thread
  pools and Grappler setting; XLA's deterministic GPU ops for JAX.
* :func:`loss_and_gradients` -- one training loss and its gradients with the backend's
  own autodiff (``tf.GradientTape``, ``jax.value_and_grad`` over the stateless
  ``compute_loss_and_updates``, ``torch`` autograd); the E2 equivalence check.
* :func:`handwritten_train_step` -- post VIII's hand-written ``train_step``: a per-backend
  idiom, exactly as the Keras guides "Customizing what happens in ``fit()``" show it for
  TensorFlow and JAX.
* :func:`accelerators`, :func:`versions`, :func:`describe` -- what ran the numbers;
  :func:`write_facts` (rule ``report_backend``) writes them to a JSON file that the report's
  run record reads (:func:`klvae.record.run_record`), so the report imports no Keras.
"""

from __future__ import annotations

import os
from importlib import metadata

#: Backends this project is written for (Keras 3's names).
BACKENDS = ("tensorflow", "jax", "torch")
#: XLA flag that makes JAX's GPU reductions and scatters deterministic (run to run).
XLA_DETERMINISTIC = "--xla_gpu_deterministic_ops=true"


def name() -> str:
    """The active Keras backend: ``"tensorflow"``, ``"jax"`` or ``"torch"``."""
    import keras

    return keras.backend.backend()


def tensorflow_determinism(threads: int | None = None) -> None:
    """TensorFlow's settings for bitwise-repeatable CPU runs, for every TensorFlow process of klvae.

    Used by the trainings (through :func:`configure`) and by the workers of the E2
    compatibility matrix (:mod:`klvae.strategies.post_forms`, which run the posts' code under
    ``tf.keras`` -- Keras 3 or legacy ``tf-keras`` -- and so must not import Keras 3 here):

    * intra-op threads = ``threads``, inter-op threads 1 (``None`` leaves TensorFlow's
      defaults; a process whose thread pools already started keeps what it has);
    * op determinism on (``tf.config.experimental.enable_op_determinism``);
    * Grappler's arithmetic optimizer off. With it, whether the optimizer rewrites an
      expression such as ``reconstruction_loss + kl_loss`` differs between compilations, so
      a logged loss changes in its last bit between runs: post VIII's own form
      (:func:`klvae.strategies.post_forms.run_gradient_tape`) logged 0.6917371153831482 in
      one clean run and 0.6917370557785034 (one float32 ulp less, the value of the graph as
      written) in the next. With the optimizer off every compilation gives the second value.

    Only ``tensorflow`` is imported. Seeding is the caller's (``tf.keras.utils.set_random_seed``).
    """
    import tensorflow as tf

    if threads is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # already initialised in this process; keep what it has
            pass
    tf.config.experimental.enable_op_determinism()
    tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})


def configure(seed: int, threads: int | None = None) -> None:
    """Make training on the active backend repeatable and pin its CPU threads.

    * ``tensorflow``: :func:`tensorflow_determinism` (intra-op threads = ``threads``,
      inter-op 1, op determinism on, Grappler's arithmetic optimizer off).
    * ``jax``: adds ``--xla_gpu_deterministic_ops=true`` to ``XLA_FLAGS`` (deterministic GPU
      reductions; must happen before JAX initialises its backends, so call this first in a
      process), and with ``threads == 1`` asks XLA's CPU backend for one thread. XLA on CPU
      is deterministic for a fixed program.
    * ``torch``: ``torch.use_deterministic_algorithms(True)`` and ``torch.set_num_threads``.

    Args:
        seed: the config's seed (int >= 0); seeds Python, NumPy and the backend's global RNG
            (``keras.utils.set_random_seed``).
        threads: CPU threads for the backend's op pool (``None``: its default).
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        keras.utils.set_random_seed(int(seed))
        tensorflow_determinism(threads)
    elif backend == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        add = [XLA_DETERMINISTIC] if XLA_DETERMINISTIC not in flags else []
        if threads == 1 and "xla_cpu_multi_thread_eigen" not in flags:
            add.append("--xla_cpu_multi_thread_eigen=false")
        if add:
            os.environ["XLA_FLAGS"] = " ".join([flags, *add]).strip()
        keras.utils.set_random_seed(int(seed))
    elif backend == "torch":
        import torch

        if threads is not None:
            torch.set_num_threads(int(threads))
        torch.use_deterministic_algorithms(True)
        keras.utils.set_random_seed(int(seed))
    else:  # pragma: no cover - Keras knows no other backends today
        raise ValueError(f"unsupported Keras backend {backend!r}; set KERAS_BACKEND to one of {BACKENDS}")


def _by_identity(values, variables, wanted):
    """``values[i]`` belongs to ``variables[i]``; return them in the order of ``wanted`` (None if absent)."""
    index = {id(v): i for i, v in enumerate(variables)}
    return [values[index[id(w)]] if id(w) in index else None for w in wanted]


def loss_and_gradients(model, x, y, sample_weight, variables) -> tuple:
    """The training loss of one batch, as ``fit`` computes it, and its gradients.

    Runs the model's own training computation -- the forward pass with ``training=True``
    and ``model.compute_loss`` (compiled losses, ``add_loss`` terms of layers and any
    ``compute_loss`` override) -- under the active backend's autodiff.

    Args:
        model: a built and compiled ``keras.Model``.
        x, y, sample_weight: one batch as ``fit`` receives it (NumPy arrays or nested
            structures of them; ``y``/``sample_weight`` may be None).
        variables: the ``keras.Variable``s to differentiate by (e.g. the encoder and
            decoder weights); they must be among ``model.trainable_variables``.

    Returns:
        ``(loss, grads)``: the scalar loss (float32 backend tensor) and one gradient per
        entry of ``variables`` (None where the loss does not depend on it).
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        return loss, tape.gradient(loss, list(variables))
    if backend == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        metrics_vars = [v.value for v in model.metrics_variables]
        if not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        optimizer_vars = [v.value for v in model.optimizer.variables]

        def fn(tv):
            _, (unscaled, *_) = model.compute_loss_and_updates(tv, non_trainable, metrics_vars, x, y, sample_weight,
                                                               training=True, optimizer_variables=optimizer_vars)
            return unscaled

        loss, grads = jax.value_and_grad(fn)(trainable)
        return loss, _by_identity(grads, model.trainable_variables, variables)
    if backend == "torch":
        model.zero_grad()
        y_pred = model(x, training=True)
        loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        loss.backward()
        return loss.detach(), [None if v.value.grad is None else v.value.grad.detach().clone() for v in variables]
    raise ValueError(f"unsupported Keras backend {backend!r}")  # pragma: no cover


def _images(data):
    return data[0] if isinstance(data, (tuple, list)) else data


def handwritten_train_step(model, *args):
    """Post VIII's ``train_step``, written by hand for the active backend.

    ``model`` is a :class:`klvae.models.vae.VAE` (``model(x, training=True)`` returns
    ``(x_hat, z_mean, z_log_var)``, :meth:`~klvae.models.vae.VAE.loss_from_outputs` turns
    them into ``(total, reconstruction, kl)`` and ``model.metrics`` are its three ``Mean``
    trackers in that order). Gradients of the total are taken and applied by this code, not
    by Keras' own ``train_step``:

    * ``tensorflow``: ``train_step(data)`` under ``tf.GradientTape``; ``optimizer.apply_gradients``.
    * ``jax``: the stateless ``train_step(state, data)`` of the Keras JAX guide:
      ``jax.value_and_grad`` of ``stateless_call`` + the loss, ``optimizer.stateless_apply``,
      ``metric.stateless_update_state``; returns ``(logs, new_state)``.

    Every tracker is updated with the batch's mean weighted by the batch size, so the
    epoch means are means over images.

    Raises:
        NotImplementedError: on the ``torch`` backend (not implemented here: PyTorch is not
            installed on this project's machines, so it could not be tested).
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        (data,) = args
        x = _images(data)
        with tf.GradientTape() as tape:
            total, rec, kl = model.loss_from_outputs(x, model(x, training=True))
        grads = tape.gradient(total, model.trainable_weights)
        model.optimizer.apply_gradients(zip(grads, model.trainable_weights, strict=True))
        return model.update_trackers(x, total, rec, kl)
    if backend == "jax":
        import jax

        state, data = args
        trainable, non_trainable, optimizer_vars, metrics_vars = state
        x = _images(data)

        def fn(tv, ntv):
            outputs, ntv = model.stateless_call(tv, ntv, x, training=True)
            total, rec, kl = model.loss_from_outputs(x, outputs)
            return total, (rec, kl, ntv)

        (total, (rec, kl, non_trainable)), grads = jax.value_and_grad(fn, has_aux=True)(trainable, non_trainable)
        trainable, optimizer_vars = model.optimizer.stateless_apply(optimizer_vars, grads, trainable)
        n = keras.ops.cast(keras.ops.shape(x)[0], "float32")
        logs, new_metrics_vars, start = {}, [], 0
        for metric, value in zip(model.metrics, (total, rec, kl), strict=True):
            count = len(metric.variables)
            mv = metric.stateless_update_state(metrics_vars[start:start + count], value, sample_weight=n)
            logs[metric.name] = metric.stateless_result(mv)
            new_metrics_vars += list(mv)
            start += count
        return logs, (trainable, non_trainable, optimizer_vars, new_metrics_vars)
    raise NotImplementedError(f"post VIII's hand-written train_step is written for the tensorflow and jax backends, "
                              f"not {backend!r}; use KERAS_BACKEND=tensorflow or jax")


def fit_input(batches):
    """What to pass to ``fit`` for :class:`klvae.data.stream.ImageBatches`: the same batches,
    fed the cheapest way the active backend has.

    On TensorFlow, a ``tf.data`` pipeline replaces Keras' ``PyDataset`` adapter (a thread pool
    filling a queue through ``Dataset.from_generator``), which slowed training steps
    measurably on the 2-core CPU (by hand: E1's MLP about 2x, E2's conv VAE about 1.5x):

    * batches of an in-RAM array without a ``transform`` (E1): fully in-graph -- the uint8
      array as a constant, the index arrays of
      :meth:`~klvae.data.stream.ImageBatches.bounds`, ``gather``, cast and the same float32
      multiply;
    * otherwise (E2's strategies' ``fit_data`` transforms, E3's memmaps): batch ``i`` from
      ``batches[i]`` through one ``tf.numpy_function`` per step.

    Either way bitwise the batches ``batches[i]`` holds, in order. JAX and PyTorch get
    ``batches`` itself.
    """
    if name() != "tensorflow":
        return batches
    import numpy as np
    import tensorflow as tf

    if batches.transform is None and batches.in_memory is not None:
        order, starts, ends = batches.bounds()
        images = tf.constant(np.ascontiguousarray(batches.in_memory))
        order_t = tf.constant(order)
        scale = tf.constant(np.float32(batches.scale))

        def batch(start, end):
            return tf.cast(tf.gather(images, order_t[start:end]), tf.float32) * scale

        return tf.data.Dataset.from_tensor_slices((starts, ends)).map(batch).prefetch(2)

    probe = tf.nest.map_structure(np.asarray, batches[0])
    flat_probe = tf.nest.flatten(probe)

    def load(i):
        return [np.asarray(a) for a in tf.nest.flatten(batches[int(i)])]

    def batch(i):
        flat = tf.numpy_function(load, [i], [tf.as_dtype(a.dtype) for a in flat_probe], stateful=False)
        for t, a in zip(flat, flat_probe, strict=True):
            t.set_shape((None, *a.shape[1:]))
        return tf.nest.pack_sequence_as(probe, flat)

    return tf.data.Dataset.range(len(batches)).map(batch).prefetch(2)


def thread_settings() -> dict[str, int | str]:
    """``{"intra_op_threads", "inter_op_threads"}`` of the backend's CPU pools (0: the backend's default).

    TensorFlow reports its two pools; JAX/XLA has no such setting (``XLA_FLAGS`` is given
    instead); PyTorch reports ``torch.get_num_threads()``.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return {"intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
                "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads()}
    if backend == "torch":
        import torch

        return {"intra_op_threads": torch.get_num_threads(), "inter_op_threads": torch.get_num_interop_threads()}
    return {"intra_op_threads": 0, "inter_op_threads": 0, "xla_flags": os.environ.get("XLA_FLAGS", "")}


def accelerators() -> str:
    """The GPUs/TPUs the active backend sees (``"none"`` on a CPU-only machine), as one line."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            found = [d.name for d in tf.config.list_physical_devices("GPU")]
        elif backend == "jax":
            import jax

            found = [f"{d.platform}:{getattr(d, 'device_kind', '')}" for d in jax.devices() if d.platform != "cpu"]
        else:
            import torch

            found = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception as err:  # noqa: BLE001 -- report what happened rather than fail
        return f"unknown ({type(err).__name__})"
    return ", ".join(found) if found else "none"


def versions() -> dict[str, str]:
    """``{"backend", "keras", <the backend's packages>}``: versions of what ran the numbers."""
    import keras

    backend = keras.backend.backend()
    out = {"backend": backend, "keras": keras.__version__}
    packages = {"tensorflow": ["tensorflow"], "jax": ["jax", "jaxlib"], "torch": ["torch"]}.get(backend, [])
    for pkg in packages:
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def describe() -> dict:
    """What ran the numbers: the Keras backend and its versions (:func:`versions`), NumPy and
    Python versions, CPU model and logical CPU count (strings/ints). Recorded in E2's metrics
    (``version_*`` keys) and benchmark tables."""
    import platform

    import numpy as np

    from klvae.machine import cpu_model

    return {**versions(), "numpy": np.__version__, "python": platform.python_version(),
            "cpu": cpu_model(), "cpu_count": os.cpu_count()}


def backend_facts() -> dict:
    """The backend facts of this process that the report's provenance quotes.

    Returns:
        ``{"keras_backend": name(), "KERAS_BACKEND": the variable as set ("" when unset),
        "accelerators": accelerators() (GPUs/TPUs the backend sees, "none", or "unknown (<error>)"),
        "versions": versions()}`` (strings; JSON-serialisable).
    """
    return {"keras_backend": name(), "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", ""),
            "accelerators": accelerators(), "versions": versions()}


def write_facts(facts: str) -> dict:
    """Rule ``report_backend``: :func:`backend_facts` of the run's environment -> ``facts`` (JSON).

    Run at the end of a run with the same ``KERAS_BACKEND`` as the trainings; rule
    ``report_methods`` reads the file into the run record (:func:`klvae.record.run_record`),
    so the report's own code imports no Keras. Returns what it wrote.
    """
    from klvae.io import write_json

    found = backend_facts()
    write_json(facts, found)
    return found


__all__ = ["BACKENDS", "name", "configure", "loss_and_gradients", "handwritten_train_step", "fit_input",
           "thread_settings", "accelerators", "versions", "describe", "backend_facts", "write_facts"]
