"""A fitted model rebuilt from a checkpoint, ready to simulate (``brainfit.load_fitted``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
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
    """

    simulator: BoldSimulator
    elements: list[tuple[str, int]]
    best: dict[str, int]
    config: dict[str, Any]
    meta: dict[str, Any]

    @property
    def subject_ids(self) -> list[str]:
        return list(self.best)

    def simulate(self, n_volumes: int | None = None, seed: int | None = None,
                 dt: float | None = None, best_only: bool = True, filtered: bool = True) -> Tensor:
        """Simulated BOLD (B, T, N) at the run's TR: every element, or the best per subject.

        Args:
            n_volumes: default: the run's held-out length.
            seed: noise seed (default: the run's first evaluation seed, so the FC of the result
                is the one in the run's ``simulated_fc.npz``).
            dt: neural step in ms (default: the run's evaluation step).
            best_only: only the best restart of each subject.
            filtered: apply the run's preprocessing twin (detrend, band-pass, z-score).
        """
        m = self.meta
        seed = m.get("eval_seed", 0) if seed is None else int(seed)
        sim = self.simulator
        p = next(sim.parameters())
        with torch.no_grad():
            y = sim(n_volumes or m["n_eval_volumes"], m["tr"], dt or m["eval_dt"],
                    burn_in=m["burn_in"], chunk=m["chunk"],
                    generator=torch.Generator(device=p.device).manual_seed(seed))
            if filtered:
                y = SimulatedBoldFilter(m["tr"], **m.get("filter", {}))(y)
        if best_only:
            y = y[list(self.best.values())]
        return y

    def param_table(self) -> list[dict[str, Any]]:
        return fitted_rows(self.simulator, self.elements, self.best, self.meta.get("labels"))


def load_fitted(path: str | os.PathLike, device: str | torch.device = "cpu") -> FittedModel:
    """Rebuild the fitted model of a checkpoint (``best.pt`` or ``last.pt``).

    The network, coupling and BOLD head are built from the run's own config, on the connectomes
    stored in the checkpoint, and every fitted value is restored.
    """
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
                       best=dict(ckpt["best"]), config=cfg, meta=dict(ckpt["meta"]))
