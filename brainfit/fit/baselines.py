"""What predicts a subject's scored FC and FCD without a model: the baselines every held-out
score is reported beside (``metrics.json``, ``scripts/evaluate.py``, the baselines figure)."""

from __future__ import annotations

import torch

from brainfit import metrics
from brainfit.data import Cohort, sc_fc_baseline
from brainfit.data.preprocess import empirical_fc
from brainfit.fit.lengths import n_windows

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
    simulation's FCD is (:class:`~brainfit.fit.scoring.Evaluator`). Two parts of one session
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
