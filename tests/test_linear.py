"""The linearised network's FC (brainfit.linear): its Jacobian, the haemodynamic transfer, the
spectral integral, its gradient, and agreement with long simulations."""

from __future__ import annotations

import math

import pytest
import torch
from problems import create64

from brainfit import metrics
from brainfit.bold import BalloonWindkessel, IdentityBold
from brainfit.coupling import create as create_coupling
from brainfit.linear import bold_gain, linearized_fc, linearized_stats, network_jacobian
from brainfit.losses import SimulatedBoldFilter
from brainfit.network import BrainNetwork
from brainfit.noise import create as create_noise
from brainfit.simulator import BoldSimulator

N = 4


def _network(G=3e-4, sigma=1e-3, seed=0, delays=False, omega_scope="global"):
    g = torch.Generator().manual_seed(seed)
    W = torch.rand(N, N, generator=g, dtype=torch.float64)
    W.fill_diagonal_(0)
    model = create64("hopf", n_regions=N, params={
        "a": {"value": -2e-5, "scope": "regional"}, "gamma": 1e-3,
        "omega": {"value": 3.1416e-4, "scope": omega_scope}})
    # regions of different a, all below the bifurcation
    model.params.set_value("a", -2e-5 * (1 + torch.rand(N, generator=g, dtype=torch.float64)))
    noise = create_noise("white", model.state_names, sigma=sigma).double()
    L = torch.full((N, N), 50.0, dtype=torch.float64) if delays else None
    net = BrainNetwork(model, W, L, coupling=create_coupling("diffusive", n_regions=N).double(),
                       noise=noise, params={"G": G}).double()
    return net


def test_the_jacobian_is_the_hopf_networks_linear_part():
    net = _network()
    J = network_jacobian(net)[0]
    a, w = net.model.params["a"].detach(), float(net.model.params["omega"])
    G, W = float(net.params["G"].detach()), net.weights.detach()
    lap = W - torch.diag(W.sum(-1))
    top = torch.cat([torch.diag(a) + G * lap, -w * torch.eye(N, dtype=torch.float64)], 1)
    bottom = torch.cat([w * torch.eye(N, dtype=torch.float64), torch.diag(a)], 1)
    torch.testing.assert_close(J, torch.cat([top, bottom]), rtol=1e-12, atol=1e-15)


def test_a_network_with_delays_or_not_at_rest_is_refused():
    with pytest.raises(ValueError, match="without conduction delays"):
        network_jacobian(_network(delays=True))
    net = _network()
    sim = BoldSimulator(net, IdentityBold(dt=2.0, n_regions=N))
    model = create64("fitzhugh_nagumo", n_regions=N)
    fhn = BrainNetwork(model, net.weights, None, noise=create_noise(
        "white", model.state_names, sigma=1e-3).double()).double()
    with pytest.raises(ValueError, match="at rest at 0"):
        linearized_fc(BoldSimulator(fhn, IdentityBold(dt=2.0, n_regions=N)), 2.0)
    assert linearized_fc(sim, 2.0).shape == (1, N, N)


def test_the_balloon_transfer_at_zero_frequency_is_the_steady_response():
    """A small constant drive eps holds BOLD at eps * H(0) (the linearised head's gain)."""
    head = BalloonWindkessel(dt=0.1, n_regions=1).double()  # at 0.01 s: the same to 1e-15
    h0 = bold_gain(head, torch.tensor([1e-9], dtype=torch.float64), 1, 1)[0, 0, 0]
    eps = 1e-4
    state = head.init_state(1, 1, dtype=torch.float64)
    for _ in range(5):  # 5 x 60 s of constant drive
        y, state = head.integrate(state, torch.full((1, 600, 1), eps, dtype=torch.float64))
    assert abs(h0.imag) < 1e-6 * abs(h0.real)
    assert float(y[0, -1, 0]) / eps == pytest.approx(float(h0.real), rel=2e-3)


def test_the_spectral_integral_of_one_ou_node_is_its_closed_form():
    """x' = -k x + sigma xi (a Hopf node at omega = 0, a = -k, uncoupled): the variance up to
    f_max is sigma^2 1000 / (2 pi k) arctan(2 pi f_max / (1000 k)) (midpoint rule, 96 points)."""
    from brainfit import linear

    k, sigma, tr = 4e-4, 1e-3, 2.0
    jac = torch.tensor([[[-k]]], dtype=torch.float64)
    freqs, weights = linear.frequency_grid(tr, torch.float64)
    d = 1.0 / ((2j * math.pi / 1000.0) * freqs.to(torch.complex128) - jac[0, 0, 0])
    numeric = float((weights * (d.abs() ** 2)).sum()) * sigma**2
    f_max = 0.5 / tr
    exact = sigma**2 * 1000 / (2 * math.pi * k) * math.atan(2 * math.pi * f_max / (1000 * k))
    assert numeric == pytest.approx(exact, rel=2e-3)


@pytest.fixture(params=["modes", "solves"])
def integral(request, monkeypatch):
    """Which spectral integral linearized_stats takes: the eigenmodes (MODE_GAP 0: always) or a
    solve per frequency (MODE_GAP inf: never modes)."""
    from brainfit import linear

    monkeypatch.setattr(linear, "MODE_GAP", 0.0 if request.param == "modes" else math.inf)
    return request.param


def test_the_linearised_fc_has_the_gradient_of_finite_differences(integral):
    net = _network()
    sim = BoldSimulator(net, IdentityBold(dt=2.0, n_regions=N))
    target = torch.eye(N, dtype=torch.float64) * 0.5 + 0.5

    def loss(g):
        with torch.no_grad():
            net.params.raw["G"].copy_(net.params.specs["G"].inverse_transform(g))
        return 1 - metrics.fc_similarity(linearized_fc(sim, 2.0, SimulatedBoldFilter(2.0)),
                                         target)

    g0 = torch.tensor(3e-4, dtype=torch.float64)
    loss(g0).sum().backward()
    raw = net.params.raw["G"]
    analytic = float(raw.grad.sum())
    h = 1e-4
    raw0 = raw.detach().clone()
    with torch.no_grad():
        raw.copy_(raw0 + h)
        up = float((1 - metrics.fc_similarity(linearized_fc(sim, 2.0, SimulatedBoldFilter(2.0)),
                                              target)).sum())
        raw.copy_(raw0 - h)
        down = float((1 - metrics.fc_similarity(linearized_fc(sim, 2.0, SimulatedBoldFilter(2.0)),
                                                target)).sum())
    assert analytic == pytest.approx((up - down) / (2 * h), rel=1e-4)


def _long_simulation(sim):
    """20 000 s of band-passed BOLD (10 000 volumes at TR 2 s) after 400 s of burn-in."""
    filt = SimulatedBoldFilter(2.0)
    with torch.no_grad():
        y = filt(sim(10_000, 2.0, 80.0, burn_in=400.0, chunk=4000.0,
                     generator=torch.Generator().manual_seed(0)))
    return y, filt


def _upper(fc):
    iu = torch.triu_indices(N, N, 1)
    return fc[0][iu[0], iu[1]]


@pytest.mark.long
def test_the_linearised_fc_through_the_balloon_is_what_long_simulations_converge_to():
    """Weak noise, 20 000 s of simulated BOLD through the Balloon-Windkessel head: the simulated
    FC agrees with the linearised one to sampling error (without a head: the test below)."""
    sim = BoldSimulator(_network(G=5e-4, sigma=6.3e-4),
                        BalloonWindkessel(dt=0.08, n_regions=N).double())
    y, filt = _long_simulation(sim)
    with torch.no_grad():
        fc_lin = linearized_fc(sim, 2.0, filt)
    assert float((_upper(metrics.fc(y)) - _upper(fc_lin)).abs().max()) < 0.05


def test_the_autocorrelation_of_uncoupled_nodes_is_a_damped_cosine():
    """A Hopf node below its bifurcation, alone, is x(t) with autocorrelation
    exp(a tau) cos(omega tau); sampled finely (TR 0.1 s: the TR mean and the frequencies above
    Nyquist are negligible) the spectral integral gives it over 30 s of lags."""
    net = _network()
    with torch.no_grad():
        net.weights.zero_()
    tr = 0.1
    fc, acf = linearized_stats(BoldSimulator(net, IdentityBold(dt=tr, n_regions=N)), tr,
                               n_lags=300)
    a, w = net.model.params["a"].detach(), float(net.model.params["omega"])
    tau = 1000 * tr * torch.arange(1, 301, dtype=torch.float64)  # ms
    exact = torch.exp(a * tau[:, None]) * torch.cos(w * tau[:, None])
    assert acf.shape == (1, 300, N)
    assert (acf[0] - exact).abs().max().item() < 0.01
    torch.testing.assert_close(fc[0], torch.eye(N, dtype=torch.float64))
    assert linearized_stats(BoldSimulator(net, IdentityBold(dt=tr, n_regions=N)), tr)[1] is None


def test_the_linearised_autocorrelation_has_the_gradient_of_finite_differences(integral):
    """gradcheck (float64) of the band-passed autocorrelations with respect to each region's
    omega and a."""
    net = _network(omega_scope="regional")
    sim = BoldSimulator(net, IdentityBold(dt=2.0, n_regions=N))
    params = net.model.params

    def acf(omega, a):
        with params.replaced("omega", omega), params.replaced("a", a):
            return linearized_stats(sim, 2.0, SimulatedBoldFilter(2.0), n_lags=4)[1]

    omega = torch.linspace(2e-4, 4e-4, N, dtype=torch.float64).requires_grad_(True)
    a = params["a"].detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(acf, (omega, a), eps=1e-9, atol=1e-5, rtol=1e-4)


@pytest.mark.long
def test_the_linearised_fc_and_autocorrelation_are_what_long_simulations_converge_to():
    """Weak noise (the linear regime), 20 000 s of band-passed BOLD: the FC and each region's
    autocorrelation over 10 s of lags agree with the linearised ones to sampling error."""
    net = _network(G=5e-4, sigma=1e-4)
    with torch.no_grad():
        net.model.params.set_value("a", torch.full((N,), -2e-4, dtype=torch.float64))
    sim = BoldSimulator(net, IdentityBold(dt=2.0, n_regions=N))
    y, filt = _long_simulation(sim)
    with torch.no_grad():
        fc_lin, acf = linearized_stats(sim, 2.0, filt, n_lags=5)
    assert float((_upper(metrics.fc(y)) - _upper(fc_lin)).abs().max()) < 0.02  # FC ~ 0.7
    assert (metrics.autocorrelation(y, 5) - acf).abs().max().item() < 0.03


@pytest.mark.parametrize("head", ["none", "balloon"])
def test_the_modal_integral_is_the_solves_to_rounding(head, monkeypatch):
    """The eigenmode integral and the solve per frequency give the same band-passed FC and
    autocorrelations (a coupled, asymmetric network of distinct regions)."""
    from brainfit import linear

    net = _network(G=5e-4, omega_scope="regional")
    with torch.no_grad():
        net.model.params.set_value("omega", torch.linspace(2e-4, 4e-4, N, dtype=torch.float64))
        net.weights.mul_(torch.rand(N, N, generator=torch.Generator().manual_seed(1),
                                    dtype=torch.float64))
    bold = (IdentityBold(dt=2.0, n_regions=N) if head == "none"
            else BalloonWindkessel(dt=0.08, n_regions=N).double())
    sim = BoldSimulator(net, bold)
    assert linear.well_separated(torch.linalg.eigvals(network_jacobian(net)))
    monkeypatch.setattr(linear, "MODE_GAP", 0.0)
    fc_modes, acf_modes = linearized_stats(sim, 2.0, SimulatedBoldFilter(2.0), n_lags=8)
    monkeypatch.setattr(linear, "MODE_GAP", math.inf)
    fc_solves, acf_solves = linearized_stats(sim, 2.0, SimulatedBoldFilter(2.0), n_lags=8)
    torch.testing.assert_close(fc_modes, fc_solves, rtol=0, atol=1e-10)
    torch.testing.assert_close(acf_modes, acf_solves, rtol=0, atol=1e-10)
    assert float((fc_modes[0].detach() - torch.eye(N, dtype=torch.float64)).abs().max()) > 0.05


def test_a_head_with_regional_parameters_takes_the_solves(monkeypatch):
    """A Balloon head whose kappa is per region has a transfer per region, which the modal
    integral cannot take: the solves are used (the numbers of forced solves), with the gradient
    of each region's kappa (gradcheck, float64); all kappas equal, they give the global head's
    numbers."""
    from brainfit import linear

    net = _network(G=5e-4)
    regional = BalloonWindkessel(dt=0.08, n_regions=N,
                                 params={"kappa": {"value": 0.65, "scope": "regional"}}).double()
    one = BalloonWindkessel(dt=0.08, n_regions=N, params={"kappa": 0.65}).double()
    assert not linear.same_for_every_region(regional)
    assert linear.same_for_every_region(one)
    fc_r, acf_r = linearized_stats(BoldSimulator(net, regional), 2.0, n_lags=4)
    fc_1, acf_1 = linearized_stats(BoldSimulator(net, one), 2.0, n_lags=4)
    torch.testing.assert_close(fc_r, fc_1, rtol=0, atol=1e-10)
    torch.testing.assert_close(acf_r, acf_1, rtol=0, atol=1e-10)
    sim = BoldSimulator(net, regional)

    def stats(kappa):
        with regional.params.replaced("kappa", kappa):
            return linearized_stats(sim, 2.0, n_lags=2)

    kappa = torch.linspace(0.45, 0.85, N, dtype=torch.float64).requires_grad_(True)
    fc, acf = (t.detach() for t in stats(kappa))
    monkeypatch.setattr(linear, "MODE_GAP", math.inf)
    forced = stats(kappa)
    torch.testing.assert_close(fc, forced[0].detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(acf, forced[1].detach(), rtol=0, atol=1e-12)
    assert float((fc - fc_1.detach()).abs().max()) > 1e-4  # the kappas matter
    assert torch.autograd.gradcheck(stats, (kappa,), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_identical_uncoupled_regions_take_the_solves():
    """Identical regions without coupling have repeated eigenvalues: no well-defined eigenmodes,
    so the integral is done by solves, which give uncorrelated regions of the analytic
    autocorrelation exp(a tau) cos(omega tau)."""
    from brainfit import linear

    net = _network()
    with torch.no_grad():
        net.weights.zero_()
        net.model.params.set_value("a", torch.full((N,), -3e-5, dtype=torch.float64))
    assert not linear.well_separated(torch.linalg.eigvals(network_jacobian(net)))
    fc, acf = linearized_stats(BoldSimulator(net, IdentityBold(dt=0.1, n_regions=N)), 0.1,
                               n_lags=300)
    tau = 100.0 * torch.arange(1, 301, dtype=torch.float64)  # ms
    exact = torch.exp(-3e-5 * tau) * torch.cos(float(net.model.params["omega"]) * tau)
    assert (acf[0] - exact[:, None]).abs().max().item() < 0.01
    torch.testing.assert_close(fc[0], torch.eye(N, dtype=torch.float64))


def _compose(overrides):
    from pathlib import Path

    from hydra import compose, initialize_config_dir

    from brainfit.fit import register_configs

    register_configs()
    conf = Path(__file__).resolve().parents[1] / "conf"
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return compose(config_name="train", overrides=list(overrides))


LINEAR = ["data.subjects=[NAP_001,NAP_002]", "bold=none", "trainer.linearized=true",
          "trainer.eval_every=0", "trainer.eval_seeds=1", "trainer.eval_seconds=200",
          "trainer.progress=false", "trainer.figures=false",
          "+model.params.W={scope: subject_edge}", "threads=1"]


def test_a_linearised_fit_raises_the_training_fc_and_is_scored_by_simulation(tmp_path):
    import json

    from brainfit.checkpoint import load_checkpoint
    from brainfit.fit import run

    run(_compose([*LINEAR, "loss=fc", "trainer.epochs=8"]), out_dir=tmp_path / "lin")
    history = load_checkpoint(tmp_path / "lin" / "checkpoints" / "last.pt")["history"]
    fc = [row["fc_similarity"] for row in history]
    assert fc[-1] > fc[0] + 0.05  # the analytic FC moves toward the fitted part's
    m = json.loads((tmp_path / "lin" / "metrics.json").read_text())
    assert set(m["held_out"]) == {"NAP_001", "NAP_002"}
    assert all(math.isfinite(v["fc_similarity"]) for v in m["held_out"].values())
    assert (tmp_path / "lin" / "fitted_connectivity.npz").is_file()


def test_a_linearised_fit_refuses_a_loss_that_needs_time_series(tmp_path):
    from brainfit.fit import run

    with pytest.raises(ValueError, match="loss=fc"):
        run(_compose([*LINEAR, "loss=fc_fcd", "trainer.epochs=1"]), out_dir=tmp_path / "x")
    assert not (tmp_path / "x" / "checkpoints").exists()


def test_a_network_past_its_bifurcation_has_no_linearised_fc():
    from brainfit.runtime import SimulationDiverged

    net = _network()
    with torch.no_grad():
        net.model.params.raw["a"][1] = net.model.params.specs["a"].inverse_transform(
            torch.tensor(1e-2, dtype=torch.float64))
    with pytest.raises(SimulationDiverged, match=r"unstable.*batch element\(s\) \[0\].*a.high"):
        linearized_fc(BoldSimulator(net, IdentityBold(dt=2.0, n_regions=N)), 2.0)


def test_each_subjects_own_regional_parameters_give_its_own_linearised_statistics():
    """``a`` and ``omega`` of scope ``subject_regional`` (the default hopf fit): in a batch, each
    element's FC and autocorrelations are those of its network alone."""
    g = torch.Generator().manual_seed(3)
    W = torch.rand(N, N, generator=g, dtype=torch.float64)
    W.fill_diagonal_(0)
    a = -2e-5 * (1 + torch.rand(2, N, generator=g, dtype=torch.float64))
    omega = 3.1416e-4 * (1 + torch.rand(2, N, generator=g, dtype=torch.float64))

    def simulator(batch, a, omega):
        model = create64("hopf", n_regions=N, n_batch=batch, params={
            "a": {"value": a, "scope": "subject_regional"}, "gamma": 1e-3,
            "omega": {"value": omega, "scope": "subject_regional"}})
        noise = create_noise("white", model.state_names, sigma=1e-3).double()
        net = BrainNetwork(model, W, None, coupling=create_coupling(
            "diffusive", n_regions=N).double(), noise=noise, params={"G": 3e-4},
            n_batch=batch).double()
        return BoldSimulator(net, IdentityBold(dt=2.0, n_regions=N))

    fc, acf = linearized_stats(simulator(2, a, omega), 2.0, n_lags=3)
    for b in range(2):
        fc_b, acf_b = linearized_stats(simulator(1, a[b:b + 1], omega[b:b + 1]), 2.0, n_lags=3)
        torch.testing.assert_close(fc[b:b + 1], fc_b, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(acf[b:b + 1], acf_b, rtol=1e-10, atol=1e-12)
    assert (fc[0] - fc[1]).abs().max() > 1e-3  # the two subjects differ
