"""Wong-Wang models: transfer function at its singular point, fixed points against SciPy, and
feedback inhibition control (FIC) holding the excitatory rate at 3 Hz in a network."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from problems import run_fixed
from scipy.optimize import brentq
from torch.autograd import gradcheck

from brainfit import integrate, models
from brainfit.models.wong_wang import ReducedWongWang, WongWangEI, firing_rate


def h_numpy(current, a, b, d):
    """Reference transfer function in NumPy: u / (1 - exp(-d u)) with u = a I - b (u != 0).

    ``-expm1(-d u)`` keeps full relative precision for small |d u|, so this is accurate to a few
    ulp everywhere except exactly at u = 0 (where it is 0/0).
    """
    u = a * np.asarray(current, dtype=np.float64) - b
    return u / -np.expm1(-d * u)


def h_prime_numpy(current, a, b, d):
    """dH/dI = a f'(z), f(z) = z / (1 - e^-z), f'(z) = (1 - e^-z - z e^-z) / (1 - e^-z)^2."""
    z = d * (a * np.asarray(current, dtype=np.float64) - b)
    with np.errstate(invalid="ignore"):  # 0/0 at z = 0
        return a * (-np.expm1(-z) - z * np.exp(-z)) / np.expm1(-z) ** 2


A, B, D = 270.0, 108.0, 0.154  # reduced Wong-Wang defaults (n/C, Hz, s)
I_SING = B / A  # nA: the removable singularity a I = b


# -- the transfer function ---------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_firing_rate_at_singular_point_is_the_limit_one_over_d(dtype):
    """At a I = b, H = 0/0; its limit is 1/d (f(z) = z / (1 - e^-z) -> 1). The value must be
    exactly that limit, and points a hair away must be continuous with it."""
    a = torch.tensor(A, dtype=dtype)
    sing = torch.tensor(B, dtype=dtype) / a  # the singular current in this dtype
    h0 = firing_rate(sing, a, B, D)
    assert torch.isfinite(h0)
    # in float32 b/a is rounded, so a * (b/a) - b is a few ulp off zero: H moves by ~a/2 * that
    tol = 1e-12 if dtype == torch.float64 else 1e-4
    assert h0.item() == pytest.approx(1.0 / D, rel=tol)
    eps = torch.finfo(dtype).eps
    for k in (1, 10, 1000):
        for sign in (1, -1):
            near = firing_rate(sing * (1 + sign * k * eps), a, B, D)
            assert torch.isfinite(near)
            assert abs(near.item() - 1.0 / D) < A * 2 * k * eps * I_SING + tol / D


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-12), (torch.float32, 2e-6)])
def test_firing_rate_matches_closed_form_on_both_sides_of_the_series_switch(dtype, rtol):
    """Across |d (a I - b)| = 0.1 (where the Taylor branch hands over to the expm1 form) and far
    from threshold, H equals the NumPy closed form to rounding; far below threshold it
    underflows to 0 instead of overflowing (atol: below float32's smallest normal number)."""
    z = np.concatenate([
        -np.logspace(-8, 2.5, 60), np.logspace(-8, 2.5, 60),
        [-0.1 - 1e-9, -0.1 + 1e-9, 0.1 - 1e-9, 0.1 + 1e-9, -0.09999, 0.10001],
    ])
    current = (z / D + B) / A
    ref = h_numpy(current, A, B, D)
    got = firing_rate(torch.tensor(current, dtype=dtype), A, B, D).double().numpy()
    atol = 1e-300 if dtype == torch.float64 else 1e-37
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol)
    very_low = firing_rate(torch.tensor(-50.0, dtype=dtype), A, B, D)
    assert very_low.item() == pytest.approx(0.0, abs=1e-30)


def test_firing_rate_gradient_is_finite_and_correct_at_and_near_the_singularity():
    """dH/dI = a f'(z) with f'(0) = 1/2, so at the singular point dH/dI = a / 2; elsewhere the
    closed-form derivative. Also gradcheck (finite differences) at the singular point, both sides
    of the series switch, and far from threshold, for I and a, b, d."""
    z = np.array([0.0, 1e-7, -1e-7, 0.05, -0.05, 0.0999999, 0.1000001, -0.1000001, 3.0, -30.0])
    current = torch.tensor((z / D + B) / A, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(firing_rate(current, A, B, D).sum(), current)
    ref = h_prime_numpy(current.detach().numpy(), A, B, D)
    ref[0] = A / 2  # the limit at z = 0 (the NumPy formula is 0/0 there)
    np.testing.assert_allclose(g.numpy(), ref, rtol=1e-7)

    params = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (A, B, D)]
    assert gradcheck(firing_rate, (current, *params), eps=1e-7, atol=1e-6, rtol=1e-5)


def test_firing_rate_gradient_far_below_threshold_is_finite_in_float32():
    """exp(-z) for very negative z overflows float32; the z e^z / expm1(z) branch must not."""
    current = torch.tensor([-10.0, -1.0, 0.0], requires_grad=True)
    h = firing_rate(current, A, B, D)
    (g,) = torch.autograd.grad(h.sum(), current)
    assert torch.isfinite(h).all() and torch.isfinite(g).all()
    assert (h >= 0).all()


# -- reduced Wong-Wang -------------------------------------------------------------------------
def _rww_root(p: dict, extra_current: float) -> float:
    """S* of -S/tau + (1-S) gamma H(w J_N S + I_0 + extra) = 0 by SciPy's brentq, after checking
    on a fine grid that the root in [0, 1] is unique (so the simulation has only it to reach)."""

    def f(s):
        x = p["w"] * p["J_N"] * s + p["I_0"] + extra_current
        return -s / p["tau_S"] + (1 - s) * p["gamma"] * h_numpy(x, p["a"], p["b"], p["d"])

    grid = np.linspace(0.0, 1.0, 4001)
    assert np.count_nonzero(np.diff(np.sign(f(grid)))) == 1
    return brentq(f, 0.0, 1.0, xtol=1e-15, rtol=1e-15)


@pytest.mark.parametrize("coupling,forcing", [(None, None), (0.4, None), (0.2, 0.02)])
def test_reduced_wong_wang_settles_on_the_scipy_fixed_point(coupling, forcing):
    """From low, middle and high S the node relaxes to the unique S* of dS/dt = 0 (SciPy root),
    where the model's derivative vanishes. A constant coupling c enters as J_N c and a forcing F
    as F nA, so the root is taken with the extra current J_N c + F."""
    m = models.create("wong_wang").double()
    p = {k: m.params[k].item() for k in m.param_specs}
    extra = (p["J_N"] * coupling if coupling is not None else 0.0) + (forcing or 0.0)
    s_star = _rww_root(p, extra)

    c = None if coupling is None else torch.full((3, 1), coupling, dtype=torch.float64)
    f = None if forcing is None else torch.full((3, 1), forcing, dtype=torch.float64)
    at_root = torch.full((3, 1, 1), s_star, dtype=torch.float64)
    assert m.derivative(at_root, c, f).abs().max() < 1e-14

    x0 = torch.tensor([0.0, 0.5, 0.95], dtype=torch.float64).reshape(3, 1, 1)
    final = run_fixed(m, x0, 1.0, 3000, c, f)[-1]  # 3 s; relaxation time ~ 100 ms
    torch.testing.assert_close(final, at_root, rtol=1e-8, atol=1e-10)


def test_reduced_wong_wang_coupling_enters_as_J_N_times_the_input():
    """The documented convention: coupling c (dimensionless G sum C S) adds J_N c nA to x, the
    same as a forcing of J_N c nA."""
    m = models.create("wong_wang", n_regions=3).double()
    x = m.initial_state(2, dtype=torch.float64)
    c = torch.rand(2, 3, dtype=torch.float64)
    torch.testing.assert_close(m.derivative(x, c, None),
                               m.derivative(x, None, m.params["J_N"] * c))


# -- dynamic mean field (E-I) ------------------------------------------------------------------
def _ei_steady_state_numpy(p: dict, coupling: float = 0.0) -> tuple[float, float, float, float]:
    """Steady state (S_E, S_I, r_E, r_I) of an isolated E-I node from its equations, by nested
    SciPy root finds: S_I(S_E) from dS_I/dt = 0 (unique), then S_E from dS_E/dt = 0."""

    def s_i_of(s_e):
        def g(s_i):
            i_i = p["W_I"] * p["I_0"] + p["J_NMDA"] * s_e - s_i
            return s_i - p["tau_I"] * p["gamma_I"] * h_numpy(i_i, p["a_I"], p["b_I"], p["d_I"])

        return brentq(g, 0.0, 5.0, xtol=1e-15, rtol=1e-15)

    def r_e_of(s_e):
        i_e = (p["W_E"] * p["I_0"] + p["w_plus"] * p["J_NMDA"] * s_e
               + p["J_NMDA"] * coupling - p["J_i"] * s_i_of(s_e))
        return h_numpy(i_e, p["a_E"], p["b_E"], p["d_E"])

    def f(s_e):
        return -s_e / p["tau_E"] + (1 - s_e) * p["gamma"] * r_e_of(s_e)

    s_e = brentq(f, 1e-6, 0.5, xtol=1e-15, rtol=1e-15)
    s_i = s_i_of(s_e)
    i_i = p["W_I"] * p["I_0"] + p["J_NMDA"] * s_e - s_i
    return s_e, s_i, r_e_of(s_e), h_numpy(i_i, p["a_I"], p["b_I"], p["d_I"])


def test_isolated_ei_node_with_J_i_one_rests_where_the_steady_state_equations_say():
    """J_i = 1 nA, no coupling: the simulated node settles at the steady state solved from the
    equations by SciPy (rates and gating variables), which is ~3 Hz as Deco et al. 2014 report
    for the uncoupled node."""
    m = models.create("wong_wang_ei").double()
    p = {k: m.params[k].item() for k in m.param_specs}
    s_e, s_i, r_e, r_i = _ei_steady_state_numpy(p)
    x0 = torch.tensor([[0.05, 0.02], [0.3, 0.1]], dtype=torch.float64)[:, :, None]
    final = run_fixed(m, x0, 1.0, 4000, None, None)[-1]  # 4 s
    expected = torch.tensor([s_e, s_i], dtype=torch.float64).expand(2, 2)[:, :, None]
    torch.testing.assert_close(final, expected, rtol=1e-7, atol=1e-9)
    got_r_e, got_r_i = m.rates(final)
    torch.testing.assert_close(got_r_e, torch.full((2, 1), r_e, dtype=torch.float64))
    torch.testing.assert_close(got_r_i, torch.full((2, 1), r_i, dtype=torch.float64))
    assert 2.9 < r_e < 3.3


def test_ei_coupling_enters_as_J_NMDA_times_the_input():
    """Coupling c adds J_NMDA c nA to the excitatory current, like a forcing of J_NMDA c nA; it
    does not reach the inhibitory pool."""
    m = models.create("wong_wang_ei", n_regions=3).double()
    x = m.initial_state(2, dtype=torch.float64)
    c = torch.rand(2, 3, dtype=torch.float64)
    torch.testing.assert_close(m.derivative(x, c, None),
                               m.derivative(x, None, m.params["J_NMDA"] * c))
    assert torch.equal(m.currents(x, c)[1], m.currents(x)[1])


def _network(n: int, seed: int) -> torch.Tensor:
    """A random symmetric SC without self-loops, scaled to a largest row sum of 1."""
    g = torch.Generator().manual_seed(seed)
    w = torch.rand(n, n, generator=g, dtype=torch.float64) ** 2
    w = 0.5 * (w + w.T)
    w.fill_diagonal_(0.0)
    return w / w.sum(-1).max()


def _simulate_network(model, sc, G, x0, dt, n_steps, noise_sigma=0.0, gen=None):
    """Heun (or stochastic Heun) with the linear coupling c_i = G sum_j C_ij S_E,j computed
    inline; returns the excitatory rates over the last half of the run, (T/2, B, N)."""
    method = "stochastic_heun" if noise_sigma else "heun"
    scheme = integrate.create(method)
    iE = model.index("S_E")

    def f(x):
        return model.derivative(x, G * x[:, iE] @ sc.T, None)

    rates, x = [], x0
    with torch.no_grad(), model.params.cached():
        for k in range(n_steps):
            dw = None
            if noise_sigma:
                dw = torch.zeros_like(x)
                dw[:, iE] = noise_sigma * dt**0.5 * torch.randn(
                    x[:, iE].shape, generator=gen, dtype=x.dtype)
            x = scheme.step(f, x, dt, dw)
            if k >= n_steps // 2:
                rates.append(model.rates(x, G * x[:, iE] @ sc.T)[0])
    return torch.stack(rates)


def test_feedback_inhibition_holds_the_excitatory_rate_near_3hz_in_a_network():
    """Issue requirement: the dynamic mean field with feedback inhibition holds the excitatory
    rate near 3 Hz. Five regions on a random SC with G = 0.5: with J_i = 1 everywhere the
    long-range excitation pushes the rates to 5-16 Hz; after fitting J_i per region from the
    steady coupling input (all regions at 3 Hz: c = G C.sum(-1) S_E*), the network, started at
    random, rests with every r_E within 3 +/- 0.3 Hz (in fact at 3 Hz to 1e-4 Hz: its slowest
    mode decays in ~240 ms). (For this SC the FIC fixed point loses stability near G = 2.)"""
    n, G = 5, 0.5
    sc = _network(n, seed=3)
    gen = torch.Generator().manual_seed(7)
    plain = models.create("wong_wang_ei", n_regions=n).double()
    x0 = plain.initial_state(2, generator=gen, dtype=torch.float64)
    r_plain = _simulate_network(plain, sc, G, x0, 1.0, 1500)[-1]
    assert (r_plain > 3.5).any(), "the test network must need FIC (rates off 3 Hz without it)"

    fic = models.create("wong_wang_ei", n_regions=n, params={"J_i": {"scope": "regional"}}).double()
    c = G * sc.sum(-1) * fic.target_gating(3.0)
    j_i = fic.fit_feedback_inhibition(c, target_rate=3.0)
    torch.testing.assert_close(fic.params["J_i"], j_i.detach())
    assert (j_i > 1.0).all() and j_i.std() > 0.01  # more inhibition where more SC input
    r_fic = _simulate_network(fic, sc, G, x0, 1.0, 3000)[-1]
    assert ((r_fic - 3.0).abs() < 0.3).all()
    torch.testing.assert_close(r_fic, torch.full_like(r_fic, 3.0), rtol=0, atol=1e-4)


def test_feedback_inhibition_holds_the_mean_rate_near_3hz_with_noise():
    """With noise on S_E (Deco et al. 2014 simulate with noise) the time-averaged excitatory rate
    of every region stays within 3 +/- 0.3 Hz after FIC (noise 1e-3 /sqrt(ms) on S_E, which
    moves the rates by ~0.1 Hz)."""
    n, G = 5, 0.5
    sc = _network(n, seed=3)
    gen = torch.Generator().manual_seed(11)
    fic = models.create("wong_wang_ei", n_regions=n, params={"J_i": {"scope": "regional"}}).double()
    fic.fit_feedback_inhibition(G * sc.sum(-1) * fic.target_gating(3.0))
    x0 = fic.initial_state(1, generator=gen, dtype=torch.float64)
    rates = _simulate_network(fic, sc, G, x0, 1.0, 4000, noise_sigma=1e-3, gen=gen)
    mean = rates.mean(0)
    assert rates.std(0).min() > 0.03  # the noise does move the rates
    assert ((mean - 3.0).abs() < 0.3).all()


def test_feedback_inhibition_isolated_node_and_batch_of_targets():
    """Without coupling, J_i for 3 Hz is ~1.01 nA (J_i = 1 gives ~3.08 Hz, see above), and the
    closed steady state of the fitted node has r_E = target for several targets at once (B, 1)."""
    m = models.create("wong_wang_ei").double()
    j = m.fit_feedback_inhibition(None, 3.0, apply=False)
    assert 1.0 < j.item() < 1.03
    targets = torch.tensor([[2.0], [3.0], [5.0]], dtype=torch.float64)
    jb = m.fit_feedback_inhibition(None, targets, apply=False)
    assert jb.shape == (3, 1)
    for t, jv in zip(targets.flatten().tolist(), jb.flatten().tolist(), strict=True):
        p = {k: m.params[k].item() for k in m.param_specs}
        p["J_i"] = jv
        assert _ei_steady_state_numpy(p)[2] == pytest.approx(t, rel=1e-9)


def test_feedback_inhibition_is_differentiable_with_the_implicit_gradient():
    """J_i depends on the parameters through two root finds; the returned tensor carries the
    implicit-function gradient. Compare dJ_i/dI_0 and dJ_i/dc with central differences."""
    m = models.create("wong_wang_ei", n_regions=2).double()
    raw = m.params.raw["I_0"]  # not trainable: the raw value is I_0 in nA
    raw.requires_grad_(True)
    c = torch.tensor([0.1, 0.3], dtype=torch.float64, requires_grad=True)
    j = m.fit_feedback_inhibition(c, apply=False)
    g_i0, g_c = torch.autograd.grad(j.sum(), (raw, c))
    raw.requires_grad_(False)

    h = 1e-6
    with torch.no_grad():
        def j_at(i0, cc):
            raw.fill_(i0)  # in float64 (set_value would round through the default dtype)
            return m.fit_feedback_inhibition(cc, apply=False)

        i0 = raw.item()
        fd_i0 = (j_at(i0 + h, c) - j_at(i0 - h, c)).sum() / (2 * h)
        fd_c = (j_at(i0, c + h) - j_at(i0, c - h)) / (2 * h)
    assert g_i0.item() == pytest.approx(fd_i0.item(), rel=1e-6)
    torch.testing.assert_close(g_c, fd_c, rtol=1e-6, atol=0)


def test_feedback_inhibition_float32_agrees_with_float64():
    """The bisection runs in float64 whatever the model dtype; float32 differs by rounding only."""
    sc = _network(4, seed=0)
    j = {}
    for dt in (torch.float32, torch.float64):
        m = models.create("wong_wang_ei", n_regions=4).to(dt)
        j[dt] = m.fit_feedback_inhibition(1.5 * sc.sum(-1).to(dt) * m.target_gating(), apply=False)
        assert j[dt].dtype == dt
    torch.testing.assert_close(j[torch.float32].double(), j[torch.float64], rtol=1e-5, atol=0)


def test_feedback_inhibition_rejects_bad_input_and_scopes_that_cannot_hold_it():
    """Regional values into a global J_i, a bad shape, a non-positive target and an unreachable
    target (J_i would have to be negative) are errors that say what to do."""
    m = models.create("wong_wang_ei", n_regions=3)
    with pytest.raises(ValueError, match="scope 'global'.*regional"):
        m.fit_feedback_inhibition(torch.tensor([0.0, 0.1, 0.2]))
    m.fit_feedback_inhibition(torch.tensor([0.1, 0.1, 0.1]))  # uniform: a global J_i holds it
    assert m.params["J_i"].dim() == 0
    with pytest.raises(ValueError, match=r"shape \(N,\) or \(B, N\) with N = 3"):
        m.fit_feedback_inhibition(torch.zeros(4))
    with pytest.raises(ValueError, match="target_rate"):
        m.fit_feedback_inhibition(None, target_rate=0.0)
    with pytest.raises(ValueError, match="below its lower bound"):
        m.fit_feedback_inhibition(None, target_rate=60.0)
    with pytest.raises(TypeError, match="coupling_input"):
        m.fit_feedback_inhibition("strong")
    per_subject = models.create("wong_wang_ei", n_regions=3, n_batch=2,
                                params={"J_i": {"scope": "subject_regional"}})
    per_subject.fit_feedback_inhibition(torch.rand(2, 3))
    assert per_subject.params["J_i"].shape == (2, 3)


def test_classes_are_registered_under_their_config_names():
    assert models.get("wong_wang") is ReducedWongWang
    assert models.get("wong_wang_ei") is WongWangEI
