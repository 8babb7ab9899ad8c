r"""Fitting objectives: weighted sums of distances between simulated and empirical observables.

Terms (each per batch element, shape (B,)):

===================  =========================================================================
name                 term
===================  =========================================================================
``fc_corr``          ``1 - r(triu FC_sim, triu FC_emp)`` (Pearson r of the upper triangles)
``fc_corr_fisher``   the same after Fisher's z (arctanh) of both FCs' entries
``fc_mse``           mean squared difference of the upper triangles
``fcd``              1-D Wasserstein distance between the FCD value distributions (a
                     differentiable surrogate of the Kolmogorov-Smirnov distance used to report)
``acf``              mean squared difference of each region's autocorrelation at lags of
                     ``1 .. acf_seconds / TR`` volumes (:func:`brainfit.metrics.autocorrelation`):
                     the spectral shape, hence the time scales that set the FCD, as one smooth
                     term that the linearised fit computes exactly
                     (:func:`brainfit.linear.linearized_stats`)
``psd``              1-D Wasserstein distance (Hz) between the BOLD power spectra of each region,
                     each normalised to unit area (spectral shape, not power), averaged over
                     regions: ``sum_f |CDF_sim(f) - CDF_emp(f)| df``; unlike an L1 distance it
                     still has a gradient when the peaks do not overlap
``prior``            ``0.5 ((u - mu) / sd)^2``, averaged over each parameter's elements and summed
                     over the parameters given a Gaussian prior, in the unconstrained
                     (transformed) space, ``mu`` given in natural units
===================  =========================================================================

Each term is a function registered in :data:`LOSS_TERMS` (``@LOSS_TERMS.register("name")``,
``term(objective, sim, targets) -> (B,)``), so a new term is one function and a ``conf/loss`` file
that weights it.

Simulated BOLD is passed through :class:`SimulatedBoldFilter` first, the differentiable twin of the
empirical preprocessing (linear detrend, the same Butterworth band-pass applied as a zero-phase gain
``|H(f)|^2`` in the Fourier domain, z-score), so both sides are compared alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from brainfit import metrics
from brainfit.checks import positive
from brainfit.registry import Registry

#: the loss terms, by name: ``term(objective, sim: Simulation, targets: Targets) -> (B,)``
LOSS_TERMS: Registry = Registry("loss term", listing="valid terms", name_attr=None)


@dataclass
class Targets:
    """Empirical observables per batch element.

    Attributes:
        fc: (B, N, N) FC.
        fcd: (B, M) FCD values, or None (an evaluation target may also be a list of B 1-D
            samples of different lengths, e.g. a group's pooled FCD values).
        fcd_hist: per element ``(edges, counts)`` when only a histogram is known, or None.
        psd: (B, F, N) power spectra normalised per region, or None.
        acf: (B, L, N) autocorrelations at lags 1..L volumes, or None.
    """

    fc: Tensor
    fcd: Tensor | list[Tensor] | None = None
    fcd_hist: list[tuple[Tensor, Tensor]] | None = None
    psd: Tensor | None = None
    acf: Tensor | None = None


class SimulatedBoldFilter(nn.Module):
    """Detrend, band-pass and z-score simulated BOLD (B, T, N), differentiably.

    The band-pass applies the zero-phase gain ``|H(f)|^2`` of the Butterworth design that the
    empirical preprocessing runs forwards and backwards (``scipy.signal.sosfiltfilt``), in the
    Fourier domain with the series reflected at both ends to limit wrap-around.

    Args:
        tr: sampling interval, s.
        low_hz, high_hz: band edges (None for a one-sided filter); ``bandpass=False`` skips it.
        order: Butterworth order of the design.
        detrend, zscore: on/off.
    """

    def __init__(self, tr: float, bandpass: bool = True, low_hz: float | None = 0.01,
                 high_hz: float | None = 0.1, order: int = 2, detrend: bool = True,
                 zscore: bool = True) -> None:
        super().__init__()
        self.tr, self.bandpass = float(tr), bool(bandpass)
        nyq = 0.5 / self.tr
        if high_hz is not None and high_hz >= nyq:
            high_hz = None  # as the data's above_nyquist="highpass"
        self.low_hz, self.high_hz, self.order = low_hz, high_hz, int(order)
        self.bandpass = self.bandpass and (low_hz is not None or high_hz is not None)
        self.detrend, self.zscore = bool(detrend), bool(zscore)

    def _gain(self, n_fft: int, like: Tensor) -> Tensor:
        return self.gain(torch.as_tensor(np.fft.rfftfreq(n_fft, d=self.tr), dtype=like.dtype,
                                         device=like.device))

    def gain(self, freqs_hz: Tensor) -> Tensor:
        """The zero-phase band-pass's gain on amplitude, ``|H(f)|^2`` (the design run forwards
        and backwards), at ``freqs_hz``; on power it is its square, ``|H(f)|^4``."""
        from scipy import signal

        fs = 1.0 / self.tr
        if self.low_hz is not None and self.high_hz is not None:
            sos = signal.butter(self.order, [self.low_hz, self.high_hz], "bandpass", fs=fs,
                                output="sos")
        elif self.low_hz is not None:
            sos = signal.butter(self.order, self.low_hz, "highpass", fs=fs, output="sos")
        else:
            sos = signal.butter(self.order, self.high_hz, "lowpass", fs=fs, output="sos")
        _, h = signal.sosfreqz(sos, worN=freqs_hz.detach().cpu().numpy(), fs=fs)
        return torch.as_tensor(np.abs(h) ** 2, dtype=freqs_hz.dtype, device=freqs_hz.device)

    def forward(self, x: Tensor) -> Tensor:
        T = x.shape[1]
        if self.detrend and T > 2:
            t = torch.linspace(-1.0, 1.0, T, dtype=x.dtype, device=x.device)[None, :, None]
            x = x - x.mean(1, keepdim=True)
            x = x - t * (x * t).sum(1, keepdim=True) / (t * t).sum()
        if self.bandpass:
            ext = torch.cat([x.flip(1), x, x.flip(1)], dim=1)  # even extension, 3T samples
            spec = torch.fft.rfft(ext, dim=1) * self._gain(ext.shape[1], x)[None, :, None]
            x = torch.fft.irfft(spec, n=ext.shape[1], dim=1)[:, T:2 * T]
        if self.zscore:
            x = (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True).clamp_min(1e-12)
        return x


def normalized_psd(x: Tensor, tr: float, nperseg: int = 64) -> Tensor:
    """Welch PSD of each region of (B, T, N), normalised to unit sum over frequency: (B, F, N)."""
    _, p = metrics.psd_welch(x, 1.0 / tr, nperseg=min(int(nperseg), x.shape[1]))
    return p / p.sum(1, keepdim=True).clamp_min(1e-30)


@dataclass
class Objective:
    """Weighted sum of loss terms (see the module docstring).

    Args:
        weights: ``{term: weight}``, terms of :data:`LOSS_TERMS`; weights finite and >= 0, at
            least one data term (not ``prior``) > 0.
        fcd_window, fcd_step: FCD sliding window and step, s.
        psd_nperseg: Welch segment length (samples) of the ``psd`` term.
        acf_seconds: the longest lag (s) of the ``acf`` term.
        priors: ``{parameter path: {mean, std}}`` with paths as in the parameter table
            (``"G"``, ``"a"``, ``"noise.sigma_x"``, ``"bold.kappa"``); used by ``prior``.

    Raises:
        ValueError: unknown terms, negative/NaN weights, all data weights zero, priors without a
            positive std.
    """

    weights: dict[str, float] = field(default_factory=lambda: {"fc_corr": 1.0})
    fcd_window: float = 60.0
    fcd_step: float = 2.0
    psd_nperseg: int = 64
    acf_seconds: float = 20.0
    priors: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        w = {k: float(v) for k, v in dict(self.weights).items()}
        unknown = set(w) - set(LOSS_TERMS)
        if unknown:
            raise ValueError(f"unknown loss term(s) {sorted(unknown)}; valid terms are "
                             f"{LOSS_TERMS.available()}")
        for k, v in w.items():
            if not math.isfinite(v) or v < 0:
                raise ValueError(f"loss weight {k} = {v} makes no sense: weights must be finite "
                                 f"and >= 0")
        if not any(v > 0 for k, v in w.items() if k != "prior"):
            raise ValueError(f"every data term of the loss has weight 0 ({w}); give at least one "
                             f"of {[t for t in LOSS_TERMS.available() if t != 'prior']} a "
                             f"positive weight")
        for name, p in dict(self.priors).items():
            if not {"mean", "std"} <= set(p):
                raise ValueError(f"prior on {name!r} needs a mean and a std > 0, got {dict(p)}")
            positive(p["std"], f"the std of the prior on {name!r}")
        if w.get("prior", 0) > 0 and not self.priors:
            raise ValueError("the loss weights a 'prior' term but no priors are configured")
        self.weights = {k: v for k, v in w.items() if v > 0}
        for name in ("fcd_window", "fcd_step", "acf_seconds"):
            positive(getattr(self, name), name, "seconds")

    @property
    def needs_fcd(self) -> bool:
        return "fcd" in self.weights

    @property
    def needs_psd(self) -> bool:
        return "psd" in self.weights

    def acf_lags(self, tr: float) -> int:
        """How many lags (volumes of ``tr`` s) the ``acf`` term compares; 0 without the term."""
        return max(1, round(self.acf_seconds / tr)) if "acf" in self.weights else 0

    def __call__(self, bold: Tensor, tr: float, targets: Targets,
                 prior_values: Mapping[str, tuple[Any, Tensor]] | None = None
                 ) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss per batch element.

        Args:
            bold: filtered simulated BOLD (B, T, N).
            tr: its sampling interval, s.
            targets: the empirical observables.
            prior_values: ``{path: (spec, raw tensor)}`` for the prior term.

        Returns:
            ``(total (B,), {term: (B,)})``.
        """
        return self._total(Simulation(bold, tr, metrics.fc(bold), prior_values or {}), targets)

    def from_fc(self, fc: Tensor, tr: float, targets: Targets,
                prior_values: Mapping[str, tuple[Any, Tensor]] | None = None,
                acf: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss per batch element of a model FC (B, N, N), and its autocorrelations (B, L, N),
        known without a time series (e.g. :func:`brainfit.linear.linearized_stats`).

        Raises:
            ValueError: a term that needs the time series (``fcd``, ``psd``).
        """
        needs_series = sorted(k for k in self.weights if k in ("fcd", "psd"))
        if needs_series:
            raise ValueError(f"the loss terms {needs_series} need simulated time series; a fit "
                             f"on the model's FC alone takes FC and autocorrelation terms only "
                             f"(loss=fc or loss=fc_acf)")
        return self._total(Simulation(None, tr, fc, prior_values or {}, acf), targets)

    def _total(self, sim: Simulation, targets: Targets) -> tuple[Tensor, dict[str, Tensor]]:
        parts = {name: term(self, sim, targets) for name, term in LOSS_TERMS.items()
                 if name in self.weights}  # registration order: the same sum every time
        total = sum(self.weights[k] * v for k, v in parts.items())
        return total, parts

    def prior(self, values: Mapping[str, tuple[Any, Tensor]]) -> Tensor:
        """``sum 0.5 ((u - mu) / sd)^2`` over the parameters with a prior (a scalar)."""
        total = None
        for name, p in self.priors.items():
            if name not in values:
                raise ValueError(f"prior on unknown parameter {name!r}; parameters are "
                                 f"{sorted(values)}")
            spec, raw = values[name]
            mu = spec.inverse_transform(torch.tensor(float(p["mean"]))).to(raw)
            term = 0.5 * ((raw - mu) / float(p["std"])).pow(2).mean()
            total = term if total is None else total + term
        if total is None:
            raise ValueError("no priors configured")
        return total


@dataclass
class Simulation:
    """What a loss term sees of one simulation.

    Attributes:
        bold: filtered simulated BOLD (B, T, N), or None for a model FC known without one.
        tr: its sampling interval, s.
        fc: its FC (B, N, N).
        prior_values: ``{path: (spec, raw tensor)}`` of the parameters, for ``prior``.
        acf: its autocorrelations (B, L, N) when known without ``bold``, else None.
    """

    bold: Tensor | None
    tr: float
    fc: Tensor
    prior_values: Mapping[str, tuple[Any, Tensor]]
    acf: Tensor | None = None


@LOSS_TERMS.register("fc_corr")
def fc_corr(obj: Objective, sim: Simulation, targets: Targets) -> Tensor:
    return 1 - metrics.fc_similarity(sim.fc, targets.fc)


@LOSS_TERMS.register("fc_corr_fisher")
def fc_corr_fisher(obj: Objective, sim: Simulation, targets: Targets) -> Tensor:
    return 1 - metrics.fc_similarity(sim.fc, targets.fc, fisher=True)


@LOSS_TERMS.register("fc_mse")
def fc_mse(obj: Objective, sim: Simulation, targets: Targets) -> Tensor:
    return metrics.fc_mse(sim.fc, targets.fc)


@LOSS_TERMS.register("fcd")
def fcd(obj: Objective, sim: Simulation, targets: Targets) -> Tensor:
    values = metrics.fcd_values(sim.bold, sim.tr, obj.fcd_window, obj.fcd_step)
    if targets.fcd is not None:
        return metrics.wasserstein_1d(values, targets.fcd)
    if targets.fcd_hist is not None:
        return torch.stack([metrics.wasserstein_to_hist(values[b], e, c)
                            for b, (e, c) in enumerate(targets.fcd_hist)])
    raise ValueError("the loss has an FCD term but the data give no FCD target")


@LOSS_TERMS.register("acf")
def acf(obj: Objective, sim: Simulation, targets: Targets) -> Tensor:
    if targets.acf is None:
        raise ValueError("the loss has an autocorrelation (acf) term but no target was computed: "
                         "it needs the empirical BOLD time series, not a precomputed FC")
    lags = targets.acf.shape[1]
    model = sim.acf if sim.acf is not None else metrics.autocorrelation(sim.bold, lags)
    if model.shape != targets.acf.shape:
        raise ValueError(f"simulated autocorrelations {tuple(model.shape)} and their target "
                         f"{tuple(targets.acf.shape)} differ")
    return (model - targets.acf).pow(2).mean((1, 2))


@LOSS_TERMS.register("psd")
def psd(obj: Objective, sim: Simulation, targets: Targets) -> Tensor:
    if targets.psd is None:
        raise ValueError("the loss has a PSD term but no PSD target was computed")
    sim_psd = normalized_psd(sim.bold, sim.tr, obj.psd_nperseg)
    if sim_psd.shape != targets.psd.shape:
        raise ValueError(f"simulated PSD {tuple(sim_psd.shape)} and target PSD "
                         f"{tuple(targets.psd.shape)} differ: simulate at least "
                         f"psd_nperseg = {obj.psd_nperseg} volumes")
    df = 1.0 / (sim.tr * obj.psd_nperseg)
    cdf_gap = (sim_psd - targets.psd).cumsum(1).abs()
    return cdf_gap.sum(1).mean(-1) * df


@LOSS_TERMS.register("prior")
def prior(obj: Objective, sim: Simulation, targets: Targets) -> Tensor:
    return obj.prior(sim.prior_values).expand(sim.fc.shape[0])
