"""A run's outputs: checkpoints (and the checks before resuming one), TensorBoard scalars, the
exported tables and the figures.

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
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from brainfit.checkpoint import (
    fitted_rows,
    load_checkpoint,
    save_atomic,
    write_csv,
    write_json,
    write_npz,
)
from brainfit.fit.baselines import BASELINES
from brainfit.fit.configs import changed_settings
from brainfit.runtime import FitDiverged
from brainfit.simulator import BoldSimulator

log = logging.getLogger("brainfit.fit")


class RunOutputs:
    """Writes everything a fit leaves in ``out_dir``."""

    def __init__(self, out_dir: str | Path, figures: bool = True) -> None:
        self.dir = Path(out_dir)
        self.draw_figures = figures
        self.checkpoints = self.dir / "checkpoints"
        self.writer = None

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

    # -- TensorBoard -----------------------------------------------------------------------------
    def _open_log(self) -> None:
        """The TensorBoard writer, opened with the first row (a run that fails before its first
        epoch leaves no empty ``tensorboard/`` folder)."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # pragma: no cover - tensorboard is a dependency
            log.warning("tensorboard is not installed; scalars are not logged")
            self.writer = False
            return
        self.writer = SummaryWriter(log_dir=str(self.dir / "tensorboard"))

    def log(self, row: dict[str, float], simulator: BoldSimulator | None) -> None:
        """One epoch's scalars and (``simulator`` given) its trainable parameters: global ones as
        scalars, regional ones as histograms over the regions (first batch element)."""
        if self.writer is None:
            self._open_log()
        if not self.writer:
            return
        step = row["epoch"]
        for k, v in row.items():
            if k != "epoch":
                self.writer.add_scalar(k, v, step)
        if simulator is None:
            return
        regional: dict[str, list[float]] = {}
        for r in simulator.param_table():
            if not r["trainable"] or r["batch"] not in (None, 0):
                continue
            if r["region"] is None:
                self.writer.add_scalar(f"params/{r['parameter']}", r["value"], step)
            else:
                regional.setdefault(r["parameter"], []).append(r["value"])
        for name, values in regional.items():
            self.writer.add_histogram(f"params/{name}", np.asarray(values), step)

    def close_log(self) -> None:
        if self.writer:
            self.writer.close()
        self.writer = None

    # -- exports ---------------------------------------------------------------------------------
    def export(self, result: dict[str, Any], simulator: BoldSimulator,
               elements: list[tuple[str, int]], best: dict[str, int], labels: list[str] | None,
               fc_sim: Tensor, eval_seed: int, n_eval_volumes: int) -> list[dict[str, Any]]:
        """``fitted_params.csv``, ``metrics.json`` and ``simulated_fc.npz`` (FC of the best
        restarts, (S, N, N)); returns the fitted-parameter rows."""
        rows = fitted_rows(simulator, elements, best, labels)
        write_csv(rows, self.dir / "fitted_params.csv")
        write_json(self.dir / "metrics.json", result)
        write_npz(self.dir / "simulated_fc.npz", fc=fc_sim.cpu().numpy(), ids=np.array(list(best)),
                 seed=eval_seed, n_volumes=n_eval_volumes)
        return rows

    def export_connectivity(self, ids: list[str], structural: Tensor, fitted: Tensor,
                            labels: list[str] | None) -> None:
        """``fitted_connectivity.npz``: ``fitted`` and ``structural`` weights (S, N, N) of each
        subject's best restart (``W[s, i, j]``: j -> i), ``ids``, ``labels``; and its figure."""
        sc, fit = structural.detach().cpu().numpy(), fitted.detach().cpu().numpy()
        write_npz(self.dir / "fitted_connectivity.npz", fitted=fit, structural=sc,
                 ids=np.array(ids), labels=np.array(labels or []))
        self._draw("connectivity", "plot_connectivity", dict(zip(ids, sc)), dict(zip(ids, fit)))

    def _draw(self, name: str, function: str, *args: Any, **kwargs: Any) -> None:
        """``figures/<name>.png`` by :mod:`brainfit.plotting`'s ``function``; a figure that
        cannot be drawn is logged, never raised: figures must not lose a finished fit. Nothing is
        drawn with ``trainer.figures=false``."""
        if not self.draw_figures:
            return
        try:
            from brainfit import plotting

            fig_dir = self.dir / "figures"
            fig_dir.mkdir(exist_ok=True)
            getattr(plotting, function)(*args, fig_dir / f"{name}.png", **kwargs)
        except Exception as err:  # noqa: BLE001 - figures must never lose a finished fit
            log.warning("could not draw figures/%s.png: %s", name, err)

    def figures(self, rows: list[dict[str, Any]], emp_fc: dict[str, np.ndarray],
                sim_fc: dict[str, np.ndarray], scores: dict[str, dict[str, float]],
                history: list[dict[str, float]], labels: list[str] | None,
                fcd: tuple[dict, dict] | None = None) -> None:
        """FC side by side, the scores beside the baselines, loss curves, fitted parameters and
        (``fcd = (empirical, simulated)`` FCD values per subject) FCD histograms, in
        ``figures/``. A figure that cannot be drawn is logged, never raised."""
        groups = None
        if labels:  # regions ordered by hemisphere, labelled
            from brainfit.plotting import hemispheres

            groups = hemispheres(list(labels))
        self._draw("fc_comparison", "plot_fc_comparison", emp_fc, sim_fc,
                   {s: v["fc_similarity"] for s, v in scores.items()}, labels=labels,
                   groups=groups)
        self._draw("baselines", "plot_baselines", scores, BASELINES)
        self._draw("loss_curves", "plot_loss_curves", history)
        self._draw("fitted_parameters", "plot_parameters", rows, labels=labels)
        if fcd is not None:
            self._draw("fcd_histograms", "plot_fcd_histograms", *fcd,
                       ks={s: v.get("fcd_ks", float("nan")) for s, v in scores.items()})
