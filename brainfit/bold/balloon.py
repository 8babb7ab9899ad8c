r"""The Balloon-Windkessel head (see :mod:`brainfit.bold` for its equations and numerics)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

import torch
from torch import Tensor

from brainfit import integrate as _integrate
from brainfit.bold.head import BoldHead, _check_diverged, _check_drive, _check_finite
from brainfit.bold.presets import _K_RULES, PARAM_SPECS, PRESETS
from brainfit.checks import positive
from brainfit.params import ParamConfig, ParameterSet
from brainfit.timegrid import substeps

__all__ = ["BalloonWindkessel"]


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
        integrator: a deterministic scheme of :mod:`brainfit.integrate`, by name or as an
            :class:`~brainfit.integrate.Integrator`: ``"heun"`` (the default) or ``"euler"``,
            or any other deterministic one, which the head integrates with as asked (its step
            taken on the deviation from the current state, so the increment keeps its
            precision; see ``_increment``). A stochastic scheme is refused.

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
        """The change of the state over one step of h seconds, by the head's scheme.

        Euler's and Heun's increments are written out. Any other deterministic scheme takes its
        own step of the deviation d from x, ``d' = rates(x + d)`` from ``d = 0``: the step of
        ``x' = rates(x)`` from x, its increment formed without subtracting x from a new state
        (which would lose its low digits in float32). For Euler and Heun that is the same
        increment, to the last bit.
        """
        if self.scheme.name not in ("euler", "heun"):
            return self.scheme.step(lambda d: self._rates(x + d, z, c), torch.zeros_like(x), h)
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
