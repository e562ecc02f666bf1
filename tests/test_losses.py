"""The KL divergence and the VAE loss against hand computations in NumPy."""

import numpy as np
import pytest

from klvae import losses


def np_kl(mu, logvar):
    return np.mean(-0.5 * np.sum(1 + logvar - mu**2 - np.exp(logvar), axis=1))


def np_bce(x, p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return -(x * np.log(p) + (1 - x) * np.log(1 - p))


def test_kl_of_standard_normal_is_zero():
    z = np.zeros((4, 3), np.float32)
    assert float(losses.kl_divergence(z, z)) == 0.0


def test_kl_hand_computed_value():
    # one sample, mu = (1, 0), sigma^2 = (1, e): KL = 0.5 * [(1 + 1 - 0 - 1) ... ] by hand:
    # per dim j: -0.5 (1 + log s2 - mu^2 - s2); dim0: -0.5 (1 + 0 - 1 - 1) = 0.5;
    # dim1: -0.5 (1 + 1 - 0 - e) = 0.5 (e - 2)
    mu = np.array([[1.0, 0.0]], np.float32)
    logvar = np.array([[0.0, 1.0]], np.float32)
    expected = 0.5 + 0.5 * (np.e - 2.0)
    assert float(losses.kl_divergence(mu, logvar)) == pytest.approx(expected, rel=1e-6)
    # the posts' E2 form: -mean(...) over batch and dims, no 0.5 = 2 * KL / z_dim
    assert float(losses.kl_divergence_mean(mu, logvar)) == pytest.approx(2 * expected / 2, rel=1e-6)


def test_kl_random_batch_matches_numpy():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(16, 5)).astype(np.float32)
    logvar = rng.normal(scale=0.5, size=(16, 5)).astype(np.float32)
    assert float(losses.kl_divergence(mu, logvar)) == pytest.approx(np_kl(mu, logvar), rel=1e-5)
    per = np.asarray(losses.kl_divergence_per_sample(mu, logvar))
    assert per.shape == (16,) and (per >= 0).all()


def test_bce_terms_match_numpy():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(8, 28, 28)).astype(np.float32)
    p = rng.uniform(0.01, 0.99, size=(8, 28, 28)).astype(np.float32)
    e = np_bce(x, p)
    assert float(losses.bce_pixel_sum(x, p)) == pytest.approx(e.reshape(8, -1).sum(1).mean(), rel=1e-5)
    assert float(losses.bce_mean(x, p)) == pytest.approx(e.mean(), rel=1e-5)
    # E1's reconstruction term is 784 x the per-pixel mean (the post's original_dim * BCE)
    assert float(losses.bce_pixel_sum(x, p)) == pytest.approx(784 * float(losses.bce_mean(x, p)), rel=1e-5)


def test_unknown_loss_name_lists_known_ones():
    with pytest.raises(KeyError, match="bce_pixel_sum"):
        losses.get_reconstruction_loss("mse")


def test_vae_loss_is_reconstruction_plus_c_times_kl():
    """One E1 forward pass: the VAE's loss equals BCE-sum + c*KL computed by hand in NumPy
    from its own encoder/decoder outputs and the same eps."""
    from klvae.seeding import set_global_seed
    set_global_seed(3, threads=1)
    import keras

    from klvae.models.mlp import build_mlp_vae

    c = 0.5
    vae = build_mlp_vae(c=c, seed=3)
    rng = np.random.default_rng(2)
    x = (rng.uniform(size=(5, 28, 28)) > 0.5).astype(np.float32)
    # eps the sampling layer will draw: replay its seed generator on a copy
    gen = keras.random.SeedGenerator(3)
    eps = np.asarray(keras.random.normal((5, 2), seed=gen))
    total, rec, kl = (float(t) for t in vae.loss_terms(x))
    mu, logvar = (np.asarray(t) for t in vae.encoder(x))
    z = mu + np.exp(0.5 * logvar) * eps
    p = np.asarray(vae.decoder(z))
    rec_np = np_bce(x, p).reshape(5, -1).sum(1).mean()
    kl_np = np_kl(mu, logvar)
    assert rec == pytest.approx(rec_np, rel=1e-4)
    assert kl == pytest.approx(kl_np, rel=1e-4)
    assert total == pytest.approx(rec_np + c * kl_np, rel=1e-4)


def test_evaluate_is_a_mean_over_images_when_the_batch_size_does_not_divide_the_test_set():
    """Issue 10: the trackers weight each batch by its size. 10 images in batches of 4 (4, 4, 2):
    the reported KL equals the NumPy mean over the 10 images, not the mean of the 3 batch means."""
    from klvae.seeding import set_global_seed
    set_global_seed(4, threads=1)
    import keras

    from klvae.data.stream import ImageBatches
    from klvae.models.mlp import build_mlp_vae

    vae = build_mlp_vae(c=1.0, seed=4)
    vae.compile(optimizer=keras.optimizers.Adam(1e-3))
    rng = np.random.default_rng(5)
    x = (rng.uniform(size=(10, 28, 28)) * 255).astype(np.uint8)
    # spread the posteriors so that per-image KL values differ a lot
    vae.encoder.get_layer("z_mean").bias.assign(np.array([3.0, -2.0], np.float32))
    got = vae.evaluate(ImageBatches(x, 4), verbose=0, return_dict=True)
    mu, logvar = (np.asarray(t, np.float64) for t in vae.encoder(x.astype(np.float32) / 255.0))
    per_image = -0.5 * (1 + logvar - mu ** 2 - np.exp(logvar)).sum(1)
    assert got["kl_loss"] == pytest.approx(per_image.mean(), rel=1e-5)
    batch_means = [per_image[0:4].mean(), per_image[4:8].mean(), per_image[8:].mean()]
    assert abs(np.mean(batch_means) - per_image.mean()) > 1e-3 * per_image.mean()  # the old bug would show
