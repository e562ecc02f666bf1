"""The VAE building blocks shared by all experiments.

* :class:`Sampling` -- the reparameterization trick ``z = mu + exp(0.5 log sigma^2) * eps``
  with ``eps ~ N(0, I)`` drawn from a seeded ``keras.random.SeedGenerator`` whose state is
  saved with the layer's weights (so a checkpoint restores it and a resumed run draws the
  same eps as an uninterrupted one).
* :class:`FixedNoiseSampling` -- the same reparameterization with a given, fixed eps (for
  comparing several models on identical z; the E2 equivalence check).
* :class:`VAE` -- a ``keras.Model`` subclass with its own ``train_step`` under
  ``tf.GradientTape`` and ``keras.metrics.Mean`` trackers for the total loss, the
  reconstruction loss and the KL divergence, after the keras.io VAE example and post VIII
  of the seed series ("gradient_tape"). The loss is ``reconstruction + kl_weight * KL``
  with the reconstruction and KL terms chosen by name from :mod:`klvae.losses`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from klvae import losses


@keras.saving.register_keras_serializable(package="klvae")
class Sampling(keras.layers.Layer):
    """Reparameterization trick: ``z = z_mean + exp(0.5 * z_log_var) * eps``, ``eps ~ N(0, I)``.

    Inputs: ``[z_mean, z_log_var]``, float32 ``(batch, z_dim)`` each.
    Output: float32 ``(batch, z_dim)``.

    Args:
        seed: int seed of the layer's ``SeedGenerator``; the sequence of eps is a pure
            function of it and of the number of calls so far.
    """

    def __init__(self, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.seed = int(seed)
        self.seed_generator = keras.random.SeedGenerator(self.seed)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}

    # Keras saves a layer's own weights only, not its SeedGenerator's state, so a model
    # restored from a checkpoint would draw eps from the start of the sequence again. Saving
    # the state with the weights makes a resumed run draw the eps an uninterrupted one draws.
    _STATE_KEY = "seed_generator_state"

    def save_own_variables(self, store):
        """Save the ``SeedGenerator`` state (int ``(2,)``) with the weights."""
        super().save_own_variables(store)
        store[self._STATE_KEY] = np.asarray(keras.ops.convert_to_numpy(self.seed_generator.state.value))

    def load_own_variables(self, store):
        """Restore the ``SeedGenerator`` state when the file has it (files written before it was saved do not)."""
        keys = set(store.keys())
        if self._STATE_KEY in keys:
            self.seed_generator.state.assign(np.asarray(store[self._STATE_KEY]))
            keys.discard(self._STATE_KEY)
        if keys:
            super().load_own_variables({k: store[k] for k in keys})


class FixedNoiseSampling(keras.layers.Layer):
    """Reparameterization with a fixed, given eps: ``z = z_mean + exp(0.5 * z_log_var) * eps``.

    Same formula as :class:`Sampling` but ``eps`` is a constant array, so several models fed
    the same batch see exactly the same z. Used by the E2 equivalence check
    (:func:`klvae.experiments.e2.equivalence`); not meant for training and not serialised.

    Args:
        eps: float32 array ``(batch, z_dim)``; the batch size of every call must equal its
            first dimension.
    """

    def __init__(self, eps, **kwargs):
        super().__init__(**kwargs)
        self._eps = np.asarray(eps, dtype="float32")

    def call(self, inputs):
        z_mean, z_log_var = inputs
        eps = ops.convert_to_tensor(self._eps)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def compute_output_shape(self, input_shape):
        return input_shape[0]


@keras.saving.register_keras_serializable(package="klvae")
class VAE(keras.Model):
    """Encoder + sampling + decoder, trained on ``reconstruction + kl_weight * KL``.

    Args:
        encoder: ``keras.Model`` mapping images ``(batch, *image_shape)`` float32 in [0, 1]
            to ``[z_mean, z_log_var]``, each ``(batch, z_dim)``.
        decoder: ``keras.Model`` mapping ``z`` ``(batch, z_dim)`` to probabilities with
            the image shape.
        kl_weight: the KL weight beta (E1's coefficient c, E2's ``fact``); 0 trains a
            plain autoencoder with a stochastic bottleneck.
        reconstruction: name in :data:`klvae.losses.RECONSTRUCTION_LOSSES`.
        kl: name in :data:`klvae.losses.KL_TERMS`.
        seed: seed of the sampling layer.
        sampling: optional layer used instead of ``Sampling(seed)`` (e.g.
            :class:`FixedNoiseSampling` for the E2 equivalence check); not serialised.

    ``fit`` takes datasets of images only (no targets). The logged metrics are
    ``loss``, ``reconstruction_loss`` and ``kl_loss``, in the units of the chosen terms
    (nats per sample for E1's terms).

    Raises:
        KeyError: for an unknown loss name.
    """

    def __init__(self, encoder, decoder, kl_weight: float = 1.0, reconstruction: str = "bce_pixel_sum",
                 kl: str = "kl_sum", seed: int = 0, sampling: keras.layers.Layer | None = None, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.kl_weight = float(kl_weight)
        self.reconstruction = reconstruction
        self.kl = kl
        self.seed = int(seed)
        self._reconstruction_fn = losses.get_reconstruction_loss(reconstruction)
        self._kl_fn = losses.get_kl_term(kl)
        self.sampling = sampling if sampling is not None else Sampling(seed=seed, name="sampling")
        self.total_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    def build(self, input_shape=None):
        """Nothing to create: the encoder and decoder are built functional models."""
        self.built = True

    @property
    def metrics(self):
        return [self.total_tracker, self.reconstruction_tracker, self.kl_tracker]

    def call(self, x, training=False):
        z_mean, z_log_var = self.encoder(x, training=training)
        z = self.sampling([z_mean, z_log_var])
        return self.decoder(z, training=training)

    def loss_terms(self, x, training=False):
        """Forward pass returning ``(total, reconstruction, kl)`` scalar tensors for a batch ``x``."""
        z_mean, z_log_var = self.encoder(x, training=training)
        z = self.sampling([z_mean, z_log_var])
        x_hat = self.decoder(z, training=training)
        rec = self._reconstruction_fn(x, x_hat)
        kl = self._kl_fn(z_mean, z_log_var)
        return rec + self.kl_weight * kl, rec, kl

    def _update(self, total, rec, kl):
        self.total_tracker.update_state(total)
        self.reconstruction_tracker.update_state(rec)
        self.kl_tracker.update_state(kl)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape:
            total, rec, kl = self.loss_terms(x, training=True)
        grads = tape.gradient(total, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return self._update(total, rec, kl)

    def test_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        total, rec, kl = self.loss_terms(x, training=False)
        return self._update(total, rec, kl)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            "kl_weight": self.kl_weight, "reconstruction": self.reconstruction,
            "kl": self.kl, "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)
