"""The conv VAE and the plain AE of E3 (96x96 RGB faces; post IX, post IX and the AE post).

Architecture (E3; post IX: "96 px ... allows for exactly 4 layers ... each of the
layers then reduces the resolution by a factor of 2 ... at the innermost layer of the
Encoder we deal with e.g. 256 maps with an extension of 6x6"; z_dim = 200 from the AE post):

* Encoder: input ``(96, 96, 3)`` float32 in [0, 1] -> Conv2D 32, 64, 128, 256 filters,
  kernel 3, stride 2, same padding, LeakyReLU (96 -> 48 -> 24 -> 12 -> 6) -> Flatten
  (9,216) -> Dense ``z_mean`` (200) and Dense ``z_log_var`` (200).
* Decoder (mirrored): Dense 200 -> 9,216, LeakyReLU -> Reshape (6, 6, 256) ->
  Conv2DTranspose 128, 64, 32 filters, kernel 3, stride 2, LeakyReLU (6 -> 12 -> 24 -> 48)
  -> Conv2DTranspose 3 filters, kernel 3, stride 2, sigmoid (-> 96x96x3 probabilities).
* 6,315,795 parameters (4,075,216 encoder + 2,240,579 decoder), the "6.3 M" of the design. The
  filter sequence 32-64-128-256 is the doubling series that ends in the post's 256 maps
  and gives that count; post X with the exact class arguments is not one of the four
  posts, so kernel size 3 and LeakyReLU follow the post's MNIST class (post VII).

Loss, as in the post's class (posts IV-VIII, as E2): ``mean-BCE + fact * KL_mean`` with
``KL_mean = -mean(1 + log sigma^2 - mu^2 - sigma^2)`` over batch and latent dims
(:func:`klvae.losses.bce_mean`, :func:`klvae.losses.kl_divergence_mean`).

KL weight (:data:`DEFAULT_FACT`): ``fact = z_dim / (2 * 96 * 96 * 3) = 100 / 27648
= 3.617e-3``. With this value ``mean-BCE + fact * KL_mean`` is exactly the negative ELBO
(BCE summed over the 27,648 pixel values + the KL in nats) divided by 27,648, i.e. the
standard VAE (c = 1, beta = 1) of Kingma & Welling with a Bernoulli decoder. That is the weight
at which the aggregate posterior is pulled onto the prior N(0, I), so that decoding
z ~ N(0, I) gives faces (the random-face figure); a much smaller weight (the post's 1e-6
"basically an AE") leaves the codes spread far outside N(0, I) and random z decode to
"face hallucinations" (AE post). ``fact`` is a config value; :func:`klvae.losses.c_to_fact`
converts a weight on E1's scale ``c`` (relative to the pixel-summed BCE) into it.

The plain AE (:class:`FaceAE`): the SAME encoder and decoder networks, deterministic --
the decoder gets ``z = z_mean`` (no sampling), the loss is the reconstruction term alone
(no KL at all), and the unused ``z_log_var`` head is frozen. The design asks for "no KL"; the
post instead trained a VAE with ``fact = 1e-6`` as "basically an AE", which
``build_face_vae(fact=1e-6)`` reproduces if wanted.
"""

from __future__ import annotations

import keras
from keras import ops

from klvae.losses import c_to_fact
from klvae.models.vae import VAE

INPUT_SHAPE = (96, 96, 3)
Z_DIM = 200
ENCODER_FILTERS = (32, 64, 128, 256)
DECODER_FILTERS = (128, 64, 32, 3)
KERNEL_SIZE = 3
#: Pixel values per image (96 * 96 * 3).
N_PIXELS = 96 * 96 * 3
#: ``fact`` of ``mean-BCE + fact * KL_mean`` equal to c = 1 (the ELBO); see the module doc.
DEFAULT_FACT = c_to_fact(1.0, Z_DIM, N_PIXELS)
#: The post's "basically an AE" factor (AE post), for reference.
POST_AE_FACT = 1e-6
#: Number of trainable parameters of the VAE (checked by the tests).
N_PARAMETERS = 6_315_795


def build_face_encoder(z_dim: int = Z_DIM, filters=ENCODER_FILTERS, kernel_size: int = KERNEL_SIZE,
                       input_shape=INPUT_SHAPE) -> keras.Model:
    """Encoder: ``(batch, 96, 96, 3)`` float32 in [0, 1] -> ``[z_mean, z_log_var]``, each ``(batch, z_dim)``."""
    inputs = keras.Input(shape=input_shape, name="encoder_input")
    x = inputs
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(f, kernel_size, strides=2, padding="same", name=f"enc_conv_{i}")(x)
        x = keras.layers.LeakyReLU(name=f"enc_act_{i}")(x)
    x = keras.layers.Flatten(name="enc_flatten")(x)
    z_mean = keras.layers.Dense(z_dim, name="z_mean")(x)
    z_log_var = keras.layers.Dense(z_dim, name="z_log_var")(x)
    return keras.Model(inputs, [z_mean, z_log_var], name="face_encoder")


def build_face_decoder(z_dim: int = Z_DIM, filters=DECODER_FILTERS, kernel_size: int = KERNEL_SIZE,
                       output_shape=INPUT_SHAPE) -> keras.Model:
    """Decoder: ``(batch, z_dim)`` -> probabilities ``(batch, 96, 96, 3)`` float32 in (0, 1)."""
    n_up = len(filters)
    side = output_shape[0] // 2 ** n_up
    inner = ENCODER_FILTERS[-1]
    z = keras.Input(shape=(z_dim,), name="decoder_input")
    x = keras.layers.Dense(side * side * inner, name="dec_dense")(z)
    x = keras.layers.LeakyReLU(name="dec_dense_act")(x)
    x = keras.layers.Reshape((side, side, inner), name="dec_reshape")(x)
    for i, f in enumerate(filters):
        last = i == n_up - 1
        x = keras.layers.Conv2DTranspose(f, kernel_size, strides=2, padding="same",
                                         activation="sigmoid" if last else None, name=f"dec_convt_{i}")(x)
        if not last:
            x = keras.layers.LeakyReLU(name=f"dec_act_{i}")(x)
    return keras.Model(z, x, name="face_decoder")


def build_face_vae(fact: float = DEFAULT_FACT, z_dim: int = Z_DIM, seed: int = 0) -> VAE:
    """E3's VAE: ``mean-BCE + fact * KL_mean``, a :class:`klvae.models.vae.VAE` (the
    keras.io VAE the ``gradient_tape`` strategy of post VIII follows; the KL term reaches
    Keras through its backend-neutral ``compute_loss`` override).

    ``fact`` is on the posts' scale (KL_mean against the *mean* BCE, config ``e3.fact``); the
    VAE class keeps it under the same name (``vae.fact``). :func:`klvae.losses.c_to_fact`
    converts a KL weight ``c`` on E1's scale (KL in nats against the pixel-summed BCE) into it.

    Weight initialisation uses Keras' global RNG: call :func:`klvae.seeding.set_global_seed`
    first for repeatable weights.
    """
    vae = VAE(build_face_encoder(z_dim), build_face_decoder(z_dim), fact=fact, seed=seed, name="face_vae")
    vae.build((None, *INPUT_SHAPE))
    return vae


@keras.saving.register_keras_serializable(package="klvae")
class FaceAE(VAE):
    """Plain, deterministic autoencoder on the VAE's networks (E3's AE; no KL term).

    ``call(x)`` = ``decoder(encoder(x)[0])``: the decoder gets ``z = z_mean``; the loss is
    the reconstruction term only, so gradients never see a KL. The encoder's ``z_log_var``
    head is frozen (not trainable) and unused. The ``kl_loss`` metric still reports
    ``KL_mean(z_mean, z_log_var)`` of the (unused) posterior as a monitor of how far the
    codes spread from N(0, I); it has weight 0 in ``loss``.

    Training reuses :class:`VAE`'s ``compute_loss`` unchanged; only :meth:`call` and
    :meth:`loss_from_outputs` differ.

    Args: as :class:`VAE` in the posts' form; ``fact`` is accepted for config round trips and must be 0.

    Raises:
        ValueError: a non-zero ``fact``.
    """

    def __init__(self, encoder, decoder, fact: float = 0.0, seed: int = 0, **kwargs):
        if fact:
            raise ValueError(f"FaceAE has no KL term; got fact={fact}")
        super().__init__(encoder, decoder, fact=0.0, seed=seed, **kwargs)
        encoder.get_layer("z_log_var").trainable = False

    def call(self, x, training=False):
        """``(x_hat, z_mean, z_log_var)`` with ``x_hat = decoder(z_mean)`` (no sampling)."""
        z_mean, z_log_var = self.encoder(x, training=training)
        return self.decoder(z_mean, training=training), z_mean, z_log_var

    def loss_from_outputs(self, x, outputs):
        """``(reconstruction, reconstruction, KL monitor)``: the loss is the reconstruction term alone."""
        x_hat, z_mean, z_log_var = outputs
        rec = self._reconstruction_fn(x, x_hat)
        kl = ops.stop_gradient(self._kl_fn(z_mean, z_log_var))
        return rec, rec, kl


def build_face_ae(z_dim: int = Z_DIM, seed: int = 0) -> FaceAE:
    """E3's plain AE: the networks of :func:`build_face_vae`, ``z = z_mean``, mean-BCE loss only."""
    ae = FaceAE(build_face_encoder(z_dim), build_face_decoder(z_dim), seed=seed, name="face_ae")
    ae.build((None, *INPUT_SHAPE))
    return ae


def build_face_model(kind: str, fact: float | None = None, z_dim: int = Z_DIM, seed: int = 0) -> VAE:
    """``kind="vae"`` -> :func:`build_face_vae` (``fact`` None = :data:`DEFAULT_FACT`);
    ``kind="ae"`` -> :func:`build_face_ae` (``fact`` must be None or 0).

    Raises:
        ValueError: unknown kind, or a non-zero ``fact`` for the AE.
    """
    if kind == "vae":
        return build_face_vae(DEFAULT_FACT if fact is None else float(fact), z_dim, seed)
    if kind == "ae":
        if fact:
            raise ValueError(f"the plain AE has no KL term; fact must be None or 0, got {fact} "
                             f"(for the post's 'basically an AE' use kind='vae', fact={POST_AE_FACT})")
        return build_face_ae(z_dim, seed)
    raise ValueError(f"unknown model kind {kind!r}; choose 'vae' or 'ae'")


def load_face_model(path):
    """Load an E3 model written by :func:`klvae.experiments.e3.train` (``.keras``), uncompiled.

    Importing this module registers the custom classes (``FaceAE``, the VAE, ``Sampling``).
    """
    return keras.saving.load_model(path, compile=False)


__all__ = ["load_face_model", "build_face_encoder", "build_face_decoder", "build_face_vae", "build_face_ae",
           "build_face_model", "FaceAE", "DEFAULT_FACT", "POST_AE_FACT", "Z_DIM",
           "INPUT_SHAPE",
           "N_PARAMETERS"]
