"""brainfit.metrics against straightforward NumPy/SciPy computations, known answers and gradcheck.

References: np.corrcoef, scipy.stats.pearsonr, scipy.stats.ks_2samp, scipy.stats.kstest,
scipy.stats.wasserstein_distance, scipy.signal.welch, scipy.signal.hilbert, and explicit loops over
windows. Each test states what it checks and why the expected value is right.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from problems import TOL
from scipy import signal, stats

from brainfit import metrics as M

DTYPES = [torch.float32, torch.float64]


def _rand(*shape, dtype=torch.float64, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype=dtype, device=device)


def _close(actual: torch.Tensor, expected, dtype, scale: float = 1.0):
    """Compare with the shared per-dtype tolerance (atol scaled by the size of the quantity)."""
    tol = TOL[dtype]
    np.testing.assert_allclose(actual.detach().cpu().double().numpy(), np.asarray(expected),
                               rtol=tol["rtol"] * 10, atol=tol["atol"] * 10 * scale)


def _np_fcd(x: np.ndarray, w: int, s: int) -> np.ndarray:
    """FCD by an explicit loop: corrcoef per window, then corrcoef of the upper triangles."""
    n_t, n = x.shape
    iu = np.triu_indices(n, 1)
    vecs = [np.corrcoef(x[t0:t0 + w].T)[iu] for t0 in range(0, n_t - w + 1, s)]
    return np.corrcoef(np.array(vecs))


# ----------------------------------------------------------------------------- FC


@pytest.mark.parametrize("dtype", DTYPES)
def test_fc_matches_numpy_corrcoef(dtype, device):
    """fc(x)[b] is np.corrcoef of the regions of batch element b (Pearson matrix by definition)."""
    x = _rand(3, 200, 6, dtype=dtype, device=device) + 5.0  # offset: centering must handle it
    out = M.fc(x)
    assert out.shape == (3, 6, 6) and out.dtype == dtype and out.device == x.device
    for b in range(3):
        _close(out[b], np.corrcoef(x[b].double().cpu().numpy().T), dtype)


def test_fc_unbatched_and_batch_independence():
    """A (T, N) input gives (N, N) equal to the batched result; changing one batch element leaves
    the others unchanged (each element is computed on its own)."""
    x = _rand(4, 50, 5)
    out = M.fc(x)
    assert M.fc(x[2]).shape == (5, 5)
    torch.testing.assert_close(M.fc(x[2]), out[2])
    y = x.clone()
    y[1] = _rand(50, 5, seed=9)
    out2 = M.fc(y)
    torch.testing.assert_close(out2[[0, 2, 3]], out[[0, 2, 3]])
    assert not torch.allclose(out2[1], out[1])


def test_fc_known_answers_identical_and_negated():
    """Identical series correlate with r = 1, a series and its negation with r = -1 (exactly up to
    rounding), and an affine copy a*x + b with a > 0 with r = 1 too."""
    a = _rand(100, 1)
    x = torch.cat([a, a, -a, 3.0 * a + 7.0, _rand(100, 1, seed=3)], dim=1)
    r = M.fc(x)
    assert r[0, 1] == pytest.approx(1.0, abs=1e-12)
    assert r[0, 2] == pytest.approx(-1.0, abs=1e-12)
    assert r[0, 3] == pytest.approx(1.0, abs=1e-12)
    assert r[1, 2] == pytest.approx(-1.0, abs=1e-12)
    assert (r.abs() <= 1.0).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_fc_flat_node_gives_zero_correlation_and_finite_gradient(dtype):
    """A constant region has undefined correlation; by convention its off-diagonal entries are 0,
    its diagonal 1, with no NaN, and the gradient of any loss stays finite. A constant that is not
    exactly representable (0.1) and a series toggling by one ulp also count as flat."""
    x = _rand(2, 300, 5, dtype=dtype)
    x[:, :, 1] = 0.1  # exactly constant
    one_ulp = torch.finfo(dtype).eps * 0.5
    x[:, :, 3] = 0.5 + one_ulp * (torch.arange(300) % 2).to(dtype)  # toggles by one ulp
    x.requires_grad_(True)
    r = M.fc(x)
    assert torch.isfinite(r).all()
    for k in (1, 3):
        off = torch.ones(5, dtype=torch.bool)
        off[k] = False
        assert (r[:, k, off] == 0).all() and (r[:, off, k] == 0).all()
        assert (r[:, k, k] == 1).all()
    # the other regions still match numpy
    keep = [0, 2, 4]
    ref = np.corrcoef(x[0].detach().double().numpy()[:, keep].T)
    _close(r[0][keep][:, keep], ref, dtype)
    (r * _rand(5, 5, dtype=dtype, seed=4)).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad[:, :, 1] == 0).all()  # no gradient through an undefined normalisation


# ----------------------------------------------------------------------------- triangles, FC fit


def test_upper_triangle_matches_numpy_triu_indices():
    """Entries and order are those of np.triu_indices(N, k), for k = 0, 1, 2 and both layouts."""
    m = _rand(3, 6, 6)
    for k in (0, 1, 2):
        iu = np.triu_indices(6, k)
        out = M.upper_triangle(m, k)
        assert out.shape == (3, len(iu[0]))
        np.testing.assert_array_equal(out.numpy(), m.numpy()[:, iu[0], iu[1]])
        np.testing.assert_array_equal(M.upper_triangle(m[1], k).numpy(), m[1].numpy()[iu])


@pytest.mark.parametrize("dtype", DTYPES)
def test_fc_similarity_matches_scipy_pearsonr(dtype):
    """fc_similarity is Pearson r of the upper triangles (scipy.stats.pearsonr); with fisher=True
    of their arctanh; an unbatched target broadcasts to every batch element."""
    x = _rand(3, 80, 7, dtype=dtype)
    target = M.fc(_rand(80, 7, dtype=dtype, seed=5))
    a = M.fc(x)
    iu = np.triu_indices(7, 1)
    t_np = target.double().numpy()[iu]
    sim = M.fc_similarity(a, target)
    sim_f = M.fc_similarity(a, target, fisher=True)
    assert sim.shape == (3,) and sim.dtype == dtype
    for b in range(3):
        a_np = a[b].double().numpy()[iu]
        _close(sim[b], stats.pearsonr(a_np, t_np).statistic, dtype)
        _close(sim_f[b], stats.pearsonr(np.arctanh(a_np), np.arctanh(t_np)).statistic, dtype)
    # symmetric in its arguments, batched target equal to the broadcast one, unbatched -> 0-d
    torch.testing.assert_close(M.fc_similarity(target, a), sim)
    torch.testing.assert_close(M.fc_similarity(a, target.expand(3, 7, 7)), sim)
    assert M.fc_similarity(a[0], target).shape == ()


def test_fc_similarity_known_answers_and_fisher_clamp():
    """An FC compared with itself gives 1; the Fisher transform stays finite although the diagonal
    and some entries are exactly +/-1 (clamped to 1 - 1e-7 before arctanh)."""
    a = _rand(100, 1)
    x = torch.cat([a, a, -a, _rand(100, 3, seed=2)], dim=1)  # r = +1 and -1 entries
    f = M.fc(x)
    assert M.fc_similarity(f, f).item() == pytest.approx(1.0, abs=1e-12)
    sf = M.fc_similarity(f, M.fc(_rand(100, 6, seed=3)), fisher=True)
    assert torch.isfinite(sf)


def test_fc_mse_matches_numpy():
    """fc_mse is the mean of squared differences over the N(N-1)/2 upper-triangle entries."""
    a, b = M.fc(_rand(2, 60, 5)), M.fc(_rand(60, 5, seed=1))
    iu = np.triu_indices(5, 1)
    out = M.fc_mse(a, b)
    for k in range(2):
        ref = np.mean((a[k].numpy()[iu] - b.numpy()[iu]) ** 2)
        assert out[k].item() == pytest.approx(ref, rel=1e-12)
    assert M.fc_mse(b, b).item() == 0.0


def test_gradcheck_fc_similarity_of_fc():
    """Autograd gradient of fc_similarity(fc(x), target) (plain and Fisher) w.r.t. the time series
    equals finite differences (float64)."""
    x = _rand(2, 15, 4).requires_grad_(True)
    target = M.fc(_rand(15, 4, seed=7))
    assert torch.autograd.gradcheck(lambda y: M.fc_similarity(M.fc(y), target), (x,))
    assert torch.autograd.gradcheck(lambda y: M.fc_similarity(M.fc(y), target, fisher=True), (x,))
    assert torch.autograd.gradcheck(lambda y: M.fc_mse(M.fc(y), target), (x,))


def test_autocorrelation_matches_the_overlapping_product_loop():
    """rho(k) = mean over t < T - k of z_t z_(t+k), z standardised over the whole series; an
    unbatched series drops the batch dimension; a flat region gets 0."""
    x = _rand(2, 50, 3)
    x[1, :, 2] = 4.0
    out = M.autocorrelation(x, 6)
    assert out.shape == (2, 6, 3)
    for b in range(2):
        for n in range(2 if b else 3):
            z = x[b, :, n].numpy()
            z = (z - z.mean()) / z.std()
            ref = [np.mean(z[k:] * z[:-k]) for k in range(1, 7)]
            np.testing.assert_allclose(out[b, :, n].numpy(), ref, rtol=1e-12, atol=1e-12)
    assert out[1, :, 2].abs().max().item() == 0.0
    torch.testing.assert_close(M.autocorrelation(x[0], 6), out[0])


def test_autocorrelation_of_an_ar1_process_is_phi_to_the_lag():
    g = torch.Generator().manual_seed(0)
    phi, T = 0.8, 40_000
    e = torch.randn(T, 4, generator=g, dtype=torch.float64)
    x = torch.zeros(T, 4, dtype=torch.float64)
    for t in range(1, T):
        x[t] = phi * x[t - 1] + e[t]
    out = M.autocorrelation(x, 5)
    expected = phi ** torch.arange(1, 6, dtype=torch.float64)
    assert (out - expected[:, None]).abs().max().item() < 0.02


def test_gradcheck_autocorrelation():
    x = _rand(2, 12, 3).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda y: M.autocorrelation(y, 4), (x,))


def test_autocorrelation_bad_lags_raise():
    with pytest.raises(ValueError, match="n_lags"):
        M.autocorrelation(_rand(10, 3), 10)
    with pytest.raises(ValueError, match="n_lags"):
        M.autocorrelation(_rand(10, 3), 0)


def test_phase_randomized_surrogates_keep_the_cross_spectra():
    """The FC and every region's power spectrum are those of the original (to rounding), the
    series itself is not; odd and even lengths, batched or not."""
    g = torch.Generator().manual_seed(0)
    for T in (64, 65):
        x = _rand(2, T, 4) @ torch.randn(4, 4, generator=g, dtype=torch.float64)
        y = M.phase_randomized(x, torch.Generator().manual_seed(1))
        assert y.shape == x.shape
        torch.testing.assert_close(M.fc(y), M.fc(x), rtol=0, atol=1e-10)
        torch.testing.assert_close(torch.fft.rfft(y, dim=1).abs(), torch.fft.rfft(x, dim=1).abs())
        assert (y - x).abs().max() > 0.1
        assert M.phase_randomized(x[0]).shape == (T, 4)


# ----------------------------------------------------------------------------- FCD


@pytest.mark.parametrize("dtype", DTYPES)
def test_fcd_matches_explicit_window_loop(dtype, device):
    """fcd equals the loop: corrcoef per window (length round(window/tr) samples, step
    round(step/tr)), then corrcoef between the windows' upper triangles. Here tr = 0.72 s,
    window = 10 s -> 14 samples (13.89), step = 2 s -> 3 samples (2.78)."""
    x = _rand(2, 90, 6, dtype=dtype, device=device)
    out = M.fcd(x, tr=0.72, window=10.0, step=2.0)
    w, s, n_win = M.fcd_windows(90, 0.72, 10.0, 2.0)
    assert (w, s, n_win) == (14, 3, (90 - 14) // 3 + 1)
    assert out.shape == (2, n_win, n_win) and out.dtype == dtype
    for b in range(2):
        _close(out[b], _np_fcd(x[b].double().cpu().numpy(), 14, 3), dtype)
    torch.testing.assert_close(M.fcd(x[1], 0.72, 10.0, 2.0), out[1])
    vals = M.fcd_values(x, 0.72, 10.0, 2.0)
    assert vals.shape == (2, n_win * (n_win - 1) // 2)
    torch.testing.assert_close(vals, M.upper_triangle(out, 1))


def test_fcd_seconds_to_samples_rounding():
    """Seconds round to the nearest sample, halves up: 3 s at tr 2 s is 1.5 -> 2 samples;
    0.3 s at tr 0.2 s (1.5 in exact arithmetic, 1.4999... in floating point) -> 2; 2.9 s at 2 s
    (1.45) -> 1. Windows lie fully inside the series."""
    assert M.fcd_windows(10, 2.0, 3.0, 2.9) == (2, 1, 9)
    assert M.fcd_windows(10, 0.2, 0.3, 0.3) == (2, 2, 5)
    assert M.fcd_windows(10, 1.0, 10.0, 1.0) == (10, 1, 1)  # window = whole series: one window


def test_fcd_diagonal_and_constant_windows():
    """The FCD diagonal is 1; a series made of two repeated identical halves has FCD 1 between the
    corresponding windows (same data, same FC)."""
    half = _rand(20, 4)
    x = torch.cat([half, half])
    out = M.fcd(x, tr=1.0, window=10.0, step=5.0)  # windows start 0, 5, ..., 30
    assert torch.all(torch.diagonal(out) == 1)
    assert out[0, 4].item() == pytest.approx(1.0, abs=1e-12)  # windows 0-9 and 20-29
    assert out[1, 5].item() == pytest.approx(1.0, abs=1e-12)


def test_fcd_values_segments_pool_the_pieces():
    """With ``segment``, the FCD values are those of consecutive pieces of that many samples
    (explicit loop per piece), pooled; a remainder shorter than a piece is dropped; a segment at
    least the series' length is the whole series; batched and unbatched agree."""
    x = _rand(2, 100, 5)
    vals = M.fcd_values(x, 1.0, 8.0, 2.0, segment=30)  # pieces 0-29, 30-59, 60-89; 90-99 dropped
    iu = np.triu_indices(M.fcd_windows(30, 1.0, 8.0, 2.0)[2], 1)
    for b in range(2):
        expected = np.concatenate([_np_fcd(x[b, k:k + 30].numpy(), 8, 2)[iu] for k in (0, 30, 60)])
        _close(vals[b], expected, torch.float64)
        torch.testing.assert_close(M.fcd_values(x[b], 1.0, 8.0, 2.0, segment=30), vals[b])
    torch.testing.assert_close(M.fcd_values(x, 1.0, 8.0, 2.0, segment=100),
                               M.fcd_values(x, 1.0, 8.0, 2.0))
    with pytest.raises(ValueError, match="segment must be a positive"):
        M.fcd_values(x, 1.0, 8.0, 2.0, segment=0)


def test_fcd_of_a_long_series_by_segments_is_that_of_short_recordings():
    """The FCD distribution depends on the recording's length: a long series pairs windows far
    apart, which are less alike. For a stationary process (AR(1) in time, a fixed mixing across
    regions), the FCD of one long series cut into pieces of T samples matches that of independent
    recordings T samples long (KS small), while the long series' whole FCD does not (KS large)."""
    g = torch.Generator().manual_seed(3)
    n, T, k = 8, 40, 60
    mix = torch.eye(n) + 0.6 * torch.randn(n, n, generator=g, dtype=torch.float64)

    def ar1(length):
        e = torch.randn(length, n, generator=g, dtype=torch.float64)
        x = torch.zeros_like(e)
        for t in range(1, length):
            x[t] = 0.8 * x[t - 1] + e[t]
        return x @ mix.T

    short = torch.cat([M.fcd_values(ar1(T), 1.0, 20.0, 2.0) for _ in range(k)])
    long = ar1(T * k)
    by_pieces = M.fcd_values(long, 1.0, 20.0, 2.0, segment=T)
    whole = M.fcd_values(long, 1.0, 20.0, 2.0)
    assert float(M.ks_distance(by_pieces, short)) < 0.1
    assert float(M.ks_distance(whole, short)) > 0.3


def test_gradcheck_fcd_values():
    """Gradient of the FCD values w.r.t. the time series matches finite differences (float64)."""
    x = _rand(1, 16, 4).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda y: M.fcd_values(y, tr=1.0, window=6.0, step=2.0), (x,))


# ----------------------------------------------------------------------------- distributions


@pytest.mark.parametrize("dtype", DTYPES)
def test_ks_distance_matches_scipy(dtype):
    """ks_distance equals scipy.stats.ks_2samp(...).statistic for M1 != M2, also with many ties
    (integer-valued samples), batched and 1-D."""
    a = _rand(3, 57, dtype=dtype)
    b = _rand(3, 40, dtype=dtype, seed=1) + 0.3
    ties_a = torch.round(2 * a)
    ties_b = torch.round(2 * b)
    for u, v in ((a, b), (ties_a, ties_b)):
        out = M.ks_distance(u, v)
        assert out.shape == (3,) and out.dtype == dtype
        for k in range(3):
            ref = stats.ks_2samp(u[k].double().numpy(), v[k].double().numpy()).statistic
            _close(out[k], ref, dtype)
    assert M.ks_distance(a[0], b[0]).shape == ()
    torch.testing.assert_close(M.ks_distance(a, b[1]), torch.stack(
        [M.ks_distance(a[k], b[1]) for k in range(3)]))
    assert M.ks_distance(a, a).abs().max() == 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_wasserstein_1d_matches_scipy(dtype):
    """wasserstein_1d (p=1) equals scipy.stats.wasserstein_distance, for M1 != M2 and with ties."""
    a = _rand(3, 57, dtype=dtype)
    b = _rand(3, 40, dtype=dtype, seed=1) * 1.5 + 0.2
    for u, v in ((a, b), (torch.round(2 * a), torch.round(2 * b))):
        out = M.wasserstein_1d(u, v)
        assert out.shape == (3,) and out.dtype == dtype
        for k in range(3):
            ref = stats.wasserstein_distance(u[k].double().numpy(), v[k].double().numpy())
            _close(out[k], ref, dtype)
    assert M.wasserstein_1d(a[0], b[0]).shape == ()
    assert M.wasserstein_1d(a, a).abs().max() == 0


def test_wasserstein_1d_p2_matches_replicated_samples():
    """W_p between samples of sizes M1, M2 equals W_p between a repeated M2 times and b repeated
    M1 times (same empirical distributions, equal sizes), where it is the p-mean of the differences
    of the sorted samples."""
    a, b = _rand(2, 7), _rand(2, 5, seed=2)
    for p in (2.0, 3.0):
        out = M.wasserstein_1d(a, b, p=p)
        for k in range(2):
            ra = np.sort(np.repeat(a[k].numpy(), 5))
            rb = np.sort(np.repeat(b[k].numpy(), 7))
            ref = np.mean(np.abs(ra - rb) ** p) ** (1 / p)
            assert out[k].item() == pytest.approx(ref, rel=1e-12)


def test_gradcheck_wasserstein_of_fcd():
    """Gradient of wasserstein_1d(fcd_values(x), target) w.r.t. the time series matches finite
    differences (float64); also W_2 and the gradient with respect to both samples."""
    x = _rand(2, 16, 4).requires_grad_(True)
    target = _rand(23, seed=3) * 0.3
    f = lambda y: M.wasserstein_1d(M.fcd_values(y, 1.0, 6.0, 2.0), target)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x,))
    a = _rand(2, 9).requires_grad_(True)
    b = _rand(2, 6, seed=1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda u, v: M.wasserstein_1d(u, v, p=2.0), (a, b))


def _hist_cdf_np(edges, counts):
    cdf = np.concatenate([[0.0], np.cumsum(counts) / np.sum(counts)])
    return lambda x: np.interp(x, edges, cdf, left=0.0, right=1.0)


HIST_EDGES = np.array([-1.0, -0.4, -0.1, 0.0, 0.3, 0.5, 1.0])
HIST_COUNTS = np.array([3.0, 10.0, 0.0, 25.0, 12.0, 5.0])  # includes an empty bin


@pytest.mark.parametrize("dtype", DTYPES)
def test_ks_distance_hist_matches_scipy_kstest(dtype):
    """ks_distance_hist is the one-sample KS statistic against the histogram's piecewise-linear
    CDF: scipy.stats.kstest(values, cdf).statistic (values partly outside the edges too)."""
    v = _rand(3, 40, dtype=dtype) * 0.5
    out = M.ks_distance_hist(v, torch.tensor(HIST_EDGES), HIST_COUNTS.tolist())
    assert out.shape == (3,) and out.dtype == dtype
    cdf = _hist_cdf_np(HIST_EDGES, HIST_COUNTS)
    for k in range(3):
        _close(out[k], stats.kstest(v[k].double().numpy(), cdf).statistic, dtype)
    assert M.ks_distance_hist(v[0], HIST_EDGES, HIST_COUNTS).shape == ()


@pytest.mark.parametrize("dtype", DTYPES)
def test_wasserstein_to_hist_matches_quantile_integral(dtype):
    """W1 to a histogram equals the integral over q in (0, 1) of |Q_n(q) - Q_H(q)|, evaluated by a
    fine midpoint rule on the quantile side (independent of the CDF-side formula in the code), with
    Q_H the piecewise-linear inverse of the histogram CDF."""
    v = _rand(3, 40, dtype=dtype) * 0.5
    out = M.wasserstein_to_hist(v, HIST_EDGES, HIST_COUNTS)
    assert out.shape == (3,) and out.dtype == dtype
    prob = HIST_COUNTS / HIST_COUNTS.sum()
    cdf_pts = np.concatenate([[0.0], np.cumsum(prob)])
    n_q = 400_000
    q = (np.arange(n_q) + 0.5) / n_q
    # Q_H(q): the bin k with cdf_k < q <= cdf_{k+1} (never an empty bin), linear inside it
    k_bin = np.clip(np.searchsorted(cdf_pts, q, side="left") - 1, 0, len(prob) - 1)
    q_h = HIST_EDGES[k_bin] + (q - cdf_pts[k_bin]) / prob[k_bin] * np.diff(HIST_EDGES)[k_bin]
    for k in range(3):
        s = np.sort(v[k].double().numpy())
        q_n = s[np.minimum((q * 40).astype(int), 39)]  # empirical quantile function
        ref = np.mean(np.abs(q_n - q_h))
        assert out[k].item() == pytest.approx(ref, rel=1e-5 if dtype == torch.float64 else 1e-4)


def test_wasserstein_to_hist_of_its_own_sample_is_small_and_grows_with_shift():
    """A large sample drawn from the histogram distribution is close to it (W1 ~ 1/sqrt(M)), and
    shifting the sample by c moves W1 to about |c| (W1 of a shifted distribution is the shift)."""
    g = np.random.default_rng(0)
    bins = g.choice(len(HIST_COUNTS), size=20_000, p=HIST_COUNTS / HIST_COUNTS.sum())
    u = g.random(20_000)
    sample = torch.tensor(HIST_EDGES[bins] + u * np.diff(HIST_EDGES)[bins])
    d0 = M.wasserstein_to_hist(sample, HIST_EDGES, HIST_COUNTS).item()
    d1 = M.wasserstein_to_hist(sample + 0.7, HIST_EDGES, HIST_COUNTS).item()
    assert d0 < 0.01
    assert d1 == pytest.approx(0.7, abs=0.01)


def test_gradcheck_wasserstein_to_hist_of_fcd():
    """Gradient of wasserstein_to_hist(fcd_values(x), histogram) w.r.t. the time series matches
    finite differences (float64)."""
    x = _rand(2, 16, 4).requires_grad_(True)
    edges = torch.linspace(-1.0, 1.0, 9, dtype=torch.float64)
    counts = torch.tensor([1.0, 2.0, 4.0, 6.0, 5.0, 3.0, 2.0, 1.0], dtype=torch.float64)
    f = lambda y: M.wasserstein_to_hist(M.fcd_values(y, 1.0, 6.0, 2.0), edges, counts)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x,))


# ----------------------------------------------------------------------------- spectra


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nperseg,noverlap,window", [
    (None, None, "hann"), (64, None, "hann"), (51, 20, "hamming"), (32, 0, "boxcar"),
    (40, 39, "blackman"),
])
def test_psd_welch_matches_scipy(dtype, nperseg, noverlap, window):
    """psd_welch equals scipy.signal.welch (density, one-sided, constant detrend), even and odd
    segment lengths, several windows, overlaps; default nperseg = min(256, T)."""
    x = _rand(2, 300, 3, dtype=dtype) + 2.0
    fs = 1.0 / 0.72
    freqs, psd = M.psd_welch(x, fs, nperseg=nperseg, noverlap=noverlap, window=window)
    f_ref, p_ref = signal.welch(x.double().numpy(), fs=fs, window=window, nperseg=nperseg,
                                noverlap=noverlap, axis=1)
    assert psd.shape == (2, len(f_ref), 3) and psd.dtype == dtype and freqs.dtype == dtype
    _close(freqs, f_ref, dtype)
    _close(psd, p_ref, dtype, scale=float(np.abs(p_ref).max()))  # scipy keeps axis 1 as freq


def test_psd_welch_unbatched_parseval_and_tensor_window():
    """Unbatched input gives (F, N); a boxcar window with one full-length segment gives a PSD whose
    integral (sum * df) is the variance (Parseval); a window tensor sets nperseg."""
    x = _rand(128, 2)
    freqs, psd = M.psd_welch(x, fs=4.0, nperseg=128, window="boxcar")
    assert psd.shape == (65, 2)
    df = freqs[1] - freqs[0]
    torch.testing.assert_close(psd.sum(0) * df, x.var(0, unbiased=False))
    w = torch.hann_window(50, periodic=False, dtype=torch.float64)
    _, p = M.psd_welch(x, fs=4.0, window=w)
    _, p_ref = signal.welch(x.numpy(), fs=4.0, window=w.numpy(), axis=0)
    np.testing.assert_allclose(p.numpy(), p_ref, rtol=1e-10)


def test_gradcheck_psd_welch():
    """Gradient of the Welch PSD w.r.t. the series matches finite differences (float64)."""
    x = _rand(1, 20, 2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda y: M.psd_welch(y, 1.0, nperseg=8)[1], (x,))


# ----------------------------------------------------------------------------- phases


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_t", [64, 65])
def test_phases_match_scipy_hilbert(dtype, n_t):
    """phases is np.angle(scipy.signal.hilbert(x, axis=time)), even and odd T; the analytic signal
    keeps x as its real part."""
    t = np.arange(n_t) * 0.5
    x_np = np.stack([np.sin(0.3 * t + k) + 0.3 * np.cos(0.11 * t * k) for k in range(3)], axis=1)
    x = torch.tensor(np.stack([x_np, 2 * x_np[::-1].copy()]), dtype=dtype)
    z = M.analytic_signal(x)
    assert z.dtype == (torch.complex64 if dtype == torch.float32 else torch.complex128)
    ref = signal.hilbert(x.double().numpy(), axis=1)
    _close(z.real, ref.real, dtype)
    _close(z.imag, ref.imag, dtype)
    ph = M.phases(x)
    assert ph.shape == x.shape and ph.dtype == dtype
    # compare on the circle (angles near +/-pi may land on either side)
    err = np.angle(np.exp(1j * (ph.double().numpy() - np.angle(ref))))
    assert np.abs(err).max() < (1e-4 if dtype == torch.float32 else 1e-10)
    torch.testing.assert_close(M.phases(x[1]), ph[1])


def test_phases_of_a_sinusoid():
    """The analytic signal of cos(w t) over whole periods is exp(i w t): phase = w t (wrapped)."""
    n_t, cycles = 200, 5
    wt = 2 * np.pi * cycles * np.arange(n_t) / n_t
    ph = M.phases(torch.tensor(np.cos(wt))[:, None])[:, 0].numpy()
    assert np.abs(np.angle(np.exp(1j * (ph - wt)))).max() < 1e-10


@pytest.mark.parametrize("dtype", DTYPES)
def test_kuramoto_order_matches_numpy(dtype):
    """R(t) = |mean_j exp(i theta_j(t))|, synchrony = mean_t R, metastability = std_t R (ddof 0)."""
    th = _rand(2, 30, 8, dtype=dtype) * 2.0
    r = M.kuramoto_order(th)
    ref = np.abs(np.exp(1j * th.double().numpy()).mean(-1))
    assert r.shape == (2, 30) and r.dtype == dtype
    _close(r, ref, dtype)
    _close(M.synchrony(th), ref.mean(-1), dtype)
    _close(M.metastability(th), ref.std(-1), dtype)
    assert M.kuramoto_order(th[0]).shape == (30,)
    assert M.metastability(th[0]).shape == () and M.synchrony(th[0]).shape == ()


def test_order_parameter_known_answers():
    """Identical phases (any common drift) give R = 1 at all times and metastability 0; phases
    evenly spread over the circle (2 pi j / N) give R = 0 exactly (roots of unity sum to 0)."""
    t = torch.linspace(0, 10, 50, dtype=torch.float64)
    sync = (0.7 * t + 0.2)[:, None].expand(50, 6)
    r = M.kuramoto_order(sync)
    torch.testing.assert_close(r, torch.ones(50, dtype=torch.float64))
    assert M.metastability(sync).item() == pytest.approx(0.0, abs=1e-7)
    spread = sync + 2 * math.pi * torch.arange(6, dtype=torch.float64) / 6
    assert M.kuramoto_order(spread).abs().max() < 1e-12
    assert M.synchrony(spread).item() < 1e-12


def test_order_parameter_gradients():
    """Gradcheck (float64) of metastability and synchrony w.r.t. phases, and finite gradients at
    the degenerate points R = 0 and std = 0 (safe square roots)."""
    th = _rand(2, 12, 5).requires_grad_(True)
    assert torch.autograd.gradcheck(M.metastability, (th,))
    assert torch.autograd.gradcheck(M.synchrony, (th,))
    spread = (2 * math.pi * torch.arange(6, dtype=torch.float64) / 6).expand(4, 6)
    spread = spread.clone().requires_grad_(True)
    M.synchrony(spread).backward()
    assert torch.isfinite(spread.grad).all()
    sync = torch.zeros(10, 4, dtype=torch.float64, requires_grad=True)
    M.metastability(sync).backward()
    assert torch.isfinite(sync.grad).all()


# ----------------------------------------------------------------------------- errors


def test_bad_time_series_raise_clear_errors():
    """Wrong ndim, non-tensors, integer dtypes and too-short series are refused with messages that
    say what was expected."""
    with pytest.raises(ValueError, match=r"\(B, T, N\) or \(T, N\)"):
        M.fc(torch.zeros(2, 3, 4, 5))
    with pytest.raises(ValueError, match=r"\(B, T, N\) or \(T, N\)"):
        M.kuramoto_order(torch.zeros(5))
    with pytest.raises(TypeError, match="torch.Tensor"):
        M.fc(np.zeros((10, 3)))
    with pytest.raises(TypeError, match="floating dtype"):
        M.fc(torch.zeros(10, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="at least 2 time samples"):
        M.fc(torch.zeros(1, 3))


def test_fcd_bad_arguments_raise():
    """A window longer than the series, non-positive tr/window/step, a window of < 2 samples, a
    step rounding to 0 samples and N < 3 each raise ValueError naming the problem."""
    x = _rand(50, 4)
    with pytest.raises(ValueError, match="shorter than one window"):
        M.fcd(x, tr=2.0, window=120.0, step=2.0)
    for kw, name in (({"tr": 0.0}, "tr"), ({"tr": -1.0}, "tr"), ({"window": 0.0}, "window"),
                     ({"step": -2.0}, "step"), ({"tr": float("nan")}, "tr"), ({"tr": "1"}, "tr")):
        args = {"tr": 1.0, "window": 10.0, "step": 2.0, **kw}
        with pytest.raises(ValueError, match=f"{name} must be a positive"):
            M.fcd(x, **args)
    with pytest.raises(ValueError, match="at least 2 samples"):
        M.fcd(x, tr=2.0, window=2.0, step=2.0)
    with pytest.raises(ValueError, match="rounds to 0 samples"):
        M.fcd(x, tr=2.0, window=20.0, step=0.5)
    with pytest.raises(ValueError, match="N >= 3"):
        M.fcd(x[:, :2], tr=1.0, window=10.0, step=2.0)
    with pytest.raises(ValueError, match="at least 2 windows"):
        M.fcd_values(x, tr=1.0, window=50.0, step=2.0)


def test_fc_comparison_bad_arguments_raise():
    """Mismatched N, non-square matrices, incompatible batches, mixed dtypes, N < 3 for Pearson."""
    a = M.fc(_rand(2, 30, 5))
    with pytest.raises(ValueError, match="different numbers of regions"):
        M.fc_similarity(a, M.fc(_rand(30, 4)))
    with pytest.raises(ValueError, match="different numbers of regions"):
        M.fc_mse(a, M.fc(_rand(30, 6)))
    with pytest.raises(ValueError, match="square"):
        M.fc_similarity(a, torch.zeros(5, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match="batch sizes 2 and 3"):
        M.fc_similarity(a, M.fc(_rand(3, 30, 5)))
    with pytest.raises(TypeError, match="different dtypes"):
        M.fc_similarity(a, a.float())
    with pytest.raises(ValueError, match="N >= 3"):
        M.fc_similarity(a[:, :2, :2], a[:, :2, :2])
    with pytest.raises(ValueError, match="k must be >= 0"):
        M.upper_triangle(a, -1)


def test_distribution_bad_arguments_raise():
    """Empty samples, wrong ndim, p < 1, bad histograms (edges not increasing, counts of the wrong
    length, negative or all-zero counts)."""
    v = _rand(2, 10)
    with pytest.raises(ValueError, match="empty"):
        M.ks_distance(v, torch.zeros(0, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\(B, M\) or \(M,\)"):
        M.wasserstein_1d(v[None], v)
    with pytest.raises(ValueError, match="p must be"):
        M.wasserstein_1d(v, v, p=0.5)
    with pytest.raises(ValueError, match="strictly increasing"):
        M.wasserstein_to_hist(v, [0.0, 1.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="one entry per bin"):
        M.ks_distance_hist(v, [0.0, 1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="non-negative"):
        M.wasserstein_to_hist(v, [0.0, 1.0, 2.0], [1.0, -1.0])
    with pytest.raises(ValueError, match="not all zero"):
        M.ks_distance_hist(v, [0.0, 1.0, 2.0], [0.0, 0.0])


def test_psd_welch_bad_arguments_raise():
    """fs <= 0, nperseg outside [1, T], noverlap outside [0, nperseg), unknown window names."""
    x = _rand(40, 2)
    with pytest.raises(ValueError, match="fs must be a positive"):
        M.psd_welch(x, fs=0.0)
    with pytest.raises(ValueError, match="nperseg must be in"):
        M.psd_welch(x, fs=1.0, nperseg=41)
    with pytest.raises(ValueError, match="noverlap must be in"):
        M.psd_welch(x, fs=1.0, nperseg=10, noverlap=10)
    with pytest.raises(ValueError, match="unknown window 'kaiser'.*'hann'"):
        M.psd_welch(x, fs=1.0, window="kaiser")
    with pytest.raises(TypeError, match="nperseg must be an int"):
        M.psd_welch(x, fs=1.0, nperseg=10.0)
