"""The cohort trainer: simulate the batch -> BOLD -> loss -> backward -> clip -> step -> log.

One batch element is one (subject, restart) pair: element ``b = s * R + r`` is restart r of subject
s. Parameters of group scope (``global``, ``regional``, ``map``) are shared by the whole batch;
``subject`` and ``subject_regional`` ones are one per element, so the cohort and its restarts are
fitted in the same simulation. The best restart of each subject is the one with the lowest training
loss (a running average over epochs), so the held-out part stays untouched by model selection.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

import brainfit
from brainfit import metrics
from brainfit.checkpoint import (
    array_checksum,
    fitted_rows,
    load_checkpoint,
    save_atomic,
    write_csv,
)
from brainfit.data import Cohort, Preprocessing, sc_fc_baseline
from brainfit.fit import memory
from brainfit.fit.spec import COMPILE_STEPS, NetworkSpec, TrainerConfig, build_simulator
from brainfit.losses import Objective, SimulatedBoldFilter, Targets, normalized_psd
from brainfit.network import SimulationDiverged

log = logging.getLogger("brainfit.fit")

#: noise seed of the first evaluation realisation (the one exported in simulated_fc.npz)
EVAL_SEED = 10_000


class FitDiverged(FloatingPointError):
    """The loss, a gradient or a parameter became NaN/inf; no checkpoint was overwritten."""


class Trainer:
    """Fits a cohort.

    Args:
        cohort: the (preprocessed) cohort; subjects need equal N, TR and session length.
        spec: the network model.
        coupling: coupling factory ``(n_regions, n_batch) -> Coupling``.
        bold: BOLD-head factory ``(n_regions, n_batch) -> BalloonWindkessel``.
        objective: the loss.
        optimizer: factory ``params -> torch.optim.Optimizer``.
        scheduler: factory ``optimizer -> LR scheduler`` or None.
        config: the trainer settings.
        out_dir: where checkpoints, tables, figures and logs go.
        seed: seeds every random number of the run.
        device, dtype: where and in what precision to run.
        preprocessing: the data's preprocessing, mirrored on simulated BOLD.
        run_config: the resolved run config stored in checkpoints (for resume / load_fitted).
    """

    def __init__(self, cohort: Cohort, spec: NetworkSpec, coupling: Callable, bold: Callable,
                 objective: Objective, optimizer: Callable, scheduler: Callable | None,
                 config: TrainerConfig, out_dir: str | Path, seed: int = 0,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                 preprocessing: Preprocessing | None = None,
                 run_config: dict[str, Any] | None = None) -> None:
        self.cfg, self.objective, self.spec = config, objective, spec
        self.dt = config.dt or spec.dt
        self.eval_dt = config.eval_dt or self.dt
        self.device, self.dtype = torch.device(device), dtype
        self.out = Path(out_dir)
        self.seed = int(seed)
        self.run_config = run_config or {}
        _seed_everything(self.seed)
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        self.cohort = cohort
        self._prepare_data(cohort, preprocessing)
        R = config.restarts
        rep = lambda t: None if t is None else t.repeat_interleave(R, dim=0)  # noqa: E731
        self.maps = {k: rep(v) for k, v in self.train_batch.maps.items()}
        self.simulator = build_simulator(
            spec, coupling, bold, rep(self.train_batch.weights), rep(self.train_batch.lengths),
            self.maps).to(device=self.device, dtype=self.dtype)
        self.elements = [(sid, r) for sid in self.ids for r in range(R)]
        self._set_engine()
        self._spread_restarts()
        params = [p for p in self.simulator.parameters() if p.requires_grad]
        if not params:
            raise ValueError("no parameter is trainable: set trainable: true on at least one "
                             "parameter in the model config")
        self.optimizer = optimizer(params)
        self.scheduler = scheduler(self.optimizer) if scheduler is not None else None
        self.filter_kwargs = self._filter_kwargs(preprocessing)
        self.filter = SimulatedBoldFilter(self.tr, **self.filter_kwargs)
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.best = {sid: self.ids.index(sid) * R for sid in self.ids}
        self.best_score = -math.inf
        self.element_loss: Tensor | None = None  # running average of each element's loss
        self.last_eval: dict[str, Any] | None = None
        self.writer = None
        if config.resume:
            self._resume(config.resume)

    # -- data ------------------------------------------------------------------------------------
    def _prepare_data(self, cohort: Cohort, preprocessing: Preprocessing | None) -> None:
        cfg, dev, dt = self.cfg, self.device, self.dtype
        self.ids = cohort.ids
        has_bold = all(s.bold is not None for s in cohort)
        if has_bold:
            train, test = cohort.split(cfg.train_fraction)
        else:  # precomputed targets: nothing to hold out
            train = test = cohort
        #: what evaluation scores, for the log
        self.score_name = ("held-out FC similarity" if has_bold else
                           "FC similarity to the targets (nothing held out)")
        self.train_batch = train.batch(device=dev, dtype=dt)
        self.test_batch = test.batch(device=dev, dtype=dt)
        trs = {s.tr for s in cohort if s.tr is not None}
        if len(trs) > 1:
            raise ValueError(f"subjects of one fit must share a TR, got {sorted(trs)}; fit "
                             f"them in separate runs (data.subjects=[...])")
        self.tr = trs.pop() if trs else 2.0
        self.targets = self._targets(self.train_batch, train)
        self.test_targets = self._targets(self.test_batch, test)
        T = self.train_batch.bold.shape[1] if has_bold else None
        sim_s = cfg.sim_seconds if cfg.sim_seconds is not None else (T or 0) * self.tr
        if sim_s <= 0:
            raise ValueError("trainer.sim_seconds must be set when the data have no BOLD")
        self.n_volumes = max(2, int(round(sim_s / self.tr)))
        self.n_eval_volumes = (self.test_batch.bold.shape[1] if has_bold else self.n_volumes)
        if cfg.eval_seconds is not None:
            self.n_eval_volumes = max(2, int(round(cfg.eval_seconds / self.tr)))
        if self.objective.needs_fcd:
            metrics.fcd_windows(self.n_volumes, self.tr, self.objective.fcd_window,
                                self.objective.fcd_step)
        self.checksums = {s.id: array_checksum([s.weights, s.lengths, s.bold, s.fc_target])
                          for s in cohort}
        self.baseline = sc_fc_baseline(test if has_bold else cohort)

    def _targets(self, batch, cohort: Cohort) -> Targets:
        R = self.cfg.restarts
        rep = lambda t: t.repeat_interleave(R, dim=0)  # noqa: E731
        obj = self.objective
        if batch.bold is not None:
            fc = metrics.fc(batch.bold)
            fcd = psd = None
            n_windows = _n_windows(batch.bold.shape[1], self.tr, obj)
            if n_windows >= 2:
                fcd = rep(metrics.fcd_values(batch.bold, self.tr, obj.fcd_window, obj.fcd_step))
            if obj.needs_psd:
                psd = rep(normalized_psd(batch.bold, self.tr, obj.psd_nperseg))
            return Targets(fc=rep(fc), fcd=fcd, psd=psd)
        fcd_hist = None
        if batch.fcd is not None:
            fcd_hist = [h for h in batch.fcd for _ in range(R)]
        return Targets(fc=rep(batch.fc), fcd_hist=fcd_hist)

    @staticmethod
    def _filter_kwargs(p: Preprocessing | None) -> dict[str, Any]:
        if p is None:
            return {"bandpass": False, "detrend": False, "zscore": True}
        return {"bandpass": p.bandpass, "low_hz": p.low_hz, "high_hz": p.high_hz,
                "order": p.filter_order, "detrend": p.detrend, "zscore": p.zscore}

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
        steps = (cfg.burn_in + self.n_volumes * self.tr) * 1000.0 / self.dt
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
        if self.spec.feedback_inhibition is not None:
            self._tune_feedback_inhibition()
        y = self.simulator(n_volumes, self.tr, dt, burn_in=cfg.burn_in, chunk=cfg.chunk,
                           generator=generator, checkpoint=cfg.checkpoint_chunks,
                           truncate=cfg.truncate)
        return self.filter(y)

    @torch.no_grad()
    def _tune_feedback_inhibition(self) -> None:
        """Deco 2014's FIC for the current G: J_i holding r_E at the target (no gradient)."""
        net = self.simulator.network
        if net.coupling.name != "linear":
            raise ValueError("feedback_inhibition assumes a linear coupling (coupling=linear)")
        rate = self.spec.feedback_inhibition
        s_star = net.model.target_gating(rate)
        c = net.params["G"] * net.weights.sum(-1) * s_star
        net.model.fit_feedback_inhibition(c.expand(net.n_batch, -1), target_rate=rate, apply=True)

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
                y = self.simulate(self.n_volumes, self.dt, self.generator)
                loss_b, parts = self.objective(y, self.tr, self.targets, self.prior_values())
                total = total + loss_b / cfg.noise_realisations
                for k, v in parts.items():
                    parts_sum[k] = parts_sum.get(k, 0) + v.detach() / cfg.noise_realisations
        except SimulationDiverged as err:
            raise FitDiverged(f"epoch {self.epoch + 1}: {err}. The last good checkpoint is kept; "
                              f"lower optim.lr or tighten the parameter bounds") from err
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
        cfg = self.cfg
        self.simulator.eval()
        dt = self.eval_dt
        tt = self.test_targets
        acc: dict[str, Tensor] = {}
        fcs = []
        for k in range(seeds or cfg.eval_seeds):
            g = torch.Generator(device=self.device).manual_seed(EVAL_SEED + k)
            y = self.simulate(self.n_eval_volumes, dt, g)
            fc = metrics.fc(y)
            fcs.append(fc)
            scores = {"fc_similarity": metrics.fc_similarity(fc, tt.fc),
                      "fc_similarity_fisher": metrics.fc_similarity(fc, tt.fc, fisher=True)}
            if _n_windows(y.shape[1], self.tr, self.objective) >= 2:
                sim_fcd = metrics.fcd_values(y, self.tr, self.objective.fcd_window,
                                             self.objective.fcd_step)
                if tt.fcd is not None:
                    scores["fcd_ks"] = metrics.ks_distance(sim_fcd, tt.fcd)
                elif tt.fcd_hist is not None:
                    scores["fcd_ks"] = torch.stack([
                        metrics.ks_distance_hist(sim_fcd[b], e, c)
                        for b, (e, c) in enumerate(tt.fcd_hist)])
            for name, v in scores.items():
                acc[name] = acc.get(name, 0) + v / (seeds or cfg.eval_seeds)
        score = acc["fc_similarity"] - acc.get("fcd_ks", 0)
        R = cfg.restarts
        train_loss = self.element_loss if self.element_loss is not None else -score
        best = {sid: s * R + int(train_loss[s * R:(s + 1) * R].argmin()) for s, sid in
                enumerate(self.ids)}
        per_subject = {}
        for s, sid in enumerate(self.ids):
            b = best[sid]
            per_subject[sid] = {k: float(v[b]) for k, v in acc.items()}
            per_subject[sid]["restart"] = b % R
            per_subject[sid]["sc_fc_r"] = float(self.baseline.r_sc[s])
            per_subject[sid]["log_sc_fc_r"] = float(self.baseline.r_log_sc[s])
        mean = {k: float(np.mean([p[k] for p in per_subject.values()]))
                for k in next(iter(per_subject.values())) if k != "restart"}
        self.last_eval = {"epoch": self.epoch, "best": best, "subjects": per_subject,
                          "mean": mean, "score": float(np.mean([score[b] for b in best.values()])),
                          "fc_sim": fcs[0]}
        return self.last_eval

    # -- the loop --------------------------------------------------------------------------------
    def fit(self) -> dict[str, Any]:
        """Run the remaining epochs, evaluate, save; returns the final metrics."""
        cfg = self.cfg
        (self.out / "checkpoints").mkdir(parents=True, exist_ok=True)
        self.writer = _tensorboard(self.out / "tensorboard")
        start = time.time()
        bar = _progress(range(self.epoch, cfg.epochs), cfg.progress, initial=self.epoch,
                        total=cfg.epochs)
        log.info("fitting %d subjects x %d restarts (%d regions) for %d epochs on %s",
                 len(self.ids), cfg.restarts, self.train_batch.weights.shape[-1], cfg.epochs,
                 self.device)
        for _ in bar:
            row = self.step()
            if cfg.eval_every and self.epoch % cfg.eval_every == 0 and self.epoch < cfg.epochs:
                self._evaluate_and_keep_best(row)
            self.history.append(row)
            self._log(row)
            self.save("last.pt")
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{row['loss']:.4f}",
                                r=f"{row.get('fc_similarity', float('nan')):.3f}")
        row = dict(self.history[-1]) if self.history else {"epoch": self.epoch}
        self._evaluate_and_keep_best(row, final=True)
        if self.history:
            self.history[-1] = row
            self._log(row)
        self.save("last.pt")
        elapsed = time.time() - start
        result = self.export(elapsed)
        if self.writer is not None:
            self.writer.close()
        return result

    def _evaluate_and_keep_best(self, row: dict[str, float], final: bool = False) -> None:
        ev = self.evaluate()
        row.update({f"eval/{k}": v for k, v in ev["mean"].items()})
        self.best = ev["best"]
        if ev["score"] > self.best_score or final and not (self.out / "checkpoints" /
                                                          "best.pt").exists():
            self.best_score = ev["score"]
            self.save("best.pt")
        log.info("epoch %d: %s %.3f (Fisher %.3f), FCD KS %s; SC-FC baseline "
                 "%.3f", self.epoch, self.score_name, ev["mean"]["fc_similarity"],
                 ev["mean"]["fc_similarity_fisher"],
                 f"{ev['mean']['fcd_ks']:.3f}" if "fcd_ks" in ev["mean"] else "n/a",
                 ev["mean"]["sc_fc_r"])

    def _log(self, row: dict[str, float]) -> None:
        if self.writer is None:
            return
        for k, v in row.items():
            if k != "epoch":
                self.writer.add_scalar(k, v, row["epoch"])
        for r in self.simulator.param_table():
            if r["trainable"] and r["region"] is None and r["batch"] in (None, 0):
                self.writer.add_scalar(f"params/{r['parameter']}", r["value"], row["epoch"])

    # -- state -----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "brainfit_version": brainfit.__version__,
            "epoch": self.epoch,
            "config": self.run_config,
            "model_state": self.simulator.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": {"generator": self.generator.get_state(), "torch": torch.get_rng_state(),
                    "numpy": np.random.get_state(), "python": random.getstate()},
            "data": {"name": self.cohort.name, "ids": self.ids, "checksums": self.checksums},
            "elements": self.elements,
            "best": self.best,
            "best_score": self.best_score,
            "element_loss": self.element_loss,
            "history": self.history,
            "maps": self.maps,
            "meta": {"tr": self.tr, "dt": self.dt, "eval_dt": self.eval_dt,
                     "burn_in": self.cfg.burn_in, "chunk": self.cfg.chunk,
                     "n_volumes": self.n_volumes, "n_eval_volumes": self.n_eval_volumes,
                     "labels": self.cohort.labels, "restarts": self.cfg.restarts,
                     "filter": self.filter_kwargs, "eval_seed": EVAL_SEED},
        }

    def save(self, name: str) -> Path:
        """Write a checkpoint atomically, only if every parameter is finite."""
        for k, v in self.simulator.state_dict().items():
            if v.is_floating_point() and not torch.isfinite(v).all():
                raise FitDiverged(f"refusing to save {name}: {k} is not finite")
        return save_atomic(self.state(), self.out / "checkpoints" / name)

    def _resume(self, path: str | Path) -> None:
        ckpt = load_checkpoint(path)
        mine, theirs = self.run_config, ckpt["config"]
        for group in ("model", "coupling", "bold"):
            if mine.get(group) != theirs.get(group):
                raise ValueError(f"cannot resume from {path}: it was fitted with a different "
                                 f"{group} config ({theirs.get(group)} vs {mine.get(group)})")
        if ckpt["data"]["checksums"] != self.checksums:
            raise ValueError(f"cannot resume from {path}: it was fitted on a different cohort or "
                             f"preprocessing (subjects {ckpt['data']['ids']} vs {self.ids}, or "
                             f"their data differ)")
        if ckpt["elements"] != [list(e) for e in self.elements] and \
                ckpt["elements"] != self.elements:
            raise ValueError(f"cannot resume from {path}: restarts differ")
        self.simulator.load_state_dict(ckpt["model_state"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        if self.scheduler is not None and ckpt["scheduler"] is not None:
            self.scheduler.load_state_dict(ckpt["scheduler"])
        rng = ckpt["rng"]
        self.generator.set_state(rng["generator"])
        torch.set_rng_state(rng["torch"])
        np.random.set_state(rng["numpy"])
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
        ev = self.last_eval
        labels = self.cohort.labels
        rows = fitted_rows(self.simulator, self.elements, self.best, labels)
        write_csv(rows, self.out / "fitted_params.csv")
        result = {
            "held_out": ev["subjects"],
            "mean": ev["mean"],
            "best_epoch_score": self.best_score,
            "epochs": self.epoch,
            "fit_seconds": elapsed,
            "device": str(self.device),
            "n_subjects": len(self.ids),
            "restarts": self.cfg.restarts,
            "tr": self.tr,
        }
        (self.out / "metrics.json").write_text(json.dumps(result, indent=2))
        best = list(self.best.values())
        fc_sim = ev["fc_sim"][best].cpu().numpy()
        np.savez(self.out / "simulated_fc.npz", fc=fc_sim, ids=np.array(self.ids),
                 seed=EVAL_SEED, n_volumes=self.n_eval_volumes)
        try:
            self._figures(rows, fc_sim)
        except Exception as err:  # noqa: BLE001 - figures must never lose a finished fit
            log.warning("could not draw figures: %s", err)
        return result

    def _figures(self, rows: list[dict[str, Any]], fc_sim: np.ndarray) -> None:
        from brainfit import plotting

        fig_dir = self.out / "figures"
        fig_dir.mkdir(exist_ok=True)
        tt = self.test_targets
        R = self.cfg.restarts
        emp = {sid: tt.fc[s * R].cpu().numpy() for s, sid in enumerate(self.ids)}
        sim = {sid: fc_sim[s] for s, sid in enumerate(self.ids)}
        scores = {sid: self.last_eval["subjects"][sid]["fc_similarity"] for sid in self.ids}
        plotting.plot_fc_comparison(emp, sim, scores, fig_dir / "fc_comparison.png")
        plotting.plot_loss_curves(self.history, fig_dir / "loss_curves.png")
        plotting.plot_parameters(rows, fig_dir / "fitted_parameters.png",
                                 labels=self.cohort.labels)
        if tt.fcd is not None:
            g = torch.Generator(device=self.device).manual_seed(EVAL_SEED)
            with torch.no_grad():
                y = self.simulate(self.n_eval_volumes, self.eval_dt, g)
                sim_fcd = metrics.fcd_values(y, self.tr, self.objective.fcd_window,
                                             self.objective.fcd_step)
            best = list(self.best.values())
            plotting.plot_fcd_histograms(
                {sid: tt.fcd[s * R].cpu().numpy() for s, sid in enumerate(self.ids)},
                {sid: sim_fcd[best[s]].cpu().numpy() for s, sid in enumerate(self.ids)},
                fig_dir / "fcd_histograms.png",
                ks={sid: self.last_eval["subjects"][sid].get("fcd_ks", float("nan"))
                    for sid in self.ids})


def _n_windows(n_samples: int, tr: float, obj: Objective) -> int:
    try:
        return metrics.fcd_windows(n_samples, tr, obj.fcd_window, obj.fcd_step)[2]
    except ValueError:
        return 0


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _tensorboard(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # pragma: no cover - tensorboard is a dependency
        log.warning("tensorboard is not installed; scalars are not logged")
        return None
    return SummaryWriter(log_dir=str(path))


def _progress(it, enabled: bool, initial: int = 0, total: int | None = None):
    if not enabled:
        return it
    from tqdm.auto import tqdm

    return tqdm(it, initial=initial, total=total, desc="fit", unit="epoch")
