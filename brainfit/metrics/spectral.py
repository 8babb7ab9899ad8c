"""Second-order statistics in time: autocorrelations, power spectra (Welch), and the
phase-randomised surrogate that keeps every cross-spectrum."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from brainfit.checks import positive
from brainfit.metrics._common import (
    _series,
    _standardize,
    _unbatch,
)

__all__ = ["autocorrelation", "phase_randomized", "psd_welch"]


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
