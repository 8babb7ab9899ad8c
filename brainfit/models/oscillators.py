"""Oscillators: harmonic, Stuart-Landau (Hopf normal form), Van der Pol and FitzHugh-Nagumo.

The harmonic and Stuart-Landau models are written for a complex variable z = x + i y, held as two
real states (x, y); coupling and forcing enter the real part x. Van der Pol takes its input as a
force (in the velocity equation), FitzHugh-Nagumo as a current (in the voltage equation).
"""

from __future__ import annotations

from torch import Tensor

from brainfit.models import register
from brainfit.models.base import TWO_PI_10HZ, NeuralMass
from brainfit.params import ParamSpec


@register("harmonic")
class HarmonicOscillator(NeuralMass):
    r"""Linear (harmonic) oscillator, damped or undamped.

    .. math::
        \dot z = (\alpha + i\omega) z + u,
        \qquad u = \text{coupling} + \text{forcing} \in \mathbb{R}

    i.e. ``x' = alpha x - omega y + u``, ``y' = omega x + alpha y``. With ``alpha = 0`` the modulus
    |z| is conserved; with ``alpha < 0`` it decays as exp(alpha t). The bottom rung of the ladder in
    the "Rosetta Stone" of neural mass models (Castaldo, de Palma Aristides, Clusella,
    Garcia-Ojalvo & Ruffini 2025, arXiv:2512.10982).

    Parameters (units): ``alpha`` [1/ms] growth rate (<= 0), ``omega`` [rad/ms] angular frequency
    (default 2 pi 10 Hz).
    """

    state_names = ("x", "y")
    coupled_state = "x"
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

    States: ``x`` and ``y``, the real and imaginary parts of ``z = x + i y``. The input ``u``
    (coupling + forcing) is real, so it enters ``x'`` only; the coupling reads ``x`` and ``x``
    drives BOLD.

    Parameters (units): ``a`` [1/ms] bifurcation parameter, ``omega`` [rad/ms] angular frequency,
    ``gamma`` [1/ms] amplitude saturation, ``beta`` [rad/ms] shear (amplitude-frequency coupling).
    """

    state_names = ("x", "y")
    coupled_state = "x"
    bold_drive = "x"
    initial_range = {"x": (-0.5, 0.5), "y": (-0.5, 0.5)}
    param_specs = {
        "a": ParamSpec(0.25, "1/ms", low=-2.0, high=2.0, doc="bifurcation parameter",
                       regime=0.0),
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


@register("van_der_pol")
class VanDerPol(NeuralMass):
    r"""Van der Pol relaxation oscillator, time in ms.

    The second-order equation :math:`\ddot x - \mu\omega (1 - x^2) \dot x + \omega^2 x = \omega u`
    (Van der Pol 1926, Phil Mag 2:978; in dimensionless time :math:`s = \omega t` it is the textbook
    form :math:`x'' - \mu (1 - x^2) x' + x = u/\omega`, Strogatz, *Nonlinear Dynamics and Chaos*,
    sec. 7.5), written as two first-order equations:

    .. math::
        \dot x = \omega y, \qquad
        \dot y = \omega \left[\mu (1 - x^2)\, y - x\right] + u,
        \qquad u = \text{coupling} + \text{forcing}

    For every ``mu > 0`` the origin is unstable and a unique stable limit cycle attracts all other
    orbits. Its amplitude (max |x|) lies between 2 and 2.024 for every mu (it tends to 2 as
    mu -> 0 and as mu -> infinity; 2.0086 at mu = 1); its period is 2 pi / omega for small mu
    (harmonic limit) and grows to about (3 - 2 ln 2) mu / omega for large mu (relaxation limit).
    Input enters ``y`` as a force, so diffusive coupling of ``x`` acts like springs between
    regions.

    Defaults: ``mu = 1`` (moderately nonlinear, period 6.663 / omega = 106 ms, 9.4 Hz) and
    ``omega = 2 pi 10 Hz``, the same base frequency as the harmonic oscillator.

    BOLD drive: ``u = x / 2`` (``bold_scale``; x's std is 0.31 at the config's defaults).

    Parameters (units): ``mu`` [1] nonlinear damping, ``omega`` [rad/ms] angular frequency of the
    linearisation (10 Hz = 2 pi 10 / 1000 rad/ms). The input ``u`` is in [1/ms] (state per ms).
    """

    state_names = ("x", "y")
    coupled_state = "x"
    bold_drive = "x"
    # BOLD drive u = x / 2: x has mean 0.000 and std 0.31 (80 ms means, extremes +-0.72) at
    # conf/model/van_der_pol.yaml's defaults on gw, 60 s x 2 seeds: u's std 0.15
    bold_offset = 0.0
    bold_scale = 2.0
    initial_range = {"x": (-2.0, 2.0), "y": (-2.0, 2.0)}
    param_specs = {
        "mu": ParamSpec(1.0, "1", low=0.0, high=10.0, doc="nonlinear damping; 0 = harmonic"),
        "omega": ParamSpec(TWO_PI_10HZ, "rad/ms", low=0.0, high=1.0,
                           doc="angular frequency of the linearisation"),
    }

    def derivative(self, state: Tensor, coupling: Tensor | None, forcing: Tensor | None) -> Tensor:
        p = self.params
        x, y = state[:, 0], state[:, 1]
        mu, w = p["mu"], p["omega"]
        dx = w * y
        dy = w * (mu * (1.0 - x * x) * y - x) + self.add_inputs(coupling, forcing)
        return self.stack(dx, dy)


@register("fitzhugh_nagumo")
class FitzHughNagumo(NeuralMass):
    r"""FitzHugh-Nagumo model of an excitable / oscillating unit, time in ms.

    In its standard form (FitzHugh 1961, Biophys J 1:445; Nagumo, Arimoto & Yoshizawa 1962,
    Proc IRE 50:2061; parameters as in Izhikevich & FitzHugh 2006, Scholarpedia 1(9):1349),
    with the dimensionless time s = t / T:

    .. math::
        T \dot v = v - v^3/3 - w + I + u, \qquad
        T \tau \dot w = v + a - b w, \qquad u = \text{coupling} + \text{forcing}

    ``v`` is a fast voltage-like variable, ``w`` a slow recovery variable; both are dimensionless.
    The input ``u`` is a dimensionless current, added to ``I``.

    Regimes (a = 0.7, b = 0.8, tau = 12.5): the single fixed point solves
    ``v - v^3/3 - (v + a)/b + I = 0``, ``w = (v + a)/b``, and loses stability in a Hopf
    bifurcation where its Jacobian's trace ``1 - v^2 - b/tau`` vanishes, at ``I = 0.3313`` and
    ``I = 1.4187``. Below the first (``I = 0``: rest at v = -1.1994, w = -0.6243) the unit is
    excitable; between the two it fires periodically (limit cycle, v between about -2 and 1.9).

    Defaults: ``I = 0.5`` puts the unit on its limit cycle, with a period of 39.5 T. FitzHugh's
    time is dimensionless; brainfit sets ``T = 2.5 ms`` so that the default cycle is at
    about 10 Hz (98.7 ms), the base frequency of the other oscillators. Set ``I = 0`` for the
    excitable regime.

    BOLD drive: ``u = (v + 0.95) / 2`` (``bold_offset``, ``bold_scale``; v's mean at the config's
    defaults), so that the haemodynamics see v's excursions around rest, not its negative level;
    the scale keeps a region pushed to rest (v* = -1.2 at I = 0) well inside the Balloon model's
    range: u < -0.41 for seconds, which empties the vessels, needs v < -1.77, i.e. I < -1.4.

    Parameters (units): ``a`` [1] recovery offset, ``b`` [1] recovery self-coupling,
    ``tau`` [1] recovery time-scale ratio (1 / epsilon, epsilon = 0.08), ``I`` [1] constant
    current, ``time_scale`` [ms] T, the duration of one dimensionless time unit.
    """

    state_names = ("v", "w")
    coupled_state = "v"
    bold_drive = "v"
    # BOLD drive u = (v + 0.95) / 2: v has mean -0.95 (regions -0.98..-0.88) and std 0.17 in 80 ms
    # means at conf/model/fitzhugh_nagumo.yaml's defaults (I = 0.3, excitable) on gw, 60 s x 2
    # seeds; raw v would drive the inflow to 1 - 0.95/0.41 < 0 (SimulationDiverged)
    bold_offset = -0.95
    bold_scale = 2.0
    initial_range = {"v": (-2.0, 2.0), "w": (-1.0, 1.5)}
    param_specs = {
        "a": ParamSpec(0.7, "1", low=-2.0, high=2.0, doc="recovery offset"),
        "b": ParamSpec(0.8, "1", low=0.0, high=2.0, doc="recovery self-coupling"),
        "tau": ParamSpec(12.5, "1", low=1.0, high=100.0,
                         doc="recovery time-scale ratio (1/epsilon)"),
        "I": ParamSpec(0.5, "1", low=-3.0, high=3.0, doc="constant current (Hopf at 0.3313)"),
        "time_scale": ParamSpec(2.5, "ms", low=0.01, high=100.0,
                                doc="duration of one dimensionless time unit"),
    }

    def derivative(self, state: Tensor, coupling: Tensor | None, forcing: Tensor | None) -> Tensor:
        p = self.params
        v, w = state[:, 0], state[:, 1]
        rate = 1.0 / p["time_scale"]
        dv = rate * (v - v * v * v / 3.0 - w + p["I"] + self.add_inputs(coupling, forcing))
        dw = rate * (v + p["a"] - p["b"] * w) / p["tau"]
        return self.stack(dv, dw)
