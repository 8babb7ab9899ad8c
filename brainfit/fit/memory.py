"""The memory a training step needs, estimated before a fit starts.

A fit that would exhaust the machine should say so at once, with the setting that fixes it, not
after minutes of swapping. :func:`training_step_bytes` estimates the peak of one training step
(forward + backward) from the sizes involved; :func:`check_fits` compares it with the memory
available (``MemAvailable`` on Linux, free GPU memory on CUDA) and raises ``MemoryError`` with
the fixes when it does not fit.

What each engine keeps (B batch, N regions, S states, C coupling channels, L the longest delay in
steps, T steps of a simulation, e the bytes of a value):

- ``fast`` (:func:`brainfit.engine.training_bytes`: the engine's own sizing rules): per segment
  of ``s`` steps its inputs (a state and L + 1 steps of history), at most
  one segment's recomputed history (``s B N (2C + S + 1) e``, about
  :data:`~brainfit.engine.SEGMENT_BYTES`) and one block's graph; plus the BOLD-rate records and the
  haemodynamic head's graph, and up to :data:`~brainfit.engine.KEEP_BYTES` of forward history
  kept to spare a recomputation. Of the neural steps only the segment inputs grow with T.
- a linearised fit (``trainer.linearized``) simulates nothing: per element the network Jacobian
  (SN x SN, S N = the state size), its eigendecomposition and a few complex matrices of that size
  with their graph (:data:`MODE_MATRICES`), or, when the head differs per region, one complex
  system per frequency of the grid (:func:`linearized_step_bytes`).
- ``reference``: every step's graph (about 40 values per state variable and, with delays, the
  B N N gather index of 8 bytes), T times; with ``checkpoint_chunks`` one chunk's worth.
"""

from __future__ import annotations

import math

import torch

from brainfit import engine
from brainfit.network import BrainNetwork

#: values saved per state variable per step by the reference loop's graph (measured: Heun steps
#: of the rate models keep 30-50)
REFERENCE_VALUES_PER_STATE = engine.GRAPH_VALUES_PER_STATE
#: values the haemodynamic head keeps per region and BOLD step
BOLD_VALUES = 30
#: complex (SN, SN) matrices the linearised statistics keep per element, by eigenmodes (J, its
#: eigenvectors, V^-1 L, P and their graph)
MODE_MATRICES = 12
#: bytes of a complex128 value (the linearised statistics' precision)
COMPLEX = 16
#: fraction of the available memory a step may plan to use
HEADROOM = 0.8


def training_step_bytes(net: BrainNetwork, batch: int, dt: float, seconds: float,
                        bold_dt: float, chunk_seconds: float, checkpoint: bool) -> int:
    """Estimated peak bytes of one forward + backward through ``seconds`` of simulation.

    Args:
        net: the network (its engine, delays, coupling and dtype are used).
        batch: B.
        dt: neural step, ms.
        seconds: simulated time per step (burn-in included), s.
        bold_dt: the haemodynamic step, s.
        chunk_seconds: simulation chunk, s (``checkpoint_chunks`` keeps one chunk's graph).
        checkpoint: ``trainer.checkpoint_chunks``.
    """
    e = net.weights.element_size()
    N, S = net.n_regions, net.model.n_states
    T = int(seconds * 1000.0 / dt)
    L = int(math.ceil(net.max_delay() / dt)) + 1 if net.has_delays else 0
    bold = int(seconds / bold_dt) * BOLD_VALUES * batch * N * e
    if net.engine == "fast":  # the engine's own sizing (None: it keeps the whole graph)
        fast = engine.training_bytes(net, batch, T, L)
        if fast is not None:
            return fast + bold
    per_step = REFERENCE_VALUES_PER_STATE * batch * S * N * e
    if net.has_delays:
        per_step += batch * N * N * 8 * (2 if net.interpolate_delays else 1)
    kept = T if not checkpoint else min(T, int(chunk_seconds * 1000.0 / dt))
    return kept * per_step + bold


def available_bytes(device: torch.device) -> int | None:
    """Memory a fit may use now: free GPU memory, or ``MemAvailable`` (None if unknown)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def linearized_step_bytes(net: BrainNetwork, batch: int, n_freq: int, by_modes: bool) -> int:
    """Estimated peak bytes of one step of a linearised fit (:func:`brainfit.linear.
    linearized_stats` and its backward): by eigenmodes, :data:`MODE_MATRICES` complex (SN, SN)
    matrices and a few (F, SN) ones per element; by solves, three complex (SN, SN) systems per
    frequency of the grid (``n_freq``) per element."""
    SN, N = net.model.n_states * net.n_regions, net.n_regions
    if by_modes:
        return batch * (MODE_MATRICES * SN * SN + 4 * n_freq * SN) * COMPLEX
    return batch * n_freq * (3 * SN * SN + 4 * SN * N) * COMPLEX


def check_fits(need: int, available: int | None, engine_name: str, checkpoint: bool,
               linearized: bool = False) -> None:
    """Raise ``MemoryError`` naming the fixes when ``need`` exceeds the usable memory."""
    if available is None or need <= HEADROOM * available:
        return
    if linearized:
        raise MemoryError(
            f"a linearised training step would need about {need / 2**30:.1f} GiB but "
            f"{available / 2**30:.1f} GiB are available; use fewer trainer.restarts or subjects "
            f"at a time (trainer.batch_subjects)")
    fixes = []
    if engine_name != "fast":
        fixes.append("trainer.engine=fast (memory bounded whatever the length)")
        if not checkpoint:
            fixes.append("trainer.checkpoint_chunks=true with a short trainer.chunk")
    fixes += ["a shorter trainer.sim_seconds", "fewer trainer.restarts or subjects per run",
              "a coarser trainer.dt"]
    raise MemoryError(
        f"a training step would need about {need / 2**30:.1f} GiB but {available / 2**30:.1f} "
        f"GiB are available; use " + ", or ".join(fixes))
