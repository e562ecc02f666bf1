"""One interface for the five ways of adding the KL loss to a Keras VAE (E2, posts IV-VIII).

Every strategy trains the same objective (the negative ELBO in the posts' scaling)

    loss = mean BCE(x, x_hat) + fact * KL_mean(z_mean, z_log_var),
    KL_mean = -mean(1 + z_log_var - z_mean^2 - exp(z_log_var)),

with both terms taken from :mod:`klvae.losses` (:func:`~klvae.losses.bce_mean`,
:func:`~klvae.losses.kl_divergence_mean`) and ``fact`` the KL weight (6.5e-4 in the
posts). What differs is only *where* Keras learns about the KL term: a loss layer at the
end of the model (IV), a loss layer inside the encoder (V), extra model outputs with their
own compiled losses (VI), a model-level loss (VII) or a hand-written ``train_step`` (VIII).

A strategy is a small stateless object. It turns a shared ``(encoder, decoder)`` pair
(:mod:`klvae.models.conv`) into the model that ``fit`` trains, compiles it, maps a dataset of
images to what its ``fit`` needs, computes the training loss and its gradients on one batch
(the same computation as its ``train_step``; used by the equivalence check), and reads
``loss`` / ``reconstruction_loss`` / ``kl_loss`` out of Keras' logs. The encoder and decoder
are used as nested models, never copied: after training they hold the trained weights
whatever the strategy.

Units: ``reconstruction_loss`` is the BCE in nats per pixel; ``kl_loss`` is ``KL_mean``
(twice the KL divergence per latent dimension, in nats, unscaled by ``fact``); ``loss`` is
the total objective above.
"""

from __future__ import annotations

import abc
import math
from typing import ClassVar

import keras
import numpy as np

from klvae import backend, losses
from klvae.models.vae import Sampling
from klvae.reference import E2_POST_FACT

#: The posts' KL weight for E2 (posts V-VII, cell 6 of post VII), defined once in :mod:`klvae.reference`.
FACT = E2_POST_FACT
#: Canonical metric names every strategy reports.
METRIC_NAMES = ("loss", "reconstruction_loss", "kl_loss")


def reconstruction_loss(y_true, y_pred):
    """Keras loss function: :func:`klvae.losses.bce_mean` of the batch (scalar, nats per pixel)."""
    return losses.bce_mean(y_true, y_pred)


def batch_size_of(t):
    """Batch size of tensor ``t`` as a float32 scalar tensor (weight for ``Mean`` trackers)."""
    return keras.ops.cast(keras.ops.shape(t)[0], "float32")


def kl_mean(z_mean, z_log_var):
    """``KL_mean`` of E2 via :func:`klvae.losses.kl_divergence_mean` (scalar float32)."""
    return losses.kl_divergence_mean(z_mean, z_log_var)


class KLStrategy(abc.ABC):
    """How one post adds the KL loss to the VAE; subclasses are registered by name.

    Class attributes:
        name: registry key, e.g. ``"encoder_layer"``.
        post: the post that describes it (``"IV"`` ... ``"VIII"``).
        title: short human title.
        description: one paragraph for the report.
        baseline: True for the no-KL reference (not one of the five strategies).
        keras3_form: what this project changed to make the post's form run under Keras 3
            (empty when the post's form runs as written).
    """

    name: ClassVar[str] = ""
    post: ClassVar[str] = ""
    title: ClassVar[str] = ""
    description: ClassVar[str] = ""
    baseline: ClassVar[bool] = False
    keras3_form: ClassVar[str] = ""

    # -- model -----------------------------------------------------------------------------
    @abc.abstractmethod
    def build(self, encoder: keras.Model, decoder: keras.Model, fact: float = FACT, seed: int = 0,
              sampling: keras.layers.Layer | None = None) -> keras.Model:
        """The trainable model around ``encoder`` ``(b,28,28) -> [z_mean, z_log_var]`` and ``decoder``.

        Args:
            encoder, decoder: the shared networks (:func:`klvae.models.conv.build_conv_pair`);
                used as nested models, so their weights are the trained ones after ``fit``.
            fact: KL weight (dimensionless).
            seed: seed of the reparameterization's ``Sampling`` layer.
            sampling: a layer replacing ``Sampling(seed)``; e.g.
                :class:`klvae.models.vae.FixedNoiseSampling` to fix eps.

        Returns:
            An uncompiled ``keras.Model`` named ``vae_<strategy name>``.
        """

    @abc.abstractmethod
    def networks(self, model: keras.Model) -> tuple[keras.Model, keras.Model]:
        """``(encoder, decoder)`` nested in a model built by :meth:`build` (or reloaded from ``.keras``).

        Raises:
            NotImplementedError: for the no-KL baseline (it has no ``z_log_var`` head).
        """

    def compile(self, model: keras.Model, learning_rate: float = 1e-3, fact: float = FACT, **kwargs) -> None:
        """Compile ``model`` with Adam(``learning_rate``) and this strategy's losses/metrics."""
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), **self.compile_kwargs(fact),
                      **kwargs)

    @abc.abstractmethod
    def compile_kwargs(self, fact: float = FACT) -> dict:
        """``loss`` / ``metrics`` keyword arguments for ``model.compile``."""

    # -- data ------------------------------------------------------------------------------
    def fit_data(self, images: np.ndarray, z_dim: int):
        """Map one batch of images (float32 NumPy ``(b,28,28)`` in [0, 1]) to what ``fit`` takes.

        Default: ``(x, x)`` (images as their own targets, as the posts' ``fit(x, x)``).
        Used as the ``transform`` of :class:`klvae.data.stream.ImageBatches`.
        """
        return images, images

    # -- one batch, for the equivalence check -----------------------------------------------
    def loss_and_gradients(self, model: keras.Model, x, variables, z_dim: int) -> tuple:
        """Training loss on the batch ``x`` and its gradients w.r.t. ``variables``.

        Runs what the compiled ``train_step`` runs, on the active backend: the batch mapped
        by :meth:`fit_data`, a forward pass with ``training=True`` and
        ``model.compute_loss`` (compiled losses, ``add_loss`` terms and ``compute_loss``
        overrides), differentiated by the backend's own autodiff
        (:func:`klvae.backend.loss_and_gradients`). The model must be compiled.

        Args:
            model: the built and compiled model.
            x: float32 ``(b,28,28)`` images in [0, 1].
            variables: the variables to differentiate (e.g. encoder + decoder weights).
            z_dim: latent dimension (for strategies whose targets depend on it).

        Returns:
            ``(loss, grads)``: scalar float32 tensor and a list of tensors (None where a
            variable does not influence the loss).
        """
        data = self.fit_data(np.asarray(x, dtype=np.float32), z_dim)
        x_in, y, sw = keras.utils.unpack_x_y_sample_weight(data)
        return backend.loss_and_gradients(model, x_in, y, sw, variables)

    # -- reporting -------------------------------------------------------------------------
    def read_metrics(self, logs: dict, fact: float = FACT) -> dict:
        """``{"loss", "reconstruction_loss", "kl_loss"}`` (floats) from Keras logs of this strategy.

        Missing entries are NaN. Default: the logs already use the canonical names.
        """
        return {k: float(logs[k]) if k in logs else math.nan for k in METRIC_NAMES}

    def __repr__(self) -> str:
        return f"<KLStrategy {self.name} (post {self.post})>"


def make_sampling(seed: int, sampling: keras.layers.Layer | None) -> keras.layers.Layer:
    """``sampling`` if given, else the seeded :class:`klvae.models.vae.Sampling` layer."""
    return sampling if sampling is not None else Sampling(seed=seed, name="sampling")


@keras.saving.register_keras_serializable(package="klvae")
class LayerLossModel(keras.Model):
    """Functional model whose KL term reaches Keras through a layer's ``add_loss`` (posts IV and V).

    ``compute_loss`` is Keras' own (compiled losses plus the layers' ``add_loss`` terms);
    this class only reads the terms back to report ``reconstruction_loss`` and ``kl_loss``
    with two ``Mean`` trackers weighted by batch size. Layers cannot update metrics inside
    ``call()`` on the JAX backend (the layer's metric variables are not part of the state
    ``stateless_call`` threads through; Keras 3.15 raises ``TypeError: 'NoneType' object is
    not callable``), so the trackers live here, at model level, on every backend.

    Args:
        inputs, outputs: as for a functional ``keras.Model``.
        fact: KL weight; the last layer loss of a call is ``fact * KL_mean``.
        reconstruction_in_layer: True when the first layer loss is the BCE (post IV: the
            layer adds both terms); False when the BCE is the compiled loss (post V), then
            the reconstruction is ``loss - fact * KL_mean``.
    """

    def __init__(self, *args, fact: float = FACT, reconstruction_in_layer: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fact = float(fact)
        self.reconstruction_in_layer = bool(reconstruction_in_layer)
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        total = super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
        terms = self.losses
        if not terms:  # Keras' symbolic build calls compute_loss without a forward pass
            return total
        fact_kl = terms[-1]
        rec = terms[0] if self.reconstruction_in_layer else total - fact_kl
        n = batch_size_of(keras.tree.flatten(x)[0])
        self.reconstruction_tracker.update_state(rec, sample_weight=n)
        self.kl_tracker.update_state(fact_kl / self.fact, sample_weight=n)
        return total

    def get_config(self):
        return {**super().get_config(), "fact": self.fact, "reconstruction_in_layer": self.reconstruction_in_layer}


@keras.saving.register_keras_serializable(package="klvae")
class Identity(keras.layers.Layer):
    """Pass-through layer; gives a model output its name (Keras 3 names outputs by layer)."""

    def call(self, inputs):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


__all__ = ["FACT", "METRIC_NAMES", "KLStrategy", "reconstruction_loss", "batch_size_of",
           "kl_mean", "make_sampling", "Identity", "LayerLossModel"]
