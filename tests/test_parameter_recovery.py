"""Parameter recovery: BOLD simulated from known parameters is fitted back from another start.

The coupling strength G and the noise level are global; each region's intrinsic frequency omega
is regional (as in Deco et al. 2017, where it differs across regions). The regime is the one of
resting-state fits: nodes below their bifurcation, coupling comparable to their damping, FC
around 0.1. The loss pairs the FC mean-squared error (which sets G: FC's level rises with G) with
each region's BOLD power spectrum (whose peak sits at that region's frequency). FC correlation
alone would not do: it is blind to FC's level, and its finite-sample optimum lies above the true
G (stronger coupling lifts the simulated FC's structure over its sampling noise). The noise level
is fitted but not checked: in this near-linear regime it scales every signal alike, which z-scored
BOLD cannot see. The synthetic data come from the same simulator at the same steps, so
discretisation error cancels and any miss is the fit's.

How close the fit comes is set by the noise: an epoch's simulated FC is noisier than the 2700 s
of data, and the FC mean-squared error then favours a somewhat stronger coupling. With one 400 s
realisation per epoch, trainer seeds 1, 2 and 3 ended at G = 1.35, 1.19 and 1.06 times the truth
(from 0.375 times), and seed 1 also lost the frequencies (r = 0.25); an earlier noise generator
happened to give 1.03 with seed 1. Averaging two realisations per epoch (as here) gave
G = 1.11 and 1.14 times the truth and r = 0.99 for seeds 1 and 2. The truth counts as recovered
when G moves from 0.375x to within 25 % of the truth and the fitted frequencies correlate with the
true ones at r >= 0.9.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from brainfit.bold import BalloonWindkessel
from brainfit.coupling import create as create_coupling
from brainfit.data import Cohort, Subject
from brainfit.fit import Components, NetworkSpec, Trainer, TrainerConfig
from brainfit.fit.spec import build_simulator
from brainfit.losses import Objective

N, TR, DT, BOLD_DT = 6, 1.0, 200.0, 0.2
G_TRUE, SIGMA_TRUE = 4.0e-5, 2.0e-4
HZ = 2 * math.pi / 1000.0  # rad/ms per Hz
OMEGA_TRUE = np.linspace(0.02, 0.07, N)[[3, 0, 5, 1, 4, 2]] * HZ


def _spec(G, omega, sigma):
    return NetworkSpec(
        name="hopf",
        params={"a": -5.0e-5, "gamma": 1.0e-3,
                "omega": {"value": torch.as_tensor(omega, dtype=torch.float64),
                          "trainable": True, "scope": "regional",
                          "low": 0.005 * HZ, "high": 0.12 * HZ},
                "G": {"value": G, "trainable": True, "low": 0.0, "high": 4.0e-4}},
        noise={"kind": "white", "sigma": sigma, "trainable": True},
        delays=False, dt=DT)


def _factories():
    return (functools.partial(create_coupling, "diffusive"),
            functools.partial(BalloonWindkessel, dt=BOLD_DT))


def _connectome(seed=0):
    g = torch.Generator().manual_seed(seed)
    W = torch.rand(N, N, generator=g)
    W = (W + W.T) / 2
    W.fill_diagonal_(0)
    return W / W.max()


@functools.lru_cache
def _empirical(n_volumes=3000, seed=5):
    W = _connectome()
    sim = build_simulator(_spec(G_TRUE, OMEGA_TRUE, SIGMA_TRUE), *_factories(), W[None], None)
    with torch.no_grad():
        y = sim(n_volumes, TR, DT, burn_in=60.0, chunk=500.0,
                generator=torch.Generator().manual_seed(seed))[0]
    return W.numpy(), ((y - y.mean(0)) / y.std(0)).numpy()


def fit(out_dir, epochs=30, lr=0.2):
    """Fit from G at 3/8 of the truth, every omega at 0.045 Hz and twice the true noise, with
    Adam on a cosine schedule; returns the estimates (G, omega)."""
    W, bold = _empirical()
    cohort = Cohort([Subject("synthetic", weights=W, bold=bold, tr=TR)], name="synthetic")
    trainer = Trainer(
        cohort, Components(_spec(1.5e-5, np.full(N, 0.045 * HZ), 2 * SIGMA_TRUE), *_factories()),
        Objective(weights={"fc_mse": 10.0, "psd": 20.0}, psd_nperseg=128),
        lambda p: torch.optim.Adam(p, lr=lr),
        TrainerConfig(epochs=epochs, train_fraction=0.9, sim_seconds=400.0, burn_in=60.0,
                      chunk=400.0, eval_every=0, eval_seeds=1, progress=False, clip_grad=None,
                      noise_realisations=2),
        out_dir,
        scheduler=lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, epochs,
                                                                       eta_min=0.05 * lr),
        seed=1)
    trainer.fit()
    net = trainer.simulator.network
    return net.params["G"].item(), net.model.params["omega"].detach().numpy()


@pytest.mark.long
def test_coupling_strength_and_regional_frequencies_are_recovered(tmp_path):
    G, omega = fit(tmp_path)
    assert abs(G - G_TRUE) / G_TRUE < 0.25, (G, G_TRUE)
    assert np.corrcoef(omega, OMEGA_TRUE)[0, 1] >= 0.9, (omega / HZ, OMEGA_TRUE / HZ)
