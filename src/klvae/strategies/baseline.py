"""``no_kl`` -- the timing baseline: the same encoder/decoder trained as a plain autoencoder.

Not one of the five strategies (``baseline = True``): ``x -> encoder -> z_mean -> decoder``,
no sampling, no KL term, the BCE compiled as the loss. Its ms/step is the cost of the
network alone, so ``strategy / no_kl`` is what a strategy's KL handling costs. The
``z_log_var`` head is left out of the graph (it would get no gradient).
"""

from __future__ import annotations

import keras

from klvae.strategies.base import FACT, KLStrategy, reconstruction_loss
from klvae.strategies.registry import register


@register
class NoKL(KLStrategy):
    """Plain AE on the same networks (z = z_mean, loss = mean BCE); for timings only."""

    name = "no_kl"
    post = "-"
    title = "no KL (plain AE, baseline)"
    description = "The same networks as a plain autoencoder: z = z_mean, loss = BCE only (timing baseline)."
    baseline = True

    def build(self, encoder, decoder, fact=FACT, seed=0, sampling=None):
        z_mean = encoder.get_layer("z_mean").output
        mean_encoder = keras.Model(encoder.input, z_mean, name="encoder_mean_only")
        x = keras.Input(shape=encoder.input.shape[1:], name="ae_input")
        return keras.Model(x, decoder(mean_encoder(x)), name="ae_no_kl")

    def networks(self, model):
        raise NotImplementedError("the no-KL baseline has no z_log_var head; it exists for timings only")

    def compile_kwargs(self, fact=FACT):
        return {"loss": reconstruction_loss}

    def read_metrics(self, logs, fact=FACT):
        out = super().read_metrics(logs, fact)
        out["reconstruction_loss"] = float(logs["loss"]) if "loss" in logs else out["reconstruction_loss"]
        return out
