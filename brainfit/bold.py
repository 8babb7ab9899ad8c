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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn

from brainfit import integrate as _integrate
from brainfit.checks import positive
from brainfit.params import ParamConfig, ParameterSet, ParamSpec
from brainfit.registry import Registry
from brainfit.runtime import check_finite
from brainfit.timegrid import (  # noqa: F401 (sampling_steps: brainfit.bold's, as ever)
    bold_steps_per_tr,
    burn_in_seconds,
    burn_in_steps,
    neural_steps_per_bold_step,
    sampling_steps,
    substeps,
)

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

#: Declarations of the haemodynamic parameters (defaults of ``friston2003``), units in seconds.
PARAM_SPECS: dict[str, ParamSpec] = {
    "kappa": ParamSpec(0.65, "1/s", low=0.05, high=5.0,
                       doc="rate of decay of the vasodilatory signal"),
    "gamma": ParamSpec(0.41, "1/s", low=0.05, high=5.0,
                       doc="rate of flow-dependent elimination (autoregulation)"),
    "tau": ParamSpec(0.98, "s", low=0.1, high=10.0, doc="haemodynamic transit time"),
    "alpha": ParamSpec(0.32, "1", low=0.05, high=1.0, doc="Grubb's exponent (vessel stiffness)"),
    "rho": ParamSpec(0.34, "1", low=0.01, high=0.99,
                     doc="resting oxygen extraction fraction (E0)"),
    "V0": ParamSpec(0.02, "1", low=0.0, high=0.2, doc="resting venous blood volume fraction"),
    "k1": ParamSpec(7 * 0.34, "1", doc="BOLD coefficient of (1 - q) (intravascular)"),
    "k2": ParamSpec(2.0, "1", doc="BOLD coefficient of (1 - q/v) (extravascular)"),
    "k3": ParamSpec(2 * 0.34 - 0.2, "1", doc="BOLD coefficient of (1 - v)"),
    "efficacy": ParamSpec(1.0, "1/s", low=0.0, high=10.0,
                          doc="neuronal efficacy epsilon: the drive is z = epsilon u, u the "
                              "model's dimensionless bold_input"),
}

#: Field-strength dependent constants of the revised BOLD coefficients, per B0 in tesla:
#: ``nu0`` frequency offset at the outer surface of magnetised vessels for fully deoxygenated
#: blood [1/s], ``r0`` slope of the intravascular relaxation rate against oxygen saturation [1/s],
#: ``te`` echo time [s], ``epsilon`` ratio of intra- to extravascular signal [1].
#:
#: - 1.5 T: nu0 = 40.3 /s, r0 = 25 /s, TE = 40 ms (Obata et al. 2004; Stephan et al. 2007, the
#:   constants of SPM's implementation); epsilon = 1, the prior mean of Stephan et al. 2007
#:   (log epsilon has prior mean 0; some implementations use 1.43 instead).
#: - 3 T: nu0 = 28.265 B0 = 84.8 /s, r0 = 110 /s, epsilon = 0.47 (Heinzle et al. 2016), with
#:   TE = 33.1 ms, the Human Connectome Project resting-state echo time; the set used for HCP
#:   data by Wang et al. 2019 (Sci Adv 5:eaat7854).
FIELD_CONSTANTS: dict[float, dict[str, float]] = {
    1.5: {"nu0": 40.3, "r0": 25.0, "te": 0.040, "epsilon": 1.0},
    3.0: {"nu0": 28.265 * 3.0, "r0": 110.0, "te": 0.0331, "epsilon": 0.47},
}


def stephan2007_coefficients(
    rho: float,
    field_strength: float = 1.5,
    te: float | None = None,
    epsilon: float | None = None,
    nu0: float | None = None,
    r0: float | None = None,
) -> tuple[float, float, float]:
    """Revised BOLD coefficients (Obata et al. 2004; Stephan et al. 2007, eq. 12).

    ``k1 = 4.3 nu0 rho TE``, ``k2 = epsilon r0 rho TE``, ``k3 = 1 - epsilon``.

    Args:
        rho: resting oxygen extraction fraction [1].
        field_strength: B0 [T]. 1.5 and 3.0 have tabulated constants (:data:`FIELD_CONSTANTS`);
            for any other field give ``r0``, ``te`` and ``epsilon``; ``nu0`` then defaults to
            28.265 B0 [1/s] (Heinzle et al. 2016).
        te: echo time [s]; default from the table.
        epsilon: ratio of intra- to extravascular signal [1]; default from the table.
        nu0: frequency offset [1/s]; default from the table (or 28.265 B0).
        r0: intravascular relaxation slope [1/s]; default from the table.

    Returns:
        ``(k1, k2, k3)``, dimensionless.

    Raises:
        ValueError: a field strength without tabulated constants and missing values, or a
            non-positive rho, TE, nu0 or r0.
    """
    table = FIELD_CONSTANTS.get(float(field_strength))
    if table is None:
        missing = [n for n, v in (("te", te), ("epsilon", epsilon), ("r0", r0)) if v is None]
        if missing:
            raise ValueError(
                f"no tabulated constants for field_strength = {field_strength} T (tabulated: "
                f"{sorted(FIELD_CONSTANTS)} T); pass {missing} explicitly"
            )
        table = {"nu0": 28.265 * float(field_strength)}
    te = table["te"] if te is None else float(te)
    epsilon = table["epsilon"] if epsilon is None else float(epsilon)
    nu0 = table["nu0"] if nu0 is None else float(nu0)
    r0 = table["r0"] if r0 is None else float(r0)
    rho = positive(rho, "rho")
    te = positive(te, "te", "seconds")
    nu0 = positive(nu0, "nu0", "1/s")
    r0 = positive(r0, "r0", "1/s")
    return 4.3 * nu0 * rho * te, epsilon * r0 * rho * te, 1.0 - epsilon


def _friston_k(rho: float) -> tuple[float, float, float]:
    return 7.0 * rho, 2.0, 2.0 * rho - 0.2


_HAEMO_2003 = {"kappa": 0.65, "gamma": 0.41, "tau": 0.98, "alpha": 0.32, "rho": 0.34,
               "efficacy": 1.0}

#: Rules giving (k1, k2, k3) from rho, per preset (used when rho is overridden by a scalar).
_K_RULES: dict[str, Callable[[float], tuple[float, float, float]]] = {
    "friston2003": _friston_k,
    "stephan2007": lambda rho: stephan2007_coefficients(rho, 1.5),
    "stephan2007_3t": lambda rho: stephan2007_coefficients(rho, 3.0),
}


def _preset(v0: float, name: str) -> dict[str, float]:
    k1, k2, k3 = _K_RULES[name](_HAEMO_2003["rho"])
    return {**_HAEMO_2003, "V0": v0, "k1": k1, "k2": k2, "k3": k3}


#: Parameter values of each preset. All share the haemodynamics of Friston et al. 2003
#: (kappa 0.65 /s, gamma 0.41 /s, tau 0.98 s, alpha 0.32, rho 0.34, the DCM priors of that
#: paper, and a neuronal efficacy of 1) and differ only in the BOLD output equation:
#:
#: - ``friston2003``: V0 = 0.02, k1 = 7 rho, k2 = 2, k3 = 2 rho - 0.2 (classical coefficients,
#:   1.5 T, TE = 40 ms).
#: - ``stephan2007``: V0 = 0.04, revised coefficients at 1.5 T, TE = 40 ms, epsilon = 1:
#:   k1 = 2.357, k2 = 0.34, k3 = 0.
#: - ``stephan2007_3t``: V0 = 0.04, revised coefficients at 3 T, TE = 33.1 ms, epsilon = 0.47:
#:   k1 = 4.103, k2 = 0.582, k3 = 0.53.
PRESETS: Registry[dict[str, float]] = Registry("BOLD preset", listing="valid presets",
                                               name_attr=None)
PRESETS.register("friston2003", _preset(0.02, "friston2003"))
PRESETS.register("stephan2007", _preset(0.04, "stephan2007"))
PRESETS.register("stephan2007_3t", _preset(0.04, "stephan2007_3t"))

class _Coefficients(NamedTuple):
    """Parameter values in the state's dtype, broadcastable against (B, N)."""

    kappa: Tensor
    gamma: Tensor
    inv_tau: Tensor
    out_exp: Tensor  # 1/alpha - 1
    log_rest: Tensor  # log(1 - rho)
    extract: Tensor  # (1 - rho) / rho
    V0: Tensor
    k1: Tensor
    k2: Tensor
    k3: Tensor
    efficacy: Tensor


class BoldHead(nn.Module):
    """What every BOLD head offers :class:`BoldStream` and the simulator.

    A head has ``dt`` (seconds: the step at which it receives the drive, the mean of the drive
    over each step), a carried state (:meth:`init_state`), and :meth:`_advance`, which consumes
    K steps of drive and returns the samples at the TR. Subclasses: :class:`BalloonWindkessel`,
    :class:`IdentityBold`.
    """

    dt: float
    n_regions: int
    #: the carried state's variables, (B, S, N) with S = len(state_names), all 0 at rest
    state_names: tuple[str, ...] = ()

    def init_state(self, batch: int, n_regions: int | None = None,
                   dtype: torch.dtype | None = None,
                   device: torch.device | str | None = None) -> Tensor:
        """The resting state: zeros of shape (B, S, N), in the head's parameters' dtype and
        device unless given (the default dtype for a head without parameters)."""
        n = self.n_regions if n_regions is None else int(n_regions)
        if int(batch) < 1 or n < 1:
            raise ValueError(f"batch and n_regions must be >= 1, got {batch} and {n}")
        ref = next(iter(self.parameters()), None)
        if ref is not None:
            dtype, device = dtype or ref.dtype, device or ref.device
        return torch.zeros(int(batch), len(self.state_names), n,
                           dtype=dtype or torch.get_default_dtype(), device=device)

    def _check_state(self, state: Tensor) -> None:
        raise NotImplementedError

    def _advance(self, state: Tensor, u: Tensor, start: int, stride: int, comp: Tensor,
                 dt: float) -> tuple[Tensor, Tensor, Tensor]:
        """Consume u (B, K, N), one value per step of ``dt`` seconds (the stream's step, at most
        the head's ``dt``); return the samples after steps start, start + stride, ... (B, K', N),
        the new state and its compensation term."""
        raise NotImplementedError

    def param_table(self) -> list[dict[str, Any]]:
        raise NotImplementedError


class BalloonWindkessel(BoldHead):
    r"""Balloon-Windkessel haemodynamics: neural drive u (B, T, N) -> BOLD y (B, T, N).

    .. math::
        \dot s = \epsilon u - \kappa s - \gamma (f - 1), \quad \dot f = s, \quad
        \tau \dot v = f - v^{1/\alpha}, \quad
        \tau \dot q = \frac{f\,(1 - (1-\rho)^{1/f})}{\rho} - q\, v^{1/\alpha - 1},

        y = V_0 \left[k_1 (1 - q) + k_2 (1 - q/v) + k_3 (1 - v)\right]

    integrated in the deviation variables ``(s, log f, log v, log q)`` (rest = all zeros), see
    the module docstring for why (float32 must be as good as float64). Friston et al. 2003,
    NeuroImage 19:1273; Stephan et al. 2007, NeuroImage 38:387.

    Parameters (units): ``efficacy`` [1/s] neuronal efficacy epsilon (Friston et al. 2000;
    default 1, so that the drive is the model's :meth:`~brainfit.models.base.NeuralMass.bold_input`
    unchanged), ``kappa`` [1/s] signal decay, ``gamma`` [1/s] autoregulation,
    ``tau`` [s] transit time, ``alpha`` [1] Grubb's exponent, ``rho`` [1] resting oxygen
    extraction, ``V0`` [1] resting venous volume fraction, ``k1``, ``k2``, ``k3`` [1] BOLD
    coefficients. Defaults from the preset (:data:`PRESETS`). If ``rho`` is overridden by a
    scalar and none of k1..k3 is given, k1..k3 are recomputed from it by the preset's rule
    (``k1 = 7 rho`` ...); they do not follow rho while it is being fitted.

    Step size. The default ``dt = 0.01`` s: the fastest haemodynamic rate is that of the venous
    volume, 1/(tau alpha) ~ 3.2 /s, so Heun's method (order 2) has a relative global error of
    order (3.2 dt)^2 / 6 ~ 2e-4 (measured: ~5e-5 of the response amplitude), far below BOLD
    measurement noise; and averaging the drive over 10 ms loses nothing the haemodynamics pass
    (their low-pass cut-off is well below 1 Hz). Each step costs ~60 small tensor operations,
    so a coarser step is the main speed knob.

    Args:
        preset: a key of :data:`PRESETS` (default ``"friston2003"``).
        dt: the integration step in seconds.
        params: ``{name: value | {value, scope, trainable, low, high}}`` overrides.
        trainable: True (fit every parameter), False, or a list of names to fit.
        n_regions: N (for ``regional`` scopes).
        n_batch: B (for ``subject`` scopes).
        integrator: a deterministic scheme of :mod:`brainfit.integrate` (``"heun"``,
            ``"euler"``).

    Raises:
        ValueError: unknown preset, parameter or integrator; non-positive dt; values out of
            bounds.
    """

    #: s = 0, log f = log v = log q = 0 at rest
    state_names = ("s", "log_f", "log_v", "log_q")

    def __init__(
        self,
        preset: str = "friston2003",
        dt: float = 0.01,
        params: Mapping[str, Any] | None = None,
        trainable: bool | Sequence[str] = False,
        n_regions: int = 1,
        n_batch: int = 1,
        integrator: str = "heun",
    ) -> None:
        super().__init__()
        preset_values = PRESETS.get(preset)  # ValueError naming the valid presets
        self.preset = preset
        self.dt = positive(dt, "BOLD step dt", "seconds")
        scheme = _integrate.create(integrator)
        if scheme.stochastic:
            raise ValueError(
                f"integrator {integrator!r} is stochastic; the haemodynamics are deterministic, "
                f"use 'heun' or 'euler'"
            )
        self.scheme = scheme
        self.n_regions = int(n_regions)

        values = dict(preset_values)
        overrides = dict(params or {})
        rho = _scalar_value(overrides.get("rho"))
        if rho is not None and not {"k1", "k2", "k3"} & set(overrides):
            values["k1"], values["k2"], values["k3"] = _K_RULES[preset](rho)
        specs = {n: replace(s, default=values[n]) for n, s in PARAM_SPECS.items()}

        if trainable is True:
            fit = list(specs)
        elif trainable is False or trainable is None:
            fit = []
        elif isinstance(trainable, str):
            fit = [trainable]
        else:
            fit = list(trainable)
        unknown = set(fit) - set(specs)
        if unknown:
            raise ValueError(
                f"trainable names {sorted(unknown)} are not BOLD parameters; valid names are "
                f"{sorted(specs)}"
            )
        for name in fit:
            overrides[name] = _with_trainable(overrides.get(name))
        self.params = ParameterSet(specs, n_regions, n_batch, None, overrides)

    # -- parameters --------------------------------------------------------------------------
    def _coefficients(self, dtype: torch.dtype, device: torch.device) -> _Coefficients:
        p = self.params

        def get(name: str) -> Tensor:
            return p[name].to(dtype=dtype, device=device)

        rho = get("rho")
        log_rest = torch.log1p(-rho)
        return _Coefficients(
            kappa=get("kappa"), gamma=get("gamma"), inv_tau=1.0 / get("tau"),
            out_exp=1.0 / get("alpha") - 1.0, log_rest=log_rest, extract=(1.0 - rho) / rho,
            V0=get("V0"), k1=get("k1"), k2=get("k2"), k3=get("k3"), efficacy=get("efficacy"),
        )

    def param_table(self) -> list[dict[str, Any]]:
        """Every parameter value in natural units (see :meth:`ParameterSet.table`)."""
        return self.params.table()

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any,
                              **kwargs: Any) -> None:
        # checkpoints written before the efficacy existed: keep its value (the default, 1)
        key = prefix + "params.raw.efficacy"
        if key not in state_dict and prefix + "params.raw.kappa" in state_dict:
            state_dict[key] = self.params.raw["efficacy"].detach().clone()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- state -------------------------------------------------------------------------------
    @staticmethod
    def to_physical(state: Tensor) -> Tensor:
        """(s, log f, log v, log q) -> (s, f, v, q), shape (B, 4, N). For inspection only."""
        return torch.cat((state[:, :1], torch.exp(state[:, 1:])), dim=1)

    @staticmethod
    def from_physical(physical: Tensor) -> Tensor:
        """(s, f, v, q) -> (s, log f, log v, log q), shape (B, 4, N)."""
        return torch.cat((physical[:, :1], torch.log(physical[:, 1:])), dim=1)

    def _check_state(self, state: Tensor) -> None:
        if not isinstance(state, Tensor):
            raise TypeError(f"state must be a torch.Tensor, got {type(state).__name__}")
        if state.dim() != 3 or state.shape[1] != 4:
            raise ValueError(
                f"BalloonWindkessel expects state of shape (B, 4, N) with states "
                f"{self.state_names}, got {tuple(state.shape)}"
            )
        self._check_regions(state.shape[2])
        self.params.check_batch(state.shape[0])

    def _check_regions(self, n: int) -> None:
        regional = [k for k, s in self.params.specs.items()
                    if s.scope not in ("global", "subject")]
        if regional and n != self.n_regions:
            raise ValueError(
                f"BalloonWindkessel was built for {self.n_regions} regions (parameters "
                f"{regional} are per region), got {n}; build it with n_regions={n}"
            )

    # -- dynamics ----------------------------------------------------------------------------
    @staticmethod
    def _rates(state: Tensor, z: Tensor, c: _Coefficients) -> Tensor:
        s, xf, xv, xq = state.unbind(1)
        ds = c.efficacy * z - c.kappa * s - c.gamma * torch.expm1(xf)
        dxf = s * torch.exp(-xf)
        outflow = torch.expm1(c.out_exp * xv)  # v^(1/alpha - 1) - 1 = f_out / v - 1
        dxv = (torch.expm1(xf - xv) - outflow) * c.inv_tau
        d_extract = -c.extract * torch.expm1(c.log_rest * torch.expm1(-xf))  # E(f)/rho - 1
        dxq = (torch.expm1(xf + torch.log1p(d_extract) - xq) - outflow) * c.inv_tau
        return torch.stack(torch.broadcast_tensors(ds, dxf, dxv, dxq), dim=1)

    @staticmethod
    def _signal(state: Tensor, c: _Coefficients) -> Tensor:
        xv, xq = state[:, 2], state[:, 3]
        return -c.V0 * (c.k1 * torch.expm1(xq) + c.k2 * torch.expm1(xq - xv)
                        + c.k3 * torch.expm1(xv))

    def derivative(self, state: Tensor, z: Tensor) -> Tensor:
        """d(state)/dt in 1/s.

        Args:
            state: (B, 4, N) deviation variables (s, log f, log v, log q).
            z: (B, N) dimensionless neural drive u (or anything that broadcasts to it); the
                rate of s receives ``efficacy * u``.

        Returns:
            (B, 4, N).
        """
        self._check_state(state)
        z = torch.as_tensor(z, dtype=state.dtype, device=state.device)
        if z.dim() > 2 or (z.dim() == 2 and z.shape[1] not in (1, state.shape[2])):
            raise ValueError(f"z must have shape (B, N) = ({state.shape[0]}, {state.shape[2]}), "
                             f"got shape {tuple(z.shape)}")
        c = self._coefficients(state.dtype, state.device)
        return self._rates(state, z, c)

    def signal(self, state: Tensor) -> Tensor:
        """The BOLD signal y (B, N) of ``state`` (B, 4, N); 0 at rest."""
        self._check_state(state)
        return self._signal(state, self._coefficients(state.dtype, state.device))

    def _increment(self, x: Tensor, z: Tensor, c: _Coefficients, h: float) -> Tensor:
        """The change of the state over one step of h seconds (Euler or Heun)."""
        k1 = self._rates(x, z, c)
        if self.scheme.name == "euler":
            return h * k1
        k2 = self._rates(x + h * k1, z, c)
        return (0.5 * h) * (k1 + k2)

    def _run(self, state: Tensor, u: Tensor, dt: float, start: int = 0, stride: int = 1,
             comp: Tensor | None = None) -> tuple[Tensor | None, Tensor, Tensor]:
        """Advance over u (B, K, N); keep the states after steps start, start+stride, ...

        The increments are accumulated with compensated (TwoSum) summation: ``comp`` carries
        the rounding error of the state, so a float32 state accumulates ~1e-6 increments on top
        of O(1) deviations without losing them (the case of a drive with a large mean).

        Returns (kept states (B, K', 4, N) or None, final state, final compensation).
        """
        c = self._coefficients(state.dtype, state.device)
        u = u.to(state.dtype)
        kept = []
        x = state
        err = torch.zeros_like(state) if comp is None else comp
        for k in range(u.shape[1]):
            y = self._increment(x, u[:, k], c, dt) + err
            t = x + y
            back = t - x
            err = (x - (t - back)) + (y - back)
            x = t
            if k >= start and (k - start) % stride == 0:
                kept.append(x)
        return (torch.stack(kept, dim=1) if kept else None), x, err

    def _advance(self, state: Tensor, u: Tensor, start: int, stride: int, comp: Tensor,
                 dt: float) -> tuple[Tensor, Tensor, Tensor]:
        states, x, comp = self._run(state, u, dt, start=start, stride=stride, comp=comp)
        y = self._signal_of_states(states, x)
        _check_diverged(x)
        return y, x, comp

    def _signal_of_states(self, states: Tensor | None, like: Tensor, k: int = 0) -> Tensor:
        if states is None:
            return like.new_zeros(like.shape[0], k, like.shape[2])
        b, t = states.shape[:2]
        c = self._coefficients(states.dtype, states.device)
        return self._signal(states.reshape(b * t, 4, -1), _expand_batch(c, t)).reshape(b, t, -1)

    def integrate(self, state: Tensor, u: Tensor, dt: float | None = None
                  ) -> tuple[Tensor, Tensor]:
        """Integrate K steps, the drive held constant within each.

        Args:
            state: (B, 4, N) starting state.
            u: (B, K, N) dimensionless drive at K consecutive steps.
            dt: step in seconds (default ``self.dt``).

        Returns:
            ``(y, new_state)``: y (B, K, N), the signal after each step; new_state (B, 4, N).
        """
        self._check_state(state)
        _check_drive(u, state.shape[0], state.shape[2], "u")
        h = self.dt if dt is None else positive(dt, "dt", "seconds")
        states, x, _ = self._run(state, u, h)
        return self._signal_of_states(states, state), x

    def forward(self, z: Tensor, dt: float) -> Tensor:
        """BOLD of a neural drive sampled every ``dt`` seconds, starting from rest.

        ``z[:, k]`` is the drive over ``[k dt, (k+1) dt)``, and ``y[:, k]`` the signal at the end
        of that interval, ``t = (k+1) dt``. If ``dt > self.dt``, each sample is integrated in
        ``ceil(dt / self.dt)`` equal substeps with the drive held; otherwise in one step of dt.

        Args:
            z: (B, T, N) dimensionless neural drive u.
            dt: its sampling interval in seconds.

        Returns:
            (B, T, N) BOLD signal.

        Raises:
            ValueError: wrong shape, non-positive dt.
            SimulationDiverged: a non-finite drive, or the haemodynamics diverged.
        """
        dt = positive(dt, "dt", "seconds")
        if not isinstance(z, Tensor):
            raise TypeError(f"z must be a torch.Tensor of shape (B, T, N), got {type(z).__name__}")
        if z.dim() != 3:
            raise ValueError(f"z must have shape (B, T, N), got shape {tuple(z.shape)}")
        _check_finite(z, "z")
        b, t, n = z.shape
        self._check_regions(n)
        self.params.check_batch(b)
        n_sub = substeps(dt, self.dt)
        dtype = z.dtype if z.is_floating_point() else self.params.raw["kappa"].dtype
        state = self.init_state(b, n, dtype=dtype, device=z.device)
        u = z.repeat_interleave(n_sub, dim=1) if n_sub > 1 else z
        states, x, _ = self._run(state, u, dt / n_sub, start=n_sub - 1, stride=n_sub)
        _check_diverged(x if states is None else states)
        return self._signal_of_states(states, z, t)

    def extra_repr(self) -> str:
        return f"preset={self.preset!r}, dt={self.dt} s, integrator={self.scheme.name!r}"


class IdentityBold(BoldHead):
    """No haemodynamics: BOLD is the drive itself, averaged over each TR (``bold=none``).

    For models whose variable is read as BOLD directly (the Hopf model of Deco et al. 2017,
    Sci Rep 7:3095, whose x oscillates at 0.01-0.1 Hz). Inside :class:`BoldStream` (and so
    :class:`~brainfit.simulator.BoldSimulator`) sample k is the **mean** of the drive u over the
    k-th TR after the burn-in, ``[burn_in + k tr, burn_in + (k + 1) tr)``, reported at the end of
    that TR like the Balloon-Windkessel head's samples. The mean, not the value at the TR: it is
    what a scanner's acquisition integrates, and it does not alias the drive's faster
    fluctuations into the BOLD band.

    The head has no parameters; the drive it receives is the model's dimensionless
    :meth:`~brainfit.models.base.NeuralMass.bold_input` (its offset and scale still apply).

    Args:
        dt: seconds per drive sample the head receives (the network records the mean of its drive
            over each); at least the neural step (:func:`~brainfit.timegrid.sampling_steps` fits
            it to the TR). The TR mean is exact whatever dt, so a coarse dt costs nothing.
        n_regions, n_batch: accepted for the same factory signature as
            :class:`BalloonWindkessel` (the head has nothing per region or subject).

    Raises:
        ValueError: a non-positive dt.
    """

    #: the sum of the drive over the current TR so far
    state_names = ("window_sum",)

    def __init__(self, dt: float = 0.08, n_regions: int = 1, n_batch: int = 1) -> None:
        super().__init__()
        self.dt = positive(dt, "BOLD step dt", "seconds")
        self.n_regions = int(n_regions)

    def param_table(self) -> list[dict[str, Any]]:
        """No parameters: an empty table."""
        return []

    def _check_state(self, state: Tensor) -> None:
        if not isinstance(state, Tensor):
            raise TypeError(f"state must be a torch.Tensor, got {type(state).__name__}")
        if state.dim() != 3 or state.shape[1] != 1:
            raise ValueError(f"IdentityBold expects state of shape (B, 1, N), got "
                             f"{tuple(state.shape)}")

    def _advance(self, state: Tensor, u: Tensor, start: int, stride: int, comp: Tensor,
                 dt: float) -> tuple[Tensor, Tensor, Tensor]:
        # windows end after the steps k = start (mod stride); the carried state is the sum over
        # the steps of the current window seen so far
        u = u.to(state.dtype)
        b, w, n = u.shape
        r = start % stride
        if r >= w:  # no window ends in this chunk
            return u.new_zeros(b, 0, n), state + u.sum(1, keepdim=True), comp
        sums = [state[:, 0] + u[:, : r + 1].sum(1)]
        m = (w - r - 1) // stride
        body = u[:, r + 1: r + 1 + m * stride]
        if m:
            sums += list(body.reshape(b, m, stride, n).sum(2).unbind(1))
        tail = u[:, r + 1 + m * stride:].sum(1, keepdim=True)
        # the window ending at step r + j stride is kept when that step is >= start
        first = 0 if r >= start else (start - r) // stride
        y = (torch.stack(sums[first:], dim=1) / stride if len(sums) > first
             else u.new_zeros(b, 0, n))
        return y, tail, comp

    def forward(self, z: Tensor, dt: float) -> Tensor:
        """The drive itself: ``z`` (B, T, N), sampled every ``dt`` seconds, as BOLD.

        The counterpart of :meth:`BalloonWindkessel.forward`: ``y[:, k]`` is the drive over
        ``[k dt, (k+1) dt)``; to average over a TR, stream it (:class:`BoldStream`).

        Raises:
            ValueError: wrong shape, non-positive dt, NaN or infinite values.
        """
        positive(dt, "dt", "seconds")
        if not isinstance(z, Tensor):
            raise TypeError(f"z must be a torch.Tensor of shape (B, T, N), got {type(z).__name__}")
        if z.dim() != 3:
            raise ValueError(f"z must have shape (B, T, N), got shape {tuple(z.shape)}")
        _check_finite(z, "z")
        return z

    def extra_repr(self) -> str:
        return f"dt={self.dt} s, samples=mean over each TR"


class BoldStream:
    """Turn neural chunks into BOLD samples at TR as they are produced (for long runs).

    The neural drive (sampled every ``neural_dt`` ms; sample j covers ``[j, j+1) neural_dt``) is
    averaged over each BOLD step of ``step`` seconds (default ``head.dt``), so the haemodynamics
    see the exact integral of the drive over the step whatever the neural step; an incomplete
    window is kept for the next :meth:`push`. The BOLD signal is sampled every ``tr`` seconds.

    Sample times: with t = 0 the start of the drive, sample k (k = 0, 1, ...) is the signal at
    ``t = burn_in + (k + 1) tr``, i.e. at the *end* of the k-th TR after the burn-in; nothing
    before ``burn_in`` is returned. Splitting a run into chunks of any sizes gives the same
    samples as one push.

    The stream takes the steps as given; :func:`~brainfit.timegrid.sampling_steps` gives steps
    that fit any TR (:class:`~brainfit.simulator.BoldSimulator` uses it).

    Args:
        head: the haemodynamic model (:class:`BalloonWindkessel`), or :class:`IdentityBold`.
        batch: B.
        n_regions: N.
        neural_dt: the neural step in milliseconds; ``step * 1000 / neural_dt`` must be an
            integer.
        tr: repetition time in seconds; ``tr / step`` must be an integer.
        burn_in: seconds of drive whose BOLD is discarded; a multiple of ``step``.
        dtype, device: of the carried state (default: the head's parameters').
        step: the BOLD step in seconds (default ``head.dt``; the Balloon-Windkessel head
            integrates with it).

    Attributes:
        state: the carried haemodynamic state ((B, 4, N) for the Balloon-Windkessel head).
        n_samples: TR samples returned so far.
        n_steps: BOLD steps taken so far.
        step: the BOLD step, s.
        steps_per_window: neural samples averaged per BOLD step.
        steps_per_tr: BOLD steps per TR.

    Raises:
        ValueError: a BOLD step that is not a multiple of the neural step, a TR that is not a
            multiple of the BOLD step, a burn-in that is not a multiple of the BOLD step or is
            negative.
    """

    def __init__(self, head: BoldHead, batch: int, n_regions: int, neural_dt: float,
                 tr: float, burn_in: float = 0.0, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None, step: float | None = None) -> None:
        if not isinstance(head, BoldHead):
            raise TypeError(f"head must be a BoldHead (BalloonWindkessel or IdentityBold), got "
                            f"{type(head).__name__}")
        neural_dt = positive(neural_dt, "neural_dt", "ms")
        tr = positive(tr, "TR", "seconds")
        step = head.dt if step is None else positive(step, "BOLD step", "seconds")
        m = neural_steps_per_bold_step(step, neural_dt)
        spt = bold_steps_per_tr(tr, step, neural_dt)
        burn_in = burn_in_seconds(burn_in)
        burn_steps = burn_in_steps(burn_in, step)
        self.head = head
        self.step = step
        self.batch = int(batch)
        self.n_regions = int(n_regions)
        self.neural_dt = neural_dt
        self.tr = tr
        self.burn_in = burn_in
        self.steps_per_window = m
        self.steps_per_tr = spt
        self.burn_steps = burn_steps
        self.state = head.init_state(self.batch, self.n_regions, dtype=dtype, device=device)
        head._check_state(self.state)
        self._leftover = self.state.new_zeros(self.batch, 0, self.n_regions)
        self._comp = torch.zeros_like(self.state)
        self.n_steps = 0
        self.n_samples = 0

    @property
    def dtype(self) -> torch.dtype:
        return self.state.dtype

    @property
    def device(self) -> torch.device:
        return self.state.device

    def sample_time(self, k: int) -> float:
        """Time in seconds (from the start of the drive) of sample k: ``burn_in + (k+1) tr``."""
        return self.burn_in + (k + 1) * self.tr

    @property
    def time(self) -> float:
        """Seconds of drive turned into haemodynamics so far (complete BOLD steps)."""
        return self.n_steps * self.step

    def push(self, z_chunk: Tensor) -> Tensor:
        """Consume a chunk of neural drive; return the BOLD samples it completes.

        Args:
            z_chunk: (B, T_chunk, N) dimensionless neural drive u at ``neural_dt`` ms.

        Returns:
            (B, K, N) BOLD samples at TR completed by this chunk (K may be 0).

        Raises:
            ValueError: wrong shape.
            SimulationDiverged: NaN or infinite values.
        """
        _check_drive(z_chunk, self.batch, self.n_regions, "z_chunk")
        _check_finite(z_chunk, "z_chunk")
        z = torch.cat((self._leftover, z_chunk.to(dtype=self.dtype, device=self.device)), dim=1)
        m = self.steps_per_window
        w = z.shape[1] // m
        self._leftover = z[:, w * m:]
        if w == 0:
            return self.state.new_zeros(self.batch, 0, self.n_regions)
        u = z[:, : w * m].reshape(self.batch, w, m, self.n_regions).mean(dim=2)
        # BOLD steps n0+1 .. n0+w; keep n > burn_steps with (n - burn_steps) % steps_per_tr == 0
        n0, spt = self.n_steps, self.steps_per_tr
        first = max(n0 + 1, self.burn_steps + 1)
        first += (-(first - self.burn_steps)) % spt
        start = first - (n0 + 1)
        y, self.state, self._comp = self.head._advance(self.state, u, start, spt, self._comp,
                                                           self.step)
        self.n_steps += w
        self.n_samples += y.shape[1]
        return y

    def detach(self) -> None:
        """Cut the graph at the carried state and leftover drive (truncated backprop)."""
        self.state = self.state.detach()
        self._comp = self._comp.detach()
        self._leftover = self._leftover.detach()


# -- helpers -----------------------------------------------------------------------------------
def _scalar_value(override: Any) -> float | None:
    """The scalar value in an override (number, 0-d tensor, dict or ParamConfig), else None."""
    if isinstance(override, Mapping):
        override = override.get("value", override.get("default"))
    elif isinstance(override, ParamConfig):
        override = override.value
    if isinstance(override, (int, float)) and not isinstance(override, bool):
        return float(override)
    if isinstance(override, Tensor) and override.numel() == 1:
        return float(override.item())
    return None


def _with_trainable(override: Any) -> Any:
    if override is None:
        return {"trainable": True}
    if isinstance(override, ParamConfig):
        return override if override.trainable is not None else replace(override, trainable=True)
    if isinstance(override, Mapping):
        return {"trainable": True, **override}
    return {"value": override, "trainable": True}


def _expand_batch(c: _Coefficients, t: int) -> _Coefficients:
    """Coefficients for a (B*T, N) batch: repeat batch-dependent values T times."""

    def rep(x: Tensor) -> Tensor:
        if x.dim() == 2 and x.shape[0] > 1:  # (B, 1) or (B, N)
            return x.repeat_interleave(t, dim=0)
        return x

    return _Coefficients(*(rep(x) for x in c))


def _check_drive(z: Any, batch: int, n_regions: int, what: str) -> None:
    if not isinstance(z, Tensor):
        raise TypeError(f"{what} must be a torch.Tensor of shape (B, T, N), got "
                        f"{type(z).__name__}")
    if z.dim() != 3 or z.shape[0] != batch or z.shape[2] != n_regions:
        raise ValueError(
            f"{what} must have shape (B, T, N) = ({batch}, T, {n_regions}), got shape "
            f"{tuple(z.shape)}"
        )


def _check_finite(z: Tensor, what: str) -> None:
    check_finite(z, f"{what}, the neural drive, contains NaN or infinite values",
                 "the neural simulation has diverged (reduce the neural dt or check the model's "
                 "parameters)")


def _check_diverged(states: Tensor) -> None:
    check_finite(states, "the haemodynamic state became NaN or infinite",
                 "the blood inflow f reached 0, which happens when the neural drive is strongly "
                 "negative for seconds (the steady inflow is 1 + z/gamma, z = efficacy * u); "
                 "check the model's bold_offset and bold_scale (u = (observable - bold_offset) "
                 "/ bold_scale should stay near 0) or lower bold.params.efficacy")
