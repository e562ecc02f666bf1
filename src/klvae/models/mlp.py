"""The MLP VAE of E1 (the KL-coefficient post, after the Keras ``variational_autoencoder.py`` example).

Encoder: Dense 784 -> 512 relu -> ``z_mean``, ``z_log_var`` (2 each).
Decoder: Dense 2 -> 512 relu -> 784 sigmoid, reshaped to 28x28.
"""

from __future__ import annotations

import keras

from klvae.models.vae import VAE


def build_mlp_encoder(input_shape=(28, 28), intermediate_dim: int = 512, z_dim: int = 2) -> keras.Model:
    """Encoder ``(batch, 28, 28)`` float32 in [0, 1] -> ``[z_mean, z_log_var]`` ``(batch, z_dim)``."""
    inputs = keras.Input(shape=input_shape, name="encoder_input")
    x = keras.layers.Flatten()(inputs)
    x = keras.layers.Dense(intermediate_dim, activation="relu")(x)
    z_mean = keras.layers.Dense(z_dim, name="z_mean")(x)
    z_log_var = keras.layers.Dense(z_dim, name="z_log_var")(x)
    return keras.Model(inputs, [z_mean, z_log_var], name="encoder")


def build_mlp_decoder(output_shape=(28, 28), intermediate_dim: int = 512, z_dim: int = 2) -> keras.Model:
    """Decoder ``(batch, z_dim)`` -> probabilities ``(batch, 28, 28)`` float32 in (0, 1)."""
    n = 1
    for d in output_shape:
        n *= d
    z = keras.Input(shape=(z_dim,), name="z_sampling")
    x = keras.layers.Dense(intermediate_dim, activation="relu")(z)
    x = keras.layers.Dense(n, activation="sigmoid")(x)
    out = keras.layers.Reshape(output_shape)(x)
    return keras.Model(z, out, name="decoder")


def build_mlp_vae(c: float, z_dim: int = 2, intermediate_dim: int = 512, seed: int = 0) -> VAE:
    """E1's VAE: pixel-summed BCE + ``c`` * KL (nats per image; the ``c`` form of
    :data:`klvae.models.vae.LOSS_FORMS`), built and ready to load weights.

    Weight initialisation uses Keras' global RNG: call
    :func:`klvae.seeding.set_global_seed` first for repeatable weights.
    """
    vae = VAE(build_mlp_encoder(z_dim=z_dim, intermediate_dim=intermediate_dim),
              build_mlp_decoder(z_dim=z_dim, intermediate_dim=intermediate_dim),
              c=c, seed=seed, name="vae_mlp")
    vae.build((None, 28, 28))
    return vae
