"""Configuration schemas of a fit, and how they build the objects.

:class:`NetworkSpec` (config group ``model``) describes the node model, its parameters (with the
network's own ``G`` and ``speed`` among them, so ``model.params.G.scope=subject`` works), noise and
integration; :class:`TrainerConfig` (group ``trainer``) the optimisation loop. Both are registered
in Hydra's ConfigStore as schemas so that a misspelt key fails when the config is composed.
:class:`CouplingSpec` is the ``coupling`` group, one stored node per registered coupling.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from brainfit import coupling as coupling_lib
from brainfit import models
from brainfit.bold import BoldHead
from brainfit.coupling import Coupling
from brainfit.engine import check_engine
from brainfit.network import BrainNetwork
from brainfit.noise import create as create_noise
from brainfit.simulator import BoldSimulator

NETWORK_PARAMS = tuple(BrainNetwork.param_specs)
#: the name of the coupling weights fitted per connection
#: (:class:`brainfit.connectome.EffectiveConnectivity`)
CONNECTIVITY = "W"
#: ``trainer.compile: auto`` compiles when one simulation has at least this many steps
COMPILE_STEPS = 200_000


@dataclass
class NetworkSpec:
    """The network model of a fit (config group ``model``).

    Args:
        name: registered node model (``brainfit.models.available()``).
        params: ``{name: value | {value, scope, trainable, low, high}}`` for the node model's
            parameters and the network's ``G`` (coupling strength) and ``speed`` (mm/ms); and
            ``W``, the coupling weights fitted per connection, ``{scope: edge | subject_edge,
            value, low, high, trainable, mask: sc | all, prior, shrinkage}`` (the gain over the
            SC; see :class:`~brainfit.connectome.EffectiveConnectivity`), or null: the SC as
            given, not fitted.
        noise: ``{kind: white|ou, sigma: float | {state: sigma}, trainable, scope, tau}`` or None.
        integrator: fixed-step scheme (default: stochastic Heun with noise, Heun without).
        delays: use tract lengths for conduction delays.
        interpolate_delays: interpolate between delay steps (speed gets a gradient).
        normalize: extra connectome normalisation in the network (the data's own is applied
            when loading).
        maps: spatial maps for ``map``-scoped parameters: names of maps the data carry, or
            ``sc_strength`` (z-scored in-strength of each subject's SC).
        dt: the neural step (ms) this model is fitted with, unless ``trainer.dt`` says otherwise;
            it belongs to the model because it follows from its fastest time scale.
        feedback_inhibition: for ``wong_wang_ei``: the excitatory rate (Hz) that feedback
            inhibition control holds (Deco et al. 2014); J_i is re-tuned before every simulation
            for the current G (needs a ``linear`` coupling and J_i of ``subject_regional`` scope).
    """

    _target_: str = "brainfit.fit.NetworkSpec"
    name: str = "hopf"
    params: dict[str, Any] = field(default_factory=dict)
    noise: dict[str, Any] | None = None
    integrator: str | None = None
    delays: bool = True
    interpolate_delays: bool = False
    normalize: str = "none"
    maps: list[str] = field(default_factory=list)
    dt: float = 0.1
    feedback_inhibition: float | None = None

    def __post_init__(self) -> None:
        cls = models.get(self.name)
        params = {k: _plain(v) for k, v in dict(self.params or {}).items()}
        valid = set(cls.param_specs) | set(NETWORK_PARAMS) | {CONNECTIVITY}
        unknown = set(params) - valid
        if unknown:
            raise ValueError(f"model {self.name!r} has no parameter(s) {sorted(unknown)}; valid "
                             f"names are {sorted(valid)}")
        if CONNECTIVITY in params and params[CONNECTIVITY] is None:
            del params[CONNECTIVITY]
        if CONNECTIVITY in params:
            w = params[CONNECTIVITY]
            keys = {"scope", "value", "low", "high", "trainable", "mask", "prior", "shrinkage",
                    "fill"}
            if not isinstance(w, dict) or set(w) - keys:
                raise ValueError(f"model.params.W (the coupling weights fitted per connection) "
                                 f"takes a mapping with keys {sorted(keys)}, got {w!r}")
        self.params = params
        self.noise = None if self.noise is None else _plain(self.noise)
        self.maps = list(self.maps or [])
        if not self.dt > 0:
            raise ValueError(f"model.dt must be a positive step in ms, got {self.dt}")
        if self.feedback_inhibition is not None and not hasattr(cls, "fit_feedback_inhibition"):
            raise ValueError(f"feedback_inhibition is only defined for models with feedback "
                             f"inhibition control (wong_wang_ei), not {self.name!r}")

    def build(self, weights: torch.Tensor, lengths: torch.Tensor | None, coupling: Any,
              data_maps: dict[str, torch.Tensor] | None = None,
              n_batch: int | None = None) -> BrainNetwork:
        """A :class:`BrainNetwork` on batched connectomes (B, N, N).

        Args:
            weights, lengths: (B, N, N) (lengths ignored unless ``delays``).
            coupling: a ``Coupling`` or a factory ``(n_regions, n_batch) -> Coupling``.
            data_maps: spatial maps from the data, name -> (B, N).
        """
        B, N = weights.shape[0], weights.shape[-1]
        maps = self._maps(weights, data_maps or {})
        node = {k: v for k, v in self.params.items()
                if k not in NETWORK_PARAMS and k != CONNECTIVITY}
        net = {k: v for k, v in self.params.items() if k in NETWORK_PARAMS}
        connectivity = self.params.get(CONNECTIVITY)
        model = models.create(self.name, n_regions=N, n_batch=B, maps=maps, params=node)
        noise = None
        if self.noise is not None:
            cfg = dict(self.noise)
            kind = cfg.pop("kind", "white")
            noise = create_noise(kind, model.state_names, n_regions=N, n_batch=B, **cfg)
        if not isinstance(coupling, Coupling):
            coupling = coupling(n_regions=N, n_batch=B)
        return BrainNetwork(model, weights, lengths if self.delays else None, coupling=coupling,
                            normalize=self.normalize, noise=noise,
                            interpolate_delays=self.interpolate_delays,
                            integrator=self.integrator, n_batch=n_batch or B, params=net,
                            connectivity=connectivity)

    def _maps(self, weights: torch.Tensor, data_maps: dict[str, torch.Tensor]):
        if not self.maps:
            return None
        cols = []
        for name in self.maps:
            if name == "sc_strength":
                s = weights.sum(-1)
                s = s - s.mean(-1, keepdim=True)
                cols.append(s / s.std(-1, keepdim=True).clamp_min(1e-12))
            elif name in data_maps:
                cols.append(data_maps[name])
            else:
                raise ValueError(f"unknown spatial map {name!r}; the data carry "
                                 f"{sorted(data_maps)} and 'sc_strength' is always available")
        return torch.stack(cols, dim=-1)  # (B, N, K)


@dataclass
class TrainerConfig:
    """The optimisation loop (config group ``trainer``).

    Times: ``dt``/``eval_dt`` in ms (neural step), everything else in seconds or counts.

    Args:
        epochs: optimiser steps (each simulates the whole batch once per noise realisation).
        restarts: random restarts per subject, run side by side in the batch; the one with the
            lowest training loss is kept per subject.
        restart_spread: standard deviation, in the unconstrained space, of the random starting
            values of per-subject parameters for restarts after the first.
        train_fraction: temporal split: the first fraction of each session is fitted, the rest
            held out, scored once at the end on the checkpoint the run hands over.
        val_fraction: the share of the fitted part, at its end, that is not fitted but
            validates: what the evaluations every ``eval_every`` epochs score and what picks
            ``best.pt`` (0: no validation part, nothing is selected, the final parameters are the
            checkpoint). Each part is preprocessed on its own
            (:func:`brainfit.data.preprocess.split_sessions`).
        split_gap: s dropped at the start of the validation and held-out parts (rounded up to
            whole volumes), so that the slow haemodynamics of one part do not reach into the next.
        target_shrinkage: the fraction ``lam`` of the group's FC in each subject's fitted FC
            target: ``(1 - lam) * own + lam * mean of the other subjects'`` (their fitted parts
            only; a shrinkage estimator of the subject's FC, James & Stein 1961). 0: each
            subject's own FC.
        dt: neural step while fitting, ms (None: the model's ``dt``; may be coarser than
            ``eval_dt``).
        eval_dt: neural step for evaluation, ms (None: ``dt``).
        sim_seconds: BOLD simulated per step, s (None: the length of the training part).
        burn_in: s simulated and discarded before recording (no gradient through it).
        chunk: s of simulation per chunk.
        checkpoint_chunks: gradient checkpointing per chunk (memory ~ one chunk).
        truncate: truncated backpropagation every this many chunks (None: full backprop);
            shortens the gradient paths, but bounds memory only with ``checkpoint_chunks``.
        noise_realisations: simulations averaged per loss (stochastic models).
        clip_grad: gradient-norm clipping threshold (None: off).
        eval_every: epochs between evaluations on the validation part (0: none during the fit;
            with a validation part, the final parameters are scored on it at the end).
        eval_seeds: noise seeds averaged in evaluation.
        eval_seconds: BOLD simulated per evaluation, s (None: the held-out part's length).
        resume: checkpoint to continue from.
        progress: progress bars.
        figures: draw ``figures/`` at the end (false: tables and checkpoints only, e.g. for the
            jobs of a large sweep; matplotlib takes a few seconds per figure).
        engine: ``fast`` (blocked delays, reverse-time backward in bounded memory) or
            ``reference`` (the plain per-step loop); see :mod:`brainfit.engine`.
        compile: compile the fast engine's inner loop (``true``/``false``), or ``auto``: compile
            when one simulation has at least :data:`COMPILE_STEPS` steps, where the one-off
            compilation (tens of seconds) pays for itself.
        divergence_lr_factor: when a step diverges (a NaN/inf loss, gradient, parameter or
            simulation), the parameters and optimiser state go back to the last good step and
            every learning rate is multiplied by this factor before trying again.
        max_divergences: the fit stops (with the last good state saved) after this many such
            recoveries.
        linearized: fit the FC and autocorrelations of the model linearised about its resting
            state (:func:`brainfit.linear.linearized_stats`: exact and noise-free, no simulation
            per step) instead of those of simulated BOLD; FC and ``acf`` loss terms only
            (``loss=fc`` or ``loss=fc_acf``), white noise, no delays, a model at rest at 0 (hopf).
            Evaluation still simulates the model.
        batch_subjects: simulate this many subjects (with their restarts) at a time and add up
            their gradients before each optimiser step (None: the whole cohort, or a process's
            share, at once). The fit is the same (to rounding); memory follows the batch, not the
            cohort, while every subject keeps its parameters.
        distributed: split the batch over the processes torchrun starts
            (:mod:`brainfit.fit.distributed`): ``true``, ``false`` or ``auto`` (when torchrun's
            environment names more than one process).
        distributed_timeout: s a process waits for the others in a collective before failing
            (a rank that died or hangs ends the job).
    """

    _target_: str = "brainfit.fit.TrainerConfig"
    epochs: int = 40
    restarts: int = 1
    restart_spread: float = 1.0
    train_fraction: float = 0.8
    val_fraction: float = 0.2
    split_gap: float = 0.0
    target_shrinkage: float = 0.0
    dt: float | None = None
    eval_dt: float | None = None
    sim_seconds: float | None = 300.0
    burn_in: float = 20.0
    chunk: float = 60.0
    checkpoint_chunks: bool = False
    truncate: int | None = None
    noise_realisations: int = 1
    clip_grad: float | None = 1.0
    eval_every: int = 10
    eval_seeds: int = 5
    eval_seconds: float | None = None
    resume: str | None = None
    progress: bool = True
    figures: bool = True
    engine: str = "fast"
    compile: Any = "auto"
    divergence_lr_factor: float = 0.1
    max_divergences: int = 3
    linearized: bool = False
    batch_subjects: int | None = None
    distributed: Any = "auto"
    distributed_timeout: float = 600.0

    def __post_init__(self) -> None:
        for key in ("compile", "distributed"):
            if getattr(self, key) not in (True, False, "auto"):
                raise ValueError(f"trainer.{key} must be true, false or auto, got "
                                 f"{getattr(self, key)!r}")
        check_engine(self.engine)
        bad = [f"trainer.{k}={getattr(self, k)} (must be {rule})"
               for k, rule in TRAINER_RANGES.items()
               if getattr(self, k) is not None and not _in_range(getattr(self, k), rule)]
        if bad:
            raise ValueError(f"trainer settings out of range: {'; '.join(bad)}")
        if self.eval_every and not self.val_fraction:
            raise ValueError(f"trainer.eval_every = {self.eval_every} scores the validation part "
                             f"during the fit, but trainer.val_fraction = 0 leaves none: set "
                             f"trainer.val_fraction (e.g. 0.2), or trainer.eval_every=0 (nothing "
                             f"selected: the final parameters are the checkpoint)")


#: the valid values of the trainer's numeric settings (those that may be None are unchecked then)
TRAINER_RANGES = {
    "epochs": ">= 0", "restarts": ">= 1", "train_fraction": "in (0, 1)", "burn_in": ">= 0",
    "chunk": "> 0", "noise_realisations": ">= 1", "eval_every": ">= 0", "eval_seeds": ">= 1",
    "restart_spread": ">= 0", "divergence_lr_factor": "in (0, 1)", "max_divergences": ">= 0",
    "dt": "> 0", "eval_dt": "> 0", "sim_seconds": "> 0", "eval_seconds": "> 0",
    "truncate": ">= 1", "clip_grad": "> 0", "distributed_timeout": "> 0",
    "batch_subjects": ">= 1", "target_shrinkage": "in [0, 1)", "val_fraction": "in [0, 1)",
    "split_gap": ">= 0",
}


def _in_range(value: float, rule: str) -> bool:
    """Whether ``value`` obeys ``rule``: ``">= x"``, ``"> x"``, ``"in (0, 1)"`` or
    ``"in [0, 1)"``."""
    if rule == "in (0, 1)":
        return 0 < value < 1
    if rule == "in [0, 1)":
        return 0 <= value < 1
    op, bound = rule.split()
    return value >= float(bound) if op == ">=" else value > float(bound)


def build_simulator(spec: NetworkSpec, coupling: Any, bold: Any, weights: torch.Tensor,
                    lengths: torch.Tensor | None, data_maps: dict | None = None) -> BoldSimulator:
    """Network + BOLD head for batched connectomes; ``bold`` is a head or a factory of one."""
    net = spec.build(weights, lengths, coupling, data_maps)
    if not isinstance(bold, BoldHead):
        bold = bold(n_regions=net.n_regions, n_batch=net.n_batch)
    return BoldSimulator(net, bold)


def _plain(value: Any) -> Any:
    """OmegaConf containers -> plain Python (dicts, lists)."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf

        if isinstance(value, (DictConfig, ListConfig)):
            return OmegaConf.to_container(value, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass
class CouplingSpec:
    """A coupling (config group ``coupling``): instantiates to a factory
    ``(n_regions, n_batch) -> Coupling`` (:func:`brainfit.coupling.create`, partially applied).

    The group has no files: :func:`register_configs` stores one node per registered coupling,
    named after it, with that coupling's parameters at their declared defaults, so the defaults
    are written once (in :mod:`brainfit.coupling`), ``coupling=sigmoidal
    coupling.params.cmin=0`` works and a misspelt parameter fails when the config is composed.

    Args:
        name: registered coupling (``brainfit.coupling.available()``).
        params: ``{name: value | {value, scope, trainable, low, high}}`` for the coupling's own
            parameters (G, the global strength, is the network's: ``model.params.G``).
    """

    _target_: str = "brainfit.coupling.create"
    _partial_: bool = True
    name: str = "diffusive"
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def defaults(cls, name: str) -> CouplingSpec:
        """The node of coupling ``name``: its parameters at their declared defaults."""
        specs = coupling_lib.COUPLINGS.get(name).param_specs
        return cls(name=name, params={k: spec.default for k, spec in specs.items()})


def register_configs() -> None:
    """Store the schemas and generated nodes in Hydra's ConfigStore (call before composing).

    - ``model_schema`` and ``trainer_schema``: a config file of the ``model`` and ``trainer``
      groups lists ``/model_schema@_here_`` (or ``/trainer_schema@_here_``) first in its
      defaults, so that its keys (and command-line overrides) are checked against the dataclass
      fields and types. They are stored outside the groups, so that they are not listed among
      the groups' options.
    - ``coupling/<name>`` for every registered coupling (:meth:`CouplingSpec.defaults`), the
      options of the ``coupling`` group (``coupling=tanh``; a model config may pick one with
      ``override /coupling@_global_.coupling: linear``).
    """
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="trainer_schema", node=TrainerConfig)
    cs.store(name="model_schema", node=NetworkSpec)
    for name in coupling_lib.available():
        cs.store(group="coupling", name=name, node=CouplingSpec.defaults(name))
