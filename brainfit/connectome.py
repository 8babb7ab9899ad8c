"""Structural connectomes: the checks every layer applies and the one weight normalisation.

Convention: ``W[i, j]`` is the connection from region j to region i; weights and tract lengths
(mm) are (N, N) or batched (B, N, N), finite and non-negative.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

#: weight normalisations of :func:`normalize_weights`
NORMALIZATIONS = ("none", "max", "row_sum", "log1p")


def check_connectome(weights: Tensor, lengths: Tensor | None = None) -> None:
    """Raise ``ValueError`` unless W (and L) are square (N, N) or (B, N, N), finite, >= 0."""
    for what, m in (("weights", weights), ("lengths", lengths)):
        if m is None:
            continue
        if m.dim() not in (2, 3) or m.shape[-1] != m.shape[-2]:
            raise ValueError(f"{what} must be square, shape (N, N) or (B, N, N); got "
                             f"{tuple(m.shape)}")
        if not torch.isfinite(m).all():
            raise ValueError(f"{what} contain NaN or inf entries; clean the connectome (e.g. set "
                             f"missing connections to 0)")
        if (m < 0).any():
            raise ValueError(f"{what} contain negative entries (min {m.min().item():g}); "
                             f"connection weights and tract lengths must be >= 0")
    if lengths is not None and lengths.shape[-1] != weights.shape[-1]:
        raise ValueError(f"weights are {tuple(weights.shape)} but lengths are "
                         f"{tuple(lengths.shape)}: they must describe the same regions")


def normalize_weights(W: Tensor | np.ndarray, how: str | None = "none") -> Tensor | np.ndarray:
    """Normalise a connectome (per batch element).

    - ``none`` (or None): unchanged.
    - ``max``: divide by the largest weight, so max W = 1.
    - ``row_sum``: divide each row by its sum (each region's total input = 1; empty rows stay 0).
    - ``log1p``: ``log(1 + W)`` (compresses the heavy-tailed streamline counts), then ``max``.

    Args:
        W: (N, N) or (B, N, N), non-negative; a tensor, or a NumPy array (then the result is a new
            float64 array).
        how: one of :data:`NORMALIZATIONS`.

    Raises:
        ValueError: an unknown option, or ``max``/``log1p`` of an all-zero connectome.
    """
    if isinstance(W, np.ndarray):
        return normalize_weights(torch.from_numpy(np.array(W, dtype=np.float64)), how).numpy()
    if how in (None, "none"):
        return W
    if how == "log1p":
        return normalize_weights(torch.log1p(W), "max")
    if how == "max":
        top = W.amax(dim=(-2, -1), keepdim=True)
        if bool((top <= 0).any()):
            raise ValueError("cannot normalise an all-zero connectome by its maximum; check the "
                             "weights, or choose normalize none")
        return W / top
    if how == "row_sum":
        return W / W.sum(-1, keepdim=True).clamp_min(1e-30)
    raise ValueError(f"unknown normalisation {how!r}; valid options are {NORMALIZATIONS}")
