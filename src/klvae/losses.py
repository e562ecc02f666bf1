"""Loss terms of the VAE objective, as small pure functions.

The negative ELBO of a VAE with a diagonal Gaussian posterior
q(z|x) = N(z_mean, exp(z_log_var)) and a standard normal prior p(z) = N(0, I) is

    -ELBO(x) = E_q[-log p(x|z)] + KL(q(z|x) || p(z)),

with the closed-form KL divergence (Kingma & Welling 2014, appendix B)

    KL = -0.5 * sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)   [nats].

For Bernoulli pixels, -log p(x|z) is the binary cross-entropy summed over the
pixels. The posts scale these terms differently; both variants are here:

* E1 (the KL-coefficient post, "influence of the KL coefficient"): ``784 * mean-BCE`` (i.e. BCE
  summed over pixels) ``+ c * KL`` with the KL summed over latent dims, both
  averaged over the batch -- see :func:`bce_pixel_sum` and :func:`kl_divergence`.
* E2 (post VII, posts IV-VIII): ``mean-BCE + fact * KL_mean`` where
  ``KL_mean = -mean(1 + log sigma^2 - mu^2 - sigma^2)`` averaged over batch *and*
  latent dims, without the factor 0.5 -- see :func:`bce_mean` and
  :func:`kl_divergence_mean`.

All functions take and return backend tensors through ``keras.ops`` so they work
in a Keras 3 ``train_step``, inside layers and on NumPy arrays alike. Inputs are
float32 tensors; ``x`` and ``x_hat`` must have the same shape ``(batch, ...)``
with values in [0, 1]; ``z_mean`` and ``z_log_var`` have shape ``(batch, z_dim)``.
"""

from __future__ import annotations

from keras import ops

#: Clipping used inside the log of the binary cross-entropy, as in Keras' own
#: ``binary_crossentropy`` (``keras.config.epsilon()``, 1e-7).
_EPS = 1e-7


def kl_divergence_per_sample(z_mean, z_log_var):
    """KL(N(z_mean, exp(z_log_var)) || N(0, I)) per sample, summed over latent dims.

    Args:
        z_mean: float32 tensor ``(batch, z_dim)``, the posterior means mu.
        z_log_var: float32 tensor ``(batch, z_dim)``, the posterior log-variances log sigma^2.

    Returns:
        float32 tensor ``(batch,)`` in nats:
        ``-0.5 * sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)``.
    """
    return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


def kl_divergence(z_mean, z_log_var):
    """Batch mean of the per-sample KL divergence (E1, the KL-coefficient post; Kingma & Welling 2014).

    Args:
        z_mean, z_log_var: float32 tensors ``(batch, z_dim)``.

    Returns:
        Scalar float32 tensor in nats per sample.
    """
    return ops.mean(kl_divergence_per_sample(z_mean, z_log_var))


def kl_divergence_mean(z_mean, z_log_var):
    """The KL term of posts IV-VIII (E2): ``-mean(1 + log sigma^2 - mu^2 - sigma^2)``.

    Averaged over batch *and* latent dims, without the factor 0.5, exactly as the
    post VII write it. It equals ``2 * kl_divergence / z_dim``.

    Args:
        z_mean, z_log_var: float32 tensors ``(batch, z_dim)``.

    Returns:
        Scalar float32 tensor (nats per latent dimension, times 2).
    """
    return -ops.mean(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))


def _bce_elementwise(x, x_hat):
    x_hat = ops.clip(x_hat, _EPS, 1.0 - _EPS)
    return -(x * ops.log(x_hat) + (1.0 - x) * ops.log(1.0 - x_hat))


def bce_per_sample_sum(x, x_hat):
    """Binary cross-entropy summed over all non-batch axes, per sample.

    Args:
        x: float32 tensor ``(batch, ...)`` of targets in [0, 1].
        x_hat: float32 tensor of the same shape, decoder probabilities in (0, 1).

    Returns:
        float32 tensor ``(batch,)`` in nats (the negative Bernoulli log-likelihood).
    """
    e = _bce_elementwise(x, x_hat)
    return ops.sum(ops.reshape(e, (ops.shape(e)[0], -1)), axis=-1)


def bce_pixel_sum(x, x_hat):
    """Reconstruction loss of E1: BCE summed over pixels, averaged over the batch.

    This is the post's ``original_dim * binary_crossentropy(inputs, outputs)``
    (784 times the per-pixel mean) averaged over the batch (the KL-coefficient post).

    Args:
        x, x_hat: float32 tensors ``(batch, ...)`` with values in [0, 1].

    Returns:
        Scalar float32 tensor in nats per sample.
    """
    return ops.mean(bce_per_sample_sum(x, x_hat))


def bce_mean(x, x_hat):
    """Reconstruction loss of E2: BCE averaged over batch and pixels (posts IV-VIII).

    Args:
        x, x_hat: float32 tensors ``(batch, ...)`` with values in [0, 1].

    Returns:
        Scalar float32 tensor in nats per pixel.
    """
    return ops.mean(_bce_elementwise(x, x_hat))


def c_to_fact(c: float, z_dim: int, n_pixels: int) -> float:
    """Convert a KL weight from E1's scale (``c``) to the posts' scale (``fact``): the one conversion.

    ``bce_pixel_sum + c * kl_divergence`` = ``n_pixels * (bce_mean + fact * kl_divergence_mean)``
    with ``fact = c * z_dim / (2 * n_pixels)``, because ``kl_divergence_mean = 2 * kl_divergence / z_dim``
    and ``bce_pixel_sum = n_pixels * bce_mean``. So c = 1 (the ELBO, beta = 1) is
    ``fact = z_dim / (2 * n_pixels)``.

    Args:
        c: KL weight against the pixel-summed BCE (dimensionless, >= 0; the beta of beta-VAEs).
        z_dim: latent dimensions.
        n_pixels: pixel values per image (e.g. 96 * 96 * 3).

    Returns:
        ``fact`` (dimensionless, float).
    """
    return float(c) * z_dim / (2.0 * n_pixels)


#: Reconstruction terms by config name.
RECONSTRUCTION_LOSSES = {"bce_pixel_sum": bce_pixel_sum, "bce_mean": bce_mean}
#: KL terms by config name.
KL_TERMS = {"kl_sum": kl_divergence, "kl_mean": kl_divergence_mean}


def get_reconstruction_loss(name: str):
    """Look up a reconstruction term by name; raises ``KeyError`` listing the known names."""
    try:
        return RECONSTRUCTION_LOSSES[name]
    except KeyError:
        raise KeyError(f"unknown reconstruction loss {name!r}; known: {sorted(RECONSTRUCTION_LOSSES)}") from None


def get_kl_term(name: str):
    """Look up a KL term by name; raises ``KeyError`` listing the known names."""
    try:
        return KL_TERMS[name]
    except KeyError:
        raise KeyError(f"unknown KL term {name!r}; known: {sorted(KL_TERMS)}") from None


__all__ = [
    "kl_divergence_per_sample", "kl_divergence", "kl_divergence_mean",
    "bce_per_sample_sum", "bce_pixel_sum", "bce_mean",
    "get_reconstruction_loss", "get_kl_term", "c_to_fact",
]
