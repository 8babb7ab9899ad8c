"""The fast engine against the reference loop: same numbers, same gradients, bounded memory."""

from __future__ import annotations

import itertools
import subprocess
import warnings

import pytest
import torch
from problems import create64

from brainfit import engine, models
from brainfit.coupling import COUPLINGS
from brainfit.integrate import INTEGRATORS
from brainfit.network import BrainNetwork
from brainfit.noise import OrnsteinUhlenbeckNoise, WhiteNoise
from brainfit.runtime import Interrupted
from brainfit.stimulus import Stimulus

F64 = torch.float64
RTOL = 1e-9  # float64: the two engines differ only in the order of sums
#: gradients are sums over every step whose terms can cancel, which amplifies the rounding of the
#: different order (Jansen-Rit with the saturating pre-summation tanh: 2.4e-9 relative on dL/dG)
RTOL_GRAD = 1e-8

#: each model with the coupling it is used with and a step (ms) it is stable at
MODELS = {
    "harmonic": ("diffusive", 0.1), "hopf": ("diffusive", 0.1), "van_der_pol": ("diffusive", 0.1),
    "fitzhugh_nagumo": ("diffusive", 0.1), "kuramoto": ("kuramoto", 0.1),
    "threshold_linear": ("linear", 0.1), "wilson_cowan": ("linear", 0.1),
    "jansen_rit": ("sigmoidal_jr", 0.1), "wong_wang": ("linear", 0.1),
    "wong_wang_ei": ("linear", 0.1), "mpr": ("linear", 0.01), "mpr_ei": ("linear", 0.01),
}
NOISES = {"none": None, "white": WhiteNoise, "ou": OrnsteinUhlenbeckNoise}
DELAYS = ("none", "whole", "interpolated")


def _network(model: str, coupling: str, integrator: str, delays: str, noise: str,
             engine_name: str, n: int = 4, batch: int = 2, stimulus: bool = False,
             subject_lengths: bool = False, connectivity: dict | None = None) -> BrainNetwork:
    g = torch.Generator().manual_seed(7)
    W = torch.rand(n, n, generator=g, dtype=F64) * (torch.rand(n, n, generator=g) > 0.2)
    shape = (batch, n, n) if subject_lengths else (n, n)
    # lags of 0 to ~40 steps at dt = 0.1 ms: short edges (inside a block) and long ones
    L = torch.rand(shape, generator=g, dtype=F64) * 4.0
    m = create64(model, n_regions=n, n_batch=batch)
    nz = None
    if NOISES[noise] is not None:
        nz = NOISES[noise](m.state_names, 1e-3, trainable=True).double()
    stochastic = nz is not None
    integ = {"euler": "euler_maruyama", "heun": "stochastic_heun"}.get(integrator, integrator) \
        if stochastic else {"euler_maruyama": "euler", "stochastic_heun": "heun"}.get(
            integrator, integrator)
    stim = None
    if stimulus:
        course = torch.rand(30, n, generator=g, dtype=F64) * 0.01
        stim = Stimulus(n, drive_course=course, sample_dt=0.2, field=torch.ones(30, dtype=F64),
                        gain=0.01, gain_trainable=True).double()
    net = BrainNetwork(m, W, None if delays == "none" else L,
                       speed={"value": 1.0, "trainable": delays == "interpolated"}
                       if delays != "none" else None,
                       coupling=coupling, G={"value": 0.1, "trainable": True}, noise=nz,
                       stimulus=stim, interpolate_delays=delays == "interpolated",
                       integrator=integ, n_batch=batch, engine=engine_name,
                       connectivity=connectivity)
    if connectivity is not None:  # a fitted connectivity away from the SC
        c = net.connectivity
        c.group.data = 0.5 * torch.randn(c.group.shape, generator=g, dtype=F64)
        if c.subject is not None:
            c.subject.data = 0.5 * torch.randn(c.subject.shape, generator=g, dtype=F64)
    return net.double()


def _run(net: BrainNetwork, dt: float, steps: int = 60, chunks: int = 1):
    """Values and gradients of a loss on every recorded observable."""
    names = [net.model.state_names[0], "bold", "coupling"]
    x0 = net.model.initial_state(net.n_batch, generator=torch.Generator().manual_seed(1),
                                 dtype=F64)
    gen = torch.Generator().manual_seed(2)
    outs, state = [], None
    for _ in range(chunks):
        out, state = net.simulate(steps // chunks * dt, dt, state=state, x0=x0, generator=gen,
                                  record=names, period=2 * dt, average=True)
        outs.append(out)
    series = {k: torch.cat([o[k] for o in outs], dim=1) for k in names}
    loss = sum(((s - s.mean()) ** 2).sum() for s in series.values()) + state.x.pow(2).sum()
    params = [p for p in net.parameters() if p.requires_grad]
    return series, torch.autograd.grad(loss, params)


def _assert_engines_agree(model, coupling, integrator, delays, noise, **kw):
    dt = MODELS[model][1]
    (ref, g_ref), (fast, g_fast) = (
        _run(_network(model, coupling, integrator, delays, noise, e, **kw), dt)
        for e in ("reference", "fast"))
    for k in ref:
        scale = float(ref[k].detach().abs().max())
        torch.testing.assert_close(fast[k], ref[k], rtol=RTOL, atol=1e-12 * scale)
    assert len(g_fast) == len(g_ref) > 0
    for a, b in zip(g_fast, g_ref):
        torch.testing.assert_close(a, b, rtol=RTOL_GRAD,
                                   atol=RTOL_GRAD * float(b.abs().max()) + 1e-300)


@pytest.mark.parametrize("model", sorted(MODELS))
def test_every_model_fast_equals_reference(model):
    """Each model with its coupling, delays (short and long edges), noise and Heun."""
    _assert_engines_agree(model, MODELS[model][0], "stochastic_heun", "whole", "white")


@pytest.mark.parametrize("coupling", sorted(COUPLINGS))
@pytest.mark.parametrize("delays", DELAYS)
def test_every_coupling_and_delay_mode_fast_equals_reference(coupling, delays):
    model = "kuramoto" if coupling == "kuramoto" else "hopf"
    _assert_engines_agree(model, coupling, "heun", delays, "ou")


@pytest.mark.parametrize("integrator", sorted(INTEGRATORS))
@pytest.mark.parametrize("noise", sorted(NOISES))
def test_every_integrator_and_noise_fast_equals_reference(integrator, noise):
    _assert_engines_agree("wilson_cowan", "linear", integrator, "interpolated", noise)


@pytest.mark.parametrize("delays", DELAYS)
@pytest.mark.parametrize("scope", ["edge", "subject_edge"])
def test_fitted_connectivity_fast_equals_reference(monkeypatch, delays, scope):
    """Gradients reach the per-connection weights through the custom backward too (forced here
    also without delays, where short runs would take plain autograd)."""
    monkeypatch.setattr(engine, "DIRECT_BYTES", 0)
    _assert_engines_agree("hopf", "diffusive", "heun", delays, "white",
                          connectivity={"scope": scope, "mask": "all"})


def test_stimulus_and_per_subject_lengths_fast_equal_reference():
    _assert_engines_agree("hopf", "diffusive", "heun", "interpolated", "white", stimulus=True,
                          subject_lengths=True)


@pytest.mark.slow
@pytest.mark.parametrize("model,coupling,integrator,delays,noise", [
    c for c in itertools.product(sorted(MODELS), sorted(COUPLINGS), ("euler", "heun"), DELAYS,
                                 ("none", "ou"))
    if (c[1] == "kuramoto") == (c[0] == "kuramoto")])
def test_full_sweep_fast_equals_reference(model, coupling, integrator, delays, noise):
    _assert_engines_agree(model, coupling, integrator, delays, noise)


def test_the_tests_see_short_and_long_edges():
    """The networks above put edges both inside a block (stepped one by one) and across it."""
    net = _network("hopf", "diffusive", "heun", "whole", "none", "fast")
    plan = engine.Plan(net, 0.1, [], 1, False, net.n_batch, 0)
    with plan.cached():
        plan.delay_tables()
    d = plan.delays
    assert d.short is not None and bool(d.long[0].any())
    assert plan.block_len > 1


@pytest.mark.parametrize("keep", [True, False])  # forward history kept, or recomputed
def test_chunks_segments_and_blocks_do_not_change_the_numbers(monkeypatch, keep):
    monkeypatch.setattr(engine, "KEEP_BYTES", engine.KEEP_BYTES if keep else 0)
    net = _network("wilson_cowan", "linear", "heun", "interpolated", "ou", "fast")
    one, g_one = _run(net, 0.1, steps=120)
    three, g_three = _run(net, 0.1, steps=120, chunks=3)
    monkeypatch.setattr(engine, "MAX_SEGMENT", 10)  # 12 segments, each its own autograd node
    seg, g_seg = _run(net, 0.1, steps=120)
    for other, g_other in ((three, g_three), (seg, g_seg)):
        for k in one:
            torch.testing.assert_close(other[k], one[k], rtol=1e-12, atol=1e-15)
        for a, b in zip(g_other, g_one):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)


def test_same_seed_same_numbers():
    a = _run(_network("jansen_rit", "sigmoidal_jr", "heun", "whole", "white", "fast"), 0.1)
    b = _run(_network("jansen_rit", "sigmoidal_jr", "heun", "whole", "white", "fast"), 0.1)
    for k in a[0]:
        assert torch.equal(a[0][k], b[0][k])
    assert all(torch.equal(x, y) for x, y in zip(a[1], b[1]))


def test_noise_stream_depends_only_on_seed_and_step():
    s = engine.NoiseStream(5, (2, 3, 4), F64, torch.device("cpu"))
    whole = s.draws(3, 700)  # crosses block boundaries
    parts = torch.cat([engine.NoiseStream(5, (2, 3, 4), F64, torch.device("cpu")).draws(a, b)
                       for a, b in ((3, 1), (4, 250), (254, 449))])
    assert torch.equal(whole, parts)
    assert not torch.equal(whole, engine.NoiseStream(6, (2, 3, 4), F64, "cpu").draws(3, 700))
    assert whole.std().item() == pytest.approx(1.0, rel=0.05)


@pytest.mark.parametrize("keep", [True, False])
def test_fast_backward_passes_gradcheck(monkeypatch, keep):
    """The custom reverse-time backward against finite differences (short and long edges,
    interpolated delays, several segments; forward history kept or recomputed)."""
    monkeypatch.setattr(engine, "MAX_SEGMENT", 8)
    monkeypatch.setattr(engine, "KEEP_BYTES", engine.KEEP_BYTES if keep else 0)
    net = _network("hopf", "sigmoidal_jr", "heun", "interpolated", "white", "fast", n=3,
                   batch=1)

    class Simulate(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x0):
            out, state = self.net.simulate(3.0, 0.1, x0=x0, record=["x", "coupling"],
                                           generator=torch.Generator().manual_seed(2))
            return out["x"], out["coupling"], state.x

    sim = Simulate()
    names = ["net.params.raw.G", "net.params.raw.speed", "net.model.params.raw.a"]
    params = dict(sim.named_parameters())
    x0 = net.model.initial_state(1, generator=torch.Generator().manual_seed(1), dtype=F64)
    inputs = [x0.requires_grad_()] + [params[k].detach().clone().requires_grad_() for k in names]

    def f(x, *values):
        return torch.func.functional_call(sim, dict(zip(names, values)), (x,))

    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-6, rtol=1e-5, fast_mode=True)


def test_memory_saved_for_backward_does_not_grow_with_the_run(monkeypatch):
    """What the graph keeps is the segments' inputs and the records, not the trajectory."""
    monkeypatch.setattr(engine, "MAX_SEGMENT", 200)
    monkeypatch.setattr(engine, "KEEP_BYTES", 0)
    net = _network("wilson_cowan", "linear", "heun", "whole", "ou", "fast", n=6, batch=1)

    def saved_bytes(steps):
        total = []

        def pack(t):
            total.append(t.numel() * t.element_size())
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out, _ = net.simulate(steps * 0.1, 0.1, generator=torch.Generator().manual_seed(0),
                                  record="bold", period=100 * 0.1, average=True)
        return sum(total), out


    state_bytes = 6 * 2 * 8  # one (B, S, N) state in float64
    # the segments' inputs (a state and a 41-step history per 200 steps) and the records: a
    # fraction of the trajectory, while the reference keeps every step's intermediates
    assert saved_bytes(20000)[0] < 20000 * state_bytes / 5
    net.engine = "reference"
    assert saved_bytes(2000)[0] > 10 * 2000 * state_bytes


def test_the_kept_history_is_given_back(monkeypatch):
    net = _network("wilson_cowan", "linear", "heun", "whole", "ou", "fast")
    before = engine._kept["bytes"]
    _run(net, 0.1)  # forward and backward
    assert engine._kept["bytes"] == before
    out, state = net.simulate(6.0, 0.1, generator=torch.Generator().manual_seed(0))
    assert engine._kept["bytes"] > before  # a graph alive holds its history
    del out, state
    assert engine._kept["bytes"] == before  # a graph dropped without backward gives it back


def test_engine_errors():
    with pytest.raises(ValueError, match="valid engines"):
        _network("hopf", "diffusive", "heun", "whole", "none", "fastest")
    net = _network("hopf", "diffusive", "heun", "whole", "none", "fast")
    _, state = net.simulate(1.0, 0.1, generator=torch.Generator().manual_seed(0))
    net.engine = "reference"
    with pytest.raises(ValueError, match="fast engine"):
        net.simulate(1.0, 0.1, state=state)


@pytest.mark.slow
def test_compiled_block_equals_eager():
    torch.manual_seed(0)
    dt = 0.1
    eager = _run(_network("hopf", "diffusive", "heun", "whole", "white", "fast"), dt)
    net = _network("hopf", "diffusive", "heun", "whole", "white", "fast")
    net.compile = True
    compiled = _run(net, dt)
    for k in eager[0]:
        torch.testing.assert_close(compiled[0][k], eager[0][k], rtol=1e-9, atol=1e-12)
    for a, b in zip(compiled[1], eager[1]):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device present")
def test_fast_equals_reference_on_cuda():
    out = {}
    for e in ("reference", "fast"):
        net = _network("wilson_cowan", "linear", "heun", "interpolated", "ou", e).cuda()
        x0 = net.model.initial_state(2, generator=torch.Generator().manual_seed(1),
                                     dtype=F64).cuda()
        y, _ = net.simulate(6.0, 0.1, x0=x0, generator=torch.Generator().manual_seed(2))
        out[e] = y
    torch.testing.assert_close(out["fast"], out["reference"], rtol=RTOL, atol=1e-12)


def test_every_model_is_covered():
    assert sorted(MODELS) == sorted(models.available())


@pytest.mark.parametrize("length", [0.5, 4.0])  # every lag below the block length; mixed
def test_no_unwritten_memory_is_read(length):
    """With deterministic algorithms on, torch fills new tensors with NaN: any read of a history
    column not yet written would show."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        n = 4
        W = torch.rand(n, n, dtype=F64)
        m = create64("hopf", n_regions=n)
        net = BrainNetwork(m, W, torch.rand(n, n, dtype=F64) * length, speed=1.0,
                           noise=WhiteNoise(m.state_names, 1e-3).double()).double()
        out, _ = net.simulate(20.0, 0.1, generator=torch.Generator().manual_seed(0))
        assert torch.isfinite(out).all()
    finally:
        torch.use_deterministic_algorithms(previous)


def _compile_failure(kind: str) -> Exception:
    """What torch.compile raises when it cannot compile (no C++ compiler, say)."""
    from torch._dynamo import exc as dynamo
    from torch._inductor import exc as inductor

    return {"no compiler": inductor.InvalidCxxCompiler(),
            "compiler crashed": subprocess.CalledProcessError(1, ["g++", "-shared"]),
            "compiler missing": FileNotFoundError(2, "No such file or directory", "g++"),
            "untraceable": dynamo.Unsupported("data-dependent branching")}[kind]


@pytest.mark.parametrize("kind", ["no compiler", "compiler crashed", "compiler missing",
                                  "untraceable"])
def test_a_failing_compilation_falls_back_to_eager(monkeypatch, kind):
    def broken(plan):
        def fn(*args):
            raise _compile_failure(kind)
        return fn

    monkeypatch.setattr(engine, "_compiled", broken)
    net = _network("hopf", "diffusive", "heun", "whole", "white", "fast")
    eager = _run(net, 0.1)[0]
    net.compile = True
    with pytest.warns(UserWarning, match="without compiling"):
        out = _run(net, 0.1)[0]
    assert net.compile is False
    for k in eager:
        torch.testing.assert_close(out[k], eager[k], rtol=0, atol=0)


@pytest.mark.parametrize("wrapped", [False, True], ids=["raised", "wrapped by the compiler"])
@pytest.mark.parametrize("signal_error", [KeyboardInterrupt, Interrupted])
def test_an_interrupt_during_compilation_stops_the_run(monkeypatch, signal_error, wrapped):
    """SIGINT / SIGTERM (the fit's Interrupted) while torch.compile works is not a failed
    compilation to fall back from: it stops the run, even wrapped in the compiler's own error."""
    from torch._dynamo import exc as dynamo

    def interrupted(plan):
        def fn(*args):
            if not wrapped:
                raise signal_error(15)
            try:
                raise signal_error(15)
            except BaseException as err:
                raise dynamo.InternalTorchDynamoError("compiling failed") from err
        return fn

    monkeypatch.setattr(engine, "_compiled", interrupted)
    net = _network("hopf", "diffusive", "heun", "whole", "white", "fast")
    net.compile = True
    with pytest.raises((signal_error, RuntimeError)) as info:
        _run(net, 0.1)
    assert engine._interrupted(info.value)
    assert net.compile is True


def test_an_error_in_the_model_is_not_taken_for_a_failed_compilation(monkeypatch):
    """A genuine error in the compiled block (a shape mismatch in the model, raised when the
    compiled code runs) propagates as itself: no "compile failed", no silent eager rerun."""
    def shape_bug(plan):
        def fn(*args):
            raise RuntimeError("The size of tensor a (3) must match the size of tensor b (4)")
        return fn

    monkeypatch.setattr(engine, "_compiled", shape_bug)
    net = _network("hopf", "diffusive", "heun", "whole", "white", "fast")
    net.compile = True
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "continues without compiling"
        with pytest.raises(RuntimeError, match="size of tensor a"):
            _run(net, 0.1)
    assert net.compile is True


def test_a_model_error_met_while_tracing_is_raised_by_the_eager_step_as_itself(monkeypatch):
    """Dynamo reports a model's own error met while tracing as its TorchRuntimeError; the engine
    then steps eagerly, where the error is raised as itself, without a "compile failed"
    warning and with compilation still on."""
    from torch._dynamo import exc as dynamo

    def traced(plan):
        def fn(*args):
            raise dynamo.TorchRuntimeError("The size of tensor a (3) must match")
        return fn

    def derivative(*args, **kwargs):
        raise RuntimeError("The size of tensor a (3) must match the size of tensor b (4)")

    monkeypatch.setattr(engine, "_compiled", traced)
    net = _network("hopf", "diffusive", "heun", "whole", "white", "fast")
    net.compile = True
    monkeypatch.setattr(net.model, "derivative", derivative)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeError, match="size of tensor b") as info:
            _run(net, 0.1)
    assert not isinstance(info.value, dynamo.TorchDynamoException)
    assert net.compile is True
