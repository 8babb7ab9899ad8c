"""Preprocessing steps, empirical observables and the SC-FC baseline, against reference maths."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch

from brainfit import metrics
from brainfit.data import (
    Cohort,
    DataError,
    Preprocessing,
    Subject,
    bandpass,
    detrend,
    empirical_fc,
    empirical_fcd,
    empirical_targets,
    group_subject,
    normalize_weights,
    preprocess,
    preprocess_bold,
    regress_global_signal,
    sc_fc_baseline,
    zscore,
)


def amplitude(x: np.ndarray, f: float, tr: float) -> float:
    """Amplitude of the f-Hz sinusoid in x by least squares on sin and cos."""
    t = np.arange(len(x)) * tr
    basis = np.c_[np.sin(2 * np.pi * f * t), np.cos(2 * np.pi * f * t)]
    coef, *_ = np.linalg.lstsq(basis, x, rcond=None)
    return float(np.hypot(*coef))


def test_bandpass_keeps_the_in_band_sinusoid_and_removes_the_others():
    """0.003 Hz and 0.4 Hz are removed, 0.05 Hz is kept (band 0.01-0.1 Hz, TR 0.5 s).

    The zero-phase filter multiplies a sinusoid's amplitude by |H(f)|^2 (the design's response,
    applied forwards and backwards). Away from the edges (1/4 of the series cut at each end), the
    measured amplitudes must match |H(f)|^2 from scipy.signal.sosfreqz, and concretely the in-band
    component must keep > 95 % of its amplitude and the others < 1 %.
    """
    tr, n_t = 0.5, 4800  # 40 minutes at 2 Hz
    t = np.arange(n_t) * tr
    freqs = {"slow": 0.003, "in_band": 0.05, "fast": 0.4}
    comps = {k: np.sin(2 * np.pi * f * t + 0.3) for k, f in freqs.items()}
    x = (comps["slow"] + comps["in_band"] + comps["fast"])[:, None] * np.array([1.0, 2.0])
    y = bandpass(x, tr, 0.01, 0.1, order=2)
    mid = slice(n_t // 4, 3 * n_t // 4)
    sos = scipy.signal.butter(2, [0.01, 0.1], btype="bandpass", fs=1 / tr, output="sos")
    for k, f in freqs.items():
        _, h = scipy.signal.sosfreqz(sos, worN=[f], fs=1 / tr)
        gain = abs(h[0]) ** 2
        for col, scale in ((0, 1.0), (1, 2.0)):
            measured = amplitude(y[mid, col], f, tr) / scale
            assert measured == pytest.approx(gain, abs=5e-3), (k, col)
    assert amplitude(y[mid, 0], 0.05, tr) > 0.95
    assert amplitude(y[mid, 0], 0.003, tr) < 0.01 and amplitude(y[mid, 0], 0.4, tr) < 0.01
    # nothing but the in-band component is left: the residual is tiny
    np.testing.assert_allclose(y[mid, 0], comps["in_band"][mid], atol=0.06)


def test_bandpass_respects_nyquist():
    """At TR 6 s, Nyquist is 1/12 Hz < 0.1 Hz: error by default; 'highpass' drops the upper edge."""
    x = np.random.default_rng(0).standard_normal((300, 3))
    with pytest.raises(DataError, match=r"not below the Nyquist frequency .*0\.0833.*TR = 6"):
        bandpass(x, 6.0, 0.01, 0.1)
    y = bandpass(x, 6.0, 0.01, 0.1, above_nyquist="highpass")
    sos = scipy.signal.butter(2, 0.01, btype="highpass", fs=1 / 6.0, output="sos")
    np.testing.assert_allclose(y, scipy.signal.sosfiltfilt(sos, x, axis=0))
    with pytest.raises(DataError, match="too few for this band-pass"):
        bandpass(x[:8], 0.5, 0.01, 0.1, order=4)


def test_detrend_zscore_and_global_signal_regression():
    """Detrend removes an exact line; z-score gives mean 0 / sd 1; GSR leaves no global signal."""
    t = np.arange(100.0)
    line = np.c_[3 + 0.5 * t, -2 * t]
    np.testing.assert_allclose(detrend(line), 0.0, atol=1e-10)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200, 5)) * [1, 2, 3, 4, 5] + 7
    z = zscore(x)
    np.testing.assert_allclose(z.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(0), 1.0)
    g = rng.standard_normal(200)
    mixed = x + np.outer(g, [1.0, -0.5, 2.0, 0.0, 3.0])
    r = regress_global_signal(mixed)
    gs = mixed.mean(axis=1) - mixed.mean()
    # residuals are orthogonal to the (centred) global signal and keep the region means
    np.testing.assert_allclose(gs @ (r - r.mean(0)), 0.0, atol=1e-8)
    np.testing.assert_allclose(r.mean(0), mixed.mean(0))


def test_preprocess_bold_order_and_drop():
    """With only drop_initial on, the series is x[k:]; the full pipeline ends z-scored."""
    x = np.random.default_rng(2).standard_normal((120, 4))
    off = Preprocessing(drop_initial=5, detrend=False, bandpass=False, zscore=False)
    np.testing.assert_array_equal(preprocess_bold(x, 1.0, off), x[5:])
    full = preprocess_bold(x, 1.0, Preprocessing(drop_initial=5))
    assert full.shape == (115, 4)
    np.testing.assert_allclose(full.std(0), 1.0)
    expected = zscore(bandpass(detrend(x[5:]), 1.0, 0.01, 0.1, 2))
    np.testing.assert_allclose(full, expected)


def test_preprocessing_config_validation():
    """Unknown keys and inconsistent settings raise with the valid choices."""
    with pytest.raises(ValueError, match=r"unknown preprocessing option\(s\) \['zscor'\]"):
        Preprocessing.coerce({"zscor": True})
    with pytest.raises(ValueError, match="low_hz .* must be below high_hz"):
        Preprocessing(low_hz=0.2, high_hz=0.1)
    with pytest.raises(ValueError, match="above_nyquist must be one of"):
        Preprocessing(above_nyquist="clip")
    with pytest.raises(ValueError, match="drop_initial must be >= 0"):
        Preprocessing(drop_initial=-1)
    with pytest.raises(ValueError, match=r"low_hz must be a positive, finite number \(Hz\)"):
        Preprocessing(low_hz=0.0)
    cfg = Preprocessing.coerce({"_target_": "x", "zscore": False})
    assert cfg.zscore is False and cfg.detrend is True


def test_preprocess_cohort_normalises_weights_and_leaves_input_alone():
    """preprocess returns new subjects: max-normalised SC, processed BOLD; stale targets dropped."""
    rng = np.random.default_rng(3)
    w = rng.random((4, 4)) * 50
    s = Subject(id="a", weights=w, bold=rng.standard_normal((200, 4)), tr=1.0,
                fc_target=np.eye(4))
    out = preprocess(Cohort([s]), Preprocessing())
    np.testing.assert_allclose(out[0].weights, w / w.max())
    assert out[0].fc_target is None and s.fc_target is not None
    np.testing.assert_array_equal(s.weights, w)
    np.testing.assert_allclose(normalize_weights(w, "row_sum").sum(1), 1.0)


def test_empirical_observables_match_references():
    """FC = np.corrcoef; FCD = metrics.fcd; the FCD histogram holds all W(W-1)/2 values."""
    rng = np.random.default_rng(4)
    s = Subject(id="a", weights=np.ones((5, 5)), bold=rng.standard_normal((150, 5)), tr=2.0)
    np.testing.assert_allclose(empirical_fc(s), np.corrcoef(s.bold.T), atol=1e-12)
    fcd = empirical_fcd(s, window=60.0, step=10.0)
    ref = metrics.fcd(torch.as_tensor(s.bold), 2.0, 60.0, 10.0).numpy()
    np.testing.assert_allclose(fcd, ref)
    c = empirical_targets(Cohort([s]), fcd_window=60.0, fcd_step=10.0, fcd_bins=20)
    edges, counts = c[0].fcd_target
    n_w = fcd.shape[0]
    assert counts.sum() == n_w * (n_w - 1) / 2 and edges.shape == (21,)
    np.testing.assert_allclose(c[0].fc_target, empirical_fc(s))
    short = Subject(id="b", weights=np.ones((5, 5)), bold=rng.standard_normal((20, 5)), tr=2.0)
    with pytest.raises(DataError, match=r"subject 'b'.*FCD.*shorter than one window"):
        empirical_fcd(short)


def test_sc_fc_baseline_against_numpy():
    """r(SC, FC) and r(log(SC + eps), FC) equal np.corrcoef of the upper triangles.

    SC is directed here, so it is symmetrised first; eps defaults to its smallest positive entry.
    """
    rng = np.random.default_rng(5)
    n = 6
    w = rng.random((n, n)) * (rng.random((n, n)) > 0.3)
    np.fill_diagonal(w, 0)
    bold = rng.standard_normal((300, n))
    s = Subject(id="a", weights=w, bold=bold, tr=1.0)
    base = sc_fc_baseline(s)
    sym = (w + w.T) / 2
    iu = np.triu_indices(n, 1)
    fc = np.corrcoef(bold.T)
    eps = sym[sym > 0].min()
    assert base.r_sc[0] == pytest.approx(np.corrcoef(sym[iu], fc[iu])[0, 1], abs=1e-10)
    assert base.r_log_sc[0] == pytest.approx(
        np.corrcoef(np.log(sym + eps)[iu], fc[iu])[0, 1], abs=1e-10)
    # an FC that is an affine function of SC is explained perfectly
    exact = Subject(id="b", weights=sym, fc_target=0.1 + 0.5 * sym / sym.max() + 0.4 * np.eye(n))
    assert sc_fc_baseline(exact).r_sc[0] == pytest.approx(1.0)


def test_group_subject_averages_fc_and_connectome():
    """The group 'subject' has the mean SC and the mean of the subjects' FCs, and no BOLD."""
    rng = np.random.default_rng(6)
    subs = [Subject(id=f"s{k}", weights=rng.random((4, 4)), bold=rng.standard_normal((80, 4)),
                    tr=2.0) for k in range(3)]
    g = group_subject(Cohort(subs))
    np.testing.assert_allclose(g.weights, np.mean([s.weights for s in subs], axis=0))
    np.testing.assert_allclose(g.fc_target, np.mean([np.corrcoef(s.bold.T) for s in subs], 0),
                               atol=1e-12)
    assert g.bold is None and g.tr == 2.0
