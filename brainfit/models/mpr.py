r"""Montbrió-Pazó-Roxin: the exact mean field of quadratic integrate-and-fire (QIF) neurons.

One population (:class:`MontbrioPazoRoxin`, ``"mpr"``) and an excitatory-inhibitory pair with
first-order synapses (:class:`MontbrioPazoRoxinEI`, ``"mpr_ei"``): the "NMM2" rung of the Rosetta
Stone of neural mass models (Byrne et al. 2022, J Math Neurosci 12:5).

Units shared by both. Time in ms. Firing rates ``r`` (and synaptic variables ``s``) in 1/ms, i.e.
kHz: 0.01 /ms = 10 spikes/s. The mean membrane potential ``v``, the excitabilities ``eta``, the
heterogeneity ``Delta``, the couplings ``J`` and the constant current ``I`` are dimensionless (the
QIF neuron ``tau V' = V^2 + eta + I`` in its canonical units). The paper writes the equations with
``tau`` explicit; at ``tau = 1`` (time in units of tau) they are its dimensionless form, so every
dimensionless value of the paper holds for any ``tau``, with rates scaled by ``1/tau``.
"""

from __future__ import annotations

import math

from torch import Tensor

from brainfit.models import register
from brainfit.models.base import NeuralMass
from brainfit.params import ParamSpec

PI = math.pi


def _qif_rates(r: Tensor, v: Tensor, tau: Tensor, delta: Tensor, current: Tensor
               ) -> tuple[Tensor, Tensor]:
    """(r', v') of one QIF population, in 1/ms^2 and 1/ms; ``current`` is dimensionless."""
    dr = (delta / (PI * tau) + 2.0 * r * v) / tau
    pi_tau_r = PI * tau * r
    dv = (v * v - pi_tau_r * pi_tau_r + current) / tau
    return dr, dv


@register("mpr")
class MontbrioPazoRoxin(NeuralMass):
    r"""Montbrió-Pazó-Roxin model: firing rate and mean potential of a QIF population.

    The exact mean field of all-to-all coupled QIF neurons with Lorentzian-distributed
    excitabilities (centre ``eta``, half-width ``Delta``), Montbrió, Pazó & Roxin 2015, Phys Rev X
    5:021028, eqs. (12)-(13):

    .. math::
        \tau \dot r &= \frac{\Delta}{\pi\tau} + 2 r v \\
        \tau \dot v &= v^2 + \eta + J\tau r - (\pi\tau r)^2 + I + \tau u

    States: ``r`` [1/ms] population firing rate, ``v`` [1] mean membrane potential.

    Inputs. ``u = coupling + forcing`` is in 1/ms and is added to ``v'`` (and to no other
    derivative): ``v' = (...)/tau + u``. A network input ``u_i = G sum_j w_ij r_j`` therefore enters
    exactly as the recurrent term ``J r`` does, with a dimensionless ``G`` on the same scale as
    ``J``; a dimensionless current ``I_ext`` (as in the paper) corresponds to ``u = I_ext / tau``.
    The coupling reads ``r`` and ``r`` drives BOLD.

    Fixed points. ``r' = 0`` gives ``v* = -Delta / (2 pi tau r*)``; with ``x = tau r*``,
    ``v' = 0`` becomes the quartic ``pi^2 x^4 - J x^3 - (eta + I) x^2 - Delta^2/(4 pi^2) = 0``.
    With the defaults (``Delta = 1``, ``eta = -5``, ``J = 15``, the paper's bistable example)
    there are three: a stable low-activity node (``tau r* ~= 0.081``), a saddle, and a stable
    high-activity focus (``tau r* ~= 1.03``), whose damped oscillations reflect transient spike
    synchrony.

    Defaults: ``Delta = 1``, ``eta = -5``, ``J = 15`` from the paper; ``tau = 10 ms``, a typical
    cortical membrane time constant, so that rates come out in physiological units (low state
    about 8 /s, high state about 100 /s). TVB's implementation uses ``tau = 1``, i.e. the
    dimensionless form (time in units of tau); set ``tau=1`` to get it.

    Parameters (units): ``tau`` [ms] membrane time constant, ``Delta`` [1] half-width of the
    excitability distribution, ``eta`` [1] its centre, ``J`` [1] recurrent synaptic weight,
    ``I`` [1] constant external current.
    """

    state_names = ("r", "v")
    coupled_state = "r"
    bold_drive = "r"
    # r from below the low state to above the high one; v over both states' potentials
    initial_range = {"r": (0.005, 0.12), "v": (-2.0, 0.0)}
    param_specs = {
        "tau": ParamSpec(10.0, "ms", low=0.1, high=100.0, doc="membrane time constant"),
        "Delta": ParamSpec(1.0, "1", low=0.01, high=20.0,
                           doc="half-width of the Lorentzian excitability distribution"),
        "eta": ParamSpec(-5.0, "1", low=-50.0, high=50.0, doc="centre of the excitabilities"),
        "J": ParamSpec(15.0, "1", low=-100.0, high=100.0, doc="recurrent synaptic weight"),
        "I": ParamSpec(0.0, "1", low=-50.0, high=50.0, doc="constant external current"),
    }

    def derivative(self, state: Tensor, coupling: Tensor | None, forcing: Tensor | None) -> Tensor:
        p = self.params
        r, v = state[:, 0], state[:, 1]
        tau = p["tau"]
        current = p["eta"] + p["J"] * tau * r + p["I"]
        dr, dv = _qif_rates(r, v, tau, p["Delta"], current)
        return self.stack(dr, dv + self.add_inputs(coupling, forcing))


@register("mpr_ei")
class MontbrioPazoRoxinEI(NeuralMass):
    r"""Two Montbrió-Pazó-Roxin populations, excitatory (E) and inhibitory (I), with synapses.

    Each population ``a`` in {E, I} follows the exact QIF mean field (Montbrió, Pazó & Roxin 2015)
    and is driven by the synaptic activations ``s_E``, ``s_I``: first-order (exponentially
    decaying) filters of the presynaptic rates, as in Devalle, Roxin & Montbrió 2017 (PLoS Comput
    Biol 13:e1005881, eqs. with synaptic time constant ``tau_d``) and in the current-based "NMM2"
    of Byrne et al. 2022:

    .. math::
        \tau_E \dot r_E &= \frac{\Delta_E}{\pi\tau_E} + 2 r_E v_E \\
        \tau_E \dot v_E &= v_E^2 + \eta_E - (\pi\tau_E r_E)^2
                           + \tau_E (J_{EE} s_E - J_{EI} s_I) + I_E + \tau_E u \\
        \tau_I \dot r_I &= \frac{\Delta_I}{\pi\tau_I} + 2 r_I v_I \\
        \tau_I \dot v_I &= v_I^2 + \eta_I - (\pi\tau_I r_I)^2
                           + \tau_I (J_{IE} s_E - J_{II} s_I) + I_I \\
        \tau_{sE} \dot s_E &= -s_E + r_E, \qquad \tau_{sI} \dot s_I = -s_I + r_I

    All ``J`` are >= 0; the sign of inhibition is written out. ``J_ab`` is the weight from
    population b onto population a. At any fixed point ``s = r``, so the fixed points do not
    depend on the synaptic time constants (their stability does); with ``J_EI = J_IE = J_II = 0``
    the E population has exactly the fixed points of :class:`MontbrioPazoRoxin` with ``J = J_EE``.

    States: ``r_E``, ``r_I`` [1/ms] rates; ``v_E``, ``v_I`` [1] mean potentials; ``s_E``, ``s_I``
    [1/ms] synaptic activations (filtered rates).

    Inputs. ``u = coupling + forcing`` [1/ms] is added to ``v_E'`` (as in
    :class:`MontbrioPazoRoxin`, so ``u = G sum_j w_ij r_E,j`` enters like ``J_EE s_E``); the
    coupling reads ``r_E``, and ``r_E`` drives BOLD.

    BOLD drive: ``u = (r_E - 0.007) / 0.025`` (``bold_offset``: r_E's mean at the config's
    defaults on gw, 7.05e-3 /ms with std 7.3e-5 over 80 ms means; ``bold_scale``: a silent
    region, r_E = 0, gives u = -0.28). Raw r_E fluctuations (~1e-4) were too small for float32
    BOLD to carry a gradient: one fitting epoch gave a gradient norm of exactly 0.

    Defaults. ``Delta = 1``, ``eta = -5`` and ``J_EE = 15`` for E are the single-population values
    of Montbrió et al. 2015, ``tau_E = tau_I = 10 ms`` as in :class:`MontbrioPazoRoxin`. The
    E-I weights (``J_EI = J_IE = 15``, ``J_II = 5``), ``eta_I = -5`` and the synaptic time constants
    (``tau_sE = 5 ms``, AMPA-like; ``tau_sI = 10 ms``, GABA_A-like) are not from a published table:
    they are chosen so that the default column has a single, stable, low-activity asynchronous
    state (``r_E ~= r_I ~= 7 /s``) that noise excites into damped oscillations, the regime in which
    whole-brain models are usually fitted. Inhibition there removes the high-activity state that
    ``J_EE = 15`` alone would give.

    Parameters (units): ``tau_E``, ``tau_I`` [ms] membrane time constants; ``tau_sE``, ``tau_sI``
    [ms] synaptic time constants; ``Delta_E``, ``Delta_I`` [1] excitability half-widths;
    ``eta_E``, ``eta_I`` [1] excitability centres; ``J_EE``, ``J_EI``, ``J_IE``, ``J_II`` [1]
    synaptic weights (target, source); ``I_E``, ``I_I`` [1] constant currents.
    """

    state_names = ("r_E", "v_E", "r_I", "v_I", "s_E", "s_I")
    coupled_state = "r_E"
    bold_drive = "r_E"
    bold_offset = 0.007
    bold_scale = 0.025
    initial_range = {
        "r_E": (0.002, 0.03), "v_E": (-3.0, -1.0),
        "r_I": (0.002, 0.03), "v_I": (-3.0, -1.0),
        "s_E": (0.002, 0.03), "s_I": (0.002, 0.03),
    }
    param_specs = {
        "tau_E": ParamSpec(10.0, "ms", low=0.1, high=100.0, doc="E membrane time constant"),
        "tau_I": ParamSpec(10.0, "ms", low=0.1, high=100.0, doc="I membrane time constant"),
        "tau_sE": ParamSpec(5.0, "ms", low=0.1, high=200.0,
                            doc="excitatory synaptic time constant"),
        "tau_sI": ParamSpec(10.0, "ms", low=0.1, high=200.0,
                            doc="inhibitory synaptic time constant"),
        "Delta_E": ParamSpec(1.0, "1", low=0.01, high=20.0, doc="E excitability half-width"),
        "Delta_I": ParamSpec(1.0, "1", low=0.01, high=20.0, doc="I excitability half-width"),
        "eta_E": ParamSpec(-5.0, "1", low=-50.0, high=50.0, doc="E excitability centre"),
        "eta_I": ParamSpec(-5.0, "1", low=-50.0, high=50.0, doc="I excitability centre"),
        "J_EE": ParamSpec(15.0, "1", low=0.0, high=100.0, doc="weight E -> E"),
        "J_EI": ParamSpec(15.0, "1", low=0.0, high=100.0, doc="weight I -> E"),
        "J_IE": ParamSpec(15.0, "1", low=0.0, high=100.0, doc="weight E -> I"),
        "J_II": ParamSpec(5.0, "1", low=0.0, high=100.0, doc="weight I -> I"),
        "I_E": ParamSpec(0.0, "1", low=-50.0, high=50.0, doc="constant current into E"),
        "I_I": ParamSpec(0.0, "1", low=-50.0, high=50.0, doc="constant current into I"),
    }

    def derivative(self, state: Tensor, coupling: Tensor | None, forcing: Tensor | None) -> Tensor:
        p = self.params
        r_e, v_e, r_i, v_i, s_e, s_i = state.unbind(1)
        tau_e, tau_i = p["tau_E"], p["tau_I"]
        cur_e = p["eta_E"] + tau_e * (p["J_EE"] * s_e - p["J_EI"] * s_i) + p["I_E"]
        cur_i = p["eta_I"] + tau_i * (p["J_IE"] * s_e - p["J_II"] * s_i) + p["I_I"]
        dr_e, dv_e = _qif_rates(r_e, v_e, tau_e, p["Delta_E"], cur_e)
        dr_i, dv_i = _qif_rates(r_i, v_i, tau_i, p["Delta_I"], cur_i)
        ds_e = (r_e - s_e) / p["tau_sE"]
        ds_i = (r_i - s_i) / p["tau_sI"]
        return self.stack(dr_e, dv_e + self.add_inputs(coupling, forcing), dr_i, dv_i, ds_e, ds_i)
