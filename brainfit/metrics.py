r"""Observables of simulated and empirical time series: FC, FCD, spectra, phase synchrony.

Every function works on torch tensors, batched over a leading dimension, in float32 or float64 and
on any device. Time series are ``(B, T, N)`` (batch, time samples, regions); a ``(T, N)`` series is
accepted too and then the batch dimension is dropped from the result (a ``(B, N, N)`` result becomes
``(N, N)``, a ``(B,)`` result a 0-d tensor). Samples of values to compare as distributions are
``(B, M)`` or ``(M,)`` in the same way.

Differentiable (usable in a loss): :func:`fc`, :func:`upper_triangle`, :func:`fc_similarity`,
:func:`fc_mse`, :func:`autocorrelation`, :func:`fcd`, :func:`fcd_values`, :func:`wasserstein_1d`,
:func:`wasserstein_to_hist`, :func:`psd_welch`, :func:`kuramoto_order`, :func:`metastability`,
:func:`synchrony`. Exact but piecewise constant, hence with no useful gradient (computed without
autograd): :func:`ks_distance`, :func:`ks_distance_hist`. :func:`phases` and
:func:`analytic_signal` are differentiable except where the analytic signal vanishes.

Constant ("flat") signals: a region that does not move (a node sitting on a fixed point in a
simulation) has no defined correlation. Here it gets correlation 0 with every other region and 1
on the diagonal, never NaN, and no gradient flows through its (undefined) normalisation. A signal
counts as flat when its standard deviation is at most ``16 * eps * max|x|`` (``eps`` the machine
epsilon of the dtype; so a series that only toggles by a few units in the last place is flat too)
or its sum of squared deviations underflows. The same rule applies to the vectors of FC entries that
:func:`fc_similarity` and :func:`fcd` correlate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from brainfit.checks import positive

__all__ = [
    "analytic_signal",
    "autocorrelation",
    "fc",
    "fc_mse",
    "fc_similarity",
    "fcd",
    "fcd_values",
    "fcd_windows",
    "kuramoto_order",
    "ks_distance",
    "ks_distance_hist",
    "metastability",
    "phase_randomized",
    "phases",
    "psd_welch",
    "synchrony",
    "upper_triangle",
    "wasserstein_1d",
    "wasserstein_to_hist",
]

#: a signal is flat when std <= _FLAT_REL * eps(dtype) * max|x| (see the module docstring)
_FLAT_REL = 16.0
#: arctanh is applied to correlations clamped to +/- (1 - _FISHER_CLAMP)
_FISHER_CLAMP = 1e-7


# ----------------------------------------------------------------------------- input checks


def _check_float_tensor(x: object, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}; convert it with "
                        f"torch.as_tensor(..., dtype=torch.float32)")
    if not x.is_floating_point():
        raise TypeError(f"{name} must have a real floating dtype (float32 or float64), got "
                        f"{x.dtype}; convert it with .to(torch.float32) or .double()")
    return x


def _series(x: object, name: str = "x", min_t: int = 1) -> tuple[Tensor, bool]:
    """Validate a time series; return it as (B, T, N) and whether it came unbatched (T, N)."""
    x = _check_float_tensor(x, name)
    if x.dim() not in (2, 3):
        raise ValueError(f"{name} must be a time series of shape (B, T, N) or (T, N), got shape "
                         f"{tuple(x.shape)} ({x.dim()} dims)")
    unbatched = x.dim() == 2
    x3 = x.unsqueeze(0) if unbatched else x
    if x3.shape[1] < min_t:
        raise ValueError(f"{name} needs at least {min_t} time samples along dim -2, got "
                         f"{x3.shape[1]} (shape {tuple(x.shape)})")
    if x3.shape[2] < 1:
        raise ValueError(f"{name} has no regions (N = 0), shape {tuple(x.shape)}")
    return x3, unbatched


def _square(m: object, name: str) -> tuple[Tensor, bool]:
    """Validate a (B, N, N) or (N, N) matrix; return it as (B, N, N) and whether it was (N, N)."""
    m = _check_float_tensor(m, name)
    if m.dim() not in (2, 3) or m.shape[-1] != m.shape[-2]:
        raise ValueError(f"{name} must be a square matrix (N, N) or a batch of them (B, N, N), got "
                         f"shape {tuple(m.shape)}")
    unbatched = m.dim() == 2
    return (m.unsqueeze(0) if unbatched else m), unbatched


def _samples(v: object, name: str) -> tuple[Tensor, bool]:
    """Validate samples (B, M) or (M,); return (B, M) and whether they were 1-D."""
    v = _check_float_tensor(v, name)
    if v.dim() not in (1, 2):
        raise ValueError(f"{name} must be samples of shape (B, M) or (M,), got shape "
                         f"{tuple(v.shape)}")
    if v.shape[-1] < 1:
        raise ValueError(f"{name} is empty (M = 0); a distribution needs at least one sample")
    unbatched = v.dim() == 1
    return (v.unsqueeze(0) if unbatched else v), unbatched


def _broadcast_batch(a: Tensor, b: Tensor, what: str) -> tuple[Tensor, Tensor]:
    """Broadcast the leading (batch) dimension of two tensors, keeping their other dims."""
    ba, bb = a.shape[0], b.shape[0]
    if ba != bb and 1 not in (ba, bb):
        raise ValueError(f"{what}: batch sizes {ba} and {bb} do not match; pass equal batch sizes, "
                         f"or one unbatched input to compare every batch element against it")
    n = max(ba, bb)
    return a.expand(n, *a.shape[1:]), b.expand(n, *b.shape[1:])


def _same_dtype_device(a: Tensor, b: Tensor, what: str) -> None:
    if a.dtype != b.dtype:
        raise TypeError(f"{what}: inputs have different dtypes {a.dtype} and {b.dtype}; convert "
                        f"one of them")
    if a.device != b.device:
        raise ValueError(f"{what}: inputs are on different devices {a.device} and {b.device}; move "
                         f"one of them")


def _unbatch(out: Tensor, unbatched: bool) -> Tensor:
    return out[0] if unbatched else out


# ----------------------------------------------------------------------------- helpers


def _safe_sqrt(x: Tensor) -> Tensor:
    """sqrt with value 0 and gradient 0 (not inf/NaN) where x <= 0."""
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))),
                       torch.zeros_like(x))


def _standardize(x: Tensor, dim: int) -> Tensor:
    """Centre along ``dim`` and scale to unit Euclidean norm; flat slices become exactly 0.

    The first element is subtracted before the mean, so a constant slice centres to exactly 0 (and
    large offsets lose no precision). Pearson r of two slices is then the dot product of the
    results.
    """
    n = x.shape[dim]
    finfo = torch.finfo(x.dtype)
    scale = x.detach().abs().amax(dim=dim, keepdim=True)
    xs = x - x.narrow(dim, 0, 1)
    xc = xs - xs.mean(dim=dim, keepdim=True)
    ss = (xc * xc).sum(dim=dim, keepdim=True)
    thresh = torch.clamp(n * (_FLAT_REL * finfo.eps * scale) ** 2, min=finfo.tiny)
    flat = ss.detach() <= thresh
    norm = torch.sqrt(torch.where(flat, torch.ones_like(ss), ss))
    return torch.where(flat, torch.zeros_like(xc), xc / norm)


def _set_diagonal_one(m: Tensor) -> Tensor:
    eye = torch.eye(m.shape[-1], dtype=torch.bool, device=m.device)
    return torch.where(eye, torch.ones_like(m), m)


def _triu_flat(m: Tensor, k: int) -> Tensor:
    n = m.shape[-1]
    idx = torch.triu_indices(n, n, offset=k, device=m.device)
    return m[..., idx[0], idx[1]]


# ----------------------------------------------------------------------------- FC


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


def autocorrelation(x: Tensor, n_lags: int) -> Tensor:
    r"""Each region's autocorrelation at lags ``1..n_lags`` samples.

    .. math:: \rho_i(k) = \frac{1}{T - k} \sum_{t=1}^{T-k} z_{ti}\, z_{t+k,i},

    with :math:`z` the series centred and scaled to unit variance over all T samples (the mean over
    the overlapping products: no :math:`(T - k) / T` shrinkage of long lags). A flat region gets 0.
    Differentiable.

    Args:
        x: time series (B, T, N) or (T, N).
        n_lags: the longest lag, 1 <= n_lags < T.

    Returns:
        (B, n_lags, N), or (n_lags, N) for an unbatched input.

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: ``x`` is not 2-D or 3-D, or ``n_lags`` is not in ``[1, T)``.
    """
    x3, unbatched = _series(x, "x", min_t=2)
    T = x3.shape[1]
    if not 1 <= int(n_lags) < T:
        raise ValueError(f"autocorrelation needs 1 <= n_lags < T = {T} samples, got {n_lags}")
    z = _standardize(x3, dim=1)  # unit norm: sum_t z^2 = 1
    r = torch.stack([(z[:, k:] * z[:, :T - k]).sum(1) * (T / (T - k))
                     for k in range(1, int(n_lags) + 1)], 1)
    return _unbatch(r, unbatched)


def phase_randomized(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    r"""A surrogate of a multivariate series with the same cross-spectra (Prichard & Theiler 1994).

    Every frequency of the Fourier transform along time gets one random phase, the same for all
    regions, so each region's power spectrum and every pair's cross-spectrum (hence the FC, and
    each region's circular autocorrelation) are kept exactly while anything beyond them (e.g.
    non-stationarity) is destroyed: the null model of a stationary linear Gaussian process.

    Args:
        x: time series (B, T, N) or (T, N).
        generator: for the phases.

    Returns:
        a series of the same shape.

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: ``x`` is not 2-D or 3-D, or has fewer than 2 samples.
    """
    x3, unbatched = _series(x, "x", min_t=2)
    T = x3.shape[1]
    spec = torch.fft.rfft(x3, dim=1)
    u = torch.rand(x3.shape[0], spec.shape[1], 1, generator=generator, dtype=x3.dtype,
                   device=x3.device)
    u[:, 0] = 0  # the mean keeps its phase
    if T % 2 == 0:
        u[:, -1] = 0  # so does the Nyquist term, which is real
    out = torch.fft.irfft(spec * torch.polar(torch.ones_like(u), 2 * math.pi * u), n=T, dim=1)
    return _unbatch(out, unbatched)


# ----------------------------------------------------------------------------- FCD


def _seconds_to_samples(seconds: float, tr: float) -> int:
    # nearest integer, halves rounded up; the tiny tolerance makes e.g. 0.3 / 0.2 count as 1.5
    return int(math.floor(seconds / tr + 0.5 + 1e-9))


def fcd_windows(n_samples: int, tr: float, window: float = 60.0, step: float = 2.0
                ) -> tuple[int, int, int]:
    """Window length and step in samples, and the number of windows, as used by :func:`fcd`.

    Seconds are converted to samples by ``round(seconds / tr)``, to the nearest integer with halves
    rounded up (``floor(seconds / tr + 0.5)``). Windows start at samples 0, s, 2s, ... and only
    windows lying fully inside the series are used: W = (T - w) // s + 1.

    Args:
        n_samples: T, the number of time samples.
        tr: sampling interval (s), > 0.
        window: window length (s), > 0; must round to at least 2 samples and at most T.
        step: shift between consecutive windows (s), > 0; must round to at least 1 sample.

    Returns:
        (w, s, W): window length and step in samples, number of windows.

    Raises:
        ValueError: non-positive tr/window/step, a window of fewer than 2 samples, a step of 0
            samples, or a series shorter than one window.
    """
    tr = positive(tr, "tr", "sampling interval in seconds")
    window = positive(window, "window", "window length in seconds")
    step = positive(step, "step", "window step in seconds")
    w = _seconds_to_samples(window, tr)
    s = _seconds_to_samples(step, tr)
    if w < 2:
        raise ValueError(f"window = {window} s at tr = {tr} s rounds to {w} sample(s); a window "
                         f"must span at least 2 samples (window >= {1.5 * tr:g} s)")
    if s < 1:
        raise ValueError(f"step = {step} s at tr = {tr} s rounds to 0 samples; use step >= "
                         f"{0.5 * tr:g} s")
    if n_samples < w:
        raise ValueError(f"the series has T = {n_samples} samples ({n_samples * tr:g} s at tr = "
                         f"{tr} s), shorter than one window of {w} samples (window = {window} s); "
                         f"use a shorter window or a longer series")
    return w, s, (n_samples - w) // s + 1


def fcd(x: Tensor, tr: float, window: float = 60.0, step: float = 2.0) -> Tensor:
    r"""Functional connectivity dynamics (FCD) matrix from sliding-window FC.

    The series is cut into windows of ``window`` seconds shifted by ``step`` seconds (converted to
    samples as described in :func:`fcd_windows`: ``round(seconds / tr)``, halves up; only windows
    fully inside the series). For each window w, :math:`FC_w` is :func:`fc` of that window; then

    .. math:: FCD[w_1, w_2] = \mathrm{corr}\big(\mathrm{triu}(FC_{w_1}),
              \mathrm{triu}(FC_{w_2})\big)

    with triu the upper triangle above the diagonal (Hansen et al. 2015, NeuroImage 105, 525-535;
    Deco et al. 2017, Sci Rep 7, 3095). The defaults (60 s windows moved by 2 s) follow Hansen et
    al. 2015. The diagonal is exactly 1; a window whose FC upper triangle is constant (e.g. every
    region flat) has FCD 0 with every other window. Differentiable.

    Memory: the windows are formed explicitly, B * W * N * (w + N) values.

    Args:
        x: time series (B, T, N) or (T, N) sampled every ``tr`` seconds, N >= 3.
        tr: sampling interval (s).
        window: window length (s).
        step: shift between consecutive windows (s).

    Returns:
        (B, W, W), or (W, W) for an unbatched input.

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: bad shape, N < 3, non-positive tr/window/step, a window of fewer than 2 samples,
            a step of 0 samples, or a series shorter than one window.
    """
    x3, unbatched = _series(x, "x")
    if x3.shape[2] < 3:
        raise ValueError(f"fcd needs N >= 3 regions (at least 2 region pairs per window FC), got "
                         f"N = {x3.shape[2]}")
    w, s, _ = fcd_windows(x3.shape[1], tr, window, step)
    win = x3.unfold(1, w, s)  # (B, W, N, w)
    z = _standardize(win, dim=-1)
    fcs = torch.matmul(z, z.transpose(-1, -2)).clamp(-1.0, 1.0)  # (B, W, N, N)
    u = _standardize(_triu_flat(fcs, 1), dim=-1)  # (B, W, M)
    out = torch.matmul(u, u.transpose(-1, -2)).clamp(-1.0, 1.0)
    return _unbatch(_set_diagonal_one(out), unbatched)


def fcd_values(x: Tensor, tr: float, window: float = 60.0, step: float = 2.0,
               segment: int | None = None) -> Tensor:
    """The FCD distribution: upper triangle (k=1) of :func:`fcd`, W(W-1)/2 values per batch element.

    This is the sample that is compared between simulation and data, e.g. with :func:`ks_distance`
    or, differentiably, :func:`wasserstein_1d`. Arguments and errors as in :func:`fcd`; needs at
    least 2 windows (per segment).

    The distribution depends on the length of the series: a longer one pairs windows further
    apart, which are less alike, so its values are lower. Series of different lengths are compared
    like for like with ``segment``: the series is cut into consecutive pieces of ``segment``
    samples (a remainder shorter than that is dropped) and the FCD values of every piece are
    pooled, the distribution of recordings ``segment`` samples long. A ``segment`` at least the
    series' length uses the whole series.

    Returns:
        (B, K W(W-1)/2) with K segments (K = 1 without ``segment``), or 1-D for an unbatched input.
    """
    if segment is not None:
        segment = int(segment)
        if segment < 1:
            raise ValueError(f"segment must be a positive number of samples, got {segment}")
        T = x.shape[-2]
        if segment < T:
            k = T // segment
            pieces = x[..., : k * segment, :].unflatten(-2, (k, segment))  # (..., K, seg, N)
            return fcd_values(pieces.flatten(0, -3) if x.dim() == 3 else pieces, tr, window,
                              step).reshape(*x.shape[:-2], -1)
    m = fcd(x, tr, window, step)
    if m.shape[-1] < 2:
        raise ValueError(f"fcd_values needs at least 2 windows, got 1 (T = {x.shape[-2]} samples, "
                         f"window = {window} s, step = {step} s, tr = {tr} s); use a longer series "
                         f"or a shorter window/step")
    return upper_triangle(m, 1)


# ----------------------------------------------------------------------------- distributions


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


# ----------------------------------------------------------------------------- spectra


def _window(window: str | Tensor, n: int, like: Tensor) -> Tensor:
    if isinstance(window, Tensor):
        w = window.to(dtype=like.dtype, device=like.device)
        if w.dim() != 1 or w.shape[0] != n:
            raise ValueError(f"a window tensor must be 1-D of length nperseg = {n}, got shape "
                             f"{tuple(w.shape)}")
        return w
    makers = {
        "hann": torch.hann_window, "hanning": torch.hann_window,
        "hamming": torch.hamming_window, "blackman": torch.blackman_window,
    }
    if window in ("boxcar", "rect", "rectangular", "ones"):
        return torch.ones(n, dtype=like.dtype, device=like.device)
    if window not in makers:
        raise ValueError(f"unknown window {window!r}; valid names are 'hann', 'hamming', "
                         f"'blackman', 'boxcar', or pass a 1-D tensor of length nperseg")
    # periodic windows, as scipy.signal.get_window (fftbins=True) returns for spectral analysis
    return makers[window](n, periodic=True, dtype=like.dtype, device=like.device)


def psd_welch(x: Tensor, fs: float, nperseg: int | None = None, noverlap: int | None = None,
              window: str | Tensor = "hann") -> tuple[Tensor, Tensor]:
    r"""Welch power spectral density along time, per region (Welch 1967, IEEE Trans Audio
    Electroacoust 15, 70-73).

    The series is cut into segments of ``nperseg`` samples overlapping by ``noverlap``; each segment
    has its mean removed, is multiplied by the window w and Fourier transformed,
    :math:`X_k = \sum_n w_n x_n e^{-2\pi i kn/L}`, and

    .. math:: P_k = \frac{c_k |X_k|^2}{f_s \sum_n w_n^2}

    averaged over segments, one-sided (c_k = 2 except at 0 Hz and, for even L, the Nyquist
    frequency, where c_k = 1). This matches ``scipy.signal.welch(x, fs, window, nperseg, noverlap,
    detrend="constant", scaling="density", axis=time)``. Differentiable.

    Args:
        x: time series (B, T, N) or (T, N), in units U.
        fs: sampling frequency (Hz), > 0; for BOLD, 1 / TR.
        nperseg: segment length L (samples), 1 <= L <= T; default min(256, T) (like scipy).
        noverlap: overlap (samples), 0 <= noverlap < L; default L // 2.
        window: 'hann' (default), 'hamming', 'blackman', 'boxcar', or a 1-D tensor of length L
            (a tensor also sets L when ``nperseg`` is None). Named windows are periodic, as in
            scipy.

    Returns:
        ``(freqs, psd)``: frequencies (F,) in Hz, F = L // 2 + 1, and the density (B, F, N) in
        U^2/Hz, or (F, N) for an unbatched input.

    Raises:
        TypeError: ``x`` is not a floating-point tensor, or nperseg/noverlap not ints.
        ValueError: bad shape, fs <= 0, nperseg outside [1, T], noverlap outside [0, L), unknown
            window name or window of the wrong length.
    """
    x3, unbatched = _series(x, "x")
    fs = positive(fs, "fs", "sampling frequency in Hz")
    n_t = x3.shape[1]
    if nperseg is None:
        nperseg = window.shape[0] if isinstance(window, Tensor) and window.dim() == 1 else min(
            256, n_t)
    for name, val in (("nperseg", nperseg), ("noverlap", noverlap)):
        if val is not None and (isinstance(val, bool) or not isinstance(val, int)):
            raise TypeError(f"{name} must be an int (samples), got {val!r}")
    if not 1 <= nperseg <= n_t:
        raise ValueError(f"nperseg must be in [1, T] = [1, {n_t}] samples, got {nperseg}; the "
                         f"series has T = {n_t} samples")
    if noverlap is None:
        noverlap = nperseg // 2
    if not 0 <= noverlap < nperseg:
        raise ValueError(f"noverlap must be in [0, nperseg) = [0, {nperseg}), got {noverlap}")
    w = _window(window, nperseg, x3)
    seg = x3.unfold(1, nperseg, nperseg - noverlap)  # (B, S, N, L)
    seg = (seg - seg.mean(-1, keepdim=True)) * w
    power = torch.fft.rfft(seg, dim=-1).abs() ** 2  # (B, S, N, F)
    scale = torch.full((power.shape[-1],), 2.0, dtype=x3.dtype, device=x3.device)
    scale[0] = 1.0
    if nperseg % 2 == 0:
        scale[-1] = 1.0
    psd = power.mean(1) * (scale / (fs * (w * w).sum()))  # (B, N, F)
    freqs = torch.fft.rfftfreq(nperseg, d=1.0 / fs, dtype=x3.dtype, device=x3.device)
    return freqs, _unbatch(psd.transpose(1, 2), unbatched)


# ----------------------------------------------------------------------------- phases


def analytic_signal(x: Tensor) -> Tensor:
    r"""Analytic signal :math:`x + i\,\mathcal{H}[x]` along time, by FFT (Marple 1999, IEEE Trans
    Signal Process 47, 2600-2603), as ``scipy.signal.hilbert(x, axis=time)``.

    The spectrum is kept at 0 Hz (and at the Nyquist bin for even T), doubled at positive and
    zeroed at negative frequencies. The signal is not demeaned or filtered here: phases are only
    meaningful for narrow-band, zero-mean signals (band-pass BOLD first, e.g. 0.01-0.1 Hz).

    Args:
        x: real time series (B, T, N) or (T, N).

    Returns:
        complex tensor (complex64 for float32, complex128 for float64) of the shape of ``x``.

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: ``x`` is not 2-D or 3-D.
    """
    x3, unbatched = _series(x, "x")
    n_t = x3.shape[1]
    h = torch.zeros(n_t, dtype=x3.dtype, device=x3.device)
    h[0] = 1.0
    if n_t % 2 == 0:
        h[n_t // 2] = 1.0
        h[1:n_t // 2] = 2.0
    else:
        h[1:(n_t + 1) // 2] = 2.0
    z = torch.fft.ifft(torch.fft.fft(x3, dim=1) * h[:, None], dim=1)
    return _unbatch(z, unbatched)


def phases(x: Tensor) -> Tensor:
    """Instantaneous phases (rad, in (-pi, pi]) of real signals: the angle of
    :func:`analytic_signal`, as ``np.angle(scipy.signal.hilbert(x, axis=time))``.

    Args:
        x: real time series (B, T, N) or (T, N); band-pass filter and demean first.

    Returns:
        phases of the shape of ``x``, real dtype of ``x``.

    Raises:
        TypeError: ``x`` is not a floating-point tensor.
        ValueError: ``x`` is not 2-D or 3-D.
    """
    return torch.angle(analytic_signal(x))


def kuramoto_order(theta: Tensor) -> Tensor:
    r"""Kuramoto order parameter over regions, at each time (Kuramoto 1984, Chemical Oscillations,
    Waves, and Turbulence).

    .. math:: R(t) = \Big|\frac{1}{N} \sum_{j=1}^N e^{i\theta_j(t)}\Big|

    R = 1 for identical phases, near 0 for phases spread over the circle. Differentiable (with
    gradient 0 where R = 0).

    Args:
        theta: phases (rad), (B, T, N) or (T, N).

    Returns:
        (B, T), or (T,) for an unbatched input.

    Raises:
        TypeError: ``theta`` is not a floating-point tensor.
        ValueError: ``theta`` is not 2-D or 3-D.
    """
    th, unbatched = _series(theta, "theta")
    c, s = torch.cos(th).mean(-1), torch.sin(th).mean(-1)
    return _unbatch(_safe_sqrt(c * c + s * s), unbatched)


def metastability(theta: Tensor) -> Tensor:
    r"""Metastability: standard deviation over time of the Kuramoto order parameter R(t)
    (Shanahan 2010, Chaos 20, 013108; Deco et al. 2017, Sci Rep 7, 3095).

    .. math:: \mathrm{std}_t R = \sqrt{\frac{1}{T} \sum_t (R(t) - \bar R)^2}

    (population standard deviation, ``np.std`` with ddof=0). Differentiable (gradient 0 where the
    standard deviation is 0).

    Args:
        theta: phases (rad), (B, T, N) or (T, N).

    Returns:
        (B,), or a 0-d tensor for an unbatched input.
    """
    r = kuramoto_order(theta)
    rc = r - r.mean(-1, keepdim=True)
    return _safe_sqrt((rc * rc).mean(-1))


def synchrony(theta: Tensor) -> Tensor:
    r"""Mean over time of the Kuramoto order parameter, :math:`\bar R = \frac{1}{T}\sum_t R(t)`.

    Args:
        theta: phases (rad), (B, T, N) or (T, N).

    Returns:
        (B,), or a 0-d tensor for an unbatched input.
    """
    return kuramoto_order(theta).mean(-1)
