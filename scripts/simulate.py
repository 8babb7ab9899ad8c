"""Simulate BOLD from a fitted run's checkpoint.

    python scripts/simulate.py run=outputs/2026-11-23/10-00-00 seconds=600 seed=3

Writes <run>/simulated_bold.npz (bold (B, T, N), fc (B, N, N), ids, tr) unless out= is given.
"""

import logging

import hydra
import torch
from omegaconf import DictConfig

from brainfit.fit.cli import check_simulate_config, run_app, user_errors
from brainfit.fit.rescore import simulate_run

log = logging.getLogger("brainfit.simulate")


@hydra.main(version_base="1.3", config_path="../conf", config_name="simulate")
@user_errors
def main(cfg: DictConfig) -> None:
    check_simulate_config(cfg)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    path = simulate_run(cfg.run, cfg.checkpoint, cfg.seconds, cfg.seed, cfg.dt, cfg.all_restarts,
                        cfg.out)
    log.info("written %s", path)


if __name__ == "__main__":
    run_app(main)
