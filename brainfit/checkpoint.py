"""Checkpoints: atomic saves, reading, data checksums and fitted-parameter tables.

A checkpoint (``checkpoints/last.pt``, ``best.pt``) is a dict with:

- ``brainfit_version``, ``epoch`` (epochs completed), ``config`` (the resolved run config);
- ``model_state`` (the :class:`~brainfit.simulator.BoldSimulator` state dict: every parameter in
  its unconstrained form, and the connectomes as buffers), ``optimizer``, ``scheduler``;
- ``rng`` (the training generator, torch, NumPy and Python states);
- ``data`` (cohort name, subject ids, SHA-256 of each subject's preprocessed arrays);
- ``elements`` (subject id and restart of each batch element), ``best`` (best restart per subject),
  ``history`` (per-epoch scalars), ``meta`` (TR, labels, steps, durations).

Writes go to a temporary file in the same folder, then ``os.replace``, so a checkpoint on disk is
always whole. :func:`brainfit.fit.fitted.load_fitted` (``brainfit.load_fitted``) rebuilds the
fitted model of a checkpoint.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Iterable
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
