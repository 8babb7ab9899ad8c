"""Each coupling equals its closed form, evaluated edge by edge with NumPy."""

import numpy as np
import pytest
import torch

from brainfit import coupling, models

B, N = 2, 4


@pytest.fixture
def inputs(gen):
    W = torch.rand(N, N, generator=gen, dtype=torch.float64)
    x = torch.randn(B, N, generator=gen, dtype=torch.float64)
    xd = torch.randn(B, N, N, generator=gen, dtype=torch.float64)
    G = torch.tensor(0.7, dtype=torch.float64)
    return G, W, x, xd


def _loop(fn, W, x, xd):
    """sum_j W_ij fn(source_ij, x_i) computed edge by edge."""
    W, x = W.numpy(), x.numpy()
    src = np.broadcast_to(x[:, None, :], (B, N, N)) if xd is None else xd.numpy()
    out = np.zeros((B, N))
    for b in range(B):
        for i in range(N):
            out[b, i] = sum(W[i, j] * fn(src[b, i, j], x[b, i]) for j in range(N))
    return out


def _tvb_sigmoidal(gx, cmin, cmax, midpoint, a, sigma):
    """TVB's Sigmoidal (post-summation), from its documentation."""
    return cmin + (cmax - cmin) / (1.0 + np.exp(-a * ((gx - midpoint) / sigma)))


def _tvb_tanh_pre(x_j, a, b, midpoint, sigma):
    """TVB's HyperbolicTangent (pre-summation): what each source sends."""
    return a * (1 + np.tanh((b * x_j - midpoint) / sigma))


def _tvb_jr_pre(x_j, cmin, cmax, midpoint, r):
    """TVB's SigmoidalJansenRit (pre-summation): what each source sends."""
    return cmin + (cmax - cmin) / (1.0 + np.exp(r * (midpoint - x_j)))


@pytest.mark.parametrize("delayed", [False, True])
def test_closed_forms(inputs, delayed):
    """Each coupling against TVB's published form, G in the place of TVB's ``a``."""
    G, W, x, xd = inputs
    xd = xd if delayed else None
    g = G.item()

    def check(name, expected, inputs=(x, xd), atol=1e-7, **params):
        c = coupling.create(name, N, B, **params).double()
        got = c(G, W, *inputs).numpy()
        # parameters are stored in the default dtype (float32) before .double()
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=atol)

    check("diffusive", g * _loop(lambda s, xi: s - xi, W, x, xd))
    check("linear", g * _loop(lambda s, xi: s, W, x, xd) + 0.3, b=0.3)
    u = _loop(lambda s, xi: s, W, x, xd)
    check("sigmoidal", _tvb_sigmoidal(u, -1.0, 1.0, 0.0, g, 230.0))  # TVB's defaults
    check("sigmoidal", _tvb_sigmoidal(u, 0.5, 3.0, 0.2, g, 1.5),
          cmin=0.5, cmax=3.0, midpoint=0.2, sigma=1.5)
    check("tanh", _loop(lambda s, xi: _tvb_tanh_pre(s, g, 1.0, 0.0, 1.0), W, x, xd))
    check("tanh", _loop(lambda s, xi: _tvb_tanh_pre(s, g, 1.5, 0.2, 0.7), W, x, xd),
          b=1.5, midpoint=0.2, sigma=0.7)
    # membrane potentials (mV) around the sigmoid's midpoint
    v, vd = 4.0 * x + 6.0, None if xd is None else 4.0 * xd + 6.0
    # TVB's defaults for SigmoidalJansenRit: cmin 0, cmax 2 e0 = 0.005, midpoint 6 mV, r 0.56 /mV
    check("sigmoidal_jr", g * _loop(lambda s, xi: _tvb_jr_pre(s, 0.0, 0.005, 6.0, 0.56), W, v, vd),
          inputs=(v, vd), atol=1e-9)
    check("sigmoidal_jr", g * _loop(lambda s, xi: _tvb_jr_pre(s, 0.0, 0.008, 5.0, 0.3), W, v, vd),
          inputs=(v, vd), atol=1e-9, e0=0.004, v0=5.0, r=0.3)
    check("kuramoto", g * _loop(lambda s, xi: np.sin(s - xi), W, x, xd))


@pytest.mark.parametrize("name", coupling.available())
@pytest.mark.parametrize("delayed", [False, True])
def test_factored_form_equals_the_per_edge_reference(inputs, name, delayed, gen):
    """``post(G, sum_j W_ij pre(x_j(t - d_ij)), x_i, strength_i)`` equals ``forward``, with a
    per-batch G and per-subject weights, parameters off their defaults."""
    _, _, x, xd = inputs
    W = torch.rand(B, N, N, generator=gen, dtype=torch.float64)
    G = torch.tensor([[0.5], [2.0]], dtype=torch.float64)
    c = coupling.create(name, N, B).double()
    with torch.no_grad():
        for raw in c.params.raw.values():
            raw.add_(0.1)
    src = xd if delayed else x.unsqueeze(1).expand(B, N, N)
    sent = c.pre(src.reshape(B, N * N)).reshape(B, c.channels, N, N)
    U = (W.unsqueeze(1) * sent).sum(-1)
    torch.testing.assert_close(c.post(G, U, x, W.sum(-1)), c(G, W, x, xd if delayed else None))


def test_sigmoidal_without_connections_gets_nothing_and_G_is_not_cmax(inputs):
    """TVB's Sigmoidal with its defaults gives an isolated region 0 (not a constant G cmax / 2),
    and G (the steepness) and cmax (the range) change the input differently."""
    _, W, x, _ = inputs
    c = coupling.create("sigmoidal", N, B).double()
    G = torch.tensor(0.7, dtype=torch.float64)
    torch.testing.assert_close(c(G, torch.zeros_like(W), x, None), torch.zeros(B, N).double())
    u = 500.0 * W  # summed inputs where the sigmoid bends (sigma = 230)
    one = torch.ones(B, N, dtype=torch.float64)
    base = c(G, u, one, None)
    doubled_G = c(2 * G, u, one, None)
    wide = coupling.create("sigmoidal", N, B, cmin=-2.0, cmax=2.0).double()(G, u, one, None)
    torch.testing.assert_close(wide, 2 * base)
    assert not torch.allclose(doubled_G, 2 * base)


def test_defaults_are_tvb_s_and_the_jansen_rit_sigmoid_is_the_model_s():
    from brainfit.models.jansen_rit import SIGMOID_SPECS

    def values(name):
        return {k: v.default for k, v in coupling.COUPLINGS[name].param_specs.items()}

    assert values("sigmoidal") == {"cmin": -1.0, "cmax": 1.0, "midpoint": 0.0, "sigma": 230.0}
    assert values("tanh") == {"b": 1.0, "midpoint": 0.0, "sigma": 1.0}
    assert coupling.COUPLINGS["sigmoidal_jr"].param_specs == SIGMOID_SPECS
    jr = models.get("jansen_rit").param_specs
    assert all(jr[k] is spec for k, spec in SIGMOID_SPECS.items())
    assert values("sigmoidal_jr") == {"v0": 6.0, "e0": 0.0025, "r": 0.56}


def test_batched_weights_and_subject_strength(inputs, gen):
    G, W, x, _ = inputs
    Wb = torch.rand(B, N, N, generator=gen, dtype=torch.float64)
    Gb = torch.tensor([[0.5], [2.0]], dtype=torch.float64)
    got = coupling.create("linear", N, B).double()(Gb, Wb, x, None)
    for b in range(B):
        torch.testing.assert_close(got[b], Gb[b, 0] * Wb[b] @ x[b])


def test_unknown_coupling_lists_valid_names():
    with pytest.raises(ValueError, match="valid names are"):
        coupling.create("difusive")


def test_laplacian_rows_sum_to_zero_and_normalised_spectrum_in_0_2(gen):
    A = torch.rand(5, 5, generator=gen, dtype=torch.float64)
    A = A + A.T
    A.fill_diagonal_(0)
    L = coupling.laplacian(A)
    torch.testing.assert_close(L.sum(-1), torch.zeros(5, dtype=torch.float64))
    ev = torch.linalg.eigvalsh(coupling.laplacian(A, normalized=True))
    # the symmetric normalised Laplacian has eigenvalues in [0, 2], the smallest exactly 0
    assert ev.min().abs() < 1e-12 and ev.max() <= 2 + 1e-12
