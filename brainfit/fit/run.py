"""Build everything a run needs from its composed config and fit (the body of scripts/train.py)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from brainfit.fit.baselines import BASELINES
from brainfit.fit.build import components_from_config, instantiate, resolve_device, resolve_dtype
from brainfit.fit.distributed import ProcessGroup, launched_by_torchrun
from brainfit.fit.rescore import format_table
from brainfit.fit.targets import load_cohort
from brainfit.runtime import Interrupted

log = logging.getLogger("brainfit.fit")


def run(cfg: Any, out_dir: str | Path | None = None) -> float:
    """Fit the cohort the config describes; returns the mean held-out FC similarity.

    SIGTERM or SIGINT ends the process with exit code 143 or 130 (128 + the signal's number) once
    ``checkpoints/last.pt`` holds the last completed epoch; ``trainer.resume`` continues it.

    Under torchrun (``trainer.distributed``), the processes split the batch
    (:mod:`brainfit.fit.distributed`) and rank 0 writes the outputs, into its run directory.

    Args:
        cfg: the composed config (``conf/train.yaml`` and its groups).
        out_dir: where outputs go (default: Hydra's run directory).
    """
    from omegaconf import OmegaConf

    from brainfit.fit.trainer import Trainer

    if out_dir is None:
        from hydra.core.hydra_config import HydraConfig

        out_dir = HydraConfig.get().runtime.output_dir
    device, dtype = resolve_device(cfg.device), resolve_dtype(cfg.dtype)
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    run_config = OmegaConf.to_container(cfg, resolve=True)
    group = None
    wanted = cfg.trainer.get("distributed", "auto")
    if wanted is True or wanted == "auto" and launched_by_torchrun():
        group = ProcessGroup(device, float(cfg.trainer.get("distributed_timeout", 600.0)))
        device = group.device
        out_dir = group.broadcast(str(out_dir))  # rank 0's run directory is the run's
        group.check_same_config(run_config)
        if not group.is_main:
            logging.getLogger("brainfit").setLevel(logging.WARNING)
        log.info("distributed fit: %d processes (%s)", group.world, group.backend)
    try:
        cohort, preprocessing = load_cohort(cfg.data)  # preprocessed part by part in the fit
        trainer = Trainer(
            cohort, components_from_config(cfg), instantiate(cfg.loss), instantiate(cfg.optim),
            instantiate(cfg.trainer), out_dir,
            scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
            seed=cfg.seed, device=device, dtype=dtype, preprocessing=preprocessing,
            run_config=run_config, group=group)
        result = trainer.fit()
    except Interrupted as err:  # the trainer logged what was saved
        raise SystemExit(err.exit_code) from None
    finally:
        if group is not None:
            group.close()
    m = result["mean"]
    log.info("per subject (%s; own_fcd_ks and sc_fc_r .. own_fc_r: the baselines):\n%s",
             trainer.data.score_name,
             format_table({"subjects": result["held_out"], "mean": m}))
    log.info("%s %.3f (baselines: %s); fit took %.0f s; outputs in %s", trainer.data.score_name,
             m["fc_similarity"], ", ".join(f"{name} {m[k]:.3f}" for k, name in BASELINES.items()
                                           if k in m), result["fit_seconds"], out_dir)
    return float(m["fc_similarity"])
