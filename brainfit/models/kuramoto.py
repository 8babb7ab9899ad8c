r"""Kuramoto phase oscillators: each region reduced to the phase of its rhythm.

The sine coupling ``G sum_j W_ij sin(theta_j - theta_i)`` is computed by the Kuramoto coupling
of :mod:`brainfit.coupling`; the node model here only adds that input to its natural frequency.
"""

from __future__ import annotations

import torch
from torch import Tensor

from brainfit.models import register
from brainfit.models.base import TWO_PI_10HZ, NeuralMass
from brainfit.params import ParamSpec


@register("kuramoto")
class Kuramoto(NeuralMass):
    r"""Kuramoto phase oscillator (Kuramoto 1984, *Chemical Oscillations, Waves, and Turbulence*),
    time in ms.

    .. math::
        \dot\theta_i = \omega_i + u_i, \qquad u_i = \text{coupling}_i + \text{forcing}_i,

    with the network coupling ``coupling_i = G sum_j W_ij sin(theta_j(t - tau_ij) - theta_i)``
    (rad/ms) supplied by the Kuramoto coupling, as in the delayed whole-brain Kuramoto model of
    Cabral et al. (2011, NeuroImage 57:130). Two oscillators with sine coupling of strength ``K``
    phase-lock iff ``|omega_2 - omega_1| <= 2 K``, at the phase difference
    ``arcsin((omega_2 - omega_1) / (2 K))``.

    The phase is not wrapped (wrapping is not differentiable, and the sine coupling does not need
    it); it grows by ``omega`` per ms. The coupled state is ``theta``. BOLD is driven by the
    derived quantity ``sin(theta)`` (:meth:`bold_observable`), the neural activity that Cabral et
    al. (2011) fed to the Balloon-Windkessel model, bounded in [-1, 1] however far ``theta`` has
    run.

    Defaults: ``omega = 2 pi 10 Hz = 0.0628 rad/ms`` (alpha band, the base frequency of the other
    oscillators; Cabral et al. 2011 used 40 Hz = 0.2513 rad/ms).

    Parameters (units): ``omega`` [rad/ms] natural angular frequency (f [Hz] -> 2 pi f / 1000).
    """

    state_names = ("theta",)
    coupled_state = "theta"
    bold_drive = "sin(theta)"
    initial_range = {"theta": (-3.141592653589793, 3.141592653589793)}
    param_specs = {
        "omega": ParamSpec(TWO_PI_10HZ, "rad/ms", low=0.0, high=1.0,
                           doc="natural angular frequency"),
    }

    def derivative(self, state: Tensor, coupling: Tensor | None, forcing: Tensor | None) -> Tensor:
        theta = state[:, 0]
        dtheta = self.params["omega"] + self.add_inputs(coupling, forcing)
        return self.stack(torch.broadcast_to(dtheta, theta.shape))

    def bold_observable(self, state: Tensor) -> Tensor:
        """``sin(theta)``, the oscillation the phase describes: (B, N)."""
        return torch.sin(state[:, 0])
