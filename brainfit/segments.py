r"""The fast engine's autograd: a segment of a simulation as one autograd node.

:mod:`brainfit.engine` cuts a simulation into segments and steps each in blocks of K steps. Each
segment is one node (:class:`_Segment`): its forward pass runs the segment without a graph and
keeps only its inputs (and, while :data:`brainfit.engine.KEEP_BYTES` allows, the history it
wrote); its backward pass re-runs the segment if needed, then walks its blocks backward in time,
rebuilding one block's graph at a time. The gradient reaching a source's past sent values through
the long edges is the weighted lagged sum run backward in time with W transposed,

.. math:: gP_j(s) = \sum_i W_{ij}\, gU_i(s + l_{ij}),

which only needs blocks already processed: the same operator (:class:`LaggedSum`), never a
scatter over the whole buffer; dL/dW is its per-edge dot product. Memory is one segment's history
and one block's graph, whatever the length of the run.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.profiler import record_function

from . import kernels

if TYPE_CHECKING:  # the plan's type only: engine imports this module
    from .engine import Plan

__all__ = ["LaggedSum"]


# ------------------------------------------------------------------------------------- gather


class LaggedSum:
    r"""``out[b, c, i, k] = sum_j A[b, i, j] * buf[b, c, j, start + k - off[b, i, j]]``.

    ``buf`` (B, C, N, T) is a time-contiguous history; ``off`` (N, N) or (B, N, N) whole-step lags
    (negative to read ahead, as the backward pass does). Each edge reads one contiguous run of k
    values: the custom operator ``brainfit::lagged_sum`` (:mod:`brainfit.kernels`: numba on
    CPU, Triton on CUDA, tensor ops as its reference) sums them; ``brainfit::lagged_dot`` gives
    dL/dA from dL/dU.

    Args:
        A: weights (N, N) or (B, N, N).
        off: lags in steps, integer tensor broadcastable to A.
        length: T, the time length of the buffers this will read.
        batch, channels: B and C.
    """

    def __init__(self, A: Tensor, off: Tensor, length: int, batch: int, channels: int) -> None:
        n = A.shape[-1]
        self.B, self.C, self.N, self.T = batch, channels, n, length
        self.A = _shared_batch(A, batch)
        self.off = _shared_batch(off.to(torch.int64), batch)
        self.lo, self.hi = int(self.off.min()), int(self.off.max())

    def _check(self, start: int, k: int) -> None:
        if start - self.hi < 0 or start + k - 1 - self.lo >= self.T:
            raise IndexError(f"lagged sum reads outside the history ({start}, {k}, {self.T})")

    def __call__(self, buf: Tensor, start: int, k: int) -> Tensor:
        """The sums (B, C, N, k) of the runs that start ``k`` steps at ``start``."""
        self._check(start, k)
        return kernels.lagged_sum(buf, self.A, self.off, start, k)

    def weight_grad(self, gU: Tensor, buf: Tensor, start: int) -> Tensor:
        """dL/dA (B, N, N) from dL/dU (B, C, N, k) of the sums ``__call__(buf, start, k)``."""
        self._check(start, gU.shape[-1])
        return kernels.lagged_dot(gU, buf, self.off, start)


def _shared_batch(t: Tensor, batch: int) -> Tensor:
    """``t`` as (B, N, N), or as (1, N, N) where every batch element shares it (a broadcast
    view), contiguous."""
    if t.dim() == 2:
        return t.unsqueeze(0).contiguous()
    if t.shape[0] == 1 or t.stride(0) == 0:
        return t[:1].contiguous()
    return t.expand(batch, *t.shape[-2:]).contiguous()


def _lagged(sums: list[LaggedSum], buf: Tensor, start: int, k: int) -> Tensor:
    """The sum of the lagged sums (B, C, N, k)."""
    total = None
    for f in sums:
        u = f(buf, start, k)
        total = u if total is None else total + u
    return total


# ----------------------------------------------------------------------------------- autograd


class _Segment(torch.autograd.Function):
    """One segment as one autograd node; its backward is the reverse-time pass described in the
    module docstring. Inputs after the non-tensor ones: x, hist, eta, the delay weights, the
    parameter values. Outputs: records, x, hist, eta (empty tensors stand for None)."""

    @staticmethod
    def forward(ctx, plan: Plan, t0: int, n: int, x, hist, eta, *tensors):
        nw = len(plan.delays.weights) if plan.delays is not None else 0
        weights, values = list(tensors[:nw]), list(tensors[nw:])
        sums = _sums(plan, weights, n)
        none = lambda t: None if t.numel() == 0 else t  # noqa: E731
        # keep the history and block starts for the backward pass while they fit the budget
        ctx.kept = None
        keep = any(ctx.needs_input_grad) and _reserve(_kept_bytes(plan, n), plan.keep_bytes)
        with torch.no_grad():
            out = plan.run_segment(t0, n, x, none(hist), none(eta), values, sums,
                                   _short_weights(plan, weights), keep=keep)
        if keep:
            out, buf, starts = out
            ctx.kept = _Kept(buf, starts, _kept_bytes(plan, n))
        rec, x_end, hist_end, eta_end = out
        ctx.plan, ctx.t0, ctx.n, ctx.nw = plan, t0, n, nw
        ctx.save_for_backward(x, hist, eta, *tensors)
        empty = x.new_zeros(0)
        return tuple(empty if t is None else t for t in (rec, x_end, hist_end, eta_end))

    @staticmethod
    def backward(ctx, g_rec, g_x, g_hist, g_eta):
        with record_function("brainfit.backward"), ctx.plan.installed([]):
            return (None, None, None) + _ReverseSweep(ctx, g_rec, g_hist).run(g_x, g_eta)


#: bytes of forward history the segments of the process keep for their backward passes
_kept = {"bytes": 0}


def _kept_bytes(plan: Plan, n: int) -> int:
    """Bytes a segment's forward keeps for its backward: the history and the block starts."""
    L = plan.delays.max_lag if plan.delays is not None else 0
    hist = plan.B * plan.C * plan.N * (L + 1 + n) if plan.delays is not None else 0
    starts = -(-n // plan.block_len) * 2 * plan.B * plan.S * plan.N
    return (hist + starts) * plan.W.element_size()


def _reserve(nbytes: int, budget: int) -> bool:
    """Take ``nbytes`` of the ``budget`` (:data:`brainfit.engine.KEEP_BYTES`) if that much is
    left."""
    if _kept["bytes"] + nbytes > budget:
        return False
    _kept["bytes"] += nbytes
    return True


class _Kept:
    """A segment's forward history and block starts, kept for its backward pass; gives its bytes
    back to the budget when freed (after the backward pass, or with a graph never
    differentiated)."""

    def __init__(self, buf: Tensor | None, starts: list, nbytes: int) -> None:
        self.buf, self.starts = buf, starts
        weakref.finalize(self, _release, nbytes)


def _release(nbytes: int) -> None:
    _kept["bytes"] -= nbytes


def _short_weights(plan: Plan, weights: list[Tensor]) -> Tensor | None:
    d = plan.delays
    return None if d is None or d.short is None else d.short.weights(weights)


def _sums(plan: Plan, weights: list[Tensor], n: int, transpose: bool = False
          ) -> list[LaggedSum] | None:
    """The long edges' lagged sums over a segment of n steps (or their transposes)."""
    d = plan.delays
    if d is None:
        return None
    L = d.max_lag
    weights = [w.detach() * lg for w, lg in zip(weights, d.long)]
    if transpose:  # read gU ahead: gP_j(s) = sum_i A_ij gU_i(s + l_ij)
        return [LaggedSum(A.transpose(-1, -2), -lag.transpose(-1, -2), n + 2 * L + 1,
                          plan.B, plan.C) for A, lag in zip(weights, d.lags)]
    return [LaggedSum(A, lag, n + L + 1, plan.B, plan.C) for A, lag in zip(weights, d.lags)]

class _ReverseSweep:
    """The backward pass of one segment, block by block from the last (see the module
    docstring): the segment's forward history, the gradients accumulated so far (of the sent
    values ``gP``, of the long edges' sums ``gU``, of the weights and the parameter values),
    and what the inputs need."""

    def __init__(self, ctx, g_rec, g_hist) -> None:
        plan, n, nw = ctx.plan, ctx.n, ctx.nw
        x0, hist0, eta0, *tensors = ctx.saved_tensors
        self.plan, self.t0, self.n = plan, ctx.t0, n
        self.weights = [w.detach() for w in tensors[:nw]]
        self.values = list(tensors[nw:])
        self.need = ctx.needs_input_grad[3:]
        d = self.d = plan.delays
        self.short = d.short if d is not None else None
        self.fwd_sums = _sums(plan, self.weights, n)
        if ctx.kept is not None:  # kept by the forward pass
            self.buf, self.starts, ctx.kept = ctx.kept.buf, ctx.kept.starts, None
        else:
            with torch.no_grad():
                _, self.buf, self.starts = plan.run_segment(
                    self.t0, n, x0, _none(hist0), _none(eta0), self.values, self.fwd_sums,
                    _short_weights(plan, self.weights), keep=True)
        L = self.L = d.max_lag if d is not None else 0
        if d is not None:
            self.back_sums = _sums(plan, self.weights, n, transpose=True)
            self.gP = self.buf.new_zeros(self.buf.shape)  # P times t0 - L .. t0 + n
            if _none(g_hist) is not None:
                self.gP[..., n:] += g_hist
            # U times t0 - L .. t0 + n + L
            self.gU = self.buf.new_zeros(plan.B, plan.C, plan.N, n + 2 * L + 1)
        self.g_steps = plan.expand(g_rec) if _none(g_rec) is not None else None
        self.want_w = [bool(self.need[3 + m]) for m in range(nw)]
        self.g_weights = [torch.zeros_like(w) if ww else None
                          for w, ww in zip(self.weights, self.want_w)]
        self.want = [bool(self.need[3 + nw + m]) for m in range(len(self.values))]
        self.g_values: list[Tensor | None] = [None] * len(self.values)

    def run(self, g_x, g_eta) -> tuple:
        """The gradients of the segment's inputs (see :meth:`_Segment.backward`)."""
        gx, geta = _none(g_x), _none(g_eta)
        for (s, k), (xs, es) in zip(reversed(self.plan.blocks(self.n)), reversed(self.starts)):
            gx, geta = self.block(s, k, xs, es, gx, geta)
        g_hist0 = None
        L = self.L
        if self.d is not None and self.need[1]:
            self.gP[..., :L + 1] += _lagged(self.back_sums, self.gU, 0, L + 1)
            g_hist0 = self.gP[..., :L + 1]
        return (gx if self.need[0] else None, g_hist0, geta if self.need[2] else None,
                *self.g_weights, *self.g_values)

    def block(self, s: int, k: int, xs: Tensor, es: Tensor | None, gx, geta):
        """One block of k steps from step ``s`` of the segment, started from ``xs``, ``es``;
        ``gx``, ``geta``: the gradients of its end state. Returns those of its start state."""
        L, U, win = self.L, None, None
        if self.d is not None:
            # the gradient reaching P at this block's new steps t0+s+1 .. t0+s+k through the
            # long edges comes from later steps only (their lags are >= K - 1): read it from gU
            self.gP[..., L + 1 + s:L + 1 + s + k] += _lagged(self.back_sums, self.gU,
                                                             L + 1 + s, k)
            U = _lagged(self.fwd_sums, self.buf, L + s, k)
            if self.short is not None:
                win = self.plan.window(self.buf, L + s)
        grads = self._block_grads(s, k, xs, es, U, win, gx, geta)
        gx = _zero_none(grads.pop(0), xs)
        if es is not None:
            geta = _zero_none(grads.pop(0), es)
        self._accumulate(s, k, U, win, grads)
        return gx, geta

    def _block_grads(self, s: int, k: int, xs: Tensor, es: Tensor | None, U: Tensor | None,
                     win: Tensor | None, gx, geta) -> list:
        """The block's graph, rebuilt from its start, differentiated: the gradients of the start
        state, the noise state, U, the short edges' window, the weights and the values wanted,
        in that order (those that are not None or not wanted left out)."""
        plan, L = self.plan, self.L
        with torch.enable_grad():
            xl = xs.detach().requires_grad_()
            el = None if es is None else es.detach().requires_grad_()
            Ul = None if U is None else U.requires_grad_()
            wl = None if win is None else win.detach().requires_grad_()
            Al = [w.clone().requires_grad_() if ww else w
                  for w, ww in zip(self.weights, self.want_w)]
            leaves = [v.detach().requires_grad_(w) for v, w in zip(self.values, self.want)]
            plan.install(leaves)
            F = plan.forcing(self.t0 + s, k)
            xi = plan.stream.draws(self.t0 + s, k) if plan.stream is not None else None
            ws = self.short.weights(Al) if win is not None else None
            xe, ee, rec, P = plan.local(xl, Ul, xi, F, el, leaves, k, wl, ws)
            outs, gouts = [], []
            for out, g in ((xe, gx), (ee, geta),
                           (rec, None if self.g_steps is None else self.g_steps[:, :, s:s + k]),
                           (P, self.gP[..., L + 1 + s:L + 1 + s + k] if self.d is not None
                            else None)):
                if out is not None and g is not None and out.requires_grad:
                    outs.append(out)
                    gouts.append(g)
            ins = [t for t in [xl, el, Ul, wl] if t is not None]
            ins += [a for a in Al if a.requires_grad] + [v for v in leaves if v.requires_grad]
            return list(torch.autograd.grad(outs, ins, gouts, allow_unused=True) if outs
                        else [None] * len(ins))

    def _accumulate(self, s: int, k: int, U: Tensor | None, win: Tensor | None,
                    grads: list) -> None:
        """Add the block's gradients of U, the window, the weights and the values (in
        :meth:`_block_grads`' order) to the segment's."""
        L = self.L
        if U is not None:
            gUb = _zero_none(grads.pop(0), U)
            self.gU[..., L + s:L + s + k] = gUb
            for m, gw in enumerate(self.g_weights):
                if gw is not None:
                    gw += self.fwd_sums[m].weight_grad(gUb, self.buf, L + s) * self.d.long[m]
        if win is not None:
            g = grads.pop(0)
            if g is not None:  # short edges reaching back before the block
                self.gP[..., L + s + 1 - self.short.span:L + s + 1] += g
        for m, ww in enumerate(self.want_w):
            if ww:
                g = grads.pop(0)
                if g is not None:
                    self.g_weights[m] += g
        for m, w in enumerate(self.want):
            if w:
                g = grads.pop(0)
                if g is not None:
                    self.g_values[m] = g if self.g_values[m] is None else self.g_values[m] + g


def _none(t: Tensor | None) -> Tensor | None:
    """An empty tensor (what autograd passes for an output without a gradient) as None."""
    return None if t is None or t.numel() == 0 else t


def _zero_none(g: Tensor | None, like: Tensor) -> Tensor:
    return torch.zeros_like(like) if g is None else g
