# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Fitting a cohort
#
# `python scripts/train.py` fits the bundled `gw` cohort: each subject's effective connectivity
# on Hopf nodes, fitted on the exact FC and autocorrelations of the network linearised about
# rest. This notebook runs
# the same job from Python (`brainfit.fit.run` on a config composed with Hydra), small enough for
# a laptop CPU in a few minutes: 3 subjects, 30 epochs, scored on 2000 s simulations. Then it
# reads what the run left: the loss curves, fitted vs empirical FC and FCD, the fitted
# connectivity and parameters per region, and the held-out scores beside the baselines that use
# no model.
#
# Each session is split in time: the fit sees the first 80 % (training), the last 20 % is held
# out and only scored. The held-out FC similarity is the number to report.

# %%
# %matplotlib inline
import csv
import json
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

import brainfit
from brainfit import metrics, plotting
from brainfit.checkpoint import load_checkpoint
from brainfit.fit import register_configs
from brainfit.fit.baselines import BASELINES

CONF = Path(brainfit.__file__).resolve().parents[1] / "conf"  # the repository's configs
register_configs()

# %% [markdown]
# ## Compose the config
#
# The same overrides work on the command line: `python scripts/train.py data.subjects=[...]
# trainer.epochs=30 ...`. The Hopf model (`conf/model/hopf.yaml`) fits a bifurcation parameter
# `a` (kept below the bifurcation, where the linearisation holds) and a frequency `omega` per
# region, the global coupling `G`, and a gain `W` on every SC connection: one for the cohort plus
# each subject's deviation, shrunk toward it. The loss (`conf/loss/fc_acf.yaml`) compares the FC's
# pattern and values and each region's autocorrelation up to 20 s, which together set the FCD.

# %%
overrides = [
    "data.subjects=[NAP_001,NAP_002,NAP_007]",
    "trainer.epochs=30", "trainer.eval_seconds=2000", "trainer.progress=false", "threads=1",
]
with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
    cfg = compose(config_name="train", overrides=overrides)
print(cfg.model.params.a, cfg.model.params.G, cfg.model.params.W, sep="\n")

# %% [markdown]
# ## Fit
#
# The run writes checkpoints, `fitted_params.csv`, `metrics.json`, `simulated_fc.npz`,
# TensorBoard logs and figures into `run/`.

# %%
run_dir = Path("run")
score = brainfit.fit.run(cfg, out_dir=run_dir)
print(f"mean held-out FC similarity {score:.3f}")
print(sorted(p.name for p in run_dir.iterdir()))

# %% [markdown]
# ## Loss curves
#
# Solid lines are measured on the training part of each session; the held-out part is scored
# once, at the end (`trainer.eval_every=0` in `conf/trainer/linearized.yaml`: scoring simulates
# the nonlinear model, which costs more than a step of the linearised fit).

# %%
history = load_checkpoint(run_dir / "checkpoints" / "last.pt")["history"]
plotting.plot_loss_curves(history, None)

# %% [markdown]
# ## Held-out scores against the baselines
#
# A fit is worth having if it predicts the held-out FC better than what needs no model: the SC
# itself, its log, the mean FC of the other subjects (leave-one-out group FC), and, as a ceiling,
# the subject's own training-part FC.

# %%
result = json.loads((run_dir / "metrics.json").read_text())
for key, name in {"fc_similarity": "fitted model", **BASELINES}.items():
    print(f"{name:>32}: {result['mean'][key]:.3f}")
plotting.plot_baselines(result["held_out"], BASELINES, None)

# %% [markdown]
# A fit this short (30 epochs, 3 subjects) is a demonstration: read its held-out score against
# these baselines before trusting it; the default job fits 300 epochs on the whole cohort
# (`docs/benchmarks.md` has its scores).
#
# ## Fitted vs empirical FC and FCD
#
# `brainfit.load_fitted` rebuilds the fitted model from the run; `simulate()` gives each
# subject's BOLD from its best restart (filtered like the data), to compare with the held-out
# part of its session.

# %%
fitted = brainfit.load_fitted(run_dir)
cohort = brainfit.data.load("gw").select(fitted.subject_ids)
bold = fitted.simulate()
labels = cohort[0].labels
held_out = {s.id: torch.tensor(s.bold[int(0.8 * s.n_times):]) for s in cohort}
emp_fc = {k: metrics.fc(b) for k, b in held_out.items()}
sim_fc = {k: metrics.fc(bold[i]) for i, k in enumerate(fitted.subject_ids)}
plotting.plot_fc_comparison(emp_fc, sim_fc, None, None, labels=labels,
                            groups=plotting.hemispheres(labels))

# %%
# The FCD distribution depends on the recording's length (a longer one pairs windows further
# apart), so the model's is taken from pieces as long as a session, pooled.
T = cohort[0].n_times
long_bold = fitted.simulate(n_volumes=10 * T)
tr = cohort[0].tr
plotting.plot_fcd_histograms(
    {s.id: metrics.fcd_values(torch.tensor(s.bold), tr=tr) for s in cohort},
    {k: metrics.fcd_values(long_bold[i], tr=tr, segment=T)
     for i, k in enumerate(fitted.subject_ids)}, None)

# %% [markdown]
# ## Fitted parameters per region
#
# Only the fitted parameters, within their bounds (grey), and the Hopf bifurcation `a = 0` (red):
# every region stays below it, a noise-driven damped oscillator. The fitted connectivity against
# the SC is in `run/figures/connectivity.png` and `run/fitted_connectivity.npz`.

# %%
rows = fitted.param_table()
plotting.plot_parameters(rows, None, labels=labels)

# %%
with open(run_dir / "fitted_params.csv") as f:
    table = list(csv.DictReader(f))
a = [r for r in table if r["parameter"] == "a" and r["subject"] == fitted.subject_ids[0]]
print(len(table), "rows; columns:", list(table[0]))
print("a per region:", min(float(r["value"]) for r in a), "..", max(float(r["value"]) for r in a))

# %% [markdown]
# ## Further
#
# - The simulated fit of FC and FCD through a Balloon-Windkessel head, without the linearisation:
#   `trainer=default loss=fc_fcd bold=friston2003`; the SC as given: `model.params.W=null`.
# - Per-subject parameters: `model.params.a.scope=subject_regional`.
# - Other models: `model=wilson_cowan`, `model=jansen_rit`, ... (`conf/model/`).
