"""One call from parameters to BOLD: a :class:`BrainNetwork` chained to a BOLD head.

The network is simulated in chunks; each chunk records the model's BOLD observable averaged over
the haemodynamic step, made dimensionless by the model's offset and scale
(:meth:`~brainfit.models.base.NeuralMass.bold_input`, ``u = (observable - bold_offset) /
bold_scale``), and is pushed into a :class:`~brainfit.bold.BoldStream`, which returns BOLD at the
subject's TR (the Balloon-Windkessel head multiplies u by its efficacy; the identity head,
``bold=none``, averages u over each TR). The neural trajectory is never held whole, so the memory
of a forward pass does not grow with the session length. For gradients through long sessions:

- With the fast engine (the default) memory is bounded already: it recomputes its segments in the
  backward pass, and ``checkpoint`` is not needed (it is ignored).
- ``checkpoint=True`` (reference engine) runs each neural chunk without a graph and recomputes it
  in the backward pass (gradient checkpointing), so only chunk boundaries and the BOLD-rate drive
  are kept, plus one chunk's graph at a time during the backward pass; the recomputed chunk draws
  the same noise because the noise depends only on the seed and the step. Gradients reach the
  parameters through ``loss.backward()`` (not ``torch.autograd.grad``).
- ``truncate=k`` cuts the graph every k chunks (truncated backpropagation through time): gradients
  only flow within windows of k chunks, which keeps them finite and cheaper through long, noisy or
  chaotic runs. The loss (FC) still needs every window's BOLD, so truncation alone does not
  bound memory; combine it with ``checkpoint=True`` for that.

Both give the same forward values; ``checkpoint`` gives the same gradients as full backprop.
"""

from __future__ import annotations

import logging
import math

import torch
from torch import Tensor, nn
from torch.profiler import record_function
from torch.utils.checkpoint import checkpoint as torch_checkpoint

from brainfit.bold import BalloonWindkessel, BoldHead, BoldStream
from brainfit.network import BrainNetwork, NetworkState
from brainfit.runtime import progress as progress_bar
from brainfit.timegrid import burn_in_seconds, round_up_burn_in, sampling_steps, whole_steps

log = logging.getLogger("brainfit.simulator")


class BoldSimulator(nn.Module):
    """Network + haemodynamics: ``forward(n_volumes, tr, dt)`` -> BOLD (B, n_volumes, N).

    Any TR works with any configured steps: the BOLD head steps at a whole fraction of TR and
    each of its steps is a whole number of neural steps, so when the head's ``dt`` or the neural
    ``dt`` do not fit the TR, the largest steps not above them that do are used
    (:func:`brainfit.timegrid.sampling_steps`; e.g. 0.0714 s and 71.4 ms instead of 0.08 s and
    80 ms at TR = 0.5 s), and the burn-in is rounded up to a whole number of BOLD steps. What
    was changed is logged once (logger ``brainfit.simulator``).

    Args:
        network: the :class:`BrainNetwork`.
        bold: the BOLD head, a :class:`BalloonWindkessel` (default) or
            :class:`~brainfit.bold.IdentityBold`; its ``dt`` (s) is at least the neural step.
    """

    def __init__(self, network: BrainNetwork, bold: BoldHead | None = None) -> None:
        super().__init__()
        self.network = network
        self.bold = bold if bold is not None else BalloonWindkessel(n_regions=network.n_regions)
        self._sampling_logged: set[tuple[float, ...]] = set()

    def param_table(self) -> list[dict]:
        return self.network.param_table() + [
            {**r, "parameter": "bold." + r["parameter"]} for r in self.bold.param_table()]

    def forward(self, n_volumes: int, tr: float, dt: float, burn_in: float = 20.0,
                chunk: float = 10.0, generator: torch.Generator | None = None,
                batch: int | None = None, state: NetworkState | None = None,
                checkpoint: bool = False, truncate: int | None = None,
                grad_through_burn_in: bool = False, progress: bool = False) -> Tensor:
        """Simulate BOLD.

        Args:
            n_volumes: number of BOLD samples T.
            tr: repetition time, seconds.
            dt: neural step, ms (the largest step not above it that fits TR and the BOLD step,
                :func:`~brainfit.timegrid.sampling_steps`).
            burn_in: seconds simulated first (neural and haemodynamic transients) and discarded,
                rounded up to a whole number of BOLD steps. No gradient flows through it unless
                ``grad_through_burn_in``.
            chunk: seconds of neural simulation per chunk (rounded to whole BOLD steps).
            generator: seeds the initial state and noise (when ``state`` is None).
            batch: B (default: the network's).
            state: start from this network state instead of a random one.
            checkpoint: gradient checkpointing per chunk.
            truncate: cut the graph every ``truncate`` chunks (None: never).
            progress: progress bar over chunks.

        Returns:
            BOLD (B, n_volumes, N), sample k at ``burn_in + (k + 1) * tr`` seconds.
        """
        if int(n_volumes) < 1:
            raise ValueError(f"n_volumes must be >= 1, got {n_volumes}")
        if truncate is not None and int(truncate) < 1:
            raise ValueError(f"truncate must be a number of chunks >= 1 or None, got {truncate}")
        net = self.network
        if state is None:
            state = net.initial_state(batch, generator)
        B, N = state.x.shape[0], net.n_regions
        bold_s, dt, burn_in = self.sampling(tr, dt, burn_in)
        bold_ms = bold_s * 1000.0
        stream = BoldStream(self.bold, B, N, neural_dt=bold_ms, tr=tr, burn_in=burn_in,
                            dtype=state.x.dtype, device=state.x.device, step=bold_s)
        # the network records its BOLD drive averaged over each BOLD step (one sample per step)
        period = bold_ms
        steps_per_chunk = max(1, round(chunk * 1000.0 / bold_ms))
        chunk_ms = steps_per_chunk * bold_ms
        out: list[Tensor] = []
        n_out = 0
        total_ms = (burn_in + int(n_volumes) * tr) * 1000.0
        n_chunks = math.ceil(total_ms / chunk_ms - 1e-9)
        pbar = progress_bar(n_chunks, progress, "simulate BOLD", "chunk")
        k = 0
        while n_out < n_volumes:
            in_burn = (k + 1) * chunk_ms <= burn_in * 1000.0 + 1e-9
            with torch.set_grad_enabled(torch.is_grad_enabled()
                                        and (grad_through_burn_in or not in_burn)):
                z, state = self._chunk(state, chunk_ms, dt, period, checkpoint and not in_burn)
                with record_function("brainfit.bold"):
                    y = stream.push(net.model.bold_input(z))
            out.append(y)
            n_out += y.shape[1]
            k += 1
            if truncate is not None and k % int(truncate) == 0:
                state = state.detach()
                stream.detach()
            if pbar is not None:
                pbar.update(1)
        if pbar is not None:
            pbar.close()
        return torch.cat(out, dim=1)[:, : int(n_volumes)]

    def sampling(self, tr: float, dt: float, burn_in: float) -> tuple[float, float, float]:
        """The BOLD step (s), neural step (ms) and burn-in (s) a simulation at ``tr`` uses.

        :func:`~brainfit.timegrid.sampling_steps` of the head's ``dt`` and ``dt``, and ``burn_in``
        rounded up to a whole number of BOLD steps; anything changed is logged once.

        Raises:
            ValueError: non-positive steps or TR, a negative burn-in, or a neural step longer
                than the head's.
        """
        bold_s, neural = sampling_steps(tr, self.bold.dt, dt)
        burn = round_up_burn_in(burn_in_seconds(burn_in), bold_s)
        changes = []
        if bold_s != self.bold.dt:
            changes.append(f"BOLD step {bold_s:.6g} s (bold.dt = {self.bold.dt:g} s)")
        if neural != dt:
            changes.append(f"neural step {neural:.6g} ms (dt = {dt:g} ms)")
        if burn != burn_in:
            changes.append(f"burn-in {burn:.6g} s ({burn_in:g} s, not a whole number of "
                           f"BOLD steps)")
        key = (float(tr), float(dt), float(burn_in), float(self.bold.dt))
        if changes and key not in self._sampling_logged:
            self._sampling_logged.add(key)
            log.info("TR %g s: using %s (the BOLD head's steps divide TR and hold whole neural "
                     "steps, the burn-in whole BOLD steps)", tr, ", ".join(changes))
        return bold_s, neural, burn

    def _chunk(self, state: NetworkState, duration: float, dt: float, period: float,
               use_checkpoint: bool) -> tuple[Tensor, NetworkState]:
        net = self.network
        # the fast engine recomputes its segments in the backward pass already
        if not (use_checkpoint and torch.is_grad_enabled()) or net.engine == "fast":
            return net.simulate(duration, dt, state=state, record="bold", period=period,
                                average=True)
        step, seed = state.step, state.seed

        def run(x: Tensor, history: Tensor | None, noise: Tensor | None):
            s = NetworkState(x=x, step=step, seed=seed, history=history, noise=noise)
            z, end = net.simulate(duration, dt, state=s, record="bold", period=period,
                                  average=True)
            return z, end.x, end.history, end.noise

        # The re-entrant variant runs the chunk without building a graph and rebuilds it, one chunk
        # at a time, in the backward pass. The non-re-entrant one drops the saved tensors but keeps
        # every step's autograd nodes, which for ~100-region states weigh more than the tensors
        # (1.5 GB for 20,000 steps). ``anchor`` makes the outputs require grad even when no state
        # does (the first chunk after a no-grad burn-in); the parameters' gradients are
        # accumulated by the recomputation, so use ``loss.backward()``, not ``torch.autograd.grad``.
        anchor = torch.ones((), device=state.x.device, requires_grad=True)
        z, x, history, noise = torch_checkpoint(
            lambda _, *a: run(*a), anchor, state.x, state.history, state.noise,
            use_reentrant=True, preserve_rng_state=False)
        n_steps = whole_steps(duration, dt, "chunk")
        return z, NetworkState(x=x, step=step + n_steps, seed=seed, history=history,
                               noise=noise)
