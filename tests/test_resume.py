"""Resume after a kill (klvae.training): a training process killed mid-epoch and started again
must end with weights bitwise identical to an uninterrupted one, and no half-written model may
ever look finished. The whole pipeline, killed inside an E1 training and resumed through
Snakemake, is checked by ``tests/test_determinism.py`` on its second quick-profile run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from klvae.io import weights_digest


def test_checkpoint_from_other_settings_is_not_resumed(tmp_path):
    """A checkpoint left by a run with other settings (here: another learning rate) is discarded."""
    from klvae import training

    keep = training.fingerprint({"lr": 1e-3}, {})
    other = training.fingerprint({"lr": 1e-4}, {})
    assert keep != other
    d = tmp_path / "model.keras.ckpt"
    d.mkdir()
    (d / "epoch-2.weights.h5").write_bytes(b"x")
    (d / "state.json").write_text(json.dumps({"epoch": 2, "weights": "epoch-2.weights.h5", "fingerprint": other,
                                              "rows": [{"loss": 1.0}, {"loss": 0.5}]}))
    messages = []
    same = training.EpochCheckpoint(d, other, log=messages.append)
    assert same.start_epoch == 2 and same.rows == [{"loss": 1.0}, {"loss": 0.5}]
    fresh = training.EpochCheckpoint(d, keep, log=messages.append)
    assert fresh.start_epoch == 0 and fresh.rows == [] and not d.exists()
    assert "other settings" in messages[-1]


# A training process that SIGKILLs itself in the middle of epoch 2 (after batch 2), so the kill
# lands at a known place; then the same call in a fresh process must resume and end bitwise
# where an uninterrupted process ends. Covers E2 (a KL strategy's own model class and
# ``fit_data``) and E3 (the face VAE reading a memory-mapped uint8 array).
_DRIVER = r'''
import os, signal, sys
import numpy as np
from klvae import training

kill_at = int(os.environ.get("KILL_IN_EPOCH", "0"))
kill_after = int(os.environ.get("KILL_AFTER_EPOCH", "0"))  # after its checkpoint is written
if kill_at or kill_after:
    import keras

    class Kill(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if self.epoch + 1 == kill_at and batch == 1:
                os.kill(os.getpid(), signal.SIGKILL)

        def on_epoch_end(self, epoch, logs=None):
            if epoch + 1 == kill_after:
                os.kill(os.getpid(), signal.SIGKILL)

    fit = training.fit_resumable
    training.fit_resumable = lambda *a, **k: fit(*a, **{**k, "callbacks": [*(k.get("callbacks") or []), Kill()]})

kind, d = sys.argv[1], sys.argv[2]
if kind == "e2-init":
    from klvae.experiments import e2
    e2.init_weights(f"{d}/init.npz", z_dim=2, seed=3)
elif kind == "e2":
    from klvae.experiments import e2
    e2.train(f"{d}/../mnist.npz", f"{d}/../init.npz", f"{d}/model.keras", f"{d}/history.csv", f"{d}/metrics.json",
             strategy="model_add_loss", z_dim=2, epochs=3, batch_size=32, n_train=160, n_test=32, seed=3, threads=1,
             verbose=0)
else:
    from klvae.experiments import e3
    e3.train(f"{d}/../faces.npy", f"{d}/model.keras", f"{d}/history.csv", kind="vae", epochs=3, batch_size=8,
             n_train=40, seed=3, threads=1, verbose=0)
'''


@pytest.mark.parametrize("kind,kill", [("e2", {"KILL_IN_EPOCH": "2"}), ("e3", {"KILL_IN_EPOCH": "2"}),
                                       ("e2", {"KILL_AFTER_EPOCH": "3"})],
                         ids=["e2-mid-epoch-2", "e3-mid-epoch-2", "e2-after-the-last-checkpoint"])
def test_killed_strategy_and_face_training_resume_bitwise(tmp_path, kind, kill):
    import numpy as np

    rng = np.random.default_rng(0)
    if kind == "e2":
        def imgs(n):
            return ((rng.random((n, 28, 28)) < 0.2) * 255).astype(np.uint8)

        np.savez(tmp_path / "mnist.npz", x_train=imgs(160), y_train=np.zeros(160, np.uint8), x_test=imgs(32),
                 y_test=np.zeros(32, np.uint8))
    else:
        np.save(tmp_path / "faces.npy", rng.integers(0, 256, (40, 96, 96, 3), dtype=np.uint8))
    driver = tmp_path / "driver.py"
    driver.write_text(_DRIVER)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

    def start(name, kill=None, what=kind):
        (tmp_path / name).mkdir(exist_ok=True)
        return subprocess.Popen([sys.executable, str(driver), what, str(tmp_path / name)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env={**env, **(kill or {})})

    def run(name, kill=None, what=kind):
        proc = start(name, kill, what)
        out, err = proc.communicate(timeout=600)
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    if kind == "e2":  # the shared initial weights, made by their own process as the pipeline does
        assert run(".", what="e2-init").returncode == 0
    # the uninterrupted and the killed process are independent (each single-threaded): side by side
    ref_proc, killed_proc = start("ref"), start("killed", kill=kill)
    ref_err, killed_err = ref_proc.communicate(timeout=600)[1], killed_proc.communicate(timeout=600)[1]
    assert ref_proc.returncode == 0, ref_err[-3000:]
    assert killed_proc.returncode == -signal.SIGKILL, killed_err[-3000:]
    ckpt = tmp_path / "killed" / "model.keras.ckpt"
    done = int(kill.get("KILL_AFTER_EPOCH", 0)) or int(kill["KILL_IN_EPOCH"]) - 1
    assert json.loads((ckpt / "state.json").read_text())["epoch"] == done
    assert not (tmp_path / "killed" / "model.keras").exists()
    resumed = run("killed")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming after epoch {done}" in resumed.stdout
    assert weights_digest(tmp_path / "killed" / "model.keras") == weights_digest(tmp_path / "ref" / "model.keras")
    assert (tmp_path / "killed" / "history.csv").read_bytes() == (tmp_path / "ref" / "history.csv").read_bytes()
    assert not ckpt.exists()


def test_tf_data_input_is_bitwise_the_pydataset_batches():
    """backend.fit_input turns ImageBatches into tf.data on TensorFlow (in-graph for E1's in-RAM
    arrays, one numpy_function per batch with a transform): the same batches element by element,
    and (run in a fresh process, once each way) bitwise the same weights after two epochs whose
    last batches are short."""
    import numpy as np

    from klvae.seeding import set_global_seed

    set_global_seed(0, threads=1)
    from klvae import backend
    from klvae.data.stream import ImageBatches

    x = np.random.default_rng(3).integers(0, 256, (70, 28, 28), dtype=np.uint8)
    batches = ImageBatches(x, 16, shuffle=True, seed=4, epochs=3, start_epoch=1)
    fed = backend.fit_input(batches)
    if backend.name() != "tensorflow":
        assert fed is batches
        return
    got = [b.numpy() for b in fed]
    assert len(got) == len(batches) == 10 and got[4].shape == (6, 28, 28)
    for i, b in enumerate(got):
        np.testing.assert_array_equal(b, batches[i])  # bitwise, including the float32 scaling
    # with a transform (E2's fit_data: nested tuples and dicts) the same structures, bitwise
    def transform(b):
        return b, {"x": b, "zeros": np.zeros((len(b), 3), np.float32)}

    shaped = ImageBatches(x, 16, shuffle=True, seed=4, epochs=2, transform=transform)
    got = list(backend.fit_input(shaped))
    assert len(got) == len(shaped) == 10
    for i, (a, d) in enumerate(got):
        want_a, want_d = shaped[i]
        np.testing.assert_array_equal(a.numpy(), want_a)
        assert set(d) == {"x", "zeros"} and d["zeros"].shape == (len(want_a), 3)
        np.testing.assert_array_equal(d["x"].numpy(), want_d["x"])

    script = (
        "import sys, numpy as np\n"
        "from klvae.seeding import set_global_seed\n"
        "set_global_seed(0, threads=1)\n"
        "import keras\n"
        "from klvae import backend\n"
        "from klvae.data.stream import ImageBatches\n"
        "from klvae.models.mlp import build_mlp_vae\n"
        "x = np.random.default_rng(3).integers(0, 256, (300, 28, 28), dtype=np.uint8)\n"
        "vae = build_mlp_vae(c=1.0, z_dim=2, intermediate_dim=32, seed=0)\n"
        "vae.compile(optimizer=keras.optimizers.Adam(1e-3))\n"
        "b = ImageBatches(x, 128, shuffle=True, seed=1, epochs=2)\n"
        "data = backend.fit_input(b) if sys.argv[1] == 'tf' else b\n"
        "vae.fit(data, epochs=2, steps_per_epoch=b.steps_per_epoch, verbose=0, shuffle=False)\n"
        "import hashlib\n"
        "print(hashlib.sha256(np.concatenate([np.ravel(v) for v in vae.get_weights()]).tobytes()).hexdigest())\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    procs = [subprocess.Popen([sys.executable, "-c", script, mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for mode in ("tf", "pydataset")]  # side by side
    outs = [(p.communicate(timeout=300), p.returncode) for p in procs]
    assert all(rc == 0 for _, rc in outs), [err[-2000:] for (_, err), _ in outs]
    assert outs[0][0][0].strip() == outs[1][0][0].strip()


def test_fit_resumable_callbacks_keep_keras_async_batch_dispatch(tmp_path):
    """Keras 3 runs batch callbacks asynchronously (on JAX, PyTorch) only when every callback given to
    ``fit`` leaves ``on_train_batch_end`` at Keras' default or is ``async_safe``; one that does not makes
    every training step wait for the previous one (the H100 run's slow steps)."""
    import numpy as np
    from keras.src.utils.python_utils import is_default

    from klvae import training
    from klvae.callbacks import TerminateOnNaNError

    seen = {}

    class FitRecorder:
        def fit(self, *args, callbacks, **kwargs):
            seen["callbacks"] = callbacks

    with pytest.raises(RuntimeError, match="expected 1 epochs of logs, have 0"):  # the recorder trains nothing
        training.fit_resumable(FitRecorder(), np.zeros((8, 28, 28), np.uint8), epochs=1, batch_size=4, seed=0,
                               checkpoint=tmp_path / "ckpt", fingerprint="f", nan_hint="lower x")
    kinds = [type(cb) for cb in seen["callbacks"]]
    assert kinds == [TerminateOnNaNError, training.EpochCheckpoint]
    blocking = [type(cb).__name__ for cb in seen["callbacks"]
                if not getattr(cb, "async_safe", False) and not is_default(cb.on_train_batch_end)]
    assert blocking == []


def test_nan_guard_fails_at_the_end_of_the_epoch_with_the_hint():
    import math

    from klvae.callbacks import TerminateOnNaNError

    guard = TerminateOnNaNError("lower e1.learning_rate")
    guard.on_epoch_end(0, {"loss": 1.5})  # finite: nothing happens
    for bad in (math.nan, math.inf):
        with pytest.raises(FloatingPointError) as err:
            guard.on_epoch_end(2, {"loss": bad})
        assert str(err.value) == (f"non-finite training loss {bad} in epoch 3: training diverged and no model was "
                                  "written; lower e1.learning_rate, then rerun")
