r"""Delay-coupled brain networks.

A :class:`BrainNetwork` couples N copies of a node model through a structural connectome W
(``W[i, j]`` from region j to region i) with conduction delays ``d_ij = L_ij / speed``:

.. math::
    \dot x_i = f(x_i, \; c_i(t), \; F_i(t)) + \text{noise}, \qquad
    c_i(t) = \mathcal{C}\big(G, W, x_i(t), \{x_j(t - d_{ij})\}_j\big)

with ``f`` the model's :meth:`~brainfit.models.base.NeuralMass.derivative`, ``C`` a coupling from
:mod:`brainfit.coupling`, ``G`` the global coupling strength and ``F`` the external forcing
(:mod:`brainfit.stimulus`).

Delays. ``d_ij / dt`` is rounded to whole steps (a delay below dt/2 rounds to 0 steps, an
instantaneous coupling: logged once as a warning per step size). A ring buffer holds what each
region sends, the coupling's ``pre`` of its coupled state (:mod:`brainfit.coupling`), for the last
``max_delay_steps + 1`` steps; each step every edge reads its source's past value and the coupling
combines ``U_i = sum_j W_ij pre(x_j)(t - d_ij)`` with the region's own state (``post``). With
``interpolate_delays=True`` the read is a linear interpolation between the two neighbouring steps
of the sent value, so that the conduction speed receives a gradient (the buffer then has one slot
more). The history
before t = 0 is the initial coupled state, held constant. A network without lengths (or with
speed = inf) has no buffer at all; its coupling is evaluated at every stage of the integrator (so
Heun keeps second order). With delays the coupling is evaluated once per step from the buffer and
held through the integrator's stages (the convention of TVB).

Noise. The standard normals of step t are a function of the simulation's noise seed and t alone
(:class:`~brainfit.noise_stream.NoiseStream`); the seed travels in the :class:`NetworkState` and is
drawn from the ``generator`` passed to :meth:`BrainNetwork.simulate`. A run split into chunks
therefore gives the same numbers as the run in one piece, a chunk re-run for gradient
checkpointing draws the same noise again, and both engines see the same noise.

Engines. ``engine="fast"`` (the default) steps with :mod:`brainfit.engine`: delayed inputs
gathered several steps at a time from a time-contiguous history, a reverse-time backward pass
that recomputes one block at a time (memory bounded whatever the length), optionally compiled.
``engine="reference"`` is the plain loop below, one step at a time, which reads like the equations.
The two give the same numbers to rounding (``tests/test_engine.py``).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor, nn

from brainfit import coupling as coupling_lib
from brainfit import engine as engine_lib
from brainfit import integrate, runtime
from brainfit.checks import positive
from brainfit.connectome import (
    NORMALIZATIONS,
    EffectiveConnectivity,
    check_connectome,
    normalize_weights,
)
from brainfit.models.base import NeuralMass
from brainfit.noise import Noise
from brainfit.noise_stream import NoiseStream
from brainfit.params import ParameterSet, ParamSpec
from brainfit.runtime import SimulationDiverged, check_finite, check_generator  # noqa: F401 (SimulationDiverged: re-exported)
from brainfit.stimulus import Stimulus
from brainfit.timegrid import delay_steps, whole_delay_steps, whole_steps

log = logging.getLogger("brainfit.network")


@dataclass
class NetworkState:
    """Everything a simulation carries from one chunk to the next.

    Attributes:
        x: model state (B, S, N).
        step: steps taken since t = 0 (time = step * dt).
        seed: the noise seed (step t's noise depends only on it and t).
        history: the delay history of the sent values ``pre(x)`` (:mod:`brainfit.coupling`) or
            None: the reference engine's ring buffer (B * C, 2 * slots, N), or the fast engine's
            time-contiguous (B, C, N, L + 1) at steps ``step - L .. step``.
        noise: noise-process state (Ornstein-Uhlenbeck) or None.
    """

    x: Tensor
    step: int
    seed: int
    history: Tensor | None = None
    noise: Tensor | None = None

    def detach(self) -> NetworkState:
        """A copy cut from the autograd graph (truncated backpropagation)."""
        det = lambda t: None if t is None else t.detach()  # noqa: E731
        return replace(self, x=self.x.detach(), history=det(self.history), noise=det(self.noise))


class DelayBuffer:
    """Gathers ``P_j(t - d_ij)`` for every edge from a doubled ring buffer of sent values P.

    The buffer (B * C, 2 * slots, N) has ``2 * slots`` rows per batch element and channel: each
    step's value is written at ``p`` and ``p + slots`` (``p = step mod slots``), so the value ``l``
    steps back is always at ``p + slots - l`` and the per-step read is a single ``index_select``
    with a precomputed index plus ``p * N``.

    Args:
        lags: delays in steps, (N, N) or (B, N, N), float.
        batch: B.
        interpolate: read between whole steps (gradient to the lags).
        channels: C, values sent per region (the coupling's ``channels``).
    """

    def __init__(self, lags: Tensor, batch: int, interpolate: bool, channels: int = 1) -> None:
        n = lags.shape[-1]
        whole, frac = whole_delay_steps(lags.expand(batch, n, n), interpolate)
        self.frac = None if frac is None else frac.unsqueeze(1)  # (B, 1, N, N)
        self.slots = int(whole.max().item()) + (2 if interpolate else 1)
        self.n, self.batch, self.channels = n, batch, channels
        whole = whole.long().repeat_interleave(channels, dim=0)  # (B * C, N, N)
        j = torch.arange(n, device=lags.device)
        b = torch.arange(batch * channels, device=lags.device)[:, None, None]
        self.base = (b * 2 * self.slots * n + (self.slots - whole) * n + j).reshape(-1)

    def init(self, sent: Tensor) -> Tensor:
        """History holding ``sent`` (B, C, N) at every past step."""
        return sent.flatten(0, 1).unsqueeze(1).expand(-1, 2 * self.slots, -1).clone()

    def write(self, history: Tensor, step: int, sent: Tensor) -> None:
        p = step % self.slots
        sent = sent.flatten(0, 1)
        history[:, p] = sent
        history[:, p + self.slots] = sent

    def read(self, history: Tensor, step: int) -> Tensor:
        """``[b, c, i, j] = P_j(t - d_ij)`` in channel c: (B, C, N, N)."""
        p = step % self.slots
        flat = history.reshape(-1)
        shape = (self.batch, self.channels, self.n, self.n)
        now = flat.index_select(0, self.base + p * self.n).view(shape)
        if self.frac is None:
            return now
        older = flat.index_select(0, self.base + (p - 1) * self.n).view(shape)
        return now + self.frac * (older - now)


class BrainNetwork(nn.Module):
    """Node model + connectome + delays + coupling + noise + forcing.

    Args:
        model: the node model (a :class:`~brainfit.models.base.NeuralMass`).
        weights: W, (N, N) or per subject (B, N, N); ``W[i, j]`` is the connection j -> i.
        lengths: tract lengths L in mm, same shape as W, or None for no delays.
        speed: conduction speed in mm/ms (= m/s); ``inf`` disables delays.
        coupling: name (see :mod:`brainfit.coupling`) or a ``Coupling`` instance.
        coupling_params: parameter overrides for a coupling given by name.
        G: global coupling strength (value or ``{value, scope, trainable, low, high}``).
        normalize: weight normalisation, one of :data:`NORMALIZATIONS`.
        noise: a :class:`~brainfit.noise.Noise` process on the model's states, or None.
        stimulus: a :class:`~brainfit.stimulus.Stimulus`, or None.
        interpolate_delays: linear interpolation between delay steps (speed gets a gradient).
        integrator: fixed-step scheme name; default ``heun``, or ``stochastic_heun`` with noise.
        n_batch: B, for subject-scoped parameters (defaults to W's batch, or 1).
        params: overrides for the network's own parameters ``G`` and ``speed``.
        connectivity: fit the coupling weights per connection: the settings of an
            :class:`~brainfit.connectome.EffectiveConnectivity` (``scope``, ``value``, ``low``,
            ``high``, ``trainable``, ``mask``, ``prior``, ``shrinkage``), or None to couple
            through the (normalised) connectome as given.
        engine: ``"fast"`` (default) or ``"reference"`` (see the module docstring); an attribute
            that may be changed at any time between simulations.
        compile: compile the fast engine's inner block with ``torch.compile`` (a one-off cost of
            tens of seconds per model and shape; worth it for long runs).

    Raises:
        ValueError: bad connectome (non-square, NaN, negative), speed <= 0, shapes that disagree,
            a trainable speed without interpolation, an unknown coupling or normalisation.
    """

    param_specs = {
        "G": ParamSpec(1.0, "1", low=0.0, high=100.0, trainable=True,
                       doc="global coupling strength; its unit is that of the model's input "
                           "per unit of coupled state (1/ms for the Hopf model)"),
        "speed": ParamSpec(10.0, "mm/ms", low=0.1, high=1000.0, doc="conduction speed (= m/s)"),
    }

    def __init__(self, model: NeuralMass, weights: Tensor, lengths: Tensor | None = None,
                 speed: float | dict | None = None, coupling: str | coupling_lib.Coupling =
                 "diffusive", coupling_params: dict | None = None, G: float | dict | None = None,
                 normalize: str = "none", noise: Noise | None = None,
                 stimulus: Stimulus | None = None, interpolate_delays: bool = False,
                 integrator: str | None = None, n_batch: int | None = None,
                 params: dict | None = None, connectivity: dict | None = None,
                 engine: str = "fast", compile: bool = False) -> None:
        super().__init__()
        self.engine = engine_lib.check_engine(engine)
        self.compile = bool(compile)
        #: ``(offset, total)`` when this network's batch is rows ``offset ..`` of a batch of
        #: ``total`` (one process's share of a distributed fit): initial states and noise are
        #: those rows of the whole batch's draws (:class:`~brainfit.noise_stream.NoiseStream`)
        self.rows: tuple[int, int] | None = None
        if not isinstance(model, NeuralMass):
            raise TypeError(f"model must be a brainfit NeuralMass, got {type(model).__name__}")
        if isinstance(weights, (str, os.PathLike)):
            raise TypeError(f"weights must be an array (N, N) or (B, N, N), got the path "
                            f"{str(weights)!r}: load the file first, e.g. with "
                            f"brainfit.data.load(...) or numpy.load")
        W = torch.as_tensor(weights, dtype=torch.get_default_dtype())
        L = None if lengths is None else torch.as_tensor(lengths, dtype=torch.get_default_dtype())
        check_connectome(W, L)
        if L is not None and L.shape[-2:] != W.shape[-2:]:
            raise ValueError(f"lengths {tuple(L.shape)} and weights {tuple(W.shape)} disagree")
        n = W.shape[-1]
        if model.n_regions != n:
            raise ValueError(f"the model was built for {model.n_regions} regions but the "
                             f"connectome has {n}")
        batches = {t.shape[0] for t in (W, L) if t is not None and t.dim() == 3}
        if len(batches) > 1:
            raise ValueError(f"weights and lengths have different batch sizes {sorted(batches)}")
        self.n_batch = int(n_batch or (batches.pop() if batches else model.params.n_batch))
        for t, what in ((W, "weights"), (L, "lengths")):
            if t is not None and t.dim() == 3 and t.shape[0] != self.n_batch:
                raise ValueError(f"{what} have batch {t.shape[0]} but n_batch is {self.n_batch}")
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"unknown normalisation {normalize!r}; valid options are "
                             f"{NORMALIZATIONS}")
        self.normalize = normalize
        self.model = model
        self.register_buffer("weights", normalize_weights(W, normalize))
        self.connectivity = (None if connectivity is None else
                             EffectiveConnectivity(self.weights, self.n_batch, **connectivity))
        overrides = dict(params or {})
        if G is not None:
            overrides["G"] = G
        if speed is not None:
            overrides["speed"] = speed
        spd = overrides.get("speed")
        spd_value = spd.get("value") if isinstance(spd, dict) else spd
        self.has_delays = L is not None and not (
            spd_value is not None and torch.as_tensor(spd_value).double().isinf().all())
        if spd_value is not None:
            _check_speed(spd_value)
        if not self.has_delays:
            overrides.pop("speed", None)
        self.params = ParameterSet(self.param_specs, n, self.n_batch, overrides=overrides)
        if self.params.specs["speed"].trainable and not interpolate_delays:
            raise ValueError("speed is trainable but gets no gradient from whole-step delays: "
                             "set interpolate_delays=True (or make speed fixed)")
        self.register_buffer("lengths", L if self.has_delays else None)
        self.interpolate_delays = bool(interpolate_delays)
        self._zero_delays_checked: set[float] = set()
        if isinstance(coupling, str):
            coupling = coupling_lib.create(coupling, n, self.n_batch, **(coupling_params or {}))
        self.coupling = coupling
        self.noise = noise
        if noise is not None and tuple(noise.state_names) != tuple(model.state_names):
            raise ValueError(f"noise is defined on states {noise.state_names} but the model has "
                             f"{model.state_names}")
        self.stimulus = stimulus
        name = integrator or ("stochastic_heun" if noise is not None else "heun")
        self.integrator = integrate.create(name)
        if noise is not None and not self.integrator.stochastic:
            raise ValueError(f"the network has noise but integrator {name!r} is deterministic; "
                             f"use 'euler_maruyama' or 'stochastic_heun'")

    # -- parameters ------------------------------------------------------------------------------
    @property
    def n_regions(self) -> int:
        return self.weights.shape[-1]

    @property
    def coupling_weights(self) -> Tensor:
        """The weights the coupling reads: the connectome, or the fitted effective connectivity
        (with its graph), (N, N) or (B, N, N)."""
        return self.weights if self.connectivity is None else self.connectivity()

    def param_table(self) -> list[dict[str, Any]]:
        """Every parameter of network, model, coupling, noise and stimulus in natural units."""
        rows = [r for r in self.params.table() if r["parameter"] != "speed" or self.has_delays]
        rows += self.model.param_table()
        rows += self.coupling.param_table()
        for extra in (self.noise, self.stimulus):
            if extra is not None:
                rows += extra.param_table()
        return rows

    def delay_steps(self, dt: float) -> Tensor:
        """Delays ``L / speed / dt`` in (fractional) steps: (N, N) or (B, N, N)."""
        return delay_steps(self.lengths, self.params["speed"], dt)

    def check_zero_delays(self, dt: float) -> int:
        """Warn (once per ``dt``) when connections' delays round to 0 steps; returns how many
        (0 when this ``dt`` was checked before).

        Without interpolation a delay below dt/2 rounds to no delay at all, so the connection
        couples instantaneously. Only connections with a tract length > 0 and a weight count.
        """
        if not self.has_delays or self.interpolate_delays or dt in self._zero_delays_checked:
            return 0
        self._zero_delays_checked.add(dt)
        with torch.no_grad():
            delays = self.delay_steps(1.0)  # ms
            real = (self.lengths > 0) & (self.weights != 0)
            delays, real = torch.broadcast_tensors(delays, real)
            zero = real & (whole_delay_steps(delays / dt, interpolate=False)[0] == 0)
            n_zero = int((zero.any(0) if zero.dim() == 3 else zero).sum())  # any batch element
            if n_zero:
                n_real = int((real.any(0) if real.dim() == 3 else real).sum())
                shortest = float(delays[real].min())
                log.warning(
                    "%d of %d connections have conduction delays (length / speed) below dt/2 = "
                    "%g ms, the shortest %.3g ms: they round to 0 steps and couple "
                    "instantaneously. Use a smaller dt (below %.3g ms keeps every delay), or "
                    "interpolate_delays=True (model.interpolate_delays=true) to read between "
                    "steps", n_zero, n_real, dt / 2, shortest, 2 * shortest)
        return n_zero

    def max_delay(self) -> float:
        """Longest conduction delay in ms (0 without delays)."""
        if not self.has_delays:
            return 0.0
        return float(self.delay_steps(1.0).max())

    # -- simulation ------------------------------------------------------------------------------
    def initial_state(self, batch: int | None = None, generator: torch.Generator | None = None,
                      x0: Tensor | None = None) -> NetworkState:
        """A fresh :class:`NetworkState` at t = 0 (random model state unless ``x0`` is given)."""
        check_generator(generator)
        B = self._batch(x0.shape[0] if batch is None and x0 is not None else batch)
        ref = self.weights
        rows = self.rows if self.rows is not None and x0 is None else None
        if x0 is None:  # a share of a larger batch: its rows of that batch's draws
            x0 = self.model.initial_state(B if rows is None else rows[1], self.n_regions,
                                          generator, dtype=ref.dtype, device=ref.device)
            if rows is not None:
                x0 = x0[rows[0]:rows[0] + B]
        self.model.check_state(x0)
        if x0.shape[0] != B:
            raise ValueError(f"x0 has batch {x0.shape[0]}, expected {B}")
        seed = int(torch.randint(0, 2**62, (1,), generator=generator,
                                 device=generator.device if generator is not None else None))
        noise_state = None
        if self.noise is not None:  # the stationary start of coloured noise: block -1 of the stream
            g = NoiseStream(seed, (), x0.dtype, ref.device).generator(-1)
            noise_state = self.noise.init_state(x0.shape, x0.dtype, x0.device, g, rows)
        return NetworkState(x=x0, step=0, seed=seed, noise=noise_state)

    def _batch(self, batch: int | None) -> int:
        B = int(batch) if batch is not None else self.n_batch
        if self.weights.dim() == 3 and self.weights.shape[0] != B:
            raise ValueError(f"weights have batch {self.weights.shape[0]} but batch={B} was asked")
        return B

    def simulate(self, duration: float, dt: float, state: NetworkState | None = None,
                 burn_in: float = 0.0, record: str | Sequence[str] = "bold",
                 period: float | None = None, average: bool = False,
                 generator: torch.Generator | None = None, batch: int | None = None,
                 x0: Tensor | None = None, grad_through_burn_in: bool = False,
                 check_every: int = 2000, progress: bool = False,
                 ) -> tuple[Tensor | dict[str, Tensor], NetworkState]:
        """Integrate the network and record observables.

        Args:
            duration: recorded time in ms (after the burn-in).
            dt: integration step in ms.
            state: where to continue from (returned by an earlier call); None starts at t = 0.
            burn_in: ms simulated first and not recorded (without gradient unless
                ``grad_through_burn_in``).
            record: one observable name or several: a model state name, ``"coupled"``,
                ``"bold"`` (the model's BOLD drive) or ``"coupling"`` (the input each region
                receives).
            period: recording interval in ms (a multiple of dt; default dt).
            average: record the mean over each period (else the value at its end).
            generator: seeds the initial state and the noise when ``state`` is None.
            batch: B when ``state`` is None (default: the network's n_batch).
            x0: initial model state (B, S, N) when ``state`` is None.
            check_every: steps between NaN/inf checks (the fast engine checks at the end of each
                of its segments, at most 20,000 steps apart).
            progress: show a progress bar.

        Returns:
            ``(series, state)``: series (B, T, N) with T = duration / period (a dict of them when
            ``record`` is a sequence), and the state at the end.

        Raises:
            ValueError: dt <= 0, a duration or period that is not a whole number of steps, an
                unknown observable, a state that does not fit.
            SimulationDiverged: the state became NaN or inf (the message says when and where).
        """
        dt = integrate.check_dt(dt)
        self.check_zero_delays(dt)
        names = [record] if isinstance(record, str) else list(record)
        valid = set(self.model.state_names) | {"coupled", "bold", "coupling"}
        bad = [n for n in names if n not in valid]
        if bad:
            raise ValueError(f"cannot record {bad}; valid observables are {sorted(valid)}")
        period = dt if period is None else float(period)
        every = whole_steps(period, dt, "record period")
        n_steps = whole_steps(duration, dt, "duration", allow_zero=True)
        if n_steps % every:
            raise ValueError(f"duration {duration} ms is not a whole number of record periods "
                             f"({period} ms)")
        if state is None:
            state = self.initial_state(batch, generator, x0)
        else:
            self.model.check_state(state.x)
        n_burn = whole_steps(burn_in, dt, "burn_in", allow_zero=True)
        if n_burn:
            with torch.set_grad_enabled(torch.is_grad_enabled() and grad_through_burn_in):
                _, state = self._run(state, dt, n_burn, [], 1, False, check_every, progress)
        return self._run(state, dt, n_steps, names, every, average, check_every, progress,
                         single=isinstance(record, str))

    def _run(self, state: NetworkState, dt: float, n_steps: int, names: list[str], every: int,
             average: bool, check_every: int, progress: bool, single: bool = False):
        B = state.x.shape[0]
        self.params.check_batch(B)
        pbar = runtime.progress(n_steps, progress, "simulate", "step")
        if self.engine == "fast":
            rec, new_state = engine_lib.run(self, state, dt, n_steps, names, every, average,
                                            _check_finite, pbar)
            series = dict(zip(names, rec.unbind(0))) if rec is not None else {}
        else:
            series, new_state = self._run_reference(state, dt, n_steps, names, every, average,
                                                    check_every, pbar)
        if pbar is not None:
            pbar.close()
        empty = state.x.new_zeros(B, 0, self.n_regions)
        out = {n: series.get(n, empty) for n in names}
        if single:
            return out[names[0]], new_state
        return out, new_state

    def _run_reference(self, state: NetworkState, dt: float, n_steps: int, names: list[str],
                       every: int, average: bool, check_every: int, pbar):
        """The reference engine: one step at a time, as the equations read."""
        model, B = self.model, state.x.shape[0]
        W = self.coupling_weights
        x, noise_state, step = state.x, state.noise, state.step
        stream = (NoiseStream(state.seed, tuple(x.shape), x.dtype, x.device,
                                         self.rows) if self.noise is not None else None)
        if state.history is not None and state.history.dim() != 3:
            raise ValueError("the state's delay history comes from the fast engine; continue it "
                             "with engine='fast'")
        records: dict[str, list[Tensor]] = {n: [] for n in names}
        acc: dict[str, Tensor | float] = {n: 0.0 for n in names}
        with self.params.cached(), model.params.cached(), self.coupling.params.cached():
            G = self.params["G"]
            buffer, history = None, state.history
            if self.has_delays:
                buffer = DelayBuffer(self.delay_steps(dt), B, self.interpolate_delays,
                                     self.coupling.channels)
                strength = W.sum(-1)
                if history is None:
                    history = buffer.init(self.coupling.pre(model.coupled_observable(x)))
                elif history.shape[1] != 2 * buffer.slots:
                    raise ValueError("the delays changed between chunks of one simulation "
                                     "(speed or dt differ from the state's)")
                else:
                    history = history.clone()  # never write into a tensor autograd may recompute
            for k in range(n_steps):
                t = step * dt
                forcing = self.stimulus(t) if self.stimulus is not None else None
                dW = None
                if self.noise is not None:
                    dW, noise_state = self.noise.apply(noise_state, stream.draws(step, 1)[0], dt)
                if buffer is not None:
                    xc = model.coupled_observable(x)
                    buffer.write(history, step, self.coupling.pre(xc))
                    U = (W.unsqueeze(-3) * buffer.read(history, step)).sum(-1)  # (B, C, N)
                    c = self.coupling.post(G, U, xc, strength)
                    f = lambda s, c=c, u=forcing: model.derivative(s, c, u)  # noqa: E731
                else:
                    c = None
                    f = lambda s, u=forcing: model.derivative(  # noqa: E731
                        s, self.coupling(G, W, model.coupled_observable(s), None), u)
                if "coupling" in records:
                    if c is None:
                        c = self.coupling(G, W, model.coupled_observable(x), None)
                x_new = self.integrator.step(f, x, dt, dW)
                if names:
                    for n in names:
                        v = c if n == "coupling" else model.observable(x_new, n)
                        acc[n] = acc[n] + v if average else v
                    if (k + 1) % every == 0:
                        for n in names:
                            records[n].append(acc[n] / every if average else acc[n])
                            acc[n] = 0.0
                x, step = x_new, step + 1
                if (k + 1) % check_every == 0 or k + 1 == n_steps:
                    _check_finite(x, step * dt)
                if pbar is not None:
                    pbar.update(1)
        new_state = NetworkState(x=x, step=step, seed=state.seed, history=history,
                                 noise=noise_state)
        return {n: torch.stack(v, dim=1) for n, v in records.items() if v}, new_state

    def vector_field(self) -> NetworkVectorField:
        """``nn.Module`` ``(t, x) -> dx/dt`` for torchdiffeq (delay-free, deterministic only)."""
        if self.has_delays:
            raise ValueError("torchdiffeq solvers need a delay-free network: build it without "
                             "lengths (or with speed=inf), or use simulate()")
        if self.noise is not None:
            raise ValueError("torchdiffeq solvers are deterministic: build the network without "
                             "noise, or use simulate() with a stochastic integrator")
        return NetworkVectorField(self)


class NetworkVectorField(nn.Module):
    """The delay-free network as ``forward(t, x)`` (t in ms), for :func:`integrate.odeint`."""

    def __init__(self, network: BrainNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(self, t: Tensor, x: Tensor) -> Tensor:
        net = self.network
        c = net.coupling(net.params["G"], net.coupling_weights, net.model.coupled_observable(x),
                         None)
        forcing = net.stimulus(float(t)) if net.stimulus is not None else None
        return net.model.derivative(x, c, forcing)


def _check_speed(value: Any) -> None:
    """Every conduction speed given (a number, or one per region or subject) is a positive number
    of mm/ms, or inf (no conduction delays)."""
    for v in torch.as_tensor(value, dtype=torch.float64).reshape(-1).tolist():
        if v != math.inf:
            positive(v, "conduction speed", "mm/ms", fix="or inf for no conduction delays")


def _check_finite(x: Tensor, t: float) -> None:
    check_finite(x, f"the simulation diverged by t = {t:g} ms",
                 "reduce dt, the coupling strength G or the noise, or check the parameter values")
