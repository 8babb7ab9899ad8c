"""Streaming a simulation's neural drive through a BOLD head, chunk by chunk, into samples at the
TR (:class:`BoldStream`)."""

from __future__ import annotations

import torch
from torch import Tensor

from brainfit.bold.head import BoldHead, _check_drive, _check_finite
from brainfit.checks import positive
from brainfit.timegrid import (
    bold_steps_per_tr,
    burn_in_seconds,
    burn_in_steps,
    neural_steps_per_bold_step,
)

__all__ = ["BoldStream"]


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
