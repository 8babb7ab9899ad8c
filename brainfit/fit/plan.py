"""The batch plan: which batch elements a process simulates, in which windows, and how its rows
join the whole batch's.

One batch element is one (subject, restart) pair: element ``b = s * R + r`` is restart r of
subject s. A process fits its **share** of the elements, :attr:`BatchPlan.rows` (all of them,
unless a distributed fit splits them by rank, :mod:`brainfit.fit.distributed`); its simulator
holds the share's parameters, one row per element for the per-element ones
(:attr:`BatchPlan.per_element`: subject-scope parameters, per-subject connectomes, their
optimiser moments). With ``trainer.batch_subjects`` the share is simulated a **window** of
subjects at a time by runner simulators loaded with the window's rows, and their gradients are
added up before one optimiser step.

Checkpoints and outputs hold the whole batch: :meth:`BatchPlan.whole_rows` and friends gather
the shares (a collective in a distributed fit), :meth:`BatchPlan.my_rows` takes this process's
rows back. The :class:`~brainfit.fit.state.TrainState` reads and writes its values through them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import fields
from typing import Any

import torch
from torch import Tensor

import brainfit
from brainfit.fit import memory
from brainfit.fit.build import Components
from brainfit.fit.distributed import ProcessGroup
from brainfit.fit.recovery import StepDiverged
from brainfit.fit.scoring import Evaluation
from brainfit.fit.spec import COMPILE_STEPS, TrainerConfig, build_simulator
from brainfit.fit.targets import FitData
from brainfit.linear import frequency_grid, same_for_every_region
from brainfit.losses import Targets
from brainfit.runtime import SimulationDiverged
from brainfit.simulator import BoldSimulator

log = logging.getLogger("brainfit.fit")


class BatchPlan:
    """The elements of a fit, this process's share of them, the windows it simulates it in, and
    the simulators that do (see the module).

    Args:
        components: the model side of the fit (:func:`~brainfit.fit.build.components_from_config`).
        data: the fit's data (connectomes and spatial maps per subject).
        config: the trainer settings (``restarts``, ``batch_subjects``).
        group: this process's place in a distributed fit, or None.
        device, dtype: where and in what precision the simulators run.

    Attributes:
        elements: (subject id, restart) of every batch element.
        rows: this process's elements (a slice of ``elements``).
        windows: the slices of ``rows`` simulated at a time.
        simulator: the share's simulator, whose parameters the optimiser steps.
        maps: the spatial maps of every element.
        per_element: the simulator's state entries with one row per batch element.
        main: whether this process writes the outputs (rank 0, or the only one).
    """

    def __init__(self, components: Components, data: FitData, config: TrainerConfig,
                 group: ProcessGroup | None, device: torch.device, dtype: torch.dtype) -> None:
        self.group, self.device, self.restarts = group, device, config.restarts
        self.main = group is None or group.is_main
        R, ids, batch = config.restarts, data.ids, data.train_batch
        rep = lambda t: None if t is None else t.repeat_interleave(R, dim=0)  # noqa: E731
        self.maps = {k: rep(v) for k, v in batch.maps.items()}
        self.elements = [(sid, r) for sid in ids for r in range(R)]
        lo, hi = group.share(len(ids)) if group is not None else (0, len(ids))
        self.rows = slice(lo * R, hi * R)  # this process's batch elements
        build = lambda rows: build_simulator(  # noqa: E731
            components.spec, components.coupling, components.bold, rep(batch.weights)[rows],
            rows_of(rep(batch.lengths), rows), {k: v[rows] for k, v in self.maps.items()}
        ).to(device=device, dtype=dtype)
        # the share's parameters (what the optimiser steps); it simulates the share itself unless
        # trainer.batch_subjects streams the share through runners, a window of subjects at a time
        self.simulator = build(self.rows)
        per = (config.batch_subjects or hi - lo) * R
        self.windows = [slice(a, min(a + per, self.rows.stop))
                        for a in range(self.rows.start, self.rows.stop, per)]
        self.runners: dict[int, BoldSimulator] = {}
        self._whole: BoldSimulator | None = None  # the whole batch, for rank 0's outputs
        self.per_element: set[str] = set()
        if group is not None or len(self.windows) > 1:
            whole = self.simulator if group is None else build(slice(None))  # the share: all
            one = build(slice(0, R)).state_dict()
            self.per_element = {k for k, v in whole.state_dict().items()
                                if v.shape != one[k].shape}
            self._whole = whole if self.main and group is not None else None
            self.simulator.network.rows = (self.rows.start, len(self.elements))
        if len(self.windows) > 1:
            for w in self.windows:
                self.runners.setdefault(w.stop - w.start, build(w))

    @property
    def my_elements(self) -> list[tuple[str, int]]:
        return self.elements[self.rows]

    def share_of(self, value: Any) -> Any:
        """This process's rows of a whole-batch per-element value (:func:`rows_of`)."""
        return rows_of(value, self.rows)

    # -- set-up ----------------------------------------------------------------------------------
    def set_engine(self, config: TrainerConfig, seconds: float, dt: float, tr: float) -> None:
        """``trainer.engine`` and ``trainer.compile`` (``auto``: compile long simulations) for
        simulations of ``seconds`` (burn-in included) at step ``dt`` (ms), and the check that a
        training step fits in memory.

        Raises:
            MemoryError: it does not (:func:`brainfit.fit.memory.check_fits`).
        """
        cfg, net = config, self.simulator.network
        steps = seconds * 1000.0 / dt
        for sim in (self.simulator, *self.runners.values()):
            sim.network.engine = cfg.engine
            sim.network.compile = bool(steps >= COMPILE_STEPS if cfg.compile == "auto"
                                       else cfg.compile)
        if net.compile and cfg.engine == "fast":
            log.info("engine: fast, compiled (%d steps a simulation; the first one compiles)",
                     steps)
        batch = max(w.stop - w.start for w in self.windows)
        if cfg.linearized:  # nothing is simulated while fitting
            need = memory.linearized_step_bytes(
                net, batch, len(frequency_grid(tr)[0]),
                by_modes=same_for_every_region(self.simulator.bold))
        else:
            need = memory.training_step_bytes(
                net, batch, dt, steps * dt / 1000.0, self.simulator.bold.dt, cfg.chunk,
                cfg.checkpoint_chunks)
        log.info("memory: about %.2f GiB per training step (%s)", need / 2**30,
                 "linearised" if cfg.linearized else f"{cfg.engine} engine")
        memory.check_fits(need, memory.available_bytes(self.device), cfg.engine,
                          cfg.checkpoint_chunks, cfg.linearized)

    def spread_restarts(self, spread: float, generator: torch.Generator) -> None:
        """Restarts after the first start per-element parameters from random values (``spread``
        standard deviations in the unconstrained space; this process's rows of draws for the
        whole batch)."""
        R = self.restarts
        if R == 1 or spread == 0:
            return
        for module in self.simulator.modules():
            pset = getattr(module, "params", None)
            if not isinstance(pset, brainfit.ParameterSet):
                continue
            for name, spec in pset.specs.items():
                if spec.trainable and spec.scope in ("subject", "subject_regional"):
                    raw = pset.raw[name]
                    B = len(self.elements)
                    noise = torch.randn((B, *raw.shape[1:]), generator=generator,
                                        device=self.device, dtype=raw.dtype)[self.rows]
                    noise = noise * spread
                    first = (torch.arange(B, device=self.device)[self.rows] % R == 0)
                    noise[first] = 0
                    with torch.no_grad():
                        raw.add_(noise)

    # -- windows ---------------------------------------------------------------------------------
    def each_window(self) -> Iterator[tuple[BoldSimulator, slice]]:
        """``(simulator, rows)`` for each window of this process's elements: the share's
        simulator and its rows, or (``trainer.batch_subjects``) a runner loaded with a window's
        rows of the share's parameters and data."""
        if not self.runners:
            yield self.simulator, self.rows
            return
        share = self.simulator.state_dict()
        for w in self.windows:
            local = self.local_slice(w)
            runner = self.runners[w.stop - w.start]
            runner.load_state_dict({k: v[local] if k in self.per_element else v
                                    for k, v in share.items()})
            runner.network.rows = (w.start, len(self.elements))
            runner.train(self.simulator.training)
            yield runner, w

    def local_slice(self, rows: slice) -> slice:
        """``rows`` of the whole batch as a slice of this process's share."""
        return slice(rows.start - self.rows.start, rows.stop - self.rows.start)

    def accumulate(self, runner: BoldSimulator, rows: slice) -> None:
        """Add a runner's gradients to the share's parameters (its rows of per-element ones)."""
        if runner is self.simulator:
            return
        mine = dict(self.simulator.named_parameters())
        local = self.local_slice(rows)
        for name, p in runner.named_parameters():
            if p.grad is None:
                continue
            q = mine[name]
            if q.grad is None:
                q.grad = torch.zeros_like(q)
            if name in self.per_element:
                q.grad[local] += p.grad
            else:
                q.grad += p.grad
        runner.zero_grad(set_to_none=True)

    # -- the processes together ------------------------------------------------------------------
    def agreed(self, fn: Callable[[], Any]) -> Any:
        """``fn()``; in a distributed fit, a divergence on any rank raises on every rank (with the
        whole batch's element numbers), so that all take the same way out."""
        if self.group is None:
            return fn()
        out, report = None, None
        try:
            out = fn()
        except (StepDiverged, SimulationDiverged) as err:
            report = (type(err).__name__, str(err), [b + self.rows.start for b in err.elements])
        failed = [r for r in self.group.gather(report) if r is not None]
        if failed:
            kind = StepDiverged if any(r[0] == "StepDiverged" for r in failed) \
                else SimulationDiverged
            raise kind("; ".join(dict.fromkeys(r[1] for r in failed)),
                       sorted(b for r in failed for b in r[2]))
        return out

    def all_reduce_gradients(self) -> None:
        """Every rank's gradients of the replicated parameters summed, so that each holds the
        whole batch's gradient (nothing to do in a single process)."""
        if self.group is not None:
            self.group.all_reduce_([p.grad for n, p in self.simulator.named_parameters()
                                    if p.grad is not None and n not in self.per_element])

    def clip(self, params: list[Tensor], max_norm: float | None) -> float:
        """Clip the gradients' norm to ``max_norm`` (None or 0: no clipping); returns the norm
        before."""
        max_norm = max_norm or float("inf")
        if self.group is None:
            return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        sq = [0.0, 0.0]  # replicated, this share's
        for n, p in self.simulator.named_parameters():
            if p.grad is not None:
                sq[n in self.per_element] += float(p.grad.double().pow(2).sum())
        norm = math.sqrt(sq[0] + self.group.sum([sq[1]])[0])
        coef = min(1.0, max_norm / (norm + 1e-6))
        if coef < 1.0:
            for p in params:
                if p.grad is not None:
                    p.grad.mul_(coef)
        return norm

    def batch_means(self, loss: Tensor, parts: dict[str, Tensor]) -> tuple[float, dict[str, float]]:
        """The loss differentiated (the whole batch's mean) and each part's mean over the whole
        batch, from this process's ``loss`` and per-element ``parts``."""
        names = list(parts)
        if self.group is None:
            return loss.item(), {k: float(parts[k].mean()) for k in names}
        values = self.group.sum([loss.item()] + [float(parts[k].sum()) for k in names])
        return values[0], {k: v / len(self.elements) for k, v in zip(names, values[1:])}

    def gather_rows(self, local: Tensor) -> Tensor:
        """The whole batch's rows of a per-element tensor that this process holds its rows of."""
        if self.group is None:
            return local
        parts = self.group.gather(local.detach().cpu())
        return torch.cat(parts).to(local.device)

    def gather_evaluation(self, ev: Evaluation) -> Evaluation:
        """The whole batch's scores of an evaluation of this process's elements."""
        if self.group is None:
            return ev
        return Evaluation({k: self.gather_rows(v) for k, v in ev.scores.items()},
                          self.gather_rows(ev.fc),
                          None if ev.fcd is None else self.gather_rows(ev.fcd))

    def local(self, whole: Tensor) -> Tensor:
        """This process's rows of a whole-batch per-element tensor, on its device."""
        return whole[self.rows].to(self.device)

    def whole_rows(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """A state dict of the whole batch from this process's (collective)."""
        if self.group is None:
            return state
        return {k: self.gather_rows(v) if k in self.per_element else v
                for k, v in state.items()}

    def my_rows(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """This process's rows of a whole-batch state dict."""
        if self.group is None:
            return state
        return {k: v[self.rows] if k in self.per_element else v for k, v in state.items()}

    def whole_optimizer_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """The optimiser's state of the whole batch (collective)."""
        return self._map_optimizer_rows(state, self.gather_rows)

    def my_optimizer_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """This process's rows of a whole-batch optimiser state."""
        return self._map_optimizer_rows(state, lambda v: v[self.rows])

    def _map_optimizer_rows(self, state: dict[str, Any],
                            rows: Callable[[Tensor], Tensor]) -> dict[str, Any]:
        """``rows(v)`` for the per-element tensors (moments, ...) of a per-element parameter."""
        if self.group is None:
            return state
        names = [n for n, p in self.simulator.named_parameters() if p.requires_grad]
        return {**state, "state": {i: {k: rows(v) if names[i] in self.per_element
                                       and torch.is_tensor(v) and v.dim() > 0 else v
                                       for k, v in st.items()}
                                   for i, st in state["state"].items()}}

    def whole_simulator(self) -> BoldSimulator | None:
        """The fitted model of the whole batch (rank 0; None on the others; collective)."""
        if self.group is None:
            return self.simulator
        state = self.whole_rows(self.simulator.state_dict())
        if self._whole is not None:
            self._whole.load_state_dict(state)
        return self._whole


def rows_of(value: Any, rows: slice) -> Any:
    """``rows`` of a per-element tensor, list or :class:`~brainfit.losses.Targets` (None: None)."""
    if value is None:
        return None
    if isinstance(value, Targets):
        return Targets(**{f.name: rows_of(getattr(value, f.name), rows) for f in fields(value)})
    return value[rows]
