r"""Native kernels behind the fast engine: the lagged coupling sum as custom operators.

Two operators (``torch.library.custom_op``), both over a time-contiguous history
``buf`` (B, C, N, T) and per-edge whole-step lags ``off`` (B or 1, N, N; int64):

``brainfit::lagged_sum(buf, A, off, start, k)`` -> (B, C, N, k)

.. math:: \mathrm{out}_{b,c,i,t} = \sum_j A_{b,i,j}\,
   \mathrm{buf}_{b,c,j,\;start + t - off_{b,i,j}}, \qquad t = 0..k-1

``brainfit::lagged_dot(g, buf, off, start)`` -> (B, N, N), the per-edge dot product that is the
gradient of ``lagged_sum`` with respect to ``A``:

.. math:: \mathrm{out}_{b,i,j} = \sum_{c,t} g_{b,c,i,t}\,
   \mathrm{buf}_{b,c,j,\;start + t - off_{b,i,j}}

``A`` (and ``off``) may have a batch of 1, shared by every batch element. Every read must lie in
the history: ``0 <= start - off`` and ``start + k - 1 - off < T`` for every edge with a nonzero
weight (an edge of weight 0 is skipped by the native kernels; the reference reads it too, so give
it a lag in range). A read outside raises ``IndexError`` on CPU.

Implementations, chosen per call:

- CPU: a numba loop (:mod:`brainfit.kernels.cpu`), parallel over batch and target region with
  ``torch.get_num_threads()`` threads, vectorised over the k steps; each output value is summed
  by one thread in a fixed order, so results are bitwise the same run to run;
- CUDA: Triton kernels (:mod:`brainfit.kernels.cuda`);
- anywhere else, or where numba / Triton is missing, or inside :func:`reference`: the tensor-op
  implementation (:func:`lagged_sum_reference`, an ``index_select`` on an ``as_strided`` view of
  runs and a batched matrix product), the one to read.

The gradient of ``lagged_sum`` is registered with ``torch.library.register_autograd``: with
respect to ``buf`` it is the same lagged sum with ``A`` transposed and the lags negated, read
from ``g`` zero-padded (a gather, no scatter, no atomics); with respect to ``A`` it is
``lagged_dot``. The engine's reverse-time pass (:mod:`brainfit.engine`) calls both operators
directly on its own buffers. Fake implementations let ``torch.compile(fullgraph=True)`` trace
through both.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
from torch import Tensor

__all__ = ["lagged_sum", "lagged_dot", "lagged_sum_reference", "lagged_dot_reference",
           "reference", "backend"]

#: gathered values per reference call (elements) before it is split into row blocks
GATHER_ELEMENTS = 1 << 22

_state = {"native": os.environ.get("BRAINFIT_KERNELS", "native").lower() != "reference"}


@contextlib.contextmanager
def reference() -> Iterator[None]:
    """Run the operators with their tensor-op reference implementation inside this block (the
    environment variable ``BRAINFIT_KERNELS=reference`` does the same for a whole process)."""
    old = _state["native"]
    _state["native"] = False
    try:
        yield
    finally:
        _state["native"] = old


def backend(device: torch.device | str) -> str:
    """The implementation the operators use on ``device`` now: ``"numba"``, ``"triton"`` or
    ``"reference"``."""
    kind = torch.device(device).type
    if not _state["native"]:
        return "reference"
    if kind == "cpu":
        from . import cpu
        return "numba" if cpu.available() else "reference"
    if kind == "cuda":
        from . import cuda
        return "triton" if cuda.available() else "reference"
    return "reference"


# ------------------------------------------------------------------------------ reference


def _rows(off: Tensor, B: int, C: int, N: int, T: int, base: int) -> Tensor:
    """(B, C, N, N) flat start of each edge's run in ``buf.reshape(-1)``, relative to ``base``."""
    dev = off.device
    j = torch.arange(N, device=dev)
    b = torch.arange(B, device=dev)[:, None, None, None] * C
    c = torch.arange(C, device=dev)[None, :, None, None]
    return ((b + c) * N + j) * T + (base - off.expand(B, N, N)).unsqueeze(1)


def _check_reads(off: Tensor, start: int, k: int, T: int) -> None:
    lo, hi = int(off.min()), int(off.max())
    if start - hi < 0 or start + k - 1 - lo >= T:
        raise IndexError(f"lagged sum reads outside the history: steps {start - hi} .. "
                         f"{start + k - 1 - lo} of a history of {T} (start {start}, k {k}, "
                         f"lags {lo} .. {hi})")


def _runs(buf: Tensor, k: int) -> Tensor:
    """Every run of k consecutive values of the flattened history (a view, no copy)."""
    flat = buf.reshape(-1)
    return flat.as_strided((flat.numel() - k + 1, k), (1, 1), flat.storage_offset())


def lagged_sum_reference(buf: Tensor, A: Tensor, off: Tensor, start: int, k: int) -> Tensor:
    """``lagged_sum`` in tensor ops: each edge's run of k values picked from an ``as_strided``
    view of runs with one ``index_select``, summed over sources by a batched matrix product (row
    blocks of at most :data:`GATHER_ELEMENTS` gathered values)."""
    B, C, N, T = buf.shape
    _check_reads(off, start, k, T)
    rows = _rows(off, B, C, N, T, start)
    runs = _runs(buf.contiguous(), k)
    A = A.expand(B, N, N)
    r = max(1, GATHER_ELEMENTS // (B * C * N * k))
    outs = []
    for i in range(0, N, r):
        g = runs.index_select(0, rows[:, :, i:i + r].reshape(-1)).view(B, C, -1, N, k)
        outs.append(torch.matmul(A[:, None, i:i + r, None, :], g).squeeze(-2))
    return outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)


def lagged_dot_reference(g: Tensor, buf: Tensor, off: Tensor, start: int) -> Tensor:
    """``lagged_dot`` in tensor ops: the same runs as :func:`lagged_sum_reference`, contracted
    with ``g`` over channels and steps."""
    B, C, N, T = buf.shape
    k = g.shape[-1]
    _check_reads(off, start, k, T)
    rows = _rows(off, B, C, N, T, start)
    runs = _runs(buf.contiguous(), k)
    r = max(1, GATHER_ELEMENTS // (B * C * N * k))
    outs = []
    for i in range(0, N, r):
        runs_i = runs.index_select(0, rows[:, :, i:i + r].reshape(-1)).view(B, C, -1, N, k)
        outs.append(torch.einsum("bcik,bcijk->bij", g[:, :, i:i + r], runs_i))
    return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)


# ------------------------------------------------------------------------------ operators


def _batch1(t: Tensor) -> Tensor:
    """A batch shared by broadcasting (stride 0) kept as a batch of one, made contiguous."""
    if t.dim() == 3 and t.shape[0] > 1 and t.stride(0) == 0:
        t = t[:1]
    return t.contiguous()


@torch.library.custom_op("brainfit::lagged_sum", mutates_args=())
def lagged_sum(buf: Tensor, A: Tensor, off: Tensor, start: int, k: int) -> Tensor:
    """The lagged coupling sum (see the module docstring): buf (B, C, N, T), A (B or 1, N, N),
    off (B or 1, N, N) int64 -> (B, C, N, k)."""
    return lagged_sum_reference(buf, A, off, start, k)


@torch.library.custom_op("brainfit::lagged_dot", mutates_args=())
def lagged_dot(g: Tensor, buf: Tensor, off: Tensor, start: int) -> Tensor:
    """The per-edge dot product of ``g`` (B, C, N, k) with the runs ``lagged_sum`` reads from
    buf (B, C, N, T) -> (B, N, N)."""
    return lagged_dot_reference(g, buf, off, start)


@lagged_sum.register_kernel("cpu")
def _lagged_sum_cpu(buf, A, off, start, k):
    if backend("cpu") != "numba":
        return lagged_sum_reference(buf, A, off, start, k)
    from . import cpu
    return cpu.lagged_sum(buf.contiguous(), _batch1(A), _batch1(off), start, k)


@lagged_dot.register_kernel("cpu")
def _lagged_dot_cpu(g, buf, off, start):
    if backend("cpu") != "numba":
        return lagged_dot_reference(g, buf, off, start)
    from . import cpu
    return cpu.lagged_dot(g.contiguous(), buf.contiguous(), _batch1(off), start)


@lagged_sum.register_kernel("cuda")
def _lagged_sum_cuda(buf, A, off, start, k):
    if backend(buf.device) != "triton":
        return lagged_sum_reference(buf, A, off, start, k)
    from . import cuda
    return cuda.lagged_sum(buf.contiguous(), _batch1(A), _batch1(off), start, k)


@lagged_dot.register_kernel("cuda")
def _lagged_dot_cuda(g, buf, off, start):
    if backend(buf.device) != "triton":
        return lagged_dot_reference(g, buf, off, start)
    from . import cuda
    return cuda.lagged_dot(g.contiguous(), buf.contiguous(), _batch1(off), start)


@lagged_sum.register_fake
def _(buf, A, off, start, k):
    B, C, N, _ = buf.shape
    return buf.new_empty(B, C, N, k)


@lagged_dot.register_fake
def _(g, buf, off, start):
    B, _, N, _ = buf.shape
    return buf.new_empty(B, N, N)


# ------------------------------------------------------------------------------ gradients


def _transposed_sum(g: Tensor, A: Tensor, off: Tensor, start: int, T: int) -> Tensor:
    r"""The gradient reaching the history, ``gbuf[b,c,j,s] = sum_i A[b,i,j] g[b,c,i,s - start +
    off[b,i,j]]`` (zero where that step is outside 0..k-1), for s = 0..T-1: the lagged sum of g
    padded with T - k zeros on each side, with A transposed and the lags ``start - off``
    transposed (every read in range when the forward's were)."""
    k = g.shape[-1]
    gp = torch.nn.functional.pad(g, (T - k, T - k))
    return lagged_sum(gp, A.transpose(-1, -2), start - off.transpose(-1, -2), T - k, T)


def _reduce_batch(gA: Tensor, like: Tensor) -> Tensor:
    """dL/dA summed over the batch where A was a batch of one."""
    return gA.sum(0, keepdim=True) if like.shape[0] == 1 else gA


def _setup(ctx, inputs, output):
    """Both operators: three tensors, then ``start``."""
    ctx.save_for_backward(*inputs[:3])
    ctx.start = inputs[3]


def _sum_backward(ctx, g):
    buf, A, off = ctx.saved_tensors
    gbuf = gA = None
    if ctx.needs_input_grad[0]:
        gbuf = _transposed_sum(g, A, off, ctx.start, buf.shape[-1])
    if ctx.needs_input_grad[1]:
        gA = _reduce_batch(lagged_dot(g, buf, off, ctx.start), A)
    return gbuf, gA, None, None, None


def _dot_backward(ctx, gg):
    g, buf, off = ctx.saved_tensors
    g_g = g_buf = None
    if ctx.needs_input_grad[0]:
        g_g = lagged_sum(buf, gg, off, ctx.start, g.shape[-1])
    if ctx.needs_input_grad[1]:
        g_buf = _transposed_sum(g, gg, off, ctx.start, buf.shape[-1])
    return g_g, g_buf, None, None


lagged_sum.register_autograd(_sum_backward, setup_context=_setup)
lagged_dot.register_autograd(_dot_backward, setup_context=_setup)
