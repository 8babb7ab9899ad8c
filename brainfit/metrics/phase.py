"""Phases and synchrony: the analytic signal, instantaneous phases, the Kuramoto order
parameter, metastability and mean synchrony."""

from __future__ import annotations

import torch
from torch import Tensor

from brainfit.metrics._common import (
    _safe_sqrt,
    _series,
    _unbatch,
)

__all__ = ["analytic_signal", "kuramoto_order", "metastability", "phases", "synchrony"]


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
