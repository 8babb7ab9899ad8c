"""BrainNetwork: delays, coupling, chunking, batching, torchdiffeq agreement, bad input."""

from __future__ import annotations

import math

import pytest
import torch
from problems import TOL

import brainfit
from brainfit import integrate
from brainfit.network import BrainNetwork, SimulationDiverged, normalize_weights
from brainfit.noise import OrnsteinUhlenbeckNoise, WhiteNoise
from brainfit.stimulus import Stimulus


def _connectome(n, gen, batch=None, max_len=60.0):
    shape = (n, n) if batch is None else (batch, n, n)
    W = torch.rand(shape, generator=gen, dtype=torch.float64)
    L = torch.rand(shape, generator=gen, dtype=torch.float64) * max_len
    return W, L


def _relay(n):
    """x' = -x + input with Euler at dt = 1 ms gives x_{k+1} = input_k exactly: a pure relay."""
    return brainfit.create_model("harmonic", n_regions=n, alpha=-1.0, omega=0.0).double()


@pytest.mark.parametrize("speed", [3.0, 7.5])
def test_unit_impulse_arrives_after_the_rounded_conduction_delay(speed):
    n, i, j, dt = 3, 2, 0, 1.0
    W = torch.zeros(n, n, dtype=torch.float64)
    W[i, j] = 1.0
    L = torch.full((n, n), 10.0, dtype=torch.float64)
    L[i, j] = 37.0
    impulse = torch.zeros(60, n, dtype=torch.float64)
    impulse[5, j] = 1.0  # forcing at step 5 -> x_j = 1 at step 6 only
    net = BrainNetwork(_relay(n), W, L, speed=speed, coupling="linear", G={"value": 1.0},
                       stimulus=Stimulus(n, drive_course=impulse, sample_dt=dt),
                       integrator="euler").double()
    x0 = torch.zeros(1, 2, n, dtype=torch.float64)
    out, _ = net.simulate(60.0, dt, x0=x0, record=["x", "coupling"])
    assert out["x"][0, :, j].nonzero().flatten().tolist() == [5]  # x_j(step 6) recorded at index 5
    arrival = out["coupling"][0, :, i].nonzero().flatten().tolist()
    # coupling recorded at index k is computed from the state at step k
    assert arrival == [6 + round(37.0 / speed / dt)]


def test_zero_coupling_gives_independent_nodes(gen):
    n = 4
    W, L = _connectome(n, gen)
    m = brainfit.create_model("hopf", n_regions=n, a=-0.05).double()
    # fixed G: a trainable G of exactly 0 would be nudged inside its bounds
    net = BrainNetwork(m, W, L, G={"value": 0.0, "trainable": False},
                       noise=WhiteNoise(m.state_names, 0.01)).double()
    x0 = m.initial_state(1, generator=gen)
    a, _ = net.simulate(50.0, 0.1, x0=x0, generator=torch.Generator().manual_seed(3))
    x1 = x0.clone()
    x1[0, :, 0] += 0.3  # perturb region 0 only
    b, _ = net.simulate(50.0, 0.1, x0=x1, generator=torch.Generator().manual_seed(3))
    assert (a[..., 0] - b[..., 0]).abs().max() > 1e-3
    torch.testing.assert_close(a[..., 1:], b[..., 1:], rtol=0, atol=0)
    # with coupling the perturbation spreads
    net.params.set_value("G", 1.0)
    c, _ = net.simulate(50.0, 0.1, x0=x1, generator=torch.Generator().manual_seed(3))
    d, _ = net.simulate(50.0, 0.1, x0=x0, generator=torch.Generator().manual_seed(3))
    assert (c[..., 1:] - d[..., 1:]).abs().max() > 1e-6


@pytest.mark.parametrize("noise_kind", ["white", "ou"])
@pytest.mark.parametrize("interpolate", [False, True])
def test_chunked_equals_unchunked(gen, noise_kind, interpolate):
    n = 5
    W, L = _connectome(n, gen)
    m = brainfit.create_model("hopf", n_regions=n, a=-0.02).double()
    noise = (WhiteNoise(m.state_names, 0.05) if noise_kind == "white"
             else OrnsteinUhlenbeckNoise(m.state_names, 0.05, tau=3.0)).double()
    net = BrainNetwork(m, W, L, speed=4.0, noise=noise, interpolate_delays=interpolate).double()
    whole, end = net.simulate(40.0, 0.1, generator=torch.Generator().manual_seed(7), batch=2,
                              record=["x", "y"], period=0.5, average=True)
    state = net.initial_state(2, torch.Generator().manual_seed(7))
    parts = []
    for dur in (3.0, 11.5, 0.5, 25.0):
        part, state = net.simulate(dur, 0.1, state=state, record=["x", "y"], period=0.5,
                                   average=True)
        parts.append(part)
    for k in ("x", "y"):
        torch.testing.assert_close(torch.cat([p[k] for p in parts], 1), whole[k], rtol=0, atol=0)
    torch.testing.assert_close(state.x, end.x, rtol=0, atol=0)


def test_batch_elements_are_independent(gen):
    n, B = 4, 3
    W, L = _connectome(n, gen, batch=B)
    m = brainfit.create_model("hopf", n_regions=n, n_batch=B, a=-0.05).double()
    Gs = torch.tensor([0.2, 0.5, 1.0], dtype=torch.float64)
    net = BrainNetwork(m, W, L, G={"value": Gs, "scope": "subject"}).double()
    x0 = m.initial_state(B, generator=gen)
    batched, _ = net.simulate(30.0, 0.1, x0=x0)
    for b in range(B):
        single_model = brainfit.create_model("hopf", n_regions=n, a=-0.05).double()
        single = BrainNetwork(single_model, W[b], L[b], G=Gs[b].item()).double()
        ref, _ = single.simulate(30.0, 0.1, x0=x0[b:b + 1])
        torch.testing.assert_close(batched[b:b + 1], ref, **TOL[torch.float64])


def test_heun_agrees_with_dopri5_without_delays(gen):
    n = 4
    W, _ = _connectome(n, gen)
    m = brainfit.create_model("hopf", n_regions=n, a=0.1, omega=0.3).double()
    net = BrainNetwork(m, W, None, G={"value": 0.3}, normalize="row_sum").double()
    x0 = m.initial_state(2, generator=gen)
    heun, _ = net.simulate(20.0, 0.01, x0=x0, record=["x", "y"], period=1.0)
    t = torch.arange(0, 21.0, 1.0, dtype=torch.float64)
    ref = integrate.odeint(net.vector_field(), x0, t, method="dopri5", rtol=1e-10, atol=1e-12)
    got = torch.stack([heun["x"], heun["y"]], dim=2)  # (B, T, S, N)
    # Heun's global error is O(dt^2): ~1e-5 here
    torch.testing.assert_close(got, ref[1:].permute(1, 0, 2, 3), rtol=0, atol=1e-5)


def test_adjoint_gradient_equals_backprop_gradient(gen):
    n = 3
    W, _ = _connectome(n, gen)
    m = brainfit.create_model("hopf", n_regions=n, a={"value": 0.1, "trainable": True}).double()
    net = BrainNetwork(m, W, None, G={"value": 0.3}).double()
    x0 = m.initial_state(1, generator=gen)
    t = torch.linspace(0, 5, 6, dtype=torch.float64)
    grads = []
    for adjoint in (False, True):
        net.zero_grad()
        out = integrate.odeint(net.vector_field(), x0, t, method="dopri5", adjoint=adjoint,
                               rtol=1e-10, atol=1e-12)
        out.pow(2).sum().backward()
        grads.append(torch.cat([m.params.raw["a"].grad.flatten(),
                                net.params.raw["G"].grad.flatten()]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-8)


def test_speed_gets_a_gradient_with_interpolated_delays(gen):
    n = 3
    W, L = _connectome(n, gen)
    m = brainfit.create_model("hopf", n_regions=n, a=0.2).double()
    net = BrainNetwork(m, W, L, speed={"value": 5.0, "trainable": True},
                       interpolate_delays=True, G={"value": 0.5}).double()
    x0 = m.initial_state(1, generator=gen)

    def loss():
        out, _ = net.simulate(20.0, 0.1, x0=x0)
        return out.pow(2).mean()

    loss().backward()
    g = net.params.raw["speed"].grad.item()
    raw = net.params.raw["speed"]
    eps = 1e-5
    with torch.no_grad():
        raw += eps
        up = loss().item()
        raw -= 2 * eps
        down = loss().item()
        raw += eps
    assert g == pytest.approx((up - down) / (2 * eps), rel=1e-4)


def test_normalisations():
    W = torch.tensor([[0.0, 2.0], [4.0, 0.0]])
    assert normalize_weights(W, "max").max() == 1.0
    torch.testing.assert_close(normalize_weights(W, "row_sum").sum(-1), torch.ones(2))
    torch.testing.assert_close(normalize_weights(W, "log1p"), torch.log1p(W) / math.log1p(4.0))
    with pytest.raises(ValueError, match="valid options"):
        normalize_weights(W, "zscore")


def test_param_table_lists_every_component(gen):
    n = 3
    W, L = _connectome(n, gen)
    m = brainfit.create_model("hopf", n_regions=n)
    net = BrainNetwork(m, W, L, coupling="sigmoidal", noise=WhiteNoise(m.state_names, 0.1))
    names = {r["parameter"] for r in net.param_table()}
    assert {"G", "speed", "a", "omega", "coupling.sigma", "noise.sigma_x"} <= names


def test_diverging_simulation_raises_a_clear_error(gen):
    n = 3
    W, _ = _connectome(n, gen)
    m = brainfit.create_model("hopf", n_regions=n, a=2.0, gamma=0.0)  # unbounded growth
    net = BrainNetwork(m, W, None, G=50.0)
    with pytest.raises(SimulationDiverged, match="diverged .* reduce dt"):
        net.simulate(2000.0, 1.0, generator=gen)


def test_bad_input_raises_clear_errors(gen):
    n = 3
    m = brainfit.create_model("hopf", n_regions=n)
    W, L = _connectome(n, gen)
    with pytest.raises(ValueError, match="square"):
        BrainNetwork(m, torch.rand(3, 4))
    bad = W.clone()
    bad[0, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        BrainNetwork(m, bad)
    with pytest.raises(ValueError, match="lengths contain negative"):
        BrainNetwork(m, W, -L)
    with pytest.raises(ValueError, match="built for 3 regions"):
        BrainNetwork(m, torch.rand(4, 4))
    with pytest.raises(ValueError, match="speed must be a positive"):
        BrainNetwork(m, W, L, speed=0.0)
    with pytest.raises(ValueError, match="interpolate_delays"):
        BrainNetwork(m, W, L, speed={"value": 5.0, "trainable": True})
    with pytest.raises(ValueError, match="deterministic"):
        BrainNetwork(m, W, L, noise=WhiteNoise(m.state_names, 0.1), integrator="heun")
    net = BrainNetwork(m, W, L)
    with pytest.raises(ValueError, match="dt must be a positive, finite number"):
        net.simulate(10.0, 0.0)
    with pytest.raises(ValueError, match="not a whole number of steps"):
        net.simulate(10.05, 0.1)
    with pytest.raises(ValueError, match="cannot record"):
        net.simulate(10.0, 0.1, record="voltage")
    with pytest.raises(ValueError, match="expects state of shape"):
        net.simulate(10.0, 0.1, x0=torch.zeros(1, 3, n))
    with pytest.raises(ValueError, match="delay-free"):
        net.vector_field()
