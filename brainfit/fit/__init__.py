"""Fitting: schemas, the cohort trainer and the Hydra entry point (``scripts/train.py``).

One job per module:

- :mod:`~brainfit.fit.spec`: the config schemas (``model``, ``trainer``) and what they build;
- :mod:`~brainfit.fit.build`: objects from a composed config;
- :mod:`~brainfit.fit.targets`: the train/held-out split, batches and targets of a cohort;
- :mod:`~brainfit.fit.trainer`: the optimisation loop and its resumable state;
- :mod:`~brainfit.fit.evaluator`: held-out scores (the trainer's and ``scripts/evaluate.py``'s);
- :mod:`~brainfit.fit.outputs`: the run directory (checkpoints, TensorBoard, exports, figures);
- :mod:`~brainfit.fit.fitted`: a fitted model rebuilt from a checkpoint (``load_fitted``);
- :mod:`~brainfit.fit.evaluate`: score or simulate a finished run (``scripts/evaluate.py``,
  ``scripts/simulate.py``);
- :mod:`~brainfit.fit.memory`: the memory a training step needs, checked before a fit starts;
- :mod:`~brainfit.fit.run`: the body of ``scripts/train.py``.
- :mod:`~brainfit.fit.cli`: the scripts' command line (bad input ends in one ``error:`` line and
  exit code 2; the config checks before anything is loaded).
- :mod:`~brainfit.fit.sweep`: the table that ends a Hydra sweep (``sweep_summary.csv``).
"""

from brainfit.fit.build import Components, components_from_config
from brainfit.fit.fitted import FittedModel, load_fitted
from brainfit.fit.run import run
from brainfit.fit.scoring import Evaluator
from brainfit.fit.spec import NetworkSpec, TrainerConfig, build_simulator, register_configs
from brainfit.fit.sweep import register_resolver
from brainfit.fit.targets import FitData
from brainfit.fit.trainer import FitDiverged, Trainer

__all__ = ["Components", "Evaluator", "FitData", "FitDiverged", "FittedModel", "NetworkSpec",
           "Trainer", "TrainerConfig", "build_simulator", "components_from_config", "load_fitted",
           "register_configs", "run"]

register_resolver()  # names a sweep's job directories (conf/train.yaml hydra.sweep.subdir)
