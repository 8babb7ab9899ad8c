"""What a fit is fitted to, selected on and scored against, built once from a cohort.

:class:`FitData` cuts each session in time (:func:`brainfit.data.preprocess.split_sessions`): the
first ``train_fraction`` is the fitted part, the rest is held out; the last ``val_fraction`` of
the fitted part becomes the validation part, which is all that selection reads (the evaluations
every ``eval_every`` epochs and the choice of ``best.pt``). Each part is preprocessed on its own,
so nothing that is fitted or selected depends on the held-out volumes. It stacks the parts into
batches, computes their empirical observables repeated for each restart (batch element
``b = s * R + r``), and fixes the lengths of the simulations: training simulates
``trainer.sim_seconds`` (default: the fitted part's length), evaluation the scored part's length
(or ``trainer.eval_seconds``). A cohort of precomputed targets (no BOLD) has nothing to hold out:
it is fitted and scored against its targets.

Beside it: the lengths are checked before a fit starts by :mod:`brainfit.fit.lengths`, and the
baselines the scores are reported beside come from :mod:`brainfit.fit.baselines`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import Any

import torch

from brainfit import metrics
from brainfit.checkpoint import array_checksum
from brainfit.data import Cohort, Preprocessing, Subject
from brainfit.data.preprocess import SessionParts, preprocess, split_sessions
from brainfit.data.subject import CohortBatch
from brainfit.fit.baselines import fc_baselines, fcd_baseline, merge, others_mean
from brainfit.fit.lengths import Lengths, check_lengths, n_windows
from brainfit.losses import Objective, Targets, normalized_psd

log = logging.getLogger("brainfit.fit")

#: TR (s) assumed for a cohort of precomputed targets that names none
DEFAULT_TR = 2.0


@dataclass
class FitData:
    """The batches, targets and simulation lengths of a fit.

    Attributes:
        cohort: the whole (preprocessed) cohort.
        ids: subject ids, in batch order.
        tr: the cohort's TR, s.
        train_batch, test_batch: the fitted and held-out parts, one element per subject.
        targets, test_targets: their observables, one element per (subject, restart).
        val_batch, val_targets: the validation part and its observables (None without one).
        n_volumes: BOLD volumes simulated per training step.
        n_eval_volumes: BOLD volumes simulated per evaluation of the held-out part.
        n_held_out: volumes of each held-out part (None for precomputed targets): the length
            of recordings whose FCD an evaluation's FCD is compared with.
        n_val, n_val_volumes: volumes of each validation part, and simulated per validation
            (None without one).
        checksums: SHA-256 of each subject's arrays as loaded, before preprocessing (a resumed
            run or an evaluation must see the same data).
        baselines: per subject, what predicts its scored FC without a model
            (:func:`~brainfit.fit.baselines.fc_baselines`).
        score_name: what evaluation scores, for the log.
        filter_kwargs: the preprocessing mirrored on simulated BOLD
            (:class:`~brainfit.losses.SimulatedBoldFilter`).
    """

    cohort: Cohort
    ids: list[str]
    tr: float
    train_batch: CohortBatch
    test_batch: CohortBatch
    targets: Targets
    test_targets: Targets
    n_volumes: int
    n_eval_volumes: int
    n_held_out: int | None
    checksums: dict[str, str]
    baselines: dict[str, dict[str, float]]
    score_name: str
    filter_kwargs: dict[str, Any]
    val_batch: CohortBatch | None = None
    val_targets: Targets | None = None
    n_val: int | None = None
    n_val_volumes: int | None = None

    @classmethod
    def from_cohort(cls, cohort: Cohort, config: Any, objective: Objective,
                    preprocessing: Preprocessing | None = None,
                    device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32) -> FitData:
        """Split, preprocess, batch and summarise ``cohort`` for a fit with ``config`` (a
        ``TrainerConfig``).

        ``cohort`` is the data as loaded; ``preprocessing`` runs on each part of the sessions on
        its own (:func:`~brainfit.data.preprocess.split_sessions`). A cohort that was already
        preprocessed as whole sessions is split as it is, with a warning: its fitted part then
        depends on the held-out one.

        Raises:
            ValueError: subjects with different TRs, no simulation length for a cohort without
                BOLD, or lengths too short for an FC or the FCD of the objective
                (:func:`~brainfit.fit.lengths.check_lengths`).
        """
        has_bold = all(s.bold is not None for s in cohort)
        tr = _cohort_tr(cohort, has_bold)
        if has_bold:
            parts = session_parts(cohort, config, preprocessing, tr)
        else:  # precomputed targets: nothing to hold out (the weights are normalised)
            if preprocessing is not None and "preprocessing" not in cohort.info:
                cohort = preprocess(cohort, preprocessing)
            parts = SessionParts(cohort, None, cohort)
        train, val, test = parts.fit, parts.val, parts.test
        train_batch = train.batch(device=device, dtype=dtype)
        test_batch = test.batch(device=device, dtype=dtype)
        val_batch = None if val is None else val.batch(device=device, dtype=dtype)
        R = config.restarts
        T = train_batch.bold.shape[1] if has_bold else None
        sim_s = config.sim_seconds if config.sim_seconds is not None else (T or 0) * tr
        if sim_s <= 0:
            raise ValueError("trainer.sim_seconds must be set when the data have no BOLD")
        n_volumes = int(round(sim_s / tr))
        n_eval = test_batch.bold.shape[1] if has_bold else n_volumes
        n_val = n_val_sim = None if val_batch is None else val_batch.bold.shape[1]
        if config.eval_seconds is not None:  # every evaluation simulates this long
            n_eval = int(round(config.eval_seconds / tr))
            n_val_sim = None if n_val is None else n_eval
        # the fitted part's FCD as that of recordings as long as a training simulation
        targets = _shrunk(observed_targets(train_batch, tr, objective, R, fcd_segment=n_volumes),
                          config, has_bold and len(cohort) > 1)
        test_targets = observed_targets(test_batch, tr, objective, R, with_acf=False)
        val_targets = (None if val_batch is None else
                       observed_targets(val_batch, tr, objective, R, with_acf=False))
        fcd_of = lambda t: t is not None and (t.fcd is not None or t.fcd_hist is not None)  # noqa
        check_lengths(Lengths(
            tr=tr, n_volumes=n_volumes, n_eval=n_eval,
            fitted=T, held_out=test_batch.bold.shape[1] if has_bold else None,
            sim_seconds=config.sim_seconds, eval_seconds=config.eval_seconds,
            train_fraction=config.train_fraction,
            targets_fcd=fcd_of(targets), held_out_fcd=fcd_of(test_targets),
            validation=n_val, n_val_eval=n_val_sim, val_fcd=fcd_of(val_targets),
            val_fraction=config.val_fraction), objective)
        return cls(
            cohort=cohort, ids=cohort.ids, tr=tr, train_batch=train_batch, test_batch=test_batch,
            targets=targets, test_targets=test_targets,
            n_volumes=n_volumes, n_eval_volumes=n_eval,
            n_held_out=test_batch.bold.shape[1] if has_bold else None,
            checksums={s.id: subject_checksum(s) for s in cohort},
            baselines=merge(fc_baselines(train, test), fcd_baseline(
                train, test, tr, objective.fcd_window, objective.fcd_step)) if has_bold
            else fc_baselines(None, cohort),
            score_name=("held-out FC similarity" if has_bold else
                        "FC similarity to the targets (nothing held out)"),
            filter_kwargs=filter_kwargs(preprocessing),
            val_batch=val_batch, val_targets=val_targets, n_val=n_val,
            n_val_volumes=n_val_sim)


def _cohort_tr(cohort: Cohort, has_bold: bool) -> float:
    """The TR every subject shares (:data:`DEFAULT_TR` for targets that name none).

    Raises:
        ValueError: subjects with different TRs.
    """
    trs = {s.tr for s in cohort if s.tr is not None}
    if len(trs) > 1:
        raise ValueError(f"subjects of one fit must share a TR, got {sorted(trs)}; fit "
                         f"them in separate runs (data.subjects=[...])")
    if not trs and not has_bold:
        log.warning("the targets name no TR: TR = %g s is assumed for the simulated BOLD "
                    "(give data.tr)", DEFAULT_TR)
    return trs.pop() if trs else DEFAULT_TR


def _shrunk(targets: Targets, config: Any, possible: bool) -> Targets:
    """``targets`` with ``trainer.target_shrinkage`` applied to their FC (:func:`shrunk_fc`),
    when ``possible`` (two or more subjects with BOLD); else a warning if it was asked for."""
    if config.target_shrinkage > 0 and possible:
        return replace(targets, fc=shrunk_fc(targets.fc, config.restarts,
                                             config.target_shrinkage))
    if config.target_shrinkage > 0:
        log.warning("trainer.target_shrinkage = %g is not applied: it needs two or more "
                    "subjects with BOLD", config.target_shrinkage)
    return targets


def load_cohort(data_cfg: Any) -> tuple[Cohort, Preprocessing | None]:
    """The cohort of a ``data`` config (a Hydra node or the dict a checkpoint stores) as loaded,
    without preprocessing, and the preprocessing it names: a fit preprocesses each part of the
    sessions on its own (:func:`session_parts`)."""
    from brainfit.fit.build import instantiate

    node = data_cfg.get("preprocessing")
    return (instantiate(data_cfg, preprocessing=None),
            Preprocessing.coerce(instantiate(node)) if node else None)


def run_parts(config: Mapping[str, Any], cohort: Cohort, tr: float) -> SessionParts:
    """The parts of ``cohort``'s sessions (as loaded) that the run of ``config`` (its resolved
    config, as a checkpoint stores it) fitted, validated on and held out."""
    trainer = config["trainer"]
    split = SimpleNamespace(train_fraction=trainer["train_fraction"],
                            val_fraction=trainer.get("val_fraction", 0.0),
                            split_gap=trainer.get("split_gap", 0.0))
    node = config["data"].get("preprocessing")
    return session_parts(cohort, split, Preprocessing.coerce(node) if node else None, tr)


def session_parts(cohort: Cohort, config: Any, preprocessing: Preprocessing | None,
                  tr: float) -> SessionParts:
    """The fitted, validation and held-out parts of every session (``trainer.train_fraction``,
    ``trainer.val_fraction``, ``trainer.split_gap``), each preprocessed on its own; the one
    place a fit, a resumed fit and ``scripts/evaluate.py`` cut the data."""
    whole = cohort.info.get("preprocessing")
    if whole is not None:
        log.warning("the cohort was preprocessed as whole sessions before the split, so its "
                    "fitted part depends on the held-out part: load it with preprocessing=None "
                    "and give the preprocessing to the fit (Trainer(preprocessing=...)), as "
                    "scripts/train.py does")
    gap = int(math.ceil(config.split_gap / tr - 1e-9))
    return split_sessions(cohort, config.train_fraction, config.val_fraction, gap,
                          None if whole is not None else preprocessing)


def subject_checksum(subject: Subject) -> str:
    """SHA-256 of a subject's (preprocessed) weights, lengths, BOLD and FC target: what a
    checkpoint stores per subject, so that a resumed fit or an evaluation sees the same data."""
    return array_checksum([subject.weights, subject.lengths, subject.bold, subject.fc_target])


def shrunk_fc(fc: torch.Tensor, restarts: int, lam: float) -> torch.Tensor:
    """Each subject's FC moved a fraction ``lam`` toward the mean FC of the *other* subjects:
    ``(1 - lam) * fc_s + lam * mean_{t != s} fc_t``. ``fc`` is (S * restarts, N, N), each subject
    repeated ``restarts`` times; at least two subjects."""
    per = fc[::restarts]
    return ((1 - lam) * per + lam * others_mean(per)).repeat_interleave(restarts, dim=0)


def observed_targets(batch: CohortBatch, tr: float, objective: Objective,
                     restarts: int = 1, fcd_segment: int | None = None,
                     with_acf: bool = True) -> Targets:
    """FC, FCD values, spectra and autocorrelations of a batch's BOLD (or its precomputed FC and
    FCD histogram), each repeated ``restarts`` times in the batch dimension. The FCD values are
    pooled over pieces of ``fcd_segment`` volumes when the BOLD is longer
    (:func:`brainfit.metrics.fcd_values`): the FCD distribution of recordings as long as the
    simulations compared with it. The autocorrelations of an ``acf`` term are left out with
    ``with_acf=False`` (held-out parts, which evaluation does not score them on) or when the
    series is not longer than their lags (:func:`~brainfit.fit.lengths.check_lengths` says so)."""
    rep = lambda t: t.repeat_interleave(restarts, dim=0)  # noqa: E731
    if batch.bold is not None:
        fcd = psd = None
        T = batch.bold.shape[1] if fcd_segment is None else min(batch.bold.shape[1], fcd_segment)
        if n_windows(T, tr, objective.fcd_window, objective.fcd_step) >= 2:
            fcd = rep(metrics.fcd_values(batch.bold, tr, objective.fcd_window,
                                         objective.fcd_step, fcd_segment))
        if objective.needs_psd:
            psd = rep(normalized_psd(batch.bold, tr, objective.psd_nperseg))
        lags = objective.acf_lags(tr) if with_acf else 0
        long_enough = 0 < lags < batch.bold.shape[1]
        acf = rep(metrics.autocorrelation(batch.bold, lags)) if long_enough else None
        return Targets(fc=rep(metrics.fc(batch.bold)), fcd=fcd, psd=psd, acf=acf)
    fcd_hist = None
    if batch.fcd is not None:
        fcd_hist = [h for h in batch.fcd for _ in range(restarts)]
    return Targets(fc=rep(batch.fc), fcd_hist=fcd_hist)


def filter_kwargs(p: Preprocessing | None) -> dict[str, Any]:
    """The arguments of :class:`~brainfit.losses.SimulatedBoldFilter` that mirror ``p``."""
    if p is None:
        return {"bandpass": False, "detrend": False, "zscore": True}
    return {"bandpass": p.bandpass, "low_hz": p.low_hz, "high_hz": p.high_hz,
            "order": p.filter_order, "detrend": p.detrend, "zscore": p.zscore}
