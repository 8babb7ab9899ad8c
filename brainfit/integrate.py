r"""Fixed-step integrators (dt in ms) and the torchdiffeq bridge.

All fixed-step schemes advance ``x' = f(x)`` with additive noise increments ``dW`` (B, S, N)
supplied by a :mod:`brainfit.noise` process:

===================  =====  ===================================================================
name                 order  one step
===================  =====  ===================================================================
``euler``            1      ``x + dt f(x)``
``heun``             2      ``x~ = x + dt f(x)``; ``x + dt/2 (f(x) + f(x~))``
``euler_maruyama``   1/2    ``x + dt f(x) + dW``
``stochastic_heun``  1 (*)  ``x~ = x + dt f(x) + dW``; ``x + dt/2 (f(x) + f(x~)) + dW``
===================  =====  ===================================================================

(*) strong order 1 for additive noise, the only kind brainfit uses. The deterministic schemes
refuse a noise increment (use the stochastic one of the same order).

For delay-free deterministic systems any torchdiffeq solver can be used through :func:`odeint`,
with ``adjoint=True`` for the O(1)-memory adjoint method.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from brainfit.checks import positive
from brainfit.registry import Registry

VectorField = Callable[[Tensor], Tensor]

#: registered fixed-step schemes, name -> class (each class's ``name``)
INTEGRATORS: Registry[type[Integrator]] = Registry(
    "integrator", hint=" (or a torchdiffeq method through brainfit.integrate.odeint)")


def check_dt(dt: float, what: str = "dt") -> float:
    """``dt`` as a float, if it is a positive, finite number of ms.

    Raises:
        ValueError: anything else (:func:`brainfit.checks.positive`).
    """
    return positive(dt, what, "ms")


class Integrator:
    """One fixed-step scheme. Subclasses set ``order``, ``stochastic`` and implement ``_step``."""

    order: ClassVar[float] = 1.0
    stochastic: ClassVar[bool] = False
    name: ClassVar[str] = ""

    def step(self, f: VectorField, x: Tensor, dt: float, dW: Tensor | None = None) -> Tensor:
        """Advance ``x`` by one step of ``dt`` ms; ``dW`` is the noise increment, if any."""
        if dW is not None and not self.stochastic:
            raise ValueError(
                f"integrator {self.name!r} is deterministic but noise was given; use "
                f"'euler_maruyama' or 'stochastic_heun'"
            )
        return self._step(f, x, dt, dW)

    def _step(self, f: VectorField, x: Tensor, dt: float, dW: Tensor | None) -> Tensor:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@INTEGRATORS.register()
class Euler(Integrator):
    order = 1.0
    name = "euler"

    def _step(self, f, x, dt, dW):
        x_new = x + dt * f(x)
        return x_new if dW is None else x_new + dW


@INTEGRATORS.register()
class Heun(Integrator):
    order = 2.0
    name = "heun"

    def _step(self, f, x, dt, dW):
        k1 = f(x)
        pred = x + dt * k1
        if dW is not None:
            pred = pred + dW
        x_new = x + 0.5 * dt * (k1 + f(pred))
        return x_new if dW is None else x_new + dW


@INTEGRATORS.register()
class EulerMaruyama(Euler):
    order = 0.5
    stochastic = True
    name = "euler_maruyama"


@INTEGRATORS.register()
class StochasticHeun(Heun):
    order = 1.0
    stochastic = True
    name = "stochastic_heun"


def create(name: str | Integrator) -> Integrator:
    """The integrator registered as ``name`` (see :data:`INTEGRATORS`); an instance passes through.

    Raises:
        ValueError: unknown name (the message lists the valid ones).
    """
    if isinstance(name, Integrator):
        return name
    return INTEGRATORS.create(name)


def odeint(func: nn.Module, y0: Tensor, t: Tensor, method: str = "dopri5",
           adjoint: bool = False, **options: Any) -> Tensor:
    """Solve a delay-free deterministic system with torchdiffeq.

    Args:
        func: ``nn.Module`` with ``forward(t, y) -> dy/dt`` (e.g. ``BrainNetwork.vector_field()``).
        y0: initial state.
        t: 1-D increasing times in ms.
        method: any torchdiffeq method (``dopri5``, ``rk4``, ``euler``, ...).
        adjoint: use ``odeint_adjoint`` (gradients by the adjoint ODE; func's parameters).
        **options: ``rtol``, ``atol``, ``options`` ... passed on.

    Returns:
        Solution of shape (len(t), *y0.shape).
    """
    import torchdiffeq

    t = torch.as_tensor(t, dtype=y0.dtype, device=y0.device)
    if t.dim() != 1 or t.numel() < 2 or not bool((t[1:] > t[:-1]).all()):
        raise ValueError("t must be a 1-D increasing tensor of at least two times (ms)")
    solver = torchdiffeq.odeint_adjoint if adjoint else torchdiffeq.odeint
    if adjoint and not isinstance(func, nn.Module):
        raise TypeError("adjoint=True needs func to be an nn.Module so its parameters are found")
    return solver(func, y0, t, method=method, **options)
