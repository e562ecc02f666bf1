"""The five ways of adding the KL loss to a Keras VAE (E2; posts IV-VIII).

``get_strategy(name)`` returns one of ``end_layer`` (IV), ``encoder_layer`` (V),
``tensor_transfer`` (VI), ``model_add_loss`` (VII), ``gradient_tape`` (VIII), or the
``no_kl`` baseline (a plain AE with the same networks, for timings). See
:mod:`klvae.strategies.base` for the interface and :mod:`klvae.strategies.compat` for the
Keras 2 -> 3 compatibility matrix.

This package's ``__init__`` imports nothing heavy: :mod:`klvae.strategies.post_forms` must
be importable under legacy ``tf-keras`` without loading Keras 3.
"""


def __getattr__(name):
    if name in ("get_strategy", "get_strategy_class", "available_strategies", "register"):
        from klvae.strategies import registry

        return getattr(registry, name)
    raise AttributeError(name)
