r"""The FC of a network linearised about its resting state: exact, noise-free and differentiable.

A network at rest at :math:`x^* = 0` (every node model's :math:`F(0) = 0`, e.g. Stuart-Landau
(Hopf) nodes below their bifurcation, :math:`a < 0`) driven by weak white noise is, to first
order, the linear stochastic system

.. math::

    dx = J x\,dt + L\,dW, \qquad J = \partial F / \partial x\,|_{x = 0}, \qquad Q = L L^\top,

where :math:`J` (the whole network's Jacobian: the node dynamics and the coupling through the
weights :math:`W`) is taken by automatic differentiation. Its stationary cross-spectrum (time in
ms, :math:`\omega = 2\pi f / 1000`) is

.. math::

    S_x(f) = (i\omega I - J)^{-1}\, Q\, (i\omega I - J)^{-H},

and the recorded BOLD is a linear filter of the drive :math:`u = C x` (the model's
:meth:`~brainfit.models.base.NeuralMass.bold_input`, linear in :math:`x`): the
Balloon-Windkessel head linearised about rest (:math:`H_b(f)`, from its own Jacobian), or, for
``bold=none``, the mean over each TR (:math:`\mathrm{sinc}^2(f\,\mathrm{TR})`); then the data's
band-pass, run forwards and backwards, whose power gain is :math:`|H(f)|^4` (the square of
:meth:`~brainfit.losses.SimulatedBoldFilter.gain`). The BOLD covariance
is the integral of the filtered cross-spectrum over :math:`0 < f < 1/(2\,\mathrm{TR})` (midpoint
rule, :func:`frequency_grid`), and the FC its correlation. The same integral weighted by
:math:`\cos(2\pi f \tau)` gives each region's autocorrelation at lag :math:`\tau`
(:func:`linearized_stats`): the shape of its spectrum, which sets how much windowed FCs vary (the
FCD). This is what the simulated FC converges to for long simulations in the weak-noise limit; no
noise realisation enters, so its gradient with respect to every parameter (a, omega, G, the
effective connectivity W, the noise) is exact.

The integral is taken over :math:`J`'s eigenmodes, :math:`J = V \Lambda V^{-1}`: every
frequency's resolvent is then :math:`V (i\omega - \Lambda)^{-1} V^{-1}`, and partial fractions
reduce the integral to one sum over frequencies per mode (:func:`_moments_by_modes`), so one
eigendecomposition and a few matrix products replace a linear solve per frequency (an epoch of
the default fit: ``python scripts/bench.py --epochs``, ``docs/benchmarks.md``). Where two
eigenvalues nearly coincide (:func:`well_separated`; e.g. identical uncoupled regions) the
eigenvectors and their gradient are ill-defined, and where the head's transfer differs between
regions it does not factor out; there the solves are used (:func:`_moments_by_solves`). Both
give the same numbers to rounding.

Used by ``trainer.linearized=true`` (Deco et al. 2019's and Gilson et al. 2016's effective
connectivity fits work on this covariance): the fit runs on the analytic FC and is scored, as
every fit, by simulating the nonlinear model (:mod:`brainfit.fit.scoring`).

Requirements: no conduction delays, white noise, and a model at rest at 0 (the check is
:math:`|F(0)|` small against the Jacobian's scale); otherwise :class:`ValueError` says which. The
linearisation must be stable (every eigenvalue of :math:`J` with a negative real part: the nodes
below their bifurcation), else :class:`~brainfit.runtime.SimulationDiverged`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.func import jvp, vmap

from brainfit.bold import BalloonWindkessel, IdentityBold
from brainfit.runtime import SimulationDiverged

#: frequencies of the midpoint rule of the spectral integral: ``DENSE`` below ``DENSE_HZ`` (where
#: the BOLD band and the narrow peaks of nodes near their bifurcation lie), ``SPARSE`` above
DENSE, SPARSE, DENSE_HZ = 160, 32, 0.15
#: closest two eigenvalues of the Jacobian may come, relative to the largest, for the modal
#: integral (:func:`well_separated`); closer, the solve per frequency is used
MODE_GAP = 1e-7


def frequency_grid(tr: float, dtype: torch.dtype = torch.float32,
                   device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """Midpoints (Hz) and widths of the midpoint rule over ``0 < f < 1 / (2 tr)``: ``DENSE``
    points below ``DENSE_HZ`` (0.94 mHz apart), ``SPARSE`` above."""
    nyq = 0.5 / float(tr)
    cut = min(DENSE_HZ, nyq)
    parts = [(0.0, cut, DENSE)] + ([(cut, nyq, SPARSE)] if nyq > cut else [])
    mids, widths = [], []
    for lo, hi, n in parts:
        h = (hi - lo) / n
        mids.append(lo + h * (torch.arange(n, dtype=dtype, device=device) + 0.5))
        widths.append(torch.full((n,), h, dtype=dtype, device=device))
    return torch.cat(mids), torch.cat(widths)


def network_jacobian(net: Any, x0: Tensor | None = None) -> Tensor:
    """The Jacobian of the network's drift at ``x0`` (default: 0): (B, S * N, S * N), indices
    ``s * N + n``.

    Raises:
        ValueError: the network has conduction delays (their Jacobian is not a matrix).
    """
    if net.has_delays:
        raise ValueError("the linearised FC needs a network without conduction delays "
                         "(model.delays=false)")
    model = net.model
    B, S, N = net.n_batch, model.n_states, net.n_regions
    ref = net.weights
    x0 = torch.zeros(B, S, N, dtype=ref.dtype, device=ref.device) if x0 is None else x0
    G, W = net.params["G"], net.coupling_weights

    def drift(x: Tensor) -> Tensor:
        c = net.coupling(G, W, model.coupled_observable(x), None)
        return model.derivative(x, c, None)

    basis = torch.eye(S * N, dtype=ref.dtype, device=ref.device).view(S * N, 1, S, N)
    cols = vmap(lambda t: jvp(drift, (x0,), (t.expand(B, S, N),))[1])(basis)  # (SN, B, S, N)
    return cols.reshape(S * N, B, S * N).permute(1, 2, 0)


def check_at_rest(net: Any, jac: Tensor) -> None:
    """Refuse a model whose state 0 is not a fixed point.

    Raises:
        ValueError: ``|F(0)|`` is not small against the Jacobian's scale.
    """
    model, ref = net.model, net.weights
    x0 = torch.zeros(net.n_batch, model.n_states, net.n_regions, dtype=ref.dtype,
                     device=ref.device)
    with torch.no_grad():
        f0 = model.derivative(x0, net.coupling(net.params["G"], net.coupling_weights,
                                               model.coupled_observable(x0), None), None)
        scale = jac.abs().amax().clamp_min(1e-30)
        if float(f0.abs().amax()) > 1e-6 * float(scale):
            raise ValueError(f"the linearised FC needs a model at rest at 0 (like hopf with "
                             f"a < 0); {model.name!r} has |F(0)| = {float(f0.abs().amax()):.3g}")


def check_stable(eigenvalues: Tensor) -> None:
    """Refuse a linearisation with an eigenvalue (B, SN) of non-negative real part: past its
    bifurcation the network has no stationary state about rest, and no stationary FC.

    Raises:
        SimulationDiverged: naming the batch elements and their largest real part (the trainer
            goes back to its last good state with a lower learning rate).
    """
    growth = eigenvalues.detach().real.amax(-1)
    bad = (growth >= 0).nonzero().flatten().tolist()
    if bad:
        raise SimulationDiverged(
            f"the linearised network is unstable (largest growth rate "
            f"{float(growth.max()):.3g} /ms >= 0) in batch element(s) {bad[:10]}: it is past its "
            f"bifurcation, where the linearisation has no stationary FC; keep the nodes below it "
            f"(e.g. model.params.a.high < 0 for hopf)", bad)


def well_separated(eigenvalues: Tensor) -> bool:
    """Whether no two eigenvalues (B, SN) come closer than ``MODE_GAP`` times the largest:
    else (e.g. identical uncoupled regions) the eigenvectors, and the gradient through them, are
    ill-defined, and the spectral integral is done by solves."""
    with torch.no_grad():
        gap = (eigenvalues[:, :, None] - eigenvalues[:, None, :]).abs()
        gap.diagonal(dim1=-2, dim2=-1).fill_(math.inf)
        return not bool((gap.amin((-2, -1)) < MODE_GAP * eigenvalues.abs().amax(-1)).any())


def _drive_map(model: Any, B: int, S: int, N: int, like: Tensor) -> Tensor:
    """C (B, N, S * N): the linear map from the state to the BOLD drive u."""
    basis = torch.eye(S * N, dtype=like.dtype, device=like.device).view(S * N, 1, S, N)

    def u(x: Tensor) -> Tensor:
        return model.bold_input(model.bold_observable(x))

    x0 = torch.zeros(B, S, N, dtype=like.dtype, device=like.device)
    cols = vmap(lambda t: jvp(u, (x0,), (t.expand(B, S, N),))[1])(basis)  # (SN, B, N)
    return cols.permute(1, 2, 0)


def bold_gain(head: Any, freqs_hz: Tensor, B: int, N: int) -> Tensor:
    """The head's transfer function from drive to BOLD at ``freqs_hz``: (F, B, N) complex.

    Balloon-Windkessel: :math:`c^\\top (2\\pi i f I - A)^{-1} b`, its Jacobian A (1/s) and drive
    vector b taken about rest; ``bold=none``: the mean over one TR is applied by the caller.
    """
    cdtype = torch.complex128 if freqs_hz.dtype == torch.float64 else torch.complex64
    if isinstance(head, IdentityBold):
        return torch.ones(freqs_hz.shape[0], B, N, dtype=cdtype, device=freqs_hz.device)
    if not isinstance(head, BalloonWindkessel):
        raise ValueError(f"the linearised FC knows the balloon and identity heads, not "
                         f"{type(head).__name__}")
    dtype, device = freqs_hz.dtype, freqs_hz.device
    z0 = torch.zeros(B, 4, N, dtype=dtype, device=device)
    u0 = torch.zeros(B, N, dtype=dtype, device=device)
    eye = torch.eye(4, dtype=dtype, device=device)
    A = torch.stack([jvp(lambda s: head.derivative(s, u0), (z0,),
                         (eye[k].view(1, 4, 1).expand(B, 4, N),))[1] for k in range(4)], -1)
    b = jvp(lambda u: head.derivative(z0, u), (u0,), (torch.ones_like(u0),))[1]  # (B, 4, N)
    c = torch.stack([jvp(head.signal, (z0,), (eye[k].view(1, 4, 1).expand(B, 4, N),))[1]
                     for k in range(4)], 1)  # (B, 4, N)
    A = A.permute(0, 2, 1, 3)  # (B, N, 4, 4): d rate_i / d state_k per region
    b, c = b.permute(0, 2, 1), c.permute(0, 2, 1)  # (B, N, 4)
    iw = (2j * math.pi) * freqs_hz.to(cdtype)
    M = iw.view(-1, 1, 1, 1, 1) * eye.to(cdtype) - A.to(cdtype)  # (F, B, N, 4, 4)
    x = torch.linalg.solve(M, b.to(cdtype).expand(M.shape[:-1]))  # (F, B, N, 4)
    return (x * c.to(cdtype)).sum(-1)


def linearized_fc(simulator: Any, tr: float, bold_filter: Any | None = None) -> Tensor:
    """The stationary FC (B, N, N) of ``simulator``'s BOLD, sampled at ``tr`` (s) and filtered
    like the data: :func:`linearized_stats` without lags."""
    return linearized_stats(simulator, tr, bold_filter)[0]


def linearized_stats(simulator: Any, tr: float, bold_filter: Any | None = None,
                     n_lags: int = 0) -> tuple[Tensor, Tensor | None]:
    r"""The stationary FC (B, N, N) of ``simulator``'s BOLD, sampled at ``tr`` (s) and filtered
    like the data (see the module docstring), and each region's autocorrelation at lags
    ``1..n_lags`` volumes (B, n_lags, N; None for ``n_lags=0``):

    .. math:: \rho_i(k) = \frac{\int S_{ii}(f) \cos(2\pi f k\,\mathrm{TR})\,df}
              {\int S_{ii}(f)\,df},

    the cosine integrated exactly over each cell of the midpoint rule (the spectrum taken as
    constant within it), so long lags stay accurate on the sparse part of the grid.

    Args:
        simulator: a :class:`~brainfit.simulator.BoldSimulator` (network + BOLD head).
        tr: sampling interval, s (the integral runs to its Nyquist frequency).
        bold_filter: the :class:`~brainfit.losses.SimulatedBoldFilter` applied to simulated BOLD
            (its band-pass gain enters; detrending and z-scoring do not change correlations).
        n_lags: how many lags of the autocorrelation to return.

    Raises:
        ValueError: delays, coloured noise, no noise, or a model not at rest at 0.
    """
    net, head = simulator.network, simulator.bold
    if net.noise is None or type(net.noise).__name__ != "WhiteNoise":
        raise ValueError("the linearised FC needs white noise (model.noise.kind=white)")
    model = net.model
    B, S, N = net.n_batch, model.n_states, net.n_regions
    ref = net.weights
    jac = network_jacobian(net)
    check_at_rest(net, jac)
    modes = torch.linalg.eig(jac.to(torch.float64))  # (eigenvalues, eigenvectors)
    check_stable(modes[0])
    sigma = net.noise.sigma_bsn().to(ref.dtype).expand(B, S, N).reshape(B, S * N)
    C = _drive_map(model, B, S, N, ref)  # (B, N, SN)
    freqs, width = frequency_grid(tr, ref.dtype, ref.device)
    weight = width
    if isinstance(head, IdentityBold):  # the mean over each TR
        weight = weight * torch.sinc(freqs * float(tr)) ** 2
    if bold_filter is not None and bold_filter.bandpass:
        weight = weight * bold_filter.gain(freqs) ** 2  # filtfilt: |H|^2 on amplitude, ^4 on power
    head_gain = bold_gain(head, freqs, B, N)  # (F, B, N)
    kernel = None
    if n_lags > 0:
        lag_s = float(tr) * torch.arange(1, n_lags + 1, dtype=ref.dtype, device=ref.device)
        # the cosine's mean over each cell: cos(2 pi f tau) sinc(width tau)
        kernel = (torch.cos(2 * math.pi * freqs[:, None] * lag_s)
                  * torch.sinc(width[:, None] * lag_s))  # (F, L)
    omega = (2 * math.pi / 1000.0) * freqs  # rad/ms: J is in 1/ms
    if same_for_every_region(head) and well_separated(modes[0]):
        power_weight = weight[:, None] * head_gain[..., 0].abs().pow(2)  # (F, B)
        cov, lagged = _moments_by_modes(modes, C, sigma, omega, power_weight, kernel)
    else:
        cov, lagged = _moments_by_solves(jac, C, sigma, omega, weight, head_gain, kernel)
    var = cov.diagonal(dim1=-2, dim2=-1).clamp_min(1e-30)
    sd = var.sqrt()
    fc = cov / (sd[..., :, None] * sd[..., None, :])
    return fc, (None if lagged is None else lagged / var[:, None, :])


def same_for_every_region(head: Any) -> bool:
    """Whether the head's transfer function is one per subject, not one per region."""
    return isinstance(head, IdentityBold) or all(
        spec.scope in ("global", "subject") for spec in head.params.specs.values())


def _moments_by_modes(modes: tuple[Tensor, Tensor], C: Tensor, sigma: Tensor, omega: Tensor,
                      power_weight: Tensor, kernel: Tensor | None) -> tuple[Tensor, Tensor | None]:
    r"""The BOLD covariance (B, N, N) and autocovariances at each lag (B, L, N) from the
    eigenmodes of :math:`J = V \Lambda V^{-1}`. With :math:`A = C V`,
    :math:`Q = V^{-1} L L^H V^{-H}` and :math:`g_k(f) = 1 / (i\omega - \lambda_k)`, the integral is
    :math:`A\,(Q \circ K)\,A^H` with :math:`K_{kl} = \sum_f w_f\, g_k(f)\, \overline{g_l(f)}`;
    by partial fractions, :math:`g_k \bar g_l = (g_k + \bar g_l) / (-\lambda_k - \bar\lambda_l)`,
    so with :math:`h_k = \sum_f w_f\, g_k(f)` and :math:`P = Q / (-\lambda_k - \bar\lambda_l)`
    (Hermitian; its denominators have real parts :math:`> 0` for a stable :math:`J`)

    .. math:: \mathrm{cov} = X + X^H, \qquad X = A\,\mathrm{diag}(h)\,P A^H,

    and the autocovariances likewise with :math:`w_f` times the lag's cosine kernel:
    :math:`2\,\mathrm{Re} \sum_k h_k(\tau) A_{ik} (P A^H)_{ki}`. The same midpoint rule as
    :func:`_moments_by_solves` (the same numbers to rounding) at the cost of one
    eigendecomposition and a few matrix products. Computed in complex128, returned in C's
    dtype."""
    lam, V = modes
    A = C.to(V.dtype) @ V  # (B, N, SN)
    R = torch.linalg.solve(V, torch.diag_embed(sigma.to(V.dtype)))  # V^-1 L
    P = (R @ R.mH) / -(lam[:, :, None] + lam.conj()[:, None, :])
    g = 1.0 / (1j * omega.to(torch.float64)[None, :, None] - lam[:, None, :])  # (B, F, SN)
    w = power_weight.to(torch.float64).T.to(V.dtype)  # (B, F)
    PA = P @ A.mH  # (B, SN, N)
    X = (A * (w[:, None] @ g)) @ PA  # (B, N, N)
    cov = (X + X.mH).real.to(C.dtype)
    if kernel is None:
        return cov, None
    h = (w[:, None, :] * kernel.T.to(V.dtype)) @ g  # (B, L, SN)
    lagged = 2 * (h @ (A * PA.mT).mT).real  # (B, L, N)
    return cov, lagged.to(C.dtype)


def _moments_by_solves(jac: Tensor, C: Tensor, sigma: Tensor, omega: Tensor, weight: Tensor,
                       head_gain: Tensor, kernel: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """The BOLD covariance (B, N, N) and autocovariances at each lag (B, L, N) by one linear
    solve per frequency (any head, any spectrum of J)."""
    F = omega.shape[0]
    B, N, SN = C.shape
    cdtype = torch.complex128 if C.dtype == torch.float64 else torch.complex64
    eye = torch.eye(SN, dtype=cdtype, device=C.device)
    M = (1j * omega.to(cdtype)).view(-1, 1, 1, 1) * eye - jac.to(cdtype)  # (F, B, SN, SN)
    # P(f) = H_b(f) C (i w - J)^{-1} L, rows: regions; solve with the transposed system
    Ct = C.to(cdtype).transpose(-1, -2).expand(F, B, SN, N)
    Y = torch.linalg.solve(M.transpose(-1, -2), Ct)  # (F, B, SN, N) = (C (iw - J)^-1)^T
    P = Y.transpose(-1, -2) * sigma.to(cdtype)[None, :, None, :]  # (F, B, N, SN)
    P = P * head_gain[..., None]
    cov = torch.einsum("f,fbis,fbjs->bij", weight.to(cdtype), P, P.conj()).real
    if kernel is None:
        return cov, None
    power = P.real.pow(2).add(P.imag.pow(2)).sum(-1)  # (F, B, N): S_ii(f)
    return cov, torch.einsum("f,fl,fbn->bln", weight, kernel, power)
