"""The VAE building blocks shared by all experiments.

* :class:`Sampling` -- the reparameterization trick ``z = mu + exp(0.5 log sigma^2) * eps``
  with ``eps ~ N(0, I)`` drawn from a seeded ``keras.random.SeedGenerator`` whose state is
  saved with the layer's weights (so a checkpoint restores it and a resumed run draws the
  same eps as an uninterrupted one).
* :class:`FixedNoiseSampling` -- the same reparameterization with a given, fixed eps (for
  comparing several models on identical z; the E2 equivalence check).
* :class:`VAE` -- a ``keras.Model`` subclass whose ``compute_loss`` override adds the
  KL divergence to the reconstruction loss, with ``keras.metrics.Mean`` trackers for the
  total loss, the reconstruction loss and the KL divergence, after the keras.io VAE
  example. The loss has one of the two forms of :data:`LOSS_FORMS`, named by its KL weight:
  ``c`` (E1, the KL-coefficient post: pixel-summed BCE + c * KL in nats) or ``fact`` (E2 and
  E3, posts IV-IX: mean BCE + fact * KL_mean). Backend-neutral: it trains with Keras' own
  ``train_step`` on TensorFlow, JAX and PyTorch.
"""

from __future__ import annotations

import keras
import numpy as np
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


#: The two loss forms, by the name of their KL weight: ``(reconstruction term, KL term)`` of
#: :mod:`klvae.losses`. ``c``: ``bce_pixel_sum + c * kl_sum``, nats per image (E1, the
#: KL-coefficient post; c is the beta of beta-VAEs). ``fact``: ``bce_mean + fact * kl_mean``,
#: per pixel value (E2, E3; posts IV-IX). :func:`klvae.losses.c_to_fact` converts between them.
LOSS_FORMS = {"c": ("bce_pixel_sum", "kl_sum"), "fact": ("bce_mean", "kl_mean")}


@keras.saving.register_keras_serializable(package="klvae")
class VAE(keras.Model):
    """Encoder + sampling + decoder, trained on ``reconstruction + weight * KL`` in one of
    the :data:`LOSS_FORMS`, chosen by the name of the weight: ``c`` or ``fact``.

    Backend-neutral (``keras.ops`` only): Keras' own ``train_step`` on every backend does
    the forward pass (:meth:`call`, which returns ``(x_hat, z_mean, z_log_var)``) and calls
    :meth:`compute_loss`, which turns the outputs into the loss terms
    (:meth:`loss_from_outputs`) and updates the three trackers -- the Keras 3 form of the
    keras.io VAE example (which wrote its own ``train_step`` under ``tf.GradientTape``;
    post VIII's hand-written step is :class:`klvae.strategies.gradient_tape.HandwrittenStepVAE`).

    Args:
        encoder: ``keras.Model`` mapping images ``(batch, *image_shape)`` float32 in [0, 1]
            to ``[z_mean, z_log_var]``, each ``(batch, z_dim)``.
        decoder: ``keras.Model`` mapping ``z`` ``(batch, z_dim)`` to probabilities with
            the image shape.
        c: the KL coefficient of E1's form (``bce_pixel_sum + c * kl_sum``, nats per image).
        fact: the KL weight of the posts' form (``bce_mean + fact * kl_mean``, E2 and E3).
            Give exactly one of ``c`` and ``fact``; 0 trains a plain autoencoder with a
            stochastic bottleneck. The model keeps it under the same name (``vae.c`` or
            ``vae.fact``; :attr:`weight_name`) and saves it so in its config.
        seed: seed of the sampling layer.
        sampling: optional layer used instead of ``Sampling(seed)`` (e.g.
            :class:`FixedNoiseSampling` for the E2 equivalence check); not serialised.

    ``fit`` takes batches of images only (no targets). The logged metrics are ``loss``,
    ``reconstruction_loss`` and ``kl_loss``, in the units of the form's terms (nats per
    image for ``c``). Each tracker weights a batch by its size, so an epoch's (or a
    test set's) value is the mean over images even when the last batch is smaller.

    Raises:
        TypeError: neither or both of ``c`` and ``fact`` given.
        ValueError: a negative weight.
    """

    def __init__(self, encoder, decoder, c: float | None = None, fact: float | None = None, seed: int = 0,
                 sampling: keras.layers.Layer | None = None, **kwargs):
        super().__init__(**kwargs)
        given = {name: w for name, w in (("c", c), ("fact", fact)) if w is not None}
        if len(given) != 1:
            raise TypeError(f"{type(self).__name__} takes exactly one KL weight, c (E1's form: bce_pixel_sum + "
                            f"c * kl_sum) or fact (the posts' form: bce_mean + fact * kl_mean); got "
                            f"{', '.join(given) or 'neither'}")
        (self.weight_name, weight), = given.items()
        if not weight >= 0:
            raise ValueError(f"{self.weight_name} must be >= 0, got {weight}")
        #: The KL weight on the scale of this model's loss form, also as ``self.c`` or ``self.fact``.
        self.weight = float(weight)
        setattr(self, self.weight_name, self.weight)
        self.reconstruction, self.kl = LOSS_FORMS[self.weight_name]
        self.encoder = encoder
        self.decoder = decoder
        self.seed = int(seed)
        self._reconstruction_fn = losses.get_reconstruction_loss(self.reconstruction)
        self._kl_fn = losses.get_kl_term(self.kl)
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
        """``(x_hat, z_mean, z_log_var)`` for images ``x``: the decoder gets a sampled ``z``."""
        z_mean, z_log_var = self.encoder(x, training=training)
        z = self.sampling([z_mean, z_log_var])
        return self.decoder(z, training=training), z_mean, z_log_var

    def loss_from_outputs(self, x, outputs):
        """``(total, reconstruction, kl)`` scalar tensors from the images and :meth:`call`'s outputs."""
        x_hat, z_mean, z_log_var = outputs
        rec = self._reconstruction_fn(x, x_hat)
        kl = self._kl_fn(z_mean, z_log_var)
        return rec + self.weight * kl, rec, kl

    def loss_terms(self, x, training=False):
        """Forward pass returning ``(total, reconstruction, kl)`` scalar tensors for a batch ``x``."""
        return self.loss_from_outputs(x, self(x, training=training))

    def update_trackers(self, x, total, rec, kl) -> dict:
        """Add one batch's loss terms to the trackers, weighted by the batch size; the trackers' results."""
        n = ops.cast(ops.shape(x)[0], "float32")
        for tracker, value in zip(self.metrics, (total, rec, kl), strict=True):
            tracker.update_state(value, sample_weight=n)
        return {m.name: m.result() for m in self.metrics}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The total loss of the batch ``x`` from ``y_pred`` = :meth:`call`'s outputs; updates the trackers."""
        total, rec, kl = self.loss_from_outputs(x, y_pred)
        self.update_trackers(x, total, rec, kl)
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """The trackers' results (:meth:`compute_loss` already updated them)."""
        return {m.name: m.result() for m in self.metrics}

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "decoder": keras.saving.serialize_keras_object(self.decoder),
            self.weight_name: self.weight, "seed": self.seed,
        }

    @classmethod
    def from_config(cls, config):
        """Rebuild from :meth:`get_config`; a config saved before the weight was named by its form
        (``kl_weight`` with ``reconstruction`` and ``kl`` names) is read as ``c`` or ``fact``."""
        config = dict(config)
        if "kl_weight" in config:
            name = "fact" if config.get("kl") in ("kl_mean", "kl_seed_mean") else "c"
            config[name] = config.pop("kl_weight")
        config.pop("reconstruction", None)
        config.pop("kl", None)
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)
