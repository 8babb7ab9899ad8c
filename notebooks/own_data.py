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
# # Your own data
#
# brainfit reads a cohort from the formats labs keep their data in; each reader returns the same
# validated `Cohort` (structural weights, tract lengths, BOLD, TR per subject), preprocessed like
# the bundled cohorts (detrend, 0.01-0.1 Hz band-pass, z-score; the SC normalised to its
# maximum). This notebook writes a small synthetic example of each format into a temporary
# folder and loads it:
#
# 1. a 4D NIfTI BOLD image and a label atlas (plus an SC file);
# 2. a TVB connectivity zip (plus a BOLD array);
# 3. a BIDS-like tree `sub-*/func/*_bold.nii.gz` with JSON sidecars;
# 4. precomputed group targets (an FC matrix and an FCD histogram, no BOLD).
#
# Each has a config (`conf/data/`), so a fit on your data is one command, shown with each.
# Seconds on a laptop CPU.

# %%
# %matplotlib inline
import json
import tempfile
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

import brainfit
from brainfit import metrics, plotting

root = Path(tempfile.mkdtemp(prefix="brainfit_own_data_"))
rng = np.random.default_rng(0)
N, T, TR = 8, 150, 2.0  # regions, volumes, seconds
names = [f"{part}_{side}" for part in ("Frontal", "Parietal", "Temporal", "Occipital")
         for side in ("L", "R")]

# a structural connectome: symmetric, zero diagonal, stronger within hemispheres
side = np.array([n[-1] for n in names])
sc = rng.gamma(2.0, 1.0, (N, N)) * np.where(side[:, None] == side[None, :], 1.0, 0.3)
sc = np.triu(sc, 1) + np.triu(sc, 1).T
lengths = rng.uniform(20.0, 120.0, (N, N))  # mm
lengths = np.triu(lengths, 1) + np.triu(lengths, 1).T
# region signals with shared slow components (what the scanner would give, in a.u.)
signals = rng.standard_normal((T, 3)) @ rng.standard_normal((3, N)) + rng.standard_normal((T, N))
signals = np.cumsum(signals, axis=0) * 0.1 + 100.0
np.savetxt(root / "sc.csv", sc, delimiter=",")
np.savetxt(root / "lengths.csv", lengths, delimiter=",")

# %% [markdown]
# ## 1. NIfTI BOLD + atlas
#
# A 4 x 4 x 4 voxel brain whose octants are the 8 regions; each voxel is its region's signal plus
# noise. `load_nifti` takes the mean over each region's voxels, reads the TR from the header and
# pairs the regions (in increasing atlas value) with the SC's rows.

# %%
atlas = np.zeros((4, 4, 4), dtype=np.int16)
for r in range(N):
    i, j, k = (r >> 2) & 1, (r >> 1) & 1, r & 1
    atlas[2 * i:2 * i + 2, 2 * j:2 * j + 2, 2 * k:2 * k + 2] = r + 1
voxels = signals[:, atlas - 1].transpose(1, 2, 3, 0) + 0.1 * rng.standard_normal((4, 4, 4, T))
image = nib.Nifti1Image(voxels.astype(np.float32), np.eye(4))
image.header.set_xyzt_units("mm", "sec")
image.header["pixdim"][4] = TR
nib.save(image, root / "bold.nii.gz")
nib.save(nib.Nifti1Image(atlas, np.eye(4)), root / "atlas.nii.gz")

cohort = brainfit.data.load_nifti(root / "bold.nii.gz", root / "atlas.nii.gz", labels=names,
                                  weights=root / "sc.csv", lengths=root / "lengths.csv")
s = cohort[0]
print(cohort.ids, s.bold.shape, "TR", s.tr, "s;", s.labels[:3])
print("config: python scripts/train.py data=nifti data.bold=bold.nii.gz "
      "data.atlas=atlas.nii.gz data.weights=sc.csv")
plotting.plot_bold(s.bold, s.tr, None, title="region means of the NIfTI, preprocessed")

# %% [markdown]
# ## 2. A TVB connectivity zip
#
# TVB stores a connectome as text members of a zip: `weights.txt`, `tract_lengths.txt`,
# `centres.txt` (`label x y z` per region), optionally `region_labels.txt`, `hemispheres.txt` ...
# BOLD comes as a separate (T, N) array.

# %%
with zipfile.ZipFile(root / "connectivity_8.zip", "w") as zf:
    zf.writestr("weights.txt", "\n".join(" ".join(f"{v:.6g}" for v in row) for row in sc))
    zf.writestr("tract_lengths.txt", "\n".join(" ".join(f"{v:.6g}" for v in row)
                                               for row in lengths))
    zf.writestr("centres.txt", "\n".join(f"{n} {i} 0 0" for i, n in enumerate(names)))
np.save(root / "bold_tvb.npy", signals)
tvb = brainfit.data.load_tvb_zip(root / "connectivity_8.zip", bold=root / "bold_tvb.npy", tr=TR)
print(tvb.ids, tvb[0].labels[:3], tvb[0].lengths.max().round(1), "mm")
print("config: python scripts/train.py data=tvb_zip data.path=connectivity_8.zip "
      "data.bold=bold_tvb.npy data.tr=2.0")

# %% [markdown]
# ## 3. A BIDS-like directory
#
# `sub-<label>/func/sub-<label>_task-rest_bold.nii.gz` per subject, one atlas on the BOLD grid,
# the TR from each JSON sidecar (`RepetitionTime`), the SC per subject (`sub-*/**/*weights.*`) or
# for the group at the top (`group_weights.npy`).

# %%
bids = root / "bids"
for k, sub in enumerate(["sub-01", "sub-02"]):
    func = bids / sub / "func"
    func.mkdir(parents=True)
    noisy = voxels + 0.5 * k * rng.standard_normal(voxels.shape)
    nib.save(nib.Nifti1Image(noisy.astype(np.float32), np.eye(4)),
             func / f"{sub}_task-rest_bold.nii.gz")
    (func / f"{sub}_task-rest_bold.json").write_text(json.dumps({"RepetitionTime": TR}))
nib.save(nib.Nifti1Image(atlas, np.eye(4)), bids / "atlas.nii.gz")
np.save(bids / "group_weights.npy", sc)
group = brainfit.data.load_bids(bids, atlas="atlas.nii.gz", labels=names)
print(group.ids, [x.tr for x in group])
print("config: python scripts/train.py data=bids data.path=bids data.atlas=atlas.nii.gz")

# %% [markdown]
# ## 4. Precomputed group targets
#
# Many published fits give only a group-average FC (and an FCD histogram): `from_targets` makes a
# one-"subject" cohort of them. Fits on it compare simulated FC and FCD with these targets.

# %%
fc_group = np.mean([metrics.fc(torch.tensor(x.bold)).numpy() for x in group], axis=0)
np.fill_diagonal(fc_group, 1.0)
fcd_vals = np.concatenate([metrics.fcd_values(torch.tensor(x.bold), tr=TR).numpy()
                           for x in group])
counts, edges = np.histogram(fcd_vals, bins=np.linspace(-1, 1, 61))
np.save(root / "fc_group.npy", fc_group)
np.savez(root / "fcd.npz", edges=edges, counts=counts)
targets = brainfit.data.from_targets(root / "sc.csv", root / "fc_group.npy",
                                     fcd=root / "fcd.npz", labels=names, tr=TR)
print(targets.ids, "has BOLD:", targets[0].bold is not None)
print("config: python scripts/train.py data=targets data.weights=sc.csv "
      "data.fc=fc_group.npy data.fcd=fcd.npz data.tr=2.0")

# %% [markdown]
# ## What the readers gave
#
# The same region signals came through the NIfTI and the TVB routes, so their FCs agree; the
# connectome is the same matrix, normalised to its maximum.

# %%
fc_nifti = metrics.fc(torch.tensor(cohort[0].bold))
fc_tvb = metrics.fc(torch.tensor(tvb[0].bold))
print("FC similarity NIfTI vs TVB route:", round(metrics.fc_similarity(fc_nifti, fc_tvb).item(), 3))
plotting.plot_fc({"NIfTI + atlas": fc_nifti, "TVB zip + array": fc_tvb,
                  "BIDS group mean": fc_group}, None, labels=names,
                 groups=plotting.hemispheres(names))
