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
# # Quick start: a cohort, a simulated brain, BOLD, FC and FCD
#
# brainfit simulates neural masses coupled through a structural connectome, turns their activity
# into BOLD with a Balloon-Windkessel model, and compares the simulated functional connectivity
# (FC, correlations between regions) and its dynamics (FCD) with a subject's own. This notebook
# runs on the bundled `gw` cohort in well under a minute on a laptop CPU.
#
# Units: neural time in ms, BOLD time and TR in s. Edit `notebooks/quickstart.py` (its
# py:percent twin) and run `python scripts/sync_notebooks.py` to regenerate this notebook.

# %%
# %matplotlib inline
import torch

import brainfit
from brainfit import metrics, plotting

torch.manual_seed(0)
torch.set_num_threads(1)  # small networks run fastest on one thread

# %% [markdown]
# ## The bundled cohort
#
# `gw` holds 5 subjects on an 80-region AAL2 parcellation: a structural connectome (weights `W`
# and tract lengths in mm) and a resting-state BOLD session (TR 2 s) each.

# %%
cohort = brainfit.data.load("gw")
subject = cohort[0]
print(cohort.ids)
print(subject.id, "BOLD", subject.bold.shape, "TR", subject.tr, "s; SC", subject.weights.shape)
print("regions:", subject.labels[:4], "...")
plotting.plot_bold(subject.bold, subject.tr, None, title=f"{subject.id}: empirical BOLD")

# %% [markdown]
# ## Empirical FC and FCD
#
# FC is the Pearson correlation of every pair of regions' BOLD. Ordered by hemisphere
# (`plotting.hemispheres` reads it from the region names), the left-right symmetry shows as the
# repeated blocks. The FCD matrix correlates the FC of 60 s windows taken every 2 s: blocks are
# epochs of stable FC.

# %%
groups = plotting.hemispheres(subject.labels)
fc_emp = metrics.fc(torch.tensor(subject.bold))
fcd_emp = metrics.fcd(torch.tensor(subject.bold), tr=subject.tr, window=60.0, step=2.0)
plotting.plot_fc({"empirical FC": fc_emp}, None, labels=subject.labels, groups=groups,
                 title=f"{subject.id}: empirical FC, by hemisphere")

# %% [markdown]
# ## Simulate a network
#
# Stuart-Landau (Hopf) nodes just below their bifurcation (`a < 0`), oscillating at 0.05 Hz,
# coupled through the subject's SC, driven by noise (Deco et al. 2017). `BoldSimulator` runs the
# network and the Balloon-Windkessel model and samples BOLD at the TR.

# %%
n = subject.n_regions
model = brainfit.create_model("hopf", n_regions=n, a=-2e-5, omega=3.14e-4, gamma=1e-3)
noise = brainfit.WhiteNoise(model.state_names, sigma=6.3e-4)  # state / sqrt(ms)
W = torch.as_tensor(subject.weights, dtype=torch.float32)
net = brainfit.BrainNetwork(model, W, G=2e-4, normalize="max", noise=noise)
sim = brainfit.BoldSimulator(net, brainfit.BalloonWindkessel(dt=0.04, n_regions=n))
with torch.no_grad():
    bold = sim(n_volumes=150, tr=subject.tr, dt=40.0, generator=torch.Generator().manual_seed(1))
print("simulated BOLD", tuple(bold.shape))  # (batch, volumes, regions)
plotting.plot_bold(bold[0], subject.tr, None, title="simulated BOLD")

# %% [markdown]
# ## Simulated vs empirical FC and FCD
#
# The FC similarity (Pearson r of the two FCs' upper triangles) is the score of the fitting
# literature; the FCD is compared through the distribution of its values (the KS distance).
# This network is not fitted yet: `notebooks/fitting.py` fits it.

# %%
fc_sim = metrics.fc(bold)[0]
print(f"FC similarity {metrics.fc_similarity(fc_sim, fc_emp).item():.3f}")
plotting.plot_fc({"empirical": fc_emp, "simulated": fc_sim}, None, labels=subject.labels,
                 groups=groups)

# %%
fcd_sim = metrics.fcd(bold[0], tr=subject.tr, window=60.0, step=2.0)
plotting.plot_fcd({"empirical": fcd_emp, "simulated": fcd_sim}, step=2.0, window=60.0)

# %%
plotting.plot_fcd_histograms(
    {subject.id: metrics.fcd_values(torch.tensor(subject.bold), tr=subject.tr)},
    {subject.id: metrics.fcd_values(bold[0], tr=subject.tr)}, None)

# %% [markdown]
# ## Gradients flow through everything
#
# The simulation is differentiable: one step of gradient ascent on the FC similarity moves the
# trainable parameters (here the global coupling `G`). `python scripts/train.py` runs the whole
# fit of a cohort, with held-out scores, checkpoints and figures (see `notebooks/fitting.py`).

# %%
opt = torch.optim.Adam([p for p in sim.parameters() if p.requires_grad], lr=0.05)
bold = sim(n_volumes=60, tr=subject.tr, dt=40.0, generator=torch.Generator().manual_seed(2))
loss = 1 - metrics.fc_similarity(metrics.fc(bold)[0], fc_emp)
loss.backward()
opt.step()
print("G after one step:", [r["value"] for r in net.param_table() if r["parameter"] == "G"])
