"""The cohort trainer: simulate the batch -> BOLD -> loss -> backward -> clip -> step -> log.

One batch element is one (subject, restart) pair: element ``b = s * R + r`` is restart r of subject
s. Parameters of group scope (``global``, ``regional``, ``map``) are shared by the whole batch;
``subject`` and ``subject_regional`` ones are one per element, so the cohort and its restarts are
fitted in the same simulation. The best restart of each subject is the one with the lowest training
loss (a running average over epochs). Selection reads only the validation part (the end of the
fitted part, ``trainer.val_fraction``): the evaluations every ``eval_every`` epochs score it and the
best of them is ``best.pt``. The held-out part is scored once, at the end, on the checkpoint the run
hands over (``best.pt`` with a validation part, else the final parameters in ``last.pt``).

The trainer runs the loop and owns its state; the pieces it wires together each have their own
module: the data and targets (:mod:`brainfit.fit.targets`), the scores of simulations
(:mod:`brainfit.fit.evaluator`) and the run directory (:mod:`brainfit.fit.outputs`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

import brainfit
from brainfit.data import Cohort, Preprocessing
from brainfit.fit import memory
from brainfit.fit.build import Components
from brainfit.fit.configs import flat_config
from brainfit.fit.distributed import ProcessGroup
from brainfit.fit.outputs import RunOutputs
from brainfit.fit.recovery import Recovery, StepDiverged
from brainfit.fit.scoring import EVAL_SEED, Evaluation, Evaluator
from brainfit.fit.shares import BatchShares, rows_of
from brainfit.fit.spec import COMPILE_STEPS, TrainerConfig, build_simulator
from brainfit.fit.targets import FitData
from brainfit.linear import frequency_grid, linearized_stats, same_for_every_region
from brainfit.losses import Objective, SimulatedBoldFilter
from brainfit.runtime import FitDiverged, Interrupted, SimulationDiverged, progress
from brainfit.simulator import BoldSimulator

log = logging.getLogger("brainfit.fit")

__all__ = ["EVAL_SEED", "FitDiverged", "StepDiverged", "Trainer"]


class Trainer(BatchShares, Recovery):
    """Fits a cohort.

    Args:
        cohort: the cohort as loaded (``preprocessing=None``); subjects need equal N, TR and
            session length.
        components: the network model, coupling factory and BOLD-head factory
            (:func:`brainfit.fit.build.components_from_config`).
        objective: the loss.
        optimizer: factory ``params -> torch.optim.Optimizer``.
        config: the trainer settings.
        out_dir: where checkpoints, tables, figures and logs go.
        scheduler: factory ``optimizer -> LR scheduler``, or None.
        seed: seeds every random number of the run.
        device, dtype: where and in what precision to run.
        preprocessing: the data's preprocessing, run on each part of the sessions on its own
            (:func:`~brainfit.fit.targets.session_parts`) and mirrored on simulated BOLD.
        run_config: the resolved run config stored in checkpoints (for resume / load_fitted).
        group: this process's place in a distributed fit (:mod:`brainfit.fit.distributed`), or
            None: it simulates its share of the batch, and rank 0 writes the outputs.
    """

    def __init__(self, cohort: Cohort, components: Components, objective: Objective,
                 optimizer: Callable, config: TrainerConfig, out_dir: str | Path, *,
                 scheduler: Callable | None = None, seed: int = 0,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 preprocessing: Preprocessing | None = None,
                 run_config: dict[str, Any] | None = None,
                 group: ProcessGroup | None = None) -> None:
        self.cfg, self.objective, self.spec = config, objective, components.spec
        self.group = group
        self.main = group is None or group.is_main
        self.dt = config.dt or self.spec.dt
        self.eval_dt = config.eval_dt or self.dt
        self.device, self.dtype = torch.device(device), dtype
        self.outputs = RunOutputs(out_dir, figures=config.figures)
        self.seed = int(seed)
        self.run_config = run_config or {}
        _seed_everything(self.seed)
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        self.data = data = FitData.from_cohort(cohort, config, objective, preprocessing,
                                               self.device, dtype)
        self.ids, self.tr = data.ids, data.tr
        R = config.restarts
        rep = lambda t: None if t is None else t.repeat_interleave(R, dim=0)  # noqa: E731
        self.maps = {k: rep(v) for k, v in data.train_batch.maps.items()}
        self.elements = [(sid, r) for sid in self.ids for r in range(R)]
        lo, hi = group.share(len(self.ids)) if group is not None else (0, len(self.ids))
        self.rows = slice(lo * R, hi * R)  # this process's batch elements
        build = lambda rows: build_simulator(  # noqa: E731
            self.spec, components.coupling, components.bold,
            rep(data.train_batch.weights)[rows], rows_of(rep(data.train_batch.lengths), rows),
            {k: v[rows] for k, v in self.maps.items()}).to(device=self.device, dtype=self.dtype)
        # the share's parameters (what the optimiser steps); it simulates the share itself unless
        # trainer.batch_subjects streams the share through runners, a window of subjects at a time
        self.simulator = build(self.rows)
        per = (config.batch_subjects or hi - lo) * R
        self.windows = [slice(a, min(a + per, self.rows.stop))
                        for a in range(self.rows.start, self.rows.stop, per)]
        self._runners: dict[int, BoldSimulator] = {}
        self._whole: BoldSimulator | None = None  # the whole batch, for rank 0's outputs
        self._per_element: set[str] = set()  # state entries with one row per batch element
        if group is not None or len(self.windows) > 1:
            whole = self.simulator if group is None else build(slice(None))  # the share: all
            one = build(slice(0, R)).state_dict()
            self._per_element = {k for k, v in whole.state_dict().items()
                                 if v.shape != one[k].shape}
            self._whole = whole if self.main and group is not None else None
            self.simulator.network.rows = (self.rows.start, len(self.elements))
        if len(self.windows) > 1:
            for w in self.windows:
                self._runners.setdefault(w.stop - w.start, build(w))
        self.targets = rows_of(data.targets, self.rows)
        if config.linearized and (objective.needs_fcd or objective.needs_psd):
            raise ValueError("trainer.linearized fits the model's FC and autocorrelations; the "
                             "loss's FCD/PSD terms need simulated time series: use loss=fc or "
                             "loss=fc_acf (the evaluation still scores the simulated FCD)")
        self._set_engine()
        self._spread_restarts()
        params = [p for p in self.simulator.parameters() if p.requires_grad]
        if not params:
            raise ValueError("no parameter is trainable: set trainable: true on at least one "
                             "parameter in the model config")
        self.optimizer = optimizer(params)
        self.scheduler = scheduler(self.optimizer) if scheduler is not None else None
        self.filter = SimulatedBoldFilter(self.tr, **data.filter_kwargs)
        scorer = lambda targets, n: Evaluator(  # noqa: E731
            rows_of(targets, self.rows), self.tr, objective.fcd_window, objective.fcd_step,
            config.eval_seeds, fcd_segment=n)
        self.evaluator = scorer(data.test_targets, data.n_held_out)  # the held-out part
        self.validator = None if data.val_targets is None else scorer(data.val_targets,
                                                                     data.n_val)
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.best = {sid: self.ids.index(sid) * R for sid in self.ids}
        self.split = {"train_fraction": config.train_fraction,
                      "val_fraction": config.val_fraction, "split_gap": config.split_gap,
                      "preprocessing": (None if preprocessing is None else
                                        dataclasses.asdict(preprocessing))}
        # the state best.pt holds: epoch, validation score, best restarts, parameters (this
        # process's rows); None without a validation part, or before its first validation
        self.selected: dict[str, Any] | None = None
        self.element_loss: Tensor | None = None  # running average of each element's loss
        self.last_eval: dict[str, Any] | None = None
        self._good: dict[str, Any] | None = None  # the last state known to simulate finitely
        self.divergences = 0
        self.finished = False
        self._signal: int | None = None
        self._saving = False
        self._saved_epoch: int | None = None
        if config.resume:
            self._resume(config.resume)

    @property
    def score_name(self) -> str:
        return self.data.score_name

    @property
    def best_score(self) -> float:
        """The validation score of the selected state (-inf: none)."""
        return -math.inf if self.selected is None else self.selected["score"]

    @property
    def handed_over(self) -> str:
        """The checkpoint the run hands over (what ``load_fitted(run_dir)`` returns)."""
        return "last.pt" if self.validator is None else "best.pt"

    def _spread_restarts(self) -> None:
        """Restarts after the first start per-element parameters from random values."""
        R = self.cfg.restarts
        if R == 1 or self.cfg.restart_spread == 0:
            return
        for module in self.simulator.modules():
            pset = getattr(module, "params", None)
            if not isinstance(pset, brainfit.ParameterSet):
                continue
            for name, spec in pset.specs.items():
                if spec.trainable and spec.scope in ("subject", "subject_regional"):
                    raw = pset.raw[name]  # this process's rows of the whole batch's draws
                    B = len(self.elements)
                    noise = torch.randn((B, *raw.shape[1:]), generator=self.generator,
                                        device=self.device, dtype=raw.dtype)[self.rows]
                    noise = noise * self.cfg.restart_spread
                    first = (torch.arange(B, device=self.device)[self.rows] % R == 0)
                    noise[first] = 0
                    with torch.no_grad():
                        raw.add_(noise)

    def _set_engine(self) -> None:
        """``trainer.engine`` and ``trainer.compile`` (``auto``: compile long simulations)."""
        cfg, net = self.cfg, self.simulator.network
        steps = (cfg.burn_in + self.data.n_volumes * self.tr) * 1000.0 / self.dt
        for sim in (self.simulator, *self._runners.values()):
            sim.network.engine = cfg.engine
            sim.network.compile = bool(steps >= COMPILE_STEPS if cfg.compile == "auto"
                                       else cfg.compile)
        if net.compile and cfg.engine == "fast":
            log.info("engine: fast, compiled (%d steps a simulation; the first one compiles)",
                     steps)
        batch = max(w.stop - w.start for w in self.windows)
        if cfg.linearized:  # nothing is simulated while fitting
            need = memory.linearized_step_bytes(
                net, batch, len(frequency_grid(self.tr)[0]),
                by_modes=same_for_every_region(self.simulator.bold))
        else:
            need = memory.training_step_bytes(
                net, batch, self.dt, steps * self.dt / 1000.0, self.simulator.bold.dt, cfg.chunk,
                cfg.checkpoint_chunks)
        log.info("memory: about %.2f GiB per training step (%s)", need / 2**30,
                 "linearised" if cfg.linearized else f"{cfg.engine} engine")
        memory.check_fits(need, memory.available_bytes(self.device), cfg.engine,
                          cfg.checkpoint_chunks, cfg.linearized)

    # -- one step --------------------------------------------------------------------------------
    def simulate(self, n_volumes: int, dt: float, generator: torch.Generator,
                 simulator: BoldSimulator | None = None) -> Tensor:
        """Filtered BOLD (B, T, N) of ``simulator`` (default: the trainer's)."""
        cfg = self.cfg
        sim = self.simulator if simulator is None else simulator
        with self._tune_feedback_inhibition(sim):
            y = sim(n_volumes, self.tr, dt, burn_in=cfg.burn_in, chunk=cfg.chunk,
                    generator=generator, checkpoint=cfg.checkpoint_chunks, truncate=cfg.truncate)
        return self.filter(y)


    @contextlib.contextmanager
    def _tune_feedback_inhibition(self, sim: BoldSimulator | None = None) -> Iterator[None]:
        """Deco 2014's FIC for the current G: the simulation inside the block reads J_i(G, ...).

        J_i is re-tuned so that r_E sits at the target at the network's FIC fixed point (S_E = S_E*
        in every region, so the long-range input is c = G C.sum(-1) S_E*), stored (for the
        checkpoints and exports), and handed to the simulation with its graph, so that the loss's
        gradient is that of the re-tuned model: dL/dG includes dL/dJ_i dJ_i/dG. The fixed-point
        condition F_i(J_i, G) = I_E,i - H_E^{-1}(r) = 0 involves J_i only through region i, and
        linearly (dF_i/dJ_i = -S_I*), so the implicit-function gradient
        dJ_i/dG = -(dF_i/dG) / (dF_i/dJ_i) = J_NMDA C.sum(-1)_i S_E* / S_I* is what the closed form
        of :meth:`~brainfit.models.wong_wang.WongWangEI.fit_feedback_inhibition` differentiates
        to; its root finds (I_E*, S_I*) end in one Newton step that carries the implicit gradient
        to the model's other parameters. Without feedback inhibition the block does nothing.

        Raises:
            ValueError: a coupling other than ``linear``; ``checkpoint_chunks`` with the reference
                engine under gradients (its chunks are recomputed in the backward pass, after the
                block, and would drop dJ_i/dG).
        """
        if self.spec.feedback_inhibition is None:
            yield
            return
        net = (sim or self.simulator).network
        if net.coupling.name != "linear":
            raise ValueError("feedback_inhibition assumes a linear coupling (coupling=linear)")
        if torch.is_grad_enabled() and self.cfg.checkpoint_chunks and net.engine != "fast":
            raise ValueError("feedback_inhibition's gradient through the re-tuned J_i does not "
                             "survive the reference engine's checkpointed chunks: use "
                             "trainer.engine=fast (it bounds memory itself) or "
                             "trainer.checkpoint_chunks=false")
        rate = self.spec.feedback_inhibition
        s_star = net.model.target_gating(rate)
        c = net.params["G"] * net.coupling_weights.sum(-1) * s_star
        j_i = net.model.fit_feedback_inhibition(c.expand(net.n_batch, -1), target_rate=rate,
                                                apply=True).expand(net.n_batch, net.n_regions)
        # the store checked that the values are uniform along the dimensions the scope lacks
        scope = net.model.params.specs["J_i"].scope
        j_i = {"global": lambda v: v.mean(), "regional": lambda v: v.mean(0),
               "subject": lambda v: v.mean(1, keepdim=True)}.get(scope, lambda v: v)(j_i)
        with net.model.params.replaced("J_i", j_i):
            yield

    def prior_values(self, sim: BoldSimulator | None = None) -> dict[str, tuple[Any, Tensor]]:
        """``{name: (spec, raw value)}`` of every parameter of ``sim`` (default: the trainer's),
        for the loss's priors."""
        out = {}
        prefixes = {"network.model.params": "", "network.params": "",
                    "network.coupling.params": "coupling.", "network.noise.params": "noise.",
                    "bold.params": "bold."}
        for mod_name, module in (sim or self.simulator).named_modules():
            if mod_name in prefixes:
                for name, spec in module.specs.items():
                    out[prefixes[mod_name] + name] = (spec, module.raw[name])
        return out

    def step(self) -> dict[str, float]:
        """One optimiser step; returns the logged scalars.

        Raises:
            StepDiverged: the simulation, the loss, a gradient or a parameter became NaN/inf; the
                parameters may already have moved (:meth:`fit` goes back to the last good state).
        """
        self.simulator.train()
        self.optimizer.zero_grad(set_to_none=True)
        before = self._snapshot()
        total, parts_sum, loss = self._agreed(self._forward_backward)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        if self.group is not None:  # every rank now holds the whole batch's gradient
            self.group.all_reduce_([p.grad for n, p in self.simulator.named_parameters()
                                    if p.grad is not None and n not in self._per_element])
        self._agreed(lambda: self._require_finite(lambda p: p.grad, "the gradient is NaN/inf "
                                                  "for {}"))
        self._good = before  # this state simulated and differentiated to finite numbers
        lb = total.detach()
        self.element_loss = lb if self.element_loss is None else 0.7 * self.element_loss + 0.3 * lb
        gnorm = self._clip(params)
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self._agreed(lambda: self._require_finite(lambda p: p, "the optimiser step made {} "
                                                  "NaN/inf"))
        self.epoch += 1
        names = list(parts_sum)
        values = [loss.item()] + [float(parts_sum[k].sum()) for k in names]
        if self.group is not None:
            values = self.group.sum(values)
            values = [values[0]] + [v / len(self.elements) for v in values[1:]]
        else:
            values = [values[0]] + [float(parts_sum[k].mean()) for k in names]
        row = {"epoch": self.epoch, "loss": values[0], "grad_norm": float(gnorm),
               "lr": self.optimizer.param_groups[0]["lr"]}
        row.update({f"loss/{k}": v for k, v in zip(names, values[1:])})
        if "fc_corr" in parts_sum:
            row["fc_similarity"] = 1 - row["loss/fc_corr"]
        return row

    def _forward_backward(self) -> tuple[Tensor, dict[str, Tensor], Tensor]:
        """Simulate, score and differentiate this process's elements, a window at a time: (the
        per-element loss, its parts, the loss differentiated: the batch mean, or the share's sum
        over the whole batch's size)."""
        totals, parts_all, losses = [], [], []
        start = self.generator.get_state()
        for sim, rows in self._windows():
            self.generator.set_state(start)  # every window draws its rows of the same numbers
            total, parts = self._window_loss(sim, rows)
            whole_mean = self.group is None and sim is self.simulator
            loss = total.mean() if whole_mean else total.sum() / len(self.elements)
            loss.backward()
            self._accumulate(sim, rows)
            totals.append(total.detach())
            parts_all.append(parts)
            losses.append(loss.detach())
        if len(totals) == 1:
            return totals[0], parts_all[0], losses[0]
        parts = {k: torch.cat([p[k] for p in parts_all]) for k in parts_all[0]}
        return torch.cat(totals), parts, torch.stack(losses).sum()

    def _window_loss(self, sim: BoldSimulator, rows: slice) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss of each element of ``rows`` simulated by ``sim``, and its parts."""
        cfg = self.cfg
        targets = self.targets if rows == self.rows else rows_of(self.data.targets, rows)
        total = 0.0
        parts_sum: dict[str, Tensor] = {}
        try:
            if cfg.linearized:  # the linearised model's exact FC and ACF: no noise realisations
                fc, acf = linearized_stats(sim, self.tr, self.filter,
                                           self.objective.acf_lags(self.tr))
                total, parts_sum = self.objective.from_fc(fc, self.tr, targets,
                                                          self.prior_values(sim), acf)
                parts_sum = {k: v.detach() for k, v in parts_sum.items()}
            for _ in range(0 if cfg.linearized else cfg.noise_realisations):
                y = self.simulate(self.data.n_volumes, self.dt, self.generator, sim)
                loss_b, parts = self.objective(y, self.tr, targets, self.prior_values(sim))
                total = total + loss_b / cfg.noise_realisations
                for k, v in parts.items():
                    parts_sum[k] = parts_sum.get(k, 0) + v.detach() / cfg.noise_realisations
        except SimulationDiverged as err:
            offset = rows.start - self.rows.start
            raise StepDiverged(str(err), [b + offset for b in err.elements]) from err
        conn = sim.network.connectivity
        if conn is not None and conn.trainable:  # its prior: near the SC, subjects near the group
            penalty = conn.penalty()
            total = total + penalty
            parts_sum["connectivity_prior"] = penalty.detach()
        if not torch.isfinite(total).all():
            bad = (~torch.isfinite(total.detach())).nonzero().flatten().tolist()
            raise StepDiverged(f"the loss is {total.detach().mean().item()}",
                               [b + rows.start - self.rows.start for b in bad])
        return total, parts_sum


    def _require_finite(self, value: Callable[[Tensor], Tensor | None], message: str) -> None:
        bad = self._non_finite(value)
        if bad:
            raise StepDiverged(message.format(bad))


    def _non_finite(self, value: Callable[[Tensor], Tensor | None]) -> list[str]:
        """Names of the trainable parameters whose ``value(p)`` holds NaN/inf."""
        return [name for name, p in self.simulator.named_parameters()
                if p.requires_grad and value(p) is not None and not torch.isfinite(value(p)).all()]

    # -- evaluation ------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, seeds: int | None = None, part: str = "held_out") -> dict[str, Any]:
        """Scores of ``part`` (``"validation"`` or ``"held_out"``) per element, averaged over
        noise seeds, and the best restart of each subject: the lowest training loss (before any
        step, the best validation score, or the first restart: never the held-out score)."""
        self.simulator.eval()
        validation = part == "validation"
        evaluator = self.validator if validation else self.evaluator
        n_volumes = self.data.n_val_volumes if validation else self.data.n_eval_volumes
        if seeds is not None and seeds != evaluator.seeds:
            evaluator = evaluator.replace(seeds=seeds)
        ev = self._agreed(lambda: self._evaluate_share(evaluator, n_volumes))
        if self.group is not None:  # the whole batch's scores
            ev = Evaluation({k: self._gather_rows(v) for k, v in ev.scores.items()},
                            self._gather_rows(ev.fc),
                            None if ev.fcd is None else self._gather_rows(ev.fcd))
        R = self.cfg.restarts
        score = ev.score
        best = self.best  # held out: the restarts already chosen
        if validation:
            best = self._restarts(-score)
        per_subject = {}
        for sid in self.ids:
            b = best[sid]
            per_subject[sid] = {k: float(v[b]) for k, v in ev.scores.items()}
            per_subject[sid]["restart"] = b % R
            if not validation:
                per_subject[sid].update(self.data.baselines[sid])
        mean = {k: float(np.mean([p[k] for p in per_subject.values()]))
                for k in next(iter(per_subject.values())) if k != "restart"}
        self.last_eval = {"epoch": self.epoch, "part": part, "best": best,
                          "subjects": per_subject, "mean": mean,
                          "score": float(np.mean([score[b] for b in best.values()])),
                          "fc_sim": ev.fc, "fcd_sim": ev.fcd}
        return self.last_eval

    def _restarts(self, fallback: Tensor | None = None) -> dict[str, int]:
        """The best restart of each subject: the lowest training loss (a running average), or
        before any step the lowest ``fallback`` (else the current choice)."""
        R = self.cfg.restarts
        rank = (self._gather_rows(self.element_loss) if self.element_loss is not None
                else fallback)
        if rank is None:
            return dict(self.best)
        return {sid: s * R + int(rank[s * R:(s + 1) * R].argmin())
                for s, sid in enumerate(self.ids)}

    def _evaluate_share(self, evaluator: Evaluator, n_volumes: int) -> Evaluation:
        """``evaluator``'s scores of this process's elements (simulations of ``n_volumes``), a
        window at a time."""
        if not self._runners:
            return evaluator(lambda seed: self._eval_simulation(seed, n_volumes))
        parts = []
        for sim, rows in self._windows():
            local = slice(rows.start - self.rows.start, rows.stop - self.rows.start)
            window = evaluator.replace(targets=rows_of(evaluator.targets, local))
            parts.append(window(lambda seed: self._eval_simulation(seed, n_volumes, sim)))  # noqa: B023
        return Evaluation({k: torch.cat([p.scores[k] for p in parts]) for k in parts[0].scores},
                          torch.cat([p.fc for p in parts]),
                          None if parts[0].fcd is None else torch.cat([p.fcd for p in parts]))

    def _eval_simulation(self, seed: int, n_volumes: int,
                         simulator: BoldSimulator | None = None) -> Tensor:
        g = torch.Generator(device=self.device).manual_seed(seed)
        return self.simulate(n_volumes, self.eval_dt, g, simulator)

    # -- the loop --------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Run the remaining epochs, evaluate, save; returns the final metrics.

        A diverged step or evaluation goes back to the last good state with a lower learning rate
        (``trainer.divergence_lr_factor``, at most ``trainer.max_divergences`` times). SIGTERM and
        SIGINT end the fit with :class:`~brainfit.runtime.Interrupted` (exit code 143 / 130 in the
        scripts); ``checkpoints/last.pt`` then holds the last completed epoch, and a fit resumed
        from it ends bit-identical to an uninterrupted one.

        Raises:
            FitDiverged: the fit diverged more often than it may recover.
            Interrupted: SIGTERM or SIGINT.
        """
        cfg = self.cfg
        start = time.time()
        bar = progress(cfg.epochs, cfg.progress and self.main, "fit", "epoch", initial=self.epoch,
                       leave=True)
        log.info("fitting %d subjects x %d restarts (%d regions) for %d epochs on %s",
                 len(self.ids), cfg.restarts, self.data.train_batch.weights.shape[-1],
                 cfg.epochs, self.device)
        try:
            with self._stop_on_signals():
                self._run_epochs(bar)
                self.save("last.pt")
                with self._handed_over():
                    result = self.export(time.time() - start)
                self.finished = True
                self.save("last.pt")
        except Interrupted as err:
            log.warning("%s during epoch %d: %s", err.signal_name, self.epoch + 1,
                        f"checkpoints/last.pt holds epoch {self._saved_epoch}; continue with "
                        f"trainer.resume={self.outputs.checkpoints / 'last.pt'}"
                        if self._saved_epoch is not None else
                        "no epoch was completed, so there is nothing to resume")
            raise
        finally:
            if bar is not None:
                bar.close()
            self.outputs.close_log()
        return result

    def _run_epochs(self, bar: Any) -> None:
        """Steps to ``trainer.epochs``, then the final evaluation; recovers from divergence."""
        cfg = self.cfg
        while True:
            while self.epoch < cfg.epochs:
                try:
                    row = self.step()
                    evaluated = bool(cfg.eval_every and self.epoch % cfg.eval_every == 0
                                     and self.epoch < cfg.epochs)
                    if evaluated:
                        self._validate(row)
                except (StepDiverged, SimulationDiverged) as err:
                    self._recover(err, "step" if isinstance(err, StepDiverged) else "evaluation")
                    if bar is not None:
                        bar.n = self.epoch
                        bar.refresh()
                    continue
                self.history.append(row)
                if evaluated:  # this state simulated finitely too
                    self._good = self._snapshot()
                if self.main:
                    self.outputs.log(row, self.simulator)
                self.save("last.pt")
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{row['loss']:.4f}",
                                    train_fc=f"{row.get('fc_similarity', float('nan')):.3f}")
            row = dict(self.history[-1]) if self.history else {"epoch": self.epoch}
            try:
                if self.validator is not None:  # the final parameters are a candidate too
                    self._validate(row, final=True)
                else:
                    self.best = self._restarts()
                with self._handed_over():  # the held-out part, scored once
                    self.evaluate()
            except SimulationDiverged as err:
                self._recover(err, "evaluation")
                continue
            if self.history and self.validator is not None:
                self.history[-1] = row
                if self.main:  # the last epoch's validation scores; its other values are logged
                    self.outputs.log({k: v for k, v in row.items()
                                      if k == "epoch" or k.startswith("eval/")}, None)
            return


    def _validate(self, row: dict[str, float], final: bool = False) -> None:
        """Score the validation part; a better score than any before (or, at the end, the first
        score of a resumed run that has none) makes this state the selected one, ``best.pt``."""
        ev = self.evaluate(part="validation")
        row.update({f"eval/{k}": v for k, v in ev["mean"].items()})
        self.best = ev["best"]
        if ev["score"] > self.best_score or final and self.selected is None:
            self.selected = {"epoch": self.epoch, "score": ev["score"], "best": dict(self.best),
                             "model_state": {k: v.detach().clone() for k, v in
                                             self.simulator.state_dict().items()}}
            self.save("best.pt")
        m = ev["mean"]
        log.info("epoch %d: validation FC similarity %.3f (Fisher %.3f), FCD KS %s", self.epoch,
                 m["fc_similarity"], m["fc_similarity_fisher"],
                 f"{m['fcd_ks']:.3f}" if "fcd_ks" in m else "n/a")

    @contextlib.contextmanager
    def _handed_over(self) -> Iterator[None]:
        """The parameters and best restarts of the checkpoint the run hands over (the selected
        state with a validation part, else the current one) installed for the block."""
        if self.selected is None:
            yield
            return
        state, best = {k: v.clone() for k, v in self.simulator.state_dict().items()}, self.best
        self.simulator.load_state_dict(self.selected["model_state"])
        self.best = dict(self.selected["best"])
        try:
            yield
        finally:
            self.simulator.load_state_dict(state)
            self.best = best

    # -- state -----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        data = self.data
        return {
            "brainfit_version": brainfit.__version__,
            "epoch": self.epoch,
            "config": self.run_config,
            "model_state": self._whole_rows(self.simulator.state_dict()),
            "optimizer": self._whole_optimizer_state(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": {"generator": self.generator.get_state(), "torch": torch.get_rng_state(),
                    "numpy": _numpy_rng_state(), "python": random.getstate()},
            "data": {"name": data.cohort.name, "ids": self.ids, "checksums": data.checksums,
                     "split": self.split},
            "elements": self.elements,
            "best": self.best,
            "selected": None if self.selected is None else {
                **self.selected, "model_state": self._whole_rows(self.selected["model_state"])},
            "element_loss": (None if self.element_loss is None
                             else self._gather_rows(self.element_loss)),
            "history": self.history,
            "divergences": self.divergences,
            "finished": self.finished,
            "maps": self.maps,
            "meta": {"tr": self.tr, "dt": self.dt, "eval_dt": self.eval_dt,
                     "burn_in": self.cfg.burn_in, "chunk": self.cfg.chunk,
                     "n_volumes": data.n_volumes, "n_eval_volumes": data.n_eval_volumes,
                     "labels": data.cohort.labels, "restarts": self.cfg.restarts,
                     "filter": data.filter_kwargs, "eval_seed": EVAL_SEED},
        }

    def save(self, name: str) -> Path:
        """Write a checkpoint atomically, only if every parameter is finite; a SIGTERM/SIGINT
        that arrives meanwhile is acted on once the file is whole."""
        self._saving = True
        try:
            state = self.state()  # in a distributed fit, every rank takes part
            path = self.outputs.save(state, name) if self.main else self.outputs.checkpoints / name
        finally:
            self._saving = False
        if name == "last.pt":
            self._saved_epoch = self.epoch
        if self._signal is not None:
            raise Interrupted(self._signal)
        return path

    def _resume(self, path: str | Path) -> None:
        """Continue the checkpoint at ``path`` (already checked to be this model and data).

        Settings changed since the checkpoint are logged. The optimiser's and scheduler's
        hyper-parameters come from this config (``optim.lr`` is the learning rate from the
        resumed epoch on); another optimiser or scheduler starts with a fresh state. The random
        state continues from the checkpoint, so ``seed`` has no effect on a resumed fit.

        Raises:
            ValueError: ``trainer.epochs`` does not go beyond the checkpoint's epoch.
        """
        cfg = self.cfg
        ckpt = self.outputs.load_for_resume(path, self.run_config, self.data.checksums,
                                            self.elements, self.split)
        done = int(ckpt["epoch"])
        if done > cfg.epochs or done == cfg.epochs and ckpt.get("finished", False):
            raise ValueError(
                f"trainer.epochs={cfg.epochs} is the total number of epochs, and {path} has "
                f"already done {done}{' and finished' if done == cfg.epochs else ''}: set "
                f"trainer.epochs above {done} to fit further, or score it as it is with "
                f"python scripts/evaluate.py run=<its run folder>")
        theirs, ours = flat_config(ckpt["config"]), flat_config(self.run_config)
        changed = {k: (theirs.get(k), ours.get(k)) for k in sorted(set(theirs) | set(ours))
                   if theirs.get(k) != ours.get(k) and k != "trainer.resume"}
        if changed:
            log.info("resuming %s with changed settings: %s", path,
                     ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items()))
        self.simulator.load_state_dict(self._my_rows(ckpt["model_state"]))
        self._resume_optimizer(ckpt, changed)
        rng = ckpt["rng"]
        self.generator.set_state(rng["generator"])
        torch.set_rng_state(rng["torch"])
        _set_numpy_rng_state(rng["numpy"])
        random.setstate(rng["python"])
        self.epoch = done
        self.history = list(ckpt["history"])
        self.best = dict(ckpt["best"])
        selected = ckpt["selected"]
        self.selected = None if selected is None else {
            **selected, "best": dict(selected["best"]),
            "model_state": self._my_rows(selected["model_state"])}
        self.divergences = int(ckpt.get("divergences", 0))
        self.element_loss = ckpt.get("element_loss")
        if self.element_loss is not None:
            self.element_loss = self.element_loss[self.rows].to(self.device)
        self._saved_epoch = done
        log.info("resumed from %s at epoch %d", path, self.epoch)

    def _resume_optimizer(self, ckpt: dict[str, Any], changed: dict[str, tuple]) -> None:
        """The optimiser's (and scheduler's) state from the checkpoint, the hyper-parameters from
        this config."""
        if any(k.startswith("optim._target_") for k in changed):
            log.warning("the optimiser changed (%s -> %s): its state starts afresh",
                        *changed["optim._target_"])
        else:
            ours = {k: copy.deepcopy(v) for k, v in self.optimizer.defaults.items()}
            self.optimizer.load_state_dict(self._my_optimizer_state(ckpt["optimizer"]))
            if any(k.startswith("optim.") for k in changed):
                for group in self.optimizer.param_groups:
                    group.update({k: v for k, v in ours.items() if k in group})
                    if "initial_lr" in group:
                        group["initial_lr"] = group["lr"]
        if self.scheduler is None or ckpt["scheduler"] is None:
            return
        if any(k.startswith("scheduler.") for k in changed):
            log.warning("the scheduler changed: it starts afresh from the resumed epoch")
            return
        self.scheduler.load_state_dict(ckpt["scheduler"])
        if hasattr(self.scheduler, "base_lrs"):
            self.scheduler.base_lrs = [g.get("initial_lr", g["lr"])
                                       for g in self.optimizer.param_groups]

    # -- exports ---------------------------------------------------------------------------------
    def export(self, elapsed: float) -> dict[str, Any]:
        """fitted_params.csv, metrics.json, simulated_fc.npz and figures."""
        ev, data, R = self.last_eval, self.data, self.cfg.restarts
        result = {
            "held_out": ev["subjects"],
            "mean": ev["mean"],
            "checkpoint": self.handed_over,
            "selected_epoch": self.epoch if self.selected is None else self.selected["epoch"],
            "best_epoch_score": None if self.selected is None else self.best_score,
            "epochs": self.epoch,
            "fit_seconds": elapsed,
            "device": str(self.device),
            "n_subjects": len(self.ids),
            "restarts": R,
            "tr": self.tr,
        }
        best = list(self.best.values())
        fc_sim = ev["fc_sim"][best]
        tt = data.test_targets
        per_subject = lambda t: {sid: t[s * R].cpu().numpy()  # noqa: E731
                                 for s, sid in enumerate(self.ids)}
        fcd = None
        if tt.fcd is not None and ev["fcd_sim"] is not None:  # the first seed's, as the FC
            fcd = (per_subject(tt.fcd), {sid: ev["fcd_sim"][best[s]].cpu().numpy()
                                         for s, sid in enumerate(self.ids)})
        whole = self._whole_simulator()  # collective: every rank has reached this point
        if not self.main:
            return result
        rows = self.outputs.export(result, whole, self.elements, self.best,
                                   data.cohort.labels, fc_sim, EVAL_SEED, data.n_eval_volumes)
        net = whole.network
        if net.connectivity is not None:
            with torch.no_grad():
                self.outputs.export_connectivity(
                    self.ids, net.weights.expand(len(self.elements), -1, -1)[best],
                    net.coupling_weights.expand(len(self.elements), -1, -1)[best],
                    data.cohort.labels)
        self.outputs.figures(
            rows, per_subject(tt.fc),
            {sid: fc_sim[s].cpu().numpy() for s, sid in enumerate(self.ids)},
            ev["subjects"], self.history, data.cohort.labels,
            fcd=fcd)
        return result


def _numpy_rng_state() -> dict[str, Any]:
    """NumPy's global RNG state as tensors and plain values (what a checkpoint may hold)."""
    kind, key, pos, has_gauss, cached = np.random.get_state()
    return {"kind": kind, "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}


def _set_numpy_rng_state(state: dict[str, Any]) -> None:
    np.random.set_state((state["kind"], state["key"].numpy().astype(np.uint32), state["pos"],
                         state["has_gauss"], state["cached_gaussian"]))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
