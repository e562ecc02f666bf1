"""Strategy ``tensor_transfer`` -- post VI: mu and log_var as extra model outputs.

Post VI (code fragments in post VII: ``solution_type == 1``): the
Encoder outputs ``[z, mu, log_var]``; the Decoder takes ``[z, mu, log_var]`` and returns
``[decoded, mu, log_var]``; the VAE has three outputs named ``vae_out_main``,
``vae_out_mu`` and ``vae_out_var`` and is compiled with one standard-signature loss each::

    loss = {'vae_out_main': 'binary_crossentropy', 'vae_out_mu': mu_loss, 'vae_out_var': logvar_loss}
    mu_loss(y_true, y_pred)     = fact * mean(y_pred^2)
    logvar_loss(y_true, y_pred) = -fact * mean(1 + y_pred - exp(y_pred))

and fitted with dummy targets ``{'vae_out_main': x, 'vae_out_mu': t_mu, 'vae_out_var': t_logvar}``.
``mu_loss + logvar_loss = fact * KL_mean``, so the total is the same objective.

Keras 3 form (this module): the same, with :func:`klvae.losses.bce_mean` for the main output
and ``keras.ops``; each output is wrapped in a named pass-through layer, because a Keras 3
functional model names its outputs after the layers that produce them (here the nested
decoder) and the dict of losses would not match otherwise. The dummy targets are zeros.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from klvae.strategies.base import FACT, Identity, KLStrategy, make_sampling, reconstruction_loss
from klvae.strategies.registry import register

OUT_MAIN, OUT_MU, OUT_VAR = "vae_out_main", "vae_out_mu", "vae_out_var"


def make_mu_loss(fact: float):
    """Post VI's ``mu_loss(y_true, y_pred) = fact * mean(y_pred^2)`` (y_true ignored); scalar."""
    def mu_loss(y_true, y_pred):
        return fact * ops.mean(ops.square(y_pred))
    return mu_loss


def make_logvar_loss(fact: float):
    """Post VI's ``logvar_loss(y_true, y_pred) = -fact * mean(1 + y_pred - exp(y_pred))``; scalar."""
    def logvar_loss(y_true, y_pred):
        return -fact * ops.mean(1.0 + y_pred - ops.exp(y_pred))
    return logvar_loss


@register
class TensorTransfer(KLStrategy):
    """Post VI: z_mean/z_log_var passed through the decoder as extra outputs with compiled losses."""

    name = "tensor_transfer"
    post = "VI"
    title = "tensor transfer, multiple outputs"
    description = ("mu and log_var are passed through the Decoder as extra outputs; compile() gets one "
                   "loss per output (BCE, fact*mean(mu^2), -fact*mean(1+v-exp(v))) and fit() dummy targets "
                   "for the two extra outputs.")
    keras3_form = ("each output wrapped in a named pass-through layer so that Keras 3 names the outputs "
                   "vae_out_main/vae_out_mu/vae_out_var; keras.ops instead of tf ops.")

    def build(self, encoder, decoder, fact=FACT, seed=0, sampling=None):
        shape = encoder.input.shape[1:]
        z_dim = encoder.output[0].shape[-1]
        # Encoder with multiple outputs: [z, mu, log_var]
        x = keras.Input(shape=shape, name="encoder_input")
        mu, log_var = encoder(x)
        z = make_sampling(seed, sampling)([mu, log_var])
        enc = keras.Model(x, [z, mu, log_var], name="encoder_transfer")
        # Decoder with multiple inputs and outputs: [z, mu, log_var] -> [decoded, mu, log_var]
        dz = keras.Input(shape=(z_dim,), name="dec_inp_z")
        dmu = keras.Input(shape=(z_dim,), name="dec_inp_mu")
        dvar = keras.Input(shape=(z_dim,), name="dec_inp_var_log")
        dec = keras.Model([dz, dmu, dvar], [decoder(dz), Identity(name="dec_mu")(dmu),
                                            Identity(name="dec_var_log")(dvar)], name="decoder_transfer")
        # The VAE: three named outputs
        x_in = keras.Input(shape=shape, name="vae_input")
        out, out_mu, out_var = dec(enc(x_in))
        outputs = {OUT_MAIN: Identity(name=OUT_MAIN)(out), OUT_MU: Identity(name=OUT_MU)(out_mu),
                   OUT_VAR: Identity(name=OUT_VAR)(out_var)}
        return keras.Model(x_in, outputs, name="vae_tensor_transfer")

    def networks(self, model):
        return (model.get_layer("encoder_transfer").get_layer("encoder"),
                model.get_layer("decoder_transfer").get_layer("decoder"))

    def compile_kwargs(self, fact=FACT):
        return {"loss": {OUT_MAIN: reconstruction_loss, OUT_MU: make_mu_loss(fact), OUT_VAR: make_logvar_loss(fact)}}

    def fit_data(self, images, z_dim):
        """``(x, {vae_out_main: x, vae_out_mu: 0, vae_out_var: 0})``: dummy zero targets ``(b, z_dim)``."""
        zeros = np.zeros((len(images), int(z_dim)), dtype=np.float32)
        return images, {OUT_MAIN: images, OUT_MU: zeros, OUT_VAR: zeros}

    def read_metrics(self, logs, fact=FACT):
        """``kl_loss = (vae_out_mu_loss + vae_out_var_loss) / fact``; BCE = ``vae_out_main_loss``."""
        out = super().read_metrics(logs, fact)
        if f"{OUT_MAIN}_loss" in logs:
            out["reconstruction_loss"] = float(logs[f"{OUT_MAIN}_loss"])
        if f"{OUT_MU}_loss" in logs and f"{OUT_VAR}_loss" in logs:
            out["kl_loss"] = (float(logs[f"{OUT_MU}_loss"]) + float(logs[f"{OUT_VAR}_loss"])) / fact
        return out
