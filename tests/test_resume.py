"""Resume after a kill: a real E1 training rule is SIGKILLed mid-epoch, started again, and must
end with weights bitwise identical to an uninterrupted run -- and no half-written model may
ever look finished (klvae.training)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import QUICK, REPO, SNAKEFILE, run_snakemake, seed_raw_data
from klvae.io import weights_digest

RUN = QUICK / "e1/r0/c1"
TARGET = str(RUN / "metrics.json")


def _config(tmp: Path) -> Path:
    """Quick profile, one c, enough data that an epoch lasts a few seconds (a kill can land inside one)."""
    cfg = yaml.safe_load((REPO / "config" / "quick.yaml").read_text())
    cfg["e1"].update({"coefficients": [1], "epochs": 3, "n_train": 30000, "n_test": 1000})
    path = tmp / "resume.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _snakemake_cmd(workdir: Path, configfile: Path) -> list[str]:
    return [sys.executable, "-m", "snakemake", TARGET, "--snakefile", str(SNAKEFILE), "--directory",
            str(workdir), "--cores", "1", "--configfile", str(configfile)]


@pytest.mark.pipeline
def test_sigkill_mid_epoch_then_resume_is_bitwise_identical(tmp_path):
    configfile = _config(tmp_path)
    ref, killed = tmp_path / "uninterrupted", tmp_path / "killed"
    for w in (ref, killed):
        w.mkdir()
        seed_raw_data(w)

    # 1. the uninterrupted run
    run_snakemake(ref, TARGET, configfile=configfile)

    # 2. the same rule, killed (snakemake and its job, SIGKILL) once epoch 2 is under way
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = open(tmp_path / "killed.log", "w")
    proc = subprocess.Popen(_snakemake_cmd(killed, configfile), stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    state = killed / RUN / "model.keras.ckpt" / "state.json"
    deadline = time.time() + 600
    while not state.is_file():
        assert proc.poll() is None, ("training ended before a checkpoint was written: "
                                     f"{(tmp_path / 'killed.log').read_text()[-3000:]}")
        assert time.time() < deadline, "no checkpoint within 10 minutes"
        time.sleep(0.05)
    time.sleep(1.0)  # well inside epoch 2 (an epoch takes several seconds here)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    log.close()
    assert json.loads(state.read_text())["epoch"] == 1, "the kill did not land in epoch 2"

    # no half-written output that looks finished; the checkpoint of epoch 1 is there
    for name in ("model.keras", "history.csv", "metrics.json"):
        assert not (killed / RUN / name).exists(), f"{name} exists after the kill"
    assert (killed / RUN / "model.keras.ckpt" / "epoch-1.weights.h5").is_file()

    # 3. start again as Snakemake tells a user to after a kill: unlock the folder (the killed
    #    Snakemake left its lock), then the same command; it resumes after epoch 1
    run_snakemake(killed, TARGET, "--unlock", configfile=configfile)
    again = run_snakemake(killed, TARGET, configfile=configfile)
    out = again.stdout + again.stderr
    assert "resuming after epoch 1" in out, out[-3000:]
    assert "Epoch 1/3" not in out  # epoch 1 is not trained again

    # bitwise-identical weights (layers, optimizer state, sampling RNG state) and identical files
    assert weights_digest(killed / RUN / "model.keras") == weights_digest(ref / RUN / "model.keras")
    assert (killed / RUN / "history.csv").read_bytes() == (ref / RUN / "history.csv").read_bytes()
    assert (killed / RUN / "metrics.json").read_bytes() == (ref / RUN / "metrics.json").read_bytes()
    assert not (killed / RUN / "model.keras.ckpt").exists()  # removed once training finished


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

    def run(name, kill=None, what=kind):
        (tmp_path / name).mkdir(exist_ok=True)
        return subprocess.run([sys.executable, str(driver), what, str(tmp_path / name)], capture_output=True,
                              text=True, env={**env, **(kill or {})}, timeout=600)

    if kind == "e2":  # the shared initial weights, made by their own process as the pipeline does
        assert run(".", what="e2-init").returncode == 0
    ref = run("ref")
    assert ref.returncode == 0, ref.stderr[-3000:]
    killed = run("killed", kill=kill)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
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
        "vae = build_mlp_vae(kl_weight=1.0, z_dim=2, intermediate_dim=32, seed=0)\n"
        "vae.compile(optimizer=keras.optimizers.Adam(1e-3))\n"
        "b = ImageBatches(x, 128, shuffle=True, seed=1, epochs=2)\n"
        "data = backend.fit_input(b) if sys.argv[1] == 'tf' else b\n"
        "vae.fit(data, epochs=2, steps_per_epoch=b.steps_per_epoch, verbose=0, shuffle=False)\n"
        "import hashlib\n"
        "print(hashlib.sha256(np.concatenate([np.ravel(v) for v in vae.get_weights()]).tobytes()).hexdigest())\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    outs = [subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, env=env,
                           timeout=300) for mode in ("tf", "pydataset")]
    assert all(o.returncode == 0 for o in outs), [o.stderr[-2000:] for o in outs]
    assert outs[0].stdout.strip() == outs[1].stdout.strip()


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
