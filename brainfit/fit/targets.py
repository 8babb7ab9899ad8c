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

The lengths are checked here, before a fit starts (:func:`check_lengths`): every FC comes from at
least :data:`MIN_FC_VOLUMES` volumes (fewer than :data:`FEW_FC_VOLUMES` are logged as a warning),
and an FCD in the loss needs two windows in the training simulation, the fitted, validation and
held-out parts, and in the evaluation simulation (an evaluation too short for the held-out FCD
when the loss has none only skips the FCD KS distance, with a warning).
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
from brainfit.data import Cohort, Preprocessing, Subject, sc_fc_baseline
from brainfit.data.preprocess import SessionParts, empirical_fc, preprocess, split_sessions
from brainfit.data.subject import CohortBatch
from brainfit.losses import Objective, Targets, normalized_psd

log = logging.getLogger("brainfit.fit")

#: TR (s) assumed for a cohort of precomputed targets that names none
DEFAULT_TR = 2.0
#: the fewest volumes an FC is computed from (with 2, every correlation is +-1)
MIN_FC_VOLUMES = 3
#: an FC from fewer volumes is mostly sampling noise: a warning
FEW_FC_VOLUMES = 10


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
                (:func:`check_lengths`).
        """
        has_bold = all(s.bold is not None for s in cohort)
        trs = {s.tr for s in cohort if s.tr is not None}
        if len(trs) > 1:
            raise ValueError(f"subjects of one fit must share a TR, got {sorted(trs)}; fit "
                             f"them in separate runs (data.subjects=[...])")
        if not trs and not has_bold:
            log.warning("the targets name no TR: TR = %g s is assumed for the simulated BOLD "
                        "(give data.tr)", DEFAULT_TR)
        tr = trs.pop() if trs else DEFAULT_TR
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
        targets = observed_targets(train_batch, tr, objective, R, fcd_segment=n_volumes)
        if config.target_shrinkage > 0 and has_bold and len(cohort) > 1:
            targets = replace(targets, fc=shrunk_fc(targets.fc, R, config.target_shrinkage))
        elif config.target_shrinkage > 0:
            log.warning("trainer.target_shrinkage = %g is not applied: it needs two or more "
                        "subjects with BOLD", config.target_shrinkage)
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


@dataclass
class Lengths:
    """What :func:`check_lengths` checks: volumes of the simulations and of the data.

    Attributes:
        tr: s.
        n_volumes, n_eval: volumes simulated per training step and per evaluation.
        fitted, held_out: volumes of each session's fitted and held-out parts (None: no BOLD).
        sim_seconds, eval_seconds: the settings they came from (None: the data's lengths).
        train_fraction: the temporal split.
        targets_fcd, held_out_fcd: whether the fitted and held-out targets have an FCD.
        validation, n_val_eval: volumes of each validation part and of a validation
            simulation (None: no validation part).
        val_fcd: whether the validation targets have an FCD.
        val_fraction: the share of the fitted part that is validation.
    """

    tr: float
    n_volumes: int
    n_eval: int
    fitted: int | None
    held_out: int | None
    sim_seconds: float | None
    eval_seconds: float | None
    train_fraction: float
    targets_fcd: bool
    held_out_fcd: bool
    validation: int | None = None
    n_val_eval: int | None = None
    val_fcd: bool = False
    val_fraction: float = 0.0


def check_lengths(lengths: Lengths, objective: Objective) -> None:
    """Refuse, before a fit starts, lengths that would fail or score nothing later.

    - every FC (training and evaluation simulations, held-out data) needs at least
      :data:`MIN_FC_VOLUMES` volumes; fewer than :data:`FEW_FC_VOLUMES` log a warning;
    - an FCD term in the loss needs two FCD windows (``loss.fcd_window`` plus
      ``loss.fcd_step``) in the training simulation, the fitted part (its target), the held-out
      part and the evaluation simulation (the held-out FCD KS);
    - without an FCD term, an evaluation shorter than two windows while the held-out part has
      them skips the FCD KS distance (a warning);
    - an ``acf`` term needs a fitted part (time series, not precomputed targets) longer than its
      lags.

    Raises:
        ValueError: naming the length, the minimum and the settings that fix it.
    """
    L, tr = lengths, lengths.tr
    for part, n, fix in (("fitted", L.fitted, "a larger"), ("held-out", L.held_out, "a smaller")):
        if n is not None and n < MIN_FC_VOLUMES:
            raise ValueError(
                f"the {part} part of each session (trainer.train_fraction = "
                f"{L.train_fraction:g}) is {_vols(n, tr)}, too few for an FC (at least "
                f"{MIN_FC_VOLUMES}): use longer sessions or {fix} trainer.train_fraction")
    need = _two_fcd_windows(tr, objective, required=objective.needs_fcd)
    fcd_loss = need if objective.needs_fcd else 0
    sims = (("training", "trainer.sim_seconds", L.sim_seconds, L.n_volumes,
             "the fitted part's length", fcd_loss),
            ("evaluation", "trainer.eval_seconds", L.eval_seconds, L.n_eval,
             "the held-out part's length", fcd_loss if L.held_out_fcd else 0))
    for what, key, value, n, default, fcd in sims:
        if n < MIN_FC_VOLUMES:
            raise ValueError(
                f"{_setting(key, value, default)} gives {what} simulations of {_vols(n, tr)}; an "
                f"FC needs at least {MIN_FC_VOLUMES} volumes (with 2 every correlation is +-1), "
                f"better {FEW_FC_VOLUMES}: set {key} >= {max(FEW_FC_VOLUMES, fcd) * tr:g}"
                + (" (two FCD windows of the loss)" if fcd > FEW_FC_VOLUMES else ""))
        if n < FEW_FC_VOLUMES:
            log.warning("%s gives %s simulations of %s: an FC from fewer than %d volumes is "
                        "mostly sampling noise (%s >= %g avoids it)", _setting(key, value, default),
                        what, _vols(n, tr), FEW_FC_VOLUMES, key, FEW_FC_VOLUMES * tr)
    if objective.needs_fcd:
        _check_fcd_in_loss(L, objective, need)
    lags = objective.acf_lags(tr)
    if lags and L.fitted is None:
        raise ValueError("the loss has an autocorrelation (acf) term, which needs the BOLD time "
                         "series, but the targets give an FC only: use loss=fc")
    if lags and L.fitted <= lags:
        raise ValueError(f"the fitted part of each session is {_vols(L.fitted, tr)}, too few for "
                         f"the autocorrelation over {lags * tr:g} s of the loss's acf term: use a "
                         f"smaller loss.acf_seconds or longer sessions")
    if need is not None and L.held_out_fcd and L.n_eval < need and not objective.needs_fcd:
        log.warning("%s gives evaluation simulations of %s, shorter than the %s the held-out FCD "
                    "is scored with: the FCD KS distance is not scored (trainer.eval_seconds >= "
                    "%g scores it)", _setting("trainer.eval_seconds", L.eval_seconds,
                                              "the held-out part's length"),
                    _vols(L.n_eval, tr), _windows(need, tr, objective), need * tr)


def _check_fcd_in_loss(L: Lengths, objective: Objective, need: int) -> None:
    """The lengths an FCD term in the loss needs (``need`` volumes: two windows; see
    :func:`check_lengths`)."""
    tr = L.tr
    two = _windows(need, tr, objective)
    if not L.targets_fcd and L.fitted is None:
        raise ValueError("the loss has an FCD term but the targets give no FCD: give data.fcd "
                         "(an FCD histogram) or use loss=fc")
    if L.n_volumes < need:
        raise ValueError(
            f"{_setting('trainer.sim_seconds', L.sim_seconds, 'the fitted part length')} gives "
            f"training simulations of {_vols(L.n_volumes, tr)}, shorter than the {two} the "
            f"loss's FCD term compares: set trainer.sim_seconds >= {need * tr:g}, a shorter "
            f"loss.fcd_window, or loss=fc")
    for part, n, fix in (("fitted", L.fitted, "a larger"), ("held-out", L.held_out, "a smaller")):
        if n is not None and n < need:
            raise ValueError(
                f"the {part} part of each session (trainer.train_fraction = "
                f"{L.train_fraction:g}) is {_vols(n, tr)}, shorter than the {two} of its FCD: "
                f"use longer sessions, {fix} trainer.train_fraction, a shorter "
                f"loss.fcd_window, or loss=fc")
    if L.validation is not None and L.validation < need:
        raise ValueError(
            f"the validation part of each session (trainer.val_fraction = {L.val_fraction:g} of "
            f"the fitted part) is {_vols(L.validation, tr)}, shorter than the {two} of its FCD: "
            f"use a larger trainer.val_fraction, longer sessions, a shorter loss.fcd_window, or "
            f"loss=fc")
    if L.val_fcd and L.n_val_eval is not None and L.n_val_eval < need:
        raise ValueError(
            f"trainer.eval_seconds = {L.eval_seconds:g} s gives validation simulations of "
            f"{_vols(L.n_val_eval, tr)}, shorter than the {two} the validation FCD is scored "
            f"with: set trainer.eval_seconds >= {need * tr:g} (or null: the parts' lengths)")
    if L.held_out_fcd and L.n_eval < need:
        raise ValueError(
            f"{_setting('trainer.eval_seconds', L.eval_seconds, 'the held-out length')} gives "
            f"evaluation simulations of {_vols(L.n_eval, tr)}, shorter than the {two} the "
            f"held-out FCD is scored with: set trainer.eval_seconds >= {need * tr:g} (or null: "
            f"the held-out length)")


def _setting(name: str, value: float | None, default: str) -> str:
    return f"{name} = {value:g} s" if value is not None else f"{name} = null ({default})"


def _vols(n: int, tr: float) -> str:
    return f"{n} volume{'s' if n != 1 else ''} ({n * tr:g} s at TR = {tr:g} s)"


def _windows(need: int, tr: float, objective: Objective) -> str:
    return (f"two FCD windows (loss.fcd_window = {objective.fcd_window:g} s plus loss.fcd_step "
            f"= {objective.fcd_step:g} s: {_vols(need, tr)})")


def _two_fcd_windows(tr: float, objective: Objective, required: bool) -> int | None:
    """Volumes that hold two FCD windows of ``objective`` at ``tr`` (window plus step).

    Raises:
        ValueError: (``required``) a window of fewer than 2 volumes or a step of 0 volumes at
            this TR; without ``required`` that gives None.
    """
    try:
        w, s, _ = metrics.fcd_windows(2**31, tr, objective.fcd_window, objective.fcd_step)
    except ValueError as err:
        if not required:
            return None
        raise ValueError(f"loss.fcd_window / loss.fcd_step do not fit TR = {tr:g} s: {err}") \
            from None
    return w + s


def subject_checksum(subject: Subject) -> str:
    """SHA-256 of a subject's (preprocessed) weights, lengths, BOLD and FC target: what a
    checkpoint stores per subject, so that a resumed fit or an evaluation sees the same data."""
    return array_checksum([subject.weights, subject.lengths, subject.bold, subject.fc_target])


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
    own = metrics.fc_similarity(fit_fc, held_fc)
    group = metrics.fc_similarity(others_mean(fit_fc), held_fc) if len(fit_fc) > 1 else None
    for i, sid in enumerate(test.ids):
        out[sid]["own_fc_r"] = float(own[i])
        if group is not None:
            out[sid]["group_fc_r"] = float(group[i])
    return out


def fcd_baseline(train: Cohort, test: Cohort, tr: float, window: float,
                 step: float) -> dict[str, dict[str, float]]:
    """What the data's own FCD says about each subject's scored FCD: ``own_fcd_ks``, the
    Kolmogorov-Smirnov distance between the FCD values of its scored part (``test``) and those
    of its own fitted part (``train``) cut into pieces as long as the scored part, as a
    simulation's FCD is (:class:`~brainfit.fit.evaluator.Evaluator`). Two parts of one session
    differ this much without any model: the floor that a fit's FCD KS is read against. A
    subject either of whose parts is shorter than two FCD windows (``window``, ``step`` in s)
    has none."""
    out: dict[str, dict[str, float]] = {}
    for fitted, scored in zip(train, test):
        a, b = (torch.as_tensor(s.bold, dtype=torch.float64) for s in (fitted, scored))
        if min(n_windows(len(a), tr, window, step), n_windows(len(b), tr, window, step)) < 2:
            continue
        ks = metrics.ks_distance(metrics.fcd_values(a, tr, window, step, segment=len(b)),
                                 metrics.fcd_values(b, tr, window, step))
        out[scored.id] = {"own_fcd_ks": float(ks)}
    return out


def merge(*per_subject: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per-subject dicts of scores joined subject by subject."""
    out: dict[str, dict[str, float]] = {}
    for d in per_subject:
        for sid, scores in d.items():
            out.setdefault(sid, {}).update(scores)
    return out


def others_mean(x: torch.Tensor) -> torch.Tensor:
    """Per element of the first dimension, the mean of the *other* elements (at least two)."""
    return (x.sum(0, keepdim=True) - x) / (x.shape[0] - 1)


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
    series is not longer than their lags (:func:`check_lengths` says so)."""
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
