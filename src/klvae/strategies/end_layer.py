"""Strategy ``end_layer`` -- post IV, "solution I": a loss layer on top of Encoder -> Decoder.

Post IV, quoted in post VII: ``CustomVariationalLayer()([mu, log_var, encoder_input,
decoder_output])`` computes the total loss from the four tensors it is given explicitly,
calls ``self.add_loss(total_loss, inputs=inputs)`` and ``self.add_metric(...)`` three times,
and returns the decoder output; the model is compiled with ``loss=None`` and fitted on the
images alone.

Keras 3 form (this module): the same layer, with the loss terms of :mod:`klvae.losses`
via ``keras.ops``; it adds the total as two ``add_loss`` terms, the BCE and ``fact * KL``
(Keras 3's ``add_loss`` has no ``inputs`` argument; Keras sums the terms, so the total is
the post's), and the model (:class:`klvae.strategies.base.LayerLossModel`) reports each
term with a ``Mean`` tracker in place of ``add_metric`` (removed in Keras 3; a layer
cannot update metrics in ``call()`` on JAX). Keras' own ``loss`` tracker reports the total.
"""

from __future__ import annotations

import keras

from klvae.strategies.base import FACT, KLStrategy, LayerLossModel, kl_mean, make_sampling, reconstruction_loss
from klvae.strategies.registry import register


@keras.saving.register_keras_serializable(package="klvae")
class VAELossLayer(keras.layers.Layer):
    """Adds ``mean BCE + fact * KL_mean`` as layer losses; returns the reconstruction unchanged.

    Inputs: ``[z_mean, z_log_var, x, x_hat]`` -- float32 ``(b, z_dim)``, ``(b, z_dim)``,
    ``(b, 28, 28)``, ``(b, 28, 28)``. Output: ``x_hat``. Layer losses, in this order: the
    BCE (nats per pixel), ``fact * KL_mean``.

    Args:
        fact: KL weight.
    """

    def __init__(self, fact: float = FACT, **kwargs):
        super().__init__(**kwargs)
        self.fact = float(fact)

    def call(self, inputs):
        z_mean, z_log_var, x, x_hat = inputs
        self.add_loss(reconstruction_loss(x, x_hat))
        self.add_loss(self.fact * kl_mean(z_mean, z_log_var))
        return x_hat

    def compute_output_shape(self, input_shape):
        return input_shape[3]

    def get_config(self):
        return {**super().get_config(), "fact": self.fact}


@register
class EndLayer(KLStrategy):
    """Post IV (solution I): total loss added by a layer at the end of the model; ``compile(loss=None)``."""

    name = "end_layer"
    post = "IV"
    title = "loss layer at the end (solution I)"
    description = ("A custom layer on top of Encoder -> Decoder receives [mu, log_var, input, output] "
                   "explicitly and adds the whole loss (BCE + fact * KL) with add_loss(); compiled with "
                   "loss=None and fitted on the images alone.")
    keras3_form = ("add_loss() without the removed `inputs=` argument, the total as two terms (BCE, fact*KL); "
                   "model-level Mean trackers instead of the removed add_metric() (no metric updates in a "
                   "layer's call() on JAX); keras.ops instead of tf.keras.backend.")

    def build(self, encoder, decoder, fact=FACT, seed=0, sampling=None):
        x = keras.Input(shape=encoder.input.shape[1:], name="vae_input")
        z_mean, z_log_var = encoder(x)
        z = make_sampling(seed, sampling)([z_mean, z_log_var])
        x_hat = decoder(z)
        out = VAELossLayer(fact, name="vae_loss")([z_mean, z_log_var, x, x_hat])
        return LayerLossModel(x, out, fact=fact, reconstruction_in_layer=True, name="vae_end_layer")

    def networks(self, model):
        return model.get_layer("encoder"), model.get_layer("decoder")

    def compile_kwargs(self, fact=FACT):
        return {"loss": None}

    def fit_data(self, images, z_dim):
        return images  # no targets: the loss layer has everything it needs
