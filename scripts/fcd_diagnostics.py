"""What a fitted model's FCD misses, per subject: the figures behind the default loss.

    python scripts/fcd_diagnostics.py outputs/2026-12-02/10-00-00 [--pieces 20] [--surrogates 10]

For each subject of the run, against the FCD of its held-out part (T volumes), the KS distance of
the FCD of

- ``own``: its fitted part, cut into pieces of T volumes (the session's own variability; the
  run's ``own_fcd_ks``, :func:`brainfit.fit.baselines.fcd_baseline`);
- ``surrogate``: phase-randomised copies of its fitted part (:func:`metrics.phase_randomized`:
  the same cross-spectra, stationary and Gaussian; what a linear model could reach at best);
- ``model``: ``--pieces`` simulations of T volumes of the fitted model, pooled;

then each region's autocorrelation (mean over regions) at a few lags, data (fitted part) and
model, and the spread (standard deviation) of the FC's upper triangle, data and model.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import torch

from brainfit import metrics
from brainfit.fit.baselines import fcd_baseline
from brainfit.fit.fitted import load_fitted
from brainfit.fit.targets import load_cohort, run_parts

LAGS = (1, 2, 4, 8, 16)  # volumes


def diagnose(run: str, pieces: int = 20, surrogates: int = 10, seed: int = 0,
             lags: tuple[int, ...] = LAGS) -> dict[str, Any]:
    """The figures above for the checkpoint ``run`` hands over (``load_fitted(run)``):
    ``{subject: {name: value}}``, ``tr``, ``held_out_volumes`` and ``lags``."""
    m = load_fitted(run)
    cfg = m.config
    cohort = load_cohort(cfg["data"])[0].select(m.subject_ids)
    parts = run_parts(cfg, cohort, float(m.meta["tr"]))  # cut as the fit cut it
    train, test = parts.fit, parts.test
    fitted = train.batch(crop=True).bold.double()
    held = test.batch(crop=True).bold.double()
    T, tr = held.shape[1], float(m.meta["tr"])
    window, step = float(cfg["loss"]["fcd_window"]), float(cfg["loss"]["fcd_step"])
    target = metrics.fcd_values(held, tr, window, step)
    own = fcd_baseline(train, test, tr, window, step)
    g = torch.Generator().manual_seed(seed)
    sur = torch.cat([metrics.fcd_values(metrics.phase_randomized(fitted, g), tr, window, step,
                                        segment=T) for _ in range(surrogates)], 1)
    y = m.simulate(n_volumes=pieces * T, seed=seed).double()
    model = metrics.fcd_values(y, tr, window, step, segment=T)
    n_lags = max(lags)
    acf_data = metrics.autocorrelation(fitted, n_lags).mean(-1)
    acf_model = metrics.autocorrelation(y, n_lags).mean(-1)
    fc_data, fc_model = (metrics.upper_triangle(metrics.fc(v)) for v in (fitted, y))
    out: dict[str, Any] = {"tr": tr, "held_out_volumes": T, "lags": list(lags), "subjects": {}}
    for i, sid in enumerate(m.subject_ids):
        ks = {"own": own[sid]["own_fcd_ks"],
              **{name: float(metrics.ks_distance(v[i].float(), target[i].float()))
                 for name, v in (("surrogate", sur), ("model", model))}}
        out["subjects"][sid] = {
            **{f"ks_{k}": v for k, v in ks.items()},
            "acf_data": [float(acf_data[i, k - 1]) for k in lags],
            "acf_model": [float(acf_model[i, k - 1]) for k in lags],
            "fc_sd_data": float(fc_data[i].std()), "fc_sd_model": float(fc_model[i].std()),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a run directory (with checkpoints/last.pt)")
    parser.add_argument("--pieces", type=int, default=20, help="model simulations per subject")
    parser.add_argument("--surrogates", type=int, default=10, help="surrogates per subject")
    parser.add_argument("--seed", type=int, default=0)
    a = parser.parse_args()
    d = diagnose(a.run, a.pieces, a.surrogates, a.seed)
    lag_s = ", ".join(f"{k * d['tr']:g}" for k in d["lags"])
    print(f"held-out part: {d['held_out_volumes']} volumes; autocorrelation lags: {lag_s} s")
    print("| subject | KS own | KS surrogate | KS model | ACF data | ACF model | FC sd data "
          "| FC sd model |")
    print("|---|---:|---:|---:|---|---|---:|---:|")
    rows = d["subjects"]
    for sid, r in rows.items():
        acf = [" ".join(f"{v:.2f}" for v in r[k]) for k in ("acf_data", "acf_model")]
        print(f"| {sid} | {r['ks_own']:.3f} | {r['ks_surrogate']:.3f} | {r['ks_model']:.3f} | "
              f"{acf[0]} | {acf[1]} | {r['fc_sd_data']:.3f} | {r['fc_sd_model']:.3f} |")
    means = {k: np.mean([r[k] for r in rows.values()]) for k in
             ("ks_own", "ks_surrogate", "ks_model", "fc_sd_data", "fc_sd_model")}
    print(f"| mean | {means['ks_own']:.3f} | {means['ks_surrogate']:.3f} | "
          f"{means['ks_model']:.3f} | | | {means['fc_sd_data']:.3f} | {means['fc_sd_model']:.3f} |")


if __name__ == "__main__":
    main()
