"""Score a fitted model against empirical data (the body of scripts/evaluate.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from brainfit import metrics
from brainfit.data import Cohort, sc_fc_baseline
from brainfit.fit.build import instantiate
from brainfit.fit.evaluator import Evaluator
from brainfit.fit.fitted import FittedModel, load_fitted
from brainfit.fit.targets import BASELINES, fc_baselines
from brainfit.losses import Targets


def evaluate_run(run_dir: str | Path, checkpoint: str = "last.pt", data_cfg: Any = None,
                 seeds: int = 5, dt: float | None = None) -> dict[str, Any]:
    """Held-out FC similarity (raw, Fisher), FCD KS and the baselines per subject.

    Without ``data_cfg`` the run's own cohort is loaded and its held-out part (the end of each
    session, as in training) is used, beside the baselines of
    :func:`brainfit.fit.targets.fc_baselines` (SC, log SC, the leave-one-out group FC and the
    subject's own fitted-part FC). With another cohort, each fitted subject is scored against
    the subject of the same id if there is one, else against the cohort's group-average FC and
    its pooled FCD values (whole sessions).
    """
    run_dir = Path(run_dir)
    path = run_dir / "checkpoints" / checkpoint
    model = load_fitted(path)
    cfg = model.config
    own = data_cfg is None
    cohort: Cohort = instantiate(cfg["data"] if own else data_cfg)
    train = None
    if own:
        train, cohort = cohort.select(model.subject_ids).split(cfg["trainer"]["train_fraction"])
    tr = model.meta["tr"]
    if any(s.tr is not None and abs(s.tr - tr) > 1e-9 for s in cohort):
        raise ValueError(f"the cohort's TR differs from the run's ({tr} s): the simulation is "
                         f"sampled at the run's TR")
    loss = cfg["loss"]
    window, step = float(loss["fcd_window"]), float(loss["fcd_step"])
    batch = cohort.batch(crop=True)
    emp_fc = metrics.fc(batch.bold)
    T = batch.bold.shape[1]
    emp_fcd = metrics.fcd_values(batch.bold, tr, window, step)
    ids = list(batch.ids)
    # each fitted subject against its own data, else against the group FC and pooled FCD
    rows = [ids.index(sid) if sid in ids else None for sid in model.subject_ids]
    targets = Targets(fc=torch.stack([emp_fc.mean(0) if j is None else emp_fc[j] for j in rows]),
                      fcd=[emp_fcd.flatten() if j is None else emp_fcd[j] for j in rows])
    ev = Evaluator(targets, tr, window, step, seeds, first_seed=model.meta.get("eval_seed", 0))(
        lambda seed: model.simulate(n_volumes=T, seed=seed, dt=dt))
    acc = {sid: {k: float(v[i]) for k, v in ev.scores.items()}
           for i, sid in enumerate(model.subject_ids)}
    base = sc_fc_baseline(cohort)
    baselines = fc_baselines(train, cohort)
    for sid in acc:
        acc[sid].update(baselines.get(sid, {}))
    mean = {k: float(np.mean([s[k] for s in acc.values() if k in s]))
            for k in next(iter(acc.values()))}
    result = {"checkpoint": str(path), "cohort": cohort.name, "own_cohort": own,
              "seeds": int(seeds), "subjects": acc, "mean": mean,
              "sc_fc_baseline_mean": base.mean()}
    return result


def format_table(result: dict[str, Any]) -> str:
    cols = ["fc_similarity", "fc_similarity_fisher", "fcd_ks", *BASELINES]
    lines = [f"{'subject':>12} " + " ".join(f"{c:>14}" for c in cols)]
    for sid, s in {**result["subjects"], "mean": result["mean"]}.items():
        lines.append(f"{sid:>12} " + " ".join(
            f"{s[c]:>14.3f}" if c in s else f"{'-':>14}" for c in cols))
    return "\n".join(lines)


def simulate_run(run_dir: str | Path, checkpoint: str = "last.pt", seconds: float | None = None,
                 seed: int = 0, dt: float | None = None, all_restarts: bool = False,
                 out: str | Path | None = None) -> Path:
    """Simulate a fitted model and save ``bold`` (B, T, N), ``fc``, ``ids``, ``tr`` to an .npz."""
    model: FittedModel = load_fitted(Path(run_dir) / "checkpoints" / checkpoint)
    tr = model.meta["tr"]
    n = None if seconds is None else max(1, int(round(float(seconds) / tr)))
    y = model.simulate(n_volumes=n, seed=seed, dt=dt, best_only=not all_restarts)
    ids = ([f"{s}/restart{r}" for s, r in model.elements] if all_restarts
           else model.subject_ids)
    out = Path(out or Path(run_dir) / "simulated_bold.npz")
    with torch.no_grad():
        fc = metrics.fc(y)
    np.savez(out, bold=y.numpy(), fc=fc.numpy(), ids=np.array(ids), tr=tr, seed=seed)
    return out


def write_json(result: dict[str, Any], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    return path
