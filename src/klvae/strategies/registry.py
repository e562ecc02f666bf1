"""Name -> strategy registry: strategies are picked by name, never by if-chains.

Usage::

    @register
    class EncoderLayer(KLStrategy):
        name = "encoder_layer"
        ...

    strategy = get_strategy("encoder_layer")   # an instance

The five built-in strategies (and the no-KL baseline) are imported on first look-up, so
``import klvae.strategies.registry`` stays cheap.
"""

from __future__ import annotations

from klvae.strategies.base import KLStrategy

_REGISTRY: dict[str, type[KLStrategy]] = {}

#: The built-in strategy modules, in the posts' order (posts IV, V, VI, VII, VIII), then the baseline.
BUILTIN_MODULES = ("end_layer", "encoder_layer", "tensor_transfer", "model_add_loss", "gradient_tape", "baseline")
"""The built-in strategy modules, in the order `_load_builtins` imports them."""
_loaded = False


def register(cls: type[KLStrategy]) -> type[KLStrategy]:
    """Class decorator adding a :class:`KLStrategy` subclass under ``cls.name``.

    Raises:
        TypeError: ``cls`` is not a KLStrategy subclass or has no name.
        ValueError: the name is taken by another class.
    """
    if not (isinstance(cls, type) and issubclass(cls, KLStrategy)) or not cls.name:
        raise TypeError(f"{cls!r} is not a named KLStrategy subclass")
    other = _REGISTRY.get(cls.name)
    if other is not None and other is not cls:
        raise ValueError(f"strategy name {cls.name!r} already registered by {other.__module__}.{other.__qualname__}")
    _REGISTRY[cls.name] = cls
    return cls


def _load_builtins() -> None:
    """Import the built-in strategy modules (each registers its class), in the posts' order.

    Written as plain import statements so that :mod:`klvae.code_digest` sees that rules using
    the registry depend on every strategy's source.
    """
    global _loaded
    if not _loaded:
        # isort: off
        from klvae.strategies import end_layer  # noqa: F401
        from klvae.strategies import encoder_layer  # noqa: F401
        from klvae.strategies import tensor_transfer  # noqa: F401
        from klvae.strategies import model_add_loss  # noqa: F401
        from klvae.strategies import gradient_tape  # noqa: F401
        from klvae.strategies import baseline  # noqa: F401
        # isort: on
        _loaded = True


def available_strategies(include_baselines: bool = False) -> list[str]:
    """Registered names in registration order (the five strategies; ``no_kl`` only if asked)."""
    _load_builtins()
    return [n for n, c in _REGISTRY.items() if include_baselines or not c.baseline]


def get_strategy_class(name: str) -> type[KLStrategy]:
    """The class registered as ``name``.

    Raises:
        KeyError: unknown name; the message lists the known names.
    """
    _load_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown KL strategy {name!r}; known strategies: "
                       f"{', '.join(available_strategies(include_baselines=True))}") from None


def get_strategy(name: str) -> KLStrategy:
    """A fresh instance of the strategy registered as ``name`` (see :func:`get_strategy_class`).

    Raises:
        KeyError: unknown name; the message lists the known names.
    """
    return get_strategy_class(name)()


__all__ = ["register", "get_strategy", "get_strategy_class", "available_strategies", "BUILTIN_MODULES"]
