"""Oscillators: the harmonic oscillator and the Stuart-Landau (Hopf normal form) model.

Both are written for a complex variable z = x + i y, held as two real states (x, y). Coupling and
forcing enter the real part x.
"""

from __future__ import annotations

from torch import Tensor

from brainfit.models import register
from brainfit.models.base import NeuralMass
from brainfit.params import ParamSpec

TWO_PI_10HZ = 2 * 3.141592653589793 * 10.0 / 1000.0  # rad/ms


@register("harmonic")
class HarmonicOscillator(NeuralMass):
    r"""Linear (harmonic) oscillator, damped or undamped.

    .. math::
        \dot z = (\alpha + i\omega) z + u, \qquad u = \text{coupling} + \text{forcing} \in \mathbb{R}

    i.e. ``x' = alpha x - omega y + u``, ``y' = omega x + alpha y``. With ``alpha = 0`` the modulus
    |z| is conserved; with ``alpha < 0`` it decays as exp(alpha t). The bottom rung of the ladder in
    the "Rosetta Stone" of neural mass models (Byrne et al. 2022, J Math Neurosci).

    Parameters (units): ``alpha`` [1/ms] growth rate (<= 0), ``omega`` [rad/ms] angular frequency
    (default 2 pi 10 Hz).
    """

    state_names = ("x", "y")
    coupled_state = "x"
    coupling_target = "x"
    bold_drive = "x"
    initial_range = {"x": (-1.0, 1.0), "y": (-1.0, 1.0)}
    param_specs = {
        "alpha": ParamSpec(-0.01, "1/ms", low=-1.0, high=0.0, doc="growth rate; 0 = undamped"),
        "omega": ParamSpec(TWO_PI_10HZ, "rad/ms", low=0.0, high=1.0, doc="angular frequency"),
    }

    def derivative(self, state: Tensor, coupling: Tensor | None, forcing: Tensor | None) -> Tensor:
        p = self.params
        x, y = state[:, 0], state[:, 1]
        a, w = p["alpha"], p["omega"]
        dx = a * x - w * y + self.add_inputs(coupling, forcing)
        dy = w * x + a * y
        return self.stack(dx, dy)


@register("hopf")
class StuartLandau(NeuralMass):
    r"""Stuart-Landau oscillator: the normal form of a supercritical Hopf bifurcation, with shear.

    .. math::
        \dot z = (a + i\omega) z - (\gamma + i\beta) |z|^2 z + u

    In polar form (u = 0): ``r' = a r - gamma r^3``, ``theta' = omega - beta r^2``. For ``a > 0``
    there is a stable limit cycle of radius sqrt(a / gamma) and angular frequency
    ``omega - beta a / gamma``; for ``a < 0`` a stable focus at 0 that noise excites into
    oscillations with a spectral peak at ``omega`` (the regime of whole-brain fits, Deco et al.
    2017, Sci Rep 7:3095). Defaults follow neurolib's Hopf model (a = 0.25, omega = 0.2 rad/ms).

    Parameters (units): ``a`` [1/ms] bifurcation parameter, ``omega`` [rad/ms] angular frequency,
    ``gamma`` [1/ms] amplitude saturation, ``beta`` [rad/ms] shear (amplitude-frequency coupling).
    """

    state_names = ("x", "y")
    coupled_state = "x"
    coupling_target = "x"
    bold_drive = "x"
    initial_range = {"x": (-0.5, 0.5), "y": (-0.5, 0.5)}
    param_specs = {
        "a": ParamSpec(0.25, "1/ms", low=-2.0, high=2.0, doc="bifurcation parameter"),
        "omega": ParamSpec(0.2, "rad/ms", low=0.0, high=2.0, doc="angular frequency"),
        "gamma": ParamSpec(1.0, "1/ms", low=0.0, high=10.0, doc="amplitude saturation"),
        "beta": ParamSpec(0.0, "rad/ms", low=-10.0, high=10.0, doc="shear"),
    }

    def derivative(self, state: Tensor, coupling: Tensor | None, forcing: Tensor | None) -> Tensor:
        p = self.params
        x, y = state[:, 0], state[:, 1]
        a, w, g, b = p["a"], p["omega"], p["gamma"], p["beta"]
        r2 = x * x + y * y
        dx = a * x - w * y - r2 * (g * x - b * y) + self.add_inputs(coupling, forcing)
        dy = w * x + a * y - r2 * (g * y + b * x)
        return self.stack(dx, dy)
