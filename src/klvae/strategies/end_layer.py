"""Strategy ``end_layer`` -- post IV, "solution I": a loss layer on top of Encoder -> Decoder.

Seed (post IV, in seed 001): ``CustomVariationalLayer()([mu, log_var, encoder_input,
decoder_output])`` computes the total loss from the four tensors it is given explicitly,
calls ``self.add_loss(total_loss, inputs=inputs)`` and ``self.add_metric(...)`` three times,
and returns the decoder output; the model is compiled with ``loss=None`` and fitted on the
images alone.

Keras 3 form (this module): the same layer, with the loss terms of :mod:`klvae.losses`
via ``keras.ops``, ``self.add_loss(total)`` (Keras 3's ``add_loss`` has no ``inputs``
argument) and two ``keras.metrics.Mean`` trackers owned by the layer in place of
``add_metric`` (removed in Keras 3); Keras' own ``loss`` tracker reports the total.
"""

from __future__ import annotations

import keras

from klvae.strategies.base import FACT, KLStrategy, batch_size_of, kl_seed, make_sampling, reconstruction_loss
from klvae.strategies.registry import register


@keras.saving.register_keras_serializable(package="klvae")
class VAELossLayer(keras.layers.Layer):
    """Adds ``mean BCE + fact * KL_seed`` as a layer loss; returns the reconstruction unchanged.

    Inputs: ``[z_mean, z_log_var, x, x_hat]`` -- float32 ``(b, z_dim)``, ``(b, z_dim)``,
    ``(b, 28, 28)``, ``(b, 28, 28)``. Output: ``x_hat``.
    Metrics: ``reconstruction_loss`` (nats per pixel) and ``kl_loss`` (KL_seed), means over
    batches weighted by batch size.

    Args:
        fact: KL weight.
    """

    def __init__(self, fact: float = FACT, **kwargs):
        super().__init__(**kwargs)
        self.fact = float(fact)
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    def call(self, inputs):
        z_mean, z_log_var, x, x_hat = inputs
        rec = reconstruction_loss(x, x_hat)
        kl = kl_seed(z_mean, z_log_var)
        self.add_loss(rec + self.fact * kl)
        n = batch_size_of(x)  # weight batches by size, as Keras' own ``loss`` tracker does
        self.reconstruction_tracker.update_state(rec, sample_weight=n)
        self.kl_tracker.update_state(kl, sample_weight=n)
        return x_hat

    def compute_output_shape(self, input_shape):
        return input_shape[3]

    def get_config(self):
        return {**super().get_config(), "fact": self.fact}


@register
class EndLayer(KLStrategy):
    """Post IV (solution I): total loss added by a layer at the end of the model; ``compile(loss=None)``."""

    name = "end_layer"
    seed_post = "IV"
    title = "loss layer at the end (solution I)"
    description = ("A custom layer on top of Encoder -> Decoder receives [mu, log_var, input, output] "
                   "explicitly and adds the whole loss (BCE + fact * KL) with add_loss(); compiled with "
                   "loss=None and fitted on the images alone.")
    keras3_form = ("add_loss(total) without the removed `inputs=` argument; Mean trackers owned by the layer "
                   "instead of the removed add_metric(); keras.ops instead of tf.keras.backend.")

    def build(self, encoder, decoder, fact=FACT, seed=0, sampling=None):
        x = keras.Input(shape=encoder.input.shape[1:], name="vae_input")
        z_mean, z_log_var = encoder(x)
        z = make_sampling(seed, sampling)([z_mean, z_log_var])
        x_hat = decoder(z)
        out = VAELossLayer(fact, name="vae_loss")([z_mean, z_log_var, x, x_hat])
        return keras.Model(x, out, name="vae_end_layer")

    def networks(self, model):
        return model.get_layer("encoder"), model.get_layer("decoder")

    def compile_kwargs(self, fact=FACT):
        return {"loss": None}

    def fit_data(self, images, z_dim):
        return images  # no targets: the loss layer has everything it needs
