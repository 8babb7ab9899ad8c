r"""External forcing ``F(t) = f(t) + lambda * E(t)`` entering each region's input.

- ``f(t)``: a physiological drive: a constant per region (``drive``), or a time course.
- ``lambda * E(t)``: an electric-field term, linear in a given field time course ``E(t)`` (a
  transcranial stimulation protocol, in V/m or any unit the user keeps), with a per-region gain
  ``lambda`` (state units per field unit; trainable, regional by default).
- ``eta(t)``: noise is the network's noise process (:mod:`brainfit.noise`), added by the
  integrator; see :class:`~brainfit.network.BrainNetwork`.

Time courses are tensors sampled every ``sample_dt`` ms (held constant between samples, zero
after their end) or callables ``t_ms -> Tensor`` broadcastable to (B, N). ``targets`` restricts the
whole forcing to a subset of regions (indices or a boolean mask); other regions receive 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from brainfit.checks import positive
from brainfit.params import ParameterSet, ParamSpec

TimeCourse = Tensor | Callable[[float], Tensor] | None


class Stimulus(nn.Module):
    """External forcing of the network (see module docstring).

    Args:
        n_regions: N.
        drive: constant drive per region, scalar or (N,) (state units of the model's input).
        drive_course: drive time course (T,) or (T, N), or a callable of t in ms.
        field: electric field time course (T,) or (T, N), or a callable of t in ms.
        sample_dt: sampling interval of the tensor time courses, ms.
        gain: ``lambda``, scalar or (N,); ``gain_trainable`` fits it (``gain_scope``: its scope).
        targets: region indices or boolean mask (N,) receiving the forcing; None = all.
        onset: time (ms) at which the time courses start.
    """

    def __init__(self, n_regions: int, drive: float | Tensor = 0.0, drive_course: TimeCourse = None,
                 field: TimeCourse = None, sample_dt: float = 1.0, gain: float | Tensor = 1.0,
                 gain_trainable: bool = False, gain_scope: str = "regional",
                 targets: Sequence[int] | Tensor | None = None, onset: float = 0.0,
                 n_batch: int = 1) -> None:
        super().__init__()
        self.n_regions = int(n_regions)
        self.sample_dt = positive(sample_dt, "sample_dt", "ms")
        self.onset = float(onset)
        self.params = ParameterSet(
            {"gain": ParamSpec(1.0, "state/field", trainable=gain_trainable, scope=gain_scope,
                               doc="electric-field gain lambda")},
            n_regions, n_batch, overrides={"gain": gain})
        self.register_buffer("drive", self._regional(drive, "drive"))
        self.drive_course = self._course(drive_course, "drive_course")
        self.field = self._course(field, "field")
        mask = torch.ones(n_regions, dtype=torch.bool)
        if targets is not None:
            t = torch.as_tensor(targets)
            if t.dtype == torch.bool:
                if t.shape != (n_regions,):
                    raise ValueError(f"targets mask must have shape ({n_regions},), got "
                                     f"{tuple(t.shape)}")
                mask = t
            else:
                if t.numel() and (t.min() < 0 or t.max() >= n_regions):
                    raise ValueError(f"targets must be region indices in [0, {n_regions}), "
                                     f"got {t.tolist()}")
                mask = torch.zeros(n_regions, dtype=torch.bool)
                mask[t.long()] = True
        self.register_buffer("mask", mask)

    def _regional(self, value: Any, what: str) -> Tensor:
        v = torch.as_tensor(value, dtype=torch.get_default_dtype())
        if v.numel() != 1 and tuple(v.shape) != (self.n_regions,):
            raise ValueError(f"{what} must be a scalar or shape ({self.n_regions},), got "
                             f"{tuple(v.shape)}")
        if not torch.isfinite(v).all():
            raise ValueError(f"{what} contains NaN or inf")
        return v

    def _course(self, course: TimeCourse, what: str) -> TimeCourse:
        if course is None or callable(course):
            return course
        c = torch.as_tensor(course, dtype=torch.get_default_dtype())
        if c.dim() not in (1, 2) or (c.dim() == 2 and c.shape[1] != self.n_regions):
            raise ValueError(f"{what} must have shape (T,) or (T, {self.n_regions}), got "
                             f"{tuple(c.shape)}")
        if not torch.isfinite(c).all():
            raise ValueError(f"{what} contains NaN or inf")
        name = f"_{what}"
        self.register_buffer(name, c)
        return name  # resolved lazily so .to(device) moves it

    def _sample(self, course: TimeCourse, t: float) -> Tensor | None:
        if course is None:
            return None
        if callable(course):
            return course(t)
        c = getattr(self, course)
        k = int((t - self.onset) // self.sample_dt)
        if k < 0 or k >= c.shape[0]:
            return None
        return c[k]

    def forward(self, t: float) -> Tensor:
        """Forcing at time ``t`` (ms): broadcastable to (B, N)."""
        total = self.drive
        f = self._sample(self.drive_course, t)
        if f is not None:
            total = total + f
        e = self._sample(self.field, t)
        if e is not None:
            total = total + self.params["gain"] * e
        return torch.where(self.mask, total, torch.zeros_like(total))

    def param_table(self) -> list[dict[str, Any]]:
        return self.params.table(prefix="stimulus.")
