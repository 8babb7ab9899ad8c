"""How a fit simulates its batch: the filtered BOLD of a simulator, the training loss and its
gradient, and the scores of an evaluation, each over the :class:`~brainfit.fit.plan.BatchPlan`'s
windows of this process's elements.

A model with feedback inhibition control (``model.feedback_inhibition``, ``wong_wang_ei``) has
J_i re-tuned for the current G before every simulation
(:meth:`~brainfit.models.wong_wang.WongWangEI.tuned_feedback_inhibition`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from brainfit.fit.plan import BatchPlan, rows_of
from brainfit.fit.recovery import StepDiverged
from brainfit.fit.scoring import Evaluation, Evaluator
from brainfit.fit.spec import TrainerConfig
from brainfit.fit.targets import FitData
from brainfit.linear import linearized_stats
from brainfit.losses import Objective, SimulatedBoldFilter
from brainfit.network import BrainNetwork
from brainfit.runtime import SimulationDiverged
from brainfit.simulator import BoldSimulator

#: where each parameter module of a simulator sits, and the prefix of its names in the priors
_PRIOR_PREFIXES = {"network.model.params": "", "network.params": "",
                   "network.coupling.params": "coupling.", "network.noise.params": "noise.",
                   "bold.params": "bold."}


class BatchRunner:
    """Simulates this process's elements for a fit (see the module).

    Args:
        plan: the batch plan (the share's simulator, its windows).
        data: the fit's data (targets, lengths).
        objective: the loss.
        config: the trainer settings (``burn_in``, ``chunk``, ``checkpoint_chunks``,
            ``truncate``, ``noise_realisations``, ``linearized``).
        dt: the training simulations' neural step, ms.
        bold_filter: the data's preprocessing mirrored on simulated BOLD.
        feedback_inhibition: the excitatory rate (Hz) feedback inhibition control holds, or None.
    """

    def __init__(self, plan: BatchPlan, data: FitData, objective: Objective,
                 config: TrainerConfig, dt: float, bold_filter: SimulatedBoldFilter,
                 feedback_inhibition: float | None = None) -> None:
        self.plan, self.data, self.objective, self.cfg = plan, data, objective, config
        self.tr, self.dt, self.filter = data.tr, dt, bold_filter
        self.feedback_inhibition = feedback_inhibition
        self.targets = plan.share_of(data.targets)

    def simulate(self, sim: BoldSimulator, n_volumes: int, dt: float,
                 generator: torch.Generator) -> Tensor:
        """Filtered BOLD (B, T, N) of ``sim``: ``n_volumes`` at the data's TR, neural step
        ``dt`` (ms)."""
        cfg = self.cfg
        with feedback_inhibition(sim.network, self.feedback_inhibition, cfg.checkpoint_chunks):
            y = sim(n_volumes, self.tr, dt, burn_in=cfg.burn_in, chunk=cfg.chunk,
                    generator=generator, checkpoint=cfg.checkpoint_chunks, truncate=cfg.truncate)
        return self.filter(y)

    # -- training --------------------------------------------------------------------------------
    def forward_backward(self, generator: torch.Generator
                         ) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """Simulate, score and differentiate this process's elements, a window at a time: (the
        per-element loss, its parts, the loss differentiated: the batch mean, or the share's sum
        over the whole batch's size). The gradients end up on the share's parameters."""
        plan = self.plan
        totals, parts_all, losses = [], [], []
        start = generator.get_state()
        for sim, rows in plan.each_window():
            generator.set_state(start)  # every window draws its rows of the same numbers
            total, parts = self.window_loss(sim, rows, generator)
            whole_mean = plan.group is None and sim is plan.simulator
            loss = total.mean() if whole_mean else total.sum() / len(plan.elements)
            loss.backward()
            plan.accumulate(sim, rows)
            totals.append(total.detach())
            parts_all.append(parts)
            losses.append(loss.detach())
        if len(totals) == 1:
            return totals[0], parts_all[0], losses[0]
        parts = {k: torch.cat([p[k] for p in parts_all]) for k in parts_all[0]}
        return torch.cat(totals), parts, torch.stack(losses).sum()

    def window_loss(self, sim: BoldSimulator, rows: slice, generator: torch.Generator
                    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss of each element of ``rows`` simulated by ``sim``, and its parts.

        Raises:
            StepDiverged: the simulation or the loss is NaN/inf (naming this process's elements).
        """
        cfg, objective = self.cfg, self.objective
        targets = self.targets if rows == self.plan.rows else rows_of(self.data.targets, rows)
        total = 0.0
        parts_sum: dict[str, Tensor] = {}
        try:
            if cfg.linearized:  # the linearised model's exact FC and ACF: no noise realisations
                fc, acf = linearized_stats(sim, self.tr, self.filter, objective.acf_lags(self.tr))
                total, parts_sum = objective.from_fc(fc, self.tr, targets, prior_values(sim), acf)
                parts_sum = {k: v.detach() for k, v in parts_sum.items()}
            for _ in range(0 if cfg.linearized else cfg.noise_realisations):
                y = self.simulate(sim, self.data.n_volumes, self.dt, generator)
                loss_b, parts = objective(y, self.tr, targets, prior_values(sim))
                total = total + loss_b / cfg.noise_realisations
                for k, v in parts.items():
                    parts_sum[k] = parts_sum.get(k, 0) + v.detach() / cfg.noise_realisations
        except SimulationDiverged as err:
            offset = self.plan.local_slice(rows).start
            raise StepDiverged(str(err), [b + offset for b in err.elements]) from err
        conn = sim.network.connectivity
        if conn is not None and conn.trainable:  # its prior: near the SC, subjects near the group
            penalty = conn.penalty()
            total = total + penalty
            parts_sum["connectivity_prior"] = penalty.detach()
        if not torch.isfinite(total).all():
            bad = (~torch.isfinite(total.detach())).nonzero().flatten().tolist()
            offset = self.plan.local_slice(rows).start
            raise StepDiverged(f"the loss is {total.detach().mean().item()}",
                               [b + offset for b in bad])
        return total, parts_sum

    # -- evaluation ------------------------------------------------------------------------------
    @torch.no_grad()
    def score(self, evaluator: Evaluator, n_volumes: int, dt: float) -> Evaluation:
        """``evaluator``'s scores of this process's elements (simulations of ``n_volumes`` at
        neural step ``dt``, one noise seed each), a window at a time."""
        simulation = lambda sim: lambda seed: self.simulate(  # noqa: E731
            sim, n_volumes, dt, torch.Generator(device=self.plan.device).manual_seed(seed))
        if not self.plan.runners:
            return evaluator(simulation(self.plan.simulator))
        parts = []
        for sim, rows in self.plan.each_window():
            local = self.plan.local_slice(rows)
            window = evaluator.replace(targets=rows_of(evaluator.targets, local))
            parts.append(window(simulation(sim)))
        return Evaluation({k: torch.cat([p.scores[k] for p in parts]) for k in parts[0].scores},
                          torch.cat([p.fc for p in parts]),
                          None if parts[0].fcd is None else torch.cat([p.fcd for p in parts]))


def prior_values(sim: BoldSimulator) -> dict[str, tuple[Any, Tensor]]:
    """``{name: (spec, raw value)}`` of every parameter of ``sim``, for the loss's priors."""
    out = {}
    for mod_name, module in sim.named_modules():
        if mod_name in _PRIOR_PREFIXES:
            for name, spec in module.specs.items():
                out[_PRIOR_PREFIXES[mod_name] + name] = (spec, module.raw[name])
    return out


@contextlib.contextmanager
def feedback_inhibition(net: BrainNetwork, rate: float | None,
                        checkpoint_chunks: bool = False) -> Iterator[None]:
    """``net``'s model reads J_i re-tuned by feedback inhibition control for the network's
    current G inside the block
    (:meth:`~brainfit.models.wong_wang.WongWangEI.tuned_feedback_inhibition`); with ``rate``
    None, nothing happens.

    Raises:
        ValueError: a coupling other than ``linear``; ``checkpoint_chunks`` with the reference
            engine under gradients (its chunks are recomputed in the backward pass, after the
            block, and would drop dJ_i/dG).
    """
    if rate is None:
        yield
        return
    if net.coupling.name != "linear":
        raise ValueError("feedback_inhibition assumes a linear coupling (coupling=linear)")
    if torch.is_grad_enabled() and checkpoint_chunks and net.engine != "fast":
        raise ValueError("feedback_inhibition's gradient through the re-tuned J_i does not "
                         "survive the reference engine's checkpointed chunks: use "
                         "trainer.engine=fast (it bounds memory itself) or "
                         "trainer.checkpoint_chunks=false")
    with net.model.tuned_feedback_inhibition(net.params["G"], net.coupling_weights, rate):
        yield
