"""Held-out scores of a model: the one evaluator of the trainer and ``scripts/evaluate.py``.

For each noise seed the model's BOLD is simulated (``simulate(seed) -> (B, T, N)``, already
filtered like the data), and every batch element is scored against its targets:

- ``fc_similarity``: Pearson correlation of the upper triangles of simulated and empirical FC
  (:func:`brainfit.metrics.fc_similarity`), and ``fc_similarity_fisher`` of their Fisher z;
- ``fcd_ks``: Kolmogorov-Smirnov distance between the FCD values (or the target's FCD histogram),
  when the simulation has at least two FCD windows and the targets have an FCD.

Scores are averaged over the seeds ``first_seed, first_seed + 1, ...``; the first seed's FC is
kept (it is the one a run exports in ``simulated_fc.npz``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from brainfit import metrics
from brainfit.fit.targets import n_windows
from brainfit.losses import Targets

#: noise seed of the first evaluation realisation (the one exported in simulated_fc.npz)
EVAL_SEED = 10_000


@dataclass
class Evaluation:
    """Scores per batch element (each (B,), averaged over seeds) and the first seed's FC."""

    scores: dict[str, Tensor]
    fc: Tensor

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
    """

    def __init__(self, targets: Targets, tr: float, fcd_window: float, fcd_step: float,
                 seeds: int, first_seed: int = EVAL_SEED) -> None:
        if seeds < 1:
            raise ValueError(f"evaluation needs at least one noise seed, got {seeds}")
        self.targets, self.tr = targets, float(tr)
        self.fcd_window, self.fcd_step = float(fcd_window), float(fcd_step)
        self.seeds, self.first_seed = int(seeds), int(first_seed)

    @torch.no_grad()
    def __call__(self, simulate: Callable[[int], Tensor]) -> Evaluation:
        acc: dict[str, Tensor] = {}
        first_fc = None
        for k in range(self.seeds):
            y = simulate(self.first_seed + k)
            fc = metrics.fc(y)
            if first_fc is None:
                first_fc = fc
            for name, v in self.score(y, fc).items():
                acc[name] = acc.get(name, 0) + v / self.seeds
        return Evaluation(scores=acc, fc=first_fc)

    def score(self, y: Tensor, fc: Tensor | None = None) -> dict[str, Tensor]:
        """The scores of one realisation ``y`` (B, T, N), each (B,)."""
        tt = self.targets
        fc = metrics.fc(y) if fc is None else fc
        out = {"fc_similarity": metrics.fc_similarity(fc, tt.fc),
               "fc_similarity_fisher": metrics.fc_similarity(fc, tt.fc, fisher=True)}
        if tt.fcd is None and tt.fcd_hist is None:
            return out
        if n_windows(y.shape[1], self.tr, self.fcd_window, self.fcd_step) < 2:
            return out
        sim_fcd = metrics.fcd_values(y, self.tr, self.fcd_window, self.fcd_step)
        if isinstance(tt.fcd, Tensor):
            out["fcd_ks"] = metrics.ks_distance(sim_fcd, tt.fcd)
        elif tt.fcd is not None:
            out["fcd_ks"] = torch.stack([metrics.ks_distance(sim_fcd[b], t)
                                         for b, t in enumerate(tt.fcd)])
        else:
            out["fcd_ks"] = torch.stack([metrics.ks_distance_hist(sim_fcd[b], e, c)
                                         for b, (e, c) in enumerate(tt.fcd_hist)])
        return out
