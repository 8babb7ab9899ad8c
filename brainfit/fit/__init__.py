"""Fitting: schemas, the cohort trainer and the Hydra entry point (``scripts/train.py``).

One job per module, from the config down:

- :mod:`~brainfit.fit.run`: the body of ``scripts/train.py`` (config -> objects -> ``Trainer``);
- :mod:`~brainfit.fit.cli`: the scripts' command line (bad input ends in one ``error:`` line and
  exit code 2; the config checks before anything is loaded);
- :mod:`~brainfit.fit.spec`: the config schemas (``model``, ``trainer``) and what they build;
- :mod:`~brainfit.fit.build`: objects from a composed config;
- :mod:`~brainfit.fit.configs`: resolved configs flattened and compared (resume, ranks);
- :mod:`~brainfit.fit.targets`: the fitted, validation and held-out parts, batches and targets
  of a cohort (``FitData``); :mod:`~brainfit.fit.lengths`: the length checks before a fit;
  :mod:`~brainfit.fit.baselines`: what predicts the scored FC and FCD without a model;
- :mod:`~brainfit.fit.trainer`: the optimisation loop, which owns
  :mod:`~brainfit.fit.state` (the resumable ``TrainState``: checkpoints, resume and divergence
  snapshots from one definition), :mod:`~brainfit.fit.plan` (the ``BatchPlan``: the elements a
  process simulates, their windows, gathering them), :mod:`~brainfit.fit.runner` (simulating the
  batch: training loss and gradient, evaluation scores), :mod:`~brainfit.fit.recovery`
  (divergence recovery, signals) and :mod:`~brainfit.fit.callbacks` (the hooks TensorBoard,
  figures, benchmarks and tests attach to);
- :mod:`~brainfit.fit.distributed`: one fit over torchrun's processes;
- :mod:`~brainfit.fit.scoring`: the ``Evaluator`` that scores simulations (a fit's validation
  and held-out parts, and ``scripts/evaluate.py``'s);
- :mod:`~brainfit.fit.outputs`: the run directory (checkpoints and the resume checks, tables);
- :mod:`~brainfit.fit.fitted`: a fitted model rebuilt from a checkpoint (``load_fitted``);
- :mod:`~brainfit.fit.rescore`: rescoring or simulating a finished run (``scripts/evaluate.py``,
  ``scripts/simulate.py``);
- :mod:`~brainfit.fit.memory`: the memory a training step needs, checked before a fit starts;
- :mod:`~brainfit.fit.sweep`: the table that ends a Hydra sweep (``sweep_summary.csv``).
"""

from brainfit.fit.build import Components, components_from_config
from brainfit.fit.callbacks import Callback
from brainfit.fit.fitted import FittedModel, load_fitted
from brainfit.fit.run import run
from brainfit.fit.scoring import Evaluator
from brainfit.fit.spec import NetworkSpec, TrainerConfig, build_simulator, register_configs
from brainfit.fit.sweep import register_resolver
from brainfit.fit.targets import FitData
from brainfit.fit.trainer import FitDiverged, Trainer

__all__ = ["Callback", "Components", "Evaluator", "FitData", "FitDiverged", "FittedModel",
           "NetworkSpec", "Trainer", "TrainerConfig", "build_simulator", "components_from_config",
           "load_fitted", "register_configs", "run"]

register_resolver()  # names a sweep's job directories (conf/train.yaml hydra.sweep.subdir)
