"""The contract every neural mass model keeps.

A model is an ``nn.Module`` describing the dynamics of one region; a network of N regions and a
batch of B independent copies are handled by broadcasting. State has shape (B, S, N): batch,
state variable, region. Time is in milliseconds.

A subclass declares, as class attributes:

- ``state_names``: names of the S state variables, in order.
- ``param_specs``: ``{name: ParamSpec}`` with literature defaults and units.
- ``coupled_state``: the state the coupling reads (a name in ``state_names``); models whose coupled
  quantity is derived (Jansen-Rit's y1 - y2, say) override :meth:`coupled_observable`.
- ``bold_drive``: the state (or derived quantity, via :meth:`bold_observable`) that drives BOLD.
- ``bold_offset``, ``bold_scale`` (optional; default 0 and 1): the resting level and the typical
  excursion of that observable, in its own units. The haemodynamic head receives the
  dimensionless drive :meth:`bold_input`, ``u = (observable - bold_offset) / bold_scale``, and
  multiplies it by its neuronal efficacy epsilon (Friston et al. 2000; the ``efficacy``
  parameter of :class:`brainfit.bold.BalloonWindkessel`, default 1): ``z = epsilon u``. The
  Balloon model's steady inflow is ``1 + z / gamma`` (gamma = 0.41 /s): a sustained u below
  -0.41 empties the vessels (the simulation diverges), so the values keep each region's mean u
  within about +-0.25 of 0 (inflow 0.4-1.6) and u's standard deviation at or below ~0.2. They
  come from a simulation of the model at its config's defaults on the bundled ``gw`` connectome
  (80 ms means of the observable, as the head receives them): offset ~ the mean, rounded; scale
  1, or ~5 standard deviations rounded to one figure where the std (in time and across regions)
  exceeds 0.2. Models whose observable is already within those limits keep the identity (0 and
  1): Hopf, harmonic, Kuramoto, Wilson-Cowan, Wong-Wang E-I (under feedback inhibition) and the
  Montbrio-Pazo-Roxin rates. Each class comments its measurement.

and implements one vector field, :meth:`derivative`. Integrators, torchdiffeq and the network all
call it. Where the coupling input enters (which state's derivative it changes) is stated in prose
in the class docstring, next to the model's equations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from brainfit.params import ParameterSet, ParamSpec
from brainfit.runtime import check_generator

#: 2 pi x 10 Hz in rad/ms: the default angular frequency of the alpha-band oscillators (harmonic,
#: Van der Pol, Kuramoto)
TWO_PI_10HZ = 2 * 3.141592653589793 * 10.0 / 1000.0


class NeuralMass(nn.Module):
    """Base class of the neural mass models.

    Args:
        n_regions: N, number of regions.
        n_batch: B, number of batch elements (only matters for ``subject`` scopes).
        maps: Spatial maps (N, K) or (B, N, K) for ``map``-scoped parameters.
        params: ``{name: value | {value, scope, trainable, low, high}}`` overrides.
        **kwargs: Parameter values by name (shorthand for ``params={name: value}``).

    Raises:
        ValueError: unknown parameter, value out of bounds, bad scope.
    """

    state_names: ClassVar[tuple[str, ...]] = ()
    param_specs: ClassVar[dict[str, ParamSpec]] = {}
    coupled_state: ClassVar[str] = ""
    bold_drive: ClassVar[str] = ""
    #: resting level of the BOLD observable, in its units (subtracted before it drives BOLD)
    bold_offset: ClassVar[float] = 0.0
    #: typical excursion of the BOLD observable, in its units (divides it; > 0)
    bold_scale: ClassVar[float] = 1.0
    #: default initial state per variable: (low, high) of a uniform draw
    initial_range: ClassVar[dict[str, tuple[float, float]]] = {}
    #: the registered short name (set by :func:`brainfit.models.register`)
    name: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.state_names:  # abstract intermediate classes
            return
        # a derived quantity (Jansen-Rit's "y1-y2") is fine when the class computes it itself
        derived = {"coupled_state": "coupled_observable", "bold_drive": "bold_observable"}
        for attr, method in derived.items():
            value = getattr(cls, attr)
            overridden = getattr(cls, method) is not getattr(NeuralMass, method)
            if value not in cls.state_names and not overridden:
                raise TypeError(f"{cls.__name__}.{attr} = {value!r} is not in {cls.state_names}")
        for attr in ("bold_offset", "bold_scale"):
            value = getattr(cls, attr)
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise TypeError(f"{cls.__name__}.{attr} must be a finite number, got {value!r}")
        if not cls.bold_scale > 0:
            raise TypeError(f"{cls.__name__}.bold_scale must be positive, got {cls.bold_scale!r}")
        missing = set(cls.state_names) - set(cls.initial_range)
        if missing:
            raise TypeError(f"{cls.__name__}.initial_range lacks {sorted(missing)}")

    def __init__(
        self,
        n_regions: int = 1,
        n_batch: int = 1,
        maps: Tensor | None = None,
        params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        overrides = dict(params or {})
        overrides.update(kwargs)
        self.n_regions = int(n_regions)
        self.params = ParameterSet(self.param_specs, n_regions, n_batch, maps, overrides)

    # -- the dynamics ---------------------------------------------------------------------------
    def derivative(self, state: Tensor, coupling: Tensor | None, forcing: Tensor | None) -> Tensor:
        """d(state)/dt in state units per ms.

        Args:
            state: (B, S, N).
            coupling: (B, N) network input (the class docstring says where it enters),
                or None for none.
            forcing: (B, N) external input (drive, stimulation, OU noise), or None.

        Returns:
            (B, S, N).
        """
        raise NotImplementedError

    def forward(self, state: Tensor, coupling: Tensor | None = None,
                forcing: Tensor | None = None) -> Tensor:
        return self.derivative(state, coupling, forcing)

    # -- state helpers ---------------------------------------------------------------------------
    @property
    def n_states(self) -> int:
        return len(self.state_names)

    def index(self, name: str) -> int:
        """Position of state ``name`` along dimension 1."""
        try:
            return self.state_names.index(name)
        except ValueError:
            raise ValueError(
                f"{type(self).__name__} has no state {name!r}; its states are {self.state_names}"
            ) from None

    def coupled_observable(self, state: Tensor) -> Tensor:
        """The (B, N) quantity the coupling reads (default: the ``coupled_state`` variable)."""
        return state[:, self.index(self.coupled_state)]

    def bold_observable(self, state: Tensor) -> Tensor:
        """The (B, N) quantity that drives BOLD (default: the ``bold_drive`` variable)."""
        return state[:, self.index(self.bold_drive)]

    def bold_input(self, observable: Tensor) -> Tensor:
        """The dimensionless drive ``(observable - bold_offset) / bold_scale`` of a BOLD head.

        Args:
            observable: values of :meth:`bold_observable` (any shape), e.g. the (B, T, N) series
                :class:`~brainfit.simulator.BoldSimulator` records. The map is affine, so it
                commutes with the averaging over each haemodynamic step.

        Returns:
            The same shape; ``observable`` itself when the offset is 0 and the scale 1.
        """
        if self.bold_offset == 0 and self.bold_scale == 1:
            return observable
        return (observable - self.bold_offset) / self.bold_scale

    def observable(self, state: Tensor, name: str) -> Tensor:
        """A named (B, N) observable: any state name, ``"coupled"`` or ``"bold"``."""
        if name == "coupled":
            return self.coupled_observable(state)
        if name == "bold":
            return self.bold_observable(state)
        return state[:, self.index(name)]

    def initial_state(
        self,
        batch: int,
        n_regions: int | None = None,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> Tensor:
        """Random initial state, uniform within ``initial_range`` per variable: (B, S, N).

        Raises:
            TypeError: ``generator`` is not a ``torch.Generator`` (a seed, say).
        """
        check_generator(generator)
        n = self.n_regions if n_regions is None else int(n_regions)
        ref = next(iter(self.parameters()), None)
        dtype = dtype or (ref.dtype if ref is not None else torch.get_default_dtype())
        device = device or (ref.device if ref is not None else None)
        u = torch.rand(batch, self.n_states, n, generator=generator, dtype=dtype,
                       device=generator.device if generator is not None else device)
        u = u.to(device)
        lo = torch.tensor([self.initial_range[s][0] for s in self.state_names], dtype=dtype,
                          device=device)[:, None]
        hi = torch.tensor([self.initial_range[s][1] for s in self.state_names], dtype=dtype,
                          device=device)[:, None]
        return lo + (hi - lo) * u

    def check_state(self, state: Tensor) -> None:
        """Raise ``ValueError`` unless ``state`` is (B, S, N) for this model."""
        if not isinstance(state, Tensor):
            raise TypeError(f"state must be a torch.Tensor, got {type(state).__name__}")
        if state.dim() != 3 or state.shape[1] != self.n_states:
            raise ValueError(
                f"{type(self).__name__} expects state of shape (B, {self.n_states}, N) with states "
                f"{self.state_names}, got {tuple(state.shape)}"
            )
        if state.shape[2] != self.n_regions:
            raise ValueError(
                f"{type(self).__name__} was built for {self.n_regions} regions, state has "
                f"{state.shape[2]}"
            )
        self.params.check_batch(state.shape[0])

    def param_table(self) -> list[dict[str, Any]]:
        """Every parameter value in natural units (see :meth:`ParameterSet.table`)."""
        return self.params.table()

    @staticmethod
    def stack(*derivatives: Tensor) -> Tensor:
        """Stack S tensors of shape (B, N) into (B, S, N)."""
        return torch.stack(torch.broadcast_tensors(*derivatives), dim=1)

    @staticmethod
    def add_inputs(*terms: Tensor | None) -> Tensor | float:
        """Sum the non-None inputs (coupling, forcing); 0.0 when all are None."""
        total: Tensor | float = 0.0
        for t in terms:
            if t is not None:
                total = total + t
        return total
