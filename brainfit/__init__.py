"""brainfit: fit whole-brain network models to resting-state fMRI by gradient descent."""

from brainfit import integrate, models, noise, params
from brainfit.models import available as available_models
from brainfit.models import create as create_model
from brainfit.params import ParameterSet, ParamSpec

__version__ = "0.1.0"

__all__ = [
    "ParamSpec",
    "ParameterSet",
    "available_models",
    "create_model",
    "integrate",
    "models",
    "noise",
    "params",
    "__version__",
]
