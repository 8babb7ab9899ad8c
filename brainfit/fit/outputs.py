"""A run's outputs: checkpoints (and the checks before resuming one) and the exported tables.
TensorBoard scalars and the figures are written by the fit's callbacks
(:mod:`brainfit.fit.callbacks`).

A run directory holds::

    checkpoints/last.pt, best.pt   resumable state (brainfit.checkpoint describes the contents)
    tensorboard/                   per-epoch scalars and the global parameters
    fitted_params.csv              one row per (subject, region, parameter), best restart
    metrics.json                   held-out scores per subject and on average
    simulated_fc.npz               the best restarts' FC of the first evaluation seed
    fitted_connectivity.npz        fitted vs structural weights (when the weights are fitted)
    figures/                       FC side by side, baselines, loss curves, parameters, FCD
                                   histograms, fitted connectivity
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainfit.checkpoint import (
    fitted_rows,
    load_checkpoint,
    save_atomic,
    write_csv,
    write_json,
    write_npz,
)
from brainfit.fit.configs import changed_settings
from brainfit.fit.scoring import EVAL_SEED
from brainfit.fit.targets import FitData
from brainfit.runtime import FitDiverged
from brainfit.simulator import BoldSimulator

log = logging.getLogger("brainfit.fit")


class RunOutputs:
    """Writes the checkpoints and tables a fit leaves in ``out_dir``."""

    def __init__(self, out_dir: str | Path) -> None:
        self.dir = Path(out_dir)
        self.checkpoints = self.dir / "checkpoints"

    # -- checkpoints -----------------------------------------------------------------------------
    def save(self, state: dict[str, Any], name: str) -> Path:
        """Write ``checkpoints/<name>`` atomically, only if every parameter is finite.

        Raises:
            FitDiverged: a parameter is NaN/inf (nothing is written).
        """
        for k, v in state["model_state"].items():
            if v.is_floating_point() and not torch.isfinite(v).all():
                raise FitDiverged(f"refusing to save {name}: {k} is not finite")
        return save_atomic(state, self.checkpoints / name)

    def has(self, name: str) -> bool:
        return (self.checkpoints / name).exists()

    @staticmethod
    def load_for_resume(path: str | Path, run_config: dict[str, Any],
                        checksums: dict[str, str], elements: list[tuple[str, int]],
                        split: dict[str, Any] | None = None) -> dict[str, Any]:
        """The checkpoint at ``path``, if this run may continue it.

        Raises:
            ValueError: it was fitted with another model, coupling or BOLD config, on other data,
                or with other restarts.
        """
        ckpt = load_checkpoint(path)
        theirs = ckpt["config"]
        for group in ("model", "coupling", "bold"):
            if run_config.get(group) != theirs.get(group):
                diff = ", ".join(f"{group}.{k}: {a!r} there, {b!r} here" for k, (a, b) in
                                 changed_settings(theirs.get(group) or {},
                                                  run_config.get(group) or {}).items())
                raise ValueError(f"cannot resume from {path}: it was fitted with a different "
                                 f"{group} config ({diff}); resume with the checkpoint's "
                                 f"settings, or start a new fit")
        if ckpt["data"]["checksums"] != checksums:
            raise ValueError(f"cannot resume from {path}: it was fitted on a different cohort or "
                             f"preprocessing (subjects {ckpt['data']['ids']} vs "
                             f"{list(checksums)}, or their data differ)")
        if split is not None and ckpt["data"].get("split") != split:
            raise ValueError(f"cannot resume from {path}: the sessions were cut or preprocessed "
                             f"differently ({ckpt['data'].get('split')} there, {split} here); "
                             f"resume with the checkpoint's trainer.train_fraction, "
                             f"val_fraction, split_gap and data.preprocessing")
        if [tuple(e) for e in ckpt["elements"]] != [tuple(e) for e in elements]:
            raise ValueError(f"cannot resume from {path}: restarts differ")
        return ckpt

    # -- exports ---------------------------------------------------------------------------------
    def export(self, result: dict[str, Any], simulator: BoldSimulator, evaluation: dict[str, Any],
               data: FitData, elements: list[tuple[str, int]], best: dict[str, int],
               history: list[dict[str, float]]) -> Exported:
        """``fitted_params.csv``, ``metrics.json`` (``result``), ``simulated_fc.npz`` (the FC of
        each subject's ``best`` restart in the held-out ``evaluation``, (S, N, N)) and, when the
        weights are fitted, ``fitted_connectivity.npz``; returns what the figures are drawn from.

        Args:
            simulator: the fitted model of the whole batch.
            evaluation: the held-out evaluation (``Trainer.evaluate``).
            data: the fit's data (its held-out targets and labels).
            elements: (subject, restart) of each batch element; ``best``: the best restart of
                each subject.
        """
        labels, ids = data.cohort.labels, list(best)
        chosen = list(best.values())
        fc_sim = evaluation["fc_sim"][chosen]
        rows = fitted_rows(simulator, elements, best, labels)
        write_csv(rows, self.dir / "fitted_params.csv")
        write_json(self.dir / "metrics.json", result)
        write_npz(self.dir / "simulated_fc.npz", fc=fc_sim.cpu().numpy(), ids=np.array(ids),
                 seed=EVAL_SEED, n_volumes=data.n_eval_volumes)
        connectivity = None
        net = simulator.network
        if net.connectivity is not None:
            with torch.no_grad():
                B = len(elements)
                sc = net.weights.expand(B, -1, -1)[chosen].detach().cpu().numpy()
                fit = net.coupling_weights.expand(B, -1, -1)[chosen].detach().cpu().numpy()
            write_npz(self.dir / "fitted_connectivity.npz", fitted=fit, structural=sc,
                      ids=np.array(ids), labels=np.array(labels or []))
            connectivity = (ids, sc, fit)
        tt, R = data.test_targets, len(elements) // len(ids)
        per_subject = lambda t: {sid: t[s * R].cpu().numpy()  # noqa: E731
                                 for s, sid in enumerate(ids)}
        fcd = None
        if tt.fcd is not None and evaluation["fcd_sim"] is not None:  # the first seed's, as FC
            fcd = (per_subject(tt.fcd), {sid: evaluation["fcd_sim"][chosen[s]].cpu().numpy()
                                         for s, sid in enumerate(ids)})
        return Exported(result, rows, per_subject(tt.fc),
                        {sid: fc_sim[s].cpu().numpy() for s, sid in enumerate(ids)}, fcd,
                        connectivity, history, labels)


@dataclass
class Exported:
    """What a finished fit exported, for the figures
    (:class:`~brainfit.fit.callbacks.Figures`).

    Attributes:
        result: ``metrics.json``'s contents (``held_out``: the scores per subject).
        rows: ``fitted_params.csv``'s rows.
        empirical_fc, simulated_fc: per subject, the held-out FC and its best restart's.
        fcd: (empirical, simulated) FCD values per subject, or None (not scored).
        connectivity: (subject ids, structural, fitted weights (S, N, N)) of the best restarts,
            or None (the weights are not fitted).
        history: the per-epoch scalars.
        labels: region labels, or None.
    """

    result: dict[str, Any]
    rows: list[dict[str, Any]]
    empirical_fc: dict[str, np.ndarray]
    simulated_fc: dict[str, np.ndarray]
    fcd: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None
    connectivity: tuple[list[str], np.ndarray, np.ndarray] | None
    history: list[dict[str, float]]
    labels: list[str] | None
