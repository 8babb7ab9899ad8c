r"""Wong-Wang family: the reduced Wong-Wang model and the excitatory-inhibitory dynamic mean field.

Both describe NMDA-mediated synaptic gating variables S in [0, 1] driven by population firing rates
given by the Abbott-Chance transfer function

.. math::
    H(I) = \frac{a I - b}{1 - \exp(-d\,(a I - b))}

with input current I in nA, gain a in n/C (so that a I is in Hz), threshold b in Hz and curvature
d in s; H is a rate in Hz. H is a smoothed threshold-linear function: H -> a I - b far above
threshold, H -> 0 far below, and at a I = b the formula is 0/0 with the limit 1/d. See
:func:`firing_rate` for how the singular point is evaluated.

Units. Time is in ms, but H is in Hz = 1/s, so every term that turns a rate into a change of S per
ms carries a factor 1e-3 (1 Hz = 1e-3 /ms). It is folded into the kinetic parameters: the papers'
dimensionless gamma = 0.641 (excitatory) and 1 (inhibitory) become ``gamma = 0.641e-3`` and
``gamma_I = 1e-3`` in units of 1/(ms Hz), which is the same number (1/(ms Hz) = 1000), so that
``gamma * H`` is in 1/ms. ``d`` stays in seconds, matching H in Hz.

Coupling. Both models take the long-range input in the units of the synaptic gating variable, as a
linear coupling gives it: ``coupling = G sum_j C_ij S_j`` (dimensionless), and multiply it by the
model's excitatory synaptic coupling (``J_N`` or ``J_NMDA``, nA) inside the derivative. So the
network's global strength G is the papers' G, and the factor J stays tied to the local one when J
is fitted. External forcing, in contrast, is a current in nA added to the (excitatory) input.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from brainfit.models import register
from brainfit.models.base import NeuralMass
from brainfit.params import ParamSpec

#: below this |d (a I - b)| the transfer function is evaluated by its Taylor series
_SERIES_RADIUS = 0.1
#: Taylor coefficients of z / (1 - exp(-z)) = sum_n B_n (-z)^n / n! (Bernoulli numbers), even part
_EVEN_COEFFS = (1.0 / 12.0, -1.0 / 720.0, 1.0 / 30240.0, -1.0 / 1209600.0)


def _z_over_one_minus_exp(z: Tensor) -> Tensor:
    """f(z) = z / (1 - exp(-z)), finite and smooth everywhere, including z = 0 (value 1).

    f(z) - f(-z) = z, so f(z) = max(z, 0) + |z| e^{-|z|} / (1 - e^{-|z|}): a ramp plus a
    decaying bump in [0, 1], in which nothing cancels or overflows (nor in its gradient) for any
    z != 0. Near 0 (|z| < 0.1) the Taylor series of f to order z^8 is used instead (truncation
    error < 1e-17): the closed form is 0/0 at z = 0, and its autograd derivative cancels for tiny
    |z|. The closed form only ever sees |z| >= 0.1 (other entries are replaced by 1 before it is
    evaluated), so the branch that ``torch.where`` discards has finite gradients and passes zero
    through them.
    """
    y = z.abs()
    small = y < _SERIES_RADIUS
    ys = torch.where(small, 1.0, y)
    closed = torch.relu(z) + ys * torch.exp(-ys) / -torch.expm1(-ys)
    zs = torch.where(small, z, 0.0)
    z2 = zs * zs
    c2, c4, c6, c8 = _EVEN_COEFFS
    series = 1.0 + 0.5 * zs + z2 * (c2 + z2 * (c4 + z2 * (c6 + z2 * c8)))
    return torch.where(small, series, closed)


def firing_rate(current: Tensor, a: Tensor | float, b: Tensor | float,
                d: Tensor | float) -> Tensor:
    r"""Abbott-Chance transfer function H(I) = (a I - b) / (1 - exp(-d (a I - b))), in Hz.

    The expression has a removable singularity at a I = b, where it tends to 1/d. It is computed
    as H = f(z) / d with z = d (a I - b) and f(z) = z / (1 - e^{-z}), using a Taylor series of f
    for |z| < 0.1, so the value and its gradients are finite and continuous at and near the
    singular point (in float32 and float64), and an ``expm1`` form elsewhere with which strongly
    negative inputs underflow to 0 instead of overflowing.

    Args:
        current: input current I [nA], any shape.
        a: gain [n/C] (a I in Hz).
        b: threshold [Hz].
        d: curvature [s].

    Returns:
        Firing rate [Hz], the broadcast shape of the inputs.

    References:
        Abbott & Chance 2005, Prog Brain Res 149:147; Wong & Wang 2006, J Neurosci 26:1314.
    """
    z = d * (a * current - b)
    return _z_over_one_minus_exp(z) / d


@register("wong_wang")
class ReducedWongWang(NeuralMass):
    r"""Reduced Wong-Wang model: one NMDA-gated excitatory population per region.

    .. math::
        x_i &= w J_N S_i + I_0 + J_N\,c_i + F_i \\
        H(x) &= \frac{a x - b}{1 - \exp(-d (a x - b))} \\
        \dot S_i &= -\frac{S_i}{\tau_S} + (1 - S_i)\,\gamma\,H(x_i)

    with the long-range input c_i = G sum_j C_ij S_j given by a linear coupling on S (the
    ``coupling`` argument, dimensionless; the model multiplies it by J_N, so G is the paper's
    global coupling) and an external current F_i (the ``forcing`` argument) in nA. x is in nA,
    H in Hz. Since time is in ms and H in Hz, gamma carries the factor 1e-3: the paper's
    dimensionless 0.641 is ``gamma = 0.641e-3`` 1/(ms Hz), so that gamma H is in 1/ms. S stays in
    [0, 1]: dS/dt = gamma H > 0 at S = 0 and -1/tau_S < 0 at S = 1. The coupling reads S, the
    input enters S's equation (through x), and S drives BOLD.

    Defaults are those of Deco et al. 2013 (J Neurosci 33:11239, "Resting-state functional
    connectivity emerges from structurally and dynamically shaped slow linear fluctuations"),
    reduced from Wong & Wang 2006 (J Neurosci 26:1314): a = 270 n/C, b = 108 Hz, d = 0.154 s,
    gamma = 0.641, tau_S = 100 ms, w = 0.9, J_N = 0.2609 nA, I_0 = 0.3 nA. With these, an isolated
    node has a single, stable, low-activity fixed point (S ~ 0.034, H ~ 0.56 Hz).

    BOLD drive: ``u = (S - 0.6) / 2`` (``bold_offset``, ``bold_scale``: S's mean at the config's
    defaults, and a scale that keeps its bistable regions, S 0.04..0.87, within u = -0.3..+0.15,
    and the whole range S = 0..1 within u = -0.3..+0.2).

    Parameters (units): ``a`` [n/C] gain, ``b`` [Hz] threshold, ``d`` [s] curvature, ``gamma``
    [1/(ms Hz)] kinetic parameter, ``tau_S`` [ms] NMDA decay time, ``w`` [1] local recurrence,
    ``J_N`` [nA] excitatory synaptic coupling, ``I_0`` [nA] external input current.
    """

    state_names = ("S",)
    coupled_state = "S"
    bold_drive = "S"
    # BOLD drive u = (S - 0.6) / 2: S has mean 0.58 with regions bistable between 0.04 and 0.87
    # (std 0.30 across regions and time, 0.003 in time) at conf/model/wong_wang.yaml's defaults
    # on gw, 8 s x 2 seeds; u stays within -0.29..+0.14 (raw: inflow up to 1 + 0.87/0.41 ~ 3)
    bold_offset = 0.6
    bold_scale = 2.0
    initial_range = {"S": (0.0, 0.2)}
    param_specs = {
        "a": ParamSpec(270.0, "n/C", low=10.0, high=1000.0, doc="gain of the transfer function"),
        "b": ParamSpec(108.0, "Hz", low=0.0, high=500.0, doc="threshold of the transfer function"),
        "d": ParamSpec(0.154, "s", low=0.01, high=1.0, doc="curvature of the transfer function"),
        "gamma": ParamSpec(0.641e-3, "1/(ms*Hz)", low=1e-5, high=1e-2,
                           doc="kinetic parameter (0.641 x 1e-3: H in Hz, t in ms)"),
        "tau_S": ParamSpec(100.0, "ms", low=1.0, high=1000.0, doc="NMDA gating decay time"),
        "w": ParamSpec(0.9, "1", low=0.0, high=2.0, doc="local excitatory recurrence"),
        "J_N": ParamSpec(0.2609, "nA", low=0.0, high=1.0, doc="excitatory synaptic coupling"),
        "I_0": ParamSpec(0.3, "nA", low=0.0, high=1.0, doc="external input current"),
    }

    def current(self, state: Tensor, coupling: Tensor | None = None,
                forcing: Tensor | None = None) -> Tensor:
        """Total input current x [nA], (B, N)."""
        p = self.params
        lr = None if coupling is None else p["J_N"] * coupling
        return p["w"] * p["J_N"] * state[:, 0] + p["I_0"] + self.add_inputs(lr, forcing)

    def rate(self, state: Tensor, coupling: Tensor | None = None,
             forcing: Tensor | None = None) -> Tensor:
        """Firing rate H(x) [Hz], (B, N)."""
        p = self.params
        return firing_rate(self.current(state, coupling, forcing), p["a"], p["b"], p["d"])

    def derivative(self, state: Tensor, coupling: Tensor | None, forcing: Tensor | None) -> Tensor:
        p = self.params
        s = state[:, 0]
        h = self.rate(state, coupling, forcing)
        ds = -s / p["tau_S"] + (1.0 - s) * p["gamma"] * h
        return self.stack(ds)


@register("wong_wang_ei")
class WongWangEI(NeuralMass):
    r"""Excitatory-inhibitory dynamic mean field (Deco et al. 2014), with feedback inhibition.

    .. math::
        I^E_i &= W_E I_0 + w_+ J_{NMDA} S^E_i + J_{NMDA}\,c_i - J_i S^I_i + F_i \\
        I^I_i &= W_I I_0 + J_{NMDA} S^E_i - S^I_i \\
        r^E_i &= H_E(I^E_i), \qquad r^I_i = H_I(I^I_i), \qquad
        H_P(I) = \frac{a_P I - b_P}{1 - \exp(-d_P (a_P I - b_P))} \\
        \dot S^E_i &= -S^E_i / \tau_E + (1 - S^E_i)\,\gamma\,r^E_i \\
        \dot S^I_i &= -S^I_i / \tau_I + \gamma_I\,r^I_i

    with the long-range input c_i = G sum_j C_ij S^E_j given by a linear coupling on S_E (the
    ``coupling`` argument, dimensionless; the model multiplies it by J_NMDA, so G is the paper's
    global coupling) and an external current F_i (the ``forcing`` argument) in nA that enters the
    excitatory pool. The inhibitory self-coupling has weight 1 nA (written -S^I in the paper).
    Currents in nA, rates in Hz; time in ms, so the kinetic parameters carry the factor 1e-3
    (paper: gamma = 0.641 and 1, here 0.641e-3 and 1e-3 in 1/(ms Hz)).

    J_i is the local feedback inhibition (inhibitory-to-excitatory weight, nA). Deco et al. tune
    it per region ("feedback inhibition control", FIC) so that every region's excitatory rate sits
    near 3 Hz whatever long-range excitation it receives; :meth:`fit_feedback_inhibition` does
    this from the steady state (build the model with ``params={"J_i": {"scope": "regional"}}``).
    The coupling reads S_E and S_E drives BOLD (the excitatory synaptic activity, as for the
    reduced model; the rates are available through :meth:`rates`).

    Defaults (Deco et al. 2014, J Neurosci 34:7886, "How local excitation-inhibition ratio
    impacts the whole brain dynamics"): a_E = 310 n/C, b_E = 125 Hz, d_E = 0.16 s, a_I = 615 n/C,
    b_I = 177 Hz, d_I = 0.087 s, tau_E = 100 ms, tau_I = 10 ms, gamma = 0.641, gamma_I = 1,
    W_E = 1, W_I = 0.7, w_+ = 1.4, J_NMDA = 0.15 nA, I_0 = 0.382 nA, J_i = 1 nA. With these an
    isolated node rests at r_E ~ 3.08 Hz, r_I ~ 3.9 Hz (S_E ~ 0.165, S_I ~ 0.039); J_i ~ 1.011 nA
    gives exactly 3 Hz.

    Parameters (units): ``a_E``, ``a_I`` [n/C] gains, ``b_E``, ``b_I`` [Hz] thresholds, ``d_E``,
    ``d_I`` [s] curvatures, ``tau_E``, ``tau_I`` [ms] NMDA and GABA decay times, ``gamma``,
    ``gamma_I`` [1/(ms Hz)] kinetic parameters, ``W_E``, ``W_I`` [1] scalings of the external
    input, ``w_plus`` [1] local recurrent excitation, ``J_NMDA`` [nA] excitatory synaptic coupling,
    ``I_0`` [nA] external input current, ``J_i`` [nA] feedback inhibition.
    """

    state_names = ("S_E", "S_I")
    coupled_state = "S_E"
    bold_drive = "S_E"
    initial_range = {"S_E": (0.05, 0.3), "S_I": (0.02, 0.1)}
    param_specs = {
        "a_E": ParamSpec(310.0, "n/C", low=10.0, high=1000.0, doc="excitatory gain"),
        "b_E": ParamSpec(125.0, "Hz", low=0.0, high=500.0, doc="excitatory threshold"),
        "d_E": ParamSpec(0.16, "s", low=0.01, high=1.0, doc="excitatory curvature"),
        "a_I": ParamSpec(615.0, "n/C", low=10.0, high=2000.0, doc="inhibitory gain"),
        "b_I": ParamSpec(177.0, "Hz", low=0.0, high=500.0, doc="inhibitory threshold"),
        "d_I": ParamSpec(0.087, "s", low=0.01, high=1.0, doc="inhibitory curvature"),
        "tau_E": ParamSpec(100.0, "ms", low=1.0, high=1000.0, doc="NMDA decay time"),
        "tau_I": ParamSpec(10.0, "ms", low=1.0, high=1000.0, doc="GABA decay time"),
        "gamma": ParamSpec(0.641e-3, "1/(ms*Hz)", low=1e-5, high=1e-2,
                           doc="excitatory kinetic parameter (0.641 x 1e-3: H in Hz, t in ms)"),
        "gamma_I": ParamSpec(1e-3, "1/(ms*Hz)", low=1e-5, high=1e-2,
                             doc="inhibitory kinetic parameter (1 x 1e-3: H in Hz, t in ms)"),
        "W_E": ParamSpec(1.0, "1", low=0.0, high=2.0, doc="external input scaling, excitatory"),
        "W_I": ParamSpec(0.7, "1", low=0.0, high=2.0, doc="external input scaling, inhibitory"),
        "w_plus": ParamSpec(1.4, "1", low=0.0, high=5.0, doc="local recurrent excitation"),
        "J_NMDA": ParamSpec(0.15, "nA", low=0.0, high=1.0, doc="excitatory synaptic coupling"),
        "I_0": ParamSpec(0.382, "nA", low=0.0, high=1.0, doc="external input current"),
        "J_i": ParamSpec(1.0, "nA", low=0.0, high=20.0,
                         doc="feedback inhibition, I to E (FIC: regional scope)"),
    }

    def currents(self, state: Tensor, coupling: Tensor | None = None,
                 forcing: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Input currents (I_E, I_I) [nA], each (B, N)."""
        p = self.params
        s_e, s_i = state[:, 0], state[:, 1]
        lr = None if coupling is None else p["J_NMDA"] * coupling
        i_e = (p["W_E"] * p["I_0"] + p["w_plus"] * p["J_NMDA"] * s_e - p["J_i"] * s_i
               + self.add_inputs(lr, forcing))
        i_i = p["W_I"] * p["I_0"] + p["J_NMDA"] * s_e - s_i
        return i_e, i_i

    def rates(self, state: Tensor, coupling: Tensor | None = None,
              forcing: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Firing rates (r_E, r_I) [Hz], each (B, N)."""
        p = self.params
        i_e, i_i = self.currents(state, coupling, forcing)
        return (firing_rate(i_e, p["a_E"], p["b_E"], p["d_E"]),
                firing_rate(i_i, p["a_I"], p["b_I"], p["d_I"]))

    def derivative(self, state: Tensor, coupling: Tensor | None, forcing: Tensor | None) -> Tensor:
        p = self.params
        s_e, s_i = state[:, 0], state[:, 1]
        r_e, r_i = self.rates(state, coupling, forcing)
        ds_e = -s_e / p["tau_E"] + (1.0 - s_e) * p["gamma"] * r_e
        ds_i = -s_i / p["tau_I"] + p["gamma_I"] * r_i
        return self.stack(ds_e, ds_i)

    # -- feedback inhibition control --------------------------------------------------------------
    def target_gating(self, target_rate: float | Tensor = 3.0) -> Tensor:
        """S_E at rest when the excitatory rate is ``target_rate`` [Hz].

        From dS_E/dt = 0: S_E* = gamma tau_E r / (1 + gamma tau_E r). For a linear coupling the
        steady long-range input of region i when every region fires at the target is then
        ``G * C.sum(-1) * S_E*`` (the ``coupling_input`` of :meth:`fit_feedback_inhibition`).
        """
        r = _positive_rate(target_rate)
        p = self.params
        k = p["gamma"] * p["tau_E"] * r.to(p["gamma"])
        return k / (1.0 + k)

    def _excitatory_current(self, r: Tensor, n_iter: int) -> Tensor:
        """Step 2 of :meth:`fit_feedback_inhibition`: I_E* = H_E^{-1}(r), by bisection on
        z = d_E (a_E I - b_E) without gradients, then one Newton step in I that attaches them."""
        p = self.params
        a_e, b_e, d_e = p["a_E"], p["b_E"], p["d_E"]
        with torch.no_grad():
            target = (d_e * r).double()
            g = _z_over_one_minus_exp
            # max(z, 0) <= g(z) <= max(z, 0) + 1: the root lies in [lo, target]; push lo down
            # until g(lo) <= target (g -> 0 as z -> -inf)
            lo = torch.clamp(target - 1.0, max=-1.0)
            for _ in range(200):
                above = g(lo) > target
                if not bool(above.any()):
                    break
                lo = torch.where(above, 2.0 * lo, lo)
            z = _bisect(lambda z: g(z) - target, lo, target.expand_as(lo), n_iter)
            i_e = ((z / d_e.double() + b_e.double()) / a_e.double()).to(p["J_i"])
        return _newton_step(lambda x: firing_rate(x, a_e, b_e, d_e) - r, i_e)

    def _inhibitory_gating(self, s_e: Tensor, n_iter: int) -> Tensor:
        """Step 3 of :meth:`fit_feedback_inhibition`: S_I*, the root of
        S - tau_I gamma_I H_I(x - S) with x = W_I I_0 + J_NMDA S_E*, by bisection, then one
        Newton step."""
        p = self.params
        x_i = p["W_I"] * p["I_0"] + p["J_NMDA"] * s_e
        k_i = p["tau_I"] * p["gamma_I"]

        def residual_i(s: Tensor) -> Tensor:
            return s - k_i * firing_rate(x_i - s, p["a_I"], p["b_I"], p["d_I"])

        with torch.no_grad():
            x64, k64 = x_i.double(), k_i.double()
            a_i, b_i, d_i = (p[k].double() for k in ("a_I", "b_I", "d_I"))
            hi = k64 * (torch.clamp(a_i * x64 - b_i, min=0.0) + 1.0 / d_i)
            s_i = _bisect(lambda s: s - k64 * firing_rate(x64 - s, a_i, b_i, d_i),
                          torch.zeros_like(hi), hi, n_iter).to(p["J_i"])
        return _newton_step(residual_i, s_i)

    def fit_feedback_inhibition(
        self,
        coupling_input: Tensor | float | None = None,
        target_rate: float | Tensor = 3.0,
        forcing: Tensor | float | None = None,
        apply: bool = True,
        n_iter: int = 200,
    ) -> Tensor:
        r"""Feedback inhibition J_i that holds each region's excitatory rate at ``target_rate``.

        Deco et al. 2014 (J Neurosci 34:7886) tune J_i region by region by simulating, raising
        J_i where r_E is above 3 Hz and lowering it where it is below, until r_E is within
        tolerance of the target. The fixed point that procedure seeks is solved here directly.
        At a steady state with r_E = r (the target):

        1. S_E* = gamma tau_E r / (1 + gamma tau_E r)  (dS_E/dt = 0);
        2. I_E* = H_E^{-1}(r)  (H_E is increasing; bisection);
        3. S_I* solves S_I = tau_I gamma_I H_I(W_I I_0 + J_NMDA S_E* - S_I)  (the right side
           decreases in S_I, so the root is unique; bisection on [0, tau_I gamma_I (max(a_I x -
           b_I, 0) + 1/d_I)] with x = W_I I_0 + J_NMDA S_E*);
        4. J_i = (W_E I_0 + w_+ J_NMDA S_E* + J_NMDA c_i + F_i - I_E*) / S_I*.

        Given the steady long-range input c_i each region receives (for a linear coupling with all
        regions at the target, c_i = G sum_j C_ij S_E*, see :meth:`target_gating`), the network
        then has a fixed point with r_E = r in every region. Whether it is reached from a given
        start (its stability) is a property of the network: it is for moderate G (Deco et al.),
        and it is lost for large G (check by simulating, as the tests do).
        Bisection runs in float64 without gradients; one Newton step on the result then attaches
        the implicit-function gradients, so the returned J_i is differentiable with respect to the
        model's parameters and ``coupling_input`` (useful to fit G with FIC held).

        Args:
            coupling_input: steady long-range input c (dimensionless, the ``coupling`` argument of
                :meth:`derivative`), shape (N,) or (B, N), or None for isolated regions.
            target_rate: excitatory rate to hold [Hz], > 0 (Deco et al.: 3 Hz).
            forcing: steady external current F [nA] on the excitatory pool, (N,) or (B, N).
            apply: also store the result in the ``J_i`` parameter (no gradient). Its scope must
                hold the values: ``regional`` for one value per region, ``subject_regional`` for
                values that differ across the batch too.
            n_iter: bisection steps (each halves the bracket).

        Returns:
            J_i [nA], broadcast shape of the inputs and parameters: (), (N,), (B, 1) or (B, N).

        Raises:
            ValueError: bad shapes, target or ``n_iter``; ``apply`` with a scope that cannot hold
                the values; a J_i outside its bounds (the target cannot be reached with J_i >= 0:
                raise I_0 or lower the target).
            TypeError: ``coupling_input`` or ``forcing`` is not a tensor or number.
        """
        if int(n_iter) < 1:
            raise ValueError(f"n_iter must be a positive number of bisection steps, got {n_iter}")
        p = self.params
        ref = p["J_i"]
        c = self._steady_input(coupling_input, "coupling_input", ref)
        f = self._steady_input(forcing, "forcing", ref)
        r = _positive_rate(target_rate).to(ref)
        s_e = self.target_gating(r)

        i_e = self._excitatory_current(r, n_iter)  # 2.
        s_i = self._inhibitory_gating(s_e, n_iter)  # 3.

        # 4. the feedback inhibition that balances the excitatory current
        drive = p["W_E"] * p["I_0"] + p["w_plus"] * p["J_NMDA"] * s_e - i_e
        if c is not None:
            drive = drive + p["J_NMDA"] * c
        if f is not None:
            drive = drive + f
        j_i = drive / s_i
        if apply:
            self._store_feedback_inhibition(j_i)
        return j_i

    @contextlib.contextmanager
    def tuned_feedback_inhibition(self, G: Tensor, weights: Tensor,
                                  target_rate: float = 3.0) -> Iterator[Tensor]:
        r"""Deco 2014's FIC for the coupling strength ``G``: the model reads J_i(G, ...) inside
        the block, with its graph.

        For a linear coupling of strength G on ``weights`` C, J_i is re-tuned so that r_E sits at
        ``target_rate`` at the network's FIC fixed point (S_E = S_E* in every region, so the
        long-range input is c = G C.sum(-1) S_E*, :meth:`target_gating`), stored (for checkpoints
        and exports; :meth:`fit_feedback_inhibition` with ``apply``) and handed to whatever the
        block simulates with its graph, so that a loss's gradient is that of the re-tuned model:
        dL/dG includes dL/dJ_i dJ_i/dG. The fixed-point condition
        F_i(J_i, G) = I_E,i - H_E^{-1}(r) = 0 involves J_i only through region i, and linearly
        (dF_i/dJ_i = -S_I*), so the implicit-function gradient
        dJ_i/dG = -(dF_i/dG) / (dF_i/dJ_i) = J_NMDA C.sum(-1)_i S_E* / S_I* is what the closed
        form of :meth:`fit_feedback_inhibition` differentiates to; its root finds (I_E*, S_I*) end
        in one Newton step that carries the implicit gradient to the model's other parameters.
        A simulation that recomputes its steps after the block (checkpointed chunks) loses
        dJ_i/dG.

        Args:
            G: the linear coupling's global strength, a scalar or one per batch element (B, 1).
            weights: the coupling weights C, (N, N) or (B, N, N) (``C[i, j]``: j -> i).
            target_rate: the excitatory rate to hold [Hz] (Deco et al.: 3 Hz).

        Yields:
            J_i as the block reads it, reduced to the scope of the ``J_i`` parameter.
        """
        nb, n = self.params.n_batch, self.n_regions
        c = G * weights.sum(-1) * self.target_gating(target_rate)
        j_i = self.fit_feedback_inhibition(c.expand(nb, -1), target_rate=target_rate,
                                           apply=True).expand(nb, n)
        # the store checked that the values are uniform along the dimensions the scope lacks
        scope = self.params.specs["J_i"].scope
        j_i = {"global": lambda v: v.mean(), "regional": lambda v: v.mean(0),
               "subject": lambda v: v.mean(1, keepdim=True)}.get(scope, lambda v: v)(j_i)
        with self.params.replaced("J_i", j_i):
            yield j_i

    def _steady_input(self, value: Tensor | float | None, what: str, ref: Tensor) -> Tensor | None:
        if value is None:
            return None
        try:
            v = torch.as_tensor(value).to(device=ref.device, dtype=ref.dtype)
        except (TypeError, ValueError, RuntimeError):
            raise TypeError(f"{what} must be a tensor of shape (N,) or (B, N) or a number, got "
                            f"{type(value).__name__}") from None
        n = self.n_regions
        if v.dim() > 2 or (v.dim() >= 1 and v.shape[-1] not in (1, n)):
            raise ValueError(f"{what} must have shape (N,) or (B, N) with N = {n}, got "
                             f"{tuple(v.shape)}")
        if not torch.isfinite(v).all():
            raise ValueError(f"{what} contains NaN or inf values")
        return v

    def _store_feedback_inhibition(self, j_i: Tensor) -> None:
        spec = self.params.specs["J_i"]
        n, nb = self.n_regions, self.params.n_batch
        v = j_i.detach()
        v = v.reshape(1, 1) if v.dim() == 0 else (v[None] if v.dim() == 1 else v)
        v = v.expand(v.shape[0], n)  # (1 or B, N)
        if v.shape[0] not in (1, nb):
            raise ValueError(f"J_i was computed for a batch of {v.shape[0]}, but the model was "
                             f"built with n_batch={nb}")

        def uniform(x: Tensor, dim: int | None) -> bool:
            ref = x.mean() if dim is None else x.mean(dim, keepdim=True)
            return bool(torch.allclose(x, ref.expand_as(x), rtol=1e-5, atol=1e-7))

        hint = ("build the model with params={'J_i': {'scope': 'regional'}} (one value per "
                "region) or 'subject_regional' (per batch element and region)")
        if spec.scope == "global":
            if not uniform(v, None):
                raise ValueError(f"feedback inhibition differs across regions or batch elements "
                                 f"but J_i has scope 'global'; {hint}")
            value = v.mean()
        elif spec.scope == "regional":
            if not uniform(v, 0):
                raise ValueError(f"feedback inhibition differs across batch elements but J_i has "
                                 f"scope 'regional'; {hint}")
            value = v[0]
        elif spec.scope == "subject":
            if not uniform(v, 1):
                raise ValueError(f"feedback inhibition differs across regions but J_i has scope "
                                 f"'subject'; {hint}")
            value = v[:, 0].expand(nb)
        elif spec.scope == "subject_regional":
            value = v.expand(nb, n)
        else:
            raise ValueError(f"J_i has scope {spec.scope!r}, which cannot hold fitted feedback "
                             f"inhibition values; {hint}")
        self.params.set_value("J_i", value.clone())


def _positive_rate(target_rate: float | Tensor) -> Tensor:
    r = torch.as_tensor(target_rate, dtype=torch.float64)
    if not torch.isfinite(r).all() or not (r > 0).all():
        raise ValueError(f"target_rate must be a finite rate > 0 Hz, got {target_rate}")
    return r


def _bisect(fn: Callable[[Tensor], Tensor], lo: Tensor, hi: Tensor, n_iter: int) -> Tensor:
    """Elementwise root of an increasing ``fn`` with fn(lo) <= 0 <= fn(hi)."""
    lo, hi = torch.broadcast_tensors(lo, hi)
    lo, hi = lo.clone(), hi.clone()
    for _ in range(int(n_iter)):
        mid = 0.5 * (lo + hi)
        up = fn(mid) > 0
        hi = torch.where(up, mid, hi)
        lo = torch.where(up, lo, mid)
    return 0.5 * (lo + hi)


def _newton_step(fn: Callable[[Tensor], Tensor], root: Tensor) -> Tensor:
    """One Newton step from a (detached) root of the elementwise ``fn``.

    At a root the value barely moves, and the gradient of the result with respect to anything
    ``fn`` depends on is -(dfn/dtheta) / (dfn/dx): the implicit-function gradient. The slope
    dfn/dx is taken detached, which leaves that gradient unchanged at the root.
    """
    x = root.detach()
    with torch.enable_grad():
        xg = x.clone().requires_grad_(True)
        (slope,) = torch.autograd.grad(fn(xg).sum(), xg)
    return x - fn(x) / slope.detach()
