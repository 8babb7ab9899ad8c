"""Noise processes and fixed-step integrators against their exact statistics and orders."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from problems import linear_system_solution

from brainfit import integrate
from brainfit.noise import OrnsteinUhlenbeckNoise, WhiteNoise, create

F64 = torch.float64


def test_white_noise_increments_have_variance_sigma2_dt():
    noise = WhiteNoise(("x", "y"), {"x": 0.3, "y": 0.0}).double()
    g = torch.Generator().manual_seed(0)
    dW, state = noise.increment(None, torch.Size((4000, 2, 5)), 0.25, g)
    assert state is None
    # std of sigma sqrt(dt) xi is 0.3 * 0.5 = 0.15 (20000 samples: 1 % standard error)
    assert dW[:, 0].std().item() == pytest.approx(0.15, rel=0.03)
    assert dW[:, 1].abs().max().item() == 0.0


def test_same_generator_state_gives_the_same_noise():
    noise = WhiteNoise(("x",), 1.0)
    a, _ = noise.increment(None, torch.Size((2, 1, 3)), 0.1, torch.Generator().manual_seed(4))
    b, _ = noise.increment(None, torch.Size((2, 1, 3)), 0.1, torch.Generator().manual_seed(4))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_ou_noise_has_stationary_std_sigma_and_correlation_time_tau():
    sigma, tau, dt = 0.5, 4.0, 0.5
    noise = OrnsteinUhlenbeckNoise(("x",), sigma, tau=tau).double()
    g = torch.Generator().manual_seed(1)
    shape = torch.Size((400, 1, 10))
    eta = noise.init_state(shape, F64, torch.device("cpu"), g)
    etas = []
    for _ in range(400):
        dW, eta = noise.increment(eta, shape, dt, g)
        etas.append(dW / dt)  # the increment is eta * dt
    e = torch.stack(etas).flatten(1)  # (T, samples)
    assert e.std().item() == pytest.approx(sigma, rel=0.03)
    # lag-1 autocorrelation of the exact discretisation is exp(-dt / tau)
    lag1 = (e[1:] * e[:-1]).mean() / (e * e).mean()
    assert lag1.item() == pytest.approx(math.exp(-dt / tau), abs=0.01)


def test_noise_amplitudes_are_trainable_and_receive_gradients():
    noise = WhiteNoise(("x", "y"), 0.2, trainable=True)
    dW, _ = noise.increment(None, torch.Size((3, 2, 4)), 0.1, torch.Generator().manual_seed(0))
    dW.pow(2).sum().backward()
    assert noise.params.raw["sigma_x"].grad.abs() > 0
    assert noise.params.raw["sigma_y"].grad.abs() > 0  # every state's amplitude, not just one


def test_bad_noise_settings():
    with pytest.raises(ValueError, match="valid kinds"):
        create("pink", ("x",))
    with pytest.raises(ValueError, match="tau must be a positive"):
        OrnsteinUhlenbeckNoise(("x",), 0.1, tau=0.0)
    with pytest.raises(ValueError, match="unknown state"):
        WhiteNoise(("x",), {"z": 0.1})
    with pytest.raises(ValueError, match="below its lower bound"):
        WhiteNoise(("x",), -0.1)


@pytest.mark.parametrize("name,order", [("euler", 1.0), ("heun", 2.0)])
def test_convergence_slope_matches_the_order(name, order):
    """Global error on x' = A x at t = 2 against the matrix exponential falls as dt^order."""
    A = torch.tensor([[-0.3, -2.0], [2.0, -0.3]], dtype=F64)
    x0 = torch.tensor([1.0, 0.5], dtype=F64)
    exact = linear_system_solution(A, x0, torch.tensor([2.0], dtype=F64))[0]
    scheme = integrate.create(name)
    errors = []
    dts = [0.02, 0.01, 0.005]
    for dt in dts:
        x = x0.clone()
        for _ in range(round(2.0 / dt)):
            x = scheme.step(lambda s: A @ s, x, dt)
        errors.append((x - exact).norm().item())
    slope = np.polyfit(np.log(dts), np.log(errors), 1)[0]
    assert slope == pytest.approx(order, abs=0.1)
    assert scheme.order == order


def test_stochastic_schemes_give_the_ou_variance():
    """dx = -k x dt + s dW has stationary variance s^2 / (2k); both schemes get it at small dt."""
    k, s, dt = 1.0, 0.5, 0.01
    g = torch.Generator().manual_seed(2)
    for name in ("euler_maruyama", "stochastic_heun"):
        scheme = integrate.create(name)
        x = torch.zeros(4000, dtype=F64)
        for _ in range(400):
            dW = s * math.sqrt(dt) * torch.randn(4000, generator=g, dtype=F64)
            x = scheme.step(lambda v: -k * v, x, dt, dW)
        assert x.var().item() == pytest.approx(s * s / (2 * k), rel=0.06), name


def test_integrator_errors():
    with pytest.raises(ValueError, match="valid names"):
        integrate.create("rk45")
    with pytest.raises(ValueError, match="deterministic but noise was given"):
        integrate.create("heun").step(lambda v: v, torch.zeros(2), 0.1, torch.zeros(2))
    for bad in (0.0, -1.0, float("inf"), float("nan"), "0.1", True):
        with pytest.raises(ValueError, match="dt must be a positive, finite number"):
            integrate.check_dt(bad)
    with pytest.raises(ValueError, match="increasing"):
        integrate.odeint(torch.nn.Identity(), torch.zeros(2), torch.tensor([1.0, 0.0]))
