"""Each coupling equals its closed form, evaluated edge by edge with NumPy."""

import numpy as np
import pytest
import torch

from brainfit import coupling

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


@pytest.mark.parametrize("delayed", [False, True])
def test_closed_forms(inputs, delayed):
    G, W, x, xd = inputs
    xd = xd if delayed else None
    g = G.item()

    def check(name, expected, **params):
        c = coupling.create(name, N, B, **params).double()
        got = c(G, W, x, xd).numpy()
        # parameters are stored in the default dtype (float32) before .double()
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)

    check("diffusive", g * _loop(lambda s, xi: s - xi, W, x, xd))
    check("linear", g * _loop(lambda s, xi: s, W, x, xd) + 0.3, b=0.3)
    u = _loop(lambda s, xi: s, W, x, xd)
    check("sigmoidal", g * 2.0 / (1 + np.exp(-1.5 * (u - 0.2))), scale=2.0, slope=1.5, midpoint=0.2)
    check("tanh", g * 2.0 * np.tanh(1.5 * (u - 0.2)), scale=2.0, slope=1.5, midpoint=0.2)
    jr = lambda s, xi: 2 * 0.0025 / (1 + np.exp(0.56 * (6.0 - s)))  # noqa: E731
    check("sigmoidal_jr", g * _loop(jr, W, x, xd))
    check("kuramoto", g * _loop(lambda s, xi: np.sin(s - xi), W, x, xd))


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
