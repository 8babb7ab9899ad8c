"""Neural mass models, one file per family, registered by a short name.

>>> from brainfit import models
>>> models.available()[:3]  # doctest: +SKIP
['fitzhugh_nagumo', 'harmonic', 'hopf']
>>> m = models.create("hopf", n_regions=80, a=-0.05)
"""

from __future__ import annotations

from typing import Any

from brainfit.models.base import NeuralMass

REGISTRY: dict[str, type[NeuralMass]] = {}


def register(name: str):
    """Class decorator: make a model available to :func:`create` under ``name``."""

    def wrap(cls: type[NeuralMass]) -> type[NeuralMass]:
        if name in REGISTRY and REGISTRY[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered to {REGISTRY[name]}")
        cls.name = name
        REGISTRY[name] = cls
        return cls

    return wrap


def available() -> list[str]:
    """Sorted registered model names."""
    return sorted(REGISTRY)


def get(name: str) -> type[NeuralMass]:
    """The model class registered as ``name``."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; available models are {available()}") from None


def create(name: str, n_regions: int = 1, **kwargs: Any) -> NeuralMass:
    """Build the model registered as ``name``.

    Args:
        name: registered short name (see :func:`available`).
        n_regions: N.
        **kwargs: ``n_batch``, ``maps``, ``params`` and parameter values, passed to the class.
    """
    return get(name)(n_regions=n_regions, **kwargs)


# importing the families fills the registry
from brainfit.models import (  # noqa: E402,F401
    jansen_rit,
    kuramoto,
    mpr,
    oscillators,
    rate,
    wong_wang,
)

__all__ = ["NeuralMass", "REGISTRY", "available", "create", "get", "register"]
