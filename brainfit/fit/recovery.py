"""Going back after a diverged step, and stopping cleanly on a signal (a mixin of the Trainer).

A step whose simulation, loss, gradient or parameters become NaN/inf raises
:class:`StepDiverged`; :meth:`Recovery._recover` restores the last state that simulated
finitely (parameters, optimiser, scheduler, epoch, history) and lowers every learning rate by
``trainer.divergence_lr_factor``, or, after ``trainer.max_divergences`` recoveries, saves that
state as ``last.pt`` and stops with :class:`~brainfit.runtime.FitDiverged`. SIGTERM and SIGINT
raise :class:`~brainfit.runtime.Interrupted` (deferred while a checkpoint is written).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import signal
import threading
from collections.abc import Iterator
from typing import Any

from brainfit.runtime import FitDiverged, Interrupted, SimulationDiverged

log = logging.getLogger("brainfit.fit")


class StepDiverged(FitDiverged):
    """One optimiser step's simulation, loss, gradient or parameters became NaN/inf.

    ``elements`` lists the batch elements involved, when known.
    """

    def __init__(self, message: str, elements: list[int] | None = None) -> None:
        super().__init__(message)
        self.elements = list(elements or [])


class Recovery:
    """Snapshots, recovery from divergence and signal handling of a
    :class:`~brainfit.fit.trainer.Trainer` (see the module)."""

    def _snapshot(self) -> dict[str, Any]:
        """What going back to this point restores (parameters, optimiser, epoch, history)."""
        return {"model_state": {k: v.detach().clone()
                                for k, v in self.simulator.state_dict().items()},
                "optimizer": copy.deepcopy(self.optimizer.state_dict()),
                "scheduler": copy.deepcopy(self.scheduler.state_dict())
                if self.scheduler is not None else None,
                "epoch": self.epoch, "history": len(self.history),
                "element_loss": None if self.element_loss is None else self.element_loss.clone(),
                "best": dict(self.best)}

    def _restore(self, snap: dict[str, Any]) -> None:
        self.simulator.load_state_dict(snap["model_state"])
        self.optimizer.load_state_dict(snap["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(snap["scheduler"])
        self.epoch, self.history = snap["epoch"], self.history[:snap["history"]]
        self.element_loss, self.best = snap["element_loss"], dict(snap["best"])

    def _recover(self, err: StepDiverged | SimulationDiverged, where: str) -> None:
        """Go back to the last good state and lower every learning rate, or stop.

        Raises:
            FitDiverged: no good state to go back to, or ``trainer.max_divergences`` recoveries
                were used up; ``checkpoints/last.pt`` then holds the last good state.
        """
        cfg, good = self.cfg, self._good
        self.divergences += 1
        what = f"epoch {self.epoch + (where == 'step')} ({where}): {err}"
        elements = sorted({self.elements[b][0] for b in err.elements if b < len(self.elements)})
        if elements:
            what += f" [subjects {', '.join(elements)}]"
        current = self.simulator.param_table()
        if good is not None:
            self._restore(good)
            what += "; " + _largest_changes(self.simulator.param_table(), current,
                                            self.elements[self.rows], self.data.cohort.labels)
        if good is None or self.divergences > cfg.max_divergences:
            if good is not None:
                self.save("last.pt")
            raise FitDiverged(
                f"{what}. Stopped after {self.divergences - 1} recoveries "
                f"(trainer.max_divergences={cfg.max_divergences}); checkpoints/last.pt holds the "
                f"last good state (epoch {self.epoch}) and best.pt the best evaluated one. Resume "
                f"with trainer.resume=<run>/checkpoints/last.pt and a smaller optim.lr, tighten "
                f"the parameters' bounds, or reduce dt" if good is not None else
                f"{what}. The starting parameters do not simulate to finite numbers: check the "
                f"model's parameter values and noise, or reduce dt")
        for group in self.optimizer.param_groups:
            group["lr"] *= cfg.divergence_lr_factor
        if self.scheduler is not None and hasattr(self.scheduler, "base_lrs"):
            self.scheduler.base_lrs = [lr * cfg.divergence_lr_factor
                                       for lr in self.scheduler.base_lrs]
        self._good = self._snapshot()  # a later recovery keeps the lowered rate
        log.warning("%s. Back to epoch %d with the learning rate x %g (now %.3g; recovery %d of "
                    "%d)", what, self.epoch, cfg.divergence_lr_factor,
                    self.optimizer.param_groups[0]["lr"], self.divergences, cfg.max_divergences)

    @contextlib.contextmanager
    def _stop_on_signals(self) -> Iterator[None]:
        """SIGTERM/SIGINT raise :class:`Interrupted` (deferred while a checkpoint is written)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            self._signal = signum
            if not self._saving:
                raise Interrupted(signum)

        previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for s, h in previous.items():
                signal.signal(s, h)
            self._signal = None


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
