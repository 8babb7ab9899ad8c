"""The lagged sum's CPU kernels, compiled with numba.

Plain loops: parallel (``numba.prange``) over (batch, target region), and for each edge of
nonzero weight one contiguous run of k history values, so the innermost loop is a vectorised
multiply-add over the k steps. Each output value is accumulated by one thread in a fixed order
(sources in index order), so results are bitwise the same run to run and thread count to thread
count. Threads follow ``torch.get_num_threads()`` (at most numba's own limit). Compiled once per
dtype (float32, float64) and cached on disk by numba.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor


@functools.cache
def _numba():
    try:
        import numba
    except ImportError:
        return None
    return numba


def available() -> bool:
    """Whether numba can be imported."""
    return _numba() is not None


@functools.cache
def _kernels():
    numba = _numba()
    njit, prange = numba.njit, numba.prange

    @njit(parallel=True, cache=True, nogil=True)
    def lagged_sum(buf, A, off, start, k, out):  # pragma: no cover - compiled
        B, C, N, T = buf.shape
        bad = 0
        shared_a, shared_o = A.shape[0] == 1, off.shape[0] == 1
        for r in prange(B * N):
            b, i = r // N, r % N
            ba = 0 if shared_a else b
            bo = 0 if shared_o else b
            for c in range(C):
                acc = out[b, c, i]
                acc[:] = 0
                src = buf[b, c]
                for j in range(N):
                    a = A[ba, i, j]
                    if a == 0:
                        continue
                    s = start - off[bo, i, j]
                    if s < 0 or s + k > T:
                        bad += 1
                        continue
                    run = src[j]
                    for t in range(k):
                        acc[t] += a * run[s + t]
        return bad

    # the dot product's sum may be reassociated, so that it vectorises (2x): the order is fixed by
    # the compiled code, so results stay bitwise the same run to run; no other fast-math flag
    @njit(parallel=True, cache=True, nogil=True, fastmath={"reassoc", "contract"})
    def lagged_dot(g, buf, off, start, out):  # pragma: no cover - compiled
        B, C, N, T = buf.shape
        bad = 0
        k = g.shape[3]
        shared_o = off.shape[0] == 1
        for r in prange(B * N):
            b, i = r // N, r % N
            bo = 0 if shared_o else b
            for j in range(N):
                s = start - off[bo, i, j]
                if s < 0 or s + k > T:
                    bad += 1
                    out[b, i, j] = 0
                    continue
                total = 0.0  # float64 accumulation
                for c in range(C):
                    gi = g[b, c, i]
                    run = buf[b, c, j]
                    for t in range(k):
                        total += gi[t] * run[s + t]
                out[b, i, j] = total
        return bad

    return lagged_sum, lagged_dot


_threads = {"n": None}


def _launch(kernel, *args):
    """Call a kernel with ``torch.get_num_threads()`` threads (at most numba's limit), leaving
    torch's own thread count as it was: numba's OpenMP pool, started by the first parallel call,
    resets the process's OpenMP thread count, which torch reads as its own."""
    numba = _numba()
    n = torch.get_num_threads()
    m = max(1, min(n, numba.config.NUMBA_NUM_THREADS))
    if _threads["n"] != m:
        numba.set_num_threads(m)
        _threads["n"] = m
    try:
        return kernel(*args)
    finally:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


def _raise_if(bad: int, what: str, start: int, k: int, T: int) -> None:
    if bad:
        raise IndexError(f"{what} reads outside the history (start {start}, k {k}, history of "
                         f"{T} steps): every edge of nonzero weight needs 0 <= start - lag and "
                         f"start + k - 1 - lag < {T}")


def lagged_sum(buf: Tensor, A: Tensor, off: Tensor, start: int, k: int) -> Tensor:
    """buf (B, C, N, T) contiguous, A and off (B or 1, N, N) contiguous -> (B, C, N, k)."""
    B, C, N, T = buf.shape
    out = buf.new_empty(B, C, N, k)
    bad = _launch(_kernels()[0], buf.detach().numpy(), A.detach().to(buf.dtype).numpy(),
                  off.to(torch.int64).numpy(), int(start), int(k), out.numpy())
    _raise_if(bad, "lagged_sum", start, k, T)
    return out


def lagged_dot(g: Tensor, buf: Tensor, off: Tensor, start: int) -> Tensor:
    """g (B, C, N, k), buf (B, C, N, T) contiguous, off (B or 1, N, N) -> (B, N, N)."""
    B, C, N, T = buf.shape
    out = buf.new_empty(B, N, N)
    bad = _launch(_kernels()[1], g.detach().to(buf.dtype).numpy(), buf.detach().numpy(),
                  off.to(torch.int64).numpy(), int(start), out.numpy())
    _raise_if(bad, "lagged_dot", start, g.shape[-1], T)
    return out
