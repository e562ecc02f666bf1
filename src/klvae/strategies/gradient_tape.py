"""Strategy ``gradient_tape`` -- post VIII: a ``keras.Model`` subclass with its own ``train_step``.

Post VIII (after F. Chollet's keras.io VAE example; post VIII is not one of the four posts,
post IX uses its class for the faces): ``class VAE(keras.Model)`` computes BCE and KL
under ``tf.GradientTape`` in ``train_step``, applies the gradients itself and tracks total,
reconstruction and KL losses with ``Mean`` metrics; ``fit`` gets the images only.

A hand-written ``train_step`` is a per-backend idiom in Keras 3 (the guides "Customizing
what happens in ``fit()``" show one for TensorFlow, JAX and PyTorch each), so this
strategy's model, :class:`HandwrittenStepVAE`, is :class:`klvae.models.vae.VAE` (in the posts'
loss form, ``fact``: mean BCE + fact * KL_mean) whose
``train_step`` is :func:`klvae.backend.handwritten_train_step`: ``tf.GradientTape`` on
TensorFlow, a stateless ``jax.value_and_grad`` step on JAX.
"""

from __future__ import annotations

import keras

from klvae import backend
from klvae.models.vae import VAE
from klvae.strategies.base import FACT, KLStrategy
from klvae.strategies.registry import register


@keras.saving.register_keras_serializable(package="klvae")
class HandwrittenStepVAE(VAE):
    """:class:`klvae.models.vae.VAE` trained by post VIII's hand-written ``train_step``.

    Same loss, outputs and trackers as :class:`~klvae.models.vae.VAE` (``evaluate`` uses
    its ``compute_loss``); only training differs: gradients are taken and applied by
    :func:`klvae.backend.handwritten_train_step` instead of Keras' own ``train_step``.

    Raises:
        NotImplementedError: when trained on the ``torch`` backend.
    """

    def train_step(self, *args):
        # TensorFlow/PyTorch call train_step(data); JAX calls train_step(state, data).
        return backend.handwritten_train_step(self, *args)


@register
class GradientTape(KLStrategy):
    """Post VIII: :class:`HandwrittenStepVAE` -- a custom ``train_step`` (``tf.GradientTape`` on TensorFlow)."""

    name = "gradient_tape"
    post = "VIII"
    title = "custom train_step with GradientTape"
    description = ("A keras.Model subclass computes BCE and KL in its own train_step under tf.GradientTape, "
                   "applies the gradients and reports total/BCE/KL through Mean trackers; fit() gets the "
                   "images only (keras.io VAE example).")
    keras3_form = ("on JAX the hand-written train_step is the stateless form of the Keras JAX guide "
                   "(jax.value_and_grad, optimizer.stateless_apply); on TensorFlow it runs as written.")

    def build(self, encoder, decoder, fact=FACT, seed=0, sampling=None):
        vae = HandwrittenStepVAE(encoder, decoder, fact=fact, seed=seed, sampling=sampling, name="vae_gradient_tape")
        vae.build((None, *encoder.input.shape[1:]))
        return vae

    def networks(self, model):
        return model.encoder, model.decoder

    def compile_kwargs(self, fact=FACT):
        return {}

    def fit_data(self, images, z_dim):
        return images
