"""E2: the five KL strategies (posts IV-VIII), their equivalence, the registry and the Keras 3 break.

Everything runs on tiny synthetic MNIST-shaped data (a few dozen images, one or two steps)
so that the file takes well under two minutes on a 2-core CPU.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from klvae.seeding import set_global_seed

set_global_seed(0, threads=1)

import keras  # noqa: E402

from klvae.experiments import e2  # noqa: E402
from klvae.models.conv import build_conv_pair, copy_pair_weights, load_pair_weights  # noqa: E402
from klvae.models.vae import FixedNoiseSampling  # noqa: E402
from klvae.strategies import post_forms, registry  # noqa: E402
from klvae.strategies.base import FACT, KLStrategy  # noqa: E402

FIVE = ["end_layer", "encoder_layer", "tensor_transfer", "model_add_loss", "gradient_tape"]


def _images(n: int, seed: int = 0) -> np.ndarray:
    """uint8 (n, 28, 28) blobs: bright discs at random places (digit-like sparsity)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    out = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):
        cy, cx, r = rng.uniform(8, 20), rng.uniform(8, 20), rng.uniform(3, 7)
        out[i] = (255 * ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r)).astype(np.uint8)
    return out


@pytest.fixture(scope="module")
def tiny_mnist(tmp_path_factory) -> str:
    """A canonical-format ``mnist.npz`` with 64 training and 32 test images."""
    path = tmp_path_factory.mktemp("mnist") / "mnist.npz"
    np.savez(path, x_train=_images(64, 1), y_train=np.arange(64, dtype=np.uint8) % 10,
             x_test=_images(32, 2), y_test=np.arange(32, dtype=np.uint8) % 10)
    return str(path)


# --- registry -----------------------------------------------------------------------------------
def test_registry_has_the_five_strategies_in_seed_order():
    assert registry.available_strategies() == FIVE
    assert registry.available_strategies(include_baselines=True) == FIVE + ["no_kl"]
    posts = [registry.get_strategy(n).post for n in FIVE]
    assert posts == ["IV", "V", "VI", "VII", "VIII"]
    assert all(isinstance(registry.get_strategy(n), KLStrategy) for n in FIVE)


def test_registry_refuses_unknown_name_and_lists_known_ones():
    with pytest.raises(KeyError) as info:
        registry.get_strategy("solution_type_2")
    msg = str(info.value)
    assert "unknown KL strategy 'solution_type_2'" in msg
    for name in FIVE + ["no_kl"]:
        assert name in msg


def test_registry_refuses_a_second_class_under_a_taken_name():
    class Impostor(KLStrategy):
        name = "gradient_tape"

        def build(self, encoder, decoder, fact=FACT, seed=0, sampling=None):
            raise AssertionError

        def compile_kwargs(self, fact=FACT):
            return {}

    with pytest.raises(ValueError, match="already registered"):
        registry.register(Impostor)
    assert type(registry.get_strategy("gradient_tape")).__module__ == "klvae.strategies.gradient_tape"


# --- each strategy trains -----------------------------------------------------------------------
@pytest.mark.parametrize("name", FIVE + ["no_kl"])
def test_strategy_builds_and_takes_training_steps(name):
    from klvae.data.stream import ImageBatches

    keras.utils.set_random_seed(0)
    strat = registry.get_strategy(name)
    enc, dec = build_conv_pair(2)
    before = [keras.ops.convert_to_numpy(v) for v in enc.trainable_weights + dec.trainable_weights]
    model = strat.build(enc, dec, fact=FACT, seed=0)
    strat.compile(model, learning_rate=1e-3, fact=FACT)
    hist = model.fit(ImageBatches(_images(32), 16, shuffle=True, seed=0, transform=lambda b: strat.fit_data(b, 2)),
                     epochs=1, verbose=0)
    m = strat.read_metrics({k: v[-1] for k, v in hist.history.items()}, FACT)
    assert math.isfinite(m["loss"]) and 0.0 < m["loss"] < 1.0  # mean BCE of [0,1] images starts near log 2
    assert math.isfinite(m["reconstruction_loss"])
    after = [keras.ops.convert_to_numpy(v) for v in enc.trainable_weights + dec.trainable_weights]
    changed = [not np.array_equal(a, b) for a, b in zip(before, after, strict=True)]
    if name == "no_kl":
        with pytest.raises(NotImplementedError):
            strat.networks(model)
        assert math.isnan(m["kl_loss"])
        assert sum(changed) == len(changed) - 2  # the z_log_var head is not part of the plain AE
    else:
        # the strategy reports its terms, and they add up to the total it trains on
        assert math.isfinite(m["kl_loss"]) and m["kl_loss"] >= 0.0
        assert m["loss"] == pytest.approx(m["reconstruction_loss"] + FACT * m["kl_loss"], rel=1e-5)
        assert all(changed)  # every encoder/decoder weight moved (the KL reaches z_log_var)
        found = strat.networks(model)
        assert found[0] is enc and found[1] is dec


# --- equivalence --------------------------------------------------------------------------------
def test_all_strategies_give_the_same_loss_and_gradients(tiny_mnist, tmp_path):
    """Same weights, batch and eps -> same training loss and gradients as gradient_tape.

    Tolerance rtol 1e-4 / atol 1e-6 (float32, eps 1.2e-7): the strategies sum the same
    float32 terms in different orders, which may move a mean over 16 x 784 pixels by a
    few ULPs (relative ~1e-7 .. 1e-6); the largest gradient entries are ~0.4, so atol 1e-6
    is ~3e-6 relative to them. A real difference in the objective is orders of magnitude
    larger (see the next test).
    """
    rows = e2.equivalence(csv=str(tmp_path / "eq.csv"), mnist=tiny_mnist, z_dim=[2, 12], seed=3, batch_size=16)
    frame = pd.read_csv(tmp_path / "eq.csv")
    assert len(rows) == len(frame) == 10
    assert sorted(frame["strategy"].unique()) == sorted(FIVE)
    assert frame["grads_allclose"].all() and frame["loss_close"].all()
    assert (frame["max_abs_grad_diff"] <= 1e-6).all()
    assert (frame["rel_loss_diff"] <= 1e-6).all()
    assert (frame["max_abs_grad"] > 1e-3).all()  # the gradients compared are not trivially zero
    assert (frame["fact_kl"] > 1e-4).all()  # and the KL term is far above the loss tolerance
    assert frame["n_params"].tolist() == [229_125] * 5 + [417_305] * 5


def test_equivalence_check_detects_a_different_objective():
    """The comparison has teeth: twice the KL weight in one strategy is far outside tolerance."""
    x = _images(16).astype(np.float32) / 255.0
    eps = np.random.default_rng(0).standard_normal((16, 2)).astype(np.float32)
    keras.utils.set_random_seed(0)
    ref = build_conv_pair(2)
    e2.spread_latent(ref[0], 1.0, 0)  # as equivalence() does: a KL term of order 1
    results = {}
    for name, fact in (("gradient_tape", FACT), ("encoder_layer", 2 * FACT)):
        strat = registry.get_strategy(name)
        enc, dec = build_conv_pair(2)
        copy_pair_weights(ref, (enc, dec))
        model = strat.build(enc, dec, fact=fact, sampling=FixedNoiseSampling(eps))
        strat.compile(model, fact=fact)
        results[name] = strat.loss_and_gradients(model, x, enc.trainable_weights + dec.trainable_weights, 2)
    (l0, g0), (l1, g1) = results["gradient_tape"], results["encoder_layer"]
    logvar_kernel = 8  # enc_conv_0..2 (6), z_mean (2), then z_log_var/kernel: only the KL reaches it
    assert abs(float(l1) - float(l0)) > 1e-6 + 1e-4 * abs(float(l0))  # outside the loss tolerance
    assert not np.allclose(np.asarray(g1[logvar_kernel]), np.asarray(g0[logvar_kernel]), rtol=1e-4, atol=1e-6)


def test_fixed_noise_sampling_is_the_reparameterization_with_given_eps():
    rng = np.random.default_rng(1)
    mu, lv, eps = (rng.standard_normal((4, 3)).astype(np.float32) for _ in range(3))
    z = np.asarray(FixedNoiseSampling(eps)([mu, lv]))
    # float32 TF exp vs NumPy: a few ULPs, hence atol for entries near 0 (mu and the noise term cancel)
    np.testing.assert_allclose(z, mu + np.exp(0.5 * lv) * eps, rtol=1e-6, atol=1e-6)


# --- Keras 3 breaks the post's model.add_loss ---------------------------------------------------
def test_model_add_loss_seed_form_fails_under_keras3():
    """Post VII as written cannot be built with Keras 3 (tf.keras is Keras 3 in TF 2.21)."""
    assert post_forms.keras_flavour()["keras_flavour"] == "Keras 3"
    x = (_images(32).astype(np.float32) / 255.0)[..., None]
    # As written: tf ops on the symbolic mu/log_var fail before model.add_loss is reached ...
    with pytest.raises(ValueError, match="A KerasTensor cannot be used as input to a TensorFlow function"):
        post_forms.run_model_add_loss(x, FACT, 2, 16, {})
    # ... and with keras.ops in their place, Functional.add_loss itself raises NotImplementedError (no message).
    with pytest.raises(NotImplementedError) as info:
        post_forms.run_model_add_loss_keras_ops(x, FACT, 2, 16, {})
    assert str(info.value) == ""
    assert info.traceback[-1].path.name == "functional.py" and info.traceback[-1].name == "add_loss"
    # the matrix records exactly that
    rec = post_forms.try_form(post_forms.run_model_add_loss_keras_ops, x, FACT, 2, 16)
    assert (rec["runs"], rec["exception"], rec["message"]) == ("no", "NotImplementedError", "")
    assert rec["raised_at"] == "keras/src/models/functional.py:add_loss"
    # while this project's Keras 3 form of the same strategy trains
    ok = post_forms.try_form(post_forms.run_gradient_tape, x, FACT, 2, 16)
    assert ok["runs"] == "yes" and ok["steps"] == 2


def test_seed_forms_run_under_legacy_keras2_in_a_separate_process():
    """The tf-keras worker (TF_USE_LEGACY_KERAS=1): post VII's model.add_loss trains there."""
    from klvae.strategies.compat import KERAS2, run_post_forms_subprocess

    recs = run_post_forms_subprocess(True, n_images=32, batch_size=16, z_dim=2, fact=FACT, seed=0, mnist=None)
    by = {(r["strategy"], r["form"]): r for r in recs}
    assert {r["keras_flavour"] for r in recs} == {KERAS2}
    add_loss = by[("model_add_loss", "post")]
    assert add_loss["runs"] == "yes" and add_loss["steps"] == 2 and math.isfinite(add_loss["final_loss"])
    assert by[("end_layer", "post")]["runs"] == "yes"
    assert by[("model_add_loss", "post_keras_ops")]["runs"] == "n/a"


def test_tensorflow_determinism_settings_in_a_fresh_process():
    """klvae.backend.tensorflow_determinism: op determinism on, arithmetic optimizer off, threads pinned."""
    import os
    import subprocess
    import sys

    code = ("import tensorflow as tf; from tensorflow.python.framework import config as c; "
            "from klvae.backend import tensorflow_determinism as t; t(1); "
            "print(c.is_op_determinism_enabled(), "
            "tf.config.optimizer.get_experimental_options().get('arithmetic_optimization'), "
            "tf.config.threading.get_intra_op_parallelism_threads(), "
            "tf.config.threading.get_inter_op_parallelism_threads())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.stdout.split() == ["True", "False", "1", "1"], out.stdout + out.stderr[-2000:]


# --- entry points -------------------------------------------------------------------------------
def test_init_weights_are_shared_and_checked(tmp_path):
    e2.init_weights(weights=str(tmp_path / "z2.npz"), z_dim=2, seed=5)
    e2.init_weights(weights=str(tmp_path / "z2b.npz"), z_dim=2, seed=5)
    a, b = np.load(tmp_path / "z2.npz"), np.load(tmp_path / "z2b.npz")
    assert sorted(a.files) == sorted(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)
    enc, dec = build_conv_pair(2)
    load_pair_weights(enc, dec, tmp_path / "z2.npz")
    np.testing.assert_array_equal(np.asarray(enc.get_layer("z_log_var").kernel), a["z_log_var/kernel"])
    with pytest.raises(ValueError, match="shape"):
        load_pair_weights(*build_conv_pair(12), tmp_path / "z2.npz")


def test_train_writes_model_history_and_metrics(tiny_mnist, tmp_path):
    e2.init_weights(weights=str(tmp_path / "init.npz"), z_dim=2, seed=0)
    out = {k: str(tmp_path / v) for k, v in
           {"model": "m.keras", "history": "h.csv", "metrics": "m.json"}.items()}
    e2.train(mnist=tiny_mnist, init=str(tmp_path / "init.npz"), strategy="tensor_transfer", z_dim=2, epochs=2,
             batch_size=32, n_train=64, n_test=32, seed=0, threads=1, verbose=0, **out)
    hist = pd.read_csv(out["history"])
    assert list(hist["epoch"]) == [1, 2] and set(hist["strategy"]) == {"tensor_transfer"}
    assert np.isfinite(hist[["loss", "reconstruction_loss", "kl_loss"]].to_numpy()).all()
    rec = json.loads(open(out["metrics"]).read())
    t = rec["test"]
    assert t["loss"] == pytest.approx(t["reconstruction_loss"] + FACT * t["kl_loss"], rel=1e-9)
    assert rec["keras_test"]["loss"] == pytest.approx(t["loss"], rel=0.05)  # own evaluate, other eps
    # the strategy's own model reloads from .keras; its networks export to one plain functional
    # model (images -> z_mean, z_log_var, reconstruction) that holds the same trained encoder
    full = keras.saving.load_model(out["model"], compile=False)
    enc, dec = registry.get_strategy("tensor_transfer").networks(full)
    pair = e2.export_pair(enc, dec, name="pair")
    pair.save(tmp_path / "pair.keras")
    pred = pair.predict(_images(3).astype(np.float32) / 255.0, verbose=0)
    assert pred["z_mean"].shape == (3, 2) and pred["reconstruction"].shape == (3, 28, 28)
    np.testing.assert_array_equal(enc.predict(_images(3).astype(np.float32) / 255.0, verbose=0)[0], pred["z_mean"])
    # analyse (from the strategy's model and from the exported pair) + figures from these outputs
    for src, path in (("model", out["model"]), ("pair", str(tmp_path / "pair.keras"))):
        e2.analyse(model=path, mnist=tiny_mnist, latent=str(tmp_path / f"lat_{src}.npz"),
                   recon=str(tmp_path / f"rec_{src}.npz"), n_recon=4, strategy="tensor_transfer")
    lat = np.load(tmp_path / "lat_model.npz")
    assert lat["z_mean"].shape == (32, 2) and str(lat["strategy"]) == "tensor_transfer"
    assert str(lat["post"]) == "VI"
    np.testing.assert_array_equal(lat["z_mean"], np.load(tmp_path / "lat_pair.npz")["z_mean"])
    from klvae.figures import e2 as fig

    fig.loss_curves(histories=[out["history"]], out=str(tmp_path / "curves.png"), z_dim=2)
    fig.latent_scatter(latents=[str(tmp_path / "lat_model.npz")], out=str(tmp_path / "latent.png"))
    fig.reconstructions(recons=[str(tmp_path / "rec_model.npz")], out=str(tmp_path / "recon.png"))
    for png in ("curves.png", "latent.png", "recon.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_benchmark_times_interleaved_windows(tiny_mnist, tmp_path):
    from klvae.bench.e2 import benchmark

    summary = benchmark(csv=str(tmp_path / "w.csv"), summary=str(tmp_path / "s.csv"), mnist=tiny_mnist,
                        strategies=["encoder_layer", "gradient_tape"], z_dim=2, batch_size=16, n_windows=2,
                        steps_per_window=2, warmup_steps=1, threads=1)
    w = pd.read_csv(tmp_path / "w.csv")
    assert list(w["strategy"]) == ["encoder_layer", "gradient_tape", "no_kl"] * 2  # interleaved
    assert (w["steps"] == 2).all() and (w["ms_per_step"] > 0).all()
    s = pd.read_csv(tmp_path / "s.csv")
    assert len(summary) == len(s) == 3
    # the fastest of the strategies (the no-KL baseline excluded) has ratio 1
    assert s.loc[s["strategy"] != "no_kl", "ratio_to_fastest"].min() == pytest.approx(1.0)
    assert s.loc[s["strategy"] == "no_kl", "ratio_to_no_kl"].item() == pytest.approx(1.0)
    for name in ("encoder_layer", "gradient_tape", "no_kl"):
        med = np.median(w.loc[w["strategy"] == name, "ms_per_step"])
        row = s[s["strategy"] == name].iloc[0]
        assert row["median_ms_per_step"] == pytest.approx(med)
        assert row["s_per_epoch"] == pytest.approx(med * 3750 / 1000)  # 60,000 images / batch 16
    assert {"cpu", "intra_op_threads", "backend", "backend_version", "keras", "gpu", "peak_rss_mb",
            "iqr_ms_per_step"} <= set(s.columns)
    assert set(s["backend"]) == {"tensorflow"} and set(s["gpu"]) == {"none"}


def test_copied_weights_survive_training_either_pair_on_jax():
    """Regression: on JAX, ``copy_pair_weights`` once shared buffers, and the first ``fit`` of the
    copy deleted the source's arrays ("Array has been deleted"; E2's timing rule failed). Run in a
    fresh process because the backend is fixed at import."""
    import os
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import numpy as np
        import keras
        from klvae.models.conv import build_conv_pair, copy_pair_weights
        from klvae.strategies import registry
        from klvae.strategies.base import FACT
        assert keras.backend.backend() == "jax"
        keras.utils.set_random_seed(0)
        ref = build_conv_pair(2)
        before = [np.array(v) for v in ref[0].weights + ref[1].weights]
        enc, dec = build_conv_pair(2)
        copy_pair_weights(ref, (enc, dec))
        strat = registry.get_strategy("end_layer")
        model = strat.build(enc, dec, fact=FACT)
        strat.compile(model, fact=FACT)
        x = np.random.default_rng(0).uniform(size=(8, 28, 28)).astype("float32")
        data = strat.fit_data(x, 2)
        model.fit(*(data if isinstance(data, tuple) else (data,)), batch_size=4, epochs=1, verbose=0)
        after = [np.array(v) for v in ref[0].weights + ref[1].weights]
        assert all(np.array_equal(a, b) for a, b in zip(before, after)), "source weights changed"
        trained = [np.array(v) for v in enc.weights + dec.weights]
        assert not all(np.array_equal(a, b) for a, b in zip(before, trained)), "copy did not train"
        print("OK")
    """)
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("OK"), proc.stderr[-3000:]
