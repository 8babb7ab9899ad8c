"""Distances between distributions of values (an FCD's, say): Kolmogorov-Smirnov and
Wasserstein, between two samples or a sample and a histogram."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from brainfit.metrics._common import (
    _broadcast_batch,
    _same_dtype_device,
    _samples,
    _unbatch,
)

__all__ = ["ks_distance", "ks_distance_hist", "wasserstein_1d", "wasserstein_to_hist"]


def ks_distance(a: Tensor, b: Tensor) -> Tensor:
    r"""Two-sample Kolmogorov-Smirnov statistic :math:`D = \sup_x |F_a(x) - F_b(x)|`.

    :math:`F_a, F_b` are the empirical CDFs of the samples; the supremum is taken over the pooled
    sample points, in exact integer arithmetic, so the result equals
    ``scipy.stats.ks_2samp(a[i], b[i]).statistic`` (ties included). Piecewise constant in the data:
    computed without autograd (use :func:`wasserstein_1d` as a differentiable surrogate).

    Args:
        a: samples (B, M1) or (M1,).
        b: samples (B, M2) or (M2,) (a 1-D sample is compared with every batch element).

    Returns:
        (B,), or a 0-d tensor when both are 1-D; dtype of the inputs.

    Raises:
        TypeError: non-floating inputs or different dtypes.
        ValueError: wrong ndim, empty samples, batch sizes that do not broadcast.
    """
    a2, ua = _samples(a, "a")
    b2, ub = _samples(b, "b")
    _same_dtype_device(a2, b2, "ks_distance")
    with torch.no_grad():
        a2, b2 = _broadcast_batch(a2, b2, "ks_distance")
        m1, m2 = a2.shape[-1], b2.shape[-1]
        sa = torch.sort(a2, dim=-1).values.contiguous()
        sb = torch.sort(b2, dim=-1).values.contiguous()
        pooled = torch.cat([sa, sb], dim=-1)
        ca = torch.searchsorted(sa, pooled, right=True)  # int64 counts <= x
        cb = torch.searchsorted(sb, pooled, right=True)
        num = (ca * m2 - cb * m1).abs().amax(dim=-1)
        d = num.to(torch.float64) / (m1 * m2)
    return _unbatch(d.to(a2.dtype), ua and ub)


def wasserstein_1d(a: Tensor, b: Tensor, p: float = 1.0) -> Tensor:
    r"""p-Wasserstein distance between two empirical 1-D distributions (differentiable).

    .. math:: W_p = \Big(\int_0^1 |Q_a(q) - Q_b(q)|^p\,dq\Big)^{1/p}

    with :math:`Q_a, Q_b` the empirical quantile functions (the sorted samples as step functions of
    q). Evaluated exactly: both are constant between the merged levels
    :math:`\{i/M_1\} \cup \{j/M_2\}`, so the integral is a finite weighted sum (M1 != M2 handled).
    For p = 1 this equals :math:`\int |F_a - F_b|\,dx` and ``scipy.stats.wasserstein_distance``.
    A smooth-almost-everywhere surrogate for the KS distance (Ramdas et al. 2017, Entropy 19, 47).
    Gradients flow through the sorted values; where the distance is 0 the gradient is 0.

    Args:
        a: samples (B, M1) or (M1,).
        b: samples (B, M2) or (M2,) (a 1-D sample is compared with every batch element).
        p: order, >= 1.

    Returns:
        (B,), or a 0-d tensor when both are 1-D.

    Raises:
        TypeError: non-floating inputs or different dtypes.
        ValueError: wrong ndim, empty samples, p < 1, batch sizes that do not broadcast.
    """
    p = float(p)
    if not math.isfinite(p) or p < 1.0:
        raise ValueError(f"p must be a finite number >= 1 (Wasserstein order), got {p}")
    a2, ua = _samples(a, "a")
    b2, ub = _samples(b, "b")
    _same_dtype_device(a2, b2, "wasserstein_1d")
    a2, b2 = _broadcast_batch(a2, b2, "wasserstein_1d")
    m1, m2 = a2.shape[-1], b2.shape[-1]
    dev = a2.device
    # quantile levels times m1*m2 (integers): i*m2 for a's steps, j*m1 for b's
    levels = torch.unique(torch.cat([torch.arange(1, m1 + 1, device=dev) * m2,
                                     torch.arange(1, m2 + 1, device=dev) * m1]))
    prev = torch.cat([levels.new_zeros(1), levels[:-1]])
    ia, ib = prev // m2, prev // m1  # a and b sample index on (prev, level]
    weight = (levels - prev).to(a2.dtype) / (m1 * m2)
    sa = torch.sort(a2, dim=-1).values
    sb = torch.sort(b2, dim=-1).values
    diff = (sa[:, ia] - sb[:, ib]).abs()
    if p == 1.0:
        out = (weight * diff).sum(-1)
    else:
        total = (weight * diff**p).sum(-1)
        pos = total > 0
        out = torch.where(pos, torch.where(pos, total, torch.ones_like(total)) ** (1.0 / p),
                          torch.zeros_like(total))
    return _unbatch(out, ua and ub)


def _histogram(edges: Tensor | Sequence[float], counts: Tensor | Sequence[float], like: Tensor
               ) -> tuple[Tensor, Tensor, Tensor]:
    """Validate a histogram; return edges (E+1,), bin probabilities (E,), CDF at edges (E+1,)."""
    e = torch.as_tensor(edges, dtype=like.dtype, device=like.device)
    c = torch.as_tensor(counts, dtype=like.dtype, device=like.device)
    if e.dim() != 1 or e.shape[0] < 2:
        raise ValueError(f"edges must be 1-D with at least 2 entries (E + 1 bin edges), got shape "
                         f"{tuple(e.shape)}")
    if c.dim() != 1 or c.shape[0] != e.shape[0] - 1:
        raise ValueError(f"counts must be 1-D with one entry per bin, len(edges) - 1 = "
                         f"{e.shape[0] - 1}, got shape {tuple(c.shape)}")
    if not bool(torch.isfinite(e).all()) or not bool((e[1:] > e[:-1]).all()):
        raise ValueError("edges must be finite and strictly increasing")
    if not bool(torch.isfinite(c).all()) or bool((c < 0).any()) or not bool(c.sum() > 0):
        raise ValueError("counts must be finite, non-negative and not all zero (they are bin "
                         "masses, normalised internally; multiply densities by the bin widths)")
    prob = c / c.sum()
    cdf = torch.cat([prob.new_zeros(1), torch.cumsum(prob, 0)])
    cdf = cdf / cdf[-1]  # exactly 1 at the last edge
    return e, prob, cdf


def _hist_cdf(x: Tensor, e: Tensor, prob: Tensor, cdf: Tensor) -> Tensor:
    """Piecewise-linear CDF of a histogram (uniform density within each bin), evaluated at x."""
    n_bins = prob.shape[0]
    idx = (torch.searchsorted(e, x.detach().contiguous(), right=True) - 1).clamp(0, n_bins - 1)
    lo = e[idx]
    width = e[idx + 1] - lo
    t = ((x - lo) / width).clamp(0.0, 1.0)
    return cdf[idx] + t * prob[idx]


def ks_distance_hist(values: Tensor, edges: Tensor | Sequence[float],
                     counts: Tensor | Sequence[float]) -> Tensor:
    r"""KS distance between a sample and a distribution given as a histogram.

    Some datasets give the target FCD only as a histogram. The histogram is read as a density that
    is uniform within each bin, so its CDF H is piecewise linear through
    :math:`(e_k, \sum_{l<k} c_l / \sum_l c_l)` (0 below the first edge, 1 above the last). Then

    .. math:: D = \sup_x |F_n(x) - H(x)|
              = \max_i \max\big(i/M - H(x_{(i)}),\; H(x_{(i)}) - (i-1)/M\big)

    for the sorted sample :math:`x_{(1)} \le \dots \le x_{(M)}`: the one-sample KS statistic, as
    ``scipy.stats.kstest(values, H).statistic``. Exact; computed without autograd (use
    :func:`wasserstein_to_hist` for a differentiable loss).

    Args:
        values: samples (B, M) or (M,).
        edges: bin edges (E+1,), finite and strictly increasing (tensor or sequence).
        counts: bin counts or probabilities (E,), non-negative, not all zero (masses per bin, not
            densities).

    Returns:
        (B,), or a 0-d tensor for 1-D values.

    Raises:
        TypeError: ``values`` is not a floating-point tensor.
        ValueError: bad shapes, edges not increasing, negative or all-zero counts.
    """
    v2, unbatched = _samples(values, "values")
    e, prob, cdf = _histogram(edges, counts, v2)
    with torch.no_grad():
        m = v2.shape[-1]
        h = _hist_cdf(torch.sort(v2, dim=-1).values, e, prob, cdf)
        i = torch.arange(1, m + 1, device=v2.device, dtype=v2.dtype)
        d = torch.maximum((i / m - h).amax(-1), (h - (i - 1) / m).amax(-1))
    return _unbatch(d, unbatched)


def wasserstein_to_hist(values: Tensor, edges: Tensor | Sequence[float],
                        counts: Tensor | Sequence[float]) -> Tensor:
    r"""1-Wasserstein distance between a sample and a histogram distribution (differentiable).

    The histogram is read as in :func:`ks_distance_hist` (uniform density within each bin, so a
    piecewise-linear CDF H and quantile function :math:`Q_H`). The distance

    .. math:: W_1 = \int_0^1 |Q_n(q) - Q_H(q)|\,dq = \int |F_n(x) - H(x)|\,dx

    is evaluated exactly: between consecutive points of the merged set {sample values} U {edges},
    :math:`F_n` is constant and H linear, so each piece is a trapezoid, or two triangles where
    :math:`F_n - H` changes sign. Differentiable in ``values`` (almost everywhere).

    Args:
        values: samples (B, M) or (M,).
        edges: bin edges (E+1,), finite and strictly increasing (tensor or sequence).
        counts: bin counts or probabilities (E,), non-negative, not all zero (masses per bin).

    Returns:
        (B,), or a 0-d tensor for 1-D values; in the unit of the values.

    Raises:
        TypeError: ``values`` is not a floating-point tensor.
        ValueError: bad shapes, edges not increasing, negative or all-zero counts.
    """
    v2, unbatched = _samples(values, "values")
    e, prob, cdf = _histogram(edges, counts, v2)
    m = v2.shape[-1]
    sv = torch.sort(v2, dim=-1).values
    z = torch.sort(torch.cat([sv, e.expand(v2.shape[0], -1)], dim=-1), dim=-1).values
    fn = torch.searchsorted(sv.detach().contiguous(), z.detach().contiguous(), right=True)
    fn = fn[:, :-1].to(v2.dtype) / m  # F_n on [z_k, z_{k+1})
    h = _hist_cdf(z, e, prob, cdf)
    g0, g1 = fn - h[:, :-1], fn - h[:, 1:]
    width = z[:, 1:] - z[:, :-1]
    a0, a1 = g0.abs(), g1.abs()
    cross = (g0 * g1) < 0
    denom = torch.where(cross, a0 + a1, torch.ones_like(a0))
    area = torch.where(cross, (g0 * g0 + g1 * g1) / (2.0 * denom), 0.5 * (a0 + a1))
    return _unbatch((width * area).sum(-1), unbatched)
