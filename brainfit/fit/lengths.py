"""The lengths of a fit's simulations and data parts, checked before it starts.

:func:`check_lengths` refuses lengths that would fail or score nothing later: every FC comes from
at least :data:`MIN_FC_VOLUMES` volumes (fewer than :data:`FEW_FC_VOLUMES` are logged as a
warning), and an FCD in the loss needs two windows in the training simulation, the fitted,
validation and held-out parts, and in the evaluation simulation (an evaluation too short for the
held-out FCD when the loss has none only skips the FCD KS distance, with a warning).
:class:`~brainfit.fit.targets.FitData` runs it once it knows the lengths.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from brainfit import metrics
from brainfit.losses import Objective

log = logging.getLogger("brainfit.fit")

#: the fewest volumes an FC is computed from (with 2, every correlation is +-1)
MIN_FC_VOLUMES = 3
#: an FC from fewer volumes is mostly sampling noise: a warning
FEW_FC_VOLUMES = 10


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


def n_windows(n_samples: int, tr: float, window: float, step: float) -> int:
    """How many FCD windows (``window``, ``step`` in s) fit in ``n_samples`` volumes (0 if none)."""
    try:
        return metrics.fcd_windows(n_samples, tr, window, step)[2]
    except ValueError:
        return 0
