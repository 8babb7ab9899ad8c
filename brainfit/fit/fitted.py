"""A fitted model rebuilt from a checkpoint, ready to simulate (``brainfit.load_fitted``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from brainfit.checkpoint import fitted_rows, load_checkpoint
from brainfit.fit.build import components_from_config
from brainfit.fit.spec import build_simulator
from brainfit.losses import SimulatedBoldFilter
from brainfit.simulator import BoldSimulator


@dataclass
class FittedModel:
    """A fitted model rebuilt from a checkpoint, ready to simulate.

    Attributes:
        simulator: network + BOLD head, one batch element per (subject, restart).
        elements: (subject id, restart) of each batch element.
        best: batch element of the best restart per subject.
        config: the run's resolved config.
        meta: TR (s), steps (ms), durations (s) and labels of the run.
        data: what it was fitted on: cohort ``name``, subject ``ids`` and the SHA-256
            ``checksums`` of each subject's preprocessed arrays (empty for old checkpoints).
        path: the checkpoint file it was loaded from.
    """

    simulator: BoldSimulator
    elements: list[tuple[str, int]]
    best: dict[str, int]
    config: dict[str, Any]
    meta: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def subject_ids(self) -> list[str]:
        return list(self.best)

    def simulate(self, n_volumes: int | None = None, seed: int | None = None,
                 dt: float | None = None, best_only: bool = True, filtered: bool = True,
                 tr: float | None = None, filter_kwargs: dict[str, Any] | None = None) -> Tensor:
        """Simulated BOLD (B, T, N): every element, or the best per subject.

        Args:
            n_volumes: default: the run's evaluation length (``trainer.eval_seconds``, else its
                held-out length).
            seed: noise seed (default: the run's first evaluation seed, so the FC of the result
                is the one in the run's ``simulated_fc.npz``).
            dt: neural step in ms (default: the run's evaluation step).
            best_only: only the best restart of each subject.
            filtered: apply the preprocessing twin (detrend, band-pass, z-score).
            tr: sampling interval in s (default: the run's TR), e.g. another cohort's; the
                simulator fits its steps to it (:func:`brainfit.bold.sampling_steps`).
            filter_kwargs: the preprocessing twin's settings
                (:func:`brainfit.fit.targets.filter_kwargs`; default: the run's data's).
        """
        m = self.meta
        seed = m.get("eval_seed", 0) if seed is None else int(seed)
        tr = m["tr"] if tr is None else float(tr)
        sim = self.simulator
        p = next(sim.parameters())
        with torch.no_grad():
            y = sim(n_volumes or m["n_eval_volumes"], tr, dt or m["eval_dt"],
                    burn_in=m["burn_in"], chunk=m["chunk"],
                    generator=torch.Generator(device=p.device).manual_seed(seed))
            if filtered:
                kwargs = m.get("filter", {}) if filter_kwargs is None else filter_kwargs
                y = SimulatedBoldFilter(tr, **kwargs)(y)
        if best_only:
            y = y[list(self.best.values())]
        return y

    def param_table(self) -> list[dict[str, Any]]:
        return fitted_rows(self.simulator, self.elements, self.best, self.meta.get("labels"))


def load_fitted(path: str | os.PathLike, device: str | torch.device = "cpu") -> FittedModel:
    """Rebuild the fitted model of a checkpoint (``best.pt`` or ``last.pt``) or of a run.

    The network, coupling and BOLD head are built from the run's own config, on the connectomes
    stored in the checkpoint, and every fitted value is restored.

    Args:
        path: a checkpoint file, or a run directory (or its ``checkpoints/`` folder): its
            ``checkpoints/best.pt``, else ``last.pt`` (:func:`checkpoint_path`).
        device: where the model is put.

    Raises:
        FileNotFoundError: no such file, or a directory without a checkpoint.
        ValueError: the file is not a readable brainfit checkpoint.
    """
    path = checkpoint_path(path)
    ckpt = load_checkpoint(path)
    cfg = ckpt["config"]
    state = ckpt["model_state"]
    weights = state["network.weights"]
    lengths = state.get("network.lengths")
    spec, coupling, bold = components_from_config(cfg)
    sim = build_simulator(spec, coupling, bold, weights, lengths, ckpt.get("maps") or None)
    sim.load_state_dict(state)
    dtype = state["network.weights"].dtype
    sim = sim.to(device=device, dtype=dtype)
    return FittedModel(simulator=sim, elements=[tuple(e) for e in ckpt["elements"]],
                       best=dict(ckpt["best"]), config=cfg, meta=dict(ckpt["meta"]),
                       data=dict(ckpt.get("data") or {}), path=path)


#: the checkpoints of a run directory :func:`load_fitted` reads, in order of preference
RUN_CHECKPOINTS = ("best.pt", "last.pt")


def checkpoint_path(path: str | os.PathLike) -> Path:
    """The checkpoint file ``path`` names: the file itself, or in a run directory (or its
    ``checkpoints/`` folder) ``checkpoints/best.pt`` (the best validation score: only a run with
    a validation part, ``trainer.val_fraction > 0``, has one), else ``last.pt`` (the final
    parameters): the checkpoint the run hands over, whose held-out scores are in its
    ``metrics.json``.

    Raises:
        FileNotFoundError: nothing at ``path``, or a directory without either checkpoint.
    """
    path = Path(path)
    if not path.is_dir():
        return path  # a file, or nothing: load_checkpoint says which
    folder = path if path.name == "checkpoints" else path / "checkpoints"
    for name in RUN_CHECKPOINTS:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"{path} is a directory without {' or '.join(RUN_CHECKPOINTS)} in {folder}: give the "
        f"output directory of a fit that saved a checkpoint (outputs/<date>/<time>) or the path "
        f"of a checkpoint file")
