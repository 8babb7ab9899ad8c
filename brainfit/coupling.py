r"""Couplings: how regions read each other through the connectome.

Convention: ``W[i, j]`` is the connection *from* region j *to* region i. ``x_j(t - d_ij)`` is the
coupled state of source j delayed by the conduction delay of edge (i, j); without delays it is
``x_j(t)``. ``G`` is the global coupling strength (the network's parameter, written k in some
papers); in every form below it plays the part of TVB's ``a``. Every coupling maps
(G, W, x_now (B, N), x_delayed (B, N, N) or None) to the input of each region, (B, N), with
``u_i = sum_j W_ij x_j(t - d_ij)`` the weighted sum of the delayed sources::

    name          input to region i                                              TVB (a = G)
    ------------  -------------------------------------------------------------  ------------------
    diffusive     G sum_j W_ij (x_j(t - d_ij) - x_i(t))                          Difference
    linear        G u_i + b                                                      Linear
    sigmoidal     cmin + (cmax - cmin) / (1 + exp(-G (u_i - midpoint) / sigma))  Sigmoidal
    tanh          G sum_j W_ij (1 + tanh((b x_j(t - d_ij) - midpoint) / sigma))  HyperbolicTangent
    sigmoidal_jr  G sum_j W_ij 2 e0 / (1 + exp(r (v0 - x_j(t - d_ij))))          SigmoidalJansenRit
    kuramoto      G sum_j W_ij sin(x_j(t - d_ij) - x_i(t))                       Kuramoto

``sigmoidal`` applies its nonlinearity after the sum, ``tanh`` and ``sigmoidal_jr`` to each
source before it (the nonlinearity a source sends through every edge). TVB's ``Kuramoto`` also
divides by the number of regions; here G absorbs it.

Parameters and units ("state" is the unit of the coupled state, "input" that of the model's
input; the defaults of ``sigmoidal`` and ``tanh`` are TVB's):

- ``linear``: ``b`` [input] = 0, an additive bias. G [input/state].
- ``sigmoidal`` (post-summation): ``cmin`` [input] = -1 and ``cmax``
  [input] = 1, the limits of the output; ``midpoint`` [state] = 0, the summed input at the
  middle of the sigmoid; ``sigma`` [state] = 230, its width. G [1] is TVB's ``a``, the steepness
  *inside* the sigmoid, so the global strength and the output range ``cmax - cmin`` are told
  apart (scaling G changes the shape, scaling ``cmax - cmin`` only the size). A region without
  connections (u_i = 0) receives the constant ``cmin + (cmax - cmin) / (1 + exp(G midpoint /
  sigma))``, 0 with the defaults.
- ``tanh`` (pre-summation): each source sends ``1 + tanh((b x_j - midpoint) /
  sigma)``, between 0 and 2, with ``b`` [1] = 1 scaling the state, ``midpoint`` [state] = 0 and
  ``sigma`` [state] = 1. G [input] is TVB's amplitude ``a``, which multiplies the sum (a separate
  amplitude would only multiply G).
- ``sigmoidal_jr`` (pre-summation): the Jansen-Rit potential-to-rate sigmoid of each source's
  mean membrane potential (mV) gives a firing rate (1/ms, the unit of the Jansen-Rit model's
  input p); ``e0`` [1/ms] = 0.0025, ``v0`` [mV] = 6, ``r`` [1/mV] = 0.56 (Jansen & Rit 1995),
  declared once with the model (:data:`brainfit.models.jansen_rit.SIGMOID_SPECS` and
  :func:`~brainfit.models.jansen_rit.sigmoid`). In TVB's names: ``cmin`` = 0,
  ``cmax`` = 2 e0 = 0.005, ``midpoint`` = v0 and ``r`` = r. G [1].
- ``diffusive`` and ``kuramoto`` have no parameters besides G.

Each coupling's parameters live in its own :class:`~brainfit.params.ParameterSet` and can be
fitted like any other (``coupling.params.<name>=...`` in a config).

References: Sanz Leon P et al. (2013) The Virtual Brain: a simulator of primate brain network
dynamics. Front Neuroinform 7:10 (``tvb.simulator.coupling``); Jansen BH, Rit VG (1995) Biol
Cybern 73:357-366; David O, Friston KJ (2003) NeuroImage 20:1743-1755.

Every coupling also has a factored form used by the fast engine (:mod:`brainfit.engine`):
``input_i = post(G, U_i, x_i, strength_i)`` with ``U_i = sum_j W_ij pre(x_j(t - d_ij))``, where
``pre`` is elementwise (C channels: Kuramoto's sin and cos, one otherwise; a nonlinearity applied
before the sum goes here) and ``post`` is local to region i. Because the delayed part is then a
*linear* weighted sum, it can be gathered for several steps at once and its gradient is the same
sum run backward in time with W transposed. ``forward`` stays the per-edge reference; the tests
hold the two forms equal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from brainfit.models.jansen_rit import SIGMOID_SPECS, sigmoid
from brainfit.params import ParameterSet, ParamSpec
from brainfit.registry import Registry

#: registered couplings, name -> class (each class's ``name``)
COUPLINGS: Registry[type[Coupling]] = Registry("coupling")


def weighted_sum(W: Tensor, x: Tensor | None, x_delayed: Tensor | None) -> Tensor:
    """``sum_j W_ij x_j`` for x (B, N) or ``sum_j W_ij x_ij`` for delayed x (B, N, N)."""
    if x_delayed is not None:
        return (W * x_delayed).sum(-1)
    return torch.matmul(W, x.unsqueeze(-1)).squeeze(-1)


def sent_sum(W: Tensor, send: Callable[[Tensor], Tensor], x: Tensor,
             x_delayed: Tensor | None) -> Tensor:
    """``sum_j W_ij send(x_j(t - d_ij))``, ``send`` applied edge by edge (to each source once
    without delays)."""
    if x_delayed is not None:
        return (W * send(x_delayed)).sum(-1)
    return weighted_sum(W, send(x), None)


class Coupling(nn.Module):
    """Base class. Subclasses declare ``param_specs`` and implement :meth:`forward`, :meth:`post`
    and, for a nonlinearity before the sum, :meth:`pre`."""

    param_specs: ClassVar[dict[str, ParamSpec]] = {}
    #: the registered short name
    name: ClassVar[str] = ""
    #: C, the number of channels of :meth:`pre`
    channels: ClassVar[int] = 1

    def __init__(self, n_regions: int = 1, n_batch: int = 1, params: dict | None = None,
                 **kwargs: Any) -> None:
        super().__init__()
        self.params = ParameterSet(self.param_specs, n_regions, n_batch,
                                   overrides={**(params or {}), **kwargs})

    def forward(self, G: Tensor, W: Tensor, x: Tensor, x_delayed: Tensor | None) -> Tensor:
        """Input to each region (B, N).

        Args:
            G: global strength, broadcastable to (B, 1) (scalar or per batch element).
            W: weights (N, N) or (B, N, N), ``W[i, j]`` from j to i.
            x: coupled state now, (B, N).
            x_delayed: (B, N, N) with ``[b, i, j] = x_j(t - d_ij)``, or None without delays.
        """
        raise NotImplementedError

    def pre(self, x: Tensor) -> Tensor:
        """What a source sends, before the weighted sum: (B, N) -> (B, C, N)."""
        return x.unsqueeze(1)

    def post(self, G: Tensor, U: Tensor, x: Tensor, strength: Tensor) -> Tensor:
        """Input to each region (B, N) from ``U`` (B, C, N), the weighted sums of :meth:`pre` of the
        delayed sources, the region's own coupled state ``x`` (B, N) and its in-strength
        ``strength = sum_j W_ij`` (N,) or (B, N)."""
        raise NotImplementedError

    def param_table(self) -> list[dict[str, Any]]:
        return self.params.table(prefix="coupling.")


@COUPLINGS.register()
class Diffusive(Coupling):
    """``G sum_j W_ij (x_j(t - d_ij) - x_i(t))`` (TVB's ``Difference`` with ``a`` = G)."""

    name = "diffusive"

    def forward(self, G, W, x, x_delayed):
        return G * (weighted_sum(W, x, x_delayed) - W.sum(-1) * x)

    def post(self, G, U, x, strength):
        return G * (U[:, 0] - strength * x)


@COUPLINGS.register()
class Linear(Coupling):
    """``G sum_j W_ij x_j(t - d_ij) + b`` (TVB's ``Linear`` with ``a`` = G)."""

    name = "linear"
    param_specs = {"b": ParamSpec(0.0, "input", doc="additive bias")}

    def forward(self, G, W, x, x_delayed):
        return G * weighted_sum(W, x, x_delayed) + self.params["b"]

    def post(self, G, U, x, strength):
        return G * U[:, 0] + self.params["b"]


@COUPLINGS.register()
class Sigmoidal(Coupling):
    """``cmin + (cmax - cmin) / (1 + exp(-G (u_i - midpoint) / sigma))`` with
    ``u_i = sum_j W_ij x_j(t - d_ij)``: TVB's post-summation ``Sigmoidal``, G in the place of
    its ``a`` (the steepness), TVB's defaults."""

    name = "sigmoidal"
    param_specs = {
        "cmin": ParamSpec(-1.0, "input", doc="lower limit of the output"),
        "cmax": ParamSpec(1.0, "input", doc="upper limit of the output"),
        "midpoint": ParamSpec(0.0, "state", doc="summed input at the middle of the sigmoid"),
        "sigma": ParamSpec(230.0, "state", low=1e-6, doc="width of the sigmoid (> 0)"),
    }

    def forward(self, G, W, x, x_delayed):
        return self._sigmoid(G, weighted_sum(W, x, x_delayed))

    def post(self, G, U, x, strength):
        return self._sigmoid(G, U[:, 0])

    def _sigmoid(self, G: Tensor, u: Tensor) -> Tensor:
        p = self.params
        # 1 / (1 + exp(-z)) == sigmoid(z), without overflow for large |z|
        return p["cmin"] + (p["cmax"] - p["cmin"]) * torch.sigmoid(
            G * (u - p["midpoint"]) / p["sigma"])


@COUPLINGS.register()
class Tanh(Coupling):
    """``G sum_j W_ij (1 + tanh((b x_j(t - d_ij) - midpoint) / sigma))``: TVB's pre-summation
    ``HyperbolicTangent``, G in the place of its amplitude ``a``, TVB's defaults."""

    name = "tanh"
    param_specs = {
        "b": ParamSpec(1.0, "1", doc="scale of the source's state"),
        "midpoint": ParamSpec(0.0, "state", doc="scaled state at the middle of the sigmoid"),
        "sigma": ParamSpec(1.0, "state", low=1e-6, doc="width of the sigmoid (> 0)"),
    }

    def send(self, x: Tensor) -> Tensor:
        """What a source in state x sends: ``1 + tanh((b x - midpoint) / sigma)``, in [0, 2]."""
        p = self.params
        return 1.0 + torch.tanh((p["b"] * x - p["midpoint"]) / p["sigma"])

    def forward(self, G, W, x, x_delayed):
        return G * sent_sum(W, self.send, x, x_delayed)

    def pre(self, x):
        return self.send(x).unsqueeze(1)

    def post(self, G, U, x, strength):
        return G * U[:, 0]


@COUPLINGS.register()
class SigmoidalJansenRit(Coupling):
    """``G sum_j W_ij S(x_j(t - d_ij))`` with the Jansen-Rit sigmoid
    ``S(v) = 2 e0 / (1 + exp(r (v0 - v)))`` of the source's membrane potential (mV), a firing
    rate in 1/ms: TVB's pre-summation ``SigmoidalJansenRit`` (``cmin`` = 0, ``cmax`` = 2 e0,
    ``midpoint`` = v0, ``a`` = G), with the parameters declared once with the model."""

    name = "sigmoidal_jr"
    param_specs = dict(SIGMOID_SPECS)

    def rate(self, v: Tensor) -> Tensor:
        """Firing rate (1/ms) of a source at membrane potential ``v`` (mV)."""
        p = self.params
        return sigmoid(v, p["e0"], p["v0"], p["r"])

    def forward(self, G, W, x, x_delayed):
        return G * sent_sum(W, self.rate, x, x_delayed)

    def pre(self, x):
        return self.rate(x).unsqueeze(1)

    def post(self, G, U, x, strength):
        return G * U[:, 0]


@COUPLINGS.register()
class KuramotoSine(Coupling):
    """``G sum_j W_ij sin(x_j(t - d_ij) - x_i(t))`` (TVB's ``Kuramoto`` with ``a`` = G and without
    its division by the number of regions)."""

    name = "kuramoto"
    channels = 2

    def forward(self, G, W, x, x_delayed):
        if x_delayed is not None:
            return G * (W * torch.sin(x_delayed - x.unsqueeze(-1))).sum(-1)
        # sin(a - b) = sin a cos b - cos a sin b: two matrix products instead of N^2 sines
        s, c = torch.sin(x), torch.cos(x)
        return G * (c * weighted_sum(W, s, None) - s * weighted_sum(W, c, None))

    def pre(self, x):
        return torch.stack((torch.sin(x), torch.cos(x)), dim=1)

    def post(self, G, U, x, strength):
        # sum_j W_ij sin(x_j - x_i) = cos x_i sum_j W_ij sin x_j - sin x_i sum_j W_ij cos x_j
        return G * (torch.cos(x) * U[:, 0] - torch.sin(x) * U[:, 1])


def available() -> list[str]:
    """Sorted registered coupling names."""
    return COUPLINGS.available()


def create(name: str, n_regions: int = 1, n_batch: int = 1, **kwargs: Any) -> Coupling:
    """Build the coupling registered as ``name`` (see :data:`COUPLINGS`).

    Args:
        name: registered short name (see :func:`available`).
        n_regions, n_batch: N and B (for parameters of non-global scope).
        **kwargs: ``params={name: value | {value, scope, trainable, low, high}}`` and parameter
            values by name.

    Raises:
        ValueError: unknown name (the message lists the valid ones) or parameter.
    """
    return COUPLINGS.create(name, n_regions=n_regions, n_batch=n_batch, **kwargs)


def laplacian(W: Tensor, normalized: bool = False) -> Tensor:
    r"""Graph Laplacian of weights (N, N) or (B, N, N).

    ``L = D - W`` with ``D = diag(sum_j W_ij)`` (in-strength), or the symmetric normalised form
    ``I - D^{-1/2} W D^{-1/2}`` (for symmetric W; regions without connections get a zero row).
    """
    deg = W.sum(-1)
    if not normalized:
        return torch.diag_embed(deg) - W
    inv_sqrt = torch.where(deg > 0, deg.clamp_min(1e-30).rsqrt(), torch.zeros_like(deg))
    eye = torch.diag_embed((deg > 0).to(W.dtype))
    return eye - inv_sqrt.unsqueeze(-1) * W * inv_sqrt.unsqueeze(-2)
