"""Reference problems with known answers, and the tolerance table used across the tests."""

from __future__ import annotations

import torch

#: tolerances per dtype, used wherever float32 and float64 results are compared to a reference
TOL = {
    torch.float32: {"rtol": 1e-4, "atol": 1e-5},
    torch.float64: {"rtol": 1e-9, "atol": 1e-11},
}

#: overrides that make the default Hopf config a simulated fit through the Balloon head (its
#: default fits the linearised FC with bold=none), at Deco et al. 2017's noise (the default's
#: weaker noise is for scoring the linearised fit); the tiny fits of the trainer's tests use it,
#: so that resume, recovery, restarts and the split over processes are checked on simulations
SIMULATED = ["trainer=default", "bold=friston2003", "model.noise.sigma=6.3e-4"]


def create64(name: str, **kwargs):
    """Build a model in float64 from the start: ``.double()`` after a float32 build keeps the
    float32 rounding of every parameter value (0.1 -> 0.10000000149)."""
    from brainfit import models

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return models.create(name, **kwargs)
    finally:
        torch.set_default_dtype(previous)


def run_fixed(model, x0, dt, n_steps, coupling=None, forcing=None, method="heun"):
    """Integrate a single model (no network) with a fixed-step scheme; returns (T+1, B, S, N)."""
    from brainfit import integrate

    scheme = integrate.create(method)
    f = lambda x: model.derivative(x, coupling, forcing)  # noqa: E731
    xs = [x0]
    x = x0
    with model.params.cached():
        for _ in range(n_steps):
            x = scheme.step(f, x, dt)
            xs.append(x)
    return torch.stack(xs)


def linear_system_solution(A: torch.Tensor, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Exact solution x(t) = expm(A t) x0 of x' = A x, for each time in t: (T, *x0.shape)."""
    return torch.stack([torch.linalg.matrix_exp(A * ti) @ x0 for ti in t])
