"""Effective-connectivity recovery: BOLD simulated from a known connectivity is fitted from the SC.

Ten Hopf nodes below their bifurcation (the regime of tests/test_parameter_recovery.py) on a
random symmetric SC with 25 connections (pairs); the truth is the SC with 10 % of its connections
(two pairs, both directions) scaled by 0.3 and 3. The fit starts from the SC itself, with one
gain per connection (scope ``edge``, a weak prior of 0.01), G, frequencies and noise held at the
truth, and the loss that sets FC's level as well as its pattern (FC mean-squared error plus FC
correlation). The truth counts as recovered when the fitted weights correlate with the true ones
at r >= 0.9 (the SC's own r with the truth is 0.53), and each changed pair has moved the right
way, further than a typical unchanged connection (twice the median |log gain| of the others).
Trainer seeds 1 and 2 gave r = 0.914 and 0.918, the changed pairs' log gains -1.74/-1.61 and
-1.38/-1.49 (truth -1.20) and 1.60/1.42 and 1.56/1.57 (truth 1.10), against a median |log gain|
of 0.45 for the other connections (about 10 minutes on a busy 2-core machine).
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

N, TR, DT, BOLD_DT = 10, 1.0, 200.0, 0.2
G, SIGMA = 6.0e-5, 2.0e-4
HZ = 2 * math.pi / 1000.0  # rad/ms per Hz
OMEGA = np.linspace(0.03, 0.06, N) * HZ
CHANGES = (0.3, 3.0)


def _spec(W=None):
    params = {"a": -5.0e-5, "gamma": 1.0e-3,
              "omega": {"value": torch.as_tensor(OMEGA), "scope": "regional"}, "G": G}
    if W is not None:
        params["W"] = W
    return NetworkSpec(name="hopf", params=params, noise={"kind": "white", "sigma": SIGMA},
                       delays=False, dt=DT)


def _factories():
    return (functools.partial(create_coupling, "diffusive"),
            functools.partial(BalloonWindkessel, dt=BOLD_DT))


def _truth():
    """The SC, the true connectivity and the changed pairs."""
    g = torch.Generator().manual_seed(0)
    A = torch.rand(N, N, generator=g, dtype=torch.float64)
    A = (A + A.T) / 2
    sc = A * (A > 0.45)
    sc.fill_diagonal_(0)
    sc = sc / sc.max()
    pairs = [(i, j) for i in range(N) for j in range(i + 1, N) if sc[i, j] > 0]
    picks = np.random.default_rng(0).choice(len(pairs), len(CHANGES), replace=False)
    changed = [pairs[k] for k in picks]
    true = sc.clone()
    for (i, j), f in zip(changed, CHANGES):
        true[i, j] *= f
        true[j, i] *= f
    return sc, true, changed


@pytest.mark.long
def test_a_changed_connectivity_is_recovered_from_the_sc(tmp_path):
    sc, true, changed = _truth()
    sim = build_simulator(_spec(), *_factories(), true[None].float(), None)
    with torch.no_grad():
        y = sim(2700, TR, DT, burn_in=60.0, chunk=500.0,
                generator=torch.Generator().manual_seed(5))[0]
    bold = ((y - y.mean(0)) / y.std(0)).numpy()
    cohort = Cohort([Subject("synthetic", weights=sc.numpy(), bold=bold, tr=TR)], name="syn")
    trainer = Trainer(
        cohort, Components(_spec({"scope": "edge", "prior": 0.01}), *_factories()),
        Objective(weights={"fc_mse": 10.0, "fc_corr": 1.0}),
        lambda p: torch.optim.Adam(p, lr=0.1),
        TrainerConfig(epochs=30, train_fraction=0.9, sim_seconds=400.0, burn_in=60.0,
                      chunk=400.0, eval_every=0, eval_seeds=1, progress=False, clip_grad=None,
                      noise_realisations=2),
        tmp_path, seed=1)
    trainer.fit()
    fit = trainer.simulator.network.coupling_weights.detach()[0].double()
    m = sc > 0
    r_sc = np.corrcoef(sc[m], true[m])[0, 1]
    r_fit = np.corrcoef(fit[m], true[m])[0, 1]
    assert r_fit >= 0.9 and r_fit > r_sc + 0.2, (r_sc, r_fit)
    gain = torch.log(fit / sc.clamp_min(1e-30))
    was = torch.zeros_like(m)
    for i, j in changed:
        was[i, j] = was[j, i] = True
    typical = float(gain[m & ~was].abs().median())
    for (i, j), f in zip(changed, CHANGES):
        for g in (gain[i, j], gain[j, i]):
            assert float(g) * math.log(f) > 0 and abs(float(g)) > 2 * typical, (
                (i, j), f, float(g), typical)
