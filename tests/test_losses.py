"""The loss terms, the objective that weights them, and the simulated-BOLD filter."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import scipy.stats
import torch

from brainfit import losses, metrics
from brainfit.data.preprocess import bandpass
from brainfit.losses import LOSS_TERMS, Objective, SimulatedBoldFilter, Targets
from brainfit.params import ParamSpec

TR = 2.0


def _bold(seed, B=2, T=200, N=5):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(N, N, generator=g, dtype=torch.float64)
    return torch.randn(B, T, N, generator=g, dtype=torch.float64) @ mix


def _targets(y, nperseg=32):
    return Targets(fc=metrics.fc(y), fcd=metrics.fcd_values(y, TR, 60.0, 2.0),
                   psd=losses.normalized_psd(y, TR, nperseg))


def _triu(m):
    i, j = np.triu_indices(m.shape[-1], 1)
    return m[..., i, j]


def test_every_term_is_registered_in_a_fixed_order():
    assert list(LOSS_TERMS) == ["fc_corr", "fc_corr_fisher", "fc_mse", "fcd", "acf", "psd",
                                "prior"]


def test_each_term_equals_its_formula():
    sim, emp = _bold(0), _bold(1)
    obj = Objective(weights={"fc_corr": 1.0, "fc_corr_fisher": 1.0, "fc_mse": 1.0, "fcd": 1.0,
                             "psd": 1.0}, psd_nperseg=32)
    total, parts = obj(sim, TR, _targets(emp))
    fs, fe = _triu(metrics.fc(sim).numpy()), _triu(metrics.fc(emp).numpy())
    for b in range(2):
        r = scipy.stats.pearsonr(fs[b], fe[b])[0]
        assert parts["fc_corr"][b].item() == pytest.approx(1 - r, abs=1e-12)
        rz = scipy.stats.pearsonr(np.arctanh(fs[b]), np.arctanh(fe[b]))[0]
        assert parts["fc_corr_fisher"][b].item() == pytest.approx(1 - rz, abs=1e-9)
        assert parts["fc_mse"][b].item() == pytest.approx(np.mean((fs[b] - fe[b]) ** 2))
        ds = metrics.fcd_values(sim, TR, 60.0, 2.0)[b].numpy()
        de = metrics.fcd_values(emp, TR, 60.0, 2.0)[b].numpy()
        assert parts["fcd"][b].item() == pytest.approx(scipy.stats.wasserstein_distance(ds, de))
    torch.testing.assert_close(total, sum(parts.values()))


def test_psd_term_is_the_spectral_wasserstein_distance():
    """Zero for the same series; for sinusoids on the Welch bins k1 and k2, whose spectra have
    the same shape, the distance between the peaks: |k1 - k2| df."""
    y = _bold(2)
    obj = Objective(weights={"psd": 1.0}, psd_nperseg=32)
    _, parts = obj(y, TR, _targets(y))
    torch.testing.assert_close(parts["psd"], torch.zeros(2, dtype=torch.float64))
    df = 1.0 / (TR * 32)
    t = torch.arange(256, dtype=torch.float64) * TR
    wave = lambda k: torch.sin(2 * torch.pi * k * df * t)[None, :, None].expand(1, -1, 3)  # noqa
    _, parts = obj(wave(4), TR, _targets(wave(7)))
    assert parts["psd"].item() == pytest.approx(3 * df, rel=1e-9)


def test_acf_term_is_the_mean_squared_gap_of_the_autocorrelations():
    """Over lags 1 .. acf_seconds / TR volumes (here 10 s at TR 2 s: 5 lags), from the BOLD or
    from autocorrelations given with a model FC (the linearised fit); zero for the same series."""
    sim, emp = _bold(10), _bold(11)
    obj = Objective(weights={"fc_corr": 1.0, "acf": 1.0}, acf_seconds=10.0)
    assert obj.acf_lags(TR) == 5 and Objective().acf_lags(TR) == 0
    targets = Targets(fc=metrics.fc(emp), acf=metrics.autocorrelation(emp, 5))
    _, parts = obj(sim, TR, targets)
    gap = metrics.autocorrelation(sim, 5) - metrics.autocorrelation(emp, 5)
    torch.testing.assert_close(parts["acf"], gap.pow(2).mean((1, 2)))
    _, same = obj(emp, TR, targets)
    torch.testing.assert_close(same["acf"], torch.zeros(2, dtype=torch.float64))
    _, given = obj.from_fc(metrics.fc(sim), TR, targets, acf=metrics.autocorrelation(sim, 5))
    torch.testing.assert_close(given["acf"], parts["acf"])
    with pytest.raises(ValueError, match="no target was computed"):
        obj(sim, TR, Targets(fc=metrics.fc(emp)))
    with pytest.raises(ValueError, match="acf_seconds"):
        Objective(acf_seconds=0.0)
    with pytest.raises(ValueError, match="fcd_step must be a positive, finite number"):
        Objective(fcd_step=-2.0)


def test_weights_scale_terms_and_zero_weights_drop_them():
    sim, emp = _bold(3), _bold(4)
    t = _targets(emp)
    _, one = Objective(weights={"fc_corr": 1.0, "fcd": 1.0})(sim, TR, t)
    total, parts = Objective(weights={"fc_corr": 2.0, "fcd": 0.5, "fc_mse": 0.0})(sim, TR, t)
    assert set(parts) == {"fc_corr", "fcd"}
    torch.testing.assert_close(total, 2.0 * one["fc_corr"] + 0.5 * one["fcd"])


def test_prior_term_is_half_the_squared_z_score_in_the_unconstrained_space():
    spec = ParamSpec(0.5, "1", low=0.0, high=1.0)
    raw = spec.inverse_transform(torch.tensor([0.2, 0.7], dtype=torch.float64))
    mu = spec.inverse_transform(torch.tensor(0.4, dtype=torch.float64))
    obj = Objective(weights={"fc_corr": 1.0, "prior": 1.0},
                    priors={"G": {"mean": 0.4, "std": 0.5}})
    y = _bold(5)
    _, parts = obj(y, TR, _targets(y), {"G": (spec, raw)})
    expect = (0.5 * ((raw - mu) / 0.5) ** 2).mean()
    torch.testing.assert_close(parts["prior"], expect.expand(2))


def test_a_new_term_is_one_registered_function():
    @LOSS_TERMS.register("mean_fc_gap")
    def mean_fc_gap(obj, sim, targets):
        return (sim.fc.mean((-2, -1)) - targets.fc.mean((-2, -1))).abs()

    try:
        y, e = _bold(6), _bold(7)
        total, parts = Objective(weights={"mean_fc_gap": 1.0})(y, TR, _targets(e))
        torch.testing.assert_close(total, (metrics.fc(y).mean((-2, -1))
                                           - metrics.fc(e).mean((-2, -1))).abs())
    finally:
        LOSS_TERMS._entries.pop("mean_fc_gap")


def test_bad_objectives_are_rejected_with_the_valid_terms():
    with pytest.raises(ValueError, match=r"unknown loss term\(s\) \['fc'\]; valid terms are"):
        Objective(weights={"fc": 1.0})
    with pytest.raises(ValueError, match="finite and >= 0"):
        Objective(weights={"fc_corr": -1.0})
    with pytest.raises(ValueError, match="weight 0"):
        Objective(weights={"fc_corr": 0.0, "prior": 1.0}, priors={"G": {"mean": 0, "std": 1}})
    with pytest.raises(ValueError, match="no priors are configured"):
        Objective(weights={"fc_corr": 1.0, "prior": 1.0})
    y = _bold(8)
    with pytest.raises(ValueError, match="no FCD target"):
        Objective(weights={"fcd": 1.0})(y, TR, Targets(fc=metrics.fc(y)))


def test_the_filter_matches_the_empirical_preprocessing():
    """Detrend + zero-phase band-pass + z-score of simulated BOLD reproduce what the data get
    (scipy's sosfiltfilt), away from the edges where the two pad differently."""
    T, N = 600, 3
    g = np.random.default_rng(0)
    x = np.cumsum(g.standard_normal((T, N)), axis=0) + np.linspace(0, 5, T)[:, None]
    ours = SimulatedBoldFilter(TR, low_hz=0.01, high_hz=0.08)(torch.as_tensor(x)[None])[0]
    ref = bandpass(scipy.signal.detrend(x, axis=0), TR, 0.01, 0.08)
    ref = (ref - ref.mean(0)) / ref.std(0)
    mid = slice(100, T - 100)
    for n in range(N):
        assert np.corrcoef(ours[mid, n].numpy(), ref[mid, n])[0, 1] > 0.99
