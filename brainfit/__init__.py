"""brainfit: fit whole-brain network models to resting-state fMRI by gradient descent.

The public API; everything else may move behind it.

- :mod:`brainfit.models`: neural mass models (``create_model``, ``available_models``).
- :class:`BrainNetwork`: nodes + connectome + delays + coupling + noise + forcing.
- :class:`BalloonWindkessel`, :class:`IdentityBold`, :class:`BoldStream`: haemodynamics (or
  none: ``IdentityBold``, BOLD = the drive's mean over each TR).
- :class:`BoldSimulator`: parameters -> BOLD in one differentiable call.
- :mod:`brainfit.metrics`: FC, FCD, KS/Wasserstein, PSD, order parameters.
- :mod:`brainfit.data`: cohorts, loaders, preprocessing.
- :mod:`brainfit.fit`: the cohort trainer; :func:`load_fitted` rebuilds a fitted model.
- :mod:`brainfit.plotting`: figures of a fit.

``brainfit.fit`` and ``brainfit.plotting`` are imported on first use (``brainfit.fit.Trainer``
works after a plain ``import brainfit``), so that ``import brainfit`` does not pull in Hydra,
OmegaConf or matplotlib.
"""

__version__ = "0.1.0"

from brainfit import (  # noqa: E402
    coupling,
    data,
    integrate,
    losses,
    metrics,
    models,
    noise,
    params,
    stimulus,
)
from brainfit.bold import BalloonWindkessel, BoldStream, IdentityBold  # noqa: E402
from brainfit.models import available as available_models  # noqa: E402
from brainfit.models import create as create_model  # noqa: E402
from brainfit.network import BrainNetwork, NetworkState  # noqa: E402
from brainfit.noise import OrnsteinUhlenbeckNoise, WhiteNoise  # noqa: E402
from brainfit.params import ParameterSet, ParamSpec  # noqa: E402
from brainfit.runtime import SimulationDiverged  # noqa: E402
from brainfit.simulator import BoldSimulator  # noqa: E402
from brainfit.stimulus import Stimulus  # noqa: E402

#: submodules imported on first attribute access (see :func:`__getattr__`)
_LAZY_SUBMODULES = ("fit", "plotting")
#: names imported from a lazy submodule on first access
_LAZY_NAMES = {"FittedModel": "brainfit.fit.fitted", "load_fitted": "brainfit.fit.fitted"}


def __getattr__(name: str):
    """Import :data:`_LAZY_SUBMODULES` and :data:`_LAZY_NAMES` on first access (PEP 562)."""
    import importlib

    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"brainfit.{name}")  # also binds brainfit.<name>
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(_LAZY_NAMES[name]), name)
    raise AttributeError(f"module 'brainfit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_SUBMODULES) | set(_LAZY_NAMES))


__all__ = [
    "BalloonWindkessel",
    "IdentityBold",
    "BoldSimulator",
    "BoldStream",
    "BrainNetwork",
    "FittedModel",
    "NetworkState",
    "OrnsteinUhlenbeckNoise",
    "ParamSpec",
    "ParameterSet",
    "SimulationDiverged",
    "Stimulus",
    "WhiteNoise",
    "available_models",
    "coupling",
    "create_model",
    "data",
    "integrate",
    "load_fitted",
    "losses",
    "metrics",
    "models",
    "noise",
    "params",
    "stimulus",
    "__version__",
]
