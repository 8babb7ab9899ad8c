"""A fit's resumable state: one definition that checkpoints are written from, resumed fits read
back, and divergence recovery snapshots and restores.

:class:`TrainState` holds the model (the share of the batch this process fits), its optimiser and
scheduler, the random state, the epoch, the history of logged scalars, the running loss of each
batch element, the best restart of each subject, the state selected on the validation part (what
``best.pt`` holds), the number of divergences recovered from and whether the fit finished. Each
has one key in a checkpoint (:data:`STATE_KEYS`; the rest of a checkpoint describes the run:
:data:`CHECKPOINT_KEYS`), and :meth:`TrainState.values` and :meth:`TrainState.load` are the one
place each is read and written:

- a checkpoint holds :meth:`TrainState.values` of the whole batch (``rows``: the
  :class:`~brainfit.fit.plan.BatchPlan`, which gathers the processes' rows);
- a resumed fit loads every key but ``finished`` (:meth:`TrainState.resume`), taking its rows;
- recovery from a divergence snapshots and restores the keys of :data:`RECOVERED`
  (:meth:`TrainState.snapshot`, :meth:`TrainState.restore`): copies of this process's values.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from brainfit.simulator import BoldSimulator

log = logging.getLogger("brainfit.fit")

#: a checkpoint's keys, in the order it is written (:mod:`brainfit.checkpoint` describes them)
CHECKPOINT_KEYS = ("brainfit_version", "epoch", "config", "model_state", "optimizer", "scheduler",
                   "rng", "data", "elements", "best", "selected", "element_loss", "history",
                   "divergences", "finished", "maps", "meta")
#: the checkpoint keys of a :class:`TrainState` (the others describe the run)
STATE_KEYS = ("epoch", "model_state", "optimizer", "scheduler", "rng", "best", "selected",
              "element_loss", "history", "divergences", "finished")
#: what going back after a divergence restores; the rest carries on: the random state (a retry
#: draws new noise), the selected state (best.pt stays), the divergences counted, ``finished``
RECOVERED = ("model_state", "optimizer", "scheduler", "epoch", "history", "element_loss", "best")
#: what a resumed fit takes from its checkpoint (it has not finished)
RESUMED = tuple(k for k in STATE_KEYS if k != "finished")


class Rows(Protocol):
    """How a process's values map to the whole batch's
    (:class:`~brainfit.fit.plan.BatchPlan`)."""

    def whole_rows(self, state: dict[str, Tensor]) -> dict[str, Tensor]: ...

    def my_rows(self, state: dict[str, Tensor]) -> dict[str, Tensor]: ...

    def gather_rows(self, local: Tensor) -> Tensor: ...

    def local(self, whole: Tensor) -> Tensor: ...

    def whole_optimizer_state(self, state: dict[str, Any]) -> dict[str, Any]: ...

    def my_optimizer_state(self, state: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(eq=False)
class TrainState:
    """What a fit carries from epoch to epoch (see the module).

    Attributes:
        model: the simulator of this process's share of the batch (its parameters).
        optimizer, scheduler: stepping them (scheduler None: none).
        generator: the training noise's random numbers (with torch's, NumPy's and Python's
            global ones, the random state).
        best: the best restart of each subject, as a batch element.
        epoch: epochs completed.
        history: the logged scalars of each completed epoch.
        element_loss: running average of each batch element's training loss (None: no step yet).
        selected: what ``best.pt`` holds: ``epoch``, validation ``score``, ``best`` restarts and
            ``model_state`` (this process's rows); None without a validation part, or before
            its first validation.
        divergences: recoveries from a diverged step or evaluation so far.
        finished: the fit has run its epochs and exported.
    """

    model: BoldSimulator
    optimizer: torch.optim.Optimizer
    scheduler: Any
    generator: torch.Generator
    best: dict[str, int]
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    element_loss: Tensor | None = None
    selected: dict[str, Any] | None = None
    divergences: int = 0
    finished: bool = False

    # -- the one definition of each value --------------------------------------------------------
    def values(self, keys: tuple[str, ...] = STATE_KEYS,
               rows: Rows | None = None) -> dict[str, Any]:
        """The values of ``keys`` as a checkpoint holds them: with ``rows``, of the whole batch
        (a collective in a distributed fit); without, copies of this process's (a snapshot)."""
        return {key: self._value(key, rows) for key in keys}

    def _value(self, key: str, rows: Rows | None) -> Any:
        if key == "model_state":
            state = self.model.state_dict()
            return rows.whole_rows(state) if rows is not None else {k: v.detach().clone()
                                                        for k, v in state.items()}
        if key == "optimizer":
            state = self.optimizer.state_dict()
            return rows.whole_optimizer_state(state) if rows is not None else copy.deepcopy(state)
        if key == "scheduler":
            if self.scheduler is None:
                return None
            return self.scheduler.state_dict() if rows is not None else \
                copy.deepcopy(self.scheduler.state_dict())
        if key == "rng":
            return {"generator": self.generator.get_state(), "torch": torch.get_rng_state(),
                    "numpy": _numpy_rng_state(), "python": random.getstate()}
        if key == "selected":
            if self.selected is None or rows is None:
                return copy.copy(self.selected)
            return {**self.selected, "model_state": rows.whole_rows(self.selected["model_state"])}
        if key == "element_loss":
            if self.element_loss is None:
                return None
            return (rows.gather_rows(self.element_loss) if rows is not None
                    else self.element_loss.clone())
        if key == "history":
            return self.history if rows is not None else list(self.history)
        if key == "best":
            return self.best if rows is not None else dict(self.best)
        if key in ("epoch", "divergences", "finished"):
            return getattr(self, key)
        raise KeyError(f"{key!r} is not part of the training state; it holds {STATE_KEYS}")

    def load(self, values: dict[str, Any], rows: Rows | None = None) -> None:
        """Set the state from :meth:`values` (``rows``: the whole batch's, of which this process
        takes its rows)."""
        for key, value in values.items():
            self._load(key, value, rows)

    def _load(self, key: str, value: Any, rows: Rows | None) -> None:
        if key == "model_state":
            self.model.load_state_dict(value if rows is None else rows.my_rows(value))
        elif key == "optimizer":
            self.optimizer.load_state_dict(value if rows is None else
                                           rows.my_optimizer_state(value))
        elif key == "scheduler":
            if self.scheduler is not None and value is not None:
                self.scheduler.load_state_dict(value)
        elif key == "rng":
            self.generator.set_state(value["generator"])
            torch.set_rng_state(value["torch"])
            _set_numpy_rng_state(value["numpy"])
            random.setstate(value["python"])
        elif key == "selected":
            self.selected = None if value is None else {
                **value, "best": dict(value["best"]),
                "model_state": value["model_state"] if rows is None else
                rows.my_rows(value["model_state"])}
        elif key == "element_loss":
            self.element_loss = value if value is None or rows is None else rows.local(value)
        elif key in ("history", "best"):
            setattr(self, key, type(getattr(self, key))(value))
        elif key in ("epoch", "divergences"):
            setattr(self, key, int(value))
        elif key == "finished":
            self.finished = bool(value)
        else:
            raise KeyError(f"{key!r} is not part of the training state; it holds {STATE_KEYS}")

    # -- the three uses --------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """What going back to this point restores (:data:`RECOVERED`), copied."""
        return self.values(RECOVERED)

    def restore(self, snapshot: dict[str, Any]) -> None:
        self.load(snapshot)

    def checkpoint(self, run: dict[str, Any], rows: Rows) -> dict[str, Any]:
        """A checkpoint: ``run`` (what describes the run: config, data, elements, maps, meta) and
        the state of the whole batch (collective), in :data:`CHECKPOINT_KEYS` order."""
        values = {**run, **self.values(STATE_KEYS, rows)}
        return {k: values[k] for k in CHECKPOINT_KEYS}

    def resume(self, ckpt: dict[str, Any], rows: Rows, changed: dict[str, tuple]) -> None:
        """Continue from checkpoint ``ckpt`` (:data:`RESUMED`; this process's rows).

        The optimiser's and scheduler's hyper-parameters come from this run's config
        (``changed``: the settings that differ from the checkpoint's,
        :func:`~brainfit.fit.configs.changed_settings`): ``optim.lr`` is the learning rate from
        the resumed epoch on; another optimiser or scheduler starts with a fresh state.
        """
        keys = [k for k in RESUMED if k in ckpt]
        if any(k.startswith("optim._target_") for k in changed):
            log.warning("the optimiser changed (%s -> %s): its state starts afresh",
                        *changed["optim._target_"])
            keys.remove("optimizer")
        scheduled = self.scheduler is not None and ckpt["scheduler"] is not None
        if scheduled and any(k.startswith("scheduler.") for k in changed):
            log.warning("the scheduler changed: it starts afresh from the resumed epoch")
            keys.remove("scheduler")
            scheduled = False
        ours = {k: copy.deepcopy(v) for k, v in self.optimizer.defaults.items()}
        self.load({k: ckpt[k] for k in keys}, rows)
        if "optimizer" in keys and any(k.startswith("optim.") for k in changed):
            for group in self.optimizer.param_groups:
                group.update({k: v for k, v in ours.items() if k in group})
                if "initial_lr" in group:
                    group["initial_lr"] = group["lr"]
        if scheduled and hasattr(self.scheduler, "base_lrs"):
            self.scheduler.base_lrs = [g.get("initial_lr", g["lr"])
                                       for g in self.optimizer.param_groups]

    # -- selection -------------------------------------------------------------------------------
    @property
    def selected_score(self) -> float:
        """The validation score of the selected state (-inf: none)."""
        return -math.inf if self.selected is None else self.selected["score"]

    def select(self, score: float) -> None:
        """Make the current parameters and best restarts the selected state (``best.pt``)."""
        self.selected = {"epoch": self.epoch, "score": score, "best": dict(self.best),
                         "model_state": {k: v.detach().clone()
                                         for k, v in self.model.state_dict().items()}}

    @contextlib.contextmanager
    def selection_installed(self) -> Iterator[None]:
        """The selected parameters and best restarts installed for the block (none selected:
        the current ones)."""
        if self.selected is None:
            yield
            return
        state, best = {k: v.clone() for k, v in self.model.state_dict().items()}, self.best
        self.model.load_state_dict(self.selected["model_state"])
        self.best = dict(self.selected["best"])
        try:
            yield
        finally:
            self.model.load_state_dict(state)
            self.best = best


def check_epochs_left(ckpt: dict[str, Any], epochs: int, path: str | Path) -> None:
    """Refuse to resume a checkpoint that ``trainer.epochs`` would not fit further.

    Raises:
        ValueError: ``epochs`` does not go beyond the checkpoint's epoch (or equals it and the
            checkpoint's fit finished).
    """
    done = int(ckpt["epoch"])
    if done > epochs or done == epochs and ckpt.get("finished", False):
        raise ValueError(
            f"trainer.epochs={epochs} is the total number of epochs, and {path} has "
            f"already done {done}{' and finished' if done == epochs else ''}: set "
            f"trainer.epochs above {done} to fit further, or score it as it is with "
            f"python scripts/evaluate.py run=<its run folder>")


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global random numbers."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _numpy_rng_state() -> dict[str, Any]:
    """NumPy's global RNG state as tensors and plain values (what a checkpoint may hold)."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    return {"kind": kind, "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def _set_numpy_rng_state(state: dict[str, Any]) -> None:
    np.random.set_state((state["kind"], state["key"].numpy().astype(np.uint32), state["pos"],
                         state["has_gauss"], state["cached_gaussian"]))
