"""The convolutional VAE networks of E2 (seed posts IV-VIII, the notebook cell 6 of post VII).

Encoder: images ``(batch, 28, 28)`` float32 in [0, 1] -> Reshape ``(28, 28, 1)`` ->
Conv2D filters [32, 64, 128], kernel 3, strides [1, 2, 2], same padding, each followed by
LeakyReLU -> Flatten -> Dense ``z_mean`` and Dense ``z_log_var`` (``z_dim`` each).

Decoder: ``z`` ``(batch, z_dim)`` -> Dense 7*7*128 -> Reshape ``(7, 7, 128)`` ->
Conv2DTranspose filters [64, 32, 1], kernel 3, strides [2, 2, 1], same padding, LeakyReLU
after the first two and a sigmoid on the last -> Reshape ``(28, 28)`` (probabilities).

The post's ``MyVariationalAutoencoder(input_dim=(28,28,1), encoder_conv_filters=[32,64,128],
encoder_conv_kernel_size=[3,3,3], encoder_conv_strides=[1,2,2], decoder_conv_t_filters=[64,32,1],
decoder_conv_t_kernel_size=[3,3,3], decoder_conv_t_strides=[2,2,1], z_dim=z_dim, act=0)``;
``act=0`` is LeakyReLU. The post's input has an explicit channel axis; here the channel axis
is added by the first layer so that the image batches of :mod:`klvae.data.stream`
(``(batch, 28, 28)``) are fed as they are and reconstructions have the input's shape.

Every layer has a fixed name, so variable paths (``enc_conv_0/kernel``, ``dec_dense/bias``...) are the
same in every process; :func:`save_pair_weights` / :func:`load_pair_weights` use them to
give every KL strategy the same initial weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np

#: Post VII, cell 6.
ENCODER_FILTERS = (32, 64, 128)
ENCODER_STRIDES = (1, 2, 2)
DECODER_FILTERS = (64, 32, 1)
DECODER_STRIDES = (2, 2, 1)
KERNEL_SIZE = 3
IMAGE_SHAPE = (28, 28)


def build_conv_encoder(z_dim: int, input_shape=IMAGE_SHAPE, name: str = "encoder") -> keras.Model:
    """E2's conv encoder: images -> ``[z_mean, z_log_var]``.

    Args:
        z_dim: latent dimension (E2: 2 or 12).
        input_shape: ``(28, 28)`` (a channel axis is added inside) or ``(28, 28, 1)``.
        name: model name (the prefix of its variable paths).

    Returns:
        A functional ``keras.Model`` mapping float32 ``(batch, *input_shape)`` in [0, 1] to
        ``[z_mean, z_log_var]``, float32 ``(batch, z_dim)`` each (log-variance in log units).
        Weights are initialised from Keras' global RNG (seed it first).
    """
    inputs = keras.Input(shape=tuple(input_shape), name="encoder_input")
    x = inputs
    if len(input_shape) == 2:
        x = keras.layers.Reshape((*input_shape, 1), name="enc_add_channel")(x)
    for i, (filters, strides) in enumerate(zip(ENCODER_FILTERS, ENCODER_STRIDES, strict=True)):
        x = keras.layers.Conv2D(filters, KERNEL_SIZE, strides=strides, padding="same", name=f"enc_conv_{i}")(x)
        x = keras.layers.LeakyReLU(name=f"enc_lrelu_{i}")(x)
    x = keras.layers.Flatten(name="enc_flatten")(x)
    z_mean = keras.layers.Dense(z_dim, name="z_mean")(x)
    z_log_var = keras.layers.Dense(z_dim, name="z_log_var")(x)
    return keras.Model(inputs, [z_mean, z_log_var], name=name)


def build_conv_decoder(z_dim: int, output_shape=IMAGE_SHAPE, name: str = "decoder") -> keras.Model:
    """E2's conv decoder: ``z`` -> Bernoulli probabilities of the pixels.

    Args:
        z_dim: latent dimension.
        output_shape: ``(28, 28)`` (channel axis dropped at the end) or ``(28, 28, 1)``.
        name: model name.

    Returns:
        A functional ``keras.Model`` mapping float32 ``(batch, z_dim)`` to float32
        ``(batch, *output_shape)`` in (0, 1).
    """
    z = keras.Input(shape=(z_dim,), name="decoder_input")
    x = keras.layers.Dense(7 * 7 * ENCODER_FILTERS[-1], name="dec_dense")(z)
    x = keras.layers.Reshape((7, 7, ENCODER_FILTERS[-1]), name="dec_reshape")(x)
    last = len(DECODER_FILTERS) - 1
    for i, (filters, strides) in enumerate(zip(DECODER_FILTERS, DECODER_STRIDES, strict=True)):
        x = keras.layers.Conv2DTranspose(filters, KERNEL_SIZE, strides=strides, padding="same",
                                         name=f"dec_convt_{i}")(x)
        if i < last:
            x = keras.layers.LeakyReLU(name=f"dec_lrelu_{i}")(x)
        else:
            x = keras.layers.Activation("sigmoid", name="dec_sigmoid")(x)
    if len(output_shape) == 2:
        x = keras.layers.Reshape(tuple(output_shape), name="dec_drop_channel")(x)
    return keras.Model(z, x, name=name)


def build_conv_pair(z_dim: int) -> tuple[keras.Model, keras.Model]:
    """``(encoder, decoder)`` of E2 for ``(batch, 28, 28)`` images; see the builders."""
    return build_conv_encoder(z_dim), build_conv_decoder(z_dim)


def _pair_variables(encoder: keras.Model, decoder: keras.Model) -> dict:
    out = {}
    for model in (encoder, decoder):
        for v in model.weights:
            if v.path in out:
                raise ValueError(f"duplicate variable path {v.path!r}")
            out[v.path] = v
    return out


def save_pair_weights(encoder: keras.Model, decoder: keras.Model, path: str | os.PathLike) -> None:
    """Write all encoder and decoder weights to a ``.npz`` keyed by variable path (atomic).

    The file holds float32 arrays named by variable path, like ``enc_conv_0/kernel``; it is the shared
    starting point of every E2 strategy for one ``z_dim``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {p: np.asarray(keras.ops.convert_to_numpy(v)) for p, v in _pair_variables(encoder, decoder).items()}
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def load_pair_weights(encoder: keras.Model, decoder: keras.Model, path: str | os.PathLike) -> None:
    """Assign the weights written by :func:`save_pair_weights` (strict).

    Raises:
        ValueError: when the file and the networks do not have exactly the same variable
            paths or a shape differs (e.g. a file of another ``z_dim``).
    """
    variables = _pair_variables(encoder, decoder)
    with np.load(path, allow_pickle=False) as data:
        missing = sorted(set(variables) - set(data.files))
        extra = sorted(set(data.files) - set(variables))
        if missing or extra:
            raise ValueError(f"{path}: weights do not match the networks (missing {missing}, unexpected {extra})")
        for p, v in variables.items():
            value = data[p]
            if tuple(value.shape) != tuple(v.shape):
                raise ValueError(f"{path}: {p} has shape {value.shape}, the network expects {tuple(v.shape)}")
            v.assign(value)


def copy_pair_weights(src: tuple[keras.Model, keras.Model], dst: tuple[keras.Model, keras.Model]) -> None:
    """Copy weights from one ``(encoder, decoder)`` pair to another built the same way (in memory).

    Values go through a NumPy copy: on JAX, assigning one variable's array to another would
    share the buffer, and the first ``fit`` of either pair donates (deletes) it
    ("Array has been deleted").

    Raises:
        ValueError: when the pairs do not have the same variable paths.
    """
    s, d = _pair_variables(*src), _pair_variables(*dst)
    if set(s) != set(d):
        raise ValueError(f"pairs differ: {sorted(set(s) ^ set(d))}")
    for p, v in d.items():
        v.assign(np.array(keras.ops.convert_to_numpy(s[p])))


__all__ = ["build_conv_encoder", "build_conv_decoder", "build_conv_pair",
           "save_pair_weights", "load_pair_weights", "copy_pair_weights"]
