"""What the figures of :mod:`brainfit.plotting` share: the figure size and style constants,
making and saving a figure, the checks of their arguments and the scores drawn in their titles.

Private: the figure modules import from here; the public names are re-exported by
:mod:`brainfit.plotting`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from brainfit import metrics

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: resolution of every saved figure, dots per inch
DPI = 120
#: most subjects drawn in a per-subject figure; the rest are left out (and the title says so)
MAX_SUBJECTS = 10
#: diverging colour map for correlation matrices, drawn on [-1, 1]
FC_CMAP = "RdBu_r"


# ----------------------------------------------------------------------------- figures


def _new_figure(width: float, height: float, layout: str | None = "constrained"):
    """A pyplot-free figure, by default with constrained layout (no backend, no global state).

    Raises:
        ImportError: matplotlib is not installed (it is an optional extra).
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError("brainfit.plotting draws with matplotlib, which is not installed: "
                          "pip install 'brainfit[plot]' (or pip install matplotlib)") from err

    return Figure(figsize=(width, height), dpi=DPI, layout=layout)


def _save(fig: Figure, path: str | os.PathLike | None) -> Path | Figure:
    """Write ``fig`` to ``path`` (PNG unless the suffix names another format) and return the
    path; with ``path`` None, return ``fig``."""
    if path is None:
        return fig
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = None if path.suffix else "png"
    fig.savefig(path, dpi=DPI, format=fmt, facecolor="white")
    return path


def _subject_colors(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# ----------------------------------------------------------------------------- argument checks


def _check_path(path: object) -> None:
    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike naming the PNG to write, or None to "
                        f"get the Figure back, got {type(path).__name__}")


def _array(x: object, name: str) -> np.ndarray:
    """``x`` as a float64 array, with a clear error for things that are not numbers."""
    if hasattr(x, "detach"):  # a torch tensor slipped in: accept it on the CPU
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be an array of numbers, got {type(x).__name__} that does "
                         f"not convert to float ({err})") from None
    return a


def _finite(a: np.ndarray, name: str) -> np.ndarray:
    if not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise ValueError(f"{name} has {bad} non-finite value(s) (NaN or inf); remove them or fix "
                         f"the computation that produced them")
    return a


def _subjects(empirical: object, simulated: object) -> list[Any]:
    """The common subject ids (order of ``empirical``): a TypeError when either is not a dict, a
    ValueError naming any mismatch."""
    for name, d in (("empirical", empirical), ("simulated", simulated)):
        if not isinstance(d, Mapping):
            raise TypeError(f"{name} must be a dict mapping subject id -> array, got "
                            f"{type(d).__name__}")
        if len(d) == 0:
            raise ValueError(f"{name} is empty; give at least one subject")
    missing = [k for k in empirical if k not in simulated]
    extra = [k for k in simulated if k not in empirical]
    if missing or extra:
        raise ValueError(f"empirical and simulated must have the same subject keys; missing from "
                         f"simulated: {missing}, missing from empirical: {extra}")
    return list(empirical)


def _optional_scores(scores: object, name: str) -> Mapping:
    if scores is None:
        return {}
    if not isinstance(scores, Mapping):
        raise TypeError(f"{name} must be a dict mapping subject id -> float, or None; got "
                        f"{type(scores).__name__}")
    return scores


def _score(scores: Mapping, key: Any, name: str) -> float | None:
    """The finite score given for ``key``, or None (missing or NaN: compute it here)."""
    if key not in scores or scores[key] is None:
        return None
    try:
        v = float(scores[key])
    except (TypeError, ValueError):
        raise ValueError(f"{name}[{key!r}] must be a number, got {scores[key]!r}") from None
    return v if math.isfinite(v) else None


def _lines(series: object, name: str) -> dict[str, np.ndarray]:
    """A dict label -> finite (T,) or (T, K) array; a bare array becomes one entry."""
    if not isinstance(series, Mapping):
        series = {"": series}
    if not series:
        raise ValueError(f"{name} is empty; give at least one series")
    out = {}
    for k, v in series.items():
        a = _finite(_array(v, f"{name}[{k!r}]"), f"{name}[{k!r}]")
        if a.ndim not in (1, 2) or a.shape[0] < 2:
            raise ValueError(f"{name}[{k!r}] must be (T,) or (T, K) with T >= 2 samples, got "
                             f"shape {a.shape}")
        out[str(k)] = a
    return out


def _time(t: object, n: int, name: str = "t") -> np.ndarray:
    a = _finite(_array(t, name), name)
    if a.shape != (n,):
        raise ValueError(f"{name} must have one time per sample, shape ({n},), got {a.shape}")
    return a


# ----------------------------------------------------------------------------- scores and titles


def _upper(m: np.ndarray) -> np.ndarray:
    return m[np.triu_indices(m.shape[0], k=1)]


def _fc_similarity(e: np.ndarray, s: np.ndarray) -> float:
    """:func:`brainfit.metrics.fc_similarity` of two FC matrices; NaN (drawn as "n/a") where r is
    undefined: a single region pair (N = 2) or a constant upper triangle."""
    ue, us = _upper(e), _upper(s)
    if ue.size < 2 or np.ptp(ue) == 0 or np.ptp(us) == 0:
        return float("nan")
    return float(metrics.fc_similarity(torch.as_tensor(e), torch.as_tensor(s)))


def _ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample KS distance, :func:`brainfit.metrics.ks_distance`."""
    return float(metrics.ks_distance(torch.as_tensor(a), torch.as_tensor(b)))


def _ks_distance_hist(values: np.ndarray, edges: np.ndarray, counts: np.ndarray) -> float:
    """One-sample KS distance against a histogram, :func:`brainfit.metrics.ks_distance_hist`."""
    return float(metrics.ks_distance_hist(torch.as_tensor(values), edges, counts))


def _cap_note(n_total: int, n_shown: int) -> str:
    return f" (first {n_shown} of {n_total} subjects shown)" if n_shown < n_total else ""


def _n_subjects(n: int) -> str:
    return f"{n} subject" + ("" if n == 1 else "s")


def _fmt(v: float) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.3f}"
