"""Declared, bounded, scoped parameters.

Every number that a model, a coupling, a noise process or the BOLD head can fit is declared once as
a :class:`ParamSpec` (default, bounds, unit, trainable flag, scope) and held in a
:class:`ParameterSet`, an ``nn.Module`` that stores it *unconstrained* and maps it to its natural
range on read:

=================  ===========================  ==================================
bounds             transform (unconstrained u)  natural value
=================  ===========================  ==================================
``(low, high)``    scaled sigmoid               ``low + (high - low) * sigmoid(u)``
``(low, None)``    shifted softplus             ``low + softplus(u)``
``(None, high)``   reflected softplus           ``high - softplus(u)``
``(None, None)``   identity                     ``u``
=================  ===========================  ==================================

A parameter that is not trainable is stored as its natural value (identity transform), so that a
value sitting exactly on a bound (a noise amplitude of 0, say) is kept exactly.

Scopes decide the shape of a parameter. Values are returned broadcastable against (B, N), batch
first, regions second:

===================  ================  ====================  =======================================
scope                stored shape      value shape           meaning
===================  ================  ====================  =======================================
``global``           ()                ()                    one value for the whole batch
``regional``         (N,)              (N,)                  one per region, shared by the batch
``subject``          (B,)              (B, 1)                one per (subject, restart)
``subject_regional`` (B, N)            (B, N)                one per batch element and region
``map``              (K + 1,)          (N,) or (B, N)        ``a + sum_k b_k * map_k`` (see below)
===================  ================  ====================  =======================================

``map`` scope keeps K + 1 numbers: an intercept ``a`` and one coefficient ``b_k`` per spatial map
(for example SC node strength, or a principal gradient). The linear combination is taken in the
unconstrained space and then transformed, so the regional values always stay within the bounds;
for an unbounded parameter it is exactly ``a + sum_k b_k map_k`` in natural units.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

SCOPES = ("global", "regional", "subject", "subject_regional", "map")

# The inverse transform needs a value strictly inside the bounds; values on a bound are nudged in by
# this fraction of the range (or absolute amount for half-bounded parameters).
_EDGE = 1e-6


@dataclass(frozen=True)
class ParamSpec:
    """Declaration of one parameter.

    Args:
        default: Default value in natural units (literature value of the model's reference).
        unit: Physical unit, e.g. ``"ms"``, ``"Hz"``, ``"mV"``, ``"1"`` for dimensionless.
        low: Lower bound (inclusive) or None.
        high: Upper bound (inclusive) or None.
        trainable: Whether the optimiser may change it.
        scope: One of :data:`SCOPES`.
        doc: One line on what it is.
        regime: The value at which the model changes regime (a bifurcation), or None: the Hopf
            model's ``a = 0`` divides a noise-driven fixed point from a limit cycle. Figures draw
            it beside fitted values.
    """

    default: float
    unit: str = "1"
    low: float | None = None
    high: float | None = None
    trainable: bool = False
    scope: str = "global"
    doc: str = ""
    regime: float | None = None

    def __post_init__(self) -> None:
        if self.scope not in SCOPES:
            raise ValueError(f"unknown scope {self.scope!r}; valid scopes are {SCOPES}")
        if self.low is not None and self.high is not None and not self.low < self.high:
            raise ValueError(f"lower bound {self.low} must be below upper bound {self.high}")

    def check(self, name: str, value: Tensor | float) -> None:
        """Raise ``ValueError`` if any element of ``value`` lies outside the bounds."""
        v = torch.as_tensor(value, dtype=torch.float64)
        if not torch.isfinite(v).all():
            raise ValueError(f"parameter {name!r} must be finite, got {value}")
        if self.low is not None and (v < self.low).any():
            raise ValueError(
                f"parameter {name!r} = {_short(v)} is below its lower bound {self.low} "
                f"[{self.unit}]; choose a value in [{self.low}, {self.high}]"
            )
        if self.high is not None and (v > self.high).any():
            raise ValueError(
                f"parameter {name!r} = {_short(v)} is above its upper bound {self.high} "
                f"[{self.unit}]; choose a value in [{self.low}, {self.high}]"
            )

    # -- transforms -------------------------------------------------------------------------------
    def forward_transform(self, u: Tensor) -> Tensor:
        """Unconstrained -> natural (only for trainable parameters)."""
        if not self.trainable:
            return u
        lo, hi = self.low, self.high
        if lo is not None and hi is not None:
            return lo + (hi - lo) * torch.sigmoid(u)
        if lo is not None:
            return lo + nn.functional.softplus(u)
        if hi is not None:
            return hi - nn.functional.softplus(u)
        return u

    def inverse_transform(self, x: Tensor) -> Tensor:
        """Natural -> unconstrained; values on a bound are nudged just inside it."""
        if not self.trainable:
            return x
        lo, hi = self.low, self.high
        x = x.to(torch.float64)
        if lo is not None and hi is not None:
            p = ((x - lo) / (hi - lo)).clamp(_EDGE, 1 - _EDGE)
            return torch.log(p) - torch.log1p(-p)
        if lo is not None:
            return _softplus_inv((x - lo).clamp_min(_EDGE))
        if hi is not None:
            return _softplus_inv((hi - x).clamp_min(_EDGE))
        return x


def _softplus_inv(y: Tensor) -> Tensor:
    # log(exp(y) - 1), stable for large y
    return y + torch.log(-torch.expm1(-y))


def _short(v: Tensor) -> str:
    return f"{v.item():g}" if v.numel() == 1 else f"tensor of shape {tuple(v.shape)}"


@dataclass
class ParamConfig:
    """Per-run choices for one parameter, as they come from a config or keyword argument.

    Any field left None keeps the :class:`ParamSpec`'s declaration.
    """

    value: Any = None
    scope: str | None = None
    trainable: bool | None = None
    low: float | None = None
    high: float | None = None
    unit: str | None = None


def _as_config(name: str, override: Any) -> ParamConfig:
    if override is None:
        return ParamConfig()
    if isinstance(override, ParamConfig):
        return override
    if isinstance(override, Mapping):
        allowed = {"value", "scope", "trainable", "low", "high", "unit", "default"}
        unknown = set(override) - allowed
        if unknown:
            raise ValueError(
                f"parameter {name!r}: unknown setting(s) {sorted(unknown)}; "
                f"valid settings are {sorted(allowed - {'default'})}"
            )
        keys = ("value", "scope", "trainable", "low", "high", "unit")
        kw = {k: override[k] for k in keys if k in override}
        if "value" not in kw and "default" in override:
            kw["value"] = override["default"]
        return ParamConfig(**kw)
    return ParamConfig(value=override)


class ParameterSet(nn.Module):
    """The parameters of one component (a model, a network, a BOLD head), scoped and bounded.

    Args:
        specs: Declarations, ``{name: ParamSpec}``.
        n_regions: N, the number of regions (for ``regional`` and ``map`` scopes).
        n_batch: B, the number of batch elements (for ``subject`` scopes).
        maps: Spatial maps for ``map`` scope, shape (N, K) or (B, N, K).
        overrides: ``{name: value | dict | ParamConfig}``; a dict may set ``value``, ``scope``,
            ``trainable``, ``low``, ``high`` and ``unit`` (for a parameter whose unit depends on
            the model it is used with, such as the coupling strength G). A value may be a scalar
            or a tensor of the scope's shape.

    Raises:
        ValueError: unknown parameter names, values outside the bounds, values of the wrong shape,
            or ``map`` scope without maps.
        TypeError: a value that is not a number (or an array of numbers).
    """

    def __init__(
        self,
        specs: Mapping[str, ParamSpec],
        n_regions: int = 1,
        n_batch: int = 1,
        maps: Tensor | None = None,
        overrides: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        overrides = dict(overrides or {})
        unknown = set(overrides) - set(specs)
        if unknown:
            raise ValueError(
                f"unknown parameter(s) {sorted(unknown)}; valid names are {sorted(specs)}"
            )
        if n_regions < 1 or n_batch < 1:
            raise ValueError(f"n_regions and n_batch must be >= 1, got {n_regions}, {n_batch}")
        self.n_regions = int(n_regions)
        self.n_batch = int(n_batch)
        self.specs: dict[str, ParamSpec] = {}
        self.raw = nn.ParameterDict()
        if maps is not None:
            maps = torch.as_tensor(maps, dtype=torch.get_default_dtype())
            if maps.dim() == 1:
                maps = maps[:, None]
            if maps.shape[-2] != n_regions or maps.dim() not in (2, 3):
                raise ValueError(
                    f"maps must have shape (N, K) or (B, N, K) with N = {n_regions}, "
                    f"got {tuple(maps.shape)}"
                )
            if not torch.isfinite(maps).all():
                raise ValueError("maps contain NaN or inf values")
            self.register_buffer("maps", maps)
        else:
            self.maps = None
        for name, spec in specs.items():
            cfg = _as_config(name, overrides.get(name))
            spec = replace(
                spec,
                scope=cfg.scope if cfg.scope is not None else spec.scope,
                trainable=bool(cfg.trainable) if cfg.trainable is not None else spec.trainable,
                low=cfg.low if cfg.low is not None else spec.low,
                high=cfg.high if cfg.high is not None else spec.high,
                unit=cfg.unit if cfg.unit is not None else spec.unit,
            )
            self.specs[name] = spec
            value = spec.default if cfg.value is None else cfg.value
            raw = self._initial_raw(name, spec, value).to(torch.get_default_dtype())
            self.raw[name] = nn.Parameter(raw, requires_grad=spec.trainable)
        self._cache: dict[str, Tensor] | None = None
        self._replaced: dict[str, Tensor] = {}

    # -- construction -----------------------------------------------------------------------------
    def stored_shape(self, spec: ParamSpec) -> tuple[int, ...]:
        n, b = self.n_regions, self.n_batch
        if spec.scope == "map":
            if self.maps is None:
                raise ValueError(
                    "scope 'map' needs spatial maps: pass maps of shape (N, K) (for example "
                    "the SC node strength) when building the model"
                )
            return (self.maps.shape[-1] + 1,)
        return {"global": (), "regional": (n,), "subject": (b,), "subject_regional": (b, n)}[
            spec.scope
        ]

    def _initial_raw(self, name: str, spec: ParamSpec, value: Any) -> Tensor:
        """The stored (unconstrained) form of ``value``, in float64."""
        shape = self.stored_shape(spec)
        try:
            v = torch.as_tensor(value, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError) as err:
            raise TypeError(f"parameter {name!r} needs a number (or an array of numbers), got "
                            f"{value!r}; its default is {spec.default} [{spec.unit}]") from err
        if spec.scope == "map":
            # the value gives the regional mean; coefficients start at zero
            if v.numel() != 1:
                raise ValueError(
                    f"parameter {name!r} has scope 'map': give a scalar starting value "
                    f"(the intercept), got shape {tuple(v.shape)}"
                )
            spec.check(name, v)
            raw = torch.zeros(shape, dtype=torch.float64)
            raw[0] = spec.inverse_transform(v)
            return raw
        if v.numel() != 1 and tuple(v.shape) != shape:
            raise ValueError(
                f"parameter {name!r} with scope {spec.scope!r} needs a scalar or shape {shape}, "
                f"got shape {tuple(v.shape)}"
            )
        spec.check(name, v)
        return spec.inverse_transform(v.expand(shape).clone())

    # -- reading ----------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> Tensor:
        """Natural value of ``name``, broadcastable against (B, N)."""
        if self._cache is not None:
            return self._cache[name]
        return self._value(name)

    def _value(self, name: str) -> Tensor:
        if name in self._replaced:
            return self._replaced[name]
        return self._stored_value(name)

    def _stored_value(self, name: str) -> Tensor:
        spec = self.specs[name]
        raw = self.raw[name]
        if spec.scope == "map":
            lin = raw[0] + self.maps @ raw[1:]  # (N,) or (B, N)
            return spec.forward_transform(lin)
        x = spec.forward_transform(raw)
        if spec.scope == "subject":
            return x[:, None]
        return x

    def natural(self, name: str) -> Tensor:
        """Natural value in its scope's own shape: (), (N,), (B,), (B, N); map: (N,) or (B, N)."""
        x = self._value(name)
        return x[:, 0] if self.specs[name].scope == "subject" else x

    @contextlib.contextmanager
    def cached(self) -> Iterator[dict[str, Tensor]]:
        """Compute every value once and reuse it (inside one simulation, say).

        Gradients still flow to the raw parameters through the cached values.

        Yields:
            the values computed, ``{name: natural value}`` (a copy: changing it changes nothing).
        """
        outer = self._cache
        self._cache = {name: self._value(name) for name in self.specs}
        try:
            yield dict(self._cache)
        finally:
            self._cache = outer

    def install(self, values: dict[str, Tensor] | None) -> None:
        """Read ``values`` from now on: ``self[name]`` returns ``values[name]`` (graph included),
        until the next :meth:`install` or the end of the :meth:`cached` / :meth:`installed` block
        around it; None computes each value on read again.

        For code that computes the values itself, e.g. the fast engine (:mod:`brainfit.engine`),
        which installs detached copies that require grad to differentiate one block of steps
        with respect to them, and installs ``{}`` where no value may be read. The dict is used as
        given, not copied. A name left out raises ``KeyError`` when read.
        """
        self._cache = values

    @contextlib.contextmanager
    def installed(self, values: dict[str, Tensor] | None) -> Iterator[None]:
        """:meth:`install` ``values`` inside the block; the values read before it are restored
        after it."""
        outer = self._cache
        self._cache = values
        try:
            yield
        finally:
            self._cache = outer

    @contextlib.contextmanager
    def replaced(self, name: str, value: Tensor) -> Iterator[None]:
        """Read ``name`` as ``value``, graph included, inside the block (the stored value stays).

        For a value computed from other parameters that a simulation must see with its gradient,
        such as feedback inhibition re-tuned for the current coupling strength: the simulation
        reads ``value`` (caches opened inside the block, and one already open, hold it), so the
        loss's gradient flows through it to whatever it was computed from. Reads after the block
        see the stored value again; a computation that reads the parameters later (a gradient
        checkpoint recomputed in the backward pass) sees the stored value, not ``value``.

        Args:
            name: the parameter.
            value: its natural value in the shape its scope reads as (see the table above):
                (), (N,), (B, 1) or (B, N), or (N,) or (B, N) for ``map``.

        Raises:
            ValueError: unknown name, or ``value`` of another shape.
        """
        if name not in self.specs:
            raise ValueError(f"unknown parameter {name!r}; valid names are {sorted(self.specs)}")
        shape = tuple(self._stored_value(name).shape)
        if tuple(value.shape) != shape:
            raise ValueError(f"parameter {name!r} with scope {self.specs[name].scope!r} reads as "
                             f"shape {shape}; a value to replace it must have that shape, got "
                             f"{tuple(value.shape)}")
        outer = self._replaced.get(name)
        outer_cached = None if self._cache is None else self._cache.get(name)
        self._replaced[name] = value
        if self._cache is not None:
            self._cache[name] = value
        try:
            yield
        finally:
            if outer is None:
                del self._replaced[name]
            else:
                self._replaced[name] = outer
            if self._cache is not None and outer_cached is not None:
                self._cache[name] = outer_cached

    def names(self) -> list[str]:
        return list(self.specs)

    def set_value(self, name: str, value: Any) -> None:
        """Set ``name`` to ``value`` in natural units (in place, no gradient)."""
        if name not in self.specs:
            raise ValueError(f"unknown parameter {name!r}; valid names are {sorted(self.specs)}")
        spec = self.specs[name]
        raw = self._initial_raw(name, spec, value)
        with torch.no_grad():
            self.raw[name].copy_(raw.to(self.raw[name]))

    def check_batch(self, batch: int) -> None:
        """Raise if a ``subject``-scoped parameter was built for another batch size."""
        for name, spec in self.specs.items():
            if spec.scope in ("subject", "subject_regional") and batch != self.n_batch:
                raise ValueError(
                    f"parameter {name!r} has scope {spec.scope!r} with {self.n_batch} batch "
                    f"elements, but the state has batch size {batch}; build the model with "
                    f"n_batch={batch}"
                )

    def table(self, prefix: str = "") -> list[dict[str, Any]]:
        """Every value in natural units: rows of ``{parameter, scope, unit, trainable, low, high,
        regime, batch, region, value}``.

        ``batch`` and ``region`` are None where the scope does not vary along them; ``low`` and
        ``high`` are the bounds (None where unbounded), ``regime`` the spec's regime boundary.
        """
        rows = []
        with torch.no_grad():
            for name, spec in self.specs.items():
                v = self.natural(name).detach().double().cpu()
                full = prefix + name
                base = {"parameter": full, "scope": spec.scope, "unit": spec.unit,
                        "trainable": spec.trainable, "low": spec.low, "high": spec.high,
                        "regime": spec.regime}
                if v.dim() == 0:
                    rows.append({**base, "batch": None, "region": None, "value": v.item()})
                elif spec.scope == "subject":
                    rows += [{**base, "batch": b, "region": None, "value": v[b].item()}
                             for b in range(v.shape[0])]
                elif v.dim() == 1:
                    rows += [{**base, "batch": None, "region": r, "value": v[r].item()}
                             for r in range(v.shape[0])]
                else:
                    rows += [{**base, "batch": b, "region": r, "value": v[b, r].item()}
                             for b in range(v.shape[0]) for r in range(v.shape[1])]
        return rows

    def extra_repr(self) -> str:
        return ", ".join(f"{n}[{s.scope}{', fit' if s.trainable else ''}]"
                         for n, s in self.specs.items())

