"""The cohort trainer: simulate the batch -> BOLD -> loss -> backward -> clip -> step -> log.

One batch element is one (subject, restart) pair: element ``b = s * R + r`` is restart r of subject
s. Parameters of group scope (``global``, ``regional``, ``map``) are shared by the whole batch;
``subject`` and ``subject_regional`` ones are one per element, so the cohort and its restarts are
fitted in the same simulation. The best restart of each subject is the one with the lowest training
loss (a running average over epochs). Selection reads only the validation part (the end of the
fitted part, ``trainer.val_fraction``): the evaluations every ``eval_every`` epochs score it and the
best of them is ``best.pt``. The held-out part is scored once, at the end, on the checkpoint the run
hands over (``best.pt`` with a validation part, else the final parameters in ``last.pt``).

The trainer runs the loop and owns its parts, each in its module: data and targets (``targets``),
the batch plan (``plan``), the batch's simulations (``runner``), the resumable state (``state``),
divergence recovery and signals (``recovery``), scores (``scoring``), the run directory
(``outputs``) and the hooks TensorBoard, figures, benchmarks and tests attach to (``callbacks``).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import brainfit
from brainfit.data import Cohort, Preprocessing
from brainfit.fit.build import Components
from brainfit.fit.callbacks import Callback, Hooks, default_callbacks
from brainfit.fit.configs import changed_settings
from brainfit.fit.distributed import ProcessGroup
from brainfit.fit.outputs import RunOutputs
from brainfit.fit.plan import BatchPlan
from brainfit.fit.recovery import Recovery, SignalGuard, StepDiverged, require_finite
from brainfit.fit.runner import BatchRunner
from brainfit.fit.scoring import EVAL_SEED, Evaluator, best_restarts, summarize
from brainfit.fit.spec import TrainerConfig
from brainfit.fit.state import TrainState, check_epochs_left, seed_everything
from brainfit.fit.targets import FitData
from brainfit.losses import Objective, SimulatedBoldFilter
from brainfit.runtime import FitDiverged, Interrupted, SimulationDiverged, progress
from brainfit.simulator import BoldSimulator

log = logging.getLogger("brainfit.fit")

__all__ = ["EVAL_SEED", "FitDiverged", "StepDiverged", "Trainer"]


class Trainer:
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
        callbacks: what to call at the fit's hooks (:mod:`brainfit.fit.callbacks`); None: rank
            0 writes TensorBoard scalars and the figures (``trainer.figures``). Callbacks
            attached to the process (:func:`~brainfit.fit.callbacks.attach`) are called too.
    """

    def __init__(self, cohort: Cohort, components: Components, objective: Objective,
                 optimizer: Callable, config: TrainerConfig, out_dir: str | Path, *,
                 scheduler: Callable | None = None, seed: int = 0,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 preprocessing: Preprocessing | None = None,
                 run_config: dict[str, Any] | None = None, group: ProcessGroup | None = None,
                 callbacks: Sequence[Callback] | None = None) -> None:
        main = group is None or group.is_main
        self.hooks = Hooks(callbacks if callbacks is not None else
                           default_callbacks(out_dir, config.figures) if main else [])
        self.hooks("on_setup_start", self)
        self.cfg, self.objective, self.spec = config, objective, components.spec
        self.dt = config.dt or self.spec.dt
        self.eval_dt = config.eval_dt or self.dt
        self.device = torch.device(device)
        self.outputs = RunOutputs(out_dir)
        self.run_config = run_config or {}
        seed_everything(int(seed))
        generator = torch.Generator(device=self.device).manual_seed(int(seed))
        self.data = data = FitData.from_cohort(cohort, config, objective, preprocessing,
                                               self.device, dtype)
        self.tr = data.tr
        self.plan = plan = BatchPlan(components, data, config, group, self.device, dtype)
        if config.linearized and (objective.needs_fcd or objective.needs_psd):
            raise ValueError("trainer.linearized fits the model's FC and autocorrelations; the "
                             "loss's FCD/PSD terms need simulated time series: use loss=fc or "
                             "loss=fc_acf (the evaluation still scores the simulated FCD)")
        plan.set_engine(config, config.burn_in + data.n_volumes * self.tr, self.dt, self.tr)
        plan.spread_restarts(config.restart_spread, generator)
        params = [p for p in plan.simulator.parameters() if p.requires_grad]
        if not params:
            raise ValueError("no parameter is trainable: set trainable: true on at least one "
                             "parameter in the model config")
        opt = optimizer(params)
        self.state = TrainState(plan.simulator, opt,
                                scheduler(opt) if scheduler is not None else None,
                                generator, best={sid: s * config.restarts
                                                 for s, sid in enumerate(data.ids)})
        self.filter = SimulatedBoldFilter(self.tr, **data.filter_kwargs)
        self.runner = BatchRunner(plan, data, objective, config, self.dt, self.filter,
                                  self.spec.feedback_inhibition)
        scorer = lambda targets, n: Evaluator(  # noqa: E731
            plan.share_of(targets), self.tr, objective.fcd_window, objective.fcd_step,
            config.eval_seeds, fcd_segment=n)
        self.evaluator = scorer(data.test_targets, data.n_held_out)  # the held-out part
        self.validator = None if data.val_targets is None else scorer(data.val_targets,
                                                                     data.n_val)
        self.split = {"train_fraction": config.train_fraction,
                      "val_fraction": config.val_fraction, "split_gap": config.split_gap,
                      "preprocessing": (None if preprocessing is None else
                                        dataclasses.asdict(preprocessing))}
        self.last_eval: dict[str, Any] | None = None
        self.recovery = Recovery(self.state, config.max_divergences, config.divergence_lr_factor,
                                 plan.elements, plan.rows, data.cohort.labels)
        self.signals = SignalGuard()
        self._saved_epoch: int | None = None
        if config.resume:
            self._resume(config.resume)
        self.hooks("on_setup_end", self)

    @property
    def simulator(self) -> BoldSimulator:
        """The model this process fits (its share of the batch)."""
        return self.state.model

    @property
    def handed_over(self) -> str:
        """The checkpoint the run hands over (what ``load_fitted(run_dir)`` returns)."""
        return "last.pt" if self.validator is None else "best.pt"

    def simulate(self, n_volumes: int, dt: float, generator: torch.Generator,
                 simulator: BoldSimulator | None = None) -> Tensor:
        """Filtered BOLD (B, T, N) of ``simulator`` (default: the trainer's)."""
        return self.runner.simulate(simulator or self.simulator, n_volumes, dt, generator)

    # -- one step --------------------------------------------------------------------------------
    def step(self) -> dict[str, float]:
        """One optimiser step; returns the logged scalars.

        Raises:
            StepDiverged: the simulation, the loss, a gradient or a parameter became NaN/inf; the
                parameters may already have moved (:meth:`fit` goes back to the last good state).
        """
        st, plan = self.state, self.plan
        self.hooks("on_step_start", self)
        st.model.train()
        st.optimizer.zero_grad(set_to_none=True)
        before = st.snapshot()
        total, parts, loss = plan.agreed(lambda: self.runner.forward_backward(st.generator))
        params = [p for g in st.optimizer.param_groups for p in g["params"]]
        plan.all_reduce_gradients()  # every rank now holds the whole batch's gradient
        plan.agreed(lambda: require_finite(st.model, lambda p: p.grad,
                                           "the gradient is NaN/inf for {}"))
        self.recovery.good = before  # this state simulated and differentiated to finite numbers
        lb = total.detach()
        st.element_loss = lb if st.element_loss is None else 0.7 * st.element_loss + 0.3 * lb
        grad_norm = plan.clip(params, self.cfg.clip_grad)
        st.optimizer.step()
        if st.scheduler is not None:
            st.scheduler.step()
        plan.agreed(lambda: require_finite(st.model, lambda p: p, "the optimiser step made {} "
                                           "NaN/inf"))
        st.epoch += 1
        mean_loss, means = plan.batch_means(loss, parts)
        row = {"epoch": st.epoch, "loss": mean_loss, "grad_norm": float(grad_norm),
               "lr": st.optimizer.param_groups[0]["lr"], **{f"loss/{k}": v
                                                            for k, v in means.items()}}
        if "fc_corr" in means:
            row["fc_similarity"] = 1 - row["loss/fc_corr"]
        self.hooks("on_step_end", self, row)
        return row

    # -- evaluation ------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, seeds: int | None = None, part: str = "held_out") -> dict[str, Any]:
        """Scores of ``part`` (``"validation"`` or ``"held_out"``) per element, averaged over
        noise seeds, and the best restart of each subject: the lowest training loss (before any
        step, the best validation score, or the first restart: never the held-out score)."""
        self.hooks("on_evaluation_start", self, part)
        self.simulator.eval()
        validation = part == "validation"
        evaluator = self.validator if validation else self.evaluator
        n_volumes = self.data.n_val_volumes if validation else self.data.n_eval_volumes
        if seeds is not None and seeds != evaluator.seeds:
            evaluator = evaluator.replace(seeds=seeds)
        ev = self.plan.gather_evaluation(self.plan.agreed(
            lambda: self.runner.score(evaluator, n_volumes, self.eval_dt)))
        # held out: the restarts already chosen
        best = self._restarts(-ev.score) if validation else self.state.best
        self.last_eval = {"epoch": self.state.epoch, "part": part, "best": best,
                          **summarize(ev, best, self.data.ids, self.cfg.restarts,
                                      None if validation else self.data.baselines),
                          "fc_sim": ev.fc, "fcd_sim": ev.fcd}
        self.hooks("on_evaluation_end", self, part, self.last_eval)
        return self.last_eval

    def _restarts(self, fallback: Tensor | None = None) -> dict[str, int]:
        """The best restart of each subject: the lowest training loss (a running average), or
        before any step the lowest ``fallback`` (else the current choice)."""
        loss = self.state.element_loss
        rank = self.plan.gather_rows(loss) if loss is not None else fallback
        if rank is None:
            return dict(self.state.best)
        return best_restarts(rank, self.data.ids, self.cfg.restarts)

    def _validate(self, row: dict[str, float], final: bool = False) -> None:
        """Score the validation part; a better score than any before (or, at the end, the first
        score of a resumed run that has none) makes this state the selected one, ``best.pt``."""
        st = self.state
        ev = self.evaluate(part="validation")
        row.update({f"eval/{k}": v for k, v in ev["mean"].items()})
        st.best = ev["best"]
        if ev["score"] > st.selected_score or final and st.selected is None:
            st.select(ev["score"])
            self.save("best.pt")
        m = ev["mean"]
        log.info("epoch %d: validation FC similarity %.3f (Fisher %.3f), FCD KS %s", st.epoch,
                 m["fc_similarity"], m["fc_similarity_fisher"],
                 f"{m['fcd_ks']:.3f}" if "fcd_ks" in m else "n/a")

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
        cfg, st = self.cfg, self.state
        start = time.time()
        bar = progress(cfg.epochs, cfg.progress and self.plan.main, "fit", "epoch",
                       initial=st.epoch, leave=True)
        log.info("fitting %d subjects x %d restarts (%d regions) for %d epochs on %s",
                 len(self.data.ids), cfg.restarts, self.data.train_batch.weights.shape[-1],
                 cfg.epochs, self.device)
        self.hooks("on_fit_start", self)
        try:
            with self.signals.active():
                self._run_epochs(bar)
                self.save("last.pt")
                with st.selection_installed():
                    result = self.export(time.time() - start)
                st.finished = True
                self.save("last.pt")
        except Interrupted as err:
            log.warning("%s during epoch %d: %s", err.signal_name, st.epoch + 1,
                        f"checkpoints/last.pt holds epoch {self._saved_epoch}; continue with "
                        f"trainer.resume={self.outputs.checkpoints / 'last.pt'}"
                        if self._saved_epoch is not None else
                        "no epoch was completed, so there is nothing to resume")
            raise
        finally:
            if bar is not None:
                bar.close()
            self.hooks("on_fit_end", self)
        return result

    def _run_epochs(self, bar: Any) -> None:
        """Steps to ``trainer.epochs``, then the final evaluation; recovers from divergence."""
        cfg, st = self.cfg, self.state
        while True:
            while st.epoch < cfg.epochs:
                try:
                    row = self.step()
                    evaluated = bool(cfg.eval_every and st.epoch % cfg.eval_every == 0
                                     and st.epoch < cfg.epochs)
                    if evaluated:
                        self._validate(row)
                except (StepDiverged, SimulationDiverged) as err:
                    self._recover(err, "step" if isinstance(err, StepDiverged) else "evaluation")
                    if bar is not None:
                        bar.n = st.epoch
                        bar.refresh()
                    continue
                st.history.append(row)
                if evaluated:  # this state simulated finitely too
                    self.recovery.good = st.snapshot()
                self.hooks("on_epoch_end", self, row)
                self.save("last.pt")
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{row['loss']:.4f}",
                                    train_fc=f"{row.get('fc_similarity', float('nan')):.3f}")
            row = dict(st.history[-1]) if st.history else {"epoch": st.epoch}
            try:
                if self.validator is not None:  # the final parameters are a candidate too
                    self._validate(row, final=True)
                else:
                    st.best = self._restarts()
                with st.selection_installed():  # the held-out part, scored once
                    self.evaluate()
            except SimulationDiverged as err:
                self._recover(err, "evaluation")
                continue
            if st.history and self.validator is not None:
                st.history[-1] = row
                self.hooks("on_final_validation", self, row)
            return

    def _recover(self, err: StepDiverged | SimulationDiverged, where: str) -> None:
        """Back to the last good state (:class:`~brainfit.fit.recovery.Recovery`), or stop with
        that state in ``checkpoints/last.pt``."""
        stop = self.recovery.recover(err, where)
        if stop is not None:
            if self.recovery.good is not None:
                self.save("last.pt")
            raise stop

    # -- checkpoints -----------------------------------------------------------------------------
    def checkpoint(self) -> dict[str, Any]:
        """The checkpoint of the current state, the whole batch's (collective)."""
        data, cfg = self.data, self.cfg
        run = {"brainfit_version": brainfit.__version__, "config": self.run_config,
               "data": {"name": data.cohort.name, "ids": data.ids, "checksums": data.checksums,
                        "split": self.split},
               "elements": self.plan.elements, "maps": self.plan.maps,
               "meta": {"tr": self.tr, "dt": self.dt, "eval_dt": self.eval_dt,
                        "burn_in": cfg.burn_in, "chunk": cfg.chunk, "n_volumes": data.n_volumes,
                        "n_eval_volumes": data.n_eval_volumes, "labels": data.cohort.labels,
                        "restarts": cfg.restarts, "filter": data.filter_kwargs,
                        "eval_seed": EVAL_SEED}}
        return self.state.checkpoint(run, self.plan)

    def save(self, name: str) -> Path:
        """Write a checkpoint atomically, only if every parameter is finite; a SIGTERM/SIGINT
        that arrives meanwhile is acted on once the file is whole."""
        self.hooks("on_save_start", self, name)
        with self.signals.deferred():
            ckpt = self.checkpoint()  # in a distributed fit, every rank takes part
            path = (self.outputs.save(ckpt, name) if self.plan.main
                    else self.outputs.checkpoints / name)
        if name == "last.pt":
            self._saved_epoch = self.state.epoch
        self.hooks("on_checkpoint_saved", self, name, path)
        self.signals.raise_pending()
        return path

    def _resume(self, path: str | Path) -> None:
        """Continue the checkpoint at ``path`` (already checked to be this model and data).

        Settings changed since the checkpoint are logged; the optimiser's and scheduler's
        hyper-parameters come from this config (:meth:`~brainfit.fit.state.TrainState.resume`).
        The random state continues from the checkpoint, so ``seed`` has no effect on a resumed
        fit.

        Raises:
            ValueError: ``trainer.epochs`` does not go beyond the checkpoint's epoch.
        """
        ckpt = self.outputs.load_for_resume(path, self.run_config, self.data.checksums,
                                            self.plan.elements, self.split)
        check_epochs_left(ckpt, self.cfg.epochs, path)
        changed = changed_settings(ckpt["config"], self.run_config, ignore=("trainer.resume",))
        if changed:
            log.info("resuming %s with changed settings: %s", path,
                     ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items()))
        self.state.resume(ckpt, self.plan, changed)
        self._saved_epoch = self.state.epoch
        log.info("resumed from %s at epoch %d", path, self.state.epoch)

    # -- exports ---------------------------------------------------------------------------------
    def export(self, elapsed: float) -> dict[str, Any]:
        """fitted_params.csv, metrics.json, simulated_fc.npz and (callbacks) figures."""
        self.hooks("on_export_start", self)
        st, ev = self.state, self.last_eval
        result = {
            "held_out": ev["subjects"], "mean": ev["mean"], "checkpoint": self.handed_over,
            "selected_epoch": st.epoch if st.selected is None else st.selected["epoch"],
            "best_epoch_score": None if st.selected is None else st.selected_score,
            "epochs": st.epoch, "fit_seconds": elapsed, "device": str(self.device),
            "n_subjects": len(self.data.ids), "restarts": self.cfg.restarts, "tr": self.tr,
        }
        whole = self.plan.whole_simulator()  # collective: every rank has reached this point
        exported = None if not self.plan.main else self.outputs.export(
            result, whole, ev, self.data, self.plan.elements, st.best, st.history)
        self.hooks("on_export_end", self, exported)
        return result
