"""Montbrió-Pazó-Roxin models (brainfit.models.mpr): analytic fixed points, bistability, inputs,
and the E-I form's fixed point against a NumPy root finder.

The reference computations re-implement the published equations in NumPy, independently of the
torch code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from problems import run_fixed
from scipy.optimize import fsolve

from brainfit import models


@pytest.fixture
def f64():
    """Build models in float64 so parameters are stored without float32 rounding."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def mpr_fixed_points(tau, delta, eta, J, current=0.0):
    """All fixed points (r*, v*) of the one-population equations, r* ascending.

    r' = 0 gives v* = -Delta / (2 pi tau r*); putting it into v' = 0 and writing x = tau r*:
    pi^2 x^4 - J x^3 - (eta + I) x^2 - Delta^2 / (4 pi^2) = 0. Only positive real x are rates.
    """
    roots = np.roots([math.pi ** 2, -J, -(eta + current), 0.0, -delta ** 2 / (4 * math.pi ** 2)])
    x = np.sort(roots[(np.abs(roots.imag) < 1e-12) & (roots.real > 0)].real)
    return [(xi / tau, -delta / (2 * math.pi * xi)) for xi in x]


def _jacobian(m, x):
    """Jacobian of the single-region derivative at state vector x (S,)."""
    return torch.autograd.functional.jacobian(
        lambda s: m.derivative(s[None, :, None], None, None)[0, :, 0], x)


@pytest.mark.parametrize("params", [
    {},  # the paper's bistable example, tau = 10 ms
    {"tau": 1.0, "Delta": 0.5, "eta": -2.0, "J": 8.0, "I": 1.0},
    {"tau": 20.0, "Delta": 2.0, "eta": 3.0, "J": -5.0},  # inhibitory: a single fixed point
])
def test_derivative_vanishes_at_the_analytic_fixed_points(params, f64):
    """At every root of the fixed-point quartic both r' and v' are zero (to rounding)."""
    m = models.create("mpr", **params)
    pv = {k: m.params[k].item() for k in ("tau", "Delta", "eta", "J", "I")}
    fps = mpr_fixed_points(pv["tau"], pv["Delta"], pv["eta"], pv["J"], pv["I"])
    assert len(fps) in (1, 3)
    for r, v in fps:
        d = m.derivative(torch.tensor([[[r], [v]]]), None, None)
        scale = 1.0 / pv["tau"] * max(1.0, v * v)
        assert d.abs().max().item() < 1e-12 * scale, (r, v, d)


def test_bistable_regime_of_the_paper(f64):
    """Delta = 1, eta = -5, J = 15 (the defaults) has two stable states and a saddle between them
    (Montbrió et al. 2015): a low-activity node (real negative eigenvalues) and a high-activity
    focus (complex eigenvalues with negative real part: damped oscillations of spike synchrony).
    Started from two initial conditions, one region settles in each."""
    m = models.create("mpr", n_regions=2)
    tau = m.params["tau"].item()
    (r_lo, v_lo), (r_mid, v_mid), (r_hi, v_hi) = mpr_fixed_points(tau, 1.0, -5.0, 15.0)
    assert tau * r_lo == pytest.approx(0.0811, abs=1e-3)
    assert tau * r_hi == pytest.approx(1.0306, abs=1e-3)

    ev_lo = torch.linalg.eigvals(_jacobian(m.__class__(), torch.tensor([r_lo, v_lo])))
    ev_mid = torch.linalg.eigvals(_jacobian(m.__class__(), torch.tensor([r_mid, v_mid])))
    ev_hi = torch.linalg.eigvals(_jacobian(m.__class__(), torch.tensor([r_hi, v_hi])))
    assert (ev_lo.imag.abs() < 1e-12).all() and (ev_lo.real < 0).all()  # stable node
    assert (ev_mid.real > 0).sum() == 1 and (ev_mid.real < 0).sum() == 1  # saddle
    assert (ev_hi.imag.abs() > 1e-3).all() and (ev_hi.real < 0).all()  # stable focus
    # the Jacobian written out by hand: d(r', v')/d(r, v) at the focus
    dvdr = (15.0 * tau - 2 * math.pi ** 2 * tau ** 2 * r_hi) / tau
    jac_hi = torch.tensor([[2 * v_hi / tau, 2 * r_hi / tau], [dvdr, 2 * v_hi / tau]])
    torch.testing.assert_close(_jacobian(m.__class__(), torch.tensor([r_hi, v_hi])), jac_hi)

    # region 0 starts quiet, region 1 active; 600 ms is > 18 decay times of the focus
    x0 = torch.tensor([[[0.005, 0.12], [-2.0, 0.0]]])
    out = run_fixed(m, x0, 0.2, 3000)
    r_t = out[:, 0, 0]
    torch.testing.assert_close(out[-1, 0, :, 0], torch.tensor([r_lo, v_lo]), rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(out[-1, 0, :, 1], torch.tensor([r_hi, v_hi]), rtol=1e-6, atol=1e-9)
    # the approach to the focus overshoots (oscillates); the approach to the node does not
    assert (r_t[:, 1] > r_hi * 1.001).any() and (r_t[:, 1] < r_hi * 0.999).any()


def test_current_and_inputs_units(f64):
    """u = coupling + forcing [1/ms] is added to v': forcing u equals a constant current I = tau u
    (dimensionless), and self-coupling G r equals raising J by G (u enters like the J r term)."""
    gen = torch.Generator().manual_seed(0)
    m = models.create("mpr", n_regions=3)
    x = m.initial_state(2, generator=gen)
    u = 0.05 * torch.randn(2, 3, generator=gen)
    tau = m.params["tau"].item()
    d_u = m.derivative(x, None, u)
    for k in range(2):
        for i in range(3):
            with_current = models.create("mpr", I=tau * u[k, i].item())
            torch.testing.assert_close(d_u[k, :, i], with_current.derivative(
                x[k:k + 1, :, i:i + 1], None, None)[0, :, 0], rtol=1e-12, atol=1e-14)
    G = 2.5
    d_c = m.derivative(x, G * x[:, 0], None)
    stronger = models.create("mpr", n_regions=3, J=15.0 + G)
    torch.testing.assert_close(d_c, stronger.derivative(x, None, None), rtol=1e-12, atol=1e-14)
    # only v' changes
    torch.testing.assert_close(d_u[:, 0], m.derivative(x, None, None)[:, 0])


# ---------------------------------------------------------------------------------- E-I form ---

EI_NAMES = ("tau_E", "tau_I", "tau_sE", "tau_sI", "Delta_E", "Delta_I", "eta_E", "eta_I",
            "J_EE", "J_EI", "J_IE", "J_II", "I_E", "I_I")


def ei_numpy(x, p):
    """The two-population equations written out in NumPy (see MontbrioPazoRoxinEI)."""
    rE, vE, rI, vI, sE, sI = x
    tE, tI = p["tau_E"], p["tau_I"]
    return np.array([
        (p["Delta_E"] / (math.pi * tE) + 2 * rE * vE) / tE,
        (vE ** 2 + p["eta_E"] - (math.pi * tE * rE) ** 2
         + tE * (p["J_EE"] * sE - p["J_EI"] * sI) + p["I_E"]) / tE,
        (p["Delta_I"] / (math.pi * tI) + 2 * rI * vI) / tI,
        (vI ** 2 + p["eta_I"] - (math.pi * tI * rI) ** 2
         + tI * (p["J_IE"] * sE - p["J_II"] * sI) + p["I_I"]) / tI,
        (rE - sE) / p["tau_sE"],
        (rI - sI) / p["tau_sI"],
    ])


def test_ei_converges_to_the_fixed_point_from_a_root_finder(f64):
    """fsolve on the NumPy equations gives the default column's fixed point; there s = r and each
    v = -Delta / (2 pi tau r). The model's derivative vanishes there, its Jacobian is stable, and
    a simulation from random initial states (a batch of 3) converges to it."""
    m = models.create("mpr_ei")
    p = {k: m.params[k].item() for k in EI_NAMES}
    x0 = np.array([0.01, -2.0, 0.01, -2.0, 0.01, 0.01])
    x_star, info, ier, msg = fsolve(ei_numpy, x0, args=(p,), full_output=True, xtol=1e-12)
    assert ier == 1, msg
    assert np.abs(ei_numpy(x_star, p)).max() < 1e-12
    rE, vE, rI, vI, sE, sI = x_star
    assert sE == pytest.approx(rE, rel=1e-10) and sI == pytest.approx(rI, rel=1e-10)
    assert vE == pytest.approx(-p["Delta_E"] / (2 * math.pi * p["tau_E"] * rE), rel=1e-10)
    assert 0.003 < rE < 0.02 and 0.003 < rI < 0.02  # a low-activity state, 3-20 spikes/s

    xs = torch.tensor(x_star)
    assert m.derivative(xs[None, :, None], None, None).abs().max().item() < 1e-12
    assert torch.linalg.eigvals(_jacobian(m, xs)).real.max().item() < 0

    init = m.initial_state(3, generator=torch.Generator().manual_seed(5))
    assert (init - xs[None, :, None]).abs().max() > 0.1  # starts away from it
    out = run_fixed(m, init, 0.1, 3000)  # 300 ms, > 35 decay times of the slowest mode
    torch.testing.assert_close(out[-1], xs[None, :, None].expand(3, 6, 1), rtol=1e-6, atol=1e-9)


def test_ei_without_inhibition_has_the_one_population_fixed_points(f64):
    """With J_EI = J_IE = J_II = 0 the populations decouple and at rest s_E = r_E, so E has exactly
    the fixed points of the one-population model with J = J_EE (the quartic's three roots for
    the defaults), and I those of a population with J = 0 (a single root), whatever tau_s."""
    m = models.create("mpr_ei", J_EI=0.0, J_IE=0.0, J_II=0.0, tau_sE=3.0)
    fps_e = mpr_fixed_points(10.0, 1.0, -5.0, 15.0)
    fps_i = mpr_fixed_points(10.0, 1.0, -5.0, 0.0)
    assert len(fps_e) == 3 and len(fps_i) == 1
    r_i, v_i = fps_i[0]
    for r_e, v_e in fps_e:
        x = torch.tensor([r_e, v_e, r_i, v_i, r_e, r_i])[None, :, None]
        assert m.derivative(x, None, None).abs().max().item() < 1e-12


def test_ei_coupling_enters_the_excitatory_potential(f64):
    """u = coupling + forcing [1/ms] changes only v_E', by exactly u."""
    gen = torch.Generator().manual_seed(1)
    m = models.create("mpr_ei", n_regions=4)
    x = m.initial_state(2, generator=gen)
    c = torch.randn(2, 4, generator=gen)
    f = torch.randn(2, 4, generator=gen)
    diff = m.derivative(x, c, f) - m.derivative(x, None, None)
    expected = torch.zeros_like(diff)
    expected[:, 1] = c + f
    torch.testing.assert_close(diff, expected, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(m.coupled_observable(x), x[:, 0])
    torch.testing.assert_close(m.bold_observable(x), x[:, 0])
