"""Fitting: schemas, the cohort trainer and the Hydra entry point (``scripts/train.py``)."""

from brainfit.fit.run import run
from brainfit.fit.spec import NetworkSpec, TrainerConfig, build_simulator, register_configs
from brainfit.fit.trainer import FitDiverged, Trainer

__all__ = ["FitDiverged", "NetworkSpec", "Trainer", "TrainerConfig", "build_simulator",
           "register_configs", "run"]
