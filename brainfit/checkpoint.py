"""Checkpoints and exports: atomic saves, resumable state, fitted-parameter tables, reloading.

A checkpoint (``checkpoints/last.pt``, ``best.pt``) is a dict with:

- ``brainfit_version``, ``epoch`` (epochs completed), ``config`` (the resolved run config);
- ``model_state`` (the :class:`~brainfit.simulator.BoldSimulator` state dict: every parameter in
  its unconstrained form, and the connectomes as buffers), ``optimizer``, ``scheduler``;
- ``rng`` (the training generator, torch, NumPy and Python states);
- ``data`` (cohort name, subject ids, SHA-256 of each subject's preprocessed arrays);
- ``elements`` (subject id and restart of each batch element), ``best`` (best restart per subject),
  ``history`` (per-epoch scalars), ``meta`` (TR, labels, steps, durations).

Writes go to a temporary file in the same folder, then ``os.replace``, so a checkpoint on disk is
always whole.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from brainfit.simulator import BoldSimulator


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to ``path`` through a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint (on the CPU).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a brainfit checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; give the path of a last.pt or best.pt "
                                f"from a run's checkpoints/ folder")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the same to a user
        raise ValueError(f"{path} is not a readable checkpoint ({err})") from err
    if not isinstance(ckpt, dict) or "model_state" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{path} is not a brainfit checkpoint (no model_state/config)")
    return ckpt


def array_checksum(arrays: Iterable[np.ndarray | Tensor | None]) -> str:
    """SHA-256 over the bytes (float64) of the given arrays, None skipped."""
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        a = a.detach().cpu().numpy() if isinstance(a, Tensor) else np.asarray(a)
        a = np.ascontiguousarray(a, dtype=np.float64)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def fitted_rows(simulator: BoldSimulator, elements: list[tuple[str, int]],
                best: dict[str, int], labels: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per (subject, region, parameter) for the best restart of each subject.

    Group-level parameters (``global``, ``regional``, ``map``) are repeated for every subject so
    the table is complete per subject; ``scope`` tells them apart. Non-regional parameters have
    an empty region.
    """
    table = simulator.param_table()
    rows = []
    for subject, element in best.items():
        for r in table:
            if r["batch"] is not None and r["batch"] != element:
                continue
            region = r["region"]
            rows.append({
                "subject": subject,
                "region": "" if region is None else (labels[region] if labels else region),
                "parameter": r["parameter"],
                "value": r["value"],
                "unit": r["unit"],
                "scope": r["scope"],
                "trainable": r["trainable"],
            })
    return rows


def write_csv(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    path = Path(path)
    fields = ["subject", "region", "parameter", "value", "unit", "scope", "trainable"]
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)
    return path


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
        from brainfit.losses import SimulatedBoldFilter

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
    from brainfit.fit.build import components_from_config

    ckpt = load_checkpoint(path)
    cfg = ckpt["config"]
    state = ckpt["model_state"]
    weights = state["network.weights"]
    lengths = state.get("network.lengths")
    spec, coupling, bold = components_from_config(cfg)
    from brainfit.fit.spec import build_simulator

    sim = build_simulator(spec, coupling, bold, weights, lengths, ckpt.get("maps") or None)
    sim.load_state_dict(state)
    dtype = state["network.weights"].dtype
    sim = sim.to(device=device, dtype=dtype)
    return FittedModel(simulator=sim, elements=[tuple(e) for e in ckpt["elements"]],
                       best=dict(ckpt["best"]), config=cfg, meta=dict(ckpt["meta"]))
