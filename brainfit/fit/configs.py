"""Resolved run configs (nested dicts, as a checkpoint stores them) flattened and compared.

Resuming names the settings that changed since the checkpoint (:func:`changed_settings`), refuses
a checkpoint of another model (:meth:`~brainfit.fit.outputs.RunOutputs.load_for_resume`), and the
processes of a distributed fit check that they were given one config
(:meth:`~brainfit.fit.distributed.ProcessGroup.check_same_config`): all compare
:func:`flat_config` s.
"""

from __future__ import annotations

from typing import Any


def flat_config(config: dict[str, Any], prefix: str = "",
                skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``, leaving out the top-level keys in ``skip``."""
    out: dict[str, Any] = {}
    for k, v in (config or {}).items():
        if not prefix and k in skip:
            continue
        if isinstance(v, dict) and v:
            out.update(flat_config(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def changed_settings(theirs: dict[str, Any], ours: dict[str, Any],
                     ignore: tuple[str, ...] = ()) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (their value, our value)}`` for every setting of two configs that differs
    (a key missing on one side reads as None), in key order, leaving out the keys in ``ignore``."""
    a, b = flat_config(theirs), flat_config(ours)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k) and k not in ignore}
