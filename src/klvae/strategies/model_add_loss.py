"""Strategy ``model_add_loss`` -- post VII: the KL loss added to the functional model.

Post VII::

    def get_kl_loss(mu, log_var):
        kl_loss = -fact * tf.reduce_mean(1 + log_var - tf.square(mu) - tf.exp(log_var))
        return kl_loss
    res_kl = get_kl_loss(mu=self.mu, log_var=self.log_var)
    self.model.add_loss(res_kl)
    self.model.add_metric(res_kl, name='kl', aggregation='mean')
    self.model.compile(optimizer=optimizer, loss="binary_crossentropy",
                       metrics=[tf.keras.metrics.BinaryCrossentropy(name='bce')])
    self.model.fit(x_train, x_train, ...)

Keras 3 removed symbolic ``Model.add_loss`` (Functional.add_loss raises
``NotImplementedError``) and ``add_metric``; tf ops on symbolic ``KerasTensor``s raise
``ValueError``. See :mod:`klvae.strategies.compat` for what happens exactly.

Keras 3 form (this module): the functional model exposes the symbolic ``z_mean`` and
``z_log_var`` as extra outputs and a model-level ``compute_loss()`` override adds
``fact * KL_mean`` of them to the compiled BCE -- the KL term is still a function of the
model's own symbolic tensors attached at model level, not a layer, which is what
``model.add_loss(res_kl)`` expressed. Two ``Mean`` trackers replace ``add_metric``.
"""

from __future__ import annotations

import keras

from klvae.strategies.base import FACT, KLStrategy, batch_size_of, kl_mean, make_sampling, reconstruction_loss
from klvae.strategies.registry import register


@keras.saving.register_keras_serializable(package="klvae")
class ModelLevelKLModel(keras.Model):
    """Functional VAE whose model-level loss adds ``fact * KL_mean`` to the compiled loss.

    Built like a functional model: ``ModelLevelKLModel(inputs, [x_hat, z_mean, z_log_var], fact=...)``.
    ``compute_loss`` hands ``x_hat`` (output 0) to the compiled loss (the BCE) and adds
    ``fact * KL_mean(z_mean, z_log_var)`` of outputs 1 and 2. Calling the model returns all
    three outputs. Metrics: ``loss`` (Keras' own tracker), ``reconstruction_loss``, ``kl_loss``.

    Args:
        inputs, outputs: as for a functional ``keras.Model``; outputs must be
            ``[x_hat, z_mean, z_log_var]``.
        fact: KL weight.
    """

    def __init__(self, *args, fact: float = FACT, **kwargs):
        # (*args, **kwargs) keeps Keras' functional serialisation (get_config/from_config) working
        super().__init__(*args, **kwargs)
        self.fact = float(fact)
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        x_hat, z_mean, z_log_var = y_pred
        rec = super().compute_loss(x=x, y=y, y_pred=x_hat, sample_weight=sample_weight, training=training)
        kl = kl_mean(z_mean, z_log_var)
        n = batch_size_of(z_mean)  # weight batches by size, as Keras' own ``loss`` tracker does
        self.reconstruction_tracker.update_state(rec, sample_weight=n)
        self.kl_tracker.update_state(kl, sample_weight=n)
        return rec + self.fact * kl

    def get_config(self):
        return {**super().get_config(), "fact": self.fact}


@register
class ModelAddLoss(KLStrategy):
    """Post VII: model-level KL loss (Keras 3: ``compute_loss`` override; post: ``model.add_loss``)."""

    name = "model_add_loss"
    post = "VII"
    title = "model.add_loss() on the functional model"
    description = ("The KL loss is computed from the model's symbolic mu/log_var tensors and attached to "
                   "the whole model (post: model.add_loss(kl) + add_metric; Keras 3: a compute_loss() "
                   "override of a functional model that also outputs mu/log_var); the BCE is compiled.")
    keras3_form = ("Keras 3 has no symbolic Model.add_loss: the functional model also outputs mu/log_var and "
                   "overrides compute_loss() to add fact*KL to the compiled BCE; Mean trackers replace add_metric.")

    def build(self, encoder, decoder, fact=FACT, seed=0, sampling=None):
        x = keras.Input(shape=encoder.input.shape[1:], name="vae_input")
        z_mean, z_log_var = encoder(x)
        z = make_sampling(seed, sampling)([z_mean, z_log_var])
        return ModelLevelKLModel(x, [decoder(z), z_mean, z_log_var], fact=fact, name="vae_model_add_loss")

    def networks(self, model):
        return model.get_layer("encoder"), model.get_layer("decoder")

    def compile_kwargs(self, fact=FACT):
        return {"loss": reconstruction_loss}
