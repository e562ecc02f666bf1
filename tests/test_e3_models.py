"""E3 models: the face VAE / plain AE (shapes, sizes, loss, a training step), the E3 entry
points (train -> .keras + history + model facts; per model: evaluate, encode_latents, decode_faces; the
tables from the per-model files) and the four face figures."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from klvae import losses  # noqa: E402
from klvae.io import weights_digest  # noqa: E402
from klvae.models import faces  # noqa: E402
from klvae.seeding import set_global_seed  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _seed():
    set_global_seed(0, threads=1)


def _batch(n=4, seed=0):
    return np.random.default_rng(seed).random((n, 96, 96, 3), dtype=np.float32)


def test_vae_layer_sizes_parameters_and_output_shapes():
    vae = faces.build_face_vae()
    assert vae.count_params() == faces.N_PARAMETERS == 6_315_795  # the design: "6.3 M parameters"
    enc = vae.encoder
    sides = [enc.get_layer(f"enc_conv_{i}").output.shape[1:] for i in range(4)]
    assert [tuple(s) for s in sides] == [(48, 48, 32), (24, 24, 64), (12, 12, 128), (6, 6, 256)]
    dec = vae.decoder
    assert tuple(dec.get_layer("dec_reshape").output.shape[1:]) == (6, 6, 256)
    assert [tuple(dec.get_layer(f"dec_convt_{i}").output.shape[1:3]) for i in range(4)] == \
        [(12, 12), (24, 24), (48, 48), (96, 96)]
    x = _batch(3)
    z_mean, z_log_var = enc(x)
    assert tuple(z_mean.shape) == tuple(z_log_var.shape) == (3, 200)
    x_hat, mu, lv = vae(x)  # call() returns (x_hat, z_mean, z_log_var)
    out = np.asarray(x_hat)
    assert tuple(mu.shape) == tuple(lv.shape) == (3, 200)
    assert out.shape == (3, 96, 96, 3) and out.dtype == np.float32
    assert np.all((out > 0) & (out < 1))


def test_default_fact_is_the_elbo():
    """n_pixels * (mean-BCE + fact * KL_mean) == pixel-summed BCE + KL (nats): beta = 1."""
    rng = np.random.default_rng(1)
    x, x_hat = _batch(2), rng.uniform(0.05, 0.95, (2, 96, 96, 3)).astype(np.float32)
    mu, lv = rng.normal(size=(2, 200)).astype(np.float32), rng.normal(size=(2, 200)).astype(np.float32)
    post_form = faces.N_PIXELS * (float(losses.bce_mean(x, x_hat))
                                  + faces.DEFAULT_FACT * float(losses.kl_divergence_mean(mu, lv)))
    elbo = float(losses.bce_pixel_sum(x, x_hat)) + float(losses.kl_divergence(mu, lv))
    assert post_form == pytest.approx(elbo, rel=1e-5)
    assert faces.DEFAULT_FACT == pytest.approx(100 / 27648)
    assert losses.c_to_fact(1.0, 200, 96 * 96 * 3) == faces.DEFAULT_FACT


def test_vae_training_step_updates_weights_and_reports_its_loss_terms():
    vae = faces.build_face_vae(fact=0.01)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    x = _batch(8)
    before = [w.numpy().copy() for w in vae.trainable_weights]
    hist = vae.fit(x, batch_size=4, epochs=1, verbose=0, shuffle=False)
    assert set(hist.history) == {"loss", "reconstruction_loss", "kl_loss"}
    loss, rec, kl = (hist.history[k][0] for k in ("loss", "reconstruction_loss", "kl_loss"))
    assert np.isfinite([loss, rec, kl]).all() and kl > 0
    assert loss == pytest.approx(rec + 0.01 * kl, rel=1e-4)
    assert rec == pytest.approx(np.log(2), abs=0.05)  # sigmoid(0-ish) = 0.5 at the start
    changed = [not np.array_equal(b, w.numpy()) for b, w in zip(before, vae.trainable_weights, strict=True)]
    assert all(changed)


def test_ae_is_deterministic_has_no_kl_and_freezes_the_unused_head():
    ae = faces.build_face_ae()
    assert ae.count_params() == faces.N_PARAMETERS  # the same networks
    x = _batch(4)
    np.testing.assert_array_equal(np.asarray(ae(x)[0]), np.asarray(ae(x)[0]))  # no sampling
    np.testing.assert_allclose(np.asarray(ae(x)[0]), np.asarray(ae.decoder(ae.encoder(x)[0])), atol=1e-6)
    total, rec, _ = ae.loss_terms(x)
    assert float(total) == float(rec)
    lv = ae.encoder.get_layer("z_log_var")
    assert not lv.trainable and all(w is not v for w in ae.trainable_weights for v in lv.weights)
    lv_before = [w.numpy().copy() for w in lv.weights]
    mean_before = ae.encoder.get_layer("z_mean").kernel.numpy().copy()
    ae.compile(optimizer=keras.optimizers.Adam(1e-3))
    ae.fit(x, batch_size=4, epochs=1, verbose=0, shuffle=False)
    for b, w in zip(lv_before, lv.weights, strict=True):
        np.testing.assert_array_equal(b, w.numpy())
    assert not np.array_equal(mean_before, ae.encoder.get_layer("z_mean").kernel.numpy())


def test_build_face_model_rejects_bad_arguments():
    with pytest.raises(ValueError, match="no KL term"):
        faces.build_face_model("ae", fact=1e-6)
    with pytest.raises(ValueError, match="unknown model kind"):
        faces.build_face_model("gan")


# --- the E3 entry points on a tiny streamed data set ---------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from klvae.experiments import e3

    d = tmp_path_factory.mktemp("e3")
    rng = np.random.default_rng(0)
    np.save(d / "train.npy", rng.integers(0, 256, (24, 96, 96, 3), dtype=np.uint8))
    np.save(d / "test.npy", rng.integers(0, 256, (6, 96, 96, 3), dtype=np.uint8))
    out = {"dir": d}
    for kind in ("vae", "ae"):
        out[kind] = e3.train(d / "train.npy", d / f"{kind}.keras", d / f"{kind}_history.csv", kind=kind, epochs=2,
                             batch_size=8, n_train=16, learning_rate=1e-3, seed=0, threads=1, verbose=0,
                             epoch_times=d / f"{kind}_epoch_times.csv", model_info=d / f"{kind}_model.json")
    return out


def test_train_writes_model_and_history(trained):

    d = trained["dir"]
    for kind in ("vae", "ae"):
        rows = list(csv.DictReader(open(d / f"{kind}_history.csv")))
        assert [int(r["epoch"]) for r in rows] == [1, 2]
        assert all(int(r["steps"]) == 2 and int(r["n_train"]) == 16 and r["kind"] == kind for r in rows)
        assert all(np.isfinite(float(r["loss"])) for r in rows)
        assert "seconds" not in rows[0]  # timings live in epoch_times.csv, so histories of reruns are identical
        times = list(csv.DictReader(open(d / f"{kind}_epoch_times.csv")))
        assert [int(r["epoch"]) for r in times] == [1, 2] and all(float(r["s_per_step"]) > 0 for r in times)
        assert not (d / f"{kind}.keras.ckpt").exists()  # the checkpoint is removed once training is done
        model = faces.load_face_model(d / f"{kind}.keras")
        assert type(model).__name__ == ("FaceAE" if kind == "ae" else "VAE")
        assert model.count_params() == faces.N_PARAMETERS
        info = json.loads((d / f"{kind}_model.json").read_text())
        assert info == {"kind": kind, "n_parameters": 6_315_795, "n_encoder_parameters": 4_075_216,
                        "n_decoder_parameters": 2_240_579, "z_dim": 200,
                        "fact": 0.0 if kind == "ae" else faces.DEFAULT_FACT, "reconstruction": "bce_mean",
                        "kl": "kl_mean"}
    assert float(rows[0]["fact"]) == 0.0
    vae_rows = list(csv.DictReader(open(d / "vae_history.csv")))
    assert float(vae_rows[0]["fact"]) == pytest.approx(faces.DEFAULT_FACT)
    assert trained["vae"]["final"]["loss"] == pytest.approx(float(vae_rows[-1]["loss"]))


def test_train_is_repeatable_with_the_same_seed(trained, tmp_path):
    from klvae.experiments import e3

    d = trained["dir"]
    r = e3.train(d / "train.npy", tmp_path / "ae.keras", tmp_path / "h.csv", kind="ae", epochs=2, batch_size=8,
                 n_train=16, learning_rate=1e-3, seed=0, threads=1, verbose=0)
    assert r["final"] == trained["ae"]["final"]
    assert weights_digest(tmp_path / "ae.keras") == weights_digest(d / "ae.keras")  # bitwise-identical weights


def test_evaluate_and_encode_latents(trained):
    from klvae.experiments import e3_analysis as e3

    d = trained["dir"]
    rows = [e3.evaluate(d / f"{kind}.keras", d / "test.npy", d / f"{kind}_metrics.json", kind=kind, batch_size=4)
            for kind in ("ae", "vae")]  # each model in its own job, in any order
    assert [json.loads((d / f"{k}_metrics.json").read_text()) for k in ("ae", "vae")] == rows
    table = e3.metrics_table([d / "ae_metrics.json", d / "vae_metrics.json"], d / "metrics.csv")
    assert table == rows
    got = list(csv.DictReader(open(d / "metrics.csv")))
    assert [r["model"] for r in got] == ["vae", "ae"]  # the table's order, whatever the files' order
    assert list(got[0]) == ["model", "loss", "reconstruction_loss", "kl_loss", "fact", "mse", "n_test"]
    ae, vae = rows
    assert ae["loss"] == pytest.approx(ae["reconstruction_loss"])  # the AE has no KL term
    assert vae["loss"] == pytest.approx(vae["reconstruction_loss"] + faces.DEFAULT_FACT * vae["kl_loss"], rel=1e-5)
    assert all(r["n_test"] == 6 for r in rows)
    # the VAE's z is drawn from its saved SeedGenerator: the same numbers in every job
    again = e3.evaluate(d / "vae.keras", d / "test.npy", d / "vae_again.json", kind="vae", batch_size=4)
    assert again == vae
    with pytest.raises(ValueError, match="expected the face AE, the file holds a VAE"):
        e3.evaluate(d / "vae.keras", d / "test.npy", d / "x.json", kind="ae")
    with pytest.raises(ValueError, match="one VAE and one AE"):
        e3.metrics_table([d / "vae_metrics.json", d / "vae_again.json"], d / "x.csv")
    summary = e3.encode_latents(d / "ae.keras", d / "test.npy", d / "z.npy", d / "z.json", d / "z_hist.npz",
                                batch_size=4)
    z = np.load(d / "z.npy")
    assert z.shape == (6, 200) and z.dtype == np.float32
    model = faces.load_face_model(d / "ae.keras")
    x = np.load(d / "test.npy").astype(np.float32) / 255.0
    np.testing.assert_allclose(z, np.asarray(model.encoder(x)[0]), atol=1e-5)
    assert summary["frac_in_0_20"] == pytest.approx(np.mean((z > 0) & (z < 20)))
    assert json.loads((d / "z.json").read_text()) == summary
    with np.load(d / "z_hist.npz") as hist:
        counts, edges = np.histogram(z.ravel(), bins=120)
        assert hist["counts"].tolist() == counts.tolist() and hist["edges"].tobytes() == edges.tobytes()
    assert e3.latents_table(d / "z.json", d / "z.csv") == summary
    assert list(csv.DictReader(open(d / "z.csv")))[0]["frac_in_0_20"] == str(summary["frac_in_0_20"])


def _decode_as_the_figures_did(model, z):
    """The face figures' decoding before it moved to klvae.experiments.e3_analysis.decode_faces (verbatim)."""
    out = [np.asarray(model.decoder(z[i:i + 256], training=False)) for i in range(0, len(z), 256)]
    return np.clip(np.concatenate(out), 0.0, 1.0)


def test_decode_faces_gives_the_bits_the_figures_decoded(trained, tmp_path):
    """Each model's job draws and decodes what the figures (and the former two-model job) did: every
    generator is made afresh from the seed, so splitting the job per model changes no bit."""
    from klvae.experiments import e3_analysis as e3

    d = trained["dir"]
    bounds = [0.5, 5, 50]
    got = {}
    for kind in ("vae", "ae"):
        info = e3.decode_faces(d / f"{kind}.keras", d / "test.npy", tmp_path / f"{kind}.npz", kind=kind, n_random=6,
                               bounds=bounds, n_per_bound=3, n_test=4, seed=7)
        assert info == {"kind": kind, "z_dim": 200, "n_test": 4,
                        **({"n_random": 6} if kind == "vae" else {"n_ae_points": 9})}
        got[kind] = dict(np.load(tmp_path / f"{kind}.npz", allow_pickle=False))
    # what figures/e3.py computed before (random_faces, ae_random_points, reconstructions), step by step
    vae, ae = faces.load_face_model(d / "vae.keras"), faces.load_face_model(d / "ae.keras")
    z = np.random.default_rng(7).standard_normal((6, 200)).astype(np.float32)
    want = {"vae": {"random_faces": _decode_as_the_figures_did(vae, z)}}
    zs = [np.random.default_rng([7, r]).uniform(0.0, b, (3, 200)).astype(np.float32) for r, b in enumerate(bounds)]
    want["ae"] = {"ae_points": _decode_as_the_figures_did(ae, np.concatenate(zs))}
    x = np.load(d / "test.npy", mmap_mode="r")
    idx = np.sort(np.random.default_rng(7).choice(len(x), size=4, replace=False))
    for name, model in (("vae", vae), ("ae", ae)):
        want[name]["test_index"], want[name]["test_faces"] = idx, np.asarray(x[idx], np.float32) / 255.0
        want[name]["reconstructions"] = _decode_as_the_figures_did(
            model, np.asarray(model.encoder(want[name]["test_faces"], training=False)[0]))
    for name in ("vae", "ae"):
        for key, value in want[name].items():
            assert got[name][key].dtype == value.dtype and got[name][key].shape == value.shape, (name, key)
            assert got[name][key].tobytes() == value.tobytes(), (name, key)  # bitwise
    assert "ae_points" not in got["vae"] and "random_faces" not in got["ae"]
    assert got["vae"]["random_faces"].shape == (6, 96, 96, 3) and got["ae"]["ae_points"].shape == (9, 96, 96, 3)
    assert got["ae"]["bounds"].tolist() == [0.5, 5.0, 50.0] and int(got["ae"]["n_per_bound"]) == 3
    assert int(got["vae"]["z_dim"]) == int(got["ae"]["z_dim"]) == 200 and int(got["vae"]["seed"]) == 7
    assert str(got["vae"]["kind"]) == "vae" and str(got["ae"]["kind"]) == "ae"
    assert float(got["vae"]["fact"]) == faces.DEFAULT_FACT and float(got["ae"]["fact"]) == 0.0
    with pytest.raises(ValueError, match="expected the face VAE, the file holds a FaceAE"):
        e3.decode_faces(d / "ae.keras", d / "test.npy", tmp_path / "x.npz", kind="vae")


def test_face_figures_write_pngs(trained, tmp_path):
    from PIL import Image

    from klvae.bundle.part import quantized
    from klvae.experiments import e3_analysis as e3
    from klvae.figures import e3 as ff

    d = trained["dir"]
    for kind in ("vae", "ae"):
        e3.decode_faces(d / f"{kind}.keras", d / "test.npy", tmp_path / f"{kind}.npz", kind=kind, n_random=6,
                        n_per_bound=3, n_test=4)
    vae, ae = tmp_path / "vae.npz", tmp_path / "ae.npz"
    label = "synthetic stand-in, not CelebA"
    ff.random_faces(vae, d / "random.png", label, n_cols=3)
    ff.ae_random_points(ae, d / "ae_points.png", label)
    ff.reconstructions(vae, ae, d / "rec.png", "CelebA")
    (d / "manifest.json").write_text('{"data_label": "synthetic stand-in, not CelebA", "standin": true}')
    ff.reconstructions(vae, ae, d / "rec_m.png", manifest=d / "manifest.json")
    z = np.random.default_rng(0).normal(size=(6, 200)).astype(np.float32)
    counts, edges = np.histogram(z.ravel(), bins=120)
    np.savez(d / "hist.npz", counts=counts, edges=edges)
    (d / "z.json").write_text(json.dumps({"n_images": 6, "z_dim": 200, "min": float(z.min()), "max": float(z.max()),
                                          "q01": 0.0, "q99": 1.0, "frac_in_0_20": 0.5, "frac_abs_le_3": 0.99}))
    ff.latent_histogram(d / "hist.npz", d / "z.json", d / "hist.png", label)
    # a part bundle's 8-bit copies draw the same figures (up to one level of 255 per pixel)
    for kind in ("vae", "ae"):
        (tmp_path / f"{kind}_8bit.npz").write_bytes(quantized(f"e3/{kind}/decoded_faces.npz",
                                                              (tmp_path / f"{kind}.npz").read_bytes()))
    ff.reconstructions(tmp_path / "vae_8bit.npz", tmp_path / "ae_8bit.npz", d / "rec_8bit.png", "CelebA")
    a, b = (np.asarray(Image.open(d / f"{n}.png"), np.int16) for n in ("rec", "rec_8bit"))
    assert a.shape == b.shape and np.abs(a - b).max() <= 1
    with pytest.raises(ValueError, match="expected the VAE's decoded faces"):
        ff.random_faces(ae, d / "x.png", label)
    with pytest.raises(ValueError, match="expected the AE's decoded faces"):
        ff.reconstructions(vae, vae, d / "x.png", label)
    for name in ("random", "ae_points", "rec", "hist"):
        im = Image.open(d / f"{name}.png")
        assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 150
    # the stand-in banner is red: present in a stand-in figure, absent from a CelebA one
    def red(p):
        return np.sum(np.all(np.asarray(Image.open(p).convert("RGB"))[:60] == (0xC0, 0x39, 0x2B), axis=-1))

    assert red(d / "hist.png") > 500 and red(d / "rec.png") == 0 and red(d / "rec_m.png") > 500
    with pytest.raises(ValueError, match="give data_label or manifest"):
        ff.latent_histogram(d / "hist.npz", d / "z.json", d / "x.png")
    assert ff._is_standin("CelebA", None) is False and ff._is_standin("x", True) is True
