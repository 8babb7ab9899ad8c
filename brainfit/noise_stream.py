"""Counter-based noise: the standard normals of every step as a function of the simulation's
seed and the step alone.

A simulation split into chunks, re-run for gradient checkpointing, run by either engine
(:mod:`brainfit.engine`, the reference loop of :mod:`brainfit.network`) or shared out over
processes sees the same numbers, because step t's draws never depend on what was drawn before.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["NoiseStream"]

#: the odd constant by which block q's generator seed is offset (the 64-bit golden ratio)
_GOLDEN = 0x9E3779B97F4A7C15


class NoiseStream:
    """Standard normal draws (B, S, N) for every step, a function of ``(seed, step)`` only.

    Steps are grouped in blocks of a fixed size (a power of two chosen from the state size, at
    most 256 steps and about a million values); block q is drawn at once from a generator seeded
    with ``seed + q * 0x9E3779B97F4A7C15 (mod 2**64)``. Any split of a run into chunks, and either
    engine, therefore sees the same numbers.

    Args:
        seed: the simulation's noise seed (from :class:`~brainfit.network.NetworkState`).
        shape: (B, S, N).
        dtype, device: of the draws.
        rows: ``(offset, total)``: these B elements are rows ``offset .. offset + B - 1`` of a
            batch of ``total`` (one process's share of a distributed fit): the draws are those
            rows of the whole batch's draws, so a batch split over processes sees the numbers it
            sees in one.
    """

    def __init__(self, seed: int, shape: tuple[int, ...], dtype: torch.dtype,
                 device: torch.device, rows: tuple[int, int] | None = None) -> None:
        self.seed, self.shape, self.dtype, self.device = int(seed), tuple(shape), dtype, device
        self.rows = rows
        full = self.shape if rows is None else (rows[1], *self.shape[1:])
        self._full = full
        numel = math.prod(full)
        self.per_block = 256
        while self.per_block > 1 and self.per_block * numel > (1 << 20):
            self.per_block //= 2
        self._block: tuple[int, Tensor] | None = None

    def generator(self, q: int) -> torch.Generator:
        """The generator of block q (block -1 seeds the noise process's initial state)."""
        return torch.Generator(device=self.device).manual_seed((self.seed + q * _GOLDEN) % 2**64)

    def block(self, q: int) -> Tensor:
        if self._block is None or self._block[0] != q:
            draws = torch.randn((self.per_block, *self._full), generator=self.generator(q),
                                dtype=self.dtype, device=self.device)
            if self.rows is not None:
                draws = draws[:, self.rows[0]:self.rows[0] + self.shape[0]].contiguous()
            self._block = (q, draws)
        return self._block[1]

    def draws(self, start: int, n: int) -> Tensor:
        """The draws of steps ``start .. start + n - 1``: (n, B, S, N)."""
        parts, t = [], start
        while t < start + n:
            q, r = divmod(t, self.per_block)
            m = min(self.per_block - r, start + n - t)
            parts.append(self.block(q)[r:r + m])
            t += m
        return parts[0] if len(parts) == 1 else torch.cat(parts)
