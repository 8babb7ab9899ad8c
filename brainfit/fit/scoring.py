"""Scores of simulations against data: the one :class:`Evaluator` of a fit (its validation and
held-out parts) and of rescoring a finished run (:mod:`brainfit.fit.rescore`,
``scripts/evaluate.py``), and the choice of each subject's best restart.

For each noise seed the model's BOLD is simulated (``simulate(seed) -> (B, T, N)``, already
filtered like the data), and every batch element is scored against its targets:

- ``fc_similarity``: Pearson correlation of the upper triangles of simulated and empirical FC
  (:func:`brainfit.metrics.fc_similarity`), and ``fc_similarity_fisher`` of their Fisher z;
- ``fcd_ks``: Kolmogorov-Smirnov distance between the FCD values (or the target's FCD histogram),
  when the simulation has at least two FCD windows and the targets have an FCD. A simulation
  longer than the scored data is cut into pieces of the data's length (``fcd_segment``) whose FCD
  values are pooled: the FCD distribution depends on the recording's length
  (:func:`brainfit.metrics.fcd_values`), so the model's FCD is that of recordings as long as the
  data's, while its FC is that of the whole simulation.

Scores are averaged over the seeds ``first_seed, first_seed + 1, ...``; the first seed's FC and
FCD values are kept (the ones a run exports in ``simulated_fc.npz`` and its FCD figure).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from brainfit import metrics
from brainfit.fit.lengths import n_windows
from brainfit.losses import Targets

#: noise seed of the first evaluation realisation (the one exported in simulated_fc.npz)
EVAL_SEED = 10_000


@dataclass
class Evaluation:
    """Scores per batch element (each (B,), averaged over seeds), the first seed's FC and its
    FCD values (None when the FCD is not scored)."""

    scores: dict[str, Tensor]
    fc: Tensor
    fcd: Tensor | None = None

    @property
    def score(self) -> Tensor:
        """What model selection maximises: FC similarity minus the FCD KS distance, (B,)."""
        return self.scores["fc_similarity"] - self.scores.get("fcd_ks", 0)


class Evaluator:
    """Scores simulated BOLD against held-out targets.

    Args:
        targets: per batch element; ``fcd`` may also be a sequence of 1-D samples (one per
            element, of any lengths), e.g. a group's pooled FCD values.
        tr: sampling interval, s.
        fcd_window, fcd_step: FCD windowing, s.
        seeds: noise realisations averaged.
        first_seed: the first realisation's seed.
        fcd_segment: volumes of the data the targets' FCD comes from (None: the simulation's
            whole length is compared).
    """

    def __init__(self, targets: Targets, tr: float, fcd_window: float, fcd_step: float,
                 seeds: int, first_seed: int = EVAL_SEED, fcd_segment: int | None = None) -> None:
        if seeds < 1:
            raise ValueError(f"evaluation needs at least one noise seed, got {seeds}")
        self.targets, self.tr = targets, float(tr)
        self.fcd_window, self.fcd_step = float(fcd_window), float(fcd_step)
        self.seeds, self.first_seed = int(seeds), int(first_seed)
        self.fcd_segment = fcd_segment

    def replace(self, targets: Targets | None = None, seeds: int | None = None) -> Evaluator:
        """This evaluator with other targets (e.g. some rows) or another number of seeds."""
        return Evaluator(self.targets if targets is None else targets, self.tr, self.fcd_window,
                         self.fcd_step, self.seeds if seeds is None else seeds, self.first_seed,
                         self.fcd_segment)

    def fcd_values(self, y: Tensor) -> Tensor:
        """The FCD values of simulated ``y`` (B, T, N) that the targets' FCD is compared with."""
        return metrics.fcd_values(y, self.tr, self.fcd_window, self.fcd_step, self.fcd_segment)

    @torch.no_grad()
    def __call__(self, simulate: Callable[[int], Tensor]) -> Evaluation:
        acc: dict[str, Tensor] = {}
        for k in range(self.seeds):  # seeds >= 1
            y = simulate(self.first_seed + k)
            fc, fcd = metrics.fc(y), self._scored_fcd(y)
            if k == 0:
                first_fc, first_fcd = fc, fcd
            for name, v in self.score(y, fc, fcd).items():
                acc[name] = acc.get(name, 0) + v / self.seeds
        return Evaluation(scores=acc, fc=first_fc, fcd=first_fcd)

    def _scored_fcd(self, y: Tensor) -> Tensor | None:
        """The FCD values of ``y`` when the targets have an FCD and ``y`` two windows of it."""
        tt = self.targets
        T = y.shape[1] if self.fcd_segment is None else min(y.shape[1], self.fcd_segment)
        if (tt.fcd is None and tt.fcd_hist is None) or \
                n_windows(T, self.tr, self.fcd_window, self.fcd_step) < 2:
            return None
        return self.fcd_values(y)

    def score(self, y: Tensor, fc: Tensor | None = None,
              sim_fcd: Tensor | None = None) -> dict[str, Tensor]:
        """The scores of one realisation ``y`` (B, T, N), each (B,); ``fc`` and ``sim_fcd``,
        when given, are its FC and scored FCD values."""
        tt = self.targets
        fc = metrics.fc(y) if fc is None else fc
        out = {"fc_similarity": metrics.fc_similarity(fc, tt.fc),
               "fc_similarity_fisher": metrics.fc_similarity(fc, tt.fc, fisher=True)}
        sim_fcd = self._scored_fcd(y) if sim_fcd is None else sim_fcd
        if sim_fcd is None:
            return out
        if isinstance(tt.fcd, Tensor):
            out["fcd_ks"] = metrics.ks_distance(sim_fcd, tt.fcd)
        elif tt.fcd is not None:
            out["fcd_ks"] = torch.stack([metrics.ks_distance(sim_fcd[b], t)
                                         for b, t in enumerate(tt.fcd)])
        else:
            out["fcd_ks"] = torch.stack([metrics.ks_distance_hist(sim_fcd[b], e, c)
                                         for b, (e, c) in enumerate(tt.fcd_hist)])
        return out


def best_restarts(rank: Tensor, ids: list[str], restarts: int) -> dict[str, int]:
    """The batch element of each subject's restart of lowest ``rank`` (one value per element,
    element ``b = s * restarts + r``)."""
    R = restarts
    return {sid: s * R + int(rank[s * R:(s + 1) * R].argmin()) for s, sid in enumerate(ids)}


def summarize(ev: Evaluation, best: dict[str, int], ids: list[str], restarts: int,
              baselines: dict[str, dict[str, float]] | None = None) -> dict[str, Any]:
    """The scores of each subject's ``best`` restart (with its ``restart`` number, and its
    ``baselines`` when given), as ``subjects`` in the order of ``ids``; their ``mean``; and the
    mean selection ``score`` (:attr:`Evaluation.score`) of those restarts."""
    per_subject = {}
    for sid in ids:
        b = best[sid]
        per_subject[sid] = {k: float(v[b]) for k, v in ev.scores.items()}
        per_subject[sid]["restart"] = b % restarts
        if baselines is not None:
            per_subject[sid].update(baselines[sid])
    mean = {k: float(np.mean([p[k] for p in per_subject.values()]))
            for k in next(iter(per_subject.values())) if k != "restart"}
    score = ev.score
    return {"subjects": per_subject, "mean": mean,
            "score": float(np.mean([score[b] for b in best.values()]))}
