r"""Couplings: how regions read each other through the connectome.

Convention: ``W[i, j]`` is the connection *from* region j *to* region i. ``x_j(t - d_ij)`` is the
coupled state of source j delayed by the conduction delay of edge (i, j); without delays it is
``x_j(t)``. ``G`` is the global coupling strength (the network's parameter; written k in some
papers). Every coupling maps (G, W, x_now (B, N), x_delayed (B, N, N) or None) to the input of
each region, (B, N):

=====================  =====================================================================
name                   input to region i
=====================  =====================================================================
``diffusive``          ``G sum_j W_ij (x_j(t - d_ij) - x_i(t))``
``linear``             ``G sum_j W_ij x_j(t - d_ij) + b``
``sigmoidal``          ``G * scale / (1 + exp(-slope (u_i - midpoint)))``, ``u_i = sum_j W_ij x_j``
``tanh``               ``G * scale * tanh(slope (u_i - midpoint))``, ``u_i`` as above
``sigmoidal_jr``       ``G sum_j W_ij 2 e0 / (1 + exp(r (v0 - x_j(t - d_ij))))`` (pre-sum)
``kuramoto``           ``G sum_j W_ij sin(x_j(t - d_ij) - x_i(t))``
=====================  =====================================================================

``sigmoidal`` and ``tanh`` apply their nonlinearity after the sum (TVB's ``Sigmoidal`` and
``HyperbolicTangent``); ``sigmoidal_jr`` applies the Jansen-Rit firing-rate sigmoid to each source
before the sum (Jansen & Rit 1995; TVB's ``SigmoidalJansenRit``), turning a source's mean membrane
potential (mV) into a firing rate (1/ms, the unit of the Jansen-Rit model's input p). Their
shape parameters live in each coupling's own
:class:`~brainfit.params.ParameterSet` and can be fitted like any other.

Every coupling also has a factored form used by the fast engine (:mod:`brainfit.engine`):
``input_i = post(G, U_i, x_i)`` with ``U_i = sum_j W_ij pre(x_j(t - d_ij))``, where ``pre`` is
elementwise (C channels: Kuramoto's sin and cos, one otherwise) and ``post`` is local to region i.
Because the delayed part is then a *linear* weighted sum, it can be gathered for several steps at
once and its gradient is the same sum run backward in time with W transposed. ``forward`` stays the
per-edge reference; the tests hold the two forms equal.
"""

from __future__ import annotations

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


class Coupling(nn.Module):
    """Base class. Subclasses declare ``param_specs`` and implement :meth:`forward`."""

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
    name = "diffusive"

    def forward(self, G, W, x, x_delayed):
        return G * (weighted_sum(W, x, x_delayed) - W.sum(-1) * x)

    def post(self, G, U, x, strength):
        return G * (U[:, 0] - strength * x)


@COUPLINGS.register()
class Linear(Coupling):
    name = "linear"
    param_specs = {"b": ParamSpec(0.0, "state", doc="additive bias")}

    def forward(self, G, W, x, x_delayed):
        return G * weighted_sum(W, x, x_delayed) + self.params["b"]

    def post(self, G, U, x, strength):
        return G * U[:, 0] + self.params["b"]


@COUPLINGS.register()
class Sigmoidal(Coupling):
    name = "sigmoidal"
    param_specs = {
        "scale": ParamSpec(1.0, "state", low=0.0, doc="maximum of the sigmoid"),
        "slope": ParamSpec(1.0, "1/state", low=0.0, doc="steepness"),
        "midpoint": ParamSpec(0.0, "state", doc="input at half maximum"),
    }

    def forward(self, G, W, x, x_delayed):
        return self.post(G, weighted_sum(W, x, x_delayed).unsqueeze(1), x, None)

    def post(self, G, U, x, strength):
        p = self.params
        return G * p["scale"] * torch.sigmoid(p["slope"] * (U[:, 0] - p["midpoint"]))


@COUPLINGS.register()
class Tanh(Coupling):
    name = "tanh"
    param_specs = {
        "scale": ParamSpec(1.0, "state", low=0.0, doc="amplitude"),
        "slope": ParamSpec(1.0, "1/state", low=0.0, doc="steepness"),
        "midpoint": ParamSpec(0.0, "state", doc="input at zero output"),
    }

    def forward(self, G, W, x, x_delayed):
        return self.post(G, weighted_sum(W, x, x_delayed).unsqueeze(1), x, None)

    def post(self, G, U, x, strength):
        p = self.params
        return G * p["scale"] * torch.tanh(p["slope"] * (U[:, 0] - p["midpoint"]))


@COUPLINGS.register()
class SigmoidalJansenRit(Coupling):
    name = "sigmoidal_jr"
    #: declared once with the model (Jansen & Rit 1995's e0, v0, r)
    param_specs = dict(SIGMOID_SPECS)

    def rate(self, v: Tensor) -> Tensor:
        """Firing rate (1/ms) of a source at membrane potential ``v`` (mV)."""
        p = self.params
        return sigmoid(v, p["e0"], p["v0"], p["r"])

    def forward(self, G, W, x, x_delayed):
        if x_delayed is not None:
            return G * (W * self.rate(x_delayed)).sum(-1)
        return G * weighted_sum(W, self.rate(x), None)

    def pre(self, x):
        return self.rate(x).unsqueeze(1)

    def post(self, G, U, x, strength):
        return G * U[:, 0]


@COUPLINGS.register()
class KuramotoSine(Coupling):
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
