"""Rescoring a finished run: score its fitted model against empirical data again, or simulate
it (the bodies of ``scripts/evaluate.py`` and ``scripts/simulate.py``).

Not to be confused with :mod:`brainfit.fit.scoring`, the :class:`~brainfit.fit.scoring.Evaluator`
that scores simulations, which a fit and this module share. A run is scored in one of two
ways:

- the run's own cohort (no ``data``): its data are loaded again from the run's config and must be
  the data it was fitted on (the SHA-256 of each subject's preprocessed arrays, stored in the
  checkpoint, is compared; a file replaced since the fit is refused, not scored); the held-out
  part of each session is scored, as in training.
- another cohort on purpose (``data=hcp``): whole sessions are scored, each fitted subject
  against the subject of the same id if there is one, else against the cohort's group-average FC
  and pooled FCD. Its data are not the run's, so nothing is compared; the simulation is sampled
  at that cohort's TR and filtered like that cohort's data.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainfit import metrics
from brainfit.checkpoint import write_json as write_json_atomic
from brainfit.checkpoint import write_npz
from brainfit.data import Cohort, sc_fc_baseline
from brainfit.fit.baselines import BASELINES, fc_baselines, fcd_baseline, merge
from brainfit.fit.build import instantiate
from brainfit.fit.fitted import FittedModel, checkpoint_path, load_fitted
from brainfit.fit.lengths import n_windows
from brainfit.fit.scoring import Evaluator
from brainfit.fit.targets import filter_kwargs, load_cohort, run_parts, subject_checksum
from brainfit.losses import Targets

log = logging.getLogger("brainfit.evaluate")


def evaluate_run(run_dir: str | Path, checkpoint: str | None = None, data_cfg: Any = None,
                 seeds: int | None = None, dt: float | None = None,
                 seconds: float | None = None) -> dict[str, Any]:
    """Held-out FC similarity (raw, Fisher), FCD KS and the baselines per subject.

    Without ``data_cfg`` the run's own cohort is loaded, checked against the checksums in the
    checkpoint, and its held-out part (the end of each session, as in training) is scored,
    beside the baselines of :func:`brainfit.fit.baselines.fc_baselines` (SC, log SC, the
    leave-one-out group FC and the subject's own fitted-part FC) and
    :func:`~brainfit.fit.baselines.fcd_baseline` (the own fitted part's FCD KS). With another
    cohort, each fitted subject is scored against the subject of the same id if there is one,
    else against the cohort's group-average FC and its pooled FCD values (whole sessions), with
    the simulation sampled at that cohort's TR. The FCD KS distance is left out (with a warning)
    when the sessions are shorter than two FCD windows.

    What is simulated is what the run scored (``metrics.json``): each realisation as long as the
    run's evaluation (``trainer.eval_seconds``, else its held-out length; for another cohort at
    least as long as its sessions), its FCD cut into pieces as long as the scored sessions, the
    run's seeds; so the run's own cohort, the checkpoint it hands over and the defaults give the
    run's scores again.

    Args:
        run_dir: the fit's output directory.
        checkpoint: a file in its ``checkpoints/`` (``last.pt`` or ``best.pt``), or None: the one
            the run hands over (:func:`run_checkpoint`), which ``metrics.json`` scored.
        data_cfg: another cohort's data config (a ``conf/data`` node), or None.
        seeds: noise realisations averaged, >= 1 (None: the run's ``trainer.eval_seeds``).
        dt: neural step in ms (None: the run's evaluation step).
        seconds: BOLD simulated per realisation, s (None: as long as the run's evaluation, and
            for another cohort at least as long as its sessions).

    Raises:
        ValueError: seeds < 1, dt <= 0 or seconds <= 0 (checked before anything is loaded), the
            run's data changed since the fit, a cohort without BOLD or with several TRs.
        FileNotFoundError: no such checkpoint.
    """
    if seeds is not None:
        seeds = check_seeds(seeds)
    check_optional_positive(dt, "dt", "neural step in ms")
    check_optional_positive(seconds, "seconds", "length of BOLD in s")
    path = run_checkpoint(run_dir, checkpoint)
    model = load_fitted(path)
    cfg = model.config
    seeds = check_seeds(cfg["trainer"]["eval_seeds"]) if seeds is None else seeds
    own = data_cfg is None
    train, cohort = _scored_parts(model, data_cfg)
    tr = cohort_tr(cohort, model.meta["tr"])
    filt = None if own else other_filter(data_cfg)
    loss = cfg["loss"]
    window, step = float(loss["fcd_window"]), float(loss["fcd_step"])
    targets, T = _empirical_targets(cohort, model.subject_ids, tr, window, step)
    if seconds is None:  # the run's evaluation; another cohort's sessions at the least
        n_sim = model.meta["n_eval_volumes"] if own else max(T, int(round(
            model.meta["n_eval_volumes"] * model.meta["tr"] / tr)))
    else:
        n_sim = max(1, int(round(seconds / tr)))
    ev = Evaluator(targets, tr, window, step, seeds,
                   first_seed=model.meta.get("eval_seed", 0), fcd_segment=T)(
        lambda seed: model.simulate(n_volumes=n_sim, seed=seed, dt=dt, tr=tr,
                                    filter_kwargs=filt))
    acc = {sid: {k: float(v[i]) for k, v in ev.scores.items()}
           for i, sid in enumerate(model.subject_ids)}
    base = sc_fc_baseline(cohort)
    baselines = fc_baselines(train, cohort)
    if train is not None:
        baselines = merge(baselines, fcd_baseline(train, cohort, tr, window, step))
    for sid in acc:
        acc[sid].update(baselines.get(sid, {}))
    mean = {k: float(np.mean([s[k] for s in acc.values() if k in s]))
            for k in next(iter(acc.values()))}
    return {"checkpoint": str(path), "cohort": cohort.name or "other", "own_cohort": own, "tr": tr,
            "seeds": seeds, "seconds": n_sim * tr, "subjects": acc, "mean": mean,
            "sc_fc_baseline_mean": base.mean()}


def _scored_parts(model: FittedModel, data_cfg: Any) -> tuple[Cohort | None, Cohort]:
    """(the fitted parts, the scored sessions): without ``data_cfg`` the run's own cohort, checked
    against the checkpoint and cut and preprocessed as the fit did (its held-out parts scored);
    else (None, another cohort's whole sessions)."""
    if data_cfg is not None:
        return None, instantiate(data_cfg)
    cfg = model.config
    cohort, _ = load_cohort(cfg["data"])
    cohort = cohort.select(model.subject_ids)
    check_same_data(model, cohort)
    parts = run_parts(cfg, cohort, model.meta["tr"])
    return parts.fit, parts.test


def _empirical_targets(cohort: Cohort, subject_ids: list[str], tr: float, window: float,
                       step: float) -> tuple[Targets, int]:
    """Each fitted subject's FC and FCD values in ``cohort`` (its own, else the cohort's group
    FC and pooled FCD), and the sessions' length in volumes; no FCD (a warning) when the
    sessions are shorter than two FCD windows."""
    batch = cohort.batch(crop=True)
    T = batch.bold.shape[1]
    ids = list(batch.ids)
    emp_fc = metrics.fc(batch.bold)
    # each fitted subject against its own data, else against the group FC and pooled FCD
    rows = [ids.index(sid) if sid in ids else None for sid in subject_ids]
    fc = torch.stack([emp_fc.mean(0) if j is None else emp_fc[j] for j in rows])
    fcd = None
    if n_windows(T, tr, window, step) >= 2:
        emp_fcd = metrics.fcd_values(batch.bold, tr, window, step)
        fcd = [emp_fcd.flatten() if j is None else emp_fcd[j] for j in rows]
    else:
        log.warning("FCD KS is not scored: the scored sessions of %s are %d volumes (%g s at "
                    "TR = %g s), shorter than two FCD windows of the run's loss (fcd_window = "
                    "%g s plus fcd_step = %g s)", cohort.name or "the cohort", T, T * tr, tr,
                    window, step)
    return Targets(fc=fc, fcd=fcd), T


def run_checkpoint(run_dir: str | Path, checkpoint: str | None) -> Path:
    """``checkpoints/<checkpoint>`` of a run, or with None the one the run hands over
    (:func:`~brainfit.fit.fitted.checkpoint_path`: ``best.pt`` with a validation part, else
    ``last.pt``)."""
    if checkpoint is None:
        return checkpoint_path(run_dir)
    return Path(run_dir) / "checkpoints" / checkpoint


def check_seeds(seeds: Any) -> int:
    """``seeds`` as a number of noise realisations (a whole number >= 1).

    Raises:
        ValueError: anything else.
    """
    if isinstance(seeds, bool) or not isinstance(seeds, (int, float)) or \
            not float(seeds).is_integer() or seeds < 1:
        raise ValueError(f"seeds must be a whole number of noise realisations >= 1, got "
                         f"{seeds!r}; e.g. seeds=5")
    return int(seeds)


def check_optional_positive(value: Any, name: str, what: str) -> None:
    """Refuse a setting that is neither None (the run's own) nor a positive finite number.

    Raises:
        ValueError: naming ``name`` and ``what`` it should be.
    """
    if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool)
                                  and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive {what} (or null: the run's), got {value!r}")


def check_same_data(model: FittedModel, cohort: Cohort) -> None:
    """Refuse the run's own cohort when its data are not those the model was fitted on.

    Compares the SHA-256 of each subject's arrays as loaded (before preprocessing) with the
    checksums stored in the checkpoint (:func:`brainfit.fit.targets.subject_checksum`); a
    checkpoint without them is only warned about.

    Raises:
        ValueError: naming the subjects whose data changed and what to do.
    """
    stored = model.data.get("checksums") or {}
    if not stored:
        log.warning("%s stores no data checksums: cannot check that the data are those fitted",
                    model.path)
        return
    changed = [s.id for s in cohort if stored.get(s.id) != subject_checksum(s)]
    if changed:
        raise ValueError(
            f"the data of subject(s) {changed} differ from those {model.path} was fitted on "
            f"(their checksums in the checkpoint do not match): a file changed since the "
            f"fit. Restore the data the run used, or, to score these data on "
            f"purpose, evaluate them as another cohort (data=<option> with its own settings; "
            f"whole sessions are scored)")


def cohort_tr(cohort: Cohort, default: float) -> float:
    """The TR every subject of ``cohort`` shares (``default`` when none names one).

    Raises:
        ValueError: subjects without BOLD, or with different TRs.
    """
    missing = [s.id for s in cohort if s.bold is None]
    if missing:
        raise ValueError(f"cohort {cohort.name!r} has no BOLD for subject(s) {missing}: "
                         f"evaluation scores simulated against empirical BOLD; give a data "
                         f"config with BOLD (the run's metrics.json has its scores on targets)")
    trs = sorted({float(s.tr) for s in cohort if s.tr is not None})
    if len(trs) > 1:
        raise ValueError(f"the subjects of cohort {cohort.name!r} have different TRs {trs} s; "
                         f"evaluate the subjects of one TR at a time (data.subjects=[...])")
    return trs[0] if trs else float(default)


def other_filter(data_cfg: Any) -> dict[str, Any]:
    """The preprocessing twin of another cohort's data config (its ``preprocessing`` node)."""
    node = data_cfg.get("preprocessing") if hasattr(data_cfg, "get") else None
    return filter_kwargs(instantiate(node) if node else None)


def format_table(result: dict[str, Any]) -> str:
    cols = ["fc_similarity", "fc_similarity_fisher", "fcd_ks", "own_fcd_ks", *BASELINES]
    w = {c: max(8, len(c)) for c in cols}
    lines = [f"{'subject':>12} " + " ".join(f"{c:>{w[c]}}" for c in cols)]
    for sid, s in {**result["subjects"], "mean": result["mean"]}.items():
        lines.append(f"{sid:>12} " + " ".join(
            f"{s[c]:>{w[c]}.3f}" if c in s else f"{'-':>{w[c]}}" for c in cols))
    return "\n".join(lines)


def simulate_run(run_dir: str | Path, checkpoint: str | None = None, seconds: float | None = None,
                 seed: int = 0, dt: float | None = None, all_restarts: bool = False,
                 out: str | Path | None = None) -> Path:
    """Simulate a fitted model and save ``bold`` (B, T, N), ``fc``, ``ids``, ``tr`` to an .npz
    (written atomically).

    Raises:
        ValueError: ``seconds`` not a positive number of seconds.
    """
    check_optional_positive(seconds, "seconds", "length of BOLD in s")
    model: FittedModel = load_fitted(run_checkpoint(run_dir, checkpoint))
    tr = model.meta["tr"]
    n = None if seconds is None else max(1, int(round(float(seconds) / tr)))
    y = model.simulate(n_volumes=n, seed=seed, dt=dt, best_only=not all_restarts)
    ids = ([f"{s}/restart{r}" for s, r in model.elements] if all_restarts
           else model.subject_ids)
    out = Path(out or Path(run_dir) / "simulated_bold.npz")
    with torch.no_grad():
        fc = metrics.fc(y)
    write_npz(out, bold=y.numpy(), fc=fc.numpy(), ids=np.array(ids), tr=tr, seed=seed)
    return out


def write_json(result: dict[str, Any], path: str | Path) -> Path:
    """Write ``result`` to ``path`` as JSON, atomically and durably
    (:func:`brainfit.checkpoint.write_atomic`: a file there is never left truncated or empty)."""
    return write_json_atomic(path, result)
