r"""BOLD heads: neural drive -> BOLD signal, in seconds. The Balloon-Windkessel model, and an
identity head for models whose variable is BOLD itself.

The drive. A node model's BOLD observable (its ``bold_observable``: Hopf's x, a firing rate, a
membrane potential in mV) is first made dimensionless by the model's own resting level and typical
excursion (:meth:`brainfit.models.base.NeuralMass.bold_input`, applied by
:class:`~brainfit.simulator.BoldSimulator`)::

    u = (observable - bold_offset) / bold_scale          [1]
    z = epsilon u                                        [1/s]

and the head multiplies it by the neuronal efficacy epsilon (``efficacy``, Friston et al. 2000;
default 1, fittable like any head parameter). The steady inflow of the Balloon model under a
constant drive is ``f = 1 + z / gamma``: a drive below ``-gamma`` (-0.41 /s) for seconds empties
the vessels (f -> 0, the simulation diverges), one of +0.41 /s doubles the flow. Each model's
offset and scale are chosen so that u stays within about +-0.5 of 0 (see the model docstrings).

Equations (Friston et al. 2000; Friston, Harrison & Penny 2003; Stephan et al. 2007), with the
neural drive z (1/s), vasodilatory signal s (1/s), normalised blood inflow f, venous volume v and
deoxyhaemoglobin content q (f = v = q = 1 and s = 0 at rest)::

    s'     = epsilon u - kappa s - gamma (f - 1)
    f'     = s
    tau v' = f - v^(1/alpha)
    tau q' = f E(f) / rho - q v^(1/alpha - 1),      E(f) = 1 - (1 - rho)^(1/f)
    y      = V0 [k1 (1 - q) + k2 (1 - q/v) + k3 (1 - v)]

Numerics. f, v and q sit near 1 and change by ~1e-6 per small step; written as they are, float32
keeps only ~7 significant digits of "1 + small", and a resting-state BOLD series comes out
quantised. Here the state holds the *deviations from rest*, ``(s, log f, log v, log q)`` (the
log-space form of Stephan et al. 2007), and every right-hand side and the signal are written so
that no "1 + small - 1" is ever formed (``expm1``/``log1p`` throughout)::

    (log f)' = s / f
    (log v)' = [expm1(log f - log v) - expm1((1/alpha - 1) log v)] / tau
    (log q)' = [expm1(log f + log1p(dE) - log q) - expm1((1/alpha - 1) log v)] / tau
    dE       = E(f)/rho - 1 = -(1 - rho)/rho * expm1(log(1 - rho) * expm1(-log f))
    y        = -V0 [k1 expm1(log q) + k2 expm1(log q - log v) + k3 expm1(log v)]

so float32 resolves fluctuations as finely as float64 does, relative to their own size.

Presets (:data:`PRESETS`): ``friston2003`` (the default; classical coefficients of Buxton et al.
1998 at 1.5 T, TE = 40 ms, as used by Friston et al. 2003 and most whole-brain models) and
``stephan2007`` / ``stephan2007_3t`` (the revised, field-strength dependent coefficients of
Obata et al. 2004 / Stephan et al. 2007, see :func:`stephan2007_coefficients`).

Time is in seconds here (the neural models use milliseconds; :class:`BoldStream` converts).

Modules: :mod:`brainfit.bold.presets` (parameter declarations, field-strength coefficients,
presets), :mod:`brainfit.bold.head` (:class:`BoldHead`, what every head offers),
:mod:`brainfit.bold.balloon` (:class:`BalloonWindkessel`), :mod:`brainfit.bold.identity`
(:class:`IdentityBold`) and :mod:`brainfit.bold.stream` (:class:`BoldStream`). The steps of the
time grid (:func:`~brainfit.timegrid.sampling_steps`, also importable from here) are
:mod:`brainfit.timegrid`'s.

``bold=none`` (:class:`IdentityBold`): no haemodynamics; the BOLD sample at each TR is the mean of
the drive u over that TR (Deco et al. 2017, whose Hopf variable x is read as BOLD directly).

References:
    Friston KJ, Mechelli A, Turner R, Price CJ (2000) Nonlinear responses in fMRI: the Balloon
    model, Volterra kernels, and other hemodynamics. NeuroImage 12:466-477.
    Friston KJ, Harrison L, Penny W (2003) Dynamic causal modelling. NeuroImage 19:1273-1302.
    Stephan KE, Weiskopf N, Drysdale PM, Robinson PA, Friston KJ (2007) Comparing hemodynamic
    models with DCM. NeuroImage 38:387-401.
    Heinzle J, Koopmans PJ, den Ouden HEM, Raman S, Stephan KE (2016) A hemodynamic model for
    layered BOLD signals. NeuroImage 125:556-570.
"""

from __future__ import annotations

from brainfit.bold.balloon import BalloonWindkessel
from brainfit.bold.head import BoldHead
from brainfit.bold.identity import IdentityBold
from brainfit.bold.presets import (
    FIELD_CONSTANTS,
    PARAM_SPECS,
    PRESETS,
    stephan2007_coefficients,
)
from brainfit.bold.stream import BoldStream
from brainfit.timegrid import sampling_steps  # noqa: F401 (brainfit.bold.sampling_steps, as ever)

__all__ = [
    "FIELD_CONSTANTS",
    "PARAM_SPECS",
    "PRESETS",
    "BalloonWindkessel",
    "BoldHead",
    "BoldStream",
    "IdentityBold",
    "stephan2007_coefficients",
]
