r"""Jansen-Rit: a cortical column of pyramidal cells and excitatory and inhibitory interneurons.

The first rung above the oscillators with second-order synaptic kernels ("NMM1" in the Rosetta
Stone of neural mass models, Byrne et al. 2022, J Math Neurosci 12:5).
"""

from __future__ import annotations

import torch
from torch import Tensor

from brainfit.models import register
from brainfit.models.base import NeuralMass
from brainfit.params import ParamSpec

#: The potential-to-rate sigmoid's parameters, declared once for the model and for the
#: ``sigmoidal_jr`` coupling (:class:`brainfit.coupling.SigmoidalJansenRit`), which must agree:
#: Jansen & Rit (1995) e0 = 2.5 /s (in 1/ms), v0 = 6 mV, r = 0.56 /mV.
SIGMOID_SPECS: dict[str, ParamSpec] = {
    "v0": ParamSpec(6.0, "mV", low=-20.0, high=30.0, doc="sigmoid midpoint potential"),
    "e0": ParamSpec(0.0025, "1/ms", low=0.0, high=0.05,
                    doc="half the maximal firing rate (2.5 /s)"),
    "r": ParamSpec(0.56, "1/mV", low=0.01, high=5.0, doc="sigmoid steepness"),
}


def sigmoid(v: Tensor, e0: Tensor | float, v0: Tensor | float, r: Tensor | float) -> Tensor:
    r"""The Jansen-Rit potential-to-rate sigmoid ``S(v) = 2 e0 / (1 + exp(r (v0 - v)))``.

    ``S(v0) = e0``, ``S(-inf) = 0``, ``S(+inf) = 2 e0`` and ``S'(v0) = e0 r / 2``.

    Args:
        v: mean membrane potential [mV], any shape.
        e0: half the maximal firing rate [1/ms] (2.5 /s = 0.0025 /ms in Jansen & Rit 1995).
        v0: potential at half-maximal firing [mV].
        r: steepness [1/mV].

    Returns:
        Firing rate [1/ms], shape of ``v`` (broadcast with the parameters).
    """
    # 2 e0 sigmoid(x) == 2 e0 / (1 + exp(-x)); torch.sigmoid does not overflow for large |x|
    return 2.0 * e0 * torch.sigmoid(r * (v - v0))


@register("jansen_rit")
class JansenRit(NeuralMass):
    r"""Jansen-Rit neural mass model (Jansen & Rit 1995), six states, time in ms.

    Three populations (pyramidal cells P, excitatory interneurons E, inhibitory interneurons I)
    interact through second-order synaptic kernels ``h(t) = G k t exp(-k t)``, each written as
    two first-order equations. With ``S`` the sigmoid ``S(v) = 2 e0 / (1 + exp(r (v0 - v)))``
    (:func:`sigmoid`) and ``C1..C4 = c1 C, c2 C, c3 C, c4 C``:

    .. math::
        \dot y_0 &= y_3, & \dot y_3 &= A a\, S(y_1 - y_2) - 2 a y_3 - a^2 y_0 \\
        \dot y_1 &= y_4, & \dot y_4 &= A a\, [p + u + C_2 S(C_1 y_0)] - 2 a y_4 - a^2 y_1 \\
        \dot y_2 &= y_5, & \dot y_5 &= B b\, C_4 S(C_3 y_0) - 2 b y_5 - b^2 y_2

    ``y0`` is the PSP that the pyramidal output evokes in both interneuron populations, ``y1`` the
    excitatory PSP on the pyramidal cells (from E and from the extrinsic input ``p + u``), ``y2``
    the inhibitory PSP on the pyramidal cells. The pyramidal membrane potential ``y1 - y2`` (mV) is
    the model's EEG-like output, the quantity the coupling reads (:meth:`coupled_observable`) and
    the BOLD drive (:meth:`bold_observable`).

    Units. Time is in ms, so every rate of the paper (given per second) is divided by 1000:
    ``a`` = 100 /s = 0.1 /ms, ``b`` = 50 /s = 0.05 /ms, ``e0`` = 2.5 /s = 0.0025 /ms, and the
    extrinsic input ``p`` = 220 /s = 0.22 /ms (Jansen & Rit drove the column with pulse densities
    uniform in 120..320 /s, i.e. 0.12..0.32 /ms, mean 220 /s). ``y0..y2`` are in mV and
    ``y3..y5`` in mV/ms.

    Inputs. ``u = coupling + forcing`` is a pulse density in 1/ms (like ``p``; 1 /ms = 1000 /s)
    added to ``p``, i.e. it enters the derivative of ``y4``, the excitatory input channel of the
    pyramidal cells. The Jansen-Rit network coupling (David & Friston 2003; the rate sigmoid
    applied to each source's ``y1 - y2`` *before* the weighted sum,
    ``u_i = G sum_j w_ij S(y1_j - y2_j)``, which is then in 1/ms) lives in the coupling module
    (``brainfit.coupling``), not here; this class only adds the resulting ``u`` where ``p``
    enters. Noise on ``p`` (a fluctuating pulse density) is forcing in 1/ms, too.

    Defaults are those of Jansen & Rit (1995, Biol Cybern 73:357-366): ``A`` = 3.25 mV,
    ``B`` = 22 mV, ``a`` = 100 /s, ``b`` = 50 /s, ``C`` = 135, ``c1..c4`` = 1, 0.8, 0.25, 0.25,
    ``v0`` = 6 mV, ``e0`` = 2.5 /s, ``r`` = 0.56 /mV. With them and ``p`` = 220 /s the column
    oscillates in the alpha band (about 10-11 Hz); for low ``p`` (50 /s, say) it rests at a stable
    fixed point (bifurcation analysis: Grimbert & Faugeras 2006, Neural Comput 18:3052-3068).

    BOLD drive: ``u = (y1 - y2 - 7.6 mV) / 30 mV`` (``bold_offset``: the mean of y1 - y2 at the
    config's defaults). The scale is set by the silent state, not by the alpha fluctuations (std
    0.54 mV): a column whose input p falls to ~0.05 /ms drops to y1 - y2 = -0.26 mV, which must
    still give u > -0.41 (the inflow empties below), here -0.26; across p = 0.09-0.35 /ms the
    alpha regime spans y1 - y2 = 6.3-8.4 mV, u = -0.04..+0.03.

    Parameters (units): ``A`` [mV] excitatory synaptic gain, ``B`` [mV] inhibitory synaptic gain,
    ``a`` [1/ms] excitatory kernel rate (1/time constant), ``b`` [1/ms] inhibitory kernel rate,
    ``C`` [1] average number of synaptic contacts, ``c1..c4`` [1] fractions of ``C`` giving
    ``C1..C4``, ``v0`` [mV] sigmoid midpoint, ``e0`` [1/ms] half the maximal firing rate, ``r``
    [1/mV] sigmoid steepness, ``p`` [1/ms] mean extrinsic pulse density.
    """

    state_names = ("y0", "y1", "y2", "y3", "y4", "y5")
    coupled_state = "y1-y2"
    bold_drive = "y1-y2"
    # BOLD drive u = (y1 - y2 - 7.6 mV) / 30 mV: y1 - y2 has mean 7.62 mV (regions 7.54..7.70)
    # and std 0.54 mV (80 ms means, extremes 2.0..10.4) at conf/model/jansen_rit.yaml's defaults
    # on gw, 8 s x 2 seeds; raw, it would hold the inflow at 1 + 7.6/0.41 ~ 20. The silent
    # state (p = 0.05 /ms, one column) sits at -0.26 mV: u = -0.26, the inflow stays > 0.
    bold_offset = 7.6
    bold_scale = 30.0
    # around the alpha limit cycle of the defaults (p = 0.22 /ms), where y0 spans 0.09..0.13 mV,
    # y1 24.4..24.7 mV, y2 15.4..18.6 mV, y3 +-0.0014, y4 +-0.012 and y5 +-0.11 mV/ms
    initial_range = {
        "y0": (0.08, 0.14),
        "y1": (23.0, 26.0),
        "y2": (15.0, 19.0),
        "y3": (-0.002, 0.002),
        "y4": (-0.02, 0.02),
        "y5": (-0.1, 0.1),
    }
    param_specs = {
        "A": ParamSpec(3.25, "mV", low=0.5, high=20.0, doc="excitatory synaptic gain"),
        "B": ParamSpec(22.0, "mV", low=1.0, high=100.0, doc="inhibitory synaptic gain"),
        "a": ParamSpec(0.1, "1/ms", low=0.01, high=1.0,
                       doc="excitatory kernel rate (100 /s = 1 / 10 ms)"),
        "b": ParamSpec(0.05, "1/ms", low=0.005, high=0.5,
                       doc="inhibitory kernel rate (50 /s = 1 / 20 ms)"),
        "C": ParamSpec(135.0, "1", low=1.0, high=1000.0, doc="average number of synaptic contacts"),
        "c1": ParamSpec(1.0, "1", low=0.0, high=2.0, doc="C1 / C: pyramidal -> excitatory"),
        "c2": ParamSpec(0.8, "1", low=0.0, high=2.0, doc="C2 / C: excitatory -> pyramidal"),
        "c3": ParamSpec(0.25, "1", low=0.0, high=2.0, doc="C3 / C: pyramidal -> inhibitory"),
        "c4": ParamSpec(0.25, "1", low=0.0, high=2.0, doc="C4 / C: inhibitory -> pyramidal"),
        **SIGMOID_SPECS,
        "p": ParamSpec(0.22, "1/ms", low=0.0, high=1.0,
                       doc="mean extrinsic pulse density (220 /s)"),
    }

    def firing_rate(self, v: Tensor) -> Tensor:
        """The model's sigmoid :func:`sigmoid` with its own ``e0``, ``v0``, ``r``: 1/ms."""
        p = self.params
        return sigmoid(v, p["e0"], p["v0"], p["r"])

    def coupled_observable(self, state: Tensor) -> Tensor:
        """Pyramidal membrane potential ``y1 - y2`` [mV], (B, N)."""
        return state[:, 1] - state[:, 2]

    def bold_observable(self, state: Tensor) -> Tensor:
        """Pyramidal membrane potential ``y1 - y2`` [mV], (B, N)."""
        return state[:, 1] - state[:, 2]

    def derivative(self, state: Tensor, coupling: Tensor | None, forcing: Tensor | None) -> Tensor:
        p = self.params
        y0, y1, y2, y3, y4, y5 = state.unbind(1)
        A, B, a, b, C = p["A"], p["B"], p["a"], p["b"], p["C"]
        S = self.firing_rate
        drive = p["p"] + self.add_inputs(coupling, forcing) + p["c2"] * C * S(p["c1"] * C * y0)
        dy3 = A * a * S(y1 - y2) - 2.0 * a * y3 - a * a * y0
        dy4 = A * a * drive - 2.0 * a * y4 - a * a * y1
        dy5 = B * b * p["c4"] * C * S(p["c3"] * C * y0) - 2.0 * b * y5 - b * b * y2
        return self.stack(y3, y4, y5, dy3, dy4, dy5)
