"""Jansen-Rit (brainfit.models.jansen_rit): sigmoid, low-input fixed point, alpha rhythm, inputs.

The reference computations below re-implement the Jansen & Rit (1995) equations in NumPy from the
paper (in ms: a = 0.1 /ms, b = 0.05 /ms, e0 = 0.0025 /ms, p in 1/ms), independently of the model.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from problems import run_fixed
from scipy.optimize import brentq
from scipy.signal import welch

from brainfit import integrate, models
from brainfit.models.jansen_rit import JansenRit, sigmoid

# Jansen & Rit 1995, Table 1, converted to ms
A, B, a, b, C = 3.25, 22.0, 0.1, 0.05, 135.0
C1, C2, C3, C4 = C, 0.8 * C, 0.25 * C, 0.25 * C
V0, E0, R = 6.0, 0.0025, 0.56


@pytest.fixture
def f64():
    """Build models in float64 so parameters are stored without float32 rounding (0.1 is not a
    float32 number); the comparisons below are exact to ~1e-12."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def S_np(v):
    return 2 * E0 / (1 + np.exp(R * (V0 - v)))


def jr_fixed_points(p: float) -> list[np.ndarray]:
    """Rest states for input p [1/ms], lowest first. At rest y3 = y4 = y5 = 0 and the second-order
    equations give y0 = A/a S(y1 - y2), y1 = A/a (p + C2 S(C1 y0)), y2 = B/b C4 S(C3 y0): one
    scalar equation g(y0) = 0 on [0, A/a max S], whose roots are bracketed on a fine grid."""
    def y12(y0):
        return A / a * (p + C2 * S_np(C1 * y0)), B / b * C4 * S_np(C3 * y0)

    def g(y0):
        y1, y2 = y12(y0)
        return y0 - A / a * S_np(y1 - y2)

    grid = np.linspace(0.0, 2 * E0 * A / a, 20001)
    roots = []
    for i in np.nonzero(np.diff(np.sign(g(grid))))[0]:
        y0 = brentq(g, grid[i], grid[i + 1], xtol=1e-15)
        y1, y2 = y12(y0)
        roots.append(np.array([y0, y1, y2, 0.0, 0.0, 0.0]))
    return roots


def test_sigmoid_matches_formula_and_its_landmarks():
    """S(v) = 2 e0 / (1 + exp(r (v0 - v))): S(v0) = e0, S -> 0 and 2 e0 at -/+ infinity without
    overflow, slope e0 r / 2 at v0; the model's firing_rate uses its own e0, v0, r."""
    v = torch.linspace(-60.0, 80.0, 281, dtype=torch.float64)
    got = sigmoid(v, E0, V0, R)
    np.testing.assert_allclose(got.numpy(), S_np(v.numpy()), rtol=1e-12, atol=0)
    assert sigmoid(torch.tensor(V0, dtype=torch.float64), E0, V0, R).item() == pytest.approx(E0)
    ext = sigmoid(torch.tensor([-1e4, 1e4], dtype=torch.float64), E0, V0, R)
    assert torch.isfinite(ext).all()
    assert ext[0].item() == pytest.approx(0.0, abs=1e-300)
    assert ext[1].item() == pytest.approx(2 * E0, rel=1e-15)
    x = torch.tensor(V0, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(sigmoid(x, E0, V0, R), x)
    assert slope.item() == pytest.approx(E0 * R / 2, rel=1e-12)
    m = models.create("jansen_rit", e0=0.004, v0=5.0, r=0.3).double()
    torch.testing.assert_close(m.firing_rate(v), sigmoid(v, 0.004, 5.0, 0.3))


def test_defaults_are_jansen_rit_1995_in_ms():
    """The defaults are the paper's values with rates divided by 1000 (time in ms)."""
    m = JansenRit()
    expected = {"A": A, "B": B, "a": a, "b": b, "C": C, "c1": 1.0, "c2": 0.8, "c3": 0.25,
                "c4": 0.25, "v0": V0, "e0": E0, "r": R, "p": 0.22}
    for name, value in expected.items():
        assert m.params[name].item() == pytest.approx(value, rel=1e-6), name


def test_low_input_rests_at_the_analytic_fixed_point(f64):
    """At p = 50 /s the column has three rest states (Grimbert & Faugeras 2006); the lowest, with a
    slightly hyperpolarised pyramidal potential, is stable. The model's derivative vanishes at
    every rest state found from the NumPy equations, the Jacobian at the lowest has only
    eigenvalues with negative real part, and a simulation from a perturbed state converges to it."""
    p = 0.05
    roots = jr_fixed_points(p)
    assert len(roots) == 3
    m = models.create("jansen_rit", p=p).double()
    for ref in roots:
        d = m.derivative(torch.tensor(ref, dtype=torch.float64)[None, :, None], None, None)
        assert d.abs().max().item() < 1e-12
    x_star = torch.tensor(roots[0], dtype=torch.float64)[None, :, None]
    assert x_star[0, 1, 0] - x_star[0, 2, 0] < 0  # hyperpolarised rest
    jac = torch.autograd.functional.jacobian(
        lambda x: m.derivative(x[None, :, None], None, None)[0, :, 0], x_star[0, :, 0])
    assert torch.linalg.eigvals(jac).real.max().item() < 0
    kick = torch.tensor([0.005, 0.5, -0.3, 0.0, 0.02, -0.02], dtype=torch.float64)
    out = run_fixed(m, x_star + kick[None, :, None], 0.5, 3000, method="heun")  # 1.5 s
    assert (out[1] - x_star).abs().max() > 1e-3  # it did start away from the rest state
    torch.testing.assert_close(out[-1], x_star, rtol=1e-6, atol=1e-8)


def _alpha_peak(y: np.ndarray, dt: float) -> tuple[float, float]:
    """Frequency of the Welch spectral peak (Hz) of a trace sampled every dt ms, and its range."""
    f, pxx = welch(y - y.mean(), fs=1000.0 / dt, nperseg=min(len(y), 4096))
    return float(f[np.argmax(pxx)]), float(np.ptp(y))


def test_mean_input_220_per_second_oscillates_in_the_alpha_band():
    """With p = 220 /s (the paper's mean input) the deterministic column sits on a limit cycle whose
    pyramidal potential y1 - y2 has its spectral peak in the alpha band, 8-12 Hz (Jansen & Rit
    1995, Fig. 3; David & Friston 2003). The range check rules out a decaying transient."""
    m = models.create("jansen_rit").double()
    dt = 0.5
    x0 = m.initial_state(1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    out = run_fixed(m, x0, dt, 6000)  # 3 s
    y = m.bold_observable(out[1000:].reshape(-1, 6, 1)).squeeze(-1).numpy()  # last 2.5 s
    peak, ptp = _alpha_peak(y, dt)
    assert 8.0 <= peak <= 12.0
    assert ptp > 1.0  # mV: a sustained oscillation, not a relaxing fixed point


def test_noisy_input_as_in_the_paper_gives_alpha():
    """Jansen & Rit drove the column with pulse densities drawn uniformly in 120..320 /s. The same
    input here, redrawn each 0.5 ms step as forcing (in 1/ms, added to p = 0 so that the mean is
    220 /s), gives an alpha peak in y1 - y2."""
    m = models.create("jansen_rit", p=0.0).double()
    dt, n = 0.5, 6000  # 3 s
    gen = torch.Generator().manual_seed(7)
    p_t = 0.12 + 0.2 * torch.rand(n, 1, 1, generator=gen, dtype=torch.float64)
    heun = integrate.create("heun")
    x = m.initial_state(1, generator=gen, dtype=torch.float64)
    ys = []
    with m.params.cached():
        for k in range(n):
            x = heun.step(lambda s, k=k: m.derivative(s, None, p_t[k]), x, dt)
            ys.append(m.bold_observable(x))
    y = torch.stack(ys)[1000:, 0, 0].numpy()  # last 2.5 s
    assert abs(p_t.mean().item() - 0.22) < 0.005
    peak, _ = _alpha_peak(y, dt)
    assert 8.0 <= peak <= 12.0


def test_coupling_and_forcing_enter_where_p_enters(f64):
    """u = coupling + forcing (1/ms) is added to p: the derivative equals that of a model with
    p + u and no inputs, and only y4' changes, by A a u."""
    gen = torch.Generator().manual_seed(3)
    m = models.create("jansen_rit", n_regions=4).double()
    x = m.initial_state(2, generator=gen, dtype=torch.float64)
    c = 0.01 * torch.rand(2, 4, generator=gen, dtype=torch.float64)
    f = 0.01 * torch.rand(2, 4, generator=gen, dtype=torch.float64)
    base = m.derivative(x, None, None)
    d = m.derivative(x, c, f)
    gain = (m.params["A"] * m.params["a"]).item()  # A a as stored (3.25 mV x 0.1 /ms)
    expected = torch.zeros_like(d)
    expected[:, 4] = gain * (c + f)
    torch.testing.assert_close(d - base, expected, rtol=1e-10, atol=1e-15)
    for k in range(2):
        for i in range(4):
            shifted = models.create("jansen_rit", p=0.22 + (c + f)[k, i].item()).double()
            ref = shifted.derivative(x[k:k + 1, :, i:i + 1], None, None)
            torch.testing.assert_close(d[k:k + 1, :, i:i + 1], ref, rtol=1e-12, atol=1e-14)


def test_observables_are_the_pyramidal_potential():
    """Coupling and BOLD read y1 - y2, the pyramidal membrane potential (the EEG-like output)."""
    m = models.create("jansen_rit", n_regions=3)
    x = m.initial_state(2, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(m.coupled_observable(x), x[:, 1] - x[:, 2])
    torch.testing.assert_close(m.observable(x, "bold"), x[:, 1] - x[:, 2])
    # while the coupling input enters the derivative of y4 only
    changed = (m.derivative(x, torch.ones(2, 3), None) - m.derivative(x, None, None)).abs()
    assert changed.sum(dim=(0, 2)).nonzero().flatten().tolist() == [m.index("y4")]
