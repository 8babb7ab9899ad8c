"""Feedback inhibition control in a fit: J_i is re-tuned for the current G before every
simulation (:meth:`WongWangEI.tuned_feedback_inhibition`, which the fit's simulations enter through
``brainfit.fit.runner.feedback_inhibition``), and the loss's gradient is that of the re-tuned model
J_i(G) (implicit function theorem), not of a model whose J_i is held fixed. Float64, three
regions, fractions of a second."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from scipy.optimize import brentq

from brainfit.bold import BalloonWindkessel
from brainfit.coupling import create as create_coupling
from brainfit.data import Cohort, Subject
from brainfit.fit import Components, NetworkSpec, Trainer, TrainerConfig
from brainfit.fit.runner import feedback_inhibition
from brainfit.losses import Objective
from brainfit.models.wong_wang import firing_rate
from brainfit.params import ParameterSet, ParamSpec

N, TR, N_VOLUMES, SEED = 3, 0.4, 3, 5


def _trainer(tmp_path, G=1.0, **config) -> Trainer:
    """A trainer of ``wong_wang_ei`` with FIC at 3 Hz on a random 3-region SC, in float64."""
    g = torch.Generator().manual_seed(0)
    W = torch.rand(N, N, generator=g, dtype=torch.float64)
    W = (W + W.T) / 2
    W.fill_diagonal_(0.0)
    bold = np.random.default_rng(0).standard_normal((100, N))
    cohort = Cohort([Subject("s", weights=(W / W.max()).numpy(), bold=bold, tr=TR)],
                    name="synthetic")
    spec = NetworkSpec(
        name="wong_wang_ei",
        params={"J_i": {"scope": "subject_regional"},
                "G": {"value": G, "trainable": True, "low": 0.0, "high": 5.0}},
        noise={"kind": "white", "sigma": 1e-3}, integrator="stochastic_heun", delays=False,
        dt=1.0, feedback_inhibition=3.0)
    components = Components(spec, functools.partial(create_coupling, "linear"),
                            functools.partial(BalloonWindkessel, dt=0.2))
    cfg = {"epochs": 1, "sim_seconds": 4.0, "burn_in": 0.0, "chunk": TR, "eval_every": 0,
           "eval_seeds": 1, "progress": False, "compile": False, **config}
    return Trainer(cohort, components, Objective(weights={"fc_corr": 1.0}),
                   lambda p: torch.optim.SGD(p, lr=0.1), TrainerConfig(**cfg), tmp_path,
                   dtype=torch.float64)


def _loss(y: torch.Tensor) -> torch.Tensor:
    """A fixed random projection of the (filtered) simulated BOLD (1, N_VOLUMES, N)."""
    w = torch.randn(1, N_VOLUMES, N, generator=torch.Generator().manual_seed(1),
                    dtype=torch.float64)
    return (y * w).sum()


def _trainer_loss(trainer: Trainer) -> torch.Tensor:
    return _loss(trainer.simulate(N_VOLUMES, 1.0, torch.Generator().manual_seed(SEED)))


def _fixed_j_loss(trainer: Trainer) -> torch.Tensor:
    """The previous behaviour: J_i tuned without a gradient, the simulation reads it as a
    constant (so dL/dG is that of a model with J_i held at its tuned value)."""
    net = trainer.simulator.network
    with torch.no_grad():
        c = net.params["G"] * net.weights.sum(-1) * net.model.target_gating(3.0)
        net.model.fit_feedback_inhibition(c.expand(net.n_batch, -1), 3.0, apply=True)
    cfg = trainer.cfg
    y = trainer.simulator(N_VOLUMES, trainer.tr, 1.0, burn_in=cfg.burn_in, chunk=cfg.chunk,
                          generator=torch.Generator().manual_seed(SEED))
    return _loss(trainer.filter(y))


def test_trainer_gradient_of_G_is_that_of_the_re_tuned_model(tmp_path):
    """dL/dG (through the raw, sigmoid-transformed G) of a short simulation with FIC equals the
    central difference of the same re-tuned model (J_i re-tuned at G +/- h, same noise); the
    old gradient, with J_i held at its tuned value, differs (here in sign)."""
    trainer = _trainer(tmp_path)
    raw = trainer.simulator.network.params.raw["G"]
    (grad,) = torch.autograd.grad(_trainer_loss(trainer), raw)

    h, r0 = 1e-5, raw.item()
    with torch.no_grad():
        raw.fill_(r0 + h)
        up = _trainer_loss(trainer)
        raw.fill_(r0 - h)
        down = _trainer_loss(trainer)
        raw.fill_(r0)
    fd = ((up - down) / (2 * h)).item()
    assert grad.item() == pytest.approx(fd, rel=1e-6)

    (old,) = torch.autograd.grad(_fixed_j_loss(trainer), raw)
    assert abs(old.item() - fd) > 10 * abs(fd)  # the fixed-J_i gradient is not the one fitted


def test_reference_engine_gives_the_fast_engines_gradient_and_checkpoints_are_refused(tmp_path):
    """The reference loop reads J_i with its graph too (same gradient as the fast engine);
    its checkpointed chunks would be recomputed after J_i's block, so they are refused under
    gradients (evaluation without gradients still runs)."""
    grads = {}
    for engine in ("fast", "reference"):
        trainer = _trainer(tmp_path / engine, engine=engine)
        raw = trainer.simulator.network.params.raw["G"]
        (grads[engine],) = torch.autograd.grad(_trainer_loss(trainer), raw)
    torch.testing.assert_close(grads["reference"], grads["fast"], rtol=1e-9, atol=0)

    trainer = _trainer(tmp_path / "ckpt", engine="reference", checkpoint_chunks=True)
    with pytest.raises(ValueError, match="checkpoint_chunks=false"):
        _trainer_loss(trainer)
    with torch.no_grad():
        assert torch.isfinite(_trainer_loss(trainer))


def test_the_simulation_reads_the_stored_J_i_with_its_graph_and_it_holds_3hz(tmp_path):
    """Inside the tuning block the model reads J_i with a graph to G, equal to the stored value;
    at the FIC fixed point (S_E = S_E* everywhere, S_I from its own steady state) that J_i puts
    every region's excitatory rate at 3 Hz, and the rate does not move with G (dr_E/dG = 0: the
    re-tuning cancels the extra long-range excitation exactly)."""
    trainer = _trainer(tmp_path, G=1.5)
    net = trainer.simulator.network
    m = net.model
    with feedback_inhibition(net, trainer.spec.feedback_inhibition):  # as the trainer simulates
        j_i = m.params["J_i"]
        assert j_i.requires_grad and j_i.shape == (1, N)
        s_e = m.target_gating(3.0)
        c = net.params["G"] * net.weights.sum(-1) * s_e
        p = {k: m.params[k].item() for k in m.param_specs if k != "J_i"}

        def steady_s_i(s):
            x = p["W_I"] * p["I_0"] + p["J_NMDA"] * s_e.item() - s
            return s - p["tau_I"] * p["gamma_I"] * firing_rate(
                torch.tensor(x, dtype=torch.float64), p["a_I"], p["b_I"], p["d_I"]).item()

        s_i = brentq(steady_s_i, 0.0, 1.0, xtol=1e-15, rtol=1e-15)
        state = torch.stack([s_e.expand(1, N), torch.full((1, N), s_i, dtype=torch.float64)],
                            dim=1)
        r_e, _ = m.rates(state, c)
        torch.testing.assert_close(r_e, torch.full_like(r_e, 3.0), rtol=1e-9, atol=0)
        torch.testing.assert_close(m.derivative(state, c, None), torch.zeros_like(state),
                                   rtol=0, atol=1e-12)
        (dr_dG,) = torch.autograd.grad(r_e.sum(), net.params.raw["G"])
        assert abs(dr_dG.item()) < 1e-9
    stored = m.params["J_i"]
    assert not stored.requires_grad
    torch.testing.assert_close(stored, j_i.detach(), rtol=1e-12, atol=0)
    with m.params.replaced("J_i", stored.detach()):  # for scale: a fixed J_i moves r_E with G
        c = net.params["G"] * net.weights.sum(-1) * s_e
        (fixed,) = torch.autograd.grad(m.rates(state, c)[0].sum(), net.params.raw["G"])
    assert abs(fixed.item()) > 1.0


def test_a_replaced_parameter_is_read_inside_the_block_only():
    """ParameterSet.replaced: reads (plain and cached, also an open cache) give the value with
    its graph inside the block and the stored value after it; a value of another shape or an
    unknown name is refused."""
    p = ParameterSet({"k": ParamSpec(1.0, scope="regional"), "g": ParamSpec(2.0)}, n_regions=3)
    x = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    v = x * torch.ones(3, dtype=torch.float64)
    with p.cached():
        with p.replaced("k", v):
            assert p["k"] is v
            with p.cached():
                (g,) = torch.autograd.grad(p["k"].sum(), x)
            assert g.item() == 3.0
        assert torch.equal(p["k"], torch.ones(3))
    assert torch.equal(p["k"], torch.ones(3)) and p["g"].item() == 2.0
    with pytest.raises(ValueError, match=r"reads as shape \(3,\).*got \(1, 3\)"):
        with p.replaced("k", v[None]):
            pass
    with pytest.raises(ValueError, match="unknown parameter 'q'"):
        with p.replaced("q", v):
            pass
