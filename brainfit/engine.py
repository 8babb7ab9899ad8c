r"""The fast stepping path of :class:`~brainfit.network.BrainNetwork` (``engine="fast"``).

It computes the same numbers as the reference loop in :mod:`brainfit.network` (the plain eager
per-step loop that reads like the equations), organised for speed and memory:

**Blocks of K steps.** The delayed input of edge (i, j) at step t is ``pre(x_j)`` at step
``t - l_ij`` (``l_ij`` the delay in whole steps; ``pre`` the coupling's elementwise source
function, see :mod:`brainfit.coupling`). For an edge with ``l_ij >= K - 1`` (a *long* edge) every
delayed value the next K steps need is already known when the block starts, so its share of the
coupling sums

.. math:: U_i(t + k) = \sum_j W_{ij}\, P_j(t + k - l_{ij}), \qquad k = 0..K-1

is summed for the whole block at once from a history ``P`` stored time-contiguous per source
(each edge reads one contiguous run of K values) by the custom operator ``brainfit::lagged_sum``
(:mod:`brainfit.kernels`: numba on CPU, Triton on CUDA). The *short* edges (lags below K - 1;
real connectomes have tracts of a few mm) are summed step by step inside the block from a small
window of recent values (a sparse matrix-vector product a step without a graph, a padded gather
under autograd). The K local steps (model, integrator,
noise) are elementwise. K (at most :data:`MAX_BLOCK`) is chosen per simulation by a cost model.

**Noise** comes from a :class:`~brainfit.noise_stream.NoiseStream`: step t's standard normals
depend only on the seed and t (drawn in blocks from generators seeded per block), so chunking, the
block size and the engine never change them; the reference path draws from the same stream.

**Gradients at the cost of a forward pass, in bounded memory.** A simulation is cut into segments
(a few MB of history each). Each segment is one autograd node (:mod:`brainfit.segments`): its
forward runs without a graph and keeps only its inputs; its backward re-runs the segment, then
walks its blocks backward in time, rebuilding one block's graph at a time. The gradient reaching a
source's past values through the long edges is the same weighted sum run backward in time with W
transposed, ``gP_j(s) = sum_i W_ij gU_i(s + l_ij)``, which by the same argument only needs blocks
already processed: the same operator, never a scatter over the whole buffer; dL/dW is its
per-edge dot product ``brainfit::lagged_dot`` (the short edges' part comes from each block's own
graph). Memory is one segment's history and one block's graph, whatever the length of the run.

**Compilation.** With ``compile=True`` the K-step local block is compiled with ``torch.compile``
(fullgraph): a few tens of seconds once per model and shape, after which a step costs a few
microseconds at B = 1. Compiled results equal the eager ones to rounding, not bitwise. Where
``torch.compile`` cannot compile the block (no C++ compiler, an operation it cannot trace: the
errors of :func:`_compile_errors`) the engine warns once and steps eagerly; any other error, such
as a shape mismatch in a model's derivative, propagates as itself.

Without delays there is nothing to gather: a run without a graph, or a delay-free one whose graph
is small (:data:`DIRECT_BYTES`), steps the blocks under plain autograd.

Phases are labelled for ``torch.profiler``: ``brainfit.gather``, ``brainfit.local``,
``brainfit.noise`` and ``brainfit.backward`` (and ``brainfit.bold`` for the haemodynamic head).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.profiler import record_function

from .noise_stream import NoiseStream
from .runtime import Interrupted
from .segments import (  # noqa: F401 (_kept: the budget's bytes in use, read by tests)
    LaggedSum,
    _kept,
    _lagged,
    _Segment,
    _short_weights,
    _sums,
)
from .timegrid import whole_delay_steps

ENGINES = ("fast", "reference")
#: largest block of steps
MAX_BLOCK = 16
#: bytes of history a segment's backward may hold
SEGMENT_BYTES = 64 << 20
#: longest segment, in steps (finiteness is checked at segment ends)
MAX_SEGMENT = 20000
#: a delay-free simulation whose whole graph stays below this keeps it (plain backpropagation)
DIRECT_BYTES = 512 << 20
#: forward history the segments may keep for their backward pass (instead of recomputing it),
#: all simulations of the process together
KEEP_BYTES = 256 << 20


def check_engine(name: str) -> str:
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; valid engines are {ENGINES}")
    return name


# ------------------------------------------------------------------------------------- the plan


@dataclass
class _Short:
    """Edges with lags below ``K - 1``: summed step by step inside the block from a window of the
    last ``span`` sent values plus the block's own. Each region's short edges are padded to the
    largest short in-degree E (weight 0), so the sum is a gather and a reduction (no scatter)."""

    span: int  # window columns before the block: steps t - span + 1 .. t
    select: list[Tensor]  # per weight m: (B, N, E_m) sources in A_m's rows
    valid: list[Tensor]  # per weight m: (B, N, E_m) 1 for an edge, 0 for padding
    src: Tensor  # (B * C * N * E) flat index into the window (B, C, N, span + K) at j = 0

    def weights(self, A: list[Tensor]) -> Tensor:
        """The short edges' weights (B, N, E) from the full ones (keeps their graph)."""
        return torch.cat([a.gather(-1, sel) * v for a, sel, v in
                          zip(A, self.select, self.valid)], dim=-1)

    def matrix(self, w: Tensor, block_len: int) -> Tensor:
        """The short edges' weights ``w`` (B, N, E) as a sparse CSR matrix over the flattened
        window, padding left out: row (b, c, i), column ``src`` at j = 0. Step j of a block
        multiplies it with the window's values from j on (:meth:`Plan._local`), one sparse
        matrix-vector product instead of a padded gather, product and sum (forward passes
        without a graph)."""
        B, N, E = w.shape
        rows = self.src.numel() // E
        vals = w.detach().unsqueeze(1).expand(B, rows // (B * N), N, E).reshape(-1)
        keep = vals != 0
        crow = torch.zeros(rows + 1, dtype=torch.int64, device=w.device)
        crow[1:] = keep.view(rows, E).sum(1).cumsum(0)
        cols = rows * (self.span + block_len) - block_len + 1
        with warnings.catch_warnings():  # "CSR support is in beta": the product is what we use
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(crow, self.src[keep], vals[keep], (rows, cols),
                                           check_invariants=False)


@dataclass
class _Delays:
    """The delay tables of one simulation: per interpolation weight A_m (W, or W (1 - frac) and
    W frac) its whole-step lags, and which edges the block gather takes (the long ones)."""

    weights: list[Tensor]  # A_m (B, N, N), with their graph to the speed
    lags: list[Tensor]  # (B, N, N) long; an edge not in the gather reads the oldest value
    long: list[Tensor]  # (B, N, N) 1.0 where the gather takes the edge
    max_lag: int  # L: the history holds P at steps t - L .. t
    short: _Short | None


def _block_cost(n_long: int, n_short: int, k: int) -> float:
    """Rough cost in us per step of a block length (CPU; a heuristic to pick K)."""
    return n_long * (0.5 + 2.0 / k) * 1e-3 + n_short * 2.5e-3 + (20.0 if n_short else 0.0) \
        + 150.0 / k


class Plan:
    """Everything one call of the fast engine needs, resolved once.

    Holds the network's components, the flat list of parameter values (the ``ParameterSet``
    caches), the delay tables, and the local block function (compiled or not).
    """

    def __init__(self, net, dt: float, names: list[str], every: int, average: bool,
                 batch: int, seed: int) -> None:
        self.net, self.model, self.coupling = net, net.model, net.coupling
        self.noise, self.stimulus, self.integrator = net.noise, net.stimulus, net.integrator
        self.dt, self.names, self.every, self.average = dt, names, every, average
        self.sets = [net.params, net.model.params, net.coupling.params]
        self.sets += [c.params for c in (net.noise, net.stimulus) if c is not None]
        self.keys = [(s, name) for s in self.sets for name in s.specs]
        self.W = net.coupling_weights  # a value like the parameters: fitted, it has a graph
        self.B, self.N, self.S = batch, net.n_regions, net.model.n_states
        self.C = net.coupling.channels
        ref = net.weights
        self.stream = (NoiseStream(seed, (batch, self.S, self.N), ref.dtype, ref.device,
                                   net.rows) if net.noise is not None else None)
        self.delays: _Delays | None = None
        self.block_len = MAX_BLOCK
        self._compiled = None
        self.compile = bool(getattr(net, "compile", False))
        self._csr: Tensor | None = None  # the short edges' weights of the running segment
        #: forward history the segments may keep for their backward passes (:data:`KEEP_BYTES`)
        self.keep_bytes = KEEP_BYTES

    # -- parameters ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def cached(self) -> Iterator[list[Tensor]]:
        """Every parameter's value computed once (with its graph), and last the coupling
        weights; yields them in order."""
        with contextlib.ExitStack() as stack:
            cached = {id(s): stack.enter_context(s.cached()) for s in self.sets}
            yield [cached[id(s)][name] for s, name in self.keys] + [self.W]

    @contextlib.contextmanager
    def installed(self, values) -> Iterator[None]:
        """The parameter values and weights set to ``values`` (restored afterwards)."""
        W = self.W
        with contextlib.ExitStack() as stack:
            for s in self.sets:  # each set's values read before, restored when the block ends
                stack.enter_context(s.installed(None))
            try:
                self.install(values)
                yield
            finally:
                self.W = W

    def install(self, values) -> None:
        """Every parameter set reads its values from ``values`` (in the order of ``keys``; the
        coupling weights last, if given), ``{}`` for a set without any there."""
        by_set: dict[int, dict] = {}
        for (s, name), v in zip(self.keys, values):
            by_set.setdefault(id(s), {})[name] = v
        for s in self.sets:
            s.install(by_set.get(id(s), {}))
        if len(values) > len(self.keys):
            self.W = values[len(self.keys)]

    def delay_tables(self) -> None:
        """Whole-step lags, interpolation weights (with their graph to the speed), the block
        length K and the split of edges into long (gathered per block) and short ones."""
        net, B, n = self.net, self.B, self.N
        lags = net.delay_steps(self.dt).expand(B, n, n)
        W = self.W.expand(B, n, n)
        whole, frac = whole_delay_steps(lags, net.interpolate_delays)
        weights = [W] if frac is None else [W * (1.0 - frac), W * frac]
        edge = W.detach() != 0  # absent edges bound nothing
        offs = [whole.long() + m for m in range(len(weights))]
        max_lag = int(offs[-1].max())
        # K: the block length with the lowest estimated cost; edges with lag >= K - 1 are
        # gathered once per block, the others step by step inside it
        counts = torch.stack([torch.bincount(o[edge], minlength=max_lag + 1) for o in offs]).sum(0)
        below = torch.cumsum(counts, 0).tolist()  # edges with lag <= l
        short_at = lambda k: below[min(k - 2, max_lag)] if k >= 2 else 0  # noqa: E731
        K = min(range(1, MAX_BLOCK + 1),
                key=lambda k: _block_cost(below[-1] - short_at(k), short_at(k), k))
        self.block_len = K
        # the history reaches back at least K - 1 steps, so that an edge outside the gather
        # (weight 0 there) can read a run of K values already written
        max_lag = max(max_lag, K - 1)
        long = [edge & (o >= K - 1) for o in offs]
        short_masks = [edge & (o < K - 1) for o in offs]
        short = self._short_edges(short_masks, offs)
        offs = [torch.where(lg, o, torch.full_like(o, max_lag)) for lg, o in zip(long, offs)]
        self.delays = _Delays(weights, offs, [lg.to(W.dtype) for lg in long], max_lag, short)

    def _short_edges(self, masks: list[Tensor], offs: list[Tensor]) -> _Short | None:
        if not any(bool(m.any()) for m in masks):
            return None
        B, C, n, K = self.B, self.C, self.N, self.block_len
        span = max(int(o[m].max()) for m, o in zip(masks, offs) if bool(m.any())) + 1
        select, valid, src = [], [], []
        b = torch.arange(B, device=self.W.device)[:, None, None, None]
        c = torch.arange(C, device=self.W.device)[None, :, None, None]
        for m, o in zip(masks, offs):
            E = int(m.sum(-1).max())
            if E == 0:
                continue
            # each row's short sources first (stable), padded with weight-0 entries
            j = torch.sort((~m).to(torch.int8), dim=-1, stable=True).indices[..., :E]
            ok = m.gather(-1, j)
            lag = torch.where(ok, o.gather(-1, j), 0)
            select.append(j)
            valid.append(ok.to(self.W.dtype))
            src.append(((b * C + c) * n + j[:, None]) * (span + K) + (span - 1 - lag[:, None]))
        return _Short(span, select, valid, torch.cat(src, -1).reshape(-1))

    # -- the local block -------------------------------------------------------------------------
    def forcing(self, step: int, k: int) -> Tensor | None:
        if self.stimulus is None:
            return None
        ref = self.W
        return torch.stack([torch.broadcast_to(self.stimulus(s * self.dt),
                                               (self.B, self.N)).to(ref.dtype)
                            for s in range(step, step + k)])

    def local(self, x: Tensor, U: Tensor | None, xi: Tensor | None, F: Tensor | None,
              eta: Tensor | None, values: list[Tensor], k: int, win: Tensor | None = None,
              w_short: Tensor | None = None):
        """k steps of the local dynamics.

        The coupling input is ``U`` (B, C, N, k) from the long edges plus, step by step, the short
        edges' sum read from ``win`` (B, C, N, span), the sent values of the steps before the
        block, with weights ``w_short``; without delays it is evaluated at every stage.

        Returns:
            (x, eta, observables (n_obs, B, k, N) or None, sent values P (B, C, N, k) or None).
        """
        args = (x, U, xi, F, eta, tuple(values), k, win, w_short)
        failed = None
        if self.compile and k == self.block_len:
            if self._compiled is None:
                self._compiled = _compiled(self)
            try:
                return self._compiled(*args)
            except _compile_errors() as err:  # no C++ compiler, an unsupported operation, ...
                if _interrupted(err):  # a signal during compilation stops the run
                    raise
                failed = err
        if self._csr is not None and win is not None and not torch.is_grad_enabled():
            args = (*args[:-1], self._csr)  # eager and without a graph: the sparse short sum
        out = self._local(*args)  # an error of the model's own is raised here, as itself
        if failed is not None:
            warnings.warn(f"torch.compile failed ({type(failed).__name__}: {failed}); the fast "
                          f"engine continues without compiling", stacklevel=2)
            self.compile = self.net.compile = False
        return out

    def _local(self, x, U, xi, F, eta, values, k, win, w_short):
        self.install(values)
        short = self.delays.short if win is not None else None
        sparse = w_short is not None and w_short.layout == torch.sparse_csr
        if short is not None:  # the window grows by the block's own sent values
            win = torch.cat([win, win.new_zeros(*win.shape[:3], self.block_len)], dim=-1)
            flat = win.view(-1)
            if not sparse:
                w_short = w_short.unsqueeze(1)  # (B, 1, N, E)
        model, coupling, integ, dt = self.model, self.coupling, self.integrator, self.dt
        G = self.net.params["G"]
        W = self.W
        strength = W.sum(-1) if U is not None else None
        obs: list[list[Tensor]] = [[] for _ in self.names]
        P: list[Tensor] = []
        sigma = self.noise.sigma_bsn() if self.noise is not None else None
        for j in range(k):
            u = None if F is None else F[j]
            dW = None
            if self.noise is not None:
                dW, eta = self.noise.apply(eta, xi[j], dt, sigma)
            if U is not None:
                Uj = U[..., j]
                if sparse:
                    Uj = Uj + (w_short @ flat[j:j + w_short.shape[1]]).view(Uj.shape)
                elif short is not None:
                    sent = flat.index_select(0, short.src + j)
                    Uj = Uj + (sent.view(*Uj.shape, -1) * w_short).sum(-1)
                c = coupling.post(G, Uj, model.coupled_observable(x), strength)
                x_new = integ.step(lambda s, c=c, u=u: model.derivative(s, c, u), x, dt, dW)
            else:
                c = None
                x_new = integ.step(lambda s, u=u: model.derivative(
                    s, coupling(G, W, model.coupled_observable(s), None), u), x, dt, dW)
            for o, name in zip(obs, self.names):
                if name == "coupling":
                    if c is None:
                        c = coupling(G, W, model.coupled_observable(x), None)
                    o.append(c)
                else:
                    o.append(model.observable(x_new, name))
            x = x_new
            if U is not None:
                P.append(coupling.pre(model.coupled_observable(x)))
                if short is not None:
                    win[..., short.span + j] = P[-1]
        rec = torch.stack([torch.stack(o, dim=1) for o in obs]) if obs else None
        return x, eta, rec, (torch.stack(P, dim=-1) if P else None)

    # -- a segment, forward ----------------------------------------------------------------------
    def blocks(self, n: int) -> list[tuple[int, int]]:
        K = self.block_len
        return [(s, min(K, n - s)) for s in range(0, n, K)]

    def run_segment(self, t0: int, n: int, x: Tensor, hist: Tensor | None, eta: Tensor | None,
                    values: list[Tensor], sums: list[LaggedSum] | None,
                    w_short: Tensor | None = None, keep: bool = False):
        """Steps ``t0 .. t0 + n - 1`` without a graph. Returns (records, x, hist, eta) and, with
        ``keep``, the history buffer and the block-start states for the backward pass."""
        L = self.delays.max_lag if self.delays is not None else 0
        if w_short is not None and not torch.is_grad_enabled():
            self._csr = self.delays.short.matrix(w_short, self.block_len)
        with self.installed(values), _cleared(self, "_csr"):
            buf = None
            if hist is not None:
                buf = hist.new_empty(self.B, self.C, self.N, L + 1 + n)
                buf[..., :L + 1] = hist
            recs, starts = [], []
            for s, k in self.blocks(n):
                if keep:
                    starts.append((x, eta))
                U = None
                if buf is not None:
                    with record_function("brainfit.gather"):
                        U = _lagged(sums, buf, L + s, k)
                xi = None
                if self.stream is not None:
                    with record_function("brainfit.noise"):
                        xi = self.stream.draws(t0 + s, k)
                F = self.forcing(t0 + s, k)
                win = self.window(buf, L + s) if w_short is not None else None
                with record_function("brainfit.local"):
                    x, eta, rec, P = self.local(x, U, xi, F, eta, values, k, win, w_short)
                if buf is not None:
                    buf[..., L + 1 + s:L + 1 + s + k] = P
                if rec is not None:
                    recs.append(rec)
        rec = self.reduce(torch.cat(recs, dim=2)) if recs else None
        hist_end = None if buf is None else buf[..., n:].clone()
        if keep:
            return (rec, x, hist_end, eta), buf, starts
        return rec, x, hist_end, eta

    def window(self, buf: Tensor, col: int) -> Tensor:
        """The short edges' window: the sent values of the ``span`` steps up to the block start
        (at column ``col`` of ``buf``)."""
        return buf[..., col + 1 - self.delays.short.span:col + 1].contiguous()

    def reduce(self, rec: Tensor) -> Tensor:
        """Per-step observables (n_obs, B, n, N) -> one per record period."""
        o, b, n, m = rec.shape
        if self.every == 1:
            return rec
        if self.average:
            return rec.view(o, b, n // self.every, self.every, m).sum(3) / self.every
        return rec[:, :, self.every - 1::self.every]

    def expand(self, g_rec: Tensor) -> Tensor:
        """The gradient of :meth:`reduce`: per record period -> per step."""
        if self.every == 1:
            return g_rec
        if self.average:
            return (g_rec / self.every).repeat_interleave(self.every, dim=2)
        out = g_rec.new_zeros(*g_rec.shape[:2], g_rec.shape[2] * self.every, g_rec.shape[3])
        out[:, :, self.every - 1::self.every] = g_rec
        return out


@contextlib.contextmanager
def _cleared(obj, name: str) -> Iterator[None]:
    """``obj.name`` set back to None when the block ends."""
    try:
        yield
    finally:
        setattr(obj, name, None)


def _interrupted(err: BaseException) -> bool:
    """Whether ``err`` is, or was raised from, an interrupt (SIGINT, SIGTERM: the fit's
    :class:`~brainfit.runtime.Interrupted`), which the compiler may have wrapped in its own
    error."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, (Interrupted, KeyboardInterrupt, SystemExit)):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False


def _compiled(plan: Plan):
    return torch.compile(plan._local, fullgraph=True, dynamic=False)


@functools.cache
def _compile_errors() -> tuple[type[BaseException], ...]:
    """The errors by which ``torch.compile`` says that it cannot compile the block, after which
    the engine steps it eagerly: dynamo's (an operation it cannot trace, its internal errors, a
    tensor operation that failed while it traced with fake tensors), the backend's (inductor's
    errors come as ``BackendCompilerFailed``), no or a broken C++ compiler (inductor's own
    errors, or the ``OSError`` / ``CalledProcessError`` of running it), no Triton for a GPU.

    Anything else (a ``RuntimeError`` of a shape mismatch in the model, say) propagates. A
    failure of the model's own that shows while dynamo traces it (``TorchRuntimeError``) is
    raised again, as itself, by the eager step that follows, before any "compile failed"
    warning.
    """
    from torch._dynamo import exc as dynamo

    errors: list[type[BaseException]] = [OSError, subprocess.CalledProcessError]
    names = {dynamo: ("BackendCompilerFailed", "Unsupported", "TorchRuntimeError",
                      "InternalTorchDynamoError")}
    with contextlib.suppress(ImportError):
        from torch._inductor import exc as inductor

        names[inductor] = ("InvalidCxxCompiler", "CppCompileError", "TritonMissing",
                           "GPUTooOldForTriton")
    for module, classes in names.items():
        errors += [getattr(module, c) for c in classes if hasattr(module, c)]
    return tuple(errors)


# ------------------------------------------------------------------------------------- driver


#: values of autograd graph one eager step keeps per state variable (measured: 30-50)
GRAPH_VALUES_PER_STATE = 40


def graph_bytes_per_step(plan: Plan) -> int:
    """Rough bytes of autograd graph one eager step keeps."""
    return GRAPH_VALUES_PER_STATE * plan.B * plan.S * plan.N * plan.W.element_size()


def segment_steps(plan: Plan, every: int) -> int:
    """Steps per segment: a multiple of the record period whose history fits SEGMENT_BYTES."""
    return _segment_steps(_history_bytes_per_step(plan.B, plan.N, plan.C, plan.S,
                                                  len(plan.names), plan.W.element_size()), every)


def _history_bytes_per_step(B: int, N: int, C: int, S: int, n_obs: int, e: int) -> int:
    return B * N * (2 * C + n_obs + S) * e


def _segment_steps(per_step: int, every: int) -> int:
    return int(max(every, min(MAX_SEGMENT, SEGMENT_BYTES // max(per_step, 1)) // every * every))


def training_bytes(net, batch: int, n_steps: int, max_lag: int) -> int | None:
    """Estimated peak bytes of one forward + backward pass of ``n_steps`` through the fast
    engine, by the sizing rules it runs with: per segment its inputs (a state and ``max_lag + 1``
    steps of history), one segment's recomputed history, one block's graph, and up to
    :data:`KEEP_BYTES` of forward history kept. None when the engine keeps the whole graph
    instead (a delay-free run whose graph stays below :data:`DIRECT_BYTES`): then it is plain
    autograd, one graph per step."""
    e = net.weights.element_size()
    N, S, C = net.n_regions, net.model.n_states, net.coupling.channels
    step_graph = GRAPH_VALUES_PER_STATE * batch * S * N * e
    if not net.has_delays and n_steps * step_graph <= DIRECT_BYTES:
        return None
    per_step = _history_bytes_per_step(batch, N, C, S, 1, e)
    seg = _segment_steps(per_step, 1)
    L = max_lag
    inputs = math.ceil(n_steps / seg) * batch * N * (S + C * (L + 1)) * e
    recompute = seg * per_step + batch * C * N * (2 * L + 1) * e
    block = MAX_BLOCK * step_graph
    kept = min(KEEP_BYTES, n_steps * batch * N * C * e)  # forward history kept, capped
    return inputs + recompute + block + kept


def run(net, state, dt: float, n_steps: int, names: list[str], every: int, average: bool,
        check, progress=None):
    """Integrate ``net`` for ``n_steps`` from ``state`` with the fast engine.

    Returns ``(records (n_obs, B, n_steps / every, N) or None, state)`` with the same meaning as
    the reference loop in :meth:`BrainNetwork._run`.
    """
    x = state.x
    plan = Plan(net, dt, names, every, average, x.shape[0], state.seed)
    with plan.cached() as values:
        hist = state.history
        if net.has_delays:
            plan.delay_tables()
            L = plan.delays.max_lag
            if hist is None:
                P0 = net.coupling.pre(net.model.coupled_observable(x))
                hist = P0.unsqueeze(-1).expand(-1, -1, -1, L + 1)
            elif hist.dim() != 4 or hist.shape[-1] != L + 1:
                raise ValueError("the state's delay history does not fit this network: the "
                                 "delays changed between chunks (speed or dt differ), or the "
                                 "state comes from the other engine")
        weights = plan.delays.weights if plan.delays is not None else []
        eta = state.noise
        seg = segment_steps(plan, every)
        # without a graph, or without delays and a graph small enough to keep, plain autograd
        # through the blocks is cheaper than the recomputing backward (same numbers)
        direct = not torch.is_grad_enabled() or (
            not net.has_delays and n_steps * graph_bytes_per_step(plan) <= DIRECT_BYTES)
        recs, step = [], state.step
        done = 0
        while done < n_steps:
            n = min(seg, n_steps - done)
            if direct:
                rec, x, hist, eta = plan.run_segment(step, n, x, hist, eta, values,
                                                     _sums(plan, weights, n),
                                                     _short_weights(plan, weights))
            else:
                empty = x.new_zeros(0)
                rec, x, hist, eta = _Segment.apply(
                    plan, step, n, x, empty if hist is None else hist,
                    empty if eta is None else eta, *weights, *values)
                hist = hist if net.has_delays else None
                eta = eta if eta.numel() else None
                rec = rec if rec.numel() else None
            if rec is not None:
                recs.append(rec)
            step += n
            done += n
            check(x, step * dt)
            if progress is not None:
                progress.update(n)
    out = torch.cat(recs, dim=2) if recs else None
    return out, dataclasses.replace(state, x=x, step=step, history=hist, noise=eta)
