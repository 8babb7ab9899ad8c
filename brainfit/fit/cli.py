"""The scripts' command line: bad input ends in one clear line, bugs in a traceback.

``scripts/train.py``, ``simulate.py`` and ``evaluate.py`` run their Hydra app through
:func:`run_app`. A user error (an unknown or misspelt key, a value of the wrong type or out of
range, a missing file, bad data) ends the process with ``error: <what is wrong and how to fix it>``
on stderr and exit code :data:`USAGE_ERROR` (2); a fit that diverged beyond recovery with
:data:`RUN_FAILED` (1). Anything else is a bug and keeps its traceback. ``HYDRA_FULL_ERROR=1``
shows the traceback of every error.

The checks that need the composed config (:func:`check_train_config`,
:func:`check_simulate_config`) run first in the scripts' task functions, before anything is
loaded or written, so that a bad value never leaves a half-made run directory behind.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import math
import os
import re
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

#: exit code of a user error (bad config, bad data): the shell's convention for usage errors
USAGE_ERROR = 2
#: exit code of a run that started but could not finish (a fit that diverged beyond recovery)
RUN_FAILED = 1
#: config keys every ``_target_`` node may hold besides the target's arguments
_HYDRA_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}
#: integer arguments of LR schedulers that count epochs (0 divides by zero on the first step)
_PERIODS = ("step_size", "T_max", "T_0", "T_mult", "total_iters")

_PACKAGE = Path(__file__).resolve().parents[1]
#: what brainfit raises to reject input or a setting (a user error when brainfit raised it itself)
_REJECTIONS = (ValueError, TypeError, KeyError, OSError, MemoryError, RuntimeError)


class UsageError(ValueError):
    """A config value or combination that cannot run; the message names the key and the fix."""


def run_app(app: Callable[[], Any]) -> Any:
    """Run a ``@hydra.main`` app, turning user errors into one line and an exit code.

    Catches what goes wrong before the task function runs (composing the config: an unknown key
    or option, a value of the wrong type); :func:`user_errors` catches what goes wrong inside it.

    Args:
        app: the decorated ``main`` of a script (it reads ``sys.argv``).

    Returns:
        What the app returns.

    Raises:
        SystemExit: :data:`USAGE_ERROR` for a user error, :data:`RUN_FAILED` for a diverged fit
            (after writing ``error: ...`` to stderr).
    """
    global _verbose
    verbose, _verbose = _verbose, os.environ.get("HYDRA_FULL_ERROR", "") not in ("", "0")
    previous = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"  # Hydra re-raises, so the error reaches us whole
    try:
        return app()
    except Exception as err:
        _exit_if_explained(err)
        raise
    finally:
        _verbose = verbose
        if previous is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = previous


def user_errors(task: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Decorate a script's task function (below ``@hydra.main``): a user error raised inside it
    ends the process with one ``error: ...`` line (see :func:`run_app`).

    In a multirun the error is left to Hydra, which records the job as failed.
    """

    @functools.wraps(task)
    def wrapped(cfg: Any) -> Any:
        try:
            return task(cfg)
        except Exception as err:
            if not _multirun():
                _exit_if_explained(err)
            raise

    return wrapped


#: whether every error keeps its traceback (``HYDRA_FULL_ERROR=1`` when :func:`run_app` started)
_verbose = False


def _exit_if_explained(err: BaseException) -> None:
    explained = None if _verbose else explain(err)
    if explained is not None:
        message, code = explained
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(code) from None


def _multirun() -> bool:
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        return HydraConfig.get().mode == RunMode.MULTIRUN
    except Exception:  # not under Hydra
        return False


def explain(err: BaseException) -> tuple[str, int] | None:
    """``(message, exit code)`` for a user error, or None for a bug (keep the traceback).

    User errors: Hydra's and OmegaConf's config errors, and the :data:`_REJECTIONS` that a
    ``raise`` statement of brainfit raises to reject input (not those raised inside a library it
    calls, or by a builtin, which mean a bug); a diverged fit.
    """
    from hydra.errors import (
        ConfigCompositionException,
        HydraException,
        InstantiationException,
        MissingConfigException,
        OverrideParseException,
    )
    from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException

    from brainfit.runtime import FitDiverged, SimulationDiverged

    if isinstance(err, (FitDiverged, SimulationDiverged)):
        return _one_line(err), RUN_FAILED
    if isinstance(err, InstantiationException):
        cause = err.__cause__
        if cause is not None and "Error in call to target" in str(err):
            return explain(cause)  # the target's own error; a bug in it stays a bug
        return _strip_hydra_hint(str(err)), USAGE_ERROR
    if isinstance(err, MissingConfigException):
        return _missing_option(err), USAGE_ERROR
    if isinstance(err, OverrideParseException):
        return _parse_error(str(err)), USAGE_ERROR
    if isinstance(err, ConfigCompositionException) and isinstance(
            err.__cause__, (ConfigKeyError, ConfigAttributeError)):
        return unknown_key_message(err.__cause__, _override_value(str(err))), USAGE_ERROR
    if isinstance(err, ConfigCompositionException) and err.__cause__ is not None:
        return _omegaconf_message(err.__cause__), USAGE_ERROR
    if isinstance(err, OmegaConfBaseException):
        return _omegaconf_message(err), USAGE_ERROR
    if isinstance(err, HydraException):
        return _strip_hydra_hint(str(err)), USAGE_ERROR
    if isinstance(err, UsageError) or type(err).__name__ == "DataError":
        return _one_line(err), USAGE_ERROR
    if isinstance(err, _REJECTIONS) and _raised_by_us(err):
        return _one_line(err), USAGE_ERROR
    return None


# -- messages --------------------------------------------------------------------------------------
def unknown_key_message(err: Any, value: str | None = None) -> str:
    """What to write for a key the config does not have: the closest valid keys, or how to add
    one that the node's ``_target_`` takes.

    Args:
        err: OmegaConf's ``ConfigKeyError``/``ConfigAttributeError`` (``key``, ``full_key``,
            ``parent_node``).
        value: the value of the override, when known.
    """
    key, full_key = str(err.key), str(err.full_key)
    prefix = full_key[: -len(key)]  # "trainer." (or "" at the top level)
    node = err.parent_node
    keys = [str(k) for k in node.keys()] if node is not None else []
    keys = [k for k in keys if k != "hydra" and k not in _HYDRA_KEYS]
    target = _safe_get(node, "_target_")
    takes = _target_arguments(target)
    shown = f"={value}" if value is not None else "=<value>"
    if takes is not None and key in takes and key not in keys:
        return (f"{full_key} is not set in the config, but {target} takes it: add it with "
                f"+{full_key}{shown}")
    where = f"{prefix[:-1]} ({target})" if target else (prefix[:-1] or "the config")
    known = sorted((set(keys) | set(takes or ())) - _HYDRA_KEYS - _supplied(node, target))
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"; did you mean {prefix}{close[0]}{shown}?" if close else ""
    return f"unknown key {full_key}{hint} ({where} has {', '.join(known)})"


def _missing_option(err: Any) -> str:
    """An unknown option of a config group, with the closest ones."""
    missing = str(getattr(err, "missing_cfg_file", "") or "")
    options = list(getattr(err, "options", None) or [])
    if not missing or "/" not in missing or not options:
        return _strip_hydra_hint(str(err))
    group, option = missing.rsplit("/", 1)
    close = difflib.get_close_matches(option, options, n=1, cutoff=0.5)
    hint = f"; did you mean {group}={close[0]}?" if close else ""
    return f"{group} has no option {option!r}{hint} (the options are {', '.join(options)})"


def _omegaconf_message(err: Any) -> str:
    """An OmegaConf error (a value of the wrong type, a missing mandatory value) in one line."""
    from omegaconf.errors import MissingMandatoryValue

    full_key = getattr(err, "full_key", None)
    if isinstance(err, MissingMandatoryValue) and full_key:
        return f"{full_key} is required: add {full_key}=<value> to the command line"
    msg = str(getattr(err, "msg", None) or err).split("\n")[0].strip()
    if not full_key:
        return msg
    current = _safe_get(getattr(err, "parent_node", None), str(getattr(err, "key", "")))
    example = f"; e.g. {full_key}={current}" if current is not None else ""
    return f"{full_key}: {msg}{example}"


def _parse_error(text: str) -> str:
    m = re.search(r"Error parsing override '(.*?)'\n(.*?)\n", text + "\n")
    if not m:
        return _strip_hydra_hint(text)
    return (f"cannot read the override {m.group(1)!r} ({m.group(2)}): write key=value (a value "
            f"with spaces or special characters in quotes: key='a b')")


def _override_value(text: str) -> str | None:
    """The value of an override in Hydra's "To append to your config use +key=value" hint."""
    m = re.search(r"use \+[^=\s]+=(.*)$", text, flags=re.MULTILINE)
    return m.group(1).strip() if m else None


def _strip_hydra_hint(text: str) -> str:
    text = re.sub(r",? ?set env var HYDRA_FULL_ERROR=1 to see chained exception\.?", "", text)
    return "; ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def _one_line(err: BaseException) -> str:
    text = err.args[0] if len(err.args) == 1 and isinstance(err.args[0], str) else str(err)
    return "; ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def _raised_by_us(err: BaseException) -> bool:
    """Whether brainfit raised ``err`` itself: its innermost frame is a ``raise`` statement in
    the package (not a call into a library or a builtin, such as ``int("abc")``)."""
    frames = traceback.extract_tb(err.__traceback__)
    if not frames:
        return False
    last = frames[-1]
    return (Path(last.filename).resolve().is_relative_to(_PACKAGE)
            and (last.line or "").lstrip().startswith("raise"))


def _safe_get(node: Any, key: str) -> Any:
    try:
        return node.get(key) if node is not None else None
    except Exception:  # an interpolation that does not resolve, a struct flag
        return None


def _target_arguments(target: Any) -> set[str] | None:
    """The keyword arguments ``target`` takes, or None (unknown, or it takes ``**kwargs``)."""
    params = _signature(target)
    if params is None or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    return set(params)


def _supplied(node: Any, target: Any) -> set[str]:
    """The argument the trainer passes to a ``_partial_`` target (an optimiser's ``params``)."""
    params = _signature(target)
    if not params or not _safe_get(node, "_partial_"):
        return set()
    return {next(iter(params))}


def _signature(target: Any, path: str | None = None) -> dict[str, inspect.Parameter] | None:
    """The parameters of ``target`` (a dotted name), or None when it has no signature or
    (without ``path``) cannot be imported.

    Raises:
        UsageError: with ``path`` (the node's key), a target that cannot be imported.
    """
    if not isinstance(target, str):
        return None
    from hydra.utils import get_object

    try:
        obj = get_object(target)
    except Exception as err:
        if path is None:
            return None
        cause = err.__cause__ or err
        raise UsageError(f"{path}._target_={target} cannot be imported ({type(cause).__name__}: "
                         f"{_one_line(cause)}); check its spelling") from None
    try:
        return dict(inspect.signature(obj).parameters)
    except (TypeError, ValueError):  # a builtin without a signature
        return None


# -- checks of a composed config -------------------------------------------------------------------
def check_train_config(cfg: Any) -> None:
    """Reject what ``scripts/train.py`` cannot run, before anything is loaded or written.

    Checks ``seed``, ``threads``, ``device``, ``dtype``; every ``_target_`` node's keys (one
    added with ``+key=`` must be an argument of its target) and numeric arguments; the optimiser
    and scheduler, built and stepped once on a dummy parameter; ``data.tr`` where the data need
    it.

    Raises:
        UsageError: the key, the value and the fix.
    """
    _check_int(cfg.get("seed"), "seed", "e.g. seed=0")
    threads = cfg.get("threads")
    if threads is not None:
        _check_int(threads, "threads", "e.g. threads=1, or threads=null for torch's default")
        if threads < 1:
            raise UsageError(f"threads must be >= 1 (or null for torch's default), got {threads}")
    if cfg.get("dtype") not in ("float32", "float64"):
        raise UsageError(f"dtype must be float32 or float64, got {cfg.get('dtype')!r}")
    _check_device(cfg.get("device"))
    for path, node in _target_nodes(cfg):
        check_target_node(node, path)
    _check_data(cfg.get("data"))
    _check_optimiser(cfg.get("optim"), cfg.get("scheduler"))


def check_simulate_config(cfg: Any) -> None:
    """Reject what ``scripts/simulate.py`` cannot run, before anything is loaded or written.

    Raises:
        UsageError: a missing run or checkpoint, a seed that is not an integer, a length or step
            that is not a positive number.
    """
    _check_int(cfg.get("seed"), "seed", "e.g. seed=0")
    for key, unit in (("seconds", "s of BOLD"), ("dt", "ms")):
        value = cfg.get(key)
        if value is not None:
            _check_positive(value, key, f"{key}=<{unit}>, or {key}=null for the run's own")
    run = Path(str(cfg.run))
    if not run.is_dir():
        raise UsageError(f"run={run} is not a directory; give the output directory of a fit "
                         f"(it holds checkpoints/)")
    name = cfg.get("checkpoint")
    ckpt = run / "checkpoints" / ("last.pt" if name is None else str(name))
    if name is None and (run / "checkpoints" / "best.pt").is_file():
        return  # the run's best.pt, the checkpoint it hands over
    if not ckpt.is_file():
        have = sorted(p.name for p in (run / "checkpoints").glob("*.pt"))
        raise UsageError(f"no checkpoint {ckpt}; "
                         + (f"this run has {', '.join(have)} (checkpoint=<name>)" if have else
                            "is run= the output directory of a fit that saved one?"))


def check_target_node(node: Any, path: str) -> None:
    """Keys and numeric values of one ``_target_`` node against its target's signature.

    Raises:
        UsageError: a key the target does not take (with the closest it does), a text or
            missing value where it takes a number, a fraction where it takes an integer.
    """
    target = _safe_get(node, "_target_")
    params = _signature(target, path)
    if params is None:
        return
    takes = _target_arguments(target)
    for key in node.keys():
        key = str(key)
        if key in _HYDRA_KEYS:
            continue
        if takes is not None and key not in takes:
            close = difflib.get_close_matches(key, sorted(takes), n=1, cutoff=0.6)
            hint = f"; did you mean {path}.{close[0]}?" if close else ""
            offered = sorted(takes - _HYDRA_KEYS - _supplied(node, target))
            raise UsageError(f"{target} ({path}) takes no argument {key!r}{hint} (it takes "
                             f"{', '.join(offered)})")
        if key in params:
            _check_number(_safe_get(node, key), params[key], f"{path}.{key}")


def _target_nodes(cfg: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every mapping with a ``_target_`` in ``cfg`` (outside ``hydra``), with its dotted path."""
    from omegaconf import DictConfig

    for key in cfg.keys():
        if key == "hydra":
            continue
        try:
            node = cfg._get_node(key)
        except Exception:
            continue
        if isinstance(node, DictConfig) and not node._is_missing() and not node._is_none():
            here = f"{path}{key}"
            if "_target_" in node:
                yield here, node
            yield from _target_nodes(node, f"{here}.")


def _numeric_kind(annotation: Any) -> tuple[str, bool] | None:
    """``("int" | "float", None allowed)`` for an annotation that takes only numbers."""
    if annotation is inspect.Parameter.empty:
        return None
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    parts = {p.strip().replace("typing.", "") for p in text.split("|")}
    optional = bool(parts & {"None", "NoneType"})
    parts -= {"None", "NoneType", "torch.Tensor", "Tensor"}
    if not parts or not parts <= {"int", "float"}:
        return None
    return ("int" if parts == {"int"} else "float"), optional


def _check_number(value: Any, param: inspect.Parameter, key: str) -> None:
    kind = _numeric_kind(param.annotation)
    if kind is None:
        return
    kind, optional = kind
    if value is None:
        if not optional and param.default is not None:
            raise UsageError(f"{key} needs a number, got null; e.g. {key}={param.default}")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        example = param.default if param.default is not inspect.Parameter.empty else 1
        raise UsageError(f"{key} must be a number, got {value!r}; e.g. {key}={example}")
    if kind == "int" and isinstance(value, float) and not float(value).is_integer():
        raise UsageError(f"{key} must be a whole number, got {value}")
    if not math.isfinite(value):
        raise UsageError(f"{key} must be finite, got {value}")


def _check_int(value: Any, key: str, example: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise UsageError(f"{key} must be an integer, got {value!r}; {example}")


def _check_device(value: Any) -> None:
    import torch

    try:
        ok = value == "auto" or isinstance(torch.device(value), torch.device)
    except (RuntimeError, TypeError):
        ok = False
    if not ok:
        raise UsageError(f"device must be auto, cpu or cuda (or cuda:<index>), got {value!r}")


def _check_positive(value: Any, key: str, fix: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise UsageError(f"{key} must be a number, got {value!r}; {fix}")
    if not (math.isfinite(value) and value > 0):
        raise UsageError(f"{key} must be > 0, got {value}; {fix}")


def _check_data(data: Any) -> None:
    """The TR the plain-array loaders cannot read from the files."""
    if data is None:
        return
    target = str(_safe_get(data, "_target_") or "")
    if (target.endswith(("load_arrays", "from_targets")) and "tr" in data
            and _safe_get(data, "bold") is not None and _safe_get(data, "tr") is None):
        raise UsageError("data.tr is required with data.bold: the repetition time of the BOLD "
                         "in seconds, e.g. data.tr=2.0 (data.tr=[2.0,0.72] for one per subject)")


def _check_optimiser(optim: Any, scheduler: Any) -> None:
    """Build the optimiser (and scheduler) on a dummy parameter and step them twice."""
    if optim is None:
        raise UsageError("optim is required: e.g. optim=adam (conf/optim/)")
    if scheduler is not None:
        for key in _PERIODS:
            value = _safe_get(scheduler, key)
            if isinstance(value, int) and not isinstance(value, bool) and value < 1:
                raise UsageError(f"scheduler.{key} must be >= 1 (epochs), got {value}")
    import torch

    from brainfit.fit.build import instantiate

    param = torch.nn.Parameter(torch.zeros(1))
    what = "optim"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt = instantiate(optim)([param])
            what = "scheduler"
            sched = instantiate(scheduler)(opt) if scheduler is not None else None
            for _ in range(2):
                opt.step()
                if sched is not None:
                    sched.step()
    except Exception as err:
        err = err.__cause__ or err
        node = optim if what == "optim" else scheduler
        raise UsageError(f"{what} ({_safe_get(node, '_target_')}) rejects its settings: "
                         f"{type(err).__name__}: {_one_line(err)}; fix the {what}.* values") \
            from err
