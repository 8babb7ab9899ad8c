"""Objects from a resolved config (a dict or DictConfig with the groups of ``conf/train.yaml``)."""

from __future__ import annotations

from typing import Any, NamedTuple

import torch


def _cfg(cfg: Any):
    from omegaconf import DictConfig, OmegaConf

    return cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)


def instantiate(node: Any, **kwargs: Any) -> Any:
    from hydra.utils import instantiate as hydra_instantiate

    return hydra_instantiate(node, **kwargs)


class Components(NamedTuple):
    """The model side of a fit: what :func:`brainfit.fit.spec.build_simulator` builds from."""

    spec: Any  #: the network model (:class:`~brainfit.fit.spec.NetworkSpec`)
    coupling: Any  #: a coupling factory ``(n_regions, n_batch) -> Coupling``
    bold: Any  #: a BOLD-head factory ``(n_regions, n_batch) -> BalloonWindkessel``


def components_from_config(cfg: Any) -> Components:
    """The network model, coupling and BOLD head of the ``model``, ``coupling`` and ``bold``
    groups."""
    cfg = _cfg(cfg)
    return Components(instantiate(cfg.model), instantiate(cfg.coupling), instantiate(cfg.bold))


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device=cuda was asked for but no CUDA device is available; use "
                         "device=cpu or device=auto")
    return dev


def resolve_dtype(name: str) -> torch.dtype:
    dtypes = {"float32": torch.float32, "float64": torch.float64}
    if name not in dtypes:
        raise ValueError(f"dtype must be one of {sorted(dtypes)}, got {name!r}")
    return dtypes[name]
