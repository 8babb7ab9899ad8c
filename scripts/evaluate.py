"""Score a finished run on held-out data again (or on another cohort).

    python scripts/evaluate.py run=outputs/2026-11-23/10-00-00
    python scripts/evaluate.py run=outputs/2026-11-23/10-00-00 data=hcp checkpoint=best.pt seeds=10

By default it simulates what the run scored (its evaluation length, seeds and FCD pieces), so
the run's own cohort gives the scores of its metrics.json again; seeds=... and seconds=...
simulate more.

Prints a table and writes <run>/evaluation.json (or evaluation_<cohort>.json).
"""

import logging
from pathlib import Path

import hydra
import torch
from omegaconf import DictConfig

from brainfit.fit.cli import run_app, user_errors
from brainfit.fit.rescore import evaluate_run, format_table, write_json

log = logging.getLogger("brainfit.evaluate")


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
@user_errors
def main(cfg: DictConfig) -> float:
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    result = evaluate_run(cfg.run, cfg.checkpoint, cfg.get("data"), cfg.seeds, cfg.dt,
                          cfg.seconds)
    name = "evaluation.json" if result["own_cohort"] else f"evaluation_{result['cohort']}.json"
    path = write_json(result, Path(cfg.run) / name)
    print(format_table(result))
    log.info("written %s", path)
    return result["mean"]["fc_similarity"]


if __name__ == "__main__":
    run_app(main)
