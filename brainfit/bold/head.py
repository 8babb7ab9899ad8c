"""What every BOLD head offers: :class:`BoldHead`, and the checks of a drive and a state that
the heads and the stream share."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from brainfit.runtime import check_finite

__all__ = ["BoldHead"]


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
