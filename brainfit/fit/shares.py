"""The batch a process simulates, and the windows it simulates it in (a mixin of the Trainer).

One batch element is one (subject, restart) pair. A process fits its **share** of the elements,
``Trainer.rows`` (all of them, unless a distributed fit splits them by rank,
:mod:`brainfit.fit.distributed`); its simulator holds the share's parameters, one row per
element for the per-element ones (``_per_element``: subject-scope parameters, per-subject
connectomes, their optimiser moments). With ``trainer.batch_subjects`` the share is simulated a
**window** of subjects at a time by runner simulators loaded with the window's rows, and their
gradients are added up before one optimiser step.

Checkpoints and outputs hold the whole batch: :meth:`_whole_rows` and friends gather the shares
(a collective in a distributed fit), :meth:`_my_rows` takes this process's rows back.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import fields
from typing import Any

import torch
from torch import Tensor

from brainfit.fit.recovery import StepDiverged
from brainfit.losses import Targets
from brainfit.runtime import SimulationDiverged
from brainfit.simulator import BoldSimulator


class BatchShares:
    """The share and windows of a :class:`~brainfit.fit.trainer.Trainer` (see the module)."""

    def _windows(self) -> Iterator[tuple[BoldSimulator, slice]]:
        """``(simulator, rows)`` for each window of this process's elements: the trainer's
        simulator and its share, or (``trainer.batch_subjects``) a runner loaded with a window's
        rows of the share's parameters and data."""
        if not self._runners:
            yield self.simulator, self.rows
            return
        share = self.simulator.state_dict()
        for w in self.windows:
            local = slice(w.start - self.rows.start, w.stop - self.rows.start)
            runner = self._runners[w.stop - w.start]
            runner.load_state_dict({k: v[local] if k in self._per_element else v
                                    for k, v in share.items()})
            runner.network.rows = (w.start, len(self.elements))
            runner.train(self.simulator.training)
            yield runner, w

    def _accumulate(self, runner: BoldSimulator, rows: slice) -> None:
        """Add a runner's gradients to the share's parameters (its rows of per-element ones)."""
        if runner is self.simulator:
            return
        mine = dict(self.simulator.named_parameters())
        local = slice(rows.start - self.rows.start, rows.stop - self.rows.start)
        for name, p in runner.named_parameters():
            if p.grad is None:
                continue
            q = mine[name]
            if q.grad is None:
                q.grad = torch.zeros_like(q)
            if name in self._per_element:
                q.grad[local] += p.grad
            else:
                q.grad += p.grad
        runner.zero_grad(set_to_none=True)

    def _clip(self, params: list[Tensor]) -> float:
        """Clip the gradients' norm to ``trainer.clip_grad``; returns the norm before."""
        max_norm = self.cfg.clip_grad or float("inf")
        if self.group is None:
            return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        sq = [0.0, 0.0]  # replicated, this share's
        for n, p in self.simulator.named_parameters():
            if p.grad is not None:
                sq[n in self._per_element] += float(p.grad.double().pow(2).sum())
        norm = math.sqrt(sq[0] + self.group.sum([sq[1]])[0])
        coef = min(1.0, max_norm / (norm + 1e-6))
        if coef < 1.0:
            for p in params:
                if p.grad is not None:
                    p.grad.mul_(coef)
        return norm

    def _agreed(self, fn: Callable[[], Any]) -> Any:
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

    def _gather_rows(self, local: Tensor) -> Tensor:
        """The whole batch's rows of a per-element tensor that this process holds its rows of."""
        if self.group is None:
            return local
        parts = self.group.gather(local.detach().cpu())
        return torch.cat(parts).to(local.device)

    def _whole_rows(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """A state dict of the whole batch from this process's (collective)."""
        if self.group is None:
            return state
        return {k: self._gather_rows(v) if k in self._per_element else v
                for k, v in state.items()}

    def _my_rows(self, state: dict[str, Tensor]) -> dict[str, Tensor]:
        """This process's rows of a whole-batch state dict."""
        if self.group is None:
            return state
        return {k: v[self.rows] if k in self._per_element else v for k, v in state.items()}

    def _trainable_names(self) -> list[str]:
        return [n for n, p in self.simulator.named_parameters() if p.requires_grad]

    def _whole_optimizer_state(self) -> dict[str, Any]:
        """The optimiser's state of the whole batch (collective)."""
        return self._map_optimizer_rows(self.optimizer.state_dict(), self._gather_rows)

    def _my_optimizer_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """This process's rows of a whole-batch optimiser state."""
        return self._map_optimizer_rows(state, lambda v: v[self.rows])

    def _map_optimizer_rows(self, state: dict[str, Any],
                            rows: Callable[[Tensor], Tensor]) -> dict[str, Any]:
        """``rows(v)`` for the per-element tensors (moments, ...) of a per-element parameter."""
        if self.group is None:
            return state
        names = self._trainable_names()
        return {**state, "state": {i: {k: rows(v) if names[i] in self._per_element
                                       and torch.is_tensor(v) and v.dim() > 0 else v
                                       for k, v in st.items()}
                                   for i, st in state["state"].items()}}

    def _whole_simulator(self) -> BoldSimulator | None:
        """The fitted model of the whole batch (rank 0; None on the others; collective)."""
        if self.group is None:
            return self.simulator
        state = self._whole_rows(self.simulator.state_dict())
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
