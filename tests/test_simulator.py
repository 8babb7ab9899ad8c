"""Parameters -> network -> BOLD -> FC, end to end: gradients, checkpointing, truncation."""

from __future__ import annotations

import pytest
import torch

import brainfit
from brainfit import metrics
from brainfit.bold import BalloonWindkessel, BoldStream, IdentityBold
from brainfit.models.oscillators import StuartLandau
from brainfit.network import BrainNetwork
from brainfit.noise import WhiteNoise
from brainfit.simulator import BoldSimulator

N = 4


def _simulator(gen, noise=True):
    W = torch.rand(N, N, generator=gen, dtype=torch.float64)
    L = torch.rand(N, N, generator=gen, dtype=torch.float64) * 40
    # a slow oscillator (~3 Hz, all rates <= 0.02 /ms) so that a coarse dt of 5 ms is accurate
    m = brainfit.create_model("hopf", n_regions=N, a={"value": -0.01, "trainable": True},
                              omega=0.02, gamma=0.01).double()
    net = BrainNetwork(m, W, L, speed=2.0, G={"value": 0.01, "trainable": True},
                       normalize="row_sum",
                       noise=WhiteNoise(m.state_names, 0.05) if noise else None).double()
    bold = BalloonWindkessel(dt=0.01, trainable=["kappa"], n_regions=N).double()
    return BoldSimulator(net, bold)


def _run(sim, **kw):
    return sim(16, 0.5, dt=5.0, burn_in=1.0, chunk=2.0,
               generator=torch.Generator().manual_seed(11), **kw)


def test_fc_loss_gradients_match_central_differences(gen):
    """d(1 - FC similarity)/d(G, a, kappa) by autograd equals central finite differences."""
    sim = _simulator(gen)
    target = metrics.fc(torch.randn(40, N, generator=gen, dtype=torch.float64))

    def loss():
        return 1 - metrics.fc_similarity(metrics.fc(_run(sim)), target).mean()

    loss().backward()
    raws = {"G": sim.network.params.raw["G"], "a": sim.network.model.params.raw["a"],
            "kappa": sim.bold.params.raw["kappa"]}
    for name, raw in raws.items():
        eps = 1e-6
        with torch.no_grad():
            raw += eps
            up = loss().item()
            raw -= 2 * eps
            down = loss().item()
            raw += eps
        fd = (up - down) / (2 * eps)
        assert raw.grad.item() == pytest.approx(fd, rel=1e-4, abs=1e-9), name


@pytest.mark.parametrize("burn_in, chunk", [(1.0, 2.0), (2.0, 1.0)])
def test_checkpointing_gives_the_same_values_and_gradients(gen, burn_in, chunk):
    """(2.0, 1.0): the first checkpointed chunk starts from a burn-in state without a graph."""
    sim = _simulator(gen)
    grads, values = [], []
    for ckpt in (False, True):
        sim.zero_grad()
        y = sim(16, 0.5, dt=5.0, burn_in=burn_in, chunk=chunk, checkpoint=ckpt,
                generator=torch.Generator().manual_seed(11))
        y.pow(2).sum().backward()
        grads.append([p.grad.clone() for p in sim.parameters() if p.grad is not None])
        values.append(y.detach())
    torch.testing.assert_close(values[1], values[0], rtol=0, atol=0)
    assert len(grads[0]) == len(grads[1]) == 3
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)


def test_truncation_changes_gradients_not_values(gen):
    sim = _simulator(gen)
    full = _run(sim)
    trunc = _run(sim, truncate=1)
    torch.testing.assert_close(trunc, full, rtol=0, atol=0)
    # with truncation nothing flows back past the last chunk boundary: the first sample, taken
    # in an earlier chunk than the last one, cannot depend on anything the last chunk did, but
    # the gradient of the last sample alone must differ from full backprop
    g_full = torch.autograd.grad(full[:, -1].sum(), sim.network.params.raw["G"])[0]
    g_trunc = torch.autograd.grad(trunc[:, -1].sum(), sim.network.params.raw["G"])[0]
    assert (g_full - g_trunc).abs() > 1e-8 * g_full.abs()


def test_output_does_not_depend_on_the_chunk_length(gen):
    sim = _simulator(gen)
    a = sim(16, 0.5, dt=5.0, burn_in=1.0, chunk=0.5, generator=torch.Generator().manual_seed(2))
    b = sim(16, 0.5, dt=5.0, burn_in=1.0, chunk=3.0, generator=torch.Generator().manual_seed(2))
    assert a.shape == (1, 16, N)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("head", ["balloon", "identity"])
def test_the_head_receives_the_models_dimensionless_drive(gen, head):
    """The simulator feeds the head u = (observable - bold_offset) / bold_scale of the model's
    class (averaged over each BOLD step), and the identity head turns u into its TR means: the
    simulator's BOLD equals the network's recorded drive, mapped and streamed by hand."""
    shifted = type("ShiftedHopf", (StuartLandau,), {"bold_offset": 0.3, "bold_scale": 2.0})
    W = torch.rand(N, N, generator=gen, dtype=torch.float64)
    m = shifted(n_regions=N, a=-0.01, omega=0.02, gamma=0.01).double()
    net = BrainNetwork(m, W, None, G=0.01, normalize="row_sum",
                       noise=WhiteNoise(m.state_names, 0.05)).double()
    bold = (BalloonWindkessel(dt=0.01, n_regions=N) if head == "balloon"
            else IdentityBold(dt=0.01, n_regions=N)).double()
    sim = BoldSimulator(net, bold)
    y = sim(16, 0.5, dt=5.0, burn_in=1.0, chunk=2.0, generator=torch.Generator().manual_seed(3))
    state = net.initial_state(None, torch.Generator().manual_seed(3))
    obs, _ = net.simulate(9000.0, 5.0, state=state, record="bold", period=10.0, average=True)
    u = (obs - 0.3) / 2.0
    torch.testing.assert_close(m.bold_input(obs), u, rtol=0, atol=0)
    stream = BoldStream(bold, 1, N, neural_dt=10.0, tr=0.5, burn_in=1.0, dtype=torch.float64)
    torch.testing.assert_close(y, stream.push(u)[:, :16], rtol=1e-12, atol=1e-14)
    if head == "identity":  # sample k: the mean of u over [1 + 0.5 k, 1 + 0.5 (k + 1)) s
        torch.testing.assert_close(y, u[:, 100:900].reshape(1, 16, 50, N).mean(2),
                                   rtol=1e-12, atol=1e-14)
    with pytest.raises(TypeError, match="bold_scale must be positive"):
        type("Bad", (StuartLandau,), {"bold_scale": 0.0})


def test_bad_arguments(gen):
    sim = _simulator(gen)
    with pytest.raises(ValueError, match="n_volumes"):
        sim(0, 0.5, dt=5.0)
    with pytest.raises(ValueError, match="neural step dt = 20 ms is longer than the BOLD step"):
        sim(4, 0.5, dt=20.0)  # the head (0.01 s) cannot step finer than the network
    with pytest.raises(ValueError, match="truncate"):
        sim(4, 0.5, dt=5.0, truncate=0)
