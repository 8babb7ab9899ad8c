"""The oscillator rung of the ladder against what is known about each model exactly.

Harmonic oscillator: exact Heun amplification factor, matrix exponential, exp(alpha t) decay.
Stuart-Landau: limit-cycle radius sqrt(a / gamma) and frequency omega - beta a / gamma.
Van der Pol: amplitude ~2 and period against an independent SciPy integration.
FitzHugh-Nagumo: resting fixed point from the cubic, Hopf threshold, limit cycle against SciPy.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from problems import create64, linear_system_solution, run_fixed
from scipy.integrate import solve_ivp

from brainfit.models.oscillators import TWO_PI_10HZ

F64 = torch.float64




def _subject(values) -> dict:
    """One value per batch element (scope ``subject``)."""
    return {"value": torch.tensor(values, dtype=F64), "scope": "subject"}


def _crossing_times(t: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Times of upward zero crossings of x(t), linearly interpolated."""
    i = np.nonzero((x[:-1] <= 0) & (x[1:] > 0))[0]
    return t[i] - x[i] * (t[i + 1] - t[i]) / (x[i + 1] - x[i])


# -- harmonic oscillator ------------------------------------------------------------------------

def test_undamped_harmonic_modulus_follows_heun_amplification_exactly():
    """Heun on z' = i w z multiplies z by 1 + i w dt - (w dt)^2 / 2 each step, whose modulus is
    sqrt(1 + (w dt)^4 / 4). Over n steps |z| grows by that factor to the n-th power: a drift of
    about T w^4 dt^3 / 8 after a time T, which must vanish as dt -> 0 (the exact flow conserves
    |z|). Checked over 10 periods to float64 round-off, and the bound shrinks 8x per halving."""
    w = TWO_PI_10HZ
    m = create64("harmonic", n_regions=2, alpha=0.0, omega=w)
    z0 = torch.tensor([[[1.0, -0.3], [0.0, 0.8]]], dtype=F64)  # (1, 2, 2)
    r0 = z0.norm(dim=1)
    T = 10 * 2 * math.pi / w  # 10 periods, 1000 ms
    drifts = []
    for dt in (0.2, 0.1):
        n = round(T / dt)
        r = run_fixed(m, z0, dt, n)[-1].norm(dim=1)
        predicted = r0 * (1 + (w * dt) ** 4 / 4) ** (n / 2)
        torch.testing.assert_close(r, predicted, rtol=1e-12, atol=0)
        drift = ((r - r0) / r0).abs().max().item()
        assert drift <= 1.01 * n * dt * w**4 * dt**3 / 8  # the dt^3 bound, tight
        drifts.append(drift)
    assert 7.5 < drifts[0] / drifts[1] < 8.5


def test_harmonic_matches_matrix_exponential_with_second_order_error():
    """x' = A x with A = [[alpha, -omega], [omega, alpha]] is solved exactly by expm(A t) x0.
    Heun's local error is (dt lambda)^3 / 6 |x|, so after a time T the error is below
    T dt^2 |lambda|^3 / 6 max|x0|; it must also fall 4x when dt halves (second order)."""
    alpha, w = -0.02, 0.1
    m = create64("harmonic", n_regions=3, alpha=alpha, omega=w)
    gen = torch.Generator().manual_seed(3)
    x0 = torch.randn(2, 2, 3, generator=gen, dtype=F64)
    A = torch.tensor([[alpha, -w], [w, alpha]], dtype=F64)
    T = 100.0
    errors = []
    for dt in (0.1, 0.05):
        n = round(T / dt)
        sim = run_fixed(m, x0, dt, n)[::100]  # every 10 or 5 ms
        t = torch.arange(sim.shape[0], dtype=F64) * 100 * dt
        flat = x0.permute(1, 0, 2).reshape(2, -1)  # (S, B*N)
        exact = linear_system_solution(A, flat, t).reshape(-1, 2, 2, 3).permute(0, 2, 1, 3)
        errors.append((sim - exact).abs().max().item())
        bound = T * dt**2 * abs(complex(alpha, w)) ** 3 / 6 * x0.norm(dim=1).max().item()
        assert errors[-1] < bound
    assert 3.9 < errors[0] / errors[1] < 4.1


def test_damped_harmonic_decays_as_exp_alpha_t():
    """With alpha < 0 and no input, |z(t)| = |z(0)| exp(alpha t) exactly. Heun multiplies z by
    1 + z + z^2/2 (z = dt lambda, lambda = alpha + i omega), whose log-modulus is
    dt alpha - dt^3 Re(lambda^3) / 6 + O(dt^4): the relative error of |z(t)| is at most
    t dt^2 |lambda|^3 / 6, a bound that scales with dt^2."""
    alpha = torch.tensor([-0.01, -0.05], dtype=F64)
    w = TWO_PI_10HZ
    m = create64("harmonic", n_regions=1, n_batch=2, omega=w,
                 params={"alpha": _subject(alpha.tolist())})
    z0 = torch.tensor([[[1.0], [0.5]], [[-0.2], [0.7]]], dtype=F64)
    dt, n = 0.05, 6000
    traj = run_fixed(m, z0, dt, n)[::200]
    t = torch.arange(traj.shape[0], dtype=F64) * 200 * dt  # up to 300 ms
    r = traj.norm(dim=2)[..., 0]  # (T, B)
    expected = z0.norm(dim=1)[:, 0] * torch.exp(alpha[None] * t[:, None])
    lam3 = (alpha**2 + w**2) ** 1.5  # |lambda|^3
    bound = t[:, None] * dt**2 * lam3[None] / 6 + 1e-13
    rel = (r - expected).abs() / expected
    assert (rel <= bound).all()
    assert rel[-1].max() > 0.1 * bound[-1].max()  # the bound is tight, not vacuous


# -- Stuart-Landau ------------------------------------------------------------------------------

def test_stuart_landau_limit_cycle_radius_and_frequency():
    """For a > 0: r' = a r - gamma r^3 has the stable radius sqrt(a / gamma), on which the phase
    turns at omega - beta r^2 = omega - beta a / gamma. Measured from simulations after the
    transient (relaxation rate 2a >= 0.2/ms, so exp(-20) is left after 100 ms), for three
    (a, gamma, beta) at once, one per batch element. Heun's limit cycle is off by O(dt^2): below
    5e-5 at dt = 0.04 ms, and 4x smaller at dt = 0.02 ms."""
    a = torch.tensor([0.25, 0.1, 0.4], dtype=F64)
    gamma = torch.tensor([1.0, 0.4, 2.0], dtype=F64)
    beta = torch.tensor([0.0, 0.5, -0.3], dtype=F64)
    omega = 0.2
    m = create64("hopf", n_regions=2, n_batch=3, omega=omega,
                 params={"a": _subject(a.tolist()), "gamma": _subject(gamma.tolist()),
                         "beta": _subject(beta.tolist())})
    x0 = torch.full((3, 2, 2), 0.05, dtype=F64)
    x0[:, 1, 1] = -0.3
    radius = (a / gamma).sqrt()[:, None]
    frequency = (omega - beta * a / gamma).numpy()
    errors = []
    for dt in (0.04, 0.02):
        n = round(150 / dt)
        traj = run_fixed(m, x0, dt, n)[round(100 / dt):]  # (T, B, S, N), t >= 100 ms
        errors.append(((traj[-1].norm(dim=1) - radius).abs() / radius).max().item())
        t = np.arange(traj.shape[0]) * dt
        phase = np.unwrap(np.arctan2(traj[:, :, 1].numpy(), traj[:, :, 0].numpy()), axis=0)
        slope = np.polyfit(t, phase.reshape(len(t), -1), 1)[0].reshape(3, 2)
        np.testing.assert_allclose(slope, np.repeat(frequency[:, None], 2, 1), rtol=1e-4)
    assert errors[0] < 5e-5
    assert 3.8 < errors[0] / errors[1] < 4.2


# -- Van der Pol --------------------------------------------------------------------------------

def _vdp_reference(mu: float, u: float, omega: float, x0, t_ms: np.ndarray) -> np.ndarray:
    """The documented second-order form in dimensionless time s = omega t, by SciPy:
    x'' - mu (1 - x^2) x' + x = u / omega, written as (x, x')."""

    def rhs(_s, z):
        return [z[1], mu * (1 - z[0] ** 2) * z[1] - z[0] + u / omega]

    sol = solve_ivp(rhs, (0, omega * t_ms[-1]), x0, t_eval=omega * t_ms, method="DOP853",
                    rtol=1e-11, atol=1e-12)
    return sol.y


def test_van_der_pol_trajectory_matches_documented_equation():
    """brainfit's (x, y) with time in ms and input u [1/ms] in the y equation is the textbook Van
    der Pol equation in s = omega t with forcing u / omega; both integrations must agree."""
    mu, u, w = 1.5, 0.004, TWO_PI_10HZ
    m = create64("van_der_pol", n_regions=1, mu=mu, omega=w)
    x0 = torch.tensor([[[0.3], [-0.4]]], dtype=F64)
    dt, n = 0.02, 10000  # 200 ms, two cycles; Heun's error ~ 5e-5
    sim = run_fixed(m, x0, dt, n, forcing=torch.full((1, 1), u, dtype=F64))[::500, 0, :, 0]
    ref = _vdp_reference(mu, u, w, [0.3, -0.4], np.arange(sim.shape[0]) * 500 * dt)
    np.testing.assert_allclose(sim.numpy().T, ref, atol=1e-4)


def test_van_der_pol_limit_cycle_amplitude_is_two_and_period_matches_reference():
    """Every initial state (but the origin) ends on the limit cycle, whose amplitude max|x| is
    within about 1 % of 2 for every mu; the amplitude and period are compared to SciPy."""
    mus = [0.3, 1.0, 3.0]
    w = TWO_PI_10HZ
    m = create64("van_der_pol", n_regions=2, n_batch=3, omega=w,
                      params={"mu": _subject(mus)})
    x0 = torch.tensor([[0.1, -3.0], [0.0, 1.0]], dtype=F64).expand(3, 2, 2)
    dt, n = 0.1, 15000  # 1500 ms, >= 7 cycles
    traj = run_fixed(m, x0, dt, n)[n // 2:, :, 0].numpy()  # x, last 750 ms: (T, B, N)
    t = np.arange(traj.shape[0]) * dt
    t_ref = np.arange(0, 1500, 0.1)
    for b, mu in enumerate(mus):
        ref = _vdp_reference(mu, 0.0, w, [0.1, 0.0], t_ref)[0][len(t_ref) // 2:]
        ref_amp = np.abs(ref).max()
        ref_period = np.diff(_crossing_times(t_ref[len(t_ref) // 2:], ref)).mean()
        assert 2.0 < ref_amp < 2.03
        for k in range(2):
            x = traj[:, b, k]
            assert np.abs(x).max() == pytest.approx(ref_amp, abs=1e-3)
            period = np.diff(_crossing_times(t, x)).mean()
            assert period == pytest.approx(ref_period, rel=1e-4)
    # small mu: nearly harmonic, period close to 2 pi / omega
    assert np.diff(_crossing_times(t, traj[:, 0, 0])).mean() == pytest.approx(
        2 * math.pi / w, rel=0.01)


# -- FitzHugh-Nagumo ----------------------------------------------------------------------------

def _fhn_fixed_point(a: float, b: float, current: float) -> tuple[float, float]:
    """The single real root of v - v^3/3 - (v + a)/b + I = 0, and w = (v + a)/b."""
    roots = np.roots([-1 / 3, 0.0, 1 - 1 / b, current - a / b])
    v = roots[np.abs(roots.imag) < 1e-9].real
    assert v.size == 1
    return float(v[0]), float((v[0] + a) / b)


def test_fitzhugh_nagumo_fixed_point_has_zero_derivative():
    """At the root of the cubic nullcline intersection, the model's derivative vanishes (for the
    documented rest state at I = 0: v = -1.1994, w = -0.6243)."""
    currents = [0.0, 0.2, 0.9]
    m = create64("fitzhugh_nagumo", n_regions=1, n_batch=3,
                      params={"I": _subject(currents)})
    fps = [_fhn_fixed_point(0.7, 0.8, c) for c in currents]
    assert fps[0] == pytest.approx((-1.1994, -0.6243), abs=1e-4)
    state = torch.tensor(fps, dtype=F64)[:, :, None]
    assert m.derivative(state, None, None).abs().max() < 1e-13


def test_fitzhugh_nagumo_rests_below_hopf_and_fires_above():
    """The Jacobian's trace at the fixed point, 1 - v^2 - b/tau, vanishes at I = 0.3313 (Hopf).
    Below it (I = 0, 0.3) the unit relaxes to the fixed point; above it (I = 0.36, 0.5, the
    default) it fires periodically with v swinging between about -2 and +1.8."""
    currents = [0.0, 0.30, 0.36, 0.5]
    v_h = -math.sqrt(1 - 0.8 / 12.5)
    i_hopf = -v_h + v_h**3 / 3 + (v_h + 0.7) / 0.8
    assert i_hopf == pytest.approx(0.33128, abs=1e-5)
    m = create64("fitzhugh_nagumo", n_regions=1, n_batch=4,
                      params={"I": _subject(currents)})
    x0 = torch.tensor([[[0.0], [0.0]]], dtype=F64).expand(4, 2, 1)
    dt, n = 0.1, 15000  # 1500 ms = 600 time units of 2.5 ms
    traj = run_fixed(m, x0, dt, n)[n // 2:, :, :, 0]  # (T, B, S)
    for b, current in enumerate(currents[:2]):
        fp = torch.tensor(_fhn_fixed_point(0.7, 0.8, current), dtype=F64)
        torch.testing.assert_close(traj[-1, b], fp, rtol=0, atol=1e-6)
    for b in (2, 3):
        v = traj[:, b, 0]
        assert v.min() < -1.9 and v.max() > 1.7


def test_fitzhugh_nagumo_default_limit_cycle_matches_reference():
    """Default parameters put the unit on its limit cycle; its period, 39.47 dimensionless units,
    is T = 2.5 ms times that (98.7 ms, ~10 Hz, as documented), compared to SciPy."""
    m = create64("fitzhugh_nagumo", n_regions=1)
    dt, n = 0.1, 8000  # 800 ms
    v = run_fixed(m, torch.zeros(1, 2, 1, dtype=F64), dt, n)[n // 2:, 0, 0, 0].numpy()
    period = np.diff(_crossing_times(np.arange(v.size) * dt, v)).mean()

    def rhs(_s, z):
        return [z[0] - z[0] ** 3 / 3 - z[1] + 0.5, (z[0] + 0.7 - 0.8 * z[1]) / 12.5]

    s = np.arange(0, 320, 0.01)
    ref = solve_ivp(rhs, (0, s[-1]), [0.0, 0.0], t_eval=s, method="DOP853", rtol=1e-11,
                    atol=1e-12).y[0][s.size // 2:]
    ref_period = np.diff(_crossing_times(s[s.size // 2:], ref)).mean()
    assert ref_period == pytest.approx(39.47, abs=0.01)
    assert period == pytest.approx(2.5 * ref_period, rel=1e-4)
