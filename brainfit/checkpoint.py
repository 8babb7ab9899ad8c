"""Checkpoints: atomic saves, reading, data checksums and fitted-parameter tables.

A checkpoint file (``checkpoints/last.pt``, ``best.pt``) is of format ``brainfit-checkpoint-2``
(:data:`FORMAT`): the ``torch.save`` of ``{"format": "brainfit-checkpoint-2", "sha256": ...,
"payload": ...}``, ``payload`` the ``torch.save`` bytes of the checkpoint and ``sha256`` their
digest (:func:`save_atomic`); :func:`load_checkpoint` reads that format only, and refuses the
formats of :data:`RETIRED` saying why (format 1: ``best.pt`` chosen on the held-out data). The
checkpoint, the trainer's state (``brainfit.fit.trainer.Trainer.state``), is a dict with:

- ``brainfit_version``, ``epoch`` (epochs completed), ``config`` (the resolved run config),
  ``finished`` (whether the fit ran to its end and wrote its exports);
- ``model_state`` (the :class:`~brainfit.simulator.BoldSimulator` state dict: every parameter in
  its unconstrained form, and the connectomes as buffers), ``optimizer``, ``scheduler``;
- ``rng`` (the training generator, torch, NumPy and Python states);
- ``data`` (cohort name, subject ids, SHA-256 of each subject's arrays as loaded, and ``split``:
  the train and validation fractions, the gap and the preprocessing of each part), ``maps``
  (the spatial maps of ``map``-scope parameters, per batch element);
- ``elements`` (subject id and restart of each batch element), ``best`` (best restart per subject),
  ``selected`` (the state ``best.pt`` holds: its epoch, validation ``score``, best restarts and
  ``model_state``; None without a validation part), ``element_loss`` (each batch
  element's running mean loss, or None), ``history`` (per-epoch scalars), ``divergences``
  (diverged steps recovered from so far), ``meta`` (TR, labels, steps, durations).

Every file a run writes goes through :func:`write_atomic` (a uniquely named temporary file in the
same folder, fsynced, then renamed), so a file on disk is always whole. A checkpoint's stored
SHA-256 is checked on load, and it is read with ``weights_only=True``: it holds only tensors and
plain values, so loading one a colleague sent runs no code.
:func:`brainfit.fit.fitted.load_fitted` (``brainfit.load_fitted``) rebuilds the fitted model of a
checkpoint.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import Tensor

from brainfit.simulator import BoldSimulator

#: the checkpoint file format written by :func:`save_atomic`
FORMAT = "brainfit-checkpoint-2"
#: formats no longer read, and why
RETIRED = {"brainfit-checkpoint-1": (
    "it was written before the validation part existed: its best.pt was chosen on the held-out "
    "data it is scored on, and its data checksums are of sessions preprocessed as a whole. Refit "
    "(python scripts/train.py with the run's .hydra/config.yaml settings) to get a checkpoint "
    "selected on validation data only")}


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """Write a file so that ``path`` always holds either its old or its new contents, whole.

    ``write(fh)`` fills a uniquely named temporary file in the same folder (so two writers never
    share it); the file is flushed and fsynced, renamed onto ``path``, and the folder is fsynced so
    that the rename survives a power cut. The file gets the permissions of any new file
    (``0o666`` less the umask), not the private ``0o600`` of a temporary file, so that
    collaborators read a run's outputs as they read its other files.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            with contextlib.suppress(OSError):  # e.g. a file system without permissions
                os.fchmod(fh.fileno(), 0o666 & ~_umask())
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def _umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`write_atomic` of a text file (UTF-8)."""
    return write_atomic(path, lambda fh: fh.write(text.encode()))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """:func:`write_atomic` of ``obj`` as indented JSON."""
    return write_text(path, json.dumps(obj, indent=2))


def write_npz(path: str | os.PathLike, **arrays: Any) -> Path:
    """:func:`write_atomic` of ``np.savez(path, **arrays)``."""
    return write_atomic(path, lambda fh: np.savez(fh, **arrays))


def save_atomic(obj: Any, path: str | os.PathLike) -> Path:
    """Save a checkpoint with :func:`write_atomic`, with the SHA-256 of its payload.

    The file holds ``{"format", "sha256", "payload"}``, ``payload`` being the ``torch.save`` bytes
    of ``obj``; :func:`load_checkpoint` checks the digest before reading them. ``obj`` must hold
    only tensors and plain containers and values (what ``torch.load(weights_only=True)`` reads).
    """
    buf = io.BytesIO()
    torch.save(obj, buf)
    payload = buf.getvalue()
    wrapped = {"format": FORMAT, "sha256": hashlib.sha256(payload).hexdigest(),
               "payload": payload}
    return write_atomic(path, lambda fh: torch.save(wrapped, fh))


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint (on the CPU), checking its digest; nothing in it is executed.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file is not a brainfit checkpoint, is truncated or corrupted (its digest
            does not match), or holds objects other than tensors and plain values.
    """
    path = Path(path)
    if path.is_dir():
        raise FileNotFoundError(f"{path} is a folder; give the path of a checkpoint file such as "
                                f"{path / 'checkpoints' / 'last.pt'}")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; give the path of a last.pt or best.pt "
                                f"from a run's checkpoints/ folder")
    try:
        wrapped = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means the same to a user
        raise ValueError(f"{path} is not a readable checkpoint: it is truncated, corrupted or "
                         f"not a brainfit checkpoint ({_reason(err)}). Use another checkpoint "
                         f"(checkpoints/best.pt or last.pt) or rerun the fit") from err
    if isinstance(wrapped, dict) and wrapped.get("format") in RETIRED:
        raise ValueError(f"{path} is a checkpoint this brainfit no longer reads: "
                         f"{RETIRED[wrapped['format']]}")
    if not isinstance(wrapped, dict) or wrapped.get("format") != FORMAT:
        raise ValueError(f"{path} is not a brainfit checkpoint (format "
                         f"{wrapped.get('format') if isinstance(wrapped, dict) else None!r}, "
                         f"expected {FORMAT!r}, the only format brainfit writes and reads)")
    payload = wrapped["payload"]
    if hashlib.sha256(payload).hexdigest() != wrapped["sha256"]:
        raise ValueError(f"{path} is corrupted: its contents do not match the checksum stored "
                         f"when it was written. Use another checkpoint (best.pt or last.pt) or "
                         f"rerun the fit")
    try:
        ckpt = torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise ValueError(f"{path} is not loaded: {_reason(err)}") from err
    if not isinstance(ckpt, dict) or "model_state" not in ckpt or "config" not in ckpt:
        raise ValueError(f"{path} is not a brainfit checkpoint (no model_state/config)")
    return ckpt


def _reason(err: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in a line (not torch's advice to load the file
    unsafely)."""
    text = str(err)
    if "Weights only load failed" in text:
        return ("it holds Python objects other than tensors and plain values, and loading those "
                "could run code")
    first = text.splitlines()[0] if text else ""
    return f"{type(err).__name__}: {first[:160]}"


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
    an empty region. ``low``/``high`` are the bounds the fit kept the value in (None where
    unbounded); ``regime`` is the value where the model changes regime (the Hopf bifurcation
    ``a = 0``; None for most parameters), drawn by :func:`brainfit.plotting.plot_parameters` and
    not written to the CSV.
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
                "low": r.get("low"),
                "high": r.get("high"),
                "regime": r.get("regime"),
            })
    return rows


def write_csv(rows: list[dict[str, Any]], path: str | os.PathLike) -> Path:
    """The fitted-parameter table, written with :func:`write_atomic` (keys of the rows outside
    its columns, such as ``regime``, are left out)."""
    fields = ["subject", "region", "parameter", "value", "unit", "scope", "trainable", "low",
              "high"]
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return write_text(path, buf.getvalue())
