"""Fit a cohort's resting-state FC/FCD by gradient descent.

    python scripts/train.py                                   # bundled gw cohort, Hopf model
    python scripts/train.py model=wilson_cowan data=hcp trainer.epochs=200 optim.lr=0.01
    python scripts/train.py -m model=hopf,wong_wang_ei seed=0,1   # a Hydra sweep

Outputs go to Hydra's run directory (outputs/<date>/<time>/): the resolved config (.hydra/),
train.log, tensorboard/, checkpoints/last.pt and best.pt, fitted_params.csv, metrics.json,
simulated_fc.npz and figures/. Resume with trainer.resume=<path to a checkpoint>.
"""

import hydra
from omegaconf import DictConfig

from brainfit.fit import register_configs, run
from brainfit.fit.cli import check_train_config, run_app, user_errors

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="train")
@user_errors
def main(cfg: DictConfig) -> float:
    check_train_config(cfg)
    return run(cfg)


if __name__ == "__main__":
    run_app(main)
