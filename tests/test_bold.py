"""The Balloon-Windkessel BOLD head and its streaming wrapper.

What is checked, and why it must hold, is written at each test. Runs are short (tens of seconds of
haemodynamics, a few thousand steps) so the file stays fast on two CPU cores.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.autograd import gradcheck

from brainfit import integrate
from brainfit.bold import (
    PRESETS,
    BalloonWindkessel,
    BoldStream,
    IdentityBold,
    stephan2007_coefficients,
)

F64 = torch.float64


def _values(head: BalloonWindkessel) -> dict[str, float]:
    """The head's parameter values as Python floats (exactly what it integrates with)."""
    return {k: head.params[k].double().item() for k in head.params.names()}


def _reference_rates(phys: torch.Tensor, z: torch.Tensor, p: dict[str, float]) -> torch.Tensor:
    """The Balloon-Windkessel equations as written in DESIGN.md, in (s, f, v, q), float64."""
    s, f, v, q = phys.unbind(1)
    e = 1 - (1 - p["rho"]) ** (1 / f)
    ds = z - p["kappa"] * s - p["gamma"] * (f - 1)
    df = s
    dv = (f - v ** (1 / p["alpha"])) / p["tau"]
    dq = (f * e / p["rho"] - q * v ** (1 / p["alpha"] - 1)) / p["tau"]
    return torch.stack((ds, df, dv, dq), 1)


def _reference_signal(phys: torch.Tensor, p: dict[str, float]) -> torch.Tensor:
    _, _, v, q = phys.unbind(1)
    return p["V0"] * (p["k1"] * (1 - q) + p["k2"] * (1 - q / v) + p["k3"] * (1 - v))


def _smooth_drive(t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A continuous, resting-state-like drive z(t) (t in s): slow sines, shape (1, T, 2)."""
    freqs = torch.tensor([0.03, 0.07, 0.13, 0.31, 0.5], dtype=F64)
    phase = 2 * math.pi * torch.rand(2, 5, generator=gen, dtype=F64)
    amp = 0.1 * torch.rand(2, 5, generator=gen, dtype=F64)
    arg = 2 * math.pi * t[:, None, None] * freqs[None, None, :] + phase[None]
    return (amp[None] * torch.sin(arg)).sum(-1)[None]  # (1, T, 2)


# -- the equations ---------------------------------------------------------------------------------
def test_log_space_rates_equal_the_balloon_equations(gen):
    """derivative() integrates (s, log f, log v, log q); by the chain rule its rates must be
    (s', f'/f, v'/v, q'/q) of the equations in DESIGN.md, and signal() must equal y(v, q). This
    checks the algebra of the cancellation-free rewrite (E(f), expm1 forms) at states far from
    rest, where a mistake would show."""
    head = BalloonWindkessel().double()
    p = _values(head)
    phys = torch.stack((
        0.3 * torch.randn(4, 5, generator=gen, dtype=F64),
        torch.empty(4, 5, dtype=F64).uniform_(0.5, 2.0, generator=gen),
        torch.empty(4, 5, dtype=F64).uniform_(0.7, 1.5, generator=gen),
        torch.empty(4, 5, dtype=F64).uniform_(0.6, 1.4, generator=gen),
    ), 1)
    z = torch.randn(4, 5, generator=gen, dtype=F64)
    ref = _reference_rates(phys, z, p)
    ref[:, 1:] = ref[:, 1:] / phys[:, 1:]
    got = head.derivative(head.from_physical(phys), z)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-13)
    torch.testing.assert_close(head.signal(head.from_physical(phys)),
                               _reference_signal(phys, p), rtol=1e-12, atol=1e-14)


def test_rest_is_an_exact_fixed_point():
    """With no drive, rest (all deviations 0) has zero rates and zero signal, in float32 too:
    every rate is built from expm1 of 0 terms, so nothing is left over by rounding."""
    head = BalloonWindkessel(n_regions=3)
    x = head.init_state(2, 3)
    assert x.shape == (2, 4, 3) and not x.any()
    assert not head.derivative(x, torch.zeros(2, 3)).any()
    assert not head.signal(x).any()


def test_impulse_response_peaks_after_3_to_6_s_then_undershoots():
    """A 100 ms box of drive gives the canonical haemodynamic response: the s-f pair is an
    underdamped oscillator (kappa^2 < 4 gamma for both presets' haemodynamics), so flow overshoots
    and then dips below baseline; the BOLD peak comes a few seconds after the impulse (3-6 s for
    the Friston 2003 parameters) and is followed by a post-stimulus undershoot below 0."""
    dt = 0.01
    z = torch.zeros(1, 3000, 1, dtype=F64)
    z[:, :10] = 1.0
    for preset in ("friston2003", "stephan2007"):
        y = BalloonWindkessel(preset, dt=dt).double()(z, dt)[0, :, 0]
        i = int(y.argmax())
        t_peak = (i + 1) * dt
        assert 3.0 <= t_peak <= 6.0, (preset, t_peak)
        assert y[i] > 0
        undershoot = y[i:].min()
        assert undershoot < -0.02 * y[i], (preset, undershoot.item(), y[i].item())
        assert abs(y[-1]) < 0.05 * y[i]  # and it returns towards baseline


def test_constant_drive_settles_to_the_analytic_steady_state():
    """For a constant drive u the fixed point is s = 0, f = 1 + u/gamma (from s' = 0),
    v = f^alpha (from v' = 0), and q' = 0 gives f E(f)/rho = q v^(1/alpha - 1), i.e.
    q = f E(f) v / (rho v^(1/alpha)) = v E(f) / rho since v^(1/alpha) = f. Heun's map has the
    ODE's fixed points, so after 200 s (60 decay times of the slowest mode, kappa/2) the
    integrated state and y must equal them to float64 precision."""
    head = BalloonWindkessel(dt=0.05, n_regions=3).double()
    p = _values(head)
    u = torch.tensor([[0.05, 0.4, 1.5]], dtype=F64)
    z = u[:, None, :].expand(1, 4000, 3)
    y, x = head.integrate(head.init_state(1, 3, dtype=F64), z)
    f = 1 + u / p["gamma"]
    v = f ** p["alpha"]
    e = 1 - (1 - p["rho"]) ** (1 / f)
    q = v * e / p["rho"]
    expected = torch.stack((torch.zeros_like(f), f, v, q), 1)
    torch.testing.assert_close(head.to_physical(x), expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(y[:, -1], _reference_signal(expected, p), rtol=1e-9, atol=1e-13)


# -- precision -------------------------------------------------------------------------------------
def test_float32_matches_float64_on_resting_state_fluctuations(gen):
    """The reason for the deviation variables and compensated summation: the drive is a
    resting-state-sized fluctuation (1e-3 x white noise), so y has a std of ~2e-6. Written in
    f, v, q near 1, float32 would resolve only ~6e-8 of them and y would come out quantised.
    Here float32 must follow float64 to 1e-3 of y's std, and every sample must be distinct.

    Batch element 1 adds a mean drive of 0.2 (a neural operating point) and starts at its steady
    state: y then sits at ~0.02 with fluctuations 1e-4 of that. float32 represents y itself only
    to ulp(0.02) ~ 2e-9 ~ 1e-3 of their std, and its rates at O(1) deviations carry rounding
    errors of ~1e-8 that shift the fixed point by about as much, so the floor is a few 1e-3;
    the state's own rounding (1e-2 of the std without it) is carried by the compensated sum.
    Both heads use the same (float32) parameter values, so only the arithmetic differs."""
    z = 1e-3 * torch.randn(2, 40_000, 3, generator=gen, dtype=F64)  # 40 s at 1 ms
    z[1] += 0.2
    head = BalloonWindkessel()
    p = _values(head)
    f = 1 + 0.2 / p["gamma"]
    v = f ** p["alpha"]
    q = v * (1 - (1 - p["rho"]) ** (1 / f)) / p["rho"]
    operating_point = torch.tensor([0.0, math.log(f), math.log(v), math.log(q)], dtype=F64)
    out = {}
    for dtype in (torch.float32, torch.float64):
        stream = BoldStream(head, 2, 3, neural_dt=1.0, tr=0.2, burn_in=10.0, dtype=dtype)
        stream.state[1] = operating_point[:, None].to(dtype)
        out[dtype] = stream.push(z.to(dtype)).double()
    ref, got = out[torch.float64], out[torch.float32]
    assert ref.shape == (2, 150, 3)
    std = ref.std(dim=1)  # (2, 3)
    assert (std < 1e-5).all()  # fluctuations, not a transient
    err = (got - ref).abs().amax(dim=1) / std
    assert (err[0] < 1e-3).all(), err[0]
    assert (err[1] < 8e-3).all(), err[1]
    for r in range(3):  # not quantised: as many distinct values as samples
        assert got[0, :, r].unique().numel() == got.shape[1]


# -- streaming -------------------------------------------------------------------------------------
def test_chunked_push_equals_one_push(gen):
    """The stream carries the haemodynamic state, its rounding compensation and the partial
    averaging window between pushes, so any split of the drive into chunks (including empty
    ones and ones shorter than a window) gives the same samples as one push."""
    head = BalloonWindkessel(n_regions=2).double()
    z = 0.5 + 0.1 * torch.randn(3, 25_000, 2, generator=gen, dtype=F64)  # 25 s at 1 ms
    whole = BoldStream(head, 3, 2, neural_dt=1.0, tr=0.7, burn_in=2.0)
    ref = whole.push(z)
    pieces = BoldStream(head, 3, 2, neural_dt=1.0, tr=0.7, burn_in=2.0)
    outs, t = [], 0
    sizes = [0, 3, 7, 0, 1] + torch.randint(1, 3000, (40,), generator=gen).tolist()
    for size in sizes:
        outs.append(pieces.push(z[:, t:t + size]))
        t += size
        if t >= z.shape[1]:
            break
    outs.append(pieces.push(z[:, t:]))
    got = torch.cat(outs, dim=1)
    assert got.shape == ref.shape == (3, 32, 2)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(pieces.state, whole.state, rtol=1e-12, atol=1e-15)
    assert pieces.n_samples == whole.n_samples == 32


def test_burn_in_is_dropped_and_samples_sit_at_burn_in_plus_k_plus_1_tr():
    """10.25 s of drive, burn-in 3 s, TR 0.5 s: samples are taken at 3 + (k+1) 0.5 s <= 10.25 s,
    so k = 0..13, 14 samples. Each must equal the head's signal at that time from an
    independent integration of the window-averaged drive (this pins the time convention)."""
    head = BalloonWindkessel().double()
    n_neural = 10_250  # 1 ms steps
    z = 0.5 + 0.3 * torch.sin(torch.arange(n_neural, dtype=F64) * 1e-3)[None, :, None]
    z = z.repeat(2, 1, 1)
    stream = BoldStream(head, 2, 1, neural_dt=1.0, tr=0.5, burn_in=3.0)
    y = stream.push(z)
    assert y.shape == (2, 14, 1) and stream.n_samples == 14
    assert stream.sample_time(0) == pytest.approx(3.5)
    assert stream.time == pytest.approx(10.25)
    windows = z.reshape(2, 1025, 10, 1).mean(2)
    every, _ = head.integrate(head.init_state(2, 1, dtype=F64), windows)  # y at (n+1) 0.01 s
    idx = [round((3.0 + (k + 1) * 0.5) / 0.01) - 1 for k in range(14)]
    torch.testing.assert_close(y, every[:, idx], rtol=1e-12, atol=1e-15)


def test_result_does_not_depend_on_the_neural_step(gen):
    """The stream averages the drive over each BOLD step, i.e. it feeds the haemodynamics the
    integral of the drive over the step. The same continuous drive sampled at the midpoints of
    0.1 ms and of 0.5 ms steps has window averages equal to the exact integral up to the
    midpoint rule's h^2/24 z'' (~1e-7 relative here), so the BOLD must agree to ~1e-6. (Taking
    one sample per window instead of the average would differ by ~1e-3.)"""
    out = []
    for neural_dt in (0.1, 0.5):
        n = round(30_000 / neural_dt)  # 30 s
        t = (torch.arange(n, dtype=F64) + 0.5) * neural_dt * 1e-3
        z = _smooth_drive(t, torch.Generator().manual_seed(7))
        stream = BoldStream(BalloonWindkessel(n_regions=2).double(), 1, 2,
                            neural_dt=neural_dt, tr=0.5)
        out.append(stream.push(z))
    a, b = out
    assert a.shape == b.shape == (1, 60, 2)
    assert ((a - b).abs().amax(1) / a.std(1)).max() < 1e-6


def test_detach_cuts_the_graph_between_chunks(gen):
    """Truncated backprop: after detach() the carried state has no history, so the gradient of
    the second chunk's output with respect to the first chunk's drive is not computed."""
    head = BalloonWindkessel().double()
    stream = BoldStream(head, 1, 1, neural_dt=10.0, tr=0.1)
    z1 = torch.randn(1, 50, 1, dtype=F64, generator=gen, requires_grad=True)
    z2 = torch.randn(1, 50, 1, dtype=F64, generator=gen, requires_grad=True)
    stream.push(z1)
    assert stream.state.grad_fn is not None
    stream.detach()
    assert stream.state.grad_fn is None and not stream.state.requires_grad
    y2 = stream.push(z2)
    (g1, g2) = torch.autograd.grad(y2.sum(), (z1, z2), allow_unused=True)
    assert g1 is None and g2 is not None and g2.abs().sum() > 0


def test_forward_returns_the_input_shape_and_substeps(gen):
    """forward(z, dt) gives one BOLD value per input sample. With dt = 0.1 s and the head's step
    0.01 s it takes 10 substeps per sample with the drive held, so it must equal integrate() on
    the drive repeated 10 times, read every 10th step."""
    head = BalloonWindkessel(n_regions=4).double()
    z = 0.2 * torch.rand(2, 30, 4, generator=gen, dtype=F64)
    y = head(z, 0.1)
    assert y.shape == z.shape
    every, _ = head.integrate(head.init_state(2, 4, dtype=F64), z.repeat_interleave(10, dim=1))
    torch.testing.assert_close(y, every[:, 9::10], rtol=1e-12, atol=1e-15)
    # dt below the head's step: integrated at dt itself
    y_fine = head(z[:, :5], 0.005)
    ref, _ = head.integrate(head.init_state(2, 4, dtype=F64), z[:, :5], dt=0.005)
    torch.testing.assert_close(y_fine, ref, rtol=1e-12, atol=1e-15)


def test_same_result_on_every_device(device, gen):
    """The head runs wherever its parameters and the drive are, with the same arithmetic; a
    stream with neural_dt = BOLD step = TR returns the signal after every step, as forward()."""
    head = BalloonWindkessel(n_regions=2).double()
    z = 0.3 * torch.rand(2, 20, 2, generator=gen, dtype=F64)
    ref = head(z, 0.01)
    got = head.to(device)(z.to(device), 0.01).cpu()
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-14)
    stream = BoldStream(head, 2, 2, neural_dt=10.0, tr=0.01, device=device)
    assert stream.state.device.type == torch.device(device).type
    torch.testing.assert_close(stream.push(z.to(device)).cpu(), ref, rtol=1e-10, atol=1e-14)


# -- accuracy and gradients ------------------------------------------------------------------------
@pytest.mark.parametrize(("integrator", "order"), [("heun", 2), ("euler", 1)])
def test_halving_the_step_converges_at_the_integrators_order(integrator, order, gen):
    """The drive is piecewise constant on 0.1 s blocks and every step size divides 0.1 s, so
    all runs solve the same ODE; the error of a scheme of order p shrinks by 2^p when the step is
    halved, so successive differences y(h) - y(h/2) shrink by 2^p as well."""
    z = 0.5 * torch.rand(1, 150, 2, generator=gen, dtype=F64)  # 15 s
    ys = [BalloonWindkessel(dt=0.1 / n, integrator=integrator).double()(z, 0.1)
          for n in (2, 4, 8, 16)]
    diffs = [(a - b).abs().max().item() for a, b in zip(ys[:-1], ys[1:], strict=True)]
    slopes = [math.log2(d1 / d2) for d1, d2 in zip(diffs[:-1], diffs[1:], strict=True)]
    assert all(abs(s - order) < 0.2 for s in slopes), (diffs, slopes)


class _RungeKutta4(integrate.Integrator):
    """The classical fourth-order Runge-Kutta scheme, a deterministic scheme brainfit does not
    register."""

    order = 4.0
    name = "rk4_for_the_test"

    def _step(self, f, x, dt, dW):
        k1 = f(x)
        k2 = f(x + 0.5 * dt * k1)
        k3 = f(x + 0.5 * dt * k2)
        k4 = f(x + dt * k3)
        return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)


def test_another_deterministic_scheme_integrates_the_head_as_asked(gen):
    """A deterministic scheme other than Euler and Heun integrates the haemodynamics itself (it
    used to run as Heun without a word): the states are its own steps of the head's derivative,
    not Heun's; and the increment is still formed without subtracting the state, so float32
    follows float64 on resting-state-sized fluctuations."""
    head = BalloonWindkessel(dt=0.2, integrator=_RungeKutta4(), n_regions=3).double()
    assert "rk4_for_the_test" in repr(head)
    z = 0.5 * torch.rand(2, 30, 3, generator=gen, dtype=F64)
    y, state = head.integrate(head.init_state(2, dtype=F64), z)
    x, ys = head.init_state(2, dtype=F64), []
    for k in range(z.shape[1]):
        x = _RungeKutta4().step(lambda s, k=k: head.derivative(s, z[:, k]), x, 0.2)
        ys.append(head.signal(x))
    torch.testing.assert_close(state, x, rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(y, torch.stack(ys, 1), rtol=1e-10, atol=1e-15)
    heun = BalloonWindkessel(dt=0.2, n_regions=3).double()
    y_heun, _ = heun.integrate(heun.init_state(2, dtype=F64), z)
    assert (y - y_heun).abs().max() > 1e-3 * y.abs().max()  # the scheme makes a difference
    small = 1e-3 * torch.randn(1, 400, 3, generator=gen, dtype=F64)
    head32 = BalloonWindkessel(dt=0.05, integrator=_RungeKutta4(), n_regions=3)
    out = {dtype: head32.integrate(head32.init_state(1, dtype=dtype), small.to(dtype))[0].double()
           for dtype in (torch.float32, torch.float64)}
    std = out[torch.float64].std(dim=1)
    assert ((out[torch.float32] - out[torch.float64]).abs().amax(dim=1) / std < 1e-3).all()


def test_gradcheck_wrt_drive_and_haemodynamic_parameters(gen):
    """Gradients of the BOLD output with respect to the neural drive and to the (fitted,
    unconstrained) kappa, gamma and tau agree with finite differences in float64."""
    head = BalloonWindkessel(dt=0.05, trainable=["kappa", "gamma", "tau"], n_regions=2).double()
    names = ["kappa", "gamma", "tau"]
    assert all(head.params.raw[k].requires_grad for k in names)
    assert not head.params.raw["rho"].requires_grad
    raws = [head.params.raw[k].detach().clone().requires_grad_(True) for k in names]
    z = (0.5 * torch.rand(1, 12, 2, generator=gen, dtype=F64)).requires_grad_(True)

    def fn(drive, *raw):
        sd = {f"params.raw.{k}": r for k, r in zip(names, raw, strict=True)}
        return torch.func.functional_call(head, sd, (drive, 0.25))

    assert gradcheck(fn, (z, *raws), eps=1e-6, atol=1e-8, rtol=1e-5)


# -- presets and parameters ------------------------------------------------------------------------
def test_presets_and_field_strength_coefficients():
    """friston2003 uses the classical coefficients k1 = 7 rho, k2 = 2, k3 = 2 rho - 0.2; the
    revised ones are k1 = 4.3 nu0 rho TE, k2 = epsilon r0 rho TE, k3 = 1 - epsilon with the
    tabulated constants (1.5 T: nu0 40.3 /s, r0 25 /s, TE 40 ms, epsilon 1; 3 T: nu0 84.8 /s,
    r0 110 /s, TE 33.1 ms, epsilon 0.47). Overriding rho recomputes the preset's k's."""
    p = PRESETS["friston2003"]
    assert p["k1"] == pytest.approx(7 * 0.34) and p["k3"] == pytest.approx(2 * 0.34 - 0.2)
    k = stephan2007_coefficients(0.34, 1.5)
    assert k == pytest.approx((4.3 * 40.3 * 0.34 * 0.04, 25 * 0.34 * 0.04, 0.0))
    assert PRESETS["stephan2007"]["k1"] == pytest.approx(k[0])
    k3t = stephan2007_coefficients(0.34, 3.0)
    assert k3t == pytest.approx((4.3 * 28.265 * 3 * 0.34 * 0.0331, 0.47 * 110 * 0.34 * 0.0331,
                                 0.53))
    assert stephan2007_coefficients(0.4, 7.0, te=0.025, epsilon=0.1, r0=340.0)[0] == \
        pytest.approx(4.3 * 28.265 * 7 * 0.4 * 0.025)
    with pytest.raises(ValueError, match="no tabulated constants"):
        stephan2007_coefficients(0.34, 7.0)
    with pytest.raises(ValueError, match="rho must be a positive, finite number"):
        stephan2007_coefficients(-0.34, 1.5)
    with pytest.raises(ValueError, match=r"te must be a positive, finite number \(seconds\)"):
        stephan2007_coefficients(0.34, 1.5, te=0.0)
    head = BalloonWindkessel(params={"rho": 0.4})
    assert _values(head)["k1"] == pytest.approx(2.8, rel=1e-6)
    head = BalloonWindkessel(params={"rho": 0.4, "k1": 1.0})
    assert _values(head)["k1"] == pytest.approx(1.0)
    rows = BalloonWindkessel().param_table()
    assert {r["parameter"] for r in rows} == set(PRESETS["friston2003"])
    assert all(r["unit"] for r in rows)


def test_regional_and_subject_parameters_broadcast(gen):
    """A per-region and per-subject parameter gives each (batch, region) its own dynamics: the
    batched run must equal separate single runs with the corresponding scalar values."""
    kappa = torch.tensor([0.5, 0.65, 0.8], dtype=F64)
    tau = torch.tensor([0.9, 1.2], dtype=F64)
    head = BalloonWindkessel(n_regions=3, n_batch=2, params={
        "kappa": {"value": kappa, "scope": "regional"},
        "tau": {"value": tau, "scope": "subject"}}).double()
    z = 0.3 * torch.rand(2, 40, 3, generator=gen, dtype=F64)
    y = head(z, 0.1)
    for b in range(2):
        for r in range(3):
            single = BalloonWindkessel(params={"kappa": kappa[r].item(),
                                               "tau": tau[b].item()}).double()
            ref = single(z[b:b + 1, :, r:r + 1], 0.1)
            torch.testing.assert_close(y[b:b + 1, :, r:r + 1], ref, rtol=1e-12, atol=1e-16)


# -- bad input -------------------------------------------------------------------------------------
def test_bad_input_raises_clear_errors():
    """Each mistake is reported where it enters, naming what was expected."""
    with pytest.raises(ValueError, match="valid presets are"):
        BalloonWindkessel("buxton1998")
    with pytest.raises(ValueError, match="dt must be a positive, finite number"):
        BalloonWindkessel(dt=0.0)
    with pytest.raises(ValueError, match="dt must be a positive, finite number"):
        BalloonWindkessel(dt=-0.01)
    with pytest.raises(ValueError, match="stochastic"):
        BalloonWindkessel(integrator="euler_maruyama")
    with pytest.raises(ValueError, match="valid names"):
        BalloonWindkessel(trainable=["kapa"])
    head = BalloonWindkessel()
    with pytest.raises(ValueError, match="dt must be a positive, finite number"):
        head(torch.zeros(1, 5, 1), dt=0.0)
    with pytest.raises(ValueError, match=r"TR = 0.725 s is not an integer multiple"):
        BoldStream(head, 1, 1, neural_dt=1.0, tr=0.725)
    with pytest.raises(ValueError, match="not an integer multiple of neural_dt = 0.3 ms"):
        BoldStream(head, 1, 1, neural_dt=0.3, tr=0.72)
    with pytest.raises(ValueError, match="burn_in"):
        BoldStream(head, 1, 1, neural_dt=1.0, tr=0.72, burn_in=1.005)
    stream = BoldStream(head, 2, 3, neural_dt=1.0, tr=0.72)
    with pytest.raises(ValueError, match=r"shape \(B, T, N\) = \(2, T, 3\)"):
        stream.push(torch.zeros(2, 10, 4))
    with pytest.raises(ValueError, match=r"shape \(B, T, N\)"):
        stream.push(torch.zeros(2, 10))
    with pytest.raises(TypeError, match="torch.Tensor"):
        stream.push([[0.0]])
    bad = torch.zeros(2, 10, 3)
    bad[1, 4, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        stream.push(bad)
    with pytest.raises(ValueError, match="NaN"):
        head(bad, 0.01)
    with pytest.raises(ValueError, match=r"expects state of shape \(B, 4, N\)"):
        head.signal(torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match="inflow f reached 0"):
        head(torch.full((1, 500, 1), -2.0), 0.01)  # steady inflow would be 1 - 2/0.41 < 0
    regional = BalloonWindkessel(n_regions=3, params={"kappa": {"scope": "regional"}})
    with pytest.raises(ValueError, match="n_regions=4"):
        regional(torch.zeros(1, 5, 4), 0.01)


# -- the neuronal efficacy -------------------------------------------------------------------------
def test_efficacy_scales_the_drive_and_the_steady_inflow():
    """s' = epsilon u - kappa s - gamma (f - 1): a head of efficacy e fed u equals a head of
    efficacy 1 fed e u, and a constant u settles at f = 1 + e u / gamma. The default efficacy is
    exactly 1 (a fixed parameter is stored as its natural value), so the default head's numbers
    are those of s' = u - ... to the last bit."""
    u = torch.full((1, 3000, 2), 0.1, dtype=F64)
    u[:, :, 1] = 0.3
    strong = BalloonWindkessel(dt=0.05, params={"efficacy": 2.5}, n_regions=2).double()
    plain = BalloonWindkessel(dt=0.05, n_regions=2).double()
    assert plain.params["efficacy"].item() == 1.0
    y, x = strong.integrate(strong.init_state(1, 2, dtype=F64), u)
    y1, x1 = plain.integrate(plain.init_state(1, 2, dtype=F64), 2.5 * u)
    torch.testing.assert_close(y, y1, rtol=1e-12, atol=1e-15)
    f = strong.to_physical(x)[0, 1]
    torch.testing.assert_close(f, 1 + 2.5 * u[0, -1] / 0.41, rtol=1e-8, atol=0)
    assert {"efficacy"} <= {r["parameter"] for r in plain.param_table()}


def test_a_checkpoint_without_the_efficacy_loads_with_efficacy_1():
    """Heads saved before the efficacy existed load (it keeps its default, 1); anything else
    missing is still an error."""
    head = BalloonWindkessel(params={"kappa": 0.7})
    old = {k: v for k, v in head.state_dict().items() if not k.endswith("efficacy")}
    fresh = BalloonWindkessel()
    fresh.load_state_dict(old)
    assert fresh.params["kappa"].item() == pytest.approx(0.7)
    assert fresh.params["efficacy"].item() == 1.0
    del old["params.raw.tau"]
    with pytest.raises(RuntimeError, match="tau"):
        BalloonWindkessel().load_state_dict(old)


# -- the identity head (bold=none) -----------------------------------------------------------------
def test_identity_head_samples_the_mean_of_the_drive_over_each_tr(gen):
    """Sample k is the mean of the drive over [burn_in + k TR, burn_in + (k + 1) TR), whatever the
    chunking of the pushes (including chunks that end inside a TR or inside the burn-in)."""
    head = IdentityBold(dt=0.1, n_regions=3)
    z = torch.randn(2, 300, 3, generator=gen, dtype=F64)  # 30 s at 0.1 s
    whole = BoldStream(head, 2, 3, neural_dt=100.0, tr=0.7, burn_in=2.0, dtype=F64)
    y = whole.push(z)
    # burn-in 2 s = 20 samples; TR 0.7 s = 7 samples; (300 - 20) // 7 = 40 TRs
    expected = z[:, 20:20 + 40 * 7].reshape(2, 40, 7, 3).mean(2)
    assert y.shape == (2, 40, 3)
    torch.testing.assert_close(y, expected, rtol=1e-12, atol=1e-14)
    assert [whole.sample_time(k) for k in (0, 39)] == pytest.approx([2.7, 2.0 + 40 * 0.7])
    pieces = BoldStream(head, 2, 3, neural_dt=100.0, tr=0.7, burn_in=2.0, dtype=F64)
    cuts = [0, 3, 11, 12, 25, 26, 40, 41, 97, 180, 300]
    parts = [pieces.push(z[:, a:b]) for a, b in zip(cuts[:-1], cuts[1:])]
    torch.testing.assert_close(torch.cat(parts, 1), y, rtol=1e-12, atol=1e-14)
    # the drive sampled finer than the head's step is averaged over the step first: same TR means
    fine = BoldStream(head, 2, 3, neural_dt=20.0, tr=0.7, burn_in=2.0, dtype=F64)
    torch.testing.assert_close(fine.push(z.repeat_interleave(5, dim=1)), y, rtol=1e-12,
                               atol=1e-14)


def test_identity_head_is_a_head_like_the_balloons():
    """Same factory signature as BalloonWindkessel, no parameters, gradients pass through, and
    forward() returns the drive itself."""
    head = IdentityBold(dt=0.08, n_regions=4, n_batch=2)
    assert head.param_table() == [] and not list(head.parameters())
    z = torch.randn(2, 25, 4, dtype=F64, requires_grad=True)
    assert head(z, 0.08) is z
    stream = BoldStream(head, 2, 4, neural_dt=80.0, tr=0.4, dtype=F64)
    stream.push(z).sum().backward()
    torch.testing.assert_close(z.grad, torch.full_like(z, 1 / 5))  # 25 samples = 5 whole TRs
    with pytest.raises(ValueError, match="dt must be a positive, finite number"):
        IdentityBold(dt=0.0)
    with pytest.raises(ValueError, match="not an integer multiple"):
        BoldStream(head, 1, 4, neural_dt=80.0, tr=0.7)
    with pytest.raises(ValueError, match="NaN"):
        head(torch.full((1, 3, 4), float("nan")), 0.08)
