"""Structural connectomes: the checks every layer applies and the one weight normalisation.

Convention: ``W[i, j]`` is the connection from region j to region i; weights and tract lengths
(mm) are (N, N) or batched (B, N, N), finite and non-negative.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

#: weight normalisations of :func:`normalize_weights`
NORMALIZATIONS = ("none", "max", "row_sum", "log1p")


def check_connectome(weights: Tensor, lengths: Tensor | None = None) -> None:
    """Raise ``ValueError`` unless W (and L) are square (N, N) or (B, N, N), finite, >= 0."""
    for what, m in (("weights", weights), ("lengths", lengths)):
        if m is None:
            continue
        if m.dim() not in (2, 3) or m.shape[-1] != m.shape[-2]:
            raise ValueError(f"{what} must be square, shape (N, N) or (B, N, N); got "
                             f"{tuple(m.shape)}")
        if not torch.isfinite(m).all():
            raise ValueError(f"{what} contain NaN or inf entries; clean the connectome (e.g. set "
                             f"missing connections to 0)")
        if (m < 0).any():
            raise ValueError(f"{what} contain negative entries (min {m.min().item():g}); "
                             f"connection weights and tract lengths must be >= 0")
    if lengths is not None and lengths.shape[-1] != weights.shape[-1]:
        raise ValueError(f"weights are {tuple(weights.shape)} but lengths are "
                         f"{tuple(lengths.shape)}: they must describe the same regions")


def normalize_weights(W: Tensor | np.ndarray, how: str | None = "none") -> Tensor | np.ndarray:
    """Normalise a connectome (per batch element).

    - ``none`` (or None): unchanged.
    - ``max``: divide by the largest weight, so max W = 1.
    - ``row_sum``: divide each row by its sum (each region's total input = 1; empty rows stay 0).
    - ``log1p``: ``log(1 + W)`` (compresses the heavy-tailed streamline counts), then ``max``.

    Args:
        W: (N, N) or (B, N, N), non-negative; a tensor, or a NumPy array (then the result is a new
            float64 array).
        how: one of :data:`NORMALIZATIONS`.

    Raises:
        ValueError: an unknown option, or ``max``/``log1p`` of an all-zero connectome.
    """
    if isinstance(W, np.ndarray):
        return normalize_weights(torch.from_numpy(np.array(W, dtype=np.float64)), how).numpy()
    if how in (None, "none"):
        return W
    if how == "log1p":
        return normalize_weights(torch.log1p(W), "max")
    if how == "max":
        top = W.amax(dim=(-2, -1), keepdim=True)
        if bool((top <= 0).any()):
            raise ValueError("cannot normalise an all-zero connectome by its maximum; check the "
                             "weights, or choose normalize none")
        return W / top
    if how == "row_sum":
        return W / W.sum(-1, keepdim=True).clamp_min(1e-30)
    raise ValueError(f"unknown normalisation {how!r}; valid options are {NORMALIZATIONS}")


class EffectiveConnectivity(nn.Module):
    r"""Coupling weights fitted per connection: the structural connectome times a gain.

    .. math::

        W_{b,ij} = S_{ij}\, g\big(u_0 + e_{ij} + d_{b,ij}\big)\, m_{ij}

    with ``S`` the (normalised) structural weights, ``g`` the bounded transform of a
    :class:`~brainfit.params.ParamSpec` with bounds ``[low, high]`` (the gain; ``g(u_0)`` = the
    starting ``value``, 1 by default, so the fit starts from the SC), ``e`` one deviation per
    connection shared by the cohort and ``d_b`` one per batch element (scope ``subject_edge``
    only), both in the unconstrained space and starting at 0, and ``m`` the mask of fitted
    connections: the SC's existing ones (``mask="sc"``, the default), or every pair of distinct
    regions (``mask="all"``; absent connections start at ``fill`` times the mean positive SC
    weight). W is non-negative and may become asymmetric (``W[i, j]`` is j -> i).

    :meth:`penalty` is the prior that keeps the fit near the SC and the subjects near the group:
    ``prior / 2 * mean(e^2) + shrinkage / 2 * mean(d_b^2)`` over the fitted connections, per
    batch element: a Gaussian prior of standard deviation ``1 / sqrt(prior)`` on the group's log
    gain (for the default ``low = 0`` and a gain near 1) and a hierarchical one that shrinks each
    subject toward the group (Gilson et al. 2016 fit such an effective connectivity to FC; Deco et
    al. 2019's "generative effective connectivity" starts from the SC likewise).

    Args:
        sc: structural weights (N, N) or (B, N, N), already normalised.
        n_batch: B.
        scope: ``edge`` (one W for the cohort) or ``subject_edge`` (group plus each element's own
            deviation).
        value: the starting gain.
        low, high: bounds of the gain (``high`` None: unbounded above).
        trainable: fit the gain (False: a fixed ``value`` times the SC).
        mask: ``sc`` or ``all`` (see above).
        prior, shrinkage: strengths of the two penalties (>= 0).
        fill: starting weight of absent connections under ``mask="all"``, relative to the mean
            positive SC weight.

    Raises:
        ValueError: an unknown scope or mask, a negative or missing lower bound, a starting value
            outside the bounds, a negative strength.
    """

    SCOPES = ("edge", "subject_edge")

    def __init__(self, sc: Tensor, n_batch: int, scope: str = "subject_edge", value: float = 1.0,
                 low: float = 0.0, high: float | None = 10.0, trainable: bool = True,
                 mask: str = "sc", prior: float = 1.0, shrinkage: float = 1.0,
                 fill: float = 0.01) -> None:
        super().__init__()
        from brainfit.params import ParamSpec

        if scope not in self.SCOPES:
            raise ValueError(f"connectivity scope must be one of {self.SCOPES}, got {scope!r}")
        if mask not in ("sc", "all"):
            raise ValueError(f"connectivity mask must be 'sc' (the SC's connections) or 'all', "
                             f"got {mask!r}")
        if low is None or low < 0:
            raise ValueError(f"the connectivity gain's lower bound must be >= 0 (weights stay "
                             f"non-negative), got low = {low}")
        if not (prior >= 0 and shrinkage >= 0 and fill > 0):
            raise ValueError(f"connectivity prior and shrinkage must be >= 0 and fill > 0, got "
                             f"{prior}, {shrinkage}, {fill}")
        self.scope, self.mask_kind, self.n_batch = scope, mask, int(n_batch)
        self.prior, self.shrinkage = float(prior), float(shrinkage)
        self.spec = ParamSpec(1.0, "1", low=low, high=high, trainable=True)
        self.spec.check("W (gain over the SC)", value)
        n = sc.shape[-1]
        off = ~torch.eye(n, dtype=torch.bool, device=sc.device)
        if mask == "sc":
            m = (sc > 0) & off
            base = sc
        else:
            m = off.expand_as(sc)
            floor = fill * sc[sc > 0].mean() if bool((sc > 0).any()) else torch.ones(())
            base = torch.where(sc > 0, sc, floor.to(sc))
        self.register_buffer("base", base * m)
        self.register_buffer("mask", m.to(sc.dtype))
        self.register_buffer("u0", self.spec.inverse_transform(
            torch.as_tensor(float(value), dtype=torch.float64)).to(sc.dtype))
        shape = tuple(sc.shape[-2:])
        self.group = nn.Parameter(torch.zeros(shape, dtype=sc.dtype), requires_grad=trainable)
        self.subject = (nn.Parameter(torch.zeros((n_batch, *shape), dtype=sc.dtype),
                                     requires_grad=trainable)
                        if scope == "subject_edge" else None)

    @property
    def trainable(self) -> bool:
        return self.group.requires_grad

    def forward(self) -> Tensor:
        """The weights W: (N, N) for ``edge`` on a shared SC, else (B, N, N)."""
        u = self.u0 + self.group
        if self.subject is not None:
            u = u + self.subject
        return self.base * self.spec.forward_transform(u)

    def penalty(self) -> Tensor:
        """The prior per batch element, (B,) (see the class docstring)."""
        n_fit = self.mask.sum((-2, -1)).clamp_min(1.0)
        out = 0.5 * self.prior * (self.group.pow(2) * self.mask).sum((-2, -1)) / n_fit
        if self.subject is not None:
            d = (self.subject.pow(2) * self.mask).sum((-2, -1)) / n_fit
            out = out + 0.5 * self.shrinkage * d
        return out.expand(self.n_batch) if out.dim() == 0 else out

    def extra_repr(self) -> str:
        return (f"scope={self.scope}, mask={self.mask_kind}, prior={self.prior}, "
                f"shrinkage={self.shrinkage}")
