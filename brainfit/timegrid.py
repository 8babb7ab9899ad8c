r"""The time grid of a simulation: which whole numbers of steps the network, the BOLD head and the
TR sampling use, in one place.

Three clocks meet in a simulation of BOLD: the neural step ``dt`` (ms), the BOLD head's step
(s; the network records its drive averaged over each) and the TR (s) at which BOLD is sampled.
They fit together when each is a whole multiple of the one below it, and so does everything else
measured in steps: a duration, a record period and a burn-in are whole numbers of neural steps,
the discarded burn-in a whole number of BOLD steps, a conduction delay a whole number of neural
steps (or, with interpolation, a whole part and a fraction). "A whole multiple" means within a
relative :data:`REL_TOL` (1e-6), so that 0.72 s / 0.08 s counts as 9.

Used by :class:`~brainfit.network.BrainNetwork` and :mod:`brainfit.engine` (durations, burn-in,
delays), :mod:`brainfit.bold` (the stream's steps per window and per TR, substeps of the head)
and :class:`~brainfit.simulator.BoldSimulator` (:func:`sampling_steps`, the rounded burn-in).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from brainfit.checks import positive

__all__ = [
    "REL_TOL",
    "bold_steps_per_tr",
    "burn_in_seconds",
    "burn_in_steps",
    "delay_steps",
    "integer_ratio",
    "neural_steps_per_bold_step",
    "round_up_burn_in",
    "sampling_steps",
    "substeps",
    "whole_delay_steps",
    "whole_steps",
]

#: relative tolerance of "is a whole multiple of"
REL_TOL = 1e-6


def integer_ratio(num: float, den: float) -> int | None:
    """``num / den`` if it is a positive integer within a relative :data:`REL_TOL`, else None."""
    r = num / den
    k = round(r)
    if k >= 1 and abs(r - k) <= REL_TOL * max(1.0, r):
        return int(k)
    return None


def whole_steps(duration: float, dt: float, what: str, allow_zero: bool = False) -> int:
    """``duration / dt``, both in ms, if it is a whole number of steps (within :data:`REL_TOL`).

    Raises:
        ValueError: not a whole number of steps; or 0 steps without ``allow_zero``.
    """
    steps = float(duration) / dt
    n = round(steps)
    if not math.isfinite(steps) or abs(steps - n) > REL_TOL * max(1.0, steps) or n < 0:
        raise ValueError(f"{what} = {duration} ms is not a whole number of steps of dt = {dt} ms")
    if n == 0 and not allow_zero:
        raise ValueError(f"{what} = {duration} ms is shorter than one step of dt = {dt} ms")
    return int(n)


def sampling_steps(tr: float, bold_dt: float, neural_dt: float) -> tuple[float, float]:
    """The BOLD step (s) and neural step (ms) that a simulation sampled every ``tr`` s uses.

    The BOLD head steps at a whole fraction of TR (its samples fall on the TR grid), and each of
    its steps is a whole number of neural steps (the network records its drive averaged over each
    BOLD step). The configured steps are kept when they satisfy both; otherwise the largest steps
    not above them that do:

    - the neural step is kept if it divides TR, else it becomes ``TR / ceil(TR / neural_dt)``
      (e.g. 80 ms at TR = 0.5 s: 500/7 = 71.4 ms);
    - the BOLD step becomes the largest multiple of the neural step that divides TR and is at
      most ``bold_dt`` (at least one neural step; e.g. 0.08 s at TR = 2.5 s with a 0.1 ms neural
      step: 0.0625 s).

    So any TR works with any configured steps, and a combination that already fits (0.08 s at
    TR = 2 s or 0.72 s) gives exactly the configured steps.

    Args:
        tr: repetition time, s.
        bold_dt: the configured BOLD step (the head's ``dt``), s.
        neural_dt: the configured neural step, ms.

    Returns:
        ``(bold step in s, neural step in ms)``.

    Raises:
        ValueError: a non-positive value, or a neural step longer than the BOLD step (the head
            receives one drive value per BOLD step, so it cannot step finer than the network).
    """
    tr = positive(tr, "TR", "seconds")
    bold_dt = positive(bold_dt, "BOLD step dt", "seconds")
    # to seconds and back (not always the identity in floating point): the step used ever since
    neural_dt = positive(neural_dt, "neural step dt", "ms") / 1000.0 * 1000.0
    bold_ms, tr_ms = bold_dt * 1000.0, tr * 1000.0
    if neural_dt > bold_ms * (1 + REL_TOL):
        raise ValueError(
            f"the neural step dt = {neural_dt:g} ms is longer than the BOLD step bold.dt = "
            f"{bold_dt:g} s: the BOLD head receives the drive averaged over each of its steps, "
            f"so a step holds at least one neural step; set bold.dt >= {neural_dt / 1000.0:g} s "
            f"(e.g. bold.dt={neural_dt / 1000.0:g}) or a neural dt <= {bold_ms:g} ms"
        )
    if integer_ratio(tr, bold_dt) is not None and integer_ratio(bold_ms, neural_dt) is not None:
        return bold_dt, neural_dt
    per_tr = integer_ratio(tr_ms, neural_dt)
    if per_tr is None:
        per_tr = math.ceil(tr_ms / neural_dt - REL_TOL)
        neural_dt = tr_ms / per_tr
    most = max(1, math.floor(bold_ms / neural_dt * (1 + REL_TOL)))
    m = next(k for k in range(min(most, per_tr), 0, -1) if per_tr % k == 0)
    return m * neural_dt / 1000.0, neural_dt


def neural_steps_per_bold_step(step: float, neural_dt: float) -> int:
    """Neural steps (``neural_dt`` ms) in one BOLD step of ``step`` s.

    Raises:
        ValueError: ``step`` is not a whole multiple of the neural step (the message names one
            that is).
    """
    bold_ms = step * 1000.0
    m = integer_ratio(bold_ms, neural_dt)
    if m is None:
        fix = max(1, round(bold_ms / neural_dt)) * neural_dt / 1000.0
        raise ValueError(
            f"the BOLD step head.dt = {step} s = {bold_ms:g} ms is not an integer multiple "
            f"of neural_dt = {neural_dt:g} ms (ratio {bold_ms / neural_dt:.6g}); choose a "
            f"neural_dt that divides {bold_ms:g} ms, or build the head with dt = a multiple "
            f"of {neural_dt / 1000.0:g} s (e.g. dt={fix:g})"
        )
    return m


def bold_steps_per_tr(tr: float, step: float, neural_dt: float) -> int:
    """BOLD steps of ``step`` s in one TR of ``tr`` s.

    Raises:
        ValueError: TR is not a whole multiple of the step (the message names steps that fit,
            from :func:`sampling_steps` with the neural step ``neural_dt`` ms).
    """
    spt = integer_ratio(tr, step)
    if spt is None:
        fit_step, fit_dt = sampling_steps(tr, step, neural_dt)
        raise ValueError(
            f"TR = {tr:g} s is not an integer multiple of the BOLD step head.dt = "
            f"{step:g} s (ratio {tr / step:.6g}); use a BOLD step that divides TR and is a "
            f"multiple of the neural step, e.g. step={fit_step:.6g} s with neural_dt = "
            f"{fit_dt:.6g} ms (brainfit.timegrid.sampling_steps; BoldSimulator chooses them "
            f"itself), or check TR"
        )
    return spt


def burn_in_seconds(burn_in: Any) -> float:
    """``burn_in`` as a float, if it is a finite number of seconds >= 0.

    Raises:
        ValueError: anything else.
    """
    try:
        burn = float(burn_in)
    except (TypeError, ValueError):
        burn = math.nan
    if not (burn >= 0 and math.isfinite(burn)):
        raise ValueError(f"burn_in must be a finite time >= 0 in seconds, got {burn_in!r}")
    return burn


def burn_in_steps(burn_in: float, step: float) -> int:
    """The burn-in of ``burn_in`` s (>= 0) in BOLD steps of ``step`` s.

    Raises:
        ValueError: not a whole number of steps (the message names the next one that is).
    """
    if burn_in == 0:
        return 0
    n = integer_ratio(burn_in, step)
    if n is None:
        raise ValueError(
            f"burn_in = {burn_in:g} s is not a multiple of the BOLD step {step:g} s; "
            f"use a multiple such as {math.ceil(burn_in / step - REL_TOL) * step:.6g} s"
        )
    return n


def round_up_burn_in(burn_in: float, step: float) -> float:
    """``burn_in`` s (>= 0) rounded up to a whole number of steps of ``step`` s; a burn-in that
    already is one (within :data:`REL_TOL`) is returned unchanged."""
    steps = burn_in / step
    if abs(steps - round(steps)) > REL_TOL * max(1.0, steps):
        return math.ceil(steps) * step
    return burn_in


def substeps(dt: float, max_step: float) -> int:
    """Equal substeps that cut an interval of ``dt`` into steps of at most ``max_step`` (at
    least 1)."""
    return max(1, math.ceil(dt / max_step - REL_TOL))


def delay_steps(lengths: Tensor, speed: Tensor, dt: float) -> Tensor:
    """Conduction delays ``L / (speed dt)`` in (fractional) steps of ``dt`` ms.

    Args:
        lengths: tract lengths L in mm, (N, N) or (B, N, N).
        speed: conduction speed in mm/ms as a parameter reads: (), (N,) or (B, 1) (one per
            subject, applied to all its edges).
        dt: the step, ms.

    Returns:
        (N, N) or (B, N, N).
    """
    if speed.dim() == 2:  # subject scope (B, 1) -> (B, 1, 1)
        speed = speed[:, :, None]
    return lengths / (speed * dt)


def whole_delay_steps(lags: Tensor, interpolate: bool) -> tuple[Tensor, Tensor | None]:
    """The whole-step part of delays in steps, and the fraction beyond it.

    Without interpolation a delay is rounded to the nearest step (a delay below half a step
    rounds to 0: an instantaneous coupling) and there is no fraction; with it, the whole part is
    the floor and the fraction ``lags - floor`` (with its graph: the delay's gradient) weights the
    read between the two neighbouring steps.

    Returns:
        ``(whole steps, without a graph; fraction or None)``, each of the shape of ``lags``.
    """
    if interpolate:
        whole = torch.floor(lags.detach())
        return whole, lags - whole
    return torch.round(lags.detach()), None
