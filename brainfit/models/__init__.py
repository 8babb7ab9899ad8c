"""Neural mass models, one file per family, registered by a short name.

>>> from brainfit import models
>>> models.available()[:3]  # doctest: +SKIP
['fitzhugh_nagumo', 'harmonic', 'hopf']
>>> m = models.create("hopf", n_regions=80, a=-0.05)
"""

from __future__ import annotations

from typing import Any

from brainfit.models.base import NeuralMass
from brainfit.registry import Registry

#: registered node models, name -> class (filled by :func:`register` in each family's module)
REGISTRY: Registry[type[NeuralMass]] = Registry("model", listing="available models")

#: class decorator: make a model available to :func:`create` under a name (sets ``cls.name``)
register = REGISTRY.register
#: sorted registered model names
available = REGISTRY.available


def get(name: str) -> type[NeuralMass]:
    """The model class registered as ``name``.

    Raises:
        ValueError: unknown name (the message lists the available models).
    """
    return REGISTRY.get(name)


def create(name: str, n_regions: int = 1, **kwargs: Any) -> NeuralMass:
    """Build the model registered as ``name``.

    Args:
        name: registered short name (see :func:`available`).
        n_regions: N.
        **kwargs: ``n_batch``, ``maps``, ``params`` and parameter values, passed to the class.

    Raises:
        ValueError: unknown name (the message lists the available models).
    """
    return REGISTRY.create(name, n_regions=n_regions, **kwargs)


def _import_families() -> None:
    """Import every module of this package: each registers its models when it is imported, so a
    new model family is one new file here (and a ``conf/model`` file)."""
    import importlib
    import pkgutil

    for info in pkgutil.iter_modules(__path__):
        if info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")


_import_families()

__all__ = ["NeuralMass", "REGISTRY", "available", "create", "get", "register"]
