"""The benches' networks and one run of them (child side: these import torch and brainfit).

- ``network``: Hopf nodes, diffusive coupling, a random heavy-tailed SC with delays, white noise,
  stochastic Heun (:func:`build_network`);
- ``jansen_rit``, ``hopf_fit``: a network as the fit builds it from the tree's ``conf/``
  (:func:`build_conf_network`), ``hopf_fit`` chained to the ``friston2003`` BOLD head;
- ``bold``: ``network`` chained to a Balloon-Windkessel head.

:class:`BenchRun` builds one and runs it forward or forward + backward, timed and checked.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchlib.measure import rss_now_mib


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
