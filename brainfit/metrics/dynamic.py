"""Functional connectivity dynamics (FCD): sliding-window FCs and how alike they are."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from brainfit.checks import positive
from brainfit.metrics._common import (
    _series,
    _set_diagonal_one,
    _standardize,
    _triu_flat,
    _unbatch,
)
from brainfit.metrics.functional import upper_triangle

__all__ = ["fcd", "fcd_values", "fcd_windows"]


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
