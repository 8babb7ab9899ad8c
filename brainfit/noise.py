r"""Noise processes, additive and driven only by an explicit ``torch.Generator``.

Each process gives, per integration step of ``dt`` ms, an increment (B, S, N) that the integrator
adds to the state, with one (trainable) amplitude per state variable:

- :class:`WhiteNoise`: ``dx_s = f_s dt + sigma_s dW``; increment ``sigma_s sqrt(dt) xi``,
  xi ~ N(0, 1). ``sigma_s`` in state units per sqrt(ms).
- :class:`OrnsteinUhlenbeckNoise`: ``dx_s = (f_s + eta_s) dt`` with
  ``tau d eta_s = -eta_s dt + sigma_s sqrt(2 tau) dW``, so eta has stationary standard deviation
  ``sigma_s`` (state units per ms) and correlation time ``tau`` (ms). eta is advanced with its exact
  discretisation ``eta <- eta e^{-dt/tau} + sigma_s sqrt(1 - e^{-2 dt/tau}) xi``; its state is
  returned and passed back in, so a run split in chunks equals the run in one piece.

The noise state (``None`` for white noise) is explicit: ``init_state`` makes it, ``increment``
returns the increment and the next state. :meth:`Noise.apply` does the same from standard normal
draws given by the caller: the network draws them from a
:class:`~brainfit.noise_stream.NoiseStream`, so that step t's noise depends only on the seed and t
(any chunking, either engine).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from brainfit.checks import positive
from brainfit.params import ParameterSet, ParamSpec
from brainfit.registry import Registry


def _per_state(value: float | Sequence[float] | Mapping[str, float], states: Sequence[str],
               what: str) -> dict[str, float]:
    if isinstance(value, Mapping):
        unknown = set(value) - set(states)
        if unknown:
            raise ValueError(f"{what} given for unknown state(s) {sorted(unknown)}; states are "
                             f"{tuple(states)}")
        return {s: float(value.get(s, 0.0)) for s in states}
    if isinstance(value, (int, float)):
        return {s: float(value) for s in states}
    value = list(value)
    if len(value) != len(states):
        raise ValueError(f"{what} needs one value per state {tuple(states)}, got {len(value)}")
    return {s: float(v) for s, v in zip(states, value)}


#: registered noise processes, kind -> class (each class's ``kind``)
NOISES: Registry[type[Noise]] = Registry("noise", listing="valid kinds", name_attr="kind")


class Noise(nn.Module):
    """Base class: per-state amplitudes ``sigma_<state>`` in a :class:`ParameterSet`.

    Args:
        state_names: the model's state names (S of them).
        sigma: one amplitude for all states, a sequence of S, or ``{state: sigma}`` (others 0).
        trainable: whether the amplitudes are fitted.
        scope: scope of the amplitudes (``global`` by default; ``regional``, ``subject``, ...).
        n_regions, n_batch: needed for the non-global scopes.
    """

    sigma_unit = "state/ms^0.5"
    #: the registered kind (set by ``NOISES.register``)
    kind = ""

    def __init__(self, state_names: Sequence[str], sigma: Any = 0.0, trainable: bool = False,
                 scope: str = "global", n_regions: int = 1, n_batch: int = 1) -> None:
        super().__init__()
        self.state_names = tuple(state_names)
        sig = _per_state(sigma, self.state_names, "noise sigma")
        specs = {f"sigma_{s}": ParamSpec(v, self.sigma_unit, low=0.0, trainable=trainable,
                                         scope=scope, doc=f"noise amplitude on {s}")
                 for s, v in sig.items()}
        self.params = ParameterSet(specs, n_regions, n_batch)

    def sigma(self) -> Tensor:
        """Amplitudes (S,), (S, N), (B, S, 1) or (B, S, N): broadcastable to (B, S, N)."""
        vals = [self.params[f"sigma_{s}"] for s in self.state_names]
        vals = torch.broadcast_tensors(*vals)
        return torch.stack(vals, dim=-2 if vals[0].dim() >= 1 else 0)

    def sigma_bsn(self) -> Tensor:
        """The amplitudes broadcastable to (B, S, N)."""
        s = self.sigma()
        return s[:, None] if s.dim() == 1 else s  # (S,) -> (S, 1)

    def init_state(self, shape: torch.Size, dtype: torch.dtype, device: torch.device,
                   generator: torch.Generator | None = None,
                   rows: tuple[int, int] | None = None) -> Tensor | None:
        """The noise process's state at t = 0 (None for white noise).

        ``rows = (offset, total)``: ``shape[0]`` elements are those rows of a batch of ``total``
        (:class:`~brainfit.noise_stream.NoiseStream`), and get those rows of its draws.
        """
        return None

    def increment(self, noise_state: Tensor | None, shape: torch.Size, dt: float,
                  generator: torch.Generator | None) -> tuple[Tensor, Tensor | None]:
        """Draw xi ~ N(0, 1) of ``shape`` from ``generator`` and :meth:`apply` it."""
        sig = self.sigma_bsn()
        return self.apply(noise_state, self._randn(shape, generator, sig.dtype, sig.device), dt)

    def apply(self, noise_state: Tensor | None, xi: Tensor, dt: float,
              sigma: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """The increment (B, S, N) of one step of ``dt`` ms from standard normals ``xi``, and the
        next noise state; ``sigma`` (from :meth:`sigma_bsn`) saves rebuilding the amplitudes
        every step."""
        raise NotImplementedError

    @staticmethod
    def _randn(shape, generator, like_dtype, like_device) -> Tensor:
        dev = generator.device if generator is not None else like_device
        return torch.randn(shape, generator=generator, dtype=like_dtype, device=dev).to(like_device)

    def param_table(self) -> list[dict[str, Any]]:
        return self.params.table(prefix="noise.")


@NOISES.register("white")
class WhiteNoise(Noise):
    """Additive white (Wiener) noise; ``sigma_s`` in state units / sqrt(ms)."""

    def apply(self, noise_state, xi, dt, sigma=None):
        sig = self.sigma_bsn() if sigma is None else sigma
        return sig * math.sqrt(dt) * xi, None


@NOISES.register("ou")
class OrnsteinUhlenbeckNoise(Noise):
    """Additive Ornstein-Uhlenbeck (coloured) noise with correlation time ``tau`` (ms).

    ``sigma_s`` is eta's stationary standard deviation, in state units / ms.
    """

    sigma_unit = "state/ms"

    def __init__(self, state_names: Sequence[str], sigma: Any = 0.0, tau: float = 5.0,
                 trainable: bool = False, scope: str = "global", n_regions: int = 1,
                 n_batch: int = 1) -> None:
        super().__init__(state_names, sigma, trainable, scope, n_regions, n_batch)
        self.tau = positive(tau, "OU correlation time tau", "ms")

    def init_state(self, shape, dtype, device, generator=None, rows=None):
        # start in the stationary distribution
        full = shape if rows is None else (rows[1], *shape[1:])
        xi = self._randn(full, generator, dtype, device)
        if rows is not None:
            xi = xi[rows[0]:rows[0] + shape[0]]
        return self.sigma_bsn().to(dtype) * xi

    def apply(self, noise_state, xi, dt, sigma=None):
        sig = self.sigma_bsn() if sigma is None else sigma
        if noise_state is None:
            noise_state = torch.zeros_like(xi)
        decay = math.exp(-dt / self.tau)
        new = noise_state * decay + sig * math.sqrt(1.0 - decay * decay) * xi
        return noise_state * dt, new


def create(kind: str, state_names: Sequence[str], **kwargs: Any) -> Noise:
    """Build a noise process by kind (``white`` or ``ou``, see :data:`NOISES`).

    Raises:
        ValueError: unknown kind (the message lists the valid ones).
    """
    return NOISES.create(kind, state_names, **kwargs)
