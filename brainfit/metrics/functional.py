"""Functional connectivity (FC) and how alike two FCs are."""

from __future__ import annotations

import torch
from torch import Tensor

from brainfit.metrics._common import (
    _FISHER_CLAMP,
    _broadcast_batch,
    _same_dtype_device,
    _series,
    _set_diagonal_one,
    _square,
    _standardize,
    _triu_flat,
    _unbatch,
)

__all__ = ["fc", "fc_mse", "fc_similarity", "upper_triangle"]


def fc(x: Tensor) -> Tensor:
    r"""Functional connectivity: Pearson correlation between regions across time.

    .. math:: FC_{ij} = \frac{\sum_t (x_{ti} - \bar x_i)(x_{tj} - \bar x_j)}
              {\sqrt{\sum_t (x_{ti} - \bar x_i)^2 \sum_t (x_{tj} - \bar x_j)^2}}

    computed per batch element (as ``np.corrcoef(x[b].T)``); e.g. Honey et al. (2009), PNAS 106,
    2035-2040. Entries are clipped to [-1, 1] (rounding) and the diagonal is exactly 1. A flat
    (constant) region gets correlation 0 with every other region, no NaN, and zero gradient (see
    the module docstring). Differentiable.

    Args:
        x: time series (B, T, N) or (T, N), T >= 2 samples; any unit.

    Returns:
        (B, N, N), or (N, N) for an unbatched input.

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: ``x`` is not 2-D or 3-D, or has fewer than 2 time samples.
    """
    x3, unbatched = _series(x, "x", min_t=2)
    z = _standardize(x3, dim=1)  # (B, T, N)
    r = torch.matmul(z.transpose(1, 2), z).clamp(-1.0, 1.0)
    return _unbatch(_set_diagonal_one(r), unbatched)


def upper_triangle(m: Tensor, k: int = 1) -> Tensor:
    """Entries of the upper triangle of square matrices, row by row (as ``np.triu_indices(N, k)``).

    Args:
        m: (B, N, N) or (N, N).
        k: diagonal offset, >= 0: 0 includes the diagonal, 1 (default) starts just above it.

    Returns:
        (B, M) or (M,), with M = (N - k)(N - k + 1) / 2 for k <= N.

    Raises:
        TypeError: ``m`` is not a floating-point tensor, or ``k`` not an int.
        ValueError: ``m`` is not square, or ``k`` < 0.
    """
    m3, unbatched = _square(m, "m")
    if isinstance(k, bool) or not isinstance(k, int):
        raise TypeError(f"k must be an int (diagonal offset), got {k!r}")
    if k < 0:
        raise ValueError(f"k must be >= 0 (0 includes the diagonal, 1 excludes it), got {k}")
    return _unbatch(_triu_flat(m3, k), unbatched)


def _paired_triangles(a: Tensor, b: Tensor, what: str) -> tuple[Tensor, Tensor, bool]:
    a3, ua = _square(a, "a")
    b3, ub = _square(b, "b")
    _same_dtype_device(a3, b3, what)
    if a3.shape[-1] != b3.shape[-1]:
        raise ValueError(f"{what}: matrices have different numbers of regions, a has N = "
                         f"{a3.shape[-1]} and b has N = {b3.shape[-1]}; compare FCs of the same "
                         f"parcellation")
    ta, tb = _broadcast_batch(_triu_flat(a3, 1), _triu_flat(b3, 1), what)
    return ta, tb, ua and ub


def fc_similarity(a: Tensor, b: Tensor, fisher: bool = False) -> Tensor:
    r"""Pearson correlation between the upper triangles (k=1) of two FC matrices.

    The usual goodness of fit of a simulated FC to an empirical one (e.g. Deco et al. 2013,
    J Neurosci 33, 11239-11252). With ``fisher=True`` the entries are first Fisher z-transformed,
    :math:`z = \operatorname{arctanh}(r)`, with r clamped to :math:`\pm(1 - 10^{-7})` so that the
    transform is finite. If either upper triangle is constant the similarity is 0. Differentiable.

    Args:
        a: FC (B, N, N) or (N, N).
        b: FC (B, N, N) or (N, N) (an unbatched one is compared with every batch element).
        fisher: Fisher-transform the entries before correlating.

    Returns:
        (B,), or a 0-d tensor when both are unbatched.

    Raises:
        TypeError: non-floating inputs or different dtypes.
        ValueError: non-square inputs, different N, N < 3 (fewer than 2 pairs), or batch sizes
            that do not broadcast.
    """
    ta, tb, unbatched = _paired_triangles(a, b, "fc_similarity")
    if ta.shape[-1] < 2:
        raise ValueError(f"fc_similarity needs N >= 3 regions (at least 2 region pairs to "
                         f"correlate), got N = {a.shape[-1]}")
    if fisher:
        lim = 1.0 - _FISHER_CLAMP
        ta = torch.atanh(ta.clamp(-lim, lim))
        tb = torch.atanh(tb.clamp(-lim, lim))
    r = (_standardize(ta, -1) * _standardize(tb, -1)).sum(-1).clamp(-1.0, 1.0)
    return _unbatch(r, unbatched)


def fc_mse(a: Tensor, b: Tensor) -> Tensor:
    r"""Mean squared difference of the upper triangles (k=1) of two FC matrices.

    .. math:: \mathrm{MSE} = \frac{1}{M} \sum_{i<j} (a_{ij} - b_{ij})^2, \quad M = N(N-1)/2

    Differentiable.

    Args:
        a: FC (B, N, N) or (N, N).
        b: FC (B, N, N) or (N, N) (an unbatched one is compared with every batch element).

    Returns:
        (B,), or a 0-d tensor when both are unbatched.

    Raises:
        TypeError: non-floating inputs or different dtypes.
        ValueError: non-square inputs, different N, N < 2, or batch sizes that do not broadcast.
    """
    ta, tb, unbatched = _paired_triangles(a, b, "fc_mse")
    if ta.shape[-1] < 1:
        raise ValueError(f"fc_mse needs N >= 2 regions, got N = {a.shape[-1]}")
    return _unbatch(((ta - tb) ** 2).mean(-1), unbatched)
