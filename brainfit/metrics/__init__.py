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

Modules: :mod:`brainfit.metrics.functional` (FC and FC similarity), :mod:`brainfit.metrics.dynamic`
(FCD), :mod:`brainfit.metrics.distributions` (KS and Wasserstein distances),
:mod:`brainfit.metrics.spectral` (autocorrelations, Welch spectra, phase-randomised surrogates)
and :mod:`brainfit.metrics.phase` (phases and synchrony). Every function is importable from
``brainfit.metrics``.
"""

from __future__ import annotations

from brainfit.metrics.distributions import (
    ks_distance,
    ks_distance_hist,
    wasserstein_1d,
    wasserstein_to_hist,
)
from brainfit.metrics.dynamic import fcd, fcd_values, fcd_windows
from brainfit.metrics.functional import fc, fc_mse, fc_similarity, upper_triangle
from brainfit.metrics.phase import (
    analytic_signal,
    kuramoto_order,
    metastability,
    phases,
    synchrony,
)
from brainfit.metrics.spectral import autocorrelation, phase_randomized, psd_welch

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
