"""Strategy ``gradient_tape`` -- post VIII: a ``keras.Model`` subclass with its own ``train_step``.

Seed (post VIII, after F. Chollet's keras.io VAE example; the post is not among the seeds,
seed 002 uses its class for the faces): ``class VAE(keras.Model)`` computes BCE and KL
under ``tf.GradientTape`` in ``train_step``, applies the gradients itself and tracks total,
reconstruction and KL losses with ``Mean`` metrics; ``fit`` gets the images only.

This project's implementation is :class:`klvae.models.vae.VAE` (with ``reconstruction =
"bce_mean"``, ``kl = "kl_seed_mean"``, ``kl_weight = fact``); this module only wraps it.
"""

from __future__ import annotations

import tensorflow as tf

from klvae.models.vae import VAE
from klvae.strategies.base import FACT, KLStrategy
from klvae.strategies.registry import register


@register
class GradientTape(KLStrategy):
    """Post VIII: :class:`klvae.models.vae.VAE` -- custom ``train_step`` under ``tf.GradientTape``."""

    name = "gradient_tape"
    seed_post = "VIII"
    title = "custom train_step with GradientTape"
    description = ("A keras.Model subclass computes BCE and KL in its own train_step under tf.GradientTape, "
                   "applies the gradients and reports total/BCE/KL through Mean trackers; fit() gets the "
                   "images only (keras.io VAE example).")
    keras3_form = ""

    def build(self, encoder, decoder, fact=FACT, seed=0, sampling=None):
        vae = VAE(encoder, decoder, kl_weight=fact, reconstruction="bce_mean", kl="kl_seed_mean", seed=seed,
                  sampling=sampling, name="vae_gradient_tape")
        vae.build((None, *encoder.input.shape[1:]))
        return vae

    def networks(self, model):
        return model.encoder, model.decoder

    def compile_kwargs(self, fact=FACT):
        return {}

    def fit_data(self, images, z_dim):
        return images

    def loss_and_gradients(self, model, x, variables, z_dim):
        """The loss of :meth:`VAE.train_step` (``loss_terms(x, training=True)``) and its gradients."""
        x = tf.convert_to_tensor(x, dtype=tf.float32)
        with tf.GradientTape() as tape:
            total, _, _ = model.loss_terms(x, training=True)
        return total, tape.gradient(total, list(variables))
