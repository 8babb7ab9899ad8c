"""Hooks into a fit: what TensorBoard, the figures, the benchmarks' timers and the tests attach
to, instead of patching the trainer's methods.

A :class:`Callback` overrides the hooks it needs; every hook receives the
:class:`~brainfit.fit.trainer.Trainer` first, whose ``state``
(:class:`~brainfit.fit.state.TrainState`: epoch, history, parameters, ...), ``data``, ``plan``,
``cfg`` and ``outputs`` it may read. A fit calls them in this order::

    on_setup_start                         Trainer.__init__ begins (nothing is built yet)
    on_setup_end                           data, model and optimiser built, a resume loaded
    on_fit_start                           Trainer.fit begins
      each epoch:
        on_step_start, on_step_end(row)    one optimiser step; row: its logged scalars
        on_evaluation_start(part)          an evaluation of "validation" (every eval_every
        on_evaluation_end(part, scores)      epochs) or "held_out" (once, at the end)
        on_epoch_end(row)                  the epoch accepted into the history (row with the
                                           validation's eval/ scores when it had one)
        on_save_start(name)                a checkpoint (last.pt after every epoch, best.pt)
        on_checkpoint_saved(name, path)
      on_final_validation(row)             the last epoch's validation scores, once the
                                           held-out part is scored
      on_export_start, on_export_end(exported)   metrics.json, fitted_params.csv, ...
    on_fit_end                             always, also when the fit fails or is interrupted

A step or an evaluation that diverges is retried from the last good state, so its start hook may
run again without its end hook. An exception raised by a hook is raised where the hook runs: a
:class:`~brainfit.runtime.SimulationDiverged` from ``on_evaluation_start`` is a diverged
evaluation and a :class:`~brainfit.fit.recovery.StepDiverged` from ``on_step_start`` a diverged
step, which the trainer recovers from (the tests inject divergences this way).

The trainer's own callbacks (:func:`default_callbacks`: :class:`TensorBoardLog` and
:class:`Figures`) run on rank 0 only; ``Trainer(callbacks=[...])`` replaces them, and callbacks
:func:`attach` ed to the process run in every trainer it builds (the benchmarks time
``scripts/train.py`` this way).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from brainfit.fit.baselines import BASELINES

log = logging.getLogger("brainfit.fit")


class Callback:
    """Does nothing at every hook of a fit (see the module for when each runs); subclasses
    override the hooks they need."""

    def on_setup_start(self, trainer: Any) -> None: ...

    def on_setup_end(self, trainer: Any) -> None: ...

    def on_fit_start(self, trainer: Any) -> None: ...

    def on_step_start(self, trainer: Any) -> None: ...

    def on_step_end(self, trainer: Any, row: dict[str, float]) -> None: ...

    def on_evaluation_start(self, trainer: Any, part: str) -> None: ...

    def on_evaluation_end(self, trainer: Any, part: str, scores: dict[str, Any]) -> None: ...

    def on_epoch_end(self, trainer: Any, row: dict[str, float]) -> None: ...

    def on_save_start(self, trainer: Any, name: str) -> None: ...

    def on_checkpoint_saved(self, trainer: Any, name: str, path: Path) -> None: ...

    def on_final_validation(self, trainer: Any, row: dict[str, float]) -> None: ...

    def on_export_start(self, trainer: Any) -> None: ...

    def on_export_end(self, trainer: Any, exported: Any) -> None: ...

    def on_fit_end(self, trainer: Any) -> None: ...


#: the hooks a fit calls
HOOKS = frozenset(name for name in vars(Callback) if name.startswith("on_"))

_attached: list[Callback] = []


def attach(callback: Callback) -> None:
    """Add ``callback`` to every trainer this process builds from now on (until :func:`detach`)."""
    _attached.append(callback)


def detach(callback: Callback) -> None:
    """Undo :func:`attach`."""
    _attached.remove(callback)


@contextlib.contextmanager
def attached(*callbacks: Callback) -> Iterator[None]:
    """:func:`attach` ``callbacks`` for the block, e.g. around ``scripts/train.py``'s run."""
    for cb in callbacks:
        attach(cb)
    try:
        yield
    finally:
        for cb in callbacks:
            detach(cb)


class Hooks:
    """The callbacks of one trainer, called in order: ``hooks("on_step_end", trainer, row)``.

    Args:
        callbacks: the trainer's own; those :func:`attach` ed to the process follow them.
    """

    def __init__(self, callbacks: Iterable[Callback]) -> None:
        self.callbacks = [*callbacks, *_attached]

    def __call__(self, hook: str, trainer: Any, *args: Any) -> None:
        if hook not in HOOKS:
            raise ValueError(f"no hook {hook!r}; the hooks are {sorted(HOOKS)}")
        for cb in self.callbacks:
            getattr(cb, hook)(trainer, *args)


def default_callbacks(out_dir: str | Path, figures: bool = True) -> list[Callback]:
    """What a fit's rank 0 writes besides its checkpoints and tables: TensorBoard scalars, and
    (``trainer.figures``) the figures."""
    return [TensorBoardLog(out_dir), *([Figures(out_dir)] if figures else [])]


class TensorBoardLog(Callback):
    """``tensorboard/``: every epoch's scalars and the trainable parameters (global ones as
    scalars, regional ones as histograms over the regions, of the first batch element), and the
    last epoch's validation scores."""

    def __init__(self, out_dir: str | Path) -> None:
        self.dir = Path(out_dir) / "tensorboard"
        self.writer: Any = None

    def _open(self) -> None:
        """The writer, opened with the first row (a run that fails before its first epoch leaves
        no empty ``tensorboard/`` folder)."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # pragma: no cover - tensorboard is a dependency
            log.warning("tensorboard is not installed; scalars are not logged")
            self.writer = False
            return
        self.writer = SummaryWriter(log_dir=str(self.dir))

    def log(self, row: dict[str, float], simulator: Any = None) -> None:
        """One row's scalars at step ``row["epoch"]``, and ``simulator``'s parameters."""
        if self.writer is None:
            self._open()
        if not self.writer:
            return
        step = row["epoch"]
        for k, v in row.items():
            if k != "epoch":
                self.writer.add_scalar(k, v, step)
        if simulator is None:
            return
        regional: dict[str, list[float]] = {}
        for r in simulator.param_table():
            if not r["trainable"] or r["batch"] not in (None, 0):
                continue
            if r["region"] is None:
                self.writer.add_scalar(f"params/{r['parameter']}", r["value"], step)
            else:
                regional.setdefault(r["parameter"], []).append(r["value"])
        for name, values in regional.items():
            self.writer.add_histogram(f"params/{name}", np.asarray(values), step)

    def on_epoch_end(self, trainer: Any, row: dict[str, float]) -> None:
        self.log(row, trainer.simulator)

    def on_final_validation(self, trainer: Any, row: dict[str, float]) -> None:
        # the last epoch's other values are logged already
        self.log({k: v for k, v in row.items() if k == "epoch" or k.startswith("eval/")})

    def on_fit_end(self, trainer: Any) -> None:
        if self.writer:
            self.writer.close()
        self.writer = None


class Figures(Callback):
    """``figures/``, once the tables are written: fitted connectivity, FC side by side, the
    scores beside the baselines, loss curves, fitted parameters and FCD histograms. A figure that
    cannot be drawn is logged, never raised: figures must not lose a finished fit."""

    def __init__(self, out_dir: str | Path) -> None:
        self.dir = Path(out_dir) / "figures"

    def draw(self, name: str, function: str, *args: Any, **kwargs: Any) -> None:
        """``figures/<name>.png`` by :mod:`brainfit.plotting`'s ``function``."""
        try:
            from brainfit import plotting

            self.dir.mkdir(parents=True, exist_ok=True)
            getattr(plotting, function)(*args, self.dir / f"{name}.png", **kwargs)
        except Exception as err:  # noqa: BLE001 - figures must never lose a finished fit
            log.warning("could not draw figures/%s.png: %s", name, err)

    def on_export_end(self, trainer: Any, exported: Any) -> None:
        if exported is None:  # not rank 0
            return
        e = exported
        if e.connectivity is not None:
            ids, sc, fit = e.connectivity
            self.draw("connectivity", "plot_connectivity", dict(zip(ids, sc)), dict(zip(ids, fit)))
        groups = None
        if e.labels:  # regions ordered by hemisphere, labelled
            from brainfit.plotting import hemispheres

            groups = hemispheres(list(e.labels))
        scores = e.result["held_out"]
        self.draw("fc_comparison", "plot_fc_comparison", e.empirical_fc, e.simulated_fc,
                  {s: v["fc_similarity"] for s, v in scores.items()}, labels=e.labels,
                  groups=groups)
        self.draw("baselines", "plot_baselines", scores, BASELINES)
        self.draw("loss_curves", "plot_loss_curves", e.history)
        self.draw("fitted_parameters", "plot_parameters", e.rows, labels=e.labels)
        if e.fcd is not None:
            self.draw("fcd_histograms", "plot_fcd_histograms", *e.fcd,
                      ks={s: v.get("fcd_ks", float("nan")) for s, v in scores.items()})
