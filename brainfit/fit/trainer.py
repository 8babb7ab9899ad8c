"""The cohort trainer: simulate the batch -> BOLD -> loss -> backward -> clip -> step -> log.

One batch element is one (subject, restart) pair: element ``b = s * R + r`` is restart r of subject
s. Parameters of group scope (``global``, ``regional``, ``map``) are shared by the whole batch;
``subject`` and ``subject_regional`` ones are one per element, so the cohort and its restarts are
fitted in the same simulation. The best restart of each subject is the one with the lowest training
loss (a running average over epochs), so the held-out part stays untouched by model selection.

The trainer runs the loop and owns its state; the pieces it wires together each have their own
module: the data and targets (:mod:`brainfit.fit.targets`), the held-out scores
(:mod:`brainfit.fit.evaluator`) and the run directory (:mod:`brainfit.fit.outputs`).
"""

from __future__ import annotations

import contextlib
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
from brainfit import metrics
from brainfit.data import Cohort, Preprocessing
from brainfit.fit import memory
from brainfit.fit.build import Components
from brainfit.fit.evaluator import EVAL_SEED, Evaluator
from brainfit.fit.outputs import RunOutputs
from brainfit.fit.spec import COMPILE_STEPS, TrainerConfig, build_simulator
from brainfit.fit.targets import BASELINES, FitData
from brainfit.losses import Objective, SimulatedBoldFilter
from brainfit.runtime import FitDiverged, SimulationDiverged, progress

log = logging.getLogger("brainfit.fit")

__all__ = ["EVAL_SEED", "FitDiverged", "Trainer"]


class Trainer:
    """Fits a cohort.

    Args:
        cohort: the (preprocessed) cohort; subjects need equal N, TR and session length.
        components: the network model, coupling factory and BOLD-head factory
            (:func:`brainfit.fit.build.components_from_config`).
        objective: the loss.
        optimizer: factory ``params -> torch.optim.Optimizer``.
        config: the trainer settings.
        out_dir: where checkpoints, tables, figures and logs go.
        scheduler: factory ``optimizer -> LR scheduler``, or None.
        seed: seeds every random number of the run.
        device, dtype: where and in what precision to run.
        preprocessing: the data's preprocessing, mirrored on simulated BOLD.
        run_config: the resolved run config stored in checkpoints (for resume / load_fitted).
    """

    def __init__(self, cohort: Cohort, components: Components, objective: Objective,
                 optimizer: Callable, config: TrainerConfig, out_dir: str | Path, *,
                 scheduler: Callable | None = None, seed: int = 0,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 preprocessing: Preprocessing | None = None,
                 run_config: dict[str, Any] | None = None) -> None:
        self.cfg, self.objective, self.spec = config, objective, components.spec
        self.dt = config.dt or self.spec.dt
        self.eval_dt = config.eval_dt or self.dt
        self.device, self.dtype = torch.device(device), dtype
        self.outputs = RunOutputs(out_dir)
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
        self.simulator = build_simulator(
            self.spec, components.coupling, components.bold, rep(data.train_batch.weights),
            rep(data.train_batch.lengths), self.maps).to(device=self.device, dtype=self.dtype)
        self.elements = [(sid, r) for sid in self.ids for r in range(R)]
        self._set_engine()
        self._spread_restarts()
        params = [p for p in self.simulator.parameters() if p.requires_grad]
        if not params:
            raise ValueError("no parameter is trainable: set trainable: true on at least one "
                             "parameter in the model config")
        self.optimizer = optimizer(params)
        self.scheduler = scheduler(self.optimizer) if scheduler is not None else None
        self.filter = SimulatedBoldFilter(self.tr, **data.filter_kwargs)
        self.evaluator = Evaluator(data.test_targets, self.tr, objective.fcd_window,
                                   objective.fcd_step, config.eval_seeds)
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.best = {sid: self.ids.index(sid) * R for sid in self.ids}
        self.best_score = -math.inf
        self.element_loss: Tensor | None = None  # running average of each element's loss
        self.last_eval: dict[str, Any] | None = None
        if config.resume:
            self._resume(config.resume)

    @property
    def score_name(self) -> str:
        return self.data.score_name

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
                    raw = pset.raw[name]
                    noise = torch.randn(raw.shape, generator=self.generator, device=self.device,
                                        dtype=raw.dtype) * self.cfg.restart_spread
                    first = (torch.arange(raw.shape[0], device=self.device) % R == 0)
                    noise[first] = 0
                    with torch.no_grad():
                        raw.add_(noise)

    def _set_engine(self) -> None:
        """``trainer.engine`` and ``trainer.compile`` (``auto``: compile long simulations)."""
        cfg, net = self.cfg, self.simulator.network
        net.engine = cfg.engine
        steps = (cfg.burn_in + self.data.n_volumes * self.tr) * 1000.0 / self.dt
        net.compile = bool(steps >= COMPILE_STEPS if cfg.compile == "auto" else cfg.compile)
        if net.compile and cfg.engine == "fast":
            log.info("engine: fast, compiled (%d steps a simulation; the first one compiles)",
                     steps)
        need = memory.training_step_bytes(
            net, len(self.elements), self.dt, steps * self.dt / 1000.0, self.simulator.bold.dt,
            cfg.chunk, cfg.checkpoint_chunks)
        log.info("memory: about %.2f GiB per training step (%s engine)", need / 2**30,
                 cfg.engine)
        memory.check_fits(need, memory.available_bytes(self.device), cfg.engine,
                          cfg.checkpoint_chunks)

    # -- one step --------------------------------------------------------------------------------
    def simulate(self, n_volumes: int, dt: float, generator: torch.Generator) -> Tensor:
        cfg = self.cfg
        with self._tune_feedback_inhibition():
            y = self.simulator(n_volumes, self.tr, dt, burn_in=cfg.burn_in, chunk=cfg.chunk,
                               generator=generator, checkpoint=cfg.checkpoint_chunks,
                               truncate=cfg.truncate)
        return self.filter(y)

    @contextlib.contextmanager
    def _tune_feedback_inhibition(self) -> Iterator[None]:
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
        net = self.simulator.network
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

    def prior_values(self) -> dict[str, tuple[Any, Tensor]]:
        out = {}
        prefixes = {"network.model.params": "", "network.params": "",
                    "network.coupling.params": "coupling.", "network.noise.params": "noise.",
                    "bold.params": "bold."}
        for mod_name, module in self.simulator.named_modules():
            if mod_name in prefixes:
                for name, spec in module.specs.items():
                    out[prefixes[mod_name] + name] = (spec, module.raw[name])
        return out

    def step(self) -> dict[str, float]:
        """One optimiser step; returns the logged scalars."""
        cfg = self.cfg
        self.simulator.train()
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        parts_sum: dict[str, Tensor] = {}
        try:
            for _ in range(cfg.noise_realisations):
                y = self.simulate(self.data.n_volumes, self.dt, self.generator)
                loss_b, parts = self.objective(y, self.tr, self.data.targets,
                                               self.prior_values())
                total = total + loss_b / cfg.noise_realisations
                for k, v in parts.items():
                    parts_sum[k] = parts_sum.get(k, 0) + v.detach() / cfg.noise_realisations
        except SimulationDiverged as err:
            raise FitDiverged(f"epoch {self.epoch + 1}: {err}. The last good checkpoint is kept; "
                              f"lower optim.lr or tighten the parameter bounds") from err
        conn = self.simulator.network.connectivity
        if conn is not None and conn.trainable:  # its prior: near the SC, subjects near the group
            penalty = conn.penalty()
            total = total + penalty
            parts_sum["connectivity_prior"] = penalty.detach()
        loss = total.mean()
        if torch.isfinite(loss):
            lb = total.detach()
            self.element_loss = lb if self.element_loss is None else \
                0.7 * self.element_loss + 0.3 * lb
        if not torch.isfinite(loss):
            raise FitDiverged(f"epoch {self.epoch + 1}: the loss is {loss.item()}; the last good "
                              f"checkpoint is kept. Lower optim.lr or tighten parameter bounds")
        loss.backward()
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        grads = [p.grad for p in params if p.grad is not None]
        if any(not torch.isfinite(g).all() for g in grads):
            raise FitDiverged(f"epoch {self.epoch + 1}: a gradient is NaN/inf; the last good "
                              f"checkpoint is kept. Try trainer.clip_grad, a smaller optim.lr, "
                              f"or trainer.truncate")
        gnorm = torch.nn.utils.clip_grad_norm_(params, cfg.clip_grad or float("inf"))
        self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        if any(not torch.isfinite(p).all() for p in params):
            raise FitDiverged(f"epoch {self.epoch + 1}: a parameter became NaN/inf after the "
                              f"optimiser step; the last good checkpoint is kept")
        self.epoch += 1
        row = {"epoch": self.epoch, "loss": loss.item(), "grad_norm": float(gnorm),
               "lr": self.optimizer.param_groups[0]["lr"]}
        row.update({f"loss/{k}": float(v.mean()) for k, v in parts_sum.items()})
        if "fc_corr" in parts_sum:
            row["fc_similarity"] = 1 - row["loss/fc_corr"]
        return row

    # -- evaluation ------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, seeds: int | None = None) -> dict[str, Any]:
        """Held-out scores per element, averaged over noise seeds; picks the best restarts."""
        self.simulator.eval()
        evaluator = self.evaluator
        if seeds is not None and seeds != evaluator.seeds:
            evaluator = Evaluator(self.data.test_targets, self.tr, evaluator.fcd_window,
                                  evaluator.fcd_step, seeds)
        ev = evaluator(self._eval_simulation)
        R = self.cfg.restarts
        score = ev.score
        train_loss = self.element_loss if self.element_loss is not None else -score
        best = {sid: s * R + int(train_loss[s * R:(s + 1) * R].argmin()) for s, sid in
                enumerate(self.ids)}
        per_subject = {}
        for sid in self.ids:
            b = best[sid]
            per_subject[sid] = {k: float(v[b]) for k, v in ev.scores.items()}
            per_subject[sid]["restart"] = b % R
            per_subject[sid].update(self.data.baselines[sid])
        mean = {k: float(np.mean([p[k] for p in per_subject.values()]))
                for k in next(iter(per_subject.values())) if k != "restart"}
        self.last_eval = {"epoch": self.epoch, "best": best, "subjects": per_subject,
                          "mean": mean, "score": float(np.mean([score[b] for b in best.values()])),
                          "fc_sim": ev.fc}
        return self.last_eval

    def _eval_simulation(self, seed: int) -> Tensor:
        g = torch.Generator(device=self.device).manual_seed(seed)
        return self.simulate(self.data.n_eval_volumes, self.eval_dt, g)

    # -- the loop --------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Run the remaining epochs, evaluate, save; returns the final metrics."""
        cfg = self.cfg
        self.outputs.open_log()
        start = time.time()
        bar = progress(cfg.epochs, cfg.progress, "fit", "epoch", initial=self.epoch, leave=True)
        log.info("fitting %d subjects x %d restarts (%d regions) for %d epochs on %s",
                 len(self.ids), cfg.restarts, self.data.train_batch.weights.shape[-1],
                 cfg.epochs, self.device)
        while self.epoch < cfg.epochs:
            row = self.step()
            if cfg.eval_every and self.epoch % cfg.eval_every == 0 and self.epoch < cfg.epochs:
                self._evaluate_and_keep_best(row)
            self.history.append(row)
            self.outputs.log(row, self.simulator)
            self.save("last.pt")
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{row['loss']:.4f}",
                                r=f"{row.get('fc_similarity', float('nan')):.3f}")
        if bar is not None:
            bar.close()
        row = dict(self.history[-1]) if self.history else {"epoch": self.epoch}
        self._evaluate_and_keep_best(row, final=True)
        if self.history:
            self.history[-1] = row
            self.outputs.log(row, self.simulator)
        self.save("last.pt")
        result = self.export(time.time() - start)
        self.outputs.close_log()
        return result

    def _evaluate_and_keep_best(self, row: dict[str, float], final: bool = False) -> None:
        ev = self.evaluate()
        row.update({f"eval/{k}": v for k, v in ev["mean"].items()})
        self.best = ev["best"]
        if ev["score"] > self.best_score or final and not self.outputs.has("best.pt"):
            self.best_score = ev["score"]
            self.save("best.pt")
        m = ev["mean"]
        log.info("epoch %d: %s %.3f (Fisher %.3f), FCD KS %s; baselines: %s", self.epoch,
                 self.score_name, m["fc_similarity"], m["fc_similarity_fisher"],
                 f"{m['fcd_ks']:.3f}" if "fcd_ks" in m else "n/a",
                 ", ".join(f"{name} {m[k]:.3f}" for k, name in BASELINES.items() if k in m))

    # -- state -----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        data = self.data
        return {
            "brainfit_version": brainfit.__version__,
            "epoch": self.epoch,
            "config": self.run_config,
            "model_state": self.simulator.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": {"generator": self.generator.get_state(), "torch": torch.get_rng_state(),
                    "numpy": _numpy_rng_state(), "python": random.getstate()},
            "data": {"name": data.cohort.name, "ids": self.ids, "checksums": data.checksums},
            "elements": self.elements,
            "best": self.best,
            "best_score": self.best_score,
            "element_loss": self.element_loss,
            "history": self.history,
            "maps": self.maps,
            "meta": {"tr": self.tr, "dt": self.dt, "eval_dt": self.eval_dt,
                     "burn_in": self.cfg.burn_in, "chunk": self.cfg.chunk,
                     "n_volumes": data.n_volumes, "n_eval_volumes": data.n_eval_volumes,
                     "labels": data.cohort.labels, "restarts": self.cfg.restarts,
                     "filter": data.filter_kwargs, "eval_seed": EVAL_SEED},
        }

    def save(self, name: str) -> Path:
        """Write a checkpoint atomically, only if every parameter is finite."""
        return self.outputs.save(self.state(), name)

    def _resume(self, path: str | Path) -> None:
        ckpt = self.outputs.load_for_resume(path, self.run_config, self.data.checksums,
                                            self.elements)
        self.simulator.load_state_dict(ckpt["model_state"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt["scheduler"] is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        rng = ckpt["rng"]
        self.generator.set_state(rng["generator"])
        torch.set_rng_state(rng["torch"])
        _set_numpy_rng_state(rng["numpy"])
        random.setstate(rng["python"])
        self.epoch = int(ckpt["epoch"])
        self.history = list(ckpt["history"])
        self.best = dict(ckpt["best"])
        self.best_score = float(ckpt.get("best_score", -math.inf))
        self.element_loss = ckpt.get("element_loss")
        if self.element_loss is not None:
            self.element_loss = self.element_loss.to(self.device)
        log.info("resumed from %s at epoch %d", path, self.epoch)

    # -- exports ---------------------------------------------------------------------------------
    def export(self, elapsed: float) -> dict[str, Any]:
        """fitted_params.csv, metrics.json, simulated_fc.npz and figures."""
        ev, data, R = self.last_eval, self.data, self.cfg.restarts
        result = {
            "held_out": ev["subjects"],
            "mean": ev["mean"],
            "best_epoch_score": self.best_score,
            "epochs": self.epoch,
            "fit_seconds": elapsed,
            "device": str(self.device),
            "n_subjects": len(self.ids),
            "restarts": R,
            "tr": self.tr,
        }
        best = list(self.best.values())
        fc_sim = ev["fc_sim"][best]
        rows = self.outputs.export(result, self.simulator, self.elements, self.best,
                                   data.cohort.labels, fc_sim, EVAL_SEED, data.n_eval_volumes)
        net = self.simulator.network
        if net.connectivity is not None:
            with torch.no_grad():
                self.outputs.export_connectivity(
                    self.ids, net.weights.expand(len(self.elements), -1, -1)[best],
                    net.coupling_weights.expand(len(self.elements), -1, -1)[best],
                    data.cohort.labels)
        tt = data.test_targets
        per_subject = lambda t: {sid: t[s * R].cpu().numpy()  # noqa: E731
                                 for s, sid in enumerate(self.ids)}
        self.outputs.figures(
            rows, per_subject(tt.fc),
            {sid: fc_sim[s].cpu().numpy() for s, sid in enumerate(self.ids)},
            ev["subjects"], self.history, data.cohort.labels,
            fcd=None if tt.fcd is None else lambda: (per_subject(tt.fcd),
                                                     self._simulated_fcd(best)))
        return result

    @torch.no_grad()
    def _simulated_fcd(self, best: list[int]) -> dict[str, np.ndarray]:
        """FCD values of the best restarts, first evaluation seed."""
        y = self._eval_simulation(EVAL_SEED)
        fcd = metrics.fcd_values(y, self.tr, self.objective.fcd_window, self.objective.fcd_step)
        return {sid: fcd[best[s]].cpu().numpy() for s, sid in enumerate(self.ids)}


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
