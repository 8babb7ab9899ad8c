"""Going back after a diverged step, and stopping cleanly on a signal.

A step whose simulation, loss, gradient or parameters become NaN/inf raises
:class:`StepDiverged`; :meth:`Recovery.recover` restores the last state that simulated finitely
(:data:`~brainfit.fit.state.RECOVERED` of the :class:`~brainfit.fit.state.TrainState`:
parameters, optimiser, scheduler, epoch, history, running losses, best restarts) and lowers every
learning rate by ``trainer.divergence_lr_factor``, or, after ``trainer.max_divergences``
recoveries, stops the fit with :class:`~brainfit.runtime.FitDiverged` (the trainer saves that
state as ``last.pt`` first). :class:`SignalGuard`: SIGTERM and SIGINT raise
:class:`~brainfit.runtime.Interrupted` (deferred while a checkpoint is written).
"""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from brainfit.runtime import FitDiverged, Interrupted, SimulationDiverged

if TYPE_CHECKING:
    from brainfit.fit.state import TrainState

log = logging.getLogger("brainfit.fit")


class StepDiverged(FitDiverged):
    """One optimiser step's simulation, loss, gradient or parameters became NaN/inf.

    ``elements`` lists the batch elements involved, when known.
    """

    def __init__(self, message: str, elements: list[int] | None = None) -> None:
        super().__init__(message)
        self.elements = list(elements or [])


class Recovery:
    """Going back to the last good :class:`~brainfit.fit.state.TrainState` after a divergence.

    Args:
        state: the fit's state, which :meth:`recover` restores.
        max_divergences: recoveries allowed (``trainer.max_divergences``); one more stops the fit.
        lr_factor: what every learning rate is multiplied by at each recovery
            (``trainer.divergence_lr_factor``).
        elements: (subject, restart) of every batch element, to name those that diverged.
        rows: the state's batch elements (this process's) among them, and ``labels`` the
            regions', to say which parameters moved most.

    Attributes:
        good: the last snapshot known to simulate (and differentiate) to finite numbers, which
            the fit records as it goes (None: none yet).
    """

    def __init__(self, state: TrainState, max_divergences: int, lr_factor: float,
                 elements: list[tuple[str, int]], rows: slice = slice(None),
                 labels: list[str] | None = None) -> None:
        self.state, self.max_divergences, self.lr_factor = state, max_divergences, lr_factor
        self.elements, self.rows, self.labels = elements, rows, labels
        self.good: dict[str, Any] | None = None

    def recover(self, err: StepDiverged | SimulationDiverged, where: str) -> FitDiverged | None:
        """Go back to the last good state and lower every learning rate; or, with no good state
        to go back to or ``max_divergences`` recoveries used up, return the error that stops the
        fit (with a good state, it is restored: ``checkpoints/last.pt`` should then hold it).

        Args:
            err: the divergence; its ``elements`` name the batch elements involved.
            where: ``"step"`` or ``"evaluation"``.
        """
        state, good = self.state, self.good
        state.divergences += 1
        what = f"epoch {state.epoch + (where == 'step')} ({where}): {err}"
        elements = sorted({self.elements[b][0] for b in err.elements if b < len(self.elements)})
        if elements:
            what += f" [subjects {', '.join(elements)}]"
        current = state.model.param_table()
        if good is not None:
            state.restore(good)
            what += "; " + _largest_changes(state.model.param_table(), current,
                                            self.elements[self.rows], self.labels)
        if good is None or state.divergences > self.max_divergences:
            return FitDiverged(
                f"{what}. Stopped after {state.divergences - 1} recoveries "
                f"(trainer.max_divergences={self.max_divergences}); checkpoints/last.pt holds "
                f"the last good state (epoch {state.epoch}) and best.pt the best evaluated one. "
                f"Resume with trainer.resume=<run>/checkpoints/last.pt and a smaller optim.lr, "
                f"tighten the parameters' bounds, or reduce dt" if good is not None else
                f"{what}. The starting parameters do not simulate to finite numbers: check the "
                f"model's parameter values and noise, or reduce dt")
        for group in state.optimizer.param_groups:
            group["lr"] *= self.lr_factor
        if state.scheduler is not None and hasattr(state.scheduler, "base_lrs"):
            state.scheduler.base_lrs = [lr * self.lr_factor for lr in state.scheduler.base_lrs]
        self.good = state.snapshot()  # a later recovery keeps the lowered rate
        log.warning("%s. Back to epoch %d with the learning rate x %g (now %.3g; recovery %d of "
                    "%d)", what, state.epoch, self.lr_factor,
                    state.optimizer.param_groups[0]["lr"], state.divergences,
                    self.max_divergences)
        return None


class SignalGuard:
    """SIGTERM and SIGINT raise :class:`~brainfit.runtime.Interrupted` while :meth:`active`,
    except while a checkpoint is written (:meth:`deferred`): then the signal is kept, and
    :meth:`raise_pending` raises it once the file is whole."""

    def __init__(self) -> None:
        self.pending: int | None = None
        self._deferring = False

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """The handlers installed for the block (only in the main thread, where Python allows
        them)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            self.pending = signum
            if not self._deferring:
                raise Interrupted(signum)

        previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            self.pending = None

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """A signal that arrives in the block is kept for :meth:`raise_pending`."""
        self._deferring = True
        try:
            yield
        finally:
            self._deferring = False

    def raise_pending(self) -> None:
        """Raise :class:`~brainfit.runtime.Interrupted` for a signal kept by :meth:`deferred`."""
        if self.pending is not None:
            raise Interrupted(self.pending)


def require_finite(model: torch.nn.Module, value: Callable[[Tensor], Tensor | None],
                   message: str) -> None:
    """Raise :class:`StepDiverged` (``message`` formatted with their names) when ``value(p)`` of
    a trainable parameter ``p`` of ``model`` (its gradient, itself) holds NaN/inf."""
    bad = [name for name, p in model.named_parameters()
           if p.requires_grad and value(p) is not None and not torch.isfinite(value(p)).all()]
    if bad:
        raise StepDiverged(message.format(bad))


def _largest_changes(good: list[dict[str, Any]], current: list[dict[str, Any]],
                     elements: list[tuple[str, int]], labels: list[str] | None, k: int = 3) -> str:
    """The ``k`` parameter values that moved most (relatively) from ``good`` to ``current``, two
    :meth:`~brainfit.simulator.BoldSimulator.param_table` s of the same simulator."""
    moves = []
    for g, c in zip(good, current):
        a, b = float(g["value"]), float(c["value"])
        rel = abs(b - a) / (abs(a) + 1e-12) if math.isfinite(b) else math.inf
        if rel > 0:
            moves.append((rel, g, b))
    if not moves:
        return "no parameter value had moved"
    moves.sort(key=lambda m: -m[0])
    out = []
    for _, g, b in moves[:k]:
        where = []
        if g["batch"] is not None and g["batch"] < len(elements):
            sid, r = elements[g["batch"]]
            where.append(sid if r == 0 else f"{sid} restart {r}")
        if g["region"] is not None:
            where.append(f"region {labels[g['region']] if labels else g['region']}")
        name = g["parameter"] + (f" ({', '.join(where)})" if where else "")
        out.append(f"{name} {float(g['value']):.4g} -> {b:.4g}")
    return "the parameters that moved most: " + "; ".join(out)
