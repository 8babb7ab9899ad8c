"""Kuramoto phase oscillators: the node model, and two sine-coupled oscillators (Adler equation).

Two oscillators with theta_i' = omega_i + K sin(theta_j - theta_i) have a phase difference
phi = theta_2 - theta_1 obeying phi' = d_omega - 2 K sin(phi) (d_omega = omega_2 - omega_1). It
locks iff |d_omega| <= 2 K, at phi* = arcsin(d_omega / (2 K)) (the root with cos(phi*) > 0 is the
stable one); otherwise phi slips by 2 pi every 2 pi / sqrt(d_omega^2 - 4 K^2) ms.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from problems import create64

from brainfit import integrate, models
from brainfit.models.kuramoto import TWO_PI_10HZ

F64 = torch.float64




def _simulate_pairs(d_omega: list[float], K: float, dt: float, n_steps: int) -> torch.Tensor:
    """B pairs of oscillators (N = 2), pair b with frequencies (omega, omega + d_omega[b]), coupled
    by K sin(theta_j - theta_i) computed here, not by the coupling module. Returns (T+1, B, 2)."""
    B = len(d_omega)
    omega = torch.tensor([[TWO_PI_10HZ, TWO_PI_10HZ + d] for d in d_omega], dtype=F64)
    m = create64("kuramoto", n_regions=2, n_batch=B,
                 omega={"value": omega, "scope": "subject_regional"})
    W = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=F64)

    def f(state):
        theta = m.coupled_observable(state)  # (B, 2)
        coupling = K * (W * torch.sin(theta[:, None, :] - theta[:, :, None])).sum(-1)
        return m.derivative(state, coupling, None)

    heun = integrate.create("heun")
    x = torch.tensor([[[0.3, -2.5]]], dtype=F64).expand(B, 1, 2)
    xs = [x]
    with m.params.cached():
        for _ in range(n_steps):
            x = heun.step(f, x, dt)
            xs.append(x)
    return torch.stack(xs)[:, :, 0]


def test_derivative_is_omega_plus_inputs_and_bold_is_sine():
    """theta' = omega + coupling + forcing, independent of theta; BOLD reads sin(theta)."""
    m = create64("kuramoto", n_regions=3, omega=0.1)
    gen = torch.Generator().manual_seed(0)
    theta = 10 * torch.randn(2, 1, 3, generator=gen, dtype=F64)
    c, f = torch.randn(2, 2, 3, generator=gen, dtype=F64)
    torch.testing.assert_close(m.derivative(theta, c, f)[:, 0], 0.1 + c + f)
    torch.testing.assert_close(m.derivative(theta, None, None)[:, 0],
                               torch.full((2, 3), 0.1, dtype=F64))
    torch.testing.assert_close(m.bold_observable(theta), torch.sin(theta[:, 0]))
    torch.testing.assert_close(m.coupled_observable(theta), theta[:, 0])


def test_default_frequency_is_ten_hertz():
    """omega = 2 pi 10 Hz in rad/ms: one cycle (2 pi) per 100 ms."""
    m = models.create("kuramoto")
    assert math.isclose(2 * math.pi / m.params["omega"].item(), 100.0, rel_tol=1e-6)


def test_two_oscillators_lock_at_arcsine_phase_difference():
    """|d_omega| <= 2K: phi converges to arcsin(d_omega / 2K). The slowest pair (d_omega = 0.019,
    2K = 0.02) relaxes at 2K cos(phi*) = 0.0062/ms, so 4000 ms leave exp(-25)."""
    K = 0.01
    d_omega = [0.0, 0.005, -0.012, 0.019]
    traj = _simulate_pairs(d_omega, K, dt=0.5, n_steps=8000)
    phi = (traj[:, :, 1] - traj[:, :, 0]).numpy()
    expected = np.arcsin(np.array(d_omega) / (2 * K))
    # compare modulo 2 pi
    wrapped = np.angle(np.exp(1j * (phi[-1] - expected)))
    np.testing.assert_allclose(wrapped, 0.0, atol=1e-6)
    # locked: both oscillators then run at the mean frequency omega + d_omega / 2
    rate = (traj[-1] - traj[-1001]).numpy() / 500.0
    mean_frequency = TWO_PI_10HZ + np.array(d_omega) / 2
    np.testing.assert_allclose(rate, np.repeat(mean_frequency[:, None], 2, axis=1), rtol=1e-6)


def test_two_oscillators_drift_when_detuning_exceeds_twice_coupling():
    """|d_omega| > 2K: phi never stops (phi' >= |d_omega| - 2K > 0) and slips by 2 pi in
    2 pi / sqrt(d_omega^2 - 4 K^2) ms, which is measured from the simulated phi(t)."""
    K = 0.01
    d_omega = [0.025, -0.03, 0.06]
    dt = 0.25
    traj = _simulate_pairs(d_omega, K, dt=dt, n_steps=12000)  # 3000 ms
    t = np.arange(traj.shape[0]) * dt
    for b, d in enumerate(d_omega):
        phi = np.sign(d) * (traj[:, b, 1] - traj[:, b, 0]).numpy()  # increasing
        assert (np.diff(phi) > 0).all()
        # time to slip 2 pi * k, from the first reachable multiple of 2 pi after 100 ms
        k = int((phi[-1] - phi[400]) // (2 * math.pi))
        assert k >= 4
        t0, t1 = np.interp([phi[400], phi[400] + 2 * math.pi * k], phi, t)
        slip = 2 * math.pi / math.sqrt(d * d - 4 * K * K)
        assert (t1 - t0) / k == pytest.approx(slip, rel=1e-4)
