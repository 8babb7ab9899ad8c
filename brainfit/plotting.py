r"""Figures of a fit: empirical vs simulated FC and FCD, loss curves, fitted parameters, BOLD.

Every function takes NumPy arrays, Python lists or tensors and draws one figure. Given a ``path``
it writes the figure there as a PNG at :data:`DPI` dots per inch and returns ``path`` as a
:class:`~pathlib.Path`; with ``path=None`` it returns the :class:`~matplotlib.figure.Figure`
itself, which a notebook shows inline (it is the cell's last value) and ``fig.savefig`` writes.
Figures are built on :class:`matplotlib.figure.Figure` directly, never through ``pyplot``: no
backend is selected, no window opens, no global figure state is touched, so the functions are safe
in scripts, in notebooks and on headless cluster nodes. Missing parent directories of ``path`` are
created. matplotlib is imported when a figure is drawn, not when this module is.

What there is: a fit's figures (:func:`plot_fc_comparison`, :func:`plot_fcd_histograms`,
:func:`plot_loss_curves`, :func:`plot_parameters`, :func:`plot_baselines`,
:func:`plot_connectivity`), data and simulations (:func:`plot_bold`, :func:`plot_fc`,
:func:`plot_fcd`, :func:`plot_timeseries`) and dynamics (:func:`plot_phase_portrait`,
:func:`plot_spectrum`, :func:`plot_oscillator`, :func:`plot_bifurcation`). Regions are ordered
and labelled with ``labels`` (region names) and ``groups`` (a group per region, such as the
hemispheres :func:`hemispheres` reads from the names, or resting-state networks).

Conventions of the figures:

- Functional connectivity (FC, Pearson correlation of BOLD between regions, unitless) is drawn with
  the diverging colour map :data:`FC_CMAP` on fixed limits [-1, 1], so white means r = 0 and colours
  are comparable between panels, subjects and runs.
- Figures with one panel (or row) per subject show at most :data:`MAX_SUBJECTS` subjects, the first
  ones in the order given, and say so in the figure title when subjects were left out.
- The similarity of two FC matrices is the Pearson correlation of their upper triangles (diagonal
  excluded), the score used throughout the FC-fitting literature (e.g. Honey et al. 2009,
  PNAS 106:2035; Deco et al. 2013, J Neurosci 33:11239). The FCD distributions are compared with the
  Kolmogorov-Smirnov distance :math:`D = \sup_x |F_{emp}(x) - F_{sim}(x)|` (Hansen et al. 2015,
  NeuroImage 105:525). Scores not passed in are computed by the functions that score a fit,
  :func:`brainfit.metrics.fc_similarity`, :func:`brainfit.metrics.ks_distance` and
  :func:`brainfit.metrics.ks_distance_hist`.
- Bad input (mismatched subjects, wrong shapes, non-finite values) raises ``ValueError`` naming what
  was expected and what was received; an argument of the wrong kind raises ``TypeError``.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from brainfit import metrics

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DPI",
    "FC_CMAP",
    "MAX_SUBJECTS",
    "hemispheres",
    "plot_baselines",
    "plot_bifurcation",
    "plot_bold",
    "plot_connectivity",
    "plot_fc",
    "plot_fc_comparison",
    "plot_fcd",
    "plot_fcd_histograms",
    "plot_loss_curves",
    "plot_oscillator",
    "plot_parameters",
    "plot_phase_portrait",
    "plot_spectrum",
    "plot_timeseries",
    "region_order",
]

#: resolution of every saved figure, dots per inch
DPI = 120
#: most subjects drawn in a per-subject figure; the rest are left out (and the title says so)
MAX_SUBJECTS = 10
#: diverging colour map for correlation matrices, drawn on [-1, 1]
FC_CMAP = "RdBu_r"

#: FCD histograms use bins of this width (correlation units) on a grid aligned to [-1, 1]
_FCD_BIN = 1.0 / 30.0
#: history keys drawn in the optimiser panel of :func:`plot_loss_curves`
_OPTIMISER_KEYS = ("lr", "grad_norm")
#: history keys drawn in the loss panel of :func:`plot_loss_curves`
_LOSS_KEYS = ("loss", "eval/loss")

# figure geometry, inches (the docstrings state the resulting sizes)
# the FC figure is laid out by hand (fast for many rows): per row a title band, a square panel
# and a band for the x labels; x positions of the empirical, simulated, colour bar, scatter panels
_FC_WIDTH, _FC_ROW, _FC_HEAD = 11.75, 3.3, 0.5
_FC_PANEL, _FC_TITLE = 2.5, 0.35
_FC_X = {"empirical": 0.95, "simulated": 4.3, "cbar": 6.92, "scatter": 8.75}
_FC_CBAR_WIDTH = 0.15
_FCD_COL, _FCD_ROW, _FCD_HEAD = 3.4, 2.9, 0.7
_LOSS_WIDTH, _LOSS_PANEL, _LOSS_HEAD = 11.0, 3.2, 0.5
_PAR_WIDTH, _PAR_PANEL, _PAR_HEAD = 12.0, 2.6, 0.6
_PAR_TABLE_HEAD, _PAR_TABLE_ROW = 0.5, 0.24
_BOLD_SIZE = (11.0, 6.5)


# ----------------------------------------------------------------------------- helpers


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
    """The common subject ids (order of ``empirical``); a ValueError names any mismatch."""
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


def _cap_note(n_total: int, n_shown: int) -> str:
    return f" (first {n_shown} of {n_total} subjects shown)" if n_shown < n_total else ""


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


def _n_subjects(n: int) -> str:
    return f"{n} subject" + ("" if n == 1 else "s")


def _fmt(v: float) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.3f}"


def _subject_colors(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# ----------------------------------------------------------------------------- regions

#: name patterns of the two hemispheres: suffixes (``Precentral_L``), prefixes (``L_V1``,
#: ``lh.precentral``, ``Left-Thalamus``)
_HEMI_PATTERNS = {
    "left": (r"[_.\- ]L$", r"^L[_.\- ]", r"^lh[_.\-]", r"^left[_.\- ]", r"[_.\- ]left$"),
    "right": (r"[_.\- ]R$", r"^R[_.\- ]", r"^rh[_.\-]", r"^right[_.\- ]", r"[_.\- ]right$"),
}


def hemispheres(labels: Sequence[str]) -> list[str]:
    """The hemisphere of each region, read from its name.

    Recognises AAL-style suffixes (``Precentral_L``), prefixes (``L_V1``, ``lh.precentral``) and
    the words left/right, in any case. Pass the result as ``groups`` to order an FC matrix left
    hemisphere first.

    Args:
        labels: region names (N,).

    Returns:
        ``"left"``, ``"right"`` or ``"other"`` per region.

    Raises:
        TypeError: ``labels`` is not a sequence of strings.
    """
    import re

    if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
        raise TypeError(f"labels must be a list of region names, got {type(labels).__name__}")
    out = []
    for name in labels:
        side = "other"
        for hemi, patterns in _HEMI_PATTERNS.items():
            if any(re.search(p, str(name), flags=re.I) for p in patterns):
                side = hemi
                break
        out.append(side)
    return out


def region_order(groups: Sequence[str]) -> np.ndarray:
    """Region indices sorted by group, groups in order of first appearance, regions within a
    group in their given order (a stable sort).

    Args:
        groups: a group name per region (N,), e.g. :func:`hemispheres` or resting-state networks.

    Returns:
        the permutation (N,) of region indices.
    """
    first: dict[str, int] = {}
    for g in groups:
        first.setdefault(str(g), len(first))
    return np.argsort([first[str(g)] for g in groups], kind="stable")


def _regions(n: int, labels: Sequence[str] | None, groups: Sequence[str] | None
             ) -> tuple[np.ndarray, list[str] | None, list[str] | None]:
    """(order, labels, groups) checked against N regions; without groups, the order is given."""
    for name, x in (("labels", labels), ("groups", groups)):
        if x is None:
            continue
        if isinstance(x, (str, bytes)) or not isinstance(x, Sequence):
            raise TypeError(f"{name} must be a list with one entry per region, got "
                            f"{type(x).__name__}")
        if len(x) != n:
            raise ValueError(f"{name} has {len(x)} entries but the matrices have {n} regions; "
                             f"give one per region")
    order = region_order(groups) if groups is not None else np.arange(n)
    labs = None if labels is None else [str(labels[i]) for i in order]
    grps = None if groups is None else [str(groups[i]) for i in order]
    return order, labs, grps


def _region_ticks(ax, n: int, labels: list[str] | None, groups: list[str] | None,
                  max_labels: int = 120) -> None:
    """Name the regions of a matrix panel (already ordered): every region's name when there are
    at most ``max_labels``, else the group names at their centres; lines between groups."""
    if groups is not None:
        bounds = [i for i in range(1, n) if groups[i] != groups[i - 1]]
        for b in bounds:
            ax.axhline(b - 0.5, color="k", lw=0.8)
            ax.axvline(b - 0.5, color="k", lw=0.8)
    if labels is not None and n <= max_labels:
        size = float(np.clip(320.0 / n, 2.5, 8.0))
        ax.set_xticks(range(n), labels, rotation=90, fontsize=size)
        ax.set_yticks(range(n), labels, fontsize=size)
        ax.set_xlabel("region")
        ax.set_ylabel("region")
    elif groups is not None:
        starts = [0] + [i for i in range(1, n) if groups[i] != groups[i - 1]] + [n]
        centres = [(a + b - 1) / 2 for a, b in zip(starts[:-1], starts[1:])]
        names = [groups[a] for a in starts[:-1]]
        ax.set_xticks(centres, names, fontsize=8)
        ax.set_yticks(centres, names, fontsize=8, rotation=90, va="center")
        ax.set_xlabel("region (by group)")
        ax.set_ylabel("region (by group)")
    else:
        ax.set_xlabel("region (index)")
        ax.set_ylabel("region (index)")


# ----------------------------------------------------------------------------- FC


def plot_fc_comparison(empirical: dict[str, np.ndarray], simulated: dict[str, np.ndarray],
                       scores: dict[str, float] | None, path: str | os.PathLike | None,
                       labels: Sequence[str] | None = None,
                       groups: Sequence[str] | None = None) -> Path | Figure:
    """Empirical vs simulated functional connectivity, one row per subject.

    Each row (labelled with the subject id) shows the empirical FC matrix, the simulated one (both
    on the fixed colour limits [-1, 1] of :data:`FC_CMAP`, with one shared colour bar) and a
    scatter of the simulated against the empirical upper-triangle entries (diagonal excluded) with
    the identity line. The scatter's title gives the FC similarity r, the Pearson correlation of
    the two upper triangles (Honey et al. 2009, PNAS 106:2035). At most :data:`MAX_SUBJECTS` rows
    are drawn.

    The figure is 11.75 in wide and ``0.5 + 3.3 * rows`` in tall (at :data:`DPI` dots per inch).

    Args:
        empirical: subject id -> empirical FC (N, N), Pearson correlations (unitless).
        simulated: subject id -> simulated FC (N, N); the same subject ids as ``empirical``.
            N may differ between subjects but not between a subject's two matrices.
        scores: subject id -> FC similarity r shown in the titles (e.g. the held-out score of the
            fit), or None. Subjects missing from it, or with a NaN score, get r computed here from
            the matrices.
        path: where to write the PNG, or None to return the Figure.
        labels: region names (N,) or None. With at most 24 regions every region is named on the
            axes; with more, the axes name the ``groups``.
        groups: a group per region (N,), e.g. ``hemispheres(labels)`` or resting-state networks,
            or None. Given, the matrices are ordered by group (:func:`region_order`) with lines
            between groups. ``labels`` and ``groups`` need every subject to have N regions.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``empirical``/``simulated`` are not dicts, ``scores`` is neither a dict nor None.
        ValueError: the subject keys differ, a matrix is not square 2-D, the two matrices of a
            subject differ in shape, a matrix has non-finite entries, or ``labels``/``groups`` do
            not have one entry per region.
    """
    _check_path(path)
    keys = _subjects(empirical, simulated)
    scores = _optional_scores(scores, "scores")
    mats = []
    for k in keys:
        e = _array(empirical[k], f"empirical[{k!r}]")
        s = _array(simulated[k], f"simulated[{k!r}]")
        if e.ndim != 2 or e.shape[0] != e.shape[1] or e.shape[0] < 2:
            raise ValueError(f"empirical[{k!r}] must be a square FC matrix (N, N) with N >= 2, got "
                             f"shape {e.shape}")
        if s.shape != e.shape:
            raise ValueError(f"simulated[{k!r}] must have the shape of empirical[{k!r}] {e.shape}, "
                             f"got {s.shape}")
        _finite(e, f"empirical[{k!r}]")
        _finite(s, f"simulated[{k!r}]")
        given = _score(scores, k, "scores")
        r = given if given is not None else _fc_similarity(e, s)
        mats.append((k, e, s, r))

    shown = mats[:MAX_SUBJECTS]
    rows = len(shown)
    height = _FC_HEAD + _FC_ROW * rows
    fig = _new_figure(_FC_WIDTH, height, layout=None)

    def box(x: float, top: float, w: float, h: float):  # inches from the left and from the top
        return fig.add_axes((x / _FC_WIDTH, (height - top - h) / height, w / _FC_WIDTH, h / height))

    image = None
    for i, (k, e, s, r) in enumerate(shown):
        n = e.shape[0]
        order, labs, grps = _regions(n, labels, groups)
        top = _FC_HEAD + i * _FC_ROW + _FC_TITLE
        for what, m in (("empirical", e), ("simulated", s)):
            ax = box(_FC_X[what], top, _FC_PANEL, _FC_PANEL)
            image = ax.imshow(m[np.ix_(order, order)], cmap=FC_CMAP, vmin=-1.0, vmax=1.0,
                              interpolation="nearest")
            ax.set_title(f"{what} FC ({n} regions)", fontsize=10)
            _region_ticks(ax, n, labs, grps, max_labels=24)
            if what == "empirical":
                ax.set_ylabel(f"{k}\n{ax.get_ylabel()}", fontweight="bold")
        ax = box(_FC_X["scatter"], top, _FC_PANEL, _FC_PANEL)
        ue, us = _upper(e), _upper(s)
        many = ue.size > 500
        ax.scatter(ue, us, s=3 if many else 8, alpha=0.35 if many else 0.7, color="tab:blue",
                   edgecolors="none", label="region pairs")
        ax.plot([-1, 1], [-1, 1], color="0.3", lw=0.8, ls="--", label="identity")
        lo = max(-1.05, min(-0.2, float(ue.min()), float(us.min())) - 0.05)
        ax.set_xlim(lo, 1.05)
        ax.set_ylim(lo, 1.05)
        ax.grid(alpha=0.3)
        ax.set_title(f"{k}: r = {_fmt(r)}", fontsize=10)
        ax.set_xlabel("empirical FC (Pearson r)")
        ax.set_ylabel("simulated FC (Pearson r)")
        if i == 0:
            ax.legend(loc="upper left", fontsize=8, frameon=False)
    span = min(rows, 2)
    cax = box(_FC_X["cbar"], _FC_HEAD + _FC_TITLE, _FC_CBAR_WIDTH,
              _FC_PANEL + (span - 1) * _FC_ROW)
    cbar = fig.colorbar(image, cax=cax)
    cbar.set_label("FC, Pearson correlation r (unitless)")
    rs = [r for *_, r in mats if math.isfinite(r)]
    mean = f"; mean r = {np.mean(rs):.3f} over {_n_subjects(len(rs))}" if rs else ""
    fig.suptitle(f"Empirical vs simulated FC{_cap_note(len(mats), rows)}{mean}", fontsize=12,
                 y=1.0 - 0.12 / height, va="top")
    return _save(fig, path)


# ----------------------------------------------------------------------------- FCD


def _is_histogram(x: object) -> bool:
    return (isinstance(x, (tuple, list)) and len(x) == 2
            and all(np.ndim(_array(p, "histogram part")) == 1 for p in x))


def _fcd_histogram(x: object, name: str) -> tuple[np.ndarray, np.ndarray]:
    edges = _finite(_array(x[0], f"{name} edges"), f"{name} edges")
    counts = _finite(_array(x[1], f"{name} counts"), f"{name} counts")
    if edges.size < 2 or counts.size != edges.size - 1:
        raise ValueError(f"{name} given as a histogram must be (edges (E+1,), counts (E,)), got "
                         f"edges of length {edges.size} and counts of length {counts.size}")
    if np.any(np.diff(edges) <= 0):
        raise ValueError(f"{name} histogram edges must be strictly increasing")
    if np.any(counts < 0) or counts.sum() <= 0:
        raise ValueError(f"{name} histogram counts must be non-negative and not all zero")
    return edges, counts


def _fcd_values(x: object, name: str) -> np.ndarray:
    v = _array(x, name)
    if v.ndim != 1 or v.size < 1:
        hint = (" (this looks like an FCD matrix; pass its upper triangle, e.g. "
                "brainfit.metrics.fcd_values)" if v.ndim == 2 and v.shape[0] == v.shape[1] else "")
        raise ValueError(f"{name} must be a 1-D array of FCD values (correlations in [-1, 1]), got "
                         f"shape {v.shape}{hint}")
    return _finite(v, name)


def plot_fcd_histograms(empirical: dict[str, Any], simulated: dict[str, np.ndarray],
                        path: str | os.PathLike | None,
                        ks: dict[str, float] | None = None) -> Path | Figure:
    """Empirical vs simulated FCD distributions, one panel per subject.

    The functional connectivity dynamics (FCD) values are the correlations between the FC of
    sliding windows (Hansen et al. 2015, NeuroImage 105:525), unitless in [-1, 1]. Each panel
    overlays their probability densities (bins of width 1/30 on [-1, 1], values clipped to it; the
    x range, shared by all panels, spans the data) and gives the Kolmogorov-Smirnov distance in its
    title. At most :data:`MAX_SUBJECTS` panels, four per row.

    The figure is ``0.6 + 3.4 * cols`` in wide and ``0.7 + 2.9 * rows`` in tall, with
    ``cols = min(subjects, 4)`` and ``rows = ceil(subjects / cols)`` (subjects capped).

    Args:
        empirical: subject id -> FCD values (M,), or a precomputed histogram ``(edges (E+1,),
            counts (E,))`` (counts are masses per bin; they are normalised to a density).
        simulated: subject id -> simulated FCD values (M',); the same subject ids.
        path: where to write the PNG, or None to return the Figure.
        ks: subject id -> KS distance shown in the titles, or None. Subjects missing from it, or
            with a NaN value, get it computed here: the two-sample statistic for values, the
            one-sample statistic against the histogram's piecewise-linear CDF for a histogram.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``empirical``/``simulated`` are not dicts, ``ks`` is neither a dict nor None.
        ValueError: the subject keys differ, values are not 1-D or not finite, or a histogram has
            inconsistent lengths, non-increasing edges or negative counts.
    """
    _check_path(path)
    keys = _subjects(empirical, simulated)
    ks = _optional_scores(ks, "ks")
    data = []
    for k in keys:
        e = empirical[k]
        if _is_histogram(e):
            edges, counts = _fcd_histogram(e, f"empirical[{k!r}]")
            sim = _fcd_values(simulated[k], f"simulated[{k!r}]")
            d = _score(ks, k, "ks")
            d = d if d is not None else _ks_distance_hist(sim, edges, counts)
            data.append((k, (edges, counts), sim, d))
        else:
            emp = _fcd_values(e, f"empirical[{k!r}]")
            sim = _fcd_values(simulated[k], f"simulated[{k!r}]")
            d = _score(ks, k, "ks")
            d = d if d is not None else _ks_distance(emp, sim)
            data.append((k, emp, sim, d))

    shown = data[:MAX_SUBJECTS]
    # a common x range: where any drawn distribution has mass, padded, on the bin grid
    lows, highs = [], []
    for _, emp, sim, _ in shown:
        if isinstance(emp, tuple):
            edges, counts = emp
            nz = np.flatnonzero(counts)
            lows.append(edges[nz[0]])
            highs.append(edges[nz[-1] + 1])
        else:
            lows.append(emp.min())
            highs.append(emp.max())
        lows.append(sim.min())
        highs.append(sim.max())
    pad = 0.05
    lo = max(-1.0, float(min(lows)) - pad)
    hi = min(1.0, float(max(highs)) + pad)
    bins = np.linspace(-1.0, 1.0, int(round(2.0 / _FCD_BIN)) + 1)

    n = len(shown)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = _new_figure(0.6 + _FCD_COL * cols, _FCD_HEAD + _FCD_ROW * rows)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    for i, (k, emp, sim, d) in enumerate(shown):
        ax = axes[i // cols][i % cols]
        if isinstance(emp, tuple):
            edges, counts = emp
            dens = counts / counts.sum() / np.diff(edges)
            ax.stairs(dens, edges, fill=True, color="0.6", alpha=0.6,
                      label="empirical (histogram)")
        else:
            ax.hist(np.clip(emp, -1.0, 1.0), bins=bins, density=True, color="0.6", alpha=0.6,
                    label=f"empirical (n = {emp.size})")
        ax.hist(np.clip(sim, -1.0, 1.0), bins=bins, density=True, histtype="step",
                color="tab:red", lw=1.5, label=f"simulated (n = {sim.size})")
        ax.set_xlim(lo, hi)
        ax.set_title(f"{k}: KS = {_fmt(d)}", fontsize=10)
        ax.set_xlabel("FCD value (Pearson r)")
        if i % cols == 0:
            ax.set_ylabel("probability density")
        ax.tick_params(labelbottom=True)
        ax.legend(fontsize=7, frameon=False, loc="upper left")
        ax.grid(alpha=0.3)
    for j in range(n, rows * cols):
        axes[j // cols][j % cols].set_visible(False)
    ds = [d for *_, d in data if math.isfinite(d)]
    mean = f"; mean KS = {np.mean(ds):.3f} over {_n_subjects(len(ds))}" if ds else ""
    fig.suptitle(f"FCD distributions, empirical vs simulated{_cap_note(len(data), n)}{mean}",
                 fontsize=12)
    return _save(fig, path)


# ----------------------------------------------------------------------------- loss curves


def _history_series(history: Sequence[Mapping]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """key -> (epochs, values) at the rows where the key has a finite number, in key order."""
    series: dict[str, tuple[list, list]] = {}
    for i, row in enumerate(history):
        if not isinstance(row, Mapping):
            raise TypeError(f"history[{i}] must be a dict of numbers, got {type(row).__name__}")
        if "epoch" not in row:
            raise ValueError(f"history[{i}] has no 'epoch' key (keys: {sorted(map(str, row))}); "
                             f"every row needs the epoch it was recorded at")
        try:
            epoch = float(row["epoch"])
        except (TypeError, ValueError):
            raise ValueError(f"history[{i}]['epoch'] must be a number, got "
                             f"{row['epoch']!r}") from None
        for key, v in row.items():
            if key == "epoch" or isinstance(v, (bool, np.bool_)):
                continue
            if not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
                continue  # strings, None, NaN: nothing to draw at this epoch
            xs, ys = series.setdefault(str(key), ([], []))
            xs.append(epoch)
            ys.append(float(v))
    return {k: (np.asarray(x), np.asarray(y)) for k, (x, y) in series.items()}


def _draw_series(ax, series: dict, keys: list[str], log_if_positive: bool) -> None:
    import matplotlib

    cmap = matplotlib.colormaps["tab10" if len(keys) <= 10 else "tab20"]
    for j, key in enumerate(keys):
        x, y = series[key]
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        if key.startswith("eval/"):
            ax.plot(x, y, ls="--", marker="o", ms=4, lw=1.2, color=cmap(j % cmap.N), label=key)
        else:
            ax.plot(x, y, lw=1.4, color=cmap(j % cmap.N), label=key,
                    marker="." if x.size < 30 else None)
    if log_if_positive and all(np.all(series[k][1] > 0) for k in keys):
        ax.set_yscale("log")
        values = np.concatenate([series[k][1] for k in keys])
        if np.log10(values.max() / values.min()) < 0.5:
            # a narrow range on a log axis: plain numbers read better than 9.1 x 10^-1
            from matplotlib.ticker import FuncFormatter

            plain = FuncFormatter(lambda v, _: f"{v:.3g}")
            ax.yaxis.set_major_formatter(plain)
            ax.yaxis.set_minor_formatter(plain)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def plot_loss_curves(history: list[dict[str, float]],
                     path: str | os.PathLike | None) -> Path | Figure:
    """Training loss and metrics per epoch.

    Panels, each only when it has something to show: the training loss (``loss``, and
    ``eval/loss`` if recorded; logarithmic y axis when every value is positive); the metric series
    (every other numeric key: loss terms such as ``fc_corr`` or ``fcd``, similarities such as
    ``fc_similarity``, held-out ``eval/...`` scores); the titles say which is which: training
    scores are measured on the part of each session the fit is fitted to, ``eval/`` scores on the
    held-out part it never sees (the scores to report); the optimiser diagnostics ``lr`` and
    ``grad_norm`` (log y when positive). Training series are solid lines; ``eval/`` series are
    dashed with markers and drawn only at the epochs where they were recorded. Non-numeric values
    and NaN are skipped. An empty history gives a figure that says so, so a run with no epochs still
    leaves its figure.

    The figure is 11 in wide and ``0.5 + 3.2 * panels`` in tall (one panel when the history is
    empty).

    Args:
        history: one dict per logged epoch, each with ``"epoch"`` and any numeric keys.
        path: where to write the PNG, or None to return the Figure.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``history`` is not a list of dicts.
        ValueError: a row has no numeric ``"epoch"``, or no row has any other numeric value.
    """
    _check_path(path)
    if isinstance(history, (str, bytes, Mapping)) or not isinstance(history, Sequence):
        raise TypeError(f"history must be a list of dicts (one per epoch), got "
                        f"{type(history).__name__}")
    series = _history_series(history)
    if history and not series:
        raise ValueError("history has no numeric values besides 'epoch'; nothing to plot")
    loss_keys = [k for k in _LOSS_KEYS if k in series]
    opt_keys = [k for k in _OPTIMISER_KEYS if k in series]
    metric_keys = [k for k in series if k not in loss_keys and k not in opt_keys]
    panels = [(title, keys, log) for title, keys, log in (
        ("training loss: on the fitted (training) part of each session", loss_keys, True),
        ("scores: solid = training part (what the fit sees); dashed eval/ = held-out part "
         "(never fitted: the honest score)", metric_keys, False),
        ("optimiser: learning rate and gradient norm", opt_keys, True),
    ) if keys]

    fig = _new_figure(_LOSS_WIDTH, _LOSS_HEAD + _LOSS_PANEL * max(1, len(panels)))
    if not panels:
        ax = fig.subplots()
        ax.text(0.5, 0.5, "no training epochs recorded", ha="center", va="center",
                transform=ax.transAxes, fontsize=14)
        ax.set_xlabel("epoch")
        ax.set_yticks([])
        fig.suptitle("Loss curves")
        return _save(fig, path)
    axes = fig.subplots(len(panels), 1, squeeze=False, sharex=True)[:, 0]
    for ax, (title, keys, log) in zip(axes, panels):
        _draw_series(ax, series, keys, log)
        ax.set_title(title, fontsize=10)
        ax.tick_params(labelbottom=True)
        if keys is loss_keys:
            ax.set_ylabel("loss (unitless)" + (", log scale" if ax.get_yscale() == "log" else ""))
        elif keys is opt_keys:
            ax.set_ylabel("value" + (" (log scale)" if ax.get_yscale() == "log" else ""))
        else:
            ax.set_ylabel("value (unitless)")
    axes[-1].set_xlabel("epoch")
    n_epochs = len({float(r["epoch"]) for r in history})
    fig.suptitle(f"Training history ({n_epochs} epochs logged)", fontsize=12)
    return _save(fig, path)


# ----------------------------------------------------------------------------- parameters


def _region_key(region: object, i: int) -> int | str | None:
    """None for a non-regional row, else a region index (int) or name (str)."""
    if region is None:
        return None
    if isinstance(region, str):
        s = region.strip()
        if not s:
            return None
        return int(s) if s.lstrip("-").isdigit() else s  # "3" as read back from a CSV
    if isinstance(region, (bool, np.bool_)):
        raise ValueError(f"rows[{i}]['region'] must be a region index, a region name, None or "
                         f"'', got {region!r}")
    if isinstance(region, numbers.Integral):
        return int(region)
    if isinstance(region, numbers.Real):
        if math.isnan(float(region)):
            return None
        if float(region).is_integer():
            return int(region)
    raise ValueError(f"rows[{i}]['region'] must be a region index, a region name, None or '', got "
                     f"{region!r}")


def _optional_number(v: object, name: str) -> float | None:
    """A bound or regime value: None for None, "" or NaN (as a CSV gives them), else a float."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number or empty, got {v!r}") from None
    return None if math.isnan(x) else x


def _names(names: list[str]) -> str:
    """Parameter names for a title: those of a component (``bold.kappa``, ...) counted."""
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(n.split(".")[0] if "." in n else n, []).append(n)
    return ", ".join(v[0] if len(v) == 1 else f"{k}.* ({len(v)})" for k, v in groups.items())


def _bounds_note(lo: float | None, hi: float | None) -> str:
    if lo is None and hi is None:
        return ""
    return f" in [{'-inf' if lo is None else f'{lo:.3g}'}, {'inf' if hi is None else f'{hi:.3g}'}]"


def _bounds_and_regime(ax, name: str, lo: float | None, hi: float | None,
                       regime: float | None) -> None:
    """Grey dashed lines at a parameter's bounds, a red line where the model changes regime."""
    for v, what in ((lo, "lower"), (hi, "upper")):
        if v is not None:
            ax.axhline(v, color="0.5", ls="--", lw=1.0, label=f"{what} bound {name} = {v:.3g}")
    if regime is not None:
        ax.axhline(regime, color="tab:red", lw=1.2,
                   label=f"{name} = {regime:g}: the model changes regime")


def plot_parameters(rows: list[dict], path: str | os.PathLike | None,
                    labels: list[str] | None = None, fitted_only: bool = True,
                    bounds: Mapping[str, tuple[float | None, float | None]] | None = None,
                    regimes: Mapping[str, float] | None = None,
                    title: str = "") -> Path | Figure:
    """Fitted parameters per subject, in natural units, within their bounds.

    One panel per regional parameter (the rows with a region) shows its value per region, one line
    per subject (a single black line when all subjects share the values, as group-level parameters
    do), its bounds as grey dashed lines and, where the model changes regime at a value of the
    parameter (the Hopf bifurcation ``a = 0``: below it a noise-driven fixed point, above it a
    limit cycle), that value as a red line. The non-regional parameters (rows whose region is
    None, ``""`` or missing) go in a last panel as a table (parameters x subjects, the bounds in
    the row labels), since their units and scales differ. The unit of each parameter is in its
    axis label or table row. At most :data:`MAX_SUBJECTS` subjects.

    With ``fitted_only`` (the default) only the fitted parameters are drawn: those whose rows say
    ``trainable`` True (all, when no row says). The fixed ones are named in the title.

    The figure is 12 in wide and ``0.6 + 2.6 * regional + table`` in tall, where ``table`` is
    ``0.5 + 0.24 * (scalar parameters + 1)`` in when there are non-regional parameters, else 0;
    when region names are drawn, the figure grows by the room their rotated text needs.

    Args:
        rows: dicts with ``"subject"``, ``"parameter"``, ``"value"`` (a number) and optionally
            ``"region"`` (an index, a region name from ``labels``, or None/"" for a non-regional
            value), ``"unit"``, ``"trainable"`` (False, or ``"False"`` as read from a CSV, for a
            fixed parameter), ``"low"``/``"high"`` (its bounds) and ``"regime"`` (the value where
            the model changes regime); other keys are ignored. The rows of ``fitted_params.csv``
            and of :meth:`brainfit.FittedModel.param_table` fit as they are.
        path: where to write the PNG, or None to return the Figure.
        labels: region names (N,). Given, the x axis names the regions and a region may be given
            by index into ``labels`` or by name; without it, regions are indices (or names, placed
            in order of first appearance).
        fitted_only: leave out the parameters whose rows say they are not trainable (else they
            are drawn, marked "fixed").
        bounds: parameter -> (low, high), overriding the rows' ``low``/``high`` (None: unbounded).
        regimes: parameter -> the value where the model changes regime, overriding the rows'
            ``regime`` (e.g. ``{"a": 0.0}`` for rows read from a CSV).
        title: the figure title (default: "Fitted parameters, natural units"); rows of any
            regional quantity (a "subject" per condition) draw the same way.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``rows`` is not a list of dicts, ``labels`` not a list of strings.
        ValueError: no rows, a required key missing, a non-numeric value, a region not in
            ``labels`` (or out of its range), a parameter given with two different units, a
            (subject, parameter, region) given twice, or region indices mixed with names without
            ``labels``.
    """
    _check_path(path)
    if isinstance(rows, (str, bytes, Mapping)) or not isinstance(rows, Sequence):
        raise TypeError(f"rows must be a list of dicts, got {type(rows).__name__}")
    if len(rows) == 0:
        raise ValueError("rows is empty; give at least one parameter value")
    if labels is not None:
        if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence):
            raise TypeError(f"labels must be a list of region names or None, got "
                            f"{type(labels).__name__}")
        labels = [str(x) for x in labels]
    subjects: list[Any] = []
    units: dict[str, str] = {}
    fixed: set[str] = set()
    lows: dict[str, float] = {}
    highs: dict[str, float] = {}
    regime_at: dict[str, float] = {}
    regional: dict[str, dict[Any, dict[int | str, float]]] = {}
    scalar: dict[str, dict[Any, float]] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"rows[{i}] must be a dict, got {type(row).__name__}")
        missing = [k for k in ("subject", "parameter", "value") if k not in row]
        if missing:
            raise ValueError(f"rows[{i}] lacks key(s) {missing}; each row needs 'subject', "
                             f"'parameter', 'value' (and optionally 'region', 'unit')")
        subj, name = row["subject"], str(row["parameter"])
        try:
            value = float(row["value"])
        except (TypeError, ValueError):
            raise ValueError(f"rows[{i}]['value'] must be a number, got {row['value']!r}") from None
        if str(row.get("trainable", True)).strip().lower() in ("false", "0", "no"):
            fixed.add(name)
        for key, store in (("low", lows), ("high", highs), ("regime", regime_at)):
            v = _optional_number(row.get(key), f"rows[{i}][{key!r}]")
            if v is not None:
                store.setdefault(name, v)
        unit = str(row.get("unit") or "").strip()
        if unit:
            if units.get(name, unit) != unit:
                raise ValueError(f"parameter {name!r} is given in two units, {units[name]!r} and "
                                 f"{unit!r} (rows[{i}]); convert to one unit")
            units[name] = unit
        if subj not in subjects:
            subjects.append(subj)
        region = _region_key(row.get("region"), i)
        if region is None:
            per = scalar.setdefault(name, {})
            if subj in per:
                raise ValueError(f"rows[{i}]: parameter {name!r} of subject {subj!r} is given "
                                 f"twice; give one row per (subject, parameter, region)")
            per[subj] = value
        else:
            per = regional.setdefault(name, {}).setdefault(subj, {})
            if region in per:
                raise ValueError(f"rows[{i}]: parameter {name!r} of subject {subj!r} at region "
                                 f"{region!r} is given twice; give one row per (subject, "
                                 f"parameter, region)")
            per[region] = value

    for name, (lo, hi) in (bounds or {}).items():
        for store, v in ((lows, lo), (highs, hi)):
            store.pop(name, None)
            if v is not None:
                store[name] = float(v)
    regime_at.update({k: float(v) for k, v in (regimes or {}).items()})
    left_out: list[str] = []
    if fitted_only and len(fixed) < len(set(regional) | set(scalar)):
        left_out = [p for p in (*regional, *scalar) if p in fixed]
        regional = {p: v for p, v in regional.items() if p not in fixed}
        scalar = {p: v for p, v in scalar.items() if p not in fixed}

    # region -> x position, and the tick labels
    all_regions = [r for per_p in regional.values() for per_s in per_p.values() for r in per_s]
    ticklabels: list[str] | None = None
    if labels is not None:
        index = {lab: j for j, lab in enumerate(labels)}
        pos: dict[int | str, int] = {}
        for r in all_regions:
            if isinstance(r, int):
                if not 0 <= r < len(labels):
                    raise ValueError(f"region index {r} is out of range for {len(labels)} labels")
                pos[r] = r
            elif r in index:
                pos[r] = index[r]
            else:
                raise ValueError(f"region {r!r} is not one of the {len(labels)} labels given "
                                 f"(e.g. {labels[:3]}); pass the matching labels or region indices")
        ticklabels = labels
    elif all(isinstance(r, int) for r in all_regions):
        pos = {r: r for r in all_regions}
    elif all(isinstance(r, str) for r in all_regions):
        names = list(dict.fromkeys(all_regions))
        pos = {r: j for j, r in enumerate(names)}
        ticklabels = names
    else:
        raise ValueError("rows mix region indices and region names; pass labels= to place the "
                         "names, or use one kind")

    shown = subjects[:MAX_SUBJECTS]
    colors = dict(zip(shown, _subject_colors(len(shown))))
    reg_names = list(regional)
    reg_h = _PAR_PANEL * len(reg_names)
    tick_fontsize = 9.0
    if reg_names and ticklabels is not None:
        # room below the panels for the rotated region names
        tick_fontsize = float(np.clip(700.0 / max(len(ticklabels), 1), 4.0, 9.0))
        reg_h += 0.6 * tick_fontsize / 72.0 * max(len(t) for t in ticklabels)
    table_h = _PAR_TABLE_HEAD + _PAR_TABLE_ROW * (len(scalar) + 1) if scalar else 0.0
    fig = _new_figure(_PAR_WIDTH, _PAR_HEAD + reg_h + table_h)
    # separate sub-figures, so the table's row labels do not push the panels' margins
    parts = [h for h in (reg_h, table_h) if h > 0]
    subfigs = list(np.atleast_1d(fig.subfigures(len(parts), 1, height_ratios=parts)))
    if reg_names:
        reg_axes = list(subfigs[0].subplots(len(reg_names), 1, squeeze=False, sharex=True)[:, 0])
        subject_legend = False  # the first panel with one line per subject carries the legend
        for ax, name in zip(reg_axes, reg_names):
            per_subject = [regional[name].get(subj) for subj in shown]
            shared = len(shown) > 1 and all(p == per_subject[0] for p in per_subject)
            for subj, per in zip(shown, per_subject[:1] if shared else per_subject):
                if not per:
                    continue
                xs = np.array([pos[r] for r in per])
                ys = np.array(list(per.values()))
                order = np.argsort(xs)
                ax.plot(xs[order], ys[order], marker="o", ms=3, lw=1.0,
                        color="k" if shared else colors[subj],
                        label="all subjects (shared)" if shared else str(subj))
            _bounds_and_regime(ax, name, lows.get(name), highs.get(name), regime_at.get(name))
            unit = units.get(name, "")
            ax.set_ylabel(f"{name} [{unit}]" if unit else name)
            ax.set_title(f"{name}: regional values{' (fixed)' if name in fixed else ''}",
                         fontsize=10)
            ax.grid(alpha=0.3)
            if name in regime_at or name in lows or name in highs:
                ax.legend(fontsize=7, framealpha=0.8, loc="best")
            elif ax.get_lines() and (shared or not subject_legend):
                subject_legend = subject_legend or not shared
                ax.legend(title="subject", fontsize=8, title_fontsize=8, frameon=False,
                          loc="upper left", bbox_to_anchor=(1.01, 1.0))
        n_pos = len(ticklabels) if ticklabels is not None else max(pos.values()) + 1
        reg_axes[-1].set_xlim(-0.5, n_pos - 0.5)
        if ticklabels is not None:
            reg_axes[-1].set_xticks(range(len(ticklabels)))
            reg_axes[-1].set_xticklabels(ticklabels, rotation=90, fontsize=tick_fontsize)
            reg_axes[-1].set_xlabel("region")
        else:
            reg_axes[-1].set_xlabel("region (index)")
    if scalar:
        ax = subfigs[-1].subplots()
        ax.axis("off")
        names = list(scalar)
        cells = [[f"{scalar[p][s]:.4g}" if s in scalar[p] else "-" for s in shown] for p in names]
        row_labels = [(f"{p} [{units[p]}]" if units.get(p) else p)
                      + _bounds_note(lows.get(p), highs.get(p))
                      + (" (fixed)" if p in fixed else "") for p in names]
        table = ax.table(cellText=cells, rowLabels=row_labels,
                         colLabels=[str(s) for s in shown], loc="upper center",
                         cellLoc="center", colWidths=[min(0.14, 0.85 / len(shown))] * len(shown))
        table.auto_set_font_size(False)
        table.set_fontsize(9)
        ax.set_title("non-regional parameters (value per subject)", fontsize=10)
    note = f"\nnot fitted (held at their values): {_names(left_out)}" if left_out else ""
    fig.suptitle(f"{title or 'Fitted parameters, natural units'}"
                 f"{_cap_note(len(subjects), len(shown))}{note}",
                 fontsize=12 if not note else 11)
    return _save(fig, path)


# ----------------------------------------------------------------------------- BOLD


def plot_connectivity(structural: dict[str, np.ndarray], fitted: dict[str, np.ndarray],
                      path: str | os.PathLike | None) -> Path | Figure:
    """Structural vs fitted (effective) connectivity, one row per subject.

    Each row shows the structural weights, the fitted ones (both on the colour scale of the row's
    largest weight; ``W[i, j]`` is the connection from column j to row i) and a scatter of fitted
    against structural weights of the connections present in either, on log axes, with the
    identity line: points above it were strengthened by the fit, below it weakened. At most
    :data:`MAX_SUBJECTS` rows are drawn.

    Args:
        structural: subject id -> SC (N, N), non-negative.
        fitted: subject id -> fitted weights (N, N), the same subject ids.
        path: where to write the PNG, or None to return the Figure.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError, ValueError: not dicts, different subjects, shapes or non-finite or negative
            weights.
    """
    _check_path(path)
    keys = _subjects(structural, fitted)
    pairs = []
    for k in keys:
        a = _finite(_array(structural[k], f"structural[{k!r}]"), f"structural[{k!r}]")
        b = _finite(_array(fitted[k], f"fitted[{k!r}]"), f"fitted[{k!r}]")
        if a.ndim != 2 or a.shape[0] != a.shape[1] or b.shape != a.shape:
            raise ValueError(f"structural[{k!r}] and fitted[{k!r}] must be square matrices of one "
                             f"shape, got {a.shape} and {b.shape}")
        if (a < 0).any() or (b < 0).any():
            raise ValueError(f"connectivity of {k!r} has negative weights")
        pairs.append((k, a, b))
    shown = pairs[:MAX_SUBJECTS]
    fig = _new_figure(12.0, 0.6 + 3.4 * len(shown))
    axes = fig.subplots(len(shown), 3, squeeze=False)
    for row, (k, a, b) in zip(axes, shown):
        top = max(float(a.max()), float(b.max()), 1e-30)
        for ax, m, title in ((row[0], a, "structural"), (row[1], b, "fitted")):
            im = ax.imshow(m, cmap="viridis", vmin=0.0, vmax=top, interpolation="nearest")
            ax.set_title(f"{k}: {title}")
            ax.set_xlabel("from region j")
            ax.set_ylabel("to region i")
        fig.colorbar(im, ax=row[:2], shrink=0.8, label="weight")
        sel = ((a > 0) | (b > 0)) & ~np.eye(a.shape[0], dtype=bool)
        x, y = a[sel], b[sel]
        floor = max(float(np.min(np.concatenate([x[x > 0], y[y > 0]]), initial=top)) * 0.5, 1e-30)
        ax = row[2]
        ax.scatter(np.maximum(x, floor), np.maximum(y, floor), s=4, alpha=0.4, color="C0")
        ax.plot([floor, top], [floor, top], color="0.3", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("structural weight")
        ax.set_ylabel("fitted weight")
        r = np.corrcoef(np.log(np.maximum(x, floor)), np.log(np.maximum(y, floor)))[0, 1]
        ax.set_title(f"log-log r = {_fmt(r)}")
    fig.suptitle("Fitted vs structural connectivity" + _cap_note(len(pairs), len(shown)))
    return _save(fig, path)


def plot_baselines(subjects: Mapping[str, Mapping[str, float]], baselines: Mapping[str, str],
                   path: str | os.PathLike | None) -> Path | Figure:
    """What the fit is worth: each subject's held-out FC similarity beside the baselines.

    One column per subject (and their mean): the fit's held-out FC similarity (a filled dot) and
    each baseline that uses no model (open markers), e.g. the SC, log SC, leave-one-out group FC
    and the subject's own fitted-part FC (the ceiling;
    :data:`brainfit.fit.targets.BASELINES`). A fit worth having sits above the leave-one-out
    group FC.

    Args:
        subjects: subject id -> scores with ``fc_similarity`` and the baseline keys (as in
            ``metrics.json["held_out"]``).
        baselines: key -> label of the baselines drawn.
        path: where to write the PNG, or None to return the Figure.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``subjects`` is not a dict of dicts.
        ValueError: empty, or a subject without ``fc_similarity``.
    """
    _check_path(path)
    if not isinstance(subjects, Mapping) or not all(isinstance(v, Mapping)
                                                     for v in subjects.values()):
        raise TypeError("subjects must be a dict mapping subject id -> dict of scores")
    if not subjects:
        raise ValueError("subjects is empty; give at least one subject")
    for k, v in subjects.items():
        if "fc_similarity" not in v:
            raise ValueError(f"subjects[{k!r}] has no 'fc_similarity'")
    ids = list(subjects)
    mean = {}
    for key in ["fc_similarity", *baselines]:
        values = [float(subjects[k][key]) for k in ids if key in subjects[k]]
        mean[key] = float(np.mean(values)) if values else float("nan")
    cols = ids + (["mean"] if len(ids) > 1 else [])
    table = {**subjects, "mean": mean}
    fig = _new_figure(max(8.5, 3.5 + 0.7 * len(cols)), 4.5)
    ax = fig.subplots()
    xs = np.arange(len(cols))
    markers = ["s", "D", "^", "v", "<", ">"]
    for j, (key, label) in enumerate(baselines.items()):
        ys = [float(table[c].get(key, np.nan)) for c in cols]
        ax.scatter(xs, ys, marker=markers[j % len(markers)], facecolors="none",
                   edgecolors=f"C{j + 1}", s=45, label=label)
    ax.scatter(xs, [float(table[c]["fc_similarity"]) for c in cols], color="C0", s=60,
               zorder=3, label="fitted model (held-out FC similarity)")
    ax.set_xticks(xs, cols, rotation=45, ha="right")
    ax.set_ylabel("r with the held-out FC")
    ax.axhline(0.0, color="0.8", lw=0.8)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("Held-out FC: the fit beside predictions that use no model")
    return _save(fig, path)


def plot_bold(bold: np.ndarray, tr: float, path: str | os.PathLike | None,
              title: str = "") -> Path | Figure:
    """Carpet plot of a BOLD series and its global mean signal.

    Top: every region's signal, z-scored per region (a region with zero variance is drawn as 0), as
    an image of regions x time on colour limits [-3, 3] (the "carpet plot" of Power 2017,
    NeuroImage 154:150). Bottom: the global signal, the mean over regions of the signal as given.
    Sample k is drawn at time ``k * tr`` seconds.

    The figure is 11 x 6.5 in.

    Args:
        bold: BOLD time series (T, N): T samples, N regions, in the units of the data (a.u.).
        tr: repetition time, seconds (> 0).
        path: where to write the PNG, or None to return the Figure.
        title: figure title (e.g. the subject id); a default names the size.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        ValueError: ``bold`` is not 2-D with T >= 2, has non-finite values, or ``tr`` is not a
            positive finite number of seconds.
    """
    _check_path(path)
    y = _array(bold, "bold")
    if y.ndim != 2 or y.shape[0] < 2 or y.shape[1] < 1:
        raise ValueError(f"bold must be a time series (T, N) with T >= 2 samples and N >= 1 "
                         f"regions, got shape {y.shape}")
    _finite(y, "bold")
    try:
        tr = float(tr)
    except (TypeError, ValueError):
        raise ValueError(f"tr must be the repetition time in seconds (> 0), got {tr!r}") from None
    if not (math.isfinite(tr) and tr > 0):
        raise ValueError(f"tr must be the repetition time in seconds (> 0), got {tr}")
    if not isinstance(title, str):
        raise TypeError(f"title must be a str, got {type(title).__name__}")
    t_len, n = y.shape
    sd = y.std(axis=0)
    scale = np.abs(y).max(axis=0)
    flat = sd <= 16 * np.finfo(np.float64).eps * np.maximum(scale, np.finfo(np.float64).tiny)
    z = np.where(flat, 0.0, (y - y.mean(axis=0)) / np.where(flat, 1.0, sd))
    time = np.arange(t_len) * tr

    fig = _new_figure(*_BOLD_SIZE)
    gs = fig.add_gridspec(2, 2, height_ratios=[3, 1.2], width_ratios=[1, 0.025])
    ax_c = fig.add_subplot(gs[0, 0])
    ax_m = fig.add_subplot(gs[1, 0], sharex=ax_c)
    cax = fig.add_subplot(gs[0, 1])
    image = ax_c.imshow(z.T, aspect="auto", cmap="RdBu_r", vmin=-3.0, vmax=3.0,
                        interpolation="nearest",
                        extent=(-tr / 2, (t_len - 0.5) * tr, n - 0.5, -0.5))
    ax_c.set_ylabel("region (index)")
    ax_c.set_title("carpet plot: BOLD per region, z-scored", fontsize=10)
    ax_c.tick_params(labelbottom=False)
    cbar = fig.colorbar(image, cax=cax)
    cbar.set_label("BOLD (z-score per region)")
    ax_m.plot(time, y.mean(axis=1), color="k", lw=1.0)
    ax_m.set_xlabel("time (s)")
    ax_m.set_ylabel("global mean BOLD (a.u.)")
    ax_m.set_title("global signal (mean over regions)", fontsize=10)
    ax_m.grid(alpha=0.3)
    ax_m.set_xlim(-tr / 2, (t_len - 0.5) * tr)
    fig.suptitle(title or f"BOLD: {n} regions, {t_len} volumes, TR = {tr:g} s", fontsize=12)
    return _save(fig, path)


# ----------------------------------------------------------------------------- matrices


def _matrices(mats: object, name: str, square: bool = True) -> dict[str, np.ndarray]:
    """A non-empty dict title -> finite 2-D (square) array."""
    if not isinstance(mats, Mapping) or not mats:
        raise TypeError(f"{name} must be a non-empty dict mapping a panel title -> matrix, got "
                        f"{type(mats).__name__}")
    out = {}
    for k, m in mats.items():
        a = _finite(_array(m, f"{name}[{k!r}]"), f"{name}[{k!r}]")
        if a.ndim != 2 or (square and a.shape[0] != a.shape[1]) or a.shape[0] < 2:
            raise ValueError(f"{name}[{k!r}] must be a square matrix (N, N) with N >= 2, got "
                             f"shape {a.shape}")
        out[str(k)] = a
    return out


def plot_fc(matrices: Mapping[str, np.ndarray], path: str | os.PathLike | None = None,
            labels: Sequence[str] | None = None, groups: Sequence[str] | None = None,
            title: str = "") -> Path | Figure:
    """FC matrices side by side, ordered by group and labelled by region.

    One panel per matrix (e.g. ``{"empirical": fc_emp, "simulated": fc_sim}``) on the fixed colour
    limits [-1, 1] of :data:`FC_CMAP` with one colour bar; the title of each panel after the first
    gives its FC similarity with the first (Pearson r of the upper triangles). Each panel is 4.6 in
    square plus room for the region names.

    Args:
        matrices: panel title -> FC matrix (N, N), Pearson correlations; the same N for all.
        path: where to write the PNG, or None to return the Figure.
        labels: region names (N,): every region is named on both axes (up to 120 regions).
        groups: a group per region (N,), e.g. ``hemispheres(labels)``: regions are ordered by
            group with lines between groups.
        title: the figure title.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``matrices`` is not a non-empty dict.
        ValueError: a matrix is not square or not finite, the matrices differ in size, or
            ``labels``/``groups`` do not have one entry per region.
    """
    _check_path(path)
    mats = _matrices(matrices, "matrices")
    sizes = {m.shape[0] for m in mats.values()}
    if len(sizes) > 1:
        raise ValueError(f"the matrices must all have N regions, got sizes {sorted(sizes)}")
    n = sizes.pop()
    order, labs, grps = _regions(n, labels, groups)
    room = 0.0 if labs is None else 0.07 * max(len(x) for x in labs) * np.clip(320 / n, 2.5, 8) / 8
    k = len(mats)
    fig = _new_figure(0.8 + 4.6 * k + room, 5.0 + room)
    axes = fig.subplots(1, k, squeeze=False)[0]
    first = next(iter(mats.values()))
    image = None
    for ax, (name, m) in zip(axes, mats.items()):
        image = ax.imshow(m[np.ix_(order, order)], cmap=FC_CMAP, vmin=-1.0, vmax=1.0,
                          interpolation="nearest")
        r = "" if m is first else f" (r = {_fmt(_fc_similarity(first, m))} with {next(iter(mats))})"
        ax.set_title(f"{name}{r}", fontsize=10)
        _region_ticks(ax, n, labs, grps)
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="FC, Pearson correlation r (unitless)")
    fig.suptitle(title or f"Functional connectivity, {n} regions", fontsize=12)
    return _save(fig, path)


def plot_fcd(matrices: Mapping[str, np.ndarray], step: float,
             path: str | os.PathLike | None = None, window: float | None = None,
             title: str = "") -> Path | Figure:
    """FCD matrices side by side, in time.

    The functional connectivity dynamics (FCD) matrix holds the correlation between the FCs of
    every pair of sliding windows (Hansen et al. 2015, NeuroImage 105:525); blocks along the
    diagonal are epochs of stable FC, off-diagonal stripes recurring ones. Both axes are the
    windows' start times in seconds (window k starts at ``k * step``); the colour limits are
    shared, from the smallest value shown (at most 0) to 1.

    Args:
        matrices: panel title -> FCD matrix (W, W), e.g. from :func:`brainfit.metrics.fcd`.
        step: seconds between window starts (the ``step`` given to :func:`brainfit.metrics.fcd`).
        path: where to write the PNG, or None to return the Figure.
        window: the windows' length in seconds, named in the title.
        title: the figure title.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        TypeError: ``matrices`` is not a non-empty dict.
        ValueError: a matrix is not square or not finite, or ``step`` is not positive.
    """
    _check_path(path)
    mats = _matrices(matrices, "matrices")
    step = _positive_seconds(step, "step")
    lo = min(0.0, min(float(m.min()) for m in mats.values()))
    k = len(mats)
    fig = _new_figure(0.8 + 4.2 * k, 4.6)
    axes = fig.subplots(1, k, squeeze=False)[0]
    image = None
    for ax, (name, m) in zip(axes, mats.items()):
        end = m.shape[0] * step
        image = ax.imshow(m, cmap="viridis", vmin=lo, vmax=1.0, interpolation="nearest",
                          extent=(-step / 2, end - step / 2, end - step / 2, -step / 2))
        ax.set_title(f"{name} ({m.shape[0]} windows)", fontsize=10)
        ax.set_xlabel("window start (s)")
        ax.set_ylabel("window start (s)")
    fig.colorbar(image, ax=list(axes), shrink=0.8, label="FC(t1) vs FC(t2), Pearson r")
    win = f", {window:g} s windows" if window else ""
    fig.suptitle(title or f"Functional connectivity dynamics{win}, every {step:g} s",
                 fontsize=12)
    return _save(fig, path)


def _positive_seconds(v: object, name: str) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number of seconds, got {v!r}") from None
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be a positive number of seconds, got {x}")
    return x


# ----------------------------------------------------------------------------- dynamics


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


def _draw_lines(ax, x: np.ndarray, series: dict[str, np.ndarray], max_lines: int = 10) -> None:
    for j, (k, y) in enumerate(series.items()):
        ys = y if y.ndim == 2 else y[:, None]
        for c in range(min(ys.shape[1], max_lines)):
            ax.plot(x, ys[:, c], lw=1.0, color=f"C{(j + c) % 10}",
                    label=(k if c == 0 else None) or None)
    if any(series):
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)


def plot_timeseries(t: np.ndarray, series: Mapping[str, np.ndarray] | np.ndarray,
                    path: str | os.PathLike | None = None, xlabel: str = "time (ms)",
                    ylabel: str = "", title: str = "", max_lines: int = 10) -> Path | Figure:
    """Time series, one panel per entry of ``series``, on a shared time axis.

    Args:
        t: sample times (T,), in the unit ``xlabel`` names.
        series: panel title -> values (T,) or (T, K) (K lines, at most ``max_lines`` drawn), or
            one array for one panel.
        path: where to write the PNG, or None to return the Figure.
        xlabel: the time axis label, with its unit.
        ylabel: the value axis label, with its unit.
        title: the figure title.
        max_lines: the most lines drawn per panel.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        ValueError: an entry is not (T,) or (T, K) with T matching ``t``, or not finite.
    """
    _check_path(path)
    lines = _lines(series, "series")
    x = _time(t, next(iter(lines.values())).shape[0])
    fig = _new_figure(10.0, 0.6 + 2.2 * len(lines))
    axes = fig.subplots(len(lines), 1, squeeze=False, sharex=True)[:, 0]
    for ax, (k, y) in zip(axes, lines.items()):
        if y.shape[0] != x.size:
            raise ValueError(f"series[{k!r}] has {y.shape[0]} samples but t has {x.size}")
        _draw_lines(ax, x, {"": y}, max_lines)
        ax.set_title(k, fontsize=10)
        ax.set_ylabel(ylabel)
    axes[-1].set_xlabel(xlabel)
    if title:
        fig.suptitle(title, fontsize=12)
    return _save(fig, path)


def _draw_phase(ax, trajectories: dict[str, tuple[np.ndarray, np.ndarray]],
                field: Any = None) -> None:
    """Trajectories (start marked by a dot, direction by an arrow) over a vector field."""
    xs = np.concatenate([x for x, _ in trajectories.values()])
    ys = np.concatenate([y for _, y in trajectories.values()])
    pad_x = 0.1 * max(float(np.ptp(xs)), 1e-12)
    pad_y = 0.1 * max(float(np.ptp(ys)), 1e-12)
    xlim = (float(xs.min()) - pad_x, float(xs.max()) + pad_x)
    ylim = (float(ys.min()) - pad_y, float(ys.max()) + pad_y)
    if field is not None:
        gx, gy = np.meshgrid(np.linspace(*xlim, 25), np.linspace(*ylim, 25))
        u, v = (np.asarray(a, dtype=np.float64) for a in field(gx, gy))
        ax.streamplot(gx, gy, u, v, color="0.75", density=0.9, linewidth=0.7, arrowsize=0.8)
    for j, (k, (x, y)) in enumerate(trajectories.items()):
        color = f"C{j % 10}"
        ax.plot(x, y, lw=1.1, color=color, label=k or None)
        ax.plot(x[0], y[0], "o", ms=4, color=color)
        m = min(len(x) - 2, max(1, len(x) // 3))
        ax.annotate("", xy=(x[m + 1], y[m + 1]), xytext=(x[m], y[m]),
                    arrowprops={"arrowstyle": "-|>", "color": color, "lw": 1.2})
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    if any(trajectories):
        ax.legend(fontsize=8, frameon=False)


def _trajectories(trajectories: object, name: str = "trajectories"
                  ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not isinstance(trajectories, Mapping):
        trajectories = {"": trajectories}
    if not trajectories:
        raise ValueError(f"{name} is empty; give at least one (x, y) pair")
    out = {}
    for k, xy in trajectories.items():
        if not (isinstance(xy, (tuple, list)) and len(xy) == 2):
            raise ValueError(f"{name}[{k!r}] must be a pair (x (T,), y (T,)), got "
                             f"{type(xy).__name__}")
        x = _finite(_array(xy[0], f"{name}[{k!r}] x"), f"{name}[{k!r}] x")
        y = _finite(_array(xy[1], f"{name}[{k!r}] y"), f"{name}[{k!r}] y")
        if x.ndim != 1 or x.shape != y.shape or x.size < 3:
            raise ValueError(f"{name}[{k!r}] must be two 1-D arrays of one length >= 3, got "
                             f"shapes {x.shape} and {y.shape}")
        out[str(k)] = (x, y)
    return out


def plot_phase_portrait(trajectories: Mapping[str, tuple[np.ndarray, np.ndarray]] | tuple,
                        path: str | os.PathLike | None = None, field: Any = None,
                        xlabel: str = "x", ylabel: str = "y", title: str = "") -> Path | Figure:
    """Trajectories in a state plane, over the vector field that moves them.

    Each trajectory starts at a dot and an arrow shows its direction. With ``field``, grey
    streamlines show the flow everywhere in the drawn window: a spiral into a point is a damped
    oscillation (a stable focus), a closed loop a limit cycle.

    Args:
        trajectories: label -> (x (T,), y (T,)), or one (x, y) pair.
        path: where to write the PNG, or None to return the Figure.
        field: a function ``(X, Y) -> (dX/dt, dY/dt)`` of two NumPy grids, or None.
        xlabel: the x axis label (the push variable, with its unit).
        ylabel: the y axis label (the pull variable, with its unit).
        title: the figure title.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        ValueError: a trajectory is not two 1-D finite arrays of one length >= 3.
    """
    _check_path(path)
    trajs = _trajectories(trajectories)
    fig = _new_figure(5.5, 5.0)
    ax = fig.subplots()
    _draw_phase(ax, trajs, field)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title or "phase portrait", fontsize=11)
    return _save(fig, path)


def _spectra(x: dict[str, np.ndarray], dt_ms: float, nperseg: int | None
             ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Welch spectra (:func:`brainfit.metrics.psd_welch`) of (T,) or (T, K) series in Hz."""
    out = {}
    freqs = None
    for k, y in x.items():
        ys = torch.as_tensor(y if y.ndim == 2 else y[:, None])
        seg = nperseg or (ys.shape[0] // 2 if ys.shape[0] >= 64 else ys.shape[0])
        f, p = metrics.psd_welch(ys, fs=1000.0 / dt_ms, nperseg=seg)  # (F,), (F, K)
        freqs = f.numpy()
        out[k] = p.numpy()
    return freqs, out


def _draw_spectrum(ax, freqs: np.ndarray, power: dict[str, np.ndarray], log: bool,
                   fmax: float | None) -> None:
    """Spectra with each line's peak frequency in the legend (the 0 Hz bin skipped)."""
    sel = freqs > 0
    if fmax is not None:
        sel &= freqs <= fmax
    for j, (k, p) in enumerate(power.items()):
        ps = p if p.ndim == 2 else p[:, None]
        mean = ps.mean(axis=1)
        peak = float(freqs[sel][np.argmax(mean[sel])]) if sel.any() else float("nan")
        label = f"{k + ': ' if k else ''}peak {peak:.3g} Hz"
        ax.plot(freqs[sel], mean[sel], lw=1.2, color=f"C{j % 10}", label=label)
    if log and all(np.all(p[sel] > 0) for p in power.values()):
        ax.set_yscale("log")
    ax.set_xlabel("frequency (Hz)")
    ax.set_ylabel("power density" + (" (log scale)" if ax.get_yscale() == "log" else ""))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, frameon=False)


def plot_spectrum(freqs: np.ndarray, power: Mapping[str, np.ndarray] | np.ndarray,
                  path: str | os.PathLike | None = None, log: bool = True,
                  fmax: float | None = None, title: str = "") -> Path | Figure:
    """Power spectra, each line's peak frequency in the legend.

    Args:
        freqs: frequencies (F,) in Hz, e.g. from :func:`brainfit.metrics.psd_welch`.
        power: label -> power (F,) or (F, K) (the mean over K is drawn), or one array.
        path: where to write the PNG, or None to return the Figure.
        log: a logarithmic power axis (when every value drawn is positive).
        fmax: the highest frequency drawn, Hz (None: all).
        title: the figure title.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        ValueError: an entry's length differs from ``freqs``, or values are not finite.
    """
    _check_path(path)
    f = _finite(_array(freqs, "freqs"), "freqs")
    lines = _lines(power, "power")
    for k, p in lines.items():
        if p.shape[0] != f.size:
            raise ValueError(f"power[{k!r}] has {p.shape[0]} frequencies but freqs has {f.size}")
    fig = _new_figure(6.5, 4.2)
    ax = fig.subplots()
    _draw_spectrum(ax, f, lines, log, fmax)
    ax.set_title(title or "power spectrum", fontsize=11)
    return _save(fig, path)


def plot_oscillator(t: np.ndarray, x: Mapping[str, np.ndarray] | np.ndarray,
                    y: Mapping[str, np.ndarray] | np.ndarray,
                    path: str | os.PathLike | None = None, names: tuple[str, str] = ("x", "y"),
                    field: Any = None, fmax: float | None = None, title: str = "",
                    nperseg: int | None = None) -> Path | Figure:
    """One node's dynamics in three panels: time series, phase portrait and spectrum.

    The push-pull pair of a model (``x`` excites, ``y`` restrains: the harmonic oscillator's x and
    y, Wilson-Cowan's E and I) is drawn against time, against each other (with the flow
    ``field`` if given) and as the power spectrum of ``x`` (Welch, :func:`brainfit.metrics.
    psd_welch`). Several runs (e.g. parameter values) overlay, one colour each. 15 x 4.2 in.

    Args:
        t: times (T,) in ms, evenly spaced.
        x: label -> the push variable (T,), or one array.
        y: label -> the pull variable (T,), the same labels as ``x``, or one array.
        path: where to write the PNG, or None to return the Figure.
        names: the two variables' names (with units), for the axes.
        field: ``(X, Y) -> (dX/dt, dY/dt)`` for the phase portrait's streamlines, or None.
        fmax: the highest frequency drawn, Hz.
        title: the figure title.
        nperseg: Welch segment length in samples (default: T // 2, three half-overlapping
            segments, a resolution of 2 / duration).

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        ValueError: ``x`` and ``y`` differ in labels or lengths, ``t`` is not (T,) and evenly
            spaced, or values are not finite.
    """
    _check_path(path)
    xs, ys = _lines(x, "x"), _lines(y, "y")
    if list(xs) != list(ys):
        raise ValueError(f"x and y must have the same labels, got {list(xs)} and {list(ys)}")
    n = next(iter(xs.values())).shape[0]
    time = _time(t, n)
    steps = np.diff(time)
    if np.any(steps <= 0) or np.ptp(steps) > 1e-6 * abs(steps.mean()):
        raise ValueError("t must be evenly spaced and increasing (the spectrum needs a sampling "
                         "rate)")
    trajs = {}
    for k in xs:
        if xs[k].shape != (n,) or ys[k].shape != (n,):
            raise ValueError(f"x[{k!r}] and y[{k!r}] must both be (T,) = ({n},), got "
                             f"{xs[k].shape} and {ys[k].shape}")
        trajs[k] = (xs[k], ys[k])
    fig = _new_figure(15.0, 4.2)
    ax_t, ax_p, ax_s = fig.subplots(1, 3, gridspec_kw={"width_ratios": [1.6, 1.0, 1.1]})
    for j, k in enumerate(xs):
        ax_t.plot(time, xs[k], lw=1.0, color=f"C{j % 10}", label=f"{k + ': ' if k else ''}"
                  f"{names[0]}")
        ax_t.plot(time, ys[k], lw=0.8, ls="--", color=f"C{j % 10}", alpha=0.7,
                  label=f"{k + ': ' if k else ''}{names[1]}")
    ax_t.set_xlabel("time (ms)")
    ax_t.set_title(f"time series (solid {names[0]}, dashed {names[1]})", fontsize=10)
    ax_t.grid(alpha=0.3)
    _draw_phase(ax_p, trajs, field)
    ax_p.set_xlabel(names[0])
    ax_p.set_ylabel(names[1])
    ax_p.set_title("phase portrait", fontsize=10)
    freqs, power = _spectra(xs, float(steps.mean()), nperseg)
    _draw_spectrum(ax_s, freqs, power, True, fmax)
    ax_s.set_title(f"spectrum of {names[0]}", fontsize=10)
    if title:
        fig.suptitle(title, fontsize=12)
    return _save(fig, path)


def _extrema(y: np.ndarray) -> np.ndarray:
    """Local maxima and minima of a trace; its mean when it has none (a fixed point)."""
    d = np.diff(y)
    turn = np.flatnonzero(np.sign(d[1:]) != np.sign(d[:-1])) + 1
    return y[turn] if turn.size else np.array([y.mean()])


def plot_bifurcation(values: np.ndarray, traces: np.ndarray,
                     path: str | os.PathLike | None = None, name: str = "parameter",
                     unit: str = "", observable: str = "x", dt: float | None = None,
                     critical: float | None = None, critical_label: str = "bifurcation",
                     title: str = "") -> Path | Figure:
    """A bifurcation diagram from simulations at a range of parameter values.

    Top: for each value, the local maxima and minima of its trace (after transients; a fixed
    point has none and is drawn at its mean), so a fixed point is one dot and an oscillation two
    branches that open where it is born. Bottom (with ``dt``): the frequency of the largest
    spectral peak where the trace oscillates (peak-to-peak above 10 % of the largest). A red line
    marks ``critical``, the value where theory places the bifurcation. 8 x 4 in, 8 x 7 with the
    frequency panel.

    Args:
        values: the parameter values (P,).
        traces: the observable at each value, (P, T) after transients.
        path: where to write the PNG, or None to return the Figure.
        name: the parameter's name.
        unit: the parameter's unit.
        observable: the observable's name (with its unit).
        dt: the traces' sampling interval in ms, for the frequency panel (None: no panel).
        critical: the parameter value of the bifurcation, or None.
        critical_label: what happens at ``critical``.
        title: the figure title.

    Returns:
        ``path`` as a Path, or the Figure when ``path`` is None.

    Raises:
        ValueError: ``traces`` is not (P, T) with P = len(values) and T >= 3, or not finite.
    """
    _check_path(path)
    v = _finite(_array(values, "values"), "values")
    y = _finite(_array(traces, "traces"), "traces")
    if v.ndim != 1 or y.ndim != 2 or y.shape[0] != v.size or y.shape[1] < 3:
        raise ValueError(f"traces must be (P, T) with P = len(values) = {v.size} and T >= 3, got "
                         f"shape {y.shape}")
    fig = _new_figure(8.0, 7.0 if dt else 4.0)
    axes = fig.subplots(2 if dt else 1, 1, squeeze=False, sharex=True)[:, 0]
    ax = axes[0]
    for p, trace in zip(v, y):
        ext = _extrema(trace)
        ax.plot(np.full(ext.size, p), ext, ".", ms=2, color="k")
    label = f"{name} [{unit}]" if unit else name
    ax.set_ylabel(f"{observable}: extrema")
    ax.set_title("local maxima and minima after transients", fontsize=10)
    if dt:
        amp = np.ptp(y, axis=1)
        osc = amp > 0.1 * max(float(amp.max()), 1e-300)
        freqs = np.fft.rfftfreq(y.shape[1], d=dt / 1000.0)
        spec = np.abs(np.fft.rfft(y - y.mean(axis=1, keepdims=True), axis=1))
        peak = freqs[1:][np.argmax(spec[:, 1:], axis=1)]
        axes[1].plot(v[osc], peak[osc], "o-", ms=3, color="tab:blue")
        axes[1].set_ylabel("peak frequency (Hz)")
        axes[1].set_title("frequency of the oscillation", fontsize=10)
    for a in axes:
        if critical is not None:
            a.axvline(critical, color="tab:red", lw=1.2,
                      label=f"{critical_label} ({name} = {critical:g})")
            a.legend(fontsize=8, frameon=False, loc="best")
        a.grid(alpha=0.3)
    axes[-1].set_xlabel(label)
    fig.suptitle(title or f"Bifurcation diagram in {name}", fontsize=12)
    return _save(fig, path)
