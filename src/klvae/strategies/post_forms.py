"""The five KL strategies as the posts wrote them, for the Keras 2 -> 3 compatibility matrix.

This module imports only TensorFlow and NumPy and reaches Keras through ``tf.keras`` -- as
the posts did (``from tensorflow.keras ...``, ``B = tensorflow.keras.backend``) -- so the
same code runs under Keras 3 (``tf.keras`` is Keras 3 in TF >= 2.16) and under legacy
Keras 2 (``tf-keras``, selected by ``TF_USE_LEGACY_KERAS=1`` before TensorFlow is
imported). Nothing here is fixed for Keras 3: that is the point. The working Keras 3 forms
live in the strategy modules (``end_layer.py`` ...).

Sources, per strategy:

* ``end_layer`` (post IV, "SOLUTION I"): verbatim from post VII (``CustomVariationalLayer``,
  ``compile(optimizer=Adam(), loss=None)``, ``fit(x, y=None)``). One change: the post's
  literal KL weight ``0.5e-4`` is replaced by ``fact`` so that all forms train one objective.
* ``encoder_layer`` (post V): post V is not among the posts; reconstructed from the
  description in post VII and the rules of post IV: a KL layer after mu/log_var inside
  the Encoder calling ``self.add_loss(kl, inputs=inputs)`` and ``self.add_metric(...)``,
  returning its inputs, then the post's ``Lambda`` sampling; ``compile(loss=
  "binary_crossentropy")``, ``fit(x, x)``.
* ``tensor_transfer`` (post VI): the loss functions ``mu_loss`` / ``logvar_loss`` (with
  ``@tf.function``), the ``compile(loss={...})`` dict and the dict of dummy targets are
  verbatim from post VII (post VII's ``solution_type == 1`` branches); the Encoder/Decoder
  with ``[z, mu, log_var]`` outputs/inputs follow post VII's ``_build_enc``/``_build_dec``
  fragments. How the seed named the outputs is not shown: here the VAE's outputs are a dict
  keyed ``vae_out_main``/``vae_out_mu``/``vae_out_var`` (the keys its compile/fit dicts use);
  :func:`run_tensor_transfer_list_outputs` is the variant that names them with layers inside
  the nested Decoder and returns its list.
* ``model_add_loss`` (post VII): verbatim from post VII (``get_kl_loss`` with tf ops,
  ``model.add_loss(res_kl)``, ``model.add_metric(res_kl, name='kl', aggregation='mean')``,
  ``compile(loss="binary_crossentropy", metrics=[BinaryCrossentropy(name='bce')])``,
  ``fit(x, x)``). :func:`model_add_loss_keras_ops` is the same with ``keras.ops`` in
  place of the tf ops (Keras 3 only), to show what ``model.add_loss`` itself does.
* ``gradient_tape`` (post VIII): post VIII is not among the posts; the keras.io VAE example
  it follows (F. Chollet), with the posts' mean BCE and ``fact * KL_mean``.

Encoder/Decoder are the networks of post VII's cell 6 (the Foster-style class the series
extends): Conv2D [32, 64, 128] / strides [1, 2, 2] + LeakyReLU, Dense ``mu``/``log_var``,
``Lambda`` sampling with ``B.random_normal``; Dense -> Reshape -> Conv2DTranspose [64, 32, 1]
/ strides [2, 2, 1], sigmoid. Input ``(28, 28, 1)`` as in the posts.

Every ``run_*`` function: ``(x, fact, z_dim, batch_size, progress) -> {"steps", "final_loss"}``
with ``x`` float32 ``(n, 28, 28, 1)`` in [0, 1], trains one epoch over ``x``
(``n / batch_size`` steps) and updates ``progress["stage"]`` (``build`` / ``compile`` /
``fit``) so a caller can tell where an exception came from.

Run as a script it executes every form in this process, with the trainings' TensorFlow
settings (:func:`klvae.backend.tensorflow_determinism`: op determinism, Grappler's arithmetic
optimizer off, pinned threads; without them post VIII's logged loss varied in its last bit
between clean runs), and writes a JSON list of results
(``python -m klvae.strategies.post_forms --out results.json ...``);
:func:`klvae.strategies.compat.compatibility_matrix` starts it once per Keras flavour.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import traceback
from pathlib import Path

import numpy as np

from klvae.reference import E2_POST_FACT


def _keras():
    import tensorflow as tf

    return tf, tf.keras


def keras_flavour() -> dict:
    """Which Keras ``tf.keras`` is in this process: ``{"keras_flavour", "keras_version", "tensorflow"}``."""
    tf, K = _keras()
    legacy = K.layers.Layer.__module__.startswith("tf_keras")
    version = getattr(K, "__version__", None)
    if version is None:
        import tf_keras

        version = tf_keras.__version__
    return {"keras_flavour": "Keras 2 (tf-keras)" if legacy else "Keras 3", "keras_version": str(version),
            "tensorflow": tf.__version__}


class _StepCounter:
    """Keras callback factory counting training batches (works with Keras 2 and 3)."""

    @staticmethod
    def make(K):
        class StepCounter(K.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.steps = 0

            def on_train_batch_end(self, batch, logs=None):
                self.steps += 1

        return StepCounter()


def _post_encoder(K, B, z_dim, kl_layer=None, transfer=False):
    """Post VII cell 6 encoder; returns ``(encoder_input, mu, log_var, encoder_output, encoder)``."""
    from tensorflow.keras.layers import Conv2D, Dense, Flatten, Input, Lambda, LeakyReLU
    from tensorflow.keras.models import Model

    encoder_input = Input(shape=(28, 28, 1), name="encoder_input")
    x = encoder_input
    for i, (f, s) in enumerate(zip([32, 64, 128], [1, 2, 2], strict=True)):
        x = Conv2D(filters=f, kernel_size=3, strides=s, padding="same", name="encoder_conv_" + str(i))(x)
        x = LeakyReLU()(x)
    x = Flatten()(x)
    mu = Dense(z_dim, name="mu")(x)
    log_var = Dense(z_dim, name="log_var")(x)
    if kl_layer is not None:
        mu, log_var = kl_layer([mu, log_var])

    def z_point_sampling(args):
        z_mean, z_log_var = args
        epsilon = B.random_normal(shape=B.shape(z_mean), mean=0., stddev=1.)
        return z_mean + B.exp(z_log_var / 2) * epsilon

    encoder_output = Lambda(z_point_sampling, name="encoder_output")([mu, log_var])
    if transfer:
        encoder = Model(inputs=encoder_input, outputs=[encoder_output, mu, log_var], name="encoder")
    else:
        encoder = Model(encoder_input, encoder_output, name="encoder")
    return encoder_input, mu, log_var, encoder_output, encoder


def _post_decoder_layers(z_dim):
    from tensorflow.keras.layers import Activation, Conv2DTranspose, Dense, Input, LeakyReLU, Reshape

    decoder_input = Input(shape=(z_dim,), name="decoder_input")
    x = Dense(7 * 7 * 128)(decoder_input)
    x = Reshape((7, 7, 128))(x)
    for i, (f, s) in enumerate(zip([64, 32, 1], [2, 2, 1], strict=True)):
        x = Conv2DTranspose(filters=f, kernel_size=3, strides=s, padding="same", name="decoder_conv_t_" + str(i))(x)
        x = LeakyReLU()(x) if i < 2 else Activation("sigmoid")(x)
    return decoder_input, x


def _post_decoder(z_dim):
    from tensorflow.keras.models import Model

    decoder_input, decoder_output = _post_decoder_layers(z_dim)
    return Model(decoder_input, decoder_output, name="decoder")


def _fit_result(K, hist, counter):
    return {"steps": int(counter.steps), "final_loss": float(hist.history["loss"][-1])}


# ---------------------------------------------------------------------------------------------
# post IV -- SOLUTION I: custom layer at the end (verbatim from post VII, fact for 0.5e-4)
# ---------------------------------------------------------------------------------------------
def run_end_layer(x, fact, z_dim, batch_size, progress):
    """Post IV, solution I, as written (post VII)."""
    tf, K = _keras()
    B = K.backend
    from tensorflow.keras.layers import Layer
    from tensorflow.keras.models import Model
    from tensorflow.keras.optimizers import Adam

    progress["stage"] = "build"

    class CustomVariationalLayer(Layer):
        def vae_loss(self, mu, log_var, inp_img, out_img):
            bce = tf.keras.losses.BinaryCrossentropy()
            reco_loss = bce(inp_img, out_img)
            kln_loss = -fact * B.mean(1 + log_var - B.square(mu) - B.exp(log_var), axis=1)  # mean per sample
            return B.mean(reco_loss + kln_loss), B.mean(reco_loss), B.mean(kln_loss)  # means per batch

        def call(self, inputs):
            mu = inputs[0]
            log_var = inputs[1]
            inp_img = inputs[2]
            out_img = inputs[3]
            total_loss, reco_loss, kln_loss = self.vae_loss(mu, log_var, inp_img, out_img)
            self.add_loss(total_loss, inputs=inputs)
            self.add_metric(total_loss, name='total_loss', aggregation='mean')
            self.add_metric(reco_loss, name='reco_loss', aggregation='mean')
            self.add_metric(kln_loss, name='kl_loss', aggregation='mean')
            return inputs[3]  # Not used

    encoder_input, mu, log_var, _, encoder = _post_encoder(K, B, z_dim)
    decoder = _post_decoder(z_dim)
    enc_output = encoder(encoder_input)
    decoder_output = decoder(enc_output)
    KL_layer = CustomVariationalLayer()([mu, log_var, encoder_input, decoder_output])
    vae = Model(encoder_input, KL_layer, name="vae")
    progress["stage"] = "compile"
    vae.compile(optimizer=Adam(), loss=None)
    progress["stage"] = "fit"
    counter = _StepCounter.make(K)
    hist = vae.fit(x=x, y=None, shuffle=True, epochs=1, batch_size=batch_size, verbose=0, callbacks=[counter])
    return _fit_result(K, hist, counter)


# ---------------------------------------------------------------------------------------------
# post V -- KL layer inside the Encoder (reconstructed from the posts' description)
# ---------------------------------------------------------------------------------------------
def run_encoder_layer(x, fact, z_dim, batch_size, progress):
    """Post V as described in post VII (the post itself is not a seed)."""
    tf, K = _keras()
    B = K.backend
    from tensorflow.keras.layers import Layer
    from tensorflow.keras.models import Model
    from tensorflow.keras.optimizers import Adam

    progress["stage"] = "build"

    class My_KL_Layer(Layer):
        def call(self, inputs):
            mu = inputs[0]
            log_var = inputs[1]
            kl_mean_batch = - fact * B.mean(1 + log_var - B.square(mu) - B.exp(log_var))
            self.add_loss(kl_mean_batch, inputs=inputs)
            self.add_metric(kl_mean_batch, name='kl', aggregation='mean')
            return inputs

    encoder_input, mu, log_var, encoder_output, encoder = _post_encoder(K, B, z_dim, kl_layer=My_KL_Layer())
    decoder = _post_decoder(z_dim)
    model = Model(encoder_input, decoder(encoder_output), name="vae")
    progress["stage"] = "compile"
    model.compile(optimizer=Adam(learning_rate=1e-3), loss="binary_crossentropy",
                  metrics=[tf.keras.metrics.BinaryCrossentropy(name='bce')])
    progress["stage"] = "fit"
    counter = _StepCounter.make(K)
    hist = model.fit(x, x, batch_size=batch_size, shuffle=True, epochs=1, verbose=0, callbacks=[counter])
    return _fit_result(K, hist, counter)


# ---------------------------------------------------------------------------------------------
# post VI -- tensor transfer and multiple outputs (loss functions/compile/fit verbatim, post VII)
# ---------------------------------------------------------------------------------------------
def run_tensor_transfer(x, fact, z_dim, batch_size, progress):
    """Post VI's ``solution_type == 1`` (post VII's compile/fit branches)."""
    tf, K = _keras()
    B = K.backend
    from tensorflow.keras.layers import Input, Lambda
    from tensorflow.keras.models import Model
    from tensorflow.keras.optimizers import Adam

    progress["stage"] = "build"
    encoder_input, mu, log_var, encoder_output, encoder = _post_encoder(K, B, z_dim, transfer=True)
    _decoder_inp_z, dec_out = _post_decoder_layers(z_dim)
    _dec_inp_mu = Input(shape=(z_dim,), name="dec_inp_mu")
    _dec_inp_var_log = Input(shape=(z_dim,), name="dec_inp_var_log")
    _decoder_output = dec_out
    _dec_mu = Lambda(lambda t: t, name="dec_mu")(_dec_inp_mu)
    _dec_var_log = Lambda(lambda t: t, name="dec_var_log")(_dec_inp_var_log)
    decoder = Model([_decoder_inp_z, _dec_inp_mu, _dec_inp_var_log], [_decoder_output, _dec_mu, _dec_var_log],
                    name="decoder")
    model_input = encoder_input
    enc_out = encoder(model_input)
    dec_out = decoder(enc_out)
    # the outputs organised by a dict whose keys the compile() and fit() dicts refer to
    mod_outputs = {'vae_out_main': dec_out[0], 'vae_out_mu': dec_out[1], 'vae_out_var': dec_out[2]}
    model = Model(inputs=model_input, outputs=mod_outputs, name="vae")

    progress["stage"] = "compile"
    optimizer = Adam(learning_rate=1e-3)

    @tf.function
    def mu_loss(y_true, y_pred):
        loss_mux = fact * tf.reduce_mean(tf.square(y_pred))
        return loss_mux

    @tf.function
    def logvar_loss(y_true, y_pred):
        loss_varx = -fact * tf.reduce_mean(1 + y_pred - tf.exp(y_pred))
        return loss_varx

    model.compile(optimizer=optimizer,
                  loss={'vae_out_main': 'binary_crossentropy', 'vae_out_mu': mu_loss, 'vae_out_var': logvar_loss})
    progress["stage"] = "fit"
    t_mu = np.zeros((len(x), z_dim), np.float32)
    t_logvar = np.zeros((len(x), z_dim), np.float32)
    counter = _StepCounter.make(K)
    hist = model.fit(x, {'vae_out_main': x, 'vae_out_mu': t_mu, 'vae_out_var': t_logvar},
                     batch_size=batch_size, shuffle=True, epochs=1, verbose=0, callbacks=[counter])
    return _fit_result(K, hist, counter)


def run_tensor_transfer_list_outputs(x, fact, z_dim, batch_size, progress):
    """Post VI with the VAE's outputs left as the nested Decoder's list (``Model(inp, decoder(encoder(inp)))``).

    The output names then come from the sub-model (``decoder``...), not from the
    ``vae_out_*`` keys of the compile/fit dicts.
    """
    tf, K = _keras()
    B = K.backend
    from tensorflow.keras.layers import Input, Lambda
    from tensorflow.keras.models import Model
    from tensorflow.keras.optimizers import Adam

    progress["stage"] = "build"
    encoder_input, mu, log_var, encoder_output, encoder = _post_encoder(K, B, z_dim, transfer=True)
    _decoder_inp_z, dec_out = _post_decoder_layers(z_dim)
    _dec_inp_mu = Input(shape=(z_dim,), name="dec_inp_mu")
    _dec_inp_var_log = Input(shape=(z_dim,), name="dec_inp_var_log")
    _decoder_output = Lambda(lambda t: t, name="vae_out_main")(dec_out)
    _dec_mu = Lambda(lambda t: t, name="vae_out_mu")(_dec_inp_mu)
    _dec_var_log = Lambda(lambda t: t, name="vae_out_var")(_dec_inp_var_log)
    decoder = Model([_decoder_inp_z, _dec_inp_mu, _dec_inp_var_log], [_decoder_output, _dec_mu, _dec_var_log],
                    name="decoder")
    model_input = encoder_input
    model = Model(model_input, decoder(encoder(model_input)), name="vae")

    progress["stage"] = "compile"

    @tf.function
    def mu_loss(y_true, y_pred):
        return fact * tf.reduce_mean(tf.square(y_pred))

    @tf.function
    def logvar_loss(y_true, y_pred):
        return -fact * tf.reduce_mean(1 + y_pred - tf.exp(y_pred))

    model.compile(optimizer=Adam(learning_rate=1e-3),
                  loss={'vae_out_main': 'binary_crossentropy', 'vae_out_mu': mu_loss, 'vae_out_var': logvar_loss})
    progress["stage"] = "fit"
    t_mu = np.zeros((len(x), z_dim), np.float32)
    t_logvar = np.zeros((len(x), z_dim), np.float32)
    counter = _StepCounter.make(K)
    hist = model.fit(x, {'vae_out_main': x, 'vae_out_mu': t_mu, 'vae_out_var': t_logvar},
                     batch_size=batch_size, shuffle=True, epochs=1, verbose=0, callbacks=[counter])
    return _fit_result(K, hist, counter)


# ---------------------------------------------------------------------------------------------
# post VII -- model.add_loss() (verbatim, post VII)
# ---------------------------------------------------------------------------------------------
def _run_model_add_loss(x, fact, z_dim, batch_size, progress, get_kl_loss):
    tf, K = _keras()
    B = K.backend
    from tensorflow.keras.models import Model
    from tensorflow.keras.optimizers import Adam

    progress["stage"] = "build"
    encoder_input, mu, log_var, encoder_output, encoder = _post_encoder(K, B, z_dim)
    decoder = _post_decoder(z_dim)
    model_input = encoder_input
    model_output = decoder(encoder_output)
    model = Model(model_input, model_output, name="vae")

    progress["stage"] = "compile"
    optimizer = Adam(learning_rate=1e-3)
    res_kl = get_kl_loss(mu=mu, log_var=log_var)
    model.add_loss(res_kl)
    model.add_metric(res_kl, name='kl', aggregation='mean')
    model.compile(optimizer=optimizer, loss="binary_crossentropy",
                  metrics=[tf.keras.metrics.BinaryCrossentropy(name='bce')])
    progress["stage"] = "fit"
    counter = _StepCounter.make(K)
    hist = model.fit(x, x, batch_size=batch_size, shuffle=True, epochs=1, verbose=0, callbacks=[counter])
    return _fit_result(K, hist, counter)


def run_model_add_loss(x, fact, z_dim, batch_size, progress):
    """Post VII as written (post VII): tf ops on the symbolic mu/log_var, ``model.add_loss``."""
    tf, _ = _keras()

    # NOTE (seed): We can NOT use @tf.function here
    def get_kl_loss(mu, log_var):
        kl_loss = -fact * tf.reduce_mean(1 + log_var - tf.square(mu) - tf.exp(log_var))
        return kl_loss

    return _run_model_add_loss(x, fact, z_dim, batch_size, progress, get_kl_loss)


def run_model_add_loss_keras_ops(x, fact, z_dim, batch_size, progress):
    """Post VII with ``keras.ops`` instead of tf ops (Keras 3 only): isolates ``model.add_loss``."""
    from keras import ops

    def get_kl_loss(mu, log_var):
        kl_loss = -fact * ops.mean(1 + log_var - ops.square(mu) - ops.exp(log_var))
        return kl_loss

    return _run_model_add_loss(x, fact, z_dim, batch_size, progress, get_kl_loss)


# ---------------------------------------------------------------------------------------------
# post VIII -- GradientTape and train_step (keras.io VAE example, F. Chollet)
# ---------------------------------------------------------------------------------------------
def run_gradient_tape(x, fact, z_dim, batch_size, progress):
    """Post VIII: the keras.io ``VAE(keras.Model)`` with ``train_step`` under ``tf.GradientTape``."""
    tf, K = _keras()
    keras = K
    layers = K.layers

    progress["stage"] = "build"

    class Sampling(layers.Layer):
        """Uses (z_mean, z_log_var) to sample z, the vector encoding a digit."""

        def call(self, inputs):
            z_mean, z_log_var = inputs
            batch = tf.shape(z_mean)[0]
            dim = tf.shape(z_mean)[1]
            epsilon = tf.keras.backend.random_normal(shape=(batch, dim))
            return z_mean + tf.exp(0.5 * z_log_var) * epsilon

    encoder_inputs = keras.Input(shape=(28, 28, 1))
    h = encoder_inputs
    for f, s in zip([32, 64, 128], [1, 2, 2], strict=True):
        h = layers.Conv2D(f, 3, strides=s, padding="same")(h)
        h = layers.LeakyReLU()(h)
    h = layers.Flatten()(h)
    z_mean = layers.Dense(z_dim, name="z_mean")(h)
    z_log_var = layers.Dense(z_dim, name="z_log_var")(h)
    z = Sampling()([z_mean, z_log_var])
    encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")
    decoder = _post_decoder(z_dim)

    class VAE(keras.Model):
        def __init__(self, encoder, decoder, **kwargs):
            super().__init__(**kwargs)
            self.encoder = encoder
            self.decoder = decoder
            self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
            self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
            self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

        @property
        def metrics(self):
            return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

        def train_step(self, data):
            with tf.GradientTape() as tape:
                z_mean, z_log_var, z = self.encoder(data)
                reconstruction = self.decoder(z)
                reconstruction_loss = tf.reduce_mean(keras.losses.binary_crossentropy(data, reconstruction))
                kl_loss = -fact * tf.reduce_mean(1 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var))
                total_loss = reconstruction_loss + kl_loss
            grads = tape.gradient(total_loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights, strict=True))
            self.total_loss_tracker.update_state(total_loss)
            self.reconstruction_loss_tracker.update_state(reconstruction_loss)
            self.kl_loss_tracker.update_state(kl_loss)
            return {
                "loss": self.total_loss_tracker.result(),
                "reconstruction_loss": self.reconstruction_loss_tracker.result(),
                "kl_loss": self.kl_loss_tracker.result(),
            }

    vae = VAE(encoder, decoder)
    progress["stage"] = "compile"
    vae.compile(optimizer=keras.optimizers.Adam())
    progress["stage"] = "fit"
    counter = _StepCounter.make(K)
    hist = vae.fit(x, epochs=1, batch_size=batch_size, verbose=0, callbacks=[counter])
    return _fit_result(K, hist, counter)


#: (strategy, form, function, source) in the posts' order.
POST_FORMS = [
    ("end_layer", "post", run_end_layer, "verbatim: post VII (quoting post IV's solution I); KL weight 0.5e-4 -> fact"),
    ("encoder_layer", "post", run_encoder_layer, "reconstructed: post V as described in post VII"),
    ("tensor_transfer", "post", run_tensor_transfer,
     "losses/compile/fit verbatim: post VII; encoder/decoder from post VII fragments; output names assumed"),
    ("tensor_transfer", "seed_list_outputs", run_tensor_transfer_list_outputs,
     "variant: outputs named by Lambda layers inside the nested Decoder, model outputs = its list"),
    ("model_add_loss", "post", run_model_add_loss, "verbatim: post VII"),
    ("model_add_loss", "post_keras_ops", run_model_add_loss_keras_ops,
     "post VII with keras.ops in place of tf ops (Keras 3 only): isolates model.add_loss"),
    ("gradient_tape", "post", run_gradient_tape, "reconstructed: keras.io VAE example that post VIII follows"),
]


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXC_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception)):\s*(.*)$")


def first_line(exc: BaseException, limit: int = 240) -> str:
    """The first meaningful line of an exception's message ("" for an empty message).

    Framework wrappers are looked through: Keras 3's "Exception encountered when calling
    X.call()" (the line after "Error encountered:" is taken) and autograph's "in user code:"
    tracebacks (the text of the last ``SomeError: ...`` line). Truncated to ``limit`` chars.
    """
    lines = [ln.strip() for ln in _ANSI.sub("", str(exc)).splitlines()]
    text = ""
    marks = [i for i, ln in enumerate(lines) if ln.endswith("Error encountered:")]
    if marks:
        text = next((ln for ln in lines[marks[0] + 1:] if ln), "")
    elif lines and lines[0].startswith("in user code:"):
        hits = [m.group(2) for m in map(_EXC_LINE.match, lines) if m]
        text = hits[-1] if hits else ""
    elif lines and lines[0].startswith("Exception encountered when calling"):
        # Keras 3 (JAX backend): the wrapped message follows after a blank line, then "Arguments received"
        rest = [ln for ln in lines[1:] if ln and not ln.startswith("Arguments received")]
        text = f"{lines[0]} {rest[0]}" if rest and not rest[0].startswith("•") else ""
    if not text:
        text = next((ln for ln in lines if ln), "")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def raise_site(exc: BaseException) -> str:
    """``file:function`` of the innermost frame that raised ``exc`` (relative to site-packages).

    AutoGraph's generated files (``/tmp/__autograph_generated_file<random>.py``) are shown as
    ``<autograph>`` so that the compatibility table is the same in every run.
    """
    tb = traceback.extract_tb(exc.__traceback__)
    if not tb:
        return ""
    f = tb[-1]
    path = f.filename
    if Path(path).name.startswith("__autograph_generated_file"):
        path = "<autograph>"
    for marker in ("site-packages/", "src/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{f.name}"


def try_form(fn, x, fact, z_dim, batch_size) -> dict:
    """Run one form; never raises (except KeyboardInterrupt). Returns the result record.

    Keys: ``runs`` ("yes"/"no"), ``stage``, ``exception`` (type name), ``message`` (first
    non-empty line, "" if the exception had no message), ``raised_at``, ``steps``,
    ``final_loss`` (epoch mean of the training loss as Keras reports it).
    """
    progress = {"stage": "start"}
    rec = {"runs": "no", "stage": "", "exception": "", "message": "", "raised_at": "", "steps": 0,
           "final_loss": float("nan")}
    try:
        out = fn(x, fact, z_dim, batch_size, progress)
        rec.update(runs="yes" if np.isfinite(out["final_loss"]) else "no", steps=out["steps"],
                   final_loss=out["final_loss"], stage="done")
        if not np.isfinite(out["final_loss"]):
            rec["exception"] = "non-finite loss"
    except Exception as exc:  # noqa: BLE001 - recording the failure is the purpose
        rec.update(stage=progress["stage"], exception=type(exc).__name__, message=first_line(exc),
                   raised_at=raise_site(exc))
    finally:
        try:
            _, K = _keras()
            K.backend.clear_session()
        except Exception:  # noqa: BLE001
            pass
    return rec


def run_all(n_images: int = 64, batch_size: int = 32, z_dim: int = 2, fact: float = E2_POST_FACT, seed: int = 0,
            mnist: str | None = None, include_keras3_only: bool | None = None) -> list[dict]:
    """Try every post form in this process; returns one record per form (see :func:`try_form`).

    Args:
        n_images: training images (``n_images / batch_size`` steps, one epoch).
        batch_size: batch size.
        z_dim: latent dimension.
        fact: KL weight.
        seed: seeds TensorFlow/Keras and the choice of images.
        mnist: canonical MNIST ``.npz``; None uses seeded random binary images.
        include_keras3_only: run forms that need Keras 3 (default: only under Keras 3).
    """
    import tensorflow as tf

    info = keras_flavour()
    keras3 = info["keras_flavour"] == "Keras 3"
    if include_keras3_only is None:
        include_keras3_only = keras3
    if mnist is not None:
        with np.load(mnist, allow_pickle=False) as d:
            x = d["x_train"][:n_images].astype(np.float32) / 255.0
    else:
        x = (np.random.default_rng(seed).random((n_images, 28, 28)) > 0.8).astype(np.float32)
    x = x[..., None]
    out = []
    for strategy, form, fn, source in POST_FORMS:
        base = {"strategy": strategy, "form": form, "source": source, **info}
        if form == "post_keras_ops" and not include_keras3_only:
            out.append({**base, "runs": "n/a", "stage": "", "exception": "", "message": "needs Keras 3 (keras.ops)",
                        "raised_at": "", "steps": 0, "final_loss": float("nan")})
            continue
        tf.keras.utils.set_random_seed(int(seed))
        out.append({**base, **try_form(fn, x, fact, z_dim, batch_size)})
    return out


def worker_arguments(description: str, argv=None, n_images: int = 64) -> argparse.Namespace:
    """The command line of a compatibility worker (this module, :mod:`klvae.strategies.compat`):
    ``--out`` (JSON), ``--n-images``, ``--batch-size``, ``--z-dim``, ``--fact``, ``--seed``,
    ``--threads``, ``--mnist``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", required=True, help="JSON output")
    p.add_argument("--n-images", type=int, default=n_images)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--z-dim", type=int, default=2)
    p.add_argument("--fact", type=float, default=E2_POST_FACT)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--mnist", default=None)
    return p.parse_args(argv)


def main(argv=None) -> int:
    a = worker_arguments("Try the posts' KL-loss forms under the Keras of this process.", argv)
    from klvae.backend import tensorflow_determinism

    tensorflow_determinism(a.threads)  # the trainings' settings: without them a logged loss varied in its last bit
    rows = run_all(a.n_images, a.batch_size, a.z_dim, a.fact, a.seed, a.mnist)
    tmp = a.out + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(rows, fh, indent=2, default=float)
    os.replace(tmp, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
