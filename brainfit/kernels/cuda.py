"""The lagged sum's CUDA kernels, in Triton.

``lagged_sum``: one program per (batch, channel, target region) and tile of ``BLOCK_T`` output
steps; it walks the sources in tiles of ``BLOCK_J``, loads each edge's weight and lag and a
(BLOCK_J, BLOCK_T) tile of history runs, and accumulates their weighted sum over sources in
registers. ``lagged_dot``: one program per (batch, target region) and tile of ``BLOCK_J``
sources, accumulating the dot product over channels and tiles of steps. Every output value is
written by one program in a fixed order: no atomics, deterministic.

Without a GPU the same kernels run in Triton's interpreter (``TRITON_INTERPRET=1`` set before
Triton is imported, on CPU tensors), which is how the tests check them on a CPU-only machine.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

BLOCK_T = 16
BLOCK_J = 32


@functools.cache
def _triton():
    try:
        import triton
        import triton.language as tl
    except ImportError:
        return None
    return triton, tl


def available() -> bool:
    """Whether Triton can be imported."""
    return _triton() is not None


@functools.cache
def _kernels():
    triton, tl = _triton()

    @triton.jit
    def lagged_sum_kernel(buf, A, off, out, start, k, C, N, T, a_stride, o_stride,
                          BLOCK_T: tl.constexpr, BLOCK_J: tl.constexpr):
        row = tl.program_id(0)  # (b * C + c) * N + i
        t = tl.program_id(1) * BLOCK_T + tl.arange(0, BLOCK_T)
        i = row % N
        bc = (row // N).to(tl.int64)  # int64 offsets: large batches pass 2**31 values
        b = bc // C
        t_ok = t < k
        acc = tl.zeros([BLOCK_T], dtype=out.dtype.element_ty)
        for j0 in range(0, N, BLOCK_J):
            j = j0 + tl.arange(0, BLOCK_J)
            j_ok = j < N
            a = tl.load(A + b * a_stride + i * N + j, mask=j_ok, other=0.0)
            lag = tl.load(off + b * o_stride + i * N + j, mask=j_ok, other=0)
            s = start - lag[:, None] + t[None, :]
            ok = j_ok[:, None] & t_ok[None, :] & (a[:, None] != 0) & (s >= 0) & (s < T)
            v = tl.load(buf + (bc * N + j[:, None]) * T + s, mask=ok, other=0.0)
            acc += tl.sum(a[:, None] * v, axis=0)
        tl.store(out + row * k + t, acc, mask=t_ok)

    @triton.jit
    def lagged_dot_kernel(g, buf, off, out, start, k, C, N, T, o_stride,
                          BLOCK_T: tl.constexpr, BLOCK_J: tl.constexpr):
        row = tl.program_id(0)  # b * N + i
        j = tl.program_id(1) * BLOCK_J + tl.arange(0, BLOCK_J)
        i = row % N
        b = (row // N).to(tl.int64)
        j_ok = j < N
        lag = tl.load(off + b * o_stride + i * N + j, mask=j_ok, other=0)
        acc = tl.zeros([BLOCK_J], dtype=out.dtype.element_ty)
        for c in range(0, C):
            for t0 in range(0, k, BLOCK_T):
                t = t0 + tl.arange(0, BLOCK_T)
                t_ok = t < k
                gi = tl.load(g + ((b * C + c) * N + i) * k + t, mask=t_ok, other=0.0)
                s = start - lag[:, None] + t[None, :]
                ok = j_ok[:, None] & t_ok[None, :] & (s >= 0) & (s < T)
                v = tl.load(buf + ((b * C + c) * N + j[:, None]) * T + s, mask=ok, other=0.0)
                acc += tl.sum(gi[None, :] * v, axis=1)
        tl.store(out + row * N + j, acc, mask=j_ok)

    return triton, lagged_sum_kernel, lagged_dot_kernel


def _stride(t: Tensor) -> int:
    return 0 if t.shape[0] == 1 else t.stride(0)


def lagged_sum(buf: Tensor, A: Tensor, off: Tensor, start: int, k: int) -> Tensor:
    """buf (B, C, N, T) contiguous, A and off (B or 1, N, N) contiguous -> (B, C, N, k).

    Reads outside the history are masked to 0 (the CPU kernel raises instead)."""
    triton, kernel, _ = _kernels()
    B, C, N, T = buf.shape
    out = buf.new_empty(B, C, N, k)
    A = A.to(buf.dtype)
    off = off.to(torch.int64)
    grid = (B * C * N, triton.cdiv(k, BLOCK_T))
    kernel[grid](buf, A, off, out, int(start), int(k), C, N, T, _stride(A), _stride(off),
                 BLOCK_T=BLOCK_T, BLOCK_J=BLOCK_J)
    return out


def lagged_dot(g: Tensor, buf: Tensor, off: Tensor, start: int) -> Tensor:
    """g (B, C, N, k), buf (B, C, N, T) contiguous, off (B or 1, N, N) -> (B, N, N)."""
    triton, _, kernel = _kernels()
    B, C, N, T = buf.shape
    k = g.shape[-1]
    out = buf.new_empty(B, N, N)
    off = off.to(torch.int64)
    grid = (B * N, triton.cdiv(N, BLOCK_J))
    kernel[grid](g.to(buf.dtype), buf, off, out, int(start), int(k), C, N, T, _stride(off),
                 BLOCK_T=BLOCK_T, BLOCK_J=BLOCK_J)
    return out
