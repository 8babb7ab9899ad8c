"""The identity head (``bold=none``): BOLD is the drive itself, averaged over each TR."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from brainfit.bold.head import BoldHead, _check_finite
from brainfit.checks import positive

__all__ = ["IdentityBold"]


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
