"""What a fit is fitted to and scored against, built once from a cohort.

:class:`FitData` splits each session in time (the first ``train_fraction`` is fitted, the rest held
out), stacks the parts into batches, computes the empirical observables of both parts repeated for
each restart (batch element ``b = s * R + r``), and fixes the lengths of the simulations: training
simulates ``trainer.sim_seconds`` (default: the training part's length), evaluation the held-out
part's length (or ``trainer.eval_seconds``). A cohort of precomputed targets (no BOLD) has nothing
to hold out: it is fitted and scored against its targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from brainfit import metrics
from brainfit.checkpoint import array_checksum
from brainfit.data import Cohort, Preprocessing, sc_fc_baseline
from brainfit.data.preprocess import empirical_fc
from brainfit.data.subject import CohortBatch
from brainfit.losses import Objective, Targets, normalized_psd

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
        n_volumes: BOLD volumes simulated per training step.
        n_eval_volumes: BOLD volumes simulated per evaluation.
        checksums: SHA-256 of each subject's arrays (a resumed run must see the same data).
        baselines: per subject, what predicts its scored FC without a model
            (:func:`fc_baselines`).
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
    checksums: dict[str, str]
    baselines: dict[str, dict[str, float]]
    score_name: str
    filter_kwargs: dict[str, Any]

    @classmethod
    def from_cohort(cls, cohort: Cohort, config: Any, objective: Objective,
                    preprocessing: Preprocessing | None = None,
                    device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32) -> FitData:
        """Split, batch and summarise ``cohort`` for a fit with ``config`` (a ``TrainerConfig``).

        Raises:
            ValueError: subjects with different TRs, no simulation length for a cohort without
                BOLD, or a simulation too short for the FCD windows of the objective.
        """
        has_bold = all(s.bold is not None for s in cohort)
        if has_bold:
            train, test = cohort.split(config.train_fraction)
        else:  # precomputed targets: nothing to hold out
            train = test = cohort
        trs = {s.tr for s in cohort if s.tr is not None}
        if len(trs) > 1:
            raise ValueError(f"subjects of one fit must share a TR, got {sorted(trs)}; fit "
                             f"them in separate runs (data.subjects=[...])")
        tr = trs.pop() if trs else DEFAULT_TR
        train_batch = train.batch(device=device, dtype=dtype)
        test_batch = test.batch(device=device, dtype=dtype)
        R = config.restarts
        T = train_batch.bold.shape[1] if has_bold else None
        sim_s = config.sim_seconds if config.sim_seconds is not None else (T or 0) * tr
        if sim_s <= 0:
            raise ValueError("trainer.sim_seconds must be set when the data have no BOLD")
        n_volumes = max(2, int(round(sim_s / tr)))
        n_eval = test_batch.bold.shape[1] if has_bold else n_volumes
        if config.eval_seconds is not None:
            n_eval = max(2, int(round(config.eval_seconds / tr)))
        if objective.needs_fcd:
            metrics.fcd_windows(n_volumes, tr, objective.fcd_window, objective.fcd_step)
        return cls(
            cohort=cohort, ids=cohort.ids, tr=tr, train_batch=train_batch, test_batch=test_batch,
            targets=observed_targets(train_batch, tr, objective, R),
            test_targets=observed_targets(test_batch, tr, objective, R),
            n_volumes=n_volumes, n_eval_volumes=n_eval,
            checksums={s.id: array_checksum([s.weights, s.lengths, s.bold, s.fc_target])
                       for s in cohort},
            baselines=fc_baselines(train, test) if has_bold else fc_baselines(None, cohort),
            score_name=("held-out FC similarity" if has_bold else
                        "FC similarity to the targets (nothing held out)"),
            filter_kwargs=filter_kwargs(preprocessing))


#: the baselines of :func:`fc_baselines`, in the order they are reported
BASELINES = {"sc_fc_r": "SC", "log_sc_fc_r": "log SC", "group_fc_r": "leave-one-out group FC",
             "own_fc_r": "own fitted-part FC (ceiling)"}


def fc_baselines(train: Cohort | None, test: Cohort) -> dict[str, dict[str, float]]:
    """What predicts each subject's scored FC without a model: Pearson r of upper triangles
    (:func:`brainfit.metrics.fc_similarity`) between the FC of ``test`` and

    - ``sc_fc_r``, ``log_sc_fc_r``: its SC and log SC (:func:`brainfit.data.sc_fc_baseline`);
    - ``group_fc_r``: the mean FC of the *other* subjects' fitted parts (``train``; leave one
      out, so nothing of the subject itself; absent for a single subject);
    - ``own_fc_r``: the FC of its own fitted part, the ceiling that the data's own session
      variability sets.

    Without ``train`` (precomputed targets: nothing held out) only the SC baselines exist.
    """
    sc = sc_fc_baseline(test)
    out = {sid: {"sc_fc_r": float(sc.r_sc[i]), "log_sc_fc_r": float(sc.r_log_sc[i])}
           for i, sid in enumerate(sc.ids)}
    if train is None:
        return out
    fit_fc = torch.as_tensor(empirical_fc(train))
    held_fc = torch.as_tensor(empirical_fc(test))
    S = fit_fc.shape[0]
    own = metrics.fc_similarity(fit_fc, held_fc)
    for i, sid in enumerate(test.ids):
        out[sid]["own_fc_r"] = float(own[i])
        if S > 1:
            others = (fit_fc.sum(0) - fit_fc[i]) / (S - 1)
            out[sid]["group_fc_r"] = float(metrics.fc_similarity(others, held_fc[i]))
    return out


def observed_targets(batch: CohortBatch, tr: float, objective: Objective,
                     restarts: int = 1) -> Targets:
    """FC, FCD values and spectra of a batch's BOLD (or its precomputed FC and FCD histogram),
    each repeated ``restarts`` times in the batch dimension."""
    rep = lambda t: t.repeat_interleave(restarts, dim=0)  # noqa: E731
    if batch.bold is not None:
        fcd = psd = None
        if n_windows(batch.bold.shape[1], tr, objective.fcd_window, objective.fcd_step) >= 2:
            fcd = rep(metrics.fcd_values(batch.bold, tr, objective.fcd_window,
                                         objective.fcd_step))
        if objective.needs_psd:
            psd = rep(normalized_psd(batch.bold, tr, objective.psd_nperseg))
        return Targets(fc=rep(metrics.fc(batch.bold)), fcd=fcd, psd=psd)
    fcd_hist = None
    if batch.fcd is not None:
        fcd_hist = [h for h in batch.fcd for _ in range(restarts)]
    return Targets(fc=rep(batch.fc), fcd_hist=fcd_hist)


def n_windows(n_samples: int, tr: float, window: float, step: float) -> int:
    """How many FCD windows (``window``, ``step`` in s) fit in ``n_samples`` volumes (0 if none)."""
    try:
        return metrics.fcd_windows(n_samples, tr, window, step)[2]
    except ValueError:
        return 0


def filter_kwargs(p: Preprocessing | None) -> dict[str, Any]:
    """The arguments of :class:`~brainfit.losses.SimulatedBoldFilter` that mirror ``p``."""
    if p is None:
        return {"bandpass": False, "detrend": False, "zscore": True}
    return {"bandpass": p.bandpass, "low_hz": p.low_hz, "high_hz": p.high_hz,
            "order": p.filter_order, "detrend": p.detrend, "zscore": p.zscore}
